"""The core Connection, against real redis-server processes and, for
hostile replies, a fake server that sends crafted bytes.  Every test runs
on the C extension and on the pure twin (the ``impl`` fixture)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from fakeserver import FakeServer

from pyredcache import _compat
from pyredcache.exceptions import (
    ConnectionError,
    ProtocolError,
    PyRedCacheError,
    ResponseError,
    TimeoutError,
)


@pytest.fixture
def conn(impl, redis_server, redis_url):
    c = impl.Connection(redis_server.host, redis_server.port)
    yield c
    c.close()


# -- commands and replies ---------------------------------------------------------


def test_reply_types(conn):
    assert conn.execute_command("SET", "k", "v") == b"OK"
    assert conn.execute_command("GET", "k") == b"v"
    assert conn.execute_command("GET", "missing") is None
    assert conn.execute_command("INCRBY", "n", 5) == 5
    assert conn.execute_command("RPUSH", "l", "a", "b") == 2
    assert conn.execute_command("LRANGE", "l", 0, -1) == [b"a", b"b"]
    assert conn.execute_command("LRANGE", "nothing", 0, -1) == []
    assert conn.execute_command("PING") == b"PONG"


def test_argument_types(conn, redis_server):
    r = redis_server.client()
    conn.execute_command("SET", b"bytes", b"\x00\xff")
    conn.execute_command("SET", "str", "héllo ☃")
    conn.execute_command("SET", "int", -42)
    conn.execute_command("SET", "big", 2**100)
    conn.execute_command("SET", "float", 0.1)
    conn.execute_command("SET", "ba", bytearray(b"xy"))
    conn.execute_command("SET", "mv", memoryview(b"zw"))
    assert r.get("bytes") == b"\x00\xff"
    assert r.get("str") == "héllo ☃".encode()
    assert r.get("int") == b"-42"
    assert r.get("big") == str(2**100).encode()
    assert r.get("float") == b"0.1"
    assert r.get("ba") == b"xy"
    assert r.get("mv") == b"zw"
    assert conn.execute_command("INCRBYFLOAT", "float", 1.5) == b"1.6"


@pytest.mark.parametrize("bad", [True, None, object(), [1], {"a": 1}])
def test_bad_argument_raises_type_error_and_sends_nothing(conn, redis_server, bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        conn.execute_command("SET", "k", bad)
    with pytest.raises(TypeError):
        conn.pipeline([("SET", "a", "1"), ("SET", "k", bad)])
    assert redis_server.client().exists("k", "a") == 0
    assert conn.execute_command("PING") == b"PONG"


def test_no_arguments(conn):
    with pytest.raises(TypeError):
        conn.execute_command()


def test_error_reply_raises(conn):
    conn.execute_command("SET", "k", "v")
    with pytest.raises(ResponseError, match="^WRONGTYPE") as info:
        conn.execute_command("LPUSH", "k", "x")
    assert isinstance(info.value, PyRedCacheError)
    with pytest.raises(ResponseError, match="unknown command"):
        conn.execute_command("NOSUCHCOMMAND")
    # the connection is still in step
    assert conn.execute_command("GET", "k") == b"v"


def test_pipeline(conn):
    replies = conn.pipeline(
        [("SET", "k", "v"), ["LPUSH", "k", "x"], ("GET", "k"), ("INCR", "n"), ("MGET", "k", "zz")]
    )
    assert replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError)
    assert str(replies[1]).startswith("WRONGTYPE")
    assert replies[2:] == [b"v", 1, [b"v", None]]
    assert conn.pipeline([]) == []
    assert conn.pipeline(iter([("PING",)])) == [b"PONG"]


def test_pipeline_is_one_round_trip(conn, redis_server):
    r = redis_server.client()
    before = int(r.info("stats")["total_net_input_bytes"])
    conn.pipeline([("SET", "k%d" % i, i) for i in range(1000)])
    assert r.dbsize() == 1000
    # one write: the server saw every command; replies in order
    replies = conn.pipeline([("GET", "k%d" % i) for i in range(1000)])
    assert replies == [str(i).encode() for i in range(1000)]
    assert int(r.info("stats")["total_net_input_bytes"]) > before


@pytest.mark.parametrize("bad", ["GET k", b"GET", 5, [()], [[]]])
def test_malformed_pipeline(conn, bad):
    with pytest.raises((TypeError, ValueError)):
        conn.pipeline(bad if not isinstance(bad, (str, bytes)) else [bad])
    assert conn.execute_command("PING") == b"PONG"


def test_large_values_and_replies(conn):
    big = os.urandom(3 * 1024 * 1024)
    conn.execute_command("SET", "big", big)
    assert conn.execute_command("GET", "big") == big
    conn.pipeline([("RPUSH", "l", *range(i, i + 1000)) for i in range(0, 10000, 1000)])
    assert conn.execute_command("LRANGE", "l", 0, -1) == [str(i).encode() for i in range(10000)]


def test_nested_replies(conn):
    conn.execute_command("SET", "k", "v")
    conn.execute_command("MULTI")
    conn.execute_command("GET", "k")
    conn.execute_command("LPUSH", "k", "x")
    conn.execute_command("LRANGE", "nothing", 0, -1)
    res = conn.execute_command("EXEC")
    assert res[0] == b"v"
    assert isinstance(res[1], ResponseError)
    assert res[2] == []


# -- configuration -----------------------------------------------------------------


def test_unix_socket(impl, redis_server, redis_url):
    c = impl.Connection(unix_socket_path=redis_server.unix_socket_path)
    assert c.execute_command("SET", "u", "1") == b"OK"
    assert redis_server.client().get("u") == b"1"
    assert c.unix_socket_path == redis_server.unix_socket_path


def test_db_is_selected(impl, redis_server, redis_url):
    c = impl.Connection(redis_server.host, redis_server.port, db=3)
    c.execute_command("SET", "in3", "x")
    assert redis_server.client(db=3).get("in3") == b"x"
    assert redis_server.client(db=0).get("in3") is None


def test_auth(impl, server):
    server.client().config_set("requirepass", "s3cret")
    good = impl.Connection(server.host, server.port, password="s3cret")
    assert good.execute_command("PING") == b"PONG"
    bad = impl.Connection(server.host, server.port, password="wrong")
    with pytest.raises(ResponseError, match="WRONGPASS|invalid password"):
        bad.execute_command("PING")
    none = impl.Connection(server.host, server.port)
    with pytest.raises(ResponseError, match="NOAUTH"):
        none.execute_command("GET", "x")


def test_acl_user(impl, server):
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all")
    c = impl.Connection(server.host, server.port, username="app", password="pw")
    assert c.execute_command("ACL", "WHOAMI") == b"app"


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"port": "6379"}, TypeError),
        ({"port": 0}, ValueError),
        ({"port": 70000}, ValueError),
        ({"host": 1}, TypeError),
        ({"db": -1}, ValueError),
        ({"db": "0"}, TypeError),
        ({"socket_timeout": 0}, ValueError),
        ({"socket_timeout": -1.0}, ValueError),
        ({"socket_timeout": "1"}, TypeError),
        ({"socket_connect_timeout": True}, TypeError),
        ({"username": "u"}, ValueError),
        ({"unix_socket_path": 5}, TypeError),
        ({"busy_poll": -1}, ValueError),
        ({"busy_poll": 1_000_001}, ValueError),
        ({"busy_poll": 1.5}, TypeError),
        ({"busy_poll": True}, TypeError),
        ({"busy_poll": "50"}, TypeError),
    ],
)
def test_bad_configuration(impl, kwargs, exc):
    with pytest.raises(exc):
        impl.Connection(**kwargs)


def test_attributes(impl):
    c = impl.Connection("127.0.0.1", 1234, db=2, socket_timeout=1.5, socket_connect_timeout=2)
    assert (c.host, c.port, c.db, c.unix_socket_path) == ("127.0.0.1", 1234, 2, None)
    assert c.socket_timeout == 1.5 and c.socket_connect_timeout == 2.0
    assert c.connected is False
    assert "127.0.0.1:1234" in repr(c)
    assert impl.Connection(busy_poll=0).busy_poll == 0
    assert impl.Connection(busy_poll=1_000_000).busy_poll == 1_000_000
    assert (c.busy_poll_hits, c.busy_poll_misses) == (0, 0)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_busy_poll_default_depends_on_cpus(impl):
    """50 microseconds where the process may run on two CPUs or more; 0 on
    one, where a spinning client would only hold off a local server."""
    code = (
        "import os, sys; from pyredcache import _compat; "
        "core = _compat.c_core if sys.argv[1] == 'c' else _compat.py_core; "
        "print(core.Connection().busy_poll); "
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "print(core.Connection().busy_poll)"
    )
    name = "c" if impl.implementation == "c" else "python"
    out = subprocess.run([sys.executable, "-c", code, name], check=True,
                         capture_output=True, text=True).stdout.split()
    many = len(os.sched_getaffinity(0)) > 1
    assert out == [("50" if many else "0"), "0"]


# -- failures ------------------------------------------------------------------------


def test_connection_refused(impl):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = impl.Connection("127.0.0.1", port)
    with pytest.raises(ConnectionError, match="127.0.0.1:%d" % port):
        c.execute_command("PING")
    assert isinstance(ConnectionError("x"), PyRedCacheError)


def test_missing_unix_socket(impl, tmp_path):
    c = impl.Connection(unix_socket_path=str(tmp_path / "nope.sock"))
    with pytest.raises(ConnectionError, match="nope.sock"):
        c.execute_command("PING")


def test_unreachable_server_times_out(impl):
    """A listener whose accept queue is full drops new SYNs, so connect()
    hangs as with an unreachable host: socket_connect_timeout must end it
    with ConnectionError."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue (backlog 0 holds 1-2)
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        time.sleep(0.1)
        c = impl.Connection("127.0.0.1", port, socket_connect_timeout=0.3)
        start = time.monotonic()
        with pytest.raises(ConnectionError):
            c.execute_command("PING")
        # it gave up on its own, long before any OS-level connect timeout
        assert time.monotonic() - start < 30
    finally:
        for f in fillers:
            f.close()
        lsock.close()


