"""`ocrlab batch`: every image of a source through the pipeline, each accounted for exactly once.

Planning reads the store once (latest outcome and failure count of every image under the
version), so a re-run skips what already succeeded and what reached --max-attempts. Just
before an image is processed its records are checked again, so a batch killed between
writing a result and its latest-outcome pointer never writes a second result.

One run loop serves every way of running: an executor (threads, worker processes, or a Dask
cluster through `Client.get_executor()`) and `as_completed` over its futures. Threads share the
caller's pipeline; worker processes and Dask workers build their own once, from the `Job`.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Callable, Collection, Iterable, Iterator

from .engines import REGISTRY, get_engine
from .errors import MissingDependency, OcrlabError, StoreUnavailable, UnknownName
from .files import write_json
from .pipeline import ImageContext, Pipeline
from .preprocess import Preprocess
from .records import FAILED_IMAGE, OCR_RESULT
from .sources import Listing, SourceItem, open_source
from .store.spooling import SpoolingStore, open_store
from .version import OCRVersionInfo, load_version

# Engines that spend CPU in this process run in worker processes so that every core works.
CPU_ENGINES = frozenset({"rapidocr", "tesseract"})


@dataclass(frozen=True)
class Job:
    """Everything a worker process needs to build its pipeline; plain data so it pickles."""

    engine: str
    engine_options: str  # JSON with sorted keys: hashable, so a worker can cache its pipeline by job
    version: OCRVersionInfo
    table: str
    force: bool = False  # run images that already have a result under this version
    preprocess: Preprocess | None = None

    def pipeline(self, store: SpoolingStore) -> Pipeline:
        return Pipeline(get_engine(self.engine, **json.loads(self.engine_options)), self.version, store,
                        self.preprocess)


@dataclass
class BatchSummary:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    failure_types: dict[str, int] = field(default_factory=dict)
    ocr_full_version: str = ""
    images: int = 0
    ignored: list[str] = field(default_factory=list)
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    spooled: int = 0
    engine: str = ""
    source: str = ""
    elapsed_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def process_item(pipeline: Pipeline, item: SourceItem, force: bool = False) -> dict[str, Any]:
    """Run one image; returns a small picklable report. Never raises for a bad image."""
    store, version = pipeline.store, pipeline.version.full_version
    try:
        done = None if force else next(store.image_records(item.key, OCR_RESULT, version), None)
        if done is not None:  # a result written by a run that died before its pointer: mend, skip
            store.update_latest(done)
            return {"key": item.key, "status": "skipped", "reason": "already succeeded"}
    except StoreUnavailable:
        pass  # the store went away mid-batch: run the image anyway, its record goes to the spool
    try:
        data, read_error = item.read(), None
    except Exception as exc:  # unreadable file or object: recorded like any other failure
        data, read_error = None, exc
    outcome = pipeline.process(item.key, data, ImageContext(item.s3_bucket, item.s3_region),
                               read_error=read_error)
    return {"key": item.key, "status": "succeeded" if outcome.ok else "failed",
            "failure_type": outcome.failure_type, "spooled": outcome.spooled}


# A worker process (or Dask worker) builds one pipeline per job, the first time it sees the job.
_worker_pipelines: dict[Job, Pipeline] = {}
_worker_lock = threading.Lock()


def process_in_worker(job: Job, item: SourceItem) -> dict[str, Any]:
    with _worker_lock:
        if job not in _worker_pipelines:
            _worker_pipelines[job] = job.pipeline(open_store(job.table))
    return process_item(_worker_pipelines[job], item, job.force)


def plan(listing: Listing, store: SpoolingStore, version: str, *, max_attempts: int | None, force: bool,
         retry_failed: bool) -> tuple[list[SourceItem], dict[str, str]]:
    """Which images to run, and why each of the others is skipped."""
    latest = {r["ImageKey"]: r["RecordType"] for r in store.latest_outcomes(version)}
    failures = store.failure_counts(version) if max_attempts else Counter()
    todo: list[SourceItem] = []
    skipped: dict[str, str] = {}
    for item in listing.items:
        outcome = latest.get(item.key)
        if retry_failed and outcome != FAILED_IMAGE:
            skipped[item.key] = "latest outcome is not a failure" if outcome else "never processed"
        elif outcome == OCR_RESULT and not force:
            skipped[item.key] = "already succeeded"
        elif max_attempts and failures[item.key] >= max_attempts and not force:
            skipped[item.key] = f"failed {failures[item.key]} times (max attempts {max_attempts})"
        else:
            todo.append(item)
    return todo, skipped


def _worker_init(threads: int) -> None:
    # Each worker process gets its share of the cores for onnxruntime (ocrlab.config).
    os.environ["OCRLAB_ENGINE_THREADS"] = str(threads)


def _executor(job: Job, concurrency: int, scheduler: str | None, stack: ExitStack) -> Executor:
    """Threads, worker processes or a Dask cluster; entered on `stack` so it is shut down after the run."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise MissingDependency("dask.distributed", "scale") from None
        try:
            client = stack.enter_context(Client(scheduler, timeout="10s"))
        except (OSError, TimeoutError) as exc:
            raise OcrlabError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        # pure=False: a fresh key per call, since the same image may run again in a later batch.
        return stack.enter_context(client.get_executor(pure=False))
    if job.engine in CPU_ENGINES and concurrency > 1:
        # spawn, not fork: the parent holds threads (boto3, progress bar) that fork would copy mid-state.
        threads = max(1, (os.cpu_count() or 1) // concurrency)
        return stack.enter_context(ProcessPoolExecutor(concurrency, mp_context=multiprocessing.get_context("spawn"),
                                                       initializer=_worker_init, initargs=(threads,)))
    return stack.enter_context(ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="ocrlab"))


