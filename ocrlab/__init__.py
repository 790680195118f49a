"""ocrlab: run, track and understand OCR of scanned timesheets.

The names most callers need; the rest lives in the module named for what it does (docs/design.md).
"""
from __future__ import annotations

from .errors import FailureType, OcrlabError
from .store import SpoolingStore, open_store
from .taxonomy import classify
from .version import OCRVersionInfo, load_version

__all__ = ["FailureType", "OCRVersionInfo", "OcrlabError", "SpoolingStore", "classify", "load_version",
           "open_store"]
