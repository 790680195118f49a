"""One DynamoDB table through a boto3 client: the wire format, calls with their errors as ocrlab's,
paged Queries, batched gets, and what the table keeps about itself (its shard count, whether another
writer shares it, the list of versions).

Records (FAILED_IMAGE and OCR_RESULT) are keyed ImageKey + FailureTimestamp (ISO-8601, so they
sort after the helper items of the same image, whose sort keys start with '#'). The helper item
`#COUNTER` of an image holds its failure count and, per version, the claim of the run processing it
and what its last run ended in (ocrlab.store.writes). `#VERSIONS` lists the versions.

Errors: throttling, server errors, timeouts and unreachable endpoints raise StoreUnavailable (the
caller spools and retries later); a record DynamoDB refuses for its content raises RecordRejected
(retrying cannot help); a missing table raises TableMissing.
"""
from __future__ import annotations

import time
from itertools import islice
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, TypeVar, cast

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from ocrlab.domain import Record
from ocrlab.errors import RecordRejected, StoreUnavailable, TableMissing
from ocrlab.store.layout import LAYOUT
from ocrlab.store.read_ahead import read_ahead
from ocrlab.store.shards import read_count
from ocrlab.taxonomy import THROTTLING_CODES, aws_error_code

if TYPE_CHECKING:
    from boto3.dynamodb.types import _AttributeValueTypeDef as AttributeValue  # the stubs' name; no runtime type

COUNTER_KEY = "#COUNTER"
VERSIONS_KEY, VERSION_PREFIX = "#VERSIONS", "#V#"  # the list of versions seen, one item each
RECORDS_FROM = "0"  # record sort keys are timestamps, which start with a digit
# Refusals of the item itself: no retry or outage is involved.
CONTENT_CODES = frozenset({"ValidationException", "ItemCollectionSizeLimitExceededException"})
BATCH_GET = 100  # keys per BatchGetItem
ADOPTED_KEY = ("#TABLE", "#ADOPTED")  # the mark of a table adopted from another writer (ocrlab.store.adoption)
CATCH_UP_SECONDS = 60.0  # how often a process looks again at what other writers of a shared table did

_ser, _de = TypeSerializer(), TypeDeserializer()
T = TypeVar("T")


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    # Strings and numbers are nearly every attribute a read returns: taken as boto3 takes them but
    # without its dispatch (strings inline), which was a third of an export's time.
    return {k: v["S"] if "S" in v else _value(v) for k, v in item.items()}


def _value(value: AttributeValue) -> Any:
    if "N" in value:
        return DYNAMODB_CONTEXT.create_decimal(value["N"])
    return _de.deserialize(value)


def as_records(items: Iterator[dict[str, Any]]) -> Iterator[Record]:
    """Items read from the table as the records put_record wrote (a read is not checked against the type)."""
    return cast(Iterator[Record], items)



