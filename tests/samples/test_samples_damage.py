"""Scan damage levels and typefaces of the samples, and a heavy set through the real engine."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from support.helpers import key_of

from ocrlab.runs.batch import run_batch
from ocrlab.samples import fonts as sample_fonts
from ocrlab.samples.generate import generate_samples
from ocrlab.timesheet.model import parse_text, validate
from ocrlab.version import load_version


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def heavy(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("heavy")
    return folder, generate_samples(folder, count=4, seed=5, damage="heavy", invalid=3)


def test_damage_is_a_function_of_the_seed_and_the_level(tmp_path, heavy):
    folder, manifest = heavy
    again = generate_samples(tmp_path / "again", count=4, seed=5, damage="heavy", invalid=3)
    assert again == manifest
    assert all(sha(folder / m["file"]) == sha(tmp_path / "again" / m["file"]) for m in manifest)
    generate_samples(tmp_path / "none", count=1, seed=5, damage="none")
    assert sha(tmp_path / "none" / "timesheet-001.png") != sha(folder / "timesheet-001.png")
    # the same timesheet, whatever the damage
    assert (tmp_path / "none" / "timesheet-001.json").read_text() == (folder / "timesheet-001.json").read_text()


def test_the_manifest_says_what_was_done_to_each_page(heavy):
    folder, manifest = heavy
    names = {f.name for f in sample_fonts.CATALOGUE}
    for m in manifest:
        assert m["damage"] == "heavy" and m["font"] in names
        assert any(e.startswith("rotated") for e in m["effects"]) and any(e.startswith("blur") for e in m["effects"])
    assert [m["expected"] for m in manifest] == ["OK"] * 4 + ["VALIDATION_ERROR"] * 3


def test_ground_truth_and_printed_text_beside_every_damaged_image(heavy):
    folder, manifest = heavy
    for m in manifest:
        stem = folder / Path(m["file"]).stem
        truth = json.loads(stem.with_suffix(".json").read_text())
        assert dict(parse_text(stem.with_suffix(".txt").read_text())) == truth
        assert (validate(truth) == []) == (m["expected"] == "OK")
        with Image.open(folder / m["file"]) as img:
            assert img.mode == "L" and min(img.size) > 200


def test_a_missing_typeface_falls_back_to_dejavu_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(sample_fonts, "SYSTEM_FONT_DIRS", (tmp_path / "no-fonts",))
    sample_fonts._path.cache_clear()
    sample_fonts.load.cache_clear()
    try:
        notes = sample_fonts.missing()
        assert any("Liberation Serif is not installed (apt-get install fonts-liberation2)" in n for n in notes)
        manifest = generate_samples(tmp_path / "s", count=3, seed=1)
        assert {m["font"] for m in manifest} <= {f.name for f in sample_fonts.DEJAVU.values()}
    finally:
        sample_fonts._path.cache_clear()
        sample_fonts.load.cache_clear()


def test_ci_installs_every_font_package_the_catalogue_uses():
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert all(package in ci for package in sample_fonts.DEBIAN_PACKAGES)


def test_the_samples_command_takes_a_damage_level(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ocrlab", "samples", str(tmp_path), "--count", "1",
                          "--damage", "heavy"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "manifest.json").read_text())[0]["damage"] == "heavy"
    bad = subprocess.run([sys.executable, "-m", "ocrlab", "samples", str(tmp_path), "--damage", "worst"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "invalid choice" in bad.stderr


def test_a_heavy_set_through_rapidocr_reads_the_truth_or_fails_never_a_wrong_timesheet(heavy, store):
    """The real engine in two worker processes: every invalid sheet is a VALIDATION_ERROR, every
    success is the ground truth, and what was repaired is on the record. A name is the one field
    no rule can check, so an engine's misread name is OCR error, not the reader's: it is left out."""
    folder, manifest = heavy
    version = load_version().full_version
    run_batch(str(folder), store, concurrency=2, progress=False)
    latest = {r["ImageKey"]: r for r in store.latest_outcomes(version)}
    assert len(latest) == len(manifest)
    successes = 0
    for m in manifest:
        record = latest[key_of(folder / m["file"])]
        if m["expected"] == "VALIDATION_ERROR":
            assert record.get("FailureType") == "VALIDATION_ERROR", record.get("ErrorMessage")
        elif record["RecordType"] == "OCR_RESULT":
            successes += 1
            truth = json.loads((folder / m["file"]).with_suffix(".json").read_text())
            parsed = json.loads(record["ParsedTimesheet"])
            assert {k: v for k, v in parsed.items() if k != "employee_name"} == \
                {k: v for k, v in truth.items() if k != "employee_name"}, m["file"]
    assert successes >= 2
    assert any(record.get("ParseRepairs") for record in latest.values())
