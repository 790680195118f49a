"""Synthetic timesheet scans: the generator, scan damage, the fonts."""
from __future__ import annotations

from ocrlab.samples.generate import *  # noqa: F401,F403  (the names of the former module)
