"""A call in a fresh process: its value, its error, and a process that dies."""
from __future__ import annotations

import os

import pytest

from ocrlab.worker import Running, WorkerFailed


def test_value_and_error_come_back():
    with Running(os.getpid) as call:
        assert call.result() != os.getpid()
    with Running(int, "not a number") as call, pytest.raises(ValueError, match="not a number"):
        call.result()


def test_a_dead_worker_is_one_error():
    with Running(os._exit, 3) as call, pytest.raises(WorkerFailed, match=r"ended \(3\) without a result"):
        call.result()
