"""Cache-key building: KeyBuilder, on the C core and on its pure twin.

Keys are prefix + hex(BLAKE2b-128(dumps(bound values, canonical=True))).
The call is bound as inspect.Signature.bind() + apply_defaults() would;
equal calls give equal keys (in every process, with either
implementation), different arguments give different keys.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import inspect
import os
import subprocess
import sys
import textwrap
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leakcheck import assert_no_leaks

import pyredcache._pure.codec as codec_py
import pyredcache._pure.keys as keys_py
from pyredcache import _compat
from pyredcache.exceptions import SerializationError

EMPTY = inspect.Parameter.empty
P = inspect.Parameter
HYPOTHESIS = settings(
    max_examples=300, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def keys(impl):
    """The module whose KeyBuilder is under test: the C core, or the twin's
    module (pyredcache._pure.keys)."""
    return impl if hasattr(impl, "KeyBuilder") else keys_py




def builder_for(mod, func, prefix=b"k:", drop_first=False):
    """A KeyBuilder for func's signature, as a caching decorator makes it."""
    params = list(inspect.signature(func).parameters.values())
    return mod.KeyBuilder(
        prefix,
        tuple(p.name for p in params),
        tuple(int(p.kind) for p in params),
        tuple(p.default for p in params),
        drop_first,
    )


def expected_key(func, args, kwargs, prefix=b"k:", drop_first=False):
    """The key by definition: inspect binds, the reference codec encodes,
    hashlib hashes."""
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    first = next(iter(inspect.signature(func).parameters), None)
    values = [v for name, v in bound.arguments.items() if not (drop_first and name == first)]
    data = codec_py.dumps(values, canonical=True)
    return prefix + hashlib.blake2b(data, digest_size=16).hexdigest().encode()


def f2(a, b):
    pass


def f1(x):
    pass


# --------------------------------------------------------------------------
# binding
# --------------------------------------------------------------------------


def test_positional_and_keyword_calls_share_a_key(keys):
    kb = builder_for(keys, f2)
    key = kb((1, 2), {})
    assert key == kb((1,), {"b": 2}) == kb((), {"b": 2, "a": 1}) == kb((), {"a": 1, "b": 2})
    assert key == expected_key(f2, (1, 2), {})
    assert kb((2, 1), {}) != key


def test_defaults_are_applied(keys):
    def f(a, b=2, *, c="x", d=None):
        pass

    kb = builder_for(keys, f)
    key = kb((1,), {})
    assert key == kb((1, 2), {}) == kb((1,), {"c": "x"}) == kb((1, 2), {"d": None, "c": "x"})
    assert key == expected_key(f, (1,), {})
    assert kb((1, 3), {}) != key
    assert kb((1,), {"d": 0}) != key


def test_var_positional_and_var_keyword(keys):
    def f(a, *args, k=0, **kw):
        pass

    kb = builder_for(keys, f)
    assert kb((1, 2, 3), {"x": 1, "y": 2}) == kb((1, 2, 3), {"y": 2, "x": 1})
    assert kb((1, 2, 3), {"x": 1, "y": 2}) == expected_key(f, (1, 2, 3), {"x": 1, "y": 2})
    assert kb((1,), {}) == expected_key(f, (1,), {})
    assert kb((1,), {"k": 0}) == kb((1,), {})
    assert kb((1, 2), {}) != kb((1,), {"args": 2})  # 'args' goes into **kw
    assert kb((1,), {"a2": 1}) == expected_key(f, (1,), {"a2": 1})
    assert kb((1,), {"k": 5, "z": 1}) == expected_key(f, (1,), {"k": 5, "z": 1})


def test_positional_only(keys):
    def f(a, b=1, /, c=2, **kw):
        pass

    kb = builder_for(keys, f)
    assert kb((1,), {}) == expected_key(f, (1,), {})
    assert kb((1, 5), {"a": 3}) == expected_key(f, (1, 5), {"a": 3})  # 'a' -> **kw
    assert kb((1,), {"c": 2}) == kb((1, 1, 2), {})


