"""Distributed locks.

* :class:`Redlock`: a lock over several independent Redis masters that
  survives the loss of a minority of them (pottery's ``Redlock`` API),
  with, on request (``fencing=True``), a fencing token per acquisition;
  :func:`synchronize` runs a function under one.
* :class:`Lock`: a lock on one Redis server (retools' ``Lock`` API).

Redlock is the algorithm of the distributed-locks page of the Redis docs
(redis.io/docs/latest/develop/use/patterns/distributed-locks/): a lock is
held when a majority of the masters set its key within a time that leaves
some of its time to live.  Each quorum round goes to every master at once
(``redlock_round`` in the core: csrc/redlock.c, or its pure twin).

Fencing tokens (Martin Kleppmann, "How to do distributed locking", 2016)
let the resource a lock protects refuse a holder that was paused past its
lock's expiry and carries on: every acquisition gets a number larger than
any earlier acquisition's, and the resource remembers the largest it saw.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import secrets
import sys
import time
import warnings
from typing import Any, Callable, Iterable, Sequence, TypeVar

from .clients.adapters import as_client, server_address, server_identity
from .clients.client import Client, multi_pipeline, report_unreachable
from .clients.scripts import Script
from .exceptions import (
    ExtendUnlockedLock,
    LockTimeout,
    QuorumNotAchieved,
    ReleaseUnlockedLock,
    ResponseError,
    TooManyExtensions,
)

__all__ = ["Redlock", "synchronize", "Lock"]

F = TypeVar("F", bound=Callable[..., Any])


def _agreed(reply: Any) -> bool:
    """A master agreed: its reply is neither nil nor an error."""
    return reply is not None and not isinstance(reply, BaseException)


def _noscript(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT")


def _stacklevel() -> int:
    """``stacklevel`` for warnings.warn in the caller of this function: the
    first frame outside pyredcache (the user's ``Redlock(...)``,
    ``NextId(...)`` or ``@synchronize(...)`` line)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("pyredcache."):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def warn_unless_independent(clients: Sequence[Any], what: str) -> None:
    """Warn (UserWarning) when two of the clients talk to one server (one
    host and port, one unix socket or one fakeredis server; any db): the
    quorum of a Redlock or a NextId then does not survive that server's
    failure.  ``what`` names the caller in the message (``"Redlock 'k'"``)."""
    seen: dict[tuple, int] = {}
    pairs = []
    for i, client in enumerate(clients):
        where = server_address(client)
        if where not in seen:
            seen[where] = i
            continue
        j = seen[where]
        pair = "masters[%d] and masters[%d] are both %s" % (j, i, client.address)
        if server_identity(clients[j]) == server_identity(client):
            pair += " db %s (one key: they vote as one master)" % (server_identity(client)[-1],)
        pairs.append(pair)
    if pairs:
        warnings.warn("%s: masters are not independent: a quorum over them does not "
                      "survive that server's failure (%s)" % (what, "; ".join(pairs)),
                      UserWarning, stacklevel=_stacklevel())


def _check_timeout(timeout: Any, name: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (name, type(timeout).__name__))
    if math.isnan(timeout) or (timeout < 0 and timeout != -1):
        raise ValueError("%s must be >= 0 seconds, or -1 for no limit; got %r" % (name, timeout))
    return float(timeout)


