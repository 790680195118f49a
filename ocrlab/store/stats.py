"""Failure statistics, computed in one streaming pass over the time-ordered failures."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Iterable

from ..records import format_timestamp


def failure_statistics(failures: Iterable[dict[str, Any]], now: dt.datetime | None = None,
                       top: int = 10) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.timezone.utc)
    recent_from = format_timestamp(now - dt.timedelta(hours=24))
    total = recent = 0
    images: set[str] = set()
    types: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    prints: dict[str, dict[str, Any]] = {}
    for record in failures:
        total += 1
        ts = record.get("FailureTimestamp", "")
        recent += ts >= recent_from
        images.add(record["ImageKey"])
        types[record.get("FailureType", "")] += 1
        versions[record.get("OCRFullVersion", "")] += 1
        codes[record.get("ErrorCode", "")] += 1
        key = record.get("FailureFingerprint", "")
        group = prints.get(key)
        if group is None:
            prints[key] = {"fingerprint": key, "count": 1, "first_seen": ts, "last_seen": ts,
                           "failure_type": record.get("FailureType", ""), "error_code": record.get("ErrorCode", ""),
                           "example_message": record.get("ErrorMessage", ""), "example_image": record["ImageKey"]}
        else:
            group["count"] += 1
            group["first_seen"] = min(group["first_seen"], ts)
            group["last_seen"] = max(group["last_seen"], ts)
    ranked = sorted(prints.values(), key=lambda g: (-g["count"], g["first_seen"]))
    return {"total_failures": total, "unique_images": len(images), "recent_failures_24h": recent,
            "failure_types": dict(types.most_common()), "by_ocr_version": dict(versions.most_common()),
            "by_error_code": dict(codes.most_common()), "top_fingerprints": ranked[:top]}
