"""examples/blog/: rc's tutorial blog (Flask + SQLite) on pyredcache, through
Flask's test client, against the suite's private servers, on both cores.

Round trips are counted at the server (CONFIG RESETSTAT, then INFO
commandstats), SQL statements by the app (``Blog.queries``, from SQLite's
trace callback).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from markupsafe import escape

from conftest import FakeClock, free_port
from pyredcache.clients import breaker as breaker_module
from pyredcache.server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "blog" / "app.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("pyredcache_blog_example", APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


blog_app = _load_example()
SEED = blog_app.SEED_POSTS
N = len(SEED)  # ids 1..N, N newest
PER_PAGE = 5


def make_app(url, tmp_path, **config):
    settings = {"CACHE_REDIS_URL": url, "BLOG_DATABASE": str(tmp_path / "blog.sqlite"),
                "BLOG_POSTS_PER_PAGE": PER_PAGE, "TESTING": True}
    settings.update(config)
    return blog_app.create_app(settings)


@pytest.fixture
def blog(impl, redis_server, redis_url, tmp_path):
    """(app, Blog, a redis-py client on the session server), the server flushed."""
    app = make_app(redis_url, tmp_path)
    b = app.extensions["blog"]
    assert b.cache.client.connection_kwargs.get("port") == redis_server.port
    raw = redis_server.client()
    raw.ping()  # its connection is made before any RESETSTAT
    yield app, b, raw
    b.close()
    raw.close()


def commands(raw):
    """{command: calls} since the last RESETSTAT, but INFO and CONFIG."""
    stats = raw.info("commandstats")
    return {name[len("cmdstat_"):]: v["calls"] for name, v in stats.items()
            if not name.startswith(("cmdstat_info", "cmdstat_config"))}


def html(text):
    """text as a page shows it (escaped), bytes."""
    return str(escape(text)).encode()


def selects(b):
    return b.queries["SELECT"]


def post_keys(b, raw):
    """{post id: raw value} of every cached post entry (None entries: id -1)."""
    found = {}
    for key in raw.scan_iter(match="blog:post:*"):
        value = b.cache.serializer.loads(raw.get(key))
        found[value["id"] if value else -1] = (key, raw.get(key))
    return found


def page_titles(n):
    """The titles page n shows, newest first."""
    ids = list(range(N, 0, -1))[(n - 1) * PER_PAGE:n * PER_PAGE]
    return [SEED[i - 1][0] for i in ids]


def shown_titles(data):
    """The post titles of an index page, in order."""
    text = data.decode()
    out = []
    for chunk in text.split('<li><a href="/post/')[1:]:
        out.append(chunk.split('">', 1)[1].split("</a>", 1)[0])
    return out


# -- the index ----------------------------------------------------------------------------


def test_index_costs_one_mget_per_page(blog):
    app, b, raw = blog
    client = app.test_client()
    pages = (N + PER_PAGE - 1) // PER_PAGE
    assert pages == 3
    for n in range(1, pages + 1):
        # cold: one MGET, every miss read from SQLite and written back in one pipeline
        raw.config_resetstat()
        before = selects(b)
        cold = client.get("/?page=%d" % n)
        assert cold.status_code == 200
        assert shown_titles(cold.data) == page_titles(n)
        on_page = len(page_titles(n))
        assert commands(raw) == {"mget": 1, "set": on_page}
        assert selects(b) - before == 1 + on_page  # the ids, then each post
        # warm: one MGET and nothing else; SQLite reads the page's ids only
        for _ in range(3):
            raw.config_resetstat()
            before = selects(b)
            warm = client.get("/?page=%d" % n)
            assert warm.data == cold.data
            assert commands(raw) == {"mget": 1}
            assert selects(b) - before == 1
    assert b"Older" in client.get("/").data and b"Older" not in client.get("/?page=3").data
    assert client.get("/?page=4").status_code == 404
    assert client.get("/?page=0").status_code == 404


def test_index_of_an_empty_blog_costs_no_round_trip(impl, redis_server, redis_url, tmp_path):
    app = make_app(redis_url, tmp_path, BLOG_SEED=False)
    raw = redis_server.client()
    raw.ping()
    try:
        raw.config_resetstat()
        page = app.test_client().get("/")
        assert page.status_code == 200 and b"No posts yet." in page.data
        assert commands(raw) == {}
    finally:
        app.extensions["blog"].close()


# -- one post ---------------------------------------------------------------------------


def test_post_view_costs_one_get(blog):
    app, b, raw = blog
    client = app.test_client()
    raw.config_resetstat()
    before = selects(b)
    cold = client.get("/post/3")
    assert cold.status_code == 200
    assert html(SEED[2][0]) in cold.data and html(SEED[2][1]) in cold.data
    assert commands(raw) == {"get": 1, "set": 1}
    assert selects(b) - before == 1
    for _ in range(3):
        raw.config_resetstat()
        before = selects(b)
        assert client.get("/post/3").data == cold.data
        assert commands(raw) == {"get": 1}
        assert selects(b) == before  # SQLite not asked
    # the index and the post page share the entry: post 3 is on page 2
    client.get("/?page=2")
    assert sorted(post_keys(b, raw)) == [3, 4, 5, 6, 7]


def test_a_missing_post_is_cached_and_adding_it_invalidates_that(blog):
    app, b, raw = blog
    client = app.test_client()
    new_id = N + 1
    assert client.get("/post/%d" % new_id).status_code == 404
    before = selects(b)
    raw.config_resetstat()
    assert client.get("/post/%d" % new_id).status_code == 404
    assert commands(raw) == {"get": 1} and selects(b) == before  # the None is a hit
    assert -1 in post_keys(b, raw)
    raw.config_resetstat()
    added = client.post("/add", data={"title": "Brand new", "content": "Fresh text."})
    assert added.status_code == 303 and added.headers["Location"] == "/"
    assert commands(raw) == {"del": 1}
    assert -1 not in post_keys(b, raw)
    page = client.get("/post/%d" % new_id)
    assert page.status_code == 200 and b"Brand new" in page.data
    assert shown_titles(client.get("/").data)[0] == "Brand new"


# -- editing ----------------------------------------------------------------------------


def test_edit_invalidates_exactly_that_post(blog):
    app, b, raw = blog
    client = app.test_client()
    for n in (1, 2, 3):
        client.get("/?page=%d" % n)
    cached = post_keys(b, raw)
    assert sorted(cached) == list(range(1, N + 1))
    edited_id = 4  # on page 2

    raw.config_resetstat()
    before = dict(b.queries)
    reply = client.post("/post/%d" % edited_id,
                        data={"title": "Rewritten", "content": "New <b>text</b>."})
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/post/%d" % edited_id
    assert commands(raw) == {"del": 1}  # the invalidation, nothing read
    assert b.queries["UPDATE"] - before.get("UPDATE", 0) == 1
    assert b.queries["SELECT"] == before.get("SELECT", 0)

    after = post_keys(b, raw)
    assert sorted(after) == [i for i in range(1, N + 1) if i != edited_id]
    assert raw.exists(cached[edited_id][0]) == 0
    for post_id, (key, value) in after.items():  # the others: untouched
        assert cached[post_id] == (key, value)

    # the next view recomputes once and shows the new text (escaped)
    raw.config_resetstat()
    before = selects(b)
    page = client.get("/post/%d" % edited_id)
    assert b"Rewritten" in page.data and b"New &lt;b&gt;text&lt;/b&gt;." in page.data
    assert html(SEED[edited_id - 1][1]) not in page.data
    assert commands(raw) == {"get": 1, "set": 1}
    assert selects(b) - before == 1
    before = selects(b)
    assert client.get("/post/%d" % edited_id).data == page.data
    assert selects(b) == before
    # the index shows the new title, still in one MGET (and the ids query)
    raw.config_resetstat()
    before = selects(b)
    assert "Rewritten" in shown_titles(client.get("/?page=2").data)
    assert commands(raw) == {"mget": 1} and selects(b) - before == 1


def test_edit_of_a_missing_post_or_a_bad_form_changes_nothing(blog):
    app, b, raw = blog
    client = app.test_client()
    client.get("/")
    cached = post_keys(b, raw)
    raw.config_resetstat()
    assert client.post("/post/999", data={"title": "x", "content": "y"}).status_code == 404
    assert client.post("/post/%d" % N, data={"title": " ", "content": "y"}).status_code == 400
    assert client.post("/post/%d" % N, data={"content": "y"}).status_code == 400
    assert client.post("/add", data={"title": "t" * 101, "content": "y"}).status_code == 400
    assert commands(raw) == {}
    assert post_keys(b, raw) == cached
    assert html(SEED[N - 1][0]) in client.get("/post/%d" % N).data


# -- failing open ---------------------------------------------------------------------


def test_pages_render_while_redis_is_dead_and_the_cache_comes_back(
        impl, server, tmp_path, monkeypatch, caplog):
    clock = FakeClock()
    monkeypatch.setattr(breaker_module, "_clock", clock)
    app = make_app(server.url, tmp_path)
    b = app.extensions["blog"]
    assert app.config["CACHE_IGNORE_ERRORS"] is True
    client = app.test_client()  # TESTING: an exception in a view would raise here
    try:
        for n in (1, 2, 3):
            client.get("/?page=%d" % n)
        assert len(post_keys(b, server.client())) == N

        server.kill()
        with caplog.at_level(logging.WARNING, logger="pyredcache"):
            for _ in range(2):  # the first failures, then the open breaker
                for n in (1, 2, 3):
                    before = selects(b)
                    page = client.get("/?page=%d" % n)
                    assert page.status_code == 200
                    assert shown_titles(page.data) == page_titles(n)
                    assert selects(b) - before == 1 + len(page_titles(n))  # from SQLite
                for post_id in range(1, N + 1):
                    before = selects(b)
                    page = client.get("/post/%d" % post_id)
                    assert page.status_code == 200
                    assert html(SEED[post_id - 1][1]) in page.data
                    assert selects(b) - before == 1
            assert client.get("/post/999").status_code == 404
            # an edit and an add go to SQLite; their invalidations fail open
            assert client.post("/post/2", data={"title": "Edited offline",
                                                "content": "Written while Redis was down."}
                               ).status_code == 303
            assert b"Written while Redis was down." in client.get("/post/2").data
            assert client.post("/add", data={"title": "Added offline", "content": "Also."}
                               ).status_code == 303
            assert shown_titles(client.get("/").data)[0] == "Added offline"
            assert b.cache.health()["servers"][server.url.split("//")[1].split("/")[0]][
                "breaker"]["state"] == "open"
        assert "circuit open" in caplog.text

        server.start()  # empty: no persistence
        clock.advance(breaker_module.DEFAULT_COOLDOWN)  # the next call is the probe
        assert b"Written while Redis was down." in client.get("/post/2").data  # a miss
        raw = server.client()
        raw.ping()
        raw.config_resetstat()
        before = selects(b)
        assert b"Written while Redis was down." in client.get("/post/2").data
        assert commands(raw) == {"get": 1} and selects(b) == before  # cached again
        client.get("/")
        raw.config_resetstat()
        before = selects(b)
        titles = shown_titles(client.get("/").data)
        assert titles[0] == "Added offline" and len(titles) == PER_PAGE
        assert commands(raw) == {"mget": 1} and selects(b) - before == 1
        raw.close()
    finally:
        b.close()


def test_pages_render_while_redis_hangs(impl, server, tmp_path):
    """SIGSTOP: the connections stay open and nothing answers; each call
    gives up after CACHE_OPTIONS' socket_timeout and the page is computed."""
    app = make_app(server.url, tmp_path)
    b = app.extensions["blog"]
    client = app.test_client()
    try:
        client.get("/")
        client.get("/post/%d" % N)
        server.pause()
        try:
            before = selects(b)
            assert shown_titles(client.get("/").data) == page_titles(1)
            assert html(SEED[N - 1][1]) in client.get("/post/%d" % N).data
            assert selects(b) - before == 1 + PER_PAGE + 1
        finally:
            server.resume()
    finally:
        b.close()


