"""pyredcache.server.EmbeddedRedis: a private redis-server on a unix socket."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
import weakref
from pathlib import Path

import pytest
import redis as redis_py

from pyredcache import PyRedCacheError
from pyredcache.server import EmbeddedRedis, EmbeddedRedisError

ROOT = Path(__file__).resolve().parents[1]


def ping(path: str) -> bytes:
    """Send PING over the unix socket at ``path``; the reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"PING\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(64)
            assert chunk, "the server closed the connection"
            data += chunk
        return data.split(b"\r\n")[0]


def alive(pid: int) -> bool:
    """True if a process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make tempfile create its directories under tmp_path, to check cleanup."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_answers_ping_on_its_unix_socket() -> None:
    with EmbeddedRedis() as server:
        path = server.unix_socket_path
        assert server.url == "unix://%s?db=0" % path
        assert os.path.dirname(path) == server.directory
        assert ping(path) == b"+PONG"
        assert alive(server.pid)


def test_no_tcp_and_no_persistence() -> None:
    with EmbeddedRedis() as server:
        client = redis_py.Redis(unix_socket_path=server.unix_socket_path)
        try:
            assert client.config_get("port") == {"port": "0"}
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
            assert client.config_get("dir")["dir"] == os.path.realpath(server.directory)
            assert client.set("k", "v") and client.get("k") == b"v"
        finally:
            client.close()


def test_extra_args_are_passed() -> None:
    with EmbeddedRedis(extra_args=("--maxmemory", "12mb")) as server:
        client = redis_py.Redis(unix_socket_path=server.unix_socket_path)
        try:
            assert client.config_get("maxmemory") == {"maxmemory": str(12 * 1024 * 1024)}
        finally:
            client.close()


def test_close_stops_the_process_and_removes_the_directory() -> None:
    server = EmbeddedRedis()
    pid, directory = server.pid, server.directory
    assert alive(pid) and os.path.isdir(directory)
    assert not server.closed
    server.close()
    assert server.closed
    assert not alive(pid)  # close() waits for the process
    assert not os.path.exists(directory)


def test_close_is_idempotent() -> None:
    server = EmbeddedRedis()
    pid = server.pid
    server.close()
    server.close()
    assert not alive(pid)
    assert "closed" in repr(server)


def test_context_manager() -> None:
    with EmbeddedRedis() as server:
        pid, directory = server.pid, server.directory
        assert ping(server.unix_socket_path) == b"+PONG"
    assert server.closed
    assert not alive(pid)
    assert not os.path.exists(directory)


def test_context_manager_stops_on_error() -> None:
    with pytest.raises(KeyError):
        with EmbeddedRedis() as server:
            pid = server.pid
            raise KeyError("boom")
    assert not alive(pid)


def test_stopped_at_interpreter_exit() -> None:
    # A child creates a server, never closes it, and exits normally.
    code = textwrap.dedent(
        """
        from pyredcache.server import EmbeddedRedis
        server = EmbeddedRedis()
        print(server.pid, server.directory, flush=True)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    pid_text, directory = proc.stdout.split()
    pid = int(pid_text)
    # An orphaned redis-server would have been re-parented and keep running.
    assert wait_gone(pid), "redis-server %d still runs after its parent exited" % pid
    assert not os.path.exists(directory)


def test_forked_child_does_not_stop_the_parents_server() -> None:
    with EmbeddedRedis() as server:
        with warnings.catch_warnings():  # 3.12+: fork() in a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            # Run the exit hooks the way a normal interpreter exit would.
            try:
                server.close()
            finally:
                os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert ping(server.unix_socket_path) == b"+PONG"
        assert os.path.isdir(server.directory)


def test_holds_no_strong_reference_to_itself() -> None:
    server = EmbeddedRedis()
    pid, directory = server.pid, server.directory
    ref = weakref.ref(server)
    del server
    gc.collect()
    assert ref() is None
    # Dropped without close(): stopped and cleaned up by its finalizer.
    assert not alive(pid)
    assert not os.path.exists(directory)


def test_missing_redis_server_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    with pytest.raises(EmbeddedRedisError) as info:
        EmbeddedRedis()
    message = str(info.value)
    assert "redis-server was not found" in message
    assert "install the redis-server package" in message
    assert isinstance(info.value, PyRedCacheError)


def test_missing_executable_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-redis-server")
    with pytest.raises(EmbeddedRedisError, match="does not exist.*redis-server package"):
        EmbeddedRedis(executable=missing)


def test_executable_that_cannot_run(private_tmp: Path) -> None:
    script = private_tmp / "not-executable"
    script.write_text("#!/bin/sh\n")  # mode 644
    with pytest.raises(EmbeddedRedisError, match="cannot run"):
        EmbeddedRedis(executable=str(script))
    assert sorted(p.name for p in private_tmp.iterdir()) == ["not-executable"]


def test_server_exiting_at_start_reports_its_log(private_tmp: Path) -> None:
    with pytest.raises(EmbeddedRedisError) as info:
        EmbeddedRedis(extra_args=("--no-such-directive", "1"))
    message = str(info.value)
    assert "exited with status" in message
    assert "no-such-directive" in message  # from the server's own error output
    assert list(private_tmp.iterdir()) == []  # its temp dir was removed


def test_startup_timeout_kills_the_process(private_tmp: Path) -> None:
    pidfile = private_tmp / "pid"
    fake = private_tmp / "silent-redis-server"
    fake.write_text('#!/bin/sh\necho $$ > "%s"\nexec sleep 60\n' % pidfile)
    fake.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(EmbeddedRedisError, match="did not answer PING .* within 0.5 seconds"):
        EmbeddedRedis(executable=str(fake), startup_timeout=0.5)
    assert time.monotonic() - start < 10
    assert not alive(int(pidfile.read_text()))
    assert sorted(p.name for p in private_tmp.iterdir()) == ["pid", "silent-redis-server"]


def test_error_reply_to_ping_is_reported() -> None:
    with pytest.raises(EmbeddedRedisError, match="NOAUTH"):
        EmbeddedRedis(extra_args=("--requirepass", "secret"))


# A stand-in for redis-server that answers PING but ignores SIGTERM, to
# check that close() falls back to SIGKILL.
STUBBORN_SERVER = """\
#!{python}
import os, signal, socket, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
path = sys.argv[sys.argv.index("--unixsocket") + 1]
listener = socket.socket(socket.AF_UNIX)
listener.bind(path)
listener.listen(5)
while True:
    conn, _ = listener.accept()
    conn.recv(64)
    conn.sendall(b"+PONG\\r\\n")
    conn.close()
"""


def test_close_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    fake = tmp_path / "stubborn-redis-server"
    fake.write_text(STUBBORN_SERVER.format(python=sys.executable))
    fake.chmod(0o755)
    server = EmbeddedRedis(executable=str(fake), stop_timeout=0.3)
    pid = server.pid
    assert ping(server.unix_socket_path) == b"+PONG"
    start = time.monotonic()
    server.close()
    assert time.monotonic() - start >= 0.3  # it waited for SIGTERM first
    assert not alive(pid)
    assert not os.path.exists(server.directory)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"extra_args": "--maxmemory 1mb"}, TypeError),
        ({"startup_timeout": 0}, ValueError),
        ({"stop_timeout": -1}, ValueError),
    ],
)
def test_bad_arguments(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        EmbeddedRedis(**kwargs)
