"""Every file ocrlab writes is written whole or not at all: a full disk or a file-size limit leaves the
previous file as it was and is one line naming the path and the cause; a link planted where an output
goes is replaced, never followed out of its folder."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support.helpers import V1, run_cli

from ocrlab.store.failure_log import log_failed_image


@pytest.fixture
def failures(store):
    for i in range(40):
        log_failed_image(store, f"f-{i:02d}.png", "PARSING_ERROR", "no timesheet", V1,
                         {"raw_ocr_output": f"raw {i} " + "x" * 4000})
    return store


def export(store, output: Path, *extra: str, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ocrlab", "export", "--table", store.table, "-o", str(output),
                           *extra], capture_output=True, text=True, timeout=120, preexec_fn=preexec)


def test_an_export_over_a_file_size_limit_keeps_the_previous_file(failures, tmp_path):
    out = tmp_path / "failures.csv"
    first = export(failures, out, "--since", "2000-01-01T00:00:00Z")
    assert first.returncode == 0 and out.stat().st_size > 150_000
    before = out.read_bytes()
    limit = 64 * 1024                     # ulimit -f: the next export cannot be written whole

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    again = export(failures, out, preexec=limited)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines()[-1] == f"ocrlab export: {out}: File too large"
    assert out.read_bytes() == before                                 # the earlier export, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failures.csv"]   # no half-written file left


def test_an_export_onto_a_full_disk_keeps_the_previous_file(failures, tmp_path):
    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        out = disk / "failures.csv"
        first = export(failures, out, "--failure-type", "PARSING_ERROR", "--ocr-version", "none")  # header only
        assert first.returncode == 0
        before = out.read_bytes()
        full = export(failures, out)
        assert full.returncode == 1 and "Traceback" not in full.stderr
        assert full.stderr.strip().splitlines()[-1] == f"ocrlab export: {out}: No space left on device"
        assert out.read_bytes() == before and sorted(p.name for p in disk.iterdir()) == ["failures.csv"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_link_planted_where_an_output_goes_is_replaced_not_followed(failures, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.txt"
    precious.write_text("keep me")
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("failures.csv", "results.csv", "summary.json", "comparison.html"):
        (reports / name).symlink_to(precious)
    assert export(failures, reports / "failures.csv").returncode == 0
    assert run_cli("results", "--table", failures.table, "-o", str(reports / "results.csv")).returncode == 0
    assert run_cli("compare", "--table", failures.table, "--base", V1.full_version, "--candidate",
                   V1.full_version, "-o", str(reports / "comparison.html")).returncode == 0
    assert precious.read_text() == "keep me" and sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    for name in ("failures.csv", "results.csv", "comparison.html"):
        path = reports / name
        assert not path.is_symlink() and path.is_file() and path.stat().st_size > 0
    assert (reports / "failures.csv").read_text(encoding="utf-8").startswith("ImageKey,FailureTimestamp")


def test_a_stream_is_still_written_into(failures):
    out = export(failures, Path("/dev/null"))
    assert out.returncode == 0 and Path("/dev/null").exists() and not Path("/dev/null").is_file()


def test_files_are_written_with_the_permissions_open_would_give(tmp_path):
    from ocrlab.files import write_text
    path = write_text("x", tmp_path / f"{uuid.uuid4().hex}.txt")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    os.chmod(path, 0o640)
    write_text("y", path)                   # replacing a file keeps its permissions
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_text() == "y"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
