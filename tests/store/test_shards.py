"""The sharded layout on a real dynalite: every read of a sharded table returns exactly what the
same records give through ByRecordType (a table not yet sharded), and `ocrlab db migrate` (shard_table)
moves such a table in place to one equal to a table made sharded, resumably."""
from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from pandas.testing import assert_frame_equal

from benchmarks.seed import KINDS, VERSIONS, failure, write_items
from ocrlab.records import FAILED_IMAGE, OCR_RESULT
from ocrlab.store.layout import BY_RECORD_TYPE, LAYOUT, SHARD_ATTRIBUTE, UNSHARDED_LAYOUT
from ocrlab.store.queries import FailureQuery
from ocrlab.store.table import deserialize, serialize

N_FAILURES, N_RESULTS = 240, 120
START = dt.datetime(2025, 10, 1, tzinfo=dt.timezone.utc)


def _records() -> list[dict[str, Any]]:
    """Failures of 5 kinds and 2 versions, and results of the same images under both versions."""
    items = [failure(i, START) for i in range(N_FAILURES)]
    for i in range(N_RESULTS):
        result = {k: v for k, v in failure(i, START + dt.timedelta(hours=1)).items() if v is not None
                  and k not in ("FailureType", "ErrorCode", "ErrorMessage", "FailureFingerprint", "AttemptNumber")}
        result.update(RecordType=OCR_RESULT, RecordId=f"ok-{i}", ParsedTimesheet='{"employee_name": "x"}',
                      InputTokens=100 + i, OutputTokens=50)
        items.append(result)
    return items


def _unsharded(store: Any, name: str) -> Any:
    """A table of the layout before the shards (ByRecordType), as an older ocrlab made it."""
    from ocrlab.store import open_store
    client = store.store.client
    client.create_table(**UNSHARDED_LAYOUT.create_table_request(name))
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
    return open_store(name, create=False)


def _write_raw(store: Any, items: list[dict[str, Any]]) -> None:
    """Records as an older ocrlab wrote them: no TypeShard."""
    client = store.store.client
    for item in items:
        client.put_item(TableName=store.table, Item=serialize({k: v for k, v in item.items() if k != SHARD_ATTRIBUTE}))


@pytest.fixture(scope="module")
def pair(dynalite):
    """(sharded, unsharded) tables holding the same records."""
    from ocrlab.store import open_store
    sharded = open_store("shards-sharded")
    unsharded = _unsharded(sharded, "shards-unsharded")
    records = _records()
    for store in (sharded, unsharded):
        write_items(store, records)
    assert (sharded.db.shards, unsharded.db.shards) == (16, 0)
    return sharded, unsharded


def _keys(records):
    return [(r["ImageKey"], r["FailureTimestamp"]) for r in records]


@pytest.mark.parametrize("record_type", [FAILED_IMAGE, OCR_RESULT])
@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("since, until", [(None, None), ("2025-10-01T00:02:00.000000Z", None),
                                          (None, "2025-10-01T00:03:00.000000Z"),
                                          ("2025-10-01T00:01:00.000000Z", "2025-10-01T01:01:00.000000Z")])
def test_records_by_type_are_those_of_one_index(pair, record_type, newest_first, since, until):
    sharded, unsharded = pair
    got = list(sharded.records_by_type(record_type, since, until, newest_first))
    want = list(unsharded.records_by_type(record_type, since, until, newest_first))
    assert _keys(got) == _keys(want) and got == want
    assert want or until == "2025-10-01T00:03:00.000000Z" and record_type == OCR_RESULT


def test_a_projection_reads_the_same_attributes(pair):
    sharded, unsharded = pair
    columns = ["FailureType", "OCRFullVersion"]
    assert list(sharded.records_by_type(attributes=columns)) == list(unsharded.records_by_type(attributes=columns))


def _all_pages(store, query, limit, budget=None):
    """The pages up to the end; an empty last one left out (one index gives it when its last page is
    exactly full: DynamoDB cannot tell it is the end; the shards know theirs)."""
    pages, cursor = [], None
    while True:
        page = store.failures_page(query, limit, cursor, *([budget] if budget else []))
        pages.append(_keys(page.records))
        cursor = page.cursor
        if cursor is None:
            return pages[:-1] if len(pages) > 1 and not pages[-1] else pages


