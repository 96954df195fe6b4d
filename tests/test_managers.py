"""redcache's face (pyredcache.managers): the connection stack, CacheManager
and its hooks, default_cache, against the suite's private servers.

Every example of redcache's README (``tests/reference/redcache-README.rst``,
a copy of the document as it is) runs as written with only its imports
changed (``from redcache import X`` becomes ``from pyredcache.managers
import X``); its ``use_connection()`` reaches the session server through
``$REDIS_URL`` (monkeypatched).  Nothing here talks to port 6379.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import fakeredis
import pytest
import redis as redis_py

from examplesupport import connections_to
from pyredcache import Cache, CacheCluster, Client
from pyredcache import managers
from pyredcache.exceptions import (
    CacheConfigurationError,
    ConnectionError,
    TimeoutError,
)
from pyredcache.managers import (
    CacheManager,
    DefaultCacheManager,
    default_cache,
    get_current_connection,
    pop_connection,
    push_connection,
    use_connection,
)
from pyredcache.serializers import NativeSerializer, PickleSerializer

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "reference" / "redcache-README.rst"


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No connection anywhere: no process-wide default, an empty stack in
    this context, no $REDIS_URL; restored after the test."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(managers, "_default", None)
    token = managers._stack.set(None)
    yield
    managers._stack.reset(token)


def connections_received(checker) -> int:
    """The server's count of accepted connections (INFO stats), read on
    an established connection of the test's own (which the count already
    includes)."""
    return int(checker.info("stats")["total_connections_received"])


def run_py(code: str, env: dict | None = None, timeout: float = 60) -> str:
    full = dict(os.environ, PYTHONPATH=str(ROOT))
    full.update(env or {})
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- redcache's README, run as written ------------------------------------------------


def rst_blocks(text: str) -> list[tuple[int, str]]:
    """The literal blocks of an reST document: (first line, 1-based; the
    dedented text) of every indented block after a paragraph ending with
    ``::`` (directives, ``.. x::``, excluded)."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            base = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            start = j
            while j < len(lines) and (not lines[j].strip()
                                      or len(lines[j]) - len(lines[j].lstrip()) > base):
                j += 1
            body = "\n".join(lines[start:j]).rstrip("\n")
            if body.strip():
                blocks.append((start + 1, textwrap.dedent(body) + "\n"))
            i = j
        else:
            i += 1
    return blocks


IMPORT = re.compile(r"^(\s*)from redcache(?:\.cache_manager|\.connection)? import ")


def rewrite(code: str) -> str:
    """The only change made to an example: redcache's imports become
    pyredcache.managers'."""
    return "\n".join(IMPORT.sub(r"\1from pyredcache.managers import ", line)
                     for line in code.split("\n"))


#: What the README uses without defining it (its placeholders): the Flask
#: app and jsonify of its view, and the ``data`` its loader returns.
PRELUDE = """\
from flask import Flask, jsonify
app = Flask(__name__)
data = {"answer": 42, "items": [1, 2, 3]}
"""


def test_readme_inventory():
    blocks = rst_blocks(README.read_text())
    assert [line for line, _ in blocks] == [12, 18, 39, 44]
    first = [code.splitlines()[0] for _, code in blocks]
    assert first == ["def load_something_from_somewhere():",
                     "@app.route('/something/')",
                     "from redcache import use_connection",
                     "from redcache import default_cache"]
    for _, code in blocks:
        compile(code, "<readme>", "exec")
        new = rewrite(code)
        changed = [(a, b) for a, b in zip(code.split("\n"), new.split("\n")) if a != b]
        assert all(IMPORT.match(a) for a, _ in changed)  # imports only
        assert "redcache" not in new.replace("pyredcache", "")
        assert "6379" not in new and "localhost" not in new


