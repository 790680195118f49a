"""Charts of failure patterns and processing times, on matplotlib Figures.

Built on `matplotlib.figure.Figure` directly, not pyplot: no global figure registry (nothing
leaks in long notebook sessions), no GUI backend, and a notebook still displays them.

Readable at any size: time bins are chosen from the span (hour, day, week, month...) so that a chart
has at most MAX_BARS bars; categories beyond the top N are one "other" bar; box plots draw at most
MAX_OUTLIERS outlying points each (the most extreme); counts have whole-number ticks.
"""
from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ocrlab.analysis.patterns import failure_patterns
from ocrlab.errors import FailureType
from ocrlab.records import OCR_RESULT
from ocrlab.text import shorten

# One colour per failure type, the same in every chart.
TYPE_COLORS = dict(zip([t.value for t in FailureType], ["#8c564b", "#d62728", "#ff7f0e", "#9467bd", "#1f77b4"]))
MAX_BARS = 100
TOP = 15            # categories drawn by name; the rest are one "other" bar
MAX_OUTLIERS = 20   # outlying points drawn per box
OTHER = "other"
# Time bins, finest first, as pandas period frequencies, with the words a title uses.
BINS = {"h": "hour", "D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}
_ALIASES = {"H": "h", "d": "D", "w": "W", "ME": "M", "m": "M", "QE": "Q", "q": "Q", "A": "Y", "YE": "Y", "y": "Y"}


def time_bins(first: Any, last: Any, finest: str | None = None, max_bars: int = MAX_BARS) -> str:
    """The finest bin of BINS (no finer than `finest`) that splits [first, last] into at most `max_bars` bars."""
    ladder = list(BINS)[list(BINS).index(_ALIASES.get(finest, finest)) if finest else 0:]
    first, last = (_naive_utc(t) for t in (first, last))
    for freq in ladder:
        if (pd.Period(last, freq) - pd.Period(first, freq)).n + 1 <= max_bars:
            return freq
    return ladder[-1]


def _naive_utc(moment: Any) -> pd.Timestamp:
    """Periods have no time zone: a UTC time without its zone."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def top_with_other(counts: pd.Series, top: int = TOP) -> pd.Series:
    """The `top` largest counts by name and the rest summed as OTHER (largest first)."""
    counts = counts.sort_values(ascending=False, kind="stable")
    if len(counts) <= top + 1:  # folding a single category into "other" hides it for nothing
        return counts
    rest = counts.iloc[top:]
    return pd.concat([counts.iloc[:top], pd.Series({f"{OTHER} ({len(rest)})": rest.sum()})])


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
    return shorten(text, width).replace("$", r"\$")


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
    _counts_axis(ax.yaxis)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)  # beside the bars


def _counts_axis(axis: Any) -> None:
    """Counts are whole numbers: no 0.5 ticks."""
    axis.set_major_locator(MaxNLocator(integer=True))


def plot_counts(counts: dict[str, int] | pd.Series, title: str, ylabel: str = "images",
                ax: Axes | None = None) -> Figure:
    """Vertical bars of named counts (outcomes of a batch or a comparison), whole-number ticks."""
    figure, ax = _axes(ax, (8, 3.5))
    ax.set_title(_label(title, 80))
    series = pd.Series(counts, dtype="int64")
    if series.empty:
        _empty_note(ax, "nothing to count")
        return figure
    # Long names on two lines: side by side, 24-character names run into each other.
    names = [textwrap.fill(_label(str(n).replace("_", " "), 24), 13) for n in series.index]
    ax.bar(names, series.to_numpy(), color=[TYPE_COLORS.get(str(n), "#546e7a") for n in series.index])
    ax.set_ylabel(ylabel)
    _counts_axis(ax.yaxis)
    return figure


def plot_failures_by_type(failures: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Horizontal bars: failures per FailureType, the most frequent on top."""
    figure, ax = _axes(ax)
    ax.set_title("Failures by type")
    counts = failure_patterns(failures, only=["by_type"])["by_type"]["count"]
    if counts.empty:
        _empty_note(ax)
        return figure
    counts = counts.sort_values()
    ax.barh([_label(t) for t in counts.index], counts.to_numpy(),
            color=[TYPE_COLORS.get(t, "grey") for t in counts.index])
    ax.set_xlabel("failures")
    _counts_axis(ax.xaxis)
    return figure


def plot_failures_over_time(failures: pd.DataFrame, freq: str | None = None, ax: Axes | None = None) -> Figure:
    """Stacked bars per period (UTC), one colour per failure type; at most MAX_BARS periods, each the
    finest of hour, day, week, month... (no finer than `freq`, if given) that keeps to that."""
    figure, ax = _axes(ax)
    times = failures["FailureTimestamp"] if "FailureTimestamp" in failures and len(failures) else None
    freq = time_bins(times.min(), times.max(), freq) if times is not None else (freq or "D")
    ax.set_title(f"Failures over time (per {BINS.get(_ALIASES.get(freq, freq), freq)}, UTC)")
    table = failure_patterns(failures, freq, only=["over_time"])["over_time"]
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
    table = failure_patterns(failures, only=["by_version"])["by_version"]
    if table.empty:
        _empty_note(ax)
        return figure
    table = _top_rows(table)
    _stacked_bars(ax, table, [str(v) for v in table.index])
    return figure


def _top_rows(table: pd.DataFrame, top: int = TOP) -> pd.DataFrame:
    """The `top` rows with the largest totals, in their order, and the rest summed as one OTHER row."""
    if len(table) <= top + 1:
        return table
    kept = table.sum(axis=1).sort_values(ascending=False, kind="stable").index[:top]
    rest = table.drop(index=kept)
    other = pd.DataFrame([rest.sum()], index=[f"{OTHER} ({len(rest)})"])
    return pd.concat([table.loc[[i for i in table.index if i in set(kept)]], other])


def plot_failures_by_error_code(failures: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Horizontal bars: failures per ErrorCode, the most frequent on top."""
    codes = top_with_other(failure_patterns(failures, only=["by_error_code"])["by_error_code"]["count"]).iloc[::-1]
    figure, ax = _axes(ax, (8, 0.4 * len(codes) + 1.5))
    ax.set_title("Failures by error code")
    if codes.empty:
        _empty_note(ax)
        return figure
    ax.barh([_label(c, 40) for c in codes.index], codes.to_numpy())
    ax.set_xlabel("failures")
    _counts_axis(ax.xaxis)
    return figure


def plot_top_fingerprints(failures: pd.DataFrame, top: int = 10, ax: Axes | None = None) -> Figure:
    """The `top` most frequent fingerprints, labelled with type, code and an example message."""
    figure, ax = _axes(ax, (10, 0.5 * top + 1.5))
    ax.set_title(f"Top {top} failure fingerprints")
    prints = failure_patterns(failures, only=["by_fingerprint"])["by_fingerprint"].head(top)
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
    _counts_axis(ax.xaxis)
    return figure


def plot_processing_times(frame: pd.DataFrame, ax: Axes | None = None, top: int = 12) -> Figure:
    """Box plots of seconds per image by OCR version and record type (the `top` groups with the most
    records): boxes from p25 to p75, whiskers at p5 and p95, at most MAX_OUTLIERS points beyond them."""
    figure, ax = _axes(ax)
    ax.set_title("Processing time per image")
    f = frame.reindex(columns=list(dict.fromkeys(["OCRFullVersion", "RecordType", "ProcessingTimeSeconds",
                                                  *frame.columns])))
    f = f.assign(seconds=pd.to_numeric(f["ProcessingTimeSeconds"], errors="coerce")).dropna(subset=["seconds"])
    if f.empty:
        _empty_note(ax, "no failures or results with a processing time")
        return figure
    groups = [(name, g.to_numpy()) for name, g in f.groupby(["OCRFullVersion", "RecordType"], observed=True)["seconds"]]
    groups = sorted(sorted(groups, key=lambda g: -len(g[1]))[:top], key=lambda g: (str(g[0][0]), str(g[0][1])))
    ax.boxplot([values for _, values in groups], whis=(5, 95), showfliers=False)
    for x, (_, values) in enumerate(groups, start=1):
        outliers = _outliers(values)
        ax.plot(np.full(len(outliers), x), outliers, "o", markersize=3, color="#555", alpha=0.6)
    ax.set_xticks(range(1, len(groups) + 1),
                  [f"{_label(v, 24)}\n{'results' if t == OCR_RESULT else 'failures'}" for (v, t), _ in groups],
                  fontsize="small")
    ax.set_ylabel("seconds")
    ax.yaxis.set_major_formatter("{x:.2f}")
    return figure


def _outliers(values: np.ndarray, cap: int = MAX_OUTLIERS) -> np.ndarray:
    """The values beyond the whiskers (p5, p95), the `cap` farthest from the median."""
    low, median, high = np.percentile(values, [5, 50, 95])
    outside = values[(values < low) | (values > high)]
    return outside[np.argsort(-np.abs(outside - median), kind="stable")[:cap]]
