"""Shared fixtures: a real dynalite server over HTTP for the whole session, a fresh table per test,
the local Converse server and the DynamoDB fault proxy (registered as plugins).

Tests that use the live dynalite are marked `store` automatically: `pytest -m "not store"` runs
the rest, which need no database.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.helpers import free_port

pytest_plugins = ["support.converse_server", "support.fault_proxy", "support.chromium"]

REPO = Path(__file__).resolve().parents[1]
SROIE = REPO.parent / "shared" / "datasets" / "sroie-sample"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "dynalite" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.store)


@pytest.fixture(scope="session")
def ocrlab_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's OCRLAB_HOME (and a local store): the environment is put back at the end."""
    home = tmp_path_factory.mktemp("ocrlab-home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OCRLAB_HOME", str(home))
        env.setenv("OCRLAB_STORE", "local")
        env.setenv("OCRLAB_STORE_MAX_ATTEMPTS", "2")
        env.setenv("OCRLAB_VERSION_FILE", str(REPO / "OCR_VERSION.txt"))
        yield home


@pytest.fixture(scope="session")
def dynalite(ocrlab_home: Path) -> Iterator[Any]:
    """The session's local DynamoDB: started through ocrlab's own `localdb`, stopped at the end."""
    from ocrlab.store import localdb
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OCRLAB_DB_PORT", str(port))
        state, _ = localdb.start(port)
        yield state
        localdb.stop()


@pytest.fixture
def table_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(dynalite, table_name: str):
    from ocrlab.store import open_store
    return open_store(table_name)


@pytest.fixture
def store_through(ocrlab_home: Path) -> Callable[..., Any]:
    """A SpoolingStore whose client talks to `endpoint` (a proxy, a second dynalite) with `attempts` calls."""
    from ocrlab.config import StoreTarget
    from ocrlab.store import open_store
    from ocrlab.store.dynamodb import make_client

    def build(endpoint: str, table: str, attempts: int = 2, create: bool = False, check: bool = True):
        target = StoreTarget("local", endpoint, "us-east-1", ocrlab_home)
        return open_store(table, client=make_client(target, max_attempts=attempts), create=create, check=check)
    return build


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for clients pointed at local servers (the store stays local: OCRLAB_STORE)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible server over real HTTP; boto3 reaches it through AWS_ENDPOINT_URL_S3."""
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server, aws_credentials):
    import boto3
    name = f"b-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=s3_server)
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def lambda_env(monkeypatch, converse_server, store, bucket):
    """The Lambda function's environment over the test's table, the local Converse server and a bucket."""
    from ocrlab.aws import handler
    monkeypatch.setenv("OCRLAB_TABLE", store.table)
    monkeypatch.setenv("OCRLAB_ENGINE", "bedrock")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", converse_server.url)
    handler.reset()
    yield bucket
    handler.reset()


@pytest.fixture
def dummy_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS account: fake keys, and no user config files that could change endpoints or retries."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                 "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "OCRLAB_BEDROCK_MODEL_ID"):
        monkeypatch.delenv(name, raising=False)
