"""Synthetic reference timesheets: deterministic, complete manifest, truthful ground truth."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from ocrlab.samples.generate import generate_samples
from ocrlab.timesheet.model import parse_text, validate

COMPANIONS = {".json", ".txt"}


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def bad_set(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("bad")
    return out, generate_samples(out, count=2, seed=3, bad=True)


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path, bad_set):
    folder, _ = bad_set
    again = generate_samples(tmp_path / "again", count=2, seed=3, bad=True)
    assert digest(tmp_path / "again") == digest(folder)
    assert again == json.loads((folder / "manifest.json").read_text())
    generate_samples(tmp_path / "other", count=2, seed=4)
    assert (tmp_path / "other" / "timesheet-001.png").read_bytes() != (folder / "timesheet-001.png").read_bytes()


def test_a_sample_does_not_depend_on_count(tmp_path, bad_set):
    folder, _ = bad_set
    generate_samples(tmp_path, count=1, seed=3)
    assert (tmp_path / "timesheet-001.png").read_bytes() == (folder / "timesheet-001.png").read_bytes()


def test_manifest_covers_every_file(bad_set):
    folder, manifest = bad_set
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    listed = [m["file"] for m in manifest]
    assert len(listed) == len(set(listed))
    images = {p.name for p in folder.iterdir() if p.suffix not in COMPANIONS and p.name != "manifest.json"}
    assert set(listed) == images
    for m in manifest:
        assert m["expected"] in {"OK", "INPUT_ERROR", "OCR_ERROR", "PARSING_ERROR", "VALIDATION_ERROR"}
        assert m["why"]


def test_ground_truth_beside_each_timesheet(bad_set):
    """OK samples validate; validation samples break exactly the advertised rule; the .txt parses to the .json."""
    folder, manifest = bad_set
    broken_rule = {"bad-total-mismatch.png": "total_mismatch", "bad-time-order.png": "time_order",
                   "bad-date-outside-week.png": "date_out_of_week"}
    for m in manifest:
        stem = folder / Path(m["file"]).stem
        if not stem.with_suffix(".json").exists():
            assert m["expected"] != "OK", m  # every readable timesheet has its ground truth
            continue
        truth = json.loads(stem.with_suffix(".json").read_text())
        printed = stem.with_suffix(".txt").read_text()
        assert parse_text(printed) == truth, m["file"]
        errors = validate(truth)
        if m["expected"] == "OK":
            assert errors == [], (m["file"], errors)
            assert 3 <= len(truth["entries"]) <= 7
        else:
            assert m["expected"] == "VALIDATION_ERROR"
            assert [e.split(":")[0] for e in errors] == [broken_rule[m["file"]]], errors


def test_every_valid_image_decodes_and_matches_its_text(bad_set):
    folder, manifest = bad_set
    for m in manifest:
        if m["expected"] in ("OK", "VALIDATION_ERROR", "PARSING_ERROR"):
            with Image.open(folder / m["file"]) as img:
                img.load()
                assert min(img.size) > 100


def test_bad_set_contents(bad_set):
    folder, manifest = bad_set
    expected = {m["file"]: m["expected"] for m in manifest}
    assert {k: v for k, v in expected.items() if not k.startswith("timesheet-")} == {
        "format-reference.png": "OK",
        "bad-empty.png": "INPUT_ERROR",
        "bad-truncated.png": "INPUT_ERROR",
        "bad-text-named-png.png": "INPUT_ERROR",
        "bad-decompression-bomb.png": "INPUT_ERROR",
        "format-jpeg-named-png.png": "OK",
        "format-tiff.tiff": "OK",
        "format-bmp.bmp": "OK",
        "bad-total-mismatch.png": "VALIDATION_ERROR",
        "bad-time-order.png": "VALIDATION_ERROR",
        "bad-date-outside-week.png": "VALIDATION_ERROR",
        "bad-blank-page.png": "PARSING_ERROR",
        "bad-noise-photo.png": "PARSING_ERROR",
        "bad-not-a-timesheet.png": "PARSING_ERROR",
    }
    assert (folder / "bad-empty.png").stat().st_size == 0
    real_format = {"format-jpeg-named-png.png": "JPEG", "format-tiff.tiff": "TIFF", "format-bmp.bmp": "BMP"}
    for name, fmt in real_format.items():
        with Image.open(folder / name) as img:
            assert img.format == fmt
    with pytest.raises(Exception):
        with Image.open(folder / "bad-truncated.png") as img:
            img.load()
    with pytest.raises(Exception):
        Image.open(folder / "bad-text-named-png.png")
    with pytest.raises(Image.DecompressionBombError):
        Image.open(folder / "bad-decompression-bomb.png")
    # The bomb is a valid PNG, just too large: its header says 15000 x 15000.
    head = (folder / "bad-decompression-bomb.png").read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") == 15000


def test_printed_text_lines_follow_the_reference_layout(bad_set):
    folder, _ = bad_set
    lines = (folder / "timesheet-001.txt").read_text().splitlines()
    assert "WEEKLY TIMESHEET" in lines
    i = lines.index("WEEKLY TIMESHEET")
    assert lines[i + 1].startswith("Employee: ") and " ID: " in lines[i + 1]
    assert lines[i + 2].startswith("Week ending: ")
    assert lines[i + 3] == "Date In Out Hours"
    assert any(line.startswith("Total hours: ") for line in lines)


def test_a_week_across_new_year_is_generated(tmp_path):
    """Every fourth sample's week starts in December: dates carry two different years."""
    generate_samples(tmp_path, count=3, seed=11)
    truth = json.loads((tmp_path / "timesheet-003.json").read_text())
    years = {e["date"][:4] for e in truth["entries"]}
    assert len(years) == 2 and truth["week_ending"][5:7] == "01"
    assert validate(truth) == []
