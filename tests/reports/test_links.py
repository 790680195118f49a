"""Links to written files: through the Jupyter server that runs the kernel, else the file itself."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ocrlab.lab import server_root
from ocrlab.reports.links import FileLink, file_url, running_server


def _runtime(tmp_path: Path, monkeypatch, **server) -> Path:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "jpserver-9.json").write_text(json.dumps(server))
    (runtime / "jpserver-broken.json").write_text("{")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    return runtime


def test_the_server_that_started_the_kernel_serves_files_under_its_root(tmp_path, monkeypatch):
    _runtime(tmp_path, monkeypatch, pid=os.getppid(), base_url="/", root_dir=str(tmp_path / "project"))
    server = running_server()
    assert server is not None and server.root_dir == tmp_path / "project"
    inside = tmp_path / "project" / "reports" / "a b#.csv"
    assert server.url(inside, download=True) == "/files/reports/a%20b%23.csv?download=1"
    assert server.url(tmp_path / "elsewhere.csv") is None
    assert file_url(inside) == ("/files/reports/a%20b%23.csv", True)
    assert file_url(tmp_path / "elsewhere.csv") == ((tmp_path / "elsewhere.csv").as_uri(), False)


def test_another_server_is_not_this_kernels(tmp_path, monkeypatch):
    _runtime(tmp_path, monkeypatch, pid=os.getpid() + 100_000, base_url="/", root_dir=str(tmp_path))
    assert running_server() is None
    href, served = file_url(tmp_path / "c.html")
    assert not served and href.startswith("file:///")


def test_a_link_escapes_what_it_shows(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    html = FileLink(tmp_path / "<b>.html", "open <i>it</i>")._repr_html_()
    assert "<b>" not in html and "<i>" not in html and "&lt;i&gt;it&lt;/i&gt;" in html and "saved to" in html


def test_jupyterlab_is_rooted_where_reports_can_be_served(tmp_path):
    project = tmp_path / "project"
    assert server_root(project / "notebooks", project / "reports") == project
    assert server_root(project / "notebooks", tmp_path / "elsewhere") == project / "notebooks"
