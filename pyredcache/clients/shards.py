"""Client-side sharding: one client over several independent Redis servers.

:class:`ShardedClient` has the methods of :class:`~pyredcache.Client`
and routes each key to the server its router names (see
:mod:`pyredcache.clients.routers`).  Commands on many keys (``mget``, ``delete``,
``exists``, ``pipeline_execute``) are split by server and sent as one
pipeline per server, every server in flight at once (``multi_pipeline`` in
the core: non-blocking sockets and one ``poll()``), and the replies come
back in the caller's order.

:class:`HostConfig` describes one server, with rc's signature and repr
(``rc.redis_cluster.HostConfig``).
"""

from __future__ import annotations

from typing import Any, Hashable, Iterator, Mapping, Sequence

from .. import _compat
from ..exceptions import ConnectionError, ReplyTypeError, ResponseError
from .adapters import as_client
from .client import Client, multi_pipeline, set_command
from .routers import BaseRedisRouter, RedisCRC32HashRouter
from .urls import DEFAULT_TIMEOUT, OPTIONS

__all__ = ["HostConfig", "ShardedClient"]

# Options pool_options may carry: every Client option but the address ones
# that a HostConfig gives.
_HOST_OPTIONS = ("host", "port", "unix_socket_path", "db", "password")
_POOL_OPTIONS = tuple(name for name in OPTIONS if name not in _HOST_OPTIONS)


class HostConfig:
    """One server of a client-side shard (rc's ``HostConfig``).

    :param host_name: the name the router and error messages use (any
        hashable: rc's examples use ints and strs).
    :param host: server host name or address (str).
    :param port: server TCP port (int).
    :param unix_socket_path: connect over this unix socket instead of TCP.
    :param db: database number (int).
    :param password: password for AUTH (str or None).
    :param ssl: TLS.  Not supported by the core yet: True raises ValueError.
    :param ssl_options: TLS options (must be None while ssl is False).

    Its repr is rc's, ``<HostConfig db=0 host=localhost port=6379
    unix_socket_path=None>``: the consistent-hash router places a host on
    its ring by it, so keep host/port/db spelled as in rc to keep keys on
    the same servers.
    """

    def __init__(
        self,
        host_name: Hashable,
        host: str = "localhost",
        port: int = 6379,
        unix_socket_path: str | None = None,
        db: int = 0,
        password: str | None = None,
        ssl: bool = False,
        ssl_options: Mapping[str, Any] | None = None,
    ) -> None:
        if ssl or ssl_options:
            raise ValueError(
                "host %r: TLS (ssl=True) is not supported yet; use a TLS-terminating "
                "proxy such as stunnel, or connect over a unix socket" % (host_name,)
            )
        self.host_name = host_name
        self.host = host
        self.port = port
        self.unix_socket_path = unix_socket_path
        self.db = db
        self.password = password
        self.ssl = ssl
        self.ssl_options = ssl_options

    def __repr__(self) -> str:
        # rc's repr, character for character: the ketama ring depends on it.
        identity = {
            "host": self.host,
            "port": self.port,
            "unix_socket_path": self.unix_socket_path,
            "db": self.db,
        }
        return "<%s %s>" % (
            type(self).__name__,
            " ".join("%s=%s" % item for item in sorted(identity.items())),
        )


def _host_configs(hosts: Mapping[Hashable, Any],
                  given: dict[Hashable, Any] | None = None) -> dict[Hashable, HostConfig]:
    """HostConfig by host name.  A host given as a client of its own (a
    ``redis.Redis``, ``fakeredis.FakeRedis``, a :class:`~pyredcache.Client`)
    goes into ``given`` as the client to use (see
    :func:`~pyredcache.clients.as_client`), with a HostConfig of its address
    when it has one."""
    if not isinstance(hosts, Mapping):
        raise TypeError("hosts must be a mapping of host name to options, not %s"
                        % type(hosts).__name__)
    if not hosts:
        raise ValueError("hosts is empty: give at least one server")
    configs: dict[Hashable, HostConfig] = {}
    for name, options in hosts.items():
        if given is not None and callable(getattr(options, "execute_command", None)):
            client = given[name] = as_client(options)
            configs[name] = _config_of(name, client)
        elif isinstance(options, HostConfig):
            if options.host_name != name:
                raise ValueError("hosts[%r] is a HostConfig named %r" % (name, options.host_name))
            configs[name] = options
        elif isinstance(options, Mapping):
            if "host_name" in options:
                raise TypeError("hosts[%r]: the host name is the key, not an option" % (name,))
            try:
                configs[name] = HostConfig(name, **options)
            except TypeError as exc:
                raise TypeError("hosts[%r]: %s" % (name, exc)) from None
        else:
            raise TypeError("hosts[%r] must be a dict of HostConfig options, a HostConfig "
                            "or a client, not %s" % (name, type(options).__name__))
    return configs


