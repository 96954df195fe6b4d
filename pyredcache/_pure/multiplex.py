"""Pure-Python twin of csrc/multiplex.c: ``multi_pipeline``, one pipeline
on each of many connections, all in flight at once.

The C file's header states the design; this twin follows it step for step
with :mod:`select.poll` and non-blocking ``send``/``recv`` calls
(``MSG_DONTWAIT``), feeding the bytes read into each connection's own
:class:`~pyredcache._pure.reply.Reader`.  A job that fails (refused, dropped,
bad RESP, silent for ``timeout`` seconds) gets the exception in its result
slot and its connection closed; the other jobs go on to the end.
"""

from __future__ import annotations

import math
import select
import socket
import time
from typing import Any, Sequence

from ..exceptions import ConnectionError, ProtocolError, TimeoutError
from .connection import Connection, encode_commands

__all__ = ["multi_pipeline"]

_READ_SIZE = 16 * 1024
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_POLLERRHUP = select.POLLERR | select.POLLHUP


class _Job:
    __slots__ = ("conn", "out", "sent", "ncmds", "replies", "result", "done")

    def __init__(self, conn: Any, out: bytes, ncmds: int) -> None:
        self.conn = conn
        self.out = memoryview(out)
        self.sent = 0
        self.ncmds = ncmds
        self.replies: list = []
        self.result: Any = None
        self.done = False


def _timeout_ms(timeout: Any) -> int | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            "timeout must be a number of seconds or None, not %s" % type(timeout).__name__
        )
    if not (timeout > 0 and math.isfinite(timeout)) or timeout > (2**31 - 1) / 1000:
        raise ValueError("timeout must be > 0 seconds, got %r" % (timeout,))
    return math.ceil(timeout * 1000)


def multi_pipeline(jobs: Sequence[tuple[Any, Sequence[Sequence[Any]]]], /,
                   timeout: float | None = None, max_concurrency: int = 64) -> list:
    """Run one pipeline on each of many connections, all in flight at once.

    ``jobs``: (connection, commands) pairs, each connection a distinct
    :class:`~pyredcache._pure.connection.Connection`.  ``timeout``: seconds any one
    wait for progress may last (None: for ever).  ``max_concurrency``: how
    many jobs are in flight at most.

    Returns one item per job, in order: its list of replies (error replies
    as ResponseError instances), or the ConnectionError / TimeoutError /
    ProtocolError instance for a job whose server failed (its connection is
    closed).  Raises TypeError/ValueError for malformed arguments and
    RuntimeError for a connection in use elsewhere, before anything is sent.
    """
    wait_ms = _timeout_ms(timeout)
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
        raise TypeError("max_concurrency must be an int")
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be >= 1, got %d" % max_concurrency)
    if isinstance(jobs, (str, bytes)):
        raise TypeError("jobs must be a sequence of (connection, commands) pairs")
    try:  # any iterable, taken whole first, as the C core does (PySequence_Tuple)
        jobs = tuple(jobs)
    except TypeError:
        raise TypeError("jobs must be a sequence of (connection, commands) pairs") from None
    work: list[_Job] = []
    for i, pair in enumerate(jobs):
        if type(pair) is not tuple or len(pair) != 2:
            raise TypeError("jobs[%d] must be a (connection, commands) tuple" % i)
        conn, commands = pair
        if type(conn) is not Connection:
            raise TypeError(
                "jobs[%d][0] must be a pyredcache._pure.Connection, not %s"
                % (i, type(conn).__name__)
            )
        checked = _checked_commands(commands)
        work.append(_Job(conn, encode_commands(checked), len(checked)))
    # Allocated before any busy lock is taken: storing into it cannot fail
    # (MemoryError) and leave a connection locked for good.
    entered: list[Any] = [None] * len(work)
    count = 0
    try:
        for job in work:
            job.conn._enter()  # RuntimeError if another thread has it
            entered[count] = job.conn
            count += 1
        _run(work, wait_ms, timeout, max_concurrency)
    finally:
        # No iterator here: its allocation could fail (MemoryError) and
        # leave the connections locked for good.
        while count:
            count -= 1
            entered[count]._leave()
    return [job.result for job in work]


