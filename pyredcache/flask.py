"""The Flask extension: :class:`RedCache`, with Flask-Caching's face as
:class:`Cache`, so that Flask-Caching's users switch by changing an import::

    from pyredcache.flask import Cache      # was: from flask_caching import Cache

    cache = Cache(config={"CACHE_TYPE": "RedisCache",
                          "CACHE_REDIS_URL": "redis://localhost:6379/0"})
    cache.init_app(app)

    @app.route("/")
    @cache.cached(timeout=50)
    def index():
        ...

    @cache.memoize(300)
    def user_name(user_id):
        ...

The names, arguments and meanings are Flask-Caching's (``cached``,
``memoize``, ``delete_memoized``, ``delete_memoized_verhash``, ``get`` /
``set`` / ... / ``inc`` / ``dec``, the Jinja2 ``{% cache %}`` tag and
:func:`make_template_fragment_key`); what is pyredcache's own is listed in
``docs/flask.rst``.  In short:

* one extension object serves any number of apps: each app's cache lives in
  ``app.extensions['pyredcache']`` (a dict: extension -> its state for that
  app), never on the extension object (Flask's extension guide), so every
  call needs an application context;
* memoize keys come from pyredcache's key builder
  (:func:`pyredcache.cache.make_key_builder`): the arguments bound to the
  signature, canonically encoded and hashed (BLAKE2b), never ``repr()``; the
  same call gives the same key in every process, so no version keys are
  needed and a memoized hit is one round trip (one GET);
* ``delete_memoized(f)`` deletes f's entries themselves (SCAN MATCH on f's key
  prefix, then UNLINK), and :meth:`RedCache.clear` only this app's keys
  (SCAN MATCH on ``CACHE_KEY_PREFIX``; FLUSHDB only with an empty prefix);
* ``cache.region(name)`` is a pyredcache :class:`~pyredcache.Region` on the
  app's cache, and :data:`cache_hit` / :data:`cache_miss` are blinker
  signals for metrics.

Importing :mod:`pyredcache` does not import Flask; importing this module
does (it needs Flask and blinker: ``pip install 'pyredcache[flask]'``).

Keys in Redis (``P`` is ``CACHE_KEY_PREFIX``, default ``'flask_cache_'``)::

    P<key>                                   get/set/add/inc/... keys
    P<key_prefix % request.path>[<hex>]      @cached views (<hex>: query string
                                             and source hashes, when asked)
    P<module.qualname>[:<self>][:<src>]:<digest>   @memoize entries
    P_template_fragment_cache_<name>[_<vary_on>]   {% cache %} fragments

Values: integers of 64 bits (``type(v) is int``) are stored as their decimal
text, as Redis' INCRBY writes them (so :meth:`RedCache.inc` and
:meth:`RedCache.get` agree, as with Flask-Caching's Redis backend);
everything else through the serializer (``CACHE_SERIALIZER``; default
:class:`~pyredcache.serializers.NativeSerializer`, which never runs code on
decoding: Flask-Caching's default is pickle).  A ``@cached`` entry is a tuple:
``(0, value)``, or ``(1, body, status, headers)`` for a Flask response.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Iterable, TypeVar
from urllib.parse import parse_qsl

import blinker
import flask
from jinja2 import nodes
from jinja2.ext import Extension
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from . import _compat
from .cache import Cache as _RedisCache
from .cache import function_name, make_key_builder
from .clients.client import Client, set_command
from .clients.urls import OPTIONS, parse_url
from .exceptions import ConnectionError, SerializationError
from .region import Region, RegionCache
from .serializers import JSONSerializer, NativeSerializer, PickleSerializer

__all__ = ["RedCache", "Cache", "CacheExtension", "make_template_fragment_key",
           "signals", "cache_hit", "cache_miss", "EXTENSION_KEY", "DEFAULT_TIMEOUT",
           "DEFAULT_KEY_PREFIX"]

log = logging.getLogger("pyredcache")

F = TypeVar("F", bound=Callable[..., Any])

#: Where the per-app state lives: ``app.extensions[EXTENSION_KEY]`` is a dict
#: from each extension object initialised on the app to its state there.
EXTENSION_KEY = "pyredcache"

#: ``CACHE_DEFAULT_TIMEOUT``'s default, in seconds (Flask-Caching's).
DEFAULT_TIMEOUT = 300

#: ``CACHE_KEY_PREFIX``'s default (Flask-Caching's).
DEFAULT_KEY_PREFIX = "flask_cache_"

#: The blinker namespace of this module's signals.
signals = blinker.Namespace()

#: Sent on a hit of a ``@cached`` view, a ``@memoize`` function or a
#: ``{% cache %}`` fragment, by the extension object, with ``key`` (str: the
#: key as :meth:`RedCache.get` takes it, without ``CACHE_KEY_PREFIX``) and
#: ``kind`` (``'view'``, ``'memoize'`` or ``'fragment'``).  Nothing is built
#: or sent while no receiver is connected.
cache_hit = signals.signal("cache-hit")

#: Sent on a miss (the function or block runs), as :data:`cache_hit`.
cache_miss = signals.signal("cache-miss")

_current_app = flask.current_app._get_current_object  # type: ignore[attr-defined]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# -- configuration ----------------------------------------------------------------------

#: The settings read, with their defaults (``CACHE_REDIS_HOST``/``PORT``/``DB``
#: default to localhost, 6379, 0, ignored when ``CACHE_REDIS_URL`` is set).
_READ = {
    "CACHE_TYPE": None,
    "CACHE_REDIS_URL": None,
    "CACHE_REDIS_HOST": None,
    "CACHE_REDIS_PORT": None,
    "CACHE_REDIS_DB": None,
    "CACHE_REDIS_PASSWORD": None,
    "CACHE_DEFAULT_TIMEOUT": DEFAULT_TIMEOUT,
    "CACHE_KEY_PREFIX": DEFAULT_KEY_PREFIX,
    "CACHE_IGNORE_ERRORS": False,
    "CACHE_OPTIONS": None,
    "CACHE_SERIALIZER": None,
    "CACHE_SOURCE_CHECK": False,
    # accepted, nothing to do: there is no NullCache warning, and the
    # signals are always there (free while nothing listens)
    "CACHE_NO_NULL_WARNING": None,
    "CACHE_ENABLE_SIGNALS": None,
    # accepted when empty (Flask-Caching's default)
    "CACHE_ARGS": None,
}

#: Flask-Caching's settings that cannot apply to pyredcache, and why.
_REFUSED = {
    "CACHE_THRESHOLD": "it bounds SimpleCache and FileSystemCache; Redis bounds its "
                       "memory itself (maxmemory and an eviction policy)",
    "CACHE_DIR": "it is FileSystemCache's directory; pyredcache caches in Redis",
    "CACHE_HASH_METHOD": "pyredcache's keys are BLAKE2b digests of the canonically "
                         "encoded arguments (equal in every process); there is no "
                         "hash to choose",
    "CACHE_FILE_HASH_METHOD": "it is FileSystemCache's; pyredcache caches in Redis",
    "CACHE_MEMCACHED_SERVERS": "pyredcache caches in Redis, not memcached",
    "CACHE_MEMCACHED_USERNAME": "pyredcache caches in Redis, not memcached",
    "CACHE_MEMCACHED_PASSWORD": "pyredcache caches in Redis, not memcached",
    "CACHE_UWSGI_NAME": "pyredcache caches in Redis, not uWSGI",
    "CACHE_GCS_BUCKET": "pyredcache caches in Redis, not Google Cloud Storage",
    "CACHE_REDIS_SENTINELS": "give a client of your own instead: CACHE_REDIS_HOST = "
                             "redis.sentinel.Sentinel(...).master_for(name)",
    "CACHE_REDIS_SENTINEL_MASTER": "give a client of your own instead: CACHE_REDIS_HOST = "
                                   "redis.sentinel.Sentinel(...).master_for(name)",
    "CACHE_REDIS_SENTINEL_PASSWORD": "give a client of your own instead: "
                                     "CACHE_REDIS_HOST = redis.sentinel.Sentinel(...)"
                                     ".master_for(name)",
    "CACHE_REDIS_CLUSTER": "give a client of your own instead: CACHE_REDIS_HOST = "
                           "redis.cluster.RedisCluster(...)",
}

_SERIALIZERS = {"native": NativeSerializer, "json": JSONSerializer, "pickle": PickleSerializer}


def _check_timeout(timeout: Any, name: str = "timeout") -> None:
    """Raise TypeError/ValueError unless timeout is None or a number of
    seconds >= 0 (an int, a float or a ``datetime.timedelta``)."""
    _seconds(timeout, None, name)


def _seconds(timeout: Any, default: float | None, name: str = "timeout") -> float | None:
    """The expiry to send (seconds > 0, or None: none) for a timeout given
    as Flask-Caching takes it: None is ``default``, 0 is no expiry."""
    if timeout is None:
        return default
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("%s must be a number of seconds (int, float or timedelta) or None, "
                        "not %s" % (name, type(timeout).__name__))
    if timeout == 0:
        return None
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError("%s must be >= 0 seconds (0: no expiry), got %r" % (name, timeout))
    return timeout


def _serializer_of(value: Any) -> Any:
    if value is None:
        return NativeSerializer()
    if isinstance(value, str):
        cls = _SERIALIZERS.get(value.lower())
        if cls is None:
            raise ValueError("CACHE_SERIALIZER %r: give 'native', 'json' or 'pickle', a "
                             "serializer class or an object with dumps and loads" % (value,))
        return cls()
    if isinstance(value, type):
        value = value()
    if not (callable(getattr(value, "dumps", None)) and callable(getattr(value, "loads", None))):
        raise ValueError("CACHE_SERIALIZER must be 'native', 'json', 'pickle', a serializer "
                         "class or an object with dumps and loads, not %r" % (value,))
    return value


def _is_redis_type(value: Any) -> bool:
    return isinstance(value, str) and value.rsplit(".", 1)[-1].lower() in ("redis", "rediscache")


class _Settings:
    """The settings of one app, read and checked (see :class:`RedCache`)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        problems = []
        for name in sorted(k for k in config if isinstance(k, str) and k.startswith("CACHE_")):
            value = config[name]
            if name in _REFUSED:
                if value is not None:
                    problems.append("%s (%s)" % (name, _REFUSED[name]))
            elif name not in _READ:
                problems.append("%s (not a setting of pyredcache.flask or Flask-Caching; "
                                "pyredcache.flask reads %s)" % (name, ", ".join(sorted(_READ))))
        kind = config.get("CACHE_TYPE")
        if kind is not None and not _is_redis_type(kind):
            problems.append(
                "CACHE_TYPE=%r (pyredcache.flask caches in Redis only: leave CACHE_TYPE "
                "out or give 'RedisCache'; for RedisSentinelCache or RedisClusterCache, "
                "give a redis-py client of your own as CACHE_REDIS_HOST)" % (kind,))
        if config.get("CACHE_ARGS"):
            problems.append("CACHE_ARGS (positional arguments of a Flask-Caching backend "
                            "class; give connection options in CACHE_OPTIONS)")
        if problems:
            raise ValueError("pyredcache.flask cannot use these settings: " + "; ".join(problems))
        get = config.get

        prefix = get("CACHE_KEY_PREFIX", DEFAULT_KEY_PREFIX)
        if prefix is None:
            prefix = ""
        if not isinstance(prefix, str):
            raise TypeError("CACHE_KEY_PREFIX must be str, not %s (a callable prefix is "
                            "not supported)" % type(prefix).__name__)
        self.key_prefix = prefix

        timeout = get("CACHE_DEFAULT_TIMEOUT", DEFAULT_TIMEOUT)
        if isinstance(timeout, str):
            try:
                timeout = float(timeout) if "." in timeout else int(timeout)
            except ValueError:
                raise ValueError("CACHE_DEFAULT_TIMEOUT must be a number of seconds, got "
                                 "%r" % (timeout,)) from None
        #: seconds an entry lives when no timeout is given (None: no expiry)
        self.default_timeout = _seconds(timeout, None, "CACHE_DEFAULT_TIMEOUT")
        self.ignore_errors = bool(get("CACHE_IGNORE_ERRORS", False))
        self.source_check = bool(get("CACHE_SOURCE_CHECK", False))
        self.serializer = _serializer_of(get("CACHE_SERIALIZER"))

        options = get("CACHE_OPTIONS") or {}
        if not isinstance(options, Mapping):
            raise TypeError("CACHE_OPTIONS must be a dict of connection options, not %s"
                            % type(options).__name__)
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError("CACHE_OPTIONS: unknown connection options %s (pyredcache's are "
                             "%s)" % (", ".join(map(repr, unknown)), ", ".join(OPTIONS)))
        url = get("CACHE_REDIS_URL")
        host = get("CACHE_REDIS_HOST")
        self.redis: Any = None
        connection: dict[str, Any]
        if url:
            try:
                connection = parse_url(url)
            except ValueError as exc:
                raise ValueError("CACHE_REDIS_URL: %s (for TLS or Sentinel, give a redis-py "
                                 "client of your own as CACHE_REDIS_HOST)" % exc) from None
            if "db" not in connection and get("CACHE_REDIS_DB") is not None:
                connection["db"] = int(get("CACHE_REDIS_DB"))
        elif host is not None and not isinstance(host, str):
            given = [k for k in ("CACHE_REDIS_PORT", "CACHE_REDIS_DB", "CACHE_REDIS_PASSWORD")
                     if get(k) is not None] + (["CACHE_OPTIONS"] if options else [])
            if given:
                raise ValueError("CACHE_REDIS_HOST is a client of your own: configure it, "
                                 "not %s" % ", ".join(given))
            self.redis = host
            connection = {}
        else:
            connection = {"host": host or "localhost",
                          "port": int(get("CACHE_REDIS_PORT") or 6379),
                          "db": int(get("CACHE_REDIS_DB") or 0)}
            if get("CACHE_REDIS_PASSWORD"):
                connection["password"] = get("CACHE_REDIS_PASSWORD")
        connection.update(options)
        self.connection = connection

    def make_cache(self) -> _RedisCache:
        """The pyredcache Cache these settings describe (connects nothing)."""
        kwargs: dict[str, Any] = dict(
            namespace=self.key_prefix, serializer_cls=self.serializer,
            default_expire=self.default_timeout)
        if self.ignore_errors:
            kwargs["ignore_errors"] = True
        if self.redis is not None:
            return _RedisCache(redis=self.redis, **kwargs)
        return _RedisCache(**self.connection, **kwargs)


