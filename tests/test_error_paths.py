"""Error paths of the core's connections and fan-out, driven for real: a
server that resets the connection, one that never answers, signals during
a wait, handshakes that fail, arguments that cannot be encoded.

Each test runs on the C extension and on the pure twin (the ``impl``
fixture) and asserts the error type, that the connection is closed when
its stream is out of step, and that it works again afterwards.  Faults
that only a debug build can inject (hiredis out of memory) are in
test_faults.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from conftest import free_port
from fakeserver import ResettingServer, SilentServer
from pyredcache.exceptions import ConnectionError, ResponseError, TimeoutError


@pytest.fixture
def resetting():
    servers: list[ResettingServer] = []

    def make(read_first: bool) -> ResettingServer:
        servers.append(ResettingServer(read_first))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def silent():
    s = SilentServer()
    yield s
    s.close()


@pytest.fixture
def conn(impl, redis_server, redis_url):
    c = impl.Connection(redis_server.host, redis_server.port)
    yield c
    c.close()


@pytest.fixture
def alarm():
    """alarm(seconds, handler): SIGALRM once after `seconds`; restored after."""
    old = signal.getsignal(signal.SIGALRM)

    def arm(seconds: float, handler) -> None:
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)

    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


class Interrupted(Exception):
    pass


def interrupt(signum, frame):
    raise Interrupted()


BIG = b"x" * (32 << 20)  # more than the kernel buffers: the write blocks


# -- a server that resets the connection ----------------------------------------------


def test_reset_while_reading_the_reply(impl, resetting):
    server = resetting(read_first=True)
    c = impl.Connection("127.0.0.1", server.port, socket_timeout=5, busy_poll=0)
    with pytest.raises(ConnectionError, match=str(server.port)) as info:
        c.execute_command("GET", "k")
    assert not isinstance(info.value, TimeoutError)
    assert not c.connected


def test_reset_while_writing_the_command(impl, resetting):
    server = resetting(read_first=False)
    c = impl.Connection("127.0.0.1", server.port, socket_timeout=5)
    with pytest.raises(ConnectionError, match=str(server.port)) as info:
        c.execute_command("SET", "k", BIG)
    assert not isinstance(info.value, TimeoutError)
    assert not c.connected


def test_fan_out_reset_while_reading_fails_its_job_only(impl, resetting, conn):
    server = resetting(read_first=True)
    bad = impl.Connection("127.0.0.1", server.port, busy_poll=0)
    results = impl.multi_pipeline([(bad, [("GET", "k")]), (conn, [("PING",)])], 5.0)
    assert isinstance(results[0], ConnectionError)
    assert not isinstance(results[0], TimeoutError)
    assert str(server.port) in str(results[0])
    assert results[1] == [b"PONG"]
    assert not bad.connected and conn.connected


def test_fan_out_reset_while_writing_fails_its_job_only(impl, resetting, conn):
    server = resetting(read_first=False)
    bad = impl.Connection("127.0.0.1", server.port)
    results = impl.multi_pipeline(
        [(bad, [("SET", "k", BIG)]), (conn, [("PING",)])], 5.0)
    assert isinstance(results[0], ConnectionError)
    assert not isinstance(results[0], TimeoutError)
    assert results[1] == [b"PONG"]
    assert not bad.connected


def test_fan_out_large_writes_and_reads(impl, conn):
    """A pipeline larger than the socket buffers is written in turns as the
    socket becomes writable, and a reply larger than one read is read in
    turns: both arrive whole."""
    value = bytes(range(256)) * (16 << 12)  # 16 MiB
    results = impl.multi_pipeline([(conn, [("SET", "big", value), ("GET", "big")])], 30.0)
    assert results[0][0] == b"OK"
    assert results[0][1] == value
    conn.execute_command("DEL", "big")


def test_fan_out_unreachable_server_fails_its_job_only(impl, conn):
    dead = impl.Connection("127.0.0.1", free_port(), socket_connect_timeout=2)
    results = impl.multi_pipeline([(dead, [("PING",)]), (conn, [("PING",)])], 5.0)
    assert isinstance(results[0], ConnectionError)
    assert "Error connecting" in str(results[0])
    assert results[1] == [b"PONG"]


# -- signals while waiting -------------------------------------------------------------


def test_signal_handler_exception_abandons_the_reply(impl, silent, alarm):
    c = impl.Connection("127.0.0.1", silent.port, socket_timeout=30, busy_poll=0)
    alarm(0.2, interrupt)
    with pytest.raises(Interrupted):
        c.execute_command("GET", "k")
    assert not c.connected  # a late reply must never be read later


def test_signal_handler_exception_aborts_the_fan_out(impl, silent, alarm, conn):
    c = impl.Connection("127.0.0.1", silent.port, busy_poll=0)
    conn.connect()
    alarm(0.2, interrupt)
    with pytest.raises(Interrupted):
        impl.multi_pipeline([(c, [("GET", "k")]), (conn, [("PING",)])], 30.0)
    assert not c.connected
    # the connections are no longer busy, and the live one works again
    assert conn.execute_command("PING") == b"PONG"


def test_signal_without_exception_lets_the_fan_out_go_on(impl, silent, alarm):
    seen = []
    c = impl.Connection("127.0.0.1", silent.port, busy_poll=0)
    alarm(0.1, lambda signum, frame: seen.append(signum))
    results = impl.multi_pipeline([(c, [("GET", "k")])], 0.5)
    assert seen == [signal.SIGALRM]
    assert isinstance(results[0], TimeoutError)
    assert not c.connected


def test_tiny_socket_timeout_is_a_timeout_not_for_ever(impl, silent):
    c = impl.Connection("127.0.0.1", silent.port, socket_timeout=1e-9, busy_poll=0)
    assert c.socket_timeout == 1e-9
    with pytest.raises(TimeoutError):
        c.execute_command("GET", "k")


# -- connect and the handshake ---------------------------------------------------------


def test_connect_refused_raises_from_connect(impl):
    c = impl.Connection("127.0.0.1", free_port())
    with pytest.raises(ConnectionError, match="Error connecting"):
        c.connect()
    assert not c.connected


def test_auth_to_a_server_that_hangs_up(impl, resetting):
    server = resetting(read_first=True)
    c = impl.Connection("127.0.0.1", server.port, password="secret", socket_timeout=5)
    with pytest.raises(ConnectionError, match=str(server.port)):
        c.connect()
    assert not c.connected


def test_select_refused_by_the_server(impl, redis_server, redis_url):
    c = impl.Connection(redis_server.host, redis_server.port, db=1_000_000)
    with pytest.raises(ResponseError, match="DB index"):
        c.execute_command("PING")
    assert not c.connected


@pytest.mark.parametrize("kwargs", [
    {"host": "\udc80"},
    {"password": "\udc80"},
    {"username": "\udc80", "password": "x"},
])
def test_unencodable_connection_strings(impl, redis_server, redis_url, kwargs):
    kwargs.setdefault("host", redis_server.host)
    c = impl.Connection(port=redis_server.port, **kwargs)
    with pytest.raises(UnicodeError):
        c.connect()
    assert not c.connected


def test_unix_socket_path_is_a_file_system_path(impl, tmp_path):
    # A lone surrogate is how Python spells a path byte that is not UTF-8
    # (os.fsdecode): it names a file, it is not an encoding error.
    path = str(tmp_path) + "/\udc80.sock"
    c = impl.Connection(unix_socket_path=path)
    with pytest.raises(ConnectionError, match="No such file"):
        c.connect()


def test_connect_and_close_refused_while_another_thread_waits(impl, silent):
    c = impl.Connection("127.0.0.1", silent.port, socket_timeout=30, busy_poll=0)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            c.execute_command("GET", "k")
        except BaseException as exc:  # the ConnectionError it ends with
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    try:
        for _ in range(3000):  # until the waiting thread has connected
            if silent.conns:
                break
            threading.Event().wait(0.01)
        assert silent.conns
        with pytest.raises(RuntimeError, match="in use"):
            c.connect()
        with pytest.raises(RuntimeError, match="in use"):
            c.close()
    finally:
        silent.hang_up()  # ends the wait
        t.join()
    assert len(errors) == 1 and isinstance(errors[0], ConnectionError), errors
    assert not c.connected


# -- arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, exc", [
    ({"socket_timeout": 10**400}, OverflowError),
    ({"socket_connect_timeout": 10**400}, OverflowError),
    ({"busy_poll": 2**70}, ValueError),
    ({"port": 2**70}, ValueError),
    ({"db": 2**70}, ValueError),
    ({"username": 5, "password": "x"}, TypeError),
    ({"password": 5}, TypeError),
    ({"no_such_option": 1}, TypeError),
])
def test_bad_configuration_values(impl, kwargs, exc):
    with pytest.raises(exc):
        impl.Connection(**kwargs)


def test_str_subclass_arguments(conn):
    class Name(str):
        pass

    assert conn.execute_command("ECHO", Name("héllo")) == "héllo".encode()
    with pytest.raises(UnicodeEncodeError):
        conn.execute_command("ECHO", Name("\udc80"))
    with pytest.raises(UnicodeEncodeError):
        conn.execute_command("ECHO", "\udc80")
    with pytest.raises(UnicodeEncodeError):
        conn.pipeline([("ECHO", "a"), ("ECHO", "\udc80")])
    assert conn.execute_command("ECHO", "after") == b"after"


def test_pipeline_of_non_sequences(conn):
    with pytest.raises(TypeError, match="sequence of arguments"):
        conn.pipeline([5])
    with pytest.raises(TypeError, match="sequence of arguments"):
        conn.pipeline([("PING",), 5])
    assert conn.execute_command("PING") == b"PONG"


def test_multi_pipeline_argument_errors(impl, conn):
    with pytest.raises(TypeError, match="sequence of"):
        impl.multi_pipeline(5)
    with pytest.raises(TypeError, match="no_such_option"):
        impl.multi_pipeline([], no_such_option=1)
    with pytest.raises(OverflowError):
        impl.multi_pipeline([(conn, [("PING",)])], 10**400)

    def jobs():
        raise ValueError("from the iterator")
        yield

    # an iterator's own error is not hidden behind a TypeError
    with pytest.raises(ValueError, match="from the iterator"):
        impl.multi_pipeline(jobs())
    assert impl.multi_pipeline([(conn, [("PING",)])]) == [[b"PONG"]]


# -- fork --------------------------------------------------------------------------------

FORK_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pyredcache import _compat
    impl = _compat.c_core if sys.argv[1] == "c" else _compat.py_core
    c = impl.Connection("127.0.0.1", int(sys.argv[2]))
    parent_id = c.execute_command("CLIENT", "ID")
    pid = os.fork()
    if pid == 0:
        # a normal exit (not os._exit): the child's interpreter ends as
        # any program's does
        child_id = c.execute_command("CLIENT", "ID")
        sys.exit(0 if child_id != parent_id else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, status
    assert c.execute_command("CLIENT", "ID") == parent_id
    print("ok")
    """
)


def test_fork_child_that_exits_normally(impl, redis_server, redis_url):
    out = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, impl.implementation, str(redis_server.port)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]