def test_readme_examples(impl, redis_server, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)  # use_connection() with no argument
    checker = redis_server.client()
    blocks = rst_blocks(README.read_text())
    ns = {"__name__": "reference_example"}
    exec(compile(PRELUDE, "<prelude>", "exec"), ns)
    for line, code in blocks:
        exec(compile(rewrite(code), "%s:%d" % (README.name, line), "exec"), ns)
        if line == 12:  # the plain loader, before it is cached
            assert ns["load_something_from_somewhere"]() == ns["data"]
    # use_connection() took $REDIS_URL: the session server
    assert get_current_connection().address == "%s:%d" % (redis_server.host,
                                                           redis_server.port)
    assert checker.keys("*") == []

    client = ns["app"].test_client()
    first = client.get("/something/")
    assert first.status_code == 200
    assert first.get_json() == {"data": {"answer": 42, "items": [1, 2, 3]}}
    key = default_cache.key(ns["load_something_from_somewhere"], ())
    assert key.startswith("cache:reference_example.load_something_from_somewhere:")
    assert checker.keys("*") == [key.encode()]
    assert 0 < checker.pttl(key) <= 5000  # "stored in Redis for 5 seconds"
    assert NativeSerializer().loads(checker.get(key)) == {"answer": 42, "items": [1, 2, 3]}

    ns["data"] = {"answer": 0}  # the source changes: the view still gets the cached value
    assert client.get("/something/").get_json() == first.get_json()
    checker.delete(key)  # the entry is gone: loaded again
    assert client.get("/something/").get_json() == {"data": {"answer": 0}}
    assert connections_to({6379}) == []


# -- connections: what is accepted, and when it connects -------------------------------


def test_use_connection_without_argument_reads_redis_url(impl, server, monkeypatch):
    # a server of its own: no client of an earlier test has a connection to it
    monkeypatch.setenv("REDIS_URL", server.url)
    checker = server.client()
    before = connections_received(checker)
    use_connection()
    conn = get_current_connection()
    assert isinstance(conn, Client)
    assert conn.address == "%s:%d" % (server.host, server.port)
    assert conn.connection_kwargs["socket_timeout"] == 1.0
    assert conn.connection_kwargs["socket_connect_timeout"] == 1.0

    @default_cache.cache()
    def f(x):
        return x * 2

    assert connections_received(checker) == before  # nothing connected yet
    assert f(21) == 42
    assert connections_received(checker) > before
    assert NativeSerializer().loads(checker.get(default_cache.key(f, (21,)))) == 42


def test_use_connection_without_argument_nor_redis_url_is_localhost_6379(impl):
    use_connection()  # no command is sent: nothing reaches the system Redis
    conn = get_current_connection()
    assert conn.address == "localhost:6379"
    assert conn.connection_kwargs["db"] == 0
    assert connections_to({6379}) == []


def test_nothing_connects_before_the_first_command(impl, server, monkeypatch):
    server.kill()  # nothing listens there now
    monkeypatch.setenv("REDIS_URL", server.url)
    use_connection()
    push_connection(server.url)
    push_connection(redis_py.Redis(host=server.host, port=server.port))
    manager = CacheManager(connection=server.url)

    @manager.cache(ttl=5)
    def f(x):
        return x

    @default_cache.cache
    def g(x):
        return x

    assert get_current_connection() is not None  # all of it set up, no error
    with pytest.raises(ConnectionError):
        f(1)  # the first command is what fails
    with pytest.raises(ConnectionError):
        g(1)


def test_import_and_use_connection_connect_nothing(redis_server):
    checker = redis_server.client()
    before = connections_received(checker)
    out = run_py("""
        import pyredcache.managers
        from pyredcache.managers import use_connection, default_cache, get_current_connection
        use_connection()
        @default_cache.cache(ttl=5)
        def f():
            return 1
        print(get_current_connection().address)
    """, env={"REDIS_URL": redis_server.url})
    assert out.strip() == "%s:%d" % (redis_server.host, redis_server.port)
    assert connections_received(checker) == before


@pytest.mark.parametrize("kind", ["redis-py", "fakeredis", "cache", "client", "url",
                                  "unix-url"])
