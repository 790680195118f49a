"""The store every caller holds: records go to the table when it answers, to the spool when it does not.

A `SpoolingStore` is built once, at the edge (a command, a notebook's first cell, the Lambda
handler, a batch worker), and passed down to the pipeline, the batch, the export panel and the
analysis functions. It owns the outage state, so a store that just failed is not paid for again
on every record: for `outage_seconds` records go straight to the spool. A record the store refuses
for its content goes to the dead-letter file and never holds the others up; a record that can be
neither stored nor spooled raises SpoolUnavailable, which the batch turns into a clear stop.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Callable, Iterable, Literal, cast

from ocrlab.config import settings
from ocrlab.domain import Record
from ocrlab.errors import RecordRejected, SpoolUnavailable, StoreUnavailable
from ocrlab.records import FAILED_IMAGE, OCR_RESULT, failure_item
from ocrlab.store.claims import Ticket, Unconfirmed
from ocrlab.store.dynamodb import Store, connect
from ocrlab.store.reads import Queries
from ocrlab.store.spool import ReplayReport, Spool
from ocrlab.version import OCRVersionInfo

log = logging.getLogger(__name__)

OUTAGE_SECONDS = 10.0


@dataclass(frozen=True)
class Written:
    """What became of a record given to SpoolingStore.write: `record` as completed (timestamp, id,
    numbers), and whether the table holds it, it waits in the spool for `ocrlab replay`, or the table
    refused it for its content (it is in the dead-letter file)."""

    record: Record
    outcome: Literal["stored", "spooled", "rejected"] = "stored"

    @property
    def spooled(self) -> bool:
        return self.outcome == "spooled"

    @property
    def rejected(self) -> bool:
        return self.outcome == "rejected"


class SpoolingStore(Queries):
    """A table's reads (inherited: straight to the table) and its writes, through the spool when the
    table does not answer; `writer` holds the claims (ocrlab.store.claims.holding)."""

    def __init__(self, store: Store, spool: Spool, *, outage_seconds: float = OUTAGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store.db)
        self.store = store  # the table's own Store: administration
        self.writer = store.writer
        self.spool = spool
        self.outage_seconds = outage_seconds
        self._clock = clock
        self._down_until = 0.0
        # How another process opens this same store (a picklable call): set by open_store for a store
        # whose client it made itself; None for one built around a given client.
        self.reopen: Callable[[], SpoolingStore] | None = None

    def write(self, item: Record, *, ticket: Ticket | None = None, count_given_attempt: bool = False) -> Written:
        """Write a record (completed in place with its timestamp, id and attempt number) or keep it.

        With a `ticket` the image's claim is released too: a failure is counted as the claim is
        released (the count is its AttemptNumber) and written after; a result is written first and
        released after, so a run that dies in between leaves a claim whose record the next run finds.
        Says what became of it (Written). Raises SpoolUnavailable, carrying the record, when it could
        be neither stored nor spooled.
        """
        failed = item["RecordType"] == FAILED_IMAGE
        if ticket is not None:
            item["RecordId"], item["Run"] = ticket.record_id, ticket.owner
            if ticket.sequence is not None:
                item["Sequence"] = Decimal(ticket.sequence)
            if failed:
                # an int, or None when the store is down (put_record numbers it then): not yet a stored Decimal
                cast(dict[str, Any], item)["AttemptNumber"] = self._release(item, ticket)
        written = self._write(item, count_given_attempt)
        if ticket is not None and written.outcome == "stored":
            if failed:  # written: the failure counted as the claim was let go is accounted for
                self._confirm(written.record)
            else:
                self._release(written.record, ticket)
        return written

    def _confirm(self, record: Record) -> None:
        try:
            self.writer.confirm(record["ImageKey"], record["OCRFullVersion"], record["RecordId"])
        except StoreUnavailable:
            pass  # the next plan finds the record written and confirms it then

    def _release(self, item: Record, ticket: Ticket) -> int | None:
        failed = item["RecordType"] == FAILED_IMAGE
        try:
            return self.writer.release(item["ImageKey"], item["OCRFullVersion"], ticket.owner,
                                       FAILED_IMAGE if failed else OCR_RESULT, count_failure=failed,
                                       record_id=item["RecordId"], timestamp=item["FailureTimestamp"],
                                       sequence=ticket.sequence, digest=item.get("ContentDigest") or ticket.digest)
        except StoreUnavailable:  # the claim lapses with its lease; the record is spooled or written
            return None

    def account_for(self, image_key: str, version: OCRVersionInfo, lost: Unconfirmed, before: int | None = None) -> bool:
        """Make sure a failure a gone run counted has its record: find it (stored, or in this host's
        spool), else write it as lost, under the key and number the run announced, so attempt numbers
        stay consecutive and the run's record, should it surface from another spool, is not doubled.
        `before` is the sequence of the run taking over (the lost record is ordered before its own).
        True when the record had to be written here."""
        if self.spool.holds(lost.record_id):
            return False  # waiting in this host's spool: its replay writes it with this number and confirms it
        written = any(r.get("RecordId") == lost.record_id
                      for r in self.image_records(image_key, FAILED_IMAGE, version.full_version))
        if not written:
            item = failure_item(image_key, "OCR_ERROR", f"attempt {lost.attempt} was counted, but the run that made "
                                "it stopped before writing its record (killed, or its host lost)", version,
                                {"error_code": "RunLost", "attempt_number": lost.attempt})
            item.update({"RecordId": lost.record_id, "FailureTimestamp": lost.timestamp or item["FailureTimestamp"]})
            # Where the lost run's record belongs among the image's records: its own claim's number, or
            # (a counter of an older ocrlab did not keep it) just before the claim of the run taking over,
            # else before every numbered record.
            sequence = lost.sequence if lost.sequence is not None else (before - 1 if before else 0)
            item["Sequence"] = Decimal(sequence)
            self._write(item, count_given_attempt=False)
        self.writer.confirm(image_key, version.full_version, lost.record_id)
        return not written

    def _write(self, item: Record, count_given_attempt: bool) -> Written:
        try:
            if self._clock() < self._down_until:
                self.spool.append(item, "store unavailable moments ago", count_given_attempt=count_given_attempt)
                return Written(item, "spooled")
            try:
                return Written(self.writer.put_record(item, count_given_attempt=count_given_attempt))
            except RecordRejected as exc:
                path = self.spool.reject(item, str(exc))
                log.warning("DynamoDB refused the record of %r; kept in %s: %s", item.get("ImageKey"), path, exc)
                return Written(item, "rejected")
            except StoreUnavailable as exc:
                self._down_until = self._clock() + self.outage_seconds
                path = self.spool.append(item, str(exc), count_given_attempt=count_given_attempt)
                log.warning("store unavailable, record of %r spooled to %s: %s", item.get("ImageKey"), path, exc)
                return Written(item, "spooled")
        except SpoolUnavailable as exc:
            exc.record = dict(item)
            raise

    def replay(self) -> ReplayReport:
        """Write what the spool holds; the outage is over if anything was written."""
        report = self.spool.replay(self.writer)
        if report.written:
            self._down_until = 0.0
        return report

    def settle(self, keys: Iterable[str], version: OCRVersionInfo, lease_seconds: float) -> dict[str, int]:
        """Each image's counter as it stands now (its Sequence: what a batch plans against), after
        accounting for every failure a run now gone counted under the version but never wrote."""
        seen = {}
        for key, sequence, lost in self.writer.counters(keys, version.full_version, lease_seconds):
            if lost is not None:
                self.account_for(key, version, lost)
            seen[key] = sequence
        return seen


def open_store(table: str | None = None, *, create: bool = True, client: Any = None,
               max_attempts: int | None = None, check: bool = True) -> SpoolingStore:
    """The store of a table (default: OCRLAB_TABLE or "ocrlab"), its spool under OCRLAB_HOME/spool.

    With no AWS configured that is the local dynalite, started on demand. Writers create a missing
    table (`create`); read paths pass create=False, so a mistyped name is an error, not a new table
    (`check=False` skips even that look: a deployed function whose stack made the table).
    """
    config = settings()
    name = table or config.table
    store = SpoolingStore(connect(name, create=create, client=client, max_attempts=max_attempts, check=check),
                          Spool(config.spool_dir, name))
    if client is None:
        store.reopen = partial(open_store, name, create=False, max_attempts=max_attempts, check=False)
    return store