# Why the fencing token is strictly increasing (Redlock.acquire with
# fencing=True; without it, an acquisition is one round of pottery's
# SET NX PX and no counter exists).
#
# Each master keeps a counter, redlock:<key>:fence.  An acquisition runs two
# rounds.  Round 1 sets the lock key (SET NX PX) and, on each master where
# it was set, reads the counter in the same script.  With a quorum Q1,
# token = max(counters read on Q1) + 1.  Round 2 raises the counter to
# at least `token`, on each master, only while that master's lock key
# still holds our random value; the acquisition counts only if round 2
# also reaches a quorum W, within the lock's validity.
#
# Let A then B be two successful acquisitions (B's hold begins after A's:
# their validity periods cannot overlap, which is Redlock's own safety).
# Q1(B) and W(A) are both majorities, so they share a master m.  On m,
# A's round-2 write ran while A's lock key was present (the script checks
# it), and B's round-1 script set B's key, so it ran while m held no lock
# key.  Could B's script have run first?  Then B's key was on m when A's
# key was set there later, so B's key had gone: B deleted it (B only does
# that after a failed acquisition, or when releasing after its hold) or it
# expired (which, within the clock-drift bound Redlock assumes, happens
# after B's validity period ends).  Either way B's hold would have begun
# and ended before A's round 2, or B failed: a contradiction.  So B's
# read on m came after A's key left m, which is after A's write on m: B
# read a counter >= token(A), and token(B) > token(A).
#
# One INCR per master and max() is not enough.  With masters a, b, c at 0:
# {a,b} -> 1, 1, token 1; {a,c} -> a=2, c=1, token 2; {b,c} -> b=2, c=2,
# token 2 again.  Reading first and writing the maximum back closes that
# hole: the third acquisition reads c=2 and gets 3.
#
# Failed acquisitions may raise some counters (round 2 on a minority, or
# after the validity ran out): tokens may skip numbers, never go back.
# Acquisitions without fencing (pyredcache's default, pottery's) neither
# read nor raise the counters: tokens number the fencing acquisitions.
# The counters do not expire (one that expired would start again at 0).
# A master restarted without persistence loses its counter, as it loses
# its lock keys: the caveat of Redlock itself (the Redis page asks for
# fsync=always or a delayed restart).


