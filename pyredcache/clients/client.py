"""The client of one Redis server: :class:`Client`, a thread-safe pool of
core connections (``pyredcache._core.Connection`` or its pure twin), and
:func:`multi_pipeline`, one pipeline on each of several clients at once.

A client moves commands and replies; it knows nothing of caching.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import weakref
from typing import Any, Iterable, Sequence

from .. import _compat
from ..exceptions import ConnectionError, ResponseError
from .breaker import CircuitBreaker
from .urls import OPTIONS, options_doc, parse_url

__all__ = ["Client", "CommandMethods", "multi_pipeline", "report_unreachable", "set_command"]

log = logging.getLogger("pyredcache")


class CommandMethods:
    """The commands a feature uses by name, over ``execute_command``: the
    methods every client of this layer has (:class:`Client`, and
    :class:`~pyredcache.clients.adapters.RedisPyAdapter` over a user's own
    client).  A subclass provides ``execute_command(*args)``."""

    __slots__ = ()

    def execute_command(self, *args: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def ping(self) -> bool:
        """PING the server; True when it answers PONG."""
        return self.execute_command("PING") == b"PONG"

    def get(self, key: str | bytes) -> bytes | None:
        """GET: the value at key, or None."""
        return self.execute_command("GET", key)

    def mget(self, keys: Sequence[str | bytes]) -> list:
        """MGET: the values at keys, in order, None where missing."""
        if not keys:
            return []
        return self.execute_command("MGET", *keys)

    def set(self, key: str | bytes, value: bytes, ex: float | None = None) -> bool:
        """SET key value [EX seconds | PX milliseconds]; True when stored.

        ``ex`` is in seconds: an int goes out as EX, a float as PX rounded
        to the millisecond.
        """
        return self.execute_command(*set_command(key, value, ex)) == b"OK"

    def delete(self, *keys: str | bytes) -> int:
        """DEL: the number of keys that existed and were removed."""
        if not keys:
            return 0
        return self.execute_command("DEL", *keys)

    def exists(self, *keys: str | bytes) -> int:
        """EXISTS: how many of the keys exist."""
        return self.execute_command("EXISTS", *keys)

    def ttl(self, key: str | bytes) -> int:
        """TTL in seconds; -1 without expiry, -2 when the key is missing."""
        return self.execute_command("TTL", key)

    def scan_iter(self, match: str | None = None, count: int = 1000):
        """Iterate over the keys (bytes) with SCAN, optionally MATCHing a
        glob pattern."""
        cursor = b"0"
        while True:
            args: list[Any] = ["SCAN", cursor]
            if match is not None:
                args += ["MATCH", match]
            args += ["COUNT", count]
            cursor, keys = self.execute_command(*args)
            yield from keys
            if cursor == b"0":
                return

    def flushdb(self) -> bool:
        """FLUSHDB: delete every key of the selected database."""
        return self.execute_command("FLUSHDB") == b"OK"


class Client(CommandMethods):
    """A client for one Redis server.

    ``Client(host='localhost', port=6379, *, unix_socket_path=None, db=0,
    username=None, password=None, socket_timeout=1.0,
    socket_connect_timeout=1.0, busy_poll=None, max_idle_connections=64,
    breaker_threshold=5, breaker_cooldown=2.0)``

    Commands go through a pool of core connections: each call takes one
    (or opens one), uses it, and puts it back, so a client is safe to share
    between threads.  At most ``max_idle_connections`` idle connections are
    kept; the others are closed when returned.

    No call waits for ever by default: each wait for a reply is bounded by
    ``socket_timeout`` and each connect by ``socket_connect_timeout``, 1.0
    second each unless given (``None``, given explicitly, waits for ever).

    ``busy_poll`` is how many microseconds (int, 0..1000000) a wait for a
    reply spins on the socket before the thread sleeps.  Waking a sleeping
    thread costs tens of microseconds on virtual machines, often more than
    a nearby server takes to answer; spinning trades that much CPU for
    latency, as Linux's ``SO_BUSY_POLL`` and KVM's halt-polling do.
    ``None`` (the default) is 50 when the process may run on two CPUs or
    more and 0 (never spin) on one.  A connection whose spins keep ending
    empty (a distant server, blocking commands) stops spinning for its
    next 64 waits, then tries once more.  ``0`` turns it off.

    A circuit breaker (:mod:`pyredcache.clients.breaker`) guards the
    server: after ``breaker_threshold`` consecutive calls failed with
    ConnectionError or TimeoutError (5 by default), calls raise
    :class:`~pyredcache.exceptions.CircuitOpenError` at once, without
    dialling, for ``breaker_cooldown`` seconds (2.0 by default); then one
    call probes the server, and its success closes the breaker.  A dead
    server thus costs each call microseconds, not a connect timeout.
    ``breaker_threshold=0`` turns it off.  :meth:`health` shows its state.

    The options (the table :data:`~pyredcache.clients.urls.OPTIONS`, shared
    with :func:`~pyredcache.clients.urls.parse_url`
    and :class:`~pyredcache.Cache`); a URL (:meth:`from_url`) gives host,
    port, user name, password, db or socket path in its address and the
    others in its query string:

{options}

    Errors: :class:`~pyredcache.exceptions.ConnectionError` when the server
    cannot be reached (within ``socket_connect_timeout``),
    :class:`~pyredcache.exceptions.TimeoutError` (a ConnectionError) when a
    reply takes longer than ``socket_timeout`` seconds,
    :class:`~pyredcache.exceptions.ResponseError` for an error reply;
    TypeError/ValueError, at construction, for a bad option.
    """

    def __init__(
        self,
        host: str = OPTIONS["host"].default,
        port: int = OPTIONS["port"].default,
        *,
        unix_socket_path: str | None = OPTIONS["unix_socket_path"].default,
        db: int = OPTIONS["db"].default,
        username: str | None = OPTIONS["username"].default,
        password: str | None = OPTIONS["password"].default,
        socket_timeout: float | None = OPTIONS["socket_timeout"].default,
        socket_connect_timeout: float | None = OPTIONS["socket_connect_timeout"].default,
        busy_poll: int | None = OPTIONS["busy_poll"].default,
        max_idle_connections: int = OPTIONS["max_idle_connections"].default,
        breaker_threshold: int = OPTIONS["breaker_threshold"].default,
        breaker_cooldown: float = OPTIONS["breaker_cooldown"].default,
    ) -> None:
        if type(max_idle_connections) is not int or max_idle_connections < 1:
            raise ValueError("max_idle_connections must be an int >= 1")
        if type(breaker_threshold) is not int or breaker_threshold < 0:
            raise ValueError("breaker_threshold must be an int >= 0 (0: no breaker), got %r"
                             % (breaker_threshold,))
        if (isinstance(breaker_cooldown, bool) or not isinstance(breaker_cooldown, (int, float))
                or not (0 < breaker_cooldown < math.inf)):
            raise ValueError("breaker_cooldown must be a number of seconds > 0, got %r"
                             % (breaker_cooldown,))
        self._core = _compat.core
        self._connection_class = self._core.Connection
        self.connection_kwargs: dict[str, Any] = dict(
            host=host,
            port=port,
            unix_socket_path=unix_socket_path,
            db=db,
            username=username,
            password=password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            busy_poll=busy_poll,
        )
        # Validate now (bad types and ranges raise here, not on first use).
        first = self._connection_class(**self.connection_kwargs)
        self._pool: collections.deque = collections.deque([first], maxlen=max_idle_connections)
        self.breaker: CircuitBreaker | None = (
            CircuitBreaker(self.address, breaker_threshold, float(breaker_cooldown))
            if breaker_threshold else None)

    @property
    def address(self) -> str:
        """Where the server is: ``"host:port"`` or the unix socket's path."""
        kw = self.connection_kwargs
        return kw["unix_socket_path"] or "%s:%s" % (kw["host"], kw["port"])

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "Client":
        """Build a client from a URL (see :func:`parse_url`); keyword
        arguments override what the URL says."""
        options = parse_url(url)
        options.update(kwargs)
        return cls(**options)

    def __repr__(self) -> str:
        return "<pyredcache.Client %s db=%d>" % (self.address, self.connection_kwargs["db"])

    # -- the pool ----------------------------------------------------------------

    def _acquire(self):
        try:
            return self._pool.pop()
        except IndexError:
            return self._connection_class(**self.connection_kwargs)

    def _release(self, conn: Any) -> None:
        self._pool.append(conn)

    def close(self) -> None:
        """Close every idle connection; the client stays usable."""
        while True:
            try:
                conn = self._pool.pop()
            except IndexError:
                return
            conn.close()

    # -- commands -----------------------------------------------------------------

    # Each command: the breaker's check (one attribute read while it is
    # closed and the server answers), the call, and its accounting.

    def execute_command(self, *args: Any) -> Any:
        """Run one command; return its reply (bytes, int, list or None)."""
        breaker = self.breaker
        if breaker is not None and breaker.open_until:
            breaker.before()
        conn = self._acquire()
        try:
            reply = conn.execute_command(*args)
        except BaseException as exc:
            _account(breaker, exc)
            raise
        finally:
            self._pool.append(conn)
        if breaker is not None and breaker.failures:
            breaker.success()
        return reply

    def pipeline_execute(self, commands: Iterable[Sequence[Any]]) -> list:
        """Run many commands in one round trip; return their replies in
        order, error replies as ResponseError instances in their slots."""
        breaker = self.breaker
        if breaker is not None and breaker.open_until:
            breaker.before()
        conn = self._acquire()
        try:
            replies = conn.pipeline(commands)
        except BaseException as exc:
            _account(breaker, exc)
            raise
        finally:
            self._pool.append(conn)
        if breaker is not None and breaker.failures:
            breaker.success()
        return replies

    def get(self, key: str | bytes) -> bytes | None:
        """GET: the value at key, or None (one call less than the
        generic method: the decorator's hit path)."""
        breaker = self.breaker
        if breaker is not None and breaker.open_until:
            breaker.before()
        conn = self._acquire()
        try:
            reply = conn.execute_command("GET", key)
        except BaseException as exc:
            _account(breaker, exc)
            raise
        finally:
            self._pool.append(conn)
        if breaker is not None and breaker.failures:
            breaker.success()
        return reply

    def health(self) -> dict[str, Any]:
        """This server's state: ``{"address": str, "breaker": ...}`` with
        the breaker's :meth:`~pyredcache.clients.breaker.CircuitBreaker.health`
        (None when the breaker is off)."""
        return {"address": self.address,
                "breaker": self.breaker.health() if self.breaker is not None else None}


