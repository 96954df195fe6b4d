"""Pure-Python twin of the value codec in ``csrc/codec.c``.

The format is MessagePack plus nine extension types for the Python types
MessagePack lacks; ``docs/format.rst`` is its full specification.  This
module is the reference: ``pyredcache._core.dumps``/``loads`` give the same
bytes, the same values and the same exceptions (type and message).

``loads`` reads bytes that anyone with write access to the Redis server may
have written, so it trusts nothing: every length is checked against the
remaining input before anything is built, nesting is limited to
:data:`MAX_DEPTH` levels, and every failure raises
:class:`~pyredcache.exceptions.SerializationError`.
"""

from __future__ import annotations

import datetime
import decimal
import struct
import uuid
import zoneinfo
from typing import Any, List, Optional, Tuple

from ..exceptions import SerializationError

__all__ = ["dumps", "loads", "MAX_DEPTH"]

#: Containers (list, dict, tuple, set, frozenset) nested deeper than this are
#: refused by :func:`dumps` and :func:`loads`.  Equal to ``PYRC_MAX_DEPTH``.
MAX_DEPTH = 512

EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_BIGINT = 4
EXT_DATETIME = 5
EXT_DATE = 6
EXT_TIME = 7
EXT_DECIMAL = 8
EXT_UUID = 9

_LIMIT32 = 0xFFFFFFFF
_CANONICAL_NAN = b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"

_s_BB = struct.Struct(">BB")
_s_BH = struct.Struct(">BH")
_s_BI = struct.Struct(">BI")
_s_BQ = struct.Struct(">BQ")
_s_Bb = struct.Struct(">Bb")
_s_Bh = struct.Struct(">Bh")
_s_Bi = struct.Struct(">Bi")
_s_Bq = struct.Struct(">Bq")
_s_Bd = struct.Struct(">Bd")
_s_BBB = struct.Struct(">BBB")
_s_BHB = struct.Struct(">BHB")
_s_BIB = struct.Struct(">BIB")
_s_q = struct.Struct(">q")
_s_H = struct.Struct(">H")
_s_I = struct.Struct(">I")
_s_Q = struct.Struct(">Q")
_s_b = struct.Struct(">b")
_s_h = struct.Struct(">h")
_s_i = struct.Struct(">i")
_s_f = struct.Struct(">f")
_s_d = struct.Struct(">d")
_s_dt = struct.Struct(">HBBBBB")

_timezone = datetime.timezone
_ZoneInfo = zoneinfo.ZoneInfo
_Decimal = decimal.Decimal
_UUID = uuid.UUID
_datetime = datetime.datetime
_date = datetime.date
_time = datetime.time


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------


class _KeyMode:
    """State of a key-mode encoding (used by ``keys``): objects of an
    unsupported type are replaced by the result of their ``__cache_key__()``
    method; when there is none, the type is recorded here before the
    SerializationError is raised."""

    __slots__ = ("unsupported_type", "unsupported_is_tzinfo")

    def __init__(self) -> None:
        self.unsupported_type: Optional[type] = None
        self.unsupported_is_tzinfo = False


def _type_name(t: type) -> str:
    return t.__name__


def _len_header(out: bytearray, n: int, what: str, fix_base: int, fix_limit: int,
                c8: int, c16: int, c32: int) -> None:
    if n < fix_limit:
        out.append(fix_base | n)
    elif c8 and n <= 0xFF:
        out += _s_BB.pack(c8, n)
    elif n <= 0xFFFF:
        out += _s_BH.pack(c16, n)
    elif n <= _LIMIT32:
        out += _s_BI.pack(c32, n)
    else:
        raise SerializationError(
            "cannot serialize %s: its length %d exceeds the MessagePack limit of %d"
            % (what, n, _LIMIT32)
        )


def _array_header(out: bytearray, n: int) -> None:
    if n < 16:
        out.append(0x90 | n)
    else:
        _len_header(out, n, "list", 0x90, 16, 0, 0xDC, 0xDD)


