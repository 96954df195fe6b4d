"""The value codec: dumps()/loads() (docs/format.rst), on the C core and on
its pure twin.

* exact round trips (type and value), nested, nan, big ints, tz-aware times;
* byte-for-byte MessagePack for the types MessagePack has, both ways;
* hypothesis: loads(dumps(x)) == x, types kept; C and twin give identical
  bytes; canonical mode is independent of insertion order and of the hash
  seed of the process;
* hostile input: truncated, garbage, trailing bytes, bad UTF-8, unknown
  extension types, unhashable keys, 100,000 levels of nesting, declared
  lengths of 2**32 -- always SerializationError, never a crash or a huge
  allocation; C and twin fail the same way on mutated input;
* no leaks (CRAFT #19).
"""

from __future__ import annotations

import datetime
import decimal
import math
import os
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import uuid
import zoneinfo
from datetime import timedelta, timezone

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leakcheck import assert_no_leaks

import pyredcache._pure.codec as codec_py
from pyredcache import _compat
from pyredcache.exceptions import PyRedCacheError, SerializationError

MAX_DEPTH = 512
CANONICAL_NAN = b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"
HYPOTHESIS = settings(
    max_examples=300, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def codec(impl):
    """The module whose dumps/loads are under test: the C core, or the
    twin's codec (pyredcache._pure.codec)."""
    return impl if hasattr(impl, "dumps") else codec_py




def canon(x):
    """Canonical encoding by the reference: equal bytes mean equal types and
    values (the format tags every type), nan included."""
    return codec_py.dumps(x, canonical=True)


def assert_exact(a, b):
    """a and b are equal and of the same types all the way down."""
    assert canon(a) == canon(b)


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------

offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
    max_value=timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
)
zones = st.sampled_from(
    ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
).map(zoneinfo.ZoneInfo)
tzinfos = st.one_of(
    st.none(),
    st.builds(timezone, offsets),
    st.builds(timezone, offsets, st.text(max_size=8)),
    zones,
)
big_ints = st.one_of(
    st.integers(min_value=2**64, max_value=2**300),
    st.integers(min_value=-(2**300), max_value=-(2**63) - 1),
)
shared_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)


def scalars(nan=True):
    return st.one_of(
        st.none(), st.booleans(), shared_ints, big_ints,
        st.floats(allow_nan=nan), st.text(), st.binary(),
        st.datetimes(timezones=tzinfos), st.dates(), st.times(timezones=tzinfos),
        st.decimals(allow_nan=False), st.uuids(),
    )


def hashables(nan=True):
    return st.recursive(
        scalars(nan),
        lambda c: st.one_of(st.lists(c, max_size=4).map(tuple), st.frozensets(c, max_size=4)),
        max_leaves=8,
    )


def values(nan=True):
    return st.recursive(
        scalars(nan),
        lambda c: st.one_of(
            st.lists(c, max_size=5),
            st.lists(c, max_size=5).map(tuple),
            st.dictionaries(hashables(nan), c, max_size=5),
            st.sets(hashables(nan), max_size=5),
            st.frozensets(hashables(nan), max_size=5),
        ),
        max_leaves=20,
    )


shared_scalars = st.one_of(
    st.none(), st.booleans(), shared_ints, st.floats(allow_nan=False), st.text(), st.binary()
)
shared_values = st.recursive(
    shared_scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=6),
        st.dictionaries(st.one_of(st.text(), shared_ints, st.binary()), c, max_size=6),
    ),
    max_leaves=25,
)


# --------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------

