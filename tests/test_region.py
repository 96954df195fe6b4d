"""Regions, region_cache's face (pyredcache.region): against real servers."""

from __future__ import annotations

import gc
import os
import pickle
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import blinker
import pytest

from pyredcache import Cache, CacheCluster
from pyredcache.clients import as_client
from pyredcache.exceptions import TimeoutError
from pyredcache.region import Region, RegionCache

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "reference" / "region_cache-README.rst"


def make(redis_server, **kwargs) -> RegionCache:
    return RegionCache(host=redis_server.host, port=redis_server.port, **kwargs)


def run_py(code: str, timeout: float = 30) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- the mapping ---------------------------------------------------------------------


def test_mapping_semantics(impl, redis_server, redis_url):
    rc = make(redis_server)
    r = rc.region("abc.xyz")
    assert isinstance(r, Region) and r.name == "root.abc.xyz"
    assert "a" not in r
    with pytest.raises(KeyError):
        r["a"]
    r["a"] = {"n": 1}
    r["none"] = None
    r[7] = b"bytes"
    assert "a" in r and "none" in r
    assert r["a"] == {"n": 1}
    assert r["none"] is None  # a cached None is a hit
    assert r[7] == r["7"] == b"bytes"
    assert len(r) == 3
    assert sorted(r) == ["7", "a", "none"]
    assert dict(r.items())["a"] == {"n": 1}
    del r["a"]
    assert "a" not in r
    with pytest.raises(KeyError):
        del r["a"]
    with pytest.raises(TypeError):
        r[1.5] = 1
    # one hash holds the data, under the region's hash tag
    raw = redis_server.client()
    assert raw.type("{root.abc.xyz}") == b"hash"
    assert raw.hlen("{root.abc.xyz}") == 2
    assert raw.type("{root.abc}:children") == b"set"


def test_keys_share_a_hash_tag(impl, redis_server, redis_url):
    rc = make(redis_server)
    r = rc.region("abc.xyz")
    r["k"] = 1
    r.region("deep")["k"] = 1
    tag = "{root.abc.xyz}"
    assert r.key.startswith(tag) and r.children_key.startswith(tag)
    raw = redis_server.client()
    assert raw.exists(r.key, r.children_key) == 2


def test_default_serializer_is_native_and_pickle_module_works(impl, redis_server, redis_url):
    raw = redis_server.client()
    rc = make(redis_server)
    rc.region("n")["k"] = (1, 2)
    data = raw.hget("{root.n}", "k")
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)  # not pickle: safe by default
    assert rc.region("n")["k"] == (1, 2)
    prc = make(redis_server, serializer=pickle)
    prc.region("p")["k"] = {1, 2}
    assert pickle.loads(raw.hget("{root.p}", "k")) == {1, 2}
    assert prc.region("p")["k"] == {1, 2}
    # a region's own serializer, inherited by its children
    rc2 = make(redis_server)
    pr = rc2.region("q", serializer=pickle)
    pr.region("c")["k"] = 5
    assert pickle.loads(raw.hget("{root.q.c}", "k")) == 5


def test_undecodable_value_is_a_miss(impl, redis_server, redis_url):
    rc = make(redis_server)
    redis_server.client().hset("{root.bad}", "k", b"\xc1garbage")
    r = rc.region("bad")
    with pytest.raises(KeyError):
        r["k"]
    assert r.get_or_compute("k", 3) == 3
    assert r["k"] == 3


def test_construction_does_not_connect(impl):
    from tests.conftest import free_port

    rc = RegionCache(host="127.0.0.1", port=free_port())
    r = rc.region("a.b.c", timeout=5)
    assert r.timeout == 5  # made without talking to anyone
    from pyredcache.exceptions import ConnectionError
    with pytest.raises(ConnectionError):
        r["x"] = 1


def test_cache_and_redis_arguments(impl, redis_server, redis_url):
    cache = Cache(redis_server.host, redis_server.port, namespace="ns:")
    rc = RegionCache(cache=cache)
    rc.region("a")["k"] = 1
    raw = redis_server.client()
    assert raw.hexists("ns:{root.a}", "k")
    assert as_client(rc) is cache.client
    assert as_client(rc.region("a")) is cache.client
    rr = RegionCache(redis=raw)
    rr.region("b")["k"] = 2
    assert raw.hexists("{root.b}", "k")
    with pytest.raises(TypeError):
        RegionCache(cache=cache, op_timeout=1)
    with pytest.raises(TypeError):
        RegionCache(cache=CacheCluster({"a": {"host": redis_server.host,
                                              "port": redis_server.port}})).region("x")
    with pytest.raises(ValueError):
        rc.region("a..b")
    with pytest.raises(ValueError):
        rc.region("a{b}")


