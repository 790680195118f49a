"""Adopting a table another writer fills: the original failure logger's, or any code that puts
FAILED_IMAGE records without ocrlab's helper items.

Such records carry no RecordId, Sequence, FailureFingerprint or digests, and no counter or version
item stands for them. `adopt` walks the table once (resumably: its progress is kept in the table)
and, image by image, adds only what ocrlab derives: those attributes (never changing one the other
code reads), a Sequence for each record in time order, the image's failure count raised to the
highest AttemptNumber its records hold, the version list; then the indexes: a table only ocrlab wrote
moves to the sharded layout (ocrlab.store.shards); one another writer fills keeps the one
time-ordered index, ByRecordType, since its records carry no shard. The mark item it leaves says
whether the table is shared; on a shared table the Store follows the other writers as it goes:
- before it counts a failure, it raises the image's count to what the image's records hold, so
  attempt numbers stay consecutive whichever code logged the last one;
- when a version list or a version's records are asked for (at most once a minute), it adopts the
  images that records written since the last look belong to (`catch_up`).
Helper items carry no RecordType, so a Scan filtered on RecordType (the original UI's) never sees them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from botocore.exceptions import ClientError

from ocrlab.records import FAILED_IMAGE, OCR_RESULT, fingerprint, format_timestamp, output_digests, parse_timestamp
from ocrlab.store import admin, shards
from ocrlab.store.layout import BY_TYPE_SHARD, UNSHARDED_LAYOUT
from ocrlab.store.table import ADOPTED_KEY, COUNTER_KEY
from ocrlab.text import clean_text

if TYPE_CHECKING:
    from ocrlab.store.reads import Queries
    from ocrlab.store.table import Table

MARK = {"ImageKey": {"S": ADOPTED_KEY[0]}, "FailureTimestamp": {"S": ADOPTED_KEY[1]}}
OVERLAP_SECONDS = 3600.0  # a catch-up reads this far back: other writers' clocks and writes in flight
WORKERS = 8


@dataclass
class AdoptionReport:
    """What an adoption found and did, over all its runs (an interrupted one included)."""

    records: int = 0
    images: int = 0
    counters: int = 0  # images whose failure count follows what their records hold
    foreign: int = 0  # records another writer made (no RecordId): the table is shared
    versions: Counter[str] = field(default_factory=Counter)
    unversioned: int = 0  # records without an OCRFullVersion (no comparison can hold them)
    indexes: list[str] = field(default_factory=list)
    resumed: bool = False
    already: bool = False  # adopted before: this run only caught up with later records

    def add(self, other: AdoptionReport) -> None:
        for name in ("records", "images", "counters", "foreign", "unversioned"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.versions.update(other.versions)

    def totals(self) -> dict[str, Any]:
        return {"records": self.records, "images": self.images, "counters": self.counters,
                "foreign": self.foreign, "unversioned": self.unversioned, "versions": dict(self.versions)}

    @classmethod
    def from_totals(cls, totals: dict[str, Any]) -> AdoptionReport:
        counts: dict[str, Any] = {k: int(v) for k, v in totals.items() if k != "versions"}
        report = cls(**counts)
        report.versions.update({k: int(v) for k, v in (totals.get("versions") or {}).items()})
        return report


def mark(db: Table) -> dict[str, Any] | None:
    """The table's adoption mark, if it was (or is being) adopted."""
    return db.item(*ADOPTED_KEY)


def derived(record: Mapping[str, Any]) -> dict[str, Any]:
    """What ocrlab derives from a record and the record lacks (RecordId, FailureFingerprint, digests)."""
    found: dict[str, Any] = {}
    if not record.get("RecordId"):  # the same id on every run: adoption stays idempotent
        source = f"{record['ImageKey']}\0{record['FailureTimestamp']}".encode("utf-8", "backslashreplace")
        found["RecordId"] = "adopted-" + hashlib.sha1(source).hexdigest()[:24]
    if record.get("RecordType") == FAILED_IMAGE and not record.get("FailureFingerprint"):
        failure_type = str(record.get("FailureType") or "UNKNOWN")
        found["FailureFingerprint"] = fingerprint(failure_type, str(record.get("ErrorCode") or failure_type),
                                                  str(record.get("ErrorMessage") or ""),
                                                  clean_text(str(record["ImageKey"])))
    found.update({name: value for name, value in output_digests(record).items() if not record.get(name)})
    return found