def test_accepted_connections(impl, redis_server, redis_url, kind):
    checker = redis_server.client()
    fake = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    given = {
        "redis-py": lambda: redis_server.client(),
        "fakeredis": lambda: fake,
        "cache": lambda: Cache(redis_server.host, redis_server.port, namespace="ns:"),
        "client": lambda: Client(redis_server.host, redis_server.port),
        "url": lambda: redis_server.url,
        "unix-url": lambda: redis_server.unix_url,
    }[kind]()
    use_connection(given)
    conn = get_current_connection()
    if kind in ("redis-py", "fakeredis", "client"):
        assert conn is given  # as pushed: a redis.Redis keeps redis-py's commands
    elif kind == "cache":
        assert conn is given.client
    else:
        assert isinstance(conn, Client)

    calls = []

    @default_cache.cache(ttl=5)
    def f(x):
        calls.append(x)
        return {"x": x}

    assert f("a") == f("a") == {"x": "a"}
    assert calls == ["a"]
    key = default_cache.key(f, ("a",))
    where = fake if kind == "fakeredis" else checker
    assert NativeSerializer().loads(where.get(key)) == {"x": "a"}  # the cache's namespace
    assert 0 < where.pttl(key) <= 5000                             # is not the manager's
    if kind != "fakeredis":
        assert fake.keys("*") == []


def test_a_cache_cluster_routes_each_key(impl, shards):
    cluster = CacheCluster({"s%d" % i: {"host": s.host, "port": s.port}
                            for i, s in enumerate(shards)})
    use_connection(cluster)
    assert get_current_connection() is cluster.client

    @default_cache.cache()
    def f(x):
        return x

    for i in range(40):
        assert f(i) == i
    servers = {"%s:%d" % (s.host, s.port): s.client() for s in shards}
    used = set()
    for i in range(40):
        key = default_cache.key(f, (i,))
        address = cluster.client.client_for_key(key).address
        assert servers[address].get(key) is not None
        assert sum(c.exists(key) for c in servers.values()) == 1
        used.add(address)
    assert len(used) > 1


def test_bad_connections_are_refused_at_once():
    with pytest.raises(TypeError):
        push_connection(None)
    with pytest.raises(TypeError):
        push_connection(42)
    with pytest.raises(TypeError):
        use_connection(object())
    with pytest.raises(ValueError):
        use_connection("http://example.invalid/")
    with pytest.raises(TypeError):
        CacheManager(connection=3.5)
    assert get_current_connection() is None


def test_explicit_connection_wins_over_the_stack(impl, redis_server, redis_url, server):
    manager = CacheManager(connection=redis_server.url)
    push_connection(server.url)  # another server on the stack

    @manager.cache
    def f(x):
        return x

    assert f(1) == 1
    key = manager.key(f, (1,))
    assert redis_server.client().exists(key) == 1
    assert server.client().exists(key) == 0
    assert isinstance(manager.connection, Client)


def test_every_wait_is_bounded(impl, server):
    # a redis.Redis left at redis-py's default (no timeout): the manager's
    # commands still give up, after pyredcache's 1.0 s
    use_connection(redis_py.Redis(host=server.host, port=server.port))

    @default_cache.cache()
    def f(x):
        return x

    assert f(1) == 1
    server.pause()
    try:
        with pytest.raises(TimeoutError):
            f(2)
    finally:
        server.resume()


# -- the stack is context-local ---------------------------------------------------------


def clients(n: int) -> list[Client]:
    # never used for a command: distinct objects to push
    return [Client("127.0.0.1", 1 + i) for i in range(n)]


def test_stack_push_pop_and_use_connection():
    a, b, c = clients(3)
    assert get_current_connection() is None
    assert pop_connection() is None  # empty: None, as in redcache
    use_connection(a)
    assert get_current_connection() is a
    push_connection(b)
    push_connection(c)
    assert get_current_connection() is c
    with pytest.raises(RuntimeError, match="use_connection"):
        use_connection(b)  # mixing pushes with use_connection(), as redcache refuses
    assert pop_connection() is c
    assert pop_connection() is b
    assert get_current_connection() is a
    use_connection(b)  # one level: allowed, replaces it
    assert get_current_connection() is b
    assert pop_connection() is b
    assert get_current_connection() is None


def test_connection_context_manager():
    a, b = clients(2)
    use_connection(a)
    with managers.Connection(b) as conn:
        assert conn is b
        assert get_current_connection() is b
    assert get_current_connection() is a
    with pytest.raises(RuntimeError, match="unexpected"):
        with managers.Connection(b):
            push_connection(a)  # pushed and not popped inside the block


