"""Field accuracy against ground truth: a parsed timesheet scored field by field.

Ground truth is a folder of `NAME.json` (the parsed form of docs/design.md) matched to an image
by the image key's file stem. Fields are employee_name, employee_id, week_ending, total_hours
and, per ground-truth entry matched by position, date, time_in, time_out and hours;
accuracy = correct fields / ground-truth fields. A failed image (nothing read) gets every field
wrong; entries invented beyond the ground truth are not counted. Texts compare after
`evaluate.normalise`; hours within NUMBER_TOLERANCE.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from ocrlab.errors import OcrlabError
from ocrlab.evaluation.evaluate import normalise
from ocrlab.timesheet.schema import ENTRY_FIELDS

HEADER_FIELDS = ("employee_name", "employee_id", "week_ending", "total_hours")
NUMBER_FIELDS = {"total_hours", "hours"}
NUMBER_TOLERANCE = 0.005  # hours are read to two decimals at most


def _text(value: Any) -> str:
    return "" if value is None else str(value)



def same_value(name: str, truth: Any, got: Any) -> bool:
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
    scores = [(name, parsed is not None and same_value(name, truth.get(name), got.get(name))) for name in HEADER_FIELDS]
    listed = got.get("entries")
    got_entries: list[Any] = listed if isinstance(listed, list) else []
    for i, entry in enumerate(truth.get("entries") or []):
        mine = got_entries[i] if i < len(got_entries) and isinstance(got_entries[i], dict) else None
        for name in ENTRY_FIELDS:
            scores.append((f"entry.{name}", mine is not None and same_value(name, entry.get(name), mine.get(name))))
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
            self.problems.append(f"{path.name}: not a timesheet (the parsed form of docs/design.md)")
            return None
        return data
