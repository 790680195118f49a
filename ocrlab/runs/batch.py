"""`ocrlab batch`: every image of a source through the pipeline, each accounted for exactly once.

Planning reads the store once (each image's latest outcome and failure count under the version),
so a re-run skips what already succeeded and what reached --max-attempts. Each image is then
claimed in the store before it runs (ocrlab.store.claims): another batch on the same images, a
Dask worker or a duplicate Lambda event skips what this run holds, and a run killed mid-image
leaves a claim that the next run takes over, checking first whether the record got written.

One run loop serves every way of running: an executor (threads, worker processes, or a Dask
cluster through `Client.get_executor()`) fed a bounded window of images, `wait` on their futures.
Threads share the caller's pipeline; worker processes and Dask workers build their own once. A
worker process that dies (killed, out of memory) costs only its images: they are retried once,
each alone in a fresh process, and recorded as OCR_ERROR `WorkerLost` if lost again. A record
that can be neither stored nor spooled stops the batch: nothing new starts, what runs finishes,
and the summary accounts for every image.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from queue import Empty, SimpleQueue
from typing import Any, Callable, Collection, Iterable, Iterator, Mapping, cast

from ocrlab.config import settings
from ocrlab.domain import LatestSummary, Record
from ocrlab.errors import MissingDependency, OcrlabError, SpoolUnavailable, StoreUnavailable, UnknownName
from ocrlab.files import check_writable, json_safe, write_json
from ocrlab.ocr.engines import REGISTRY, Engine, get_engine, takes
from ocrlab.ocr.engines.quota import QuotaTally
from ocrlab.ocr.pipeline import Draft, ImageContext, Pipeline
from ocrlab.ocr.preprocess import Preprocess
from ocrlab.records import FAILED_IMAGE, OCR_RESULT, failure_item, storage_key
from ocrlab.runs.sources import Listing, SourceItem, open_source
from ocrlab.store.claims import DEFAULT_LEASE_SECONDS, Moment, Refused, Ticket, end_run, holding, new_owner
from ocrlab.store.spooling import SpoolingStore, open_store
from ocrlab.version import OCRVersionInfo, load_version

# Engines that spend CPU in this process run in worker processes so that every core works.
CPU_ENGINES = frozenset({"rapidocr", "tesseract"})
WRITERS = 8  # threads writing records while the batch's threads wait on the model
WORKER_LOST = "WorkerLost"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to build its pipeline and claim images; plain data so it pickles."""

    engine: str
    engine_options: str  # JSON with sorted keys: hashable, so a worker can cache its pipeline by job
    version: OCRVersionInfo
    table: str
    owner: str               # this run, as claims name it
    began: Moment            # when the run was asked for, by this machine's monotonic clock
    force: bool = False      # run images that already have a result under this version
    preprocess: Preprocess | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    def pipeline(self, store: SpoolingStore, engine: Engine | None = None, threads: int | None = None) -> Pipeline:
        """The pipeline of the job; a worker builds its own engine, given its share of the cores."""
        options = json.loads(self.engine_options)
        if threads and takes(self.engine, "threads"):
            options["threads"] = threads
        return Pipeline(engine or get_engine(self.engine, **options), self.version, store, self.preprocess)


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
    ignored_reasons: dict[str, int] = field(default_factory=dict)
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    spooled: int = 0
    rejected: int = 0        # refused by the store for their content: in the dead-letter file
    not_started: int = 0     # left out because the batch stopped
    unwritten: int = 0       # records neither stored nor spooled: carried below, in `unwritten_records`
    stopped: str = ""        # why the batch stopped early, if it did
    interrupted: str = ""    # the signal (or request) that stopped it, if one did
    throttled: int = 0       # model calls the service's quota refused (each waited for and tried again)
    rate: float | None = None  # requests a second the model calls were paced at in the end (None: never limited)
    engine: str = ""
    source: str = ""
    elapsed_seconds: float = 0.0
    unwritten_records: list[Record] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


