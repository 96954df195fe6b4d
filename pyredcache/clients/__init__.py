"""The clients layer: the one object a feature talks to, whatever the topology.

A client moves commands and replies; it knows nothing of caching.

================  =========================================================
``client.py``     :class:`Client`, one server over a pool of core
                  connections; :func:`multi_pipeline` over several clients
``urls.py``       :data:`OPTIONS`, the one table of connection options, and
                  :func:`parse_url`
``shards.py``     :class:`ShardedClient` and :class:`HostConfig`: client-side
                  sharding over independent servers
``routers.py``    which server a key lives on (CRC32 buckets, ketama ring)
``adapters.py``   :func:`as_client` (a client from what a user holds) and
                  :class:`RedisPyAdapter` over a redis-py-compatible client
``scripts.py``    :class:`Script`, a Lua script run by EVALSHA
================  =========================================================
"""

from .adapters import RedisPyAdapter, as_client
from .client import Client, multi_pipeline
from .routers import BaseRedisRouter, RedisConsistentHashRouter, RedisCRC32HashRouter
from .scripts import Script
from .shards import HostConfig, ShardedClient
from .urls import DEFAULT_TIMEOUT, OPTIONS, Option, parse_url

__all__ = ["BaseRedisRouter", "Client", "DEFAULT_TIMEOUT", "HostConfig", "OPTIONS", "Option",
           "RedisCRC32HashRouter", "RedisConsistentHashRouter", "RedisPyAdapter", "Script",
           "ShardedClient", "as_client", "multi_pipeline", "parse_url"]