UTC = timezone.utc
NY = zoneinfo.ZoneInfo("America/New_York")
SAMPLES = [
    None, True, False, 0, 1, -1, 127, 128, 255, 256, -32, -33, -128, -129,
    2**15, -(2**15) - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, 2**64 - 1,
    -(2**63), 2**64, -(2**63) - 1, 10**100, -(10**100), 2**64 * 255,
    0.0, -0.0, 1.5, -2.25e300, 5e-324, float("inf"), float("-inf"),
    "", "a", "é" * 40, "\U0001f600", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "x" * 70000,
    b"", b"\x00", b"x" * 255, b"x" * 256, b"x" * 70000,
    [], [1, [2, [3, []]]], list(range(16)), list(range(70000)),
    {}, {"a": 1}, {1: "a", "1": 1, b"1": 2.0, None: None, (1, 2): [3]},
    {i: str(i) for i in range(16)},
    (), (1,), (1, (2, (3,))), tuple(range(300)),
    set(), {1, "1", b"1"}, frozenset(), frozenset({(1, 2), frozenset({3})}),
    datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
    datetime.datetime(1, 1, 1), datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime.datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime.datetime(2024, 1, 2, tzinfo=timezone(-timedelta(hours=23, microseconds=1), "far")),
    datetime.datetime(2024, 1, 2, tzinfo=timezone(timedelta(0), "UTC")),
    datetime.datetime(2024, 11, 3, 1, 30, tzinfo=NY),
    datetime.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NY),
    datetime.datetime(2024, 11, 3, 1, 30, fold=1),
    datetime.date(1, 1, 1), datetime.date(2024, 2, 29), datetime.date(9999, 12, 31),
    datetime.time(), datetime.time(23, 59, 59, 999999), datetime.time(1, 2, 3, tzinfo=UTC),
    datetime.time(12, fold=1, tzinfo=timezone(timedelta(hours=-3), "BRT")),
    datetime.time(12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    decimal.Decimal("0"), decimal.Decimal("-0"), decimal.Decimal("1.10"),
    decimal.Decimal("-1E+999"), decimal.Decimal("Infinity"), decimal.Decimal("3.14159265358979323846264338327950288"),
    uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID("12345678-1234-5678-1234-567812345678"),
    [{"nested": ({1, 2}, frozenset({"x"}), [datetime.date(2020, 1, 1)])}, 2**70, -0.0],
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_round_trip_exact(codec, value):
    data = codec.dumps(value)
    assert type(data) is bytes
    back = codec.loads(data)
    assert type(back) is type(value)
    assert back == value
    assert_exact(back, value)
    if not isinstance(value, (set, frozenset)):
        # order (of dicts) and every float bit survive as well
        assert codec.dumps(back) == data


@pytest.mark.parametrize("canonical", [False, True])
def test_round_trip_tz_details(codec, canonical):
    named = timezone(timedelta(hours=2, microseconds=7), "Somewhere")
    for value in [
        datetime.datetime(2024, 5, 1, 12, tzinfo=named),
        datetime.time(8, 30, tzinfo=named),
        datetime.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NY),
    ]:
        back = codec.loads(codec.dumps(value, canonical=canonical))
        assert back.tzinfo == value.tzinfo
        assert type(back.tzinfo) is type(value.tzinfo)
        assert back.tzname() == value.tzname()
        assert back.utcoffset() == value.utcoffset()
        assert back.fold == value.fold
    back = codec.loads(codec.dumps(datetime.datetime(2024, 1, 1, tzinfo=UTC)))
    assert back.tzinfo is UTC
    back = codec.loads(codec.dumps(datetime.datetime(2024, 1, 1, tzinfo=NY)))
    assert back.tzinfo is NY  # ZoneInfo's cache: the same object


def test_nan_and_infinities(codec):
    for x in (float("nan"), float("inf"), float("-inf")):
        back = codec.loads(codec.dumps(x))
        assert type(back) is float
        assert (math.isnan(back) and math.isnan(x)) or back == x
    negative_nan = struct.unpack(">d", bytes.fromhex("fff8000000000001"))[0]
    assert math.isnan(negative_nan)
    # plain mode keeps every bit; canonical mode writes the one quiet NaN
    assert codec.dumps(negative_nan) == b"\xcb" + bytes.fromhex("fff8000000000001")
    assert codec.dumps(negative_nan, canonical=True) == CANONICAL_NAN
    assert codec.dumps(float("nan"), canonical=True) == CANONICAL_NAN
    assert codec.dumps([negative_nan, {1: float("nan")}], canonical=True) == (
        b"\x92" + CANONICAL_NAN + b"\x81\x01" + CANONICAL_NAN
    )


def test_decimal_nans(codec):
    for s in ("NaN", "-NaN", "sNaN", "NaN123"):
        back = codec.loads(codec.dumps(decimal.Decimal(s)))
        assert type(back) is decimal.Decimal
        assert str(back) == s


def test_known_answers(codec):
    """The format, pinned byte for byte (docs/format.rst gives the same
    examples)."""
    cases = [
        (None, "c0"), (True, "c3"), (False, "c2"), (-1, "ff"), (200, "ccc8"),
        (-200, "d1ff38"), (1.0, "cb3ff0000000000000"), ("\u00e9", "a2c3a9"), (b"\x01", "c40101"),
        ([1, "a"], "9201a161"), ({"a": 1}, "81a16101"),
        ((1, 2), "c70301920102"), ({7}, "d5029107"), (frozenset(), "d40390"),
        (2**64, "c70904010000000000000000"), (-(2**63) - 1, "c70904ff7fffffffffffffff"),
        (datetime.datetime(2024, 1, 2, 3, 4, 5, 6), "c70c0507e801020304050000060000"),
        (datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
         "c7140507e8010203040500000600010000000000000000"),
        (datetime.date(2024, 1, 2), "d60607e80102"),
        (datetime.time(3, 4, 5, 6), "d7070304050000060000"),
        (datetime.time(3, 4, tzinfo=timezone(timedelta(hours=-1), "X")),
         "c711070304000000000002ffffffff296c5c0058"),
        (datetime.time(3, 4, tzinfo=zoneinfo.ZoneInfo("UTC")), "c70b070304000000000003555443"),
        (decimal.Decimal("-1.50"), "c705082d312e3530"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"),
         "d80912345678123456781234567812345678"),
    ]
    for value, hexdata in cases:
        assert codec.dumps(value).hex() == hexdata, value
        assert_exact(codec.loads(bytes.fromhex(hexdata)), value)


