"""Amazon Bedrock (Nova Lite) through the Converse API; AWS errors become ocrlab failures.

Two answer paths:
- `tool` (default): structured output. The request declares one tool whose input schema is the
  timesheet's (`ocrlab.timesheet.schema`) and forces it with `toolChoice`; the model answers with a
  `toolUse` block and its `input` object, which becomes the raw output as JSON. Decoding is
  greedy (temperature 0, and top-k 1 for Nova), as Nova's tool-use guidance advises.
- `text`: the prompt asks for JSON in plain text; the raw output is the model's text.
Both are read by `ocrlab.timesheet.answers`; `identity()` records which path, prompt and schema were used.

Under a quota: every call goes through the process's rate controller (ocrlab.ocr.engines.pacing) for
this endpoint and model. A throttled call is not botocore's to retry (it would count against
`max_attempts` and go again unpaced): it waits for its turn in the pace and goes again, for as long
as the quota stays exhausted up to `max_throttle_wait` seconds, then the image fails as
THROTTLING_ERROR with the wait in the message. An image throttled when the quota has already refused
every call of the process for that long fails at once: a batch against a quota exhausted for good
ends after one bound, not one bound per image.
"""
from __future__ import annotations

import json
import os
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from ocrlab.clients import client_config
from ocrlab.errors import ImageFailure, OCRError, OcrlabError, ParsingError, ThrottlingError, UnknownName
from ocrlab.ocr.engines import quota
from ocrlab.ocr.engines.base import Engine, EngineResult, ImageLimits, PreparedImage
from ocrlab.ocr.engines.pacing import RateController, Slot, controller_for
from ocrlab.ocr.engines.quota import QuotaStatus
from ocrlab.taxonomy import THROTTLING_CODES, aws_error_code
from ocrlab.timesheet.schema import SCHEMA_DIGEST, TIMESHEET_SCHEMA, TOOL_DESCRIPTION, TOOL_NAME, digest

DEFAULT_MODEL_ID = "amazon.nova-lite-v1:0"
DEFAULT_REGION = "us-east-1"
DEFAULT_PROMPT = "timesheet_v1"
# The packaged prompt each answer path uses unless a prompt is named or given as a file.
PATH_PROMPTS = {"tool": "timesheet_tool_v1", "text": DEFAULT_PROMPT}
# The stop reasons after which the answer is complete, per path; any other is a PARSING_ERROR.
COMPLETE_STOPS = {"tool": frozenset({"tool_use", "end_turn"}), "text": frozenset({"end_turn"})}

# Transient model failures that botocore's standard mode does not retry (408/424 are neither
# transient statuses nor modeled as retryable): we retry them a bounded number of times.
# (ModelNotReadyException is modeled retryable, so botocore already retries that one.)
MODEL_RETRY_CODES = frozenset({"ModelTimeoutException", "ModelErrorException"})
# Rate limiting the pace waits out. ServiceQuotaExceededException (a 400) is left out: a quota that
# a few minutes do not refill (tokens a day, say) is a failure of its own, never retried.
PACED_CODES = THROTTLING_CODES - {"ServiceQuotaExceededException"}
DEFAULT_MAX_THROTTLE_WAIT = 300.0


def _throttle_ends_the_call(response: Any = None, **_: Any) -> None:
    """botocore's needs-retry hook, registered first: a throttled answer ends botocore's call at once
    (raised as botocore would), so that the engine's pace, not botocore's retries, decides when to go again."""
    if response is not None:
        parsed = response[1]
        if (parsed.get("Error") or {}).get("Code") in PACED_CODES:
            raise ClientError(parsed, "Converse")


def prompt_names() -> list[str]:
    """The prompts shipped in the package, by name (the file name carries the version)."""
    folder = resources.files("ocrlab").joinpath("prompts")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))


def load_prompt(name: str = DEFAULT_PROMPT, path: str | os.PathLike[str] | None = None) -> str:
    """Prompt text from an explicit file, else a packaged prompt by name."""
    if path is not None:
        return Path(path).read_text(encoding="utf-8").strip()
    if name not in prompt_names():
        raise UnknownName("prompt", name, prompt_names())
    return resources.files("ocrlab").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8").strip()


