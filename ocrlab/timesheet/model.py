"""Checking the reference timesheet (docs/design.md), and where its readers are.

Two readers produce the same parsed form:
- `parse_text` (ocrlab.timesheet.text_reader) reads the lines a local OCR engine printed, tolerant of OCR damage;
- `parse_model_json` (ocrlab.timesheet.answers) reads a model's answer.
`validate` names every broken rule; `check` raises `ValidationFailure` when any rule is broken.

A timesheet that cannot be read raises `ParsingError` (PARSING_ERROR); one that was read but
breaks a rule raises `ValidationFailure` (VALIDATION_ERROR). A value that was there but could
not be read (an illegible cell, a null from the model) is None in the parsed form and shows up
as `missing_field` in validation.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from typing import Any, TypeGuard, cast

from ocrlab.domain import Timesheet
from ocrlab.errors import ValidationFailure
from ocrlab.timesheet.schema import ENTRY_FIELDS, REQUIRED_FIELDS
from ocrlab.timesheet.text_reader import parse_text

__all__ = ["check", "parse_text", "validate"]

TOTAL_TOLERANCE = 0.05

# --- validation ----------------------------------------------------------------------------------

def _iso_date(value: Any) -> date | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date() if isinstance(value, str) else None
    except ValueError:
        return None


def _minutes(value: Any) -> int | None:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value) if isinstance(value, str) else None
    return int(m.group(1)) * 60 + int(m.group(2)) if m else None


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(ts: dict[str, Any]) -> list[str]:
    """Every broken rule of the reference timesheet, one message per rule per entry, each led by a stable rule id.

    Rule ids: missing_field, invalid_date, invalid_time, invalid_number, date_out_of_week,
    hours_range, time_order, hours_exceed_span, total_mismatch. An empty list means valid.
    """
    errors: list[str] = []
    for key in REQUIRED_FIELDS:
        if not _present(ts.get(key)):
            errors.append(f"missing_field: {key}")

    week_ending = _iso_date(ts.get("week_ending"))
    if _present(ts.get("week_ending")) and week_ending is None:
        errors.append(f"invalid_date: week_ending {ts.get('week_ending')!r} is not a real YYYY-MM-DD date")

    listed = ts.get("entries")
    entries: list[Any] = listed if isinstance(listed, list) else []
    hours_sum, sum_known = 0.0, True
    for n, entry in enumerate(entries, start=1):
        entry = entry if isinstance(entry, dict) else {}
        for key in ENTRY_FIELDS:
            if not _present(entry.get(key)):
                errors.append(f"missing_field: entry {n} {key}")

        raw_date = entry.get("date")
        day = _iso_date(raw_date)
        if _present(raw_date) and day is None:
            errors.append(f"invalid_date: entry {n} date {raw_date!r} is not a real YYYY-MM-DD date")
        if day and week_ending and not (week_ending - timedelta(days=6) <= day <= week_ending):
            errors.append(f"date_out_of_week: entry {n} date {day.isoformat()} not within "
                          f"7 days ending {week_ending.isoformat()}")

        start, end = _minutes(entry.get("time_in")), _minutes(entry.get("time_out"))
        for key, value in (("time_in", start), ("time_out", end)):
            if _present(entry.get(key)) and value is None:
                errors.append(f"invalid_time: entry {n} {key} {entry.get(key)!r} is not HH:MM")
        if start is not None and end is not None and end <= start:
            errors.append(f"time_order: entry {n} time_out {entry['time_out']} is not after "
                          f"time_in {entry['time_in']}")

        hours = entry.get("hours")
        if _present(hours) and not _is_number(hours):
            errors.append(f"invalid_number: entry {n} hours {hours!r} is not a number")
            sum_known = False
        elif _is_number(hours):
            hours_sum += hours
            if not 0 < hours <= 24:
                errors.append(f"hours_range: entry {n} hours {hours:g} not in (0, 24]")
            if start is not None and end is not None and end > start and hours > (end - start) / 60 + 1e-9:
                errors.append(f"hours_exceed_span: entry {n} hours {hours:g} exceed "
                              f"{entry['time_in']}-{entry['time_out']} ({(end - start) / 60:g} h)")
        else:
            sum_known = False

    total = ts.get("total_hours")
    if _present(total) and not _is_number(total):
        errors.append(f"invalid_number: total_hours {total!r} is not a number")
    elif _is_number(total) and entries and sum_known and abs(hours_sum - total) > TOTAL_TOLERANCE + 1e-9:
        errors.append(f"total_mismatch: entries sum to {round(hours_sum, 2):g} h, "
                      f"total_hours is {total:g}")
    return errors


def check(ts: dict[str, Any]) -> Timesheet:
    """ts if it breaks no rule, else ValidationFailure carrying every broken rule.

    A timesheet read from engine text carries each row's printed text (`row_text`): the
    message quotes the text of every row that broke a rule, so a person sees what was read.
    """
    errors = validate(ts)
    if errors:
        message = f"timesheet breaks {len(errors)} rule(s): " + "; ".join(errors)
        row_text = getattr(ts, "row_text", [])
        broken = sorted({int(n) for e in errors for n in re.findall(r"\bentry (\d+)\b", e)})
        quoted = [f"entry {n} read from {row_text[n - 1]!r}" for n in broken if n <= len(row_text)]
        if quoted:
            message += " (" + "; ".join(quoted) + ")"
        raise ValidationFailure(message, code="ValidationError", validation_errors=errors)
    return cast(Timesheet, ts)  # every rule holds: the fields are there, well formed