def pages(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter), as they stream."""
    rest = iter(items)
    while page := list(islice(rest, size)):
        yield page


def projection(attributes: Sequence[str] | None, names: dict[str, str] | None = None) -> dict[str, Any]:
    """The ProjectionExpression of `attributes` plus the table's key (every reader needs it), its names
    added to `names` (a Query's own) or returned with it; nothing when `attributes` is None (all)."""
    if attributes is None:
        return {}
    wanted = dict.fromkeys((LAYOUT.hash_key, LAYOUT.range_key, *attributes))
    own = {f"#a{n}": name for n, name in enumerate(wanted)}
    expression = {"ProjectionExpression": ", ".join(own)}
    if names is not None:
        names.update(own)
        return expression
    return {**expression, "ExpressionAttributeNames": own}


def filters(record_type: str | None = None, **equal: str | None) -> tuple[dict[str, str], dict[str, Any],
                                                                            dict[str, Any]]:
    """Names, values and the FilterExpression (if any) for `attribute = value` conditions."""
    wanted = {"RecordType": record_type, **equal}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    terms = []
    for n, (attribute, value) in enumerate((a, v) for a, v in wanted.items() if v):
        names[f"#f{n}"], values[f":f{n}"] = attribute, {"S": value}
        terms.append(f"#f{n} = :f{n}")
    return names, values, {"FilterExpression": " AND ".join(terms)} if terms else {}



class Table:
    """One table and its client (injectable); the state kept per process (shard count, adoption
    status) is shared by the reads and the writes built over it."""

    def __init__(self, client: Any, table: str, description: str = "") -> None:
        self.client = client
        self.table = table
        self.description = description or f"table {table!r}"
        self._shards: int | None = None
        self._shared: tuple[float, bool] | None = None  # (when read, whether the table is adopted)
        self.looked_at_others = -CATCH_UP_SECONDS  # when the records other writers added were last adopted
        self._known_versions: set[str] = set()

    @property
    def shards(self) -> int:
        """The table's shard count, read once per process; 0 for a table not yet sharded (read
        through ByRecordType; its records are written with their shard all the same, ready for
        `ocrlab db migrate`)."""
        if self._shards is None:
            self._shards = read_count(self)
        return self._shards

    def forget_shards(self, count: int | None = None) -> None:
        """The shard count is `count` from now on (None: read it again at the next use)."""
        self._shards = count

    def shared(self) -> bool:
        """Whether the table was adopted (other code writes it too); read again once a minute, so a
        long-lived process notices an adoption made meanwhile."""
        now = time.monotonic()
        if self._shared is None or now - self._shared[0] > CATCH_UP_SECONDS:
            held = self.item(*ADOPTED_KEY)
            self._shared = (now, held is not None and held.get("Shared", True) is not False)
        return self._shared[1]

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One client call, its errors as ocrlab's own; a failed condition is re-raised for the caller."""
        try:
            reply: dict[str, Any] = getattr(self.client, operation)(**kwargs)
            return reply
        except ClientError as exc:
            code = aws_error_code(exc) or ""
            message = exc.response.get("Error", {}).get("Message", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code == "ConditionalCheckFailedException":
                raise
            if code == "ResourceNotFoundException":
                raise TableMissing(self.table, self.description) from exc
            if code in CONTENT_CODES and status < 500 and code not in THROTTLING_CODES:
                raise RecordRejected(f"DynamoDB refused {operation}: {code}: {message}", code) from exc
            raise StoreUnavailable(f"DynamoDB refused {operation}: {code}: {message}", code) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"cannot reach the store ({self.description}): {exc}",
                                   type(exc).__name__) from exc

    def query(self, *, ahead: bool = False, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item a Query returns, following LastEvaluatedKey to the end; with `ahead`, the next
        page is read while the caller works on this one (for reads of many pages)."""
        pages = self.query_pages(**kwargs)
        for items in read_ahead(pages) if ahead else pages:
            yield from map(deserialize, items)

    def query_pages(self, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
        kwargs["TableName"] = self.table
        while True:
            page = self.call("query", **kwargs)
            yield page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def get_many(self, keys: Iterable[tuple[str, str]],
                 attributes: Sequence[str] | None = None) -> Iterator[Record]:
        """Items by (ImageKey, FailureTimestamp), in the order given, BATCH_GET keys a request; with
        `attributes`, only those (and the key) are read."""
        keys = list(keys)
        selected = projection(attributes)
        for start in range(0, len(keys), BATCH_GET):
            chunk = keys[start:start + BATCH_GET]
            wanted = {"Keys": [serialize({"ImageKey": k, "FailureTimestamp": t}) for k, t in chunk],
                      "ConsistentRead": True, **selected}
            found: dict[tuple[str, str], dict[str, Any]] = {}
            delay = 0.05
            while wanted:
                out = self.call("batch_get_item", RequestItems={self.table: wanted})
                for raw in out.get("Responses", {}).get(self.table, []):
                    item = deserialize(raw)
                    found[(item["ImageKey"], item["FailureTimestamp"])] = item
                wanted = out.get("UnprocessedKeys", {}).get(self.table)
                if wanted:  # throttled part of the batch: back off, then ask again for the rest
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
            yield from as_records(found[key] for key in chunk if key in found)

    def item(self, image_key: str, sort_key: str) -> dict[str, Any] | None:
        """Any item by its key: a record, an image's counter, a table's mark."""
        out = self.call("get_item", TableName=self.table, ConsistentRead=True,
                        Key=serialize({"ImageKey": image_key, "FailureTimestamp": sort_key}))
        return deserialize(out["Item"]) if "Item" in out else None

    def listed_versions(self) -> list[str]:
        """The versions the table lists (its #VERSIONS items), oldest name first."""
        return sorted(item["Version"] for item in self.query(
            KeyConditionExpression="#k = :k", ExpressionAttributeNames={"#k": "ImageKey"},
            ExpressionAttributeValues={":k": {"S": VERSIONS_KEY}}))

    def register_version(self, version: str) -> None:
        """List `version` (once per process): one small item per version, so listing versions is a Query
        rather than a read of every record."""
        if version not in self._known_versions:
            self._known_versions.update(self.listed_versions())
        if version not in self._known_versions:
            self.call("put_item", TableName=self.table,
                      Item=serialize({"ImageKey": VERSIONS_KEY, "FailureTimestamp": VERSION_PREFIX + version,
                                      "Version": version}))
            self._known_versions.add(version)

    def wait_for_indexes(self, gone: str | None = None, seconds: float = 3600) -> None:
        """Until no index is being made or dropped (and the index `gone` is no more): DynamoDB takes
        one index change at a time, and a new index is backfilled before it answers. Polled often at
        first (the local database backfills a small table at once), then every few seconds."""
        deadline, pause = time.monotonic() + seconds, 0.05
        while time.monotonic() < deadline:
            indexes = self.call("describe_table", TableName=self.table)["Table"].get("GlobalSecondaryIndexes") or []
            if all(g.get("IndexStatus", "ACTIVE") == "ACTIVE" and g["IndexName"] != gone for g in indexes):
                return
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
        raise StoreUnavailable(f"the indexes of {self.table!r} did not settle within {seconds:.0f} s", "Timeout")
