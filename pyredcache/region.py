"""Cache regions: region_cache's API (``RegionCache``, ``Region``) on a
pyredcache :class:`~pyredcache.Cache`.

A region is a dot-separated name (``'abc.xyz'``, under the root region,
``'root'`` by default: ``'root.abc.xyz'``).  Its entries are the fields of
ONE Redis hash, its sub-regions the members of ONE Redis set; both key
names carry the region's name as a Redis Cluster hash tag::

    <namespace>{root.abc.xyz}            the entries (a hash)
    <namespace>{root.abc.xyz}:children   the sub-regions' names (a set)

so a region's two keys always live on one slot.  Everything is kept in
Redis: two processes (or servers) that open a region of the same name share
it, and :meth:`Region.invalidate` deletes a region and every descendant at
once, for every process (active invalidation, not lazy).

::

    regions = RegionCache(host="localhost", port=6379)
    users = regions.region("users", timeout=300)
    users["42"] = {"name": "Ada"}
    with regions.region("users.admins") as r:   # one MULTI/EXEC
        r["7"] = {"name": "Grace"}
    regions.region("users").invalidate()        # users and users.admins

The sub-region links are written with each write (one SADD per ancestor, in
the write's round trip), so a region whose parent was invalidated, or
expired, is linked again by its next write.

The cascade (:meth:`Region.invalidate`) is a Lua script that reads the
children sets and deletes what they name.  Those descendants' keys are
computed inside the script, not declared in ``KEYS``: the script needs every
key of the tree on the server it runs on.  That holds on one Redis server
(what :class:`RegionCache` supports: a :class:`~pyredcache.Cache`, not a
:class:`~pyredcache.CacheCluster`); on Redis Cluster only a region's own two
keys are guaranteed one slot (the hash tag), not its descendants'.

retools' face (``CacheRegion``, ``cache_region``, ``invalidate_region``,
``invalidate_function``) is the second half of this module: named regions
of an expiry each, on a :class:`RegionRegistry`, whose decorated functions
go through the stampede machinery of :mod:`pyredcache.stampede`; see
:class:`CacheRegion`.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
import threading
import time
from collections.abc import MutableMapping
from typing import Any, Callable, Iterator, TypeVar

from . import _compat
from .cache import (
    NO_VALUE,
    BaseCache,
    Cache,
    CacheCluster,
    fail_open_call,
    function_name,
    make_key_builder,
    stats_keys,
)
from .clients.client import Client, multi_pipeline, set_command
from .clients.scripts import Script
from .clients.urls import DEFAULT_TIMEOUT, parse_url
from .exceptions import (
    CacheConfigurationError,
    ConnectionError,
    ResponseError,
    SerializationError,
    TimeoutError,
)
from .serializers import NativeSerializer
from .stampede import Guard

__all__ = ["Region", "RegionCache", "CacheRegion", "RegionRegistry", "CacheConfigurationError",
           "cache_region", "invalidate_region", "invalidate_function", "invalidate_callable",
           "default_registry"]

log = logging.getLogger("pyredcache")

F = TypeVar("F", bound=Callable[..., Any])

#: The suffix of a region's children set (after its hash's key).
CHILDREN_SUFFIX = ":children"

#: The "function" under which a region's statistics count its own lookups
#: (``r[x]``, ``r.get(x)``, :meth:`Region.get_or_compute`); a function
#: decorated by :meth:`Region.cached` is counted under its key prefix.
LOOKUPS = "[key]"


def _counters(namespace: str, region: str, function: str) -> tuple:
    """The two INCR commands counting function's calls and misses in
    region (see :data:`pyredcache.cache.STATS_PREFIX`)."""
    calls, misses = stats_keys(namespace, region, function)
    return ("INCR", calls), ("INCR", misses)


def _check_timeout(timeout: Any, name: str = "timeout") -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("%s must be a number of seconds or None, not %s"
                        % (name, type(timeout).__name__))
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError("%s must be > 0 seconds, got %r" % (name, timeout))


def _expire_command(key: Any, seconds: float) -> tuple:
    """EXPIRE (whole seconds) or PEXPIRE (a float, to the millisecond)."""
    if type(seconds) is int:
        return ("EXPIRE", key, seconds)
    return ("PEXPIRE", key, max(1, round(seconds * 1000)))


def _field(key: Any) -> str | bytes:
    """A hash field from a user's key: str or bytes as is, an int as its
    decimal text (as redis-py sends it)."""
    t = type(key)
    if t is str or t is bytes:
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(int(key))
    raise TypeError("region keys must be str, bytes or int, not %s" % t.__name__)


def _check_replies(replies: list) -> list:
    """Raise the first error reply of a pipeline (inside EXEC's too)."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    if replies and type(replies[-1]) is list:
        for reply in replies[-1]:
            if isinstance(reply, ResponseError):
                raise reply
    return replies


class _Backend:
    """What the regions of one RegionCache (for one app) share: the cache
    and its clients, the settings, and the regions made so far."""

    def __init__(self, cache: BaseCache, read_client: Any, root: str, serializer: Any,
                 raise_on_timeout: bool, timeout_backoff: float | None,
                 statistics: bool = False) -> None:
        if isinstance(cache, CacheCluster):
            raise TypeError(
                "regions need one Redis server (the cascading invalidation walks keys "
                "that live on one node): give a Cache, not a CacheCluster")
        if not isinstance(cache, BaseCache):
            raise TypeError("cache must be a pyredcache Cache, not %s" % type(cache).__name__)
        if "{" in cache.namespace or "}" in cache.namespace:
            raise ValueError("the cache's namespace must not contain '{' or '}': the "
                             "region name is the keys' hash tag")
        self.cache = cache
        self._read_client = read_client
        self.root = root
        self.serializer = serializer
        self.raise_on_timeout = raise_on_timeout
        self.timeout_backoff = timeout_backoff
        self.statistics = statistics
        self.prefix = cache.namespace
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.regions: dict[str, Region] = {}

    # Resolved once, on first use, as a decorated function keeps the client
    # it started with (a Client survives fork by itself).
    @functools.cached_property
    def client(self) -> Any:
        return self.cache.client

    @functools.cached_property
    def read_client(self) -> Any:
        return self.client if self._read_client is None else self._read_client

    # -- reads that may time out ------------------------------------------------

    def tolerated(self, exc: ConnectionError, what: Any) -> bool:
        """Whether a command that failed with exc is a miss (a read) or a
        no-op (a write) instead of an error: always when the cache fails
        open (``ignore_errors``); for a TimeoutError unless
        raise_on_timeout."""
        if self.cache.ignore_errors:
            self.cache._failed_open(exc)
            return True
        if isinstance(exc, TimeoutError) and not self.raise_on_timeout:
            self._timed_out(what)
            return True
        return False

    def read(self, *command: Any) -> Any:
        """Run a read; NO_VALUE (a miss) when it failed and that is
        :meth:`tolerated`.  Within timeout_backoff seconds of a timeout,
        reads are misses without asking Redis."""
        if self._down_until and not self.raise_on_timeout \
                and time.monotonic() < self._down_until:
            return NO_VALUE
        try:
            return self.read_client.execute_command(*command)
        except ConnectionError as exc:
            if self.tolerated(exc, command[0]):
                return NO_VALUE
            raise

    def read_counted(self, command: tuple, count: tuple) -> Any:
        """:meth:`read`, and ``count`` (an INCR) in the same round trip:
        one pipeline, or with a read replica the replica's read and the
        master's INCR at once (:func:`multi_pipeline`)."""
        if not self.raise_on_timeout and self._down_until \
                and time.monotonic() < self._down_until:
            return NO_VALUE
        try:
            if self._read_client is None:
                reply, counted = self.client.pipeline_execute([command, count])
            else:
                client = self.client
                jobs = [(self._read_client, [command]), (client, [count])]
                results = multi_pipeline(jobs, getattr(client, "poller_timeout", None),
                                         getattr(client, "max_concurrency", 64))
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
                [reply], [counted] = results
        except ConnectionError as exc:
            if self.tolerated(exc, command[0]):
                return NO_VALUE
            raise
        if isinstance(reply, ResponseError):
            raise reply
        if isinstance(counted, ResponseError):
            raise counted  # e.g. WRONGTYPE: a key of the counter's name that is not one
        return reply

    def count(self, count: tuple) -> None:
        """Send one INCR alone (a miss no write follows); a failure is
        logged, not raised, when :meth:`tolerated`."""
        try:
            self.client.execute_command(*count)
        except ConnectionError as exc:
            if not self.tolerated(exc, count[0]):
                raise

    def _timed_out(self, name: Any) -> None:
        log.warning("pyredcache: region read %s timed out; treated as a miss", name)
        if self.timeout_backoff:
            self._down_until = time.monotonic() + self.timeout_backoff

    # -- the regions ------------------------------------------------------------

    def full_name(self, name: str | None) -> str:
        if name is None:
            return self.root
        if not isinstance(name, str):
            raise TypeError("region names must be str, not %s" % type(name).__name__)
        if name != self.root and not name.startswith(self.root + "."):
            name = self.root + "." + name
        parts = name.split(".")
        if "" in parts or "{" in name or "}" in name:
            raise ValueError("bad region name %r: dot-separated, non-empty parts, "
                             "no '{' or '}'" % (name,))
        return name

    def region(self, name: str | None, timeout: float | None,
               update_resets_timeout: bool | None, serializer: Any) -> "Region":
        full = self.full_name(name)
        found = self.regions.get(full)
        if found is not None:
            return found
        _check_timeout(timeout)
        if serializer is not None and not (callable(getattr(serializer, "dumps", None))
                                           and callable(getattr(serializer, "loads", None))):
            raise TypeError("serializer must have dumps and loads, not %r" % (serializer,))
        with self._lock:
            parts = full.split(".")
            parent = None
            for i in range(1, len(parts) + 1):
                fq = ".".join(parts[:i])
                region = self.regions.get(fq)
                if region is None:
                    last = i == len(parts)
                    region = Region(
                        self, fq, parent,
                        timeout if last else None,
                        update_resets_timeout if last else None,
                        serializer if last else None)
                    self.regions[fq] = region
                parent = region
        assert parent is not None
        return parent


class Region(MutableMapping):
    """A cache region: a mapping of keys to values kept in one Redis hash.

    Do not make one directly: ask :meth:`RegionCache.region` or
    :meth:`Region.region`.  Keys are str, bytes or int (an int is stored
    as its decimal text; iteration gives str keys, or bytes for a field
    that is not UTF-8); values are anything the region's serializer
    encodes.  A cached ``None`` is a hit.

    * ``x in r``: HEXISTS.  ``r[x]``: HGET; KeyError on a miss.
    * ``r[x] = v``: HSET, and in the same round trip the TTL reset (EXPIRE
      on the hash and the children set, when the region has a timeout; with
      ``update_resets_timeout`` false, only a key without a TTL gets one,
      ``EXPIRE ... NX``, which needs Redis 7) and the links to this region
      in its ancestors' children sets.
    * ``del r[x]``: HDEL (plus the TTL reset); KeyError if absent.
    * ``len(r)``: HLEN; ``iter(r)``: HSCAN.

    Reads that time out (past the RegionCache's ``op_timeout`` seconds) are
    misses unless ``raise_on_timeout``: ``r[x]`` raises KeyError, ``x in
    r`` is False, :meth:`get_or_compute` and :meth:`cached` compute without
    storing.  ``len``, iteration and writes raise
    :class:`~pyredcache.exceptions.TimeoutError`.  A server that cannot be
    reached raises :class:`~pyredcache.exceptions.ConnectionError`; an
    error reply (e.g. WRONGTYPE) raises
    :class:`~pyredcache.exceptions.ResponseError`.  A stored value this
    region's serializer cannot decode (SerializationError) is a miss,
    logged once per key.

    ``with region as r:`` is a transaction: the writes made inside
    (``r[x] = v``, ``del r[x]``) are queued and sent as one MULTI/EXEC
    when the block ends, with one TTL reset; if the block raises, nothing
    is sent.  Reads inside the block see Redis, not the queued writes, and
    ``del r[x]`` inside it does not raise KeyError for an absent key (the
    HDEL is only queued).  The transaction belongs to the thread or asyncio
    task that opened it; nested blocks on one region join the outer one.
    :meth:`invalidate` is never queued: it runs at once.

    :ivar name: the full dotted name (str), e.g. ``'root.abc.xyz'``.
    :ivar timeout: seconds the region lives after its last write (int or
        float), or None: no expiry.
    """

    _INVALIDATE = Script("""
-- Delete a region and all its descendants.
-- KEYS[1]: the region's hash; KEYS[2]: its children set.
-- ARGV[1]: the key prefix (the cache's namespace).
-- The descendants' keys are built here from the names in the children
-- sets ('<prefix>{<name>}' and '<prefix>{<name>}:children'), not declared
-- in KEYS: the whole tree must live on this server.
-- Returns: the number of keys deleted.
local prefix = ARGV[1]
local pending = redis.call('SMEMBERS', KEYS[2])
local deleted = redis.call('DEL', KEYS[1], KEYS[2])
local seen = {}
while #pending > 0 do
    local name = table.remove(pending)
    if not seen[name] then
        seen[name] = true
        local data = prefix .. '{' .. name .. '}'
        local children = data .. ':children'
        for _, child in ipairs(redis.call('SMEMBERS', children)) do
            pending[#pending + 1] = child
        end
        deleted = deleted + redis.call('DEL', data, children)
    end
end
return deleted
""")

    def __init__(self, backend: _Backend, name: str, parent: "Region | None",
                 timeout: float | None = None, update_resets_timeout: bool | None = None,
                 serializer: Any = None) -> None:
        self._backend = backend
        self.name = name
        self.parent = parent
        if timeout is None and parent is not None:
            timeout = parent.timeout
        if update_resets_timeout is None:
            update_resets_timeout = True if parent is None else parent.update_resets_timeout
        if serializer is None:
            serializer = backend.serializer if parent is None else parent.serializer
        self.timeout = timeout
        self.update_resets_timeout = bool(update_resets_timeout)
        self.serializer = serializer
        self._hash = backend.prefix + "{" + name + "}"
        self._children = self._hash + CHILDREN_SUFFIX
        # the statistics counters share the region's hash tag (one slot)
        self._count_lookups = _counters(backend.prefix, name, LOOKUPS)
        # the links to write: (ancestor's children set, child's name)
        links = []
        child, ancestor = self, parent
        while ancestor is not None:
            links.append(("SADD", ancestor._children, child.name))
            if ancestor.timeout is not None:
                # a set the SADD made has no TTL: give it the ancestor's
                # (NX: one it has already keeps running)
                links.append(_expire_command(ancestor._children, ancestor.timeout) + ("NX",))
            child, ancestor = ancestor, ancestor.parent
        self._links = links
        self._txn: contextvars.ContextVar = contextvars.ContextVar(
            "pyredcache.region." + name, default=None)
        self._handler: Any = None
        self._reported: set = set()

    def __repr__(self) -> str:
        return "Region(%r)" % self.name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Region):
            return NotImplemented
        return other.name == self.name and other._backend is self._backend

    def __hash__(self) -> int:
        return hash(self.name)

    def __pyredcache_client__(self) -> Any:
        """The client the region's cache talks to (so a lock or a container
        accepts a region, see :func:`~pyredcache.clients.as_client`)."""
        return self._backend.client

    @property
    def key(self) -> str:
        """The Redis key of the region's hash (str)."""
        return self._hash

    @property
    def children_key(self) -> str:
        """The Redis key of the region's children set (str)."""
        return self._children

    # -- sub-regions ------------------------------------------------------------

    def region(self, name: str, timeout: float | None = None,
               update_resets_timeout: bool | None = None,
               serializer: Any = None) -> "Region":
        """A sub-region: ``region('abc').region('xyz')`` is
        ``region('abc.xyz')`` (the same object).  Dots in name make deeper
        sub-regions.  Settings left None are this region's: ``timeout``
        (seconds, int or float > 0), ``update_resets_timeout`` (bool),
        ``serializer`` (an object with dumps and loads).  A region made
        before is returned as it is (its settings unchanged).  Raises
        ValueError for a bad name, TypeError/ValueError for a bad
        setting."""
        if not isinstance(name, str):
            raise TypeError("region names must be str, not %s" % type(name).__name__)
        full = self.name + "." + name
        if full in self._backend.regions:
            return self._backend.regions[full]
        parts = name.split(".")
        region = self
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            region = region._child(part, timeout if last else None,
                                   update_resets_timeout if last else None,
                                   serializer if last else None)
        return region

    def _child(self, part: str, timeout: Any, update_resets_timeout: Any,
               serializer: Any) -> "Region":
        full = self.name + "." + part
        found = self._backend.regions.get(full)
        if found is not None:
            return found
        self._backend.full_name(full)  # validates
        _check_timeout(timeout)
        if serializer is not None and not (callable(getattr(serializer, "dumps", None))
                                           and callable(getattr(serializer, "loads", None))):
            raise TypeError("serializer must have dumps and loads, not %r" % (serializer,))
        with self._backend._lock:
            found = self._backend.regions.get(full)
            if found is None:
                found = self._backend.regions[full] = Region(
                    self._backend, full, self, timeout, update_resets_timeout, serializer)
        return found

    def children(self) -> list["Region"]:
        """The sub-regions written to so far (list of Region), as the
        children set in Redis records them (SMEMBERS): any process's."""
        names = self._backend.client.execute_command("SMEMBERS", self._children)
        backend = self._backend
        out = []
        for raw in sorted(names):
            name = raw.decode("utf-8")
            region = backend.regions.get(name)
            if region is None:
                if not name.startswith(self.name + "."):
                    continue  # not a name of ours
                region = self.region(name[len(self.name) + 1:])
            out.append(region)
        return out

    # -- reads ------------------------------------------------------------------

    def _lookup(self, key: Any, counters: tuple | None = None) -> tuple[Any, bool]:
        """(value or NO_VALUE, whether the read timed out).  With
        counters (calls, misses) and statistics on, the HGET and the calls
        INCR go in one round trip."""
        field = _field(key)
        backend = self._backend
        if counters is not None and backend.statistics:
            raw = backend.read_counted(("HGET", self._hash, field), counters[0])
        else:
            raw = backend.read("HGET", self._hash, field)
        if raw is NO_VALUE:
            return NO_VALUE, True
        if raw is None:
            return NO_VALUE, False
        try:
            return self.serializer.loads(raw), False
        except SerializationError as exc:
            if field not in self._reported and len(self._reported) < 10000:
                self._reported.add(field)
                log.warning("pyredcache: region %s: treating %r as a miss: %s",
                            self.name, field, exc)
            return NO_VALUE, False

    def __getitem__(self, key: Any) -> Any:
        counters = self._count_lookups
        value, timed_out = self._lookup(key, counters)
        if value is NO_VALUE:
            if not timed_out and self._backend.statistics:
                self._backend.count(counters[1])
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        reply = self._backend.read("HEXISTS", self._hash, _field(key))
        return reply == 1

    def __len__(self) -> int:
        return self._backend.read_client.execute_command("HLEN", self._hash)

    def __iter__(self) -> Iterator[Any]:
        client = self._backend.read_client
        cursor: Any = b"0"
        while True:
            cursor, items = client.execute_command("HSCAN", self._hash, cursor,
                                                   "COUNT", 1000)
            for field in items[::2]:
                try:
                    yield field.decode("utf-8")
                except UnicodeDecodeError:
                    yield field
            if cursor in (b"0", 0, "0"):
                return

    def get_or_compute(self, key: Any, alt: Any) -> Any:
        """The value at key; on a miss, ``alt`` (a value, or a callable of
        no arguments, called) is stored at key and returned.  A read that
        timed out (``raise_on_timeout`` false) returns alt without storing
        it.  A cached None is a hit."""
        return self._get_or_compute(key, alt, (), {}, self._count_lookups, callable(alt))

    def _get_or_compute(self, key: Any, alt: Any, args: tuple, kwargs: dict,
                        counters: tuple, call: bool = True) -> Any:
        backend = self._backend
        value, timed_out = self._lookup(key, counters)
        if value is not NO_VALUE:
            return value
        counted = not timed_out and backend.statistics
        try:
            value = alt(*args, **kwargs) if call else alt
            if timed_out:
                return value
            data = self.serializer.dumps(value)
        except BaseException:
            if counted:  # it ran: a miss, though nothing is stored
                backend.count(counters[1])
            raise
        field = _field(key)
        self._write([("HSET", self._hash, field, data)], link=True,
                    count=counters[1] if counted else None)
        return value

    def cached(self, f: F | None = None, *, key_prefix: str | None = None,
               include_self: bool = False) -> Any:
        """Decorator storing a function's results in this region:
        ``@region.cached`` or ``@region.cached(key_prefix=...)``.

        The field is pyredcache's key (see :meth:`pyredcache.Cache.cache`):
        ``(key_prefix or module.qualname) + ':'`` + a digest of the
        canonical encoding of the arguments bound to the signature, equal
        in every process; ``f(1, 2)`` and ``f(1, b=2)`` are one entry.
        Arguments the key encoding does not know raise TypeError (they are
        never pickled).  A read that timed out computes without storing.
        The wrapper's ``region`` attribute is this region and its
        ``invalidate(*args, **kwargs)`` deletes one call's entry.
        """
        if f is None:
            return functools.partial(self.cached, key_prefix=key_prefix,
                                     include_self=include_self)
        builder = make_key_builder(f, key_prefix, include_self, namespace="",
                                   core=_compat.core)
        counters = _counters(self._backend.prefix, self.name, function_name(f, key_prefix))

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self._get_or_compute(builder(args, kwargs), f, args, kwargs, counters)

        def invalidate(*args: Any, **kwargs: Any) -> bool:
            return self._write([("HDEL", self._hash, builder(args, kwargs))]) == 1

        wrapper.region = self  # type: ignore[attr-defined]
        wrapper.invalidate = invalidate  # type: ignore[attr-defined]
        return wrapper

    # -- writes -----------------------------------------------------------------

    def _expiry(self) -> list:
        """The TTL commands of a write: EXPIRE on both keys; with
        ``update_resets_timeout`` false, EXPIRE ... NX (Redis 7): only a
        key without a TTL gets one, so the first write starts the clock
        and later ones leave it running."""
        if self.timeout is None:
            return []
        nx = () if self.update_resets_timeout else ("NX",)
        return [_expire_command(self._hash, self.timeout) + nx,
                _expire_command(self._children, self.timeout) + nx]

    def _write(self, commands: list, link: bool = False, count: tuple | None = None) -> Any:
        """Send commands (plus the TTL reset, the links when link, and
        the miss counter count) in one round trip, or queue them in the
        open transaction (the counter then goes alone, at once: a block
        that fails still ran the function).  Returns the first command's
        reply (None when queued)."""
        txn = self._txn.get()
        if txn is not None:
            txn.commands.extend(commands)
            txn.link = txn.link or link
            if count is not None:
                self._backend.count(count)
            return None
        extra = self._expiry() + (self._links if link else [])
        if count is not None:
            extra.append(count)
        client = self._backend.client
        try:
            if not extra and len(commands) == 1:
                return client.execute_command(*commands[0])
            return _check_replies(client.pipeline_execute(commands + extra))[0]
        except ConnectionError as exc:
            if self._backend.cache.ignore_errors:  # fail open: the write is dropped
                self._backend.cache._failed_open(exc)
                return None
            raise

    def __setitem__(self, key: Any, value: Any) -> None:
        field = _field(key)
        data = self.serializer.dumps(value)
        self._write([("HSET", self._hash, field, data)], link=True)

    def __delitem__(self, key: Any) -> None:
        field = _field(key)
        removed = self._write([("HDEL", self._hash, field)])
        if removed == 0:
            raise KeyError(key)

    def reset_timeout(self) -> bool:
        """Start the region's timeout over (EXPIRE on its hash and children
        set, one round trip).  True when the hash existed; False when it
        did not, or the region has no timeout (nothing is sent then)."""
        if self.timeout is None:
            return False
        replies = _check_replies(self._backend.client.pipeline_execute([
            _expire_command(self._hash, self.timeout),
            _expire_command(self._children, self.timeout)]))
        return replies[0] == 1

    def ttl(self) -> float | None:
        """Seconds left before the region's hash expires (float), None when
        it has no expiry or does not exist."""
        ms = self._backend.client.execute_command("PTTL", self._hash)
        return None if ms < 0 else ms / 1000.0

    def invalidate(self) -> int:
        """Delete this region's entries and children set and those of
        every descendant, in one round trip (a Lua script: atomic, so
        every process misses on all of them at once).  Returns the number
        of Redis keys deleted.  Not queued by a ``with`` block.  Raises
        ConnectionError/TimeoutError when Redis cannot be reached."""
        try:
            return self._INVALIDATE(self._backend.client, (self._hash, self._children),
                                    (self._backend.prefix,))
        except ConnectionError as exc:
            if self._backend.cache.ignore_errors:
                self._backend.cache._failed_open(exc)
                log.warning("pyredcache: region %s was not invalidated: Redis cannot be "
                            "used (%s: %s)", self.name, type(exc).__name__, exc)
                return 0
            raise

    def invalidate_on(self, *signals: Any) -> None:
        """Invalidate this region whenever one of ``signals`` is sent:
        blinker signals, or names (str) of blinker's named signals
        (``blinker.signal(name)``).  The receiver is connected strongly
        (``weak=False``): the signal keeps this region, and its cache's
        client, alive.  Connecting a region twice to a signal is one
        receiver.  An invalidation that cannot reach Redis is logged, not
        raised into the sender.  Raises ImportError when blinker is not
        installed."""
        try:
            import blinker
        except ImportError:
            raise ImportError("Region.invalidate_on() needs blinker: pip install "
                              "blinker") from None
        if self._handler is None:
            def handler(sender: Any, **kwargs: Any) -> None:
                try:
                    self.invalidate()
                except Exception:  # the sender must not fail for the cache
                    log.exception("pyredcache: invalidating region %s on a signal failed; "
                                  "invalidate it by hand", self.name)
            self._handler = handler
        for sig in signals:
            if isinstance(sig, str):
                sig = blinker.signal(sig)
            sig.connect(self._handler, weak=False)

    # -- transactions -----------------------------------------------------------

    def __enter__(self) -> "Region":
        txn = self._txn.get()
        if txn is None:
            txn = _Transaction(self._txn.set(None))
            self._txn.set(txn)
        txn.depth += 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        txn = self._txn.get()
        assert txn is not None
        txn.depth -= 1
        if exc_type is not None:
            txn.failed = True
        if txn.depth:
            return
        self._txn.reset(txn.token)
        if txn.failed or not txn.commands:
            return
        commands = txn.commands + self._expiry() + (self._links if txn.link else [])
        try:
            replies = self._backend.client.pipeline_execute([("MULTI",), *commands, ("EXEC",)])
        except ConnectionError as err:
            if self._backend.cache.ignore_errors:  # fail open: the transaction is dropped
                self._backend.cache._failed_open(err)
                return
            raise
        _check_replies(replies)
        if replies[-1] is None:
            raise ResponseError("the region transaction was aborted")


