"""The DynamoDB store: one table, two indexes (ocrlab.store.layout), every read a paginated Query
(on a sharded table, one per shard at once: ocrlab.store.shards, ocrlab.store.shard_reads).

Records (FAILED_IMAGE and OCR_RESULT) are keyed ImageKey + FailureTimestamp (ISO-8601, so they
sort after the helper items of the same image, whose sort keys start with '#'). The helper item
`#COUNTER` of an image holds its failure count (an atomic ADD hands out AttemptNumber, unique and
consecutive with many writers and no transactions, which dynalite lacks) and, per version, the
claim of the run processing it and what its last run ended in. `#VERSIONS` lists the versions.

Errors: throttling, server errors, timeouts and unreachable endpoints raise StoreUnavailable (the
caller spools and retries later); a record DynamoDB refuses for its content raises RecordRejected
(retrying cannot help); a missing table on a read raises TableMissing.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from decimal import Decimal
from itertools import groupby, islice
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence, TypeVar, cast

import boto3
from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ocrlab.config import StoreTarget, settings
from ocrlab.domain import LatestSummary, Record
from ocrlab.errors import RecordRejected, StoreUnavailable, TableMissing
from ocrlab.records import FAILED_IMAGE, OCR_RESULT, make_storable, new_record_id, order_key, utc_timestamp
from ocrlab.store import adoption
from ocrlab.store.claims import Claim, Moment, Unconfirmed, lease_end, owner_gone
from ocrlab.store.layout import BY_RECORD_TYPE, BY_VERSION_IMAGE, LAYOUT, SHARD_ATTRIBUTE, TableLayout
from ocrlab.store.queries import (
    DEFAULT_BUDGET,
    MAX_CALL_ITEMS,
    Cursor,
    FailurePage,
    FailureQuery,
    cursor_after,
    query_plan,
)
from ocrlab.store.read_ahead import read_ahead
from ocrlab.store.shard_reads import merged_records, sharded_page
from ocrlab.store.shards import DEFAULT_SHARDS, read_count, shard_key, write_count
from ocrlab.taxonomy import THROTTLING_CODES, aws_error_code

if TYPE_CHECKING:
    from boto3.dynamodb.types import _AttributeValueTypeDef as AttributeValue  # the stubs' name; no runtime type

COUNTER_KEY = "#COUNTER"
VERSIONS_KEY, VERSION_PREFIX = "#VERSIONS", "#V#"  # the list of versions seen, one item each
RECORDS_FROM = "0"  # record sort keys are timestamps, which start with a digit
# Refusals of the item itself: no retry or outage is involved.
CONTENT_CODES = frozenset({"ValidationException", "ItemCollectionSizeLimitExceededException"})
BATCH_GET = 100  # keys per BatchGetItem
CATCH_UP_SECONDS = 60.0  # how often a Store of a shared table looks for records other writers added

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


def _records(items: Iterator[dict[str, Any]]) -> Iterator[Record]:
    """Items read from the table as the records put_record wrote (a read is not checked against the type)."""
    return cast(Iterator[Record], items)


def _claim_names(version: str) -> dict[str, str]:
    """The claim (owner, lease, record) and how the last run ended: outcome, when (by the wall clock,
    for a Lambda event's time; by its machine's monotonic clock and boot, for a batch of the same
    machine), its Sequence (for a batch's plan) and the content it read."""
    return {"#o": f"ClaimOwner@{version}", "#e": f"ClaimExpires@{version}", "#r": f"ClaimRecord@{version}",
            "#d": f"LastRun@{version}", "#t": f"LastRunAt@{version}", "#m": f"LastRunClock@{version}",
            "#b": f"LastRunBoot@{version}", "#s": f"LastRunSequence@{version}", "#g": f"LastDigest@{version}"}


def _failure_names(version: str) -> dict[str, str]:
    """What a failing run leaves until its record is confirmed: the record's id and key, its numbers."""
    return {"#lr": f"LastRecord@{version}", "#lk": f"LastRecordAt@{version}", "#la": f"LastAttempt@{version}",
            "#lo": f"LastOwner@{version}", "#ls": f"LastSequence@{version}"}


def _fresh_terms(names: dict[str, str], values: dict[str, Any], used: dict[str, str], since: float | None,
                 began: Moment | None, seen: int | None) -> list[str]:
    """Conditions that no other run finished the image after the caller's run began (see Store.claim)."""
    terms = []
    if since is not None:
        terms.append("(attribute_not_exists(#t) OR #t < :since)")
        values[":since"] = {"N": repr(since)}
        used["#t"] = names["#t"]
    if began is not None and began.boot != "?":
        terms.append("(attribute_not_exists(#m) OR #m < :began OR attribute_not_exists(#b) OR #b <> :boot)")
        values.update({":began": {"N": repr(began.clock)}, ":boot": {"S": began.boot}})
        used.update({"#m": names["#m"], "#b": names["#b"]})
    if seen is not None:
        terms.append("(attribute_not_exists(#s) OR #s <= :seen)")
        values[":seen"] = {"N": str(seen)}
        used["#s"] = names["#s"]
    return terms


def _other_digest(counter: Mapping[str, Any], version: str, digest: str | None) -> str | None:
    """The content the image's last run under the version read, if it is not `digest`."""
    last = counter.get(f"LastDigest@{version}")
    return str(last) if digest and last and last != digest else None


def _unconfirmed(item: Mapping[str, Any], version: str, lease_seconds: float) -> Unconfirmed | None:
    """The last run's failure, if that run is gone (its process, or its lease long past) and the
    failure was never confirmed written."""
    names = _failure_names(version)
    record, owner = item.get(names["#lr"]), item.get(names["#lo"])
    ended = float(item.get(f"LastRunAt@{version}", 0))
    if not record or not (owner_gone(str(owner)) or time.time() - ended > lease_seconds):
        return None
    sequence = item.get(names["#ls"])
    return Unconfirmed(str(record), str(item.get(names["#lk"], "")), int(item.get(names["#la"], 0)),
                       int(sequence) if sequence is not None else None)


class Store:
    """Failure and result records in one DynamoDB table, through a boto3 client (injectable)."""

    def __init__(self, client: Any, table: str, description: str = "", clock_skew: float = 120.0) -> None:
        self.client = client
        # A lease's end is written by its claimer's clock: another host's claim counts as expired only
        # this much later by ours, so a claimer whose clock is behind is not overtaken while it works.
        self.clock_skew = clock_skew
        self.table = table
        self.description = description or f"table {table!r}"
        self._known_versions: set[str] = set()
        self._shared: tuple[float, bool] | None = None  # (when read, whether the table is adopted)
        self._looked_at_others = -CATCH_UP_SECONDS
        self._shards: int | None = None

    @property
    def shards(self) -> int:
        """The table's shard count, read once per Store; 0 for a table not yet sharded (read
        through ByRecordType; its records are written with their shard all the same, ready for
        `ocrlab db migrate`)."""
        if self._shards is None:
            self._shards = read_count(self)
        return self._shards

    def forget_shards(self) -> None:
        """Read the shard count again at the next use (the table was just moved to the shards)."""
        self._shards = None

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
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

    def _query(self, *, ahead: bool = False, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item a Query returns, following LastEvaluatedKey to the end; with `ahead`, the next
        page is read while the caller works on this one (for reads of many pages)."""
        pages = self._pages(**kwargs)
        for items in read_ahead(pages) if ahead else pages:
            yield from map(deserialize, items)

    def _pages(self, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
        kwargs["TableName"] = self.table
        while True:
            page = self._call("query", **kwargs)
            yield page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _get_many(self, keys: Iterable[tuple[str, str]],
                  attributes: Sequence[str] | None = None) -> Iterator[Record]:
        """Items by (ImageKey, FailureTimestamp), in the order given, BATCH_GET keys a request; with
        `attributes`, only those (and the key) are read."""
        keys = list(keys)
        projection = _projection(attributes)
        for start in range(0, len(keys), BATCH_GET):
            chunk = keys[start:start + BATCH_GET]
            wanted = {"Keys": [serialize({"ImageKey": k, "FailureTimestamp": t}) for k, t in chunk],
                      "ConsistentRead": True, **projection}
            found: dict[tuple[str, str], dict[str, Any]] = {}
            delay = 0.05
            while wanted:
                out = self._call("batch_get_item", RequestItems={self.table: wanted})
                for raw in out.get("Responses", {}).get(self.table, []):
                    item = deserialize(raw)
                    found[(item["ImageKey"], item["FailureTimestamp"])] = item
                wanted = out.get("UnprocessedKeys", {}).get(self.table)
                if wanted:  # throttled part of the batch: back off, then ask again for the rest
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
            yield from _records(found[key] for key in chunk if key in found)

    # -- table ------------------------------------------------------------------------------
    def ensure_table(self) -> bool:
        """Create the table and its indexes if missing; True if created. Safe to call any time.

        A table made by an older layout is an error that names `ocrlab adopt`.
        """
        try:
            self.check_table()
            return False
        except TableMissing:
            pass
        try:
            self._call("create_table", **LAYOUT.create_table_request(self.table))
        except StoreUnavailable as exc:
            if exc.code != "ResourceInUseException":  # another process created it first
                raise
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        write_count(self, DEFAULT_SHARDS)
        self._shards = DEFAULT_SHARDS
        if LAYOUT.ttl_attribute:
            try:
                self._call("update_time_to_live", TableName=self.table, TimeToLiveSpecification={
                    "AttributeName": LAYOUT.ttl_attribute, "Enabled": True})
            except StoreUnavailable as exc:
                if exc.code != "UnknownOperationException":  # dynalite: items never expire locally
                    raise
        return True

    def check_table(self) -> None:
        """TableMissing unless the table exists (read paths never create one); an error naming
        `ocrlab adopt` if another writer or an older ocrlab made it."""
        missing = LAYOUT.missing_indexes(self._call("describe_table", TableName=self.table)["Table"])
        if missing:
            raise StoreUnavailable(f"table {self.table!r} lacks the index(es) {', '.join(i.name for i in missing)} "
                                   f"of this ocrlab (the original failure logger's, or an older ocrlab's); "
                                   f"run `ocrlab adopt --table {self.table}`", "OldLayout")

    def migrate(self, layout: TableLayout = LAYOUT) -> list[str]:
        """Add the indexes `layout` has and the table lacks, in place; the names of those made.

        DynamoDB (and the local database) add an index to a live table and backfill it; an index that
        carries fewer attributes than the layout's is dropped and made again (a projection cannot be
        changed in place). Records and helper items are left as they are; the move to the shards is
        ocrlab.store.shards'."""
        described = self._call("describe_table", TableName=self.table)["Table"]
        narrow = layout.narrow_indexes(described)
        remake = layout.missing_indexes(described) + narrow
        for index in narrow:
            self._call("update_table", TableName=self.table, GlobalSecondaryIndexUpdates=[{"Delete": {
                "IndexName": index.name}}])
            self._wait_for_indexes(gone=index.name)
        for index in remake:
            self._call("update_table", TableName=self.table, AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"} for a in (index.hash_key, index.range_key)],
                GlobalSecondaryIndexUpdates=[{"Create": index.request()}])
            self._wait_for_indexes()
        return [i.name for i in remake]

    def _wait_for_indexes(self, gone: str | None = None, seconds: float = 3600) -> None:
        """Until no index is being made or dropped (and the index `gone` is no more): DynamoDB takes
        one index change at a time, and a new index is backfilled before it answers."""
        deadline, pause = time.monotonic() + seconds, 0.2
        while time.monotonic() < deadline:
            indexes = self._call("describe_table", TableName=self.table)["Table"].get("GlobalSecondaryIndexes") or []
            if all(g.get("IndexStatus", "ACTIVE") == "ACTIVE" and g["IndexName"] != gone for g in indexes):
                return
            time.sleep(pause)  # a local index is ready in a moment; DynamoDB's takes minutes
            pause = min(pause * 2, 5.0)
        raise StoreUnavailable(f"the indexes of {self.table!r} did not settle within {seconds:.0f} s", "Timeout")

    # -- a table other code writes too (ocrlab.store.adoption) --------------------------------
    def shared(self) -> bool:
        """Whether the table was adopted (other code writes it too); read again once a minute, so a
        long-lived process notices an adoption made meanwhile."""
        now = time.monotonic()
        if self._shared is None or now - self._shared[0] > CATCH_UP_SECONDS:
            held = adoption.mark(self)
            self._shared = (now, held is not None and held.get("Shared", True) is not False)
        return self._shared[1]

    def _follow_writers(self, image_key: str) -> None:
        """Before a failure is counted on a shared table: the image's records others wrote are adopted
        and its count catches up with them."""
        if self.shared():
            adoption.follow(self, image_key)

    def _follow_others(self) -> None:
        """Before versions are listed or read on a shared table: adopt what others wrote since."""
        now = time.monotonic()
        if now - self._looked_at_others >= CATCH_UP_SECONDS and self.shared():
            self._looked_at_others = now
            adoption.catch_up(self)

    # -- writes -----------------------------------------------------------------------------
    def number(self, image_key: str, record_id: str, failure: bool, version: str = "") -> tuple[int | None, int]:
        """Number a record written without a claim: its Sequence and, for a failure, its AttemptNumber
        (one more failure of the image). Idempotent by record id: asked again for the same record (a
        replay killed between numbering and writing), it gives the same numbers and counts nothing;
        a failure its run already counted as it let go of its claim (the answer was lost: the store
        died) keeps the number counted then."""
        key = serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY})
        names = {"#q": "Sequence", "#nr": "NumberedRecord", "#nq": "NumberedSequence"}
        values = {":rid": {"S": record_id}, ":one": {"N": "1"}, ":zero": {"N": "0"}}
        update = "SET #q = if_not_exists(#q, :zero) + :one, #nq = if_not_exists(#q, :zero) + :one, #nr = :rid"
        # Flat on purpose: `NOT a = :v` holds where `a` is missing, as `attribute_not_exists(a) OR a <>
        # :v` does, and the local database parses a nested condition many times slower.
        condition = "NOT #nr = :rid"
        released = _failure_names(version)
        if failure:
            self._follow_writers(image_key)
            names.update({"#c": "FailureCount", "#na": "NumberedAttempt", "#lr": released["#lr"]})
            update += ", #c = if_not_exists(#c, :zero) + :one, #na = if_not_exists(#c, :zero) + :one"
            condition += " AND NOT #lr = :rid"
        try:
            out = self._call("update_item", TableName=self.table, Key=key, UpdateExpression=update,
                             ConditionExpression=condition, ExpressionAttributeNames=names,
                             ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW")["Attributes"]
            numbers = deserialize(out)
        except ClientError:  # numbered (or counted at the release) before: the same numbers again
            counter = self._item(image_key, COUNTER_KEY) or {}
            if failure and counter.get(released["#lr"]) == record_id:
                sequence = counter.get(released["#ls"], counter.get("Sequence", 0))
                return int(counter.get(released["#la"], 0)), int(sequence)
            numbers = counter
        attempt = numbers.get("NumberedAttempt") if failure else None
        return (int(attempt) if attempt is not None else None), int(numbers.get("NumberedSequence", 0))

    def next_attempt(self, image_key: str) -> int:
        """Atomically count one more failure of the image; the new count is its AttemptNumber."""
        self._follow_writers(image_key)
        out = self._call("update_item", TableName=self.table,
                         Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                         UpdateExpression="ADD #c :one", ExpressionAttributeNames={"#c": "FailureCount"},
                         ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
        return int(out["Attributes"]["FailureCount"]["N"])

    def put_record(self, item: Record, *, count_given_attempt: bool = False, replay: bool = False) -> Record:
        """Write a record under a timestamp unique for its image; idempotent by RecordId.

        A record without a Sequence (one written without a claim) is numbered from the image's
        counter; a failure without an AttemptNumber gets the next one; one that brings its own (a
        caller that numbers attempts itself) still counts, if `count_given_attempt`. The item is made
        storable and completed in place, so a caller that must spool it after an error keeps the
        numbers already handed out. The item may carry a FailureTimestamp (a spooled record does); it
        moves forward by a microsecond only if another record of the image holds that exact time.
        With `replay`, a record found already written is not numbered again. A missing table is created.
        """
        make_storable(cast(dict[str, Any], item))  # in place: the caller's record is completed
        item.setdefault("RecordId", new_record_id())
        item.setdefault("FailureTimestamp", utc_timestamp())
        try:
            self._put(item, count_given_attempt, replay)
        except TableMissing:  # the first write to a new table creates it
            self.ensure_table()
            self._put(item, count_given_attempt, replay)
        return item

    def _put(self, item: Record, count_given_attempt: bool, replay: bool) -> None:
        # Everything that can fail goes before the record itself: an error then means "not written".
        self._register_version(item["OCRFullVersion"])
        if replay and self._written(item):
            return
        failed = item["RecordType"] == FAILED_IMAGE
        count = failed and (item.get("AttemptNumber") is None or count_given_attempt)
        if item.get("Sequence") is None or count:
            attempt, sequence = self.number(item["ImageKey"], item["RecordId"], count, item["OCRFullVersion"])
            item.setdefault("Sequence", Decimal(sequence))
            if failed and item.get("AttemptNumber") is None:
                item["AttemptNumber"] = Decimal(attempt or 0)
        shard = shard_key(item["RecordType"], item["ImageKey"], self.shards or DEFAULT_SHARDS)
        while True:
            try:
                self._call("put_item", TableName=self.table, Item=serialize({**item, SHARD_ATTRIBUTE: shard}),
                           ConditionExpression="attribute_not_exists(FailureTimestamp)")
                return
            except ClientError:
                if self._written(item):
                    return  # written before (a replay, or a retry whose answer was lost)
                item["FailureTimestamp"] = utc_timestamp(after=item["FailureTimestamp"])

    def _written(self, item: Record) -> bool:
        """Whether the record (by RecordId) is in the table: at its key, or (moved on a clash of
        timestamps by an earlier write) anywhere among the image's records."""
        held = self.get(item["ImageKey"], item["FailureTimestamp"])
        if held is not None:
            if held.get("RecordId") == item["RecordId"]:
                return True
            return any(r.get("RecordId") == item["RecordId"] for r in self.image_records(item["ImageKey"]))
        return False

    def _register_version(self, version: str) -> None:
        # One small item per version, so listing versions is a Query rather than a read of every record.
        if version not in self._known_versions:
            self._known_versions.update(self._listed_versions())
        if version not in self._known_versions:
            self._call("put_item", TableName=self.table,
                       Item=serialize({"ImageKey": VERSIONS_KEY, "FailureTimestamp": VERSION_PREFIX + version,
                                       "Version": version}))
            self._known_versions.add(version)

    # -- claims ------------------------------------------------------------------------------
    def claim(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
              since: float | None = None, force: bool = False, *, began: Moment | None = None,
              seen: int | None = None, digest: str | None = None) -> Claim:
        """Claim the image under the version for `owner` and hand out its next Sequence, unless another
        run holds it (lease not expired, owner alive) or, without `force`, the image's last run under
        the version succeeded on the same content (`digest`; a last run that read other content makes
        this one a new revision) or another run finished it after the caller's run began: after the
        image's counter stood at `seen` (a batch reads the counters as it plans: no clock involved),
        after `began` (a run of the same machine, by its monotonic clock, which a wrong wall clock does
        not move), or after the moment `since` (a Lambda event's time, by the wall clock)."""
        names = {**_claim_names(version), "#q": "Sequence"}
        values = {":me": {"S": owner}, ":exp": {"N": str(lease_end(lease_seconds))},
                  ":rid": {"S": record_id}, ":now": {"N": str(int(time.time() - self.clock_skew))}, ":one": {"N": "1"},
                  ":zero": {"N": "0"}}
        used = {k: names[k] for k in ("#o", "#e", "#r", "#q")}
        own = "(attribute_not_exists(#o) OR #e < :now OR #o = :me)"
        conditions = [own]
        if not force:
            values[":ok"] = {"S": OCR_RESULT}
            used["#d"] = names["#d"]
            conditions = [" AND ".join([own, "(attribute_not_exists(#d) OR #d <> :ok)",
                                        *_fresh_terms(names, values, used, since, began, seen)])]
            if digest:  # other content than the last run read: a new revision, whatever that run did
                used["#g"] = names["#g"]
                values[":dig"] = {"S": digest}
                conditions.append(f"{own} AND attribute_exists(#g) AND #g <> :dig")
        # Flat conditions tried in turn rather than one nested expression: the local database's parser
        # takes time exponential in the nesting (74 ms a claim nested, 5 ms flat).
        update = "SET #o = :me, #e = :exp, #r = :rid, #q = if_not_exists(#q, :zero) + :one"
        key = serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY})
        for attempt, condition in enumerate(conditions, 1):
            text = update + condition
            try:
                old = self._call("update_item", TableName=self.table, Key=key, ConditionExpression=condition,
                                 UpdateExpression=update,
                                 ExpressionAttributeNames={k: v for k, v in used.items() if k in text},
                                 ExpressionAttributeValues={k: v for k, v in values.items()
                                                            if re.search(re.escape(k) + r"\b", text)},
                                 ReturnValues="ALL_OLD").get("Attributes", {})
                break
            except ClientError:
                if attempt == len(conditions):
                    return self._claim_refused(image_key, version, owner, record_id, lease_seconds, since, force,
                                               began, seen, digest)
        previous = deserialize(old) if old else {}
        taken_from = previous.get(names["#o"])
        return Claim(True, previous_record=previous.get(names["#r"]) if taken_from and taken_from != owner else None,
                     unconfirmed=_unconfirmed(previous, version, lease_seconds),
                     sequence=int(previous.get("Sequence", 0)) + 1,
                     previous_digest=_other_digest(previous, version, digest))

    def _claim_refused(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
                       since: float | None, force: bool, began: Moment | None, seen: int | None,
                       digest: str | None) -> Claim:
        names = _claim_names(version)
        held = self._item(image_key, COUNTER_KEY) or {}
        new_content = _other_digest(held, version, digest) is not None
        if not force and not new_content:
            if held.get(names["#d"]) == OCR_RESULT:
                return Claim(False, "already succeeded")
            after_since = since is not None and float(held.get(names["#t"], 0)) >= since
            after_began = began is not None and held.get(names["#b"]) == began.boot != "?" and \
                float(held.get(names["#m"], 0)) >= began.clock
            if after_since or after_began or (seen is not None and int(held.get(names["#s"], 0)) > seen):
                return Claim(False, "processed by another run meanwhile")
        holder = held.get(names["#o"])
        if holder and owner_gone(holder):  # its process died on this host: take over now
            try:
                old = self._call("update_item", TableName=self.table, ConditionExpression="#o = :old",
                                 Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                                 UpdateExpression="SET #o = :me, #e = :exp, #r = :rid, "
                                                  "#q = if_not_exists(#q, :zero) + :one",
                                 ExpressionAttributeNames={**{k: names[k] for k in ("#o", "#e", "#r")},
                                                           "#q": "Sequence"},
                                 ExpressionAttributeValues={":old": {"S": holder}, ":me": {"S": owner},
                                                            ":exp": {"N": str(lease_end(lease_seconds))},
                                                            ":rid": {"S": record_id}, ":one": {"N": "1"},
                                                            ":zero": {"N": "0"}},
                                 ReturnValues="ALL_OLD")
                previous = deserialize(old.get("Attributes", {}))
                return Claim(True, previous_record=previous.get(names["#r"]),
                             unconfirmed=_unconfirmed(previous, version, lease_seconds),
                             sequence=int(previous.get("Sequence", 0)) + 1,
                             previous_digest=_other_digest(previous, version, digest))
            except ClientError:
                pass  # someone else took it over first
        return Claim(False, "claimed by another run")

    def release(self, image_key: str, version: str, owner: str, record_type: str, count_failure: bool,
                record_id: str = "", timestamp: str = "", *, sequence: int | None = None,
                digest: str | None = None) -> int | None:
        """Let go of a claim, noting how the run ended (its sequence, the content it read); with
        `count_failure`, also count one more failure of the image and return the count (the failure's
        AttemptNumber). The failure's record id, key and numbers stay on the image until a later run
        confirms the record got written."""
        names = {**_claim_names(version), **_failure_names(version)}
        key = serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY})
        ended = Moment.now()
        values = {":end": {"S": record_type}, ":me": {"S": owner}, ":now": {"N": repr(time.time())},
                  ":clock": {"N": repr(ended.clock)}, ":boot": {"S": ended.boot}}
        sets = ["#d = :end", "#t = :now", "#m = :clock", "#b = :boot"]
        if sequence is not None:
            sets.append("#s = :seq")
            values[":seq"] = {"N": str(sequence)}
        if digest:
            sets.append("#g = :dig")
            values[":dig"] = {"S": digest}
        if count_failure:
            self._follow_writers(image_key)
            names["#c"] = "FailureCount"
            values.update({":one": {"N": "1"}, ":zero": {"N": "0"}, ":rid": {"S": record_id or "?"},
                           ":at": {"S": timestamp or "?"}})
            sets += ["#c = if_not_exists(#c, :zero) + :one", "#la = if_not_exists(#c, :zero) + :one",
                     "#lr = :rid", "#lk = :at", "#lo = :me"]
            sets += ["#ls = :seq"] if sequence is not None else []
        # A failure another run counted and has not confirmed stays, whatever this run's outcome: it is
        # that run's to confirm, or the next plan's to account for once that run is known to be gone.
        update = f"SET {', '.join(sets)} REMOVE #o, #e, #r"
        used = {k: names[k] for k in set(re.findall(r"#\w+", update))}
        try:
            out = self._call("update_item", TableName=self.table, Key=key, ConditionExpression="#o = :me",
                             UpdateExpression=update, ExpressionAttributeNames=used,
                             ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW")
        except ClientError:  # the claim was taken over (lease expired): leave it, count all the same
            return self.next_attempt(image_key) if count_failure else None
        return int(out["Attributes"]["FailureCount"]["N"]) if count_failure else None

    def let_go(self, image_key: str, version: str, owner: str) -> None:
        """Give up a claim unused (the run stopped before it had an outcome): the next run takes it at once."""
        names = _claim_names(version)
        try:
            self._call("update_item", TableName=self.table, ConditionExpression="#o = :me",
                       Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                       UpdateExpression="REMOVE #o, #e, #r",
                       ExpressionAttributeNames={k: names[k] for k in ("#o", "#e", "#r")},
                       ExpressionAttributeValues={":me": {"S": owner}})
        except (ClientError, StoreUnavailable):
            pass  # taken over meanwhile, or the store is down: the lease (or the owner's exit) frees it

    def confirm(self, image_key: str, version: str, record_id: str) -> None:
        """The failure `record_id` is accounted for: forget it (unless a newer one replaced it)."""
        names = _failure_names(version)
        try:
            self._call("update_item", TableName=self.table, ConditionExpression="#lr = :rid",
                       Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                       UpdateExpression="REMOVE #lr, #lk, #la, #lo, #ls", ExpressionAttributeNames=names,
                       ExpressionAttributeValues={":rid": {"S": record_id}})
        except ClientError:
            pass

    def counters(self, keys: Iterable[str], version: str, lease_seconds: float
                 ) -> Iterator[tuple[str, int, Unconfirmed | None]]:
        """Each image's counter as it stands now (a consistent read, 100 images a request): the Sequence
        it last handed out (0 for an image never numbered), and a failure a run now gone counted under
        the version but never confirmed written. What a batch plans against."""
        keys = list(keys)
        found = {r["ImageKey"]: r for r in self._get_many(((k, COUNTER_KEY) for k in keys))}
        for key in keys:
            counter: Mapping[str, Any] = found.get(key, {})
            yield key, int(counter.get("Sequence", 0)), _unconfirmed(counter, version, lease_seconds)

    # -- reads ------------------------------------------------------------------------------
    def get(self, image_key: str, timestamp: str) -> Record | None:
        return cast("Record | None", self._item(image_key, timestamp))

    def _item(self, image_key: str, sort_key: str) -> dict[str, Any] | None:
        """Any item by its key: a record, an image's counter, a table's mark."""
        out = self._call("get_item", TableName=self.table, ConsistentRead=True,
                         Key=serialize({"ImageKey": image_key, "FailureTimestamp": sort_key}))
        return deserialize(out["Item"]) if "Item" in out else None

    def attempt_count(self, image_key: str) -> int:
        """Failures logged for the image so far (all versions)."""
        self._follow_writers(image_key)
        counter = self._item(image_key, COUNTER_KEY)
        return int(counter.get("FailureCount", 0)) if counter else 0

    def records_by_type(self, record_type: str = FAILED_IMAGE, since: str | None = None,
                        until: str | None = None, newest_first: bool = False,
                        attributes: Sequence[str] | None = None) -> Iterator[Record]:
        """All failures (or results) in time order, optionally within [since, until); with
        `attributes`, only those (and the keys) are read."""
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
        projection = _projection(attributes, names)
        arguments = dict(IndexName=BY_RECORD_TYPE.name, KeyConditionExpression=cond, ExpressionAttributeNames=names,
                         ExpressionAttributeValues=values, ScanIndexForward=not newest_first, **projection)
        if self.shards:
            return merged_records(self, record_type, self.shards, arguments, newest_first)
        return _records(self._query(ahead=True, **arguments))

    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[Record]:
        """The records of one image in order (ocrlab.records.order_key: its attempts, when record_type is
        FAILED_IMAGE), from one consistent Query."""
        records = self.records_of_image(image_key, record_type, ocr_version)
        if any(r.get("Sequence") is None for r in records) and self.shared():  # another writer's: numbered first
            adoption.adopt_image(self, image_key)
            records = self.records_of_image(image_key, record_type, ocr_version)
        return iter(records)

    def records_of_image(self, image_key: str, record_type: str | None = None, ocr_version: str | None = None,
                         attributes: Sequence[str] | None = None) -> list[Record]:
        """The image's records as they stand (image_records, without numbering other writers' records);
        with `attributes`, only those (and the keys)."""
        names, values, extra = _filters(record_type=record_type, OCRFullVersion=ocr_version)
        names.update({"#k": "ImageKey", "#s": "FailureTimestamp"})
        values.update({":k": {"S": image_key}, ":z": {"S": RECORDS_FROM}})
        return sorted(_records(self._query(KeyConditionExpression="#k = :k AND #s >= :z", ConsistentRead=True,
                                  ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                                  **extra, **_projection(attributes, names))), key=order_key)

    def version_summary(self, ocr_version: str, record_type: str | None = None) -> Iterator[Record]:
        """The records of a version as the ByVersionImage index holds them (keys, RecordType,
        FailureType, ErrorCode, AttemptNumber, RecordId, Sequence, ContentDigest...), grouped by image,
        each image's in the order of its records (ocrlab.records.order_key)."""
        self._follow_others()
        names, values, extra = _filters(record_type=record_type)
        names["#v"], values[":v"] = "OCRFullVersion", {"S": ocr_version}
        items = _records(self._query(IndexName=BY_VERSION_IMAGE.name, KeyConditionExpression="#v = :v",
                                     ExpressionAttributeNames=names, ExpressionAttributeValues=values, **extra))
        for _, group in groupby(items, key=lambda r: r["ImageKey"]):
            yield from sorted(group, key=order_key)

    def version_records(self, ocr_version: str, record_type: str | None = None,
                        attributes: Sequence[str] | None = None) -> Iterator[Record]:
        """Every record written under one OCRFullVersion, in full (or `attributes` of it), grouped by
        image (time order within)."""
        for page in pages(self.version_summary(ocr_version, record_type), BATCH_GET):
            yield from self._get_many(((r["ImageKey"], r["FailureTimestamp"]) for r in page), attributes)

    def records_by_key(self, keys: Iterable[tuple[str, str]],
                       attributes: Sequence[str] | None = None) -> Iterator[Record]:
        """The records of (ImageKey, FailureTimestamp) pairs, in the order given (missing ones left
        out), in full or just `attributes` (and the key)."""
        return self._get_many(keys, attributes)

    def latest_summary(self, ocr_version: str) -> Iterator[LatestSummary]:
        """Each image's latest record under the version, as the index holds it, with `Failures`:
        the image's failure count under the version. In ImageKey order."""
        for _, group in groupby(self.version_summary(ocr_version), key=lambda r: r["ImageKey"]):
            records = list(group)
            yield {**records[-1], "Failures": sum(r["RecordType"] == FAILED_IMAGE for r in records)}

    def latest_outcomes(self, ocr_version: str) -> Iterator[Record]:
        """The latest record of each image under a version, in full, in ImageKey order."""
        for page in pages(self.latest_summary(ocr_version), BATCH_GET):
            yield from self._get_many((r["ImageKey"], r["FailureTimestamp"]) for r in page)

    def image_latest(self, image_key: str) -> Iterator[Record]:
        """The image's latest record under every version it ran under (one consistent Query)."""
        latest: dict[str, Record] = {}
        for record in sorted(self.image_records(image_key), key=order_key):  # the last of each version wins
            latest[str(record.get("OCRFullVersion"))] = record
        yield from latest.values()

    def failures_page(self, query: FailureQuery, limit: int = 50, cursor: Cursor | None = None,
                      budget: int = DEFAULT_BUDGET) -> FailurePage:
        """One page of the failures `query` selects, in time order, read server-side (ocrlab.store.queries)."""
        if self.shards:
            return sharded_page(self, query, self.shards, limit, cursor, budget)
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
            items = cast(list[Record], [deserialize(raw) for raw in reply.get("Items", [])])
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
        return Counter({r["ImageKey"]: int(r["Failures"]) for r in self.latest_summary(ocr_version)
                        if r["Failures"]})

    def versions(self) -> list[str]:
        """Every OCRFullVersion that has a record, oldest name first."""
        self._follow_others()
        return self._listed_versions()

    def _listed_versions(self) -> list[str]:
        return sorted(item["Version"] for item in self._query(
            KeyConditionExpression="#k = :k", ExpressionAttributeNames={"#k": "ImageKey"},
            ExpressionAttributeValues={":k": {"S": VERSIONS_KEY}}))


def pages(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter), as they stream."""
    rest = iter(items)
    while page := list(islice(rest, size)):
        yield page


def _projection(attributes: Sequence[str] | None, names: dict[str, str] | None = None) -> dict[str, Any]:
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


def _filters(record_type: str | None = None, **equal: str | None) -> tuple[dict[str, str], dict[str, Any],
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


def make_client(target: StoreTarget, max_attempts: int | None = None, pool: int = 32) -> Any:
    """A boto3 DynamoDB client for the target: standard retries, explicit timeouts."""
    # No client-side parameter validation: the store builds every request itself, and the check costs
    # a third of a millisecond of CPU a request (the server validates all the same).
    cfg = Config(retries={"mode": "standard", "max_attempts": max_attempts or settings().store_max_attempts},
                 connect_timeout=3, read_timeout=20, max_pool_connections=pool, parameter_validation=False)
    if target.kind == "local":
        return boto3.client("dynamodb", endpoint_url=target.endpoint_url, region_name=target.region,
                            aws_access_key_id="local", aws_secret_access_key="local", config=cfg)
    return boto3.client("dynamodb", endpoint_url=target.endpoint_url, region_name=target.region, config=cfg)


def connect(table: str, *, start_local: bool = True, create: bool = True, client: Any = None,
            max_attempts: int | None = None, check: bool = True) -> Store:
    """The Store of a table: local dynalite (started on demand) or DynamoDB.

    With `create` a missing table is made; without it (read paths) a missing table is an error.
    """
    target = settings().store_target()
    if client is None:
        if target.kind == "local" and start_local:
            from ocrlab.store.localdb import ensure_running
            ensure_running()
        client = make_client(target, max_attempts)
    store = Store(client, table, target.describe(table), clock_skew=settings().clock_skew)
    if create:
        store.ensure_table()
    elif check:
        store.check_table()
    return store
