"""Clients layer: one command interface over whatever client a user hands in.

Features that only need to send commands (the containers of
:mod:`pyredcache.containers`) talk to an object with two methods:

* ``execute_command(*args)``: one command, its reply;
* ``pipeline_execute(commands)``: many commands in one round trip, their
  replies in order, error replies as
  :class:`~pyredcache.exceptions.ResponseError` instances in their slots.

:func:`command_client` gives that object.  Whenever it can, it is our own
:class:`~pyredcache.client.Client` (over the C core): a URL, a pyredcache
cache, a ``Client``, and redis-py's own ``redis.Redis`` over TCP or a unix
socket are converted (:func:`~pyredcache.client.as_client`).  Any other
redis-py-compatible client (``fakeredis.FakeRedis``, a TLS or Sentinel
``redis.Redis``, ...) is wrapped in a :class:`RedisPyAdapter`, which sends
the commands through the client's own ``execute_command`` and
``pipeline(transaction=False)`` and gives its replies the shape our core
gives them.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Iterable, Sequence

from . import _compat
from .client import Client, as_client
from .exceptions import ConnectionError, ResponseError, TimeoutError

__all__ = ["RedisPyAdapter", "command_client", "default_url", "server_identity"]

#: The URL used when a container is given no client: ``$REDIS_URL``, else
#: this.
DEFAULT_URL = "redis://localhost:6379/0"


def default_url() -> str:
    """``$REDIS_URL`` when set (read on every call), else
    ``redis://localhost:6379/0``."""
    return os.environ.get("REDIS_URL") or DEFAULT_URL


def _normalize(reply: Any) -> Any:
    """A redis-py reply in the shape our core returns: bytes for strings
    (``decode_responses=True`` gives str), int for integers and booleans,
    lists for arrays, sets and (flattened) dicts; exceptions translated."""
    t = type(reply)
    if t is bytes or t is int or reply is None:
        return reply
    if t is str:
        return reply.encode("utf-8")
    if t is bool:
        return int(reply)
    if t is list or t is tuple or t is set or t is frozenset:
        return [_normalize(item) for item in reply]
    if t is dict:
        flat: list = []
        for k, v in reply.items():
            flat.append(_normalize(k))
            flat.append(_normalize(v))
        return flat
    if isinstance(reply, BaseException):
        return _translate(reply)
    return reply


def _translate(exc: BaseException) -> BaseException:
    """redis-py's error classes to ours (by name, so any redis-py-compatible
    client's errors map too).  redis-py strips the error code of some
    replies (``NOSCRIPT``, ``ERR``); it is put back, so the message reads as
    the server sent it."""
    if isinstance(exc, (ResponseError, ConnectionError)):
        return exc
    names = [cls.__name__ for cls in type(exc).__mro__ if cls.__module__ != "builtins"]
    message = str(exc)
    if "ResponseError" in names:
        code = getattr(exc, "status_code", None)
        if not code and "NoScriptError" in names:
            code = "NOSCRIPT"
        if code and not message.startswith(code):
            message = "%s %s" % (code, message)
        return ResponseError(message)
    if "TimeoutError" in names:
        return TimeoutError(message)
    if "ConnectionError" in names:
        return ConnectionError(message)
    return exc


def _name(command: Sequence[Any]) -> str:
    name = command[0]
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return str(name).upper()


class RedisPyAdapter:
    """The command interface over a redis-py-compatible client.

    ``RedisPyAdapter(redis)``: ``redis`` has redis-py's ``execute_command``
    and ``pipeline(transaction=...)`` (``redis.Redis``, ``fakeredis.FakeRedis``,
    a ``redis.Redis`` over TLS or from Sentinel).  Replies come back as our
    core gives them: bytes (str replies of a ``decode_responses=True``
    client are encoded to UTF-8), ints (booleans become 0/1), lists (sets
    and dicts that redis-py's response callbacks built are flattened back).
    redis-py's errors become ours: ``ResponseError``, ``ConnectionError``,
    ``TimeoutError`` of :mod:`pyredcache.exceptions`.

    A pipeline that starts with ``MULTI`` and ends with ``EXEC`` runs as a
    redis-py transaction (``pipeline(transaction=True)``) and its replies
    have our shape: ``OK``, one ``QUEUED`` per command, then the list of
    results (error replies as ResponseError instances in it).
    """

    __slots__ = ("redis", "__weakref__")

    def __init__(self, redis: Any) -> None:
        if not (callable(getattr(redis, "execute_command", None))
                and callable(getattr(redis, "pipeline", None))):
            raise TypeError("expected a redis-py-compatible client (with execute_command "
                            "and pipeline), not %s" % type(redis).__name__)
        self.redis = redis

    def __repr__(self) -> str:
        return "<pyredcache.RedisPyAdapter %r>" % (self.redis,)

    def execute_command(self, *args: Any) -> Any:
        """Run one command; return its reply (bytes, int, list or None).
        An error reply raises :class:`~pyredcache.exceptions.ResponseError`;
        a dead server :class:`~pyredcache.exceptions.ConnectionError`."""
        try:
            reply = self.redis.execute_command(*args)
        except Exception as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc
        return _normalize(reply)

    def pipeline_execute(self, commands: Iterable[Sequence[Any]]) -> list:
        """Run many commands in one round trip; return their replies in
        order, error replies as ResponseError instances in their slots.
        Raises ConnectionError / TimeoutError when the server fails."""
        commands = [tuple(c) for c in commands]
        if not commands:
            return []
        transaction = (len(commands) >= 2 and _name(commands[0]) == "MULTI"
                       and _name(commands[-1]) == "EXEC")
        body = commands[1:-1] if transaction else commands
        pipe = self.redis.pipeline(transaction=transaction)
        try:
            for command in body:
                pipe.execute_command(*command)
            try:
                results = pipe.execute(raise_on_error=False)
            except Exception as exc:
                translated = _translate(exc)
                if not isinstance(translated, ResponseError):
                    if translated is exc:
                        raise
                    raise translated from exc
                if not transaction:
                    raise translated from exc
                # the transaction was refused as a whole (EXECABORT)
                return [b"OK"] + [b"QUEUED"] * len(body) + [translated]
        finally:
            reset = getattr(pipe, "reset", None)
            if reset is not None:
                reset()
        if transaction:
            return [b"OK"] + [b"QUEUED"] * len(body) + [_normalize(list(results))]
        return [_normalize(r) for r in results]


