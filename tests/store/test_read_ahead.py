"""Reading ahead keeps order, raises where the source failed, stays one page ahead, and stops with
its consumer."""
from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest

from ocrlab.store.read_ahead import read_ahead


def counted(n: int, produced: list[int], fail_at: int | None = None) -> Iterator[int]:
    for i in range(n):
        if i == fail_at:
            raise ConnectionError(f"page {i} lost")
        produced.append(i)
        yield i


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ocrlab-read-ahead"]


def wait_until(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_every_item_in_order() -> None:
    assert list(read_ahead(counted(500, []))) == list(range(500))
    assert list(read_ahead(iter([]))) == []


def test_an_error_is_raised_after_the_items_before_it() -> None:
    got: list[int] = []
    with pytest.raises(ConnectionError, match="page 3 lost"):
        for item in read_ahead(counted(10, [], fail_at=3)):
            got.append(item)
    assert got == [0, 1, 2]


def test_at_most_one_item_ahead_of_a_slow_consumer() -> None:
    produced: list[int] = []
    pages = read_ahead(counted(100, produced))
    assert next(pages) == 0
    # one handed over, one waiting in the handoff, one held by the blocked producer: never more
    assert wait_until(lambda: len(produced) == 3) and not wait_until(lambda: len(produced) > 3, 0.5)
    pages.close()


def test_a_consumer_that_stops_early_stops_the_reader() -> None:
    wait_until(lambda: not readers(), 2)  # readers an earlier test stopped end after their page in flight
    before = len(readers())
    pages = read_ahead(counted(10**9, []))
    assert [next(pages) for _ in range(3)] == [0, 1, 2]
    assert len(readers()) == before + 1
    pages.close()
    assert wait_until(lambda: len(readers()) == before)
