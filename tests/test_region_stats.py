"""Region statistics (retools' face, and region_cache's with
``RegionCache(statistics=True)``): hits and misses per region and function,
counted in Redis in the lookup's round trip; ``cache.stats()``;
``python -m pyredcache stats``.  Against real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import RedisServer

from pyredcache import Cache, CacheCluster
from pyredcache.cache import STATS_PREFIX, stats_keys
from pyredcache.clients.shards import ShardedClient
from pyredcache.region import (
    LOOKUPS,
    CacheRegion,
    RegionCache,
    RegionRegistry,
    default_registry,
)

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
    assert sorted(raw.keys(STATS_PREFIX + "{short}:*")) == [
        (STATS_PREFIX + "{short}:" + fname(f) + ":calls").encode(),
        (STATS_PREFIX + "{short}:" + fname(f) + ":misses").encode()]
    assert stats_keys("", "short", fname(f)) == tuple(sorted(raw.keys(STATS_PREFIX + "{short}:*")))
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
    assert stats["cmdstat_get"]["calls"] == 1 and stats["cmdstat_incr"]["calls"] == 1
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
    assert "cmdstat_incr" not in raw.info("commandstats")
    assert cache.stats() == {}
    counts.clear()
    f(1)  # a hit: the plain GET of before
    assert counts == {"get": 1}
    # turned on and off again at run time, as retools' CacheRegion.statistics
    registry.statistics = True
    f(1)
    assert raw.info("commandstats")["cmdstat_incr"]["calls"] == 1
    registry.statistics = False
    raw.config_resetstat()
    f(1), f(5)
    assert "cmdstat_incr" not in raw.info("commandstats")
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
        assert "cmdstat_incr" not in redis_server.client().info("commandstats")
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
    assert redis_server.client().exists(*stats_keys("app[1]*:", "r:x", fname(f))) == 2
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
    stats_host = router.get_host_for_key(stats_keys("", "r", fname(f))[0])  # the calls counter
    info = f.__pyredcache_region__
    # an argument whose entry lives on another host than the calls counter
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
    assert calls == [{entry_host: ["GET"], stats_host: ["INCR"]}]
    assert shards[entry_host].client().info("commandstats")["cmdstat_get"]["calls"] == 1
    assert "cmdstat_incr" not in shards[entry_host].client().info("commandstats")
    assert shards[stats_host].client().info("commandstats")["cmdstat_incr"]["calls"] == 1
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


# -- region_cache's face: RegionCache(statistics=True) -------------------------------



@pytest.fixture
def regions(impl, redis_server):
    redis_server.client().flushdb()
    return RegionCache(host=redis_server.host, port=redis_server.port, statistics=True)


def _triple(x):
    return x * 3


def test_region_lookups_and_cached_functions_are_counted(regions, redis_server):
    users = regions.region("users")
    admins = regions.region("users.admins")
    users["a"] = 1
    assert users["a"] == 1                       # hit
    with pytest.raises(KeyError):
        users["b"]                               # miss (nothing stored)
    assert users.get("b", "dflt") == "dflt"      # miss
    assert users.get_or_compute("c", lambda: 3) == 3   # miss, stored
    assert users.get_or_compute("c", lambda: 4) == 3   # hit
    assert "a" in users and "zz" not in users    # HEXISTS: not a lookup
    tripled = admins.cached(_triple)
    named = admins.cached(key_prefix="thrice")(_triple)
    assert [tripled(2), tripled(2), tripled(5), named(1)] == [6, 6, 15, 3]
    assert regions.cache.stats() == {
        "root.users": {LOOKUPS: {"hits": 2, "misses": 3}},
        "root.users.admins": {MODULE + "._triple": {"hits": 1, "misses": 2},
                              "thrice": {"hits": 0, "misses": 1}},
    }
    raw = redis_server.client()
    # the counters carry the region's own hash tag
    calls, misses = stats_keys("", "root.users", LOOKUPS)
    assert calls == (STATS_PREFIX + "{root.users}:[key]:calls").encode()
    assert users.key == "{root.users}"  # one hash tag: one Redis Cluster slot
    assert raw.mget(calls, misses) == [b"5", b"3"]
    # invalidation drops the entries, not the counts
    users.invalidate()
    assert regions.cache.stats()["root.users"] == {LOOKUPS: {"hits": 2, "misses": 3}}


def test_region_hit_is_one_round_trip_and_a_miss_adds_none(regions, redis_server):
    r = regions.region("r")
    plain = RegionCache(host=redis_server.host, port=redis_server.port).region("p")
    r["k"] = plain["k"] = 1
    raw = redis_server.client()
    counts: dict = {}
    spy(r._backend.client, counts)
    raw.config_resetstat()
    assert r["k"] == 1
    assert counts == {"pipeline_execute": 1}
    stats = raw.info("commandstats")
    assert stats["cmdstat_hget"]["calls"] == 1 and stats["cmdstat_incr"]["calls"] == 1
    # get_or_compute's miss: its counter rides in the write's round trip
    counts.clear()
    assert r.get_or_compute("new", lambda: 2) == 2
    assert counts == {"pipeline_execute": 2}
    plain_counts: dict = {}
    spy(plain._backend.client, plain_counts)
    assert plain.get_or_compute("new", lambda: 2) == 2
    assert sum(plain_counts.values()) == 2
    # a bare miss stores nothing: its counter goes alone (one more round trip)
    counts.clear()
    assert r.get("absent") is None
    assert counts == {"pipeline_execute": 1, "execute_command": 1}
    assert regions.cache.stats() == {"root.r": {LOOKUPS: {"hits": 1, "misses": 2}}}


def test_region_statistics_off_by_default_cost_nothing(impl, redis_server):
    redis_server.client().flushdb()
    rc = RegionCache(host=redis_server.host, port=redis_server.port)
    r = rc.region("r")
    r["k"] = 1
    raw = redis_server.client()
    raw.config_resetstat()
    counts: dict = {}
    spy(r._backend.client, counts)
    assert r["k"] == 1 and r.get("x") is None and r.get_or_compute("y", 2) == 2
    assert r.cached(_triple)(1) == 3
    assert "cmdstat_incr" not in raw.info("commandstats")
    counts.clear()
    r["k"]
    assert counts == {"execute_command": 1}  # the plain HGET
    assert rc.cache.stats() == {}


def test_region_miss_that_raises_or_times_out(regions, server):
    rc = RegionCache(host=server.host, port=server.port, statistics=True, op_timeout=0.3)
    r = rc.region("r")

    def boom():
        raise RuntimeError("no")
    with pytest.raises(RuntimeError):
        r.get_or_compute("k", boom)  # it ran: a miss, though nothing is stored
    # inside a transaction the miss counter is sent at once, not queued
    with pytest.raises(ValueError):
        with r:
            r.get_or_compute("t", 1)
            raise ValueError
    assert "t" not in r
    assert rc.cache.stats() == {"root.r": {LOOKUPS: {"hits": 0, "misses": 2}}}
    server.pause()
    try:  # a read that times out sends no miss counter: no second wait on a
        # server that does not answer (the HINCRBY of its calls was sent,
        # and the server runs it when it wakes: documented as best effort)
        assert r.get_or_compute("k", "alt") == "alt"
        with pytest.raises(KeyError):
            r["k"]
    finally:
        server.resume()
    assert rc.cache.stats()["root.r"][LOOKUPS]["misses"] == 2


def test_region_counts_exact_under_threads(regions):
    r = regions.region("t")
    runs = []
    lock = threading.Lock()

    def compute(x):
        with lock:
            runs.append(x)
        return x
    cached = r.cached(key_prefix="work")(compute)
    errors = []

    def worker(t):
        try:
            for i in range(200):
                assert cached((t + i) % 13) == (t + i) % 13
                assert r.get_or_compute("shared", 7) == 7
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stats = regions.cache.stats()["root.t"]
    assert stats["work"]["hits"] + stats["work"]["misses"] == 1600
    assert stats["work"]["misses"] == len(runs) and 13 <= len(runs) < 1600
    assert stats[LOOKUPS]["hits"] + stats[LOOKUPS]["misses"] == 1600
    assert 1 <= stats[LOOKUPS]["misses"] <= 8


REGION_WORKER = textwrap.dedent("""
    import sys
    from pyredcache import RegionCache

    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    r = RegionCache(host=host, port=port, statistics=True).region("shared")
    runs = 0
    for i in range(n):
        def compute(x=i % 19):
            global runs
            runs += 1
            return x
        assert r.get_or_compute(str(i % 19), compute) == i % 19
    print(runs)
