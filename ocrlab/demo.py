"""`make demo`: the main job on the embedded defaults, from a fresh machine."""
from __future__ import annotations

import sys

from . import localdb
from .cli import main as cli


def run() -> int:
    state, _ = localdb.start()
    print(f"local dynalite on port {state.port}, data in {state.data_dir}")
    from .failure_log import log_failed_image
    for key, ftype, message, code in [
        ("demo/bad-empty.png", "INPUT_ERROR", "demo/bad-empty.png is empty (0 bytes)", "EmptyFile"),
        ("demo/week-43.png", "PARSING_ERROR", "model stopped with stopReason=max_tokens", "StopReason"),
        ("demo/week-44.png", "THROTTLING_ERROR", "Rate exceeded", "ThrottlingException"),
    ]:
        log_failed_image("ocrlab", key, ftype, message, None, {"error_code": code})
    return cli(["stats"])


if __name__ == "__main__":
    sys.exit(run())
