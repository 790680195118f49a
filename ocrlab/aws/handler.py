"""AWS Lambda entry point: `ocrlab.aws.handler.lambda_handler`, for S3 events and SQS messages carrying them.

Configuration from the environment (ocrlab.config): OCRLAB_TABLE (or DYNAMODB_TABLE; default
"ocrlab"), OCRLAB_ENGINE (default "bedrock"), the version stamp (OCRLAB_OCR_VERSION,
OCRLAB_OCR_BUILD_DATE, OCRLAB_OCR_DESCRIPTION, or OCRLAB_VERSION_FILE), the Bedrock model, answer
path and prompt, OCRLAB_METRICS_NAMESPACE. The table must exist (the stack creates it): the
function never creates or describes it, so its role needs no such permission.

One bad record never costs the others: each delivery is processed on its own, and anything it raises
(a record of a shape nobody foresaw) fails that delivery alone. `batchItemFailures`
(Lambda's partial batch response) names the deliveries to try again: with SQS exactly those
messages return to the queue, and after its maxReceiveCount they wait in the dead-letter queue.
A delivery is tried again when an image of it failed, when its record could only be spooled (the
spool lives under /tmp, which does not outlive the container; an invocation first replays what an
earlier one of the container spooled), or when it could not be read; `failures` says why, image
by image. Each image also writes one metric line (ocrlab.aws.metrics).

Each image is read as its event saw it (by ETag: an object overwritten since is left to the later
event, which carries the new content), then claimed before it runs (ocrlab.store.claims): S3
sometimes delivers an event twice, and a message can come back while another invocation still works
on it. A duplicate of an event whose image already ran since the event is skipped, and so is content
that already succeeded; new bytes under a key that succeeded are a new revision and run. An image
another invocation holds, or that cannot be claimed because the store is down, is tried again later.

Under a Bedrock quota, an image still throttled when the invocation's time runs out goes back to
the queue without a failure record (ocrlab.aws.quota), unless it was throttled past the bound.
"""
from __future__ import annotations

from typing import Any

from ocrlab.aws.events import Delivery, S3Object, read_event
from ocrlab.aws.metrics import image_line
from ocrlab.aws.quota import Invocation
from ocrlab.config import settings
from ocrlab.errors import FailureType, OcrlabError
from ocrlab.ocr.engines import get_engine
from ocrlab.ocr.pipeline import ImageContext, Outcome, Pipeline
from ocrlab.records import failure_item
from ocrlab.runs.sources import etag_digest, s3_client
from ocrlab.store import open_store
from ocrlab.store.claims import Held, Refused, holding, new_owner
from ocrlab.taxonomy import aws_error_code
from ocrlab.version import load_version

_pipeline: Pipeline | None = None
_owner = new_owner()  # this container, as claims name it


def _get_pipeline() -> Pipeline:
    # Built once per container: engine clients and the store connection survive warm starts.
    global _pipeline
    if _pipeline is None:
        config = settings()
        engine = get_engine(config.handler_engine, **config.engine_defaults(config.handler_engine))
        _pipeline = Pipeline(engine, load_version(), open_store(config.table, create=False, check=False))
    return _pipeline


def reset() -> None:
    """Forget the cached pipeline (tests, or a changed environment)."""
    global _pipeline
    _pipeline = None


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
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

    def fail(delivery: Delivery, image_key: str | None, failure_type: str | None, spooled: bool,
             error: str | None) -> None:
        if delivery.identified:
            retry[delivery.item_id] = None
        failures.append({"itemIdentifier": delivery.item_id, "imageKey": image_key, "failureType": failure_type,
                         "spooled": spooled, "error": error})

    for delivery in read_event(event, request_id):
        if delivery.ignored:
            ignored += 1
            continue
        try:
            outcomes, skips, waits = _deliver(pipeline, delivery, log_stream, invocation)
        except Exception as exc:  # a defect, or a shape nobody foresaw: this delivery goes back, the others go on
            fail(delivery, None, None, False, f"{type(exc).__name__}: {exc}")
            continue
        skipped += skips
        for obj, reason, given_back in waits:  # held elsewhere, no store to claim in, or throttled: again later
            throttled += given_back
            fail(delivery, obj.key, None, False, reason)
        for outcome in outcomes:
            print(image_line(namespace, pipeline.store.table, outcome.record, failure_type=outcome.failure_type,
                             spooled=outcome.spooled, request_id=request_id), flush=True)
            if outcome.ok and not outcome.spooled:
                succeeded += 1
            else:
                fail(delivery, outcome.image_key, outcome.failure_type, outcome.spooled, outcome.error)
    return {"processed": succeeded + len(failures), "succeeded": succeeded, "failed": len(failures),
            "ignored": ignored, "skipped": skipped, "throttled": throttled, "failures": failures,
            "batchItemFailures": [{"itemIdentifier": item_id} for item_id in retry]}


