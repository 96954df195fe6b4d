"""Clients layer: one client from whatever a user hands in.

:func:`as_client` turns what a user holds (None, a URL, a pyredcache
:class:`~pyredcache.Client`, a cache or anything else that exposes its
client, a redis-py client, fakeredis) into the object a feature sends its
commands through.  Every such object has two methods:

* ``execute_command(*args)``: one command, its reply;
* ``pipeline_execute(commands)``: many commands in one round trip, their
  replies in order, error replies as
  :class:`~pyredcache.exceptions.ResponseError` instances in their slots.

Whenever it can, it is our own :class:`~pyredcache.Client` (over the C
core): a URL, a ``Client``, and redis-py's own ``redis.Redis`` over TCP or
a unix socket are converted.  Any other redis-py-compatible client
(``fakeredis.FakeRedis``, a TLS or Sentinel ``redis.Redis``, ...) is
wrapped in a :class:`RedisPyAdapter`, which sends the commands through the
client's own ``execute_command`` and ``pipeline(transaction=False)`` and
gives its replies the shape our core gives them.

This layer knows nothing of caches: an object of a higher layer that has a
client (a cache) exposes it by the ``__pyredcache_client__()`` method, as
a path-like object exposes its path by ``__fspath__()``.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Iterable, Sequence

from .. import _compat
from ..exceptions import ConnectionError, ResponseError, TimeoutError
from .client import Client, CommandMethods

__all__ = ["RedisPyAdapter", "as_client", "default_url", "server_address", "server_identity"]

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


# Commands whose status reply ``+OK`` redis-py's response callbacks turn into
# True (its ``bool_ok``); our core returns b"OK".  Any other True or False
# stands for an integer reply (EXPIRE, SISMEMBER, ...): 1 or 0.
_OK_COMMANDS = frozenset((
    "SET", "MSET", "SETEX", "PSETEX", "FLUSHDB", "FLUSHALL", "SELECT", "RENAME", "LSET",
    "LTRIM", "HMSET", "SWAPDB", "RESTORE", "MIGRATE", "AUTH", "QUIT", "RESET", "WATCH",
    "UNWATCH", "DISCARD", "READONLY", "READWRITE", "ASKING",
))


def _reply_of(command: Sequence[Any], reply: Any) -> Any:
    """A redis-py reply to command in our core's shape (see _normalize)."""
    if reply is True or reply is False:
        name = _name(command)
        if name == "PING":
            return b"PONG" if reply else reply
        if name in _OK_COMMANDS:
            return b"OK" if reply else None
    return _normalize(reply)


def _name(command: Sequence[Any]) -> str:
    name = command[0]
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return str(name).upper()