class _Transaction:
    __slots__ = ("token", "commands", "link", "depth", "failed")

    def __init__(self, token: contextvars.Token) -> None:
        self.token = token
        self.commands: list = []
        self.link = False
        self.depth = 0
        self.failed = False


class RegionCache:
    """region_cache's ``RegionCache``: the root of a tree of regions, and a
    Flask extension (:meth:`init_app`).

    region_cache's parameters, in its order:

    :param root: the name of the root region (str), default ``'root'``.
    :param serializer: an object with ``dumps(obj) -> bytes`` and
        ``loads(bytes)``: a pyredcache serializer instance, or ``pickle``
        (the module) as region_cache users pass it.  Default: a
        :class:`~pyredcache.serializers.NativeSerializer` (region_cache's
        default is pickle; pyredcache decodes nothing that can run code
        unless asked to).  Flask config ``REGION_CACHE_SERIALIZER``.
    :param host: Redis host (str), default ``'localhost'``.
    :param port: Redis port (int), default 6379.
    :param db: database number (int), default 0.
    :param password: AUTH password (str or None).
    :param op_timeout: seconds (float > 0) a command may wait for its reply:
        the ``socket_timeout`` of the client this RegionCache makes.  None
        (region_cache's "no timeout") is pyredcache's bound, 1.0 second: no
        wait is for ever.  Give it with ``cache=``/``redis=`` and TypeError
        is raised (set the timeout on that client instead).
    :param reconnect_on_timeout: accepted for region_cache's sake; a
        connection that timed out is always closed and a new one opened on
        next use (its reply would otherwise arrive as the next command's).
    :param timeout_backoff: seconds (float) after a read timed out during
        which reads are misses without asking Redis (only when
        ``raise_on_timeout`` is false); None (default): ask every time.
    :param raise_on_timeout: False (default): a read that times out is a
        miss (see :class:`Region`); True: it raises
        :class:`~pyredcache.exceptions.TimeoutError`.
    :param rr_host: host of a read replica (str): reads (HGET, HEXISTS,
        HLEN, HSCAN) go there, writes to ``host``.
    :param rr_port: the replica's port (int; 0: 6379).
    :param rr_password: the replica's password.
    :param kwargs: more connection options of :class:`~pyredcache.Cache`
        (``socket_connect_timeout``, ``username``, ``unix_socket_path``,
        ``busy_poll``, ``max_idle_connections``, and ``namespace``, a
        prefix of every key, without braces); unknown names raise
        TypeError.

    pyredcache's own, keyword only:

    :param cache: an existing :class:`~pyredcache.Cache` to build on (its
        client, namespace); a :class:`~pyredcache.CacheCluster` raises
        TypeError (see the module's notes).
    :param redis: a client of your own (``redis.Redis``, fakeredis, ...),
        passed to ``Cache(redis=...)``.
    :param statistics: count hits and misses in Redis (bool, default False,
        as region_cache counts nothing): every lookup of a region
        (``r[x]``, ``r.get(x)``, :meth:`Region.get_or_compute`, under the
        function name ``"[key]"``) and every call of a function decorated
        by :meth:`Region.cached` (under its key prefix) adds 1 to the
        region's counter ``<namespace>pyredcache:stats:{<region>}:<name>:calls``
        (in the region's hash tag; see
        :data:`pyredcache.cache.STATS_PREFIX`) with INCR in the lookup's own
        round trip (one pipeline; with ``rr_host``, the replica's HGET and
        the master's INCR at once), and a miss adds 1 to ``...:misses``
        in the round trip of the write that stores the computed value (a
        miss of ``r[x]``, which writes nothing, sends it alone).  A read
        that times out sends no miss counter (no second wait on a server
        that does not answer), though the server may still run the calls
        counter it was sent: under timeouts the counts are best effort,
        otherwise exact across threads and processes.  Read them
        with :meth:`pyredcache.Cache.stats` or ``python -m pyredcache
        stats``.  Off, a lookup is the plain HGET.
    :param ignore_errors: fail open (bool, default False): when Redis
        cannot be used (ConnectionError, TimeoutError, an open circuit
        breaker), reads are misses and writes, transactions and
        invalidations are dropped (logged), nothing raised; error replies
        still raise.  With ``cache=``, the cache's own ``ignore_errors``
        applies (giving True here with a cache that is not failing open
        raises TypeError).  Flask config ``REGION_CACHE_IGNORE_ERRORS``.

    Nothing connects at construction: the first command does.
    """

    def __init__(
        self,
        root: str = "root",
        serializer: Any = None,
        host: str = "localhost",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        op_timeout: float | None = None,
        reconnect_on_timeout: bool = True,
        timeout_backoff: float | None = None,
        raise_on_timeout: bool = False,
        rr_host: str | None = None,
        rr_port: int = 0,
        rr_password: str | None = None,
        *args: Any,
        cache: BaseCache | None = None,
        redis: Any = None,
        statistics: bool = False,
        ignore_errors: bool = False,
        **kwargs: Any,
    ) -> None:
        if args:
            raise TypeError("RegionCache takes no positional arguments after rr_password; "
                            "give connection options by name")
        if not isinstance(root, str) or not root or "." in root or "{" in root or "}" in root:
            raise ValueError("root must be a non-empty str without '.', '{' or '}'")
        _check_timeout(op_timeout, "op_timeout")
        _check_timeout(timeout_backoff, "timeout_backoff")
        if (cache is not None or redis is not None) and op_timeout is not None:
            raise TypeError("op_timeout sets the socket_timeout of the client RegionCache "
                            "makes; with cache= or redis=, set it on that client")
        if cache is not None and (redis is not None or kwargs):
            raise TypeError("give cache= alone, without redis= or connection options")
        if serializer is None:
            serializer = NativeSerializer()
        elif not (callable(getattr(serializer, "dumps", None))
                  and callable(getattr(serializer, "loads", None))):
            raise TypeError("serializer must have dumps and loads, not %r" % (serializer,))
        self._settings: dict[str, Any] = dict(
            root=root, serializer=serializer, host=host, port=port, db=db,
            password=password, op_timeout=op_timeout, reconnect_on_timeout=reconnect_on_timeout,
            timeout_backoff=timeout_backoff, raise_on_timeout=raise_on_timeout,
            rr_host=rr_host, rr_port=rr_port, rr_password=rr_password, options=dict(kwargs),
            statistics=bool(statistics), ignore_errors=bool(ignore_errors),
        )
        if cache is not None and ignore_errors and not cache.ignore_errors:
            raise TypeError("ignore_errors=True with cache=: set it on that cache "
                            "(Cache(..., ignore_errors=True)), which the regions share")
        self._cache = cache
        self._redis = redis
        self._default: _Backend | None = None
        self._lock = threading.Lock()
        self._has_apps = False

    def __repr__(self) -> str:
        return "<pyredcache.RegionCache root=%r>" % self._settings["root"]

    # -- the backends -----------------------------------------------------------

    def _make_backend(self, s: dict[str, Any], cache: BaseCache | None = None,
                      redis: Any = None) -> _Backend:
        options = dict(s["options"])
        namespace = options.pop("namespace", None)
        socket_timeout = DEFAULT_TIMEOUT if s["op_timeout"] is None else s["op_timeout"]
        if cache is None:
            if redis is not None:
                cache = Cache(redis=redis, namespace=namespace,
                              ignore_errors=s["ignore_errors"])
            else:
                cache = Cache(s["host"], s["port"], s["db"], s["password"], socket_timeout,
                              namespace=namespace, ignore_errors=s["ignore_errors"],
                              **options)
        read_client = None
        if s["rr_host"]:
            read_client = Client(s["rr_host"], s["rr_port"] or 6379, db=s["db"],
                                 password=s["rr_password"], socket_timeout=socket_timeout)
        return _Backend(cache, read_client, s["root"], s["serializer"],
                        bool(s["raise_on_timeout"]), s["timeout_backoff"], s["statistics"])

    def _backend(self) -> _Backend:
        if self._has_apps:
            import sys
            flask = sys.modules.get("flask")
            if flask is not None and flask.has_app_context():
                state = flask.current_app.extensions.get("region_cache")
                if state is not None and state.owner is self:
                    return state.backend
        backend = self._default
        if backend is None:
            with self._lock:
                if self._default is None:
                    self._default = self._make_backend(self._settings, self._cache,
                                                       self._redis)
                backend = self._default
        return backend

    @property
    def cache(self) -> BaseCache:
        """The :class:`~pyredcache.Cache` the regions live in (the current
        Flask app's, inside an app context of an app given to
        :meth:`init_app`)."""
        return self._backend().cache

    def __pyredcache_client__(self) -> Any:
        """The client of :attr:`cache` (see
        :func:`~pyredcache.clients.as_client`)."""
        return self._backend().client

    @property
    def conn(self) -> Any:
        """region_cache's ``conn``: a redis-py client for the cache's
        server (``Cache.get_client()``; needs redis-py)."""
        return self._backend().cache.get_client()

    # -- the API ----------------------------------------------------------------

    def region(self, name: str | None = None, timeout: float | None = None,
               update_resets_timeout: bool = True, serializer: Any = None) -> Region:
        """The region called name (dot-separated, str; under the root: a
        name that does not start with ``root + '.'`` gets it prepended;
        None: the root region), made on first use with its ancestors.

        :param timeout: seconds (int or float > 0) the region lives after
            its last write; None: its parent's (the root has no expiry).
            Sub-regions inherit it unless they give their own.
        :param update_resets_timeout: whether a write starts the timeout
            over (bool), default True.
        :param serializer: this region's serializer (dumps/loads); None: its
            parent's, at the root the RegionCache's.

        Ancestors made on the way get their own parents' settings.  A
        region made before is returned as it is.  Nothing is sent to
        Redis.  Inside the app context of a Flask app given to
        :meth:`init_app`, the region is that app's.  Raises ValueError for a
        bad name, TypeError/ValueError for a bad setting.
        """
        return self._backend().region(name, timeout, update_resets_timeout, serializer)

    def clear(self) -> int:
        """Invalidate the root region, so every region (region_cache's
        ``clear()``).  Returns the number of Redis keys deleted."""
        return self.region().invalidate()

    def init_app(self, app: Any) -> None:
        """Configure for a Flask (or any object with ``config`` and
        ``extensions``) app: its regions live in the cache its config
        names, kept in ``app.extensions['region_cache']`` (the app is not
        kept on this object).  Inside that app's context, :meth:`region`
        gives that app's regions.

        Config keys (region_cache's; the constructor's values otherwise):
        ``REGION_CACHE_URL`` (a ``redis://`` or ``unix://`` URL), else
        ``CACHE_REDIS_URL``, else ``REGION_CACHE_HOST``, ``_PORT``, ``_DB``,
        ``_PASSWORD``; ``REGION_CACHE_OP_TIMEOUT`` (seconds),
        ``REGION_CACHE_OP_TIMEOUT_RAISE``,
        ``REGION_CACHE_OP_TIMEOUT_RECONNECT``,
        ``REGION_CACHE_RECONNECT_BACKOFF`` (seconds),
        ``REGION_CACHE_SERIALIZER``, ``REGION_CACHE_RR_URL`` or
        ``REGION_CACHE_RR_HOST``/``_PORT``/``_PASSWORD``,
        ``REGION_CACHE_REDIS_OPTIONS`` (dict of connection options),
        ``REGION_CACHE_STATISTICS`` and ``REGION_CACHE_IGNORE_ERRORS``
        (bool, pyredcache's: see ``statistics`` and ``ignore_errors``).
        Raises ValueError for a malformed URL; nothing connects.
        """
        config = app.config
        s = dict(self._settings)
        s["options"] = dict(s["options"])
        get = config.get
        url = get("REGION_CACHE_URL") or get("CACHE_REDIS_URL")
        cache = self._cache
        redis = self._redis
        if url:
            cache = redis = None
            parsed = parse_url(url)
            s["host"] = parsed.pop("host", s["host"])
            s["port"] = parsed.pop("port", 6379)
            s["db"] = parsed.pop("db", 0)
            s["password"] = parsed.pop("password", None)
            if "socket_timeout" in parsed and get("REGION_CACHE_OP_TIMEOUT") is None:
                s["op_timeout"] = parsed.pop("socket_timeout")
            parsed.pop("socket_timeout", None)
            s["options"].update(parsed)
        elif any(k in config for k in ("REGION_CACHE_HOST", "REGION_CACHE_PORT",
                                       "REGION_CACHE_DB", "REGION_CACHE_PASSWORD")):
            cache = redis = None
            s["host"] = get("REGION_CACHE_HOST", s["host"])
            s["port"] = int(get("REGION_CACHE_PORT", s["port"]))
            s["db"] = int(get("REGION_CACHE_DB", s["db"]))
            s["password"] = get("REGION_CACHE_PASSWORD", s["password"])
        if get("REGION_CACHE_OP_TIMEOUT") is not None:
            s["op_timeout"] = float(get("REGION_CACHE_OP_TIMEOUT"))
        s["raise_on_timeout"] = bool(get("REGION_CACHE_OP_TIMEOUT_RAISE",
                                         s["raise_on_timeout"]))
        s["reconnect_on_timeout"] = get("REGION_CACHE_OP_TIMEOUT_RECONNECT",
                                        s["reconnect_on_timeout"])
        if get("REGION_CACHE_RECONNECT_BACKOFF") is not None:
            s["timeout_backoff"] = float(get("REGION_CACHE_RECONNECT_BACKOFF"))
        if get("REGION_CACHE_SERIALIZER") is not None:
            s["serializer"] = get("REGION_CACHE_SERIALIZER")
        if get("REGION_CACHE_RR_URL"):
            rr = parse_url(get("REGION_CACHE_RR_URL"))
            s["rr_host"], s["rr_port"] = rr.get("host"), rr.get("port", 6379)
            s["rr_password"] = rr.get("password")
        elif get("REGION_CACHE_RR_HOST"):
            s["rr_host"] = get("REGION_CACHE_RR_HOST")
            s["rr_port"] = int(get("REGION_CACHE_RR_PORT") or 6379)
            s["rr_password"] = get("REGION_CACHE_RR_PASSWORD")
        s["options"].update(get("REGION_CACHE_REDIS_OPTIONS") or {})
        if get("REGION_CACHE_STATISTICS") is not None:
            s["statistics"] = bool(get("REGION_CACHE_STATISTICS"))
        if get("REGION_CACHE_IGNORE_ERRORS") is not None:
            s["ignore_errors"] = bool(get("REGION_CACHE_IGNORE_ERRORS"))
        if (cache is not None or redis is not None) and s["op_timeout"] is not None \
                and s["op_timeout"] != self._settings["op_timeout"]:
            raise TypeError("REGION_CACHE_OP_TIMEOUT cannot apply to the cache= or redis= "
                            "client given; give a URL or set its timeout")
        _check_timeout(s["op_timeout"], "REGION_CACHE_OP_TIMEOUT")
        backend = self._make_backend(s, cache, redis)
        app.extensions["region_cache"] = _AppState(self, backend)
        self._has_apps = True


