"""Notebooks that say when they do nothing: a parameter that selects nothing stops the notebook with
one sentence naming the parameter to change (no traceback in JupyterLab, one line from `ocrlab report`)."""
from __future__ import annotations

from typing import Callable

from ocrlab.errors import NothingSelected, TableMissing
from ocrlab.store.spooling import SpoolingStore, open_store
from ocrlab.table_choice import missing_table_message, other_tables_note, reading_table, remember, writing_table


def require(condition: object, sentence: str | Callable[[], str]) -> None:
    """Stop the notebook with `sentence` unless `condition` holds (a callable: a sentence that costs a
    look at the store, made only when it is said)."""
    if not condition:
        raise NothingSelected(sentence if isinstance(sentence, str) else sentence())


def elsewhere(store: SpoolingStore) -> str:
    """The other tables of the store and their versions, for a sentence about a table that holds too
    little (the one a notebook reads by default is the one last written, which may be a small batch's)."""
    return other_tables_note(store.table, "`table`")


def existing_store(table: str | None = None) -> SpoolingStore:
    """The store of a table that exists (None: the table this project last wrote, ocrlab.table_choice);
    a missing table stops the notebook, naming the tables there (it is never created here)."""
    name = reading_table(table)
    try:
        return open_store(name, create=False)
    except TableMissing:
        raise NothingSelected(missing_table_message(name, "`table`")) from None


def writing_store(table: str | None = None) -> SpoolingStore:
    """The store a notebook's batch writes (None: OCRLAB_TABLE or `ocrlab`), remembered as the project's."""
    name = writing_table(table)
    store = open_store(name)
    remember(name)
    return store
