"""Comparing two OCR versions image by image, from the latest outcome of each image under each.

Statuses: `fixed` (base failed, candidate OK), `regressed` (base OK, candidate failed),
`still_failing`, `unchanged` (both OK; `parsed_changed` says whether the timesheet read differs),
`new` (only the candidate ran it), `not_run` (only the base ran it).

Raw outputs are compared with `evaluate.cer`, the candidate's text against the base's as the
reference, so `raw_cer` is the share of the base text the candidate changed.

Field accuracy (with ground truth): each version over the images it ran that have a
`NAME.json` (SPEC 4) matched by the image key's file stem. Fields are employee_name,
employee_id, week_ending, total_hours and, per ground-truth entry matched by position, date,
time_in, time_out and hours; accuracy = correct fields / ground-truth fields. A failed image
gets every field wrong; entries the model invented beyond the ground truth are not counted.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from .errors import OcrlabError
from .evaluate import cer, normalise
from .records import OCR_RESULT
from .recorder import get_store
from .store import Store
from .timesheet import ENTRY_FIELDS

STATUSES = ("regressed", "fixed", "still_failing", "unchanged", "new", "not_run")  # also the report order
OK = "OK"
HEADER_FIELDS = ("employee_name", "employee_id", "week_ending", "total_hours")
NUMBER_FIELDS = {"total_hours", "hours"}
NUMBER_TOLERANCE = 0.005  # hours are read to two decimals at most
# Alignment cost grows with len(a) * len(b): beyond this (~0.4 s) raw_cer is left unknown.
CER_CELL_LIMIT = 25_000_000


def _number(value: Any) -> float | None:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class Side:
    """One version's latest outcome for one image."""

    outcome: str                      # "OK" or the FailureType
    timestamp: str
    raw: str = ""
    parsed: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Side:
        ok = record.get("RecordType") == OCR_RESULT
        # Results carry the parsed timesheet, and so do validation failures: what was read is
        # scored even when it broke a rule. Anything else scores as all wrong.
        try:
            parsed = json.loads(record.get("ParsedTimesheet") or "null")
        except json.JSONDecodeError:
            parsed = None
        tokens = [_number(record.get(k)) for k in ("InputTokens", "OutputTokens")]
        return cls(outcome=OK if ok else _text(record.get("FailureType")) or "FAILED",
                   timestamp=_text(record.get("FailureTimestamp")), raw=_text(record.get("RawOCROutput")),
                   parsed=parsed if isinstance(parsed, dict) else None,
                   error_code=None if ok else _text(record.get("ErrorCode")) or None,
                   error_message=None if ok else _text(record.get("ErrorMessage")),
                   input_tokens=None if tokens[0] is None else int(tokens[0]),
                   output_tokens=None if tokens[1] is None else int(tokens[1]),
                   seconds=_number(record.get("ProcessingTimeSeconds")))

    def to_dict(self, include_raw: bool = False) -> dict[str, Any]:
        out = {"outcome": self.outcome, "timestamp": self.timestamp, "error_code": self.error_code,
               "error_message": self.error_message, "input_tokens": self.input_tokens,
               "output_tokens": self.output_tokens, "seconds": self.seconds}
        if include_raw:
            out.update(raw_output=self.raw, parsed=self.parsed)
        return out


# --- field accuracy --------------------------------------------------------------------------------

def _same(name: str, truth: Any, got: Any) -> bool:
    if name in NUMBER_FIELDS:
        t, g = _as_float(truth), _as_float(got)
        return t is not None and g is not None and abs(t - g) <= NUMBER_TOLERANCE
    return got is not None and normalise(_text(truth)) == normalise(_text(got))


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def score_fields(truth: Mapping[str, Any], parsed: Mapping[str, Any] | None) -> list[tuple[str, bool]]:
    """(field, correct) for every ground-truth field; `parsed` None (nothing read) gets all wrong."""
    got: Mapping[str, Any] = parsed or {}
    scores = [(name, parsed is not None and _same(name, truth.get(name), got.get(name))) for name in HEADER_FIELDS]
    got_entries = got.get("entries") if isinstance(got.get("entries"), list) else []
    for i, entry in enumerate(truth.get("entries") or []):
        mine = got_entries[i] if i < len(got_entries) and isinstance(got_entries[i], dict) else None
        for name in ENTRY_FIELDS:
            scores.append((f"entry.{name}", mine is not None and _same(name, entry.get(name), mine.get(name))))
    return scores


