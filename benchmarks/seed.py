"""Failure records written straight into a table in the store's layout, 25 to a BatchWriteItem call.

For benchmarks and tests that need tens of thousands of failures: the pipeline would take hours,
and what is measured (reads) depends only on the layout (ocrlab.store.dynamodb).
"""
from __future__ import annotations

import datetime as dt
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from ocrlab.records import FAILED_IMAGE, fingerprint, format_timestamp
from ocrlab.store.layout import SHARD_ATTRIBUTE
from ocrlab.store.shards import DEFAULT_SHARDS, shard_key
from ocrlab.store.table import VERSION_PREFIX, VERSIONS_KEY, pages, serialize

VERSIONS = ("2.0.0-2025-10-25", "2.1.0-2025-11-02")
KINDS = [  # (FailureType, ErrorCode, message template)
    ("VALIDATION_ERROR", "ValidationError", "timesheet breaks 1 rule(s): total_mismatch: entries sum to {n} h"),
    ("PARSING_ERROR", "NoTimesheet", "no timesheet text in the engine output"),
    ("OCR_ERROR", "ModelErrorException", "model error after {n} retries"),
    ("THROTTLING_ERROR", "ThrottlingException", "rate exceeded"),
    ("INPUT_ERROR", "UnidentifiedImageError", "cannot identify image file"),
]


def failure(i: int, start: dt.datetime) -> dict[str, Any]:
    """The i-th synthetic failure: five kinds, two versions, one second apart from `start`."""
    failure_type, code, template = KINDS[i % len(KINDS)]
    key = f"scans/2025/{i:06d}.png"
    message = template.format(n=i % 7 + 30)
    return {"ImageKey": key, "FailureTimestamp": format_timestamp(start + dt.timedelta(seconds=i)),
            "RecordType": FAILED_IMAGE, "RecordId": f"seed-{i}", "FailureType": failure_type, "ErrorCode": code,
            "ErrorMessage": message, "FailureFingerprint": fingerprint(failure_type, code, message, key),
            "OCRFullVersion": VERSIONS[i % 2], "OCRVersion": VERSIONS[i % 2][:5],
            "OCRBuildDate": VERSIONS[i % 2][6:], "AttemptNumber": 1, "ProcessingTimeSeconds": 1,
            "RawOCROutput": f"WEEKLY TIMESHEET\nEmployee: Worker {i}\n" + "Mon 10/20 08:00 16:30 8.0\n" * 10,
            "ValidationErrors": "total_mismatch: entries sum to 80 h, total_hours is 40"
            if failure_type == "VALIDATION_ERROR" else None}


def unsharded_store(name: str) -> Any:
    """The store of a table of the layout before the shards (one ByRecordType partition per record
    type), made if missing: the raw-Query baselines of the figures measured before the shards read it
    as they did (benchmarks/shards.py measures the sharded layout against it)."""
    from ocrlab.store import open_store
    from ocrlab.store.layout import UNSHARDED_LAYOUT
    client = open_store(name, create=False, check=False).store.client
    try:
        client.create_table(**UNSHARDED_LAYOUT.create_table_request(name))
    except client.exceptions.ResourceInUseException:
        pass
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
    return open_store(name, create=False)


def sharded(item: dict[str, Any], count: int = DEFAULT_SHARDS) -> dict[str, Any]:
    """A record with its TypeShard, as the store writes it (helper items have none)."""
    if "RecordType" not in item or SHARD_ATTRIBUTE in item:
        return item
    return {**item, SHARD_ATTRIBUTE: shard_key(item["RecordType"], item["ImageKey"], count)}


def _write(client: Any, table: str, chunk: list[dict[str, Any]]) -> None:
    requests = {table: [{"PutRequest": {"Item": serialize(sharded(item))}} for item in chunk]}
    while requests:  # unprocessed items are retried until written
        requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}


def write_items(store: Any, items: Iterable[dict[str, Any]], versions: Iterable[str] = VERSIONS,
                threads: int = 4) -> None:
    """Write items (and the list of `versions`) into the store's table, `threads` batch writes at a time,
    a bounded number of chunks in flight (items may be a generator of any length)."""
    inner = getattr(store, "store", store)  # a SpoolingStore wraps the DynamoDB Store
    listed = [{"ImageKey": VERSIONS_KEY, "FailureTimestamp": VERSION_PREFIX + v, "Version": v} for v in versions]
    chunks = pages(itertools.chain(listed, items), 25)
    with ThreadPoolExecutor(threads) as pool:
        while block := list(itertools.islice(chunks, 40 * threads)):
            list(pool.map(lambda chunk: _write(inner.client, inner.table, chunk), block))


def seed_failures(store: Any, count: int, start: dt.datetime | None = None, threads: int = 4) -> list[dict[str, Any]]:
    """Write `count` failures (and the version list) into the store's table; returns them in time order."""
    start = start or dt.datetime(2025, 10, 1, tzinfo=dt.timezone.utc)
    items = [failure(i, start) for i in range(count)]
    write_items(store, items, threads=threads)
    return items
