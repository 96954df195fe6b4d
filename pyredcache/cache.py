"""Cache objects: get/set by key, batch get/set, and the function decorator.

The API is rc's (``BaseCache``, ``Cache``), with its documented
limitations removed: decorated calls are keyed on the arguments bound to
the function's signature, so ``f(1, 2)`` and ``f(1, b=2)`` share one entry;
keys come from a canonical encoding of the argument values (never
``str()``, ``repr()`` or ``hash()``), so they are equal in every process;
and a cached ``None`` is a hit.
"""

from __future__ import annotations

import contextvars
import datetime
import decimal
import functools
import inspect
import logging
import time
import uuid
from typing import Any, Callable, Iterable, Mapping, TypeVar

from . import _compat
from .batch import BatchIO, BatchMode
from .clients.adapters import as_client
from .clients.client import Client, set_command
from .clients.routers import BaseRedisRouter
from .clients.shards import ShardedClient
from .clients.urls import DEFAULT_TIMEOUT, OPTIONS, options_doc, parse_url
from .exceptions import ConnectionError, ReplyTypeError, SerializationError
from .serializers import BaseSerializer, NativeSerializer
from .stampede import Guard

__all__ = ["BaseCache", "Cache", "CacheCluster", "NO_VALUE"]

log = logging.getLogger("pyredcache")

F = TypeVar("F", bound=Callable[..., Any])


class _NoValue:
    """The type of :data:`NO_VALUE`."""

    _instance = None

    def __new__(cls) -> "_NoValue":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "NO_VALUE"


#: What :meth:`BaseCache.get` returns for a miss when asked to
#: (``cache.get(key, NO_VALUE)``), to tell a miss from a cached ``None``.
NO_VALUE = _NoValue()

#: The default expiry of rc: three days, in seconds.
DEFAULT_EXPIRE = 3 * 24 * 3600

#: Where region statistics live: two integer counters per function and
#: region, plain Redis strings counted with INCR by :mod:`pyredcache.region`
#: (the cheapest write Redis has: a counted hit costs one INCR beside its
#: lookup), named by :func:`stats_keys`::
#:
#:     <namespace>pyredcache:stats:{<region>}:<function>:calls
#:     <namespace>pyredcache:stats:{<region>}:<function>:misses
#:
#: The region's name is the keys' hash tag (a RegionCache region's entries
#: hash carries the same tag: one Redis Cluster slot), and the key names are
#: the record of which functions a region holds.  :meth:`BaseCache.stats`
#: reads them.
STATS_PREFIX = "pyredcache:stats:"
#: The suffixes of a function's two counters.
STATS_CALLS = ":calls"
STATS_MISSES = ":misses"


def stats_keys(namespace: str, region: str, function: str) -> tuple[bytes, bytes]:
    """The keys (bytes, UTF-8) of function's two counters in region, in a
    cache of namespace (all str): ``(calls key, misses key)``, see
    :data:`STATS_PREFIX`.  Raises ValueError for a region name holding
    ``{`` or ``}`` (it is the keys' hash tag)."""
    if "{" in region or "}" in region:
        raise ValueError("region names must not contain '{' or '}', got %r" % (region,))
    base = "%s%s{%s}:%s" % (namespace, STATS_PREFIX, region, function)
    return (base + STATS_CALLS).encode("utf-8"), (base + STATS_MISSES).encode("utf-8")


