"""The packages show the architecture: imports go one way, and the former module names still import."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

OCRLAB = Path(__file__).resolve().parents[1] / "ocrlab"
EDGES = {"ocrlab.cli", "ocrlab.demo", "ocrlab.lab", "ocrlab.__main__"}
# What each layer may not import (besides the edges, which nothing imports).
BELOW = {
    "ocrlab.timesheet": ("ocrlab.ocr", "ocrlab.runs", "ocrlab.aws", "ocrlab.store", "ocrlab.analysis",
                         "ocrlab.reports", "ocrlab.widgets", "ocrlab.evaluation", "ocrlab.samples"),
    "ocrlab.store": ("ocrlab.ocr", "ocrlab.runs", "ocrlab.aws", "ocrlab.analysis", "ocrlab.reports",
                     "ocrlab.widgets", "ocrlab.evaluation", "ocrlab.samples"),
    "ocrlab.ocr": ("ocrlab.runs", "ocrlab.aws", "ocrlab.analysis", "ocrlab.reports", "ocrlab.widgets"),
    "ocrlab.analysis": ("ocrlab.runs", "ocrlab.aws", "ocrlab.reports", "ocrlab.widgets"),
    "ocrlab.reports": ("ocrlab.runs", "ocrlab.aws", "ocrlab.widgets"),
}


def _modules() -> dict[str, set[str]]:
    """Every module of the package and the ocrlab modules it imports (at any depth of its code)."""
    found = {}
    for path in OCRLAB.rglob("*.py"):
        parts = path.relative_to(OCRLAB.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        found[name] = {m for m in imported if m == "ocrlab" or m.startswith("ocrlab.")}
    return found


def test_imports_go_one_way():
    wrong = []
    for name, imported in _modules().items():
        if name not in EDGES:
            wrong += [f"{name} -> {m}" for m in imported if m in EDGES]
        for layer, below in BELOW.items():
            if name == layer or name.startswith(layer + "."):
                wrong += [f"{name} -> {m}" for m in imported if m.startswith(below)]
    assert not wrong, "\n".join(sorted(wrong))


def test_the_top_holds_only_the_edges_and_what_every_layer_shares():
    flat = sorted(p.stem for p in OCRLAB.glob("*.py"))
    assert flat == ["__init__", "__main__", "_moved", "cli", "clients", "config", "demo", "domain", "errors", "files",
                    "image_lookup", "lab", "notebook_kernel", "project", "records", "table_choice", "taxonomy",
                    "text", "version", "worker"]


@pytest.mark.parametrize("former, now", [("ocrlab.batch", "ocrlab.runs.batch"),
                                         ("ocrlab.handler", "ocrlab.aws.handler"),
                                         ("ocrlab.compare", "ocrlab.analysis.compare"),
                                         ("ocrlab.schema", "ocrlab.timesheet.schema"),
                                         ("ocrlab.engines.bedrock", "ocrlab.ocr.engines.bedrock")])
def test_a_former_module_name_is_the_module_under_its_new_one(former, now):
    assert importlib.import_module(former) is importlib.import_module(now)


def test_the_names_notebooks_and_the_template_use_still_import():
    from ocrlab.batch import run_batch
    from ocrlab.handler import lambda_handler  # what a function deployed before names

    from ocrlab.analysis import pattern_frames  # noqa: F401
    from ocrlab.runs.batch import run_batch as moved
    from ocrlab.samples import generate_samples  # noqa: F401
    from ocrlab.widgets import export_panel, failure_browser  # noqa: F401
    assert run_batch is moved and callable(lambda_handler)
