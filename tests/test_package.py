"""pyredcache as users install it: the sdist, the wheel, the installed
package, the fallback to the pure twin, and the command line.

The builds here skip the C core or fail before compiling it, and use this
environment's setuptools (``--no-build-isolation``), so they take seconds
and need no network; CI's ``test-installed`` stage builds the real wheel.
Some tests compare against the run that CI sets up, through environment
variables:

``PYREDCACHE_EXPECT_PACKAGE_DIR``
    the directory (site-packages, or an out-of-tree build) that pyredcache
    and its C core must be imported from;
``PYREDCACHE_CHECKOUT``
    the git checkout whose files the sdist and the installed package must
    hold (default: this tests directory's parent, when it is a checkout);
``PYREDCACHE_SOURCE_TREE``
    the source tree to build from (default: this tests directory's parent).
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import subprocess
import sys
import tarfile
import termios
import time
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional, Set, Tuple

import pytest

import pyredcache
from pyredcache import _build_info, _compat

ROOT = Path(__file__).resolve().parent.parent

# Files of a checkout that the sdist need not hold.
NOT_SHIPPED = {".gitignore"}
# Files the sdist holds that no checkout has: setuptools writes them.
GENERATED = re.compile(r"^(PKG-INFO|setup\.cfg|pyredcache\.egg-info/.*)$")
# The files of a package that must be installed.
PACKAGE_FILE = re.compile(r"^pyredcache/(.*/)?([^/]+\.pyi?|py\.typed)$")


# -- where things are -----------------------------------------------------------------


def checkout_root() -> Optional[Path]:
    """The git checkout to compare with, or None outside one."""
    env = os.environ.get("PYREDCACHE_CHECKOUT")
    if env:
        path = Path(env)
        assert (path / ".git").exists(), "PYREDCACHE_CHECKOUT=%s is not a git checkout" % env
        return path
    return ROOT if (ROOT / ".git").exists() else None


def source_root() -> Path:
    """The source tree that builds pyredcache (a checkout or an unpacked sdist)."""
    path = Path(os.environ.get("PYREDCACHE_SOURCE_TREE") or ROOT)
    assert (path / "setup.py").exists() and (path / "pyredcache" / "__init__.py").exists(), (
        "%s is not a pyredcache source tree (setup.py and pyredcache/); run from a "
        "checkout or an unpacked sdist, or set PYREDCACHE_SOURCE_TREE" % path
    )
    return path


def git_files(checkout: Path) -> Set[str]:
    """The checkout's files: tracked, and untracked but not ignored (a new
    file not committed yet must ship too), that exist."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=checkout, capture_output=True, check=True,
    ).stdout.decode()
    return {f for f in out.split("\0") if f and (checkout / f).is_file()}


def tree_files(root: Path) -> Set[str]:
    """The files of a source tree that is not a git checkout, less build products."""
    skip_dirs = {"__pycache__", "build", "dist", ".pytest_cache", ".hypothesis"}
    files = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip_dirs and not d.endswith(".egg-info")]
        for name in filenames:
            if not name.endswith((".so", ".o", ".pyc")):
                files.add(str(Path(dirpath, name).relative_to(root)))
    return files


def package_files(files: Set[str]) -> Set[str]:
    """The ones that must be installed: pyredcache/**/*.py, *.pyi, py.typed."""
    return {f for f in files if PACKAGE_FILE.match(f) and "/__pycache__/" not in f}


def installed_files(package_dir: Path) -> Set[str]:
    """pyredcache/... paths of the files under an imported package directory."""
    base = package_dir.parent
    return {
        str(p.relative_to(base)) for p in package_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def copy_source(dest: Path, root: Optional[Path] = None) -> Tuple[Path, Set[str]]:
    """Copy the files of ``root`` (default: the checkout, else the source
    tree) to ``dest``: its git files when it is a checkout; return ``dest``
    and the list of files."""
    if root is None:
        root = checkout_root() or source_root()
    files = git_files(root) if (root / ".git").exists() else tree_files(root)
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, dest / f)
    return dest, files