def test_reply_timeout_then_recovers(impl, redis_server, redis_url):
    c = impl.Connection(redis_server.host, redis_server.port, socket_timeout=0.2)
    with pytest.raises(TimeoutError, match="0.2"):
        c.execute_command("BLPOP", "never", 3)
    assert c.connected is False  # the late reply must not be read later
    assert c.execute_command("PING") == b"PONG"


def test_server_restart_next_command_reconnects(impl, server):
    c = impl.Connection(server.host, server.port)
    assert c.execute_command("SET", "k", "1") == b"OK"
    server.restart()  # SIGKILL, then a new process on the same port
    assert c.execute_command("GET", "k") is None  # new, empty server
    assert c.execute_command("PING") == b"PONG"


def test_server_killed_mid_run(impl, server):
    c = impl.Connection(server.host, server.port, socket_connect_timeout=1)
    assert c.execute_command("PING") == b"PONG"
    server.kill()
    with pytest.raises(ConnectionError):
        c.execute_command("PING")
    with pytest.raises(ConnectionError):
        c.execute_command("PING")
    server.start()
    assert c.execute_command("PING") == b"PONG"


def test_killed_while_waiting_for_reply(impl, server):
    c = impl.Connection(server.host, server.port)
    c.execute_command("PING")
    killer = threading.Timer(0.3, server.kill)
    killer.start()
    try:
        with pytest.raises(ConnectionError):
            c.execute_command("BLPOP", "q", 5)
    finally:
        killer.join()
    server.start()
    assert c.execute_command("PING") == b"PONG"


