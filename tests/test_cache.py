"""Cache: the rc API and the decorator, on a real redis-server, over both
core implementations."""

from __future__ import annotations

import datetime
import decimal
import json
import logging
import os
import pickle
import re
import subprocess
import sys
import textwrap
import threading
import uuid

import msgpack
import pytest

from pyredcache import (
    NO_VALUE,
    Cache,
    ConnectionError,
    HostConfig,
    InvalidSignature,
    JSONSerializer,
    NativeSerializer,
    NullCache,
    PickleSerializer,
    SerializationError,
    SignedSerializer,
)


@pytest.fixture
def cache(impl, redis_server, redis_url):
    return Cache(redis_server.host, redis_server.port)


@pytest.fixture
def r(redis_server):
    return redis_server.client()


class CountingClient:
    """Wraps a Client and counts the calls that reach the server."""

    def __init__(self, client):
        self.client = client
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self.client, name)
        if name in ("execute_command", "pipeline_execute", "get", "mget", "delete"):
            def counted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)
            return counted
        return attr


# -- rc's quick start and the basic API -------------------------------------------


def test_rc_quickstart(cache):
    assert cache.set("key", "value")
    assert cache.get("key") == "value"
    assert cache.get("foo") is None
    assert cache.set("list", [1])
    assert cache.get("list") == [1]
    assert cache.get_many("key", "foo") == ["value", None]


def test_values_are_messagepack_by_default(cache, r):
    value = {"a": [1, 2.5, None, "x"], "b": b"\x00"}
    cache.set("k", value)
    assert msgpack.unpackb(r.get("k"), raw=False) == value


def test_native_values_round_trip_exactly(cache):
    value = {
        "t": (1, "2"), "s": {3, 4}, "f": frozenset({5}), "b": b"\xff", "big": 2**100,
        "d": decimal.Decimal("1.10"), "u": uuid.UUID(int=7), "n": float("inf"),
        "dt": datetime.datetime(2026, 11, 23, 9, 0, tzinfo=datetime.timezone.utc),
        1: None,
    }
    cache.set("k", value)
    got = cache.get("k")
    assert got == value
    assert type(got["t"]) is tuple and type(got["s"]) is set and type(got["f"]) is frozenset


def test_json_values(impl, redis_server, redis_url, r):
    c = Cache(redis_server.host, redis_server.port, serializer_cls=JSONSerializer)
    c.set("k", {"a": [1, 2.5, None, "x"]})
    assert json.loads(r.get("k")) == {"a": [1, 2.5, None, "x"]}
    assert c.get("k") == {"a": [1, 2.5, None, "x"]}


def test_none_is_a_value_and_no_value_tells_a_miss(cache):
    cache.set("n", None)
    assert cache.get("n", NO_VALUE) is None
    assert cache.get("missing", NO_VALUE) is NO_VALUE
    assert cache.get("missing", 5) == 5


def test_namespace_prefixes_every_key(impl, redis_server, redis_url, r):
    c = Cache(redis_server.host, redis_server.port, namespace="models:")
    c.set("a", 1)
    c.set_many({"b": 2, "c": 3})
    assert sorted(r.keys()) == [b"models:a", b"models:b", b"models:c"]
    assert c.get_many("a", "b", "c", "d") == [1, 2, 3, None]
    assert c.delete("a") is True
    assert c.delete_many("b", "c") is True
    assert r.keys() == []


def test_expiry(impl, redis_server, redis_url, r):
    c = Cache(redis_server.host, redis_server.port, default_expire=100)
    c.set("default", 1)
    c.set("one-hour", 1, expire=3600)
    c.set("fraction", 1, expire=2.5)
    c.set_many({"m": 1}, expire=50)
    assert 90 < r.ttl("default") <= 100
    assert 3590 < r.ttl("one-hour") <= 3600
    assert 2000 < r.pttl("fraction") <= 2500
    assert 40 < r.ttl("m") <= 50
    forever = Cache(redis_server.host, redis_server.port, default_expire=None)
    forever.set("p", 1)
    assert r.ttl("p") == -1


def test_default_expire_is_rcs_three_days(cache, r):
    cache.set("k", 1)
    assert 259100 < r.ttl("k") <= 259200


@pytest.mark.parametrize("expire", [0, -1, float("nan"), float("inf")])
def test_bad_expire(cache, expire):
    with pytest.raises(ValueError):
        cache.set("k", 1, expire=expire)


def test_bad_expire_type(cache):
    with pytest.raises(TypeError):
        cache.set("k", 1, expire="10")


def test_delete(cache):
    cache.set("k", 1)
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert cache.get("k") is None


