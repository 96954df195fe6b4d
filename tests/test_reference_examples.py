"""Every code example of rc's and pottery's documentation, run on pyredcache.

The two documents are test data, copied into ``tests/reference/`` as they
are (CI runs from a fresh clone and from an installed wheel, so nothing
outside the repository is read):

* ``rc-docs.txt``: rc's documentation (fengsp/rc, its Sphinx ``docs/``,
  release 0.3), rendered as plain text.
* ``pottery-README.md``: pottery's README (brainix/pottery), a version
  whose ``Redlock`` takes ``auto_release_time`` in milliseconds.

Extraction (every example, whatever it is; :func:`rc_blocks`,
:func:`markdown_blocks`):

* rc-docs.txt keeps no indentation for literal blocks.  The rendering ends
  every literal block with five or more blank lines (or with the next
  page, whose title line starts with one space); prose paragraphs are
  separated by one blank line and sections by three or more.  So a block
  is the longest run of trailing paragraphs of a chunk (lines between runs
  of three or more blank lines) ended that way which is code: Python that
  compiles, shell lines (``$ ...``) or HTML.  A paragraph that starts with
  a tab is prose (the rendering of a list item, a field or a toctree
  entry).  API signatures are the line after a line holding one tab (the
  rendering of ``.. class::``/``.. method::``): recognised, never run.
* pottery-README.md: indented code blocks (four spaces after a blank line)
  and fenced ones; a block with ``>>>`` prompts is a doctest.  The inline
  spans of its "Contributing" list (``$ make test``) are shell commands in
  prose, not blocks.

:func:`test_every_example_is_run_or_listed` pins the inventory: every block
found is in one group of :data:`GROUPS` (and is run) or in :data:`NOT_RUN`
(with its reason), and :func:`test_no_code_line_is_outside_a_block` checks
that no line of code was missed.

Running (:func:`test_reference_example`, one case per example, on both
cores): only the imports and the addresses change (:class:`Rewrite`):

* ``from rc import X``, ``from rc.cache import X``, ``from pottery import
  X``, ``import rc``, ... become the same names from ``pyredcache``;
* every server address becomes a private ``redis-server`` of the test
  suite: ``Cache()`` (rc's default localhost:6379) and ``Cache('redishost01',
  6379, ...)`` get the session server's host and port, a unix socket path
  becomes its socket, each host of a ``CacheCluster({...})`` one of the
  four ``shards``, ``Redis.from_url(...)`` the session server's URL
  (pottery's README says ``http://localhost:6379/``, a scheme redis-py no
  longer accepts), and a ``Redlock``/``NextId``/container made without
  ``masters``/``redis`` (pottery's default, localhost:6379) gets the
  session server's URL.

Nothing may talk to localhost:6379 or the other ports the documents name:
:func:`check_addresses` checks the code that runs (no ``localhost``, no
``6379``, every connecting call addressed to a private server) and, after
every example, :func:`foreign_connections` checks that this process holds
no TCP connection to one of those ports (Linux ``/proc``).

Examples of one section that build on each other (a later block uses
names, or data, of an earlier one) run in one namespace, in document order:
a group of :data:`GROUPS`.  Names a document uses without defining them
(rc's ``load_from_database``, the ``cache`` of rc's API page) come from a
group's prelude, written in the reference library's terms and rewritten
like the examples.  A case runs the earlier blocks of its group
first if they have not run (``-k`` selecting one case works).  The server
is flushed when a group starts.  Examples run as an imported module would
(``__name__`` is ``"reference_example"``, not ``"__main__"``: the
tutorial's ``if __name__ == '__main__': app.run()`` starts a web server).
rc's tutorial imports Flask and Flask-SQLAlchemy: without them its cases
fail, they do not skip.

Three of pottery's examples are wrong as written (:data:`ERRATA`): they
fail the same way on the built-in object that the README says the
container imitates (a ``list``, a ``threading.Lock``), and the test checks
that pyredcache fails them exactly that way.  Examples pyredcache differs
from on purpose are in :data:`DIFFERENCES`, marked ``xfail(strict=True)``;
both lists are in docs/migrating.rst, with the same reasons.
"""

from __future__ import annotations

import ast
import dataclasses
import doctest
import importlib
import os
import re
import textwrap
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import FakeClock
from examplesupport import (CONTAINERS, Server, apply_rewrite, argument, call_name,
                            check_cluster_addressed, check_the_guard, checked_tree,
                            cluster_hosts, compile_example, connections_to, constant_in,
                            dict_index, find_keyword, set_items, set_unix_socket)
import pyredcache.timer

REFERENCE = Path(__file__).resolve().parent / "reference"
RC_DOCS = "rc-docs.txt"
POTTERY_README = "pottery-README.md"
MIGRATING = Path(__file__).resolve().parent.parent / "docs" / "migrating.rst"

