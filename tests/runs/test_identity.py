"""An image is what it is, not only where it was found (docs/design.md, "Identity and order"): weekly
folders that reuse file names, names that only differ in bytes, moved folders, new bytes under a key
(files and S3 objects), a writer whose clock is wrong, a retry right after a batch, `since` with offsets."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
from support.aws_shapes import s3_record, sqs_event, sqs_message
from support.converse_server import ok
from support.helpers import V1, V2, V2_FILE, key_of, on_another_machine, png, run_cli

from ocrlab.aws import handler
from ocrlab.runs.batch import run_batch
from ocrlab.store.failure_log import get_all_failed_images, log_failed_image

VERSION = V1.full_version


@pytest.fixture
def bedrock(converse_server, aws_credentials):
    return {"endpoint_url": converse_server.url, "max_attempts": 1, "model_retries": 0}


def batch(folder, store, bedrock, **kw):
    return run_batch(str(folder), store, engine="bedrock", engine_options=bedrock, progress=False, **kw)


def scans(folder, n=3):
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"scan_{i + 1:04d}.png").write_bytes(png())
    return folder


def results(store) -> list[str]:
    return sorted(r["ImageKey"] for r in store.records_by_type("OCR_RESULT"))


def test_weekly_folders_with_the_same_file_names_are_different_images(tmp_path, store, bedrock, converse_server):
    week43, week44 = scans(tmp_path / "week43"), scans(tmp_path / "week44")
    first, second = batch(week43, store, bedrock), batch(week44, store, bedrock)
    assert (first.succeeded, second.succeeded, second.skipped) == (3, 3, 0)
    assert len(converse_server.requests) == 6
    assert results(store) == sorted(key_of(week / f"scan_{i:04d}.png") for week in (week43, week44) for i in (1, 2, 3))
    assert key_of(week44 / "scan_0001.png").endswith("week44/scan_0001.png")


def test_a_name_with_byte_0xff_and_one_spelling_it_out_are_two_images(tmp_path, store, bedrock):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / os.fsdecode(b"scan-\xff.png")).write_bytes(png())
    (folder / "scan-\\xff.png").write_bytes(png())
    summary = batch(folder, store, bedrock)
    assert summary.succeeded == 2
    assert sorted(k.rsplit("/", 1)[1] for k in results(store)) == sorted(["scan-\\xff.png", "scan-\\\\xff.png"])


def test_a_moved_folder_is_known_by_its_content(tmp_path, store, bedrock, converse_server):
    before = scans(tmp_path / "inbox")
    batch(before, store, bedrock)
    after = tmp_path / "archive" / "2025"
    after.parent.mkdir()
    shutil.move(before, after)
    again = batch(after, store, bedrock)
    assert (again.processed, again.skipped) == (0, 3) and len(converse_server.requests) == 3
    assert again.skipped_reasons == {"already succeeded (the same content under another name)": 3}


def test_new_bytes_under_a_file_name_are_a_new_revision(tmp_path, store, bedrock, converse_server):
    folder = scans(tmp_path / "week")
    batch(folder, store, bedrock)
    changed = folder / "scan_0002.png"
    [old] = list(store.image_records(key_of(changed)))
    changed.write_bytes(png())                    # rescanned: the same name, other bytes
    again = batch(folder, store, bedrock)
    assert (again.processed, again.skipped_reasons) == (1, {"already succeeded": 2})
    latest, previous = list(store.image_records(key_of(changed)))[::-1]
    assert previous["RecordId"] == old["RecordId"] and latest["Sequence"] > previous["Sequence"]
    assert latest["PreviousContentDigest"] == old["ContentDigest"] != latest["ContentDigest"]
    assert latest["ContentDigest"].startswith("sha256:")
    assert batch(folder, store, bedrock).skipped == 3 and len(converse_server.requests) == 4


def test_a_comparison_says_which_images_were_read_from_other_content(tmp_path, store, bedrock):
    from ocrlab.analysis.compare import compare_versions
    folder = scans(tmp_path / "week")
    batch(folder, store, bedrock)
    (folder / "scan_0002.png").write_bytes(png())  # rescanned before the candidate ran
    (tmp_path / "v2.txt").write_text(V2_FILE)
    batch(folder, store, bedrock, version_file=tmp_path / "v2.txt")
    [warning] = compare_versions(store, VERSION, V2.full_version).warnings
    assert warning.startswith(f"1 image(s) were read from other content under {V2.full_version}")
    assert repr(key_of(folder / "scan_0002.png")) in warning


def test_new_bytes_under_an_s3_key_with_a_later_event_run_again(lambda_env, store, converse_server):
    client, name = lambda_env
    context = SimpleNamespace(log_stream_name="s", aws_request_id="r")

    def upload_and_notify(when: str) -> dict:
        etag = client.put_object(Bucket=name, Key="in/scan.png", Body=png())["ETag"]
        return sqs_message({"Records": [s3_record(name, "in/scan.png", etag=etag, event_time=when)]})

    first_event = upload_and_notify("2025-10-25T10:00:00.000Z")
    first = handler.lambda_handler(sqs_event(first_event), context)
    second_event = upload_and_notify("2025-10-25T11:00:00.000Z")     # overwritten: a later event, a new ETag
    second = handler.lambda_handler(sqs_event(second_event), context)
    assert (first["succeeded"], second["succeeded"], second["skipped"]) == (1, 1, 0)
    old, new = list(store.image_records("in/scan.png"))
    assert new["PreviousContentDigest"] == old["ContentDigest"] != new["ContentDigest"]
    assert new["ContentDigest"].startswith("etag:")
    # The first event delivered late (the object has changed since) and the second one again: no run.
    late = handler.lambda_handler(sqs_event(sqs_message(first_event["body"]), sqs_message(second_event["body"])),
                                  context)
    assert (late["succeeded"], late["skipped"], late["batchItemFailures"]) == (0, 2, [])
    assert len(converse_server.requests) == 2


def test_a_success_from_a_host_whose_clock_is_an_hour_behind_is_the_latest_outcome(tmp_path, store,
                                                                                   converse_server, aws_credentials):
    another = on_another_machine(tmp_path)
    if another is None:
        pytest.skip("a second machine is simulated with unshare (root) and faketime (installed by .ci/run)")
    folder = scans(tmp_path / "week", 2)
    converse_server.push(ok("no timesheet here"))         # the first image answered fails
    env = {**os.environ, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": converse_server.url}
    cmd = [sys.executable, "-m", "ocrlab", "batch", str(folder), "--engine", "bedrock", "--table", store.table,
           "--no-progress"]
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=120).returncode == 0
    [failed] = list(store.records_by_type("FAILED_IMAGE"))
    behind = subprocess.run([*another, *cmd, "--retry-failed"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert behind.returncode == 0 and "1 succeeded" in behind.stdout, behind.stdout + behind.stderr
    fixed = [r for r in store.image_records(failed["ImageKey"]) if r["RecordType"] == "OCR_RESULT"][0]
    assert fixed["FailureTimestamp"] < failed["FailureTimestamp"]          # its clock put it first...
    assert {r["ImageKey"]: r["RecordType"] for r in store.latest_outcomes(VERSION)}[failed["ImageKey"]] == \
        "OCR_RESULT"                                                          # ...its sequence puts it last
    out = run_cli("results", "--table", store.table, "--ocr-version", VERSION)
    assert out.returncode == 0 and "FAILED_IMAGE" not in out.stdout and out.stdout.count("OCR_RESULT") == 2
    compared = run_cli("compare", "--table", store.table, "--base", VERSION, "--candidate", VERSION)
    assert "0 failed by both" in compared.stdout, compared.stdout


def test_a_retry_right_after_a_batch_runs_the_failures(tmp_path, store, converse_server, aws_credentials):
    folder = scans(tmp_path / "week", 2)
    (folder / "empty.png").write_bytes(b"")
    env = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": converse_server.url}
    first = run_cli("batch", str(folder), "--engine", "bedrock", "--table", store.table, "--no-progress", **env)
    retry = run_cli("batch", str(folder), "--engine", "bedrock", "--table", store.table, "--no-progress",
                    "--retry-failed", **env)
    assert first.returncode == retry.returncode == 0
    assert "1 processed" in retry.stdout and "meanwhile" not in retry.stdout, retry.stdout
    attempts = [r["AttemptNumber"] for r in store.image_records(key_of(folder / "empty.png"))]
    assert attempts == [1, 2]


def test_since_is_a_moment_whatever_its_offset(store):
    for i in range(8):
        log_failed_image(store, f"s-{i}.png", "OCR_ERROR", "m", V1)
    now = dt.datetime.now(dt.timezone.utc)
    earlier_in_cairo = (now - dt.timedelta(minutes=10)).astimezone(dt.timezone(dt.timedelta(hours=2)))
    later_in_new_york = (now + dt.timedelta(minutes=10)).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert len(get_all_failed_images(store, since=earlier_in_cairo.isoformat())) == 8
    assert get_all_failed_images(store, since=later_in_new_york.isoformat()) == []
    assert len(get_all_failed_images(store, since=earlier_in_cairo)) == 8          # a datetime, aware
    assert get_all_failed_images(store, since=(now + dt.timedelta(minutes=10)).replace(tzinfo=None)) == []  # naive: UTC
    from ocrlab import analysis
    assert len(analysis.failures_frame(store, since=earlier_in_cairo.isoformat())) == 8
    assert len(analysis.failures_frame(store, since=later_in_new_york.isoformat())) == 0


def test_a_notebooks_since_is_a_moment_whatever_its_offset(store, tmp_path):
    from pathlib import Path

    from ocrlab.reports import run_report
    for i in range(8):
        log_failed_image(store, f"n-{i}.png", "OCR_ERROR", "m", V1)
    # Ten minutes ago, written in Tokyo: as text it sorts after every record of today, as a moment before.
    tokyo = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)).astimezone(
        dt.timezone(dt.timedelta(hours=9))).isoformat()
    result = run_report("failure_patterns", {"table": store.table, "since": tokyo}, reports_dir=tmp_path,
                        notebooks_dir=Path(__file__).resolve().parents[2] / "notebooks")
    assert result.figures["total_failures"] == 8
