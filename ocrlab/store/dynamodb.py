"""The DynamoDB store: one table, two indexes (ocrlab.store.layout), every read a paginated Query.

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

import time
import uuid
from collections import Counter
from itertools import groupby, islice
from typing import Any, Iterable, Iterator, Sequence, TypeVar

import boto3
from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..config import StoreTarget, settings
from ..domain import Record
from ..errors import RecordRejected, StoreUnavailable, TableMissing
from ..records import FAILED_IMAGE, OCR_RESULT, make_storable, utc_timestamp
from ..taxonomy import THROTTLING_CODES, aws_error_code
from .claims import Claim, Unconfirmed, lease_end, owner_gone
from .layout import BY_RECORD_TYPE, BY_VERSION_IMAGE, LAYOUT
from .queries import DEFAULT_BUDGET, MAX_CALL_ITEMS, Cursor, FailurePage, FailureQuery, cursor_after, query_plan
from .read_ahead import read_ahead

COUNTER_KEY = "#COUNTER"
VERSIONS_KEY, VERSION_PREFIX = "#VERSIONS", "#V#"  # the list of versions seen, one item each
RECORDS_FROM = "0"  # record sort keys are timestamps, which start with a digit
# Refusals of the item itself: no retry or outage is involved.
CONTENT_CODES = frozenset({"ValidationException", "ItemCollectionSizeLimitExceededException"})
BATCH_GET = 100  # keys per BatchGetItem

_ser, _de = TypeSerializer(), TypeDeserializer()
T = TypeVar("T")


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    # Strings and numbers are nearly every attribute a read returns: taken as boto3 takes them but
    # without its dispatch (strings inline), which was a third of an export's time.
    return {k: v["S"] if "S" in v else _value(v) for k, v in item.items()}


def _value(value: dict[str, Any]) -> Any:
    if "N" in value:
        return DYNAMODB_CONTEXT.create_decimal(value["N"])
    return _de.deserialize(value)


def _claim_names(version: str) -> dict[str, str]:
    return {"#o": f"ClaimOwner@{version}", "#e": f"ClaimExpires@{version}", "#r": f"ClaimRecord@{version}",
            "#d": f"LastRun@{version}", "#t": f"LastRunAt@{version}"}


def _failure_names(version: str) -> dict[str, str]:
    """What a failing run leaves until its record is confirmed: the record's id and key, its number."""
    return {"#lr": f"LastRecord@{version}", "#lk": f"LastRecordAt@{version}", "#la": f"LastAttempt@{version}",
            "#lo": f"LastOwner@{version}"}


def _unconfirmed(item: dict[str, Any], version: str, lease_seconds: float) -> Unconfirmed | None:
    """The last run's failure, if that run is gone (its process, or its lease long past) and the
    failure was never confirmed written."""
    names = _failure_names(version)
    record, owner = item.get(names["#lr"]), item.get(names["#lo"])
    ended = float(item.get(f"LastRunAt@{version}", 0))
    if not record or not (owner_gone(str(owner)) or time.time() - ended > lease_seconds):
        return None
    return Unconfirmed(str(record), str(item.get(names["#lk"], "")), int(item.get(names["#la"], 0)))


