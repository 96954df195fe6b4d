"""rc's tutorial blog, on pyredcache: Flask, SQLite and a Redis cache.

Run it with ``python examples/blog/app.py`` and open http://127.0.0.1:5000/;
``--port N`` and ``--host H`` choose where it listens.  It caches in the Redis
at ``--redis-url URL`` (default: ``$CACHE_REDIS_URL``), and when none is given
in a private ``redis-server`` that it starts for the run (a unix socket in a
temp dir, no TCP port, no persistence; :class:`pyredcache.server.EmbeddedRedis`).
The posts live in SQLite: ``--database PATH``, by default a file in a temp
dir removed at exit, seeded with a dozen posts.  ``python examples/blog/app.py
--check`` starts it the same way, fetches its pages with Flask's test client,
checks what they show and what they cost, prints one line and exits.

As in rc's tutorial, anyone can add a post, edit one, read one, and read
them all (newest first, a page at a time).  The cache:

* ``/post/<id>`` loads its post through a function decorated with
  ``@cache.cache()`` (:meth:`pyredcache.Cache.cache`): a hit is one round
  trip to Redis (one GET) and no SQL.
* ``/`` (``?page=N``) reads the ids of its page from SQLite (one indexed
  query) and loads the posts through the same decorated function inside
  ``cache.batch_mode()``: one round trip (one MGET) for the whole page;
  misses are read from SQLite and written back in one pipeline.  (rc's
  tutorial caches the list of ids too; that costs a second round trip per
  page and an invalidation per added post, to save a query that reads only
  the primary key index.)
* Editing a post (a POST to ``/post/<id>``) updates SQLite and then deletes
  that post's entry, and only it (``cache.invalidate(get_post, post_id)``: one
  DEL).  Adding one deletes the entry of its new id, in case a visitor asked
  for that id before it existed (a cached "no such post").
* The app fails open: ``CACHE_IGNORE_ERRORS = True`` (the app's default), so
  when Redis cannot be reached every page is computed from SQLite, nothing
  is raised, and the cache is used again once Redis answers.  Its connection
  timeouts are short (``CACHE_OPTIONS``), and after five failures in a row
  the client's circuit breaker refuses calls at once for two seconds.

The cache is pyredcache's Flask extension (:class:`pyredcache.flask.RedCache`),
configured by Flask-Caching's settings: ``CACHE_REDIS_URL``,
``CACHE_KEY_PREFIX`` (``'blog:'`` here), ``CACHE_DEFAULT_TIMEOUT`` (300 s),
``CACHE_IGNORE_ERRORS``, ``CACHE_OPTIONS``.  Its ``cache.cache`` is the app's
:class:`pyredcache.Cache`, whose decorator and ``batch_mode()`` the blog uses.
The blog's own settings: ``BLOG_DATABASE`` (the SQLite file),
``BLOG_POSTS_PER_PAGE`` (5) and ``BLOG_SEED`` (True: seed an empty database).

``create_app(config)`` is the app factory (the tests use it with their own
Redis and database); ``app.extensions['blog']`` is the app's :class:`Blog`,
whose ``queries`` counts the SQL statements run, by verb.
"""

from __future__ import annotations

import argparse
import collections
import copy
import datetime
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import weakref
from typing import Any

import flask
from flask import abort, current_app, g, redirect, render_template, request, url_for

import pyredcache
from pyredcache.flask import RedCache
from pyredcache.server import EmbeddedRedis

HERE = os.path.dirname(os.path.abspath(__file__))

#: The extension: one object for every app the factory makes; each app's
#: cache lives in that app (``app.extensions['pyredcache']``).
cache = RedCache()

#: The settings an app gets unless its config says otherwise.
DEFAULTS: dict[str, Any] = {
    "CACHE_KEY_PREFIX": "blog:",
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_IGNORE_ERRORS": True,
    # a web page should not wait a second for a cache: give up after 250 ms
    "CACHE_OPTIONS": {"socket_timeout": 0.25, "socket_connect_timeout": 0.25},
    "BLOG_POSTS_PER_PAGE": 5,
    "BLOG_SEED": True,
}

