"""URL and option parsing: one table of connection options.

:data:`OPTIONS` lists every connection option once, with its default and
meaning; :func:`parse_url`'s query options, the keywords of
:class:`~pyredcache.clients.client.Client` and :class:`~pyredcache.Cache`,
``Cache(redis_options=...)`` and ``CacheCluster(pool_options=...)`` (and
their docs, :func:`options_doc`) all come from it.
"""

from __future__ import annotations

import textwrap
from typing import Any, Callable, Iterable, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["DEFAULT_TIMEOUT", "OPTIONS", "Option", "options_doc", "parse_url"]

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
#: :func:`parse_url`'s query options, the keywords of :class:`~pyredcache.Client` and
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
    "breaker_threshold": Option(
        5, "consecutive failures (ConnectionError, TimeoutError) after which "
        "the server's circuit breaker opens (int >= 1), default 5; 0 turns the "
        "breaker off.  See :mod:`pyredcache.clients.breaker`.", int),
    "breaker_cooldown": Option(
        2.0, "seconds an open circuit breaker refuses calls at once "
        "(:class:`~pyredcache.exceptions.CircuitOpenError`) before it lets one "
        "probe through (float > 0), default 2.0.", float),
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
    """Parse a Redis URL into :class:`~pyredcache.Client` keyword arguments.

    Accepted forms:

    * ``redis://[[user]:password@]host[:port][/db]``
    * ``unix:///path/to/socket[?db=N]``

    Both may carry, in the query string, every option of :data:`OPTIONS`
    that a URL does not say elsewhere: ``db=N``, ``socket_timeout=S`` and
    ``socket_connect_timeout=S`` (seconds, float), ``busy_poll=US``
    (microseconds), ``max_idle_connections=N``, ``breaker_threshold=N`` and
    ``breaker_cooldown=S`` (seconds); the same names are
    keywords of :class:`~pyredcache.Client` and :class:`~pyredcache.Cache`.  Options the
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
