"""A cache that fails open (``ignore_errors=True``) and the circuit breaker
(pyredcache.clients.breaker), against real servers that the tests kill,
restart and stop (SIGSTOP)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from pyredcache import Cache, CacheCluster, RegionCache
from pyredcache.clients import breaker as breaker_module
from pyredcache.clients.breaker import CircuitBreaker
from pyredcache.clients.client import Client
from pyredcache.exceptions import (
    CircuitOpenError,
    ConnectionError,
    ResponseError,
    TimeoutError,
)
from pyredcache.region import RegionRegistry

from conftest import FakeClock, free_port

FAST = dict(socket_timeout=0.2, socket_connect_timeout=0.2)


def dead_url() -> str:
    return "redis://127.0.0.1:%d/0" % free_port()  # nothing listens: refused at once


# -- the breaker's state machine --------------------------------------------------------


def test_breaker_opens_after_threshold_and_probes_back(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(breaker_module, "_clock", clock)
    b = CircuitBreaker("h:1", threshold=3, cooldown=2.0)
    assert b.state == "closed"
    for _ in range(2):
        b.failure(ConnectionError("refused"))
    assert b.state == "closed" and not b.open_until  # calls still go
    b.success()
    assert b.failures == 0  # a success resets the count: consecutive failures only
    for _ in range(3):
        b.failure(ConnectionError("refused"))
    assert b.state == "open"
    with pytest.raises(CircuitOpenError, match="circuit open after 3 consecutive"):
        b.before()
    assert b.health()["rejected"] == 1 and b.health()["retry_in"] == 2.0
    clock.advance(2.0)
    assert b.state == "half-open"
    b.before()  # the probe goes
    with pytest.raises(CircuitOpenError, match="a probe is in flight"):
        b.before()  # one probe at a time
    b.failure(TimeoutError("silent"))  # the probe failed: open for another cool-down
    assert b.state == "open" and b.opened == 1
    clock.advance(2.0)
    b.before()
    b.success()
    assert b.state == "closed"
    assert b.health() == {"state": "closed", "consecutive_failures": 0, "failures": 6,
                          "opened": 1, "rejected": 2, "retry_in": 0.0, "down_for": 0.0,
                          "last_error": "TimeoutError: silent"}


def test_breaker_probe_that_raises_something_else_frees_the_slot(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(breaker_module, "_clock", clock)
    b = CircuitBreaker("h:1", threshold=1, cooldown=1.0)
    b.failure(ConnectionError("x"))
    clock.advance(1.0)
    b.before()
    b.abandon()  # e.g. the probe's arguments could not be encoded
    b.before()  # another call may probe


def test_breaker_options_are_checked():
    with pytest.raises(ValueError, match="breaker_threshold"):
        Client(breaker_threshold=-1)
    with pytest.raises(ValueError, match="breaker_cooldown"):
        Client(breaker_cooldown=0)
    assert Client(breaker_threshold=0).breaker is None
    c = Cache.from_url("redis://127.0.0.1:1/0?breaker_threshold=7&breaker_cooldown=0.5")
    assert (c.client.breaker.threshold, c.client.breaker.cooldown) == (7, 0.5)


def test_client_breaker_with_a_real_server(impl, server, caplog):
    """Against a killed server: 5 refused connects, then refusals at once,
    one warning; restarted, the probe closes it and one info line says how
    long it was out."""
    c = Client(server.host, server.port, breaker_cooldown=0.3, **FAST)
    assert c.ping()
    server.kill()
    with caplog.at_level(logging.INFO, logger="pyredcache"):
        for _ in range(5):
            with pytest.raises(ConnectionError) as info:
                c.get("k")
            assert not isinstance(info.value, CircuitOpenError)
        for _ in range(100):
            with pytest.raises(CircuitOpenError):
                c.get("k")
        assert c.health()["breaker"]["state"] == "open"
        server.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                c.execute_command("SET", "k", "v")
                break
            except CircuitOpenError:
                assert time.monotonic() < deadline
                time.sleep(0.01)
    assert c.get("k") == b"v"
    assert c.health()["breaker"]["state"] == "closed"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "circuit open" in warnings[0].getMessage()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "answering again after" in infos[0]


def test_error_replies_do_not_trip_the_breaker(impl, redis_url):
    c = Client.from_url(redis_url, breaker_threshold=2)
    c.execute_command("RPUSH", "alist", "x")
    for _ in range(5):
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            c.get("alist")
    assert c.breaker.failures == 0 and c.breaker.state == "closed"


# -- ignore_errors ------------------------------------------------------------------


def test_a_dead_server_raises_without_ignore_errors(impl):
    cache = Cache.from_url(dead_url(), **FAST)
    calls = []

    @cache.cache()
    def f(x):
        calls.append(x)
        return x

    for op in (lambda: cache.get("k"), lambda: cache.set("k", 1), lambda: cache.delete("k"),
               lambda: cache.get_many("a", "b"), lambda: cache.set_many({"a": 1}),
               lambda: cache.delete_many("a"), lambda: f(1)):
        with pytest.raises(ConnectionError):
            op()
    assert calls == []  # the lookup failed before the function could run


def test_ignore_errors_makes_reads_misses_and_writes_no_ops(impl):
    cache = Cache.from_url(dead_url(), ignore_errors=True, **FAST)
    assert cache.get("k") is None and cache.get("k", "dflt") == "dflt"
    assert cache.set("k", 1) is False and cache.delete("k") is False
    assert cache.get_many("a", "b", "c") == [None, None, None]
    assert cache.set_many({"a": 1}) is False and cache.delete_many("a") is False
    calls = []

    @cache.cache()
    def plain(x):
        calls.append(x)
        return x * 2

    @cache.cache(lock=True)
    def locked(x):
        calls.append(("locked", x))
        return x * 3

    @cache.cache(stale_ttl=30)
    def stale(x):
        calls.append(("stale", x))
        return x * 4

    assert [plain(1), plain(1), locked(2), stale(3)] == [2, 2, 6, 12]
    assert calls == [1, 1, ("locked", 2), ("stale", 3)]  # each call computes, once
    assert cache.invalidate(plain, 1) is False
    with cache.batch_mode():
        promises = [plain(i) for i in range(3)]
    assert [p.value for p in promises] == [0, 2, 4]
    assert cache.health()["servers"][cache.client.address]["breaker"]["state"] == "open"
    cache.ignore_errors = False  # may be changed at run time
    with pytest.raises(ConnectionError):
        cache.get("k")


def test_an_error_the_function_raises_is_not_swallowed(impl):
    cache = Cache.from_url(dead_url(), ignore_errors=True, **FAST)
    runs = []

    for options in ({}, {"lock": True}):
        @cache.cache(**options)
        def uses_redis_itself():
            runs.append(1)
            raise ConnectionError("the function's own database is down")

        with pytest.raises(ConnectionError, match="own database"):
            uses_redis_itself()
    assert runs == [1, 1]  # ran once per call, never twice


def test_storing_fails_after_computing_the_value_is_returned(impl, server):
    """The server dies between the lookup and the write: the computed
    value comes back, the function ran once."""
    cache = Cache(server.host, server.port, ignore_errors=True, **FAST)
    runs = []

    for options in ({}, {"lock": True}):
        @cache.cache(**options)
        def compute():
            runs.append(1)
            server.kill()
            return "value"

        if not server.proc or server.proc.poll() is not None:
            server.start()
        assert compute() == "value"
    assert runs == [1, 1]


def test_error_replies_are_never_silenced(impl, redis_server, redis_url):
    """A misconfiguration must not look like a miss: WRONGTYPE and NOPERM
    raise with ignore_errors too."""
    cache = Cache.from_url(redis_url, ignore_errors=True)
    cache.client.execute_command("RPUSH", "alist", "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        cache.get("alist")
    raw = redis_server.client()
    raw.execute_command("ACL", "SETUSER", "readonly", "on", ">pw", "~*", "+@all", "-set")
    try:
        limited = Cache(redis_server.host, redis_server.port, username="readonly",
                        password="pw", ignore_errors=True)
        assert limited.get("k") is None
        with pytest.raises(ResponseError, match="NOPERM"):
            limited.set("k", 1)

        @limited.cache()
        def f():
            return 1
        with pytest.raises(ResponseError, match="NOPERM"):
            f()
    finally:
        raw.execute_command("ACL", "DELUSER", "readonly")


def test_one_warning_per_outage(impl, server, caplog):
    cache = Cache(server.host, server.port, ignore_errors=True, breaker_cooldown=0.2, **FAST)

    @cache.cache()
    def f(x):
        return x

    assert f(1) == 1
    server.kill()
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        for i in range(300):
            assert f(i) == i
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "circuit open" in warnings[0]


def test_a_lost_deletion_is_logged_every_time(impl, caplog):
    """Unlike a lost read or write, a lost deletion can serve stale data
    once Redis is back: each one is logged, naming its key."""
    cache = Cache.from_url(dead_url(), ignore_errors=True, **FAST)

    @cache.cache()
    def f(x):
        return x
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        for i in range(10):
            assert cache.delete("k%d" % i) is False
        assert cache.delete_many("a", "b") is False
        assert cache.invalidate(f, 1) is False
    lost = [r.getMessage() for r in caplog.records if "NOT deleted" in r.getMessage()]
    assert len(lost) == 12
    assert "'k0'" in lost[0] and "'a', 'b'" in lost[10] and "<locals>.f:" in lost[11]


def test_a_client_without_breaker_warns_once_a_minute(impl, caplog):
    cache = Cache.from_url(dead_url(), ignore_errors=True, breaker_threshold=0, **FAST)
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        for _ in range(20):
            assert cache.get("k") is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "failing open" in warnings[0]
    assert list(cache.health()["servers"].values())[0]["breaker"] is None


def test_cache_cluster_keeps_the_live_hosts(impl, shards):
    hosts = {i: {"host": s.host, "port": s.port} for i, s in enumerate(shards)}
    cluster = CacheCluster(hosts, ignore_errors=True,
                           pool_options=dict(FAST, breaker_cooldown=30))
    keys = ["k%d" % i for i in range(40)]
    assert cluster.set_many({k: k.upper() for k in keys})
    dead = 2
    shards[dead].kill()
    try:
        on_dead = {k for k in keys if cluster.router.get_host_for_key(k) == dead}
        assert on_dead and len(on_dead) < len(keys)
        values = cluster.get_many(*keys)
        assert values == [None if k in on_dead else k.upper() for k in keys]
        with cluster.batch_mode():
            @cluster.cache()
            def echo(k):
                return k
        health = cluster.health()["servers"]
        assert health[str(dead)]["breaker"]["consecutive_failures"] >= 1
        assert all(health[str(i)]["breaker"]["state"] == "closed"
                   for i in range(4) if i != dead)
        # without ignore_errors the same call raises, naming the host
        cluster.ignore_errors = False
        with pytest.raises(ConnectionError):
            cluster.get_many(*keys)
    finally:
        shards[dead].start()


def test_regions_fail_open(impl, server):
    rc = RegionCache(host=server.host, port=server.port, ignore_errors=True, op_timeout=0.2,
                     socket_connect_timeout=0.2)
    r = rc.region("r")
    r["k"] = 1
    server.kill()
    assert "k" not in r and r.get("k") is None
    r["k"] = 2  # dropped
    del r["absent"]  # dropped: no KeyError, Redis could not say
    assert r.get_or_compute("k", lambda: 3) == 3
    with r:
        r["t"] = 1
    assert r.invalidate() == 0
    strict = RegionCache(host=server.host, port=server.port, op_timeout=0.2,
                         socket_connect_timeout=0.2).region("r")
    with pytest.raises(ConnectionError):
        strict["k"] = 1
    with pytest.raises(TypeError, match="set it on that cache"):
        RegionCache(cache=Cache(server.host, server.port), ignore_errors=True)
    # retools' face goes through the stampede guard
    registry = RegionRegistry(cache=Cache(server.host, server.port, ignore_errors=True, **FAST))
    registry.add_region("short", 60)

    @registry.cache_region("short")
    def search(term):
        return [term]
    assert search("x") == ["x"]


# -- the outage test ----------------------------------------------------------------


def _drive(cache, seconds: float, events, label: str):
    """Decorated calls at about 1,000 a second for `seconds`, running the
    `events` ((at_second, action)) on the way; returns the call records
    (start offset, duration, ok, breaker state before the call)."""
    computed = {}

    @cache.cache(key_prefix="outage-" + label, expire=60)
    def value_of(i):
        computed[i] = computed.get(i, 0) + 1
        return ("v", i)

    records = []
    t0 = time.monotonic()
    pending = sorted(events)
    n = 0
    while True:
        now = time.monotonic() - t0
        if now >= seconds:
            break
        while pending and pending[0][0] <= now:
            pending.pop(0)[1]()
        state = cache.client.breaker.state
        start = time.monotonic()
        try:
            ok = value_of(n % 50) == ("v", n % 50)
            error = None
        except ConnectionError as exc:
            ok, error = False, exc
        records.append((start - t0, time.monotonic() - start, ok, state, error))
        n += 1
        slack = t0 + n / 1000.0 - time.monotonic()
        if slack > 0:
            time.sleep(slack)
    return records


def _outage_events(server):
    return [(5.0, server.kill), (10.0, server.start), (12.0, server.pause),
            (15.0, server.resume)]


@pytest.mark.timeout(120)
def test_outage_with_ignore_errors(impl, server, capsys):
    """kill -9 at 5 s, restart at 10 s, SIGSTOP 12-15 s: 0 exceptions, every
    value right; calls while the breaker is open are refused without
    dialling (counted by the breaker).  Their durations, the slowest call
    and the recovery time after the restart are printed, not asserted (no
    test asserts a time)."""
    cache = Cache(server.host, server.port, ignore_errors=True, breaker_cooldown=0.5,
                  socket_timeout=0.1, socket_connect_timeout=0.1)
    records = _drive(cache, 17.0, _outage_events(server), "open")
    assert all(ok for _, _, ok, _, _ in records), [r for r in records if not r[2]][:3]
    assert len(records) > 10000
    open_calls = [d for _, d, _, state, _ in records if state == "open"]
    assert open_calls, "the breaker never opened"
    health = cache.client.health()["breaker"]
    assert health["opened"] >= 2  # the kill, then the SIGSTOP
    # refused at once, never dialled: (almost) every call made while open
    assert health["rejected"] >= 0.9 * len(open_calls)
    # the cache answers again after the restart: the first hit (a call that
    # took the plain path with the breaker closed) after 10 s
    recovered = next(t for t, _, _, state, _ in records if t > 10.0 and state == "closed")
    with capsys.disabled():
        print("\n[outage, ignore_errors=True, %s core] %d calls, 0 errors; breaker open for "
              "%d calls (slowest %.3f ms); recovered %.3f s after the restart; slowest "
              "call %.3f s" % (impl.__name__, len(records), len(open_calls),
                               max(open_calls) * 1000, recovered - 10.0,
                               max(d for _, d, _, _, _ in records)))
    assert cache.client.breaker.state == "closed"


@pytest.mark.timeout(120)
def test_outage_without_ignore_errors_raises_typed_errors_and_never_hangs(impl, server,
                                                                          capsys):
    cache = Cache(server.host, server.port, breaker_cooldown=0.5, socket_timeout=0.1,
                  socket_connect_timeout=0.1)
    records = _drive(cache, 17.0, _outage_events(server), "strict")
    failures = [r for r in records if not r[2]]
    assert failures, "the outage raised nothing"
    assert all(isinstance(e, (ConnectionError, TimeoutError)) for *_, e in failures)
    assert any(isinstance(e, CircuitOpenError) for *_, e in failures)
    assert any(isinstance(e, TimeoutError) for *_, e in failures)  # the SIGSTOP
    # none hangs: the test's timeout would fail it (every wait is bounded
    # by the 0.1 s socket timeouts; the slowest call is printed)
    with capsys.disabled():
        print("\n[outage, strict, %s core] %d calls, %d raised (%d CircuitOpenError), "
              "slowest call %.3f s" % (
                  impl.__name__, len(records), len(failures),
                  sum(isinstance(e, CircuitOpenError) for *_, e in failures),
                  max(d for _, d, _, _, _ in records)))
    ok_after = [t for t, _, ok, _, _ in records if ok and t > 15.0]
    assert ok_after, "never answered again after SIGCONT"


def test_breaker_is_shared_by_threads(impl, server):
    cache = Cache(server.host, server.port, ignore_errors=True, breaker_cooldown=30, **FAST)
    server.kill()
    errors = []

    def work():
        try:
            for i in range(200):
                assert cache.get("k%d" % i) is None
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    health = cache.health()["servers"][cache.client.address]["breaker"]
    assert health["state"] == "open" and health["opened"] == 1
    assert health["rejected"] >= 1500  # almost every call refused at once
