"""Client-side sharding: routers, HostConfig, ShardedClient and CacheCluster
over four real redis-server processes, on the C core and the pure twin."""

from __future__ import annotations

import threading
import zlib

import pytest

from conftest import free_port
from pyredcache import (
    BaseRedisRouter,
    CacheCluster,
    HostConfig,
    RedisConsistentHashRouter,
    RedisCRC32HashRouter,
    ShardedClient,
)
from pyredcache.exceptions import ConnectionError, TimeoutError


def hosts_of(servers, names=None):
    names = names or range(len(servers))
    return {name: {"host": s.host, "port": s.port} for name, s in zip(names, servers)}


def calls(server, command):
    stats = server.client().info("commandstats")
    return stats.get("cmdstat_" + command, {}).get("calls", 0)


def reset_stats(servers):
    for s in servers:
        s.client().config_resetstat()


# -- routers --------------------------------------------------------------------------


def test_crc32_router_routes_as_rc(impl):
    router = RedisCRC32HashRouter({0: {}, 1: {}, 2: {}})
    assert router.get_host_for_key("c") == 0
    assert router.get_host_for_key("g") == 1
    assert router.get_host_for_key("a") == 2
    assert router.get_host_for_key(b"a") == 2


def test_crc32_router_uses_sorted_names(impl):
    router = RedisCRC32HashRouter({"c3": {}, "c1": {}, "c2": {}})
    assert [router.get_host_for_key(k) for k in "cga"] == ["c1", "c2", "c3"]
    with pytest.raises(TypeError, match="sorts the host names"):
        RedisCRC32HashRouter({1: {}, "a": {}})


def test_host_config_repr_is_rcs(impl):
    assert repr(HostConfig(0)) == (
        "<HostConfig db=0 host=localhost port=6379 unix_socket_path=None>")
    assert repr(HostConfig("x", host="10.0.0.1", port=6380, db=2, password="p")) == (
        "<HostConfig db=2 host=10.0.0.1 port=6380 unix_socket_path=None>")
    assert repr(HostConfig(1, unix_socket_path="/tmp/r.sock")) == (
        "<HostConfig db=0 host=localhost port=6379 unix_socket_path=/tmp/r.sock>")
    with pytest.raises(ValueError, match="TLS"):
        HostConfig(0, ssl=True)


def test_consistent_router_places_hosts_by_their_rc_repr(impl):
    configs = {i: HostConfig(i, port=7000 + i) for i in range(4)}
    router = RedisConsistentHashRouter(configs)
    ring = impl.KetamaRing([repr(configs[i]) for i in range(4)])
    keys = ["key-%d" % i for i in range(500)]
    assert [router.get_host_for_key(k) for k in keys] == [ring.index(k) for k in keys]
    # renaming hosts moves nothing: the ring knows them by address
    renamed = RedisConsistentHashRouter(
        {"n%d" % i: HostConfig("n%d" % i, port=7000 + i) for i in range(4)})
    assert [renamed.get_host_for_key(k) for k in keys] == [
        "n%d" % router.get_host_for_key(k) for k in keys]
    # removing a host moves only the keys it held
    smaller = RedisConsistentHashRouter({i: configs[i] for i in range(3)})
    for k in keys:
        if router.get_host_for_key(k) != 3:
            assert smaller.get_host_for_key(k) == router.get_host_for_key(k)


def test_consistent_router_weights_and_errors(impl):
    configs = {i: HostConfig(i, port=7000 + i) for i in range(2)}
    heavy = RedisConsistentHashRouter(configs, weights={0: 3})
    keys = ["k%d" % i for i in range(4000)]
    share = sum(heavy.get_host_for_key(k) == 0 for k in keys) / len(keys)
    assert 0.6 < share < 0.9
    with pytest.raises(ValueError, match="unknown hosts"):
        RedisConsistentHashRouter(configs, weights={9: 1})
    with pytest.raises(ValueError, match="same address"):
        RedisConsistentHashRouter({0: HostConfig(0), 1: HostConfig(1)})


def test_router_partition_agrees_with_get_host_for_key(impl):
    keys = ["k%d" % i for i in range(300)] + [b"bytes-key", "ключ"]
    for router in (RedisCRC32HashRouter({n: {} for n in "abcd"}),
                   RedisConsistentHashRouter({n: HostConfig(n, port=7000 + i)
                                              for i, n in enumerate("abcd")})):
        groups = router.partition(keys)
        seen = []
        for name, (positions, ks) in groups.items():
            assert positions == sorted(positions) and positions
            assert ks == [keys[i] for i in positions]
            assert all(router.get_host_for_key(k) == name for k in ks)
            seen += positions
        assert sorted(seen) == list(range(len(keys)))