#: What an empty database is seeded with: (title, content), oldest first.
SEED_POSTS = [
    ("Hello, blog", "This blog keeps its posts in SQLite and caches them in Redis."),
    ("Reading a post", "A post page loads its post through a function decorated with "
                       "cache.cache(): a hit is one GET, and SQLite is not asked."),
    ("Reading the index", "The index loads a page of posts inside cache.batch_mode(): "
                          "one MGET for the whole page."),
    ("Editing a post", "An edit updates SQLite, then deletes that post's entry, and "
                       "only that one."),
    ("Failing open", "When Redis cannot be reached, pages are computed from SQLite: "
                     "CACHE_IGNORE_ERRORS is on."),
    ("Keys", "Entries are keyed on the arguments bound to the function's signature, "
             "canonically encoded and hashed: equal in every process."),
    ("Expiry", "Every entry lives CACHE_DEFAULT_TIMEOUT seconds, 300 here."),
    ("Misses", "In batch mode, misses are computed after the MGET and written back "
               "in one pipeline."),
    ("No such post", "A post that does not exist is cached as None; adding a post "
                     "deletes the entry of its id."),
    ("Circuit breaker", "After five failed calls in a row, the client stops dialling "
                        "a dead server for two seconds."),
    ("Embedded Redis", "Without CACHE_REDIS_URL, the app starts a private "
                       "redis-server on a unix socket."),
    ("The end", "That is the whole tutorial."),
]


class Blog:
    """One app's posts: the SQLite database and the cached loader.

    :param app: the Flask app (its config names the database).
    :param backend: the app's :class:`pyredcache.Cache` (``cache.cache`` in
        an app context).
    """

    def __init__(self, app: flask.Flask, backend: pyredcache.Cache) -> None:
        self.database: str = app.config["BLOG_DATABASE"]
        self.per_page = int(app.config["BLOG_POSTS_PER_PAGE"])
        if self.per_page < 1:
            raise ValueError("BLOG_POSTS_PER_PAGE must be >= 1, got %r" % self.per_page)
        #: the app's pyredcache Cache
        self.cache = backend
        #: SQL statements run, by verb (``queries['SELECT']``), all threads
        self.queries: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        #: the EmbeddedRedis the app started, if it started one
        self.redis_server: EmbeddedRedis | None = None
        self._cleanup: list[Any] = []

        @backend.cache(key_prefix="post")
        def get_post(post_id: int) -> dict | None:
            """The post of that id as a dict, None when there is none.  Its
            entry is ``blog:post:<digest of post_id>``; a cached None is a
            hit (a missing post costs no SQL either)."""
            row = self.db().execute(
                "SELECT id, title, content, created_ts, updated_ts FROM posts WHERE id = ?",
                (post_id,)).fetchone()
            return dict(row) if row is not None else None

        #: the cached loader: ``get_post(post_id)``
        self.get_post = get_post

    # -- SQLite ------------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A new connection to the database, its statements counted."""
        conn = sqlite3.connect(self.database)
        conn.row_factory = sqlite3.Row
        conn.set_trace_callback(self._count)
        return conn

    def _count(self, statement: str) -> None:
        verb = statement.split(None, 1)[0].upper() if statement.strip() else "?"
        with self._lock:
            self.queries[verb] += 1

    def db(self) -> sqlite3.Connection:
        """The current app context's connection (opened on first use, closed
        when the context ends)."""
        conn = g.get("blog_db")
        if conn is None:
            conn = g.blog_db = self.connect()
        return conn

    def init_db(self, seed: bool) -> None:
        """Create the table if it is not there; seed an empty one if asked."""
        with open(os.path.join(HERE, "schema.sql"), encoding="utf-8") as f:
            schema = f.read()
        conn = self.connect()
        try:
            conn.executescript(schema)
            if seed and conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 0:
                now = int(time.time())
                conn.executemany(
                    "INSERT INTO posts (title, content, created_ts, updated_ts) "
                    "VALUES (?, ?, ?, ?)",
                    [(title, content, now, now) for title, content in SEED_POSTS])
            conn.commit()
        finally:
            conn.close()

    # -- posts -------------------------------------------------------------------------

    def page_ids(self, page: int) -> tuple[list[int], bool]:
        """The ids of page ``page`` (1, 2, ...), newest first, and whether
        there is a page after it: one query on the primary key."""
        rows = self.db().execute(
            "SELECT id FROM posts ORDER BY id DESC LIMIT ? OFFSET ?",
            (self.per_page + 1, (page - 1) * self.per_page)).fetchall()
        ids = [row[0] for row in rows]
        return ids[:self.per_page], len(ids) > self.per_page

    def page(self, page: int) -> tuple[list[dict], bool]:
        """The posts of a page and whether there is a next one: the ids from
        SQLite, the posts in one batch (one MGET)."""
        ids, more = self.page_ids(page)
        with self.cache.batch_mode():
            promises = [self.get_post(post_id) for post_id in ids]
        return [p.value for p in promises if p.value is not None], more

    def add(self, title: str, content: str) -> int:
        """Insert a post; returns its id.  Deletes the entry of that id (a
        "no such post" cached before it existed)."""
        now = int(time.time())
        conn = self.db()
        with conn:
            cursor = conn.execute(
                "INSERT INTO posts (title, content, created_ts, updated_ts) "
                "VALUES (?, ?, ?, ?)", (title, content, now, now))
        post_id = int(cursor.lastrowid)  # type: ignore[arg-type]
        self.cache.invalidate(self.get_post, post_id)
        return post_id

    def update(self, post_id: int, title: str, content: str) -> bool:
        """Update a post, then delete its entry (that one only: one DEL).
        False when there is no such post (nothing is deleted)."""
        conn = self.db()
        with conn:
            cursor = conn.execute(
                "UPDATE posts SET title = ?, content = ?, updated_ts = ? WHERE id = ?",
                (title, content, int(time.time()), post_id))
        if cursor.rowcount == 0:
            return False
        self.cache.invalidate(self.get_post, post_id)
        return True

    def close(self) -> None:
        """Stop the EmbeddedRedis the app started (if any), close the cache's
        connections and remove the temporary database (if it made one)."""
        self.cache.client.close()
        for step in reversed(self._cleanup):
            step()
        self._cleanup.clear()


