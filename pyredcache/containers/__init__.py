"""Python containers that live in Redis: pottery's RedisDict, RedisSet,
RedisList, RedisDeque and RedisCounter, with the same API and the same
stored format (JSON text, as pottery writes it), so that pottery users
switch by changing an import and both libraries share the data.

* :class:`RedisDict` (a Redis hash), :class:`RedisCounter` (a hash of
  counts), :class:`RedisSet` (a Redis set), :class:`RedisList` and
  :class:`RedisDeque` (a Redis list).
* They talk to Redis through :func:`pyredcache.clients.as_client`:
  our C client whenever the given client allows it, a redis-py adapter
  otherwise.  Each wait is then bounded by that client's timeouts (1.0
  second each by default for a URL or a :class:`~pyredcache.Client`): a
  server that never answers raises
  :class:`~pyredcache.exceptions.TimeoutError` instead of hanging.
* One round trip per operation where Redis allows; operations that read
  the whole container warn with
  :class:`~pyredcache.exceptions.InefficientAccessWarning`.
"""

from ..exceptions import InefficientAccessWarning, KeyExistsError, WrongTypeError
from ._base import TEMPORARY_PREFIX
from .dict import RedisCounter, RedisDict
from .list import RedisDeque, RedisList
from .set import RedisSet

__all__ = [
    "RedisDict",
    "RedisCounter",
    "RedisSet",
    "RedisList",
    "RedisDeque",
    "KeyExistsError",
    "WrongTypeError",
    "InefficientAccessWarning",
    "TEMPORARY_PREFIX",
]