def test_get_key_and_host_for_command_as_rc(impl):
    # rc's tests/test_redis_router.py, on the cluster's router as there
    router = CacheCluster({0: {}, 1: {}, 2: {}}).router
    assert router.get_key_for_command("GET", "c") == "c"
    assert router.get_key_for_command("SET", "g") == "g"
    with pytest.raises(RuntimeError):
        router.get_key_for_command("MGET", ["a", "b", "c"])
    assert router.get_host_for_key("c") == 0
    assert router.get_host_for_key("g") == 1
    assert router.get_host_for_key("a") == 2
    assert router.get_host_for_command("GET", "c") == 0
    assert router.get_host_for_command("GET", "g") == 1
    assert router.get_host_for_command("SET", "a") == 2
    # the key is the first argument: SETEX name time value, DEL k1 k2 ...
    assert router.get_key_for_command("SETEX", ("key", 60, b"v")) == "key"
    assert router.get_key_for_command("SET", ["key", b"v"]) == "key"
    assert router.get_key_for_command("DEL", ("a", "b")) == "a"
    assert router.get_key_for_command(b"get", [b"key"]) == b"key"
    with pytest.raises(RuntimeError, match='^The command "EXPIRE" is not supported yet.$'):
        router.get_host_for_command("EXPIRE", ("c", 10))
    ring = RedisConsistentHashRouter({n: HostConfig(n, port=7000 + n) for n in range(3)})
    assert [ring.get_host_for_command("GET", (k,)) for k in "abcdefg"] == \
        [ring.get_host_for_key(k) for k in "abcdefg"]
    with pytest.raises(NotImplementedError):
        BaseRedisRouter({0: {}}).get_host_for_command("GET", ("k",))


class Crc32AsInRcDocs(BaseRedisRouter):
    """rc's "Build Your Own Router" example, on Python 3: it overrides only
    __init__ and get_host_for_key."""

    def __init__(self, hosts):
        BaseRedisRouter.__init__(self, hosts)
        self._sorted_host_names = sorted(hosts.keys())
        self.seen = []

    def get_host_for_key(self, key):
        self.seen.append(key)
        if isinstance(key, str):
            key = key.encode("utf-8")
        pos = zlib.crc32(key) % len(self._sorted_host_names)
        return self._sorted_host_names[pos]


def test_rc_style_router_subclass_routes_everything(impl, shards):
    names = ["s0", "s1", "s2", "s3"]
    cache = CacheCluster(hosts_of(shards, names), router_cls=Crc32AsInRcDocs, namespace="ns:")
    router = cache.router
    assert isinstance(router, Crc32AsInRcDocs)
    by_name = {n: s.client() for n, s in zip(names, shards)}

    def home(full_key):  # the one server holding a key, asked of redis-py
        return [n for n, c in by_name.items() if c.exists(full_key)]

    keys = ["key-%d" % i for i in range(40)]
    assert cache.set_many({k: i for i, k in enumerate(keys)})
    assert cache.set("single", "v") and cache.get("single") == "v"
    for k in keys + ["single"]:
        assert home("ns:" + k) == [router.get_host_for_key("ns:" + k)]
    assert len({router.get_host_for_key("ns:" + k) for k in keys}) == 4  # all servers used
    assert cache.get_many(*keys) == list(range(40))
    # rc's ported router routes as the built-in one (2**32 is 0 modulo 4 hosts)
    builtin = RedisCRC32HashRouter({n: {} for n in names})
    assert all(router.get_host_for_key(k) == builtin.get_host_for_key(k) for k in keys)

    ran = []

    @cache.cache(key_prefix="load")
    def load(x):
        ran.append(x)
        return x * 10

    assert [load(i) for i in range(8)] == [load(i) for i in range(8)] and ran == list(range(8))
    with cache.batch_mode():
        promises = [load(i) for i in range(12)]
    assert [p.value for p in promises] == [i * 10 for i in range(12)] and len(ran) == 12
    stored = [k for c in by_name.values() for k in c.keys("ns:load:*")]
    assert len(stored) == 12
    for key in stored:
        assert home(key) == [router.get_host_for_key(key)]
    assert cache.invalidate(load, 3) is True and load(3) == 30 and len(ran) == 13
    assert cache.delete_many(*keys) is True
    assert all(not c.keys("ns:key-*") for c in by_name.values())
    # every key the cache used went through the subclass's get_host_for_key
    assert b"ns:load:" in b"".join(k for k in router.seen if isinstance(k, bytes))
    assert router.get_host_for_command("GET", ("ns:single",)) == home("ns:single")[0]


# -- CacheCluster on four servers ------------------------------------------------------


