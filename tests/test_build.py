"""The build (setup.py): without hiredis, pkg-config or a working compiler
it falls back to the pure twin with a warning naming what is missing and the
package that provides it, or fails when PYREDCACHE_REQUIRE_EXTENSIONS is
set; it records what it did in the package it builds; the
PYREDCACHE_NO_EXTENSIONS switch.

Each build runs on a copy of the sources (``PYREDCACHE_SOURCE_TREE``, by
default this checkout or unpacked sdist), so the checkout's in-place
extension is untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(os.environ.get("PYREDCACHE_SOURCE_TREE") or ROOT)
WARNING = "pyredcache: WARNING: the C core (pyredcache._core) is not built"
REQUIRED = "pyredcache: error: the C core cannot be built, and PYREDCACHE_REQUIRE_EXTENSIONS is set"


def copy_sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    assert (SOURCE / "setup.py").exists() and (SOURCE / "pyredcache").is_dir(), (
        "%s is not a pyredcache source tree; set PYREDCACHE_SOURCE_TREE" % SOURCE)
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.rst", "LICENSE"):
        shutil.copy(SOURCE / name, src / name)
    shutil.copytree(SOURCE / "csrc", src / "csrc")
    shutil.copytree(SOURCE / "pyredcache", src / "pyredcache",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return src


def build_env(**changes: Optional[str]) -> Dict[str, str]:
    """os.environ without pyredcache's build switches (CI sets some), plus
    ``changes``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYREDCACHE_")}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def run_setup(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``setup.py -q ARGS`` (default: build_ext --inplace) on a copy of the
    sources, in a session of its own (no terminal: the warning goes to the
    captured stderr only)."""
    src = copy_sources(tmp_path)
    return subprocess.run(
        [sys.executable, "setup.py", "-q", *(args or ("build_ext", "--inplace"))],
        cwd=src, capture_output=True, text=True, env=build_env(**env), timeout=600,
        start_new_session=True,
    )


def built_cores(tmp_path: Path) -> list:
    return list((tmp_path / "src").rglob("_core*.so"))


def no_hiredis(tmp_path: Path) -> Dict[str, str]:
    """pkg-config that finds no library at all."""
    (tmp_path / "empty").mkdir(exist_ok=True)
    return {"PKG_CONFIG_LIBDIR": str(tmp_path / "empty"), "PKG_CONFIG_PATH": ""}


def read_build_info(path: Path) -> dict:
    values: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), values)
    return values


def test_missing_hiredis_falls_back_with_a_warning_naming_the_package(tmp_path):
    out = run_setup(tmp_path, **no_hiredis(tmp_path))
    assert out.returncode == 0, out.stderr
    assert WARNING in out.stderr
    assert "pkg-config finds no hiredis C library 0.14 or newer" in out.stderr
    assert "libhiredis-dev" in out.stderr and "hiredis-devel" in out.stderr
    assert "PYREDCACHE_REQUIRE_EXTENSIONS=1 makes this an error" in out.stderr
    assert "PYREDCACHE_NO_EXTENSIONS=1" in out.stderr
    assert built_cores(tmp_path) == []


def test_missing_hiredis_fails_when_extensions_are_required(tmp_path):
    out = run_setup(tmp_path, PYREDCACHE_REQUIRE_EXTENSIONS="1", **no_hiredis(tmp_path))
    assert out.returncode != 0
    assert REQUIRED in out.stderr
    assert "libhiredis-dev" in out.stderr
    assert WARNING not in out.stderr
    assert built_cores(tmp_path) == []


def test_missing_compiler_falls_back_naming_gcc(tmp_path):
    out = run_setup(tmp_path, CC=str(tmp_path / "no-such-cc"))
    assert out.returncode == 0, out.stderr
    assert WARNING in out.stderr
    assert "no C compiler: `%s` is not on PATH (package gcc)" % (tmp_path / "no-such-cc") in out.stderr
    assert built_cores(tmp_path) == []
    (tmp_path / "again").mkdir()
    out = run_setup(tmp_path / "again", CC=str(tmp_path / "no-such-cc"),
                    PYREDCACHE_REQUIRE_EXTENSIONS="1")
    assert out.returncode != 0
    assert REQUIRED in out.stderr and "package gcc" in out.stderr


def test_compiler_failure_falls_back_or_fails_when_required(tmp_path):
    # everything is there, and the compiler still fails (here: a missing
    # forced include), as with a hiredis too old or a broken toolchain
    bad = "-include %s" % (tmp_path / "no-such-header.h")
    out = run_setup(tmp_path, CFLAGS=bad)
    assert out.returncode == 0, out.stderr
    assert WARNING in out.stderr
    assert "compiling the C core failed (" in out.stderr
    assert built_cores(tmp_path) == []
    (tmp_path / "again").mkdir()
    out = run_setup(tmp_path / "again", CFLAGS=bad, PYREDCACHE_REQUIRE_EXTENSIONS="1")
    assert out.returncode != 0
    assert REQUIRED in out.stderr and "compiling the C core failed" in out.stderr


def test_build_records_why_the_c_core_is_missing(tmp_path):
    out = run_setup(tmp_path, "build", "--build-base", str(tmp_path / "b"), **no_hiredis(tmp_path))
    assert out.returncode == 0, out.stderr
    (info_file,) = (tmp_path / "b").glob("lib*/pyredcache/_build_info.py")
    info = read_build_info(info_file)
    assert info["C_CORE_BUILT"] is False
    assert "pkg-config finds no hiredis C library" in info["REASON"]
    assert "libhiredis-dev" in info["REASON"]
    # the source tree's copy is left as it was
    src_info = read_build_info(tmp_path / "src" / "pyredcache" / "_build_info.py")
    assert src_info["C_CORE_BUILT"] is None


def test_build_records_the_c_core_and_its_switches(tmp_path):
    out = run_setup(tmp_path, "build", "--build-base", str(tmp_path / "b"),
                    PYREDCACHE_WERROR="1", PYREDCACHE_REQUIRE_EXTENSIONS="1")
    assert out.returncode == 0, out.stderr
    assert WARNING not in out.stderr
    (lib,) = (tmp_path / "b").glob("lib*")
    assert list(lib.glob("pyredcache/_core*.so"))
    info = read_build_info(lib / "pyredcache" / "_build_info.py")
    assert info["C_CORE_BUILT"] is True and info["REASON"] == ""
    assert info["SWITCHES"] == ("PYREDCACHE_REQUIRE_EXTENSIONS", "PYREDCACHE_WERROR")
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", info["HIREDIS_VERSION"])


def test_in_place_build_leaves_the_build_record_alone(tmp_path):
    before = (SOURCE / "pyredcache" / "_build_info.py").read_text()
    out = run_setup(tmp_path, **no_hiredis(tmp_path))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "src" / "pyredcache" / "_build_info.py").read_text() == before


def test_no_extensions_switch(tmp_path):
    out = run_setup(tmp_path, PYREDCACHE_NO_EXTENSIONS="1", PYREDCACHE_REQUIRE_EXTENSIONS="1")
    assert out.returncode == 0, out.stderr
    assert WARNING not in out.stderr  # asked for: nothing to warn about
    assert built_cores(tmp_path) == []
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