def adopt_image(store: Queries, image_key: str) -> AdoptionReport:
    """Complete one image's records and counter (idempotent); what it did."""
    report = AdoptionReport(images=1)
    records = [r for r in store.records_of_image(image_key) if r.get("RecordType") in (FAILED_IMAGE, OCR_RESULT)]
    report.records = len(records)
    report.foreign = sum(not r.get("RecordId") for r in records)
    unnumbered = [r for r in records if r.get("Sequence") is None]  # in time order (records.order_key)
    top = _take_sequences(store, image_key, len(unnumbered)) if unnumbered else 0
    numbers = {id(r): top - len(unnumbered) + 1 + n for n, r in enumerate(unnumbered)}
    for record in records:
        missing = derived(record)
        sequence = numbers.get(id(record))
        if missing or sequence is not None:
            _complete(store, record, missing, sequence)
        version = record.get("OCRFullVersion")
        if version:
            store.db.register_version(str(version))
            report.versions[str(version)] += 1
        else:
            report.unversioned += 1
    follow_attempts(store, image_key, records)
    report.counters = int(any(r["RecordType"] == FAILED_IMAGE for r in records))
    return report


def _take_sequences(store: Queries, image_key: str, count: int) -> int:
    """Reserve `count` sequence numbers on the image's counter; the highest of them."""
    out = store.db.call("update_item", TableName=store.table,
                      Key={"ImageKey": {"S": image_key}, "FailureTimestamp": {"S": COUNTER_KEY}},
                      UpdateExpression="SET #q = if_not_exists(#q, :zero) + :n", ExpressionAttributeNames={"#q": "Sequence"},
                      ExpressionAttributeValues={":zero": {"N": "0"}, ":n": {"N": str(count)}},
                      ReturnValues="UPDATED_NEW")
    return int(out["Attributes"]["Sequence"]["N"])


def _complete(store: Queries, record: Mapping[str, Any], missing: dict[str, Any], sequence: int | None) -> None:
    """Add the missing attributes (and the Sequence, unless another run numbered it first) to a record
    that still exists."""
    names = {f"#a{n}": name for n, name in enumerate(missing)}
    values = {f":a{n}": {"S": str(value)} for n, value in enumerate(missing.values())}
    sets = [f"#a{n} = if_not_exists(#a{n}, :a{n})" for n in range(len(missing))]
    key = {"ImageKey": {"S": record["ImageKey"]}, "FailureTimestamp": {"S": record["FailureTimestamp"]}}
    condition = "attribute_exists(#k)"  # an update never brings a deleted record back
    names["#k"] = "FailureTimestamp"
    if sequence is not None:
        try:
            store.db.call("update_item", TableName=store.table, Key=key,
                        UpdateExpression="SET " + ", ".join([*sets, "#q = :q"]),
                        ConditionExpression=condition + " AND attribute_not_exists(#q)",
                        ExpressionAttributeNames={**names, "#q": "Sequence"},
                        ExpressionAttributeValues={**values, ":q": {"N": str(sequence)}})
            return
        except ClientError:
            pass  # numbered by another run meanwhile, or gone
    if sets:
        try:
            store.db.call("update_item", TableName=store.table, Key=key, UpdateExpression="SET " + ", ".join(sets),
                        ConditionExpression=condition, ExpressionAttributeNames=names,
                        ExpressionAttributeValues=values)
        except ClientError:
            pass  # the record is gone


def follow(store: Queries, image_key: str) -> None:
    """Before a failure of the image is counted on a shared table: adopt the records others wrote
    (read in full only when there are some) and raise the count to what the records hold."""
    brief = store.records_of_image(image_key, attributes=["RecordType", "AttemptNumber", "RecordId", "Sequence"])
    if any(not r.get("RecordId") or r.get("Sequence") is None for r in brief):
        adopt_image(store, image_key)
    else:
        follow_attempts(store, image_key, brief)


def follow_attempts(store: Queries, image_key: str, records: Iterable[Mapping[str, Any]] | None = None) -> bool:
    """Raise the image's failure count to what its records hold (the highest AttemptNumber, or the
    number of failures if more), so the next attempt follows the last whoever logged it; whether it
    was raised. Never lowers it (a failure counted but not yet written keeps its number)."""
    if records is None:
        records = store.records_of_image(image_key, FAILED_IMAGE)
    failures = [r for r in records if r.get("RecordType") == FAILED_IMAGE]
    held = max([len(failures), *(_number(r.get("AttemptNumber")) for r in failures)])
    if not held:
        return False
    try:
        store.db.call("update_item", TableName=store.table,
                    Key={"ImageKey": {"S": image_key}, "FailureTimestamp": {"S": COUNTER_KEY}},
                    UpdateExpression="SET #c = :n", ConditionExpression="attribute_not_exists(#c) OR #c < :n",
                    ExpressionAttributeNames={"#c": "FailureCount"}, ExpressionAttributeValues={":n": {"N": str(held)}})
        return True
    except ClientError:
        return False  # the count already stands at or above it


