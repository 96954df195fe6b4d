"""ContextTimer: measure how long a block of code takes (pottery's API)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Callable, Literal

__all__ = ["ContextTimer"]

#: The clock: seconds (float) on a monotonic clock, so that setting the
#: system time never makes an interval jump or go negative.  A module
#: attribute so that a test can substitute a virtual clock.
_clock: Callable[[], float] = time.perf_counter


class ContextTimer:
    """Measure elapsed wall (real-world) time, in milliseconds.

    ``ContextTimer()``, then ``start()``, ``stop()`` and ``elapsed()``; or
    ``with ContextTimer() as timer: ...``, which starts it on entry and stops
    it on exit.  It measures wall time on a monotonic clock
    (:func:`time.perf_counter`), not CPU time: time spent sleeping or
    waiting for Redis counts.

    ``elapsed()`` returns an int, in milliseconds (rounded): the time from
    ``start()`` to now while running, to ``stop()`` once stopped.

    A timer is used once: ``start()`` a second time, or after ``stop()``,
    ``stop()`` before ``start()`` or twice, and ``elapsed()`` before
    ``start()`` raise :class:`RuntimeError`, as pottery's does.
    """

    __slots__ = ("_started", "_stopped")

    def __init__(self) -> None:
        self._started: float | None = None
        self._stopped: float | None = None

    def __repr__(self) -> str:
        if self._started is None:
            state = "not started"
        elif self._stopped is None:
            state = "running, %d ms" % self.elapsed()
        else:
            state = "stopped, %d ms" % self.elapsed()
        return "<ContextTimer %s>" % state

    def __enter__(self) -> ContextTimer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc_value: BaseException | None,
                 traceback: TracebackType | None) -> Literal[False]:
        self.stop()
        return False

    def start(self) -> None:
        """Start the timer.  Raises RuntimeError if it was started before."""
        if self._stopped is not None:
            raise RuntimeError("timer has already been stopped")
        if self._started is not None:
            raise RuntimeError("timer has already been started")
        self._started = _clock()

    def stop(self) -> None:
        """Stop the timer: ``elapsed()`` no longer grows.  Raises
        RuntimeError if it is not running (not started, or stopped)."""
        if self._stopped is not None:
            raise RuntimeError("timer has already been stopped")
        if self._started is None:
            raise RuntimeError("timer hasn't yet been started")
        self._stopped = _clock()

    def elapsed(self) -> int:
        """Milliseconds (int, rounded) from ``start()`` to ``stop()``, or to
        now while running.  Raises RuntimeError before ``start()``."""
        if self._started is None:
            raise RuntimeError("timer hasn't yet been started")
        end = self._stopped if self._stopped is not None else _clock()
        return round((end - self._started) * 1000)
