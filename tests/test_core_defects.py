"""Regression tests for the C defects of issue 11 found in review of the C
core (csrc/connection.c, multiplex.c, keys.c, module.c), each run on both
cores through the ``impl`` fixture where the twin has the same thing.

Tests that crashed the interpreter before their fix (a segfault would take
the whole pytest session with it) run their probe in a child interpreter
(``run_isolated``) and fail when it dies.  The tests that reach C-only
states (an object after its tp_clear, the argument parser's guard, a
METH_FASTCALL call with a forged argument count) use ctypes and run on the
C core alone.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque

import pytest

from conftest import free_port
from pyredcache import _compat
from pyredcache.exceptions import ConnectionError

#: Redis's proto-max-bulk-len default, the limit both cores enforce.
LIMIT = 536870912
LIMIT_MESSAGE = (
    "command argument of %d bytes is over 536870912 bytes, Redis's limit for "
    "one bulk string (proto-max-bulk-len)"
)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(_compat.__file__)))


@pytest.fixture
def c_core(request: pytest.FixtureRequest):
    """The C core, for tests of states only C has (tp_clear, the C argument
    parser)."""
    if request.config.getoption("--no-c-extensions"):
        pytest.skip("a C-only state; C disabled by --no-c-extensions")
    if _compat.c_core is None:
        pytest.fail("the C extension pyredcache._core is not built")
    return _compat.c_core


# -- running a probe in a child interpreter ----------------------------------------

PRELUDE = '''
import ctypes, importlib, json, sys
core = importlib.import_module(sys.argv[1])
ARGS = sys.argv[2:]
OUT = {}

def probe(key, fn):
    """Record what fn() did: ["ok", type of the result] or ["raise", type of
    the exception]."""
    try:
        r = fn()
    except Exception as e:
        OUT[key] = ["raise", type(e).__name__]
    else:
        OUT[key] = ["ok", type(r).__name__]

_get_slot = ctypes.pythonapi.PyType_GetSlot
_get_slot.argtypes = [ctypes.py_object, ctypes.c_int]
_get_slot.restype = ctypes.c_void_p
PY_TP_CLEAR = 51  # typeslots.h

def tp_clear(obj):
    """Run the type's tp_clear on obj, as the garbage collector does when it
    breaks a cycle; False if the type has none."""
    addr = _get_slot(type(obj), PY_TP_CLEAR)
    if not addr:
        return False
    ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(addr)(obj)
    return True

def connection_ops(o, prefix):
    ops = {
        "execute_command": lambda: o.execute_command("PING"),
        "pipeline": lambda: o.pipeline([("PING",)]),
        "connect": o.connect,
        "close": o.close,
        "multi_pipeline": lambda: core.multi_pipeline([(o, [("PING",)])], timeout=1.0),
        "redlock_round": lambda: core.redlock_round([o], ("PING",), 1000, 1.0),
        "repr": lambda: repr(o),
        "connected": lambda: o.connected,
    }
    for attr in ("host", "port", "unix_socket_path", "db", "username",
                 "socket_timeout", "socket_connect_timeout", "busy_poll",
                 "busy_poll_hits", "busy_poll_misses"):
        ops[attr] = (lambda a: lambda: getattr(o, a))(attr)
    for name, fn in ops.items():
        probe(prefix + name, fn)
'''


def run_isolated(module_name: str, body: str, *args: str) -> dict:
    """Run PRELUDE + body in a child interpreter on the core module_name and
    return its OUT dict; fail if the child crashed."""
    code = PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(OUT))\n"
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code, module_name, *args],
        capture_output=True, text=True, timeout=240, cwd=ROOT, env=env,
    )
    assert proc.returncode == 0, (
        "the probe died (exit status %d):\n%s" % (proc.returncode, proc.stderr[-4000:])
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- 1. pipeline arguments are owned while the GIL is released ---------------------

def read_command(f) -> list[bytes]:
    """One RESP command (an array of bulk strings) from the file f."""
    line = f.readline()
    assert line.startswith(b"*"), line
    args = []
    for _ in range(int(line[1:])):
        head = f.readline()
        assert head.startswith(b"$"), head
        n = int(head[1:])
        args.append(f.read(n + 2)[:-2])
    return args


def value_for(i: int, gen: int, size: int) -> bytes:
    unit = b"%05d:%08d|" % (i, gen)
    return unit * (size // len(unit))


def well_formed(i: int, value: bytes, size: int) -> bool:
    unit = value[:15]
    return unit.startswith(b"%05d:" % i) and value == unit * (size // 15)


def test_pipeline_owns_its_arguments_while_connecting(impl):
    """The encoded arguments point into the command lists' items; the GIL is
    released while connecting; another thread replacing the items frees
    them (before the fix: heap-use-after-free under ASan, garbage sent).
    The connect is held up by a listener whose accept queue is full: the
    kernel drops the SYN, and the client's retransmission (a second later)
    gets in once the server has accepted the connection filling it."""
    size, ncmds = 1500, 40
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the queue
    received: list[list[bytes]] = []

    def serve() -> None:
        time.sleep(0.3)  # while the client's connect waits, items change
        a, _ = listener.accept()
        a.close()
        s, _ = listener.accept()
        with s, s.makefile("rb") as f:
            for _ in range(ncmds):
                received.append(read_command(f))
            s.sendall(b"+OK\r\n" * ncmds)

    # Half the values are bytes, half str (whose UTF-8 bytes live in the str).
    cmds: list[list] = []
    for i in range(ncmds):
        v = value_for(i, 0, size)
        cmds.append(["SET", "k%d" % i, v if i % 2 else v.decode()])
    stop = threading.Event()

    def mutate() -> None:
        junk: deque = deque(maxlen=256)
        gen = 1
        while not stop.is_set():
            for i, cmd in enumerate(cmds):
                v = value_for(i, gen, size)
                cmd[2] = v if i % 2 else v.decode()
                # take the memory the old value had
                junk.append(b"\0" * size if i % 2 else "\0" * size)
            gen += 1

    server = threading.Thread(target=serve)
    mutator = threading.Thread(target=mutate)
    conn = impl.Connection("127.0.0.1", port, socket_connect_timeout=None,
                           socket_timeout=10.0)
    server.start()
    mutator.start()
    try:
        replies = conn.pipeline(cmds)
    finally:
        stop.set()
        mutator.join()
        server.join(10)
        conn.close()
        filler.close()
        listener.close()
    assert replies == [b"OK"] * ncmds
    assert len(received) == ncmds
    for i, args in enumerate(received):
        assert args[:2] == [b"SET", b"k%d" % i]
        assert well_formed(i, args[2], size), (i, args[2][:40])


def test_command_iterable_that_empties_the_command_list(impl, redis_server):
    """Iterating a command runs Python code that may change the list of
    commands; before the fix the C core read past the emptied list
    (segfault)."""
    body = '''
    commands = []

    class Shrinking:
        def __iter__(self):
            commands.clear()
            return iter(("PING",))

    conn = core.Connection(unix_socket_path=ARGS[0])
    for name, call in [
        ("pipeline", lambda: conn.pipeline(commands)),
        ("multi_pipeline", lambda: core.multi_pipeline([(conn, commands)], timeout=5.0)),
    ]:
        commands[:] = [Shrinking(), ("PING",), ("PING",)]
        try:
            r = call()
        except Exception as e:
            OUT[name] = ["raise", type(e).__name__]
        else:
            if name == "multi_pipeline":
                r = r[0]
            OUT[name] = ["ok", sorted(set(r)) == [b"PONG"] and len(r) >= 1]
    '''
    out = run_isolated(impl.__name__, body, redis_server.unix_socket_path)
    # C takes the list as it was when called (3 commands), the twin iterates
    # it live (1): both answer every command they sent.
    assert out == {"pipeline": ["ok", True], "multi_pipeline": ["ok", True]}


# -- 2. uninitialised objects raise, never crash ------------------------------------


#: Of the operations connection_ops (in PRELUDE) tries, what needs the
#: configuration raises AttributeError on both cores (the
#: twin's attributes are missing, C refuses the same way).
NEEDS_CONFIG = ["execute_command", "pipeline", "connect", "close", "multi_pipeline",
                "redlock_round", "host", "port", "unix_socket_path", "db",
                "username", "socket_timeout", "socket_connect_timeout"]
#: Both cores answer these (repr says "not initialised", connected is
#: False, the busy-poll counters are 0).
HARMLESS = ["repr", "connected", "busy_poll", "busy_poll_hits", "busy_poll_misses"]


def check_uninitialised(out: dict, prefix: str) -> None:
    for name in NEEDS_CONFIG:
        assert out[prefix + name] == ["raise", "AttributeError"], (prefix, name, out[prefix + name])
    for name in HARMLESS:
        assert out[prefix + name][0] == "ok", (prefix, name, out[prefix + name])


def test_connection_new_without_init(impl, redis_server):
    body = '''
    o = core.Connection.__new__(core.Connection)
    connection_ops(o, "")
    o.__init__(unix_socket_path=ARGS[0])
    probe("ping after init", lambda: o.execute_command("PING"))
    OUT["pong"] = o.execute_command("PING") == b"PONG"
    '''
    out = run_isolated(impl.__name__, body, redis_server.unix_socket_path)
    check_uninitialised(out, "")
    assert out["repr"] == ["ok", "str"]
    assert out["pong"] is True


FAILED_INITS = [
    ("host=1", "TypeError"),
    ("port='6379'", "TypeError"),
    ("port=True", "TypeError"),
    ("port=0", "ValueError"),
    ("port=70000", "ValueError"),
    ("unix_socket_path=1", "TypeError"),
    ("db='0'", "TypeError"),
    ("db=-1", "ValueError"),
    ("username=1, password='p'", "TypeError"),
    ("password=1", "TypeError"),
    ("username='u'", "ValueError"),
    ("socket_timeout='1'", "TypeError"),
    ("socket_timeout=0", "ValueError"),
    ("socket_connect_timeout=-1.0", "ValueError"),
    ("busy_poll=1.5", "TypeError"),
    ("busy_poll=-1", "ValueError"),
    ("'h', 1, 2", "TypeError"),
    ("nonsense=1", "TypeError"),
]


def test_connection_after_a_failed_init(impl, redis_server):
    """Every argument check of __init__ fails once, after the ones before it
    passed (before the fix: fields set half-way, then repr or a command
    dereferenced NULL)."""
    body = '''
    for i, kwargs in enumerate(json.loads(ARGS[1])):
        o = core.Connection.__new__(core.Connection)
        probe("%d:init" % i, lambda: eval("o.__init__(%s)" % kwargs))
        connection_ops(o, "%d:" % i)
        o.__init__(unix_socket_path=ARGS[0])
        OUT["%d:pong" % i] = o.execute_command("PING") == b"PONG"
        o.close()
    '''
    cases = [kwargs for kwargs, _ in FAILED_INITS]
    out = run_isolated(impl.__name__, body, redis_server.unix_socket_path, json.dumps(cases))
    for i, (kwargs, exc) in enumerate(FAILED_INITS):
        assert out["%d:init" % i] == ["raise", exc], kwargs
        check_uninitialised(out, "%d:" % i)
        assert out["%d:pong" % i] is True, kwargs


def test_every_type_survives_new_and_a_failed_init(impl):
    """For every class the core exports: T.__new__(T), and T.__new__(T)
    followed by a failing __init__, then every attribute, every method (with
    a few argument lists), repr, str, len, bool and a call: each raises or
    works; the interpreter survives."""
    body = '''
    ARGSETS = [(), (b"k",), ("k",), ((), {}), ([("PING",)],), (1,)]

    def everything(o, prefix):
        probe(prefix + "repr", lambda: repr(o))
        probe(prefix + "str", lambda: str(o))
        probe(prefix + "len", lambda: len(o))
        probe(prefix + "bool", lambda: bool(o))
        for n, args in enumerate(ARGSETS):
            probe(prefix + "call%d" % n, lambda: o(*args))
        for name in dir(o):
            if name.startswith("_"):
                continue
            probe(prefix + name, lambda: getattr(o, name))
            try:
                attr = getattr(o, name)
            except Exception:
                continue
            if callable(attr):
                for n, args in enumerate(ARGSETS):
                    probe("%s%s%d" % (prefix, name, n), lambda: attr(*args))

    types = sorted(n for n, v in vars(core).items()
                   if isinstance(v, type) and not issubclass(v, BaseException)
                   and getattr(v, "__module__", "").startswith("pyredcache"))
    OUT["types"] = types
    for tname in types:
        T = getattr(core, tname)
        try:
            o = T.__new__(T)
        except Exception as e:
            OUT[tname + ".new"] = ["raise", type(e).__name__]
            continue
        everything(o, tname + ".new.")
        o = T.__new__(T)
        probe(tname + ".badinit", lambda: o.__init__(*[object()] * 7))
        everything(o, tname + ".badinit.")
    '''
    out = run_isolated(impl.__name__, body)
    assert {"Connection", "Crc32Buckets", "KetamaRing", "KeyBuilder", "Promise"} <= set(out["types"])
    assert len(out) > 50  # the probe ran


def test_every_gc_type_survives_its_tp_clear(c_core, redis_server):
    """The garbage collector's tp_clear leaves fields NULL; whatever still
    reaches the object afterwards must get an exception, not a crash
    (before the fix: KeyBuilder's call dereferenced the cleared defaults)."""
    body = '''
    ARGSETS = [(), (b"k",), ("k",), ((), {}), ((1, 2), {}), ([("PING",)],), (1,)]
    empty = __import__("inspect").Parameter.empty

    def connection():
        c = core.Connection(unix_socket_path=ARGS[0])
        c.execute_command("PING")   # connected: clear closes the socket too
        return c

    makers = {
        "Connection": connection,
        "KeyBuilder": lambda: core.KeyBuilder(b"p:", ("a", "b"), (1, 1), (empty, 2), False),
        "KeyBuilder(general)": lambda: core.KeyBuilder(
            b"p:", ("a", "args", "kw"), (1, 2, 4), (empty, empty, empty), False),
        "KetamaRing": lambda: core.KetamaRing(["a", "b"]),
        "Promise": lambda: core.Promise().resolve(1),
        "Crc32Buckets": lambda: core.Crc32Buckets(4),
    }
    for tname, make in makers.items():
        o = make()
        OUT[tname + ".cleared"] = tp_clear(o)
        probe(tname + ".repr", lambda: repr(o))
        for n, args in enumerate(ARGSETS):
            probe(tname + ".call%d" % n, lambda: o(*args))
        for name in dir(o):
            if name.startswith("_"):
                continue
            probe(tname + "." + name, lambda: getattr(o, name))
            try:
                attr = getattr(o, name)
            except Exception:
                continue
            if callable(attr):
                for n, args in enumerate(ARGSETS):
                    probe("%s.%s%d" % (tname, name, n), lambda: attr(*args))
    c = connection()
    tp_clear(c)
    probe("Connection.reinit", lambda: c.__init__(unix_socket_path=ARGS[0]))
    OUT["Connection.pong"] = c.execute_command("PING") == b"PONG"
    '''
    out = run_isolated(c_core.__name__, body, redis_server.unix_socket_path)
    for tname in ("Connection", "KeyBuilder", "KeyBuilder(general)", "KetamaRing", "Promise"):
        assert out[tname + ".cleared"] is True, tname
    assert out["Crc32Buckets.cleared"] is False  # holds no objects, no tp_clear
    for n in (3, 4):  # builder(args, kwargs) after its clear
        assert out["KeyBuilder.call%d" % n] == ["raise", "RuntimeError"]
        assert out["KeyBuilder(general).call%d" % n] == ["raise", "RuntimeError"]
    assert out["Connection.execute_command1"] == ["raise", "AttributeError"]
    assert out["Connection.repr"] == ["ok", "str"]
    assert out["Connection.reinit"] == ["ok", "NoneType"]
    assert out["Connection.pong"] is True


# -- 3. Ctrl-C interrupts a write to a server that does not read ----------------------

@pytest.fixture
def sigint_after():
    """Deliver SIGINT to the main thread `delay` seconds after start(),
    with Python's default handler (KeyboardInterrupt) installed."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timers = []

    def start(delay: float) -> None:
        t = threading.Timer(delay, signal.pthread_kill,
                            (threading.main_thread().ident, signal.SIGINT))
        timers.append(t)
        t.start()

    yield start
    for t in timers:
        t.cancel()
        t.join()
    signal.signal(signal.SIGINT, old)


@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("how", ["execute_command", "pipeline"])
def test_sigint_interrupts_a_write_to_a_stalled_server(impl, sigint_after, how):
    """A server that accepts (here: its listening socket, never accept()ed)
    and never reads; a 64 MiB value fills the socket buffers and the write
    blocks.  Before the fix the C core retried the interrupted write with
    the GIL released and never returned."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    conn = impl.Connection("127.0.0.1", listener.getsockname()[1],
                           socket_timeout=None, socket_connect_timeout=5.0)
    value = b"v" * (64 << 20)
    try:
        sigint_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            if how == "execute_command":
                conn.execute_command("SET", "k", value)
            else:
                conn.pipeline([("PING",), ("SET", "k", value)])
        assert not conn.connected  # half-written: the connection is closed
    finally:
        conn.close()
        listener.close()


