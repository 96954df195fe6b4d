"""Build script for pyredcache's C core.

The extension ``pyredcache._core`` is compiled from ``csrc/*.c`` against the
system's hiredis (found with pkg-config, 0.14 or newer).  When it cannot be
built (no pkg-config, no hiredis, no C compiler, no Python headers, or the
compiler fails), the install still succeeds with the pure-Python twin and a
warning names what is missing and the package that provides it; the reason
is recorded in the built package (``pyredcache/_build_info.py``, shown by
``python -m pyredcache info``).

Environment switches:

``PYREDCACHE_NO_EXTENSIONS=1``
    build nothing; pyredcache runs on its pure-Python twin.
``PYREDCACHE_REQUIRE_EXTENSIONS=1``
    fail the build instead of falling back to the twin (CI and ``make build``
    set it).
``PYREDCACHE_DEBUG_BUILD=1``
    ``-O0 -g3 -UNDEBUG``, for gdb and assertions, and fault injection
    (``-DPYRC_FAULT_INJECTION``: ``_core._set_fault``, see csrc/fault.h).
``PYREDCACHE_COVERAGE=1``
    ``--coverage -O0`` (gcov line counts, written as .gcda files next to
    the objects; ``.ci/coverage-report`` prints them per file).
``PYREDCACHE_SANITIZE=1``
    AddressSanitizer and UndefinedBehaviorSanitizer (run Python with
    ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``).
``PYREDCACHE_WERROR=1``
    turn warnings into errors (CI does).
"""

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HIREDIS_MIN = "0.14"
PACKAGES_HINT = (
    "on Debian/Ubuntu: apt-get install libhiredis-dev pkg-config gcc python3-dev "
    "(in a clone, `make deps` does it); on Fedora: dnf install hiredis-devel "
    "pkgconf gcc python3-devel"
)
# Every switch that changes the build; the ones set are recorded.
SWITCHES = (
    "PYREDCACHE_NO_EXTENSIONS",
    "PYREDCACHE_REQUIRE_EXTENSIONS",
    "PYREDCACHE_DEBUG_BUILD",
    "PYREDCACHE_COVERAGE",
    "PYREDCACHE_SANITIZE",
    "PYREDCACHE_WERROR",
)

# What this build did about the C core; written into the package it builds
# as pyredcache/_build_info.py (see write_build_info).  c_core_built stays
# None until build_ext has run.
BUILD = {"c_core_built": None, "reason": "", "forced": False, "hiredis": "", "warned": False}


def env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def pkg_config(*args):
    return subprocess.run(
        ["pkg-config", *args], check=True, capture_output=True, text=True
    ).stdout.split()


def compiler_command():
    """The C compiler as distutils will run it ($CC overrides Python's own)."""
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def missing_requirements():
    """What building the C core lacks: one line per missing thing, naming
    the package that provides it.  Empty when everything is there."""
    missing = []
    if shutil.which("pkg-config") is None:
        missing.append(
            "no pkg-config on PATH, which finds the hiredis C library (package "
            "pkg-config on Debian/Ubuntu, pkgconf on Fedora, and hiredis itself: "
            "libhiredis-dev, hiredis-devel)"
        )
    else:
        try:
            pkg_config("--atleast-version=" + HIREDIS_MIN, "hiredis")
            BUILD["hiredis"] = " ".join(pkg_config("--modversion", "hiredis"))
        except (OSError, subprocess.CalledProcessError):
            missing.append(
                "pkg-config finds no hiredis C library %s or newer with its "
                "headers (package libhiredis-dev on Debian/Ubuntu, hiredis-devel "
                "on Fedora)" % HIREDIS_MIN
            )
    cc = compiler_command()
    if not cc or shutil.which(cc[0]) is None:
        missing.append(
            "no C compiler: `%s` is not on PATH (package gcc)" % (cc[0] if cc else "cc")
        )
    include = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        missing.append(
            "no Python headers: %s/Python.h is missing (package python3-dev on "
            "Debian/Ubuntu, python3-devel on Fedora)" % include
        )
    return missing


def skip_core(reason):
    """Record that the C core cannot be built because of ``reason`` (one
    line per cause).  The build commands then report it (report_fallback):
    building an sdist or reading metadata needs no C core."""
    BUILD["c_core_built"] = False
    BUILD["reason"] = reason


