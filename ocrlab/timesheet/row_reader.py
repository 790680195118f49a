"""Every way the text of one table row can be read, and which of them the timesheet allows.

A row's text (from its date to the next row's) is cleaned of what cannot be a cell, then read
field by field (date, then the columns in the header's order) with every split the characters
allow: cells run together ("12/2507:45"), a time without its colon ("0800"), hours without
their point ("725"), a grid line read as "|". Each reading carries the repairs it needed.

`choose` keeps the readings that satisfy the row's own rules (a date inside the week and on the
weekday printed beside it, time out after time in, 0 < hours <= out - in). One fitting value
is taken; several go on to the stated total (`choose_by_total`); none leaves the plainest
reading, which validation then rejects with the row's text quoted. Nothing is ever filled in:
a cell that no reading gets from the characters stays None.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import product
from typing import Any, Iterator

from ocrlab.timesheet.ocr_text import DIGIT_LOOKALIKES, to_digits

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STANDARD_ORDER = ("time_in", "time_out", "hours")
MAX_READINGS = 400      # per variant; a row is ~20 characters: more readings than this is noise
MAX_COMBINATIONS = 4096
TOTAL_TOLERANCE = 0.05
# A clock time as engines print it; hours ("8.75") have a point, so a point does not count.
TIME_LIKE = re.compile(r"\d{1,2}\s?[:;]\s?\d{2}")
_JUNK_BETWEEN = re.compile(r"[\s.,;:'\"`/\\_=~\-]*")
# A date's slash may be read as 7 or 1 ("06727"); a tick or grid line before a time as a 1
# ("107:00", which no clock shows); an hours point as a slash ("4/25").
_DATE = re.compile(r"(\d{1,2})(\s?/\s?[.,'`]?\s?|[-.71]|)(\d{1,2})")
_TIME = re.compile(r"(1(?=\d{2}[:.;,]))?(\d{1,2})(\s?[:.;,]{1,2}\s?|[±÷*+]|)(\d{2})")
_HOURS = re.compile(r"(\d{1,2})(?:(\s?[.,:;/]{1,2}\s?)(\d{1,2}))?")
_STRAY_ONE_HOURS = re.compile(r"1(?=\d[.,:;]\d)")  # "17.75": a tick before 7.75 (or 17.75 itself)


@dataclass(frozen=True)
class Cell:
    """One field as read: its value (None when no reading of the text gives one), the text it
    came from, and the repair rules that reading needed."""

    value: Any
    text: str
    rules: tuple[str, ...] = ()


@dataclass
class Reading:
    """One complete reading of a row: a cell per field, and what was left after the last."""

    cells: dict[str, Cell]
    tail: str = ""

    def values(self) -> tuple[Any, ...]:
        return tuple(c.value for c in self.cells.values())

    @property
    def cost(self) -> tuple[int, int]:
        """(unread cells, repairs): the plainest reading has the least of both."""
        return (sum(c.value is None for c in self.cells.values()),
                sum(len(c.rules) for c in self.cells.values()))


@dataclass
class RowChoice:
    """What `choose` made of one row: the reading taken, or the fitting ones still in the race."""

    reading: Reading
    fits: bool
    alternatives: list[Reading] = field(default_factory=list)  # distinct fitting values, > 1


# --- cleaning ---------------------------------------------------------------------------------

def clean(segment: str, lenient: bool = False) -> tuple[list[str], str, list[str]]:
    """(variants of the row text to read, the text as printed, junk words dropped).

    Variants and the printed text have the same length, so a cell's characters can be quoted
    as printed. Words with a digit keep their digits and separators, and look-alike letters in
    them become digits. A word with any other letter ("PAID", "C4.7BY": a stamp over a cell) is
    unreadable: it becomes "#"s, which only the unreadable-cell option takes. Words without a
    digit are dropped. A "|" is either a 1 or a grid line: both variants are read.

    `lenient` reads a word with letters after its digits ("14:00PA4.5", "7.25ED": a stamp
    beside a cell) as its digits with the letters dropped. Letters before the digits keep the
    word unreadable: they may cover a digit ("EN6:15" printed 16:15).
    """
    words, printed, dropped = [], [], []
    for word in segment.split():
        core = word.strip("()[]{}'\"`_=~-\u2010\u2011\u2012\u2013\u2014\u2015")
        if not any(ch.isdigit() for ch in core):
            if core.strip(".,;:/-|"):
                dropped.append(word)
            continue
        printed.append(core)
        if lenient:
            core = _TRAILING_LETTERS.sub(lambda m: _blank_stamp(m.group(0), dropped), core)
        if any(ch.isalpha() and ch not in DIGIT_LOOKALIKES for ch in core):
            words.append("#" * len(core))
        else:
            words.append(to_digits(core.replace("|", "\x00")).replace("\x00", "|"))
    text, original = " ".join(words), " ".join(printed)
    variants = [text]
    for i in [m.start() for m in re.finditer(r"\|", text)][:4]:
        variants = [v[:i] + rep + v[i + 1:] for v in variants for rep in (" ", "1")]  # grid lines first
    return variants, original, dropped


_TRAILING_LETTERS = re.compile(r"(?<=[0-9.:,;/])[A-Za-z]+")


def _blank_stamp(letters: str, dropped: list[str]) -> str:
    """Letters that are not all digit look-alikes become spaces (same length); others stay."""
    if all(ch in DIGIT_LOOKALIKES for ch in letters):
        return letters
    dropped.append(letters)
    return " " * len(letters)


# --- field matchers ---------------------------------------------------------------------------

def _rules(printed: str, sep: str, standard_sep: str) -> tuple[str, ...]:
    rules = []
    if any(ch in DIGIT_LOOKALIKES and ch != "|" for ch in printed):
        rules.append("digit_confusion")
    if not sep:
        rules.append("missing_separator")
    elif sep.strip() and sep.strip() != standard_sep:
        rules.append("doubled_separator" if len(sep.strip()) > 1 and len(set(sep.strip())) == 1
                     else "separator_confusion")
    if sep != sep.strip() and sep.strip():
        rules.append("split_tokens")
    return tuple(rules)


def _match_date(text: str, printed: str, pos: int, ctx: RowContext) -> Iterator[tuple[Cell, int]]:
    for m in _iter_prefixes(_DATE, text, pos):
        iso = ctx.resolve(int(m.group(1)), int(m.group(3)))
        sep, raw = m.group(2), printed[m.start():m.end()]
        if iso is None:
            if ctx.week_ending is None and sep.strip() == "/":  # no year to date it by: the rest still reads
                yield Cell(None, raw), m.end()
            continue
        rules = list(_rules(raw if sep not in "71" else raw.replace(sep, "/", 1), sep, "/"))
        if sep in ("7", "1"):
            rules.append("separator_confusion")
        if re.search(r"[.,'`]", sep) and "/" in sep:
            rules = [r for r in rules if r != "separator_confusion"] + ["stray_punctuation"]
        yield Cell(iso, raw, tuple(rules)), m.end()


def _match_time(text: str, printed: str, pos: int) -> Iterator[tuple[Cell, int]]:
    for m in _iter_prefixes(_TIME, text, pos):
        h, mi = int(m.group(2)), int(m.group(4))
        if h > 23 or mi > 59:
            continue
        raw = printed[m.start():m.end()]
        stray = ("noise_skipped",) if m.group(1) else ()
        yield Cell(f"{h:02d}:{mi:02d}", raw, _rules(raw[len(m.group(1) or ""):], m.group(3), ":") + stray), m.end()


def _match_hours(text: str, printed: str, pos: int) -> Iterator[tuple[Cell, int]]:
    yield from _match_plain_hours(text, printed, pos)
    if _STRAY_ONE_HOURS.match(text, pos):
        for cell, end in _match_plain_hours(text, printed, pos + 1):
            yield Cell(cell.value, printed[pos:end], cell.rules + ("noise_skipped",)), end


def _match_plain_hours(text: str, printed: str, pos: int) -> Iterator[tuple[Cell, int]]:
    for m in _iter_prefixes(_HOURS, text, pos):
        raw = printed[m.start():m.end()]
        if m.group(3) is not None:
            yield Cell(float(f"{int(m.group(1))}.{m.group(3)}"), raw, _rules(raw, m.group(2), ".")), m.end()
        else:
            yield Cell(float(int(m.group(1))), raw, _rules(raw, ".", ".")), m.end()
    # A run of digits whose point was lost: "725" is 7.25, "85" is 8.5 (or 85, which no row
    # allows); each place for the point is a reading.
    run = re.match(r"\d{2,4}", text[pos:])
    if run:
        digits, raw = run.group(0), printed[pos:pos + run.end()]
        for cut in range(1, len(digits)):
            if cut <= 2 and len(digits) - cut <= 2:
                yield (Cell(float(f"{int(digits[:cut])}.{digits[cut:]}"), raw,
                            _rules(raw, "", ".")), pos + run.end())


def _iter_prefixes(pattern: re.Pattern[str], text: str, pos: int) -> Iterator[re.Match[str]]:
    """Every match of `pattern` at `pos`, longest first: a field may end at any digit."""
    seen = set()
    for end in range(len(text), pos, -1):
        m = pattern.fullmatch(text, pos, end)
        if m and m.end() not in seen:
            seen.add(m.end())
            yield m


# --- readings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowContext:
    """What the rest of the sheet says about a row: the week, the printed weekday, the columns."""

    week_ending: date | None
    weekday: str | None = None     # "mon".."sun" as printed beside the date, if legible
    order: tuple[str, ...] = STANDARD_ORDER

    def resolve(self, month: int, day: int) -> str | None:
        """The ISO date of a month/day in this week's year (the nearest year); None if impossible."""
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return None
        week_ending = self.week_ending
        if week_ending is None:
            return None
        options = []
        for year in (week_ending.year - 1, week_ending.year, week_ending.year + 1):
            try:
                options.append(date(year, month, day))
            except ValueError:
                pass
        if not options:
            return None
        return min(options, key=lambda d: abs((d - week_ending).days)).isoformat()


