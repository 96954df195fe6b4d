"""Clients: the one object a feature talks to, whatever the topology.

A client moves commands and replies; it knows nothing of caching.  This
module has :class:`Client`, for one Redis server, over a pool of core
connections (``pyredcache._core.Connection`` or its pure twin).
"""

from __future__ import annotations

import collections
import logging
import math
import textwrap
import threading
import weakref
from typing import Any, Callable, Iterable, NamedTuple, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from . import _compat
from .exceptions import ConnectionError

__all__ = ["Client", "DEFAULT_TIMEOUT", "OPTIONS", "Option", "as_client", "fan_out",
           "parse_url", "report_unreachable"]

log = logging.getLogger("pyredcache")

#: Seconds: the default ``socket_timeout`` and ``socket_connect_timeout`` of
#: every connection pyredcache makes (a cache that hangs is worse than a
#: miss).  ``None``, given explicitly, waits for ever.
DEFAULT_TIMEOUT = 1.0


class Option(NamedTuple):
    """One connection option: its default, what it means, and how a URL's
    query string gives it (a function of the query's text; None when the
    query cannot carry it: the URL says it elsewhere, or not at all)."""

    default: Any
    doc: str
    query: Callable[[str], Any] | None


#: Every connection option, by name: the one table from which
#: :func:`parse_url`'s query options, the keywords of :class:`Client` and
#: :class:`~pyredcache.Cache`, ``Cache(redis_options=...)`` and
#: ``CacheCluster(pool_options=...)`` are derived (and their docs).
OPTIONS: dict[str, Option] = {
    "host": Option("localhost", "server host name or address (str).", None),
    "port": Option(6379, "server TCP port (int).", None),
    "unix_socket_path": Option(
        None, "connect over this unix socket instead of TCP (str); a ``unix://`` "
        "URL's path.", None),
    "db": Option(0, "database number (int >= 0), selected on connect.", int),
    "username": Option(None, "ACL user name for AUTH (str; needs a password).", None),
    "password": Option(None, "password for AUTH (str or None).", None),
    "socket_timeout": Option(
        DEFAULT_TIMEOUT,
        "seconds each wait for a reply may last (float > 0), default 1.0; past "
        "it :class:`~pyredcache.exceptions.TimeoutError` is raised and the "
        "connection closed.  None waits for ever (not recommended: a server that "
        "accepts and never answers, or is stopped, hangs the call).", float),
    "socket_connect_timeout": Option(
        DEFAULT_TIMEOUT,
        "seconds a connect (TCP or unix socket) may last (float > 0), default "
        "1.0; past it :class:`~pyredcache.exceptions.ConnectionError` is "
        "raised.  None waits for ever, or for the OS's limit (not recommended).",
        float),
    "busy_poll": Option(
        None, "microseconds (int, 0..1000000) a wait for a reply spins on the "
        "socket before the thread sleeps; None: 50 on two CPUs or more, 0 "
        "(never spin) on one.", int),
    "max_idle_connections": Option(
        64, "idle connections kept in the pool (int >= 1); the others are "
        "closed when returned.", int),
}


def options_doc(names: Iterable[str], indent: str = "    ") -> str:
    """The ``:param:`` lines documenting the given :data:`OPTIONS`, each
    line starting with ``indent`` (for a docstring indented so)."""
    lines = []
    for name in names:
        text = ":param %s: %s" % (name, OPTIONS[name].doc)
        lines += textwrap.wrap(text, 76 - len(indent), initial_indent=indent,
                               subsequent_indent=indent + "    ")
    return "\n".join(lines) + "\n"


#: The options a URL's query string may carry.
_QUERY_OPTIONS = tuple(name for name, option in OPTIONS.items() if option.query is not None)


