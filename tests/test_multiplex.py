"""multi_pipeline: one pipeline per connection, all in flight at once, on
the C core and on its pure twin."""

from __future__ import annotations

import threading
import time

import pytest
from fakeserver import FakeServer
from leakcheck import assert_no_leaks

from conftest import free_port
from pyredcache.exceptions import (
    ConnectionError,
    ProtocolError,
    ResponseError,
    TimeoutError,
)


@pytest.fixture
def conns(impl, shards):
    cs = [impl.Connection(s.host, s.port) for s in shards]
    yield cs
    for c in cs:
        c.close()


def test_each_job_runs_on_its_own_server(impl, shards, conns):
    jobs = [(c, [("SET", "k", "v%d" % i), ("GET", "k"), ("CLIENT", "ID")])
            for i, c in enumerate(conns)]
    results = impl.multi_pipeline(jobs, 1.0)
    assert [r[:2] for r in results] == [[b"OK", b"v%d" % i] for i in range(4)]
    for i, s in enumerate(shards):
        assert s.client().get("k") == b"v%d" % i
    # the same connections are reused: the next round shows the same ids
    again = impl.multi_pipeline([(c, [("CLIENT", "ID")]) for c in conns])
    assert [r[0] for r in again] == [r[2] for r in results]


def test_replies_keep_their_order_and_error_slots(impl, conns):
    results = impl.multi_pipeline([
        (conns[0], [("SET", "a", "x"), ("INCR", "a"), ("GET", "a")]),
        (conns[1], [("RPUSH", "l", 1, 2, 3), ("LRANGE", "l", 0, -1), ("GET", "nope")]),
    ])
    assert results[0][0] == b"OK"
    assert isinstance(results[0][1], ResponseError)
    assert results[0][2] == b"x"
    assert results[1] == [3, [b"1", b"2", b"3"], None]


def test_empty_jobs_and_empty_commands(impl, conns):
    assert impl.multi_pipeline([]) == []
    assert impl.multi_pipeline([(conns[0], []), (conns[1], [("PING",)])]) == [[], [b"PONG"]]


def test_large_pipelines_and_replies(impl, conns):
    big = b"x" * 300_000
    n = 3000
    results = impl.multi_pipeline(
        [(c, [("SET", "big", big)] + [("GET", "big")] + [("INCR", "n")] * n) for c in conns]
    )
    for r in results:
        assert r[0] == b"OK" and r[1] == big
        assert r[2:] == list(range(1, n + 1))


def test_max_concurrency_one_still_runs_everything(impl, shards, conns):
    results = impl.multi_pipeline([(c, [("INCR", "c")]) for c in conns], max_concurrency=1)
    assert results == [[1]] * 4
    for s in shards:
        assert s.client().get("c") == b"1"


def test_all_servers_are_in_flight_at_once(impl, shards, conns):
    # Each server gets a BLPOP that blocks for up to 5 s.  A watcher sees
    # all four servers hold a blocked client at the same moment (only
    # possible if every request is in flight at once), then releases them.
    seen_all_blocked = threading.Event()
    watchers = [s.client() for s in shards]

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(w.info("clients")["blocked_clients"] == 1 for w in watchers):
                seen_all_blocked.set()
                break
        for i, w in enumerate(watchers):
            w.rpush("q", "item%d" % i)

    t = threading.Thread(target=watch)
    t.start()
    results = impl.multi_pipeline([(c, [("BLPOP", "q", 5)]) for c in conns], 30.0)
    t.join()
    assert seen_all_blocked.is_set()
    assert results == [[[b"q", b"item%d" % i]] for i in range(4)]


def test_busy_poll_in_the_fan_out(impl, shards):
    """The fan-out spins before it sleeps, as one connection's wait does,
    and counts on each connection: replies that come within a second-long
    budget are hits; a spin that ends empty (BLPOP answers only after 0.05
    s, 50 times a 1 ms budget) is a miss on every connection it waited on."""
    fast = [impl.Connection(s.host, s.port, busy_poll=1_000_000) for s in shards]
    results = impl.multi_pipeline([(c, [("PING",), ("PING",)]) for c in fast], 5.0)
    assert results == [[b"PONG", b"PONG"]] * 4
    assert all(c.busy_poll_hits >= 1 and c.busy_poll_misses == 0 for c in fast)
    slow = [impl.Connection(s.host, s.port, busy_poll=1000) for s in shards]
    results = impl.multi_pipeline([(c, [("BLPOP", "empty", 0.05)]) for c in slow], 5.0)
    assert results == [[None]] * 4
    assert all(c.busy_poll_misses >= 1 for c in slow)
    off = [impl.Connection(s.host, s.port, busy_poll=0) for s in shards]
    assert impl.multi_pipeline([(c, [("PING",)]) for c in off]) == [[b"PONG"]] * 4
    assert all((c.busy_poll_hits, c.busy_poll_misses) == (0, 0) for c in off)
    for c in fast + slow + off:
        c.close()


def test_down_server_fails_its_job_only(impl, conns):
    dead = impl.Connection("127.0.0.1", free_port())
    results = impl.multi_pipeline(
        [(conns[0], [("SET", "k", "1")]), (dead, [("PING",)]), (conns[1], [("PING",)])]
    )
    assert results[0] == [b"OK"] and results[2] == [b"PONG"]
    assert isinstance(results[1], ConnectionError)
    assert "Connection refused" in str(results[1]) and str(dead.port) in str(results[1])
    assert conns[0].execute_command("GET", "k") == b"1"


