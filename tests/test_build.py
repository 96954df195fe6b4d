"""The build: a clear message when hiredis or a compiler is missing, and
the PYREDCACHE_NO_EXTENSIONS switch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_setup(tmp_path, **env):
    # Build from a copy so the checkout's in-place extension is untouched.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.rst", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "csrc", src / "csrc")
    shutil.copytree(ROOT / "pyredcache", src / "pyredcache",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=src, capture_output=True, text=True, env=dict(os.environ, **env), timeout=600,
    )


def test_missing_hiredis_names_the_package(tmp_path):
    out = run_setup(tmp_path, PKG_CONFIG_LIBDIR=str(tmp_path / "empty"), PKG_CONFIG_PATH="")
    assert out.returncode != 0
    assert "libhiredis-dev" in out.stderr
    assert "PYREDCACHE_NO_EXTENSIONS=1" in out.stderr


def test_missing_compiler_names_the_package(tmp_path):
    out = run_setup(tmp_path, CC=str(tmp_path / "no-such-cc"))
    assert out.returncode != 0
    assert "gcc" in out.stderr and "libhiredis-dev" in out.stderr


def test_no_extensions_switch(tmp_path):
    out = run_setup(tmp_path, PYREDCACHE_NO_EXTENSIONS="1")
    assert out.returncode == 0, out.stderr
    assert not list((tmp_path / "src" / "pyredcache").glob("_core*.so"))
    code = "import pyredcache; print(pyredcache.implementation)"
    forced = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYREDCACHE_NO_EXTENSIONS="1"), check=True)
    assert forced.stdout.strip() == "python"


@pytest.mark.skipif(os.environ.get("PYREDCACHE_NO_EXTENSIONS") == "1",
                    reason="the extension is deliberately not built in this run")
def test_default_is_the_c_core():
    code = "import pyredcache; print(pyredcache.implementation)"
    env = {k: v for k, v in os.environ.items() if k != "PYREDCACHE_NO_EXTENSIONS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.strip() == "c"
