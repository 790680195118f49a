"""Which table a command or notebook reads when none is named: the one this project last wrote."""
from __future__ import annotations

import json

import pytest

from ocrlab.cli import main
from ocrlab.store.failure_log import log_failed_image
from ocrlab.table_choice import MEMORY_FILE, reading_table, remember, writing_table


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A project's local data folder of its own, no table named by the environment."""
    monkeypatch.setenv("OCRLAB_HOME", str(tmp_path))
    monkeypatch.setenv("OCRLAB_STORE", "local")
    for name in ("OCRLAB_TABLE", "DYNAMODB_TABLE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_reading_follows_the_last_write_and_writing_does_not(home, monkeypatch):
    assert reading_table() == "ocrlab" and writing_table() == "ocrlab"  # nothing written yet
    remember("ocrlab-demo")
    assert reading_table() == "ocrlab-demo" and reading_table("mine") == "mine"
    assert writing_table() == "ocrlab"  # a batch of one's own never lands in the demo's table
    monkeypatch.setenv("OCRLAB_TABLE", "named")
    assert reading_table() == writing_table() == "named" and reading_table("mine") == "mine"


def test_each_store_remembers_its_own(home, monkeypatch):
    remember("local-table")
    monkeypatch.setenv("OCRLAB_STORE", "aws")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert reading_table() == "ocrlab"  # the local database's table means nothing in DynamoDB
    remember("deployed")
    assert reading_table() == "deployed"
    monkeypatch.setenv("OCRLAB_STORE", "local")
    assert reading_table() == "local-table"
    assert json.loads((home / MEMORY_FILE).read_text()) == {"local": "local-table", "aws eu-west-1": "deployed"}


def test_an_unreadable_memory_is_no_memory(home):
    (home / MEMORY_FILE).write_text("{not json")
    assert reading_table() == "ocrlab"
    remember("t1")
    assert reading_table() == "t1"


@pytest.fixture
def kept_memory(ocrlab_home):
    """The session's memory as it was: these tests write it as a user's commands do."""
    path = ocrlab_home / MEMORY_FILE
    before = path.read_bytes() if path.exists() else None
    yield
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)


def test_commands_read_the_table_a_batch_last_wrote(store, kept_memory, monkeypatch, capsys, tmp_path):
    for name in ("OCRLAB_TABLE", "DYNAMODB_TABLE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty.png").write_bytes(b"")
    assert main(["batch", str(tmp_path), "--table", store.table, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["stats", "--json"]) == 0
    out = capsys.readouterr()
    assert f"table {store.table!r}" in out.err and json.loads(out.out)["failure_types"] == {"INPUT_ERROR": 1}


def test_a_missing_table_is_named_with_the_tables_there(store, capsys):
    log_failed_image(store, "a.png", "OCR_ERROR", "m")
    assert main(["stats", "--table", "no-such-table"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # after the line naming the store
    assert "table 'no-such-table' does not exist" in err and "tables there: " in err
    assert "set --table to one of them" in err and "`ocrlab demo`" in err and "`ocrlab batch SCANS/`" in err
    assert "ocrlab db start" not in err
