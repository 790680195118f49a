"""The engine interface: a base class doing the shared timing and error wrapping, one method per engine."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ocrlab.errors import ImageFailure
from ocrlab.ocr.engines.quota import QuotaStatus


@dataclass(frozen=True)
class ImageLimits:
    """What an engine accepts; preflight converts or downscales images to fit."""

    formats: frozenset[str] = frozenset({"png", "jpeg"})
    max_bytes: int = 20 * 1024 * 1024
    max_side: int = 10000


@dataclass(frozen=True)
class PreparedImage:
    """An image that passed preflight: bytes in a format the engine accepts."""

    data: bytes
    format: str            # "png", "jpeg", "gif" or "webp", from the bytes, not the name
    width: int
    height: int
    original_bytes: int    # size of the file as given (ImageSize on records)
    original_format: str   # what the file really was ("tiff", "bmp", ...)
    converted: bool = False


@dataclass
class EngineResult:
    """What every engine returns. Token counts are None where the engine does not report them."""

    raw_output: str
    model_id: str
    processing_time: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    #: what else the engine reports (confidence, request id...): stored with the record as EngineDetails
    details: dict[str, object] = field(default_factory=dict)


class Engine(ABC):
    """Subclasses implement `_recognize`; `run` times it. Failures are raised as ImageFailure subclasses."""

    name: str = ""
    #: "text": lines of printed text, parsed by timesheet.parse_text; "json": the model's JSON answer.
    output_kind: str = "text"
    limits: ImageLimits = ImageLimits()
    model_id: str = ""

    def identity(self) -> dict[str, str]:
        """What identifies this engine's configuration on every record (`EngineConfig`)."""
        return {"engine": self.name, "model_id": self.model_id}

    def quota_status(self) -> QuotaStatus | None:
        """How the engine keeps to its service's quota (None: it has none)."""
        return None

    def run(self, image: PreparedImage) -> EngineResult:
        start = time.perf_counter()
        try:
            result = self._recognize(image)
        except ImageFailure as exc:
            # The failure record carries how long the failed call took.
            exc.processing_time = time.perf_counter() - start
            raise
        result.processing_time = time.perf_counter() - start
        return result

    @abstractmethod
    def _recognize(self, image: PreparedImage) -> EngineResult:
        """Run OCR on one prepared image."""
