"""Serializers: how cached values become bytes in Redis and back.

The names are rc's: :class:`BaseSerializer`, :class:`JSONSerializer`,
:class:`PickleSerializer`.  A serializer is a class; a cache makes one
instance of it (``serializer_cls()``).

Every serializer raises :class:`~pyredcache.exceptions.SerializationError`
(naming the type) when it cannot encode a value, and when stored bytes
cannot be decoded, so callers handle one exception whatever the format.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from .exceptions import SerializationError

__all__ = ["BaseSerializer", "JSONSerializer", "PickleSerializer"]


class BaseSerializer:
    """Base class for serializers: subclass it and implement both methods.

    ``dumps(obj) -> bytes`` encodes a value for Redis; ``loads(data:
    bytes) -> object`` decodes what ``dumps`` wrote.  Both raise
    :class:`~pyredcache.exceptions.SerializationError` on failure.
    """

    def dumps(self, obj: Any) -> bytes:
        """Encode obj as bytes for Redis."""
        raise NotImplementedError

    def loads(self, data: bytes) -> Any:
        """Decode bytes that :meth:`dumps` produced."""
        raise NotImplementedError


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

    def dumps(self, obj: Any) -> bytes:
        try:
            return self._encoder.encode(obj).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                "JSONSerializer cannot serialize %s: %s" % (_describe(obj, exc), exc)
            ) from None
        except RecursionError:
            raise SerializationError(
                "JSONSerializer cannot serialize a value nested this deep"
            ) from None

    def loads(self, data: bytes) -> Any:
        try:
            return self._decoder.decode(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise SerializationError("stored value is not valid JSON: %s" % exc) from None


class PickleSerializer(BaseSerializer):
    """pickle, highest protocol.

    Stores almost any Python object, but **decoding runs code**: anyone
    who can write to the Redis server can run code in every process that
    reads from it.  Use it only on a Redis that no one else can write to.
    """

    def dumps(self, obj: Any) -> bytes:
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            raise SerializationError(
                "PickleSerializer cannot serialize %s: %s" % (_describe(obj, exc), exc)
            ) from None

    def loads(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except Exception as exc:  # pickle raises almost anything on bad input
            raise SerializationError("stored value is not a valid pickle: %s" % exc) from None


def _describe(obj: Any, exc: BaseException) -> str:
    return "object of type %r" % type(obj).__name__
