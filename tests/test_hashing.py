"""Key-routing hashes (crc32, Crc32Buckets, KetamaRing), on the C core and
on its pure twin.

They must route keys exactly as rc's routers did (fengsp/rc,
rc/redis_router.py and rc/ketama.py), so the reference here is a plain
transcription of rc's algorithms (RcCRC32Router, RcHashRing below), written
from rc's description with zlib, hashlib and bisect, and independent of
both implementations.  The rules are stated in pyredcache/_pure/hashing.py's
module docstring.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import math
import random
import struct
import textwrap
import zlib
from bisect import bisect

import pytest
from leakcheck import assert_no_leaks

from pyredcache import _compat
from pyredcache._pure import hashing as _hashing_py


def host_name(i: int, host: str = "localhost") -> str:
    """A node name as rc's ring saw its hosts: the repr of a HostConfig."""
    return "<HostConfig db=0 host=%s port=%d unix_socket_path=None>" % (host, 6379 + i)


class RcCRC32Router:
    """rc's RedisCRC32HashRouter: Python 2's binascii.crc32 was signed."""

    def __init__(self, host_names):
        self.sorted_names = sorted(host_names)

    def get_host_for_key(self, key):
        if isinstance(key, str):
            key = key.encode("utf-8")
        signed = struct.unpack("<i", struct.pack("<I", zlib.crc32(key)))[0]
        return self.sorted_names[signed % len(self.sorted_names)]


class RcHashRing:
    """rc.ketama.HashRing, transcribed: a dict hash -> node and the sorted
    list of every point's hash (duplicates kept), nodes in the given order."""

    def __init__(self, nodes, weights=None):
        self.nodes = list(nodes)
        self.weights = weights or {}
        self.ring = {}
        self.sorted_keys = []
        total_weight = 0
        for node in self.nodes:
            total_weight += self.weights.get(node, 1)
        for node in self.nodes:
            weight = self.weights.get(node, 1)
            ks = math.floor((40 * len(self.nodes) * weight) / total_weight)
            for i in range(int(ks)):
                k = hashlib.md5(("%s-%s-salt" % (node, i)).encode("utf-8")).digest()
                for l in range(4):
                    key = ((k[3 + l * 4] << 24) | (k[2 + l * 4] << 16)
                           | (k[1 + l * 4] << 8) | k[l * 4])
                    self.ring[key] = node
                    self.sorted_keys.append(key)
        self.sorted_keys.sort()

    def get_node(self, key):
        if isinstance(key, str):
            key = key.encode("utf-8")
        k = hashlib.md5(key).digest()
        h = (k[3] << 24) | (k[2] << 16) | (k[1] << 8) | k[0]
        pos = bisect(self.sorted_keys, h)
        if pos == len(self.sorted_keys):
            pos = 0
        return self.ring[self.sorted_keys[pos]]


