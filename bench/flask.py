"""The Flask extension: a cached view and a memoized function through
pyredcache.flask against Flask-Caching's RedisCache, same run, same server,
same payload.

    cd bench && PYTHONPATH=.. python flask.py [--quick]

* cached view: requests per second through Flask's test client, for a view
  under ``@cache.cached()`` that is a hit (the view never runs after the
  first request); the same view uncached, and the test client on a view
  that does nothing, give the floor the cache adds to;
* memoized hit: µs per call of ``@cache.memoize()`` function that is a hit,
  in an app context.  pyredcache sends one GET; Flask-Caching reads the
  function's version key first (an MGET) and then the entry (a GET).

Both sides with their default serializer (pyredcache's native codec,
Flask-Caching's pickle), redis-py with hiredis for Flask-Caching, TCP
loopback.  ratio = Flask-Caching time / pyredcache time (>1: pyredcache
faster).
"""

from __future__ import annotations

import os
import sys

from common import bench_options, measure, private_redis

# This file is named flask.py: with bench/ on sys.path, "import flask" would
# import this file.  common is imported; take bench/ off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.modules.pop("flask", None)

import flask  # noqa: E402
import flask_caching  # noqa: E402
import redis as redis_py  # noqa: E402

import pyredcache  # noqa: E402
import pyredcache.flask as pyredcache_flask  # noqa: E402
from pyredcache import _compat  # noqa: E402

VALUE = {"id": 12345, "name": "pyredcache", "tags": ["redis", "cache", "c"], "score": 0.875,
         "ok": True}
PAGE = "<ul>" + "".join("<li>item %d</li>" % i for i in range(40)) + "</ul>"


def make_app(name: str, extension: object, config: dict) -> tuple[flask.Flask, object, object]:
    """An app with a cached view at /cached, a plain one at /plain and a
    memoized function; returns (app, memoized function, test client)."""
    app = flask.Flask(name)
    app.config.update(config)
    extension.init_app(app)  # type: ignore[attr-defined]

    @app.route("/cached")
    @extension.cached(timeout=3600)  # type: ignore[attr-defined]
    def cached_view() -> str:
        return PAGE

    @app.route("/plain")
    def plain_view() -> str:
        return PAGE

    @extension.memoize(timeout=3600)  # type: ignore[attr-defined]
    def load(user_id: int, detail: str = "short") -> dict:
        return VALUE

    return app, load, app.test_client()


def main() -> int:
    _, rounds, seconds = bench_options(__doc__)
    import hiredis  # noqa: F401  - redis-py must parse with hiredis here

    view_rows, memo_rows = [], []
    with private_redis() as (port, _sock):
        url = "redis://127.0.0.1:%d/0" % port
        fc_app, fc_load, fc_client = make_app(
            "flask-caching", flask_caching.Cache(),
            {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, "CACHE_KEY_PREFIX": "fc_"})
        floor = None
        for impl in ("c", "python"):
            _compat.core = _compat.c_core if impl == "c" else _compat.py_core
            app, load, client = make_app(
                "pyredcache-" + impl, pyredcache_flask.Cache(),
                {"CACHE_REDIS_URL": url, "CACHE_KEY_PREFIX": "prc_%s_" % impl})
            for c in (client, fc_client):  # fill both caches; check they serve it
                assert c.get("/cached").data == PAGE.encode()
            res = measure({"ours": lambda: client.get("/cached"),
                           "peer": lambda: fc_client.get("/cached")}, 1, rounds, seconds)
            view_rows.append(("cached view hit, test client (%s)" % impl, res))
            if floor is None:
                floor = measure({"plain": lambda: client.get("/plain")}, 1, rounds,
                                seconds)["plain"]
            with app.app_context():
                assert load(1) == VALUE
                ours = measure({"ours": lambda: load(1)}, 1, rounds, seconds)["ours"]
            with fc_app.app_context():
                assert fc_load(1) == VALUE
                peer = measure({"peer": lambda: fc_load(1)}, 1, rounds, seconds)["peer"]
            memo_rows.append(("memoized hit (%s)" % impl, {"ours": ours, "peer": peer}))
        _compat.core = _compat.c_core

    print("pyredcache %s Flask bench: Python %s, Flask %s, Flask-Caching %s, redis-py %s "
          "(hiredis parser), TCP loopback, median of %d rounds"
          % (pyredcache.__version__, sys.version.split()[0], _version("flask"),
             _version("flask-caching"), redis_py.__version__, rounds))
    print()
    print("| operation | pyredcache.flask | Flask-Caching (RedisCache) | ratio |")
    print("|---|---|---|---|")
    for name, res in view_rows:
        print("| %s | %.0f req/s (%.1f µs) | %.0f req/s (%.1f µs) | %.2fx |" % (
            name, 1e6 / res["ours"], res["ours"], 1e6 / res["peer"], res["peer"],
            res["peer"] / res["ours"]))
    for name, res in memo_rows:
        print("| %s | %.2f µs | %.2f µs | %.2fx |" % (name, res["ours"], res["peer"],
                                                     res["peer"] / res["ours"]))
    assert floor is not None
    print()
    print("The test client alone (an uncached view returning the same page): %.0f req/s "
          "(%.1f µs), the floor under both cached views." % (1e6 / floor, floor))
    return 0


def _version(dist: str) -> str:
    import importlib.metadata
    return importlib.metadata.version(dist)


if __name__ == "__main__":
    sys.exit(main())
