"""Pure-Python twin of ``pyredcache._core``.

It exports the same names with the same behaviour as the C extension and is
the reference for it: every test that touches the core runs against both.
It is used when the extension is not built (PyPy, no compiler, no
libhiredis) or when ``PYREDCACHE_NO_EXTENSIONS=1`` is set.

The connection speaks RESP2 over a plain socket.  Its reply parser enforces
the same limits as hiredis' (nesting depth, length ranges), so a hostile
reply fails the same way on both sides.
"""

from __future__ import annotations

import os
import select
import socket
import time
from typing import Any, Iterable, Sequence

from ._codec_py import MAX_DEPTH, dumps, loads
from ._hashing_py import Crc32Buckets, KetamaRing, crc32
from ._keys_py import KeyBuilder
from ._multiplex_py import multi_pipeline
from ._promise_py import Promise
from ._redlock_py import redlock_round
from .exceptions import (
    ConnectionError,
    ProtocolError,
    ResponseError,
    TimeoutError,
)

__all__ = ["Connection", "KeyBuilder", "MAX_DEPTH", "Promise", "dumps", "loads",
           "implementation", "encode_arg", "multi_pipeline", "redlock_round",
           "crc32", "Crc32Buckets", "KetamaRing"]

implementation = "python"

# hiredis keeps a fixed stack of read tasks: an array nested more than 7
# levels below the top-level reply is a protocol error there, so it is here.
_MAX_NESTING = 7
_READ_SIZE = 16 * 1024
_INT_MAX = 2**31 - 1

#: Busy-poll defaults and limits, microseconds (see Connection).
BUSY_POLL_DEFAULT_US = 50
BUSY_POLL_MAX_US = 1_000_000
_SPIN_MISS_LIMIT = 4
_SPIN_BACKOFF = 64


def _default_busy_poll() -> int:
    try:
        ncpu = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        ncpu = os.cpu_count() or 2
    return BUSY_POLL_DEFAULT_US if ncpu > 1 else 0


# Incremented in a forked child; a connection made in another generation
# belongs to the parent and is never used by the child.
_fork_generation = 0


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def encode_arg(arg: Any) -> bytes:
    """Encode one command argument: bytes as is, str as UTF-8, int and float
    in decimal (float as ``repr``, which round-trips).  Anything else,
    ``bool`` included, raises ``TypeError``."""
    t = type(arg)
    if t is bytes:
        return arg
    if t is str:
        return arg.encode("utf-8")
    if t is int:
        return b"%d" % arg
    if t is float:
        return repr(arg).encode("ascii")
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg)
    if isinstance(arg, bool):
        raise TypeError(
            "invalid command argument of type 'bool': convert it to int or str first"
        )
    if isinstance(arg, str):
        return str(arg).encode("utf-8")
    if isinstance(arg, int):
        return b"%d" % int(arg)
    if isinstance(arg, float):
        return repr(float(arg)).encode("ascii")
    raise TypeError(
        "invalid command argument of type %r: expected bytes, str, int or float"
        % type(arg).__name__
    )


def _pack(commands: Iterable[Sequence[Any]]) -> bytes:
    out = []
    for args in commands:
        if len(args) == 0:
            raise ValueError("a command needs at least one argument (its name)")
        out.append(b"*%d\r\n" % len(args))
        for arg in args:
            b = encode_arg(arg)
            out.append(b"$%d\r\n" % len(b))
            out.append(b)
            out.append(b"\r\n")
    return b"".join(out)


class _OwnedSocket(socket.socket):
    """The socket of one Connection, which closes it.

    When a Connection and its socket become garbage together in a reference
    cycle (an exception's traceback holding the Connection, say), the
    collector runs their finalizers in any order: a plain socket finalized
    first would warn that it was left open although its owner was about to
    close it.  This one closes itself quietly instead, as the Connection's
    own ``__del__`` would have.
    """

    __slots__ = ()

    def __del__(self) -> None:
        self.close()


class _Incomplete(Exception):
    """The buffer does not hold a whole reply yet."""