def test_drop_first(keys):
    class A:
        def m(self, x, y=0):
            pass

    kb = builder_for(keys, A.m, drop_first=True)
    assert kb((A(), 1), {}) == kb((A(), 1, 0), {}) == kb((object(),), {"x": 1})
    assert kb((A(), 1), {}) == expected_key(A.m, (A(), 1), {}, drop_first=True)
    with pytest.raises(TypeError, match="missing a required argument: 'self'"):
        kb((), {})


@pytest.mark.parametrize("call", [
    ((1, 2), {}), ((1,), {"b": 2}), ((), {"a": 1, "b": 2}), ((1, 2, 3), {}), ((), {}),
    ((1,), {}), ((1, 2), {"b": 3}), ((1, 2), {"c": 3}), ((1,), {"a": 2}), ((), {"zz": 1}),
])
@pytest.mark.parametrize("func", ["f2", "posonly", "kwonly", "varargs", "defaults"])
def test_binding_errors_match_inspect(keys, func, call):
    def posonly(a, /, b):
        pass

    def kwonly(a, *, b):
        pass

    def varargs(a, *args, b=1, **kw):
        pass

    def defaults(a=1, b=2, /):
        pass

    fn = {"f2": f2, "posonly": posonly, "kwonly": kwonly, "varargs": varargs,
          "defaults": defaults}[func]
    args, kwargs = call
    kb = builder_for(keys, fn)
    try:
        want = expected_key(fn, args, kwargs)
    except TypeError as exc:
        with pytest.raises(TypeError) as info:
            kb(args, dict(kwargs))
        assert str(info.value) == str(exc)
        for name in "ab":
            if "'%s'" % name in str(exc):
                assert "'%s'" % name in str(info.value)
    else:
        assert kb(args, dict(kwargs)) == want


def test_binding_error_messages(keys):
    kb = builder_for(keys, f2)
    with pytest.raises(TypeError, match="^missing a required argument: 'b'$"):
        kb((1,), {})
    with pytest.raises(TypeError, match="^too many positional arguments$"):
        kb((1, 2, 3), {})
    with pytest.raises(TypeError, match="^multiple values for argument 'a'$"):
        kb((1,), {"a": 1})
    with pytest.raises(TypeError, match="^got an unexpected keyword argument 'c'$"):
        kb((1, 2), {"c": 3})

    def g(a, /):
        pass

    with pytest.raises(TypeError, match="^'a' parameter is positional only, but was passed as a keyword$"):
        builder_for(keys, g)((), {"a": 1})


def test_call_arguments_checked(keys):
    kb = builder_for(keys, f2)
    with pytest.raises(TypeError):
        kb([1, 2], {})
    with pytest.raises(TypeError):
        kb((1, 2), [])
    with pytest.raises(TypeError):
        kb((1, 2))
    with pytest.raises(TypeError):
        kb((1, 2), {}, {})
    with pytest.raises(TypeError):
        kb(args=(1, 2), kwargs={})


@pytest.mark.parametrize("bad", [
    dict(names=("a", "b"), kinds=(1,), defaults=(EMPTY, EMPTY)),
    dict(names=("a",), kinds=(5,), defaults=(EMPTY,)),
    dict(names=("a", "b"), kinds=(3, 1), defaults=(EMPTY, EMPTY)),
    dict(names=("a", "b"), kinds=(2, 2), defaults=(EMPTY, EMPTY)),
    dict(names=("a", "a"), kinds=(1, 1), defaults=(EMPTY, EMPTY)),
    dict(names=("a",), kinds=(2,), defaults=((),)),
    dict(names=(), kinds=(), defaults=(), drop_first=True),
])
def test_invalid_signature(keys, bad):
    kw = dict(prefix=b"p", drop_first=False)
    kw.update(bad)
    with pytest.raises(ValueError):
        keys.KeyBuilder(kw["prefix"], kw["names"], kw["kinds"], kw["defaults"], kw["drop_first"])


