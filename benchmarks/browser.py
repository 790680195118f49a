"""The failure browser's first page on 50,000 failures against a raw Query of the same page.

    python -m benchmarks.run --only browser

The table is seeded in the store's layout with batch writes (benchmarks.seed). Both sides read the
newest `page_size` failures from the ByRecordType index; the browser's side is what opening it costs
for the list (FailureBrowser: the version list and the first page, widgets built) and, separately,
the page read alone. Medians of `repeats` alternating runs.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from .seed import seed_failures, unsharded_store


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_browser(failures: int = 50_000, page_size: int = 25, repeats: int = 30) -> dict[str, Any]:
    from ocrlab.records import FAILED_IMAGE
    from ocrlab.store.queries import FailureQuery
    from ocrlab.widgets.browser import FailureBrowser
    store = unsharded_store("bench-browser")  # today's layout, as measured before the shards (benchmarks/shards.py)
    started = time.perf_counter()
    seed_failures(store, failures)
    seed_seconds = time.perf_counter() - started
    client, table = store.store.client, store.table

    def raw() -> Any:
        return client.query(TableName=table, IndexName="ByRecordType", Limit=page_size, ScanIndexForward=False,
                            KeyConditionExpression="#p = :p", ExpressionAttributeNames={"#p": "RecordType"},
                            ExpressionAttributeValues={":p": {"S": FAILED_IMAGE}})

    def page() -> Any:
        return store.failures_page(FailureQuery(), page_size)

    def browser() -> Any:
        return FailureBrowser(store, page_size=page_size)

    for warm in (raw, page, browser):
        warm()
    raw_s = _median_seconds(raw, repeats)
    page_s = _median_seconds(page, repeats)
    open_s = _median_seconds(browser, max(5, repeats // 3))
    assert [r["ImageKey"] for r in page().records] == [f"scans/2025/{i:06d}.png"
                                                       for i in range(failures - 1, failures - 1 - page_size, -1)]
    return {"failures": failures, "page_size": page_size, "seed_seconds": round(seed_seconds, 1),
            "raw_query_ms": round(raw_s * 1000, 2), "browser_page_ms": round(page_s * 1000, 2),
            "browser_open_ms": round(open_s * 1000, 2), "page_over_raw": round(page_s / raw_s, 3),
            "open_over_raw": round(open_s / raw_s, 3), "target": "page_over_raw <= 1.2",
            "met": page_s / raw_s <= 1.2}
