"""Comparing two OCR versions image by image, from the latest outcome of each image under each.

Statuses: `fixed` (base failed, candidate OK), `regressed` (base OK, candidate failed),
`still_failing`, `unchanged` (both OK; `parsed_changed` says whether the timesheet read differs),
`new` (only the candidate ran it), `not_run` (only the base ran it).

A regression is more than a status: with ground truth, an image whose fields got worse is a
regression even when both outcomes are OK (`fields_lost` names them), and a field whose accuracy
fell over all images is a field regression (`Comparison.field_changes`). Reports lead with them.

Raw outputs are compared with `evaluate.cer`, the candidate's text against the base's as the
reference, so `raw_cer` is the share of the base text the candidate changed. With ground truth,
each version's field accuracy over the images it ran (ocrlab.fields).
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Collection, Mapping

from .evaluate import cer
from .fields import FieldAccuracy, GroundTruth, score_fields
from .files import json_safe
from .records import OCR_RESULT
from .schema import ENTRY_FIELDS
from .store.spooling import SpoolingStore

STATUSES = ("regressed", "fixed", "still_failing", "unchanged", "new", "not_run")  # also the report order
GROUPS = ("regressed", "improved", "other", "unchanged")  # how reports list the images both versions ran
OK = "OK"


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
    fields_lost: list[str] = field(default_factory=list)     # right under the base, wrong under the candidate
    fields_gained: list[str] = field(default_factory=list)   # wrong under the base, right under the candidate

    @property
    def fields_worse(self) -> bool:
        """Fewer ground-truth fields right under the candidate than under the base."""
        return (self.base_fields is not None and self.candidate_fields is not None
                and self.candidate_fields[0] < self.base_fields[0])

    @property
    def fields_better(self) -> bool:
        return (self.base_fields is not None and self.candidate_fields is not None
                and self.candidate_fields[0] > self.base_fields[0])

    @property
    def regression(self) -> bool:
        """The candidate failed where the base read it, or read fewer fields right."""
        return self.status == "regressed" or self.fields_worse

    @property
    def improvement(self) -> bool:
        return not self.regression and (self.status == "fixed" or self.fields_better)

    @property
    def group(self) -> str:
        """Where a report lists it: `regressed`, `improved`, `other` (changed otherwise) or `unchanged`."""
        if self.regression:
            return "regressed"
        if self.improvement:
            return "improved"
        return "other" if self.changed else "unchanged"

    @property
    def changed(self) -> bool:
        """Worth a diff: the outcome flipped, or either output (or the failure) differs."""
        if self.base is None or self.candidate is None:
            return False
        return (self.status in ("fixed", "regressed") or bool(self.raw_changed) or bool(self.parsed_changed)
                or self.fields_worse or self.fields_better
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
                "base_fields": _fields_dict(self.base_fields), "candidate_fields": _fields_dict(self.candidate_fields),
                "regression": self.regression, "fields_lost": self.fields_lost, "fields_gained": self.fields_gained}


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
        """Regressions first (outcome, then fields), then fixed, then the other statuses; by image key within each."""
        rank = {s: n for n, s in enumerate(STATUSES)}
        return sorted(self.images, key=lambda i: (not i.regression, rank[i.status], i.image_key))

    def changed(self) -> list[ImageComparison]:
        return [i for i in self.ordered() if i.changed]

    def grouped(self) -> dict[str, list[ImageComparison]]:
        """The images both versions ran by GROUPS (regressed, improved, other, unchanged), report order."""
        groups: dict[str, list[ImageComparison]] = {g: [] for g in GROUPS}
        for item in self.ordered():
            if item.base is not None and item.candidate is not None:
                groups[item.group].append(item)
        return groups

    def field_changes(self) -> list[dict[str, Any]]:
        """Per field name (all fields first): base and candidate accuracy and the change, worst first."""
        if self.field_accuracy is None:
            return []
        base, cand = (self.field_accuracy[s] for s in ("base", "candidate"))
        b_fields, c_fields = base.by_field(), cand.by_field()
        empty = {"correct": 0, "total": 0, "accuracy": None}
        rows = [{"field": "all fields", "base": {"correct": base.fields_correct, "total": base.fields,
                                                 "accuracy": base.accuracy},
                 "candidate": {"correct": cand.fields_correct, "total": cand.fields, "accuracy": cand.accuracy}}]
        for name in dict.fromkeys([*b_fields, *c_fields]):
            rows.append({"field": name, "base": b_fields.get(name, empty), "candidate": c_fields.get(name, empty)})
        for row in rows:
            row["change"] = _delta(row["base"]["accuracy"], row["candidate"]["accuracy"])
        return rows

    def field_regressions(self) -> list[dict[str, Any]]:
        """The fields (by name, `all fields` included) whose accuracy fell, the largest fall first."""
        return sorted((r for r in self.field_changes() if r["change"] is not None and r["change"] < 0),
                      key=lambda r: r["change"])

    def regressions(self) -> list[ImageComparison]:
        return [i for i in self.ordered() if i.regression]

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
                "regressions": len(self.regressions()), "field_regressions": self.field_regressions(),
                "totals": self.totals(), "ground_truth": self.ground_truth,
                "field_accuracy": ({side: acc.to_dict() for side, acc in self.field_accuracy.items()}
                                   if self.field_accuracy is not None else None),
                "warnings": list(self.warnings),
                "images": [i.to_dict(include_raw) for i in self.ordered()]}
        return json_safe(data)

    def changes_frame(self) -> Any:
        """The images that changed, regressions first, in words and percentages (what a notebook shows)."""
        import pandas as pd
        rows = []
        for i in self.changed():
            fields = "" if i.base_fields is None or i.candidate_fields is None else \
                f"{i.base_fields[0]}/{i.base_fields[1]} → {i.candidate_fields[0]}/{i.candidate_fields[1]}"
            rows.append({"image": i.image_key, "change": i.group, "outcome": f"{i.base.outcome} → {i.candidate.outcome}"
                         if i.base and i.candidate else i.status, "fields right": fields,
                         "fields lost": ", ".join(i.fields_lost), "raw output changed": "" if i.raw_cer is None
                         else f"{i.raw_cer:.1%}"})
        return pd.DataFrame(rows, columns=["image", "change", "outcome", "fields right", "fields lost",
                                           "raw output changed"])

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


def compare_versions(store: SpoolingStore, base: str, candidate: str,
                     ground_truth: str | os.PathLike[str] | None = None,
                     keys: Collection[str] | None = None) -> Comparison:
    """Compare the latest outcome of every image (of `keys`, if given) under `base` with that under `candidate`."""
    wanted = None if keys is None else set(keys)
    latest = {v: {r["ImageKey"]: r for r in store.latest_outcomes(v) if wanted is None or r["ImageKey"] in wanted}
              for v in (base, candidate)}
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


def field_labels(scores: list[tuple[str, bool]]) -> list[str]:
    """Names with the entry's number (`entries[2].hours`, counted from 1) for `score_fields`' list, in order."""
    labels, n = [], 0
    for name, _ in scores:
        if name.startswith("entry."):
            labels.append(f"entries[{n // len(ENTRY_FIELDS) + 1}].{name[6:]}")
            n += 1
        else:
            labels.append(name)
    return labels


def _score(comparison: Comparison, truth: GroundTruth) -> None:
    accuracy = {"base": FieldAccuracy(), "candidate": FieldAccuracy()}
    for item in comparison.images:
        reference = truth.get(item.image_key)
        if reference is None:
            continue
        scored: dict[str, list[tuple[str, bool]]] = {}
        for name, side in (("base", item.base), ("candidate", item.candidate)):
            if side is not None:
                scored[name] = score_fields(reference, side.parsed)
                accuracy[name].add(scored[name])
                setattr(item, f"{name}_fields", (sum(ok for _, ok in scored[name]), len(scored[name])))
        if len(scored) == 2:
            pairs = list(zip(field_labels(scored["base"]), scored["base"], scored["candidate"]))
            item.fields_lost = [label for label, (_, b), (_, c) in pairs if b and not c]
            item.fields_gained = [label for label, (_, b), (_, c) in pairs if c and not b]
    comparison.field_accuracy = accuracy
    comparison.warnings += truth.problems
    if not accuracy["base"].images and not accuracy["candidate"].images:
        comparison.warnings.append(f"no image matched a NAME.json in {str(truth.folder)!r}")
