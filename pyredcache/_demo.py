"""``python -m pyredcache demo``: cache real, slow work and show what it buys.

The work: summarise modules of the Python standard library found on this
machine (``sysconfig.get_paths()["stdlib"]``).  For each module the demo
reads the source, parses it with :mod:`ast`, and counts lines, functions,
classes and imports and the most common identifiers: tens of milliseconds a
module.  The summariser is decorated with ``@cache.cache()``; the demo calls
it once for every module (all misses: the work runs), then again (all hits:
the results come from Redis), and prints the timings, how many times the
work really ran, and the keys it stored.

Redis is ``$REDIS_URL`` (or ``--url``) when given, otherwise a private
``redis-server`` started for the run (:class:`pyredcache.server.EmbeddedRedis`).
"""

from __future__ import annotations

import ast
import collections
import os
import re
import sys
import sysconfig
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, TextIO, Tuple
from urllib.parse import urlsplit, urlunsplit

from . import _compat
from .exceptions import PyRedCacheError

__all__ = ["main", "MODULES", "NAMESPACE", "summarise_source", "find_modules"]

#: Every key the demo writes starts with this.
NAMESPACE = "pyredcache-demo:"

#: Seconds the demo's entries live in Redis.
EXPIRE = 3600

#: Standard-library modules to summarise, among the larger pure-Python ones.
#: Those missing from this Python's stdlib are skipped.
MODULES = (
    "argparse", "ast", "asyncio.base_events", "asyncio.tasks", "calendar",
    "collections", "configparser", "csv", "dataclasses", "datetime",
    "difflib", "email._header_value_parser", "email.message", "enum",
    "fractions", "functools", "gettext", "http.client", "http.server",
    "inspect", "ipaddress", "json.decoder", "logging", "mailbox",
    "pathlib", "pickle", "pydoc", "random", "shutil", "smtplib",
    "statistics", "subprocess", "tarfile", "textwrap", "threading",
    "tokenize", "typing", "unittest.case", "urllib.request", "zipfile",
)


def find_modules(names: Tuple[str, ...] = MODULES) -> List[Tuple[str, str]]:
    """``(module name, source path)`` for each of ``names`` present in the stdlib.

    A module ``a.b`` is ``<stdlib>/a/b.py`` or ``<stdlib>/a/b/__init__.py``.
    """
    stdlib = sysconfig.get_paths()["stdlib"]
    found = []
    for name in names:
        base = os.path.join(stdlib, *name.split("."))
        for path in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(path):
                found.append((name, path))
                break
    return found


def summarise_source(path: str) -> Dict[str, Any]:
    """Parse the Python file at ``path`` and count what is in it.

    Returns a dict of plain values (it is stored in Redis as it is):
    ``lines``, ``functions`` (including methods and async ones),
    ``classes``, ``imports`` (import statements), ``imported`` (sorted
    module names) and ``top_identifiers`` (the 5 most common names, as
    ``[name, count]`` pairs, counting variables, attributes, parameters and
    definitions).
    """
    with open(path, "rb") as f:
        source = f.read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. SyntaxWarning from old escapes
        tree = ast.parse(source, filename=path)
    functions = classes = imports = 0
    imported = set()
    names: collections.Counter = collections.Counter()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions += 1
            names[node.name] += 1
        elif isinstance(node, ast.ClassDef):
            classes += 1
            names[node.name] += 1
        elif isinstance(node, ast.Import):
            imports += 1
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imports += 1
            imported.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Name):
            names[node.id] += 1
        elif isinstance(node, ast.Attribute):
            names[node.attr] += 1
        elif isinstance(node, ast.arg):
            names[node.arg] += 1
    return {
        "lines": len(source.splitlines()),
        "functions": functions,
        "classes": classes,
        "imports": imports,
        "imported": sorted(imported),
        "top_identifiers": [[name, count] for name, count in names.most_common(5)],
    }


