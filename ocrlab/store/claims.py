"""Who holds an image: claims, so that every image runs once per version across threads, worker
processes, concurrent batches, Dask workers and duplicate Lambda events.

A claim names its owner (host, process and the process's start time, plus a run id) and a lease.
Another run may take a claim over when the lease has expired or, on the same host, as soon as the
owner's process is gone (a batch killed with SIGKILL), so a re-run need not wait for the lease.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LEASE_SECONDS = 900.0  # longer than one image can take: Bedrock's read timeout times its retries


@dataclass(frozen=True)
class Ticket:
    """What a run that holds a claim writes its record with: the claim's owner and the record id
    it announced (so a run taking over can tell whether the record got written)."""

    owner: str
    record_id: str


@dataclass(frozen=True)
class Unconfirmed:
    """A failure the last run counted but may not have written (it died between the two): the record
    it announced, under which key, with which attempt number."""

    record_id: str
    timestamp: str
    attempt: int


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: `granted`, else `reason` says why not. `previous_record` is the record
    id a dead or expired owner meant to write (the taker checks whether it got written);
    `unconfirmed`, a failure of a run now gone whose record the taker must find or account for."""

    granted: bool
    reason: str = ""
    previous_record: str | None = None
    unconfirmed: Unconfirmed | None = None


def _process_start(pid: int) -> str:
    try:  # field 22 of /proc/PID/stat: start time in clock ticks since boot (tells a reused pid apart)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


# Runs of this process that have ended: their claims are free at once (a notebook runs batch after batch).
_ended: set[str] = set()


def end_run(owner: str) -> None:
    """Mark a run of this process as over: what it still holds (records it could only spool) is free."""
    _ended.add(owner)


def new_owner() -> str:
    """An owner id for one run: host, pid, the process's start time and a random part."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str) -> bool:
    """True when the owner ran on this host and its process no longer exists (or is another one), or
    it is a run of this process that has ended."""
    if owner in _ended:
        return True
    try:
        host, pid, started, _ = owner.split(":")
    except ValueError:
        return False
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if not Path(f"/proc/{pid}").exists():
        return True
    return started != "?" and _process_start(int(pid)) != started


def process_started() -> float:
    """When this process started (epoch seconds): for a command, the moment the user asked for the run."""
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + float(_process_start(os.getpid())) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError):
        return time.time()


def lease_end(seconds: float) -> int:
    return int(time.time() + seconds)