def test_get_many_is_one_round_trip(cache):
    cache.set_many({"k%d" % i: i for i in range(50)})
    counting = CountingClient(cache.client)
    cache.__dict__["client"] = counting
    keys = ["k%d" % i for i in range(0, 60, 3)]
    assert cache.get_many(*keys) == [i if i < 50 else None for i in range(0, 60, 3)]
    assert counting.calls == ["mget"]


def test_set_many_is_one_round_trip(cache):
    counting = CountingClient(cache.client)
    cache.__dict__["client"] = counting
    assert cache.set_many({"a": 1, "b": [2], "c": None}) is True
    assert counting.calls == ["pipeline_execute"]
    assert cache.delete_many("a", "b", "c", "zz") is False
    assert counting.calls == ["pipeline_execute", "delete"]


def test_empty_batches_do_nothing(cache):
    counting = CountingClient(cache.client)
    cache.__dict__["client"] = counting
    assert cache.get_many() == []
    assert cache.set_many({}) is True
    assert cache.delete_many() is True
    assert counting.calls == []


def test_key_types(cache):
    cache.set(b"bk", 1)
    assert cache.get(b"bk") == 1
    with pytest.raises(TypeError):
        cache.set(1, 1)


def test_get_client_is_a_redis_py_client_for_the_same_server(cache, r):
    """rc's get_client() gives a client with the whole command set; the
    cache's own commands keep going through its C client."""
    import redis as redis_py

    client = cache.get_client()
    assert isinstance(client, redis_py.Redis)
    assert client is cache.get_client()  # made once
    assert client is not cache.client
    assert client.ping() is True
    assert client.incr("counter") == 1 and client.hset("h", "f", "v") == 1
    pipe = client.pipeline()
    pipe.incr("counter").get("counter")
    assert pipe.execute() == [2, b"2"]
    cache.set("shared", {"a": 1})
    assert client.exists(b"shared") == 1  # the same server and db
    assert cache.client.ping() is True and cache.client.execute_command("SET", "raw", "1") == b"OK"


def test_get_client_keeps_every_connection_setting(impl, redis_server):
    c = Cache(redis_server.host, redis_server.port, db=3, socket_timeout=0.75,
              socket_connect_timeout=0.5)
    kwargs = c.get_client().connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["socket_timeout"],
            kwargs["socket_connect_timeout"]) == (redis_server.host, redis_server.port, 3,
                                                   0.75, 0.5)
    unix = Cache(unix_socket_path=redis_server.unix_socket_path, db=1)
    assert unix.get_client().connection_pool.connection_kwargs["path"] == \
        redis_server.unix_socket_path
    unix.set("u", 1)
    assert unix.get_client().exists("u") == 1


# -- serialization errors -----------------------------------------------------------


class Unserializable:
    pass


def test_unencodable_value_raises_and_writes_nothing(cache, r):
    with pytest.raises(SerializationError, match="Unserializable"):
        cache.set("k", Unserializable())
    with pytest.raises(SerializationError, match="Unserializable"):
        cache.set_many({"a": 1, "b": Unserializable()})
    assert r.keys() == []


def test_undecodable_value_is_a_logged_miss(cache, r, caplog):
    r.set("k", b"\xff not a value")
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        assert cache.get("k") is None
        assert cache.get("k", NO_VALUE) is NO_VALUE
        assert cache.get_many("k", "missing") == [None, None]
    assert caplog.text.count("treating 'k' as a miss") == 1  # once per key


# What rc wrote with its default serializer (JSON): json.dumps() of values.
RC_ENTRIES = [{"a": 1}, [1, 2], "text", 123, 3.5, True, None]


def test_entries_rc_wrote_in_json_are_misses_for_the_native_codec(cache, r, caplog):
    """rc's default serializer was JSON; pyredcache's is the native codec.
    An entry rc left behind is a miss (logged once), never an exception
    from get(); a decorated function recomputes and overwrites it."""
    for i, value in enumerate(RC_ENTRIES):
        r.set("rc:%d" % i, json.dumps(value).encode())
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        for i in range(len(RC_ENTRIES)):
            assert cache.get("rc:%d" % i, NO_VALUE) is NO_VALUE, RC_ENTRIES[i]
        assert cache.get_many(*("rc:%d" % i for i in range(len(RC_ENTRIES)))) == \
            [None] * len(RC_ENTRIES)

    calls = []

    @cache.cache(key_prefix="rc-era")
    def load(n):
        calls.append(n)
        return {"n": n}

    key = load.__pyredcache__.builder((7,), {})
    r.set(key, json.dumps({"n": "stale, from rc"}).encode())
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        assert load(7) == {"n": 7}
    assert load(7) == {"n": 7} and calls == [7]  # overwritten: the second call hits
    assert cache.serializer.loads(r.get(key)) == {"n": 7}


