"""Building records: the attribute names of docs/design.md, byte-bounded text, Decimal numbers, fingerprints."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import threading
import uuid
from decimal import Decimal
from typing import Any, Mapping, cast

from ocrlab.domain import Record, Timesheet
from ocrlab.text import TRUNCATION_MARK, clean_text, truncate_utf8
from ocrlab.version import OCRVersionInfo

FAILED_IMAGE = "FAILED_IMAGE"
OCR_RESULT = "OCR_RESULT"

# Text limits in UTF-8 bytes (docs/design.md, "Records"); any other text attribute: OTHER_TEXT_LIMIT.
TEXT_LIMITS = {"ErrorMessage": 5000, "RawOCROutput": 10000, "ValidationErrors": 2000, "StackTrace": 5000,
               "ParsedTimesheet": 50_000, "ParseRepairs": 20_000, "OCRDescription": 1000, "OCRVersion": 200,
               "OCRBuildDate": 100, "OCRFullVersion": 400, "ImageKeyOriginal": 10_000, "EngineDetails": 4000,
               "EngineConfig": 2000, "Preprocessing": 1000}
OTHER_TEXT_LIMIT = 4000
RESULT_RAW_LIMIT = 100_000  # results keep more raw text (comparison needs it) but stay far below 400 KB
# DynamoDB's limits: 400 KB an item; an index's sort key (ImageKey in ByVersionImage) 1024 bytes.
ITEM_BUDGET = 350_000
KEY_LIMIT = 1024

# snake_case keys of the original failure logger's error_details -> attribute names.
DETAIL_ATTRIBUTES = {
    "error_code": "ErrorCode", "model_id": "ModelId", "processing_time": "ProcessingTimeSeconds",
    "input_tokens": "InputTokens", "output_tokens": "OutputTokens", "raw_ocr_output": "RawOCROutput",
    "validation_errors": "ValidationErrors", "s3_bucket": "S3Bucket", "s3_region": "S3Region",
    "image_size": "ImageSize", "attempt_number": "AttemptNumber", "stack_trace": "StackTrace",
    "cloudwatch_log_stream": "CloudWatchLogStream",
}
NUMERIC = {"ProcessingTimeSeconds", "InputTokens", "OutputTokens", "ImageSize", "AttemptNumber", "Sequence"}
# A short digest of each output text, kept beside it and in the ByVersionImage index: a comparison tells
# which images' outputs changed from the index alone, and reads the texts only of the images it shows.
DIGESTS = {"RawOCROutput": "RawDigest", "ParsedTimesheet": "ParsedDigest"}


def to_decimal(value: Any) -> Decimal | None:
    """Numbers are stored as Decimal; None, NaN and infinities are not stored at all."""
    if value is None or isinstance(value, bool):
        return None if value is None else Decimal(int(value))
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    # repr gives the shortest string that round-trips, so 0.1 stays 0.1 and not 0.1000000000000000055...
    return Decimal(repr(number)).normalize() if number != int(number) else Decimal(int(number))


_FINGERPRINT_RULES = [
    (re.compile(r"[\w.-]+\.(?:png|jpe?g|gif|webp|tiff?|bmp|pdf|json|txt|csv)\b", re.I), "<file>"),
    (re.compile(r"s3://\S+|(?:[A-Za-z]:)?(?:[\w.-]*[/\\])+[\w.-]+"), "<path>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", re.I), "<id>"),
    (re.compile(r"\b[A-Z0-9]{20,}\b"), "<id>"),
    (re.compile(r"\d+(?:[.:/-]\d+)*"), "<n>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<s>"),
    (re.compile(r"\s+"), " "),
]


def normalize_message(message: str) -> str:
    """The message with paths, ids, numbers and quoted values taken out."""
    text = message
    for pattern, replacement in _FINGERPRINT_RULES:
        text = pattern.sub(replacement, text)
    return text.strip()[:500]


def fingerprint(failure_type: str, error_code: str, message: str, image_key: str = "") -> str:
    """Groups failures like issues in an error tracker: same type, code and message shape."""
    for name in filter(None, {image_key, image_key.rsplit("/", 1)[-1]}):
        message = message.replace(name, "<image>")
    key = f"{failure_type}|{error_code}|{normalize_message(message)}"
    return hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:16]


_clock_lock = threading.Lock()
_last_tick: dt.datetime | None = None


def utc_timestamp(after: str | None = None) -> str:
    """ISO-8601 UTC with microseconds, strictly increasing within the process (and after `after`)."""
    global _last_tick
    with _clock_lock:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        floor = [t for t in (_last_tick, parse_timestamp(after) if after else None) if t is not None]
        if floor and now <= max(floor):
            now = max(floor) + dt.timedelta(microseconds=1)
        _last_tick = now
        return format_timestamp(now)


def utc_since(since: str | dt.datetime | Any | None) -> str | None:
    """A `since` bound (an ISO-8601 string with any offset, or a datetime; naive means UTC) as a stored
    timestamp, so that comparing it with FailureTimestamp compares moments, not strings."""
    if since is None or since == "":
        return None
    if isinstance(since, str):
        return format_timestamp(parse_timestamp(since))
    if hasattr(since, "to_pydatetime"):  # a pandas Timestamp
        since = since.to_pydatetime()
    if isinstance(since, dt.date) and not isinstance(since, dt.datetime):
        since = dt.datetime.combine(since, dt.time())
    if not isinstance(since, dt.datetime):
        raise TypeError(f"since must be an ISO-8601 string or a datetime, not {type(since).__name__}")
    return format_timestamp(since)


def format_timestamp(moment: dt.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_timestamp(text: str) -> dt.datetime:
    """A stored timestamp (or any ISO-8601 string; a date alone is its midnight) as naive UTC."""
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def _attribute(name: str, value: Any) -> Any:
    if name in NUMERIC:
        return to_decimal(value)
    if name == "ValidationErrors" and isinstance(value, (list, tuple)):
        value = "; ".join(clean_text(v) for v in value)
    if isinstance(value, float):
        return to_decimal(value)
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return to_decimal(value)
    if value is None:
        return None
    text = clean_text(value)
    limit = TEXT_LIMITS.get(name)
    return truncate_utf8(text, limit) if limit else text


def _details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (details or {}).items():
        name = DETAIL_ATTRIBUTES.get(key, key)
        converted = _attribute(name, value)
        if converted is not None:
            out[clean_text(name)] = converted
    return out


def storage_key(image_key: str) -> str:
    """The ImageKey an image is stored under: itself, or, beyond KEY_LIMIT bytes, its start and a
    hash of the whole (the same image always gets the same key; the original is kept in
    ImageKeyOriginal)."""
    key = clean_text(image_key)
    if len(key.encode("utf-8")) <= KEY_LIMIT:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return f"{truncate_utf8(key, KEY_LIMIT - 64).removesuffix(TRUNCATION_MARK)}…#{digest}"


def _storable_number(value: Decimal) -> bool:
    # DynamoDB numbers: up to 38 significant digits, magnitude between 1e-130 and 1e126.
    exponent = value.adjusted() if value else 0
    return len(value.as_tuple().digits) <= 38 and -130 < exponent < 126


def make_storable(item: dict[str, Any]) -> dict[str, Any]:
    """Bound every attribute to what DynamoDB accepts, in place: text by TEXT_LIMITS (others by
    OTHER_TEXT_LIMIT), numbers DynamoDB cannot hold dropped, the raw output cut further if the
    item would still exceed ITEM_BUDGET. Records built by failure_item and result_item already
    comply; this also covers records from elsewhere (the spool, callers' extra attributes)."""
    for name, value in list(item.items()):
        if isinstance(value, str) and name not in ("ImageKey", "FailureTimestamp", "RecordType"):
            limit = RESULT_RAW_LIMIT if name == "RawOCROutput" and item.get("RecordType") == OCR_RESULT else \
                TEXT_LIMITS.get(name, OTHER_TEXT_LIMIT)
            item[name] = truncate_utf8(clean_text(value), limit)
        elif isinstance(value, Decimal) and not _storable_number(value):
            del item[name]
    key = item.get("ImageKey")
    if isinstance(key, str) and storage_key(key) != key:
        original = key.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates as \udcNN
        item.setdefault("ImageKeyOriginal", truncate_utf8(original, TEXT_LIMITS["ImageKeyOriginal"]))
        item["ImageKey"] = storage_key(key)
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in item.items())
    raw = item.get("RawOCROutput")
    if size > ITEM_BUDGET and isinstance(raw, str):
        item["RawOCROutput"] = truncate_utf8(raw, max(1000, len(raw.encode()) - (size - ITEM_BUDGET)))
    if item.get("RecordType") in (FAILED_IMAGE, OCR_RESULT):
        item.update(output_digests(item))
    return item


