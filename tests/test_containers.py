"""RedisDict, RedisSet, RedisList, RedisDeque, RedisCounter.

Every behavioural test runs three ways (the ``backend`` fixture): over our
Client on the C core, over our Client on the pure twin, and over
``fakeredis.FakeRedis`` through the redis-py adapter.  Containers are
checked against the built-in they imitate, operation by operation, and
their stored bytes against pottery's.
"""

from __future__ import annotations

import collections
import contextlib
import doctest
import gc
import json
import os
import random
import re
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator

import fakeredis
import pottery
import pytest
import redis as redis_py

from conftest import FakeClock
from pyredcache import Cache, _compat
from pyredcache import timer as timer_module
from pyredcache.clients import Client, RedisPyAdapter, as_client
from pyredcache.clients.adapters import server_identity
from pyredcache.containers import (
    TEMPORARY_PREFIX,
    RedisCounter,
    RedisDeque,
    RedisDict,
    RedisList,
    RedisSet,
)
from pyredcache.exceptions import (
    InefficientAccessWarning,
    KeyExistsError,
    ResponseError,
    WrongTypeError,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "containers.rst"


# -- fixtures -------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        no_c = metafunc.config.getoption("--no-c-extensions")
        cores = ["python"] if no_c else ["c", "python"]
        metafunc.parametrize("backend", cores + ["fakeredis"], indirect=True)


class Backend:
    """What a test builds containers on: ``redis`` (passed as redis=) and
    ``raw`` (a redis-py-compatible client that inspects the stored bytes)."""

    def __init__(self, name: str, redis: Any, raw: Any) -> None:
        self.name = name
        self.redis = redis
        self.raw = raw


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        return Backend("fakeredis", fakeredis.FakeRedis(server=server),
                       fakeredis.FakeRedis(server=server))
    if request.param == "c" and _compat.c_core is None:
        pytest.fail("the C extension pyredcache._core is not built (make build)")
    core = _compat.c_core if request.param == "c" else _compat.py_core
    monkeypatch.setattr(_compat, "core", core)
    redis_server = request.getfixturevalue("redis_server")
    url = request.getfixturevalue("redis_url")  # flushed
    client = Client.from_url(url)
    return Backend(request.param, client, redis_server.client())


@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    """Fail on any InefficientAccessWarning inside (filterwarnings=error
    already makes a warning an exception; this says it is the point)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", InefficientAccessWarning)
        yield


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """InefficientAccessWarning (ours and pottery's) ignored: for a test
    that reads whole containers to check them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InefficientAccessWarning)
        warnings.simplefilter("ignore", pottery.InefficientAccessWarning)
        yield


class _Counting:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.trips: list[tuple] = []

    def execute_command(self, *args: Any) -> Any:
        self.trips.append((str(args[0]).upper(),))
        return self.inner.execute_command(*args)

    def pipeline_execute(self, commands: Any) -> list:
        commands = list(commands)
        self.trips.append(tuple(str(c[0]).upper() for c in commands))
        return self.inner.pipeline_execute(commands)


@contextlib.contextmanager
def round_trips(container: Any) -> Iterator[list[tuple]]:
    """The round trips (command names of each) the container makes inside."""
    counting = _Counting(container._client)
    saved = container._client, container._execute, container._pipeline
    container._client = counting
    container._execute = counting.execute_command
    container._pipeline = counting.pipeline_execute
    try:
        yield counting.trips
    finally:
        container._client, container._execute, container._pipeline = saved


def key() -> str:
    return "test:" + uuid.uuid4().hex[:8]


# -- pottery's README, as doctests ----------------------------------------------------


def test_docs_run_pottery_readme_examples(impl, redis_url: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setattr(time, "sleep", clock.sleep)
    monkeypatch.setattr(timer_module, "_clock", clock)
    result = doctest.testfile(str(DOCS), module_relative=False, globs={},
                              optionflags=doctest.ELLIPSIS, report=True, verbose=False)
    assert result.failed == 0
    assert result.attempted >= 40
    r = redis_py.Redis.from_url(redis_url)
    # the README's data is in Redis, in pottery's format
    assert r.hgetall("raj") == {b'"hobby"': b'"music"', b'"vegetarian"': b"true"}
    assert r.smembers("edible") == {b'"tofu"', b'"avocado"'}
    assert r.lrange("lyrics", 0, -1) == [b'"everything"', b'"in"', b'"its"', b'"right"',
                                         b'"place"']
    assert clock.now == pytest.approx(1000.4)  # the four sleeps ran on the virtual clock


# -- RedisDict --------------------------------------------------------------------------


def test_dict_matches_builtin_dict_operation_by_operation(backend: Backend) -> None:
    rng = random.Random(1234)
    d = RedisDict(redis=backend.redis, key=key())
    model: dict = {}
    # (no True beside 1: a dict holds one of them, a RedisDict both; see below)
    keys = ["a", "b", 1, 2.5, None, False, (1, "x"), "ü"]
    values = ["x", 0, -7, 1.25, None, False, [1, [2, 3]], {"k": "v", "a": [1]}, "é€"]
    for step in range(300):
        op = rng.choice(["set", "get", "del", "pop", "setdefault", "update", "contains",
                         "len", "get_default", "popitem"])
        k, v = rng.choice(keys), rng.choice(values)
        if op == "set":
            d[k] = v
            model[k] = v
        elif op == "get":
            if k in model:
                assert d[k] == model[k]
            else:
                with pytest.raises(KeyError):
                    d[k]
        elif op == "del":
            if k in model:
                del d[k]
                del model[k]
            else:
                with pytest.raises(KeyError):
                    del d[k]
        elif op == "pop":
            assert d.pop(k, "dflt") == model.pop(k, "dflt")
        elif op == "setdefault":
            assert d.setdefault(k, v) == model.setdefault(k, v)
        elif op == "update":
            other = {rng.choice(keys): rng.choice(values) for _ in range(3)}
            d.update(other, extra=v)
            model.update(other, extra=v)
        elif op == "contains":
            assert (k in d) == (k in model)
        elif op == "len":
            assert len(d) == len(model)
        elif op == "get_default":
            assert d.get(k, "none") == model.get(k, "none")
        elif op == "popitem" and model:
            pk, pv = d.popitem()
            assert model.pop(pk) == pv
        if step % 25 == 0:
            with quiet():
                assert d.to_dict() == model
    with quiet():
        assert d == model
        assert dict(d.items()) == model
        assert sorted(map(repr, d)) == sorted(map(repr, model))
        assert sorted(map(repr, d.values())) == sorted(map(repr, model.values()))


def test_dict_keys_are_told_apart_by_json_text(backend: Backend) -> None:
    d = RedisDict(redis=backend.redis, key=key())
    d[1] = "int"
    d[1.0] = "float"
    d[True] = "bool"
    assert (d[1], d[1.0], d[True]) == ("int", "float", "bool")
    assert len(d) == 3


def test_dict_stores_pottery_json(backend: Backend) -> None:
    k = key()
    d = RedisDict(redis=backend.redis, key=k)
    d["hobby"] = "music"
    d["vegetarian"] = True
    d[3] = {"b": 1, "a": [1.5, None]}
    d["ü"] = "€"
    assert backend.raw.hgetall(k) == {
        b'"hobby"': b'"music"',
        b'"vegetarian"': b"true",
        b"3": b'{"a": [1.5, null], "b": 1}',
        b'"\\u00fc"': b'"\\u20ac"',
    }


def test_dict_tuple_keys_come_back_hashable(backend: Backend) -> None:
    d = RedisDict(redis=backend.redis, key=key())
    d[(1, "a")] = "x"
    d[(1, (2, 3))] = "y"
    with quiet():
        assert set(d) == {(1, "a"), (1, (2, 3))}
        assert d == {(1, "a"): "x", (1, (2, 3)): "y"}
    assert d[(1, "a")] == "x"
    assert d.popitem()[0] in {(1, "a"), (1, (2, 3))}


def test_dict_rejects_what_json_cannot_encode_before_writing(backend: Backend) -> None:
    k = key()
    d = RedisDict(redis=backend.redis, key=k)
    for bad in (object(), b"bytes", {1, 2}, float("nan"), float("inf"), {"x": object()}):
        with pytest.raises(TypeError, match="cannot be stored"):
            d["k"] = bad
        with pytest.raises(TypeError):
            d.update({"fine": 1, "bad": bad})
    with pytest.raises(TypeError):
        d[object()] = 1
    with pytest.raises(TypeError):
        RedisDict({"a": 1, "b": object()}, redis=backend.redis, key=k)
    assert backend.raw.exists(k) == 0
    assert object() not in d
    assert d.get(object(), "dflt") == "dflt"


def test_dict_update_accepts_what_dict_update_accepts(backend: Backend) -> None:
    d = RedisDict(redis=backend.redis, key=key())
    d.update({"a": 1})
    d.update([("b", 2), ["c", 3]])
    d.update(e=5)
    with pytest.warns(InefficientAccessWarning):  # reads the other container whole
        d.update(RedisDict({"f": 6}, redis=backend.redis, key=key()))

    class KeysOnly:
        def keys(self):
            return ["g"]

        def __getitem__(self, k):
            return 7

    d.update(KeysOnly())
    d |= {"h": 8}
    with quiet():
        assert d.to_dict() == dict(a=1, b=2, c=3, e=5, f=6, g=7, h=8)
        assert d | {"z": 0} == dict(a=1, b=2, c=3, e=5, f=6, g=7, h=8, z=0)
        assert {"a": 0, "y": 9} | d == dict(a=1, b=2, c=3, e=5, f=6, g=7, h=8, y=9)
    with pytest.raises(ValueError, match="element #0 has length 3"):
        d.update([("x", 1, 2)])
    with pytest.raises(TypeError):
        d.update([5])


def test_dict_operations_are_single_round_trips(backend: Backend) -> None:
    d = RedisDict({"a": 1}, redis=backend.redis, key=key())
    d.popitem()  # loads the script
    d["a"] = 1
    with no_warnings():
        for action in (lambda: d["a"], lambda: d.__setitem__("b", 2), lambda: "a" in d,
                       lambda: len(d), lambda: d.get("zz"), lambda: d.pop("b"),
                       lambda: d.setdefault("c", 3), lambda: d.popitem(),
                       lambda: d.update({i: i for i in range(10000)}, x=1)):
            with round_trips(d) as trips:
                action()
            assert len(trips) == 1, trips
    assert len(d) == 10002
    with round_trips(d) as trips:
        d.update({str(i): i for i in range(10000)})
    assert trips == [("MULTI", "HSET", "HSET", "HSET", "HSET", "HSET", "EXEC")]


def test_dict_whole_reads_warn(backend: Backend) -> None:
    d = RedisDict({"a": 1, "b": [1, 2]}, redis=backend.redis, key=key())
    with pytest.warns(InefficientAccessWarning, match="RedisDict iteration"):
        assert sorted(d) == ["a", "b"]
    with pytest.warns(InefficientAccessWarning):
        assert repr(d) == "RedisDict{'a': 1, 'b': [1, 2]}"
    with pytest.warns(InefficientAccessWarning):
        assert d.to_dict() == {"a": 1, "b": [1, 2]}
    with pytest.warns(InefficientAccessWarning):
        assert d == {"a": 1, "b": [1, 2]}
    with pytest.warns(InefficientAccessWarning):
        assert d != {"a": 1}
    with no_warnings():
        # same key, same server: equal without reading
        assert d == RedisDict(redis=backend.redis, key=d.key)
        assert d != 5
        assert len(d.keys()) == 2 and "a" in d.keys()
        assert ("b", [1, 2]) in d.items() and ("b", 3) not in d.items()


def test_dict_missing_and_empty(backend: Backend) -> None:
    d = RedisDict(redis=backend.redis, key=key())
    with pytest.raises(KeyError):
        d["nope"]
    with pytest.raises(KeyError):
        d.pop("nope")
    with pytest.raises(KeyError, match="empty"):
        d.popitem()
    assert not d and len(d) == 0
    d["x"] = None
    assert d["x"] is None and d.get("x", 1) is None and "x" in d
    d.clear()
    assert len(d) == 0 and backend.raw.exists(d.key) == 0


# -- RedisCounter ------------------------------------------------------------------------


def test_counter_matches_collections_counter(backend: Backend) -> None:
    c = RedisCounter("gallahad", redis=backend.redis, key=key())
    model = collections.Counter("gallahad")
    assert c["a"] == 3 and c["zz"] == 0 and "zz" not in c
    c.update("aab")
    model.update("aab")
    c.update({"x": 5, "a": -1})
    model.update({"x": 5, "a": -1})
    c.subtract(l=5, g=1)
    model.subtract(l=5, g=1)
    c.update(["n", "n"], n=2)
    model.update(["n", "n"], n=2)
    del c["nope"]
    with quiet():
        assert c.to_counter() == model
        assert c == model
        assert c.most_common(2) == model.most_common(2)
        assert sorted(c.elements()) == sorted(model.elements())
        assert c.total() == sum(model.values())
        assert +c == +model and -c == -model
        other = collections.Counter(a=10, q=1, l=-1)
        assert c + other == model + other
        assert c - other == model - other
        assert c | other == model | other
        assert c & other == model & other
        for op in ("__iadd__", "__isub__", "__ior__", "__iand__"):
            c2 = RedisCounter(c.to_counter(), redis=backend.redis, key=key())
            m2 = collections.Counter(model)
            result = getattr(c2, op)(other)
            getattr(m2, op)(other)
            assert result is c2
            assert c2.to_counter() == m2, op
        assert repr(RedisCounter("aab", redis=backend.redis, key=key())) == \
            "RedisCounter{'a': 2, 'b': 1}"


def test_counter_counts_are_json_numbers_redis_can_increment(backend: Backend) -> None:
    c = RedisCounter({"a": 2, "f": 1.5}, redis=backend.redis, key=key())
    c.update(a=3, f=1)
    assert backend.raw.hget(c.key, '"a"') == b"5"
    assert c["a"] == 5 and c["f"] == 2.5
    backend.raw.hincrby(c.key, '"a"', 10)
    assert c["a"] == 15


def test_counter_update_is_atomic_under_concurrency(backend: Backend) -> None:
    k = key()
    RedisCounter(redis=backend.redis, key=k)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            mine = RedisCounter(redis=backend.redis, key=k)
            for _ in range(100):
                mine.update(["hits", "hits"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert RedisCounter(redis=backend.redis, key=k)["hits"] == 600


def test_counter_refuses_bad_counts_without_writing(backend: Backend) -> None:
    c = RedisCounter(redis=backend.redis, key=key())
    with pytest.raises(TypeError, match="counts must be int or float"):
        c.update({"a": "many"})
    with pytest.raises(TypeError, match="64-bit"):
        c.update({"a": 2**70})
    backend.raw.hset(c.key, '"s"', '"text"')
    with pytest.raises(TypeError, match="not a number"):
        c.update(["a", "s"])
    assert c["a"] == 0 and backend.raw.hlen(c.key) == 1


# -- RedisSet -----------------------------------------------------------------------------


def test_set_matches_builtin_set(backend: Backend) -> None:
    rng = random.Random(99)
    s = RedisSet(redis=backend.redis, key=key())
    model: set = set()
    universe = ["a", "b", "c", 1, 2, 3.5, None, (1, 2), "ü"]
    for _ in range(200):
        op = rng.choice(["add", "discard", "remove", "pop", "contains", "len", "update",
                         "difference_update", "intersection_update",
                         "symmetric_difference_update"])
        v = rng.choice(universe)
        others = {rng.choice(universe) for _ in range(4)}
        if op == "add":
            s.add(v)
            model.add(v)
        elif op == "discard":
            s.discard(v)
            model.discard(v)
        elif op == "remove":
            if v in model:
                s.remove(v)
                model.remove(v)
            else:
                with pytest.raises(KeyError):
                    s.remove(v)
        elif op == "pop":
            if model:
                model.remove(s.pop())
            else:
                with pytest.raises(KeyError):
                    s.pop()
        elif op == "contains":
            assert (v in s) == (v in model)
        elif op == "len":
            assert len(s) == len(model)
        else:
            getattr(s, op)(others)
            getattr(model, op)(others)
        with quiet():
            assert s.to_set() == model


def test_set_algebra_with_plain_and_redis_sets(backend: Backend) -> None:
    a_items, b_items = {1, 2, 3, "x"}, {3, "x", 4, (5, 6)}
    a = RedisSet(a_items, redis=backend.redis, key=key())
    b = RedisSet(b_items, redis=backend.redis, key=key())
    with quiet():
        for other in (b_items, b):
            assert a & other == a_items & b_items
            assert a | other == a_items | b_items
            assert a - other == a_items - b_items
            assert a ^ other == a_items ^ b_items
            assert a.intersection(other, {3, 4}) == a_items & b_items & {3, 4}
            assert a.union(other, [9]) == a_items | b_items | {9}
            assert a.difference(other, [1]) == a_items - b_items - {1}
            assert a.symmetric_difference(other) == a_items ^ b_items
            assert a.isdisjoint(other) is False
            assert a.issubset(other) is False and a.issuperset(other) is False
        assert b_items - a == b_items - a_items
        assert {3, 99} & a == {3}
        assert type(a & b) is set and type(a | b_items) is set
        assert a.isdisjoint({7, 8}) and a.isdisjoint([])
        assert a <= a_items | {0} and a < a_items | {0} and not a < a_items
        assert a >= {1, "x"} and a > {1} and not a > a_items
        assert a == a_items and a != b_items and a != b and not (a == {1, 2, 3})
        assert a == RedisSet(a_items, redis=backend.redis, key=key())
        assert a != [1, 2, 3, "x"]  # a list is not a set


def test_set_in_place_operators(backend: Backend) -> None:
    s = RedisSet({1, 2, 3}, redis=backend.redis, key=key())
    model = {1, 2, 3}
    other = RedisSet({3, 4}, redis=backend.redis, key=key())
    for op, arg in (("__ior__", {5}), ("__iand__", {1, 2, 4, 5}), ("__isub__", {1}),
                    ("__ixor__", {2, 9}), ("__ior__", other), ("__iand__", other),
                    ("__ixor__", other), ("__isub__", other)):
        result = getattr(s, op)(arg)
        plain = arg if isinstance(arg, set) else {3, 4}
        model = getattr(model, op)(plain)
        assert result is s
        with quiet():
            assert s.to_set() == model, op
    s -= s
    assert len(s) == 0


def test_set_with_plain_sets_does_not_read_itself(backend: Backend) -> None:
    s = RedisSet(range(100), redis=backend.redis, key=key())
    with no_warnings():
        for action in (lambda: s & {1, 200}, lambda: s == set(range(100)),
                       lambda: s.issubset(range(200)), lambda: s.isdisjoint({500}),
                       lambda: s >= {1, 2}, lambda: {1, 500} - s,
                       lambda: list(s.contains_many(1, 500, object()))):
            with round_trips(s) as trips:
                result = action()
            assert len(trips) == 1, trips
            assert all("SMEMBERS" not in t for t in trips)
            assert result is not None
    assert list(s.contains_many(1, 500, object())) == [True, False, False]
    assert s & {1, 200} == {1}
    with pytest.warns(InefficientAccessWarning):
        assert len(s | {1000}) == 101


def test_set_stores_pottery_json_and_rejects_bad_elements(backend: Backend) -> None:
    s = RedisSet(["tofu", 1, (1, "a")], redis=backend.redis, key=key())
    assert backend.raw.smembers(s.key) == {b'"tofu"', b"1", b'[1, "a"]'}
    with pytest.raises(TypeError):
        s.add(object())
    with pytest.raises(TypeError):
        s.update([1, 2, b"x"])
    assert len(s) == 3
    assert object() not in s
    s.discard(object())
    with pytest.raises(KeyError):
        s.remove(object())
    with pytest.warns(InefficientAccessWarning):
        assert repr(RedisSet(["a"], redis=backend.redis, key=key())) == "RedisSet{'a'}"


# -- RedisList ---------------------------------------------------------------------------

SLICE_BOUNDS = [None, *range(-8, 9)]


def test_list_slices_match_builtin(backend: Backend) -> None:
    for n in range(0, 7):
        model = [f"e{i}" for i in range(n)]
        lst = RedisList(model, redis=backend.redis, key=key())
        with no_warnings():
            for step in (None, 1, 2, 3, -1, -2, -3):
                for start in SLICE_BOUNDS:
                    for stop in SLICE_BOUNDS:
                        s = slice(start, stop, step)
                        assert lst[s] == model[s], (n, s)
    with pytest.raises(ValueError):
        lst[::0]
    with pytest.raises(TypeError):
        lst["a"]


def test_list_slice_assignment_and_deletion_match_builtin(backend: Backend) -> None:
    base = list(range(6))
    lst = RedisList(redis=backend.redis, key=key())
    bounds = [None, -8, -3, -1, 0, 2, 5, 9]
    for step in (None, 2, -1, -2):
        for start in bounds:
            for stop in bounds:
                s = slice(start, stop, step)
                for replacement in (["x"], ["x", "y", "z"], []):
                    model = list(base)
                    lst.clear()
                    lst.extend(base)
                    try:
                        model[s] = replacement
                    except ValueError:
                        with pytest.raises(ValueError, match="extended slice"):
                            lst[s] = replacement
                    else:
                        lst[s] = replacement
                    assert lst[:] == model, (s, replacement)
                model = list(base)
                lst.clear()
                lst.extend(base)
                del model[s]
                del lst[s]
                assert lst[:] == model, ("del", s)


def test_list_index_operations_match_builtin(backend: Backend) -> None:
    base = ["a", "b", "c", "d"]
    lst = RedisList(redis=backend.redis, key=key())

    def reset() -> list:
        lst.clear()
        lst.extend(base)
        return list(base)

    for i in range(-6, 7):
        model = reset()
        model.insert(i, "new")
        lst.insert(i, "new")
        assert lst[:] == model, ("insert", i)
        model = reset()
        if -len(model) <= i < len(model):
            assert lst.pop(i) == model.pop(i)
            assert lst[:] == model, ("pop", i)
            model = reset()
            assert lst[i] == model[i]
            lst[i] = {"set": i}
            model[i] = {"set": i}
            assert lst[:] == model
            model = reset()
            del lst[i]
            del model[i]
            assert lst[:] == model, ("del", i)
        else:
            with pytest.raises(IndexError):
                lst.pop(i)
            with pytest.raises(IndexError):
                lst[i]
            with pytest.raises(IndexError):
                lst[i] = 1
            with pytest.raises(IndexError):
                del lst[i]
            assert lst[:] == model
    reset()
    assert lst.pop() == "d" and lst.pop(0) == "a" and lst[:] == ["b", "c"]
    lst.clear()
    with pytest.raises(IndexError, match="empty"):
        lst.pop()
    with pytest.raises(IndexError):
        lst[0] = 1


def test_list_search_operations(backend: Backend) -> None:
    model = ["a", 1, "b", 1, [1, 2], "a", None]
    lst = RedisList(model, redis=backend.redis, key=key())
    with no_warnings():
        for v in ("a", 1, [1, 2], None, "zz", object()):
            assert (v in lst) == (v in model)
            assert lst.count(v) == model.count(v)
            for start, stop in ((0, None), (1, None), (2, 5), (-3, None), (-100, -2)):
                stop_arg = stop if stop is not None else len(model)
                try:
                    expected = model.index(v, start, stop_arg)
                except ValueError:
                    with pytest.raises(ValueError):
                        lst.index(v, start, stop_arg)
                else:
                    assert lst.index(v, start, stop_arg) == expected
        lst.remove(1)
        model.remove(1)
        assert lst[:] == model
        with pytest.raises(ValueError, match="x not in list"):
            lst.remove("zz")


def test_list_reverse_sort_and_arithmetic(backend: Backend) -> None:
    model = [3, 1, 2, 10, -5]
    lst = RedisList(model, redis=backend.redis, key=key())
    lst.reverse()
    model.reverse()
    assert lst[:] == model
    for kwargs in ({}, {"reverse": True}, {"key": lambda v: (v % 3, v)}):
        with pytest.warns(InefficientAccessWarning):
            lst.sort(**kwargs)
        model.sort(**kwargs)
        assert lst[:] == model
    words = RedisList(["pear", "Apple", "fig"], redis=backend.redis, key=key())
    with pytest.warns(InefficientAccessWarning):
        words.sort(key=str.lower)
    assert words[:] == ["Apple", "fig", "pear"]
    mixed = RedisList([1, "a"], redis=backend.redis, key=key())
    with pytest.raises(TypeError), quiet():
        mixed.sort()
    assert mixed[:] == [1, "a"]
    with quiet():
        assert lst + [0] == model + [0] and type(lst + [0]) is list
        assert [0] + lst == [0] + model
        assert lst * 2 == model * 2 and 2 * lst == 2 * model
        assert lst == model and lst != model[:-1] and lst != tuple(model)
        assert list(reversed(lst)) == list(reversed(model))
        assert repr(RedisList(["a", 1], redis=backend.redis, key=key())) == "RedisList['a', 1]"
    lst += [7]
    lst *= 2
    model += [7]
    model *= 2
    assert lst[:] == model
    lst *= 0
    assert len(lst) == 0


def test_list_sort_retries_when_the_list_changes_meanwhile(backend: Backend) -> None:
    lst = RedisList([3, 1, 2], redis=backend.redis, key=key())
    calls = {"n": 0}

    def sneaky_key(v: int) -> int:
        calls["n"] += 1
        if calls["n"] == 1:  # another client appends while we sort
            backend.raw.rpush(lst.key, "0")
        return v

    with quiet():
        lst.sort(key=sneaky_key)
    assert lst[:] == [0, 1, 2, 3]  # the append is kept, and sorted in


def test_list_single_round_trips_and_one_rpush_extend(backend: Backend) -> None:
    lst = RedisList(list(range(10)), redis=backend.redis, key=key())
    lst.insert(3, "warm")  # loads the scripts
    del lst[1:2]
    lst.reverse()
    with no_warnings():
        for action in (lambda: lst[4], lambda: lst[-3:1:-2], lambda: lst.append(1),
                       lambda: lst.__setitem__(2, "x"), lambda: lst.__delitem__(-2),
                       lambda: lst.insert(4, "y"), lambda: lst.pop(3), lambda: lst.pop(),
                       lambda: lst.remove("x"), lambda: lst.index("y"), lambda: lst.count(1),
                       lambda: "y" in lst, lambda: lst.reverse(),
                       lambda: lst.__delitem__(slice(None, None, 3))):
            with round_trips(lst) as trips:
                action()
            assert len(trips) == 1, trips
        with round_trips(lst) as trips:
            lst.extend(range(1000))
        assert trips == [("RPUSH",)]


def test_list_stores_pottery_json(backend: Backend) -> None:
    lst = RedisList(["a", 1, 2.5, True, None, {"z": 1, "a": (1,)}], redis=backend.redis,
                    key=key())
    assert backend.raw.lrange(lst.key, 0, -1) == [
        b'"a"', b"1", b"2.5", b"true", b"null", b'{"a": [1], "z": 1}']
    with pytest.raises(TypeError):
        lst.extend([1, object()])
    with pytest.raises(TypeError):
        lst.append(float("nan"))
    assert len(lst) == 6


# -- RedisDeque --------------------------------------------------------------------------


def test_deque_matches_collections_deque(backend: Backend) -> None:
    rng = random.Random(7)
    for maxlen in (None, 0, 1, 3):
        dq = RedisDeque([1, 2, 3, 4], maxlen, redis=backend.redis, key=key())
        model = collections.deque([1, 2, 3, 4], maxlen)
        for _ in range(60):
            op = rng.choice(["append", "appendleft", "extend", "extendleft", "pop",
                             "popleft", "rotate", "insert"])
            if op in ("append", "appendleft"):
                v = rng.randrange(100)
                getattr(dq, op)(v)
                getattr(model, op)(v)
            elif op in ("extend", "extendleft"):
                vs = [rng.randrange(100) for _ in range(rng.randrange(5))]
                getattr(dq, op)(vs)
                getattr(model, op)(vs)
            elif op in ("pop", "popleft"):
                if model:
                    assert getattr(dq, op)() == getattr(model, op)()
                else:
                    with pytest.raises(IndexError, match="empty deque"):
                        getattr(dq, op)()
            elif op == "rotate":
                n = rng.randrange(-7, 8)
                dq.rotate(n)
                model.rotate(n)
            else:
                i, v = rng.randrange(-5, 6), rng.randrange(100)
                try:
                    model.insert(i, v)
                except IndexError:
                    with pytest.raises(IndexError, match="maximum size"):
                        dq.insert(i, v)
                else:
                    dq.insert(i, v)
            with quiet():
                assert dq == model, (maxlen, op)
        assert dq.maxlen == maxlen


def test_deque_construction_repr_and_equality(backend: Backend) -> None:
    k = key()
    RedisList(range(5), redis=backend.redis, key=k)
    with pytest.raises(IndexError, match="beyond its maximum size"):
        RedisDeque(maxlen=3, redis=backend.redis, key=k)
    dq = RedisDeque(range(10), maxlen=3, redis=backend.redis, key=key())
    with quiet():
        assert repr(dq) == "RedisDeque([7, 8, 9], maxlen=3)"
        assert repr(RedisDeque("ab", redis=backend.redis, key=key())) == "RedisDeque(['a', 'b'])"
        assert dq == collections.deque([7, 8, 9]) and dq != [7, 8, 9]
        assert dq + collections.deque([1]) == collections.deque([8, 9, 1])
    with pytest.raises(AttributeError):
        dq.maxlen = 5  # type: ignore[misc]
    with pytest.raises(ValueError):
        RedisDeque(maxlen=-1, redis=backend.redis, key=key())
    with pytest.raises(TypeError):
        dq.rotate(1.5)  # type: ignore[arg-type]


def test_deque_init_keeps_what_collections_deque_keeps(backend: Backend) -> None:
    # An iterable shorter than maxlen is kept whole: RedisDeque('gh', maxlen=3)
    # used to hold ['h'].
    assert RedisDeque("gh", maxlen=3, redis=backend.redis, key=key())[:] == ["g", "h"]
    for data in ("", "g", "gh", "ghi", "ghij", "ghijk"):
        for maxlen in (None, 0, 1, 2, 3, 4, 5, 6):
            dq = RedisDeque(data, maxlen, redis=backend.redis, key=key())
            assert dq[:] == list(collections.deque(data, maxlen)), (data, maxlen)
            assert len(dq) == len(collections.deque(data, maxlen))
            assert dq.maxlen == maxlen


def test_deque_every_maxlen_path_matches_collections_deque(backend: Backend) -> None:
    # From every length a bounded deque can have, each operation that adds
    # elements: the same elements as collections.deque, in the same order.
    def ops(maxlen: int) -> Iterator[tuple[str, tuple]]:
        for n in range(maxlen + 3):  # fewer, as many and more values than maxlen
            values = [100 + i for i in range(n)]
            yield "extend", (values,)
            yield "extendleft", (values,)
        yield "append", (7,)
        yield "appendleft", (7,)
        for i in range(-maxlen - 2, maxlen + 3):
            yield "insert", (i, 7)

    for maxlen in (0, 1, 2, 3, 4):
        for start in range(maxlen + 1):
            initial = list(range(start))
            for op, args in ops(maxlen):
                model = collections.deque(initial, maxlen)
                dq = RedisDeque(initial, maxlen, redis=backend.redis, key=key())
                try:
                    getattr(model, op)(*args)
                except IndexError as exc:
                    with pytest.raises(IndexError, match="maximum size"):
                        getattr(dq, op)(*args)
                    assert "maximum size" in str(exc)
                else:
                    getattr(dq, op)(*args)
                assert dq[:] == list(model), (maxlen, initial, op, args)
                assert len(dq) <= maxlen
                dq.clear()
    # unbounded: nothing is dropped
    dq = RedisDeque("ab", redis=backend.redis, key=key())
    model = collections.deque("ab")
    for op, args in ops(3):
        getattr(dq, op)(*args)
        getattr(model, op)(*args)
    assert dq[:] == list(model)


def test_list_and_deque_are_never_equal(backend: Backend) -> None:
    # As [1, 2] == deque([1, 2]) is False (and pottery's RedisList ==
    # RedisDeque), even when both are opened on the same key.
    assert ([1, 2] == collections.deque([1, 2])) is False
    k = key()
    lst = RedisList([1, 2], redis=backend.redis, key=k)
    dq = RedisDeque(redis=backend.redis, key=k)  # the same Redis list
    other_dq = RedisDeque([1, 2], redis=backend.redis, key=key())
    with no_warnings():  # told apart by type, without reading anything
        for a, b in ((lst, dq), (dq, lst), (lst, other_dq), (other_dq, lst)):
            assert (a == b) is False and (a != b) is True, (type(a), type(b))
        # same key, same kind: equal without a round trip
        assert lst == RedisList(redis=backend.redis, key=k)
        assert dq == RedisDeque(redis=backend.redis, key=k)
        assert dq != [1, 2] and lst != collections.deque([1, 2])
    with quiet():  # what pottery documents still holds
        assert lst == [1, 2] and [1, 2] == lst
        assert dq == collections.deque([1, 2]) and collections.deque([1, 2]) == dq
        assert dq == other_dq and other_dq == dq
        assert lst == RedisList([1, 2], redis=backend.redis, key=key())


# -- shared behaviour --------------------------------------------------------------------


@pytest.mark.parametrize("cls,holder", [
    (RedisDict, lambda raw, k: raw.rpush(k, "x")),
    (RedisCounter, lambda raw, k: raw.sadd(k, "x")),
    (RedisSet, lambda raw, k: raw.hset(k, "x", "1")),
    (RedisList, lambda raw, k: raw.set(k, "x")),
    (RedisDeque, lambda raw, k: raw.hset(k, "x", "1")),
])
def test_key_of_another_type_raises_naming_key_and_types(backend: Backend, cls: type,
                                                         holder: Any) -> None:
    k = key()
    holder(backend.raw, k)
    actual = backend.raw.type(k).decode()
    c = cls(redis=backend.redis, key=k)
    expected = "hash" if cls in (RedisDict, RedisCounter) else cls._REDIS_TYPE
    message = re.escape("Redis key %r holds a %s, but %s keeps its data in a %s"
                        % (k, actual, cls.__name__, expected))
    with pytest.raises(WrongTypeError, match=message) as info:
        len(c)
    assert isinstance(info.value, ResponseError)
    assert (info.value.key, info.value.actual, info.value.expected) == (k, actual, expected)
    with pytest.raises(WrongTypeError):
        c.clear()
    with pytest.raises(WrongTypeError), quiet():
        list(c)
    assert backend.raw.type(k).decode() == actual  # nothing was changed


@pytest.mark.parametrize("cls,data", [(RedisDict, {"a": 1}), (RedisCounter, "aab"),
                                      (RedisSet, [1]), (RedisList, [1]),
                                      (RedisDeque, [1])])
def test_initial_data_into_existing_key_raises_key_exists(backend: Backend, cls: type,
                                                          data: Any) -> None:
    k = key()
    backend.raw.set(k, "original")
    with pytest.raises(KeyExistsError) as info:
        cls(data, redis=backend.redis, key=k)
    assert info.value.key == k and info.value.redis is backend.redis
    assert backend.raw.get(k) == b"original"
    cls((), redis=backend.redis, key=k)  # no data: opens the key, no error


def test_temporary_keys_are_pottery_named_and_deleted_on_collection(backend: Backend) -> None:
    d = RedisDict({"a": 1}, redis=backend.redis)
    s = RedisSet([1], redis=backend.redis, key="")
    names = [d.key, s.key]
    for name in names:
        assert name.startswith(TEMPORARY_PREFIX)
        uuid.UUID(name[len(TEMPORARY_PREFIX):], version=4)
        assert backend.raw.exists(name) == 1
    named = RedisList([1], redis=backend.redis, key=key())
    del d, s
    gc.collect()
    assert [backend.raw.exists(n) for n in names] == [0, 0]
    named_key = named.key
    del named
    gc.collect()
    assert backend.raw.exists(named_key) == 1


def test_forked_child_leaves_parents_temporary_key(redis_url: str, impl) -> None:
    lst = RedisList([1, 2], redis=redis_url)
    with warnings.catch_warnings():  # Python 3.12+ frowns on fork() with threads alive
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: dropping its copy must not delete the key
        try:
            del lst
            gc.collect()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert redis_py.Redis.from_url(redis_url).exists(lst.key) == 1
    assert len(lst) == 2


# -- clients ----------------------------------------------------------------------------


def test_redis_argument_forms(impl, redis_server, redis_url: str,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    raw = redis_server.client()
    forms = {
        "url": redis_url,
        "unix url": redis_server.unix_url,
        "client": Client.from_url(redis_url),
        "cache": Cache(redis_server.host, redis_server.port),
        "redis-py": redis_py.Redis(host=redis_server.host, port=redis_server.port),
        "redis-py unix": redis_py.Redis(unix_socket_path=redis_server.unix_socket_path),
        "redis-py decoded": redis_py.Redis(host=redis_server.host, port=redis_server.port,
                                           decode_responses=True),
    }
    for name, redis in forms.items():
        d = RedisDict(redis=redis, key="form:" + name)
        d["v"] = name
        assert raw.hget("form:" + name, '"v"') == json.dumps(name).encode(), name
        assert isinstance(d._client, Client), name  # our core, not redis-py
        assert d._client.execute_command.__self__._core is impl, name
        assert d.redis is redis
    # the same redis-py client always gives the same converted client
    r = forms["redis-py"]
    assert RedisSet(redis=r, key="a")._client is RedisList(redis=r, key="b")._client
    monkeypatch.setenv("REDIS_URL", redis_url)
    default = RedisDict(key="form:default")
    default["v"] = 1
    assert raw.hget("form:default", '"v"') == b"1"
    monkeypatch.delenv("REDIS_URL")
    client = RedisDict(key="never-used")._client  # builds no connection yet
    assert (client.connection_kwargs["host"], client.connection_kwargs["port"]) == \
        ("localhost", 6379)
    with pytest.raises(TypeError, match="a redis:// or unix:// URL, or a redis-py-compatible"):
        RedisDict(redis=42, key="x")


def test_fakeredis_goes_through_the_adapter() -> None:
    server = fakeredis.FakeServer()
    for fake in (fakeredis.FakeRedis(server=server),
                 fakeredis.FakeRedis(server=server, decode_responses=True)):
        d = RedisDict(redis=fake, key="k")
        assert isinstance(d._client, RedisPyAdapter)
        d["a"] = [1, 2]
        assert d["a"] == [1, 2]
        with quiet():
            assert d.to_dict() == {"a": [1, 2]}
        s = RedisSet(["x"], redis=fake, key=key())
        assert s == {"x"} and s.pop() == "x"
    a = as_client(fakeredis.FakeRedis(server=server))
    b = as_client(fakeredis.FakeRedis(server=server))
    assert server_identity(a) == server_identity(b)
    assert server_identity(a) != server_identity(as_client(fakeredis.FakeRedis()))
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        a.execute_command("SET", "s", "1")
        a.execute_command("HGET", "s", "x")
    with pytest.raises(ResponseError, match="^NOSCRIPT"):
        a.execute_command("EVALSHA", "0" * 40, 0)
    replies = a.pipeline_execute([("MULTI",), ("LSET", "s", 0, "x"), ("GET", "s"), ("EXEC",)])
    assert replies[:3] == [b"OK", b"QUEUED", b"QUEUED"]
    assert isinstance(replies[3][0], ResponseError) and replies[3][1] == b"1"
    assert a.pipeline_execute([("SADD", "set", "a"), ("SMEMBERS", "set"),
                               ("SISMEMBER", "set", "a"), ("HGETALL", "nokey")]) == \
        [1, [b"a"], 1, []]


# -- pottery interoperability ------------------------------------------------------------

VALUES = ["music", "ü€", 0, -12, 2.5, 1e300, True, False, None, [1, [2, "x"]],
          {"b": 1, "a": {"z": None, "c": [True]}}]


def test_pottery_writes_pyredcache_reads(impl, redis_url: str) -> None:
    r = redis_py.Redis.from_url(redis_url)
    with quiet():
        pottery.RedisDict({f"k{i}": v for i, v in enumerate(VALUES)}, redis=r, key="pd")
        pottery.RedisList(VALUES, redis=r, key="pl")
        pottery.RedisSet(["a", 1, 2.5, None, "ü"], redis=r, key="ps")
        pottery.RedisDeque([1, 2, 3], maxlen=5, redis=r, key="pq")
        pottery.RedisCounter("gallahad", redis=r, key="pc")
        pd = pottery.RedisDict(redis=r, key="pd2")
        pd[(1, 2)] = "tuple key"
        pd[3] = "int key"
    with quiet():
        assert RedisDict(redis=r, key="pd").to_dict() == {f"k{i}": v for i, v in enumerate(VALUES)}
        assert RedisList(redis=r, key="pl").to_list() == VALUES
        assert RedisSet(redis=r, key="ps").to_set() == {"a", 1, 2.5, None, "ü"}
        assert RedisDeque(maxlen=5, redis=r, key="pq") == collections.deque([1, 2, 3])
        counter = RedisCounter(redis=r, key="pc")
        assert counter.to_counter() == collections.Counter("gallahad")
        counter.update("aa")  # HINCRBY on pottery's counts
        assert counter["a"] == 5
        assert RedisDict(redis=r, key="pd2").to_dict() == {(1, 2): "tuple key", 3: "int key"}


def test_pyredcache_writes_pottery_reads_byte_for_byte(impl, redis_url: str) -> None:
    r = redis_py.Redis.from_url(redis_url)
    data = {f"k{i}": v for i, v in enumerate(VALUES)}
    RedisDict(data, redis=r, key="ours:d")
    RedisList(VALUES, redis=r, key="ours:l")
    RedisSet(["a", 1, 2.5, None, "ü", (1, 2)], redis=r, key="ours:s")
    RedisCounter("gallahad", redis=r, key="ours:c")
    with quiet():
        pottery.RedisDict(data, redis=r, key="theirs:d")
        pottery.RedisList(VALUES, redis=r, key="theirs:l")
        pottery.RedisSet(["a", 1, 2.5, None, "ü", (1, 2)], redis=r, key="theirs:s")
        pottery.RedisCounter("gallahad", redis=r, key="theirs:c")
        assert r.hgetall("ours:d") == r.hgetall("theirs:d")
        assert r.lrange("ours:l", 0, -1) == r.lrange("theirs:l", 0, -1)
        assert r.smembers("ours:s") == r.smembers("theirs:s")
        assert r.hgetall("ours:c") == r.hgetall("theirs:c")
        assert pottery.RedisDict(redis=r, key="ours:d").to_dict() == data
        assert pottery.RedisList(redis=r, key="ours:l").to_list() == VALUES
        # (pottery cannot read back a set holding an array: it decodes to a list)
        RedisSet(["a", 1, 2.5, None, "ü"], redis=r, key="ours:s2")
        assert pottery.RedisSet(redis=r, key="ours:s2").to_set() == {"a", 1, 2.5, None, "ü"}
        assert pottery.RedisCounter(redis=r, key="ours:c").to_counter() == \
            collections.Counter("gallahad")


def test_temporary_key_naming_matches_pottery(impl, redis_url: str) -> None:
    r = redis_py.Redis.from_url(redis_url)
    with quiet():
        theirs = pottery.RedisList([1], redis=r)
    ours = RedisList([1], redis=r)
    pattern = re.compile(r"^pottery:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                         r"[0-9a-f]{12}$")
    assert pattern.match(theirs.key) and pattern.match(ours.key)
    # each library reads the other's temporary container
    assert RedisList(redis=r, key=theirs.key)[0] == 1
    with quiet():
        assert pottery.RedisList(redis=r, key=ours.key)[0] == 1