# -- values ----------------------------------------------------------------------------

_INT_FIRST = frozenset(bytes([c]) for c in b"-0123456789")
_INT = re.compile(rb"-?[0-9]{1,19}")
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


class _Codec:
    """Values as the Flask face stores them: 64-bit ints as decimal text
    (what INCRBY reads and writes), everything else through the serializer."""

    __slots__ = ("serializer", "_dumps", "_loads")

    def __init__(self, serializer: Any) -> None:
        self.serializer = serializer
        self._dumps = serializer.dumps
        self._loads = serializer.loads

    def dumps(self, value: Any) -> bytes:
        if type(value) is int and _INT_MIN <= value <= _INT_MAX:
            return b"%d" % value
        return self._dumps(value)

    def loads(self, raw: bytes) -> Any:
        if raw[:1] in _INT_FIRST and _INT.fullmatch(raw):
            return int(raw)
        return self._loads(raw)


class _AppState:
    """What one extension keeps for one app, in
    ``app.extensions['pyredcache'][extension]``."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        #: the pyredcache Cache (its namespace is CACHE_KEY_PREFIX)
        self.cache = settings.make_cache()
        self.client = self.cache.client
        self.prefix = settings.key_prefix
        self.prefix_b = settings.key_prefix.encode("utf-8")
        self.default_timeout = settings.default_timeout
        self.source_check = settings.source_check
        self.codec = _Codec(settings.serializer)
        self.dumps = self.codec.dumps
        self.loads = self.codec.loads
        #: per memoized function: (key head, key head with source part, source part)
        self.heads: dict[Any, tuple[bytes, bytes, bytes]] = {}
        self._regions: RegionCache | None = None
        self._lock = threading.Lock()
        self._reported: set = set()
        self._quiet_until = 0.0

    @property
    def ignore_errors(self) -> bool:
        """CACHE_IGNORE_ERRORS, as the Cache has it now (it may be changed at
        run time: ``cache.cache.ignore_errors = True``)."""
        return self.cache.ignore_errors

    def unreachable(self, what: str, exc: Exception) -> None:
        """Log that Redis could not be used, at most once a minute (an
        outage fails every call)."""
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + 60.0
            log.warning("pyredcache.flask: %s: Redis unreachable, failing open (%s: %s); "
                        "next warning in 60 s at most", what, type(exc).__name__, exc)

    def regions(self) -> RegionCache:
        if self._regions is None:
            with self._lock:
                if self._regions is None:
                    self._regions = RegionCache(serializer=self.settings.serializer,
                                                cache=self.cache)
        return self._regions

    def report(self, key: Any, exc: Exception) -> None:
        """Log once per key (a bounded set) a stored value treated as a miss."""
        if key in self._reported:
            return
        if len(self._reported) >= 10000:
            self._reported.clear()
        self._reported.add(key)
        log.warning("pyredcache.flask: treating %r as a miss: %s", key, exc)

    def expiry(self, timeout: Any) -> float | None:
        return _seconds(timeout, self.default_timeout)


def _debug() -> bool:
    """Whether the current app (if any) runs in debug mode."""
    return bool(flask.has_app_context() and _current_app().debug)


def _cache_error(state: _AppState, what: str, exc: Exception) -> None:
    """The decorators' policy (Flask-Caching's): a cache that fails does not
    fail the view.  Re-raise in debug mode (unless CACHE_IGNORE_ERRORS and
    the server could not be reached); otherwise log and go on uncached."""
    unreachable = isinstance(exc, ConnectionError)
    if not (unreachable and state.ignore_errors) and _debug():
        raise exc
    if unreachable:
        state.unreachable(what, exc)
    else:
        log.exception("pyredcache.flask: %s failed; served uncached", what)


# -- helpers of the decorators ------------------------------------------------------------


def _wants_args(f: Callable[..., Any] | None) -> bool:
    """Flask-Caching's rule for unless/forced_update: called with the
    arguments when it takes any that are not keyword-only."""
    if f is None:
        return False
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind != p.KEYWORD_ONLY for p in params)


def _check_decoratable(f: Any, what: str) -> None:
    if not callable(f):
        raise TypeError("@cache.%s() decorates functions, not %s" % (what, type(f).__name__))
    if inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f):
        raise TypeError("@cache.%s() cannot decorate the coroutine function %s: its call "
                        "returns a coroutine, which cannot be cached"
                        % (what, getattr(f, "__qualname__", f)))


def _source_hash(f: Callable[..., Any]) -> str:
    """16 hex digits of the BLAKE2b digest of f's source (source_check).
    Raises TypeError when the source cannot be read."""
    try:
        source = inspect.getsource(f)
    except (OSError, TypeError) as exc:
        raise TypeError("source_check: cannot read the source of %r: %s" % (f, exc)) from None
    return hashlib.blake2b(source.encode("utf-8"), digest_size=8).hexdigest()


def _join(rv: Any) -> Any:
    """A generator's chunks joined, as Flask-Caching stores them."""
    chunks = list(rv)
    if all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    if all(isinstance(c, bytes) for c in chunks):
        return b"".join(chunks)
    return chunks


