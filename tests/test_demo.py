"""The command line (``python -m pyredcache``), its demo, and examples/.

Each run is a subprocess, once on the C core and once on the pure twin
(``PYREDCACHE_NO_EXTENSIONS=1``), following the ``impl`` fixture.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Dict, Optional

import pytest

from pyredcache import _demo

ROOT = Path(__file__).resolve().parents[1]
KEY_RE = re.compile(rb"^pyredcache-demo:summarise_source:[0-9a-f]{32}$")


def environ(impl: ModuleType, redis_url: Optional[str]) -> Dict[str, str]:
    """The environment for a subprocess using ``impl`` and ``redis_url``."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.pop("PYREDCACHE_NO_EXTENSIONS", None)
    if impl.implementation == "python":
        env["PYREDCACHE_NO_EXTENSIONS"] = "1"
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run(env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def demo(impl: ModuleType, redis_url: Optional[str], *args: str) -> str:
    """Run the demo; check it succeeded and reported a correct run; its output."""
    proc = run(environ(impl, redis_url), "-m", "pyredcache", "demo", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    n = len(_demo.find_modules())
    assert n >= 20, "too few stdlib modules found to make a demo"

    assert re.search(r"^  implementation  (\w+)$", out, re.M).group(1) == impl.implementation
    misses = re.search(r"^  1st: misses\s+(\d+)\s+(\d+)\s", out, re.M)
    hits = re.search(r"^  2nd: hits\s+(\d+)\s+(\d+)\s", out, re.M)
    # The first pass: every call ran the work.  The second: none did.
    assert (int(misses.group(1)), int(misses.group(2))) == (n, n), out
    assert (int(hits.group(1)), int(hits.group(2))) == (n, 0), out
    ran = re.search(r"^  work ran\s+(\d+) times for (\d+) inputs \(once each\)$", out, re.M)
    assert ran and int(ran.group(1)) == int(ran.group(2)) == n, out
    second = re.search(
        r"^  second pass\s+(\d+) of (\d+) calls were hits \(results equal to", out, re.M
    )
    assert second and int(second.group(1)) == int(second.group(2)) == n, out
    stored = re.search(r"^  keys stored\s+(\d+) results under pyredcache-demo:", out, re.M)
    assert stored and int(stored.group(1)) == n, out
    assert re.search(r"^  speed-up\s+\d+x faster on a hit", out, re.M), out
    assert "FAILED" not in out
    return out


def demo_keys(redis_server) -> list:
    client = redis_server.client()
    try:
        return sorted(client.scan_iter(match="pyredcache-demo:*", count=1000))
    finally:
        client.close()


def test_demo_with_redis_url(impl: ModuleType, redis_server) -> None:
    redis_server.client().flushall()
    out = demo(impl, redis_server.url)
    assert re.search(r"^  redis           %s$" % re.escape(redis_server.url), out, re.M)
    assert "embedded" not in out

    # The results stay in Redis (no --clear), under the demo's namespace,
    # with the demo's expiry, and nothing else was written.
    keys = demo_keys(redis_server)
    assert len(keys) == len(_demo.find_modules())
    assert all(KEY_RE.match(k) for k in keys), keys[:3]
    client = redis_server.client()
    assert client.dbsize() == len(keys)
    assert 0 < client.ttl(keys[0]) <= _demo.EXPIRE
    assert keys[0].decode() in out  # the report shows the first keys, sorted

    # Run again with --clear: the first pass misses again (the demo starts
    # cold), and the keys are gone afterwards.
    out = demo(impl, redis_server.url, "--clear")
    assert re.search(r"^  invalidated     %d entries left by an earlier run$" % len(keys), out, re.M)
    assert re.search(r"^  cleared         deleted %d keys" % len(keys), out, re.M)
    assert demo_keys(redis_server) == []
    assert client.dbsize() == 0
    client.close()


def test_demo_with_embedded_server(impl: ModuleType) -> None:
    out = demo(impl, None)
    m = re.search(
        r"^  redis           unix://(\S+)\?db=0 \(embedded redis-server, pid (\d+), ", out, re.M
    )
    assert m, out
    socket_path, pid = m.group(1), int(m.group(2))
    # The embedded server is gone with the demo, and so is its directory.
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists("/proc/%d" % pid)
    assert not os.path.exists(os.path.dirname(socket_path))


def test_demo_unreachable_server_fails_cleanly(impl: ModuleType, server) -> None:
    url = server.url
    server.kill()  # nothing listens on that port any more
    proc = run(environ(impl, url), "-m", "pyredcache", "demo")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "pyredcache demo: error with %s: ConnectionError" % url in proc.stderr


def test_demo_malformed_url_fails_cleanly(impl: ModuleType) -> None:
    proc = run(environ(impl, None), "-m", "pyredcache", "demo", "--url", "http://nowhere/")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "pyredcache demo: bad Redis URL: " in proc.stderr
    assert "http://nowhere/" in proc.stderr


def test_cli_without_command_prints_help(impl: ModuleType) -> None:
    proc = run(environ(impl, None), "-m", "pyredcache")
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m pyredcache" in proc.stdout
    assert "demo" in proc.stdout and "info" in proc.stdout


def test_cli_info_names_the_core(impl: ModuleType) -> None:
    proc = run(environ(impl, None), "-m", "pyredcache", "info")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^implementation  %s$" % impl.implementation, proc.stdout, re.M)
    assert os.path.basename(impl.__file__) in proc.stdout


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://127.0.0.1:6380/0", "redis://127.0.0.1:6380/0"),
        ("redis://:s3cret@host:6380/1", "redis://:***@host:6380/1"),
        ("redis://user:s3cret@host/2", "redis://user:***@host/2"),
        ("redis://s3cret@host", "redis://***@host"),
        ("redis://user:p@ss@host:1/0", "redis://user:***@host:1/0"),
        ("unix:///tmp/redis.sock?db=3", "unix:///tmp/redis.sock?db=3"),
    ],
)
def test_passwords_are_not_printed(url: str, shown: str) -> None:
    assert _demo._redact(url) == shown


def test_summarise_source_counts(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import os, sys\n"
        "from .pkg import thing\n"
        "\n"
        "class A:\n"
        "    def f(self, x):\n"
        "        return self.g(x) + x\n"
        "\n"
        "    async def g(self, x):\n"
        "        return x\n"
    )
    summary = _demo.summarise_source(str(source))
    assert summary["lines"] == 9
    assert summary["functions"] == 2
    assert summary["classes"] == 1
    assert summary["imports"] == 2
    assert summary["imported"] == [".pkg", "os", "sys"]
    assert summary["top_identifiers"][0] == ["x", 5]


def test_example_quickstart(impl: ModuleType, redis_server) -> None:
    redis_server.client().flushall()
    proc = run(environ(impl, redis_server.url), str(ROOT / "examples" / "quickstart.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "quick start: all checks passed on the %s core" % impl.implementation in proc.stdout
    assert redis_server.client().dbsize() == 0  # it cleaned up after itself


def test_example_cluster(impl: ModuleType) -> None:
    proc = run(environ(impl, None), str(ROOT / "examples" / "cluster.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cluster example: all checks passed" in proc.stdout
    assert "(%s core)" % impl.implementation in proc.stdout
    held = [int(line.split()[2]) for line in proc.stdout.splitlines() if " holds " in line]
    assert len(held) == 3 and sum(held) == 1000 and min(held) > 0