@pytest.mark.timeout(120, method="thread")
def test_sigint_interrupts_multi_pipeline_reading_an_endless_reply(impl, sigint_after):
    """A server streams an array reply that never ends, as fast as the
    socket takes it, so the client never waits in poll().  Before the fix
    multi_pipeline checked signals only when poll() was interrupted, and a
    fast stream could keep one read loop going: the SIGINT waited until the
    server stopped.  The server records whether the client left while it
    was still streaming."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    state = {"closed_early": False}

    def serve() -> None:
        s, _ = listener.accept()
        with s:
            s.recv(65536)
            chunk = b":1\r\n" * (1 << 18)  # 1 MiB of integer elements
            try:
                s.sendall(b"*2147483647\r\n")
                for _ in range(512):
                    s.sendall(chunk)
            except OSError:
                state["closed_early"] = True

    server = threading.Thread(target=serve)
    server.start()
    conn = impl.Connection("127.0.0.1", listener.getsockname()[1],
                           socket_timeout=None, socket_connect_timeout=5.0)
    try:
        sigint_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            impl.multi_pipeline([(conn, [("GET", "k")])], timeout=30.0)
    finally:
        conn.close()
        server.join(60)
        listener.close()
    assert state["closed_early"]


# -- 4. guards that release builds kept only as assert(), or lacked --------------------

def test_parse_args_checks_its_parameter_count(c_core):
    """pyrc_parse_args fills a 16-slot array; more parameters were guarded
    by assert() alone, which release builds (-DNDEBUG) drop."""
    f = ctypes.PyDLL(c_core.__file__).pyrc_parse_args
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_void_p,
                  ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int,
                  ctypes.c_int, ctypes.c_void_p]
    names = (ctypes.c_char_p * 17)(*[b"p%d" % i for i in range(17)])
    out = (ctypes.c_void_p * 17)()
    assert f(b"f", None, 0, None, names, 16, 0, 0, out) == 0
    with pytest.raises(SystemError, match="0..16 parameters"):
        f(b"f", None, 0, None, names, 17, 0, 0, out)
    with pytest.raises(SystemError):
        f(b"f", None, 0, None, names, 2, 3, 0, out)


def test_execute_command_refuses_more_than_int_max_arguments(c_core):
    """hiredis takes the argument count as an int; pipeline() refused more
    than INT_MAX arguments, execute_command() did not (before the fix it
    tried to allocate ~96 GiB: MemoryError, or read past the arguments).
    No Python call can pass 2**31 arguments in this much memory, so the
    method's C function is called with a forged count."""
    body = '''
    class MethodDef(ctypes.Structure):
        _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                    ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]

    class CFunction(ctypes.Structure):
        _fields_ = [("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
                    ("m_ml", ctypes.POINTER(MethodDef))]

    conn = core.Connection("127.0.0.1", int(ARGS[0]), socket_connect_timeout=5.0)
    method = conn.execute_command
    ml = CFunction.from_address(id(method)).m_ml.contents
    OUT["name"] = ml.ml_name.decode()
    OUT["fastcall"] = bool(ml.ml_flags & 0x80)
    fn = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object, ctypes.c_void_p,
                           ctypes.c_ssize_t)(ml.ml_meth)
    argv = (ctypes.py_object * 1)(b"PING")
    probe("one", lambda: fn(conn, ctypes.addressof(argv), 1))
    probe("huge", lambda: fn(conn, ctypes.addressof(argv), 2**31))
    '''
    out = run_isolated(c_core.__name__, body, str(free_port()))
    assert out["name"] == "execute_command" and out["fastcall"]
    assert out["one"] == ["raise", "ConnectionError"]  # the call path works
    assert out["huge"] == ["raise", "ValueError"]