@dataclass
class FieldAccuracy:
    """Correct / total ground-truth fields of one version, overall and per field name."""

    images: int = 0
    correct: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)

    def add(self, scores: Iterable[tuple[str, bool]]) -> None:
        self.images += 1
        for name, right in scores:
            self.total[name] += 1
            self.correct[name] += right

    @property
    def fields(self) -> int:
        return sum(self.total.values())

    @property
    def fields_correct(self) -> int:
        return sum(self.correct.values())

    @property
    def accuracy(self) -> float | None:
        return self.fields_correct / self.fields if self.fields else None

    def by_field(self) -> dict[str, dict[str, Any]]:
        names = [*HEADER_FIELDS, *(f"entry.{n}" for n in ENTRY_FIELDS)]
        return {n: {"correct": self.correct[n], "total": self.total[n],
                    "accuracy": self.correct[n] / self.total[n] if self.total[n] else None}
                for n in names if self.total[n]}

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "fields": self.fields, "correct": self.fields_correct,
                "accuracy": self.accuracy, "by_field": self.by_field()}


class GroundTruth:
    """`NAME.json` files in one folder, looked up by an image key's file stem (read on demand)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise OcrlabError(f"ground truth folder {str(self.folder)!r} does not exist")
        self.problems: list[str] = []
        self._cache: dict[str, dict[str, Any] | None] = {}

    @staticmethod
    def stem(image_key: str) -> str:
        """`s3://b/scans/NAME.png`, `scans\\NAME.PNG` and `NAME.png` all give NAME."""
        return PurePosixPath(image_key.replace("\\", "/")).stem

    def get(self, image_key: str) -> dict[str, Any] | None:
        stem = self.stem(image_key)
        if stem not in self._cache:
            self._cache[stem] = self._read(self.folder / f"{stem}.json")
        return self._cache[stem]

    def _read(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.problems.append(f"{path.name}: unreadable ground truth ({exc})")
            return None
        if not isinstance(data, dict) or not any(k in data for k in HEADER_FIELDS):
            self.problems.append(f"{path.name}: not a timesheet (SPEC 4 form)")
            return None
        return data


# --- one image ---------------------------------------------------------------------------------

def _delta(base: float | None, candidate: float | None) -> float | None:
    return None if base is None or candidate is None else candidate - base


@dataclass
class ImageComparison:
    """What changed for one image between the base and the candidate version."""

    image_key: str
    status: str
    base: Side | None
    candidate: Side | None
    raw_changed: bool | None = None
    raw_cer: float | None = None      # candidate raw vs base raw as reference; None if not both, or too long
    raw_edits: int | None = None
    parsed_changed: bool | None = None
    base_fields: tuple[int, int] | None = None       # (correct, total) against ground truth
    candidate_fields: tuple[int, int] | None = None

    @property
    def changed(self) -> bool:
        """Worth a diff: the outcome flipped, or either output (or the failure) differs."""
        if self.base is None or self.candidate is None:
            return False
        return (self.status in ("fixed", "regressed") or bool(self.raw_changed) or bool(self.parsed_changed)
                or (self.base.outcome, self.base.error_code) != (self.candidate.outcome, self.candidate.error_code))

    def deltas(self) -> dict[str, float | None]:
        b, c = self.base, self.candidate
        if b is None or c is None:
            return {"input_tokens": None, "output_tokens": None, "seconds": None}
        return {"input_tokens": _delta(b.input_tokens, c.input_tokens),
                "output_tokens": _delta(b.output_tokens, c.output_tokens), "seconds": _delta(b.seconds, c.seconds)}

    def to_dict(self, include_raw: bool = False) -> dict[str, Any]:
        return {"image_key": self.image_key, "status": self.status, "changed": self.changed,
                "base": self.base.to_dict(include_raw) if self.base else None,
                "candidate": self.candidate.to_dict(include_raw) if self.candidate else None,
                "raw_changed": self.raw_changed, "raw_cer": self.raw_cer, "raw_edits": self.raw_edits,
                "parsed_changed": self.parsed_changed, "deltas": self.deltas(),
                "base_fields": _fields_dict(self.base_fields), "candidate_fields": _fields_dict(self.candidate_fields)}


def _fields_dict(score: tuple[int, int] | None) -> dict[str, Any] | None:
    return None if score is None else {"correct": score[0], "total": score[1],
                                       "accuracy": score[0] / score[1] if score[1] else None}


def _status(base: Side | None, candidate: Side | None) -> str:
    if base is None:
        return "new"
    if candidate is None:
        return "not_run"
    return {(False, True): "fixed", (True, False): "regressed",
            (False, False): "still_failing", (True, True): "unchanged"}[(base.ok, candidate.ok)]


def compare_image(image_key: str, base: Mapping[str, Any] | None,
                  candidate: Mapping[str, Any] | None) -> ImageComparison:
    """Compare one image's latest records under the two versions (either may be None)."""
    b = Side.from_record(base) if base is not None else None
    c = Side.from_record(candidate) if candidate is not None else None
    item = ImageComparison(image_key, _status(b, c), b, c)
    if b is not None and c is not None:
        item.raw_changed = b.raw != c.raw
        if not item.raw_changed:
            item.raw_cer, item.raw_edits = 0.0, 0
        elif len(b.raw) * len(c.raw) <= CER_CELL_LIMIT:
            counts = cer(b.raw, c.raw)
            item.raw_cer, item.raw_edits = counts.rate, counts.errors
        if b.ok and c.ok:
            item.parsed_changed = b.parsed != c.parsed
    return item


