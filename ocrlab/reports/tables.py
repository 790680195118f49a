"""Frames as a person reads them: shares as percentages, seconds to two decimals, times to the second."""
from __future__ import annotations

from typing import Any, Iterable

import pandas as pd


def _when(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def styled(frame: pd.DataFrame, percent: Iterable[str] = (), seconds: Iterable[str] = (),
           times: Iterable[str] = (), counts: Iterable[str] = ()) -> Any:
    """A Styler of `frame` with the named columns formatted; missing values show as a dash."""
    formats: dict[str, Any] = {}
    present = set(frame.columns)
    formats.update({c: "{:.1%}" for c in percent if c in present})
    formats.update({c: "{:,.2f}" for c in seconds if c in present})
    formats.update({c: _when for c in times if c in present})
    formats.update({c: "{:,.0f}" for c in counts if c in present})
    return frame.style.format(formats, na_rep="–")
