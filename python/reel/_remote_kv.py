"""``reel.KvStore`` and ``reel.ListStore`` on a ``reel serve`` URL (see ``reel._remote``
for credentials, errors and what differs from a local store)."""

import urllib.parse
from typing import Any, Dict, Iterator, List, Optional

from . import _aio, _errors, _reel
from ._remote import _Pump, _Server, _dumps

__all__ = ["RemoteKvStore", "RemoteListStore"]


class RemoteKvStore:
    """A kv store served by ``reel serve``; see ``reel.KvStore`` for the methods."""

    def __init__(self, url: str, durability=None, create: bool = True,
                 token=None, user=None, password=None) -> None:
        self._s = _Server(url, token, user, password)

    @staticmethod
    def _p(path: Any) -> str:
        text = _reel._path_text(path) if path is not None else ":"
        return urllib.parse.quote(text or ":", safe="")

    def _meta(self, path: Any) -> Dict[str, Any]:
        return self._s.json("GET", f"/kv/{self._p(path)}")

    def get(self, path: Any, *default: Any) -> Any:
        if len(default) > 1:
            raise TypeError("get() takes a path and at most one default")
        try:
            return self._meta(path)["value"]
        except _errors.NotFound:
            if default:
                return default[0]
            raise

    def get_meta(self, path: Any) -> Dict[str, Any]:
        return self._meta(path)

    def set(self, path: Any, value: Any, if_rev: Optional[int] = None, if_absent: bool = False) -> int:
        if if_rev is not None and if_absent:
            raise _errors.InvalidArgument("give if_rev or if_absent, not both")
        headers = {"Content-Type": "application/json"}
        if if_rev is not None:
            headers["If-Match"] = str(if_rev)
        if if_absent:
            headers["If-None-Match"] = "*"
        body = _dumps(value).encode()
        return self._s.json("PUT", f"/kv/{self._p(path)}", body=body, headers=headers)["rev"]

    def delete(self, path: Any, if_rev: Optional[int] = None) -> int:
        headers = {"If-Match": str(if_rev)} if if_rev is not None else None
        return self._s.json("DELETE", f"/kv/{self._p(path)}", headers=headers)["rev"]

    def delete_tree(self, path: Any) -> int:
        return self._s.json("DELETE", f"/kv/{self._p(path)}", query={"recursive": True})["deleted"]

    def clear(self) -> int:
        try:
            return self.delete_tree(None)
        except _errors.NotFound:
            return 0

    def keys(self, path: Any = None, recursive: bool = False, tuples: bool = False) -> List[Any]:
        try:
            # JSON: a path may hold any character, a line break too.
            texts = self._s.json("GET", f"/keys/{self._p(path)}",
                                 query={"recursive": recursive, "format": "json"})["keys"]
        except _errors.NotFound:
            return []
        return [_reel._path_tuple(t) for t in texts] if tuples else texts

    def tree(self, path: Any = None) -> Optional[Dict[str, Any]]:
        try:
            return self._s.json("GET", f"/kv/{self._p(path)}", query={"recursive": True})
        except _errors.NotFound:
            return None

    def watch(self, path: Any = None, fetch: bool = False, from_rev: Optional[int] = None) -> "RemoteWatch":
        return RemoteWatch(_Pump(self._s, f"/watch/{self._p(path)}",
                                 {"fetch": fetch or None, "from_rev": from_rev}))

    def __getitem__(self, path: Any) -> Any:
        return self.get(path)

    def __setitem__(self, path: Any, value: Any) -> None:
        self.set(path, value)

    def __delitem__(self, path: Any) -> None:
        self.delete(path)

    def __contains__(self, path: Any) -> bool:
        try:
            self._meta(path)
            return True
        except _errors.NotFound:
            return False

    def _all(self) -> List[str]:
        """Every path holding a value, the root's own value too (as locally)."""
        keys = self.keys(recursive=True)
        if ":" not in keys and ":" in self:
            keys.insert(0, ":")
        return keys

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __repr__(self) -> str:
        return f"reel.KvStore({self._s.url!r})"


class RemoteWatch:
    """A watch of a served kv store; see ``reel.Watch``."""

    def __init__(self, pump: _Pump) -> None:
        self._pump = pump

    def next(self, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        item, ended = self._pump.next(timeout)
        if ended:
            raise _errors.Error("the server ended the watch (it stopped, or the connection "
                                "was cut); watch again with from_rev to go on")
        return item

    def _ready(self, timeout: Optional[float]) -> None:
        """Waits up to ``timeout`` until ``next(0)`` has an event, taking none."""
        self._pump.ready(timeout)

    def aiter(self):
        return _aio.ready_aiter(self.next, self._ready)

    def __iter__(self) -> "RemoteWatch":
        return self

    def __next__(self) -> Dict[str, Any]:
        while True:
            item = self.next(0.5)
            if item is not None:
                return item

    def close(self) -> None:
        self._pump.close()


class RemoteListStore:
    """Keyed lists served by ``reel serve``; see ``reel.ListStore`` for the methods."""

    def __init__(self, url: str, durability=None, create: bool = True,
                 token=None, user=None, password=None) -> None:
        self._s = _Server(url, token, user, password)

    @staticmethod
    def _k(key: str) -> str:
        return urllib.parse.quote(key, safe="")

    def append(self, key: str, values: Any, nonce: Optional[int] = None, ts: Optional[int] = None) -> Dict[str, int]:
        if key == "":
            # As locally (the URL of an empty key names no route on the server).
            raise _errors.InvalidArgument("a list key cannot be empty")
        one = isinstance(values, (dict, str, bytes)) or not hasattr(values, "__iter__")
        values = [values] if one else list(values)
        items = []
        for i, v in enumerate(values):
            if isinstance(v, (bytes, bytearray)):
                raise TypeError("a list item must be JSON-compatible, not bytes")
            item: Dict[str, Any] = {"value": v}
            if nonce is not None:
                n = nonce + i
                item["nonce"] = n if n < 2**64 else str(n)
            if ts is not None:
                item["ts"] = ts
            items.append(item)
        body = _dumps({"items": items}).encode()
        return self._s.json("POST", f"/lists/{self._k(key)}", body=body,
                            headers={"Content-Type": "application/json"})

    def read(self, key: str, limit=None, reverse=False, from_offset=None, from_time=None,
             from_nonce=None, continuation=None) -> Dict[str, Any]:
        if continuation is not None and (from_offset, from_time, from_nonce) != (None, None, None):
            raise _errors.InvalidArgument(
                "give either continuation or one of from_offset, from_time and from_nonce")
        q = {"limit": limit, "reverse": reverse or None, "from_offset": from_offset,
             "from_time": from_time, "from_nonce": from_nonce, "continue": continuation}
        page = self._s.json("GET", f"/lists/{self._k(key)}", query=q)
        for item in page.get("items", []):
            _int_nonce(item, "nonce")
        return page

    def info(self, key: str) -> Dict[str, Any]:
        return _int_nonce(self._s.json("GET", f"/lists/{self._k(key)}/info"), "last_nonce")

    def keys(self) -> List[str]:
        try:
            return self._s.json("GET", "/lists")["keys"]
        except _errors.NotFound:
            return []

    def __repr__(self) -> str:
        return f"reel.ListStore({self._s.url!r})"


def _int_nonce(d: Dict[str, Any], field: str) -> Dict[str, Any]:
    """Nonces above 2**64 travel as decimal strings (JSON numbers would lose digits in
    many languages); Python's ints hold them whole, as the local package returns them."""
    if isinstance(d.get(field), str):
        d[field] = int(d[field])
    return d
