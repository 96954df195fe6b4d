"""The reply parser on its own: ``_core.Reader`` (hiredis' reader with the
callbacks the C Connection uses, csrc/reply.c) and its twin
``_pure.Reader``, which both Connections' parsing goes through.

* Differential (hypothesis, CRAFT #24): the same bytes, fed whole, one byte
  at a time and split at every offset, give both readers the same replies
  (an error reply compared by type and message) and the same exception
  type and message; valid replies also give the value they encode.
* Hostile bytes, as hiredis 0.14 judges them: what is refused, with which
  message, and what is waited for; each checked on both cores.
* A hostile server makes the Connection and multi_pipeline of both cores
  raise ProtocolError at once (a socket_timeout turns a regression into a
  failure instead of a hang).
* reply.c ``attach``: an element that cannot be appended to its array is
  no longer handed to hiredis as its children's parent after being freed.
* PROTO_MAX_BULK_LEN: an argument over Redis' limit is refused before
  anything is sent.
"""

from __future__ import annotations

import mmap
import os
import re
import subprocess
import sys
import textwrap
from typing import Any, Iterator

import pytest
from fakeserver import FakeServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyredcache import _compat
from pyredcache._pure import connection as pure_connection
from pyredcache._pure.connection import encode_arg
from pyredcache.exceptions import ProtocolError, ResponseError, TimeoutError

HYPOTHESIS = settings(
    max_examples=300, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)

NESTING = "No support for nested multi bulk replies with depth > 7"


# -- helpers ----------------------------------------------------------------------


def norm(value: Any) -> Any:
    """A reply in a form that compares exactly: types kept (bytes is not
    bytearray, int is not bool), ResponseError by type and message."""
    if isinstance(value, ResponseError):
        return ("ResponseError", type(value), value.args)
    if isinstance(value, list):
        return [norm(v) for v in value]
    return (type(value), value)


def outcome(module: Any, chunks: list[bytes]) -> list:
    """Feed chunks in turn, taking every whole reply after each one: the
    list of replies, ended by ("error", type, message) if gets() raised.
    A reader that raised must stay failed: later data is dropped and the
    same error is raised again."""
    reader = module.Reader()
    out: list = []
    for chunk in chunks:
        reader.feed(chunk)
        while True:
            try:
                value = reader.gets()
            except ProtocolError as exc:
                out.append(("error", type(exc), str(exc)))
                for _ in range(2):
                    reader.feed(b"+OK\r\n")
                    with pytest.raises(ProtocolError) as again:
                        reader.gets()
                    assert type(again.value) is type(exc)
                    assert str(again.value) == str(exc)
                return out
            if value is False:
                break
            out.append(norm(value))
    return out


def splits(payload: bytes) -> Iterator[list[bytes]]:
    """payload whole, one byte at a time, and cut in two at every offset."""
    yield [payload]
    yield [payload[i:i + 1] for i in range(len(payload))]
    for i in range(1, len(payload)):
        yield [payload[:i], payload[i:]]


def assert_same(both: tuple, payload: bytes) -> list:
    """Both readers give the same outcome for payload, however it is split;
    returns it."""
    c, py = both
    whole = outcome(c, [payload])
    for chunks in splits(payload):
        assert outcome(c, chunks) == whole, chunks
        assert outcome(py, chunks) == whole, chunks
    return whole


# -- strategies: RESP2 replies with the value they encode -------------------------

LONG_LONG_EDGES = [0, 1, -1, 2**31 - 1, 2**31, -2**31, 2**32, 2**63 - 1, -2**63, -2**63 + 1]
integers = st.one_of(st.integers(-2**63, 2**63 - 1), st.sampled_from(LONG_LONG_EDGES))
line_text = st.binary(max_size=24).filter(lambda b: b"\r\n" not in b)


def _array(items: list) -> tuple[bytes, Any]:
    return (b"*%d\r\n" % len(items) + b"".join(p for p, _ in items),
            [v for _, v in items])


