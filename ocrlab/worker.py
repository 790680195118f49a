"""One call in a fresh Python process, beside the caller's own work: for CPU-bound reads.

Taking DynamoDB's answers apart is Python work (botocore's parser holds the GIL), so two reads in two
threads take as long as one after the other; in two processes they take as long as the longer. The
call and its result travel pickled (stdin in, a file out). Unlike multiprocessing's spawn, the child
never re-imports the caller's main module: a script without a `__main__` guard, a notebook kernel and
the command line are all safe callers.

    python -m ocrlab.worker RESULT_PATH     (the child's side; a pickled (function, args) on stdin)
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from ocrlab.errors import OcrlabError


class WorkerFailed(OcrlabError):
    """The worker process ended without a result (killed, out of memory, or a result it could not pickle)."""


class Running:
    """A call running in its own process. `result()` waits for it and returns its value or raises its
    error; leaving the `with` block ends the process if it still runs (the caller gave up on it)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        handle, path = tempfile.mkstemp(prefix="ocrlab-worker-", suffix=".pickle")
        os.close(handle)
        self._path = Path(path)
        self._errors = tempfile.TemporaryFile()  # its standard error, for the reason it failed
        self._process = subprocess.Popen([sys.executable, "-m", "ocrlab.worker", path], stdin=subprocess.PIPE,
                                         stderr=self._errors)
        try:
            self._process.stdin.write(pickle.dumps((fn, args)))  # type: ignore[union-attr]
            self._process.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:  # the child died at once: result() says why
            pass

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *_: object) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._errors.close()
        self._path.unlink(missing_ok=True)

    def result(self) -> Any:
        self._process.wait()
        try:
            ok, value = pickle.loads(self._path.read_bytes())
        except (OSError, EOFError, pickle.UnpicklingError):
            self._errors.seek(0)
            lines = self._errors.read().decode("utf-8", "replace").strip().splitlines()
            raise WorkerFailed(f"worker process ended ({self._process.returncode}) without a result"
                               + (f": {lines[-1]}" if lines else "")) from None
        if not ok:
            raise value
        return value


def main(result_path: str) -> int:
    fn, args = pickle.load(sys.stdin.buffer)
    try:
        outcome = (True, fn(*args))
    except Exception as exc:  # handed to the caller, who raises it
        outcome = (False, exc)
    Path(result_path).write_bytes(pickle.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
