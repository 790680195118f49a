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
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
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


def bench_export_memory(n_small: int, n_large: int) -> dict[str, Any]:
    """Peak Python memory of a CSV export of n_large rows over n_small rows: streaming keeps it ~1."""
    from ocrlab.store import open_store
    from ocrlab.store.failure_log import export_failed_images_csv, log_failed_image

    def fill(table: str, n: int) -> None:
        store = open_store(table)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: log_failed_image(store, f"m/{i:06d}.png", "PARSING_ERROR", f"failure {i}",
                                                     None, {"raw_ocr_output": "r" * 2000}), range(n)))

    def peak(table: str) -> tuple[float, int]:
        tracemalloc.start()
        with open(os.devnull, "w", encoding="utf-8", newline="") as sink:
            rows = export_failed_images_csv(open_store(table), sink)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top / 1e6, rows

    fill("bench-small", n_small)
    fill("bench-large", n_large)
    small_mb, small_rows = peak("bench-small")
    large_mb, large_rows = peak("bench-large")
    return {"rows": [small_rows, large_rows], "peak_mb": [round(small_mb, 2), round(large_mb, 2)],
            "ratio": round(large_mb / small_mb, 3), "target": "ratio <= 1.5 for 5x the rows",
            "met": large_mb / small_mb <= 1.5}


def bench_log_throughput(n: int) -> dict[str, Any]:
    """Failures logged per second, 8 threads over 1 thread (one shared boto3 client)."""
    from ocrlab.store import open_store
    from ocrlab.store.failure_log import log_failed_image
    store = open_store("bench-log")
    one, _ = timed(lambda: [log_failed_image(store, f"a/{i}.png", "OCR_ERROR", "m") for i in range(n)])
    with ThreadPoolExecutor(8) as pool:
        eight, _ = timed(lambda: list(pool.map(lambda i: log_failed_image(store, f"b/{i}.png", "OCR_ERROR", "m"),
                                               range(n))))
    return {"records": n, "per_second_1_thread": round(n / one, 1), "per_second_8_threads": round(n / eight, 1),
            "speedup": round(one / eight, 2)}


def bench_batch(count: int) -> dict[str, Any]:
    """rapidocr batch on clean samples: seconds per image, field accuracy, and 2 processes over 1."""
    from ocrlab.batch import run_batch
    from ocrlab.samples import generate_samples
    from ocrlab.store import open_store
    folder = Path(tempfile.mkdtemp()) / "samples"
    manifest = generate_samples(folder, count=count, seed=11, bad=False)
    seq, s1 = timed(lambda: run_batch(str(folder), open_store("bench-b1"), concurrency=1, progress=False))
    par, s2 = timed(lambda: run_batch(str(folder), open_store("bench-b2"), concurrency=2, progress=False))
    right = total = 0
    for record in open_store("bench-b1").records_by_type("OCR_RESULT"):
        truth = json.loads((folder / record["ImageKey"]).with_suffix(".json").read_text())
        got = json.loads(record["ParsedTimesheet"])
        for field in ("employee_name", "employee_id", "week_ending", "total_hours"):
            total, right = total + 1, right + (got.get(field) == truth[field])
        for t, g in zip(truth["entries"], got["entries"] + [{}] * len(truth["entries"])):
            for field in ("date", "time_in", "time_out", "hours"):
                total, right = total + 1, right + (g.get(field) == t[field])
    # Images that failed count all their fields as wrong.
    for name in {m["file"] for m in manifest} - {r["ImageKey"] for r in open_store("bench-b1").records_by_type("OCR_RESULT")}:
        truth = json.loads((folder / name).with_suffix(".json").read_text())
        total += 4 + 4 * len(truth["entries"])
    return {"images": len(manifest), "succeeded": s1.succeeded, "seconds_per_image_1_process": round(seq / len(manifest), 3),
            "seconds_per_image_2_processes": round(par / len(manifest), 3), "speedup_2_over_1": round(seq / par, 2),
            "field_accuracy": round(right / total, 4) if total else None}


def bench_sroie() -> dict[str, Any]:
    """rapidocr on the 39 SROIE receipts: CER/WER, case-sensitive and case-folded, weighted by length."""
    if not SROIE.is_dir():
        return {"skipped": f"{SROIE} not found"}
    from ocrlab.engines import get_engine
    from ocrlab.evaluate import ErrorCounts, bag_of_words, cer, evaluate, read_reference, wer
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
        small = 100 if args.quick else 600
        for name, fn in (("export_memory", lambda: bench_export_memory(small, small * 5)),
                         ("log_throughput", lambda: bench_log_throughput(50 if args.quick else 300)),
                         ("batch_rapidocr", lambda: bench_batch(4 if args.quick else 12)),
                         ("sroie_rapidocr", bench_sroie if not args.quick else lambda: {"skipped": "--quick"}),
                         ("answers", bench_answers),
                         ("quality", lambda: bench_quality(*((6, 3) if args.quick else (60, 12)))),
                         ("browser", lambda: bench_browser(args.quick)),
                         *((name, lambda name=name: bench_scale(name, args.quick))  # type: ignore[misc]
                           for name in ("scale_compare", "scale_compare_report", "scale_patterns", "scale_export"))):
            if args.only and name not in args.only:
                continue
            print(f"{name} ...", file=sys.stderr, flush=True)
            results[name] = fn()
            print(json.dumps(results[name]), file=sys.stderr, flush=True)
    finally:
        localdb.stop()
    if args.only and Path(args.out).exists():  # keep the other benchmarks' last figures
        results = {**json.loads(Path(args.out).read_text(encoding="utf-8")), **results}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
