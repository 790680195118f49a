"""An in-process RecordStore: the same contract as the DynamoDB store, in dicts (for pure tests only;
everything a user runs is tested on dynalite)."""
from __future__ import annotations

import uuid
from collections import Counter
from typing import Any, Iterable, Iterator, Sequence

from ocrlab.records import FAILED_IMAGE, OCR_RESULT, utc_timestamp
from ocrlab.store.claims import Claim


def _project(record: dict[str, Any], attributes: Sequence[str] | None) -> dict[str, Any]:
    if attributes is None:
        return record
    return {k: v for k, v in record.items() if k in {"ImageKey", "FailureTimestamp", *attributes}}


class MemoryStore:
    def __init__(self, table: str = "memory") -> None:
        self.table, self.description = table, f"in-process table {table!r}"
        self.records: list[dict[str, Any]] = []
        self.latest: dict[tuple[str, str], dict[str, Any]] = {}
        self.failures: Counter[str] = Counter()
        self.claims: dict[tuple[str, str], str] = {}
        self.last_run: dict[tuple[str, str], str] = {}

    def put_record(self, item: dict[str, Any], *, count_given_attempt: bool = False) -> dict[str, Any]:
        item.setdefault("RecordId", uuid.uuid4().hex)
        item.setdefault("FailureTimestamp", utc_timestamp())
        if item["RecordType"] == FAILED_IMAGE and (item.get("AttemptNumber") is None or count_given_attempt):
            self.failures[item["ImageKey"]] += 1
            item.setdefault("AttemptNumber", self.failures[item["ImageKey"]])
        self.records.append(dict(item))
        self.update_latest(item)
        return item

    def claim(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
              since: float | None = None, force: bool = False) -> Claim:
        if self.claims.get((image_key, version), owner) != owner:
            return Claim(False, "claimed by another run")
        if not force and self.last_run.get((image_key, version)) == OCR_RESULT:
            return Claim(False, "already succeeded")
        self.claims[(image_key, version)] = owner
        return Claim(True)

    def confirm(self, image_key: str, version: str, record_id: str) -> None:
        pass

    def let_go(self, image_key: str, version: str, owner: str) -> None:
        if self.claims.get((image_key, version)) == owner:
            del self.claims[(image_key, version)]

    def release(self, image_key: str, version: str, owner: str, record_type: str, count_failure: bool,
                record_id: str = "", timestamp: str = "") -> int | None:
        self.claims.pop((image_key, version), None)
        self.last_run[(image_key, version)] = record_type
        if count_failure:
            self.failures[image_key] += 1
            return self.failures[image_key]
        return None

    def update_latest(self, record: dict[str, Any]) -> bool:
        key = (record["ImageKey"], record["OCRFullVersion"])
        held = self.latest.get(key)
        if held is not None and held["FailureTimestamp"] >= record["FailureTimestamp"]:
            return False
        self.latest[key] = dict(record)
        return True

    def get(self, image_key: str, timestamp: str) -> dict[str, Any] | None:
        return next((r for r in self.records if (r["ImageKey"], r["FailureTimestamp"]) == (image_key, timestamp)), None)

    def attempt_count(self, image_key: str) -> int:
        return self.failures[image_key]

    def _ordered(self, **equal: Any) -> Iterator[dict[str, Any]]:
        for record in sorted(self.records, key=lambda r: r["FailureTimestamp"]):
            if all(value is None or record.get(name) == value for name, value in equal.items()):
                yield dict(record)

    def records_by_type(self, record_type: str = FAILED_IMAGE, since: str | None = None,
                        until: str | None = None, newest_first: bool = False,
                        attributes: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        found = [_project(r, attributes) for r in self._ordered(RecordType=record_type)
                 if (since is None or r["FailureTimestamp"] >= since) and (until is None or r["FailureTimestamp"] < until)]
        return iter(found[::-1] if newest_first else found)

    def image_records(self, image_key: str, record_type: str | None = None,
                      ocr_version: str | None = None) -> Iterator[dict[str, Any]]:
        return self._ordered(ImageKey=image_key, RecordType=record_type, OCRFullVersion=ocr_version)

    def version_records(self, ocr_version: str, record_type: str | None = None,
                        attributes: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        return (_project(r, attributes) for r in self._ordered(OCRFullVersion=ocr_version, RecordType=record_type))

    def records_by_key(self, keys: Iterable[tuple[str, str]],
                       attributes: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        found = (self.get(*key) for key in keys)
        return (_project(r, attributes) for r in found if r is not None)

    def latest_summary(self, ocr_version: str) -> Iterator[dict[str, Any]]:
        for record in self.latest_outcomes(ocr_version):
            yield {**record, "Failures": self.failure_counts(ocr_version)[record["ImageKey"]]}

    def latest_outcomes(self, ocr_version: str) -> Iterator[dict[str, Any]]:
        return iter(sorted((dict(r) for (_, v), r in self.latest.items() if v == ocr_version),
                           key=lambda r: r["ImageKey"]))

    def failure_counts(self, ocr_version: str) -> Counter[str]:
        return Counter(r["ImageKey"] for r in self.version_records(ocr_version, FAILED_IMAGE))

    def versions(self) -> list[str]:
        return sorted({r["OCRFullVersion"] for r in self.records})