def test_threads_see_their_own_pushes_and_the_default():
    a, b, c, d = clients(4)
    use_connection(a)
    push_connection(b)
    seen = {}

    def worker():
        seen["start"] = get_current_connection()
        push_connection(c)
        seen["pushed"] = get_current_connection()
        ready.set()
        go.wait(10)
        seen["after-main-use"] = get_current_connection()
        seen["popped"] = pop_connection()
        seen["end"] = get_current_connection()

    ready, go = threading.Event(), threading.Event()
    t = threading.Thread(target=worker)
    t.start()
    assert ready.wait(10)
    assert get_current_connection() is b  # the thread's push is its own
    assert pop_connection() is b
    use_connection(d)  # a new process-wide default
    go.set()
    t.join(10)
    assert seen["start"] is a  # a new thread starts from the default
    assert seen["pushed"] is c
    assert seen["after-main-use"] is c
    assert seen["popped"] is c
    assert seen["end"] is a  # the stack it started from

    late = {}
    t2 = threading.Thread(target=lambda: late.setdefault("conn", get_current_connection()))
    t2.start()
    t2.join(10)
    assert late["conn"] is d  # started after use_connection(d)
    assert get_current_connection() is d


def test_copied_contexts_and_asyncio_tasks():
    a, b, c, d, e = clients(5)
    use_connection(a)
    push_connection(b)

    def in_copy():
        assert get_current_connection() is b  # copied with the context
        push_connection(c)
        return get_current_connection()

    assert contextvars.copy_context().run(in_copy) is c
    assert get_current_connection() is b  # the copy's push stayed there

    async def task(conn):
        push_connection(conn)
        for _ in range(3):
            await asyncio.sleep(0)  # the other task runs meanwhile
            assert get_current_connection() is conn
        return pop_connection()

    async def main():
        results = await asyncio.gather(task(d), task(e))
        return results, get_current_connection()

    results, after = asyncio.run(main())
    assert results[0] is d and results[1] is e
    assert after is b
    assert get_current_connection() is b


def test_threads_cache_into_their_own_servers(impl, redis_server, redis_url, server):
    calls = []

    @default_cache.cache()
    def f(x):
        calls.append(x)
        return x

    errors = []
    seen = {}
    together = threading.Barrier(2, timeout=10)

    def worker(url):
        try:
            push_connection(url)
            together.wait()  # both pushes are made before either thread calls
            seen[url] = get_current_connection().address
            assert f("same") == "same"
            together.wait()  # and both calls are made before either pops
            pop_connection()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s.url,)) for s in (redis_server, server)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert seen == {s.url: "%s:%d" % (s.host, s.port) for s in (redis_server, server)}
    key = default_cache.key(f, ("same",))
    assert redis_server.client().exists(key) == 1
    assert server.client().exists(key) == 1
    assert calls == ["same", "same"]  # one miss on each server
    with pytest.raises(CacheConfigurationError):
        f("same")  # this thread pushed nothing


# -- no connection ----------------------------------------------------------------------


def test_no_connection_raises_naming_use_connection(impl):
    calls = []

    @default_cache.cache(ttl=5)
    def f(x):
        calls.append(x)
        return x

    with pytest.raises(CacheConfigurationError, match="use_connection"):
        f(1)
    use_connection(Client("127.0.0.1", 1))
    pop_connection()  # popped again: none left
    with pytest.raises(CacheConfigurationError, match="use_connection"):
        f(1)
    with pytest.raises(CacheConfigurationError, match="use_connection"):
        CacheManager().load("k")
    assert calls == []  # the function never ran


# -- the hooks --------------------------------------------------------------------------


