"""BedrockEngine against a local Converse server, through a real boto3 client (no stubs)."""
from __future__ import annotations

import io
import itertools
import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image
from support.converse_server import (
    THINKING,
    TIMESHEET,
    ConverseServer,
    Quota,
    Received,
    Reply,
    converse_body,
    error,
    ok,
    tool_use,
)

from ocrlab.config import settings
from ocrlab.errors import ImageFailure, ParsingError, ThrottlingError, UnknownName
from ocrlab.ocr.engines import PreparedImage, get_engine
from ocrlab.ocr.engines.bedrock import DEFAULT_MODEL_ID, BedrockEngine, load_prompt, prompt_names
from ocrlab.taxonomy import FailureType, classify
from ocrlab.timesheet.schema import TIMESHEET_SCHEMA, TOOL_NAME, digest

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


pytestmark = pytest.mark.usefixtures("dummy_credentials")  # tests/conftest.py


def failure_of(engine: BedrockEngine) -> ImageFailure:
    with pytest.raises(ImageFailure) as info:
        engine.run(png_image())
    return info.value


# --- success ------------------------------------------------------------------------------

def test_tool_path_forces_the_schema_tool_with_greedy_decoding(converse_server: ConverseServer) -> None:
    image = png_image()
    result = engine_for(converse_server, max_tokens=777).run(image)

    assert json.loads(result.raw_output) == TIMESHEET  # the tool's input; the <thinking> text dropped
    assert THINKING not in result.raw_output
    assert (result.model_id, result.stop_reason) == (MODEL, "tool_use")
    assert (result.input_tokens, result.output_tokens) == (1200, 180)
    assert result.processing_time > 0
    [sent] = converse_server.requests
    assert sent.model_id == MODEL
    assert sent.images == [image.data] and sent.image_formats == ["png"]
    assert sent.texts == [load_prompt("timesheet_tool_v1")]
    assert sent.body["inferenceConfig"] == {"maxTokens": 777, "temperature": 0}
    assert sent.body["additionalModelRequestFields"] == {"inferenceConfig": {"topK": 1}}
    [tool] = sent.body["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == TOOL_NAME
    assert tool["toolSpec"]["inputSchema"] == {"json": TIMESHEET_SCHEMA}
    assert sent.body["toolConfig"]["toolChoice"] == {"tool": {"name": TOOL_NAME}}
    assert sent.body["messages"][0]["role"] == "user"
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")


def test_text_path_sends_the_plain_prompt_and_no_tool(converse_server: ConverseServer) -> None:
    result = engine_for(converse_server, answer_path="text", max_tokens=777).run(png_image())
    assert json.loads(result.raw_output) == TIMESHEET
    assert result.stop_reason == "end_turn"
    [sent] = converse_server.requests
    assert sent.texts == [load_prompt("timesheet_v1")]
    assert sent.body["inferenceConfig"] == {"maxTokens": 777, "temperature": 0}
    assert "toolConfig" not in sent.body and "additionalModelRequestFields" not in sent.body


def test_top_k_is_sent_to_nova_models_only(converse_server: ConverseServer) -> None:
    engine_for(converse_server, model_id="anthropic.claude-3-haiku-20240307-v1:0").run(png_image())
    assert "additionalModelRequestFields" not in converse_server.requests[0].body
    assert converse_server.requests[0].tool_name == TOOL_NAME


def test_text_blocks_are_concatenated(converse_server: ConverseServer) -> None:
    converse_server.default = Reply(200, converse_body([{"text": '{"a": '}, {"text": "1}"}], "end_turn"))
    assert engine_for(converse_server, answer_path="text").run(png_image()).raw_output == '{"a": 1}'


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
    assert BedrockEngine(max_attempts=1).model_id == DEFAULT_MODEL_ID  # the engine reads no environment...
    engine = get_engine("bedrock", **settings().engine_defaults("bedrock"), max_attempts=1)  # ...its edge does
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


# --- the answer path switch and the engine's identity --------------------------------------------

def test_answer_path_from_option_or_environment(converse_server: ConverseServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    engine = get_engine("bedrock", endpoint_url=converse_server.url, answer_path="text")  # -E answer_path=text
    assert (engine.answer_path, engine.prompt_name) == ("text", "timesheet_v1")
    monkeypatch.setenv("OCRLAB_BEDROCK_ANSWER_PATH", "text")
    assert BedrockEngine(endpoint_url=converse_server.url).answer_path == "tool"
    defaults = settings().engine_defaults("bedrock")
    assert BedrockEngine(endpoint_url=converse_server.url, **defaults).answer_path == "text"
    assert BedrockEngine(endpoint_url=converse_server.url, **{**defaults, "answer_path": "tool"}).answer_path == "tool"
    with pytest.raises(UnknownName, match="tool, text|text, tool"):
        BedrockEngine(endpoint_url=converse_server.url, answer_path="json")


def test_identity_names_path_prompt_and_schema(converse_server: ConverseServer, tmp_path: Path) -> None:
    tool, text = engine_for(converse_server), engine_for(converse_server, answer_path="text")
    assert tool.identity() == {"engine": "bedrock", "model_id": MODEL, "answer_path": "tool",
                               "prompt": "timesheet_tool_v1",
                               "prompt_sha256": digest(load_prompt("timesheet_tool_v1")),
                               "schema_sha256": digest(TIMESHEET_SCHEMA)}
    assert text.identity()["answer_path"] == "text" and text.identity()["prompt"] == "timesheet_v1"
    assert text.identity()["schema_sha256"] == tool.identity()["schema_sha256"]
    candidate = tmp_path / "timesheet_tool_v1.txt"  # same name, one word changed: the digest tells
    candidate.write_text(load_prompt("timesheet_tool_v1").replace("once", "exactly once"))
    changed = engine_for(converse_server, prompt_file=candidate).identity()
    assert changed["prompt"] == "timesheet_tool_v1" and changed["prompt_sha256"] != tool.identity()["prompt_sha256"]


def test_one_engine_shared_by_threads(converse_server: ConverseServer) -> None:
    def when_all_arrived(received: Received) -> Reply:  # each answer waits for all eight requests
        deadline = time.monotonic() + 30
        while converse_server.peak_in_flight < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        return ok()

    converse_server.default = when_all_arrived
    engine = engine_for(converse_server, concurrency=8, read_timeout=60)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(engine.run(png_image()).raw_output))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(converse_server.requests) == 8
    assert converse_server.peak_in_flight == 8  # the calls overlapped instead of queueing


# --- throttling: the engine's pace waits it out (ocrlab.ocr.engines.pacing), not botocore's retries --------

def test_throttled_calls_go_again_without_counting_as_retries(converse_server: ConverseServer) -> None:
    converse_server.push(error("ThrottlingException"), error("ThrottlingException"))
    result = engine_for(converse_server, max_attempts=1, model_retries=0).run(png_image())
    assert len(converse_server.requests) == 3
    assert result.details["throttled"] == 2 and result.details["retry_attempts"] == 0
    assert json.loads(result.raw_output) == TIMESHEET


def test_a_quota_exhausted_past_the_bound_fails_with_the_wait(converse_server: ConverseServer) -> None:
    converse_server.quota = Quota(requests_per_second=0)
    failure = failure_of(engine_for(converse_server, max_attempts=3, max_throttle_wait=0.5))
    assert isinstance(failure, ThrottlingError)
    assert classify(failure) == (FailureType.THROTTLING_ERROR, "ThrottlingException")
    assert re.search(r"still throttled after waiting \d+\.\d s for the quota, longer than max_throttle_wait "
                     r"\(0\.5 s; \d+ calls refused\)", str(failure)), str(failure)
    assert failure.model_id == MODEL  # type: ignore[attr-defined]
    assert converse_server.throttled == len(converse_server.requests) >= 2  # waited, tried again, refused again


def test_once_the_quota_refused_everything_for_the_bound_the_next_image_fails_at_once(
        converse_server: ConverseServer) -> None:
    converse_server.quota = Quota(requests_per_second=0)
    engine = engine_for(converse_server, max_throttle_wait=0.3)
    failure_of(engine)  # waited the bound
    before = len(converse_server.requests)
    failure = failure_of(engine)
    assert len(converse_server.requests) == before + 1  # one call, refused: no second wait of the bound
    assert re.search(r"the quota has refused every call for \d+\.\d s, longer than max_throttle_wait \(0\.3 s; "
                     r"1 call refused\)", str(failure)), str(failure)


def test_max_throttle_wait_zero_fails_at_the_first_throttle(converse_server: ConverseServer) -> None:
    converse_server.default = error("ThrottlingException", "Too many requests, please wait")
    failure = failure_of(engine_for(converse_server, max_attempts=3, max_throttle_wait=0))
    assert len(converse_server.requests) == 1  # neither botocore nor the pace went again
    assert classify(failure) == (FailureType.THROTTLING_ERROR, "ThrottlingException")


def test_engines_calling_one_model_share_one_pace(converse_server: ConverseServer) -> None:
    one, two = engine_for(converse_server), engine_for(converse_server)
    other_model = engine_for(converse_server, model_id="amazon.nova-pro-v1:0")
    capped = engine_for(converse_server, rate=5)
    assert one.pace is two.pace
    assert other_model.pace is not one.pace and capped.pace is not one.pace
    assert one.pace.rate is None and capped.pace.rate == 5  # no limit until a throttle; --rate from the start


def test_many_threads_under_a_tokens_a_minute_quota_lose_no_image(converse_server: ConverseServer) -> None:
    """Twelve threads against a quota of about 15 answers a second, counted in tokens: every image
    is answered once, the throttled calls waited and went again, and the pace learned the tokens a call costs."""
    converse_server.default = ok(input_tokens=1200, output_tokens=180, delay=0.02)
    # The quota's clock moves 1/30 s a look, whatever the machine's speed: the calls always come twice
    # as fast as it refills (a loaded machine sent them too slowly to be throttled by the wall clock).
    looks = itertools.count()
    converse_server.quota = Quota(tokens_per_minute=15 * 1380 * 60, clock=lambda: next(looks) / 30)
    engine = engine_for(converse_server, max_attempts=1, model_retries=0, concurrency=12)
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: engine.run(png_image()), range(36)))
    assert len(results) == 36
    assert len(converse_server.requests) - converse_server.throttled == 36  # each image admitted once
    assert converse_server.throttled >= 1 and engine.quota_status().throttled == converse_server.throttled
    assert sum(r.details["throttled"] for r in results) == converse_server.throttled
    assert engine.pace.tokens_per_call == 1380 and engine.pace.tokens.rate is not None


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