def test_invalid_constructor_types(keys):
    with pytest.raises(TypeError):
        keys.KeyBuilder("p", ("a",), (1,), (EMPTY,), False)
    with pytest.raises(TypeError):
        keys.KeyBuilder(b"p", ["a"], (1,), (EMPTY,), False)
    with pytest.raises(TypeError):
        keys.KeyBuilder(b"p", (1,), (1,), (EMPTY,), False)
    with pytest.raises(TypeError):
        keys.KeyBuilder(b"p", ("a",), ("1",), (EMPTY,), False)


def test_attributes(keys):
    kb = keys.KeyBuilder(b"p:", ("a", "b"), (1, 3), (EMPTY, 2), True)
    assert kb.prefix == b"p:"
    assert kb.names == ("a", "b")
    assert kb.kinds == (1, 3)
    assert kb.defaults == (EMPTY, 2)
    assert kb.drop_first is True
    with pytest.raises(AttributeError):
        kb.prefix = b"x"


# --------------------------------------------------------------------------
# distinct arguments, distinct keys
# --------------------------------------------------------------------------


@pytest.mark.parametrize("first, second", [
    ((1,), ("1",)), ((None,), ("None",)), ((1,), (True,)), ((1,), (1.0,)), ((True,), (1.0,)),
    (((1, 2),), ([1, 2],)), (({1, 2},), (frozenset({1, 2}),)), (((1, 2),), ({1, 2},)),
    ((b"x",), ("x",)), ((0.0,), (-0.0,)), (("",), (None,)), (([],), ({},)), ((0,), (False,)),
    ((decimal.Decimal("1"),), (1,)), ((decimal.Decimal("1.0"),), (decimal.Decimal("1"),)),
    ((datetime.date(2024, 1, 1),), (datetime.datetime(2024, 1, 1),)),
    ((datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),), (datetime.datetime(2024, 1, 1),)),
    ((uuid.UUID(int=1),), (1,)), ((2**64,), (float(2**64),)), (({"a": 1},), ([("a", 1)],)),
])
def test_distinct_values_distinct_keys(keys, first, second):
    kb = builder_for(keys, f1)
    assert kb(first, {}) != kb(second, {})


def test_argument_boundaries_are_kept(keys):
    def f(*args):
        pass

    kb = builder_for(keys, f)
    assert kb(("a b",), {}) != kb(("a", "b"), {})
    assert kb(("ab",), {}) != kb(("a", "b"), {})
    assert kb(((1, 2),), {}) != kb((1, 2), {})
    assert kb(([1, 2],), {}) != kb((1, 2), {})
    kb2 = builder_for(keys, f2)
    assert kb2(("a", "bc"), {}) != kb2(("ab", "c"), {})
    assert kb2(("", "x"), {}) != kb2(("x", ""), {})


def test_order_independent_containers(keys):
    kb = builder_for(keys, f1)
    assert kb(({"a": 1, "b": 2},), {}) == kb(({"b": 2, "a": 1},), {})
    assert kb(({"x", "y", "z"},), {}) == kb(({"z", "y", "x"},), {})
    assert kb((frozenset(range(100)),), {}) == kb((frozenset(reversed(range(100))),), {})
    assert kb(({1: {"q", "r"}, 2: [3]},), {}) == kb(({2: [3], 1: {"r", "q"}},), {})
    assert kb((float("nan"),), {}) == kb((-float("nan"),), {})


def test_prefix(keys):
    a = builder_for(keys, f1, prefix=b"a:")
    b = builder_for(keys, f1, prefix=b"")
    assert a((1,), {}) == b"a:" + b((1,), {})
    assert len(b((1,), {})) == 32
    assert set(b((1,), {})) <= set(b"0123456789abcdef")