class _AppState:
    """What ``app.extensions['region_cache']`` holds."""

    __slots__ = ("owner", "backend")

    def __init__(self, owner: RegionCache, backend: _Backend) -> None:
        self.owner = owner
        self.backend = backend

    @property
    def cache(self) -> BaseCache:
        return self.backend.cache


# ---------------------------------------------------------------------------------
# retools' face: CacheRegion, cache_region, invalidate_region, invalidate_function
# ---------------------------------------------------------------------------------
#
# Keys (``N`` is the cache's namespace, ``F`` the function's namespace: its
# ``module.qualname``, then ``' '`` and the decorator's namespace arguments
# joined by spaces when it has some, as retools' ``func_namespace``):
#
#   N retools:<region>:F:<digest>     an entry (the key builder's digest of the
#                                     call's arguments; the stampede envelope)
#   N retools:<region>:F:<digest>:lock    its recompute lock (while one is held)
#   N retools:<region>:F:keys         a set: the entries of F written on this
#                                     server (one such set on every server of a
#                                     CacheCluster: the one each entry lives on)
#   N retools-region:<region>         a set: the names of the ``...:keys`` sets
#                                     of the region written on this server
#
# An entry is written together with its two set memberships, on its server, in
# one round trip (a pipeline).  invalidate_function(f) and invalidate_region run
# one Lua script per server, all servers at once: it reads the set(s) and
# deletes what they name.  The keys it deletes are computed in the script, not
# declared in KEYS: this holds on one Redis server and on a CacheCluster
# (client-side sharding, every set on the server of its entries), not on a
# Redis Cluster (Cache(redis=RedisCluster(...))), whose slots split them.


