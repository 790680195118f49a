"""The pace of Bedrock calls in one process, learned from throttling: additive increase, multiplicative decrease.

Bedrock's quotas are per account and model (requests a minute, tokens a minute), and a call over
either is refused at once with a ThrottlingException. Every Bedrock engine of a process calling the
same endpoint and model shares one `RateController` (`controller_for`), so the batch's threads (or a
Dask worker's) find the quota together instead of each retrying on its own:

- Calls are paced: each starts 1/rate after the one before, and after the tokens it will cost
  (the mean of recent answers' `usage`) have been earned at the token rate. No limit is known until
  the first throttle (or `--rate` gives the request limit): until then calls go as fast as the
  batch's concurrency sends them.
- A throttle lowers both limits to BETA times what got through in the last WINDOW seconds: the
  service let that much through, so its quota is about there. A throttle does not say which quota it
  hit (ocrlab reads error codes, not messages), so both are lowered; successes raise each again. Only
  one decrease per round: a call reserved before the last decrease says nothing new.
- Each success raises the limits: by GROWTH of the rate of the last decrease per second (the
  additive increase that probes for more), and, once no throttle has come for CALM seconds, twice as
  high every FAST_DOUBLING seconds (the quota freed after being exhausted, or there is more of it).
- A call reserves its start at most HORIZON seconds ahead; later ones look again then, so a pace that
  rises is taken up at once rather than after the turns handed out at the old one.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

BETA = 0.9             # a throttle keeps this share of what got through
GROWTH = 0.05          # the limits grow by this share of the last decrease's rate per second
CALM = 5.0             # seconds without a throttle after which they grow fast
FAST_DOUBLING = 1.5    # growing fast, they double in this many seconds
HORIZON = 1.0          # seconds ahead a call may reserve its start
WINDOW = 2.0           # seconds over which "what got through" is measured
MIN_RATE = 0.2         # requests a second: the slowest pace a throttle can bring
TOKEN_MEMORY = 0.2     # weight of the newest answer in the mean tokens per call


@dataclass(frozen=True)
class Slot:
    """One call's place in the pace: when it was reserved, and the tokens it was expected to cost."""

    reserved_at: float
    start_at: float
    tokens: float


class _Limit:
    """One limit in units a second (requests, or tokens), None until known; `free_at` paces it."""

    def __init__(self, rate: float | None, cap: float | None, floor: float) -> None:
        self.rate, self.cap, self.floor = rate, cap, floor
        self.cut_to: float | None = None  # where the last decrease brought it
        self.free_at = 0.0

    def start(self, now: float) -> float:
        return now if self.rate is None else max(now, self.free_at)

    def spend(self, start: float, units: float) -> None:
        if self.rate is not None:
            self.free_at = max(self.free_at, start) + units / self.rate

    def refund(self, units: float) -> None:
        """The call cost `units` more (or, negative, less) than was spent for it."""
        if self.rate is not None:
            self.free_at += units / self.rate

    def cut(self, through: float) -> None:
        current = self.rate if self.rate is not None else math.inf
        self.rate = self._capped(max(self.floor, BETA * min(current, through)))
        self.cut_to = self.rate

    def grow(self, seconds: float, calm: bool) -> None:
        if self.rate is None:
            return
        if calm or self.cut_to is None:
            self.rate *= 2 ** (seconds / FAST_DOUBLING)
        else:
            self.rate += GROWTH * self.cut_to * seconds
        self.rate = self._capped(self.rate)

    def _capped(self, rate: float) -> float:
        return min(rate, self.cap) if self.cap is not None else rate


