"""RedisList and RedisDeque: a list and a collections.deque kept in a Redis
list (elements are JSON, as pottery stores them)."""

from __future__ import annotations

import collections
import operator
import sys
from collections.abc import Iterable, Iterator, MutableSequence
from typing import Any

from ..clients.scripts import Script
from ..exceptions import ResponseError
from ._base import (
    HOLE,
    LUA_PUSH,
    LUA_TYPECHECK,
    Container,
    decode,
    encode,
    encode_all,
    warn_inefficient,
)

__all__ = ["RedisList", "RedisDeque"]

# Lua: CPython's PySlice_AdjustIndices for a list of n elements; ARGV
# start/stop/step are decimal strings, '' for None.  Returns start, stop,
# step and the number of indices.
_LUA_SLICE = """
local function pyslice(n, a, b, s)
  local step = tonumber(s) or 1
  local lower, upper = 0, n
  if step < 0 then lower, upper = -1, n - 1 end
  local function adjust(v, default)
    v = tonumber(v)
    if v == nil then return default end
    if v < 0 then
      v = v + n
      if v < lower then v = lower end
    elseif v > upper then
      v = upper
    end
    return v
  end
  local start = adjust(a, step < 0 and upper or lower)
  local stop = adjust(b, step < 0 and lower or upper)
  local count = 0
  if step > 0 and stop > start then
    count = math.floor((stop - start - 1) / step) + 1
  elseif step < 0 and stop < start then
    count = math.floor((start - stop - 1) / (-step)) + 1
  end
  return start, stop, step, count
end
"""


def _index(i: Any) -> int:
    try:
        return operator.index(i)
    except TypeError:
        raise TypeError("list indices must be integers or slices, not %s"
                        % type(i).__name__) from None


def _slice_args(s: slice) -> tuple[str, str, str]:
    """A slice's start, stop and step as script arguments ('' for None);
    ValueError for a zero step."""
    parts = []
    for v in (s.start, s.stop, s.step):
        parts.append("" if v is None else str(_slice_int(v)))
    if parts[2] == "0":
        raise ValueError("slice step cannot be zero")
    return parts[0], parts[1], parts[2]


def _slice_int(v: Any) -> int:
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError("slice indices must be integers or None or have an "
                        "__index__ method") from None


