"""One timesheet value as a model wrote it, read into the parsed form (docs/design.md).

Each reader returns the value and the repair rules it applied. A form it knows but cannot
read with certainty (a date whose two readings both fall outside the week, `13:30 PM`) is kept
as written with an `*_unresolved` rule, so validation fails on it and the record shows why.
A form it does not know is kept as written with no rule: validation names it.

Rules:
  time_12h            4:30 PM -> 16:30, 12:15 AM -> 00:15
  time_padded         8:00 -> 08:00
  time_separator      8h30, 08.30 -> 08:30
  time_seconds        08:00:00 -> 08:00 (zero seconds only)
  time_unresolved     a clock form that fits no reading: 13:30 PM, 25:00, 08:00:30
  date_us             10/20/2025 -> 2025-10-20 (month first)
  date_dmy            20/10/2025 -> 2025-10-20 (day first)
  date_iso_form       2025/10/20, 2025-10-2 -> 2025-10-20
  date_month_name     Oct 20, 2025 / 20 October 2025 -> 2025-10-20
  date_year_from_week 10/20 -> the year that puts it nearest the week ending
  date_weekday        Mon 10/20: the weekday dropped, after checking it is the date's
  date_unresolved     no single reading: both month/day orders possible and the week decides
                      neither, the weekday contradicts the date, or no week to take a year from
  number_from_string  "8.5" -> 8.5
  decimal_comma       8,5 -> 8.5 (one or two decimals: 1,250 is not read)
  hours_unit          8h, 8.5 hrs, 16.5 hours -> 8.0, 8.5, 16.5
  hours_clock         8:30, 7h45 -> 8.5, 7.75 (hours and minutes)
"""
from __future__ import annotations

import calendar
import math
import re
from datetime import date, timedelta
from typing import Any, Callable, NamedTuple


class Read(NamedTuple):
    value: Any
    rules: tuple[str, ...] = ()


# --- times -------------------------------------------------------------------------------------

_HHMM = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")
_CLOCK = re.compile(r"(\d{1,2})(?:\s*([:.hH])\s*(\d{2})?)?(?::(\d{2}))?\s*(?:([AaPp])\.?\s*[Mm]\.?)?")


def read_time(raw: str) -> Read:
    """'HH:MM' from the clock forms models write; see the module's rules."""
    if _HHMM.fullmatch(raw):
        return Read(raw)
    m = _CLOCK.fullmatch(raw)
    # A bare number ("8") could be a time or hours: not a clock form.
    if not m or not (m.group(2) or m.group(5)) or (m.group(2) in (":", ".") and not m.group(3)):
        return Read(raw)
    hour, minute = int(m.group(1)), int(m.group(3) or 0)
    seconds, half = m.group(4), (m.group(5) or "").lower()
    if seconds not in (None, "00") or minute > 59 or (hour > 23 if not half else not 1 <= hour <= 12):
        return Read(raw, ("time_unresolved",))
    rules = []
    if half:
        hour = hour % 12 + (12 if half == "p" else 0)
        rules.append("time_12h")
    elif len(m.group(1)) == 1:
        rules.append("time_padded")
    if m.group(2) and m.group(2) != ":":
        rules.append("time_separator")
    if seconds:
        rules.append("time_seconds")
    return Read(f"{hour:02d}:{minute:02d}", tuple(rules))