def _number(value: Any) -> int:
    try:
        return int(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        return 0


def adopt(store: Queries, progress: Callable[[int], None] | None = None, page_size: int = 1000) -> AdoptionReport:
    """Make the table a full ocrlab table in place: every image's records and counter and the version
    list, then the indexes; resumable (the walk's position is kept in the mark) and idempotent (a
    table adopted before is caught up with the records written since). `progress` is told the
    records of each image adopted; the position is kept every `page_size` items walked."""
    held = mark(store.db)
    if held and held.get("State") == "adopted":
        report = catch_up(store)
        report.already, report.indexes = True, _indexes(store, held.get("Shared", True) is not False)
        return report
    started = held["Since"] if held else _stamp(time.time())
    report = AdoptionReport.from_totals(json.loads(held.get("Totals", "{}"))) if held else AdoptionReport()
    report.resumed = held is not None
    start_key = json.loads(held["ScanFrom"]) if held and held.get("ScanFrom") else None
    if not held:  # from here on the Store follows the other writers (the table may be shared)
        _save_mark(store, "adopting", started, None, report)
    # The walk is kept page by page; only the last image of a page can go on into the next one.
    done: set[str] = {held["LastImage"]} if held and held.get("LastImage") else set()
    with ThreadPoolExecutor(WORKERS) as pool:
        while True:
            page = store.db.call("scan", TableName=store.table, ProjectionExpression="#k, #t", Limit=page_size,
                               FilterExpression="attribute_exists(#r)", ConsistentRead=True,
                               ExpressionAttributeNames={"#k": "ImageKey", "#t": "FailureTimestamp", "#r": "RecordType"},
                               **({"ExclusiveStartKey": start_key} if start_key else {}))
            keys = list(dict.fromkeys(item["ImageKey"]["S"] for item in page.get("Items", [])))
            for image in pool.map(lambda k: adopt_image(store, k), [k for k in keys if k not in done]):
                report.add(image)
                if progress:
                    progress(image.records)
            done.update(keys)
            start_key = page.get("LastEvaluatedKey")
            _save_mark(store, "adopting", started, start_key, report, keys[-1] if keys else None)
            if not start_key:
                break
    shared = report.foreign > 0
    _save_mark(store, "adopted", started, None, report, shared=shared)
    report.indexes = _indexes(store, shared)
    catch_up(store)  # what other writers added while the walk went on
    return report


def _indexes(store: Queries, shared: bool) -> list[str]:
    """Bring the indexes to the layout the table can have; the names of those made. A shared table
    keeps the one time-ordered index (ByRecordType): another writer's records carry no shard, and it
    is how their records written since are found. A table only ocrlab writes moves to the shards."""
    if shared:
        made = admin.migrate(store.db, UNSHARDED_LAYOUT)
        if shards.stored_count(store.db):  # made sharded, then written by another: read through ByRecordType
            store.db.call("delete_item", TableName=store.table, Key=shards.meta_key())
            store.db.forget_shards()
        return made
    sharded_before = BY_TYPE_SHARD.name in {g["IndexName"] for g in store.db.call(
        "describe_table", TableName=store.table)["Table"].get("GlobalSecondaryIndexes") or []}
    shards.shard_table(store.db)
    return ([] if sharded_before else [BY_TYPE_SHARD.name]) + admin.migrate(store.db)


def _stamp(seconds: float) -> str:
    return format_timestamp(dt.datetime.fromtimestamp(seconds, dt.timezone.utc))


def _seconds(timestamp: str) -> float:
    return parse_timestamp(timestamp).replace(tzinfo=dt.timezone.utc).timestamp()


def _save_mark(store: Queries, state: str, since: str, scan_from: dict[str, Any] | None,
               report: AdoptionReport, last_image: str | None = None, shared: bool = True) -> None:
    item = {**MARK, "State": {"S": state}, "Since": {"S": since}, "Totals": {"S": json.dumps(report.totals())},
            "Shared": {"BOOL": shared}}
    if scan_from:
        item["ScanFrom"] = {"S": json.dumps(scan_from)}
    if last_image:
        item["LastImage"] = {"S": last_image}
    store.db.call("put_item", TableName=store.table, Item=item)


def catch_up(store: Queries) -> AdoptionReport:
    """Adopt the images of records other writers added since the mark's `Since` (less an overlap for
    their clocks), then move the mark to now; nothing on a table never adopted or still being walked."""
    report = AdoptionReport()
    held = mark(store.db)
    if not held or held.get("State") != "adopted" or held.get("Shared", True) is False:
        return report
    now = time.time()
    since = _stamp(_seconds(held["Since"]) - OVERLAP_SECONDS)
    images: dict[str, None] = {}
    for record_type in (FAILED_IMAGE, OCR_RESULT):
        for record in store.records_by_type(record_type, since=since, attributes=["RecordId", "Sequence"]):
            if not record.get("RecordId") or record.get("Sequence") is None:
                images[record["ImageKey"]] = None
    with ThreadPoolExecutor(WORKERS) as pool:
        for image in pool.map(lambda k: adopt_image(store, k), images):
            report.add(image)
    try:  # forward only: a slower catch-up that began earlier never moves it back
        store.db.call("update_item", TableName=store.table, Key=MARK, UpdateExpression="SET #s = :s",
                    ConditionExpression="#s < :s", ExpressionAttributeNames={"#s": "Since"},
                    ExpressionAttributeValues={":s": {"S": _stamp(now)}})
    except ClientError:
        pass
    return report

