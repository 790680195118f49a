"""CSV export of failures: fixed column order (docs/design.md), RFC 4180, formula-safe, streamed."""
from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

COLUMNS = ["ImageKey", "FailureTimestamp", "FailureType", "ErrorMessage", "ErrorCode", "OCRVersion",
           "OCRBuildDate", "OCRFullVersion", "ModelId", "ProcessingTimeSeconds", "InputTokens",
           "OutputTokens", "ValidationErrors", "S3Bucket", "ImageSize", "AttemptNumber",
           "CloudWatchLogStream", "RawOCROutput", "StackTrace"]
# Then the extras: known attributes by name, anything else as one JSON cell so the header is fixed
# before the first row and the export can stream.
EXTRA_COLUMNS = ["OCRDescription", "S3Region", "FailureFingerprint", "RecordId", "Extras"]
_INTERNAL = {"RecordType"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Spreadsheets run a cell starting with = + - @ tab or CR as a formula; a leading ' stops that."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")  # a number, never a formula, and never 1E+1 notation
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return neutralise(str(value))


def row(record: dict[str, Any], columns: list[str]) -> list[str]:
    known = set(columns) | _INTERNAL
    extras = {k: v for k, v in record.items() if k not in known}
    out = [cell(record.get(c)) for c in columns if c != "Extras"]
    if "Extras" in columns:
        out.append(neutralise(json.dumps(extras, ensure_ascii=False, default=str, sort_keys=True)) if extras else "")
    return out


@contextmanager
def _open_output(output: str | Path | IO[str]) -> Iterator[IO[str]]:
    if hasattr(output, "write"):
        yield output  # type: ignore[misc]
    elif str(output) == "-":
        yield sys.stdout
    else:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            yield handle


def write_csv(records: Iterable[dict[str, Any]], output: str | Path | IO[str],
              columns: list[str] | None = None) -> int:
    """Write records one row at a time; returns the row count. Memory does not grow with rows."""
    columns = columns or COLUMNS + EXTRA_COLUMNS
    count = 0
    with _open_output(output) as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow(row(record, columns))
            count += 1
    return count
