"""Redlock and synchronize (pottery's API), Lock (retools' API), and the
core's redlock_round, on the C core and on its pure twin.

The fault tests kill (SIGKILL), restart and freeze (SIGSTOP) the five
private masters of the ``masters`` fixture; the next test gets them back.
No test asserts a duration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from leakcheck import assert_no_leaks

from conftest import free_port
from pyredcache import Cache, Client
from pyredcache.exceptions import (
    ConnectionError,
    ExtendUnlockedLock,
    LockError,
    LockTimeout,
    QuorumNotAchieved,
    ReleaseUnlockedLock,
    ResponseError,
    TooManyExtensions,
)
from pyredcache.lock import Lock, Redlock, synchronize


def urls(servers) -> list[str]:
    return [s.url for s in servers]


def held_by(servers, key: str) -> list:
    """The value of pottery's lock key on each server (None: not set)."""
    return [s.client().get("redlock:" + key) for s in servers]


def value_of(lock: Redlock) -> bytes:
    assert lock._value is not None
    return lock._value.encode()


def subprocess_env(impl) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYREDCACHE_NO_EXTENSIONS", None)
    if impl.implementation == "python":
        env["PYREDCACHE_NO_EXTENSIONS"] = "1"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


# -- redlock_round: the core's quorum round ---------------------------------


def test_redlock_round_counts_votes(impl, masters):
    conns = [impl.Connection(s.host, s.port) for s in masters[:3]]
    dead = impl.Connection("127.0.0.1", free_port())
    masters[1].client().set("k", "taken")
    votes, validity, replies = impl.redlock_round(
        [*conns, dead], ("SET", "k", "v", "NX", "PX", 60000), 10**9, 1.0)
    assert votes == 2
    assert replies[0] == b"OK" and replies[1] is None and replies[2] == b"OK"
    assert isinstance(replies[3], ConnectionError)
    # validity = ttl - elapsed - (ttl * 1% + 2): below ttl - drift, and a
    # round cannot take days
    assert isinstance(validity, float)
    assert 0 < validity < 10**9 - (10**7 + 2)
    assert [s.client().get("k") for s in masters[:3]] == [b"v", b"taken", b"v"]
    # an error reply is a ResponseError in its slot and does not vote
    masters[2].client().set("n", "not a number")
    votes, validity, replies = impl.redlock_round([*conns, dead], ["INCR", "n"], 0, None)
    assert votes == 2 and replies[:2] == [1, 1]
    assert isinstance(replies[2], ResponseError) and isinstance(replies[3], ConnectionError)
    assert validity <= -2.0  # ttl 0: nothing but elapsed time and drift
    # no connections: nothing to count
    votes, _, replies = impl.redlock_round([], ("PING",), 100, 1.0)
    assert (votes, replies) == (0, [])


def test_redlock_round_bad_arguments_send_nothing(impl, masters):
    conns = [impl.Connection(s.host, s.port) for s in masters[:2]]
    cmd = ("SET", "k", "v")
    for args, exc in [
        ((conns + ["not a connection"], cmd, 100, 1.0), TypeError),
        ((conns, "SET k v", 100, 1.0), TypeError),
        ((conns, (), 100, 1.0), ValueError),
        ((conns, ("SET", "k", object()), 100, 1.0), TypeError),
        ((conns, cmd, -1, 1.0), ValueError),
        ((conns, cmd, True, 1.0), TypeError),
        ((conns, cmd, "100", 1.0), TypeError),
        ((conns, cmd, 100, 0), ValueError),
        ((conns, cmd, 100, "1"), TypeError),
        ((42, cmd, 100, 1.0), TypeError),
        (([conns[0], conns[0]], cmd, 100, 1.0), RuntimeError),
    ]:
        with pytest.raises(exc):
            impl.redlock_round(*args)
    with pytest.raises(TypeError):
        impl.redlock_round(conns, cmd, 100)  # timeout is required
    with pytest.raises(TypeError):
        impl.redlock_round(conns, cmd, 100, timeout=1.0)  # positional only
    assert [s.client().get("k") for s in masters[:2]] == [None, None]
    # not left busy
    assert impl.redlock_round(conns, ("PING",), 100, 1.0)[0] == 2


def test_redlock_round_no_leaks(impl, masters):
    s = masters[0]
    script = f"""
import sys
from pyredcache import _core, _pure
core = _core if sys.argv[1] == "c" else _pure
conns = [core.Connection("{s.host}", {s.port}) for _ in range(3)]
dead = core.Connection("127.0.0.1", {free_port()})
cmd = ("SET", "k", b"v" * 100, "NX", "PX", 60000)
bad = ("INCR", "k")
def once():
    core.redlock_round(conns, cmd, 10000, 1.0)
    core.redlock_round([*conns, dead], bad, 10000, 1.0)
    try:
        core.redlock_round([conns[0], conns[0]], cmd, 10000, 1.0)
    except RuntimeError:
        pass
def refs():
    return [sys.getrefcount(x) for x in (cmd, bad, *conns, dead)]
"""
    assert_no_leaks(script, impl.implementation)


