"""The package's layout: public import paths, the twin mirroring csrc/, and
what `import pyredcache` does (and does not) do.

The layer contracts themselves are checked by import-linter (``make
lint-imports``, a CI stage); these tests pin what a user relies on.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyredcache
from pyredcache import _compat

#: ``pyredcache.__all__`` before the layout moved (commit eb07298): every one
#: of these must still be importable from ``pyredcache``.
PUBLIC_BEFORE = [
    "BaseCache", "BaseRedisRouter", "BaseSerializer", "Cache", "CacheCluster", "Client",
    "ConnectionError", "ContextTimer", "ExtendUnlockedLock", "HostConfig",
    "InefficientAccessWarning", "InvalidSignature", "JSONSerializer", "KeyExistsError", "Lock",
    "LockError", "LockTimeout", "NO_VALUE", "NativeSerializer", "NextId", "NullCache",
    "PickleSerializer", "Promise", "PromiseError", "ProtocolError", "PyRedCacheError",
    "QuorumNotAchieved", "RedisCRC32HashRouter", "RedisConsistentHashRouter", "RedisCounter",
    "RedisDeque", "RedisDict", "RedisList", "RedisSet", "Redlock", "ReleaseUnlockedLock",
    "ReplyTypeError", "ResponseError", "SerializationError", "ShardedClient", "SignedSerializer",
    "TimeoutError", "TooManyExtensions", "WrongTypeError", "implementation", "synchronize",
]

#: Module paths that worked before and must go on working, with names in them.
MODULE_PATHS = {
    "pyredcache.server": ["EmbeddedRedis", "EmbeddedRedisError"],
    "pyredcache.testing": ["NullCache", "FakeRedisCache"],
    "pyredcache.containers": ["RedisDict", "RedisCounter", "RedisSet", "RedisList",
                              "RedisDeque", "KeyExistsError", "WrongTypeError",
                              "InefficientAccessWarning", "TEMPORARY_PREFIX"],
    "pyredcache.serializers": ["BaseSerializer", "NativeSerializer", "JSONSerializer",
                               "PickleSerializer", "SignedSerializer"],
    "pyredcache.exceptions": ["PyRedCacheError", "ConnectionError", "TimeoutError",
                              "ResponseError", "SerializationError", "LockError"],
    "pyredcache.cache": ["BaseCache", "Cache", "CacheCluster", "NO_VALUE"],
    "pyredcache.lock": ["Redlock", "synchronize", "Lock"],
    "pyredcache.nextid": ["NextId"],
    "pyredcache.timer": ["ContextTimer"],
    "pyredcache.stampede": ["ENVELOPE"],
}

#: csrc/*.c files that have no twin: module init, the debug build's fault
#: injection, and the vendored hash functions (hashlib in Python).
NO_TWIN = {"module", "fault", "blake2b", "md5"}


def test_public_names_still_import_from_pyredcache():
    for name in PUBLIC_BEFORE:
        assert name in pyredcache.__all__, name
        assert getattr(pyredcache, name) is not None, name
    namespace: dict = {}
    exec("from pyredcache import *", namespace)
    assert set(PUBLIC_BEFORE) <= set(namespace)


def test_pottery_3_spelling_of_next_id():
    from pyredcache import NextID, NextId
    assert NextID is NextId and "NextID" in pyredcache.__all__


@pytest.mark.parametrize("module", sorted(MODULE_PATHS))
def test_module_paths_still_work(module):
    mod = importlib.import_module(module)
    for name in MODULE_PATHS[module]:
        assert hasattr(mod, name), "%s.%s" % (module, name)


def test_the_same_objects_under_every_path():
    from pyredcache.clients import Client, HostConfig, RedisCRC32HashRouter, ShardedClient
    from pyredcache.containers import RedisDict
    from pyredcache.testing import NullCache
    assert (pyredcache.Client, pyredcache.ShardedClient, pyredcache.HostConfig) == \
        (Client, ShardedClient, HostConfig)
    assert pyredcache.RedisCRC32HashRouter is RedisCRC32HashRouter
    assert pyredcache.RedisDict is RedisDict and pyredcache.NullCache is NullCache


def test_pure_exports_exactly_the_c_core_names(both):
    c_core, _pure = both
    assert sorted(_pure.__all__) == sorted(n for n in dir(_pure) if not n.startswith("_")
                                           and not isinstance(getattr(_pure, n), type(sys)))
    c_names = {n for n in dir(c_core) if not n.startswith("_")}
    # the debug build's fault injection (_set_fault, _fault_sites) is private
    assert set(_pure.__all__) == c_names


def test_every_c_file_has_its_twin():
    # CI's out-of-tree stages run the tests from a copy without csrc/ and
    # name the checkout in PYREDCACHE_CHECKOUT.
    root = Path(os.environ.get("PYREDCACHE_CHECKOUT") or Path(__file__).resolve().parent.parent)
    csrc = {p.stem for p in (root / "csrc").glob("*.c")}
    if not csrc:
        pytest.fail("no csrc/*.c next to the tests (%s)" % root)
    pure = {p.stem for p in Path(pyredcache.__file__).parent.joinpath("_pure").glob("*.py")}
    assert csrc - NO_TWIN == pure - {"__init__"}


def test_promise_follows_the_core_in_use(monkeypatch):
    """pyredcache.Promise is read when asked for, so the tests' core swap
    (and _compat.core generally) reaches it."""
    py = _compat.py_core
    monkeypatch.setattr(_compat, "core", py)
    assert pyredcache.Promise is py.Promise
    if _compat.c_core is not None:
        monkeypatch.setattr(_compat, "core", _compat.c_core)
        assert pyredcache.Promise is _compat.c_core.Promise
    with pytest.raises(AttributeError, match="no_such_name"):
        pyredcache.no_such_name  # noqa: B018


IMPORT_ONLY = """
import sys
import pyredcache
from pyredcache import _compat
out = {
    "implementation": pyredcache.implementation,
    "pure imported": any(m == "pyredcache._pure" or m.startswith("pyredcache._pure.")
                         for m in sys.modules),
    "nextid fork hook": sys.modules["pyredcache.nextid"]._fork_hook_registered,
    "third-party": sorted(m for m in ("redis", "fakeredis", "hiredis", "flask", "pytest",
                                      "msgpack") if m in sys.modules),
}
if _compat.implementation == "python":
    out["pure fork hook"] = sys.modules["pyredcache._pure.connection"]._fork_hook_registered
    pyredcache.Client()  # builds a Connection (connects nothing)
    out["pure fork hook after a Connection"] = (
        sys.modules["pyredcache._pure.connection"]._fork_hook_registered)
print(repr(out))
"""


def test_import_does_only_what_public_names_need(impl, tmp_path):
    forced_python = impl.implementation == "python"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(pyredcache.__file__).parent.parent)}
    if forced_python:
        env["PYREDCACHE_NO_EXTENSIONS"] = "1"
    run = subprocess.run([sys.executable, "-c", IMPORT_ONLY], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    out = eval(run.stdout)  # noqa: S307 - our own repr()
    assert out["third-party"] == []
    assert out["nextid fork hook"] is False  # registered with the first NextId
    if forced_python:
        assert out["implementation"] == "python"
        assert out["pure fork hook"] is False
        assert out["pure fork hook after a Connection"] is True
    else:
        assert out["implementation"] == "c"
        assert out["pure imported"] is False  # the twin is not loaded beside the C core
