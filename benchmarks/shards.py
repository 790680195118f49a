"""The sharded layout's reads against today's (one ByRecordType partition), in the same process.

The same records (failures and results) are written into a table of each layout; the export, the
statistics and the frames of each are timed in interleaved rounds (best of each). Each ratio is
sharded over unsharded: the target is no slower than 1.1x. That the shards are read at once is
measured too: the most Queries in flight at one moment during the sharded export. The failure
browser's first page is timed as well (no target: a reading, the browser's own is `browser`).
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from typing import Any

from .run import best_of


class InFlight:
    """The most Queries a client had under way at once (botocore's before/after-call hooks)."""

    def __init__(self, client: Any) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb.Query", self._start)
        client.meta.events.register("after-call.dynamodb.Query", self._end)

    def _start(self, **_: Any) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def _end(self, **_: Any) -> None:
        with self._lock:
            self.now -= 1


def _records(failures: int, results: int) -> Any:
    from benchmarks.seed import failure
    start = dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc)
    yield from (failure(i, start) for i in range(failures))
    for i in range(results):
        item = {k: v for k, v in failure(failures + i, start).items() if v is not None and k not in (
            "FailureType", "ErrorCode", "ErrorMessage", "FailureFingerprint", "AttemptNumber")}
        item.update(RecordType="OCR_RESULT", ParsedTimesheet='{"employee_name": "x"}', InputTokens=1500,
                    OutputTokens=400, ImageKey=f"ok/{i:06d}.png")
        yield item


def bench_sharded_reads(records: int = 120_000, rounds: int = 3) -> dict[str, Any]:
    """Export, statistics and frames of `records` records (half failures, half results), sharded over today's."""
    from benchmarks.seed import write_items
    from ocrlab.analysis.patterns import pattern_frames
    from ocrlab.store import open_store
    from ocrlab.store.failure_log import export_failed_images_csv, get_failure_statistics
    from ocrlab.store.layout import UNSHARDED_LAYOUT
    sharded = open_store("bench-sharded")
    client = sharded.store.client
    client.create_table(**UNSHARDED_LAYOUT.create_table_request("bench-unsharded"))
    client.get_waiter("table_exists").wait(TableName="bench-unsharded", WaiterConfig={"Delay": 0.2})
    unsharded = open_store("bench-unsharded", create=False)
    failures = records // 2
    for store in (sharded, unsharded):
        write_items(store, _records(failures, records - failures), threads=8)
    assert (sharded.db.shards, unsharded.db.shards) == (16, 0)

    def export(store: Any) -> int:
        with open(os.devnull, "w", encoding="utf-8", newline="") as sink:
            return export_failed_images_csv(store, sink)

    def frames(store: Any) -> int:
        failed, everything = pattern_frames(store)
        return len(failed) + len(everything)
    steps = {"export": export, "statistics": lambda s: get_failure_statistics(s)["total_failures"], "frames": frames}
    figures: dict[str, Any] = {"records": records, "failures": failures, "shards": sharded.db.shards,
                               "rounds": rounds}
    met = True
    for name, step in steps.items():
        (today_s, today), (sharded_s, got) = best_of(rounds, lambda _: step(unsharded), lambda _: step(sharded))
        assert today == got, (name, today, got)
        ratio = sharded_s / today_s
        figures[name] = {"unsharded_s": round(today_s, 3), "sharded_s": round(sharded_s, 3),
                         "sharded_over_unsharded": round(ratio, 3), "rows": got}
        met = met and ratio <= 1.1
    # The failure browser's first page (25 rows): one Query of 25 against one of about 4 per shard, at once.
    from ocrlab.store.queries import FailureQuery
    first = [best_of(30, lambda _: store.failures_page(FailureQuery(), 25))[0][0] for store in (unsharded, sharded)]
    figures["browser_first_page"] = {"unsharded_ms": round(first[0] * 1000, 2), "sharded_ms": round(first[1] * 1000, 2),
                                     "sharded_over_unsharded": round(first[1] / first[0], 3)}
    in_flight = InFlight(client)
    export(sharded)
    figures["queries_in_flight_sharded_export"] = in_flight.most
    figures.update(target="sharded_over_unsharded <= 1.1 for each; shards read at once (queries in flight > 1)",
                   met=met and in_flight.most > 1)
    return figures
