"""The local spool: records DynamoDB could not take, kept on disk until `ocrlab replay` writes them.

One JSON line per record in DynamoDB's wire format (so Decimals survive exactly), appended under
an exclusive lock and fsynced before the caller goes on: a record in the spool survives a crash.
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from . import config
from .errors import StoreUnavailable
from .store import Store, deserialize, serialize


def spool_path(table: str) -> Path:
    return config.spool_dir() / f"{table}.jsonl"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # A separate lock file, so replay may replace the spool file itself atomically.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append(table: str, item: dict[str, Any], reason: str) -> Path:
    """Keep one record for later; durable when this returns."""
    path = spool_path(table)
    line = json.dumps({"table": table, "reason": reason, "item": serialize(item)}, ensure_ascii=False)
    with _locked(path), open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def pending(table: str) -> int:
    path = spool_path(table)
    if not path.exists():
        return 0
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


@dataclass
class ReplayReport:
    written: int = 0
    remaining: int = 0
    unreadable: int = 0
    error: str = ""


def replay(store: Store) -> ReplayReport:
    """Write every spooled record of the store's table; keep what still cannot be written.

    Safe to run twice or concurrently: records carry a RecordId, so one already written is not
    written again, and the spool is only rewritten under its lock.
    """
    report = ReplayReport()
    path = spool_path(store.table)
    if not path.exists():
        return report
    with _locked(path):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        keep: list[str] = []
        for line in lines:
            try:
                item = deserialize(json.loads(line)["item"])
            except (ValueError, KeyError, TypeError):
                report.unreadable += 1
                keep.append(line)  # never drop what we cannot read; a person should look at it
                continue
            if report.error:
                keep.append(line)
                continue
            try:
                store.put_record(item)
                report.written += 1
            except StoreUnavailable as exc:
                report.error = str(exc)
                keep.append(line)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in keep))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        report.remaining = len(keep)
    return report
