"""ocrlab: run, track and understand OCR of scanned timesheets."""
from __future__ import annotations

from .errors import FailureType, OcrlabError
from .taxonomy import classify
from .version import OCRVersionInfo, load_version

__all__ = ["OcrlabError", "FailureType", "classify", "OCRVersionInfo", "load_version"]