class RedisPyAdapter(CommandMethods):
    """The command interface over a redis-py-compatible client.

    ``RedisPyAdapter(redis)``: ``redis`` has redis-py's ``execute_command``
    and ``pipeline(transaction=...)`` (``redis.Redis``, ``fakeredis.FakeRedis``,
    a ``redis.Redis`` over TLS or from Sentinel).  Replies come back as our
    core gives them: bytes (str replies of a ``decode_responses=True``
    client are encoded to UTF-8), ints (booleans become 0/1), lists (sets
    and dicts that redis-py's response callbacks built are flattened back).
    redis-py's errors become ours: ``ResponseError``, ``ConnectionError``,
    ``TimeoutError`` of :mod:`pyredcache.exceptions`.  Over a
    ``redis.cluster.RedisCluster``, ``MGET``, ``DEL``, ``EXISTS``, ``UNLINK``
    and ``TOUCH`` of keys in several hash slots go through the client's
    own slot-splitting methods (``mget_nonatomic``, ``delete``, ...): one
    command per slot, not atomic.  It has the command
    methods of :class:`~pyredcache.Client` (``get``, ``mget``, ``set``,
    ``delete``, ...), so a cache can send its commands through it.

    A pipeline that starts with ``MULTI`` and ends with ``EXEC`` runs as a
    redis-py transaction (``pipeline(transaction=True)``) and its replies
    have our shape: ``OK``, one ``QUEUED`` per command, then the list of
    results (error replies as ResponseError instances in it).
    """

    __slots__ = ("redis", "_split", "__weakref__")

    def __init__(self, redis: Any) -> None:
        if not (callable(getattr(redis, "execute_command", None))
                and callable(getattr(redis, "pipeline", None))):
            raise TypeError("expected a redis-py-compatible client (with execute_command "
                            "and pipeline), not %s" % type(redis).__name__)
        self.redis = redis
        # A redis.cluster.RedisCluster refuses one MGET/DEL/EXISTS over keys
        # of several hash slots; its own methods split them by slot.
        self._split: dict[str, Any] = {}
        if callable(getattr(redis, "mget_nonatomic", None)) and \
                callable(getattr(redis, "get_nodes", None)):
            self._split = {"MGET": lambda *keys: redis.mget_nonatomic(keys),
                           "DEL": redis.delete, "EXISTS": redis.exists,
                           "UNLINK": redis.unlink, "TOUCH": redis.touch}

    def __repr__(self) -> str:
        return "<pyredcache.RedisPyAdapter %r>" % (self.redis,)

    @property
    def address(self) -> str:
        """Where the server is, for messages: ``"host:port"`` or a socket
        path from the client's settings, else the client's repr."""
        kwargs = getattr(getattr(self.redis, "connection_pool", None),
                         "connection_kwargs", None) or {}
        if kwargs.get("path"):
            return str(kwargs["path"])
        if "host" in kwargs and "server" not in kwargs:
            return "%s:%s" % (kwargs["host"], kwargs.get("port", 6379))
        return repr(self.redis)

    def execute_command(self, *args: Any) -> Any:
        """Run one command; return its reply (bytes, int, list or None).
        An error reply raises :class:`~pyredcache.exceptions.ResponseError`;
        a dead server :class:`~pyredcache.exceptions.ConnectionError`."""
        try:
            split = self._split.get(_name(args)) if self._split and len(args) > 2 else None
            reply = self.redis.execute_command(*args) if split is None else split(*args[1:])
        except Exception as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc
        return _reply_of(args, reply)

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
            return [b"OK"] + [b"QUEUED"] * len(body) + [
                [_reply_of(c, r) for c, r in zip(body, results)]]
        return [_reply_of(c, r) for c, r in zip(body, results)]


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


def as_client(obj: Any = None, key: Any = None, *, native: bool = False) -> Any:
    """The client to send commands through, from what a user hands over.

    ``obj`` may be:

    * ``None``: the :class:`~pyredcache.Client` of ``$REDIS_URL``, or of
      ``redis://localhost:6379/0`` when that is not set;
    * a ``redis://`` or ``unix://`` URL (str, see
      :func:`~pyredcache.clients.urls.parse_url`);
    * a :class:`~pyredcache.Client` or :class:`RedisPyAdapter` (returned as
      is);
    * a :class:`~pyredcache.clients.shards.ShardedClient` together with
      ``key``: the client of the server that key routes to;
    * an object that exposes its client by a ``__pyredcache_client__()``
      method (a :class:`~pyredcache.Cache` or
      :class:`~pyredcache.CacheCluster`): that client, resolved as above;
    * a redis-py client (``redis.Redis``/``StrictRedis``) over TCP or a
      unix socket: a Client over our core with the same host or socket
      path, port, db, username, password and timeouts (its pool is not
      shared); a timeout the redis-py client leaves at None (redis-py's
      default) gets pyredcache's, 1.0 second;
    * any other redis-py-compatible client (``fakeredis.FakeRedis``, TLS,
      Sentinel): a :class:`RedisPyAdapter` over it, unless ``native`` is
      true.

    ``native=True`` asks for a :class:`~pyredcache.Client` (a feature that
    runs the core's quorum round needs the core's connections): an object
    only an adapter can serve raises TypeError then.

    One URL, or one redis-py client object, always gives the same client
    (per core implementation), so many containers or locks over one URL
    share one connection pool.

    Raises TypeError for anything else (and for a ShardedClient without
    ``key``), ValueError for a malformed URL.
    """
    exposed = getattr(type(obj), "__pyredcache_client__", None)
    if exposed is not None:
        client = exposed(obj)
        if client is None:
            raise TypeError("%r has no client to send commands through" % (obj,))
        if getattr(type(client), "__pyredcache_client__", None) is not None:
            raise TypeError("%r exposes %r, which is not a client" % (obj, client))
        obj = client
    if isinstance(obj, Client):
        return obj
    if isinstance(obj, RedisPyAdapter):
        if native:
            raise TypeError(_NOT_NATIVE % (obj.redis,))
        return obj
    if getattr(type(obj), "client_for_key", None) is not None:  # a ShardedClient
        if key is None:
            raise TypeError("a client over several servers needs the key to pick one")
        return obj.client_for_key(key)
    impl = _compat.core.implementation
    if obj is None or isinstance(obj, str):
        url = default_url() if obj is None else obj
        with _lock:
            client = _url_clients.get((url, impl))
            if client is None:
                client = _url_clients[(url, impl)] = Client.from_url(url)
        return client
    if _is_plain_redis_py(obj):
        return _cached(obj, impl, lambda: _from_redis_py(obj))
    if _is_tls_redis_py(obj) and native:
        raise TypeError("%r connects with TLS, which pyredcache's core does not "
                        "speak yet" % (obj,))
    if callable(getattr(obj, "execute_command", None)) and callable(getattr(obj, "pipeline", None)):
        if native:
            raise TypeError(_NOT_NATIVE % (obj,))
        return _cached(obj, "adapter", lambda: RedisPyAdapter(obj))
    raise TypeError(
        "expected a pyredcache Client or cache, a redis:// or unix:// URL, or a "
        "redis-py-compatible client (redis.Redis, fakeredis.FakeRedis), not %s"
        % type(obj).__name__
    )


