"""The shapes of ocrlab's data, as types: the parsed timesheet and the stored records.

docs/design.md describes them in prose; these types are the same contract for the type checker.
Numbers in records are Decimal (DynamoDB's number type); texts are bounded in UTF-8 bytes
(ocrlab.records.TEXT_LIMITS); JSON-valued attributes are stored as strings.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Literal, Required, TypedDict

RecordType = Literal["FAILED_IMAGE", "OCR_RESULT"]


class TimesheetEntry(TypedDict):
    """One row: a date within the week, clock times HH:MM, hours worked. None: present but unreadable."""

    date: str | None
    time_in: str | None
    time_out: str | None
    hours: float | None


class Timesheet(TypedDict):
    """The parsed timesheet: what readers produce, what the Bedrock prompt asks for, and `NAME.json`."""

    employee_name: str | None
    employee_id: str | None
    week_ending: str | None
    entries: list[TimesheetEntry]
    total_hours: float | None


class Record(TypedDict, total=False):
    """A FAILED_IMAGE or OCR_RESULT item (the original failure log's attribute names, plus ocrlab's own)."""

    ImageKey: Required[str]
    FailureTimestamp: Required[str]          # ISO-8601 UTC with microseconds, unique per image
    RecordType: Required[RecordType]
    RecordId: str                            # makes writes and replays idempotent; set when the record is made
    Sequence: Decimal                        # the image's record order, from its counter in the store (not a clock)
    ContentDigest: str                       # what was read: sha256:HEX of a file's bytes, etag:ETAG of an S3 object
    PreviousContentDigest: str               # set on a new revision: the content the image's last run read
    Run: str                                 # the run that wrote it (host:pid:start:id), when it held a claim
    OCRVersion: str
    OCRBuildDate: str
    OCRDescription: str
    OCRFullVersion: str
    # failures only
    FailureType: str
    ErrorMessage: str
    ErrorCode: str
    FailureFingerprint: str
    ValidationErrors: str
    StackTrace: str
    AttemptNumber: Decimal
    # what the engine and the readers reported
    ModelId: str
    Engine: str
    EngineDetails: str                       # JSON: confidence, request id, retries...
    ProcessingTimeSeconds: Decimal
    InputTokens: Decimal
    OutputTokens: Decimal
    RawOCROutput: str
    ParsedTimesheet: str                     # JSON of a Timesheet (results, and validation failures)
    ParseRepairs: str                        # JSON list of ocrlab.timesheet.repairs.Repair
    ParseRepairsBase: Decimal                # what ParseRepairs counts entries from (1; absent: see repairs)
    # where the image came from
    S3Bucket: str
    S3Region: str
    ImageSize: Decimal
    CloudWatchLogStream: str
    # set on the record a write returns, never stored: it went to the spool, to the dead-letter
    # file (refused by DynamoDB for its content), or nowhere (neither store nor spool took it)
    Spooled: bool
    Rejected: bool
    Unwritten: bool
    ImageKeyOriginal: str                    # the image's key when it is too long to be the key itself


class LatestSummary(Record, total=False):
    """An image's latest record under a version as the ByVersionImage index holds it (Queries.latest_summary)."""

    Failures: int                            # the image's failures under the version; never stored