class Store:
    """Failure and result records in one DynamoDB table, through a boto3 client (injectable)."""

    def __init__(self, client: Any, table: str, description: str = "") -> None:
        self.client = client
        self.table = table
        self.description = description or f"table {table!r}"
        self._known_versions: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One client call, its errors as ocrlab's own; a failed condition is re-raised for the caller."""
        try:
            return getattr(self.client, operation)(**kwargs)
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
            found: dict[tuple[str, str], Record] = {}
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
            yield from (found[key] for key in chunk if key in found)

    # -- table ------------------------------------------------------------------------------
    def ensure_table(self) -> bool:
        """Create the table and its indexes if missing; True if created. Safe to call any time.

        A table made by an older layout is an error that names `ocrlab db migrate`.
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
        `ocrlab db migrate` if an older ocrlab made it."""
        missing = LAYOUT.missing_indexes(self._call("describe_table", TableName=self.table)["Table"])
        if missing:
            raise StoreUnavailable(f"table {self.table!r} lacks the index(es) {', '.join(i.name for i in missing)} "
                                   f"of this ocrlab; run `ocrlab db migrate --table {self.table}`", "OldLayout")

    def migrate(self, rebuild: bool = False) -> list[str]:
        """Bring a table made by an older ocrlab to this layout; the names of the indexes made.

        DynamoDB adds an index to a live table (and backfills it); an index that carries fewer
        attributes than this layout's is dropped and made again (a projection cannot be changed in
        place). A server that cannot (dynalite accepts the requests and ignores them) gets
        `rebuild`: the records are copied to a table of this layout, the table made anew, the
        records copied back; failure counts and the version list are rebuilt from the records.
        """
        described = self._call("describe_table", TableName=self.table)["Table"]
        narrow = LAYOUT.narrow_indexes(described)
        remake = LAYOUT.missing_indexes(described) + narrow
        if not remake:
            return []
        if rebuild:
            self._rebuild()
            return [i.name for i in remake]
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
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            indexes = self._call("describe_table", TableName=self.table)["Table"].get("GlobalSecondaryIndexes") or []
            if all(g.get("IndexStatus", "ACTIVE") == "ACTIVE" and g["IndexName"] != gone for g in indexes):
                return
            time.sleep(5)
        raise StoreUnavailable(f"the indexes of {self.table!r} did not settle within {seconds:.0f} s", "Timeout")

    def _rebuild(self) -> None:
        spare = Store(self.client, f"{self.table}-migrating", self.description)
        spare.ensure_table()
        _copy_records(self, spare)
        self._call("delete_table", TableName=self.table)
        self.client.get_waiter("table_not_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1})
        self.ensure_table()
        _copy_records(spare, self)
        self._call("delete_table", TableName=spare.table)

    # -- writes -----------------------------------------------------------------------------
    def next_attempt(self, image_key: str) -> int:
        """Atomically count one more failure of the image; the new count is its AttemptNumber."""
        out = self._call("update_item", TableName=self.table,
                         Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                         UpdateExpression="ADD #c :one", ExpressionAttributeNames={"#c": "FailureCount"},
                         ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
        return int(out["Attributes"]["FailureCount"]["N"])

    def put_record(self, item: Record, *, count_given_attempt: bool = False) -> Record:
        """Write a record under a timestamp unique for its image; idempotent by RecordId.

        A failure without an AttemptNumber gets the next one; one that brings its own (a caller
        that numbers attempts itself) still counts, if `count_given_attempt`. The item is made
        storable (ocrlab.records.make_storable) and completed in place, so a caller that must
        spool it after an error keeps the AttemptNumber already handed out. The item may carry a
        FailureTimestamp (a spooled record does); it moves forward by a microsecond only if
        another record of the image holds that exact time. A missing table is created.
        """
        make_storable(item)
        item.setdefault("RecordId", uuid.uuid4().hex)
        item.setdefault("FailureTimestamp", utc_timestamp())
        try:
            self._put(item, count_given_attempt)
        except TableMissing:  # the first write to a new table creates it
            self.ensure_table()
            self._put(item, count_given_attempt)
        return item

    def _put(self, item: Record, count_given_attempt: bool) -> None:
        # Everything that can fail goes before the record itself: an error then means "not written".
        self._register_version(item["OCRFullVersion"])
        if item["RecordType"] == FAILED_IMAGE:
            if item.get("AttemptNumber") is None:
                item["AttemptNumber"] = self.next_attempt(item["ImageKey"])
            elif count_given_attempt:
                self.next_attempt(item["ImageKey"])
        while True:
            try:
                self._call("put_item", TableName=self.table, Item=serialize(item),
                           ConditionExpression="attribute_not_exists(FailureTimestamp)")
                return
            except ClientError:
                held = self.get(item["ImageKey"], item["FailureTimestamp"])
                if held is not None and held.get("RecordId") == item["RecordId"]:
                    return  # written before (a replay, or a retry whose answer was lost)
                item["FailureTimestamp"] = utc_timestamp(after=item["FailureTimestamp"])

    def _register_version(self, version: str) -> None:
        # One small item per version, so listing versions is a Query rather than a read of every record.
        if version not in self._known_versions:
            self._known_versions.update(self.versions())
        if version not in self._known_versions:
            self._call("put_item", TableName=self.table,
                       Item=serialize({"ImageKey": VERSIONS_KEY, "FailureTimestamp": VERSION_PREFIX + version,
                                       "Version": version}))
            self._known_versions.add(version)

    # -- claims ------------------------------------------------------------------------------
    def claim(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
              since: float | None = None, force: bool = False) -> Claim:
        """Claim the image under the version for `owner`, unless another run holds it (lease not
        expired, owner alive) or, without `force`, its last run under the version succeeded or (with
        `since`, the time the caller planned its work) ended after `since`: another run did it meanwhile."""
        names = _claim_names(version)
        values = {":me": {"S": owner}, ":exp": {"N": str(lease_end(lease_seconds))},
                  ":rid": {"S": record_id}, ":now": {"N": str(int(time.time()))}}
        condition = "(attribute_not_exists(#o) OR #e < :now OR #o = :me)"
        used = {k: names[k] for k in ("#o", "#e", "#r")}
        if not force:
            condition += " AND (attribute_not_exists(#d) OR #d <> :ok)"
            values[":ok"] = {"S": OCR_RESULT}
            used["#d"] = names["#d"]
            if since is not None:
                condition += " AND (attribute_not_exists(#t) OR #t < :since)"
                values[":since"] = {"N": repr(since)}
                used["#t"] = names["#t"]
        key = serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY})
        try:
            old = self._call("update_item", TableName=self.table, Key=key, ConditionExpression=condition,
                             UpdateExpression="SET #o = :me, #e = :exp, #r = :rid", ExpressionAttributeNames=used,
                             ExpressionAttributeValues=values, ReturnValues="ALL_OLD").get("Attributes", {})
        except ClientError:
            return self._claim_refused(image_key, version, owner, record_id, lease_seconds, since, force)
        previous = deserialize(old) if old else {}
        taken_from = previous.get(names["#o"])
        return Claim(True, previous_record=previous.get(names["#r"]) if taken_from and taken_from != owner else None,
                     unconfirmed=_unconfirmed(previous, version, lease_seconds))

    def _claim_refused(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
                       since: float | None, force: bool) -> Claim:
        names = _claim_names(version)
        held = self.get(image_key, COUNTER_KEY) or {}
        if not force and held.get(names["#d"]) == OCR_RESULT:
            return Claim(False, "already succeeded")
        if not force and since is not None and float(held.get(names["#t"], 0)) >= since:
            return Claim(False, "processed by another run meanwhile")
        holder = held.get(names["#o"])
        if holder and owner_gone(holder):  # its process died on this host: take over now
            try:
                self._call("update_item", TableName=self.table, ConditionExpression="#o = :old",
                           Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                           UpdateExpression="SET #o = :me, #e = :exp, #r = :rid",
                           ExpressionAttributeNames={k: names[k] for k in ("#o", "#e", "#r")},
                           ExpressionAttributeValues={":old": {"S": holder}, ":me": {"S": owner},
                                                      ":exp": {"N": str(lease_end(lease_seconds))},
                                                      ":rid": {"S": record_id}})
                return Claim(True, previous_record=held.get(names["#r"]),
                             unconfirmed=_unconfirmed(held, version, lease_seconds))
            except ClientError:
                pass  # someone else took it over first
        return Claim(False, "claimed by another run")

    def release(self, image_key: str, version: str, owner: str, record_type: str, count_failure: bool,
                record_id: str = "", timestamp: str = "") -> int | None:
        """Let go of a claim, noting how the run ended; with `count_failure`, also count one more
        failure of the image and return the count (the failure's AttemptNumber). The failure's record
        id and key stay on the image until a later run confirms the record got written."""
        names = {**_claim_names(version), **_failure_names(version)}
        key = serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY})
        values = {":end": {"S": record_type}, ":me": {"S": owner}, ":now": {"N": repr(time.time())}}
        if count_failure:
            names["#c"] = "FailureCount"
            values.update({":one": {"N": "1"}, ":zero": {"N": "0"}, ":rid": {"S": record_id or "?"},
                           ":at": {"S": timestamp or "?"}})
            update = ("SET #d = :end, #t = :now, #c = if_not_exists(#c, :zero) + :one, "
                      "#la = if_not_exists(#c, :zero) + :one, #lr = :rid, #lk = :at, #lo = :me REMOVE #o, #e, #r")
        else:
            update = "SET #d = :end, #t = :now REMOVE #o, #e, #r, #lr, #lk, #la, #lo"
        try:
            out = self._call("update_item", TableName=self.table, Key=key, ConditionExpression="#o = :me",
                             UpdateExpression=update, ExpressionAttributeNames=names,
                             ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW")
        except ClientError:  # the claim was taken over (lease expired): leave it, count all the same
            return self.next_attempt(image_key) if count_failure else None
        return int(out["Attributes"]["FailureCount"]["N"]) if count_failure else None

    def confirm(self, image_key: str, version: str, record_id: str) -> None:
        """The failure `record_id` is accounted for: forget it (unless a newer one replaced it)."""
        names = _failure_names(version)
        try:
            self._call("update_item", TableName=self.table, ConditionExpression="#lr = :rid",
                       Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                       UpdateExpression="REMOVE #lr, #lk, #la, #lo", ExpressionAttributeNames=names,
                       ExpressionAttributeValues={":rid": {"S": record_id}})
        except ClientError:
            pass

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
        return self._query(ahead=True, IndexName=BY_RECORD_TYPE.name, KeyConditionExpression=cond,
                           ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                           ScanIndexForward=not newest_first, **projection)

    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[Record]:
        """The records of one image in time order (its attempts, when record_type is FAILED_IMAGE)."""
        names, values, extra = _filters(record_type=record_type, OCRFullVersion=ocr_version)
        names.update({"#k": "ImageKey", "#s": "FailureTimestamp"})
        values.update({":k": {"S": image_key}, ":z": {"S": RECORDS_FROM}})
        return self._query(KeyConditionExpression="#k = :k AND #s >= :z", ConsistentRead=True,
                           ExpressionAttributeNames=names, ExpressionAttributeValues=values, **extra)

    def version_summary(self, ocr_version: str, record_type: str | None = None) -> Iterator[Record]:
        """The records of a version as the ByVersionImage index holds them (keys, RecordType,
        FailureType, ErrorCode, AttemptNumber, RecordId), grouped by image, each image in time order."""
        names, values, extra = _filters(record_type=record_type)
        names["#v"], values[":v"] = "OCRFullVersion", {"S": ocr_version}
        items = self._query(IndexName=BY_VERSION_IMAGE.name, KeyConditionExpression="#v = :v",
                            ExpressionAttributeNames=names, ExpressionAttributeValues=values, **extra)
        for _, group in groupby(items, key=lambda r: r["ImageKey"]):
            yield from sorted(group, key=lambda r: r["FailureTimestamp"])

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

    def latest_summary(self, ocr_version: str) -> Iterator[Record]:
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
        for record in self.image_records(image_key):  # time order: the last of each version wins
            latest[str(record.get("OCRFullVersion"))] = record
        yield from latest.values()

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
        return Counter({r["ImageKey"]: int(r["Failures"]) for r in self.latest_summary(ocr_version)
                        if r["Failures"]})

    def versions(self) -> list[str]:
        """Every OCRFullVersion that has a record, oldest name first."""
        return sorted(item["Version"] for item in self._query(
            KeyConditionExpression="#k = :k", ExpressionAttributeNames={"#k": "ImageKey"},
            ExpressionAttributeValues={":k": {"S": VERSIONS_KEY}}))


def _copy_records(source: Store, target: Store) -> None:
    """Every record of `source` into `target` as it is, then the failure counters and the version
    list the records imply (the helper items of an older layout are not carried over)."""
    counts: Counter[str] = Counter()
    versions: set[str] = set()
    for record_type in (FAILED_IMAGE, OCR_RESULT):
        for page in pages(source.records_by_type(record_type), 25):
            _write_all(target, page)
            counts.update(r["ImageKey"] for r in page if r["RecordType"] == FAILED_IMAGE)
            versions.update(str(r["OCRFullVersion"]) for r in page if r.get("OCRFullVersion"))
    helpers = [{"ImageKey": key, "FailureTimestamp": COUNTER_KEY, "FailureCount": n} for key, n in counts.items()]
    helpers += [{"ImageKey": VERSIONS_KEY, "FailureTimestamp": VERSION_PREFIX + v, "Version": v} for v in versions]
    for page in pages(helpers, 25):
        _write_all(target, page)


def _write_all(store: Store, items: list[dict[str, Any]]) -> None:
    requests = [{"PutRequest": {"Item": serialize(item)}} for item in items]
    delay = 0.05
    while requests:
        out = store._call("batch_write_item", RequestItems={store.table: requests})
        requests = out.get("UnprocessedItems", {}).get(store.table, [])
        if requests:
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


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
            from .localdb import ensure_running
            ensure_running()
        client = make_client(target, max_attempts)
    store = Store(client, table, target.describe(table))
    if create:
        store.ensure_table()
    elif check:
        store.check_table()
    return store
