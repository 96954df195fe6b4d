"""Routers: which server of a client-side shard holds a key.

The classes and their routing are rc's (``rc.redis_router``), so a cache
moved from rc finds every key on the server rc put it on:

* :class:`RedisCRC32HashRouter` (the default): CRC-32 of the key modulo the
  number of hosts, over the sorted host names.  rc ran on Python 2, whose
  ``crc32`` was signed; the same signed value is used here.
* :class:`RedisConsistentHashRouter`: ketama consistent hashing over MD5,
  the ring of rc's ``rc/ketama.py`` (160 points per host, named by the
  host's :class:`~pyredcache.clients.shards.HostConfig` repr), so adding or
  removing a host moves only the keys of that host.

Hashing and ring lookup run in the core (C, or its pure twin).  To route
some other way, subclass :class:`BaseRedisRouter` and implement
:meth:`~BaseRedisRouter.get_host_for_key` (rc's extension point: a router
written for rc works unchanged, and so do rc's
:meth:`~BaseRedisRouter.get_key_for_command` and
:meth:`~BaseRedisRouter.get_host_for_command`, which every router inherits).
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

from .. import _compat

__all__ = ["BaseRedisRouter", "RedisCRC32HashRouter", "RedisConsistentHashRouter"]


class BaseRedisRouter:
    """Base class of routers: maps a key to the name of the host holding it.

    :param hosts: the cluster's hosts, a mapping of host name to
        :class:`~pyredcache.clients.shards.HostConfig`.

    Subclass it and implement :meth:`get_host_for_key` (rc's
    ``rc.BaseRedisRouter`` contract: a subclass that overrides only that
    method routes every command of :class:`~pyredcache.CacheCluster`,
    single-key and multi-key); a subclass may also override
    :meth:`partition` with a faster way to route many keys.  A subclass
    that overrides ``__init__`` calls ``BaseRedisRouter.__init__(self,
    hosts)`` first, as rc's own routers do.

    :raises ValueError: ``hosts`` is empty.
    """

    #: The commands :meth:`get_key_for_command` knows, rc's list: each
    #: takes its key as its first argument.
    KEYED_COMMANDS = frozenset({"GET", "SET", "SETEX", "DEL"})

    def __init__(self, hosts: Mapping[Hashable, Any]) -> None:
        if not hosts:
            raise ValueError("a router needs at least one host")
        self.hosts = hosts

    def get_key_for_command(self, command: str | bytes, args: Any) -> Any:
        """Return the key that ``command`` acts on, rc's way: ``args[0]``
        for ``GET``, ``SET``, ``SETEX`` and ``DEL`` (the first key of a
        ``DEL`` on several keys).

        :param command: the command's name (str or bytes, any case).
        :param args: the command's arguments after its name (a sequence),
            or the key itself (str or bytes, as rc's own tests pass it:
            ``get_key_for_command('GET', 'c') == 'c'``).
        :raises RuntimeError: for any other command, as rc (message: ``The
            command "MGET" is not supported yet.``).
        :raises IndexError: ``args`` is an empty sequence.
        """
        name = command.decode("ascii", "replace") if isinstance(command, bytes) else command
        if not isinstance(name, str) or name.upper() not in self.KEYED_COMMANDS:
            raise RuntimeError('The command "%s" is not supported yet.' % (name,))
        if isinstance(args, (str, bytes)):
            return args
        return args[0]

    def get_host_for_key(self, key: str | bytes) -> Hashable:
        """Return the name of the host that holds ``key`` (str or bytes):
        one of the names of :attr:`hosts`.

        :raises NotImplementedError: in this base class; a subclass
            implements it."""
        raise NotImplementedError

    def get_host_for_command(self, command: str | bytes, args: Any) -> Hashable:
        """Return the name of the host a command goes to:
        ``get_host_for_key(get_key_for_command(command, args))``, as rc.

        :raises RuntimeError: for a command :meth:`get_key_for_command`
            does not know.
        """
        return self.get_host_for_key(self.get_key_for_command(command, args))

    def partition(self, keys: Sequence[str | bytes]) -> dict[Hashable, tuple[list[int], list]]:
        """Group keys by host: ``{host_name: (positions, keys)}``.

        ``positions`` are the indexes in ``keys`` of the host's keys, in
        increasing order; hosts with no key are left out.
        """
        groups: dict[Hashable, tuple[list[int], list]] = {}
        get = self.get_host_for_key
        for i, key in enumerate(keys):
            name = get(key)
            group = groups.get(name)
            if group is None:
                group = groups[name] = ([], [])
            group[0].append(i)
            group[1].append(key)
        return groups


class _CoreRouter(BaseRedisRouter):
    """A router whose hashing is a core object with index() and partition()
    over ``self._names``."""

    _names: tuple
    _ring: Any

    def get_host_for_key(self, key: str | bytes) -> Hashable:
        """Return the name of the host that holds ``key`` (str or bytes).

        Raises TypeError for a key of another type."""
        return self._names[self._ring.index(key)]

    def partition(self, keys: Sequence[str | bytes]) -> dict[Hashable, tuple[list[int], list]]:
        names = self._names
        return {names[i]: group for i, group in enumerate(self._ring.partition(keys))
                if group[0]}


class RedisCRC32HashRouter(_CoreRouter):
    """rc's default router: ``sorted(host names)[crc32(key) mod n]``.

    The CRC-32 is zlib's (IEEE 802.3) of the key's bytes (UTF-8 for str),
    read as a signed 32-bit int as rc's Python 2 ``binascii.crc32`` gave it,
    with Python's floor modulo: for hosts ``{0, 1, 2}``, ``"c"`` goes to 0,
    ``"g"`` to 1 and ``"a"`` to 2, as in rc.  Host names must be mutually
    sortable (all str, or all int).
    """

    def __init__(self, hosts: Mapping[Hashable, Any]) -> None:
        super().__init__(hosts)
        try:
            self._names = tuple(sorted(hosts))
        except TypeError:
            raise TypeError(
                "RedisCRC32HashRouter sorts the host names: use names of one "
                "type (all str or all int)"
            ) from None
        self._ring = _compat.core.Crc32Buckets(len(self._names))


class RedisConsistentHashRouter(_CoreRouter):
    """Ketama consistent hashing over MD5, as rc's ``rc/ketama.py``.

    Each host is put on the ring under the repr of its
    :class:`~pyredcache.clients.shards.HostConfig` (``<HostConfig db=0
    host=localhost port=6379 unix_socket_path=None>``, as rc names it), at
    ``floor(40 * n * weight / total weight)`` MD5 digests, four points
    each: 160 points per host when weights are equal.  A key goes to the
    first point after the little-endian first four bytes of its MD5.  So a
    host's place on the ring depends on its address, not its name, and
    removing a host moves only the keys it held.

    :param hosts: host name to HostConfig (anything whose ``repr`` names
        the server).
    :param weights: optional ``{host_name: weight}`` (numbers > 0, default
        1 each): a host with twice the weight gets about twice the keys.
    """

    def __init__(self, hosts: Mapping[Hashable, Any],
                 weights: Mapping[Hashable, float] | None = None) -> None:
        super().__init__(hosts)
        names = tuple(hosts)
        points = [repr(hosts[name]) for name in names]
        if len(set(points)) != len(points):
            raise ValueError(
                "two hosts have the same address (%s): on a consistent-hash "
                "ring a host is known by its address" % ", ".join(
                    sorted({p for p in points if points.count(p) > 1}))
            )
        ring_weights = None
        if weights is not None:
            unknown = set(weights) - set(names)
            if unknown:
                raise ValueError("weights for unknown hosts: %r" % sorted(map(repr, unknown)))
            ring_weights = [weights.get(name, 1) for name in names]
        self._names = names
        self._ring = _compat.core.KetamaRing(points, ring_weights)