class Recording(CacheManager):
    """Every hook logs its call, then does the default's work."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = []

    def load(self, key, f_args=None, f_kwargs=None):
        data = super().load(key, f_args=f_args, f_kwargs=f_kwargs)
        self.log.append(("load", key, f_args, f_kwargs, data))
        return data

    def after_load(self, data, f_args=None, f_kwargs=None):
        value = super().after_load(data, f_args=f_args, f_kwargs=f_kwargs)
        self.log.append(("after_load", data, f_args, f_kwargs, value))
        return value

    def before_save(self, data, f_args=None, f_kwargs=None):
        cached = super().before_save(data, f_args=f_args, f_kwargs=f_kwargs)
        self.log.append(("before_save", data, f_args, f_kwargs, cached))
        return cached

    def save(self, key, data, f_args=None, f_kwargs=None):
        self.log.append(("save", key, data, f_args, f_kwargs))
        super().save(key, data, f_args=f_args, f_kwargs=f_kwargs)


@pytest.mark.parametrize("ttl", [None, 5])
def test_hooks_are_called_in_order_with_the_right_values(impl, redis_server, redis_url, ttl):
    checker = redis_server.client()
    use_connection(redis_url)
    manager = Recording(key_base="rec")

    @manager.cache(ttl=ttl)
    def f(a, b=0):
        manager.log.append(("f", a, b))
        return {"sum": a + b}

    key = manager.key(f, (1,), {"b": 2})
    assert key.startswith("rec:%s.%s:" % (f.__module__, f.__qualname__))
    assert f(1, b=2) == {"sum": 3}
    cached = NativeSerializer().dumps({"sum": 3})
    assert manager.log == [
        ("load", key, (1,), {"b": 2}, None),
        ("f", 1, 2),
        ("before_save", {"sum": 3}, (1,), {"b": 2}, cached),
        ("save", key, cached, (1,), {"b": 2}),
    ]
    assert checker.get(key) == cached
    if ttl is None:
        assert checker.pttl(key) == -1
    else:
        assert 0 < checker.pttl(key) <= 5000  # an overridden save: then EXPIRE

    manager.log.clear()
    assert f(1, 2) == {"sum": 3}  # the same call, spelled positionally: a hit
    assert manager.log == [
        ("load", key, (1, 2), {}, cached),
        ("after_load", cached, (1, 2), {}, {"sum": 3}),
    ]


def test_none_is_not_stored(impl, redis_server, redis_url):
    use_connection(redis_url)
    manager = Recording()
    calls = []

    @manager.cache
    def f():
        calls.append(1)

    assert f() is None and f() is None
    assert calls == [1, 1]
    assert [entry[0] for entry in manager.log] == ["load", "load"]
    assert redis_server.client().keys("*") == []


def test_json_hooks_as_redcache_example_writes_them(impl, redis_server, redis_url):
    """redcache's JSON example: hooks taking f_args/f_kwargs as **kwargs."""

    class JsonCacheManager(CacheManager):
        def before_save(self, data, **kwargs):
            return json.dumps(data)

        def after_load(self, data, **kwargs):
            return json.loads(data)

    use_connection(redis_server.client())
    manager = JsonCacheManager()
    calls = []

    @manager.cache
    def cached(spam, eggs):
        calls.append(1)
        return {"spam": spam, "eggs": eggs}

    assert cached("spam", "eggs") == cached("spam", "eggs") == {"spam": "spam", "eggs": "eggs"}
    assert calls == [1]
    raw = redis_server.client().get(manager.key(cached, ("spam", "eggs")))
    assert json.loads(raw) == {"spam": "spam", "eggs": "eggs"}


@pytest.mark.parametrize("ttl", [None, 5])
def test_load_and_save_store_a_list_of_objects(impl, redis_server, redis_url, ttl):
    """The README's other extension: load/save keep a Redis list of
    individually encoded objects, through the redis.Redis pushed."""

    class ListCacheManager(CacheManager):
        def load(self, key, f_args=None, f_kwargs=None):
            return self.connection.lrange(key, 0, -1)

        def save(self, key, data, f_args=None, f_kwargs=None):
            self.connection.rpush(key, *data)

        def before_save(self, data, f_args=None, f_kwargs=None):
            return [self.serializer.dumps(item) for item in data]

        def after_load(self, data, f_args=None, f_kwargs=None):
            return [self.serializer.loads(item) for item in data]

    checker = redis_server.client()
    use_connection(redis_server.client())
    manager = ListCacheManager(ttl=ttl)
    calls = []

    @manager.cache
    def records(kind):
        calls.append(kind)
        return [{"id": i, "kind": kind} for i in range(3)]

    expected = [{"id": i, "kind": "a"} for i in range(3)]
    assert records("a") == records("a") == expected
    assert calls == ["a"]
    key = manager.key(records, ("a",))
    assert checker.type(key) == b"list"
    assert checker.llen(key) == 3
    if ttl is None:
        assert checker.pttl(key) == -1
    else:
        assert 0 < checker.ttl(key) <= 5


