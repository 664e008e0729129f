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
from . import _reel
from ._reel import Reader, Record, Stream, Watch


class Spool(_reel.Spool):
    __doc__ = _reel.Spool.__doc__

    def __new__(cls, path, *args, **kwargs):
        # A server URL gives the same methods over HTTP (reel._remote).
        if _remote.is_url(path):
            return _remote.RemoteSpool(path, *args, **kwargs)
        return super().__new__(cls, path, *args, **kwargs)


class KvStore(_reel.KvStore):
    __doc__ = _reel.KvStore.__doc__

    def __new__(cls, path, *args, **kwargs):
        if _remote.is_url(path):
            return _remote_kv.RemoteKvStore(path, *args, **kwargs)
        return super().__new__(cls, path, *args, **kwargs)


class ListStore(_reel.ListStore):
    __doc__ = _reel.ListStore.__doc__

    def __new__(cls, path, *args, **kwargs):
        if _remote.is_url(path):
            return _remote_kv.RemoteListStore(path, *args, **kwargs)
        return super().__new__(cls, path, *args, **kwargs)


from . import _remote, _remote_kv  # noqa: E402  (they import this package's names)

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