def test_a_one_digit_json_integer_reads_as_another_integer(cache, r):
    """The exception docs/quickstart.rst states: JSON 5 is the byte 0x35, a
    MessagePack positive fixint (53)."""
    r.set("rc:digit", json.dumps(5).encode())
    assert cache.get("rc:digit") == 53


def test_an_rc_cache_keeps_its_entries_with_the_json_serializer(impl, redis_server, r):
    """What docs/quickstart.rst tells rc users: JSONSerializer reads rc's
    entries as they are."""
    cache = Cache(redis_server.host, redis_server.port, serializer_cls=JSONSerializer)
    for i, value in enumerate(RC_ENTRIES):
        r.set("rc:%d" % i, json.dumps(value).encode())
    assert [cache.get("rc:%d" % i, NO_VALUE) for i in range(len(RC_ENTRIES))] == RC_ENTRIES


@pytest.mark.parametrize("serializer", [NativeSerializer, JSONSerializer, PickleSerializer,
                                        lambda: SignedSerializer(PickleSerializer(), b"k" * 16)])
def test_every_serializer_loads_none_as_none(impl, serializer):
    """rc's serializers return None for None (a nil reply)."""
    assert serializer().loads(None) is None


def test_pickle_serializer(impl, redis_server, redis_url):
    c = Cache(redis_server.host, redis_server.port, serializer_cls=PickleSerializer)
    value = {"t": (1, 2), "s": {3}, "b": b"\x00"}
    c.set("k", value)
    assert c.get("k") == value


def test_native_serializer_is_the_default(cache, impl):
    assert isinstance(cache.serializer, NativeSerializer)
    assert cache.serializer.dumps is impl.dumps


# -- signed values ----------------------------------------------------------------------

KEY = b"0123456789abcdef-secret"


