"""pyredcache benchmarks: ratios against redis-py (with hiredis), same run.

    make bench                      # or: .venv/bin/python bench/run.py
    python bench/run.py --unix      # over a unix socket instead of TCP
    python bench/run.py --quick     # fewer rounds, for a smoke test

One private redis-server is started for the run (free loopback port and a
unix socket in a temp dir, no persistence) and stopped at the end; nothing
touches a server the machine may run on 6379.

Every figure is the median over several rounds of the time per operation,
with the contenders interleaved round by round so that machine noise hits
them alike.  ``ratio`` is the peer's time divided by ours: above 1 means
pyredcache is faster.
"""

from __future__ import annotations

import json
import sys

import redis as redis_py
from common import bench_options, measure, private_redis

import pyredcache
from pyredcache import Cache, JSONSerializer, _compat

VALUE = {
    "id": 12345,
    "name": "pyredcache",
    "tags": ["redis", "cache", "c"],
    "score": 0.875,
    "ok": True,
}
assert 80 <= len(json.dumps(VALUE)) <= 120, len(json.dumps(VALUE))


def make_cache(impl: str, port: int, sock: str, unix: bool) -> Cache:
    _compat.core = _compat.c_core if impl == "c" else _compat.py_core
    if unix:
        return Cache(redis_options={"unix_socket_path": sock}, namespace="bench:",
                     serializer_cls=JSONSerializer)
    return Cache("127.0.0.1", port, namespace="bench:", serializer_cls=JSONSerializer)


def main() -> int:
    args, rounds, seconds = bench_options(__doc__, unix=True)

    import hiredis  # noqa: F401  - redis-py must parse with hiredis here

    with private_redis() as (port, sock):
        if args.unix:
            r = redis_py.Redis(unix_socket_path=sock)
        else:
            r = redis_py.Redis("127.0.0.1", port)
        parser = "hiredis parser" if redis_py.utils.HIREDIS_AVAILABLE else "pure-Python parser"
        caches = {impl: make_cache(impl, port, sock, args.unix) for impl in ("c", "python")}
        _compat.core = _compat.c_core

        decorated = {}
        for impl, cache in caches.items():
            @cache.cache(key_prefix="bench.load")
            def load(user_id: int, kind: str = "profile") -> dict:
                return VALUE
            load(1)
            decorated[impl] = load
        hit_key = decorated["c"].__pyredcache__.builder((1,), {})
        assert r.get(hit_key) is not None
        loads = json.loads

        caches["c"].set("plain", VALUE)
        keys = ["k%d" % i for i in range(100)]
        caches["c"].set_many({k: VALUE for k in keys})
        full_keys = ["bench:" + k for k in keys]

        results = []
        res = measure({
            "pyredcache (C)": lambda: decorated["c"](1),
            "pyredcache (pure)": lambda: decorated["python"](1),
            "redis-py+hiredis": lambda: loads(r.get(hit_key)),
        }, 1, rounds, seconds)
        results.append(("decorated hit", res))
        res = measure({
            "pyredcache (C)": lambda: caches["c"].get("plain"),
            "pyredcache (pure)": lambda: caches["python"].get("plain"),
            "redis-py+hiredis": lambda: loads(r.get("bench:plain")),
        }, 1, rounds, seconds)
        results.append(("get", res))
        res = measure({
            "pyredcache (C)": lambda: caches["c"].get_many(*keys),
            "pyredcache (pure)": lambda: caches["python"].get_many(*keys),
            "redis-py+hiredis": lambda: [loads(v) for v in r.mget(full_keys)],
        }, 1, rounds, seconds)
        results.append(("get_many(100)", res))

        # Same decorated hit, native codec (the default) against JSON.
        native = Cache("127.0.0.1", port, namespace="bench:") if not args.unix else \
            Cache(redis_options={"unix_socket_path": sock}, namespace="bench:")

        big = [dict(VALUE, id=i, name="user %d" % i) for i in range(100)]  # ~10 kB JSON

        def decorated_pair(cache_native, cache_json, value, name):
            @cache_native.cache(key_prefix="bench.native." + name)
            def n(user_id: int) -> object:
                return value

            @cache_json.cache(key_prefix="bench.json." + name)
            def j(user_id: int) -> object:
                return value
            n(1), j(1)
            return n, j

        codec_rows = []
        for label, value in (("~100 B value", VALUE), ("~10 kB value", big)):
            n, j = decorated_pair(native, caches["c"], value, label[1:4])
            codec_rows.append((label, measure({"native": lambda: n(1), "json": lambda: j(1)},
                                              1, rounds, seconds)))

    print("pyredcache %s bench: Python %s, redis-py %s (%s), %s, %d-byte JSON value"
          % (pyredcache.__version__, sys.version.split()[0],
             redis_py.__version__, parser, "unix socket" if args.unix else "TCP loopback",
             len(json.dumps(VALUE))))
    print("median of %d rounds; ratio = redis-py time / pyredcache time (>1: pyredcache faster)"
          % rounds)
    print()
    header = "| operation | pyredcache (C) µs | pyredcache (pure) µs | redis-py+hiredis µs | ratio C | ratio pure |"
    print(header)
    print("|" + "---|" * 6)
    for name, res in results:
        c, p, peer = res["pyredcache (C)"], res["pyredcache (pure)"], res["redis-py+hiredis"]
        print("| %s | %.2f | %.2f | %.2f | %.2fx | %.2fx |" % (name, c, p, peer, peer / c, peer / p))
    print()
    print("decorated hit, C core, by serializer (ratio = JSON time / native time)")
    print("| value | native µs | JSONSerializer µs | ratio |")
    print("|---|---|---|---|")
    for label, res in codec_rows:
        print("| %s | %.2f | %.2f | %.2fx |" % (label, res["native"], res["json"],
                                               res["json"] / res["native"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
