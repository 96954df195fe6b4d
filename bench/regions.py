"""Cache regions: a region hit and a region write, against redis-py doing the
same operations the way region_cache does them, same run, same server.

    python bench/regions.py [--quick]

* region hit: ``region[key]`` (pyredcache: HGET, native codec) against
  ``pickle.loads(r.hget(region, key))`` (region_cache's default serializer
  is pickle);
* region write: ``region[key] = value`` (pyredcache: HSET plus the TTL reset
  and the parent links, one round trip) against redis-py's HSET + EXPIRE,
  sent as one pipeline (the fastest way redis-py does the two; region_cache
  sends them as two commands, which is slower still);
* the cost of hit/miss statistics on a hit, both faces, both cores: a
  region-decorated call (retools' ``cache_region``) and ``region[key]``
  (``RegionCache(statistics=True)``), with statistics on and off.  On, a
  hit sends the lookup and its INCR in one pipeline: no extra round
  trip, one more command for the server.

ratio = peer time / pyredcache time (>1: pyredcache faster); for the
statistics rows, time with / time without, minus one: the median over
paired runs, and the ratio of the fastest runs (see common.paired_cost).
"""

from __future__ import annotations

import pickle
import sys

import redis as redis_py
from common import bench_options, measure, paired_cost, private_redis

import pyredcache
from pyredcache import Cache, RegionCache, RegionRegistry, _compat

VALUE = {"id": 12345, "name": "pyredcache", "tags": ["redis", "cache", "c"], "score": 0.875,
         "ok": True}


def main() -> int:
    _, rounds, seconds = bench_options(__doc__)
    import hiredis  # noqa: F401  - redis-py must parse with hiredis here

    rows = []
    with private_redis() as (port, _sock):
        r = redis_py.Redis("127.0.0.1", port)
        for impl in ("c", "python"):
            _compat.core = _compat.c_core if impl == "c" else _compat.py_core
            regions = RegionCache(cache=Cache("127.0.0.1", port, namespace="bench-%s:" % impl))
            users = regions.region("users", timeout=3600)
            users["42"] = VALUE
            assert users["42"] == VALUE
            # region_cache's way, with redis-py: its key is the region's name
            peer_hash = "region-cache-bench:users"
            r.hset(peer_hash, "42", pickle.dumps(VALUE))

            def peer_hit() -> object:
                return pickle.loads(r.hget(peer_hash, "42"))

            def peer_write() -> object:
                pipe = r.pipeline(transaction=False)
                pipe.hset(peer_hash, "43", pickle.dumps(VALUE))
                pipe.expire(peer_hash, 3600)
                return pipe.execute()

            def ours_write() -> None:
                users["43"] = VALUE

            res = measure({"ours": lambda: users["42"], "peer": peer_hit}, 1, rounds, seconds)
            rows.append(("region hit (%s)" % impl, res))
            res = measure({"ours": ours_write, "peer": peer_write}, 1, rounds, seconds)
            rows.append(("region write (%s)" % impl, res))

        stats_rows = []
        for impl in ("c", "python"):
            _compat.core = _compat.c_core if impl == "c" else _compat.py_core
            variants = {}
            for on in (True, False):
                ns = "bench-st-%s-%s:" % (impl, on)
                registry = RegionRegistry(cache=Cache("127.0.0.1", port, namespace=ns),
                                          statistics=on)
                registry.add_region("short_term", 3600)

                @registry.cache_region("short_term")
                def load(user_id: int) -> dict:
                    return VALUE

                load(1)
                region = RegionCache(cache=Cache("127.0.0.1", port, namespace=ns),
                                     statistics=on).region("users", timeout=3600)
                region["42"] = VALUE
                variants[on] = (load, region)
            (load_on, region_on), (load_off, region_off) = variants[True], variants[False]
            stats_rows.append(("retools' face: decorated hit (%s)" % impl, paired_cost(
                lambda: load_on(1), lambda: load_off(1), 5 * rounds, seconds / 4)))
            stats_rows.append(("region_cache's face: region[key] hit (%s)" % impl, paired_cost(
                lambda: region_on["42"], lambda: region_off["42"], 5 * rounds, seconds / 4)))
        _compat.core = _compat.c_core

    print("pyredcache %s regions bench: Python %s, redis-py %s (hiredis parser), TCP "
          "loopback, median of %d rounds" % (pyredcache.__version__, sys.version.split()[0],
                                            redis_py.__version__, rounds))
    print()
    print("| operation | pyredcache µs | redis-py (region_cache's way) µs | ratio |")
    print("|---|---|---|---|")
    for name, res in rows:
        print("| %s | %.2f | %.2f | %.2fx |" % (name, res["ours"], res["peer"],
                                                res["peer"] / res["ours"]))
    print()
    print("| hit | statistics on µs | statistics off µs | cost: median of paired ratios "
          "| cost: best slices |")
    print("|---|---|---|---|---|")
    for name, (on, off, cost, best) in stats_rows:
        print("| %s | %.2f | %.2f | %+.1f%% | %+.1f%% |" % (name, on, off, cost * 100,
                                                          best * 100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
