"""AWS Lambda entry point: `ocrlab.handler.lambda_handler`, for S3 events and SQS messages carrying them.

Configuration from the environment (ocrlab.config): OCRLAB_TABLE (or DYNAMODB_TABLE; default
"ocrlab"), OCRLAB_ENGINE (default "bedrock"), the version stamp (OCRLAB_OCR_VERSION,
OCRLAB_OCR_BUILD_DATE, OCRLAB_OCR_DESCRIPTION, or OCRLAB_VERSION_FILE), the Bedrock model, answer
path and prompt, OCRLAB_METRICS_NAMESPACE. The table must exist (the stack creates it): the
function never creates or describes it, so its role needs no such permission.

One bad record never costs the others: each image is processed on its own. `batchItemFailures`
(Lambda's partial batch response) names the deliveries to try again: with SQS exactly those
messages return to the queue, and after its maxReceiveCount they wait in the dead-letter queue.
A delivery is tried again when an image of it failed, when its record could only be spooled (the
spool lives under /tmp, which does not outlive the container; an invocation first replays what an
earlier one of the container spooled), or when it could not be read; `failures` says why, image
by image. Each image also writes one metric line (ocrlab.metrics).

Under a Bedrock quota, an image still throttled when the invocation's time runs out goes back to
the queue without a failure record (ocrlab.lambda_quota), unless it was throttled past the bound.

Each image is claimed before it runs (ocrlab.store.claims): S3 sometimes delivers an event twice,
and a message can come back while another invocation still works on it. A duplicate of an event
whose image already ran since the event is skipped; an image another invocation holds, or that
cannot be claimed because the store is down, is tried again later.
"""
from __future__ import annotations

import uuid
from typing import Any

from .config import settings
from .engines import get_engine
from .errors import FailureType, OcrlabError, StoreUnavailable
from .lambda_events import Delivery, S3Object, read_event
from .lambda_quota import Invocation
from .metrics import image_line
from .pipeline import ImageContext, Outcome, Pipeline
from .records import failure_item, storage_key
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
        _pipeline = Pipeline(get_engine(config.handler_engine), load_version(),
                             open_store(config.table, create=False, check=False))
    return _pipeline


def reset() -> None:
    """Forget the cached pipeline (tests, or a changed environment)."""
    global _pipeline
    _pipeline = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    pipeline = _get_pipeline()
    if pipeline.store.spool.pending():  # records an earlier invocation of this container could not write
        try:
            pipeline.store.replay()
        except OcrlabError:
            pass  # still unavailable: they wait for the next invocation
    namespace = settings().metrics_namespace
    log_stream = getattr(context, "log_stream_name", None) or "unknown"
    request_id = getattr(context, "aws_request_id", None) or "local"
    succeeded, ignored, skipped, throttled = 0, 0, 0, 0
    invocation = Invocation.of(event, context)
    failures: list[dict[str, Any]] = []
    retry: dict[str, None] = {}  # item ids in order, once each
    for delivery in read_event(event, request_id):
        if delivery.ignored:
            ignored += 1
            continue
        outcomes: list[Outcome] = []
        for obj in [] if delivery.problem else delivery.objects:
            claim = _claim(pipeline, obj, delivery.redelivered)
            if claim is None:
                skipped += 1
            elif isinstance(claim, str):  # held elsewhere, or no store to claim in: try again later
                retry[delivery.item_id] = None
                failures.append({"itemIdentifier": delivery.item_id, "imageKey": obj.key, "failureType": None,
                                 "spooled": False, "error": claim})
            else:
                outcome = _process(pipeline, obj, log_stream, claim, invocation, delivery.redelivered)
                if isinstance(outcome, str):  # throttled until the invocation's end: back to the queue, unrecorded
                    throttled += 1
                    retry[delivery.item_id] = None
                    failures.append({"itemIdentifier": delivery.item_id, "imageKey": obj.key, "failureType": None,
                                     "spooled": False, "error": outcome})
                else:
                    outcomes.append(outcome)
        if delivery.problem:
            outcomes.append(_log_malformed(pipeline, delivery, log_stream))
        for outcome in outcomes:
            print(image_line(namespace, pipeline.store.table, outcome.record, failure_type=outcome.failure_type,
                             spooled=outcome.spooled, request_id=request_id), flush=True)
            if outcome.ok and not outcome.spooled:
                succeeded += 1
                continue
            retry[delivery.item_id] = None
            failures.append({"itemIdentifier": delivery.item_id, "imageKey": outcome.image_key,
                             "failureType": outcome.failure_type, "spooled": outcome.spooled,
                             "error": outcome.error})
    return {"processed": succeeded + len(failures), "succeeded": succeeded, "failed": len(failures),
            "ignored": ignored, "skipped": skipped, "throttled": throttled, "failures": failures,
            "batchItemFailures": [{"itemIdentifier": item_id} for item_id in retry]}


def _claim(pipeline: Pipeline, obj: S3Object, redelivered: bool) -> Ticket | str | None:
    """A Ticket to run the object; None to skip it (it ran since this event: a duplicate delivery,
    or it already succeeded); a reason to try the delivery again later."""
    ticket = Ticket(_owner, uuid.uuid4().hex)
    # A message that came back on purpose (an image of it failed) may run again; a first delivery
    # only if nothing ran the image since its event.
    since = None if redelivered else obj.event_time
    key, version = storage_key(obj.key), pipeline.version.full_version
    try:
        claim = pipeline.store.claim(key, version, _owner, ticket.record_id, DEFAULT_LEASE_SECONDS, since)
        if claim.unconfirmed:
            pipeline.store.account_for(key, pipeline.version, claim.unconfirmed)
    except StoreUnavailable as exc:
        return f"not claimed: {exc}"
    if claim.granted:
        return ticket
    return None if claim.reason != "claimed by another run" else claim.reason


def _process(pipeline: Pipeline, obj: S3Object, log_stream: str, ticket: Ticket, invocation: Invocation,
             redelivered: bool) -> Outcome | str:
    """The image's outcome, or why it goes back to the queue unrecorded."""
    data, read_error = None, None
    try:
        data = s3_client(obj.region).get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read()
    except Exception as exc:  # recorded as this image's failure, then on to the next
        read_error = exc
    draft = invocation.draft(pipeline, obj.key, data, ImageContext(obj.bucket, obj.region, log_stream),
                             read_error=read_error)
    if invocation.gives_back(draft, pipeline, obj.event_time, redelivered):
        invocation.give_back(pipeline, obj.key, ticket)
        return f"throttled, given back: {draft.error}"
    return pipeline.record(draft, ticket)


def _log_malformed(pipeline: Pipeline, delivery: Delivery, log_stream: str) -> Outcome:
    failure_type = FailureType.INPUT_ERROR.value
    item = failure_item(delivery.item_id, failure_type, delivery.problem or "", pipeline.version,
                        {"error_code": "MalformedEventRecord", "cloudwatch_log_stream": log_stream})
    return Outcome(delivery.item_id, False, pipeline.store.write(item), failure_type, delivery.problem)
