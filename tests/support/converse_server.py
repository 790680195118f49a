"""A local HTTP server speaking the Bedrock Runtime Converse REST protocol, scriptable per test.

Real boto3 clients talk to it over real HTTP, so botocore's serializer, retries, timeouts and
error parser all run as they do against AWS. Errors follow botocore's rest-json parser: the
code comes from the `x-amzn-ErrorType` header (anything after ':' is dropped), the message
from the JSON body's `message`.

Answers take the service's shapes: text content blocks with stopReason `end_turn`, or, for a
request that declares a tool, a `<thinking>` text block then a `toolUse` block (`toolUseId`,
`name`, `input`) with stopReason `tool_use`. The failure shapes are scripted the same way:
text instead of the tool call (`ok("...")` to a tool request), input that breaks the schema
(`tool_use({...})`), and a stop at `max_tokens` in the middle of the input.

A `Quota` makes the server enforce Bedrock's per-account limits (requests a second, tokens a
minute) as the service does: a request over either is refused at once with a 429
`ThrottlingException`, and every refusal is counted.
"""
from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import unquote

import boto3
import pytest
from botocore.config import Config

from support.helpers import TIMESHEET

# The status each Bedrock Runtime error has in the service model.
ERROR_STATUS = {
    "AccessDeniedException": 403, "ResourceNotFoundException": 404, "ValidationException": 400,
    "ServiceQuotaExceededException": 400, "ModelTimeoutException": 408, "ModelErrorException": 424,
    "ThrottlingException": 429, "ModelNotReadyException": 429, "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}


# Nova reasons in a text block before it calls a tool.
THINKING = "<thinking>I read the timesheet's header, rows and total, then record them.</thinking>"


@dataclass
class Reply:
    """One scripted answer. `truncate` promises the whole body in Content-Length, sends half, closes."""

    status: int = 200
    body: Any = None                 # dict/list -> JSON; str/bytes sent as is; callable(Received) -> body
    error_type: str | None = None    # x-amzn-ErrorType header
    delay: float = 0.0               # seconds to wait before answering
    truncate: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self, received: Received | None = None) -> bytes:
        body = self.body(received) if callable(self.body) else self.body
        if isinstance(body, bytes):
            return body
        if isinstance(body, str):
            return body.encode()
        return json.dumps(body if body is not None else {}).encode()


def converse_body(content: list[dict[str, Any]], stop_reason: str, *, input_tokens: int = 1200,
                  output_tokens: int = 180, usage: bool = True) -> dict[str, Any]:
    """A Converse response body with these assistant content blocks."""
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "metrics": {"latencyMs": 321},
    }
    if usage:
        body["usage"] = {"inputTokens": input_tokens, "outputTokens": output_tokens,
                         "totalTokens": input_tokens + output_tokens}
    return body


def tool_block(name: str, tool_input: Any) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": "tooluse_test0123456789", "name": name, "input": tool_input}}


def ok(answer: str | dict[str, Any] | None = None, *, stop_reason: str | None = None, input_tokens: int = 1200,
       output_tokens: int = 180, usage: bool = True, delay: float = 0.0) -> Reply:
    """A Converse success. Text is sent as a text block, whatever the request asked (to a tool
    request: the model ignoring the tool). An object (default: the reference timesheet) is
    answered as the request asked: a call of its declared tool, else the object as JSON text."""
    answer = TIMESHEET if answer is None else answer

    def body(received: Received) -> dict[str, Any]:
        if isinstance(answer, str) or not received.tool_name:
            text = answer if isinstance(answer, str) else json.dumps(answer)
            content, stop = [{"text": text}], "end_turn"
        else:
            content, stop = [{"text": THINKING}, tool_block(received.tool_name, answer)], "tool_use"
        return converse_body(content, stop_reason or stop, input_tokens=input_tokens,
                             output_tokens=output_tokens, usage=usage)
    return Reply(200, body, delay=delay)


def tool_use(*inputs: Any, stop_reason: str = "tool_use", name: str | None = None,
             preamble: str | None = THINKING, input_tokens: int = 1200, output_tokens: int = 180) -> Reply:
    """A tool call with exactly these inputs (any JSON value: a partial object at `max_tokens`,
    one that breaks the schema, a string), of the request's tool unless `name` is given."""
    def body(received: Received) -> dict[str, Any]:
        tool = name or received.tool_name or "record_timesheet"
        content = ([{"text": preamble}] if preamble else []) + [tool_block(tool, i) for i in inputs]
        return converse_body(content, stop_reason, input_tokens=input_tokens, output_tokens=output_tokens)
    return Reply(200, body)


def error(code: str, message: str | None = None, *, status: int | None = None) -> Reply:
    """An AWS error answer, with the service model's status for `code` unless given."""
    return Reply(status or ERROR_STATUS.get(code, 400), {"message": message or f"{code} from test server"},
                 error_type=code)