class CreatesFile:
    """Unpickling this would create a file: code run by pickle.loads."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def signed(impl, redis_server, redis_url):
    return Cache(redis_server.host, redis_server.port,
                 serializer_cls=SignedSerializer(PickleSerializer(), KEY))


def test_signed_round_trip(signed, r):
    signed.set("k", {"x": (1, 2)})
    assert signed.get("k") == {"x": (1, 2)}
    raw = r.get("k")
    assert raw[:1] == b"\x01" and len(raw) > 33


def test_hostile_pickle_is_never_decoded(signed, r, tmp_path, caplog):
    target = tmp_path / "pwned"
    payload = pickle.dumps(CreatesFile(str(target)))
    # the payload really runs code when unpickled: check on a throwaway path
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(CreatesFile(str(probe)))).close()
    assert probe.exists()
    calls = []

    @signed.cache(key_prefix="victim")
    def victim():
        calls.append(1)
        return "safe"

    victim()
    (key,) = [k for k in r.keys() if k.startswith(b"victim")]
    forged = [
        payload,  # unsigned
        b"\x01" + b"\x00" * 32 + payload,  # wrong signature
        SignedSerializer(PickleSerializer(), b"another-key-of-16+bytes").dumps("x")[:-1] + payload,
        b"\x01" + b"\x00" * 5,  # truncated
    ]
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        for i, raw in enumerate(forged):
            r.set("k", raw)
            assert signed.get("k", NO_VALUE) is NO_VALUE
            assert signed.get_many("k", "zz") == [None, None]
            r.set(key, raw)
            assert victim() == "safe"
    assert not target.exists()
    assert len(calls) == 1 + len(forged)  # each forged value was a miss
    assert signed.get("k") is None
    # logged once per key, not once per read
    assert caplog.text.count("'k'") == 1


def test_tampered_signed_value_is_a_miss(signed, r):
    signed.set("k", [1, 2, 3])
    raw = bytearray(r.get("k"))
    raw[-1] ^= 1
    r.set("k", bytes(raw))
    assert signed.get("k", NO_VALUE) is NO_VALUE


def test_signed_serializer_arguments():
    with pytest.raises(ValueError):
        SignedSerializer(PickleSerializer(), b"short")
    with pytest.raises(TypeError):
        SignedSerializer(PickleSerializer(), 12345678901234567890)
    with pytest.raises(ValueError):
        SignedSerializer(PickleSerializer(), KEY, digestmod="nope")
    with pytest.raises(TypeError):
        SignedSerializer(object(), KEY)
    s = SignedSerializer(NativeSerializer, KEY, digestmod="sha512")
    assert s.loads(s.dumps((1, 2))) == (1, 2)
    with pytest.raises(InvalidSignature):
        SignedSerializer(NativeSerializer, KEY).loads(s.dumps(1))


# -- the decorator ------------------------------------------------------------------


def test_decorator_caches(cache):
    calls = []

    @cache.cache()
    def load(name, offset):
        calls.append((name, offset))
        return {"name": name, "offset": offset}

    assert load("name", 10) == {"name": "name", "offset": 10}
    assert load("name", 10) == {"name": "name", "offset": 10}
    assert calls == [("name", 10)]
    assert load.__name__ == "load"


def test_positional_and_keyword_calls_share_an_entry(cache):
    calls = []

    @cache.cache()
    def f(a, b=2, *, c=3):
        calls.append(1)
        return a + b + c

    assert f(1, 2) == 6
    assert f(1, b=2) == 6
    assert f(b=2, a=1) == 6
    assert f(1) == 6  # defaults applied
    assert f(1, 2, c=3) == 6
    assert len(calls) == 1
    assert f(1, c=4) == 7
    assert len(calls) == 2


@pytest.mark.parametrize(
    "one, other",
    [
        (("a b",), ("a", "b")),
        ((1,), ("1",)),
        ((None,), ("None",)),
        ((1,), (True,)),
        ((1,), (1.0,)),
        (((1, 2),), ([1, 2],)),
        ((b"x",), ("x",)),
        (("",), (None,)),
    ],
)
def test_distinct_arguments_are_distinct_entries(cache, one, other):
    calls = []

    @cache.cache()
    def f(*args):
        calls.append(args)
        return len(calls)

    first = f(*one)
    second = f(*other)
    assert first != second
    assert calls == [one, other]


def test_cached_none_is_a_hit(cache):
    calls = []

    @cache.cache()
    def f(x):
        calls.append(x)
        return None

    assert f(1) is None
    assert f(1) is None
    assert calls == [1]


def test_bypass_values(impl, redis_server, redis_url):
    c = Cache(redis_server.host, redis_server.port, bypass_values=[None])
    calls = []

    @c.cache()
    def f(x):
        calls.append(x)
        return None if x == "none" else (0 if x == "zero" else x)

    assert f("none") is None
    assert f("none") is None
    assert calls == ["none", "none"]  # None results are not stored
    assert f("zero") == 0
    assert f("zero") == 0
    assert calls == ["none", "none", "zero"]  # 0 is not None: stored


def test_key_format(cache, r):
    @cache.cache()
    def g(x):
        return x

    g(1)
    (key,) = r.keys()
    prefix = "%s.%s:" % (__name__, g.__qualname__)
    assert key.decode().startswith(prefix)
    assert re.fullmatch(r"[0-9a-f]{32}", key.decode()[len(prefix):])


def test_key_prefix_and_namespace(impl, redis_server, redis_url, r):
    c = Cache(redis_server.host, redis_server.port, namespace="ns:")

    @c.cache(key_prefix="another")
    def load(name):
        return name

    load("x")
    (key,) = r.keys()
    assert re.fullmatch(rb"ns:another:[0-9a-f]{32}", key)


def test_decorator_expire(cache, r):
    @cache.cache(expire=60)
    def f():
        return 1

    f()
    (key,) = r.keys()
    assert 50 < r.ttl(key) <= 60


def test_methods_leave_self_out_by_default(cache):
    calls = []

    class Data:
        def __init__(self, tag):
            self.tag = tag

        @cache.cache(key_prefix="another")
        def load(self, name, offset):
            calls.append(self.tag)
            return [name, offset]

        @classmethod
        @cache.cache()
        def build(cls, n):
            calls.append("build")
            return n * 2

    assert Data("a").load("n", 1) == ["n", 1]
    assert Data("b").load("n", 1) == ["n", 1]
    assert calls == ["a"]
    assert Data.build(2) == 4
    assert Data.build(2) == 4
    assert calls == ["a", "build"]


def test_include_self(cache):
    calls = []

    class User:
        def __init__(self, uid):
            self.uid = uid

        def __cache_key__(self):
            return ["User", self.uid]

        @cache.cache(include_self=True)
        def profile(self):
            calls.append(self.uid)
            return {"uid": self.uid}

    assert User(1).profile() == {"uid": 1}
    assert User(2).profile() == {"uid": 2}
    assert User(1).profile() == {"uid": 1}
    assert calls == [1, 2]


def test_include_self_without_cache_key_is_a_clear_error(cache):
    class Thing:
        @cache.cache(include_self=True)
        def m(self):
            return 1

    with pytest.raises(TypeError, match="self.*Thing|Thing.*self"):
        Thing().m()


def test_include_self_keys_on_str_when_the_class_defines_it(cache, r):
    """rc keys include_self methods on str(self) and tells users to give the
    class a __str__: such a class works unchanged."""
    calls = []

    class Account:
        def __init__(self, uid):
            self.uid = uid

        def __str__(self):
            return "Account:%d" % self.uid

        @cache.cache(include_self=True)
        def balance(self, currency="EUR"):
            calls.append((self.uid, currency))
            return self.uid * 10

    assert Account(1).balance() == 10
    assert Account(2).balance() == 20
    assert Account(1).balance() == 10 and Account(1).balance(currency="EUR") == 10
    assert Account.balance(self=Account(2)) == 20  # self given by keyword
    assert calls == [(1, "EUR"), (2, "EUR")]
    # the key is the same in every process: no address in it
    key = Account.balance.__pyredcache__.builder((Account(1),), {})
    assert key == Account.balance.__pyredcache__.builder((Account(1),), {"currency": "EUR"})
    assert cache.invalidate(Account.balance, Account(1)) is True
    assert Account(1).balance() == 10 and calls[-1] == (1, "EUR")

    class Other(Account):  # another class with an equal str(): another key
        pass

    assert Account.balance.__pyredcache__.builder((Other(1),), {}) != key


def test_include_self_prefers_cache_key_and_refuses_object_str(cache):
    class Both:
        def __str__(self):
            return "same"

        def __cache_key__(self):
            return ["Both"]

    class Plain:  # object.__str__: '<Plain object at 0x...>'
        @cache.cache(include_self=True)
        def m(self):
            return 1

    @cache.cache(include_self=True)
    def f(self):
        return 2

    assert f(Both()) == 2  # keyed by __cache_key__, not str()
    with pytest.raises(TypeError, match="self"):
        Plain().m()


def test_coroutine_functions_are_refused_at_decoration(cache):
    async def fetch(n):
        return n

    with pytest.raises(TypeError, match="coroutine function .*fetch"):
        cache.cache()(fetch)

    async def stream():
        yield 1

    with pytest.raises(TypeError, match="coroutine function .*stream"):
        cache.cache(lock=True)(stream)


def test_unkeyable_argument_is_a_clear_error(cache):
    @cache.cache()
    def f(obj):
        return 1

    with pytest.raises(TypeError, match="obj"):
        f(object())


def test_invalidate(cache):
    calls = []

    @cache.cache()
    def load(name, limit):
        calls.append(name)
        return name * limit

    assert load("foo", limit=5) == "foofoofoofoofoo"
    assert cache.invalidate(load, "foo", limit=5) is True
    assert cache.invalidate(load, "foo", limit=5) is False
    load("foo", 5)
    assert len(calls) == 2
    # any spelling of the same call invalidates it
    assert cache.invalidate(load, name="foo", limit=5) is True
    load("foo", 5)
    assert len(calls) == 3


def test_invalidate_needs_a_decorated_function(cache, impl, redis_server):
    with pytest.raises(TypeError):
        cache.invalidate(len, "x")
    other = Cache(redis_server.host, redis_server.port)

    @other.cache()
    def f():
        return 1

    with pytest.raises(TypeError):
        cache.invalidate(f)


def test_wrong_call_raises_like_the_function(cache):
    @cache.cache()
    def f(a, b):
        return a + b

    with pytest.raises(TypeError):
        f(1)
    with pytest.raises(TypeError):
        f(1, 2, 3)
    with pytest.raises(TypeError):
        f(1, c=2)


def test_unserializable_result(cache, r):
    @cache.cache()
    def f():
        return Unserializable()

    with pytest.raises(SerializationError, match="Unserializable"):
        f()
    assert r.keys() == []


def test_corrupt_stored_result_is_recomputed(cache, r, caplog):
    calls = []

    @cache.cache()
    def f():
        calls.append(1)
        return [1]

    f()
    (key,) = r.keys()
    r.set(key, b"{broken")
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        assert f() == [1]
    assert len(calls) == 2
    assert cache.serializer.loads(r.get(key)) == [1]
    assert "as a miss" in caplog.text


def test_keys_are_equal_across_processes(cache, r, redis_server):
    @cache.cache(key_prefix="shared")
    def f(a, b=None, **kw):
        return 1

    f("x", b={"k": [1, 2.5]}, z=(1, "2"))
    (key,) = r.keys()
    code = textwrap.dedent(
        """
        import sys
        from pyredcache import Cache
        cache = Cache(%r, %d)
        @cache.cache(key_prefix="shared")
        def f(a, b=None, **kw):
            return 1
        print(f.__pyredcache__.builder(("x",), {"z": (1, "2"), "b": {"k": [1, 2.5]}}).decode())
        """
        % (redis_server.host, redis_server.port)
    )
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == key.decode()


# -- concurrency and failures -----------------------------------------------------------


def test_eight_threads(cache):
    calls = []
    lock = threading.Lock()

    @cache.cache()
    def square(n):
        with lock:
            calls.append(n)
        return n * n

    errors = []

    def work(tid):
        try:
            for round_ in range(2):
                for i in range(100):
                    n = tid * 1000 + i
                    assert square(n) == n * n
                    cache.set("t%d-%d" % (tid, i), [tid, i])
                    assert cache.get("t%d-%d" % (tid, i)) == [tid, i]
                assert cache.get_many(*["t%d-%d" % (tid, i) for i in range(100)]) == [
                    [tid, i] for i in range(100)
                ]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(calls) == sorted(t * 1000 + i for t in range(8) for i in range(100))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork(cache):
    cache.set("k", "parent")
    parent_id = cache.client.execute_command("CLIENT", "ID")
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(rfd)
            assert cache.get("k") == "parent"
            cache.set("k", "child")
            os.write(wfd, b"%d" % cache.client.execute_command("CLIENT", "ID"))
            status = 0
        finally:
            os._exit(status)
    os.close(wfd)
    child_id = int(os.read(rfd, 64) or b"-1")
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert child_id not in (-1, parent_id)
    assert cache.client.execute_command("CLIENT", "ID") == parent_id
    assert cache.get("k") == "child"


def test_server_restart_mid_run(impl, server):
    c = Cache(server.host, server.port)

    @c.cache()
    def f(x):
        return [x]

    assert f(1) == [1]
    server.restart()
    assert c.get("anything") is None  # reconnects; the new server is empty
    assert f(1) == [1]


def test_unreachable_server(impl):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = Cache("127.0.0.1", port, redis_options={"socket_connect_timeout": 0.5})
    with pytest.raises(ConnectionError, match=str(port)):
        c.get("k")


# -- construction ---------------------------------------------------------------------


def test_from_url(impl, redis_server, redis_url):
    c = Cache.from_url("redis://%s:%d/2" % (redis_server.host, redis_server.port), namespace="u:")
    c.set("k", 1)
    assert redis_server.client(db=2).get("u:k") == b"\x01"  # MessagePack 1
    u = Cache.from_url("unix://%s?db=3" % redis_server.unix_socket_path)
    u.set("k", 2)
    assert redis_server.client(db=3).get("k") == b"\x02"


def test_busy_poll_option(impl, redis_server):
    """busy_poll (microseconds) reaches the connections from redis_options
    and from a URL's query string; a bad value raises at construction."""
    c = Cache(redis_server.host, redis_server.port, redis_options={"busy_poll": 0})
    assert c.set("k", 1) and c.get("k") == 1
    conn = c.client._pool[-1]
    assert conn.busy_poll == 0 and (conn.busy_poll_hits, conn.busy_poll_misses) == (0, 0)
    u = Cache.from_url("redis://%s:%d/0?busy_poll=250" % (redis_server.host, redis_server.port))
    assert u.get("k") == 1
    assert u.client._pool[-1].busy_poll == 250
    with pytest.raises(ValueError, match="busy_poll"):
        Cache(redis_options={"busy_poll": -5})
    with pytest.raises(ValueError, match="busy_poll"):
        Cache.from_url("redis://localhost?busy_poll=fast")


