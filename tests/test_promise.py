"""Promise, on the C core and on its pure twin.

A synchronous promise after rc's rc.promise.Promise, plus a rejection path.
Semantics are stated in pyredcache/_pure/promise.py's module docstring.
"""

from __future__ import annotations

import gc
import textwrap
import weakref

import pytest
from leakcheck import assert_no_leaks

import pyredcache
from pyredcache import _compat
from pyredcache.exceptions import PromiseError, PyRedCacheError


# rc's two documented examples ("Promise Object" in rc's docs), verbatim.
RC_PROMISE_EXAMPLE = """
p = Promise()
assert p.is_pending
assert not p.is_resolved
assert p.value is None
p.resolve('value')
assert not p.is_pending
assert p.is_resolved
assert p.value == 'value'
"""

RC_THEN_EXAMPLE = """
p = Promise()
d = {}
p.then(lambda v: d.setdefault('key', v))
p.resolve('value')
assert p.value == 'value'
assert d['key'] == 'value'
"""


@pytest.mark.parametrize("example", [RC_PROMISE_EXAMPLE, RC_THEN_EXAMPLE],
                         ids=["promise", "then"])
def test_rc_examples_run_as_written(impl, example):
    namespace = {"Promise": impl.Promise}
    exec(compile(example, "<rc example>", "exec"), namespace)  # noqa: S102
    assert namespace["p"].is_resolved and namespace["p"].value == "value"


def test_rc_documented_example(impl):
    p = impl.Promise()
    assert p.is_pending
    assert not p.is_resolved
    assert not p.is_rejected
    assert p.value is None
    assert p.resolve("value") is p
    assert not p.is_pending
    assert p.is_resolved
    assert not p.is_rejected
    assert p.value == "value"


def test_pending_value_is_none(impl):
    # rc: a pending promise's value is None; reading it changes nothing.
    p = impl.Promise()
    seen = []
    p.then(seen.append, seen.append)
    for _ in range(3):
        assert p.value is None
    assert p.is_pending and seen == []
    assert repr(p) == "<Promise pending>"
    p.resolve(7)
    assert p.value == 7 and seen == [7]

    # While its own callbacks run, the promise is settled already.
    q = impl.Promise()
    q.then(lambda v: seen.append(("inside", q.value, q.is_pending)))
    q.resolve("v")
    assert seen[-1] == ("inside", "v", False)

    # A pending promise read, then rejected: value raises from then on.
    r = impl.Promise()
    assert r.value is None
    err = LookupError("r")
    r.reject(err)
    with pytest.raises(LookupError) as info:
        r.value
    assert info.value is err

    # Resolving with None is told apart by is_pending / is_resolved only.
    n = impl.Promise().resolve(None)
    assert n.value is None and n.is_resolved and not n.is_pending


def test_rc_then_example(impl):
    p = impl.Promise()
    d = {}
    assert p.then(lambda v: d.setdefault("key", v)) is p
    assert d == {}
    p.resolve("value")
    assert p.value == "value"
    assert d["key"] == "value"


def test_chaining_returns_the_same_promise(impl):
    seen = []
    p = impl.Promise()
    assert p.then(seen.append).then(lambda v: seen.append(v * 2)) is p
    assert p.then() is p
    assert p.then(None, None) is p
    assert p.resolve(21).then(lambda v: seen.append(-v)) is p
    assert seen == [21, 42, -21]


def test_callbacks_run_in_registration_order_once(impl):
    seen = []
    p = impl.Promise()
    for i in range(5):
        p.then(lambda v, i=i: seen.append((i, v)))
    p.then(on_reject=lambda e: seen.append("never"))
    p.resolve("x")
    assert seen == [(i, "x") for i in range(5)]
    p.then(lambda v: seen.append("late"))
    assert seen[5:] == ["late"]  # earlier callbacks were not run again


def test_late_then_on_settled_promise_runs_immediately(impl):
    p = impl.Promise().resolve(3)
    seen = []
    p.then(seen.append, lambda e: seen.append("reject"))
    assert seen == [3]

    err = KeyError("k")
    r = impl.Promise().reject(err)
    r.then(lambda v: seen.append("resolve"), seen.append)
    assert seen == [3, err]
    r.then(lambda v: seen.append("resolve only"))  # no on_reject: nothing
    assert seen == [3, err]


def test_reject_runs_on_reject_and_value_raises_stored_exception(impl):
    p = impl.Promise()
    seen = []
    p.then(lambda v: seen.append(("resolve", v)), lambda e: seen.append(("reject", e)))
    err = ValueError("boom")
    assert p.reject(err) is p
    assert seen == [("reject", err)]
    assert p.is_rejected and not p.is_resolved and not p.is_pending
    for _ in range(3):
        with pytest.raises(ValueError) as info:
            p.value
        assert info.value is err


