"""OCR quality on fixed-seed sample sets: rapidocr as shipped (base) and with preprocessing (candidate).

    python -m benchmarks.run [--quick]      (or: make bench; the figures land under "quality")

Per damage level (light, heavy) and configuration, over good timesheets G and invalid ones I:
- good_read: share of G whose batch outcome is OK (read, no failure);
- field_accuracy: correct fields / fields of G (every header field and every entry field), as the
  comparison report scores them (`fields.score_fields` on the record's ParsedTimesheet): a
  validation failure is scored on what it read, an image with nothing parsed counts all wrong;
- field_accuracy_accepted: the same with every failed image counting all its fields wrong (the
  fields a person need not re-key nor check);
- false_successes: I that came out OK (must be 0);
- raw_cer: character error rate of the engine's raw text against the printed lines (`NAME.txt`),
  weighted by length;
- parser_loss: of the fields whose printed value is in the raw text verbatim (an entry's value
  on the line that holds its date, a header value anywhere), the share that `parse_text` did
  not return right: what the reader lost that the engine had read.
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from ocrlab.analysis.outcomes import parse_timesheet
from ocrlab.errors import ParsingError
from ocrlab.evaluation.evaluate import ErrorCounts, cer
from ocrlab.evaluation.fields import score_fields
from ocrlab.ocr.preprocess import Preprocess
from ocrlab.records import OCR_RESULT
from ocrlab.runs.batch import run_batch
from ocrlab.runs.sources import LocalKeys
from ocrlab.samples.generate import generate_samples
from ocrlab.store import open_store
from ocrlab.timesheet.model import parse_text
from ocrlab.version import load_version

SEED = 2026
CANDIDATE = Preprocess(contrast=True)
CANDIDATE_VERSION = "version: 2.1.0\nbuild_date: 2025-11-02\ndescription: rapidocr + contrast preprocessing\n"
TARGETS = {"light": {"good_read": 0.97, "field_accuracy": 0.99}, "heavy": {"good_read": 0.90, "field_accuracy": 0.97},
           "false_successes": 0, "parser_loss": 0.01}


def _printed(field: str, value: Any) -> str:
    """How the form prints a ground-truth value (a date as MM/DD in the table, hours as 8.0)."""
    if field == "entry.date":
        return f"{value[5:7]}/{value[8:10]}"
    if field in ("entry.hours", "total_hours"):
        s = f"{value:.2f}".rstrip("0")
        return s + "0" if s.endswith(".") else s
    return str(value)


def _in_raw_text(truth: dict[str, Any], raw: str) -> list[bool]:
    """For each field `score_fields` scores, whether its printed value is in the raw text."""
    flat = re.sub(r"[ \t]+", " ", raw)
    found = [_printed(f, truth[f]) in flat for f in ("employee_name", "employee_id", "week_ending", "total_hours")]
    for entry in truth["entries"]:
        date_text = _printed("entry.date", entry["date"])
        line = next((line for line in flat.splitlines() if date_text in line), "")
        found += [_printed(f"entry.{k}", entry[k]) in line for k in ("date", "time_in", "time_out", "hours")]
    return found


def _figures(folder: Path, manifest: list[dict[str, Any]], table: str, version: str) -> dict[str, Any]:
    latest = {r["ImageKey"]: r for r in open_store(table).latest_outcomes(version)}
    keys = LocalKeys()  # a batch keys a local file by its path (ocrlab.runs.sources), not its bare name
    good = read = right = accepted = fields = false_ok = present = lost = 0
    raw_cer = ErrorCounts()
    for entry in manifest:
        record = latest[keys.key(folder / entry["file"])]
        ok = record["RecordType"] == OCR_RESULT
        if entry["expected"] != "OK":
            false_ok += ok
            continue
        stem = folder / Path(entry["file"]).stem
        truth = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        raw = str(record.get("RawOCROutput") or "")
        good += 1
        read += ok
        scores = score_fields(truth, parse_timesheet(record.get("ParsedTimesheet")))
        fields += len(scores)
        right += sum(hit for _, hit in scores)
        accepted += sum(hit for _, hit in scores) if ok else 0
        raw_cer = raw_cer + cer(stem.with_suffix(".txt").read_text(encoding="utf-8"), raw)
        try:
            parsed = dict(parse_text(raw))
        except ParsingError:
            parsed = None
        for in_raw, (_, hit) in zip(_in_raw_text(truth, raw), score_fields(truth, parsed)):
            present += in_raw
            lost += in_raw and not hit
    return {"good_timesheets": good, "good_read": round(read / good, 4), "field_accuracy": round(right / fields, 4),
            "field_accuracy_accepted": round(accepted / fields, 4),
            "invalid_timesheets": len(manifest) - good, "false_successes": false_ok,
            "raw_cer": round(raw_cer.rate, 4), "fields_in_raw_text": present,
            "parser_loss": round(lost / present, 4) if present else None}


def bench_quality(count: int = 60, invalid: int = 12) -> dict[str, Any]:
    """Both damage levels through real rapidocr batches (2 worker processes), base and candidate. The
    targets apply to the shipped configuration (base); no configuration may pass an invalid timesheet."""
    work = Path(tempfile.mkdtemp(prefix="ocrlab-quality-"))
    candidate_file = work / "candidate_OCR_VERSION.txt"
    candidate_file.write_text(CANDIDATE_VERSION, encoding="utf-8")
    versions = {"base": (None, None), "candidate": (candidate_file, CANDIDATE)}
    out: dict[str, Any] = {"seed": SEED, "candidate_preprocessing": json.loads(CANDIDATE.to_json()),
                           "targets": TARGETS}
    for damage in ("light", "heavy"):
        folder = work / damage
        manifest = generate_samples(folder, count=count, seed=SEED, damage=damage, invalid=invalid)
        out[damage] = {}
        for label, (version_file, preprocess) in versions.items():
            started = time.perf_counter()
            table = f"quality-{damage}-{label}"
            run_batch(str(folder), open_store(table), version_file=version_file, concurrency=2, progress=False,
                      preprocess=preprocess)
            figures = _figures(folder, manifest, table, load_version(version_file).full_version)
            figures["seconds_per_image"] = round((time.perf_counter() - started) / len(manifest), 3)
            out[damage][label] = figures
    base = [(out[d]["base"], TARGETS[d]) for d in ("light", "heavy")]
    every = [out[d][label] for d in ("light", "heavy") for label in versions]
    out["met"] = (all(f["good_read"] >= t["good_read"] and f["field_accuracy"] >= t["field_accuracy"] for f, t in base)
                  and all(f["false_successes"] == 0 for f in every)
                  and all(f["parser_loss"] is not None and f["parser_loss"] < TARGETS["parser_loss"] for f, _ in base))
    return out
