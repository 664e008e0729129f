"""reel: programs hand data to each other through a directory.

- ``Spool``: an append-only log of records (JSON-compatible values or bytes) in a
  directory; named ``Reader``\\ s consume it with persisted positions, block when caught
  up, rewind and replay. Shared with the ``reel`` command (``reel read``, ``reel write``).
- ``KvStore``: the latest value per hierarchical path (DistKV paths), with
  compare-and-set and watch, shared by any number of processes.
- ``ListStore``: keyed lists with per-key offsets, exactly-once appends by nonce, and
  paging with continuation tokens.
- ``reel.compat.kvspool`` and ``reel.compat.jk``: drop-in replacements for kvspool's and
  jk_keyvaluestore's Python classes.

Every blocking call releases the GIL and is interrupted by Ctrl-C; objects are safe to
share between threads; after ``os.fork()`` a child must open its own objects (using the
parent's raises ``reel.Error``). ``aiter()`` on readers, live streams and watches gives
asyncio iterators.
"""

from ._errors import (
    ConditionFailed,
    Corrupt,
    Error,
    Full,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from ._reel import KvStore, ListStore, Reader, Record, Spool, Stream, Watch

__all__ = [
    "Spool",
    "Reader",
    "Record",
    "Stream",
    "KvStore",
    "Watch",
    "ListStore",
    "Error",
    "ConditionFailed",
    "NotFound",
    "Corrupt",
    "Full",
    "PermissionDenied",
    "InvalidArgument",
]