#: The packages whose imports become ``pyredcache``.
REFERENCE_PACKAGES = ("rc", "pottery")

#: Ports the documents name (rc's and pottery's default 6379, and the
#: ports of rc's CacheCluster examples): no example may connect to them.
FOREIGN_PORTS = frozenset({6379, 6479, 6579, 6679})


# -- extraction ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Block:
    """One example: the document, its first line (1-based), its kind
    (``python``, ``doctest``, ``shell``, ``html``) and its text."""

    doc: str
    line: int
    end: int  # last line, inclusive
    kind: str
    text: str

    @property
    def id(self) -> str:
        return "%s:%d" % (self.doc, self.line)


def _blank(line: str) -> bool:
    return not line.strip()


def _page_title(line: str) -> bool:
    # rc-docs.txt starts each page with its title after one space
    return bool(re.match(r"^ \S", line))


def _kind(lines: list[str]) -> str | None:
    """The kind of a candidate block of rc-docs.txt, None for prose."""
    body = [line for line in lines if line.strip()]
    if not body or body[0].startswith("\t"):
        return None
    if all(line.startswith("$ ") for line in body):
        return "shell"
    if body[0].startswith("<") and body[-1].rstrip().endswith(">"):
        return "html"
    try:
        compile(textwrap.dedent("\n".join(lines)), "<candidate>", "exec")
    except SyntaxError:
        return None
    return "python"


def rc_blocks(text: str) -> list[Block]:
    """The literal blocks of rc-docs.txt (see the module docstring)."""
    lines = text.split("\n")
    n = len(lines)
    blocks = []
    i = 0
    while i < n:
        if _blank(lines[i]) or _page_title(lines[i]):
            i += 1
            continue
        paragraphs = []  # [start, end) of each paragraph of this chunk
        start = i
        while True:
            end = start
            while end < n and not _blank(lines[end]) and not _page_title(lines[end]):
                end += 1
            paragraphs.append((start, end))
            after = end
            while after < n and _blank(lines[after]):
                after += 1
            blanks = after - end
            if after >= n or _page_title(lines[after]) or blanks >= 3:
                ends_block = after >= n or _page_title(lines[after]) or blanks >= 5
                break
            start = after
        if ends_block:
            last = paragraphs[-1][1]
            for first, _ in paragraphs:  # the longest trailing run that is code
                kind = _kind(lines[first:last])
                if kind is not None:
                    blocks.append(Block(RC_DOCS, first + 1, last, kind,
                                        textwrap.dedent("\n".join(lines[first:last])) + "\n"))
                    break
        i = after
    return blocks


def rc_signatures(text: str) -> list[tuple[int, str]]:
    """The API signature lines of rc-docs.txt: (line, text)."""
    lines = text.split("\n")
    return [(i + 2, lines[i + 1]) for i in range(len(lines) - 1)
            if lines[i] == "\t" and lines[i + 1].strip()]


def markdown_blocks(text: str, doc: str) -> list[Block]:
    """The code blocks of a Markdown document: fenced, and indented by four
    spaces after a blank line."""
    lines = text.split("\n")
    n = len(lines)
    blocks = []
    i = 0
    previous_blank = True
    while i < n:
        line = lines[i]
        fence = re.match(r"^\s*(```+|~~~+)\s*(\w*)", line)
        if fence:
            j = i + 1
            while j < n and not lines[j].strip().startswith(fence.group(1)):
                j += 1
            body = textwrap.dedent("\n".join(lines[i + 1:j])) + "\n"
            kind = _markdown_kind(body, fence.group(2))
            blocks.append(Block(doc, i + 2, j, kind, body))
            i = j + 1
            previous_blank = False
            continue
        if previous_blank and line.strip() and (line.startswith("    ") or line.startswith("\t")):
            j = i
            while j < n and (_blank(lines[j]) or lines[j].startswith("    ")
                             or lines[j].startswith("\t")):
                j += 1
            while _blank(lines[j - 1]):
                j -= 1
            body = textwrap.dedent("\n".join(lines[i:j])) + "\n"
            blocks.append(Block(doc, i + 1, j, _markdown_kind(body, ""), body))
            i = j
            previous_blank = False
            continue
        previous_blank = _blank(line)
        i += 1
    return blocks


def _markdown_kind(body: str, language: str) -> str:
    lines = [line for line in body.split("\n") if line.strip()]
    if any(line.lstrip().startswith(">>>") for line in lines):
        return "doctest"
    if lines and all(line.startswith("$ ") for line in lines):
        return "shell"
    if language in ("", "python", "py", "pycon"):
        return "python"
    return language


def read(doc: str) -> str:
    return (REFERENCE / doc).read_text(encoding="utf-8")


