"""Analysis: the store's records as pandas frames, failure patterns, token costs, timings, charts.

Analysis reads the store (always through its Queries) and never writes back. Every function that
takes `table` accepts a table name or an open Store. Frames have a fixed set of leading columns,
so an empty store gives an empty frame with the same columns, never a KeyError downstream.

Charts are built on `matplotlib.figure.Figure` directly, not pyplot: no global figure registry
(nothing leaks in long notebook sessions), no GUI backend, and a notebook still displays them.
"""
from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

import numpy as np

from .errors import MissingDependency
from .export import COLUMNS as EXPORT_COLUMNS
from .export import write_csv
from .failure_log import iter_failed_images
from .records import FAILED_IMAGE, OCR_RESULT, format_timestamp
from .recorder import get_store
from .store import Store
from .taxonomy import FailureType

try:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
except ImportError as exc:  # pragma: no cover - pandas and matplotlib are in the analysis extra
    raise MissingDependency(exc.name or "pandas", "analysis") from exc

TableLike = str | Store

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
FLOAT_COLUMNS = ("ProcessingTimeSeconds",)
INT_COLUMNS = ("InputTokens", "OutputTokens", "ImageSize", "AttemptNumber")
TIME_COLUMNS = ("FailureTimestamp",)
OK = "OK"

# One colour per failure type, the same in every chart.
TYPE_COLORS = dict(zip([t.value for t in FailureType], ["#8c564b", "#d62728", "#ff7f0e", "#9467bd", "#1f77b4"]))


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
    """Stored timestamps compare as strings; a datetime (naive means UTC) becomes one."""
    if since is None or isinstance(since, str):
        return since
    return format_timestamp(pd.Timestamp(since).to_pydatetime())


def failures_frame(table: TableLike, ocr_version: str | None = None,
                   since: str | dt.datetime | None = None) -> pd.DataFrame:
    """Every FAILED_IMAGE record (of one version, from `since` on), one row each, in time order."""
    return to_frame(iter_failed_images(get_store(table), ocr_version=ocr_version, since=_since_text(since)),
                    FAILURE_COLUMNS)


def results_frame(table: TableLike, ocr_version: str | None = None) -> pd.DataFrame:
    """Every OCR_RESULT record (of one version), one row each, in time order."""
    store = get_store(table)
    records = store.version_records(ocr_version, OCR_RESULT) if ocr_version else store.records_by_type(OCR_RESULT)
    return to_frame(records, RESULT_COLUMNS)


def records_frame(table: TableLike, ocr_version: str | None = None) -> pd.DataFrame:
    """Failures and results together, in time order: the input of token_costs and processing_times."""
    store = get_store(table)
    if ocr_version:
        records: Iterable[dict[str, Any]] = store.version_records(ocr_version)  # both types, time order
    else:
        records = heapq.merge(store.records_by_type(FAILED_IMAGE), store.records_by_type(OCR_RESULT),
                              key=lambda r: r["FailureTimestamp"])
    return to_frame(records, FAILURE_COLUMNS + [c for c in RESULT_COLUMNS if c not in FAILURE_COLUMNS])


def _with_outcome(record: dict[str, Any]) -> dict[str, Any]:
    outcome = OK if record.get("RecordType") == OCR_RESULT else record.get("FailureType", FAILED_IMAGE)
    return {**record, "Outcome": outcome}


def latest_records(table: TableLike, ocr_version: str | None = None) -> Iterator[dict[str, Any]]:
    """The latest outcome of each image under a version (every version if None), with `Outcome`."""
    store = get_store(table)
    for version in [ocr_version] if ocr_version else store.versions():
        for record in store.latest_outcomes(version):
            yield _with_outcome(record)


def latest_frame(table: TableLike, ocr_version: str) -> pd.DataFrame:
    """One row per image: its latest outcome under the version; `Outcome` is "OK" or the FailureType."""
    return to_frame(latest_records(table, ocr_version), LATEST_COLUMNS)


def export_results_csv(table: TableLike, ocr_version: str | None = None,
                       output: str | Path | IO[str] = "-") -> int:
    """`ocrlab results`: the latest outcome per image as CSV (every version if none given).

    Streams (one version's pointers at a time), formula-safe like the failure export; returns rows.
    """
    return write_csv(latest_records(table, ocr_version), output, LATEST_COLUMNS + ["Extras"])


# --- failure patterns ----------------------------------------------------------------------------

