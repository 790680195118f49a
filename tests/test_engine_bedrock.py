"""BedrockEngine against a local Converse server, through a real boto3 client (no stubs)."""
from __future__ import annotations

import io
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image

from ocrlab.engines import PreparedImage, get_engine
from ocrlab.engines.bedrock import BedrockEngine, load_prompt, prompt_names
from ocrlab.errors import ImageFailure, ParsingError, ThrottlingError, UnknownName
from ocrlab.taxonomy import FailureType, classify

from converse_server import TIMESHEET, ConverseServer, Reply, error, ok

MODEL = "amazon.nova-lite-v1:0"
SESSION = boto3.session.Session()  # one botocore data load for the module: clients come cheap


def png_image() -> PreparedImage:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, format="PNG")
    data = buffer.getvalue()
    return PreparedImage(data=data, format="png", width=40, height=20, original_bytes=len(data),
                         original_format="png")


def engine_for(server: ConverseServer, *, max_attempts: int = 1, read_timeout: float = 5,
               **options: Any) -> BedrockEngine:
    """The engine as production builds it (its own Config), only pointed at the test server."""
    options.setdefault("model_retry_backoff", 0)
    return BedrockEngine(endpoint_url=server.url, region="us-east-1", max_attempts=max_attempts,
                         read_timeout=read_timeout, connect_timeout=2, session=SESSION, **options)


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS account: fake keys, and no user config files that could change endpoints or retries."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                 "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "OCRLAB_BEDROCK_MODEL_ID"):
        monkeypatch.delenv(name, raising=False)


def failure_of(engine: BedrockEngine) -> ImageFailure:
    with pytest.raises(ImageFailure) as info:
        engine.run(png_image())
    return info.value


# --- success ------------------------------------------------------------------------------

def test_success_sends_image_prompt_and_config(converse_server: ConverseServer) -> None:
    image = png_image()
    result = engine_for(converse_server, max_tokens=777, temperature=0).run(image)

    assert json.loads(result.raw_output) == TIMESHEET
    assert (result.model_id, result.stop_reason) == (MODEL, "end_turn")
    assert (result.input_tokens, result.output_tokens) == (1200, 180)
    assert result.processing_time > 0
    [sent] = converse_server.requests
    assert sent.model_id == MODEL
    assert sent.images == [image.data] and sent.image_formats == ["png"]
    assert sent.texts == [load_prompt("timesheet_v1")]
    assert sent.body["inferenceConfig"] == {"maxTokens": 777, "temperature": 0}
    assert sent.body["messages"][0]["role"] == "user"
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")


def test_text_blocks_are_concatenated(converse_server: ConverseServer) -> None:
    body = ok().body
    body["output"]["message"]["content"] = [{"text": '{"a": '}, {"text": "1}"}]
    converse_server.default = Reply(200, body)
    assert engine_for(converse_server).run(png_image()).raw_output == '{"a": 1}'


def test_missing_usage_gives_no_tokens(converse_server: ConverseServer) -> None:
    converse_server.default = ok(usage=False)
    result = engine_for(converse_server).run(png_image())
    assert (result.input_tokens, result.output_tokens) == (None, None)
    assert json.loads(result.raw_output) == TIMESHEET


def test_get_engine_chooses_bedrock(converse_server: ConverseServer) -> None:
    engine = get_engine("bedrock", endpoint_url=converse_server.url, concurrency=32)
    assert isinstance(engine, BedrockEngine)
    assert (engine.name, engine.output_kind, engine.model_id) == ("bedrock", "json", MODEL)
    assert engine.limits.max_bytes == 3_750_000 and "webp" in engine.limits.formats
    config = engine.client.meta.config
    assert config.max_pool_connections == 32  # at least the batch concurrency
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (5, 120)
    assert engine.client.meta.region_name == "us-east-1"  # nothing configured
    assert engine.run(png_image()).raw_output


