"""The original failure logger (`src/failed_image_logger.py` of ../shared/seed/failed-image-tracking-summary.md),
written from its design document and used by the tests as a client, the way a team that runs it
today would: boto3's resource API, naive UTC timestamps from `datetime.utcnow().isoformat()`, a Scan
filtered on RecordType (following LastEvaluatedKey), its own `get_attempt_count` (a Query counting
the image's FAILED_IMAGE records), failure types classified by matching the exception's text.

Nothing here imports ocrlab.
"""
from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr, Key

dynamodb: Any = None  # boto3.resource("dynamodb"), pointed at a server by `connect`

CSV_COLUMNS = ["ImageKey", "FailureTimestamp", "FailureType", "ErrorMessage", "ErrorCode", "OCRVersion",
               "OCRBuildDate", "OCRFullVersion", "ModelId", "ProcessingTimeSeconds", "InputTokens",
               "OutputTokens", "ValidationErrors", "S3Bucket", "ImageSize", "AttemptNumber",
               "CloudWatchLogStream", "RawOCROutput", "StackTrace"]


def connect(endpoint_url: str) -> None:
    global dynamodb
    dynamodb = boto3.resource("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")


def classify(error: Exception) -> str:
    """The Lambda's exception handler, as the design document gives it."""
    failure_type = "OCR_ERROR"
    if "parsing" in str(error).lower() or "json" in str(error).lower():
        failure_type = "PARSING_ERROR"
    elif "validation" in str(error).lower():
        failure_type = "VALIDATION_ERROR"
    elif "throttl" in str(error).lower():
        failure_type = "THROTTLING_ERROR"
    return failure_type


def log_failed_image(table_name: str, image_key: str, failure_type: str, error_message: str,
                     ocr_version: dict[str, str], error_details: dict[str, Any] | None = None) -> dict[str, Any]:
    details = error_details or {}
    item: dict[str, Any] = {
        "ImageKey": image_key,
        "FailureTimestamp": dt.datetime.utcnow().isoformat(),
        "RecordType": "FAILED_IMAGE",
        "FailureType": failure_type,
        "ErrorMessage": error_message[:5000],
        "ErrorCode": details.get("error_code", "Unknown"),
        "OCRVersion": ocr_version["version"],
        "OCRBuildDate": ocr_version["build_date"],
        "OCRDescription": ocr_version["description"],
        "OCRFullVersion": f"{ocr_version['version']}-{ocr_version['build_date']}",
        "AttemptNumber": details.get("attempt_number", 1),
    }
    optional = {"model_id": "ModelId", "input_tokens": "InputTokens", "output_tokens": "OutputTokens",
                "s3_bucket": "S3Bucket", "s3_region": "S3Region", "image_size": "ImageSize",
                "cloudwatch_log_stream": "CloudWatchLogStream"}
    for name, attribute in optional.items():
        if details.get(name) is not None:
            item[attribute] = details[name]
    if details.get("processing_time") is not None:
        item["ProcessingTimeSeconds"] = Decimal(str(details["processing_time"]))
    for name, attribute, limit in (("raw_ocr_output", "RawOCROutput", 10000), ("stack_trace", "StackTrace", 5000),
                                   ("validation_errors", "ValidationErrors", 2000)):
        if details.get(name):
            item[attribute] = str(details[name])[:limit]
    dynamodb.Table(table_name).put_item(Item=item)
    return item


def get_attempt_count(table_name: str, image_key: str) -> int:
    table = dynamodb.Table(table_name)
    count, start = 0, None
    while True:
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("ImageKey").eq(image_key),
                                  "FilterExpression": Attr("RecordType").eq("FAILED_IMAGE"), "Select": "COUNT"}
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = table.query(**kwargs)
        count += response["Count"]
        start = response.get("LastEvaluatedKey")
        if not start:
            return count


def get_all_failed_images(table_name: str, failure_type: str | None = None) -> list[dict[str, Any]]:
    table = dynamodb.Table(table_name)
    condition = Attr("RecordType").eq("FAILED_IMAGE")
    if failure_type:
        condition = condition & Attr("FailureType").eq(failure_type)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"FilterExpression": condition}
    while True:
        response = table.scan(**kwargs)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    items.sort(key=lambda x: x.get("FailureTimestamp", ""), reverse=True)
    return items


def export_failed_images_csv(table_name: str, output_path: str, failure_type: str | None = None) -> int:
    items = get_all_failed_images(table_name, failure_type)
    with open(output_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for item in items:
            writer.writerow({k: item.get(k, "") for k in CSV_COLUMNS})
    return len(items)


def get_failure_statistics(table_name: str) -> dict[str, Any]:
    items = get_all_failed_images(table_name)
    day_ago = dt.datetime.utcnow() - dt.timedelta(hours=24)
    return {
        "total_failures": len(items),
        "unique_images": len({i["ImageKey"] for i in items}),
        "recent_failures_24h": sum(1 for i in items if dt.datetime.fromisoformat(i["FailureTimestamp"]) > day_ago),
        "failure_types": dict(Counter(i.get("FailureType", "UNKNOWN") for i in items)),
        "by_ocr_version": dict(Counter(i.get("OCRVersion", "unknown") for i in items)),
    }
