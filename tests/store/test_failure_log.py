"""The seed's failure logger against a real dynalite over HTTP."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
from decimal import Decimal

from boto3.dynamodb.types import Binary, TypeSerializer

from ocrlab.records import FAILED_IMAGE
from ocrlab.store.export import COLUMNS
from ocrlab.store.failure_log import (
    export_failed_images_csv,
    get_all_failed_images,
    get_attempt_count,
    get_failure_statistics,
    iter_failed_images,
    log_failed_image,
)
from ocrlab.version import OCRVersionInfo

V1 = OCRVersionInfo("2.0.0", "2025-10-25", "Amazon Nova Lite + Real-time Coverage Tracking")
V2 = OCRVersionInfo("2.1.0", "2025-11-02", "candidate prompt")

SEED_DETAILS = {
    "error_code": "ValidationException", "processing_time": 1.25, "stack_trace": "Traceback...",
    "s3_bucket": "timesheets", "s3_region": "us-east-1", "cloudwatch_log_stream": "2025/10/25/[$LATEST]abc",
    "raw_ocr_output": '{"employee_name": "Maria"', "model_id": "amazon.nova-lite-v1:0",
    "input_tokens": 1520, "output_tokens": 87, "validation_errors": ["total_mismatch: 16.0 != 16.5"],
    "image_size": 204800,
}


def test_log_fills_every_seed_field(store):
    record = log_failed_image(store, "2025/10/a.png", "OCR_ERROR", "model failed", V1, SEED_DETAILS)
    [stored] = get_all_failed_images(store)
    assert stored["FailureTimestamp"] == record["FailureTimestamp"]
    expected = {
        "ImageKey": "2025/10/a.png", "RecordType": FAILED_IMAGE, "FailureType": "OCR_ERROR",
        "ErrorMessage": "model failed", "ErrorCode": "ValidationException", "OCRVersion": "2.0.0",
        "OCRBuildDate": "2025-10-25", "OCRDescription": V1.description, "OCRFullVersion": "2.0.0-2025-10-25",
        "ModelId": "amazon.nova-lite-v1:0", "ProcessingTimeSeconds": Decimal("1.25"), "InputTokens": 1520,
        "OutputTokens": 87, "RawOCROutput": '{"employee_name": "Maria"',
        "ValidationErrors": "total_mismatch: 16.0 != 16.5", "S3Bucket": "timesheets", "S3Region": "us-east-1",
        "ImageSize": 204800, "AttemptNumber": 1, "StackTrace": "Traceback...",
        "CloudWatchLogStream": "2025/10/25/[$LATEST]abc",
    }
    for name, value in expected.items():
        assert stored[name] == value, name
    assert len(stored["FailureFingerprint"]) == 16


def test_attempt_numbers_count_failures_of_each_image(store):
    assert get_attempt_count(store, "a.png") == 0
    numbers = [log_failed_image(store, "a.png", "OCR_ERROR", f"try {i}", V1)["AttemptNumber"] for i in range(3)]
    log_failed_image(store, "b.png", "OCR_ERROR", "other", V1)
    assert numbers == [1, 2, 3]
    assert get_attempt_count(store, "a.png") == 3 and get_attempt_count(store, "b.png") == 1
    assert [r["AttemptNumber"] for r in store.image_records("a.png")] == [1, 2, 3]


def test_filters_and_time_order(store):
    log_failed_image(store, "a.png", "OCR_ERROR", "m", V1)
    log_failed_image(store, "b.png", "PARSING_ERROR", "m", V2)
    log_failed_image(store, "c.png", "PARSING_ERROR", "m", V1)
    everything = get_all_failed_images(store)
    assert [r["ImageKey"] for r in everything] == ["a.png", "b.png", "c.png"]
    assert [r["ImageKey"] for r in get_all_failed_images(store, failure_type="PARSING_ERROR")] == ["b.png", "c.png"]
    assert [r["ImageKey"] for r in get_all_failed_images(store, ocr_version=V2.full_version)] == ["b.png"]
    since = everything[1]["FailureTimestamp"]
    assert [r["ImageKey"] for r in get_all_failed_images(store, since=since)] == ["b.png", "c.png"]
    assert store.versions() == sorted([V1.full_version, V2.full_version])


def test_statistics(store):
    for i in range(3):
        log_failed_image(store, f"img{i}.png", "THROTTLING_ERROR", f"Rate exceeded after {i + 3} retries",
                         V1, {"error_code": "ThrottlingException"})
    log_failed_image(store, "img0.png", "PARSING_ERROR", "no JSON", V2, {"error_code": "JSONDecodeError"})
    stats = get_failure_statistics(store)
    assert stats["total_failures"] == 4 and stats["unique_images"] == 3 and stats["recent_failures_24h"] == 4
    assert stats["failure_types"] == {"THROTTLING_ERROR": 3, "PARSING_ERROR": 1}
    assert stats["by_ocr_version"] == {V1.full_version: 3, V2.full_version: 1}
    assert stats["by_error_code"] == {"ThrottlingException": 3, "JSONDecodeError": 1}
    top = stats["top_fingerprints"][0]
    assert top["count"] == 3 and top["failure_type"] == "THROTTLING_ERROR"
    assert top["first_seen"] < top["last_seen"] and top["example_message"].startswith("Rate exceeded")


def test_reserved_words_as_extra_attribute_names(store):
    # Name, Status, Size, Date, Timestamp are DynamoDB reserved words; every expression uses placeholders.
    extras = {"Name": "n", "Status": "s", "Size": 3, "Date": "d", "Timestamp": "t"}
    log_failed_image(store, "Size", "OCR_ERROR", "m", V1, extras)
    [record] = get_all_failed_images(store, failure_type="OCR_ERROR")
    assert {k: record[k] for k in extras} == extras
    assert get_attempt_count(store, "Size") == 1
    out = io.StringIO()
    export_failed_images_csv(store, out)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert '"Status": "s"' in row["Extras"]


def test_records_written_by_other_tools_read_back_in_every_type(store):
    # ocrlab writes strings and numbers only, but a table it shares (the seed's own Lambda writing through
    # boto3) holds any type. Reads decode strings and numbers themselves and the rest through boto3.
    log_failed_image(store, "ocrlab.png", "OCR_ERROR", "m", V1)
    [written] = get_all_failed_images(store)
    extras = {"Whole": Decimal(3), "Huge": Decimal("1E+30"), "Flag": True, "Nothing": None,
              "Blob": Binary(b"\x00\xff"), "Words": {"a", "b"}, "Counts": {Decimal(1), Decimal(2)},
              "List": ["x", Decimal(1), [False]], "Map": {"inner": {"n": Decimal("2.5"), "s": "y"}}}
    item = {**written, "ImageKey": "other.png", "FailureTimestamp": written["FailureTimestamp"] + "1", **extras}
    store.store.client.put_item(TableName=store.table, Item={k: TypeSerializer().serialize(v) for k, v in item.items()})
    [read] = [r for r in get_all_failed_images(store) if r["ImageKey"] == "other.png"]
    assert read == item
    out = io.StringIO()
    assert export_failed_images_csv(store, out) == 2
    other = [r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["ImageKey"] == "other.png"]
    assert json.loads(other[0]["Extras"]) == {  # JSON has no sets, bytes or exact decimals
        "Blob": "AP8=", "Counts": ["1", "2"], "Flag": True, "Huge": "1" + "0" * 30, "List": ["x", "1", [False]],
        "Map": {"inner": {"n": "2.5", "s": "y"}}, "Nothing": None, "Whole": "3", "Words": ["a", "b"]}


def test_nan_and_float_inputs_are_stored_as_decimal(store):
    log_failed_image(store, "n.png", "OCR_ERROR", "m", V1,
                     {"processing_time": float("nan"), "input_tokens": 10.0, "output_tokens": float("inf"),
                      "image_size": 0.1})
    [record] = get_all_failed_images(store)
    assert "ProcessingTimeSeconds" not in record and "OutputTokens" not in record
    assert record["InputTokens"] == 10 and record["ImageSize"] == Decimal("0.1")


def test_nul_and_surrogates_round_trip_as_replacement_characters(store):
    log_failed_image(store, "bad\x00name.png", "OCR_ERROR", "x\ud800y", V1, {"raw_ocr_output": "a\x00b"})
    [record] = get_all_failed_images(store)
    assert record["ImageKey"] == "bad\ufffdname.png" and record["ErrorMessage"] == "x\ufffdy"
    assert record["RawOCROutput"] == "a\ufffdb"


def test_timestamps_unique_per_image_under_concurrency(store):
    # Threads of one process and a second process share the image; all timestamps must differ.
    threads = [threading.Thread(target=lambda: [log_failed_image(store, "same.png", "OCR_ERROR", "m", V1)
                                                for _ in range(10)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = list(store.image_records("same.png"))
    assert len(records) == 40
    assert len({r["FailureTimestamp"] for r in records}) == 40
    assert sorted(r["AttemptNumber"] for r in records) == list(range(1, 41))


CHILD = """
import sys
from ocrlab.store.failure_log import log_failed_image
for i in range(50):
    log_failed_image(sys.argv[1], "contended.png", "OCR_ERROR", f"worker {sys.argv[2]} failure {i}")