def test_endpoint_and_model_from_environment(converse_server: ConverseServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", converse_server.url)
    monkeypatch.setenv("OCRLAB_BEDROCK_MODEL_ID", "us.amazon.nova-lite-v1:0")
    engine = BedrockEngine(max_attempts=1)
    assert engine.client.meta.config.max_pool_connections == 10
    engine.run(png_image())
    assert converse_server.requests[0].model_id == "us.amazon.nova-lite-v1:0"


def test_injected_client_is_used(converse_server: ConverseServer) -> None:
    client = converse_server.client()
    engine = BedrockEngine(client=client, model_id="amazon.nova-pro-v1:0")
    assert engine.client is client
    assert engine.run(png_image()).model_id == "amazon.nova-pro-v1:0"


def test_prompt_by_file_and_by_name(converse_server: ConverseServer, tmp_path: Path) -> None:
    assert "timesheet_v1" in prompt_names()
    assert '"employee_name"' in load_prompt() and '"total_hours"' in load_prompt()
    candidate = tmp_path / "timesheet_v2.txt"
    candidate.write_text("Read the sheet, answer JSON.\n")
    engine = engine_for(converse_server, prompt_file=candidate)
    engine.run(png_image())
    assert converse_server.requests[0].texts == ["Read the sheet, answer JSON."]
    assert engine.prompt_name == "timesheet_v2"
    with pytest.raises(UnknownName, match="timesheet_v1"):
        BedrockEngine(prompt_name="timesheet_v0", endpoint_url=converse_server.url)


def test_one_engine_shared_by_threads(converse_server: ConverseServer) -> None:
    converse_server.default = ok(delay=0.3)
    engine = engine_for(converse_server, concurrency=8)
    results: list[str] = []
    start = time.perf_counter()
    threads = [threading.Thread(target=lambda: results.append(engine.run(png_image()).raw_output))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(converse_server.requests) == 8
    assert time.perf_counter() - start < 8 * 0.3 / 2  # calls overlapped instead of queueing


# --- botocore retries (standard mode: 429 throttling codes, 500/502/503/504, modeled-retryable) --

def test_throttled_then_success(converse_server: ConverseServer) -> None:
    converse_server.push(error("ThrottlingException"))
    result = engine_for(converse_server, max_attempts=3).run(png_image())
    assert len(converse_server.requests) == 2
    assert result.details["retry_attempts"] == 1


def test_throttled_forever(converse_server: ConverseServer) -> None:
    converse_server.default = error("ThrottlingException", "Too many requests, please wait")
    failure = failure_of(engine_for(converse_server, max_attempts=3))
    assert len(converse_server.requests) == 3  # max_attempts counts every call, the first included
    assert isinstance(failure, ThrottlingError)
    assert classify(failure) == (FailureType.THROTTLING_ERROR, "ThrottlingException")
    assert failure.model_id == MODEL  # type: ignore[attr-defined]


@pytest.mark.parametrize("code", ["InternalServerException", "ServiceUnavailableException"])
def test_server_error_then_success(converse_server: ConverseServer, code: str) -> None:
    converse_server.push(error(code))
    engine_for(converse_server, max_attempts=2).run(png_image())
    assert len(converse_server.requests) == 2


@pytest.mark.parametrize("code", ["InternalServerException", "ServiceUnavailableException",
                                  "ModelNotReadyException"])
def test_server_error_forever(converse_server: ConverseServer, code: str) -> None:
    converse_server.default = error(code)
    failure = failure_of(engine_for(converse_server, max_attempts=2))
    assert len(converse_server.requests) == 2
    assert classify(failure) == (FailureType.OCR_ERROR, code)
    assert isinstance(failure.__cause__, Exception)  # raised `from` the botocore error


# --- our bounded retry of model errors that botocore does not retry -------------------------

@pytest.mark.parametrize("code", ["ModelErrorException", "ModelTimeoutException"])
def test_model_error_retried_then_fails(converse_server: ConverseServer, code: str) -> None:
    converse_server.default = error(code)
    failure = failure_of(engine_for(converse_server, max_attempts=4, model_retries=2))
    assert len(converse_server.requests) == 3  # 1 + model_retries; botocore added none
    assert classify(failure) == (FailureType.OCR_ERROR, code)


def test_model_error_then_success(converse_server: ConverseServer) -> None:
    converse_server.push(error("ModelTimeoutException"), error("ModelErrorException"))
    result = engine_for(converse_server, model_retries=2).run(png_image())
    assert len(converse_server.requests) == 3 and json.loads(result.raw_output) == TIMESHEET


def test_model_retry_backoff_grows(converse_server: ConverseServer) -> None:
    converse_server.default = error("ModelErrorException")
    engine = engine_for(converse_server, model_retries=2, model_retry_backoff=0.05)
    start = time.perf_counter()
    failure_of(engine)
    assert time.perf_counter() - start >= 0.05 + 0.1


# --- never retried ---------------------------------------------------------------------------

@pytest.mark.parametrize("code, failure_type", [
    ("ValidationException", FailureType.OCR_ERROR),
    ("AccessDeniedException", FailureType.OCR_ERROR),
    ("ResourceNotFoundException", FailureType.OCR_ERROR),
    ("ServiceQuotaExceededException", FailureType.THROTTLING_ERROR),
])
def test_not_retried(converse_server: ConverseServer, code: str, failure_type: FailureType) -> None:
    converse_server.default = error(code, "The content was blocked by the content filter")
    failure = failure_of(engine_for(converse_server, max_attempts=4))
    assert len(converse_server.requests) == 1
    assert classify(failure) == (failure_type, code)
    assert "content filter" in str(failure)


# --- answers that are not a timesheet ----------------------------------------------------------

def test_max_tokens_is_a_parsing_error_keeping_raw_output(converse_server: ConverseServer) -> None:
    half = json.dumps(TIMESHEET)[:60]
    converse_server.default = ok(half, stop_reason="max_tokens", output_tokens=2048)
    failure = failure_of(engine_for(converse_server))
    assert isinstance(failure, ParsingError)
    assert classify(failure) == (FailureType.PARSING_ERROR, "StopReason:max_tokens")
    assert failure.raw_output == half
    assert (failure.model_id, failure.input_tokens, failure.output_tokens) == (  # type: ignore[attr-defined]
        MODEL, 1200, 2048)


@pytest.mark.parametrize("reason", ["guardrail_intervened", "content_filtered", "something_new"])
def test_other_stop_reasons_are_parsing_errors(converse_server: ConverseServer, reason: str) -> None:
    converse_server.default = ok("Sorry, I can't help with that.", stop_reason=reason)
    failure = failure_of(engine_for(converse_server))
    assert classify(failure) == (FailureType.PARSING_ERROR, f"StopReason:{reason}")
    assert "stopReason=" + reason in str(failure)


# --- transport failures ------------------------------------------------------------------------

def test_slow_answer_times_out(converse_server: ConverseServer) -> None:
    converse_server.default = ok(delay=2.5)
    failure = failure_of(engine_for(converse_server, max_attempts=1, read_timeout=0.5))
    assert classify(failure) == (FailureType.OCR_ERROR, "ReadTimeoutError")
    assert failure.processing_time < 2  # type: ignore[attr-defined]  # gave up, did not wait


def test_truncated_body_is_an_ocr_error(converse_server: ConverseServer) -> None:
    converse_server.default = Reply(200, ok().body, truncate=True)
    failure = failure_of(engine_for(converse_server))
    # Whether urllib3 notices the short body before botocore parses it depends on timing;
    # either way it is a classified OCR_ERROR, never a success or an unclassified crash.
    failure_type, code = classify(failure)
    assert failure_type == FailureType.OCR_ERROR and code in {"ConnectionClosedError", "MalformedResponse"}


def test_garbled_bodies_are_ocr_errors(converse_server: ConverseServer) -> None:
    # botocore parses a non-JSON 200 body into {} without raising, and rejects an empty union.
    converse_server.push(Reply(200, "{not json"), Reply(200, {"output": {}, "stopReason": "end_turn"}))
    engine = engine_for(converse_server)
    assert classify(failure_of(engine)) == (FailureType.OCR_ERROR, "MalformedResponse")
    assert classify(failure_of(engine)) == (FailureType.OCR_ERROR, "ResponseParserError")


def test_unreachable_endpoint(converse_server: ConverseServer) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = BedrockEngine(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    assert classify(failure_of(engine)) == (FailureType.OCR_ERROR, "EndpointConnectionError")


# --- the engine's raw output handed to the timesheet parser --------------------------------------

def test_fenced_json_answer_parses(converse_server: ConverseServer) -> None:
    from ocrlab.timesheet import parse_model_json
    fenced = "Here is the timesheet:\n```json\n" + json.dumps(TIMESHEET, indent=2) + "\n```\n"
    converse_server.default = ok(fenced)
    result = engine_for(converse_server).run(png_image())
    assert result.raw_output == fenced  # the engine hands over the answer untouched
    parsed = parse_model_json(result.raw_output)
    assert (parsed["employee_id"], parsed["total_hours"], len(parsed["entries"])) == ("E-10472", 16.5, 2)


def test_wrong_shape_answer_is_a_parsing_error(converse_server: ConverseServer) -> None:
    from ocrlab.timesheet import parse_model_json
    converse_server.default = ok(json.dumps({"name": "Maria Gonzalez", "rows": [], "total": 16.5}))
    result = engine_for(converse_server).run(png_image())
    with pytest.raises(ParsingError) as info:
        parse_model_json(result.raw_output)
    assert classify(info.value)[0] == FailureType.PARSING_ERROR
    assert info.value.raw_output == result.raw_output
