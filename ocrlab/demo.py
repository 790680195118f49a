"""`make demo`: the main job on the embedded defaults, from a fresh machine, in a few minutes.

Starts the local database, generates reference timesheets with heavy scan damage including broken
ones, runs a batch under OCR_VERSION.txt and another under a candidate configuration (a second
version stamp: the same engine with image preprocessing), then writes the failure-patterns,
comparison and prompt-tuning reports and prints their paths.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import config, localdb
from .batch import run_batch
from .preprocess import Preprocess
from .samples import generate_samples
from .version import load_version

# The candidate: the same local engine with image preprocessing (does it read damaged scans better,
# and what does it break?).
CANDIDATE_VERSION = "version: 2.1.0\nbuild_date: 2025-11-02\ndescription: rapidocr + contrast preprocessing\n"
CANDIDATE_PREPROCESS = Preprocess(contrast=True)


def run(count: int = 10, table: str = "ocrlab-demo", reports_dir: str = "reports", concurrency: int = 2) -> int:
    started = time.perf_counter()
    state = localdb.ensure_running()
    print(config.store_target().describe(table))
    work = config.home() / "demo"
    samples = work / "samples"
    manifest = generate_samples(samples, count=count, seed=2025, bad=True, damage="heavy")
    print(f"samples: {len(manifest)} images in {samples}")
    candidate_file = work / "candidate_OCR_VERSION.txt"
    candidate_file.write_text(CANDIDATE_VERSION, encoding="utf-8")
    base, candidate = load_version(), load_version(candidate_file)

    for version_file, preprocess, label in ((None, None, base), (candidate_file, CANDIDATE_PREPROCESS, candidate)):
        summary = run_batch(str(samples), engine="rapidocr", version_file=version_file, table=table,
                            concurrency=concurrency, progress=True, preprocess=preprocess)
        print(f"batch {label.full_version}: {summary.processed} processed, {summary.succeeded} succeeded, "
              f"{summary.failed} failed {summary.failure_types}, {summary.skipped} skipped")

    from .reports import run_report
    reports = [
        ("failure_patterns", {"table": table}),
        ("compare_versions", {"table": table, "base": base.full_version, "candidate": candidate.full_version,
                              "ground_truth": str(samples)}),
        ("prompt_tuning", {"table": table, "source": str(samples), "base_version": base.full_version,
                           "candidate_version_file": str(candidate_file), "engine": "rapidocr",
                           "preprocess": CANDIDATE_PREPROCESS.to_json(),
                           "image_set": "failures"}),
    ]
    print("reports:")
    for notebook, parameters in reports:
        result = run_report(notebook, parameters, reports_dir=reports_dir)
        print(f"  {result.html_path}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s; the local database keeps running "
          f"(pid {state.pid if state else '?'}); `ocrlab db stop` stops it")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocrlab.demo", description=__doc__)
    parser.add_argument("--count", type=int, default=10, help="damaged samples to generate")
    parser.add_argument("--table", default="ocrlab-demo")
    parser.add_argument("--reports-dir", default="reports")
    args = parser.parse_args(argv)
    return run(args.count, args.table, args.reports_dir)


if __name__ == "__main__":
    sys.exit(main())
