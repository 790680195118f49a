"""`ocrlab db start|stop|status`: a real dynalite process, data on disk."""
from __future__ import annotations

import json
import socket
import subprocess

import pytest
from support.helpers import free_port, run_cli

from ocrlab.errors import LocalDatabaseError
from ocrlab.store import localdb
from ocrlab.store.failure_log import get_all_failed_images, log_failed_image


def cli(*args: str, home) -> subprocess.CompletedProcess:
    return run_cli(*args, OCRLAB_HOME=str(home), OCRLAB_STORE="local")


def test_start_twice_status_stop_and_data_survives(tmp_path, dynalite, store_through):
    port = str(free_port())
    home = tmp_path / "home"
    first = cli("db", "start", "--port", port, home=home)
    assert first.returncode == 0, first.stderr
    assert "started" in first.stdout and "created table 'ocrlab'" in first.stdout
    again = cli("db", "start", "--port", port, home=home)
    assert again.returncode == 0 and "already running" in again.stdout
    assert cli("db", "status", home=home).returncode == 0

    store = store_through(f"http://127.0.0.1:{port}", "ocrlab")
    log_failed_image(store, "persist.png", "OCR_ERROR", "kept on disk")

    stop = cli("db", "stop", home=home)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    status = cli("db", "status", home=home)
    assert status.returncode != 0 and "not running" in status.stdout
    assert (home / "dynamodb").is_dir()

    assert cli("db", "start", "--port", port, home=home).returncode == 0
    try:
        [record] = get_all_failed_images(store_through(f"http://127.0.0.1:{port}", "ocrlab"))
        assert record["ImageKey"] == "persist.png" and record["ErrorMessage"] == "kept on disk"
    finally:
        assert cli("db", "stop", home=home).returncode == 0


def test_stale_pid_file_is_reported_and_replaced(tmp_path, dynalite, caplog):
    data_dir = tmp_path / "db"
    data_dir.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "db.server.json").write_text(json.dumps(
        {"pid": dead.pid, "port": 1, "data_dir": str(data_dir), "started_at": 0}))
    port = free_port()
    with caplog.at_level("INFO", logger="ocrlab"):
        state, started = localdb.start(port, data_dir)
    try:
        assert started and state.pid != dead.pid
        assert "stale pid file" in caplog.text
    finally:
        localdb.stop(data_dir)


def test_port_in_use_gives_a_clear_message(tmp_path, dynalite):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(LocalDatabaseError, match=f"port {port} is already in use by another program"):
            localdb.start(port, tmp_path / "db")
        out = cli("db", "start", "--port", str(port), home=tmp_path / "h")
        assert out.returncode != 0 and "already in use" in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_first_start_installs_the_pinned_dynalite_into_its_own_cache(tmp_path, monkeypatch, dynalite, caplog):
    monkeypatch.setenv("OCRLAB_CACHE", str(tmp_path / "cache"))
    port, data_dir = free_port(), tmp_path / "db"
    state, started = localdb.start(port, data_dir)
    try:
        assert started and f"installing dynalite {localdb.DYNALITE_VERSION}" in caplog.text
        cli_js = tmp_path / "cache" / "ocrlab" / f"dynalite-{localdb.DYNALITE_VERSION}" / "node_modules" / "dynalite" / "cli.js"
        assert cli_js.is_file()
        package = json.loads((cli_js.parent / "package.json").read_text())
        assert package["version"] == localdb.DYNALITE_VERSION
    finally:
        localdb.stop(data_dir)


def test_a_client_dying_mid_request_does_not_take_the_server_down(tmp_path, dynalite):
    import struct
    import time
    port, data_dir = free_port(), tmp_path / "db"
    state, _ = localdb.start(port, data_dir)
    try:
        for _ in range(3):  # as a batch killed with SIGKILL while sending a request
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n"
                         b"X-Amz-Target: DynamoDB_20120810.PutItem\r\nContent-Length: 5000\r\n\r\n{\"TableName\":")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
            sock.close()
        time.sleep(0.3)
        assert localdb.status(data_dir) is not None and localdb._answers_dynamodb(port)
        assert "still serving" in (tmp_path / "db.server.log").read_text()
    finally:
        localdb.stop(data_dir)
