"""DynamoDB throttling, injected by a proxy in front of the real dynalite: retried, then spooled."""
from __future__ import annotations

import boto3
from botocore.config import Config

from fault_proxy import FaultProxy
from ocrlab import spool
from ocrlab.failure_log import get_all_failed_images, log_failed_image
from ocrlab.store import Store


def proxied_store(proxy: FaultProxy, table: str, attempts: int) -> Store:
    client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local",
                          config=Config(retries={"mode": "standard", "total_max_attempts": attempts}))
    return Store(client, table)


def test_throttling_is_retried_by_botocore(dynalite, store):
    with FaultProxy(dynalite.port) as proxy:
        throttled = proxied_store(proxy, store.table, attempts=4)
        proxy.throttle = 2  # the first two requests are refused, the third goes through
        record = log_failed_image(throttled, "t.png", "OCR_ERROR", "m")
        assert not record.get("Spooled") and proxy.throttled == 2
    [stored] = get_all_failed_images(store)
    assert stored["AttemptNumber"] == 1


def test_persistent_throttling_spools_and_replay_writes(dynalite, store):
    with FaultProxy(dynalite.port) as proxy:
        throttled = proxied_store(proxy, store.table, attempts=2)
        proxy.throttle = 10_000
        record = log_failed_image(throttled, "t.png", "OCR_ERROR", "m")
        assert record["Spooled"] and spool.pending(store.table) == 1
        assert "ProvisionedThroughputExceededException" in spool.spool_path(store.table).read_text()
    assert get_all_failed_images(store) == []
    assert spool.replay(store).written == 1
    [stored] = get_all_failed_images(store)
    assert stored["AttemptNumber"] == 1 and stored["ErrorMessage"] == "m"
