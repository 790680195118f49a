"""The soak run (`make soak`): a long batch under every fault at once, then the books must balance.

    python -m benchmarks.soak [--images N] [--out benchmarks/results.json]

2,000 images through the Bedrock engine against the local Converse server, which answers 30% of
calls with a fault (throttling, a server error, a hang past the read timeout, a body that is not
JSON, a `max_tokens` stop); the DynamoDB fault proxy throttles 10% of writes; dynalite is killed
(SIGKILL) and restarted twice; the batch is killed with SIGKILL three times and started again;
an identical second batch runs alongside as a second machine (its own host name and boot, through
unshare) whose wall clock is an hour behind (faketime). Then the spool
is replayed by a replay killed (SIGKILL) half way and one run again, the batch run once more for
what the killed runs left, and everything is checked by Queries over the table and the spool:
every image has exactly one latest outcome, and it is the result for every image that has one
(whatever the writers' clocks said), at most one OCR_RESULT, attempt numbers 1..n with n its
failure count, no record twice, nothing left in the spool. The figures go to results.json under
"soak".
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the Converse server and the fault proxy live with the tests

from support.converse_server import ConverseServer, Received, Reply, error, ok  # noqa: E402
from support.fault_proxy import FaultProxy  # noqa: E402
from support.helpers import free_port, on_another_machine  # noqa: E402

from ocrlab.records import FAILED_IMAGE, OCR_RESULT  # noqa: E402
from ocrlab.runs.sources import LocalKeys  # noqa: E402

TABLE = "soak"
VERSION = "2.0.0-2025-10-25"
READ_TIMEOUT = 1.0
SKEW_HOURS = 1  # the twin batch's wall clock is this far behind


def faulty_model(seed: int = 7) -> Any:
    """A Converse answer for each request: 70% a good timesheet, 30% one of five faults."""
    rng = random.Random(seed)
    faults = [lambda: error("ThrottlingException"), lambda: error("InternalServerException"),
              lambda: ok(delay=READ_TIMEOUT + 0.5), lambda: Reply(200, "{not json"),
              lambda: ok(stop_reason="max_tokens")]

    def answer(_: Received) -> Reply:
        return rng.choice(faults)() if rng.random() < 0.30 else ok()
    return answer


def make_images(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        buffer = io.BytesIO()
        Image.new("RGB", (32 + i % 13, 24 + i % 7), (i % 256, (i // 256) % 256, 200)).save(buffer, "PNG")
        (folder / f"scan-{i:05d}.png").write_bytes(buffer.getvalue())


def _dynalite_pid(data_dir: Path) -> int:
    from ocrlab.store import localdb
    state = localdb.status(data_dir)
    assert state is not None
    return state.pid


def soak(n: int) -> dict[str, Any]:
    from ocrlab.store import localdb, open_store
    work = Path(tempfile.mkdtemp(prefix="ocrlab-soak-"))
    # The twin batch runs as a second machine would (its own host name and boot) with a wall clock an hour behind.
    twin = on_another_machine(work, f"-{SKEW_HOURS}h")
    if twin is None:
        raise SystemExit("make soak runs a twin batch as a second machine with a skewed clock: it needs root "
                         "(unshare) and faketime (apt-get install faketime)")
    started = time.perf_counter()
    home, images = work / "home", work / "images"
    make_images(images, n)
    data_dir = home / "dynamodb"
    port = free_port()
    os.environ.update(OCRLAB_HOME=str(home), OCRLAB_STORE="local", OCRLAB_DB_PORT=str(port),
                      OCRLAB_VERSION_FILE=str(HERE.parent / "OCR_VERSION.txt"))
    localdb.start(port, data_dir)
    direct = open_store(TABLE)  # the checks read dynalite directly, not through the proxy
    server = ConverseServer().start()
    server.default = faulty_model()
    proxy = FaultProxy(port, write_throttle_rate=0.10, seed=11)
    proxy.__enter__()
    env = {**os.environ, "OCRLAB_STORE": "aws", "AWS_ENDPOINT_URL_DYNAMODB": proxy.url,
           "AWS_ACCESS_KEY_ID": "soak", "AWS_SECRET_ACCESS_KEY": "soak", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": server.url, "OCRLAB_STORE_MAX_ATTEMPTS": "3",
           # the twin's clock is SKEW_HOURS behind: its claims must not look expired to the others
           "OCRLAB_CLOCK_SKEW": str(SKEW_HOURS * 3600 + 120)}
    summaries = work / "summaries"
    summaries.mkdir()
    runs = 0

    def batch(skewed: bool = False) -> subprocess.Popen[str]:
        nonlocal runs
        runs += 1
        return subprocess.Popen(
            [*(twin if skewed else []), sys.executable, "-m", "ocrlab", "batch", str(images), "--engine", "bedrock", "--table", TABLE,
             "--concurrency", "16", "--no-progress", "--summary-json", str(summaries / f"run-{runs}.json"),
             "-E", f"read_timeout={READ_TIMEOUT}", "-E", "max_attempts=3", "-E", "model_retries=1",
             "-E", "model_retry_backoff=0.05"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def done() -> int:
        return sum(1 for _ in direct.records_by_type(OCR_RESULT, attributes=[]))

    def replay_killed_half_way() -> str:
        """A replay killed (SIGKILL) once it has handled half of what waits, mid-write as likely as not."""
        waiting = direct.spool.pending()
        progress = direct.spool.path.with_suffix(".replaying")
        proc = subprocess.Popen([sys.executable, "-m", "ocrlab", "replay", "--table", TABLE], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        handled = 0
        while proc.poll() is None and handled < waiting // 2:
            try:
                handled = int(progress.read_text().split()[1])
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.005)
        if proc.poll() is not None:
            return f"finished before half of {waiting} (exit {proc.returncode})"
        proc.kill()
        proc.wait()
        return f"killed after {handled} of {waiting} lines"

    def replay() -> str:  # until nothing waits (a throttled write stops one pass; the next goes on)
        for _ in range(5):
            out = subprocess.run([sys.executable, "-m", "ocrlab", "replay", "--table", TABLE], env=env,
                                 capture_output=True, text=True, timeout=600)
            if out.returncode == 0:
                return out.stdout.strip()
        return (out.stdout + out.stderr).strip()

    events: list[str] = []
    a = b = batch()
    # The twin starts once the first has failed some images: it retries them, and its successes carry
    # timestamps an hour before those failures.
    plan = [(0.10, "start twin"), (0.15, "kill batch"), (0.25, "kill dynalite"), (0.35, "kill batch"),
            (0.55, "kill batch"), (0.65, "kill dynalite")]
    try:
        for share, what in plan:
            while _results_seen(done) < share * n * 0.7 and a.poll() is None:
                time.sleep(0.2)
            if what == "start twin":
                b = batch(skewed=True)
                events.append(f"twin started at ~{_last_seen} results")
            elif what == "kill batch" and a.poll() is None:
                a.send_signal(signal.SIGKILL)
                a.wait()
                events.append(f"batch SIGKILL at ~{_last_seen} results")
                a = batch()
            elif what == "kill dynalite":
                os.killpg(_dynalite_pid(data_dir), signal.SIGKILL)
                events.append(f"dynalite SIGKILL at ~{_last_seen} results")
                time.sleep(3)
                localdb.start(port, data_dir)
        for proc in (a, b):
            proc.wait(timeout=900)
        exit_codes = [a.returncode, b.returncode]
        replays = [replay_killed_half_way(), replay()]
        final = batch()                       # what killed runs left behind, taken over at once
        final.wait(timeout=900)
        exit_codes.append(final.returncode)
        replays.append(replay())
        failed_runs = [proc.stderr.read()[-600:] for proc in (a, b, final) if proc.returncode and proc.stderr]
        figures = _check(direct, n, images)
    finally:
        proxy.__exit__(None, None, None)
        server.stop()
        localdb.stop(data_dir)
    completed = [json.loads(p.read_text()) for p in sorted(summaries.glob("*.json"))]
    figures.update(
        images=n, model_requests=len(server.requests), write_throttles=proxy.throttled, events=events,
        batch_runs=runs, exit_codes=exit_codes, failed_runs=failed_runs, replays=replays,
        completed_runs={"runs": len(completed), "processed": sum(s["processed"] for s in completed),
                        "spooled": sum(s["spooled"] for s in completed),
                        "unwritten": sum(s["unwritten"] for s in completed),
                        "skipped_reasons": dict(sum((Counter(s["skipped_reasons"]) for s in completed), Counter()))},
        seconds=round(time.perf_counter() - started, 1))
    return figures


_last_seen = 0


def _results_seen(count: Any) -> int:
    global _last_seen
    try:
        _last_seen = count()
    except Exception:  # dynalite is down for a moment: keep the last figure
        pass
    return _last_seen


def _check(store: Any, n: int, images: Path) -> dict[str, Any]:
    """Every invariant of a run under faults, read back from the table and the spool."""
    records = list(store.records_by_type(FAILED_IMAGE)) + list(store.records_by_type(OCR_RESULT))
    by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_image[record["ImageKey"]].append(record)
    keys = LocalKeys()
    names = sorted(keys.key(p) for p in images.glob("*.png"))
    latest = {r["ImageKey"]: r for r in store.latest_summary(VERSION)}
    problems: list[str] = []
    results_twice = attempts_broken = latest_wrong = skewed_before = 0
    for name in names:
        mine = by_image.get(name, [])
        if sum(r["RecordType"] == OCR_RESULT for r in mine) > 1:
            results_twice += 1
        # Nothing runs an image again once it succeeded: its result is its latest outcome, even when a
        # writer's clock stamped the result before an earlier failure.
        result = next((r for r in mine if r["RecordType"] == OCR_RESULT), None)
        if result is not None and latest.get(name, {}).get("RecordType") != OCR_RESULT:
            latest_wrong += 1
            problems.append(f"{name}: latest outcome {latest.get(name, {}).get('FailureType')} after a result")
        skewed_before += result is not None and any(r["FailureTimestamp"] > result["FailureTimestamp"]
                                                    for r in mine if r["RecordType"] == FAILED_IMAGE)
        numbers = sorted(int(r["AttemptNumber"]) for r in mine if r["RecordType"] == FAILED_IMAGE)
        if numbers != list(range(1, store.attempt_count(name) + 1)):
            attempts_broken += 1
            problems.append(f"{name}: attempts {numbers}, count {store.attempt_count(name)}")
    ids = Counter(r["RecordId"] for r in records)
    outcome = Counter("OK" if r["RecordType"] == OCR_RESULT else r.get("FailureType") for r in latest.values())
    checks = {
        "every_image_has_one_latest_outcome": sorted(latest) == names,
        "latest_outcome_right_whatever_the_clocks": latest_wrong == 0,
        "at_most_one_result_per_image": results_twice == 0,
        "attempt_numbers_consecutive": attempts_broken == 0,
        "no_record_twice": all(c == 1 for c in ids.values()),
        "spool_empty_after_replay": store.spool.pending() == 0,
    }
    return {"checks": checks, "held": all(checks.values()), "records_stored": len(records),
            "records_spooled_left": store.spool.pending(), "records_rejected": store.spool.rejected(),
            "records_lost_marked": sum(r.get("ErrorCode") == "RunLost" for r in records),
            "latest_outcomes": dict(outcome), "results_stamped_before_an_earlier_failure": skewed_before,
            "problems": problems[:20]}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args()
    figures = soak(args.images)
    print(json.dumps(figures, indent=2))
    out = Path(args.out)
    results = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    results["soak"] = {**figures, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if figures["held"] else 1


if __name__ == "__main__":
    sys.exit(main())
