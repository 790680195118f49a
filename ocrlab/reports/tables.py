"""Frames as a person reads them: shares as percentages, seconds to two decimals, times to the second.

Every cell, header and index label is escaped: a file name or a model answer is text, never markup
(a Styler renders its cells as they are unless told to escape, and JupyterLab shows a trusted
notebook's HTML live). A plain row number index is left out: it says nothing.
"""
from __future__ import annotations

from typing import Any, Iterable

import pandas as pd


def _when(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _points(value: Any) -> str:
    """A change of two shares, in percentage points with its sign."""
    return "–" if value is None or pd.isna(value) else f"{float(value) * 100:+.1f} pt"


def styled(frame: pd.DataFrame, percent: Iterable[str] = (), seconds: Iterable[str] = (),
           times: Iterable[str] = (), counts: Iterable[str] = (), points: Iterable[str] = ()) -> Any:
    """A Styler of `frame` with the named columns formatted and all text escaped; missing values show as
    a dash."""
    formats: dict[str, Any] = {}
    present = set(frame.columns)
    formats.update({c: "{:.1%}" for c in percent if c in present})
    formats.update({c: "{:,.2f}" for c in seconds if c in present})
    formats.update({c: _when for c in times if c in present})
    formats.update({c: "{:,.0f}" for c in counts if c in present})
    formats.update({c: _points for c in points if c in present})
    style = frame.style.format(escape="html", na_rep="–")  # every other cell: its text, escaped
    style = style.format(formats, escape="html", na_rep="–")
    style = style.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
    return style.hide(axis="index") if isinstance(frame.index, pd.RangeIndex) else style
