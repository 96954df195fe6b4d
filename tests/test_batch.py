"""Batch mode: decorated calls return promises, fetched in one round trip
per server, on one server and on a cluster, on the C core and the pure twin."""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import free_port
from pyredcache import Cache, CacheCluster, NullCache
from pyredcache.exceptions import ConnectionError, PromiseError


def calls(server, command):
    stats = server.client().info("commandstats")
    return stats.get("cmdstat_" + command, {}).get("calls", 0)


@pytest.fixture
def cache(impl, redis_server, redis_url):
    c = Cache(redis_server.host, redis_server.port, namespace="b:")
    yield c
    c.client.close()


def counting(cache, **options):
    ran = []

    @cache.cache(**options)
    def double(x):
        ran.append(x)
        return x * 2

    return double, ran


def test_batch_fetches_in_one_round_trip(cache, redis_server):
    double, ran = counting(cache)
    for i in range(0, 10, 2):  # cache the even ones
        double(i)
    ran.clear()
    redis_server.client().config_resetstat()
    with cache.batch_mode():
        promises = [double(i) for i in range(10)]
        assert all(p.is_pending for p in promises)
        assert ran == []  # nothing runs inside the block
    assert [p.value for p in promises] == [i * 2 for i in range(10)]
    assert sorted(ran) == [1, 3, 5, 7, 9]  # only the misses were computed
    assert calls(redis_server, "mget") == 1
    assert calls(redis_server, "get") == 0
    assert calls(redis_server, "set") == 5  # the misses, written back
    # and they are hits now, one by one
    ran.clear()
    assert [double(i) for i in range(10)] == [i * 2 for i in range(10)]
    assert ran == []


def test_written_back_values_carry_the_expiry(cache, redis_server):
    double, _ = counting(cache, expire=50)
    with cache.batch_mode():
        double(1)
    keys = redis_server.client().keys("b:*")
    assert len(keys) == 1 and 0 < redis_server.client().ttl(keys[0]) <= 50


def test_equal_calls_share_one_fetch_and_computation(cache):
    double, ran = counting(cache)
    with cache.batch_mode():
        a, b, c = double(3), double(x=3), double(4)
    assert (a.value, b.value, c.value) == (6, 6, 8)
    assert a is not b
    assert sorted(ran) == [3, 4]


def test_empty_batch_does_nothing(cache, redis_server):
    redis_server.client().config_resetstat()
    with cache.batch_mode():
        pass
    assert calls(redis_server, "mget") == 0


def test_exception_in_block_rejects_and_writes_nothing(cache, redis_server):
    double, ran = counting(cache)
    redis_server.client().config_resetstat()
    with pytest.raises(KeyError):
        with cache.batch_mode():
            promises = [double(i) for i in range(3)]
            raise KeyError("boom")
    assert all(p.is_rejected for p in promises)
    with pytest.raises(PromiseError, match="KeyError") as info:
        promises[0].value
    assert isinstance(info.value.__cause__, KeyError)
    assert ran == []
    assert calls(redis_server, "mget") == 0
    assert redis_server.client().keys("b:*") == []


def test_function_that_raises_rejects_its_own_promise(cache, redis_server):
    @cache.cache()
    def inverse(x):
        return 1 / x

    with cache.batch_mode():
        good, bad = inverse(2), inverse(0)
    assert good.value == 0.5
    assert bad.is_rejected
    with pytest.raises(ZeroDivisionError):
        bad.value
    assert len(redis_server.client().keys("b:*")) == 1  # only the good one stored


def test_bypass_values_are_not_stored(impl, redis_server, redis_url):
    cache = Cache(redis_server.host, redis_server.port, bypass_values=[None])

    @cache.cache()
    def maybe(x):
        return None if x % 2 else x

    with cache.batch_mode():
        ps = [maybe(i) for i in range(4)]
    assert [p.value for p in ps] == [0, None, 2, None]
    assert len(redis_server.client().keys("*")) == 2


def test_undecodable_stored_value_is_a_miss(cache, redis_server, caplog):
    double, ran = counting(cache)
    double(5)
    (key,) = redis_server.client().keys("b:*")
    redis_server.client().set(key, b"\xc1 not a valid value")
    ran.clear()
    with cache.batch_mode():
        p = double(5)
    assert p.value == 10 and ran == [5]
    assert cache.get(key.decode()[2:]) == 10  # overwritten with a good value