def all_blocks() -> dict[str, Block]:
    blocks = rc_blocks(read(RC_DOCS)) + markdown_blocks(read(POTTERY_README), POTTERY_README)
    return {b.id: b for b in blocks}


BLOCKS = all_blocks()


# -- what is not run, what differs, what is wrong in the reference ----------------------

_SHELL = "a shell command, not Python: "
_TEMPLATE = ("HTML, not Python: a Jinja template of rc's tutorial; the tutorial's "
             "Python, which renders it, is run")

#: Blocks that are not code, by id, each with the reason it is not run.
#: Only shell commands and HTML: test_not_run_blocks_are_not_python checks
#: that no Python hides here.
NOT_RUN: dict[str, str] = {
    "rc-docs.txt:263": _SHELL + "installs virtualenv",
    "rc-docs.txt:271": _SHELL + "makes and activates a virtualenv",
    "rc-docs.txt:282": _SHELL + "installs rc (pyredcache: pip install pyredcache)",
    "rc-docs.txt:297": _SHELL + "installs rc for all users",
    "rc-docs.txt:310": _SHELL + "a development checkout of rc",
    "rc-docs.txt:569": _TEMPLATE,
    "rc-docs.txt:603": _TEMPLATE,
    "rc-docs.txt:1007": _SHELL + "installs fakeredis, which FakeRedisCache needs (it is "
                                 "a test dependency of pyredcache)",
    "pottery-README.md:12": _SHELL + "installs pottery (pyredcache: pip install pyredcache)",
}

#: Examples pyredcache differs from on purpose: id -> reason.  Each case is
#: xfail(strict=True): if one starts passing, it leaves this list.  The
#: same ids and reasons are in docs/migrating.rst.
DIFFERENCES: dict[str, str] = {}

#: Examples that are wrong as written: id -> (reason, the namespace in which
#: the built-in object the README compares the container with fails them
#: the same way).  pyredcache must fail them exactly as the built-in does.
#: The same ids and reasons are in docs/migrating.rst.
ERRATA: dict[str, tuple[str, Callable[[], dict]]] = {
    "pottery-README.md:74": (
        "lyrics.extend(['in' 'its' 'right' '...']) has no commas: Python joins the "
        "four strings into one, so any list (a built-in one, pottery's, pyredcache's) "
        "then has 2 elements, not 5, and lyrics[4] = 'place' raises IndexError",
        lambda: {"lyrics": []},
    ),
    "pottery-README.md:122": (
        "lock.acquire() returns True, as threading.Lock.acquire does and as the "
        "README's next Redlock example shows, but this example shows no output",
        lambda: {"lock": threading.Lock()},
    ),
    "pottery-README.md:128": (
        "the with lock: block has only a comment as its body, which is a SyntaxError "
        "(IndentationError) in any Python",
        lambda: {"lock": threading.Lock()},
    ),
}


# -- groups -----------------------------------------------------------------------------

#: Names rc's examples call but leave to the reader's application (run
#: before every rc example): load_from_database(name, offset) stands for a
#: database query; it returns its arguments.
RC_READER = '''
def load_from_database(*args):
    return list(args)
'''

#: rc's API page uses ``cache`` (a Cache) without making it; written in
#: rc's terms, and rewritten like the examples.
RC_API_CACHE = '''
from rc import Cache
cache = Cache()
'''


@dataclasses.dataclass(frozen=True)
class Group:
    """Examples that run in one namespace, in this order.

    ``setup``: ids of examples of another section run first (not as cases
    of this group); ``prelude``: code run first, in the reference library's
    terms, for names the document leaves undefined; ``virtual_clock``:
    time.sleep and ContextTimer's clock are a virtual clock; ``requires``:
    modules the examples import besides pyredcache's test dependencies."""

    name: str
    blocks: tuple[str, ...]
    setup: tuple[str, ...] = ()
    prelude: str = ""
    virtual_clock: bool = False
    requires: tuple[str, ...] = ()


def _rc(*lines: int) -> tuple[str, ...]:
    return tuple("%s:%d" % (RC_DOCS, n) for n in lines)


def _pottery(*lines: int) -> tuple[str, ...]:
    return tuple("%s:%d" % (POTTERY_README, n) for n in lines)