def _check_seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (name, type(value).__name__))
    if not (value > 0 and math.isfinite(value)):
        raise ValueError("%s must be > 0 seconds, got %r" % (name, value))
    return value


_DROP_FUNCTION = Script("""
-- Delete the entries a function's key set names, and the set.
-- KEYS[1]: the set.  Returns the number of entries deleted.
local keys = redis.call('SMEMBERS', KEYS[1])
local n = 0
for i = 1, #keys, 1000 do
    n = n + redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys)))
end
redis.call('DEL', KEYS[1])
return n
""")

_DROP_REGION = Script("""
-- Delete every entry of a region: the entries the key sets named in the
-- region's set name, those sets, and the region's set.
-- KEYS[1]: the region's set.  Returns the number of entries deleted.
local n = 0
for _, set in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local keys = redis.call('SMEMBERS', set)
    for i = 1, #keys, 1000 do
        n = n + redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys)))
    end
    redis.call('DEL', set)
end
redis.call('DEL', KEYS[1])
return n
""")


def _servers(client: Any) -> list:
    """The per-server clients of a cache's client: a ShardedClient's, or the
    client itself."""
    clients = getattr(client, "clients", None)
    return list(clients.values()) if isinstance(clients, dict) else [client]


def _on_every_server(script: Script, client: Any, key: Any) -> int:
    servers = _servers(client)
    results = script.multi_pipeline(servers, [key])
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return sum(int(r) for r in results)


