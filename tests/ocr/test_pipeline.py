"""The per-image pipeline with the real Bedrock client (local Converse server) and the real store."""
from __future__ import annotations

import json

import pytest
from support.converse_server import TIMESHEET, error, ok
from support.helpers import V1 as V
from support.helpers import png

from ocrlab.ocr.engines import get_engine
from ocrlab.ocr.pipeline import ImageContext, Pipeline


@pytest.fixture
def pipeline(converse_server, store, aws_credentials):
    engine = get_engine("bedrock", endpoint_url=converse_server.url, max_attempts=2, model_retries=0,
                        read_timeout=5)
    return Pipeline(engine, V, store)


def only(store, key):
    [record] = list(store.image_records(key))
    return record


def test_success_is_an_ocr_result_with_tokens_and_parsed_timesheet(pipeline, store, converse_server):
    outcome = pipeline.process("s/ok.png", png(), ImageContext("bucket", "eu-west-1", "stream-1"))
    assert outcome.ok and outcome.timesheet["total_hours"] == 16.5
    record = only(store, "s/ok.png")
    assert record["RecordType"] == "OCR_RESULT" and record["OCRFullVersion"] == "2.0.0-2025-10-25"
    assert record["InputTokens"] == 1200 and record["OutputTokens"] == 180
    assert record["ModelId"] == "amazon.nova-lite-v1:0" and record["S3Bucket"] == "bucket"
    assert json.loads(record["ParsedTimesheet"]) == TIMESHEET
    assert json.loads(record["RawOCROutput"]) == TIMESHEET
    assert json.loads(record["EngineConfig"]) == pipeline.engine.identity()
    [latest] = list(store.latest_outcomes(V.full_version))
    assert latest["RecordType"] == "OCR_RESULT"


def test_truncated_answer_is_a_parsing_error_with_every_known_field(pipeline, store, converse_server):
    half = json.dumps(TIMESHEET)[:70]
    converse_server.push(ok(half, stop_reason="max_tokens", input_tokens=900, output_tokens=2048))
    data = png()
    outcome = pipeline.process("s/trunc.png", data, ImageContext("bucket", "us-east-1", "stream-2"))
    assert not outcome.ok and outcome.failure_type == "PARSING_ERROR"
    r = only(store, "s/trunc.png")
    assert r["FailureType"] == "PARSING_ERROR" and "max_tokens" in r["ErrorMessage"]
    assert r["RawOCROutput"] == half and r["InputTokens"] == 900 and r["OutputTokens"] == 2048
    assert r["ModelId"] == "amazon.nova-lite-v1:0" and r["ProcessingTimeSeconds"] > 0
    assert r["ImageSize"] == len(data) and r["AttemptNumber"] == 1 and r["S3Region"] == "us-east-1"
    assert r["CloudWatchLogStream"] == "stream-2" and "Traceback" in r["StackTrace"]


def test_invalid_timesheet_names_every_broken_rule(pipeline, store, converse_server):
    bad = dict(TIMESHEET, total_hours=20.0,
               entries=[dict(TIMESHEET["entries"][0], time_in="17:00"), TIMESHEET["entries"][1]])
    converse_server.push(ok(bad))  # answered as the engine asks: a tool call by default
    outcome = pipeline.process("s/invalid.png", png())
    assert outcome.failure_type == "VALIDATION_ERROR"
    r = only(store, "s/invalid.png")
    assert "total_mismatch" in r["ValidationErrors"] and "time_order" in r["ValidationErrors"]
    assert json.loads(r["ParsedTimesheet"])["total_hours"] == 20.0  # what was read is kept for tuning
    assert json.loads(r["RawOCROutput"]) == bad


def test_undecodable_input_makes_no_engine_call(pipeline, store, converse_server):
    for key, data in (("s/empty.png", b""), ("s/text.png", b"hello, not an image"),
                      ("s/trunc.png", png()[:60])):
        outcome = pipeline.process(key, data)
        assert outcome.failure_type == "INPUT_ERROR", key
        assert only(store, key)["ImageSize"] == len(data)
    assert converse_server.requests == []


def test_unreadable_file_is_an_input_error(pipeline, store):
    outcome = pipeline.process("s/gone.png", None, read_error=FileNotFoundError("s/gone.png"))
    assert outcome.failure_type == "INPUT_ERROR"
    assert only(store, "s/gone.png")["ErrorCode"] == "FileNotFoundError"


def test_throttled_past_the_bound(converse_server, store, aws_credentials):
    converse_server.default = error("ThrottlingException")
    engine = get_engine("bedrock", endpoint_url=converse_server.url, max_attempts=2, model_retries=0,
                        max_throttle_wait=0)
    outcome = Pipeline(engine, V, store).process("s/throttled.png", png())
    assert outcome.failure_type == "THROTTLING_ERROR"
    record = only(store, "s/throttled.png")
    assert record["ErrorCode"] == "ThrottlingException" and "max_throttle_wait (0 s; 1 call refused)" in (
        record["ErrorMessage"])
    assert len(converse_server.requests) == 1  # no wait allowed; botocore's max_attempts is not for throttles


def test_second_failure_is_attempt_two(pipeline, store, converse_server):
    converse_server.default = error("ModelErrorException")
    pipeline.process("s/again.png", png())
    pipeline.process("s/again.png", png())
    assert [r["AttemptNumber"] for r in store.image_records("s/again.png")] == [1, 2]
    assert {r["FailureType"] for r in store.image_records("s/again.png")} == {"OCR_ERROR"}
