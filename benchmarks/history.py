"""A quarter of a pipeline's history, written straight into a table in the store's layout (benchmarks.seed).

Three versions over 180 days: V1, then V2 (the base), then V3 (the candidate). V2 and V3 both ran the
same images, and V3 changed `changed` of them: `regressed` (V2 read them, V3 failed), `fixed` (the
reverse), `other_ok` (both read them, the raw output differs; every third also reads a field
differently) and `other_failed` (both failed, differently); the rest of those images read the same.
V2's failing images failed twice. V1, the oldest, fills the table up to `failures` and `results`.
Records carry what the pipeline writes (raw outputs of about 500 characters, stack traces on engine
errors, tokens, times), bounded and digested by `ocrlab.records.make_storable`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator

from ocrlab.records import FAILED_IMAGE, OCR_RESULT, fingerprint, format_timestamp, make_storable, timesheet_json

from .seed import write_items

V1, V2, V3 = "2.0.0-2025-10-25", "2.1.0-2025-11-02", "2.2.0-2025-11-20"
START = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
WINDOW = dt.timedelta(days=60)  # each version's records fall in its own 60 days: 180 days in all
MODEL = "amazon.nova-lite-v1:0"
STACK = "".join(f'  File "/var/task/ocrlab/ocr/engines/bedrock.py", line {100 + n}, in _converse\n'
                f"    response = self._client.converse(**request)\n" for n in range(14)) + \
    "botocore.errorfactory.ModelErrorException: An error occurred (ModelErrorException) when calling Converse"


@dataclass(frozen=True)
class Plan:
    """How many images of each kind; the defaults are the issue's table (20,000 changed images)."""

    regressed: int = 300
    fixed: int = 4000
    other_ok: int = 12000
    other_failed: int = 3700
    unchanged: int = 10000
    failures: int = 50_000
    results: int = 50_000

    def scaled(self, divisor: int) -> Plan:
        return Plan(*(max(1, n // divisor) for n in (self.regressed, self.fixed, self.other_ok, self.other_failed,
                                                      self.unchanged, self.failures, self.results)))

    @property
    def compared(self) -> int:
        return self.regressed + self.fixed + self.other_ok + self.other_failed + self.unchanged

    @property
    def changed(self) -> int:
        return self.compared - self.unchanged


def key(i: int) -> str:
    return f"scans/2025/{i:06d}.png"


def timesheet(i: int, variant: int = 0) -> tuple[str, dict[str, Any]]:
    """Image i's raw text (~500 characters) and parsed timesheet; variants change the raw text
    (1: a smudge in the footer) or the raw text and a field (2: the name misread)."""
    name = f"Worker {i}" if variant != 2 else f"Vorker {i}"
    days = [("Mon", 20), ("Tue", 21), ("Wed", 22), ("Thu", 23), ("Fri", 24)]
    entries = [{"date": f"2025-10-{d}", "time_in": "08:00", "time_out": "16:30", "hours": 8.0} for _, d in days]
    lines = "".join(f"{day} 10/{d}   08:00   16:30   8.0\n" for day, d in days)
    footer = "Approved by: Operations supervisor\nSignature: ____________  Date: ________\n" \
             "Department: Warehouse, second shift    Site: North 4\n"
    if variant == 1:
        footer = footer.replace("Site: North 4", "Site: North 4.")
    raw = (f"WEEKLY TIMESHEET\nEmployee: {name}    ID: E-{10000 + i}\nWeek ending: 2025-10-24\n"
           f"Date        In      Out     Hours\n{lines}Total hours: 40.0\n{footer}")
    parsed = {"employee_name": name, "employee_id": f"E-{10000 + i}", "week_ending": "2025-10-24",
              "entries": entries, "total_hours": 40.0}
    return raw, parsed


def _stamp(version: str) -> dict[str, Any]:
    return {"OCRFullVersion": version, "OCRVersion": version[:5], "OCRBuildDate": version[6:],
            "OCRDescription": f"prompt of {version[:5]}", "ModelId": MODEL, "Engine": "bedrock",
            "S3Bucket": "timesheets", "S3Region": "us-east-1"}


def _common(i: int, version: str, when: dt.datetime, n: int) -> dict[str, Any]:
    later = (V1, V2, V3).index(version)  # each prompt a little longer than the one before
    return {"ImageKey": key(i), "FailureTimestamp": format_timestamp(when), "RecordId": f"{version}-{i}-{n}",
            **_stamp(version), "ProcessingTimeSeconds": Decimal(f"{1.2 + (i * 7919 % 400) / 100:.2f}"),
            "InputTokens": Decimal(1500 + 40 * later + i % 300), "OutputTokens": Decimal(180 + i % 90),
            "ImageSize": Decimal(250_000 + i % 50_000)}


def result(i: int, version: str, when: dt.datetime, variant: int = 0) -> dict[str, Any]:
    raw, parsed = timesheet(i, variant)
    item = {**_common(i, version, when, 0), "RecordType": OCR_RESULT, "RawOCROutput": raw,
            "ParsedTimesheet": timesheet_json(parsed)}
    return make_storable(item)