class Redlock:
    """A distributed lock over several independent Redis masters (Redlock).

    ``Redlock(*, key, masters=None, raise_on_redis_errors=False,
    auto_release_time=10000, num_extensions=3,
    context_manager_blocking=True, context_manager_timeout=-1,
    fencing=False)``; pottery's API, which follows :class:`threading.Lock`.

    * ``key`` (str): the resource.  The Redis key is ``"redlock:" + key``,
      as pottery's, with the same ``SET NX PX`` and compare-and-delete: a
      pottery process and a pyredcache process contend for the same lock.
    * ``masters``: an iterable of independent masters (in production five),
      each anything :func:`~pyredcache.clients.as_client` takes: a
      :class:`~pyredcache.Client`, a ``redis://``/``unix://`` URL, a
      :class:`~pyredcache.Cache`, a ``redis.Redis`` (these run the core's
      quorum round, all masters at once), or any other redis-py
      compatible client (``fakeredis.FakeRedis``,
      ``redis.cluster.RedisCluster``, TLS, Sentinel), used itself: when
      one master is such a client, the round runs in Python, the core's
      masters at once and the others after them, and its duration counts
      against the validity as always.  None: one
      :class:`~pyredcache.Client` on localhost:6379.  Two masters on one
      server (one host and port, or one unix socket, whatever their db;
      compared as written, without DNS) are accepted, as pottery accepts
      them, with a :class:`UserWarning`: "masters are not independent: a
      quorum over them does not survive that server's failure" (two on
      one db even share the key, so they vote as one).
    * ``auto_release_time`` (int; milliseconds (pottery 3 takes seconds:
      multiply by 1000); default 10000, 10 seconds): the lock's
      time to live; it is released by Redis that long after it was taken,
      even if its holder died.  Milliseconds as in pottery's documented
      API (``Redlock(key='printer', auto_release_time=15*1000)``).  It
      must be an int >= 1: a float raises ValueError (so pottery 3's
      ``auto_release_time=.2`` is refused, not taken as 0.2 ms), but an
      int is not second-guessed: pottery 3's ``auto_release_time=10``
      means 10 ms here.
    * ``num_extensions`` (int): how many times :meth:`extend` may be called
      per acquisition.
    * ``raise_on_redis_errors`` (bool): when so many masters failed (could
      not be reached, timed out, answered with an error) that no quorum was
      possible, raise :class:`~pyredcache.exceptions.QuorumNotAchieved`
      chained to one of their errors instead of answering "not acquired"
      (or raising :class:`~pyredcache.exceptions.ReleaseUnlockedLock` /
      :class:`~pyredcache.exceptions.ExtendUnlockedLock`).
    * ``context_manager_blocking`` (bool), ``context_manager_timeout``
      (float, **seconds**, -1: no limit): how ``with lock:`` acquires.
    * ``fencing`` (bool, default False): give each acquisition a fencing
      token (:attr:`fencing_token`).  This costs a second quorum round per
      acquisition and a counter per lock key on every master,
      ``redlock:<key>:fence``, which has no TTL (a counter that expired
      would start again, and tokens would go back): an application that
      locks one name per resource id with ``fencing=True`` keeps one
      counter per id.  Without it (the default, and pottery's behaviour)
      an acquisition is one round of ``SET NX PX``, a released lock
      leaves no key behind, and reading :attr:`fencing_token` raises
      RuntimeError.  Either way the lock key is pottery's: a fencing lock
      and a pottery (or non-fencing) lock on one key exclude each other,
      and tokens number the acquisitions made with ``fencing=True``.

    The lock is held when at least ``len(masters) // 2 + 1`` masters set
    its key and time is left of ``auto_release_time`` after subtracting the
    time the acquisition took and a clock drift allowance of
    ``auto_release_time * 0.01 + 2`` ms.  Each round goes to every master at
    once; a master gets ``auto_release_time / 200`` ms (10 to 100 ms) to
    answer, so a dead or frozen master costs little of the lock's validity.
    Opening a connection is bounded by the client's own
    ``socket_connect_timeout`` (and, when it sends AUTH or SELECT, its
    ``socket_timeout``), 1.0 second each by default.  Masters that cannot
    be reached (refused, silent, timed out) are named in one warning of
    the ``"pyredcache"`` logger per episode, not one per retry (see
    :func:`~pyredcache.clients.client.report_unreachable`): a blocking
    :meth:`acquire` keeps retrying meanwhile.
    Algorithm: the distributed-locks page of the Redis docs.

    With ``fencing=True``, :attr:`fencing_token` numbers acquisitions: each
    successful acquisition of the key with ``fencing=True`` gets an int
    larger than every earlier one's, whichever majority of masters was
    used (see the comment above this class).  The caveat is Redlock's own:
    a master restarted without persistence forgets its keys and its
    counter.

    Threads: a Redlock object is held by one thread at a time (acquire and
    release it in the same thread, or hand it over with proper
    synchronisation).  Give each thread or process its own object with the
    same ``key``: they contend for the lock properly.  The clients (and
    their connection pools) may be shared.
    """

    KEY_PREFIX = "redlock:"
    #: Seconds: a failed round is retried after a random delay up to this.
    RETRY_DELAY = 0.2
    #: Clock drift allowance: this fraction of the TTL, plus CLOCK_DRIFT_MS.
    CLOCK_DRIFT_FACTOR = 0.01
    CLOCK_DRIFT_MS = 2.0

    ACQUIRE_SCRIPT = Script("""
-- KEYS[1]: the lock key (redlock:<key>); KEYS[2]: its fencing counter
-- (redlock:<key>:fence).  ARGV[1]: this acquisition's random value;
-- ARGV[2]: time to live in milliseconds.
-- Returns the counter (a decimal string, '0' when missing) when the lock
-- key was set, nil when it exists already.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return redis.call('GET', KEYS[2]) or '0'
end
return false
""")

    FENCE_SCRIPT = Script("""
-- KEYS[1]: the lock key; KEYS[2]: its fencing counter.
-- ARGV[1]: our random value; ARGV[2]: our fencing token (decimal).
-- Raises the counter to at least ARGV[2] while the lock key still holds
-- ARGV[1].  Returns 1 then, nil when the key holds something else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    local current = tonumber(redis.call('GET', KEYS[2]) or '0')
    if current < tonumber(ARGV[2]) then
        redis.call('SET', KEYS[2], ARGV[2])
    end
    return 1
end
return false
""")

    RELEASE_SCRIPT = Script("""
-- KEYS[1]: the lock key.  ARGV[1]: our random value.
-- Deletes the key if it holds ARGV[1].  Returns 1 then, nil otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return false
""")

    PTTL_SCRIPT = Script("""
-- KEYS[1]: the lock key.  ARGV[1]: our random value.
-- Returns the key's PTTL (milliseconds) if it holds ARGV[1], nil otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PTTL', KEYS[1])
end
return false
""")

    EXTEND_SCRIPT = Script("""
-- KEYS[1]: the lock key.  ARGV[1]: our random value; ARGV[2]: the new
-- time to live in milliseconds.
-- Returns 1 if the key holds ARGV[1] (its TTL is reset), nil otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return false
""")

    def __init__(
        self,
        *,
        key: str,
        masters: Iterable[Any] | None = None,
        raise_on_redis_errors: bool = False,
        auto_release_time: int = 10000,
        num_extensions: int = 3,
        context_manager_blocking: bool = True,
        context_manager_timeout: float = -1,
        fencing: bool = False,
    ) -> None:
        if not isinstance(key, str):
            raise TypeError("key must be str, not %s" % type(key).__name__)
        if (isinstance(auto_release_time, bool) or not isinstance(auto_release_time, int)
                or auto_release_time < 1):
            raise ValueError("auto_release_time must be an int >= 1, in milliseconds "
                             "(pottery 3 takes seconds: multiply by 1000), got %r"
                             % (auto_release_time,))
        if isinstance(num_extensions, bool) or not isinstance(num_extensions, int) \
                or num_extensions < 0:
            raise ValueError("num_extensions must be an int >= 0, got %r" % (num_extensions,))
        self.context_manager_timeout = _check_timeout(context_manager_timeout,
                                                      "context_manager_timeout")
        self.key = self.KEY_PREFIX + key
        self.fencing = bool(fencing)
        self._keys = (self.key,)
        self._fence_keys = (self.key, self.key + ":fence")
        if masters is None:
            clients: list[Client] = [Client()]
        else:
            if isinstance(masters, (str, bytes)):
                masters = [masters]
            clients = [as_client(m, self.key) for m in masters]
        if not clients:
            raise ValueError("masters must name at least one Redis master")
        warn_unless_independent(clients, "Redlock %r" % self.key)
        cores = {c._core for c in clients if isinstance(c, Client)}
        if len(cores) > 1:
            raise TypeError("the masters' clients use different core implementations")
        self.masters: tuple[Any, ...] = tuple(clients)
        # The core's quorum round needs the core's connections; masters
        # reached through a user's own client (RedisPyAdapter) take the
        # round in Python, over the clients' multi_pipeline.
        self._redlock_round = (clients[0]._core.redlock_round
                               if all(isinstance(c, Client) for c in clients) else None)
        self.raise_on_redis_errors = bool(raise_on_redis_errors)
        self.auto_release_time = auto_release_time
        self.num_extensions = num_extensions
        self.context_manager_blocking = bool(context_manager_blocking)
        self._quorum = len(clients) // 2 + 1
        self._drift_ms = auto_release_time * self.CLOCK_DRIFT_FACTOR + self.CLOCK_DRIFT_MS
        # Per-master timeout, seconds: small next to the TTL, so that a
        # frozen master costs at most that much of the lock's validity.
        self._master_timeout = min(100.0, max(10.0, auto_release_time / 200)) / 1000.0
        self._value: str | None = None  # random value of the current hold
        self._deadline = 0.0            # time.monotonic() when validity ends
        self._extension_num = 0
        self._fencing_token: int | None = None

    def __repr__(self) -> str:
        return "<%s key=%r masters=%d quorum=%d>" % (
            type(self).__qualname__, self.key, len(self.masters), self._quorum)

    def _unheld_copy(self) -> "Redlock":
        """A new Redlock with this one's settings and masters, holding
        nothing (what :func:`synchronize` uses for each call)."""
        lock = copy.copy(self)
        lock._value = None
        lock._deadline = 0.0
        lock._extension_num = 0
        lock._fencing_token = None
        return lock

    @property
    def fencing_token(self) -> int | None:
        """The fencing token (int) of this object's latest successful
        acquisition, None before the first; only for a lock made with
        ``fencing=True``.  Strictly larger than the token of every earlier
        acquisition of the key with ``fencing=True``, by any object or
        process.  Pass it to the protected resource with each write; the
        resource rejects a token smaller than the largest it has seen.

        Raises RuntimeError for a lock made without ``fencing=True`` (the
        default): it has no tokens, and None would read as "not acquired
        yet"."""
        if not self.fencing:
            raise RuntimeError(
                "%s has no fencing_token: it was made without fencing=True (pass "
                "Redlock(..., fencing=True) for a fencing token per acquisition)"
                % (self,))
        return self._fencing_token

    # -- rounds ------------------------------------------------------------

    def _round(self, script: Script, args: Sequence[Any],
               keys: Sequence[str] | None = None) -> tuple[int, float, list]:
        """Run script (with keys, the lock key by default) on every master
        at once; see :meth:`_command_round`."""
        keys = self._keys if keys is None else keys
        return self._command_round(script.command(keys, args),
                                   script.eval_command(keys, args))

    def _command_round(self, command: Sequence[Any],
                       fallback: Sequence[Any] | None = None) -> tuple[int, float, list]:
        """Send command to every master at once; (votes, validity_ms,
        replies) as ``redlock_round`` returns them, validity measured
        against auto_release_time.  When command runs a script, masters
        that did not know it (NOSCRIPT: first use, restart) get
        ``fallback`` (its EVAL) in a second round, and the validity then
        spans both."""
        if self._redlock_round is None:
            return self._adapted_round(command, fallback)
        conns = [c._acquire() for c in self.masters]
        try:
            start = time.monotonic()
            votes, validity, replies = self._redlock_round(
                conns, tuple(command), self.auto_release_time, self._master_timeout)
            retry = [i for i, r in enumerate(replies) if _noscript(r)] if fallback else []
            if retry:
                _, _, again = self._redlock_round(
                    [conns[i] for i in retry], tuple(fallback),  # type: ignore[arg-type]
                    self.auto_release_time, self._master_timeout)
                for i, r in zip(retry, again):
                    replies[i] = r
                votes = sum(1 for r in replies if _agreed(r))
                validity = (self.auto_release_time - self._drift_ms
                            - (time.monotonic() - start) * 1000.0)
        finally:
            for client, conn in zip(self.masters, conns):
                client._release(conn)
        report_unreachable("Redlock %r" % self.key, self.masters, replies)
        return votes, validity, replies

    def _adapted_round(self, command: Sequence[Any],
                       fallback: Sequence[Any] | None) -> tuple[int, float, list]:
        """The round of :meth:`_command_round` when some master is reached
        through a user's own client: the core's masters all at once, the
        others one after another, timed as ``redlock_round`` times its
        round (validity = TTL - elapsed - drift allowance, milliseconds)."""
        start = time.monotonic()
        results = multi_pipeline([(c, [tuple(command)]) for c in self.masters],
                                 self._master_timeout, max(1, len(self.masters)))
        replies = [r if isinstance(r, BaseException) else r[0] for r in results]
        retry = [i for i, r in enumerate(replies) if _noscript(r)] if fallback else []
        if retry:
            again = multi_pipeline([(self.masters[i], [tuple(fallback)])  # type: ignore[arg-type]
                                    for i in retry], self._master_timeout, len(retry))
            for i, r in zip(retry, again):
                replies[i] = r if isinstance(r, BaseException) else r[0]
        votes = sum(1 for r in replies if _agreed(r))
        validity = (self.auto_release_time - self._drift_ms
                    - (time.monotonic() - start) * 1000.0)
        report_unreachable("Redlock %r" % self.key, self.masters, replies)
        return votes, validity, replies

    def _raise_if_masters_down(self, replies: list, what: str) -> None:
        """With raise_on_redis_errors, raise QuorumNotAchieved when so many
        masters failed that no quorum was possible."""
        if not self.raise_on_redis_errors:
            return
        errors = [r for r in replies if isinstance(r, BaseException)]
        if len(errors) > len(self.masters) - self._quorum:
            raise QuorumNotAchieved(
                "%s %s: %d of %d masters failed, a quorum of %d was impossible"
                % (what, self.key, len(errors), len(self.masters), self._quorum)
            ) from errors[0]

    def _release_everywhere(self, value: str) -> None:
        """Undo a failed acquisition: compare-and-delete on every master
        (nothing of another holder's is touched).  Sent as EVAL, with the
        script's source: the masters that failed the round may have
        restarted (an empty script cache) or be frozen with our SET
        buffered; an EVALSHA buffered behind it could fail with NOSCRIPT
        when they wake, and leave our key for ``auto_release_time``."""
        self._command_round(self.RELEASE_SCRIPT.eval_command(self._keys, (value,)))

    # -- the threading.Lock API ------------------------------------------

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock; True when held, False when not.

        ``blocking`` (bool): if false, make one attempt (one quorum round,
        two on success).  ``timeout`` (float, **seconds**; -1: no limit):
        how long a blocking call keeps trying; failed attempts are retried
        after a random delay of 0 to 200 ms.  Raises ValueError for a
        timeout with ``blocking=False`` (as :meth:`threading.Lock.acquire`)
        and, with ``raise_on_redis_errors``,
        :class:`~pyredcache.exceptions.QuorumNotAchieved` when too many
        masters failed for a quorum to be possible.

        On success the lock is held for :meth:`locked` milliseconds
        (``auto_release_time`` minus the acquisition's duration and the
        clock drift allowance) and, with ``fencing=True``,
        :attr:`fencing_token` is new.
        """
        timeout = _check_timeout(timeout)
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        deadline = None if timeout == -1 else time.monotonic() + timeout
        while True:
            if self._acquire_once():
                return True
            if not blocking:
                return False
            delay = random.uniform(0, self.RETRY_DELAY)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                delay = min(delay, remaining)
            time.sleep(delay)

    def _acquire_once(self) -> bool:
        value = secrets.token_hex(16)
        ttl = self.auto_release_time
        start = time.monotonic()  # before anything is sent
        if self.fencing:
            votes, validity, replies = self._round(self.ACQUIRE_SCRIPT, (value, ttl),
                                                   self._fence_keys)
        else:  # pottery's command (SET NX PX): no other key is read or written
            votes, validity, replies = self._command_round(
                ("SET", self.key, value, "NX", "PX", ttl))
        # a key may have been set where a master agreed or failed mid-way
        dirty = any(r is not None for r in replies)
        if votes >= self._quorum and validity > 0 and not self.fencing:
            self._hold(value, start)
            return True
        if votes >= self._quorum and validity > 0:
            token = max(int(r) for r in replies if _agreed(r)) + 1
            votes, _, replies = self._round(self.FENCE_SCRIPT, (value, token),
                                            self._fence_keys)
            # validity from the start of round 1: the keys were set after
            # `start`, so they last at least until start + ttl
            validity = ttl - self._drift_ms - (time.monotonic() - start) * 1000.0
            if votes >= self._quorum and validity > 0:
                self._hold(value, start)
                self._fencing_token = token
                return True
        if dirty:
            self._release_everywhere(value)
        self._raise_if_masters_down(replies, "acquire")
        return False

    def _hold(self, value: str, start: float) -> None:
        """Record a successful acquisition of value, begun at start
        (time.monotonic(), before anything was sent)."""
        self._value = value
        self._deadline = start + (self.auto_release_time - self._drift_ms) / 1000.0
        self._extension_num = 0

    def release(self) -> None:
        """Release the lock (compare-and-delete on every master).

        Raises :class:`~pyredcache.exceptions.ReleaseUnlockedLock` when
        fewer than a quorum of masters held it for this object (never
        acquired, released already, expired, or taken since by another
        holder, whose keys are left alone); with ``raise_on_redis_errors``,
        :class:`~pyredcache.exceptions.QuorumNotAchieved` when too many
        masters failed for a quorum to be possible.  Either way this object
        no longer holds the lock.
        """
        value = self._value
        self._value = None
        self._deadline = 0.0
        if value is None:
            raise ReleaseUnlockedLock("release of %s, which this object does not hold"
                                      % self.key)
        votes, _, replies = self._round(self.RELEASE_SCRIPT, (value,))
        if votes < self._quorum:
            self._raise_if_masters_down(replies, "release")
            raise ReleaseUnlockedLock(
                "release of %s: only %d of %d masters held it (expired, or taken "
                "by another holder)" % (self.key, votes, len(self.masters)))

    def locked(self) -> int:
        """Milliseconds (int) this object still holds the lock for; 0 when
        it does not hold it (a falsy value, as pottery's).

        Asks every master: if a quorum hold our value, the answer is their
        smallest remaining TTL, less the time the query took and the clock
        drift allowance, and never beyond the validity computed when the
        lock was acquired or extended.  With ``raise_on_redis_errors``,
        raises :class:`~pyredcache.exceptions.QuorumNotAchieved` when too
        many masters failed to tell.
        """
        value = self._value
        if value is None or time.monotonic() >= self._deadline:
            return 0
        votes, validity, replies = self._round(self.PTTL_SCRIPT, (value,))
        if votes < self._quorum:
            self._raise_if_masters_down(replies, "locked")
            return 0
        ttl = self.auto_release_time
        smallest = min(r if r >= 0 else ttl for r in replies if _agreed(r))
        # ttl - validity is the query's duration plus the drift allowance
        left = min(smallest - (ttl - validity), (self._deadline - time.monotonic()) * 1000.0)
        return max(0, int(left))

    def extend(self) -> None:
        """Reset the lock's time to live to ``auto_release_time``
        milliseconds, on every master that holds it for this object.

        Raises :class:`~pyredcache.exceptions.TooManyExtensions` after
        ``num_extensions`` extensions of one acquisition (nothing is sent),
        :class:`~pyredcache.exceptions.ExtendUnlockedLock` when fewer than
        a quorum of masters hold it for this object (or the round took
        longer than the validity it would give), and with
        ``raise_on_redis_errors``
        :class:`~pyredcache.exceptions.QuorumNotAchieved` when too many
        masters failed for a quorum to be possible.
        """
        value = self._value
        if value is None:
            raise ExtendUnlockedLock("extend of %s, which this object does not hold"
                                     % self.key)
        if self._extension_num >= self.num_extensions:
            raise TooManyExtensions("%s was extended %d times already (num_extensions=%d)"
                                    % (self.key, self._extension_num, self.num_extensions))
        start = time.monotonic()
        votes, validity, replies = self._round(self.EXTEND_SCRIPT,
                                               (value, self.auto_release_time))
        if votes >= self._quorum and validity > 0:
            self._extension_num += 1
            self._deadline = start + (self.auto_release_time - self._drift_ms) / 1000.0
            return
        self._raise_if_masters_down(replies, "extend")
        raise ExtendUnlockedLock(
            "extend of %s: only %d of %d masters held it (expired, or taken by "
            "another holder)" % (self.key, votes, len(self.masters)))

    def __enter__(self) -> "Redlock":
        """Acquire with ``context_manager_blocking`` and
        ``context_manager_timeout``; raise
        :class:`~pyredcache.exceptions.QuorumNotAchieved` if not acquired."""
        if not self.acquire(blocking=self.context_manager_blocking,
                            timeout=self.context_manager_timeout):
            raise QuorumNotAchieved("could not acquire %s (blocking=%r, timeout=%r s)"
                                    % (self.key, self.context_manager_blocking,
                                       self.context_manager_timeout))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Release (see :meth:`release`, which may raise)."""
        self.release()


def synchronize(
    *,
    key: str,
    masters: Iterable[Any] | None = None,
    raise_on_redis_errors: bool = False,
    auto_release_time: int = 10000,
    blocking: bool = True,
    timeout: float = -1,
) -> Callable[[F], F]:
    """Decorator: run each call of the function under a :class:`Redlock`
    (pottery's ``synchronize``).

    The arguments are :class:`Redlock`'s (``auto_release_time``: an int,
    in milliseconds (pottery 3 takes seconds: multiply by 1000));
    ``blocking`` and ``timeout`` (**seconds**, -1: no limit) say how each
    call acquires.  The locks are made without fencing tokens (the
    function could not see them), so they leave no key behind.  Masters
    on one server warn once, when the decorator is made (see
    :class:`Redlock`).  A call that cannot acquire raises
    :class:`~pyredcache.exceptions.QuorumNotAchieved`; one whose lock
    expired before it returned raises
    :class:`~pyredcache.exceptions.ReleaseUnlockedLock`.  Each call uses a
    Redlock of its own, so the function may be called from several threads
    at once (they take turns); the masters' clients are made once.
    """
    template = Redlock(key=key, masters=masters, raise_on_redis_errors=raise_on_redis_errors,
                       auto_release_time=auto_release_time, context_manager_blocking=blocking,
                       context_manager_timeout=timeout)

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # a lock of its own per call, without checking the masters again
            with template._unheld_copy():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


class Lock:
    """A lock on one Redis server (retools' ``Lock`` API).

    ``Lock(key, expires=60, timeout=10, redis=None)``::

        with Lock("a_key", expires=60, timeout=10,
                  redis="redis://localhost:6379/0") as lock:
            ...  # one at a time

    * ``key`` (str or bytes): the Redis key, used as is.
    * ``expires`` (int or float > 0, **seconds**): the lock is released
      by Redis that long after it was taken, even if its holder died.
    * ``timeout`` (int or float >= 0, **seconds**): how long
      :meth:`acquire` keeps trying before it raises
      :class:`~pyredcache.exceptions.LockTimeout`.  retools counted retry
      loops (about one a second); here it is wall-clock seconds, tried
      again after short random sleeps (up to 50 ms).
    * ``redis``: anything :func:`~pyredcache.clients.as_client` takes with
      ``key`` (a Client, URL, Cache, CacheCluster, a ``redis.Redis``, or
      any other redis-py compatible client such as ``fakeredis.FakeRedis``
      or ``redis.cluster.RedisCluster``, used itself); None: a
      :class:`~pyredcache.Client` on localhost:6379.

    Acquiring is ``SET key value NX PX`` with a random value per
    acquisition; releasing deletes the key only if it still holds that
    value (a Lua compare-and-delete), so a holder whose lock expired never
    deletes its successor's.  One object is held by one thread at a time;
    give each thread its own object with the same key.
    """

    RELEASE_SCRIPT = Script("""
-- KEYS[1]: the lock key.  ARGV[1]: the holder's random value.
-- Deletes the key if it holds ARGV[1].  Returns 1 then, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
""")

    #: Seconds: the longest random sleep between two attempts.
    RETRY_DELAY = 0.05

    def __init__(self, key: str | bytes, expires: float = 60, timeout: float = 10,
                 redis: Any = None) -> None:
        if not isinstance(key, (str, bytes)):
            raise TypeError("key must be str or bytes, not %s" % type(key).__name__)
        for name, value, low in (("expires", expires, "> 0"), ("timeout", timeout, ">= 0")):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("%s must be a number of seconds, not %s"
                                % (name, type(value).__name__))
            if not math.isfinite(value) or (value <= 0 if low == "> 0" else value < 0):
                raise ValueError("%s must be %s seconds, got %r" % (name, low, value))
        self.key = key
        self.expires = expires
        self.timeout = timeout
        self.client: Any = Client() if redis is None else as_client(redis, key)
        self._px = max(1, round(expires * 1000))
        self._value: str | None = None

    def __repr__(self) -> str:
        return "<%s key=%r expires=%r s timeout=%r s>" % (
            type(self).__qualname__, self.key, self.expires, self.timeout)

    def acquire(self) -> bool:
        """Take the lock, trying for up to ``timeout`` seconds; return True.

        Raises :class:`~pyredcache.exceptions.LockTimeout` when another
        holder kept it that long, and ConnectionError / TimeoutError when
        the server cannot be used (each wait bounded by the client's
        ``socket_timeout`` and ``socket_connect_timeout``, 1.0 second each
        by default)."""
        value = secrets.token_hex(16)
        deadline = time.monotonic() + self.timeout
        while True:
            if self.client.execute_command("SET", self.key, value, "NX", "PX",
                                           self._px) is not None:
                self._value = value
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout("Timeout while waiting for lock %r (%r seconds)"
                                  % (self.key, self.timeout))
            time.sleep(min(remaining, random.uniform(0.001, self.RETRY_DELAY)))

    def release(self) -> None:
        """Release the lock (compare-and-delete).

        Raises :class:`~pyredcache.exceptions.ReleaseUnlockedLock` when
        this object does not hold it: never acquired, released already, or
        expired (then another holder's key, if any, is left alone)."""
        value = self._value
        self._value = None
        if value is None:
            raise ReleaseUnlockedLock("release of %r, which this object does not hold"
                                      % (self.key,))
        if not self.RELEASE_SCRIPT(self.client, [self.key], [value]):
            raise ReleaseUnlockedLock("release of %r: it expired (after %r seconds) "
                                      "before it was released" % (self.key, self.expires))

    def __enter__(self) -> "Lock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()
