"""Notebook reports: run a notebook of `notebooks/` with papermill, keep the executed copy and its HTML.

Conventions a notebook follows (docs/design.md, "Notebooks"):
- one cell tagged `parameters` with literal defaults (a default of None may carry an annotation,
  `max_attempts: Optional[int] = None`, so that `-p max_attempts 3` from the command line
  becomes an int);
- a last cell tagged `record` calling `ocrlab.reports.record(name=value, ...)`: the figures are
  displayed as one output of type FIGURES_MIME, which `recorded_figures` reads back from the
  executed notebook (a smoke test asserts on them, as recommenders' "record results" cells do).
"""
from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ocrlab.config import find_upward, settings
from ocrlab.errors import MissingDependency, NotebookFailed, OcrlabError, ParameterError, ReportError, UnknownName
from ocrlab.files import json_safe, unique_path, write_text
from ocrlab.text import shorten

FIGURES_MIME = "application/vnd.ocrlab.figures+json"
KERNEL = "python3"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TRUE, _FALSE, _NONE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}, {"none", "null", ""}
_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


@dataclass(frozen=True)
class ReportResult:
    ipynb_path: Path
    html_path: Path
    figures: dict[str, Any] = field(default_factory=dict)


# --- locations --------------------------------------------------------------------------------

def _project_folder(name: str) -> Path | None:
    """`name/` in the working directory or its nearest ancestor that has one."""
    found = find_upward(name)
    return found / name if found else None


def packaged_notebooks_dir() -> Path:
    """The notebooks that ship with ocrlab: `ocrlab/notebooks/` when installed, the repository's
    `notebooks/` in a source checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "notebooks"
    return installed if installed.is_dir() else package.parent / "notebooks"


def notebook_dirs(notebooks_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where notebooks are looked up, first match wins: the folder given, else OCRLAB_NOTEBOOKS,
    else the project's `notebooks/`; then the packaged notebooks (a project's own override them)."""
    first = Path(notebooks_dir) if notebooks_dir is not None else (settings().notebooks_dir
                                                                    or _project_folder("notebooks"))
    return list(dict.fromkeys(p for p in (first, packaged_notebooks_dir()) if p is not None))


def default_reports_dir() -> Path:
    """OCRLAB_REPORTS_DIR, else the project's `reports/` (also from a kernel started in notebooks/)."""
    return settings().reports_dir or _project_folder("reports") or Path("reports")


