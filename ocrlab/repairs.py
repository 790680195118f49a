"""What a reader changed to read a timesheet, kept with the record it produced.

Engines misread (`O8:3O`, `Thu 12/2507:45`) and models answer loosely (`'key': 1,`, `8:00 AM`);
the readers repair what the timesheet's own constraints make certain and record each repair, so
that a prompt or an engine setting that no longer needs one shows up in a comparison, and a
person can see what was read and what was used. A reader never invents a value: what it cannot
repair with certainty stays a failure.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class Repair:
    """One change a reader made: `rule` is a stable id, `field` where (``entries[2].time_in``,
    ``employee_id``, ``answer`` for the whole answer), `before` as read, `after` as used."""

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


def _repair(data: dict[str, Any]) -> Repair:
    return Repair(*(str(data.get(k, "")) for k in ("rule", "field", "before", "after")))