Report = dict[str, Any]


@dataclass(frozen=True)
class Planned:
    """An image the plan decided to run, and its counter as the plan read it (`seen`): another run
    that finishes the image after that is not repeated (two identical batches run each image once)."""

    item: SourceItem
    seen: int = 0


def process_item(pipeline: Pipeline, job: Job, planned: Planned, writer: Executor | None = None,
                 stop: threading.Event | None = None) -> Report | Future[Report]:
    """Claim, run and record one image; returns a small picklable report. Never raises for a bad image.

    With a `writer`, the record is written there and a Future of the report comes back at once,
    so that the caller's thread goes on to the next model call while the store takes the record.
    Once `stop` is set, an image not yet started is not (a thread freed by a finished image would
    otherwise take the next one before the run loop could take it back).
    """
    item = planned.item
    if stop is not None and stop.is_set():
        return {"key": item.key, "status": "not_started"}
    # Another run that finished the image since this one began is not repeated: one of this machine
    # since the run was asked for (its monotonic clock), any other since the plan read the counters.
    with holding(pipeline.store, item.key, pipeline.version, job.owner, job.lease_seconds, force=job.force,
                 began=job.began, seen=planned.seen, digest=item.digest) as claim:
        if isinstance(claim, Refused):
            return {"key": item.key, "status": "skipped", "reason": claim.reason}
        try:
            (data, digest), read_error = item.fetch(), None
        except Exception as exc:  # unreadable file or object: recorded like any other failure
            data, digest, read_error = None, item.digest, exc
        identity = {"ContentDigest": digest, "PreviousContentDigest": claim.previous_digest}
        draft = pipeline.draft(item.key, data, ImageContext(item.s3_bucket, item.s3_region, extra=identity),
                               read_error=read_error)
    if writer is not None:
        return writer.submit(_record, pipeline, draft, claim.ticket)
    return _record(pipeline, draft, claim.ticket)


def _record(pipeline: Pipeline, draft: Draft, ticket: Ticket | None) -> Report:
    try:
        outcome = pipeline.record(draft, ticket)
    except SpoolUnavailable as exc:  # neither the store nor the spool took the record: stop the batch
        return {"key": draft.image_key, "status": "unwritten", "error": str(exc), "record": exc.record}
    return {"key": draft.image_key, "status": "succeeded" if outcome.ok else "failed",
            "failure_type": outcome.failure_type, "spooled": outcome.spooled, "rejected": outcome.rejected,
            "quota": pipeline.engine.quota_status()}


# A worker process (or Dask worker) builds one pipeline per job, the first time it sees the job.
_worker_pipelines: dict[Job, Pipeline] = {}
_worker_lock = threading.Lock()


def process_in_worker(job: Job, planned: Planned) -> Report:
    with _worker_lock:
        if job not in _worker_pipelines:
            _worker_pipelines[job] = job.pipeline(open_store(job.table, create=False), threads=_worker_threads)
    return cast(Report, process_item(_worker_pipelines[job], job, planned))