# -- the default: an EmbeddedRedis ----------------------------------------------------


def test_without_a_redis_url_the_app_starts_an_embedded_redis(impl, tmp_path):
    app = blog_app.create_app({"BLOG_DATABASE": str(tmp_path / "blog.sqlite"),
                               "TESTING": True})
    b = app.extensions["blog"]
    server = b.redis_server
    try:
        assert isinstance(server, EmbeddedRedis) and not server.closed
        assert app.config["CACHE_REDIS_URL"] == server.url
        assert b.cache.client.connection_kwargs["unix_socket_path"] == server.unix_socket_path
        client = app.test_client()
        first = client.get("/post/1")
        before = selects(b)
        assert client.get("/post/1").data == first.data and html(SEED[0][0]) in first.data
        assert selects(b) == before  # served from the embedded server
    finally:
        b.close()
    assert server.closed


def test_with_a_redis_url_no_server_is_started(blog):
    app, b, raw = blog
    assert b.redis_server is None


def example_env(impl):
    """The environment of a subprocess running the example on impl's core,
    with no Redis URL (so it starts its own server)."""
    env = dict(os.environ)
    for name in ("CACHE_REDIS_URL", "REDIS_URL", "PYREDCACHE_NO_EXTENSIONS"):
        env.pop(name, None)
    if impl.implementation == "python":
        env["PYREDCACHE_NO_EXTENSIONS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_check_mode_runs_on_an_embedded_redis(impl):
    """``python examples/blog/app.py --check`` with no CACHE_REDIS_URL: its
    own redis-server, its own temporary database, both gone at exit."""
    proc = subprocess.run([sys.executable, str(APP), "--check"], cwd=ROOT, env=example_env(impl),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("blog check: ok on the %s core, caching in unix://"
                           % impl.implementation), line
    socket_path = line.split("unix://", 1)[1].split("?", 1)[0]
    assert not os.path.exists(os.path.dirname(socket_path))  # stopped and removed


def test_serving_and_sigterm(impl):
    """``python examples/blog/app.py --port N`` serves the blog over HTTP;
    ``kill`` (SIGTERM) stops it, its redis-server and its temporary files."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(APP), "--port", str(port)], cwd=ROOT,
                            env=example_env(impl), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("blog: caching in unix://"), first + proc.stderr.read()
        assert "(%s core)" % impl.implementation in first
        socket_dir = os.path.dirname(first.split("unix://", 1)[1].split("?", 1)[0])
        database_dir = os.path.dirname(first.split(" posts in ", 1)[1].split(" (", 1)[0])
        assert os.path.isdir(socket_dir) and os.path.isdir(database_dir)
        deadline = time.monotonic() + 30
        while True:  # until the server listens
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/post/1" % port,
                                            timeout=5) as reply:
                    body = reply.read()
                break
            except urllib.error.URLError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "the blog never answered"
                time.sleep(0.05)
        assert html(SEED[0][1]) in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        assert not os.path.exists(socket_dir) and not os.path.exists(database_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