class _RegionGuard(Guard):
    """The stampede Guard of one region-decorated function on one cache: its
    write also records the entry in the function's and the region's sets,
    on the entry's server, in the same round trip.

    Statistics (when the registry's ``statistics`` is true at the call):
    two counters per function and region
    (``<namespace>pyredcache:stats:{<region>}:<function>:calls`` and
    ``:misses``, see :data:`pyredcache.cache.STATS_PREFIX`), Redis
    integers incremented with INCR (atomic, so exact across threads and
    processes):

    * ``...:calls``: +1 per decorated call, sent in ONE pipeline
      with the lookup's GET (on a :class:`~pyredcache.CacheCluster` each
      command goes to its key's server, servers in parallel): a hit costs
      no extra round trip;
    * ``...:misses``: +1 per call that runs the function (no entry,
      a stale or unreadable one, or a wait for the lock holder that timed
      out), sent in the pipeline of the write that stores the result; a
      call whose result is not stored (a bypass value) or that raises sends
      it alone.

    Hits are ``calls - misses``.  With statistics off the lookup is the
    plain GET and nothing is counted.
    """

    def __init__(self, cache: BaseCache, expires: float, redis_expiration: float,
                 keyset: bytes, regionset: bytes, registry: "RegionRegistry | None" = None,
                 counters: tuple | None = None) -> None:
        if redis_expiration > expires:
            expire, stale_ttl = expires, redis_expiration - expires
        else:  # Redis drops the entry first: no stale window
            expire, stale_ttl = redis_expiration, None
        super().__init__(cache.client, cache.serializer, cache._bypass, cache._report, expire,
                         True, 10.0, stale_ttl, None)
        self.keyset = keyset
        self.regionset = regionset
        self.track_ttl = max(1, math.ceil(redis_expiration))
        self.registry = registry
        # (INCR calls, INCR misses), or None: nothing to count
        self._count_calls, self._count_miss = counters if counters else (None, None)

    def _counting(self) -> bool:
        registry = self.registry
        return registry is not None and self._count_calls is not None and registry.statistics

    def compute_and_store(self, key: bytes, f: Callable[..., Any], args: tuple,
                          kwargs: dict) -> Any:
        count = self._counting()
        start = time.monotonic()
        try:
            value = f(*args, **kwargs)
        except BaseException:
            if count:  # it ran: a miss, though nothing is stored
                self.client.execute_command(*self._count_miss)
            raise
        if self.bypass(value):
            if count:
                self.client.execute_command(*self._count_miss)
            return value
        data = self.encode(value, time.monotonic() - start)
        ttl = self.track_ttl
        commands = [
            set_command(key, data, self.store_ex),
            ("SADD", self.keyset, key), ("EXPIRE", self.keyset, ttl),
            ("SADD", self.regionset, self.keyset), ("EXPIRE", self.regionset, ttl),
        ]
        sharded = self._sharded
        if sharded is None:
            if count:
                commands.append(self._count_miss)
            _check_replies(self.client.pipeline_execute(commands))
            return value
        # The entry and its key sets stay on the entry's server; the miss
        # counter may live on another: one pipeline per server, in parallel.
        server = sharded(key)
        stats_server = sharded(self._count_miss[1]) if count else server
        if stats_server is server:
            if count:
                commands.append(self._count_miss)
            _check_replies(server.pipeline_execute(commands))
            return value
        client = self.client
        for result in multi_pipeline([(server, commands), (stats_server, [self._count_miss])],
                                     client.poller_timeout, client.max_concurrency):
            if isinstance(result, BaseException):
                raise result
            _check_replies(result)
        return value

    def lookup(self, key: bytes) -> bytes | None:
        """:meth:`Guard.lookup`, which also counts the call when statistics
        are on: GET and INCR in one pipeline (one round trip)."""
        if not self._counting():
            return self.client.get(key)
        raw, _ = _check_replies(self.client.pipeline_execute([("GET", key),
                                                               self._count_calls]))
        return raw