def _account(breaker: CircuitBreaker | None, exc: BaseException) -> None:
    """Tell the breaker how a call that raised exc went: a ConnectionError
    is a failure; an error reply is an answer; anything else (a bad
    argument, KeyboardInterrupt) says nothing of the server, but frees the
    probe slot if this call was the probe."""
    if breaker is None:
        return
    if isinstance(exc, ConnectionError):
        breaker.failure(exc)
    elif isinstance(exc, ResponseError):
        if breaker.failures:
            breaker.success()
    elif breaker._probing:
        breaker.abandon()


Client.__doc__ = (Client.__doc__ or "").replace("{options}\n", options_doc(OPTIONS))


def set_command(key: Any, value: Any, ex: float | None) -> tuple:
    """The SET command storing value at key, expiring after ``ex`` seconds
    (None: never).  Raises ValueError for an expiry that is not positive."""
    if ex is None:
        return ("SET", key, value)
    if type(ex) is int:
        if ex <= 0:
            raise ValueError("expire must be > 0 seconds, got %r" % (ex,))
        return ("SET", key, value, "EX", ex)
    if isinstance(ex, bool) or not isinstance(ex, (int, float)):
        raise TypeError("expire must be a number of seconds, not %s" % type(ex).__name__)
    if not (ex > 0 and math.isfinite(ex)):
        raise ValueError("expire must be > 0 seconds, got %r" % (ex,))
    ms = max(1, round(ex * 1000))
    return ("SET", key, value, "PX", ms)



