"""The answer-shape table through both Bedrock answer paths: the share read correctly.

Each shape of tests/support/answer_shapes.py goes, on every path that can carry it (the tool's input
is always an object, so syntax shapes are text-only), through the real boto3 client to the
local Converse server, which answers with it; the pipeline reads it and writes the record to
dynalite. Read correctly: the record is what the table says (the true timesheet, or the
expected failure), with the expected repairs. Invented: a success where the table expects a
failure, or a timesheet that is not the true one. Target: every readable shape read, no
invented value. "Without repair" counts the readable shapes a strict reader would have read.
"""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

TESTS = Path(__file__).resolve().parent.parent / "tests"
PATHS = ("tool", "text")


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, "PNG")
    return buffer.getvalue()


def bench_answers() -> dict[str, Any]:
    sys.path.insert(0, str(TESTS))  # the table and the Converse server live with the tests
    from support.answer_shapes import SHAPES, carried_by, invented, judge
    from support.converse_server import ConverseServer, make_client, ok

    from ocrlab.ocr.engines.bedrock import BedrockEngine
    from ocrlab.ocr.pipeline import Pipeline
    from ocrlab.store import open_store
    from ocrlab.version import OCRVersionInfo

    store = open_store("bench-answers")
    version = OCRVersionInfo("0.0.0", "2025-01-01", "answer-shape benchmark")
    image = _png()
    server = ConverseServer().start()
    results: dict[str, Any] = {}
    try:
        for path in PATHS:
            pipeline = Pipeline(BedrockEngine(client=make_client(server.url), answer_path=path), version, store)
            counts = dict.fromkeys(("shapes", "correct", "readable", "readable_read", "without_repair",
                                    "invented_values"), 0)
            wrong: list[str] = []
            started = time.perf_counter()
            for s in (s for s in SHAPES if carried_by(s, path)):
                key = f"{path}/{s.name}.png"
                server.push(ok(s.answer(s.truth())))
                pipeline.process(key, image)
                record = max(store.image_records(key), key=lambda r: r["FailureTimestamp"])
                right = not judge(s, record)
                counts["shapes"] += 1
                counts["correct"] += right
                counts["invented_values"] += invented(s, record)
                if s.expect == "OK":
                    counts["readable"] += 1
                    counts["readable_read"] += right
                    counts["without_repair"] += right and not record.get("ParseRepairs")
                if not right:
                    wrong.append(s.name)
            results[path] = {**counts, "share_read_correctly": round(counts["correct"] / counts["shapes"], 4),
                             "share_of_readable_read": round(counts["readable_read"] / counts["readable"], 4),
                             "wrong": wrong, "seconds": round(time.perf_counter() - started, 2)}
    finally:
        server.stop()
    met = all(r["share_of_readable_read"] == 1 and r["invented_values"] == 0 for r in results.values())
    return {**results, "target": "every readable shape read, 0 invented values, on both paths", "met": met}