class _RegionState:
    __slots__ = ("cache", "settings", "builder", "guard")

    def __init__(self, cache: BaseCache, settings: tuple, builder: Any,
                 guard: _RegionGuard) -> None:
        self.cache = cache
        self.settings = settings
        self.builder = builder
        self.guard = guard


class _RegionFunction:
    """What a function decorated by :func:`cache_region` remembers (its
    ``__pyredcache_region__``): registry, region, namespace, and the
    guard and key builder made on its first call (again when the
    registry's cache or the region's settings change)."""

    def __init__(self, registry: "RegionRegistry", region: str, f: Callable[..., Any],
                 namespace_args: tuple) -> None:
        self.registry = registry
        self.region = region
        self.f = f
        self.namespace_args = namespace_args
        module = getattr(f, "__module__", None) or "__main__"
        qualname = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
        if qualname is None:
            raise TypeError("%r has no __qualname__ to name its cache namespace" % (f,))
        namespace = "%s.%s" % (module, qualname)
        if namespace_args:
            namespace += " " + " ".join(str(a) for a in namespace_args)
        if "{" in region or "}" in region:
            raise ValueError("region names must not contain '{' or '}'")
        self.namespace = namespace
        self.key_prefix = "retools:%s:%s" % (region, namespace)
        # validates f now (a coroutine function, no signature: TypeError)
        make_key_builder(f, self.key_prefix, False, namespace="", core=_compat.core)
        self._state: _RegionState | None = None
        self._lock = threading.Lock()

    def state(self) -> _RegionState:
        registry = self.registry
        found = registry.regions.get(self.region)
        if found is None:
            raise CacheConfigurationError("Cache region not configured: %s" % self.region)
        settings = (found["expires"], found["redis_expiration"])
        cache = registry.cache
        state = self._state
        if state is not None and state.cache is cache and state.settings == settings:
            return state
        with self._lock:
            prefix = cache.namespace.encode("utf-8")
            region_key = prefix + ("retools-region:" + self.region).encode("utf-8")
            keyset = prefix + (self.key_prefix + ":keys").encode("utf-8")
            builder = make_key_builder(self.f, self.key_prefix, False,
                                       namespace=cache.namespace, core=cache._core)
            guard = _RegionGuard(cache, settings[0], settings[1], keyset, region_key,
                                 registry, _counters(cache.namespace, self.region,
                                                     self.namespace))
            state = self._state = _RegionState(cache, settings, builder, guard)
        return state


