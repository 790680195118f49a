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
from collections import Counter
from decimal import Decimal
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, cast

from ocrlab.config import settings
from ocrlab.domain import LatestSummary, Record
from ocrlab.errors import RecordRejected, SpoolUnavailable, StoreUnavailable
from ocrlab.records import FAILED_IMAGE, OCR_RESULT, failure_item
from ocrlab.store.claims import Claim, Moment, Ticket, Unconfirmed
from ocrlab.store.queries import Cursor, FailurePage, FailureQuery
from ocrlab.store.spool import ReplayReport, Spool
from ocrlab.version import OCRVersionInfo

log = logging.getLogger(__name__)

OUTAGE_SECONDS = 10.0


class RecordStore(Protocol):
    """What the toolkit asks of a store (ocrlab.store.dynamodb.Store is the real one)."""

    table: str
    description: str

    def put_record(self, item: Record, *, count_given_attempt: bool = False, replay: bool = False) -> Record: ...
    def claim(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
              since: float | None = None, force: bool = False, *, began: Moment | None = None,
              seen: int | None = None, digest: str | None = None) -> Claim: ...
    def release(self, image_key: str, version: str, owner: str, record_type: str, count_failure: bool,
                record_id: str = "", timestamp: str = "", *, sequence: int | None = None,
                digest: str | None = None) -> int | None: ...
    def confirm(self, image_key: str, version: str, record_id: str) -> None: ...
    def let_go(self, image_key: str, version: str, owner: str) -> None: ...
    def counters(self, keys: Iterable[str], version: str, lease_seconds: float
                 ) -> Iterator[tuple[str, int, Unconfirmed | None]]: ...
    def get(self, image_key: str, timestamp: str) -> Record | None: ...
    def attempt_count(self, image_key: str) -> int: ...
    def records_by_type(self, record_type: str = FAILED_IMAGE, since: str | None = None,
                        until: str | None = None, newest_first: bool = False,
                        attributes: Sequence[str] | None = None) -> Iterator[Record]: ...
    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[Record]: ...
    def version_records(self, ocr_version: str, record_type: str | None = None,
                        attributes: Sequence[str] | None = None) -> Iterator[Record]: ...
    def records_by_key(self, keys: Iterable[tuple[str, str]],
                       attributes: Sequence[str] | None = None) -> Iterator[Record]: ...
    def latest_summary(self, ocr_version: str) -> Iterator[LatestSummary]: ...
    def latest_outcomes(self, ocr_version: str) -> Iterator[Record]: ...
    def image_latest(self, image_key: str) -> Iterator[Record]: ...
    def failures_page(self, query: FailureQuery, limit: int = 50, cursor: Cursor | None = None,
                      budget: int = ...) -> FailurePage: ...
    def failure_counts(self, ocr_version: str) -> Counter[str]: ...
    def versions(self) -> list[str]: ...