# -- nesting ------------------------------------------------------------------------


def test_nesting_and_children(impl, redis_server, redis_url):
    rc = make(redis_server)
    assert rc.region("abc").region("xyz") is rc.region("abc.xyz")
    assert rc.region("root.abc") is rc.region("abc")
    rc.region("abc.xyz")["k"] = 1
    rc.region("abc.uvw.deep")["k"] = 1
    assert [c.name for c in rc.region("abc").children()] == ["root.abc.uvw", "root.abc.xyz"]
    assert [c.name for c in rc.region().children()] == ["root.abc"]
    # another process's RegionCache sees the same tree
    out = run_py(f"""
        from pyredcache.region import RegionCache
        rc = RegionCache(host={redis_server.host!r}, port={redis_server.port})
        print([c.name for c in rc.region('abc.uvw').children()])
    """)
    assert out.strip() == "['root.abc.uvw.deep']"


def test_cascade_invalidation_seen_by_another_process(impl, redis_server, redis_url):
    rc = make(redis_server)
    names = ["abc", "abc.xyz", "abc.xyz.deep", "abc.other"]
    for n in names:
        rc.region(n)["k"] = n
    rc.region("sibling")["k"] = 1
    for n in names:
        assert rc.region(n)["k"] == n
    out = run_py(f"""
        from pyredcache.region import RegionCache
        rc = RegionCache(host={redis_server.host!r}, port={redis_server.port})
        print(rc.region('abc').invalidate())
    """)
    assert int(out) == 6  # 4 hashes, and the children sets of abc and abc.xyz
    for n in names:
        assert "k" not in rc.region(n)
        with pytest.raises(KeyError):
            rc.region(n)["k"]
    assert rc.region("sibling")["k"] == 1
    raw = redis_server.client()
    assert not [k for k in raw.keys("*") if k.startswith(b"{root.abc")]


def test_cascade_invalidation_in_this_process_seen_by_another(impl, redis_server, redis_url):
    rc = make(redis_server)
    for n in ["p", "p.c", "p.c.g"]:
        rc.region(n)["k"] = 1
    rc.region("p").invalidate()
    out = run_py(f"""
        from pyredcache.region import RegionCache
        rc = RegionCache(host={redis_server.host!r}, port={redis_server.port})
        print([('k' in rc.region(n)) for n in ['p', 'p.c', 'p.c.g']])
    """)
    assert out.strip() == "[False, False, False]"


def test_a_write_after_invalidation_links_the_region_again(impl, redis_server, redis_url):
    rc = make(redis_server)
    rc.region("a.b")["k"] = 1
    rc.region("a").invalidate()
    rc.region("a.b")["k"] = 2  # the parent's children set is gone: written again
    rc.region("a").invalidate()
    assert "k" not in rc.region("a.b")


def test_invalidation_is_one_round_trip(impl, redis_server, redis_url):
    rc = make(redis_server)
    for n in ["t", "t.a", "t.a.b", "t.c"]:
        rc.region(n)["k"] = 1
    raw = redis_server.client()
    raw.config_resetstat()
    rc.region("t").invalidate()
    stats = raw.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1
    # what else ran, ran inside the script (a NOSCRIPT retry is an EVAL)
    assert set(stats) <= {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_smembers",
                          "cmdstat_del", "cmdstat_config|resetstat"}
    assert all("k" not in rc.region(n) for n in ["t", "t.a", "t.a.b", "t.c"])


# -- transactions -------------------------------------------------------------------


def test_with_block_is_one_transaction(impl, redis_server, redis_url):
    rc = make(redis_server, serializer=pickle)
    raw = redis_server.client()
    raw.config_resetstat()
    with rc.region("a.b") as r:
        r["x"] = 1
        r["y"] = 2
        assert raw.hget("{root.a.b}", "x") is None  # queued, not sent
        with pytest.raises(KeyError):
            r["x"]  # reads see Redis
        with r:  # nested: joins the outer transaction
            r["z"] = 3
        assert raw.hget("{root.a.b}", "z") is None
    assert pickle.loads(raw.hget("{root.a.b}", "x")) == 1
    assert pickle.loads(raw.hget("{root.a.b}", "z")) == 3
    assert raw.info("commandstats")["cmdstat_multi"]["calls"] == 1