def test_silent_server_times_out_others_stay_usable(impl, shards, conns):
    for c in conns:
        c.connect()
    shards[2].pause()
    try:
        # (without the timeout this would wait for ever: pytest-timeout fails it)
        results = impl.multi_pipeline([(c, [("PING",)]) for c in conns], 0.3)
    finally:
        shards[2].resume()
    assert [r for i, r in enumerate(results) if i != 2] == [[b"PONG"]] * 3
    assert isinstance(results[2], TimeoutError)
    assert isinstance(results[2], ConnectionError)  # a timeout is a connection failure
    assert "%s:%d" % (shards[2].host, shards[2].port) in str(results[2])
    assert not conns[2].connected  # its stream was out of step: closed
    assert all(conns[i].connected for i in (0, 1, 3))
    # every connection, the timed-out one included, works afterwards
    assert [c.execute_command("PING") for c in conns] == [b"PONG"] * 4


def test_server_killed_mid_fanout(impl, server, conns):
    c = impl.Connection(server.host, server.port)
    c.connect()
    killer = threading.Timer(0.1, server.kill)
    killer.start()
    try:
        results = impl.multi_pipeline(
            [(conns[0], [("PING",)]), (c, [("BLPOP", "x", 5)])], 10.0)
    finally:
        killer.join()
    assert results[0] == [b"PONG"]
    assert isinstance(results[1], ConnectionError)
    assert not c.connected


@pytest.mark.parametrize("payload, exc", [
    (b"?bad\r\n", ProtocolError),
    (b"$5\r\nab", ConnectionError),
    (b"*2147483647\r\n", ConnectionError),
])
def test_hostile_server_fails_its_job_only(impl, conns, payload, exc):
    fake = FakeServer(payload)
    try:
        bad = impl.Connection("127.0.0.1", fake.port)
        results = impl.multi_pipeline([(bad, [("GET", "k")]), (conns[0], [("PING",)])], 2.0)
    finally:
        fake.close()
    assert isinstance(results[0], exc)
    assert results[1] == [b"PONG"]


def test_extra_bytes_after_the_replies_close_the_connection(impl):
    # Two replies for one command: the second must never be read as the
    # answer to the next command.
    fake = FakeServer(b"+first\r\n+second\r\n", close_after=False)
    try:
        c = impl.Connection("127.0.0.1", fake.port, socket_timeout=2)
        assert impl.multi_pipeline([(c, [("GET", "k")])]) == [[b"first"]]
        # b"second" is dropped with the connection; a new one answers anew
        assert c.execute_command("GET", "k") == b"first"
    finally:
        fake.close()


def test_bad_arguments_send_nothing(impl, shards, conns):
    with pytest.raises(TypeError, match="tuple"):
        impl.multi_pipeline([[conns[0], [("PING",)]]])
    with pytest.raises(TypeError, match="Connection"):
        impl.multi_pipeline([("not a connection", [("PING",)])])
    with pytest.raises(TypeError):
        impl.multi_pipeline([(conns[0], [("SET", "k", "v")]), (conns[1], [("SET", "k", object())])])
    with pytest.raises(TypeError, match="string"):
        impl.multi_pipeline([(conns[0], ["PING"])])
    with pytest.raises(ValueError, match="at least one argument"):
        impl.multi_pipeline([(conns[0], [()])])
    with pytest.raises(ValueError, match="timeout"):
        impl.multi_pipeline([], 0)
    with pytest.raises(TypeError, match="timeout"):
        impl.multi_pipeline([], "1")
    with pytest.raises(ValueError, match="max_concurrency"):
        impl.multi_pipeline([], None, 0)
    with pytest.raises(TypeError, match="max_concurrency"):
        impl.multi_pipeline([], max_concurrency=1.5)
    with pytest.raises(TypeError):
        impl.multi_pipeline([], bogus=1)
    assert shards[0].client().get("k") is None  # the good job was not sent either


def test_same_connection_twice_is_refused_before_sending(impl, shards, conns):
    with pytest.raises(RuntimeError, match="in use"):
        impl.multi_pipeline([(conns[0], [("SET", "k", "1")]), (conns[0], [("PING",)])])
    assert shards[0].client().get("k") is None
    assert impl.multi_pipeline([(conns[0], [("PING",)])]) == [[b"PONG"]]  # not left busy


def test_gil_is_released_while_waiting(impl, shards, conns):
    # While one thread waits in multi_pipeline on BLPOP, another pushes.
    pusher = impl.Connection(shards[1].host, shards[1].port)

    def push() -> None:
        time.sleep(0.1)
        pusher.execute_command("RPUSH", "q", "item")

    t = threading.Thread(target=push)
    t.start()
    results = impl.multi_pipeline([(conns[1], [("BLPOP", "q", 5)])], 10.0)
    t.join()
    assert results == [[[b"q", b"item"]]]


def test_no_leaks(impl, shards):
    s = shards[0]
    script = f"""
import sys
from pyredcache import _core, _pure
core = _core if sys.argv[1] == "c" else _pure
conns = [core.Connection("{s.host}", {s.port}) for _ in range(3)]
dead = core.Connection("127.0.0.1", {free_port()})
cmds = [("SET", "k", b"v" * 100), ("GET", "k"), ("GET", "nope"), ("INCR", "k")]
def once():
    core.multi_pipeline([(c, cmds) for c in conns], 1.0)
    core.multi_pipeline([(conns[0], [("PING",)]), (dead, [("PING",)])], 1.0)
def refs():
    return [sys.getrefcount(x) for x in (cmds, *conns, dead)]
"""
    assert_no_leaks(script, impl.implementation)
