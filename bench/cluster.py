"""Client-side sharding and batch mode: parallel fan-out, same run.

    make bench                      # runs this after bench/run.py
    python bench/cluster.py --quick # fewer rounds, for a smoke test

Four private redis-servers are started (free loopback ports, temp dirs, no
persistence) and stopped at the end.  In one run, on the same servers and
the same ~100-byte values (the default NativeSerializer):

* ``get_many`` of 1,000 keys over the 4 servers: pyredcache's parallel
  fan-out (one MGET per server, all in flight at once, C core and pure
  twin); the same code with ``max_concurrency=1`` (one server after
  another); redis-py with hiredis doing one MGET per server, one after
  another, on keys already grouped by server outside the timed loop (the
  most favourable case for it), decoding with the same C decoder;
* 100 decorated hits in ``batch_mode()`` against 100 calls one by one, on
  one server and on the 4-server cluster;
* ``redis-benchmark -t set,get -P 100`` on one of the servers, the server's
  own limit for pipelined GETs of a value of the same size: one client
  (``-c 1``) and redis-benchmark's default 50 clients.

Every figure is a median over interleaved rounds (see common.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from contextlib import ExitStack

import redis as redis_py
from common import bench_options, measure, private_redis

import pyredcache
from pyredcache import Cache, CacheCluster, _compat

VALUE = {"id": 12345, "name": "pyredcache", "tags": ["redis", "cache", "c"],
         "score": 0.875, "ok": True, "note": "a cached row of about 100 bytes"}


def redis_benchmark(port: int, size: int, clients: int) -> float:
    """Microseconds per GET of redis-benchmark -P 100 on 127.0.0.1:port."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        sys.exit("bench: redis-benchmark is not installed (it comes with redis-server)")
    out = subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", str(port), "-t", "set,get", "-P", "100",
         "-n", "2000000", "-d", str(size), "-c", str(clients), "-q"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout
    # -q prints a progress line ending in \r, then "GET: 1234567.00 requests per second..."
    rps = float(re.findall(r"GET: ([\d.]+) requests per second", out)[-1])
    return 1e6 / rps


def cluster(ports: list[int], impl: str, **options) -> CacheCluster:
    _compat.core = _compat.c_core if impl == "c" else _compat.py_core
    try:
        return CacheCluster({i: {"host": "127.0.0.1", "port": p} for i, p in enumerate(ports)},
                            namespace="bench:", **options)
    finally:
        _compat.core = _compat.c_core


def main() -> int:
    args, rounds, seconds = bench_options(__doc__)
    import hiredis  # noqa: F401  - redis-py must parse with hiredis here

    with ExitStack() as stack:
        ports = [stack.enter_context(private_redis())[0] for _ in range(4)]
        parallel = cluster(ports, "c")
        serial = cluster(ports, "c", max_concurrency=1)
        pure = cluster(ports, "python")
        keys = ["k%d" % i for i in range(1000)]
        parallel.set_many({k: dict(VALUE, id=i) for i, k in enumerate(keys)})
        size = len(parallel.serializer.dumps(dict(VALUE, id=1000)))

        clients = [redis_py.Redis("127.0.0.1", p) for p in ports]
        full = ["bench:" + k for k in keys]  # the cluster routes the namespaced key
        groups = [(clients[host], group)
                  for host, (_, group) in parallel.router.partition(full).items()]
        loads = _compat.c_core.loads

        def redis_py_mget_per_server() -> list:
            out = []
            for client, group in groups:
                out += [None if v is None else loads(v) for v in client.mget(group)]
            return out

        assert sorted(map(repr, redis_py_mget_per_server())) == sorted(
            map(repr, parallel.get_many(*keys)))
        fanout = measure({
            "parallel (C)": lambda: parallel.get_many(*keys),
            "parallel (pure)": lambda: pure.get_many(*keys),
            "one server after another (C)": lambda: serial.get_many(*keys),
            "redis-py+hiredis, MGET per server": redis_py_mget_per_server,
        }, len(keys), rounds, seconds)

        # 100 decorated hits: batch mode against one by one
        single = Cache("127.0.0.1", ports[0], namespace="bench:")
        batch_rows = []
        for label, cache in (("one server", single), ("4-server cluster", parallel)):
            @cache.cache(key_prefix="bench.row")
            def row(i: int) -> dict:
                return dict(VALUE, id=i)

            for i in range(100):
                row(i)

            def one_by_one() -> list:
                return [row(i) for i in range(100)]

            def batched() -> list:
                with cache.batch_mode():
                    ps = [row(i) for i in range(100)]
                return [p.value for p in ps]

            assert one_by_one() == batched()
            batch_rows.append((label, measure(
                {"batch_mode": batched, "one by one": one_by_one}, 1, rounds, seconds)))

        limits = {c: redis_benchmark(ports[0], size, c) for c in (1, 50)}

    print("pyredcache %s cluster bench: Python %s, redis-py %s (hiredis %s), 4 redis-servers "
          "on TCP loopback, %d-byte values, median of %d rounds"
          % (pyredcache.__version__, sys.version.split()[0], redis_py.__version__,
             hiredis.__version__, size, rounds))
    print()
    print("get_many of 1,000 keys over 4 servers (ratio = other's time / parallel C time)")
    print("| method | µs per call | µs per key | ratio |")
    print("|---|---|---|---|")
    base = fanout["parallel (C)"]
    for name, per_key in fanout.items():
        print("| %s | %.0f | %.3f | %.2fx |" % (name, per_key * 1000, per_key, per_key / base))
    for clients_n, per_get in limits.items():
        print("| redis-benchmark -P 100 -c %d, GET on one server | | %.3f | %.2fx |"
              % (clients_n, per_get, per_get / base))
    print()
    print("100 decorated hits (ratio = one by one / batch_mode)")
    print("| topology | batch_mode µs | one by one µs | ratio |")
    print("|---|---|---|---|")
    for label, res in batch_rows:
        print("| %s | %.0f | %.0f | %.2fx |" % (label, res["batch_mode"], res["one by one"],
                                             res["one by one"] / res["batch_mode"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
