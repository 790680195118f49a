"""Helpers shared by the tests: versions, images, the command line, free ports."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import uuid

from PIL import Image

from ocrlab.version import OCRVersionInfo

V1 = OCRVersionInfo("2.0.0", "2025-10-25", "Amazon Nova Lite + Real-time Coverage Tracking")  # = OCR_VERSION.txt
V2 = OCRVersionInfo("2.1.0", "2025-11-02", "candidate prompt")
V2_FILE = "version: 2.1.0\nbuild_date: 2025-11-02\ndescription: candidate prompt\n"
# The reference timesheet of docs/design.md, as its readers give it back.
TIMESHEET = {
    "employee_name": "Maria Gonzalez", "employee_id": "E-10472", "week_ending": "2025-10-24",
    "entries": [{"date": "2025-10-20", "time_in": "08:00", "time_out": "16:30", "hours": 8.0},
                {"date": "2025-10-21", "time_in": "08:00", "time_out": "17:00", "hours": 8.5}],
    "total_hours": 16.5,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(width: int = 40, height: int = 30, colour: str = "white", *, unique: bool = True) -> bytes:
    """A small valid PNG (blank: no engine reads a timesheet in it). Each call's bytes are its own (a
    text chunk says so), as two scans' bytes are: a batch knows an image by its content too."""
    from PIL.PngImagePlugin import PngInfo
    buf = io.BytesIO()
    info = PngInfo()
    if unique:
        info.add_text("scan", uuid.uuid4().hex)
    Image.new("RGB", (width, height), colour).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def run_cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """`python -m ocrlab ARGS` in a child process with the test environment plus `env`."""
    return subprocess.run([sys.executable, "-m", "ocrlab", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


def key_of(path) -> str:
    """The ImageKey a batch gives a local file (ocrlab.runs.sources.LocalKeys): relative to the project folder,
    else absolute, as the tests' images in temporary folders are."""
    from pathlib import Path

    from ocrlab.runs.sources import LocalKeys
    return LocalKeys().key(Path(path))


def on_another_machine(folder, skew: str = "-1h", host: str = "other-host") -> list[str] | None:
    """A command prefix running a program as a second machine would: its own host name and boot (so
    nothing compares its clocks with this machine's), and a wall clock `skew` off (faketime). None
    where this cannot be done here (needs root for unshare, and Debian's faketime, both in .ci/run)."""
    import shutil
    from pathlib import Path
    if shutil.which("faketime") is None or shutil.which("unshare") is None:
        return None
    boot = Path(folder) / "boot_id"
    boot.write_text(f"{uuid.uuid4()}\n")
    prefix = ["unshare", "--mount", "--uts", "sh", "-c",
              f'hostname {host} && mount --bind {boot} /proc/sys/kernel/random/boot_id && exec faketime -f {skew} "$@"',
              "another-machine"]
    if subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        return None
    return prefix
