"""Pure-Python twin of the key-routing hashes in ``pyredcache._core``
(csrc/hashing.c): ``crc32``, ``Crc32Buckets`` and ``KetamaRing``.

They route keys to shards as the routers of rc (fengsp/rc,
``rc/redis_router.py`` and ``rc/ketama.py``) do, so a cache sharded by rc
keeps its keys where they are.  This module is the reference for the C
code: both follow the rules below, and tests/test_hashing.py runs against
both.

Rules (shared with the C code):

* A key is a ``str`` (hashed as its UTF-8 bytes; a lone surrogate raises
  ``UnicodeEncodeError``), ``bytes`` or ``bytearray``; anything else raises
  ``TypeError`` naming the type.
* ``crc32(data)`` is the CRC-32 of zlib and IEEE 802.3 (reflected
  polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF), unsigned:
  ``zlib.crc32(data)``.
* ``Crc32Buckets(n).index(key)`` is rc's ``RedisCRC32HashRouter``: rc ran on
  Python 2, whose ``binascii.crc32`` returned a signed 32-bit int, so the
  CRC is read as signed (``c - 2**32`` if ``c >= 2**31``) and the bucket is
  that modulo n, with Python's floor modulo (0..n-1).  rc indexes its sorted
  host names with it.
* ``KetamaRing(names, weights)`` is rc's ``RedisConsistentHashRouter``
  (``rc.ketama.HashRing``).  Weights default to 1; with total their sum
  (added left to right as floats), node j gets
  ``ks = floor(40 * len(names) * w[j] / total)`` MD5 digests of
  ``b"<name>-<i>-salt"`` for i in range(ks), and each digest gives four
  points, its four little-endian 32-bit words.  ``index(key)`` takes h, the
  first little-endian word of MD5(key), and returns the node of the first
  point whose hash is greater than h (``bisect_right`` over the sorted
  hashes), or of the first point if there is none.
* A hash that points of several nodes share goes to the node that comes
  last in ``names``.  rc keeps its points in a dict filled node by node, so
  there the node written last wins; taking the nodes in the order of
  ``names`` gives the same rule.  (With 160 points a node such ties are
  rare, but not negligible on rings of hundreds of nodes.)
* Weights are read as floats (``float(w)``, correctly rounded), so rc's
  integer arithmetic is matched exactly while ``40 * len(names) * w`` stays
  below 2**53.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_right
from hashlib import md5
from typing import Any, Sequence

__all__ = ["Crc32Buckets", "KetamaRing", "crc32"]

_MAX_BUCKETS = 2**16  # see MAX_BUCKETS in csrc/hashing.c
_RING_FACTOR = 40  # points per node: 4 * floor(40 * len(names) * w / total)


def _key_bytes(key: Any, what: str = "key") -> bytes | bytearray:
    if isinstance(key, str):
        return str.encode(key, "utf-8")
    if isinstance(key, (bytes, bytearray)):
        return key
    raise TypeError(
        "%s must be str, bytes or bytearray, not %s" % (what, type(key).__name__)
    )


def _check_keys(keys: Any) -> Sequence[Any]:
    msg = "keys must be a sequence of str, bytes or bytearray keys, not %s" % (
        type(keys).__name__
    )
    if isinstance(keys, (str, bytes, bytearray)):
        raise TypeError(msg)
    if isinstance(keys, (list, tuple)):
        return keys
    try:
        it = iter(keys)
    except TypeError:
        raise TypeError(msg) from None
    return list(it)


def _partition(keys: Any, n: int, index: Any) -> list[tuple[list[int], list[Any]]]:
    """n tuples (positions, keys): keys[i] goes to tuple index(keys[i])."""
    out: list[tuple[list[int], list[Any]]] = [([], []) for _ in range(n)]
    for i, key in enumerate(_check_keys(keys)):
        positions, group = out[index(key)]
        positions.append(i)
        group.append(key)
    return out


def crc32(data: str | bytes | bytearray, /) -> int:
    """The CRC-32 of ``data`` (str, hashed as UTF-8, bytes or bytearray) as an
    unsigned int in 0..2**32-1: the CRC of zlib and IEEE 802.3, equal to
    ``zlib.crc32(data)``.  Raises ``TypeError`` for any other type."""
    return zlib.crc32(_key_bytes(data, "data"))


class Crc32Buckets:
    """Route keys to ``n`` buckets (an int in 1..65536) by CRC-32, as rc's
    ``RedisCRC32HashRouter`` does over its sorted host names: bucket =
    signed_crc32(key) mod n.

    Raises ``TypeError`` if n is not an int (bool is refused) and
    ``ValueError`` if it is out of range.  Immutable.
    """

    __slots__ = ("_n",)

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be int, not %s" % type(n).__name__)
        value = int.__index__(n)  # the int's value, whatever a subclass overrides
        if not 1 <= value <= _MAX_BUCKETS:
            raise ValueError("n must be in 1..%d, got %r" % (_MAX_BUCKETS, n))
        self._n = value

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("Crc32Buckets is not an acceptable base type")

    @property
    def n(self) -> int:
        """The number of buckets."""
        return self._n

    def index(self, key: str | bytes | bytearray, /) -> int:
        """The bucket (0..n-1) of ``key`` (str, bytes or bytearray): the CRC-32
        of its bytes read as a signed 32-bit int, modulo n (floor modulo).
        Raises ``TypeError`` for any other key type."""
        c = zlib.crc32(_key_bytes(key))
        if c >= 0x80000000:
            c -= 0x100000000
        return c % self._n

    def partition(
        self, keys: Sequence[str | bytes | bytearray], /
    ) -> list[tuple[list[int], list[Any]]]:
        """Split the sequence ``keys`` by bucket: a list of n tuples
        ``(positions, keys)``, one per bucket in order, where positions lists
        (increasing) the indexes into ``keys`` of the keys that go to that
        bucket and keys lists those key objects themselves.  Raises
        ``TypeError`` if keys is not a sequence (a str, bytes or bytearray is
        refused) or holds a key of another type."""
        return _partition(keys, self._n, self.index)

    def __repr__(self) -> str:
        return "Crc32Buckets(%d)" % self._n


def _weight_value(i: int, w: Any) -> float:
    if isinstance(w, float):
        value = float.__float__(w)
    elif isinstance(w, int) and not isinstance(w, bool):
        value = int.__float__(w)  # correctly rounded; OverflowError past floats
    else:
        raise TypeError("weights[%d] must be int or float, not %s" % (i, type(w).__name__))
    if not value > 0.0 or not math.isfinite(value):
        raise ValueError("weights[%d] must be a finite number > 0, got %r" % (i, w))
    return value


class KetamaRing:
    """A ketama consistent-hash ring over the nodes ``names`` (a non-empty
    sequence of unique str), as ``rc.ketama.HashRing`` behind rc's
    ``RedisConsistentHashRouter``.

    ``weights`` is None (all 1) or a sequence of one int or float > 0 per
    name; node j gets ``4 * floor(40 * len(names) * weights[j] /
    sum(weights))`` points, so ``len(ring)`` is ``160 * len(names)`` for
    equal weights.  A hash that points of several nodes share goes to the
    node that comes last in names (see the module docstring).

    Raises ``TypeError`` if names is not a sequence of str or a weight not an
    int or float, ``ValueError`` if names is empty or repeats a name, if the
    weights are not one per name, or a weight is not a finite number > 0,
    and ``UnicodeEncodeError`` for a name with a lone surrogate.  Immutable.
    """

    __slots__ = ("_names", "_hashes", "_nodes")

    def __init__(
        self, names: Sequence[str], weights: Sequence[int | float] | None = None
    ) -> None:
        msg = "names must be a sequence of str, not %s" % type(names).__name__
        if isinstance(names, (str, bytes, bytearray)):
            raise TypeError(msg)
        try:
            it = iter(names)
        except TypeError:
            raise TypeError(msg) from None
        given = list(it)
        if not given:
            raise ValueError("names must not be empty")
        if len(given) > _MAX_BUCKETS:
            raise ValueError("at most %d names, got %d" % (_MAX_BUCKETS, len(given)))
        checked = []
        seen = set()
        for i, name in enumerate(given):
            if not isinstance(name, str):
                raise TypeError("names[%d] must be str, not %s" % (i, type(name).__name__))
            name = str.__str__(name)  # an exact str, even from a subclass
            if name in seen:
                raise ValueError("duplicate name in names: %r" % (name,))
            seen.add(name)
            checked.append(name)
        n = len(checked)

        if weights is None:
            w = [1.0] * n
        else:
            wmsg = "weights must be a sequence of numbers or None, not %s" % (
                type(weights).__name__
            )
            if isinstance(weights, (str, bytes, bytearray)):
                raise TypeError(wmsg)
            try:
                wit = iter(weights)
            except TypeError:
                raise TypeError(wmsg) from None
            wlist = list(wit)
            if len(wlist) != n:
                raise ValueError(
                    "weights must have one weight per name: got %d weights for %d names"
                    % (len(wlist), n)
                )
            w = [_weight_value(i, x) for i, x in enumerate(wlist)]

        total = 0.0
        for x in w:  # left to right, not sum() (compensated on 3.12+)
            total += x
        ks = []
        for j in range(n):
            x = _RING_FACTOR * n * w[j] / total
            if not math.isfinite(total) or not math.isfinite(x):
                raise ValueError(
                    "weights are too large: 40 * len(names) * weight or the sum "
                    "of the weights is not a finite float"
                )
            ks.append(math.floor(x))
        if not any(ks):
            raise ValueError("the weights leave no point on the ring")
        points = []
        for j, name in enumerate(checked):
            prefix = name.encode("utf-8")  # every name, even one with no point
            for i in range(ks[j]):
                d = md5(prefix + b"-%d-salt" % i).digest()
                for l in range(4):
                    # (hash, -j): once sorted, the points of one hash start
                    # with the node that comes last in names.
                    points.append((int.from_bytes(d[4 * l:4 * l + 4], "little"), -j))
        points.sort()
        self._names = tuple(checked)
        self._hashes = [h for h, _ in points]
        self._nodes = [-j for _, j in points]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("KetamaRing is not an acceptable base type")

    @property
    def names(self) -> tuple[str, ...]:
        """The node names, a tuple of str, in the order given."""
        return self._names

    def __len__(self) -> int:
        """The number of points on the ring."""
        return len(self._hashes)

    def index(self, key: str | bytes | bytearray, /) -> int:
        """The index into ``names`` of the node that ``key`` (str, bytes or
        bytearray) goes to: the first point on the ring above the first
        little-endian 32-bit word of MD5(key), wrapping round, as
        ``rc.ketama.HashRing.get_node``.  Raises ``TypeError`` for any other
        key type."""
        h = int.from_bytes(md5(_key_bytes(key)).digest()[:4], "little")
        pos = bisect_right(self._hashes, h)
        if pos == len(self._hashes):
            pos = 0
        return self._nodes[pos]

    def partition(
        self, keys: Sequence[str | bytes | bytearray], /
    ) -> list[tuple[list[int], list[Any]]]:
        """Split the sequence ``keys`` by node: a list of ``len(names)`` tuples
        ``(positions, keys)``, one per node in the order of names, where
        positions lists (increasing) the indexes into ``keys`` of the keys
        that go to that node and keys lists those key objects themselves.
        Raises ``TypeError`` if keys is not a sequence (a str, bytes or
        bytearray is refused) or holds a key of another type."""
        return _partition(keys, len(self._names), self.index)

    def __repr__(self) -> str:
        return "<KetamaRing: %d nodes, %d points>" % (len(self._names), len(self._hashes))
