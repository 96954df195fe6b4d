"""Sphinx configuration for pyredcache's documentation.

Build with ``make docs`` (``sphinx-build docs docs/_build/html``).  The
package is imported from this checkout; without a built C core, autodoc
reads the pure-Python twin, whose names and docstrings are the same.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import pyredcache  # noqa: E402

project = "pyredcache"
author = "The pyredcache developers"
copyright = "2026, The pyredcache developers"
release = pyredcache.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

exclude_patterns = ["_build"]
html_theme = "alabaster"
