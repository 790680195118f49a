"""Writing records so that none is lost: the store when it answers, the spool when it does not."""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from . import spool
from .errors import StoreUnavailable
from .store import Store, open_store

_stores: dict[tuple[str, int], Store] = {}
_stores_lock = threading.Lock()
# After the store failed, spool straight away for a while instead of paying every retry again.
STORE_DOWN_SECONDS = 10.0
_down_until: dict[str, float] = {}


def get_store(table: str | Store) -> Store:
    """An open Store for a table name, one per process (boto3 clients are thread safe)."""
    if isinstance(table, Store):
        return table
    key = (table, os.getpid())  # a forked child needs its own client
    with _stores_lock:
        if key not in _stores:
            _stores[key] = open_store(table)
        return _stores[key]


def write_record(table: str | Store, item: dict[str, Any]) -> dict[str, Any]:
    """Write a record (completed in place with its timestamp, id and attempt number) or spool it.

    Returns the record; `Spooled: True` marks one that waits in the spool for `ocrlab replay`.
    """
    name = table.table if isinstance(table, Store) else table
    if time.monotonic() < _down_until.get(name, 0.0):
        spool.append(name, item, "store unavailable moments ago")
        return {**item, "Spooled": True}
    try:
        return get_store(table).put_record(item)
    except StoreUnavailable as exc:
        _down_until[name] = time.monotonic() + STORE_DOWN_SECONDS
        path = spool.append(name, item, str(exc))
        print(f"ocrlab: store unavailable, record of {item.get('ImageKey')!r} spooled to {path} "
              f"(run `ocrlab replay` later): {exc}", file=sys.stderr)
        return {**item, "Spooled": True}