def test_from_url_with_password(impl, server):
    server.client().config_set("requirepass", "p@ss word")
    c = Cache.from_url("redis://:p%%40ss%%20word@%s:%d/0" % (server.host, server.port))
    assert c.set("k", 1)
    server.client(password="p@ss word").execute_command("ACL", "SETUSER", "u", "on", ">pw",
                                                         "~*", "+@all")
    c2 = Cache.from_url("redis://u:pw@%s:%d" % (server.host, server.port))
    assert c2.get("k") == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost",
        "redis://",
        "redis://host:notaport/0",
        "redis://host:6379/x",
        "redis://host:6379/0/1",
        "redis://host:99999",
        "unix://",
        "unix://relative/path",
        "unix:///tmp/s?db=x",
        "redis://host?unknown=1",
        "rediss://host",
        "localhost:6379",
    ],
)
def test_malformed_url(impl, url):
    with pytest.raises(ValueError):
        Cache.from_url(url)


def test_bad_options(impl):
    with pytest.raises(TypeError, match="nonsense"):
        Cache(redis_options={"nonsense": 1})
    with pytest.raises(ValueError):
        Cache(port=0)
    with pytest.raises(ValueError):
        Cache(default_expire=0)
    with pytest.raises(TypeError):
        Cache(namespace=5)


