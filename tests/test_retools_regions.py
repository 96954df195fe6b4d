"""Regions, retools' face (pyredcache.region: CacheRegion, cache_region,
invalidate_region, invalidate_function): against real servers."""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path

import pytest

import pyredcache.lock
from pyredcache import Cache, CacheCluster, Client, stampede
from pyredcache.region import (
    CacheConfigurationError,
    CacheRegion,
    RegionRegistry,
    cache_region,
    default_registry,
    invalidate_function,
    invalidate_region,
)

README = Path(__file__).resolve().parent / "reference" / "retools-README.rst"


@pytest.fixture
def default():
    """The default registry, emptied for the test and restored after."""
    saved = (default_registry.regions, default_registry._cache, default_registry.enabled,
             default_registry.statistics)
    default_registry.regions = {}
    default_registry._cache = None
    default_registry.enabled = True
    yield default_registry
    (default_registry.regions, default_registry._cache, default_registry.enabled,
     default_registry.statistics) = saved


@pytest.fixture
def cache(impl, redis_server):
    c = Cache(redis_server.host, redis_server.port)
    c.client.flushdb()
    return c


def counted():
    calls = []

    def f(*args, **kwargs):
        calls.append((args, kwargs))
        return ("v", args, tuple(sorted(kwargs.items())))
    return f, calls


def entries(server) -> list[bytes]:
    return sorted(k for k in server.client().keys("retools:*")
                  if not k.endswith((b":keys", b":lock")))


def test_add_region_and_hit_miss(default, cache, redis_server):
    CacheRegion.configure(cache=cache)
    CacheRegion.add_region("short_term", expires=3600)
    assert CacheRegion.regions == {"short_term": {"expires": 3600,
                                                  "redis_expiration": 604800}}
    f, calls = counted()
    g = cache_region("short_term")(f)
    assert g(1, 2) == ("v", (1, 2), ())
    assert g(1, 2) == ("v", (1, 2), ())
    assert len(calls) == 1
    g(1, 3)
    g(1, b=2)  # keyword arguments are keys too
    assert len(calls) == 3
    [key, *_] = entries(redis_server)
    assert key.startswith(b"retools:short_term:")
    ttl = redis_server.client().ttl(key)
    assert 604800 - 5 < ttl <= 604800  # the Redis TTL is redis_expiration
    assert g._region == "short_term"


def test_region_not_added_raises(default, cache):
    CacheRegion.configure(cache=cache)
    g = cache_region("nope")(lambda: 1)
    with pytest.raises(CacheConfigurationError, match="Cache region not configured: nope"):
        g()


def test_bad_region_settings(default):
    with pytest.raises(ValueError):
        CacheRegion.add_region("r", expires=0)
    with pytest.raises(TypeError):
        CacheRegion.add_region("r", expires="60")
    with pytest.raises(TypeError):
        CacheRegion.configure(cache="redis://localhost")


def test_enabled_false_computes_every_call(default, cache, redis_server):
    CacheRegion.configure(cache=cache)
    CacheRegion.add_region("r", 60)
    f, calls = counted()
    g = cache_region("r")(f)
    CacheRegion.enabled = False
    assert default_registry.enabled is False
    g(1)
    g(1)
    assert len(calls) == 2
    assert entries(redis_server) == []
    CacheRegion.enabled = True
    g(1)
    g(1)
    assert len(calls) == 3


def make_load(ns_args, calls):
    @cache_region("r", *ns_args)
    def load(x):
        calls.append(ns_args)
        return (ns_args, x)
    return load


def test_namespace_args_separate_functions_of_one_name(default, cache, redis_server):
    CacheRegion.configure(cache=cache)
    CacheRegion.add_region("r", 60)
    calls: list = []
    a, b, a2 = make_load(("small_engine",), calls), make_load(("big", 2), calls), \
        make_load(("small_engine",), calls)
    assert a.__qualname__ == b.__qualname__
    assert a(1) == (("small_engine",), 1)
    assert b(1) == (("big", 2), 1)
    assert a2(1) == (("small_engine",), 1)  # same namespace: a's entry
    assert len(calls) == 2
    assert b._namespace.endswith("make_load.<locals>.load big 2")
    assert invalidate_function(b, ["big", 2], 1) == 1
    with pytest.raises(ValueError, match="namespace"):
        invalidate_function(b, ["other"], 1)
    b(1)
    a(1)
    assert len(calls) == 3


