"""Pure-Python twin of csrc/connection.c: one connection to one Redis
server, and the encoding of commands into RESP.

The connection speaks RESP2 over a plain socket and parses replies with
:class:`~pyredcache._pure.reply.Reader`, the twin of hiredis' reader.  A
connection belongs to one caller at a time: :meth:`Connection._enter`
takes its busy lock without waiting and raises RuntimeError when another
thread holds it.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from typing import Any, Iterable, Sequence

from ..exceptions import (
    ConnectionError,
    ProtocolError,
    ResponseError,
    TimeoutError,
)
from .reply import _INT_MAX, Reader

__all__ = ["BUSY_POLL_DEFAULT_US", "BUSY_POLL_MAX_US", "Connection", "PROTO_MAX_BULK_LEN",
           "encode_arg", "encode_commands"]

_READ_SIZE = 16 * 1024

#: Redis' default proto-max-bulk-len, bytes: the server refuses a longer
#: bulk string (and drops the connection), so one is refused before sending.
PROTO_MAX_BULK_LEN = 536870912
_TOO_LONG = ("command argument of %d bytes is over 536870912 bytes, Redis's limit "
             "for one bulk string (proto-max-bulk-len)")

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


_fork_hook_lock = threading.Lock()
_fork_hook_registered = False


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


def _register_fork_hook() -> None:
    """Register :func:`_after_fork_in_child` once, when the first Connection
    is made (as the C core calls pthread_atfork then), not at import."""
    global _fork_hook_registered
    with _fork_hook_lock:
        if not _fork_hook_registered:
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_registered = True


def encode_arg(arg: Any) -> bytes:
    """Encode one command argument: bytes as is, str as UTF-8, int and float
    in decimal (float as ``repr``, which round-trips).  Anything else,
    ``bool`` included, raises ``TypeError``; an argument longer than
    :data:`PROTO_MAX_BULK_LEN` bytes (512 MiB, Redis' default limit) raises
    ``ValueError``."""
    t = type(arg)
    if t is bytes:
        if len(arg) > PROTO_MAX_BULK_LEN:
            raise ValueError(_TOO_LONG % len(arg))
        return arg
    if t is str:
        return _checked_length(arg.encode("utf-8"))
    if t is int:
        return b"%d" % arg
    if t is float:
        return repr(arg).encode("ascii")
    if isinstance(arg, (bytes, bytearray, memoryview)):
        size = arg.nbytes if isinstance(arg, memoryview) else len(arg)
        if size > PROTO_MAX_BULK_LEN:  # before copying it
            raise ValueError(_TOO_LONG % size)
        return bytes(arg)
    if isinstance(arg, bool):
        raise TypeError(
            "invalid command argument of type 'bool': convert it to int or str first"
        )
    if isinstance(arg, str):
        return _checked_length(str(arg).encode("utf-8"))
    if isinstance(arg, int):
        return b"%d" % int(arg)
    if isinstance(arg, float):
        return repr(float(arg)).encode("ascii")
    raise TypeError(
        "invalid command argument of type %r: expected bytes, str, int or float"
        % type(arg).__name__
    )


def _checked_length(data: bytes) -> bytes:
    if len(data) > PROTO_MAX_BULK_LEN:
        raise ValueError(_TOO_LONG % len(data))
    return data


def encode_commands(commands: Iterable[Sequence[Any]]) -> bytes:
    """The RESP bytes of ``commands`` (each a sequence of arguments, see
    :func:`encode_arg`), as one pipeline.  ValueError for an empty command."""
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


class Connection:
    """One connection to one Redis server, speaking RESP2.

    ``Connection(host='localhost', port=6379, *, unix_socket_path=None, db=0,
    username=None, password=None, socket_timeout=1.0,
    socket_connect_timeout=1.0, busy_poll=None)``

    ``busy_poll``: microseconds (int, 0..1000000) that a wait for a reply
    spins on the socket before it sleeps; ``None``: 50 when this process may
    run on two CPUs or more, else 0 (never spin).  Four spins in a row that
    end empty make the next 64 waits sleep at once.

    ``socket_timeout`` bounds each wait for a reply, ``socket_connect_timeout``
    the connect (TCP or unix socket): seconds (float > 0), 1.0 each by
    default; past it TimeoutError or ConnectionError is raised.  ``None``
    waits for ever (not recommended: a server that accepts and never
    answers, or is stopped, hangs the call).  The socket is
    opened on first use and again after the server dropped it.  A
    connection is not shared between threads: a pool hands each thread its
    own.  In a forked child, a connection made by the parent is left alone
    (never read, written or shut down) and a new one is opened.
    """

    # What an uninitialised connection (``__init__`` not called, or failed)
    # answers, as the C type does: no spinning, no counts.
    busy_poll = 0
    busy_poll_hits = 0
    busy_poll_misses = 0

    def __init__(
        self,
        host: str = "localhost",
        port: int = 6379,
        *,
        unix_socket_path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        socket_timeout: float | None = 1.0,
        socket_connect_timeout: float | None = 1.0,
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
        if not 0 <= db <= _INT_MAX:  # C keeps it in an int
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
        _register_fork_hook()
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
        self._reader = Reader()
        self._generation = -1
        try:
            self._busy = threading.Lock()
        except RuntimeError:  # CPython's "can't allocate lock": out of memory
            raise MemoryError("can't allocate the connection's lock") from None

    # -- connection management -------------------------------------------------

    def _describe(self) -> str:
        if self.unix_socket_path is not None:
            return self.unix_socket_path
        return "%s:%d" % (self.host, self.port)

    @property
    def connected(self) -> bool:
        """True while a socket made by this process is open (False for a
        connection whose ``__init__`` was not called or failed, as in C)."""
        sock = self.__dict__.get("_sock")
        return sock is not None and self._generation == _fork_generation

    def _enter(self) -> None:
        """Take the busy lock without waiting; RuntimeError if another
        caller holds it.  The caller releases it (:meth:`_leave`) when done.

        A lock, not a flag: a thread switch between testing a flag and
        setting it would let two threads in at once (the C core's flag
        cannot race, since it is tested and set under the GIL with no
        Python code in between)."""
        if not self._busy.acquire(False):
            raise RuntimeError(
                "Connection is in use by another thread; give each thread its "
                "own connection (a pool does)"
            )

    def _leave(self) -> None:
        self._busy.release()

    def connect(self) -> None:
        """Open the socket now (it is otherwise opened on first use), closing
        any open one.  RuntimeError while another thread uses the
        connection."""
        self._enter()
        try:
            self._connect()
        finally:
            self._leave()

    def _connect(self) -> None:
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
        self._reader = Reader()
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
        self._reader = Reader()
        if sock is not None:
            # In a forked child this closes only the child's copy of the fd;
            # the parent's connection is untouched (no shutdown()).
            sock.close()

    def close(self) -> None:
        """Close the socket; the next command opens a new one.
        RuntimeError while another thread uses the connection."""
        self._enter()
        try:
            self._drop()
        finally:
            self._leave()

    def __del__(self) -> None:
        sock = self.__dict__.get("_sock")
        if sock is not None:
            sock.close()

    def _ensure_connected(self) -> None:
        if self._sock is None or self._generation != _fork_generation:
            if self._generation != _fork_generation:
                self._sock = None  # the parent's: leave it alone
            self._connect()
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
        if readable or not self._reader._idle():
            self._connect()

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
        packed = encode_commands(commands)  # TypeError/ValueError before any I/O
        if raise_errors:  # during connect(): the socket was just opened
            sock = self._sock
            assert sock is not None
            return self._exchange(sock, packed, len(commands), True)
        self._enter()
        try:
            self._ensure_connected()
            sock = self._sock
            assert sock is not None
            return self._exchange(sock, packed, len(commands), False)
        finally:
            self._leave()

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

    # -- replies ----------------------------------------------------------------

    def _read_reply(self, sock: socket.socket) -> Any:
        reader = self._reader
        while True:
            try:
                reply = reader.gets()
            except ProtocolError as exc:
                raise self._protocol_error(exc) from None
            if reply is not False:
                return reply
            if self.busy_poll:
                self._spin(sock)
            chunk = sock.recv(_READ_SIZE)
            if not chunk:
                raise ConnectionError("Server %s closed the connection" % self._describe())
            reader.feed(chunk)

    def _protocol_error(self, exc: ProtocolError) -> ProtocolError:
        """The reader's error, naming the server as the C core does."""
        return ProtocolError("Protocol error from %s: %s" % (self._describe(), exc))

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

    def __repr__(self) -> str:
        if "_busy" not in self.__dict__:  # __init__ not called, or failed
            return "<%s.Connection not initialised>" % __name__
        return "<%s.Connection %s db=%d>" % (__name__, self._describe(), self.db)
