"""The store every caller holds: records go to the table when it answers, to the spool when it does not.

A `SpoolingStore` is built once, at the edge (a command, a notebook's first cell, the Lambda
handler, a batch worker), and passed down to the pipeline, the batch, the export panel and the
analysis functions. It owns the outage state, so a store that just failed is not paid for again
on every record: for `outage_seconds` records go straight to the spool.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, Callable, Iterator, Protocol, TextIO

from ..domain import Record
from ..config import settings
from ..errors import StoreUnavailable
from ..records import FAILED_IMAGE
from .queries import Cursor, FailurePage, FailureQuery
from .spool import ReplayReport, Spool

OUTAGE_SECONDS = 10.0


class RecordStore(Protocol):
    """What the toolkit asks of a store (ocrlab.store.dynamodb.Store is the real one)."""

    table: str
    description: str

    def put_record(self, item: Record) -> Record: ...
    def update_latest(self, record: Record) -> bool: ...
    def get(self, image_key: str, timestamp: str) -> Record | None: ...
    def attempt_count(self, image_key: str) -> int: ...
    def records_by_type(self, record_type: str = FAILED_IMAGE, since: str | None = None,
                        until: str | None = None, newest_first: bool = False) -> Iterator[Record]: ...
    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[Record]: ...
    def version_records(self, ocr_version: str, record_type: str | None = None) -> Iterator[Record]: ...
    def latest_outcomes(self, ocr_version: str) -> Iterator[Record]: ...
    def image_latest(self, image_key: str) -> Iterator[Record]: ...
    def failures_page(self, query: FailureQuery, limit: int = 50, cursor: Cursor | None = None,
                      budget: int = ...) -> FailurePage: ...
    def failure_counts(self, ocr_version: str) -> Counter[str]: ...
    def versions(self) -> list[str]: ...


class SpoolingStore:
    """A RecordStore plus its spool and its outage state. Reads go straight to the store."""

    def __init__(self, store: RecordStore, spool: Spool, *, outage_seconds: float = OUTAGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, log: TextIO | None = None) -> None:
        self.store = store
        self.spool = spool
        self.outage_seconds = outage_seconds
        self._clock = clock
        self._log = log
        self._down_until = 0.0

    @property
    def table(self) -> str:
        return self.store.table

    @property
    def description(self) -> str:
        return self.store.description

    def write(self, item: Record) -> Record:
        """Write a record (completed in place with its timestamp, id and attempt number) or spool it.

        Returns the record; `Spooled: True` marks one that waits in the spool for `ocrlab replay`.
        """
        if self._clock() < self._down_until:
            self.spool.append(item, "store unavailable moments ago")
            return {**item, "Spooled": True}
        try:
            return self.store.put_record(item)
        except StoreUnavailable as exc:
            self._down_until = self._clock() + self.outage_seconds
            path = self.spool.append(item, str(exc))
            print(f"ocrlab: store unavailable, record of {item.get('ImageKey')!r} spooled to {path} "
                  f"(run `ocrlab replay` later): {exc}", file=self._log or sys.stderr)
            return {**item, "Spooled": True}

    def replay(self) -> ReplayReport:
        """Write what the spool holds; the outage is over if anything was written."""
        report = self.spool.replay(self.store)
        if report.written:
            self._down_until = 0.0
        return report

    # -- reads: straight to the store -----------------------------------------------------------
    def update_latest(self, record: Record) -> bool:
        return self.store.update_latest(record)

    def get(self, image_key: str, timestamp: str) -> Record | None:
        return self.store.get(image_key, timestamp)

    def attempt_count(self, image_key: str) -> int:
        return self.store.attempt_count(image_key)

    def records_by_type(self, record_type: str = FAILED_IMAGE, since: str | None = None,
                        until: str | None = None, newest_first: bool = False) -> Iterator[Record]:
        return self.store.records_by_type(record_type, since, until, newest_first)

    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[Record]:
        return self.store.image_records(image_key, record_type, ocr_version)

    def version_records(self, ocr_version: str, record_type: str | None = None) -> Iterator[Record]:
        return self.store.version_records(ocr_version, record_type)

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
               max_attempts: int | None = None) -> SpoolingStore:
    """The store of a table (default: OCRLAB_TABLE or "ocrlab"), its spool under OCRLAB_HOME/spool.

    With no AWS configured that is the local dynalite, started on demand.
    """
    from .dynamodb import connect
    config = settings()
    name = table or config.table
    return SpoolingStore(connect(name, create=create, client=client, max_attempts=max_attempts),
                         Spool(config.spool_dir, name))