class RegionRegistry:
    """A set of retools cache regions and the cache they live in.

    ``CacheRegion``'s class methods work on the module's
    :data:`default_registry`; make one of your own to keep another set
    (tests, a second application) and decorate with
    ``registry.cache_region(...)`` (or ``cache_region(..., registry=...)``).

    :param cache: the :class:`~pyredcache.Cache` or
        :class:`~pyredcache.CacheCluster` the regions' entries are stored
        in; None: none yet (give it with :meth:`configure` before the first
        call of a decorated function).  Nothing connects here or when a
        function is decorated.
    :param enabled: False: every decorated call computes, nothing is read
        or written (retools' ``CacheRegion.enabled``).
    :param statistics: retools' statistics switch (bool, default True as
        in retools; may be changed at any time, read at each call).  True:
        each call of a decorated function counts, in Redis, in the same
        round trip as its lookup, one call of that function in its region's
        counters, and each call that runs the function one miss, in
        the round trip of the write of its result (see
        :class:`_RegionGuard`); read them with
        :meth:`pyredcache.BaseCache.stats` or ``python -m pyredcache stats``.
        False: the lookup is a plain GET, nothing is counted.

    :ivar regions: ``{name: {'expires': seconds, 'redis_expiration':
        seconds}}``, as retools' ``CacheRegion.regions``.
    """

    def __init__(self, cache: BaseCache | None = None, *, enabled: bool = True,
                 statistics: bool = True) -> None:
        self.regions: dict[str, dict[str, float]] = {}
        self.enabled = enabled
        self.statistics = statistics
        self._cache: BaseCache | None = None
        if cache is not None:
            self.configure(cache=cache)

    def __repr__(self) -> str:
        return "<pyredcache.RegionRegistry regions=%r cache=%r>" % (
            sorted(self.regions), self._cache)

    def configure(self, cache: BaseCache) -> None:
        """Store the regions' entries in cache (a :class:`~pyredcache.Cache`
        or :class:`~pyredcache.CacheCluster`; keyword ``cache=``), from now
        on, also for functions decorated before.  Raises TypeError for
        anything else.  Nothing connects."""
        if not isinstance(cache, BaseCache):
            raise TypeError("cache must be a pyredcache Cache or CacheCluster, not %s"
                            % type(cache).__name__)
        self._cache = cache

    @property
    def cache(self) -> BaseCache:
        """The configured cache; CacheConfigurationError when there is none."""
        cache = self._cache
        if cache is None:
            raise CacheConfigurationError(
                "no cache is configured for the cache regions: call "
                "CacheRegion.configure(cache=pyredcache.Cache(host, port)) (or "
                "registry.configure(cache=...) / RegionRegistry(cache=...)) before "
                "calling a function decorated with @cache_region; pyredcache never "
                "connects to a default localhost server on its own")
        return cache

    def add_region(self, name: str, expires: float, redis_expiration: float = 604800) -> None:
        """Add (or redefine) the region called name (str).

        :param expires: seconds an entry is fresh (int or float > 0); past
            them, the first caller recomputes it under a lock while the
            others are served the old value.
        :param redis_expiration: seconds Redis keeps an entry (its TTL),
            default 604800 (a week).  An entry older than ``expires`` and
            younger than this is served stale during its recomputation; if
            it is not larger than ``expires``, entries simply expire after
            ``redis_expiration`` seconds.

        Raises TypeError/ValueError for a bad name or number.
        """
        if not isinstance(name, str) or not name or "{" in name or "}" in name:
            raise ValueError("a region name is a non-empty str without '{' or '}'")
        self.regions[name] = dict(expires=_check_seconds(expires, "expires"),
                                  redis_expiration=_check_seconds(redis_expiration,
                                                                  "redis_expiration"))

    def cache_region(self, region: str, *namespace_args: Any) -> Callable[[F], F]:
        """See :func:`cache_region`; decorated functions use this registry."""
        if not isinstance(region, str):
            raise TypeError("the region name must be str, not %s" % type(region).__name__)

        def decorate(f: F) -> F:
            info = _RegionFunction(self, region, f, namespace_args)

            @functools.wraps(f)
            def cached(*args: Any, **kwargs: Any) -> Any:
                if not self.enabled:
                    return f(*args, **kwargs)
                state = info.state()
                key = state.builder(args, kwargs)
                if state.cache.ignore_errors:
                    return fail_open_call(state.guard, state.cache, key, f, args, kwargs)
                return state.guard.call(key, f, args, kwargs)

            cached.__pyredcache_region__ = info  # type: ignore[attr-defined]
            cached._region = region  # type: ignore[attr-defined]  # retools' attributes
            cached._namespace = info.namespace  # type: ignore[attr-defined]
            return cached  # type: ignore[return-value]

        return decorate

    def invalidate_region(self, region: str) -> int:
        """Delete every entry of the region's functions, written by any
        process, on every server of the cache (one Lua script per server,
        all at once).  The region's hit/miss statistics are kept, as in
        retools.  Returns the number of entries deleted.  Unlike retools (which marks entries expired and
        may serve them once more), the entries are gone: the next call
        computes.  Raises CacheConfigurationError without a cache,
        ConnectionError when a server cannot be reached."""
        cache = self.cache
        key = (cache.namespace + "retools-region:" + region).encode("utf-8")
        return _on_every_server(_DROP_REGION, cache.client, key)

    #: retools' ``CacheRegion.invalidate(region)``.
    invalidate = invalidate_region

    def invalidate_function(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """See :func:`invalidate_function` (func must be decorated by this
        registry)."""
        info = getattr(func, "__pyredcache_region__", None)
        if not isinstance(info, _RegionFunction) or info.registry is not self:
            raise TypeError("%r is not a function decorated by this registry's "
                            "cache_region" % (func,))
        if args and type(args[0]) is list:
            given = [str(a) for a in args[0]]
            if given and given != [str(a) for a in info.namespace_args]:
                raise ValueError(
                    "invalidate_function(f, %r, ...): a list first is retools' namespace "
                    "arguments, and %r was decorated with %r; to invalidate a call whose "
                    "first argument is a list, write invalidate_function(f, [], [...])"
                    % (args[0], func, list(info.namespace_args)))
            args = args[1:]
        state = info.state()
        client = state.cache.client
        if not args and not kwargs:
            return _on_every_server(_DROP_FUNCTION, client, state.guard.keyset)
        key = state.builder(args, kwargs)
        sharded = getattr(client, "client_for_key", None)
        server = client if sharded is None else sharded(key)
        replies = _check_replies(server.pipeline_execute(
            [("DEL", key), ("SREM", state.guard.keyset, key)]))
        return int(replies[0])


#: The registry ``CacheRegion``, :func:`cache_region`, :func:`invalidate_region`
#: use by default.
default_registry = RegionRegistry()


class _CacheRegionType(type):
    """Makes ``CacheRegion.enabled``, ``.statistics``, ``.regions`` (read and
    assigned, as retools users do) those of ``CacheRegion.registry``."""

    @property
    def enabled(cls) -> bool:
        return cls.registry.enabled

    @enabled.setter
    def enabled(cls, value: bool) -> None:
        cls.registry.enabled = value

    @property
    def statistics(cls) -> bool:
        return cls.registry.statistics

    @statistics.setter
    def statistics(cls, value: bool) -> None:
        cls.registry.statistics = value

    @property
    def regions(cls) -> dict:
        return cls.registry.regions

    @regions.setter
    def regions(cls, value: dict) -> None:
        cls.registry.regions = value


class CacheRegion(metaclass=_CacheRegionType):
    """retools' ``CacheRegion``: class methods over :data:`default_registry`.

    ::

        CacheRegion.configure(cache=Cache("redis-host", 6379))
        CacheRegion.add_region("short_term", expires=3600)

        @cache_region("short_term")
        def slow_function(*search_terms):
            ...

    * ``CacheRegion.add_region(name, expires, redis_expiration=604800)``:
      seconds, see :meth:`RegionRegistry.add_region`.
    * ``CacheRegion.configure(cache=...)``: the :class:`~pyredcache.Cache`
      or :class:`~pyredcache.CacheCluster` (no default: the first call of a
      decorated function without one raises
      :class:`CacheConfigurationError`; nothing connects at import or
      decoration).
    * ``CacheRegion.enabled = False``: every decorated call computes.
    * ``CacheRegion.statistics``: retools' switch (default True): hits and
      misses per region and function, counted in Redis in the lookup's
      round trip; ``cache.stats()`` reads them (see
      :class:`RegionRegistry`).  ``CacheRegion.statistics = False``: no
      counting, no cost.
    * ``CacheRegion.regions``: ``{name: {'expires': ..., 'redis_expiration':
      ...}}``.
    * ``CacheRegion.invalidate(region)``: :func:`invalidate_region`.
    """

    #: The registry the class methods use.
    registry: RegionRegistry = default_registry

    @classmethod
    def add_region(cls, name: str, expires: float, redis_expiration: float = 604800) -> None:
        """See :meth:`RegionRegistry.add_region`."""
        cls.registry.add_region(name, expires, redis_expiration)

    @classmethod
    def configure(cls, cache: BaseCache) -> None:
        """See :meth:`RegionRegistry.configure`."""
        cls.registry.configure(cache)

    @classmethod
    def invalidate(cls, region: str) -> int:
        """See :meth:`RegionRegistry.invalidate_region`."""
        return cls.registry.invalidate_region(region)


def cache_region(region: str, *namespace_args: Any,
                 registry: RegionRegistry | None = None) -> Callable[[F], F]:
    """retools' decorator: cache a function's results in a region.

    ::

        @cache_region('short_term', 'small_engine')
        def local_search(search_term):
            ...

    :param region: the region's name (str); it must be added
        (:meth:`CacheRegion.add_region`) before the first call, which
        otherwise raises :class:`CacheConfigurationError`.
    :param namespace_args: retools' ``deco_args``: values whose ``str()``,
        joined by spaces, is appended to the function's namespace
        (``module.qualname``), to tell apart functions of one name.
    :param registry: the :class:`RegionRegistry` (keyword only); default
        :data:`default_registry` (``CacheRegion``'s).

    Calls are keyed on their arguments bound to the signature, positional
    or keyword (the key builder of :meth:`~pyredcache.BaseCache.cache`, not
    retools' ``str()`` of each argument); a first parameter named ``self``
    or ``cls`` is left out.  An entry is fresh for the region's ``expires``
    seconds; then the first caller (in any process) takes a lock and
    recomputes while the others are served the old value, for up to
    ``redis_expiration`` seconds in all (:mod:`pyredcache.stampede`).
    Decorating connects to nothing.  Arguments the key builder cannot
    encode raise TypeError; a coroutine function raises TypeError at
    decoration.
    """
    return (default_registry if registry is None else registry).cache_region(
        region, *namespace_args)


def invalidate_region(region: str, registry: RegionRegistry | None = None) -> int:
    """Delete every entry of the region (see
    :meth:`RegionRegistry.invalidate_region`); returns how many."""
    return (default_registry if registry is None else registry).invalidate_region(region)


def invalidate_function(func: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Delete cached results of a function decorated with :func:`cache_region`.

    * ``invalidate_function(f)``: every cached variation of f, written by
      any process, on every server of the cache.
    * ``invalidate_function(f, 'bunny')``: the entry of ``f('bunny')``
      (arguments bound as for the call: keywords work too).
    * ``invalidate_function(f, [], 'bunny')``, as retools' README writes
      it: a list first is the decorator's namespace arguments (retools
      0.1), checked against the decorator's and otherwise ignored; so to
      invalidate a call whose first argument is a list, write
      ``invalidate_function(f, [], [1, 2])``.

    Returns the number of entries deleted.  Raises TypeError when func is
    not region-decorated, ValueError for a namespace list that is not the
    decorator's, CacheConfigurationError without a cache or for a region
    never added.
    """
    info = getattr(func, "__pyredcache_region__", None)
    if not isinstance(info, _RegionFunction):
        raise TypeError("%r is not a function decorated with cache_region" % (func,))
    return info.registry.invalidate_function(func, *args, **kwargs)


#: retools' other name of :func:`invalidate_function`.
invalidate_callable = invalidate_function
