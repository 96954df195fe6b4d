"""Shared fixtures.

* ``impl``: every test that touches the core runs once on the C extension
  (``pyredcache._core``) and once on its pure twin (``pyredcache._pure``).
  ``--no-c-extensions`` runs the pure side alone.  If the C extension is not
  built and the switch is not given, the C half fails: it does not skip.
* ``redis_server``: a private ``redis-server`` (free loopback port plus a
  unix socket, temp dir, no persistence) for the whole session; ``server``
  is a fresh one for a single test that kills or restarts it;
  ``shards`` are four more for client-side sharding, flushed per test;
  ``masters`` five more for Redlock and NextId (a test may kill them: the
  next test gets them restarted and flushed).  Nothing here
  ever talks to a server the machine happens to run on 6379.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis as redis_py

from pyredcache import _compat


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-c-extensions",
        action="store_true",
        default=_compat._env_flag("PYREDCACHE_NO_EXTENSIONS"),
        help="run the suite against the pure-Python twin only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        names = ["python"] if metafunc.config.getoption("--no-c-extensions") else ["c", "python"]
        metafunc.parametrize("impl", names, indirect=True)


@pytest.fixture
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The core module under test; objects built during the test use it."""
    if request.param == "c":
        if _compat.c_core is None:
            pytest.fail(
                "the C extension pyredcache._core is not built; build it "
                "(make build) or pass --no-c-extensions"
            )
        module = _compat.c_core
    else:
        module = _compat.py_core
    monkeypatch.setattr(_compat, "core", module)
    return module


@pytest.fixture
def both(request: pytest.FixtureRequest):
    """(C core, pure twin), for tests that compare the two directly.  Under
    --no-c-extensions there is no C side to compare: such tests skip."""
    if request.config.getoption("--no-c-extensions"):
        pytest.skip("compares the C core with the twin; C disabled by --no-c-extensions")
    if _compat.c_core is None:
        pytest.fail("the C extension pyredcache._core is not built")
    return _compat.c_core, _compat.py_core


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server process in a temp dir, no persistence."""

    def __init__(self, *extra_args: str) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed (make test installs it)")
        self.exe = exe
        self.extra_args = list(extra_args)
        self.dir = Path(tempfile.mkdtemp(prefix="pyredcache-test-"))
        self.host = "127.0.0.1"
        self.port = free_port()
        self.unix_socket_path = str(self.dir / "redis.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.unix_socket_path}?db=0"

    def start(self) -> None:
        args = [
            self.exe, "--port", str(self.port), "--bind", self.host,
            "--unixsocket", self.unix_socket_path, "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir),
            "--daemonize", "no", "--logfile", str(self.dir / "redis.log"),
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis_py.exceptions.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "redis.log").read_text(errors="replace")
                pytest.fail(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)

    def client(self, **kwargs) -> redis_py.Redis:
        """A plain redis-py client, for checking the server directly."""
        return redis_py.Redis(host=self.host, port=self.port, **kwargs)

    def kill(self) -> None:
        """SIGKILL the server and wait for it to be gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        try:
            os.unlink(self.unix_socket_path)
        except FileNotFoundError:
            pass

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session server, flushed before the test."""
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def shard_servers() -> Iterator[list[RedisServer]]:
    """Four private servers for client-side sharding, for the session."""
    servers = [RedisServer() for _ in range(4)]
    yield servers
    for s in servers:
        s.close()


@pytest.fixture
def shards(shard_servers: list[RedisServer]) -> list[RedisServer]:
    """The four shard servers, flushed before the test."""
    for s in shard_servers:
        s.client().flushall()
    return shard_servers


@pytest.fixture(scope="session")
def master_servers() -> Iterator[list[RedisServer]]:
    """Five private servers: the independent masters of Redlock and NextId."""
    servers = [RedisServer() for _ in range(5)]
    yield servers
    for s in servers:
        s.close()


@pytest.fixture
def masters(master_servers: list[RedisServer]) -> list[RedisServer]:
    """The five masters, flushed before the test (and restarted if a
    previous test killed one)."""
    for s in master_servers:
        if s.proc is None or s.proc.poll() is not None:
            s.start()
        s.client().flushall()
    return master_servers


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of the test's own, free to kill and restart."""
    s = RedisServer()
    yield s
    s.close()


@pytest.fixture
def one_node_cluster():
    """A Redis Cluster of one node holding every slot, for the tests of a
    user's redis.cluster.RedisCluster client (which cannot be made without a
    server to ask for the slots); one per test."""
    # its own bus port: the default, port + 10000, may be past 65535
    node = RedisServer("--cluster-enabled", "yes", "--cluster-port", str(free_port()))
    try:
        r = node.client()
        r.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 10
        while r.cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline, "the one-node cluster never became ok"
            time.sleep(0.02)
        r.close()
        yield node
    finally:
        node.close()


class FakeClock:
    """A virtual clock for pyredcache.timer: ``sleep()``/``advance()`` move
    it, nothing waits (``monkeypatch.setattr(timer_module, "_clock",
    clock)``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    sleep = advance

