"""Links to the files a notebook writes (a CSV, a comparison page) that work where the notebook is read.

In JupyterLab the kernel was started by a Jupyter server, which serves the files under its root at
`BASE_URL/files/PATH` (with the login the page already has; `?download=1` makes it a download), so a
file is offered by reference, never inlined into the notebook or its widgets. The server is found
without being told: its runtime file (`jpserver-PID.json` in jupyter_core's runtime folder) names the
process that started this kernel, our parent. Elsewhere (papermill, a report opened from disk) a link
is the file's own `file:` URL, which the HTML of a report turns into one relative to the report
(`relative_file_links`), so a folder of reports can be moved or shared.

A download (the export panel's, the failure browser's) is the server's `?download=1` URL; outside any
server, a small file comes as a data: link (its bytes in the page: only under INLINE_LIMIT_BYTES, since
widget state is saved in the notebook) and a larger one is named by path.
"""
from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ocrlab.reports.render import environment

_LINK = """<div class="ocrlab-link"><a href="{{ href }}"{% if download %} download="{{ name }}"{% endif %}>{{ text }}</a>
<br><small>{{ where }} <code>{{ path }}</code></small></div>"""
INLINE_LIMIT_BYTES = 192 * 1024
_DOWNLOAD = """<div>{% if href %}<a download="{{ name }}" href="{{ href }}" target="_blank" class="ocrlab-download"
style="display:inline-block;padding:.3rem .8rem;border-radius:.3rem;background:#1565c0;color:#fff;text-decoration:none">
Download {{ name }}</a>{% else %}The file ({{ size | num }} bytes) is outside the Jupyter server's folder and too
large to put in this page: open it from disk.{% endif %}
<br><small>Saved to <code>{{ path }}</code></small></div>"""
# An href our own templates wrote (data never reaches an attribute unescaped, so never matches).
_FILE_HREF = re.compile(r'href="(file://[^"]*)"')


@dataclass(frozen=True)
class JupyterServer:
    """What a link needs of the server running this kernel."""

    base_url: str
    root_dir: Path

    def url(self, path: str | os.PathLike[str], download: bool = False) -> str | None:
        """The server's URL of a file under its root (None outside it: the server cannot serve it)."""
        try:
            relative = Path(path).resolve().relative_to(self.root_dir.resolve())
        except ValueError:
            return None
        url = f"{self.base_url.rstrip('/')}/files/{quote(relative.as_posix())}"
        return url + "?download=1" if download else url


def running_server(parent: int | None = None) -> JupyterServer | None:
    """The Jupyter server that started this process (None in papermill, a terminal, a test)."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # pragma: no cover - jupyter_core comes with the notebooks extra
        return None
    pid = os.getppid() if parent is None else parent
    for info in Path(jupyter_runtime_dir()).glob("jpserver-*.json"):
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("pid") == pid and data.get("root_dir"):
            return JupyterServer(str(data.get("base_url") or "/"), Path(data["root_dir"]).expanduser())
    return None


def file_url(path: str | os.PathLike[str], download: bool = False,
             server: JupyterServer | None = None) -> tuple[str, bool]:
    """(href, served): the server's URL of the file when a Jupyter server runs this kernel and the file
    is under its root, else the file's `file:` URL."""
    server = server or running_server()
    served = server.url(path, download) if server is not None else None
    return (served, True) if served else (Path(path).resolve().as_uri(), False)


class FileLink:
    """A file as a link in a notebook's output (and so in its HTML report)."""

    def __init__(self, path: str | os.PathLike[str], text: str | None = None, download: bool = False) -> None:
        self.path = Path(path)
        self.text = text or self.path.name
        self.download = download

    def _repr_html_(self) -> str:
        href, served = file_url(self.path, self.download)
        return environment().from_string(_LINK).render(
            href=href, download=self.download, name=self.path.name, text=self.text, path=str(self.path),
            where="served by this Jupyter server from" if served else "saved to")

    def __repr__(self) -> str:
        return f"{self.text}: {self.path}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def download_href(path: Path) -> str | None:
    """Where the browser gets the file: the Jupyter server's download of it, else (a small file only) a
    data: link, else None."""
    href, served = file_url(path, download=True)
    if served:
        return href
    if path.stat().st_size <= INLINE_LIMIT_BYTES:
        return "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return None


def download_html(path: Path) -> str:
    """A download button for a file just written, and where it was saved."""
    return environment().from_string(_DOWNLOAD).render(name=path.name, href=download_href(path),
                                                       size=path.stat().st_size, path=str(path))


def relative_file_links(html: str, folder: str | os.PathLike[str]) -> str:
    """`file:` links in a page made relative to the folder the page is saved in: a report links to the
    pages beside it by name, so the folder can be moved or shared."""
    base = Path(folder).resolve()

    def relative(match: re.Match[str]) -> str:
        target = Path(unquote(urlsplit(match[1]).path))
        return f'href="{quote(os.path.relpath(target, base))}"'
    return _FILE_HREF.sub(relative, html)
