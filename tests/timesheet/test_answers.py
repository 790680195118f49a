"""Model answers as models give them, read through the real Bedrock client, the local Converse
server, the pipeline and dynalite: the answer-shape table on both answer paths, the reader's
parts on their own, and a batch of the project's damaged samples."""
from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support.answer_shapes import NO_TIMESHEET, SHAPES, Shape, carried_by, invented, judge, shape
from support.converse_server import TIMESHEET, ConverseServer, Received, Reply, make_client, ok
from support.helpers import key_of

from ocrlab.errors import InputError, ParsingError
from ocrlab.ocr.engines.bedrock import BedrockEngine
from ocrlab.ocr.pipeline import Pipeline
from ocrlab.ocr.preflight import prepare_image
from ocrlab.runs.batch import run_batch
from ocrlab.samples.generate import generate_samples
from ocrlab.timesheet.answer_json import find_object
from ocrlab.timesheet.answers import parse_model_json, read_answer
from ocrlab.timesheet.model import validate
from ocrlab.timesheet.repairs import Repairs
from ocrlab.timesheet.schema import ENTRY_SCHEMA, TIMESHEET_SCHEMA
from ocrlab.version import OCRVersionInfo

V = OCRVersionInfo("2.0.0", "2025-10-25", "answers")
PATHS = ("tool", "text")


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server():
    server = ConverseServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def table(dynalite):
    from ocrlab.store import open_store
    return open_store(f"answers-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def pipelines(server, table) -> dict[str, Pipeline]:
    client = make_client(server.url)
    return {path: Pipeline(BedrockEngine(client=client, answer_path=path), V, table) for path in PATHS}


# --- the table, end to end -------------------------------------------------------------------

def test_the_table_holds_every_case_of_the_issue():
    assert len(SHAPES) >= 40 and len({s.name for s in SHAPES}) == len(SHAPES)
    rules = {rule for s in SHAPES for rule in s.rules}
    assert {"json_single_quotes", "json_trailing_comma", "json_comment", "json_unquoted_key", "json_unclosed",
            "time_12h", "time_padded", "time_separator", "date_us", "date_dmy", "decimal_comma", "hours_unit",
            "hours_clock", "number_from_string", "text_trimmed", "date_unresolved", "time_unresolved"} <= rules
    assert sum(s.expect == "OK" for s in SHAPES) >= 30 and sum(s.expect != "OK" for s in SHAPES) >= 20


CASES = [pytest.param(s, path, id=f"{path}: {s.name}") for s in SHAPES for path in PATHS if carried_by(s, path)]


@pytest.mark.parametrize("s, path", CASES)
def test_answer_shape(s: Shape, path: str, server: ConverseServer, pipelines: dict[str, Pipeline], table) -> None:
    server.push(ok(s.answer(s.truth())))
    key = f"{path}/{s.name}/{uuid.uuid4().hex[:6]}.png"
    pipelines[path].process(key, png())
    [record] = list(table.image_records(key))
    assert judge(s, record) == []
    assert not invented(s, record)
    assert json.loads(record["EngineConfig"])["answer_path"] == path
    if s.rules:  # what a person sees: each repair with what was read and what was used
        assert all(r.field for r in Repairs.from_json(record["ParseRepairs"]))


def test_judge_catches_an_invented_value(table, pipelines, server):
    """The table's judge is no rubber stamp: a success where a failure is due is caught."""
    wrong = shape("ambiguous date", lambda t: t, "VALIDATION_ERROR:invalid_date", "date_unresolved")
    server.push(ok(TIMESHEET))
    pipelines["tool"].process("judge.png", png())
    [record] = list(table.image_records("judge.png"))
    assert invented(wrong, record) and len(judge(wrong, record)) == 2


# --- the reader's parts ------------------------------------------------------------------------

def test_a_well_formed_answer_is_read_as_is_with_no_repair():
    repairs = Repairs()
    assert parse_model_json(json.dumps(TIMESHEET), repairs) == TIMESHEET and repairs == []


def test_repairs_name_field_and_what_was_read():
    answer = dict(TIMESHEET, entries=[dict(TIMESHEET["entries"][0], time_out="4:30 PM", date="10/20/2025"),
                                      TIMESHEET["entries"][1]], employee_id=" E-10472")
    repairs = Repairs()
    assert read_answer(answer, repairs, "") == TIMESHEET
    assert [str(r) for r in repairs] == ["text_trimmed: employee_id ' E-10472' -> 'E-10472'",
                                         "date_us: entries[1].date '10/20/2025' -> '2025-10-20'",
                                         "time_12h: entries[1].time_out '4:30 PM' -> '16:30'"]


def test_a_refused_repair_keeps_the_value_as_written():
    repairs = Repairs()
    ts = parse_model_json(json.dumps(dict(TIMESHEET, week_ending="03/04/2025")), repairs)
    assert ts["week_ending"] == "03/04/2025"  # no week rows could tell March from April
    assert [str(r) for r in repairs] == ["date_unresolved: week_ending '03/04/2025' -> '03/04/2025'"]
    assert any(e.startswith("invalid_date: week_ending") for e in validate(ts))


@pytest.mark.parametrize("answer, cut", [
    ('{"employee_name": "Maria', True),                 # inside a string
    ('{"a": 1, "b"', True),                             # after a key
    ('{"a": 1,', True),                                 # after a comma
    ('{"employee_name": "Maria", "entries": [1, 2', False),  # after a complete value: closers only
    ('{"total_hours": 16.', True),                            # inside a number
    ('```json\n{"employee_name": {"b": 1}\n```', False),
])
def test_truncation_is_repaired_only_when_nothing_is_lost(answer, cut):
    repairs = Repairs()
    if cut:
        with pytest.raises(ParsingError, match="truncated JSON") as info:
            find_object(answer, repairs)
        assert info.value.code == "JSONDecodeError"
    else:
        find_object(answer, repairs)
        assert "json_unclosed" in repairs.rules()


@pytest.mark.parametrize("answer", [
    json.dumps(TIMESHEET)[:60],
    '```json\n{"employee_name": "Maria", "entries": [{"date": "2025-10-20"}, ',  # nested object inside
    "I cannot read this image.",
    "{as asked}",
    "",
])
def test_half_or_no_json_object_is_a_parsing_error(answer):
    with pytest.raises(ParsingError) as info:
        parse_model_json(answer)
    assert info.value.code in ("JSONDecodeError", "SchemaError") and info.value.raw_output == answer


@pytest.mark.parametrize("raw, named", [
    ({"name": "Maria Gonzalez", "rows": [], "total": 16.5}, "missing keys"),
    (dict(TIMESHEET, entries={"date": "2025-10-20"}), "entries must be a list"),
    (dict(TIMESHEET, entries=["Mon 10/20 8h"]), "entries[1] must be an object"),
    (dict(TIMESHEET, total_hours="sixteen"), "total_hours must be a number"),
    (dict(TIMESHEET, total_hours=True), "total_hours must be a number"),
    (dict(TIMESHEET, employee_id=10472), "employee_id must be a string"),
    (dict(TIMESHEET, entries=[{"date": "2025-10-20", "time_in": "08:00", "hours": 8}]),
     "entries[1] missing keys: time_out"),
])
def test_wrong_shape_is_a_schema_error_naming_the_problem(raw, named):
    with pytest.raises(ParsingError) as info:
        parse_model_json(json.dumps(raw))
    assert info.value.code == "SchemaError" and named in str(info.value)


def test_the_schema_is_the_one_the_tool_declares_and_the_reader_walks():
    assert TIMESHEET_SCHEMA["properties"]["entries"]["items"] is ENTRY_SCHEMA
    # Nova's tool schema: only type, properties and required at the top level.
    assert set(TIMESHEET_SCHEMA) == {"type", "properties", "required"}
    assert set(TIMESHEET_SCHEMA["required"]) == set(TIMESHEET) and set(ENTRY_SCHEMA["required"]) == set(
        TIMESHEET["entries"][0])


# --- a batch of the project's damaged samples ------------------------------------------------------

@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> tuple[Path, list[dict[str, str]]]:
    folder = tmp_path_factory.mktemp("answer-samples")
    return folder, generate_samples(folder, count=4, seed=14, bad=True)


def _plan(folder: Path, manifest: list[dict[str, str]], path: str) -> dict[str, tuple[Shape | None, Any, str]]:
    """Per image sent to the model: (shape, true sheet, expected outcome) keyed by the sent bytes."""
    readable = [s for s in SHAPES if s.generic and s.expect == "OK" and carried_by(s, path)]
    plan, drawn = {}, 0
    for item in manifest:
        try:
            sent = prepare_image((folder / item["file"]).read_bytes(), BedrockEngine.limits, name=item["file"])
        except InputError:
            continue  # no call is made: the pipeline records the INPUT_ERROR itself
        truth_file = (folder / item["file"]).with_suffix(".json")
        digest = hashlib.sha256(sent.data).hexdigest()
        if not truth_file.exists():  # no timesheet on it: the model says so in its way
            code = "NoTimesheet" if path == "tool" else "JSONDecodeError"
            plan[digest] = (None, None, f"{item['expected']}:{code}")
            continue
        truth = json.loads(truth_file.read_text())
        broken = sorted({e.split(":")[0] for e in validate(truth)})
        fits = [s for s in readable if not (broken and s.dates)]  # see answer_shapes: dates
        s = fits[drawn % len(fits)]
        drawn += 1
        plan[digest] = (s, truth, f"VALIDATION_ERROR:{broken[0]}" if broken else "OK")
    return plan


@pytest.mark.parametrize("path", PATHS)
def test_damaged_samples_batch(path, samples, server, store, aws_credentials):
    folder, manifest = samples
    plan = _plan(folder, manifest, path)

    def answer(received: Received) -> Reply:
        s, truth, _ = plan[hashlib.sha256(received.images[0]).hexdigest()]
        return ok(NO_TIMESHEET[path] if s is None else s.answer(truth))

    server.default = answer
    try:
        summary = run_batch(str(folder), store, engine="bedrock", concurrency=2, progress=False,
                            engine_options={"endpoint_url": server.url, "answer_path": path, "max_attempts": 1})
    finally:
        server.default = ok()
    assert summary.processed == len(manifest)
    by_sent = {}
    for item in manifest:
        [record] = list(store.image_records(key_of(folder / item["file"])))
        expected = item["expected"]
        if record.get("FailureType") == "INPUT_ERROR" or expected == "INPUT_ERROR":
            assert (record.get("FailureType"), expected) == ("INPUT_ERROR", "INPUT_ERROR"), item
            continue
        by_sent[item["file"]] = record
    outcomes = {}
    for name, record in by_sent.items():
        sent = prepare_image((folder / name).read_bytes(), BedrockEngine.limits, name=name)
        s, truth, expect = plan[hashlib.sha256(sent.data).hexdigest()]
        if s is None:
            assert (record["FailureType"], record["ErrorCode"]) == tuple(expect.split(":")), name
            continue
        assert judge(s, record, truth, expect) == [], (name, s.name)
        assert not invented(s, record, truth, expect)
        outcomes[name] = (expect.split(":")[0], s.name)
    # The batch covered what it must: readable shapes on valid and invalid sheets, both kinds of record.
    assert {kind for kind, _ in outcomes.values()} == {"OK", "VALIDATION_ERROR"}
    assert len({name for _, name in outcomes.values()}) >= 8
    assert summary.failure_types.get("PARSING_ERROR") == sum(m["expected"] == "PARSING_ERROR" for m in manifest)
