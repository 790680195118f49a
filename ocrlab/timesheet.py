"""Reading and checking the reference timesheet (SPEC 4).

Two readers produce the same parsed form:
- `parse_text` reads the lines a local OCR engine printed, tolerant of OCR noise;
- `parse_model_json` (in `ocrlab.answers`, re-exported here) reads a model's answer.
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
from typing import Any

from .errors import ParsingError, ValidationFailure
from .repairs import Repairs
from .schema import ENTRY_FIELDS, REQUIRED_FIELDS

TOTAL_TOLERANCE = 0.05

# --- OCR-noise tolerant patterns -------------------------------------------------------------
# Characters OCR engines print for a digit: O/o for 0, l/I/| for 1.
_D = r"[0-9OolI|]"
_DIGIT_FIX = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1", "|": "1"})
_SEP = r"[:.;,]"  # ':' in a time is often read as '.' or ';'
_DASH = r"[-\u2010-\u2015~]"

# A time such as 08:00, 8.00, O8;3O, or 0800 (separator dropped: real digits only). Letters may
# not touch it, digits may: merged cells ("08:0016:30") still split into two times.
_TIME_CORE = rf"(?:{_D}{{1,2}}\s?{_SEP}\s?{_D}{{2}}|\d{{4}})"
_TIME = re.compile(rf"(?<![A-Za-z]){_TIME_CORE}(?![A-Za-z])")
# Hours such as 8, 8.0, 7.75, 8,5 (and 4:75: engines read '.' as ':'); a total may have 3 digits.
_HOURS_CORE = rf"{_D}{{1,2}}(?:[.,:;]{_D}{{1,2}})?"
_HOURS = re.compile(rf"(?<![A-Za-z]){_HOURS_CORE}(?![0-9])")
_TOTAL_NUMBER = rf"(?<![A-Za-z]){_D}{{1,3}}(?:[.,:;]{_D}{{1,2}})?(?![0-9])"
# A row's date: 10/20 (month/day) or 2025-10-20, the anchor that starts each table row.
_ROW_DATE = re.compile(rf"(?<![0-9])({_D}{{1,2}})\s?/\s?({_D}{{1,2}})(?![0-9])")
_ROW_ISO_DATE = re.compile(rf"(?<![0-9])(\d{{4}})\s?{_DASH}\s?(\d{{1,2}})\s?{_DASH}\s?(\d{{1,2}})(?![0-9])")

_LABEL_SEP = r"\s*[:;.,]?\s*"
_EMPLOYEE = re.compile(rf"\bEmpl\w*{_LABEL_SEP}", re.IGNORECASE)
_ID_LABEL = re.compile(r"(?<![A-Za-z])(?:ID|lD|1D|\|D|Id|iD)(?![A-Za-z])\s*[:;.,]?\s*")
_WEEK_LABEL = re.compile(rf"\bWeek\s*end\w*{_LABEL_SEP}", re.IGNORECASE)
_WEEK_DATE = re.compile(rf"({_D}{{4}})\s?{_DASH}\s?({_D}{{1,2}})\s?{_DASH}\s?({_D}{{1,2}})(?![0-9])")
_TABLE_HEADER = re.compile(r"\bDate\b.{0,40}?\bHours?\b", re.IGNORECASE)
_TOTAL = re.compile(rf"\bTota\w*\s*hour\w*{_LABEL_SEP}({_TOTAL_NUMBER})?", re.IGNORECASE)
# An ID like E-10472, possibly read as "E - 1O472" or "E10472".
_ID_VALUE = re.compile(rf"([A-Za-z]{{1,3}})\s?{_DASH}?\s?({_D}{{2,}})(?![A-Za-z0-9])")
# Engines merge cells ("Mon10/20"): a day name glued to what follows gets its space back.
_DAY_GLUED = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?=[0-9OolI|])", re.IGNORECASE)
_CELL_PUNCT = "()[]{}|.,:;_=~\"'`\u201c\u201d\u2014-"


def _digits(s: str) -> str:
    """OCR digit look-alikes to digits, whitespace out."""
    return re.sub(r"\s", "", s.translate(_DIGIT_FIX))


def _norm_time(raw: str) -> str | None:
    """'O8;3O' -> '08:30'; None when it is not a clock time."""
    m = re.fullmatch(rf"(\d{{1,2}}){_SEP}?(\d{{2}})", _digits(raw))
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        return None
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def _norm_number(raw: str) -> float:
    return float(re.sub(r"[,:;]", ".", _digits(raw)))


def _resolve_date(month: int, day: int, week_ending: date | None) -> str | None:
    """Full ISO date for a month/day printed in a week: the year that puts it nearest week_ending."""
    if week_ending is None:
        return None
    candidates = []
    for year in (week_ending.year - 1, week_ending.year, week_ending.year + 1):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            pass
    if not candidates:  # not a real date: keep it visible so validate reports invalid_date
        return f"{week_ending.year:04d}-{month:02d}-{day:02d}"
    return min(candidates, key=lambda d: abs((d - week_ending).days)).isoformat()


def _parse_header(flat: str) -> tuple[bool, str | None, bool, str | None]:
    """(Employee label seen, name, ID label seen, ID) from the text flattened to one line."""
    m = _EMPLOYEE.search(flat)
    if not m:
        return False, None, bool(_ID_LABEL.search(flat)), None
    rest = flat[m.end():]
    id_m = _ID_LABEL.search(rest)
    week_m = _WEEK_LABEL.search(rest)
    if id_m and week_m and week_m.start() < id_m.start():
        id_m = None  # an "ID" after the week ending is not the employee's
    ends = [x.start() for x in (id_m, week_m) if x]
    name = re.sub(r"\s+", " ", rest[:min(ends, default=len(rest))]).strip(" :;.,~_=|-\u2014") or None
    emp_id = None
    if id_m:
        after = rest[id_m.end():week_m.start() if week_m else len(rest)]
        idm = _ID_VALUE.match(after)
        if idm:  # "E-1O472" -> "E-10472": only the digit part is corrected
            emp_id = f"{idm.group(1)}-{_digits(idm.group(2))}"
        elif after.split():
            emp_id = after.split()[0].strip(".,;:") or None
    return True, name, id_m is not None, emp_id


def _cells(segment: str) -> list[str]:
    """The cell-like tokens of a row: those with a digit, or shaped like a time or a number."""
    out = []
    for token in segment.split():
        token = token.strip(_CELL_PUNCT)
        if re.search(r"[0-9]", token) or re.fullmatch(rf"{_TIME_CORE}|{_HOURS_CORE}", token):
            out.append(token)
    return out


def _row_cells(segment: str) -> tuple[str | None, str | None, float | None]:
    """(time_in, time_out, hours) of one row; None for a cell that cannot be read.

    Three cell-like tokens are read by position, each against its own pattern, so one garbled
    cell costs only itself. Otherwise (merged or split cells) the first two times are in and
    out, and the first number after them is the hours.
    """
    cells = _cells(segment)
    if len(cells) == 3:
        hours = cells[2] if re.fullmatch(_HOURS_CORE, cells[2]) else None
        return (_norm_time(cells[0]) if re.fullmatch(_TIME_CORE, cells[0]) else None,
                _norm_time(cells[1]) if re.fullmatch(_TIME_CORE, cells[1]) else None,
                _norm_number(hours) if hours else None)
    times = list(_TIME.finditer(segment))
    if len(times) < 2:
        first = times[0] if times and cells and times[0].group(0) in cells[0] else None
        return (_norm_time(first.group(0)) if first else None), None, None
    hours_m = _HOURS.search(segment, times[1].end())
    return (_norm_time(times[0].group(0)), _norm_time(times[1].group(0)),
            _norm_number(hours_m.group(0)) if hours_m else None)


def _parse_rows(region: str, week_ending: date | None) -> list[dict[str, Any]]:
    """Table rows from the text between the table header and the total, one per row date."""
    region = _DAY_GLUED.sub(r"\1 ", region)
    # A month/day that cannot be one ("73/5" from a garbled cell) does not start a row.
    month_days = [m for m in _ROW_DATE.finditer(region)
                  if 1 <= int(_digits(m.group(1))) <= 12 and 1 <= int(_digits(m.group(2))) <= 31]
    anchors = sorted([*month_days, *_ROW_ISO_DATE.finditer(region)], key=lambda m: m.start())
    entries = []
    for i, m in enumerate(anchors):
        end = anchors[i + 1].start() if i + 1 < len(anchors) else len(region)
        if m.re is _ROW_DATE:
            day = _resolve_date(int(_digits(m.group(1))), int(_digits(m.group(2))), week_ending)
        else:
            day = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
        time_in, time_out, hours = _row_cells(region[m.end():end])
        entries.append({"date": day, "time_in": time_in, "time_out": time_out, "hours": hours})
    return entries


def parse_text(text: str, repairs: Repairs | None = None) -> dict[str, Any]:
    """The parsed timesheet (SPEC 4) from a local engine's text lines (in reading order).

    The labels locate the pieces: if a label is absent (Employee, ID, Week ending, Total hours)
    or no table row is found, no timesheet could be read and ParsingError names what is
    missing. A value that is there but illegible (a garbled time, an unreadable total) becomes
    None, which `validate` reports as a missing field: the timesheet was read, incompletely.
    Row dates get their year from week_ending (the nearest year, for weeks across new year).
    Each repair made to read it is appended to `repairs` when given.
    """
    if not text or not text.strip():
        raise ParsingError("no text: the engine found nothing to read", code="EmptyOutput",
                           raw_output=text)
    flat = re.sub(r"\s+", " ", text)

    has_employee, name, has_id, emp_id = _parse_header(flat)
    week_label = _WEEK_LABEL.search(flat)
    week_ending: date | None = None
    week_m = _WEEK_DATE.match(flat, week_label.end()) if week_label else None
    if week_m:
        y, mo, d = (int(_digits(g)) for g in week_m.groups())
        try:
            week_ending = date(y, mo, d)
        except ValueError:
            week_ending = None

    total_m = _TOTAL.search(flat)
    start = (week_m or week_label).end() if week_label else 0
    header_m = _TABLE_HEADER.search(flat, start)
    if header_m and (not total_m or header_m.end() <= total_m.start()):
        start = header_m.end()
    end = total_m.start() if total_m and total_m.start() >= start else len(flat)
    entries = _parse_rows(flat[start:end], week_ending)

    missing = [what for what, seen in (
        ("'Employee:'", has_employee), ("'ID:'", has_id), ("'Week ending:'", week_label),
        ("table rows (date, in, out, hours)", entries), ("'Total hours:'", total_m)) if not seen]
    if missing:
        code = "NoTimesheet" if len(missing) >= 3 else "IncompleteTimesheet"
        raise ParsingError(f"no timesheet could be read: missing {', '.join(missing)}",
                           code=code, raw_output=text)

    assert total_m is not None
    total = total_m.group(1)
    return {"employee_name": name, "employee_id": emp_id,
            "week_ending": week_ending.isoformat() if week_ending else None,
            "entries": entries, "total_hours": _norm_number(total) if total else None}


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
