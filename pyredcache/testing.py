"""Caches for tests, rc's ``rc.testing``: :class:`NullCache` caches nothing,
:class:`FakeRedisCache` caches in a fakeredis server inside the process.

The pytest fixtures (``redis_server``, ``cache``, ``fake_cache``) are in
:mod:`pyredcache.pytest_plugin`, enabled with ``pytest -p
pyredcache.pytest_plugin``; this module does not import pytest, since
``import pyredcache`` imports it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping

from .batch import BatchIO
from .cache import DEFAULT_EXPIRE, BaseCache, Cache
from .serializers import BaseSerializer

__all__ = ["FakeRedisCache", "NullCache"]


def _all_miss(keys: list) -> list:
    return [None] * len(keys)


def _store_nothing(commands: list) -> list:
    return [b"OK"] * len(commands)


def _always(value: Any) -> bool:
    return True


class NullCache(BaseCache):
    """A cache that stores nothing, for unit tests (rc's ``NullCache``).

    ``get`` always misses (returns ``default``, ``None`` unless given),
    ``set`` and ``delete`` report success, ``get_many`` returns a ``None``
    per key, and decorated functions run on every call (in
    ``batch_mode()`` they return promises, resolved when the block ends).  It never talks to
    Redis and accepts (and ignores) any constructor arguments.

    It has no client: :meth:`get_client` and :attr:`client` raise
    NotImplementedError, as rc's do, and handing it to a lock, an id
    sequence or a container (:func:`~pyredcache.clients.as_client`) raises
    TypeError (``... has no client to send commands through``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def get_client(self) -> Any:
        """Raise NotImplementedError: a NullCache talks to no server (rc's
        ``NullCache.get_client`` raises it too)."""
        raise NotImplementedError("NullCache caches nothing and has no client")

    def __pyredcache_client__(self) -> None:
        # No client to expose: as_client() raises TypeError ("has no client
        # to send commands through") instead of our NotImplementedError.
        return None

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """Return ``default`` (``None`` unless given): every key misses."""
        return default

    def set(self, key: str | bytes, value: Any, expire: float | None = None) -> bool:
        """Store nothing; return True."""
        return True

    def delete(self, key: str | bytes) -> bool:
        """Delete nothing; return True."""
        return True

    def get_many(self, *keys: str | bytes) -> list:
        """Return a list of one ``None`` per key."""
        return [None] * len(keys)

    def set_many(self, mapping: Mapping[Any, Any], expire: float | None = None) -> bool:
        """Store nothing; return True."""
        return True

    def delete_many(self, *keys: str | bytes) -> bool:
        """Delete nothing; return True."""
        return True

    def cache(self, key_prefix: str | None = None, expire: float | None = None,
              include_self: bool = False, **options: Any) -> Callable[[Any], Any]:
        """A decorator that runs the function on every call (any options
        of :meth:`pyredcache.BaseCache.cache` are accepted and ignored)."""
        current_batch = self._batch_var.get

        def decorator(f: Any) -> Any:
            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                batch = current_batch()
                if batch is not None:  # a promise, run when the batch ends
                    return batch.add(object(), f, args, kwargs, None)
                return f(*args, **kwargs)
            return wrapper
        return decorator

    def _batch_io(self) -> BatchIO:
        # Every key misses and every result bypasses the store: nothing is
        # fetched or written, every call runs.
        return BatchIO(_all_miss, _store_nothing, self.serializer, _always, self._report,
                       self._core.Promise)

    def invalidate(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Invalidate nothing; return True."""
        return True


class FakeRedisCache(Cache):
    """A cache on a fake Redis inside the process, for tests (rc's
    ``FakeRedisCache``): it behaves as :class:`~pyredcache.Cache` (get,
    set, delete, the ``*_many`` methods, the decorator with all its
    options, ``batch_mode()``, ``invalidate()``, expiry), but stores in a
    `fakeredis <https://github.com/cunla/fakeredis-py>`_ server and opens
    no connection.  It needs the fakeredis package (``pip install
    fakeredis``; the decorator's ``lock=True`` also needs its Lua support,
    ``pip install 'fakeredis[lua]'``).

    ::

        from pyredcache.testing import FakeRedisCache

        cache = FakeRedisCache()
        assert cache.set('key', 'value')
        assert cache.get('key') == 'value'

    :param namespace: prefix added to every key (str).
    :param serializer_cls: serializer class or instance; default
        :class:`~pyredcache.serializers.NativeSerializer`.
    :param default_expire: seconds a value lives when no expire is given
        (int or float > 0, or None for no expiry); default 259200 (three
        days).  fakeredis honours expiries, in real time.
    :param bypass_values: results the decorator does not store.
    :param server: keyword only: the ``fakeredis.FakeServer`` to store in,
        so that several caches (or a plain ``fakeredis.FakeRedis(server=...)``)
        share one store.  By default each FakeRedisCache has a fresh server
        of its own, empty, seen by no other cache.  (rc's, on the fakeredis
        of its day, shared one store between all instances.)

    :attr:`server` is the FakeServer and :attr:`redis` a
    ``fakeredis.FakeRedis`` over it, with redis-py's usual replies, to
    look behind the cache's back in a test (``cache.redis.ttl('key')``,
    ``cache.redis.keys()``); :meth:`get_client` returns it, as rc's does.
    The cache sends its commands through :attr:`client`, a
    :class:`~pyredcache.clients.RedisPyAdapter` over it: this is
    ``Cache(redis=fakeredis.FakeRedis(server=server))``.

    :raises ImportError: fakeredis is not installed (the message says
        ``pip install fakeredis``).
    """

    def __init__(
        self,
        namespace: str | None = None,
        serializer_cls: type[BaseSerializer] | None = None,
        default_expire: float | None = DEFAULT_EXPIRE,
        bypass_values: Iterable[Any] = (),
        *,
        server: Any = None,
    ) -> None:
        try:
            import fakeredis
        except ImportError as exc:
            raise ImportError(
                "FakeRedisCache needs the fakeredis package: pip install fakeredis"
            ) from exc
        if server is None:
            server = fakeredis.FakeServer()
        elif not isinstance(server, fakeredis.FakeServer):
            raise TypeError("server must be a fakeredis.FakeServer or None, not %s"
                            % type(server).__name__)
        #: The ``fakeredis.FakeServer`` this cache stores in.
        self.server = server
        #: A ``fakeredis.FakeRedis`` over :attr:`server`.
        self.redis = fakeredis.FakeRedis(server=server)
        super().__init__(namespace=namespace, serializer_cls=serializer_cls,
                         default_expire=default_expire, bypass_values=bypass_values,
                         redis=self.redis)

    def __repr__(self) -> str:
        return "<pyredcache.FakeRedisCache namespace=%r>" % (self.namespace,)