# --- two versions ------------------------------------------------------------------------------

def _side_totals(sides: list[Side]) -> dict[str, Any]:
    seconds = [s.seconds for s in sides if s.seconds is not None]
    return {"images": len(sides), "input_tokens": sum(s.input_tokens or 0 for s in sides),
            "output_tokens": sum(s.output_tokens or 0 for s in sides),
            "seconds_total": sum(seconds) if seconds else None,
            "seconds_mean": sum(seconds) / len(seconds) if seconds else None}


@dataclass
class Comparison:
    """Every image's comparison, the counts per status and, with ground truth, field accuracy."""

    base: str
    candidate: str
    images: list[ImageComparison] = field(default_factory=list)
    field_accuracy: dict[str, FieldAccuracy] | None = None   # {"base": ..., "candidate": ...}
    ground_truth: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(i.status for i in self.images)
        return {status: found[status] for status in STATUSES}

    def ordered(self) -> list[ImageComparison]:
        """Regressions first, then fixed, then the other statuses; by image key within each."""
        rank = {s: n for n, s in enumerate(STATUSES)}
        return sorted(self.images, key=lambda i: (rank[i.status], i.image_key))

    def changed(self) -> list[ImageComparison]:
        return [i for i in self.ordered() if i.changed]

    def totals(self) -> dict[str, Any]:
        """Token and time sums over the images both versions ran (like for like), and their deltas."""
        both = [i for i in self.images if i.base is not None and i.candidate is not None]
        base = _side_totals([i.base for i in both if i.base is not None])
        cand = _side_totals([i.candidate for i in both if i.candidate is not None])
        keys = ("input_tokens", "output_tokens", "seconds_total", "seconds_mean")
        return {"images_compared": len(both), "base": base, "candidate": cand,
                "delta": {k: _delta(base[k], cand[k]) for k in keys}}

    def to_dict(self, include_raw: bool = False) -> dict[str, Any]:
        """Plain JSON types only (no Decimal, no NaN): what `--json` writes."""
        data = {"base": self.base, "candidate": self.candidate, "counts": self.counts,
                "images_total": len(self.images), "changed": len(self.changed()),
                "totals": self.totals(), "ground_truth": self.ground_truth,
                "field_accuracy": ({side: acc.to_dict() for side, acc in self.field_accuracy.items()}
                                   if self.field_accuracy is not None else None),
                "warnings": list(self.warnings),
                "images": [i.to_dict(include_raw) for i in self.ordered()]}
        return _json_safe(data)

    def frame(self) -> Any:
        """One row per image (report order), for notebooks."""
        import pandas as pd
        columns = ["image_key", "status", "changed", "base_outcome", "candidate_outcome", "base_error_code",
                   "candidate_error_code", "raw_changed", "raw_cer", "parsed_changed", "input_tokens_delta",
                   "output_tokens_delta", "seconds_delta", "base_field_accuracy", "candidate_field_accuracy"]
        rows = []
        for i in self.ordered():
            d = i.deltas()
            rows.append([i.image_key, i.status, i.changed, i.base.outcome if i.base else None,
                         i.candidate.outcome if i.candidate else None, i.base.error_code if i.base else None,
                         i.candidate.error_code if i.candidate else None, i.raw_changed, i.raw_cer,
                         i.parsed_changed, d["input_tokens"], d["output_tokens"], d["seconds"],
                         _ratio(i.base_fields), _ratio(i.candidate_fields)])
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> str:
        """One line for the terminal."""
        counts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in self.counts.items())
        line = f"{self.base} -> {self.candidate}: {len(self.images)} images: {counts}"
        if self.field_accuracy:
            accs = {s: a.accuracy for s, a in self.field_accuracy.items()}
            line += "; field accuracy " + ", ".join(
                f"{s} {'n/a' if v is None else f'{v:.1%}'}" for s, v in accs.items())
        return line


