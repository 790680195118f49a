"""Reading the reference timesheet from a local engine's text, tolerant of OCR damage.

The labels locate the pieces (Employee, ID, Week ending, the table header, Total hours), found
in any case, with spaces lost or added and look-alike letters; the table rows are found by
their dates (or a weekday with a date run into it) wherever the engine put the line breaks,
and each row is read by `row_reader`, whose readings the timesheet's own rules choose between.

Every change made to read a value is recorded in `repairs` (stored as `ParseRepairs`). Field
names: `employee_name`, `employee_id`, `week_ending`, `total_hours`, `entries` (the table as
a whole) and `entries[n].date|time_in|time_out|hours` (n counted from 1, as in validation). Rules:

- `digit_confusion`: a look-alike letter read for a digit (O/o/D/Q -> 0, l/I/i/| -> 1, S -> 5,
  B -> 8, Z -> 2, G/b -> 6, g/q -> 9, T -> 7), only inside a token that holds a digit;
- `merged_tokens`: two cells run together ("12/2507:45", "18:159.0"), or a name's words;
- `split_tokens`: one cell read in pieces ("08: 00");
- `missing_separator`: a time, date, hours or ID without its ':', '/', '.' or '-' ("0800", "725");
- `doubled_separator`: "08::00"; `separator_confusion`: another separator ("08.00", "2025:10-24");
- `stray_punctuation`: a mark inside a value ("11/.13", "David'Petrova");
- `letter_case`: an ID's letters printed in capitals and read in lower case;
- `label_spacing`: a label with spaces lost or added or its case changed ("Totalhours");
  `label_confusion`: a label with a letter misread ("Tota1 h0urs", "Week endlng");
- `row_split`: a row's cells over several lines; `rows_merged`: two rows on one line;
- `column_order`: the header puts the columns in another order than In, Out, Hours;
- `noise_skipped`: words in a row that cannot be cells (a stamp, a tick read as text);
- `header_footer_skipped`: a line between the header and the total that is not a row;
- `constraint_choice`: the text allows several values and only one satisfies the timesheet's
  rules together with the stated total (before: the candidates, after: the one taken).

A value that no reading gets from the characters stays None (`missing_field` in validation);
the returned mapping carries each row's text as printed (`row_text`), which `check` quotes.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from ocrlab.errors import ParsingError
from ocrlab.timesheet.ocr_text import LOOKALIKE_CLASS, fold, has_lookalike, label_pattern, label_rule, to_digits
from ocrlab.timesheet.repairs import Repairs
from ocrlab.timesheet.row_reader import (
    DAYS,
    STANDARD_ORDER,
    TIME_LIKE,
    Reading,
    RowChoice,
    RowContext,
    choose,
    choose_by_total,
    read_row,
)

_L = f"[{LOOKALIKE_CLASS}]"
_EMPLOYEE = label_pattern("Employee")
# "ID", also as engines misread it ("lD", "1D", "10") when an ID-shaped value follows.
_ID = re.compile(r"(?:(?<![A-Za-z0-9])(?:[Il1|i][Dd]|[Il1|][0O](?=\s*[:;.]?\s*[A-Za-z]{1,3}\s?-?\s?\d))"
                 r"|(?<=[a-z])ID(?=\s*[:;.]))(?![A-Za-z0-9])")  # also run into the name: "MartinID:"
_WEEK = label_pattern("Week ending")
_DATE_HEADER = label_pattern("Date")
_HOURS_HEADER = label_pattern("Hours")
_TOTAL = label_pattern("Total hours")
_JUNK = r"[\s:;.,'\"`~_=|]*"
_DATE_SEP = r"(\s?[-\u2010-\u2015~:.,/;]?\s?)"
_WEEK_DATE = re.compile(rf"{_JUNK}({_L}{{4}}){_DATE_SEP}({_L}{{1,2}}){_DATE_SEP}({_L}{{1,2}})(?![0-9])")
_ID_VALUE = re.compile(rf"{_JUNK}([A-Za-z]{{1,3}})(\s?[-\u2010-\u2015~.]?\s?)({_L}*\d{_L}*)(?![A-Za-z0-9])")
_TOTAL_VALUE = re.compile(rf"{_JUNK}({_L}{{1,3}})(?:(\s?[.,:;]{{1,2}}\s?)({_L}{{1,2}}))?(?![0-9])")
_ROW_DATE = re.compile(rf"(?<![0-9])({_L}{{1,2}})\s?[/\\]\s?[.,'`]?\s?(?={_L})")
_DAY_WORD = re.compile(r"([A-Za-z0-9|]{2,4})[.,:]?\s?$")
_LETTERS_FROM_DIGITS = str.maketrans({"0": "o", "1": "i", "l": "i", "|": "i", "5": "s"})


class TextTimesheet(dict):
    """The parsed form (a plain dict to every reader) plus the printed text of each entry."""

    row_text: list[str]


def _number(text: str) -> float:
    return float(re.sub(r"[,:;]", ".", to_digits(re.sub(r"\s", "", text))))


# --- header ------------------------------------------------------------------------------------

def _label(pattern: re.Pattern[str], folded: str, canonical: str, field: str, repairs: Repairs,
           start: int = 0) -> re.Match[str] | None:
    m = pattern.search(folded, start)
    if m and (rule := label_rule(m.group(0), canonical)):
        repairs.add(rule, field, m.group(0), canonical)
    return m


def _name(raw: str, repairs: Repairs) -> str | None:
    name = re.sub(r"\s+", " ", raw).strip(" :;.,~_=|-\u2014'`\"\u00b7")
    cleaned = re.sub(r"(?<=[A-Za-z])[.,;:_\u00b7]+(?=[A-Za-z])", " ", name)
    # "David'Petrova": an apostrophe after a word of 3+ letters, before a capital, was a space
    # (O'Brien and D'Angelo keep theirs).
    cleaned = re.sub(r"(?<=[A-Za-z][a-z]{2})'(?=[A-Z])", " ", cleaned)
    if cleaned != name:
        repairs.add("stray_punctuation", "employee_name", name, cleaned)
    if " " not in cleaned and len(re.findall(r"[a-z][A-Z]", cleaned)) == 1:
        split = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cleaned)  # "MariaGonzalez": one name, two words
        repairs.add("merged_tokens", "employee_name", cleaned, split)
        cleaned = split
    return cleaned or None


def _employee_id(after: str, repairs: Repairs) -> str | None:
    m = _ID_VALUE.match(after)
    if not m:
        return after.split()[0].strip(".,;:") if after.split() else None
    letters, sep, digits = m.group(1), m.group(2).strip(), m.group(3)
    value = f"{letters.upper()}-{to_digits(digits)}"
    for rule, seen in (("letter_case", letters != letters.upper()), ("digit_confusion", has_lookalike(digits)),
                       ("missing_separator", not sep), ("separator_confusion", sep not in ("", "-"))):
        if seen:
            repairs.add(rule, "employee_id", m.group(0).strip(), value)
    return value


def _week_ending(folded: str, start: int, repairs: Repairs) -> tuple[date | None, int]:
    m = _WEEK_DATE.match(folded, start)
    if not m:
        return None, start
    y, mo, d = (int(to_digits(m.group(i))) for i in (1, 3, 5))
    try:
        value = date(y, mo, d)
    except ValueError:
        return None, m.end()
    seen = m.group(0).strip(" :;.,'\"`~_=|")
    seps = {m.group(2).strip(), m.group(4).strip()}
    for rule, hit in (("digit_confusion", has_lookalike(m.group(1) + m.group(3) + m.group(5))),
                      ("missing_separator", "" in seps), ("separator_confusion", bool(seps - {"", "-"}))):
        if hit:
            repairs.add(rule, "week_ending", seen, value.isoformat())
    return value, m.end()


def _total(folded: str, start: int) -> tuple[list[float], str, tuple[str, ...]]:
    """(readings of the stated total, literal first; the text; rules of the literal reading)."""
    m = _TOTAL_VALUE.match(folded, start)
    if not m:
        return [], "", ()
    whole, sep, frac = m.group(1), m.group(2), m.group(3)
    seen = m.group(0).strip(" :;.,'\"`~_=|")
    rules = ("digit_confusion",) if has_lookalike(whole + (frac or "")) else ()
    if sep is not None:
        sep_rules = () if sep.strip() == "." else ("separator_confusion",)
        return [_number(whole + "." + frac)], seen, rules + sep_rules
    digits = to_digits(whole)
    options = [float(digits)] + [float(f"{digits[:k]}.{digits[k:]}") for k in range(1, len(digits))
                                 if len(digits) - k <= 2]
    return options, seen, rules


# --- table -------------------------------------------------------------------------------------

def _column_order(header: str, repairs: Repairs) -> tuple[str, ...]:
    """The columns after Date in the header's order ("Date Hours In Out"), standard if unclear."""
    words = header.lower().translate(_LETTERS_FROM_DIGITS)
    hours, time_out = re.search(r"h\S?(?:ou|o|u)r|hrs", words), re.search(r"out", words)
    if hours is None or time_out is None:
        return STANDARD_ORDER
    spots = {"hours": hours, "time_out": time_out}
    taken = [hours.span(), time_out.span()]
    inn = next((m for m in re.finditer(r"in", words) if not any(a <= m.start() < b for a, b in taken)), None)
    if inn is None:
        return STANDARD_ORDER
    order = tuple(sorted(("time_in", "time_out", "hours"),
                         key=lambda f: inn.start() if f == "time_in" else spots[f].start()))
    if order != STANDARD_ORDER:
        repairs.add("column_order", "entries", header.strip(), " ".join(order))
    return order