def build_env(**changes: Optional[str]) -> Dict[str, str]:
    """os.environ without the build switches, plus ``changes`` (None removes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYREDCACHE_")}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(args: List[str], env: Dict[str, str], cwd: Path,
        timeout: float = 600) -> subprocess.CompletedProcess:
    # A session of its own: no controlling terminal, so setup.py's warning
    # goes to the captured stderr only (not to the developer's /dev/tty).
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


def run_in_terminal(args: List[str], env: Dict[str, str], cwd: Path,
                    timeout: float = 600) -> Tuple[int, str]:
    """Run ``args`` with a pseudo-terminal as its controlling terminal, as
    a user at a shell does; return its exit status and all it printed
    there (what the user sees)."""
    master, slave = os.openpty()

    def take_terminal() -> None:  # in the child, after setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                cwd=cwd, start_new_session=True, preexec_fn=take_terminal)
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise AssertionError("%s did not finish in %s s" % (args, timeout))
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
    return status, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def hidden_pkg_config_path(tmp: Path) -> str:
    """A PATH with the C compiler on it and no pkg-config."""
    bin_dir = tmp / "bin-without-pkg-config"
    bin_dir.mkdir()
    for tool in ("gcc", "cc"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def python_in(site: Path, *args: str) -> subprocess.CompletedProcess:
    """Run Python with ``args`` on the pyredcache installed in ``site``
    alone: from ``site``'s parent (no pyredcache/ there), with -S, as the
    site-packages of this environment may hold an editable install whose
    finder would supply the checkout's modules, extension included, to a
    copy that lacks them."""
    return run([sys.executable, "-S", *args], build_env(PYTHONPATH=str(site)), site.parent)


# -- what is imported ------------------------------------------------------------------


def test_runs_on_the_expected_copy() -> None:
    """CI's installed, sanitizer and coverage runs import pyredcache and its
    C core from the copy they built, never from the checkout."""
    expected = os.environ.get("PYREDCACHE_EXPECT_PACKAGE_DIR")
    if not expected:
        pytest.skip("PYREDCACHE_EXPECT_PACKAGE_DIR is not set (CI's test-installed, "
                    "test-sanitize and coverage stages set it)")
    where = Path(expected).resolve() / "pyredcache"
    assert Path(pyredcache.__file__).resolve().parent == where
    checkout = checkout_root()
    if checkout is not None:  # a copy, not the checkout's own package
        assert where.parent != checkout.resolve() and checkout.resolve() not in where.parents
    if _compat._env_flag("PYREDCACHE_NO_EXTENSIONS"):
        return
    assert _compat.c_core is not None, _compat.c_core_error
    assert Path(_compat.c_core.__file__).resolve().parent == where
    # this copy's build compiled the C core and said so
    assert _build_info.C_CORE_BUILT is True, _build_info.REASON


def test_installed_package_has_every_module_of_the_checkout() -> None:
    """The imported package holds every module, stub and py.typed that the
    checkout's pyredcache/ has (a subpackage left out of the wheel fails)."""
    checkout = checkout_root()
    if checkout is None:
        pytest.skip("not run from a git checkout, and PYREDCACHE_CHECKOUT is not set")
    package_dir = Path(pyredcache.__file__).resolve().parent
    want = package_files(git_files(checkout))
    have = installed_files(package_dir)
    assert want, "no package files found in %s" % checkout
    missing = sorted(want - have)
    assert not missing, "%s lacks: %s" % (package_dir, missing)


# -- the sdist and the wheel -----------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, object]:
    """An sdist built from the source files (through setuptools' PEP 517
    hook, as `python -m build` does), and a wheel built from that sdist by
    pip (without the C core, which the installed-wheel CI stage covers).

    From a checkout, the sdist is built from a copy of the whole working
    tree, less .git, .venv and build/: with what git ignores (built
    extensions, __pycache__, egg-info, .hypothesis), which must not ship."""
    tmp = tmp_path_factory.mktemp("built")
    checkout = checkout_root()
    if checkout is not None:
        src = tmp / "src"
        shutil.copytree(checkout, src, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", ".venv", "build"))
        files = git_files(checkout)
    else:
        src, files = copy_source(tmp / "src")
    env = build_env()
    hook = "from setuptools import build_meta as b; print(b.build_sdist(%r))" % str(tmp / "sdist")
    out = run([sys.executable, "-c", hook], env, src)
    assert out.returncode == 0, out.stdout + out.stderr
    sdist = tmp / "sdist" / out.stdout.split()[-1]
    out = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--no-cache-dir", "-w", str(tmp / "wheels"), str(sdist)],
              build_env(PYREDCACHE_NO_EXTENSIONS="1"), tmp)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp / "wheels").glob("pyredcache-*.whl")
    return {"tmp": tmp, "files": files, "sdist": sdist, "wheel": wheel}


