"""`ocrlab batch`: every image of a source through the pipeline, each accounted for exactly once.

Planning reads the store once (latest outcome and failure count of every image under the
version), so a re-run skips what already succeeded and what reached --max-attempts. Just
before an image is processed its records are checked again, so a batch killed between
writing a result and its latest-outcome pointer never writes a second result.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator

from .engines import REGISTRY, get_engine
from .errors import StoreUnavailable, UnknownName
from .pipeline import ImageContext, Pipeline
from .preprocess import Preprocess
from .records import FAILED_IMAGE, OCR_RESULT
from .recorder import get_store
from .sources import Listing, SourceItem, open_source
from .version import OCRVersionInfo, load_version

# Engines that spend CPU in this process run in worker processes so that every core works.
CPU_ENGINES = frozenset({"rapidocr", "tesseract"})


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to build its pipeline; plain data so it pickles."""

    engine: str
    engine_options: str  # JSON with sorted keys: hashable, so a worker can cache its pipeline by job
    version: OCRVersionInfo
    table: str
    force: bool = False  # run images that already have a result under this version
    preprocess: Preprocess | None = None


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


_pipelines: dict[Job, Pipeline] = {}


def _pipeline(job: Job) -> Pipeline:
    # One engine per job and process: engines are costly to build (models, clients).
    if job not in _pipelines:
        engine = get_engine(job.engine, **json.loads(job.engine_options))
        _pipelines[job] = Pipeline(engine, job.version, job.table, job.preprocess)
    return _pipelines[job]


def process_item(job: Job, item: SourceItem) -> dict[str, Any]:
    """Run one image; returns a small picklable report. Never raises for a bad image."""
    store = get_store(job.table)
    try:
        done = None if job.force else next(store.image_records(item.key, OCR_RESULT, job.version.full_version), None)
        if done is not None:  # a result written by a run that died before its pointer: mend, skip
            store.update_latest(done)
            return {"key": item.key, "status": "skipped", "reason": "already succeeded"}
    except StoreUnavailable:
        pass  # the store went away mid-batch: run the image anyway, its record goes to the spool
    try:
        data, read_error = item.read(), None
    except Exception as exc:  # unreadable file or object: recorded like any other failure
        data, read_error = None, exc
    outcome = _pipeline(job).process(item.key, data, ImageContext(item.s3_bucket, item.s3_region),
                                     read_error=read_error)
    return {"key": item.key, "status": "succeeded" if outcome.ok else "failed",
            "failure_type": outcome.failure_type, "spooled": outcome.spooled}


def plan(listing: Listing, job: Job, *, max_attempts: int | None, force: bool,
         retry_failed: bool) -> tuple[list[SourceItem], dict[str, str]]:
    """Which images to run, and why each of the others is skipped."""
    store = get_store(job.table)
    version = job.version.full_version
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
    os.environ["OCRLAB_ENGINE_THREADS"] = str(threads)


def _executor(job: Job, concurrency: int) -> Executor | None:
    if concurrency <= 1:
        return None
    if job.engine in CPU_ENGINES:
        # spawn, not fork: the parent holds threads (boto3, progress bar) that fork would copy mid-state.
        threads = max(1, (os.cpu_count() or 1) // concurrency)
        return ProcessPoolExecutor(concurrency, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(threads,))
    return ThreadPoolExecutor(concurrency)


def _run(job: Job, items: list[SourceItem], concurrency: int, scheduler: str | None) -> Iterator[dict[str, Any]]:
    if scheduler:
        from .scale import run_on_dask
        yield from run_on_dask(scheduler, job, items)
        return
    executor = _executor(job, concurrency)
    if executor is None:
        for item in items:
            yield process_item(job, item)
        return
    with executor:
        futures = [executor.submit(process_item, job, item) for item in items]
        for future in as_completed(futures):
            yield future.result()


def _progress(reports: Iterable[dict[str, Any]], total: int, enabled: bool) -> Iterable[dict[str, Any]]:
    if not enabled or total == 0:
        return reports
    from tqdm.auto import tqdm  # a bar in a terminal and a widget in a notebook
    return tqdm(reports, total=total, unit="image", desc="OCR", file=sys.stderr)


def run_batch(source: str, *, engine: str = "rapidocr", engine_options: dict[str, Any] | None = None,
              version_file: str | os.PathLike[str] | None = None, table: str = "ocrlab",
              concurrency: int = 1, max_attempts: int | None = None, force: bool = False,
              retry_failed: bool = False, summary_json: str | os.PathLike[str] | None = None,
              scheduler: str | None = None, progress: bool = True,
              keys: Collection[str] | None = None, preprocess: Preprocess | None = None) -> BatchSummary:
    """OCR every image of `source` (only those named in `keys`, if given) and account for each.

    `preprocess` turns on image preprocessing between preflight and the engine (off: None)."""
    started = time.perf_counter()
    version = load_version(version_file)
    options = dict(engine_options or {})
    if engine == "bedrock":
        options.setdefault("concurrency", concurrency)
    job = Job(engine, json.dumps(options, sort_keys=True), version, table, force, preprocess)
    if engine not in REGISTRY:  # fail before listing the source or touching the store
        raise UnknownName("engine", engine, list(REGISTRY))
    listing = open_source(source)
    if keys is not None:
        wanted = set(keys)
        listing.items = [item for item in listing.items if item.key in wanted]
    todo, skipped = plan(listing, job, max_attempts=max_attempts, force=force, retry_failed=retry_failed)
    summary = BatchSummary(ocr_full_version=version.full_version, images=len(listing.items),
                           ignored=listing.ignored, engine=engine, source=listing.description)
    reasons: Counter[str] = Counter(skipped.values())
    types: Counter[str] = Counter()
    for report in _progress(_run(job, todo, concurrency, scheduler), len(todo), progress):
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
        write_json(summary.to_dict(), Path(summary_json))
    return summary


def write_json(data: dict[str, Any], path: Path) -> None:
    """Atomic: a reader never sees half a summary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
