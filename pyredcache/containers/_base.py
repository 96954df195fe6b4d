"""What the Redis containers share: pottery's JSON encoding, the command
client, temporary keys, error translation and the Lua helpers."""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
import warnings
import weakref
from typing import Any, Iterable, NoReturn, Sequence

from ..clients.adapters import as_client, server_identity
from ..clients.scripts import Script
from ..exceptions import (
    InefficientAccessWarning,
    KeyExistsError,
    ResponseError,
    SerializationError,
    WrongTypeError,
)

logger = logging.getLogger("pyredcache.containers")

#: Prefix of the random keys of containers made without ``key=``: pottery's,
#: so either library recognises (and cleans up) the other's temporary keys.
TEMPORARY_PREFIX = "pottery:"

#: Commands carry at most this many values each (a big ``update`` or
#: ``extend`` is split into several commands inside one MULTI/EXEC, one
#: round trip; a Lua script unpacks its arguments in slices this long).
CHUNK = 4000

#: Stand-in value for list elements being deleted by index (Redis deletes
#: list elements by value): a NUL byte never occurs in JSON text, so no
#: stored element can equal it.
HOLE = b"\x00pyredcache:hole\x00"

# -- JSON, byte for byte as pottery writes it: json.dumps(value, sort_keys=True)

_encode_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_dumps = json.JSONEncoder(sort_keys=True, allow_nan=False).encode
_decoder = json.JSONDecoder()
_loads = _decoder.decode
# The decoder's C scanner, without decode()'s two regex passes over
# surrounding whitespace (which json.dumps never writes).
_scan = _decoder.scan_once
_int_repr = int.__repr__
_float_repr = float.__repr__


