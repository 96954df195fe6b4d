"""Allocation failure in the core: hiredis out of memory (through the fault
sites of a debug build) and Python out of memory (through _testcapi).

* Fault sites (csrc/fault.h): a debug build (PYREDCACHE_DEBUG_BUILD=1) has
  ``_core._set_fault(site, after, times=1)``, which makes one hiredis call
  site fail as if malloc had: hiredis 0.14 allocates with libc malloc and
  has no allocator hooks, so this is the only way to reach those error
  paths.  These tests are for the C core only (the twin has no hiredis)
  and skip on a release build, naming it; CI runs the suite on a debug
  build too.  Each asserts the error type, that the connection was closed
  (its stream is out of step) or kept (it is not), that it works again
  afterwards, and that a thousand failures leak nothing.
* Python allocations: ``_testcapi.set_nomemory(k, k + 1)`` makes the k-th
  allocation from then on fail (and set_nomemory(k, k + 2) the k-th and
  the next).  In a fresh interpreter a call is run once for every k until
  it succeeds again, so each of its allocations fails once: every outcome must be success or MemoryError (never a crash,
  another error or a wrong value), and after each the connection answers
  the next command in step.  These run on both cores, on any build.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import pytest

from pyredcache import _compat
from pyredcache.exceptions import ConnectionError, ProtocolError, TimeoutError

try:
    import _testcapi
except ImportError:  # a Python built without its test modules
    _testcapi = None

DEBUG_BUILD_REASON = (
    "needs the C core built with PYREDCACHE_DEBUG_BUILD=1 (fault injection: "
    "_core._set_fault is compiled into debug builds only)"
)


@pytest.fixture
def core(request):
    """The C core, built with fault injection."""
    if request.config.getoption("--no-c-extensions"):
        pytest.skip("fault injection is in the C core; C disabled by --no-c-extensions")
    if _compat.c_core is None:
        pytest.fail("the C extension pyredcache._core is not built")
    if not hasattr(_compat.c_core, "_set_fault"):
        pytest.skip(DEBUG_BUILD_REASON)
    return _compat.c_core


class Faults:
    def __init__(self, core) -> None:
        self.core = core

    def arm(self, site: str, after: int = 0, times: int = 1) -> None:
        self.core._set_fault(site, after, times)

    def fired(self, site: str) -> int:
        """Disarm the site; how many failures it injected."""
        return self.core._set_fault(site, -1)


@pytest.fixture
def faults(core):
    f = Faults(core)
    yield f
    for site in core._fault_sites():
        core._set_fault(site, -1)


@pytest.fixture
def conn(core, redis_server, redis_url):
    c = core.Connection(redis_server.host, redis_server.port, busy_poll=0)
    yield c
    c.close()


# -- the switch itself ---------------------------------------------------------------


def test_fault_switch_arguments(core, faults):
    sites = core._fault_sites()
    assert set(sites) >= {"connect", "reader_create", "set_timeout", "append",
                          "buffer_write", "buffer_read", "spin_feed", "mpx_feed",
                          "mpx_poll", "mpx_send", "reader_feed"}
    with pytest.raises(ValueError, match="unknown fault site"):
        core._set_fault("no_such_site", 0)
    for bad in [(-2,), (0, 0), (0, -2)]:
        with pytest.raises(ValueError):
            core._set_fault("connect", *bad)
    with pytest.raises(TypeError):
        core._set_fault(b"connect", 0)
    with pytest.raises(TypeError):
        core._set_fault("connect")
    assert faults.fired("connect") == 0


def test_fault_fires_after_n_passes_for_n_times(core, faults, redis_server, redis_url):
    c = core.Connection(redis_server.host, redis_server.port)
    faults.arm("connect", after=1, times=2)
    c.connect()  # the one pass
    for _ in range(2):
        with pytest.raises(MemoryError):
            c.connect()
    c.connect()  # passes again
    assert faults.fired("connect") == 2
    assert c.execute_command("PING") == b"PONG"


# -- hiredis failures, one site each --------------------------------------------------


def test_connect_out_of_memory(core, faults, conn):
    faults.arm("connect")
    with pytest.raises(MemoryError):
        conn.execute_command("PING")
    assert faults.fired("connect") == 1
    assert not conn.connected
    assert conn.execute_command("PING") == b"PONG"


def test_reader_create_out_of_memory(core, faults, conn):
    faults.arm("reader_create")
    with pytest.raises(MemoryError):
        conn.connect()
    assert faults.fired("reader_create") == 1
    assert not conn.connected
    assert conn.execute_command("PING") == b"PONG"


def test_set_timeout_fails(core, faults, conn):
    faults.arm("set_timeout")
    with pytest.raises(ConnectionError, match="Error configuring"):
        conn.execute_command("PING")
    assert faults.fired("set_timeout") == 1
    assert not conn.connected
    assert conn.execute_command("PING") == b"PONG"


def test_append_out_of_memory_sends_nothing(core, faults, conn, redis_server):
    conn.connect()
    faults.arm("append", after=1)  # the second command of the pipeline
    with pytest.raises(MemoryError):
        conn.pipeline([("SET", "a", "1"), ("SET", "b", "1")])
    assert faults.fired("append") == 1
    assert not conn.connected  # the first command sat in the output buffer
    assert redis_server.client().exists("a", "b") == 0
    assert conn.execute_command("PING") == b"PONG"


def test_write_fails(core, faults, conn):
    conn.connect()
    faults.arm("buffer_write")
    with pytest.raises(ConnectionError, match="Error while talking to") as info:
        conn.execute_command("SET", "k", "v")
    assert not isinstance(info.value, TimeoutError)
    assert faults.fired("buffer_write") == 1
    assert not conn.connected
    assert conn.execute_command("PING") == b"PONG"


def test_read_out_of_memory_drops_the_late_reply(core, faults, conn):
    conn.execute_command("SET", "k", "old")
    faults.arm("buffer_read")
    with pytest.raises(MemoryError):
        conn.execute_command("SET", "k", "new")
    assert faults.fired("buffer_read") == 1
    assert not conn.connected  # the unread +OK must not answer the next command
    assert conn.execute_command("GET", "k") == b"new"


def test_busy_poll_feed_out_of_memory(core, faults, redis_server, redis_url):
    # a second-long spin budget: the reply is read (and fed) while spinning
    c = core.Connection(redis_server.host, redis_server.port, busy_poll=1_000_000)
    c.connect()
    faults.arm("spin_feed")
    with pytest.raises(MemoryError) as info:
        c.execute_command("PING")
    assert not isinstance(info.value, ProtocolError)
    assert faults.fired("spin_feed") == 1
    assert not c.connected
    assert c.execute_command("PING") == b"PONG"


def test_fan_out_feed_out_of_memory_fails_one_job(core, faults, redis_server, redis_url):
    a = core.Connection(redis_server.host, redis_server.port, busy_poll=0)
    b = core.Connection(redis_server.host, redis_server.port, busy_poll=0)
    faults.arm("mpx_feed")
    results = core.multi_pipeline([(a, [("PING",)]), (b, [("PING",)])], 5.0)
    assert faults.fired("mpx_feed") == 1
    failed = [i for i, r in enumerate(results) if isinstance(r, MemoryError)]
    assert len(failed) == 1, results
    other = 1 - failed[0]
    assert results[other] == [b"PONG"]
    assert not (a, b)[failed[0]].connected and (a, b)[other].connected
    assert core.multi_pipeline([(a, [("PING",)]), (b, [("PING",)])]) == [[b"PONG"]] * 2


def test_fan_out_poll_fails(core, faults, redis_server, redis_url):
    a = core.Connection(redis_server.host, redis_server.port, busy_poll=0)
    b = core.Connection(redis_server.host, redis_server.port, busy_poll=0)
    faults.arm("mpx_poll")
    with pytest.raises(OSError) as info:
        core.multi_pipeline([(a, [("PING",)]), (b, [("PING",)])], 5.0)
    assert not isinstance(info.value, ConnectionError)
    assert faults.fired("mpx_poll") == 1
    # abandoned in flight: both closed, neither left busy
    assert not a.connected and not b.connected
    assert core.multi_pipeline([(a, [("PING",)]), (b, [("PING",)])]) == [[b"PONG"]] * 2


def test_fan_out_send_fails_one_job(core, faults, redis_server, redis_url):
    """A job whose first send fails is ended with ConnectionError even
    while the other job's wait for its server times out."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts (in the kernel), never answers
    try:
        a = core.Connection(redis_server.host, redis_server.port, busy_poll=0)
        b = core.Connection("127.0.0.1", silent.getsockname()[1], busy_poll=0)
        a.connect()
        b.connect()
        faults.arm("mpx_send")  # the first send of the run: job a's
        results = core.multi_pipeline([(a, [("PING",)]), (b, [("PING",)])], 0.3)
    finally:
        silent.close()
    assert faults.fired("mpx_send") == 1
    assert isinstance(results[0], ConnectionError)
    assert not isinstance(results[0], TimeoutError)
    assert "Error while talking to" in str(results[0])
    assert isinstance(results[1], TimeoutError)
    assert not a.connected
    assert a.execute_command("PING") == b"PONG"


