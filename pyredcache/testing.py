"""Caches for tests: :class:`NullCache` caches nothing."""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

from .batch import BatchIO
from .cache import BaseCache

__all__ = ["NullCache"]


def _all_miss(keys: list) -> list:
    return [None] * len(keys)


def _store_nothing(commands: list) -> list:
    return [b"OK"] * len(commands)


def _always(value: Any) -> bool:
    return True


class NullCache(BaseCache):
    """A cache that stores nothing, for unit tests (rc's ``NullCache``).

    ``get`` always misses (returns ``default``, ``None`` unless given),
    ``set`` and ``delete`` report success, ``get_many`` returns a ``None``
    per key, and decorated functions run on every call (in
    ``batch_mode()`` they return promises, resolved when the block ends).  It never talks to
    Redis and accepts (and ignores) any constructor arguments.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def get_client(self) -> None:
        return None

    def get(self, key: str | bytes, default: Any = None) -> Any:
        return default

    def set(self, key: str | bytes, value: Any, expire: float | None = None) -> bool:
        return True

    def delete(self, key: str | bytes) -> bool:
        return True

    def get_many(self, *keys: str | bytes) -> list:
        return [None] * len(keys)

    def set_many(self, mapping: Mapping[Any, Any], expire: float | None = None) -> bool:
        return True

    def delete_many(self, *keys: str | bytes) -> bool:
        return True

    def cache(self, key_prefix: str | None = None, expire: float | None = None,
              include_self: bool = False, **options: Any) -> Callable[[Any], Any]:
        current_batch = self._batch_var.get

        def decorator(f: Any) -> Any:
            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                batch = current_batch()
                if batch is not None:  # a promise, run when the batch ends
                    return batch.add(object(), f, args, kwargs, None)
                return f(*args, **kwargs)
            return wrapper
        return decorator

    def _batch_io(self) -> BatchIO:
        # Every key misses and every result bypasses the store: nothing is
        # fetched or written, every call runs.
        return BatchIO(_all_miss, _store_nothing, self.serializer, _always, self._report,
                       self._core.Promise)

    def invalidate(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        return True
