"""Timesheet parsing (engine text and model JSON) and the rules of the reference timesheet."""
from __future__ import annotations

import copy

import pytest
from support.helpers import TIMESHEET

from ocrlab.errors import ParsingError, ValidationFailure
from ocrlab.taxonomy import FailureType, classify
from ocrlab.timesheet.model import check, parse_text, validate

REFERENCE = """WEEKLY TIMESHEET
Employee: Maria Gonzalez    ID: E-10472
Week ending: 2025-10-24
Date        In      Out     Hours
Mon 10/20   08:00   16:30   8.0
Tue 10/21   08:00   17:00   8.5
Total hours: 16.5
"""

PARSED = TIMESHEET


def sheet(**changes) -> dict:
    ts = copy.deepcopy(PARSED)
    ts.update(changes)
    return ts


# --- parse_text ------------------------------------------------------------------------------

def test_reference_text_parses_to_the_reference_form():
    assert parse_text(REFERENCE) == PARSED
    assert validate(parse_text(REFERENCE)) == []


def test_ocr_noise_in_digits_and_separators_is_tolerated():
    noisy = """WEEKLY TIMESHEET
Employee:Maria Gonzalez lD: E-1O472
Week ending 2O25-1O-24
Date In Out Hours
Mon l0/20 O8.00 16;30 8.O
Tue 10/2I 08:00 I7:00 8,5
Total hours: l6.5"""
    assert parse_text(noisy) == PARSED


def test_extra_header_and_footer_lines_and_odd_spacing_are_ignored():
    text = ("Northwind Logistics\nDepartment: Receiving\nForm TS-7 rev 3\n" + REFERENCE.replace("   ", " \t ")
            + "Employee signature: ________\nSubmit by Monday 10:00\nPage 1 of 1\n")
    assert parse_text(text) == PARSED


def test_rows_split_over_lines_and_merged_cells():
    split = """WEEKLY TIMESHEET
Employee: Maria Gonzalez
ID: E-10472
Week ending: 2025-10-24
Date In Out Hours
Mon 10/20
08:00 16:30
8.0
Tue10/21 08:0017:00 8.5
Total hours: 16.5"""
    assert parse_text(split) == PARSED


def test_a_week_across_new_year_dates_rows_in_the_previous_year():
    text = """WEEKLY TIMESHEET
Employee: Peter Brown ID: T-62470
Week ending: 2025-01-02
Date In Out Hours
Mon 12/30 08:00 12:00 4.0
Thu 01/02 08:00 12:00 4.0
Total hours: 8.0"""
    ts = parse_text(text)
    assert [e["date"] for e in ts["entries"]] == ["2024-12-30", "2025-01-02"]
    assert validate(ts) == []


def test_an_illegible_cell_is_missing_and_validation_names_it():
    ts = parse_text(REFERENCE.replace("17:00", "1#?x"))
    assert ts["entries"][1]["time_out"] is None and ts["entries"][1]["hours"] == 8.5
    with pytest.raises(ValidationFailure) as info:
        check(ts)
    assert "missing_field: entry 2 time_out" in info.value.validation_errors


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_a_parsing_error(text):
    with pytest.raises(ParsingError) as info:
        parse_text(text)
    assert classify(info.value)[0] is FailureType.PARSING_ERROR


@pytest.mark.parametrize("drop, named", [
    ("Total hours: 16.5", "'Total hours:'"),
    ("Week ending: 2025-10-24", "'Week ending:'"),
    ("    ID: E-10472", "'ID:'"),
    ("Mon 10/20   08:00   16:30   8.0\nTue 10/21   08:00   17:00   8.5", "table rows"),
])
def test_a_missing_piece_is_a_parsing_error_that_names_it(drop, named):
    with pytest.raises(ParsingError) as info:
        parse_text(REFERENCE.replace(drop, ""))
    assert named in str(info.value)
    assert info.value.raw_output == REFERENCE.replace(drop, "")


def test_text_that_is_not_a_timesheet_is_a_parsing_error():
    with pytest.raises(ParsingError) as info:
        parse_text("MEMO\nThe loading dock will be closed on 10/25 from 08:00 to 12:00.\nThank you.")
    assert info.value.code == "NoTimesheet"


# --- validate / check ------------------------------------------------------------------------

def test_valid_sheet_has_no_errors_and_check_returns_it():
    assert validate(PARSED) == []
    assert check(PARSED) is PARSED


def entry(n: int, **changes) -> dict:
    ts = copy.deepcopy(PARSED)
    ts["entries"][n].update(changes)
    return ts


@pytest.mark.parametrize("ts, rule", [
    (sheet(employee_id=None), "missing_field: employee_id"),
    (sheet(employee_name=""), "missing_field: employee_name"),
    (sheet(entries=[], total_hours=0.0), "missing_field: entries"),
    (entry(0, hours=None, time_in=None), "missing_field: entry 1 hours"),
    (sheet(week_ending="2025-02-30"), "invalid_date: week_ending"),
    (entry(1, date="2025-10-32"), "invalid_date: entry 2"),
    (entry(1, date="2025-10-12"),
     "date_out_of_week: entry 2 date 2025-10-12 not within 7 days ending 2025-10-24"),
    (entry(0, date="2025-10-25", hours=8.0), "date_out_of_week: entry 1"),
    (entry(0, time_in="8 am"), "invalid_time: entry 1 time_in"),
    (entry(0, time_out="25:00"), "invalid_time: entry 1 time_out"),
    (entry(0, hours=0.0, time_out="08:00"), "hours_range: entry 1"),
    (entry(0, hours=-1.0), "hours_range: entry 1"),
    (entry(0, time_in="16:30", time_out="08:00"), "time_order: entry 1"),
    (entry(1, hours=9.5, time_out="17:00"), "hours_exceed_span: entry 2"),
    (sheet(total_hours=17.0), "total_mismatch"),
    (entry(0, hours="8"), "invalid_number: entry 1 hours"),
])
def test_each_broken_rule_is_named(ts, rule):
    errors = validate(ts)
    assert any(e.startswith(rule) for e in errors), errors


def test_only_the_broken_rule_is_reported():
    assert validate(entry(0, time_in="16:30", time_out="08:00")) == [
        "time_order: entry 1 time_out 08:00 is not after time_in 16:30"]
    assert validate(sheet(total_hours=16.55)) == []  # within the 0.05 tolerance
    assert [e.split(":")[0] for e in validate(sheet(total_hours=20.0))] == ["total_mismatch"]


def test_hours_over_24_break_the_range_and_the_span():
    ts = entry(0, time_in="00:00", time_out="23:59", hours=25.0)
    ts["total_hours"] = 33.5
    assert [e.split(":")[0] for e in validate(ts)] == ["hours_range", "hours_exceed_span"]


def test_check_raises_validation_failure_with_every_error():
    bad = entry(1, date="2025-10-12", time_out="07:00")
    with pytest.raises(ValidationFailure) as info:
        check(bad)
    failure = info.value
    assert classify(failure) == (FailureType.VALIDATION_ERROR, "ValidationError")
    assert [e.split(":")[0] for e in failure.validation_errors] == ["date_out_of_week", "time_order"]
    assert all(e in str(failure) for e in failure.validation_errors)
