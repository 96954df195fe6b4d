"""A circuit breaker for one Redis server: stop dialling a server that does
not answer, and probe it back with one call.

The pattern is Michael Nygard's (*Release It!*, 2007, "Circuit Breaker"),
as resilience libraries implement it (three states):

* **closed** (normal): every call goes to the server.  A call that fails
  with :class:`~pyredcache.exceptions.ConnectionError` (refused, reset,
  :class:`~pyredcache.exceptions.TimeoutError`, a broken reply) counts one
  consecutive failure; a call that succeeds resets the count.  At
  ``threshold`` consecutive failures the breaker **opens**.
* **open**: for ``cooldown`` seconds no call reaches the server: each raises
  :class:`~pyredcache.exceptions.CircuitOpenError` (a ConnectionError) at
  once, costing no connect or reply timeout.
* **half-open**: after the cool-down, the next call is let through as a
  probe, alone (calls meanwhile still raise CircuitOpenError).  If it
  succeeds the breaker closes; if it fails it opens for another
  ``cooldown``.

An error *reply* (``ResponseError``: WRONGTYPE, NOPERM, ...) is an answer:
it counts as a success for the breaker.  The breaker logs one warning
(logger ``"pyredcache"``) when it opens and one info line when the server
answers again (with how long it was out): once per outage, not once per
call (failed probes log nothing more; the first failure is logged at
DEBUG).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..exceptions import CircuitOpenError

__all__ = ["CircuitBreaker", "DEFAULT_COOLDOWN", "DEFAULT_THRESHOLD"]

log = logging.getLogger("pyredcache")

#: Consecutive failures that open the breaker, by default.
DEFAULT_THRESHOLD = 5
#: Seconds an open breaker waits before it lets one probe through, by default.
DEFAULT_COOLDOWN = 2.0

_clock = time.monotonic


class CircuitBreaker:
    """The breaker of one server (see the module's notes).

    :param address: the server, for messages (str, ``"host:port"``).
    :param threshold: consecutive failures that open it (int >= 1).
    :param cooldown: seconds it stays open before a probe (float > 0).

    Callers (:class:`~pyredcache.Client`) call :meth:`before` before a
    command (it raises CircuitOpenError while open), then
    :meth:`failure` or :meth:`success`.  The closed state's bookkeeping is
    two attribute reads per call; a lock is taken only on state changes.
    Thread-safe.
    """

    __slots__ = ("address", "threshold", "cooldown", "failures", "open_until", "_probing",
                 "_lock", "_down_since", "_last_error", "opened", "rejected", "total_failures")

    def __init__(self, address: str, threshold: int = DEFAULT_THRESHOLD,
                 cooldown: float = DEFAULT_COOLDOWN) -> None:
        self.address = address
        self.threshold = threshold
        self.cooldown = cooldown
        #: consecutive failures (int); 0 while the server answers
        self.failures = 0
        #: monotonic time until which the breaker is open; 0.0: closed
        self.open_until = 0.0
        self._probing = False
        self._lock = threading.Lock()
        self._down_since = 0.0
        self._last_error = ""
        #: how many times it opened (int)
        self.opened = 0
        #: calls refused while open (int)
        self.rejected = 0
        #: failed calls in all (int)
        self.total_failures = 0

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"`` (a probe may go, or
        is in flight)."""
        if not self.open_until:
            return "closed"
        if self._probing or _clock() >= self.open_until:
            return "half-open"
        return "open"

    def before(self) -> None:
        """Called before a command while :attr:`open_until` is set: raise
        CircuitOpenError while open, or let this call through as the one
        probe once the cool-down has passed."""
        now = _clock()
        with self._lock:
            if self.open_until and (self._probing or now < self.open_until):
                self.rejected += 1
                wait = max(0.0, self.open_until - now)
                raise CircuitOpenError(
                    "%s: circuit open after %d consecutive failures (last: %s); %s"
                    % (self.address, self.failures, self._last_error,
                       "a probe is in flight" if self._probing
                       else "next probe in %.2f s" % wait))
            if self.open_until:
                self._probing = True  # this call is the probe

    def failure(self, exc: BaseException) -> None:
        """A call failed with a ConnectionError (exc)."""
        with self._lock:
            self.failures += 1
            self.total_failures += 1
            self._last_error = "%s: %s" % (type(exc).__name__, exc)
            now = _clock()
            if self.failures == 1:
                self._down_since = now
                log.debug("pyredcache: %s: cannot be used (%s)", self.address,
                          self._last_error)
            if self._probing or self.failures >= self.threshold:
                if not self.open_until:
                    self.opened += 1
                    log.warning("pyredcache: %s: circuit open after %d consecutive "
                                "failures (last: %s): calls fail at once, a probe every "
                                "%g s", self.address, self.failures, self._last_error,
                                self.cooldown)
                self.open_until = now + self.cooldown
                self._probing = False

    def success(self) -> None:
        """A call got its reply (an error reply included)."""
        with self._lock:
            if self.failures:
                log.info("pyredcache: %s: answering again after %.3f s (%d failed calls)",
                         self.address, _clock() - self._down_since, self.failures)
            self.failures = 0
            self.open_until = 0.0
            self._probing = False

    def abandon(self) -> None:
        """The probe call ended without saying anything of the server (it
        raised something other than a ConnectionError or an error reply):
        the next call may probe."""
        with self._lock:
            self._probing = False

    def health(self) -> dict[str, Any]:
        """The breaker's state and counters, as plain data: ``state``
        (str), ``consecutive_failures``, ``failures`` (in all), ``opened``
        (times), ``rejected`` (calls refused while open), all int;
        ``retry_in`` (seconds until a probe may go, float, 0.0 unless
        open); ``down_for`` (seconds since the first failure of the current
        outage, float, 0.0 while the server answers); ``last_error`` (str,
        ``""`` if none yet)."""
        now = _clock()
        return {
            "state": self.state,
            "consecutive_failures": self.failures,
            "failures": self.total_failures,
            "opened": self.opened,
            "rejected": self.rejected,
            "retry_in": max(0.0, self.open_until - now) if self.open_until else 0.0,
            "down_for": now - self._down_since if self.failures else 0.0,
            "last_error": self._last_error,
        }

    def __repr__(self) -> str:
        return "<CircuitBreaker %s %s failures=%d>" % (self.address, self.state, self.failures)
