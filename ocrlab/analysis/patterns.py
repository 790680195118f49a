"""Analysis: the store's records as pandas frames, failure patterns and processing times.

Analysis reads the store (always through its Queries) and never writes back. Frames have a fixed
set of leading columns, so an empty store gives an empty frame with the same columns, never a
KeyError downstream. Given `columns`, a frame reads only those attributes (a ProjectionExpression:
no raw output or stack trace crosses the wire) into compact dtypes (ocrlab.analysis.frames); PATTERN_COLUMNS
and USAGE_COLUMNS are what the failure patterns, token costs and processing times need, and
`pattern_frames` reads both with each record read once. Charts are in ocrlab.reports.charts, token
costs in ocrlab.analysis.costs.
"""
from __future__ import annotations

import datetime as dt
import heapq
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping, cast

from ocrlab.analysis.frames import FLOAT_COLUMNS, INT_COLUMNS, TIME_COLUMNS, compact_frame
from ocrlab.errors import MissingDependency
from ocrlab.records import FAILED_IMAGE, OCR_RESULT, utc_since
from ocrlab.store.export import COLUMNS as EXPORT_COLUMNS
from ocrlab.store.export import write_csv
from ocrlab.store.failure_log import iter_failed_images
from ocrlab.store.spooling import SpoolingStore
from ocrlab.version import full_versions
from ocrlab.worker import Running

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - pandas is in the analysis extra
    raise MissingDependency(exc.name or "pandas", "analysis") from exc

FAILURE_COLUMNS = EXPORT_COLUMNS + ["OCRDescription", "S3Region", "FailureFingerprint", "RecordId",
                                    "RecordType"]
RESULT_COLUMNS = ["ImageKey", "FailureTimestamp", "RecordType", "OCRVersion", "OCRBuildDate", "OCRDescription",
                  "OCRFullVersion", "ModelId", "ProcessingTimeSeconds", "InputTokens", "OutputTokens",
                  "ImageSize", "S3Bucket", "S3Region", "CloudWatchLogStream", "RawOCROutput",
                  "ParsedTimesheet", "RecordId"]
# The latest outcome of each image: what happened first, then the evidence.
LATEST_COLUMNS = ["ImageKey", "OCRFullVersion", "Outcome", "FailureTimestamp", "RecordType", "FailureType",
                  "ErrorCode", "ErrorMessage", "ModelId", "ProcessingTimeSeconds", "InputTokens",
                  "OutputTokens", "AttemptNumber", "ValidationErrors", "FailureFingerprint",
                  "ParsedTimesheet", "RawOCROutput"]
# What token costs and processing times read of every record (failures and results).
USAGE_COLUMNS = ["ImageKey", "FailureTimestamp", "RecordType", "OCRFullVersion", "ModelId", "InputTokens",
                 "OutputTokens", "ProcessingTimeSeconds"]
# What failure patterns read of every failure (and the usage columns, so the failures are read once).
PATTERN_COLUMNS = USAGE_COLUMNS + ["FailureType", "ErrorCode", "FailureFingerprint", "ErrorMessage"]
OK = "OK"

# --- frames ------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """DynamoDB values as pandas-friendly ones: Decimal -> float, sets -> sorted lists."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for name in TIME_COLUMNS:
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    for name in FLOAT_COLUMNS:
        if name in frame:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    for name in INT_COLUMNS:
        if name in frame:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").round().astype("Int64")
    return frame


