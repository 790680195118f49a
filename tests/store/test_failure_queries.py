"""The failure browser's reads: pages, filters, cursors and bounded work, on a real dynalite table."""
from __future__ import annotations

import datetime as dt

import pytest

from benchmarks.seed import KINDS, VERSIONS, seed_failures
from ocrlab.store.queries import FailureQuery

N = 600


@pytest.fixture(scope="module")
def seeded(dynalite):
    from ocrlab.store import open_store
    store = open_store("failure-queries")
    return store, seed_failures(store, N)


def _keys(records):
    return [r["ImageKey"] for r in records]


def test_first_page_is_one_query_of_each_shard(seeded):
    store, items = seeded
    page = store.failures_page(FailureQuery(), limit=50)
    assert _keys(page.records) == _keys(items[::-1][:50])  # newest first
    # One Query of each shard, all at once, each of about twice its share of the page.
    shards = store.db.shards
    assert (page.calls, page.examined) == (shards, shards * 7) and page.cursor is not None


def test_pages_follow_the_cursor_to_the_end(seeded):
    store, items = seeded
    seen, cursor, pages = [], None, 0
    while True:
        page = store.failures_page(FailureQuery(newest_first=False), limit=250, cursor=cursor)
        seen += _keys(page.records)
        pages += 1
        cursor = page.cursor
        if not cursor:
            break
    assert seen == _keys(items) and pages <= 4


@pytest.mark.parametrize("query, expected", [
    (FailureQuery(failure_type="OCR_ERROR"), lambda i: KINDS[i % 5][0] == "OCR_ERROR"),
    (FailureQuery(ocr_version=VERSIONS[1]), lambda i: i % 2 == 1),
    (FailureQuery(ocr_version=VERSIONS[0], error_code="ValidationError"), lambda i: i % 10 == 0),
    (FailureQuery(text="Worker 123\n"), lambda i: i == 123),
    (FailureQuery(since="2025-10-01T00:01:40.000000Z", until="2025-10-01T00:01:50.000000Z"),
     lambda i: 100 <= i <= 110),
])
def test_filters_select_exactly_their_failures(seeded, query, expected):
    store, items = seeded
    page = store.failures_page(query, limit=N)
    assert _keys(page.records) == [r["ImageKey"] for i, r in enumerate(items) if expected(i)][::-1]


def test_a_filtered_page_continues_after_the_last_record_it_kept(seeded):
    """A call may return more matches than the page holds: the cursor points after the last one kept."""
    store, items = seeded
    query = FailureQuery(failure_type="PARSING_ERROR", newest_first=False)
    first = store.failures_page(query, limit=7)
    second = store.failures_page(query, limit=7, cursor=first.cursor)
    wanted = [r["ImageKey"] for r in items if r["FailureType"] == "PARSING_ERROR"]
    assert _keys(first.records) + _keys(second.records) == wanted[:14]


def test_fingerprint_filter_and_the_work_budget(seeded):
    store, items = seeded
    target = items[3]["FailureFingerprint"]
    wanted = [r["ImageKey"] for r in items if r["FailureFingerprint"] == target][::-1]
    assert _keys(store.failures_page(FailureQuery(fingerprint=target), limit=N).records) == wanted
    # With a budget smaller than the table the page stops early, says so, and can go on.
    page = store.failures_page(FailureQuery(fingerprint=target), limit=N, budget=100)
    assert page.partial and page.examined <= 1000 and page.cursor is not None
    rest = store.failures_page(FailureQuery(fingerprint=target), limit=N, cursor=page.cursor)
    assert _keys(page.records) + _keys(rest.records) == wanted


def test_image_latest_gives_every_version(store):
    from support.helpers import V1, V2

    from ocrlab.store.failure_log import log_failed_image
    log_failed_image(store, "a.png", "OCR_ERROR", "first", V1)
    log_failed_image(store, "a.png", "PARSING_ERROR", "second", V1)
    log_failed_image(store, "a.png", "OCR_ERROR", "other version", V2)
    latest = {r["OCRFullVersion"]: r for r in store.image_latest("a.png")}
    assert set(latest) == {V1.full_version, V2.full_version}
    assert latest[V1.full_version]["ErrorMessage"] == "second" and latest[V1.full_version]["RecordType"] == "FAILED_IMAGE"
    assert dt.datetime.fromisoformat(latest[V2.full_version]["FailureTimestamp"].replace("Z", "+00:00"))
