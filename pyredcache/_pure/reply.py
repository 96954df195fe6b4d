"""Pure-Python twin of csrc/reply.c: the RESP2 reply parser.

:class:`Reader` is the twin of hiredis 0.14's reader (read.c) as the C core
uses it: it accepts and refuses the same bytes, with the same messages, at
the same moment (a bad type byte as soon as it arrives, a bad length or
integer as soon as its line is whole, never after waiting for more), so a
hostile reply fails the same way on both sides.  It does no I/O:
:class:`~pyredcache._pure.connection.Connection` and
:func:`~pyredcache._pure.multiplex.multi_pipeline` feed it what they read.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ..exceptions import ProtocolError, ResponseError

__all__ = ["Reader"]

# hiredis 0.14 keeps a fixed stack of 9 read tasks: an array whose type
# byte comes with 8 arrays open above it (nested more than 7 levels below
# the top-level reply) is a protocol error there, so it is here.
_MAX_NESTING = 7
_INT_MAX = 2**31 - 1  # hiredis' limit for an array's element count
_LLONG_MAX = 2**63 - 1

def _string2ll(line: bytes) -> int | None:
    """hiredis' string2ll (from Redis' util.c): an optional '-', then
    decimal digits without a leading zero ("0" alone is zero, "-0" is
    refused), no '+', no spaces, within a C long long; None otherwise."""
    n = len(line)
    if line.isdigit():  # ASCII digits only, and not empty
        if n > 19 or (line[0] == 48 and n > 1):  # 48: '0'
            return None
        value = int(line)
        return value if value <= _LLONG_MAX else None
    if 1 < n <= 20 and line[0] == 45:  # 45: '-'
        body = line[1:]
        if body.isdigit() and body[0] != 48:
            value = int(body)
            if value <= _LLONG_MAX + 1:
                return -value
    return None


# hiredis' chrtos(): how a bad type byte is quoted in its message
_TYPE_BYTE_ESCAPES = {0x5C: "\\\\", 0x22: '\\"', 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t",
                      0x07: "\\a", 0x08: "\\b"}
_TYPE_BYTES = frozenset(b"+-:$*")
_NESTING_ERROR = ("No support for nested multi bulk replies with depth > %d"
                  % _MAX_NESTING)


def _type_byte_error(byte: int) -> str:
    text = _TYPE_BYTE_ESCAPES.get(byte)
    if text is None:
        text = chr(byte) if 0x20 <= byte < 0x7F else "\\x%02x" % byte
    return 'Protocol error, got "%s" as reply type byte' % text


class Reader:
    """A RESP2 reply parser that does no I/O: :meth:`feed` it the bytes a
    server sent, :meth:`gets` the replies they hold.

    ``Reader()``.  It is the parser of :class:`Connection`, for code that
    reads the socket itself (an event loop).  It judges bytes as hiredis
    0.14 does (the C core's parser), and takes time linear in the bytes
    fed: the search for a line's CRLF resumes where the last one stopped,
    and an array read in parts keeps the elements already built (a stack
    of open arrays, like hiredis' read tasks).  Not thread-safe: one reader
    belongs to one stream.
    """

    __slots__ = ("_buf", "_scan", "_bulk", "_stack", "_error")

    def __init__(self) -> None:
        self._buf = bytearray()  # bytes not parsed yet (parsed ones are dropped)
        self._scan = 0  # where the CRLF search of the line at _buf[0] resumes (if > 0)
        self._bulk = -1  # length of a bulk string whose header was read, else -1
        self._stack: list[list] = []  # open arrays, outermost first: [items, elements left]
        self._error: str | None = None  # hiredis' message once failed

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` (bytes-like) to the bytes waiting to be parsed.

        Raises TypeError for an object without the buffer protocol.  Once
        the reader has failed (see :meth:`gets`) the data is dropped."""
        if self._error is None:
            self._buf += data
        else:
            memoryview(data).release()  # the same TypeError for a non-buffer

    def gets(self) -> Any:
        """Return the next whole reply, or ``False`` when the bytes fed so
        far do not hold one yet.

        Replies are bytes (bulk strings and status replies), int, None
        (nil), list, and :class:`~pyredcache.exceptions.ResponseError`
        instances for error replies (returned, not raised).  Raises
        :class:`~pyredcache.exceptions.ProtocolError` for bytes that are
        not RESP as hiredis 0.14 judges them (a bad type byte, a bad or
        out-of-range length or integer, arrays nested more than 7 levels
        below the top-level reply); the reader then stays failed, as
        hiredis' does: every later ``gets()`` raises the same error and
        :meth:`feed` drops its data."""
        if self._error is not None:
            raise ProtocolError(self._error)
        buf = self._buf
        stack = self._stack
        size = len(buf)
        pos = 0
        bulk = self._bulk
        while True:
            if bulk >= 0:  # a bulk string's header was read: wait for its body
                end = pos + bulk
                if end + 2 > size:
                    break
                value: Any = bytes(buf[pos:end])
                pos = end + 2  # hiredis skips the 2 bytes after the body unread
                bulk = -1
            else:
                if pos >= size:
                    break
                kind = buf[pos]
                if kind not in _TYPE_BYTES:
                    self._fail(_type_byte_error(kind))
                if kind == 42 and len(stack) > _MAX_NESTING:  # 42: '*'
                    self._fail(_NESTING_ERROR)
                scan = self._scan
                end = buf.find(b"\r\n", scan if scan > pos else pos + 1)
                if end < 0:
                    # resume at the last byte: it may be the '\r' of a CRLF
                    self._scan = size - 1 if size - 1 > pos else pos + 1
                    break
                line = bytes(buf[pos + 1:end])
                pos = end + 2
                if kind == 36:  # '$'
                    n = _string2ll(line)
                    if n is None:
                        self._fail("Bad bulk string length")
                    if n >= 0:
                        bulk = n
                        continue
                    if n != -1:
                        self._fail("Bulk string length out of range")
                    value = None
                elif kind == 58:  # ':'
                    value = _string2ll(line)
                    if value is None:
                        self._fail("Bad integer value")
                elif kind == 43:  # '+'
                    value = line
                elif kind == 45:  # '-'
                    value = ResponseError(line.decode("utf-8", "replace"))
                else:  # '*'
                    n = _string2ll(line)
                    if n is None:
                        self._fail("Bad multi-bulk length")
                    if n < -1 or n > _INT_MAX:
                        self._fail("Multi-bulk length out of range")
                    if n > 0:
                        stack.append([[], n])
                        continue
                    value = None if n < 0 else []
            # a whole value: link it into the arrays it completes
            while stack:
                top = stack[-1]
                top[0].append(value)
                top[1] -= 1
                if top[1]:
                    break
                value = top[0]
                stack.pop()
            else:
                self._consumed(pos, -1)
                return value
        self._consumed(pos, bulk)
        return False

    def _consumed(self, pos: int, bulk: int) -> None:
        # Bytes before pos are parsed: drop them (deleting the front of a
        # bytearray moves no bytes in CPython) and shift the scan position.
        self._bulk = bulk
        if pos:
            del self._buf[:pos]
            self._scan -= pos

    def _fail(self, message: str) -> NoReturn:
        # hiredis drops its buffer and the half-read reply, and stays failed.
        self._buf = bytearray()
        self._stack = []
        self._scan = 0
        self._bulk = -1
        self._error = message
        raise ProtocolError(message)

    def _idle(self) -> bool:
        """True when nothing is buffered: no byte and no half-read reply."""
        return not self._buf and self._bulk < 0 and not self._stack
