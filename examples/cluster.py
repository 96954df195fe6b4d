"""A cache spread over three Redis servers (client-side sharding).

Run it with ``python examples/cluster.py``.  It starts three private
``redis-server`` processes (unix sockets in temp dirs, no persistence),
spreads 1,000 cached results over them with rc's ``CacheCluster``, shows
where the keys landed, and fetches them all back in one parallel round
trip, first with ``get_many`` and then through ``batch_mode()``.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack

import pyredcache
from pyredcache import CacheCluster, RedisConsistentHashRouter
from pyredcache.server import EmbeddedRedis

computed = []


def main() -> int:
    with ExitStack() as stack:
        servers = [stack.enter_context(EmbeddedRedis()) for _ in range(3)]
        cache = CacheCluster(
            {"cache%02d" % i: {"unix_socket_path": s.unix_socket_path}
             for i, s in enumerate(servers, 1)},
            router_cls=RedisConsistentHashRouter,
            namespace="example:",
        )

        @cache.cache()
        def square(n: int) -> int:
            computed.append(n)
            return n * n

        with cache.batch_mode():  # 1,000 misses: computed, written back per server
            promises = [square(n) for n in range(1000)]
        assert [p.value for p in promises] == [n * n for n in range(1000)]
        assert len(computed) == 1000

        for name, client in cache.client.clients.items():
            print("%s holds %d keys" % (name, client.execute_command("DBSIZE")))

        start = time.perf_counter()
        with cache.batch_mode():  # 1,000 hits: one MGET per server, in parallel
            promises = [square(n) for n in range(1000)]
        elapsed = time.perf_counter() - start
        assert [p.value for p in promises] == [n * n for n in range(1000)]
        assert len(computed) == 1000  # nothing recomputed
        print("1,000 cached results from 3 servers in %.1f ms (%s core)"
              % (elapsed * 1000, pyredcache.implementation))

        cache.set_many({"a": 1, "b": 2, "c": 3})
        assert cache.get_many("c", "missing", "a", "b") == [3, None, 1, 2]
    print("cluster example: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
