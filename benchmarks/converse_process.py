"""The local Converse server in a process of its own, for benchmarks: it answers every request with a
good timesheet after `--delay` seconds, prints its URL, and stops when its standard input closes.

    python -m benchmarks.converse_process --delay 0.1 [--rps 40] [--tpm 3000000]

With `--rps` or `--tpm` it enforces those quotas as Bedrock does (tests/support/converse_server.py, Quota);
a line "counts" on its standard input makes it print the requests received and refused so far.

In a separate process its threads do not compete for the batch's interpreter, as Bedrock does not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.converse_server import ConverseServer, Quota, ok  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--rps", type=float, default=None, help="requests a second the quota allows")
    parser.add_argument("--tpm", type=float, default=None, help="tokens a minute the quota allows")
    args = parser.parse_args()
    server = ConverseServer().start()
    server.default = ok(delay=args.delay)
    if args.rps is not None or args.tpm is not None:
        server.quota = Quota(args.rps, args.tpm)
    print(server.url, flush=True)
    for line in sys.stdin:
        if line.strip() == "counts":
            print(len(server.requests), server.throttled, flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
