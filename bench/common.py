"""What the benchmarks share: private redis-servers and the timing loop."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Iterator

import redis as redis_py

from pyredcache import _compat


@contextlib.contextmanager
def private_redis() -> Iterator[tuple[int, str]]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("bench: redis-server is not installed (make deps installs it)")
    tmp = tempfile.mkdtemp(prefix="pyredcache-bench-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sock = os.path.join(tmp, "redis.sock")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", sock,
         "--save", "", "--appendonly", "no", "--dir", tmp, "--logfile", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        r = redis_py.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                r.ping()
                break
            except redis_py.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit("bench: redis-server did not start")
                time.sleep(0.02)
        yield port, sock
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def per_op_us(fn: Callable[[], object], ops_per_call: int, seconds: float) -> float:
    """Microseconds per operation of fn, timed over about `seconds`."""
    n = 1
    while True:  # calibrate
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > seconds / 5:
            break
        n *= 2
    loops = max(1, int(n * seconds / dt))
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / (loops * ops_per_call) * 1e6


def measure(contenders: dict[str, Callable[[], object]], ops_per_call: int, rounds: int,
            seconds: float) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm up
        for _ in range(200):
            fn()
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(per_op_us(fn, ops_per_call, seconds))
    return {name: statistics.median(v) for name, v in samples.items()}


def paired_cost(with_: Callable[[], object], without: Callable[[], object], rounds: int,
                seconds: float) -> tuple[float, float, float, float]:
    """What ``with_`` costs beyond ``without`` (two variants of one
    operation): ``(µs with, µs without, median paired cost, best-slice
    cost)``, costs as fractions (0.05: 5% slower).

    The two are timed back to back, in alternating order, ``rounds``
    times.  The median paired cost is the median of the per-pair ratios,
    minus one: drift of the machine hits both halves of a pair alike.  The
    best-slice cost compares the fastest slice of each (as ``timeit``
    advises: slower slices are other processes' interference, here a
    virtual machine's stalls, which a round trip of tens of µs magnifies).
    The µs are the medians."""
    for fn in (with_, without):  # warm up
        for _ in range(200):
            fn()
    ratios, on, off = [], [], []
    for i in range(rounds):
        if i % 2:
            b = per_op_us(without, 1, seconds)
            a = per_op_us(with_, 1, seconds)
        else:
            a = per_op_us(with_, 1, seconds)
            b = per_op_us(without, 1, seconds)
        on.append(a)
        off.append(b)
        ratios.append(a / b)
    return (statistics.median(on), statistics.median(off), statistics.median(ratios) - 1,
            min(on) / min(off) - 1)


def bench_options(doc: str | None, rounds: int = 7, seconds: float = 0.4,
                  unix: bool = False) -> tuple[argparse.Namespace, int, float]:
    """Parse a bench's command line (``--quick``, and ``--unix`` when
    ``unix``); return the arguments, the number of rounds and the seconds
    per measurement (3 and 0.05 with ``--quick``).  Exits when the C
    extension is not built."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if unix:
        ap.add_argument("--unix", action="store_true", help="talk over the unix socket")
    ap.add_argument("--quick", action="store_true", help="short run (smoke test)")
    args = ap.parse_args()
    if args.quick:
        rounds, seconds = 3, 0.05
    if _compat.c_core is None:
        sys.exit("bench: the C extension is not built (make build)")
    return args, rounds, seconds
