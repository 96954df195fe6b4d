"""Redlock and NextId over five masters: pyredcache against pottery, same run.

    make bench                      # runs this after bench/cluster.py
    python bench/locks.py --quick   # fewer rounds, for a smoke test

Five private redis-servers are started (free loopback ports, temp dirs, no
persistence) and stopped at the end; they are the masters of every
contender.  In one run, on the same servers:

* ``NextId``: ids per second from one object in one thread (two round trips
  over the five masters per id: a read, then a "set if greater" script);
* ``Redlock``: acquire + release cycles per second of an uncontended lock;

for pyredcache on its C core, pyredcache on its pure-Python twin, and
pottery (``pottery.NextID``/``pottery.Redlock`` over ``redis.Redis``
clients of the same servers, redis-py parsing with hiredis).  Before any
timing, each contender's results are checked on the servers themselves.

Every figure is a median over interleaved rounds (see common.py).  A ratio
is our ops/s divided by pottery's: above 1 means pyredcache is faster.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import ExitStack
from importlib.metadata import version
from typing import Any, Callable

import redis as redis_py
from common import bench_options, measure, private_redis

import pyredcache
from pyredcache import Client, _compat
from pyredcache.nextid import NextId

TARGET = 3.0  # C core against pottery, ops/s ratio


def build(impl: str, factory: Callable[[], Any]) -> Any:
    """Call factory with the core `impl` ("c" or "python") selected:
    objects read the core when they are built."""
    _compat.core = _compat.c_core if impl == "c" else _compat.py_core
    try:
        return factory()
    finally:
        _compat.core = _compat.c_core


def our_clients(ports: list[int]) -> list[Client]:
    return [Client("127.0.0.1", p) for p in ports]


def stored(servers: list[redis_py.Redis], key: str) -> list:
    return [r.get(key) for r in servers]


def holders(servers: list[redis_py.Redis], key: str) -> int:
    """How many servers hold key."""
    return sum(r.exists(key) for r in servers)


def nextid_contenders(ports: list[int], servers: list[redis_py.Redis]) -> dict:
    import pottery

    ours = {impl: build(impl, lambda impl=impl: NextId(key="bench-" + impl,
                                                       masters=our_clients(ports)))
            for impl in ("c", "python")}
    theirs = pottery.NextID(key="bench-pottery", masters=set(servers))
    for name, ids in (("c", ours["c"]), ("python", ours["python"]), ("pottery", theirs)):
        got = [next(ids) for _ in range(3)]
        assert got == [1, 2, 3], (name, got)
        # a quorum holds the last id (pottery may stop at three or four)
        assert stored(servers, "nextid:bench-" + name).count(b"3") >= 3, name
    # one sequence shared by both libraries (a migration): ids keep rising
    shared_ours = build("c", lambda: NextId(key="shared", masters=our_clients(ports)))
    shared_theirs = pottery.NextID(key="shared", masters=set(servers))
    got = [next(shared_ours), next(shared_theirs), next(shared_ours), next(shared_theirs)]
    assert got == [1, 2, 3, 4], got
    return {
        "C": lambda: next(ours["c"]),
        "pure": lambda: next(ours["python"]),
        "pottery": lambda: next(theirs),
    }


def redlock_contenders(ports: list[int], servers: list[redis_py.Redis]) -> dict:
    import pottery
    from pyredcache.lock import Redlock

    def make(name: str) -> Any:
        key = "bench-lock-" + name
        if name == "pottery":
            return pottery.Redlock(key=key, masters=set(servers))
        impl = "c" if name == "C" else "python"
        return build(impl, lambda: Redlock(key=key, masters=our_clients(ports)))

    locks = {name: make(name) for name in ("C", "pure", "pottery")}
    for name, lock in locks.items():
        key = "redlock:bench-lock-" + name  # both libraries keep the lock there
        assert lock.acquire(), name
        assert holders(servers, key) >= 3, (name, "not held on a quorum of the 5 masters")
        rival = make(name)  # another holder of the same key
        assert not rival.acquire(blocking=False), (name, "two holders at once")
        lock.release()
        # pottery returns once a quorum has released (its other releases
        # finish in background threads); ours releases on every master
        left = 5 - 3 if name == "pottery" else 0
        assert holders(servers, key) <= left, (name, "still held after release")

    def cycle(lock: Any) -> Callable[[], None]:
        def run() -> None:
            if not lock.acquire():
                raise AssertionError("an uncontended lock was not acquired")
            lock.release()
        return run

    return {name: cycle(lock) for name, lock in locks.items()}


def main() -> int:
    args, rounds, seconds = bench_options(__doc__)
    try:
        import pottery  # noqa: F401
    except ImportError:
        sys.exit("bench: pottery is not installed (pip install -e '.[bench]')")
    import hiredis  # noqa: F401  - redis-py must parse with hiredis here

    rows: list[tuple[str, dict | str]] = []
    with ExitStack() as stack:
        ports = [stack.enter_context(private_redis())[0] for _ in range(5)]
        servers = [redis_py.Redis("127.0.0.1", p) for p in ports]

        rows.append(("NextId: next id", measure(nextid_contenders(ports, servers),
                                                1, rounds, seconds)))
        try:
            importlib.import_module("pyredcache.lock")
        except ImportError as exc:
            rows.append(("Redlock: acquire + release", "not measured: %s" % exc))
        else:
            rows.append(("Redlock: acquire + release",
                         measure(redlock_contenders(ports, servers), 1, rounds, seconds)))

    print("pyredcache %s locks bench: Python %s, pottery %s, redis-py %s (hiredis %s), "
          "5 redis-servers on TCP loopback, one thread, median of %d rounds"
          % (pyredcache.__version__, sys.version.split()[0], version("pottery"),
             redis_py.__version__, hiredis.__version__, rounds))
    print()
    print("| operation | pyredcache C ops/s | pure ops/s | pottery ops/s "
          "| ratio C/pottery | ratio pure/pottery |")
    print("|---|---|---|---|---|---|")
    verdicts = []
    for label, res in rows:
        if isinstance(res, str):
            print("| %s | %s | | | | |" % (label, res))
            verdicts.append("%s: %s" % (label, res))
            continue
        ops = {name: 1e6 / us for name, us in res.items()}
        c_ratio = ops["C"] / ops["pottery"]
        print("| %s | %.0f | %.0f | %.0f | %.2fx | %.2fx |"
              % (label, ops["C"], ops["pure"], ops["pottery"], c_ratio,
                 ops["pure"] / ops["pottery"]))
        verdicts.append("%s: C/pottery %.2fx, target %.0fx %s"
                        % (label, c_ratio, TARGET, "met" if c_ratio >= TARGET else "NOT met"))
    print()
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
