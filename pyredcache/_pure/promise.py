"""Pure-Python twin of ``Promise`` in ``pyredcache._core`` (csrc/promise.c).

A small synchronous promise after rc's ``rc.promise.Promise``, with a
rejection path that rc lacked.  It is the reference for the C type: both
behave the same, and tests/test_promise.py runs against both.

Semantics (shared with the C type):

* A promise is pending, then settles once: resolved with a value or
  rejected with an exception instance.  Settling a settled promise raises
  :class:`~pyredcache.exceptions.PromiseError` (a RuntimeError, as rc
  raised) and changes nothing.
* ``then(on_resolve, on_reject)`` queues one pair of callbacks (either may
  be None) and returns the promise itself.  On a settled promise the queue
  is run at once.  Callbacks run exactly once, in registration order.
* A ``then()`` called by a callback while the queue is being run is queued
  behind the callbacks already queued and run by the same, outer, run
  before it returns (so the order holds under reentrancy).
* Every queued callback runs even if an earlier one raised; the first
  exception raised by a callback is then re-raised by the ``resolve()``,
  ``reject()`` or ``then()`` call that ran the queue; later ones are
  dropped.  The promise stays settled either way.
* ``value`` is None while pending (as in rc), the value once resolved,
  and raises the stored exception once rejected.
"""

from __future__ import annotations

import reprlib
from typing import Any, Callable, Optional

from ..exceptions import PromiseError

__all__ = ["Promise"]

_PENDING, _RESOLVED, _REJECTED = 0, 1, 2
_STATE_NAMES = ("pending", "resolved", "rejected")


class Promise:
    """A synchronous promise: pending, then resolved or rejected once.

    Example (rc's)::

        p = Promise()
        assert p.is_pending
        assert not p.is_resolved
        assert p.value is None
        p.resolve('value')
        assert not p.is_pending
        assert p.is_resolved
        assert p.value == 'value'
    """

    __slots__ = ("_state", "_value", "_tb", "_callbacks", "_running", "__weakref__")

    def __init__(self) -> None:
        self._state = _PENDING
        self._value: Any = None
        self._tb: Any = None  # traceback of a rejection, restored on each raise
        # Queued (on_resolve, on_reject) pairs, not yet run.
        self._callbacks: list[tuple[Optional[Callable[[Any], Any]],
                                    Optional[Callable[[BaseException], Any]]]] = []
        self._running = False  # True while _run() drains the queue

    @classmethod
    def resolved(cls, value: Any, /) -> "Promise":
        """A new promise already resolved with ``value``."""
        return cls().resolve(value)

    @classmethod
    def rejected(cls, exc: BaseException, /) -> "Promise":
        """A new promise already rejected with the exception instance ``exc``."""
        return cls().reject(exc)

    @property
    def is_pending(self) -> bool:
        """True until the promise is resolved or rejected."""
        return self._state == _PENDING

    @property
    def is_resolved(self) -> bool:
        """True once the promise is resolved (not rejected)."""
        return self._state == _RESOLVED

    @property
    def is_rejected(self) -> bool:
        """True once the promise is rejected."""
        return self._state == _REJECTED

    @property
    def value(self) -> Any:
        """The resolved value, or None while the promise is pending (as in rc).

        Raises the stored exception (with the traceback it had when
        rejected) if the promise was rejected.
        """
        if self._state == _PENDING:
            return None
        if self._state == _REJECTED:
            raise self._value.with_traceback(self._tb)
        return self._value

    def _settle(self, state: int, value: Any) -> None:
        if self._state != _PENDING:
            raise PromiseError("promise is already %s" % _STATE_NAMES[self._state])
        self._state = state
        self._value = value
        if state == _REJECTED:
            self._tb = value.__traceback__

    def resolve(self, value: Any, /) -> "Promise":
        """Resolve with ``value`` (any object), run the queued callbacks'
        ``on_resolve`` and return the promise.

        Raises :class:`PromiseError` (a RuntimeError) if the promise is
        already settled, and the first exception a callback raised (after
        all of them ran).
        """
        self._settle(_RESOLVED, value)
        self._run()
        return self

    def reject(self, exc: BaseException, /) -> "Promise":
        """Reject with the exception instance ``exc``, run the queued
        callbacks' ``on_reject`` and return the promise.

        Raises TypeError if ``exc`` is not an exception instance,
        :class:`PromiseError` (a RuntimeError) if the promise is already
        settled, and the first exception a callback raised (after all of
        them ran).
        """
        if not isinstance(exc, BaseException):
            raise TypeError(
                "reject() needs an exception instance, not %s" % type(exc).__name__
            )
        self._settle(_REJECTED, exc)
        self._run()
        return self

    def then(
        self,
        on_resolve: Optional[Callable[[Any], Any]] = None,
        on_reject: Optional[Callable[[BaseException], Any]] = None,
    ) -> "Promise":
        """Queue ``on_resolve(value)`` and ``on_reject(exc)`` (each a callable
        or None) and return the promise itself.

        On a settled promise the matching callback runs now; see the module
        docstring for order, reentrancy and exceptions.  Raises TypeError if
        a callback is neither callable nor None.
        """
        for name, fn in (("on_resolve", on_resolve), ("on_reject", on_reject)):
            if fn is not None and not callable(fn):
                raise TypeError("%s must be callable or None" % name)
        if on_resolve is None and on_reject is None:
            return self
        self._callbacks.append((on_resolve, on_reject))
        if self._state != _PENDING:
            self._run()
        return self

    def _run(self) -> None:
        # Invariant: only the outermost _run() drains the queue.  It takes
        # the whole list before calling anything, so a callback that calls
        # then() appends to a fresh list, which the loop takes next; nothing
        # is iterated that a callback can reach.
        if self._running:
            return
        self._running = True
        first: Optional[BaseException] = None
        try:
            while self._callbacks:
                batch, self._callbacks = self._callbacks, []
                index = 1 if self._state == _REJECTED else 0
                for pair in batch:
                    fn = pair[index]
                    if fn is None:
                        continue
                    try:
                        fn(self._value)
                    except BaseException as exc:  # noqa: B036 - re-raised below
                        if first is None:
                            first = exc
        finally:
            self._running = False
        if first is not None:
            try:
                raise first
            finally:
                first = None  # no frame <-> exception cycle

    @reprlib.recursive_repr("<Promise ...>")
    def __repr__(self) -> str:
        if self._state == _PENDING:
            return "<Promise pending>"
        return "<Promise %s: %r>" % (_STATE_NAMES[self._state], self._value)
