"""An HTTP proxy in front of dynalite that injects DynamoDB throttling (dynalite never throttles), and
loses an answer: the request is carried out, the client hears a 500 and retries."""
from __future__ import annotations

import http.client
import json
import random
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A dead upstream drops the client's connection, as a dead database would: that is the fault
        being simulated, not an error to print (a soak run would print thousands)."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, http.client.HTTPException, TimeoutError)):
            super().handle_error(request, client_address)


class FaultProxy:
    """Forwards requests to `upstream_port`; the next `throttle` requests get a 400 throttling error,
    and so does each write with probability `write_throttle_rate` (seeded: runs repeat). The first
    request for which `lose_answer(operation, body)` holds is forwarded, but answered 500. With
    `hold_put` set to N, the Nth PutItem waits (`holding` is set) until `release` is set, then goes on:
    a gate, so a test can act while a client is mid-write."""

    WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})

    def __init__(self, upstream_port: int, write_throttle_rate: float = 0.0, seed: int = 0) -> None:
        self.upstream_port = upstream_port
        self.write_throttle_rate = write_throttle_rate
        self._random = random.Random(seed)
        self.throttle = 0
        self.throttle_only: frozenset[str] | None = None  # operations `throttle` applies to (None: all)
        self.throttled = 0
        self.forwarded = 0
        self.lose_answer: Callable[[str, bytes], bool] | None = None
        self.lost = 0
        self.hold_put: int | None = None
        self.puts = 0
        self.holding, self.release = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _take_fault(self, operation: str) -> bool:
        with self._lock:
            chosen = self.throttle > 0 and (self.throttle_only is None or operation in self.throttle_only)
            if chosen or (operation in self.WRITES and self._random.random() < self.write_throttle_rate):
                self.throttle -= chosen
                self.throttled += 1
                return True
            self.forwarded += 1
            return False

    def _hold(self, operation: str) -> None:
        with self._lock:
            self.puts += operation == "PutItem"
            held = operation == "PutItem" and self.puts == self.hold_put
        if held:
            self.holding.set()
            self.release.wait(60)

    def _take_loss(self, operation: str, body: bytes) -> bool:
        with self._lock:
            if self.lose_answer is not None and self.lose_answer(operation, body):
                self.lose_answer = None
                self.lost += 1
                return True
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # DynamoDB's JSON protocol is POST only
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy._hold(self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1])
                if proxy._take_fault(self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]):
                    payload = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#"
                                                    "ProvisionedThroughputExceededException",
                                          "message": "The level of configured provisioned throughput "
                                                     "for the table was exceeded"}).encode()
                    status, headers = 400, {"Content-Type": "application/x-amz-json-1.0"}
                else:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                    conn.request("POST", self.path, body, {k: v for k, v in self.headers.items()})
                    resp = conn.getresponse()
                    payload, status = resp.read(), resp.status
                    headers = {k: v for k, v in resp.getheaders()
                               if k.lower() not in ("content-length", "connection", "transfer-encoding")}
                    conn.close()
                    if proxy._take_loss(self.headers.get("X-Amz-Target", "").rpartition(".")[2], body):
                        payload = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                                              "message": "Internal server error"}).encode()
                        status = 500
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def fault_proxy(dynalite):
    """A FaultProxy in front of the session's dynalite."""
    with FaultProxy(dynalite.port) as proxy:
        yield proxy