_NOT_NATIVE = ("%r is served through redis-py, but this needs pyredcache's own "
               "connections: give a redis:// or unix:// URL, a pyredcache Client, or "
               "a redis.Redis over TCP or a unix socket")


def _from_redis_py(obj: Any) -> Client:
    """A Client with the connection settings of a plain redis-py client."""
    kwargs = obj.connection_pool.connection_kwargs
    options: dict[str, Any] = {
        name: kwargs[name]
        for name in ("db", "username", "password", "socket_timeout",
                     "socket_connect_timeout")
        if kwargs.get(name) is not None
    }
    if kwargs.get("path"):
        return Client(unix_socket_path=kwargs["path"], **options)
    return Client(kwargs.get("host", "localhost"), kwargs.get("port", 6379), **options)


def _is_tls_redis_py(obj: Any) -> bool:
    pool = getattr(obj, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if not isinstance(kwargs, dict):
        return False
    cls_name = getattr(getattr(pool, "connection_class", None), "__name__", "")
    return "SSL" in cls_name or bool(kwargs.get("ssl"))


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
    return (*server_address(client), _db_of(client))


def server_address(client: Any) -> tuple:
    """The server a command client talks to, whatever its database, as its
    settings write it (no DNS lookup): ``("unix", path)``, ``("tcp", host,
    port)``, ``("fake", ...)`` for a fakeredis server, or a tuple unique to
    the client when its server cannot be told (two such are never equal)."""
    if isinstance(client, Client):
        kw = client.connection_kwargs
        if kw.get("unix_socket_path"):
            return ("unix", os.path.normpath(kw["unix_socket_path"]))
        return ("tcp", str(kw.get("host")).lower(), kw.get("port"))
    if isinstance(client, RedisPyAdapter):
        pool = getattr(client.redis, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", None) or {}
        if "server" in kwargs:  # fakeredis: its FakeServer, given or found by host:port
            server = kwargs["server"]
            where = id(server) if server is not None else (kwargs.get("host"), kwargs.get("port"))
            return ("fake", where)
        return ("adapter", id(pool if pool is not None else client.redis))
    return ("object", id(client))


def _db_of(client: Any) -> Any:
    if isinstance(client, Client):
        return client.connection_kwargs.get("db", 0)
    if isinstance(client, RedisPyAdapter):
        pool = getattr(client.redis, "connection_pool", None)
        return (getattr(pool, "connection_kwargs", None) or {}).get("db", 0)
    return 0