def _keys(failures: pd.DataFrame) -> pd.DataFrame:
    """The grouping columns, present and without NaN (older records may lack a field)."""
    frame = failures.reindex(columns=list(dict.fromkeys(FAILURE_COLUMNS + list(failures.columns))))
    for name in ("FailureType", "ErrorCode", "OCRFullVersion", "FailureFingerprint", "ErrorMessage"):
        frame[name] = frame[name].astype(object).where(frame[name].notna(), "(missing)")
    if not pd.api.types.is_datetime64_any_dtype(frame["FailureTimestamp"]):
        frame = _typed(frame)
    return frame


def _crosstab(frame: pd.DataFrame, index: str | pd.Series, columns: str) -> pd.DataFrame:
    """Counts of index x columns, zeros filled; an empty frame stays an empty (int) table."""
    rows = frame[index] if isinstance(index, str) else index
    if frame.empty:
        return pd.DataFrame(dtype="int64").rename_axis(index=rows.name, columns=columns)
    table = frame.groupby([rows, frame[columns]]).size().unstack(fill_value=0)
    return table.astype("int64").rename_axis(columns=columns)


def failure_patterns(failures: pd.DataFrame, freq: str = "D") -> dict[str, pd.DataFrame]:
    """How failures group: by_type, by_version (version x type), by_error_code, by_fingerprint
    (count, images, first/last seen, type, code, example message and image) and over_time
    (period x type counts, every period from the first to the last failure, periods in UTC)."""
    f = _keys(failures)
    total = len(f)

    by_type = f.groupby("FailureType").agg(count=("ImageKey", "size"), images=("ImageKey", "nunique"))
    by_type["share"] = by_type["count"] / total if total else pd.Series(dtype=float)
    by_type = by_type.sort_values("count", ascending=False)

    by_code = f.groupby("ErrorCode").agg(count=("ImageKey", "size"), images=("ImageKey", "nunique"),
                                         failure_types=("FailureType", lambda s: ", ".join(sorted(s.unique()))))
    by_code = by_code.sort_values("count", ascending=False)

    ordered = f.sort_values("FailureTimestamp", kind="stable")  # so "first" is the earliest example
    by_print = ordered.groupby("FailureFingerprint").agg(
        count=("ImageKey", "size"), images=("ImageKey", "nunique"),
        first_seen=("FailureTimestamp", "min"), last_seen=("FailureTimestamp", "max"),
        failure_type=("FailureType", "first"), error_code=("ErrorCode", "first"),
        example_message=("ErrorMessage", "first"), example_image=("ImageKey", "first"))
    by_print = by_print.sort_values(["count", "first_seen"], ascending=[False, True])

    return {"by_type": by_type, "by_version": _crosstab(f, "OCRFullVersion", "FailureType"),
            "by_error_code": by_code, "by_fingerprint": by_print, "over_time": _over_time(f, freq)}


def _over_time(f: pd.DataFrame, freq: str) -> pd.DataFrame:
    if f.empty:
        return pd.DataFrame(dtype="int64", index=pd.DatetimeIndex([], tz="UTC", name="period")) \
            .rename_axis(columns="FailureType")
    # Periods have no time zone: drop UTC before and put it back after.
    periods = f["FailureTimestamp"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(freq).rename("period")
    table = _crosstab(f, periods, "FailureType")
    table = table.reindex(pd.period_range(periods.min(), periods.max(), freq=periods.dt.freq), fill_value=0)
    table.index = table.index.to_timestamp().tz_localize("UTC").rename("period")
    return table


# --- cost and time -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelPrice:
    """On-demand price in USD per 1000 tokens."""

    input_per_1k: float
    output_per_1k: float


NOVA_LITE = "amazon.nova-lite-v1:0"
# Amazon Nova Lite on-demand (us-east-1): $0.06 / $0.24 per million input / output tokens.
# Local engines cost nothing per token; their model ids start with the engine name.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    NOVA_LITE: ModelPrice(0.00006, 0.00024),
    "rapidocr": ModelPrice(0.0, 0.0),
    "tesseract": ModelPrice(0.0, 0.0),
}
COST_COLUMNS = ["records", "images", "input_tokens", "output_tokens", "cost_usd", "cost_per_image_usd",
                "model_ids", "note"]


