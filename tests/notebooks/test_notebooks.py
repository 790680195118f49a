"""The notebooks: stored thin and without outputs, smoke-run by papermill with small parameters against
tables seeded here (assertions on the figures each one records), and runnable by `pytest --nbval-lax`."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest
from support.chromium import open_offline

from ocrlab.analysis.costs import NOVA_LITE
from ocrlab.errors import NotebookFailed
from ocrlab.records import result_item
from ocrlab.reports import ReportResult, recorded_figures, run_report
from ocrlab.samples.generate import generate_samples
from ocrlab.store.failure_log import log_failed_image, store_for
from ocrlab.version import OCRVersionInfo, load_version

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["batch_run", "compare_versions", "explore_failures", "export_failures", "failure_patterns", "prompt_tuning"]
# nbval runs the defaults in this order: prompt_tuning first, on the failures seeded below, then the rest.
NBVAL_ORDER = ["prompt_tuning", "batch_run", "compare_versions", "explore_failures", "export_failures",
               "failure_patterns"]
V1 = OCRVersionInfo("1.9.0", "2025-10-01", "previous prompt")
V2_FILE = "version: 2.1.0\nbuild_date: 2025-11-02\ndescription: candidate prompt\n"
SCRIPT = "garbage <script>alert(1)</script>"


def _table(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _result(table: str, key: str, version: OCRVersionInfo, parsed: dict[str, Any]) -> None:
    store_for(table).write(result_item(key, version, f"raw text of {key}", parsed,
                                          {"processing_time": 1.5, "input_tokens": 1000, "output_tokens": 200,
                                           "model_id": NOVA_LITE}))


def _seed_analysis(table: str, truth: dict[str, Any]) -> None:
    """V1 -> current: timesheet-001 fixed, timesheet-002 still failing, c regressed, d unchanged."""
    v2 = load_version()
    log_failed_image(table, "timesheet-001.png", "PARSING_ERROR", "no timesheet in the output", V1,
                     {"error_code": "ParsingError", "raw_ocr_output": SCRIPT, "processing_time": 2.0})
    log_failed_image(table, "timesheet-002.png", "VALIDATION_ERROR", "total 41.5 != 40.0", V1,
                     {"error_code": "ValidationFailure"})
    _result(table, "c.png", V1, {"employee_name": "C"})
    _result(table, "d.png", V1, {"employee_name": "D"})
    _result(table, "timesheet-001.png", v2, truth)
    read = dict(truth, employee_name="Timesheet Two", total_hours=40.0)
    log_failed_image(table, "timesheet-002.png", "VALIDATION_ERROR", "total 41.5 != 40.0", v2,
                     {"error_code": "ValidationFailure", "raw_ocr_output": "WEEKLY TIMESHEET\nTotal hours: 40",
                      "validation_errors": ["total_mismatch: entries sum to 41.5 h, total_hours is 40"],
                      "ParsedTimesheet": read})
    log_failed_image(table, "c.png", "OCR_ERROR", "model refused", v2, {"error_code": "ModelErrorException"})
    _result(table, "d.png", v2, {"employee_name": "D"})


@pytest.fixture(scope="module")
def nbval(dynalite, tmp_path_factory):
    """`python -m pytest --nbval-lax` over the notebooks with their defaults, started in the background so
    that it overlaps the smoke runs (kernels spend much of their time starting).

    The default table "ocrlab" is first given what a machine has after its first batch: a failure of
    the first generated sample under the current version. On an empty store the notebooks that compare
    or re-run stop with one sentence (tested below), which nbval would count as a failure."""
    # OCRLAB_TABLE: the session's other tests write tables of their own, which the notebooks would read
    # as the table last written (the first-hour test covers that default).
    env = {**os.environ, "OCRLAB_REPORTS_DIR": str(tmp_path_factory.mktemp("nbval-reports")), "OCRLAB_TABLE": "ocrlab"}
    log_failed_image("ocrlab", "timesheet-001.png", "PARSING_ERROR", "no timesheet text", load_version(),
                     {"error_code": "NoTimesheet"})
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                             *(str(NOTEBOOKS / f"{name}.ipynb") for name in NBVAL_ORDER)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def runs(nbval, tmp_path_factory) -> dict[str, Any]:
    """Every notebook run once, concurrently (kernels start slowly); name -> ReportResult or exception."""
    root = tmp_path_factory.mktemp("notebooks")
    samples, only_one, out = root / "samples", root / "batch", root / "out"
    generate_samples(samples, count=2)
    only_one.mkdir()
    shutil.copy(samples / "timesheet-001.png", only_one)
    (only_one / "empty.png").write_bytes(b"")
    version_file = root / "candidate.txt"
    version_file.write_text(V2_FILE)

    analysis, tuning = _table("analysis"), _table("tuning")
    _seed_analysis(analysis, json.loads((samples / "timesheet-001.json").read_text()))
    for key in ("timesheet-001.png", "timesheet-002.png"):
        log_failed_image(tuning, key, "PARSING_ERROR", "truncated JSON", V1, {"error_code": "ParsingError"})

    jobs = {  # parameters as the command line gives them: strings, converted by run_report
        "batch_run": {"source": str(only_one), "table": _table("batch"), "concurrency": "1", "max_attempts": "2"},
        "compare_versions": {"table": analysis, "base": V1.full_version, "candidate": load_version().full_version,
                             "ground_truth": str(samples), "reports_dir": str(out)},
        "export_failures": {"table": analysis, "output_dir": str(out / "csv"), "export": "true"},
        "explore_failures": {"table": analysis, "source": str(samples), "fingerprint": _fingerprint(analysis)},
        "failure_patterns": {"table": analysis, "since": "2000-01-01T00:00:00Z"},
        "prompt_tuning": {"table": tuning, "source": str(samples), "base_version": V1.full_version,
                          "candidate_version_file": str(version_file), "engine": "rapidocr",
                          "engine_options": "{}", "image_set": "failures", "reports_dir": str(out)},
    }

    # Parameters that select nothing: each notebook stops with one sentence.
    jobs["compare_versions:one version"] = {"table": tuning, "base": V1.full_version, "candidate": V1.full_version}
    jobs["export_failures:no table"] = {"table": _table("missing")}

    def run(name: str) -> ReportResult | Exception:
        try:
            return run_report(name.split(":")[0], jobs[name], reports_dir=root / "reports", notebooks_dir=NOTEBOOKS)
        except Exception as exc:  # reported by the test of that notebook
            return exc

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip(jobs, pool.map(run, jobs)))
    return {"results": done, "root": root, "out": out}


def _fingerprint(table: str) -> str:
    """The fingerprint of timesheet-002's validation failures (two of them, under two versions)."""
    return next(r["FailureFingerprint"] for r in store_for(table).records_by_type()
                if r["ImageKey"] == "timesheet-002.png")