class Quota:
    """Requests a second and tokens a minute, each a token bucket refilled continuously and holding
    `burst_seconds` of its rate (0 a second: exhausted for good). A request is refused at once when
    the request bucket has no whole request left or the token bucket is spent; an admitted answer's
    tokens (its `usage`) are charged as it is admitted, so the bucket may go into debt, which later
    requests wait out, as on the service."""

    def __init__(self, requests_per_second: float | None = None, tokens_per_minute: float | None = None, *,
                 burst_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.requests_per_second, self.tokens_per_minute = requests_per_second, tokens_per_minute
        self.burst_seconds, self._clock = burst_seconds, clock
        self._requests = self._request_capacity()
        self._tokens = self._token_capacity()
        self._at = clock()

    def _request_capacity(self) -> float:  # a quota of 0 is one exhausted for good
        return max(1.0, self.requests_per_second * self.burst_seconds) if self.requests_per_second else 0.0

    def _token_capacity(self) -> float:
        return (self.tokens_per_minute or 0) / 60 * self.burst_seconds

    def _refill(self) -> None:
        now = self._clock()
        elapsed, self._at = now - self._at, now
        if self.requests_per_second is not None:
            self._requests = min(self._request_capacity(), self._requests + elapsed * self.requests_per_second)
        if self.tokens_per_minute is not None:
            self._tokens = min(self._token_capacity(), self._tokens + elapsed * self.tokens_per_minute / 60)

    def admit(self) -> bool:
        """Take one request, or refuse it (not thread safe: the server calls it under its lock)."""
        self._refill()
        if self.requests_per_second is not None and self._requests < 1:
            return False
        if self.tokens_per_minute is not None and self._tokens <= 0:
            return False
        if self.requests_per_second is not None:
            self._requests -= 1
        return True

    def charge(self, tokens: int) -> None:
        if self.tokens_per_minute is not None:
            self._tokens -= tokens


def usage_tokens(payload: bytes) -> int:
    """The total tokens a Converse answer's `usage` reports (0 for anything else)."""
    try:
        usage = json.loads(payload).get("usage") or {}
    except (ValueError, AttributeError):
        return 0
    return int(usage.get("inputTokens", 0)) + int(usage.get("outputTokens", 0))


THROTTLED = "Too many requests, please wait before trying again."


@dataclass
class Received:
    """What one request carried, decoded."""

    model_id: str
    path: str
    headers: dict[str, str]
    body: Any

    def content(self) -> list[dict[str, Any]]:
        return [block for message in self.body.get("messages", []) for block in message.get("content", [])]

    @property
    def images(self) -> list[bytes]:
        return [base64.b64decode(b["image"]["source"]["bytes"]) for b in self.content() if "image" in b]

    @property
    def image_formats(self) -> list[str]:
        return [b["image"]["format"] for b in self.content() if "image" in b]

    @property
    def texts(self) -> list[str]:
        return [b["text"] for b in self.content() if "text" in b]

    @property
    def tool_name(self) -> str | None:
        """The tool the request declared, if any."""
        tools = (self.body.get("toolConfig") or {}).get("tools") or [{}]
        return (tools[0].get("toolSpec") or {}).get("name")


class ConverseServer:
    """ThreadingHTTPServer on 127.0.0.1, ephemeral port. Queue replies with `push`; else `default`,
    a Reply or a function choosing one for each request."""

    def __init__(self) -> None:
        self.default: Reply | Callable[[Received], Reply] = ok()
        self.requests: list[Received] = []
        self.in_flight = 0  # requests being answered now, and the most at once
        self.peak_in_flight = 0
        self.quota: Quota | None = None  # Bedrock's account quotas, enforced when set
        self.throttled = 0  # requests the quota refused (they are in `requests` too)
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.gate = threading.Event()  # answers wait while it is clear (`hold`), a gate rather than a delay
        self.gate.set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True  # a handler still sleeping on `delay` must not block stop()
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),  # quick stop()
                                        name="converse-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ConverseServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = ok()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            if self.quota is not None and not self.quota.admit():
                self.throttled += 1
                return error("ThrottlingException", THROTTLED)
            if self._queue:
                return self._queue.popleft()
        return self.default(received) if callable(self.default) else self.default

    def _charge(self, payload: bytes) -> None:
        if self.quota is not None:
            with self._lock:
                self.quota.charge(usage_tokens(payload))

    def client(self, **config: Any) -> Any:
        return make_client(self.url, **config)

    def hold(self) -> None:
        """Keep every answer until `release`: a test acts while requests are in flight, whatever the load."""
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def wait_in_flight(self, count: int, timeout: float = 60) -> bool:
        """Until `count` requests are being answered (held at the gate, or slow) at once."""
        with self._changed:
            return self._changed.wait_for(lambda: self.in_flight >= count, timeout)


def make_client(endpoint_url: str, *, max_attempts: int = 1, read_timeout: float = 5,
                connect_timeout: float = 2, **config: Any) -> Any:
    """A real boto3 bedrock-runtime client for the test server, with dummy credentials."""
    return boto3.session.Session().client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=endpoint_url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": max_attempts},
                      read_timeout=read_timeout, connect_timeout=connect_timeout, **config),
    )


def _handler_for(server: ConverseServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pooled connections expect
        disable_nagle_algorithm = True  # headers and body go in separate writes: avoid 40 ms stalls

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.split("/")
            if len(parts) != 4 or parts[1] != "model" or parts[3] != "converse":
                self._send(error("UnknownOperationException", f"no route for {self.path}", status=404))
                return
            try:
                body: Any = json.loads(raw or b"{}")
            except ValueError:
                body = raw
            received = Received(unquote(parts[2]), self.path, dict(self.headers.items()), body)
            with server._changed:
                server.in_flight += 1
                server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                server._changed.notify_all()
            try:
                reply = server._next(received)
                server.gate.wait(120)
                self._send(reply, received)
            finally:
                with server._changed:
                    server.in_flight -= 1
                    server._changed.notify_all()

        def _send(self, reply: Reply, received: Received | None = None) -> None:
            payload = reply.payload(received)
            if reply.status == 200:
                server._charge(payload)  # as the call is admitted: the service counts tokens from the start
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", f"test-{len(server.requests)}")
                if reply.error_type:
                    self.send_header("x-amzn-ErrorType", reply.error_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2] if reply.truncate else payload)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (read timeout): nothing to answer
            if reply.truncate:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean

    return Handler


@pytest.fixture
def converse_server() -> Iterator[ConverseServer]:
    server = ConverseServer().start()
    try:
        yield server
    finally:
        server.release()
        server.stop()