def test_reader_create_out_of_memory_for_a_reader(core, faults):
    faults.arm("reader_create")
    with pytest.raises(MemoryError):
        core.Reader()
    assert faults.fired("reader_create") == 1
    r = core.Reader()
    r.feed(b"+OK\r\n")
    assert r.gets() == b"OK"


def test_reader_feed_out_of_memory_fails_the_reader(core, faults):
    r = core.Reader()
    r.feed(b"*2\r\n:1\r\n")  # half a reply, held by the reader
    faults.arm("reader_feed")
    with pytest.raises(MemoryError):
        r.feed(b":2\r\n")
    assert faults.fired("reader_feed") == 1
    # failed for good, as after a protocol error: the stream is lost
    with pytest.raises(MemoryError):
        r.gets()
    r.feed(b"+OK\r\n")  # dropped
    with pytest.raises(MemoryError):
        r.gets()


def test_fault_in_one_thread_leaves_another_connection_alone(core, faults, redis_server,
                                                              redis_url):
    """Sites count calls process-wide; a failure belongs to the connection
    whose call consumed it, and the other thread's connection is intact."""
    other = core.Connection(redis_server.host, redis_server.port)
    other.execute_command("SET", "t", "1")
    conn = core.Connection(redis_server.host, redis_server.port)
    faults.arm("connect")
    with pytest.raises(MemoryError):
        conn.execute_command("PING")
    out: list = []
    t = threading.Thread(target=lambda: out.append(other.execute_command("GET", "t")))
    t.start()
    t.join()
    assert out == [b"1"]