def test_with_block_that_raises_sends_nothing(impl, redis_server, redis_url):
    rc = make(redis_server)
    raw = redis_server.client()
    rc.region("a.b")["keep"] = 1
    raw.config_resetstat()
    with pytest.raises(RuntimeError):
        with rc.region("a.b") as r:
            r["x"] = 1
            del r["keep"]
            raise RuntimeError("boom")
    stats = raw.info("commandstats")
    assert "cmdstat_multi" not in stats and "cmdstat_hset" not in stats
    assert "cmdstat_hdel" not in stats
    assert rc.region("a.b")["keep"] == 1 and "x" not in rc.region("a.b")
    # the region works normally afterwards
    rc.region("a.b")["y"] = 2
    assert raw.hexists("{root.a.b}", "y")


def test_transactions_of_two_threads_are_separate(impl, redis_server, redis_url):
    rc = make(redis_server)
    r = rc.region("th")
    inside = threading.Event()
    done = threading.Event()

    def other():
        with r:
            r["other"] = 1
            inside.set()
            done.wait(5)
            raise RuntimeError("discard")

    t = threading.Thread(target=lambda: pytest.raises(RuntimeError, other))
    t.start()
    inside.wait(5)
    r["mine"] = 1  # not queued in the other thread's transaction
    done.set()
    t.join()
    assert "mine" in r and "other" not in r


