"""Build script for pyredcache's C core.

The extension ``pyredcache._core`` is compiled from ``csrc/*.c`` against the
system's hiredis (found with pkg-config, 0.14 or newer).

Environment switches:

``PYREDCACHE_NO_EXTENSIONS=1``
    build nothing; pyredcache runs on its pure-Python twin.
``PYREDCACHE_DEBUG_BUILD=1``
    ``-O0 -g3 -UNDEBUG``, for gdb and assertions.
``PYREDCACHE_SANITIZE=1``
    AddressSanitizer and UndefinedBehaviorSanitizer (run Python with
    ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``).
``PYREDCACHE_WERROR=1``
    turn warnings into errors (CI does).
"""

import os
import shutil
import subprocess
import sys
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HIREDIS_MIN = "0.14"
INSTALL_HINT = (
    "On Debian/Ubuntu: apt-get install libhiredis-dev pkg-config gcc python3-dev\n"
    "(or run `make test`, which installs them); on Fedora: dnf install "
    "hiredis-devel pkgconf gcc python3-devel.\n"
    "To use pyredcache without its C core, set PYREDCACHE_NO_EXTENSIONS=1."
)


def env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def pkg_config(*args):
    return subprocess.run(
        ["pkg-config", *args], check=True, capture_output=True, text=True
    ).stdout.split()


def hiredis_flags():
    if shutil.which("pkg-config") is None:
        sys.exit("pyredcache: pkg-config is missing, so hiredis cannot be found.\n" + INSTALL_HINT)
    try:
        pkg_config("--atleast-version=" + HIREDIS_MIN, "hiredis")
    except subprocess.CalledProcessError:
        sys.exit(
            "pyredcache: the hiredis C library (%s or newer) was not found by "
            "pkg-config.\n%s" % (HIREDIS_MIN, INSTALL_HINT)
        )
    return pkg_config("--cflags", "hiredis"), pkg_config("--libs", "hiredis")


class BuildExt(build_ext):
    """build_ext that names the missing package when compiling fails."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # distutils raises several unrelated types
            sys.exit("pyredcache: building the C core failed: %s\n%s" % (exc, INSTALL_HINT))

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            sys.exit("pyredcache: compiling %s failed: %s\n%s" % (ext.name, exc, INSTALL_HINT))


def extensions():
    if env_flag("PYREDCACHE_NO_EXTENSIONS"):
        return []
    cflags, libs = hiredis_flags()
    extra_compile = ["-std=gnu11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
    extra_link = []
    if env_flag("PYREDCACHE_DEBUG_BUILD"):
        extra_compile += ["-O0", "-g3", "-UNDEBUG"]
    else:
        extra_compile += ["-O2"]
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


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