def sdist_members(sdist: Path) -> Set[str]:
    with tarfile.open(sdist) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    top = names[0].split("/", 1)[0]
    assert all(n.startswith(top + "/") for n in names)
    return {n.split("/", 1)[1] for n in names}


def test_sdist_holds_every_file_of_the_checkout_and_nothing_else(built) -> None:
    if checkout_root() is None:
        pytest.skip("not run from a git checkout, and PYREDCACHE_CHECKOUT is not set: "
                    "no `git ls-files` to compare the sdist with")
    members = sdist_members(built["sdist"])
    files = built["files"]
    missing = sorted(f for f in files - members if f not in NOT_SHIPPED)
    assert not missing, "the sdist lacks: %s" % missing
    extra = sorted(f for f in members - files if not GENERATED.match(f))
    assert not extra, "the sdist holds files the checkout does not: %s" % extra
    # what building the C core and running the shipped tests need
    for needed in ("setup.py", "pyproject.toml", "MANIFEST.in", "Makefile", "LICENSE",
                   "README.rst", "csrc/module.h", "csrc/module.c", "tests/conftest.py",
                   "tests/fakeserver.py", "tests/leakcheck.py", "tests/examplesupport.py",
                   ".ci/run"):
        assert needed in members, needed


def test_wheel_holds_every_module_and_no_source_tree(built) -> None:
    with zipfile.ZipFile(built["wheel"]) as whl:
        names = set(whl.namelist())
    want = package_files(built["files"])
    assert "pyredcache/containers/__init__.py" in want
    missing = sorted(want - names)
    assert not missing, "the wheel lacks: %s" % missing
    outside = sorted(n for n in names
                     if not n.startswith(("pyredcache/", "pyredcache-")) or n.endswith(".c"))
    assert not outside, "the wheel holds more than the package: %s" % outside
    version = next(n for n in names if n.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(built["wheel"]) as whl:
        metadata = whl.read(version).decode()
    assert re.search(r"^Version: %s$" % re.escape(pyredcache.__version__), metadata, re.M)


def check_pure_install_works(site: Path, url: str) -> None:
    """The copy in site imports (subpackages too), runs on the twin, and
    caches against the server at url."""
    code = ("import pyredcache, pyredcache.containers; from pyredcache import Cache; "
            "c = Cache.from_url(%r); c.set('k', [1]); "
            "print(pyredcache.__file__, pyredcache.implementation, c.get('k'))" % url)
    out = python_in(site, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(site / "pyredcache" / "__init__.py"), "python", "[1]"]


def test_wheel_built_without_the_c_core_installs_and_says_why(built, redis_server) -> None:
    tmp: Path = built["tmp"]
    site = tmp / "site-pure"
    out = run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir",
               "--target", str(site), str(built["wheel"])], build_env(), tmp)
    assert out.returncode == 0, out.stdout + out.stderr
    check_pure_install_works(site, redis_server.url)
    info = python_in(site, "-m", "pyredcache", "info")
    assert "implementation  python" in info.stdout, info.stdout + info.stderr
    assert "PYREDCACHE_NO_EXTENSIONS was set when this copy was built" in info.stdout


# -- no pkg-config, no hiredis: the pure twin, with a warning --------------------------


def pip_install_command(site: Path, src: Path) -> List[str]:
    # --no-build-isolation: the build uses this environment's setuptools
    # (the test extra's), so the test needs no network.
    return [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
            "--no-cache-dir", "--disable-pip-version-check", "--target", str(site), str(src)]


def test_install_without_pkg_config_gives_the_twin_and_a_visible_warning(tmp_path: Path,
                                                                         redis_server) -> None:
    src, _ = copy_source(tmp_path / "src", source_root())
    site = tmp_path / "site"
    env = build_env(PATH=hidden_pkg_config_path(tmp_path))
    # In a terminal, as a user types `pip install .`: pip hides the build's
    # output, and the warning still shows.
    status, shown = run_in_terminal(pip_install_command(site, src), env, tmp_path)
    assert status == 0, shown
    assert "pyredcache: WARNING: the C core (pyredcache._core) is not built" in shown, shown
    assert "no pkg-config on PATH" in shown and "libhiredis-dev" in shown, shown
    assert "PYREDCACHE_REQUIRE_EXTENSIONS=1 makes this an error" in shown
    assert not list(site.glob("pyredcache/_core*.so"))
    # a working install of the twin
    check_pure_install_works(site, redis_server.url)
    # which says why it runs on the twin
    info = python_in(site, "-m", "pyredcache", "info")
    assert info.returncode == 0, info.stderr
    assert "implementation  python" in info.stdout
    assert "why python      the C core was not built when this copy was installed:" in info.stdout
    assert "no pkg-config on PATH" in info.stdout and "libhiredis-dev" in info.stdout