def _figures(runs: dict[str, Any], name: str) -> dict[str, Any]:
    result = runs["results"][name]
    if isinstance(result, Exception):
        raise result
    assert result.html_path.exists() and recorded_figures(result.ipynb_path) == result.figures
    return result.figures


@pytest.mark.parametrize("name", NAMES)
def test_stored_thin_and_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert sum("parameters" in t for t in tags) == 1 and "record" in tags[-1]
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_batch_run(runs):
    f = _figures(runs, "batch_run")
    assert (f["processed"], f["succeeded"], f["failed"], f["skipped"]) == (2, 1, 1, 0)
    assert f["failure_types"] == {"INPUT_ERROR": 1}


def test_failure_patterns(runs):
    f = _figures(runs, "failure_patterns")
    assert f["total_failures"] == 4 and f["unique_images"] == 3
    assert f["failure_types"] == {"VALIDATION_ERROR": 2, "PARSING_ERROR": 1, "OCR_ERROR": 1}
    assert f["error_codes"]["ValidationFailure"] == 2
    page = runs["results"]["failure_patterns"].html_path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64") >= 6  # type, version, time, error code, fingerprint, times


def test_compare_versions(runs):
    f = _figures(runs, "compare_versions")
    assert f["outcomes"] == {"fixed": 1, "broken": 1, "still_failing": 1, "still_ok": 1, "new": 0, "not_run": 0}
    assert f["counts"] == {"regressed": 1, "improved": 1, "other": 1, "unchanged": 1, "new": 0, "not_run": 0}
    assert f["field_accuracy"]["candidate"] > f["field_accuracy"]["base"] == 0
    diff = Path(f["diff_report"])
    assert diff.parent == runs["out"] and "&lt;script&gt;alert(1)&lt;/script&gt;" in diff.read_text(encoding="utf-8")
    for page in (diff, runs["results"]["compare_versions"].html_path):
        assert SCRIPT not in page.read_text(encoding="utf-8")
    report = runs["results"]["compare_versions"].html_path.read_text(encoding="utf-8")
    # The notebook links to the comparison page rather than copying it: no diff in the report.
    assert "<iframe" not in report and 'class="diff"' not in report and 'class="diff"' in diff.read_text()
    # The link is relative to the report, so the folder of reports can move.
    assert f'href="../{diff.parent.name}/{diff.name}"' in report and "file:" not in report
    assert "1 regressed, 1 fixed or improved, 1 changed otherwise, 1 unchanged" in report


