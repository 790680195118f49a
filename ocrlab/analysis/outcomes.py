"""Each image's latest outcome under a version, read the way a comparison needs it.

Everything a comparison counts (outcome, error code, tokens, time, and digests of the raw output and
the parsed timesheet) comes from the version's ByVersionImage index: one Query per version, no text.
The texts are read by key, in BatchGetItem pages, only for the images someone looks at (`read_texts`)
or scores against ground truth (`read_parsed`). A record written before records carried digests (or
a table whose index predates them) is read by key once for its digests, so older tables compare
correctly, only slower.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Collection, Iterable, Iterator, Mapping

from ocrlab.records import DIGESTS, OCR_RESULT, output_digests
from ocrlab.store.spooling import SpoolingStore
from ocrlab.store.table import pages

OK = "OK"
TEXTS = ("RawOCROutput", "ParsedTimesheet", "ErrorMessage")
NUMBERS = ("InputTokens", "OutputTokens", "ProcessingTimeSeconds")
PAGE = 100  # keys per BatchGetItem


def _number(value: Any) -> float | None:
    if isinstance(value, (Decimal, int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _word(value: Any) -> str | None:
    """Short repeated values (types, codes) interned: thousands of sides share one string."""
    return None if value is None or value == "" else sys.intern(str(value))


def parse_timesheet(text: Any) -> dict[str, Any] | None:
    try:
        parsed = json.loads(text or "null")
    except (TypeError, json.JSONDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


@dataclass(slots=True)
class Side:
    """One version's latest outcome for one image. The texts stay None until read (`loaded`)."""

    outcome: str                      # "OK" or the FailureType
    timestamp: str
    error_code: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    seconds: float | None = None
    raw_digest: str = ""
    parsed_digest: str = ""
    raw: str | None = None
    parsed: dict[str, Any] | None = None
    error_message: str | None = None
    loaded: bool = False
    content: str = ""  # the ContentDigest of what was read (empty on records that predate it)

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @classmethod
    def from_summary(cls, entry: Mapping[str, Any]) -> Side:
        """From an index entry (or any record): outcome, code, numbers and digests; no text."""
        ok = entry.get("RecordType") == OCR_RESULT
        side = cls(outcome=OK if ok else _word(entry.get("FailureType")) or "FAILED",
                   timestamp=str(entry.get("FailureTimestamp") or ""),
                   error_code=None if ok else _word(entry.get("ErrorCode")))
        side.take_numbers(entry)
        side.raw_digest, side.parsed_digest = (str(entry.get(d) or "") for d in DIGESTS.values())
        side.content = str(entry.get("ContentDigest") or "")
        return side

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Side:
        """From a full record: the texts too, and the digests computed when the record lacks them."""
        side = cls.from_summary({**record, **output_digests(record)})
        side.read(record)
        return side

    def take_numbers(self, record: Mapping[str, Any]) -> None:
        tokens_in, tokens_out, seconds = (record.get(name) for name in NUMBERS)
        self.input_tokens = _integer(tokens_in) if self.input_tokens is None else self.input_tokens
        self.output_tokens = _integer(tokens_out) if self.output_tokens is None else self.output_tokens
        self.seconds = _number(seconds) if self.seconds is None else self.seconds

    def read(self, record: Mapping[str, Any]) -> None:
        """Take the texts of this side's record. Results carry the parsed timesheet, and so do validation
        failures (what was read is scored even when it broke a rule)."""
        self.raw = str(record.get("RawOCROutput") or "")
        self.parsed = parse_timesheet(record.get("ParsedTimesheet"))
        self.error_message = None if self.ok else str(record.get("ErrorMessage") or "")
        self.loaded = True

    def to_dict(self) -> dict[str, Any]:
        """The side without its texts (the error message only once read)."""
        return {"outcome": self.outcome, "timestamp": self.timestamp, "error_code": self.error_code,
                "error_message": self.error_message, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "seconds": self.seconds}


Pair = tuple[str, Side]  # an image key and one of its sides


class OutcomeReader:
    """Reads sides from a store: the latest of each image from the index, texts by key on demand."""

    def __init__(self, store: SpoolingStore) -> None:
        self.store = store

    def latest(self, version: str, keys: Collection[str] | None = None) -> dict[str, Side]:
        """Each image's latest side under `version` (only `keys`, if given), in ImageKey order."""
        sides: dict[str, Side] = {}
        undigested: list[Pair] = []
        for entry in self.store.latest_summary(version):
            key = entry["ImageKey"]
            if keys is not None and key not in keys:
                continue
            sides[key] = side = Side.from_summary(entry)
            if not all(name in entry for name in DIGESTS.values()):
                undigested.append((key, side))
        self._complete(undigested)
        return sides

    def _complete(self, pairs: list[Pair]) -> None:
        """Digests (and numbers an older index lacks) from the records themselves; texts not kept."""
        for page, records in self._fetch(pairs, (*DIGESTS, *NUMBERS)):
            for (_, side), record in zip(page, records):
                if record is not None:
                    side.raw_digest, side.parsed_digest = (output_digests(record)[d] for d in DIGESTS.values())
                    side.take_numbers(record)

    def read_texts(self, pairs: Iterable[Pair]) -> None:
        """Raw output, parsed timesheet and error message of each side not yet loaded."""
        for page, records in self._fetch([p for p in pairs if not p[1].loaded], TEXTS):
            for (_, side), record in zip(page, records):
                side.read(record or {})

    def read_parsed(self, pairs: Iterable[Pair]) -> None:
        """The parsed timesheet alone (for field accuracy) of each side not yet loaded."""
        for page, records in self._fetch([p for p in pairs if not p[1].loaded], ("ParsedTimesheet",)):
            for (_, side), record in zip(page, records):
                side.parsed = parse_timesheet((record or {}).get("ParsedTimesheet"))

    def _fetch(self, pairs: list[Pair], attributes: tuple[str, ...]
               ) -> Iterator[tuple[list[Pair], list[Mapping[str, Any] | None]]]:
        """Each page of pairs with its records (None where a record is gone), `attributes` only."""
        for page in pages(pairs, PAGE):
            found = {(r["ImageKey"], r["FailureTimestamp"]): r for r in self.store.records_by_key(
                [(key, side.timestamp) for key, side in page], attributes)}
            yield page, [found.get((key, side.timestamp)) for key, side in page]