# --- dates -------------------------------------------------------------------------------------

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_LOOSE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_NUMERIC = re.compile(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?")
_MONTHS = {name.lower(): i for names in (calendar.month_name, calendar.month_abbr)
           for i, name in enumerate(names) if name}
_MONTH = r"([A-Za-z]{3,9})\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_NAMED_MD = re.compile(rf"{_MONTH}\s+{_DAY},?(?:\s+(\d{{4}}))?")
_NAMED_DM = re.compile(rf"{_DAY}\s+{_MONTH},?(?:\s+(\d{{4}}))?")
_WEEKDAY = re.compile(r"(mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+", re.IGNORECASE)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# (rule, year or None, month, day): one reading of a written date.
_Reading = tuple[str, "int | None", int, int]


def _readings(text: str) -> list[_Reading]:
    if m := _ISO_LOOSE.fullmatch(text):
        return [("date_iso_form", int(m.group(1)), int(m.group(2)), int(m.group(3)))]
    if m := _NUMERIC.fullmatch(text):
        a, b = int(m.group(1)), int(m.group(2))
        year = None if m.group(3) is None else int(m.group(3)) % 100 + 2000 if len(m.group(3)) == 2 \
            else int(m.group(3))
        return [("date_us", year, a, b), ("date_dmy", year, b, a)]
    for pattern, month_group, day_group in ((_NAMED_MD, 1, 2), (_NAMED_DM, 2, 1)):
        if (m := pattern.fullmatch(text)) and m.group(month_group).lower() in _MONTHS:
            year = int(m.group(3)) if m.group(3) else None
            return [("date_month_name", year, _MONTHS[m.group(month_group).lower()], int(m.group(day_group)))]
    return []


def _real(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _dated(reading: _Reading, week: date | None) -> date | None:
    """The date of one reading; a missing year is the one that puts it nearest `week`."""
    _, year, month, day = reading
    if year is not None:
        return _real(year, month, day)
    if week is None:
        return None
    dates = [d for y in (week.year - 1, week.year, week.year + 1) if (d := _real(y, month, day))]
    return min(dates, key=lambda d: abs((d - week).days)) if dates else None


def _parse_date(raw: str) -> tuple[list[_Reading], int | None] | None:
    """The readings of a written date and the weekday written before it; None if not a date form."""
    text, weekday = raw, None
    if m := _WEEKDAY.match(raw):
        text, weekday = raw[m.end():], _WEEKDAYS.index(m.group(1).lower())
    if _ISO.fullmatch(text):
        return [("", *map(int, text.split("-")))], weekday  # type: ignore[list-item]
    return (readings, weekday) if (readings := _readings(text)) else None


def date_candidates(raw: str, week: date | None = None) -> dict[date, str]:
    """Every real date `raw` can be read as (a missing year taken from `week`), with its rule."""
    parsed = _parse_date(raw)
    found: dict[date, str] = {}
    for reading in parsed[0] if parsed else []:
        day = _dated(reading, week)
        if day and (parsed[1] is None or day.weekday() == parsed[1]):  # type: ignore[index]
            found.setdefault(day, reading[0])
    return found


def read_date(raw: str, week: date | None = None, score: Callable[[date], int] = lambda d: 0) -> Read:
    """'YYYY-MM-DD' from the date forms models write; see the module's rules.

    `week` gives a missing year. Of two readings, the one `score` rates above the other and
    above 0 is taken (for a row: the one within the week). A date with one reading is taken
    even outside the week: validation reports that.
    """
    parsed = _parse_date(raw)
    if parsed is None or (parsed[1] is None and _ISO.fullmatch(raw)):
        return Read(raw)  # not a date form, or the asked one (validation checks it is a real date)
    found = date_candidates(raw, week)
    if len(found) > 1:
        scores = {d: score(d) for d in found}
        best = max(scores.values())
        found = {d: rule for d, rule in found.items() if scores[d] == best > 0}
    if len(found) != 1:
        return Read(raw, ("date_unresolved",))
    [(day, rule)] = found.items()
    rules = ["date_weekday"] if parsed[1] is not None else []
    rules += [rule] if rule else []
    rules += ["date_year_from_week"] if parsed[0][0][1] is None else []
    return Read(day.isoformat(), tuple(rules))


def in_week(week: date | None) -> Callable[[date], bool]:
    """Whether a date lies within the 7 days ending on `week`."""
    return lambda d: week is not None and week - timedelta(days=6) <= d <= week


# --- numbers -----------------------------------------------------------------------------------

_PLAIN = re.compile(r"[-+]?\d+(?:\.\d+)?")
_COMMA = re.compile(r"([-+]?\d{1,3}),(\d{1,2})")
_UNIT = re.compile(r"(.+?)\s*(?:h|hr|hrs|hour|hours)\.?", re.IGNORECASE)
_HOURS_MINUTES = re.compile(r"(\d{1,2})\s*[:hH]\s*([0-5]\d)\s*(?:m|min|mins)?\.?")


def read_number(value: Any) -> Read | None:
    """A number from a JSON number or the string forms models write; None if it is neither."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if not isinstance(value, str):
        return Read(float(value)) if math.isfinite(value) else None
    text = value.strip()
    if m := _HOURS_MINUTES.fullmatch(text):
        return Read(int(m.group(1)) + int(m.group(2)) / 60, ("hours_clock",))
    rules = []
    if m := _UNIT.fullmatch(text):
        text = m.group(1)
        rules.append("hours_unit")
    if m := _COMMA.fullmatch(text):
        text = f"{m.group(1)}.{m.group(2)}"
        rules.append("decimal_comma")
    if not _PLAIN.fullmatch(text):
        return None
    return Read(float(text), tuple(rules) or ("number_from_string",))
