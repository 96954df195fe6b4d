"""pyredcache.flask: the Flask extension (RedCache, Flask-Caching's face as
Cache), through Flask's test client, against the suite's private servers,
on both cores."""

from __future__ import annotations

import datetime
import doctest
import importlib
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import blinker  # in the test extra: a missing one fails here, it does not skip
import flask
import pytest
import redis as redis_py

import pyredcache.flask as pf
from pyredcache import NO_VALUE, JSONSerializer, PickleSerializer, Region
from pyredcache.exceptions import ConnectionError, ResponseError
from pyredcache.flask import Cache, RedCache, make_template_fragment_key

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "flask.rst"
PREFIX = "flask_cache_"


def make_app(redis_server, name: str = "app", **config) -> flask.Flask:
    app = flask.Flask(name)
    app.config["CACHE_REDIS_URL"] = redis_server.url
    app.config.update(config)
    return app


def setup(redis_server, name: str = "app", ext: RedCache | None = None,
          **config) -> tuple[flask.Flask, RedCache]:
    app = make_app(redis_server, name, **config)
    ext = RedCache() if ext is None else ext
    ext.init_app(app)
    return app, ext


def env_for(impl) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYREDCACHE_NO_EXTENSIONS", None)
    if impl.implementation == "python":
        env["PYREDCACHE_NO_EXTENSIONS"] = "1"
    return env


# -- the package boundary ----------------------------------------------------------------


