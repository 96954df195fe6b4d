"""pyredcache: a Redis caching toolkit whose hot paths are C over hiredis.

Re-exports only; see the submodules for the code.
"""

from . import _compat
from ._compat import implementation
from .cache import NO_VALUE, BaseCache, Cache, CacheCluster
from .client import Client
from .containers import RedisCounter, RedisDeque, RedisDict, RedisList, RedisSet
from .exceptions import (
    ConnectionError,
    ExtendUnlockedLock,
    InefficientAccessWarning,
    KeyExistsError,
    LockError,
    LockTimeout,
    QuorumNotAchieved,
    ReleaseUnlockedLock,
    TooManyExtensions,
    WrongTypeError,
    InvalidSignature,
    PromiseError,
    ProtocolError,
    PyRedCacheError,
    ReplyTypeError,
    ResponseError,
    SerializationError,
    TimeoutError,
)
from .lock import Lock, Redlock, synchronize
from .nextid import NextId
from .routers import BaseRedisRouter, RedisConsistentHashRouter, RedisCRC32HashRouter
from .serializers import (
    BaseSerializer,
    JSONSerializer,
    NativeSerializer,
    PickleSerializer,
    SignedSerializer,
)
from .shards import HostConfig, ShardedClient
from .testing import NullCache
from .timer import ContextTimer

# The C type when the extension is in use, else the pure twin.
Promise = _compat.core.Promise

__version__ = "0.1.0.dev0"

__all__ = [
    "implementation",
    "BaseCache",
    "Cache",
    "CacheCluster",
    "NullCache",
    "NO_VALUE",
    "Client",
    "ShardedClient",
    "HostConfig",
    "BaseRedisRouter",
    "RedisCRC32HashRouter",
    "RedisConsistentHashRouter",
    "Promise",
    "Lock",
    "Redlock",
    "synchronize",
    "NextId",
    "RedisDict",
    "RedisSet",
    "RedisList",
    "RedisDeque",
    "RedisCounter",
    "ContextTimer",
    "BaseSerializer",
    "JSONSerializer",
    "NativeSerializer",
    "SignedSerializer",
    "PickleSerializer",
    "PyRedCacheError",
    "ConnectionError",
    "TimeoutError",
    "ProtocolError",
    "ReplyTypeError",
    "ResponseError",
    "SerializationError",
    "InvalidSignature",
    "PromiseError",
    "LockError",
    "LockTimeout",
    "QuorumNotAchieved",
    "ReleaseUnlockedLock",
    "ExtendUnlockedLock",
    "TooManyExtensions",
    "KeyExistsError",
    "WrongTypeError",
    "InefficientAccessWarning",
]