class BedrockEngine(Engine):
    """OCR by a multimodal model: the image and the prompt in, the model's JSON answer out."""

    name = "bedrock"
    output_kind = "json"
    limits = ImageLimits(formats=frozenset({"png", "jpeg", "gif", "webp"}), max_bytes=3_750_000,
                         max_side=8000)

    def __init__(
        self,
        *,
        model_id: str | None = None,
        region: str | None = None,
        max_tokens: int = 2048,
        temperature: float = 0,
        max_attempts: int = 4,
        connect_timeout: float = 5,
        read_timeout: float = 120,
        max_pool_connections: int = 10,
        concurrency: int = 1,
        model_retries: int = 2,
        model_retry_backoff: float = 0.5,
        endpoint_url: str | None = None,
        client: Any = None,
        session: boto3.session.Session | None = None,
        prompt_file: str | os.PathLike[str] | None = None,
        prompt_name: str | None = None,
        answer_path: str = "tool",
        rate: float | None = None,
        max_throttle_wait: float = DEFAULT_MAX_THROTTLE_WAIT,
    ) -> None:
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0):
            raise OcrlabError(f"engine 'bedrock': rate must be a number of requests a second above 0, got {rate!r}")
        for option, value, low in (("max_tokens", max_tokens, 1), ("max_attempts", max_attempts, 1),
                                   ("max_throttle_wait", max_throttle_wait, 0),
                                   ("connect_timeout", connect_timeout, 0.001), ("read_timeout", read_timeout, 0.001),
                                   ("max_pool_connections", max_pool_connections, 1), ("concurrency", concurrency, 1),
                                   ("model_retries", model_retries, 0), ("model_retry_backoff", model_retry_backoff, 0),
                                   ("temperature", temperature, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                raise OcrlabError(f"engine 'bedrock': {option} must be a number of at least {low:g}, got {value!r}")
        self.model_id = model_id or DEFAULT_MODEL_ID
        self.answer_path = answer_path
        if self.answer_path not in PATH_PROMPTS:
            raise UnknownName("answer path", self.answer_path, list(PATH_PROMPTS))
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.model_retries = max(0, model_retries)
        self.model_retry_backoff = model_retry_backoff
        prompt_name = prompt_name or PATH_PROMPTS[self.answer_path]
        self.prompt_name = Path(prompt_file).stem if prompt_file is not None else prompt_name
        self.prompt = load_prompt(prompt_name, prompt_file)
        if client is None:
            config = client_config(
                # total_max_attempts counts the first call; botocore's "max_attempts" key counts
                # retries only, so max_attempts=4 there would make 5 calls.
                retries={"mode": "standard", "total_max_attempts": max(1, max_attempts)},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                # Every batch worker needs its own pooled connection, or threads queue on the pool.
                max_pool_connections=max(concurrency, max_pool_connections),
            )
            # A shared session saves reloading botocore's service data for every engine.
            session = session or boto3.session.Session()
            if session.get_credentials() is None:  # else every image of the batch fails the same way
                raise OcrlabError("engine 'bedrock': no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID "
                                  "and AWS_SECRET_ACCESS_KEY, or run where an IAM role provides them")
            # endpoint_url=None lets boto3 apply AWS_ENDPOINT_URL_BEDROCK_RUNTIME itself.
            client = session.client("bedrock-runtime",
                                    region_name=region or session.region_name or DEFAULT_REGION,
                                    endpoint_url=endpoint_url, config=config)
        # One client per engine, shared by the batch threads: boto3 clients are thread safe.
        self.client = client
        self.client.meta.events.register_first("needs-retry.bedrock-runtime.Converse", _throttle_ends_the_call,
                                               unique_id="ocrlab-throttle-ends-the-call")
        self.max_throttle_wait = float(max_throttle_wait)
        # One pace per quota in the process: every engine calling this endpoint and model shares it.
        self.pace: RateController = controller_for(str(client.meta.endpoint_url), str(client.meta.region_name),
                                                   self.model_id, cap=rate)
        self._throttled = 0  # this engine's calls refused by the quota
        self._count_lock = threading.Lock()

    def quota_status(self) -> QuotaStatus:
        return QuotaStatus(self.pace.rate, self._throttled)

    def identity(self) -> dict[str, str]:
        """Model, answer path, prompt and schema: what a prompt comparison must tell apart."""
        return {**super().identity(), "answer_path": self.answer_path, "prompt": self.prompt_name,
                "prompt_sha256": digest(self.prompt), "schema_sha256": SCHEMA_DIGEST}

    def _request(self, image: PreparedImage) -> dict[str, Any]:
        request: dict[str, Any] = {
            "modelId": self.model_id,
            "messages": [{"role": "user", "content": [
                {"image": {"format": image.format, "source": {"bytes": image.data}}},
                {"text": self.prompt},
            ]}],
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": self.temperature},
        }
        if self.answer_path == "tool":
            request["toolConfig"] = {
                "tools": [{"toolSpec": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION,
                                        "inputSchema": {"json": TIMESHEET_SCHEMA}}}],
                "toolChoice": {"tool": {"name": TOOL_NAME}},
            }
            if "amazon.nova-" in self.model_id:  # Nova's own field; other models reject it
                request["additionalModelRequestFields"] = {"inferenceConfig": {"topK": 1}}
        return request

    def _recognize(self, image: PreparedImage) -> EngineResult:
        request = self._request(image)
        attempt = 0
        throttles = _Throttles(self.max_throttle_wait, quota.deadline())
        while True:
            slot = self.pace.acquire(throttles.deadline(self.pace.refusing_since))
            try:
                response = self.client.converse(**request)
                break
            except ClientError as exc:
                code = aws_error_code(exc) or "ClientError"
                if code in PACED_CODES:
                    self._throttled_call(slot)
                    if throttles.give_up(slot, self.pace.refusing_since):
                        raise self._failure(ThrottlingError, f"{throttles.why()}: {exc} [model {self.model_id}]",
                                            code) from exc
                    continue
                self.pace.answered(slot)
                if code in MODEL_RETRY_CODES and attempt < self.model_retries:
                    attempt += 1
                    time.sleep(self.model_retry_backoff * 2 ** (attempt - 1))
                    continue
                raise self._client_failure(exc, code) from exc
            except (BotoCoreError, ResponseParserError) as exc:
                # Timeouts, refused connections, cut-off or malformed responses: the call failed.
                # (ResponseParserError is not a BotoCoreError, hence both.)
                raise self._failure(OCRError, f"Bedrock call to {self.model_id} failed: {exc}",
                                    type(exc).__name__) from exc
        usage = response.get("usage") or {}
        self.pace.succeeded(slot, (usage.get("inputTokens") or 0) + (usage.get("outputTokens") or 0))
        result = self._result(response)
        result.details["throttled"] = throttles.count
        return result

    def _throttled_call(self, slot: Slot) -> None:
        self.pace.throttled_call(slot)
        with self._count_lock:
            self._throttled += 1

    def _client_failure(self, exc: ClientError, code: str) -> ImageFailure:
        # str(exc) already names the code, botocore's retry count and the service's message.
        message = f"{exc} [model {self.model_id}]"
        # A quota no wait refills (ServiceQuotaExceededException, a 400, never retried).
        cls = ThrottlingError if code in THROTTLING_CODES else OCRError
        return self._failure(cls, message, code)

    def _result(self, response: dict[str, Any]) -> EngineResult:
        message = (response.get("output") or {}).get("message") or {}
        content = message.get("content") or []
        text = "".join(block["text"] for block in content if isinstance(block.get("text"), str))
        # Tool inputs as JSON text: what the model answered on the tool path, stored as raw output.
        # An input the model gave as a string (some models stringify it) is its text already.
        calls = [tool["input"] if isinstance(tool["input"], str) else json.dumps(tool["input"], ensure_ascii=False)
                 for block in content if isinstance(tool := block.get("toolUse"), dict)
                 and tool.get("name") == TOOL_NAME and "input" in tool]
        usage = response.get("usage") or {}
        tokens: dict[str, Any] = {"input_tokens": usage.get("inputTokens"), "output_tokens": usage.get("outputTokens")}
        stop_reason = response.get("stopReason")
        if stop_reason is None and not message:
            # botocore turns a 200 whose body is not JSON into an empty dict instead of raising:
            # no answer from the model arrived, so this is a call failure, not a parse failure.
            raise self._failure(OCRError, f"Bedrock returned no Converse output for {self.model_id}",
                                "MalformedResponse", **tokens)
        calls = list(dict.fromkeys(calls))  # the same input twice needs no choosing
        raw = calls[0] if calls else text
        if stop_reason not in COMPLETE_STOPS[self.answer_path]:
            # A cut-off, filtered or guarded answer is never a timesheet, even if it parses.
            raise self._failure(ParsingError, f"model stopped with stopReason={stop_reason}",
                                f"StopReason:{stop_reason}", raw_output=raw, **tokens)
        if self.answer_path == "tool" and len(calls) != 1:
            # Forced to call the tool once, the model did not: its text is no structured answer.
            what = "answered in text instead of calling" if not calls else f"called {len(calls)} times"
            raise self._failure(ParsingError, f"model {what} the {TOOL_NAME} tool",
                                "ToolNotCalled" if not calls else "ToolCalledMoreThanOnce",
                                raw_output=text if not calls else "\n".join(calls), **tokens)
        metadata = response.get("ResponseMetadata") or {}
        return EngineResult(
            raw_output=raw,
            model_id=self.model_id,
            stop_reason=stop_reason,
            **tokens,
            details={
                "prompt": self.prompt_name,
                "latency_ms": (response.get("metrics") or {}).get("latencyMs"),
                "request_id": metadata.get("RequestId"),
                "retry_attempts": metadata.get("RetryAttempts", 0),
            },
        )

    def _failure(self, cls: type[ImageFailure], message: str, code: str, *, raw_output: str | None = None,
                 input_tokens: int | None = None, output_tokens: int | None = None) -> ImageFailure:
        """An ImageFailure that also carries what the failure record needs (ModelId, tokens)."""
        return cls(message, code, raw_output=raw_output, model_id=self.model_id,
                   input_tokens=input_tokens, output_tokens=output_tokens)


class _Throttles:
    """One image's throttled calls: since when the quota has refused it, and when to stop waiting
    (after `bound` seconds of it, when the quota has refused every call for that long, or at the
    caller's deadline)."""

    def __init__(self, bound: float, caller_deadline: float | None) -> None:
        self.bound, self.caller_deadline = bound, caller_deadline
        self.since: float | None = None
        self.exhausted_for = 0.0  # how long the quota had refused every call, when this image gave up
        self.count = 0

    def deadline(self, refusing_since: float | None = None) -> float | None:
        """When the next call must go at the latest (the last try), if anything bounds it: a quota that
        has refused every call for the bound already gets one try at once, not a turn at its slow pace."""
        ends = [t for t in (self.since, refusing_since) if t is not None]
        ends = [t + self.bound for t in ends] + ([self.caller_deadline] if self.caller_deadline is not None else [])
        return min(ends) if ends else None

    def give_up(self, slot: Slot, refusing_since: float | None) -> bool:
        """Count a throttled call; True when there is no time left to try again."""
        self.count += 1
        if self.since is None:
            self.since = slot.start_at
        now = time.monotonic()
        self.exhausted_for = now - refusing_since if refusing_since is not None else 0.0
        end = self.deadline()
        return (end is not None and now >= end) or self.exhausted_for >= self.bound

    def why(self) -> str:
        calls = f"{self.count} call{'s' * (self.count != 1)} refused"
        waited = time.monotonic() - self.since if self.since is not None else 0.0
        if waited < self.bound <= self.exhausted_for:
            return (f"still throttled: the quota has refused every call for {self.exhausted_for:.1f} s, longer than "
                    f"max_throttle_wait ({self.bound:g} s; {calls})")
        if self.caller_deadline is not None and time.monotonic() >= self.caller_deadline:
            return (f"still throttled after waiting {waited:.1f} s for the quota when the caller's time "
                    f"ran out ({calls})")
        return (f"still throttled after waiting {waited:.1f} s for the quota, longer than "
                f"max_throttle_wait ({self.bound:g} s; {calls})")