def price_for(model_id: Any, prices: Mapping[str, ModelPrice | tuple[float, float]] = DEFAULT_PRICES
              ) -> ModelPrice | None:
    """The price of a model id, or None if unknown.

    Matches the id itself; a local engine's versioned id (`rapidocr-3.4/...`) by its engine name;
    an ARN by its last part; a cross-region inference profile (`us.amazon.nova-lite-v1:0`) by
    the model id behind it.
    """
    if not isinstance(model_id, str) or not model_id:
        return None
    tail = model_id.rsplit("/", 1)[-1]
    for candidate in (model_id, tail, tail.split(".", 1)[-1]):
        if candidate in prices:
            return _price(prices[candidate])
    for key, price in prices.items():
        if model_id.startswith((key + "-", key + "/")):
            return _price(price)
    return None


def _price(value: ModelPrice | tuple[float, float]) -> ModelPrice:
    return value if isinstance(value, ModelPrice) else ModelPrice(*value)


def token_costs(frame: pd.DataFrame,
                prices: Mapping[str, ModelPrice | tuple[float, float]] = DEFAULT_PRICES) -> pd.DataFrame:
    """Per OCR version: records, images, tokens, cost in USD and cost per image.

    Pass failures and results together (records_frame): failed calls are paid for too. A record
    without token counts made no billed call (0 tokens). A record whose model id has no price
    makes its version's cost NaN, and `note` says which ids are unknown: never a silent 0.
    """
    if frame.empty:
        return pd.DataFrame(columns=COST_COLUMNS).rename_axis("OCRFullVersion")
    f = frame.reindex(columns=list(dict.fromkeys(["OCRFullVersion", "ImageKey", "ModelId", "InputTokens",
                                                  "OutputTokens", *frame.columns])))
    # Plain float64, not Int64: NaN (an unknown price) must propagate through the sums, pd.NA would not.
    tokens_in = pd.to_numeric(f["InputTokens"], errors="coerce").astype("float64").fillna(0.0)
    tokens_out = pd.to_numeric(f["OutputTokens"], errors="coerce").astype("float64").fillna(0.0)
    price = f["ModelId"].map(lambda m: price_for(m, prices))
    rate_in = price.map(lambda p: p.input_per_1k if p else np.nan).astype(float)
    rate_out = price.map(lambda p: p.output_per_1k if p else np.nan).astype(float)
    f = f.assign(_in=tokens_in, _out=tokens_out, _cost=tokens_in / 1000 * rate_in + tokens_out / 1000 * rate_out,
                 _unknown=price.isna(), _model=f["ModelId"].astype(object).where(f["ModelId"].notna(), "(none)"))
    rows = {}
    for version, g in f.groupby(f["OCRFullVersion"].astype(object).where(f["OCRFullVersion"].notna(), "(missing)")):
        images = g["ImageKey"].nunique()
        cost = g["_cost"].sum(skipna=False)
        unknown = sorted(g.loc[g["_unknown"], "_model"].astype(str).unique())
        rows[version] = {
            "records": len(g), "images": images, "input_tokens": int(g["_in"].sum()),
            "output_tokens": int(g["_out"].sum()), "cost_usd": cost,
            "cost_per_image_usd": cost / images if images else np.nan,
            "model_ids": ", ".join(sorted(g["_model"].astype(str).unique())),
            "note": f"no price for model id(s): {', '.join(unknown)}" if unknown else ""}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=COST_COLUMNS).rename_axis("OCRFullVersion")
    return out.astype({"records": "int64", "images": "int64", "input_tokens": "Int64", "output_tokens": "Int64",
                       "cost_usd": "float64", "cost_per_image_usd": "float64"})


TIME_STATS = ["count", "mean", "p50", "p90", "p99", "max"]