def _weekday(before: str) -> tuple[str | None, int]:
    """The weekday printed just before a row's date ("Fr1" reads as fri), and where it starts."""
    m = _DAY_WORD.search(before)
    if not m:
        return None, len(before)
    word = m.group(1).lower().translate(_LETTERS_FROM_DIGITS)
    day = next((d for d in DAYS if word == d or (len(word) == 3 and sum(a != b for a, b in zip(word, d)) <= 1
                                                  and word[0] == d[0])), None)
    return (day, m.start()) if day else (None, len(before))


def _anchors(region: str, week_ending: date | None) -> list[tuple[int, int, str | None]]:
    """(row start, date start, weekday) of every row: a plausible month/day with a slash, or a
    weekday with digits run into it ("Mon 122909:45")."""
    ctx = RowContext(week_ending)
    found: dict[int, tuple[int, int, str | None]] = {}
    for m in _ROW_DATE.finditer(region):
        line_start = region.rfind("\n", 0, m.start()) + 1
        day, offset = _weekday(region[max(line_start, m.start() - 8):m.start()])
        start = max(line_start, m.start() - 8) + offset if day else m.start()
        days = re.match(rf"{_L}{{1,2}}", region[m.end():])
        if days and _plausible(ctx, int(to_digits(m.group(1))), to_digits(days.group(0)), day):
            found[m.start()] = (start, m.start(), day)
    for m in re.finditer(r"(?<![A-Za-z])(mon|tue|wed|thu|fri|sat|sun)[.,:]?\s?(?=\d{3})", region, re.IGNORECASE):
        if not any(s <= m.end() + 2 and d >= m.start() for s, d, _ in found.values()):
            found[m.end()] = (m.start(), m.end(), m.group(1).lower())
    return sorted(found.values())


