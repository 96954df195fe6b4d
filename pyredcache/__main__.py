"""The command line: ``python -m pyredcache COMMAND``.

Commands:

``demo``
    cache real, slow work (summarising standard-library modules) with
    ``@cache.cache()`` and report misses, hits, timings and stored keys; see
    :mod:`pyredcache._demo`.
``info``
    print pyredcache's version and which core is in use (``c`` or ``python``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pyredcache",
        description="pyredcache: a Redis caching toolkit whose hot paths are C over hiredis.",
    )
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

    commands.add_parser("info", help="print the version and the core in use (c or python)")
    return parser


def _info() -> int:
    from . import __version__, _compat

    print("pyredcache %s" % __version__)
    print("implementation  %s" % _compat.implementation)
    print("core module     %s" % getattr(_compat.core, "__file__", "?"))
    if os.environ.get("PYREDCACHE_NO_EXTENSIONS"):
        print("                (PYREDCACHE_NO_EXTENSIONS is set: the C core is not used)")
    print("python          %s (%s)" % (sys.version.split()[0], sys.executable))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import _demo

        return _demo.main(url=args.url, clear=args.clear)
    if args.command == "info":
        return _info()
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
