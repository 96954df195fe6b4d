"""The exceptions pyredcache raises.

One hierarchy, rooted at :class:`PyRedCacheError`.  The C core
(``pyredcache._core``) raises these same classes, so ``except`` clauses work
whichever implementation is in use.
"""

from __future__ import annotations

__all__ = [
    "PyRedCacheError",
    "ConnectionError",
    "TimeoutError",
    "CircuitOpenError",
    "ProtocolError",
    "ReplyTypeError",
    "ResponseError",
    "SerializationError",
    "InvalidSignature",
    "PromiseError",
    "LockError",
    "LockTimeout",
    "QuorumNotAchieved",
    "ReleaseUnlockedLock",
    "ExtendUnlockedLock",
    "TooManyExtensions",
    "KeyExistsError",
    "WrongTypeError",
    "InefficientAccessWarning",
    "CacheConfigurationError",
]


class PyRedCacheError(Exception):
    """Base class of every error pyredcache raises on purpose."""


class ConnectionError(PyRedCacheError):  # noqa: A001 - the name Redis users know
    """The server could not be reached, refused the connection, or dropped it.

    Raised when connecting fails (refused, unreachable, or no answer within
    ``socket_connect_timeout`` seconds, 1.0 by default) and when an
    established socket breaks while a command is in flight.  The
    connection is closed; the next command on it connects again.
    """


class TimeoutError(ConnectionError):  # noqa: A001
    """No reply arrived within ``socket_timeout`` seconds (or, in a fan-out
    over several servers, within ``poller_timeout`` seconds); both are 1.0
    by default, so a server that is stopped, or accepts and never answers,
    raises this instead of hanging the call.

    The connection is closed, since the late reply would otherwise be read
    as the answer to the next command.  It is a :class:`ConnectionError`:
    the server could not be used, and ``except ConnectionError`` handles
    a dead server and a silent one alike.
    """


class CircuitOpenError(ConnectionError):
    """The server failed too many times in a row and its circuit breaker is
    open: the call was refused at once, without dialling (see
    :mod:`pyredcache.clients.breaker`).  It is a :class:`ConnectionError`,
    so ``ignore_errors=True`` turns it into a miss like any other."""


class ProtocolError(ConnectionError):
    """The server sent bytes that are not valid RESP; the connection is
    closed.  (Its subclass :class:`ReplyTypeError`: valid RESP, but not a
    reply the command can have.)"""


#: How ReplyTypeError names the type of a reply.
_REPLY_KINDS = {int: "an integer", list: "an array", bytes: "a bulk string",
                type(None): "nil", str: "a str"}


class ReplyTypeError(ProtocolError):
    """The server (or a proxy in front of it) answered a command with a
    reply of a type the command never has: an integer or an array where
    GET returns a bulk string or nil, something else than an array of
    them (of the right length) for MGET.

    The message names the command, the key (the first, for MGET) and the
    type received; ``command``, ``key`` and ``received`` (the type's name)
    hold them.  It is a :class:`ProtocolError`, so a
    :class:`ConnectionError`: the server cannot be used as a cache, and
    ``except ConnectionError`` treats it as one that is down.  The reply
    was well-formed RESP, so the connection is kept.  A subclass rather
    than ProtocolError itself because it is raised after the reply was
    read (by the cache, checking only when decoding failed, which costs
    nothing on a hit) and carries these attributes.
    """

    def __init__(self, command: str, key: object, reply: object,
                 expected: str = "a bulk string or nil") -> None:
        self.command = command
        self.key = key
        self.received = type(reply).__name__
        kind = _REPLY_KINDS.get(type(reply), "a %s" % self.received)
        if type(reply) is list:
            kind += " of length %d" % len(reply)  # type: ignore[arg-type]
        super().__init__("%s %r: the server answered with %s (%s), not %s"
                         % (command, key, kind, self.received, expected))

    @classmethod
    def after_decode_failed(cls, command: str, key: object, reply: object,
                            exc: BaseException) -> BaseException:
        """What to raise when decoding ``reply`` raised ``exc`` (a
        TypeError): this error when the reply is not bytes; an error reply
        (a ResponseError in a pipeline's slot) itself; else ``exc``, the
        serializer's own error about real bytes."""
        if type(reply) is bytes:
            return exc
        if isinstance(reply, BaseException):
            return reply
        return cls(command, key, reply)


