"""One image, start to finish: preflight -> engine -> parse -> validate -> one record.

Every outcome is recorded: an OCR_RESULT, or a FAILED_IMAGE record with every field
that is known at the point of failure. `process` never raises for a bad image.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from ocrlab.domain import Record, Timesheet
from ocrlab.errors import ImageFailure
from ocrlab.ocr.engines import Engine, EngineResult
from ocrlab.ocr.preflight import prepare_image
from ocrlab.ocr.preprocess import Preprocess
from ocrlab.ocr.preprocess import apply as preprocess_image
from ocrlab.records import failure_item, result_item, timesheet_json
from ocrlab.store.claims import Ticket
from ocrlab.store.spooling import SpoolingStore, Written
from ocrlab.taxonomy import classify
from ocrlab.timesheet.answers import parse_model_json
from ocrlab.timesheet.model import check, parse_text
from ocrlab.timesheet.repairs import Repairs
from ocrlab.version import OCRVersionInfo


@dataclass
class Draft:
    """An image's record, built and not yet written (so a caller may write it on another thread)."""

    image_key: str
    ok: bool
    record: Record
    failure_type: str | None = None
    error: str | None = None
    timesheet: Timesheet | None = None

    def outcome(self, written: Written) -> Outcome:
        return Outcome(**{**vars(self), "record": written.record, "written": written})


@dataclass
class Outcome(Draft):
    """What happened to one image; `record` is what was written (or spooled), `written` how it went."""

    written: Written | None = None

    @property
    def spooled(self) -> bool:
        return self.written is not None and self.written.spooled

    @property
    def rejected(self) -> bool:
        return self.written is not None and self.written.rejected


@dataclass
class ImageContext:
    """Where an image came from, for the record."""

    s3_bucket: str | None = None
    s3_region: str | None = None
    log_stream: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    """Runs one engine under one version stamp and records into one store."""

    def __init__(self, engine: Engine, version: OCRVersionInfo, store: SpoolingStore,
                 preprocess: Preprocess | None = None) -> None:
        self.engine = engine
        self.version = version
        self.store = store
        self.preprocess = preprocess if preprocess and preprocess.enabled else None

    def parse(self, raw: str, repairs: Repairs | None = None) -> dict[str, Any]:
        if self.engine.output_kind == "json":
            return parse_model_json(raw, repairs)
        return parse_text(raw, repairs)

    def process(self, image_key: str, data: bytes | None, context: ImageContext | None = None,
                read_error: BaseException | None = None, ticket: Ticket | None = None) -> Outcome:
        """Process one image's bytes. `read_error` records a file that could not even be read;
        `ticket`, the claim the caller holds on the image (released as the record is written)."""
        return self.record(self.draft(image_key, data, context, read_error), ticket)

    def record(self, draft: Draft, ticket: Ticket | None = None) -> Outcome:
        """Write the image's record (and release its claim); SpoolUnavailable if nothing took it."""
        return draft.outcome(self.store.write(draft.record, ticket=ticket))

    def draft(self, image_key: str, data: bytes | None, context: ImageContext | None = None,
              read_error: BaseException | None = None) -> Draft:
        """Everything but the write: preflight, engine, reading, checking, and the record they make."""
        context = context or ImageContext()
        started = time.perf_counter()
        result: EngineResult | None = None
        parsed: dict[str, Any] | None = None
        repairs = Repairs()
        try:
            if read_error is not None:
                raise read_error
            assert data is not None
            prepared = prepare_image(data, self.engine.limits, name=image_key)
            if self.preprocess:
                prepared = preprocess_image(prepared, self.preprocess, self.engine.limits)
            result = self.engine.run(prepared)
            parsed = self.parse(result.raw_output, repairs)
            timesheet = check(parsed)
        except Exception as exc:  # every failure of one image becomes a record, never a crash
            return self._failure(image_key, data, context, exc, result, parsed, repairs,
                                 time.perf_counter() - started)
        item = result_item(image_key, self.version, result.raw_output, timesheet,
                           self._details(data, context, result, time.perf_counter() - started))
        if repairs:
            item.update(repairs.attributes())  # type: ignore[typeddict-item]
        return Draft(image_key, True, item, timesheet=timesheet)

    def _details(self, data: bytes | None, context: ImageContext, result: EngineResult | None,
                 elapsed: float) -> dict[str, Any]:
        details: dict[str, Any] = {
            "model_id": (result.model_id if result else None) or self.engine.model_id or self.engine.name,
            "processing_time": result.processing_time if result else elapsed,
            "input_tokens": result.input_tokens if result else None,
            "output_tokens": result.output_tokens if result else None,
            "image_size": len(data) if data is not None else None,
            "s3_bucket": context.s3_bucket, "s3_region": context.s3_region,
            "cloudwatch_log_stream": context.log_stream, "Engine": self.engine.name,
            "EngineDetails": result.details if result and result.details else None,
            "EngineConfig": self.engine.identity(),  # stored as JSON: which prompt, schema, answer path
            "Preprocessing": self.preprocess.to_json() if self.preprocess else None,
        }
        details.update(context.extra)
        return details

    def _failure(self, image_key: str, data: bytes | None, context: ImageContext, exc: Exception,
                 result: EngineResult | None, parsed: dict[str, Any] | None, repairs: Repairs,
                 elapsed: float) -> Draft:
        failure_type, code = classify(exc)
        details = self._details(data, context, result, elapsed)
        raw = result.raw_output if result else None
        if isinstance(exc, ImageFailure):  # what the engine knew when it failed
            details.update({k: v for k, v in (("processing_time", exc.processing_time),
                                              ("input_tokens", exc.input_tokens),
                                              ("output_tokens", exc.output_tokens),
                                              ("model_id", exc.model_id)) if v is not None})
            raw = raw or exc.raw_output
        details.update(error_code=code, raw_ocr_output=raw, stack_trace="".join(traceback.format_exception(exc)),
                       validation_errors=exc.validation_errors if isinstance(exc, ImageFailure) else None)
        if parsed is not None:  # a timesheet that broke validation: keep what was read, for tuning
            details["ParsedTimesheet"] = timesheet_json(parsed)
        if repairs:  # what the reader changed, even when the reading then failed
            details.update(repairs.attributes())
        item = failure_item(image_key, failure_type.value, str(exc) or type(exc).__name__, self.version, details)
        return Draft(image_key, False, item, failure_type.value, str(exc))