def output_digests(record: Mapping[str, Any]) -> dict[str, str]:
    """RawDigest and ParsedDigest of a record's texts as stored (an absent text digests as empty);
    equal digests mean equal texts. The parsed timesheet is digested in canonical JSON (keys sorted)."""
    parsed = record.get("ParsedTimesheet")
    if isinstance(parsed, str) and parsed:
        try:
            parsed = json.dumps(json.loads(parsed), ensure_ascii=False, sort_keys=True)
        except json.JSONDecodeError:
            pass
    texts = {"RawOCROutput": record.get("RawOCROutput"), "ParsedTimesheet": parsed}
    return {DIGESTS[name]: _digest(text if isinstance(text, str) else "") for name, text in texts.items()}


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def new_record_id() -> str:
    """A record's identity from the moment it is made: writes, spool lines and replays are idempotent by it."""
    return uuid.uuid4().hex


def order_key(record: Mapping[str, Any]) -> tuple[int, str]:
    """How an image's records are ordered: by `Sequence`, the per-image number every writer takes from
    the image's counter in the store (no host's clock decides), then by time; a record written before
    records carried a sequence comes before every record that has one."""
    sequence = record.get("Sequence")
    return (int(sequence) if sequence is not None else -1, str(record.get("FailureTimestamp") or ""))