def test_keybuilder_after_tp_clear_in_a_reference_cycle(c_core):
    """A KeyBuilder whose default holds the builder itself is in a cycle the
    garbage collector breaks with tp_clear; a call that reaches it after
    that raised nothing and dereferenced NULL before the fix.  gc itself
    never calls an object after clearing it without resurrecting it, so
    tp_clear is called as gc would, through the type slot."""
    body = '''
    import gc

    class Holder:
        def __cache_key__(self):
            return 1

    box = Holder()
    kb = core.KeyBuilder(b"p:", ("a",), (1,), (box,), False)
    box.kb = kb                  # kb -> defaults -> box -> box.__dict__ -> kb
    OUT["key"] = len(kb((), {}))
    probe("traverse", lambda: gc.get_referents(kb))
    OUT["cleared"] = tp_clear(kb)
    probe("call", lambda: kb((), {}))
    probe("call_arg", lambda: kb((1,), {}))
    probe("prefix", lambda: kb.prefix)
    probe("referents", lambda: gc.get_referents(kb))
    del kb, box
    gc.collect()
    '''
    out = run_isolated(c_core.__name__, body)
    assert out["key"] == 2 + 32
    assert out["cleared"] is True
    assert out["call"] == ["raise", "RuntimeError"]
    assert out["call_arg"] == ["raise", "RuntimeError"]
    assert out["prefix"] == ["ok", "NoneType"]