class RateController:
    """Paces calls to one quota for every thread of a process. Thread safe; `acquire` sleeps outside the lock."""

    def __init__(self, cap: float | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if cap is not None and cap <= 0:
            raise ValueError(f"a rate cap must be above 0, got {cap}")
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self.requests = _Limit(cap, cap, MIN_RATE)
        self.tokens = _Limit(None, None, 0.0)
        self.tokens_per_call = 0.0   # mean of recent answers' usage; 0 until one reports it
        self._through: deque[tuple[float, float]] = deque()  # (when, tokens) of calls the service took
        self._through_tokens = 0.0
        self._started = clock()
        self._last_cut = -math.inf
        self._last_grow = self._started
        self.calls = 0
        self.throttled = 0

    @property
    def rate(self) -> float | None:
        """Requests a second the calls are paced at now (None: not limited yet), tokens included."""
        with self._lock:
            return self._effective_rate()

    def _effective_rate(self) -> float | None:
        rates = [r for r in (self.requests.rate,
                             self.tokens.rate / self.tokens_per_call
                             if self.tokens.rate is not None and self.tokens_per_call else None) if r is not None]
        return min(rates) if rates else None

    def acquire(self, deadline: float | None = None) -> Slot:
        """Wait for this call's turn; at `deadline` at the latest (the caller's last try, made off the pace)."""
        while True:
            with self._lock:
                now = self._clock()
                start = max(self.requests.start(now), self.tokens.start(now))
                last_try = deadline is not None and deadline < start
                if last_try and deadline - now <= HORIZON:  # type: ignore[operator]
                    slot = Slot(now, deadline, 0.0)  # type: ignore[arg-type]
                    break
                if start - now <= HORIZON:
                    slot = Slot(now, start, self.tokens_per_call)
                    self.requests.spend(start, 1)
                    self.tokens.spend(start, slot.tokens)
                    break
            self._sleep(min(start - now - HORIZON, HORIZON) if not last_try
                        else min(deadline - now - HORIZON, HORIZON))  # type: ignore[operator]
        with self._lock:
            self.calls += 1
        wait = slot.start_at - self._clock()
        if wait > 0:
            self._sleep(wait)
        return slot

    def succeeded(self, slot: Slot, tokens: int | None = None) -> None:
        """The service answered (with `tokens` from its usage, when it said)."""
        with self._lock:
            now = self._clock()
            spent = float(tokens or 0)
            self._remember(now, spent)
            if tokens:
                self.tokens.refund(spent - slot.tokens)
                self.tokens_per_call = (spent if not self.tokens_per_call
                                        else (1 - TOKEN_MEMORY) * self.tokens_per_call + TOKEN_MEMORY * spent)
            seconds, self._last_grow = min(now - self._last_grow, 1.0), now
            calm = now - self._last_cut >= CALM
            self.requests.grow(seconds, calm)
            self.tokens.grow(seconds, calm)

    def answered(self, slot: Slot) -> None:
        """The service took the call but it failed otherwise: it counted against the quota; no growth."""
        with self._lock:
            self._remember(self._clock(), 0.0)

    def throttled_call(self, slot: Slot) -> None:
        """The service refused the call: lower the limits, once per round."""
        with self._lock:
            self.throttled += 1
            self.tokens.refund(-slot.tokens)  # a refused call costs no tokens
            if slot.reserved_at < self._last_cut:
                return
            now = self._clock()
            self._forget(now)
            span = max(min(WINDOW, now - self._started), 1e-3)
            self.requests.cut(len(self._through) / span)
            if self.tokens_per_call:
                self.tokens.cut(self._through_tokens / span)
            self._last_cut = self._last_grow = now

    def _remember(self, now: float, tokens: float) -> None:
        self._through.append((now, tokens))
        self._through_tokens += tokens
        self._forget(now)

    def _forget(self, now: float) -> None:
        while self._through and self._through[0][0] < now - WINDOW:
            self._through_tokens -= self._through.popleft()[1]


_shared: dict[tuple[str, ...], RateController] = {}
_shared_lock = threading.Lock()


def controller_for(*key: str, cap: float | None = None) -> RateController:
    """The process's controller for one quota (endpoint, region and model, say), made on first use.
    Engines with another `cap` get their own, so each keeps its own cap."""
    with _shared_lock:
        full = (*key, repr(cap))
        if full not in _shared:
            _shared[full] = RateController(cap)
        return _shared[full]
