"""rc's quick start, on pyredcache.

Run it with ``python examples/quickstart.py``.  It uses the Redis at
``$REDIS_URL`` when that is set (its keys live under the namespace
``pyredcache-example:`` and are deleted at the end), and otherwise a private
``redis-server`` started for the run.
"""

from __future__ import annotations

import os
import sys

import pyredcache
from pyredcache import Cache, NextId, RedisDict, RegionCache, Redlock
from pyredcache.server import EmbeddedRedis

loads = []


def load_from_database(name: str, offset: int) -> dict:
    """Stands in for a slow query; counts how often it really runs."""
    loads.append((name, offset))
    return {"name": name, "offset": offset, "rows": list(range(offset, offset + 3))}


def quickstart(url: str) -> None:
    cache = Cache.from_url(url, namespace="pyredcache-example:")

    # A simple example.
    assert cache.set("key", "value")
    assert cache.get("key") == "value"
    assert cache.get("foo") is None
    assert cache.set("list", [1])
    assert cache.get("list") == [1]

    # The cache decorator.
    @cache.cache()
    def load(name, offset):
        return load_from_database(name, offset)

    rv = load("name", offset=10)
    assert rv == {"name": "name", "offset": 10, "rows": [10, 11, 12]}
    assert load("name", 10) == rv  # the same call, spelled differently: a hit
    assert len(loads) == 1

    # Batch fetch.
    assert cache.get_many("key", "foo") == ["value", None]

    # Batch fetch for a decorated function: calls return promises, and
    # every key is fetched in one round trip when the block ends.
    @cache.cache()
    def cached_func(param):
        return param

    results = []
    with cache.batch_mode():
        for i in range(10):
            results.append(cached_func(i))
    for i, promise in enumerate(results):
        assert promise.value == i

    # Cache invalidation.
    assert cache.delete("key")
    assert cache.get("key") is None
    assert cache.invalidate(load, "name", offset=10)
    assert load("name", offset=10) == rv
    assert len(loads) == 2  # recomputed after invalidate

    # One computation per miss, whichever process misses first.
    @cache.cache(expire=300, lock=True)
    def front_page():
        return "rendered once"

    assert front_page() == front_page() == "rendered once"

    # A lock, ids and a dict that live in Redis (pottery's names).  Their
    # keys are not namespaced by the cache: prefix them by hand.
    prefix = "pyredcache-example:"
    raj = RedisDict(redis=cache, key=prefix + "raj")
    raj["hobby"] = "music"
    assert raj["hobby"] == "music" and len(raj) == 1
    printer = Redlock(key=prefix + "printer", masters=[cache], fencing=True)
    with printer:  # fencing=True: a token per acquisition (its counter key stays)
        assert printer.locked() > 0 and printer.fencing_token >= 1
    ids = NextId(key=prefix + "ids", masters=[cache])
    first = next(ids)
    assert next(ids) == first + 1

    # Cache regions (region_cache's RegionCache): nested, and invalidated
    # with all their sub-regions at once, for every process.
    regions = RegionCache(cache=cache)
    users = regions.region("users", timeout=300)
    users["42"] = {"name": "Ada"}
    regions.region("users.admins")["7"] = {"name": "Grace"}
    assert users["42"] == {"name": "Ada"} and "7" in regions.region("users.admins")
    users.invalidate()  # users and users.admins, in one round trip
    assert "42" not in users and len(regions.region("users.admins")) == 0

    raj.clear()
    ids.reset()
    regions.clear()
    cache.client.delete("redlock:%sprinter:fence" % prefix)
    cache.invalidate(front_page)
    cache.delete_many("list", "foo")
    cache.invalidate(load, "name", offset=10)
    for i in range(10):
        cache.invalidate(cached_func, i)
    print("quick start: all checks passed on the %s core" % pyredcache.implementation)


def main() -> int:
    url = os.environ.get("REDIS_URL")
    if url:
        quickstart(url)
    else:
        with EmbeddedRedis() as server:
            quickstart(server.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