class SpoolingStore:
    """A RecordStore plus its spool and its outage state. Reads go straight to the store."""

    def __init__(self, store: RecordStore, spool: Spool, *, outage_seconds: float = OUTAGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.spool = spool
        self.outage_seconds = outage_seconds
        self._clock = clock
        self._down_until = 0.0
        # How another process opens this same store (a picklable call): set by open_store for a store
        # whose client it made itself; None for one built around a given client.
        self.reopen: Callable[[], SpoolingStore] | None = None

    @property
    def table(self) -> str:
        return self.store.table

    @property
    def description(self) -> str:
        return self.store.description

    def write(self, item: Record, *, ticket: Ticket | None = None, count_given_attempt: bool = False) -> Record:
        """Write a record (completed in place with its timestamp, id and attempt number) or keep it.

        With a `ticket` the image's claim is released too: a failure is counted as the claim is
        released (the count is its AttemptNumber) and written after; a result is written first and
        released after, so a run that dies in between leaves a claim whose record the next run finds.
        Returns the record; `Spooled: True` marks one that waits in the spool for `ocrlab replay`,
        `Rejected: True` one the store refused for its content (now in the dead-letter file).
        Raises SpoolUnavailable, carrying the record, when it could be neither stored nor spooled.
        """
        failed = item["RecordType"] == FAILED_IMAGE
        if ticket is not None:
            item["RecordId"], item["Run"] = ticket.record_id, ticket.owner
            if ticket.sequence is not None:
                item["Sequence"] = Decimal(ticket.sequence)
            if failed:
                # an int, or None when the store is down (put_record numbers it then): not yet a stored Decimal
                cast(dict[str, Any], item)["AttemptNumber"] = self._release(item, ticket)
        record = self._write(item, count_given_attempt)
        if ticket is not None and not record.get("Spooled") and not record.get("Rejected"):
            if failed:  # written: the failure counted as the claim was let go is accounted for
                self._confirm(record)
            else:
                self._release(record, ticket)
        return record

    def _confirm(self, record: Record) -> None:
        try:
            self.store.confirm(record["ImageKey"], record["OCRFullVersion"], record["RecordId"])
        except StoreUnavailable:
            pass  # the next plan finds the record written and confirms it then

    def _release(self, item: Record, ticket: Ticket) -> int | None:
        failed = item["RecordType"] == FAILED_IMAGE
        try:
            return self.store.release(item["ImageKey"], item["OCRFullVersion"], ticket.owner,
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
                      for r in self.store.image_records(image_key, FAILED_IMAGE, version.full_version))
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
        self.store.confirm(image_key, version.full_version, lost.record_id)
        return not written

    def _write(self, item: Record, count_given_attempt: bool) -> Record:
        try:
            if self._clock() < self._down_until:
                self.spool.append(item, "store unavailable moments ago", count_given_attempt=count_given_attempt)
                return {**item, "Spooled": True}
            try:
                return self.store.put_record(item, count_given_attempt=count_given_attempt)
            except RecordRejected as exc:
                path = self.spool.reject(item, str(exc))
                log.warning("DynamoDB refused the record of %r; kept in %s: %s", item.get("ImageKey"), path, exc)
                return {**item, "Rejected": True}
            except StoreUnavailable as exc:
                self._down_until = self._clock() + self.outage_seconds
                path = self.spool.append(item, str(exc), count_given_attempt=count_given_attempt)
                log.warning("store unavailable, record of %r spooled to %s: %s", item.get("ImageKey"), path, exc)
                return {**item, "Spooled": True}
        except SpoolUnavailable as exc:
            exc.record = dict(item)
            raise

    def replay(self) -> ReplayReport:
        """Write what the spool holds; the outage is over if anything was written."""
        report = self.spool.replay(self.store)
        if report.written:
            self._down_until = 0.0
        return report

    # -- claims and reads: straight to the store -----------------------------------------------
    def claim(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
              since: float | None = None, force: bool = False, *, began: Moment | None = None,
              seen: int | None = None, digest: str | None = None) -> Claim:
        return self.store.claim(image_key, version, owner, record_id, lease_seconds, since, force, began=began,
                                seen=seen, digest=digest)

    def release(self, image_key: str, version: str, owner: str, record_type: str, count_failure: bool,
                record_id: str = "", timestamp: str = "", *, sequence: int | None = None,
                digest: str | None = None) -> int | None:
        return self.store.release(image_key, version, owner, record_type, count_failure, record_id, timestamp,
                                  sequence=sequence, digest=digest)

    def let_go(self, image_key: str, version: str, owner: str) -> None:
        self.store.let_go(image_key, version, owner)

    def settle(self, keys: Iterable[str], version: OCRVersionInfo, lease_seconds: float) -> dict[str, int]:
        """Each image's counter as it stands now (its Sequence: what a batch plans against), after
        accounting for every failure a run now gone counted under the version but never wrote."""
        seen = {}
        for key, sequence, lost in self.store.counters(keys, version.full_version, lease_seconds):
            if lost is not None:
                self.account_for(key, version, lost)
            seen[key] = sequence
        return seen

    def confirm(self, image_key: str, version: str, record_id: str) -> None:
        self.store.confirm(image_key, version, record_id)

    def get(self, image_key: str, timestamp: str) -> Record | None:
        return self.store.get(image_key, timestamp)

    def attempt_count(self, image_key: str) -> int:
        return self.store.attempt_count(image_key)

    def records_by_type(self, record_type: str = FAILED_IMAGE, since: str | None = None,
                        until: str | None = None, newest_first: bool = False,
                        attributes: Sequence[str] | None = None) -> Iterator[Record]:
        return self.store.records_by_type(record_type, since, until, newest_first, attributes)

    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[Record]:
        return self.store.image_records(image_key, record_type, ocr_version)

    def version_records(self, ocr_version: str, record_type: str | None = None,
                        attributes: Sequence[str] | None = None) -> Iterator[Record]:
        return self.store.version_records(ocr_version, record_type, attributes)

    def records_by_key(self, keys: Iterable[tuple[str, str]],
                       attributes: Sequence[str] | None = None) -> Iterator[Record]:
        return self.store.records_by_key(keys, attributes)

    def latest_summary(self, ocr_version: str) -> Iterator[LatestSummary]:
        return self.store.latest_summary(ocr_version)

    def latest_outcomes(self, ocr_version: str) -> Iterator[Record]:
        return self.store.latest_outcomes(ocr_version)

    def image_latest(self, image_key: str) -> Iterator[Record]:
        return self.store.image_latest(image_key)

    def failures_page(self, query: FailureQuery, limit: int = 50, cursor: Cursor | None = None,
                      budget: int | None = None) -> FailurePage:
        return self.store.failures_page(query, limit, cursor, *([budget] if budget else []))

    def failure_counts(self, ocr_version: str) -> Counter[str]:
        return self.store.failure_counts(ocr_version)

    def versions(self) -> list[str]:
        return self.store.versions()


def open_store(table: str | None = None, *, create: bool = True, client: Any = None,
               max_attempts: int | None = None, check: bool = True) -> SpoolingStore:
    """The store of a table (default: OCRLAB_TABLE or "ocrlab"), its spool under OCRLAB_HOME/spool.

    With no AWS configured that is the local dynalite, started on demand. Writers create a missing
    table (`create`); read paths pass create=False, so a mistyped name is an error, not a new table
    (`check=False` skips even that look: a deployed function whose stack made the table).
    """
    from ocrlab.store.dynamodb import connect
    config = settings()
    name = table or config.table
    store = SpoolingStore(connect(name, create=create, client=client, max_attempts=max_attempts, check=check),
                          Spool(config.spool_dir, name))
    if client is None:
        store.reopen = partial(open_store, name, create=False, max_attempts=max_attempts, check=False)
    return store
