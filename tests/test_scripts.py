"""as_client(), multi_pipeline() and Script: what locks and ids build on."""

from __future__ import annotations

import fakeredis
import pytest
import redis as redis_py

from conftest import free_port
from pyredcache import Cache, CacheCluster, Client, NullCache
from pyredcache.clients import RedisPyAdapter, Script, as_client, multi_pipeline
from pyredcache.exceptions import ConnectionError, ResponseError

INCR_BY = Script("""
-- KEYS[1]: a counter; ARGV[1]: the increment.  Returns the new value.
return redis.call('INCRBY', KEYS[1], ARGV[1])
""")


def test_as_client_accepts_what_users_hold(impl, shards):
    s = shards[0]
    client = Client(s.host, s.port)
    assert as_client(client) is client
    assert as_client(Cache(s.host, s.port)).connection_kwargs["port"] == s.port
    from_url = as_client("redis://%s:%d/3" % (s.host, s.port))
    assert from_url.connection_kwargs["db"] == 3
    from_redis_py = as_client(redis_py.Redis(s.host, s.port, db=2, password=None,
                                             socket_timeout=1.5))
    assert (from_redis_py.connection_kwargs["port"], from_redis_py.connection_kwargs["db"],
            from_redis_py.connection_kwargs["socket_timeout"]) == (s.port, 2, 1.5)
    unix = as_client(redis_py.Redis(unix_socket_path=s.unix_socket_path))
    assert unix.ping()
    cluster = CacheCluster({i: {"host": x.host, "port": x.port} for i, x in enumerate(shards)})
    picked = as_client(cluster, key="some-key")
    assert picked is cluster.client.client_for_key("some-key")
    with pytest.raises(TypeError, match="needs the key"):
        as_client(cluster)
    with pytest.raises(TypeError, match="redis-py-compatible client"):
        as_client(42)
    tls = redis_py.Redis(s.host, s.port, ssl=True)
    assert isinstance(as_client(tls), RedisPyAdapter)  # redis-py speaks TLS for us
    with pytest.raises(TypeError, match="TLS"):
        as_client(tls, native=True)  # the core's quorum round cannot
    with pytest.raises(TypeError, match="pyredcache's own connections"):
        as_client(fakeredis.FakeRedis(), native=True)


def test_as_client_asks_an_object_for_its_client(impl, shards):
    """The clients layer knows nothing of caches: an object exposes its
    client by __pyredcache_client__(), as a path-like object its path by
    __fspath__()."""
    s = shards[0]
    cache = Cache(s.host, s.port)
    assert as_client(cache) is cache.client

    class Holder:
        def __init__(self, client):
            self.inner = client

        def __pyredcache_client__(self):
            return self.inner

    assert as_client(Holder(cache.client)) is cache.client
    url = "redis://%s:%d/5" % (s.host, s.port)
    assert as_client(Holder(url)) is as_client(url)  # resolved as the URL itself is
    with pytest.raises(TypeError, match="has no client"):
        as_client(NullCache())  # a cache that talks to no server
    with pytest.raises(TypeError, match="not a client"):
        as_client(Holder(Holder(cache.client)))
    # a plain object with a `client` attribute is not taken for a cache any more
    with pytest.raises(TypeError, match="redis-py-compatible client"):
        as_client(type("Looks", (), {"client": cache.client, "get_client": None})())


def test_multi_pipeline_runs_every_job_and_reports_failures(impl, shards):
    clients = [Client(s.host, s.port) for s in shards[:2]]
    dead = Client("127.0.0.1", free_port())
    results = multi_pipeline([(clients[0], [("SET", "a", 1), ("GET", "a")]), (dead, [("PING",)]),
                       (clients[1], [("INCR", "n")])], timeout=1.0)
    assert results[0] == [b"OK", b"1"] and results[2] == [1]
    assert isinstance(results[1], ConnectionError)
    assert multi_pipeline([]) == []
    # connections went back to their pools
    assert all(len(c._pool) == 1 for c in clients)


def test_script_runs_and_reloads_after_script_flush(impl, shards):
    client = Client(shards[0].host, shards[0].port)
    assert INCR_BY(client, ["n"], [5]) == 5
    client.execute_command("SCRIPT", "FLUSH")  # as after a restart
    assert INCR_BY(client, ["n"], [2]) == 7
    with pytest.raises(ResponseError):
        INCR_BY(client, ["n"], ["not a number"])


def test_script_runs_on_many_servers_at_once(impl, shards):
    clients = [Client(s.host, s.port) for s in shards] + [Client("127.0.0.1", free_port())]
    shards[1].client().script_flush()
    out = INCR_BY.multi_pipeline(clients, ["n"], [3], timeout=1.0)
    assert out[:4] == [3, 3, 3, 3]
    assert isinstance(out[4], ConnectionError)
    out = INCR_BY.multi_pipeline(clients[:2], ["n"], ["x"])
    assert all(isinstance(r, ResponseError) for r in out)