GROUPS: tuple[Group, ...] = (
    # Foreword: get_result() is defined, not called (its cache and
    # calculate_result are the reader's).
    Group("rc foreword", _rc(246)),
    # Quickstart: one running example.  323 makes `cache` and stores 'key';
    # 373 decorates load(); 388 reads 'key' back with get_many and batches
    # a decorated function; 413 deletes 'key' and invalidates load().
    Group("rc quickstart", _rc(323, 373, 388, 413), prelude=RC_READER),
    # Quickstart, "Build A Cache Cluster": an aside that builds a
    # CacheCluster on four servers; the page's later examples go on with
    # 323's Cache (388 expects what 323 stored), so it runs on its own.
    Group("rc quickstart: cache cluster", _rc(355)),
    # Tutorial: the skeleton (app, db, cache), the models, the views.
    Group("rc tutorial", _rc(428, 462, 521), requires=("flask", "flask_sqlalchemy")),
    # The "Cache" page: one running example, section after section
    # (namespace, function result, expiration, invalidation, bypass).
    Group("rc cache", _rc(653, 670, 687, 704, 712, 725, 733, 786), prelude=RC_READER),
    # The "Cache" page, "Cache Batch Fetching": the Quickstart's line,
    # expecting the Quickstart's data (after the page's own 725 deleted
    # 'key'), so the Quickstart's first example runs first.
    Group("rc cache: batch fetching", _rc(761), setup=_rc(323)),
    Group("rc cache config: basic", _rc(802)),
    Group("rc cache config: redis options", _rc(825)),
    Group("rc cache cluster config", _rc(838)),
    Group("rc serializer: build your own", _rc(919)),
    # The builtin CRC32 router, an excerpt of rc's module, whose
    # BaseRedisRouter is in scope there.
    Group("rc router: build your own", _rc(972), prelude="from rc import BaseRedisRouter\n"),
    Group("rc patterns: cache in memory", _rc(1027)),
    # The API page: each method's example, with the `cache` the page
    # assumes; batch_mode()'s get_result is a function decorated by it (the
    # text says its results are promises).
    Group("rc api: batch_mode", _rc(1094), prelude=RC_API_CACHE + '''
@cache.cache()
def get_result(i):
    return i
'''),
    Group("rc api: cache", _rc(1122), prelude=RC_READER + RC_API_CACHE),
    Group("rc api: invalidate", _rc(1292), prelude=RC_READER + RC_API_CACHE),
    Group("rc api: CacheCluster", _rc(1475), prelude="from rc import CacheCluster\n"),
    Group("rc api: Promise", _rc(1758), prelude="from rc.promise import Promise\n"),
    Group("rc api: Promise.then", _rc(1808), prelude="from rc.promise import Promise\n"),
    # pottery: "Usage" makes `redis`, which every section after it uses.
    Group("pottery usage", _pottery(18)),
    Group("pottery dicts", _pottery(29, 36), setup=_pottery(18)),
    Group("pottery sets", _pottery(49, 56), setup=_pottery(18)),
    Group("pottery lists", _pottery(69, 74), setup=_pottery(18)),
    Group("pottery nextid", _pottery(90, 95), setup=_pottery(18)),
    # Real time: the lock's expiry is the server's (about 25 s of sleeps).
    Group("pottery redlock", _pottery(117, 122, 128, 133, 145), setup=_pottery(18)),
    # A virtual clock, as in test_containers: the bounds the examples print
    # (100 <= elapsed < 200 ms after a 0.1 s sleep) must not depend on how
    # busy the machine is.
    Group("pottery contexttimer", _pottery(166, 180), virtual_clock=True),
)

GROUP_OF: dict[str, Group] = {b: g for g in GROUPS for b in g.blocks}


# -- rewriting ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Addresses:
    """The private servers the examples are pointed at."""

    main: Server
    shards: tuple[Server, ...]

    def url(self, db: int = 0) -> str:
        return self.main.url(db)

    @property
    def servers(self) -> tuple[Server, ...]:
        return (self.main, *self.shards)


_CACHES = {"Cache", "Redis", "StrictRedis"}
_MASTERS = {"Redlock", "NextId", "synchronize"}