def _query_pairs(query_args: Any) -> list[tuple[str, str]]:
    """(name, value) pairs of a query string, a mapping, a MultiDict or an
    iterable of pairs, values as str."""
    if isinstance(query_args, str):
        return parse_qsl(query_args.lstrip("?"), keep_blank_values=True)
    if isinstance(query_args, MultiDict):
        items: Iterable[Any] = query_args.items(multi=True)
    elif isinstance(query_args, Mapping):
        items = query_args.items()
    else:
        items = query_args
    return [(str(k), str(v)) for k, v in items]


def _pairs_key(pairs: Any) -> None:
    """The signature the query string digest is built over."""


def _instance_key(instance: Any) -> None:
    """The signature a method's instance digest is built over."""


def _instance_value(obj: Any) -> Any:
    """What stands for ``self`` (or ``cls``) in a memoized method's key:
    the class's name for a class, else ``__cache_key__()`` (pyredcache's
    protocol), ``__caching_id__()`` (Flask-Caching's) or ``repr(obj)`` when
    the class defines ``__repr__`` (Flask-Caching's advice).  The default
    ``object.__repr__`` holds a memory address, different in every process:
    TypeError."""
    if isinstance(obj, type):
        return ("class", "%s.%s" % (obj.__module__, obj.__qualname__))
    t = type(obj)
    if getattr(t, "__cache_key__", None) is not None:
        return obj
    caching_id = getattr(obj, "__caching_id__", None)
    if caching_id is not None:
        return ("id", str(caching_id()))
    if t.__repr__ is not object.__repr__:
        return ("repr", repr(obj))
    raise TypeError(
        "memoize: cannot key the instance of %s.%s: give the class a __caching_id__() "
        "(or __cache_key__()) method returning a stable id, or a __repr__; the default "
        "repr holds a memory address, a different key in every process"
        % (t.__module__, t.__qualname__))


