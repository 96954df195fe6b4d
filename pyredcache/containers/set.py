"""RedisSet: a set kept in a Redis set (members are JSON, as pottery
stores them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet, Set
from typing import Any

from ..clients.scripts import Script
from ..exceptions import ResponseError
from ._base import LUA_PUSH, Container, decode_hashable, encode, warn_inefficient

__all__ = ["RedisSet"]


class RedisSet(Container, MutableSet):
    """A set kept in a Redis set: pottery's ``RedisSet``.

    ``RedisSet(iterable=(), *, redis=None, key='')``: ``iterable`` gives
    the initial elements (one SADD; KeyExistsError, nothing written, when
    ``key`` exists already).  ``redis`` and ``key`` as for
    :class:`~pyredcache.RedisDict` (an empty key is a temporary
    ``pottery:<uuid4>`` key, deleted when the object is collected).

    Members are stored as JSON text exactly as pottery writes it.  Elements
    must be JSON-encodable (TypeError, before anything is written,
    otherwise); they are told apart by their JSON text (``1`` and ``1.0``
    are two elements here), and arrays read back as tuples.

    Costs: ``add``, ``discard``, ``remove``, ``pop``, ``x in s``,
    ``len(s)``, ``clear``, ``update``, ``difference_update``,
    ``intersection_update``, ``symmetric_difference_update`` (and their
    operators ``|= -= &= ^=``) are one round trip each.  Set algebra with
    other RedisSets on the same server runs in Redis (SINTER, SUNION,
    SDIFF, ...: only the result crosses the network).  With plain sets,
    ``&``, ``isdisjoint``, ``issuperset``, ``issubset`` and ``==`` send the
    other set's elements (one SMISMEMBER) rather than read this one.  What
    must read every member (iteration, ``repr``, ``to_set()``, ``|``,
    ``-`` and ``^`` with a plain set) warns with InefficientAccessWarning.
    Results of the binary operators are plain ``set`` objects.
    """

    _REDIS_TYPE = "set"

    # KEYS[1]: the set.  ARGV: JSON members.  Removes every member not in
    # ARGV (intersection_update); returns how many were removed.
    _KEEP_ONLY = Script("""
local keep = {}
for i = 1, #ARGV do keep[ARGV[i]] = true end
local removed = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not keep[m] then redis.call('SREM', KEYS[1], m); removed = removed + 1 end
end
return removed
""")

    # KEYS[1]: the set.  ARGV: distinct JSON members.  Removes those present,
    # adds the others (symmetric_difference_update); returns the new size.
    _TOGGLE = Script(LUA_PUSH + """