# -- no leaks under repeated faults -----------------------------------------------------

FAULT_LEAK_SCRIPT = textwrap.dedent(
    """
    import ctypes, gc, json, sys, time, tracemalloc
    from pyredcache import _core
    from pyredcache.exceptions import ConnectionError

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Mallinfo2

    def malloc_in_use():
        m = libc.mallinfo2()
        return m.uordblks + m.hblkhd

    # a unix socket: thousands of TCP connects in a row would run into
    # TIME_WAIT, which has nothing to do with what is measured
    site, path = sys.argv[1], sys.argv[2]
    conn = _core.Connection(unix_socket_path=path,
                            busy_poll=1_000_000 if site == "spin_feed" else 0)
    other = _core.Connection(unix_socket_path=path, busy_poll=0)
    pipeline = [("SET", "k", "v" * 100), ("GET", "k"), ("LRANGE", "l", 0, -1)]
    conn.execute_command("RPUSH", "l", *range(20))

    fired = 0

    def once():
        global fired
        if site == "reader_feed":
            r = _core.Reader()
            r.feed(b"*2\\r\\n$3\\r\\nabc\\r\\n")
            _core._set_fault(site, 0)
            try:
                r.feed(b":1\\r\\n")
            except MemoryError:
                pass
            fired += _core._set_fault(site, -1)
            return
        if site in ("connect", "reader_create", "set_timeout"):
            conn.close()  # the command connects, and the connect fails
        elif site in ("append", "buffer_write", "buffer_read", "spin_feed"):
            for _ in range(1000):  # the server's backlog may be full: EAGAIN
                try:
                    conn.connect()
                    break
                except ConnectionError:
                    time.sleep(0.001)
        _core._set_fault(site, 0)
        try:
            if site.startswith("mpx_"):
                _core.multi_pipeline([(conn, pipeline), (other, pipeline)], 5.0)
            else:
                conn.pipeline(pipeline)
        except (MemoryError, ConnectionError, OSError):
            pass
        # counted, not asserted per call: a connect that the server refused
        # (busy with thousands of them) injects nothing
        fired += _core._set_fault(site, -1)

    for _ in range(300):
        once()
    gc.collect()
    tracemalloc.start()
    before_py = tracemalloc.get_traced_memory()[0]
    before_c = malloc_in_use()
    before_blocks = sys.getallocatedblocks()
    fired = 0
    # 3000 failures, however many attempts it takes: a connect that a busy
    # server refused injects nothing, so a loaded machine needs more tries
    for _ in range(30000):
        if fired >= 3000:
            break
        once()
    gc.collect()
    print(json.dumps({
        "fired": fired,
        "py": tracemalloc.get_traced_memory()[0] - before_py,
        "c": malloc_in_use() - before_c,
        "blocks": sys.getallocatedblocks() - before_blocks,
    }))
    """
)