def _lrange_bounds(s: slice) -> tuple[int, int, int] | None:
    """LRANGE start/end (inclusive, Redis' negative indexes) covering the
    elements of slice s, and the stride to take from them (negative: read
    backwards); None when the slice is empty whatever the length.  Exact
    for every list length, so a slice is one LRANGE, no LLEN."""
    step = 1 if s.step is None else _slice_int(s.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    a = None if s.start is None else _slice_int(s.start)
    b = None if s.stop is None else _slice_int(s.stop)
    if step > 0:
        start = 0 if a is None else a
        if b is None:
            end = -1
        elif b == 0:
            return None
        else:
            end = b - 1  # for b < 0 too: Redis counts -1 as the last element
        return start, end, step
    # step < 0: the elements from (b, a], read backwards
    end = -1 if a is None else a
    if b is None:
        start = 0
    elif b == -1:
        return None  # (n - 1, a] is empty for every n
    else:
        start = b + 1
    return start, end, step


class RedisList(Container, MutableSequence):
    """A list kept in a Redis list: pottery's ``RedisList``.

    ``RedisList(iterable=(), *, redis=None, key='')``: ``iterable`` gives
    the initial elements (one RPUSH; KeyExistsError, nothing written, when
    ``key`` exists already).  ``redis`` and ``key`` as for
    :class:`~pyredcache.RedisDict` (an empty key is a temporary
    ``pottery:<uuid4>`` key, deleted when the object is collected).

    Elements are stored as JSON text exactly as pottery writes it; they
    must be JSON-encodable (TypeError, before anything is written,
    otherwise).  ``remove``, ``index``, ``count`` and ``in`` compare JSON
    text (``1`` and ``1.0`` differ here).

    Costs, each one round trip: ``l[i]`` (LINDEX), ``l[a:b:c]`` (one
    LRANGE, negative indexes and steps included), ``l[i] = x``,
    ``del l[i]``, ``del l[a:b:c]``, ``l[a:b:c] = xs``, ``insert``,
    ``append``, ``extend`` (one RPUSH), ``pop(i)``, ``remove``, ``index``,
    ``count``, ``x in l``, ``reverse``, ``len``, ``clear``; those that
    change several elements are atomic (MULTI/EXEC or a Lua script).
    Iteration, ``reversed``, ``repr``, ``to_list()``, ``==``, ``+``, ``*``
    and ``sort`` read the whole list and warn with
    InefficientAccessWarning; ``sort`` writes back only if nobody changed
    the list meanwhile (retrying otherwise).  ``+`` and ``*`` return plain
    lists.
    """

    _REDIS_TYPE = "list"

    # KEYS[1]: the list.  ARGV: 'set' or 'del', start, stop, step ('' for
    # None), then for 'set' the new JSON elements, for 'del' the hole marker.
    # Python's slice assignment / deletion; returns the number of indices,
    # or an error reply (nothing written) when an extended slice and the
    # new elements differ in length.
    _SLICE = Script(LUA_PUSH + _LUA_SLICE + """
local key, mode = KEYS[1], ARGV[1]
local n = redis.call('LLEN', key)
local start, stop, step, count = pyslice(n, ARGV[2], ARGV[3], ARGV[4])
local values = {}
if mode == 'set' then
  for i = 5, #ARGV do values[#values + 1] = ARGV[i] end
end
if step == 1 then
  if stop < start then stop = start end
  local tail = redis.call('LRANGE', key, stop, -1)
  if start == 0 then redis.call('DEL', key) else redis.call('LTRIM', key, 0, start - 1) end
  push('RPUSH', key, values)
  push('RPUSH', key, tail)
  return count
end
if mode == 'set' then
  if #values ~= count then
    return redis.error_reply('ERR attempt to assign sequence of size ' .. #values ..
                             ' to extended slice of size ' .. count)
  end
  for j = 1, count do redis.call('LSET', key, start + (j - 1) * step, values[j]) end
else
  for j = 1, count do redis.call('LSET', key, start + (j - 1) * step, ARGV[5]) end
  redis.call('LREM', key, 0, ARGV[5])
end
return count
""")

    # KEYS[1]: the list.  ARGV: index, JSON element, maxlen ('' for none),
    # hole marker.  list.insert; returns the new length, or an error reply
    # when the list already has maxlen elements.
    _INSERT = Script("""
local key, i, value = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local n = redis.call('LLEN', key)
local maxlen = tonumber(ARGV[3])
if maxlen and n >= maxlen then
  return redis.error_reply('ERR deque already at its maximum size')
end
if i < 0 then
  i = i + n
  if i < 0 then i = 0 end
end
if i >= n then return redis.call('RPUSH', key, value) end
if i == 0 then return redis.call('LPUSH', key, value) end
local pivot = redis.call('LINDEX', key, i)
redis.call('LSET', key, i, ARGV[4])
redis.call('LINSERT', key, 'BEFORE', ARGV[4], value)
redis.call('LSET', key, i + 1, pivot)
return n + 1
""")

    # KEYS[1]: the list.  Reverses it in place; returns its length.
    _REVERSE = Script(LUA_PUSH + """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
if #items > 1 then
  redis.call('DEL', KEYS[1])
  push('LPUSH', KEYS[1], items)
end
return #items
""")

    # KEYS[1]: the list.  ARGV: n, maxlen ('' for none).  list *= n (keeping
    # the last maxlen elements); returns the new length.
    _REPEAT = Script(LUA_PUSH + LUA_TYPECHECK + """
local bad = typecheck(KEYS[1], 'list')
if bad then return bad end
local n = tonumber(ARGV[1])
if n <= 0 then redis.call('DEL', KEYS[1]); return 0 end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for r = 2, n do push('RPUSH', KEYS[1], items) end
local maxlen = tonumber(ARGV[2])
if maxlen then redis.call('LTRIM', KEYS[1], -maxlen, -1) end
return redis.call('LLEN', KEYS[1])
""")

    # KEYS[1]: the list.  ARGV: m, the m elements read before, then the new
    # elements.  Replaces the contents only if they still are the m elements
    # read (compare-and-set); returns 1 when replaced, 0 when the list
    # changed meanwhile (nothing written).
    _REPLACE = Script(LUA_PUSH + """
local m = tonumber(ARGV[1])
local current = redis.call('LRANGE', KEYS[1], 0, -1)
if #current ~= m then return 0 end
for i = 1, m do
  if current[i] ~= ARGV[1 + i] then return 0 end
end
redis.call('DEL', KEYS[1])
push('RPUSH', KEYS[1], ARGV, m + 2, #ARGV)
return 1
""")

    #: list.__eq__ is True only against these (and this class's family).
    _EQUAL_TO: tuple[type, ...] = (list,)
    _MAXLEN_ARG = ""

    def __init__(self, iterable: Iterable[Any] = (), *, redis: Any = None,
                 key: str = "") -> None:
        super().__init__(redis=redis, key=key)
        self._create("RPUSH", encode_all(iterable))

    # -- one round trip --------------------------------------------------------------

    def __getitem__(self, index: Any) -> Any:
        """``l[i]``: one LINDEX (IndexError out of range); ``l[a:b:c]``: a
        plain list, one LRANGE."""
        if type(index) is not int:
            if isinstance(index, slice):
                return self._slice(index)
            index = _index(index)
        try:
            raw = self._execute("LINDEX", self._key, index)
        except ResponseError as exc:
            self._raise(exc)
        if raw is None:
            raise IndexError("list index out of range")
        return decode(raw)

    def _slice(self, s: slice) -> list[Any]:
        bounds = _lrange_bounds(s)
        if bounds is None:
            # still one command, so a key of another type raises as usual
            self._run("LLEN", self._key)
            return []
        start, end, step = bounds
        raws = self._run("LRANGE", self._key, start, end)
        if step != 1:
            raws = raws[::step] if step > 0 else raws[::-1][::-step]
        return [decode(raw) for raw in raws]

    def __setitem__(self, index: Any, value: Any) -> None:
        """``l[i] = x``: one LSET (IndexError out of range).
        ``l[a:b:c] = xs``: one atomic Lua script, as Python does it (an
        extended slice needs as many elements as it has indices:
        ValueError)."""
        if isinstance(index, slice):
            start, stop, step = _slice_args(index)
            values = encode_all(value) if not isinstance(value, RedisList) else \
                encode_all(value._list())
            try:
                self._eval(self._SLICE, "set", start, stop, step, *values)
            except ResponseError as exc:
                if "extended slice" in str(exc):
                    raise ValueError(str(exc).split("ERR ", 1)[-1].split(" script:")[0]) from None
                raise
            return
        index = _index(index)
        data = encode(value)
        try:
            self._execute("LSET", self._key, index, data)
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                self._raise(exc)
            raise IndexError("list assignment index out of range") from None

    def __delitem__(self, index: Any) -> None:
        """``del l[i]``: one atomic MULTI/EXEC; ``del l[a:b:c]``: one atomic
        Lua script.  IndexError for an index out of range."""
        if isinstance(index, slice):
            self._eval(self._SLICE, "del", *_slice_args(index), HOLE)
            return
        index = _index(index)
        replies = self._pipeline([("MULTI",), ("LSET", self._key, index, HOLE),
                                  ("LREM", self._key, 1, HOLE), ("EXEC",)])
        result = replies[-1]
        if isinstance(result, ResponseError):
            self._raise(result)
        if isinstance(result[0], ResponseError):
            if "WRONGTYPE" in str(result[0]):
                self._raise(result[0])
            raise IndexError("list assignment index out of range")

    def __len__(self) -> int:
        """Number of elements: one LLEN."""
        return self._run("LLEN", self._key)

    def insert(self, index: int, value: Any) -> None:
        """Insert value before index, as list.insert (an index past either
        end inserts at that end).  One round trip (LPUSH for index 0, else
        an atomic Lua script)."""
        index = _index(index)
        data = encode(value)
        if index == 0 and not self._MAXLEN_ARG:
            self._run("LPUSH", self._key, data)
            return
        try:
            self._eval(self._INSERT, index, data, self._MAXLEN_ARG, HOLE)
        except ResponseError as exc:
            if "maximum size" in str(exc):
                raise IndexError("deque already at its maximum size") from None
            raise

    def append(self, value: Any) -> None:
        """Add value at the end: one RPUSH.  TypeError (nothing written) for
        a value JSON cannot encode."""
        data = encode(value)
        try:
            self._execute("RPUSH", self._key, data)
        except ResponseError as exc:
            self._raise(exc)

    def extend(self, values: Iterable[Any]) -> None:
        """Append every value: one RPUSH (a huge one is several RPUSHes in
        one MULTI/EXEC).  TypeError before anything is written if a value
        cannot be encoded."""
        if isinstance(values, RedisList):
            values = values._list()
        data = encode_all(values)
        if data:
            self._write_chunked("RPUSH", data)

    def pop(self, index: int | None = -1) -> Any:
        """Remove and return the element at index (last by default).
        ``pop()``/``pop(-1)`` is one RPOP, ``pop(0)`` one LPOP, any other
        index one atomic MULTI/EXEC.  IndexError when empty or out of
        range."""
        index = -1 if index is None else _index(index)
        if index == -1 or index == 0:
            raw = self._run("RPOP" if index == -1 else "LPOP", self._key)
            if raw is None:
                raise IndexError("pop from empty list")
            return decode(raw)
        replies = self._pipeline([("MULTI",), ("LINDEX", self._key, index),
                                  ("LSET", self._key, index, HOLE),
                                  ("LREM", self._key, 1, HOLE), ("EXEC",)])
        result = replies[-1]
        if isinstance(result, ResponseError):
            self._raise(result)
        raw = result[0]
        if isinstance(raw, ResponseError):
            self._raise(raw)
        if raw is None:  # out of range: the LSET failed, the LREM found no hole
            raise IndexError("pop index out of range")
        return decode(raw)

    def remove(self, value: Any) -> None:
        """Remove the first element equal to value (by JSON text): one
        LREM.  ValueError when there is none."""
        try:
            data = encode(value)
        except TypeError:
            data = None
        if data is None or not self._run("LREM", self._key, 1, data):
            raise ValueError("%s.remove(x): x not in %s"
                             % (self._PY_NAME, self._PY_NAME))

    _PY_NAME = "list"

    def index(self, value: Any, start: int = 0, stop: int = sys.maxsize) -> int:
        """Index of the first element equal to value (by JSON text) within
        ``[start:stop]``: one LPOS (Redis >= 6.0.6).  ValueError when
        absent."""
        try:
            data = encode(value)
        except TypeError:
            raise ValueError("%r is not in %s" % (value, self._PY_NAME)) from None
        start, stop = _index(start), _index(stop)
        if start == 0 and stop == sys.maxsize:
            pos = self._run("LPOS", self._key, data)
        else:
            n, positions = self._transaction(("LLEN", self._key),
                                             ("LPOS", self._key, data, "COUNT", 0))
            lo, hi, _ = slice(start, stop).indices(n)
            pos = next((p for p in positions if lo <= p < hi), None)
        if pos is None:
            raise ValueError("%r is not in %s" % (value, self._PY_NAME))
        return pos

    def count(self, value: Any) -> int:
        """How many elements equal value (by JSON text): one LPOS."""
        try:
            data = encode(value)
        except TypeError:
            return 0
        return len(self._run("LPOS", self._key, data, "COUNT", 0))

    def __contains__(self, value: object) -> bool:
        """``x in l``: one LPOS (by JSON text)."""
        try:
            data = encode(value)
        except TypeError:
            return False
        return self._run("LPOS", self._key, data) is not None

    def reverse(self) -> None:
        """Reverse in place, in Redis: one atomic Lua script."""
        self._eval(self._REVERSE)

    # -- the whole list -------------------------------------------------------------

    def _list(self) -> list[Any]:
        return [decode(raw) for raw in self._run("LRANGE", self._key, 0, -1)]

    def __iter__(self) -> Iterator[Any]:
        """Iterate over a snapshot: one LRANGE (warns)."""
        warn_inefficient(self, "iteration")
        return iter(self._list())

    def __reversed__(self) -> Iterator[Any]:
        """Iterate backwards over a snapshot: one LRANGE (warns)."""
        warn_inefficient(self, "reversed()")
        return reversed(self._list())

    def to_list(self) -> list[Any]:
        """A plain list of the elements: one LRANGE (warns)."""
        warn_inefficient(self, "to_list()")
        return self._list()

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        """Sort in place, as list.sort (stable; ``key`` a function of one
        element, ``reverse`` a bool).  Reads the list (warns), sorts here,
        and writes it back in one atomic compare-and-set script, which
        writes nothing if the list changed since it was read; then it reads
        and sorts again (RuntimeError after 10 tries).  Comparison errors
        (TypeError for mixed types) are raised before anything is written."""
        warn_inefficient(self, "sort()")
        for _ in range(10):
            raws = self._run("LRANGE", self._key, 0, -1)
            values = sorted((decode(raw) for raw in raws), key=key, reverse=reverse)
            if len(raws) < 2:
                return
            if self._eval(self._REPLACE, len(raws), *raws, *encode_all(values)):
                return
        raise RuntimeError("%s %r changed while being sorted, 10 times in a row"
                           % (type(self).__name__, self._key))

    def _equal_family(self, other: Any) -> bool:
        return isinstance(other, self._EQUAL_TO) or (
            isinstance(other, RedisList) and
            isinstance(other, RedisDeque) == isinstance(self, RedisDeque))

    def __eq__(self, other: object) -> bool:
        """``==`` as pottery's (and as Python's list and deque): a
        RedisList equals a list or a RedisList, a RedisDeque a deque or a
        RedisDeque, with equal elements in the same order.  A RedisList and
        a RedisDeque are never equal (as ``[] == deque()`` is False), even
        on the same key.  Reads the whole list (warns), unless other is the
        same key on the same server (then True, without a round trip)."""
        if self is other:
            return True
        if not self._equal_family(other):
            return NotImplemented if not isinstance(other, RedisList) else False
        if self._same_key(other):
            return True
        warn_inefficient(self, "==")
        if isinstance(other, RedisList):
            if self._same_server(other):
                mine, theirs = self._run_pipeline([("LRANGE", self._key, 0, -1),
                                                   ("LRANGE", other._key, 0, -1)])
                return [decode(r) for r in mine] == [decode(r) for r in theirs]
            return self._list() == other._list()
        return self._list() == list(other)  # type: ignore[call-overload]

    def _new(self, values: list[Any]) -> Any:
        return values

    def __add__(self, other: Any) -> Any:
        """``l + other``: a plain list (reads the whole list; warns)."""
        if not self._equal_family(other):
            return NotImplemented
        warn_inefficient(self, "+")
        theirs = other._list() if isinstance(other, RedisList) else list(other)
        return self._new(self._list() + theirs)

    def __radd__(self, other: Any) -> Any:
        if not self._equal_family(other):
            return NotImplemented
        warn_inefficient(self, "+")
        return self._new(list(other) + self._list())

    def __mul__(self, n: Any) -> Any:
        """``l * n``: a plain list (reads the whole list; warns)."""
        try:
            n = operator.index(n)
        except TypeError:
            return NotImplemented
        warn_inefficient(self, "*")
        return self._new(self._list() * n)

    __rmul__ = __mul__

    def __imul__(self, n: Any) -> Any:
        """``l *= n``: repeats the list in Redis (one atomic script)."""
        try:
            n = operator.index(n)
        except TypeError:
            return NotImplemented
        self._eval(self._REPEAT, n, self._MAXLEN_ARG)
        return self

    def __repr__(self) -> str:
        """``RedisList[...]`` as pottery prints it (warns)."""
        warn_inefficient(self, "repr()")
        return "%s%r" % (type(self).__name__, self._list())


class RedisDeque(RedisList):
    """A collections.deque kept in a Redis list: pottery's ``RedisDeque``.

    ``RedisDeque(iterable=(), maxlen=None, *, redis=None, key='')``:
    ``maxlen`` (int >= 0 or None) bounds the length as deque's does: the
    initial elements are the last ``maxlen`` of ``iterable`` (all of them
    when it has fewer: ``RedisDeque('gh', maxlen=3)`` holds ``['g', 'h']``,
    as ``deque('gh', maxlen=3)``); ``append``/``extend`` then drop elements
    from the left end, ``appendleft``/``extendleft`` from the right one;
    ``insert`` into a full deque raises IndexError.  Opening an existing
    key that holds more than ``maxlen`` elements (without initial data)
    raises IndexError, as pottery's does.  A RedisDeque never equals a
    list or a :class:`RedisList` (as a deque never equals a list).
    Everything else as :class:`RedisList`.

    ``append``/``appendleft``/``extend``/``extendleft`` are one round trip
    (RPUSH/LPUSH, plus LTRIM in the same MULTI/EXEC when bounded);
    ``pop``/``popleft`` one RPOP/LPOP; ``rotate`` one atomic Lua script.
    ``+`` and ``*`` return plain deques.
    """

    _EQUAL_TO = (collections.deque,)
    _PY_NAME = "deque"

    # KEYS[1]: the list.  ARGV[1]: n.  deque.rotate(n): the last n elements
    # move to the front (n < 0: the first -n to the back); returns length.
    _ROTATE = Script(LUA_PUSH + """
local n = redis.call('LLEN', KEYS[1])
if n < 2 then return n end
local k = tonumber(ARGV[1]) % n
if k == 0 then return n end
local tail = redis.call('LRANGE', KEYS[1], n - k, -1)
redis.call('LTRIM', KEYS[1], 0, n - k - 1)
local reversed = {}
for i = #tail, 1, -1 do reversed[#reversed + 1] = tail[i] end
push('LPUSH', KEYS[1], reversed)
return n
""")

    def __init__(self, iterable: Iterable[Any] = (), maxlen: int | None = None, *,
                 redis: Any = None, key: str = "") -> None:
        if maxlen is not None:
            if isinstance(maxlen, bool) or not isinstance(maxlen, int):
                raise TypeError("an integer is required")
            if maxlen < 0:
                raise ValueError("maxlen must be non-negative")
        self._maxlen = maxlen
        self._MAXLEN_ARG = "" if maxlen is None else str(maxlen)
        Container.__init__(self, redis=redis, key=key)
        values = encode_all(iterable)
        if maxlen is not None:
            # deque(iterable, maxlen) keeps the last maxlen elements, or all
            # of them when there are fewer
            values = values[-maxlen:] if maxlen else []
        if values:
            self._create("RPUSH", values)
        elif maxlen is not None and self._run("LLEN", self._key) > maxlen:
            raise IndexError("persistent %s beyond its maximum size" % type(self).__name__)

    @property
    def maxlen(self) -> int | None:
        """The maximum length, or None (read-only, as deque's)."""
        return self._maxlen

    def _push(self, command: str, values: list[str]) -> None:
        """Push values at one end, trimming the other end to maxlen: one
        round trip (atomic when bounded)."""
        if not values:
            return
        maxlen = self._maxlen
        if maxlen is None:
            self._write_chunked(command, values)
            return
        if maxlen == 0:
            self._run("LLEN", self._key)  # a key of another type still raises
            return
        values = values[-maxlen:]
        trim = (("LTRIM", self._key, -maxlen, -1) if command == "RPUSH"
                else ("LTRIM", self._key, 0, maxlen - 1))
        self._transaction((command, self._key, *values), trim)

    def append(self, value: Any) -> None:
        """Add value at the right end (dropping from the left when full)."""
        if self._maxlen is None:
            RedisList.append(self, value)
        else:
            self._push("RPUSH", [encode(value)])

    def appendleft(self, value: Any) -> None:
        """Add value at the left end (dropping from the right when full)."""
        self._push("LPUSH", [encode(value)])

    def extend(self, values: Iterable[Any]) -> None:
        """Append every value at the right end: one round trip."""
        if isinstance(values, RedisList):
            values = values._list()
        self._push("RPUSH", encode_all(values))

    def extendleft(self, values: Iterable[Any]) -> None:
        """Add every value at the left end, one after the other (so they end
        up reversed, as deque's): one round trip."""
        if isinstance(values, RedisList):
            values = values._list()
        self._push("LPUSH", encode_all(values))

    def pop(self) -> Any:  # type: ignore[override]
        """Remove and return the rightmost element: one RPOP; IndexError
        when empty."""
        raw = self._run("RPOP", self._key)
        if raw is None:
            raise IndexError("pop from an empty deque")
        return decode(raw)

    def popleft(self) -> Any:
        """Remove and return the leftmost element: one LPOP; IndexError
        when empty."""
        raw = self._run("LPOP", self._key)
        if raw is None:
            raise IndexError("pop from an empty deque")
        return decode(raw)

    def rotate(self, n: int = 1) -> None:
        """Rotate n steps to the right (n < 0: to the left), in Redis: one
        atomic Lua script."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("'%s' object cannot be interpreted as an integer"
                            % type(n).__name__)
        if n:
            self._eval(self._ROTATE, n)

    def _new(self, values: list[Any]) -> Any:
        return collections.deque(values, self._maxlen)

    def __repr__(self) -> str:
        """``RedisDeque([...])`` or ``RedisDeque([...], maxlen=n)`` (warns)."""
        warn_inefficient(self, "repr()")
        if self._maxlen is None:
            return "%s(%r)" % (type(self).__name__, self._list())
        return "%s(%r, maxlen=%d)" % (type(self).__name__, self._list(), self._maxlen)