def _checked_commands(commands: Any) -> list:
    if isinstance(commands, (str, bytes)):
        raise TypeError("commands must be an iterable of commands")
    try:
        items = list(commands)
    except TypeError:
        raise TypeError("commands must be an iterable of commands") from None
    out = []
    for cmd in items:
        if isinstance(cmd, (str, bytes)):
            raise TypeError(
                "each command must be a sequence of arguments (a tuple or list), not a string"
            )
        try:
            out.append(tuple(cmd))
        except TypeError:
            raise TypeError(
                "each command must be a sequence of arguments (a tuple or list)"
            ) from None
    return out


def _fail(job: _Job, exc: BaseException, running: list) -> None:
    job.conn._drop()
    _finish(job, exc, running)


def _finish(job: _Job, result: Any, running: list) -> None:
    if job in running:
        sock = job.conn._sock
        if sock is not None:
            sock.settimeout(job.conn.socket_timeout)
        running.remove(job)  # last: until it is blocking again, a failure drops it
    job.done = True
    if isinstance(result, BaseException):
        # a result, not a raised error: its traceback would only tie this
        # call's frames (and every connection in them) into a cycle
        result.__traceback__ = None
    job.result = result


def _run(work: list, wait_ms: int | None, timeout: Any, max_concurrency: int) -> None:
    running: list[_Job] = []
    waiting: list[_Job] = []
    for job in reversed(work):
        if job.ncmds:
            waiting.append(job)
        else:  # nothing to send: done at once, no socket touched
            _finish(job, [], running)
    try:
        while True:
            while len(running) < max_concurrency and waiting:
                job = waiting.pop()
                try:
                    job.conn._ensure_connected()
                except Exception as exc:  # refused, AUTH failed...: this job only
                    _finish(job, exc, running)
                    continue
                # non-blocking for the fan-out; the timeout comes back in
                # _finish.  Running first: a failure from here on drops it.
                running.append(job)
                job.conn._sock.setblocking(False)
            if not running:
                return
            poller = select.poll()
            by_fd = {}
            for job in running:
                sock = job.conn._sock
                events = _POLLIN | (_POLLOUT if job.sent < len(job.out) else 0)
                poller.register(sock.fileno(), events)
                by_fd[sock.fileno()] = job
            # busy-poll first, as a single connection's wait does
            budget = max(job.conn._spin_budget() for job in running)
            ready = poller.poll(0) if budget else []
            if budget:
                deadline = time.monotonic_ns() + budget * 1000
                while not ready and time.monotonic_ns() < deadline:
                    ready = poller.poll(0)
                hit = {fd for fd, _ in ready}
                for job in running:
                    fd = job.conn._sock.fileno()
                    if not ready or fd in hit:
                        job.conn._spin_account(bool(ready))
            if not ready:
                ready = poller.poll(wait_ms)
            if not ready:
                for job in list(running):
                    _fail(job, TimeoutError(
                        "Timeout reading from %s after %r seconds"
                        % (job.conn._describe(), timeout)), running)
                continue
            for fd, revents in ready:
                _io(by_fd[fd], revents, running)
    except BaseException:
        # KeyboardInterrupt and the like: every stream in flight is out of step
        for job in running:
            job.conn._drop()
        raise


def _io(job: _Job, revents: int, running: list) -> None:
    conn = job.conn
    sock = conn._sock
    try:
        if job.sent < len(job.out) and revents & (_POLLOUT | _POLLERRHUP):
            while job.sent < len(job.out):
                try:
                    job.sent += sock.send(job.out[job.sent:], _DONTWAIT | _NOSIGNAL)
                except BlockingIOError:
                    break
        if revents & (_POLLIN | _POLLERRHUP):
            while True:
                try:
                    chunk = sock.recv(_READ_SIZE, _DONTWAIT)
                except BlockingIOError:
                    break
                if not chunk:
                    _parse_replies(job, running)
                    if not job.done:
                        _fail(job, ConnectionError(
                            "Server closed the connection: %s: end of stream"
                            % conn._describe()), running)
                    return
                conn._reader.feed(chunk)
                if len(chunk) < _READ_SIZE:
                    break
    except OSError as exc:
        _fail(job, ConnectionError(
            "Error while talking to %s: %s" % (conn._describe(), exc.strerror or exc)),
            running)
        return
    _parse_replies(job, running)


def _parse_replies(job: _Job, running: list) -> None:
    reader = job.conn._reader
    while len(job.replies) < job.ncmds:
        try:
            reply = reader.gets()
        except ProtocolError as exc:
            _fail(job, job.conn._protocol_error(exc), running)
            return
        if reply is False:  # no whole reply yet
            return
        job.replies.append(reply)
    _finish(job, job.replies, running)
