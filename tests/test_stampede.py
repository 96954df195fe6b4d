"""One computation per miss: the decorator's lock, stale_ttl and beta
options, with real servers and real processes, on both cores."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pyredcache import Cache, CacheCluster, stampede
from pyredcache.exceptions import SerializationError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cache(impl, redis_server, redis_url):
    c = Cache(redis_server.host, redis_server.port, namespace="st:")
    yield c
    c.client.close()


def lock_keys(server):
    return server.client().keys("*:lock")


def test_fifty_processes_missing_one_key_compute_once(impl, redis_server, redis_url):
    script = textwrap.dedent(f"""
        import os, sys, time
        from pyredcache import Cache
        cache = Cache("{redis_server.host}", {redis_server.port}, namespace="st:")

        @cache.cache(key_prefix="report", lock=True)
        def report(day):
            cache.client.execute_command("RPUSH", "runs", os.getpid())
            time.sleep(0.5)  # slow work: everyone else misses meanwhile
            return {{"day": day, "by": os.getpid()}}

        start = float(sys.argv[1])
        time.sleep(max(0.0, start - time.time()))  # all start together
        print(report("2026-11-23")["by"])
    """)
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PYREDCACHE_NO_EXTENSIONS", None)
    if impl.implementation == "python":
        env["PYREDCACHE_NO_EXTENSIONS"] = "1"
    start = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", script, repr(start)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(50)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs if e][:1]
    runs = redis_server.client().lrange("runs", 0, -1)
    assert len(runs) == 1  # the function ran exactly once
    # and all fifty got the value that one computation produced
    assert {out.strip() for out, _ in outs} == {runs[0].decode()}
    assert lock_keys(redis_server) == []  # the lock was released


def test_threads_on_a_cluster_compute_once(impl, shards):
    cluster = CacheCluster({i: {"host": s.host, "port": s.port} for i, s in enumerate(shards)})
    runs = []
    barrier = threading.Barrier(8)

    @cluster.cache(lock=True)
    def slow(x):
        runs.append(x)
        time.sleep(0.3)
        return x * 10

    results = []

    def call():
        barrier.wait(5)
        results.append(slow(7))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs == [7] and results == [70] * 8


def test_a_failing_holder_hands_over(cache):
    runs = []
    first = threading.Event()

    @cache.cache(lock=True)
    def flaky(x):
        runs.append(x)
        if len(runs) == 1:
            first.set()
            time.sleep(0.2)
            raise RuntimeError("first computation fails")
        return "ok"

    errors = []

    def holder():
        try:
            flaky(1)
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=holder)
    t.start()
    first.wait(5)
    assert flaky(1) == "ok"  # waited, saw the lock go without a value, took over
    t.join()
    assert len(errors) == 1 and runs == [1, 1]


def test_a_dead_holder_lock_expires_and_a_waiter_computes(cache, redis_server):
    @cache.cache(lock=True)
    def f(x):
        return x + 1

    key = f.__pyredcache__.builder((1,), {})
    redis_server.client().set(key + b":lock", b"someone-dead", px=300)
    assert f(1) == 2
    assert cache.client.get(key) is not None


def test_past_lock_timeout_a_waiter_computes_alone(cache, redis_server):
    runs = []

    @cache.cache(lock=True, lock_timeout=0.2)
    def f(x):
        runs.append(x)
        return x

    key = f.__pyredcache__.builder((5,), {})
    redis_server.client().set(key + b":lock", b"stuck", px=60_000)
    assert f(5) == 5 and runs == [5]
    assert redis_server.client().get(key + b":lock") == b"stuck"  # not ours: untouched


def test_stale_value_served_while_one_recomputes(cache, redis_server, monkeypatch):
    version = []

    @cache.cache(expire=60, stale_ttl=600)
    def page(name):
        version.append(name)
        return "v%d" % len(version)

    assert page("home") == "v1"
    key = page.__pyredcache__.builder(("home",), {})
    assert 600 < redis_server.client().ttl(key) <= 660  # kept past its expiry
    real = stampede._now
    monkeypatch.setattr(stampede, "_now", lambda: real() + 120)  # now stale
    redis_server.client().set(key + b":lock", b"another-recomputer", px=5000)
    assert page("home") == "v1"  # someone else recomputes: served stale at once
    assert version == ["home"]
    redis_server.client().delete(key + b":lock")
    assert page("home") == "v2"  # this caller takes the lock and recomputes
    assert version == ["home", "home"]
    assert lock_keys(redis_server) == []


def test_xfetch_recomputes_early_only_when_drawn(cache, monkeypatch):
    runs = []

    @cache.cache(expire=60, beta=1000.0)
    def slow(x):
        runs.append(x)
        time.sleep(0.02)  # delta of about 20 ms
        return len(runs)

    assert slow(1) == 1
    monkeypatch.setattr(stampede, "_random", lambda: 0.0)  # ln(1) = 0: never early
    assert slow(1) == 1 and len(runs) == 1
    # u = 1e-9: -delta * beta * ln(u) is about 400 s past now, beyond expiry
    monkeypatch.setattr(stampede, "_random", lambda: 1.0 - 1e-9)
    assert slow(1) == 2 and len(runs) == 2


def test_batch_mode_reads_and_writes_guarded_entries(cache):
    runs = []

    @cache.cache(expire=60, stale_ttl=60)
    def f(x):
        runs.append(x)
        return x * 2

    assert f(1) == 2
    with cache.batch_mode():
        a, b = f(1), f(2)
    assert (a.value, b.value) == (2, 4) and runs == [1, 2]
    assert f(2) == 4 and runs == [1, 2]  # the batch wrote an entry f can read


def test_bad_stored_bytes_are_a_miss(cache, redis_server):
    @cache.cache(beta=1.0)
    def f(x):
        return x

    f(3)
    key = f.__pyredcache__.builder((3,), {})
    redis_server.client().set(key, stampede.ENVELOPE + b"\x00")  # truncated header
    assert f(3) == 3
    assert cache.client.get(key).startswith(stampede.ENVELOPE)
    guard_decode = stampede.Guard(cache.client, cache.serializer, cache._bypass, cache._report,
                                  60, False, 10.0, None, 1.0).decode
    with pytest.raises(SerializationError):
        guard_decode(stampede.ENVELOPE + b"\x00")


def test_plain_entries_stay_readable_when_options_are_added(cache):
    @cache.cache(key_prefix="same")
    def plain(x):
        return "plain"

    plain(1)

    @cache.cache(key_prefix="same", stale_ttl=10)
    def guarded(x):
        return "guarded"

    assert guarded(1) == "plain"  # an entry without a header is a fresh hit


def test_option_errors(cache, impl, redis_server):
    with pytest.raises(ValueError, match="lock_timeout"):
        cache.cache(lock=True, lock_timeout=0)(lambda: 1)
    with pytest.raises(TypeError, match="beta"):
        cache.cache(beta="1")(lambda: 1)
    with pytest.raises(ValueError, match="stale_ttl"):
        cache.cache(stale_ttl=-1)(lambda: 1)
    no_expiry = Cache(redis_server.host, redis_server.port, default_expire=None)
    with pytest.raises(ValueError, match="need an expiry"):
        no_expiry.cache(stale_ttl=5)(lambda: 1)


def test_lock_taken_after_the_value_was_stored_does_not_recompute(cache, monkeypatch):
    # A caller whose GET missed, then got descheduled until the holder had
    # stored the value and released the lock, must not compute again.
    runs = []

    @cache.cache(lock=True)
    def f(x):
        runs.append(x)
        return x * 3

    assert f(2) == 6 and runs == [2]
    real_get = cache.client.get
    misses = [True]

    def get_missing_once(key):
        if misses:
            misses.pop()
            return None
        return real_get(key)

    monkeypatch.setattr(cache.client, "get", get_missing_once)
    assert f(2) == 6
    assert runs == [2]
