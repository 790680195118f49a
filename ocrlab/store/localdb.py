"""The embedded store: dynalite (a DynamoDB-compatible server on LevelDB) on loopback, data on disk.

`pip install` plus Node.js is enough: the pinned dynalite is installed with npm into a cache
folder of ocrlab's own the first time it is needed.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ocrlab.config import settings
from ocrlab.errors import LocalDatabaseError
from ocrlab.files import write_text

log = logging.getLogger(__name__)

DYNALITE_VERSION = "4.0.0"


@dataclass
class ServerState:
    pid: int
    port: int
    data_dir: str
    started_at: float


def cache_dir() -> Path:
    return settings().cache_dir / "ocrlab" / f"dynalite-{DYNALITE_VERSION}"


def dynalite_cli() -> Path:
    return cache_dir() / "node_modules" / "dynalite" / "cli.js"


def install_dynalite() -> Path:
    """Install the pinned dynalite into the cache folder if it is not there yet."""
    cli = dynalite_cli()
    if cli.exists():
        return cli
    npm = shutil.which("npm")
    if not shutil.which("node") or not npm:
        raise LocalDatabaseError("the local database needs Node.js and npm (https://nodejs.org); "
                                 "or set OCRLAB_STORE=aws to use DynamoDB")
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    log.warning("installing dynalite %s into %s (once) ...", DYNALITE_VERSION, target)
    proc = subprocess.run([npm, "install", "--prefix", str(target), "--no-audit", "--no-fund",
                           "--loglevel=error", f"dynalite@{DYNALITE_VERSION}"],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not cli.exists():
        raise LocalDatabaseError(f"npm could not install dynalite {DYNALITE_VERSION}: "
                                 f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return cli


def _state_file(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}.server.json"


def _log_file(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}.server.log"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def _launched(args: list[str], port: int, data_dir: str) -> bool:
    """A command line of ocrlab's dynalite launcher serving `data_dir` on `port`."""
    return (any(a.endswith("dynalite_launcher.js") for a in args)
            and _option(args, "--port") == str(port) and _option(args, "--path") == data_dir)


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args[:-1] else None


def _is_ours(state: ServerState) -> bool:
    """The state file's pid still runs the dynalite it names (a pid reused by another program is not)."""
    return _pid_alive(state.pid) and _launched(_cmdline(state.pid), state.port, state.data_dir)


def _who_serves(port: int) -> str | None:
    """The data folder of an ocrlab dynalite on `port`, if one runs on this machine."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            args = _cmdline(int(entry.name))
            if any(a.endswith("dynalite_launcher.js") for a in args) and _option(args, "--port") == str(port):
                return _option(args, "--path")
    return None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _answers_dynamodb(port: int) -> bool:
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}", method="POST", headers={
        "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Date": "20200101T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return b"TableNames" in resp.read()
    except Exception:
        return False


def read_state(data_dir: Path) -> ServerState | None:
    path = _state_file(data_dir)
    try:
        return ServerState(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None


def default_data_dir() -> Path:
    return settings().local_data_dir


def status(data_dir: Path | None = None) -> ServerState | None:
    """The running server for this data folder, or None. A stale state file (its pid gone, or now
    another program's) is removed."""
    data_dir = Path(data_dir or default_data_dir()).resolve()
    state = read_state(data_dir)
    if state and not _is_ours(state):
        _state_file(data_dir).unlink(missing_ok=True)
        return None
    return state


def start(port: int | None = None, data_dir: Path | None = None) -> tuple[ServerState, bool]:
    """Start dynalite for `data_dir` on `port`; (state, started). Starting twice is harmless."""
    port = port or settings().db_port
    data_dir = Path(data_dir or default_data_dir()).resolve()
    state = read_state(data_dir)
    if state is not None:
        if _is_ours(state):
            if state.port != port:
                raise LocalDatabaseError(f"the local database for {data_dir} already runs on port {state.port} "
                                         f"(pid {state.pid}); stop it first or use --port {state.port}")
            return state, False
        log.info("removing stale pid file for pid %s (it no longer runs this database)", state.pid)
        _state_file(data_dir).unlink(missing_ok=True)
    if _port_open(port):
        what = "a DynamoDB-compatible server" if _answers_dynamodb(port) else "another program"
        raise LocalDatabaseError(f"port {port} is already in use by {what} not started by ocrlab for "
                                 f"{data_dir}; stop it or choose another with --port")
    cli = install_dynalite()
    data_dir.mkdir(parents=True, exist_ok=True)
    logf = open(_log_file(data_dir), "ab")
    launcher = Path(__file__).with_name("dynalite_launcher.js")
    proc = subprocess.Popen(
        ["node", str(launcher), str(cli), "--host", "127.0.0.1", "--port", str(port), "--path", str(data_dir),
         "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"],
        stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    logf.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _log_file(data_dir).read_text(errors="replace")[-800:]
            raise LocalDatabaseError(f"dynalite exited at start (code {proc.returncode}): {tail.strip()}")
        if _answers_dynamodb(port):
            state = ServerState(proc.pid, port, str(data_dir), time.time())
            write_text(json.dumps(asdict(state)), _state_file(data_dir))
            return state, True
        time.sleep(0.1)
    proc.kill()
    raise LocalDatabaseError(f"dynalite did not answer on port {port} within 20 s; see {_log_file(data_dir)}")


def stop(data_dir: Path | None = None) -> ServerState | None:
    """Stop the server for `data_dir`; None if none was running. Only a process verified to be that
    server (status) is ever signalled."""
    data_dir = Path(data_dir or default_data_dir()).resolve()
    state = status(data_dir)
    if state is None:
        return None
    try:
        os.killpg(state.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    while _pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(state.pid):
        os.killpg(state.pid, signal.SIGKILL)
    _state_file(data_dir).unlink(missing_ok=True)
    return state


def ensure_running(port: int | None = None) -> ServerState:
    """Start the local server of this data folder on demand (commands that need the store call this).

    A server on the port that is not this folder's is refused, with what answers there: writing
    into another folder's database (or a stranger's) while saying this one would lose track of data.
    """
    port = port or settings().db_port
    data_dir = default_data_dir().resolve()
    state = status(data_dir)
    if state and state.port == port:
        return state
    if state:
        raise LocalDatabaseError(f"the local database for {data_dir} runs on port {state.port}, not {port}; "
                                 f"set OCRLAB_DB_PORT={state.port} or stop it with `ocrlab db stop`")
    if _port_open(port):
        other = _who_serves(port)
        what = (f"ocrlab's local database of {other}" if other else
                "a DynamoDB-compatible server not started by ocrlab" if _answers_dynamodb(port) else "another program")
        raise LocalDatabaseError(f"port {port} is taken by {what}, not the database of {data_dir}; "
                                 "stop it, or choose another port with OCRLAB_DB_PORT")
    state, started = start(port)
    if started:
        log.info("started local dynalite on port %s (pid %s), data in %s", port, state.pid, state.data_dir)
    return state
