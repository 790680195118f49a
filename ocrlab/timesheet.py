"""Reading and checking the reference timesheet (SPEC 4).

Two readers produce the same parsed form:
- `parse_text` reads the lines a local OCR engine printed, tolerant of OCR noise;
- `parse_model_json` reads a model's JSON answer, tolerant of fences and prose, strict on shape.
`validate` names every broken rule; `check` raises `ValidationFailure` when any rule is broken.

A timesheet that cannot be read raises `ParsingError` (PARSING_ERROR); one that was read but
breaks a rule raises `ValidationFailure` (VALIDATION_ERROR).
"""
from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta
from typing import Any

from .errors import ParsingError, ValidationFailure

TOTAL_TOLERANCE = 0.05
REQUIRED_FIELDS = ("employee_name", "employee_id", "week_ending", "entries", "total_hours")
ENTRY_FIELDS = ("date", "time_in", "time_out", "hours")

# --- OCR-noise tolerant patterns -------------------------------------------------------------
# Characters OCR engines print for a digit: O/o for 0, l/I/| for 1.
_D = r"[0-9OolI|]"
_DIGIT_FIX = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1", "|": "1"})
_SEP = r"[:.;,]"  # ':' in a time is often read as '.' or ';'
_DASH = r"[-\u2010-\u2015~]"

# A time such as 08:00, 8.00, O8;3O, or 0800 (separator dropped, real digits only). Only letters
# may not touch it: merged cells ("08:0016:30") still split into two times.
_TIME = rf"(?<![A-Za-z])(?:{_D}{{1,2}}\s?{_SEP}\s?{_D}{{2}}|\d{{4}})(?![A-Za-z])"
# Hours such as 8, 8.0, 7.75, 8,5; a total may have three digits.
_NUMBER = rf"(?<![A-Za-z]){_D}{{1,2}}(?:[.,]{_D}{{1,2}})?(?![0-9])"
_TOTAL_NUMBER = rf"(?<![A-Za-z]){_D}{{1,3}}(?:[.,]{_D}{{1,2}})?(?![0-9])"
# A row's date: 10/20 (month/day), the anchor that starts each table row.
_ROW_DATE = re.compile(rf"(?<![0-9])({_D}{{1,2}})\s?/\s?({_D}{{1,2}})(?![0-9])")
_ROW_ISO_DATE = re.compile(rf"(?<![0-9])(\d{{4}})\s?{_DASH}\s?(\d{{1,2}})\s?{_DASH}\s?(\d{{1,2}})(?![0-9])")

_LABEL_SEP = r"\s*[:;.,]?\s*"
_EMPLOYEE = re.compile(rf"\bEmpl\w*{_LABEL_SEP}", re.IGNORECASE)
_ID_LABEL = re.compile(r"(?<![A-Za-z])(?:ID|lD|1D|\|D|Id|iD)(?![A-Za-z])\s*[:;.,]?\s*")
_WEEK_ENDING = re.compile(
    rf"\bWeek\s*end\w*{_LABEL_SEP}({_D}{{4}})\s?{_DASH}\s?({_D}{{1,2}})\s?{_DASH}\s?({_D}{{1,2}})",
    re.IGNORECASE)
_WEEK_LABEL = re.compile(r"\bWeek\s*end\w*", re.IGNORECASE)
_TABLE_HEADER = re.compile(r"\bDate\b.{0,40}?\bHours?\b", re.IGNORECASE)
_TOTAL = re.compile(rf"\bTota\w*\s*hour\w*{_LABEL_SEP}({_TOTAL_NUMBER})?", re.IGNORECASE)
# An ID like E-10472, possibly read as "E - 1O472" or "E10472".
_ID_VALUE = re.compile(rf"([A-Za-z]{{1,3}})\s?{_DASH}?\s?({_D}{{2,}})(?![A-Za-z0-9])")
# Engines merge cells ("Mon10/20"): a day name glued to what follows gets its space back.
_DAY_GLUED = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?=[0-9OolI|])", re.IGNORECASE)


def _digits(s: str) -> str:
    """OCR digit look-alikes to digits, ':'-like separators to ':', decimal comma to point."""
    return re.sub(r"\s", "", s.translate(_DIGIT_FIX))


def _norm_time(raw: str) -> str:
    s = _digits(raw)
    m = re.fullmatch(rf"(\d{{1,2}}){_SEP}?(\d{{2}})", s)
    if not m:
        raise ValueError(raw)
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def _norm_number(raw: str) -> float:
    return float(_digits(raw).replace(",", "."))


def _resolve_date(month: int, day: int, week_ending: date | None) -> str:
    """Full ISO date for a month/day printed in a week: the year that puts it nearest week_ending."""
    if week_ending is None:
        return f"????-{month:02d}-{day:02d}"
    candidates = []
    for year in (week_ending.year - 1, week_ending.year, week_ending.year + 1):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            pass
    if not candidates:  # not a real date: keep it visible so validate reports invalid_date
        return f"{week_ending.year:04d}-{month:02d}-{day:02d}"
    return min(candidates, key=lambda d: abs((d - week_ending).days)).isoformat()


