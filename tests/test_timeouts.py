"""No call waits for ever by default (issue 11).

With default options, every wait on a server is bounded: a server that
accepts and never answers (a listening socket that holds its connections,
or a real redis-server stopped with SIGSTOP) makes each call raise
TimeoutError (a ConnectionError) within ``socket_timeout`` (1.0 s), or
``poller_timeout`` (1.0 s) in a fan-out; a connect that gets no answer (a
listener whose accept queue is full drops the SYNs, as a blackholed
address does) raises ConnectionError within ``socket_connect_timeout``
(1.0 s).  Each test is bounded by ``pytest.mark.timeout`` so that a
regression fails instead of hanging; no test asserts a time.

Also here: the defaults themselves, the one table of options that URLs
and keywords share, and the warning a Redlock or NextId logs when its
masters cannot be reached.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest
import redis as redis_py

from fakeserver import SilentServer
from pyredcache import Cache, CacheCluster, Client, NextId, RedisDict, Redlock
from pyredcache.clients import DEFAULT_TIMEOUT, OPTIONS, as_client, parse_url
from pyredcache.exceptions import ConnectionError, QuorumNotAchieved, TimeoutError

# Generous next to the 1 s bounds (a loaded 2-CPU machine), far below "for ever".
BOUND = 20


class Blackhole:
    """A TCP listener whose accept queue is full: the kernel drops new SYNs,
    so a connect() to it gets no answer, as to a blackholed address."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.host, self.port = self.sock.getsockname()
        self.fillers = []
        for _ in range(8):  # backlog 0 holds one or two
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect((self.host, self.port))
            except BlockingIOError:
                pass
            self.fillers.append(f)
        time.sleep(0.1)  # let the handshakes that can complete complete

    @property
    def url(self) -> str:
        return "redis://%s:%d/0" % (self.host, self.port)

    def close(self) -> None:
        for f in self.fillers:
            f.close()
        self.sock.close()


@pytest.fixture
def silent():
    s = SilentServer()
    yield s
    s.close()


@pytest.fixture
def blackhole():
    b = Blackhole()
    yield b
    b.close()


