"""The original failure logger's functions, with the same names and meanings, over a SpoolingStore.

Each function takes a table name or an open SpoolingStore. A name is resolved to its store once
per process (boto3 clients are thread safe; a forked child needs its own). A record DynamoDB
cannot take after retries goes to the local spool, and `ocrlab replay` writes it later.

`log_failed_image` is called from inside callers' `except` blocks, so it never raises for a
problem of its own: a version file it cannot read, a store it cannot reach, a spool it cannot
write. It records what it has, spools if it must, and warns once (the `ocrlab` logger).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Sequence

from ocrlab.config import settings
from ocrlab.domain import Record
from ocrlab.errors import OcrlabError
from ocrlab.records import FAILED_IMAGE, failure_item, utc_since
from ocrlab.store.export import write_csv
from ocrlab.store.spool import Spool
from ocrlab.store.spooling import SpoolingStore, open_store
from ocrlab.store.stats import failure_statistics
from ocrlab.version import OCRVersionInfo, full_versions, version_from

TableLike = str | SpoolingStore
_opened: dict[tuple[str, int], SpoolingStore] = {}
_opened_lock = threading.Lock()
_warned: set[str] = set()
log = logging.getLogger(__name__)


def store_for(table: TableLike, *, write: bool = False) -> SpoolingStore:
    """The store of a table name, opened once per process; a store is returned as it is.

    Reads of a table that does not exist are an error; the first write creates it."""
    if isinstance(table, SpoolingStore):
        return table
    key = (table, os.getpid())
    with _opened_lock:
        if key not in _opened:
            _opened[key] = open_store(table, create=write)
        return _opened[key]


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _version(ocr_version: OCRVersionInfo | str | os.PathLike[str] | None) -> OCRVersionInfo:
    """The stamp to log under; a version that cannot be read is logged as "unknown", with a warning."""
    try:
        return version_from(ocr_version)
    except OcrlabError as exc:
        _warn_once(f"failures are logged under version 'unknown': {exc}")
        return OCRVersionInfo("unknown", "", f"version not readable: {exc}")


def log_failed_image(table_name: TableLike, image_key: str, failure_type: str, error_message: str,
                     ocr_version: OCRVersionInfo | str | None = None,
                     error_details: Mapping[str, Any] | None = None) -> Record:
    """Log one failure with every detail known; returns the record as written, marked `Spooled: True`
    when it waits in the spool and `Rejected: True` when the store refused it (the original logger's
    callers get a record back; ocrlab's own code reads SpoolingStore.write's Written instead).

    `error_details` takes the original keys (error_code, processing_time, stack_trace, s3_bucket,
    s3_region, attempt_number, cloudwatch_log_stream, raw_ocr_output, model_id, input_tokens,
    output_tokens, validation_errors, image_size); other keys are kept as extra attributes.
    `ocr_version` is an OCRVersionInfo, a version file, or a version string such as "2.0.0" (with
    the rest of the stamp from OCR_VERSION.txt when its version matches). AttemptNumber is assigned
    by the store (1 + failures already logged for the image); one given as `attempt_number` is kept
    and still counts, so `get_attempt_count` keeps up with callers that number attempts themselves.
    """
    item = failure_item(image_key, failure_type, error_message, _version(ocr_version), error_details)
    counted = bool(error_details and error_details.get("attempt_number") is not None)
    try:
        written = store_for(table_name, write=True).write(item, count_given_attempt=counted)
        if written.spooled:
            return {**written.record, "Spooled": True}
        if written.rejected:
            return {**written.record, "Rejected": True}
        return written.record
    except OcrlabError as exc:  # no store could be opened, or neither it nor the spool took the record
        table = table_name.table if isinstance(table_name, SpoolingStore) else str(table_name)
        try:
            path = Spool(settings().spool_dir, table).append(item, str(exc), count_given_attempt=counted)
            _warn_once(f"the store of {table!r} cannot be used ({exc}); failures are spooled to {path}")
            return {**item, "Spooled": True}
        except OcrlabError as spool_error:
            _warn_once(f"failure of {image_key!r} could not be logged nor spooled: {spool_error}")
            return {**item, "Unwritten": True}


def get_attempt_count(table_name: TableLike, image_key: str) -> int:
    """How many failures have been logged for the image (the next attempt is this + 1).

    Callers evaluate it inside their `except` block, before `log_failed_image`, so it never raises:
    when the store cannot answer it counts the image's failures waiting in the spool (or 0) and
    warns once, and the failure that follows is logged or spooled."""
    table = table_name.table if isinstance(table_name, SpoolingStore) else str(table_name)
    try:
        return store_for(table_name).attempt_count(image_key)
    except OcrlabError as exc:
        _warn_once(f"attempt numbers of {table!r} are counted from the spool while the store cannot "
                   f"answer ({exc})")
        try:
            return Spool(settings().spool_dir, table).failures_of(image_key)
        except (OcrlabError, OSError):
            return 0


def iter_failed_images(table_name: TableLike, failure_type: str | None = None,
                       ocr_version: str | None = None, since: str | dt.datetime | None = None,
                       attributes: Sequence[str] | None = None) -> Iterator[Record]:
    """Failures in time order (by image, for one version), filtered; streamed page by page.
    `ocr_version` is a full version or a short one (every full version of it). `since` is a moment: an ISO-8601 time
    with any offset (2026-12-03T02:00:00+02:00), or a datetime (naive means UTC). With `attributes`,
    only those are read (and the keys); FailureType is added when filtering by it."""
    since = utc_since(since)
    store = store_for(table_name)
    if attributes is not None and failure_type:
        attributes = [*attributes, "FailureType"]
    if ocr_version:  # a short version (2.0.0) selects every full version it names
        versions = full_versions(ocr_version, store.versions()) or [ocr_version]
        records: Iterator[Record] = (r for v in versions for r in store.version_records(v, FAILED_IMAGE, attributes)
                                     if not since or r["FailureTimestamp"] >= since)
    else:
        records = store.records_by_type(FAILED_IMAGE, since=since, attributes=attributes)
    return (r for r in records if r.get("FailureType") == failure_type) if failure_type else records


def get_all_failed_images(table_name: TableLike, failure_type: str | None = None,
                          ocr_version: str | None = None, since: str | dt.datetime | None = None) -> list[Record]:
    """All failures in time order, as a list (use iter_failed_images for large tables)."""
    return list(iter_failed_images(table_name, failure_type, ocr_version, since))


def export_failed_images_csv(table_name: TableLike, output_path: str | Path | IO[str],
                             failure_type: str | None = None, ocr_version: str | None = None,
                             since: str | dt.datetime | None = None) -> int:
    """Write failures as CSV (the columns of docs/design.md); returns the number of rows written."""
    return write_csv(iter_failed_images(table_name, failure_type, ocr_version, since), output_path)


def get_failure_statistics(table_name: TableLike) -> dict[str, Any]:
    """total_failures, unique_images, recent_failures_24h, failure_types, by_ocr_version,
    by_error_code, top_fingerprints."""
    return failure_statistics(iter_failed_images(table_name))
