"""Which table a command or notebook reads when it is not told: the one this project last wrote.

A project's records can live in several tables (`ocrlab demo` writes `ocrlab-demo`, `ocrlab batch
--table NAME` another). Whoever just ran one expects the next `ocrlab stats`, `ocrlab lab` or notebook
to show those records, so every batch remembers the table it wrote in OCRLAB_HOME/table.json, one per
store (the local database and each AWS endpoint or region keep their own), and reading falls back to it.

Reading, first wins: the table named (`--table`, a notebook's `table`), OCRLAB_TABLE (or
DYNAMODB_TABLE), the table this project last wrote on this store, `ocrlab`. Writing without a table
named uses OCRLAB_TABLE or `ocrlab`, never the remembered one: a batch of one's own scans never lands
in the demo's table.
"""
from __future__ import annotations

import json
from pathlib import Path

from ocrlab.config import DEFAULT_TABLE, Settings, StoreTarget, settings

MEMORY_FILE = "table.json"
SHOWN_TABLES = 12  # a message names at most this many tables


def _store_key(target: StoreTarget) -> str:
    return "local" if target.kind == "local" else f"aws {target.endpoint_url or target.region}"


def _memory(config: Settings) -> Path:
    return config.home / MEMORY_FILE


def _remembered(config: Settings) -> dict[str, str]:
    try:
        data = json.loads(_memory(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def last_written(config: Settings | None = None) -> str | None:
    """The table this project's batches last wrote on the current store (None: none yet)."""
    config = config or settings()
    return _remembered(config).get(_store_key(config.store_target()))


def reading_table(table: str | None = None) -> str:
    """The table to read: `table` if named, else OCRLAB_TABLE, else the one last written, else `ocrlab`."""
    if table:
        return table
    config = settings()
    if config.table_named:
        return config.table
    return last_written(config) or DEFAULT_TABLE


def writing_table(table: str | None = None) -> str:
    """The table to write: `table` if named, else OCRLAB_TABLE, else `ocrlab`."""
    return table or settings().table


def remember(table: str) -> None:
    """Note `table` as the one this project last wrote on the current store (what reading falls back to).

    Best effort: a folder that cannot be written costs the memory, never the batch."""
    config = settings()
    memory = _remembered(config)
    key = _store_key(config.store_target())
    if memory.get(key) == table:
        return
    memory[key] = table
    path = _memory(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{id(memory)}.tmp")
        scratch.write_text(json.dumps(memory, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        scratch.replace(path)  # atomic: a reader sees the old memory or the new one
    except OSError:
        pass


def existing_tables() -> list[str] | None:
    """The tables of the current store, sorted (None when they cannot be listed)."""
    from ocrlab.store.dynamodb import make_client
    target = settings().store_target()
    try:
        if target.kind == "local":
            from ocrlab.store.localdb import ensure_running
            ensure_running()
        names: list[str] = []
        for page in make_client(target, max_attempts=2).get_paginator("list_tables").paginate():
            names += page.get("TableNames", [])
        return sorted(names)
    except Exception:  # no permission to list, the store unreachable: the message does without the names
        return None


def missing_table_message(table: str, how: str) -> str:
    """Why a read found no table `table`, the tables that do exist and what to do; `how` says how the
    reader names a table (`--table NAME`, or the notebook's `table`)."""
    target = settings().store_target()
    where = (f"local dynalite {target.endpoint_url}, data in {target.home / 'dynamodb'}" if target.kind == "local"
             else target.endpoint_url or f"DynamoDB {target.region}")
    tables = existing_tables()
    listed = ", ".join(tables[:SHOWN_TABLES]) + (f" and {len(tables) - SHOWN_TABLES} more" if len(tables or ()) > SHOWN_TABLES
                                                else "") if tables else ""
    there = ("" if tables is None else f"; tables there: {listed}" if tables else "; there is no table there yet")
    use = f"set {how} to one of them, or " if tables else ""
    return (f"table {table!r} does not exist ({where}){there}. To see records, {use}write some first: "
            "`ocrlab demo` (sample timesheets) or `ocrlab batch SCANS/` (your own images)")


def other_tables_note(table: str, how: str) -> str:
    """For a reader that found too little in `table`: the other tables of this store that hold records
    and their versions, and how to read one (`how`, as in missing_table_message); "" if none."""
    from ocrlab.store.dynamodb import Store, make_client
    names = [n for n in existing_tables() or [] if n != table][:SHOWN_TABLES]
    if not names:
        return ""
    client = make_client(settings().store_target(), max_attempts=2)
    held = []
    for name in names:
        try:
            versions = Store(client, name).versions()
        except Exception:  # not readable, or not a table of records: left out of the hint
            continue
        if versions:
            held.append(f"{name!r} ({', '.join(versions)})")
    if not held:
        return ""
    return f" Other tables here: {'; '.join(held)}. To read one, set {how} to its name."

