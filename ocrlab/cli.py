"""The command line: parse, call one function, print. Errors are one line, no traceback."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from . import config
from .errors import OcrlabError

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn
    return register


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _store(args: argparse.Namespace):
    from .store import open_store
    say(config.store_target().describe(args.table))
    return open_store(args.table)


@command("db")
def cmd_db(args: argparse.Namespace) -> int:
    from . import localdb
    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.action == "start":
        state, started = localdb.start(args.port, data_dir)
        verb = "started" if started else "already running:"
        print(f"local dynalite {verb} pid {state.pid}, http://127.0.0.1:{state.port}, data in {state.data_dir}")
        from .store import Store, make_client
        target = config.StoreTarget("local", f"http://127.0.0.1:{state.port}", config.LOCAL_REGION)
        if Store(make_client(target), args.table).ensure_table():
            print(f"created table {args.table!r}")
    elif args.action == "stop":
        state = localdb.stop(data_dir)
        print(f"stopped local dynalite (pid {state.pid})" if state else "local dynalite is not running")
    elif args.action == "install":
        print(f"dynalite {localdb.DYNALITE_VERSION} at {localdb.install_dynalite()}")
    else:
        state = localdb.status(data_dir)
        if state is None:
            print("local dynalite is not running")
            return 3
        print(f"local dynalite running: pid {state.pid}, http://127.0.0.1:{state.port}, data in {state.data_dir}")
    return 0


@command("export")
def cmd_export(args: argparse.Namespace) -> int:
    from .failure_log import export_failed_images_csv
    count = export_failed_images_csv(_store(args), args.output, args.failure_type, args.ocr_version, args.since)
    if args.output != "-":
        say(f"exported {count} failed image records to {args.output}")
    return 0


@command("stats")
def cmd_stats(args: argparse.Namespace) -> int:
    from .failure_log import get_failure_statistics
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
    from . import spool
    report = spool.replay(_store(args))
    print(f"replayed {report.written} spooled records; {report.remaining} remain"
          + (f" ({report.unreadable} unreadable)" if report.unreadable else ""))
    if report.error:
        raise OcrlabError(f"replay stopped: {report.error}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocrlab", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--table", default=config.DEFAULT_TABLE, help="DynamoDB table (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("db", parents=[common], help="start, stop or query the local DynamoDB (dynalite)")
    p.add_argument("action", choices=["start", "stop", "status", "install"])
    p.add_argument("--port", type=int, default=None, help=f"default {config.DEFAULT_PORT} (or OCRLAB_DB_PORT)")
    p.add_argument("--data-dir", default=None, help="default .ocrlab/dynamodb (under OCRLAB_HOME)")

    p = sub.add_parser("export", parents=[common], help="failed images as CSV")
    p.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    p.add_argument("--failure-type", default=None)
    p.add_argument("--ocr-version", default=None, help="an OCRFullVersion, e.g. 2.0.0-2025-10-25")
    p.add_argument("--since", default=None, help="ISO-8601 UTC time")

    p = sub.add_parser("stats", parents=[common], help="failure statistics")
    p.add_argument("--json", action="store_true")

    sub.add_parser("replay", parents=[common], help="write records spooled while the store was down")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except OcrlabError as exc:
        print(f"ocrlab {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ocrlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
