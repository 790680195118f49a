"""Reading one page ahead: the next page of a long Query is on its way while the caller works on
this one, so an export's CSV formatting overlaps the database's time instead of adding to it."""
from __future__ import annotations

import queue
import threading
import weakref
from typing import Iterator, TypeVar

T = TypeVar("T")
_END = object()
_POLL = 0.1  # how soon a producer notices that its consumer has gone


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """The items of `items`, produced by a background thread at most `depth` ahead of the consumer.
    An error in `items` is raised to the consumer where it occurred; a consumer that stops early
    (closes the generator, or drops it) stops the thread."""
    yield from _consume(*_start(items, depth))


def reading_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """As read_ahead, but the thread starts now rather than at the first item: several streams read
    at once (the shards of one index, ocrlab.store.shard_reads) before the first of them is consumed."""
    handoff, gone = _start(items, depth)
    consumer: Iterator[T] = _consume(handoff, gone)
    weakref.finalize(consumer, gone.set)  # dropped before it was ever started: stop the thread too
    return consumer


def _start(items: Iterator[T], depth: int) -> tuple[queue.Queue[tuple[object, BaseException | None]], threading.Event]:
    handoff: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    gone = threading.Event()

    def give(entry: tuple[object, BaseException | None]) -> bool:
        while not gone.is_set():
            try:
                handoff.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not give((item, None)):
                    return
            give((_END, None))
        except BaseException as exc:  # handed over, raised in the consumer's thread
            give((_END, exc))

    threading.Thread(target=produce, name="ocrlab-read-ahead", daemon=True).start()
    return handoff, gone


def _consume(handoff: queue.Queue[tuple[object, BaseException | None]], gone: threading.Event) -> Iterator[T]:
    try:
        while True:
            item, error = handoff.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        gone.set()
