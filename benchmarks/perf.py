"""Performance figures: ocrlab against a raw baseline measured in the same run, on the same dynalite.

Each entry is a ratio (and the two figures it is made of); none is a timed assertion. Write units
are computed from the requests, as DynamoDB bills them: a unit per started KB written, for the
table and again for every index the item appears in (dynalite counts no index writes).
"""
from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import tempfile
import tracemalloc
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore import xform_name
from PIL import Image

from .run import best_of, timed

HERE = Path(__file__).resolve().parent
FAILURE_DETAILS = {  # what a Bedrock parsing failure carries: the answer, the trace, the tokens
    "error_code": "SchemaError", "raw_ocr_output": json.dumps({"employee_name": "Maria Gonzalez",
                                                             "entries": [{"date": "2025-10-20", "time_in": "08:00",
                                                                          "time_out": "16:30", "hours": "8"}] * 14}),
    "stack_trace": "Traceback (most recent call last):\n" + "  File \"ocrlab/ocr/pipeline.py\", line 80, in process\n"
                   "    parsed = self.parse(result.raw_output, repairs)\n" * 28 + "ParsingError: the answer is not a timesheet",
    "model_id": "amazon.nova-lite-v1:0", "processing_time": 2.41, "input_tokens": 1520, "output_tokens": 412,
    "validation_errors": ["missing_field: total_hours"], "s3_bucket": "timesheets", "s3_region": "us-east-1",
    "image_size": 482113, "cloudwatch_log_stream": "2025/10/25/[$LATEST]0123456789abcdef"}


def _images(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        buffer = io.BytesIO()
        Image.new("RGB", (40 + i % 11, 30), (i % 256, 80, 200)).save(buffer, "PNG")
        (folder / f"p-{i:05d}.png").write_bytes(buffer.getvalue())
    return folder


class Requests:
    """Every request a client sends (by default, a DynamoDB client's), with its parameters (a botocore
    hook on the real client)."""

    def __init__(self, client: Any, event: str = "dynamodb") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register(f"provide-client-params.{event}", self._seen)

    def _seen(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, params))

    def count(self) -> Counter[str]:
        return Counter(name for name, _ in self.calls)