def plan(listing: Listing, store: SpoolingStore, version: OCRVersionInfo, *, max_attempts: int | None,
         force: bool, retry_failed: bool, lease_seconds: float = DEFAULT_LEASE_SECONDS
         ) -> tuple[list[Planned], dict[str, str]]:
    """Which images to run, and why each of the others is skipped: one read of the version's index,
    then one consistent read of the counters of the images to run.

    An image is known by its key and its content: other content under a known key is a new revision
    (run, unless only failures are retried); a key never seen whose content is known under another
    key (a moved or renamed file) is that image."""
    latest = {r["ImageKey"]: r for r in store.latest_summary(version.full_version)}
    by_content: dict[str, LatestSummary] = {}
    for entry in latest.values():  # a content's success wins over its failures
        digest = entry.get("ContentDigest")
        if digest and (digest not in by_content or entry["RecordType"] == OCR_RESULT):
            by_content[digest] = entry
    todo: list[SourceItem] = []
    skipped: dict[str, str] = {}
    for item in _identified(listing.items):
        known, moved = latest.get(storage_key(item.key)), ""
        if known is not None and item.digest and known.get("ContentDigest") not in (None, item.digest):
            if retry_failed:
                skipped[item.key] = "new content since its last run (not a failure to retry)"
                continue
            known = None  # a new revision of the image
        elif known is None and item.digest in by_content:
            known = by_content[item.digest]
            moved = " (the same content under another name)"
        last: Mapping[str, Any] = known or {}
        outcome, failures = last.get("RecordType"), int(last.get("Failures", 0))
        if retry_failed and outcome != FAILED_IMAGE:
            skipped[item.key] = ("latest outcome is not a failure" if outcome else "never processed") + moved
        elif outcome == OCR_RESULT and not force:
            skipped[item.key] = "already succeeded" + moved
        elif max_attempts and failures >= max_attempts and not force:
            skipped[item.key] = f"failed {failures} times (max attempts {max_attempts})" + moved
        else:
            todo.append(item)
    # Every image's counter, not only those to run: a failure a killed run counted but never wrote is
    # written as lost here, even for an image another machine has finished since.
    seen = store.settle(dict.fromkeys(storage_key(i.key) for i in listing.items), version, lease_seconds)
    return [Planned(item, seen.get(storage_key(item.key), 0)) for item in todo], skipped


def _identified(items: list[SourceItem]) -> list[SourceItem]:
    """The items with the digests of their contents (files hashed a few at a time: the reads overlap)."""
    with ThreadPoolExecutor(4, thread_name_prefix="ocrlab-digest") as pool:
        return list(pool.map(SourceItem.identified, items))


_worker_threads: int | None = None  # a worker process's share of the cores (set by its initialiser)


def _worker_init(threads: int, parent: int) -> None:
    """A worker process: its share of the cores for onnxruntime; signals are its parent's to handle
    (Ctrl-C and SIGTERM reach the whole process group: the parent finishes what runs, then stops);
    and it ends with its parent, at once where Linux can say so, else within half a second."""
    global _worker_threads
    _worker_threads = threads
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, name="ocrlab-parent-watch", daemon=True).start()


def _process_pool(workers: int, stack: ExitStack) -> Executor:
    # spawn, not fork: the parent holds threads (boto3, progress bar) that fork would copy mid-state.
    threads = max(1, (os.cpu_count() or 1) // workers)
    return stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                   initializer=_worker_init, initargs=(threads, os.getpid())))


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
        return _process_pool(concurrency, stack)
    return stack.enter_context(ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="ocrlab"))