# --------------------------------------------------------------------------
# MessagePack compatibility
# --------------------------------------------------------------------------


@HYPOTHESIS
@given(shared_values)
def test_msgpack_identical_both_ways(codec, value):
    data = codec.dumps(value)
    assert data == msgpack.packb(value, use_bin_type=True)
    assert msgpack.unpackb(data, raw=False, strict_map_key=False) == value
    back = codec.loads(msgpack.packb(value, use_bin_type=True))
    assert back == value
    assert_exact(back, value)


@pytest.mark.parametrize("hexdata, expected", [
    ("ca3fc00000", 1.5),                      # float32
    ("ca7f800000", float("inf")),
    ("cc05", 5), ("cd0005", 5), ("ce00000005", 5), ("cf0000000000000005", 5),  # non-minimal
    ("d0fb", -5), ("d1fffb", -5), ("d2fffffffb", -5), ("d3fffffffffffffffb", -5),
    ("d005", 5), ("d30000000000000005", 5),
    ("d90161", "a"), ("da000161", "a"), ("db0000000161", "a"),
    ("c50001ff", b"\xff"), ("c600000001ff", b"\xff"),
    ("dc000101", [1]), ("dd0000000101", [1]),
    ("de0001a16101", {"a": 1}), ("df00000001a16101", {"a": 1}),
    ("82a16101a16102", {"a": 2}),               # duplicate key: the last wins
    ("81c0c0", {None: None}), ("8101c2", {1: False}),
])
def test_loads_accepts_other_producers(codec, hexdata, expected):
    assert_exact(codec.loads(bytes.fromhex(hexdata)), expected)


def test_loads_msgpack_variants(codec):
    value = {"f": 0.25, "l": [1, 2.5, "x"], "b": b"yz"}
    assert codec.loads(msgpack.packb(value, use_single_float=True)) == value
    assert codec.loads(msgpack.packb((1, (2, 3)))) == [1, [2, 3]]  # msgpack tuples are arrays


# --------------------------------------------------------------------------
# hypothesis: round trips, canonical mode, C == twin
# --------------------------------------------------------------------------


@HYPOTHESIS
@given(values(nan=False))
def test_round_trip_property(codec, value):
    back = codec.loads(codec.dumps(value))
    assert back == value
    assert_exact(back, value)


@HYPOTHESIS
@given(values())
def test_round_trip_property_with_nan(codec, value):
    assert canon(codec.loads(codec.dumps(value))) == canon(value)
    assert canon(codec.loads(codec.dumps(value, canonical=True))) == canon(value)


@HYPOTHESIS
@given(values())
def test_c_and_twin_identical(both, value):
    c, py = both
    assert c.dumps(value) == py.dumps(value)
    assert c.dumps(value, canonical=True) == py.dumps(value, canonical=True)
    data = c.dumps(value)
    assert canon(c.loads(data)) == canon(py.loads(data))


@HYPOTHESIS
@given(st.dictionaries(hashables(), values(), max_size=8), st.sets(hashables(), max_size=8))
def test_canonical_ignores_order(codec, d, s):
    reordered = dict(reversed(list(d.items())))
    assert codec.dumps(reordered, canonical=True) == codec.dumps(d, canonical=True)
    rebuilt = set(reversed(list(s)))
    assert codec.dumps(rebuilt, canonical=True) == codec.dumps(s, canonical=True)
    assert canon(codec.loads(codec.dumps(d, canonical=True))) == canon(d)


