"""Table administration: create a table in this ocrlab's layout, check one, add what an older layout
lacks (in place). Plain functions over a Table: no record is read or written here."""
from __future__ import annotations

from ocrlab.errors import StoreUnavailable, TableMissing
from ocrlab.store.layout import LAYOUT, TableLayout
from ocrlab.store.shards import DEFAULT_SHARDS, write_count
from ocrlab.store.table import Table


def ensure_table(db: Table) -> bool:
    """Create the table and its indexes if missing; True if created. Safe to call any time.

    A table made by an older layout is an error that names `ocrlab adopt`.
    """
    try:
        check_table(db)
        return False
    except TableMissing:
        pass
    try:
        db.call("create_table", **LAYOUT.create_table_request(db.table))
    except StoreUnavailable as exc:
        if exc.code != "ResourceInUseException":  # another process created it first
            raise
    db.client.get_waiter("table_exists").wait(TableName=db.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    write_count(db, DEFAULT_SHARDS)
    db.forget_shards(DEFAULT_SHARDS)
    if LAYOUT.ttl_attribute:
        try:
            db.call("update_time_to_live", TableName=db.table, TimeToLiveSpecification={
                "AttributeName": LAYOUT.ttl_attribute, "Enabled": True})
        except StoreUnavailable as exc:
            if exc.code != "UnknownOperationException":  # dynalite: items never expire locally
                raise
    return True


def check_table(db: Table) -> None:
    """TableMissing unless the table exists (read paths never create one); an error naming
    `ocrlab adopt` if another writer or an older ocrlab made it."""
    missing = LAYOUT.missing_indexes(db.call("describe_table", TableName=db.table)["Table"])
    if missing:
        raise StoreUnavailable(f"table {db.table!r} lacks the index(es) {', '.join(i.name for i in missing)} "
                               f"of this ocrlab (the original failure logger's, or an older ocrlab's); "
                               f"run `ocrlab adopt --table {db.table}`", "OldLayout")


def migrate(db: Table, layout: TableLayout = LAYOUT) -> list[str]:
    """Add the indexes `layout` has and the table lacks, in place; the names of those made.

    DynamoDB (and the local database) add an index to a live table and backfill it; an index that
    carries fewer attributes than the layout's is dropped and made again (a projection cannot be
    changed in place). Records and helper items are left as they are; the move to the shards is
    ocrlab.store.shards'."""
    described = db.call("describe_table", TableName=db.table)["Table"]
    narrow = layout.narrow_indexes(described)
    remake = layout.missing_indexes(described) + narrow
    for index in narrow:
        db.call("update_table", TableName=db.table, GlobalSecondaryIndexUpdates=[{"Delete": {
            "IndexName": index.name}}])
        db.wait_for_indexes(gone=index.name)
    for index in remake:
        db.call("update_table", TableName=db.table, AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in (index.hash_key, index.range_key)],
            GlobalSecondaryIndexUpdates=[{"Create": index.request()}])
        db.wait_for_indexes()
    return [i.name for i in remake]