leaves = st.one_of(
    st.binary(max_size=40).map(lambda b: (b"$%d\r\n%s\r\n" % (len(b), b), norm(b))),
    st.sampled_from([(b"$-1\r\n", norm(None)), (b"*-1\r\n", norm(None)),
                     (b"$0\r\n\r\n", norm(b"")), (b"*0\r\n", [])]),
    integers.map(lambda i: (b":%d\r\n" % i, norm(i))),
    line_text.map(lambda s: (b"+" + s + b"\r\n", norm(s))),
    line_text.map(lambda s: (b"-" + s + b"\r\n",
                             norm(ResponseError(s.decode("utf-8", "replace"))))),
)
replies = st.recursive(leaves, lambda kids: st.lists(kids, max_size=5).map(_array),
                       max_leaves=24)


def list_depth(value: Any) -> int:
    """Levels of lists in a normalized value (a top-level array is 1)."""
    if isinstance(value, list):
        return 1 + max((list_depth(v) for v in value), default=0)
    return 0


# Pieces that make RESP-like garbage: type bytes, CRLF halves, lengths at
# and past every limit, leading zeros, signs, spaces, binary.
PIECES = [b"*", b"$", b":", b"+", b"-", b"\r\n", b"\r", b"\n", b"0", b"1", b"2", b"-1", b"-2",
          b"01", b"-0", b"+1", b" ", b"abc", b"\x00", b"\xff", b"?", b"%", b"_",
          b"2147483647", b"2147483648", b"4294967296", b"9223372036854775807",
          b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809",
          b"18446744073709551616", b"18446744073709551617", b"*1\r\n" * 8]
garbage = st.one_of(
    st.binary(max_size=64),
    st.lists(st.sampled_from(PIECES), max_size=16).map(b"".join),
)


# -- differential: C reader == twin reader ------------------------------------------


@HYPOTHESIS
@given(st.lists(replies, min_size=1, max_size=4))
def test_valid_replies_same_on_both_and_right(both, stream):
    payload = b"".join(p for p, _ in stream)
    got = assert_same(both, payload)
    expected = []
    for _, value in stream:
        if list_depth(value) > 8:  # hiredis refuses a 9th level of arrays
            expected.append(("error", ProtocolError, NESTING))
            break
        expected.append(value)
    assert got == expected


@HYPOTHESIS
@given(garbage)
def test_garbage_same_on_both(both, payload):
    assert_same(both, payload)


@HYPOTHESIS
@given(replies, garbage)
def test_reply_then_garbage_same_on_both(both, reply, tail):
    assert_same(both, reply[0] + tail)


@HYPOTHESIS
@given(st.data())
def test_mutated_replies_same_on_both(both, data):
    """A valid reply with one byte changed, inserted or deleted: the edge
    cases of every length and type check."""
    payload = bytearray(data.draw(replies)[0])
    i = data.draw(st.integers(0, len(payload) - 1))
    how = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    byte = data.draw(st.sampled_from(b"*$:+-\r\n0123456789 -x\x00"))
    if how == "replace":
        payload[i] = byte
    elif how == "insert":
        payload.insert(i, byte)
    else:
        del payload[i]
    assert_same(both, bytes(payload))


# -- hostile bytes, as hiredis 0.14 judges them -----------------------------------------