def test_null_cache():
    c = NullCache("ignored", port=1)
    calls = []

    @c.cache()
    def f(x):
        calls.append(x)
        return x

    assert f(1) == 1 and f(1) == 1
    assert calls == [1, 1]
    assert c.set("k", 1) is True
    assert c.get("k") is None
    assert c.get_many("a", "b") == [None, None]
    assert c.delete("k") is True


# -- the client property (issue 11) ------------------------------------------------------


def test_del_client_gives_the_client_again(impl, redis_server, redis_url, shards):
    from pyredcache import CacheCluster, Client, ShardedClient

    c = Cache(redis_server.host, redis_server.port)
    c.set("k", 1)
    first = c.client
    del c.client  # no RecursionError: a new client, kept from now on
    assert isinstance(c.client, Client) and c.client is not first and c.client is c.client
    assert c.get("k") == 1
    cluster = CacheCluster({i: {"host": s.host, "port": s.port} for i, s in enumerate(shards)})
    cluster.set("k", 2)
    del cluster.client
    assert isinstance(cluster.client, ShardedClient) and cluster.client is cluster.get_client()
    assert cluster.get("k") == 2


def test_a_users_own_client_is_accepted(impl, redis_server, r):
    """Cache(redis=...): a redis.Redis goes over the C core with its
    settings; fakeredis (or TLS, Sentinel) through the adapter."""
    import fakeredis
    import redis as redis_py

    from pyredcache import Client
    from pyredcache.clients import RedisPyAdapter

    mine = redis_py.Redis(redis_server.host, redis_server.port, db=4)
    c = Cache(redis=mine, namespace="own:")
    assert isinstance(c.client, Client) and c.client.connection_kwargs["db"] == 4
    assert c.get_client() is mine
    c.set("k", [1, 2])
    assert mine.exists("own:k") == 1 and c.get("k") == [1, 2]

    fake = fakeredis.FakeRedis()
    f = Cache(redis=fake)
    assert isinstance(f.client, RedisPyAdapter) and f.get_client() is fake
    calls = []

    @f.cache(expire=60)
    def square(x):
        calls.append(x)
        return x * x

    assert [square(3), square(3), square(4)] == [9, 9, 16] and calls == [3, 4]
    assert f.set_many({"a": 1, "b": None}) is True
    assert f.get_many("a", "b", "c") == [1, None, None]
    assert f.get("b", NO_VALUE) is None and f.get("c", NO_VALUE) is NO_VALUE
    assert 0 < fake.ttl(square.__pyredcache__.builder((3,), {})) <= 60
    with f.batch_mode():
        promises = [square(n) for n in (3, 5)]
    assert [p.value for p in promises] == [9, 25] and calls == [3, 4, 5]
    assert f.delete_many("a", "b") is True and f.invalidate(square, 3) is True
    # nothing went to the real server
    assert r.exists(square.__pyredcache__.builder((5,), {})) == 0 and fake.exists(
        square.__pyredcache__.builder((5,), {})) == 1
    with pytest.raises(TypeError, match="either redis="):
        Cache(redis_server.host, redis=mine)
    with pytest.raises(TypeError, match="redis-py-compatible"):
        Cache(redis=42)


