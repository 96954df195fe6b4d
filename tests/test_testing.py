"""pyredcache.testing (rc's NullCache and FakeRedisCache) and the pytest
plugin pyredcache.pytest_plugin (run in an inner pytest by ``pytester``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import fakeredis
import pytest

from pyredcache import Cache, Client, JSONSerializer, NO_VALUE, NullCache, RedisDict
from pyredcache.clients import RedisPyAdapter, as_client
from pyredcache.testing import FakeRedisCache

pytest_plugins = ["pytester"]


# -- NullCache has no client (rc) -----------------------------------------------------


def test_null_cache_client_raises_not_implemented_as_rc():
    c = NullCache()
    with pytest.raises(NotImplementedError):
        c.get_client()
    with pytest.raises(NotImplementedError):
        c.client
    # handed to a lock or a container: a clear TypeError, not NotImplementedError
    with pytest.raises(TypeError, match="has no client to send commands through"):
        as_client(NullCache())
    with pytest.raises(TypeError, match="has no client"):
        RedisDict(redis=NullCache(), key="d")


def test_null_cache_without_a_client_still_batches(impl):
    c = NullCache("any", "arguments", port=1)
    ran = []

    @c.cache(expire=5, lock=True)
    def f(x):
        ran.append(x)
        return -x

    with c.batch_mode():
        p = f(3)
        assert p.is_pending
    assert p.value == -3 and f(3) == -3 and ran == [3, 3]
    assert c.get_many("a") == [None] and c.get("a", NO_VALUE) is NO_VALUE
    assert c.invalidate(f, 3) is True


# -- FakeRedisCache ----------------------------------------------------------------------


@pytest.fixture
def fake(impl):
    return FakeRedisCache()


def test_fake_redis_cache_runs_rcs_documented_usage(fake):
    cache = fake
    # rc's "A Simple Example"
    assert cache.set("key", "value")
    assert cache.get("key") == "value"
    assert cache.get("foo") is None
    assert cache.set("list", [1])
    assert cache.get("list") == [1]
    # "Batch Fetch Multiple Cache Results"
    assert cache.get_many("key", "foo") == ["value", None]

    @cache.cache()
    def cached_func(param):
        return param

    results = []
    with cache.batch_mode():
        for i in range(10):
            results.append(cached_func(i))
    for i, rv in enumerate(results):
        assert rv.value == i

    # "Cache Invalidation"
    ran = []

    @cache.cache()
    def load(name, offset):
        ran.append((name, offset))
        return name * offset

    assert load("name", offset=2) == "namename"
    assert load("name", offset=2) == "namename" and len(ran) == 1
    assert cache.delete("key") is True and cache.get("key") is None
    assert cache.invalidate(load, "name", offset=2) is True
    assert load("name", offset=2) == "namename" and len(ran) == 2


def test_fake_redis_cache_takes_rcs_parameters(impl):
    cache = FakeRedisCache(namespace="models:", serializer_cls=JSONSerializer,
                           default_expire=3600)
    assert cache.set("k", {"a": 1})
    assert cache.redis.get("models:k") == b'{"a":1}'  # JSON, under the namespace
    assert 3590 <= cache.redis.ttl("models:k") <= 3600
    assert FakeRedisCache(None, None, 259200).default_expire == 259200


def test_fake_redis_cache_stores_in_fakeredis(fake):
    assert isinstance(fake.server, fakeredis.FakeServer)
    assert isinstance(fake.redis, fakeredis.FakeRedis)
    assert isinstance(fake.client, RedisPyAdapter) and not isinstance(fake.client, Client)
    assert fake.set_many({"a": 1, "b": None}) is True
    assert sorted(fake.redis.keys()) == [b"a", b"b"]
    assert fake.get("b", NO_VALUE) is None  # a cached None is a hit
    assert fake.get("c", NO_VALUE) is NO_VALUE
    assert fake.delete_many("a", "b") is True
    assert fake.delete_many("a") is False and fake.delete("a") is False
    assert fake.redis.keys() == []
    assert fake.get_many() == [] and fake.set_many({}) is True
    assert repr(fake) == "<pyredcache.FakeRedisCache namespace=''>"


def test_fake_redis_cache_decorator_hits_and_misses(fake):
    ran = []

    class Store:
        @fake.cache(key_prefix="store.get")
        def get(self, x, y=0):
            ran.append((x, y))
            return [x, y]

    s = Store()
    assert s.get(1, 2) == [1, 2]
    assert s.get(1, y=2) == [1, 2]  # the same call bound to the signature: a hit
    assert Store().get(1, 2) == [1, 2]  # self is left out of the key
    assert ran == [(1, 2)]
    assert s.get(2) == [2, 0] and ran == [(1, 2), (2, 0)]
    assert len(fake.redis.keys("store.get:*")) == 2


def test_fake_redis_cache_bypass_values(impl):
    cache = FakeRedisCache(bypass_values=[None])
    ran = []

    @cache.cache()
    def maybe(x):
        ran.append(x)
        return None if x < 0 else x

    assert maybe(-1) is None and maybe(-1) is None and maybe(1) == 1 and maybe(1) == 1
    assert ran == [-1, -1, 1]


def test_fake_redis_cache_batch_mode(fake):
    ran = []

    @fake.cache()
    def square(x):
        ran.append(x)
        return x * x

    assert square(2) == 4  # cached before the batch
    with fake.batch_mode():
        promises = [square(x) for x in (1, 2, 3, 3)]
        assert all(p.is_pending for p in promises) and ran == [2]
    assert [p.value for p in promises] == [1, 4, 9, 9]
    assert ran == [2, 1, 3]  # the hit was fetched; equal calls computed once
    assert len(fake.redis.keys()) == 3  # the misses were written back
    with fake.batch_mode():
        again = [square(x) for x in (1, 3)]
    assert [p.value for p in again] == [1, 9] and ran == [2, 1, 3]


def test_fake_redis_cache_stampede_lock(fake):
    ran = []

    @fake.cache(expire=60, lock=True)
    def slow(x):
        ran.append(x)
        return x + 1

    assert slow(1) == 2 and slow(1) == 2 and ran == [1]
    # the recompute lock was taken and released (a Lua script on fakeredis)
    keys = fake.redis.keys()
    assert len(keys) == 1 and not keys[0].endswith(b":lock")


def test_fake_redis_cache_expiry(fake):
    assert fake.set("short", 1, expire=0.05)
    assert 0 < fake.redis.pttl("short") <= 50  # a float expiry is milliseconds (PX)
    assert fake.set("default", 1)
    assert 259190 <= fake.redis.ttl("default") <= 259200  # rc's three days
    ran = []

    @fake.cache(expire=0.05)
    def f():
        ran.append(1)
        return len(ran)

    assert f() == 1 and f() == 1
    time.sleep(0.12)
    assert fake.get("short") is None
    assert fake.get("default") == 1
    assert f() == 2  # the entry expired: computed again


def test_fake_redis_cache_opens_no_connection(impl, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("FakeRedisCache opened a connection: %r" % (args,))

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    cache = FakeRedisCache()

    @cache.cache()
    def f(x):
        return x

    assert cache.set("k", 1) and cache.get("k") == 1 and f(1) == 1 and f(1) == 1
    with cache.batch_mode():
        p = f(2)
    assert p.value == 2
    assert as_client(cache) is cache.client  # not a Client of $REDIS_URL
    # the guard works: a plain Cache on the pure core does try to connect
    if impl.implementation == "python":
        with pytest.raises(AssertionError, match="opened a connection"):
            Cache("127.0.0.1", 1).get("k")


def test_fake_redis_caches_share_a_store_only_when_asked(impl):
    a, b = FakeRedisCache(), FakeRedisCache()
    a.set("k", 1)
    assert b.get("k") is None  # each has a server of its own
    server = fakeredis.FakeServer()
    c, d = FakeRedisCache(server=server), FakeRedisCache(namespace="d:", server=server)
    c.set("k", 2)
    d.set("k", 3)
    assert FakeRedisCache(server=server).get("k") == 2
    assert sorted(fakeredis.FakeRedis(server=server).keys()) == [b"d:k", b"k"]
    with pytest.raises(TypeError, match="FakeServer"):
        FakeRedisCache(server=fakeredis.FakeRedis())


def test_fake_redis_cache_client_made_again_keeps_the_data(fake):
    fake.set("k", 1)
    del fake.client
    assert fake.get_client() is fake.redis  # rc's get_client(): a fakeredis client
    assert fake.client.redis is fake.redis  # the adapter over it, made again
    assert fake.get("k") == 1


def test_fake_redis_cache_containers_share_its_fake_server(fake):
    d = RedisDict(redis=fake, key="d")
    d["a"] = 1
    assert fake.redis.exists("d") == 1 and d["a"] == 1 and len(d) == 1


def test_fake_redis_cache_without_fakeredis_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fakeredis", None)  # import fakeredis fails
    with pytest.raises(ImportError, match="pip install fakeredis"):
        FakeRedisCache()


def test_importing_pyredcache_imports_neither_pytest_nor_fakeredis():
    code = ("import sys, pyredcache, pyredcache.testing; "
            "print(sorted(m for m in ('pytest', '_pytest', 'fakeredis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# -- the pytest plugin --------------------------------------------------------------------

PLUGIN = "pyredcache.pytest_plugin"

INNER_TESTS = """
    import os

    from pyredcache import Cache
    from pyredcache.server import EmbeddedRedis
    from pyredcache.testing import FakeRedisCache


    def test_server_is_embedded(redis_server):
        assert isinstance(redis_server, EmbeddedRedis) and not redis_server.closed
        with open("server.pid", "w") as f:
            f.write(str(redis_server.pid))


    def test_cache_on_the_server(cache, redis_server):
        assert isinstance(cache, Cache)
        assert cache.client.connection_kwargs["unix_socket_path"] == \\
            redis_server.unix_socket_path
        cache.set("left-behind", 1)
        assert cache.get("left-behind") == 1


    def test_cache_is_flushed_per_test(cache, redis_server):
        assert cache.get("left-behind") is None
        with open("server.pid") as f:
            assert int(f.read()) == redis_server.pid  # one server per session


    def test_fake_cache(fake_cache):
        assert isinstance(fake_cache, FakeRedisCache)
        fake_cache.set("k", 1)
        assert fake_cache.get("k") == 1


    def test_fake_cache_is_fresh_per_test(fake_cache):
        assert fake_cache.get("k") is None
