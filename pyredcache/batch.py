"""Batch mode: decorated calls return promises, fetched in one round trip.

Inside ``with cache.batch_mode():`` a call to a function decorated by that
cache returns a pending :class:`~pyredcache.Promise` instead of running.
When the block ends, every recorded key is fetched at once (one MGET per
server; on a sharded cache all servers in parallel), the hits are decoded,
the misses are computed and written back in one pipeline per server, and
every promise is settled.  rc's ``batch_mode``, with three differences:

* the batch belongs to the thread or asyncio task that opened it (a
  :class:`contextvars.ContextVar` per cache), so two threads batching on one
  cache never mix;
* an exception inside the block rejects the pending promises (reading
  ``value`` raises :class:`~pyredcache.exceptions.PromiseError` chained to
  it) and nothing is fetched or written;
* a function that raises while the batch runs rejects its own promises
  with that exception; the other calls are resolved and stored as usual.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any, Callable, NamedTuple

from .clients.client import set_command
from .exceptions import PromiseError, ReplyTypeError, ResponseError, SerializationError

__all__ = ["Batch", "BatchIO", "BatchMode"]


class BatchIO(NamedTuple):
    """What a batch needs from the cache that opens it, handed over by
    :meth:`~pyredcache.BaseCache.batch_mode`."""

    #: ``fetch(keys)``: the raw stored values of keys (a list, None for a
    #: miss), one MGET per server.
    fetch: Callable[[list], list]
    #: ``store(commands)``: run the SET commands of the computed misses, one
    #: pipeline per server; their replies.
    store: Callable[[list], list]
    #: The cache's serializer (``dumps``/``loads``).
    serializer: Any
    #: ``bypass(value)``: True for a result returned but not stored.
    bypass: Callable[[Any], bool]
    #: ``report(key, exc)``: log a stored value that is treated as a miss.
    report: Callable[[Any, Exception], None]
    #: The core's Promise type.
    promise: type


class _Call:
    """One distinct cache key recorded in a batch, and its promises."""

    __slots__ = ("key", "func", "args", "kwargs", "expire", "guard", "promises")

    def __init__(self, key: Any, func: Callable[..., Any], args: tuple, kwargs: dict,
                 expire: float | None, guard: Any) -> None:
        self.key = key
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.expire = expire
        self.guard = guard  # the stampede options' stored form, or None
        self.promises: list = []


class Batch:
    """The calls recorded by one ``batch_mode()`` block."""

    __slots__ = ("io", "calls")

    def __init__(self, io: BatchIO) -> None:
        self.io = io
        self.calls: dict[Any, _Call] = {}

    def add(self, key: Any, func: Callable[..., Any], args: tuple, kwargs: dict,
            expire: float | None, guard: Any = None) -> Any:
        """Record ``func(*args, **kwargs)`` under key; return its pending
        promise.  Calls with the same key share one fetch and one
        computation.  ``guard``: the function's
        :class:`~pyredcache.stampede.Guard` when it uses the stampede
        options (its entries carry a header); a batch reads and writes
        them but takes no recompute lock."""
        promise = self.io.promise()
        call = self.calls.get(key)
        if call is None:
            call = self.calls[key] = _Call(key, func, args, kwargs, expire, guard)
        call.promises.append(promise)
        return promise

    def abort(self, exc: BaseException) -> None:
        """Reject every pending promise: the block raised ``exc``."""
        error = PromiseError(
            "the batch_mode() block raised %s before the batch ran; nothing was "
            "fetched or computed" % type(exc).__name__
        )
        error.__cause__ = exc
        self.reject_pending(error)

    def run(self) -> None:
        """Fetch, compute the misses, write them back, settle every promise.

        Raises what fetching or writing raised (ConnectionError...), and
        otherwise the first exception a promise callback raised; every
        promise is settled either way.
        """
        calls = list(self.calls.values())
        if not calls:
            return
        io = self.io
        first_error: list[BaseException] = []

        def settle(call: _Call, method: str, value: Any) -> None:
            for promise in call.promises:
                if not promise.is_pending:  # settled by the caller meanwhile
                    continue
                try:
                    getattr(promise, method)(value)
                except Exception as exc:  # a then() callback raised
                    if not first_error:
                        first_error.append(exc)

        try:
            raws = io.fetch([call.key for call in calls])
            if type(raws) is not list or len(raws) != len(calls):  # once a batch
                raise ReplyTypeError("MGET", calls[0].key, raws,
                                     "an array of %d bulk strings or nils" % len(calls))
            loads = io.serializer.loads
            misses = []
            for call, raw in zip(calls, raws):
                if raw is not None:
                    try:
                        value = call.guard.decode(raw)[0] if call.guard else loads(raw)
                    except SerializationError as exc:
                        io.report(call.key, exc)  # a miss: recomputed and overwritten
                    except TypeError as exc:  # not bytes: a wrong reply to MGET?
                        raise ReplyTypeError.after_decode_failed("MGET", call.key, raw,
                                                                 exc) from None
                    else:
                        settle(call, "resolve", value)
                        continue
                misses.append(call)

            dumps = io.serializer.dumps
            bypass = io.bypass
            computed = []
            writes = []
            for call in misses:
                try:
                    start = time.monotonic()
                    value = call.func(*call.args, **call.kwargs)
                    if not bypass(value):
                        guard = call.guard
                        if guard is None:
                            writes.append(set_command(call.key, dumps(value), call.expire))
                        else:
                            data = guard.encode(value, time.monotonic() - start)
                            writes.append(set_command(call.key, data, guard.store_ex))
                except Exception as exc:
                    settle(call, "reject", exc)
                    continue
                computed.append((call, value))

            write_error: BaseException | None = None
            if writes:
                try:
                    replies = io.store(writes)
                    write_error = next(
                        (r for r in replies if isinstance(r, ResponseError)), None)
                except Exception as exc:
                    write_error = exc
            # The values are right even if storing them failed: resolve first.
            for call, value in computed:
                settle(call, "resolve", value)
            if write_error is not None:
                raise write_error
        except BaseException as exc:
            self.reject_pending(exc)
            raise
        if first_error:
            raise first_error[0]

    def reject_pending(self, exc: BaseException) -> None:
        """Reject every promise still pending with ``exc``.  Called while an
        exception propagates, so a callback's own exception is dropped."""
        for call in self.calls.values():
            for promise in call.promises:
                if promise.is_pending:
                    try:
                        promise.reject(exc)
                    except Exception:  # noqa: S110 - the batch's error wins
                        pass


class BatchMode:
    """The context manager :meth:`~pyredcache.BaseCache.batch_mode` returns.

    Not reentrant itself, but batches nest: an inner ``batch_mode()``
    block is a batch of its own, run when it ends.
    """

    __slots__ = ("_io", "_var", "_batch", "_token")

    def __init__(self, io: BatchIO, var: contextvars.ContextVar) -> None:
        self._io = io
        self._var = var
        self._batch: Batch | None = None
        self._token: Any = None

    def __enter__(self) -> None:
        if self._batch is not None:
            raise RuntimeError("this batch_mode() is already active; call batch_mode() again")
        self._batch = Batch(self._io)
        self._token = self._var.set(self._batch)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        batch, self._batch = self._batch, None
        assert batch is not None
        self._var.reset(self._token)
        self._token = None
        if exc is not None:
            batch.abort(exc)
            return
        batch.run()
