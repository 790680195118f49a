"""The DynamoDB store: one table, three indexes, every read a paginated Query (docs/design.md).

Layout. Records (FAILED_IMAGE and OCR_RESULT) are keyed ImageKey + FailureTimestamp (ISO-8601,
so they sort after the helper items of the same image, whose sort keys start with '#'):
- `#COUNTER`: the image's failure count; an atomic ADD hands out AttemptNumber, so numbers stay
  unique and consecutive with many writers and no transactions (dynalite has none).
- `#LATEST#<OCRFullVersion>`: the image's latest outcome under that version, written with a
  condition so an older outcome never replaces a newer one.
Indexes: ByRecordType (RecordType, FailureTimestamp) gives all failures or results in time
order; ByVersion (OCRFullVersion, FailureTimestamp) all records of a version; LatestByVersion
(LatestVersion, ImageKey) the latest outcome of each image under a version.
"""
from __future__ import annotations

import uuid
from collections import Counter
from typing import Any, Iterator

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..domain import Record
from ..config import StoreTarget, settings
from ..errors import StoreUnavailable
from ..records import FAILED_IMAGE, utc_timestamp
from ..taxonomy import aws_error_code
from .queries import DEFAULT_BUDGET, MAX_CALL_ITEMS, Cursor, FailurePage, FailureQuery, cursor_after, query_plan

COUNTER_KEY = "#COUNTER"
LATEST_PREFIX = "#LATEST#"
VERSIONS_KEY, VERSION_PREFIX = "#VERSIONS", "#V#"  # the list of versions seen, one item each
RECORDS_FROM = "0"  # record sort keys are timestamps, which start with a digit
INDEXES = {
    "ByRecordType": ("RecordType", "FailureTimestamp"),
    "ByVersion": ("OCRFullVersion", "FailureTimestamp"),
    "LatestByVersion": ("LatestVersion", "ImageKey"),
}
# Attributes that place an item in an index; a latest-pointer renames them to stay out of the first two.
POINTER_RENAMES = {"RecordType": "Outcome", "FailureTimestamp": "OutcomeTimestamp", "OCRFullVersion": "LatestVersion"}

_ser, _de = TypeSerializer(), TypeDeserializer()


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


