"""RedisDict and RedisCounter: a dict and a collections.Counter kept in a
Redis hash (field and value both JSON, as pottery stores them)."""

from __future__ import annotations

import collections
import itertools
from collections.abc import ItemsView, Iterator, KeysView, Mapping, MutableMapping, ValuesView
from typing import Any, Iterable

from ..clients.scripts import Script
from ..exceptions import ResponseError
from ._base import (
    LUA_PUSH,
    Container,
    decode,
    decode_hashable,
    encode,
    warn_inefficient,
)

__all__ = ["RedisDict", "RedisCounter"]

_MISSING: Any = object()


def _pairs(arg: Any, kwargs: Mapping[str, Any]) -> Iterable[tuple[Any, Any]]:
    """The (key, value) pairs of dict.update's arguments: a mapping, an
    object with keys(), or an iterable of pairs; then the keyword
    arguments."""
    if isinstance(arg, Mapping):
        items: Iterable = arg.items()
    elif hasattr(arg, "keys"):
        items = ((k, arg[k]) for k in arg.keys())
    else:
        items = _checked_pairs(arg)
    return itertools.chain(items, kwargs.items()) if kwargs else items


def _checked_pairs(arg: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    for i, pair in enumerate(arg):
        try:
            k, v = pair
        except TypeError:
            raise TypeError("cannot convert dictionary update sequence element #%d "
                            "to a sequence" % i) from None
        except ValueError:
            raise ValueError("dictionary update sequence element #%d has length %d; "
                             "2 is required" % (i, len(pair))) from None
        yield k, v


class _ItemsView(ItemsView):
    """items(): iterating is one HGETALL; ``(k, v) in items`` one HGET."""

    _mapping: RedisDict

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._mapping._items(warn=True))

    def __contains__(self, item: object) -> bool:
        key: Any
        value: Any
        try:
            key, value = item  # type: ignore[misc]
        except (TypeError, ValueError):
            return False
        found = self._mapping._lookup(key)
        return found is not _MISSING and (found is value or found == value)


class _ValuesView(ValuesView):
    """values(): iterating is one HVALS."""

    _mapping: RedisDict

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping._values())

    def __contains__(self, value: object) -> bool:
        return any(v is value or v == value for v in self._mapping._values())


