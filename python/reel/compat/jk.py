"""jk_keyvaluestore's ``DirBasedKeyValueStore`` on reel: change
``from jk_keyvaluestore import DirBasedKeyValueStore`` to
``from reel.compat.jk import DirBasedKeyValueStore`` and the program runs unchanged.

    ds = DirBasedKeyValueStore(dirPath="my/data/directory", identifier=1)
    ds.put("someKey", ["some", "value"])
    ds["someKey"]          # ['some', 'value']; None when missing

Where jk_keyvaluestore had bugs, this class does what its documentation promises:

- the instance that created a key can update and delete it;
- ``contains`` is false after a delete, and ``keys`` lists no deleted key;
- every write is stored before the call returns (no lost updates between processes),
  and every read sees the writes of every process: ``synchronize()`` has nothing left
  to do and is kept as a no-op.

The directory holds a reel kv store (``reel kv get DIR PATH`` reads it); each key is
one path element, so keys may contain dots and colons.
"""

import json
import os
import re
from typing import Any, List, Optional, Union

from .. import _errors, _reel

__all__ = ["DirBasedKeyValueStore"]

# jk_keyvaluestore's own pattern, read as Python reads it: `+-\.` is the range from `+`
# to `.`, which also takes `,`.
_IDENTIFIER = re.compile(r"[a-zA-Z0-9_+-\.]+")


class DirBasedKeyValueStore:
    """A JSON key-value store in a directory, shared by any number of instances and
    processes. ``identifier=None`` makes a read-only instance: writes raise
    ``reel.PermissionDenied``."""

    def __init__(self, dirPath: str, identifier: Union[str, int, None] = None) -> None:
        if identifier is not None:
            if isinstance(identifier, bool) or not isinstance(identifier, (str, int)):
                raise TypeError("identifier must be a str, an int >= 0 or None")
            if isinstance(identifier, int) and identifier < 0:
                raise ValueError("an int identifier must be >= 0")
            if isinstance(identifier, str) and not _IDENTIFIER.fullmatch(identifier):
                raise ValueError(
                    f"identifier {identifier!r} must match [a-zA-Z0-9_+-.]+"
                )
        self._dir = dirPath
        self._identifier = identifier
        self._kv: Optional[_reel.KvStore] = None
        if identifier is not None:
            self._kv = _reel.KvStore(dirPath)
        else:
            self._open_read_only()

    @property
    def identifier(self) -> Union[str, int, None]:
        return self._identifier

    @property
    def isReadOnly(self) -> bool:
        return self._identifier is None

    def _open_read_only(self) -> Optional[_reel.KvStore]:
        # A read-only instance never creates the store; until a writer has, it is empty.
        if self._kv is None:
            if not os.path.exists(os.path.join(self._dir, "reel.meta")):
                return None
            self._kv = _reel.KvStore(self._dir, create=False)
        return self._kv

    def _writable(self) -> _reel.KvStore:
        if self._identifier is None or self._kv is None:
            raise _errors.PermissionDenied(
                f"this DirBasedKeyValueStore on {self._dir} is read-only (identifier=None); "
                "open it with an identifier to write"
            )
        return self._kv

    def put(self, key: str, value: Any) -> None:
        """Stores ``value`` (anything JSON-compatible) under ``key``."""
        # Through JSON, as jk_keyvaluestore stores it: int dict keys become strings and
        # tuples lists (what a reader gets back from jk).
        self._writable().set((_key(key),), json.loads(json.dumps(value)))

    def get(self, key: str) -> Any:
        """The value under ``key``, or ``None`` when there is none."""
        kv = self._open_read_only()
        if kv is None:
            return None
        return kv.get((_key(key),), None)

    def contains(self, key: str) -> bool:
        """True when ``key`` holds a value (false after it was deleted)."""
        kv = self._open_read_only()
        return kv is not None and (_key(key),) in kv

    def remove(self, key: str) -> None:
        """Deletes ``key``; nothing happens if it holds no value."""
        try:
            self._writable().delete((_key(key),))
        except _errors.NotFound:
            pass

    delete = remove

    def clear(self) -> None:
        """Deletes every key."""
        self._writable().clear()

    def keys(self) -> List[str]:
        """Every key holding a value."""
        kv = self._open_read_only()
        if kv is None:
            return []
        # A child that only leads to deeper paths (written by `reel kv set`) holds no value.
        return [
            p[0]
            for p in kv.keys(tuples=True)
            if len(p) == 1 and isinstance(p[0], str) and p in kv
        ]

    def synchronize(self) -> None:
        """Nothing to do: every read already sees every instance's writes."""

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: str) -> None:
        self.remove(key)

    def __contains__(self, key: str) -> bool:
        return self.contains(key)

    def __len__(self) -> int:
        return len(self.keys())

    def __iter__(self):
        return iter(self.keys())


def _key(key: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"keys are str, not {type(key).__name__}")
    return key