def processing_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Seconds per image by OCR version and record type: count, mean, p50, p90, p99, max."""
    index = ["OCRFullVersion", "RecordType"]
    f = frame.reindex(columns=list(dict.fromkeys(index + ["ProcessingTimeSeconds", *frame.columns])))
    f = f.assign(seconds=pd.to_numeric(f["ProcessingTimeSeconds"], errors="coerce")).dropna(subset=["seconds"])
    if f.empty:
        return pd.DataFrame(columns=TIME_STATS, index=pd.MultiIndex.from_tuples([], names=index))
    g = f.groupby(index)["seconds"]
    return pd.DataFrame({"count": g.size(), "mean": g.mean(), "p50": g.quantile(0.5), "p90": g.quantile(0.9),
                         "p99": g.quantile(0.99), "max": g.max()})


# --- charts --------------------------------------------------------------------------------------

def _axes(ax: Axes | None, size: tuple[float, float] = (8, 4.5)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def _empty_note(ax: Axes, text: str = "no failures") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey", fontsize=14)
    ax.set_xticks([])
    ax.set_yticks([])


def _label(text: Any, width: int = 60) -> str:
    """Plain text for matplotlib: `$` would start mathtext (and fail on model output)."""
    text = " ".join(str(text).split())
    text = text if len(text) <= width else text[:width - 1] + "…"
    return text.replace("$", r"\$")


def _stacked_bars(ax: Axes, table: pd.DataFrame, labels: list[str]) -> None:
    """Bars stacked by failure type (columns), one bar per row, in the type colours."""
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    for name in table.columns:
        values = table[name].to_numpy(dtype=float)
        ax.bar(x, values, bottom=bottom, label=_label(name), color=TYPE_COLORS.get(name))
        bottom += values
    step = max(1, len(labels) // 20)  # at most ~20 tick labels stay readable
    ax.set_xticks(x[::step], [_label(s, 24) for s in labels[::step]], rotation=30, ha="right")
    ax.set_ylabel("failures")
    ax.legend(fontsize="small")


def plot_failures_by_type(failures: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Horizontal bars: failures per FailureType, the most frequent on top."""
    figure, ax = _axes(ax)
    ax.set_title("Failures by type")
    counts = failure_patterns(failures)["by_type"]["count"]
    if counts.empty:
        _empty_note(ax)
        return figure
    counts = counts.sort_values()
    ax.barh([_label(t) for t in counts.index], counts.to_numpy(),
            color=[TYPE_COLORS.get(t, "grey") for t in counts.index])
    ax.set_xlabel("failures")
    return figure


def plot_failures_over_time(failures: pd.DataFrame, freq: str = "D", ax: Axes | None = None) -> Figure:
    """Stacked bars per period (UTC), one colour per failure type."""
    figure, ax = _axes(ax)
    ax.set_title(f"Failures over time (per {freq}, UTC)")
    table = failure_patterns(failures, freq)["over_time"]
    if table.empty:
        _empty_note(ax)
        return figure
    fmt = "%Y-%m-%d %H:%M" if any(t.hour or t.minute for t in table.index) else "%Y-%m-%d"
    _stacked_bars(ax, table, [t.strftime(fmt) for t in table.index])
    return figure


def plot_failures_by_version(failures: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Stacked bars per OCR version, one colour per failure type."""
    figure, ax = _axes(ax)
    ax.set_title("Failures by OCR version")
    table = failure_patterns(failures)["by_version"]
    if table.empty:
        _empty_note(ax)
        return figure
    _stacked_bars(ax, table, [str(v) for v in table.index])
    return figure


def plot_top_fingerprints(failures: pd.DataFrame, top: int = 10, ax: Axes | None = None) -> Figure:
    """The `top` most frequent fingerprints, labelled with type, code and an example message."""
    figure, ax = _axes(ax, (10, 0.5 * top + 1.5))
    ax.set_title(f"Top {top} failure fingerprints")
    prints = failure_patterns(failures)["by_fingerprint"].head(top)
    if prints.empty:
        _empty_note(ax)
        return figure
    prints = prints.iloc[::-1]  # barh draws bottom-up: the most frequent ends on top
    labels = [f"{_label(r.failure_type, 20)} / {_label(r.error_code, 24)}: {_label(r.example_message, 50)}"
              for r in prints.itertuples()]
    ax.barh(range(len(prints)), prints["count"].to_numpy(),
            color=[TYPE_COLORS.get(t, "grey") for t in prints["failure_type"]])
    ax.set_yticks(range(len(prints)), labels, fontsize="small")
    ax.set_xlabel("failures")
    return figure


def plot_processing_times(frame: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Box plots of seconds per image by OCR version and record type."""
    figure, ax = _axes(ax)
    ax.set_title("Processing time per image")
    f = frame.reindex(columns=list(dict.fromkeys(["OCRFullVersion", "RecordType", "ProcessingTimeSeconds",
                                                  *frame.columns])))
    f = f.assign(seconds=pd.to_numeric(f["ProcessingTimeSeconds"], errors="coerce")).dropna(subset=["seconds"])
    if f.empty:
        _empty_note(ax, "no failures or results with a processing time")
        return figure
    groups = list(f.groupby(["OCRFullVersion", "RecordType"])["seconds"])
    ax.boxplot([g.to_numpy() for _, g in groups], showfliers=True)
    ax.set_xticks(range(1, len(groups) + 1),
                  [f"{_label(v, 24)}\n{'results' if t == OCR_RESULT else 'failures'}" for (v, t), _ in groups],
                  fontsize="small")
    ax.set_ylabel("seconds")
    return figure
