"""Failure statistics, gathered in one streaming pass over the time-ordered failures.

`FailureStatistics` takes failures one at a time, so the statistics can ride along another pass over
the log (the export panel gathers them while its CSV streams, reading every failure once).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Iterable, Mapping

from ocrlab.records import format_timestamp


class FailureStatistics:
    """Counts of the failures `add`ed so far; `result()` gives them in the form of `ocrlab stats`."""

    def __init__(self, now: dt.datetime | None = None, top: int = 10) -> None:
        now = now or dt.datetime.now(dt.timezone.utc)
        self.recent_from = format_timestamp(now - dt.timedelta(hours=24))
        self.top = top
        self.total = self.recent = 0
        self.images: set[str] = set()
        self.types: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.prints: dict[str, dict[str, Any]] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        self.total += 1
        ts = record.get("FailureTimestamp", "")
        self.recent += ts >= self.recent_from
        self.images.add(record["ImageKey"])
        self.types[record.get("FailureType", "")] += 1
        self.versions[record.get("OCRFullVersion", "")] += 1
        self.codes[record.get("ErrorCode", "")] += 1
        key = record.get("FailureFingerprint", "")
        group = self.prints.get(key)
        if group is None:
            self.prints[key] = {"fingerprint": key, "count": 1, "first_seen": ts, "last_seen": ts,
                                "failure_type": record.get("FailureType", ""), "error_code": record.get("ErrorCode", ""),
                                "example_message": record.get("ErrorMessage", ""), "example_image": record["ImageKey"]}
        else:
            group["count"] += 1
            group["first_seen"] = min(group["first_seen"], ts)
            group["last_seen"] = max(group["last_seen"], ts)

    def result(self) -> dict[str, Any]:
        ranked = sorted(self.prints.values(), key=lambda g: (-g["count"], g["first_seen"]))
        return {"total_failures": self.total, "unique_images": len(self.images), "recent_failures_24h": self.recent,
                "failure_types": dict(self.types.most_common()), "by_ocr_version": dict(self.versions.most_common()),
                "by_error_code": dict(self.codes.most_common()), "top_fingerprints": ranked[:self.top]}


def failure_statistics(failures: Iterable[Mapping[str, Any]], now: dt.datetime | None = None,
                       top: int = 10) -> dict[str, Any]:
    stats = FailureStatistics(now, top)
    for record in failures:
        stats.add(record)
    return stats.result()