def test_known_answer(keys):
    """One key pinned byte for byte: any change to binding, the codec, the
    hash or the hex breaks every cache in production."""
    kb = keys.KeyBuilder(b"pfx:", ("a", "b"), (1, 1), (EMPTY, 2), False)
    key = kb((1,), {})
    assert hashlib.blake2b(b"\x92\x01\x02", digest_size=16).hexdigest() == (
        "83b5c3ff7b11c2db5a5105b869783308"
    )
    assert key == b"pfx:83b5c3ff7b11c2db5a5105b869783308"

    kb = keys.KeyBuilder(b"app:mod.f:", ("self", "a", "args", "k", "kw"), (1, 1, 2, 3, 4),
                         (EMPTY, EMPTY, EMPTY, None, EMPTY), True)
    key = kb((object(), 1, "x", 2.5), {"z": [1], "y": {2, 3}})
    encoded = bytes.fromhex(
        "9401c70c0192a178cb4004000000000000c082a179c70302920203a17a9101"
    )
    assert codec_py.dumps([1, ("x", 2.5), None, {"y": {2, 3}, "z": [1]}], canonical=True) == encoded
    assert key == b"app:mod.f:" + hashlib.blake2b(encoded, digest_size=16).hexdigest().encode()
    assert key == b"app:mod.f:b371d2465181497132194d95ea8ee86b"


@pytest.mark.parametrize("size", [0, 1, 50, 111, 112, 113, 120, 128, 200, 240, 241, 255, 256, 1000, 100_000])
def test_digest_across_block_sizes(keys, size):
    """The encoding is hashed in 128-byte blocks; lengths around the block
    edges exercise the C BLAKE2b (RFC 7693) against hashlib's."""
    kb = builder_for(keys, f1)
    arg = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert kb((arg,), {}) == expected_key(f1, (arg,), {})


# --------------------------------------------------------------------------
# __cache_key__ and unsupported types
# --------------------------------------------------------------------------


class User:
    def __init__(self, uid):
        self.uid = uid


class CachedUser(User):
    def __cache_key__(self):
        return ("User", self.uid)


class Nested:
    def __cache_key__(self):
        return [CachedUser(7), {"k": CachedUser(8)}]


class Selfish:
    def __cache_key__(self):
        return self


class Raising:
    def __cache_key__(self):
        raise ValueError("no key for you")


class Tagged(int):
    def __cache_key__(self):
        return ("Tagged", int(self))


class Static:
    __cache_key__ = staticmethod(lambda: "static")


def test_cache_key_method(keys):
    def f(user, other=None):
        pass

    kb = builder_for(keys, f)
    assert kb((CachedUser(1),), {}) == kb((CachedUser(1),), {})
    assert kb((CachedUser(1),), {}) != kb((CachedUser(2),), {})
    assert kb((CachedUser(1),), {}) == kb((("User", 1),), {})
    assert kb(([CachedUser(1)],), {}) == kb(([("User", 1)],), {})
    assert kb(({"u": CachedUser(1)},), {}) == kb(({"u": ("User", 1)},), {})
    assert kb(({CachedUser(1): 1},), {}) == kb(({("User", 1): 1},), {})
    assert kb((Nested(),), {}) == kb(([("User", 7), {"k": ("User", 8)}],), {})
    assert kb((Tagged(3),), {}) == kb((("Tagged", 3),), {})
    assert kb((Static(),), {}) == kb(("static",), {})
    with pytest.raises(ValueError, match="no key for you"):
        kb((Raising(),), {})
    with pytest.raises(SerializationError, match="nesting deeper"):
        kb((Selfish(),), {})


def test_unsupported_argument_type_error(keys):
    def f(user, items=()):
        pass

    kb = builder_for(keys, f)
    with pytest.raises(TypeError) as info:
        kb((User(1),), {})
    assert str(info.value) == (
        "cannot build a cache key from argument 'user' of type 'User': "
        "give the type a __cache_key__() method"
    )
    with pytest.raises(TypeError, match="argument 'items' of type 'User'"):
        kb((1, [2, {"x": User(1)}]), {})
    with pytest.raises(TypeError, match="argument 'items' of type 'bytearray'"):
        kb((1,), {"items": bytearray()})
    with pytest.raises(TypeError, match="argument 'user': its tzinfo of type 'OtherTZ'"):
        kb((datetime.datetime(2024, 1, 1, tzinfo=OtherTZ()),), {})

    def g(*args, **kw):
        pass

    kbg = builder_for(keys, g)
    with pytest.raises(TypeError, match="argument 'args' of type 'object'"):
        kbg((1, object()), {})
    with pytest.raises(TypeError, match="argument 'kw' of type 'object'"):
        kbg((), {"x": object()})


