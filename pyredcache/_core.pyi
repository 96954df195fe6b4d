"""Type stub for pyredcache._core (the C extension) and its pure twin
pyredcache._pure, which export the same names."""

from typing import Any, Callable, Iterable, Sequence

implementation: str
MAX_DEPTH: int
#: Bytes in one command argument at most: Redis's proto-max-bulk-len
#: default (512 MiB).  A longer argument raises ValueError before anything
#: is sent.
PROTO_MAX_BULK_LEN: int

class Connection:
    host: str
    port: int
    unix_socket_path: str | None
    db: int
    username: str | None
    socket_timeout: float | None
    socket_connect_timeout: float | None
    busy_poll: int
    busy_poll_hits: int
    busy_poll_misses: int
    def __init__(
        self,
        host: str = ...,
        port: int = ...,
        *,
        unix_socket_path: str | None = ...,
        db: int = ...,
        username: str | None = ...,
        password: str | None = ...,
        socket_timeout: float | None = ...,
        socket_connect_timeout: float | None = ...,
        busy_poll: int | None = ...,
    ) -> None: ...
    @property
    def connected(self) -> bool: ...
    def connect(self) -> None: ...
    def close(self) -> None: ...
    def execute_command(self, *args: bytes | str | int | float) -> Any: ...
    def pipeline(self, commands: Iterable[Sequence[bytes | str | int | float]]) -> list[Any]: ...

class Reader:
    def __init__(self) -> None: ...
    def feed(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def gets(self) -> Any: ...

def multi_pipeline(
    jobs: Sequence[tuple[Connection, Iterable[Sequence[bytes | str | int | float]]]],
    /,
    timeout: float | None = ...,
    max_concurrency: int = ...,
) -> list[list[Any] | BaseException]: ...

def redlock_round(
    connections: Sequence[Connection],
    command: Sequence[bytes | str | int | float],
    ttl_ms: float,
    timeout: float | None,
    /,
) -> tuple[int, float, list[Any]]: ...

def dumps(obj: Any, /, canonical: bool = ...) -> bytes: ...
def loads(data: bytes | bytearray | memoryview, /) -> Any: ...

class KeyBuilder:
    def __init__(
        self,
        prefix: bytes,
        names: tuple[str, ...],
        kinds: tuple[int, ...],
        defaults: tuple[Any, ...],
        drop_first: bool,
    ) -> None: ...
    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes: ...

class Promise:
    def __init__(self) -> None: ...
    @classmethod
    def resolved(cls, value: Any, /) -> Promise: ...
    @classmethod
    def rejected(cls, exc: BaseException, /) -> Promise: ...
    @property
    def is_pending(self) -> bool: ...
    @property
    def is_resolved(self) -> bool: ...
    @property
    def is_rejected(self) -> bool: ...
    @property
    def value(self) -> Any: ...
    def resolve(self, value: Any, /) -> Promise: ...
    def reject(self, exc: BaseException, /) -> Promise: ...
    def then(
        self,
        on_resolve: Callable[[Any], object] | None = ...,
        on_reject: Callable[[BaseException], object] | None = ...,
    ) -> Promise: ...

def crc32(data: str | bytes | bytearray, /) -> int: ...

class Crc32Buckets:
    def __init__(self, n: int) -> None: ...
    @property
    def n(self) -> int: ...
    def index(self, key: str | bytes | bytearray, /) -> int: ...
    def partition(
        self, keys: Sequence[str | bytes | bytearray], /
    ) -> list[tuple[list[int], list[Any]]]: ...

class KetamaRing:
    def __init__(
        self, names: Sequence[str], weights: Sequence[int | float] | None = ...
    ) -> None: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    def __len__(self) -> int: ...
    def index(self, key: str | bytes | bytearray, /) -> int: ...
    def partition(
        self, keys: Sequence[str | bytes | bytearray], /
    ) -> list[tuple[list[int], list[Any]]]: ...