@pytest.mark.parametrize("path", ["tool", "text"])
@pytest.mark.parametrize("reason", ["guardrail_intervened", "content_filtered", "malformed_tool_use",
                                    "something_new"])
def test_other_stop_reasons_are_parsing_errors(converse_server: ConverseServer, reason: str, path: str) -> None:
    converse_server.default = ok("Sorry, I can't help with that.", stop_reason=reason)
    failure = failure_of(engine_for(converse_server, answer_path=path))
    assert classify(failure) == (FailureType.PARSING_ERROR, f"StopReason:{reason}")
    assert "stopReason=" + reason in str(failure)
    assert failure.raw_output == "Sorry, I can't help with that."


@pytest.mark.parametrize("path, reply, outcome", [
    ("tool", tool_use(TIMESHEET), "tool_use"),
    ("tool", tool_use(TIMESHEET, stop_reason="end_turn"), "end_turn"),  # a call is a call
    ("tool", ok("Here is the timesheet: " + json.dumps(TIMESHEET)), "ToolNotCalled"),
    ("tool", tool_use(TIMESHEET, stop_reason="max_tokens"), "StopReason:max_tokens"),
    ("tool", tool_use(TIMESHEET, stop_reason="content_filtered"), "StopReason:content_filtered"),
    ("tool", tool_use(TIMESHEET, stop_reason="guardrail_intervened"), "StopReason:guardrail_intervened"),
    ("text", ok(json.dumps(TIMESHEET)), "end_turn"),
    ("text", ok(json.dumps(TIMESHEET), stop_reason="max_tokens"), "StopReason:max_tokens"),
    ("text", ok(json.dumps(TIMESHEET), stop_reason="content_filtered"), "StopReason:content_filtered"),
    ("text", ok(json.dumps(TIMESHEET), stop_reason="guardrail_intervened"), "StopReason:guardrail_intervened"),
    ("text", ok(json.dumps(TIMESHEET), stop_reason="tool_use"), "StopReason:tool_use"),  # no tool was offered
])
def test_stop_reason_decides_whether_the_answer_is_complete(converse_server: ConverseServer, path: str,
                                                            reply: Reply, outcome: str) -> None:
    """Even a whole timesheet counts only when the model ended as the path expects."""
    converse_server.default = reply
    engine = engine_for(converse_server, answer_path=path)
    if outcome in ("tool_use", "end_turn"):
        result = engine.run(png_image())
        assert result.stop_reason == outcome and json.loads(result.raw_output) == TIMESHEET
    else:
        assert classify(failure_of(engine)) == (FailureType.PARSING_ERROR, outcome)


