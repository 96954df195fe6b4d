"""Choose the core implementation once: the C extension or its pure twin.

``PYREDCACHE_NO_EXTENSIONS=1`` in the environment forces the pure-Python twin
(``pyredcache._core_py``); otherwise the C extension (``pyredcache._core``) is
used when it was built, and the twin when it was not (PyPy, no compiler).

Objects read :data:`core` when they are constructed, not on every call, so a
test can swap it (see ``tests/conftest.py``) and everything built afterwards
uses the other implementation.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["core", "implementation", "py_core", "c_core"]

py_core: ModuleType
c_core: ModuleType | None

from . import _core_py as py_core  # noqa: E402

def _env_flag(name: str) -> bool:
    # same reading as setup.py: unset, empty, 0, false and no mean off
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


c_core = None
if not _env_flag("PYREDCACHE_NO_EXTENSIONS"):
    try:
        from . import _core as c_core  # type: ignore[no-redef]  # noqa: E402
    except ImportError:  # not built: no compiler, no libhiredis, or PyPy
        c_core = None

core: ModuleType = c_core if c_core is not None else py_core

#: ``"c"`` when the C extension is in use, ``"python"`` for the pure twin.
implementation: str = core.implementation
