"""Reading and checking the reference timesheet (SPEC 4).

Two readers produce the same parsed form:
- `parse_text` (from `text_reader`) reads the lines a local OCR engine printed, tolerant of OCR damage;
- `parse_model_json` reads a model's JSON answer, tolerant of fences and prose, strict on shape.
`validate` names every broken rule; `check` raises `ValidationFailure` when any rule is broken.

A timesheet that cannot be read raises `ParsingError` (PARSING_ERROR); one that was read but
breaks a rule raises `ValidationFailure` (VALIDATION_ERROR). A value that was there but could
not be read (an illegible cell, a null from the model) is None in the parsed form and shows up
as `missing_field` in validation.
"""
from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta
from typing import Any

from .errors import ParsingError, ValidationFailure
from .repairs import Repairs
from .text_reader import parse_text

__all__ = ["check", "parse_model_json", "parse_text", "validate"]

TOTAL_TOLERANCE = 0.05
REQUIRED_FIELDS = ("employee_name", "employee_id", "week_ending", "entries", "total_hours")
ENTRY_FIELDS = ("date", "time_in", "time_out", "hours")

# --- the model's JSON answer -------------------------------------------------------------------

def _object_spans(text: str):
    """(start, end) of each top-level {...} span, string-aware; end is None if it never closes."""
    i, n = text.find("{"), len(text)
    while i != -1:
        depth, in_str, esc, j = 0, False, False, i
        while j < n:
            c = text[j]
            if in_str:
                esc, in_str = (False, in_str) if esc else (c == "\\", c != '"')
            elif c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= n:
            yield i, None
            return
        yield i, j + 1
        i = text.find("{", j + 1)


def _find_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in text; code fences and prose around it are ignored.

    An object that is opened but never closed is a truncated answer (max tokens reached):
    that is a JSONDecodeError even if a complete object is nested inside it.
    """
    last: json.JSONDecodeError | None = None
    for start, end in _object_spans(text):
        if end is None:
            raise ParsingError(f"truncated JSON: the object opened at char {start} never closes",
                               code="JSONDecodeError", raw_output=text)
        try:
            return json.loads(text[start:end])
        except json.JSONDecodeError as exc:
            last = exc  # prose in braces before the answer: try the next span
    detail = f": {last.msg}" if last else ""
    raise ParsingError(f"no JSON object in the answer{detail}", code="JSONDecodeError",
                       raw_output=text)


_NUMERIC_STRING = re.compile(r"\s*-?\d+(?:\.\d+)?\s*")


def _as_number(value: Any, where: str, problems: list[str]) -> float | None:
    """Numbers may be JSON numbers or numeric strings ("8.5", models sometimes quote them);
    null stays None (reported later by validate as missing); anything else is a schema error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        problems.append(f"{where} must be a number, got {type(value).__name__}")
        return None
    if isinstance(value, str):
        if not _NUMERIC_STRING.fullmatch(value):
            problems.append(f"{where} must be a number, got {value!r}")
            return None
        return float(value)
    if not math.isfinite(value):
        problems.append(f"{where} must be a finite number")
        return None
    return float(value)


def _as_text(value: Any, where: str, problems: list[str]) -> str | None:
    if value is None or isinstance(value, str):
        return value.strip() if isinstance(value, str) else None
    problems.append(f"{where} must be a string, got {type(value).__name__}")
    return None


def parse_model_json(text: str, repairs: Repairs | None = None) -> dict[str, Any]:
    """The parsed timesheet from a model's JSON answer.

    Structure is strict: every key of SPEC 4 present, `entries` a list of objects with every
    entry key, strings where strings belong, numbers (JSON numbers or numeric strings) for
    hours and total_hours. A value may be null where the model could not read it: that is
    reported by `validate` as a missing field, not as a parsing failure.
    Raises ParsingError with code "JSONDecodeError" (no complete object) or "SchemaError".
    """
    if not text or not text.strip():
        raise ParsingError("empty answer", code="JSONDecodeError", raw_output=text)
    obj = _find_json_object(text)
    problems: list[str] = []
    absent = [k for k in REQUIRED_FIELDS if k not in obj]
    if absent:
        problems.append(f"missing keys: {', '.join(absent)}")
    out: dict[str, Any] = {
        "employee_name": _as_text(obj.get("employee_name"), "employee_name", problems),
        "employee_id": _as_text(obj.get("employee_id"), "employee_id", problems),
        "week_ending": _as_text(obj.get("week_ending"), "week_ending", problems),
        "entries": [],
        "total_hours": _as_number(obj.get("total_hours"), "total_hours", problems),
    }
    entries = obj.get("entries")
    if "entries" in obj and not isinstance(entries, list):
        problems.append(f"entries must be a list, got {type(entries).__name__}")
    for i, entry in enumerate(entries if isinstance(entries, list) else [], start=1):
        if not isinstance(entry, dict):
            problems.append(f"entry {i} must be an object, got {type(entry).__name__}")
            continue
        absent = [k for k in ENTRY_FIELDS if k not in entry]
        if absent:
            problems.append(f"entry {i} missing keys: {', '.join(absent)}")
        out["entries"].append({
            "date": _as_text(entry.get("date"), f"entry {i} date", problems),
            "time_in": _as_text(entry.get("time_in"), f"entry {i} time_in", problems),
            "time_out": _as_text(entry.get("time_out"), f"entry {i} time_out", problems),
            "hours": _as_number(entry.get("hours"), f"entry {i} hours", problems),
        })
    if problems:
        raise ParsingError("the answer is not a timesheet: " + "; ".join(problems),
                           code="SchemaError", raw_output=text)
    return out


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(ts: dict[str, Any]) -> list[str]:
    """Every broken rule of SPEC 4, one message per rule per entry, each led by a stable rule id.

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

    entries = ts.get("entries") if isinstance(ts.get("entries"), list) else []
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


def check(ts: dict[str, Any]) -> dict[str, Any]:
    """ts if it breaks no rule of SPEC 4, else ValidationFailure carrying every broken rule.

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
    return ts
