"""The "Export Failed Images" button, done for Jupyter: an ipywidgets panel.

A click reads every failure once: the CSV (docs/design.md) streams to `output_dir` while the statistics,
the latest failures and the breakdown by type are gathered from the same records; then the panel shows
them and offers the file. The file is offered by reference, through the Jupyter server that runs the
kernel (ocrlab.reports.links): widget state is sent to the browser and saved in the notebook, so nothing
larger than links.INLINE_LIMIT_BYTES (a small CSV outside any server, as a data: link) ever goes into it.
The panel's HTML comes from autoescaping Jinja2 templates (ocrlab.reports.render): image names, messages
and model output are data, never markup.
"""
from __future__ import annotations

import datetime as dt
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator

from ocrlab.config import in_project
from ocrlab.domain import Record
from ocrlab.errors import MissingDependency
from ocrlab.files import unique_path
from ocrlab.reports.links import download_html
from ocrlab.reports.notebooks import default_reports_dir
from ocrlab.reports.render import environment
from ocrlab.store.export import write_csv
from ocrlab.store.failure_log import iter_failed_images
from ocrlab.store.spooling import SpoolingStore
from ocrlab.store.stats import FailureStatistics

try:
    import ipywidgets as widgets
except ImportError as exc:  # pragma: no cover - ipywidgets is in the notebooks extra
    raise MissingDependency("ipywidgets", "notebooks") from exc

RECENT_ROWS = 10
RECENT_HEADINGS = ("time (UTC)", "image", "failure type", "error code", "attempt", "OCR version", "message")

_STATS = """<div class="ocrlab-stats"><b>{{ total | num }}</b> failures &middot;
<b>{{ unique | num }}</b> unique images &middot; <b>{{ recent | num }}</b> in the last 24 h</div>"""
_RECENT = """<div><b>Recent failures</b> (latest {{ rows | length }})
<table class="ocrlab-recent"><thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in rows %}<tr><td style="white-space:nowrap">{{ r.get("FailureTimestamp", "") | when }}</td>
<td>{{ r.get("ImageKey", "") | wrap_key }}</td><td>{{ r.get("FailureType", "") }}</td><td>{{ r.get("ErrorCode", "") | wrap_key }}</td>
<td style="text-align:right">{{ r.get("AttemptNumber", "") | num }}</td><td>{{ r.get("OCRFullVersion", "") }}</td>
<td>{{ r.get("ErrorMessage", "") | truncate(160) }}</td></tr>{% endfor %}</tbody></table></div>"""
_BREAKDOWN = """<div><b>Failure types</b><table class="ocrlab-breakdown"><tbody>
{% for name, count in types %}<tr><td>{{ name }}</td><td style="text-align:right">{{ count | num }}</td>
<td style="text-align:right">{{ (count / total) | pct }}</td></tr>{% endfor %}</tbody></table></div>"""
_NOT_EXPORTED = """<p><b>Export failed images</b>: not exported in this run (click the button in JupyterLab; a
scheduled run passes <code>-p export true</code>).</p>"""


def _render(template: str, **context: Any) -> str:
    return environment().from_string(template).render(**context)


def csv_name(moment: dt.datetime | None = None) -> str:
    """`failed_images_YYYYmmdd_HHMMSS.csv` (UTC), as the original export named it."""
    return f"failed_images_{(moment or dt.datetime.now(dt.timezone.utc)):%Y%m%d_%H%M%S}.csv"


class ExportPanel:
    """Button, message line, statistics, recent failures, breakdown by type, download link."""

    def __init__(self, store: SpoolingStore, output_dir: str | Path | None = None) -> None:
        self.store = store
        self.output_dir = in_project(output_dir) or default_reports_dir()  # relative: the project folder's
        self.button = widgets.Button(description="Export failed images", icon="download", button_style="primary",
                                     tooltip="Statistics, recent failures and the CSV of every failed image",
                                     layout=widgets.Layout(width="auto"))
        self.message = widgets.HTML()
        self.stats_html = widgets.HTML()
        self.recent_html = widgets.HTML()
        self.breakdown_html = widgets.HTML()
        self.download_html = widgets.HTML()
        self.widget = widgets.VBox([self.button, self.message, self.stats_html, self.recent_html,
                                    self.breakdown_html, self.download_html])
        self.last_stats: dict[str, Any] | None = None
        self.last_csv_path: Path | None = None
        self.last_count: int | None = None
        self.last_error: str | None = None
        self.button.on_click(self._on_click)

    # -- what tests and notebooks use ---------------------------------------------------------
    def click(self) -> None:
        """Run the button's handler, as a click in the browser does."""
        self.button.click()

    @property
    def html(self) -> str:
        """Everything the panel shows, as one HTML string (a static copy for reports and tests)."""
        return "\n".join(w.value for w in (self.message, self.stats_html, self.recent_html,
                                           self.breakdown_html, self.download_html) if w.value)

    def summary(self) -> str:
        """The outcome of the last click as one plain line (for logs and scheduled runs)."""
        if self.last_error is not None:
            return f"export failed: {self.last_error}"
        if self.last_stats is None:
            return "not exported yet: click the button"
        if self.last_csv_path is None:
            return "no failed images to export"
        return f"exported {self.last_count} failed image records to {self.last_csv_path}"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self.html or _NOT_EXPORTED  # the report's copy: the panel as it stands
        return bundle

    # -- the handler ----------------------------------------------------------------------------
    def _clear(self) -> None:
        for w in (self.stats_html, self.recent_html, self.breakdown_html, self.download_html):
            w.value = ""
        self.last_stats = self.last_csv_path = self.last_count = self.last_error = None

    def _on_click(self, _button: Any = None) -> None:
        self._clear()
        self.button.disabled = True
        self.message.value = "Exporting failed images…"
        try:
            self._export()
        except Exception as exc:  # a UI callback: show one line, never a traceback nobody sees
            self.last_error = " ".join(str(exc).split()) or type(exc).__name__
            self.message.value = _render('<span style="color:#b00020">Export failed: {{ e }}</span>',
                                         e=self.last_error)
        finally:
            self.button.disabled = False

    def _export(self) -> None:
        stats = FailureStatistics()
        latest: deque[Record] = deque(maxlen=RECENT_ROWS)

        def observed(records: Iterable[Record]) -> Iterator[Record]:
            for record in records:  # the CSV's own pass: statistics and the latest rows ride along
                stats.add(record)
                latest.append(record)
                yield record

        path = unique_path(self.output_dir, csv_name()[:-4], ".csv", sep="_")  # two clicks in one second
        try:
            count = write_csv(observed(iter_failed_images(self.store)), path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.last_stats = stats.result()
        if count == 0:
            path.unlink()
            self.message.value = "No failed images to export."
            return
        self.last_csv_path, self.last_count = path, count
        self.stats_html.value = _render(_STATS, total=stats.total, unique=len(stats.images), recent=stats.recent)
        self.recent_html.value = _render(_RECENT, columns=RECENT_HEADINGS, rows=list(reversed(latest)))
        self.breakdown_html.value = _render(_BREAKDOWN, types=list(self.last_stats["failure_types"].items()),
                                            total=stats.total)
        self.download_html.value = download_html(path)
        self.message.value = _render('<span style="color:#1b5e20">Exported {{ n | num }} failed image records.</span>',
                                     n=count)


def export_panel(store: SpoolingStore, output_dir: str | Path | None = None) -> ExportPanel:
    """The export panel of a store; display it (last expression of a cell) and click the button."""
    return ExportPanel(store, output_dir)
