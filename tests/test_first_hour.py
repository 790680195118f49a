"""The first hour of a new user, as the README tells it: a fresh project, `ocrlab demo`, then the notebooks
with their defaults from notebooks/ (where JupyterLab starts their kernels) and the commands with no
--table. Everything runs as that user runs it: child processes in the project folder, its own local
database on a free port, no setting of the test session (OCRLAB_HOME, OCRLAB_TABLE...) leaking in.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import free_port

from ocrlab.analysis.compare import CATEGORY_LABELS
from ocrlab.reports import recorded_figures

REPO = Path(__file__).resolve().parents[1]


def _counts_text(counts: dict[str, int]) -> str:
    """The categories as every summary writes them (ocrlab.analysis.compare.Comparison.counts_text)."""
    return ", ".join(f"{counts[c]:,} {label}" for c, label in CATEGORY_LABELS.items()
                     if counts[c] or c not in ("new", "not_run"))


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace(" (not shown)", "").split()).replace(" ,", ",")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """`ocrlab init` and the full `ocrlab demo` in an empty folder; its database stopped at the end."""
    folder = tmp_path_factory.mktemp("first-hour")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCRLAB_", "AWS_", "DYNAMODB_"))}
    env["OCRLAB_DB_PORT"] = str(free_port())

    def run(*args: str, cwd: Path = folder, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "ocrlab", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0 or not check, f"ocrlab {' '.join(args)}: {done.stderr[-3000:]}"
        return done

    run("init")
    demo = run("demo")
    try:
        yield folder, run, demo.stdout
    finally:
        subprocess.run([sys.executable, "-m", "ocrlab", "db", "stop"], cwd=folder, env=env, capture_output=True,
                       timeout=60)


def test_the_readme_quotes_what_the_demo_prints(project):
    _, _, printed = project
    [line] = [line for line in printed.splitlines() if " -> " in line and " images: " in line]
    figures = line.split(" images: ", 1)[1]
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert figures in readme, figures


def test_the_notebooks_run_with_their_defaults_from_notebooks_folder(project):
    """As JupyterLab runs them: the kernel in notebooks/, nothing edited. The demo's failures are listed,
    their images found; the export panel exports them."""
    folder, run, _ = project
    explore = recorded_figures(Path(run("report", "explore_failures", cwd=folder / "notebooks").stdout.split()[0]))
    assert explore["table"] == "ocrlab-demo" and explore["rows"] == 25
    assert explore["images_found"] == explore["rows"], explore
    assert explore["opened"] and explore["opened"] in explore["image_where"]
    export = recorded_figures(Path(run("report", "export_failures", "-p", "export", "true",
                                       cwd=folder / "notebooks").stdout.split()[0]))
    assert export["table"] == "ocrlab-demo" and export["error"] is None
    assert export["exported_rows"] == export["total_failures"] > 25
    assert Path(export["csv_path"]).parent == folder / "reports"


def test_the_commands_without_a_table_see_the_demos_records(project, tmp_path):
    folder, run, _ = project
    stats = run("stats", "--json")
    assert "table 'ocrlab-demo'" in stats.stderr
    total = json.loads(stats.stdout)["total_failures"]
    out = tmp_path / "failures.csv"
    run("export", "-o", str(out))
    assert total > 0 and len(list(csv.reader(out.open(encoding="utf-8", newline="")))) == total + 1


def test_the_comparison_counts_agree_everywhere(project, tmp_path):
    """The demo's summary line, the compare_versions report, its comparison page and `ocrlab compare --json`
    give the same counts for the same two versions."""
    folder, run, printed = project
    [notebook] = (folder / "reports").glob("compare_versions-*.ipynb")
    figures = recorded_figures(notebook)
    expected = _counts_text(figures["counts"])
    assert f"24 images: {expected}; outcomes:" in printed
    assert expected in _text(notebook.with_suffix(".html").read_text(encoding="utf-8"))
    [page] = (folder / "reports").glob("comparison-*.html")
    assert f"24 images: {expected}." in _text(page.read_text(encoding="utf-8"))
    out = tmp_path / "c.json"
    run("compare", "--base", figures["base"], "--candidate", figures["candidate"], "--json", str(out))
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["counts"] == figures["counts"] and data["outcomes"] == figures["outcomes"]
    assert data["field_accuracy"]["candidate"]["accuracy"] == figures["field_accuracy"]["candidate"]


def test_after_batch_run_a_notebook_that_finds_too_little_names_the_demos_table(project):
    """In file order: batch_run writes its samples to `ocrlab`, which the next notebooks then read. The
    comparison finds one version there and says where the demo's two are, and how to read them."""
    folder, run, _ = project
    [memory] = folder.rglob("table.json")
    remembered = memory.read_text(encoding="utf-8")
    try:
        run("report", "batch_run", cwd=folder / "notebooks")
        stopped = run("report", "compare_versions", cwd=folder / "notebooks", check=False)
        assert stopped.returncode != 0
        said = stopped.stderr.strip().splitlines()[-1]
        assert "table 'ocrlab' holds no version but" in said, said
        assert re.search(r"Other tables here: 'ocrlab-demo' \([^)]+, [^)]+\)\. To read one, set `table`", said), said
    finally:
        memory.write_text(remembered, encoding="utf-8")