# -- Redlock basics ---------------------------------------------------------


def test_acquire_release_locked(impl, masters):
    lock = Redlock(key="printer", masters=urls(masters))
    assert lock.key == "redlock:printer"
    assert "redlock:printer" in repr(lock)
    assert lock.locked() == 0
    assert lock.acquire() is True
    # pottery's key, on every master, with one random value and a PX TTL
    values = held_by(masters, "printer")
    assert values == [value_of(lock)] * 5
    assert all(0 < s.client().pttl("redlock:printer") <= 10000 for s in masters)
    left = lock.locked()
    assert isinstance(left, int) and 0 < left <= 10000

    other = Redlock(key="printer", masters=urls(masters))
    assert other.acquire(blocking=False) is False
    assert other.acquire(timeout=0.3) is False
    assert held_by(masters, "printer") == values  # its failed tries deleted nothing
    assert other.locked() == 0
    with pytest.raises(ReleaseUnlockedLock):
        other.release()
    assert held_by(masters, "printer") == values

    lock.release()
    assert held_by(masters, "printer") == [None] * 5
    assert lock.locked() == 0
    with pytest.raises(ReleaseUnlockedLock):
        lock.release()
    with pytest.raises(ExtendUnlockedLock):
        lock.extend()
    assert other.acquire(blocking=False) is True
    other.release()
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError):
        lock.acquire(timeout=-2)


def test_redlock_bad_arguments(impl, masters):
    ok = urls(masters)
    with pytest.raises(TypeError):
        Redlock(key=b"bytes", masters=ok)
    with pytest.raises(ValueError):
        Redlock(key="k", masters=ok, auto_release_time=0)
    with pytest.raises(ValueError):
        Redlock(key="k", masters=ok, auto_release_time=1.5)
    with pytest.raises(ValueError):
        Redlock(key="k", masters=ok, num_extensions=-1)
    with pytest.raises(ValueError):
        Redlock(key="k", masters=[])
    with pytest.raises(TypeError):
        Redlock(key="k", masters=[42])
    with pytest.raises(TypeError):
        Redlock("k", ok)  # keyword-only, as pottery
    default = Redlock(key="k")  # pottery's default: localhost:6379, not contacted
    assert [m.connection_kwargs["port"] for m in default.masters] == [6379]


def test_masters_in_every_form(impl, masters):
    forms = [
        Client(masters[0].host, masters[0].port),
        masters[1].url,
        masters[2].client(),  # redis-py
        Cache(masters[3].host, masters[3].port),
        masters[4].unix_url,
    ]
    lock = Redlock(key="forms", masters=forms)
    assert lock.acquire(blocking=False)
    assert held_by(masters, "forms") == [value_of(lock)] * 5
    lock.release()
    assert held_by(masters, "forms") == [None] * 5


def test_locked_asks_the_masters(impl, masters):
    lock = Redlock(key="asked", masters=urls(masters))
    assert lock.acquire()
    for s in masters[:3]:  # behind the lock's back: a quorum is gone
        s.client().delete("redlock:asked")
    assert lock.locked() == 0
    with pytest.raises(ReleaseUnlockedLock):
        lock.release()
    assert held_by(masters, "asked") == [None] * 5  # the two it held were freed


def test_extend_and_num_extensions(impl, masters):
    lock = Redlock(key="ext", masters=urls(masters), num_extensions=2)
    for _ in range(2):  # the count starts again with each acquisition
        assert lock.acquire()
        for _ in range(2):
            for s in masters:
                s.client().pexpire("redlock:ext", 1000)
            lock.extend()
            assert all(s.client().pttl("redlock:ext") > 1000 for s in masters)
        with pytest.raises(TooManyExtensions):
            lock.extend()
        lock.release()
    assert held_by(masters, "ext") == [None] * 5


def test_extend_needs_a_quorum(impl, masters):
    lock = Redlock(key="ext", masters=urls(masters))
    assert lock.acquire()
    for s in masters[1:4]:
        s.client().set("redlock:ext", "someone else")
    with pytest.raises(ExtendUnlockedLock):
        lock.extend()
    assert [s.client().ttl("redlock:ext") for s in masters[1:4]] == [-1] * 3  # untouched


