"""The pace of Bedrock calls in one process, learned from throttling: additive increase, multiplicative decrease.

Bedrock's quotas are per account and model (requests a minute, tokens a minute), and a call over
either is refused at once with a ThrottlingException. Every Bedrock engine of a process calling the
same endpoint and model shares one `RateController` (`controller_for`), so the batch's threads (or a
Dask worker's) find the quota together instead of each retrying on its own:

- Calls are paced: each starts 1/rate after the one before, and once the tokens it will cost (the
  mean of recent answers' `usage`) have been earned at the token rate. No limit is known until the
  first throttle (or `--rate` sets the request limit): until then calls go as fast as the batch's
  concurrency sends them.
- A throttle lowers both limits to BETA times what got through in the last WINDOW seconds (the
  service let that much through, so its quota is about there), but at most by half in one round, so
  a quota exhausted for a while brings an exponential back-off rather than a fall to the floor. A
  throttle does not say which quota it hit (ocrlab reads error codes, not messages), so both limits
  are lowered, and successes raise each again. One decrease per round: a call whose turn was handed
  out before the last decrease says nothing new, and such turns are void when they come (the call
  takes a new one at the new pace), so a decrease holds at once.
- Each success raises the limits by GROWTH of the last decrease's rate per second (the additive
  increase that probes for more) and, once no throttle has come for CALM seconds, twice as high
  every FAST_DOUBLING seconds (the quota freed, or there is more of it). A limit never grows past
  twice what is being sent: a batch that cannot use its pace does not inflate it.
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

BETA = 0.9             # a throttle keeps this share of what got through...
HALF = 0.5             # ...but never less than this share of the limit, in one round
GROWTH = 0.05          # the limits grow by this share of the last decrease's rate per second
CALM = 5.0             # seconds without a throttle after which they grow fast
FAST_DOUBLING = 1.5    # growing fast, they double in this many seconds
WINDOW = 2.0           # seconds over which what got through, and what was sent, are measured
SHORTEST = 0.1         # the shortest span a sending rate is measured over
HORIZON = 1.0          # seconds ahead a call may reserve its start
MIN_RATE = 0.2         # requests a second: the slowest pace throttling can bring
TOKEN_MEMORY = 0.2     # weight of the newest answer in the mean tokens per call


@dataclass(frozen=True)
class Slot:
    """One call's place in the pace: its number (in the order reserved), when it may start, and the
    tokens set aside for it; a last try is off the pace and sets nothing aside."""

    number: int
    start_at: float
    tokens: float = 0.0
    last_try: bool = False


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
        """The call cost `units` less (or, negative, more) than was set aside for it."""
        if self.rate is not None:
            self.free_at -= units / self.rate

    def cut(self, through: float, sent: float, now: float, units: float) -> None:
        """Lower the limit after a throttle; the turns handed out are void, the next is a turn away."""
        current = self.rate if self.rate is not None else sent
        self.rate = self._capped(max(self.floor, HALF * current, BETA * min(current, through)))
        self.cut_to = self.rate
        self.free_at = now + units / self.rate

    def grow(self, seconds: float, calm: bool, sent: float) -> None:
        if self.rate is None:
            return
        if calm or self.cut_to is None:
            grown = self.rate * 2 ** (seconds / FAST_DOUBLING)
        else:
            grown = self.rate + GROWTH * self.cut_to * seconds
        self.rate = self._capped(max(self.rate, min(grown, 2 * sent)))

    def _capped(self, rate: float) -> float:
        return min(rate, self.cap) if self.cap is not None else rate


class RateController:
    """Paces calls to one quota for every thread of a process. Thread safe; waits happen outside the lock."""

    def __init__(self, cap: float | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if cap is not None and cap <= 0:
            raise ValueError(f"a rate cap must be above 0, got {cap}")
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self.requests = _Limit(cap, cap, MIN_RATE)
        self.tokens = _Limit(None, None, 0.0)
        self.tokens_per_call = 0.0   # mean of recent answers' usage; 0 until one reports it
        self._sent: deque[float] = deque()                   # when calls were reserved
        self._through: deque[tuple[float, float]] = deque()  # when the service took a call, and its tokens
        self._through_tokens = 0.0
        self._started = clock()
        self._last_cut = -math.inf
        self._reserved = 0   # turns handed out, each numbered
        self._cut_after = 0  # the number of the last turn handed out before the last decrease
        self._last_grow = self._started
        self.calls = 0      # every call made through the pace
        self.throttled = 0  # those the service refused
        self.refusing_since: float | None = None  # the first throttle since the service last took a call

    @property
    def rate(self) -> float | None:
        """Requests a second the calls are paced at now, the token limit included (None: not limited)."""
        with self._lock:
            rates = [self.requests.rate]
            if self.tokens.rate is not None and self.tokens_per_call:
                rates.append(self.tokens.rate / self.tokens_per_call)
            known = [r for r in rates if r is not None]
            return min(known) if known else None

    def acquire(self, deadline: float | None = None) -> Slot:
        """Wait for this call's turn, or until `deadline` at the latest: the caller's last try, made
        off the pace (it sets nothing aside, so it delays no one). A turn handed out before a decrease
        is void when it comes: the call takes a new one at the new pace."""
        while True:
            slot = self._reserve(deadline)
            wait = slot.start_at - self._clock()
            if wait > 0:
                self._sleep(wait)
            with self._lock:
                if slot.number > self._cut_after or slot.last_try:
                    self.calls += 1
                    self._sent.append(self._clock())
                    return slot

    def _reserve(self, deadline: float | None) -> Slot:
        while True:
            with self._lock:
                now = self._clock()
                start = max(self.requests.start(now), self.tokens.start(now))
                go = min(start, deadline) if deadline is not None else start
                if go - now <= HORIZON:
                    self._reserved += 1
                    if go < start:
                        return Slot(self._reserved, go, last_try=True)
                    self.requests.spend(start, 1)
                    self.tokens.spend(start, self.tokens_per_call)
                    return Slot(self._reserved, start, self.tokens_per_call)
            self._sleep(min(go - now - HORIZON, HORIZON))

    def succeeded(self, slot: Slot, tokens: int | None = None) -> None:
        """The service answered; `tokens`, the call's cost from the answer's usage, when it said."""
        with self._lock:
            now = self._clock()
            spent = float(tokens or 0)
            self._took(now, spent)
            self.refusing_since = None
            if tokens:
                if slot.number > self._cut_after:  # else the decrease started the pace afresh
                    self.tokens.refund(slot.tokens - spent)
                self.tokens_per_call = (spent if not self.tokens_per_call
                                        else (1 - TOKEN_MEMORY) * self.tokens_per_call + TOKEN_MEMORY * spent)
            rate = self.requests.rate or 1.0
            # Time since the last growth, but not an idle stretch's worth (a slow pace still grows).
            seconds, self._last_grow = min(now - self._last_grow, max(1.0, 2 / rate)), now
            calm = now - self._last_cut >= CALM
            sent = self._sending(now)
            self.requests.grow(seconds, calm, sent)
            self.tokens.grow(seconds, calm, sent * self.tokens_per_call)

    def answered(self, slot: Slot) -> None:
        """The service took the call but it failed otherwise: it counted against the quota, nothing grows."""
        with self._lock:
            self._took(self._clock(), slot.tokens)
            self.refusing_since = None

    def throttled_call(self, slot: Slot) -> None:
        """The service refused the call: lower the limits, once per round."""
        with self._lock:
            self.throttled += 1
            if self.refusing_since is None:
                self.refusing_since = self._clock()
            if slot.number <= self._cut_after:
                return
            self.tokens.refund(slot.tokens)  # a refused call costs no tokens
            now = self._clock()
            self._forget(now)
            span = max(min(WINDOW, now - self._started), SHORTEST)
            sent = self._sending(now)
            self.requests.cut(len(self._through) / span, sent, now, 1)
            if self.tokens_per_call:
                self.tokens.cut(self._through_tokens / span, sent * self.tokens_per_call, now, self.tokens_per_call)
            self._last_cut = self._last_grow = now
            self._cut_after = self._reserved

    def _sending(self, now: float) -> float:
        """Calls a second sent over the last WINDOW (or since the start, if shorter)."""
        self._forget(now)
        return len(self._sent) / max(min(WINDOW, now - self._started), SHORTEST)

    def _took(self, now: float, tokens: float) -> None:
        self._through.append((now, tokens))
        self._through_tokens += tokens
        self._forget(now)

    def _forget(self, now: float) -> None:
        while self._through and self._through[0][0] < now - WINDOW:
            self._through_tokens -= self._through.popleft()[1]
        while self._sent and self._sent[0] < now - WINDOW:
            self._sent.popleft()


_shared: dict[tuple[str, ...], RateController] = {}
_shared_lock = threading.Lock()


def controller_for(*key: str, cap: float | None = None) -> RateController:
    """The process's controller for one quota (endpoint, region and model), made on first use.
    An engine with another `cap` gets one of its own, so that each keeps to its cap."""
    full = (*key, repr(cap))
    with _shared_lock:
        if full not in _shared:
            _shared[full] = RateController(cap)
        return _shared[full]


def reset() -> None:
    """Forget every controller of the process: the next engine starts as a fresh process would."""
    with _shared_lock:
        _shared.clear()
