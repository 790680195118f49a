"""DynamoDB throttling, injected by a proxy in front of the real dynalite: retried, then spooled."""
from __future__ import annotations

from ocrlab.store.failure_log import get_all_failed_images, log_failed_image


def test_throttling_is_retried_by_botocore(fault_proxy, store, store_through):
    throttled = store_through(fault_proxy.url, store.table, attempts=4)
    fault_proxy.throttle = 2  # the first two requests are refused, the third goes through
    record = log_failed_image(throttled, "t.png", "OCR_ERROR", "m")
    assert not record.get("Spooled") and fault_proxy.throttled == 2
    [stored] = get_all_failed_images(store)
    assert stored["AttemptNumber"] == 1


def test_persistent_throttling_spools_and_replay_writes(fault_proxy, store, store_through):
    throttled = store_through(fault_proxy.url, store.table, attempts=2)
    fault_proxy.throttle = 10_000
    record = log_failed_image(throttled, "t.png", "OCR_ERROR", "m")
    assert record["Spooled"] and throttled.spool.pending() == 1
    assert "ProvisionedThroughputExceededException" in throttled.spool.path.read_text()
    assert get_all_failed_images(store) == []
    assert store.replay().written == 1
    [stored] = get_all_failed_images(store)
    assert stored["AttemptNumber"] == 1 and stored["ErrorMessage"] == "m"