def test_canonical_sorts_by_encoded_bytes(codec):
    d = {"b": 1, "a": 2, 10: 3, "aa": 4, (): 5}
    got = codec.dumps(d, canonical=True)
    entries = sorted(codec.dumps(k) + codec.dumps(v) for k, v in d.items())
    assert got == b"\x85" + b"".join(entries)
    assert got != codec.dumps(d)
    assert codec.loads(got) == d
    s = {"b", "a", 300, -1, "ab"}
    payload = b"\x95" + b"".join(sorted(codec.dumps(x) for x in s))
    assert codec.dumps(s, canonical=True) == bytes([0xC7, len(payload), 2]) + payload
    assert codec.dumps(frozenset(s), canonical=True) == bytes([0xC7, len(payload), 3]) + payload
    # tuples and lists keep their order
    assert codec.dumps(("b", "a"), canonical=True) == codec.dumps(("b", "a"))


CANON_SCRIPT = textwrap.dedent(
    """
    import sys
    from pyredcache import _compat
    from pyredcache._pure import codec as _codec_py
    mod = _compat.c_core if sys.argv[1] == "c" else _codec_py
    words = ["w%d" % i for i in range(200)]
    value = [set(words), frozenset(words[::-1]), {w: i for i, w in enumerate(words)},
             {frozenset(words[:5]): {"x", "y", "z"}}, float("nan")]
    sys.stdout.write(mod.dumps(value, canonical=True).hex())
    """
)


