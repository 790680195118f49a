"""Claims across hosts whose clocks disagree: a lease's end is its claimer's clock's, so another host
takes a claim over only OCRLAB_CLOCK_SKEW after the lease ran out by its own."""
from __future__ import annotations

import time

from ocrlab.store.dynamodb import Store
from ocrlab.store.table import serialize

VERSION = "2.0.0-2025-10-25"


def _held_by_a_host_an_hour_behind(store: Store, key: str) -> None:
    """A claim written by a live run on another host whose clock is an hour behind: by ours, its
    lease (15 minutes from its now) ran out three quarters of an hour ago."""
    store.ensure_table()
    store.db.call("put_item", TableName=store.table, Item=serialize({
        "ImageKey": key, "FailureTimestamp": "#COUNTER", "Sequence": 1,
        f"ClaimOwner@{VERSION}": "other-host:other-boot:4026531836:4242:99:run",
        f"ClaimExpires@{VERSION}": int(time.time() - 3600 + 900), f"ClaimRecord@{VERSION}": "r1"}))


def test_a_claim_by_a_host_whose_clock_is_behind_is_not_taken_over_within_the_allowed_skew(store, table_name):
    client = store.store.client
    patient, hasty = Store(client, table_name, clock_skew=3600), Store(client, table_name, clock_skew=0)
    _held_by_a_host_an_hour_behind(patient, "a.png")
    refused = patient.writer.claim("a.png", VERSION, "me", "r2", 900)
    assert not refused.granted and refused.reason == "claimed by another run"
    taken = hasty.writer.claim("a.png", VERSION, "me", "r2", 900)  # clocks assumed to agree: the lease looks long gone
    assert taken.granted and taken.previous_record == "r1"


def test_the_allowed_skew_is_a_setting(monkeypatch):
    from ocrlab.config import settings
    assert settings().clock_skew == 120
    monkeypatch.setenv("OCRLAB_CLOCK_SKEW", "3600")
    assert settings().clock_skew == 3600
