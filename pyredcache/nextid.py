"""NextId: increasing ids across threads, processes and machines, without
a single point of failure.

The algorithm is pottery's ``NextId`` (its rationale: antirez,
http://antirez.com/news/102, the page pottery cites), over ``N``
independent Redis masters with a quorum of ``N // 2 + 1``:

1. read the sequence's current value on every master at once (one fan-out)
   and keep the answers; fewer than a quorum of answers fails the try;
2. the candidate is the largest value read, plus one;
3. on every master at once, set the value to the candidate only if it is
   greater than what the master holds (a Lua script, atomic on each master);
4. if a quorum of masters took it, the candidate is the id; otherwise try
   again from 1, up to ``num_tries`` times.

Why ids never repeat and never go back: a master takes a given candidate
at most once (after taking it, it holds a value that is not smaller), so
two callers can never both win a quorum for the same id; and any read
quorum meets every earlier write quorum in at least one master, so the
next read sees at least the last id handed out and proposes a greater one.
Ids can have holes (a try that won only a minority leaves its candidate on
some masters).

The Redis key is ``"nextid:" + key``, pottery's, holding the decimal
integer as a string, so pottery and pyredcache can share a sequence while
an application moves from one to the other.
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from typing import Any, Iterable, Iterator

from .clients.adapters import as_client
from .clients.client import Client, multi_pipeline, report_unreachable
from .clients.scripts import Script
from .exceptions import QuorumNotAchieved
from .lock import warn_unless_independent

__all__ = ["NextId"]

_KEY_PREFIX = "nextid:"
#: The random wait before a retry doubles at most this many times.
_MAX_DOUBLINGS = 5


# A child forked while a thread of its parent was inside next() would
# inherit that thread's held mutex and wait on it for ever: give every
# NextId of the child a fresh one.
# The hook is registered with the first NextId, not at import.
_instances: weakref.WeakSet[NextId] = weakref.WeakSet()
_instances_lock = threading.Lock()
_fork_hook_registered = False


def _after_fork_in_child() -> None:
    for ids in list(_instances):
        ids._mutex = threading.Lock()


def _track(ids: "NextId") -> None:
    global _fork_hook_registered
    with _instances_lock:
        if not _fork_hook_registered:
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_registered = True
        _instances.add(ids)


class NextId:
    """Strictly increasing integer ids shared by every process that uses the
    same Redis masters and key (pottery's ``NextId``; algorithm:
    http://antirez.com/news/102, described in :mod:`pyredcache.nextid`).

    ``NextId(*, key='current', masters=None, raise_on_redis_errors=False,
    num_tries=3, timeout=0.1, retry_delay=0.005)``

    :param key: the name of the sequence (``str``); the Redis key is
        ``"nextid:" + key``, as in pottery.  Different keys are independent
        sequences.
    :param masters: an iterable of independent Redis servers, each anything
        :func:`~pyredcache.clients.as_client` takes (a
        :class:`~pyredcache.Client`, a ``redis://`` or ``unix://`` URL, a
        pyredcache cache, a ``redis.Redis``; or any other redis-py
        compatible client, ``fakeredis.FakeRedis`` or
        ``redis.cluster.RedisCluster`` say, used itself, after the core's
        masters in each round).  Use an odd number of separate servers (five in
        production); they are masters, not replicas of each other.  Two
        masters on one server (one host and port, or one unix socket,
        whatever their db; compared as written, without DNS) are accepted,
        as pottery and :class:`~pyredcache.Redlock` accept them, with a
        :class:`UserWarning`: "masters are not independent: a quorum over
        them does not survive that server's failure" (two on one db even
        share the key, so they vote as one).  ``None``: one server on
        localhost:6379, as pottery defaults.
    :param raise_on_redis_errors: ``bool``.  When ``True``, a try in which
        so many masters fail (connection refused or dropped, timed out,
        error reply) that a quorum is out of reach raises
        :class:`~pyredcache.exceptions.QuorumNotAchieved` at once, chained
        to one of those errors, without the remaining tries.  When
        ``False`` (pottery's default), such a try is retried like any other.
    :param num_tries: ``int >= 1``, how many times :meth:`__next__` tries to
        win a quorum before it gives up.
    :param timeout: seconds (``float > 0``, default 0.1) that one wait for a
        master's reply may last during a fan-out; a silent master costs at
        most about that per round trip and counts as failed (its connection
        is closed and reopened on next use).  Connecting to a master is
        bounded by its client's ``socket_connect_timeout`` (1.0 second by
        default).  Masters that cannot be reached are named in one warning
        of the ``"pyredcache"`` logger per episode, not one per try (see
        :func:`~pyredcache.clients.client.report_unreachable`).
    :param retry_delay: seconds (``float >= 0``, default 0.005).  Before
        try ``k`` (``k >= 2``) :meth:`__next__` sleeps a random time in
        ``[0, retry_delay * 2**(k-2))`` (the doubling stops at 32 times
        ``retry_delay``), so that callers who proposed the same candidate
        and split the masters' votes do not collide again in lockstep (the
        random retry delay of Redlock, redis.io distributed-locks page).
        0 retries at once, as pottery does.  Callers who expect many
        competitors for one sequence should raise ``num_tries``.

    Raises :class:`ValueError` for ``num_tries < 1``, a ``timeout`` that is
    not a positive number of seconds, a negative ``retry_delay`` or no
    masters; :class:`TypeError` for arguments of the wrong type and for a
    master :func:`~pyredcache.clients.as_client` does not accept.

    ``next(ids)`` returns the next id (``int``, from 1 after a fresh start
    or :meth:`reset`).  One object may be shared by threads; it runs one
    request at a time, so its threads do not compete with each other for
    the same candidate.

    Error reporting: the :class:`~pyredcache.exceptions.QuorumNotAchieved`
    raised carries ``key`` (the Redis key), ``masters`` (the clients) and
    ``redis_errors`` (the errors of the last try) as pottery's does, and is
    chained (``__cause__``) to one of those errors when there were any.
    """

    #: KEYS[1]: the sequence's key ("nextid:" + key).
    #: ARGV[1]: the candidate id, a decimal integer.
    #: Sets KEYS[1] to ARGV[1] when the key is missing or holds a smaller
    #: number (or something that is not a number, which pottery's script
    #: also overwrites).  Returns 1 when it set the key, 0 when not.
    SET_IF_GREATER = Script("""
