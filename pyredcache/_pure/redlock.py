"""Pure-Python twin of ``redlock_round`` in ``pyredcache._core``
(csrc/redlock.c): one quorum round of the Redlock algorithm.

The C file's header states the design: the same command goes to every
master at once (here through the twin's ``multi_pipeline``), the round is
timed on the monotonic clock (``time.monotonic()``, CLOCK_MONOTONIC on
Linux, as in C), and the masters that agreed are counted.  Algorithm: the
distributed-locks page of the Redis docs
(redis.io/docs/latest/develop/use/patterns/distributed-locks/).
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

from .connection import Connection
from .multiplex import _timeout_ms, multi_pipeline

__all__ = ["redlock_round"]


def redlock_round(connections: Sequence[Any], command: Sequence[Any], ttl_ms: float,
                  timeout: float | None, /) -> tuple[int, float, list]:
    """One quorum round of Redlock: send one command to every connection at
    once and count the masters that agreed.

    ``connections``: distinct :class:`~pyredcache._pure.Connection`
    objects, one per master.  ``command``: one command, a sequence of
    arguments (typically EVALSHA of a lock script).  ``ttl_ms``: the lock's
    time to live in milliseconds (int or float >= 0).  ``timeout``: seconds
    any one wait for a master may last (float > 0, or None for ever); a
    master silent that long fails with TimeoutError and does not vote.

    Returns ``(votes, validity_ms, replies)``: ``votes`` counts the replies
    that are neither None nor an exception (an error reply is a
    ResponseError instance); ``validity_ms`` is ``ttl_ms - elapsed -
    (ttl_ms * 0.01 + 2)``, a float in milliseconds that may be negative,
    elapsed measured on the monotonic clock from just before the first send
    to after the last reply; ``replies`` has one item per connection: its
    reply, or the exception instance of a master that failed (its
    connection is closed).

    Raises TypeError or ValueError for malformed arguments and RuntimeError
    for a connection in use elsewhere (or given twice), before anything is
    sent.
    """
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, (int, float)):
        raise TypeError("ttl_ms must be a number of milliseconds, not %s"
                        % type(ttl_ms).__name__)
    if not (ttl_ms >= 0 and math.isfinite(ttl_ms)):
        raise ValueError("ttl_ms must be >= 0 milliseconds, got %r" % (ttl_ms,))
    _timeout_ms(timeout)  # checked before anything is sent, as in C
    if isinstance(connections, (str, bytes)):
        raise TypeError("connections must be a sequence of Connection objects")
    try:
        conns = tuple(connections)
    except TypeError:
        raise TypeError("connections must be a sequence of Connection objects") from None

    for i, conn in enumerate(conns):
        if type(conn) is not Connection:
            raise TypeError("connections[%d] must be a pyredcache._pure.Connection, not %s"
                            % (i, type(conn).__name__))
    commands = [command]
    # multi_pipeline checks every argument before it sends anything; the
    # clock starts just before it is called, so the round is, if anything,
    # measured a little long (the safe side).
    start = time.monotonic()
    results = multi_pipeline([(conn, commands) for conn in conns], timeout,
                             max(1, len(conns)))
    elapsed_ms = (time.monotonic() - start) * 1000.0
    replies = [r if isinstance(r, BaseException) else r[0] for r in results]
    votes = sum(1 for r in replies if r is not None and not isinstance(r, BaseException))
    validity_ms = ttl_ms - elapsed_ms - (ttl_ms * 0.01 + 2.0)
    return votes, float(validity_ms), replies
