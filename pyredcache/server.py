"""A private ``redis-server`` for demos, examples and tests.

:class:`EmbeddedRedis` starts the ``redis-server`` program in a fresh
temporary directory, listening only on a unix socket inside it (no TCP port),
without persistence, and stops it again::

    from pyredcache import Cache
    from pyredcache.server import EmbeddedRedis

    with EmbeddedRedis() as server:
        cache = Cache.from_url(server.url)
        cache.set("key", "value")

It needs the ``redis-server`` executable (Debian/Ubuntu package
``redis-server``); it does not bundle one.  This module talks to the server
with a plain socket, so it does not depend on pyredcache's core.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from types import TracebackType
from typing import IO, Optional, Sequence, Type

from .exceptions import PyRedCacheError

__all__ = ["EmbeddedRedis", "EmbeddedRedisError"]

#: Longest unix socket path the kernel accepts (``sun_path`` is 108 bytes on
#: Linux, including the terminating NUL; 104 on the BSDs and macOS).
_MAX_SOCKET_PATH = 103

_INSTALL_HINT = (
    "install the redis-server package (Debian/Ubuntu: "
    "`apt-get install redis-server`; Fedora: `dnf install redis`; "
    "macOS: `brew install redis`), or pass executable=... "
    "with the path of a redis-server binary"
)


class EmbeddedRedisError(PyRedCacheError):
    """An embedded ``redis-server`` could not be started.

    Raised when the executable is missing or cannot be run, when the server
    exits during startup (the message ends with the tail of its log), or when
    it does not answer ``PING`` within ``startup_timeout`` seconds.  Nothing is
    left behind: the process is stopped and its temporary directory removed.
    """


def _stop(proc: "subprocess.Popen[bytes]", directory: str, owner_pid: int,
          stop_timeout: float) -> None:
    """Stop ``proc`` and remove ``directory``.

    Called by :meth:`EmbeddedRedis.close`, when the object is garbage
    collected, and at interpreter exit, through one :func:`weakref.finalize`,
    so it runs at most once.  It must not refer to the :class:`EmbeddedRedis`
    itself, or the finalizer would keep the object alive.

    A forked child inherits the parent's finalizers; only the process that
    started the server stops it (``owner_pid``).
    """
    if os.getpid() != owner_pid:
        return
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:  # exited between poll() and the signal
            proc.wait()
    shutil.rmtree(directory, ignore_errors=True)


def _log_tail(directory: str, lines: int = 20) -> str:
    """The last ``lines`` lines of the server's log and stderr, for errors."""
    parts = []
    for name in ("redis.stderr", "redis.log"):
        try:
            with open(os.path.join(directory, name), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        tail = "\n".join(text.strip().splitlines()[-lines:])
        if tail:
            parts.append("--- %s ---\n%s" % (name, tail))
    return "\n".join(parts) if parts else "(the server wrote nothing to its log)"


def _ping(path: str, timeout: float) -> Optional[bytes]:
    """Send ``PING`` over the unix socket at ``path``.

    Returns the first reply line (``b"+PONG"`` when the server is ready), or
    ``None`` when nothing is listening yet or no full line arrived within
    ``timeout`` seconds.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(max(timeout, 0.01))
        sock.connect(path)
        sock.sendall(b"PING\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(512)
            if not chunk:
                return None
            data += chunk
        return data.split(b"\r\n", 1)[0]
    except OSError:  # not there yet, refused, or timed out
        return None
    finally:
        sock.close()


class EmbeddedRedis:
    """A private ``redis-server`` process on a unix socket in a temp dir.

    The server is started by the constructor, which returns once it answers
    ``PING``.  It listens on no TCP port (``--port 0``) and only on
    ``<tempdir>/redis.sock`` (mode 700), and persists nothing
    (``--save "" --appendonly no``).  Its log is ``<tempdir>/redis.log``.

    Stop it with :meth:`close` or by using the object as a context manager.
    It is also stopped when the object is garbage collected and at
    interpreter exit (the exit hook holds only a weak reference).  A process
    killed with ``SIGKILL`` cannot run that hook, and leaves the server
    running.

    :param executable: path of the ``redis-server`` program; by default the
        one found on ``PATH``.
    :param extra_args: more command-line arguments for the server, e.g.
        ``("--maxmemory", "10mb")``; they come last, so they override the
        defaults above.
    :param startup_timeout: seconds to wait for the server to answer ``PING``.
    :param stop_timeout: seconds :meth:`close` waits after ``SIGTERM`` before
        it sends ``SIGKILL``.
    :raises EmbeddedRedisError: ``redis-server`` is missing or cannot be run,
        exits during startup, or does not answer ``PING`` within
        ``startup_timeout`` seconds.
    """

    def __init__(
        self,
        *,
        executable: Optional[str] = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        if isinstance(extra_args, (str, bytes)):
            raise TypeError("extra_args must be a sequence of strings, not a single string")
        if startup_timeout <= 0:
            raise ValueError("startup_timeout must be a positive number of seconds")
        if stop_timeout < 0:
            raise ValueError("stop_timeout must be a number of seconds >= 0")
        self._executable = self._find_executable(executable)
        self._directory = self._make_directory()
        self._socket_path = os.path.join(self._directory, "redis.sock")
        args = [
            self._executable,
            "--port", "0",
            "--unixsocket", self._socket_path,
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._directory,
            "--daemonize", "no",
            "--logfile", os.path.join(self._directory, "redis.log"),
            *[str(a) for a in extra_args],
        ]
        stderr: IO[bytes] = open(os.path.join(self._directory, "redis.stderr"), "wb")
        try:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                cwd=self._directory,
            )
        except OSError as exc:
            shutil.rmtree(self._directory, ignore_errors=True)
            raise EmbeddedRedisError(
                "cannot run %s (%s); %s" % (self._executable, exc, _INSTALL_HINT)
            ) from exc
        finally:
            stderr.close()
        self._finalizer = weakref.finalize(
            self, _stop, self._proc, self._directory, os.getpid(), stop_timeout
        )
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self._finalizer()
            raise

    @staticmethod
    def _find_executable(executable: Optional[str]) -> str:
        if executable is None:
            found = shutil.which("redis-server")
            if found is None:
                raise EmbeddedRedisError("redis-server was not found on PATH; " + _INSTALL_HINT)
            return found
        executable = os.fspath(executable)
        if os.sep not in executable:
            found = shutil.which(executable)
            if found is None:
                raise EmbeddedRedisError("%s was not found on PATH; %s" % (executable, _INSTALL_HINT))
            return found
        if not os.path.isfile(executable):
            raise EmbeddedRedisError("%s does not exist; %s" % (executable, _INSTALL_HINT))
        return executable

    @staticmethod
    def _make_directory() -> str:
        directory = tempfile.mkdtemp(prefix="pyredcache-redis-")
        if len(os.path.join(directory, "redis.sock").encode()) <= _MAX_SOCKET_PATH:
            return directory
        # $TMPDIR is too deep for a unix socket path; /tmp is short.
        os.rmdir(directory)
        return tempfile.mkdtemp(prefix="pyredcache-redis-", dir="/tmp")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if self._proc.poll() is not None:
                raise EmbeddedRedisError(
                    "%s exited with status %s during startup:\n%s"
                    % (self._executable, self._proc.returncode, _log_tail(self._directory))
                )
            remaining = deadline - time.monotonic()
            if os.path.exists(self._socket_path):
                reply = _ping(self._socket_path, min(1.0, remaining))
                if reply == b"+PONG":
                    return
                if reply is not None and not reply.startswith(b"-LOADING"):
                    raise EmbeddedRedisError(
                        "%s answered PING with %r instead of +PONG (arguments such "
                        "as --requirepass are not supported)"
                        % (self._executable, reply.decode("utf-8", "replace"))
                    )
            if time.monotonic() >= deadline:
                raise EmbeddedRedisError(
                    "%s did not answer PING on %s within %g seconds:\n%s"
                    % (self._executable, self._socket_path, timeout, _log_tail(self._directory))
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    @property
    def url(self) -> str:
        """URL for :meth:`pyredcache.Cache.from_url`: ``unix://<socket path>?db=0``."""
        return "unix://%s?db=0" % self._socket_path

    @property
    def unix_socket_path(self) -> str:
        """Path of the unix socket the server listens on."""
        return self._socket_path

    @property
    def directory(self) -> str:
        """The server's temporary directory (socket, ``redis.log``); removed by :meth:`close`."""
        return self._directory

    @property
    def pid(self) -> int:
        """Process id of the ``redis-server``."""
        return self._proc.pid

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run (or the object was finalized)."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Stop the server and remove its temporary directory.

        Sends ``SIGTERM``, then ``SIGKILL`` if the process is still running
        ``stop_timeout`` seconds later, and waits for it to exit.  Calling
        it again does nothing.
        """
        self._finalizer()

    def __enter__(self) -> "EmbeddedRedis":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "pid %d" % self.pid
        return "<EmbeddedRedis %s (%s)>" % (self.url, state)
