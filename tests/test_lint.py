"""The code has no undefined names, unused imports or syntax errors (pyflakes rules, through ruff), and
its types check (mypy, configured in pyproject.toml)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_pyflakes_rules_hold():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F,E9,I", "--output-format", "concise",
                          "ocrlab", "tests", "benchmarks", "deploy"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_types_check():
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
