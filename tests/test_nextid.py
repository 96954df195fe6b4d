"""NextId: pottery's API and algorithm over five private redis-servers.

Every test runs on the C core and on the pure twin (``impl``); the
subprocess test starts its children on the same implementation.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

import pyredcache.nextid as nextid_module
from pyredcache import Client
from pyredcache.exceptions import ConnectionError, LockError, QuorumNotAchieved
from pyredcache.nextid import NextId

ROOT = Path(__file__).resolve().parent.parent

# Competing NextId objects (threads with one object each, processes) lose
# races to each other and try again; give them room, as an application that
# expects contention would.  The shared-object case keeps the default.
CONTENDED_TRIES = 20


_opened: list[Client] = []


@pytest.fixture(autouse=True)
def close_clients():
    """Close the test's clients when it ends.  An exception caught by a
    test keeps the test's frame (and so its NextId and clients) in a
    reference cycle; if the pure twin's sockets were still open when the
    collector frees that cycle, the socket could be finalized before its
    connection closes it and warn (an error under filterwarnings)."""
    yield
    while _opened:
        _opened.pop().close()


def clients(servers) -> list[Client]:
    made = [Client(s.host, s.port) for s in servers]
    _opened.extend(made)
    return made


def opened(ids: NextId) -> NextId:
    """ids, its clients closed when the test ends."""
    _opened.extend(ids.masters)
    return ids


def stored(servers, key: str) -> list:
    """The value of key on each server, read with redis-py."""
    out = []
    for s in servers:
        with s.client() as r:
            out.append(r.get(key))
    return out


def strictly_increasing(seq: list[int]) -> bool:
    return all(a < b for a, b in zip(seq, seq[1:]))


def test_pottery_readme_example(impl, masters):
    user_ids = NextId(key="user-ids", masters=clients(masters))
    assert iter(user_ids) is user_ids
    assert [next(user_ids), next(user_ids), next(user_ids)] == [1, 2, 3]
    # pottery's key, holding the decimal value, on every master
    assert stored(masters, "nextid:user-ids") == [b"3"] * 5
    assert user_ids.key == "nextid:user-ids"
    assert repr(user_ids) == "<pyredcache.NextId key='nextid:user-ids' masters=5 quorum=3>"
    assert user_ids.quorum == 3
    # a for loop takes ids too
    for i, got in zip(range(2), user_ids):
        assert got == 4 + i


def test_masters_given_as_urls_and_redis_py_clients(impl, masters):
    mixed = [masters[0].url, masters[1].client(), Client(masters[2].host, masters[2].port),
             masters[3].unix_url, masters[4].url]
    ids = opened(NextId(key="mixed", masters=mixed))
    assert [next(ids) for _ in range(3)] == [1, 2, 3]
    assert stored(masters, "nextid:mixed") == [b"3"] * 5


def test_continues_a_sequence_written_by_pottery(impl, masters):
    # pottery stores the id as a decimal string at "nextid:<key>"; some
    # masters may be behind after a failed try: the largest value wins.
    for s, value in zip(masters, [41, 41, 40, 41, None]):
        if value is not None:
            s.client().set("nextid:orders", value)
    ids = NextId(key="orders", masters=clients(masters))
    assert next(ids) == 42
    assert stored(masters, "nextid:orders") == [b"42"] * 5


def ids_from_eight_threads(take) -> list[int]:
    """Run take() (100 ids) in 8 threads at once; check that every id is
    unique and each thread's ids rise; return them all."""
    got: dict[int, list[int]] = {}
    errors: list[Exception] = []

    def work(n: int) -> None:
        try:
            got[n] = take()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    every = [i for seq in got.values() for i in seq]
    assert len(every) == 800 and len(set(every)) == 800
    assert all(strictly_increasing(seq) for seq in got.values())
    return every


def test_threads_sharing_one_object(impl, masters):
    ids = NextId(key="shared", masters=clients(masters))
    every = ids_from_eight_threads(lambda: [next(ids) for _ in range(100)])
    # one object runs one request at a time: no holes
    assert sorted(every) == list(range(1, 801))


def test_threads_with_one_object_each(impl, masters):
    def take() -> list[int]:
        ids = NextId(key="raced", masters=clients(masters), num_tries=CONTENDED_TRIES)
        return [next(ids) for _ in range(100)]

    every = ids_from_eight_threads(take)
    # the sequence on a quorum is at least the largest id handed out
    values = sorted(int(v or 0) for v in stored(masters, "nextid:raced"))
    assert values[2] >= max(every)


CHILD = """
import json, sys
from pyredcache import _compat
from pyredcache.nextid import NextId
ids = NextId(key="procs", masters=sys.argv[2:], num_tries=int(sys.argv[1]))
out = [next(ids) for _ in range(100)]
print(json.dumps({"implementation": _compat.implementation, "ids": out}))
"""


