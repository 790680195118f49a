"""The JSON object in a model's text answer, its syntax repaired where that loses nothing.

Models wrap the object in prose or code fences and write JSON loosely. A small scanner walks
each `{...}` candidate to name what is wrong with it (the repair rules below); the repair
itself is json-repair's. A strict parse is always tried first, so a well-formed answer is never
touched.

Truncation is the one repair json-repair would make by guessing (it closes a cut string, drops
a dangling key, keeps `16.` as 16.0), so it is only accepted when the answer stops right after
a complete value and only closing brackets are missing: the model ended its turn there (a
`max_tokens` stop never reaches this reader). A number that ends the answer could still have
lost digits ("8" of "8.5"); the last number is always an hours value or the total, so the total
rule of validation catches that. Anything else cut short is a PARSING_ERROR.

Repair rules (field `answer`; `before` is an excerpt at the first occurrence):
  json_extracted       prose or code fences around the object dropped
  json_single_quotes   'strings' quoted with single quotes
  json_trailing_comma  a comma before a closing bracket
  json_comment         // line, /* block */ or # comments
  json_unquoted_key    a key without quotes
  json_python_literal  True / False / None
  json_missing_comma   two items with no comma between them
  json_unclosed        closing brackets missing after a complete last value (`after`: those added)
  json_syntax          any other defect json-repair mended
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, TypeGuard

from json_repair import repair_json

from ocrlab.errors import ParsingError
from ocrlab.timesheet.repairs import Repairs
from ocrlab.timesheet.schema import REQUIRED_FIELDS

_NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d*)?")
_COMPLETE_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_$][\w$-]*")
_LITERALS = {"true", "false", "null"}
_PYTHON_LITERALS = {"True", "False", "None"}
_FIX = {"json_single_quotes": "double quotes", "json_trailing_comma": "comma removed",
        "json_comment": "comment removed", "json_unquoted_key": "key quoted",
        "json_python_literal": "true/false/null", "json_missing_comma": "comma added",
        "json_syntax": "repaired by json-repair"}


@dataclass
class _Candidate:
    """One `{...}` span: where it starts and stops, and what the scanner found wrong in it."""

    start: int
    stop: int                       # index after the closing brace, or where the text ran out
    closed: bool = False
    complete: bool = True           # an unclosed span that ends right after a complete value
    closers: str = ""               # what closes an unclosed span
    defects: dict[str, int] = field(default_factory=dict)  # rule -> first position

    def note(self, rule: str, at: int) -> None:
        self.defects.setdefault(rule, at)


def _string_end(text: str, i: int) -> int | None:
    """Index of the quote closing the string opened at i, None if the text ends first."""
    quote, j = text[i], i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
        elif text[j] == quote:
            return j
        else:
            j += 1
    return None


class _Scanner:
    """Walks the object opened at `start` token by token until it closes or the text ends,
    noting each defect. It only names what is wrong: json-repair does the repairing."""

    def __init__(self, text: str, start: int) -> None:
        self.text, self.i = text, start
        self.cand = _Candidate(start, len(text))
        self.stack: list[str] = []   # open brackets
        self.expect = ""             # key | colon | value | comma
        self.after_comma = self.just_opened = False
        self.last = ""               # the last scalar token, to tell a complete number from a cut one

    def run(self) -> _Candidate:
        text, n = self.text, len(self.text)
        while self.i < n:
            c = text[self.i]
            if c.isspace():
                self.i += 1
            elif c == "`":  # the closing code fence of an answer cut short
                self.cand.stop = self.i
                break
            elif text.startswith(("/*", "//"), self.i) or c == "#":
                self.comment()
            elif c in "{[":
                self.open(c)
            elif c in "}]":
                if self.close():
                    return self.cand
            elif c in ",:":
                self.separator(c)
            elif not self.scalar():
                self.cand.complete = False  # cut inside a string: its value is lost
                break
        return self.unclosed()

    def _in_object(self) -> bool:
        return bool(self.stack) and self.stack[-1] == "{"

    def comment(self) -> None:
        self.cand.note("json_comment", self.i)
        block = self.text.startswith("/*", self.i)
        end = self.text.find("*/" if block else "\n", self.i + 2)
        self.i = len(self.text) if end == -1 else end + (2 if block else 0)

    def open(self, bracket: str) -> None:
        if self.expect == "comma":
            self.cand.note("json_missing_comma", self.i)
        self.stack.append(bracket)
        self.expect = "key" if bracket == "{" else "value"
        self.after_comma, self.just_opened = False, True
        self.i += 1

    def close(self) -> bool:
        """Close a bracket; True when that closes the object."""
        if self.after_comma:
            self.cand.note("json_trailing_comma", self.i)
        elif self.expect in ("colon", "value") and not self.just_opened:
            self.cand.note("json_syntax", self.i)
        if self.stack:
            self.stack.pop()
        self.i += 1
        self.expect, self.last = "comma", "}"
        self.after_comma = self.just_opened = False
        if not self.stack:
            self.cand.stop, self.cand.closed = self.i, True
        return not self.stack

    def separator(self, c: str) -> None:
        if self.expect != ("comma" if c == "," else "colon"):
            self.cand.note("json_syntax", self.i)
        self.expect = ("key" if self._in_object() else "value") if c == "," else "value"
        self.after_comma, self.just_opened = c == ",", False
        self.i += 1

    def scalar(self) -> bool:
        """Read a string, number or bare word; False when the text ends inside a string."""
        text, at = self.text, self.i
        if text[at] in "\"'":
            end = _string_end(text, at)
            if end is None:
                return False
            if text[at] == "'":
                self.cand.note("json_single_quotes", at)
            token, self.i = text[at:end + 1], end + 1
        elif m := (_NUMBER.match(text, at) or _WORD.match(text, at)):
            token, self.i = m.group(0), m.end()
            if self.expect == "key" and _WORD.fullmatch(token):
                self.cand.note("json_unquoted_key", at)
            elif token in _PYTHON_LITERALS:
                self.cand.note("json_python_literal", at)
            elif token not in _LITERALS and not _COMPLETE_NUMBER.fullmatch(token):
                self.cand.note("json_syntax", at)  # a stray word, or a number such as 08 or 16.
        else:
            self.cand.note("json_syntax", at)
            self.i += 1
            return True
        if self.expect == "comma":
            self.cand.note("json_missing_comma", at)
            self.expect = "key" if self._in_object() else "value"
        elif self.expect == "colon":
            self.cand.note("json_syntax", at)
        self.expect = "colon" if self.expect == "key" else "comma"
        self.after_comma = self.just_opened = False
        self.last = token
        return True

    def unclosed(self) -> _Candidate:
        """The text ran out (or a fence began) before the object closed."""
        cut_number = bool(_NUMBER.fullmatch(self.last)) and not _COMPLETE_NUMBER.fullmatch(self.last)
        self.cand.complete = self.cand.complete and self.expect == "comma" and not cut_number
        self.cand.closers = "".join("}" if b == "{" else "]" for b in reversed(self.stack))
        return self.cand


def _candidates(text: str) -> Iterator[_Candidate]:
    i = text.find("{")
    while i != -1:
        cand = _Scanner(text, i).run()
        yield cand
        if not cand.closed:
            return
        i = text.find("{", cand.stop)


def _excerpt(text: str, at: int, width: int = 24) -> str:
    return re.sub(r"\s+", " ", text[max(0, at - width // 2):at + width // 2]).strip()


def _is_timesheet_like(value: Any) -> TypeGuard[dict[str, Any]]:
    """An object that holds a timesheet field, or wraps one (the reader unwraps it)."""
    return isinstance(value, dict) and (any(k in value for k in REQUIRED_FIELDS) or any(
        isinstance(v, dict) and any(k in v for k in REQUIRED_FIELDS) for v in value.values()))


def _pick(objects: list[tuple[_Candidate, dict[str, Any]]]) -> tuple[_Candidate, dict[str, Any]] | None:
    """The first object that looks like a timesheet, else the first object (the reader names
    what it lacks)."""
    return next((o for o in objects if _is_timesheet_like(o[1])), objects[0] if objects else None)


def _strict(text: str, cand: _Candidate) -> dict[str, Any] | None:
    try:
        value = json.loads(text[cand.start:cand.stop])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _repaired(text: str, cand: _Candidate) -> dict[str, Any] | None:
    value = repair_json(text[cand.start:cand.stop] + cand.closers, return_objects=True)
    return value if isinstance(value, dict) else None


def find_object(text: str, repairs: Repairs) -> dict[str, Any]:
    """The timesheet object in a model's answer; each repair made to read it goes to `repairs`.

    Raises ParsingError (code JSONDecodeError) when there is no object, when it is cut off where
    a value would be lost, or when even repaired it is not an object.
    """
    candidates = list(_candidates(text))
    chosen = _pick([(c, o) for c in candidates if c.closed and (o := _strict(text, c)) is not None])
    if chosen is None:
        cut = next((c for c in candidates if not c.closed and not c.complete), None)
        if cut is not None:
            raise ParsingError(f"truncated JSON: the object opened at char {cut.start} is cut off "
                               f"before its last value ends", code="JSONDecodeError", raw_output=text)
        # Repaired, only an object that holds timesheet fields counts: json-repair makes an
        # object of almost anything, "{as asked}" included.
        chosen = next(((c, o) for c in candidates if _is_timesheet_like(o := _repaired(text, c))), None)
        if chosen is None:
            raise ParsingError("no JSON object in the answer", code="JSONDecodeError", raw_output=text)
        cand = chosen[0]
        defects = cand.defects if cand.defects or not cand.closed else {"json_syntax": cand.start}
        for rule, at in sorted(defects.items(), key=lambda d: d[1]):
            repairs.add(rule, "answer", _excerpt(text, at), _FIX[rule])
        if not cand.closed:
            repairs.add("json_unclosed", "answer", _excerpt(text, cand.stop, 16), cand.closers)
    cand, obj = chosen
    outside = (text[:cand.start] + " " + text[cand.stop:]).strip()
    if outside:
        repairs.add("json_extracted", "answer", re.sub(r"\s+", " ", outside)[:60], "")
    return obj