def current_blog() -> Blog:
    return current_app.extensions["blog"]


# -- views -----------------------------------------------------------------------------

bp = flask.Blueprint("blog", __name__)


def _form() -> tuple[str, str]:
    """The title and content of the submitted form (400 when missing)."""
    title = request.form.get("title", "").strip()
    content = request.form.get("content", "").strip()
    if not title or not content:
        abort(400, "a post needs a title and some content")
    if len(title) > 100:
        abort(400, "a title has at most 100 characters")
    return title, content


@bp.get("/")
def show_all_posts() -> str:
    page = request.args.get("page", 1, type=int)
    if page < 1:
        abort(404)
    posts, more = current_blog().page(page)
    if not posts and page > 1:
        abort(404)
    return render_template("index.html", all_posts=posts, page=page, more=more)


@bp.post("/add")
def add_post() -> Any:
    title, content = _form()
    current_blog().add(title, content)
    return redirect(url_for("blog.show_all_posts"), code=303)


@bp.get("/post/<int:post_id>")
def show_post(post_id: int) -> str:
    post = current_blog().get_post(post_id)
    if post is None:
        abort(404)
    return render_template("post.html", post=post)


@bp.post("/post/<int:post_id>")
def edit_post(post_id: int) -> Any:
    title, content = _form()
    if not current_blog().update(post_id, title, content):
        abort(404)
    return redirect(url_for("blog.show_post", post_id=post_id), code=303)


def _close_db(exc: BaseException | None) -> None:
    conn = g.pop("blog_db", None)
    if conn is not None:
        conn.close()