def _readings(text: str, printed: str, ctx: RowContext) -> Iterator[Reading]:
    fields = ("date", *ctx.order)
    matchers = {"date": lambda t, o, p: _match_date(t, o, p, ctx), "time_in": _match_time,
                "time_out": _match_time, "hours": _match_hours}

    def step(i: int, pos: int, cells: dict[str, Cell], noise: tuple[str, ...] = ()) -> Iterator[Reading]:
        if i == len(fields):
            yield Reading(dict(cells), printed[pos:].strip(" .,;:'\"`/\\_=~-"))
            return
        gap = _JUNK_BETWEEN.match(text, pos)
        start = gap.end() if gap else pos
        merged = i > 0 and start == pos and pos < len(text) and cells[fields[i - 1]].value is not None
        name = fields[i]
        if name != "date" and not noise and text[start - 1:start] == " " and re.match(r"\S(?=\s)", text[start:]):
            # a lone character between cells (a tick read as "7"): skipped, if the rest reads;
            # never the end of a token a cell was cut from ("0045" is not 00:04 and noise)
            yield from step(i, start + 1, cells, ("noise_skipped",))
        found = False
        for cell, end in matchers[name](text, printed, start):
            found = True
            rules = cell.rules + (("merged_tokens",) if merged else ()) + noise
            yield from step(i + 1, end, {**cells, name: Cell(cell.value, cell.text, rules)})
        token = re.match(r"\S+", text[start:])
        if token and name != "date":  # an unreadable cell: one word taken, no value
            word = printed[start:start + token.end()]
            yield from step(i + 1, start + token.end(), {**cells, name: Cell(None, word)})
        elif not token and not found:  # the row ends early: the cell is not there
            yield from step(i + 1, start, {**cells, name: Cell(None, "")})

    yield from step(0, 0, {})