class Rewrite(ast.NodeTransformer):
    """Imports of rc/pottery -> pyredcache; addresses -> private servers."""

    def __init__(self, addresses: Addresses) -> None:
        self.a = addresses
        self.changed = False

    def visit_Import(self, node: ast.Import) -> ast.Import:
        names = []
        for alias in node.names:
            if alias.name.split(".")[0] in REFERENCE_PACKAGES:
                if "." in alias.name:
                    raise NotImplementedError("import of a submodule: %s" % alias.name)
                alias = ast.alias(name="pyredcache", asname=alias.asname or alias.name)
                self.changed = True
            names.append(alias)
        node.names = names
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        if node.level == 0 and node.module and node.module.split(".")[0] in REFERENCE_PACKAGES:
            node.module = "pyredcache"
            self.changed = True
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        name = call_name(node)
        if name == "from_url":
            self._url(node)
        elif name in _CACHES and isinstance(node.func, ast.Name):
            self._host_port(node)
        elif name == "CacheCluster":
            self._cluster(node)
        elif name in _MASTERS and find_keyword(node, "masters") is None:
            node.keywords.append(ast.keyword("masters", ast.List([ast.Constant(self.a.url())])))
            self.changed = True
        elif name in CONTAINERS and find_keyword(node, "redis") is None:
            node.keywords.append(ast.keyword("redis", ast.Constant(self.a.url())))
            self.changed = True
        return node

    def _set(self, node: ast.Call, position: int, name: str, value: Any) -> None:
        if len(node.args) > position:
            node.args[position] = ast.Constant(value)
        elif find_keyword(node, name) is not None:
            find_keyword(node, name).value = ast.Constant(value)  # type: ignore[union-attr]
        else:
            node.keywords.append(ast.keyword(name, ast.Constant(value)))
        self.changed = True

    def _host_port(self, node: ast.Call) -> None:
        if find_keyword(node, "redis") is not None:
            return
        main = self.a.main
        self._set(node, 0, "host", main.host)
        self._set(node, 1, "port", main.port)
        set_unix_socket(node, main.unix)

    def _cluster(self, node: ast.Call) -> None:
        for config, shard in zip(cluster_hosts(node, len(self.a.shards)), self.a.shards):
            if dict_index(config, "unix_socket_path") is not None:
                set_items(config, {"unix_socket_path": shard.unix})
            else:
                set_items(config, {"host": shard.host, "port": shard.port})
        self.changed = True

    def _url(self, node: ast.Call) -> None:
        if not node.args or not isinstance(node.args[0], ast.Constant):
            raise NotImplementedError("from_url without a literal URL")
        path = urllib.parse.urlsplit(node.args[0].value).path.strip("/")
        node.args[0] = ast.Constant(self.a.url(int(path) if path.isdigit() else 0))
        self.changed = True


def rewrite(source: str, addresses: Addresses) -> str:
    """source with the imports and addresses rewritten; unchanged (same
    text, comments kept) when there is nothing to rewrite or it does not
    parse (the error is then the example's own)."""
    return apply_rewrite(source, Rewrite(addresses))


_FOREIGN_TEXT = re.compile(r"localhost|\b6[3-6]79\b|redis-?host|/tmp/redis\.sock|http://")


def check_addresses(source: str, addresses: Addresses) -> None:
    """Raise AssertionError unless every address in the code is one of the
    private servers: no localhost, no port the documents name, and every
    call that connects (a cache, a cluster, a client, a lock, an id
    sequence, a container) given a private address explicitly.  Written
    apart from :class:`Rewrite`, to catch what it would miss."""
    tree = checked_tree(source, _FOREIGN_TEXT)
    if tree is None:
        return  # runs nothing
    hosts = {s.host for s in addresses.servers}
    ports = {s.port for s in addresses.servers}
    paths = {s.unix for s in addresses.servers}
    urls = {addresses.url(db) for db in range(16)}

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node)
        where = "%s(...) in:\n%s" % (name, source)
        if name == "from_url":
            assert node.args and constant_in(node.args[0], urls), "unaddressed " + where
        elif name in _CACHES and isinstance(node.func, ast.Name):
            if find_keyword(node, "redis") is not None:
                continue
            host, port = argument(node, 0, "host"), argument(node, 1, "port")
            assert constant_in(host, hosts) and constant_in(port, ports), "unaddressed " + where
            for k in node.keywords:
                if k.arg == "unix_socket_path":
                    assert constant_in(k.value, paths), "unaddressed " + where
                if k.arg == "redis_options" and isinstance(k.value, ast.Dict):
                    i = dict_index(k.value, "unix_socket_path")
                    assert i is None or constant_in(k.value.values[i], paths), \
                        "unaddressed " + where
        elif name == "CacheCluster":
            check_cluster_addressed(node, hosts, ports, paths, where)
        elif name in _MASTERS:
            masters = find_keyword(node, "masters")
            assert masters is not None, "unaddressed " + where
            if isinstance(masters.value, (ast.List, ast.Set, ast.Tuple)):
                for m in masters.value.elts:
                    assert isinstance(m, ast.Name) or constant_in(m, urls), "unaddressed " + where
        elif name in CONTAINERS:
            client = find_keyword(node, "redis")
            assert client is not None, "unaddressed " + where
            assert isinstance(client.value, ast.Name) or constant_in(client.value, urls), \
                "unaddressed " + where


def foreign_connections(foreign: frozenset[int] | set[int] = FOREIGN_PORTS) -> list[int]:
    """Remote ports in ``foreign`` of this process's TCP sockets (from
    /proc: the C core's hiredis sockets are seen too).  Empty where there
    is no /proc: the static checks of check_addresses still hold there."""
    if not os.path.isdir("/proc/self/fd"):
        return []
    return connections_to(foreign)


# -- running ---------------------------------------------------------------------------