# -- 5. an argument over proto-max-bulk-len is refused before sending --------------------

@pytest.fixture(scope="module")
def over_limit() -> bytes:
    return b"x" * (LIMIT + 1)


@pytest.fixture
def conn(impl, redis_url, redis_server):
    # redis_url: the session server, flushed (check_usable looks for keys)
    c = impl.Connection(redis_server.host, redis_server.port, socket_timeout=30.0)
    yield c
    c.close()


def check_usable(conn, redis_server, *keys: str) -> None:
    assert conn.execute_command("PING") == b"PONG"
    r = redis_server.client()
    for key in keys:
        assert r.exists(key) == 0, key


def test_limit_is_exported(impl):
    assert impl.PROTO_MAX_BULK_LEN == LIMIT


def test_execute_command_refuses_an_argument_over_the_limit(impl, conn, redis_server, over_limit):
    assert conn.execute_command("PING") == b"PONG"
    with pytest.raises(ValueError) as info:
        conn.execute_command("SET", "big", over_limit)
    assert str(info.value) == LIMIT_MESSAGE % (LIMIT + 1)
    check_usable(conn, redis_server, "big")


def test_pipeline_sends_nothing_when_one_argument_is_over_the_limit(impl, conn, redis_server,
                                                                    over_limit):
    with pytest.raises(ValueError) as info:
        conn.pipeline([("SET", "first", "1"), ("SET", "big", over_limit), ("SET", "last", "1")])
    assert str(info.value) == LIMIT_MESSAGE % (LIMIT + 1)
    check_usable(conn, redis_server, "first", "big", "last")


