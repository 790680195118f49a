"""What the rest of ocrlab sees of a quota: each process's status, their tally over a batch, and a
caller's deadline for waiting on it (a Lambda invocation's end).

The pace itself is ocrlab.ocr.engines.pacing; an engine with a quota (Bedrock) reports a `QuotaStatus`
with every image, so a batch adds up what its threads, worker processes or Dask workers saw.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class QuotaStatus:
    """One engine's view of its quota: the process it runs in, the pace of its calls now
    (requests a second; None while nothing limits them) and how many of its calls were throttled."""

    rate: float | None
    throttled: int
    worker: str = WORKER


class QuotaTally:
    """The latest status from each process of a batch: their rates add up (each paces its own
    share of the quota), and so do their throttled calls."""

    def __init__(self) -> None:
        self._latest: dict[str, QuotaStatus] = {}

    def add(self, status: QuotaStatus | None) -> bool:
        """Take a status (None: the engine has no quota); True when there was one."""
        if status is None:
            return False
        self._latest[status.worker] = status
        return True

    @property
    def throttled(self) -> int:
        return sum(s.throttled for s in self._latest.values())

    @property
    def rate(self) -> float | None:
        rates = [s.rate for s in self._latest.values() if s.rate is not None]
        return round(sum(rates), 2) if rates else None

    def postfix(self) -> str:
        """For a progress bar: the pace and the throttled calls so far."""
        rate = self.rate
        return f"rate {rate:.1f}/s, throttled {self.throttled}" if rate is not None else f"throttled {self.throttled}"


_deadline: ContextVar[float | None] = ContextVar("ocrlab_quota_deadline", default=None)


@contextmanager
def waiting_until(deadline: float | None) -> Iterator[None]:
    """Within the block, an engine waits for its quota until `deadline` (time.monotonic) at the latest."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline() -> float | None:
    """The deadline the caller set for waiting on a quota, if any."""
    return _deadline.get()
