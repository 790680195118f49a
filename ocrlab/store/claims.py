"""Who holds an image: claims, so that every image runs once per version across threads, worker
processes, concurrent batches, Dask workers and duplicate Lambda events.

A claim names its owner (host, boot, process namespace, process id and the process's start time,
plus a run id) and a lease. Another run may take a claim over when the lease has expired or, on the
same host and boot and in the same process namespace, as soon as the owner's process is gone (a batch
killed with SIGKILL), so a re-run need not wait for the lease. A granted claim also hands out the
image's next `Sequence`, which orders its records whatever each writer's clock says.
"""
from __future__ import annotations

import functools
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NamedTuple

from ocrlab.errors import StoreUnavailable
from ocrlab.records import OCR_RESULT, new_record_id, storage_key

if TYPE_CHECKING:
    from ocrlab.store.spooling import SpoolingStore
    from ocrlab.version import OCRVersionInfo

DEFAULT_LEASE_SECONDS = 900.0  # longer than one image can take: Bedrock's read timeout times its retries


@dataclass(frozen=True)
class Ticket:
    """What a run that holds a claim writes its record with: the claim's owner, the record id it
    announced (so a run taking over can tell whether the record got written), the sequence the claim
    handed out (None: the store numbers the record when it is written) and the content it read."""

    owner: str
    record_id: str
    sequence: int | None = None
    digest: str | None = None


@dataclass(frozen=True)
class Unconfirmed:
    """A failure the last run counted but may not have written (it died between the two): the record
    it announced, under which key, with which attempt number."""

    record_id: str
    timestamp: str
    attempt: int
    sequence: int | None = None


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: `granted`, else `reason` says why not. `previous_record` is the record
    id a dead or expired owner meant to write (the taker checks whether it got written);
    `unconfirmed`, a failure of a run now gone whose record the taker must find or account for;
    `sequence`, the number the run's record carries; `previous_digest`, the content the image's last
    run under the version read, when this run reads other content (a new revision)."""

    granted: bool
    reason: str = ""
    previous_record: str | None = None
    unconfirmed: Unconfirmed | None = None
    sequence: int | None = None
    previous_digest: str | None = None


def _process_start(pid: int) -> str:
    try:  # field 22 of /proc/PID/stat: start time in clock ticks since boot (tells a reused pid apart)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


@functools.cache  # a process lives within one boot; read for every claim otherwise
def _boot() -> str:
    """This boot of this machine's kernel (start times in ticks, and monotonic clocks, mean nothing
    across a reboot); "?" where it cannot be told."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "?"


@functools.cache
def _pid_namespace() -> str:
    """The process namespace: a pid seen from another container is not a pid of ours."""
    try:
        return os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return "?"


# Runs of this process that have ended: their claims are free at once (a notebook runs batch after batch).
_ended: set[str] = set()


def end_run(owner: str) -> None:
    """Mark a run of this process as over: what it still holds (records it could only spool) is free."""
    _ended.add(owner)


def new_owner() -> str:
    """An owner id for one run: host, boot, process namespace, pid, the process's start time, a run id."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{_boot()}:{_pid_namespace()}:{pid}:{_process_start(pid)}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str) -> bool:
    """True when the owner ran on this host, boot and process namespace and its process no longer
    exists (or is another one), or it is a run of this process that has ended. Elsewhere only the
    lease tells (an owner of an older ocrlab, host:pid:start:run, is judged by host alone)."""
    if owner in _ended:
        return True
    parts = owner.split(":")
    if len(parts) == 6:
        host, boot, namespace, pid, started, _ = parts
        if boot != _boot() or namespace != _pid_namespace():
            return False
    elif len(parts) == 4:
        host, pid, started, _ = parts
    else:
        return False
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if not Path(f"/proc/{pid}").exists():
        return True
    return started != "?" and _process_start(int(pid)) != started


class Moment(NamedTuple):
    """A moment by the kernel's monotonic clock, which no setting of the wall clock moves, and which
    every process (and container) on one kernel shares: runs of one machine compare by it exactly."""

    boot: str
    clock: float

    @classmethod
    def now(cls) -> Moment:
        return cls(_boot(), time.monotonic())


def lease_end(seconds: float) -> int:
    return int(time.time() + seconds)


@dataclass(frozen=True)
class Held:
    """A granted claim: the Ticket the image's record is written with, and the content the image's
    last run read when this run reads other content (a new revision)."""

    ticket: Ticket
    previous_digest: str | None = None


@dataclass(frozen=True)
class Refused:
    """No claim: why, and whether the image is worth trying again later (another run holds it, or
    the store could not answer) rather than done already."""

    reason: str
    later: bool = False


@contextmanager
def holding(store: SpoolingStore, image_key: str, version: OCRVersionInfo, owner: str,
            lease_seconds: float = DEFAULT_LEASE_SECONDS, *, force: bool = False, began: Moment | None = None,
            seen: int | None = None, since: float | None = None,
            digest: str | None = None) -> Iterator[Held | Refused]:
    """The claim protocol every runner follows (the batch, its worker processes and Dask workers, the
    Lambda handler): claim the image; account for a failure a run now gone counted but may not have
    written; when the claim was taken from a run that died, check whether that run wrote the image's
    result already (then there is nothing to do). Inside, the holder writes its record with the
    Ticket (which lets go of the claim); if it raises first, the claim is let go unused so that the
    next run need not wait for the lease. The conditions (`force`, `began`, `seen`, `since`,
    `digest`) are Writer.claim's."""
    key, full = storage_key(image_key), version.full_version
    record_id = new_record_id()
    try:
        claim = store.writer.claim(key, full, owner, record_id, lease_seconds, since, force, began=began,
                                   seen=seen, digest=digest)
        if not claim.granted:
            answer: Held | Refused = Refused(claim.reason, later=claim.reason == "claimed by another run")
        else:
            if claim.unconfirmed:  # a failure a killed run counted: its record, found or written as lost
                store.account_for(key, version, claim.unconfirmed, claim.sequence)
            if claim.previous_record and has_result(store, key, full, digest):
                # A run that died after writing this image's result and before letting go of it (or
                # after spooling it: a chain of killed runs may hold the image in turn).
                store.writer.release(key, full, owner, OCR_RESULT, count_failure=False, sequence=claim.sequence,
                                     digest=digest)
                answer = Refused("already succeeded")
            else:
                answer = Held(Ticket(owner, record_id, claim.sequence, digest), claim.previous_digest)
    except StoreUnavailable:  # unclaimed, running it could run it twice: leave it for later
        answer = Refused("not claimed: the store was unavailable", later=True)
    try:
        yield answer
    except BaseException:
        if isinstance(answer, Held):
            store.writer.let_go(key, full, owner)
        raise


def has_result(store: SpoolingStore, key: str, version: str, digest: str | None) -> bool:
    """Whether the image has a result of this content under the version: stored, or waiting in this
    host's spool (a result that says no content counts: it was written before records did)."""
    return (any(r.get("ContentDigest") in (None, digest) for r in store.image_records(key, OCR_RESULT, version))
            or store.spool.holds_result(key, version))