def _glob_escape(text: str) -> str:
    """text with SCAN MATCH's special characters escaped."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _counter(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0

# Cache's positional connection options (rc's); every other option of the
# table is a keyword-only parameter, which redis_options may carry too.
_POSITIONAL_OPTIONS = ("host", "port", "db", "password", "socket_timeout")
_KEYWORD_OPTIONS = tuple(name for name in OPTIONS if name not in _POSITIONAL_OPTIONS)


class BaseCache:
    """Base class of the cache systems: everything but the client.

    :param namespace: a prefix added to every key (str), e.g. ``"models:"``;
        keys are ``namespace + key``.
    :param serializer_cls: the serializer: a :class:`BaseSerializer`
        subclass, of which one instance is made, or an instance (e.g. a
        :class:`~pyredcache.serializers.SignedSerializer`).  Default
        :class:`~pyredcache.serializers.NativeSerializer` (MessagePack with
        extension types: exact round trips, decoding never runs code).
    :param default_expire: seconds a value lives when ``set`` is given no
        ``expire``: an int or float > 0, or ``None`` for no expiry.  Default
        259200 (three days).
    :param bypass_values: return values the decorator hands back without
        storing, compared by type and equality (``bypass_values=[None]``
        does not cache ``None`` results but does cache ``0`` and ``False``).
    :param ignore_errors: fail open (bool, default False; may be changed at
        run time).  True: when Redis cannot be used (ConnectionError,
        TimeoutError, :class:`~pyredcache.exceptions.CircuitOpenError`), a
        read is a miss (``get`` returns its default, ``get_many`` None for
        each key, a decorated function computes its result, a batch's
        promises are resolved by computing) and a write a no-op (``set``,
        ``delete``, ... return False); nothing is raised.  Error replies
        (NOPERM, WRONGTYPE, ...) are raised all the same: a misconfigured
        server must not look like a miss.  The outage is logged once by the
        server's circuit breaker (see :mod:`pyredcache.clients.breaker`),
        not once per call.  False: those errors are raised.
    """

    def __init__(
        self,
        namespace: str | None = None,
        serializer_cls: type[BaseSerializer] | None = None,
        default_expire: float | None = DEFAULT_EXPIRE,
        bypass_values: Iterable[Any] = (),
        ignore_errors: bool = False,
    ) -> None:
        if namespace is not None and not isinstance(namespace, str):
            raise TypeError("namespace must be str or None, not %s" % type(namespace).__name__)
        self.namespace = namespace or ""
        if serializer_cls is None:
            serializer_cls = NativeSerializer
        serializer = serializer_cls() if isinstance(serializer_cls, type) else serializer_cls
        if not (callable(getattr(serializer, "dumps", None))
                and callable(getattr(serializer, "loads", None))):
            raise TypeError(
                "serializer_cls must be a serializer class or instance (with dumps "
                "and loads), not %r" % (serializer_cls,)
            )
        self.serializer_cls = serializer_cls
        self.serializer = serializer
        self._reported: set = set()
        if default_expire is not None:
            set_command("k", b"", default_expire)  # validates: > 0 seconds
        self.default_expire = default_expire
        self.bypass_values = list(bypass_values)
        self.ignore_errors = bool(ignore_errors)
        self._quiet_until = 0.0
        self._core = _compat.core
        # The batch_mode() block open in this thread or task, if any.
        self._batch_var: contextvars.ContextVar = contextvars.ContextVar(
            "pyredcache.batch", default=None)

    # -- the client --------------------------------------------------------------

    def get_client(self) -> Any:
        """rc's ``get_client()``: the Redis client of this cache.  rc's
        extension point too: a subclass may override it to hand the cache
        another client, which :attr:`client` then sends the cache's
        commands through.  BaseCache has none: NotImplementedError."""
        raise NotImplementedError

    @functools.cached_property
    def client(self) -> Any:
        """The client this cache sends its own commands through (a
        :class:`~pyredcache.Client` over the core, a
        :class:`~pyredcache.ShardedClient`, or a
        :class:`~pyredcache.clients.RedisPyAdapter` over a user's client),
        made once (after ``del cache.client``, made again on next use;
        functions decorated before keep the client they started with).
        When a subclass overrides :meth:`get_client`, it is made from what
        that returns (see :func:`~pyredcache.clients.as_client`)."""
        return self._make_client()

    def _make_client(self) -> Any:
        return as_client(self.get_client())

    def __pyredcache_client__(self) -> Any:
        """The client this cache talks to (:attr:`client`).  A cache handed
        to a lock, an id sequence or a container is asked for its client
        this way (:func:`~pyredcache.clients.as_client`): the clients layer
        knows nothing of caches."""
        return self.client

    # -- keys and values ---------------------------------------------------------

    def _key(self, key: str | bytes) -> str | bytes:
        if type(key) is str:
            return self.namespace + key
        if type(key) is bytes:
            return self.namespace.encode("utf-8") + key
        raise TypeError("cache keys must be str or bytes, not %s" % type(key).__name__)

    def _expire(self, expire: float | None) -> float | None:
        return self.default_expire if expire is None else expire

    def _decode(self, key: Any, raw: bytes | None, default: Any = None,
                command: str = "GET") -> Any:
        if raw is None:
            return default
        try:
            return self.serializer.loads(raw)
        except SerializationError as exc:  # InvalidSignature is one
            self._report(key, exc)
            return default
        except TypeError as exc:  # not bytes: the wrong reply for the command?
            raise ReplyTypeError.after_decode_failed(command, key, raw, exc) from None

    def _report(self, key: Any, exc: Exception) -> None:
        """Log a bad stored value once per key (the set of keys is bounded)."""
        if key in self._reported:
            return
        if len(self._reported) >= 10000:
            self._reported.clear()
        self._reported.add(key)
        log.warning("pyredcache: treating %r as a miss: %s", key, exc)

    def _failed_open(self, exc: ConnectionError) -> None:
        """A call that could not use Redis failed open (ignore_errors).  The
        servers' circuit breakers log the outage once; a client without one
        (a user's own, or breaker_threshold=0) gets one warning a minute
        from here."""
        if _has_breakers(self.client):
            return
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + 60.0
            log.warning("pyredcache: %r cannot use Redis (%s: %s): failing open, reads "
                        "miss and writes are dropped (next warning in 60 s at most)",
                        self, type(exc).__name__, exc)

    def health(self) -> dict[str, Any]:
        """The state of this cache's servers, as plain data::

            {"ignore_errors": bool,
             "servers": {name: {"address": str, "breaker": {...} or None}}}

        one server named by its address for a :class:`Cache`, each host by
        its name for a :class:`CacheCluster`; ``breaker`` is the circuit
        breaker's :meth:`~pyredcache.clients.breaker.CircuitBreaker.health`
        (``state``: closed/open/half-open, ``consecutive_failures``,
        ``failures``, ``opened``, ``rejected``, ``retry_in`` and
        ``down_for`` in seconds, ``last_error``), None for a client
        without one (a user's own client).  Sends nothing to Redis."""
        client = self.client
        clients = getattr(client, "clients", None)
        if isinstance(clients, dict):
            servers = {str(name): c.health() for name, c in clients.items()}
        elif callable(getattr(client, "health", None)):
            servers = {client.address: client.health()}
        else:
            servers = {repr(client): {"address": repr(client), "breaker": None}}
        return {"ignore_errors": self.ignore_errors, "servers": servers}

    def _bypass(self, value: Any) -> bool:
        for b in self.bypass_values:
            if type(b) is type(value) and (b is value or b == value):
                return True
        return False

    # -- the rc API --------------------------------------------------------------

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """Return the value cached at key, or ``default`` (``None``) on a miss.

        Pass :data:`NO_VALUE` as ``default`` to tell a miss from a cached
        ``None``.  Stored bytes that this cache's serializer cannot decode
        (written by another serializer, such as rc's default JSON, or
        corrupted), and a value whose signature does not check (with a
        :class:`~pyredcache.serializers.SignedSerializer`), are a miss,
        logged once per key (the decorator then recomputes and overwrites
        the entry).  Raises ConnectionError/TimeoutError when Redis cannot
        be reached, unless ``ignore_errors`` (then: ``default``).
        """
        full = self._key(key)
        try:
            raw = self.client.get(full)
        except ConnectionError as exc:
            if not self.ignore_errors:
                raise
            self._failed_open(exc)
            return default
        return self._decode(full, raw, default)

    def set(self, key: str | bytes, value: Any, expire: float | None = None) -> bool:
        """Store value at key for ``expire`` seconds (``default_expire`` when
        None).  Returns True when stored.

        Raises :class:`~pyredcache.exceptions.SerializationError` naming the
        type when the value cannot be encoded; nothing is written then.
        With ``ignore_errors``, False when Redis cannot be used.
        """
        data = self.serializer.dumps(value)
        command = set_command(self._key(key), data, self._expire(expire))
        try:
            return self.client.execute_command(*command) == b"OK"
        except ConnectionError as exc:
            return self._write_failed(exc)

    def _mget_failed_open(self, keys: list, exc: ConnectionError) -> list:
        """The raw values of keys after an MGET failed (ignore_errors): on
        client-side shards, what the hosts that answer have (one dead host
        costs only its keys); else None for each."""
        self._failed_open(exc)
        partial = getattr(self.client, "mget_partial", None)
        if partial is None:
            return [None] * len(keys)
        try:
            raws, _ = partial(keys)
        except ConnectionError:
            return [None] * len(keys)
        return raws

    def _write_failed(self, exc: ConnectionError) -> bool:
        if not self.ignore_errors:
            raise exc
        self._failed_open(exc)
        return False

    def delete(self, key: str | bytes) -> bool:
        """Delete key; True when it existed.  With ``ignore_errors``, False
        when Redis cannot be used, and a warning naming the key is logged
        every time (not once per outage): a lost deletion can serve stale
        data once Redis is back."""
        full = self._key(key)
        try:
            return self.client.delete(full) == 1
        except ConnectionError as exc:
            return self._delete_failed(exc, [full])

    def _delete_failed(self, exc: ConnectionError, keys: list) -> bool:
        if not self.ignore_errors:
            raise exc
        log.warning("pyredcache: %d key(s) NOT deleted, Redis cannot be used (%s: %s): %s",
                    len(keys), type(exc).__name__, exc,
                    ", ".join(repr(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else ""))
        return False

    def get_many(self, *keys: str | bytes) -> list:
        """Return the values of keys in order, ``None`` for each miss (an
        undecodable stored value is one, as in :meth:`get`).

        One round trip (MGET).
        """
        if not keys:
            return []
        namespace = self.namespace
        full: list[Any]
        try:
            full = [namespace + k for k in keys]  # type: ignore[operator]  # str keys
        except TypeError:  # bytes keys, or a bad key: _key encodes or raises
            key = self._key
            full = [key(k) for k in keys]
        try:
            raws = self.client.mget(full)
        except ConnectionError as exc:
            if not self.ignore_errors:
                raise
            raws = self._mget_failed_open(full, exc)
        loads = self.serializer.loads
        try:
            values = [None if raw is None else loads(raw) for raw in raws]
        except (SerializationError, TypeError):
            # rare: redo item by item, undecodable values are misses and a
            # reply of the wrong type raises ReplyTypeError naming its key
            self._check_mget(full, raws)
            decode = self._decode
            return [decode(k, raw, None, "MGET") for k, raw in zip(full, raws)]
        if len(values) != len(full):
            self._check_mget(full, raws)
        return values

    @staticmethod
    def _check_mget(keys: list, raws: Any) -> None:
        """Raise ReplyTypeError unless raws is a list, one item per key."""
        if type(raws) is not list or len(raws) != len(keys):
            raise ReplyTypeError("MGET", keys[0], raws,
                                 "an array of %d bulk strings or nils" % len(keys))

    def set_many(self, mapping: Mapping[Any, Any], expire: float | None = None) -> bool:
        """Store every key/value of mapping for ``expire`` seconds; True when
        all were stored.

        One round trip (a pipeline of SETs).  Every value is encoded before
        anything is sent: one that cannot be encoded raises
        SerializationError and nothing is written.
        """
        if not isinstance(mapping, Mapping):
            raise TypeError("mapping must be a mapping, not %s" % type(mapping).__name__)
        if not mapping:
            return True
        ex = self._expire(expire)
        dumps = self.serializer.dumps
        commands = [set_command(self._key(k), dumps(v), ex) for k, v in mapping.items()]
        try:
            replies = self.client.pipeline_execute(commands)
        except ConnectionError as exc:
            return self._write_failed(exc)
        return all(r == b"OK" for r in replies)

    def delete_many(self, *keys: str | bytes) -> bool:
        """Delete keys in one round trip (DEL); True when every one of them
        existed (``ignore_errors``: as :meth:`delete`)."""
        if not keys:
            return True
        full = {self._key(k) for k in keys}
        try:
            return self.client.delete(*full) == len(full)
        except ConnectionError as exc:
            return self._delete_failed(exc, sorted(full))

    # -- the decorator -----------------------------------------------------------

    def cache(
        self,
        key_prefix: str | None = None,
        expire: float | None = None,
        include_self: bool = False,
        *,
        lock: bool = False,
        lock_timeout: float = 10.0,
        stale_ttl: float | None = None,
        beta: float | None = None,
    ) -> Callable[[F], F]:
        """Decorator caching a function's results, keyed on its arguments.

        ::

            @cache.cache()
            def load(name, offset):
                return load_from_database(name, offset)

        The key is ``namespace + (key_prefix or module.qualname) + ":" +`` a
        32-hex-digit BLAKE2b digest of the canonical encoding of the
        arguments bound to the signature (defaults applied), so
        ``load("a", 1)`` and ``load("a", offset=1)`` are one entry, and
        ``load(1)`` and ``load("1")`` two.  Arguments must be values the
        key encoding knows (None, bool, int, float, str, bytes, and
        tuples, lists, dicts, sets of them, among others) or objects with
        a ``__cache_key__()`` method returning one; anything else raises
        TypeError naming the argument.

        :param key_prefix: replaces ``module.qualname`` in the key (str).
        :param expire: seconds results live (default: the cache's
            ``default_expire``).
        :param include_self: by default the first argument of a function
            whose first parameter is named ``self`` or ``cls`` is left out
            of the key, so all instances share entries; True keys on it
            too: on its ``__cache_key__()`` method, or (rc's contract) on
            ``str(self)`` when its class defines ``__str__``.  An object
            with neither raises TypeError at the call: the default
            ``object.__str__`` holds a memory address, a different key in
            every process.

        :param lock: one computation per miss (keyword only): the first
            caller to miss takes a recompute lock and computes; callers in
            any process that miss meanwhile wait for its value instead of
            computing too (see :mod:`pyredcache.stampede`).
        :param lock_timeout: seconds the recompute lock lives and a waiter
            waits before it computes for itself (float > 0, default 10).
        :param stale_ttl: seconds an entry is kept past its expiry and
            served, stale, while one caller recomputes it
            (stale-while-revalidate; implies ``lock``).
        :param beta: XFetch probabilistic early recomputation (Vattani et
            al., VLDB 2015): hits close to expiry recompute early with a
            probability that grows with the last computation's duration;
            1.0 is the paper's optimum.

        Decorating a coroutine function (``async def``) raises TypeError at
        once: its call returns a coroutine, which cannot be cached.

        A cached ``None`` is a hit.  Results in ``bypass_values`` are
        returned but not stored.  A result that cannot be serialized raises
        SerializationError (the function ran; nothing was stored).  A stored
        value that cannot be decoded, or whose signature does not check, is
        a miss: logged once per key, recomputed and overwritten.  When
        Redis cannot be used the call raises ConnectionError/TimeoutError,
        or with the cache's ``ignore_errors`` computes and returns the
        result (an error the function itself raises is never swallowed,
        and the function never runs twice for one call).
        """
        if key_prefix is not None and not isinstance(key_prefix, str):
            raise TypeError("key_prefix must be str or None")
        if expire is not None:
            set_command("k", b"", expire)  # validates now, not on first call

        def decorator(f: F) -> F:
            builder = make_key_builder(f, key_prefix, include_self, namespace=self.namespace,
                                       core=self._core)
            ex = self._expire(expire)
            client = self.client
            serializer = self.serializer
            loads, dumps = serializer.loads, serializer.dumps
            bypass = self._bypass
            report = self._report
            current_batch = self._batch_var.get
            cache = self
            if lock or stale_ttl is not None or beta is not None:
                guard = Guard(client, serializer, bypass, report, ex, lock, lock_timeout,
                              stale_ttl, beta)

                @functools.wraps(f)
                def guarded(*args: Any, **kwargs: Any) -> Any:
                    key = builder(args, kwargs)
                    batch = current_batch()
                    if batch is not None:
                        return batch.add(key, f, args, kwargs, ex, guard)
                    if cache.ignore_errors:
                        return fail_open_call(guard, cache, key, f, args, kwargs)
                    return guard.call(key, f, args, kwargs)

                guarded.__pyredcache__ = _Decorated(self, builder)  # type: ignore[attr-defined]
                return guarded  # type: ignore[return-value]

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                key = builder(args, kwargs)
                batch = current_batch()
                if batch is not None:
                    return batch.add(key, f, args, kwargs, ex)
                try:
                    raw = client.get(key)
                except ConnectionError as exc:
                    if not cache.ignore_errors:
                        raise
                    cache._failed_open(exc)
                    return f(*args, **kwargs)
                if raw is not None:
                    try:
                        return loads(raw)
                    except SerializationError as exc:
                        report(key, exc)  # a miss: recomputed and overwritten
                    except TypeError as exc:  # not bytes: a wrong reply to GET?
                        raise ReplyTypeError.after_decode_failed("GET", key, raw,
                                                                 exc) from None
                rv = f(*args, **kwargs)
                if not bypass(rv):
                    try:
                        client.execute_command(*set_command(key, dumps(rv), ex))
                    except ConnectionError as exc:
                        cache._write_failed(exc)
                return rv

            wrapper.__pyredcache__ = _Decorated(self, builder)  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    def batch_mode(self) -> BatchMode:
        """A context manager in which decorated calls return promises.

        ::

            with cache.batch_mode():
                promises = [load_post(i) for i in ids]
            posts = [p.value for p in promises]

        Inside the block a call to a function decorated by this cache
        returns a pending :class:`~pyredcache.Promise`.  When the block
        ends, all the keys are fetched in one round trip per server (all
        servers in parallel on a :class:`CacheCluster`), misses are computed
        and written back in one pipeline per server, and every promise is
        resolved; calls with equal arguments share one fetch and one
        computation.  A function that raises rejects its own promises.

        The batch belongs to the thread or asyncio task that opened it.  If
        the block raises, its pending promises are rejected with
        :class:`~pyredcache.exceptions.PromiseError` (chained to the
        exception) and nothing is fetched or written.  Leaving the block
        raises ConnectionError when Redis cannot be reached (the promises
        are rejected with it), and otherwise the first exception a
        promise's ``then()`` callback raised.
        """
        return BatchMode(self._batch_io(), self._batch_var)

    def _batch_io(self) -> BatchIO:
        """What a batch of this cache needs (see :class:`~pyredcache.batch.BatchIO`)."""
        client = self.client

        def fetch(keys: list) -> list:
            try:
                return client.mget(keys)
            except ConnectionError as exc:
                if not self.ignore_errors:
                    raise
                return self._mget_failed_open(keys, exc)

        def store(commands: list) -> list:
            try:
                return client.pipeline_execute(commands)
            except ConnectionError as exc:
                self._write_failed(exc)
                return []
        return BatchIO(fetch, store, self.serializer, self._bypass, self._report,
                       self._core.Promise)

    def invalidate(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Delete the cached result of ``func(*args, **kwargs)``.

        ``func`` is a function decorated by this cache's :meth:`cache`.
        Arguments are bound as for the call, so any spelling of the same
        call (positional or keyword) invalidates the same entry.  Returns
        True when an entry was deleted.  Raises TypeError when func is not
        decorated by this cache.  When Redis cannot be used: raises, or
        with ``ignore_errors`` returns False and logs a warning naming the
        key each time (as :meth:`delete`).
        """
        info = getattr(func, "__pyredcache__", None)
        if not isinstance(info, _Decorated) or info.cache is not self:
            raise TypeError("%r is not a function decorated by this cache" % (func,))
        key = info.builder(args, kwargs)
        try:
            return self.client.delete(key) == 1
        except ConnectionError as exc:
            return self._delete_failed(exc, [key])

    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        """Hit and miss counts of the cache regions stored in this cache.

        Returns ``{region: {function: {"hits": h, "misses": m}}}`` (str
        keys, int counts; a :class:`~pyredcache.Region` under its dotted
        name, e.g. ``"root.users"``), read from the counters named
        ``<namespace>pyredcache:stats:{<region>}:<function>:calls`` and
        ``...:misses`` (:data:`STATS_PREFIX`): one SCAN MATCH over every
        server of the cache (host after host on a :class:`CacheCluster`),
        then one MGET (one per server, servers in parallel).

        A *call* is one call of a region-decorated function
        (:func:`pyredcache.cache_region`, :meth:`pyredcache.Region.cached`)
        or one lookup of a :class:`~pyredcache.Region` (``r[x]``,
        ``r.get(x)``, ``get_or_compute``: function ``"[key]"``) while
        statistics were on; a *miss* is a call that found no usable value
        (its result was not in Redis, was stale, or was unreadable), a
        *hit* a call served from Redis; ``hits = calls - misses``.  The
        counts are Redis' own (every process and thread adds to them
        atomically) and persist until the counters are deleted:
        invalidating a region drops its entries, not its counts.  Regions of no call yet
        are absent.  Raises ConnectionError / TimeoutError when a server
        cannot be reached.
        """
        client = self.client
        prefix = self.namespace + STATS_PREFIX
        keys = sorted(set(client.scan_iter(match=_glob_escape(prefix) + "{*}:*")))
        if not keys:
            return {}
        values = client.mget(keys)
        start = len(prefix.encode("utf-8"))
        counts: dict[str, dict[str, list[int]]] = {}
        for key, value in zip(keys, values):
            name = key[start:].decode("utf-8", "replace")
            region, sep, rest = name[1:].partition("}:")
            function, colon, kind = rest.rpartition(":")
            if not (sep and colon) or kind not in ("calls", "misses") or value is None:
                continue  # not a counter of ours (or deleted since the SCAN)
            pair = counts.setdefault(region, {}).setdefault(function, [0, 0])
            pair[0 if kind == "calls" else 1] = _counter(value)
        return {
            region: {function: {"hits": max(calls - misses, 0), "misses": misses}
                     for function, (calls, misses) in sorted(functions.items())}
            for region, functions in sorted(counts.items())
        }


def _has_breakers(client: Any) -> bool:
    """Whether every server of client has a circuit breaker (which logs its
    outages)."""
    clients = getattr(client, "clients", None)
    if isinstance(clients, dict):
        return all(getattr(c, "breaker", None) is not None for c in clients.values())
    return getattr(client, "breaker", None) is not None


_RAN = object()


def fail_open_call(guard: Guard, cache: BaseCache, key: bytes, f: Callable[..., Any],
                   args: tuple, kwargs: dict) -> Any:
    """``guard.call`` failing open (``ignore_errors``): a ConnectionError
    from Redis before the function ran computes the result; one after it
    returned (storing it failed) returns the result; one the function
    itself raised propagates.  The function never runs twice."""
    state: list = []

    def run(*a: Any, **kw: Any) -> Any:
        state.append(_RAN)
        value = f(*a, **kw)
        state.append(value)
        return value
    try:
        return guard.call(key, run, args, kwargs)
    except ConnectionError as exc:
        if not state:  # Redis failed before the function ran
            cache._failed_open(exc)
            return f(*args, **kwargs)
        if len(state) == 2:  # it returned; storing its result failed
            cache._failed_open(exc)
            return state[1]
        raise  # the function itself raised it


class _Decorated:
    """What a decorated function remembers: its cache and key builder."""

    __slots__ = ("cache", "builder")

    def __init__(self, cache: BaseCache, builder: Any) -> None:
        self.cache = cache
        self.builder = builder


def function_name(f: Callable[..., Any], key_prefix: str | None = None) -> str:
    """The name a decorated function's keys (and statistics) go under
    (str): ``key_prefix`` when given, else ``module.qualname``.  Raises
    TypeError when f has neither ``__qualname__`` nor ``__name__``."""
    if key_prefix is not None:
        return key_prefix
    module = getattr(f, "__module__", None) or "__main__"
    qualname = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
    if qualname is None:
        raise TypeError("%r has no __qualname__: pass key_prefix" % (f,))
    return "%s.%s" % (module, qualname)


def make_key_builder(f: Callable[..., Any], key_prefix: str | None, include_self: bool, *,
                     namespace: str, core: Any) -> Any:
    """The key builder of a decorated function: ``builder(args, kwargs)``
    gives the key (bytes) ``namespace + (key_prefix or module.qualname) +
    ":" +`` the digest of the arguments bound to f's signature (see
    :meth:`BaseCache.cache`), with the core's KeyBuilder.  Raises
    TypeError for what cannot be decorated (not callable, a coroutine
    function, no readable signature)."""
    if not callable(f):
        raise TypeError("@cache.cache() decorates functions, not %s" % type(f).__name__)
    if inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f):
        raise TypeError(
            "@cache.cache() cannot decorate the coroutine function %s: calling it "
            "returns a coroutine, not its result, and a coroutine cannot be cached "
            "(there is no asyncio API yet)"
            % getattr(f, "__qualname__", f))
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError) as exc:
        raise TypeError("cannot read the signature of %r: %s" % (f, exc)) from None
    params = list(sig.parameters.values())
    key_prefix = function_name(f, key_prefix)
    drop_first = bool(
        not include_self
        and params
        and params[0].name in ("self", "cls")
        and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD)
    )
    prefix = (namespace + key_prefix + ":").encode("utf-8")
    builder = core.KeyBuilder(
        prefix,
        tuple(p.name for p in params),
        tuple(int(p.kind) for p in params),
        tuple(p.default for p in params),
        drop_first,
    )
    if (include_self and params and params[0].name == "self"
            and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD)):
        return _SelfKeyBuilder(builder, params[0].name)
    return builder


# Types the key encoding knows itself (and their subclasses): never keyed
# on str().
_NATIVE_KEY_TYPES = (type(None), bool, int, float, complex, str, bytes, bytearray, memoryview,
                     tuple, list, dict, set, frozenset, datetime.date, datetime.time,
                     datetime.timedelta, decimal.Decimal, uuid.UUID)


def _keyed_by_str(t: type) -> bool:
    """rc's ``include_self`` contract: an object whose class defines its own
    ``__str__`` (and no ``__cache_key__``) is keyed on ``str(self)``.  The
    default ``object.__str__`` holds a memory address (a different key in
    every process) and is refused, as any unkeyable argument is."""
    return (getattr(t, "__cache_key__", None) is None
            and t.__str__ is not object.__str__
            and not issubclass(t, _NATIVE_KEY_TYPES))


class _StrKey:
    """Stands in for ``self`` in the key: the class and ``str(self)``."""

    __slots__ = ("key",)

    def __init__(self, obj: Any) -> None:
        t = type(obj)
        self.key = ("__str__", "%s.%s" % (t.__module__, t.__qualname__), str(obj))

    def __cache_key__(self) -> tuple:
        return self.key


class _SelfKeyBuilder:
    """The key builder of a method decorated with ``include_self=True``:
    ``self`` is keyed by its ``__cache_key__()``, else (rc's contract) by
    ``str(self)`` when its class defines ``__str__``."""

    __slots__ = ("builder", "name")

    def __init__(self, builder: Any, name: str) -> None:
        self.builder = builder
        self.name = name

    def __call__(self, args: tuple, kwargs: dict) -> bytes:
        if args:
            if _keyed_by_str(type(args[0])):
                args = (_StrKey(args[0]), *args[1:])
        elif self.name in kwargs and _keyed_by_str(type(kwargs[self.name])):
            kwargs = {**kwargs, self.name: _StrKey(kwargs[self.name])}
        return self.builder(args, kwargs)


class Cache(BaseCache):
    """A cache on one Redis server.

    rc's positional parameters, in rc's order (the connection options
    from the table :data:`pyredcache.clients.urls.OPTIONS`, as all below, shared
    with :class:`~pyredcache.Client` and the URLs of :meth:`from_url`):

{positional}
    :param namespace: prefix added to every key (str).
    :param serializer_cls: serializer class or instance; default
        NativeSerializer.
    :param default_expire: seconds a value lives when no expire is given
        (None: no expiry); default 259200 (three days).
    :param redis_options: more connection options (dict), any of the
        keyword-only ones below (rc passed this dict to redis-py).  Unknown
        names raise TypeError, and so does a name also given, with another
        value, as a keyword.
    :param bypass_values: results the decorator does not store.

    Every other connection option is a keyword-only parameter:

{options}

    Nothing connects until the first command.  An unreachable server then
    raises ConnectionError within ``socket_connect_timeout`` seconds, and
    a server that accepts and never answers (or is stopped) TimeoutError
    within ``socket_timeout`` seconds.

    :param redis: a client of your own instead of connection options
        (keyword only): a ``redis.Redis`` over TCP or a unix socket (the
        cache then talks to its server through pyredcache's C core, with
        the same settings), or any other redis-py-compatible client
        (``fakeredis.FakeRedis``, a TLS or Sentinel ``redis.Redis``),
        through which the cache then sends its commands; the codec and
        the key builder still do their work.  Giving it together with a
        connection option raises TypeError.
    :param ignore_errors: fail open (keyword only, bool, default False):
        with Redis unreachable, reads are misses and writes no-ops, nothing
        is raised (see :class:`BaseCache`).  The circuit breaker
        (``breaker_threshold``, ``breaker_cooldown``) makes each call of an
        outage cost microseconds instead of a timeout.

    :meth:`get_client` returns a redis-py ``redis.Redis`` for the same
    server (rc's API: the whole Redis command set); the cache's own
    commands go through :attr:`client`.  A subclass may override
    :meth:`get_client` to hand the cache another client (rc's extension
    point).
    """

    def __init__(
        self,
        host: str = OPTIONS["host"].default,
        port: int = OPTIONS["port"].default,
        db: int = OPTIONS["db"].default,
        password: str | None = OPTIONS["password"].default,
        socket_timeout: float | None = OPTIONS["socket_timeout"].default,
        namespace: str | None = None,
        serializer_cls: type[BaseSerializer] | None = None,
        default_expire: float | None = DEFAULT_EXPIRE,
        redis_options: Mapping[str, Any] | None = None,
        bypass_values: Iterable[Any] = (),
        *,
        unix_socket_path: str | None = OPTIONS["unix_socket_path"].default,
        username: str | None = OPTIONS["username"].default,
        socket_connect_timeout: float | None = OPTIONS["socket_connect_timeout"].default,
        busy_poll: int | None = OPTIONS["busy_poll"].default,
        max_idle_connections: int = OPTIONS["max_idle_connections"].default,
        breaker_threshold: int = OPTIONS["breaker_threshold"].default,
        breaker_cooldown: float = OPTIONS["breaker_cooldown"].default,
        redis: Any = None,
        ignore_errors: bool = False,
    ) -> None:
        super().__init__(namespace, serializer_cls, default_expire, bypass_values,
                         ignore_errors)
        options = dict(redis_options or {})
        unknown = set(options) - set(_KEYWORD_OPTIONS)
        if unknown:
            raise TypeError(
                "unknown redis_options: %s (known: %s)"
                % (", ".join(sorted(unknown)), ", ".join(sorted(_KEYWORD_OPTIONS)))
            )
        keywords = dict(
            unix_socket_path=unix_socket_path, username=username,
            socket_connect_timeout=socket_connect_timeout, busy_poll=busy_poll,
            max_idle_connections=max_idle_connections, breaker_threshold=breaker_threshold,
            breaker_cooldown=breaker_cooldown,
        )
        for name, value in keywords.items():
            if name in options and value != OPTIONS[name].default \
                    and options[name] != value:
                raise TypeError("%s given twice, as a keyword (%r) and in redis_options "
                                "(%r)" % (name, value, options[name]))
            options.setdefault(name, value)
        self.host = host
        self.port = port
        self.db = db
        self.password = password
        self.socket_timeout = socket_timeout
        #: The keyword-only connection options in effect (dict).
        self.redis_options = options
        self._client_options: dict[str, Any] = dict(
            host=host, port=port, db=db, password=password, socket_timeout=socket_timeout,
            **options,
        )
        self._redis = redis
        if redis is not None:
            given = {name: value for name, value in self._client_options.items()
                     if value != OPTIONS[name].default}
            if given:
                raise TypeError("give either redis= (a client) or connection options, "
                                "not both: %s" % ", ".join(sorted(given)))
            client = as_client(redis)  # TypeError now for what it cannot use
        else:
            # Build the client now so bad options fail here, not on first use
            # (a subclass with its own get_client() gets its client from it).
            client = Client(**self._client_options)
        if type(self).get_client is Cache.get_client:
            self.__dict__["client"] = client

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "Cache":
        """Make a Cache from a URL: ``redis://[[user]:password@]host[:port][/db]``
        or ``unix:///path/to/socket?db=N``, with any connection option in
        the query string (``?socket_timeout=0.5&busy_poll=0``, see
        :func:`~pyredcache.clients.urls.parse_url`).

        Keyword arguments are Cache's own (namespace, serializer_cls, a
        connection option, ...) and override what the URL says, as do the
        options of a ``redis_options`` dict.  Raises ValueError for a
        malformed URL.
        """
        options = parse_url(url)
        for name in kwargs.get("redis_options") or ():
            options.pop(name, None)  # given explicitly: it wins over the URL
        options.update(kwargs)
        return cls(**options)

    def get_client(self) -> Any:
        """rc's ``get_client()``: a Redis client with the whole command set
        (``incr``, ``hset``, ``pipeline``, ...) for this cache's server.

        The client given as ``redis=``, if any; else a redis-py
        ``redis.Redis`` with this cache's host or unix socket, port, db,
        user name, password and timeouts, made on first call and kept.
        The cache's own commands do not go through it: :attr:`client`
        (pyredcache's C core) carries them.  Raises ImportError, naming
        the package, when redis-py (an optional dependency) is not
        installed.  A subclass may override it to hand the cache another
        client (rc's extension point; see :attr:`client`).
        """
        if self._redis is not None:
            return self._redis
        made = self.__dict__.get("_redis_py")
        if made is None:
            try:
                import redis as redis_py
            except ImportError:
                raise ImportError("Cache.get_client() returns a redis-py client; install "
                                  "redis-py: pip install redis") from None
            o = self._client_options
            made = self.__dict__.setdefault("_redis_py", redis_py.Redis(
                host=o["host"], port=o["port"], db=o["db"], password=o["password"],
                username=o["username"], socket_timeout=o["socket_timeout"],
                socket_connect_timeout=o["socket_connect_timeout"],
                unix_socket_path=o["unix_socket_path"]))
        return made

    def _make_client(self) -> Any:
        if type(self).get_client is not Cache.get_client:
            return as_client(self.get_client())  # rc's extension point
        if self._redis is not None:
            return as_client(self._redis)
        return Client(**self._client_options)

    def __repr__(self) -> str:
        return "<pyredcache.Cache %r namespace=%r>" % (self.client, self.namespace)


Cache.__doc__ = (Cache.__doc__ or "").replace(
    "{positional}\n", options_doc(_POSITIONAL_OPTIONS)).replace(
    "{options}\n", options_doc(_KEYWORD_OPTIONS))


class CacheCluster(BaseCache):
    """A cache spread over several Redis servers (rc's ``CacheCluster``).

    ::

        cache = CacheCluster({
            "cache01": {"host": "redis-host01"},
            "cache02": {"host": "redis-host02", "port": 6380},
            "cache03": {"unix_socket_path": "/tmp/redis.sock", "db": 1},
        })

    Every key lives on the server the router names; every :class:`Cache`
    method and the decorator work unchanged.  ``get_many``, ``set_many``,
    ``delete_many`` and :meth:`~BaseCache.batch_mode` send one pipeline to
    each server, all servers in flight at once, and return results in the
    caller's key order.

    :param hosts: host name to :class:`~pyredcache.clients.shards.HostConfig`
        options (dict: ``host``, ``port``, ``unix_socket_path``, ``db``,
        ``password``), or to HostConfig instances.
    :param namespace: prefix added to every key (str).
    :param serializer_cls: serializer class or instance; default
        NativeSerializer.
    :param default_expire: seconds a value lives when no expire is given
        (None: no expiry); default 259200 (three days).
    :param router_cls: a :class:`~pyredcache.clients.routers.BaseRedisRouter`
        subclass; default :class:`~pyredcache.clients.routers.RedisCRC32HashRouter`
        (rc's default; :class:`~pyredcache.clients.routers.RedisConsistentHashRouter`
        moves fewer keys when servers are added or removed).
    :param router_options: keyword arguments for ``router_cls`` (dict).
    :param pool_cls: per-server client class, :class:`~pyredcache.Client`
        or a subclass.
    :param pool_options: per-server client options (dict): any
        :class:`~pyredcache.Client` option (:data:`pyredcache.clients.urls.OPTIONS`)
        but the address ones HostConfig gives: ``socket_timeout`` (seconds,
        default ``poller_timeout``), ``socket_connect_timeout`` (seconds,
        default 1.0), ``busy_poll`` (microseconds), ``username``,
        ``max_idle_connections``.
    :param max_concurrency: servers in flight at once in a multi-key
        operation (int >= 1); default 64.
    :param poller_timeout: seconds any wait for one server may last (float >
        0), default 1.0; a server silent that long fails with TimeoutError.
        It bounds every wait of a multi-key operation (the fan-out) and,
        unless ``pool_options`` gives another ``socket_timeout``, of a
        single-key one.  None waits for ever (not recommended).
    :param bypass_values: results the decorator does not store.

    :param ignore_errors: fail open (bool, default False; see
        :class:`BaseCache`): a host that cannot be used makes its keys
        misses and its writes no-ops.  Each host has its own circuit
        breaker (``pool_options={"breaker_threshold": ...,
        "breaker_cooldown": ...}``).

    A server that is down or times out raises
    :class:`~pyredcache.exceptions.ConnectionError` (TimeoutError is one)
    whose message names the host; the other servers' connections stay
    usable.  Nothing connects until the first command; connecting to a
    server is bounded by ``socket_connect_timeout``.
    """

    def __init__(
        self,
        hosts: Mapping[Any, Any],
        namespace: str | None = None,
        serializer_cls: type[BaseSerializer] | None = None,
        default_expire: float | None = DEFAULT_EXPIRE,
        router_cls: type[BaseRedisRouter] | None = None,
        router_options: Mapping[str, Any] | None = None,
        pool_cls: type[Client] | None = None,
        pool_options: Mapping[str, Any] | None = None,
        max_concurrency: int = 64,
        poller_timeout: float | None = DEFAULT_TIMEOUT,
        bypass_values: Iterable[Any] = (),
        ignore_errors: bool = False,
    ) -> None:
        super().__init__(namespace, serializer_cls, default_expire, bypass_values,
                         ignore_errors)
        # Built now so bad options fail here (see Cache.__init__).
        client = ShardedClient(
            hosts, router_cls=router_cls, router_options=router_options, pool_cls=pool_cls,
            pool_options=pool_options, max_concurrency=max_concurrency,
            poller_timeout=poller_timeout,
        )
        self._client_options: dict[str, Any] = dict(
            hosts=dict(hosts), router_cls=router_cls,
            router_options=dict(router_options or {}), pool_cls=pool_cls,
            pool_options=dict(pool_options or {}), max_concurrency=max_concurrency,
            poller_timeout=poller_timeout,
        )
        if type(self).get_client is CacheCluster.get_client:
            self.__dict__["client"] = client
        self.hosts = client.hosts
        self.router = client.router
        self.max_concurrency = max_concurrency
        self.poller_timeout = poller_timeout

    def get_client(self) -> ShardedClient:
        """Return the :class:`~pyredcache.clients.shards.ShardedClient` this cache
        uses: the one :attr:`client` holds, or, when it holds none (after
        ``del cache.client``), a new one over this cache's hosts and
        options, which :attr:`client` then keeps.  A subclass may override
        it to give the cache another client."""
        client = self.__dict__.get("client")
        return ShardedClient(**self._client_options) if client is None else client

    def _make_client(self) -> Any:
        return self.get_client()

    def __repr__(self) -> str:
        return "<pyredcache.CacheCluster %d hosts namespace=%r>" % (
            len(self.hosts), self.namespace)
