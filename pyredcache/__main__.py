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


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import _demo

        return _demo.main(url=args.url, clear=args.clear)
    if args.command == "info":
        return _info()
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