def dead_ports(n: int) -> list[int]:
    """n distinct TCP ports on which nothing listens (connect: refused)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def cluster_over(live, dead) -> tuple[CacheCluster, list[str]]:
    """A CacheCluster of a live server and a dead one (default options),
    and keys of which the first routes to the dead one."""
    cache = CacheCluster({"live": {"host": live.host, "port": live.port},
                          "dead": {"host": dead.host, "port": dead.port}})
    on_dead = [k for k in ("k%d" % i for i in range(50))
               if cache.router.get_host_for_key(k) == "dead"]
    on_live = [k for k in ("k%d" % i for i in range(50))
               if cache.router.get_host_for_key(k) == "live"]
    return cache, on_dead[:3] + on_live[:3]


# -- one operation each, on a server that never answers ----------------------------------

def _decorated(cache):
    calls = []

    @cache.cache()
    def f(x):
        calls.append(x)
        return x

    with pytest.raises(TimeoutError):
        f(1)
    assert calls == []  # the hang ended in an error, not in a recomputation


def _redlock(url):
    lock = Redlock(key="t", masters=[url], raise_on_redis_errors=True)
    with pytest.raises(QuorumNotAchieved) as info:
        lock.acquire(blocking=False)
    assert isinstance(info.value.__cause__, TimeoutError)


def _nextid(url):
    with pytest.raises(QuorumNotAchieved) as info:
        next(NextId(key="t", masters=[url]))
    assert info.value.redis_errors
    assert all(isinstance(e, TimeoutError) for e in info.value.redis_errors)


def _redis_dict(url):
    with pytest.raises(TimeoutError):
        d = RedisDict(redis=Client.from_url(url), key="t")
        d["a"]


SINGLE_SERVER_OPS = {
    "Cache.get": lambda url: pytest.raises(TimeoutError, Cache.from_url(url).get, "k"),
    "Cache.set": lambda url: pytest.raises(TimeoutError, Cache.from_url(url).set, "k", 1),
    "Cache.get_many": lambda url: pytest.raises(TimeoutError,
                                                Cache.from_url(url).get_many, "a", "b"),
    "decorator": lambda url: _decorated(Cache.from_url(url)),
    "Redlock.acquire": _redlock,
    "NextId": _nextid,
    "RedisDict": _redis_dict,
}


@pytest.mark.timeout(BOUND)
@pytest.mark.parametrize("op", list(SINGLE_SERVER_OPS))
def test_silent_server_bounds_every_call(impl, silent, op):
    SINGLE_SERVER_OPS[op](silent.url)


CLUSTER_OPS = ["get", "set", "get_many"]


def _cluster_op(cache, keys, op):
    with pytest.raises(TimeoutError, match="cache host 'dead'"):
        if op == "get":
            cache.get(keys[0])
        elif op == "set":
            cache.set(keys[0], 1)
        else:
            cache.get_many(*keys)


@pytest.mark.timeout(BOUND)
@pytest.mark.parametrize("op", CLUSTER_OPS)
def test_silent_server_bounds_cluster_calls(impl, redis_server, redis_url, silent, op):
    cache, keys = cluster_over(redis_server, silent)
    _cluster_op(cache, keys, op)
    assert cache.get(keys[-1]) is None  # the live server is still usable


# -- a real server, stopped (SIGSTOP) after its connections were made ------------------


@pytest.mark.timeout(BOUND)
@pytest.mark.parametrize("op", ["decorator", "Redlock.acquire"])
def test_stopped_server_bounds_calls(impl, server, op):
    cache = Cache(server.host, server.port)
    assert cache.set("warm", 1)  # a pooled connection, open before the stop
    server.pause()
    try:
        if op == "decorator":  # a GET, as Cache.get
            _decorated(cache)
        else:
            _redlock(cache)
    finally:
        server.resume()
    assert Cache(server.host, server.port).get("warm") == 1


@pytest.mark.timeout(BOUND)
@pytest.mark.parametrize("op", ["get", "get_many"])
def test_stopped_server_bounds_cluster_calls(impl, redis_server, redis_url, server, op):
    cache, keys = cluster_over(redis_server, server)
    cache.set_many({k: k for k in keys})
    server.pause()
    try:
        _cluster_op(cache, keys, op)
    finally:
        server.resume()
    assert cache.get_many(*keys) == keys  # recovered: every server reusable


# -- a connect that gets no answer -------------------------------------------------------


@pytest.mark.timeout(BOUND)
@pytest.mark.parametrize("op", ["Cache.get", "CacheCluster.get_many"])
def test_unanswered_connect_is_bounded(impl, redis_server, blackhole, op):
    # one blocking connect, and one inside a fan-out (as NextId's, Redlock's)
    if op == "Cache.get":
        with pytest.raises(ConnectionError, match=str(blackhole.port)):
            Cache(blackhole.host, blackhole.port).get("k")
    else:
        cache, keys = cluster_over(redis_server, blackhole)
        with pytest.raises(ConnectionError, match="cache host 'dead'"):
            cache.get_many(*keys)


# -- the defaults, and None ------------------------------------------------------------------


def test_every_connection_has_bounded_defaults(impl, redis_server):
    conns = [
        impl.Connection(),
        Client()._pool[-1],
        Cache().client._pool[-1],
        CacheCluster({"a": {}}).client.clients["a"]._pool[-1],
        # a redis-py client without timeouts of its own gets pyredcache's
        as_client(redis_py.Redis(port=redis_server.port, socket_timeout=None,
                                 socket_connect_timeout=None))._pool[-1],
        Client.from_url("redis://localhost")._pool[-1],
    ]
    for conn in conns:
        assert (conn.socket_timeout, conn.socket_connect_timeout) == (1.0, 1.0), conn
    assert DEFAULT_TIMEOUT == 1.0
    assert CacheCluster({"a": {}}).poller_timeout == 1.0


def test_explicit_none_means_no_bound(impl):
    for conn in (impl.Connection(socket_timeout=None, socket_connect_timeout=None),
                 Client(socket_timeout=None, socket_connect_timeout=None)._pool[-1],
                 Cache(socket_timeout=None, socket_connect_timeout=None).client._pool[-1]):
        assert (conn.socket_timeout, conn.socket_connect_timeout) == (None, None)


def test_cluster_single_key_commands_wait_poller_timeout(impl):
    """poller_timeout bounds single-key commands too (the per-server
    clients' socket_timeout) unless pool_options says otherwise."""
    conn = CacheCluster({"a": {}}, poller_timeout=2.5).client.clients["a"]._pool[-1]
    assert conn.socket_timeout == 2.5
    conn = CacheCluster({"a": {}}, poller_timeout=2.5,
                        pool_options={"socket_timeout": 0.5}).client.clients["a"]._pool[-1]
    assert conn.socket_timeout == 0.5


# -- one table of options for URLs and keywords --------------------------------------------


def test_every_url_option_is_a_keyword(impl):
    import inspect

    client_params = inspect.signature(Client).parameters
    cache_params = inspect.signature(Cache).parameters
    for name, option in OPTIONS.items():
        assert client_params[name].default == option.default, name
        assert cache_params[name].default == option.default, name
    query = {"db": "3", "socket_timeout": "0.25", "socket_connect_timeout": "0.5",
             "busy_poll": "0", "max_idle_connections": "2"}
    url = "redis://h:7000/?" + "&".join("%s=%s" % kv for kv in query.items())
    kwargs = parse_url(url)
    assert set(kwargs) - {"host", "port"} == set(query)
    for target in (Client(**kwargs), Cache(**kwargs).client, Cache.from_url(url).client):
        conn = target._pool[-1]
        assert (conn.db, conn.socket_timeout, conn.socket_connect_timeout,
                conn.busy_poll, target._pool.maxlen) == (3, 0.25, 0.5, 0, 2)


def test_cache_takes_every_option_as_a_keyword(impl, redis_server):
    c = Cache(redis_server.host, redis_server.port, socket_connect_timeout=0.5,
              busy_poll=0, max_idle_connections=3)
    conn = c.client._pool[-1]
    assert (conn.socket_connect_timeout, conn.busy_poll, c.client._pool.maxlen) == (0.5, 0, 3)
    assert c.set("k", 1) and c.get("k") == 1
    u = Cache(unix_socket_path=redis_server.unix_socket_path, db=1)
    assert u.set("k", 2) and redis_server.client(db=1).get("k") == b"\x02"
    # redis_options still works, and says the same
    r = Cache(redis_options={"socket_connect_timeout": 0.5, "max_idle_connections": 3})
    assert r.client._pool[-1].socket_connect_timeout == 0.5 and r.client._pool.maxlen == 3
    assert r.redis_options["socket_connect_timeout"] == 0.5
    with pytest.raises(TypeError, match="given twice"):
        Cache(socket_connect_timeout=2.0, redis_options={"socket_connect_timeout": 0.5})
    with pytest.raises(TypeError, match="unexpected keyword"):
        Cache(nonsense=1)
    with pytest.raises(ValueError, match="socket_connect_timeout"):
        Cache(socket_connect_timeout=-1)


def test_from_url_keywords_win(impl):
    c = Cache.from_url("redis://localhost/0?socket_timeout=3&busy_poll=10",
                       socket_timeout=0.5, redis_options={"busy_poll": 0})
    conn = c.client._pool[-1]
    assert (conn.socket_timeout, conn.busy_poll) == (0.5, 0)


# -- Redlock and NextId: one warning per episode of unreachable masters --------------------


def _warnings(caplog):
    """The quorum's own warnings (a circuit breaker's "circuit open" line
    is another event, tested in test_failopen.py)."""
    return [r for r in caplog.records
            if r.name == "pyredcache" and r.levelno == logging.WARNING
            and "circuit open" not in r.getMessage()]


@pytest.mark.timeout(BOUND)
def test_redlock_warns_once_about_unreachable_masters(impl, caplog):
    ports = dead_ports(3)  # refused at once
    lock = Redlock(key="w", masters=["redis://127.0.0.1:%d" % p for p in ports])
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        assert lock.acquire(timeout=0.5) is False  # retried several times
        assert lock.acquire(blocking=False) is False
    [record] = _warnings(caplog)
    message = record.getMessage()
    assert "redlock:w" in message and "3 of 3" in message
    for port in ports:
        assert "127.0.0.1:%d (" % port in message


@pytest.mark.timeout(BOUND)
def test_redlock_warns_again_in_a_new_episode(impl, server, caplog):
    lock = Redlock(key="w", masters=[Client(server.host, server.port)])
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        for _ in range(2):
            server.pause()
            try:
                assert lock.acquire(blocking=False) is False
                assert lock.acquire(blocking=False) is False
            finally:
                server.resume()
            time.sleep(0.1)  # buffered commands run when it wakes
            assert lock.acquire(timeout=5)  # reachable again: the episode ends
            lock.release()
    records = _warnings(caplog)
    assert len(records) == 2
    assert all("%s:%d (" % (server.host, server.port) in r.getMessage() for r in records)


@pytest.mark.timeout(BOUND)
def test_nextid_warns_once_about_unreachable_masters(impl, masters, caplog):
    dead = dead_ports(2)
    urls = ["redis://127.0.0.1:%d" % p for p in dead] + [masters[0].url]
    ids = NextId(key="w", masters=urls, num_tries=3)
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        for _ in range(2):
            with pytest.raises(QuorumNotAchieved):
                next(ids)
    [record] = _warnings(caplog)
    message = record.getMessage()
    assert "nextid:w" in message and "2 of 3" in message
    assert all("127.0.0.1:%d (" % p in message for p in dead)
    assert "%s:%d (" % (masters[0].host, masters[0].port) not in message
