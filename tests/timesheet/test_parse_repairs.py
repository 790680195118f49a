"""The tolerant text reader: each repair on a line the strict reader got wrong, and what it never does.

Every case here is engine text seen on damaged scans (or its smallest form). The reference sheet
is the reference timesheet of docs/design.md; each case changes one line and expects the reference back, with the repair
named in ParseRepairs.
"""
from __future__ import annotations

import copy

import pytest
from support.helpers import TIMESHEET

from ocrlab.errors import ValidationFailure
from ocrlab.timesheet.model import check, parse_text, validate
from ocrlab.timesheet.repairs import Repairs

HEADER = "WEEKLY TIMESHEET\nEmployee: Maria Gonzalez    ID: E-10472\nWeek ending: 2025-10-24\n"
TABLE = "Date In Out Hours\n"
MON = "Mon 10/20 08:00 16:30 8.0\n"
TUE = "Tue 10/21 08:00 17:00 8.5\n"
TOTAL = "Total hours: 16.5\n"
REFERENCE = HEADER + TABLE + MON + TUE + TOTAL
PARSED = TIMESHEET


def read(text: str) -> tuple[dict, Repairs]:
    repairs = Repairs()
    return parse_text(text, repairs), repairs


@pytest.mark.parametrize("old, new, rule, field", [
    # letter/digit confusion in a numeric field
    (TUE, "Tue 10/21 08:00 17:00 B.5\n", "digit_confusion", "entries[2].hours"),
    (TUE, "Tue 10/21 O8:OO I7:OO 8.S\n", "digit_confusion", "entries[2].time_out"),
    # cells run together: date and time in, out and hours
    (TUE, "Tue 10/2108:00 17:00 8.5\n", "merged_tokens", "entries[2].time_in"),
    (TUE, "Tue10/2108:00 17:008.5\n", "merged_tokens", "entries[2].hours"),
    # one cell read in two pieces
    (TUE, "Tue 10/21 08:00 17:00 8. 5\n", "split_tokens", "entries[2].hours"),
    # a separator lost, doubled or read as another
    (TUE, "Tue 10/21 08:00 17:00 85\n", "missing_separator", "entries[2].hours"),
    (TUE, "Tue 10/21 08::00 17:00 8.5\n", "doubled_separator", "entries[2].time_in"),
    ("Week ending: 2025-10-24", "Week ending: 2025:10-24", "separator_confusion", "week_ending"),
    (TUE, "Tue 10721 08:00 17:00 8.5\n", "separator_confusion", "entries[2].date"),
    (TUE, "Tue 10/21 08:00 17:00 8/5\n", "separator_confusion", "entries[2].hours"),
    (TUE, "Tue 10/21 08:00 17±00 8.5\n", "separator_confusion", "entries[2].time_out"),
    # stray marks inside a value, an ID in lower case
    (TUE, "Tue 10/.21 08:00 17:00 8.5\n", "stray_punctuation", "entries[2].date"),
    ("Maria Gonzalez", "Maria.Gonzalez", "stray_punctuation", "employee_name"),
    ("E-10472", "e-10472", "letter_case", "employee_id"),
    # labels with spaces lost or letters misread
    (TOTAL, "Total-hours: 16.5\n", "label_spacing", "total_hours"),
    (TOTAL, "Tota1 h0urs: 16.5\n", "label_confusion", "total_hours"),
    ("Week ending", "Weck ending", "label_confusion", "week_ending"),
    # rows over two lines, two rows on one line
    (TUE, "Tue 10/21 08:00 17:00 8.\n5\n", "row_split", "entries[2]"),
    (MON + TUE, "Mon 10/20 08:00 16:30 8.0 Tue 10/2108:00 17:00 8.5\n", "rows_merged", "entries[2]"),
    # noise between cells, and lines in the table that are not rows
    (TUE, "Tue 10/21 08:00 17:00 7 8.5\n", "noise_skipped", "entries[2].hours"),
    (TUE, "Tue 10/21 108:00 17:00 8.5\n", "noise_skipped", "entries[2].time_in"),
    (TUE, "Tue 10/21 08:00 17:00PA8.5\n", "noise_skipped", "entries[2]"),
    (TABLE, TABLE + "APPROVED 10/25\n", "header_footer_skipped", "entries"),
])
def test_each_repair_reads_the_reference_and_is_recorded(old, new, rule, field):
    text = REFERENCE.replace(old, new)
    assert text != REFERENCE
    ts, repairs = read(text)
    assert ts == PARSED, repairs
    assert (rule, field) in {(r.rule, r.field) for r in repairs}, [str(r) for r in repairs]
    assert validate(ts) == []


def test_columns_in_another_order_follow_the_header():
    text = REFERENCE.replace(TABLE, "Date Hours In Out\n").replace(MON, "Mon 10/20 8.0 08:00 16:30\n") \
        .replace(TUE, "Tue 10/21 8.5 08:00 17:00\n")
    ts, repairs = read(text)
    assert ts == PARSED
    assert ("column_order", "entries") in {(r.rule, r.field) for r in repairs}


