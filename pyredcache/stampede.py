"""One computation per cache miss: the decorator's ``lock``, ``stale_ttl``
and ``beta`` options.

When a popular entry expires, every process that asks for it at that
moment misses, and without care every one of them recomputes it (the
"dogpile" or cache stampede).  Three remedies, usable together:

* ``lock=True``: on a miss one caller, in whatever process, takes a
  recompute lock (``SET <key>:lock <token> NX PX``, released with a Lua
  compare-and-delete) and computes; the others poll for its value (GET of
  the key and EXISTS of the lock in one round trip, backing off from 5 to
  50 ms) and return it.  If the holder fails or dies (its lock expires),
  a waiter takes the lock over; past ``lock_timeout`` seconds a waiter
  computes for itself.
* ``stale_ttl``: an entry is kept ``stale_ttl`` seconds past its expiry;
  a caller that finds it stale takes the lock and recomputes while every
  other caller is served the stale value at once (stale-while-revalidate).
* ``beta``: probabilistic early recomputation, XFetch (A. Vattani,
  F. Chierichetti, K. Lowenstein, "Optimal Probabilistic Cache Stampede
  Prevention", VLDB 2015): a hit at time ``now`` recomputes early when
  ``now - delta * beta * ln(random()) >= expiry``, ``delta`` being how
  long the last computation took.  ``beta=1`` is the paper's optimum;
  larger values recompute earlier.

With ``stale_ttl`` or ``beta`` an entry carries its logical expiry and
``delta`` in a 21-byte header before the serializer's bytes (see
:data:`ENVELOPE`); its Redis TTL is ``expire + stale_ttl`` seconds.
"""

from __future__ import annotations

import math
import random
import secrets
import struct
import time
from typing import Any, Callable

from .clients.client import set_command
from .clients.scripts import Script
from .exceptions import ReplyTypeError, SerializationError

__all__ = ["ENVELOPE", "Guard"]

#: Magic bytes that start an entry with a header: 0xFF (a MessagePack -1,
#: which is never followed by more bytes in a valid value, and no JSON,
#: pickle or signed value starts with it), "PRC", version 1.  Then two
#: little-endian doubles: the logical expiry (Unix time, seconds) and the
#: last computation's duration (seconds).
ENVELOPE = b"\xffPRC\x01"
_HEADER = struct.Struct("<dd")
_HEADER_LEN = len(ENVELOPE) + _HEADER.size

_NOTHING = object()

# Wall clock (entries' expiry is compared across machines) and the XFetch
# draw; module attributes so that tests can replace them.
_now = time.time
_random = random.random


class Guard:
    """The stampede options of one decorated function, and the wrapper
    logic that applies them.  Built by ``BaseCache.cache``, which hands it
    its client, serializer and hooks."""

    #: KEYS[1]: the lock key; ARGV[1]: our token.  Deletes the lock only
    #: if it is still ours.  Returns 1 if deleted, else 0.
    RELEASE = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