def _plausible(ctx: RowContext, month: int, day_digits: str, weekday: str | None) -> bool:
    """A row starts here if the month/day (the day may run into the next cell) is a real date,
    inside the week unless a weekday is printed beside it: a row dated outside its week is still
    a row, to be reported, but a bare "10/25" in a stamp is not one."""
    if ctx.week_ending is None:  # no year to date it by: any month/day starts a row, read as undated
        return 1 <= month <= 12 and 1 <= int(day_digits) <= 31
    for n in range(1, len(day_digits) + 1):
        iso = ctx.resolve(month, int(day_digits[:n]))
        if iso and (weekday or 0 <= (ctx.week_ending - date.fromisoformat(iso)).days <= 6):
            return True
    return False


def _unread(text: str) -> bool:
    """Text between rows that holds a time: a row whose date was lost, not noise."""
    return bool(TIME_LIKE.search(to_digits(text)))


def _empty_entry() -> dict[str, Any]:
    return {"date": None, "time_in": None, "time_out": None, "hours": None}


def _entry(reading: Reading | None) -> dict[str, Any]:
    if reading is None:
        return _empty_entry()
    return {k: reading.cells[k].value if k in reading.cells else None for k in ("date", "time_in", "time_out", "hours")}


def _record(repairs: Repairs, i: int, reading: Reading) -> None:
    for name, cell in reading.cells.items():
        for rule in cell.rules:
            repairs.add(rule, f"entries[{i + 1}].{name}", cell.text, cell.value)


