"""ocrlab's Jupyter widgets by the names a notebook uses: the failure browser and the export panel."""
from __future__ import annotations

from ocrlab.widgets.browser import FailureBrowser, failure_browser
from ocrlab.widgets.export import ExportPanel, export_panel

__all__ = ["ExportPanel", "FailureBrowser", "export_panel", "failure_browser"]
