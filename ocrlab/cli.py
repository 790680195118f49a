"""The command line: parse, call one function, print. Errors are one line, no traceback."""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

from ocrlab.config import DEFAULT_PORT, LOCAL_REGION, StoreTarget, settings
from ocrlab.errors import FailureType, OcrlabError, TableMissing
from ocrlab.store.claims import Moment
from ocrlab.version import full_versions

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line, like every other error (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn
    return register


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _store(args: argparse.Namespace, *, write: bool = False):
    """The store of --table; read commands never create a table (a mistyped name is an error).

    Without --table, reading follows the table this project last wrote, and a write is remembered
    (ocrlab.table_choice)."""
    from ocrlab.store import open_store
    from ocrlab.table_choice import missing_table_message, reading_table, remember, writing_table
    args.table = writing_table(args.table) if write else reading_table(args.table)
    say(settings().store_target().describe(args.table))
    if write:
        store = open_store(args.table, create=True)
        remember(args.table)
        return store
    try:
        return open_store(args.table, create=False)
    except TableMissing:
        raise OcrlabError(missing_table_message(args.table, "--table")) from None


def _output(path: str | None) -> str | None:
    """An output path checked before any work: '-' is standard output."""
    if path and path != "-":
        from ocrlab.files import check_writable
        check_writable(path)
    return path


# --- argument types: every bad value is one line from argparse, exit 2 ------------------------

def _ranged(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range ({low} to {high})" if high is not None
                                             else f"{value} is less than {low}")
        return value
    parse.__name__ = "number"
    return parse


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number above 0")
    return value


def _timestamp(text: str) -> str:
    from ocrlab.records import format_timestamp, parse_timestamp
    try:
        return format_timestamp(parse_timestamp(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time such as 2025-10-01T00:00:00Z") from None


def _failure_type(text: str) -> str:
    """ocrlab's types in any case; any other text as given (the seed's API logs free-form types)."""
    return text.upper() if text.upper() in FailureType.__members__ else text


def _table_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)")
    return text


def _folder(text: str) -> str:
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder")
    return text


def _file(text: str) -> str:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: no such file")
    return text


@command("db")
def cmd_db(args: argparse.Namespace) -> int:
    from ocrlab.store import localdb
    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.action == "start":
        state, started = localdb.start(args.port, data_dir)
        verb = "started" if started else "already running:"
        print(f"local dynalite {verb} pid {state.pid}, http://127.0.0.1:{state.port}, data in {state.data_dir}")
        from ocrlab.store.dynamodb import Store, make_client
        target = StoreTarget("local", f"http://127.0.0.1:{state.port}", LOCAL_REGION, settings().home)
        if Store(make_client(target), args.table).ensure_table():
            print(f"created table {args.table!r}")
    elif args.action == "stop":
        stopped = localdb.stop(data_dir)
        print(f"stopped local dynalite (pid {stopped.pid})" if stopped else "local dynalite is not running")
    elif args.action == "install":
        print(f"dynalite {localdb.DYNALITE_VERSION} at {localdb.install_dynalite()}")
    elif args.action == "migrate":
        return cmd_adopt(args)
    else:
        running = localdb.status(data_dir)
        if running is None:
            print("local dynalite is not running")
            return 3
        print(f"local dynalite running: pid {running.pid}, http://127.0.0.1:{running.port}, data in {running.data_dir}")
    return 0


@command("adopt")
def cmd_adopt(args: argparse.Namespace) -> int:
    """Make a table another writer fills (the original failure logger's) a full ocrlab table, in place."""
    from tqdm.auto import tqdm

    from ocrlab.store.adoption import adopt
    from ocrlab.store.dynamodb import Store, connect, make_client
    if settings().store_target().kind == "local" and (args.port or args.data_dir):
        from ocrlab.store import localdb
        state, _ = localdb.start(args.port, Path(args.data_dir) if args.data_dir else None)
        target = StoreTarget("local", f"http://127.0.0.1:{state.port}", LOCAL_REGION, settings().home)
        store = Store(make_client(target), args.table, target.describe(args.table))
    else:
        store = connect(args.table, create=False, check=False)
    say(store.description)
    try:
        described = store.db.call("describe_table", TableName=args.table)["Table"]
    except TableMissing:
        from ocrlab.table_choice import missing_table_message
        raise OcrlabError(missing_table_message(args.table, "--table")) from None
    keys = sorted(k["AttributeName"] for k in described["KeySchema"])
    if keys != ["FailureTimestamp", "ImageKey"]:
        raise OcrlabError(f"table {args.table!r} is keyed {', '.join(keys)}, not ImageKey and FailureTimestamp: "
                          "not a failure log this ocrlab can adopt")
    with tqdm(total=int(described.get("ItemCount") or 0) or None, unit="record", desc="adopt",
              file=sys.stderr) as bar:
        report = adopt(store, progress=bar.update)
    if report.indexes:
        print(f"indexes added: {', '.join(report.indexes)}")
    if report.already:
        print(f"table {args.table!r} was adopted before; caught up with {report.records} records of "
              f"{report.images} images written since by other code")
        return 0
    print(f"adopted table {args.table!r}{' (resumed)' if report.resumed else ''}: {report.records} records of "
          f"{report.images} images; {len(report.versions)} versions")
    for version, count in sorted(report.versions.items()):
        print(f"  {count:6d}  {version}")
    if report.unversioned:
        print(f"  {report.unversioned:6d}  records without an OCRFullVersion (in exports and statistics, "
              "not in comparisons)")
    print(f"counters set: {report.counters} images continue from the highest AttemptNumber their records hold")
    print("records completed where they lacked them: RecordId, Sequence, FailureFingerprint, digests "
          "(no attribute the original code reads was changed)")
    return 0


@command("export")
def cmd_export(args: argparse.Namespace) -> int:
    from ocrlab.store.failure_log import export_failed_images_csv
    _output(args.output)
    store = _store(args)
    unknown = _unknown_versions(store, args.ocr_version)
    count = export_failed_images_csv(store, args.output, args.failure_type, args.ocr_version, args.since)
    if args.output != "-":
        say(f"exported {count} failed image records to {args.output}")
    if not count:  # say why, where the filters explain it
        if args.failure_type and args.failure_type not in FailureType.__members__:
            say(f"no failures of type {args.failure_type!r}, which is not one of ocrlab's: "
                f"{', '.join(FailureType.__members__)}")
        if unknown:
            say(unknown)
    return 0


@command("stats")
def cmd_stats(args: argparse.Namespace) -> int:
    from ocrlab.store.failure_log import get_failure_statistics
    stats = get_failure_statistics(_store(args))
    if args.json:
        print(json.dumps(stats, indent=2, default=str))
        return 0
    print(f"total failures: {stats['total_failures']}   unique images: {stats['unique_images']}   "
          f"last 24 h: {stats['recent_failures_24h']}")
    for title, key in (("by failure type", "failure_types"), ("by OCR version", "by_ocr_version"),
                       ("by error code", "by_error_code")):
        print(f"{title}:")
        for name, count in stats[key].items():
            print(f"  {count:6d}  {name}")
    if stats["top_fingerprints"]:
        print("top fingerprints:")
        for g in stats["top_fingerprints"]:
            print(f"  {g['count']:6d}  {g['fingerprint']}  {g['failure_type']}/{g['error_code']}  "
                  f"{g['first_seen']} .. {g['last_seen']}  {g['example_message'][:80]!r}")
    return 0


@command("replay")
def cmd_replay(args: argparse.Namespace) -> int:
    from ocrlab.store import Spool
    waiting = Spool(settings().spool_dir, args.table).pending()
    store = _store(args, write=waiting > 0)  # spooled records may be the first of a new table
    report = store.replay()
    print(f"replayed: {report.written} written, {report.waiting} still waiting, {report.rejected} rejected"
          + (f" (in {store.spool.rejected_path})" if report.rejected else ""))
    if report.error:
        raise OcrlabError(f"replay stopped, the store is unavailable: {report.error}")
    return 0


@command("compare")
def cmd_compare(args: argparse.Namespace) -> int:
    from ocrlab.analysis.compare import compare_versions
    from ocrlab.image_lookup import default_sources
    from ocrlab.reports.comparison import write_comparison
    _output(args.json)
    _output(args.output)
    store = _store(args)
    unknown = _unknown_versions(store, args.base, args.candidate)
    if unknown:
        raise OcrlabError(unknown)
    args.base, args.candidate = _one_version(store, args.base), _one_version(store, args.candidate)
    if args.base == args.candidate:
        say(f"warning: --base and --candidate are the same version ({args.base}): every image is unchanged")
    shown = {} if args.diffs is None else {"shown": args.diffs}
    comparison = compare_versions(store, args.base, args.candidate, args.ground_truth, **shown,
                                  truth_sources=default_sources(store.table))
    if comparison.ground_truth and not args.ground_truth:
        say(f"ground truth: the NAME.json beside the images, in {comparison.ground_truth}")
    write_comparison(comparison, args.json, args.output)
    for warning in comparison.warnings:
        say(f"warning: {warning}")
    print(comparison.summary())
    if args.output:
        say(f"report: {args.output}")
    return 0


@command("results")
def cmd_results(args: argparse.Namespace) -> int:
    from ocrlab.analysis.patterns import export_results_csv
    _output(args.output)
    store = _store(args)
    unknown = _unknown_versions(store, args.ocr_version)
    count = export_results_csv(store, args.ocr_version, args.output)
    if args.output != "-":
        say(f"wrote the latest outcome of {count} images to {args.output}")
    if not count and unknown:
        say(unknown)
    return 0


def _unknown_versions(store: Any, *asked: str | None) -> str:
    """For the versions asked for that the table does not hold, the line that says so and names the
    ones it does; empty when all are there (None: not asked). A short version (2.0.0) is held when
    a full version of it is, and the full versions it selects are said."""
    wanted = [v for v in dict.fromkeys(asked) if v]
    if not wanted:
        return ""
    known = store.versions()
    unknown = []
    for version in wanted:
        fulls = full_versions(version, known)
        if not fulls:
            unknown.append(version)
        elif fulls != [version]:
            say(f"{version}: the records of {', '.join(fulls)}")
    return (f"no records under {', '.join(map(repr, unknown))} in table {store.table!r}; "
            f"versions there: {', '.join(known) or 'none'}") if unknown else ""


def _one_version(store: Any, asked: str) -> str:
    """The one full version `asked` names (a short one must name exactly one)."""
    fulls = full_versions(asked, store.versions())
    if len(fulls) > 1:
        raise OcrlabError(f"{asked} names {len(fulls)} versions ({', '.join(fulls)}): choose one")
    return fulls[0] if fulls else asked


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from ocrlab.reports.notebooks import find_notebook, notebook_parameters, run_report
    path = find_notebook(args.notebook, args.notebooks_dir)
    params = dict(args.parameters or [])
    if "table" in notebook_parameters(path):  # not named: the notebook's own default (ocrlab.table_choice)
        if args.table:
            params.setdefault("table", args.table)
        say(settings().store_target().describe(params.get("table")))
    result = run_report(path, params, reports_dir=args.reports_dir, show_code=args.show_code)
    print(result.ipynb_path)
    print(result.html_path)
    return 0


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """--engine-option NAME=VALUE pairs (VALUE read as JSON when it parses) plus the Bedrock shortcuts,
    over the environment's defaults for the engine (OCRLAB_BEDROCK_*, OCRLAB_ENGINE_THREADS)."""
    options: dict[str, Any] = settings().engine_defaults(args.engine)
    for pair in args.engine_option or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise OcrlabError(f"--engine-option expects NAME=VALUE, got {pair!r}")
        try:
            options[name.replace("-", "_")] = json.loads(value)
        except ValueError:
            options[name.replace("-", "_")] = value
    if args.engine == "bedrock":
        for name in ("model_id", "prompt_file", "max_tokens", "rate", "max_throttle_wait"):
            if getattr(args, name, None) is not None:
                options[name] = getattr(args, name)
    elif getattr(args, "rate", None) is not None or getattr(args, "max_throttle_wait", None) is not None:
        raise OcrlabError("--rate and --max-throttle-wait are for --engine bedrock, whose service has a quota")
    return options


@command("samples")
def cmd_samples(args: argparse.Namespace) -> int:
    from ocrlab.samples.fonts import missing
    from ocrlab.samples.generate import generate_samples
    for note in missing():
        say(f"note: {note}")
    manifest = generate_samples(Path(args.outdir), count=args.count, seed=args.seed, bad=args.bad, damage=args.damage)
    expected = ", ".join(sorted({m["expected"] for m in manifest})) or "none"
    print(f"wrote {len(manifest)} images to {args.outdir} (expected outcomes: {expected}); "
          f"see {Path(args.outdir) / 'manifest.json'}")
    return 0


@command("init")
def cmd_init(args: argparse.Namespace) -> int:
    from ocrlab.project import init_project
    report = init_project(args.folder)
    for name in report.created:
        print(f"created {name}")
    for name in report.kept:
        print(f"kept    {name} (already there)")
    cd = "" if report.folder == Path.cwd().resolve() else f"cd {args.folder} && "
    print("next:\n"
          f"  {cd}ocrlab demo                       # sample timesheets, two versions, four reports\n"
          f"  {cd}ocrlab batch SCANS/ --concurrency 2   # your own images (a folder or s3://bucket/prefix)\n"
          f"  {cd}ocrlab report failure_patterns     # HTML report into reports/")
    return 0


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from ocrlab.config import DEMO_TABLE
    from ocrlab.demo import run
    # The demo always runs on the embedded defaults: this process's settings, and its notebook
    # kernels', which inherit the environment.
    os.environ["OCRLAB_STORE"] = "local"
    return run(count=args.count, table=args.table or DEMO_TABLE, reports_dir=args.reports_dir)


@command("lab")
def cmd_lab(args: argparse.Namespace) -> int:
    from ocrlab.lab import run
    return run(args.port, args.notebooks_dir)


@command("batch")
def cmd_batch(args: argparse.Namespace) -> int:
    from ocrlab.ocr.preprocess import Preprocess
    from ocrlab.runs.batch import StopRequest, check_engine, engine_options_for, run_batch
    from ocrlab.version import load_version
    version = load_version(args.ocr_version_file)
    preprocess = Preprocess.from_json(args.preprocess) if args.preprocess else None
    _output(args.summary_json)
    options = engine_options_for(args.engine, _engine_options(args), args.concurrency)
    engine = check_engine(args.engine, options)  # every input checked before the store or any image
    store = _store(args, write=True)
    say(f"engine: {args.engine}; OCR version {version.full_version}; preprocessing: "
        + (preprocess.to_json() if preprocess and preprocess.enabled else "off"))
    stop = StopRequest()
    with _stopping_on_signals(stop):
        summary = run_batch(args.source, store, engine=args.engine, engine_options=options,
                            concurrency=args.concurrency,
                            max_attempts=args.max_attempts, force=args.force, retry_failed=args.retry_failed,
                            summary_json=args.summary_json, scheduler=args.scheduler, progress=not args.no_progress,
                            preprocess=preprocess, lease_seconds=args.claim_lease, follow_links=args.follow_links,
                            began=STARTED, stop=stop, version=version, built_engine=engine)
    types = ", ".join(f"{k} {v}" for k, v in summary.failure_types.items()) or "none"
    print(f"{summary.images} images: {summary.processed} processed ({summary.succeeded} succeeded, "
          f"{summary.failed} failed: {types}), {summary.skipped} skipped"
          + (f", {summary.throttled} model calls throttled and tried again"
             + (f" (paced at {summary.rate:.1f} a second in the end)" if summary.rate else "")
             if summary.throttled else "")
          + (f", {len(summary.ignored)} files ignored" if summary.ignored else "")
          + (f", {summary.spooled} records spooled (run `ocrlab replay`)" if summary.spooled else "")
          + (f", {summary.rejected} records refused by the store (see `ocrlab replay`)" if summary.rejected else "")
          + (f", {summary.not_started} not started" if summary.not_started else "")
          + f" in {summary.elapsed_seconds:.1f} s")
    for reason, count in summary.skipped_reasons.items():
        print(f"  skipped {count}: {reason}")
    for reason, count in summary.ignored_reasons.items():
        print(f"  ignored {count}: {reason}")
    if args.summary_json:
        say(f"summary: {args.summary_json}")
    if summary.stopped:
        held = (f"; {summary.unwritten} records neither stored nor spooled are in the summary"
                if summary.unwritten else "")
        raise OcrlabError(f"stopped early, {summary.stopped}{held}")
    if summary.interrupted:
        say(f"ocrlab batch: stopped by {summary.interrupted}{AFTER_INTERRUPT['batch']}")
        return 128 + signal.Signals[summary.interrupted].value
    return 0


@contextmanager
def _stopping_on_signals(stop: Any) -> Iterator[None]:
    """SIGINT and SIGTERM (what docker stop, systemd and schedulers send) ask the batch to stop: no new
    image starts, those running finish and are recorded, the summary is written. A second signal
    stops at once (as Ctrl-C always did)."""
    def ask(number: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.request(signal.Signals(number).name)
        say(f"ocrlab batch: {signal.Signals(number).name}: finishing the images already running, starting no "
            "other (signal again to stop at once)")
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, ask) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    from ocrlab.evaluation.evaluate import evaluate
    from ocrlab.ocr.engines import get_engine
    from ocrlab.runs.sources import open_source
    _output(args.json)
    listing = open_source(args.source)
    if listing.items and listing.items[0].path is None:
        raise OcrlabError("eval reads local files; download S3 images first")
    engine = get_engine(args.engine, **_engine_options(args))
    say(f"engine: {args.engine}")
    report = evaluate([Path(i.path) for i in listing.items if i.path], Path(args.ground_truth), engine,
                      fold_case=args.fold_case)
    data = report.to_dict()
    if args.json:
        from ocrlab.files import write_json
        write_json(data, args.json)
    bag = data["bag_of_words"]
    print(f"{data['evaluated']} documents ({data['failed']} failed OCR, {len(data['skipped'])} without reference): "
          f"CER {report.cer:.2%}  WER {report.wer:.2%}  bag-of-words F1 {bag['f1']:.2%}  "
          f"{data['seconds_per_image']:.2f} s/image  (weighted by reference length)")
    return 0


def _add_engine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="rapidocr", help="rapidocr (default), tesseract or bedrock")
    p.add_argument("--model-id", default=None, help="Bedrock model id (default amazon.nova-lite-v1:0)")
    p.add_argument("--prompt-file", type=_file, default=None, help="Bedrock prompt file (default: the packaged prompt)")
    p.add_argument("--max-tokens", type=_ranged(1, 300_000), default=None, help="Bedrock maxTokens")
    p.add_argument("-E", "--engine-option", action="append", metavar="NAME=VALUE",
                   help="engine constructor option, VALUE as JSON (e.g. params='{\"Det.limit_side_len\": 960}')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ocrlab", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more (the library's debug log)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="say only warnings and errors")
    # Parents are of the subparsers' class, as the type of add_parser's `parents` asks (only their arguments are used).
    common = _Parser(add_help=False)
    common.add_argument("--table", type=_table_name, default=settings().table,
                        help="DynamoDB table (default: OCRLAB_TABLE, else %(default)s)")
    reading = _Parser(add_help=False)  # ocrlab.table_choice: what the project last wrote
    reading.add_argument("--table", type=_table_name, default=None,
                         help="DynamoDB table (default: OCRLAB_TABLE, else the table this project's last batch "
                              "or demo wrote, else ocrlab)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("db", parents=[common], help="start, stop or query the local DynamoDB (dynalite)")
    p.add_argument("action", choices=["start", "stop", "status", "install", "migrate"],
                   help="migrate: the same as `ocrlab adopt` (an older table made this ocrlab's, in place)")
    p.add_argument("--port", type=_ranged(1, 65535), default=None, help=f"default {DEFAULT_PORT} (or OCRLAB_DB_PORT)")
    p.add_argument("--data-dir", default=None, help="default .ocrlab/dynamodb (under OCRLAB_HOME)")

    p = sub.add_parser("adopt", parents=[common], help="make a table the original failure logger wrote (or "
                       "another writer fills) a full ocrlab table, in place; safe to interrupt and run again")
    p.add_argument("--port", type=_ranged(1, 65535), default=None, help="the local database's port, if not the default")
    p.add_argument("--data-dir", default=None, help="the local database's folder, if not the default")

    p = sub.add_parser("export", parents=[reading], help="failed images as CSV")
    p.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    p.add_argument("--failure-type", type=_failure_type, default=None, help=f"one of {', '.join(FailureType.__members__)}")
    p.add_argument("--ocr-version", default=None, help="an OCRFullVersion (2.0.0-2025-10-25) or an OCRVersion (2.0.0: each full version of it)")
    p.add_argument("--since", type=_timestamp, default=None, help="ISO-8601 UTC time")

    p = sub.add_parser("stats", parents=[reading], help="failure statistics")
    p.add_argument("--json", action="store_true")

    sub.add_parser("replay", parents=[common], help="write records spooled while the store was down")

    p = sub.add_parser("compare", parents=[reading], help="compare two OCR versions image by image")
    p.add_argument("--base", required=True, help="an OCRFullVersion (2.0.0-2025-10-25) or an OCRVersion (2.0.0: each full version of it)")
    p.add_argument("--candidate", required=True)
    p.add_argument("--ground-truth", type=_folder, default=None,
                   help="folder of NAME.json (the parsed timesheet) for field accuracy (default: the NAME.json "
                        "beside the images, when they are found in the project folder)")
    p.add_argument("--json", default=None)
    p.add_argument("-o", "--output", default=None, help="HTML report with side-by-side raw-output diffs")
    p.add_argument("--diffs", type=_ranged(0), default=None, metavar="N",
                   help="images shown with a full diff per group besides every regression (default 200); "
                        "the rest are listed one line each on list pages beside the report")

    p = sub.add_parser("results", parents=[reading], help="latest outcome per image as CSV")
    p.add_argument("--ocr-version", default=None, help="an OCRFullVersion, or an OCRVersion (each full version of it); default: every version")
    p.add_argument("-o", "--output", default="-")

    p = sub.add_parser("report", parents=[reading],
                       help="run notebooks/NOTEBOOK.ipynb with papermill; executed notebook + HTML into reports/")
    p.add_argument("notebook", help="batch_run, failure_patterns, compare_versions, export_failures, "
                                    "prompt_tuning, or a path")
    p.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append", metavar=("NAME", "VALUE"))
    p.add_argument("--reports-dir", default=None, help="default: reports/")
    p.add_argument("--notebooks-dir", default=None)
    p.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")

    p = sub.add_parser("init", help="a starter project: OCR_VERSION.txt, notebooks/, reports/, .gitignore")
    p.add_argument("folder", nargs="?", default=".", help="default: the current folder")

    p = sub.add_parser("demo", help="the main job on the embedded defaults: samples, two versions, reports")
    p.add_argument("--count", type=_ranged(1, 10_000), default=10, help="clean samples to generate (broken ones are added)")
    p.add_argument("--table", type=_table_name, default=None,
                   help="default: ocrlab-demo (then the table this project's commands and notebooks read)")
    p.add_argument("--reports-dir", default=None, help="default: reports/")

    p = sub.add_parser("lab", help="JupyterLab on the notebooks, against the local database (started if needed)")
    p.add_argument("--port", type=_ranged(1, 65535), help="JupyterLab's port (default: its own, 8888)")
    p.add_argument("--notebooks-dir", help="folder to open (default: the project's notebooks/)")

    p = sub.add_parser("samples", help="reference timesheets with ground truth")
    p.add_argument("outdir")
    p.add_argument("--count", type=_ranged(0, 100_000), default=10)
    p.add_argument("--seed", type=_ranged(0), default=0)
    p.add_argument("--bad", action="store_true", help="add broken files and invalid timesheets")
    p.add_argument("--damage", choices=["none", "light", "heavy"], default="light",
                   help="scan damage of the timesheet images (default: %(default)s)")

    p = sub.add_parser("batch", parents=[common], help="OCR every image of a folder, file or s3://bucket/prefix")
    p.add_argument("source")
    _add_engine_arguments(p)
    p.add_argument("--ocr-version-file", default=None, help="version stamp (default OCR_VERSION.txt)")
    p.add_argument("--concurrency", type=_ranged(1, 256), default=1)
    p.add_argument("--rate", type=_positive, default=None, metavar="N",
                   help="Bedrock requests a second at most (default: none; the pace is found from throttling)")
    p.add_argument("--max-throttle-wait", type=_ranged(0), default=None, metavar="SECONDS",
                   help="how long an image waits for a Bedrock quota that stays exhausted before it fails "
                        "as THROTTLING_ERROR (default 300)")
    p.add_argument("--max-attempts", type=_ranged(1), default=None,
                   help="skip images that failed N times under this version")
    p.add_argument("--force", action="store_true", help="run images that already succeeded under this version")
    p.add_argument("--retry-failed", action="store_true", help="only images whose latest outcome is a failure")
    p.add_argument("--summary-json", default=None)
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--follow-links", action="store_true", help="follow links that lead out of the source folder")
    p.add_argument("--claim-lease", type=_ranged(10, 86_400), default=900, metavar="SECONDS",
                   help="how long another run waits before taking over an image this run holds "
                        "(at once if this run's process is gone on this host)")
    p.add_argument("--preprocess", default=None, metavar="JSON",
                   help='image preprocessing, e.g. \'{"contrast": true, "denoise": true, "deskew": true, '
                        '"upscale_min_height": 24}\' (default: off)')

    p = sub.add_parser("eval", help="CER/WER of raw OCR text against reference text")
    p.add_argument("source")
    p.add_argument("--ground-truth", type=_folder, required=True,
                   help="folder of NAME.txt, or the SROIE layout (box/NAME.csv)")
    _add_engine_arguments(p)
    p.add_argument("--json", default=None)
    p.add_argument("--fold-case", action="store_true", help="compare case-insensitively (SROIE is upper case)")
    return parser


# When this command was asked for (by the machine's monotonic clock, which a wrong wall clock does not
# move): a batch skips what other runs of the machine finish after it.
STARTED = Moment.now()

# What a person needs to know after Ctrl-C, by command.
AFTER_INTERRUPT = {"batch": "; every image finished so far is recorded (or spooled), and the same command "
                            "run again goes on with the rest",
                   "replay": "; what was written stays written, and the next replay goes on from there (each record "
                             "is written once)"}


def _terminated(number: int, frame: Any) -> None:
    raise Terminated(number)


class Terminated(KeyboardInterrupt):
    """SIGTERM, ending a command the way Ctrl-C does (a batch handles both itself, more gently)."""

    def __init__(self, number: int) -> None:
        super().__init__(signal.Signals(number).name)
        self.number = number


@contextmanager
def _log_to_stderr(verbosity: int) -> Iterator[None]:
    """For the command's run, the library's log (the `ocrlab` logger) on standard error, one line a
    message: what it does (info) unless -q, its details (debug) with -v. Put back after, so a command
    run in-process (a notebook, a test) leaves logging as it found it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ocrlab: %(message)s"))
    logger = logging.getLogger("ocrlab")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO if verbosity == 0 else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    global STARTED
    STARTED = Moment.now()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
        # Over a file-size limit (ulimit -f) a write fails with EFBIG, reported like a full disk,
        # instead of the process being killed halfway through a file.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        args = build_parser().parse_args(argv)
    except OcrlabError as exc:  # a bad setting (ocrlab.config) is reported like a bad argument
        print(f"ocrlab: {exc}", file=sys.stderr)
        return 2
    try:
        with _log_to_stderr(args.verbose - args.quiet):
            return COMMANDS[args.command](args)
    except OcrlabError as exc:
        print(f"ocrlab {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        after = AFTER_INTERRUPT.get(args.command, "")
        number = exc.number if isinstance(exc, Terminated) else signal.SIGINT.value
        print(f"ocrlab {args.command}: {'stopped by SIGTERM' if isinstance(exc, Terminated) else 'interrupted'}{after}",
              file=sys.stderr)
        return 128 + number
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file: the disk filled, the folder went away (its name says which)
        if exc.filename is None:
            raise
        print(f"ocrlab {args.command}: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
