"""The command line: ``python -m pyredcache COMMAND``.

Commands:

``demo``
    cache real, slow work (summarising standard-library modules) with
    ``@cache.cache()`` and report misses, hits, timings and stored keys; see
    :mod:`pyredcache._demo`.
``info``
    print pyredcache's version, which core is in use (``c`` or ``python``)
    and, for the pure-Python twin, why: the C core was not built when this
    copy was installed (and what was missing), it failed to import, or
    ``PYREDCACHE_NO_EXTENSIONS`` is set.

``stats``
    print the hit/miss statistics of the cache regions stored in a server
    (``--url URL``, default ``$REDIS_URL``; ``--namespace`` the cache's
    key prefix): a table of region, function, hits, misses and hit ratio
    (hits / calls, in percent), or with ``--json`` the data of
    :meth:`pyredcache.BaseCache.stats` as JSON.  Exit status 1 with a
    one-line error when the server cannot be reached.

``python -m pyredcache --version`` prints the version; without a command,
the help.  Exit status 0, or 1 when a command fails, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from . import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pyredcache",
        description="pyredcache: a Redis caching toolkit whose hot paths are C over hiredis.",
    )
    parser.add_argument("--version", action="version", version="pyredcache %s" % __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="cache real work and report misses, hits, timings and keys",
        description=(
            "Summarise standard-library modules (parse with ast, count lines, "
            "functions, classes, imports, identifiers) through @cache.cache(): "
            "once with every call a miss, once with every call a hit, and "
            "report the timings, how often the work really ran and the keys "
            "stored.  Uses $REDIS_URL when set, otherwise a private "
            "redis-server started for the run."
        ),
    )
    demo.add_argument(
        "--url",
        default=None,
        help="Redis URL (redis://host:port/db or unix:///path?db=N); "
        "default $REDIS_URL, else an embedded redis-server",
    )
    demo.add_argument(
        "--clear", action="store_true", help="delete the demo's keys at the end"
    )

    stats = commands.add_parser(
        "stats",
        help="print the cache regions' hit/miss statistics (table or --json)",
        description=(
            "Read the hit/miss counters of the cache regions (per region and "
            "function, kept in Redis by @cache_region while statistics are on) "
            "and print them as a table (region, function, hits, misses, hit "
            "ratio) or as JSON."
        ),
    )
    stats.add_argument(
        "--url",
        default=None,
        help="Redis URL (redis://host:port/db or unix:///path?db=N); default $REDIS_URL",
    )
    stats.add_argument(
        "--namespace", default="", help="the cache's namespace (key prefix), default none"
    )
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")

    commands.add_parser(
        "info", help="print the version, the core in use (c or python) and, for python, why"
    )
    return parser


def _twin_reason() -> str:
    """Why the pure-Python twin is in use, in one or more lines."""
    from . import _build_info, _compat

    if _compat.forced_python:
        return "PYREDCACHE_NO_EXTENSIONS is set in the environment, so the C core is not used"
    if _build_info.C_CORE_BUILT is False:
        return "the C core was not built when this copy was installed:\n  " + (
            _build_info.REASON.replace("\n", "\n  ")
        )
    if _compat.c_core_error is not None:
        reason = "the C core (pyredcache._core) failed to import: %s" % _compat.c_core_error
        if _build_info.C_CORE_BUILT is None and "No module named" in _compat.c_core_error:
            reason += "\n  (not built here: in a checkout, `make build` builds it)"
        return reason
    return "the C core is built but not in use"


def _info() -> int:
    from . import _build_info, _compat

    print("pyredcache %s" % __version__)
    print("implementation  %s" % _compat.implementation)
    print("package         %s" % os.path.dirname(os.path.abspath(__file__)))
    print("core module     %s" % getattr(_compat.core, "__file__", "?"))
    if _compat.implementation == "python":
        print("why python      %s" % _twin_reason())
    elif _build_info.C_CORE_BUILT:
        switches = ", ".join(_build_info.SWITCHES) or "none"
        print("built with      hiredis %s; build switches: %s"
              % (_build_info.HIREDIS_VERSION or "?", switches))
    print("python          %s (%s)" % (sys.version.split()[0], sys.executable))
    return 0


def _stats_table(data: dict) -> str:
    rows = [("region", "function", "hits", "misses", "hit ratio")]
    for region, functions in sorted(data.items()):
        for function, counts in sorted(functions.items()):
            hits, misses = counts["hits"], counts["misses"]
            calls = hits + misses
            ratio = "%.1f%%" % (100.0 * hits / calls) if calls else "-"
            rows.append((region, function, str(hits), str(misses), ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) if i < 2 else row[i].rjust(widths[i])
                 for i in range(5)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _stats(url: Optional[str], namespace: str, as_json: bool) -> int:
    import json

    from .cache import Cache
    from .exceptions import ConnectionError, PyRedCacheError

    url = url or os.environ.get("REDIS_URL")
    if not url:
        print("python -m pyredcache stats: give --url URL (or set $REDIS_URL)",
              file=sys.stderr)
        return 1
    try:
        cache = Cache.from_url(url, namespace=namespace or None)
        data = cache.stats()
    except (ConnectionError, OSError) as exc:  # TimeoutError is a ConnectionError
        print("python -m pyredcache stats: cannot read statistics from %s: %s" % (url, exc),
              file=sys.stderr)
        return 1
    except (PyRedCacheError, ValueError, TypeError) as exc:  # a bad URL, an AUTH error...
        print("python -m pyredcache stats: %s" % (exc,), file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif not data:
        print("no region statistics in %s" % url)
    else:
        print(_stats_table(data))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import _demo

        return _demo.main(url=args.url, clear=args.clear)
    if args.command == "stats":
        return _stats(args.url, args.namespace, args.json)
    if args.command == "info":
        return _info()
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
