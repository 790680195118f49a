"""The table's layout, described once: ocrlab.store.admin and the deployment template both derive from it.

A change here (an index, a projection, a TTL attribute) reaches a table created locally or by the
CLI through `create_table_request`, and the AWS stack through `cloudformation_properties`
(`python -m deploy.table` writes it into deploy/template.yaml; a test fails while they differ).

Why each index carries what it does (docs/design.md, "Records"):
- `ByTypeShard` (TypeShard, FailureTimestamp), everything: all failures (or results) in time
  order, spread over a fixed number of index partitions (`FAILED_IMAGE#07`: the record type and a
  shard chosen from the image key, ocrlab.store.shards) so no one partition takes every write; read
  in full, all shards at once and merged, by the export, the statistics and the analysis frames.
  It replaces `ByRecordType` (RecordType, FailureTimestamp), a single partition per record type:
  a table made before the shards still has that one and is read through it until
  `ocrlab db migrate` moves it (`RecordType` itself stays on every record either way).
- `ByVersionImage` (OCRFullVersion, ImageKey), a few small attributes: the records of a version
  grouped by image, enough to tell each image's latest outcome and its failure count under the
  version without reading raw outputs (`Sequence` orders them, `ContentDigest` tells a new revision
  and a moved file), and (digests, tokens, time) enough for a comparison of two
  versions to count what changed and what it cost; full records are then fetched by key only where
  needed. One small index entry per record keeps a logged failure near the price of a plain put.
Helper items (`#COUNTER`, `#VERSIONS`, `#TABLE`) carry none of the index keys, so no index holds them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Index:
    """A global secondary index; `projection` is ALL, KEYS_ONLY or INCLUDE (with `include`)."""

    name: str
    hash_key: str
    range_key: str
    projection: str = "ALL"
    include: tuple[str, ...] = ()

    def request(self) -> dict[str, Any]:
        projection: dict[str, Any] = {"ProjectionType": self.projection}
        if self.include:
            projection["NonKeyAttributes"] = list(self.include)
        return {"IndexName": self.name, "KeySchema": _key_schema(self.hash_key, self.range_key),
                "Projection": projection}


@dataclass(frozen=True)
class TableLayout:
    """Keys and indexes (all string attributes), billing, backups and expiry of the one table."""

    hash_key: str
    range_key: str
    indexes: tuple[Index, ...]
    billing_mode: str = "PAY_PER_REQUEST"
    # Backups are a deployment setting: the stack turns them on; dynalite has none, so ensure_table cannot.
    point_in_time_recovery: bool = True
    ttl_attribute: str | None = None
    # An index of this layout that a table of an older one holds another in place of (and is read
    # through until migrated): such a table is not missing it.
    stand_ins: tuple[tuple[str, Index], ...] = ()

    @property
    def key_attributes(self) -> list[str]:
        """Every attribute that is a key of the table or an index (each needs a definition)."""
        names = {self.hash_key, self.range_key} | {a for i in self.indexes for a in (i.hash_key, i.range_key)}
        return sorted(names)

    def index(self, name: str) -> Index:
        return next(i for i in self.indexes if i.name == name)

    def create_table_request(self, table: str) -> dict[str, Any]:
        """The keyword arguments of DynamoDB's CreateTable for a table of this layout."""
        return {
            "TableName": table,
            "BillingMode": self.billing_mode,
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in self.key_attributes],
            "KeySchema": _key_schema(self.hash_key, self.range_key),
            "GlobalSecondaryIndexes": [i.request() for i in self.indexes],
        }

    def cloudformation_properties(self) -> dict[str, Any]:
        """The Properties of an AWS::DynamoDB::Table of this layout (CloudFormation names the table)."""
        properties = self.create_table_request("")
        del properties["TableName"]
        properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": self.point_in_time_recovery}
        if self.ttl_attribute:
            properties["TimeToLiveSpecification"] = {"AttributeName": self.ttl_attribute, "Enabled": True}
        return properties

    def missing_indexes(self, described: dict[str, Any]) -> list[Index]:
        """The indexes a DescribeTable answer lacks (or has with other keys): a table of an older layout."""
        have = {g["IndexName"]: g for g in described.get("GlobalSecondaryIndexes") or []}

        def held(index: Index) -> bool:
            return index.name in have and have[index.name]["KeySchema"] == _key_schema(index.hash_key, index.range_key)
        stand_in = dict(self.stand_ins)
        return [i for i in self.indexes if not held(i) and not (i.name in stand_in and held(stand_in[i.name]))]

    def narrow_indexes(self, described: dict[str, Any]) -> list[Index]:
        """Indexes with the right keys that carry fewer attributes than this layout's: reads still
        work (what an index lacks is read from the records by key), only slower."""
        have = {g["IndexName"]: g.get("Projection", {}) for g in described.get("GlobalSecondaryIndexes") or []}
        missing = {i.name for i in self.missing_indexes(described)}

        def carries(projection: dict[str, Any], index: Index) -> bool:
            if projection.get("ProjectionType") == "ALL":
                return True
            return index.projection != "ALL" and set(index.include) <= set(projection.get("NonKeyAttributes", []))
        return [i for i in self.indexes if i.name in have and i.name not in missing and not carries(have[i.name], i)]


def _key_schema(hash_key: str, range_key: str) -> list[dict[str, str]]:
    return [{"AttributeName": hash_key, "KeyType": "HASH"}, {"AttributeName": range_key, "KeyType": "RANGE"}]


SHARD_ATTRIBUTE = "TypeShard"
BY_TYPE_SHARD = Index("ByTypeShard", SHARD_ATTRIBUTE, "FailureTimestamp")
BY_RECORD_TYPE = Index("ByRecordType", "RecordType", "FailureTimestamp")  # tables not yet sharded
LAYOUT = TableLayout(
    hash_key="ImageKey",
    range_key="FailureTimestamp",
    stand_ins=((BY_TYPE_SHARD.name, BY_RECORD_TYPE),),
    indexes=(
        BY_TYPE_SHARD,
        Index("ByVersionImage", "OCRFullVersion", "ImageKey", "INCLUDE",
              ("RecordType", "FailureType", "ErrorCode", "AttemptNumber", "RecordId", "RawDigest", "ParsedDigest",
               "InputTokens", "OutputTokens", "ProcessingTimeSeconds", "Sequence", "ContentDigest")),
    ),
)
BY_VERSION_IMAGE = LAYOUT.index("ByVersionImage")
# The layout before the shards: what `ocrlab db migrate` moves from (and tests and benchmarks compare with).
UNSHARDED_LAYOUT = TableLayout(LAYOUT.hash_key, LAYOUT.range_key, (BY_RECORD_TYPE, BY_VERSION_IMAGE))
