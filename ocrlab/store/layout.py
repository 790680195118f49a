"""The table's layout, in one place: keys, indexes and what each index carries (docs/design.md).

`Store.ensure_table` creates the table from `table_definition`; the deployment template is
checked against the same description, so the two cannot drift apart.

Why each index carries what it does:
- `ByRecordType` (RecordType, FailureTimestamp), everything: all failures (or results) in time
  order, read in full by the export, the statistics and the analysis frames.
- `ByVersionImage` (OCRFullVersion, ImageKey), a few small attributes: the records of a version
  grouped by image, enough to tell each image's latest outcome and its failure count under the
  version without reading raw outputs; full records are then fetched by key where needed. One
  small index entry per record keeps a logged failure near the price of a plain put.
Helper items (`#COUNTER`, `#VERSIONS`) carry none of the index keys, so no index holds them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str
    projected: tuple[str, ...] | None  # None: every attribute

    def definition(self) -> dict[str, Any]:
        projection: dict[str, Any] = ({"ProjectionType": "ALL"} if self.projected is None else
                                      {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(self.projected)})
        return {"IndexName": self.name, "Projection": projection,
                "KeySchema": [{"AttributeName": self.hash_key, "KeyType": "HASH"},
                              {"AttributeName": self.range_key, "KeyType": "RANGE"}]}


HASH_KEY, RANGE_KEY = "ImageKey", "FailureTimestamp"
BY_RECORD_TYPE = Index("ByRecordType", "RecordType", "FailureTimestamp", None)
BY_VERSION_IMAGE = Index("ByVersionImage", "OCRFullVersion", "ImageKey",
                         ("RecordType", "FailureType", "ErrorCode", "AttemptNumber", "RecordId"))
INDEXES = (BY_RECORD_TYPE, BY_VERSION_IMAGE)
BILLING_MODE = "PAY_PER_REQUEST"


def key_attributes() -> list[str]:
    return sorted({HASH_KEY, RANGE_KEY} | {a for i in INDEXES for a in (i.hash_key, i.range_key)})


def table_definition(table: str) -> dict[str, Any]:
    """The CreateTable request for a table of this layout (every key attribute is a string)."""
    return {"TableName": table, "BillingMode": BILLING_MODE,
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in key_attributes()],
            "KeySchema": [{"AttributeName": HASH_KEY, "KeyType": "HASH"},
                          {"AttributeName": RANGE_KEY, "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [index.definition() for index in INDEXES]}


def missing_indexes(described: dict[str, Any]) -> list[Index]:
    """The indexes of this layout that a DescribeTable answer lacks (or has with other keys)."""
    have = {g["IndexName"]: g for g in described.get("GlobalSecondaryIndexes") or []}
    return [i for i in INDEXES if i.name not in have
            or have[i.name]["KeySchema"] != i.definition()["KeySchema"]]
