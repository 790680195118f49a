"""`ocrlab batch`: accounting, re-runs, --max-attempts, --retry-failed, S3 sources, local engine, Bedrock quotas."""
from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.converse_server import Quota, ok
from support.helpers import V2_FILE as VERSION_2
from support.helpers import free_port, key_of, png

from ocrlab.runs.batch import run_batch


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for i in range(4):
        (root / f"week-{i}.png").write_bytes(png())
    (root / "sub" / "week-9.jpg").write_bytes(png())  # a PNG named .jpg: bytes decide
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image name")
    return root


@pytest.fixture
def bedrock(converse_server, aws_credentials):
    return {"endpoint_url": converse_server.url, "max_attempts": 1, "model_retries": 0}


def batch(folder, store, bedrock, **kw):
    return run_batch(str(folder), store, engine="bedrock", engine_options=bedrock, progress=False, **kw)


def test_every_file_is_accounted_for(folder, store, bedrock, tmp_path):
    summary_path = tmp_path / "summary.json"
    s = batch(folder, store, bedrock, concurrency=3, summary_json=summary_path)
    assert (s.images, s.processed, s.succeeded, s.failed, s.skipped) == (6, 6, 5, 1, 0)
    assert s.failure_types == {"INPUT_ERROR": 1} and s.ignored == ["notes.txt"]
    data = json.loads(summary_path.read_text())
    assert {"processed", "succeeded", "failed", "skipped", "failure_types", "ocr_full_version"} <= set(data)
    assert data["ocr_full_version"] == "2.0.0-2025-10-25"
    keys = {r["ImageKey"] for r in store.latest_outcomes("2.0.0-2025-10-25")}
    names = {"week-0.png", "week-1.png", "week-2.png", "week-3.png", "sub/week-9.jpg", "empty.png"}
    assert keys == {key_of(folder / name) for name in names}


def test_rerun_skips_successes_and_retries_failures(folder, store, bedrock, converse_server):
    batch(folder, store, bedrock)
    served = len(converse_server.requests)
    again = batch(folder, store, bedrock)
    assert (again.processed, again.skipped, again.failed) == (1, 5, 1)
    assert again.skipped_reasons == {"already succeeded": 5}
    assert len(converse_server.requests) == served  # the empty file never reaches the model
    assert [r["AttemptNumber"] for r in store.image_records(key_of(folder / "empty.png"))] == [1, 2]
    assert sum(1 for r in store.records_by_type("OCR_RESULT")) == 5  # no duplicate results


def test_max_attempts_per_version(folder, store, bedrock, tmp_path):
    runs = [batch(folder, store, bedrock, max_attempts=2) for _ in range(3)]
    assert [r.processed for r in runs] == [6, 1, 0]
    assert runs[2].skipped_reasons == {"already succeeded": 5, "failed 2 times (max attempts 2)": 1}
    assert [r["AttemptNumber"] for r in store.image_records(key_of(folder / "empty.png"))] == [1, 2]
    # A new version may try it again.
    v2 = tmp_path / "v2.txt"
    v2.write_text(VERSION_2)
    fresh = batch(folder, store, bedrock, max_attempts=2, version_file=v2)
    assert fresh.processed == 6 and fresh.ocr_full_version == "2.1.0-2025-11-02"
    assert [r["AttemptNumber"] for r in store.image_records(key_of(folder / "empty.png"))] == [1, 2, 3]


def test_retry_failed_and_force(folder, store, bedrock, converse_server):
    converse_server.push(ok("no json here"))  # the first image answered fails parsing
    first = batch(folder, store, bedrock)
    assert first.failure_types == {"INPUT_ERROR": 1, "PARSING_ERROR": 1}
    retry = batch(folder, store, bedrock, retry_failed=True)
    assert (retry.processed, retry.succeeded, retry.failed) == (2, 1, 1)
    assert retry.skipped_reasons == {"latest outcome is not a failure": 4}
    forced = batch(folder, store, bedrock, force=True)
    assert forced.processed == 6 and forced.skipped == 0


