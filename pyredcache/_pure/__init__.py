"""The pure-Python twin of ``pyredcache._core``, one module per ``csrc/*.c``.

It exports exactly the names ``pyredcache._core`` exports, with the same
behaviour, and is the reference for it: every test that touches the core
runs against both.  It is used when the extension is not built (PyPy, no
compiler, no libhiredis) or when ``PYREDCACHE_NO_EXTENSIONS=1`` is set
(``pyredcache._compat`` chooses, once).

==================  ===================================================
``connection.py``   Connection (csrc/connection.c)
``reply.py``        Reader, the RESP2 parser (csrc/reply.c)
``multiplex.py``    multi_pipeline (csrc/multiplex.c)
``redlock.py``      redlock_round (csrc/redlock.c)
``codec.py``        dumps, loads, MAX_DEPTH (csrc/codec.c)
``keys.py``         KeyBuilder (csrc/keys.c)
``hashing.py``      crc32, Crc32Buckets, KetamaRing (csrc/hashing.c)
``promise.py``      Promise (csrc/promise.c)
==================  ===================================================
"""

from .codec import MAX_DEPTH, dumps, loads
from .connection import PROTO_MAX_BULK_LEN, Connection
from .hashing import Crc32Buckets, KetamaRing, crc32
from .keys import KeyBuilder
from .multiplex import multi_pipeline
from .promise import Promise
from .redlock import redlock_round
from .reply import Reader

#: ``"python"`` here, ``"c"`` in ``pyredcache._core``.
implementation = "python"

__all__ = ["Connection", "Crc32Buckets", "KetamaRing", "KeyBuilder", "MAX_DEPTH",
           "PROTO_MAX_BULK_LEN", "Promise", "Reader", "crc32", "dumps",
           "implementation", "loads", "multi_pipeline", "redlock_round"]