def test_two_processes_never_interleave_half_a_transaction(impl, redis_server, redis_url):
    code = f"""
        import sys
        from pyredcache.region import RegionCache
        rc = RegionCache(host={redis_server.host!r}, port={redis_server.port})
        r = rc.region('shared')
        me = sys.argv[1]
        for i in range(400):
            with r:
                r['a'] = me + str(i)
                r['b'] = me + str(i)
                r['c'] = me + str(i)
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), name], env=env)
             for name in ("p", "q")]
    rc = make(redis_server)
    raw = redis_server.client()
    seen = 0
    while any(p.poll() is None for p in procs):
        values = raw.hmget("{root.shared}", "a", "b", "c")
        if values[0] is not None:
            seen += 1
            assert values[0] == values[1] == values[2]
    assert all(p.wait() == 0 for p in procs)
    assert seen > 0
    final = rc.region("shared")
    assert final["a"] == final["b"] == final["c"]


# -- timeouts -----------------------------------------------------------------------


def test_timeouts_and_inheritance(impl, redis_server, redis_url):
    rc = make(redis_server)
    raw = redis_server.client()
    parent = rc.region("t", timeout=100)
    child = parent.region("c")
    own = rc.region("t.own", timeout=50)
    frac = rc.region("t.frac", timeout=2.5)
    assert child.timeout == 100 and own.timeout == 50 and rc.region().timeout is None
    for r in (parent, child, own, frac):
        r["k"] = 1
    assert 90 < raw.ttl("{root.t}") <= 100
    assert 90 < raw.ttl("{root.t}:children") <= 100
    assert 90 < raw.ttl("{root.t.c}") <= 100
    assert 40 < raw.ttl("{root.t.own}") <= 50
    assert 2000 < raw.pttl("{root.t.frac}") <= 2500
    rc.region("none")["k"] = 1
    assert raw.ttl("{root.none}") == -1
    # a write resets the TTL
    raw.expire("{root.t}", 10)
    parent["k2"] = 2
    assert raw.ttl("{root.t}") > 90
    # as does reset_timeout()
    raw.expire("{root.t}", 10)
    assert parent.reset_timeout() is True
    assert raw.ttl("{root.t}") > 90
    assert rc.region("none").reset_timeout() is False
    assert 90 < parent.ttl() <= 100


def test_region_expires(impl, redis_server, redis_url):
    rc = make(redis_server)
    r = rc.region("short", timeout=0.2)
    r["k"] = 1
    assert r["k"] == 1
    time.sleep(0.4)
    assert "k" not in r


def test_update_resets_timeout_false(impl, redis_server, redis_url):
    rc = make(redis_server)
    raw = redis_server.client()
    r = rc.region("fixed", timeout=100, update_resets_timeout=False)
    assert r.region("c").update_resets_timeout is False
    r["k"] = 1
    assert 90 < raw.ttl("{root.fixed}") <= 100  # the first write starts the clock
    raw.expire("{root.fixed}", 10)
    r["k2"] = 2
    assert raw.ttl("{root.fixed}") <= 10  # later writes leave it running
    with r:
        r["k3"] = 3
    assert raw.ttl("{root.fixed}") <= 10


# -- get_or_compute and cached --------------------------------------------------------


def test_get_or_compute(impl, redis_server, redis_url):
    rc = make(redis_server)
    r = rc.region("g")
    calls = []
    assert r.get_or_compute("k", lambda: calls.append(1) or "v") == "v"
    assert r.get_or_compute("k", lambda: calls.append(1) or "w") == "v"
    assert calls == [1]
    assert r.get_or_compute("plain", 5) == 5 and r["plain"] == 5
    r["n"] = None
    assert r.get_or_compute("n", 1) is None


def _adder(a, b=0):
    _adder.calls += 1
    return a + b


def test_cached_keys(impl, redis_server, redis_url):
    rc = make(redis_server)
    r = rc.region("f")
    _adder.calls = 0
    f = r.cached(key_prefix="adder")(_adder)
    assert f(1, 2) == 3 and f(1, b=2) == 3 and f(a=1, b=2) == 3
    assert _adder.calls == 1 and len(r) == 1
    assert f(1, 3) == 4 and len(r) == 2
    field = next(iter(r))
    assert field.startswith("adder:")
    out = run_py(f"""
        from pyredcache.region import RegionCache
        rc = RegionCache(host={redis_server.host!r}, port={redis_server.port})
        r = rc.region('f')
        calls = []
        @r.cached(key_prefix='adder')
        def adder(a, b=0):
            calls.append(1)
            return a + b
        print(adder(1, b=2), len(calls), sorted(r))
    """)
    assert out.split()[0:2] == ["3", "0"]  # a hit: equal keys across processes
    assert f.invalidate(1, b=2) is True
    assert f(1, 2) == 3 and _adder.calls == 3
    # @r.cached without parentheses; None results are cached
    seen = []

    @r.cached
    def none(x):
        seen.append(x)

    assert none(1) is None and none(1) is None and seen == [1]
    with pytest.raises(TypeError):
        none(object())  # not keyable: never pickled


# -- signals ------------------------------------------------------------------------


def test_invalidate_on_blinker_signals(impl, redis_server, redis_url):
    rc = make(redis_server)
    mine = blinker.Namespace()
    sig = mine.signal("changed")
    r = rc.region("sig")
    r.invalidate_on(sig, "pyredcache-test-named")
    r.invalidate_on(sig)  # twice: one receiver
    assert len(sig.receivers) == 1
    r.region("child")["k"] = 1
    r["k"] = 1
    sig.send("sender")
    assert "k" not in r and "k" not in r.region("child")
    r["k"] = 1
    blinker.signal("pyredcache-test-named").send(None, extra=1)
    assert "k" not in r


def test_invalidate_on_keeps_the_region_alive(impl, redis_server, redis_url):
    sig = blinker.Namespace().signal("gc")

    def setup():
        rc = make(redis_server)
        rc.region("alive").invalidate_on(sig)
        rc.region("alive")["k"] = 1

    setup()
    gc.collect()
    assert redis_server.client().hexists("{root.alive}", "k")
    sig.send(None)
    assert not redis_server.client().exists("{root.alive}")


# -- Flask --------------------------------------------------------------------------


def test_init_app_two_apps(impl, redis_server, redis_url):
    import flask  # in the test extra: a missing Flask fails here, it does not skip
    raw1 = redis_server.client(db=1)
    raw2 = redis_server.client(db=2)
    rc = RegionCache()
    app1 = flask.Flask("one")
    app1.config["REGION_CACHE_URL"] = f"redis://{redis_server.host}:{redis_server.port}/1"
    app1.config["REGION_CACHE_OP_TIMEOUT"] = 0.5
    app2 = flask.Flask("two")
    app2.config["CACHE_REDIS_URL"] = f"redis://{redis_server.host}:{redis_server.port}/2"
    rc.init_app(app1)
    rc.init_app(app2)
    assert "region_cache" in app1.extensions and "region_cache" in app2.extensions
    assert app1.extensions["region_cache"].cache is not app2.extensions["region_cache"].cache
    assert not any(v is app1 or v is app2 for v in vars(rc).values())
    with app1.app_context():
        rc.region("r")["k"] = "one"
        assert rc.cache.client.connection_kwargs["socket_timeout"] == 0.5
    with app2.app_context():
        rc.region("r")["k"] = "two"
        assert rc.region("r")["k"] == "two"
    with app1.app_context():
        assert rc.region("r")["k"] == "one"
    assert raw1.hexists("{root.r}", "k") and raw2.hexists("{root.r}", "k")
    assert not redis_server.client(db=0).exists("{root.r}")
    app3 = flask.Flask("three")
    app3.config.update(REGION_CACHE_HOST=redis_server.host,
                       REGION_CACHE_PORT=redis_server.port, REGION_CACHE_DB=3)
    rc.init_app(app3)
    with app3.app_context():
        rc.region("r")["k"] = 3
    assert redis_server.client(db=3).hexists("{root.r}", "k")


# -- op_timeout -----------------------------------------------------------------------


@pytest.mark.timeout(30)  # a hang fails here; no time is asserted
def test_op_timeout_on_a_stopped_server_is_a_miss(impl, server):
    rc = RegionCache(host=server.host, port=server.port, op_timeout=0.3)
    strict = RegionCache(host=server.host, port=server.port, op_timeout=0.3,
                         raise_on_timeout=True)
    r = rc.region("a")
    r["k"] = 1
    strict.region("a")["k"]  # connected before the stop
    server.pause()
    try:
        with pytest.raises(KeyError):
            r["k"]
        assert ("k" in r) is False
        assert r.get_or_compute("k", lambda: "alt") == "alt"
        with pytest.raises(TimeoutError):
            strict.region("a")["k"]
    finally:
        server.resume()
    assert r["k"] == 1  # a new connection after the timeout


@pytest.mark.timeout(30)
def test_timeout_backoff_skips_redis(impl, server):
    rc = RegionCache(host=server.host, port=server.port, op_timeout=0.2,
                     timeout_backoff=30)
    r = rc.region("a")
    r["k"] = 1
    server.pause()
    try:
        with pytest.raises(KeyError):
            r["k"]
        sent = []
        read_client = r._backend.read_client
        real = read_client.execute_command
        read_client.execute_command = lambda *a: sent.append(a) or real(*a)
        try:
            for _ in range(5):
                assert "k" not in r  # misses at once: nothing sent
        finally:
            del read_client.execute_command
        assert sent == []
    finally:
        server.resume()


# -- the README -----------------------------------------------------------------------


def readme_examples() -> list[str]:
    text = README.read_text()
    blocks = re.findall(r"::\n\n((?:(?:    .*)?\n)+)", text)
    return [textwrap.dedent(b) for b in blocks if b.strip()]


def test_readme_has_three_examples():
    assert len(readme_examples()) == 3


def test_readme_examples(impl, redis_server, redis_url):
    transaction, signals, nesting = readme_examples()
    rc = make(redis_server)
    region = rc.region
    # the transaction example: x not cached yet, so r[x] raises KeyError (reads
    # inside the block see Redis) and the block's writes are discarded
    with pytest.raises(KeyError):
        exec(transaction, {"region": region, "x": "x"})
    assert "x" not in region("abc.xyz")
    # with x cached, it runs through and commits
    region("abc.xyz")["x"] = 100
    region("abc.xyz")[100] = "gone"
    exec(transaction, {"region": region, "x": "x"})
    assert region("abc.xyz")["x"] == 100 and 100 not in region("abc.xyz")
    # signals: real blinker signals
    exec(signals, {"region": region, "blinker": blinker})
    for name in "abcd":
        region("abc.xyz")["k"] = 1
        blinker.signal(name).send(None)
        assert "k" not in region("abc.xyz")
    # nesting
    region("abc")["k"] = 1
    region("abc.xyz")["k"] = 1
    exec(nesting, {"region": region})
    assert "k" not in region("abc") and "k" not in region("abc.xyz")


# -- docs/regions.rst -----------------------------------------------------------------

REGIONS_DOC = Path(__file__).resolve().parent.parent / "docs" / "regions.rst"


def test_docs_regions_page_runs(impl, redis_url, monkeypatch):
    """The user guide's examples, as doctests, against the session server."""
    import doctest

    from pyredcache.region import default_registry
    monkeypatch.setenv("REDIS_URL", redis_url)
    saved = (default_registry.regions, default_registry._cache, default_registry.statistics)
    default_registry.regions, default_registry._cache = {}, None
    try:
        result = doctest.testfile(str(REGIONS_DOC), module_relative=False, globs={},
                                  optionflags=doctest.ELLIPSIS, report=True, verbose=False)
    finally:
        default_registry.regions, default_registry._cache, default_registry.statistics = saved
    assert result.failed == 0
    assert result.attempted >= 40