def test_multi_pipeline_and_redlock_round_refuse_an_argument_over_the_limit(
        impl, conn, redis_server, over_limit):
    with pytest.raises(ValueError) as info:
        impl.multi_pipeline([(conn, [("SET", "first", "1"), ("SET", "big", over_limit)])],
                            timeout=30.0)
    assert str(info.value) == LIMIT_MESSAGE % (LIMIT + 1)
    with pytest.raises(ValueError) as info:
        impl.redlock_round([conn], ("SET", "big", over_limit), 1000, 30.0)
    assert str(info.value) == LIMIT_MESSAGE % (LIMIT + 1)
    check_usable(conn, redis_server, "first", "big")


def test_str_and_buffer_arguments_over_the_limit(impl, conn, redis_server):
    text = "é" * (LIMIT // 2 + 1)  # two UTF-8 bytes each: LIMIT + 2 bytes
    with pytest.raises(ValueError) as info:
        conn.execute_command("SET", "big", text)
    assert str(info.value) == LIMIT_MESSAGE % (LIMIT + 2)
    del text
    buf = bytearray(LIMIT + 3)
    with pytest.raises(ValueError) as info:
        conn.pipeline([("SET", "big", memoryview(buf))])
    assert str(info.value) == LIMIT_MESSAGE % (LIMIT + 3)
    check_usable(conn, redis_server, "big")


def test_an_argument_of_exactly_the_limit_is_sent(impl):
    """The limit itself is allowed: the call gets as far as connecting (to a
    port nobody listens on)."""
    dead = impl.Connection("127.0.0.1", free_port(), socket_connect_timeout=5.0)
    with pytest.raises(ConnectionError):
        dead.execute_command("SET", "k", b"x" * LIMIT)