def test_install_without_pkg_config_fails_when_extensions_are_required(tmp_path: Path) -> None:
    src, _ = copy_source(tmp_path / "src", source_root())
    site = tmp_path / "site"
    env = build_env(PATH=hidden_pkg_config_path(tmp_path), PYREDCACHE_REQUIRE_EXTENSIONS="1")
    out = run(pip_install_command(site, src), env, tmp_path)
    assert out.returncode != 0, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "the C core cannot be built, and PYREDCACHE_REQUIRE_EXTENSIONS is set" in text, text
    assert "no pkg-config on PATH" in text and "libhiredis-dev" in text
    assert not (site / "pyredcache").exists()


# -- the command line ------------------------------------------------------------------


def cli(*args: str, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None,
        python_args: Tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    # the pyredcache this test imported, whatever the directory
    env = dict(env or os.environ)
    here = str(Path(pyredcache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), here]))
    return run([sys.executable, *python_args, "-m", "pyredcache", *args],
               env, cwd or Path(__file__).parent, timeout=120)


def test_cli_without_a_command_prints_help_and_exits_0() -> None:
    out = cli()
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m pyredcache")
    assert re.search(r"^\s+demo\s", out.stdout, re.M) and re.search(r"^\s+info\s", out.stdout, re.M)
    assert "--version" in out.stdout
    assert out.stderr == ""


def test_cli_version() -> None:
    out = cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "pyredcache %s\n" % pyredcache.__version__
    from importlib.metadata import version

    # the distribution's version is read from pyredcache.__version__
    assert version("pyredcache") == pyredcache.__version__


def test_cli_unknown_command_is_a_usage_error() -> None:
    out = cli("frobnicate")
    assert out.returncode == 2
    assert "invalid choice: 'frobnicate'" in out.stderr


def test_cli_info_names_the_core_and_why_the_twin(impl: ModuleType) -> None:
    env = dict(os.environ)
    env.pop("PYREDCACHE_NO_EXTENSIONS", None)
    if impl.implementation == "python":
        env["PYREDCACHE_NO_EXTENSIONS"] = "1"
    out = cli("info", env=env)
    assert out.returncode == 0, out.stderr
    assert "implementation  %s\n" % impl.implementation in out.stdout
    assert "package         %s\n" % Path(pyredcache.__file__).parent in out.stdout
    assert "core module     %s\n" % impl.__file__ in out.stdout
    why = re.findall(r"^why python +(.*)$", out.stdout, re.M)
    if impl.implementation == "python":
        assert why == ["PYREDCACHE_NO_EXTENSIONS is set in the environment, so the C core "
                       "is not used"]
    else:
        assert why == []


def test_cli_info_says_the_c_core_failed_to_import(tmp_path: Path) -> None:
    # a copy of the package without its extension and with no build record,
    # as a checkout before `make build`
    shutil.copytree(Path(pyredcache.__file__).parent, tmp_path / "pyredcache",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    (tmp_path / "pyredcache" / "_build_info.py").write_text(
        "C_CORE_BUILT = None\nREASON = ''\nSWITCHES = ()\nHIREDIS_VERSION = ''\n")
    # -S: no site-packages, whose editable-install finder would supply the
    # checkout's extension to a copy that has none
    out = cli("info", env=build_env(PYTHONPATH=str(tmp_path)), cwd=tmp_path, python_args=("-S",))
    assert out.returncode == 0, out.stderr
    assert "package         %s\n" % (tmp_path / "pyredcache") in out.stdout
    assert "implementation  python\n" in out.stdout
    assert ("why python      the C core (pyredcache._core) failed to import: "
            "No module named 'pyredcache._core'\n"
            "  (not built here: in a checkout, `make build` builds it)\n") in out.stdout, out.stdout
