"""The rate controller on a clock of its own: pacing, the decrease a throttle brings, the increase
successes bring, tokens, deadlines. (The engine under a real quota: test_engine_bedrock.py, test_batch.py.)"""
from __future__ import annotations

import pytest

from ocrlab.ocr.engines.pacing import BETA, CALM, GROWTH, HALF, MIN_RATE, RateController, controller_for


class Clock:
    """time.monotonic and time.sleep for one thread: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def controller(clock: Clock, cap: float | None = None) -> RateController:
    return RateController(cap, clock=clock, sleep=clock.sleep)


def answered_at(pace: RateController, clock: Clock, per_second: float, seconds: float, tokens: int = 0) -> int:
    """Calls that all get through, `per_second` of them (or the pace's own, if slower) for `seconds`."""
    end, calls = clock.now + seconds, 0
    while clock.now < end:
        slot = pace.acquire()
        pace.succeeded(slot, tokens)
        clock.sleep(1 / per_second)
        calls += 1
    return calls


def test_nothing_limits_the_calls_until_a_throttle(clock):
    pace = controller(clock)
    assert [pace.acquire().start_at for _ in range(20)] == [0.0] * 20
    assert pace.rate is None


def test_a_cap_spaces_the_calls_from_the_start(clock):
    pace = controller(clock, cap=5)
    assert [pace.acquire().start_at for _ in range(6)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    answered_at(pace, clock, 100, 3)  # successes never lift it past the cap
    assert pace.rate == 5


def test_a_throttle_brings_the_pace_down_to_what_got_through(clock):
    pace = controller(clock)
    calls = answered_at(pace, clock, 40, 2)
    pace.throttled_call(pace.acquire())
    assert pace.rate == pytest.approx(BETA * 40, rel=0.03)
    assert (pace.calls, pace.throttled) == (calls + 1, 1)


def test_one_decrease_per_round(clock):
    pace = controller(clock)
    answered_at(pace, clock, 40, 2)
    early = [pace.acquire() for _ in range(5)]  # reserved before the throttle came back
    pace.throttled_call(early[0])
    lowered = pace.rate
    for slot in early[1:]:
        pace.throttled_call(slot)
    assert pace.rate == lowered and pace.throttled == 5
    pace.throttled_call(pace.acquire())  # a call made at the new pace, throttled: the next round
    assert pace.rate < lowered


def test_an_exhausted_quota_backs_off_exponentially_down_to_the_floor(clock):
    pace = controller(clock, cap=40)
    starts, rates = [], []
    for _ in range(12):
        slot = pace.acquire()
        pace.throttled_call(slot)
        starts.append(slot.start_at)
        rates.append(pace.rate)
    assert rates[:3] == pytest.approx([40 * HALF, 40 * HALF ** 2, 40 * HALF ** 3])
    assert rates[-1] == MIN_RATE
    waits = [b - a for a, b in zip(starts, starts[1:])]
    assert waits[:4] == pytest.approx([1 / 20, 1 / 10, 1 / 5, 1 / 2.5])  # each one twice the one before
    assert waits[-1] == pytest.approx(1 / MIN_RATE)


def test_successes_raise_the_pace_a_little_then_fast_once_calm(clock):
    pace = controller(clock)
    answered_at(pace, clock, 40, 2)
    pace.throttled_call(pace.acquire())
    cut = pace.rate
    answered_at(pace, clock, 1000, 1)  # as fast as the pace lets them
    assert pace.rate == pytest.approx(cut + GROWTH * cut, rel=0.05)  # additive: a share of the cut a second
    answered_at(pace, clock, 1000, CALM - 1)
    linear = pace.rate
    answered_at(pace, clock, 1000, 1)  # no throttle for CALM seconds: the quota may have more
    assert pace.rate > 1.4 * linear


def test_after_an_exhausted_quota_the_pace_grows_back_to_what_the_calls_use_and_no_further(clock):
    pace = controller(clock)
    while pace.rate != MIN_RATE:
        pace.throttled_call(pace.acquire())
    answered_at(pace, clock, 2, 30)  # the quota is back; the batch sends 2 a second
    assert 2 <= pace.rate <= 2 * 2.5  # twice what is sent (2, counted over a window of WINDOW seconds)


def test_tokens_a_call_costs_pace_the_calls_after_a_throttle(clock):
    pace = controller(clock)
    answered_at(pace, clock, 10, 2, tokens=1000)
    pace.throttled_call(pace.acquire())
    assert pace.tokens_per_call == 1000 and pace.tokens.rate == pytest.approx(BETA * 10 * 1000, rel=0.05)
    requests_limit = pace.requests.rate
    answered_at(pace, clock, 1000, 2, tokens=3000)  # answers three times as long: the token limit binds
    assert pace.rate < requests_limit / 2
    assert pace.rate == pytest.approx(pace.tokens.rate / pace.tokens_per_call)


def test_the_callers_deadline_is_a_last_try_that_sets_nothing_aside(clock):
    pace = controller(clock, cap=1)
    assert pace.acquire().start_at == 0
    assert pace.acquire(deadline=0.3).start_at == pytest.approx(0.3)  # its turn would be at 1.0
    assert pace.acquire().start_at == pytest.approx(1.0)  # still this call's turn: the last try took none


def test_one_controller_per_quota_and_cap_in_a_process():
    assert controller_for("http://a", "us-east-1", "m") is controller_for("http://a", "us-east-1", "m")
    assert controller_for("http://a", "us-east-1", "m") is not controller_for("http://a", "us-east-1", "n")
    assert controller_for("http://a", "us-east-1", "m", cap=3) is not controller_for("http://a", "us-east-1", "m")
