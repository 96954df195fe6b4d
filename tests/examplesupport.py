"""Helpers shared by the tests that run documentation examples on the
suite's private servers (test_docs_examples.py, test_reference_examples.py,
test_managers.py): reading and changing the calls of an example's syntax
tree, the addresses it is pointed at, and the run-time guard that this
process holds no TCP connection to a port the documents name (Linux
``/proc``).

A plain module, not a plugin: the tests import it as ``from examplesupport
import ...``, as they import ``from conftest import ...`` (pytest puts
tests/ on sys.path, in the checkout and in CI's out-of-tree copies alike).
"""

from __future__ import annotations

import ast
import dataclasses
import linecache
import os
import re
import socket
from typing import Any, Callable, Iterable

#: pyredcache's containers: each takes its client as ``redis=``.
CONTAINERS = frozenset({"RedisDict", "RedisSet", "RedisList", "RedisDeque", "RedisCounter"})


@dataclasses.dataclass(frozen=True)
class Server:
    """The address of a private server: host, port and unix socket path."""

    host: str
    port: int
    unix: str

    @classmethod
    def of(cls, server: Any) -> Server:
        """The address of one of conftest's RedisServer."""
        return cls(server.host, server.port, server.unix_socket_path)

    def url(self, db: int = 0) -> str:
        return "redis://%s:%d/%d" % (self.host, self.port, db)


# -- reading calls ------------------------------------------------------------------


def call_name(node: ast.Call) -> str | None:
    """The name called: ``f`` of ``f(...)`` and of ``x.f(...)``."""
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def find_keyword(node: ast.Call, name: str) -> ast.keyword | None:
    for k in node.keywords:
        if k.arg == name:
            return k
    return None


def argument(node: ast.Call, position: int, name: str) -> ast.expr | None:
    """The argument given at ``position`` or as ``name=``; None if neither."""
    if len(node.args) > position:
        return node.args[position]
    return getattr(find_keyword(node, name), "value", None)


def dict_index(d: ast.Dict, name: str) -> int | None:
    """The index of the constant key ``name`` in a dict literal."""
    for i, k in enumerate(d.keys):
        if isinstance(k, ast.Constant) and k.value == name:
            return i
    return None


def constant_in(node: ast.AST | None, allowed: set) -> bool:
    """node is a literal whose value is one of ``allowed``."""
    return isinstance(node, ast.Constant) and node.value in allowed


# -- rewriting ------------------------------------------------------------------------


def set_unix_socket(node: ast.Call, path: str) -> None:
    """Point a call's ``unix_socket_path=`` and its ``redis_options``'
    ``'unix_socket_path'``, where it gives them, at ``path``."""
    given = find_keyword(node, "unix_socket_path")
    if given is not None:
        given.value = ast.Constant(path)
    options = find_keyword(node, "redis_options")
    if options is not None:
        if not isinstance(options.value, ast.Dict):
            raise NotImplementedError("redis_options that is not a dict literal")
        i = dict_index(options.value, "unix_socket_path")
        if i is not None:
            options.value.values[i] = ast.Constant(path)


def cluster_hosts(node: ast.Call, most: int) -> list[ast.Dict]:
    """The host configurations of a ``CacheCluster({...})`` call: a dict
    literal of at most ``most`` hosts, each a dict literal."""
    hosts = argument(node, 0, "hosts")
    if not isinstance(hosts, ast.Dict) or len(hosts.values) > most:
        raise NotImplementedError("CacheCluster hosts that are not a dict literal of "
                                  "at most %d hosts" % most)
    configs = []
    for config in hosts.values:
        if not isinstance(config, ast.Dict):
            raise NotImplementedError("a CacheCluster host that is not a dict literal")
        configs.append(config)
    return configs


def set_items(d: ast.Dict, items: dict[str, Any]) -> None:
    """Set each constant key of ``items`` in a dict literal (added when
    absent) to its constant value."""
    for name, value in items.items():
        i = dict_index(d, name)
        if i is None:
            d.keys.append(ast.Constant(name))
            d.values.append(ast.Constant(value))
        else:
            d.values[i] = ast.Constant(value)


def apply_rewrite(source: str, transformer: Any) -> str:
    """source through an ``ast.NodeTransformer`` that sets its
    ``changed``; the same text (comments kept) when it changed nothing or
    when source does not parse (the error is then the example's own)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    tree = transformer.visit(tree)
    if not transformer.changed:
        return source
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


# -- checking ---------------------------------------------------------------------------


def checked_tree(source: str, foreign_text: re.Pattern) -> ast.Module | None:
    """AssertionError if ``foreign_text`` finds a foreign address in the
    text; else its syntax tree, None when it does not parse (it runs
    nothing)."""
    found = foreign_text.search(source)
    assert found is None, "a foreign address (%r) is left in:\n%s" % (found.group(), source)
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def check_cluster_addressed(node: ast.Call, hosts: set, ports: set, paths: set,
                            where: str) -> None:
    """AssertionError unless every host of a ``CacheCluster({...})`` call
    is a literal private address: a socket path, or a host and a port."""
    hosts_node = argument(node, 0, "hosts")
    assert isinstance(hosts_node, ast.Dict), "unaddressed " + where
    for config in hosts_node.values:
        assert isinstance(config, ast.Dict), "unaddressed " + where
        path = dict_index(config, "unix_socket_path")
        if path is not None:
            assert constant_in(config.values[path], paths), "unaddressed " + where
            continue
        host, port = dict_index(config, "host"), dict_index(config, "port")
        assert host is not None and port is not None, "unaddressed " + where
        assert constant_in(config.values[host], hosts), "unaddressed " + where
        assert constant_in(config.values[port], ports), "unaddressed " + where


# -- running ----------------------------------------------------------------------------


def compile_example(label: str, code: str) -> Any:
    """code compiled as ``<label>``, its lines kept in linecache so that a
    traceback shows them."""
    filename = "<%s>" % label
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    return compile(code, filename, "exec")


def connections_to(ports: Iterable[int]) -> list[int]:
    """The remote ports, among ``ports``, of this process's TCP
    connections, one entry per connection, from /proc (the C core's
    hiredis sockets are seen too).  Without /proc it raises: a caller
    that can do without checks for ``/proc/self/fd`` first."""
    ports = set(ports)
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(os.path.join("/proc/self/fd", fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:  # tcp6: a kernel without IPv6
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[9] in inodes:
                port = int(fields[2].rsplit(":", 1)[1], 16)
                if port in ports:
                    found.append(port)
    return found


def check_the_guard(foreign_connections: Callable[[set[int]], list[int]]) -> None:
    """``foreign_connections(ports)`` sees a socket connected to a port of
    the set, and no longer once it is closed.  (6379 itself may be taken
    on this machine, and must not be touched: the free port of a listener
    stands in for it.)"""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert foreign_connections({port}) == []
        client = socket.create_connection(("127.0.0.1", port))
        try:
            assert foreign_connections({port}) == [port]
        finally:
            client.close()
        assert foreign_connections({port}) == []