def _ext_header(out: bytearray, code: int, n: int) -> None:
    if n == 1:
        out += _s_BB.pack(0xD4, code)
    elif n == 2:
        out += _s_BB.pack(0xD5, code)
    elif n == 4:
        out += _s_BB.pack(0xD6, code)
    elif n == 8:
        out += _s_BB.pack(0xD7, code)
    elif n == 16:
        out += _s_BB.pack(0xD8, code)
    elif n <= 0xFF:
        out += _s_BBB.pack(0xC7, n, code)
    elif n <= 0xFFFF:
        out += _s_BHB.pack(0xC8, n, code)
    elif n <= _LIMIT32:
        out += _s_BIB.pack(0xC9, n, code)
    else:
        raise SerializationError(
            "cannot serialize: an extension payload of %d bytes exceeds the "
            "MessagePack limit of %d" % (n, _LIMIT32)
        )


def _utf8(s: str) -> bytes:
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SerializationError("cannot serialize str: %s" % exc) from exc


def _pack_int(out: bytearray, x: int) -> None:
    if x >= 0:
        if x < 0x80:
            out.append(x)
        elif x <= 0xFF:
            out += _s_BB.pack(0xCC, x)
        elif x <= 0xFFFF:
            out += _s_BH.pack(0xCD, x)
        elif x <= 0xFFFFFFFF:
            out += _s_BI.pack(0xCE, x)
        elif x <= 0xFFFFFFFFFFFFFFFF:
            out += _s_BQ.pack(0xCF, x)
        else:
            _pack_bigint(out, x)
    elif x >= -32:
        out.append(x & 0xFF)
    elif x >= -0x80:
        out += _s_Bb.pack(0xD0, x)
    elif x >= -0x8000:
        out += _s_Bh.pack(0xD1, x)
    elif x >= -0x80000000:
        out += _s_Bi.pack(0xD2, x)
    elif x >= -0x8000000000000000:
        out += _s_Bq.pack(0xD3, x)
    else:
        _pack_bigint(out, x)


def _pack_bigint(out: bytearray, x: int) -> None:
    # Minimal two's complement: one sign bit more than the magnitude needs.
    n = ((x if x >= 0 else ~x).bit_length() + 8) // 8
    _ext_header(out, EXT_BIGINT, n)
    out += x.to_bytes(n, "big", signed=True)


