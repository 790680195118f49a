"""The DynamoDB store of one table (or the local dynalite's): its client, its reads
(ocrlab.store.reads), its writes and claims (ocrlab.store.writes) and its administration
(ocrlab.store.admin), over one Table (ocrlab.store.table). `connect` opens one.
"""
from __future__ import annotations

from typing import Any

import boto3

from ocrlab.clients import client_config
from ocrlab.config import StoreTarget, settings
from ocrlab.store import admin
from ocrlab.store.layout import LAYOUT, TableLayout
from ocrlab.store.reads import Queries
from ocrlab.store.table import Table
from ocrlab.store.writes import Writer


class Store(Queries):
    """One table: its reads (inherited), its writes and claims (`writer`) and its administration."""

    def __init__(self, client: Any, table: str, description: str = "", clock_skew: float = 120.0) -> None:
        super().__init__(Table(client, table, description))
        self.writer = Writer(self, clock_skew)

    def ensure_table(self) -> bool:
        """Create the table in this ocrlab's layout if missing; True if created (ocrlab.store.admin)."""
        return admin.ensure_table(self.db)

    def check_table(self) -> None:
        admin.check_table(self.db)

    def migrate(self, layout: TableLayout = LAYOUT) -> list[str]:
        return admin.migrate(self.db, layout)


def make_client(target: StoreTarget, max_attempts: int | None = None, pool: int = 32) -> Any:
    """A boto3 DynamoDB client for the target: standard retries, explicit timeouts."""
    cfg = client_config(retries={"mode": "standard", "max_attempts": max_attempts or settings().store_max_attempts},
                        connect_timeout=3, read_timeout=20, max_pool_connections=pool)
    if target.kind == "local":
        return boto3.client("dynamodb", endpoint_url=target.endpoint_url, region_name=target.region,
                            aws_access_key_id="local", aws_secret_access_key="local", config=cfg)
    return boto3.client("dynamodb", endpoint_url=target.endpoint_url, region_name=target.region, config=cfg)


def connect(table: str, *, start_local: bool = True, create: bool = True, client: Any = None,
            max_attempts: int | None = None, check: bool = True) -> Store:
    """The Store of a table: local dynalite (started on demand) or DynamoDB.

    With `create` a missing table is made; without it (read paths) a missing table is an error.
    """
    target = settings().store_target()
    if client is None:
        if target.kind == "local" and start_local:
            from ocrlab.store.localdb import ensure_running
            ensure_running()
        client = make_client(target, max_attempts)
    store = Store(client, table, target.describe(table), clock_skew=settings().clock_skew)
    if create:
        store.ensure_table()
    elif check:
        store.check_table()
    return store