def _deliver(pipeline: Pipeline, delivery: Delivery, log_stream: str, invocation: Invocation
             ) -> tuple[list[Outcome], int, list[tuple[S3Object, str, bool]]]:
    """One delivery's images: their outcomes, how many were skipped, and which wait (with why, and
    whether the quota gave them back)."""
    if delivery.problem:
        return [_log_malformed(pipeline, delivery, log_stream)], 0, []
    outcomes: list[Outcome] = []
    skipped = 0
    waits: list[tuple[S3Object, str, bool]] = []
    for obj in delivery.objects:
        read = _read(obj)
        if read is None:  # the object changed after this event: the later event carries the new content
            skipped += 1
            continue
        # A message that came back on purpose (an image of it failed) may run again; a first delivery
        # only if nothing ran the image since its event.
        since = None if delivery.redelivered else obj.event_time
        with holding(pipeline.store, obj.key, pipeline.version, _owner, since=since, digest=read[1]) as claim:
            if isinstance(claim, Refused):
                if claim.later:
                    waits.append((obj, claim.reason, False))
                else:  # it ran since this event (a duplicate delivery), or succeeded on this content
                    skipped += 1
                continue
            outcome = _process(pipeline, obj, read, log_stream, claim, invocation, delivery.redelivered)
        if isinstance(outcome, str):  # throttled until the invocation's end: back to the queue, unrecorded
            waits.append((obj, outcome, True))
        else:
            outcomes.append(outcome)
    return outcomes, skipped, waits


Read = tuple[bytes | None, str | None, BaseException | None]  # the bytes, their digest, or why not


def _read(obj: S3Object) -> Read | None:
    """The object as this event saw it (by its ETag): None when it has been overwritten since."""
    try:
        extra = {"IfMatch": obj.etag} if obj.etag else {}
        answer = s3_client(obj.region).get_object(Bucket=obj.bucket, Key=obj.key, **extra)
        return answer["Body"].read(), etag_digest(answer.get("ETag")) or etag_digest(obj.etag), None
    except Exception as exc:  # recorded as this image's failure, then on to the next
        if aws_error_code(exc) in ("PreconditionFailed", "412"):
            return None
        return None, etag_digest(obj.etag), exc


def _process(pipeline: Pipeline, obj: S3Object, read: Read, log_stream: str, claim: Held,
             invocation: Invocation, redelivered: bool) -> Outcome | str:
    """The image's outcome, or why it goes back to the queue unrecorded."""
    (data, digest, read_error), ticket, previous = read, claim.ticket, claim.previous_digest
    context = ImageContext(obj.bucket, obj.region, log_stream,
                           extra={"ContentDigest": digest, "PreviousContentDigest": previous})
    draft = invocation.draft(pipeline, obj.key, data, context, read_error=read_error)
    if invocation.gives_back(draft, pipeline, obj.event_time, redelivered):
        invocation.give_back(pipeline, obj.key, ticket)
        return f"throttled, given back: {draft.error}"
    return pipeline.record(draft, ticket)


def _log_malformed(pipeline: Pipeline, delivery: Delivery, log_stream: str) -> Outcome:
    failure_type = FailureType.INPUT_ERROR.value
    item = failure_item(delivery.item_id, failure_type, delivery.problem or "", pipeline.version,
                        {"error_code": "MalformedEventRecord", "cloudwatch_log_stream": log_stream})
    written = pipeline.store.write(item)
    return Outcome(delivery.item_id, False, written.record, failure_type, delivery.problem, written=written)