def _parse_int(line: bytes, what: str) -> int:
    # hiredis accepts an optional '-' then digits only.
    body = line[1:] if line[:1] == b"-" else line
    if not body or not body.isdigit():
        raise ProtocolError("Bad %s value" % what)
    return int(line)


class Connection:
    """One connection to one Redis server, speaking RESP2.

    ``Connection(host='localhost', port=6379, *, unix_socket_path=None, db=0,
    username=None, password=None, socket_timeout=None,
    socket_connect_timeout=None, busy_poll=None)``

    ``busy_poll``: microseconds (int, 0..1000000) that a wait for a reply
    spins on the socket before it sleeps; ``None``: 50 when this process may
    run on two CPUs or more, else 0 (never spin).  Four spins in a row that
    end empty make the next 64 waits sleep at once.

    Timeouts are in seconds (float); ``None`` waits forever.  The socket is
    opened on first use and again after the server dropped it.  A
    connection is not shared between threads: a pool hands each thread its
    own.  In a forked child, a connection made by the parent is left alone
    (never read, written or shut down) and a new one is opened.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 6379,
        *,
        unix_socket_path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        busy_poll: int | None = None,
    ) -> None:
        if not isinstance(host, str):
            raise TypeError("host must be str, not %s" % type(host).__name__)
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError("port must be int, not %s" % type(port).__name__)
        if not 0 < port < 65536:
            raise ValueError("port must be an int in 1..65535, got %r" % (port,))
        if unix_socket_path is not None and not isinstance(unix_socket_path, str):
            raise TypeError("unix_socket_path must be str or None")
        if isinstance(db, bool) or not isinstance(db, int):
            raise TypeError("db must be int, not %s" % type(db).__name__)
        if db < 0:
            raise ValueError("db must be a non-negative int, got %r" % (db,))
        for name, value in (("socket_timeout", socket_timeout),
                            ("socket_connect_timeout", socket_connect_timeout)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError("%s must be a number of seconds or None" % name)
                if not value > 0:
                    raise ValueError("%s must be > 0 seconds, got %r" % (name, value))
        for name, value in (("username", username), ("password", password)):
            if value is not None and not isinstance(value, str):
                raise TypeError("%s must be str or None" % name)
        if username is not None and password is None:
            raise ValueError("username needs a password")
        if busy_poll is None:
            busy_poll = _default_busy_poll()
        elif isinstance(busy_poll, bool) or not isinstance(busy_poll, int):
            raise TypeError("busy_poll must be an int of microseconds or None, not %s"
                            % type(busy_poll).__name__)
        elif not 0 <= busy_poll <= BUSY_POLL_MAX_US:
            raise ValueError("busy_poll must be 0..%d microseconds, got %r"
                             % (BUSY_POLL_MAX_US, busy_poll))
        self.busy_poll = busy_poll
        self.busy_poll_hits = 0
        self.busy_poll_misses = 0
        self._spin_misses = 0
        self._spin_skip = 0
        self.host = host
        self.port = port
        self.unix_socket_path = unix_socket_path
        self.db = db
        self.username = username
        self.password = password
        self.socket_timeout = None if socket_timeout is None else float(socket_timeout)
        self.socket_connect_timeout = (
            None if socket_connect_timeout is None else float(socket_connect_timeout)
        )
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._pos = 0
        self._generation = -1
        self._busy = False

    # -- connection management -------------------------------------------------

    def _describe(self) -> str:
        if self.unix_socket_path is not None:
            return self.unix_socket_path
        return "%s:%d" % (self.host, self.port)

    @property
    def connected(self) -> bool:
        """True while a socket made by this process is open."""
        return self._sock is not None and self._generation == _fork_generation

    def connect(self) -> None:
        """Open the socket now (it is otherwise opened on first use)."""
        self._drop()
        try:
            if self.unix_socket_path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.socket_connect_timeout)
                    sock.connect(self.unix_socket_path)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection(
                    (self.host, self.port), timeout=self.socket_connect_timeout
                )
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except socket.timeout:
            raise ConnectionError(
                "Error connecting to %s: timed out after %s seconds"
                % (self._describe(), self.socket_connect_timeout)
            ) from None
        except OSError as exc:
            raise ConnectionError(
                "Error connecting to %s: %s" % (self._describe(), exc.strerror or exc)
            ) from None
        sock = _OwnedSocket(fileno=sock.detach())
        sock.settimeout(self.socket_timeout)
        self._sock = sock
        self._generation = _fork_generation
        self._buf = bytearray()
        self._pos = 0
        try:
            if self.password is not None:
                if self.username is not None:
                    self._roundtrip([("AUTH", self.username, self.password)], True)
                else:
                    self._roundtrip([("AUTH", self.password)], True)
            if self.db:
                self._roundtrip([("SELECT", self.db)], True)
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        self._buf = bytearray()
        self._pos = 0
        if sock is not None:
            # In a forked child this closes only the child's copy of the fd;
            # the parent's connection is untouched (no shutdown()).
            sock.close()

    def close(self) -> None:
        """Close the socket; the next command opens a new one."""
        self._drop()

    def __del__(self) -> None:
        sock = self.__dict__.get("_sock")
        if sock is not None:
            sock.close()

    def _ensure_connected(self) -> None:
        if self._sock is None or self._generation != _fork_generation:
            if self._generation != _fork_generation:
                self._sock = None  # the parent's: leave it alone
            self.connect()
            return
        # Nothing is expected from the server between commands: if the
        # socket is readable it was closed (restart, CLIENT KILL, idle
        # timeout) or is out of step, so it is replaced before anything is
        # sent on it.
        try:  # poll(), not select(): select refuses fds >= FD_SETSIZE
            poller = select.poll()
            poller.register(self._sock.fileno(), select.POLLIN)
            readable = bool(poller.poll(0))
        except (OSError, ValueError):
            readable = True
        # Bytes past the last reply already read count as out of step too.
        if readable or self._pos < len(self._buf):
            self.connect()

    # -- commands -------------------------------------------------------------

    def execute_command(self, *args: Any) -> Any:
        """Send one command and return its decoded reply: bytes, int, list
        or None.  An error reply raises :class:`ResponseError`."""
        if not args:
            raise TypeError("execute_command() needs at least the command name")
        reply = self._roundtrip([args], False)[0]
        if type(reply) is ResponseError:
            raise reply
        return reply

    def pipeline(self, commands: Iterable[Sequence[Any]]) -> list:
        """Write all ``commands`` (each a sequence of arguments) at once and
        return their replies in order; an error reply takes its slot as a
        :class:`ResponseError` instance instead of being raised."""
        checked = []
        for cmd in commands:
            if isinstance(cmd, (str, bytes)):
                raise TypeError(
                    "each command must be a sequence of arguments (a tuple or "
                    "list), not a string"
                )
            try:
                checked.append(tuple(cmd))
            except TypeError:
                raise TypeError(
                    "each command must be a sequence of arguments (a tuple or list)"
                ) from None
        commands = checked
        if not commands:
            return []
        return self._roundtrip(commands, False)

    def _roundtrip(self, commands: list, raise_errors: bool) -> list:
        packed = _pack(commands)  # TypeError/ValueError before any I/O
        if raise_errors:  # during connect(): the socket was just opened
            sock = self._sock
            assert sock is not None
            return self._exchange(sock, packed, len(commands), True)
        if self._busy:
            raise RuntimeError(
                "Connection is in use by another thread; give each thread its "
                "own connection (a pool does)"
            )
        self._busy = True
        try:
            self._ensure_connected()
            sock = self._sock
            assert sock is not None
            return self._exchange(sock, packed, len(commands), False)
        finally:
            self._busy = False

    def _exchange(self, sock: socket.socket, packed: bytes, n: int, raise_errors: bool) -> list:
        try:
            sock.sendall(packed)
            replies = [self._read_reply(sock) for _ in range(n)]
        except socket.timeout:
            self._drop()
            raise TimeoutError(
                "Timeout reading from %s after %s seconds"
                % (self._describe(), self.socket_timeout)
            ) from None
        except ProtocolError:
            self._drop()
            raise
        except OSError as exc:
            self._drop()
            raise ConnectionError(
                "Error while talking to %s: %s" % (self._describe(), exc.strerror or exc)
            ) from None
        except BaseException:
            # KeyboardInterrupt or similar mid-reply: the stream is out of step.
            self._drop()
            raise
        if raise_errors:
            for reply in replies:
                if type(reply) is ResponseError:
                    raise reply
        return replies

    # -- RESP2 reader -----------------------------------------------------------

    def _read_reply(self, sock: socket.socket) -> Any:
        while True:
            start = self._pos
            try:
                reply = self._parse(0)
            except _Incomplete:
                self._pos = start
            else:
                if self._pos > _READ_SIZE and self._pos * 2 > len(self._buf):
                    del self._buf[: self._pos]
                    self._pos = 0
                return reply
            if self.busy_poll:
                self._spin(sock)
            chunk = sock.recv(_READ_SIZE)
            if not chunk:
                raise ConnectionError("Server %s closed the connection" % self._describe())
            self._buf += chunk

    def _spin_budget(self) -> int:
        """Microseconds the next wait may spin (0: block at once).  After
        four spins in a row that ended empty, the next 64 waits block at
        once; then one spin probes whether spinning pays again."""
        if self._spin_skip:
            self._spin_skip -= 1
            return 0
        return self.busy_poll

    def _spin_account(self, hit: bool) -> None:
        """Record how a wait that spun ended (hit: the reply came while
        spinning)."""
        if hit:
            self.busy_poll_hits += 1
            self._spin_misses = 0
            return
        self.busy_poll_misses += 1
        self._spin_misses += 1
        if self._spin_misses >= _SPIN_MISS_LIMIT:
            self._spin_misses = _SPIN_MISS_LIMIT  # one more empty probe backs off again
            self._spin_skip = _SPIN_BACKOFF

    def _spin(self, sock: socket.socket) -> None:
        """Busy-poll: return once the socket is readable or the spin budget
        has passed (see Connection, and spin_read in the C core for why)."""
        budget = self._spin_budget()
        if not budget:
            return
        deadline = time.monotonic_ns() + budget * 1000
        poller = select.poll()  # not select(): it refuses fds >= FD_SETSIZE
        poller.register(sock.fileno(), select.POLLIN)
        while not poller.poll(0):
            if time.monotonic_ns() >= deadline:
                self._spin_account(False)
                return
        self._spin_account(True)

    def _line(self) -> bytes:
        end = self._buf.find(b"\r\n", self._pos)
        if end < 0:
            raise _Incomplete
        line = bytes(self._buf[self._pos:end])
        self._pos = end + 2
        return line

    def _parse(self, depth: int) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            n = _parse_int(rest, "integer")
            if n == -1:
                return None
            if n < -1:
                raise ProtocolError("Bulk string length out of range")
            end = self._pos + n
            if len(self._buf) < end + 2:
                raise _Incomplete
            data = bytes(self._buf[self._pos:end])
            self._pos = end + 2
            return data
        if kind == b":":
            return _parse_int(rest, "integer")
        if kind == b"+":
            return rest
        if kind == b"-":
            return ResponseError(rest.decode("utf-8", "replace"))
        if kind == b"*":
            n = _parse_int(rest, "integer")
            if n == -1:
                return None
            if depth > _MAX_NESTING:
                raise ProtocolError(
                    "No support for nested multi bulk replies with depth > %d" % _MAX_NESTING
                )
            if n < -1 or n > _INT_MAX:
                raise ProtocolError("Multi-bulk length out of range")
            return [self._parse(depth + 1) for _ in range(n)]
        raise ProtocolError("Protocol error, got %r as reply type byte" % kind.decode("latin-1"))

    def __repr__(self) -> str:
        return "<%s.Connection %s db=%d>" % (__name__, self._describe(), self.db)