def _undecided(choice: RowChoice) -> dict[str, Any]:
    """An ambiguous row the total could not settle: the fields its readings agree on, None elsewhere."""
    entries = [_entry(r) for r in choice.alternatives]
    return {k: entries[0][k] if all(e[k] == entries[0][k] for e in entries) else None for k in entries[0]}


def _describe(reading: Reading) -> str:
    return " ".join("-" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in reading.values())


# --- the timesheet -----------------------------------------------------------------------------

def parse_text(text: str, repairs: Repairs | None = None) -> dict[str, Any]:
    """The parsed timesheet from a local engine's text lines (in reading order).

    If a label is absent (Employee, ID, Week ending, Total hours) or no table row is found, no
    timesheet could be read and ParsingError names what is missing. A value that is there but
    no reading of it fits becomes None or stays as printed, and `validate` reports it.
    Row dates get their year from week_ending (the nearest year, for weeks across new year).
    Each repair made to read it is appended to `repairs` when given.
    """
    if not text or not text.strip():
        raise ParsingError("no text: the engine found nothing to read", code="EmptyOutput", raw_output=text)
    repairs = repairs if repairs is not None else Repairs()
    printed = "\n".join(line for line in (re.sub(r"[ \t\f\v]+", " ", raw).strip() for raw in text.splitlines()) if line)
    folded = fold(printed)

    employee = _label(_EMPLOYEE, folded, "Employee", "employee_name", repairs)
    id_m = _ID.search(folded, employee.end()) if employee else _ID.search(folded)
    week = _label(_WEEK, folded, "Week ending", "week_ending", repairs, employee.end() if employee else 0)
    if id_m and week and week.start() < id_m.start():
        id_m = None  # an "ID" after the week ending is not the employee's
    name = emp_id = None
    if employee:
        ends = [m.start() for m in (id_m, week) if m]
        name = _name(printed[employee.end():min(ends, default=len(printed))], repairs)
    if id_m:
        if id_m.group(0) != "ID":
            repairs.add("label_confusion", "employee_id", id_m.group(0), "ID")
        elif folded[id_m.start() - 1:id_m.start()].isalpha():
            repairs.add("label_spacing", "employee_id", folded[id_m.start() - 1:id_m.end()], "ID")
        emp_id = _employee_id(folded[id_m.end():week.start() if week else len(folded)], repairs)
    week_ending, table_start = _week_ending(folded, week.end(), repairs) if week else (None, 0)

    total_m = _label(_TOTAL, folded, "Total hours", "total_hours", repairs, table_start)
    table_end = total_m.start() if total_m else len(folded)
    header = _DATE_HEADER.search(folded, table_start, table_end)
    order: tuple[str, ...] = STANDARD_ORDER
    if header:
        line_end = folded.find("\n", header.end())
        line_end = table_end if line_end < 0 else min(line_end, table_end)
        hours_m = _HOURS_HEADER.search(folded, header.end(), line_end)
        if hours_m or re.search(r"out", folded[header.end():line_end], re.IGNORECASE):
            order = _column_order(folded[header.start():line_end], repairs)
            table_start = line_end
    entries, row_text = _rows(folded[table_start:table_end], printed[table_start:table_end],
                              week_ending, order, repairs)

    missing = [what for what, seen in (
        ("'Employee:'", employee), ("'ID:'", id_m), ("'Week ending:'", week),
        ("table rows (date, in, out, hours)", entries), ("'Total hours:'", total_m)) if not seen]
    if missing:
        code = "NoTimesheet" if len(missing) >= 3 else "IncompleteTimesheet"
        raise ParsingError(f"no timesheet could be read: missing {', '.join(missing)}", code=code, raw_output=text)

    assert total_m is not None
    totals, total_text, total_rules = _total(folded, total_m.end())
    total = _settle(entries, totals, total_text, total_rules, repairs)
    sheet = TextTimesheet(employee_name=name, employee_id=emp_id,
                          week_ending=week_ending.isoformat() if week_ending else None,
                          entries=[_entry(c.reading) if isinstance(c, RowChoice) and not c.alternatives
                                   else _undecided(c) if isinstance(c, RowChoice) else c for c in entries],
                          total_hours=total)
    sheet.row_text = row_text
    return sheet


