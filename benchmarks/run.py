"""Benchmarks: each target is a ratio against a baseline measured in the same process.

    python -m benchmarks.run [--quick] [--only NAME ...]      (or: make bench)

`--only` runs the named benchmarks and updates just their entries in the results file.

Writes benchmarks/results.json; the README summarises it. Uses its own OCRLAB_HOME and
dynalite port so it never touches your data.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .answers import bench_answers

HERE = Path(__file__).resolve().parent
SROIE = HERE.parent.parent / "shared" / "datasets" / "sroie-sample"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def best_of(rounds: int, *fns: Callable[[int], Any]) -> list[tuple[float, Any]]:
    """Each function (given the round's number) timed in `rounds` interleaved rounds, and the fastest
    run of each with its value: a burst of load on a shared machine costs one round, not a figure."""
    runs = [[timed(lambda: fn(r)) for fn in fns] for r in range(rounds)]
    return [min((run[i] for run in runs), key=lambda t: t[0]) for i in range(len(fns))]


def bench_sroie() -> dict[str, Any]:
    """rapidocr on the 39 SROIE receipts: CER/WER, case-sensitive and case-folded, weighted by length."""
    if not SROIE.is_dir():
        return {"skipped": f"{SROIE} not found"}
    from ocrlab.evaluation.evaluate import ErrorCounts, bag_of_words, cer, evaluate, read_reference, wer
    from ocrlab.ocr.engines import get_engine
    engine = get_engine("rapidocr")
    images = sorted((SROIE / "img").glob("*.jpg"))
    seconds, report = timed(lambda: evaluate(images, SROIE, engine))
    # Case-folded figures from the same OCR output (SROIE transcripts are upper case).
    folded = {"cer": ErrorCounts(), "wer": ErrorCounts(), "bag": ErrorCounts()}
    for doc in report.documents:
        reference = read_reference(SROIE, doc.name) or ""
        for key, measure in (("cer", cer), ("wer", wer), ("bag", bag_of_words)):
            folded[key] = folded[key] + measure(reference, doc.hypothesis, fold_case=True)
    return {"documents": len(report.documents), "failed": sum(d.failed for d in report.documents),
            "cer": round(report.cer, 4), "wer": round(report.wer, 4), "bag_of_words_f1": round(report.bag.f1, 4),
            "cer_fold_case": round(folded["cer"].rate, 4), "wer_fold_case": round(folded["wer"].rate, 4),
            "bag_of_words_f1_fold_case": round(folded["bag"].f1, 4),
            "seconds_per_image": round(seconds / len(images), 3)}


def bench_quality(count: int, invalid: int) -> dict[str, Any]:
    from benchmarks.quality import bench_quality as run
    return run(count, invalid)


def bench_browser(quick: bool) -> dict[str, Any]:
    from benchmarks.browser import bench_browser as run
    return run(5000 if quick else 50_000)


def bench_quota(quick: bool) -> dict[str, Any]:
    from benchmarks.quota import bench_quota as run
    return run(*((96, 40, 32, 0.2, 1) if quick else ()))


def bench_sharded_reads(quick: bool) -> dict[str, Any]:
    from benchmarks.shards import bench_sharded_reads as run
    return run(12_000 if quick else 120_000)


def bench_scale(name: str, quick: bool) -> dict[str, Any]:
    from benchmarks import scale
    divisor = 20 if quick else 1
    steps = {"scale_compare": scale.bench_compare, "scale_compare_report": scale.bench_compare_report,
             "scale_patterns": scale.bench_patterns, "scale_export": scale.bench_export}
    return steps[name](divisor=divisor)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, to check the script runs")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="ocrlab-bench-")
    os.environ.update(OCRLAB_HOME=home, OCRLAB_STORE="local", OCRLAB_DB_PORT=str(_free_port()))
    from ocrlab.store import localdb
    localdb.start()
    results: dict[str, Any] = {"machine": {"python": sys.version.split()[0], "cpus": os.cpu_count(),
                                           "platform": platform.platform()},
                               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        from benchmarks import perf
        q = args.quick
        for name, fn in (("log_failure", lambda: perf.bench_log(50 if q else 300)),
                         ("bedrock_batch", lambda: perf.bench_bedrock_batch(*((64, 8) if q else (480, 40)))),
                         ("bedrock_quota", lambda: bench_quota(q)),
                         ("reads", lambda: perf.bench_reads(*((2000, 4000, 200) if q else (20_000, 100_000, 1000)))),
                         ("sharded_reads", lambda: bench_sharded_reads(q)),
                         ("local_engine", lambda: perf.bench_local_engine(4 if q else 12)),
                         ("sroie_rapidocr", bench_sroie if not q else lambda: {"skipped": "--quick"}),
                         ("answers", bench_answers),
                         ("quality", lambda: bench_quality(*((6, 3) if q else (60, 12)))),
                         ("browser", lambda: bench_browser(q)),
                         ("demo_notebooks", lambda: perf.bench_demo_and_notebooks(5000 if q else 50_000)),
                         *((name, lambda name=name: bench_scale(name, q))  # type: ignore[misc]
                           for name in ("scale_compare", "scale_compare_report", "scale_patterns", "scale_export"))):
            if args.only and name not in args.only:
                continue
            print(f"{name} ...", file=sys.stderr, flush=True)
            results[name] = fn()
            print(json.dumps(results[name]), file=sys.stderr, flush=True)
    finally:
        localdb.stop()
    if Path(args.out).exists():  # keep the figures this run did not produce (--only, the soak's)
        previous = json.loads(Path(args.out).read_text(encoding="utf-8"))
        if args.only:  # the top's machine and time stay the last full run's; each section run alone has its own
            for name in args.only:
                if isinstance(results.get(name), dict):
                    results[name]["when"] = results["when"]
            results = {k: v for k, v in results.items() if k not in ("machine", "when") or k not in previous}
        results = {**previous, **results}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