def _redact(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``.

    A lone user part (``redis://secret@host``) is a password too (see
    :func:`pyredcache.clients.urls.parse_url`).
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    netloc = "%s:***@%s" % (user, host) if colon else "***@%s" % host
    return urlunsplit(parts._replace(netloc=netloc))


def _glob_escape(text: str) -> str:
    """Escape the characters Redis's MATCH patterns treat specially."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _scan(client: Any, pattern: str) -> List[bytes]:
    """All keys matching ``pattern``, with SCAN (never KEYS), sorted."""
    keys = []
    cursor = b"0"
    while True:
        cursor, batch = client.execute_command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        keys.extend(batch)
        if int(cursor) == 0:
            return sorted(set(keys))


class _Report:
    """Writes the report; falls back to ASCII where the terminal can't do "µ"."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        try:
            "µ".encode(getattr(out, "encoding", None) or "ascii")
            self.micro = "µs"
        except (UnicodeEncodeError, LookupError):
            self.micro = "us"

    def __call__(self, line: str = "") -> None:
        self.out.write(line.replace("µs", self.micro) + "\n")
        self.out.flush()


def _timed_pass(
    func: Callable[[str, int], Dict[str, Any]], inputs: List[Tuple[str, str, int]]
) -> Tuple[float, List[Dict[str, Any]]]:
    """Call ``func(path, mtime_ns)`` for every input; seconds taken and results."""
    results = []
    start = time.perf_counter()
    for _name, path, mtime_ns in inputs:
        results.append(func(path, mtime_ns))
    return time.perf_counter() - start, results


def run(url: Optional[str], where: str, clear: bool, out: TextIO) -> int:
    """The demo against the Redis at ``url``; returns the exit status."""
    from . import Cache  # the feature layer, imported only when the demo runs

    say = _Report(out)
    modules = find_modules()
    if not modules:
        say("pyredcache demo: none of the %d modules it summarises was found under %s"
            % (len(MODULES), sysconfig.get_paths()["stdlib"]))
        return 1
    inputs = [(name, path, os.stat(path).st_mtime_ns) for name, path in modules]

    try:
        cache = Cache.from_url(url, namespace=NAMESPACE)
    except ValueError as exc:  # a malformed URL; the message says what is wrong
        print("pyredcache demo: bad Redis URL: %s" % exc, file=sys.stderr)
        return 1
    client = cache.client
    client.execute_command("PING")  # fail here, clearly, if Redis is unreachable

    runs = collections.Counter()

    # The cached function.  mtime_ns is part of the key, so editing a file
    # gives it a fresh entry instead of a stale summary.
    @cache.cache(key_prefix="summarise_source", expire=EXPIRE)
    def summarise(path: str, mtime_ns: int) -> Dict[str, Any]:
        runs[path] += 1  # counts real work: a hit never gets here
        return summarise_source(path)

    # Start cold, even if an earlier run left its entries behind.
    stale = sum(bool(cache.invalidate(summarise, path, mtime_ns)) for _, path, mtime_ns in inputs)

    miss_seconds, first = _timed_pass(summarise, inputs)
    ran_first = sum(runs.values())
    hit_seconds, second = _timed_pass(summarise, inputs)
    ran_second = sum(runs.values()) - ran_first
    n = len(inputs)
    hits = n - ran_second
    same = first == second

    pattern = _glob_escape(NAMESPACE) + "*"
    keys = _scan(client, pattern)
    result_prefix = (NAMESPACE + "summarise_source:").encode()
    result_keys = [k for k in keys if k.startswith(result_prefix)]

    miss_per_call = miss_seconds / n
    hit_per_call = hit_seconds / n
    say("pyredcache demo: summarise %d standard-library modules (%s)"
        % (n, sysconfig.get_paths()["stdlib"]))
    say()
    say("  implementation  %s" % _compat.implementation)
    say("  redis           %s" % where)
    say("  namespace       %s" % NAMESPACE)
    if stale:
        say("  invalidated     %d entries left by an earlier run" % stale)
    say()
    say("  %-12s %6s %9s %10s %10s %12s" % ("pass", "calls", "work ran", "total ms", "ms/call", "µs/call"))
    for label, seconds, ran in (("1st: misses", miss_seconds, ran_first),
                                ("2nd: hits", hit_seconds, ran_second)):
        say("  %-12s %6d %9d %10.2f %10.3f %12.1f"
            % (label, n, ran, seconds * 1e3, seconds / n * 1e3, seconds / n * 1e6))
    say()
    if hit_per_call > 0:
        say("  speed-up        %.0fx faster on a hit (%.2f ms -> %.1f µs a call)"
            % (miss_per_call / hit_per_call, miss_per_call * 1e3, hit_per_call * 1e6))
    once_each = all(runs[path] == 1 for _, path, _ in inputs)
    say("  work ran        %d times for %d inputs (%s)"
        % (sum(runs.values()), n, "once each" if once_each else "NOT once each"))
    say("  second pass     %d of %d calls were hits (results %s the first pass's)"
        % (hits, n, "equal to" if same else "DIFFERENT from"))
    say("  keys stored     %d results under %s (%d keys in all), e.g."
        % (len(result_keys), NAMESPACE, len(keys)))
    for key in result_keys[:3]:
        say("                    %s" % key.decode("utf-8", "replace"))
    say()

    biggest = sorted(zip(inputs, second), key=lambda item: -item[1]["lines"])[:5]
    say("  %-28s %6s %9s %7s %7s  %s"
        % ("largest modules", "lines", "functions", "classes", "imports", "most common names"))
    for (name, _path, _mtime), summary in biggest:
        top = ", ".join("%s %d" % (ident, count) for ident, count in summary["top_identifiers"][:3])
        say("  %-28s %6d %9d %7d %7d  %s" % (name, summary["lines"], summary["functions"],
                                          summary["classes"], summary["imports"], top))
    say()

    if clear:
        for i in range(0, len(keys), 500):
            client.execute_command("DEL", *keys[i:i + 500])
        say("  cleared         deleted %d keys under %s" % (len(keys), NAMESPACE))
    else:
        say("  kept            the keys expire in %d s; `python -m pyredcache demo --clear` "
            "deletes them" % EXPIRE)

    problems = []
    if not once_each or ran_first != n:
        problems.append("the work should have run exactly once per input")
    if ran_second != 0:
        problems.append("the second pass should have been all hits")
    if not same:
        problems.append("cached results differ from computed ones")
    if len(result_keys) != n:
        problems.append("expected %d stored results, found %d" % (n, len(result_keys)))
    for problem in problems:
        say("pyredcache demo: FAILED: %s" % problem)
    return 1 if problems else 0


def main(url: Optional[str] = None, clear: bool = False, out: Optional[TextIO] = None) -> int:
    """Run the demo; returns the exit status (0 on success).

    :param url: Redis URL; default ``$REDIS_URL``, and without it a private
        ``redis-server`` (:class:`~pyredcache.server.EmbeddedRedis`) that is
        stopped at the end.
    :param clear: delete the demo's keys at the end.
    :param out: where the report goes (default ``sys.stdout``).
    """
    out = sys.stdout if out is None else out
    url = url or os.environ.get("REDIS_URL") or None
    try:
        if url is not None:
            return run(url, _redact(url), clear, out)
        from .server import EmbeddedRedis

        with EmbeddedRedis() as server:
            where = "%s (embedded redis-server, pid %d, stopped at exit)" % (server.url, server.pid)
            return run(server.url, where, clear, out)
    except PyRedCacheError as exc:  # anything else is a bug: let it show
        target = _redact(url) if url is not None else "an embedded redis-server"
        print("pyredcache demo: error with %s: %s: %s" % (target, type(exc).__name__, exc),
              file=sys.stderr)
        return 1
