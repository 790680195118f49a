"""Finding a record's image in each form its key takes, from wherever the kernel runs."""
from __future__ import annotations

import pytest

from ocrlab.config import DEMO_TABLE, in_project
from ocrlab.image_lookup import default_sources, find_ground_truth, find_image, image_folders, truth_folder


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder; the kernel runs in its notebooks/, as JupyterLab starts it."""
    (tmp_path / "OCR_VERSION.txt").write_text("version: 1.0.0\nbuild_date: 2025-01-01\ndescription: x\n")
    for folder in ("notebooks", "scans/2025", "elsewhere"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "scans/2025/a.png").write_bytes(b"image a")
    (tmp_path / "scans/2025/a.json").write_text('{"employee_name": "A"}')
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.setenv("OCRLAB_HOME", str(tmp_path / ".ocrlab"))
    return tmp_path


def test_a_key_relative_to_the_project_folder(project):
    found = find_image({"ImageKey": "scans/2025/a.png"})
    assert found.data == b"image a" and found.base == project
    assert find_ground_truth({"ImageKey": "scans/2025/a.png"}) == {"employee_name": "A"}


def test_an_absolute_key(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "b.png"
    outside.write_bytes(b"image b")
    assert find_image({"ImageKey": str(outside)}).data == b"image b"
    assert "no such file" in find_image({"ImageKey": str(outside) + ".gone"}).where


def test_a_legacy_key_relative_to_a_source_named_relative_to_the_project(project):
    record = {"ImageKey": "2025/a.png"}
    missing = find_image(record)
    assert missing.data is None and str(project) in missing.where and "set `source`" in missing.where
    found = find_image(record, ["scans"])  # the project's scans/, though the kernel runs in notebooks/
    assert found.data == b"image a" and found.base == project / "scans"
    assert in_project("scans") == project / "scans" and in_project("/abs") .as_posix() == "/abs"
    assert find_ground_truth(record, ["scans"]) == {"employee_name": "A"}


def test_not_found_says_where_it_looked(project):
    where = find_image({"ImageKey": "nope.png"}, ["scans", "elsewhere"]).where
    assert where.startswith("nope.png not found in ")
    for folder in ("scans", "elsewhere"):
        assert f"{project / folder} (source)" in where
    assert f"{project} (the project folder)" in where
    assert "never leads out" in find_image({"ImageKey": "../x.png"}, ["scans"]).where


def test_the_demos_samples_are_looked_in_for_the_demos_table_only(project):
    samples = project / ".ocrlab" / "demo" / "samples"
    samples.mkdir(parents=True)
    assert default_sources(DEMO_TABLE) == [samples] and default_sources("ocrlab") == []


def test_folders_of_a_re_run_and_the_ground_truth_beside_the_images(project):
    folders, missing = image_folders(["2025/a.png", "gone.png"], ["scans"])
    assert folders == {project / "scans": ["2025/a.png"]} and missing[0].startswith("gone.png not found")
    # A key of the project folder is listed from its own folder, not the whole project.
    assert image_folders(["scans/2025/a.png"])[0] == {project / "scans" / "2025": ["scans/2025/a.png"]}
    assert truth_folder(["scans/2025/a.png", "gone.png"]) == project / "scans" / "2025"
    assert truth_folder(["gone.png"]) is None
