"""Every read of the failure log, as DynamoDB Queries and batched gets over one Table: an image's
records in order, a type's in time order (on a sharded table, every shard at once:
ocrlab.store.shard_reads), a version's, each image's latest, a page of failures, the versions.

`Queries` is what both the table's Store and the SpoolingStore every caller holds read with: reads
go straight to the table, never through the spool.
"""
from __future__ import annotations

import time
from collections import Counter
from itertools import groupby
from typing import Any, Iterable, Iterator, Sequence, cast

from ocrlab.domain import LatestSummary, Record
from ocrlab.records import FAILED_IMAGE, order_key
from ocrlab.store import adoption
from ocrlab.store.layout import BY_RECORD_TYPE, BY_VERSION_IMAGE
from ocrlab.store.queries import (
    DEFAULT_BUDGET,
    MAX_CALL_ITEMS,
    Cursor,
    FailurePage,
    FailureQuery,
    cursor_after,
    query_plan,
    time_range,
)
from ocrlab.store.shard_reads import merged_records, sharded_page
from ocrlab.store.table import (
    BATCH_GET,
    CATCH_UP_SECONDS,
    COUNTER_KEY,
    RECORDS_FROM,
    Table,
    as_records,
    deserialize,
    filters,
    pages,
    projection,
)


