"""The comparison of two versions as files: strict JSON, and a standalone HTML page with diffs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..compare import Comparison
from ..files import write_json
from .render import side_by_side, write


def write_comparison(comparison: Comparison, json_path: str | os.PathLike[str] | None = None,
                     html_path: str | os.PathLike[str] | None = None, include_raw: bool = False) -> None:
    """What `ocrlab compare` writes: the JSON and/or the HTML asked for."""
    if json_path:
        write_json(comparison.to_dict(include_raw), json_path)
    if html_path:
        render_comparison_html(comparison, html_path)



def render_comparison_html(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """A standalone HTML report: counts, field accuracy, deltas, then side-by-side diffs of every
    changed image (regressions first, then fixed, then other changes). All text is escaped."""
    groups: dict[str, list[dict[str, Any]]] = {"regressed": [], "fixed": [], "other": []}
    for item in comparison.changed():
        assert item.base is not None and item.candidate is not None
        groups.get(item.status, groups["other"]).append(
            {"item": item, "rows": side_by_side(item.base.raw, item.candidate.raw)})
    one_sided = [i for i in comparison.ordered() if i.status in ("new", "not_run")]
    return write(path, "compare.html.j2", c=comparison, counts=comparison.counts,
                      totals=comparison.totals(), groups=groups, one_sided=one_sided,
                      accuracy=comparison.field_accuracy, accuracy_rows=_accuracy_rows(comparison))


def _accuracy_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """All fields first, then each field name: base and candidate (correct, total, accuracy), change."""
    if comparison.field_accuracy is None:
        return []
    base, cand = (comparison.field_accuracy[s].to_dict() for s in ("base", "candidate"))
    empty = {"correct": 0, "total": 0, "accuracy": None}
    def overall(d: dict[str, Any]) -> dict[str, Any]:
        return {"correct": d["correct"], "total": d["fields"], "accuracy": d["accuracy"]}
    rows = [{"field": "all fields", "base": overall(base), "candidate": overall(cand)}]
    for name in dict.fromkeys([*base["by_field"], *cand["by_field"]]):
        rows.append({"field": name, "base": base["by_field"].get(name, empty),
                     "candidate": cand["by_field"].get(name, empty)})
    for row in rows:
        b, c = row["base"]["accuracy"], row["candidate"]["accuracy"]
        row["change"] = None if b is None or c is None else c - b
    return rows