local add = {}
for i = 1, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 1 then
    redis.call('SREM', KEYS[1], ARGV[i])
  else
    add[#add + 1] = ARGV[i]
  end
end
push('SADD', KEYS[1], add)
return redis.call('SCARD', KEYS[1])
""")

    def __init__(self, iterable: Iterable[Any] = (), *, redis: Any = None,
                 key: str = "") -> None:
        super().__init__(redis=redis, key=key)
        self._create("SADD", self._encode_members(iterable))

    @staticmethod
    def _encode_members(iterable: Iterable[Any]) -> list[str]:
        return list(dict.fromkeys(encode(v) for v in iterable))

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> set:
        # Set's mixin operators build their results with this: plain sets.
        return set(it)

    # -- one round trip --------------------------------------------------------------

    def __contains__(self, value: object) -> bool:
        """``x in s``: one SISMEMBER (False for what JSON cannot encode)."""
        try:
            member = encode(value)
        except TypeError:
            return False
        try:
            return bool(self._execute("SISMEMBER", self._key, member))
        except ResponseError as exc:
            self._raise(exc)

    def contains_many(self, *values: Any) -> Iterator[bool]:
        """Whether each value is a member, in order: one SMISMEMBER
        (Redis >= 6.2).  pottery's method."""
        return iter(self._mismember(values))

    def _mismember(self, values: Iterable[Any]) -> list[bool]:
        members: list[str | None] = []
        for v in values:
            try:
                members.append(encode(v))
            except TypeError:
                members.append(None)
        wanted = [m for m in members if m is not None]
        found = iter(self._run("SMISMEMBER", self._key, *wanted) if wanted else ())
        return [False if m is None else bool(next(found)) for m in members]

    def __len__(self) -> int:
        """Number of elements: one SCARD."""
        return self._run("SCARD", self._key)

    def add(self, value: Any) -> None:
        """Add an element: one SADD.  TypeError (nothing written) for a value
        JSON cannot encode."""
        member = encode(value)
        try:
            self._execute("SADD", self._key, member)
        except ResponseError as exc:
            self._raise(exc)

    def discard(self, value: Any) -> None:
        """Remove an element if present: one SREM."""
        try:
            member = encode(value)
        except TypeError:
            return
        self._run("SREM", self._key, member)

    def remove(self, value: Any) -> None:
        """Remove an element: one SREM; KeyError when absent."""
        try:
            member = encode(value)
        except TypeError:
            raise KeyError(value) from None
        if not self._run("SREM", self._key, member):
            raise KeyError(value)

    def pop(self) -> Any:
        """Remove and return an arbitrary element: one SPOP; KeyError when
        empty."""
        raw = self._run("SPOP", self._key)
        if raw is None:
            raise KeyError("pop from an empty set")
        return decode_hashable(raw)

    # -- reading every member ---------------------------------------------------------

    def _members(self) -> set:
        return {decode_hashable(raw) for raw in self._run("SMEMBERS", self._key)}

    def __iter__(self) -> Iterator[Any]:
        """Iterate over a snapshot of the members: one SMEMBERS (warns)."""
        warn_inefficient(self, "iteration")
        return iter([decode_hashable(raw) for raw in self._run("SMEMBERS", self._key)])

    def to_set(self) -> set:
        """A plain set of the members: one SMEMBERS (warns)."""
        warn_inefficient(self, "to_set()")
        return self._members()

    def __repr__(self) -> str:
        """``RedisSet{...}`` as pottery prints it (warns)."""
        warn_inefficient(self, "repr()")
        return "%s{%s}" % (type(self).__name__, ", ".join(map(repr, self._members())))

    # -- algebra --------------------------------------------------------------------

    def _keys_of(self, others: tuple) -> list[str] | None:
        """The keys of others when every one is a RedisSet on this server
        (so Redis can combine them), else None."""
        if all(isinstance(o, RedisSet) and self._same_server(o) for o in others):
            return [o._key for o in others]
        return None

    def _server_set(self, command: str, keys: list[str]) -> set:
        return {decode_hashable(raw) for raw in self._run(command, self._key, *keys)}

    @staticmethod
    def _plain(other: Any) -> Any:
        return other._members() if isinstance(other, RedisSet) else other

    def union(self, *others: Iterable[Any]) -> set:
        """A plain set of the elements in this set or any other (SUNION when
        all others are RedisSets on this server; else reads this set, warns)."""
        keys = self._keys_of(others)
        if keys is not None:
            return self._server_set("SUNION", keys)
        warn_inefficient(self, "union()")
        return self._members().union(*map(self._plain, others))

    def intersection(self, *others: Iterable[Any]) -> set:
        """A plain set of the elements in this set and every other (SINTER
        when all are RedisSets on this server; else one SMISMEMBER of the
        others' common elements: this set is not read)."""
        keys = self._keys_of(others)
        if keys is not None:
            return self._server_set("SINTER", keys)
        common = set(self._plain(others[0])).intersection(*map(self._plain, others[1:]))
        candidates = list(common)
        return {v for v, hit in zip(candidates, self._mismember(candidates)) if hit}

    def difference(self, *others: Iterable[Any]) -> set:
        """A plain set of the elements of this set in no other (SDIFF when
        all are RedisSets on this server; else reads this set, warns)."""
        keys = self._keys_of(others)
        if keys is not None:
            return self._server_set("SDIFF", keys)
        warn_inefficient(self, "difference()")
        return self._members().difference(*map(self._plain, others))

    def symmetric_difference(self, other: Iterable[Any]) -> set:
        """A plain set of the elements in exactly one of the two (reads this
        set, warns; two SDIFFs in one round trip for a RedisSet on this
        server)."""
        if isinstance(other, RedisSet) and self._same_server(other):
            a, b = self._run_pipeline([("SDIFF", self._key, other._key),
                                       ("SDIFF", other._key, self._key)])
            return {decode_hashable(raw) for raw in a + b}
        warn_inefficient(self, "symmetric_difference()")
        return self._members().symmetric_difference(self._plain(other))

    def isdisjoint(self, other: Iterable[Any]) -> bool:
        """True when no element is in both (one SMISMEMBER of other's
        elements; SINTER for a RedisSet on this server)."""
        if isinstance(other, RedisSet) and self._same_server(other):
            return not self._server_set("SINTER", [other._key])
        return not any(self._mismember(list(self._plain(other))))

    def issuperset(self, other: Iterable[Any]) -> bool:
        """True when every element of other is in this set (one SMISMEMBER;
        SDIFF for a RedisSet on this server)."""
        if isinstance(other, RedisSet) and self._same_server(other):
            return not self._run("SDIFF", other._key, self._key)
        return all(self._mismember(list(self._plain(other))))

    def issubset(self, other: Iterable[Any]) -> bool:
        """True when every element of this set is in other (SCARD and one
        SMISMEMBER of other's elements in one round trip; SDIFF for a
        RedisSet on this server)."""
        if isinstance(other, RedisSet) and self._same_server(other):
            return not self._run("SDIFF", self._key, other._key)
        size, hits = self._size_and_hits(self._plain(other))
        return hits == size

    def _size_and_hits(self, values: Iterable[Any]) -> tuple[int, int]:
        """(SCARD, how many distinct values are members) in one round trip."""
        members = set()
        for v in values:
            try:
                members.add(encode(v))
            except TypeError:
                pass
        if not members:
            return self._run("SCARD", self._key), 0
        size, found = self._run_pipeline([("SCARD", self._key),
                                          ("SMISMEMBER", self._key, *members)])
        return size, sum(found)

    def __le__(self, other: Any) -> bool:
        if not isinstance(other, Set):
            return NotImplemented
        return self.issubset(other)

    def __lt__(self, other: Any) -> bool:
        if not isinstance(other, Set):
            return NotImplemented
        return len(self) < len(other) and self.issubset(other)

    def __ge__(self, other: Any) -> bool:
        if not isinstance(other, Set):
            return NotImplemented
        return self.issuperset(other)

    def __gt__(self, other: Any) -> bool:
        if not isinstance(other, Set):
            return NotImplemented
        return len(self) > len(other) and self.issuperset(other)

    def __eq__(self, other: object) -> bool:
        """Equal to any set (``collections.abc.Set``) with the same
        elements.  With a plain set: SCARD and one SMISMEMBER of its
        elements, in one round trip; this set is not read."""
        if self is other or self._same_key(other):
            return True
        if not isinstance(other, Set):
            return NotImplemented
        if isinstance(other, RedisSet):
            if self._same_server(other):
                a, b = self._run_pipeline([("SCARD", self._key), ("SCARD", other._key)])
                return a == b and not self._run("SDIFF", self._key, other._key)
            other = other._members()
        size, hits = self._size_and_hits(other)
        return size == len(other) == hits

    def __and__(self, other: Any) -> set:
        if not isinstance(other, Iterable):
            return NotImplemented
        return self.intersection(other)

    __rand__ = __and__

    def __or__(self, other: Any) -> set:
        if not isinstance(other, Iterable):
            return NotImplemented
        return self.union(other)

    __ror__ = __or__

    def __sub__(self, other: Any) -> set:
        if not isinstance(other, Iterable):
            return NotImplemented
        return self.difference(other)

    def __rsub__(self, other: Any) -> set:
        """``other - s``: other's elements that are not members (one
        SMISMEMBER; this set is not read)."""
        if not isinstance(other, Iterable):
            return NotImplemented
        values = list(set(other))
        return {v for v, hit in zip(values, self._mismember(values)) if not hit}

    def __xor__(self, other: Any) -> set:
        if not isinstance(other, Iterable):
            return NotImplemented
        return self.symmetric_difference(other)

    __rxor__ = __xor__

    # -- in place -----------------------------------------------------------------------

    def update(self, *others: Iterable[Any]) -> None:
        """Add every element of the others: one SADD (SUNIONSTORE when all
        are RedisSets on this server)."""
        keys = self._keys_of(others)
        if keys is not None:
            if keys:
                self._run("SUNIONSTORE", self._key, self._key, *keys)
            return
        members = self._encode_members(v for o in others for v in self._plain(o))
        if members:
            self._write_chunked("SADD", members)

    def difference_update(self, *others: Iterable[Any]) -> None:
        """Remove every element of the others: one SREM (SDIFFSTORE when all
        are RedisSets on this server)."""
        keys = self._keys_of(others)
        if keys is not None:
            if keys:
                self._run("SDIFFSTORE", self._key, self._key, *keys)
            return
        members = []
        for o in others:
            for v in self._plain(o):
                try:
                    members.append(encode(v))
                except TypeError:
                    pass
        if members:
            self._write_chunked("SREM", members)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        """Keep only the elements found in every other: one SINTERSTORE
        (RedisSets on this server) or one Lua script; atomic."""
        keys = self._keys_of(others)
        if keys is not None:
            if keys:
                self._run("SINTERSTORE", self._key, self._key, *keys)
            return
        if not others:
            return
        common = set(self._plain(others[0])).intersection(*map(self._plain, others[1:]))
        keep = []
        for v in common:
            try:
                keep.append(encode(v))
            except TypeError:
                pass
        self._eval(self._KEEP_ONLY, *keep)

    def symmetric_difference_update(self, other: Iterable[Any]) -> None:
        """Remove the elements of other that are members, add the others:
        one atomic Lua script."""
        if isinstance(other, RedisSet) and other._same_key(self):
            self.clear()
            return
        members = self._encode_members(set(self._plain(other)))
        if members:
            self._eval(self._TOGGLE, *members)

    def __ior__(self, other: Any) -> RedisSet:  # type: ignore[override]
        if not isinstance(other, Iterable):
            return NotImplemented
        self.update(other)
        return self

    def __iand__(self, other: Any) -> RedisSet:  # type: ignore[override]
        if not isinstance(other, Iterable):
            return NotImplemented
        self.intersection_update(other)
        return self

    def __isub__(self, other: Any) -> RedisSet:  # type: ignore[override]
        if not isinstance(other, Iterable):
            return NotImplemented
        if isinstance(other, RedisSet) and other._same_key(self):
            self.clear()
        else:
            self.difference_update(other)
        return self

    def __ixor__(self, other: Any) -> RedisSet:  # type: ignore[override]
        if not isinstance(other, Iterable):
            return NotImplemented
        self.symmetric_difference_update(other)
        return self