-- KEYS[1]: the sequence key; ARGV[1]: the candidate id (decimal integer)
-- returns 1 if KEYS[1] was set to ARGV[1] (missing or smaller), else 0
local current = tonumber(redis.call('GET', KEYS[1]))
if current == nil or current < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1])
    return 1
end
return 0
""")

    __slots__ = ("key", "masters", "raise_on_redis_errors", "num_tries", "timeout",
                 "retry_delay", "_quorum", "_mutex", "__weakref__")

    def __init__(
        self,
        *,
        key: str = "current",
        masters: Iterable[Any] | None = None,
        raise_on_redis_errors: bool = False,
        num_tries: int = 3,
        timeout: float = 0.1,
        retry_delay: float = 0.005,
    ) -> None:
        if not isinstance(key, str):
            raise TypeError("key must be a str, not %s" % type(key).__name__)
        if isinstance(num_tries, bool) or not isinstance(num_tries, int):
            raise TypeError("num_tries must be an int, not %s" % type(num_tries).__name__)
        if num_tries < 1:
            raise ValueError("num_tries must be >= 1, got %d" % num_tries)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError("timeout must be a number of seconds, not %s"
                            % type(timeout).__name__)
        if not 0 < timeout < float("inf"):
            raise ValueError("timeout must be > 0 seconds, got %r" % (timeout,))
        if isinstance(retry_delay, bool) or not isinstance(retry_delay, (int, float)):
            raise TypeError("retry_delay must be a number of seconds, not %s"
                            % type(retry_delay).__name__)
        if not 0 <= retry_delay < float("inf"):
            raise ValueError("retry_delay must be >= 0 seconds, got %r" % (retry_delay,))
        if masters is None:
            clients = [Client("localhost", 6379)]
        else:
            if isinstance(masters, (str, bytes)):
                raise TypeError("masters must be an iterable of servers, not a single %s"
                                % type(masters).__name__)
            clients = [as_client(m) for m in masters]
            if not clients:
                raise ValueError("masters must name at least one Redis server")
        self.key: str = _KEY_PREFIX + key
        warn_unless_independent(clients, "NextId %r" % self.key)
        self.masters: tuple[Client, ...] = tuple(clients)
        self.raise_on_redis_errors = bool(raise_on_redis_errors)
        self.num_tries = num_tries
        self.timeout = float(timeout)
        self.retry_delay = float(retry_delay)
        self._quorum = len(clients) // 2 + 1
        self._mutex = threading.Lock()
        _track(self)

    @property
    def quorum(self) -> int:
        """How many masters must agree: ``len(masters) // 2 + 1``."""
        return self._quorum

    def __repr__(self) -> str:
        return "<pyredcache.NextId key=%r masters=%d quorum=%d>" % (
            self.key, len(self.masters), self._quorum)

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        """The next id (``int``).

        Raises :class:`~pyredcache.exceptions.QuorumNotAchieved` when no
        try out of ``num_tries`` won a quorum (too many masters down or
        silent, or other callers won every race), or at the first try that
        cannot reach one when ``raise_on_redis_errors`` is set.
        """
        with self._mutex:
            errors: list[BaseException] = []
            for attempt in range(self.num_tries):
                if attempt and self.retry_delay:
                    # random, growing: desynchronize callers that lost a race
                    time.sleep(random.uniform(0, self.retry_delay
                                              * (1 << min(attempt - 1, _MAX_DOUBLINGS))))
                current, errors = self._read()
                if current is None:
                    continue
                candidate = current + 1
                taken, errors = self._write(candidate)
                if taken:
                    return candidate
            raise self._failure("could not reserve an id", errors)

    def _impossible(self, errors: list) -> bool:
        return len(errors) > len(self.masters) - self._quorum

    def _failure(self, what: str, errors: list) -> QuorumNotAchieved:
        exc = QuorumNotAchieved(
            "%s on %r: fewer than %d of %d masters agreed%s"
            % (what, self.key, self._quorum, len(self.masters),
               " (%d failed; first: %r)" % (len(errors), errors[0]) if errors else ""))
        exc.key = self.key  # type: ignore[attr-defined]
        exc.masters = self.masters  # type: ignore[attr-defined]
        exc.redis_errors = tuple(errors)  # type: ignore[attr-defined]
        if errors:
            exc.__cause__ = errors[0]  # as `raise exc from errors[0]` would
            exc.__suppress_context__ = True
        return exc

    def _check(self, what: str, errors: list) -> None:
        if self.raise_on_redis_errors and self._impossible(errors):
            raise self._failure(what, errors)

    def _read(self) -> tuple[int | None, list]:
        """The largest value a quorum of masters holds (0 for a missing
        key), or None with the errors when fewer than a quorum answered."""
        command = [("GET", self.key)]
        replies = multi_pipeline([(m, command) for m in self.masters], self.timeout)
        report_unreachable("NextId %r" % self.key, self.masters, replies)
        values: list[int] = []
        errors: list[BaseException] = []
        for reply in replies:
            if isinstance(reply, BaseException):
                errors.append(reply)
                continue
            value = reply[0]
            if isinstance(value, BaseException):  # WRONGTYPE and the like
                errors.append(value)
            elif value is None:
                values.append(0)
            else:
                try:
                    values.append(int(value))
                except ValueError as exc:  # not an integer: this master cannot vote
                    errors.append(exc)
        self._check("could not read the current id", errors)
        if len(values) < self._quorum:
            return None, errors
        return max(values), errors

    def _write(self, candidate: int) -> tuple[bool, list]:
        """Set candidate on every master where it is greater; True when a
        quorum took it, and the errors of this round."""
        errors: list[BaseException] = []
        replies = self.SET_IF_GREATER.multi_pipeline(self.masters, [self.key], [candidate],
                                                     self.timeout)
        report_unreachable("NextId %r" % self.key, self.masters, replies)
        taken = 0
        for reply in replies:
            if isinstance(reply, BaseException):
                errors.append(reply)
            elif reply == 1:
                taken += 1
        if taken >= self._quorum:
            return True, errors
        self._check("could not reserve an id", errors)
        return False, errors

    def reset(self) -> None:
        """Start the sequence again: the next id is 1.  Deletes the key on
        every master at once.

        Raises :class:`~pyredcache.exceptions.QuorumNotAchieved` (chained to
        one of the errors) when fewer than a quorum of masters deleted it.
        A master that missed the reset still holds the old value and pushes
        the sequence back up to it while a quorum read reaches it; reset
        again once every master is up to clear it everywhere.
        """
        with self._mutex:
            command = [("DEL", self.key)]
            replies = multi_pipeline([(m, command) for m in self.masters], self.timeout)
            report_unreachable("NextId %r" % self.key, self.masters, replies)
            errors = [r if isinstance(r, BaseException) else r[0] for r in replies]
            errors = [e for e in errors if isinstance(e, BaseException)]
            if len(self.masters) - len(errors) < self._quorum:
                raise self._failure("could not reset the sequence", errors)
