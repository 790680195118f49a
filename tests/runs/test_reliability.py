"""Nothing lost, exactly once, under every fault: one test for each way the failure log could break
(a refused record, an unwritable spool, a dead worker, two batches at once, a stale pid, a foreign
server, a bad spool line, odd directory entries, bad flags, the original callers' own calls)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.converse_server import ok
from support.helpers import free_port, key_of, png, run_cli

from ocrlab.records import KEY_LIMIT
from ocrlab.runs.batch import run_batch
from ocrlab.runs.sources import SourceItem
from ocrlab.store.failure_log import get_all_failed_images, get_attempt_count, log_failed_image
from ocrlab.store.table import serialize

VERSION = "2.0.0-2025-10-25"


def images(folder: Path, n: int, prefix: str = "img") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{prefix}-{i:03d}.png").write_bytes(png(40 + i % 7, 30))
    return folder


def results(store) -> list[str]:
    return sorted(r["ImageKey"] for r in store.records_by_type("OCR_RESULT"))


# 1 ------------------------------------------------------------------------------------------------

def test_records_too_big_for_dynamodb_are_made_storable_and_a_refused_one_never_blocks_replay(store):
    deep = "scans/" + "/".join(["folder-with-a-long-name"] * 120) + "/week.png"   # ~2.9 KB of key
    record = log_failed_image(store, deep, "PARSING_ERROR", "no timesheet", None, {
        "raw_ocr_output": "x" * 500_000, "ParsedTimesheet": json.dumps({"entries": ["y" * 900_000]}),
        "huge_extra": "z" * 1_000_000})
    assert not record.get("Spooled") and not record.get("Rejected")
    [stored] = get_all_failed_images(store)
    assert len(stored["ImageKey"].encode()) <= KEY_LIMIT and stored["ImageKeyOriginal"] == deep
    assert get_attempt_count(store, stored["ImageKey"]) == 1

    # A spool holding a record DynamoDB refuses (an empty key) between good ones: replay goes past it.
    good = [{"ImageKey": f"ok-{i}.png", "RecordType": "FAILED_IMAGE", "OCRFullVersion": VERSION,
             "FailureType": "OCR_ERROR", "ErrorMessage": "m", "RecordId": f"r{i}"} for i in range(3)]
    refused = {**good[0], "ImageKey": "", "RecordId": "bad"}
    for item in (good[0], refused, good[1], good[2]):
        store.spool.append(item, "test")
    report = store.replay()
    assert (report.written, report.waiting, report.rejected) == (3, 0, 1)
    assert store.spool.pending() == 0 and store.spool.rejected() == 1
    assert "ValidationException" in store.spool.rejected_path.read_text()


# 2 ------------------------------------------------------------------------------------------------

def test_an_unwritable_spool_stops_the_batch_with_every_image_accounted_for(tmp_path, store, fault_proxy,
                                                                             converse_server, aws_credentials):
    home = tmp_path / "home"
    (home / "spool" / f"{store.table}.jsonl").mkdir(parents=True)   # the spool file cannot be opened
    source = images(tmp_path / "imgs", 60)
    converse_server.default = ok(delay=0.15)  # 60 images at 4 a time take over 2 s: the store dies midway

    def store_dies_after_two_results() -> None:  # mid-batch the store refuses every record (claims still pass)
        deadline = time.monotonic() + 60
        while len(results(store)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        fault_proxy.throttle_only = frozenset({"PutItem"})
        fault_proxy.throttle = 10**9
    killer = threading.Thread(target=store_dies_after_two_results)
    killer.start()
    out = run_cli("batch", str(source), "--engine", "bedrock", "--table", store.table, "--concurrency", "4",
                  "--no-progress", "--summary-json", str(tmp_path / "s.json"),
                  OCRLAB_HOME=str(home), OCRLAB_STORE="aws", AWS_ENDPOINT_URL_DYNAMODB=fault_proxy.url,
                  OCRLAB_STORE_MAX_ATTEMPTS="1", AWS_ENDPOINT_URL_BEDROCK_RUNTIME=converse_server.url)
    killer.join()
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert "stopped early" in last and f"{store.table}.jsonl" in last and "IsADirectoryError" in last
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["processed"] + s["skipped"] + s["not_started"] + s["unwritten"] == 60
    assert s["not_started"] > 0 and 0 < s["unwritten"] == len(s["unwritten_records"])
    # Every record produced is stored or carried in the summary: none is lost.
    assert s["processed"] == len(results(store)) and s["spooled"] == 0


# 3 ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KillsItsWorker(SourceItem):
    """An image whose reading kills the worker process, every time (as the OOM killer would)."""

    def fetch(self) -> tuple[bytes, str]:
        os.kill(os.getpid(), signal.SIGKILL)
        return b"", ""


def _workers() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "stat").read_text().rsplit(")", 1)[1].split()[1] == me:
                if b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_worker_killed_mid_batch_costs_only_its_images(tmp_path, store):
    from ocrlab.samples.generate import generate_samples
    generate_samples(tmp_path / "s", count=10, seed=3)  # enough work that a worker is busy when it is killed
    killed: list[int] = []

    def kill_a_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if sum(1 for _ in store.records_by_type("OCR_RESULT")) >= 1 and _workers():
                os.kill(_workers()[0], signal.SIGKILL)
                killed.append(1)
            time.sleep(0.05)
    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    summary = run_batch(str(tmp_path / "s"), store, concurrency=2, progress=False)
    killer.join()
    assert killed and summary.processed == 10 and summary.succeeded == 10, summary.skipped_reasons
    assert results(store) == sorted(key_of(p) for p in (tmp_path / "s").glob("*.png"))


def test_an_image_that_kills_its_worker_twice_is_recorded_as_worker_lost(tmp_path, store, monkeypatch):
    import ocrlab.runs.batch as batch
    real = batch.open_source

    def with_poison(source, s3=None, follow_links=False):
        listing = real(source, s3, follow_links)
        listing.items.append(KillsItsWorker("poison.png", str(tmp_path / "poison.png")))
        return listing
    monkeypatch.setattr(batch, "open_source", with_poison)
    from ocrlab.samples.generate import generate_samples
    generate_samples(tmp_path / "s", count=3, seed=5)
    summary = run_batch(str(tmp_path / "s"), store, concurrency=2, progress=False)
    assert summary.images == 4 and summary.processed == 4 and summary.succeeded == 3
    [lost] = list(store.image_records("poison.png"))  # as the poisoned listing named it
    assert lost["ErrorCode"] == "WorkerLost" and lost["FailureType"] == "OCR_ERROR" and lost["AttemptNumber"] == 1


def test_a_script_without_a_main_guard_is_told_why_its_workers_die(tmp_path, store):
    # Spawned workers import the script again; without the guard each would run the whole batch anew.
    from ocrlab.samples.generate import generate_samples
    generate_samples(tmp_path / "s", count=2, seed=5)
    script = tmp_path / "unguarded.py"
    script.write_text("from ocrlab.runs.batch import run_batch\nfrom ocrlab.store import open_store\n"
                      f"s = run_batch({str(tmp_path / 's')!r}, open_store({store.table!r}), concurrency=2, "
                      "progress=False)\nprint('succeeded', s.succeeded, 'processed', s.processed)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert 'under `if __name__ == "__main__":`' in out.stderr
    assert "succeeded 0 processed 2" in out.stdout           # every image accounted for, none run twice
    assert {r["ErrorCode"] for r in store.records_by_type("FAILED_IMAGE")} == {"WorkerLost"}
    assert not list(store.records_by_type("OCR_RESULT"))


# 4 ------------------------------------------------------------------------------------------------

def test_two_identical_batches_at_once_run_every_image_once(tmp_path, store, converse_server, aws_credentials):
    source = images(tmp_path / "imgs", 40)
    (source / "broken.png").write_bytes(b"not an image")
    converse_server.default = ok(delay=0.05)
    env = {**os.environ, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": converse_server.url}
    cmd = [sys.executable, "-m", "ocrlab", "batch", str(source), "--engine", "bedrock", "--table", store.table,
           "--concurrency", "4", "--no-progress"]
    runs = [subprocess.Popen(cmd + ["--summary-json", str(tmp_path / f"s{i}.json")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for run in runs:
        assert run.wait(timeout=180) == 0, run.stderr.read()
    assert results(store) == sorted(key_of(source / f"img-{i:03d}.png") for i in range(40))  # one result each
    assert len(converse_server.requests) == 40                                  # one model call each
    assert len(list(store.image_records(key_of(source / "broken.png")))) == 1   # one failure, not two
    summaries = [json.loads((tmp_path / f"s{i}.json").read_text()) for i in range(2)]
    assert sum(s["processed"] for s in summaries) == 41
    assert all(s["processed"] + s["skipped"] == 41 for s in summaries)


def test_a_duplicate_s3_event_runs_once(store, converse_server, bucket, monkeypatch):
    from types import SimpleNamespace

    from ocrlab.aws import handler
    client, name = bucket
    client.put_object(Bucket=name, Key="a.png", Body=png())
    monkeypatch.setenv("OCRLAB_TABLE", store.table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", converse_server.url)
    handler.reset()
    event = {"Records": [{"awsRegion": "us-east-1", "eventTime": "2025-10-25T10:00:00.000Z",
                          "s3": {"bucket": {"name": name}, "object": {"key": "a.png"}}}]}
    context = SimpleNamespace(log_stream_name="s", aws_request_id="r")
    first, second = handler.lambda_handler(event, context), handler.lambda_handler(event, context)
    handler.reset()
    assert (first["succeeded"], second["succeeded"], second["skipped"]) == (1, 0, 1)
    assert second["batchItemFailures"] == [] and len(converse_server.requests) == 1


def test_a_failure_counted_by_a_killed_run_but_never_written_keeps_attempts_consecutive(tmp_path, store,
                                                                                        converse_server,
                                                                                        aws_credentials):
    import socket
    source = images(tmp_path / "imgs", 1)
    dead = f"{socket.gethostname()}:{2**22 + 7}:1:dead"   # a process of this host that no longer runs
    key = key_of(source / "img-000.png")
    assert store.writer.claim(key, VERSION, dead, "lost-record", 900).granted
    assert store.writer.release(key, VERSION, dead, "FAILED_IMAGE", count_failure=True, record_id="lost-record",
                                timestamp="2025-10-25T10:00:00.000000Z") == 1   # ...and it died before the put
    converse_server.default = ok()
    engine = {"endpoint_url": converse_server.url, "max_attempts": 1}
    summary = run_batch(str(source), store, engine="bedrock", engine_options=engine, progress=False)
    assert summary.succeeded == 1
    records = list(store.image_records(key))
    assert [(r["RecordType"], r.get("AttemptNumber"), r.get("ErrorCode")) for r in records] == [
        ("FAILED_IMAGE", 1, "RunLost"), ("OCR_RESULT", None, None)]
    assert records[0]["RecordId"] == "lost-record" and get_attempt_count(store, key) == 1


# 5 ------------------------------------------------------------------------------------------------

def test_db_stop_never_signals_a_process_that_is_not_its_database(tmp_path, dynalite):
    home = tmp_path / "home"
    home.mkdir()
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (home / "dynamodb.server.json").write_text(json.dumps(
            {"pid": stranger.pid, "port": free_port(), "data_dir": str(home / "dynamodb"), "started_at": 0}))
        stop = run_cli("db", "stop", OCRLAB_HOME=str(home))
        status = run_cli("db", "status", OCRLAB_HOME=str(home))
        assert stop.returncode == 0 and "not running" in stop.stdout
        assert status.returncode == 3 and stranger.poll() is None   # still alive
    finally:
        stranger.kill()


# 6 ------------------------------------------------------------------------------------------------

def test_a_database_of_another_folder_on_the_port_is_refused(tmp_path, dynalite):
    other = run_cli("stats", OCRLAB_HOME=str(tmp_path / "elsewhere"), OCRLAB_DB_PORT=str(dynalite.port))
    assert other.returncode == 2 and other.stderr.count("\n") <= 2 and "Traceback" not in other.stderr
    assert f"port {dynalite.port} is taken by ocrlab's local database of {dynalite.data_dir}" in other.stderr
    assert "OCRLAB_DB_PORT" in other.stderr and not (tmp_path / "elsewhere" / "dynamodb").exists()


# 7 ------------------------------------------------------------------------------------------------

def test_replay_goes_past_a_line_that_is_not_utf8(store):
    items = [{"ImageKey": f"u-{i}.png", "RecordType": "FAILED_IMAGE", "OCRFullVersion": VERSION,
              "FailureType": "OCR_ERROR", "ErrorMessage": "m", "RecordId": f"u{i}"} for i in range(100)]
    store.spool.path.parent.mkdir(parents=True, exist_ok=True)
    with open(store.spool.path, "wb") as handle:
        for n, item in enumerate(items):
            handle.write(json.dumps({"table": store.table, "reason": "t", "item": serialize(item)}).encode() + b"\n")
            if n == 50:
                handle.write(b'{"item": "\xff\xfe not utf-8"}\n')
    report = store.replay()
    assert (report.written, report.rejected, report.waiting) == (100, 1, 0)
    assert len(get_all_failed_images(store)) == 100
    assert "\\xff" in store.spool.rejected_path.read_text()


# 8 ------------------------------------------------------------------------------------------------

def test_every_directory_entry_named_like_an_image_is_accounted_for(tmp_path, store, converse_server,
                                                                    aws_credentials):
    source = images(tmp_path / "src", 2)
    (source / "dangling.png").symlink_to(tmp_path / "gone.png")
    os.mkfifo(source / "pipe.png")
    outside = images(tmp_path / "outside", 1, "secret")
    (source / "escape.png").symlink_to(outside / "secret-000.png")
    (source / "inside.png").symlink_to(source / "img-000.png")
    engine = {"endpoint_url": converse_server.url, "max_attempts": 1}
    s = run_batch(str(source), store, engine="bedrock", engine_options=engine, progress=False)
    assert s.images == 5 and s.processed == 5 and s.ignored == ["escape.png"]
    assert s.ignored_reasons == {"a link out of the source folder (--follow-links)": 1}
    codes = {r["ImageKey"]: r.get("ErrorCode") for r in store.latest_outcomes(VERSION)}
    assert codes[key_of(source / "dangling.png")] == "BrokenLink" and codes[key_of(source / "pipe.png")] == "NotAFile"
    assert "secret-000.png" not in json.dumps(list(store.records_by_type("FAILED_IMAGE")), default=str)
    followed = run_batch(str(source), store, engine="bedrock", engine_options=engine, progress=False,
                         follow_links=True)
    assert followed.ignored == [] and followed.succeeded == 1   # escape.png, now read


def test_file_names_that_are_not_utf8_are_run_and_named_readably(tmp_path, store, converse_server,
                                                                  aws_credentials):
    # Linux allows any bytes in a name; Python hands them over as surrogates, which no record can hold.
    source = images(tmp_path / "src", 1)
    os.rename(source / "img-000.png", os.fsencode(source) + b"/scan-\xff\xfe.png")
    (source / "new\nline.png").write_bytes((images(tmp_path / "more", 1) / "img-000.png").read_bytes())
    (source / b"notes-\xff.txt".decode("utf-8", "surrogateescape")).write_text("x")
    engine = {"endpoint_url": converse_server.url, "max_attempts": 1}
    s = run_batch(str(source), store, engine="bedrock", engine_options=engine, progress=False)
    assert s.images == 2 and s.succeeded == 2 and s.ignored == ["notes-\\xff.txt"]
    assert sorted(r["ImageKey"] for r in store.latest_outcomes(VERSION)) == [
        key_of(source / "new\nline.png"), f"{key_of(source)}/scan-\\xff\\xfe.png"]


# 9 ------------------------------------------------------------------------------------------------

BAD = [
    ["batch", ".", "--concurrency", "0"], ["batch", ".", "--concurrency", "-3"], ["batch", ".", "--max-attempts", "-1"],
    ["batch", ".", "--engine", "bedrock", "--prompt-file", "/nonexistent"],
    ["batch", ".", "--engine", "bedrock", "-E", "read_timeout=abc"],
    ["batch", ".", "--engine", "bedrock", "-E", 'endpoint_url="not a url"'],
    ["batch", ".", "--engine", "bedrock", "--max-tokens", "-5"],
    ["batch", ".", "--summary-json", "/dev/null/x.json"], ["export", "-o", "/dev/null/x.csv"],
    ["export", "--since", "notadate"], ["db", "start", "--port", "70000"], ["samples", "out", "--count", "-1"],
    ["eval", ".", "--ground-truth", "/nonexistent"], ["stats", "--table", "x"], ["stats", "--table", "a b/c"],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_a_bad_flag_is_one_line_and_exit_2_before_any_work(args, tmp_path, dynalite):
    out = run_cli(*args)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_read_commands_never_create_a_mistyped_table(store, tmp_path):
    log_failed_image(store, "a.png", "OCR_ERROR", "m")
    for args in (["stats"], ["export"], ["replay"], ["results", "-o", str(tmp_path / "r")],
                 ["compare", "--base", VERSION, "--candidate", VERSION]):
        out = run_cli(*args, "--table", store.table + "-typo")
        assert out.returncode == 2 and "does not exist" in out.stderr, (args, out.stderr)
    tables = store.store.client.list_tables()["TableNames"]
    assert store.table + "-typo" not in tables
    unknown = run_cli("compare", "--base", VERSION, "--candidate", "9.9.9-2026-01-01", "--table", store.table)
    assert unknown.returncode == 2 and "no records under '9.9.9-2026-01-01'" in unknown.stderr
    assert run_cli("results", "-o", str(tmp_path), "--table", store.table).returncode == 2  # a folder


# 10 -----------------------------------------------------------------------------------------------

def test_the_original_callers_forms_work(store, monkeypatch):
    import ocrlab.version as version_module
    assert version_module.OCR_VERSION == "2.0.0"
    for _ in range(3):  # the original Lambda numbers attempts itself and passes the version string
        attempt = get_attempt_count(store.table, "seed.png") + 1
        log_failed_image(store.table, "seed.png", "OCR_ERROR", "boom", ocr_version=version_module.OCR_VERSION,
                         error_details={"attempt_number": attempt, "error_code": "RuntimeError"})
    records = list(store.image_records("seed.png"))
    assert [r["AttemptNumber"] for r in records] == [1, 2, 3] and get_attempt_count(store, "seed.png") == 3
    assert {r["OCRFullVersion"] for r in records} == {VERSION}          # completed from OCR_VERSION.txt
    other = log_failed_image(store, "other.png", "OCR_ERROR", "m", ocr_version="3.1.4")
    assert other["OCRFullVersion"] == "3.1.4"

    monkeypatch.setenv("OCRLAB_VERSION_FILE", "/nonexistent/OCR_VERSION.txt")   # unreadable: logged anyway
    unknown = log_failed_image(store, "nover.png", "OCR_ERROR", "m")
    assert unknown["OCRFullVersion"] == "unknown" and not unknown.get("Spooled")
