"""Reads of a sharded table: every shard of ByTypeShard queried at once, merged in time order.

The order is the one ByRecordType gives on one partition: FailureTimestamp, reversed for newest
first. Each shard is already in that order, so a k-way merge (heapq) keeps it without sorting
anything. Equal timestamps (two images failing in the same microsecond), which one index orders as
it likes, come in shard order, then the shard's own: a stable tie-break, the same on every read.

A page of the failure browser (`sharded_page`) fetches a few items from every shard at once, takes
the page from their merge, and asks again only of a shard that runs dry while the page still needs
its items. Its cursor holds each shard's own position (after the last item of that shard the page
kept), so the next page starts where this one stopped in every shard; a shard read to its end is
left out of it.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import TYPE_CHECKING, Any, Iterator

from ocrlab.domain import Record
from ocrlab.store.layout import BY_TYPE_SHARD
from ocrlab.store.queries import MAX_CALL_ITEMS, Cursor, FailurePage, FailureQuery, cursor_after, query_plan
from ocrlab.store.read_ahead import reading_ahead
from ocrlab.store.shards import shard_keys

if TYPE_CHECKING:
    from ocrlab.store.table import Table

SHARDS = "shards"  # the cursor's one entry: {shard: its ExclusiveStartKey, or None for its start}
_pool = ThreadPoolExecutor(32, thread_name_prefix="ocrlab-shard")


def order(record: Record) -> str:
    return record["FailureTimestamp"]


def merged_records(db: Table, record_type: str, count: int, arguments: dict[str, Any],
                   newest_first: bool) -> Iterator[Record]:
    """The records of every shard of `record_type`, merged in time order. `arguments` are a Query of
    ByRecordType (key condition on `#p` = `:p`), asked of each shard instead; every shard's pages are
    read ahead by its own thread, all starting at once."""
    from ocrlab.store.table import as_records, deserialize
    streams = []
    for shard in shard_keys(record_type, count):
        shard_arguments = {**arguments, "IndexName": BY_TYPE_SHARD.name,
                           "ExpressionAttributeNames": {**arguments["ExpressionAttributeNames"],
                                                        "#p": BY_TYPE_SHARD.hash_key},
                           "ExpressionAttributeValues": {**arguments["ExpressionAttributeValues"],
                                                         ":p": {"S": shard}}}
        streams.append(reading_ahead(db.query_pages(**shard_arguments), depth=2))
    try:
        yield from heapq.merge(*(as_records(map(deserialize, chain.from_iterable(s))) for s in streams), key=order,
                               reverse=newest_first)
    finally:
        for stream in streams:
            stream.close()  # type: ignore[attr-defined]


class _Shard:
    """One shard's part in a page: what was fetched and not yet taken, and where to go on from."""

    def __init__(self, name: str, start: Cursor | None) -> None:
        self.name = name
        self.next_start = start     # ExclusiveStartKey of the next fetch
        self.resume = start         # where the next page must start for nothing to be lost
        self.items: deque[Record] = deque()
        self.done = False           # nothing after what was fetched

    def position(self) -> Cursor | None:
        # Nothing pending: everything up to the last key evaluated was taken or did not match.
        return self.resume if self.items else self.next_start


def sharded_page(db: Table, query: FailureQuery, count: int, limit: int, cursor: Cursor | None,
                 budget: int) -> FailurePage:
    """One page of the failures `query` selects, from every shard, in the order of one index."""
    from ocrlab.store.table import as_records, deserialize
    names = shard_keys("FAILED_IMAGE", count)
    positions: dict[str, Any] = cursor[SHARDS] if cursor else dict.fromkeys(names)
    shards = [_Shard(name, positions[name]) for name in names if name in positions]
    page = FailurePage([], cursor, query=query)
    plans = {s.name: query_plan(query, s.name) for s in shards}
    key_attributes = plans[shards[0].name][1] if shards else ()

    def fetch(shard: _Shard, limit: int) -> int:
        arguments = {**plans[shard.name][2], "TableName": db.table, "Limit": limit}
        if shard.next_start:
            arguments["ExclusiveStartKey"] = shard.next_start
        reply = db.call("query", **arguments)
        shard.items.extend(as_records(deserialize(raw) for raw in reply.get("Items", [])))
        shard.next_start = reply.get("LastEvaluatedKey")
        shard.done = not shard.next_start
        return int(reply.get("ScannedCount", 0))

    pick = max if query.newest_first else min
    while len(page.records) < limit:
        dry = [s for s in shards if not s.items and not s.done]
        if dry:
            if page.examined >= budget:
                page.partial = True
                break
            wanted = limit - len(page.records)
            # A shard holds about 1/count of a page; twice that spares most second rounds. A filter
            # reads ahead as far as the budget allows, shared among the shards asked.
            if query.filtered:
                each = max(math.ceil(wanted / len(shards)), min(MAX_CALL_ITEMS, budget - page.examined) // len(dry), 1)
            else:
                each = max(math.ceil(2 * wanted / len(shards)), 4)
            page.examined += sum(_pool.map(lambda s: fetch(s, each), dry))
            page.calls += len(dry)
            continue
        ready = [s for s in shards if s.items]
        if not ready:
            break
        shard = pick(ready, key=lambda s: order(s.items[0]))
        record = shard.items.popleft()
        page.records.append(record)
        shard.resume = cursor_after(record, key_attributes)
    left = {s.name: s.position() for s in shards if s.items or not s.done}
    page.cursor = {SHARDS: left} if left else None
    return page
