"""ocrlab: run, track and understand OCR of scanned timesheets.

The names most callers need; the rest lives in the module named for what it does (docs/design.md).
"""
from __future__ import annotations

from ocrlab import _moved
from ocrlab.errors import FailureType, OcrlabError
from ocrlab.store import SpoolingStore, open_store
from ocrlab.taxonomy import classify
from ocrlab.version import OCRVersionInfo, load_version

_moved.install()  # the former module names keep working

__all__ = ["FailureType", "OCRVersionInfo", "OcrlabError", "SpoolingStore", "classify", "load_version",
           "open_store"]