def test_invalidate_region(default, cache, redis_server):
    CacheRegion.configure(cache=cache)
    CacheRegion.add_region("r", 60)
    CacheRegion.add_region("other", 60)
    f, fc = counted()
    g, gc = counted()
    h, hc = counted()
    f, g, h = cache_region("r")(f), cache_region("r", "g")(g), cache_region("other")(h)
    for i in range(3):
        f(i), g(i), h(i)
    assert invalidate_region("r") == 6
    for i in range(3):
        f(i), g(i), h(i)
    assert (len(fc), len(gc), len(hc)) == (6, 6, 3)
    assert CacheRegion.invalidate("other") == 3


def test_invalidate_function_with_args_as_the_readme_and_none(default, cache, redis_server):
    CacheRegion.configure(cache=cache)
    CacheRegion.add_region("r", 60)
    f, calls = counted()
    g = cache_region("r")(f)
    g("bunny"), g("fox"), g("owl")
    assert invalidate_function(g, [], "bunny") == 1
    assert invalidate_function(g, "bunny") == 0
    g("bunny"), g("fox")
    assert len(calls) == 4
    assert invalidate_function(g, "fox") == 1
    assert invalidate_function(g) == 2  # bunny, owl
    assert entries(redis_server) == []
    g("bunny"), g("owl")
    assert len(calls) == 6


def test_invalidate_function_by_another_process_sees_every_variation(default, cache,
                                                                    redis_server):
    # a second registry over another Cache object (another process's state):
    # the key sets live in Redis, not in this process
    CacheRegion.configure(cache=cache)
    CacheRegion.add_region("r", 60)
    f, calls = counted()
    g = cache_region("r")(f)
    for i in range(5):
        g(i)
    other = RegionRegistry(cache=Cache(redis_server.host, redis_server.port))
    other.add_region("r", 60)
    f2 = functools.wraps(f)(lambda *a: None)
    g2 = other.cache_region("r")(f2)
    assert g2._namespace == g._namespace
    assert other.invalidate_function(g2) == 5
    for i in range(5):
        g(i)
    assert len(calls) == 10


def test_cache_cluster(impl, default, shards):
    cluster = CacheCluster({i: {"host": s.host, "port": s.port} for i, s in enumerate(shards)})
    CacheRegion.configure(cache=cluster)
    CacheRegion.add_region("r", 60)
    f, calls = counted()
    g = cache_region("r")(f)
    for i in range(40):
        g(i)
    for i in range(40):
        g(i)
    assert len(calls) == 40
    per_shard = [len(entries(s)) for s in shards]
    assert sum(per_shard) == 40 and sum(1 for n in per_shard if n) >= 2
    assert invalidate_function(g, 7) == 1
    assert invalidate_function(g, [], 8) == 1
    assert sum(len(entries(s)) for s in shards) == 38
    assert invalidate_function(g) == 38
    assert all(entries(s) == [] for s in shards)
    for i in range(40):
        g(i)
    assert len(calls) == 80
    assert invalidate_region("r") == 40
    # only the region's hit/miss statistics are left (kept, as in retools)
    assert all(all(k.startswith(b"pyredcache:stats:") for k in s.client().keys("*"))
               for s in shards)


def test_no_cache_configured_raises_and_decoration_does_not_connect(impl, default,
                                                                    redis_server):
    CacheRegion.add_region("r", 60)
    f, calls = counted()
    g = cache_region("r")(f)  # decorated before any cache exists
    with pytest.raises(CacheConfigurationError, match=r"CacheRegion\.configure\(cache="):
        g(1)
    with pytest.raises(CacheConfigurationError):
        invalidate_region("r")
    assert calls == []
    cache = Cache(redis_server.host, redis_server.port)
    cache.client.flushdb()
    CacheRegion.configure(cache=cache)
    g(1), g(1)
    assert len(calls) == 1


def test_decoration_opens_no_connection(impl, default):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a cache on a port where nothing listens: decorating is fine, calling fails
    registry = RegionRegistry(cache=Cache("127.0.0.1", port))
    registry.add_region("r", 60)
    g = registry.cache_region("r")(lambda x: x)
    from pyredcache.exceptions import ConnectionError
    with pytest.raises(ConnectionError):
        g(1)