# --- the tool path's failure shapes ------------------------------------------------------------

def test_text_instead_of_the_tool_call_keeps_the_text(converse_server: ConverseServer) -> None:
    converse_server.default = ok("I cannot find a timesheet in this image.")
    failure = failure_of(engine_for(converse_server))
    assert classify(failure) == (FailureType.PARSING_ERROR, "ToolNotCalled")
    assert failure.raw_output == "I cannot find a timesheet in this image."
    assert (failure.model_id, failure.input_tokens) == (MODEL, 1200)  # type: ignore[attr-defined]


def test_another_tools_call_is_not_an_answer(converse_server: ConverseServer) -> None:
    converse_server.default = tool_use(TIMESHEET, name="get_weather")
    assert classify(failure_of(engine_for(converse_server))) == (FailureType.PARSING_ERROR, "ToolNotCalled")


def test_max_tokens_in_the_middle_of_the_input_keeps_what_arrived(converse_server: ConverseServer) -> None:
    partial = {k: TIMESHEET[k] for k in ("employee_name", "employee_id", "week_ending")}
    partial["entries"] = [TIMESHEET["entries"][0]]
    converse_server.default = tool_use(partial, stop_reason="max_tokens", output_tokens=2048)
    failure = failure_of(engine_for(converse_server))
    assert classify(failure) == (FailureType.PARSING_ERROR, "StopReason:max_tokens")
    assert json.loads(failure.raw_output or "") == partial
    assert failure.output_tokens == 2048  # type: ignore[attr-defined]


