"""`ocrlab demo` (`make demo`): the main job on the embedded defaults, in any folder, in a few minutes.

Starts the local database of the folder's .ocrlab/, generates reference timesheets with heavy
scan damage including broken ones (printed in the faces every machine has, so the figures are the
README's everywhere), runs a batch under the project's OCR_VERSION.txt (or a demo
version when there is none) and another under a candidate configuration (a second version stamp:
the same engine with image preprocessing), then writes the failure-patterns, comparison and
prompt-tuning reports and the failure browser's report, and prints their paths. Its table becomes the
one this project's commands and notebooks read (ocrlab.table_choice), so `ocrlab lab` shows it.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ocrlab.config import DEMO_TABLE, settings
from ocrlab.errors import VersionFileError
from ocrlab.ocr.preprocess import Preprocess
from ocrlab.runs.batch import run_batch
from ocrlab.samples.generate import generate_samples
from ocrlab.store import localdb, open_store
from ocrlab.table_choice import reading_table, remember
from ocrlab.version import load_version

# Without a project version file the demo runs its base under this one.
BASE_VERSION = "version: 2.0.0\nbuild_date: 2025-10-25\ndescription: rapidocr, default settings\n"
# The candidate: the same local engine with image preprocessing (does it read damaged scans better,
# and what does it break?).
CANDIDATE_VERSION = "version: 2.1.0\nbuild_date: 2025-11-02\ndescription: rapidocr + contrast preprocessing\n"
CANDIDATE_PREPROCESS = Preprocess(contrast=True)


def _base_version_file(work: Path) -> Path | None:
    """The project's OCR_VERSION.txt (None: the default lookup finds it), else the demo's own."""
    try:
        load_version()
        return None
    except VersionFileError:
        path = work / "base_OCR_VERSION.txt"
        path.write_text(BASE_VERSION, encoding="utf-8")
        return path


def run(count: int = 10, table: str = DEMO_TABLE, reports_dir: str | None = None, concurrency: int = 2) -> int:
    """The demo on the store the settings choose (`ocrlab demo` chooses the local one); 0 when done."""
    started = time.perf_counter()
    state = localdb.ensure_running() if settings().store_target().kind == "local" else None
    config = settings()
    print(config.store_target().describe(table))
    store = open_store(table)
    remember(table)  # what `ocrlab stats`, `ocrlab lab` and the notebooks read from now on
    work = config.demo_dir
    samples = work / "samples"
    work.mkdir(parents=True, exist_ok=True)
    base_file = _base_version_file(work)
    # This seed's set is one on which the candidate both fixes and breaks timesheets (with 10 valid
    # ones: fixes 1, breaks 1), so the comparison has something to show; printed in the faces every
    # machine has, so it shows the same everywhere.
    manifest = generate_samples(samples, count=count, seed=2026, bad=True, damage="heavy", portable=True)
    print(f"samples: {len(manifest)} images in {samples}")
    candidate_file = work / "candidate_OCR_VERSION.txt"
    candidate_file.write_text(CANDIDATE_VERSION, encoding="utf-8")
    base, candidate = load_version(base_file), load_version(candidate_file)

    for version_file, preprocess, label in ((base_file, None, base), (candidate_file, CANDIDATE_PREPROCESS, candidate)):
        summary = run_batch(str(samples), store, engine="rapidocr", version_file=version_file,
                            concurrency=concurrency, progress=True, preprocess=preprocess)
        print(f"batch {label.full_version}: {summary.processed} processed, {summary.succeeded} succeeded, "
              f"{summary.failed} failed {summary.failure_types}, {summary.skipped} skipped")

    from ocrlab.analysis.compare import compare_versions
    print(compare_versions(store, base.full_version, candidate.full_version, str(samples)).summary())

    from ocrlab.reports.notebooks import run_report
    reports: list[tuple[str, dict[str, Any]]] = [
        ("failure_patterns", {"table": table}),
        ("compare_versions", {"table": table, "base": base.full_version, "candidate": candidate.full_version,
                              "ground_truth": str(samples)}),
        ("explore_failures", {"table": table, "source": str(samples)}),
        ("prompt_tuning", {"table": table, "source": str(samples), "base_version": base.full_version,
                           "candidate_version_file": str(candidate_file), "engine": "rapidocr",
                           "preprocess": CANDIDATE_PREPROCESS.to_json(),
                           "image_set": "failures"}),
    ]
    print("reports:")
    # The three that only read run side by side (a kernel spends most of its time starting); prompt
    # tuning writes records the others would show, so it runs after them.
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda job: run_report(job[0], job[1], reports_dir=reports_dir), reports[:-1]))
    for result in [*done, run_report(*reports[-1], reports_dir=reports_dir)]:
        print(f"  {result.html_path}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s"
          + (f"; the local database keeps running (pid {state.pid}); `ocrlab db stop` stops it" if state else ""))
    read = reading_table()
    if read == table:
        print(f"next: `ocrlab lab` (or `make lab`) and Run All on explore_failures.ipynb; the notebooks, "
              f"`ocrlab stats` and `ocrlab export` read table {table!r}")
    else:
        print(f"note: OCRLAB_TABLE names {read!r}, so the notebooks and commands read that table; "
              f"pass --table {table} (a notebook: table = {table!r}) to see the demo's records")
    return 0