def test_a_key_override_is_used(impl, redis_server, redis_url):
    class Plain(CacheManager):
        def key(self, f, args=(), kwargs=None):
            return "plain:" + ":".join(map(str, args))

    use_connection(redis_url)
    manager = Plain()

    @manager.cache
    def f(a, b):
        return a + b

    assert f(1, 2) == 3
    assert redis_server.client().keys("*") == [b"plain:1:2"]


def test_undecodable_value_is_a_miss(impl, redis_server, redis_url, caplog):
    use_connection(redis_url)
    manager = CacheManager()  # its own once-per-key log

    @manager.cache()
    def f(x):
        return x + 1

    key = manager.key(f, (1,))
    redis_server.client().set(key, b"\xc1 not a value")
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        assert f(1) == 2
    assert "treating" in caplog.text
    assert NativeSerializer().loads(redis_server.client().get(key)) == 2  # overwritten


# -- ttl -----------------------------------------------------------------------------


def test_no_ttl_is_no_expiry(impl, redis_server, redis_url):
    checker = redis_server.client()
    use_connection(redis_url)

    @default_cache.cache()
    def a():
        return 1

    @default_cache.cache
    def b():
        return 2

    @CacheManager().cache(ttl=None)
    def c():
        return 3

    a(), b(), c()
    keys = checker.keys("*")
    assert len(keys) == 3
    assert [checker.pttl(k) for k in keys] == [-1, -1, -1]


def test_ttl_is_set_with_the_value(impl, redis_server, redis_url):
    checker = redis_server.client()
    use_connection(redis_url)
    five = CacheManager(key_base="five", ttl=5)

    @default_cache.cache(ttl=5)
    def a():
        return 1

    @default_cache.cache(2.5)
    def b():
        return 2

    @five.cache
    def c():
        return 3

    @five.cache(ttl=60)
    def d():
        return 4

    a(), b(), c(), d()
    assert 0 < checker.ttl(default_cache.key(a, ())) <= 5
    assert 0 < checker.pttl(default_cache.key(a, ())) <= 5000
    assert 0 < checker.pttl(default_cache.key(b, ())) <= 2500
    assert 0 < checker.ttl(five.key(c, ())) <= 5          # the manager's ttl
    assert 5 < checker.ttl(five.key(d, ())) <= 60         # the decorator's wins


@pytest.mark.parametrize("ttl,error", [(0, ValueError), (-1, ValueError),
                                       (float("inf"), ValueError), ("5", TypeError),
                                       (True, TypeError)])
def test_bad_ttl_is_refused_at_decoration(ttl, error):
    with pytest.raises(error):
        default_cache.cache(ttl=ttl)
    with pytest.raises(error):
        CacheManager(ttl=ttl)


# -- keys ------------------------------------------------------------------------------


def test_keyword_arguments_are_part_of_the_key(impl, redis_server, redis_url):
    use_connection(redis_url)
    calls = []

    @default_cache.cache()
    def f(a, b=0):
        calls.append((a, b))
        return a * 10 + b

    assert f(1, b=2) == 12
    assert f(1, b=3) == 13  # redcache: the same key, so 12
    assert f(1, 2) == 12    # the same binding: a hit
    assert f(a=1, b=2) == 12
    assert f(1) == 10
    assert f(1, b=0) == 10  # the default, bound: a hit
    assert calls == [(1, 2), (1, 3), (1, 0)]
    keys = {default_cache.key(f, (1,), {"b": 2}), default_cache.key(f, (1,), {"b": 3}),
            default_cache.key(f, (1,))}
    assert len(keys) == 3
    assert {k.decode() for k in redis_server.client().keys("*")} == keys


def test_self_is_left_out_of_the_key(impl, redis_server, redis_url):
    use_connection(redis_url)
    calls = []

    class Repo:
        @default_cache.cache()
        def get(self, x):
            calls.append(x)
            return x

    assert Repo().get(1) == Repo().get(1) == 1  # two instances, one entry
    assert calls == [1]
    with pytest.raises(TypeError):
        default_cache.cache()(lambda x: x)(object())  # cannot be keyed