def test_the_total_chooses_between_readings_of_a_row():
    """'100' is 10.0 or 1.00 hours; both fit 08:00-18:00, only 10.0 adds up to the total."""
    text = REFERENCE.replace(MON, "Mon 10/20 08:00 18:00 100\n").replace(TOTAL, "Total hours: 18.5\n")
    ts, repairs = read(text)
    assert ts["entries"][0]["hours"] == 10.0 and validate(ts) == []
    [choice] = [r for r in repairs if r.rule == "constraint_choice"]
    assert choice.field == "entries[1]" and "10" in choice.after and "|" in choice.before


def test_the_rows_choose_between_readings_of_the_total():
    ts, repairs = read(REFERENCE.replace(TOTAL, "Total hours: 165\n"))
    assert ts == PARSED
    assert ("missing_separator", "total_hours") in {(r.rule, r.field) for r in repairs}


def test_the_weekday_chooses_the_date():
    """'10721' is 10/21 with the slash read as 7 only because the row says Tue (2025-10-21)."""
    ts, _ = read(REFERENCE.replace(TUE, "Tue 10721 08:00 17:00 8.5\n"))
    assert ts["entries"][1]["date"] == "2025-10-21"
    ts, _ = read(REFERENCE.replace(TUE, "Fri 10721 08:00 17:00 8.5\n"))
    assert ts["entries"][1]["date"] != "2025-10-21"


# --- never a value that was not there ---------------------------------------------------------

def test_a_cell_under_a_stamp_stays_missing_and_the_row_is_quoted():
    ts, _ = read(REFERENCE.replace(TUE, "Tue 10/21 08:00 17:00 4.PVED\n"))
    assert ts["entries"][1]["hours"] is None
    with pytest.raises(ValidationFailure) as info:
        check(ts)
    assert "missing_field: entry 2 hours" in info.value.validation_errors
    assert "'Tue 10/21 08:00 17:00 4.PVED'" in str(info.value)


def test_letters_before_a_cell_keep_it_unread():
    """'EN7:00' may be a stamp over the 1 of 17:00: the cell is not read as 07:00."""
    ts, _ = read(REFERENCE.replace(TUE, "Tue 10/21 08:00 EN7:00 8.5\n"))
    assert ts["entries"][1]["time_out"] is None
    with pytest.raises(ValidationFailure):
        check(ts)


def test_readings_the_total_cannot_settle_stay_unread():
    """Both '100' rows could be 10.0 or 1.00: (10, 1) and (1, 10) add up alike, so neither is taken."""
    text = REFERENCE.replace(MON, "Mon 10/20 08:00 18:00 100\n").replace(TUE, "Tue 10/21 08:00 18:00 100\n") \
        .replace(TOTAL, "Total hours: 11.0\n")
    ts, repairs = read(text)
    assert [e["hours"] for e in ts["entries"]] == [None, None]
    assert "constraint_choice" not in repairs.rules()
    with pytest.raises(ValidationFailure):
        check(ts)


def test_a_row_whose_date_was_lost_is_an_unread_entry_not_dropped():
    text = REFERENCE.replace(TUE, "13:45 4.5\n" + TUE).replace(TOTAL, "Total hours: 21.0\n")
    ts, _ = read(text)
    assert len(ts["entries"]) == 3 and ts["entries"][1] == dict.fromkeys(("date", "time_in", "time_out", "hours"))
    with pytest.raises(ValidationFailure) as info:
        check(ts)
    assert "'13:45 4.5'" in str(info.value)


@pytest.mark.parametrize("old, new, rule", [
    (TUE, "Tue 10/21 17:00 08:00 8.5\n", "time_order"),          # in and out swapped
    (TUE, "Wed 10/15 08:00 17:00 8.5\n", "date_out_of_week"),    # nine days before the week ending
    (TOTAL, "Total hours: 19.5\n", "total_mismatch"),
    (TUE + TOTAL, "Tue 10/21 08:00 17:00 9.5\nTotal hours: 17.5\n", "hours_exceed_span"),
])
def test_an_invalid_timesheet_is_read_as_printed_and_stays_invalid(old, new, rule):
    ts, repairs = read(REFERENCE.replace(old, new))
    assert "constraint_choice" not in repairs.rules()
    with pytest.raises(ValidationFailure) as info:
        check(ts)
    assert [e.split(":")[0] for e in info.value.validation_errors] == [rule]


def test_names_keep_their_own_punctuation():
    for name in ("Sean O'Brien", "Ana Smith-Jones"):
        ts, repairs = read(REFERENCE.replace("Maria Gonzalez", name))
        assert ts["employee_name"] == name and not repairs


def test_the_parsed_form_is_a_plain_mapping():
    ts, _ = read(REFERENCE)
    assert ts == PARSED and copy.deepcopy(dict(ts)) == PARSED
    assert ts.row_text == ["Mon 10/20 08:00 16:30 8.0", "Tue 10/21 08:00 17:00 8.5"]