def to_frame(records: Iterable[Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Records as a typed frame: `columns` first (present even when empty), then any extras."""
    rows = [{k: _plain(v) for k, v in r.items()} for r in records]
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    extras = [c for c in frame.columns if c not in columns]
    frame = frame.reindex(columns=columns + extras)
    # A column no record has stays object (a text column must not turn float64 because it is empty).
    frame = frame.astype({c: object for c in columns if frame[c].isna().all()})
    return _typed(frame).reset_index(drop=True)


def _since_text(since: str | dt.datetime | pd.Timestamp | None) -> str | None:
    """Stored timestamps compare as strings: `since` (any offset; a datetime, naive meaning UTC) as one."""
    return utc_since(since)


def _frame(records: Iterable[Mapping[str, Any]], columns: list[str] | None, everything: list[str]) -> pd.DataFrame:
    return to_frame(records, everything) if columns is None else compact_frame(records, columns)


def failures_frame(store: SpoolingStore, ocr_version: str | None = None, since: str | dt.datetime | None = None,
                   columns: list[str] | None = None) -> pd.DataFrame:
    """Every FAILED_IMAGE record (of one version, from `since` on), one row each, in time order: every
    attribute, or only `columns` (read with a projection, compact dtypes)."""
    records = iter_failed_images(store, ocr_version=ocr_version, since=_since_text(since), attributes=columns)
    return _frame(records, columns, FAILURE_COLUMNS)


def _results(store: SpoolingStore, ocr_version: str | None, since: str | None,
             columns: list[str] | None) -> Iterator[Mapping[str, Any]]:
    if ocr_version:  # grouped by image: put back in time order
        found = store.version_records(ocr_version, OCR_RESULT, columns)
        return iter(sorted((r for r in found if not since or r["FailureTimestamp"] >= since),
                           key=lambda r: r["FailureTimestamp"]))
    return store.records_by_type(OCR_RESULT, since=since, attributes=columns)


def results_frame(store: SpoolingStore, ocr_version: str | None = None, since: str | dt.datetime | None = None,
                  columns: list[str] | None = None) -> pd.DataFrame:
    """Every OCR_RESULT record (of one version, from `since` on), one row each, in time order."""
    return _frame(_results(store, ocr_version, _since_text(since), columns), columns, RESULT_COLUMNS)


def records_frame(store: SpoolingStore, ocr_version: str | None = None, since: str | dt.datetime | None = None,
                  columns: list[str] | None = None, failures: pd.DataFrame | None = None) -> pd.DataFrame:
    """Failures and results together, in time order: the input of token_costs and processing_times.

    `failures`, a failures frame already read with the same selection and at least `columns`, is
    reused: only the results are read then."""
    since_text = _since_text(since)
    if failures is not None:
        return _together(failures, results_frame(store, ocr_version, since_text, columns), columns)
    if ocr_version:
        records: Iterable[Mapping[str, Any]] = sorted(
            (r for r in store.version_records(ocr_version, attributes=columns)
             if not since_text or r["FailureTimestamp"] >= since_text), key=lambda r: r["FailureTimestamp"])
    else:
        records = heapq.merge(store.records_by_type(FAILED_IMAGE, since=since_text, attributes=columns),
                              store.records_by_type(OCR_RESULT, since=since_text, attributes=columns),
                              key=lambda r: r["FailureTimestamp"])
    return _frame(records, columns, FAILURE_COLUMNS + [c for c in RESULT_COLUMNS if c not in FAILURE_COLUMNS])


def pattern_frames(store: SpoolingStore, ocr_version: str | None = None,
                   since: str | dt.datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(failures, records) for the failure-patterns notebook: the failures with PATTERN_COLUMNS and every
    record (failures and results) with USAGE_COLUMNS. Each record is read once, with a projection, and
    the two record types at the same time: the results by a worker process (ocrlab.worker) when the
    store can be opened there (`store.reopen`), else by a thread."""
    since_text = _since_text(since)
    if store.reopen is not None:
        with Running(_results_of, store.reopen, ocr_version, since_text) as results:
            failures = failures_frame(store, ocr_version, since_text, PATTERN_COLUMNS)
            return failures, _together(failures, results.result(), USAGE_COLUMNS)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(results_frame, store, ocr_version, since_text, USAGE_COLUMNS)
        failures = failures_frame(store, ocr_version, since_text, PATTERN_COLUMNS)
        return failures, _together(failures, future.result(), USAGE_COLUMNS)


def _results_of(open_store: Callable[[], SpoolingStore], ocr_version: str | None, since: str | None) -> pd.DataFrame:
    """The results' usage frame, read in a worker process from the store opened there."""
    return results_frame(open_store(), ocr_version, since, USAGE_COLUMNS)


def _together(failures: pd.DataFrame, results: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    """Failures and results in one frame, in time order."""
    wanted = list(results.columns) if columns is not None else list(failures.columns)
    both = pd.concat([failures.reindex(columns=wanted), results.reindex(columns=wanted)], ignore_index=True)
    both = _categories(both, failures, results)
    return both.sort_values("FailureTimestamp", kind="stable").reset_index(drop=True)


def _categories(both: pd.DataFrame, *parts: pd.DataFrame) -> pd.DataFrame:
    """Category columns stay categories across a concat (whose categories differ part to part)."""
    for name in both.columns:
        if any(isinstance(p[name].dtype, pd.CategoricalDtype) for p in parts if name in p):
            both[name] = both[name].astype("category")
    return both


def _with_outcome(record: Mapping[str, Any]) -> dict[str, Any]:
    outcome = OK if record.get("RecordType") == OCR_RESULT else record.get("FailureType", FAILED_IMAGE)
    return {**record, "Outcome": outcome}


def latest_records(store: SpoolingStore, ocr_version: str | None = None) -> Iterator[dict[str, Any]]:
    """The latest outcome of each image under a version (a short one: each of its full versions;
    every version if None), with `Outcome`."""
    known = store.versions()
    for version in (full_versions(ocr_version, known) or [ocr_version]) if ocr_version else known:
        for record in store.latest_outcomes(version):
            yield _with_outcome(record)


def latest_frame(store: SpoolingStore, ocr_version: str) -> pd.DataFrame:
    """One row per image: its latest outcome under the version; `Outcome` is "OK" or the FailureType."""
    return to_frame(latest_records(store, ocr_version), LATEST_COLUMNS)


def export_results_csv(store: SpoolingStore, ocr_version: str | None = None,
                       output: str | Path | IO[str] = "-") -> int:
    """`ocrlab results`: the latest outcome per image as CSV (every version if none given).

    Streams (one version's pointers at a time), formula-safe like the failure export; returns rows.
    """
    return write_csv(latest_records(store, ocr_version), output, LATEST_COLUMNS + ["Extras"])


# --- failure patterns ----------------------------------------------------------------------------

MISSING = "(missing)"


def _filled(series: pd.Series) -> pd.Series:
    """Missing values as MISSING (a category column stays one)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        if not series.isna().any():
            return series
        return series.cat.add_categories([MISSING]).fillna(MISSING) if MISSING not in series.cat.categories \
            else series.fillna(MISSING)
    return series.astype(object).where(series.notna(), MISSING)


def _keys(failures: pd.DataFrame) -> pd.DataFrame:
    """The grouping columns, present and without NaN (older records may lack a field)."""
    wanted = ["ImageKey", "FailureTimestamp", "FailureType", "ErrorCode", "OCRFullVersion", "FailureFingerprint",
              "ErrorMessage"]
    frame = failures.reindex(columns=list(dict.fromkeys(wanted + list(failures.columns))))
    for name in ("FailureType", "ErrorCode", "OCRFullVersion", "FailureFingerprint", "ErrorMessage"):
        frame[name] = _filled(frame[name])
    if not pd.api.types.is_datetime64_any_dtype(frame["FailureTimestamp"]):
        frame = _typed(frame)
    return frame


def _crosstab(frame: pd.DataFrame, index: str | pd.Series, columns: str) -> pd.DataFrame:
    """Counts of index x columns, zeros filled; an empty frame stays an empty (int) table."""
    rows = frame[index] if isinstance(index, str) else index
    if frame.empty:
        return pd.DataFrame(dtype="int64").rename_axis(index=cast(str, rows.name), columns=columns)  # a column's name
    table = frame.groupby([rows, frame[columns]], observed=True).size().unstack(fill_value=0)
    return _labels(table.astype("int64")).sort_index().sort_index(axis=1).rename_axis(columns=columns)


PATTERNS = ("by_type", "by_version", "by_error_code", "by_fingerprint", "over_time")


def failure_patterns(failures: pd.DataFrame, freq: str = "D",
                     only: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """How failures group: by_type, by_version (version x type), by_error_code, by_fingerprint
    (count, images, first/last seen, type, code, example message and image) and over_time
    (period x type counts, every period from the first to the last failure, periods in UTC);
    `only` some of them (a chart computes just its own)."""
    f = _keys(failures)
    builders = {"by_type": lambda: _by_type(f), "by_version": lambda: _crosstab(f, "OCRFullVersion", "FailureType"),
                "by_error_code": lambda: _by_code(f), "by_fingerprint": lambda: _by_fingerprint(f),
                "over_time": lambda: _over_time(f, freq)}
    return {name: builders[name]() for name in (only or PATTERNS)}


def _labels(table: pd.DataFrame) -> pd.DataFrame:
    """Labels as plain text whatever the frame's dtypes (category or object), so results compare equal."""
    table.index = table.index.astype(object)
    table.columns = table.columns.astype(object)
    return table


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    """Most frequent first; ties by name."""
    return _labels(table).sort_index().sort_values("count", ascending=False, kind="stable")


def _by_type(f: pd.DataFrame) -> pd.DataFrame:
    by_type = f.groupby("FailureType", observed=True).agg(count=("ImageKey", "size"), images=("ImageKey", "nunique"))
    by_type["share"] = by_type["count"] / len(f) if len(f) else pd.Series(dtype=float)
    return _ranked(by_type)


def _by_code(f: pd.DataFrame) -> pd.DataFrame:
    by_code = f.groupby("ErrorCode", observed=True).agg(
        count=("ImageKey", "size"), images=("ImageKey", "nunique"),
        failure_types=("FailureType", lambda s: ", ".join(sorted(map(str, s.unique())))))
    return _ranked(by_code)


def _by_fingerprint(f: pd.DataFrame) -> pd.DataFrame:
    ordered = f.sort_values("FailureTimestamp", kind="stable")  # so "first" is the earliest example
    by_print = ordered.groupby("FailureFingerprint", observed=True).agg(
        count=("ImageKey", "size"), images=("ImageKey", "nunique"),
        first_seen=("FailureTimestamp", "min"), last_seen=("FailureTimestamp", "max"),
        failure_type=("FailureType", "first"), error_code=("ErrorCode", "first"),
        example_message=("ErrorMessage", "first"), example_image=("ImageKey", "first"))
    return _labels(by_print).sort_index().sort_values(["count", "first_seen"], ascending=[False, True], kind="stable")


def _over_time(f: pd.DataFrame, freq: str) -> pd.DataFrame:
    if f.empty:
        return pd.DataFrame(dtype="int64", index=pd.DatetimeIndex([], tz="UTC", name="period")) \
            .rename_axis(columns="FailureType")
    # Periods have no time zone: drop UTC before and put it back after.
    periods = f["FailureTimestamp"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(freq).rename("period")
    table = _crosstab(f, periods, "FailureType")
    table = table.reindex(pd.period_range(periods.min(), periods.max(), freq=periods.dt.freq), fill_value=0)
    table.index = cast(pd.PeriodIndex, table.index).to_timestamp().tz_localize("UTC").rename("period")
    return table


# --- time -------------------------------------------------------------------------------------

TIME_STATS = ["count", "mean", "p50", "p90", "p99", "max"]


def processing_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Seconds per image by OCR version and record type: count, mean, p50, p90, p99, max."""
    index = ["OCRFullVersion", "RecordType"]
    f = frame.reindex(columns=index + ["ProcessingTimeSeconds"])
    f = f.assign(seconds=pd.to_numeric(f["ProcessingTimeSeconds"], errors="coerce")).dropna(subset=["seconds"])
    if f.empty:
        return pd.DataFrame(columns=TIME_STATS, index=pd.MultiIndex.from_tuples([], names=index))
    g = f.groupby([f[name].astype(object) for name in index], observed=True)["seconds"]  # plain labels
    return pd.DataFrame({"count": g.size(), "mean": g.mean(), "p50": g.quantile(0.5), "p90": g.quantile(0.9),
                         "p99": g.quantile(0.99), "max": g.max()})
