"""Leak checks shared by the test modules (CRAFT #19).

A test gives the source of a script that defines ``once()`` (the calls to
check) and ``refs()`` (refcounts of the objects they use); this module
appends the measurement, runs it in a fresh interpreter and asserts that
10,000 more calls after a warm-up leave Python memory, the count of
allocated blocks and the refcounts where they were.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

MEASURE = textwrap.dedent(
    """
    import gc, sys, tracemalloc
    for _ in range(1000):
        once()
    # tracemalloc slows pure-Python code some thirtyfold, so the twin is
    # measured by its count of allocated memory blocks only.
    trace = sys.argv[1] == "c"
    gc.collect()
    if trace:
        tracemalloc.start()
    before_refs = refs()
    before_blocks = sys.getallocatedblocks()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(10000):
        once()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    after_blocks = sys.getallocatedblocks()
    after_refs = refs()
    print(after - before, after_blocks - before_blocks, before_refs == after_refs,
          before_refs, after_refs)
    """
)


def assert_no_leaks(script: str, impl_name: str) -> None:
    """Run script + the measurement for impl_name ("c" or "python")."""
    out = subprocess.run(
        [sys.executable, "-c", script + MEASURE, impl_name],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    growth, blocks, refs_equal, *_ = out.stdout.split(" ", 3)
    assert int(growth) < 64 * 1024, "Python memory grew by %s bytes" % growth
    assert int(blocks) < 1000, "%s more memory blocks are allocated" % blocks
    assert refs_equal == "True", out.stdout
