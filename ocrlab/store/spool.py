"""The local spool: records the store could not take, kept on disk until `ocrlab replay` writes them.

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
from typing import TYPE_CHECKING, Iterator

from ..domain import Record
from ..errors import StoreUnavailable
from .dynamodb import deserialize, serialize

if TYPE_CHECKING:
    from .dynamodb import Store


@dataclass
class ReplayReport:
    written: int = 0
    remaining: int = 0
    unreadable: int = 0
    error: str = ""


class Spool:
    """The spool file of one table: `<folder>/<table>.jsonl`."""

    def __init__(self, folder: Path, table: str) -> None:
        self.table = table
        self.path = Path(folder) / f"{table}.jsonl"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A separate lock file, so replay may replace the spool file itself atomically.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, item: Record, reason: str) -> Path:
        """Keep one record for later; durable when this returns."""
        line = json.dumps({"table": self.table, "reason": reason, "item": serialize(item)}, ensure_ascii=False)
        with self._locked(), open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return self.path

    def pending(self) -> int:
        if not self.path.exists():
            return 0
        with open(self.path, encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())

    def replay(self, store: Store) -> ReplayReport:
        """Write every spooled record into `store`; keep what still cannot be written.

        Safe to run twice or concurrently: records carry a RecordId, so one already written is not
        written again, and the spool is only rewritten under its lock.
        """
        report = ReplayReport()
        if not self.path.exists():
            return report
        with self._locked():
            lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
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
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as out:
                out.write("".join(f"{line}\n" for line in keep))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            report.remaining = len(keep)
        return report