def test_client_kill_next_command_reconnects(impl, redis_server, redis_url):
    c = impl.Connection(redis_server.host, redis_server.port)
    my_id = c.execute_command("CLIENT", "ID")
    assert redis_server.client().execute_command("CLIENT", "KILL", "ID", my_id) == 1
    time.sleep(0.05)
    assert c.execute_command("PING") == b"PONG"
    assert c.execute_command("CLIENT", "ID") != my_id


def test_idle_timeout_next_command_reconnects(impl, server):
    server.client().config_set("timeout", 1)
    c = impl.Connection(server.host, server.port)
    my_id = c.execute_command("CLIENT", "ID")
    deadline = time.monotonic() + 10
    ids = [my_id]
    while time.monotonic() < deadline:  # wait until the server dropped us
        time.sleep(0.5)
        listed = server.client().execute_command("CLIENT", "LIST", "ID", my_id)
        if not listed:
            break
    else:
        pytest.fail("the server never closed the idle connection")
    ids.append(c.execute_command("CLIENT", "ID"))
    assert ids[1] != ids[0]


def test_gil_released_while_waiting(impl, redis_server, redis_url):
    """While one thread blocks in BLPOP, another must be able to run and
    push the value it waits for; if the GIL were held, BLPOP would time
    out and return None."""
    blocked = impl.Connection(redis_server.host, redis_server.port)
    other = impl.Connection(redis_server.host, redis_server.port)
    result = []
    t = threading.Thread(target=lambda: result.append(blocked.execute_command("BLPOP", "q", 10)))
    t.start()
    while other.execute_command("CLIENT", "LIST", "TYPE", "normal").count(b"cmd=blpop") == 0:
        time.sleep(0.01)
    other.execute_command("LPUSH", "q", "v")
    t.join()
    assert result == [[b"q", b"v"]]