class _Failures(doctest.DocTestRunner):
    """A DocTestRunner that keeps its failures as (source, 'got', output) or
    (source, 'raised', exception type name)."""

    def __init__(self) -> None:
        super().__init__(verbose=False, optionflags=0)
        self.found: list[tuple[str, str, str]] = []

    def report_failure(self, out: Any, test: Any, example: Any, got: str) -> None:
        self.found.append((example.source.strip(), "got", got))

    def report_unexpected_exception(self, out: Any, test: Any, example: Any,
                                    exc_info: Any) -> None:
        self.found.append((example.source.strip(), "raised", exc_info[0].__name__))


def run_doctest(block: Block, globs: dict, addresses: Addresses | None) -> list:
    """Run a doctest block in globs (imports and addresses rewritten unless
    addresses is None); its failures."""
    examples = doctest.DocTestParser().get_examples(block.text, block.id)
    if addresses is not None:
        for example in examples:
            example.source = rewrite(example.source, addresses)
            check_addresses(example.source, addresses)
    test = doctest.DocTest(examples, globs, block.id, block.doc, block.line, block.text)
    runner = _Failures()
    runner.run(test, clear_globs=False, out=lambda text: None)
    assert runner.tries == len(examples) > 0, block.id
    globs.update(test.globs)  # DocTest ran in a copy of globs
    return runner.found


def run_python(block_id: str, source: str, globs: dict, addresses: Addresses) -> None:
    code = rewrite(source, addresses)
    check_addresses(code, addresses)
    exec(compile_example(block_id, code), globs)


def run_block(block: Block, globs: dict, addresses: Addresses) -> None:
    """Run one example; AssertionError (or the example's own exception)
    when it fails."""
    if block.kind == "python":
        run_python(block.id, block.text, globs, addresses)
    elif block.kind == "doctest":
        failures = run_doctest(block, globs, addresses)
        if block.id in ERRATA:
            reason, builtin = ERRATA[block.id]
            expected = run_doctest(block, builtin(), None)
            assert expected, "%s is listed as wrong, yet the built-in passes it" % block.id
            assert failures == expected, (
                "%s: pyredcache should fail this example exactly as the built-in does "
                "(%s)\npyredcache: %r\nbuilt-in:   %r" % (block.id, reason, failures, expected))
        elif failures:
            raise AssertionError("%s failed:\n%s" % (block.id, "\n".join(
                ">>> %s\n    %s %r" % f for f in failures)))
    else:
        raise AssertionError("%s is %s, not code to run" % (block.id, block.kind))
    ports = foreign_connections()
    assert not ports, "%s connected to port(s) %s" % (block.id, ports)


@dataclasses.dataclass
class GroupRun:
    """A group's namespace and which of its examples ran (None: passed,
    else the failure)."""

    globs: dict
    clock: FakeClock | None
    done: dict = dataclasses.field(default_factory=dict)


_RUNS: dict[tuple[str, str], GroupRun] = {}
_OWNER: list = [None]  # the (core, group) whose data the servers hold


def _start(group: Group, addresses: Addresses, servers: list,
           monkeypatch: pytest.MonkeyPatch) -> GroupRun:
    for module in group.requires:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            pytest.fail("%s needs the modules %s (pip install flask flask-sqlalchemy): %s"
                        % (group.name, ", ".join(group.requires), exc))
    for server in servers:
        server.client().flushall()
    run = GroupRun({"__name__": "reference_example"},
                   FakeClock() if group.virtual_clock else None)
    _patch_clock(run, monkeypatch)
    if group.prelude:
        run_python("prelude of %s" % group.name, group.prelude, run.globs, addresses)
    for setup in group.setup:
        try:
            run_block(BLOCKS[setup], run.globs, addresses)
        except Exception as exc:
            pytest.fail("%s: its setup example %s failed: %s: %s"
                        % (group.name, setup, type(exc).__name__, exc))
    return run


def _patch_clock(run: GroupRun, monkeypatch: pytest.MonkeyPatch) -> None:
    if run.clock is not None:
        monkeypatch.setattr(time, "sleep", run.clock.sleep)
        monkeypatch.setattr(pyredcache.timer, "_clock", run.clock)


def _case(block_id: str) -> Any:
    marks = []
    if block_id in DIFFERENCES:
        marks.append(pytest.mark.xfail(strict=True, reason=DIFFERENCES[block_id]))
    return pytest.param(block_id, id=block_id, marks=marks)


CASES = [_case(b) for g in GROUPS for b in g.blocks]


@pytest.fixture
def addresses(redis_server, shards) -> Addresses:
    return Addresses(Server.of(redis_server), tuple(Server.of(s) for s in shards))


