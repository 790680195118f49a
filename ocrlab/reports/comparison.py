"""The comparison of two versions as files and fragments: strict JSON, a standalone HTML page, and the
same body as an HTML fragment that a notebook shows inline (no frame, nothing cut off)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..compare import Comparison
from ..files import write_json
from .render import render, side_by_side, write


def write_comparison(comparison: Comparison, json_path: str | os.PathLike[str] | None = None,
                     html_path: str | os.PathLike[str] | None = None, include_raw: bool = False) -> None:
    """What `ocrlab compare` writes: the JSON and/or the HTML asked for."""
    if json_path:
        write_json(comparison.to_dict(include_raw), json_path)
    if html_path:
        render_comparison_html(comparison, html_path)


def _context(comparison: Comparison) -> dict[str, Any]:
    groups = comparison.grouped()
    diffs = {i.image_key: side_by_side(i.base.raw, i.candidate.raw)
             for key in ("regressed", "improved", "other") for i in groups[key]
             if i.raw_changed and i.base is not None and i.candidate is not None}
    return {"c": comparison, "groups": groups, "diffs": diffs, "counts": comparison.counts,
            "totals": comparison.totals(), "field_changes": comparison.field_changes(),
            "field_regressions": comparison.field_regressions(),
            "one_sided": [i for i in comparison.ordered() if i.status in ("new", "not_run")]}


class ComparisonFragment(Markup):
    """The comparison body as markup; a notebook displays it inline (`_repr_html_`)."""

    def _repr_html_(self) -> str:
        return str(self)


def comparison_fragment(comparison: Comparison) -> ComparisonFragment:
    """Regressions (outcome and fields) first, then improvements and other changes with their diffs
    inline, then counts, field accuracy, tokens and time. All text is escaped."""
    return ComparisonFragment(render("_comparison.html.j2", **_context(comparison)))


def render_comparison_html(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """A standalone HTML page of the comparison (the fragment under the reports' CSP)."""
    return write(path, "compare.html.j2", c=comparison, body=comparison_fragment(comparison))