def _size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: names plus values (strings and numbers close enough for billing)."""
    total = 0
    for name, value in item.items():
        (kind, inner), = value.items()
        total += len(name.encode()) + (len(str(inner).encode()) if kind in ("S", "N") else len(json.dumps(inner)))
    return total


def write_units(calls: list[tuple[str, dict[str, Any]]], counter_bytes: int = 200) -> float:
    """Write units of the recorded requests: the table, plus every index each written item enters."""
    from ocrlab.store.layout import LAYOUT
    units = 0.0
    for name, params in calls:
        if name == "UpdateItem":  # the counter (or claim) item: small
            units += math.ceil(counter_bytes / 1024)
        elif name == "PutItem":
            item = params["Item"]
            units += math.ceil(_size(item) / 1024)
            for index in LAYOUT.indexes:
                if index.hash_key in item and index.range_key in item:
                    keep = item if index.projection == "ALL" else {
                        k: v for k, v in item.items()
                        if k in (LAYOUT.hash_key, LAYOUT.range_key, index.hash_key, index.range_key, *index.include)}
                    units += math.ceil(_size(keep) / 1024)
    return units


def bench_log(n: int) -> dict[str, Any]:
    """log_failed_image over a raw put_item of the same record (one thread), its requests and write units."""
    from ocrlab.records import FAILED_IMAGE, failure_item
    from ocrlab.store import open_store
    from ocrlab.store.failure_log import log_failed_image
    from ocrlab.store.layout import SHARD_ATTRIBUTE
    from ocrlab.store.shards import shard_key
    from ocrlab.store.table import serialize
    from ocrlab.version import OCRVersionInfo
    version = OCRVersionInfo("2.0.0", "2025-10-25", "benchmark")
    store, raw = open_store("perf-log"), open_store("perf-raw")
    log_failed_image(store, "warm.png", "PARSING_ERROR", "warm-up", version, FAILURE_DETAILS)  # version list, clients

    def one_raw(key: str) -> None:
        # The record as the table holds it, index keys included: since the layout's ByTypeShard
        # (2026-12-03) a record without its shard skipped an index write ocrlab's record makes, and
        # the ratio fell from 0.48 to 0.37 with ocrlab's own work unchanged.
        item = failure_item(key, "PARSING_ERROR", "the answer is not a timesheet", version, FAILURE_DETAILS)
        stored = {**item, "AttemptNumber": 1, "RecordId": key, SHARD_ATTRIBUTE: shard_key(FAILED_IMAGE, key, 16)}
        raw.store.client.put_item(TableName=raw.table, Item=serialize(stored))

    def one_logged(key: str) -> None:
        log_failed_image(store, key, "PARSING_ERROR", "the answer is not a timesheet", version, FAILURE_DETAILS)
    requests = Requests(store.store.client)
    rounds = 3
    (raw_seconds, _), (ocrlab_seconds, _) = best_of(rounds, lambda r: [one_raw(f"raw/{r}/{i:05d}.png") for i in range(n)],
                                                    lambda r: [one_logged(f"log/{r}/{i:05d}.png") for i in range(n)])
    calls = list(requests.calls)
    logged = n * rounds
    record = next(store.records_by_type())
    plain = math.ceil(_size(serialize(record)) / 1024)
    per_failure = write_units(calls) / logged
    return {"failures": n, "record_bytes": _size(serialize(record)),
            "raw_put_per_second": round(n / raw_seconds, 1), "log_per_second": round(n / ocrlab_seconds, 1),
            "throughput_over_raw": round(raw_seconds / ocrlab_seconds, 3), "throughput_target": ">= 0.45",
            "requests_per_failure": round(len(calls) / logged, 3), "requests": dict(Counter(name for name, _ in calls)),
            "requests_target": "<= 2", "write_units_per_failure": round(per_failure, 2), "write_units_plain_put": plain,
            "write_units_over_plain": round(per_failure / plain, 3), "write_units_target": "<= 2.5",
            "met": raw_seconds / ocrlab_seconds >= 0.45 and len(calls) / logged <= 2 and per_failure / plain <= 2.5}


def _converse(delay: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.converse_process", "--delay", str(delay)],
                            cwd=HERE.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _image_of(params: dict[str, Any]) -> str | None:
    """The image a request is about; None for the table's own items (its version list)."""
    key = (params.get("Key") or params.get("Item") or {}).get("ImageKey", {}).get("S")
    return None if key is None or key.startswith("#") else key


def _bare_batch(client: Any, table: str, model: Any, converse: dict[str, Any],
                calls: dict[str, list[tuple[str, dict[str, Any]]]], paths: list[Path], concurrency: int) -> float:
    """The requests ocrlab's batch sent for each image (claim, record, release, and the model call
    after the claim), sent again to a fresh table by a bare thread pool on the same clients: what
    the same work costs without ocrlab. Seconds taken."""
    requests = list(calls.values())

    def one(i: int) -> None:
        claim, *rest = requests[i]
        getattr(client, xform_name(claim[0]))(**{**claim[1], "TableName": table})
        content = [{"image": {"format": "png", "source": {"bytes": paths[i].read_bytes()}}},
                   *converse["messages"][0]["content"][1:]]
        model.converse(**{**converse, "messages": [{"role": "user", "content": content}]})
        for operation, params in rest:
            getattr(client, xform_name(operation))(**{**params, "TableName": table})

    def run() -> None:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(len(requests))))
    seconds, _ = timed(run)
    return seconds


