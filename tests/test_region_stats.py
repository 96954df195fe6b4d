"""Region statistics (retools' face): hits and misses per region and
function, counted in Redis in the lookup's round trip; ``cache.stats()``;
``python -m pyredcache stats``.  Against real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pyredcache import Cache, CacheCluster
from pyredcache.cache import STATS_PREFIX, stats_key
from pyredcache.clients.shards import ShardedClient
from pyredcache.region import CacheRegion, RegionRegistry, default_registry

ROOT = Path(__file__).resolve().parent.parent
MODULE = __name__


@pytest.fixture
def cache(impl, redis_server):
    c = Cache(redis_server.host, redis_server.port)
    c.client.flushdb()
    return c


def make_counted(registry, region, *namespace_args, result=None):
    """A decorated function and the list of its real runs."""
    runs = []
    lock = threading.Lock()

    def work(x):
        with lock:
            runs.append(x)
        return ("v", x) if result is None else result
    return registry.cache_region(region, *namespace_args)(work), runs


def fname(f) -> str:
    return f.__pyredcache_region__.namespace


def test_hits_and_misses_per_region_and_function(cache, redis_server):
    registry = RegionRegistry(cache=cache)
    registry.add_region("short", 60)
    registry.add_region("long", 3600)
    f, f_runs = make_counted(registry, "short")
    g, g_runs = make_counted(registry, "long", "engine")
    for x in [1, 2, 1, 1, 3]:
        f(x)
    for x in [1, 1]:
        g(x)
    assert f_runs == [1, 2, 3] and g_runs == [1]
    assert cache.stats() == {
        "short": {fname(f): {"hits": 2, "misses": 3}},
        "long": {fname(g): {"hits": 1, "misses": 1}},
    }
    # which functions a region holds: the field names of its hash, in Redis
    raw = redis_server.client()
    assert sorted(raw.hkeys(stats_key("", "short"))) == [
        (fname(f) + ":calls").encode(), (fname(f) + ":misses").encode()]
    assert fname(g) == MODULE + ".make_counted.<locals>.work engine"


def spy(client, counts):
    """Count the client's method calls that reach Redis."""
    for name in ("get", "execute_command", "pipeline_execute", "exists", "evalsha"):
        original = getattr(client, name, None)
        if original is None:
            continue

        def wrapped(*args, _original=original, _name=name, **kwargs):
            counts[_name] = counts.get(_name, 0) + 1
            return _original(*args, **kwargs)
        setattr(client, name, wrapped)


def test_a_hit_is_one_round_trip_and_a_miss_costs_nothing_more(cache, redis_server):
    on = RegionRegistry(cache=cache)
    off = RegionRegistry(cache=cache, statistics=False)
    for r in (on, off):
        r.add_region("r", 60)
    f_on, _ = make_counted(on, "r", "on")
    f_off, _ = make_counted(off, "r", "off")
    f_on(0)
    raw = redis_server.client()
    counts: dict = {}
    spy(cache.client, counts)
    raw.config_resetstat()
    f_on(0)  # a hit
    assert counts == {"pipeline_execute": 1}
    stats = raw.info("commandstats")
    assert stats["cmdstat_get"]["calls"] == 1 and stats["cmdstat_hincrby"]["calls"] == 1
    # a miss makes as many round trips with statistics as without
    counts.clear()
    f_on(1)
    miss_on = sum(counts.values())
    counts.clear()
    f_off(1)
    miss_off = sum(counts.values())
    assert miss_on == miss_off
    assert cache.stats()["r"][fname(f_on)] == {"hits": 1, "misses": 2}


def test_statistics_off_costs_nothing(cache, redis_server):
    registry = RegionRegistry(cache=cache, statistics=False)
    registry.add_region("r", 60)
    f, runs = make_counted(registry, "r")
    raw = redis_server.client()
    raw.config_resetstat()
    counts: dict = {}
    spy(cache.client, counts)
    for x in [1, 1, 2]:
        f(x)
    f(1)
    assert "cmdstat_hincrby" not in raw.info("commandstats")
    assert cache.stats() == {}
    counts.clear()
    f(1)  # a hit: the plain GET of before
    assert counts == {"get": 1}
    # turned on and off again at run time, as retools' CacheRegion.statistics
    registry.statistics = True
    f(1)
    assert raw.info("commandstats")["cmdstat_hincrby"]["calls"] == 1
    registry.statistics = False
    raw.config_resetstat()
    f(1), f(5)
    assert "cmdstat_hincrby" not in raw.info("commandstats")
    assert cache.stats() == {"r": {fname(f): {"hits": 1, "misses": 0}}}