@pytest.mark.parametrize("query", [
    FailureQuery(), FailureQuery(newest_first=False), FailureQuery(failure_type="OCR_ERROR"),
    FailureQuery(ocr_version=VERSIONS[1], newest_first=False),
    FailureQuery(ocr_version=VERSIONS[0], error_code=KINDS[0][1]), FailureQuery(text="Worker 123\n"),
    FailureQuery(since="2025-10-01T00:01:40.000000Z", until="2025-10-01T00:03:50.000000Z", failure_type="PARSING_ERROR"),
])
@pytest.mark.parametrize("limit", [13, 50, 1000])
def test_pages_and_cursors_are_those_of_one_index(pair, query, limit):
    sharded, unsharded = pair
    got, want = _all_pages(sharded, query, limit), _all_pages(unsharded, query, limit)
    assert got == want


def test_a_budget_bounded_page_goes_on_to_the_same_failures(pair):
    sharded, unsharded = pair
    target = failure(3, START)["FailureFingerprint"]
    query = FailureQuery(fingerprint=target)
    page = sharded.failures_page(query, 20, budget=30)
    assert page.partial and page.cursor is not None and page.examined < 100
    flat = [k for p in _all_pages(sharded, query, 20, budget=30) for k in p]
    assert flat == [k for p in _all_pages(unsharded, query, 500) for k in p] and flat


def test_export_statistics_frames_and_comparison_are_the_same(pair):
    from ocrlab.analysis.compare import compare_versions
    from ocrlab.analysis.patterns import pattern_frames, records_frame
    from ocrlab.store.failure_log import export_failed_images_csv, get_failure_statistics
    sharded, unsharded = pair
    csvs = []
    for store in pair:
        out = io.StringIO()
        export_failed_images_csv(store, out)
        csvs.append(out.getvalue())
    assert csvs[0] == csvs[1] and SHARD_ATTRIBUTE not in csvs[0] and csvs[0].count("\r\n") == N_FAILURES + 1
    now = dt.datetime(2025, 10, 1, 12, tzinfo=dt.timezone.utc)
    assert get_failure_statistics(sharded) == get_failure_statistics(unsharded)
    from ocrlab.store.stats import failure_statistics
    assert failure_statistics(sharded.records_by_type(), now) == failure_statistics(unsharded.records_by_type(), now)
    assert_frame_equal(records_frame(sharded), records_frame(unsharded))
    for got, want in zip(pattern_frames(sharded), pattern_frames(unsharded)):
        assert_frame_equal(got, want)
    assert compare_versions(sharded, *VERSIONS).to_dict() == compare_versions(unsharded, *VERSIONS).to_dict()


