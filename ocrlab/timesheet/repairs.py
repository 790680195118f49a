"""What a reader changed to read a timesheet, kept with the record it produced.

Engines misread (`O8:3O`, `Thu 12/2507:45`) and models answer loosely (`'key': 1,`, `8:00 AM`);
the readers repair what the timesheet's own constraints make certain and record each repair, so
that a prompt or an engine setting that no longer needs one shows up in a comparison, and a
person can see what was read and what was used. A reader never invents a value: what it cannot
repair with certainty stays a failure.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any, Iterable, Mapping

# Entries in field paths (`entries[2].hours`) are counted from 1, as in ValidationErrors and as people
# count; a record says so in ParseRepairsBase. The local engines' reader counted from 0 before that
# attribute existed: their records without it are read with that numbering.
ENTRY_BASE = 1
BASE_ATTRIBUTE = "ParseRepairsBase"
COUNTED_FROM_ZERO = frozenset({"rapidocr", "tesseract"})  # Engine of records whose reader counted from 0
_ENTRY = re.compile(r"^entries\[(\d+)\]")


@dataclass(frozen=True)
class Repair:
    """One change a reader made: `rule` is a stable id, `field` where (``entries[2].time_in``, the
    second entry; ``employee_id``; ``answer`` for the whole answer), `before` as read, `after` as used."""

    rule: str
    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.field} {self.before!r} -> {self.after!r}"


class Repairs(list[Repair]):
    """The repairs of one reading, in the order they were made."""

    def add(self, rule: str, field: str, before: Any, after: Any) -> None:
        self.append(Repair(rule, field, str(before), str(after)))

    def rules(self) -> list[str]:
        """The distinct rule ids, in first-seen order."""
        return list(dict.fromkeys(r.rule for r in self))

    def to_json(self) -> str:
        """The stored form (attribute `ParseRepairs`): a JSON list of {rule, field, before, after}."""
        return json.dumps([asdict(r) for r in self], ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> Repairs:
        """Read the stored form back; anything unreadable gives no repairs."""
        try:
            data = json.loads(text) if text else []
        except (TypeError, ValueError):
            return cls()
        return cls(_repair(d) for d in data if isinstance(d, dict)) if isinstance(data, list) else cls()

    @classmethod
    def of(cls, repairs: Iterable[Repair]) -> Repairs:
        return cls(repairs)

    def attributes(self) -> dict[str, Any]:
        """What a record stores of these repairs: ParseRepairs and the number its entries start from."""
        return {"ParseRepairs": self.to_json(), BASE_ATTRIBUTE: Decimal(ENTRY_BASE)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Repairs:
        """A record's repairs with entries counted from 1, whichever numbering the record was written in."""
        repairs = cls.from_json(record.get("ParseRepairs"))
        stored = record.get(BASE_ATTRIBUTE)
        base = int(stored) if stored is not None else 0 if record.get("Engine") in COUNTED_FROM_ZERO else ENTRY_BASE
        if base == ENTRY_BASE:
            return repairs
        shift = ENTRY_BASE - base
        return cls(replace(r, field=_ENTRY.sub(lambda m: f"entries[{int(m[1]) + shift}]", r.field)) for r in repairs)


def _repair(data: dict[str, Any]) -> Repair:
    return Repair(*(str(data.get(k, "")) for k in ("rule", "field", "before", "after")))
