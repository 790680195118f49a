"""`ocrlab lab` (`make lab`): JupyterLab on the project's notebooks, against the local database.

The local dynalite is started first when the store is local (a notebook's first cell would start it
too, but a user should see which store the notebooks read before opening one). JupyterLab prints
its URL with the token; ocrlab prints the store and the table the notebooks read. The server's root is
the project folder (its file browser opens in notebooks/), so the files notebooks write into reports/
download from JupyterLab. The notebooks get this machine's kernel metadata first (ocrlab.notebook_kernel),
so they open unmodified.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ocrlab.config import settings
from ocrlab.errors import MissingDependency
from ocrlab.notebook_kernel import sync_notebooks
from ocrlab.reports.notebooks import default_reports_dir, notebook_dirs
from ocrlab.table_choice import reading_table


def server_root(notebooks: Path, reports: Path) -> Path:
    """The server's root: the project folder when reports/ sits beside notebooks/, so that the files the
    notebooks write there (CSV exports, comparison pages) download through JupyterLab; else notebooks/."""
    return notebooks.parent if reports.is_relative_to(notebooks.parent) else notebooks


def run(port: int | None = None, notebooks_dir: str | None = None, extra: list[str] | None = None) -> int:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        raise MissingDependency("jupyterlab", "notebooks") from None
    config = settings()
    target = config.store_target()
    if target.kind == "local":
        from ocrlab.store.localdb import ensure_running
        ensure_running()
    folder = (Path(notebooks_dir) if notebooks_dir else notebook_dirs()[0]).resolve()
    root = server_root(folder, default_reports_dir().resolve())
    synced = sync_notebooks(folder)  # else JupyterLab shows them modified as their kernel starts
    if synced:
        print(f"gave {len(synced)} notebook(s) this Python's kernel metadata, so they open unmodified",
              file=sys.stderr, flush=True)
    print(target.describe(reading_table()) + " (what the notebooks read when `table` is None)",
          file=sys.stderr, flush=True)
    print(f"notebooks: {folder}; JupyterLab prints its URL below (Ctrl-C stops it)", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.root_dir={root}",
               f"--ContentsManager.preferred_dir={folder.relative_to(root).as_posix()}"]
    if port:
        command.append(f"--port={port}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines run as root
    return subprocess.call(command + list(extra or []), env=os.environ.copy())