def failure_item(image_key: str, failure_type: str, error_message: str, version: OCRVersionInfo,
                 details: Mapping[str, Any] | None = None) -> Record:
    """A FAILED_IMAGE record stamped with the time of the failure; the store assigns its attempt number."""
    item = _details(details)
    item.update(version.stamp())
    message = _attribute("ErrorMessage", error_message or "") or ""
    code = str(item.get("ErrorCode") or failure_type)
    item.update({"ImageKey": image_key, "RecordType": FAILED_IMAGE,
                 "FailureType": str(failure_type), "ErrorMessage": message, "ErrorCode": code,
                 "FailureFingerprint": fingerprint(str(failure_type), code, message, clean_text(image_key)),
                 "FailureTimestamp": utc_timestamp()})
    item.setdefault("RecordId", new_record_id())
    return cast(Record, make_storable(item))


def result_item(image_key: str, version: OCRVersionInfo, raw_output: str, parsed: Timesheet,
                details: Mapping[str, Any] | None = None) -> Record:
    """An OCR_RESULT record: same version fields as failures, plus the parsed timesheet as JSON."""
    item = _details(details)
    item.update(version.stamp())
    item.update({"ImageKey": image_key, "RecordType": OCR_RESULT, "RawOCROutput": raw_output,
                 "ParsedTimesheet": timesheet_json(parsed), "FailureTimestamp": utc_timestamp()})
    item.setdefault("RecordId", new_record_id())
    return cast(Record, make_storable(item))


def timesheet_json(parsed: Mapping[str, Any]) -> str:
    """The parsed timesheet as stored in ParsedTimesheet (on results, and on validation failures)."""
    return json.dumps(parsed, ensure_ascii=False, sort_keys=True, default=str)