BIG = 20000
HOSTILE = [
    # payload, then what gets() gives once it was all fed: a reply, False
    # (waiting for more bytes) or the ProtocolError message.
    (b"?", 'Protocol error, got "?" as reply type byte'),
    (b"HTTP/1.1 400 Bad Request\r\n", 'Protocol error, got "H" as reply type byte'),
    (b"x" * BIG, 'Protocol error, got "x" as reply type byte'),  # no CRLF: refused at once
    (b"\r\n", 'Protocol error, got "\\r" as reply type byte'),
    (b"\n", 'Protocol error, got "\\n" as reply type byte'),
    (b"\\", 'Protocol error, got "\\\\" as reply type byte'),
    (b'"', 'Protocol error, got "\\"" as reply type byte'),
    (b"\x00", 'Protocol error, got "\\x00" as reply type byte'),
    (b"\xff", 'Protocol error, got "\\xff" as reply type byte'),
    (b"%1\r\n", 'Protocol error, got "%" as reply type byte'),  # RESP3: refused by 0.14
    (b"_\r\n", 'Protocol error, got "_" as reply type byte'),
    # bulk lengths: past 2^63 refused at once, in range waited for
    (b"$18446744073709551617\r\n", "Bad bulk string length"),  # 2^64 + 1
    (b"$18446744073709551616\r\n", "Bad bulk string length"),  # 2^64
    (b"$9223372036854775808\r\n", "Bad bulk string length"),  # 2^63
    (b"$9223372036854775807\r\n", False),  # 2^63 - 1
    (b"$4294967296\r\nabc", False),  # 2^32
    (b"$2147483648\r\nabc", False),  # 2^31
    (b"$-2\r\n", "Bulk string length out of range"),
    (b"$-1\r\n", None),
    (b"$01\r\nx\r\n", "Bad bulk string length"),
    (b"$-0\r\n", "Bad bulk string length"),
    (b"$\r\n", "Bad bulk string length"),
    (b"$" + b"9" * 100 + b"\r\n", "Bad bulk string length"),
    (b"$3\r\nabcXY", b"abc"),  # the two bytes after the body are skipped unread
    # array lengths: past INT_MAX refused
    (b"*2147483648\r\n", "Multi-bulk length out of range"),  # 2^31
    (b"*4294967296\r\n", "Multi-bulk length out of range"),  # 2^32
    (b"*9223372036854775808\r\n", "Bad multi-bulk length"),  # 2^63
    (b"*18446744073709551617\r\n", "Bad multi-bulk length"),  # 2^64 + 1
    (b"*2147483647\r\n", False),  # allowed: waits for its elements, allocates nothing
    (b"*-2\r\n", "Multi-bulk length out of range"),
    (b"*+1\r\n:1\r\n", "Bad multi-bulk length"),
    # integers: a C long long, no leading zero, no sign but '-'
    (b":100000000000000000000000\r\n", "Bad integer value"),  # 10^23
    (b":9223372036854775808\r\n", "Bad integer value"),
    (b":-9223372036854775809\r\n", "Bad integer value"),
    (b":9223372036854775807\r\n", 2**63 - 1),
    (b":-9223372036854775808\r\n", -2**63),
    (b":" + b"1" * BIG + b"\r\n", "Bad integer value"),  # past Python's int() digit limit
    (b":-0\r\n", "Bad integer value"),
    (b":01\r\n", "Bad integer value"),
    (b":+1\r\n", "Bad integer value"),
    (b": 1\r\n", "Bad integer value"),
    (b":1 \r\n", "Bad integer value"),
    (b":\r\n", "Bad integer value"),
    (b":0\r\n", 0),
    # nesting: hiredis has 9 read tasks, so 8 levels of arrays at most; the
    # 9th array is refused at its type byte, before its line (even nil)
    (b"*1\r\n" * 8 + b":1\r\n", [[[[[[[[1]]]]]]]]),
    (b"*1\r\n" * 8 + b"*", NESTING),
    (b"*1\r\n" * 8 + b"*-1\r\n", NESTING),
    (b"*1\r\n" * 8 + b"*0\r\n", NESTING),
    (b"*2\r\n" + b"*1\r\n" * 7 + b":1\r\n" + b"*1\r\n" * 7 + b"*", NESTING),
    # lines without CRLF: hiredis waits for ever (a socket_timeout bounds it)
    (b"+" + b"a" * BIG, False),
    (b":" + b"1" * BIG, False),
    (b"-ERR " + b"e" * BIG, False),
    (b"+OK\r", False),
]


def _expected(result: Any) -> list:
    if result is False:
        return []
    if isinstance(result, str):
        return [("error", ProtocolError, result)]
    return [norm(result)]


@pytest.mark.parametrize("payload, result", HOSTILE)
def test_hostile_bytes(impl, payload, result):
    expected = _expected(result)
    assert outcome(impl, [payload]) == expected
    step = 1 if len(payload) < 1000 else 997  # the C reader rescans per call
    assert outcome(impl, [payload[i:i + step] for i in range(0, len(payload), step)]) == expected


