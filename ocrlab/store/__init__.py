"""The failure log's storage: DynamoDB (or the local dynalite), the spool, and what reads them.

`open_store(table)` gives the `SpoolingStore` that every other part of ocrlab takes.
"""
from __future__ import annotations

from ocrlab.store.dynamodb import Store
from ocrlab.store.spool import Spool
from ocrlab.store.spooling import SpoolingStore, Written, open_store

__all__ = ["Spool", "SpoolingStore", "Store", "Written", "open_store"]
