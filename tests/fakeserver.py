"""Fake Redis servers for hostile-reply and error-path tests: a listening
socket on a free loopback port whose accepted connections a subclass
handles in a thread of its own (canned bytes, a reset, silence)."""

from __future__ import annotations

import socket
import struct
import threading


class ListeningServer:
    """Listens on a free loopback port; ``handle(conn)`` each connection
    accepted, one after the other, in a daemon thread.  ``close()`` stops
    accepting."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.host, self.port = self.sock.getsockname()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.handle(s)

    @property
    def url(self) -> str:
        return "redis://%s:%d/0" % (self.host, self.port)

    def handle(self, s: socket.socket) -> None:
        """Serve one accepted connection (each subclass says how)."""
        raise NotImplementedError

    def close(self) -> None:
        self.sock.close()


class FakeServer(ListeningServer):
    """Answers every command with canned bytes, then optionally closes."""

    def __init__(self, payload: bytes, close_after: bool = True) -> None:
        self.payload = payload
        self.close_after = close_after
        super().__init__()

    def handle(self, s: socket.socket) -> None:
        with s:
            try:
                s.recv(65536)
                s.sendall(self.payload)
                if not self.close_after:
                    s.recv(65536)
            except OSError:
                pass


class ResettingServer(ListeningServer):
    """Resets each connection (RST: SO_LINGER with a zero timeout, then
    close): at once, or after reading the first request."""

    def __init__(self, read_first: bool) -> None:
        self.read_first = read_first
        super().__init__()

    def handle(self, s: socket.socket) -> None:
        try:
            if self.read_first:
                s.recv(65536)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        s.close()


class SilentServer(ListeningServer):
    """Reads what comes and never answers."""

    def __init__(self) -> None:
        self.conns: list[socket.socket] = []
        super().__init__()

    def handle(self, s: socket.socket) -> None:
        self.conns.append(s)  # kept open, never answered

    def hang_up(self) -> None:
        """Close the accepted connections (the clients see end of file)."""
        for s in self.conns:
            s.close()

    def close(self) -> None:
        super().close()
        self.hang_up()
