"""The local spool: records the store could not take, kept on disk until `ocrlab replay` writes them.

One JSON line per record in DynamoDB's wire format (so Decimals survive exactly), appended under
an exclusive lock and fsynced before the caller goes on: a record in the spool survives a crash.
A record DynamoDB refuses for its content goes to the dead-letter file `<table>.rejected.jsonl`
beside it, with the reason; so does a spool line that cannot be read. Neither ever blocks the
records behind it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, cast

from ocrlab.domain import Record
from ocrlab.errors import RecordRejected, SpoolUnavailable, StoreUnavailable
from ocrlab.records import FAILED_IMAGE, OCR_RESULT
from ocrlab.store.table import deserialize, serialize

if TYPE_CHECKING:
    from ocrlab.store.writes import Writer


@dataclass
class ReplayReport:
    written: int = 0
    waiting: int = 0      # still in the spool: the store is still unavailable
    rejected: int = 0     # moved to the dead-letter file by this replay
    error: str = ""


class Spool:
    """The spool file of one table, `<folder>/<table>.jsonl`, and its dead-letter file."""

    def __init__(self, folder: Path, table: str) -> None:
        self.table = table
        self.path = Path(folder) / f"{table}.jsonl"
        self.rejected_path = Path(folder) / f"{table}.rejected.jsonl"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A separate lock file, so replay may replace the spool file itself atomically.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_suffix(".lock"), "a")
        except OSError as exc:
            raise SpoolUnavailable(str(self.path), exc) from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _append(path: Path, lines: list[str]) -> None:
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("".join(line + "\n" for line in lines))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise SpoolUnavailable(str(path), exc) from exc

    def append(self, item: Record, reason: str, *, count_given_attempt: bool = False) -> Path:
        """Keep one record for later; durable when this returns, else SpoolUnavailable."""
        line = json.dumps({"table": self.table, "reason": reason, "count_given_attempt": count_given_attempt,
                           "item": serialize(dict(item))}, ensure_ascii=False)
        with self._locked():
            self._append(self.path, [line])
        return self.path

    def reject(self, item: Record, reason: str) -> Path:
        """Put a record DynamoDB refused into the dead-letter file, with why."""
        line = json.dumps({"table": self.table, "reason": reason, "item": serialize(dict(item))},
                          ensure_ascii=False, default=str)
        with self._locked():
            self._append(self.rejected_path, [line])
        return self.rejected_path

    def pending(self) -> int:
        return _count_lines(self.path)

    def holds(self, record_id: str) -> bool:
        """Whether a record with this RecordId waits in the spool."""
        return any(item.get("RecordId") == record_id for item in self._matching(record_id))

    def holds_result(self, image_key: str, version: str) -> bool:
        """Whether a result of the image under the version waits in the spool."""
        return any(item.get("ImageKey") == image_key and item.get("RecordType") == OCR_RESULT
                   and item.get("OCRFullVersion") == version for item in self._matching(image_key))

    def failures_of(self, image_key: str) -> int:
        """The failures of the image waiting here: the highest AttemptNumber among them, or their number."""
        waiting = [item for item in self._matching(image_key)
                   if item.get("ImageKey") == image_key and item.get("RecordType") == FAILED_IMAGE]
        return max([len(waiting), *(int(item.get("AttemptNumber") or 0) for item in waiting)])

    def _matching(self, text: str) -> Iterator[dict[str, Any]]:
        """The spooled items whose line holds `text` (as a JSON string); unreadable lines are passed over."""
        needle = json.dumps(text, ensure_ascii=False).encode()
        try:
            with open(self.path, "rb") as handle:
                for line in handle:
                    if needle in line:
                        try:
                            yield deserialize(json.loads(line)["item"])
                        except (ValueError, KeyError, TypeError):
                            continue
        except FileNotFoundError:
            return

    def rejected(self) -> int:
        return _count_lines(self.rejected_path)

    def replay(self, writer: Writer) -> ReplayReport:
        """Write every spooled record through `writer`; keep what still cannot be written.

        Exactly once, even when interrupted: every line carries its RecordId (a record found written
        is not written or numbered again), the lines handled so far are noted durably as they go
        (`<table>.replaying`), so a replay killed at any line and run again goes on after it, and the
        spool is rewritten only at the end, under its lock. A line that cannot be read (even one that
        is not UTF-8) or a record the store refuses moves to the dead-letter file at once; the first
        outage stops the writing and keeps the rest for the next replay.
        """
        report = ReplayReport()
        if not self.path.exists():
            return report
        with self._locked():
            inode = self.path.stat().st_ino
            lines = [raw for raw in self.path.read_bytes().splitlines() if raw.strip()]
            done = self._progress.read(inode)
            keep: list[str] = []
            with self._progress.writer(inode) as note:
                noted = True
                for number, raw in enumerate(lines):
                    if number < done:
                        continue
                    if report.error:
                        keep.append(raw.decode("utf-8", "surrogateescape"))
                        continue
                    # The first line after an interrupted replay may have been written; without notes, any may.
                    unsure = (number == done and done > 0) or not noted
                    line = self._replay_line(writer, raw, report, unsure)
                    if line is not None:
                        keep.append(line)
                    noted = note(number + 1)
            report.waiting = len(keep)
            try:  # the progress goes first: a kill between the two only makes the next replay check again
                self._progress.clear()
                tmp = self.path.with_suffix(".tmp")
                with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as out:
                    out.write("".join(f"{line}\n" for line in keep))
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except OSError as exc:  # the written records are idempotent: the next replay skips them
                raise SpoolUnavailable(str(self.path), exc) from exc
        return report

    def _replay_line(self, writer: Writer, raw: bytes, report: ReplayReport, unsure: bool) -> str | None:
        """Write one line's record; the line when it must stay in the spool, else None."""
        try:
            line = raw.decode("utf-8")
            entry = json.loads(line)
            item, count = cast(Record, deserialize(entry["item"])), bool(entry.get("count_given_attempt"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._dead(json.dumps({"table": self.table, "reason": f"unreadable spool line: {exc}",
                                   "line": raw.decode("utf-8", "backslashreplace")}, ensure_ascii=False), report)
            return None
        try:
            if _superseded(writer, item):
                self._dead(json.dumps({**entry, "reason": "superseded: the image already has a result under this "
                                       "version"}, ensure_ascii=False), report)
                return None
            # A line of an older ocrlab may lack its id: one derived from the line is as stable as the line.
            item.setdefault("RecordId", hashlib.blake2b(raw, digest_size=16).hexdigest())
            writer.put_record(item, count_given_attempt=count, replay=unsure)
            report.written += 1
            _settle_late_write(writer, item)
        except RecordRejected as exc:
            self._dead(json.dumps({**entry, "reason": str(exc)}, ensure_ascii=False), report)
        except StoreUnavailable as exc:
            report.error = str(exc)
            return line
        return None

    def _dead(self, line: str, report: ReplayReport) -> None:
        self._append(self.rejected_path, [line])
        report.rejected += 1

    @property
    def _progress(self) -> ReplayProgress:
        return ReplayProgress(self.path.with_suffix(".replaying"))


class ReplayProgress:
    """How many lines of the spool file (known by its inode) a replay has handled, kept durably."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, inode: int) -> int:
        try:
            kept_inode, lines = self.path.read_text().split()
            return int(lines) if int(kept_inode) == inode else 0
        except (OSError, ValueError):
            return 0

    @contextmanager
    def writer(self, inode: int) -> Iterator[Callable[[int], bool]]:
        """A function noting the lines handled, on disk before the next line is written; False when the
        note could not be kept (a full disk: the replay goes on, checking each record before writing it)."""
        try:
            fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError:
            fd = None

        def note(lines: int) -> bool:
            if fd is None:
                return False
            try:
                os.pwrite(fd, f"{inode} {lines:015d}\n".encode(), 0)
                os.fdatasync(fd)
                return True
            except OSError:
                return False
        try:
            yield note
        finally:
            if fd is not None:
                os.close(fd)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _settle_late_write(writer: Writer, item: Record) -> None:
    """A result written late lets go of its image (the run that spooled it kept the claim); a failure
    written late is confirmed (its run counted it as it let go of the claim)."""
    if not item.get("Run"):
        return
    sequence = item.get("Sequence")
    try:
        if item.get("RecordType") == OCR_RESULT:
            writer.release(item["ImageKey"], str(item["OCRFullVersion"]), str(item["Run"]), OCR_RESULT,
                          count_failure=False, sequence=int(sequence) if sequence is not None else None,
                          digest=item.get("ContentDigest"))
        else:
            writer.confirm(item["ImageKey"], str(item["OCRFullVersion"]), item["RecordId"])
    except StoreUnavailable:
        pass  # the record is written: the claim lapses with its lease, the next plan confirms the failure


def _superseded(writer: Writer, item: Record) -> bool:
    """A spooled result of an image that got another result meanwhile (another run did it while the
    store was down for this one): writing it would give the image two results."""
    if item.get("RecordType") != OCR_RESULT:
        return False
    return any(r.get("RecordId") != item.get("RecordId")
               for r in writer.reads.image_records(item["ImageKey"], OCR_RESULT, item.get("OCRFullVersion")))


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except FileNotFoundError:
        return 0