FAILURES = {  # kind -> (FailureType, ErrorCode, message)
    "engine": ("OCR_ERROR", "ModelErrorException", "Model error after 3 attempts: the model returned an error"),
    "parse": ("PARSING_ERROR", "JSONDecodeError", "no JSON object in the answer: Expecting value: line 1 column 1"),
    "valid": ("VALIDATION_ERROR", "ValidationError", "timesheet breaks 1 rule(s): total_mismatch: entries sum to "
                                                     "{n} h, total_hours is 40"),
    "throttle": ("THROTTLING_ERROR", "ThrottlingException", "Rate exceeded after 5 attempts"),
    "input": ("INPUT_ERROR", "UnidentifiedImageError", "cannot identify image file {key}"),
}


def failure(i: int, version: str, when: dt.datetime, kind: str, attempt: int = 1, variant: int = 0) -> dict[str, Any]:
    failure_type, code, template = FAILURES[kind]
    message = template.format(n=38 + i % 5, key=key(i))
    item = {**_common(i, version, when, attempt), "RecordType": FAILED_IMAGE, "FailureType": failure_type,
            "ErrorCode": code, "ErrorMessage": message, "AttemptNumber": Decimal(attempt),
            "FailureFingerprint": fingerprint(failure_type, code, message, key(i)),
            "CloudWatchLogStream": f"2025/06/01/[$LATEST]{i % 97:032x}"}
    if kind in ("engine", "throttle"):
        item["StackTrace"] = STACK
    elif kind == "parse":
        item["RawOCROutput"] = timesheet(i, variant)[0][:300] + ("\n{\"employee_name\": " if variant else "")
    elif kind == "valid":
        raw, parsed = timesheet(i, variant)
        item.update(RawOCROutput=raw, ParsedTimesheet=timesheet_json(dict(parsed, total_hours=40.0 + i % 3)),
                    ValidationErrors=f"total_mismatch: entries sum to 40 h, total_hours is {40 + i % 3}")
    if kind == "input":
        item.update(InputTokens=None, OutputTokens=None, ModelId=None)
    return make_storable({k: v for k, v in item.items() if v is not None})


def _when(version: str, n: int, of: int) -> dt.datetime:
    offset = {V1: 0, V2: 1, V3: 2}[version]
    return START + offset * WINDOW + WINDOW * (n / max(of, 1))


def records(plan: Plan) -> Iterator[dict[str, Any]]:
    """Every record of the plan, each version's in time order."""
    p = plan
    ranges, start = {}, 0
    for name in ("regressed", "fixed", "other_ok", "other_failed", "unchanged"):
        ranges[name] = range(start, start + getattr(p, name))
        start += getattr(p, name)

    v2: list[tuple[int, str, int, int]] = []   # (image, kind or "ok", attempt, variant)
    v3: list[tuple[int, str, int, int]] = []
    for i in ranges["regressed"]:
        v2.append((i, "ok", 0, 0))
        v3.append((i, "engine" if i % 2 else "parse", 1, 1))
    for i in ranges["fixed"]:
        kind = "valid" if i % 2 else "parse"
        v2 += [(i, kind, 1, 0), (i, kind, 2, 0)]
        v3.append((i, "ok", 0, 0))
    for i in ranges["other_ok"]:
        v2.append((i, "ok", 0, 0))
        v3.append((i, "ok", 0, 2 if i % 3 == 0 else 1))
    for i in ranges["other_failed"]:
        v2 += [(i, "parse", 1, 0), (i, "parse", 2, 0)]
        v3.append((i, "valid" if i % 2 else "parse", 1, 1))
    for i in ranges["unchanged"]:
        v2.append((i, "ok", 0, 0))
        v3.append((i, "ok", 0, 0))
    failed = sum(kind != "ok" for _, kind, _, _ in v2 + v3)
    succeeded = len(v2) + len(v3) - failed
    v1_failures, v1_results = max(0, p.failures - failed), max(0, p.results - succeeded)
    kinds = list(FAILURES)
    v1 = [(i, "ok", 0, 0) for i in range(v1_results)]
    v1 += [(v1_results + n, kinds[n % len(kinds)], 1, 0) for n in range(v1_failures)]

    for version, plan_of in ((V1, v1), (V2, sorted(v2, key=lambda r: (r[2] == 2, r[0]))), (V3, v3)):
        for n, (i, kind, attempt, variant) in enumerate(plan_of):
            when = _when(version, n, len(plan_of))
            yield result(i, version, when, variant) if kind == "ok" else failure(i, version, when, kind, attempt,
                                                                                   variant)


def seed_history(store: Any, plan: Plan = Plan(), threads: int = 4) -> dict[str, int]:
    """Write the plan's records and the version list; the counts written, by record type."""
    counts = {FAILED_IMAGE: 0, OCR_RESULT: 0}

    def counted() -> Iterator[dict[str, Any]]:
        for record in records(plan):
            counts[record["RecordType"]] += 1
            yield record
    write_items(store, counted(), versions=(V1, V2, V3), threads=threads)
    return counts
