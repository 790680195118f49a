"""AWS Lambda entry point for S3 object-created events: `ocrlab.handler.lambda_handler`.

Configuration from the environment (ocrlab.config): OCRLAB_TABLE (or DYNAMODB_TABLE; default
"ocrlab"), OCRLAB_ENGINE (default "bedrock"), OCRLAB_VERSION_FILE.
One bad record never costs the others: each is processed on its own, and the response lists
the failed items (`batchItemFailures`, the shape Lambda's partial-batch reporting expects).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from .config import settings
from .engines import get_engine
from .errors import FailureType
from .pipeline import ImageContext, Pipeline
from .records import failure_item
from .sources import s3_client
from .store import open_store
from .version import load_version

_pipeline: Pipeline | None = None


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
    succeeded, failed = 0, []
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
        data, read_error = None, None
        try:
            data = s3_client(region).get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # recorded as this image's failure, then on to the next record
            read_error = exc
        outcome = pipeline.process(key, data, ImageContext(bucket, region, log_stream), read_error=read_error)
        if outcome.ok:
            succeeded += 1
        else:
            failed.append({"itemIdentifier": key, "bucket": bucket, "failureType": outcome.failure_type,
                           "error": outcome.error})
    return {"processed": succeeded + len(failed), "succeeded": succeeded, "failed": len(failed),
            "batchItemFailures": failed}


def _log_malformed(pipeline: Pipeline, item_id: str, exc: Exception, log_stream: str) -> None:
    item = failure_item(item_id, FailureType.INPUT_ERROR.value, f"malformed S3 event record: missing {exc}",
                        pipeline.version, {"error_code": "MalformedEventRecord", "cloudwatch_log_stream": log_stream})
    pipeline.store.write(item)
