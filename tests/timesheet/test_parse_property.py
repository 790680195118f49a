"""Property: engine text of a random timesheet, damaged the way engines damage it, reads as the
truth or fails validation; it never reads as another timesheet that passes.

Damage: cells merged (a space lost) or split (a space after a separator), look-alike letters for
digits, separators lost or doubled, two rows on one line, a row over two lines. The timesheets
are drawn independently of the sample generator, so its habits do not hide a reader's mistake.
"""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocrlab.errors import ParsingError, ValidationFailure
from ocrlab.timesheet.model import check, parse_text

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LOOKALIKES = {"0": "O", "1": "l", "5": "S", "8": "B", "2": "Z", "6": "G", "9": "g"}
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hours_text(h: float) -> str:
    s = f"{h:.2f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


@st.composite
def timesheets(draw) -> tuple[dict, list[str], list[str], str]:
    """(truth, lines before the rows, row lines, total line)."""
    week_ending = draw(st.dates(date(2024, 1, 7), date(2027, 12, 31)))
    offsets = sorted(draw(st.sets(st.integers(0, 6), min_size=1, max_size=7)))
    entries, rows = [], []
    for off in offsets:
        day = week_ending - timedelta(days=6 - off)
        start = draw(st.integers(0, 80)) * 15
        span = draw(st.integers(1, min(64, (24 * 60 - 1 - start) // 15))) * 15
        rest = draw(st.sampled_from((0, 15, 30, 45, 60)))
        hours = (span - rest) / 60 if span > rest else span / 60
        t_in, t_out = f"{start // 60:02d}:{start % 60:02d}", f"{(start + span) // 60:02d}:{(start + span) % 60:02d}"
        entries.append({"date": day.isoformat(), "time_in": t_in, "time_out": t_out, "hours": hours})
        rows.append(f"{DAYS[day.weekday()]} {day.month:02d}/{day.day:02d} {t_in} {t_out} {hours_text(hours)}")
    total = round(sum(e["hours"] for e in entries), 2)
    name = draw(st.sampled_from(("Maria Gonzalez", "Wei Zhang", "Sean O'Brien", "Ana Smith-Jones")))
    emp_id = f"{draw(st.sampled_from('ECT'))}-{draw(st.integers(10000, 99999))}"
    truth = {"employee_name": name, "employee_id": emp_id, "week_ending": week_ending.isoformat(),
             "entries": entries, "total_hours": total}
    head = ["WEEKLY TIMESHEET", f"Employee: {name}  ID: {emp_id}", f"Week ending: {week_ending.isoformat()}",
            "Date In Out Hours"]
    return truth, head, rows, f"Total hours: {hours_text(total)}"


def _merge(row: str, k: int) -> str:
    spaces = [i for i, c in enumerate(row) if c == " "][1:]  # not between the weekday and the date
    return row if not spaces else row[:spaces[k % len(spaces)]] + row[spaces[k % len(spaces)] + 1:]


def _at(row: str, chars: str, k: int, edit) -> str:
    spots = [i for i, c in enumerate(row) if c in chars and i > 4]  # leave the weekday alone
    if not spots:
        return row
    i = spots[k % len(spots)]
    return row[:i] + edit(row[i]) + row[i + 1:]


DAMAGE = {
    "merge": _merge,
    "split": lambda row, k: _at(row, ":.", k, lambda c: c + " "),
    "confuse": lambda row, k: _at(row, "".join(LOOKALIKES), k, LOOKALIKES.get),
    "drop_separator": lambda row, k: _at(row, ":.", k, lambda c: ""),
    "double_separator": lambda row, k: _at(row, ":", k, lambda c: c + c),
    "break_line": lambda row, k: _at(row, " ", k, lambda c: "\n"),
}


@st.composite
def damaged(draw, sheet) -> tuple[dict, str]:
    truth, head, rows, total = sheet
    rows = list(rows)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(DAMAGE)))
        n = draw(st.integers(0, len(rows) - 1))
        rows[n] = DAMAGE[kind](rows[n], draw(st.integers(0, 40)))
    if len(rows) > 1 and draw(st.booleans()):  # two rows on one line
        n = draw(st.integers(0, len(rows) - 2))
        rows[n:n + 2] = [rows[n] + " " + rows[n + 1]]
    return truth, "\n".join(head + rows + [total])


def outcome(text: str) -> dict | None:
    try:
        return dict(check(parse_text(text)))
    except (ParsingError, ValidationFailure):
        return None


@SETTINGS
@given(st.data())
def test_damaged_text_reads_as_the_truth_or_fails(data):
    truth, text = data.draw(damaged(data.draw(timesheets())))
    read = outcome(text)
    assert read is None or read == truth, text


@SETTINGS
@given(st.data())
def test_undamaged_text_reads_as_the_truth(data):
    truth, head, rows, total = data.draw(timesheets())
    assert outcome("\n".join(head + rows + [total])) == truth


@st.composite
def invalid(draw) -> tuple[dict, list[str], list[str], str]:
    """A timesheet that breaks one rule: in and out swapped, a total off by 0.25 h or more, or
    hours above the row's span."""
    truth, head, rows, total = draw(timesheets())
    kind = draw(st.sampled_from(("swap", "total", "hours")))
    n = draw(st.integers(0, len(rows) - 1))
    day, date_text, t_in, t_out, hours = rows[n].split()
    if kind == "swap":
        rows[n] = f"{day} {date_text} {t_out} {t_in} {hours}"
    elif kind == "total":
        off = draw(st.sampled_from((-2.5, -1.0, -0.25, 0.25, 1.5, 3.0)))
        total = f"Total hours: {hours_text(truth['total_hours'] + off)}"
    else:
        span = (int(t_out[:2]) * 60 + int(t_out[3:]) - int(t_in[:2]) * 60 - int(t_in[3:])) / 60
        more = span + draw(st.sampled_from((0.25, 0.5, 1.0)))
        rows[n] = f"{day} {date_text} {t_in} {t_out} {hours_text(more)}"
        total = f"Total hours: {hours_text(truth['total_hours'] - float(hours) + more)}"
    return truth, head, rows, total


@SETTINGS
@given(st.data())
def test_an_invalid_timesheet_never_reads_as_valid_however_damaged(data):
    _, text = data.draw(damaged(data.draw(invalid())))
    assert outcome(text) is None, text
