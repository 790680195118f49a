"""The console script end to end: exit codes, one-line errors, stats keys, export file."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from support.helpers import png

from ocrlab.store.failure_log import log_failed_image


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ocrlab", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_stats_json_and_export(store, tmp_path):
    log_failed_image(store, "a.png", "OCR_ERROR", "=boom", None, {"error_code": "ModelErrorException"})
    log_failed_image(store, "b.png", "PARSING_ERROR", "no JSON", None)
    out = run("stats", "--json", "--table", store.table)
    assert out.returncode == 0, out.stderr
    assert "store: local dynalite" in out.stderr  # the store in use is always said
    stats = json.loads(out.stdout)
    assert set(stats) == {"total_failures", "unique_images", "recent_failures_24h", "failure_types",
                          "by_ocr_version", "by_error_code", "top_fingerprints"}
    assert stats["total_failures"] == 2 and stats["failure_types"] == {"OCR_ERROR": 1, "PARSING_ERROR": 1}
    assert {"count", "first_seen", "last_seen", "example_message"} <= set(stats["top_fingerprints"][0])

    text = run("stats", "--table", store.table)
    assert text.returncode == 0 and "total failures: 2" in text.stdout

    path = tmp_path / "failures.csv"
    exported = run("export", "-o", str(path), "--failure-type", "OCR_ERROR", "--table", store.table)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert [r["ImageKey"] for r in rows] == ["a.png"] and rows[0]["ErrorMessage"] == "'=boom"
    # ocrlab's types in any case; an unknown one matches nothing and says why
    lower = run("export", "--failure-type", "parsing_error", "--table", store.table)
    assert [r["ImageKey"] for r in csv.DictReader(lower.stdout.splitlines())] == ["b.png"]
    unknown = run("export", "--failure-type", "PARSE_ERROR", "--table", store.table)
    assert unknown.returncode == 0 and list(csv.DictReader(unknown.stdout.splitlines())) == []
    assert "no failures of type 'PARSE_ERROR', which is not one of ocrlab's: INPUT_ERROR" in unknown.stderr


def test_bad_arguments_exit_non_zero():
    out = run("export", "--no-such-flag")
    assert out.returncode != 0 and "Traceback" not in out.stderr


def test_unreachable_store_is_one_line(dynalite):
    out = run("stats", OCRLAB_STORE="aws", AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:9",
              AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_REGION="us-east-1")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("ocrlab stats:")]
    assert len(errors) == 1 and "cannot reach the store" in errors[0]


def test_python_dash_m_and_help():
    out = run("--help")
    assert out.returncode == 0 and "replay" in out.stdout


def test_compare_and_results_commands(store, tmp_path):
    from ocrlab.records import result_item, utc_timestamp
    from ocrlab.version import OCRVersionInfo
    v1, v2 = OCRVersionInfo("2.0.0", "2025-10-25", "base"), OCRVersionInfo("2.1.0", "2025-11-02", "candidate")
    sheet = {"employee_name": "A", "employee_id": "E-1", "week_ending": "2025-10-24", "entries": [], "total_hours": 0}
    log_failed_image(store, "<b>fixed</b>.png", "PARSING_ERROR", "no timesheet", v1, {"raw_ocr_output": "<script>x</script>"})
    for version in (v2,):
        item = result_item("<b>fixed</b>.png", version, "Employee: A", sheet)
        item["FailureTimestamp"] = utc_timestamp()
        store.write(item)
    html, js = tmp_path / "c.html", tmp_path / "c.json"
    out = run("compare", "--table", store.table, "--base", v1.full_version, "--candidate", v2.full_version,
              "--json", str(js), "-o", str(html))
    assert out.returncode == 0, out.stderr
    data = json.loads(js.read_text())
    assert data["counts"]["improved"] == 1 and data["outcomes"]["fixed"] == 1
    page = html.read_text()
    assert "&lt;b&gt;fixed&lt;/b&gt;.png" in page.replace("<wbr>", "") and "<script" not in page  # may wrap at / and .
    csv_path = tmp_path / "r.csv"
    res = run("results", "--table", store.table, "--ocr-version", v2.full_version, "-o", str(csv_path))
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8", newline="")))
    assert [r["ImageKey"] for r in rows] == ["<b>fixed</b>.png"]
    # a mistyped version: an empty answer that says which versions there are
    for command in ("results", "export"):
        typo = run(command, "--table", store.table, "--ocr-version", "2.1.9")
        assert typo.returncode == 0 and len(typo.stdout.splitlines()) == 1  # the header only
        assert f"no records under '2.1.9' in table '{store.table}'; versions there: {v1.full_version}, " \
               f"{v2.full_version}" in typo.stderr
    # the short version (OCRVersion) selects its full versions, and says which
    short = run("results", "--table", store.table, "--ocr-version", "2.1.0")
    assert [r["ImageKey"] for r in csv.DictReader(short.stdout.splitlines())] == ["<b>fixed</b>.png"]
    assert f"2.1.0: the records of {v2.full_version}" in short.stderr
    same = run("compare", "--table", store.table, "--base", v2.full_version, "--candidate", v2.full_version)
    assert same.returncode == 0 and "--base and --candidate are the same version" in same.stderr


def test_samples_then_eval_with_the_local_engine(tmp_path, dynalite):
    out = run("samples", str(tmp_path / "s"), "--count", "2", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "wrote 2 images" in out.stdout and (tmp_path / "s" / "manifest.json").is_file()
    report = tmp_path / "eval.json"
    ev = run("eval", str(tmp_path / "s"), "--ground-truth", str(tmp_path / "s"), "--json", str(report))
    assert ev.returncode == 0, ev.stderr
    data = json.loads(report.read_text())
    assert data["evaluated"] == 2 and data["failed"] == 0
    assert data["cer"]["n"] > 200 and data["cer"]["rate"] < 0.05  # clean renders read almost perfectly
    assert "CER" in ev.stdout and "weighted by reference length" in ev.stdout


def test_an_output_that_cannot_be_written_is_refused_before_any_work(store):
    # Asked by trying, not by os.access: root passes that check for /proc, where nothing can be created.
    out = run("compare", "--table", store.table, "--base", "a", "--candidate", "b", "-o", "/proc/ocrlab-x.html")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "ocrlab compare: cannot write /proc/ocrlab-x.html" in out.stderr


def test_a_pipe_given_as_output_is_written_into_not_replaced(tmp_path):
    import stat
    import threading

    from ocrlab.files import write_json
    pipe = tmp_path / "out"
    os.mkfifo(pipe)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_text()), daemon=True)
    reader.start()
    write_json({"a": 1}, pipe)  # renamed over, a pipe (or /dev/null) would become a plain file
    reader.join(timeout=10)
    assert stat.S_ISFIFO(pipe.stat().st_mode) and read and json.loads(read[0]) == {"a": 1}


def test_a_batch_reads_its_version_and_builds_its_engine_once(store, tmp_path, monkeypatch):
    """The command line reads the stamp and builds the engine, and hands both down."""
    import ocrlab.runs.batch
    import ocrlab.version
    from ocrlab.cli import main
    calls = {"version": 0, "engine": 0}
    load, build = ocrlab.version.load_version, ocrlab.runs.batch.check_engine

    def counted_load(*args, **kw):
        calls["version"] += 1
        return load(*args, **kw)

    def counted_build(*args, **kw):
        calls["engine"] += 1
        return build(*args, **kw)
    for module in (ocrlab.version, ocrlab.runs.batch):
        monkeypatch.setattr(module, "load_version", counted_load)
    monkeypatch.setattr(ocrlab.runs.batch, "check_engine", counted_build)
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.png").write_bytes(png())
    assert main(["batch", str(folder), "--table", store.table, "--engine", "tesseract", "--no-progress"]) == 0
    assert calls == {"version": 1, "engine": 1}
