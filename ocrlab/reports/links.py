"""Links to the files a notebook writes (a CSV, a comparison page) that work where the notebook is read.

In JupyterLab the kernel was started by a Jupyter server, which serves the files under its root at
`BASE_URL/files/PATH` (with the login the page already has; `?download=1` makes it a download), so a
file is offered by reference, never inlined into the notebook or its widgets. The server is found
without being told: its runtime file (`jpserver-PID.json` in jupyter_core's runtime folder) names the
process that started this kernel, our parent. Elsewhere (papermill, a report opened from disk) a link
is the file's own `file:` URL.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .render import environment

_LINK = """<div class="ocrlab-link"><a href="{{ href }}"{% if download %} download="{{ name }}"{% endif %}>{{ text }}</a>
<br><small>{{ where }} <code>{{ path }}</code></small></div>"""


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
