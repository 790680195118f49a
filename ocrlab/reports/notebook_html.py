"""An executed notebook as a standalone, inert HTML page: ocrlab's own template, not nbconvert's.

nbconvert's templates load require.js, MathJax, mermaid and the widget manager from public CDNs;
offline or under a Content-Security-Policy they leave blanks. Here every output is rendered inline
through the reports' base template (its CSP allows no script and no remote content): markdown as
HTML (raw HTML in it escaped), images as data: URIs, text escaped, and a widget as the static HTML
it carries beside its view (the export panel and the failure browser both provide one). The
`record` cell (figures for tests) and papermill's own cells are left out.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

from markupsafe import Markup, escape

from ocrlab.reports.render import render

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SKIPPED_TAGS = {"record", "papermill-error-cell-tag"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@lru_cache(maxsize=1)
def _markdown() -> Callable[[str], str]:
    import mistune
    return mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])  # type: ignore[return-value]


def markdown_html(text: str) -> Markup:
    return Markup(_markdown()(text))


def _image(mime: str, data: Any) -> Markup:
    if mime == "image/svg+xml":
        data = base64.b64encode(str(data).encode("utf-8")).decode("ascii")
    return Markup('<img src="data:{};base64,{}" alt="">').format(mime, "".join(str(data).split()))


def _text(data: Any) -> str:
    return "".join(data) if isinstance(data, list) else str(data)


def output_html(output: Mapping[str, Any]) -> Markup | None:
    """One output as HTML, or None when it shows nothing outside a live kernel."""
    kind = output.get("output_type")
    if kind == "stream":
        return Markup('<pre class="stream {}">{}</pre>').format(output.get("name", ""), _text(output.get("text", "")))
    if kind == "error":
        trace = _ANSI.sub("", "\n".join(output.get("traceback") or [f"{output.get('ename')}: {output.get('evalue')}"]))
        return Markup('<pre class="error">{}</pre>').format(trace)
    data: Mapping[str, Any] = output.get("data", {})
    if "text/html" in data:
        return Markup(_text(data["text/html"]))  # the kernel's own markup (frames, ocrlab's escaped widgets)
    for mime in ("image/png", "image/jpeg", "image/svg+xml"):
        if mime in data:
            return _image(mime, data[mime])
    if "text/markdown" in data:
        return markdown_html(_text(data["text/markdown"]))
    if WIDGET_MIME in data:
        return None  # a widget with no static form: its text/plain is only the widget's repr
    if "text/plain" in data:
        return Markup("<pre>{}</pre>").format(_text(data["text/plain"]))
    return None


@dataclass
class CellView:
    kind: str                         # markdown or code
    source: str = ""
    html: Markup = Markup("")
    outputs: list[Markup] = field(default_factory=list)


def cell_views(nb: Any, show_code: bool) -> list[CellView]:
    views = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & SKIPPED_TAGS or ("injected-parameters" in tags and not show_code):
            continue
        if cell.cell_type == "markdown":
            views.append(CellView("markdown", html=markdown_html(cell.source)))
        elif cell.cell_type == "code":
            outputs = [html for html in map(output_html, cell.get("outputs", [])) if html is not None]
            if outputs or show_code:
                views.append(CellView("code", cell.source if show_code else "", outputs=outputs))
    return views


def _title(nb: Any, name: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return name


def notebook_html(nb: Any, name: str, *, parameters: Mapping[str, Any] | None = None, failed: str | None = None,
                  show_code: bool = False, generated: str = "") -> str:
    """The page: what ran (name, time, parameters, the failure if any), then every cell's markdown and outputs."""
    return render("notebook.html.j2", title=_title(nb, name), name=name, generated=generated,
                  parameters=[(k, repr(v)) for k, v in (parameters or {}).items()], failed=failed,
                  cells=cell_views(nb, show_code), escape=escape)