def encode(value: Any) -> str:
    """The JSON text of value, as pottery stores it
    (``json.dumps(value, sort_keys=True)``: ASCII, ``", "`` and ``": "``
    separators, sorted object keys, tuples as arrays).

    Raises TypeError, before anything is written, for a value JSON cannot
    encode: other types, NaN and infinities (not JSON: other languages
    could not read them), circular structures.
    """
    t = type(value)
    try:
        if t is str:
            return _encode_str(value)
        if t is int:
            return _int_repr(value)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if t is float and math.isfinite(value):
            return _float_repr(value)
        return _dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError("%s cannot be stored in a Redis container: %s (elements are "
                        "stored as JSON: str, int, finite float, bool, None, and "
                        "lists, tuples and str-keyed dicts of those)"
                        % (_short_repr(value), exc)) from None


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def decode(raw: bytes | str) -> Any:
    """The value of stored JSON text.  Raises SerializationError for bytes
    that are not JSON (written there by something else)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        try:
            value, end = _scan(text, 0)
            if end == len(text):
                return value
        except StopIteration:
            pass
        return _loads(text)  # whitespace around the value, or not JSON: raises
    except ValueError:
        raise SerializationError(
            "a Redis container holds bytes that are not JSON: %s" % _short_repr(raw)
        ) from None


def freeze(value: Any) -> Any:
    """JSON arrays as tuples (recursively), so that decoded dict keys and
    set elements are hashable: ``d[(1, 2)] = x`` reads back as key
    ``(1, 2)``."""
    if type(value) is list:
        return tuple(freeze(v) for v in value)
    return value


def decode_hashable(raw: bytes | str) -> Any:
    """decode(), with arrays as tuples (dict keys, set elements)."""
    value = decode(raw)
    if type(value) is list:
        return freeze(value)
    return value


def warn_inefficient(container: Any, what: str, stacklevel: int = 3) -> None:
    """Warn (InefficientAccessWarning) that ``what`` reads the whole
    container over the network."""
    warnings.warn("%s %s reads the whole container from Redis (O(n))"
                  % (type(container).__name__, what),
                  InefficientAccessWarning, stacklevel=stacklevel)


def _drop_temporary(client: Any, key: str, pid: int) -> None:
    """Finalizer of a temporary key: UNLINK it (only in the process that
    made it; a forked child leaves its parent's keys alone)."""
    if os.getpid() != pid:
        return
    try:
        client.execute_command("UNLINK", key)
    except Exception:  # server gone, interpreter shutting down: nothing to do
        logger.debug("could not delete temporary key %r", key, exc_info=True)


# -- Lua ---------------------------------------------------------------------

#: Lua: push ARGV-like table t onto key with cmd (RPUSH, LPUSH, SADD, HSET),
#: CHUNK values at a time (Lua's unpack has a small stack).
LUA_PUSH = """
local function push(cmd, key, t, first, last)
  first = first or 1
  last = last or #t
  local i = first
  while i <= last do
    local j = math.min(i + %d - 1, last)
    redis.call(cmd, key, unpack(t, i, j))
    i = j + 1
  end
end
""" % CHUNK

#: Lua: fail with WRONGTYPE unless KEYS[1] holds `expected` or nothing.
LUA_TYPECHECK = """
local function typecheck(key, expected)
  local t = redis.call('TYPE', key)
  if type(t) == 'table' then t = t['ok'] end
  if t ~= 'none' and t ~= expected then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  return nil
end
"""


class Container:
    """Base of the Redis-backed containers: the key, the client, and the
    helpers every container uses.  Not instantiated directly."""

    #: The Redis type the container keeps its data in.
    _REDIS_TYPE = ""

    # KEYS[1]: the container's key.  ARGV[1]: the Redis type it must hold.
    # Deletes the key; returns 1 when it existed, 0 when not; an error reply
    # (nothing deleted) when it holds another type.
    _CLEAR = Script(LUA_TYPECHECK + """
local bad = typecheck(KEYS[1], ARGV[1])
if bad then return bad end
return redis.call('DEL', KEYS[1])
""")

    # KEYS[1]: the container's key.  ARGV[1]: the write command (HSET, SADD,
    # RPUSH); ARGV[2..]: its arguments.  Writes them only if the key does not
    # exist; returns 1 when written, 0 when the key existed (nothing written).
    _CREATE = Script(LUA_PUSH + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
push(ARGV[1], KEYS[1], ARGV, 2, #ARGV)
return 1
""")

    def __init__(self, *, redis: Any = None, key: str = "") -> None:
        if not isinstance(key, str):
            raise TypeError("key must be a str, not %s" % type(key).__name__)
        temporary = not key
        if temporary:
            key = TEMPORARY_PREFIX + str(uuid.uuid4())
        client = as_client(redis, key)
        self._client = client
        self._execute = client.execute_command
        self._pipeline = client.pipeline_execute
        self._redis = redis if redis is not None else client
        self._key = key
        self._temporary = temporary
        if temporary:
            weakref.finalize(self, _drop_temporary, client, key, os.getpid())
            logger.debug("%s made temporary key %r", type(self).__name__, key)

    # -- what pottery exposes ------------------------------------------------------

    @property
    def redis(self) -> Any:
        """The client this container was given (or the default Client)."""
        return self._redis

    @property
    def key(self) -> str:
        """The Redis key holding the container's data."""
        return self._key

    # -- commands ------------------------------------------------------------------

    def _raise(self, exc: ResponseError) -> NoReturn:
        """Raise the error a failed command means for this container: a
        WrongTypeError naming the key and both types for WRONGTYPE, the
        ResponseError itself otherwise."""
        if "WRONGTYPE" in str(exc):
            try:
                actual = self._execute("TYPE", self._key)
                actual = actual.decode() if isinstance(actual, bytes) else str(actual)
            except Exception:
                actual = "value of another type"
            raise WrongTypeError(self._key, actual, self._REDIS_TYPE,
                                 type(self).__name__) from None
        raise exc

    def _run(self, *args: Any) -> Any:
        try:
            return self._execute(*args)
        except ResponseError as exc:
            self._raise(exc)

    def _run_pipeline(self, commands: Sequence[Sequence[Any]]) -> list:
        """Run commands in one round trip; raise the first error reply
        (looking inside an EXEC reply too)."""
        replies = self._pipeline(commands)
        for reply in replies:
            if isinstance(reply, ResponseError):
                self._raise(reply)
        last = replies[-1] if replies else None
        if type(last) is list and commands and str(commands[-1][0]).upper() == "EXEC":
            for reply in last:
                if isinstance(reply, ResponseError):
                    self._raise(reply)
        return replies

    def _transaction(self, *commands: Sequence[Any]) -> list:
        """Run commands as one MULTI/EXEC transaction in one round trip;
        return the EXEC reply (one result per command)."""
        replies = self._run_pipeline([("MULTI",), *commands, ("EXEC",)])
        return replies[-1]

    def _eval(self, script: Script, *args: Any) -> Any:
        try:
            return script(self._client, (self._key,), args)
        except ResponseError as exc:
            self._raise(exc)

    def _create(self, command: str, args: Sequence[Any]) -> None:
        """Write initial data (command's arguments after the key) to a key
        that must not exist yet; raise KeyExistsError if it does."""
        if not args:
            return
        if not self._eval(self._CREATE, command, *args):
            raise KeyExistsError(self._redis, self._key)

    def _write_chunked(self, command: str, args: Sequence[Any], step: int = CHUNK) -> None:
        """One write command over many values in one round trip, split into
        commands of at most CHUNK values inside one MULTI/EXEC."""
        if len(args) <= step:
            self._run(command, self._key, *args)
        else:
            self._transaction(*[(command, self._key, *args[i:i + step])
                                for i in range(0, len(args), step)])

    def clear(self) -> None:
        """Remove every element (delete the key).  O(1) round trips.
        Raises WrongTypeError (nothing deleted) if the key holds another
        Redis type."""
        self._eval(self._CLEAR, self._REDIS_TYPE)

    def _same_server(self, other: Any) -> bool:
        return (isinstance(other, Container)
                and server_identity(self._client) == server_identity(other._client))

    def _same_key(self, other: Any) -> bool:
        return self._same_server(other) and self._key == other._key

    __hash__ = None  # type: ignore[assignment]  # mutable, as the built-ins


def encode_all(values: Iterable[Any]) -> list[str]:
    """Every value's JSON text; TypeError (nothing written) on the first
    value JSON cannot encode."""
    return [encode(v) for v in values]