class Store:
    """Failure and result records in one DynamoDB table, through a boto3 client (injectable)."""

    def __init__(self, client: Any, table: str, description: str = "") -> None:
        self.client = client
        self.table = table
        self.description = description or f"table {table!r}"
        self._known_versions: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One client call; ClientError and BotoCoreError become StoreUnavailable (with the AWS code),
        except a failed condition, which callers handle."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = aws_error_code(exc) or ""
            if code == "ConditionalCheckFailedException":
                raise
            if code == "ResourceNotFoundException":
                raise StoreUnavailable(f"table {self.table!r} does not exist ({self.description}); "
                                       "it is created by the first write, or by `ocrlab db start`", code) from exc
            raise StoreUnavailable(f"DynamoDB refused {operation}: {code}: "
                                   f"{exc.response.get('Error', {}).get('Message', '')}", code) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"cannot reach the store ({self.description}): {exc}",
                                   type(exc).__name__) from exc

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item a Query returns, following LastEvaluatedKey to the end."""
        kwargs["TableName"] = self.table
        while True:
            page = self._call("query", **kwargs)
            for raw in page.get("Items", []):
                yield deserialize(raw)
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    # -- table ------------------------------------------------------------------------------
    def ensure_table(self) -> bool:
        """Create the table and its indexes if missing; True if created. Safe to call any time."""
        try:
            self._call("describe_table", TableName=self.table)
            return False
        except StoreUnavailable as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        names = {"ImageKey", "FailureTimestamp"} | {a for pair in INDEXES.values() for a in pair}
        try:
            self._call("create_table",
                TableName=self.table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in sorted(names)],
                KeySchema=[{"AttributeName": "ImageKey", "KeyType": "HASH"},
                           {"AttributeName": "FailureTimestamp", "KeyType": "RANGE"}],
                GlobalSecondaryIndexes=[{
                    "IndexName": name, "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}, {"AttributeName": r, "KeyType": "RANGE"}],
                } for name, (h, r) in INDEXES.items()])
        except StoreUnavailable as exc:
            if exc.code != "ResourceInUseException":  # another process created it first
                raise
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        return True

    # -- writes -----------------------------------------------------------------------------
    def next_attempt(self, image_key: str) -> int:
        """Atomically count one more failure of the image; the new count is its AttemptNumber."""
        out = self._call("update_item", TableName=self.table,
                         Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                         UpdateExpression="ADD #c :one", ExpressionAttributeNames={"#c": "FailureCount"},
                         ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
        return int(out["Attributes"]["FailureCount"]["N"])

    def put_record(self, item: Record) -> Record:
        """Write a record under a timestamp unique for its image; idempotent by RecordId.

        The item may carry a FailureTimestamp (a spooled record does); it moves forward by a
        microsecond only if another record of the image holds that exact time. The item is
        completed in place, so a caller that must spool it after an error keeps the AttemptNumber
        already handed out.
        """
        item.setdefault("RecordId", uuid.uuid4().hex)
        item.setdefault("FailureTimestamp", utc_timestamp())
        if item["RecordType"] == FAILED_IMAGE and item.get("AttemptNumber") is None:
            item["AttemptNumber"] = self.next_attempt(item["ImageKey"])
        while True:
            try:
                self._call("put_item", TableName=self.table, Item=serialize(item),
                           ConditionExpression="attribute_not_exists(FailureTimestamp)")
                break
            except ClientError:
                held = self.get(item["ImageKey"], item["FailureTimestamp"])
                if held is not None and held.get("RecordId") == item["RecordId"]:
                    break  # written before (a replay, or a retry whose answer was lost)
                item["FailureTimestamp"] = utc_timestamp(after=item["FailureTimestamp"])
        self.update_latest(item)
        self._register_version(item["OCRFullVersion"])
        return item

    def _register_version(self, version: str) -> None:
        # One small item per version, so listing versions is a Query rather than a read of every record.
        if version not in self._known_versions:
            self._call("put_item", TableName=self.table,
                       Item=serialize({"ImageKey": VERSIONS_KEY, "FailureTimestamp": VERSION_PREFIX + version,
                                       "Version": version}))
            self._known_versions.add(version)

    def update_latest(self, record: Record) -> bool:
        """Point the image's latest outcome under the record's version at it, unless a newer one is there."""
        pointer = {POINTER_RENAMES.get(k, k): v for k, v in record.items()}
        pointer.update(ImageKey=record["ImageKey"], FailureTimestamp=LATEST_PREFIX + record["OCRFullVersion"])
        try:
            self._call("put_item", TableName=self.table, Item=serialize(pointer),
                       ConditionExpression="attribute_not_exists(#t) OR #t < :t",
                       ExpressionAttributeNames={"#t": "OutcomeTimestamp"},
                       ExpressionAttributeValues={":t": {"S": record["FailureTimestamp"]}})
            return True
        except ClientError:
            return False

    # -- reads ------------------------------------------------------------------------------
    def get(self, image_key: str, timestamp: str) -> Record | None:
        out = self._call("get_item", TableName=self.table, ConsistentRead=True,
                         Key=serialize({"ImageKey": image_key, "FailureTimestamp": timestamp}))
        return deserialize(out["Item"]) if "Item" in out else None

    def attempt_count(self, image_key: str) -> int:
        """Failures logged for the image so far (all versions)."""
        counter = self.get(image_key, COUNTER_KEY)
        return int(counter.get("FailureCount", 0)) if counter else 0

    def records_by_type(self, record_type: str = FAILED_IMAGE, since: str | None = None,
                        until: str | None = None, newest_first: bool = False) -> Iterator[Record]:
        """All failures (or results) in time order, optionally within [since, until)."""
        names = {"#p": "RecordType"}
        values: dict[str, Any] = {":p": {"S": record_type}}
        cond = "#p = :p"
        if since or until:
            names["#s"] = "FailureTimestamp"
        if since and until:
            cond += " AND #s BETWEEN :a AND :b"
            values.update({":a": {"S": since}, ":b": {"S": until}})
        elif since:
            cond += " AND #s >= :a"
            values[":a"] = {"S": since}
        elif until:
            cond += " AND #s < :b"
            values[":b"] = {"S": until}
        return self._query(IndexName="ByRecordType", KeyConditionExpression=cond,
                           ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                           ScanIndexForward=not newest_first)

    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[Record]:
        """The records of one image in time order (its attempts, when record_type is FAILED_IMAGE)."""
        names, values, extra = _filters(record_type=record_type, OCRFullVersion=ocr_version)
        names.update({"#k": "ImageKey", "#s": "FailureTimestamp"})
        values.update({":k": {"S": image_key}, ":z": {"S": RECORDS_FROM}})
        return self._query(KeyConditionExpression="#k = :k AND #s >= :z", ConsistentRead=True,
                           ExpressionAttributeNames=names, ExpressionAttributeValues=values, **extra)

    def version_records(self, ocr_version: str, record_type: str | None = None) -> Iterator[Record]:
        """Every record written under one OCRFullVersion, in time order."""
        names, values, extra = _filters(record_type=record_type)
        names["#v"], values[":v"] = "OCRFullVersion", {"S": ocr_version}
        return self._query(IndexName="ByVersion", KeyConditionExpression="#v = :v",
                           ExpressionAttributeNames=names, ExpressionAttributeValues=values, **extra)

    def latest_outcomes(self, ocr_version: str) -> Iterator[Record]:
        """The latest record of each image under a version, as records (RecordType, FailureTimestamp...)."""
        for pointer in self._query(IndexName="LatestByVersion", KeyConditionExpression="#v = :v",
                                   ExpressionAttributeNames={"#v": "LatestVersion"},
                                   ExpressionAttributeValues={":v": {"S": ocr_version}}):
            yield _from_pointer(pointer)

    def image_latest(self, image_key: str) -> Iterator[Record]:
        """The image's latest outcome under every version it ran under, as records (one Query)."""
        for pointer in self._query(KeyConditionExpression="#k = :k AND begins_with(#s, :p)", ConsistentRead=True,
                                   ExpressionAttributeNames={"#k": "ImageKey", "#s": "FailureTimestamp"},
                                   ExpressionAttributeValues={":k": {"S": image_key}, ":p": {"S": LATEST_PREFIX}}):
            yield _from_pointer(pointer)

    def failures_page(self, query: FailureQuery, limit: int = 50, cursor: Cursor | None = None,
                      budget: int = DEFAULT_BUDGET) -> FailurePage:
        """One page of the failures `query` selects, in time order, read server-side (ocrlab.store.queries)."""
        _, key_attributes, arguments = query_plan(query)
        page = FailurePage([], cursor, query=query)
        arguments["TableName"] = self.table
        while True:
            wanted = limit - len(page.records)
            call_limit = wanted if not query.filtered else max(wanted, min(MAX_CALL_ITEMS, budget - page.examined))
            if page.cursor:
                arguments["ExclusiveStartKey"] = page.cursor
            reply = self._call("query", Limit=call_limit, **arguments)
            page.calls += 1
            page.examined += reply.get("ScannedCount", 0)
            items = [deserialize(raw) for raw in reply.get("Items", [])]
            page.records += items[:wanted]
            page.cursor = (cursor_after(items[wanted - 1], key_attributes) if len(items) > wanted
                           else reply.get("LastEvaluatedKey"))
            if len(page.records) >= limit or not page.cursor:
                return page
            if page.examined >= budget:
                page.partial = True
                return page

    def failure_counts(self, ocr_version: str) -> Counter[str]:
        """Failures per image under one version (for --max-attempts)."""
        return Counter(r["ImageKey"] for r in self.version_records(ocr_version, FAILED_IMAGE))

    def versions(self) -> list[str]:
        """Every OCRFullVersion that has a record, oldest name first."""
        return sorted(item["Version"] for item in self._query(
            KeyConditionExpression="#k = :k", ExpressionAttributeNames={"#k": "ImageKey"},
            ExpressionAttributeValues={":k": {"S": VERSIONS_KEY}}))