def utc_stamp(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def report_path(name: str, suffix: str, reports_dir: str | os.PathLike[str] | None = None,
                stamp: str | None = None) -> Path:
    """`reports/NAME-YYYYmmddTHHMMSSZ.SUFFIX`, never one that exists (two runs in the same second)."""
    folder = Path(reports_dir) if reports_dir is not None else default_reports_dir()
    return unique_path(folder, f"{name}-{stamp or utc_stamp()}", suffix)


def find_notebook(notebook: str | os.PathLike[str], notebooks_dir: str | os.PathLike[str] | None = None) -> Path:
    """A notebook by name (`failure_patterns`) from `notebook_dirs`, or by path."""
    given = Path(notebook)
    if given.suffix == ".ipynb" and given.is_file():
        return given
    name = f"{given.stem if given.suffix == '.ipynb' else given.name}.ipynb"
    folders = notebook_dirs(notebooks_dir)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.ipynb")})
    raise UnknownName(f"notebook (in {', '.join(map(str, folders))})", str(notebook), known)


# --- parameters -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    """One assignment of a `parameters` cell."""

    default: Any
    kind: type | None   # what a command-line string becomes; None: kept as given
    nullable: bool      # "None" / "null" from the command line means None


def _annotation(annotation: ast.expr | None) -> tuple[type | None, bool]:
    """(type, allows None) from `int`, `Optional[int]` or `int | None`."""
    if annotation is None:
        return None, False
    text = ast.unparse(annotation).replace(" ", "")
    inner = re.sub(r"^Optional\[(.*)\]$", r"\1", text)
    inner = re.sub(r"^None\|(.*)$|^(.*)\|None$", lambda m: m.group(1) or m.group(2), inner)
    return _TYPES.get(inner), inner != text


def notebook_parameters(path: str | os.PathLike[str]) -> dict[str, Parameter]:
    """Each assignment of the notebook's `parameters` cell, read with `ast` (papermill's line
    matcher skips any line with a second `=`, even one in a comment)."""
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return {}
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise ParameterError(f"{Path(path).name}: the parameters cell is not valid Python: {exc}") from None
    out: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, value, annotation = node.target.id, node.value, node.annotation
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value, annotation = node.targets[0].id, node.value, None
        else:
            continue
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            default = None  # not a literal: the notebook breaks the convention; strings pass as given
        kind, optional = _annotation(annotation)
        out[name] = Parameter(default, kind or (type(default) if default is not None else None),
                              optional or default is None)
    return out


def convert_parameter(name: str, value: Any, param: Parameter) -> Any:
    """A command-line string in the type of the notebook's default; other values pass through."""
    if not isinstance(value, str):
        return value
    text, kind = value.strip(), param.kind
    if param.nullable and text.lower() in _NONE:
        return None
    if kind is None or kind is str:
        return value
    try:
        if kind is bool:
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError(text)
        if kind in (int, float):
            return kind(text)
        parsed = ast.literal_eval(text)  # a list or dict default
        if isinstance(parsed, kind):
            return parsed
        raise ValueError(text)
    except (ValueError, SyntaxError):
        raise ParameterError(f"parameter {name!r} takes {kind.__name__} (default {param.default!r}), "
                             f"got {value!r}") from None


def convert_parameters(path: str | os.PathLike[str], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for papermill: names checked against the notebook, strings converted."""
    known = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ParameterError(f"{Path(path).stem} has no parameter {', '.join(map(repr, unknown))}; "
                             f"its parameters: {', '.join(known) or 'none'}")
    return {name: convert_parameter(name, value, known[name]) for name, value in parameters.items()}


# --- recording figures ------------------------------------------------------------------------

def record(**figures: Any) -> None:
    """Display the notebook's figures as one FIGURES_MIME output (read back by recorded_figures)."""
    data = json_safe(figures)
    from IPython.display import display
    display({FIGURES_MIME: data, "text/plain": "recorded figures: " + json.dumps(data, sort_keys=True)},
            raw=True)


def recorded_figures(executed: str | os.PathLike[str] | Any) -> dict[str, Any]:
    """The figures recorded by an executed notebook (a path or a NotebookNode), later ones winning."""
    import nbformat
    nb = nbformat.read(str(executed), as_version=4) if isinstance(executed, (str, os.PathLike)) else executed
    figures: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(FIGURES_MIME)
            if isinstance(data, str):  # some writers keep JSON outputs as text
                data = json.loads(data)
            if isinstance(data, Mapping):
                figures.update(data)
    return figures


# --- running ----------------------------------------------------------------------------------

def write_html(executed_ipynb: str | os.PathLike[str], html_path: str | os.PathLike[str], *,
               show_code: bool = False, title: str | None = None, parameters: Mapping[str, Any] | None = None,
               failed: str | None = None) -> Path:
    """The executed notebook as a standalone page (ocrlab.reports.notebook_html); code hidden unless show_code."""
    import nbformat

    from ocrlab.reports.links import relative_file_links
    from ocrlab.reports.notebook_html import notebook_html
    nb = nbformat.read(str(executed_ipynb), as_version=4)
    when = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S}"
    page = notebook_html(nb, title or Path(executed_ipynb).stem, parameters=parameters, failed=failed,
                         show_code=show_code, generated=when)
    return write_text(relative_file_links(page, Path(html_path).parent), html_path)  # the folder can move


def _failed_cell(source_nb: Any, executed_nb: Any) -> int:
    """1-based position, in the notebook as stored, of the executed cell that raised.

    papermill adds cells (injected parameters, an error banner and anchor), so the cell is found by
    papermill's exception flag and mapped back by its id, else by counting the original cells.
    """
    added = {"injected-parameters", "papermill-error-cell-tag"}
    position = 0
    for cell in executed_nb.cells:
        if added & set(cell.get("metadata", {}).get("tags", [])):
            continue
        position += 1
        if cell.get("metadata", {}).get("papermill", {}).get("exception"):
            for n, original in enumerate(source_nb.cells, start=1):
                if cell.get("id") and original.get("id") == cell.get("id"):
                    return n
            return position
    return 0


def _code_line(traceback: list[str]) -> str:
    """The line marked `---->` in the cell's frame of an IPython traceback."""
    for frame in traceback:
        for line in _ANSI.sub("", frame).splitlines():
            m = re.match(r"\s*-+>\s*\d+\s(.*)$", line)
            if m:
                return shorten(m.group(1), 120)
    return ""


def run_report(notebook: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None,
               reports_dir: str | os.PathLike[str] | None = None,
               notebooks_dir: str | os.PathLike[str] | None = None, *, show_code: bool = False,
               kernel_name: str = KERNEL, cwd: str | os.PathLike[str] | None = None,
               timeout: int | None = None) -> ReportResult:
    """Execute NOTEBOOK with papermill; write `reports/NAME-<UTC>.ipynb` and `.html`.

    String parameter values are converted to the type of the notebook's defaults; a notebook's own
    `reports_dir` defaults to `reports_dir`, so the pages it writes sit beside the report and its links
    to them are relative. A failing cell raises NotebookFailed naming the cell; the partial notebook and
    its HTML are still written.
    """
    try:
        import nbformat
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except ImportError:
        raise MissingDependency("papermill", "notebooks") from None
    source = find_notebook(notebook, notebooks_dir)
    values = convert_parameters(source, parameters or {})
    if reports_dir is not None and "reports_dir" in notebook_parameters(source):
        values.setdefault("reports_dir", str(Path(reports_dir).resolve()))  # its pages beside the report
    stamp = utc_stamp()
    ipynb_path = report_path(source.stem, ".ipynb", reports_dir, stamp)
    html_path = ipynb_path.with_suffix(".html")
    try:
        # The executed notebook is written when it ends (or fails), and every 30 s of a long cell; not after
        # every cell, which re-validates and rewrites the whole notebook each time.
        papermill.execute_notebook(str(source), str(ipynb_path), parameters=values, kernel_name=kernel_name,
                                   cwd=str(cwd) if cwd is not None else None, progress_bar=False,
                                   execution_timeout=timeout, request_save_on_cell_execute=False)
    except PapermillExecutionError as exc:
        cell = _failed_cell(nbformat.read(str(source), as_version=4), nbformat.read(str(ipynb_path), as_version=4))
        exception = shorten(f"{exc.ename}: {exc.evalue}" if exc.evalue else exc.ename, 300)
        where = f"cell {cell}" + (f" (In [{exc.exec_count}])" if exc.exec_count else "")
        try:
            written: Path | None = write_html(ipynb_path, html_path, show_code=show_code, title=source.stem,
                                              parameters=values, failed=f"failed in {where}: {exception}")
        except Exception:  # the HTML of a broken notebook is a bonus; the error is what matters
            written = None
        raise NotebookFailed(source.stem, cell, exc.exec_count, _code_line(exc.traceback), exception,
                             ipynb_path, written) from None
    except Exception as exc:
        if isinstance(exc, OcrlabError):
            raise
        # A kernel that would not start, a timeout, a notebook papermill cannot read.
        hint = (f"; install it with: python -m ipykernel install --sys-prefix --name {kernel_name}"
                if type(exc).__name__ == "NoSuchKernel" else "")
        raise ReportError(f"notebook {source.stem} could not run: {type(exc).__name__}: "
                          f"{shorten(exc, 300)}{hint}") from exc
    write_html(ipynb_path, html_path, show_code=show_code, title=source.stem, parameters=values)
    return ReportResult(ipynb_path, html_path, recorded_figures(ipynb_path))
