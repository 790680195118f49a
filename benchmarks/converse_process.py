"""The local Converse server in a process of its own, for benchmarks: it answers every request with a
good timesheet after `--delay` seconds, prints its URL, and stops when its standard input closes.

    python -m benchmarks.converse_process --delay 0.1

In a separate process its threads do not compete for the batch's interpreter, as Bedrock does not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from converse_server import ConverseServer, ok  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.1)
    args = parser.parse_args()
    server = ConverseServer().start()
    server.default = ok(delay=args.delay)
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
