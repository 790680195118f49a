"""Everything about one failure that a person needs to see why it failed, gathered from the store.

The image itself (small), the raw engine output, the parsed timesheet field by field with the
fields that broke a rule marked and the rule named, the reader's repairs, the image's attempts,
its latest outcome under every version, and, when `NAME.json` sits beside the image, the ground
truth with the fields that differ. Field names follow the repairs' form: `employee_id`,
`entries[2].hours` (entries counted from 1, as in ValidationErrors).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ocrlab.domain import Record
from ocrlab.evaluation.fields import HEADER_FIELDS, same_value
from ocrlab.image_lookup import find_ground_truth, find_image, thumbnail_data_uri
from ocrlab.store.spooling import SpoolingStore
from ocrlab.timesheet.repairs import Repair, Repairs
from ocrlab.timesheet.schema import ENTRY_FIELDS

_RULE = re.compile(r"^(?P<rule>[a-z_]+):\s*(?:entry (?P<entry>\d+) (?P<efield>\w+)|(?P<field>\w+))?")
# A rule whose message does not start with the field it concerns.
_RULE_FIELD = {"total_mismatch": "total_hours"}


@dataclass(frozen=True)
class RuleBreak:
    """One broken validation rule: its id, the field it concerns (None: the whole timesheet), the message."""

    rule: str
    field: str | None
    message: str


def broken_rules(validation_errors: str | None) -> list[RuleBreak]:
    """The `ValidationErrors` attribute ("rule: message; rule: message") as rules with their fields."""
    out = []
    for message in filter(None, (m.strip() for m in (validation_errors or "").split(";"))):
        m = _RULE.match(message)
        if m is None:
            out.append(RuleBreak("", None, message))
            continue
        rule = m["rule"]
        name = (f"entries[{m['entry']}].{m['efield']}" if m["entry"]
                else _RULE_FIELD.get(rule) or (m["field"] if m["field"] in (*HEADER_FIELDS, "entries") else None))
        out.append(RuleBreak(rule, name, message))
    return out


@dataclass
class FieldRow:
    """One field of the parsed timesheet, with what broke it, what repaired it and the ground truth."""

    name: str
    value: Any
    rules: list[str] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    truth: Any = None
    correct: bool | None = None      # None: no ground truth for this field

    @property
    def broken(self) -> bool:
        return bool(self.rules)


def field_rows(parsed: Mapping[str, Any] | None, rules: Sequence[RuleBreak], repairs: Sequence[Repair],
               truth: Mapping[str, Any] | None) -> list[FieldRow]:
    """Header fields, then each entry's fields, over the longer of the parsed and the true entries."""
    got: Mapping[str, Any] = parsed or {}
    reference: Mapping[str, Any] = truth or {}
    rows: list[tuple[str, str, Any, Any]] = [(name, name, got.get(name), reference.get(name))
                                              for name in HEADER_FIELDS]
    listed, true_listed = got.get("entries"), reference.get("entries")
    entries: list[Any] = listed if isinstance(listed, list) else []
    true_entries: list[Any] = true_listed if isinstance(true_listed, list) else []
    for n in range(1, max(len(entries), len(true_entries)) + 1):
        mine = entries[n - 1] if n <= len(entries) and isinstance(entries[n - 1], dict) else {}
        theirs = true_entries[n - 1] if n <= len(true_entries) and isinstance(true_entries[n - 1], dict) else {}
        rows += [(f"entries[{n}].{name}", name, mine.get(name), theirs.get(name)) for name in ENTRY_FIELDS]
    out = []
    for path, kind, value, true_value in rows:
        row = FieldRow(path, value, [r.rule for r in rules if r.field == path],
                       [r for r in repairs if r.field == path])
        if truth is not None:
            row.truth = true_value
            row.correct = parsed is not None and same_value(kind, true_value, value)
        out.append(row)
    return out


@dataclass
class FailureDetail:
    """One failure as the browser shows it."""

    record: Record
    image_uri: str | None            # a downscaled JPEG as a data: URI; None: not reachable or not an image
    image_where: str                 # where the image was read from, or why it was not
    rules: list[RuleBreak]
    fields: list[FieldRow]
    parsed: dict[str, Any] | None
    repairs: list[Repair]
    attempts: list[Record]           # every record of the image (failures and results), oldest first
    latest: list[Record]             # the image's latest outcome under each version
    truth: dict[str, Any] | None

    @property
    def unplaced_rules(self) -> list[RuleBreak]:
        """Broken rules that name no field of the table (shown beside it)."""
        names = {row.name for row in self.fields}
        return [r for r in self.rules if r.field not in names]

    @property
    def truth_score(self) -> tuple[int, int] | None:
        scored = [row.correct for row in self.fields if row.correct is not None]
        return (sum(scored), len(scored)) if self.truth is not None else None


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def failure_detail(store: SpoolingStore, record: Record,
                   sources: Sequence[str | os.PathLike[str]] = ()) -> FailureDetail:
    """Gather one failure's detail: two Queries (attempts, latest outcomes) and the image lookup."""
    key = record["ImageKey"]
    located = find_image(record, sources)
    image_uri = thumbnail_data_uri(located.data) if located.data is not None else None
    where = located.where if located.data is None or image_uri else f"{located.where} is not a readable image"
    parsed = _json(record.get("ParsedTimesheet"))
    parsed = parsed if isinstance(parsed, dict) else None
    rules = broken_rules(record.get("ValidationErrors"))
    repairs = list(Repairs.from_record(record))
    truth = find_ground_truth(record, sources, located.path)
    latest = sorted(store.image_latest(key), key=lambda r: str(r.get("OCRFullVersion")))
    return FailureDetail(record, image_uri, where, rules, field_rows(parsed, rules, repairs, truth), parsed,
                         repairs, list(store.image_records(key)), latest, truth)