def _parse_header(flat: str) -> tuple[str | None, str | None]:
    """Employee name and ID from the text flattened to one line (engines may split or merge them)."""
    m = _EMPLOYEE.search(flat)
    if not m:
        return None, None
    rest = flat[m.end():]
    id_m = _ID_LABEL.search(rest)
    week_m = _WEEK_LABEL.search(rest)
    name_end = min(x.start() for x in (id_m, week_m) if x) if (id_m or week_m) else len(rest)
    name = re.sub(r"\s+", " ", rest[:name_end]).strip(" :;.,") or None
    emp_id = None
    if id_m and (not week_m or id_m.start() < week_m.start()):
        after = rest[id_m.end():]
        idm = _ID_VALUE.match(after)
        if idm:  # "E-1O472" -> "E-10472": only the digit part is corrected
            emp_id = f"{idm.group(1)}-{_digits(idm.group(2))}"
        elif after.split():
            emp_id = after.split()[0].strip(".,;:")
    return name, emp_id or None


def _parse_rows(region: str, week_ending: date | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Table rows from the text between the header and the total; problems found on the way."""
    region = _DAY_GLUED.sub(r"\1 ", region)
    anchors = [(m, "md") for m in _ROW_DATE.finditer(region)]
    anchors += [(m, "iso") for m in _ROW_ISO_DATE.finditer(region)]
    anchors.sort(key=lambda a: a[0].start())
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, (m, kind) in enumerate(anchors):
        end = anchors[i + 1][0].start() if i + 1 < len(anchors) else len(region)
        segment = region[m.end():end]
        if kind == "md":
            iso = _resolve_date(int(_digits(m.group(1))), int(_digits(m.group(2))), week_ending)
        else:
            iso = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
        times = list(re.finditer(_TIME, segment))
        hours_m = re.search(_NUMBER, segment[times[1].end():]) if len(times) >= 2 else None
        if hours_m is None:
            missing = ["time_in", "time_out", "hours"][min(len(times), 2):]
            problems.append(f"row {i + 1} ({m.group(0).strip()}): could not read {', '.join(missing)}")
            continue
        entries.append({"date": iso, "time_in": _norm_time(times[0].group(0)),
                        "time_out": _norm_time(times[1].group(0)),
                        "hours": _norm_number(hours_m.group(0))})
    return entries, problems


def parse_text(text: str) -> dict[str, Any]:
    """The parsed timesheet (SPEC 4) from a local engine's text lines; ParsingError if unreadable."""
    if not text or not text.strip():
        raise ParsingError("no text: the engine found nothing to read", code="EmptyOutput",
                           raw_output=text)
    flat = re.sub(r"\s+", " ", text)
    missing: list[str] = []

    name, emp_id = _parse_header(flat)
    week_m = _WEEK_ENDING.search(flat)
    week_ending: date | None = None
    if week_m:
        y, mo, d = (int(_digits(g)) for g in week_m.groups())
        try:
            week_ending = date(y, mo, d)
        except ValueError:
            missing.append(f"a real week ending date (read {y:04d}-{mo:02d}-{d:02d})")

    total_m = _TOTAL.search(flat)
    start = week_m.end() if week_m else 0
    header_m = _TABLE_HEADER.search(flat, start)
    if header_m and (not total_m or header_m.end() <= total_m.start()):
        start = header_m.end()
    end = total_m.start() if total_m and total_m.start() >= start else len(flat)
    entries, row_problems = _parse_rows(flat[start:end], week_ending)

    for field, value in (("employee name", name), ("employee ID", emp_id), ("week ending", week_m)):
        if value is None:
            missing.append(field)
    if not entries and not row_problems:
        missing.append("table rows (date, in, out, hours)")
    if not total_m or total_m.group(1) is None:
        missing.append("total hours")
    if missing or row_problems:
        what = "; ".join(([f"missing {', '.join(missing)}"] if missing else []) + row_problems)
        code = "NoTimesheet" if len(missing) >= 4 else "IncompleteTimesheet"
        raise ParsingError(f"no timesheet could be read: {what}", code=code, raw_output=text)

    assert week_ending is not None and total_m is not None
    return {"employee_name": name, "employee_id": emp_id, "week_ending": week_ending.isoformat(),
            "entries": entries, "total_hours": _norm_number(total_m.group(1))}


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


def parse_model_json(text: str) -> dict[str, Any]:
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
    """ts if it breaks no rule of SPEC 4, else ValidationFailure carrying every broken rule."""
    errors = validate(ts)
    if errors:
        raise ValidationFailure(f"timesheet breaks {len(errors)} rule(s): " + "; ".join(errors),
                                code="ValidationError", validation_errors=errors)
    return ts
