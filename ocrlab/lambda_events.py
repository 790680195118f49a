"""The events the Lambda handler is given, read into deliveries: what to process, and what to retry by.

Two shapes arrive:
- an S3 event (`Records` of `eventSource` `aws:s3`), when the bucket invokes the function directly;
- an SQS event (`Records` of `eventSource` `aws:sqs`), when the bucket notifies a queue that the
  function consumes. Each message body is itself an S3 event (usually of one record), or the
  `s3:TestEvent` that S3 sends when the notification is configured, which carries no object.

A delivery's `item_id` is what Lambda's partial batch response names: the SQS `messageId` (so
exactly the failed messages go back to the queue), or the object key of a direct S3 event. A record
that cannot be read is a delivery with a `problem` and no objects.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from .records import parse_timestamp

S3_TEST_EVENT = "s3:TestEvent"


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str  # decoded: S3 events carry keys URL-encoded, spaces as '+'
    region: str | None = None
    event_time: float | None = None  # when S3 made the event (epoch seconds), if it says


@dataclass
class Delivery:
    item_id: str
    objects: list[S3Object] = field(default_factory=list)
    problem: str | None = None     # why the record could not be read
    ignored: str | None = None     # why a readable record holds nothing to do (an S3 test event)
    redelivered: bool = False      # an SQS message received before (it was given back on purpose)


def read_event(event: dict[str, Any], request_id: str = "local") -> list[Delivery]:
    """The deliveries of an S3 or SQS event, in order."""
    deliveries = []
    for index, record in enumerate(event.get("Records") or []):
        if isinstance(record, dict) and record.get("eventSource") == "aws:sqs":
            deliveries.append(_from_message(record, f"event:{request_id}#{index}"))
        else:
            deliveries.append(_from_s3_record(record, f"event:{request_id}#{index}"))
    return deliveries


def _s3_object(record: Any) -> S3Object:
    """The object of one S3 event record; KeyError or TypeError names what is missing."""
    return S3Object(record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"]),
                    record.get("awsRegion"), _epoch(record.get("eventTime")))


def _epoch(text: Any) -> float | None:
    try:
        return parse_timestamp(text).replace(tzinfo=dt.timezone.utc).timestamp() if isinstance(text, str) else None
    except ValueError:
        return None


def _from_s3_record(record: Any, fallback_id: str) -> Delivery:
    try:
        obj = _s3_object(record)
    except (KeyError, TypeError) as exc:
        return Delivery(fallback_id, problem=f"malformed S3 event record: missing {exc}")
    return Delivery(obj.key, [obj])


def _from_message(message: dict[str, Any], fallback_id: str) -> Delivery:
    item_id = message.get("messageId") or fallback_id
    received = str((message.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
    redelivered = received.isdigit() and int(received) > 1
    try:
        body = json.loads(message["body"])
    except (KeyError, TypeError, ValueError) as exc:
        return Delivery(item_id, problem=f"SQS message body is not JSON: {type(exc).__name__}: {exc}")
    if isinstance(body, dict) and body.get("Event") == S3_TEST_EVENT:
        return Delivery(item_id, ignored=f"{S3_TEST_EVENT} of bucket {body.get('Bucket')!r}")
    records = body.get("Records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        return Delivery(item_id, problem="SQS message body is not an S3 event: no Records")
    try:
        return Delivery(item_id, [_s3_object(record) for record in records], redelivered=redelivered)
    except (KeyError, TypeError) as exc:
        return Delivery(item_id, problem=f"malformed S3 event record in SQS message: missing {exc}")