@pytest.mark.parametrize("payload, result", [h for h in HOSTILE if len(h[0]) < 1000])
def test_hostile_bytes_every_split_same_on_both(both, payload, result):
    assert assert_same(both, payload) == _expected(result)


def test_replies_after_a_waiting_bulk(impl):
    r = impl.Reader()
    r.feed(b"$5\r\nab")
    assert r.gets() is False
    r.feed(b"cde\r\n+OK\r\n$0\r\n")
    assert r.gets() == b"abcde"
    assert r.gets() == b"OK"
    assert r.gets() is False
    r.feed(b"\r\n")
    assert r.gets() == b""
    assert r.gets() is False


def test_error_reply_is_returned_not_raised(impl):
    r = impl.Reader()
    r.feed(b"-ERR bad \xff\r\n*2\r\n-WRONGTYPE x\r\n:1\r\n")
    err = r.gets()
    assert type(err) is ResponseError and str(err) == "ERR bad \ufffd"
    value = r.gets()
    assert type(value[0]) is ResponseError and str(value[0]) == "WRONGTYPE x"
    assert value[1] == 1


def test_feed_takes_bytes_likes_only(impl):
    r = impl.Reader()
    r.feed(bytearray(b"+a"))
    r.feed(memoryview(b"xb\r\n")[1:])
    r.feed(b"")
    assert r.gets() == b"ab"
    for bad in ("+OK\r\n", 1, None):
        with pytest.raises(TypeError):
            r.feed(bad)
    with pytest.raises(TypeError):
        impl.Reader(1)
    # a failed reader still refuses what is not bytes-like
    r.feed(b"?")
    with pytest.raises(ProtocolError):
        r.gets()
    with pytest.raises(TypeError):
        r.feed("+OK\r\n")


def test_big_array_fed_in_pieces(impl):
    n = 50000
    payload = b"*%d\r\n" % n + b"".join(b"$%d\r\n%d\r\n" % (len(b"%d" % i), i) for i in range(n))
    r = impl.Reader()
    for i in range(0, len(payload), 4096):
        assert r.gets() is False
        r.feed(payload[i:i + 4096])
    assert r.gets() == [b"%d" % i for i in range(n)]
    assert r.gets() is False


def test_twin_reader_keeps_its_place():
    """Linear time, shown without a clock: the CRLF search resumes where
    it stopped, and an array read in parts keeps the elements built so far
    (they are not parsed again when more bytes come)."""
    py = _compat.py_core
    r = py.Reader()
    r.feed(b"+" + b"a" * 999)
    assert r.gets() is False
    assert r._scan == 999  # the last byte: it may be the \r of a CRLF
    r.feed(b"\r")
    assert r.gets() is False
    r.feed(b"\n")
    assert r.gets() == b"a" * 999
    r.feed(b"*3\r\n:1\r\n$2\r\nab\r\n")
    assert r.gets() is False
    assert r._stack == [[[1, b"ab"], 1]]
    assert len(r._buf) == 0  # every byte parsed once, none kept to parse again
    r.feed(b"*1\r\n:3\r\n")
    assert r.gets() == [1, b"ab", [3]]


def test_twin_connection_parses_with_its_reader(monkeypatch, redis_server):
    py = _compat.py_core
    calls = []

    class Counting(py.Reader):
        __slots__ = ()

        def gets(self) -> Any:
            calls.append(1)
            return super().gets()

    monkeypatch.setattr(pure_connection, "Reader", Counting)
    c = py.Connection(redis_server.host, redis_server.port)
    assert c.execute_command("PING") == b"PONG"
    assert py.multi_pipeline([(c, [("PING",), ("PING",)])]) == [[b"PONG", b"PONG"]]
    assert len(calls) >= 3
    c.close()


def test_reader_is_exported(impl):
    assert "Reader" in dir(impl) and "PROTO_MAX_BULK_LEN" in dir(impl)
    if impl is _compat.py_core:
        assert "Reader" in impl.__all__ and "PROTO_MAX_BULK_LEN" in impl.__all__


