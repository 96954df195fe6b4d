"""ContextTimer (pottery's API): milliseconds of wall time, monotonic.

Durations are checked on a virtual clock, never against the real one; the
real clock is only checked for what holds however busy the machine is.
"""

from __future__ import annotations

import time

import pytest

from conftest import FakeClock

from pyredcache import timer as timer_module
from pyredcache.timer import ContextTimer


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(5000.0)
    monkeypatch.setattr(timer_module, "_clock", fake)
    return fake


def test_elapsed_is_milliseconds_while_running_and_frozen_after_stop(clock: FakeClock) -> None:
    timer = ContextTimer()
    timer.start()
    clock.advance(0.1)
    assert timer.elapsed() == 100
    clock.advance(0.0504)
    assert timer.elapsed() == 150  # rounded to the millisecond
    timer.stop()
    clock.advance(3)
    assert timer.elapsed() == 150
    assert isinstance(timer.elapsed(), int)
    assert repr(timer) == "<ContextTimer stopped, 150 ms>"


def test_context_manager_starts_and_stops(clock: FakeClock) -> None:
    with ContextTimer() as timer:
        clock.advance(0.25)
        assert timer.elapsed() == 250
        assert repr(timer) == "<ContextTimer running, 250 ms>"
    clock.advance(1)
    assert timer.elapsed() == 250


def test_context_manager_stops_when_the_block_raises(clock: FakeClock) -> None:
    with pytest.raises(KeyError):
        with ContextTimer() as timer:
            clock.advance(0.002)
            raise KeyError("boom")
    clock.advance(1)
    assert timer.elapsed() == 2


def test_misuse_raises_runtime_error_as_pottery() -> None:
    timer = ContextTimer()
    assert repr(timer) == "<ContextTimer not started>"
    with pytest.raises(RuntimeError, match="hasn't yet been started"):
        timer.elapsed()
    with pytest.raises(RuntimeError, match="hasn't yet been started"):
        timer.stop()
    timer.start()
    with pytest.raises(RuntimeError, match="already been started"):
        timer.start()
    timer.stop()
    with pytest.raises(RuntimeError, match="already been stopped"):
        timer.stop()
    with pytest.raises(RuntimeError, match="already been stopped"):
        timer.start()


def test_real_clock_is_monotonic_and_never_goes_backwards() -> None:
    assert timer_module._clock is time.perf_counter
    assert time.get_clock_info("perf_counter").monotonic
    timer = ContextTimer()
    timer.start()
    readings = [timer.elapsed() for _ in range(1000)]
    assert readings[0] >= 0
    assert readings == sorted(readings)
    timer.stop()
    assert timer.elapsed() == timer.elapsed()
