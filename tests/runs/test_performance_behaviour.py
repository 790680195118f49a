"""What the performance figures rest on, as behaviour (no timing): one engine per process, and the
store requests one logged failure and one image through the batch cost (counted on the real client)."""
from __future__ import annotations

from collections import Counter

from support.converse_server import ok
from support.helpers import V1, png

from ocrlab.ocr.engines.bedrock import BedrockEngine
from ocrlab.runs.batch import run_batch
from ocrlab.store.failure_log import get_attempt_count, log_failed_image


def operations(store) -> list[str]:
    seen: list[str] = []
    store.store.client.meta.events.register("before-call.dynamodb", lambda model, **_: seen.append(model.name))
    return seen


def test_a_batch_at_concurrency_16_builds_one_engine(tmp_path, store, converse_server, aws_credentials, monkeypatch):
    built = Counter()
    original = BedrockEngine.__init__

    def counting(self, *args, **kwargs):
        built["engines"] += 1
        original(self, *args, **kwargs)
    monkeypatch.setattr(BedrockEngine, "__init__", counting)
    for i in range(40):
        (tmp_path / f"{i}.png").write_bytes(png(30 + i, 20))
    converse_server.default = ok(delay=0.02)
    summary = run_batch(str(tmp_path), store, engine="bedrock", concurrency=16, progress=False,
                        engine_options={"endpoint_url": converse_server.url})
    assert summary.succeeded == 40
    assert built["engines"] == 1  # built to check the options before any image; all 16 threads share it
    assert converse_server.requests and len(converse_server.requests) == 40


def test_a_logged_failure_costs_two_requests(store):
    log_failed_image(store, "first.png", "OCR_ERROR", "m", V1)  # the first of a process reads the version list
    seen = operations(store)
    for i in range(5):
        log_failed_image(store, f"f{i}.png", "OCR_ERROR", "m", V1, {"raw_ocr_output": "x" * 3000})
    assert Counter(seen) == {"UpdateItem": 5, "PutItem": 5}   # the attempt count, the record
    seen.clear()
    log_failed_image(store, "f0.png", "OCR_ERROR", "again", V1, {"attempt_number": get_attempt_count(store, "f0.png") + 1})
    assert Counter(seen) == {"GetItem": 1, "UpdateItem": 1, "PutItem": 1}  # the caller's own count, then the same two


def test_one_image_through_the_batch_is_a_claim_the_record_and_the_release(tmp_path, store, converse_server,
                                                                           aws_credentials):
    (tmp_path / "warm.png").write_bytes(png())
    engine = {"endpoint_url": converse_server.url, "max_attempts": 1}
    run_batch(str(tmp_path), store, engine="bedrock", engine_options=engine, progress=False)  # version list read
    (tmp_path / "good.png").write_bytes(png(50, 40))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    seen = operations(store)
    summary = run_batch(str(tmp_path), store, engine="bedrock", engine_options=engine, progress=False)
    assert (summary.succeeded, summary.failed, summary.skipped) == (1, 1, 1)
    # planning: one Query of the version's index, one BatchGetItem of the images' counters (up to 100 a
    # call); then per image: good: claim (UpdateItem), record (PutItem), release (UpdateItem);
    # bad: claim, count and release, record, confirm that the counted failure is written.
    assert Counter(seen) == {"Query": 1, "BatchGetItem": 1, "UpdateItem": 5, "PutItem": 2}