def test_separate_registry(default, cache, redis_server):
    CacheRegion.configure(cache=cache)
    CacheRegion.add_region("r", 60)
    mine = RegionRegistry(cache=Cache(redis_server.host, redis_server.port, namespace="mine:"))
    assert "r" not in mine.regions
    mine.add_region("r", 60)
    f, calls = counted()
    shared = cache_region("r")(f)
    own = cache_region("r", registry=mine)(f)
    own2 = mine.cache_region("r")(f)
    shared(1), own(1), own2(1)
    assert len(calls) == 2  # own and own2: one namespace, one entry
    assert any(k.startswith(b"mine:retools:r:") for k in redis_server.client().keys("*"))
    mine.enabled = False
    own(1)
    assert len(calls) == 3 and default_registry.enabled
    with pytest.raises(TypeError):
        default_registry.invalidate_function(own)
    assert invalidate_function(own) == 1  # through its own registry


def test_stale_served_while_one_caller_regenerates(default, cache, monkeypatch):
    CacheRegion.configure(cache=cache)
    CacheRegion.add_region("r", expires=60, redis_expiration=3600)
    clock = [1_000_000.0]
    monkeypatch.setattr(stampede, "_now", lambda: clock[0])
    started, release = threading.Event(), threading.Event()
    calls = []

    @cache_region("r")
    def load(x):
        calls.append(x)
        if len(calls) == 2:  # the regeneration: holds the lock until released
            started.set()
            assert release.wait(10)
        return len(calls)

    assert load("a") == 1
    clock[0] += 61  # past expires, within redis_expiration: stale
    result = []
    t = threading.Thread(target=lambda: result.append(load("a")))
    t.start()
    assert started.wait(10)
    # the regeneration is running: another caller gets the old value, computing nothing
    assert load("a") == 1
    assert load("a") == 1
    assert len(calls) == 2
    release.set()
    t.join(10)
    assert result == [2]
    assert load("a") == 2
    assert len(calls) == 2


# -- the README's examples ------------------------------------------------------------

def readme_examples() -> list[str]:
    text = README.read_text()
    blocks = []
    for m in re.finditer(r"^Example::\n((?:[ \t]*\n|    .*\n)+)", text, re.M):
        lines = [line[4:] for line in m.group(1).splitlines()]
        blocks.append("\n".join(lines).strip() + "\n")
    return blocks


def rewrite(source: str) -> str:
    return (source.replace("from retools.cache import", "from pyredcache.region import")
            .replace("from retools.lock import Lock", "from pyredcache import Lock"))


def test_readme_has_two_examples():
    blocks = readme_examples()
    assert len(blocks) == 2
    assert "invalidate_function(slow_function, [], 'bunny')" in blocks[0]
    assert "with Lock('a_key', expires=60, timeout=10):" in blocks[1]


def test_readme_caching_example(default, cache, redis_server):
    CacheRegion.configure(cache=cache)
    source = rewrite(readme_examples()[0])
    assert "retools" not in source
    globs = {"__name__": "reference_example", "results": ["found"]}  # a name the README uses
    exec(compile(source, "retools-README.rst", "exec"), globs)
    assert globs["my_results"] == ["found"]
    assert CacheRegion.regions["short_term"]["expires"] == 3600
    assert entries(redis_server) == []  # invalidated by the example's last line
    globs["slow_function"]("bunny")
    assert len(entries(redis_server)) == 1
    assert eval("invalidate_function(slow_function, [], 'bunny')", globs) == 1


def test_readme_lock_example(impl, redis_server, monkeypatch):
    source = rewrite(readme_examples()[1])
    # as written the with block holds only a comment: not Python (an erratum)
    with pytest.raises(SyntaxError):
        compile(source, "retools-README.rst", "exec")
    source += "    held.append(a_lock_holder())\n"
    # retools' Lock without a connection means localhost:6379: the private server instead
    monkeypatch.setattr(pyredcache.lock, "Client",
                        functools.partial(Client, redis_server.host, redis_server.port))
    r = redis_server.client()
    held: list = []
    exec(compile(source, "retools-README.rst", "exec"),
         {"held": held, "a_lock_holder": lambda: r.exists("a_key")})
    assert held == [1]
    assert r.exists("a_key") == 0
