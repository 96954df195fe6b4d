"""Redis containers: pyredcache (C core, pure twin) against pottery, same run.

    python bench/containers.py            # TCP loopback
    python bench/containers.py --quick    # fewer rounds, for a smoke test

One private redis-server is started for the run (free loopback port and a
unix socket in a temp dir, no persistence); nothing touches a server the
machine may run on 6379.  pottery talks to it through redis-py (with the
hiredis parser), pyredcache through its own Client; every contender uses
its own key, with the same value, on the same server, over TCP (pottery
cannot use a unix socket: it reads ``host`` from its client's connection
settings).

Every figure is the median over several rounds of the time per operation,
the contenders interleaved round by round so that machine noise hits them
alike.  ``ratio`` is pottery's time divided by pyredcache's (C core): above
1 means pyredcache is faster.

pyredcache runs twice: with its default busy-poll (a wait for a reply
spins up to 50 microseconds before it sleeps; see ``Client``) and with
``busy_poll=0``, where it sleeps at once as redis-py does.  The last row,
a bare PING, is the round trip every client pays: without busy-poll it
bounds what any client can gain on one-command operations.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import warnings

import redis as redis_py
from common import bench_options, measure, private_redis

import pottery
from pyredcache import _compat
from pyredcache import Client
from pyredcache.containers import RedisDict, RedisList, RedisSet

VALUE = {"name": "tofu", "tags": ["vegan", "protein"], "score": 4.5, "stock": 12}


def main() -> int:
    # many short rounds: load from other processes, which comes and goes,
    # then hits every contender alike
    args, rounds, seconds = bench_options(__doc__, rounds=15, seconds=0.12)
    import hiredis  # noqa: F401  - redis-py must parse with hiredis here

    # pottery warns on O(n) work (a middle index of a list, say); so do we
    warnings.simplefilter("ignore")

    with private_redis() as (port, _sock):
        where = {"host": "127.0.0.1", "port": port}
        r = redis_py.Redis(**where)
        clients = {}
        for side, impl, options in (("C", _compat.c_core, {}),
                                    ("C, busy_poll=0", _compat.c_core, {"busy_poll": 0}),
                                    ("pure", _compat.py_core, {})):
            _compat.core = impl
            clients[side] = Client(**where, **options)
        _compat.core = _compat.c_core

        sides = ("C", "C, busy_poll=0", "pure", "pottery")

        def make(cls, theirs, name):
            made = {side: cls(redis=client, key="%s:%s" % (side, name))
                    for side, client in clients.items()}
            made["pottery"] = theirs(redis=r, key="theirs:" + name)
            return made

        dicts = make(RedisDict, pottery.RedisDict, "d")
        lists = make(RedisList, pottery.RedisList, "l")
        sets = make(RedisSet, pottery.RedisSet, "s")
        indexed = make(RedisList, pottery.RedisList, "i")
        for side in sides:
            dicts[side]["tofu"] = VALUE
            sets[side].add("tofu")
            indexed[side].extend([dict(VALUE, stock=i) for i in range(100)])
            assert dicts[side]["tofu"] == VALUE and indexed[side][50]["stock"] == 50
        assert r.hgetall("C:d") == r.hgetall("theirs:d")  # same bytes stored

        def trim() -> None:  # keep the appended lists from growing without end
            for side in sides:
                r.ltrim(lists[side].key, -1000, -1)

        rows = []

        def row(name: str, make, ops: int = 1) -> None:
            res = measure({side: make(side) for side in sides}, ops, rounds, seconds)
            rows.append((name, res))
            trim()

        row("RedisDict get", lambda s: (lambda d=dicts[s]: d["tofu"]))
        row("RedisDict set", lambda s: (lambda d=dicts[s]: d.__setitem__("tofu", VALUE)))
        row("RedisList append", lambda s: (lambda lst=lists[s]: lst.append(VALUE)))
        row("RedisList index [50] of 100", lambda s: (lambda lst=indexed[s]: lst[50]))
        row("RedisSet add", lambda s: (lambda st=sets[s]: st.add("tofu")))
        row("RedisSet membership", lambda s: (lambda st=sets[s]: "tofu" in st))
        # a few more, for the picture (not part of the target)
        batch = {"k%d" % i: VALUE for i in range(100)}
        row("RedisDict update(100 items)", lambda s: (lambda d=dicts[s]: d.update(batch)))
        row("RedisList slice [10:20]", lambda s: (lambda lst=indexed[s]: lst[10:20]))
        row("RedisList insert(50, x)",
            lambda s: (lambda lst=indexed[s]: (lst.insert(50, VALUE), lst.pop())))
        ping = measure(dict({side: client.ping for side, client in clients.items()},
                            pottery=r.ping), 1, rounds, seconds)

    parser = "hiredis parser" if redis_py.utils.HIREDIS_AVAILABLE else "pure-Python parser"
    print("containers bench: Python %s, pottery %s, redis-py %s (%s), %s, %d-byte JSON value"
          % (sys.version.split()[0], importlib.metadata.version("pottery"),
             redis_py.__version__, parser, "TCP loopback",
             len(json.dumps(VALUE))))
    print("median of %d rounds; ratio = pottery time / pyredcache C time "
          "(>1: pyredcache faster)" % rounds)
    print()
    print("| operation | pyredcache C ops/s | C, busy_poll=0 ops/s | pure ops/s "
          "| pottery ops/s | ratio C/pottery | ratio C, busy_poll=0/pottery |")
    print("|---|---|---|---|---|---|---|")
    for name, res in rows + [("(bare PING: client + round trip)", ping)]:
        print("| %s | %s | %s | %s | %s | %.2fx | %.2fx |" % (
            name, *("{:,.0f}".format(1e6 / res[side]) for side in sides),
            res["pottery"] / res["C"], res["pottery"] / res["C, busy_poll=0"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