def _pack_offset(td: datetime.timedelta) -> bytes:
    return _s_q.pack((td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds)


def _pack_tzinfo(out: bytearray, tz: Any, keymode: Optional[_KeyMode]) -> None:
    if tz is None:
        out.append(0)
        return
    t = type(tz)
    if t is _timezone:
        initargs = tz.__getinitargs__()
        if len(initargs) == 1:
            out.append(1)
            out += _pack_offset(initargs[0])
        else:
            out.append(2)
            out += _pack_offset(initargs[0])
            out += _utf8(initargs[1])
        return
    if t is _ZoneInfo:
        key = tz.key
        if type(key) is str:
            out.append(3)
            out += _utf8(key)
            return
    if keymode is not None:
        keymode.unsupported_type = t
        keymode.unsupported_is_tzinfo = True
    raise SerializationError(
        "cannot serialize tzinfo of type %r: only datetime.timezone and "
        "zoneinfo.ZoneInfo (made from a key) are supported" % _type_name(t)
    )


def _too_deep() -> SerializationError:
    return SerializationError(
        "cannot serialize: nesting deeper than %d levels" % MAX_DEPTH
    )


def _find_cache_key(obj: Any) -> Any:
    """``__cache_key__`` looked up on the type, as Python looks up special
    methods, bound to obj; None when the type has none."""
    t = type(obj)
    for klass in t.__mro__:
        d = klass.__dict__
        if "__cache_key__" in d:
            attr = d["__cache_key__"]
            get = getattr(type(attr), "__get__", None)
            if get is not None:
                attr = get(attr, obj, t)
            return attr
    return None


def _pack(obj: Any, out: bytearray, canonical: bool, depth: int,
          keymode: Optional[_KeyMode]) -> None:
    """Append the encoding of obj, a value at nesting level depth (0 for
    the top-level value).  One Python frame per nesting level."""
    t = type(obj)
    if t is str:
        b = _utf8(obj)
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        else:
            _len_header(out, n, "str", 0xA0, 32, 0xD9, 0xDA, 0xDB)
        out += b
    elif t is int:
        _pack_int(out, obj)
    elif obj is None:
        out.append(0xC0)
    elif obj is True:
        out.append(0xC3)
    elif obj is False:
        out.append(0xC2)
    elif t is float:
        if canonical and obj != obj:
            out += _CANONICAL_NAN
        else:
            out += _s_Bd.pack(0xCB, obj)
    elif t is bytes:
        _len_header(out, len(obj), "bytes", 0, 0, 0xC4, 0xC5, 0xC6)
        out += obj
    elif t is list:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        n = len(obj)
        _array_header(out, n)
        depth += 1
        for x in obj:
            _pack(x, out, canonical, depth, keymode)
        if len(obj) != n:
            raise SerializationError("list changed size during serialization")
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        n = len(obj)
        if n < 16:
            out.append(0x80 | n)
        else:
            _len_header(out, n, "dict", 0x80, 16, 0, 0xDE, 0xDF)
        depth += 1
        count = 0
        if canonical:
            entries: List[bytearray] = []
            for k, v in obj.items():
                e = bytearray()
                _pack(k, e, True, depth, keymode)
                _pack(v, e, True, depth, keymode)
                entries.append(e)
                count += 1
            entries.sort()
            for e in entries:
                out += e
        else:
            for k, v in obj.items():
                _pack(k, out, False, depth, keymode)
                _pack(v, out, False, depth, keymode)
                count += 1
        if count != n:
            raise RuntimeError("dictionary keys changed during iteration")
    elif t is tuple or t is set or t is frozenset:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        n = len(obj)
        payload = bytearray()
        _array_header(payload, n)
        depth += 1
        count = 0
        if canonical and t is not tuple:
            items: List[bytearray] = []
            for x in obj:
                e = bytearray()
                _pack(x, e, True, depth, keymode)
                items.append(e)
                count += 1
            items.sort()
            for e in items:
                payload += e
        else:
            for x in obj:
                _pack(x, payload, canonical, depth, keymode)
                count += 1
        if count != n:
            raise RuntimeError("Set changed size during iteration")
        _ext_header(out, EXT_TUPLE if t is tuple else EXT_SET if t is set else EXT_FROZENSET,
                    len(payload))
        out += payload
    elif t is _datetime:
        payload = bytearray(_s_dt.pack(obj.year, obj.month, obj.day, obj.hour,
                                       obj.minute, obj.second))
        payload += obj.microsecond.to_bytes(3, "big")
        payload.append(obj.fold)
        _pack_tzinfo(payload, obj.tzinfo, keymode)
        _ext_header(out, EXT_DATETIME, len(payload))
        out += payload
    elif t is _date:
        _ext_header(out, EXT_DATE, 4)
        out += _s_H.pack(obj.year)
        out.append(obj.month)
        out.append(obj.day)
    elif t is _time:
        payload = bytearray((obj.hour, obj.minute, obj.second))
        payload += obj.microsecond.to_bytes(3, "big")
        payload.append(obj.fold)
        _pack_tzinfo(payload, obj.tzinfo, keymode)
        _ext_header(out, EXT_TIME, len(payload))
        out += payload
    elif t is _Decimal:
        b = _utf8(str(obj))
        _ext_header(out, EXT_DECIMAL, len(b))
        out += b
    elif t is _UUID:
        out += b"\xd8\x09"
        out += obj.int.to_bytes(16, "big")
    else:
        if keymode is not None:
            meth = _find_cache_key(obj)
            if meth is not None:
                if depth >= MAX_DEPTH:
                    raise _too_deep()
                _pack(meth(), out, canonical, depth + 1, keymode)
                return
            keymode.unsupported_type = t
            keymode.unsupported_is_tzinfo = False
        raise SerializationError("cannot serialize object of type %r" % _type_name(t))


def dumps(obj: Any, /, canonical: bool = False) -> bytes:
    """Encode obj in pyredcache's value format (MessagePack with extension
    types; see docs/format.rst) and return the bytes.

    Supported, as exact types (subclasses are refused): None, bool, int (any
    size), float, str, bytes, list, dict, tuple, set, frozenset,
    datetime.datetime/date/time (naive, or with a datetime.timezone or a
    zoneinfo.ZoneInfo made from a key), decimal.Decimal and uuid.UUID.  Dict
    keys may be any supported hashable value.

    With ``canonical=True`` equal values give equal bytes in every process:
    dict entries and set items are sorted by their encoded bytes and every
    float NaN is written as the one quiet NaN ``0x7ff8000000000000``.  Cache
    keys use this.

    Raises SerializationError, and returns nothing, when obj or anything in
    it has an unsupported type (the message names it), a tzinfo that is not
    supported, a str with lone surrogates, a length over 2**32-1, or nests
    containers deeper than :data:`MAX_DEPTH` levels.
    """
    out = bytearray()
    try:
        _pack(obj, out, bool(canonical), 0, None)
    except RecursionError as exc:  # a deep caller stack; never in C
        raise _too_deep() from exc
    return bytes(out)


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


def _err(msg: str, at: int) -> SerializationError:
    return SerializationError("%s at offset %d" % (msg, at))


def _truncated(at: int) -> SerializationError:
    return _err("truncated data", at)


def _bad_payload(what: str, at: int, detail: str) -> SerializationError:
    return SerializationError("invalid %s payload at offset %d: %s" % (what, at, detail))


_EXT_NAMES = {
    EXT_TUPLE: "tuple",
    EXT_SET: "set",
    EXT_FROZENSET: "frozenset",
    EXT_BIGINT: "big int",
    EXT_DATETIME: "datetime",
    EXT_DATE: "date",
    EXT_TIME: "time",
    EXT_DECIMAL: "decimal",
    EXT_UUID: "uuid",
}


def _decode_str(data: bytes, start: int, pos: int, n: int) -> str:
    try:
        return data[pos:pos + n].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SerializationError("invalid str at offset %d: %s" % (start, exc)) from exc


def _unpack(data: bytes, pos: int, end: int, depth: int) -> Any:
    """Decode the value at data[pos:end]; returns (value, next position).
    depth is the nesting level of the value (0 for the top-level value).
    One Python frame per nesting level."""
    if pos >= end:
        raise _truncated(pos)
    start = pos
    b = data[pos]
    pos += 1
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if b <= 0x8F:
        n = b & 0x0F
        kind = 0x80
    elif b <= 0x9F:
        n = b & 0x0F
        kind = 0x90
    elif b <= 0xBF:
        n = b & 0x1F
        if n > end - pos:
            raise _truncated(start)
        return _decode_str(data, start, pos, n), pos + n
    elif b == 0xC0:
        return None, pos
    elif b == 0xC2:
        return False, pos
    elif b == 0xC3:
        return True, pos
    elif b == 0xC1:
        raise _err("invalid type byte 0xc1", start)
    elif 0xC4 <= b <= 0xC6 or 0xD9 <= b <= 0xDB:
        width = (1, 2, 4)[(b - 0xC4) if b <= 0xC6 else (b - 0xD9)]
        if width > end - pos:
            raise _truncated(start)
        n = int.from_bytes(data[pos:pos + width], "big")
        pos += width
        if n > end - pos:
            raise _truncated(start)
        if b <= 0xC6:
            return data[pos:pos + n], pos + n
        return _decode_str(data, start, pos, n), pos + n
    elif 0xC7 <= b <= 0xC9 or 0xD4 <= b <= 0xD8:
        if b <= 0xC9:
            width = (1, 2, 4)[b - 0xC7]
            if width + 1 > end - pos:
                raise _truncated(start)
            n = int.from_bytes(data[pos:pos + width], "big")
            pos += width
        else:
            n = 1 << (b - 0xD4)
            if 1 > end - pos:
                raise _truncated(start)
        code = _s_b.unpack_from(data, pos)[0]
        pos += 1
        if n > end - pos:
            raise _truncated(start)
        if code < EXT_TUPLE or code > EXT_FROZENSET:
            return _unpack_ext(data, start, code, pos, pos + n), pos + n
        # A container: its items are decoded here, so that a nesting level
        # costs one Python frame (the recursion limit allows MAX_DEPTH).
        pend = pos + n
        count, pos = _ext_array_header(data, start, code, pos, pend, depth)
        depth += 1
        items = []
        append = items.append
        for _ in range(count):
            ipos = pos
            item, pos = _unpack(data, pos, pend, depth)
            if code != EXT_TUPLE:
                try:
                    hash(item)
                except TypeError as exc:
                    raise _err("unhashable set item of type %r" % _type_name(type(item)),
                               ipos) from exc
            append(item)
        if pos != pend:
            raise _bad_payload(_EXT_NAMES[code], start, "trailing bytes")
        if code == EXT_TUPLE:
            return tuple(items), pos
        if code == EXT_SET:
            return set(items), pos
        return frozenset(items), pos
    elif b <= 0xD3:  # 0xca..0xd3: fixed-size numbers
        s = _FIXED[b - 0xCA]
        if s.size > end - pos:
            raise _truncated(start)
        return s.unpack_from(data, pos)[0], pos + s.size
    else:  # 0xdc..0xdf: array16/32, map16/32
        width = 2 if b in (0xDC, 0xDE) else 4
        if width > end - pos:
            raise _truncated(start)
        n = int.from_bytes(data[pos:pos + width], "big")
        pos += width
        kind = 0x90 if b <= 0xDD else 0x80

    # array or map of n items starting at pos
    if depth >= MAX_DEPTH:
        raise _err("nesting deeper than %d levels" % MAX_DEPTH, start)
    depth += 1
    if kind == 0x90:
        if n > end - pos:
            raise _truncated(start)
        result = []
        append = result.append
        for _ in range(n):
            item, pos = _unpack(data, pos, end, depth)
            append(item)
        return result, pos
    if n > (end - pos) // 2:
        raise _truncated(start)
    d = {}
    for _ in range(n):
        kpos = pos
        k, pos = _unpack(data, pos, end, depth)
        v, pos = _unpack(data, pos, end, depth)
        try:
            d[k] = v
        except TypeError as exc:
            raise _err("unhashable map key of type %r" % _type_name(type(k)), kpos) from exc
    return d, pos


_FIXED = [
    _s_f, _s_d,                     # ca cb
    struct.Struct(">B"), _s_H, _s_I, _s_Q,   # cc..cf
    _s_b, _s_h, _s_i, _s_q,         # d0..d3
]


def _ext_array_header(data: bytes, start: int, code: int, pos: int, end: int,
                      depth: int) -> Tuple[int, int]:
    """The array header opening the payload data[pos:end] of a tuple, set or
    frozenset whose extension header starts at `start`: (count, position of
    the first item)."""
    what = _EXT_NAMES[code]
    if depth >= MAX_DEPTH:
        raise _err("nesting deeper than %d levels" % MAX_DEPTH, start)
    n = end - pos
    if n < 1:
        raise _bad_payload(what, start, "not an array")
    b = data[pos]
    if 0x90 <= b <= 0x9F:
        count = b & 0x0F
        pos += 1
    elif b == 0xDC or b == 0xDD:
        width = 2 if b == 0xDC else 4
        if width + 1 > n:
            raise _bad_payload(what, start, "truncated")
        count = int.from_bytes(data[pos + 1:pos + 1 + width], "big")
        pos += 1 + width
    else:
        raise _bad_payload(what, start, "not an array")
    if count > end - pos:
        raise _bad_payload(what, start, "truncated")
    return count, pos


def _unpack_ext(data: bytes, start: int, code: int, pos: int, end: int) -> Any:
    """Decode the payload data[pos:end] of extension `code` (not a
    container) whose header starts at `start`."""
    n = end - pos
    if code == EXT_BIGINT:
        if n == 0:
            raise _bad_payload("big int", start, "empty")
        b0 = data[pos]
        if n > 1:
            b1 = data[pos + 1]
            if (b0 == 0 and b1 < 0x80) or (b0 == 0xFF and b1 >= 0x80):
                raise _bad_payload("big int", start, "not minimal")
        if n < 9 or (n == 9 and b0 == 0):
            raise _bad_payload("big int", start, "fits a MessagePack int")
        return int.from_bytes(data[pos:end], "big", signed=True)
    if code == EXT_DATETIME:
        if n < 12:
            raise _bad_payload("datetime", start, "too short")
        year, month, day, hour, minute, second = _s_dt.unpack_from(data, pos)
        us = int.from_bytes(data[pos + 7:pos + 10], "big")
        fold = data[pos + 10]
        tz = _unpack_tzinfo(data, start, "datetime", pos + 11, end)
        try:
            return _datetime(year, month, day, hour, minute, second, us, tz, fold=fold)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _bad_payload("datetime", start, str(exc)) from exc
    if code == EXT_DATE:
        if n != 4:
            raise _bad_payload("date", start, "wrong length")
        try:
            return _date(_s_H.unpack_from(data, pos)[0], data[pos + 2], data[pos + 3])
        except (ValueError, TypeError, OverflowError) as exc:
            raise _bad_payload("date", start, str(exc)) from exc
    if code == EXT_TIME:
        if n < 8:
            raise _bad_payload("time", start, "too short")
        hour, minute, second = data[pos], data[pos + 1], data[pos + 2]
        us = int.from_bytes(data[pos + 3:pos + 6], "big")
        fold = data[pos + 6]
        tz = _unpack_tzinfo(data, start, "time", pos + 7, end)
        try:
            return _time(hour, minute, second, us, tz, fold=fold)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _bad_payload("time", start, str(exc)) from exc
    if code == EXT_DECIMAL:
        try:
            return _Decimal(data[pos:end].decode("utf-8"))
        except MemoryError:
            raise
        except Exception as exc:  # UnicodeDecodeError, decimal.InvalidOperation
            raise _bad_payload("decimal", start, str(exc)) from exc
    if code == EXT_UUID:
        if n != 16:
            raise _bad_payload("uuid", start, "wrong length")
        return _UUID(bytes=bytes(data[pos:end]))
    raise _err("unknown extension type %d" % code, start)


def _unpack_tzinfo(data: bytes, start: int, what: str, pos: int, end: int) -> Any:
    """The tzinfo block data[pos:end] of a datetime or time payload."""
    n = end - pos
    tag = data[pos]
    if tag == 0:
        if n != 1:
            raise _bad_payload(what, start, "trailing bytes")
        return None
    if tag == 1 or tag == 2:
        if n < 9 or (tag == 1 and n != 9):
            raise _bad_payload(what, start, "wrong tzinfo length")
        off = _s_q.unpack_from(data, pos + 1)[0]
        try:
            delta = datetime.timedelta(microseconds=off)
            if tag == 1:
                return _timezone(delta)
            return _timezone(delta, data[pos + 9:end].decode("utf-8"))
        except (ValueError, TypeError, OverflowError) as exc:
            raise _bad_payload(what, start, str(exc)) from exc
    if tag == 3:
        try:
            return _ZoneInfo(data[pos + 1:end].decode("utf-8"))
        except MemoryError:
            raise
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError, ...
            raise _bad_payload(what, start, str(exc)) from exc
    raise _bad_payload(what, start, "unknown tzinfo tag %d" % tag)


def loads(data: Any, /) -> Any:
    """Decode bytes written by :func:`dumps` (or by any MessagePack producer,
    for the types MessagePack has) and return the value.

    data is bytes, bytearray, memoryview or any C-contiguous buffer.  The
    whole buffer must be exactly one value.

    Raises TypeError when data is not a bytes-like object, and
    SerializationError (never anything else for bad data) when the bytes are
    truncated, followed by trailing bytes, use the reserved type byte 0xc1,
    hold an unknown extension type, invalid UTF-8, an unhashable map key or
    set item, an invalid extension payload, or containers nested deeper than
    :data:`MAX_DEPTH` levels.  No length is trusted before it is checked
    against the remaining input.
    """
    if type(data) is not bytes:
        try:
            mv = memoryview(data)
        except TypeError:
            raise TypeError(
                "loads() argument must be a bytes-like object, not %r"
                % _type_name(type(data))
            ) from None
        if not mv.c_contiguous:
            raise BufferError("memoryview: underlying buffer is not C-contiguous")
        data = mv.tobytes()
    end = len(data)
    try:
        value, pos = _unpack(data, 0, end, 0)
    except RecursionError as exc:  # a deep caller stack; never in C
        raise SerializationError(
            "nesting deeper than the Python recursion limit allows"
        ) from exc
    if pos != end:
        raise _err("%d trailing bytes after the value" % (end - pos), pos)
    return value