def _table_state(store) -> tuple[list[dict[str, Any]], list[str]]:
    """Every item (Scan: a test's look, not a read ocrlab makes) and the index names."""
    client, items, kwargs = store.store.client, [], {"TableName": store.table}
    while True:
        page = client.scan(**kwargs)
        items += [deserialize(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    indexes = client.describe_table(TableName=store.table)["Table"]["GlobalSecondaryIndexes"]
    return sorted(items, key=lambda i: (i["ImageKey"], i["FailureTimestamp"])), sorted(i["IndexName"] for i in indexes)


def _fresh_and_old(store, table_name, records):
    from ocrlab.store import open_store
    fresh = open_store(f"{table_name}-fresh")
    write_items(fresh, records)
    old = _unsharded(store, f"{table_name}-old")
    _write_raw(old, records)
    write_items(old, [], VERSIONS)
    return fresh, old


def test_a_migrated_table_equals_one_made_sharded(store, table_name):
    from ocrlab.store.shards import shard_table
    records = _records()[::5]
    fresh, old = _fresh_and_old(store, table_name, records)
    assert old.db.shards == 0 and list(old.records_by_type()) != []  # read through ByRecordType meanwhile
    assert shard_table(old.db) == len(records)
    assert _table_state(old) == _table_state(fresh)
    assert _table_state(fresh)[1] == sorted(i.name for i in LAYOUT.indexes)
    assert old.db.shards == 16 and list(old.records_by_type()) == list(fresh.records_by_type())
    assert shard_table(old.db) == 0 and _table_state(old) == _table_state(fresh)  # again: nothing to do


def test_an_interrupted_migration_run_again_ends_the_same(store, table_name):
    from ocrlab.store import open_store
    from ocrlab.store.shards import _change_indexes, backfill, shard_table

    class Killed(Exception):
        pass

    def killed(updated: int) -> None:
        raise Killed
    records = _records()[::5]
    fresh, old = _fresh_and_old(store, table_name, records)
    with pytest.raises(Killed):  # stopped after the first page of updates
        shard_table(old.db, progress=killed)
    # Stopped after the index was made, before the count was written: still read through ByRecordType, all of it.
    backfill(old.db, 16)
    _change_indexes(old.db, {"Create": LAYOUT.index("ByTypeShard").request()},
                    [{"AttributeName": SHARD_ATTRIBUTE, "AttributeType": "S"}])
    old.db.wait_for_indexes()
    again = open_store(old.table, create=False)
    assert again.db.shards == 0 and _keys(again.records_by_type()) == _keys(fresh.records_by_type())
    shard_table(again.db)
    assert _table_state(again) == _table_state(fresh)
    assert open_store(old.table, create=False).db.shards == 16
    tables = store.store.client.list_tables()["TableNames"]
    assert not [t for t in tables if t.startswith(table_name) and t not in (table_name, fresh.table, old.table)]  # no stray tables


def test_helper_items_never_match_a_scan_on_record_type(store):
    """The original failure logger's tools Scan with a filter on RecordType: only records match."""
    from ocrlab.store.failure_log import log_failed_image
    for n in range(3):
        log_failed_image(store, f"img-{n}.png", "OCR_ERROR", "model error")
    client = store.store.client
    matched = client.scan(TableName=store.table, FilterExpression="RecordType = :r",
                          ExpressionAttributeValues={":r": {"S": FAILED_IMAGE}})["Items"]
    assert len(matched) == 3 and all(i["RecordType"]["S"] == FAILED_IMAGE for i in matched)
    items, _ = _table_state(store)
    helpers = [i for i in items if i["FailureTimestamp"].startswith("#")]
    assert {h["ImageKey"] for h in helpers} >= {"#TABLE", "#VERSIONS", "img-0.png"}
    keyed = {"RecordType", SHARD_ATTRIBUTE, *(a for i in LAYOUT.indexes for a in (i.hash_key,))}
    assert not [h for h in helpers if keyed & h.keys()]


def test_a_table_not_yet_sharded_is_written_and_read_as_before(store, table_name):
    from ocrlab.store.failure_log import get_all_failed_images, log_failed_image
    old = _unsharded(store, f"{table_name}-old")
    indexes: list[str] = []
    old.store.client.meta.events.register("provide-client-params.dynamodb.Query",
                                          lambda params, **_: indexes.append(params.get("IndexName")))
    for n in range(5):
        log_failed_image(old, f"img-{n}.png", "OCR_ERROR", "model error")
    assert [r["ImageKey"] for r in get_all_failed_images(old)] == [f"img-{n}.png" for n in range(5)]
    page = old.failures_page(FailureQuery(newest_first=False), 3)
    rest = old.failures_page(FailureQuery(newest_first=False), 3, page.cursor)
    assert [r["ImageKey"] for r in page.records + rest.records] == [f"img-{n}.png" for n in range(5)]
    assert BY_RECORD_TYPE.name in indexes and "ByTypeShard" not in indexes
    # Written with their shard all the same: ready for the move, which then updates none of them.
    from ocrlab.store.shards import shard_table
    assert all(SHARD_ATTRIBUTE in r for r in get_all_failed_images(old)) and shard_table(old.db) == 0


@pytest.mark.parametrize("since", [None, "2025-10-01T00:01:00.000000Z"])
def test_records_by_type_end_before_until_whether_or_not_since_is_given(pair, since):
    for store in pair:
        every = list(store.records_by_type())
        until = every[len(every) // 2]["FailureTimestamp"]  # a record stands exactly at the bound
        got = list(store.records_by_type(since=since, until=until))
        want = [r for r in every if (since is None or r["FailureTimestamp"] >= since) and r["FailureTimestamp"] < until]
        assert got and _keys(got) == _keys(want)
