"""Leak checks (CRAFT #19): loop core calls many times in a fresh
subprocess and compare memory before and after.

tracemalloc sees the Python objects the core makes; the resident set size
also sees what hiredis allocates with malloc.  After a warm-up, 30,000
more iterations must not grow either by more than a small allowance (a
leak of one 32-byte block per iteration would add about 1 MB)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


SCRIPT = textwrap.dedent(
    """
    import gc, sys, tracemalloc
    from pyredcache import _compat
    from pyredcache.exceptions import ResponseError, PyRedCacheError
    impl = _compat.c_core if sys.argv[1] == "c" else _compat.py_core
    port = int(sys.argv[2])

    def rss_kb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4

    conn = impl.Connection("127.0.0.1", port)
    conn.execute_command("SET", "k", "x" * 100)
    conn.execute_command("RPUSH", "l", *range(50))

    def once(i):
        conn.execute_command("GET", "k")
        conn.execute_command("SET", "n", i, "EX", 100)
        conn.pipeline([("GET", "k"), ("LRANGE", "l", 0, -1), ("INCRBYFLOAT", "f", 0.5),
                       ("GET", "missing"), ("LPUSH", "k", "x")])
        try:
            conn.execute_command("LPUSH", "k", "x")
        except ResponseError:
            pass
        try:
            conn.execute_command("SET", "k", object())
        except TypeError:
            pass
        if i % 1000 == 0:
            conn.close()  # reconnect path too

    for i in range(3000):
        once(i)
    gc.collect()
    tracemalloc.start()
    before_py = tracemalloc.get_traced_memory()[0]
    before_rss = rss_kb()
    for i in range(30000):
        once(i)
    gc.collect()
    after_py = tracemalloc.get_traced_memory()[0]
    after_rss = rss_kb()
    print(after_py - before_py, after_rss - before_rss)
    """
)


def test_no_leaks_in_connection(impl, redis_server, redis_url):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, impl.implementation, str(redis_server.port)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    py_growth, rss_growth_kb = map(int, out.stdout.split())
    assert py_growth < 64 * 1024, "Python objects grew by %d bytes" % py_growth
    assert rss_growth_kb < 1024, "resident memory grew by %d kB" % rss_growth_kb
