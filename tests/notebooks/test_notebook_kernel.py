"""Notebooks carry the kernel metadata JupyterLab writes as their kernel starts, so they open unmodified
(the browser test opens them in JupyterLab)."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from ocrlab.notebook_kernel import kernel_metadata, sync_notebooks
from ocrlab.project import init_project

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_init_and_lab_give_the_notebooks_this_machines_kernel_metadata(tmp_path):
    expected = kernel_metadata()
    assert expected["kernelspec"]["name"] == "python3" and expected["language_info"]["version"]
    init_project(tmp_path / "project")
    for path in (tmp_path / "project" / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert {k: nb.metadata[k] for k in expected} == expected, path.name

    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(NOTEBOOKS / "explore_failures.ipynb", folder)
    old = nbformat.read(folder / "explore_failures.ipynb", as_version=4)
    old.metadata["language_info"] = {"name": "python", "version": "3.0.0"}
    nbformat.write(old, folder / "explore_failures.ipynb")
    assert sync_notebooks(folder) == [folder / "explore_failures.ipynb"]
    synced = nbformat.read(folder / "explore_failures.ipynb", as_version=4)
    assert synced.metadata["language_info"] == expected["language_info"]
    assert [c.source for c in synced.cells] == [c.source for c in old.cells]  # metadata only
    assert sync_notebooks(folder) == []  # nothing to do the second time
