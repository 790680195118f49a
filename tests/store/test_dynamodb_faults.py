"""DynamoDB throttling, injected by a proxy in front of the real dynalite: retried, then spooled."""
from __future__ import annotations

import json

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


def test_a_table_of_the_former_layout_is_named_and_migrated(store, table_name):
    from support.helpers import run_cli
    old = f"{table_name}-old"
    client = store.store.client
    client.create_table(
        TableName=old, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                              for a in ("ImageKey", "FailureTimestamp", "RecordType", "OCRFullVersion")],
        KeySchema=[{"AttributeName": "ImageKey", "KeyType": "HASH"},
                   {"AttributeName": "FailureTimestamp", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": n, "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": h, "KeyType": "HASH"},
                                               {"AttributeName": "FailureTimestamp", "KeyType": "RANGE"}]}
                                for n, h in (("ByRecordType", "RecordType"), ("ByVersion", "OCRFullVersion"))])
    client.get_waiter("table_exists").wait(TableName=old)
    for i in range(30):  # records (two failures of each image) and one helper item of the old layout
        for n in (1, 2):
            client.put_item(TableName=old, Item={
                "ImageKey": {"S": f"i{i}.png"}, "FailureTimestamp": {"S": f"2025-10-2{n}T00:00:{i:02d}.000000Z"},
                "RecordType": {"S": "FAILED_IMAGE"}, "OCRFullVersion": {"S": "1.0.0-2025-10-01"},
                "FailureType": {"S": "OCR_ERROR"}, "AttemptNumber": {"N": str(n)}, "RecordId": {"S": f"r{i}-{n}"}})
    client.put_item(TableName=old, Item={"ImageKey": {"S": "i0.png"}, "FailureTimestamp": {"S": "#LATEST#1.0.0"},
                                         "LatestVersion": {"S": "1.0.0-2025-10-01"}})
    stats = run_cli("stats", "--table", old)
    assert stats.returncode == 2 and f"run `ocrlab adopt --table {old}`" in stats.stderr
    migrated = run_cli("db", "migrate", "--table", old)
    assert migrated.returncode == 0 and "ByVersionImage" in migrated.stdout, migrated.stderr
    after = run_cli("stats", "--json", "--table", old)
    assert after.returncode == 0 and json.loads(after.stdout)["total_failures"] == 60
    from ocrlab.store import open_store
    migrated_store = open_store(old, create=False)
    assert migrated_store.attempt_count("i7.png") == 2 and migrated_store.versions() == ["1.0.0-2025-10-01"]
    assert migrated_store.failure_counts("1.0.0-2025-10-01")["i7.png"] == 2
    assert "was adopted before" in run_cli("db", "migrate", "--table", old).stdout


FORMER_VERSION_INDEX = ("RecordType", "FailureType", "ErrorCode", "AttemptNumber", "RecordId")  # before the digests


def _table_with_a_narrow_version_index(client, name: str) -> None:
    from ocrlab.store.layout import LAYOUT
    request = LAYOUT.create_table_request(name)
    for index in request["GlobalSecondaryIndexes"]:
        if index["IndexName"] == "ByVersionImage":
            index["Projection"]["NonKeyAttributes"] = list(FORMER_VERSION_INDEX)
    client.create_table(**request)
    client.get_waiter("table_exists").wait(TableName=name)


def _version_index_attributes(client, name: str) -> set[str]:
    [index] = [g for g in client.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]
               if g["IndexName"] == "ByVersionImage"]
    return set(index["Projection"]["NonKeyAttributes"])


def test_a_version_index_without_the_digests_is_remade_by_migrate_on_dynalite(store, table_name):
    from support.helpers import run_cli

    from ocrlab.store import open_store
    from ocrlab.store.layout import BY_VERSION_IMAGE
    name = f"{table_name}-narrow"
    _table_with_a_narrow_version_index(store.store.client, name)
    narrow = open_store(name, create=False)  # usable as it is: what the index lacks is read by key
    log_failed_image(narrow, "a.png", "OCR_ERROR", "m")
    migrated = run_cli("db", "migrate", "--table", name)
    assert migrated.returncode == 0 and "ByVersionImage" in migrated.stdout, migrated.stderr
    assert _version_index_attributes(store.store.client, name) >= set(BY_VERSION_IMAGE.include)
    [kept] = get_all_failed_images(open_store(name, create=False))
    assert kept["ImageKey"] == "a.png" and kept["AttemptNumber"] == 1
    again = run_cli("db", "migrate", "--table", name).stdout
    assert "was adopted before" in again and "indexes added" not in again


def test_a_version_index_without_the_digests_is_dropped_and_made_again_on_dynamodb(s3_server, aws_credentials):
    # moto's server speaks DynamoDB's UpdateTable index changes, which dynalite ignores.
    import boto3

    from ocrlab.store.dynamodb import Store
    from ocrlab.store.layout import BY_VERSION_IMAGE
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=s3_server)
    _table_with_a_narrow_version_index(client, "narrow")
    assert Store(client, "narrow").migrate() == ["ByVersionImage"]
    assert _version_index_attributes(client, "narrow") >= set(BY_VERSION_IMAGE.include)
    assert Store(client, "narrow").migrate() == []
