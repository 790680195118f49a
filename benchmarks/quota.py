"""A Bedrock batch under the account's quota: `ocrlab batch --engine bedrock --concurrency 32` on 480
images against Converse servers (each in a process of its own) that answer after 200 ms and enforce 40
requests a second, or the same in tokens a minute, throttling at once as the service does.

Figures: images a second over the quota (the ideal: a batch that never waits on anything else), the
THROTTLING_ERROR failures, model calls per image (throttled ones included), best of interleaved rounds.
Beside them, the pace against botocore's `adaptive` retry mode on the same server, without the store:
threads calling the model through ocrlab's engine, and threads calling a boto3 client in adaptive mode
(its attempts used up by throttles, the call goes again, as the engine's would).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .perf import _images
from .run import best_of

HERE = Path(__file__).resolve().parent
TOKENS_PER_ANSWER = 1200 + 180  # the local server's usage: inputTokens + outputTokens


class Server:
    """benchmarks.converse_process with a quota; `counts()` asks it for (requests, throttled) so far."""

    def __init__(self, delay: float, *quota: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.converse_process", "--delay", str(delay),
                                         *quota], cwd=HERE.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None and self.process.stdin is not None
        self.url = self.process.stdout.readline().strip()

    def counts(self) -> tuple[int, int]:
        assert self.process.stdout is not None and self.process.stdin is not None
        self.process.stdin.write("counts\n")
        self.process.stdin.flush()
        requests, throttled = self.process.stdout.readline().split()
        return int(requests), int(throttled)

    def stop(self) -> None:
        self.process.communicate("")


def _batch(server: Server, images: int, concurrency: int, name: str) -> dict[str, Any]:
    from ocrlab.ocr.engines import pacing
    from ocrlab.runs.batch import run_batch
    from ocrlab.store import open_store
    pacing.reset()  # each round finds the quota afresh, as a new `ocrlab batch` process does
    folder = _images(Path(tempfile.mkdtemp(prefix="ocrlab-quota-")) / name, images)
    before = server.counts()
    summary = run_batch(str(folder), open_store(f"perf-quota-{name}"), engine="bedrock", concurrency=concurrency,
                        progress=False, engine_options={"endpoint_url": server.url})
    requests, throttled = (after - was for after, was in zip(server.counts(), before))
    return {"succeeded": summary.succeeded, "throttling_errors": summary.failure_types.get("THROTTLING_ERROR", 0),
            "failure_types": summary.failure_types, "seconds": summary.elapsed_seconds,
            "calls_per_image": round(requests / images, 3), "throttled_calls": throttled,
            "summary_throttled": summary.throttled, "final_rate": summary.rate}


def _figures(run: dict[str, Any], images: int, per_second: float) -> dict[str, Any]:
    rate = run["succeeded"] / run["seconds"]
    # The quota's bucket holds a second of it (tests/support/converse_server.py, Quota): what it could admit in
    # the batch's time is that second more than the rate says, hence a figure above 1 on a short batch.
    admissible = per_second * (run["seconds"] + 1)
    return {**run, "images_per_second": round(rate, 1), "over_quota": round(rate / per_second, 3),
            "share_of_admissible": round(run["succeeded"] / admissible, 3),
            "met": rate / per_second >= 0.9 and run["throttling_errors"] == 0 and run["calls_per_image"] <= 1.2
            and run["succeeded"] == images}


def _prepared() -> Any:
    import io

    from PIL import Image

    from ocrlab.ocr.engines import PreparedImage
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 80, 200)).save(buffer, "PNG")
    data = buffer.getvalue()
    return PreparedImage(data, "png", 40, 30, len(data), "png")


def _calls_through_engine(server: Server, images: int, concurrency: int) -> int:
    """Threads reading through one BedrockEngine (its pace), no store; returns the images answered."""
    from ocrlab.ocr.engines import pacing
    from ocrlab.ocr.engines.bedrock import BedrockEngine
    pacing.reset()
    engine = BedrockEngine(endpoint_url=server.url, concurrency=concurrency)
    image = _prepared()
    with ThreadPoolExecutor(concurrency) as pool:
        return sum(1 for _ in pool.map(lambda _: engine.run(image), range(images)))


def _calls_adaptive(server: Server, images: int, concurrency: int) -> int:
    """The same calls through a boto3 client in botocore's adaptive retry mode (4 attempts a call)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from ocrlab.ocr.engines.bedrock import BedrockEngine
    request = BedrockEngine(endpoint_url=server.url)._request(_prepared())  # the engine's own request body
    client = boto3.session.Session().client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=server.url,
        config=Config(retries={"mode": "adaptive", "total_max_attempts": 4}, max_pool_connections=concurrency))

    def one(_: int) -> None:
        while True:
            try:
                client.converse(**request)
                return
            except ClientError as exc:  # throttled past botocore's attempts: the image goes again
                if exc.response["Error"]["Code"] != "ThrottlingException":
                    raise
    with ThreadPoolExecutor(concurrency) as pool:
        return sum(1 for _ in pool.map(one, range(images)))


def _paced(server: Server, fn: Any, images: int, concurrency: int) -> dict[str, Any]:
    before = server.counts()
    answered = fn(server, images, concurrency)
    requests, throttled = (after - was for after, was in zip(server.counts(), before))
    return {"answered": answered, "calls_per_image": round(requests / images, 3), "throttled_calls": throttled}


def bench_quota(images: int = 480, per_second: float = 40, concurrency: int = 32, delay: float = 0.2,
                rounds: int = 2) -> dict[str, Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the local servers check no signature
        os.environ.setdefault(name, "benchmark")
    tokens_per_minute = per_second * TOKENS_PER_ANSWER * 60
    servers = {"requests": Server(delay, "--rps", str(per_second)),
               "tokens": Server(delay, "--tpm", str(tokens_per_minute)),
               "ocrlab_pace": Server(delay, "--rps", str(per_second)),
               "botocore_adaptive": Server(delay, "--rps", str(per_second))}
    try:
        (_, by_requests), (_, by_tokens) = best_of(
            rounds, lambda r: _batch(servers["requests"], images, concurrency, f"requests-{r}"),
            lambda r: _batch(servers["tokens"], images, concurrency, f"tokens-{r}"))
        (pace_s, pace), (adaptive_s, adaptive) = best_of(
            rounds, lambda _: _paced(servers["ocrlab_pace"], _calls_through_engine, images, concurrency),
            lambda _: _paced(servers["botocore_adaptive"], _calls_adaptive, images, concurrency))
    finally:
        for server in servers.values():
            server.stop()
    requests_quota = _figures(by_requests, images, per_second)
    tokens_quota = _figures(by_tokens, images, per_second)
    return {"images": images, "concurrency": concurrency, "model_delay_s": delay, "rounds": rounds,
            "quota_requests_per_second": per_second, "quota_tokens_per_minute": tokens_per_minute,
            "requests_quota": requests_quota, "tokens_quota": tokens_quota,
            "calls_only": {"ocrlab_pace": {**pace, "over_quota": round(images / pace_s / per_second, 3)},
                           "botocore_adaptive": {**adaptive, "over_quota": round(images / adaptive_s / per_second, 3)}},
            "targets": {"over_quota": ">= 0.9", "throttling_errors": "0", "calls_per_image": "<= 1.2"},
            "met": requests_quota["met"] and tokens_quota["met"]}
