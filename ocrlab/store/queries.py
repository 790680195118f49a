"""Paged, filtered reads of the failure log: what the failure browser asks, as DynamoDB Queries.

A page is read server-side: one Query on the time-ordered index of failures (ByRecordType; on a
sharded table, one per shard of ByTypeShard, merged by ocrlab.store.shard_reads), the time range as its key condition and every other filter (a version included) as a FilterExpression. DynamoDB applies `Limit` before the filter, so a filtered page may need more
than one call; `budget` bounds the items examined per page (a rare fingerprint in a large table
returns a partial page and a cursor rather than reading the whole index). An unfiltered page is
exactly one Query of `limit` items: as fast as a raw Query of the same page.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ocrlab.domain import Record
from ocrlab.records import FAILED_IMAGE, utc_since
from ocrlab.store.layout import BY_RECORD_TYPE, BY_TYPE_SHARD

Cursor = dict[str, Any]  # a DynamoDB key in wire format, opaque to callers
TEXT_ATTRIBUTES = ("ImageKey", "ErrorMessage", "ValidationErrors", "RawOCROutput")
DEFAULT_BUDGET = 5000
MAX_CALL_ITEMS = 1000  # items examined per call when filtering: few round trips, bounded replies


@dataclass(frozen=True)
class FailureQuery:
    """Which failures to list. Empty fields do not filter; `since` and `until` are ISO-8601 UTC
    bounds, both included (a key condition: DynamoDB filters no key attribute)."""

    failure_type: str | None = None
    ocr_version: str | None = None
    error_code: str | None = None
    fingerprint: str | None = None
    since: str | None = None
    until: str | None = None
    text: str | None = None            # substring of the image key, message, rules or raw output (case-sensitive)
    newest_first: bool = True

    @property
    def filtered(self) -> bool:
        """True when a FilterExpression applies (so a page may take more than one call)."""
        return bool(self.ocr_version or self.failure_type or self.error_code or self.fingerprint or self.text)

    def with_(self, **changes: Any) -> FailureQuery:
        return replace(self, **changes)


@dataclass
class FailurePage:
    """One page of failures; `cursor` continues after it (None: nothing after)."""

    records: list[Record]
    cursor: Cursor | None
    examined: int = 0                  # items DynamoDB read for this page, matching or not
    calls: int = 0
    partial: bool = False              # the budget ran out before the page was full
    query: FailureQuery = field(default_factory=FailureQuery)


def time_range(names: dict[str, str], values: dict[str, Any], since: str | None, until: str | None, *,
               until_included: bool) -> str:
    """The time part of a key condition on FailureTimestamp ("" for none), its names and values added;
    `until_included` decides an upper bound given alone. With both bounds a key condition can only be
    BETWEEN, which includes both: a caller that excludes `until` drops the records standing at it."""
    if not since and not until:
        return ""
    names["#t"] = "FailureTimestamp"
    if since and until:
        values.update({":a": {"S": since}, ":b": {"S": until}})
        return " AND #t BETWEEN :a AND :b"
    if since:
        values[":a"] = {"S": since}
        return " AND #t >= :a"
    values[":b"] = {"S": until}
    return f" AND #t {'<=' if until_included else '<'} :b"


def query_plan(query: FailureQuery, shard: str | None = None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """(index, the index's key attributes, Query arguments) for the failures `query` selects: all of
    them (ByRecordType), or those of one `shard` (its TypeShard value, on ByTypeShard)."""
    by = BY_TYPE_SHARD if shard else BY_RECORD_TYPE
    index, keys = by.name, (by.hash_key, by.range_key)
    names: dict[str, str] = {"#p": by.hash_key}
    values: dict[str, Any] = {":p": {"S": shard or FAILED_IMAGE}}
    since, until = utc_since(query.since), utc_since(query.until)  # moments, in the stored form
    condition = "#p = :p" + time_range(names, values, since, until, until_included=True)
    terms = []
    equal = {"OCRFullVersion": query.ocr_version, "FailureType": query.failure_type,
             "ErrorCode": query.error_code, "FailureFingerprint": query.fingerprint}
    for n, (attribute, value) in enumerate((a, v) for a, v in equal.items() if v):
        names[f"#e{n}"], values[f":e{n}"] = attribute, {"S": value}
        terms.append(f"#e{n} = :e{n}")
    if query.text:
        values[":q"] = {"S": query.text}
        alternatives = []
        for n, attribute in enumerate(TEXT_ATTRIBUTES):
            names[f"#q{n}"] = attribute
            alternatives.append(f"contains(#q{n}, :q)")
        terms.append("(" + " OR ".join(alternatives) + ")")
    arguments: dict[str, Any] = {"IndexName": index, "KeyConditionExpression": condition,
                                 "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                                 "ScanIndexForward": not query.newest_first}
    if terms:
        arguments["FilterExpression"] = " AND ".join(terms)
    return index, ("ImageKey", *keys), arguments


def cursor_after(record: Record, key_attributes: tuple[str, ...]) -> Cursor:
    """The ExclusiveStartKey that continues right after `record` on the index (table key + index key)."""
    return {name: {"S": str(record[name])} for name in dict.fromkeys(key_attributes)}  # type: ignore[literal-required]
