"""Frames that read what they chart: projected Queries, compact dtypes, every record read once."""
from __future__ import annotations

import pandas as pd

from benchmarks.history import V2, Plan, records
from benchmarks.seed import write_items
from ocrlab import analysis
from ocrlab.analysis import costs
from ocrlab.analysis.frames import compact_frame

PLAN = Plan(regressed=3, fixed=6, other_ok=9, other_failed=3, unchanged=6, failures=60, results=60)


def _reads(store) -> list[tuple[str, dict]]:
    """(operation, parameters) of every read the store's client sends from now on."""
    seen: list[tuple[str, dict]] = []
    for operation in ("Query", "BatchGetItem", "GetItem", "Scan"):
        store.store.client.meta.events.register(f"provide-client-params.dynamodb.{operation}",
                                                lambda params, op=operation, **_: seen.append((op, params)))
    return seen


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Category columns as their values, to compare with a frame of plain text."""
    return frame.apply(lambda c: c.astype(object) if isinstance(c.dtype, pd.CategoricalDtype) else c)


def _projected(op: str, params: dict) -> bool:
    if op == "BatchGetItem":
        return all("ProjectionExpression" in wanted for wanted in params["RequestItems"].values())
    return "ProjectionExpression" in params


def test_failure_patterns_and_usage_read_only_their_attributes_once(store):
    write_items(store, records(PLAN), versions=())
    reads = _reads(store)
    failures = analysis.failures_frame(store, columns=analysis.PATTERN_COLUMNS)
    usage = analysis.records_frame(store, columns=analysis.USAGE_COLUMNS, failures=failures)
    queries = [(op, p) for op, p in reads if p.get("IndexName") != "ByVersionImage"]
    assert queries and all(op == "Query" and _projected(op, p) for op, p in queries)
    projected = {p["ExpressionAttributeNames"][n.strip()] for _, p in queries for n in p["ProjectionExpression"].split(",")}
    assert not projected & {"RawOCROutput", "StackTrace", "ParsedTimesheet", "ValidationErrors"}
    # Each record type read once: one Query per shard of its time-ordered index (ocrlab.store.shards).
    partitions = [p["ExpressionAttributeValues"][":p"]["S"] for _, p in queries]
    assert sorted(partitions) == [f"{kind}#{n:02d}" for kind in ("FAILED_IMAGE", "OCR_RESULT") for n in range(16)]

    assert len(failures) == PLAN.failures and len(usage) == PLAN.failures + PLAN.results
    assert usage["FailureTimestamp"].is_monotonic_increasing
    for name in ("FailureType", "ErrorCode", "OCRFullVersion", "FailureFingerprint", "ImageKey", "ErrorMessage"):
        assert isinstance(failures[name].dtype, pd.CategoricalDtype), name
    assert isinstance(usage["RecordType"].dtype, pd.CategoricalDtype)
    assert str(usage["InputTokens"].dtype) == "Int64" and usage["ProcessingTimeSeconds"].dtype == "float64"

    # The figures are those of full frames.
    full_failures, full_records = analysis.failures_frame(store), analysis.records_frame(store)
    for name, table in analysis.failure_patterns(failures).items():
        expected = analysis.failure_patterns(full_failures)[name]
        pd.testing.assert_frame_equal(_plain(table), _plain(expected), check_dtype=False, check_index_type=False,
                                      check_column_type=False, obj=name)
    pd.testing.assert_frame_equal(costs.token_costs(usage), costs.token_costs(full_records), check_dtype=False)
    pd.testing.assert_frame_equal(analysis.processing_times(usage), analysis.processing_times(full_records),
                                  check_index_type=False)


def test_a_version_is_read_by_key_with_a_projection(store):
    write_items(store, records(PLAN), versions=())
    reads = _reads(store)
    failures = analysis.failures_frame(store, ocr_version=V2, columns=analysis.PATTERN_COLUMNS)
    assert len(failures) and set(failures["OCRFullVersion"]) == {V2}
    gets = [p for op, p in reads if op == "BatchGetItem"]
    assert gets and all(_projected("BatchGetItem", p) for p in gets)


def test_compact_frame_of_nothing_has_the_columns_and_types():
    frame = compact_frame([], analysis.PATTERN_COLUMNS)
    assert list(frame.columns) == analysis.PATTERN_COLUMNS and frame.empty
    assert str(frame["FailureTimestamp"].dtype) == "datetime64[ns, UTC]" and str(frame["OutputTokens"].dtype) == "Int64"
    assert analysis.failure_patterns(frame)["by_type"].empty and costs.token_costs(frame).empty


def test_pattern_frames_are_those_read_one_after_the_other(store, store_through, dynalite):
    """The results are read by a worker process when the store can be opened there, by a thread for a store
    around a given client; either way the frames are those read one after the other."""
    write_items(store, records(PLAN), versions=())
    failures = analysis.failures_frame(store, columns=analysis.PATTERN_COLUMNS)
    expected = analysis.records_frame(store, columns=analysis.USAGE_COLUMNS, failures=failures)
    given = store_through(f"http://127.0.0.1:{dynalite.port}", store.table)
    assert store.reopen is not None and given.reopen is None
    for source in (store, given):
        got_failures, got_records = analysis.pattern_frames(source)
        pd.testing.assert_frame_equal(got_failures, failures)
        pd.testing.assert_frame_equal(_plain(got_records), _plain(expected))