def test_export_failures(runs):
    f = _figures(runs, "export_failures")
    assert f["exported_rows"] == f["total_failures"] == 4 and f["error"] is None
    path = Path(f["csv_path"])
    assert path.parent == runs["out"] / "csv"
    assert len(list(csv.reader(path.open(encoding="utf-8", newline="")))) == 5


def test_explore_failures(runs):
    """The browser filtered by a fingerprint: both failures of timesheet-002, the newest opened with its
    image (from `source`), its broken rule and the ground truth beside it."""
    f = _figures(runs, "explore_failures")
    assert f["rows"] == 2 and f["opened"] == "timesheet-002.png" and f["image_shown"] is True
    assert f["broken_rules"] == ["total_mismatch"]
    page = runs["results"]["explore_failures"].html_path.read_text(encoding="utf-8")
    assert 'src="data:image/jpeg;base64,' in page and "total_mismatch" in page and "Timesheet Two" in page
    assert "ground truth" in page and "Raw engine output" in page


@pytest.mark.parametrize("job, sentence", [
    ("compare_versions:one version", "base and candidate are both 1.9.0-2025-10-01: set `candidate`"),
    ("export_failures:no table", "does not exist"),
])
def test_a_parameter_that_selects_nothing_stops_with_one_sentence(runs, job, sentence):
    error = runs["results"][job]
    assert isinstance(error, NotebookFailed), error
    assert "NothingSelected" in str(error) and sentence in str(error) and "\n" not in str(error)


def test_prompt_tuning(runs):
    f = _figures(runs, "prompt_tuning")
    assert f["candidate"] == "2.1.0-2025-11-02" and f["images_run"] == 2
    assert (f["outcomes"]["fixed"], f["outcomes"]["broken"], f["outcomes"]["still_failing"]) == (2, 0, 0)
    assert f["counts"]["improved"] == 2 and f["counts"]["regressed"] == 0


def test_nbval_lax_runs_the_defaults(nbval):
    """Every default must just work on a fresh machine: the store is empty, no source is given."""
    output, _ = nbval.communicate(timeout=600)
    assert nbval.returncode == 0, output[-5000:]
    assert " passed" in output and "failed" not in output


# What each report must show, visible in the page: headings and figures of the seeded tables.
OFFLINE_EXPECTED = {
    "batch_run": (["Batch run", "Run", "Summary", "Outcomes"], ["processed", "INPUT_ERROR"]),
    "compare_versions": (["Compare two OCR versions", "What changed", "Field accuracy", "The comparison page"],
                         ["1 regressed", "c.png"]),
    "explore_failures": (["Explore failures", "Failures"], ["total_mismatch", "timesheet-002.png"]),
    "export_failures": (["Export failed images", "Export"], ["Exported 4 failed image records", "50.0%"]),
    "failure_patterns": (["Failure patterns", "By failure type", "By fingerprint"], ["4 failures of 3 images", "50.0%"]),
    "prompt_tuning": (["Prompt tuning", "What the candidate fixed and broke"], ["2 fixed", "0 regressed"]),
}


def test_every_report_opens_offline(runs, chromium):
    """Every report (and the comparison pages they write) in a real browser with the network cut off:
    nothing requested, nothing logged as an error, the headings and numbers there to read."""
    pages = {name: runs["results"][name].html_path for name in OFFLINE_EXPECTED}
    pages.update({p.stem: p for p in runs["out"].glob("*.html")})
    assert len(pages) == len(OFFLINE_EXPECTED) + 2  # the comparison and prompt-tuning pages
    for name, path in pages.items():
        visit = open_offline(chromium, path)
        assert visit.requests == [] and visit.errors == [], (name, visit.requests, visit.errors)
        headings, numbers = OFFLINE_EXPECTED.get(name, (["OCR comparison", "Regressed"], []))
        for heading in headings:
            assert any(h.startswith(heading) for h in visit.headings), (name, heading, visit.headings)
        for number in numbers:
            assert number in visit.text, (name, number)
