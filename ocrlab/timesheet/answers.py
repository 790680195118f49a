"""Reading a timesheet from a model's answer: the text path's JSON and the tool path's input.

Both paths come here: the text answer goes through `answer_json.find_object` (fences, prose,
JSON syntax), the tool input is already an object. Then the same steps for both: unwrap an
object the model nested in one key, walk the timesheet schema (`ocrlab.timesheet.schema`) to check the
shape, and read every value into the parsed form with `ocrlab.timesheet.values`. Every change is added to
`repairs` (stored as `ParseRepairs`); a value that would need a guess is left as written, so
validation fails on it.

Structure is strict, as the schema says: every key present, `entries` a list of objects,
strings where strings belong, numbers (or number-like strings) for hours. A null is a value the
model could not read: `validate` reports it as a missing field. An answer with no value at all
(a blank page read through the tool) is no timesheet: PARSING_ERROR `NoTimesheet`.

Repair rules of this module (the JSON and value rules are in `answer_json` and `values`):
  answer_unwrapped         {"timesheet": {...}} -> {...} (`before`: the wrapper key)
  value_from_json_string   an object or list given as a JSON string ("entries": "[{...}]")
  unknown_key_dropped      a key the schema does not have
  text_trimmed             spaces around a string
Field paths: `employee_id`, `entries[2].time_in`, entries counted from 1 like validation's.
"""
from __future__ import annotations

import json
from datetime import date
from typing import Any

from ocrlab.errors import ParsingError
from ocrlab.timesheet.answer_json import find_object
from ocrlab.timesheet.repairs import Repairs
from ocrlab.timesheet.schema import REQUIRED_FIELDS, TIMESHEET_SCHEMA
from ocrlab.timesheet.values import Read, date_candidates, in_week, read_date, read_number, read_time

# How a string field is read beyond trimming; the others are free text (names, ids).
_STRING_READERS = {"time_in": "time", "time_out": "time", "date": "date", "week_ending": "date"}


def _iso_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


def _unwrap(obj: dict[str, Any], repairs: Repairs) -> dict[str, Any]:
    if len(obj) != 1 or any(k in obj for k in REQUIRED_FIELDS):
        return obj
    [(key, inner)] = obj.items()
    if isinstance(inner, dict) and any(k in inner for k in REQUIRED_FIELDS):
        repairs.add("answer_unwrapped", "answer", key, "")
        return inner
    return obj


def _has_value(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_value(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_value(v) for v in value)
    return value not in (None, "")


class _Reader:
    """One walk of the schema over one answer: the parsed form, its repairs and its problems."""

    def __init__(self, repairs: Repairs, raw_entries: Any) -> None:
        self.repairs = repairs
        self.problems: list[str] = []
        self.week: date | None = None
        rows = raw_entries if isinstance(raw_entries, list) else []
        self.row_dates = [row["date"].strip() for row in rows
                          if isinstance(row, dict) and isinstance(row.get("date"), str)]

    def rows_in_week(self, week: date) -> int:
        """How many rows can be read as a date within `week`: which reading of a week ending fits."""
        return sum(any(in_week(week)(d) for d in date_candidates(row, week)) for row in self.row_dates)

    def record(self, path: str, before: Any, read: Read) -> Any:
        for rule in read.rules:
            self.repairs.add(rule, path, before, read.value)
        return read.value

    def object(self, obj: dict[str, Any], schema: dict[str, Any], path: str) -> dict[str, Any]:
        properties = schema["properties"]
        absent = [k for k in schema["required"] if k not in obj]
        if absent:
            self.problems.append(f"{path + ' ' if path else ''}missing keys: {', '.join(absent)}")
        for key in obj:
            if key not in properties:
                self.repairs.add("unknown_key_dropped", f"{path}.{key}" if path else key, key, "")
        return {key: self.value(obj.get(key), sub, key, f"{path}.{key}" if path else key)
                for key, sub in properties.items()}

    def value(self, value: Any, schema: dict[str, Any], key: str, path: str) -> Any:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        kind = kinds[0]
        if value is None:
            if "null" not in kinds:
                self.problems.append(f"{path} must be {'a list' if kind == 'array' else 'an ' + kind}, got null")
            return None
        if kind in ("object", "array") and isinstance(value, str):
            value = self.json_string(value, path)
        if kind == "object":
            if isinstance(value, dict):
                return self.object(value, schema, path)
            self.problems.append(f"{path} must be an object, got {type(value).__name__}")
        elif kind == "array":
            if isinstance(value, list):
                return [self.value(item, schema["items"], key, f"{path}[{i}]") for i, item in enumerate(value, 1)]
            self.problems.append(f"{path} must be a list, got {type(value).__name__}")
        elif kind == "number":
            read = read_number(value)
            if read is not None:
                return self.record(path, value, read)
            self.problems.append(f"{path} must be a number, got {value!r}")
        elif isinstance(value, str):
            return self.string(value, key, path)
        else:
            self.problems.append(f"{path} must be a string, got {type(value).__name__}")
        return None

    def json_string(self, value: str, path: str) -> Any:
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        if isinstance(inner, (dict, list)):
            self.repairs.add("value_from_json_string", path, value, "")
            return inner
        return value

    def string(self, value: str, key: str, path: str) -> str:
        text = value.strip()
        if text != value:
            self.repairs.add("text_trimmed", path, value, text)
        reader = _STRING_READERS.get(key)
        if reader == "time":
            return self.record(path, text, read_time(text))
        if reader == "date" and key == "week_ending":
            text = self.record(path, text, read_date(text, score=self.rows_in_week))
            self.week = _iso_date(text)
        elif reader == "date":
            text = self.record(path, text, read_date(text, self.week, in_week(self.week)))
        return text


def read_answer(obj: Any, repairs: Repairs, raw_output: str) -> dict[str, Any]:
    """The parsed timesheet from an answer object (decoded JSON, or a tool's input)."""
    if not isinstance(obj, dict):
        raise ParsingError(f"the answer is not a timesheet: an object is needed, got {type(obj).__name__}",
                           code="SchemaError", raw_output=raw_output)
    obj = _unwrap(obj, repairs)
    if not _has_value(obj):
        raise ParsingError("no timesheet in the answer: every field is empty", code="NoTimesheet",
                           raw_output=raw_output)
    reader = _Reader(repairs, obj.get("entries"))
    parsed = reader.object(obj, TIMESHEET_SCHEMA, "")
    if reader.problems:
        raise ParsingError("the answer is not a timesheet: " + "; ".join(reader.problems),
                           code="SchemaError", raw_output=raw_output)
    return parsed


def parse_model_json(text: str, repairs: Repairs | None = None) -> dict[str, Any]:
    """The parsed timesheet from a model's answer text (the tool path hands over its input as JSON).

    Raises ParsingError: code JSONDecodeError (no object, or one cut off), SchemaError (wrong
    shape) or NoTimesheet (an object with no value).
    """
    repairs = repairs if repairs is not None else Repairs()
    if not text or not text.strip():
        raise ParsingError("empty answer", code="JSONDecodeError", raw_output=text)
    return read_answer(find_object(text, repairs), repairs, text)
