"""Serializers: how cached values become bytes in Redis and back.

The names are rc's: :class:`BaseSerializer`, :class:`JSONSerializer`,
:class:`PickleSerializer`; pyredcache adds :class:`NativeSerializer` (the
default: MessagePack with extension types, in C, see :doc:`format`) and
:class:`SignedSerializer` (an HMAC around any other serializer).

A cache takes a serializer class (``serializer_cls=JSONSerializer``), of
which it makes one instance, or a ready instance
(``serializer_cls=SignedSerializer(PickleSerializer(), key)``).

Every serializer raises :class:`~pyredcache.exceptions.SerializationError`
(naming the type) when it cannot encode a value, and when stored bytes
cannot be decoded, so callers handle one exception whatever the format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from typing import Any, Union

from . import _compat
from .exceptions import InvalidSignature, SerializationError

__all__ = [
    "BaseSerializer",
    "NativeSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "SignedSerializer",
]


class BaseSerializer:
    """Base class for serializers: subclass it and implement both methods.

    ``dumps(obj) -> bytes`` encodes a value for Redis; ``loads(data:
    bytes) -> object`` decodes what ``dumps`` wrote, and returns None for
    ``None`` (a nil reply: a missing key), as rc's serializers do.  Both
    raise :class:`~pyredcache.exceptions.SerializationError` on failure.
    A subclass implements :meth:`dumps` and :meth:`loads`; the caches
    never pass ``None`` to ``loads`` themselves.
    """

    def dumps(self, obj: Any) -> bytes:
        """Encode obj as bytes for Redis."""
        raise NotImplementedError

    def loads(self, data: bytes | None) -> Any:
        """Decode bytes that :meth:`dumps` produced; None for None."""
        raise NotImplementedError


class NativeSerializer(BaseSerializer):
    """pyredcache's own format: MessagePack plus extension types (the
    default serializer).

    Round-trips exactly, type and value: None, bool, int of any size,
    float (nan and ±inf too), str, bytes, list, tuple, dict (keys of any
    supported type), set, frozenset, datetime/date/time (naive, fixed
    offset or zoneinfo), Decimal and UUID.  Anything else raises
    SerializationError naming the type.  Decoding never runs code and
    refuses hostile input (truncated, garbage, nesting deeper than 512,
    lengths past the end) with SerializationError.  The common types are
    plain MessagePack, so other languages read them; the format is
    specified in :doc:`format`.  Encoding and decoding are C
    (``pyredcache._core.dumps``/``loads``), or the pure twin.
    """

    def __init__(self) -> None:
        core = _compat.core
        self.dumps = core.dumps  # type: ignore[method-assign]
        self._loads = core.loads

    def loads(self, data: bytes | None) -> Any:
        """Decode bytes that :meth:`dumps` wrote; None for None (a nil
        reply).  SerializationError for bytes that are not a value."""
        if data is None:
            return None
        return self._loads(data)


class JSONSerializer(BaseSerializer):
    """JSON, UTF-8 encoded.

    Readable from any language.  JSON has no tuple, set or bytes: tuples
    come back as lists, and sets, bytes and other objects cannot be stored
    (SerializationError).  Dict keys must be str (int, float, bool and None
    keys are turned into strings by JSON itself).
    """

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
        self._decoder = json.JSONDecoder()
        self._scan = self._decoder.scan_once

    def dumps(self, obj: Any) -> bytes:
        try:
            return self._encoder.encode(obj).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                "JSONSerializer cannot serialize %s: %s" % (_describe(obj), exc)
            ) from None
        except RecursionError:
            raise SerializationError(
                "JSONSerializer cannot serialize a value nested this deep"
            ) from None

    def loads(self, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            text = data.decode("utf-8")
            try:
                # The decoder's C scanner, without decode()'s two regex
                # passes over surrounding whitespace (which dumps never
                # writes); anything else takes the full path below.
                obj, end = self._scan(text, 0)
                if end == len(text):
                    return obj
            except StopIteration:
                pass
            return self._decoder.decode(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise SerializationError("stored value is not valid JSON: %s" % exc) from None


class PickleSerializer(BaseSerializer):
    """pickle, highest protocol.

    Stores almost any Python object, but **decoding runs code**: anyone
    who can write to the Redis server can run code in every process that
    reads from it.  On a Redis that others can write to, wrap it:
    ``SignedSerializer(PickleSerializer(), secret_key)``.
    """

    def dumps(self, obj: Any) -> bytes:
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            raise SerializationError(
                "PickleSerializer cannot serialize %s: %s" % (_describe(obj), exc)
            ) from None

    def loads(self, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return pickle.loads(data)
        except Exception as exc:  # pickle raises almost anything on bad input
            raise SerializationError("stored value is not a valid pickle: %s" % exc) from None


class SignedSerializer(BaseSerializer):
    """Signs what another serializer writes, and checks before it reads.

    ``SignedSerializer(inner, secret_key, *, digestmod='sha256')``

    :param inner: the serializer doing the work (an instance, or a class of
        which one instance is made).
    :param secret_key: the HMAC key (bytes, or str encoded as UTF-8); at
        least 16 bytes.  Every process sharing the cache needs the same key.
    :param digestmod: a :mod:`hashlib` algorithm name (default
        ``'sha256'``).

    Stored bytes are ``b"\\x01" + HMAC(secret_key, payload) + payload``
    (HMAC, RFC 2104).  :meth:`loads` recomputes the HMAC and compares it in
    constant time (:func:`hmac.compare_digest`) before ``inner`` sees a
    byte: an unsigned, truncated or tampered value raises
    :class:`~pyredcache.exceptions.InvalidSignature`, which caches treat as
    a miss.  This is how to use :class:`PickleSerializer` on a Redis that
    others can write to::

        cache = Cache(serializer_cls=SignedSerializer(PickleSerializer(), key))
    """

    VERSION = b"\x01"

    def __init__(
        self,
        inner: Union[BaseSerializer, type],
        secret_key: Union[bytes, str],
        *,
        digestmod: str = "sha256",
    ) -> None:
        if isinstance(inner, type):
            inner = inner()
        if not (callable(getattr(inner, "dumps", None)) and callable(getattr(inner, "loads", None))):
            raise TypeError("inner must be a serializer (with dumps and loads)")
        if isinstance(secret_key, str):
            secret_key = secret_key.encode("utf-8")
        if not isinstance(secret_key, (bytes, bytearray)):
            raise TypeError("secret_key must be bytes or str")
        if len(secret_key) < 16:
            raise ValueError("secret_key must be at least 16 bytes long")
        try:
            size = hashlib.new(digestmod).digest_size
        except (ValueError, TypeError):
            raise ValueError("unknown digestmod %r" % (digestmod,)) from None
        self.inner = inner
        self.digestmod = digestmod
        self._key = bytes(secret_key)
        self._header = len(self.VERSION) + size

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, self.digestmod).digest()

    def dumps(self, obj: Any) -> bytes:
        payload = self.inner.dumps(obj)
        return self.VERSION + self._mac(payload) + payload

    def loads(self, data: bytes | None) -> Any:
        if data is None:
            return None
        data = bytes(data)
        version = len(self.VERSION)
        if len(data) < self._header or data[:version] != self.VERSION:
            raise InvalidSignature("stored value is not signed, or is truncated")
        payload = data[self._header:]
        if not hmac.compare_digest(data[version:self._header], self._mac(payload)):
            raise InvalidSignature("stored value's signature does not match")
        return self.inner.loads(payload)


def _describe(obj: Any) -> str:
    return "object of type %r" % type(obj).__name__