def bench_bedrock_batch(wide: int = 480, narrow: int = 40, delay: float = 0.1) -> dict[str, Any]:
    """`ocrlab batch --engine bedrock` at concurrency 16 and 1 against a Converse server answering
    after 100 ms, over the same requests sent by a bare thread pool (`_bare_batch`).

    Until 2026-12-03 the figure was concurrency 16 over a fixed ideal (16 / delay = 160 a second),
    target 0.6. A fixed ideal follows the machine: the batch is bound by the Python process's CPU
    (botocore's, mostly), and the commit that had measured 0.77 measured 0.57 on the day this one
    missed. The bare pool runs in the same process, on the same clients, machine and minute, so
    the ratio measures what ocrlab adds; the old figure is still reported beside it."""
    from ocrlab.runs.batch import check_engine, engine_options_for, run_batch
    from ocrlab.store import open_store
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the local server checks no signature
        os.environ.setdefault(name, "benchmark")
    server, url = _converse(delay)
    folder = Path(tempfile.mkdtemp(prefix="ocrlab-perf-"))
    try:
        rates: dict[int, tuple[float, float]] = {}
        bare_rate = 0.0
        # Concurrency 16 twice, each followed by the bare pool (best of each: a burst of load on the
        # shared machine costs one run, not the figure), concurrency 1 once (it waits on the model).
        for run, (concurrency, n) in enumerate(((16, wide), (16, wide), (1, narrow))):
            images = _images(folder / f"c{concurrency}-{run}", n)
            store = open_store(f"perf-bedrock-{concurrency}-{run}")
            engine = check_engine("bedrock", engine_options_for("bedrock", {"endpoint_url": url, "max_attempts": 1},
                                                                concurrency))
            requests, sent = Requests(store.store.client), Requests(engine.client, "bedrock-runtime.Converse")
            summary = run_batch(str(images), store, engine="bedrock", concurrency=concurrency, progress=False,
                                built_engine=engine)
            assert summary.succeeded == n, summary
            rate = (n / summary.elapsed_seconds, len(requests.calls) / n)
            rates[concurrency] = max(rates.get(concurrency, rate), rate)
            if concurrency == 16:
                per_image: dict[str, list[tuple[str, dict[str, Any]]]] = {}
                for operation, params in requests.calls:
                    if (key := _image_of(params)) is not None:
                        per_image.setdefault(key, []).append((operation, params))
                bare = open_store(f"perf-bedrock-bare-{run}")
                seconds = _bare_batch(bare.store.client, bare.table, engine.client, sent.calls[0][1], per_image,
                                      sorted(images.glob("*.png")), concurrency)
                bare_rate = max(bare_rate, len(per_image) / seconds)
    finally:
        server.communicate("")
    ideal = 16 / delay
    return {"images_c16": wide, "images_c1": narrow, "model_delay_s": delay,
            "per_second_c16": round(rates[16][0], 1), "per_second_c1": round(rates[1][0], 2),
            "bare_per_second_c16": round(bare_rate, 1), "c16_over_bare": round(rates[16][0] / bare_rate, 3),
            "c16_over_ideal": round(rates[16][0] / ideal, 3), "ideal_per_second": ideal,
            "c16_over_c1": round(rates[16][0] / rates[1][0], 2), "store_requests_per_image": round(rates[16][1], 2),
            "targets": {"c16_over_bare": ">= 0.85", "c16_over_c1": ">= 10",
                        "c16_over_ideal": ">= 0.6 (until 2026-12-03; kept for comparison)"},
            "met": rates[16][0] / bare_rate >= 0.85 and rates[16][0] / rates[1][0] >= 10}


def _seed_results(store: Any, count: int, offset: int) -> None:
    """`count` OCR_RESULT records in the store's layout, written straight in (batch writes)."""
    import datetime as dt

    from benchmarks.seed import _write, failure
    from ocrlab.store.table import pages
    start = dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc)
    items = []
    for i in range(offset, offset + count):
        item = {k: v for k, v in failure(i, start).items() if v is not None}
        item.update(RecordType="OCR_RESULT", ParsedTimesheet='{"employee_name": "x"}', ImageKey=f"ok/{i:06d}.png")
        for name in ("FailureType", "ErrorCode", "ErrorMessage", "FailureFingerprint", "AttemptNumber"):
            item.pop(name, None)
        items.append(item)
    for chunk in pages(items, 25):
        _write(store.store.client, store.table, chunk)