@pytest.mark.parametrize("block_id", CASES)
def test_reference_example(block_id: str, impl, request: pytest.FixtureRequest,
                           addresses: Addresses, redis_server, shards,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    block = BLOCKS[block_id]
    group = GROUP_OF[block_id]
    owner = (request.node.callspec.params["impl"], group.name)
    run = _RUNS.get(owner)
    if run is None or _OWNER[0] != owner or block_id in run.done:
        # first case of the group, or the servers hold another group's data
        run = _RUNS[owner] = _start(group, addresses, [redis_server, *shards], monkeypatch)
        _OWNER[0] = owner
    else:
        _patch_clock(run, monkeypatch)
    for earlier in group.blocks[:group.blocks.index(block_id)]:
        if earlier not in run.done:
            try:
                run_block(BLOCKS[earlier], run.globs, addresses)
                run.done[earlier] = None
            except Exception as exc:
                run.done[earlier] = "%s: %s" % (type(exc).__name__, exc)
        if run.done[earlier] is not None and earlier not in DIFFERENCES:
            pytest.fail("%s cannot run: the earlier example %s of its group (%s) failed: %s"
                        % (block_id, earlier, group.name, run.done[earlier]))
    try:
        run_block(block, run.globs, addresses)
    except BaseException as exc:
        run.done[block_id] = "%s: %s" % (type(exc).__name__, exc)
        raise
    run.done[block_id] = None


# -- the inventory ---------------------------------------------------------------------


def test_reference_documents_are_the_copies_in_the_repository() -> None:
    rc = read(RC_DOCS)
    pottery = read(POTTERY_README)
    assert rc.startswith(" rc: the redis cache\n")
    assert "class rc.promise.Promise" in rc
    assert pottery.startswith("# Pottery: Redis for Humans\n")
    assert "    >>> from pottery import Redlock" in pottery


def test_every_example_is_run_or_listed() -> None:
    grouped = [b for g in GROUPS for b in g.blocks]
    assert len(grouped) == len(set(grouped)), "an example is in two groups"
    assert set(grouped).isdisjoint(NOT_RUN)
    assert set(grouped) | set(NOT_RUN) == set(BLOCKS), (
        "examples neither run nor listed: %s; listed but not found: %s"
        % (sorted(set(BLOCKS) - set(grouped) - set(NOT_RUN)),
           sorted((set(grouped) | set(NOT_RUN)) - set(BLOCKS))))
    # the inventory, so that a change to the extraction shows
    assert len([b for b in BLOCKS.values() if b.doc == RC_DOCS]) == 38
    assert len([b for b in BLOCKS.values() if b.doc == POTTERY_README]) == 17
    for g in GROUPS:
        for b in g.setup:
            assert b in BLOCKS and b not in NOT_RUN and b not in g.blocks
        lines = [BLOCKS[b].line for b in g.blocks]
        assert lines == sorted(lines), "%s: not in document order" % g.name
    assert set(DIFFERENCES) <= set(grouped) and set(ERRATA) <= set(grouped)
    assert not set(DIFFERENCES) & set(ERRATA)


def test_not_run_blocks_are_not_python() -> None:
    for block_id, reason in NOT_RUN.items():
        block = BLOCKS[block_id]
        assert block.kind in ("shell", "html"), (block_id, block.kind)
        assert reason.startswith("HTML" if block.kind == "html" else _SHELL), block_id
    for block_id in GROUP_OF:
        assert BLOCKS[block_id].kind in ("python", "doctest"), block_id


def test_api_signatures_are_recognised_and_not_run() -> None:
    signatures = rc_signatures(read(RC_DOCS))
    assert len(signatures) == 34
    signature = re.compile(r"^(class )?[A-Za-z_][\w.]*(\(.*\))?$")
    inside = {line for b in BLOCKS.values() for line in range(b.line, b.end + 1)
              if b.doc == RC_DOCS}
    for line, text in signatures:
        assert signature.match(text), (line, text)
        assert line not in inside, (line, text)


# Lines that look like code: each must be in a block (or be a signature).
_CODE_LINE = re.compile(
    r"^\s*(from \w[\w.]* import |import \w|@\w|def \w|class \w+(\(.*\))?:$|assert |\$ |"
    r"<[a-zA-Z!/]|[A-Za-z_][\w.]*(\[.*\])? = |[A-Za-z_]\w*\.\w+\(.*\)$|>>> )")


def test_no_code_line_is_outside_a_block() -> None:
    for doc in (RC_DOCS, POTTERY_README):
        lines = read(doc).split("\n")
        inside = {line for b in BLOCKS.values() if b.doc == doc
                  for line in range(b.line, b.end + 1)}
        if doc == RC_DOCS:
            inside |= {line for line, _ in rc_signatures(read(doc))}
        missed = [(i + 1, text) for i, text in enumerate(lines)
                  if i + 1 not in inside and _CODE_LINE.match(text)]
        assert missed == [], doc


def test_differences_and_errata_are_documented() -> None:
    """docs/migrating.rst lists the same examples with the same reasons."""
    text = MIGRATING.read_text(encoding="utf-8")

    def plain(s: str) -> str:
        return re.sub(r"\s+", " ", s.replace("`", "").replace("\\", ""))

    doc = plain(text)
    listed = {**DIFFERENCES, **{k: reason for k, (reason, _) in ERRATA.items()}}
    for block_id, reason in listed.items():
        assert block_id in doc, block_id
        assert plain(reason) in doc, (block_id, reason)
    # and no other example is listed there as differing
    mentioned = set(re.findall(r"(?:rc-docs\.txt|pottery-README\.md):\d+", doc))
    assert mentioned == set(listed), sorted(mentioned ^ set(listed))


# -- the guards themselves -------------------------------------------------------------


@pytest.fixture
def fake_addresses() -> Addresses:
    shards = tuple(Server("127.0.0.1", 40001 + i, "/tmp/t/s%d.sock" % i) for i in range(4))
    return Addresses(Server("127.0.0.1", 40000, "/tmp/t/main.sock"), shards)


@pytest.mark.parametrize("source", [
    "from rc import Cache\ncache = Cache()\n",
    "cache = Cache(namespace='models')\n",
    "cache = Cache('redishost01', 6379, db=0)\n",
    "cache = Cache(redis_options={'unix_socket_path': '/tmp/redis.sock'})\n",
    "cache = CacheCluster({0: {'port': 6379}, 1: {'host': 'h'}, 2: {'unix_socket_path': 'x'}})\n",
    "redis = Redis.from_url('http://localhost:6379/')\n",
    "lock = Redlock(key='printer', auto_release_time=15*1000)\n",
    "ids = NextId(key='user-ids')\n",
    "d = RedisDict(key='raj')\n",
])
def test_unrewritten_addresses_are_refused_and_rewritten_ones_pass(
        source: str, fake_addresses: Addresses) -> None:
    with pytest.raises(AssertionError):
        check_addresses(source, fake_addresses)
    rewritten = rewrite(source, fake_addresses)
    check_addresses(rewritten, fake_addresses)
    assert "pyredcache" in rewritten or "rc" not in source.split("import")[0]


def test_rewrite_changes_only_imports_and_addresses(fake_addresses: Addresses) -> None:
    assert rewrite("from rc.serializer import BaseSerializer\n", fake_addresses) == \
        "from pyredcache import BaseSerializer\n"
    assert rewrite("import rc\n", fake_addresses) == "import pyredcache as rc\n"
    assert rewrite("from pottery import NextId\n", fake_addresses) == \
        "from pyredcache import NextId\n"
    assert rewrite("from redis import Redis\n# kept\n", fake_addresses) == \
        "from redis import Redis\n# kept\n"
    assert rewrite("cache = Cache('redishost01', 6379, db=0, password='pass')\n",
                   fake_addresses) == \
        "cache = Cache('127.0.0.1', 40000, db=0, password='pass')\n"
    assert rewrite("r = Redis.from_url('redis://localhost:6379/1')\n", fake_addresses) == \
        "r = Redis.from_url('redis://127.0.0.1:40000/1')\n"
    assert rewrite("c = CacheCluster({0: {'host': 'a', 'db': 1}, 1: {'unix_socket_path': "
                   "'/tmp/redis.sock'}})\n", fake_addresses) == \
        ("c = CacheCluster({0: {'host': '127.0.0.1', 'db': 1, 'port': 40001}, "
         "1: {'unix_socket_path': '/tmp/t/s1.sock'}})\n")


def test_every_runnable_example_is_addressed_after_rewriting(fake_addresses: Addresses) -> None:
    sources = [g.prelude for g in GROUPS if g.prelude]
    for block_id in GROUP_OF:
        block = BLOCKS[block_id]
        if block.kind == "python":
            sources.append(block.text)
        else:
            sources += [e.source for e in doctest.DocTestParser().get_examples(block.text)]
    for source in sources:
        check_addresses(rewrite(source, fake_addresses), fake_addresses)
    # and the documents do name the addresses the rewriting replaces
    assert "localhost:6379" in read(POTTERY_README)
    assert "'redis-host01'" in read(RC_DOCS)


def test_foreign_connections_sees_a_connection_to_a_foreign_port() -> None:
    """The runtime guard works: a socket connected to a port of the set is
    seen, and no longer once closed.  (6379 itself may be taken on this
    machine, and must not be touched: a free port stands in for it.)"""
    if not os.path.isdir("/proc/self/fd"):
        pytest.fail("the runtime guard needs /proc (Linux)")
    check_the_guard(foreign_connections)