@pytest.mark.parametrize("site", ["connect", "reader_create", "set_timeout", "append",
                                  "buffer_write", "buffer_read", "spin_feed", "mpx_feed",
                                  "mpx_poll", "mpx_send", "reader_feed"])
def test_no_leaks_under_faults(core, redis_server, redis_url, site):
    out = subprocess.run(
        [sys.executable, "-c", FAULT_LEAK_SCRIPT, site, redis_server.unix_socket_path],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    growth = json.loads(out.stdout)
    # 3000 failures: a leak of one redisContext or reader (hundreds of
    # bytes of malloc each) would add up to far more than these bounds
    assert growth["c"] < 64 * 1024, growth
    assert growth["py"] < 64 * 1024, growth
    assert growth["blocks"] < 500, growth
    assert growth["fired"] >= 3000, growth


# -- Python out of memory, every allocation in turn ------------------------------------

SWEEP_SCRIPT = textwrap.dedent(
    """
    import json, sys, _testcapi
    from pyredcache import _compat
    from pyredcache.exceptions import ResponseError
    impl = _compat.c_core if sys.argv[1] == "c" else _compat.py_core
    case, mode, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
    # C, one failure at a time: an array past the preallocated 4096 slots
    big = 5000 if impl.implementation == "c" and mode == "one" else 300
    conn = impl.Connection("127.0.0.1", port, busy_poll=0)
    conn.execute_command("DEL", "l", "s", "tmp")
    conn.execute_command("RPUSH", "l", *range(big))
    conn.execute_command("SET", "s", "v" * 100)

    def in_step():
        for c in conns:
            assert c.execute_command("ECHO", "in-step") == b"in-step"

    conns = [conn]
    if case == "command":
        def op():
            # > 8 arguments, every argument type; commands given as lists
            # and iterators (copied) as well as tuples; repr
            n = conn.execute_command("RPUSH", "tmp", 12345, 2**70, -1.5, bytearray(b"x"),
                                     memoryview(b"y"), "s", b"b", "\u00e9", 7)
            replies = conn.pipeline(iter([("PING",), ["ECHO", "a"], iter(["ECHO", b"b"])]))
            return n, replies, repr(conn)
        check = lambda r: (isinstance(r[0], int) and r[1] == [b"PONG", b"a", b"b"]
                           and "127.0.0.1" in r[2])
    elif case == "construct":
        def op():
            c = impl.Connection(port=port, socket_timeout=0.5, busy_poll=0, db=0)
            d = impl.Connection("127.0.0.1", port, username="u", password="p")
            return repr(c), c.host, d.username
        check = lambda r: r[1] == "localhost" and r[2] == "u" and "localhost" in r[0]
    elif case == "replies":
        nested = "return {1, {2, 'x', {}}, 'y'}"
        def op():
            return conn.pipeline([("GET", "s"), ("LRANGE", "l", 0, -1), ("GET", "missing"),
                                  ("LPUSH", "s", "x"), ("EVAL", nested, 0),
                                  ("INCRBYFLOAT", "f", 0.5)])
        def check(r):
            return (r[0] == b"v" * 100 and r[1] == [str(i).encode() for i in range(big)]
                    and r[2] is None and isinstance(r[3], ResponseError)
                    and r[4] == [1, [2, b"x", []], b"y"])
    elif case == "multi_pipeline":
        other = impl.Connection("127.0.0.1", port, busy_poll=0)
        conns.append(other)
        def op():
            return impl.multi_pipeline([(conn, [("GET", "s"), ("LRANGE", "l", 0, 99)]),
                                        (other, [("PING",), ("ECHO", b"e")])], 10.0)
        want = [[b"v" * 100, [str(i).encode() for i in range(100)]], [b"PONG", b"e"]]
        def check(r):
            # a job whose replies could not be built fails alone, with the
            # MemoryError in its slot; the other job's replies are whole
            if len(r) == 2 and all(x == w or type(x) is MemoryError for x, w in zip(r, want)):
                return "MemoryError" if r != want else True
            return False
    elif case == "reader":
        conns = []
        payload = (b"*3\\r\\n$3\\r\\nabc\\r\\n*2\\r\\n:1\\r\\n-ERR x\\r\\n+OK\\r\\n"
                   + b"*%d\\r\\n" % big + b"".join(b":%d\\r\\n" % i for i in range(big)))
        def op():
            r = impl.Reader()
            r.feed(payload)
            return r.gets(), r.gets(), r.gets()
        def check(r):
            first, second, third = r
            return (first[0] == b"abc" and first[1][0] == 1
                    and isinstance(first[1][1], ResponseError) and first[2] == b"OK"
                    and second == list(range(big)) and third is False)
    elif case == "codec":
        import datetime, decimal, uuid
        value = {"a": [1, 2.5, "x", b"y", (1, 2), {1, 2}, frozenset({3}), 2**100, None, True],
                 "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                 "d": datetime.date(2024, 1, 2), "dec": decimal.Decimal("1.25"),
                 "u": uuid.UUID(int=7), 3: {"nested": [[[]]]}}
        conns = []
        def op():
            return impl.loads(impl.dumps(value)), impl.dumps(value, canonical=True)
        expected = (value, impl.dumps(value, canonical=True))
        check = lambda r: r == expected
    elif case == "keys":
        import inspect
        EMPTY = inspect.Parameter.empty
        kb = impl.KeyBuilder(b"f:", ("a", "b", "kw"), (1, 1, 3), (EMPTY, 2, None), False)
        args, kwargs = (1, [1.5, "x", (2,)]), {"kw": {"z": 1, "y": [None]}}
        expected = kb(args, kwargs)
        conns = []
        op = lambda: kb(args, kwargs)
        check = lambda r: r == expected
    elif case == "promise":
        conns = []
        def op():
            seen = []
            p = impl.Promise()
            p.then(lambda v: seen.append(v + 1)).then(lambda v: seen.append([v]))
            s = impl.Promise().then(None, lambda e: seen.append(type(e).__name__))
            p.resolve(1)
            s.reject(ValueError("x"))
            return p.value, seen, s.is_rejected, impl.Promise.resolved(5).value
        check = lambda r: r == (1, [2, [1], "ValueError"], True, 5)
    else:
        raise SystemExit("unknown case " + case)

    outcomes = {}
    k = ok_run = 0
    while ok_run < 30 and k < 200000:
        err = result = None
        # "one": the k-th allocation fails; "two": the k-th and the next
        # (two callbacks of one reply failing: the first error is raised)
        _testcapi.set_nomemory(k, k + 1 if mode == "one" else k + 2)
        try:
            result = op()
        except BaseException as e:
            err = e
        _testcapi.remove_mem_hooks()
        if err is None:
            verdict = check(result)
            if isinstance(verdict, str):
                what = verdict
            else:
                what = "ok" if verdict else "wrong value: %r" % (result,)
        elif type(err) is MemoryError:
            what = "MemoryError"
        else:
            what = "%s: %s" % (type(err).__name__, err)
        outcomes[what] = outcomes.get(what, 0) + 1
        in_step()
        ok_run = ok_run + 1 if what == "ok" else 0
        k += 1
    print(json.dumps(outcomes))
    """
)


@pytest.mark.skipif(_testcapi is None, reason="needs _testcapi (Python's test C module)")
@pytest.mark.parametrize("case, mode", [
    ("command", "one"), ("construct", "one"), ("replies", "one"), ("replies", "two"), ("multi_pipeline", "one"),
    ("reader", "one"), ("reader", "two"), ("codec", "one"), ("keys", "one"),
    ("promise", "one"),
])
def test_every_allocation_failing_in_turn(impl, redis_server, redis_url, case, mode):
    out = subprocess.run(
        [sys.executable, "-c", SWEEP_SCRIPT, impl.implementation, case, mode,
         str(redis_server.port)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    outcomes = json.loads(out.stdout)
    assert set(outcomes) == {"ok", "MemoryError"}, outcomes
    assert outcomes["MemoryError"] >= 1, outcomes