def multi_pipeline(jobs: Sequence[tuple["Client", Sequence[Sequence[Any]]]],
                   timeout: float | None = None, max_concurrency: int = 64) -> list:
    """Run one pipeline on each of several clients (distinct servers), all
    in flight at once: the core's ``multi_pipeline``, over clients instead
    of connections.

    ``jobs``: ``(client, commands)`` pairs; a client other than ours (a
    :class:`~pyredcache.clients.RedisPyAdapter` over a user's client) runs
    its pipeline through that client, after ours.  ``timeout``: seconds any one
    wait for a server may last (float > 0; None: for ever, not
    recommended); connecting is bounded by each client's
    ``socket_connect_timeout``.  ``max_concurrency``: how many servers
    are in flight at most (int >= 1).  Returns one item per job, in order:
    the list of its replies (error replies as ResponseError instances in
    their slots), or the ConnectionError / TimeoutError instance of a
    server that failed.  Each connection comes from its client's pool and
    goes back to it.
    """
    if not jobs:
        return []
    if not all(isinstance(client, Client) for client, _ in jobs):
        return _mixed_multi_pipeline(jobs, timeout, max_concurrency)
    results: list = [None] * len(jobs)
    live = []  # the jobs whose breaker lets them go
    for i, (client, _) in enumerate(jobs):
        breaker = client.breaker
        if breaker is not None and breaker.open_until:
            try:
                breaker.before()
            except ConnectionError as exc:
                results[i] = exc
                continue
        live.append(i)
    if not live:
        return results
    conns = [jobs[i][0]._acquire() for i in live]
    try:
        replies = jobs[live[0]][0]._core.multi_pipeline(
            [(conn, jobs[i][1]) for conn, i in zip(conns, live)],
            timeout, max_concurrency,
        )
    except BaseException as exc:
        for i in live:
            _account(jobs[i][0].breaker, exc)
        raise
    finally:
        for conn, i in zip(conns, live):
            jobs[i][0]._release(conn)
    for i, reply in zip(live, replies):
        results[i] = reply
        breaker = jobs[i][0].breaker
        if breaker is not None:
            if isinstance(reply, ConnectionError):
                breaker.failure(reply)
            elif breaker.failures:
                breaker.success()
    return results


def _mixed_multi_pipeline(jobs: Sequence[tuple[Any, Sequence[Sequence[Any]]]],
                          timeout: float | None, max_concurrency: int) -> list:
    """Jobs of which some go through another client than ours (a
    RedisPyAdapter over a user's client): our clients' jobs run at once in
    the core; each other job then runs its pipeline through its own client
    (bounded by that client's own timeouts), one after another."""
    ours = [i for i, (client, _) in enumerate(jobs) if isinstance(client, Client)]
    results: list = [None] * len(jobs)
    for i, result in zip(ours, multi_pipeline([jobs[i] for i in ours], timeout,
                                              max_concurrency)):
        results[i] = result
    for i, (client, commands) in enumerate(jobs):
        if isinstance(client, Client):
            continue
        try:
            results[i] = client.pipeline_execute(commands)
        except ConnectionError as exc:  # TimeoutError is one
            results[i] = exc
    return results


# Servers a warning of report_unreachable() named, until one of their
# replies comes back (the end of the episode).  Weak: a client that is gone
# is forgotten.
_unreachable: "weakref.WeakSet[Client]" = weakref.WeakSet()
_unreachable_lock = threading.Lock()


def report_unreachable(what: str, clients: Sequence["Client"], results: Sequence[Any]) -> None:
    """Log one warning (logger ``"pyredcache"``) naming the servers of a
    quorum (Redlock, NextId) that could not be reached.

    ``what`` names the caller (e.g. ``"Redlock 'redlock:printer'"``);
    ``results`` has one item per client, as a fan-out returns them: a
    :class:`~pyredcache.exceptions.ConnectionError` instance
    (TimeoutError, ProtocolError) marks a server that could not be reached
    or did not answer in time.  One warning per episode: while the same
    servers stay unreachable, retries log nothing more; a server that
    answers again ends its episode, and a server newly unreachable starts
    one (the warning then names all that are unreachable).
    """
    failed = [(c, r) for c, r in zip(clients, results) if isinstance(r, ConnectionError)]
    if not failed and not _unreachable:
        return  # the common case: everyone answered, nothing was reported
    with _unreachable_lock:
        for client, result in zip(clients, results):
            if not isinstance(result, ConnectionError):
                _unreachable.discard(client)
        if all(client in _unreachable for client, _ in failed):
            return
        _unreachable.update(client for client, _ in failed)
    log.warning(
        "pyredcache: %s: %d of %d servers cannot be reached: %s",
        what, len(failed), len(clients),
        "; ".join("%s (%s: %s)" % (c.address, type(r).__name__, r) for c, r in failed),
    )
