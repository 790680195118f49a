"""AWS Lambda entry point for S3 object-created events: `ocrlab.handler.lambda_handler`.

Configuration from the environment (ocrlab.config): OCRLAB_TABLE (or DYNAMODB_TABLE; default
"ocrlab"), OCRLAB_ENGINE (default "bedrock"), OCRLAB_VERSION_FILE.
One bad record never costs the others: each is processed on its own, and the response lists
the failed items (`batchItemFailures`, the shape Lambda's partial-batch reporting expects).
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import unquote_plus

from .config import settings
from .engines import get_engine
from .errors import FailureType, StoreUnavailable
from .pipeline import ImageContext, Pipeline
from .records import failure_item, parse_timestamp, storage_key
from .sources import s3_client
from .store import open_store
from .store.claims import DEFAULT_LEASE_SECONDS, Ticket, new_owner
from .version import load_version

_pipeline: Pipeline | None = None
_owner = new_owner()  # this container, as claims name it


def _get_pipeline() -> Pipeline:
    # Built once per container: engine clients and the store connection survive warm starts.
    global _pipeline
    if _pipeline is None:
        config = settings()
        _pipeline = Pipeline(get_engine(config.handler_engine), load_version(), open_store(config.table))
    return _pipeline


def reset() -> None:
    """Forget the cached pipeline (tests, or a changed environment)."""
    global _pipeline
    _pipeline = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    pipeline = _get_pipeline()
    log_stream = getattr(context, "log_stream_name", None) or "unknown"
    request_id = getattr(context, "aws_request_id", None) or "local"
    succeeded, skipped, failed = 0, 0, []
    for index, record in enumerate(event.get("Records") or []):
        try:
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])  # S3 event keys are URL-encoded
        except (KeyError, TypeError) as exc:
            item_id = f"event:{request_id}#{index}"
            _log_malformed(pipeline, item_id, exc, log_stream)
            failed.append({"itemIdentifier": item_id, "failureType": FailureType.INPUT_ERROR.value,
                           "error": f"malformed S3 event record: missing {exc}"})
            continue
        region = record.get("awsRegion")
        ticket = _claim(pipeline, key, record.get("eventTime"))
        if ticket is False:  # a duplicate delivery, or another invocation has it: not a failure
            skipped += 1
            continue
        data, read_error = None, None
        try:
            data = s3_client(region).get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # recorded as this image's failure, then on to the next record
            read_error = exc
        outcome = pipeline.process(key, data, ImageContext(bucket, region, log_stream), read_error=read_error,
                                   ticket=ticket or None)
        if outcome.ok:
            succeeded += 1
        else:
            failed.append({"itemIdentifier": key, "bucket": bucket, "failureType": outcome.failure_type,
                           "error": outcome.error})
    return {"processed": succeeded + len(failed), "succeeded": succeeded, "failed": len(failed),
            "skipped": skipped, "batchItemFailures": failed}


def _claim(pipeline: Pipeline, key: str, event_time: str | None) -> Ticket | bool:
    """Claim the object for this invocation: a Ticket, False when another run has it or already did
    it since the event (S3 delivers some events twice), True when the store cannot say (run anyway)."""
    ticket = Ticket(_owner, uuid.uuid4().hex)
    try:
        since = parse_timestamp(event_time).replace(tzinfo=dt.timezone.utc).timestamp() if event_time else 0.0
    except ValueError:
        since = 0.0
    try:
        claim = pipeline.store.claim(storage_key(key), pipeline.version.full_version, _owner, ticket.record_id,
                                     DEFAULT_LEASE_SECONDS, since)
        if claim.unconfirmed:
            pipeline.store.account_for(storage_key(key), pipeline.version, claim.unconfirmed)
    except StoreUnavailable:
        return True
    return ticket if claim.granted else False


def _log_malformed(pipeline: Pipeline, item_id: str, exc: Exception, log_stream: str) -> None:
    item = failure_item(item_id, FailureType.INPUT_ERROR.value, f"malformed S3 event record: missing {exc}",
                        pipeline.version, {"error_code": "MalformedEventRecord", "cloudwatch_log_stream": log_stream})
    pipeline.store.write(item)