def test_value_reraise_does_not_grow_traceback(impl):
    try:
        raise RuntimeError("x")
    except RuntimeError as exc:
        err = exc
    p = impl.Promise().reject(err)
    depths = []
    for _ in range(5):
        try:
            p.value
        except RuntimeError as exc:
            tb, n = exc.__traceback__, 0
            while tb is not None:
                tb, n = tb.tb_next, n + 1
            depths.append(n)
    assert len(set(depths)) == 1, depths


def test_reject_needs_an_exception_instance(impl):
    p = impl.Promise()
    for bad in ("err", ValueError, None, 1):
        with pytest.raises(TypeError, match="exception instance"):
            p.reject(bad)
    assert p.is_pending
    p.reject(KeyboardInterrupt())  # any BaseException instance
    assert p.is_rejected


def test_promise_error_is_a_runtime_error():
    # rc raises RuntimeError when a settled promise is resolved again.
    assert issubclass(PromiseError, PyRedCacheError)
    assert issubclass(PromiseError, RuntimeError)
    assert pyredcache.PromiseError is PromiseError


@pytest.mark.parametrize("first", ["resolve", "reject"])
@pytest.mark.parametrize("second", ["resolve", "reject"])
def test_settling_twice_raises_runtime_error(impl, first, second):
    def arg(method):
        return ValueError(method) if method == "reject" else method

    p = impl.Promise()
    getattr(p, first)(arg(first))
    with pytest.raises(RuntimeError, match="already") as info:
        getattr(p, second)(arg(second))
    # The very class of pyredcache.exceptions, on the C core too.
    assert type(info.value) is PromiseError
    assert isinstance(info.value, PyRedCacheError)
    with pytest.raises(PromiseError):
        getattr(p, second)(arg(second))
    # `except RuntimeError` as rc users wrote it catches it.
    try:
        getattr(p, second)(arg(second))
    except RuntimeError as exc:
        assert isinstance(exc, PromiseError)
    else:
        pytest.fail("settling a settled promise did not raise")
    assert p.is_resolved == (first == "resolve")
    assert p.is_rejected == (first == "reject")

    # Through the classmethods as well.
    for settled in (impl.Promise.resolved(1), impl.Promise.rejected(KeyError())):
        with pytest.raises(RuntimeError):
            getattr(settled, second)(arg(second))


def test_settling_twice_raises_and_changes_nothing(impl):
    assert issubclass(PromiseError, PyRedCacheError)
    p = impl.Promise().resolve(1)
    with pytest.raises(PromiseError, match="already resolved"):
        p.resolve(2)
    with pytest.raises(PromiseError, match="already resolved"):
        p.reject(ValueError())
    assert p.is_resolved and p.value == 1

    err = ValueError("first")
    r = impl.Promise().reject(err)
    with pytest.raises(PromiseError, match="already rejected"):
        r.resolve(2)
    with pytest.raises(PromiseError, match="already rejected"):
        r.reject(ValueError("second"))
    with pytest.raises(ValueError) as info:
        r.value
    assert info.value is err


def test_callback_exception_reraised_after_all_callbacks_ran(impl):
    seen = []

    def boom(v):
        seen.append("boom")
        raise ZeroDivisionError("first")

    def boom2(v):
        seen.append("boom2")
        raise KeyError("second")

    p = impl.Promise()
    p.then(boom).then(boom2).then(seen.append)
    with pytest.raises(ZeroDivisionError, match="first"):
        p.resolve("v")
    assert seen == ["boom", "boom2", "v"]
    assert p.is_resolved and p.value == "v"
    # A late then() whose callback raises raises from then(); the callback
    # is not kept, so the next then() does not run it again.
    with pytest.raises(ZeroDivisionError):
        p.then(boom)
    p.then(seen.append)
    assert seen == ["boom", "boom2", "v", "boom", "v"]


