"""The timesheet: its model and rules, its values and repairs, and reading it from OCR text or
a model's answer."""
from __future__ import annotations

from ocrlab.timesheet.model import *  # noqa: F401,F403  (the names of the former module)
