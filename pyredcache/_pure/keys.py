"""Pure-Python twin of ``KeyBuilder`` in ``csrc/keys.c``: cache keys from
bound call arguments.

A key is ``prefix + hex(BLAKE2b-128(dumps(bound values, canonical=True)))``.
The arguments are bound to the signature as ``inspect.Signature.bind()``
and ``apply_defaults()`` would (same TypeErrors and messages; this module
reproduces the running Python's inspect algorithm step by step instead of
building a Signature, which would be slower), so ``f(1, 2)``,
``f(1, b=2)`` and ``f(b=2, a=1)`` share a key.  The digest never depends on
``hash()``, ``repr()`` or ``str()`` of objects: keys are equal across
processes, machines, Python versions and the two implementations.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from typing import Any, Dict, Optional, Tuple

from ..exceptions import SerializationError
from . import codec as _codec

__all__ = ["KeyBuilder"]

_empty = inspect.Parameter.empty

# inspect.Signature.bind changed twice; this module follows the inspect of
# the running Python (as the C core follows the one it was built for):
# 3.12 reports a missing keyword-only argument as such (when the positional
# arguments run out before it); 3.13 leaves a positional-only parameter
# whose name is passed as a keyword unbound, the keyword going to **kwargs
# (an error without one, after the other checks).
_KWONLY_MESSAGE = sys.version_info >= (3, 12)
_POSONLY_TO_KWARGS = sys.version_info >= (3, 13)

POSITIONAL_ONLY = 0
POSITIONAL_OR_KEYWORD = 1
VAR_POSITIONAL = 2
KEYWORD_ONLY = 3
VAR_KEYWORD = 4

_pack = _codec._pack
_array_header = _codec._array_header
_KeyMode = _codec._KeyMode
_blake2b = hashlib.blake2b


class KeyBuilder:
    """KeyBuilder(prefix, names, kinds, defaults, drop_first)

    Build cache keys for calls of one function.

    prefix is bytes; names, kinds and defaults describe the parameters in
    order, one entry each: names are str, kinds are inspect.Parameter kind
    values (0 POSITIONAL_ONLY, 1 POSITIONAL_OR_KEYWORD, 2 VAR_POSITIONAL,
    3 KEYWORD_ONLY, 4 VAR_KEYWORD), defaults hold inspect.Parameter.empty
    where a parameter has none.  With drop_first true the first parameter
    (self, cls) is bound but left out of the key.

    ``builder(args, kwargs) -> bytes`` binds the tuple args and the dict
    kwargs as inspect.Signature.bind() and apply_defaults() would, encodes
    the bound values in parameter order as one list with
    ``dumps(canonical=True)`` (``*args`` as a tuple, ``**kwargs`` as a dict)
    and returns prefix + the lowercase hex of the 16-byte BLAKE2b digest of
    that encoding (RFC 7693; ``hashlib.blake2b(data, digest_size=16)``).

    Raises TypeError, with inspect's message, when the call does not bind
    (missing, unexpected, duplicate or too many arguments; the binding and
    the messages follow the inspect module of the running Python, which
    changed in 3.12 and 3.13), and TypeError
    naming the parameter when an argument (or something inside it) has a
    type the codec does not support and no ``__cache_key__()`` method; the
    method's return value is encoded in its place when it has one.  Raises
    SerializationError when the arguments nest deeper than 512 levels.  The
    constructor raises TypeError or ValueError for an invalid signature.
    """

    __slots__ = ("_prefix", "_names", "_kinds", "_defaults", "_drop_first",
                 "_n", "_var_pos", "_var_kw", "_positional")

    def __init__(self, prefix: bytes, names: Tuple[str, ...], kinds: Tuple[int, ...],
                 defaults: Tuple[Any, ...], drop_first: bool) -> None:
        for what, value, typ in (("prefix", prefix, bytes), ("names", names, tuple),
                                 ("kinds", kinds, tuple), ("defaults", defaults, tuple)):
            if not isinstance(value, typ):
                raise TypeError(
                    "KeyBuilder() argument %r must be %s, not %s"
                    % (what, typ.__name__, type(value).__name__)
                )
        drop_first = bool(drop_first)
        n = len(names)
        if len(kinds) != n or len(defaults) != n:
            raise ValueError(
                "KeyBuilder: names, kinds and defaults must have the same length"
            )
        if drop_first and n == 0:
            raise ValueError("KeyBuilder: drop_first needs at least one parameter")
        last = 0
        var_pos = var_kw = -1
        for p, (name, kind) in enumerate(zip(names, kinds)):
            if not isinstance(name, str):
                raise TypeError(
                    "KeyBuilder: parameter names must be str, not %s" % type(name).__name__
                )
            if not isinstance(kind, int):
                raise TypeError(
                    "KeyBuilder: parameter kinds must be int, not %s" % type(kind).__name__
                )
            if (kind < POSITIONAL_ONLY or kind > VAR_KEYWORD or kind < last
                    or (kind == last and kind in (VAR_POSITIONAL, VAR_KEYWORD) and p > 0)):
                raise ValueError(
                    "KeyBuilder: invalid kind %r for parameter %r: kinds are 0..4 "
                    "in inspect's order, with at most one *args and one **kwargs"
                    % (kind, name)
                )
            if kind in (VAR_POSITIONAL, VAR_KEYWORD) and defaults[p] is not _empty:
                raise ValueError(
                    "KeyBuilder: parameter %r of kind %d cannot have a default"
                    % (name, kind)
                )
            if name in names[:p]:
                raise ValueError("KeyBuilder: duplicate parameter name %r" % name)
            if kind == VAR_POSITIONAL:
                var_pos = p
            elif kind == VAR_KEYWORD:
                var_kw = p
            last = kind
        self._prefix = prefix
        self._names = names
        self._kinds = tuple(int(k) for k in kinds)
        self._defaults = defaults
        self._drop_first = drop_first
        self._n = n
        self._var_pos = var_pos
        self._var_kw = var_kw
        # Chosen once: a signature of positional parameters only binds a
        # keyword-free call without the general algorithm.
        self._positional = last <= POSITIONAL_OR_KEYWORD

    prefix = property(lambda self: self._prefix, doc="The bytes every key starts with.")
    names = property(lambda self: self._names, doc="Parameter names, in order.")
    kinds = property(lambda self: self._kinds, doc="Parameter kinds, in order.")
    defaults = property(lambda self: self._defaults, doc="Parameter defaults.")
    drop_first = property(lambda self: self._drop_first,
                          doc="Whether the first parameter is left out of the key.")

    def __call__(self, args: Tuple[Any, ...], kwargs: Dict[str, Any], /) -> bytes:
        if not isinstance(args, tuple):
            raise TypeError("KeyBuilder: args must be a tuple, not %s" % type(args).__name__)
        if not isinstance(kwargs, dict):
            raise TypeError(
                "KeyBuilder: kwargs must be a dict, not %s" % type(kwargs).__name__
            )
        if self._positional and not kwargs:
            values = self._bind_positional(args)
        else:
            values = self._bind_general(args, kwargs)
        out = bytearray()
        # 3.13+: a parameter left unbound (_Unset) is left out of the key
        bound = [(p, values[p]) for p in range(self._drop_first, len(values))
                 if values[p] is not _Unset]
        _array_header(out, len(bound))
        keymode = _KeyMode()
        names = self._names
        try:
            for p, value in bound:
                try:
                    _pack(value, out, True, 1, keymode)
                except SerializationError:
                    if keymode.unsupported_type is None:
                        raise
                    name = keymode.unsupported_type.__name__
                    if keymode.unsupported_is_tzinfo:
                        raise TypeError(
                            "cannot build a cache key from argument %r: its tzinfo of "
                            "type %r is not supported (use datetime.timezone or "
                            "zoneinfo.ZoneInfo)" % (names[p], name)
                        ) from None
                    raise TypeError(
                        "cannot build a cache key from argument %r of type %r: give "
                        "the type a __cache_key__() method" % (names[p], name)
                    ) from None
        except RecursionError as exc:  # a deep caller stack; never in C
            raise _codec._too_deep() from exc
        return self._prefix + _blake2b(out, digest_size=16).hexdigest().encode("ascii")

    def _bind_positional(self, args: Tuple[Any, ...]) -> list:
        n = self._n
        na = len(args)
        if na > n:
            raise TypeError("too many positional arguments")
        defaults = self._defaults
        for p in range(na, n):
            if defaults[p] is _empty:
                raise TypeError("missing a required argument: %r" % self._names[p])
        return list(args) + list(defaults[na:])

    def _bind_general(self, args: Tuple[Any, ...], kwargs: Dict[Any, Any]) -> list:
        """inspect.Signature._bind followed by apply_defaults, on the
        parameter arrays; returns the bound values in parameter order."""
        names, kinds, defaults, n = self._names, self._kinds, self._defaults, self._n
        na = len(args)
        unset = _Unset
        vals: list = [unset] * n
        from_kw = [False] * n
        pi = ai = 0
        varpos_start = na
        posonly_in_kw: list = []

        # Phase 1: positional arguments, in parameter order.
        while True:
            if ai >= na:
                if pi >= n:
                    kwstart = n
                    break
                p = pi
                pi += 1
                kind = kinds[p]
                if kind == VAR_POSITIONAL:
                    kwstart = pi
                    break
                if kwargs and names[p] in kwargs:
                    if kind == POSITIONAL_ONLY:
                        if _POSONLY_TO_KWARGS:
                            posonly_in_kw.append(names[p])
                            continue
                        raise TypeError(
                            "%r parameter is positional only, but was passed as a keyword"
                            % names[p]
                        )
                    kwstart = p
                    break
                if kind == VAR_KEYWORD or defaults[p] is not _empty:
                    kwstart = p
                    break
                if _KWONLY_MESSAGE and kind == KEYWORD_ONLY:
                    raise TypeError(
                        "missing a required keyword-only argument: %r" % names[p]
                    )
                raise TypeError("missing a required argument: %r" % names[p])
            if pi >= n:
                raise TypeError("too many positional arguments")
            p = pi
            pi += 1
            kind = kinds[p]
            if kind == VAR_KEYWORD or kind == KEYWORD_ONLY:
                raise TypeError("too many positional arguments")
            if kind == VAR_POSITIONAL:
                varpos_start = ai
                ai = na
                kwstart = pi
                break
            if kwargs and kind != POSITIONAL_ONLY and names[p] in kwargs:
                raise TypeError("multiple values for argument %r" % names[p])
            vals[p] = args[ai]
            ai += 1

        # Phase 2: the remaining parameters take keyword arguments.
        used = 0
        kwparam = -1
        for p in range(kwstart, n):
            kind = kinds[p]
            if kind == VAR_KEYWORD:
                kwparam = p
                continue
            if kind == VAR_POSITIONAL:
                continue
            found = kwargs.get(names[p], unset) if kwargs else unset
            if found is unset:
                if defaults[p] is _empty:
                    raise TypeError("missing a required argument: %r" % names[p])
            else:
                if kind == POSITIONAL_ONLY and not _POSONLY_TO_KWARGS:
                    raise TypeError(
                        "%r parameter is positional only, but was passed as a keyword"
                        % names[p]
                    )
                vals[p] = found
                from_kw[p] = True
                used += 1

        # Keywords no parameter took: **kwargs, or an error.
        extra_kw: Optional[dict] = None
        if used < len(kwargs):
            if kwparam < 0 and posonly_in_kw:
                raise TypeError(
                    "got some positional-only arguments passed as keyword "
                    "arguments: %r" % ", ".join(posonly_in_kw)
                )
            if kwparam < 0 or used > 0:
                extra_kw = dict(kwargs)
                for p in range(n):
                    if from_kw[p]:
                        del extra_kw[names[p]]
                if kwparam < 0:
                    raise TypeError(
                        "got an unexpected keyword argument %r" % next(iter(extra_kw))
                    )
            else:
                extra_kw = kwargs

        # apply_defaults: an unbound parameter takes its default, *args (),
        # **kwargs {}; one without a default (3.13+: a positional-only
        # parameter passed as a keyword) stays _Unset, left out of the key.
        var_pos, var_kw = self._var_pos, self._var_kw
        for p in range(n):
            if p == var_pos:
                vals[p] = args[varpos_start:]
            elif p == var_kw:
                vals[p] = {} if extra_kw is None else extra_kw
            elif vals[p] is unset and defaults[p] is not _empty:
                vals[p] = defaults[p]
        return vals


class _UnsetType:
    __slots__ = ()


_Unset: Any = _UnsetType()
