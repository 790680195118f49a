"""The events the Lambda handler is given, read into deliveries: what to process, and what to retry by.

Two shapes arrive:
- an S3 event (`Records` of `eventSource` `aws:s3`), when the bucket invokes the function directly;
- an SQS event (`Records` of `eventSource` `aws:sqs`), when the bucket notifies a queue that the
  function consumes. Each message body is itself an S3 event (usually of one record), or the
  `s3:TestEvent` that S3 sends when the notification is configured, which carries no object.

A delivery's `item_id` is what Lambda's partial batch response names: the SQS `messageId` (so
exactly the failed messages go back to the queue), or the object key of a direct S3 event. A record
that cannot be read, of any shape (null, a number, a key that is not a string, an event that is a
list), is a delivery with a `problem` and no objects; one without a message id gets a made-up
`item_id` (`event:REQUEST#N`), which is never given back (Lambda would fail the whole batch for an
identifier it did not send).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from ocrlab.records import parse_timestamp

S3_TEST_EVENT = "s3:TestEvent"


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str  # decoded: S3 events carry keys URL-encoded, spaces as '+'
    region: str | None = None
    event_time: float | None = None  # when S3 made the event (epoch seconds), if it says
    etag: str | None = None          # the object's content when the event was made


@dataclass
class Delivery:
    item_id: str
    objects: list[S3Object] = field(default_factory=list)
    problem: str | None = None     # why the record could not be read
    ignored: str | None = None     # why a readable record holds nothing to do (an S3 test event)
    redelivered: bool = False      # an SQS message received before (it was given back on purpose)
    identified: bool = True        # False: item_id was made up (no message id): nothing to give back by


class Malformed(ValueError):
    """A record that is not what S3 or SQS sends; the message says what is wrong."""


def read_event(event: Any, request_id: str = "local") -> list[Delivery]:
    """The deliveries of an S3 or SQS event, in order. Never raises: an event or a record of any other
    shape is a delivery with a `problem` (under the message id where it has one)."""
    fallback = f"event:{request_id}"
    if not isinstance(event, dict):
        return [Delivery(fallback, problem=f"the event is {_kind(event)}, not an S3 or SQS event", identified=False)]
    records = event.get("Records")
    if not isinstance(records, list):
        what = "has no Records" if records is None else f"has Records that are {_kind(records)}, not a list"
        return [Delivery(fallback, problem=f"the event {what}: not an S3 or SQS event", identified=False)]
    deliveries = []
    for index, record in enumerate(records):
        if isinstance(record, dict) and record.get("eventSource") == "aws:sqs":
            deliveries.append(_from_message(record, f"{fallback}#{index}"))
        else:
            deliveries.append(_from_s3_record(record, f"{fallback}#{index}"))
    return deliveries


def _kind(value: Any) -> str:
    name = type(value).__name__
    return "null" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Malformed(f"{what} is {_kind(value) if value != '' else 'empty'}, not a string")
    return value


def _field(record: Any, *path: str) -> Any:
    value = record
    for name in path:
        if not isinstance(value, dict):
            raise Malformed(f"{'.'.join(path[:path.index(name)]) or 'the record'} is {_kind(value)}, not an object")
        if name not in value:
            raise Malformed(f"missing {'.'.join(path[:path.index(name) + 1])}")
        value = value[name]
    return value


def _s3_object(record: Any) -> S3Object:
    """The object of one S3 event record; Malformed says what is missing or of the wrong type."""
    bucket = _text(_field(record, "s3", "bucket", "name"), "s3.bucket.name")
    key = unquote_plus(_text(_field(record, "s3", "object", "key"), "s3.object.key"))
    obj = record["s3"]["object"]
    etag = obj.get("eTag") if isinstance(obj.get("eTag"), str) and obj.get("eTag") else None
    region = record.get("awsRegion") if isinstance(record.get("awsRegion"), str) else None
    return S3Object(bucket, key, region, _epoch(record.get("eventTime")), etag)


def _epoch(text: Any) -> float | None:
    try:
        return parse_timestamp(text).replace(tzinfo=dt.timezone.utc).timestamp() if isinstance(text, str) else None
    except ValueError:
        return None


def _from_s3_record(record: Any, fallback_id: str) -> Delivery:
    try:
        obj = _s3_object(record)
    except Malformed as exc:
        return Delivery(fallback_id, problem=f"malformed S3 event record: {exc}", identified=False)
    return Delivery(obj.key, [obj])


def _from_message(message: dict[str, Any], fallback_id: str) -> Delivery:
    identified = isinstance(message.get("messageId"), str) and bool(message["messageId"])
    item_id = message["messageId"] if identified else fallback_id
    listed = message.get("attributes")
    attributes = listed if isinstance(listed, dict) else {}
    received = str(attributes.get("ApproximateReceiveCount", "1"))
    redelivered = received.isdigit() and int(received) > 1
    try:
        body = json.loads(message["body"])
    except (KeyError, TypeError, ValueError) as exc:
        return Delivery(item_id, problem=f"SQS message body is not JSON: {type(exc).__name__}: {exc}",
                        identified=identified)
    if isinstance(body, dict) and body.get("Event") == S3_TEST_EVENT:
        return Delivery(item_id, ignored=f"{S3_TEST_EVENT} of bucket {body.get('Bucket')!r}")
    records = body.get("Records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        return Delivery(item_id, problem="SQS message body is not an S3 event: no Records", identified=identified)
    try:
        return Delivery(item_id, [_s3_object(record) for record in records], redelivered=redelivered,
                        identified=identified)
    except Malformed as exc:
        return Delivery(item_id, problem=f"malformed S3 event record in SQS message: {exc}", identified=identified)
