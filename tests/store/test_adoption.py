"""Adopting the table the original failure logger writes (tests/support/original_logger.py, a faithful client):
every command right on it, attempt numbers that continue across both writers, the original code
still working, resumable adoption, on dynalite and on moto's DynamoDB."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from support import original_logger as original
from support.helpers import free_port, run_cli

V1 = {"version": "1.4.0", "build_date": "2025-08-01", "description": "Nova Lite, first prompt"}
V2 = {"version": "2.0.0", "build_date": "2025-10-25", "description": "Amazon Nova Lite + Real-time Coverage Tracking"}
V3 = {"version": "2.1.0", "build_date": "2025-11-20", "description": "Nova Lite, stricter totals"}
ERRORS = [  # what the Lambda met, and the type the original's string matching gives each
    lambda n: ValueError(f"Failed parsing JSON from model output at char {n}"),
    lambda n: ValueError(f"validation failed: total hours {n} exceed 80"),
    lambda n: RuntimeError(f"ThrottlingException: Rate exceeded (request {n})"),
    lambda n: TimeoutError(f"Read timed out after {n} seconds"),
]


def full(v: dict[str, str]) -> str:
    return f"{v['version']}-{v['build_date']}"


def create_original_table(client: Any, name: str) -> None:
    """The table as the original stack made it: the two keys, no index."""
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "ImageKey", "KeyType": "HASH"},
                                   {"AttributeName": "FailureTimestamp", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "ImageKey", "AttributeType": "S"},
                                              {"AttributeName": "FailureTimestamp", "AttributeType": "S"}])
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})


def lambda_failure(table: str, key: str, n: int, version: dict[str, str]) -> dict[str, Any]:
    """The Lambda's exception handler of the design document, with the original call form."""
    error = ERRORS[n % len(ERRORS)](n)
    attempt_number = original.get_attempt_count(table, key) + 1
    return original.log_failed_image(table_name=table, image_key=key, failure_type=original.classify(error),
                                     error_message=str(error), ocr_version=version, error_details={
                                         "error_code": type(error).__name__, "processing_time": 1.5 + n % 7,
                                         "stack_trace": f"Traceback ...\n{type(error).__name__}: {error}",
                                         "s3_bucket": "timesheets", "s3_region": "us-east-1",
                                         "attempt_number": attempt_number, "cloudwatch_log_stream": "2025/10/25/[$LATEST]x",
                                         "raw_ocr_output": "{'text': 'Week ending 2025-10-25 ...'}"})