def bench_reads(failures: int = 20_000, others: int = 100_000, small: int = 1000) -> dict[str, Any]:
    """The read paths that already hold, kept as guards: export, its read units, statistics, the
    attempt count at scale, and the export's memory."""
    from benchmarks.seed import seed_failures, unsharded_store
    from ocrlab.store.failure_log import export_failed_images_csv, get_attempt_count, get_failure_statistics
    # Today's layout, as measured before the shards (its raw Query is of ByRecordType); the sharded
    # layout's reads are measured against it in benchmarks/shards.py.
    big, little = unsharded_store("perf-reads"), unsharded_store("perf-reads-small")
    seed_failures(big, failures)
    _seed_results(big, others, failures)
    seed_failures(little, small)
    client = big.store.client

    def raw_query(table: str, capacity: bool = False) -> tuple[int, float]:
        count, units, kwargs = 0, 0.0, {"TableName": table, "IndexName": "ByRecordType",
                                        "KeyConditionExpression": "RecordType = :r",
                                        "ExpressionAttributeValues": {":r": {"S": "FAILED_IMAGE"}}}
        if capacity:
            kwargs["ReturnConsumedCapacity"] = "TOTAL"
        while True:
            page = client.query(**kwargs)
            count += len(page["Items"])
            units += page.get("ConsumedCapacity", {}).get("CapacityUnits", 0)
            if "LastEvaluatedKey" not in page:
                return count, units
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def export(store: Any) -> int:
        with open(os.devnull, "w", encoding="utf-8", newline="") as sink:
            return export_failed_images_csv(store, sink)
    (raw_s, _), (export_s, rows), (stats_s, _) = best_of(5, lambda _: raw_query(big.table), lambda _: export(big),
                                                         lambda _: get_failure_statistics(big))
    # read units: the export's Queries with the capacity asked for, against the raw Query's
    requests = Requests(client)
    def ask_capacity(params: dict[str, Any], **_: Any) -> None:  # a returned value would replace the params
        params["ReturnConsumedCapacity"] = "TOTAL"
    client.meta.events.register("provide-client-params.dynamodb.Query", ask_capacity)
    units_seen: list[float] = []
    client.meta.events.register("after-call.dynamodb.Query", lambda parsed, **_: units_seen.append(
        parsed.get("ConsumedCapacity", {}).get("CapacityUnits", 0)))
    export(big)
    export_units = sum(units_seen)
    units_seen.clear()
    _, raw_units = raw_query(big.table, capacity=True)
    keys = [f"scans/2025/{i:06d}.png" for i in range(0, small, 5)]
    big_attempts, _ = timed(lambda: [get_attempt_count(big, k) for k in keys])
    small_attempts, _ = timed(lambda: [get_attempt_count(little, k) for k in keys])

    def peak(store: Any) -> float:
        tracemalloc.start()
        export(store)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top / 1e6
    four = unsharded_store("perf-reads-4k")
    seed_failures(four, 4000)
    peak_big, peak_four = peak(big), peak(four)
    met = (export_s / raw_s <= 1.3 and export_units <= 1.05 * raw_units and stats_s / raw_s <= 1.5
           and big_attempts / small_attempts <= 1.5 and peak_big / peak_four <= 1.5)
    return {"records": failures + others, "failures_exported": rows, "export_over_raw_query": round(export_s / raw_s, 3),
            "export_target": "<= 1.3", "read_units_export": round(export_units, 1), "read_units_raw": round(raw_units, 1),
            "read_units_over_raw": round(export_units / raw_units, 3) if raw_units else None,
            "read_units_target": "<= 1.05", "stats_over_raw_query": round(stats_s / raw_s, 3), "stats_target": "<= 1.5",
            "attempt_count_120k_over_1k": round(big_attempts / small_attempts, 3), "attempt_count_target": "<= 1.5",
            "export_peak_mb_20k": round(peak_big, 2), "export_peak_mb_4k": round(peak_four, 2),
            "export_peak_target": "20k over 4k <= 1.5", "requests_seen": sum(requests.count().values()), "met": met}


