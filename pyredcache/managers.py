"""redcache's face: a Redis connection stack and cache managers with hooks.

::

    from pyredcache.managers import use_connection, default_cache

    use_connection()            # $REDIS_URL, else the default address

    @default_cache.cache(ttl=5)
    def load_something_from_somewhere():
        return load_the_data()

The names are redcache's (``redcache`` and ``redcache.cache_manager``,
``redcache.connection``): :func:`use_connection`, :func:`push_connection`,
:func:`pop_connection`, :func:`get_current_connection`, the
:func:`Connection` context manager, :class:`CacheManager` with its four
hooks (``after_load``, ``before_save``, ``load``, ``save``),
:class:`DefaultCacheManager` and its instance :data:`default_cache`.  They
are used as redcache documents them, with these differences:

* **The connection stack is context-local** (:mod:`contextvars`): a
  connection pushed in a thread or an asyncio task is seen by that thread
  or task (and by contexts copied from it, ``contextvars.copy_context()``,
  tasks it creates), not by the others.  :func:`use_connection` sets the
  process-wide default, which every thread and task that has pushed
  nothing of its own sees (a new thread starts from it).
* **use_connection() without an argument** uses ``$REDIS_URL`` when it is
  set (read at the call), else ``redis://localhost:6379/0`` (redcache made
  redis-py's ``Redis()``, whose address is the same).  Nothing connects
  when the module is imported or a connection is set: the first command
  does.
* **Without a connection a decorated call raises**
  :class:`~pyredcache.exceptions.CacheConfigurationError` (redcache called
  the function and cached nothing, silently).
* **Keys** come from pyredcache's key builder
  (:func:`pyredcache.cache.make_key_builder`): ``key_base + ":" +
  module.qualname + ":" +`` a 32-hex-digit digest of the arguments bound to
  the function's signature.  Keyword arguments are part of the key
  (redcache dropped them: ``f(1, x=2)`` and ``f(1, x=3)`` shared one
  entry), ``f(1, 2)`` and ``f(1, x=2)`` are one entry, and a key is the
  same in every process (redcache joined ``unicode(arg)``, so an object
  without its own ``__str__`` got a memory address in its key).  Arguments
  must be values the key encoding knows (None, bool, int, float, str,
  bytes, tuples, lists, dicts, sets of them, datetimes, ...) or objects
  with a ``__cache_key__()`` method; anything else raises TypeError naming
  the argument.  As in redcache, a first parameter named ``self`` or
  ``cls`` is left out of the key.
* **Values** are encoded with pyredcache's native codec
  (:class:`~pyredcache.serializers.NativeSerializer`: MessagePack with
  extension types, exact round trips, decoding never runs code) instead of
  cPickle.  Pass ``serializer_cls=PickleSerializer`` (ideally wrapped in a
  :class:`~pyredcache.serializers.SignedSerializer`) for pickle's range of
  types, or override ``before_save``/``after_load`` as redcache's JSON
  example does.  A stored value the codec cannot decode is a miss (logged
  once per key): the function runs and its result overwrites it.
* **Expiry** is set with the value, in one ``SET ... EX`` (redcache sent
  SET, then EXPIRE).  A manager whose ``save`` is overridden still gets
  redcache's order: ``save()``, then ``EXPIRE`` (``PEXPIRE`` for a float
  ttl) on the key.
* **Every network wait is bounded**: the manager's own commands go through
  a pyredcache client (:func:`~pyredcache.clients.as_client`) whose
  connect and reply timeouts are 1.0 second unless the connection says
  otherwise (a ``redis.Redis`` left at redis-py's default of no timeout
  gets 1.0 s); past them :class:`~pyredcache.exceptions.ConnectionError` /
  :class:`~pyredcache.exceptions.TimeoutError` is raised.  Commands your
  own hooks send through :attr:`CacheManager.connection` use that object's
  own timeouts.

As in redcache, a function result of ``None`` is not stored, and a falsy
``load()`` result (``None``, ``b""``, an empty list) is a miss.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import weakref
from typing import Any, Callable, Iterator, TypeVar

from . import _compat
from .cache import make_key_builder
from .clients import as_client
from .clients.client import set_command
from .exceptions import CacheConfigurationError, SerializationError
from .serializers import BaseSerializer, NativeSerializer

__all__ = [
    "CacheManager",
    "Connection",
    "DefaultCacheManager",
    "default_cache",
    "get_current_connection",
    "pop_connection",
    "push_connection",
    "use_connection",
]

log = logging.getLogger("pyredcache")

F = TypeVar("F", bound=Callable[..., Any])

# -- the connection stack -------------------------------------------------------------

# This context's stack (a tuple, top last), or None: the context has pushed
# nothing of its own and sees the process-wide default.  A tuple is never
# changed in place, so a copied context (a new asyncio task,
# copy_context()) shares nothing mutable with the one it was copied from.
_stack: contextvars.ContextVar[tuple | None] = contextvars.ContextVar(
    "pyredcache.managers.connections", default=None)
# The process-wide default connection that use_connection() set, or None.
_default: Any = None
_default_lock = threading.Lock()


def _current_stack() -> tuple:
    stack = _stack.get()
    if stack is None:
        default = _default
        return () if default is None else (default,)
    return stack


def _connection_of(redis: Any) -> Any:
    """What the stack holds for redis: a URL becomes its
    :class:`~pyredcache.Client`, a cache the client it sends its commands
    through (a Client, a RedisPyAdapter or a ShardedClient); anything else
    that :func:`~pyredcache.clients.as_client` accepts is kept as given.
    Raises TypeError or ValueError for what cannot be used.  Connects
    nothing."""
    if redis is None:
        raise TypeError("expected a Redis connection, not None (use_connection() with no "
                        "argument uses $REDIS_URL, else redis://localhost:6379/0)")
    if isinstance(redis, str):
        return as_client(redis)
    exposed = getattr(type(redis), "__pyredcache_client__", None)
    if exposed is not None:  # a Cache or CacheCluster: its client
        client = exposed(redis)
        as_client(client, key=b"")  # check that commands can go through it
        return client
    as_client(redis, key=b"")  # TypeError for what cannot carry commands
    return redis


def push_connection(redis: Any) -> None:
    """Push a connection onto this context's stack: it is the current
    connection (:func:`get_current_connection`) of this thread or asyncio
    task until it is popped.

    :param redis: a ``redis.Redis`` (or any redis-py-compatible client,
        e.g. ``fakeredis.FakeRedis``), a pyredcache
        :class:`~pyredcache.Client`, a :class:`~pyredcache.Cache` or
        :class:`~pyredcache.CacheCluster` (its client is pushed), or a
        ``redis://`` / ``unix://`` URL (str; its Client is pushed).
    :raises TypeError: for None or anything else that cannot carry
        commands.
    :raises ValueError: for a malformed URL.

    The first push of a thread or task starts from the stack it sees (the
    default :func:`use_connection` set then, if any): a later
    use_connection() elsewhere does not change that stack.  Nothing
    connects until the first command.
    """
    conn = _connection_of(redis)
    _stack.set(_current_stack() + (conn,))


def pop_connection() -> Any:
    """Pop the topmost connection off this context's stack and return it
    (as it was pushed: a URL's or a cache's client, any other object
    itself); None when the stack is empty, as in redcache.

    A thread or task that pops the default :func:`use_connection` set has
    an empty stack of its own from then on; the others still see the
    default.
    """
    stack = _current_stack()
    if not stack:
        return None
    _stack.set(stack[:-1])
    return stack[-1]


def use_connection(redis: Any = None) -> None:
    """Set the process-wide default connection, and clear this context's
    stack down to it.

    :param redis: what :func:`push_connection` accepts; None (the default)
        means a :class:`~pyredcache.Client` for ``$REDIS_URL`` when that is
        set (read now), else for ``redis://localhost:6379/0``, with
        pyredcache's timeouts (1.0 s to connect, 1.0 s per reply).
    :raises RuntimeError: when this context has pushed connections above
        the default (redcache's "you should not mix Connection contexts
        with use_connection()").
    :raises TypeError: for an object that cannot carry commands.
    :raises ValueError: for a malformed URL (also in ``$REDIS_URL``).

    Every thread and asyncio task that has pushed nothing of its own, and
    every new thread, sees this connection.  Nothing connects until the
    first command.
    """
    global _default
    if len(_current_stack()) > 1:
        raise RuntimeError("you should not mix push_connection()/Connection contexts with "
                           "use_connection(): pop the pushed connections first")
    conn = as_client(None) if redis is None else _connection_of(redis)
    with _default_lock:
        _default = conn
    _stack.set(None)


def get_current_connection() -> Any:
    """The current connection of this thread or asyncio task: the top of
    its stack, else the default :func:`use_connection` set, else None."""
    stack = _stack.get()
    if stack is None:
        return _default
    return stack[-1] if stack else None


@contextlib.contextmanager
def Connection(connection: Any = None) -> Iterator[Any]:  # noqa: N802 - redcache's name
    """``with Connection(redis):`` pushes ``redis`` for the block and pops it
    after (redcache's, from RQ).  Yields the connection pushed.

    :param connection: what :func:`push_connection` accepts; None means
        the client of ``$REDIS_URL``, else ``redis://localhost:6379/0``.
    :raises RuntimeError: on leaving, when another connection than the
        block's is on top (the block pushed without popping).
    """
    conn = as_client(None) if connection is None else _connection_of(connection)
    _stack.set(_current_stack() + (conn,))
    try:
        yield conn
    finally:
        popped = pop_connection()
        if popped is not conn:
            raise RuntimeError("an unexpected Redis connection was popped off the stack: "
                               "check the connection setup (push_connection() without "
                               "pop_connection() in the block?)")


# -- cache managers ---------------------------------------------------------------------


def _check_ttl(ttl: Any) -> float | None:
    """ttl (seconds, int or float > 0, or None), validated."""
    if ttl is not None:
        set_command("k", b"", ttl)  # TypeError / ValueError for a bad expiry
    return ttl


def _expire_command(key: Any, ttl: float) -> tuple:
    if type(ttl) is int:
        return ("EXPIRE", key, ttl)
    return ("PEXPIRE", key, max(1, round(ttl * 1000)))


class CacheManager:
    """A cache of decorated functions' results in Redis, with redcache's
    hooks.

    :param key_base: prefix of every key (str): keys are ``key_base + ":" +
        module.qualname + ":" + digest``; ``""`` for none.  Default
        ``"cache"``.
    :param ttl: seconds stored results live (int or float > 0); None (the
        default) stores them without expiry.  The decorator's ``ttl``
        overrides it.
    :param connection: the connection this manager always uses (anything
        :func:`push_connection` accepts); None (the default) uses the
        current one (:func:`get_current_connection`) at each call.
    :param serializer_cls: what ``before_save``/``after_load`` encode and
        decode with (keyword only): a serializer class (one instance is
        made per core implementation) or instance.  Default
        :class:`~pyredcache.serializers.NativeSerializer`; redcache used
        cPickle (``serializer_cls=PickleSerializer`` to keep it).
    :raises TypeError, ValueError: for a bad ttl, connection or serializer.

    A decorated call (see :meth:`cache`) runs, in order::

        key = key(f, args, kwargs)
        data = load(key, f_args=args, f_kwargs=kwargs)
        if data:                     # a hit
            return after_load(data, f_args=args, f_kwargs=kwargs)
        result = f(*args, **kwargs)
        if result is not None:
            data = before_save(result, f_args=args, f_kwargs=kwargs)
            save(key, data, f_args=args, f_kwargs=kwargs)   # + its expiry
        return result

    The hooks are called with ``f_args`` (tuple) and ``f_kwargs`` (dict)
    as keywords, so an override may take them as ``**kwargs``.  Override
    ``before_save``/``after_load`` to change the stored form (JSON instead
    of the native codec), ``load``/``save`` to change how it is stored
    (lists of objects, a hash); the expiry is applied after ``save`` by
    ``EXPIRE`` on the key then.  ``key`` may be overridden too (it must
    take ``(f, args, kwargs=None)`` and return str or bytes).
    """

    def __init__(self, key_base: str = "cache", ttl: float | None = None,
                 connection: Any = None, *,
                 serializer_cls: type[BaseSerializer] | BaseSerializer | None = None) -> None:
        if not isinstance(key_base, str):
            raise TypeError("key_base must be str, not %s" % type(key_base).__name__)
        self._key_base = key_base
        self._namespace = key_base + ":" if key_base else ""
        self._ttl = _check_ttl(ttl)
        self._connection = None if connection is None else _connection_of(connection)
        if serializer_cls is None:
            serializer_cls = NativeSerializer
        probe = serializer_cls() if isinstance(serializer_cls, type) else serializer_cls
        if not (callable(getattr(probe, "dumps", None)) and callable(getattr(probe, "loads", None))):
            raise TypeError("serializer_cls must be a serializer class or instance (with dumps "
                            "and loads), not %r" % (serializer_cls,))
        self.serializer_cls = serializer_cls
        # one instance per core (NativeSerializer binds the core it was made on)
        self._serializers: dict[Any, Any] = (
            {_compat.core: probe} if isinstance(serializer_cls, type) else {})
        self._serializer = None if isinstance(serializer_cls, type) else probe
        self._builders: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
        self._reported: set = set()

    # -- settings --------------------------------------------------------------------

    @property
    def key_base(self) -> str:
        """The keys' prefix (str), before the ``":"``."""
        return self._key_base

    @property
    def ttl(self) -> float | None:
        """Seconds stored results live by default (None: no expiry)."""
        return self._ttl

    @property
    def serializer(self) -> Any:
        """The serializer the default ``before_save``/``after_load`` use."""
        if self._serializer is not None:
            return self._serializer
        core = _compat.core
        serializer = self._serializers.get(core)
        if serializer is None:
            serializer = self._serializers.setdefault(core, self.serializer_cls())
        return serializer

    @property
    def connection(self) -> Any:
        """redcache's ``connection``: the connection given to the manager,
        else the current one (:func:`get_current_connection`), else None.
        It is the object pushed (a ``redis.Redis`` stays one, with
        redis-py's whole command set, for your hooks); a URL or a cache
        given is its pyredcache client."""
        if self._connection is not None:
            return self._connection
        return get_current_connection()

    def _client(self, key: Any) -> Any:
        """The pyredcache client (bounded waits) for key's commands."""
        conn = self.connection
        if conn is None:
            raise self._no_connection()
        return as_client(conn, key)

    def _no_connection(self) -> CacheConfigurationError:
        return CacheConfigurationError(
            "%s has no Redis connection: call pyredcache.managers.use_connection() (or "
            "push_connection(), or give the manager connection=...) before calling a "
            "cached function" % type(self).__name__)

    # -- the hooks (redcache's names and signatures) -----------------------------------

    def key(self, f: Callable[..., Any], args: tuple = (), kwargs: dict | None = None) -> str:
        """The key (str) a call ``f(*args, **kwargs)`` is stored under.

        ``f`` is a function this manager decorated, or the function it
        wraps (an undecorated function gets the key the decorator's
        defaults would give it).  Raises TypeError for an argument the key
        encoding cannot encode, or arguments that do not bind to f's
        signature."""
        info = getattr(f, "__pyredcache_manager__", None)
        builder = info[1] if info is not None and info[0] is self else None
        if builder is None:
            try:
                builder = self._builders.get(f)
            except TypeError:  # not weakly referenceable
                builder = None
        if builder is None:
            builder = make_key_builder(f, None, False, namespace=self._namespace,
                                       core=_compat.core)
        return builder(tuple(args), dict(kwargs or {})).decode("utf-8")

    def after_load(self, data: Any, f_args: tuple | None = None,
                   f_kwargs: dict | None = None) -> Any:
        """Turn what :meth:`load` returned (bytes, by default) into the
        function's result.  The default decodes with :attr:`serializer`;
        :class:`~pyredcache.exceptions.SerializationError` (bytes it cannot
        decode) makes the call a miss."""
        return self.serializer.loads(data)

    def before_save(self, data: Any, f_args: tuple | None = None,
                    f_kwargs: dict | None = None) -> Any:
        """Turn the function's result into what :meth:`save` stores (bytes
        or str).  The default encodes with :attr:`serializer`; it raises
        :class:`~pyredcache.exceptions.SerializationError`, naming the
        type, for a value it cannot encode (nothing is stored then)."""
        return self.serializer.dumps(data)

    def load(self, key: Any, f_args: tuple | None = None, f_kwargs: dict | None = None) -> Any:
        """Read what is stored at key: the default sends ``GET key`` and
        returns bytes, or None for a missing key.  Raises
        CacheConfigurationError without a connection, ConnectionError /
        TimeoutError (1.0 s by default) when Redis cannot be used."""
        return self._client(key).get(key)

    def save(self, key: Any, data: Any, f_args: tuple | None = None,
             f_kwargs: dict | None = None) -> None:
        """Store data (what :meth:`before_save` returned) at key: the
        default sends ``SET key data`` (with the expiry in the same command
        when the decorator calls it).  Raises as :meth:`load`."""
        self._client(key).execute_command("SET", key, data)

    # -- the decorator -----------------------------------------------------------------

    def cache(self, ttl: Any = None, *, key_prefix: str | None = None,
              include_self: bool = False) -> Any:
        """Decorator caching a function's results: ``@manager.cache``,
        ``@manager.cache()`` or ``@manager.cache(ttl=5)``.

        :param ttl: seconds results live (int or float > 0); None (the
            default): the manager's :attr:`ttl`, which is None (no expiry)
            unless given.  Given the function itself (``@manager.cache``
            without parentheses, redcache's form), decorates it.
        :param key_prefix: replaces ``module.qualname`` in the keys (str).
        :param include_self: key on a first ``self``/``cls`` argument too
            (by its ``__cache_key__()``, or ``str(self)`` when its class
            defines ``__str__``); by default it is left out, as in redcache.
        :raises TypeError, ValueError: at decoration, for a bad ttl or
            key_prefix, or a function that cannot be decorated (a
            coroutine function: its result cannot be cached).

        A call then raises
        :class:`~pyredcache.exceptions.CacheConfigurationError` when there
        is no connection (before the function runs), TypeError for an
        argument the key encoding cannot encode, and ConnectionError /
        TimeoutError when Redis cannot be reached or does not answer
        within the client's timeouts (1.0 s by default).  A result of
        ``None`` is returned and not stored.
        """
        if callable(ttl):  # @manager.cache, without parentheses
            return self.cache(key_prefix=key_prefix, include_self=include_self)(ttl)
        if key_prefix is not None and not isinstance(key_prefix, str):
            raise TypeError("key_prefix must be str or None")
        ex = self._ttl if ttl is None else _check_ttl(ttl)

        def decorator(f: F) -> F:
            builder = make_key_builder(f, key_prefix, include_self, namespace=self._namespace,
                                       core=_compat.core)
            try:
                self._builders[f] = builder
            except TypeError:  # not weakly referenceable: key() builds its own
                pass
            manager = self
            custom_key = type(self).key is not CacheManager.key

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if manager.connection is None:
                    raise manager._no_connection()
                if custom_key:
                    key = manager.key(f, args, kwargs)
                else:
                    key = builder(args, kwargs).decode("utf-8")
                data = manager.load(key, f_args=args, f_kwargs=kwargs)
                if data:
                    try:
                        return manager.after_load(data, f_args=args, f_kwargs=kwargs)
                    except SerializationError as exc:  # InvalidSignature is one
                        manager._report(key, exc)  # a miss: recomputed, overwritten
                result = f(*args, **kwargs)
                if result is not None:
                    data = manager.before_save(result, f_args=args, f_kwargs=kwargs)
                    manager._store(key, data, ex, args, kwargs)
                return result

            wrapper.__pyredcache_manager__ = (manager, builder)  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    def _store(self, key: Any, data: Any, ttl: float | None, args: tuple, kwargs: dict) -> None:
        if type(self).save is CacheManager.save:  # one SET, expiry included
            self._client(key).execute_command(*set_command(key, data, ttl))
            return
        self.save(key, data, f_args=args, f_kwargs=kwargs)
        if ttl is not None:
            self._client(key).execute_command(*_expire_command(key, ttl))

    def _report(self, key: Any, exc: Exception) -> None:
        """Log an undecodable stored value once per key (bounded set)."""
        if key in self._reported:
            return
        if len(self._reported) >= 10000:
            self._reported.clear()
        self._reported.add(key)
        log.warning("pyredcache: treating %r as a miss: %s", key, exc)

    def __repr__(self) -> str:
        return "<pyredcache.managers.%s key_base=%r ttl=%r>" % (
            type(self).__name__, self._key_base, self._ttl)


class DefaultCacheManager(CacheManager):
    """redcache's ``DefaultCacheManager``: a :class:`CacheManager` with the
    default settings (``key_base="cache"``, no expiry, the current
    connection, the native codec), whose decorator takes ``ttl``
    (``@default_cache.cache(ttl=5)``).  In pyredcache every
    :class:`CacheManager`'s decorator does; the class is kept for the name.
    """


#: redcache's ``default_cache``: the :class:`DefaultCacheManager` for
#: ``@default_cache.cache()`` / ``@default_cache.cache(ttl=5)``.  Keys are
#: ``cache:module.qualname:digest``, values in the native codec (not
#: pickle), no expiry unless ``ttl`` is given.
default_cache = DefaultCacheManager()
