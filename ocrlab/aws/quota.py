"""The Lambda function under a Bedrock quota: being throttled is no failure of the image.

Within an invocation the engine waits for the quota as a batch does (ocrlab.ocr.engines.pacing), but only
until MARGIN seconds before the invocation's time runs out. An image still throttled then is given back:
its SQS message returns to the queue through `batchItemFailures`, no failure record is written and its
claim is let go without counting a failure, so the quota costs it no attempt. It is recorded as a
THROTTLING_ERROR, as in a batch, when it was throttled past the bound: the engine waited longer than its
`max_throttle_wait` within the invocation, or the message came back before and its event is older than
that bound. An image of a direct S3 event is recorded too: nothing would bring it back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ocrlab.errors import FailureType, StoreUnavailable
from ocrlab.ocr.engines.bedrock import DEFAULT_MAX_THROTTLE_WAIT, PACED_CODES
from ocrlab.ocr.engines.quota import waiting_until
from ocrlab.ocr.pipeline import Draft, Pipeline
from ocrlab.records import storage_key
from ocrlab.store.claims import Ticket

MARGIN = 20.0  # seconds of the invocation kept for the records and the claims of its other images
GIVEN_BACK = "THROTTLED"  # how the run of an image given back ended, on its claim


@dataclass(frozen=True)
class Invocation:
    """What decides whether a throttled image is given back: when to stop waiting (time.monotonic),
    and whether its delivery came from a queue that will bring it back."""

    deadline: float | None
    queued: bool

    @classmethod
    def of(cls, event: Any, context: Any) -> Invocation:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        deadline = time.monotonic() + remaining() / 1000 - MARGIN if callable(remaining) else None
        records = event.get("Records") if isinstance(event, dict) else None
        queued = isinstance(records, list) and any(isinstance(r, dict) and r.get("eventSource") == "aws:sqs"
                                                   for r in records)
        return cls(deadline, queued)

    def draft(self, pipeline: Pipeline, *args: Any, **kwargs: Any) -> Draft:
        """`pipeline.draft`, its waits for the quota ending at the invocation's deadline."""
        with waiting_until(self.deadline):
            return pipeline.draft(*args, **kwargs)

    def gives_back(self, draft: Draft, pipeline: Pipeline, event_time: float | None, redelivered: bool) -> bool:
        """Whether the image failed only because its wait for the quota ran into the invocation's end,
        and not past the bound: then it goes back to the queue unrecorded."""
        if not self.queued or self.deadline is None or draft.failure_type != FailureType.THROTTLING_ERROR.value:
            return False
        if draft.record.get("ErrorCode") not in PACED_CODES or time.monotonic() < self.deadline:
            return False  # a quota no wait refills, or the engine's own bound stopped it
        bound = getattr(pipeline.engine, "max_throttle_wait", DEFAULT_MAX_THROTTLE_WAIT)
        return not (redelivered and (event_time is None or time.time() - event_time > bound))

    @staticmethod
    def give_back(pipeline: Pipeline, image_key: str, ticket: Ticket) -> None:
        """Let go of the image's claim without counting a failure (its message will come back)."""
        try:
            pipeline.store.writer.release(storage_key(image_key), pipeline.version.full_version, ticket.owner,
                                          GIVEN_BACK, count_failure=False)
        except StoreUnavailable:
            pass  # the claim lapses with its lease