def test_import_pyredcache_does_not_import_flask(impl):
    code = textwrap.dedent("""
        import sys
        import pyredcache
        before = sorted(m for m in ("flask", "blinker", "jinja2", "werkzeug",
                                     "pyredcache.flask") if m in sys.modules)
        import pyredcache.flask
        print(repr((before, "flask" in sys.modules)))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env_for(impl), timeout=60)
    assert run.returncode == 0, run.stderr
    before, after = eval(run.stdout)  # noqa: S307 - our own repr()
    assert before == []
    assert after is True


# -- per-app state -----------------------------------------------------------------------


def test_one_extension_two_apps_separate_caches(impl, redis_server, redis_url):
    ext = RedCache()
    app1 = make_app(redis_server, "one", CACHE_KEY_PREFIX="one:")
    app2 = flask.Flask("two")
    app2.config.update(CACHE_REDIS_URL=f"redis://{redis_server.host}:{redis_server.port}/2",
                       CACHE_KEY_PREFIX="two:")
    ext.init_app(app1)
    ext.init_app(app2)
    s1 = app1.extensions["pyredcache"][ext]
    s2 = app2.extensions["pyredcache"][ext]
    assert s1 is not s2 and s1.cache is not s2.cache
    # the extension keeps nothing of either app
    for value in vars(ext).values():
        assert not isinstance(value, flask.Flask)
        assert value is not s1 and value is not s2
    runs = []

    @ext.memoize(60)
    def double(x):
        runs.append(x)
        return x * 2

    with app1.app_context():
        assert ext.set("k", "one")
        assert double(2) == 4
    with app2.app_context():
        assert ext.get("k") is None
        assert ext.set("k", "two")
        assert double(2) == 4
        assert ext.get("k") == "two"
    with app1.app_context():
        assert ext.get("k") == "one"
        assert double(2) == 4
    assert runs == [2, 2]  # one run per app, then a hit
    raw0, raw2 = redis_server.client(db=0), redis_server.client(db=2)
    assert raw0.exists("one:k") and not raw0.exists("two:k")
    assert raw2.exists("two:k") and not raw2.exists("one:k")


def test_calls_need_an_app_context_of_an_initialised_app(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    with pytest.raises(RuntimeError, match="application context"):
        ext.get("k")
    other = flask.Flask("other")
    with other.app_context(), pytest.raises(RuntimeError, match="init_app"):
        ext.get("k")

    @ext.memoize()
    def f(x):
        return x

    with other.app_context(), pytest.raises(RuntimeError, match="init_app"):
        f(1)
    with app.app_context():
        assert f(1) == 1


def test_flask_caching_constructor_and_precedence(impl, redis_server, redis_url):
    app = make_app(redis_server, CACHE_KEY_PREFIX="app:")
    # Flask-Caching's positional signature: Cache(app, with_jinja2_ext, config)
    ext = Cache(app, False, {"CACHE_KEY_PREFIX": "ctor:"})
    assert "pyredcache.flask.CacheExtension" not in app.jinja_env.extensions
    with app.app_context():
        ext.set("k", 1)
    assert redis_server.client().exists("ctor:k")
    # init_app(config=) wins over the constructor, which wins over app.config
    other = make_app(redis_server, "other", CACHE_KEY_PREFIX="app:")
    ext.init_app(other, config={"CACHE_KEY_PREFIX": "init:"})
    with other.app_context():
        ext.set("k", 1)
    assert redis_server.client().exists("init:k")
    third = make_app(redis_server, "third", CACHE_KEY_PREFIX="app:")
    Cache().init_app(third)
    # RedCache's keyword settings, by their lower-case names
    kw = RedCache(third, key_prefix="kw:", default_timeout=77)
    with third.app_context():
        kw.set("k", 1)
    assert 0 < redis_server.client().ttl("kw:k") <= 77
    with pytest.raises(ValueError, match="config must be a dict"):
        Cache(config=[("CACHE_KEY_PREFIX", "x")])
    with pytest.raises(TypeError, match="key_prefx"):
        RedCache(key_prefx="x")


# -- settings ----------------------------------------------------------------------------


def test_redis_url_and_db(impl, redis_server, redis_url):
    base = f"redis://{redis_server.host}:{redis_server.port}"
    for config, db in [
        ({"CACHE_REDIS_URL": base + "/3"}, 3),
        ({"CACHE_REDIS_URL": base, "CACHE_REDIS_DB": 5}, 5),  # the URL names no db
        ({"CACHE_REDIS_URL": base + "/6", "CACHE_REDIS_DB": 5}, 6),  # the URL's wins
        # with a URL, host and port are ignored (Flask-Caching's rule)
        ({"CACHE_REDIS_URL": base + "/7", "CACHE_REDIS_HOST": "no-such-host.invalid",
          "CACHE_REDIS_PORT": 1}, 7),
    ]:
        app = flask.Flask("db%d" % db)
        app.config.update(config)
        ext = RedCache(app)
        with app.app_context():
            assert ext.set("where", db)
        assert int(redis_server.client(db=db).get(PREFIX + "where")) == db


def test_redis_host_port_db(impl, redis_server, redis_url):
    app = flask.Flask("hostport")
    app.config.update(CACHE_REDIS_HOST=redis_server.host, CACHE_REDIS_PORT=redis_server.port,
                      CACHE_REDIS_DB=4)
    ext = RedCache(app)
    with app.app_context():
        assert ext.set("k", "v")
    assert redis_server.client(db=4).exists(PREFIX + "k")
    assert not redis_server.client(db=0).exists(PREFIX + "k")


def test_redis_password(impl, server):
    server.client().config_set("requirepass", "s3cret")
    good = flask.Flask("good")
    good.config.update(CACHE_REDIS_HOST=server.host, CACHE_REDIS_PORT=server.port,
                       CACHE_REDIS_PASSWORD="s3cret")
    bad = flask.Flask("bad")
    bad.config.update(CACHE_REDIS_HOST=server.host, CACHE_REDIS_PORT=server.port)
    in_url = flask.Flask("in_url")
    in_url.config.update(CACHE_REDIS_URL=f"redis://:s3cret@{server.host}:{server.port}/0")
    ext = RedCache()
    for app in (good, bad, in_url):
        ext.init_app(app)
    with good.app_context():
        assert ext.set("k", "v")
    with in_url.app_context():
        assert ext.get("k") == "v"
    with bad.app_context(), pytest.raises(ResponseError, match="NOAUTH|Authentication"):
        ext.get("k")


def test_redis_host_may_be_a_client_of_your_own(impl, redis_server, redis_url):
    client = redis_py.Redis(host=redis_server.host, port=redis_server.port, db=8)
    app = flask.Flask("own")
    app.config["CACHE_REDIS_HOST"] = client
    ext = RedCache(app)
    with app.app_context():
        assert ext.set("k", "v")
        assert ext.get("k") == "v"
    assert redis_server.client(db=8).exists(PREFIX + "k")
    app2 = flask.Flask("own2")
    app2.config.update(CACHE_REDIS_HOST=client, CACHE_REDIS_DB=1)
    with pytest.raises(ValueError, match="CACHE_REDIS_DB"):
        RedCache(app2)


def test_default_timeout(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server, "unset")
    with app.app_context():
        ext.set("k", 1)
    assert 250 < r.ttl(PREFIX + "k") <= 300  # Flask-Caching's 300 seconds
    for value, low, high in [(60, 50, 60), (datetime.timedelta(minutes=2), 110, 120),
                             ("45", 35, 45)]:
        app, ext = setup(redis_server, "t", CACHE_DEFAULT_TIMEOUT=value)
        with app.app_context():
            ext.set("k", 1)
        assert low < r.ttl(PREFIX + "k") <= high
    for no_expiry in (0, None):
        app, ext = setup(redis_server, "zero", CACHE_DEFAULT_TIMEOUT=no_expiry)
        with app.app_context():
            ext.set("k", 1)
            assert ext.cache.default_expire is None
        assert r.ttl(PREFIX + "k") == -1
    with pytest.raises(ValueError, match="CACHE_DEFAULT_TIMEOUT"):
        setup(redis_server, "neg", CACHE_DEFAULT_TIMEOUT=-1)


def test_timeout_zero_means_no_expiry(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server, CACHE_DEFAULT_TIMEOUT=30)

    @ext.memoize(timeout=0)
    def forever(x):
        return x

    @ext.memoize(timeout=5)
    def short(x):
        return x

    @app.route("/forever")
    @ext.cached(timeout=0)
    def view():
        return "v"

    with app.app_context():
        ext.set("set0", 1, timeout=0)
        ext.add("add0", 1, timeout=0)
        ext.set_many({"many0": 1}, timeout=0)
        ext.set("set7", 1, timeout=7)
        ext.set("float", 1, timeout=2.5)
        ext.set("td", 1, timeout=datetime.timedelta(seconds=9))
        forever(1)
        short(1)
        memo0 = PREFIX + forever.make_cache_key(forever.uncached, 1)
        memo5 = PREFIX + short.make_cache_key(short.uncached, 1)
        with pytest.raises(ValueError, match="timeout"):
            ext.set("neg", 1, timeout=-1)
        with pytest.raises(TypeError, match="timeout"):
            ext.set("bad", 1, timeout="10")
    app.test_client().get("/forever")
    for key in ("set0", "add0", "many0", "view//forever"):
        assert r.ttl(PREFIX + key) == -1, key
    assert r.ttl(memo0) == -1
    assert 0 < r.ttl(memo5) <= 5
    assert 0 < r.ttl(PREFIX + "set7") <= 7
    assert 0 < r.pttl(PREFIX + "float") <= 2500
    assert 0 < r.ttl(PREFIX + "td") <= 9
    with pytest.raises(ValueError, match="timeout"):
        ext.memoize(timeout=-5)


def test_key_prefix(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server, CACHE_KEY_PREFIX="myapp:")
    with app.app_context():
        ext.set("k", "v")
    assert r.exists("myapp:k") and not r.exists(PREFIX + "k")
    app, ext = setup(redis_server, "default")
    with app.app_context():
        ext.set("k", "v")
    assert r.exists(PREFIX + "k")  # Flask-Caching's default prefix
    with pytest.raises(TypeError, match="CACHE_KEY_PREFIX"):
        setup(redis_server, "callable", CACHE_KEY_PREFIX=lambda: "x")


def test_ignore_errors_makes_an_unreachable_server_a_miss(impl, server):
    """CACHE_IGNORE_ERRORS: passed on as pyredcache.Cache(ignore_errors=True)."""
    lenient = flask.Flask("lenient")
    lenient.config.update(CACHE_REDIS_URL=server.url, CACHE_IGNORE_ERRORS=True,
                          CACHE_OPTIONS={"socket_connect_timeout": 0.5})
    strict = flask.Flask("strict")
    strict.config.update(CACHE_REDIS_URL=server.url,
                         CACHE_OPTIONS={"socket_connect_timeout": 0.5})
    ext = RedCache()
    ext.init_app(lenient)
    ext.init_app(strict)
    assert lenient.extensions["pyredcache"][ext].cache.ignore_errors is True
    runs = []

    @ext.memoize()
    def f(x):
        runs.append(x)
        return x

    server.kill()
    with lenient.app_context():
        assert ext.get("k") is None
        assert ext.get("k", "dflt") == "dflt"
        assert ext.set("k", 1) is False
        assert ext.add("k", 1) is False
        assert ext.has("k") is False
        assert ext.delete("k") is False
        assert ext.get_many("a", "b") == [None, None]
        assert ext.set_many({"a": 1}) == []
        assert ext.inc("n") is None
        assert ext.clear() is False
        lenient.debug = True  # even in debug mode: the user asked
        assert f(1) == 1 and f(1) == 1
    assert runs == [1, 1]
    with strict.app_context(), pytest.raises(ConnectionError):
        ext.get("k")


def test_decorators_fail_open_except_in_debug(impl, server, caplog):
    app = flask.Flask("failopen")
    app.config.update(CACHE_REDIS_URL=server.url,
                      CACHE_OPTIONS={"socket_connect_timeout": 0.5})
    ext = RedCache(app)
    runs = []

    @ext.memoize()
    def f(x):
        runs.append(x)
        return x

    @app.route("/v")
    @ext.cached()
    def view():
        runs.append("view")
        return "body"

    server.kill()
    with caplog.at_level(logging.WARNING, logger="pyredcache"):
        with app.app_context():
            assert f(1) == 1
        assert app.test_client().get("/v").data == b"body"
    assert runs == [1, "view"]
    assert "unreachable" in caplog.text
    app.debug = True
    with app.app_context(), pytest.raises(ConnectionError):
        f(1)


def test_cache_options(impl, redis_server, redis_url):
    app, ext = setup(redis_server, CACHE_OPTIONS={"socket_timeout": 0.5,
                                                  "max_idle_connections": 3})
    with app.app_context():
        kwargs = ext.cache.client.connection_kwargs
        assert kwargs["socket_timeout"] == 0.5
        assert ext.set("k", 1)
    with pytest.raises(ValueError, match="retry_on_timeout"):
        setup(redis_server, "bad", CACHE_OPTIONS={"retry_on_timeout": True})


def test_serializer_setting(impl, redis_server, redis_url):
    r = redis_server.client()
    value = {"a": [1, 2], "b": "x"}
    for setting, check in [
        (None, lambda raw: raw == impl.dumps(value)),
        ("native", lambda raw: raw == impl.dumps(value)),
        ("json", lambda raw: json.loads(raw) == value),
        (JSONSerializer, lambda raw: json.loads(raw) == value),
        ("pickle", lambda raw: pickle.loads(raw) == value),
        (PickleSerializer(), lambda raw: pickle.loads(raw) == value),
    ]:
        app, ext = setup(redis_server, "s", CACHE_SERIALIZER=setting)
        with app.app_context():
            ext.set("k", value)
            assert ext.get("k") == value
        assert check(r.get(PREFIX + "k")), setting
    with pytest.raises(ValueError, match="CACHE_SERIALIZER"):
        setup(redis_server, "bad", CACHE_SERIALIZER="yaml")
    with pytest.raises(ValueError, match="CACHE_SERIALIZER"):
        setup(redis_server, "bad", CACHE_SERIALIZER=object())


@pytest.mark.parametrize("config, named", [
    ({"CACHE_TYPE": "SimpleCache"}, "CACHE_TYPE='SimpleCache'"),
    ({"CACHE_TYPE": "NullCache"}, "CACHE_TYPE='NullCache'"),
    ({"CACHE_TYPE": "flask_caching.backends.FileSystemCache"}, "FileSystemCache"),
    ({"CACHE_TYPE": "RedisSentinelCache"}, "RedisSentinelCache"),
    ({"CACHE_DIR": "/tmp/cache"}, "CACHE_DIR"),
    ({"CACHE_THRESHOLD": 500}, "CACHE_THRESHOLD"),
    ({"CACHE_HASH_METHOD": "sha1"}, "CACHE_HASH_METHOD"),
    ({"CACHE_MEMCACHED_SERVERS": ["127.0.0.1:11211"]}, "CACHE_MEMCACHED_SERVERS"),
    ({"CACHE_REDIS_SENTINELS": [("127.0.0.1", 26379)]}, "CACHE_REDIS_SENTINELS"),
    ({"CACHE_REDIS_CLUSTER": "a:1,b:2"}, "CACHE_REDIS_CLUSTER"),
    ({"CACHE_ARGS": ["x"]}, "CACHE_ARGS"),
    ({"CACHE_DEFAULT_TIMOUT": 5}, "CACHE_DEFAULT_TIMOUT"),  # a typo is named
])
def test_refused_settings(redis_server, config, named):
    app = make_app(redis_server, **config)
    with pytest.raises(ValueError, match="cannot use these settings") as info:
        RedCache(app)
    assert named in str(info.value)
    assert "pyredcache" not in app.extensions


def test_refused_settings_are_all_named_at_once(redis_server):
    app = make_app(redis_server, CACHE_DIR="/tmp/x", CACHE_THRESHOLD=10)
    with pytest.raises(ValueError) as info:
        RedCache(app)
    assert "CACHE_DIR" in str(info.value) and "CACHE_THRESHOLD" in str(info.value)


@pytest.mark.parametrize("config", [
    {"CACHE_TYPE": "RedisCache"},
    {"CACHE_TYPE": "redis"},
    {"CACHE_TYPE": "flask_caching.backends.RedisCache"},
    {"CACHE_TYPE": "flask_caching.backends.rediscache.RedisCache"},
    {"CACHE_NO_NULL_WARNING": True, "CACHE_ENABLE_SIGNALS": True, "CACHE_ARGS": []},
    {"CACHE_DIR": None},  # an unset setting of another backend
])
def test_accepted_settings(impl, redis_server, redis_url, config):
    app, ext = setup(redis_server, **config)
    with app.app_context():
        assert ext.set("k", "v") and ext.get("k") == "v"


# -- get, set and the rest ---------------------------------------------------------------


def test_get_set_and_the_rest(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server)
    with app.app_context():
        assert ext.get("missing") is None
        assert ext.get("missing", NO_VALUE) is NO_VALUE
        assert ext.set("none", None) and ext.get("none", NO_VALUE) is None
        assert ext.set("k", {"x": (1, 2)}) is True
        assert ext.get("k") == {"x": (1, 2)}
        assert ext.has("k") is True and ext.has("missing") is False
        assert ext.add("k", "other") is False and ext.get("k") == {"x": (1, 2)}
        assert ext.add("new", "first", timeout=20) is True and ext.get("new") == "first"
        assert 0 < r.ttl(PREFIX + "new") <= 20  # SET NX with its expiry, one command
        assert ext.set_many({"a": 1, "b": "two", "c": [3]}) == ["a", "b", "c"]
        assert ext.get_many("a", "b", "missing", "c") == [1, "two", None, [3]]
        assert ext.get_dict("a", "missing") == {"a": 1, "missing": None}
        assert ext.get_many() == []
        assert ext.delete("a") is True and ext.delete("a") is False
        assert ext.delete_many("b", "c", "missing") == ["b", "c", "missing"]
        assert ext.get_many("b", "c") == [None, None]
        assert ext.set_many({"u1": 1, "u2": 2})
        assert ext.unlink("u1", "u2") == ["u1", "u2"]
        assert not r.exists(PREFIX + "u1", PREFIX + "u2")
        with pytest.raises(TypeError):
            ext.set_many([("a", 1)])


def test_inc_dec_and_get_agree(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server)
    with app.app_context():
        assert ext.inc("n") == 1
        assert ext.inc("n", 5) == 6
        assert ext.dec("n") == 5
        assert ext.dec("n", 10) == -5
        assert ext.get("n") == -5  # what INCRBY wrote reads back as an int
        assert r.get(PREFIX + "n") == b"-5"
        for value in (7, 0, -1, 53, 2**63 - 1, -2**63):
            ext.set("i", value)
            assert ext.get("i") == value and type(ext.get("i")) is int
        ext.set("i", 41)
        assert ext.inc("i") == 42  # a set() int is what INCRBY reads
        assert ext.get_many("i", "n") == [42, -5]
        ext.set("big", 2**70)
        assert ext.get("big") == 2**70
        ext.set("true", True)
        assert ext.get("true") is True
        ext.set("text", "5")
        assert ext.get("text") == "5"
        ext.set("s", "not a number")
        with pytest.raises(ResponseError):
            ext.inc("s")


def test_clear_deletes_only_this_apps_keys(impl, redis_server, redis_url):
    r = redis_server.client()
    ext = RedCache()
    app1 = make_app(redis_server, "one", CACHE_KEY_PREFIX="one:")
    app2 = make_app(redis_server, "two", CACHE_KEY_PREFIX="two:")
    ext.init_app(app1)
    ext.init_app(app2)
    r.set("someone-else", 1)
    r.set("one", 1)  # the prefix without its colon is not in it
    with app1.app_context():
        ext.set_many({"k%d" % i: i for i in range(2500)})
        ext.set("glob*[?]", 1)
    with app2.app_context():
        ext.set("k", 2)
    with app1.app_context():
        assert ext.clear() is True
        assert ext.get("k1") is None
    assert not r.keys("one:*")
    assert r.exists("two:k", "someone-else", "one") == 3
    # a prefix holding glob characters matches itself only
    r.set("gx", 1)
    app3 = make_app(redis_server, "glob", CACHE_KEY_PREFIX="g*")
    glob = RedCache(app3)
    with app3.app_context():
        glob.set("k", 1)
        glob.clear()
    assert r.exists("gx") and not r.exists("g*k")
    # no prefix: FLUSHDB, the whole db (as Flask-Caching's RedisCache)
    empty = make_app(redis_server, "empty", CACHE_KEY_PREFIX="")
    ext.init_app(empty)
    with empty.app_context():
        ext.set("k", 1)
        assert ext.clear() is True
    assert r.dbsize() == 0


# -- @cached -----------------------------------------------------------------------------


def test_cached_view(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server)
    runs = []

    @app.route("/hello/<name>")
    @ext.cached(timeout=50)
    def hello(name):
        runs.append(name)
        return "hello %s" % name

    client = app.test_client()
    assert client.get("/hello/ada").data == b"hello ada"
    assert client.get("/hello/ada").data == b"hello ada"
    assert client.get("/hello/bob").data == b"hello bob"
    assert runs == ["ada", "bob"]
    assert 0 < r.ttl(PREFIX + "view//hello/ada") <= 50
    assert hello.uncached("x") == "hello x"
    with app.test_request_context("/hello/ada"):
        assert hello.make_cache_key("ada") == "view//hello/ada"
    with app.app_context():
        assert hello.make_cache_key(path="/hello/zed") == "view//hello/zed"
        assert ext.delete_cached(hello, "/hello/ada") is True
    assert client.get("/hello/ada").data == b"hello ada"
    assert runs == ["ada", "bob", "x", "ada"]


def test_cached_responses_keep_status_headers_and_type(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []

    @app.route("/json")
    @ext.cached()
    def as_json():
        runs.append("json")
        response = flask.jsonify(n=len(runs))
        response.headers["X-Made"] = "once"
        return response, 201

    @app.route("/tuple")
    @ext.cached()
    def as_tuple():
        runs.append("tuple")
        return "created", 202, {"X-Kind": "tuple"}

    client = app.test_client()
    first, second = client.get("/json"), client.get("/json")
    for response in (first, second):
        assert response.status_code == 201
        assert response.get_json() == {"n": 1}
        assert response.mimetype == "application/json"
        assert response.headers["X-Made"] == "once"
    first, second = client.get("/tuple"), client.get("/tuple")
    assert second.status_code == 202 and second.data == b"created"
    assert second.headers["X-Kind"] == "tuple"
    assert runs == ["json", "tuple"]


def test_cached_key_prefix(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server)
    runs = []

    @app.route("/a")
    @ext.cached(key_prefix="fixed-key")
    def a():
        runs.append("a")
        return "a"

    @app.route("/b")
    @ext.cached(key_prefix=lambda: "from-callable-%s" % flask.request.args.get("v"))
    def b():
        runs.append("b")
        return "b"

    @app.route("/c")
    @ext.cached(key_prefix="custom/%s/x")
    def c():
        return "c"

    @ext.cached(key_prefix="not-a-view")
    def numbers():
        runs.append("numbers")
        return [1, 2, 3]

    client = app.test_client()
    client.get("/a"), client.get("/a?q=1"), client.get("/b?v=1"), client.get("/b?v=1")
    client.get("/c")
    assert r.exists(PREFIX + "fixed-key", PREFIX + "from-callable-1", PREFIX + "custom//c/x") == 3
    with app.app_context():
        assert numbers() == [1, 2, 3] and numbers() == [1, 2, 3]
    assert runs == ["a", "b", "numbers"]


def test_cached_unless(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs, seen = [], []

    @app.route("/never")
    @ext.cached(unless=lambda: True)
    def never():
        runs.append("never")
        return "x"

    @app.route("/truthy")
    @ext.cached(unless=lambda: 1)  # not True: Flask-Caching bypasses on `is True` only
    def truthy():
        runs.append("truthy")
        return "x"

    def with_args(f, *args, **kwargs):
        seen.append((f.__name__, kwargs))
        return kwargs["n"] == "0"

    @app.route("/args/<n>")
    @ext.cached(unless=with_args)
    def args(n):
        runs.append(n)
        return n

    client = app.test_client()
    for path in ("/never", "/never", "/truthy", "/truthy", "/args/0", "/args/0",
                 "/args/1", "/args/1"):
        client.get(path)
    assert runs == ["never", "never", "truthy", "0", "0", "1"]
    assert seen[0] == ("args", {"n": "0"})
    assert not redis_server.client().exists(PREFIX + "view//never")


def test_cached_forced_update(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    force = []
    runs = []

    @app.route("/v")
    @ext.cached(forced_update=lambda: bool(force))
    def v():
        runs.append(1)
        return "run %d" % len(runs)

    client = app.test_client()
    assert client.get("/v").data == b"run 1"
    assert client.get("/v").data == b"run 1"
    force.append(True)
    assert client.get("/v").data == b"run 2"  # recomputed and stored
    force.clear()
    assert client.get("/v").data == b"run 2"


def test_cached_response_filter(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    status = [500]
    runs = []

    @app.route("/v")
    @ext.cached(response_filter=lambda rv: rv[1] == 200)
    def v():
        runs.append(1)
        return "status %d" % status[0], status[0]

    client = app.test_client()
    assert client.get("/v").status_code == 500
    assert client.get("/v").status_code == 500
    assert len(runs) == 2  # not stored
    status[0] = 200
    client.get("/v"), client.get("/v")
    assert len(runs) == 3


def test_cached_query_string(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []

    @app.route("/q")
    @ext.cached(query_string=True)
    def q():
        runs.append(flask.request.query_string)
        return "q"

    @app.route("/noq")
    @ext.cached()
    def noq():
        runs.append(b"noq")
        return "noq"

    client = app.test_client()
    for path in ("/q?a=1&b=2", "/q?b=2&a=1", "/q?a=2", "/q", "/noq?a=1", "/noq?a=2"):
        client.get(path)
    assert runs == [b"a=1&b=2", b"a=2", b"", b"noq"]
    with app.app_context():
        key = q.make_cache_key(path="/q", query_args={"b": 2, "a": 1})
        assert key.startswith("view//q") and len(key) == len("view//q") + 32
        assert q.make_cache_key(path="/q", query_args="a=1&b=2") == key
        assert ext.delete_cached(q, "/q", [("a", "1"), ("b", "2")]) is True


def test_cached_cache_none(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []

    @ext.cached(key_prefix="none-default")
    def not_cached():
        runs.append("default")

    @ext.cached(key_prefix="none-cached", cache_none=True)
    def cached_none():
        runs.append("cache_none")

    with app.app_context():
        for _ in range(2):
            assert not_cached() is None
            assert cached_none() is None
        assert runs == ["default", "cache_none", "default"]
        assert ext.get("none-default") is None and not ext.has("none-default")
        ext.set("none-default", (0, None))  # a stored None entry: a miss all the same
        assert not_cached() is None
    assert runs == ["default", "cache_none", "default", "default"]


def test_cached_make_cache_key(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []

    @app.route("/u/<int:uid>")
    @ext.cached(make_cache_key=lambda uid: "user-page-%d" % (uid % 2))
    def page(uid):
        runs.append(uid)
        return str(uid)

    client = app.test_client()
    assert client.get("/u/1").data == b"1"
    assert client.get("/u/3").data == b"1"  # one key for odd ids
    assert runs == [1]
    assert redis_server.client().exists(PREFIX + "user-page-1")


def _first():  # two functions of one name and different sources
    return "first source"


def _second():
    return "second source"


def test_cached_source_check(impl, redis_server, redis_url):
    for check, separate in ((True, True), (False, False)):
        app, ext = setup(redis_server, "src%s" % check)
        first = ext.cached(key_prefix="shared", source_check=check)(_first)
        second = ext.cached(key_prefix="shared", source_check=check)(_second)
        with app.app_context():
            assert first() == "first source"
            assert second() == ("second source" if separate else "first source")
            ext.clear()
    # CACHE_SOURCE_CHECK is the default of source_check
    app, ext = setup(redis_server, "cfg", CACHE_SOURCE_CHECK=True)
    first = ext.cached(key_prefix="shared")(_first)
    second = ext.cached(key_prefix="shared")(_second)
    with app.app_context():
        assert first() == "first source" and second() == "second source"


def test_cached_timeout_attribute(impl, redis_server, redis_url):
    app, ext = setup(redis_server)

    @app.route("/t")
    @ext.cached(timeout=1000)
    def t():
        return "t"

    t.cache_timeout = 30  # Flask-Caching's writable attribute
    app.test_client().get("/t")
    assert 0 < redis_server.client().ttl(PREFIX + "view//t") <= 30


def test_cached_generator_and_errors(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []

    @ext.cached(key_prefix="gen")
    def gen():
        runs.append(1)
        yield "a"
        yield "b"

    @app.route("/boom")
    @ext.cached()
    def boom():
        runs.append("boom")
        flask.abort(404)

    with app.app_context():
        assert gen() == "ab" and gen() == "ab"
    client = app.test_client()
    assert client.get("/boom").status_code == 404
    assert client.get("/boom").status_code == 404
    assert runs == [1, "boom", "boom"]  # an exception is not cached
    with pytest.raises(TypeError, match="coroutine"):
        @ext.cached()
        async def coro():
            return 1


# -- @memoize ----------------------------------------------------------------------------


def test_memoize_keys_on_bound_arguments(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server)
    runs = []

    @ext.memoize(60)
    def add(a, b=2, *, scale=1):
        runs.append((a, b, scale))
        return (a + b) * scale

    with app.app_context():
        assert add(1, 2) == 3
        assert add(1) == 3
        assert add(a=1, b=2) == 3
        assert add(1, b=2, scale=1) == 3
        assert add(1, 3) == 4
        key = add.make_cache_key(add.uncached, 1, 2)
        assert add.make_cache_key(add.uncached, a=1) == key
    assert runs == [(1, 2, 1), (1, 3, 1)]
    name = "%s.%s" % (add.__module__, add.__qualname__)
    assert key.startswith(name + ":") and len(key) == len(name) + 1 + 32
    assert 0 < r.ttl(PREFIX + key) <= 60


def test_memoize_make_name(impl, redis_server, redis_url):
    app, ext = setup(redis_server)

    @ext.memoize(make_name=lambda name: "renamed." + name.rsplit(".", 1)[-1])
    def f(x):
        return x

    with app.app_context():
        f(1)
        assert f.make_cache_key(f.uncached, 1).startswith("renamed.f:")
    assert redis_server.client().keys(PREFIX + "renamed.f:*")


def test_memoize_unless_forced_update_response_filter(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []
    force = []

    @ext.memoize(unless=lambda f, x: x < 0)
    def skip_negative(x):
        runs.append(("skip", x))
        return x

    @ext.memoize(forced_update=lambda: bool(force))
    def forced(x):
        runs.append(("forced", x))
        return len(runs)

    @ext.memoize(forced_update=lambda x: x == 99)
    def forced_with_args(x):
        runs.append(("forced_args", x))
        return x

    @ext.memoize(response_filter=lambda rv: rv % 2 == 0)
    def only_even(x):
        runs.append(("even", x))
        return x

    with app.app_context():
        skip_negative(-1), skip_negative(-1), skip_negative(1), skip_negative(1)
        first = forced(1)
        assert forced(1) == first
        force.append(1)
        again = forced(1)
        assert again != first
        force.clear()
        assert forced(1) == again  # the forced run was stored
        forced_with_args(99), forced_with_args(99), forced_with_args(1), forced_with_args(1)
        only_even(1), only_even(1), only_even(2), only_even(2)
    assert runs.count(("skip", -1)) == 2 and runs.count(("skip", 1)) == 1
    assert runs.count(("forced", 1)) == 2
    assert runs.count(("forced_args", 99)) == 2 and runs.count(("forced_args", 1)) == 1
    assert runs.count(("even", 1)) == 2 and runs.count(("even", 2)) == 1


def test_memoize_cache_none(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []

    @ext.memoize()
    def default(x):
        runs.append("default")

    @ext.memoize(cache_none=True)
    def keep(x):
        runs.append("keep")

    with app.app_context():
        for _ in range(3):
            assert default(1) is None and keep(1) is None
        assert runs.count("default") == 3 and runs.count("keep") == 1
        assert ext.get(default.make_cache_key(default.uncached, 1), NO_VALUE) is NO_VALUE
        # a None stored by someone else is a miss without cache_none
        ext.set(default.make_cache_key(default.uncached, 1), None)
        assert default(1) is None
        assert runs.count("default") == 4


def test_memoize_source_check(impl, redis_server, redis_url):
    for check, separate in ((True, True), (False, False)):
        app, ext = setup(redis_server, "s%s" % check)
        make_name = lambda name: "same-name"  # noqa: E731
        first = ext.memoize(make_name=make_name, source_check=check)(_first)
        second = ext.memoize(make_name=make_name, source_check=check)(_second)
        with app.app_context():
            assert first() == "first source"
            assert second() == ("second source" if separate else "first source")
            assert first.make_cache_key(_first) != second.make_cache_key(_second) or \
                not separate
            ext.clear()


def test_memoize_args_to_ignore(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []

    @ext.memoize(args_to_ignore=["db", "trace"])
    def load(user_id, db=None, *, trace=False, **extra):
        runs.append(user_id)
        return {"user": user_id}

    with app.app_context():
        load(1, "conn-a")
        load(1, "conn-b", trace=True)
        load(1, db="conn-c")
        load(1)
        load(2, "conn-a")
        key = load.make_cache_key(load.uncached, 1, "anything")
        assert load.make_cache_key(load.uncached, 1) == key
    assert runs == [1, 2]

    @ext.memoize(args_to_ignore=["request_id"])
    def extra_keyword(x, **kw):
        runs.append(("kw", x))
        return x

    with app.app_context():
        extra_keyword(1, request_id="a"), extra_keyword(1, request_id="b")
    assert runs.count(("kw", 1)) == 1
    with pytest.raises(ValueError, match="not a parameter"):
        ext.memoize(args_to_ignore=["nope"])(lambda x: x)


class Adder:
    """Keyed by __caching_id__ (Flask-Caching's hook)."""

    def __init__(self, ident):
        self.ident = ident
        self.runs = 0

    def __caching_id__(self):
        return self.ident


class Repr:
    def __init__(self, ident):
        self.ident = ident

    def __repr__(self):
        return "Repr(%r)" % self.ident


class Plain:
    pass


def test_memoize_methods_key_the_instance(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    runs = []

    class Service(Adder):
        @ext.memoize()
        def add(self, b):
            runs.append((self.ident, b))
            return b + self.ident

        @classmethod
        @ext.memoize()
        def make(cls, x):
            runs.append((cls.__name__, x))
            return x

    class Child(Service):
        pass

    a, b, a_again = Service(10), Service(20), Service(10)
    with app.app_context():
        assert a.add(1) == 11 and b.add(1) == 21
        assert a_again.add(1) == 11  # the same __caching_id__: the same entry
        assert Service.make(1) == 1 and Child.make(1) == 1 and Service.make(1) == 1
        assert runs == [(10, 1), (20, 1), ("Service", 1), ("Child", 1)]
        del runs[:]
        # the instance's entries only
        assert ext.delete_memoized(a.add) == 1
        a.add(1), b.add(1)
        assert runs == [(10, 1)]
        # one call: through the instance, or through the class with the instance
        a.add(2), b.add(2)
        assert ext.delete_memoized(a.add, 2) == 1
        assert ext.delete_memoized(Service.add, b, 2) == 1
        assert ext.delete_memoized(a.add, a, 1) == 1  # the instance given again
        del runs[:]
        a.add(2), b.add(2), a.add(1), b.add(1)
        assert runs == [(10, 2), (20, 2), (10, 1)]
        # every instance's
        assert ext.delete_memoized(Service.add) == 4
        assert ext.delete_memoized(Child.make) == 1  # Child's only
        del runs[:]
        a.add(1), Service.make(1), Child.make(1)
        assert runs == [(10, 1), ("Child", 1)]


def test_memoize_instance_keys(impl, redis_server, redis_url):
    app, ext = setup(redis_server)

    @ext.memoize()
    def describe(self, x):
        return (repr(self), x)

    @ext.memoize(args_to_ignore=["self"])
    def shared(self, x):
        return (repr(self), x)

    with app.app_context():
        assert describe(Repr(1), 0) == ("Repr(1)", 0)
        assert describe(Repr(1), 0) == ("Repr(1)", 0)
        assert describe(Repr(2), 0) == ("Repr(2)", 0)
        assert shared(Repr(1), 0) == ("Repr(1)", 0)
        assert shared(Repr(2), 0) == ("Repr(1)", 0)  # one entry for every instance
        assert shared(Plain(), 0) == ("Repr(1)", 0)
        app.debug = True  # debug mode raises what production logs
        with pytest.raises(TypeError, match="__caching_id__"):
            describe(Plain(), 0)


def test_delete_memoized_and_verhash(impl, redis_server, redis_url):
    r = redis_server.client()
    ext = RedCache()
    app = make_app(redis_server, "one")
    other = make_app(redis_server, "other", CACHE_KEY_PREFIX="other_")
    ext.init_app(app)
    ext.init_app(other)
    runs = []

    @ext.memoize()
    def f(a, b=0):
        runs.append((a, b))
        return a + b

    @ext.memoize()
    def f_two(a):  # a name that starts with f's
        runs.append(("two", a))
        return a

    with other.app_context():
        f(1)
    with app.app_context():
        for i in range(1500):
            f(i)
        f(1, 2), f_two(1)
        assert ext.delete_memoized(f, 1, 2) == 1
        assert ext.delete_memoized(f, a=1, b=2) == 0
        assert ext.delete_memoized(f) == 1500
        assert f.delete_memoized() == 0
        assert ext.get(f_two.make_cache_key(f_two.uncached, 1)) == 1
        f(7)
        assert ext.delete_memoized_verhash(f) == 1
        del runs[:]
        f(7), f_two(1)
        assert runs == [(7, 0)]
        with pytest.raises(TypeError, match="memoize"):
            ext.delete_memoized(lambda: None)
        with pytest.raises(TypeError, match="memoize"):
            ext.delete_memoized("f")
        with pytest.raises(TypeError, match="another extension"):
            RedCache().delete_memoized(f)
    assert len(r.keys("other_*")) == 1  # the other app's entry is left alone


def test_memoize_hit_is_one_round_trip(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server)

    @ext.memoize(300)
    def profile(user_id, fields=("name",)):
        return {"id": user_id, "fields": list(fields)}

    @app.route("/p")
    @ext.cached()
    def page():
        return "page"

    client = app.test_client()
    with app.app_context():
        profile(1)
        client.get("/p")
        r.config_resetstat()
        for _ in range(10):
            assert profile(1) == {"id": 1, "fields": ["name"]}
            assert client.get("/p").data == b"page"
    stats = r.info("commandstats")
    assert stats["cmdstat_get"]["calls"] == 20
    others = {name for name in stats if not name.startswith(("cmdstat_info", "cmdstat_config"))}
    assert others == {"cmdstat_get"}  # nothing but the 20 GETs: no version keys, no EXISTS


SHARED_MODULE = '''
import os

import flask

from pyredcache.flask import Cache

cache = Cache()
calls = []


@cache.memoize(600)
def lookup(user_id, fields=("name",), *, lang="en", **extra):
    calls.append(user_id)
    return {"user": user_id, "fields": list(fields), "lang": lang, "pid": os.getpid()}


class Account:
    def __init__(self, number):
        self.number = number

    def __caching_id__(self):
        return "account-%d" % self.number

    @cache.memoize(600)
    def balance(self, currency):
        calls.append(("balance", self.number))
        return {"pid": os.getpid(), "currency": currency}


def make_app(url):
    app = flask.Flask("shared")
    app.config["CACHE_REDIS_URL"] = url
    cache.init_app(app)
    return app


CALLS = [((1,), {}), ((1, ("name", "email")), {"lang": "fr"}),
         (("ü", ["a", "b"]), {"flag": True, "when": 1.5, "nested": {"k": (1, None)}})]
'''

SHARED_RUN = '''
import sys
import memo_shared as m

app = m.make_app(sys.argv[1])
with app.app_context():
    keys = [m.lookup.make_cache_key(m.lookup.uncached, *a, **k) for a, k in m.CALLS]
    keys.append(m.Account.balance.make_cache_key(m.Account.balance.uncached,
                                                 m.Account(7), "EUR"))
    for a, k in m.CALLS:
        m.lookup(*a, **k)
    m.Account(7).balance("EUR")
print(repr(keys))
'''


def test_memoize_keys_are_equal_across_processes(impl, redis_server, redis_url, tmp_path):
    (tmp_path / "memo_shared.py").write_text(SHARED_MODULE)
    env = env_for(impl)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    env["PYTHONHASHSEED"] = "random"
    run = subprocess.run([sys.executable, "-c", SHARED_RUN, redis_url],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    their_keys = eval(run.stdout)  # noqa: S307 - our own repr()
    sys.path.insert(0, str(tmp_path))
    try:
        m = importlib.import_module("memo_shared")
        app = m.make_app(redis_url)
        with app.app_context():
            keys = [m.lookup.make_cache_key(m.lookup.uncached, *a, **k) for a, k in m.CALLS]
            keys.append(m.Account.balance.make_cache_key(m.Account.balance.uncached,
                                                         m.Account(7), "EUR"))
            assert keys == their_keys
            # and the entries the other process wrote are hits here
            pids = {m.lookup(*a, **k)["pid"] for a, k in m.CALLS}
            pids.add(m.Account(7).balance("EUR")["pid"])
        assert m.calls == []
        assert len(pids) == 1 and pids != {os.getpid()}
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("memo_shared", None)


# -- the Jinja2 tag ----------------------------------------------------------------------

TEMPLATE = """\
{% cache 60, 'sidebar', user %}[{{ counter() }} {{ user }} {{ html }}]{% endcache %}\
{% cache None %}<{{ counter() }}>{% endcache %}\
{% cache 0, 'forever' %}({{ counter() }}){% endcache %}"""


def test_jinja_cache_tag(impl, redis_server, redis_url):
    r = redis_server.client()
    app, ext = setup(redis_server, CACHE_DEFAULT_TIMEOUT=120)
    count = [0]

    def counter():
        count[0] += 1
        return count[0]

    def render(user):
        with app.test_request_context("/"):
            return flask.render_template_string(TEMPLATE, user=user, counter=counter,
                                                html="<b>")

    first = render("ada")
    assert first == "[1 ada &lt;b&gt;]<2>(3)"
    assert render("ada") == first  # all three blocks from the cache, escaped once
    assert render("bob") == "[4 bob &lt;b&gt;]<2>(3)"  # vary_on: a fragment per user
    key = make_template_fragment_key("sidebar", vary_on=["ada"])
    assert key == "_template_fragment_cache_sidebar_ada"
    assert 0 < r.ttl(PREFIX + key) <= 60
    assert r.ttl(PREFIX + make_template_fragment_key("forever")) == -1
    unnamed = [k for k in r.keys(PREFIX + "_template_fragment_cache_*") if b"sidebar" not in k
               and b"forever" not in k]
    assert len(unnamed) == 1 and 0 < r.ttl(unnamed[0]) <= 120  # None: the default
    with app.app_context():
        assert ext.delete(key) is True
    assert render("ada") == "[5 ada &lt;b&gt;]<2>(3)"
    with app.test_request_context("/"):
        out = flask.render_template_string(
            "{% cache 'del', 'sidebar', user %}{{ counter() }}{% endcache %}",
            user="ada", counter=counter)
    assert out == "6" and not r.exists(PREFIX + key)
    assert make_template_fragment_key("plain") == "_template_fragment_cache_plain"
    assert make_template_fragment_key("n", vary_on=[1, "x"]) == "_template_fragment_cache_n_1_x"


def test_jinja_tag_can_be_left_out(impl, redis_server, redis_url):
    app = make_app(redis_server)
    Cache(app, with_jinja2_ext=False)
    with app.test_request_context("/"), pytest.raises(Exception, match="cache"):
        flask.render_template_string("{% cache 5 %}x{% endcache %}")


# -- regions and signals -----------------------------------------------------------------


def test_region_on_the_apps_cache(impl, redis_server, redis_url):
    r = redis_server.client()
    ext = RedCache()
    app1 = make_app(redis_server, "one", CACHE_KEY_PREFIX="one:")
    app2 = make_app(redis_server, "two", CACHE_KEY_PREFIX="two:")
    ext.init_app(app1)
    ext.init_app(app2)
    saved = blinker.Namespace().signal("user-saved")
    with app1.app_context():
        users = ext.region("users", timeout=300, invalidate_on=[saved])
        assert isinstance(users, Region) and users.key == "one:{root.users}"
        assert ext.region("users") is users
        users["42"] = {"name": "Ada"}
        users.region("admins")["7"] = "Grace"
    with app2.app_context():
        other = ext.region("users")
        assert other is not users
        other["42"] = "two"
    assert r.hget("one:{root.users.admins}", "7") is not None
    saved.send("anyone")  # invalidates app1's region and its sub-regions
    assert not r.exists("one:{root.users}", "one:{root.users.admins}")
    assert r.exists("two:{root.users}")
    with app1.app_context():
        assert "42" not in ext.region("users")


def test_hit_and_miss_signals(impl, redis_server, redis_url):
    app, ext = setup(redis_server)
    got = []

    def on_hit(sender, **kw):
        got.append(("hit", sender, kw["key"], kw["kind"]))

    def on_miss(sender, **kw):
        got.append(("miss", sender, kw["key"], kw["kind"]))

    @ext.memoize()
    def f(x):
        return x

    @app.route("/v")
    @ext.cached()
    def v():
        return "v"

    with pf.cache_hit.connected_to(on_hit), pf.cache_miss.connected_to(on_miss):
        with app.app_context():
            f(1), f(1)
            key = f.make_cache_key(f.uncached, 1)
        client = app.test_client()
        client.get("/v"), client.get("/v")
        with app.test_request_context("/"):
            flask.render_template_string("{% cache 5, 'frag' %}x{% endcache %}")
            flask.render_template_string("{% cache 5, 'frag' %}x{% endcache %}")
    frag = "_template_fragment_cache_frag"
    assert got == [("miss", ext, key, "memoize"), ("hit", ext, key, "memoize"),
                   ("miss", ext, "view//v", "view"), ("hit", ext, "view//v", "view"),
                   ("miss", ext, frag, "fragment"), ("hit", ext, frag, "fragment")]
    with app.app_context():
        assert ext.get(key) == 1  # the key as get() takes it


def test_signals_cost_nothing_without_receivers(impl, redis_server, redis_url, monkeypatch):
    app, ext = setup(redis_server)

    def boom(*args, **kwargs):
        raise AssertionError("sent with no receiver connected")

    monkeypatch.setattr(pf.cache_hit, "send", boom)
    monkeypatch.setattr(pf.cache_miss, "send", boom)
    monkeypatch.setattr(pf, "_short", boom)  # nor is the key decoded for it

    @ext.memoize()
    def f(x):
        return x

    @app.route("/v")
    @ext.cached()
    def v():
        return "v"

    app.debug = True  # an error in the cache path would raise, not be logged
    with app.app_context():
        assert f(1) == 1 and f(1) == 1
    assert app.test_client().get("/v").data == b"v"
    assert app.test_client().get("/v").data == b"v"
    assert not pf.cache_hit.receivers and not pf.cache_miss.receivers


# -- docs/flask.rst ----------------------------------------------------------------------


def test_docs_flask_page_runs(impl, redis_url, monkeypatch):
    """The user guide's examples, as doctests, against the session server."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = doctest.testfile(str(DOC), module_relative=False, globs={},
                              optionflags=doctest.ELLIPSIS, report=True, verbose=False)
    assert result.failed == 0
    assert result.attempted >= 40