def test_processes(impl, masters):
    env = dict(os.environ)
    env.pop("PYREDCACHE_NO_EXTENSIONS", None)
    if impl.implementation == "python":
        env["PYREDCACHE_NO_EXTENSIONS"] = "1"
    args = [sys.executable, "-c", CHILD, str(CONTENDED_TRIES)] + [s.url for s in masters]
    procs = [subprocess.Popen(args, env=env, cwd=str(ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert {r["implementation"] for r in results} == {impl.implementation}
    every = [i for r in results for i in r["ids"]]
    assert len(every) == 400 and len(set(every)) == 400
    assert all(strictly_increasing(r["ids"]) for r in results)


def test_survives_two_masters_killed(impl, masters):
    ids = NextId(key="k", masters=clients(masters))
    assert [next(ids), next(ids)] == [1, 2]
    masters[0].kill()
    masters[3].kill()
    assert [next(ids) for _ in range(3)] == [3, 4, 5]
    assert stored([masters[i] for i in (1, 2, 4)], "nextid:k") == [b"5"] * 3


def test_survives_a_silent_master(impl, masters):
    ids = NextId(key="k", masters=clients(masters), timeout=0.05)
    assert next(ids) == 1
    masters[2].pause()
    try:
        assert [next(ids), next(ids)] == [2, 3]
    finally:
        masters[2].resume()
    # the silent master's connection was dropped and is reopened
    assert next(ids) == 4
    assert stored(masters, "nextid:k") == [b"4"] * 5


def test_a_master_holding_a_wrong_type_does_not_vote(impl, masters):
    masters[1].client().rpush("nextid:k", "x")
    ids = NextId(key="k", masters=clients(masters))
    assert [next(ids), next(ids)] == [1, 2]
    assert masters[1].client().type("nextid:k") == b"list"


class CountingFanOut:
    """Wraps nextid's multi_pipeline to count the reads (GET on every master)."""

    def __init__(self) -> None:
        self.reads = 0
        self.real = nextid_module.multi_pipeline

    def __call__(self, jobs, timeout=None):
        if jobs and jobs[0][1][0][0] == "GET":
            self.reads += 1
        return self.real(jobs, timeout)


def test_three_masters_killed_no_quorum(impl, masters, monkeypatch):
    ids = NextId(key="k", masters=clients(masters), num_tries=4)
    assert next(ids) == 1
    for s in masters[:3]:
        s.kill()
    counter = CountingFanOut()
    monkeypatch.setattr(nextid_module, "multi_pipeline", counter)
    with pytest.raises(QuorumNotAchieved) as info:
        next(ids)
    assert counter.reads == 4  # every try was made
    exc = info.value
    assert isinstance(exc, LockError) and isinstance(exc, RuntimeError)
    assert isinstance(exc.__cause__, ConnectionError)
    assert exc.key == "nextid:k" and len(exc.redis_errors) == 3
    # nothing was written on the survivors
    assert stored(masters[3:], "nextid:k") == [b"1", b"1"]


def test_three_masters_killed_raise_on_redis_errors(impl, masters, monkeypatch):
    ids = NextId(key="k", masters=clients(masters), num_tries=4, raise_on_redis_errors=True)
    assert next(ids) == 1
    for s in masters[:3]:
        s.kill()
    counter = CountingFanOut()
    monkeypatch.setattr(nextid_module, "multi_pipeline", counter)
    with pytest.raises(QuorumNotAchieved) as info:
        next(ids)
    assert counter.reads == 1  # raised at once, no further tries
    assert isinstance(info.value.__cause__, ConnectionError)
    assert all(isinstance(e, ConnectionError) for e in info.value.redis_errors)


def test_raise_on_redis_errors_tolerates_a_minority_down(impl, masters):
    ids = NextId(key="k", masters=clients(masters), raise_on_redis_errors=True)
    masters[4].kill()
    masters[1].kill()
    assert [next(ids), next(ids)] == [1, 2]


@pytest.mark.parametrize("restarted", [1, 2])
def test_masters_restarted_empty_do_not_move_ids_back(impl, masters, restarted):
    ids = NextId(key="k", masters=clients(masters))
    assert [next(ids) for _ in range(10)] == list(range(1, 11))
    for s in masters[:restarted]:
        s.restart()  # no persistence: it comes back empty
        assert s.client().get("nextid:k") is None
    assert [next(ids) for _ in range(3)] == [11, 12, 13]
    assert stored(masters, "nextid:k") == [b"13"] * 5


def test_reset(impl, masters):
    ids = NextId(key="k", masters=clients(masters))
    other = NextId(key="k", masters=clients(masters))
    assert [next(ids) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert ids.reset() is None
    assert stored(masters, "nextid:k") == [None] * 5
    assert [next(other), next(ids)] == [1, 2]


def test_reset_needs_a_quorum(impl, masters):
    ids = NextId(key="k", masters=clients(masters))
    assert next(ids) == 1
    for s in masters[2:]:
        s.kill()
    with pytest.raises(QuorumNotAchieved) as info:
        ids.reset()
    assert isinstance(info.value.__cause__, ConnectionError)


def test_reset_with_a_minority_down(impl, masters):
    ids = NextId(key="k", masters=clients(masters))
    assert [next(ids), next(ids)] == [1, 2]
    masters[0].kill()
    masters[1].kill()
    ids.reset()
    assert stored(masters[2:], "nextid:k") == [None] * 3
    assert next(ids) == 1


def test_keys_are_independent(impl, masters):
    users = NextId(key="users", masters=clients(masters))
    posts = NextId(key="posts", masters=clients(masters))
    assert [next(users), next(users), next(posts), next(users), next(posts)] == [1, 2, 1, 3, 2]
    users.reset()
    assert [next(users), next(posts)] == [1, 3]
    assert stored(masters, "nextid:users") == [b"1"] * 5
    assert stored(masters, "nextid:posts") == [b"3"] * 5


def test_default_masters_is_localhost_6379_without_connecting(impl):
    ids = opened(NextId())
    assert ids.key == "nextid:current" and ids.num_tries == 3 and ids.timeout == 0.1
    (client,) = ids.masters
    assert (client.connection_kwargs["host"], client.connection_kwargs["port"]) == (
        "localhost", 6379)


def test_bad_arguments(impl, masters):
    ok = [s.url for s in masters]
    with pytest.raises(ValueError, match="num_tries"):
        NextId(masters=ok, num_tries=0)
    with pytest.raises(TypeError, match="num_tries"):
        NextId(masters=ok, num_tries=2.5)
    with pytest.raises(ValueError, match="masters"):
        NextId(masters=[])
    with pytest.raises(ValueError, match="timeout"):
        NextId(masters=ok, timeout=0)
    with pytest.raises(TypeError, match="masters"):
        NextId(masters=ok[0])
    with pytest.raises(TypeError):
        NextId(masters=[42])
    with pytest.raises(TypeError, match="key"):
        NextId(key=b"k", masters=ok)
    with pytest.raises(TypeError):
        NextId("k", ok)  # keyword-only, as pottery's


NOT_INDEPENDENT = ("masters are not independent: a quorum over them does not survive "
                   "that server's failure")


def test_masters_on_one_server_are_accepted_with_a_warning(impl, masters):
    # As Redlock and pottery: accepted (they used to raise ValueError), and
    # warned about, whatever their db.
    a, b = masters[:2]
    forms = [Client(a.host, a.port, db=1), Client(b.host, b.port), Client(a.host, a.port, db=2)]
    _opened.extend(forms)
    with pytest.warns(UserWarning, match=NOT_INDEPENDENT) as record:
        ids = NextId(key="same", masters=forms)
    [warning] = record
    assert warning.filename == __file__  # it points at the caller's line
    message = str(warning.message)
    assert "nextid:same" in message and "vote as one" not in message
    assert "masters[0] and masters[2] are both %s:%d" % (a.host, a.port) in message
    assert [next(ids), next(ids)] == [1, 2]
    assert [a.client(db=1).get("nextid:same"), b.client().get("nextid:same"),
            a.client(db=2).get("nextid:same")] == [b"2"] * 3
    # one db, the same server twice: the two share the key, so vote as one
    with pytest.warns(UserWarning, match=NOT_INDEPENDENT) as record:
        ids = opened(NextId(key="twice", masters=[a.unix_url, b.url, a.unix_url]))
    assert "both %s db 0 (one key: they vote as one master)" % a.unix_socket_path in str(
        record[0].message)
    assert next(ids) == 1
    # independent masters: no warning (filterwarnings=error)
    opened(NextId(key="same", masters=clients(masters)))


@pytest.mark.timeout(30)
def test_users_own_clients_serve_as_masters(impl, masters):
    """fakeredis masters are used through their own clients (no dialling of
    the host their settings name), alone or beside masters on the core."""
    import fakeredis

    fakes = [fakeredis.FakeRedis(server=fakeredis.FakeServer()) for _ in range(3)]
    ids = NextId(key="f", masters=fakes)
    assert [next(ids) for _ in range(3)] == [1, 2, 3]
    assert [int(f.get("nextid:f")) for f in fakes] == [3, 3, 3]
    mixed = NextId(key="m", masters=[masters[0].url, fakes[0], masters[1].url])
    assert [next(mixed), next(mixed)] == [1, 2]
    assert int(fakes[0].get("nextid:m")) == 2
    assert stored(masters[:2], "nextid:m") == [b"2", b"2"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_inherit_a_held_mutex(impl, masters):
    ids = NextId(key="k", masters=clients(masters))
    assert next(ids) == 1
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        with ids._mutex:  # as if another thread were inside next() at fork time
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                try:
                    os.write(w, str(next(ids)).encode())
                finally:
                    os._exit(0)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 30)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        got = os.read(r, 64) if ready else b"child hung"
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert got == b"2"
    assert next(ids) == 3