class RedisDict(Container, MutableMapping):
    """A dict kept in a Redis hash: pottery's ``RedisDict``.

    ``RedisDict(arg=(), *, redis=None, key='', **kwargs)``

    * ``arg`` and ``kwargs``: initial items, as ``dict()`` takes them (a
      mapping, or an iterable of ``(key, value)`` pairs, then keyword
      arguments).  They are written in one command; if ``key`` exists
      already, :class:`~pyredcache.exceptions.KeyExistsError` is raised and
      nothing is written.
    * ``redis``: a :class:`~pyredcache.Cache`, a
      :class:`~pyredcache.Client`, a ``redis://``/``unix://`` URL, or a
      redis-py-compatible client (``redis.Redis``, ``fakeredis.FakeRedis``);
      ``None``: ``$REDIS_URL``, else ``redis://localhost:6379/0``.
    * ``key``: the Redis key (str).  Empty: a random temporary key
      ``pottery:<uuid4>``, deleted when this object is garbage-collected or
      at interpreter exit (a process that is killed leaves it behind).

    Storage: a Redis hash at ``key`` whose fields and values are JSON text
    exactly as pottery writes it (``json.dumps(x, sort_keys=True)``), so
    pottery, pyredcache and other languages share the data.  Keys and
    values must be JSON-encodable (str, int, finite float, bool, None,
    lists/tuples and str-keyed dicts of those); anything else raises
    TypeError before anything is written.  Keys are told apart by their
    JSON text: ``1``, ``1.0`` and ``True`` are three keys here (one in a
    dict).  Array keys read back as tuples.

    Costs: ``d[k]``, ``d[k] = v``, ``del d[k]``, ``k in d``, ``len(d)``,
    ``get``, ``pop``, ``popitem``, ``setdefault``, ``update`` and ``clear``
    are one round trip each (``pop`` and ``setdefault`` are atomic).
    Iterating, ``keys()``/``values()``/``items()`` iteration, ``repr``,
    ``to_dict()`` and ``==`` with another mapping read the whole hash in
    one command and warn with
    :class:`~pyredcache.exceptions.InefficientAccessWarning`.

    Errors: a key holding another Redis type raises
    :class:`~pyredcache.exceptions.WrongTypeError`; the connection errors of
    :mod:`pyredcache.exceptions` pass through.
    """

    _REDIS_TYPE = "hash"

    # KEYS[1]: the hash.  Removes one field (HRANDFIELD: Redis >= 6.2) and
    # returns {field, value}; nil when the hash is empty.
    _POPITEM = Script("""
local field = redis.call('HRANDFIELD', KEYS[1])
if type(field) == 'table' then field = field[1] end
if not field then return nil end
local value = redis.call('HGET', KEYS[1], field)
redis.call('HDEL', KEYS[1], field)
return {field, value}
""")

    def __init__(self, arg: Any = (), *, redis: Any = None, key: str = "",
                 **kwargs: Any) -> None:
        super().__init__(redis=redis, key=key)
        self._create("HSET", self._encode_pairs(arg, kwargs))

    @staticmethod
    def _encode_pairs(arg: Any, kwargs: Mapping[str, Any]) -> list[str]:
        """HSET's field/value arguments for the pairs (later keys win);
        TypeError before anything is written."""
        fields: dict[str, str] = {}
        for k, v in _pairs(arg, kwargs):
            fields[encode(k)] = encode(v)
        return [x for kv in fields.items() for x in kv]

    # -- one round trip ------------------------------------------------------------

    def _lookup(self, key: Any) -> Any:
        """The value at key, or _MISSING (one HGET; _MISSING for a key JSON
        cannot encode)."""
        try:
            field = encode(key)
        except TypeError:
            return _MISSING
        try:
            raw = self._execute("HGET", self._key, field)
        except ResponseError as exc:
            self._raise(exc)
        return _MISSING if raw is None else decode(raw)

    def __getitem__(self, key: Any) -> Any:
        """``d[key]``: one HGET.  KeyError when absent; TypeError for a key
        JSON cannot encode."""
        field = encode(key)
        try:
            raw = self._execute("HGET", self._key, field)
        except ResponseError as exc:
            self._raise(exc)
        if raw is None:
            return self.__missing__(key)
        return decode(raw)

    def __missing__(self, key: Any) -> Any:
        raise KeyError(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        """``d[key] = value``: one HSET.  TypeError (nothing written) when
        key or value cannot be encoded as JSON."""
        field = encode(key)
        data = encode(value)
        try:
            self._execute("HSET", self._key, field, data)
        except ResponseError as exc:
            self._raise(exc)

    def __delitem__(self, key: Any) -> None:
        """``del d[key]``: one HDEL.  KeyError when absent."""
        if not self._run("HDEL", self._key, encode(key)):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        """``key in d``: one HEXISTS (False for a key JSON cannot encode)."""
        try:
            field = encode(key)
        except TypeError:
            return False
        return bool(self._run("HEXISTS", self._key, field))

    def __len__(self) -> int:
        """Number of items: one HLEN."""
        return self._run("HLEN", self._key)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value at key, or default: one HGET."""
        value = self._lookup(key)
        return default if value is _MISSING else value

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove key and return its value (or default; KeyError without
        one).  One atomic round trip (HGET and HDEL in MULTI/EXEC)."""
        field = encode(key)
        raw, _ = self._transaction(("HGET", self._key, field), ("HDEL", self._key, field))
        if raw is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return decode(raw)

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return some ``(key, value)`` pair (which one Redis
        picks: HRANDFIELD, not the last inserted as a dict does).  One
        atomic round trip; KeyError when empty."""
        reply = self._eval(self._POPITEM)
        if not reply:
            raise KeyError("popitem(): dictionary is empty")
        return decode_hashable(reply[0]), decode(reply[1])

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """``d[key]`` if present, else store and return default.  One atomic
        round trip (HSETNX and HGET in MULTI/EXEC)."""
        field = encode(key)
        _, raw = self._transaction(("HSETNX", self._key, field, encode(default)),
                                   ("HGET", self._key, field))
        return decode(raw)

    def update(self, arg: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        """Store the items of a mapping, or of an iterable of pairs, then the
        keyword arguments.  One round trip (one HSET; a huge update is
        several HSETs in one MULTI/EXEC).  TypeError before anything is
        written if a key or value cannot be encoded."""
        if isinstance(arg, RedisDict) and arg._same_key(self):
            arg = ()
        args = self._encode_pairs(arg, kwargs)
        if args:
            self._write_chunked("HSET", args)

    def __ior__(self, other: Any) -> RedisDict:
        self.update(other)
        return self

    # -- the whole hash ----------------------------------------------------------

    def _items(self, warn: bool = False) -> list[tuple[Any, Any]]:
        if warn:
            warn_inefficient(self, "items()", stacklevel=4)
        flat = self._run("HGETALL", self._key)
        return [(decode_hashable(flat[i]), decode(flat[i + 1])) for i in range(0, len(flat), 2)]

    def _values(self) -> list[Any]:
        warn_inefficient(self, "values()", stacklevel=4)
        return [decode(raw) for raw in self._run("HVALS", self._key)]

    def __iter__(self) -> Iterator[Any]:
        """Iterate over a snapshot of the keys: one HKEYS.  Warns
        (InefficientAccessWarning)."""
        warn_inefficient(self, "iteration")
        return iter([decode_hashable(raw) for raw in self._run("HKEYS", self._key)])

    def keys(self) -> KeysView:
        """A view: ``len`` is HLEN, ``in`` is HEXISTS, iteration HKEYS."""
        return KeysView(self)

    def items(self) -> ItemsView:
        """A view: iteration is one HGETALL, ``(k, v) in`` one HGET."""
        return _ItemsView(self)

    def values(self) -> ValuesView:
        """A view: iteration is one HVALS."""
        return _ValuesView(self)

    def to_dict(self) -> dict[Any, Any]:
        """A plain dict of the contents: one HGETALL.  Warns."""
        warn_inefficient(self, "to_dict()")
        return dict(self._items())

    def __eq__(self, other: object) -> bool:
        """Equal to any mapping with equal items.  The same key on the same
        server is equal without a round trip; otherwise one HGETALL (warns)."""
        if self is other or self._same_key(other):
            return True
        if not isinstance(other, Mapping):
            return NotImplemented
        warn_inefficient(self, "==")
        mine = dict(self._items())
        theirs = dict(other._items()) if isinstance(other, RedisDict) else dict(other.items())
        return mine == theirs

    def __or__(self, other: Any) -> dict[Any, Any]:
        """``d | other``: a plain dict (reads the whole hash; warns)."""
        if not isinstance(other, Mapping):
            return NotImplemented
        warn_inefficient(self, "|")
        merged = dict(self._items())
        merged.update(other.items())
        return merged

    def __ror__(self, other: Any) -> dict[Any, Any]:
        if not isinstance(other, Mapping):
            return NotImplemented
        warn_inefficient(self, "|")
        merged = dict(other.items())
        merged.update(self._items())
        return merged

    def __repr__(self) -> str:
        """``RedisDict{...}`` as pottery prints it (reads the whole hash;
        warns)."""
        warn_inefficient(self, "repr()")
        return "%s%r" % (type(self).__name__, dict(self._items()))


_Number = (int, float)


class RedisCounter(RedisDict):
    """A collections.Counter kept in a Redis hash: pottery's
    ``RedisCounter``.

    ``RedisCounter(arg=(), *, redis=None, key='', **kwargs)``: ``arg`` is an
    iterable of elements to count or a mapping of counts, as
    ``Counter()`` takes; other arguments as :class:`RedisDict` (initial
    counts into an existing key raise KeyExistsError).

    Counts are stored as JSON numbers, so Redis' own HINCRBY works on them:
    ``update()`` and ``subtract()`` run every increment in one Lua script
    (one round trip, atomic: concurrent counters never lose an update, and
    nothing is written if a stored count is not a number).  ``c[x]`` of a
    missing element is 0; ``del c[x]`` of one is no error.  ``+=``, ``-=``,
    ``|=`` and ``&=`` are one atomic script each too.  ``+``, ``-``, ``|``,
    ``&``, unary ``+``/``-``, ``most_common``, ``elements`` and ``total``
    read the whole hash (warn) and return plain ``collections.Counter``
    objects or values, as pottery's do.

    Counts are int (Redis' 64-bit range) or finite float; TypeError
    otherwise, before anything is written.
    """

    # KEYS[1]: the counter's hash (JSON fields and counts).
    # ARGV[1]: 'update' (add the counts), 'add' (add, then keep only counts
    #   > 0), 'or' (max), 'and' (min, then keep only counts > 0).
    # ARGV[2..]: field, count pairs (JSON numbers; 'add' takes negated
    #   counts to subtract).
    # Returns the number of fields; an error reply, with nothing written,
    # when a stored count of a given field is not a number.
    _APPLY = Script(LUA_PUSH + """
local key, op = KEYS[1], ARGV[1]
local function isint(s) return string.match(s, '^%-?%d+$') ~= nil end
for i = 2, #ARGV, 2 do
  local cur = redis.call('HGET', key, ARGV[i])
  if cur and tonumber(cur) == nil then
    return redis.error_reply('ERR count of ' .. ARGV[i] .. ' is not a number: ' .. cur)
  end
end
local given = {}
for i = 2, #ARGV, 2 do
  local field, n = ARGV[i], ARGV[i + 1]
  given[field] = true
  local cur = redis.call('HGET', key, field)
  if op == 'update' or op == 'add' then
    if isint(n) and (not cur or isint(cur)) then
      redis.call('HINCRBY', key, field, n)
    else
      redis.call('HINCRBYFLOAT', key, field, n)
    end
  elseif op == 'or' then
    if tonumber(n) > (cur and tonumber(cur) or 0) then redis.call('HSET', key, field, n) end
  elseif op == 'and' then
    if cur and tonumber(n) < tonumber(cur) then redis.call('HSET', key, field, n) end
  end
end
if op ~= 'update' then
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local c = tonumber(all[i + 1])
    if (op == 'and' and not given[all[i]]) or (c ~= nil and c <= 0) then
      redis.call('HDEL', key, all[i])
    end
  end
end
return redis.call('HLEN', key)
""")

    def __init__(self, arg: Any = (), *, redis: Any = None, key: str = "",
                 **kwargs: Any) -> None:
        Container.__init__(self, redis=redis, key=key)
        counts = self._counts(arg, kwargs)
        self._create("HSET", [x for kv in counts.items() for x in kv])

    def _counts(self, arg: Any, kwargs: Mapping[str, Any], sign: int = 1) -> dict[str, str]:
        """{JSON field: JSON count} of Counter.update's arguments (summed,
        times sign).  TypeError for a count that is not a number."""
        if isinstance(arg, RedisCounter):
            arg = arg._counter()
        elif isinstance(arg, RedisDict):
            arg = dict(arg._items())
        totals: dict[Any, Any] = {}
        if isinstance(arg, Mapping):
            totals.update(arg.items())
        elif arg is not None:
            for k in arg:
                totals[k] = totals.get(k, 0) + 1
        for k, n in kwargs.items():
            totals[k] = totals[k] + n if k in totals else n
        out: dict[str, str] = {}
        for k, n in totals.items():
            if isinstance(n, bool) or not isinstance(n, _Number):
                raise TypeError("counts must be int or float, not %s (for %r)"
                                % (type(n).__name__, k))
            if isinstance(n, int) and not -2**63 <= n * sign < 2**63:
                raise TypeError("count %d of %r is outside Redis' 64-bit integer range" % (n, k))
            out[encode(k)] = encode(n * sign)
        return out

    def _apply(self, op: str, counts: dict[str, str]) -> None:
        if counts or op != "update":
            try:
                self._eval(self._APPLY, op, *[x for kv in counts.items() for x in kv])
            except Exception as exc:
                if "is not a number" in str(exc):
                    raise TypeError("%s %r: %s" % (type(self).__name__, self._key,
                                                   str(exc).split("ERR ", 1)[-1])) from None
                raise

    def __missing__(self, key: Any) -> int:
        return 0

    def __delitem__(self, key: Any) -> None:
        """``del c[x]``: one HDEL; no error when x is absent."""
        self._run("HDEL", self._key, encode(key))

    def update(self, arg: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        """Add counts (elements of an iterable count 1 each; a mapping gives
        counts).  One atomic round trip."""
        self._apply("update", self._counts(arg, kwargs))

    def subtract(self, arg: Any = (), /, **kwargs: Any) -> None:
        """Subtract counts (may leave zero and negative counts, as
        Counter's).  One atomic round trip."""
        self._apply("update", self._counts(arg, kwargs, sign=-1))

    def _counter(self) -> collections.Counter:
        return collections.Counter(dict(self._items()))

    def to_counter(self) -> collections.Counter:
        """A plain collections.Counter of the contents (one HGETALL; warns)."""
        warn_inefficient(self, "to_counter()")
        return self._counter()

    def most_common(self, n: int | None = None) -> list[tuple[Any, Any]]:
        """The n most common elements and counts (all when n is None),
        most common first (reads the whole hash; warns)."""
        warn_inefficient(self, "most_common()")
        return self._counter().most_common(n)

    def elements(self) -> Iterator[Any]:
        """Each element repeated as many times as its count (counts < 1
        are skipped); reads the whole hash (warns)."""
        warn_inefficient(self, "elements()")
        return self._counter().elements()

    def total(self) -> Any:
        """The sum of the counts (reads the counts: one HVALS; warns)."""
        return sum(self._values())

    def __eq__(self, other: object) -> bool:
        """Counter equality (missing elements count as zero when both sides
        are counters, as in Python 3.10+)."""
        if self is other or self._same_key(other):
            return True
        if not isinstance(other, Mapping):
            return NotImplemented
        warn_inefficient(self, "==")
        if isinstance(other, RedisDict):
            other = other._counter() if isinstance(other, RedisCounter) else dict(other._items())
        return self._counter() == other

    def _binary(self, other: Any, op: Any) -> Any:
        if isinstance(other, RedisCounter):
            other = other._counter()
        if not isinstance(other, collections.Counter):
            return NotImplemented
        warn_inefficient(self, "counter arithmetic", stacklevel=4)
        return op(self._counter(), other)

    def __add__(self, other: Any) -> collections.Counter:
        return self._binary(other, collections.Counter.__add__)

    def __sub__(self, other: Any) -> collections.Counter:
        return self._binary(other, collections.Counter.__sub__)

    def __or__(self, other: Any) -> collections.Counter:  # type: ignore[override]
        return self._binary(other, collections.Counter.__or__)

    def __and__(self, other: Any) -> collections.Counter:
        return self._binary(other, collections.Counter.__and__)

    def __radd__(self, other: Any) -> collections.Counter:
        return self._binary(other, lambda a, b: b + a)

    def __rsub__(self, other: Any) -> collections.Counter:
        return self._binary(other, lambda a, b: b - a)

    def __ror__(self, other: Any) -> collections.Counter:  # type: ignore[override]
        return self._binary(other, lambda a, b: b | a)

    def __rand__(self, other: Any) -> collections.Counter:
        return self._binary(other, lambda a, b: b & a)

    def __pos__(self) -> collections.Counter:
        """The positive counts, as a Counter (reads the whole hash; warns)."""
        warn_inefficient(self, "unary +")
        return +self._counter()

    def __neg__(self) -> collections.Counter:
        """The negated negative counts, as a Counter (warns)."""
        warn_inefficient(self, "unary -")
        return -self._counter()

    def _inplace(self, other: Any, op: str, sign: int = 1) -> RedisCounter:
        if isinstance(other, RedisCounter):
            other = other._counter()
        if not isinstance(other, Mapping):
            return NotImplemented
        self._apply(op, self._counts(other, {}, sign=sign))
        return self

    def __iadd__(self, other: Any) -> RedisCounter:
        """``c += other``: add, keep only positive counts.  One atomic
        round trip."""
        return self._inplace(other, "add")

    def __isub__(self, other: Any) -> RedisCounter:
        """``c -= other``: subtract, keep only positive counts.  Atomic."""
        return self._inplace(other, "add", sign=-1)

    def __ior__(self, other: Any) -> RedisCounter:  # type: ignore[override]
        """``c |= other``: maximum of each count, keep positive.  Atomic."""
        return self._inplace(other, "or")

    def __iand__(self, other: Any) -> RedisCounter:
        """``c &= other``: minimum of each count, keep positive.  Atomic."""
        return self._inplace(other, "and")

    def __repr__(self) -> str:
        """``RedisCounter{'a': 2, 'b': 1}``, most common first (warns)."""
        warn_inefficient(self, "repr()")
        items = self._counter().most_common()
        return "%s{%s}" % (type(self).__name__,
                           ", ".join("%r: %r" % (k, v) for k, v in items))

    @classmethod
    def fromkeys(cls, iterable: Any, v: Any = None) -> Any:
        raise NotImplementedError(
            "RedisCounter.fromkeys() is undefined.  Use RedisCounter(iterable) instead.")
