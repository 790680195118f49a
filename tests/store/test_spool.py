"""A dead database loses no record: failures go to the spool, `ocrlab replay` writes them once."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys

import pytest
from support.helpers import V1, free_port

from ocrlab.store import localdb
from ocrlab.store.failure_log import get_all_failed_images, log_failed_image


def test_store_down_spooled_then_replayed_once(dynalite, tmp_path, table_name, store_through):
    port, data_dir = free_port(), tmp_path / "db"
    localdb.start(port, data_dir)
    store = store_through(f"http://127.0.0.1:{port}", table_name, attempts=2, create=True)
    log_failed_image(store, "before.png", "OCR_ERROR", "logged while up", V1)
    localdb.stop(data_dir)

    spooled = [log_failed_image(store, f"down{i}.png", "OCR_ERROR", f"while down {i}", V1,
                                {"processing_time": 0.5}) for i in range(5)]
    log_failed_image(store, "before.png", "OCR_ERROR", "second failure while down", V1)
    assert all(r.get("Spooled") for r in spooled)
    assert store.spool.pending() == 6
    line = json.loads(store.spool.path.read_text().splitlines()[0])
    assert line["item"]["ProcessingTimeSeconds"] == {"N": "0.5"}  # Decimal kept exactly on disk

    # Replay against a dead store keeps everything.
    report = store.replay()
    assert report.written == 0 and report.waiting == 6 and report.error

    localdb.start(port, data_dir)
    try:
        # The second server as an explicit endpoint (the way a DynamoDB endpoint is given), same spool.
        env = {**os.environ, "OCRLAB_STORE": "aws", "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{port}",
               "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1"}
        out = subprocess.run([sys.executable, "-m", "ocrlab", "replay", "--table", table_name],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "replayed: 6 written, 0 still waiting, 0 rejected" in out.stdout
        assert store.spool.pending() == 0
        assert store.replay().written == 0  # a second replay has nothing to do

        records = get_all_failed_images(store)
        keys = sorted(r["ImageKey"] for r in records)
        assert keys == ["before.png", "before.png"] + [f"down{i}.png" for i in range(5)]
        assert sorted(r["AttemptNumber"] for r in records if r["ImageKey"] == "before.png") == [1, 2]
        assert len({r["RecordId"] for r in records}) == 7
    finally:
        localdb.stop(data_dir)


def test_replay_is_idempotent_when_a_record_was_already_written(store, table_name):
    # A record whose write succeeded but whose answer was lost sits in the spool too: replay must not duplicate it.
    written = log_failed_image(store, "x.png", "OCR_ERROR", "m", V1)
    store.spool.append(dict(written), "answer lost")
    report = store.replay()
    assert report.written == 1 and report.waiting == 0
    assert len(get_all_failed_images(store)) == 1


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_replay_interrupted_at_any_line_writes_each_record_once(signal_name, dynalite, fault_proxy, table_name,
                                                                  store_through):
    """150 failures of 50 images logged through the original call while the store is unreachable; a replay
    stopped by a signal while its Nth record is on the wire (N random), then run again: 150 records, each
    image's attempts 1, 2, 3."""
    down = store_through(f"http://127.0.0.1:{free_port()}", table_name, attempts=1, check=False)
    for attempt in range(3):
        for i in range(50):
            assert log_failed_image(down, f"img-{i:02d}.png", "OCR_ERROR", f"try {attempt}", V1).get("Spooled")
    assert down.spool.pending() == 150
    assert all(json.loads(line)["item"].get("RecordId") for line in down.spool.path.read_text().splitlines())

    line = random.Random().randint(2, 149)
    fault_proxy.hold_put = line + 1      # the first put of a process registers the version
    env = {**os.environ, "OCRLAB_STORE": "aws", "AWS_ENDPOINT_URL_DYNAMODB": fault_proxy.url,
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1"}
    replay = [sys.executable, "-m", "ocrlab", "replay", "--table", table_name]
    first = subprocess.Popen(replay, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert fault_proxy.holding.wait(60), "the replay never reached the held write"
    first.send_signal(getattr(signal, signal_name))
    _, err = first.communicate(timeout=60)
    fault_proxy.release.set()            # the held write lands after its writer is gone
    assert first.returncode == 128 + getattr(signal, signal_name) and "Traceback" not in err, err
    assert "the next replay goes on from there" in err

    second = subprocess.run(replay, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert down.spool.pending() == 0
    up = store_through(f"http://127.0.0.1:{dynalite.port}", table_name)
    records = get_all_failed_images(up)
    assert len(records) == 150 and len({r["RecordId"] for r in records}) == 150
    attempts: dict[str, list[int]] = {}
    for r in records:
        attempts.setdefault(r["ImageKey"], []).append(int(r["AttemptNumber"]))
    assert {key: sorted(numbers) for key, numbers in attempts.items()} == {
        f"img-{i:02d}.png": [1, 2, 3] for i in range(50)}, line


def test_spooling_is_logged_for_the_caller_to_route_not_printed(dynalite, table_name, store_through, caplog, capfd):
    import logging
    down = store_through(f"http://127.0.0.1:{free_port()}", table_name, attempts=1, check=False)
    with caplog.at_level(logging.WARNING, logger="ocrlab"):
        record = log_failed_image(down, "a.png", "OCR_ERROR", "model timed out", V1)
    assert record["Spooled"]
    [line] = [r for r in caplog.records if r.name == "ocrlab.store.spooling"]
    assert "spooled to" in line.getMessage() and "ocrlab replay" not in line.getMessage()
    assert capfd.readouterr().err == ""  # the library printed nothing itself


def test_the_command_line_says_what_the_library_does_unless_quiet(tmp_path):
    from support.helpers import run_cli
    env = {"OCRLAB_HOME": str(tmp_path / "h"), "OCRLAB_DB_PORT": str(free_port())}
    try:
        told = run_cli("stats", "--table", "none-yet", **env)
        assert "ocrlab: started local dynalite" in told.stderr, told.stderr
        run_cli("db", "stop", **env)
        quiet = run_cli("-q", "stats", "--table", "none-yet", **env)
        assert quiet.returncode == 2 and "started local dynalite" not in quiet.stderr, quiet.stderr
    finally:
        run_cli("db", "stop", **env)