class ResponseError(PyRedCacheError):
    """The server answered with an error reply (``-ERR ...``, ``-WRONGTYPE ...``).

    In a pipeline's results an error reply takes its slot as an instance of
    this class instead of being raised, so the other replies are kept.
    """


class SerializationError(PyRedCacheError):
    """A value could not be encoded, or stored bytes could not be decoded.

    Raised before anything is written when encoding fails; the message names
    the offending type.
    """


class InvalidSignature(SerializationError):
    """A value read through :class:`~pyredcache.serializers.SignedSerializer`
    is unsigned, truncated, or signed with another key.

    Its bytes were never decoded.  Caches treat it as a miss (and log it
    once per key).
    """


class PromiseError(PyRedCacheError, RuntimeError):
    """A :class:`~pyredcache.Promise` was resolved or rejected a second
    time.  A RuntimeError, as rc raises there.  (Reading ``value`` of a
    pending promise gives None, as in rc.)

    Also what the promises of a ``batch_mode()`` block are rejected with
    when the block raises (chained to that exception)."""


class LockError(PyRedCacheError):
    """Base class of the errors of locks (:class:`~pyredcache.lock.Lock`,
    :class:`~pyredcache.lock.Redlock`) and of :class:`~pyredcache.nextid.NextId`."""


class LockTimeout(LockError):
    """A :class:`~pyredcache.lock.Lock` was not acquired within its
    ``timeout`` (seconds).  retools' name."""


class QuorumNotAchieved(LockError, RuntimeError):
    """Fewer than ``len(masters) // 2 + 1`` masters agreed (a Redlock that
    could not be acquired in a ``with`` block, or a NextId that could not
    reserve an id).  pottery's name; a RuntimeError as there."""


class ReleaseUnlockedLock(LockError, RuntimeError):
    """``release()`` of a lock this object does not hold (never acquired,
    released already, or expired).  pottery's name; a RuntimeError, as
    ``threading.Lock`` raises."""


class ExtendUnlockedLock(LockError, RuntimeError):
    """``extend()`` of a lock this object does not hold.  pottery's name."""


class TooManyExtensions(LockError, RuntimeError):
    """``extend()`` called more than ``num_extensions`` times for one
    acquisition.  pottery's name."""


class KeyExistsError(PyRedCacheError):
    """A container (:class:`~pyredcache.RedisDict`, ``RedisSet``,
    ``RedisList``, ...) was given initial data for a Redis key that already
    exists.  Nothing was written.  pottery's name.

    ``redis`` is the client the container was given and ``key`` the Redis
    key (str), as on pottery's exception.
    """

    def __init__(self, redis: object = None, key: "str | None" = None) -> None:
        self.redis = redis
        self.key = key
        super().__init__("Redis key %r already exists; initial data is only written "
                         "to a new key" % (key,))


class WrongTypeError(ResponseError):
    """A container's Redis key holds another Redis type (a list where a
    :class:`~pyredcache.RedisDict` keeps a hash, say).  The message names
    the key, the type it holds and the type the container needs; ``key``,
    ``actual`` and ``expected`` hold them.  Nothing was changed.  It is a
    :class:`ResponseError`: the server refused the command (``WRONGTYPE``).
    """

    def __init__(self, key: str, actual: str, expected: str, container: str) -> None:
        self.key = key
        self.actual = actual
        self.expected = expected
        super().__init__("Redis key %r holds a %s, but %s keeps its data in a %s"
                         % (key, actual, container, expected))


class InefficientAccessWarning(Warning):
    """Doing an O(n) Redis operation: the whole container crosses the
    network (iterating it, ``repr``, ``to_dict()``/``to_list()``/``to_set()``,
    comparing it with another container, set algebra computed here, sorting).
    pottery's name; filter it with ``warnings.simplefilter('ignore',
    InefficientAccessWarning)`` once you know the container is small."""


class CacheConfigurationError(PyRedCacheError):
    """retools' ``CacheConfigurationError``: a cache region that was never
    added (:meth:`~pyredcache.CacheRegion.add_region`), or a region-decorated
    call made before any cache was configured
    (:meth:`~pyredcache.CacheRegion.configure`)."""

