"""The answer-shape table: answers as models give them, each with the reading it must get.

A shape turns a true timesheet into the model's answer: text (only the text path can carry
it) or an object (the text path gets it as JSON, the tool path as the tool's input). It says
what must come of it: "OK" (the true timesheet, exactly), or "FAILURE_TYPE:detail", where the
detail is the ErrorCode (PARSING_ERROR) or a validation rule id (VALIDATION_ERROR); and the
repair rules the reader must record. `judge` compares a stored record with that, and is shared
by tests/test_answers.py and the benchmark (benchmarks/answers.py).

Generic shapes apply to any valid timesheet (the damaged-samples batch draws them); `dates`
marks shapes that rewrite dates, which an invalid sheet's out-of-week row could make
ambiguous, so the batch gives those to valid sheets only.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from ocrlab.timesheet.repairs import Repairs

try:
    from support.converse_server import TIMESHEET
except ImportError:  # pragma: no cover
    from tests.converse_server import TIMESHEET

Sheet = dict[str, Any]


@dataclass(frozen=True)
class Shape:
    name: str
    answer: Callable[[Sheet], str | Sheet]
    expect: str = "OK"
    rules: frozenset[str] = frozenset()
    generic: bool = False
    dates: bool = False
    base: Sheet | None = None  # the true sheet when the reference does not show the shape

    def truth(self) -> Sheet:
        return self.base or TIMESHEET


def shape(name: str, answer: Callable[[Sheet], str | Sheet], expect: str = "OK", rules: str = "",
          **options: Any) -> Shape:
    return Shape(name, answer, expect, frozenset(rules.split()), **options)


# --- building answers from a true sheet ---------------------------------------------------------

def changed(t: Sheet, **top: Any) -> Sheet:
    out = copy.deepcopy(t)
    out.update(top)
    return out


def rows(t: Sheet, **fields: Callable[[Any], Any]) -> Sheet:
    """Every row with `fields` rewritten by their functions."""
    out = copy.deepcopy(t)
    for entry in out["entries"]:
        for name, fn in fields.items():
            entry[name] = fn(entry[name])
    return out


def row(t: Sheet, n: int, **values: Any) -> Sheet:
    out = copy.deepcopy(t)
    out["entries"][n].update(values)
    return out


def all_dates(t: Sheet, fn: Callable[[str], str]) -> Sheet:
    return changed(rows(t, date=fn), week_ending=fn(t["week_ending"]))


def without(t: Sheet, key: str) -> Sheet:
    return {k: v for k, v in t.items() if k != key}


def h12(hhmm: str) -> str:
    hour, minute = map(int, hhmm.split(":"))
    return f"{hour % 12 or 12}:{minute:02d} {'PM' if hour >= 12 else 'AM'}"


def us(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{m}/{d}/{y}"


def dmy(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{d}/{m}/{y}"


def month_day(iso: str) -> str:
    return us(iso)[:5]


def weekday_month_day(iso: str) -> str:
    from datetime import date
    return f"{date.fromisoformat(iso):%a} {month_day(iso)}"


def month_name(iso: str) -> str:
    from datetime import date
    return f"{date.fromisoformat(iso):%b} {int(iso[8:])}, {iso[:4]}"


def comma(number: float) -> str:
    return str(number).replace(".", ",")


def clock(hours: float) -> str:
    return f"{int(hours)}:{round(hours % 1 * 60):02d}"


def text(t: Sheet) -> str:
    return json.dumps(t)


def keys_last(t: Sheet, *last: str) -> Sheet:
    return {**{k: v for k, v in t.items() if k not in last}, **{k: t[k] for k in last}}


def cut(answer: str, before: str, keep: int = 0) -> str:
    """The answer cut just before the first `before` (plus `keep` characters of it)."""
    return answer[:answer.index(before) + keep]


# Sheets whose week ending can be read two ways (11/07: 7 November or 11 July; 03/07).
NOVEMBER = changed(TIMESHEET, week_ending="2025-11-07", entries=[
    dict(TIMESHEET["entries"][0], date="2025-11-03"), dict(TIMESHEET["entries"][1], date="2025-11-04")])
MARCH = changed(TIMESHEET, week_ending="2025-03-07", entries=[
    dict(TIMESHEET["entries"][0], date="2025-03-03"), dict(TIMESHEET["entries"][1], date="2025-03-04")])

SHAPES: list[Shape] = [
    # --- text around the object, JSON syntax (text path only) ---
    shape("the answer as asked", lambda t: t, generic=True),  # as JSON text, or as the tool's input
    shape("pretty-printed JSON", lambda t: json.dumps(t, indent=2), generic=True),
    shape("fenced block", lambda t: f"```json\n{json.dumps(t, indent=2)}\n```", rules="json_extracted", generic=True),
    shape("prose before and after", lambda t: f"Here is the timesheet:\n{text(t)}\nLet me know if you need more.",
          rules="json_extracted", generic=True),
    shape("braces in the prose first", lambda t: f"The timesheet {{as requested}}: {text(t)}", rules="json_extracted"),
    shape("inside a list", lambda t: f"[{text(t)}]", rules="json_extracted", generic=True),
    shape("single quotes", lambda t: repr(t), rules="json_single_quotes", generic=True),
    shape("trailing commas", lambda t: text(t).replace("}", ", }").replace("]", ", ]"),
          rules="json_trailing_comma", generic=True),
    shape("comments", lambda t: "{\n  // read from the scan\n" + json.dumps(t, indent=2)[2:], rules="json_comment",
          generic=True),
    shape("unquoted keys", lambda t: re.sub(r'"(\w+)":', r"\1:", text(t)), rules="json_unquoted_key", generic=True),
    shape("Python literals", lambda t: repr(changed(t, legible=True)),
          rules="json_single_quotes json_python_literal unknown_key_dropped", generic=True),
    shape("missing comma", lambda t: text(t).replace(', "employee_id"', ' "employee_id"'),
          rules="json_missing_comma", generic=True),
    shape("closing brace missing", lambda t: text(t)[:-1], rules="json_unclosed", generic=True),
    shape("closing ]} missing after the last row", lambda t: text(keys_last(t, "entries"))[:-2],
          rules="json_unclosed", generic=True),
    shape("fence closes an unclosed object", lambda t: f"```json\n{text(t)[:-1]}\n```",
          rules="json_unclosed json_extracted", generic=True),
    shape("everything at once", lambda t: "Sure! " + text(rows(t, time_in=h12, time_out=h12, hours=comma))[:-1]
          .replace("}", ",}"), rules="json_extracted json_trailing_comma json_unclosed time_12h decimal_comma",
          generic=True),
    # --- values as models write them (both paths) ---
    shape("12-hour times", lambda t: rows(t, time_in=h12, time_out=h12), rules="time_12h", generic=True),
    shape("times without the leading zero", lambda t: rows(t, time_in=lambda v: v.lstrip("0")),
          rules="time_padded"),
    shape("times as 8h30", lambda t: rows(t, time_in=lambda v: v.replace(":", "h"),
                                          time_out=lambda v: v.replace(":", "h")),
          rules="time_separator", generic=True),
    shape("times as 08.30", lambda t: rows(t, time_out=lambda v: v.replace(":", ".")), rules="time_separator",
          generic=True),
    shape("times with zero seconds", lambda t: rows(t, time_in=lambda v: v + ":00", time_out=lambda v: v + ":00"),
          rules="time_seconds", generic=True),
    shape("US dates", lambda t: all_dates(t, us), rules="date_us", generic=True, dates=True),
    shape("day-first dates", lambda t: all_dates(t, dmy), rules="date_dmy", dates=True),
    shape("row dates as printed, MM/DD", lambda t: rows(t, date=month_day), rules="date_us date_year_from_week",
          generic=True, dates=True),
    shape("row dates with the weekday", lambda t: rows(t, date=weekday_month_day),
          rules="date_weekday date_us date_year_from_week", generic=True, dates=True),
    shape("dates with slashes, year first", lambda t: all_dates(t, lambda d: d.replace("-", "/")),
          rules="date_iso_form", generic=True, dates=True),
    shape("dates with month names", lambda t: all_dates(t, month_name), rules="date_month_name", generic=True,
          dates=True),
    shape("week ending read two ways, rows decide", lambda t: changed(t, week_ending=us(t["week_ending"])),
          rules="date_us", base=NOVEMBER),
    shape("every date read two ways, the week decides", lambda t: all_dates(t, us), rules="date_us", base=MARCH),
    shape("hours as strings", lambda t: changed(rows(t, hours=str), total_hours=str(t["total_hours"])),
          rules="number_from_string", generic=True),
    shape("decimal commas", lambda t: changed(rows(t, hours=comma), total_hours=comma(t["total_hours"])),
          rules="decimal_comma", generic=True),
    shape("hours with units", lambda t: changed(rows(t, hours=lambda h: f"{h:g}h"),
                                                total_hours=f"{t['total_hours']:g} hours"),
          rules="hours_unit", generic=True),
    shape("hours as h:mm", lambda t: rows(t, hours=clock), rules="hours_clock", generic=True),
    shape("names and ids padded", lambda t: changed(t, employee_name=f"  {t['employee_name']} ",
                                                    employee_id=f"{t['employee_id']} "),
          rules="text_trimmed", generic=True),
    shape("extra keys", lambda t: changed(t, notes="signed by supervisor"),
          rules="unknown_key_dropped", generic=True),
    shape("wrapped in a key", lambda t: {"timesheet": t}, rules="answer_unwrapped", generic=True),
    shape("rows as a JSON string", lambda t: changed(t, entries=json.dumps(t["entries"])),
          rules="value_from_json_string", generic=True),
    # --- read with certainty, then validation decides ---
    shape("12-hour time the model got wrong", lambda t: row(t, 0, time_out=h12(t["entries"][0]["time_out"])
                                                          .replace("PM", "AM")),
          "VALIDATION_ERROR:time_order", "time_12h"),
    shape("unambiguous date outside the week", lambda t: row(t, 1, date="10/15/2025"),
          "VALIDATION_ERROR:date_out_of_week", "date_us"),
    shape("total left null", lambda t: changed(t, total_hours=None), "VALIDATION_ERROR:missing_field"),
    shape("hours left null", lambda t: row(t, 0, hours=None), "VALIDATION_ERROR:missing_field"),
    # --- only a guess would read these: failures, with the attempt recorded ---
    shape("ambiguous date outside the week", lambda t: row(t, 1, date="03/04/2025"),
          "VALIDATION_ERROR:invalid_date", "date_unresolved"),
    shape("weekday contradicts the date", lambda t: row(t, 0, date="Tue 10/20"),
          "VALIDATION_ERROR:invalid_date", "date_unresolved"),
    shape("row date without year, week ending unreadable",
          lambda t: changed(rows(t, date=month_day), week_ending=None),
          "VALIDATION_ERROR:invalid_date", "date_unresolved"),
    shape("time fits neither clock", lambda t: row(t, 0, time_in="13:30 PM"),
          "VALIDATION_ERROR:invalid_time", "time_unresolved"),
    shape("hour 25", lambda t: row(t, 1, time_out="25:00"), "VALIDATION_ERROR:invalid_time", "time_unresolved"),
    shape("seconds that would be dropped", lambda t: row(t, 0, time_in="08:00:30"),
          "VALIDATION_ERROR:invalid_time", "time_unresolved"),
    shape("bare number as a time", lambda t: row(t, 0, time_in="8"), "VALIDATION_ERROR:invalid_time"),
    shape("hours in words", lambda t: row(t, 0, hours="eight"), "PARSING_ERROR:SchemaError"),
    shape("thousands separator in hours", lambda t: changed(t, total_hours="1,650"), "PARSING_ERROR:SchemaError"),
    shape("id as a number", lambda t: changed(t, employee_id=10472), "PARSING_ERROR:SchemaError"),
    shape("total missing", lambda t: without(t, "total_hours"), "PARSING_ERROR:SchemaError"),
    shape("rows not a list", lambda t: changed(t, entries=t["entries"][0]), "PARSING_ERROR:SchemaError"),
    shape("row as a line of text", lambda t: changed(t, entries=["Mon 10/20 08:00 16:30 8.0"]),
          "PARSING_ERROR:SchemaError"),
    shape("other keys entirely", lambda t: {"name": t["employee_name"], "rows": [], "total": t["total_hours"]},
          "PARSING_ERROR:SchemaError", "unknown_key_dropped"),
    shape("every field null (a blank page)", lambda t: {k: [] if k == "entries" else None for k in t},
          "PARSING_ERROR:NoTimesheet"),
    shape("cut inside a string", lambda t: cut(text(t), '"time_out"', 14), "PARSING_ERROR:JSONDecodeError"),
    shape("cut after a comma", lambda t: cut(text(t), '"total_hours"'), "PARSING_ERROR:JSONDecodeError"),
    shape("cut after a key", lambda t: cut(text(t), '"total_hours"', 13), "PARSING_ERROR:JSONDecodeError"),
    shape("cut inside the total", lambda t: cut(text(t), '5}'), "PARSING_ERROR:JSONDecodeError"),
    shape("cut inside the last hours", lambda t: text(keys_last(t, "entries"))[:-4], "PARSING_ERROR:JSONDecodeError"),
    shape("cut where the last hours lost a decimal", lambda t: text(keys_last(t, "entries"))[:-5],
          "VALIDATION_ERROR:total_mismatch", "json_unclosed"),  # 8.5 read as 8: the total rule catches it
    shape("no JSON at all", lambda t: "I cannot read this timesheet: the scan is too faint.",
          "PARSING_ERROR:JSONDecodeError"),
    shape("empty answer", lambda t: "", "PARSING_ERROR:JSONDecodeError"),
]

NO_TIMESHEET = {"text": "I cannot find a timesheet in this image.",  # what a model answers on a blank page
                "tool": {"employee_name": None, "employee_id": None, "week_ending": None, "entries": [],
                         "total_hours": None}}


def carried_by(s: Shape, path: str) -> bool:
    """Whether the answer path can carry the shape: the tool's input is always an object."""
    return path == "text" or isinstance(s.answer(s.truth()), dict)


