"""ocrlab as a team adopts it: a wheel built from this checkout, installed into a fresh virtual
environment, used from an empty folder with no repository in sight."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from support.helpers import free_port

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return out


def test_wheel_and_sdist_hold_the_package_data_and_nothing_local(dist):
    [wheel] = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ["ocrlab/store/dynalite_launcher.js", "ocrlab/reports/templates/compare.html.j2",
                   "ocrlab/prompts/timesheet_v1.txt", "ocrlab/py.typed", *(f"ocrlab/notebooks/{n}" for n in NOTEBOOKS)]:
        assert needed in names, needed
    [sdist] = dist.glob("*.tar.gz")
    members = [m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m]
    for name in [*names, *members]:
        assert not name.startswith(("tests/", "benchmarks/", ".ocrlab/", "reports/", ".ci/")), name
        assert "__pycache__" not in name and ".ipynb_checkpoints" not in name, name
    assert "notebooks/failure_patterns.ipynb" in members and "pyproject.toml" in members


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh virtual environment with `ocrlab[all]` from the wheel (dependencies from pip's cache)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    [wheel] = dist.glob("*.whl")
    installed = subprocess.run([str(root / "bin" / "pip"), "install", "--quiet", f"{wheel}[all]"],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return root


def test_from_pip_install_to_a_report_in_an_empty_folder(venv, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    keep = ("HOME", "LANG", "TMPDIR", "OCRLAB_CACHE", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", OCRLAB_DB_PORT=str(free_port()))

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)

    python = str(venv / "bin" / "python")
    imported = run(python, "-c", "import ocrlab, ocrlab.version; print(ocrlab.__file__)")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(str(venv))  # the installed package, not this checkout
    for command in (["ocrlab", "--help"], [python, "-m", "ocrlab", "--help"]):
        helped = run(*command)
        assert helped.returncode == 0 and "usage: ocrlab" in helped.stdout, helped.stderr

    no_version = run("ocrlab", "batch", ".")
    assert no_version.returncode == 2 and "Traceback" not in no_version.stderr
    assert no_version.stderr.count("\n") == 1 and "ocrlab init" in no_version.stderr

    try:
        init = run("ocrlab", "init")
        assert init.returncode == 0, init.stderr
        assert (folder / "OCR_VERSION.txt").read_text().startswith("version: 1.0.0")
        assert sorted(p.name for p in (folder / "notebooks").glob("*.ipynb")) == NOTEBOOKS
        assert (folder / "reports").is_dir() and ".ocrlab/" in (folder / ".gitignore").read_text()
        assert "ocrlab demo" in init.stdout and "ocrlab report" in init.stdout
        (folder / "OCR_VERSION.txt").write_text("version: 1.0.0\nbuild_date: 2025-01-01\ndescription: ours\n")
        again = run("ocrlab", "init")
        assert again.returncode == 0 and "kept    OCR_VERSION.txt" in again.stdout
        assert "description: ours" in (folder / "OCR_VERSION.txt").read_text()  # never overwritten

        demo = run("ocrlab", "demo", "--count", "2", timeout=600)
        assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
        assert (folder / ".ocrlab" / "dynamodb").is_dir()
        assert len(list((folder / "reports").glob("compare_versions-*.html"))) == 1
        assert " -> " in demo.stdout and " regressed, " in demo.stdout  # the comparison's summary line

        report = run("ocrlab", "report", "failure_patterns", "--table", "ocrlab-demo", timeout=600)
        assert report.returncode == 0, report.stderr[-3000:]
        html = Path(report.stdout.strip().splitlines()[-1])
        assert html.parent == folder / "reports" and html.suffix == ".html" and html.is_file()
    finally:
        run("ocrlab", "db", "stop")