def test_context_manager(impl, masters):
    lock = Redlock(key="ctx", masters=urls(masters))
    with lock as held:
        assert held is lock
        assert lock.locked() > 0
        assert held_by(masters, "ctx") == [value_of(lock)] * 5
        other = Redlock(key="ctx", masters=urls(masters), context_manager_blocking=False)
        with pytest.raises(QuorumNotAchieved):
            with other:
                pass
        waiting = Redlock(key="ctx", masters=urls(masters), context_manager_timeout=0.2)
        with pytest.raises(QuorumNotAchieved):
            with waiting:
                pass
        assert held_by(masters, "ctx") == [value_of(lock)] * 5
    assert held_by(masters, "ctx") == [None] * 5
    with other:
        assert held_by(masters, "ctx") == [value_of(other)] * 5


def test_synchronize(impl, masters):
    inside = []
    overlaps = []
    calls = []
    unlocked = []

    @synchronize(key="sync", masters=urls(masters))
    def critical(i: int) -> int:
        """Doc."""
        if inside:
            overlaps.append(i)
        inside.append(i)
        # A Redlock is held by a quorum, not by every master: under
        # contention a rival's failed attempt may hold the others briefly.
        values = [v for v in held_by(masters, "sync") if v is not None]
        if not values or max(values.count(v) for v in values) < len(masters) // 2 + 1:
            unlocked.append(i)
        time.sleep(0.005)
        inside.remove(i)
        calls.append(i)
        return i * 2

    assert critical.__name__ == "critical" and critical.__doc__ == "Doc."
    assert critical(21) == 42
    threads = [threading.Thread(target=lambda k=k: [critical(k * 10 + j) for j in range(5)])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [] and unlocked == [] and len(calls) == 21
    assert held_by(masters, "sync") == [None] * 5

    @synchronize(key="sync", masters=urls(masters), blocking=False)
    def nonblocking() -> str:
        return "ran"

    holder = Redlock(key="sync", masters=urls(masters))
    with holder:
        with pytest.raises(QuorumNotAchieved):
            nonblocking()
    assert nonblocking() == "ran"


@pytest.mark.parametrize("fencing", [False, True])
def test_script_cache_flushed_on_some_masters(impl, masters, fencing):
    lock = Redlock(key="flush", masters=urls(masters), fencing=fencing)
    assert lock.acquire()
    lock.release()
    for s in masters[:2]:
        s.client().script_flush()  # as after a restart: EVALSHA gets NOSCRIPT
    assert lock.acquire(blocking=False)
    assert held_by(masters, "flush") == [value_of(lock)] * 5
    first = lock.fencing_token if fencing else 0
    lock.release()
    assert held_by(masters, "flush") == [None] * 5
    for s in masters:
        s.client().script_flush()
    assert lock.acquire(blocking=False)
    assert not fencing or lock.fencing_token > first
    lock.release()
    assert held_by(masters, "flush") == [None] * 5


# -- fencing is opt-in --------------------------------------------------------


def keys_on(servers) -> list[list[bytes]]:
    return [sorted(s.client().keys("*")) for s in servers]


def test_default_redlock_leaves_no_key_behind(impl, masters):
    # An app that locks one name per resource id must not grow Redis: once
    # released (or after a failed try), a default Redlock leaves nothing.
    for i in range(20):
        lock = Redlock(key="order:%d" % i, masters=urls(masters))
        assert lock.acquire(blocking=False)
        lock.extend()
        assert lock.locked() > 0
        assert keys_on(masters) == [[b"redlock:order:%d" % i]] * 5  # no fence key
        lock.release()
    assert keys_on(masters) == [[]] * 5
    # failed tries: contended, and a quorum held by someone else
    holder = Redlock(key="busy", masters=urls(masters))
    assert holder.acquire(blocking=False)
    assert Redlock(key="busy", masters=urls(masters)).acquire(timeout=0.2) is False
    holder.release()
    for s in masters[:3]:
        s.client().set("redlock:taken", "someone else", px=60000)
    assert Redlock(key="taken", masters=urls(masters)).acquire(blocking=False) is False
    assert keys_on(masters) == [[b"redlock:taken"]] * 3 + [[]] * 2
    for s in masters[:3]:
        s.client().delete("redlock:taken")
    with Redlock(key="ctx", masters=urls(masters)):
        pass
    assert keys_on(masters) == [[]] * 5


def test_fencing_token_needs_fencing_true(impl, masters):
    lock = Redlock(key="plain", masters=urls(masters))
    assert lock.fencing is False
    with pytest.raises(RuntimeError, match=r"fencing=True"):
        lock.fencing_token
    assert lock.acquire(blocking=False)
    with pytest.raises(RuntimeError, match=r"redlock:plain.*without fencing=True"):
        lock.fencing_token
    lock.release()

    fenced = Redlock(key="fenced", masters=urls(masters), fencing=True)
    assert fenced.fencing is True and fenced.fencing_token is None
    assert fenced.acquire(blocking=False)
    assert fenced.fencing_token == 1
    fenced.release()
    # the counter stays, without a TTL (tokens must never go back)
    assert keys_on(masters) == [[b"redlock:fenced:fence"]] * 5
    assert [s.client().ttl("redlock:fenced:fence") for s in masters] == [-1] * 5
    # acquisitions without fencing neither read nor raise it
    plain = Redlock(key="fenced", masters=urls(masters))
    assert plain.acquire(blocking=False)
    plain.release()
    assert [s.client().get("redlock:fenced:fence") for s in masters] == [b"1"] * 5
    assert fenced.acquire(blocking=False) and fenced.fencing_token == 2
    fenced.release()


def test_pottery_and_pyredcache_contend_for_one_lock(impl, masters):
    import pottery

    # pottery answers as soon as a quorum of its threads did: the other
    # masters may lag behind, so only quorums are checked
    clients = [s.client() for s in masters]
    theirs = pottery.Redlock(key="printer", masters=set(clients), auto_release_time=10)
    for fencing in (False, True):
        ours = Redlock(key="printer", masters=urls(masters), fencing=fencing)
        assert theirs.acquire(blocking=False)
        assert ours.acquire(blocking=False) is False
        assert held_by(masters, "printer").count(theirs._uuid.encode()) >= 3
        theirs.release()
        assert ours.acquire(timeout=5)
        assert theirs.acquire(blocking=False) is False
        assert held_by(masters, "printer").count(value_of(ours)) >= 3
        ours.release()
        fence = [c.exists("redlock:printer:fence") for c in clients]
        assert fence.count(1) >= 3 if fencing else fence == [0] * 5


def test_auto_release_time_is_milliseconds(impl, masters):
    # pottery's documented API (its README): auto_release_time=15*1000 is
    # 15 seconds.  pottery 3 takes seconds; a float is refused, not guessed.
    lock = Redlock(key="ms", masters=urls(masters), auto_release_time=15 * 1000)
    assert lock.acquire(blocking=False)
    assert all(10000 < s.client().pttl("redlock:ms") <= 15000 for s in masters)
    assert 10000 < lock.locked() <= 15000
    lock.release()
    default = Redlock(key="ms", masters=urls(masters))
    assert default.auto_release_time == 10000
    assert default.acquire(blocking=False)
    assert all(5000 < s.client().pttl("redlock:ms") <= 10000 for s in masters)
    default.release()
    for bad in (.2, 10.0, 15000.0):
        with pytest.raises(ValueError, match=r"milliseconds \(pottery 3 takes seconds: "
                                             r"multiply by 1000\)"):
            Redlock(key="ms", masters=urls(masters), auto_release_time=bad)
        with pytest.raises(ValueError, match="pottery 3 takes seconds"):
            synchronize(key="ms", masters=urls(masters), auto_release_time=bad)
    for doc in (Redlock.__doc__, synchronize.__doc__):
        assert "milliseconds (pottery 3 takes seconds: multiply by 1000)" in " ".join(
            doc.split())


# -- masters on one server ------------------------------------------------------

NOT_INDEPENDENT = ("masters are not independent: a quorum over them does not survive "
                   "that server's failure")


def test_masters_on_one_server_are_accepted_with_a_warning(impl, masters):
    a, b, c = masters[:3]
    # one server, two databases: accepted (as pottery does), and warned about
    forms = ["redis://%s:%d/1" % (a.host, a.port), b.url, "redis://%s:%d/2" % (a.host, a.port)]
    with pytest.warns(UserWarning, match=NOT_INDEPENDENT) as record:
        lock = Redlock(key="same", masters=forms)
    [warning] = record
    assert warning.filename == __file__  # it points at the caller's line
    assert "masters[0] and masters[2] are both %s:%d" % (a.host, a.port) in str(
        warning.message)
    assert "vote as one" not in str(warning.message)
    assert lock.acquire(blocking=False)  # three keys: db 1 and db 2 of a, and b
    assert a.client(db=1).get("redlock:same") == a.client(db=2).get("redlock:same") == \
        b.client().get("redlock:same") == value_of(lock)
    lock.release()
    # one unix socket, by two URLs; on the same db
    with pytest.warns(UserWarning, match=NOT_INDEPENDENT) as record:
        Redlock(key="same", masters=[c.unix_url, a.url, c.unix_url])
    assert c.unix_socket_path in str(record[0].message)
    assert "db 0 (one key: they vote as one master)" in str(record[0].message)
    # synchronize warns once, where it is made, not on every call
    with pytest.warns(UserWarning, match=NOT_INDEPENDENT) as record:
        @synchronize(key="same", masters=forms)
        def f() -> int:
            return 1
    assert len(record) == 1 and record[0].filename == __file__
    assert f() == 1 and f() == 1  # filterwarnings=error: no warning here
    # independent masters: no warning (filterwarnings=error)
    Redlock(key="same", masters=urls(masters))


# -- clients the core cannot use --------------------------------------------------



@pytest.mark.timeout(30)
def test_users_own_clients_hold_locks(impl, masters):
    """Lock, Redlock and synchronize use a fakeredis (or any redis-py
    compatible) client itself: no dialling of the host its settings name."""
    import fakeredis

    fake = fakeredis.FakeRedis()
    lock = Lock("k", redis=fake, expires=5)
    assert lock.acquire() is True and fake.exists("k") == 1
    assert 0 < fake.pttl("k") <= 5000
    lock.release()
    assert fake.exists("k") == 0
    fakes = [fakeredis.FakeRedis(server=fakeredis.FakeServer()) for _ in range(3)]
    red = Redlock(key="k", masters=fakes, auto_release_time=5000)
    assert red.acquire(blocking=False) is True and 0 < red.locked() <= 5000
    assert [f.exists("redlock:k") for f in fakes] == [1, 1, 1]
    assert Redlock(key="k", masters=fakes).acquire(blocking=False) is False  # held
    red.extend()
    red.release()
    assert [f.exists("redlock:k") for f in fakes] == [0, 0, 0]
    # mixed: two real masters through the core, one fakeredis through its client
    mixed = Redlock(key="m", masters=[masters[0].url, fakes[0], masters[1].url],
                    fencing=True)
    assert mixed.acquire(blocking=False) is True and mixed.fencing_token == 1
    assert held_by(masters[:2], "m") == [value_of(mixed)] * 2
    assert fakes[0].get("redlock:m") == value_of(mixed)
    mixed.release()
    assert held_by(masters[:2], "m") == [None] * 2 and fakes[0].exists("redlock:m") == 0
    calls = []

    @synchronize(key="s", masters=fakes)
    def once():
        calls.append(fakes[0].exists("redlock:s"))

    once()
    assert calls == [1] and fakes[0].exists("redlock:s") == 0


def test_a_quorum_of_user_clients_survives_a_failing_one(impl):
    import fakeredis

    fakes = [fakeredis.FakeRedis(server=fakeredis.FakeServer()) for _ in range(3)]
    fakes[2].connection_pool.connection_kwargs["server"].connected = False  # down
    red = Redlock(key="q", masters=fakes)
    assert red.acquire(blocking=False) is True  # two of three
    assert [f.exists("redlock:q") for f in fakes[:2]] == [1, 1]
    red.release()


@pytest.mark.timeout(30)
def test_redis_cluster_client_holds_locks_and_ids(impl, one_node_cluster):
    """A redis.cluster.RedisCluster is used as the client it is: each lock
    key (and id key) lives on the node of its hash slot."""
    from redis.cluster import RedisCluster

    from pyredcache.nextid import NextId

    rc = RedisCluster(host=one_node_cluster.host, port=one_node_cluster.port)
    try:
        lock = Lock("k", redis=rc)
        assert lock.acquire() is True and rc.exists("k") == 1
        lock.release()
        red = Redlock(key="k", masters=[rc])
        assert red.acquire(blocking=False) is True and rc.exists("redlock:k") == 1
        red.release()
        ids = NextId(key="k", masters=[rc])
        assert [next(ids), next(ids)] == [1, 2]
        assert rc.keys() == [b"nextid:k"]
    finally:
        rc.close()


# -- faults -----------------------------------------------------------------


@pytest.mark.parametrize("killed", [(0, 1), (3, 4), (1, 3), (0, 4), (2, 3)])
def test_any_two_masters_killed(impl, masters, killed):
    lock = Redlock(key="faults", masters=urls(masters))
    for i in killed:
        masters[i].kill()
    alive = [s for i, s in enumerate(masters) if i not in killed]
    assert lock.acquire(timeout=10)
    assert held_by(alive, "faults") == [value_of(lock)] * 3
    assert lock.locked() > 0
    lock.extend()
    lock.release()
    assert held_by(alive, "faults") == [None] * 3
    strict = Redlock(key="faults", masters=urls(masters), raise_on_redis_errors=True)
    assert strict.acquire(blocking=False)  # two down: a quorum is possible, no raise
    strict.release()


@pytest.mark.parametrize("killed", [(0, 1, 2), (2, 3, 4), (0, 2, 4)])
def test_three_masters_killed(impl, masters, killed):
    lock = Redlock(key="faults", masters=urls(masters))
    for i in killed:
        masters[i].kill()
    alive = [s for i, s in enumerate(masters) if i not in killed]
    assert lock.acquire(timeout=1) is False  # it must simply return
    assert lock.acquire(blocking=False) is False
    assert held_by(alive, "faults") == [None, None]  # what it set was released
    strict = Redlock(key="faults", masters=urls(masters), raise_on_redis_errors=True)
    with pytest.raises(QuorumNotAchieved) as info:
        strict.acquire(timeout=1)
    assert isinstance(info.value.__cause__, ConnectionError)
    with pytest.raises(QuorumNotAchieved):
        strict.acquire(blocking=False)
    with pytest.raises(QuorumNotAchieved):
        with Redlock(key="faults", masters=urls(masters), context_manager_timeout=0.5):
            pass
    assert held_by(alive, "faults") == [None, None]


def test_raise_on_redis_errors_during_the_hold(impl, masters):
    lock = Redlock(key="hold", masters=urls(masters), raise_on_redis_errors=True)
    assert lock.acquire()
    for s in masters[:3]:
        s.kill()
    with pytest.raises(QuorumNotAchieved):
        lock.locked()
    with pytest.raises(QuorumNotAchieved):
        lock.extend()
    with pytest.raises(QuorumNotAchieved) as info:
        lock.release()
    assert isinstance(info.value.__cause__, ConnectionError)
    assert held_by(masters[3:], "hold") == [None, None]  # released where it could be
    # without the flag the same failures are the plain lock errors
    for s in masters[:3]:
        s.start()
    quiet = Redlock(key="hold", masters=urls(masters))
    assert quiet.acquire()
    for s in masters[:3]:
        s.kill()
    assert quiet.locked() == 0
    with pytest.raises(ExtendUnlockedLock):
        quiet.extend()
    with pytest.raises(ReleaseUnlockedLock):
        quiet.release()


def test_contended_lock_is_not_a_redis_error(impl, masters):
    holder = Redlock(key="busy", masters=urls(masters))
    assert holder.acquire()
    strict = Redlock(key="busy", masters=urls(masters), raise_on_redis_errors=True)
    assert strict.acquire(blocking=False) is False
    holder.release()


def test_frozen_masters(impl, masters):
    # SIGSTOPped masters keep their connections open and answer nothing:
    # each round waits only the per-master timeout for them.
    lock = Redlock(key="frozen", masters=urls(masters), auto_release_time=2000)
    masters[0].pause()
    try:
        assert lock.acquire(timeout=10)
        assert held_by(masters[1:], "frozen") == [value_of(lock)] * 4
        lock.release()
        masters[1].pause()
        masters[2].pause()
        assert lock.acquire(blocking=False) is False
    finally:
        for s in masters[:3]:
            s.resume()
    assert lock.acquire(timeout=10)  # the stale keys of the frozen ones expire
    lock.release()


def test_failed_try_on_a_frozen_fresh_master_leaves_no_key(impl, server):
    # The try's SET is buffered by the frozen master and runs when it
    # wakes; so does the cleanup that follows it, which must not be an
    # EVALSHA of a script this fresh master has never seen (NOSCRIPT: the
    # key would stay for its whole minute).
    lock = Redlock(key="fresh", masters=[Client(server.host, server.port)],
                   auto_release_time=60000)
    server.pause()
    try:
        assert lock.acquire(blocking=False) is False
    finally:
        server.resume()
    time.sleep(0.2)  # the buffered commands run
    r = server.client()
    deadline = time.monotonic() + 5
    while r.exists("redlock:fresh"):
        assert time.monotonic() < deadline, r.pttl("redlock:fresh")
        time.sleep(0.01)
    assert lock.acquire(blocking=False)
    lock.release()


def test_expired_holder_is_locked_out(impl, masters):
    old = Redlock(key="paused", masters=urls(masters), auto_release_time=300, fencing=True)
    assert old.acquire()
    time.sleep(0.5)  # the holder is paused past its validity
    new = Redlock(key="paused", masters=urls(masters), fencing=True)
    assert new.acquire(timeout=10)
    assert new.fencing_token > old.fencing_token
    theirs = [value_of(new)] * 5
    assert old.locked() == 0
    with pytest.raises(ExtendUnlockedLock):
        old.extend()
    with pytest.raises(ReleaseUnlockedLock):
        old.release()
    assert held_by(masters, "paused") == theirs  # the old holder deleted nothing
    assert all(s.client().pttl("redlock:paused") > 300 for s in masters)  # nor extended
    forger = Redlock(key="paused", masters=urls(masters))
    forger._value = "forged"  # as if it held the lock with another value
    with pytest.raises(ReleaseUnlockedLock):
        forger.release()
    forger._value = "forged"
    with pytest.raises(ExtendUnlockedLock):
        forger.extend()
    assert held_by(masters, "paused") == theirs
    new.release()
    assert held_by(masters, "paused") == [None] * 5


# -- fencing tokens ---------------------------------------------------------


ACQUIRE_IN_SUBPROCESS = textwrap.dedent(
    """
    import sys
    from pyredcache import _compat
    from pyredcache.lock import Redlock
    assert _compat.implementation == sys.argv[2], _compat.implementation
    lock = Redlock(key=sys.argv[3], masters=sys.argv[1].split(","), fencing=True)
    assert lock.acquire(timeout=30)
    print(lock.fencing_token)
    lock.release()
    """
)


def acquire_in_subprocess(impl, servers, key: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", ACQUIRE_IN_SUBPROCESS, ",".join(urls(servers)),
         impl.implementation, key],
        capture_output=True, text=True, env=subprocess_env(impl), timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def acquire_here(servers, key: str, **kwargs) -> int:
    lock = Redlock(key=key, masters=urls(servers), fencing=True, **kwargs)
    assert lock.acquire(timeout=30)
    token = lock.fencing_token
    lock.release()
    return token


def test_fencing_tokens_with_changing_majorities(impl, masters):
    # Three masters a, b, c; the majorities {a,b}, {a,c}, {b,c} in turn:
    # the third master is kept out by a lock key of someone else's (a
    # crashed holder's, say).  One INCR per master and max() would give
    # 1, 2, 2 here.
    three = masters[:3]
    tokens = []
    for out in (2, 1, 0):
        three[out].client().set("redlock:fence", "a crashed holder")
        tokens.append(acquire_here(three, "fence"))
        three[out].client().delete("redlock:fence")
    assert tokens == [1, 2, 3]


def test_fencing_tokens_with_changing_majorities_frozen(impl, masters):
    # The same turns, the third master frozen (SIGSTOP) each time.
    three = masters[:3]
    tokens = []
    for frozen in (2, 1, 0):
        three[frozen].pause()
        try:
            # a short TTL: commands buffered by a frozen master run when it
            # wakes and leave stale keys, which expire soon
            tokens.append(acquire_here(three, "fence", auto_release_time=1000))
        finally:
            three[frozen].resume()
    assert all(x < y for x, y in zip(tokens, tokens[1:])), tokens


def test_fencing_tokens_with_changing_majorities_killed(impl, masters):
    # Objects and processes in turn, masters killed and restarted empty so
    # that the majorities are {a,b,c}, {a,b}, {a,c}, {b,c}.
    a, b, c = masters[:3]
    three = [a, b, c]
    tokens = [acquire_here(three, "fence")]
    c.kill()
    tokens.append(acquire_in_subprocess(impl, three, "fence"))  # {a,b}
    c.start()
    b.kill()
    tokens.append(acquire_here(three, "fence"))  # {a,c}
    b.start()
    a.kill()
    tokens.append(acquire_in_subprocess(impl, three, "fence"))  # {b,c}
    a.start()
    tokens.append(acquire_here(three, "fence"))  # {a,b,c}, a empty
    assert all(x < y for x, y in zip(tokens, tokens[1:])), tokens


def test_fencing_tokens_increase_on_five_masters(impl, masters):
    tokens = []
    for i in range(6):
        if i % 2:
            tokens.append(acquire_in_subprocess(impl, masters, "five"))
        else:
            tokens.append(acquire_here(masters, "five"))
    assert tokens[0] == 1 and all(x < y for x, y in zip(tokens, tokens[1:])), tokens
    # the next token is one more than the largest counter of the quorum
    for s in masters:
        s.client().delete("redlock:five:fence")
    masters[3].client().set("redlock:five:fence", 41)
    assert acquire_here(masters, "five") == 42
    assert [s.client().get("redlock:five:fence") for s in masters] == [b"42"] * 5


# -- many processes ---------------------------------------------------------


CONTENDER = textwrap.dedent(
    """
    import os, random, sys, time
    from pyredcache import _compat
    from pyredcache.lock import Redlock
    masters, expected, out, go, rounds = sys.argv[1:6]
    assert _compat.implementation == expected, _compat.implementation
    lock = Redlock(key="fifty", masters=masters.split(","), fencing=True)
    while not os.path.exists(go):
        time.sleep(0.01)
    lines = []
    for _ in range(int(rounds)):
        assert lock.acquire(timeout=240)
        start = time.monotonic()
        token = lock.fencing_token
        time.sleep(0.001)
        end = time.monotonic()
        lock.release()
        lines.append("%d %r %r %d" % (os.getpid(), start, end, token))
        time.sleep(random.uniform(0, 0.01))  # let the others in
    with open(out, "w") as f:
        f.write("\\n".join(lines))
    """
)


def test_fifty_processes_take_turns(impl, masters, tmp_path):
    n, rounds = 50, 3
    go = tmp_path / "go"
    procs = []
    try:
        for i in range(n):
            procs.append(subprocess.Popen(
                [sys.executable, "-c", CONTENDER, ",".join(urls(masters)),
                 impl.implementation, str(tmp_path / ("out%d" % i)), str(go), str(rounds)],
                env=subprocess_env(impl), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            ))
        go.touch()
        errors = [p.communicate(timeout=280)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    failed = [e.decode(errors="replace") for p, e in zip(procs, errors) if p.returncode]
    assert not failed, "%d processes failed; the first said:\n%s" % (len(failed), failed[0])
    holds = []
    for i in range(n):
        for line in (tmp_path / ("out%d" % i)).read_text().splitlines():
            pid, start, end, token = line.split()
            holds.append((float(start), float(end), int(token), int(pid)))
    assert len(holds) == n * rounds
    assert len({pid for *_, pid in holds}) == n  # every process got the lock
    holds.sort()
    for (s1, e1, t1, _), (s2, e2, t2, _) in zip(holds, holds[1:]):
        assert e1 < s2, "two holds overlap"
        assert t1 < t2, "fencing tokens must increase with each acquisition"


# -- Lock (retools) ---------------------------------------------------------


def test_lock_basics(impl, redis_server, redis_url):
    r = redis_server.client()
    with Lock("a_key", expires=60, timeout=10, redis=redis_url) as lock:
        assert isinstance(lock, Lock)
        value = r.get("a_key")
        assert value is not None and 0 < r.pttl("a_key") <= 60000
        other = Lock("a_key", expires=60, timeout=0.2, redis=redis_url)
        with pytest.raises(LockTimeout):
            other.acquire()
        with pytest.raises(LockTimeout):
            with Lock("a_key", timeout=0, redis=redis_url):
                pass
        assert r.get("a_key") == value
    assert r.get("a_key") is None
    assert other.acquire() is True
    assert r.get("a_key") not in (None, value)  # a new random value
    other.release()
    with pytest.raises(ReleaseUnlockedLock):
        other.release()
    with Lock("short", expires=0.25, redis=redis_url):
        assert 0 < r.pttl("short") <= 250
    assert issubclass(LockTimeout, LockError)


def test_lock_redis_forms(impl, redis_server, redis_url):
    s = redis_server
    r = s.client()
    for form in (redis_url, s.unix_url, Client(s.host, s.port), s.client(),
                 Cache(s.host, s.port)):
        with Lock("forms", redis=form):
            assert r.get("forms") is not None
        assert r.get("forms") is None


def test_lock_expired_holder_deletes_nothing(impl, redis_server, redis_url):
    r = redis_server.client()
    old = Lock("exp", expires=0.2, redis=redis_url)
    old.acquire()
    time.sleep(0.4)
    new = Lock("exp", expires=60, timeout=5, redis=redis_url)
    new.acquire()
    theirs = r.get("exp")
    with pytest.raises(ReleaseUnlockedLock):
        old.release()
    assert r.get("exp") == theirs
    new.release()
    assert r.get("exp") is None


def test_lock_excludes_threads(impl, redis_url):
    inside = []
    overlaps = []

    def work(k: int) -> None:
        for j in range(10):
            with Lock("threads", expires=10, timeout=60, redis=redis_url):
                if inside:
                    overlaps.append((k, j))
                inside.append(k)
                time.sleep(0.001)
                inside.remove(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [] and inside == []


def test_lock_bad_arguments(impl, redis_url):
    for kwargs, exc in [
        (dict(expires=0), ValueError),
        (dict(expires=-1), ValueError),
        (dict(expires=float("inf")), ValueError),
        (dict(expires="60"), TypeError),
        (dict(timeout=-1), ValueError),
        (dict(timeout=True), TypeError),
    ]:
        with pytest.raises(exc):
            Lock("k", redis=redis_url, **kwargs)
    with pytest.raises(TypeError):
        Lock(42, redis=redis_url)
    with pytest.raises(TypeError):
        Lock("k", redis=42)
    assert Lock("k").client.connection_kwargs["port"] == 6379  # not contacted
    assert "k" in repr(Lock("k", redis=redis_url))


def test_lock_against_redis_py_holder(impl, redis_server, redis_url):
    # A key set by another client is respected; redis-py sees ours.
    r = redis_server.client()
    r.set("shared", "someone", px=60000)
    with pytest.raises(LockTimeout):
        Lock("shared", timeout=0.1, redis=redis_url).acquire()
    assert r.get("shared") == b"someone"
    r.delete("shared")
    with Lock("shared", redis=redis_url):
        assert r.set("shared", "x", nx=True) is None
