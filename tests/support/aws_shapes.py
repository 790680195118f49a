"""The shapes AWS hands a Lambda function and takes back: S3 and SQS events, EMF metric lines.

Events are built as the services send them (S3 URL-encodes keys, spaces as '+'; the SQS event
source wraps each message with its id, receipt handle and attributes). `emf_records` reads a
function's stdout and checks every metric line against the Embedded Metric Format specification.
"""
from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote_plus

REGION, ACCOUNT = "us-east-1", "123456789012"  # moto's default account: the ARNs the local servers use


def s3_record(bucket: str, key: str, *, encode: bool = True, etag: str | None = None,
              event_time: str | None = None) -> dict[str, Any]:
    """One S3 ObjectCreated record; `encode=False` passes an already encoded key. `etag` and `event_time`
    are the object's ETag (as S3 writes it in events: no quotes) and when the event was made."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/") if encode else key, "size": 1}
    if etag:
        obj["eTag"] = etag.strip('"')
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventName": "ObjectCreated:Put",
              "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                     "object": obj}}
    if event_time:
        record["eventTime"] = event_time
    return record


def s3_event(bucket: str, *keys: str, encode: bool = True) -> dict[str, Any]:
    return {"Records": [s3_record(bucket, key, encode=encode) for key in keys]}


def s3_test_event(bucket: str) -> dict[str, Any]:
    """What S3 sends to a queue when a notification is configured."""
    return {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2025-10-25T08:00:00.000Z",
            "Bucket": bucket, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}


def sqs_message(body: Any, *, message_id: str | None = None, queue: str = "ocrlab-images",
                receive_count: int = 1) -> dict[str, Any]:
    """One record of the event Lambda's SQS event source builds; a dict body is sent as JSON."""
    return {"messageId": message_id or str(uuid.uuid4()), "receiptHandle": f"AQEB{uuid.uuid4().hex}",
            "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1761379200000",
                           "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1761379200001"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}", "awsRegion": REGION}


def sqs_event(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(messages)}


# The units EMF accepts (CloudWatch's StandardUnit).
EMF_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
             "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
             "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
             "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
             "Count/Second", "None"}


def emf_records(stdout: str) -> list[dict[str, Any]]:
    """Every EMF line of a function's output, each checked against the specification."""
    records = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "_aws" in record:
            check_emf(record)
            records.append(record)
    return records


def check_emf(record: dict[str, Any]) -> None:
    """Raise AssertionError where a line breaks the Embedded Metric Format specification."""
    meta = record["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 0
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 1024
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for name in dimension_set:
                value = record[name]  # a dimension names a member holding a string
                assert isinstance(value, str) and 1 <= len(value) <= 1024, name
        metrics = directive["Metrics"]
        assert 1 <= len(metrics) <= 100
        for metric in metrics:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert metric.get("Unit", "None") in EMF_UNITS, metric
            value = record[metric["Name"]]  # a metric names a member holding a number or up to 100 numbers
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values), metric


def from_received(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """The event record Lambda makes of a message its poller received from SQS."""
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": message.get("Attributes", {}), "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
            "awsRegion": queue_arn.split(":")[3]}