def test_cache_cluster_hosts_given_as_clients(impl, shards):
    """CacheCluster hosts may be clients: a redis.Redis (through the C core,
    with its settings), a fakeredis.FakeRedis (through the adapter), next to
    hosts given as options; multi-key commands reach every host."""
    import fakeredis
    import redis as redis_py

    from pyredcache import CacheCluster, Client
    from pyredcache.clients import RedisPyAdapter

    fake = fakeredis.FakeRedis()
    real = redis_py.Redis(shards[0].host, shards[0].port)
    cluster = CacheCluster({"real": real, "fake": fake,
                            "opts": {"host": shards[1].host, "port": shards[1].port}})
    clients = cluster.client.clients
    assert isinstance(clients["real"], Client) and isinstance(clients["opts"], Client)
    assert isinstance(clients["fake"], RedisPyAdapter)
    assert repr(cluster.hosts["real"]) == repr(HostConfig("real", shards[0].host,
                                                          shards[0].port))
    values = {"k%d" % i: i for i in range(60)}
    assert cluster.set_many(values) is True
    assert cluster.get_many(*values) == list(values.values())
    where = {name: 0 for name in clients}
    for key in values:
        where[cluster.client.get_host_for_key(key)] += 1
    assert all(where.values()), where  # every host holds some keys
    assert fake.dbsize() == where["fake"] and real.dbsize() == where["real"]
    calls = []

    @cluster.cache(lock=True)
    def double(x):
        calls.append(x)
        return 2 * x

    with cluster.batch_mode():
        promises = [double(n) for n in range(20)]
    assert [p.value for p in promises] == [2 * n for n in range(20)]
    assert [double(n) for n in range(20)] == [2 * n for n in range(20)]
    assert calls == list(range(20))
    assert cluster.delete_many(*values) is True and fake.dbsize() + real.dbsize() <= 20
    del cluster.client  # made again from the same hosts
    assert cluster.get("k1") is None and double(3) == 6 and calls == list(range(20))