@pytest.fixture(params=[RedisCRC32HashRouter, RedisConsistentHashRouter])
def cluster(request, impl, shards):
    c = CacheCluster(hosts_of(shards, ["s0", "s1", "s2", "s3"]), router_cls=request.param,
                     namespace="ns:")
    yield c
    c.client.close()


def test_keys_land_on_the_server_the_router_names(cluster, shards):
    keys = ["key-%d" % i for i in range(200)]
    assert cluster.set_many({k: i for i, k in enumerate(keys)})
    by_name = {"s%d" % i: s.client() for i, s in enumerate(shards)}
    used = set()
    for k in keys:
        name = cluster.router.get_host_for_key("ns:" + k)
        used.add(name)
        for other, client in by_name.items():
            assert client.exists("ns:" + k) == (other == name), (k, name, other)
    assert used == set(by_name)  # 200 keys spread over all four servers


def test_every_cache_method_works_on_the_cluster(cluster, shards):
    assert cluster.set("a", {"x": 1}) is True
    assert cluster.get("a") == {"x": 1}
    assert cluster.get("missing") is None
    keys = ["k%d" % i for i in range(50)]
    cluster.set_many({k: [k, i] for i, k in enumerate(keys)}, expire=100)
    want = [[k, i] if i % 3 else None for i, k in enumerate(keys)]
    assert cluster.delete_many(*[k for i, k in enumerate(keys) if i % 3 == 0]) is True
    assert cluster.get_many(*keys) == want
    assert cluster.get_many() == []
    assert cluster.delete("a") is True and cluster.delete("a") is False
    ttls = [s.client().ttl(k) for s in shards for k in s.client().keys("ns:k*")]
    assert ttls and all(0 < t <= 100 for t in ttls)


def test_get_many_is_one_mget_per_server(cluster, shards):
    keys = ["k%d" % i for i in range(400)]
    cluster.set_many({k: k for k in keys})
    reset_stats(shards)
    assert cluster.get_many(*keys) == keys
    assert [calls(s, "mget") for s in shards] == [1, 1, 1, 1]
    assert [calls(s, "get") for s in shards] == [0, 0, 0, 0]


def test_decorator_and_invalidate_on_the_cluster(cluster, shards):
    ran = []

    @cluster.cache()
    def load(name, offset=0):
        ran.append((name, offset))
        return "%s@%d" % (name, offset)

    assert [load("n%d" % i, offset=i) for i in range(20)] == ["n%d@%d" % (i, i) for i in range(20)]
    assert [load("n%d" % i, i) for i in range(20)] == ["n%d@%d" % (i, i) for i in range(20)]
    assert len(ran) == 20
    assert sum(len(s.client().keys("ns:*")) for s in shards) == 20
    assert cluster.invalidate(load, "n3", 3) is True
    load("n3", 3)
    assert len(ran) == 21


def test_custom_router(impl, shards):
    class FirstLetter(BaseRedisRouter):
        def get_host_for_key(self, key):
            return "even" if key[0] in "aceg" else "odd"

    cache = CacheCluster({"even": {"port": shards[0].port, "host": shards[0].host},
                          "odd": {"port": shards[1].port, "host": shards[1].host}},
                         router_cls=FirstLetter)
    cache.set_many({"apple": 1, "banana": 2, "cherry": 3})
    assert sorted(shards[0].client().keys()) == [b"apple", b"cherry"]
    assert shards[1].client().keys() == [b"banana"]
    assert cache.get_many("banana", "apple", "cherry", "date") == [2, 1, 3, None]


def test_unix_sockets_and_db(impl, shards):
    cache = CacheCluster({
        0: {"unix_socket_path": shards[0].unix_socket_path, "db": 3},
        1: {"host": shards[1].host, "port": shards[1].port, "db": 5},
    })
    cache.set_many({"k%d" % i: i for i in range(20)})
    assert cache.get_many(*["k%d" % i for i in range(20)]) == list(range(20))
    assert shards[0].client(db=3).dbsize() + shards[1].client(db=5).dbsize() == 20
    assert shards[0].client(db=3).dbsize() > 0 and shards[1].client(db=5).dbsize() > 0


def test_max_concurrency_one(impl, shards):
    cache = CacheCluster(hosts_of(shards), max_concurrency=1)
    cache.set_many({"k%d" % i: i for i in range(100)})
    assert cache.get_many(*["k%d" % i for i in range(100)]) == list(range(100))


def test_threads_share_a_cluster(impl, shards):
    cache = CacheCluster(hosts_of(shards))
    keys = ["k%d" % i for i in range(200)]
    cache.set_many({k: k for k in keys})
    errors = []

    def work(offset):
        try:
            for _ in range(30):
                ks = keys[offset:] + keys[:offset]
                assert cache.get_many(*ks) == ks
        except BaseException as exc:  # noqa: B036 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i * 7,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# -- failures -------------------------------------------------------------------------