def _timestamp(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")


# -- the app ---------------------------------------------------------------------------


def create_app(config: dict[str, Any] | None = None) -> flask.Flask:
    """The blog app.  ``config`` (dict) overrides :data:`DEFAULTS`.

    Without ``CACHE_REDIS_URL`` (or ``CACHE_REDIS_HOST``) it starts an
    :class:`~pyredcache.server.EmbeddedRedis` and caches there; without
    ``BLOG_DATABASE`` it makes a temporary SQLite file.  Both are stopped
    or removed by ``app.extensions['blog'].close()``, and at exit.
    """
    app = flask.Flask(__name__, root_path=HERE)
    app.config.update(copy.deepcopy(DEFAULTS))
    app.config.update(config or {})
    host = app.config.get("CACHE_REDIS_HOST")
    if not isinstance(host, (str, type(None))) and "CACHE_OPTIONS" not in (config or {}):
        del app.config["CACHE_OPTIONS"]  # a client of your own carries its options
    cleanup: list[Any] = []
    try:
        if not app.config.get("CACHE_REDIS_URL") and not app.config.get("CACHE_REDIS_HOST"):
            server = EmbeddedRedis()
            cleanup.append(server.close)
            app.config["CACHE_REDIS_URL"] = server.url
        else:
            server = None
        if not app.config.get("BLOG_DATABASE"):
            directory = tempfile.mkdtemp(prefix="pyredcache-blog-")
            cleanup.append(weakref.finalize(app, shutil.rmtree, directory, True))
            app.config["BLOG_DATABASE"] = os.path.join(directory, "blog.sqlite")
        cache.init_app(app)
        with app.app_context():
            blog = Blog(app, cache.cache)
        blog.redis_server = server
        blog._cleanup = cleanup
        blog.init_db(seed=bool(app.config["BLOG_SEED"]))
    except BaseException:
        for step in reversed(cleanup):
            step()
        raise
    app.extensions["blog"] = blog
    app.register_blueprint(bp)
    app.teardown_appcontext(_close_db)
    app.add_template_filter(_timestamp, "timestamp")
    return app


# -- the command line ------------------------------------------------------------------


def check(app: flask.Flask) -> None:
    """Fetch the pages with the test client and check what they show and
    cost; raises SystemExit with a message on the first thing wrong."""
    blog: Blog = app.extensions["blog"]
    client = app.test_client()

    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise SystemExit("blog check failed: " + what)

    def selects() -> int:
        return blog.queries["SELECT"]

    first = client.get("/")
    expect(first.status_code == 200 and b"The end" in first.data,
           "the index does not show the newest post")
    before = selects()
    again = client.get("/")
    expect(again.data == first.data, "the index changed between two views")
    expect(selects() - before == 1, "a warm index ran %d SELECTs, not 1 (its ids)"
           % (selects() - before))
    post = client.get("/post/1")
    expect(post.status_code == 200 and b"Hello, blog" in post.data,
           "/post/1 does not show the first post")
    before = selects()
    expect(client.get("/post/1").data == post.data, "/post/1 changed between two views")
    expect(selects() == before, "a warm /post/1 was read from SQLite, not from the cache")
    edited = client.post("/post/1", data={"title": "Hello again", "content": "Edited."})
    expect(edited.status_code == 303, "the edit answered %d" % edited.status_code)
    post = client.get("/post/1")
    expect(b"Hello again" in post.data and b"Edited." in post.data,
           "/post/1 shows its old text after the edit")
    expect(client.get("/post/999").status_code == 404, "/post/999 is not a 404")
    print("blog check: ok on the %s core, caching in %s"
          % (pyredcache.implementation, app.config["CACHE_REDIS_URL"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python examples/blog/app.py",
        description="rc's tutorial blog on pyredcache (Flask + SQLite + Redis).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--redis-url", default=os.environ.get("CACHE_REDIS_URL"),
                        help="the Redis to cache in (default: $CACHE_REDIS_URL; without "
                             "one, a private redis-server started for the run)")
    parser.add_argument("--database", help="the SQLite file (default: a temporary one)")
    parser.add_argument("--check", action="store_true",
                        help="fetch the pages with the test client, check them, exit")
    args = parser.parse_args(argv)
    config: dict[str, Any] = {}
    if args.redis_url:
        config["CACHE_REDIS_URL"] = args.redis_url
    if args.database:
        config["BLOG_DATABASE"] = args.database
    # `kill` (SIGTERM) ends the server as Ctrl-C does: through the finally
    # below, which stops the EmbeddedRedis and removes the temporary database
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    app = create_app(config)
    blog: Blog = app.extensions["blog"]
    try:
        if args.check:
            check(app)
            return 0
        print("blog: caching in %s, posts in %s (%s core)"
              % (app.config["CACHE_REDIS_URL"], app.config["BLOG_DATABASE"],
                 pyredcache.implementation), flush=True)
        app.run(host=args.host, port=args.port, debug=False, use_reloader=False)
    finally:
        blog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