"""


def test_two_processes_logging_the_same_image(store):
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, store.table, str(n)]) for n in (1, 2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    records = list(store.image_records("contended.png", FAILED_IMAGE))
    assert sorted(r["AttemptNumber"] for r in records) == list(range(1, 101))
    assert len({r["FailureTimestamp"] for r in records}) == 100
    assert get_attempt_count(store, "contended.png") == 100


def test_reads_follow_pagination_over_several_megabytes(store):
    # ~9.5 KB of raw output per record: 330 records are over 3 MB, so with two shards every Query of a
    # shard spans several 1 MB pages.
    from concurrent.futures import ThreadPoolExecutor

    from ocrlab.store.shards import shard_keys, write_count
    write_count(store.db, 2)
    store.db.forget_shards()
    n = 330
    raw = "x" * 9500
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: log_failed_image(store, f"page/{i:04d}.png", "PARSING_ERROR" if i % 3 else "OCR_ERROR",
                                                 f"failure {i}", V1, {"raw_ocr_output": raw}), range(n)))
    independent = 0
    for shard in shard_keys(FAILED_IMAGE, 2):
        query = dict(TableName=store.table, IndexName="ByTypeShard", KeyConditionExpression="TypeShard = :r",
                     ExpressionAttributeValues={":r": {"S": shard}})
        first_page = store.store.client.query(**query)
        assert "LastEvaluatedKey" in first_page and first_page["Count"] < n / 2  # really paginated
        # Independent count: raw boto3 COUNT queries following LastEvaluatedKey by hand.
        kwargs = dict(query, Select="COUNT")
        while True:
            page = store.store.client.query(**kwargs)
            independent += page["Count"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert independent == n
    stats = get_failure_statistics(store)
    assert stats["total_failures"] == n and stats["unique_images"] == n
    assert stats["failure_types"] == {"PARSING_ERROR": 220, "OCR_ERROR": 110}
    out = io.StringIO()
    assert export_failed_images_csv(store, out) == n
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][: len(COLUMNS)] == COLUMNS and len(rows) == n + 1
    assert sum(1 for _ in iter_failed_images(store, ocr_version=V1.full_version)) == n
    assert sum(1 for _ in store.latest_outcomes(V1.full_version)) == n


def test_latest_outcome_per_image_and_version(store):
    log_failed_image(store, "a.png", "OCR_ERROR", "first", V1)
    log_failed_image(store, "a.png", "PARSING_ERROR", "second", V1)
    log_failed_image(store, "a.png", "OCR_ERROR", "under v2", V2)
    [latest] = list(store.latest_outcomes(V1.full_version))
    assert latest["ErrorMessage"] == "second" and latest["RecordType"] == FAILED_IMAGE
    assert latest["OCRFullVersion"] == V1.full_version
    assert store.failure_counts(V1.full_version) == {"a.png": 2}
