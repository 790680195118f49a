"""Records into compact pandas frames, column by column, as they stream from the store.

A frame of tens of thousands of records costs what its columns cost: text that repeats (types, codes,
versions, fingerprints, model ids, messages, even image keys, which recur across versions and
attempts) becomes a category (an integer code per row plus each distinct value once), numbers go
straight into float arrays, times are parsed once at the end. No record is kept: each is taken apart
as it arrives and let go, so memory follows the columns asked for, not the records read.
"""
from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

FLOAT_COLUMNS = ("ProcessingTimeSeconds",)
INT_COLUMNS = ("InputTokens", "OutputTokens", "ImageSize", "AttemptNumber")
TIME_COLUMNS = ("FailureTimestamp",)


class _Category:
    """Codes into a list of distinct values; -1 for a missing one."""

    def __init__(self) -> None:
        self.codes = array("q")
        self.index: dict[Any, int] = {}

    def add(self, value: Any) -> None:
        if value is None:
            self.codes.append(-1)
            return
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.index)
        self.codes.append(code)

    def series(self) -> Any:
        return pd.Categorical.from_codes(np.frombuffer(self.codes, dtype=np.int64) if self.codes else np.array([], dtype=np.int64),
                                         categories=pd.Index(list(self.index), dtype=object))


class _Numbers:
    """Floats, NaN for a missing or unreadable value; whole numbers as nullable integers."""

    def __init__(self, whole: bool) -> None:
        self.values = array("d")
        self.whole = whole

    def add(self, value: Any) -> None:
        if isinstance(value, (Decimal, int, float)) and not isinstance(value, bool):
            self.values.append(float(value))
        else:
            try:
                self.values.append(float(value))
            except (TypeError, ValueError):
                self.values.append(float("nan"))

    def series(self) -> Any:
        values = np.frombuffer(self.values, dtype=np.float64) if self.values else np.array([], dtype=np.float64)
        return pd.array(np.round(values), dtype="Float64").astype("Int64") if self.whole else values  # NaN: <NA>


class _Times:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> None:
        self.values.append(value)

    def series(self) -> Any:
        times = pd.to_datetime(pd.Series(self.values, dtype=object), utc=True, format="ISO8601")
        return times.astype("datetime64[ns, UTC]").array


def _collector(name: str) -> _Category | _Numbers | _Times:
    if name in TIME_COLUMNS:
        return _Times()
    if name in FLOAT_COLUMNS or name in INT_COLUMNS:
        return _Numbers(whole=name in INT_COLUMNS)
    return _Category()


def compact_frame(records: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """The `columns` of each record (missing ones empty), one row each, in the order read: text as
    category, times as datetime64[ns, UTC], FLOAT_COLUMNS float64, INT_COLUMNS Int64."""
    collectors = {name: _collector(name) for name in dict.fromkeys(columns)}
    for record in records:
        for name, collector in collectors.items():
            collector.add(record.get(name))
    return pd.DataFrame({name: collector.series() for name, collector in collectors.items()}, columns=list(collectors))