def _run(job: Job, store: SpoolingStore, items: list[SourceItem], concurrency: int,
         scheduler: str | None) -> Iterator[dict[str, Any]]:
    """Per-image reports as they complete."""
    with ExitStack() as stack:
        executor = _executor(job, concurrency, scheduler, stack)
        task: Callable[[SourceItem], dict[str, Any]]
        if isinstance(executor, ThreadPoolExecutor):  # threads share one pipeline: one engine, one client
            task = partial(process_item, job.pipeline(store), force=job.force)
        else:
            task = partial(process_in_worker, job)
        futures: list[Future[dict[str, Any]]] = [executor.submit(task, item) for item in items]
        for future in as_completed(futures):
            yield future.result()


def _progress(reports: Iterable[dict[str, Any]], total: int, enabled: bool) -> Iterable[dict[str, Any]]:
    if not enabled or total == 0:
        return reports
    from tqdm.auto import tqdm  # a bar in a terminal and a widget in a notebook
    return tqdm(reports, total=total, unit="image", desc="OCR", file=sys.stderr)


def run_batch(source: str, store: SpoolingStore, *, engine: str = "rapidocr",
              engine_options: dict[str, Any] | None = None,
              version_file: str | os.PathLike[str] | None = None, concurrency: int = 1,
              max_attempts: int | None = None, force: bool = False, retry_failed: bool = False,
              summary_json: str | os.PathLike[str] | None = None, scheduler: str | None = None,
              progress: bool = True, keys: Collection[str] | None = None,
              preprocess: Preprocess | None = None) -> BatchSummary:
    """OCR every image of `source` (only those named in `keys`, if given) and account for each.

    `preprocess` turns on image preprocessing between preflight and the engine (off: None)."""
    started = time.perf_counter()
    version = load_version(version_file)
    options = dict(engine_options or {})
    if engine == "bedrock":
        options.setdefault("concurrency", concurrency)
    if engine not in REGISTRY:  # fail before listing the source or touching the store
        raise UnknownName("engine", engine, list(REGISTRY))
    job = Job(engine, json.dumps(options, sort_keys=True), version, store.table, force, preprocess)
    listing = open_source(source)
    if keys is not None:
        wanted = set(keys)
        listing.items = [item for item in listing.items if item.key in wanted]
    todo, skipped = plan(listing, store, version.full_version, max_attempts=max_attempts, force=force,
                         retry_failed=retry_failed)
    summary = BatchSummary(ocr_full_version=version.full_version, images=len(listing.items),
                           ignored=listing.ignored, engine=engine, source=listing.description)
    reasons: Counter[str] = Counter(skipped.values())
    types: Counter[str] = Counter()
    for report in _progress(_run(job, store, todo, concurrency, scheduler), len(todo), progress):
        if report["status"] == "skipped":
            reasons[report["reason"]] += 1
            continue
        summary.processed += 1
        summary.spooled += bool(report.get("spooled"))
        if report["status"] == "succeeded":
            summary.succeeded += 1
        else:
            summary.failed += 1
            types[report["failure_type"]] += 1
    summary.skipped = sum(reasons.values())
    summary.skipped_reasons = dict(reasons)
    summary.failure_types = dict(types.most_common())
    summary.elapsed_seconds = round(time.perf_counter() - started, 3)
    if summary_json:
        write_json(summary.to_dict(), summary_json)
    return summary