class StopRequest(threading.Event):
    """Asks a running batch to stop (set from a signal handler, or another thread), saying why."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.set()


class _Run:
    """The run loop: a bounded window of images in flight, reports as they complete. Once `stop` is
    set (a signal, or a record nothing could take), no image starts; those running finish."""

    def __init__(self, job: Job, store: SpoolingStore, concurrency: int, scheduler: str | None,
                 engine: Engine, stop: threading.Event | None = None) -> None:
        self.job, self.store, self.concurrency, self.scheduler = job, store, concurrency, scheduler
        self.engine = engine  # built once to check the options; the threads of this process share it
        self.stop = stop
        self.halted = False  # a record that nothing could take: the batch stops on its own
        self.not_started = 0

    @property
    def stopping(self) -> bool:
        return self.halted or (self.stop is not None and self.stop.is_set())

    def reports(self, items: list[Planned]) -> Iterator[dict[str, Any]]:
        pending = deque(items)
        lost: list[Planned] = []
        while pending:
            with ExitStack() as stack:
                executor = _executor(self.job, self.concurrency, self.scheduler, stack)
                task = self._task(executor, stack)
                yield from self._drain(executor, task, pending, lost)
                if lost:
                    stack.close()  # the broken pool goes; the lost images run alone, each in a fresh process
                    for planned in lost:
                        yield self._alone(planned)
                    lost.clear()
            if self.stopping:
                self.not_started += len(pending)
                return

    def _task(self, executor: Executor, stack: ExitStack) -> Callable[[Planned], Report | Future[Report]]:
        if isinstance(executor, ThreadPoolExecutor):
            # Threads share one pipeline (one engine, one client); records are written by writer
            # threads of their own, so a store round trip never holds up the next model call.
            writer = stack.enter_context(ThreadPoolExecutor(min(WRITERS, self.concurrency),
                                                            thread_name_prefix="ocrlab-write"))
            return partial(process_item, self.job.pipeline(self.store, self.engine), self.job,
                           writer=writer if self.concurrency > 1 else None, stop=self.stop)
        return partial(process_in_worker, self.job)

    def _drain(self, executor: Executor, task: Callable[[Planned], Report | Future[Report]],
               pending: deque[Planned], lost: list[Planned]) -> Iterator[Report]:
        window = max(2, 3 * self.concurrency)  # images at the engine, and records on their way to the store
        in_flight: dict[Future[Any], Planned] = {}  # a report, or a report whose record is being written
        # Futures report here as they finish: one wait() over the whole window would cost a lock and a
        # waiter per future in flight, for every image.
        finished: SimpleQueue[Future[Any]] = SimpleQueue()

        def follow(future: Future[Any], planned: Planned) -> None:
            in_flight[future] = planned
            future.add_done_callback(finished.put)
        broken = False
        while in_flight or (pending and not broken and not self.stopping):
            while pending and len(in_flight) < window and not broken and not self.stopping:
                planned = pending.popleft()
                follow(executor.submit(task, planned), planned)
            # A short wait, so a stop asked from a signal handler is seen while images run.
            done = _finished(finished, timeout=0.2)
            if self.stopping:
                self._cancel_waiting(in_flight, pending)
            for future in done:
                if future not in in_flight:
                    continue  # cancelled before it started: back among the pending
                planned = in_flight.pop(future)
                try:
                    report = future.result()
                except BrokenProcessPool:
                    broken = True
                    lost.append(planned)
                    continue
                except Exception as exc:  # a worker lost by Dask, or a defect: the image is recorded, the batch goes on
                    report = self._lost(planned.item, f"{type(exc).__name__}: {exc}")
                if isinstance(report, Future):  # its record is being written: wait for that instead
                    follow(report, planned)
                    continue
                self.halted |= report["status"] == "unwritten"
                yield report

    def _cancel_waiting(self, in_flight: dict[Future[Any], Planned], pending: deque[Planned]) -> None:
        """Images queued at the executor but not started go back to the pending (they count as not started)."""
        for future in [f for f in in_flight if not f.running() and not f.done()]:
            if future.cancel():
                pending.append(in_flight.pop(future))

    def _alone(self, planned: Planned) -> dict[str, Any]:
        written = self._written_by_this_run(planned.item)
        if written is not None:  # its worker finished it before the pool broke: only the answer was lost
            return written
        with ExitStack() as stack:
            try:
                return _process_pool(1, stack).submit(process_in_worker, self.job, planned).result()
            except BrokenProcessPool:
                return self._lost(planned.item, "the worker process running this image died twice (killed, out of "
                                                "memory, or it could not start: see the batch's error output)")

    def _written_by_this_run(self, item: SourceItem) -> Report | None:
        try:
            records = self.store.image_records(storage_key(item.key), ocr_version=self.job.version.full_version)
            record = next((r for r in records if r.get("Run") == self.job.owner), None)
        except StoreUnavailable:
            return None
        if record is None:
            return None
        ok = record["RecordType"] == OCR_RESULT
        return {"key": item.key, "status": "succeeded" if ok else "failed",
                "failure_type": None if ok else record.get("FailureType"), "spooled": False, "rejected": False}

    def _lost(self, item: SourceItem, why: str) -> dict[str, Any]:
        """Record an image whose worker was lost, as an OCR_ERROR of its own."""
        record = failure_item(item.key, "OCR_ERROR", why, self.job.version,
                              {"error_code": WORKER_LOST, "s3_bucket": item.s3_bucket, "Engine": self.job.engine,
                               "ContentDigest": item.digest})
        try:
            written = self.store.write(record, ticket=Ticket(self.job.owner, record["RecordId"], digest=item.digest))
        except SpoolUnavailable as exc:
            return {"key": item.key, "status": "unwritten", "error": str(exc), "record": exc.record}
        return {"key": item.key, "status": "failed", "failure_type": "OCR_ERROR",
                "spooled": written.spooled, "rejected": written.rejected}


def _finished(queue: SimpleQueue[Future[Any]], timeout: float) -> list[Future[Any]]:
    """The futures finished since the last look, waiting up to `timeout` for the first."""
    try:
        done = [queue.get(timeout=timeout)]
    except Empty:
        return []
    while not queue.empty():
        done.append(queue.get_nowait())
    return done


def _progress(reports: Iterable[dict[str, Any]], total: int, enabled: bool) -> Iterable[dict[str, Any]]:
    if not enabled or total == 0:
        return reports
    return _with_quota(_bar()(reports, total=total, unit="image", desc="OCR", file=sys.stderr))


def _bar() -> Any:
    """A widget in a running Jupyter kernel, else a bar on standard error. (tqdm.auto chooses the widget
    in any process that merely imported ipykernel, papermill's for instance, printing to stdout.)"""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from tqdm.notebook import tqdm as widget
        return widget
    from tqdm import tqdm
    return tqdm


def _with_quota(bar: Any) -> Iterator[dict[str, Any]]:
    """The bar's reports, its postfix showing the pace of the model calls and how many were throttled."""
    tally = QuotaTally()
    for report in bar:
        if tally.add(report.get("quota")):
            bar.set_postfix_str(tally.postfix(), refresh=False)
        yield report


def engine_options_for(engine: str, options: dict[str, Any] | None, concurrency: int) -> dict[str, Any]:
    """The options a batch builds its engine with: Bedrock's calls in flight follow the concurrency."""
    options = dict(options or {})
    if engine == "bedrock":
        options.setdefault("concurrency", concurrency)
    return options


def check_engine(engine: str, options: dict[str, Any]) -> Engine:
    """Build the engine once before any image: a wrong option is one error, not a failure per image."""
    if engine not in REGISTRY:
        raise UnknownName("engine", engine, list(REGISTRY))
    return get_engine(engine, **options)


def run_batch(source: str, store: SpoolingStore, *, engine: str = "rapidocr",
              engine_options: dict[str, Any] | None = None,
              version_file: str | os.PathLike[str] | None = None, concurrency: int = 1,
              max_attempts: int | None = None, force: bool = False, retry_failed: bool = False,
              summary_json: str | os.PathLike[str] | None = None, scheduler: str | None = None,
              progress: bool = True, keys: Collection[str] | None = None,
              preprocess: Preprocess | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS,
              follow_links: bool = False, began: Moment | None = None,
              stop: threading.Event | None = None, version: OCRVersionInfo | None = None,
              built_engine: Engine | None = None) -> BatchSummary:
    """OCR every image of `source` (only those named in `keys`, if given) and account for each.

    The caller that has them passes the `version` stamp and the engine it built (`built_engine`, from
    `engine_options_for`, with its environment's defaults among `engine_options`): nothing is loaded or
    built twice; else they come from `version_file` and `engine`/`engine_options` (under the defaults
    of Settings.engine_defaults).

    `preprocess` turns on image preprocessing between preflight and the engine (off: None). `began`
    is when the run was asked for (default: now; a command passes its own start): an image another
    run finished after it is not run again (two identical batches at once run each image once). Setting
    `stop` (from a signal handler, another thread) ends the batch early: no image starts, those
    running finish and are recorded, the rest are counted as not started."""
    started = time.perf_counter()
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A spawned worker is importing the caller's main module, and that module runs a batch at
        # import: without this, every worker would run the whole batch again (and die doing it).
        raise OcrlabError("a batch was started while a worker process was starting: a script that runs a batch "
                          "with worker processes must do it under `if __name__ == \"__main__\":`")
    if concurrency < 1:
        raise OcrlabError(f"concurrency must be at least 1, got {concurrency}")
    if max_attempts is not None and max_attempts < 1:
        raise OcrlabError(f"max attempts must be at least 1, got {max_attempts}")
    if summary_json:
        check_writable(summary_json)
    version = version or load_version(version_file)
    if built_engine is None:  # a caller with no edge of its own (a notebook): the environment's defaults apply
        engine_options = {**settings().engine_defaults(engine), **(engine_options or {})}
    options = engine_options_for(engine, engine_options, concurrency)
    built = built_engine or check_engine(engine, options)  # before listing the source or touching the store
    job = Job(engine, json.dumps(options, sort_keys=True), version, store.table, new_owner(),
              began or Moment.now(), force, preprocess, lease_seconds)
    listing = open_source(source, follow_links=follow_links)
    if keys is not None:
        listing.items = listing.named(keys)
    todo, skipped = plan(listing, store, version, max_attempts=max_attempts, force=force,
                         retry_failed=retry_failed, lease_seconds=lease_seconds)
    summary = BatchSummary(ocr_full_version=version.full_version, images=len(listing.items),
                           ignored=[name for name, _ in listing.ignored],
                           ignored_reasons=dict(Counter(reason for _, reason in listing.ignored)),
                           engine=engine, source=listing.description)
    reasons: Counter[str] = Counter(skipped.values())
    types: Counter[str] = Counter()
    quota = QuotaTally()
    run = _Run(job, store, concurrency, scheduler, built, stop)
    try:
        reports = list(_progress(run.reports(todo), len(todo), progress))
    finally:
        end_run(job.owner)
    for report in reports:
        status = report["status"]
        quota.add(report.get("quota"))
        if status == "not_started":
            run.not_started += 1
            continue
        if status == "skipped":
            reasons[report["reason"]] += 1
            continue
        if status == "unwritten":
            summary.unwritten += 1
            summary.stopped = report["error"]
            if report.get("record") is not None:
                summary.unwritten_records.append(report["record"])
            continue
        summary.processed += 1
        summary.spooled += bool(report.get("spooled"))
        summary.rejected += bool(report.get("rejected"))
        if status == "succeeded":
            summary.succeeded += 1
        else:
            summary.failed += 1
            types[report["failure_type"]] += 1
    summary.failure_types = dict(types.most_common())
    summary.throttled, summary.rate = quota.throttled, quota.rate
    _write_held(store, summary)
    summary.not_started = run.not_started
    if stop is not None and stop.is_set():
        summary.interrupted = getattr(stop, "reason", "") or "stop requested"
    summary.skipped = sum(reasons.values())
    summary.skipped_reasons = dict(reasons)
    summary.elapsed_seconds = round(time.perf_counter() - started, 3)
    if summary_json:
        write_json(summary.to_dict(), summary_json)
    return summary


def _write_held(store: SpoolingStore, summary: BatchSummary) -> None:
    """One more try for records that neither the store nor the spool took (either may be back)."""
    held, summary.unwritten_records = summary.unwritten_records, []
    for record in held:
        try:
            written = store.write(record)
        except SpoolUnavailable:
            summary.unwritten_records.append(record)
            continue
        summary.unwritten -= 1
        summary.processed += 1
        summary.spooled += written.spooled
        if record.get("RecordType") == OCR_RESULT:
            summary.succeeded += 1
        else:
            summary.failed += 1
            summary.failure_types[str(record.get("FailureType"))] = summary.failure_types.get(
                str(record.get("FailureType")), 0) + 1