def test_reader_no_leaks(impl):
    """Replies taken, readers failed and readers dropped half-way through
    an array free everything: Python objects (tracemalloc for C, the count
    of allocated blocks for the twin, which tracemalloc slows thirtyfold)
    and hiredis' malloc'd buffers (the resident set size)."""
    script = textwrap.dedent(
        """
        import gc, sys, tracemalloc
        from pyredcache import _compat
        from pyredcache.exceptions import ProtocolError
        impl = _compat.c_core if sys.argv[1] == "c" else _compat.py_core
        trace = sys.argv[1] == "c"
        # past reply.c's 4096 preallocated slots, so appends happen too
        n = 4200 if trace else 50

        def rss_kb():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4

        def once():
            r = impl.Reader()
            r.feed(b"*3\\r\\n$3\\r\\nabc\\r\\n-ERR x\\r\\n*2\\r\\n:1\\r\\n+OK\\r\\n*2\\r\\n:1")
            r.gets()
            r.gets()
            r.feed(b"\\r\\n?")
            try:
                r.gets()
            except ProtocolError:
                pass
            r = impl.Reader()
            r.feed(b"*%d\\r\\n" % (n + 1) + b":1\\r\\n" * n)  # dropped half-read
            r.gets()

        for _ in range(300):
            once()
        gc.collect()
        if trace:
            tracemalloc.start()
        before_py = tracemalloc.get_traced_memory()[0]
        before_blocks = sys.getallocatedblocks()
        before_rss = rss_kb()
        for _ in range(3000):
            once()
        gc.collect()
        print(tracemalloc.get_traced_memory()[0] - before_py,
              sys.getallocatedblocks() - before_blocks, rss_kb() - before_rss)
        """
    )
    out = subprocess.run([sys.executable, "-c", script, impl.implementation],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    py_growth, blocks, rss_growth_kb = map(int, out.stdout.split())
    assert py_growth < 64 * 1024, "Python objects grew by %d bytes" % py_growth
    assert blocks < 1000, "%d more memory blocks are allocated" % blocks
    if "asan" not in os.environ.get("LD_PRELOAD", ""):  # ASan's quarantine keeps freed memory
        assert rss_growth_kb < 2048, "resident memory grew by %d kB" % rss_growth_kb


# -- reply.c attach: an element that cannot be appended -----------------------------

ATTACH_SCRIPT = textwrap.dedent(
    """
    import gc, _testcapi
    from pyredcache import _core
    from pyredcache.exceptions import PyRedCacheError
    gc.disable()
    outcomes = []
    # Elements past the first 4096 of an array are appended (reply.c
    # preallocates 4096 slots).  The 4097th is an array: make the
    # allocations from the start-th on fail while it is read, so that at
    # some start its own list is built and the append to its parent fails.
    for start in range(8):
        r = _core.Reader()
        r.feed(b"*4097\\r\\n" + b":1\\r\\n" * 4096)
        assert r.gets() is False
        r.feed(b"*2\\r\\n:7\\r\\n:8\\r\\n+next\\r\\n")  # hiredis copies with malloc
        _testcapi.set_nomemory(start, 0)
        try:
            value = r.gets()
        except MemoryError:
            value = "MemoryError"
        finally:
            _testcapi.remove_mem_hooks()
        outcomes.append(value if value == "MemoryError" else len(value))
        assert r.gets() == b"next"  # in step after the failed reply
        junk = [[i, i] for i in range(100000)]  # reuse what was freed
        del junk
    gc.enable()
    gc.collect()
    print(" ".join(map(str, outcomes)))
    """
)


@pytest.mark.parametrize("allocator", ["pymalloc", "malloc"])
def test_failed_append_does_not_reuse_a_freed_list(allocator):
    """Before the fix, the freed list went back to hiredis as the parent of
    its elements, which were written into it: a use-after-free (ASan:
    heap-use-after-free in attach); without ASan, a crash (glibc: malloc():
    unaligned fastbin chunk detected; pymalloc: segfault)."""
    if _compat.c_core is None:
        pytest.fail("the C extension pyredcache._core is not built")
    pytest.importorskip("_testcapi")
    env = dict(os.environ, PYTHONMALLOC=allocator)
    out = subprocess.run([sys.executable, "-c", ATTACH_SCRIPT], capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    outcomes = out.stdout.split()
    assert outcomes[0] == "MemoryError"  # the failure was reached...
    assert outcomes[-1] == "4097"  # ...and past the last allocation, all is read


# -- Connection level: a hostile server fails the call at once ---------------------------

REFUSED = [(p, r) for p, r in HOSTILE if isinstance(r, str)]


@pytest.mark.parametrize("payload, message", REFUSED)
def test_hostile_server_raises_protocol_error_at_once(impl, payload, message):
    # The server keeps the connection open: a parser that waited for more
    # bytes would end in TimeoutError after 5 seconds instead.
    fake = FakeServer(payload, close_after=False)
    try:
        c = impl.Connection("127.0.0.1", fake.port, socket_timeout=5)
        expected = "Protocol error from 127.0.0.1:%d: %s" % (fake.port, message)
        with pytest.raises(ProtocolError, match="^%s$" % re.escape(expected)):
            c.execute_command("GET", "k")
        assert not c.connected
        results = impl.multi_pipeline([(c, [("GET", "k"), ("GET", "j")])], 5.0)
        assert type(results[0]) is ProtocolError and str(results[0]) == expected
        assert not c.connected
    finally:
        fake.close()


@pytest.mark.parametrize("payload", [b"+" + b"a" * BIG, b"$4294967296\r\nabc",
                                     b"*2147483647\r\n:1\r\n"])
def test_hostile_server_that_makes_hiredis_wait_is_bounded_by_socket_timeout(impl, payload):
    """A line without CRLF or a length in range: hiredis waits for the rest,
    so does the twin, and socket_timeout ends the wait on both."""
    fake = FakeServer(payload, close_after=False)
    try:
        c = impl.Connection("127.0.0.1", fake.port, socket_timeout=0.3)
        with pytest.raises(TimeoutError):
            c.execute_command("GET", "k")
        assert not c.connected
    finally:
        fake.close()


# -- PROTO_MAX_BULK_LEN -----------------------------------------------------------------


def test_argument_over_proto_max_bulk_len_is_refused_before_sending(impl, redis_server):
    assert impl.PROTO_MAX_BULK_LEN == 536870912
    # an anonymous map: its pages are never touched, so this costs no memory
    with mmap.mmap(-1, impl.PROTO_MAX_BULK_LEN + 1) as area:
        big = memoryview(area)
        try:
            c = impl.Connection(redis_server.host, redis_server.port)
            c.execute_command("DEL", "rp:a", "rp:b")
            message = ("command argument of 536870913 bytes is over 536870912 bytes, "
                       "Redis's limit for one bulk string (proto-max-bulk-len)")
            with pytest.raises(ValueError, match="^%s$" % re.escape(message)):
                c.pipeline([("SET", "rp:a", "1"), ("SET", "rp:b", big)])
            with pytest.raises(ValueError, match=re.escape(message)):
                c.execute_command("SET", "rp:b", big)
            with pytest.raises(ValueError, match=re.escape(message)):
                impl.multi_pipeline([(c, [("SET", "rp:a", "1"), ("SET", "rp:b", big)])])
            assert c.execute_command("EXISTS", "rp:a", "rp:b") == 0  # nothing was sent
            c.close()
        finally:
            big.release()


def test_argument_at_proto_max_bulk_len_is_encoded():
    """The limit itself is allowed (Redis refuses only longer strings)."""
    py = _compat.py_core
    with mmap.mmap(-1, py.PROTO_MAX_BULK_LEN) as area:
        view = memoryview(area)
        try:
            assert len(encode_arg(view)) == py.PROTO_MAX_BULK_LEN
        finally:
            view.release()
    with pytest.raises(ValueError, match="536870913 bytes"):
        encode_arg("\xe9" * (py.PROTO_MAX_BULK_LEN // 2) + "a")  # 2 bytes a char