def test_concurrent_use_of_one_connection_is_refused(impl, redis_server, redis_url):
    c = impl.Connection(redis_server.host, redis_server.port)
    t = threading.Thread(target=lambda: c.execute_command("BLPOP", "q2", 5))
    t.start()
    other = impl.Connection(redis_server.host, redis_server.port)
    while other.execute_command("CLIENT", "LIST", "TYPE", "normal").count(b"cmd=blpop") == 0:
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="in use"):
        c.execute_command("PING")
    other.execute_command("LPUSH", "q2", "x")
    t.join()
    assert c.execute_command("PING") == b"PONG"


def test_contending_threads_never_share_a_connection(impl, redis_server):
    """Eight threads hammer one Connection with ECHO of their own token,
    through execute_command, pipeline and multi_pipeline, with the
    interpreter switching threads every microsecond.  Each call either
    gets its own reply or RuntimeError("in use"); if two threads ever got
    in at once their commands would interleave on the socket and a thread
    would read another's reply (or a protocol error).  A check-then-set
    busy flag in the twin let that happen; its busy lock does not."""
    c = impl.Connection(redis_server.host, redis_server.port, busy_poll=0)
    outcomes: dict[str, int] = {"own": 0, "refused": 0}
    wrong: list = []
    start = threading.Barrier(8)
    lock = threading.Lock()

    def hammer(n: int) -> None:
        start.wait()
        own = refused = 0
        for i in range(400):
            token = b"%d-%d" % (n, i)
            try:
                if i % 3 == 0:
                    got = c.execute_command("ECHO", token)
                elif i % 3 == 1:
                    got = c.pipeline([("ECHO", token)])[0]
                else:
                    got = impl.multi_pipeline([(c, [("ECHO", token)])], 5.0)[0]
                    got = got[0] if isinstance(got, list) else got
            except RuntimeError as exc:
                assert "in use" in str(exc), exc
                refused += 1
                continue
            except Exception as exc:  # a crossed stream: protocol or timeout errors
                got = exc
            if got == token:
                own += 1
            else:
                with lock:
                    wrong.append((token, got))
        with lock:
            outcomes["own"] += own
            outcomes["refused"] += refused

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert wrong == []
    assert outcomes["own"] + outcomes["refused"] == 8 * 400
    assert outcomes["own"] > 0
    assert c.execute_command("PING") == b"PONG"  # left usable, not locked
    c.close()