class Queries:
    """The reads of one table."""

    def __init__(self, db: Table) -> None:
        self.db = db

    @property
    def table(self) -> str:
        return self.db.table

    @property
    def description(self) -> str:
        return self.db.description

    @property
    def client(self) -> Any:
        return self.db.client

    # -- a table other code writes too (ocrlab.store.adoption) --------------------------------
    def follow_writers(self, image_key: str) -> None:
        """Before a failure is counted on a shared table: the image's records others wrote are adopted
        and its count catches up with them."""
        if self.db.shared():
            adoption.follow(self, image_key)

    def follow_others(self) -> None:
        """Before versions are listed or read on a shared table: adopt what others wrote since."""
        now = time.monotonic()
        if now - self.db.looked_at_others >= CATCH_UP_SECONDS and self.db.shared():
            self.db.looked_at_others = now
            adoption.catch_up(self)

    # -- reads ------------------------------------------------------------------------------
    def get(self, image_key: str, timestamp: str) -> Record | None:
        return cast("Record | None", self.db.item(image_key, timestamp))

    def attempt_count(self, image_key: str) -> int:
        """Failures logged for the image so far (all versions)."""
        self.follow_writers(image_key)
        counter = self.db.item(image_key, COUNTER_KEY)
        return int(counter.get("FailureCount", 0)) if counter else 0

    def records_by_type(self, record_type: str = FAILED_IMAGE, since: str | None = None,
                        until: str | None = None, newest_first: bool = False,
                        attributes: Sequence[str] | None = None) -> Iterator[Record]:
        """All failures (or results) in time order, optionally within [since, until); with
        `attributes`, only those (and the keys) are read."""
        names = {"#p": "RecordType"}
        values: dict[str, Any] = {":p": {"S": record_type}}
        cond = "#p = :p" + time_range(names, values, since, until, until_included=False)
        selected = projection(attributes, names)
        arguments = dict(IndexName=BY_RECORD_TYPE.name, KeyConditionExpression=cond, ExpressionAttributeNames=names,
                         ExpressionAttributeValues=values, ScanIndexForward=not newest_first, **selected)
        if self.db.shards:
            records = merged_records(self.db, record_type, self.db.shards, arguments, newest_first)
        else:
            records = as_records(self.db.query(ahead=True, **arguments))
        if since and until:  # a key condition has one bound each side only as BETWEEN, which includes `until`
            return (r for r in records if r["FailureTimestamp"] != until)
        return records

    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[Record]:
        """The records of one image in order (ocrlab.records.order_key: its attempts, when record_type is
        FAILED_IMAGE), from one consistent Query."""
        records = self.records_of_image(image_key, record_type, ocr_version)
        if any(r.get("Sequence") is None for r in records) and self.db.shared():  # another writer's: numbered first
            adoption.adopt_image(self, image_key)
            records = self.records_of_image(image_key, record_type, ocr_version)
        return iter(records)

    def records_of_image(self, image_key: str, record_type: str | None = None, ocr_version: str | None = None,
                         attributes: Sequence[str] | None = None) -> list[Record]:
        """The image's records as they stand (image_records, without numbering other writers' records);
        with `attributes`, only those (and the keys)."""
        names, values, extra = filters(record_type=record_type, OCRFullVersion=ocr_version)
        names.update({"#k": "ImageKey", "#s": "FailureTimestamp"})
        values.update({":k": {"S": image_key}, ":z": {"S": RECORDS_FROM}})
        items = self.db.query(KeyConditionExpression="#k = :k AND #s >= :z", ConsistentRead=True,
                              ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                              **extra, **projection(attributes, names))
        return sorted(as_records(items), key=order_key)

    def version_summary(self, ocr_version: str, record_type: str | None = None) -> Iterator[Record]:
        """The records of a version as the ByVersionImage index holds them (keys, RecordType,
        FailureType, ErrorCode, AttemptNumber, RecordId, Sequence, ContentDigest...), grouped by image,
        each image's in the order of its records (ocrlab.records.order_key)."""
        self.follow_others()
        names, values, extra = filters(record_type=record_type)
        names["#v"], values[":v"] = "OCRFullVersion", {"S": ocr_version}
        items = as_records(self.db.query(IndexName=BY_VERSION_IMAGE.name, KeyConditionExpression="#v = :v",
                                     ExpressionAttributeNames=names, ExpressionAttributeValues=values, **extra))
        for _, group in groupby(items, key=lambda r: r["ImageKey"]):
            yield from sorted(group, key=order_key)

    def version_records(self, ocr_version: str, record_type: str | None = None,
                        attributes: Sequence[str] | None = None) -> Iterator[Record]:
        """Every record written under one OCRFullVersion, in full (or `attributes` of it), grouped by
        image (time order within)."""
        for page in pages(self.version_summary(ocr_version, record_type), BATCH_GET):
            yield from self.db.get_many(((r["ImageKey"], r["FailureTimestamp"]) for r in page), attributes)

    def records_by_key(self, keys: Iterable[tuple[str, str]],
                       attributes: Sequence[str] | None = None) -> Iterator[Record]:
        """The records of (ImageKey, FailureTimestamp) pairs, in the order given (missing ones left
        out), in full or just `attributes` (and the key)."""
        return self.db.get_many(keys, attributes)

    def latest_summary(self, ocr_version: str) -> Iterator[LatestSummary]:
        """Each image's latest record under the version, as the index holds it, with `Failures`:
        the image's failure count under the version. In ImageKey order."""
        for _, group in groupby(self.version_summary(ocr_version), key=lambda r: r["ImageKey"]):
            records = list(group)
            yield {**records[-1], "Failures": sum(r["RecordType"] == FAILED_IMAGE for r in records)}

    def latest_outcomes(self, ocr_version: str) -> Iterator[Record]:
        """The latest record of each image under a version, in full, in ImageKey order."""
        for page in pages(self.latest_summary(ocr_version), BATCH_GET):
            yield from self.db.get_many((r["ImageKey"], r["FailureTimestamp"]) for r in page)

    def image_latest(self, image_key: str) -> Iterator[Record]:
        """The image's latest record under every version it ran under (one consistent Query)."""
        latest: dict[str, Record] = {}
        for record in sorted(self.image_records(image_key), key=order_key):  # the last of each version wins
            latest[str(record.get("OCRFullVersion"))] = record
        yield from latest.values()

    def failures_page(self, query: FailureQuery, limit: int = 50, cursor: Cursor | None = None,
                      budget: int = DEFAULT_BUDGET) -> FailurePage:
        """One page of the failures `query` selects, in time order, read server-side (ocrlab.store.queries)."""
        if self.db.shards:
            return sharded_page(self.db, query, self.db.shards, limit, cursor, budget)
        _, key_attributes, arguments = query_plan(query)
        page = FailurePage([], cursor, query=query)
        arguments["TableName"] = self.db.table
        while True:
            wanted = limit - len(page.records)
            call_limit = wanted if not query.filtered else max(wanted, min(MAX_CALL_ITEMS, budget - page.examined))
            if page.cursor:
                arguments["ExclusiveStartKey"] = page.cursor
            reply = self.db.call("query", Limit=call_limit, **arguments)
            page.calls += 1
            page.examined += reply.get("ScannedCount", 0)
            items = cast(list[Record], [deserialize(raw) for raw in reply.get("Items", [])])
            page.records += items[:wanted]
            page.cursor = (cursor_after(items[wanted - 1], key_attributes) if len(items) > wanted
                           else reply.get("LastEvaluatedKey"))
            if len(page.records) >= limit or not page.cursor:
                return page
            if page.examined >= budget:
                page.partial = True
                return page

    def failure_counts(self, ocr_version: str) -> Counter[str]:
        """Failures per image under one version (for --max-attempts)."""
        return Counter({r["ImageKey"]: int(r["Failures"]) for r in self.latest_summary(ocr_version)
                        if r["Failures"]})

    def versions(self) -> list[str]:
        """Every OCRFullVersion that has a record, oldest name first."""
        self.follow_others()
        return self.db.listed_versions()