""")

    def __init__(self, client: Any, serializer: Any, bypass: Callable[[Any], bool],
                 report: Callable[[Any, Exception], None], expire: float | None,
                 lock: bool, lock_timeout: float, stale_ttl: float | None,
                 beta: float | None) -> None:
        """``client``: the cache's client (a Client, ShardedClient or RedisPyAdapter);
        ``serializer``: its serializer (``dumps``/``loads``); ``bypass(value)``:
        True for a result returned but not stored; ``report(key, exc)``:
        logs a stored value treated as a miss.  ``expire``, ``lock_timeout``
        and ``stale_ttl`` in seconds; see :meth:`~pyredcache.BaseCache.cache`
        for the options.  Raises TypeError/ValueError for a bad option."""
        for name, value in (("lock_timeout", lock_timeout), ("stale_ttl", stale_ttl),
                            ("beta", beta)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("%s must be a number, not %s" % (name, type(value).__name__))
            if not (math.isfinite(value) and value > 0):
                raise ValueError("%s must be > 0, got %r" % (name, value))
        if (stale_ttl is not None or beta is not None) and expire is None:
            raise ValueError("stale_ttl and beta need an expiry: give expire= or a "
                             "default_expire")
        self.client = client
        # a client over several servers picks the lock key's server itself
        self._sharded = getattr(client, "client_for_key", None)
        self.serializer = serializer
        self.bypass = bypass
        self.report = report
        self.expire = expire
        self.lock = lock or stale_ttl is not None
        self.lock_ms = max(1, round(lock_timeout * 1000))
        self.lock_timeout = float(lock_timeout)
        self.stale_ttl = stale_ttl
        self.beta = beta
        self.envelope = stale_ttl is not None or beta is not None
        self.store_ex = expire if stale_ttl is None or expire is None else expire + stale_ttl

    # -- stored form ----------------------------------------------------------------

    def encode(self, value: Any, delta: float) -> bytes:
        """The bytes stored for a result that took ``delta`` seconds."""
        data = self.serializer.dumps(value)
        if not self.envelope:
            return data
        assert self.expire is not None
        if isinstance(data, str):
            data = data.encode("utf-8")
        return ENVELOPE + _HEADER.pack(_now() + self.expire, delta) + data

    def decode(self, raw: bytes) -> tuple[Any, bool]:
        """(value, fresh) of stored bytes; fresh is False when the entry is
        stale or XFetch picks this hit to recompute early.  Raises
        SerializationError for bytes that cannot be decoded."""
        if not (self.envelope and raw[:len(ENVELOPE)] == ENVELOPE):
            return self.serializer.loads(raw), True
        if len(raw) < _HEADER_LEN:
            raise SerializationError("truncated pyredcache entry header")
        expiry, delta = _HEADER.unpack_from(raw, len(ENVELOPE))
        value = self.serializer.loads(raw[_HEADER_LEN:])
        now = _now()
        if now >= expiry:
            return value, False
        if self.beta is not None and delta > 0:
            # XFetch: -delta * beta * ln(u), u in (0, 1], is >= 0
            u = 1.0 - _random()
            if now - delta * self.beta * math.log(u) >= expiry:
                return value, False
        return value, True

    # -- the lock -------------------------------------------------------------------

    def _lock_client(self, lock_key: bytes) -> Any:
        client = self.client
        return client if self._sharded is None else self._sharded(lock_key)

    def _try_lock(self, lock_key: bytes) -> bytes | None:
        token = secrets.token_hex(16).encode("ascii")
        ok = self.client.execute_command("SET", lock_key, token, "NX", "PX", self.lock_ms)
        return token if ok == b"OK" else None

    def _unlock(self, lock_key: bytes, token: bytes) -> None:
        self.RELEASE(self._lock_client(lock_key), [lock_key], [token])

    # -- the call -----------------------------------------------------------------------

    def compute_and_store(self, key: bytes, f: Callable[..., Any], args: tuple,
                          kwargs: dict) -> Any:
        start = time.monotonic()
        value = f(*args, **kwargs)
        if not self.bypass(value):
            data = self.encode(value, time.monotonic() - start)
            self.client.execute_command(*set_command(key, data, self.store_ex))
        return value

    def _locked_compute(self, key: bytes, lock_key: bytes, token: bytes,
                        f: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        try:
            # Look again now that the lock is ours: a caller whose GET
            # missed may take the lock only after the previous holder
            # stored the value and let go (a slow or descheduled process).
            raw = self.client.get(key)
            if raw is not None:
                try:
                    value, fresh = self.decode(raw)
                except SerializationError:
                    pass
                except TypeError as exc:  # not bytes: a wrong reply to GET?
                    raise ReplyTypeError.after_decode_failed("GET", key, raw, exc) from None
                else:
                    if fresh:
                        return value
            return self.compute_and_store(key, f, args, kwargs)
        finally:
            self._unlock(lock_key, token)

    def lookup(self, key: bytes) -> bytes | None:
        """The stored bytes at key (GET), None on a miss: the call's one
        round trip on a hit.  A subclass may send more in that round trip
        (the regions' hit/miss statistics do)."""
        return self.client.get(key)

    def call(self, key: bytes, f: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """The decorated call: a fresh hit returns at once; otherwise see the
        module docstring."""
        raw = self.lookup(key)
        stale: Any = _NOTHING
        if raw is not None:
            try:
                value, fresh = self.decode(raw)
            except SerializationError as exc:
                self.report(key, exc)  # a miss: recomputed and overwritten
            except TypeError as exc:  # not bytes: a wrong reply to GET?
                raise ReplyTypeError.after_decode_failed("GET", key, raw, exc) from None
            else:
                if fresh:
                    return value
                stale = value
        if not self.lock:
            return self.compute_and_store(key, f, args, kwargs)
        lock_key = key + b":lock"
        token = self._try_lock(lock_key)
        if token is not None:
            return self._locked_compute(key, lock_key, token, f, args, kwargs)
        if stale is not _NOTHING:
            return stale  # someone else is recomputing: serve the stale value
        return self._wait(key, lock_key, f, args, kwargs)

    def _wait(self, key: bytes, lock_key: bytes, f: Callable[..., Any], args: tuple,
              kwargs: dict) -> Any:
        """Wait for the lock holder's value; take the lock over if it goes
        away without one; compute alone past lock_timeout seconds."""
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.005
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            client = self.client
            if self._sharded is None:
                raw, locked = client.pipeline_execute([("GET", key), ("EXISTS", lock_key)])
            else:  # the key and its lock may live on two servers
                raw, locked = client.get(key), client.exists(lock_key)
            if raw is not None:
                try:
                    return self.decode(raw)[0]
                except SerializationError as exc:
                    self.report(key, exc)
                except TypeError as exc:  # not bytes: a wrong reply to GET?
                    raise ReplyTypeError.after_decode_failed("GET", key, raw, exc) from None
            if not locked:
                token = self._try_lock(lock_key)
                if token is not None:
                    return self._locked_compute(key, lock_key, token, f, args, kwargs)
        return self.compute_and_store(key, f, args, kwargs)
