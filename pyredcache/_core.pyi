"""Type stub for pyredcache._core (the C extension) and its pure twin
pyredcache._core_py, which export the same names."""

from typing import Any, Callable, Iterable, Sequence

implementation: str
MAX_DEPTH: int

class Connection:
    host: str
    port: int
    unix_socket_path: str | None
    db: int
    username: str | None
    socket_timeout: float | None
    socket_connect_timeout: float | None
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
    ) -> None: ...
    @property
    def connected(self) -> bool: ...
    def connect(self) -> None: ...
    def close(self) -> None: ...
    def execute_command(self, *args: bytes | str | int | float) -> Any: ...
    def pipeline(self, commands: Iterable[Sequence[bytes | str | int | float]]) -> list[Any]: ...

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