def parse_url(url: str) -> dict[str, Any]:
    """Parse a Redis URL into :class:`Client` keyword arguments.

    Accepted forms:

    * ``redis://[[user]:password@]host[:port][/db]``
    * ``unix:///path/to/socket[?db=N]``

    Both may carry, in the query string, every option of :data:`OPTIONS`
    that a URL does not say elsewhere: ``db=N``, ``socket_timeout=S`` and
    ``socket_connect_timeout=S`` (seconds, float), ``busy_poll=US``
    (microseconds) and ``max_idle_connections=N``; the same names are
    keywords of :class:`Client` and :class:`~pyredcache.Cache`.  Options the
    URL does not give are left out of the result (so the keywords' defaults
    apply: 1.0 s for both timeouts).  User name and password are
    percent-decoded.

    Raises :class:`ValueError` naming the problem for anything else: an
    unknown scheme (``rediss://``: TLS is not supported by the C core yet),
    a bad port or db, a path that is not a db number, an unknown query
    option.
    """
    if not isinstance(url, str):
        raise TypeError("url must be str, not %s" % type(url).__name__)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError("malformed Redis URL %r: %s" % (url, exc)) from None
    scheme = parts.scheme.lower()
    kwargs: dict[str, Any] = {}
    if parts.username:
        kwargs["username"] = unquote(parts.username)
    if parts.password is not None:
        kwargs["password"] = unquote(parts.password)
    if kwargs.get("username") is not None and "password" not in kwargs:
        # redis://secret@host: a lone user part is the password (AUTH pass)
        kwargs["password"] = kwargs.pop("username")
    if scheme == "redis":
        if not parts.hostname:
            raise ValueError("malformed Redis URL %r: no host" % url)
        kwargs["host"] = unquote(parts.hostname)
        if port is not None:
            kwargs["port"] = port
        path = parts.path.strip("/")
        if path:
            if not path.isdigit():
                raise ValueError(
                    "malformed Redis URL %r: the path must be a db number, got %r" % (url, path)
                )
            kwargs["db"] = int(path)
    elif scheme == "unix":
        if not parts.path:
            raise ValueError("malformed Redis URL %r: no socket path" % url)
        if parts.hostname not in (None, "", "localhost"):
            raise ValueError(
                "malformed Redis URL %r: write unix:///absolute/path (three slashes)" % url
            )
        kwargs["unix_socket_path"] = unquote(parts.path)
    elif scheme == "rediss":
        raise ValueError("rediss:// (TLS) URLs are not supported yet: %r" % url)
    else:
        raise ValueError(
            "malformed Redis URL %r: the scheme must be redis:// or unix://" % url
        )
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError("malformed Redis URL %r: bad query string" % url) from None
    for name, values in query.items():
        option = OPTIONS.get(name)
        conv = None if option is None else option.query
        if conv is None:
            raise ValueError("malformed Redis URL %r: unknown option %r (the query may "
                             "carry %s)" % (url, name, ", ".join(_QUERY_OPTIONS)))
        try:
            value = conv(values[-1])
        except ValueError:
            raise ValueError(
                "malformed Redis URL %r: %s must be a number, got %r" % (url, name, values[-1])
            ) from None
        if name == "db" and "db" in kwargs and kwargs["db"] != value:
            raise ValueError("malformed Redis URL %r: two different db numbers" % url)
        kwargs[name] = value
    if kwargs.get("db", 0) < 0:
        raise ValueError("malformed Redis URL %r: db must be >= 0" % url)
    return kwargs