def _from_pointer(pointer: dict[str, Any]) -> Record:
    """A latest-outcome pointer item as the record it points at (index attributes renamed back)."""
    back = {v: k for k, v in POINTER_RENAMES.items()}
    del pointer["FailureTimestamp"]
    return {back.get(k, k): v for k, v in pointer.items()}  # type: ignore[return-value]


def _filters(record_type: str | None = None, **equal: str | None) -> tuple[dict[str, str], dict[str, Any],
                                                                            dict[str, str]]:
    """Names, values and the FilterExpression (if any) for `attribute = value` conditions."""
    wanted = {"RecordType": record_type, **equal}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    terms = []
    for n, (attribute, value) in enumerate((a, v) for a, v in wanted.items() if v):
        names[f"#f{n}"], values[f":f{n}"] = attribute, {"S": value}
        terms.append(f"#f{n} = :f{n}")
    return names, values, {"FilterExpression": " AND ".join(terms)} if terms else {}


def make_client(target: StoreTarget, max_attempts: int | None = None) -> Any:
    """A boto3 DynamoDB client for the target: standard retries, explicit timeouts."""
    cfg = Config(retries={"mode": "standard", "max_attempts": max_attempts or settings().store_max_attempts},
                 connect_timeout=3, read_timeout=20, max_pool_connections=32)
    if target.kind == "local":
        return boto3.client("dynamodb", endpoint_url=target.endpoint_url, region_name=target.region,
                            aws_access_key_id="local", aws_secret_access_key="local", config=cfg)
    return boto3.client("dynamodb", endpoint_url=target.endpoint_url, region_name=target.region, config=cfg)


def connect(table: str, *, start_local: bool = True, create: bool = True, client: Any = None,
            max_attempts: int | None = None) -> Store:
    """The Store of a table: local dynalite (started on demand) or DynamoDB, table ready if `create`."""
    target = settings().store_target()
    if client is None:
        if target.kind == "local" and start_local:
            from .localdb import ensure_running
            ensure_running()
        client = make_client(target, max_attempts)
    store = Store(client, table, target.describe(table))
    if create:
        store.ensure_table()
    return store