def test_on_reject_exception_raised_by_reject(impl):
    p = impl.Promise()
    p.then(on_reject=lambda e: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        p.reject(ValueError())
    assert p.is_rejected


def test_reentrant_then_inside_callback(impl):
    p = impl.Promise()
    seen = []

    def first(v):
        seen.append("first")
        # Queued behind `second`, run before resolve() returns.
        assert p.then(lambda v: seen.append("nested")) is p
        assert seen == ["first"]

    p.then(first).then(lambda v: seen.append("second"))
    p.resolve(0)
    assert seen == ["first", "second", "nested"]

    # On a settled promise: the same order, and the nested callback's
    # exception comes out of the outer then().
    seen.clear()

    def outer(v):
        seen.append("outer")
        p.then(lambda v: (seen.append("inner"), 1 / 0))
        p.then(lambda v: seen.append("after"))
        assert seen == ["outer"]

    with pytest.raises(ZeroDivisionError):
        p.then(outer)
    assert seen == ["outer", "inner", "after"]


def test_reentrant_callbacks_many_levels(impl):
    p = impl.Promise()
    seen = []

    def chain(n):
        def cb(v):
            seen.append(n)
            if n < 50:
                p.then(chain(n + 1))
        return cb

    p.then(chain(0))
    p.resolve(None)
    assert seen == list(range(51))


def test_then_argument_checks(impl):
    p = impl.Promise()
    with pytest.raises(TypeError):
        p.then(1)
    with pytest.raises(TypeError):
        p.then(None, "x")
    with pytest.raises(TypeError):
        p.then(on_resolve=None, bogus=print)
    with pytest.raises(TypeError):
        p.then(print, on_resolve=print)
    with pytest.raises(TypeError):
        p.then(print, print, print)
    seen = []
    p.then(on_reject=seen.append, on_resolve=lambda v: seen.append(("r", v)))
    p.resolve(1)
    assert seen == [("r", 1)]


def test_constructor_and_classmethods(impl):
    with pytest.raises(TypeError):
        impl.Promise(1)
    p = impl.Promise.resolved([1])
    assert type(p) is impl.Promise and p.is_resolved and p.value == [1]
    err = OSError("x")
    r = impl.Promise.rejected(err)
    assert r.is_rejected
    with pytest.raises(OSError) as info:
        r.value
    assert info.value is err
    with pytest.raises(TypeError):
        impl.Promise.rejected("not an exception")


def test_repr_shows_state(impl):
    p = impl.Promise()
    assert repr(p) == "<Promise pending>"
    p.resolve("v")
    assert repr(p) == "<Promise resolved: 'v'>"
    assert repr(impl.Promise().reject(ValueError("e"))) == "<Promise rejected: ValueError('e')>"
    q = impl.Promise()
    q.resolve(q)
    assert repr(q) == "<Promise resolved: <Promise ...>>"


def test_reference_cycle_is_collected(impl):
    gc.collect()
    p = impl.Promise()
    p.then(lambda v: p)  # callback -> closure -> p -> callbacks
    q = impl.Promise()
    q.resolve(q)  # value is itself
    r = impl.Promise()
    try:
        raise ValueError("tb holds the frame, the frame holds r")
    except ValueError as exc:
        r.reject(exc)
    refs = [weakref.ref(p), weakref.ref(q), weakref.ref(r)]
    del p, q, r
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]


def _reaches(obj, target, depth=3):
    """True if gc.get_referents() reaches target from obj within depth steps."""
    layer = [obj]
    for _ in range(depth):
        layer = [r for o in layer for r in gc.get_referents(o)]
        if any(r is target for r in layer):
            return True
    return False


def test_gc_sees_the_promise_contents(impl):
    value = object()
    assert _reaches(impl.Promise().resolve(value), value, depth=1)
    cb = lambda v: None  # noqa: E731
    assert _reaches(impl.Promise().then(cb), cb)
    assert not _reaches(impl.Promise().resolve(1).then(cb), cb)  # ran, dropped


def test_package_exports():
    assert "Promise" in pyredcache.__all__ and "PromiseError" in pyredcache.__all__
    assert pyredcache.Promise is _compat.core.Promise
    assert pyredcache.PromiseError is PromiseError
    assert "Promise" in _compat.py_core.__all__


LEAK_SCRIPT = textwrap.dedent(
    """
    import sys
    from pyredcache import _compat
    mod = _compat.c_core if sys.argv[1] == "c" else _compat.py_core
    P = mod.Promise
    box = []
    val = ["x" * 10]

    def boom(v):
        raise KeyError(v)

    def once():
        p = P()
        p.then(box.append).then(on_reject=box.append)
        p.then(lambda v: p.then(box.append))  # reentrant, cycle
        p.resolve(val)
        p.value
        repr(p)
        try:
            p.resolve(1)
        except RuntimeError:
            pass
        try:
            r0 = P()
            r0.value
            r0.reject(KeyError("k"))
            r0.reject(KeyError("again"))
        except RuntimeError:
            pass
        r = P.rejected(ValueError("e"))
        r.then(box.append, box.append)
        try:
            r.value
        except ValueError:
            pass
        q = P().then(boom).then(boom)
        try:
            q.resolve(val)
        except KeyError:
            pass
        if P().value is not None:
            raise AssertionError("pending value is not None")
        try:
            P().then(1)
        except TypeError:
            pass
        box.clear()

    def refs():
        return [sys.getrefcount(o) for o in (val, boom, box, P)]

    """
)


def test_no_leaks(impl):
    assert_no_leaks(LEAK_SCRIPT, impl.implementation)