@pytest.mark.parametrize("entry", ["execute_command", "multi_pipeline"])
def test_twin_busy_check_has_no_window_between_test_and_set(redis_server, entry):
    """The worst interleaving, forced: thread A is stopped inside the twin's
    Connection._enter() right after its first line has run, and thread B
    then uses the same connection.  With a check-then-set flag, A has
    tested the flag and not set it yet, so B gets in too (on PyPy or a
    free-threaded CPython a thread switch may fall there).  With the busy
    lock, A's one line has taken it, and B is refused."""
    py = _compat.py_core
    c = py.Connection(redis_server.host, redis_server.port, busy_poll=0)
    paused, resume = threading.Event(), threading.Event()
    enter_code = type(c)._enter.__code__
    seen_lines: list[int] = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not enter_code:
            return None
        if event in ("line", "return"):
            seen_lines.append(frame.f_lineno)
            if len(seen_lines) == 2 and not paused.is_set():  # after the first line
                paused.set()
                assert resume.wait(10)
        return tracer

    result: list = []

    def a() -> None:
        sys.settrace(tracer)
        try:
            if entry == "execute_command":
                result.append(c.execute_command("ECHO", "a"))
            else:
                result.append(py.multi_pipeline([(c, [("ECHO", "a")])], 5.0)[0][0])
        finally:
            sys.settrace(None)

    t = threading.Thread(target=a)
    t.start()
    assert paused.wait(10)
    try:
        with pytest.raises(RuntimeError, match="in use"):
            c.execute_command("ECHO", "b")
    finally:
        resume.set()
        t.join()
    assert result == [b"a"]
    assert c.execute_command("PING") == b"PONG"  # A left it free
    c.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_never_uses_parent_socket(impl, redis_server, redis_url):
    c = impl.Connection(redis_server.host, redis_server.port)
    parent_id = c.execute_command("CLIENT", "ID")
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 1
        try:
            os.close(rfd)
            child_id = c.execute_command("CLIENT", "ID")
            c.execute_command("SET", "from-child", "1")
            os.write(wfd, str(child_id).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(wfd)
    child_id = int(os.read(rfd, 100) or b"-1")
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert child_id != parent_id
    # the parent's connection is intact and still the same one
    assert c.execute_command("CLIENT", "ID") == parent_id
    assert c.execute_command("GET", "from-child") == b"1"


# -- busy-polling ----------------------------------------------------------------------
#
# The wait for a reply spins for up to busy_poll microseconds before it
# sleeps.  Which path a reply takes is made certain by the test: a budget of
# a second that any reply beats, or a reply that cannot come within the
# budget (BLPOP on an empty list answers only when its own timeout ends).


def test_busy_poll_replies_while_spinning(impl, redis_server):
    c = impl.Connection(redis_server.host, redis_server.port, busy_poll=1_000_000)
    assert c.execute_command("PING") == b"PONG"
    big = os.urandom(3 * 1024 * 1024)  # a reply read in many pieces
    assert c.execute_command("SET", "big", big) == b"OK"
    assert c.execute_command("GET", "big") == big
    c.execute_command("DEL", "n")
    replies = c.pipeline([("INCR", "n")] * 2000)
    assert replies == list(range(1, 2001))
    assert c.busy_poll_hits >= 3 and c.busy_poll_misses == 0


def test_busy_poll_miss_then_back_off(impl, redis_server):
    """A reply that comes after the budget is read by the sleeping wait;
    four such misses in a row make the next 64 waits sleep at once, and
    the one after them spins again."""
    c = impl.Connection(redis_server.host, redis_server.port, busy_poll=1000)
    for _ in range(4):  # answered (nil) after 0.05 s: 50 times the budget
        assert c.execute_command("BLPOP", "empty", 0.05) is None
    assert c.busy_poll_misses == 4
    hits = c.busy_poll_hits
    for _ in range(64):
        assert c.execute_command("PING") == b"PONG"
    assert (c.busy_poll_hits, c.busy_poll_misses) == (hits, 4)  # none spun
    assert c.execute_command("PING") == b"PONG"
    assert c.busy_poll_hits + c.busy_poll_misses == hits + 5  # this one did


def test_descriptor_above_fd_setsize(impl, redis_server):
    """A socket numbered past select()'s FD_SETSIZE (1024) works as any
    other: it is kept between commands (same CLIENT ID) and busy-polled."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("the hard limit on open files (%d) is below 1200" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    fillers = []
    try:
        while not fillers or fillers[-1] < 1100:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        c = impl.Connection(redis_server.host, redis_server.port, busy_poll=1_000_000)
        ids = {c.execute_command("CLIENT", "ID") for _ in range(5)}
        assert len(ids) == 1 and c.busy_poll_hits >= 5
        c.close()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_busy_poll_off(impl, redis_server):
    c = impl.Connection(redis_server.host, redis_server.port, busy_poll=0)
    for _ in range(50):
        assert c.execute_command("PING") == b"PONG"
    assert (c.busy_poll_hits, c.busy_poll_misses) == (0, 0)


def test_busy_poll_sees_server_close(impl, redis_server):
    """The server closes the connection while the client spins: the end of
    the stream is reported as ConnectionError, and the next command
    reconnects."""
    c = impl.Connection(redis_server.host, redis_server.port, busy_poll=1_000_000)
    my_id = c.execute_command("CLIENT", "ID")
    admin = redis_server.client()
    killer = threading.Timer(0.2, admin.client_kill_filter, kwargs={"_id": my_id})
    killer.start()
    try:
        with pytest.raises(ConnectionError):
            c.execute_command("BLPOP", "never", 5)
    finally:
        killer.join()
    assert c.execute_command("PING") == b"PONG"


def test_busy_poll_with_socket_timeout(impl, redis_server):
    """The spin is part of the wait: a silent server still ends in
    TimeoutError, and the connection recovers."""
    c = impl.Connection(redis_server.host, redis_server.port, socket_timeout=0.2,
                        busy_poll=100_000)
    with pytest.raises(TimeoutError):
        c.execute_command("BLPOP", "never", 3)
    assert c.execute_command("PING") == b"PONG"


def test_busy_poll_hostile_replies(impl):
    """Crafted bytes read by the spinning wait meet the same checks."""
    fake = FakeServer(b"?what\r\n", True)
    try:
        c = impl.Connection("127.0.0.1", fake.port, socket_timeout=2, busy_poll=1_000_000)
        with pytest.raises(ProtocolError):
            c.execute_command("GET", "k")
    finally:
        fake.close()


# -- hostile replies ---------------------------------------------------------------


def reply_from(impl, payload: bytes, close_after: bool = True, timeout: float = 2.0):
    fake = FakeServer(payload, close_after)
    try:
        c = impl.Connection("127.0.0.1", fake.port, socket_timeout=timeout)
        return c.execute_command("GET", "k")
    finally:
        fake.close()


@pytest.mark.parametrize(
    "payload, exc",
    [
        (b"?what\r\n", ProtocolError),
        (b"*1\r\n" * 9 + b":1\r\n", ProtocolError),  # nested deeper than hiredis allows
        (b"*2147483647\r\n", ConnectionError),  # huge count, then EOF: no allocation
        (b"$4294967296\r\nabc", ConnectionError),  # huge bulk, then EOF
        (b"$5\r\nab", ConnectionError),  # truncated
        (b"", ConnectionError),
    ],
)
def test_hostile_replies(impl, payload, exc):
    with pytest.raises(exc):
        reply_from(impl, payload)


def test_error_reply_with_invalid_utf8(impl):
    with pytest.raises(ResponseError, match="ERR bad \ufffd"):
        reply_from(impl, b"-ERR bad \xff\r\n")


def test_deep_but_allowed_nesting(impl):
    assert reply_from(impl, b"*1\r\n" * 7 + b":1\r\n") == [[[[[[[1]]]]]]]


def test_big_array_reply(impl):
    n = 10000
    payload = b"*%d\r\n" % n + b"".join(b":%d\r\n" % i for i in range(n))
    assert reply_from(impl, payload) == list(range(n))


def test_random_replies_never_crash(impl):
    rng = random.Random(1234)
    pieces = [b"*", b"$", b":", b"+", b"-", b"\r\n", b"1", b"-1", b"3", b"0", b"abc", b"\x00", b"999999999999"]
    for _ in range(150):
        payload = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        try:
            reply_from(impl, payload, timeout=0.5)
        except PyRedCacheError:
            pass