def test_then_callbacks_run_and_their_errors_surface(cache):
    double, _ = counting(cache)
    seen = []

    def explode(value):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        with cache.batch_mode():
            double(1).then(seen.append)
            p = double(2).then(explode)
            q = double(3).then(seen.append)
    assert sorted(seen) == [2, 6]  # every callback ran
    assert p.value == 4 and q.value == 6


def test_unreachable_server_rejects_and_raises(impl):
    cache = Cache("127.0.0.1", free_port())

    @cache.cache()
    def f(x):
        return x

    with pytest.raises(ConnectionError):
        with cache.batch_mode():
            p = f(1)
    with pytest.raises(ConnectionError):
        p.value


def test_nested_batches_are_separate(cache):
    double, _ = counting(cache)
    with cache.batch_mode():
        outer = double(1)
        with cache.batch_mode():
            inner = double(2)
        assert inner.value == 4  # resolved when the inner block ended
        assert outer.is_pending
    assert outer.value == 2


def test_batch_mode_object_is_not_reentrant(cache):
    mode = cache.batch_mode()
    with mode:
        with pytest.raises(RuntimeError, match="already active"):
            mode.__enter__()


def test_two_threads_batching_at_once_never_mix(impl, redis_server, redis_url):
    cache = Cache(redis_server.host, redis_server.port)

    @cache.cache()
    def ident(x):
        return x

    barrier = threading.Barrier(2)
    results, errors = {}, []

    def work(name, xs):
        try:
            with cache.batch_mode():
                ps = [ident(x) for x in xs]
                barrier.wait(5)  # both batches are open now
                barrier.wait(5)  # the other thread recorded its calls too
            results[name] = [p.value for p in ps]
        except BaseException as exc:  # noqa: B036 - checked below
            errors.append(exc)

    def plain():
        # a thread outside any batch gets values, not promises
        barrier.wait(5)
        results["plain"] = ident("p")
        barrier.wait(5)

    a = threading.Thread(target=work, args=("a", list(range(50))))
    b = threading.Thread(target=work, args=("b", list(range(100, 150))))
    a.start()
    b.start()
    a.join()
    b.join()
    assert errors == []
    assert results == {"a": list(range(50)), "b": list(range(100, 150))}
    barrier.reset()
    t = threading.Thread(target=plain)
    with cache.batch_mode():
        t.start()
        p = ident("q")
        barrier.wait(5)
        barrier.wait(5)
    t.join()
    assert results["plain"] == "p" and p.value == "q"


def test_asyncio_tasks_have_their_own_batches(impl, redis_server, redis_url):
    cache = Cache(redis_server.host, redis_server.port)

    @cache.cache()
    def ident(x):
        return x

    async def batched():
        with cache.batch_mode():
            p = ident(1)
            await asyncio.sleep(0.01)
        return p

    async def plain():
        await asyncio.sleep(0.005)  # while the other task's batch is open
        return ident(2)

    async def main():
        return await asyncio.gather(batched(), plain())

    p, value = asyncio.run(main())
    assert p.value == 1 and value == 2


def test_null_cache_batch_mode(impl):
    cache = NullCache()
    ran = []

    @cache.cache()
    def f(x):
        ran.append(x)
        return x + 1

    with cache.batch_mode():
        a, b = f(1), f(1)
        assert a.is_pending and ran == []
    assert (a.value, b.value) == (2, 2)
    assert ran == [1, 1]  # NullCache caches nothing, not even within a batch
    assert f(5) == 6


def test_cluster_batch_is_one_mget_per_server(impl, shards):
    cache = CacheCluster({i: {"host": s.host, "port": s.port} for i, s in enumerate(shards)})
    double, ran = counting(cache)
    for i in range(0, 200, 2):
        double(i)
    ran.clear()
    for s in shards:
        s.client().config_resetstat()
    with cache.batch_mode():
        promises = [double(i) for i in range(200)]
    assert [p.value for p in promises] == [i * 2 for i in range(200)]
    assert sorted(ran) == list(range(1, 200, 2))
    assert [calls(s, "mget") for s in shards] == [1, 1, 1, 1]
    assert [calls(s, "get") for s in shards] == [0, 0, 0, 0]
    assert sum(calls(s, "set") for s in shards) == 100
    assert sum(s.client().dbsize() for s in shards) == 200
