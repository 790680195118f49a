"""`ocrlab init`: a starter project folder, so a team can start from `pip install` alone.

It writes what a project needs and never overwrites a file that is already there:
OCR_VERSION.txt with a first version, notebooks/ with copies of the packaged notebooks (a
project's own notebooks override the packaged ones by name; each with this machine's kernel metadata,
so JupyterLab opens it unmodified), reports/, and a .gitignore that
keeps the local database and generated reports out of version control.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrlab.notebook_kernel import kernel_metadata, with_kernel_metadata
from ocrlab.reports.notebooks import packaged_notebooks_dir
from ocrlab.version import VERSION_FILE

FIRST_VERSION = "version: 1.0.0\nbuild_date: {today}\ndescription: first version\n"
GITIGNORE = ".ocrlab/\nreports/*\n!reports/.gitkeep\n.ipynb_checkpoints/\n"


@dataclass
class InitReport:
    folder: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)   # already there: left as it was


def _write(folder: Path, relative: str, text: str, report: InitReport) -> None:
    path = folder / relative
    if path.exists():
        report.kept.append(relative)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    report.created.append(relative)


def _notebook(source: Path, metadata: dict[str, Any]) -> str:
    """A packaged notebook with this machine's kernel metadata, so JupyterLab opens it unmodified."""
    import nbformat
    nb = nbformat.read(source, as_version=4)
    with_kernel_metadata(nb, metadata)
    return nbformat.writes(nb) + "\n"


def init_project(folder: str | Path = ".", today: dt.date | None = None) -> InitReport:
    """Create the starter files in `folder` (created if missing); existing files are kept."""
    root = Path(folder).resolve()
    report = InitReport(root)
    _write(root, VERSION_FILE, FIRST_VERSION.format(today=(today or dt.date.today()).isoformat()), report)
    metadata = kernel_metadata()
    for notebook in sorted(packaged_notebooks_dir().glob("*.ipynb")):
        _write(root, f"notebooks/{notebook.name}", _notebook(notebook, metadata), report)
    _write(root, "reports/.gitkeep", "", report)
    _write(root, ".gitignore", GITIGNORE, report)
    return report
