"""The shards of the time-ordered index: which one a record goes to, how many a table has, and the
move of a table made before them (`ocrlab db migrate`, and `ocrlab adopt`) to them, in place.

A record's `TypeShard` is its RecordType and a shard chosen from a stable hash of its ImageKey
(`FAILED_IMAGE#07`), so the writes of many images spread over `count` index partitions instead of
one (docs/design.md, "Records": the capacity arithmetic). `RecordType` itself never changes: the
original failure logger's tools Scan on it.

The count is stored with the table, in a helper item (`#TABLE` / `#SHARDS`, no index key, no
RecordType) that the move writes last: until it is there, reads go through ByRecordType as before.
A table with the sharded index and no ByRecordType but no such item (one made by the deployment
template) has the default count.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterator

from botocore.exceptions import ClientError

from ocrlab.store.layout import BY_RECORD_TYPE, BY_TYPE_SHARD, SHARD_ATTRIBUTE

if TYPE_CHECKING:
    from ocrlab.store.table import Table

DEFAULT_SHARDS = 16
META_KEY, SHARDS_KEY = "#TABLE", "#SHARDS"  # the table's own settings: ImageKey, FailureTimestamp
UPDATE_THREADS = 16  # backfill writes in flight


def shard_key(record_type: str, image_key: str, count: int) -> str:
    """The record's TypeShard: the same image always lands in the same shard (a digest is stable
    across processes and machines, unlike hash(), and spreads keys that differ in one digit, unlike
    crc32's low bits)."""
    digest = hashlib.blake2b(image_key.encode("utf-8"), digest_size=8).digest()
    return f"{record_type}#{int.from_bytes(digest, 'big') % count:02d}"


def shard_keys(record_type: str, count: int) -> list[str]:
    return [f"{record_type}#{n:02d}" for n in range(count)]


def meta_key() -> dict[str, Any]:
    return {"ImageKey": {"S": META_KEY}, "FailureTimestamp": {"S": SHARDS_KEY}}


def stored_count(db: Table) -> int | None:
    """The shard count the table's helper item holds (None: none written yet)."""
    item = db.call("get_item", TableName=db.table, Key=meta_key(), ConsistentRead=True).get("Item")
    return int(item["Shards"]["N"]) if item else None


def read_count(db: Table) -> int:
    """The table's shard count; 0 for a table not (yet completely) sharded, read through ByRecordType."""
    count = stored_count(db)
    if count is not None:
        return count
    indexes = _indexes(db)
    sharded = indexes.get(BY_TYPE_SHARD.name) == "ACTIVE" and BY_RECORD_TYPE.name not in indexes
    return DEFAULT_SHARDS if sharded else 0


def write_count(db: Table, count: int) -> None:
    db.call("put_item", TableName=db.table, Item={**meta_key(), "Shards": {"N": str(count)}})


def shard_table(db: Table, progress: Callable[[int], None] | None = None, count: int | None = None,
                drop_unsharded: bool = True) -> int:
    """Move the table to the sharded layout in place; the number of records given their TypeShard.

    1. every record gets its TypeShard (an UpdateItem that SETs only that attribute, nothing else
       another tool reads; one already right is left alone),
    2. the ByTypeShard index is made (DynamoDB and the local dynalite backfill it) and awaited,
    3. the shard count is written: from here on, reads go through the shards,
    4. ByRecordType, whose one partition per record type took every write, is dropped.
    Each step can be run again: an interrupted move, run again, ends as one run to the end (the
    count stays the one stored first). `progress` is told the records updated so far.
    """
    count = stored_count(db) or count or DEFAULT_SHARDS
    updated = backfill(db, count, progress)
    if BY_TYPE_SHARD.name not in _indexes(db):
        _change_indexes(db, {"Create": BY_TYPE_SHARD.request()},
                        [{"AttributeName": a, "AttributeType": "S"} for a in (SHARD_ATTRIBUTE, "FailureTimestamp")])
    db.wait_for_indexes()
    updated += backfill(db, count, progress, updated)  # records an older writer logged meanwhile
    write_count(db, count)
    if drop_unsharded and BY_RECORD_TYPE.name in _indexes(db):
        _change_indexes(db, {"Delete": {"IndexName": BY_RECORD_TYPE.name}})
        db.wait_for_indexes(gone=BY_RECORD_TYPE.name)
    db.forget_shards()
    return updated


def backfill(db: Table, count: int, progress: Callable[[int], None] | None = None, done: int = 0) -> int:
    """Give every record whose TypeShard is missing or not its own the right one (a Scan in pages:
    the one full read a move may make); the number updated."""
    updated = 0
    with ThreadPoolExecutor(UPDATE_THREADS) as pool:
        for page in _record_keys(db):
            wrong = [(k, t, want) for k, t, kind, held in page
                     if held != (want := shard_key(kind, k, count))]
            updated += sum(pool.map(lambda entry: _set_shard(db, *entry), wrong))
            if progress and wrong:
                progress(done + updated)
    return updated


def _record_keys(db: Table) -> Iterator[list[tuple[str, str, str, str | None]]]:
    """(ImageKey, FailureTimestamp, RecordType, TypeShard) of every record (helper items have no RecordType)."""
    kwargs: dict[str, Any] = {"TableName": db.table, "FilterExpression": "attribute_exists(#r)",
                              "ProjectionExpression": "#k, #t, #r, #s",
                              "ExpressionAttributeNames": {"#k": "ImageKey", "#t": "FailureTimestamp",
                                                           "#r": "RecordType", "#s": SHARD_ATTRIBUTE}}
    while True:
        page = db.call("scan", **kwargs)
        yield [(i["ImageKey"]["S"], i["FailureTimestamp"]["S"], i["RecordType"]["S"],
                i.get(SHARD_ATTRIBUTE, {}).get("S")) for i in page.get("Items", [])]
        if not page.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _set_shard(db: Table, image_key: str, timestamp: str, shard: str) -> bool:
    try:
        db.call("update_item", TableName=db.table,
                    Key={"ImageKey": {"S": image_key}, "FailureTimestamp": {"S": timestamp}},
                    UpdateExpression="SET #s = :s", ConditionExpression="attribute_exists(#k)",
                    ExpressionAttributeNames={"#s": SHARD_ATTRIBUTE, "#k": "ImageKey"},
                    ExpressionAttributeValues={":s": {"S": shard}})
        return True
    except ClientError:  # deleted since the scan saw it: nothing to shard
        return False


def _indexes(db: Table) -> dict[str, str]:
    """Each index of the table and its status."""
    table = db.call("describe_table", TableName=db.table)["Table"]
    return {g["IndexName"]: g.get("IndexStatus", "ACTIVE") for g in table.get("GlobalSecondaryIndexes") or []}


def _change_indexes(db: Table, update: dict[str, Any], definitions: list[dict[str, str]] | None = None) -> None:
    """One index change (DynamoDB takes one at a time): after any change under way has settled."""
    db.wait_for_indexes()
    table = db.call("describe_table", TableName=db.table)["Table"]
    if "Create" in update and (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED") == "PROVISIONED" \
            and table.get("ProvisionedThroughput", {}).get("WriteCapacityUnits"):
        throughput = table["ProvisionedThroughput"]
        update["Create"]["ProvisionedThroughput"] = {k: throughput[k] for k in ("ReadCapacityUnits",
                                                                                "WriteCapacityUnits")}
    db.call("update_table", TableName=db.table, GlobalSecondaryIndexUpdates=[update],
                **({"AttributeDefinitions": definitions} if definitions else {}))
