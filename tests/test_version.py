import re
from pathlib import Path

import pytest

from ocrlab.errors import VersionFileError
from ocrlab.version import load_version

GOOD = "version: 2.0.0\nbuild_date: 2025-10-25\ndescription: Amazon Nova Lite + Real-time Coverage Tracking\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "OCR_VERSION.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_four_stamps(tmp_path):
    info = load_version(write(tmp_path, GOOD))
    assert info.stamp() == {"OCRVersion": "2.0.0", "OCRBuildDate": "2025-10-25",
                            "OCRDescription": "Amazon Nova Lite + Real-time Coverage Tracking",
                            "OCRFullVersion": "2.0.0-2025-10-25"}


def test_repository_file_is_valid():
    assert load_version(Path(__file__).resolve().parents[1] / "OCR_VERSION.txt").full_version == "2.0.0-2025-10-25"


def test_seed_module_constants():
    import ocrlab.version as v
    assert v.OCRFullVersion == f"{v.OCRVersion}-{v.OCRBuildDate}"


@pytest.mark.parametrize("text, line, words", [
    ("version: 2.0.0\nbuild_date 2025-10-25\ndescription: x\n", 2, "expected 'key: value'"),
    ("version: 2.0.0\nbuild_date: 2025-13-45\ndescription: x\n", 2, "not YYYY-MM-DD"),
    ("version: two\nbuild_date: 2025-10-25\ndescription: x\n", 1, "not like 2.0.0"),
    ("version: 2.0.0\nversion: 2.0.1\n", 2, "given twice"),
    ("version: 2.0.0\ncolour: blue\n", 2, "unknown key"),
    ("version: 2.0.0\nbuild_date:\n", 2, "has no value"),
])
def test_malformed_file_names_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(VersionFileError) as err:
        load_version(path)
    assert str(path) in str(err.value) and f"line {line}" in str(err.value) and words in str(err.value)


def test_missing_key_and_missing_file(tmp_path):
    with pytest.raises(VersionFileError, match="missing description"):
        load_version(write(tmp_path, "version: 2.0.0\nbuild_date: 2025-10-25\n"))
    with pytest.raises(VersionFileError, match="file not found"):
        load_version(tmp_path / "nope.txt")


STAMP_ENV = {"OCRLAB_OCR_VERSION": "2.1.0", "OCRLAB_OCR_BUILD_DATE": "2025-11-02",
             "OCRLAB_OCR_DESCRIPTION": "deployed candidate"}


def test_stamp_from_the_environment_wins_over_the_default_file_only(monkeypatch, tmp_path):
    for name, value in STAMP_ENV.items():
        monkeypatch.setenv(name, value)
    assert load_version().full_version == "2.1.0-2025-11-02"  # how the Lambda function is stamped
    assert load_version(write(tmp_path, GOOD)).full_version == "2.0.0-2025-10-25"  # an explicit file still wins


@pytest.mark.parametrize("name, value, words", [
    ("OCRLAB_OCR_BUILD_DATE", "", "OCRLAB_OCR_BUILD_DATE): 'build_date' has no value"),
    ("OCRLAB_OCR_BUILD_DATE", "25/10/2025", "not YYYY-MM-DD"),
    ("OCRLAB_OCR_VERSION", "latest", "OCRLAB_OCR_VERSION): version 'latest' is not like 2.0.0"),
])
def test_stamp_from_the_environment_is_checked_like_the_file(monkeypatch, name, value, words):
    for key, good in {**STAMP_ENV, name: value}.items():
        monkeypatch.setenv(key, good)
    with pytest.raises(VersionFileError, match=re.escape(words)):
        load_version()
