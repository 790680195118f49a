"""What ocrlab shows people: notebook reports, HTML pages, charts and Jupyter widgets.

Notebooks use `reports.record(...)` for their figures and `reports.report_path(...)` for the
files they write; `ocrlab report NAME` runs a notebook with `run_report`.
"""
from __future__ import annotations

from ocrlab.reports.notebooks import ReportResult, record, recorded_figures, report_path, run_report

__all__ = ["ReportResult", "record", "recorded_figures", "report_path", "run_report"]