def random_keys(seed: int, count: int) -> list:
    """str (ASCII and not), bytes and bytearray keys of 0..150 bytes or
    characters: short ones, and long ones that take several MD5 blocks."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789:_-"
    wide = "éüßøñλπжюя中文字キー€😀\x00\x7f\u0800\uffff"
    keys = []
    for i in range(count):
        n = rng.choice([0, 1, 3, 8, 20, 40, 55, 56, 63, 64, 65, 100, 150])
        kind = i % 5
        if kind == 0:
            keys.append("".join(rng.choice(alphabet) for _ in range(n)))
        elif kind == 1:
            keys.append("".join(rng.choice(alphabet + wide) for _ in range(n)))
        elif kind == 2:
            keys.append(bytes(rng.getrandbits(8) for _ in range(n)))
        elif kind == 3:
            keys.append("user:%d:profile" % rng.getrandbits(40))
        else:
            keys.append(bytearray(rng.getrandbits(8) for _ in range(n)))
    return keys




# ---------------------------------------------------------------------------
# crc32 and Crc32Buckets


def test_rc_crc32_router_example(impl):
    # rc's tests/test_redis_router.py, three hosts 0, 1, 2.
    buckets = impl.Crc32Buckets(3)
    assert buckets.n == 3
    assert [buckets.index(k) for k in ("c", "g", "a")] == [0, 1, 2]
    assert [buckets.index(k) for k in (b"c", b"g", bytearray(b"a"))] == [0, 1, 2]
    # 'a' is where the signed CRC matters: unsigned, it would go to 0.
    assert zlib.crc32(b"a") % 3 == 0


def test_crc32_equals_zlib(impl):
    rng = random.Random(1)
    samples = [b"", b"\x00", b"a", b"123456789", bytes(range(256)), b"\xff" * 1000,
               rng.randbytes(1 << 20)]
    samples += [rng.randbytes(rng.randrange(0, 3000)) for _ in range(300)]
    for data in samples:
        c = impl.crc32(data)
        assert type(c) is int
        assert c == zlib.crc32(data), data[:20]
        assert impl.crc32(bytearray(data)) == c
    assert impl.crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value
    for text in ("", "hello", "ключ", "中文", "😀" * 30, "é" * 500):
        assert impl.crc32(text) == zlib.crc32(text.encode("utf-8"))
    assert 0 <= impl.crc32(b"\xff" * 7) < 2**32


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 1000, 2**16])
def test_crc32_buckets_match_rc_router(impl, n):
    keys = random_keys(n, 2000)
    buckets = impl.Crc32Buckets(n)
    if n <= 64:
        names = ["host%03d" % i for i in range(n)]
        rc_router = RcCRC32Router(reversed(names))
        sorted_names = sorted(names)
        for key in keys:
            assert sorted_names[buckets.index(key)] == rc_router.get_host_for_key(key), key
    else:
        for key in keys:
            raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
            signed = struct.unpack("<i", struct.pack("<I", zlib.crc32(raw)))[0]
            assert buckets.index(key) == signed % n, key
    assert all(0 <= buckets.index(k) < n for k in keys)


def test_crc32_buckets_attributes(impl):
    b = impl.Crc32Buckets(n=7)
    assert b.n == 7 and repr(b) == "Crc32Buckets(7)"
    with pytest.raises(AttributeError):
        b.n = 8
    assert b.n == 7
    with pytest.raises(TypeError):
        type("Sub", (impl.Crc32Buckets,), {})


# ---------------------------------------------------------------------------
# KetamaRing


@pytest.mark.parametrize(
    "names, weights",
    [
        ([host_name(i) for i in range(3)], None),
        ([host_name(i) for i in range(5)], None),
        ([host_name(i, "10.0.0.%d" % i) for i in range(8)], None),
        ([host_name(i) for i in range(4)], [1, 2, 3, 4]),
        ([host_name(i) for i in range(3)], [1, 1, 1.5]),
        (["node01", "node02", "node03", "node04"], [0.3, 1.7, 2, 5]),
        (["only"], None),
    ],
)
def test_ketama_matches_rc_hashring(impl, names, weights):
    ring = impl.KetamaRing(names, weights)
    ref = RcHashRing(names, None if weights is None else dict(zip(names, weights)))
    assert ring.names == tuple(names)
    assert len(ring) == len(ref.sorted_keys)
    keys = ["key-%d" % i for i in range(1000)] + random_keys(len(names), 1000)
    for key in keys:
        assert ring.names[ring.index(key)] == ref.get_node(key), key
    # rc's own test: every node gets keys.
    if weights is None:
        assert {ring.index("key-%d" % i) for i in range(1000)} == set(range(len(names)))


def md5_word0(key: bytes) -> int:
    return struct.unpack("<I", hashlib.md5(key).digest()[:4])[0]


@pytest.fixture(scope="module")
def big_ring():
    """1000 nodes: 160,000 points, a few 32-bit hashes shared by two nodes."""
    names = ["n%d" % i for i in range(1000)]
    return names, RcHashRing(names)


def test_ketama_key_on_a_point_goes_to_the_next_point(impl, big_ring):
    # bisect_right: a key whose hash equals a point's hash goes past it.
    names, ref = big_ring
    points = set(ref.sorted_keys)
    for i in range(2_000_000):
        key = b"key-%d" % i
        h = md5_word0(key)
        if h in points:
            after = bisect(ref.sorted_keys, h) % len(ref.sorted_keys)
            if ref.ring[ref.sorted_keys[after]] != ref.ring[h]:
                break
    else:
        pytest.fail("no key hashes onto a point")
    ring = impl.KetamaRing(names)
    assert ref.get_node(key) == ref.ring[ref.sorted_keys[after]]
    assert names[ring.index(key)] == ref.get_node(key)
    assert names[ring.index(key)] != ref.ring[h]


def test_ketama_ties_go_to_the_node_last_in_names(impl, big_ring):
    names, ref = big_ring
    owners = {}
    for j, name in enumerate(names):
        for i in range(40):
            d = hashlib.md5(b"%s-%d-salt" % (name.encode(), i)).digest()
            for word in struct.unpack("<4I", d):
                owners.setdefault(word, set()).add(j)
    ties = {h: js for h, js in owners.items() if len(js) > 1}
    assert ties, "this ring is known to have shared hashes"
    # A key whose hash falls just below a shared hash lands on it.
    intervals = []
    for h in ties:
        i = ref.sorted_keys.index(h)
        intervals.append((ref.sorted_keys[i - 1] if i else -1, h))
    hits = {}
    for i in range(2_000_000):
        key = b"key-%d" % i
        w = md5_word0(key)
        for lo, h in intervals:
            if lo <= w < h and h not in hits:
                hits[h] = key
        if len(hits) == len(intervals):
            break
    assert len(hits) == len(intervals)

    ring = impl.KetamaRing(names)
    backwards = impl.KetamaRing(names[::-1])
    for h, key in hits.items():
        last = max(ties[h])
        assert ring.index(key) == last
        assert ref.get_node(key) == names[last]  # rc agrees
        # Reversed names: the other node is last, and wins.
        assert backwards.names[backwards.index(key)] == names[min(ties[h])]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 10, 57])
def test_ketama_len_is_160_per_node_for_equal_weights(impl, n):
    names = [host_name(i) for i in range(n)]
    assert len(impl.KetamaRing(names)) == 160 * n
    assert len(impl.KetamaRing(names, [3] * n)) == 160 * n
    assert len(impl.KetamaRing(names, [0.25] * n)) == 160 * n


@pytest.mark.parametrize(
    "weights",
    [[1, 2, 3, 4], [1, 1, 1.5], [10, 1], [0.1, 0.2, 0.7], [1e-9, 1, 1], [7, 7, 7, 1]],
)
def test_ketama_weighted_point_counts_follow_the_floor_formula(impl, weights):
    n = len(weights)
    names = ["w%d" % i for i in range(n)]
    total = 0
    for w in weights:
        total += w
    ks = [math.floor(40 * n * w / total) for w in weights]
    ring = impl.KetamaRing(names, weights)
    assert len(ring) == 4 * sum(ks)
    # The share of keys follows the share of points, roughly; a node
    # without points gets no key at all.
    counts = [len(pos) for pos, _ in ring.partition(["k%d" % i for i in range(20000)])]
    for c, k in zip(counts, ks):
        if k == 0:
            assert c == 0
        else:
            share = k / sum(ks)
            assert abs(c / 20000 - share) < 0.5 * share + 0.02, (counts, ks)


def test_ketama_weights_spread_keys(impl):
    ring = impl.KetamaRing(["light", "heavy"], [1, 3])
    assert len(ring) == 4 * (20 + 60)
    heavy = sum(ring.index("key:%d" % i) for i in range(10000)) / 10000
    assert 0.6 < heavy < 0.9


def test_ketama_removing_a_node_moves_only_its_keys(impl):
    names = [host_name(i) for i in range(4)]
    keys = ["session:%d" % i for i in range(8000)]
    full = impl.KetamaRing(names)
    before = [full.names[full.index(k)] for k in keys]
    for removed in names:
        ring = impl.KetamaRing([n for n in names if n != removed])
        after = [ring.names[ring.index(k)] for k in keys]
        moved = 0
        for b, a in zip(before, after):
            if b == removed:
                moved += 1
                assert a != removed
            else:
                assert a == b  # exact: the other nodes keep their points
        assert 0.1 < moved / len(keys) < 0.4  # about a quarter
    # Adding a node: a key stays or moves to the new node.
    grown = impl.KetamaRing(names + [host_name(4)])
    for k, b in zip(keys, before):
        assert grown.names[grown.index(k)] in (b, host_name(4))


def test_ketama_names_and_repr(impl):
    class S(str):
        pass

    ring = impl.KetamaRing(iter([S("a"), "b"]), weights=(1, 2))
    assert ring.names == ("a", "b")
    assert all(type(n) is str for n in ring.names)  # copied to exact str
    assert repr(ring) == "<KetamaRing: 2 nodes, %d points>" % len(ring)
    with pytest.raises(AttributeError):
        ring.names = ("c",)
    with pytest.raises(TypeError):
        type("Sub", (impl.KetamaRing,), {})
    # The garbage collector sees the names.
    assert any(r is ring.names for r in gc.get_referents(ring))


def test_signatures(impl):
    def params(f):
        return list(inspect.signature(f).parameters)

    assert params(impl.crc32) == ["data"]
    assert params(impl.Crc32Buckets) == ["n"]
    assert params(impl.KetamaRing) == ["names", "weights"]
    assert inspect.signature(impl.KetamaRing).parameters["weights"].default is None
    for obj in (impl.Crc32Buckets(2), impl.KetamaRing(["a"])):
        assert params(obj.index) == ["key"]
        assert params(obj.partition) == ["keys"]
        assert obj.index.__doc__ and obj.partition.__doc__


# ---------------------------------------------------------------------------
# partition


@pytest.mark.parametrize("kind", ["crc32", "ketama", "ketama-weighted"])
def test_partition(impl, kind):
    if kind == "crc32":
        router = impl.Crc32Buckets(5)
        nb = 5
    elif kind == "ketama":
        router = impl.KetamaRing([host_name(i) for i in range(4)])
        nb = 4
    else:
        router = impl.KetamaRing(["a", "b", "c"], [1, 5, 2.5])
        nb = 3
    keys = random_keys(7, 1500)
    parts = router.partition(keys)
    assert type(parts) is list and len(parts) == nb
    seen = []
    for bucket, part in enumerate(parts):
        assert type(part) is tuple and len(part) == 2
        positions, bucket_keys = part
        assert type(positions) is list and type(bucket_keys) is list
        assert positions == sorted(positions)
        assert len(positions) == len(bucket_keys)
        for p, k in zip(positions, bucket_keys):
            assert k is keys[p]  # the key object itself
            assert router.index(k) == bucket
        seen += positions
    assert sorted(seen) == list(range(len(keys)))
    assert sum(1 for pos, _ in parts if pos) > 1

    # Any sequence or iterable; the same answer.
    assert router.partition(tuple(keys)) == parts
    assert router.partition(k for k in keys) == parts
    empty = router.partition([])
    assert empty == [([], []) for _ in range(nb)]
    assert len({id(p[0]) for p in empty}) == nb  # fresh lists, not shared


def test_partition_keeps_duplicates_and_identity(impl):
    router = impl.Crc32Buckets(2)
    k = "same"
    parts = router.partition([k, k, b"same"])
    (pos, ks), = [p for p in parts if p[0]]
    assert pos == [0, 1, 2]  # str and its UTF-8 bytes route alike
    assert ks[0] is k and ks[1] is k and ks[2] == b"same"


# ---------------------------------------------------------------------------
# C == twin


def test_c_and_twin_agree_on_crc32_buckets(both):
    c, py = both
    keys = random_keys(42, 5000)
    for n in (1, 2, 3, 4, 7, 16, 255, 1021, 2**16):
        cb, pb = c.Crc32Buckets(n), py.Crc32Buckets(n)
        assert [cb.index(k) for k in keys] == [pb.index(k) for k in keys], n
        assert cb.partition(keys) == pb.partition(keys)
    assert [c.crc32(k) for k in keys] == [py.crc32(k) for k in keys]


@pytest.mark.parametrize(
    "names, weights",
    [
        ([host_name(i) for i in range(2)], None),
        ([host_name(i) for i in range(6)], None),
        (["α", "β", "γ", "δ"], [1, 2, 3, 4]),
        (["a", "b", "c"], [0.1, 0.25, 0.65]),
        ([host_name(i) for i in range(5)], [100, 1, 1, 1, 3.5]),
        (["n%d" % i for i in range(300)], None),
    ],
)
def test_c_and_twin_agree_on_ketama(both, names, weights):
    c, py = both
    cr, pr = c.KetamaRing(names, weights), py.KetamaRing(names, weights)
    assert len(cr) == len(pr) and cr.names == pr.names
    keys = random_keys(len(names), 4000)
    assert [cr.index(k) for k in keys] == [pr.index(k) for k in keys]
    assert cr.partition(keys) == pr.partition(keys)


# ---------------------------------------------------------------------------
# errors


def test_crc32_buckets_errors(impl):
    for n in (0, -1, 2**16 + 1, 2**31, 10**30):
        with pytest.raises(ValueError, match=r"n must be in 1\.\.65536, got %d" % n):
            impl.Crc32Buckets(n)
    for n, name in ((1.0, "float"), ("3", "str"), (True, "bool"), (None, "NoneType")):
        with pytest.raises(TypeError, match="n must be int, not %s" % name):
            impl.Crc32Buckets(n)
    with pytest.raises(TypeError):
        impl.Crc32Buckets()
    with pytest.raises(TypeError):
        impl.Crc32Buckets(1, 2)


def test_ketama_name_errors(impl):
    with pytest.raises(ValueError, match="names must not be empty"):
        impl.KetamaRing([])
    with pytest.raises(ValueError, match="duplicate name in names: 'a'"):
        impl.KetamaRing(["a", "b", "a"])
    with pytest.raises(TypeError, match="names\\[1\\] must be str, not int"):
        impl.KetamaRing(["a", 1])
    with pytest.raises(TypeError, match="names\\[0\\] must be str, not bytes"):
        impl.KetamaRing([b"a"])
    for bad, name in (("abc", "str"), (b"ab", "bytes"), (5, "int"), (None, "NoneType")):
        with pytest.raises(TypeError, match="names must be a sequence of str, not %s" % name):
            impl.KetamaRing(bad)
    with pytest.raises(UnicodeEncodeError):
        impl.KetamaRing(["ok", "\ud800"])


def test_ketama_weight_errors(impl):
    names = ["a", "b"]
    with pytest.raises(ValueError, match="got 1 weights for 2 names"):
        impl.KetamaRing(names, [1])
    with pytest.raises(ValueError, match="got 3 weights for 2 names"):
        impl.KetamaRing(names, [1, 2, 3])
    for bad in (0, -1, 0.0, -0.5, float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match=r"weights\[1\] must be a finite number > 0"):
            impl.KetamaRing(names, [1, bad])
    for bad, name in (("1", "str"), (None, "NoneType"), (True, "bool"), ([1], "list")):
        with pytest.raises(TypeError, match=r"weights\[0\] must be int or float, not %s" % name):
            impl.KetamaRing(names, [bad, 1])
    for bad, name in (("12", "str"), (3, "int")):
        msg = "weights must be a sequence of numbers or None, not %s" % name
        with pytest.raises(TypeError, match=msg):
            impl.KetamaRing(names, bad)
    with pytest.raises(ValueError, match="weights are too large"):
        impl.KetamaRing(names, [1e308, 1e308])
    with pytest.raises(OverflowError):
        impl.KetamaRing(names, [10**400, 1])


@pytest.mark.parametrize("kind", ["crc32", "ketama"])
def test_key_type_errors(impl, kind):
    router = impl.Crc32Buckets(3) if kind == "crc32" else impl.KetamaRing(["a", "b"])
    for bad, name in ((1, "int"), (None, "NoneType"), (1.5, "float"), (("a",), "tuple")):
        with pytest.raises(TypeError, match="key must be str, bytes or bytearray, not %s" % name):
            router.index(bad)
        with pytest.raises(TypeError, match="key must be str, bytes or bytearray, not %s" % name):
            router.partition(["a", b"b", bad])
    with pytest.raises(TypeError, match="key must be str, bytes or bytearray, not memoryview"):
        router.index(memoryview(b"a"))
    for bad, name in (("abc", "str"), (b"abc", "bytes"), (7, "int"), (None, "NoneType")):
        msg = "keys must be a sequence of str, bytes or bytearray keys, not %s" % name
        with pytest.raises(TypeError, match=msg):
            router.partition(bad)
    with pytest.raises(UnicodeEncodeError):
        router.index("bad \udc80 surrogate")
    with pytest.raises(TypeError):
        router.index()
    with pytest.raises(TypeError):
        router.index(key="a")


def test_crc32_errors(impl):
    for bad, name in ((1, "int"), (None, "NoneType"), (memoryview(b"x"), "memoryview")):
        with pytest.raises(TypeError, match="data must be str, bytes or bytearray, not %s" % name):
            impl.crc32(bad)
    with pytest.raises(UnicodeEncodeError):
        impl.crc32("\ud800")
    with pytest.raises(TypeError):
        impl.crc32(data=b"x")


def test_package_exports():
    for name in ("crc32", "Crc32Buckets", "KetamaRing"):
        assert name in _compat.py_core.__all__
        assert getattr(_compat.py_core, name) is getattr(_hashing_py, name)
        if _compat.c_core is not None:
            assert callable(getattr(_compat.c_core, name))


# ---------------------------------------------------------------------------
# leaks


LEAK_SCRIPT = textwrap.dedent(
    """
    import sys
    from pyredcache import _compat
    mod = _compat.c_core if sys.argv[1] == "c" else _compat.py_core
    names = ["<HostConfig db=0 host=h%d port=6379 unix_socket_path=None>" % i
             for i in range(3)]
    weights = [1, 2.5, 1]
    keys = ["key:%d" % i for i in range(40)] + [b"raw", bytearray(b"ba"),
                                                "ключ-é", "x" * 100]
    bad_keys = keys + [1]
    many = keys * 8  # positions past the small-int cache
    buckets = mod.Crc32Buckets(4)
    ring = mod.KetamaRing(names)
    Ring = mod.KetamaRing

    def once():
        r = Ring(names, weights)
        Ring(names[:1])
        for k in keys:
            r.index(k)
            buckets.index(k)
            mod.crc32(k)
        r.partition(many)
        ring.partition(tuple(keys))
        buckets.partition(many)
        buckets.partition(iter(keys))
        for bad in (1, None, "\\ud800"):
            try:
                ring.index(bad)
            except (TypeError, UnicodeEncodeError):
                pass
            try:
                mod.crc32(bad)
            except (TypeError, UnicodeEncodeError):
                pass
        for call in (lambda: ring.partition(bad_keys),
                     lambda: buckets.partition(bad_keys),
                     lambda: buckets.partition("abc"),
                     lambda: Ring(["a", "a"]),
                     lambda: Ring(["a", 1]),
                     lambda: Ring(["a", "\\ud800"]),
                     lambda: Ring(names, [1, 0, 1]),
                     lambda: Ring(names, [1, "x", 1]),
                     lambda: mod.Crc32Buckets(0),
                     lambda: mod.Crc32Buckets("x")):
            try:
                call()
            except (TypeError, ValueError):
                pass
        repr(r)
        len(r)
        r.names
        buckets.n

    def refs():
        return [sys.getrefcount(o) for o in
                (names, weights, keys, buckets, ring, Ring, keys[0], keys[-3],
                 names[0])]

    """
)


def test_no_leaks(impl):
    assert_no_leaks(LEAK_SCRIPT, impl.implementation)
