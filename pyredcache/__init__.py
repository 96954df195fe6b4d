"""pyredcache: a Redis caching toolkit whose hot paths are C over hiredis.

Re-exports only; see the submodules for the code.
"""

from typing import Any

from . import _compat
from ._compat import implementation
from .cache import NO_VALUE, BaseCache, Cache, CacheCluster
from .clients import (
    BaseRedisRouter,
    Client,
    HostConfig,
    RedisConsistentHashRouter,
    RedisCRC32HashRouter,
    ShardedClient,
)
from .containers import RedisCounter, RedisDeque, RedisDict, RedisList, RedisSet
from .exceptions import (
    CacheConfigurationError,
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
    CircuitOpenError,
    ProtocolError,
    PyRedCacheError,
    ReplyTypeError,
    ResponseError,
    SerializationError,
    TimeoutError,
)
from .lock import Lock, Redlock, synchronize
from .managers import (
    CacheManager,
    default_cache,
    get_current_connection,
    pop_connection,
    push_connection,
    use_connection,
)
from .nextid import NextId
from .region import (
    CacheRegion,
    Region,
    RegionCache,
    RegionRegistry,
    cache_region,
    invalidate_function,
    invalidate_region,
)
from .serializers import (
    BaseSerializer,
    JSONSerializer,
    NativeSerializer,
    PickleSerializer,
    SignedSerializer,
)
from .testing import FakeRedisCache, NullCache
from .timer import ContextTimer


#: pottery 3's spelling of :class:`NextId`.
NextID = NextId


def __getattr__(name: str) -> Any:
    # Promise is the core's type, read when asked for (as every other core
    # name is read when an object is built), so it follows the core in use.
    if name == "Promise":
        return _compat.core.Promise
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


__version__ = "0.1.0.dev0"

__all__ = [
    "implementation",
    "BaseCache",
    "Cache",
    "CacheCluster",
    "NullCache",
    "FakeRedisCache",
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
    "NextID",
    "RedisDict",
    "RedisSet",
    "RedisList",
    "RedisDeque",
    "RedisCounter",
    "Region",
    "RegionCache",
    "CacheRegion",
    "RegionRegistry",
    "cache_region",
    "invalidate_region",
    "invalidate_function",
    "CacheManager",
    "default_cache",
    "use_connection",
    "push_connection",
    "pop_connection",
    "get_current_connection",
    "ContextTimer",
    "BaseSerializer",
    "JSONSerializer",
    "NativeSerializer",
    "SignedSerializer",
    "PickleSerializer",
    "PyRedCacheError",
    "ConnectionError",
    "TimeoutError",
    "CircuitOpenError",
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
    "CacheConfigurationError",
]
