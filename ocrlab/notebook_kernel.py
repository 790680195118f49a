"""The notebooks' kernel metadata, as JupyterLab would write it, so a notebook opens unmodified.

When a kernel starts, JupyterLab writes its `kernelspec` (name, display name, language) and
`language_info` (the Python version among them) into the notebook's metadata, and a notebook whose
stored metadata differs shows as modified before anything ran. The shipped notebooks carry the
metadata of the Python they were written with; `ocrlab init` writes its copies with the local kernel's,
and `ocrlab lab` brings the notebooks it opens up to it (metadata only: cells are never touched).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

KERNEL = "python3"


def kernel_metadata(kernel: str = KERNEL) -> dict[str, Any]:
    """`kernelspec` and `language_info` as JupyterLab writes them for `kernel` on this machine (empty when
    Jupyter is not installed)."""
    try:
        from ipykernel.ipkernel import IPythonKernel
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return {}
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        return {}
    return {"kernelspec": {"display_name": spec.display_name, "language": spec.language, "name": kernel},
            "language_info": dict(IPythonKernel.language_info)}


def with_kernel_metadata(nb: Any, metadata: dict[str, Any]) -> bool:
    """Give a notebook (nbformat's node) the kernel metadata of a Python kernel; True if it changed."""
    spec = nb.metadata.get("kernelspec", {})
    if not metadata or spec.get("name", KERNEL) != metadata["kernelspec"]["name"]:
        return False  # another kernel's notebook: not ours to change
    changed = False
    for key, value in metadata.items():
        if nb.metadata.get(key) != value:
            nb.metadata[key] = value
            changed = True
    return changed


def sync_notebooks(folder: str | os.PathLike[str]) -> list[Path]:
    """Give every notebook in `folder` this machine's kernel metadata where it differs; the files changed.

    The notebooks inside the installed package are never written (they are the package's, and a project
    gets its own copies from `ocrlab init`), nor is a file that cannot be: it opens modified, as before."""
    import nbformat
    if Path(folder).resolve().is_relative_to(Path(__file__).resolve().parent):
        return []
    metadata = kernel_metadata()
    changed = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
            if with_kernel_metadata(nb, metadata):
                nbformat.write(nb, path)
                changed.append(path)
        except Exception:  # unreadable (JupyterLab will say so) or read-only: left as it is
            continue
    return changed