class OtherTZ(datetime.tzinfo):
    def utcoffset(self, dt):
        return datetime.timedelta(0)


def test_cache_key_mutating_kwargs_is_safe(keys):
    """__cache_key__ is user code run mid-encoding; mutating the containers
    being encoded must raise, never crash."""
    def f(a, **kw):
        pass

    kb = builder_for(keys, f)
    kwargs = {}

    class Evil:
        def __cache_key__(self):
            kwargs.clear()
            big.clear()
            return 1

    big = {i: i for i in range(5)}
    big[5] = Evil()
    kwargs.update({"x": Evil(), "y": "z" * 100, "w": [Evil()]})
    with pytest.raises((RuntimeError, SerializationError)):
        kb((big,), kwargs)
    lst = []

    class Shrink:
        def __cache_key__(self):
            del lst[:]
            return 0

    lst.extend([Shrink(), "a", "b"])
    with pytest.raises(SerializationError, match="list changed size"):
        kb((lst,), {})


# --------------------------------------------------------------------------
# C == twin, over generated signatures and calls
# --------------------------------------------------------------------------


@st.composite
def signatures(draw):
    names = iter("abcdefghijklmnop")
    params = []
    seen_default = False
    for kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.VAR_POSITIONAL,
                 P.KEYWORD_ONLY, P.VAR_KEYWORD):
        if kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            if draw(st.booleans()):
                params.append(P(next(names), kind))
            continue
        for _ in range(draw(st.integers(0, 3))):
            if kind == P.KEYWORD_ONLY:
                has_default = draw(st.booleans())
            else:
                has_default = seen_default or draw(st.booleans())
                seen_default = seen_default or has_default
            default = draw(arg_values) if has_default else EMPTY
            params.append(P(next(names), kind, default=default))
    return inspect.Signature(params)


arg_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
              st.binary(max_size=10), st.dates(), st.uuids(), st.decimals(allow_nan=False)),
    lambda c: st.one_of(st.lists(c, max_size=3), st.lists(c, max_size=3).map(tuple),
                        st.dictionaries(st.text(max_size=5), c, max_size=3),
                        st.frozensets(st.integers() | st.text(max_size=5), max_size=3)),
    max_leaves=6,
)


def _run(kb, args, kwargs):
    try:
        return "ok", kb(args, dict(kwargs))
    except TypeError as exc:
        return "TypeError", str(exc)


@HYPOTHESIS
@given(
    signatures(),
    st.lists(arg_values, max_size=6).map(tuple),
    st.dictionaries(st.sampled_from("abcdefghijz"), arg_values, max_size=4),
    st.booleans(),
)
def test_c_and_twin_agree_with_inspect(both, sig, args, kwargs, drop):
    c, py = both
    params = list(sig.parameters.values())
    drop = drop and bool(params)
    spec = (b"h:", tuple(p.name for p in params), tuple(int(p.kind) for p in params),
            tuple(p.default for p in params), drop)
    got_c = _run(c.KeyBuilder(*spec), args, kwargs)
    got_py = _run(py.KeyBuilder(*spec), args, kwargs)
    assert got_c == got_py
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        assert got_c == ("TypeError", str(exc))
        return
    bound.apply_defaults()
    values = [v for name, v in bound.arguments.items() if not (drop and name == params[0].name)]
    want = b"h:" + hashlib.blake2b(codec_py.dumps(values, canonical=True),
                                   digest_size=16).hexdigest().encode()
    assert got_c == ("ok", want)


@HYPOTHESIS
@given(st.lists(arg_values, min_size=2, max_size=2))
def test_keyword_order_does_not_matter(keys, vals):
    def f(*, x, y, **kw):
        pass

    kb = builder_for(keys, f)
    assert kb((), {"x": vals[0], "y": vals[1], "z": 1, "w": 2}) == kb(
        (), {"w": 2, "z": 1, "y": vals[1], "x": vals[0]})