def _is_plain_redis_py(obj: Any) -> bool:
    """A redis-py client whose connections our core can make itself: a
    ``connection_pool`` of redis-py's own TCP or unix-socket connection
    class (not fakeredis' connection, a TLS one, or Sentinel's)."""
    pool = getattr(obj, "connection_pool", None)
    cls = getattr(pool, "connection_class", None)
    if cls is None or not isinstance(getattr(pool, "connection_kwargs", None), dict):
        return False
    return (getattr(cls, "__module__", "") == "redis.connection"
            and cls.__name__ in ("Connection", "UnixDomainSocketConnection"))


_lock = threading.Lock()
_url_clients: dict[tuple[str, str], Client] = {}
_converted: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def command_client(obj: Any = None, key: Any = None) -> Any:
    """The object a container sends its commands through.

    ``obj`` may be:

    * ``None``: a :class:`~pyredcache.client.Client` for ``$REDIS_URL``, or
      ``redis://localhost:6379/0`` when that is not set;
    * a ``redis://`` or ``unix://`` URL (str);
    * a :class:`~pyredcache.client.Client`, a pyredcache cache (its client;
      for a sharded one, the client of the server ``key`` routes to);
    * a redis-py ``redis.Redis`` over TCP or a unix socket: a Client over
      our C core with the same connection settings (its pool is not shared);
    * any other redis-py-compatible client (``fakeredis.FakeRedis``, TLS,
      Sentinel): a :class:`RedisPyAdapter` over it;
    * a :class:`RedisPyAdapter` (returned as is).

    One URL, or one redis-py client object, always gives the same converted
    client (per core implementation), so many containers over one client
    share one connection pool.

    Raises TypeError for anything else and ValueError for a malformed URL.
    """
    if isinstance(obj, (Client, RedisPyAdapter)):
        return obj
    impl = _compat.core.implementation
    if obj is None or isinstance(obj, str):
        url = default_url() if obj is None else obj
        with _lock:
            client = _url_clients.get((url, impl))
            if client is None:
                client = _url_clients[(url, impl)] = Client.from_url(url)
        return client
    if _is_plain_redis_py(obj):
        return _cached(obj, impl, lambda: as_client(obj))
    if callable(getattr(obj, "get_client", None)) or hasattr(obj, "client_for_key"):
        return as_client(obj, key)  # a pyredcache cache: its own client(s)
    if callable(getattr(obj, "execute_command", None)) and callable(getattr(obj, "pipeline", None)):
        return _cached(obj, "adapter", lambda: RedisPyAdapter(obj))
    raise TypeError(
        "redis= takes a pyredcache Client or cache, a redis:// or unix:// URL, or a "
        "redis-py-compatible client (redis.Redis, fakeredis.FakeRedis), not %s"
        % type(obj).__name__
    )


def _cached(obj: Any, slot: str, make: Any) -> Any:
    try:
        with _lock:
            per_obj = _converted.get(obj)
            if per_obj is not None and slot in per_obj:
                return per_obj[slot]
    except TypeError:  # not weakly referenceable: convert every time
        return make()
    client = make()
    with _lock:
        _converted.setdefault(obj, {}).setdefault(slot, client)
        return _converted[obj][slot]


def server_identity(client: Any) -> tuple:
    """What tells two command clients apart: equal tuples mean the same
    server and database, so keys of both can meet in one command (SINTER,
    SUNIONSTORE, ...)."""
    if isinstance(client, Client):
        kw = client.connection_kwargs
        if kw.get("unix_socket_path"):
            return ("unix", kw["unix_socket_path"], kw.get("db", 0))
        return ("tcp", kw.get("host"), kw.get("port"), kw.get("db", 0))
    if isinstance(client, RedisPyAdapter):
        pool = getattr(client.redis, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", None) or {}
        if "server" in kwargs:  # fakeredis: its FakeServer, given or found by host:port
            server = kwargs["server"]
            where = id(server) if server is not None else (kwargs.get("host"), kwargs.get("port"))
            return ("fake", where, kwargs.get("db", 0))
        return ("adapter", id(pool if pool is not None else client.redis))
    return ("object", id(client))
