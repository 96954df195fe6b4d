"""Choose the core implementation once: the C extension or its pure twin.

``PYREDCACHE_NO_EXTENSIONS=1`` in the environment forces the pure-Python twin
(``pyredcache._pure``); otherwise the C extension (``pyredcache._core``) is
used when it was built, and the twin when it was not (PyPy, no compiler).

Objects read :data:`core` when they are constructed, not on every call, so a
test can swap it (see ``tests/conftest.py``) and everything built afterwards
uses the other implementation.  The twin is imported only when it is the
core or when :data:`py_core` is first read.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

__all__ = ["core", "implementation", "py_core", "c_core", "c_core_error", "forced_python"]

_PACKAGE = __name__.rpartition(".")[0]


def _env_flag(name: str) -> bool:
    # same reading as setup.py: unset, empty, 0, false and no mean off
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _import_pure() -> ModuleType:
    return importlib.import_module("._pure", _PACKAGE)


#: True when PYREDCACHE_NO_EXTENSIONS is set: the C core is not even imported.
forced_python: bool = _env_flag("PYREDCACHE_NO_EXTENSIONS")
#: Why importing the C core failed (the ImportError's text), else None.
c_core_error: str | None = None
#: The C core, or None when it is not built (or forced off).
c_core: ModuleType | None = None

if not forced_python:
    try:
        # import_module, not `from . import _core`: its error names the
        # missing module instead of suggesting a circular import
        c_core = importlib.import_module("._core", _PACKAGE)
    except ImportError as exc:  # not built: no compiler, no libhiredis, or PyPy
        c_core = None
        c_core_error = str(exc)

#: The implementation in use: ``pyredcache._core`` or ``pyredcache._pure``.
core: ModuleType = c_core if c_core is not None else _import_pure()

#: ``"c"`` when the C extension is in use, ``"python"`` for the pure twin.
implementation: str = core.implementation


def __getattr__(name: str) -> Any:
    # py_core: the pure twin, imported on first use when the C core is in use
    if name == "py_core":
        return _import_pure()
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
