"""Notebooks that say when they do nothing: a parameter that selects nothing stops the notebook with
one sentence naming the parameter to change (no traceback in JupyterLab, one line from `ocrlab report`)."""
from __future__ import annotations

from ..errors import NothingSelected, TableMissing
from ..store.spooling import SpoolingStore, open_store


def require(condition: object, sentence: str) -> None:
    """Stop the notebook with `sentence` unless `condition` holds."""
    if not condition:
        raise NothingSelected(sentence)


def existing_store(table: str) -> SpoolingStore:
    """The store of a table that exists; a missing table stops the notebook (it is never created here)."""
    try:
        return open_store(table, create=False)
    except TableMissing as exc:
        raise NothingSelected(f"table {table!r} does not exist: set `table` to a table that holds records "
                              f"(`ocrlab batch` creates one); {exc}") from None