class _Memo:
    """What a memoized function knows: its name in the keys, its key
    builder, how its instance and ignored arguments are keyed."""

    def __init__(self, owner: "RedCache", f: Callable[..., Any],
                 make_name: Callable[[str], str] | None, source_check: bool | None,
                 args_to_ignore: Iterable[str] | None) -> None:
        core = _compat.core
        self.owner = owner
        self.f = f
        name = function_name(f)
        if make_name is not None:
            name = make_name(name)
            if not isinstance(name, str):
                raise TypeError("make_name must return str, not %s" % type(name).__name__)
        self.name = name
        self.name_b = name.encode("utf-8")
        # b":" + digest of the arguments bound to f's signature (self or cls,
        # first, left out: the instance part keys it)
        self.builder = make_key_builder(f, "", False, namespace="", core=core)
        params = list(inspect.signature(f).parameters.values())
        ignore = set(args_to_ignore or ())
        first = params[0] if params else None
        self.method = bool(first is not None and first.name in ("self", "cls")
                           and first.kind in _POSITIONAL)
        self.first = first.name if self.method and first is not None else None
        self.keys_instance = self.method and self.first not in ignore
        self.instance_builder = (make_key_builder(_instance_key, "", False, namespace="",
                                                  core=core)
                                 if self.keys_instance else None)
        named = {p.name: (i, p) for i, p in enumerate(params)
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        has_var_keyword = any(p.kind == p.VAR_KEYWORD for p in params)
        replaced = []
        dropped = []
        for arg in sorted(ignore):
            if not isinstance(arg, str):
                raise TypeError("args_to_ignore holds argument names (str), not %r" % (arg,))
            if arg == self.first:
                continue
            if arg in named:
                i, p = named[arg]
                value = None if p.default is p.empty else p.default
                replaced.append((i if p.kind in _POSITIONAL else -1, arg, value))
            elif has_var_keyword:
                dropped.append(arg)
            else:
                raise ValueError("args_to_ignore: %r is not a parameter of %s"
                                 % (arg, getattr(f, "__qualname__", f)))
        self.replaced = tuple(replaced)
        self.dropped = tuple(dropped)
        self.ignores = bool(replaced or dropped)
        self.source_check = source_check
        self._source: bytes | None = None
        if source_check:
            self._source = _source_hash(f).encode("ascii")

    def heads(self, state: _AppState) -> tuple[bytes, bytes, bytes]:
        """(prefix + name, the same + source part, source part) for state."""
        check = self.source_check if self.source_check is not None else state.source_check
        src = b""
        if check:
            if self._source is None:
                self._source = _source_hash(self.f).encode("ascii")
            src = b":" + self._source
        head = state.prefix_b + self.name_b
        found = state.heads[self] = (head, head + src, src)
        return found

    def canonical(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """args and kwargs with the ignored arguments replaced by their
        default (None when they have none) and unknown ignored keywords
        dropped: every value of an ignored argument gives one key."""
        args_l = list(args)
        kwargs = dict(kwargs)
        for index, name, value in self.replaced:
            if 0 <= index < len(args_l):
                args_l[index] = value
            elif name in kwargs:
                kwargs[name] = value
        for name in self.dropped:
            kwargs.pop(name, None)
        return tuple(args_l), kwargs

    def instance_part(self, args: tuple, kwargs: dict) -> bytes:
        """b':' + the digest of the instance (``self`` or ``cls``)."""
        if args:
            obj = args[0]
        elif self.first in kwargs:
            obj = kwargs[self.first]
        else:
            return b""  # the call does not bind: the builder raises TypeError
        assert self.instance_builder is not None
        return self.instance_builder((_instance_value(obj),), {})

    def key(self, state: _AppState, args: tuple, kwargs: dict) -> bytes:
        """The Redis key (bytes) of the call f(*args, **kwargs) in state."""
        heads = state.heads.get(self) or self.heads(state)
        if self.ignores:
            args, kwargs = self.canonical(args, kwargs)
        if self.keys_instance:
            return heads[0] + self.instance_part(args, kwargs) + heads[2] + \
                self.builder(args, kwargs)
        return heads[1] + self.builder(args, kwargs)


def _glob_escape(data: bytes) -> bytes:
    """data with the special characters of SCAN MATCH's glob escaped."""
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", data)


def _drop_matching(client: Any, pattern: bytes) -> int:
    """Delete every key matching pattern (SCAN MATCH, COUNT 1000, then
    UNLINK per page; on a sharded or user's client, its DEL, which splits
    the keys by server).  Returns how many keys were deleted."""
    deleted = 0
    page: list = []
    for key in client.scan_iter(match=pattern, count=1000):
        page.append(key)
        if len(page) >= 1000:
            deleted += _unlink(client, page)
            page = []
    if page:
        deleted += _unlink(client, page)
    return deleted


def _unlink(client: Any, keys: list) -> int:
    if isinstance(client, Client):
        return int(client.execute_command("UNLINK", *keys))
    return int(client.delete(*keys))


def _envelope(rv: Any) -> tuple | None:
    """A view's result as a ``@cached`` entry: ``(0, value)``, or ``(1, body,
    status, headers)`` for a response; None for a response that cannot be
    stored (streamed, or passed through)."""
    if isinstance(rv, tuple) and rv and isinstance(rv[0], Response):
        rv = _current_app().make_response(rv)
    if isinstance(rv, Response):
        if rv.is_streamed or rv.direct_passthrough:
            return None
        return (1, rv.get_data(), rv.status, [tuple(h) for h in rv.headers.items()])
    return (0, rv)


_UNUSABLE = object()


def _unwrap(entry: Any) -> Any:
    """The value of a ``@cached`` entry (a response is rebuilt), or
    _UNUSABLE for anything that is not one."""
    if type(entry) in (tuple, list):
        if len(entry) == 2 and entry[0] == 0:
            return entry[1]
        if len(entry) == 4 and entry[0] == 1:
            _, body, status, headers = entry
            return _current_app().response_class(body, status=status,
                                                 headers=[tuple(h) for h in headers])
    return _UNUSABLE


# -- the extension ----------------------------------------------------------------------


class RedCache:
    """pyredcache's Flask extension; :class:`Cache` is the same with
    Flask-Caching's constructor.

    ::

        cache = RedCache()                     # or RedCache(app)
        cache.init_app(app)                    # per app, any number of apps

    :param app: a Flask app to initialise at once (:meth:`init_app`).
    :param options: keyword only.  ``config`` (dict): settings by their
        config names (``{'CACHE_KEY_PREFIX': 'myapp:'}``), Flask-Caching's
        ``Cache(config=...)``; ``with_jinja2_ext`` (bool, default True):
        add the ``{% cache %}`` tag to each app's Jinja environment; and any
        setting by its lower-case name without ``CACHE_``
        (``redis_url='redis://...'``, ``key_prefix='myapp:'``,
        ``default_timeout=60``, ...).  An app's setting is, in order of
        precedence: ``init_app(app, config=...)``, then these options, then
        ``app.config``.

    The settings (config keys; Flask-Caching's names and meanings):

    * ``CACHE_REDIS_URL``: ``redis://[[user]:password@]host[:port][/db]``
      or ``unix:///path?db=N``, with any pyredcache connection option in
      the query string (:func:`~pyredcache.clients.urls.parse_url`); when
      set, ``CACHE_REDIS_HOST``, ``_PORT`` and ``_PASSWORD`` are ignored
      (as in Flask-Caching) and ``CACHE_REDIS_DB`` applies when the URL
      names no db.
    * ``CACHE_REDIS_HOST`` (str, default ``'localhost'``),
      ``CACHE_REDIS_PORT`` (int, 6379), ``CACHE_REDIS_DB`` (int, 0),
      ``CACHE_REDIS_PASSWORD``.  ``CACHE_REDIS_HOST`` may instead be a
      client of your own (a ``redis.Redis``, a Sentinel's
      ``master_for()``, a ``RedisCluster``), used as ``pyredcache.Cache(redis=...)``;
      port, db, password and options then belong to that client.
    * ``CACHE_DEFAULT_TIMEOUT``: seconds an entry lives when no timeout is
      given (int, float or ``timedelta``), default 300; 0 (or None): no
      expiry.
    * ``CACHE_KEY_PREFIX``: prepended to every key (str), default
      ``'flask_cache_'``; :meth:`clear` deletes exactly the keys that
      start with it.
    * ``CACHE_IGNORE_ERRORS``: True: a server that cannot be reached (a
      connection error or a timeout) makes reads misses and writes no-ops
      instead of raising :class:`~pyredcache.exceptions.ConnectionError`;
      passed on as ``pyredcache.Cache(ignore_errors=True)``.  Default False.
    * ``CACHE_OPTIONS``: pyredcache connection options (dict, e.g.
      ``{'socket_timeout': 0.25}``, seconds; see
      :data:`pyredcache.clients.urls.OPTIONS`); unknown names raise
      ValueError.
    * ``CACHE_SERIALIZER``: ``'native'`` (default:
      :class:`~pyredcache.serializers.NativeSerializer`, decoding never runs
      code), ``'json'``, ``'pickle'``, a serializer class, or an object with
      ``dumps`` and ``loads``.
    * ``CACHE_SOURCE_CHECK``: the decorators' ``source_check`` default
      (bool, False).
    * ``CACHE_TYPE``: absent, or a Redis one (``'RedisCache'``,
      ``'redis'``, ``'flask_caching.backends.RedisCache'``, ...).
    * Accepted and without effect: ``CACHE_NO_NULL_WARNING``,
      ``CACHE_ENABLE_SIGNALS`` (:data:`cache_hit` and :data:`cache_miss`
      are always sent to whoever listens), an empty ``CACHE_ARGS``.

    :meth:`init_app` raises ValueError naming every setting it cannot use:
    another ``CACHE_TYPE`` (SimpleCache, FileSystemCache, memcached, ...,
    including NullCache), Flask-Caching's settings of other backends
    (``CACHE_DIR``, ``CACHE_THRESHOLD``, ``CACHE_MEMCACHED_SERVERS``,
    Sentinel and Cluster settings, ...), ``CACHE_HASH_METHOD``, a non-empty
    ``CACHE_ARGS``, and any other ``CACHE_*`` key (a typo).

    Every method needs an application context of an app given to
    :meth:`init_app` (RuntimeError otherwise): the extension keeps nothing
    of any app on itself.  Timeouts are in seconds; ``timeout=None`` is
    ``CACHE_DEFAULT_TIMEOUT`` and ``timeout=0`` no expiry, as in
    Flask-Caching.
    """

    def __init__(self, app: flask.Flask | None = None, **options: Any) -> None:
        config = options.pop("config", None)
        if config is not None and not isinstance(config, dict):
            raise ValueError("config must be a dict or None, not %s" % type(config).__name__)
        self.with_jinja2_ext = bool(options.pop("with_jinja2_ext", True))
        settings = dict(config or {})
        for name, value in options.items():
            key = "CACHE_" + name.upper()
            if key not in _READ or not name.islower():
                raise TypeError("RedCache() got an unexpected keyword argument %r (its "
                                "options: config, with_jinja2_ext, %s)"
                                % (name, ", ".join(k[6:].lower() for k in sorted(_READ))))
            settings[key] = value
        #: The settings given to the constructor (config names).
        self.config = settings
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return "<pyredcache.flask.%s>" % type(self).__name__

    # -- apps --------------------------------------------------------------------------

    def init_app(self, app: flask.Flask, config: dict[str, Any] | None = None) -> None:
        """Set up the cache of app (a Flask app), in
        ``app.extensions['pyredcache'][self]``; ``config`` (dict) overrides
        the app's and the constructor's settings for this app.  Adds the
        ``{% cache %}`` tag to ``app.jinja_env`` unless ``with_jinja2_ext``
        was false.  Nothing connects.  Raises ValueError for settings it
        cannot use (see :class:`RedCache`), TypeError for a setting of the
        wrong type, ValueError for a malformed URL."""
        if config is not None and not isinstance(config, dict):
            raise ValueError("config must be a dict or None, not %s" % type(config).__name__)
        merged = {k: v for k, v in app.config.items() if isinstance(k, str)
                  and k.startswith("CACHE_")}
        merged.update(self.config)
        merged.update(config or {})
        state = _AppState(_Settings(merged))
        if not hasattr(app, "extensions"):  # pragma: no cover - Flask always has it
            app.extensions = {}
        app.extensions.setdefault(EXTENSION_KEY, {})[self] = state
        if self.with_jinja2_ext:
            env = app.jinja_env
            env.add_extension(CacheExtension)
            env.pyredcache_fragment_cache = (self, state)  # type: ignore[attr-defined]

    def _state(self) -> _AppState:
        app = _current_app()
        try:
            return app.extensions[EXTENSION_KEY][self]
        except KeyError:
            raise RuntimeError("%r was not initialised for the app %r: call "
                               "init_app(app) first" % (self, app.name)) from None

    @property
    def cache(self) -> _RedisCache:
        """The current app's :class:`pyredcache.Cache` (Flask-Caching's
        ``cache.cache``, the backend): its namespace is the app's
        ``CACHE_KEY_PREFIX``."""
        return self._state().cache

    # -- get and set -------------------------------------------------------------------

    def _guard(self, state: _AppState, exc: ConnectionError, fallback: Any) -> Any:
        if not state.ignore_errors:
            raise exc
        state.unreachable("CACHE_IGNORE_ERRORS", exc)
        return fallback

    def _decode(self, state: _AppState, key: Any, raw: Any, default: Any) -> Any:
        if raw is None:
            return default
        try:
            return state.loads(raw)
        except SerializationError as exc:
            state.report(key, exc)
            return default

    def get(self, key: str, default: Any = None) -> Any:
        """The value cached at key (str), or ``default`` (None) on a miss;
        pass :data:`pyredcache.NO_VALUE` to tell a miss from a cached None.
        A stored value the serializer cannot decode is a miss (logged once).
        Raises ConnectionError when Redis cannot be reached (unless
        ``CACHE_IGNORE_ERRORS``: then a miss)."""
        state = self._state()
        full = state.prefix + key
        try:
            raw = state.client.get(full)
        except ConnectionError as exc:
            return self._guard(state, exc, default)
        return self._decode(state, full, raw, default)

    def has(self, key: str) -> bool:
        """Whether key exists (EXISTS).  ConnectionError as :meth:`get`
        (False with ``CACHE_IGNORE_ERRORS``)."""
        state = self._state()
        try:
            return state.client.exists(state.prefix + key) == 1
        except ConnectionError as exc:
            return self._guard(state, exc, False)

    def set(self, key: str, value: Any, timeout: Any = None) -> bool:
        """Store value at key for ``timeout`` seconds (int, float or
        ``timedelta``; None: ``CACHE_DEFAULT_TIMEOUT``; 0: no expiry).
        Returns True when stored.  Raises SerializationError naming the
        type when the value cannot be encoded (nothing is written),
        ValueError/TypeError for a bad timeout, ConnectionError as
        :meth:`get` (False with ``CACHE_IGNORE_ERRORS``)."""
        state = self._state()
        command = set_command(state.prefix + key, state.dumps(value), state.expiry(timeout))
        try:
            return state.client.execute_command(*command) == b"OK"
        except ConnectionError as exc:
            return self._guard(state, exc, False)

    def add(self, key: str, value: Any, timeout: Any = None) -> bool:
        """Store value at key only if key does not exist (one ``SET ... NX``:
        atomic, with its expiry); True when stored.  Timeout and errors as
        :meth:`set`."""
        state = self._state()
        command = set_command(state.prefix + key, state.dumps(value),
                              state.expiry(timeout)) + ("NX",)
        try:
            return state.client.execute_command(*command) == b"OK"
        except ConnectionError as exc:
            return self._guard(state, exc, False)

    def delete(self, key: str) -> bool:
        """Delete key; True when it existed.  ConnectionError as :meth:`get`
        (False with ``CACHE_IGNORE_ERRORS``)."""
        state = self._state()
        try:
            return state.client.delete(state.prefix + key) == 1
        except ConnectionError as exc:
            return self._guard(state, exc, False)

    def delete_many(self, *keys: str) -> list[str]:
        """Delete keys in one round trip (DEL); returns the keys, all of
        which are gone (Flask-Caching's "deleted keys").  ConnectionError as
        :meth:`get` (``[]`` with ``CACHE_IGNORE_ERRORS``)."""
        if not keys:
            return []
        state = self._state()
        try:
            state.client.delete(*[state.prefix + k for k in keys])
        except ConnectionError as exc:
            return self._guard(state, exc, [])
        return list(keys)

    def unlink(self, *keys: str) -> list[str]:
        """Flask-Caching's ``unlink``: :meth:`delete_many` with UNLINK (Redis
        frees the values in the background)."""
        if not keys:
            return []
        state = self._state()
        try:
            _unlink(state.client, [state.prefix + k for k in keys])
        except ConnectionError as exc:
            return self._guard(state, exc, [])
        return list(keys)

    def get_many(self, *keys: str) -> list:
        """The values of keys in order, None for each miss: one round trip
        (MGET).  ConnectionError as :meth:`get` (all misses with
        ``CACHE_IGNORE_ERRORS``)."""
        if not keys:
            return []
        state = self._state()
        full = [state.prefix + k for k in keys]
        try:
            raws = state.client.mget(full)
        except ConnectionError as exc:
            return self._guard(state, exc, [None] * len(keys))
        return [self._decode(state, k, raw, None) for k, raw in zip(full, raws)]

    def get_dict(self, *keys: str) -> dict[str, Any]:
        """``{key: value or None}`` for keys, one round trip (MGET)."""
        return dict(zip(keys, self.get_many(*keys)))

    def set_many(self, mapping: Mapping[str, Any], timeout: Any = None) -> list[str]:
        """Store every key/value of mapping for ``timeout`` seconds (as
        :meth:`set`), in one round trip (a pipeline of SETs).  Returns the
        keys stored.  Every value is encoded first: one that cannot be
        raises SerializationError and nothing is written.  ConnectionError
        as :meth:`get` (``[]`` with ``CACHE_IGNORE_ERRORS``)."""
        if not isinstance(mapping, Mapping):
            raise TypeError("mapping must be a mapping, not %s" % type(mapping).__name__)
        if not mapping:
            return []
        state = self._state()
        ex = state.expiry(timeout)
        keys = list(mapping)
        commands = [set_command(state.prefix + k, state.dumps(mapping[k]), ex) for k in keys]
        try:
            replies = state.client.pipeline_execute(commands)
        except ConnectionError as exc:
            return self._guard(state, exc, [])
        return [k for k, r in zip(keys, replies) if r == b"OK"]

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Add delta (int) to the integer at key, atomically (INCRBY; a
        missing key counts as 0, and gets no expiry); returns the new value.
        Raises :class:`~pyredcache.exceptions.ResponseError` when the value
        at key is not an integer, ConnectionError as :meth:`get` (None with
        ``CACHE_IGNORE_ERRORS``)."""
        state = self._state()
        try:
            return int(state.client.execute_command("INCRBY", state.prefix + key, int(delta)))
        except ConnectionError as exc:
            return self._guard(state, exc, None)

    def dec(self, key: str, delta: int = 1) -> int | None:
        """Subtract delta from the integer at key (DECRBY); see :meth:`inc`."""
        state = self._state()
        try:
            return int(state.client.execute_command("DECRBY", state.prefix + key, int(delta)))
        except ConnectionError as exc:
            return self._guard(state, exc, None)

    def clear(self) -> bool:
        """Delete this app's keys: every key that starts with
        ``CACHE_KEY_PREFIX`` (SCAN MATCH ``<prefix>*`` with COUNT 1000,
        then UNLINK page by page: about one round trip per 1000 keys of the
        whole database, since SCAN walks all of it).  Other apps' keys, and
        anything else in the database, are left alone.  Only with an empty
        prefix does it run FLUSHDB, which empties the whole database (as
        Flask-Caching's RedisCache does): never give an empty prefix on a
        database that others share.  Returns True.  ConnectionError as
        :meth:`get` (False with ``CACHE_IGNORE_ERRORS``)."""
        state = self._state()
        try:
            if not state.prefix:
                return bool(state.client.flushdb())
            _drop_matching(state.client, _glob_escape(state.prefix_b) + b"*")
        except ConnectionError as exc:
            return self._guard(state, exc, False)
        return True

    # -- regions -----------------------------------------------------------------------

    def region(self, name: str | None = None, timeout: float | None = None,
               update_resets_timeout: bool = True, serializer: Any = None, *,
               invalidate_on: Iterable[Any] = ()) -> Region:
        """The current app's cache region called name (a pyredcache
        :class:`~pyredcache.Region`: a mapping in one Redis hash, with
        sub-regions; see :meth:`pyredcache.RegionCache.region` for the
        arguments: ``timeout`` in seconds > 0 or None, the parent's).  Its
        keys start with the app's ``CACHE_KEY_PREFIX`` (which must hold no
        ``{`` or ``}``); values go through the app's serializer unless
        ``serializer`` is given.

        :param invalidate_on: blinker signals, or names of blinker's named
            signals, on which the region (and its sub-regions) is invalidated
            whatever the sender (:meth:`pyredcache.Region.invalidate_on`; the
            signal keeps the region alive).  Connect them once per app, e.g.
            in the app factory inside ``app.app_context()``.

        Raises ValueError for a bad name, TypeError/ValueError for a bad
        setting, ImportError without blinker."""
        region = self._state().regions().region(name, timeout, update_resets_timeout,
                                                 serializer)
        signals_ = list(invalidate_on)
        if signals_:
            region.invalidate_on(*signals_)
        return region

    # -- the decorators ----------------------------------------------------------------

    def cached(self, timeout: Any = None, key_prefix: str | Callable[[], str] = "view/%s",
               unless: Callable[..., Any] | None = None,
               forced_update: Callable[..., Any] | None = None, *,
               response_filter: Callable[[Any], Any] | None = None,
               query_string: bool = False, cache_none: bool = False,
               make_cache_key: Callable[..., str] | None = None,
               source_check: bool | None = None) -> Callable[[F], F]:
        """Flask-Caching's view decorator: cache a view's response, keyed
        on the request path (put it under ``@app.route``)::

            @app.route('/')
            @cache.cached(timeout=50)
            def index():
                return render_template('index.html')

        :param timeout: seconds the response lives (int, float or
            ``timedelta``); None: ``CACHE_DEFAULT_TIMEOUT``; 0: no expiry.
            Read from the wrapper's ``cache_timeout`` attribute at each
            store, so it may be changed after decoration.
        :param key_prefix: the key (str): ``'%s'`` in it is replaced with
            ``request.path``; default ``'view/%s'``.  Or a callable of no
            arguments returning the key.  The key is prefixed with
            ``CACHE_KEY_PREFIX`` in Redis.
        :param unless: a callable; when it returns True (``is True``, as in
            Flask-Caching) the cache is bypassed entirely.  Called with
            ``(f, *args, **kwargs)`` when it takes positional arguments, else
            with none.
        :param forced_update: a callable; when it returns True the view runs
            and its result overwrites the entry.  Called with the view's
            ``(*args, **kwargs)`` when it takes positional arguments.
        :param response_filter: keyword only (as all below): a callable given
            the view's result; a false return keeps it out of the cache
            (e.g. ``lambda r: r.status_code == 200``... on a response).
        :param query_string: key on the query string as well (its sorted
            name/value pairs, hashed: ``?a=1&b=2`` and ``?b=2&a=1`` share an
            entry); without it the query string is ignored.
        :param cache_none: cache a None result (by default None is never
            stored, and a stored None is a miss).
        :param make_cache_key: a callable given the view's ``(*args,
            **kwargs)`` returning the key (str), instead of key_prefix's.
        :param source_check: key on the view's source too, so an edited view
            does not serve its old cached results; None:
            ``CACHE_SOURCE_CHECK``.

        A Flask response (or a ``(response, status)`` tuple) is stored as its
        body, status and headers and rebuilt with the app's
        ``response_class`` on a hit; a streamed or passed-through response
        (``send_file``) is not stored.  Anything else is stored with the
        serializer.  A hit is one round trip (one GET).  An exception of the
        view propagates and nothing is stored.  A cache that fails (Redis
        unreachable, a value that cannot be encoded) does not fail the
        view: it is logged and the view served uncached, except in debug
        mode, where it raises (unless ``CACHE_IGNORE_ERRORS`` and the error
        is a connection error), as in Flask-Caching.  The wrapper has
        Flask-Caching's attributes ``uncached`` (the view),
        ``cache_timeout`` and ``make_cache_key(*args, path=None,
        query_args=None, **kwargs)``, which gives the key of a path (and a
        query string: str, mapping or pairs) outside a request.  Decorating
        a coroutine function raises TypeError; a bad timeout raises
        TypeError/ValueError.
        """
        _check_timeout(timeout)
        if not (isinstance(key_prefix, str) or callable(key_prefix)):
            raise TypeError("key_prefix must be str or a callable, not %s"
                            % type(key_prefix).__name__)
        unless_args = _wants_args(unless)
        forced_args = _wants_args(forced_update)
        owner = self

        def decorator(f: F) -> F:
            _check_decoratable(f, "cached")
            source = [_source_hash(f)] if source_check else [None]
            pairs_builder = (make_key_builder(_pairs_key, "", False, namespace="",
                                              core=_compat.core) if query_string else None)

            def base_key(path: str | None, query_args: Any, view_kwargs: dict,
                         state: _AppState | None) -> str:
                if callable(key_prefix):
                    key = key_prefix()
                elif "%s" in key_prefix:
                    if path is None:
                        if flask.has_request_context():
                            path = flask.request.path
                        else:
                            path = flask.url_for(f.__name__, **view_kwargs)
                    key = key_prefix % path
                else:
                    key = key_prefix
                if query_string:
                    assert pairs_builder is not None
                    if query_args is None:
                        pairs = flask.request.args.items(multi=True)
                    else:
                        pairs = _query_pairs(query_args)
                    key += pairs_builder((sorted(pairs),), {})[1:].decode("ascii")
                check = source_check
                if check is None:
                    check = (state or owner._state()).source_check
                if check:
                    if source[0] is None:
                        source[0] = _source_hash(f)
                    key += source[0]
                return key

            def default_make_cache_key(*args: Any, path: str | None = None,
                                       query_args: Any = None, **kwargs: Any) -> str:
                return base_key(path, query_args, kwargs, None)

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                app = _current_app()
                try:
                    state = app.extensions[EXTENSION_KEY][owner]
                except KeyError:
                    state = owner._state()  # raises, naming the app
                if unless is not None and (
                        unless(f, *args, **kwargs) if unless_args else unless()) is True:
                    return f(*args, **kwargs)
                key = None
                try:
                    if make_cache_key is not None:
                        key = make_cache_key(*args, **kwargs)
                    elif wrapper.make_cache_key is default_make_cache_key:  # type: ignore[attr-defined]
                        key = base_key(None, None, kwargs, state)
                    else:  # replaced by the user, as Flask-Caching allows
                        key = wrapper.make_cache_key(*args, **kwargs)  # type: ignore[attr-defined]
                    full = state.prefix + key
                    forced = forced_update is not None and (
                        forced_update(*args, **kwargs) if forced_args
                        else forced_update()) is True
                    if not forced:
                        raw = state.client.get(full)
                        if raw is not None:
                            try:
                                rv = _unwrap(state.loads(raw))
                            except SerializationError as exc:
                                state.report(full, exc)
                                rv = _UNUSABLE
                            if rv is not _UNUSABLE and (rv is not None or cache_none):
                                if cache_hit.receivers:
                                    cache_hit.send(owner, key=key, kind="view")
                                return rv
                except Exception as exc:
                    _cache_error(state, "cached view %s" % f.__name__, exc)
                    return f(*args, **kwargs)
                if cache_miss.receivers:
                    cache_miss.send(owner, key=key, kind="view")
                rv = f(*args, **kwargs)
                if inspect.isgenerator(rv):
                    rv = _join(rv)
                if (rv is None and not cache_none) or (
                        response_filter is not None and not response_filter(rv)):
                    return rv
                try:
                    entry = _envelope(rv)
                    if entry is not None:
                        ex = state.expiry(wrapper.cache_timeout)  # type: ignore[attr-defined]
                        state.client.execute_command(
                            *set_command(full, state.dumps(entry), ex))
                except Exception as exc:
                    _cache_error(state, "cached view %s" % f.__name__, exc)
                return rv

            wrapper.uncached = f  # type: ignore[attr-defined]
            wrapper.cache_timeout = timeout  # type: ignore[attr-defined]
            wrapper.make_cache_key = default_make_cache_key  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    def delete_cached(self, f: Callable[..., Any], path: str | None = None,
                      query_args: Any = None, **kwargs: Any) -> bool:
        """Delete the entry of a ``@cached`` view for ``path`` (str; None:
        the current request's, or ``url_for`` of the view with kwargs) and,
        with ``query_string=True``, ``query_args`` (a query string, mapping or
        pairs).  True when it existed."""
        make = getattr(f, "make_cache_key", None)
        if make is None or getattr(f, "uncached", None) is None:
            raise TypeError("%r is not a function decorated by cache.cached()" % (f,))
        return self.delete(make(path=path, query_args=query_args, **kwargs))

    def memoize(self, timeout: Any = None, make_name: Callable[[str], str] | None = None,
                unless: Callable[..., Any] | None = None,
                forced_update: Callable[..., Any] | None = None, *,
                response_filter: Callable[[Any], Any] | None = None,
                cache_none: bool = False, source_check: bool | None = None,
                args_to_ignore: Iterable[str] | None = None) -> Callable[[F], F]:
        """Flask-Caching's ``memoize``: cache a function's results keyed on
        its arguments::

            @cache.memoize(300)
            def user_name(user_id):
                ...

        The key is ``CACHE_KEY_PREFIX + module.qualname`` (or
        ``make_name(module.qualname)``) + ``':'`` + the digest of the
        arguments bound to the signature (pyredcache's key builder:
        ``f(1, 2)`` and ``f(1, b=2)`` are one entry; the digest is of a
        canonical encoding, never ``repr()``, so it is the same in every
        process).  Arguments the encoding does not know raise TypeError
        (give their class a ``__cache_key__()`` method).  A hit is one round
        trip: one GET, no version keys.

        A first parameter named ``self`` or ``cls`` keys the instance apart:
        ``cls`` by the class's name, ``self`` by its ``__cache_key__()``,
        ``__caching_id__()`` (Flask-Caching's hook) or, when its class
        defines one, ``repr()``; an object with none of them raises
        TypeError (the default repr holds a memory address).  List ``'self'``
        in ``args_to_ignore`` to share entries between instances.

        :param timeout: seconds (int, float or ``timedelta``); None:
            ``CACHE_DEFAULT_TIMEOUT``; 0: no expiry; read from the wrapper's
            ``cache_timeout`` at each store.
        :param make_name: a callable given the function's name
            (``module.qualname``) returning the name its keys go under.
        :param unless: bypass the cache when it returns True; called with
            ``(f, *args, **kwargs)`` when it takes positional arguments.
        :param forced_update: recompute and overwrite when it returns True;
            called with ``(*args, **kwargs)`` when it takes positional
            arguments.
        :param response_filter: keyword only (as all below): a false return
            for a result keeps it out of the cache.
        :param cache_none: store None results (by default a None result is
            not stored, and a stored None is a miss).
        :param source_check: key on the function's source too; None:
            ``CACHE_SOURCE_CHECK``.
        :param args_to_ignore: names of arguments left out of the key (their
            value never changes it); a name that is not a parameter raises
            ValueError, unless the function takes ``**kwargs`` (then that
            keyword is left out).

        A cache that fails does not fail the call (logged, computed
        uncached) except in debug mode, as for :meth:`cached`.  The wrapper
        has ``uncached``, ``cache_timeout``, ``make_cache_key(f, *args,
        **kwargs)`` (the key without ``CACHE_KEY_PREFIX``, str, as
        :meth:`get` takes it) and ``delete_memoized()``.  Decorating a
        coroutine function raises TypeError.
        """
        _check_timeout(timeout)
        unless_args = _wants_args(unless)
        forced_args = _wants_args(forced_update)
        owner = self

        def decorator(f: F) -> F:
            _check_decoratable(f, "memoize")
            memo = _Memo(owner, f, make_name, source_check, args_to_ignore)
            key_of = memo.key
            name = memo.name

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                app = _current_app()
                try:
                    state = app.extensions[EXTENSION_KEY][owner]
                except KeyError:
                    state = owner._state()  # raises, naming the app
                if unless is not None and (
                        unless(f, *args, **kwargs) if unless_args else unless()) is True:
                    return f(*args, **kwargs)
                try:
                    key = key_of(state, args, kwargs)
                    if forced_update is None or (
                            forced_update(*args, **kwargs) if forced_args
                            else forced_update()) is not True:
                        raw = state.client.get(key)
                        if raw is not None:
                            try:
                                rv = state.loads(raw)
                            except SerializationError as exc:
                                state.report(key, exc)
                            else:
                                if rv is not None or cache_none:
                                    if cache_hit.receivers:
                                        cache_hit.send(owner, key=_short(state, key),
                                                       kind="memoize")
                                    return rv
                except Exception as exc:
                    _cache_error(state, "memoized %s" % name, exc)
                    return f(*args, **kwargs)
                if cache_miss.receivers:
                    cache_miss.send(owner, key=_short(state, key), kind="memoize")
                rv = f(*args, **kwargs)
                if inspect.isgenerator(rv):
                    rv = _join(rv)
                if (rv is None and not cache_none) or (
                        response_filter is not None and not response_filter(rv)):
                    return rv
                try:
                    ex = state.expiry(wrapper.cache_timeout)  # type: ignore[attr-defined]
                    state.client.execute_command(*set_command(key, state.dumps(rv), ex))
                except Exception as exc:
                    _cache_error(state, "memoized %s" % name, exc)
                return rv

            def make_cache_key(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
                return _short(owner._state(), key_of(owner._state(), args, kwargs))

            wrapper.uncached = f  # type: ignore[attr-defined]
            wrapper.cache_timeout = timeout  # type: ignore[attr-defined]
            wrapper.make_cache_key = make_cache_key  # type: ignore[attr-defined]
            wrapper.delete_memoized = lambda: owner.delete_memoized(wrapper)  # type: ignore[attr-defined]
            wrapper.__pyredcache_memo__ = memo  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    def _memo_of(self, f: Any) -> _Memo:
        memo = getattr(f, "__pyredcache_memo__", None)
        if not isinstance(memo, _Memo):
            raise TypeError("%r is not a function decorated by cache.memoize() (deleting by "
                            "name is not supported: pass the function)" % (f,))
        if memo.owner is not self:
            raise TypeError("%r is memoized by another extension object" % (f,))
        return memo

    def delete_memoized(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """Delete cached results of a memoized function; returns how many
        entries were deleted (Flask-Caching returns None).

        * ``delete_memoized(f, *args, **kwargs)``: the entry of that call
          (arguments bound as for the call, so any spelling of it): one DEL.
          For a method reached through an instance (``obj.method``) the
          instance is supplied; through the class, pass it first.
        * ``delete_memoized(f)``: every entry of f (of any arguments, written
          by any process) in the current app's cache; ``delete_memoized(obj.
          method)``: those of that instance only.  The entries themselves go
          (there are no version keys): SCAN MATCH on f's key prefix, COUNT
          1000, then UNLINK page by page.  Its cost is a walk of the whole
          database: about one round trip per 1000 keys in it (SCAN visits
          every key to match the pattern), whatever f's share, plus one
          UNLINK per 1000 entries found; hits and misses pay nothing for it.
          Delete one call's entry when you can.

        Raises TypeError when f is not memoized by this extension,
        ConnectionError when Redis cannot be reached (0 with
        ``CACHE_IGNORE_ERRORS``).
        """
        memo = self._memo_of(f)
        state = self._state()
        bound = getattr(f, "__self__", None)
        try:
            if not args and not kwargs:
                head = state.heads.get(memo) or memo.heads(state)
                pattern = head[0]
                if memo.keys_instance and bound is not None:
                    pattern += memo.instance_part((bound,), {})
                return _drop_matching(state.client, _glob_escape(pattern) + b":*")
            if memo.keys_instance and bound is not None and not (args and args[0] is bound):
                args = (bound, *args)
            return int(state.client.delete(memo.key(state, args, kwargs)))
        except ConnectionError as exc:
            return self._guard(state, exc, 0)

    def delete_memoized_verhash(self, f: Callable[..., Any], *args: Any) -> int:
        """Flask-Caching's ``delete_memoized_verhash``: forget every cached
        result of f.  Flask-Caching deletes f's version hash (orphaning its
        entries until they expire); pyredcache has no version keys and
        deletes the entries themselves: :meth:`delete_memoized` ``(f)``,
        with its cost.  Returns how many entries were deleted."""
        self._memo_of(f)
        return self.delete_memoized(f)


def _short(state: _AppState, key: bytes) -> str:
    """A Redis key of state as :meth:`RedCache.get` takes it (str)."""
    return key[len(state.prefix_b):].decode("utf-8", "replace")


class Cache(RedCache):
    """Flask-Caching's ``Cache``, constructor and all:
    ``Cache(app=None, with_jinja2_ext=True, config=None)``; see
    :class:`RedCache`.  ``from pyredcache.flask import Cache`` in place of
    ``from flask_caching import Cache``."""

    def __init__(self, app: flask.Flask | None = None, with_jinja2_ext: bool = True,
                 config: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__(app, with_jinja2_ext=with_jinja2_ext, config=config, **options)


# -- Jinja2 -----------------------------------------------------------------------------

#: The format of fragment keys (Flask-Caching's).
TEMPLATE_FRAGMENT_KEY_TEMPLATE = "_template_fragment_cache_%s%s"


def make_template_fragment_key(fragment_name: str, vary_on: Iterable[Any] | None = None) -> str:
    """The key (str, without ``CACHE_KEY_PREFIX``) of the ``{% cache %}``
    fragment called fragment_name, varying on the values vary_on (joined
    with ``_`` as str), Flask-Caching's: delete it with
    ``cache.delete(make_template_fragment_key('name', vary_on=[...]))``."""
    parts = [str(v) for v in vary_on or ()]
    if parts:
        fragment_name = "%s_" % fragment_name
    return TEMPLATE_FRAGMENT_KEY_TEMPLATE % (fragment_name, "_".join(parts))


class CacheExtension(Extension):
    """The Jinja2 ``{% cache %}`` tag (Flask-Caching's), added to each app's
    environment by :meth:`RedCache.init_app`::

        {% cache timeout [, key [, vary_on...]] %} ... {% endcache %}

    ``timeout`` in seconds (None: ``CACHE_DEFAULT_TIMEOUT``; 0: no expiry;
    ``'del'``: delete the entry and render the block); ``key`` names the
    fragment (default: the template's name and the tag's line), the further
    values vary it (see :func:`make_template_fragment_key`).  The rendered
    block is stored as text and returned as ``Markup`` (it was escaped when
    rendered).  A cache that fails renders the block, as the decorators do.
    """

    tags = {"cache"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        args = [parser.parse_expression()]
        if parser.stream.skip_if("comma"):
            args.append(parser.parse_expression())
        else:
            args.append(nodes.Const("%s%s" % (parser.filename, lineno)))
        vary_on = []
        while parser.stream.skip_if("comma"):
            vary_on.append(parser.parse_expression())
        args.append(nodes.List(vary_on) if vary_on else nodes.Const([]))
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_cache", args), [], [], body).set_lineno(lineno)

    def _cache(self, timeout: Any, fragment_name: str, vary_on: list,
               caller: Callable[[], str]) -> Markup:
        found = getattr(self.environment, "pyredcache_fragment_cache", None)
        if found is None:
            raise RuntimeError("the {% cache %} tag needs pyredcache.flask: call "
                               "RedCache.init_app(app) on this environment's app")
        owner, state = found
        key = make_template_fragment_key(fragment_name, vary_on)
        full = state.prefix + key
        try:
            if timeout == "del":
                state.client.delete(full)
                return Markup(caller())
            if isinstance(timeout, str):
                timeout = int(timeout)
            raw = state.client.get(full)
            if raw is not None:
                try:
                    text = state.loads(raw)
                except SerializationError as exc:
                    state.report(full, exc)
                else:
                    if isinstance(text, str):
                        if cache_hit.receivers:
                            cache_hit.send(owner, key=key, kind="fragment")
                        return Markup(text)
        except Exception as exc:
            _cache_error(state, "template fragment %s" % key, exc)
            return Markup(caller())
        if cache_miss.receivers:
            cache_miss.send(owner, key=key, kind="fragment")
        text = str(caller())
        try:
            state.client.execute_command(*set_command(full, state.dumps(text),
                                                      state.expiry(timeout)))
        except Exception as exc:
            _cache_error(state, "template fragment %s" % key, exc)
        return Markup(text)
