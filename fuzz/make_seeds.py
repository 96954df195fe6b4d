"""Write a seed corpus for fuzz_loads: the encodings of a spread of values
(every type, every length form, nesting, canonical mode), one file each."""

from __future__ import annotations

import datetime
import decimal
import os
import sys
import uuid
import zoneinfo
from datetime import timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pyredcache._pure.codec import dumps  # noqa: E402

NY = zoneinfo.ZoneInfo("America/New_York")
VALUES = [
    None, True, False, 0, 127, 128, -32, -33, 255, 65535, 2**32, 2**63, 2**64 - 1, -(2**63),
    2**64, -(2**63) - 1, 10**40, 1.5, float("nan"), float("-inf"), "", "abc", "é" * 20,
    "x" * 40, "y" * 300, b"", b"\x00\xff", b"z" * 300, [], [1, [2, [3]]], list(range(20)),
    {}, {"a": 1, 2: b"b", (1, 2): None}, {str(i): i for i in range(20)}, (), (1, "a"),
    {1, 2}, frozenset({"x", (1,)}), set(range(20)),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
    datetime.datetime(2024, 1, 2, tzinfo=timezone.utc),
    datetime.datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=-5), "EST")),
    datetime.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NY),
    datetime.date(2024, 2, 29), datetime.time(1, 2, 3, 4), datetime.time(5, tzinfo=NY),
    decimal.Decimal("-1.50"), decimal.Decimal("sNaN"), uuid.UUID(int=2**127),
    [{"k": ({1}, frozenset({2}), (3,))}, [datetime.date(2020, 1, 1), decimal.Decimal("1E+9")]],
]


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    for value in VALUES:
        for canonical in (False, True):
            with open(os.path.join(out_dir, "seed-%03d" % n), "wb") as f:
                f.write(dumps(value, canonical=canonical))
            n += 1
    print("wrote %d seeds to %s" % (n, out_dir))


if __name__ == "__main__":
    main(sys.argv[1])
