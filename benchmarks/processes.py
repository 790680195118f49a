"""Wall time and peak memory of a command and of every process it starts (a notebook's kernel included).

Linux only: the process tree is walked through /proc every POLL seconds and each process's peak
resident set (VmHWM, the kernel's own high-water mark, so no peak between two polls is missed) is
kept; the command's own is read the same way (wait4's figure would include the children it reaped).
Processes are told apart by their command line: ROLES maps a name to a word of it.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

POLL = 0.05
ROLES = {"kernel": "ipykernel_launcher", "worker": "ocrlab.worker"}


@dataclass
class Run:
    seconds: float
    returncode: int
    peak_mb: dict[str, float] = field(default_factory=dict)  # "command" and each role seen
    output: str = ""


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def _peak_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _role(pid: int) -> str | None:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None
    return next((role for role, word in ROLES.items() if word in command), None)


def run_measured(command: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> Run:
    """Run `command` to the end; its wall time, exit code, output and peak memory per role (MB)."""
    start = time.perf_counter()
    process = subprocess.Popen(list(command), env=dict(env) if env is not None else None, cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peaks: dict[str, int] = {}
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    while True:
        for pid in _tree(process.pid):
            role, kb = "command" if pid == process.pid else _role(pid), _peak_kb(pid)
            if role and kb:
                peaks[role] = max(peaks.get(role, 0), kb)
        done, status, usage = os.wait4(process.pid, os.WNOHANG)
        if done:
            break
        time.sleep(POLL)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    peaks.setdefault("command", usage.ru_maxrss)  # exited before the first look
    return Run(seconds, process.returncode, {role: round(kb / 1024, 1) for role, kb in peaks.items()},
               b"".join(chunks).decode("utf-8", "replace"))