def test_down_server_names_its_host_others_stay_usable(impl, shards):
    hosts = hosts_of(shards[:3], ["s0", "s1", "s2"])
    hosts["dead"] = {"host": "127.0.0.1", "port": free_port()}
    cache = CacheCluster(hosts)
    keys = ["k%d" % i for i in range(100)]
    on_dead = [k for k in keys if cache.router.get_host_for_key(k) == "dead"]
    alive = [k for k in keys if k not in on_dead]
    assert on_dead and alive
    cache.set_many({k: k for k in alive})
    ids = {name: cache.client.clients[name].execute_command("CLIENT", "ID")
           for name in ("s0", "s1", "s2")}
    with pytest.raises(ConnectionError, match="cache host 'dead': Error connecting"):
        cache.get_many(*keys)
    with pytest.raises(ConnectionError, match="cache host 'dead'"):
        cache.get(on_dead[0])
    with pytest.raises(ConnectionError, match="cache host 'dead'"):
        cache.set(on_dead[0], 1)
    # the live servers' connections were read to the end and are reused
    assert cache.get_many(*alive) == alive
    assert {name: cache.client.clients[name].execute_command("CLIENT", "ID")
            for name in ids} == ids


def test_silent_server_times_out_within_poller_timeout(impl, shards):
    cache = CacheCluster(hosts_of(shards, ["s0", "s1", "s2", "s3"]), poller_timeout=0.3)
    keys = ["k%d" % i for i in range(100)]
    cache.set_many({k: k for k in keys})
    shards[1].pause()
    try:
        with pytest.raises(TimeoutError, match="cache host 's1': Timeout") as info:
            cache.get_many(*keys)
    finally:
        shards[1].resume()
    assert isinstance(info.value, ConnectionError)
    assert cache.get_many(*keys) == keys  # recovered, every server reusable


def test_construction_errors(impl, shards):
    with pytest.raises(ValueError, match="empty"):
        CacheCluster({})
    with pytest.raises(TypeError, match="mapping"):
        CacheCluster([("a", {})])
    with pytest.raises(TypeError, match=r"hosts\[0\]"):
        CacheCluster({0: {"hots": "x"}})
    with pytest.raises(TypeError, match="pool_options"):
        CacheCluster(hosts_of(shards), pool_options={"bogus": 1})
    with pytest.raises(TypeError, match="router_cls"):
        CacheCluster(hosts_of(shards), router_cls=dict)
    with pytest.raises(TypeError, match="pool_cls"):
        CacheCluster(hosts_of(shards), pool_cls=object)
    with pytest.raises(ValueError, match="max_concurrency"):
        CacheCluster(hosts_of(shards), max_concurrency=0)
    with pytest.raises(ValueError, match="timeout"):
        CacheCluster(hosts_of(shards), poller_timeout=-1)
    with pytest.raises(ValueError, match="TLS"):
        CacheCluster({0: {"ssl": True}})


def test_host_config_instances_and_pool_options(impl, shards):
    hosts = {i: HostConfig(i, host=s.host, port=s.port) for i, s in enumerate(shards)}
    cache = CacheCluster(hosts, pool_options={"socket_timeout": 2.5, "max_idle_connections": 4,
                                              "busy_poll": 0})
    assert cache.hosts[2] is hosts[2]
    client = cache.client.clients[0]
    assert client.connection_kwargs["socket_timeout"] == 2.5
    assert client._pool[-1].busy_poll == 0
    cache.set("x", 1)
    assert cache.get("x") == 1


def test_sharded_client_commands(impl, shards):
    client = ShardedClient(hosts_of(shards))
    assert client.ping() is True
    replies = client.pipeline_execute(
        [("SET", "k%d" % i, i) for i in range(40)] + [("INCR", "k%d" % i) for i in range(40)])
    assert replies == [b"OK"] * 40 + list(range(1, 41))
    assert client.mget(["k%d" % i for i in range(40)]) == [b"%d" % (i + 1) for i in range(40)]
    assert client.exists(*["k%d" % i for i in range(45)]) == 40
    assert sorted(client.scan_iter(match="k1*")) == sorted(
        b"k%d" % i for i in range(40) if str(i).startswith("1"))
    assert client.execute_command("GET", "k3") == b"4"
    assert client.ttl("k3") == -1
    with pytest.raises(TypeError, match="first key"):
        client.execute_command("PING")
    with pytest.raises(TypeError, match="first key"):
        client.pipeline_execute([("PING",)])
    assert client.delete(*["k%d" % i for i in range(45)]) == 40
    assert client.flushdb() is True
