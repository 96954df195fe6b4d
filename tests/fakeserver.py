"""A fake Redis server for hostile-reply tests: it answers every command
with canned bytes."""

from __future__ import annotations

import socket
import threading


class FakeServer:
    """Accepts connections; answers every command with canned bytes, then
    optionally closes."""

    def __init__(self, payload: bytes, close_after: bool = True) -> None:
        self.payload = payload
        self.close_after = close_after
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with s:
                try:
                    s.recv(65536)
                    s.sendall(self.payload)
                    if not self.close_after:
                        s.recv(65536)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