def test_two_different_calls_are_not_one_answer(converse_server: ConverseServer) -> None:
    other = dict(TIMESHEET, total_hours=17.0)
    converse_server.push(tool_use(TIMESHEET, other), tool_use(TIMESHEET, TIMESHEET))
    engine = engine_for(converse_server)
    failure = failure_of(engine)
    assert classify(failure) == (FailureType.PARSING_ERROR, "ToolCalledMoreThanOnce")
    assert [json.loads(line) for line in (failure.raw_output or "").splitlines()] == [TIMESHEET, other]
    assert json.loads(engine.run(png_image()).raw_output) == TIMESHEET  # the same call twice is one answer


def test_input_that_breaks_the_schema_is_handed_to_the_reader(converse_server: ConverseServer) -> None:
    broken = dict(TIMESHEET, total_hours="16,5", entries="not a list")
    converse_server.default = tool_use(broken)
    assert json.loads(engine_for(converse_server).run(png_image()).raw_output) == broken


def test_input_given_as_a_json_string_is_its_own_raw_output(converse_server: ConverseServer) -> None:
    converse_server.default = tool_use(json.dumps(TIMESHEET))
    assert engine_for(converse_server).run(png_image()).raw_output == json.dumps(TIMESHEET)


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
    from ocrlab.timesheet.answers import parse_model_json
    fenced = "Here is the timesheet:\n```json\n" + json.dumps(TIMESHEET, indent=2) + "\n```\n"
    converse_server.default = ok(fenced)
    result = engine_for(converse_server, answer_path="text").run(png_image())
    assert result.raw_output == fenced  # the engine hands over the answer untouched
    parsed = parse_model_json(result.raw_output)
    assert (parsed["employee_id"], parsed["total_hours"], len(parsed["entries"])) == ("E-10472", 16.5, 2)


@pytest.mark.parametrize("path", ["tool", "text"])
def test_wrong_shape_answer_is_a_parsing_error(converse_server: ConverseServer, path: str) -> None:
    from ocrlab.timesheet.answers import parse_model_json
    converse_server.default = ok({"name": "Maria Gonzalez", "rows": [], "total": 16.5})
    result = engine_for(converse_server, answer_path=path).run(png_image())
    with pytest.raises(ParsingError) as info:
        parse_model_json(result.raw_output)
    assert classify(info.value)[0] == FailureType.PARSING_ERROR
    assert info.value.raw_output == result.raw_output