def test_canonical_equal_across_processes(codec):
    """str hashes differ per process (PYTHONHASHSEED), so set and dict
    orders do; canonical bytes must not."""
    impl_name = "c" if codec is _compat.c_core else "python"
    outs = set()
    for seed in ("1", "2", "3"):
        out = subprocess.run(
            [sys.executable, "-c", CANON_SCRIPT, impl_name],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert out.returncode == 0, out.stderr
        outs.add(out.stdout)
    assert len(outs) == 1


# --------------------------------------------------------------------------
# encoding errors
# --------------------------------------------------------------------------


class Foo:
    pass


class MyInt(int):
    pass


class MyDict(dict):
    pass


class OtherTZ(datetime.tzinfo):
    def utcoffset(self, dt):
        return timedelta(0)


@pytest.mark.parametrize("value, name", [
    (Foo(), "Foo"), (MyInt(1), "MyInt"), (MyDict(), "MyDict"), (bytearray(b"x"), "bytearray"),
    (memoryview(b"x"), "memoryview"), (object(), "object"), (len, "builtin_function_or_method"),
    (timedelta(1), "timedelta"), ([1, {"k": (2, Foo())}], "Foo"), ({Foo(): 1}, "Foo"),
    ({1, 2, frozenset({Foo()})}, "Foo"), (complex(1, 2), "complex"),
])
def test_dumps_refuses_unsupported_types(codec, value, name):
    with pytest.raises(SerializationError) as info:
        codec.dumps(value)
    assert str(info.value) == "cannot serialize object of type %r" % name
    with pytest.raises(SerializationError):
        codec.dumps(value, canonical=True)


def test_dumps_refuses_other_tzinfo(codec):
    for value in (datetime.datetime(2024, 1, 1, tzinfo=OtherTZ()),
                  datetime.time(1, tzinfo=OtherTZ()),
                  [datetime.datetime(2024, 1, 1, tzinfo=OtherTZ())]):
        with pytest.raises(SerializationError) as info:
            codec.dumps(value)
        assert str(info.value) == (
            "cannot serialize tzinfo of type 'OtherTZ': only datetime.timezone and "
            "zoneinfo.ZoneInfo (made from a key) are supported"
        )


def test_dumps_refuses_zoneinfo_without_key(codec):
    import io
    tz = zoneinfo.ZoneInfo.from_file(io.BytesIO(_utc_tzif()))
    assert tz.key is None
    with pytest.raises(SerializationError, match="tzinfo of type 'ZoneInfo'"):
        codec.dumps(datetime.datetime(2024, 1, 1, tzinfo=tz))


def _utc_tzif():
    """A minimal TZif v1 file for UTC."""
    header = b"TZif" + b"\x00" * 16
    counts = struct.pack(">6l", 0, 0, 0, 0, 1, 4)  # isutc, isstd, leap, time, type, char
    return header + counts + struct.pack(">lBB", 0, 0, 0) + b"UTC\x00"


def test_dumps_refuses_surrogates(codec):
    for value in ("\ud800", ["ok", {"k": "a\udfffb"}], datetime.datetime(
            2024, 1, 1, tzinfo=timezone(timedelta(0), "\ud800"))):
        with pytest.raises(SerializationError, match="surrogates not allowed") as info:
            codec.dumps(value)
        assert isinstance(info.value.__cause__, UnicodeEncodeError)


def nested_list(levels):
    x = []
    for _ in range(levels - 1):
        x = [x]
    return x


def test_dumps_depth_limit(codec):
    ok = nested_list(MAX_DEPTH)
    assert codec.loads(codec.dumps(ok)) == ok
    for value in (nested_list(MAX_DEPTH + 1), nested_list(100_000)):
        with pytest.raises(SerializationError, match="nesting deeper than 512 levels"):
            codec.dumps(value)
    d = {}
    for _ in range(100_000):
        d = {0: d}
    with pytest.raises(SerializationError, match="nesting deeper"):
        codec.dumps(d, canonical=True)
    t = ()
    for _ in range(100_000):
        t = (t,)
    with pytest.raises(SerializationError, match="nesting deeper"):
        codec.dumps(t)


def test_dumps_self_reference(codec):
    a = []
    a.append(a)
    with pytest.raises(SerializationError, match="nesting deeper"):
        codec.dumps(a)
    d = {}
    d["d"] = d
    with pytest.raises(SerializationError, match="nesting deeper"):
        codec.dumps(d, canonical=True)


def test_dumps_arguments(codec):
    assert codec.dumps(1, True) == codec.dumps(1, canonical=True)
    assert codec.dumps({"b": 1, "a": 2}, canonical=1) == codec.dumps({"a": 2, "b": 1}, canonical=True)
    with pytest.raises(TypeError):
        codec.dumps()
    with pytest.raises(TypeError):
        codec.dumps(1, canonical=True, other=1)
    with pytest.raises(TypeError):
        codec.loads()
    with pytest.raises(PyRedCacheError):  # SerializationError is one
        codec.dumps(Foo())


# --------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------

U32 = b"\xff\xff\xff\xff"

HOSTILE = [
    ("empty", b"", "truncated data at offset 0"),
    ("c1", b"\xc1", "invalid type byte 0xc1 at offset 0"),
    ("c1 inside", b"\x92\x01\xc1", "invalid type byte 0xc1 at offset 2"),
    ("trailing", b"\xc0\xc0", "1 trailing bytes after the value at offset 1"),
    ("trailing garbage", b"\x01garbage", "7 trailing bytes"),
    ("truncated uint64", b"\xcf\x00\x00", "truncated data at offset 0"),
    ("truncated float", b"\xcb\x00", "truncated data"),
    ("truncated float32", b"\xca\x00", "truncated data"),
    ("truncated str", b"\xa5abc", "truncated data"),
    ("truncated str8 header", b"\xd9", "truncated data"),
    ("truncated array", b"\x93\x01\x02", "truncated data at offset 0"),
    ("truncated array item", b"\x92\x01\xcd\x01", "truncated data at offset 2"),
    ("truncated map", b"\x82\x01\x02\x03", "truncated data"),
    ("truncated ext", b"\xd6\x06\x00", "truncated data"),
    ("truncated ext header", b"\xc8\x00", "truncated data"),
    ("str32 2**32-1", b"\xdb" + U32 + b"abc", "truncated data at offset 0"),
    ("bin32 2**32-1", b"\xc6" + U32 + b"abc", "truncated data at offset 0"),
    ("array32 2**32-1", b"\xdd" + U32 + b"\xc0" * 8, "truncated data at offset 0"),
    ("map32 2**32-1", b"\xdf" + U32 + b"\xc0" * 8, "truncated data at offset 0"),
    ("ext32 2**32-1", b"\xc9" + U32 + b"\x01" + b"\x90", "truncated data at offset 0"),
    ("array16 one too many", b"\xdc\x00\x03\x01\x02", "truncated data at offset 0"),
    ("map with odd bytes", b"\x82\x01\x02\x03", "truncated data"),
    ("bin8 longer", b"\xc4\x05abcd", "truncated data"),
    ("invalid utf8", b"\xa2\xff\xfe", "invalid str at offset 0: 'utf-8' codec can't decode"),
    ("utf8 surrogate", b"\xa3\xed\xa0\x80", "invalid str at offset 0"),
    ("overlong utf8", b"\xa2\xc0\x80", "invalid str at offset 0"),
    ("invalid utf8 str32", b"\xdb\x00\x00\x00\x01\x80", "invalid str"),
    ("unknown ext 10", b"\xd4\x0a\x00", "unknown extension type 10 at offset 0"),
    ("unknown ext 0", b"\xd4\x00\x00", "unknown extension type 0"),
    ("timestamp ext -1", b"\xd6\xff\x00\x00\x00\x00", "unknown extension type -1"),
    ("unknown ext 127", b"\xc7\x00\x7f", "unknown extension type 127"),
    ("unhashable key list", b"\x81\x90\xc0", "unhashable map key of type 'list' at offset 1"),
    ("unhashable key dict", b"\x81\x80\xc0", "unhashable map key of type 'dict'"),
    ("unhashable key set", b"\x81\xd4\x02\x90\xc0", "unhashable map key of type 'set'"),
    ("unhashable key in tuple", b"\x81\xd5\x01\x91\x90\xc0", "unhashable map key of type 'tuple'"),
    ("unhashable set item", b"\xd5\x02\x91\x90", "unhashable set item of type 'list' at offset 3"),
    ("unhashable frozenset item", b"\xd5\x03\x91\x80", "unhashable set item of type 'dict'"),
    ("tuple not array", b"\xd4\x01\x01", "invalid tuple payload at offset 0: not an array"),
    ("tuple empty", b"\xc7\x00\x01", "invalid tuple payload at offset 0: not an array"),
    ("tuple trailing", b"\xd5\x01\x90\x01", "invalid tuple payload at offset 0: trailing bytes"),
    ("tuple count too big", b"\xd5\x01\x92\x01", "invalid tuple payload at offset 0: truncated"),
    ("tuple array32 2**32-1", b"\xc7\x05\x01\xdd" + U32, "invalid tuple payload at offset 0: truncated"),
    ("tuple item beyond payload", b"\xd5\x01\x91\xa1" + b"a", "truncated data at offset 3"),
    ("set trailing", b"\xd5\x02\x90\xc0", "invalid set payload"),
    ("bigint empty", b"\xc7\x00\x04", "invalid big int payload at offset 0: empty"),
    ("bigint small", b"\xd4\x04\x05", "fits a MessagePack int"),
    ("bigint uint64 range", b"\xc7\x09\x04\x00" + b"\xff" * 8, "fits a MessagePack int"),
    ("bigint not minimal +", b"\xc7\x0a\x04\x00\x00" + b"\xff" * 8, "not minimal"),
    ("bigint not minimal -", b"\xc7\x0a\x04\xff\xff" + b"\x00" * 8, "not minimal"),
    ("date short", b"\xd5\x06\x07\xe8", "invalid date payload at offset 0: wrong length"),
    ("date zero year", b"\xd6\x06\x00\x00\x01\x01", "invalid date payload at offset 0: year 0 is out of range"),
    ("date bad month", b"\xd6\x06\x07\xe8\x0d\x01", "month must be in 1..12"),
    ("date feb 30", b"\xd6\x06\x07\xe8\x02\x1e", "day is out of range for month"),
    ("datetime short", b"\xd7\x05" + b"\x07\xe8\x01\x01\x00\x00\x00\x00", "invalid datetime payload at offset 0: too short"),
    ("datetime hour 24", b"\xc7\x0c\x05\x07\xe8\x01\x01\x18\x00\x00\x00\x00\x00\x00\x00", "hour must be in 0..23"),
    ("datetime usec", b"\xc7\x0c\x05\x07\xe8\x01\x01\x00\x00\x00\x0f\x42\x40\x00\x00", "microsecond must be in 0..999999"),
    ("datetime fold 2", b"\xc7\x0c\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x02\x00", "fold must be either 0 or 1"),
    ("datetime tz tag", b"\xc7\x0c\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x09", "unknown tzinfo tag 9"),
    ("datetime naive trailing", b"\xc7\x0d\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", "trailing bytes"),
    ("datetime offset short", b"\xc7\x0d\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00", "wrong tzinfo length"),
    ("datetime offset 24h", b"\xc7\x14\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01"
     + (86_400_000_000).to_bytes(8, "big"), "offset must be a timedelta strictly between"),
    ("datetime offset huge", b"\xc7\x14\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01"
     + b"\x80" + b"\x00" * 7, "offset must be a timedelta"),
    ("datetime tz name utf8", b"\xc7\x15\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x02"
     + b"\x00" * 8 + b"\xff", "invalid datetime payload at offset 0: 'utf-8' codec can't decode"),
    ("zoneinfo traversal", b"\xc7\x10\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x03../x",
     "invalid datetime payload at offset 0: ZoneInfo keys"),
    ("zoneinfo absolute", b"\xc7\x16\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x03/etc/passwd",
     "invalid datetime payload"),
    ("zoneinfo unknown", b"\xc7\x14\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x03No/Where",
     "invalid datetime payload at offset 0: 'No time zone found with key No/Where'"),
    ("zoneinfo empty", b"\xc7\x0c\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x03",
     "invalid datetime payload"),
    ("zoneinfo nul", b"\xc7\x0e\x05\x07\xe8\x01\x01\x00\x00\x00\x00\x00\x00\x00\x03U\x00",
     "invalid datetime payload"),
    ("time short", b"\xd6\x07\x00\x00\x00\x00", "invalid time payload at offset 0: too short"),
    ("time minute 60", b"\xd7\x07\x00\x3c\x00\x00\x00\x00\x00\x00", "minute must be in 0..59"),
    ("decimal garbage", b"\xc7\x03\x08abc", "invalid decimal payload at offset 0: [<class 'decimal.ConversionSyntax'>]"),
    ("decimal utf8", b"\xd4\x08\xff", "invalid decimal payload at offset 0: 'utf-8' codec"),
    ("uuid short", b"\xd6\x09\x00\x00\x00\x00", "invalid uuid payload at offset 0: wrong length"),
    ("nested offset", b"\x92\x01\xd4\x0a\x00", "unknown extension type 10 at offset 2"),
]


@pytest.mark.parametrize("name, data, message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input(codec, name, data, message):
    with pytest.raises(SerializationError) as info:
        codec.loads(data)
    assert message in str(info.value)
    for wrapped in (bytearray(data), memoryview(data)):
        with pytest.raises(SerializationError):
            codec.loads(wrapped)


def _nested_ext_tuples(levels):
    data = b"\x90"
    for _ in range(levels - 1):
        payload = b"\x91" + data
        n = len(payload)
        if n <= 0xFF:
            data = bytes([0xC7, n, 1]) + payload
        elif n <= 0xFFFF:
            data = b"\xc8" + n.to_bytes(2, "big") + b"\x01" + payload
        else:
            data = b"\xc9" + n.to_bytes(4, "big") + b"\x01" + payload
    return bytes([0xC7, len(data) + 1, 1]) + b"\x91" + data if len(data) + 1 <= 0xFF else data


@pytest.mark.parametrize("kind", ["array", "array16", "map", "map-value", "tuple", "mixed"])
def test_hostile_nesting(codec, kind):
    levels = 100_000
    if kind == "array":
        data = b"\x91" * levels + b"\xc0"
    elif kind == "array16":
        data = b"\xdc\x00\x01" * levels + b"\xc0"
    elif kind == "map":
        data = b"\x81\xc0" * levels + b"\xc0"
    elif kind == "map-value":
        data = b"\x81\x01" * levels + b"\x01"
    elif kind == "tuple":
        data = _nested_ext_tuples(2000)
    else:
        data = b"\x91\x81\x01" * (levels // 2) + b"\xc0"
    with pytest.raises(SerializationError, match="nesting deeper than 512 levels at offset"):
        codec.loads(data)


def test_depth_limit_exact(codec):
    assert codec.loads(b"\x91" * (MAX_DEPTH - 1) + b"\x90") == nested_list(MAX_DEPTH)
    with pytest.raises(SerializationError, match="nesting deeper than 512 levels at offset 512"):
        codec.loads(b"\x91" * MAX_DEPTH + b"\x90")
    t = ()
    for _ in range(MAX_DEPTH - 1):
        t = (t,)
    assert codec.loads(codec.dumps(t)) == t
    with pytest.raises(SerializationError, match="nesting deeper"):
        codec.dumps((t,))


@pytest.mark.parametrize("data", [
    b"\xdd" + U32, b"\xdf" + U32, b"\xdb" + U32, b"\xc6" + U32, b"\xc9" + U32 + b"\x01",
    b"\xdd\x7f\xff\xff\xff" + b"\x90" * 1000, b"\xdf\x7f\xff\xff\xff" + b"\x90" * 1000,
    b"\xc7\x05\x02\xdd" + U32, b"\x91" * 100 + b"\xdd" + U32,
])
def test_huge_declared_lengths_allocate_nothing(codec, data):
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError, match="truncated"):
            codec.loads(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_loads_buffers(codec):
    value = {"a": [1, 2.5, b"x", "y"], "t": (1, 2)}
    data = codec.dumps(value)
    for buf in (data, bytearray(data), memoryview(data), memoryview(b"--" + data)[2:]):
        assert codec.loads(buf) == value
    import array
    assert codec.loads(array.array("B", data)) == value
    ba = bytearray(data)
    codec.loads(ba)
    ba.extend(b"x")  # the buffer was released
    with pytest.raises(SerializationError):
        codec.loads(ba)
    ba.extend(b"y")  # released after an error too
    with pytest.raises(BufferError):
        codec.loads(memoryview(data)[::2])
    for bad in ("text", 1, None, [1]):
        with pytest.raises(TypeError, match="bytes-like object"):
            codec.loads(bad)


def test_decode_errors_are_chained(codec):
    with pytest.raises(SerializationError) as info:
        codec.loads(b"\xa2\xff\xfe")
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
    with pytest.raises(SerializationError) as info:
        codec.loads(b"\x81\x90\xc0")
    assert isinstance(info.value.__cause__, TypeError)


def _mutations(data, rnd):
    s = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.random()
        if op < 0.4 and s:
            s[rnd.randrange(len(s))] = rnd.randrange(256)
        elif op < 0.6 and s:
            i = rnd.randrange(len(s))
            del s[i:i + rnd.randint(1, 5)]
        elif op < 0.8:
            s.insert(rnd.randint(0, len(s)), rnd.randrange(256))
        else:
            s = s[:rnd.randint(0, len(s))]
    return bytes(s)


def _outcome(mod, data):
    try:
        return "ok", canon(mod.loads(data))
    except SerializationError as exc:
        return "error", str(exc)


def test_c_and_twin_fail_alike_on_mutated_input(both):
    """Differential fuzzing: 20,000 mutations of valid encodings decode to
    the same value or fail with the same SerializationError message."""
    import random
    c, py = both
    rnd = random.Random(1234)
    seeds = [py.dumps(v) for v in SAMPLES if not isinstance(v, (list, bytes, str)) or len(v) < 1000]
    seeds.append(py.dumps(SAMPLES[-1]))
    decoded = 0
    for _ in range(20_000):
        data = _mutations(rnd.choice(seeds), rnd)
        a = _outcome(c, data)
        assert a == _outcome(py, data), data.hex()
        decoded += a[0] == "ok"
    assert decoded > 1000  # the mutations reach the decoders' insides


@pytest.mark.parametrize("tail", [
    b"\xdf" + U32, b"\xdd" + U32, b"\xde\x00\x05\x01", b"\xdc\x00\x02\x01",
    b"\xc7\x05\x02\xdd" + U32, b"\xd5\x01\x91\x90", b"\xd4\x01\x01", b"\xc1",
    b"\x81\x90\x01", b"\x90", b"\x80", b"\xd4\x03\x90", b"",
])
@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH])
def test_c_and_twin_fail_alike_at_the_depth_limit(both, depth, tail):
    c, py = both
    data = b"\x91" * depth + tail
    assert _outcome(c, data) == _outcome(py, data)


@HYPOTHESIS
@given(st.binary(max_size=64))
def test_random_bytes(both, data):
    c, py = both
    assert _outcome(c, data) == _outcome(py, data)


# --------------------------------------------------------------------------
# leaks (CRAFT #19)
# --------------------------------------------------------------------------

LEAK_SCRIPT = textwrap.dedent(
    """
    import datetime, decimal, gc, sys, tracemalloc, uuid, zoneinfo
    from pyredcache import _compat
    from pyredcache._pure import codec as _codec_py
    from pyredcache.exceptions import SerializationError
    mod = _compat.c_core if sys.argv[1] == "c" else _codec_py

    key = "key-" + "x" * 20
    inner = [1, 2.5, "s", b"b", None, True, 2**80, -(2**70)]
    value = {
        key: inner, "t": (1, (2, 3)), "s": {1, 2, "x"}, "f": frozenset({"a", (1, 2)}),
        "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, 6,
                                tzinfo=datetime.timezone(datetime.timedelta(hours=1), "X")),
        "zi": datetime.datetime(2024, 1, 2, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        "d": datetime.date(2024, 1, 2), "tm": datetime.time(1, 2, tzinfo=datetime.timezone.utc),
        "dec": decimal.Decimal("1.25"), "u": uuid.UUID(int=12345), "n": float("nan"),
        ("k", 1): {"nested": [{"deep": [1, 2, 3]}]},
    }
    class Foo: pass
    foo = Foo()
    bad_inputs = [b"\\xc1", b"\\x81\\x90\\xc0", b"\\xa2\\xff\\xfe", b"\\xdd\\xff\\xff\\xff\\xff",
                  b"\\x91" * 600 + b"\\xc0", b"\\xc7\\x03\\x08abc", b"\\x92\\x01", b"\\xd5\\x02\\x91\\x90",
                  b"\\xd6\\x06\\x00\\x00\\x01\\x01", b"\\x01\\x02"]
    bad_values = [foo, [1, {2: foo}], "\\ud800", {frozenset([foo]): 1}]
    data = mod.dumps(value)

    def once():
        d = mod.dumps(value)
        c = mod.dumps(value, canonical=True)
        mod.loads(d)
        mod.loads(bytearray(c))
        mod.loads(memoryview(d))
        for b in bad_inputs:
            try:
                mod.loads(b)
            except SerializationError:
                pass
        for v in bad_values:
            try:
                mod.dumps(v, canonical=True)
            except SerializationError:
                pass

    def refs():
        return [sys.getrefcount(o) for o in (value, key, inner, foo, data, Foo, inner[-1])]

    """
)


def test_no_leaks(codec):
    assert_no_leaks(LEAK_SCRIPT, "c" if codec is _compat.c_core else "python")