# --------------------------------------------------------------------------
# across processes, leaks
# --------------------------------------------------------------------------

PROCESS_SCRIPT = textwrap.dedent(
    """
    import inspect, sys, uuid, datetime, decimal
    from pyredcache import _compat
    from pyredcache._pure import keys as _keys_py
    mod = _compat.c_core if sys.argv[1] == "c" else _keys_py
    E = inspect.Parameter.empty
    kb = mod.KeyBuilder(b"x:", ("a", "args", "kw"), (1, 2, 4), (E, E, E), False)
    words = ["w%d" % i for i in range(50)]
    calls = [
        ((set(words),), {}),
        ((frozenset(words), {w: len(w) for w in words}), {"k1": set(words[:5]), "k2": 1}),
        (("s", 1, 2.5, None, True, b"b", (1, 2), [3]), {w: w for w in words[:10]}),
        ((datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.timezone.utc),
          uuid.UUID(int=5), decimal.Decimal("1.5"), 2**100), {}),
        ((float("nan"),), {"n": {float("nan"): 1}}),
    ]
    print(" ".join(kb(a, k).decode() for a, k in calls))
    """
)


def test_keys_equal_across_processes(both):
    outs = set()
    for impl_name in ("c", "python"):
        for seed in ("0", "1", "12345"):
            out = subprocess.run(
                [sys.executable, "-c", PROCESS_SCRIPT, impl_name],
                capture_output=True, text=True, timeout=120,
                env={**os.environ, "PYTHONHASHSEED": seed},
            )
            assert out.returncode == 0, out.stderr
            outs.add(out.stdout)
    assert len(outs) == 1
    assert len(outs.pop().split()) == 5


LEAK_SCRIPT = textwrap.dedent(
    """
    import gc, inspect, sys, tracemalloc
    from pyredcache import _compat
    from pyredcache._pure import keys as _keys_py
    mod = _compat.c_core if sys.argv[1] == "c" else _keys_py
    E = inspect.Parameter.empty

    class CK:
        def __cache_key__(self):
            return ("ck", 1)

    class Bad:
        pass

    simple = mod.KeyBuilder(b"s:", ("a", "b", "c"), (1, 1, 1), (E, E, "d"), False)
    general = mod.KeyBuilder(b"g:", ("self", "a", "args", "k", "kw"), (1, 1, 2, 3, 4),
                             (E, E, E, None, E), True)
    many = mod.KeyBuilder(b"m:", tuple("p%d" % i for i in range(20)), (1,) * 20, (0,) * 20, False)
    arg = ["x" * 10, {"k": {1, 2}}, (3, 4)]
    ck = CK()
    bad = Bad()
    kw = {"k": 5, "z": arg}

    def once():
        simple((1, arg), {})
        simple((1,), {"b": arg, "c": ck})
        general((None, 1, 2, arg), kw)
        general((None, ck), {"z": 1})
        many(tuple(range(20)), {})
        many((), {"p19": arg})
        for call in (lambda: simple((1,), {}), lambda: simple((1, 2, 3, 4), {}),
                     lambda: simple((1, 2), {"q": 1}), lambda: general((None, 1), {"a": 1}),
                     lambda: simple((1, bad), {}), lambda: general((None, 1, [bad]), kw),
                     lambda: general((None, 1), {"z": [bad]})):
            try:
                call()
            except TypeError:
                pass

    def refs():
        return [sys.getrefcount(o) for o in (arg, ck, bad, kw, arg[0], arg[1], simple, general)]

    """
)


def test_no_leaks(keys):
    assert_no_leaks(LEAK_SCRIPT, "c" if keys is _compat.c_core else "python")


def test_builder_is_collected(keys):
    """KeyBuilder takes part in garbage collection (it holds defaults)."""
    import gc
    import weakref

    class Default:
        pass

    d = Default()
    kb = keys.KeyBuilder(b"p", ("a",), (1,), (d,), False)
    d.kb = kb  # a cycle through the defaults tuple
    ref = weakref.ref(d)
    del d, kb
    gc.collect()
    assert ref() is None