def test_statistics_default_on_and_cache_region_switch(cache, redis_server):
    assert RegionRegistry().statistics is True  # retools: CacheRegion.statistics = True
    saved = (default_registry.regions, default_registry._cache, default_registry.statistics)
    try:
        default_registry.regions = {}
        CacheRegion.configure(cache=cache)
        CacheRegion.add_region("r", 60)
        from pyredcache import cache_region

        runs = []

        @cache_region("r")
        def slow(x):
            runs.append(x)
            return x

        slow(1), slow(1)
        assert cache.stats() == {"r": {fname(slow): {"hits": 1, "misses": 1}}}
        CacheRegion.statistics = False
        assert default_registry.statistics is False
        redis_server.client().config_resetstat()
        slow(1), slow(2)
        assert "cmdstat_hincrby" not in redis_server.client().info("commandstats")
    finally:
        (default_registry.regions, default_registry._cache,
         default_registry.statistics) = saved


def test_bypassed_and_raising_calls_are_misses(impl, redis_server):
    cache = Cache(redis_server.host, redis_server.port, bypass_values=[None])
    cache.client.flushdb()
    registry = RegionRegistry(cache=cache)
    registry.add_region("r", 60)

    def boom(x):
        raise KeyError(x)
    b = registry.cache_region("r")(boom)
    counted_none = registry.cache_region("r", "bypass")(lambda x: None)
    for _ in range(3):
        counted_none(1)
        with pytest.raises(KeyError):
            b(1)
    stats = cache.stats()["r"]
    assert stats[fname(counted_none)] == {"hits": 0, "misses": 3}
    assert stats[fname(b)] == {"hits": 0, "misses": 3}


def test_invalidate_region_keeps_its_statistics(cache, redis_server):
    """As retools: invalidating a region drops its entries, not its counts."""
    registry = RegionRegistry(cache=cache)
    registry.add_region("a", 60)
    registry.add_region("b", 60)
    fa, _ = make_counted(registry, "a")
    fb, _ = make_counted(registry, "b")
    fa(1), fa(1), fb(1)
    assert set(cache.stats()) == {"a", "b"}
    assert registry.invalidate_region("a") == 1
    assert cache.stats()["a"] == {fname(fa): {"hits": 1, "misses": 1}}
    fa(1)  # recomputed: a miss
    assert cache.stats()["a"] == {fname(fa): {"hits": 1, "misses": 2}}


def test_namespace_and_names_with_colons(impl, redis_server):
    redis_server.client().flushdb()
    plain = Cache(redis_server.host, redis_server.port)
    spaced = Cache(redis_server.host, redis_server.port, namespace="app[1]*:")
    registry = RegionRegistry(cache=spaced)
    registry.add_region("r:x", 60)
    f, _ = make_counted(registry, "r:x", "a:b", "calls")
    f(1), f(1), f(1)
    assert redis_server.client().exists("app[1]*:" + STATS_PREFIX + "r:x")
    assert spaced.stats() == {"r:x": {fname(f): {"hits": 2, "misses": 1}}}
    assert fname(f).endswith(" a:b calls")
    assert plain.stats() == {}  # another namespace's statistics are not this cache's


def test_exact_under_threads(cache):
    registry = RegionRegistry(cache=cache)
    registry.add_region("r", 60)
    f, runs = make_counted(registry, "r")
    n = 200
    errors = []

    def worker(t):
        try:
            for i in range(n):
                f((t + i) % 17)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [counts] = cache.stats()["r"].values()
    assert counts["hits"] + counts["misses"] == 8 * n
    assert counts["misses"] == len(runs) and 17 <= len(runs) < 8 * n


WORKER = textwrap.dedent("""
    import sys
    from pyredcache import Cache
    from pyredcache.region import RegionRegistry

    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    registry = RegionRegistry(cache=Cache(host, port))
    registry.add_region("shared", 60)
    runs = []

    def shared_work(x):
        runs.append(x)
        return x * 2

    shared_work.__module__ = "statsworker"
    f = registry.cache_region("shared")(shared_work)
    for i in range(n):
        assert f(i % 23) == (i % 23) * 2
    print(len(runs))
""")