def test_coroutine_functions_are_refused():
    async def f():
        return 1

    with pytest.raises(TypeError, match="coroutine"):
        default_cache.cache()(f)


def test_keys_are_equal_across_processes_and_cores(impl, redis_server, redis_url):
    child = """
        import sys
        from pyredcache import _compat
        from pyredcache.managers import CacheManager, use_connection
        use_connection(sys.argv[1] if len(sys.argv) > 1 else %r)
        manager = CacheManager(key_base="shared")
        calls = []

        @manager.cache(key_prefix="lookup")
        def lookup(name, tags, options=None):
            calls.append(1)
            return {"name": name, "tags": sorted(tags), "by": _compat.implementation}

        args = ("x", frozenset({"alpha", "beta", "gamma", "delta", "epsilon"}))
        kwargs = {"options": {"k": [1, 2.5, None], "s": {"p", "q", "r", "s"}}}
        print(manager.key(lookup, args, kwargs))
        print(",".join(args[1]))
        lookup(*args, **kwargs)
        print(len(calls))
    """ % redis_url
    one = run_py(child, env={"PYTHONHASHSEED": "1"}).split()
    two = run_py(child, env={"PYTHONHASHSEED": "2", "PYREDCACHE_NO_EXTENSIONS": "1"}).split()
    assert one[1] != two[1]  # the sets iterate in another order there
    assert one[0] == two[0]  # one key all the same
    assert (one[2], two[2]) == ("1", "0")  # the second process hit the first one's entry

    use_connection(redis_url)
    manager = CacheManager(key_base="shared")
    calls = []

    @manager.cache(key_prefix="lookup")
    def lookup(name, tags, options=None):
        calls.append(1)

    tags = frozenset({"epsilon", "delta", "gamma", "beta", "alpha"})
    options = {"s": {"s", "r", "q", "p"}, "k": [1, 2.5, None]}
    assert manager.key(lookup, ("x", tags), {"options": options}) == one[0]
    value = lookup("x", tags=tags, options=options)
    assert calls == []
    assert value == {"name": "x", "tags": ["alpha", "beta", "delta", "epsilon", "gamma"],
                     "by": "c"}


# -- defaults and exports ---------------------------------------------------------------


def test_default_cache_and_the_codec(impl, redis_server, redis_url):
    assert isinstance(default_cache, DefaultCacheManager)
    assert isinstance(default_cache, CacheManager)
    assert default_cache.key_base == "cache" and default_cache.ttl is None
    assert isinstance(default_cache.serializer, NativeSerializer)
    use_connection(redis_url)

    @default_cache.cache()
    def f():
        return {"when": (1, 2), "set": {1, 2}}

    f()
    raw = redis_server.client().get(default_cache.key(f, ()))
    assert not raw.startswith(b"\x80")  # not a pickle
    assert NativeSerializer().loads(raw) == {"when": (1, 2), "set": {1, 2}}
    assert f() == {"when": (1, 2), "set": {1, 2}}  # exact round trip from Redis

    pickled = CacheManager(key_base="p", serializer_cls=PickleSerializer)

    @pickled.cache
    def g():
        return {"a": 1}

    assert g() == {"a": 1}
    assert redis_server.client().get(pickled.key(g, ())).startswith(b"\x80")


def test_exports():
    assert set(managers.__all__) == {
        "CacheManager", "Connection", "DefaultCacheManager", "default_cache",
        "get_current_connection", "pop_connection", "push_connection", "use_connection"}
    for name in managers.__all__:
        assert getattr(managers, name) is not None
    # redcache's own package names (redcache/__init__.py) are all here
    from pyredcache.managers import (
        CacheManager as _cm, default_cache as _dc, get_current_connection as _g,
        use_connection as _u)
    assert (_cm, _dc, _g, _u) == (CacheManager, default_cache, get_current_connection,
                                  use_connection)
    for hook in ("after_load", "before_save", "load", "save", "cache", "key", "connection"):
        assert hasattr(CacheManager, hook)