"""


def test_plugin_fixtures(pytester):
    pytester.makepyfile(test_inner=textwrap.dedent(INNER_TESTS))
    result = pytester.runpytest_subprocess("-p", PLUGIN, "-p", "no:cacheprovider",
                                           "-W", "error")
    result.assert_outcomes(passed=5)
    pid = int((pytester.path / "server.pid").read_text())
    with pytest.raises(ProcessLookupError):  # the session's server was stopped
        os.kill(pid, 0)


def test_plugin_is_opt_in(pytester):
    pytester.makepyfile(test_inner="""
        def test_needs_the_plugin(fake_cache):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_cache' not found*"])


def test_conftest_fixture_overrides_the_plugins(pytester):
    pytester.makeconftest("""
        import pytest

        @pytest.fixture
        def cache():
            return "mine"
    """)
    pytester.makepyfile(test_inner="""
        def test_own_cache(cache, fake_cache):
            assert cache == "mine" and fake_cache.get("x") is None
    """)
    result = pytester.runpytest_subprocess("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def quickstart_examples():
    """The literal blocks of docs/quickstart.rst's "Testing" section."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "quickstart.rst").read_text()
    section = text.split("\nTesting\n-------\n", 1)[1].split("\n\n\n", 1)[0]
    blocks = []
    for part in section.split("::\n\n")[1:]:
        lines = []
        for line in part.splitlines():
            if line and not line.startswith("    "):
                break
            lines.append(line)
        blocks.append(textwrap.dedent("\n".join(lines)).strip() + "\n")
    return blocks


def test_quickstart_fake_redis_cache_example_runs(impl):
    plain, _ = quickstart_examples()
    namespace: dict = {}
    exec(compile(plain, "quickstart.rst", "exec"), namespace)
    assert isinstance(namespace["cache"], FakeRedisCache)


def test_quickstart_plugin_example_runs(pytester):
    _, plugin_test = quickstart_examples()
    assert "def test_load_is_cached(cache)" in plugin_test
    pytester.makepyfile(test_quickstart=plugin_test)
    result = pytester.runpytest_subprocess("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