def _config_of(name: Hashable, client: Any) -> HostConfig:
    """The HostConfig of a host given as a client: its address when it is
    one of ours (the consistent-hash ring then places it as rc would), else
    one naming the host, so that every such host has a ring position of its
    own."""
    if isinstance(client, Client):
        kw = client.connection_kwargs
        return HostConfig(name, kw["host"], kw["port"], kw["unix_socket_path"], kw["db"],
                          kw["password"])
    return HostConfig(name, host="client:%s" % (name,), port=0)


class ShardedClient:
    """A client over several Redis servers, each key on the one its router
    names.

    :param hosts: ``{host_name: {"host": ..., "port": ..., "db": ...}}``
        (the options of :class:`HostConfig`), ``{host_name: HostConfig}``,
        or ``{host_name: client}``: a client of your own for that host (a
        ``redis.Redis`` over TCP or a unix socket, used through our core
        with its settings; a ``fakeredis.FakeRedis`` or other
        redis-py-compatible client, used through it, after the core's
        servers in a multi-key command).  ``pool_cls`` and
        ``pool_options`` do not apply to such a host.
    :param router_cls: a :class:`~pyredcache.clients.routers.BaseRedisRouter`
        subclass; default :class:`~pyredcache.clients.routers.RedisCRC32HashRouter`.
    :param router_options: keyword arguments for ``router_cls`` (dict).
    :param pool_cls: the per-server client class, a subclass of
        :class:`~pyredcache.Client` (default Client).
    :param pool_options: keyword arguments for every per-server client,
        any :class:`~pyredcache.Client` option
        (:data:`~pyredcache.clients.urls.OPTIONS`) but the address ones a
        HostConfig gives: ``socket_timeout`` (seconds, default
        ``poller_timeout``), ``socket_connect_timeout`` (seconds, default
        1.0), ``busy_poll`` (microseconds), ``username``,
        ``max_idle_connections``.
    :param max_concurrency: how many servers a multi-key command has in
        flight at once (int >= 1).
    :param poller_timeout: seconds any wait for one server may last (float
        > 0), default 1.0; a server silent that long fails with
        TimeoutError.  It bounds each wait of a multi-key command (the
        fan-out, all servers at once), and is the per-server clients'
        ``socket_timeout`` (each wait for a reply of a single-key command)
        unless ``pool_options`` gives one: a command on one key goes
        straight to its server's client, not through the fan-out, so that
        it costs no more than on one server.  None waits for ever (not
        recommended).  Connecting is bounded by ``socket_connect_timeout``
        either way.

    Errors: a server that is down, drops the connection or times out
    raises :class:`~pyredcache.exceptions.ConnectionError` (TimeoutError is
    one) whose message starts with ``cache host <name>:``.  In a multi-key
    command the other servers' replies are still read to the end, so their
    connections stay usable; writes they received were made.
    """

    def __init__(
        self,
        hosts: Mapping[Hashable, Any],
        router_cls: type[BaseRedisRouter] | None = None,
        router_options: Mapping[str, Any] | None = None,
        pool_cls: type[Client] | None = None,
        pool_options: Mapping[str, Any] | None = None,
        max_concurrency: int = 64,
        poller_timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        given: dict[Hashable, Any] = {}
        self.hosts = _host_configs(hosts, given)
        if router_cls is None:
            router_cls = RedisCRC32HashRouter
        if not (isinstance(router_cls, type) and issubclass(router_cls, BaseRedisRouter)):
            raise TypeError("router_cls must be a BaseRedisRouter subclass, not %r"
                            % (router_cls,))
        if pool_cls is None:
            pool_cls = Client
        if not (isinstance(pool_cls, type) and issubclass(pool_cls, Client)):
            raise TypeError("pool_cls must be pyredcache.Client or a subclass, not %r"
                            % (pool_cls,))
        options = dict(pool_options or {})
        unknown = set(options) - set(_POOL_OPTIONS)
        if unknown:
            raise TypeError("unknown pool_options: %s (known: %s)"
                            % (", ".join(sorted(unknown)), ", ".join(sorted(_POOL_OPTIONS))))
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise TypeError("max_concurrency must be an int")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1, got %d" % max_concurrency)
        self._core = _compat.core
        # validates poller_timeout now (the same check multi_pipeline makes)
        self._core.multi_pipeline([], poller_timeout, max_concurrency)
        self.max_concurrency = max_concurrency
        self.poller_timeout = poller_timeout
        self.router = router_cls(self.hosts, **dict(router_options or {}))
        # one bound for every wait on a server, single-key or fan-out
        options.setdefault("socket_timeout", poller_timeout)
        self.clients: dict[Hashable, Any] = {
            name: given[name] if name in given else pool_cls(
                cfg.host, cfg.port, unix_socket_path=cfg.unix_socket_path, db=cfg.db,
                password=cfg.password, **options,
            )
            for name, cfg in self.hosts.items()
        }

    def __repr__(self) -> str:
        return "<pyredcache.ShardedClient %d hosts, %s>" % (
            len(self.hosts), type(self.router).__name__)

    # -- routing ------------------------------------------------------------------

    def get_host_for_key(self, key: str | bytes) -> Hashable:
        """The name of the host that holds key."""
        return self.router.get_host_for_key(key)

    def client_for_key(self, key: str | bytes) -> Client:
        """The :class:`~pyredcache.Client` of the host holding key."""
        return self.clients[self.router.get_host_for_key(key)]

    def _error(self, failed: Sequence[tuple[Hashable, BaseException]]) -> BaseException:
        name, exc = failed[0]
        message = "cache host %r: %s" % (name, exc)
        if len(failed) > 1:
            message += " (also failed: %s)" % ", ".join(repr(n) for n, _ in failed[1:])
        return type(exc)(message)

    def _multi_pipeline(self, work: Mapping[Hashable, list]) -> dict[Hashable, list]:
        """Run one pipeline per host (:func:`~pyredcache.clients.client.multi_pipeline`),
        all in flight at once; replies by host.  The first host that failed
        raises, naming every host that failed."""
        names = list(work)
        results = multi_pipeline([(self.clients[name], work[name]) for name in names],
                                 self.poller_timeout, self.max_concurrency)
        failed = [(name, r) for name, r in zip(names, results) if isinstance(r, BaseException)]
        if failed:
            raise self._error(failed) from failed[0][1]
        return dict(zip(names, results))

    # -- commands on one key ----------------------------------------------------------

    def execute_command(self, *args: Any) -> Any:
        """Run one command on the host of its first key (``args[1]``)."""
        if len(args) < 2:
            raise TypeError(
                "ShardedClient routes a command by its first key; %r has none: "
                "use clients[host_name].execute_command()" % (args[:1],)
            )
        name = self.router.get_host_for_key(args[1])
        try:
            return self.clients[name].execute_command(*args)
        except ConnectionError as exc:
            raise self._error([(name, exc)]) from exc

    def get(self, key: str | bytes) -> bytes | None:
        """GET on the host of key."""
        name = self.router.get_host_for_key(key)
        try:
            return self.clients[name].get(key)
        except ConnectionError as exc:
            raise self._error([(name, exc)]) from exc

    def set(self, key: str | bytes, value: bytes, ex: float | None = None) -> bool:
        """SET key value [EX|PX] on the host of key (``ex`` in seconds)."""
        return self.execute_command(*set_command(key, value, ex)) == b"OK"

    def ttl(self, key: str | bytes) -> int:
        """TTL in seconds on the host of key."""
        return self.execute_command("TTL", key)

    # -- commands on many keys: one pipeline per host, in parallel ----------------------

    def _per_host(self, command: str, keys: Sequence[Any]) -> Iterator[Any]:
        groups = self.router.partition(keys)
        replies = self._multi_pipeline({name: [(command, *ks)] for name, (_, ks) in groups.items()})
        for name in groups:
            reply = replies[name][0]
            if isinstance(reply, ResponseError):
                raise reply
            yield reply

    def mget(self, keys: Sequence[str | bytes]) -> list:
        """MGET over all hosts: values in the order of keys, None where
        missing.  One MGET per host, all hosts in flight at once."""
        if not keys:
            return []
        groups = self.router.partition(keys)
        replies = self._multi_pipeline({name: [("MGET", *ks)] for name, (_, ks) in groups.items()})
        out: list = [None] * len(keys)
        for name, (positions, ks) in groups.items():
            values = replies[name][0]
            _place_mget_reply(out, name, positions, ks, values)
        return out

    def mget_partial(self, keys: Sequence[str | bytes]) -> tuple[list, list]:
        """:meth:`mget` that keeps what the hosts that answered gave:
        ``(values, failed)``, values in the order of keys with None for
        each key of a host that could not be used, and ``failed`` the
        ``(host name, ConnectionError)`` pairs of those hosts (empty when
        all answered).  For a cache that fails open (``ignore_errors``):
        one dead host costs its own keys, not all of them.  An error reply
        raises as in :meth:`mget`."""
        if not keys:
            return [], []
        groups = self.router.partition(keys)
        names = list(groups)
        results = multi_pipeline(
            [(self.clients[name], [("MGET", *groups[name][1])]) for name in names],
            self.poller_timeout, self.max_concurrency)
        out: list = [None] * len(keys)
        failed = []
        for name, result in zip(names, results):
            positions, ks = groups[name]
            if isinstance(result, ConnectionError):
                failed.append((name, result))
                continue
            if isinstance(result, BaseException):
                raise result
            _place_mget_reply(out, name, positions, ks, result[0])
        return out, failed

    def delete(self, *keys: str | bytes) -> int:
        """DEL over all hosts: how many of the keys existed."""
        if not keys:
            return 0
        return sum(self._per_host("DEL", keys))

    def exists(self, *keys: str | bytes) -> int:
        """EXISTS over all hosts: how many of the keys exist."""
        if not keys:
            return 0
        return sum(self._per_host("EXISTS", keys))

    def pipeline_execute(self, commands: Sequence[Sequence[Any]]) -> list:
        """Run commands, each on the host of its first key (``command[1]``),
        one pipeline per host, all hosts in flight at once.  Replies come
        back in the order of commands, error replies as ResponseError
        instances in their slots."""
        commands = list(commands)
        if not commands:
            return []
        try:
            keys = [command[1] for command in commands]
        except (IndexError, TypeError, KeyError):
            raise TypeError("ShardedClient.pipeline_execute routes each command by its "
                            "first key: every command needs one") from None
        groups = self.router.partition(keys)
        replies = self._multi_pipeline(
            {name: [commands[i] for i in positions] for name, (positions, _) in groups.items()}
        )
        out: list = [None] * len(commands)
        for name, (positions, _) in groups.items():
            for i, reply in zip(positions, replies[name]):
                out[i] = reply
        return out

    # -- every host --------------------------------------------------------------------

    def _all_hosts(self, *command: Any) -> list:
        replies = self._multi_pipeline({name: [command] for name in self.clients})
        return [replies[name][0] for name in self.clients]

    def ping(self) -> bool:
        """PING every host; True when all answer PONG."""
        return all(reply == b"PONG" for reply in self._all_hosts("PING"))

    def flushdb(self) -> bool:
        """FLUSHDB on every host."""
        return all(reply == b"OK" for reply in self._all_hosts("FLUSHDB"))

    def scan_iter(self, match: str | None = None, count: int = 1000) -> Iterator[bytes]:
        """Iterate over the keys of every host (SCAN), host after host."""
        for client in self.clients.values():
            yield from client.scan_iter(match, count)

    def close(self) -> None:
        """Close every idle connection; the client stays usable."""
        for client in self.clients.values():
            client.close()


def _place_mget_reply(out: list, name: Any, positions: Sequence[int], keys: Sequence[Any],
                      values: Any) -> None:
    """Put one host's MGET reply (values, for keys at positions of out)
    into out; an error reply raises, and so does a reply that is not a
    list of one value per key (ReplyTypeError naming the host)."""
    if type(values) is not list or len(values) != len(positions):  # once a host
        if isinstance(values, ResponseError):
            raise values
        exc = ReplyTypeError("MGET", keys[0], values,
                             "an array of %d bulk strings or nils" % len(keys))
        exc.args = ("cache host %r: %s" % (name, exc),)
        raise exc
    for i, value in zip(positions, values):
        out[i] = value