def _ratio(score: tuple[int, int] | None) -> float | None:
    return score[0] / score[1] if score and score[1] else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Decimal):
        value = float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def compare_versions(table: str | Store, base: str, candidate: str,
                     ground_truth: str | os.PathLike[str] | None = None) -> Comparison:
    """Compare the latest outcome of every image under `base` with that under `candidate`."""
    store = get_store(table)
    latest = {v: {r["ImageKey"]: r for r in store.latest_outcomes(v)} for v in (base, candidate)}
    comparison = Comparison(base, candidate, ground_truth=str(ground_truth) if ground_truth else None)
    for version in dict.fromkeys((base, candidate)):
        if not latest[version]:
            known = store.versions()
            comparison.warnings.append(f"no outcomes under version {version!r}; versions in the store: "
                                       + (", ".join(known) or "none"))
    keys = sorted(latest[base].keys() | latest[candidate].keys())
    comparison.images = [compare_image(k, latest[base].get(k), latest[candidate].get(k)) for k in keys]
    if ground_truth is not None:
        _score(comparison, GroundTruth(ground_truth))
    return comparison


def _score(comparison: Comparison, truth: GroundTruth) -> None:
    accuracy = {"base": FieldAccuracy(), "candidate": FieldAccuracy()}
    for item in comparison.images:
        reference = truth.get(item.image_key)
        if reference is None:
            continue
        for name, side in (("base", item.base), ("candidate", item.candidate)):
            if side is None:
                continue
            scores = score_fields(reference, side.parsed)
            accuracy[name].add(scores)
            setattr(item, f"{name}_fields", (sum(ok for _, ok in scores), len(scores)))
    comparison.field_accuracy = accuracy
    comparison.warnings += truth.problems
    if not accuracy["base"].images and not accuracy["candidate"].images:
        comparison.warnings.append(f"no image matched a NAME.json in {str(truth.folder)!r}")


# --- outputs -------------------------------------------------------------------------------------

def write_json(comparison: Comparison, path: str | os.PathLike[str], include_raw: bool = False) -> Path:
    """The comparison as JSON; allow_nan=False guarantees a strict JSON file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(comparison.to_dict(include_raw), indent=2, ensure_ascii=False, allow_nan=False),
                   encoding="utf-8")
    return out


def render_comparison_html(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """A standalone HTML report: counts, field accuracy, deltas, then side-by-side diffs of every
    changed image (regressions first, then fixed, then other changes). All text is escaped."""
    from . import html
    groups: dict[str, list[dict[str, Any]]] = {"regressed": [], "fixed": [], "other": []}
    for item in comparison.changed():
        assert item.base is not None and item.candidate is not None
        groups.get(item.status, groups["other"]).append(
            {"item": item, "rows": html.side_by_side(item.base.raw, item.candidate.raw)})
    one_sided = [i for i in comparison.ordered() if i.status in ("new", "not_run")]
    return html.write(path, "compare.html.j2", c=comparison, counts=comparison.counts,
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


def run_compare(table: str | Store, base: str, candidate: str, ground_truth: str | os.PathLike[str] | None = None,
                json_path: str | os.PathLike[str] | None = None,
                html_path: str | os.PathLike[str] | None = None) -> Comparison:
    """`ocrlab compare`: compare, then write the JSON and/or HTML asked for."""
    comparison = compare_versions(table, base, candidate, ground_truth)
    if json_path:
        write_json(comparison, json_path)
    if html_path:
        render_comparison_html(comparison, html_path)
    return comparison