""")


def test_region_counts_exact_under_processes(impl, redis_server):
    redis_server.client().flushdb()
    n = 300
    procs = [subprocess.Popen([sys.executable, "-c", REGION_WORKER, redis_server.host,
                               str(redis_server.port), str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    runs = sum(int(out) for out, _ in outs)
    assert Cache(redis_server.host, redis_server.port).stats() == {
        "root.shared": {LOOKUPS: {"hits": 4 * n - runs, "misses": runs}}}
    assert 19 <= runs < 4 * n


def test_region_statistics_with_a_read_replica(impl, server):
    """Reads go to the replica (rr_host), writes and counters to the
    master; a counted hit is one round trip to each, at once."""
    replica = RedisServer("--replicaof", server.host, str(server.port))
    try:
        rc = RegionCache(host=server.host, port=server.port, rr_host=replica.host,
                         rr_port=replica.port, statistics=True)
        r = rc.region("rr")
        r["k"] = "v"
        deadline = time.monotonic() + 10
        while not replica.client().hexists(r.key, "k"):
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.02)
        replica.client().config_resetstat()
        server.client().config_resetstat()
        assert r["k"] == "v" and r.get("nope") is None
        on_replica = replica.client().info("commandstats")
        on_master = server.client().info("commandstats")
        assert on_replica["cmdstat_hget"]["calls"] == 2
        assert "cmdstat_hget" not in on_master
        assert on_master["cmdstat_incr"]["calls"] == 3
        assert rc.cache.stats() == {"root.rr": {LOOKUPS: {"hits": 1, "misses": 1}}}
    finally:
        replica.close()


def test_region_statistics_flask_setting(impl, redis_server, redis_url):
    import flask
    rc = RegionCache()
    on, off = flask.Flask("on"), flask.Flask("off")
    on.config.update(REGION_CACHE_URL=redis_url, REGION_CACHE_STATISTICS=True)
    off.config.update(REGION_CACHE_URL=redis_url)
    rc.init_app(on)
    rc.init_app(off)
    with off.app_context():
        rc.region("x").get("k")
        assert rc.cache.stats() == {}
    with on.app_context():
        rc.region("x").get("k")
        assert rc.cache.stats() == {"root.x": {LOOKUPS: {"hits": 0, "misses": 1}}}