def test_s3_source(bucket, store, bedrock):
    client, name = bucket
    client.put_object(Bucket=name, Key="in/2025/a.png", Body=png())
    client.put_object(Bucket=name, Key="in/2025/b.png", Body=b"garbage")
    client.put_object(Bucket=name, Key="in/readme.md", Body=b"x")
    client.put_object(Bucket=name, Key="other/c.png", Body=png())
    s = run_batch(f"s3://{name}/in/", store, engine="bedrock", engine_options=bedrock, progress=False)
    assert (s.images, s.succeeded, s.failed, s.ignored) == (2, 1, 1, ["in/readme.md"])
    [failure] = list(store.image_records("in/2025/b.png"))
    assert failure["FailureType"] == "INPUT_ERROR" and failure["S3Bucket"] == name


def test_missing_source_is_a_one_line_error(dynalite):
    out = subprocess.run([sys.executable, "-m", "ocrlab", "batch", "/no/such/folder"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "no such file or folder" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "ocrlab", "batch", ".", "--engine", "nope"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "unknown engine 'nope'" in out.stderr


def test_bedrock_without_credentials_stops_before_any_image(folder, store, tmp_path, converse_server):
    # Without this, every image of the batch would be logged as the same NoCredentialsError failure.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_ENDPOINT_URL_BEDROCK_RUNTIME=converse_server.url)
    out = subprocess.run([sys.executable, "-m", "ocrlab", "batch", str(folder), "--engine", "bedrock",
                          "--table", store.table, "--no-progress"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no AWS credentials found" in out.stderr.strip().splitlines()[-1]
    assert list(store.records_by_type("FAILED_IMAGE")) == [] and converse_server.requests == []


def test_rapidocr_batch_gives_each_bad_sample_its_failure_type(tmp_path, store):
    """The local engine in worker processes, on `ocrlab samples --bad`: outcome per file as the manifest says."""
    from ocrlab.samples.generate import generate_samples
    manifest = generate_samples(tmp_path / "s", count=2, seed=7, bad=True)
    out = subprocess.run([sys.executable, "-m", "ocrlab", "batch", str(tmp_path / "s"), "--table", store.table,
                          "--concurrency", "2", "--no-progress", "--summary-json", str(tmp_path / "sum.json")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    latest = {r["ImageKey"]: r for r in store.latest_outcomes("2.0.0-2025-10-25")}
    for entry in manifest:
        record = latest[key_of(tmp_path / "s" / entry["file"])]
        got = "OK" if record["RecordType"] == "OCR_RESULT" else record["FailureType"]
        assert got == entry["expected"], (entry, record.get("ErrorMessage"))
    summary = json.loads((tmp_path / "sum.json").read_text())
    assert summary["processed"] == len(manifest)


def test_batch_on_a_dask_local_cluster(folder, store, bedrock, converse_server):
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        s = batch(folder, store, bedrock, scheduler=cluster.scheduler_address)
        workers = set(client.run(lambda: __import__("os").getpid()).values())
    assert (s.processed, s.succeeded, s.failed) == (6, 5, 1)
    assert len(workers) == 2
    assert len(converse_server.requests) == 5
    assert sum(1 for _ in store.records_by_type("OCR_RESULT")) == 5


def test_batch_killed_with_sigkill_then_rerun_accounts_for_every_image_once(tmp_path, store, converse_server,
                                                                            aws_credentials):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(12):
        (root / f"img-{i:02d}.png").write_bytes(png())
    converse_server.default = ok(delay=0.8)  # wide windows for the kill to land mid-batch on a loaded machine
    cmd = [sys.executable, "-m", "ocrlab", "batch", str(root), "--engine", "bedrock", "--table", store.table,
           "--concurrency", "3", "--no-progress"]
    env = {**os.environ, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": converse_server.url}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum(1 for _ in store.records_by_type("OCR_RESULT")) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    done_before = sum(1 for _ in store.records_by_type("OCR_RESULT"))
    assert 4 <= done_before < 12, "the kill must land mid-batch"

    rerun = subprocess.run(cmd + ["--summary-json", str(tmp_path / "s.json")], env=env, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["images"] == 12 and summary["processed"] + summary["skipped"] == 12
    results = [r["ImageKey"] for r in store.records_by_type("OCR_RESULT")]
    assert sorted(results) == [key_of(root / f"img-{i:02d}.png") for i in range(12)]  # every image once, none twice


def test_database_dying_mid_batch_loses_no_record(tmp_path, table_name, converse_server, aws_credentials,
                                                  store_through, dynalite):
    """Records the dead store cannot take are spooled; `ocrlab replay` writes each exactly once."""
    from ocrlab.store import localdb
    port, data_dir = free_port(), tmp_path / "db"
    localdb.start(port, data_dir)
    store = store_through(f"http://127.0.0.1:{port}", table_name, create=True)
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(8):
        (root / f"img-{i}.png").write_bytes(png())
    (root / "broken.png").write_bytes(b"not an image")
    converse_server.default = ok(delay=0.8)  # wide windows for the kill to land mid-batch on a loaded machine

    import threading

    def kill_store_after_two_results() -> None:
        while sum(1 for _ in store.records_by_type("OCR_RESULT")) < 2:
            time.sleep(0.05)
        localdb.stop(data_dir)
    killer = threading.Thread(target=kill_store_after_two_results)
    killer.start()
    engine = {"endpoint_url": converse_server.url, "max_attempts": 1}
    # Four at a time, so that images already claimed are in flight when the database dies.
    s = run_batch(str(root), store, engine="bedrock", engine_options=engine, progress=False, concurrency=4)
    killer.join()
    assert s.processed + s.skipped == 9 and s.spooled >= 1
    assert store.spool.pending() == s.spooled
    # Images that could not be claimed while the store was down did not run (they could have run twice).
    unclaimed = s.skipped_reasons.get("not claimed: the store was unavailable", 0)
    assert s.processed + unclaimed == 9

    localdb.start(port, data_dir)
    try:
        store = store_through(f"http://127.0.0.1:{port}", table_name)
        report = store.replay()
        assert report.written == s.spooled and report.waiting == 0
        again = run_batch(str(root), store, engine="bedrock", engine_options=engine, progress=False)
        assert again.processed == unclaimed + s.failed  # the unclaimed ones, and the broken file retried
        latest = {r["ImageKey"]: r["RecordType"] for r in store.latest_outcomes("2.0.0-2025-10-25")}
        assert len(latest) == 9 and latest[key_of(root / "broken.png")] == "FAILED_IMAGE"
        results = sorted(r["ImageKey"] for r in store.records_by_type("OCR_RESULT"))
        assert results == [key_of(root / f"img-{i}.png") for i in range(8)]
    finally:
        localdb.stop(data_dir)


# --- Bedrock's quota: the batch finds it and holds it (ocrlab.ocr.engines.pacing) ------------------------

def _pngs(root: Path, count: int) -> Path:
    root.mkdir()
    for i in range(count):
        (root / f"img-{i:02d}.png").write_bytes(png())
    return root


def test_a_batch_far_above_the_quota_loses_no_image(tmp_path, store, bedrock, converse_server, capsys):
    """Concurrency 16 against a quota of 10 requests a second, botocore retrying nothing: every image
    succeeds, each admitted once; the throttled calls waited and went again, counted in the summary
    and on the progress bar."""
    root = _pngs(tmp_path / "many", 36)
    converse_server.default = ok(delay=0.05)
    looks = itertools.count()  # the quota's clock: 1/20 s a look, so the calls come twice as fast on any machine
    converse_server.quota = Quota(requests_per_second=10, clock=lambda: next(looks) / 20)
    s = run_batch(str(root), store, engine="bedrock", engine_options=bedrock, concurrency=16,
                  summary_json=tmp_path / "s.json", progress=True)
    assert (s.succeeded, s.failed, s.failure_types) == (36, 0, {})
    assert len(converse_server.requests) - converse_server.throttled == 36
    assert s.throttled == converse_server.throttled >= 1 and s.rate is not None
    data = json.loads((tmp_path / "s.json").read_text())
    assert (data["throttled"], data["rate"]) == (s.throttled, s.rate)
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert re.search(rf"36/36 .*, rate [0-9.]+/s, throttled {s.throttled}\]\s*$", bar[-1]), bar[-1]


def test_a_quota_exhausted_past_the_bound_fails_images_with_the_wait(tmp_path, store, converse_server,
                                                                    aws_credentials):
    """The first images wait the bound, then fail; those after fail at their first call, the quota having
    refused everything for longer than the bound: the batch ends after one bound, not one an image."""
    root = _pngs(tmp_path / "few", 4)
    converse_server.quota = Quota(requests_per_second=0)
    s = run_batch(str(root), store, engine="bedrock", concurrency=2, progress=False,
                  engine_options={"endpoint_url": converse_server.url, "max_throttle_wait": 0.5})
    assert (s.failed, s.failure_types) == (4, {"THROTTLING_ERROR": 4})
    assert s.throttled == converse_server.throttled == len(converse_server.requests) > 4  # the first went again
    messages = [r["ErrorMessage"] for r in store.records_by_type("FAILED_IMAGE")]
    assert all("longer than max_throttle_wait (0.5 s;" in m for m in messages)
    assert sum("after waiting" in m for m in messages) >= 1
    assert sum("the quota has refused every call for" in m and "1 call refused" in m for m in messages) >= 2


def test_rate_and_max_throttle_wait_on_the_command_line(tmp_path, store, converse_server, aws_credentials, capsys):
    root = _pngs(tmp_path / "few", 3)
    cmd = [sys.executable, "-m", "ocrlab", "batch", str(root), "--engine", "bedrock", "--table", store.table,
           "--concurrency", "3", "--no-progress", "--summary-json", str(tmp_path / "s.json")]
    env = {**os.environ, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": converse_server.url}
    capped = subprocess.run(cmd + ["--rate", "4"], env=env, capture_output=True, text=True, timeout=120)
    assert capped.returncode == 0, capped.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["succeeded"], summary["throttled"], summary["rate"]) == (3, 0, 4.0)  # paced at the cap

    converse_server.quota = Quota(requests_per_second=0)
    exhausted = subprocess.run(cmd + ["--force", "--max-throttle-wait", "0"], env=env, capture_output=True,
                               text=True, timeout=120)
    assert exhausted.returncode == 0, exhausted.stderr
    assert "3 failed: THROTTLING_ERROR 3" in exhausted.stdout and "3 model calls throttled" in exhausted.stdout
    assert len(converse_server.requests) == 3 + 3  # one call an image: no wait allowed

    from ocrlab.cli import main
    with pytest.raises(SystemExit) as bad_rate:
        main(["batch", str(root), "--engine", "bedrock", "--rate", "0"])
    assert bad_rate.value.code == 2 and "0 is not a number above 0" in capsys.readouterr().err
    assert main(["batch", str(root), "--rate", "3"]) == 2  # the local engine has no quota
    assert "--rate and --max-throttle-wait are for --engine bedrock" in capsys.readouterr().err


def test_the_environments_engine_settings_reach_a_notebooks_batch_and_its_records(folder, store, bedrock,
                                                                                  converse_server, monkeypatch):
    """A notebook passes an engine name: run_batch, its edge, adds OCRLAB_BEDROCK_* under its options."""
    monkeypatch.setenv("OCRLAB_BEDROCK_MODEL_ID", "us.amazon.nova-lite-v1:0")
    batch(folder, store, bedrock)
    assert {r.model_id for r in converse_server.requests} == {"us.amazon.nova-lite-v1:0"}
    assert {r.get("ModelId") for r in store.latest_outcomes("2.0.0-2025-10-25")
            if r["RecordType"] == "OCR_RESULT"} == {"us.amazon.nova-lite-v1:0"}
