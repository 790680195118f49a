"""Reading what the store holds: outcomes, the comparison of two versions, frames, failure
patterns, costs, the detail of one failure."""
from __future__ import annotations

from ocrlab.analysis.patterns import *  # noqa: F401,F403  (the names of the former module)