@pytest.mark.timeout(60)
def test_cache_over_a_users_redis_cluster_client(impl, one_node_cluster):
    """Cache(redis=redis.cluster.RedisCluster(...)): single-key commands go
    to the key's slot; get_many/delete_many over keys of many slots are
    split by slot by the client (one MGET/DEL per slot), not refused with
    CROSSSLOT."""
    from redis.cluster import RedisCluster

    rc = RedisCluster(host=one_node_cluster.host, port=one_node_cluster.port)
    try:
        c = Cache(redis=rc, namespace="rc:")
        values = {"k%d" % i: [i] for i in range(50)}  # 50 keys, many slots
        assert c.set_many(values) is True
        assert c.get_many(*values, "missing") == list(values.values()) + [None]
        calls = []

        @c.cache(expire=60)
        def f(x):
            calls.append(x)
            return x * 3

        assert [f(1), f(1)] == [3, 3] and calls == [1]
        with c.batch_mode():
            promises = [f(n) for n in range(5)]
        assert [p.value for p in promises] == [0, 3, 6, 9, 12] and calls == [1, 0, 2, 3, 4]
        assert c.delete_many(*values) is True
        assert rc.exists(*("rc:" + k for k in values)) == 0
    finally:
        rc.close()


def test_stampede_lock_over_a_users_client(impl):
    import fakeredis

    fake = fakeredis.FakeRedis()
    c = Cache(redis=fake)
    calls = []

    @c.cache(lock=True, stale_ttl=30, expire=60)
    def slow(x):
        calls.append(x)
        return x + 1

    assert slow(1) == 2 and slow(1) == 2 and calls == [1]
    assert fake.exists(slow.__pyredcache__.builder((1,), {}) + b":lock") == 0  # released


def test_a_subclass_overriding_get_client_is_used(impl, redis_server, redis_url):
    from pyredcache import Client

    made = []

    class OnDb2(Cache):  # rc's extension point: override get_client() only
        def get_client(self):
            made.append(1)
            return Client(redis_server.host, redis_server.port, db=2)

    c = OnDb2(redis_server.host, redis_server.port)

    @c.cache(key_prefix="f")
    def f(x):
        return x

    assert c.set("k", 1) and f(5) == 5
    assert redis_server.client(db=2).get("k") == b"\x01"  # the subclass's client
    assert redis_server.client(db=0).get("k") is None
    assert made == [1]  # made once, by the client property
    del c.client
    assert c.get("k") == 1 and made == [1, 1]


# -- a reply of the wrong type for GET / MGET (issue 11) ------------------------------------

WRONG_REPLIES = {
    "integer": (b":1\r\n", "int"),
    "array": (b"*1\r\n$1\r\nx\r\n", "list"),          # for MGET of 2 keys: too short
    "array of integers": (b"*2\r\n:1\r\n$-1\r\n", None),  # GET: list; MGET: int item
}


@pytest.mark.parametrize("op", ["get", "decorator", "lock", "get_many", "batch", "cluster"])
@pytest.mark.parametrize("reply", list(WRONG_REPLIES))
def test_wrong_reply_type_names_the_command(impl, op, reply):
    from fakeserver import FakeServer

    from pyredcache import CacheCluster
    from pyredcache.exceptions import ProtocolError, ReplyTypeError

    payload, received = WRONG_REPLIES[reply]
    fake = FakeServer(payload)
    try:
        cache = Cache("127.0.0.1", fake.port)
        calls = []

        @cache.cache(key_prefix="f", lock=(op == "lock"))
        def f(x):
            calls.append(x)
            return x

        command = "GET" if op in ("get", "decorator", "lock") else "MGET"
        with pytest.raises(ReplyTypeError) as info:
            if op == "get":
                cache.get("k")
            elif op in ("decorator", "lock"):
                f(1)
            elif op == "get_many":
                cache.get_many("k", "other")
            elif op == "batch":
                with cache.batch_mode():
                    f(1), f(2)
            else:
                CacheCluster({"h": {"host": "127.0.0.1", "port": fake.port}}).get_many(
                    "k", "other")
    finally:
        fake.close()
    exc = info.value
    if received is None:
        received = "list" if command == "GET" else "int"
    assert isinstance(exc, ProtocolError) and isinstance(exc, ConnectionError)
    assert (exc.command, exc.received) == (command, received)
    assert str(exc).startswith(("%s " % command, "cache host 'h': %s " % command))
    assert "(%s)" % received in str(exc)
    assert (exc.key in ("k", b"k")) if op in ("get", "get_many", "cluster") else exc.key
    assert calls == []  # nothing was computed from a reply that made no sense


def test_a_serializers_own_type_error_is_not_masked(impl, redis_server, redis_url):
    class Picky(JSONSerializer):
        def loads(self, data):
            raise TypeError("picky")

    c = Cache(redis_server.host, redis_server.port, serializer_cls=Picky)
    c.set("k", 1)
    with pytest.raises(TypeError, match="picky"):
        c.get("k")
