"""The timesheet's JSON Schema (docs/design.md): one source for the Bedrock tool and the answer reader.

The Bedrock engine sends it as the `inputSchema` of the tool the model must call; the answer
reader (`ocrlab.timesheet.answers`) walks it to check an answer's shape; the field names of the parsed
form come from it. A value the model cannot read is null, so every leaf admits null.

Kept to the JSON Schema that Amazon Nova's tool use accepts: the top level holds only `type`,
`properties` and `required` (no `$schema`, `title`, `description` or `additionalProperties`
there); formats are told in descriptions, which every model reads.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

TOOL_NAME = "record_timesheet"
TOOL_DESCRIPTION = ("Record the weekly timesheet read from the image: every field exactly as printed, "
                    "null for a value that cannot be read.")


def _leaf(kind: str, description: str) -> dict[str, Any]:
    return {"type": [kind, "null"], "description": description}


ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One table row, in the order printed.",
    "properties": {
        "date": _leaf("string", "The row's date as YYYY-MM-DD; the year is the one of the week ending."),
        "time_in": _leaf("string", "Time in, 24-hour HH:MM with two-digit hours."),
        "time_out": _leaf("string", "Time out, 24-hour HH:MM with two-digit hours."),
        "hours": _leaf("number", "Hours worked as printed, a decimal number such as 8.5."),
    },
    "required": ["date", "time_in", "time_out", "hours"],
}

TIMESHEET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "employee_name": _leaf("string", "The employee's name exactly as printed."),
        "employee_id": _leaf("string", "The employee id exactly as printed, e.g. E-10472."),
        "week_ending": _leaf("string", "The week-ending date as YYYY-MM-DD."),
        "entries": {"type": "array", "description": "Every table row, in the order printed.",
                    "items": ENTRY_SCHEMA},
        "total_hours": _leaf("number", "The printed total hours, a decimal number."),
    },
    "required": ["employee_name", "employee_id", "week_ending", "entries", "total_hours"],
}

REQUIRED_FIELDS: tuple[str, ...] = tuple(TIMESHEET_SCHEMA["required"])
ENTRY_FIELDS: tuple[str, ...] = tuple(ENTRY_SCHEMA["required"])


def digest(value: Any) -> str:
    """A short, stable sha256 of a text or of a JSON value (keys sorted): a version's fingerprint."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


SCHEMA_DIGEST = digest(TIMESHEET_SCHEMA)