def report_fallback():
    """When the C core is not built (and not by request): stop the build if
    PYREDCACHE_REQUIRE_EXTENSIONS is set, else say once why and what to
    install.

    pip hides a build's output unless given -v, so the warning also goes to
    the terminal (/dev/tty) when stderr is not one: a plain `pip install .`
    shows it."""
    if BUILD["c_core_built"] is not False or BUILD["forced"] or BUILD["warned"]:
        return
    if env_flag("PYREDCACHE_REQUIRE_EXTENSIONS"):
        sys.exit(
            "pyredcache: error: the C core cannot be built, and "
            "PYREDCACHE_REQUIRE_EXTENSIONS is set:\n  %s\nInstall what is missing: %s."
            % (BUILD["reason"].replace("\n", "\n  "), PACKAGES_HINT)
        )
    BUILD["warned"] = True
    text = (
        "\n"
        "pyredcache: WARNING: the C core (pyredcache._core) is not built; "
        "pyredcache will run on its pure-Python twin, which is slower.\n"
        "  %s\n"
        "Install what is missing (%s), then install pyredcache again.  "
        "PYREDCACHE_REQUIRE_EXTENSIONS=1 makes this an error; "
        "PYREDCACHE_NO_EXTENSIONS=1 builds the twin alone, without this warning.\n"
        % (BUILD["reason"].replace("\n", "\n  "), PACKAGES_HINT)
    )
    sys.stderr.write(text)
    sys.stderr.flush()
    if not sys.stderr.isatty():
        try:
            with open("/dev/tty", "w") as tty:
                tty.write(text)
        except OSError:  # no controlling terminal (CI, a service): stderr only
            pass


BUILD_INFO = """\
# Written by pyredcache's setup.py when this copy was built (see the
# checked-in pyredcache/_build_info.py for what each name means).
C_CORE_BUILT = %r
REASON = %r
SWITCHES = %r
HIREDIS_VERSION = %r
"""


def write_build_info(build_lib):
    """Record in ``build_lib``/pyredcache/_build_info.py what this build did.
    Never called on the source tree (in-place and editable builds)."""
    path = os.path.join(build_lib, "pyredcache", "_build_info.py")
    if not os.path.isdir(os.path.dirname(path)):
        return
    if os.path.lexists(path):  # may be a hard link to the checked-in file
        os.unlink(path)
    switches = tuple(name for name in SWITCHES if env_flag(name))
    with open(path, "w") as f:
        f.write(BUILD_INFO % (BUILD["c_core_built"], BUILD["reason"], switches, BUILD["hiredis"]))


class BuildPy(build_py):
    """build_py that records in the package it builds whether the C core is
    in it, and why not."""

    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            write_build_info(self.build_lib)
        report_fallback()


class BuildExt(build_ext):
    """build_ext that falls back to the pure twin, with a warning naming what
    is missing, when compiling fails (unless PYREDCACHE_REQUIRE_EXTENSIONS)."""

    def finalize_options(self):
        super().finalize_options()
        # Always compile: the build switches change the object code, and
        # distutils' timestamps would keep an extension built with others.
        self.force = True

    def run(self):
        if self.extensions:
            try:
                super().run()
            except Exception as exc:  # distutils raises several unrelated types
                skip_core(
                    "compiling the C core failed (%s: %s), with a compiler, hiredis and "
                    "the Python headers present: `pip install -v` shows the compiler's "
                    "output" % (type(exc).__name__, str(exc).strip())
                )
            else:
                BUILD["c_core_built"] = True
        report_fallback()
        if not self.inplace and not getattr(self, "editable_mode", False):
            write_build_info(self.build_lib)


def extensions():
    if env_flag("PYREDCACHE_NO_EXTENSIONS"):
        BUILD.update(c_core_built=False, forced=True,
                     reason="PYREDCACHE_NO_EXTENSIONS was set when this copy was built")
        return []
    missing = missing_requirements()
    if missing:
        skip_core("\n".join(missing))
        return []
    cflags = pkg_config("--cflags", "hiredis")
    libs = pkg_config("--libs", "hiredis")
    extra_compile = ["-std=gnu11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
    extra_link = []
    if env_flag("PYREDCACHE_DEBUG_BUILD"):
        extra_compile += ["-O0", "-g3", "-UNDEBUG", "-DPYRC_FAULT_INJECTION"]
    else:
        extra_compile += ["-O2"]
    if env_flag("PYREDCACHE_COVERAGE"):
        extra_compile += ["--coverage", "-O0"]
        extra_link += ["--coverage"]
    if env_flag("PYREDCACHE_SANITIZE"):
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
        extra_compile += san
        extra_link += san
    if env_flag("PYREDCACHE_WERROR"):
        extra_compile += ["-Werror"]
    return [
        Extension(
            "pyredcache._core",
            sources=sorted(glob("csrc/*.c")),
            depends=sorted(glob("csrc/*.h")),
            include_dirs=["csrc"],
            extra_compile_args=cflags + extra_compile,
            extra_link_args=libs + extra_link,
        )
    ]


setup(ext_modules=extensions(), cmdclass={"build_py": BuildPy, "build_ext": BuildExt})
