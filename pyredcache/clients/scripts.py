"""Lua scripts run on one server or on several at once.

A :class:`Script` is made once, as a class constant with a header naming
KEYS, ARGV and the return value (redis-py's ``redis/lock.py`` keeps its
scripts the same way).  It is sent with ``EVALSHA``; a server that does not
know it yet (``NOSCRIPT``: first use, restart, ``SCRIPT FLUSH``) gets it
with ``EVAL``, which also caches it there for next time.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from ..exceptions import ResponseError
from .client import Client, multi_pipeline

__all__ = ["Script"]


def _noscript(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT")


class Script:
    """A Lua script: ``Script(source)``; ``sha`` is its SHA-1 (hex)."""

    __slots__ = ("source", "sha")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def command(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> tuple:
        """The ``EVALSHA`` command running the script."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def eval_command(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> tuple:
        """The ``EVAL`` command running the script (sends its source)."""
        return ("EVAL", self.source, len(keys), *keys, *args)

    def __call__(self, client: Client, keys: Sequence[Any] = (),
                 args: Sequence[Any] = ()) -> Any:
        """Run on one server; return the reply.  An error reply raises
        :class:`~pyredcache.exceptions.ResponseError`."""
        try:
            return client.execute_command(*self.command(keys, args))
        except ResponseError as exc:
            if not _noscript(exc):
                raise
        return client.execute_command(*self.eval_command(keys, args))

    def multi_pipeline(self, clients: Sequence[Client], keys: Sequence[Any] = (),
                       args: Sequence[Any] = (), timeout: float | None = None) -> list:
        """Run on every client's server at once (one round trip, plus one
        for servers that did not know the script).  ``timeout``: seconds
        any one wait may last.  Returns one item per client: the reply, a
        ResponseError instance for an error reply, or the ConnectionError /
        TimeoutError instance of a server that failed."""
        command = [self.command(keys, args)]
        results = multi_pipeline([(c, command) for c in clients], timeout)
        out = [r if isinstance(r, BaseException) else r[0] for r in results]
        retry = [i for i, r in enumerate(out) if _noscript(r)]
        if retry:
            again = multi_pipeline([(clients[i], [self.eval_command(keys, args)]) for i in retry],
                            timeout)
            for i, r in zip(retry, again):
                out[i] = r if isinstance(r, BaseException) else r[0]
        return out