def test_exact_under_processes(impl, redis_server):
    redis_server.client().flushdb()
    n = 300
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, redis_server.host,
                               str(redis_server.port), str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    runs = sum(int(out) for out, _ in outs)
    stats = Cache(redis_server.host, redis_server.port).stats()
    assert stats == {"shared": {"statsworker.shared_work": {"hits": 4 * n - runs,
                                                            "misses": runs}}}
    assert 23 <= runs < 4 * n


def test_cache_cluster_counts_on_the_stats_keys_shard(impl, shards, monkeypatch):
    cluster = CacheCluster({i: {"host": s.host, "port": s.port} for i, s in enumerate(shards)})
    registry = RegionRegistry(cache=cluster)
    registry.add_region("r", 60)
    f, runs = make_counted(registry, "r")
    router = cluster.client.router
    stats_host = router.get_host_for_key(stats_key("", "r"))
    info = f.__pyredcache_region__
    # an argument whose entry lives on another host than the stats hash
    x = next(i for i in range(100)
             if router.get_host_for_key(info.state().builder((i,), {})) != stats_host)
    entry_host = router.get_host_for_key(info.state().builder((x,), {}))
    f(x)
    calls = []
    original = ShardedClient._multi_pipeline

    def recording(self, work):
        calls.append({name: [c[0] for c in cmds] for name, cmds in work.items()})
        return original(self, work)
    monkeypatch.setattr(ShardedClient, "_multi_pipeline", recording)
    for s in shards:
        s.client().config_resetstat()
    assert f(x) == ("v", x)  # a hit: the two hosts at once, one pipeline each
    assert calls == [{entry_host: ["GET"], stats_host: ["HINCRBY"]}]
    assert shards[entry_host].client().info("commandstats")["cmdstat_get"]["calls"] == 1
    assert "cmdstat_hincrby" not in shards[entry_host].client().info("commandstats")
    assert shards[stats_host].client().info("commandstats")["cmdstat_hincrby"]["calls"] == 1
    for i in range(40):
        f(i), f(i)
    assert len(runs) == 40
    assert cluster.stats() == {"r": {fname(f): {"hits": 42, "misses": 40}}}
    # the entries and their key sets stayed on the entries' servers
    assert registry.invalidate_function(f) == 40


def run_cli(*args):
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "pyredcache", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)


def test_cli_stats_table_and_json(impl, redis_server, redis_url):
    cache = Cache(redis_server.host, redis_server.port)
    registry = RegionRegistry(cache=cache)
    registry.add_region("short_term", 60)
    f, _ = make_counted(registry, "short_term")
    for x in [1, 1, 1, 2]:
        f(x)
    out = run_cli("stats", "--url", redis_url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["region", "function", "hits", "misses", "hit", "ratio"]
    row = [line for line in lines if line.startswith("short_term")]
    assert row and row[0].split()[1] == fname(f).split()[0]
    assert row[0].split()[-3:] == ["2", "2", "50.0%"]
    out = run_cli("stats", "--url", redis_url, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == cache.stats() == {
        "short_term": {fname(f): {"hits": 2, "misses": 2}}}
    spaced = Cache(redis_server.host, redis_server.port, namespace="ns:")
    other = RegionRegistry(cache=spaced)
    other.add_region("x", 60)
    g, _ = make_counted(other, "x")
    g(1)
    out = run_cli("stats", "--url", redis_url, "--namespace", "ns:", "--json")
    assert json.loads(out.stdout) == {"x": {fname(g): {"hits": 0, "misses": 1}}}


def test_cli_stats_empty_and_unreachable(redis_url):
    out = run_cli("stats", "--url", redis_url)
    assert out.returncode == 0 and "no region statistics" in out.stdout
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run_cli("stats", "--url", "redis://127.0.0.1:%d/0" % port)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "cannot read statistics" in out.stderr
    out = run_cli("stats")  # no URL
    assert out.returncode == 1 and "--url" in out.stderr
    out = run_cli("--help")
    assert out.returncode == 0 and "stats" in out.stdout