def read_row(segment: str, ctx: RowContext, lenient: bool = False) -> tuple[list[Reading], list[str]]:
    """Every reading of the row's text (capped), and the junk words dropped from it."""
    variants, printed, dropped = clean(segment, lenient)
    out: list[Reading] = []
    for variant in variants:
        for n, reading in enumerate(_readings(variant, printed, ctx)):
            if n == MAX_READINGS:
                break
            out.append(reading)
    return out, dropped


# --- the row's own rules ----------------------------------------------------------------------

def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def fits(reading: Reading, ctx: RowContext) -> bool:
    """The row's rules plus the printed weekday; a reading with a lost cell never fits."""
    c = {k: v.value for k, v in reading.cells.items()}
    if any(v is None for v in c.values()):
        return False
    day = date.fromisoformat(c["date"])
    if ctx.week_ending and not ctx.week_ending - timedelta(days=6) <= day <= ctx.week_ending:
        return False
    if ctx.weekday and DAYS[day.weekday()] != ctx.weekday:
        return False
    span = _minutes(c["time_out"]) - _minutes(c["time_in"])
    return span > 0 and 0 < c["hours"] <= 24 and c["hours"] <= span / 60 + 1e-9


def choose(readings: list[Reading], ctx: RowContext) -> RowChoice | None:
    """The reading of one row that its own rules allow, or the candidates left for the total."""
    if not readings:
        return None
    # Digits left after the last cell are a row whose date was lost (they hold a time) or part
    # of a cell: a reading that leaves them is taken only when no reading takes every digit, and
    # never when they are part of a number ("9.5" is not "9" and noise).
    fitting = ([r for r in readings if fits(r, ctx) and not r.tail]
               or [r for r in readings if fits(r, ctx) and TIME_LIKE.search(r.tail)])
    if not fitting:
        plain = min(readings, key=lambda r: (bool(r.tail), r.cost))
        date_cell = plain.cells["date"]
        weekday = DAYS[date.fromisoformat(date_cell.value).weekday()] if date_cell.value else None
        if ctx.weekday and date_cell.rules and weekday != ctx.weekday:
            # a date read only by a repair, on another weekday than the one printed: not a reading
            plain = Reading({**plain.cells, "date": Cell(None, date_cell.text)}, plain.tail)
        return RowChoice(plain, False)
    by_value: dict[tuple[Any, ...], Reading] = {}
    for r in sorted(fitting, key=lambda r: r.cost):
        by_value.setdefault(r.values(), r)
    best = next(iter(by_value.values()))
    return RowChoice(best, True, list(by_value.values()) if len(by_value) > 1 else [])


def choose_by_total(rows: list[RowChoice], totals: list[float]) -> dict[int, Reading] | None:
    """Which alternative of each ambiguous row makes the hours add up to the stated total.

    `totals` holds every reading of the total. Returns {row index: reading} when exactly one
    combination of values adds up, None when none or several do (or there are too many to try).
    """
    open_rows = [i for i, r in enumerate(rows) if r.alternatives]
    fixed = sum(r.reading.cells["hours"].value or 0.0 for i, r in enumerate(rows) if i not in open_rows)
    choices = [rows[i].alternatives for i in open_rows]
    count = 1
    for c in choices:
        count *= len(c)
    if count > MAX_COMBINATIONS:
        return None
    matches = {}
    for combo in product(*choices):
        total_hours = fixed + sum(r.cells["hours"].value for r in combo)
        if any(abs(total_hours - t) <= TOTAL_TOLERANCE + 1e-9 for t in totals):
            matches[tuple(r.values() for r in combo)] = combo
    if len(matches) != 1:
        return None
    return dict(zip(open_rows, next(iter(matches.values()))))