class Client:
    """A client for one Redis server.

    ``Client(host='localhost', port=6379, *, unix_socket_path=None, db=0,
    username=None, password=None, socket_timeout=1.0,
    socket_connect_timeout=1.0, busy_poll=None, max_idle_connections=64)``

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

    The options (the table :data:`OPTIONS`, shared with :func:`parse_url`
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
    ) -> None:
        if type(max_idle_connections) is not int or max_idle_connections < 1:
            raise ValueError("max_idle_connections must be an int >= 1")
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

    def execute_command(self, *args: Any) -> Any:
        """Run one command; return its reply (bytes, int, list or None)."""
        conn = self._acquire()
        try:
            return conn.execute_command(*args)
        finally:
            self._pool.append(conn)

    def pipeline_execute(self, commands: Iterable[Sequence[Any]]) -> list:
        """Run many commands in one round trip; return their replies in
        order, error replies as ResponseError instances in their slots."""
        conn = self._acquire()
        try:
            return conn.pipeline(commands)
        finally:
            self._pool.append(conn)

    def ping(self) -> bool:
        """PING the server; True when it answers PONG."""
        return self.execute_command("PING") == b"PONG"

    def get(self, key: str | bytes) -> bytes | None:
        """GET: the value at key, or None."""
        conn = self._acquire()
        try:
            return conn.execute_command("GET", key)
        finally:
            self._pool.append(conn)

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



def as_client(obj: Any, key: Any = None) -> "Client":
    """The :class:`Client` of one server, from what a user may hand over.

    ``obj`` may be:

    * a :class:`Client` (returned as is);
    * a ``redis://`` or ``unix://`` URL (see :func:`parse_url`);
    * a pyredcache cache (:class:`~pyredcache.Cache`: its client), or a
      :class:`~pyredcache.CacheCluster` or
      :class:`~pyredcache.shards.ShardedClient` together with ``key``: the
      client of the server that key routes to;
    * a redis-py client (``redis.Redis``/``StrictRedis``) connecting over
      TCP or a unix socket: a Client with the same host or socket path,
      port, db, username, password and timeouts (its pool is not shared);
      a timeout the redis-py client leaves at None (redis-py's default)
      gets pyredcache's, 1.0 second.

    Raises TypeError for anything else (a TLS redis-py client included:
    the C core does not speak TLS yet), and ValueError for a malformed URL.
    """
    if isinstance(obj, Client):
        return obj
    if isinstance(obj, str):
        return Client.from_url(obj)
    client = getattr(obj, "client", None)  # a cache
    if client is not None and hasattr(obj, "get_client"):
        obj = client
        if isinstance(obj, Client):
            return obj
    if hasattr(obj, "client_for_key") and hasattr(obj, "router"):  # sharded
        if key is None:
            raise TypeError("a client over several servers needs the key to pick one")
        return obj.client_for_key(key)
    pool = getattr(obj, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict):
        cls_name = getattr(getattr(pool, "connection_class", None), "__name__", "")
        if "SSL" in cls_name or kwargs.get("ssl"):
            raise TypeError("%r connects with TLS, which pyredcache's core does not "
                            "speak yet" % (obj,))
        options: dict[str, Any] = {
            name: kwargs[name]
            for name in ("db", "username", "password", "socket_timeout",
                         "socket_connect_timeout")
            if kwargs.get(name) is not None
        }
        if kwargs.get("path"):
            return Client(unix_socket_path=kwargs["path"], **options)
        return Client(kwargs.get("host", "localhost"), kwargs.get("port", 6379), **options)
    raise TypeError(
        "expected a pyredcache Client or cache, a redis:// or unix:// URL, or a "
        "redis-py client, not %s" % type(obj).__name__
    )


def fan_out(jobs: Sequence[tuple["Client", Sequence[Sequence[Any]]]],
            timeout: float | None = None, max_concurrency: int = 64) -> list:
    """Run one pipeline on each of several clients (distinct servers), all
    in flight at once (the core's ``multi_pipeline``).

    ``jobs``: ``(client, commands)`` pairs.  ``timeout``: seconds any one
    wait for a server may last (float > 0; None: for ever, not
    recommended); connecting is bounded by each client's
    ``socket_connect_timeout``.  Returns one item per job,
    in order: the list of its replies (error replies as ResponseError
    instances in their slots), or the ConnectionError / TimeoutError
    instance of a server that failed.  Each connection comes from its
    client's pool and goes back to it.
    """
    if not jobs:
        return []
    conns = [client._acquire() for client, _ in jobs]
    try:
        return jobs[0][0]._core.multi_pipeline(
            [(conn, commands) for conn, (_, commands) in zip(conns, jobs)],
            timeout, max_concurrency,
        )
    finally:
        for conn, (client, _) in zip(conns, jobs):
            client._release(conn)


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