def seed(table: str, images: int = 100) -> list[dict[str, Any]]:
    """Failures of `images` images over three versions, one to eight attempts each, all four types."""
    written = []
    for i in range(images):
        key = f"uploads/2025/week-{i % 9:02d}/scan_{i:04d}.jpg"
        for attempt in range(1 + (i * 5) % 8):
            version = (V1, V2, V3)[min(2, attempt * 3 // 8 + i % 2)]
            written.append(lambda_failure(table, key, i + attempt, version))
    return written


@pytest.fixture(scope="module")
def seeded(dynalite) -> tuple[str, list[dict[str, Any]]]:
    """A table the original code wrote, once per module; tests adopt copies of it."""
    original.connect(f"http://127.0.0.1:{dynalite.port}")
    create_original_table(original.dynamodb.meta.client, "original-template")
    return "original-template", seed("original-template")


def copy_table(source: str, target: str) -> None:
    client = original.dynamodb.meta.client
    create_original_table(client, target)
    with original.dynamodb.Table(target).batch_writer() as batch:
        for item in _items(client, source):
            batch.put_item(Item=item)


@pytest.fixture
def original_table(dynalite, seeded, table_name: str) -> tuple[str, list[dict[str, Any]]]:
    original.connect(f"http://127.0.0.1:{dynalite.port}")
    copy_table(seeded[0], table_name)
    return table_name, seeded[1]


def answers_of_the_original(table: str, tmp_path: Path, name: str) -> dict[str, Any]:
    """What the original UI shows: the list, the CSV export, the statistics."""
    listed = original.get_all_failed_images(table)
    path = tmp_path / f"{name}.csv"
    original.export_failed_images_csv(table, str(path))
    return {"listed": [(r["ImageKey"], r["FailureTimestamp"], r["AttemptNumber"]) for r in listed],
            "csv": path.read_text(), "stats": original.get_failure_statistics(table),
            "throttling": len(original.get_all_failed_images(table, "THROTTLING_ERROR"))}


def test_adopt_makes_every_command_right_and_the_original_code_keeps_its_answers(original_table, tmp_path):
    table, written = original_table
    assert {r["FailureType"] for r in written} == {"OCR_ERROR", "PARSING_ERROR", "VALIDATION_ERROR", "THROTTLING_ERROR"}
    assert max(r["AttemptNumber"] for r in written) == 8
    before = answers_of_the_original(table, tmp_path, "before")
    refused = run_cli("stats", "--table", table)
    assert refused.returncode != 0 and f"ocrlab adopt --table {table}" in refused.stderr + refused.stdout

    adopted = run_cli("adopt", "--table", table)
    assert adopted.returncode == 0, adopted.stderr
    images = {r["ImageKey"] for r in written}
    by_version = Counter(r["OCRFullVersion"] for r in written)
    assert f"{len(written)} records of {len(images)} images; 3 versions" in adopted.stdout
    for version, count in by_version.items():
        assert f"{count:6d}  {version}" in adopted.stdout
    assert f"counters set: {len(images)} images" in adopted.stdout
    assert "adopt" in adopted.stderr  # the progress bar

    stats = json.loads(run_cli("stats", "--table", table, "--json").stdout)
    assert stats["total_failures"] == len(written) and stats["unique_images"] == len(images)
    assert stats["failure_types"] == dict(Counter(r["FailureType"] for r in written))
    assert stats["by_ocr_version"] == dict(by_version)
    # Failures group by type, code and message shape: one group per kind of error, not one for all.
    groups = {(g["failure_type"], g["error_code"]): g["count"] for g in stats["top_fingerprints"]}
    assert groups == dict(Counter((r["FailureType"], r["ErrorCode"]) for r in written))

    out = tmp_path / "v2.csv"
    short = run_cli("export", "--table", table, "--ocr-version", "2.0.0", "-o", str(out))
    assert short.returncode == 0 and f"2.0.0: the records of {full(V2)}" in short.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == by_version[full(V2)] and {r["OCRVersion"] for r in rows} == {"2.0.0"}
    out = tmp_path / "throttled.csv"
    run_cli("export", "--table", table, "--failure-type", "THROTTLING_ERROR", "-o", str(out))
    assert len(list(csv.DictReader(out.open()))) == sum(r["FailureType"] == "THROTTLING_ERROR" for r in written)

    results = tmp_path / "results.csv"
    run_cli("results", "--table", table, "--ocr-version", full(V3), "-o", str(results))
    latest = {}
    for r in written:
        if r["OCRFullVersion"] == full(V3):
            latest[r["ImageKey"]] = r
    rows = list(csv.DictReader(results.open()))
    assert {r["ImageKey"] for r in rows} == set(latest)
    assert all(r["Outcome"] == latest[r["ImageKey"]]["FailureType"] for r in rows)

    compared = run_cli("compare", "--table", table, "--base", full(V2), "--candidate", "2.1.0",
                       "--json", str(tmp_path / "c.json"))
    assert compared.returncode == 0, compared.stderr
    comparison = json.loads((tmp_path / "c.json").read_text())
    under = [{r["ImageKey"] for r in written if r["OCRFullVersion"] == full(v)} for v in (V2, V3)]
    assert comparison["base"] == full(V2) and comparison["candidate"] == full(V3)
    assert comparison["images_total"] == len(under[0] | under[1])
    assert sum(n for name, n in comparison["outcomes"].items()) == len(under[0] | under[1]), comparison["outcomes"]

    from ocrlab.analysis.patterns import failure_patterns, pattern_frames
    from ocrlab.store import open_store
    from ocrlab.widgets.browser import FailureBrowser
    store = open_store(table, create=False)
    patterns = failure_patterns(pattern_frames(store)[0])
    assert len(patterns["by_fingerprint"]) == len(groups)
    assert patterns["by_version"].sum(axis=1).to_dict() == dict(by_version)
    browser = FailureBrowser(store, page_size=1000)
    assert [v for _, v in browser.version_filter.options][1:] == sorted(by_version, reverse=True)
    browser.version_filter.value = full(V2)
    browser.apply()
    assert len(browser.page.records) == by_version[full(V2)]

    after = answers_of_the_original(table, tmp_path, "after")
    assert after == before  # the original UI lists, exports and counts exactly as before

    again = run_cli("adopt", "--table", table)
    assert again.returncode == 0 and "was adopted before" in again.stdout


def test_attempt_numbers_continue_whichever_code_logged_the_last_failure(original_table, tmp_path):
    from ocrlab.store import open_store
    from ocrlab.store.adoption import adopt
    from ocrlab.store.failure_log import get_attempt_count, log_failed_image
    table, written = original_table
    key = next(r["ImageKey"] for r in written if r["AttemptNumber"] == 8)
    adopt(open_store(table, create=False, check=False).store)
    store = open_store(table, create=False)
    # ocrlab after the original: 9, whichever call form.
    assert get_attempt_count(store, key) == 8
    assert log_failed_image(store, key, "OCR_ERROR", "boom", "2.0.0")["AttemptNumber"] == 9
    assert log_failed_image(store, key, "OCR_ERROR", "boom", "2.0.0", error_details={
        "attempt_number": get_attempt_count(store, key) + 1})["AttemptNumber"] == 10
    # The original after ocrlab counts ocrlab's records: 11; ocrlab then follows it: 12.
    assert lambda_failure(table, key, 3, V2)["AttemptNumber"] == 11
    assert log_failed_image(store, key, "OCR_ERROR", "boom", "2.0.0")["AttemptNumber"] == 12
    assert lambda_failure(table, key, 4, V2)["AttemptNumber"] == 13
    assert get_attempt_count(store, key) == 13
    attempts = [int(r["AttemptNumber"]) for r in store.image_records(key, "FAILED_IMAGE")]
    assert attempts == list(range(1, 14))  # consecutive, in order, whoever wrote each


def test_versions_the_original_code_adds_later_are_seen(original_table, tmp_path):
    from ocrlab.analysis.patterns import latest_records
    from ocrlab.store import open_store
    from ocrlab.store.adoption import adopt
    table, written = original_table
    adopt(open_store(table, create=False, check=False).store)
    v4 = {"version": "3.0.0", "build_date": "2025-12-01", "description": "new prompt"}
    lambda_failure(table, "uploads/new/scan_9999.jpg", 1, v4)
    lambda_failure(table, written[0]["ImageKey"], 2, v4)
    store = open_store(table, create=False)  # a later session
    assert full(v4) in store.versions()
    assert {r["ImageKey"] for r in latest_records(store, "3.0.0")} == {"uploads/new/scan_9999.jpg", written[0]["ImageKey"]}
    assert store.attempt_count("uploads/new/scan_9999.jpg") == 1


def test_an_interrupted_adoption_run_again_ends_as_one_run(dynalite, seeded, tmp_path):
    from ocrlab.store import open_store
    from ocrlab.store.adoption import adopt
    client = original.dynamodb.meta.client
    copy_table(seeded[0], "whole")
    copy_table(seeded[0], "cut")
    adopt(open_store("whole", create=False, check=False).store, page_size=40)

    seen = []

    def interrupt(records: int) -> None:
        seen.append(records)
        if len(seen) == 40:
            raise KeyboardInterrupt
    cut = open_store("cut", create=False, check=False).store
    with pytest.raises(KeyboardInterrupt):
        adopt(cut, progress=interrupt, page_size=40)
    report = adopt(cut, page_size=40)
    assert report.resumed and report.records == sum(1 for _ in _items(client, "whole") if "RecordType" in _)

    def table(name: str) -> list[tuple]:
        keep = ("RecordId", "FailureFingerprint", "RawDigest", "ParsedDigest", "Sequence", "AttemptNumber",
                "FailureCount", "Version")
        return sorted((i["ImageKey"], i["FailureTimestamp"], *(str(i.get(k)) for k in keep))
                      for i in _items(client, name) if i["ImageKey"] != "#TABLE")
    assert table("cut") == table("whole")


def _items(client: Any, name: str) -> list[dict[str, Any]]:
    return [i for page in client.get_paginator("scan").paginate(TableName=name) for i in page["Items"]]


def test_adopt_on_moto_dynamodb(s3_server, aws_credentials):
    from ocrlab.store.adoption import adopt
    from ocrlab.store.dynamodb import Store
    original.connect(s3_server)
    create_original_table(original.dynamodb.meta.client, "moto-original")
    written = seed("moto-original", images=15)
    store = Store(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=s3_server), "moto-original")
    report = adopt(store)
    assert report.records == len(written) and report.images == 15
    assert set(report.indexes) == {"ByRecordType", "ByVersionImage"}
    store.check_table()
    assert store.versions() == sorted({r["OCRFullVersion"] for r in written})
    for key in {r["ImageKey"] for r in written}:
        assert store.attempt_count(key) == max(r["AttemptNumber"] for r in written if r["ImageKey"] == key)
    assert sum(1 for _ in store.records_by_type()) == len(written)


def test_the_original_code_reads_a_table_ocrlab_writes(dynalite, store, table_name, tmp_path):
    from ocrlab.store.failure_log import log_failed_image
    for n in range(5):
        log_failed_image(store, f"img-{n % 2}.png", "PARSING_ERROR", f"bad json {n}", "2.0.0")
    original.connect(f"http://127.0.0.1:{dynalite.port}")
    stats = original.get_failure_statistics(table_name)  # no TypeError: the timestamps are naive UTC
    assert stats["total_failures"] == 5 and stats["recent_failures_24h"] == 5 and stats["unique_images"] == 2
    # ocrlab's helper items (counters, versions) never match a Scan filtered on RecordType.
    everything = _items(original.dynamodb.meta.client, table_name)
    assert len(everything) > 5 and len(original.get_all_failed_images(table_name)) == 5
    assert original.get_attempt_count(table_name, "img-0.png") == 3
    assert log_failed_image(store, "img-0.png", "PARSING_ERROR", "x", "2.0.0")["AttemptNumber"] == 4


def test_the_original_call_form_with_the_store_down_spools_and_replay_writes_once(dynalite, table_name, tmp_path):
    script = (
        "import sys\n"
        "from ocrlab.store.failure_log import get_attempt_count, log_failed_image\n"
        "for n in range(2):\n"
        "    attempt_number = get_attempt_count(sys.argv[1], 'scan_0001.jpg') + 1\n"
        "    record = log_failed_image(sys.argv[1], 'scan_0001.jpg', 'OCR_ERROR', 'model timed out', '2.0.0',\n"
        "                              error_details={'attempt_number': attempt_number})\n"
        "    print(record['AttemptNumber'], bool(record.get('Spooled')))\n")
    down = {**os.environ, "OCRLAB_STORE": "aws", "OCRLAB_STORE_MAX_ATTEMPTS": "1",
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", script, table_name], env=down, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "True", "2", "True"]
    assert out.stderr.count("counted from the spool") == 1
    replayed = run_cli("replay", "--table", table_name)
    assert "2 written" in replayed.stdout, replayed.stderr
    assert "0 written" in run_cli("replay", "--table", table_name).stdout
    from ocrlab.store import open_store
    store = open_store(table_name, create=False)
    assert [int(r["AttemptNumber"]) for r in store.image_records("scan_0001.jpg")] == [1, 2]
    assert store.attempt_count("scan_0001.jpg") == 2


def test_adopt_honours_the_local_database_it_is_given(dynalite, tmp_path):
    port, data = free_port(), tmp_path / "their-db"
    started = run_cli("db", "start", "--port", str(port), "--data-dir", str(data), "--table", "scratch")
    assert started.returncode == 0, started.stderr
    try:
        original.connect(f"http://127.0.0.1:{port}")
        create_original_table(original.dynamodb.meta.client, "theirs")
        written = seed("theirs", images=4)
        adopted = run_cli("adopt", "--table", "theirs", "--port", str(port), "--data-dir", str(data))
        assert adopted.returncode == 0, adopted.stderr
        assert f"http://127.0.0.1:{port}" in adopted.stderr and f"{len(written)} records of 4 images" in adopted.stdout
        missing = run_cli("adopt", "--table", "theirs")  # the session's database has no such table
        assert missing.returncode != 0 and "theirs" in missing.stderr
    finally:
        run_cli("db", "stop", "--data-dir", str(data))


def test_adoption_while_the_original_lambda_keeps_writing(original_table):
    from ocrlab.store import open_store
    from ocrlab.store.adoption import adopt
    table, written = original_table
    keys = sorted({r["ImageKey"] for r in written})
    added = []

    def meanwhile(records: int) -> None:  # the Lambda logs failures of old and new images mid-walk
        if len(added) < 6:
            added.append(lambda_failure(table, keys[len(added) * 7] if len(added) % 2 else f"new/{len(added)}.jpg",
                                        len(added), V3))
    adopt(open_store(table, create=False, check=False).store, progress=meanwhile, page_size=50)
    store = open_store(table, create=False)
    for key in {r["ImageKey"] for r in added}:
        records = list(store.image_records(key, "FAILED_IMAGE"))
        assert [int(r["AttemptNumber"]) for r in records] == list(range(1, len(records) + 1))
        assert store.attempt_count(key) == original.get_attempt_count(table, key) == len(records)
        assert [r["FailureTimestamp"] for r in records] == sorted(r["FailureTimestamp"] for r in records)