def bench_local_engine(count: int = 12) -> dict[str, Any]:
    """The pipeline per image over bare rapidocr on the same warm engine, and a batch of two worker
    processes over a naive single-process loop."""
    import numpy as np

    from ocrlab.ocr.engines import get_engine
    from ocrlab.ocr.pipeline import Pipeline
    from ocrlab.runs.batch import run_batch
    from ocrlab.samples.generate import generate_samples
    from ocrlab.store import open_store
    from ocrlab.version import load_version
    folder = Path(tempfile.mkdtemp(prefix="ocrlab-perf-local-")) / "s"
    generate_samples(folder, count=count, seed=17, damage="none")
    paths = sorted(folder.glob("*.png"))
    engine = get_engine("rapidocr")
    engine._ocr(np.zeros((32, 32, 3), dtype=np.uint8))  # warm

    def bare() -> None:
        for path in paths:
            with Image.open(path) as img:
                engine._ocr(np.asarray(img.convert("RGB"))[:, :, ::-1].copy())
    pipeline = Pipeline(engine, load_version(), open_store("perf-pipeline"))
    (bare_s, _), (pipe_s, _) = best_of(3, lambda _: bare(),
                                       lambda _: [pipeline.process(p.name, p.read_bytes()) for p in paths])

    def naive() -> None:  # what a user writes first: rapidocr's defaults, one process, in order
        from rapidocr import RapidOCR
        ocr = RapidOCR()
        for path in paths:
            with Image.open(path) as img:
                ocr(np.asarray(img.convert("RGB"))[:, :, ::-1].copy())
    one_s, _ = timed(lambda: run_batch(str(folder), open_store("perf-local-c1"), progress=False))
    (naive_s, _), (batch_s, summary) = best_of(2, lambda _: naive(), lambda r: run_batch(
        str(folder), open_store(f"perf-local-batch-{r}"), concurrency=2, progress=False))
    return {"images": len(paths), "pipeline_over_bare_rapidocr": round(pipe_s / bare_s, 3), "pipeline_target": "<= 1.15",
            "naive_loop_s": round(naive_s, 2), "batch_c1_s": round(one_s, 2), "batch_c2_s": round(batch_s, 2),
            "batch_faster_than_naive": round(naive_s / batch_s, 2), "batch_target": ">= 1.2",
            "batch_c2_faster_than_c1": round(one_s / batch_s, 2), "succeeded": summary.succeeded,
            "met": pipe_s / bare_s <= 1.15 and naive_s / batch_s >= 1.2 and summary.succeeded == len(paths)}


def _child_peak(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """(seconds, peak resident MB of the command and everything it ran, exit code), in a fresh process."""
    probe = ("import resource, subprocess, sys, time; s = time.perf_counter(); "
             f"code = subprocess.run({cmd!r}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
             "print(time.perf_counter() - s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, code)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    seconds, mb, code = out.stdout.split()
    return round(float(seconds), 1), round(float(mb), 1), int(code)


def bench_demo_and_notebooks(failures: int = 50_000) -> dict[str, Any]:
    """Recorded without a target: `ocrlab demo`, and each notebook report on a table of 50,000 failures."""
    from benchmarks.seed import seed_failures
    from ocrlab.store import open_store
    folder = Path(tempfile.mkdtemp(prefix="ocrlab-perf-demo-"))
    env = {**os.environ, "OCRLAB_VERSION_FILE": str(HERE.parent / "OCR_VERSION.txt")}
    seconds, mb, code = _child_peak([sys.executable, "-m", "ocrlab", "demo"], env, folder)
    out: dict[str, Any] = {"demo": {"seconds": seconds, "peak_mb": mb, "exit": code}}
    store = open_store("perf-notebooks")
    seed_failures(store, failures)
    for notebook in ("failure_patterns", "export_failures", "explore_failures"):
        seconds, mb, code = _child_peak([sys.executable, "-m", "ocrlab", "report", notebook, "--table", store.table,
                                         "--reports-dir", str(folder / "reports")], env, HERE.parent)
        out[notebook] = {"failures": failures, "seconds": seconds, "peak_mb": mb, "exit": code}
    return out