def judge(s: Shape, record: dict[str, Any], truth: Sheet | None = None, expect: str | None = None) -> list[str]:
    """What in a stored record differs from what the shape must give; [] when read right."""
    truth, expect = truth or s.truth(), expect or s.expect
    wrong = []
    if expect == "OK":
        if record["RecordType"] != "OCR_RESULT":
            wrong.append(f"failed: {record.get('FailureType')} {record.get('ErrorCode')} {record.get('ErrorMessage')}")
        elif json.loads(record["ParsedTimesheet"]) != truth:
            wrong.append(f"read {record['ParsedTimesheet']}")
    else:
        failure_type, detail = expect.split(":")
        got = (record.get("FailureType"), record.get("ErrorCode"))
        if got[0] != failure_type:
            wrong.append(f"expected {expect}, got {record['RecordType']} {got}")
        elif failure_type == "VALIDATION_ERROR" and detail not in record.get("ValidationErrors", ""):
            wrong.append(f"expected {detail}, got {record.get('ValidationErrors')}")
        elif failure_type != "VALIDATION_ERROR" and got[1] != detail:
            wrong.append(f"expected {detail}, got {got[1]}")
    rules = set(Repairs.from_json(record.get("ParseRepairs")).rules())
    if rules != set(s.rules):
        wrong.append(f"repairs {sorted(rules)}, expected {sorted(s.rules)}")
    return wrong


def invented(s: Shape, record: dict[str, Any], truth: Sheet | None = None, expect: str | None = None) -> bool:
    """A value that is not the sheet's: a success where a failure was due, or a wrong timesheet."""
    if record["RecordType"] != "OCR_RESULT":
        return False
    return (expect or s.expect) != "OK" or json.loads(record["ParsedTimesheet"]) != (truth or s.truth())