def _rows(region: str, printed: str, week_ending: date | None, order: tuple[str, ...],
          repairs: Repairs) -> tuple[list[RowChoice | dict[str, Any]], list[str]]:
    """Each row's choice (or an empty entry for a row that could not be read) and its text."""
    anchors = _anchors(region, week_ending)
    entries: list[RowChoice | dict[str, Any]] = []
    texts: list[str] = []
    lead = region[:anchors[0][0]] if anchors else region
    for line in printed[:len(lead)].split("\n"):
        if line.strip() and re.search(r"[A-Za-z0-9]", line):
            if _unread(line):
                entries.append(_empty_entry())
                texts.append(line.strip())
            else:
                repairs.add("header_footer_skipped", "entries", line.strip(), "")
    for n, (start, date_start, weekday) in enumerate(anchors):
        end = anchors[n + 1][0] if n + 1 < len(anchors) else len(region)
        i = len(entries)
        raw = printed[start:end].strip()
        if n and "\n" not in region[anchors[n - 1][0]:start]:
            repairs.add("rows_merged", f"entries[{i + 1}]", printed[anchors[n - 1][0]:end].strip(), "two rows")
        if "\n" in raw:
            repairs.add("row_split", f"entries[{i + 1}]", raw, raw.replace("\n", " "))
        ctx = RowContext(week_ending, weekday, order)
        readings, dropped = read_row(region[date_start:end], ctx)
        choice = choose(readings, ctx)
        if not (choice and choice.fits) and re.search(r"[0-9.:][A-Za-z]", region[date_start:end]):
            # letters run into a cell (a stamp): read without them, taken only if the row then fits
            lenient_readings, lenient_dropped = read_row(region[date_start:end], ctx, lenient=True)
            lenient = choose(lenient_readings, ctx)
            if lenient and lenient.fits:
                choice, dropped = lenient, lenient_dropped
        entries.append(choice if choice else _empty_entry())
        texts.append(raw.replace("\n", " "))
        for word in dropped:
            repairs.add("noise_skipped", f"entries[{i + 1}]", word, "")
        tail = choice.reading.tail if choice and not choice.alternatives else ""
        if tail and _unread(tail):
            entries.append(_empty_entry())  # a row whose date was lost, run into this one
            texts.append(tail)
        elif tail:
            repairs.add("noise_skipped", f"entries[{i + 1}]", tail, "")
    return entries, texts


def _settle(entries: list[RowChoice | dict[str, Any]], totals: list[float], total_text: str,
            total_rules: tuple[str, ...], repairs: Repairs) -> float | None:
    """Record each row's repairs, let the stated total choose between readings, return the total."""
    rows = [e for e in entries if isinstance(e, RowChoice)]
    index = {id(e): i for i, e in enumerate(entries)}
    chosen = choose_by_total(rows, totals) if totals and any(r.alternatives for r in rows) else None
    for k, row in enumerate(rows):
        i = index[id(row)]
        if row.alternatives and chosen and k in chosen:
            repairs.add("constraint_choice", f"entries[{i + 1}]", " | ".join(_describe(r) for r in row.alternatives),
                        _describe(chosen[k]))
            row.reading, row.alternatives = chosen[k], []
        if not row.alternatives:
            _record(repairs, i, row.reading)
    if not totals:
        return None
    total = totals[0]
    if len(totals) > 1:  # "165": which reading is the sum of the rows that were read
        known = [e for e in entries if isinstance(e, RowChoice) and not e.alternatives]
        if len(known) == len(entries) and all(r.reading.cells["hours"].value is not None for r in known):
            hours = sum(r.reading.cells["hours"].value for r in known)
            fitting = [t for t in totals if abs(t - hours) <= 0.05 + 1e-9]
            if len(fitting) == 1 and fitting[0] != totals[0]:
                repairs.add("missing_separator", "total_hours", total_text, f"{fitting[0]:g}")
                total = fitting[0]
    for rule in total_rules:
        repairs.add(rule, "total_hours", total_text, f"{total:g}")
    return total
