"""SIGTERM and SIGINT end a batch the same way (what docker stop, systemd, Kubernetes and schedulers
send): no image starts, those running finish and are recorded, the summary is written, one line names
the signal, exit 128+signal; worker processes end with their parent. Waits are gates, not time windows:
the local Converse server holds its answers until the test lets them go."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.helpers import key_of, png


def children(pid: int) -> set[int]:
    """Every live descendant of `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists() and
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"}


def gone_within(pids: set[int], seconds: float) -> set[int]:
    """The processes of `pids` still running after `seconds` (polled: an upper bound, not a timing)."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_to_a_bedrock_batch_finishes_what_runs_and_writes_the_summary(name, tmp_path, store,
                                                                                converse_server, aws_credentials):
    root = tmp_path / "scans"
    root.mkdir()
    for i in range(12):
        (root / f"img-{i:02d}.png").write_bytes(png())
    converse_server.hold()
    cmd = [sys.executable, "-m", "ocrlab", "batch", str(root), "--engine", "bedrock", "--table", store.table,
           "--concurrency", "3", "--no-progress"]
    env = {**os.environ, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": converse_server.url}
    proc = subprocess.Popen(cmd + ["--summary-json", str(tmp_path / "s.json")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert converse_server.wait_in_flight(3), "the batch never had three images at the model"
    proc.send_signal(getattr(signal, name))
    # The answers are let through only once the batch says it heard the signal: a loaded machine may
    # run the handler late, and a thread freed meanwhile would start a fourth image.
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    heard = []
    for line in proc.stderr:
        heard.append(line)
        if "finishing the images already running" in line:
            break
    converse_server.release()
    out, rest = proc.communicate(timeout=120)
    watchdog.cancel()
    err = "".join(heard) + rest
    assert proc.returncode == 128 + getattr(signal, name) and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith(f"ocrlab batch: stopped by {name}; every image finished so far "
                                                   "is recorded (or spooled), and the same command run again goes on")
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["interrupted"] == name and summary["processed"] == summary["succeeded"] == 3
    assert summary["processed"] + summary["not_started"] == 12 and "9 not started" in out
    assert len(converse_server.requests) == 3                    # nothing started after the signal

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    results = sorted(r["ImageKey"] for r in store.records_by_type("OCR_RESULT"))
    assert results == [key_of(root / f"img-{i:02d}.png") for i in range(12)]   # every image once


def test_sigterm_to_a_local_engine_batch_leaves_no_process_behind(tmp_path, store):
    from ocrlab.samples.generate import generate_samples
    generate_samples(tmp_path / "s", count=8, seed=11)
    proc = subprocess.Popen([sys.executable, "-m", "ocrlab", "batch", str(tmp_path / "s"), "--table", store.table,
                             "--concurrency", "2", "--no-progress", "--summary-json", str(tmp_path / "s.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while sum(1 for _ in store.records_by_type("OCR_RESULT")) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)                                          # a gate: the first image recorded
    workers = children(proc.pid)
    assert workers, "the batch runs its engine in worker processes"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["interrupted"] == "SIGTERM" and summary["processed"] + summary["not_started"] == 8
    assert summary["processed"] == sum(1 for _ in store.records_by_type("OCR_RESULT")) + \
        sum(1 for _ in store.records_by_type("FAILED_IMAGE"))
    assert gone_within(workers, 5) == set()


def test_workers_end_with_a_parent_killed_outright(tmp_path, store):
    from ocrlab.samples.generate import generate_samples
    generate_samples(tmp_path / "s", count=6, seed=12)
    proc = subprocess.Popen([sys.executable, "-m", "ocrlab", "batch", str(tmp_path / "s"), "--table", store.table,
                             "--concurrency", "2", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = children(proc.pid)
    assert len(workers) >= 2
    proc.kill()
    proc.wait(timeout=10)
    assert gone_within(workers, 5) == set()       # no orphan holding its model's memory
