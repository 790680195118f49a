"""CSV export of failures: fixed column order (docs/design.md), RFC 4180, formula-safe, streamed."""
from __future__ import annotations

import base64
import csv
import json
import sys
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

from ocrlab.files import replacing
from ocrlab.records import DIGESTS
from ocrlab.store.layout import SHARD_ATTRIBUTE

COLUMNS = ["ImageKey", "FailureTimestamp", "FailureType", "ErrorMessage", "ErrorCode", "OCRVersion",
           "OCRBuildDate", "OCRFullVersion", "ModelId", "ProcessingTimeSeconds", "InputTokens",
           "OutputTokens", "ValidationErrors", "S3Bucket", "ImageSize", "AttemptNumber",
           "CloudWatchLogStream", "RawOCROutput", "StackTrace"]
# Then the extras: known attributes by name, anything else as one JSON cell so the header is fixed
# before the first row and the export can stream.
EXTRA_COLUMNS = ["OCRDescription", "S3Region", "FailureFingerprint", "RecordId", "ContentDigest", "Sequence",
                 "Extras"]
_INTERNAL = {"RecordType", SHARD_ATTRIBUTE, *DIGESTS.values()}  # bookkeeping, not what was logged
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Spreadsheets run a cell starting with = + - @ tab or CR as a formula; a leading ' stops that."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def cell(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is str:  # nearly every cell: checked first, and exactly, for speed
        return "'" + value if value.startswith(_FORMULA_START) else value
    if isinstance(value, Decimal):
        return format(value, "f")  # a number, never a formula, and never 1E+1 notation
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return neutralise(str(value))


def _plain(value: Any) -> Any:
    """JSON for what DynamoDB holds beyond JSON's types (tables written by other tools have them)."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raw = getattr(value, "value", value)  # boto3's Binary wraps the bytes
    if isinstance(raw, (bytes, bytearray)):
        return base64.b64encode(raw).decode("ascii")
    return str(value)


def row_maker(columns: list[str]) -> Callable[[Mapping[str, Any]], list[str]]:
    """A function from a record to its cells, with the column plan worked out once, not per row."""
    plain = [c for c in columns if c != "Extras"]
    known = frozenset(columns) | _INTERNAL

    def row(record: Mapping[str, Any]) -> list[str]:
        get = record.get
        out = [cell(get(c)) for c in plain]
        if "Extras" in known:
            names = record.keys() - known  # usually none: a set difference, not a loop over the record
            out.append(neutralise(json.dumps({k: record[k] for k in names}, ensure_ascii=False, default=_plain,
                                             sort_keys=True)) if names else "")
        return out
    return row


@contextmanager
def _open_output(output: str | Path | IO[str]) -> Iterator[IO[str]]:
    if hasattr(output, "write"):
        yield output  # type: ignore[misc]
    elif str(output) == "-":
        yield sys.stdout
    else:  # a failed export (a full disk) leaves the previous file whole
        with replacing(output) as handle:
            yield handle


def write_csv(records: Iterable[Mapping[str, Any]], output: str | Path | IO[str],
              columns: list[str] | None = None) -> int:
    """Write records one row at a time; returns the row count. Memory does not grow with rows."""
    columns = columns or COLUMNS + EXTRA_COLUMNS
    count = 0
    with _open_output(output) as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(columns)
        write, row = writer.writerow, row_maker(columns)
        for record in records:
            write(row(record))
            count += 1
    return count
