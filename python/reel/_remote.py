"""The classes of ``reel`` on a ``reel serve`` store: ``reel.Spool("http://HOST:PORT/NAME")``
(and ``KvStore``, ``ListStore``) returns one of these, with the same methods.

Credentials come from the arguments ``token=`` or ``user=``/``password=``, else from the
environment as for the ``reel`` command: ``REEL_TOKEN``, or ``REEL_USER`` and
``REEL_PASSWORD``; ``REEL_CA_CERT`` names a CA certificate for ``https://``. HTTP errors
become the same exceptions as local ones (``reel.NotFound`` for 404, ``reel.Full`` for
507, ...), with the server's message.

What differs from a local store, because of what crosses the network:
- values are JSON (``bytes`` values raise ``TypeError``);
- a reader holds the records it delivered and acknowledges them at ``commit()``;
  ``seek`` and ``rewind`` move the server's position at once (they need the ``a``
  permission);
- ``sync()`` has nothing to do: an append returns once the server stored it with the
  durability asked (``durability=``).
"""

import base64
import http.client
import json
import os
import queue
import select
import socket
import ssl
import threading
import urllib.parse
from collections import deque
from typing import Any, Dict, Iterator, Optional, Tuple

from . import _aio, _errors, _reel

__all__ = ["is_url", "RemoteSpool"]

# Seconds a reader's request waits on the server for a record (the server allows 300).
_LONG_POLL = 30.0


def is_url(path: Any) -> bool:
    return isinstance(path, str) and path.startswith(("http://", "https://"))


class _Server:
    """One store on one server: its URL, credentials, and a connection per thread."""

    def __init__(self, url: str, token=None, user=None, password=None) -> None:
        u = urllib.parse.urlsplit(url)
        name = u.path.strip("/")
        if not name or "/" in name:
            raise _errors.InvalidArgument(
                f"a store URL is http(s)://HOST:PORT/NAME, not {url!r}"
            )
        self.url, self.name, self.scheme = url, name, u.scheme
        self.host, self.port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
        self.base = f"/v1/stores/{urllib.parse.quote(name, safe='')}"
        token = token or os.environ.get("REEL_TOKEN")
        user = user or os.environ.get("REEL_USER")
        password = password if password is not None else os.environ.get("REEL_PASSWORD")
        self.headers: Dict[str, str] = {}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user:
            if password is None:
                raise _errors.InvalidArgument(
                    f"user {user!r} needs a password (password= or REEL_PASSWORD)"
                )
            cred = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {cred}"
        self.ssl = None
        if u.scheme == "https":
            ca = os.environ.get("REEL_CA_CERT")
            self.ssl = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        self._local = threading.local()

    def _connect(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def open(self, method: str, path: str, query=None, body=None, headers=None,
             timeout: Optional[float] = 60.0) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A response whose body is not read yet, on a connection of its own."""
        conn = self._connect(timeout)
        try:
            self._send(conn, method, path, query, body, headers)
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            raise self._unreachable(method, path, e) from e
        if resp.status >= 400:
            data = resp.read()
            conn.close()
            raise _error(resp.status, data)
        return conn, resp

    def _unreachable(self, method: str, path: str, e: OSError) -> _errors.Error:
        """A connection that could not be made or broke: a ``reel.Error`` as every other
        failure (the request's outcome is unknown unless it was never sent)."""
        return _errors.Error(f"cannot reach the server {self.host}:{self.port} for "
                             f"{method} {path or '/'}: {e}")

    def call(self, method: str, path: str, query=None, body=None, headers=None,
             timeout: float = 60.0, idempotent: Optional[bool] = None) -> bytes:
        """The body of a request, on this thread's kept-alive connection.

        A connection the server closed while it sat idle is replaced before the request
        is sent. A request that fails after it was sent is sent again only when doing it
        twice is the same as doing it once (``idempotent``; by default GET, HEAD, and
        PUT without a condition): an append whose answer was lost may have been stored,
        and sending it again would store it twice."""
        if idempotent is None:
            conditional = any(h.lower() in ("if-match", "if-none-match") for h in headers or ())
            # A DELETE done twice answers differently (404, or 0 deleted) though it did
            # what was asked: it is not sent again either.
            idempotent = method in ("GET", "HEAD") or (method == "PUT" and not conditional)
        for attempt in (0, 1):
            conn = getattr(self._local, "conn", None)
            if conn is not None and _dropped(conn):
                conn.close()
                conn = None
            if conn is None:
                conn = self._local.conn = self._connect(timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                self._send(conn, method, path, query, body, headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                self._local.conn = None
                if attempt:
                    raise self._unreachable(method, path, e) from e
                if not idempotent:
                    raise _errors.Error(
                        f"the connection to {self.host}:{self.port} broke before the answer to "
                        f"{method} {path or '/'} came ({e}); the request may or may not have "
                        "been carried out, and it is not sent again because doing it twice "
                        "is not the same as doing it once"
                    ) from e
                continue
            except OSError as e:
                conn.close()
                self._local.conn = None
                raise self._unreachable(method, path, e) from e
            except BaseException:
                conn.close()
                self._local.conn = None
                raise
            if resp.status >= 400:
                raise _error(resp.status, data)
            return data
        raise AssertionError("unreachable")

    def _send(self, conn, method, path, query, body, headers) -> None:
        url = self.base + path
        if query:
            q = {k: _query_value(v) for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        h = dict(self.headers)
        if headers:
            h.update(headers)
        conn.request(method, url, body=body, headers=h)

    def json(self, method: str, path: str, **kw) -> Any:
        return json.loads(self.call(method, path, **kw) or b"null")


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether the server closed kept-alive `conn` (it is readable while no request is
    outstanding: an end of file, or bytes nobody asked for)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _error(status: int, data: bytes) -> _errors.Error:
    try:
        msg = json.loads(data)["error"]
    except (ValueError, KeyError, TypeError):
        msg = data.decode("utf-8", "replace").strip() or f"HTTP status {status}"
    if status == 409 and ("follower" in msg or "read-only" in msg):
        cls = _errors.PermissionDenied
    else:
        cls = {
            400: _errors.InvalidArgument,
            401: _errors.PermissionDenied,
            403: _errors.PermissionDenied,
            404: _errors.NotFound,
            412: _errors.ConditionFailed,
            413: _errors.InvalidArgument,
            429: _errors.PermissionDenied,
            507: _errors.Full,
        }.get(status, _errors.Error)
    return cls(msg)


def _check_timeout(timeout: Optional[float]) -> None:
    """As the local package: a timeout is a number of seconds >= 0 (or None)."""
    if timeout is not None and not timeout >= 0:  # also refuses NaN
        raise _errors.InvalidArgument(f"timeout must be a number of seconds >= 0, not {timeout}")


def _check_seq(name: str, seq: Any) -> None:
    """As the local package, which takes seqs as unsigned 64-bit ints."""
    if seq is None:
        return
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise TypeError(f"{name} must be an int, not {type(seq).__name__}")
    if not 0 <= seq < 2**64:
        raise OverflowError(f"{name} {seq} is not a seq (0 to 2**64 - 1)")


def _check_value(value: Any, depth: int = 0) -> None:
    """Refuses what a local store refuses but JSON would change: keys that are not str,
    ints beyond 64 bits."""
    # json.dumps would turn 1, True, None and 1.5 into the keys "1", "true", "null" and
    # "1.5" (and keep one of {1: 'a', '1': 'b'}): a local store refuses them, so does this.
    # An int beyond 64 bits is refused with the local store's TypeError, not the server's
    # InvalidArgument, so that the same code catches the same exception.
    if depth > 512:
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise TypeError(
                f"cannot store int {value}: it does not fit in 64 bits "
                "(stored values hold -2**63 to 2**64-1)"
            )
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"dict keys must be str, not {type(k).__name__} ({k!r})")
            _check_value(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_value(v, depth + 1)


def _dumps(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("a remote store takes JSON values, not bytes")
    _check_value(value)
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except ValueError as e:
        raise ValueError(f"value is not JSON-compatible: {e}") from None


def _record(d: Dict[str, Any]) -> _reel.Record:
    nonce = d.get("nonce")
    return _reel.Record(d["seq"], d["ts"], d.get("value"), d.get("key"),
                        int(nonce) if nonce is not None else None)


def _ndjson(data: bytes) -> Iterator[Dict[str, Any]]:
    for line in data.splitlines():
        if line.strip():
            yield json.loads(line)


class _Pump:
    """Reads an endless NDJSON response in a daemon thread into a queue, so that
    ``next(timeout)`` can wait with a timeout and be interrupted by Ctrl-C."""

    def __init__(self, server: _Server, path: str, query: Dict[str, Any]) -> None:
        self._q: "queue.Queue[Tuple[str, Any]]" = queue.Queue(maxsize=10000)
        # Taken from the queue by ``ready``, not yet by ``next``.
        self._head: Optional[Tuple[str, Any]] = None
        self._conn, self._resp = server.open("GET", path, query=query, timeout=None)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for line in self._resp:
                if line.strip():
                    self._q.put(("item", json.loads(line)))
            self._q.put(("end", None))
        except Exception as e:  # noqa: BLE001 - handed to the reader
            self._q.put(("error", e))

    def next(self, timeout: Optional[float]) -> Tuple[Optional[Dict[str, Any]], bool]:
        """``(item, ended)``; ``(None, False)`` when nothing came within ``timeout``."""
        if self._head is not None:
            (kind, item), self._head = self._head, None
        else:
            try:
                kind, item = self._q.get(timeout=timeout) if timeout != 0 else self._q.get_nowait()
            except queue.Empty:
                return None, False
        if kind == "item":
            if isinstance(item, dict) and set(item) == {"error"}:
                raise _errors.Error(item["error"])
            return item, False
        if kind == "error":
            raise _errors.Error(f"the connection to the server broke: {item}")
        self._q.put(("end", None))  # stays ended
        return None, True

    def ready(self, timeout: Optional[float]) -> None:
        """Waits up to ``timeout`` until ``next(0)`` has something, taking nothing."""
        if self._head is None:
            try:
                self._head = self._q.get(timeout=timeout)
            except queue.Empty:
                pass

    def close(self) -> None:
        # Shut the socket down first: the pump thread may be blocked reading it, and
        # closing the buffered response under it would wait for that read for ever.
        sock = getattr(self._conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()


class RemoteSpool:
    """A spool served by ``reel serve``; see ``reel.Spool`` for the methods."""

    def __init__(self, url: str, capacity=None, when_full=None, durability=None,
                 token=None, user=None, password=None) -> None:
        if capacity is not None or when_full is not None:
            raise _errors.InvalidArgument(
                "capacity and when_full are set where the store lives: `reel init` on the server"
            )
        self._s = _Server(url, token, user, password)
        self._durability = durability
        self._s.json("GET", "")  # the store must exist, as for `reel write`

    @property
    def path(self) -> str:
        return self._s.url

    def append(self, value: Any, key: Optional[str] = None) -> int:
        return self.append_many([value], key=key)

    def append_many(self, values, key: Optional[str] = None) -> int:
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a str, not {type(key).__name__}")
        body = "".join(_dumps(v) + "\n" for v in values).encode()
        if not body:
            raise _errors.InvalidArgument("append_many needs at least one value")
        r = self._s.json("POST", "/records", query={"key": key, "durability": self._durability},
                         body=body, headers={"Content-Type": "application/x-ndjson"})
        return r["first_seq"]

    def reader(self, name: str = "default") -> "RemoteReader":
        return RemoteReader(self._s, name)

    def status(self) -> Dict[str, Any]:
        return self._s.json("GET", "")

    def sync(self) -> None:
        """Nothing to do: appends return once stored with the durability asked."""

    def stream(self, gt=None, gte=None, lt=None, lte=None, reverse=False, limit=None,
               live=False) -> "RemoteStream":
        for name, seq in (("gt", gt), ("gte", gte), ("lt", lt), ("lte", lte)):
            _check_seq(name, seq)
        if live and reverse:
            raise _errors.InvalidArgument("a live stream cannot be reversed")
        return RemoteStream(self._s, dict(gt=gt, gte=gte, lt=lt, lte=lte), reverse, limit, live)

    def __repr__(self) -> str:
        return f"reel.Spool({self._s.url!r})"


class RemoteReader:
    """A named reader of a served spool; see ``reel.Reader``."""

    def __init__(self, server: _Server, name: str) -> None:
        self._s, self._name = server, name
        self._buf: "deque[_reel.Record]" = deque()
        self._delivered: Optional[int] = None  # last seq handed out
        self._acked: Optional[int] = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def position(self) -> int:
        if self._delivered is not None:
            return self._delivered + 1
        for r in self._s.json("GET", "").get("readers", []):
            if r["name"] == self._name:
                return r["position"]
        return 0

    def _path(self, op: str) -> str:
        return f"/readers/{urllib.parse.quote(self._name, safe='')}/{op}"

    def next(self, timeout: Optional[float] = None) -> Optional[_reel.Record]:
        _check_timeout(timeout)
        if self._closed:
            raise _errors.InvalidArgument("the reader is closed; open it again with spool.reader(name)")
        with self._lock:
            if not self._buf:
                self._fill(timeout)
            if not self._buf:
                return None
            rec = self._buf.popleft()
            self._delivered = rec.seq
            return rec

    def _fill(self, timeout: Optional[float]) -> None:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _LONG_POLL if deadline is None else max(0.0, deadline - time.monotonic())
            wait = min(left, _LONG_POLL)
            data = self._s.call("POST", self._path("next"),
                                query={"max": 1000, "wait": round(wait, 3), "after": self._delivered},
                                timeout=wait + 30, idempotent=True)
            self._buf.extend(_record(d) for d in _ndjson(data))
            if self._buf or (deadline is not None and time.monotonic() >= deadline):
                return

    def commit(self) -> None:
        if self._delivered is not None and self._delivered != self._acked:
            self._s.json("POST", self._path("ack"), body=json.dumps({"seq": self._delivered}),
                         headers={"Content-Type": "application/json"}, idempotent=True)
            self._acked = self._delivered

    def seek(self, seq: int) -> None:
        _check_seq("seq", seq)
        self._move({"to_seq": seq})

    def rewind(self) -> None:
        self._move({})

    def _move(self, body: Dict[str, Any]) -> None:
        with self._lock:
            self._s.json("POST", self._path("rewind"), body=json.dumps(body),
                         headers={"Content-Type": "application/json"}, idempotent=True)
            self._buf.clear()
            self._delivered = self._acked = None

    def close(self) -> None:
        if not self._closed:
            self.commit()
            self._closed = True

    def _take(self, timeout: Optional[float] = None) -> Optional[_reel.Record]:
        """A record already fetched, or None (``aiter`` takes with it: no I/O)."""
        with self._lock:
            if self._closed or not self._buf:
                return None
            rec = self._buf.popleft()
            self._delivered = rec.seq
            return rec

    def _ready(self, timeout: Optional[float]) -> None:
        """Fetches records (up to ``timeout``), delivering none."""
        if self._closed:
            raise _errors.InvalidArgument("the reader is closed; open it again with spool.reader(name)")
        with self._lock:
            if not self._buf:
                self._fill(timeout)

    def aiter(self):
        return _aio.ready_aiter(self._take, self._ready)

    def __enter__(self) -> "RemoteReader":
        return self

    def __exit__(self, exc_type=None, exc=None, tb=None) -> bool:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
        return False

    def __iter__(self) -> "RemoteReader":
        return self

    def __next__(self) -> _reel.Record:
        rec = self.next(timeout=0)
        if rec is None:
            raise StopIteration
        return rec

    def __repr__(self) -> str:
        return f"reel.Reader({self._name!r})"


class RemoteStream:
    """Records of a served spool by seq range; see ``reel.Stream``."""

    _PAGE = 1000

    def __init__(self, server: _Server, bounds: Dict[str, Any], reverse: bool,
                 limit: Optional[int], live: bool) -> None:
        self._s, self._bounds, self._reverse = server, bounds, reverse
        self._left, self._live = limit, live
        self._buf: "deque[_reel.Record]" = deque()
        self._last: Optional[int] = None
        self._ended = False
        self._pump: Optional[_Pump] = None
        self._end = None
        lt, lte = bounds.get("lt"), bounds.get("lte")
        ends = [x for x in (lt, None if lte is None else lte + 1) if x is not None]
        self._end = min(ends) if ends else None

    def _page(self) -> None:
        q = dict(self._bounds)
        if self._last is not None:
            if self._reverse:
                q["lt"], q["lte"] = self._last, None
            else:
                q["gt"], q["gte"] = self._last, None
        q["reverse"] = self._reverse
        q["limit"] = self._PAGE if self._left is None else min(self._PAGE, self._left)
        got = [_record(d) for d in _ndjson(self._s.call("GET", "/records", query=q))]
        self._buf.extend(got)
        if len(got) < q["limit"]:
            self._ended = True

    def _next_or_end(self, timeout: Optional[float] = None) -> Tuple[Optional[_reel.Record], bool]:
        if self._left == 0:
            return None, True
        if not self._live:
            if not self._buf and not self._ended:
                self._page()
            if not self._buf:
                return None, True
            rec = self._buf.popleft()
        else:
            if self._end is not None and self._last is not None and self._last + 1 >= self._end:
                return None, True
            pump = self._live_pump()
            try:
                item, ended = pump.next(timeout)
            except _errors.Error as e:
                raise _errors.Error(f"{e}; {self._resume_hint()}") from None
            if item is None and ended:
                # A live stream does not end: the server stopped or the connection broke.
                raise _errors.Error("the server ended the live stream (it stopped, or the "
                                    f"connection was cut); {self._resume_hint()}")
            if item is None:
                return None, ended
            rec = _record(item)
            if self._end is not None and rec.seq >= self._end:
                pump.close()
                return None, True
        self._last = rec.seq
        if self._left is not None:
            self._left -= 1
        return rec, False

    def _live_pump(self) -> _Pump:
        """The live stream's response, opened at the first use."""
        if self._pump is None:
            q = {k: v for k, v in self._bounds.items() if k in ("gt", "gte")}
            start = 0
            if q.get("gt") is not None:
                start = q["gt"] + 1
            if q.get("gte") is not None:
                start = max(start, q["gte"])
            self._pump = _Pump(self._s, "/records", {"from_seq": start, "follow": True})
        return self._pump

    def _resume_hint(self) -> str:
        if self._last is None:
            return "stream again to go on"
        return f"stream again with gt={self._last} to go on after the last record delivered"

    def next(self, timeout: Optional[float] = None) -> Optional[_reel.Record]:
        return self._next_or_end(timeout)[0]

    def _take_or_end(self, timeout: Optional[float] = None) -> Tuple[Optional[_reel.Record], bool]:
        """``_next_or_end(0)`` without I/O: ``(None, False)`` when a page must be fetched."""
        if not self._live and not self._buf and not self._ended and self._left != 0:
            return None, False
        return self._next_or_end(0)

    def _ready(self, timeout: Optional[float]) -> None:
        """Fetches the next page, or waits for the live stream's next record, taking none."""
        if not self._live:
            if not self._buf and not self._ended and self._left != 0:
                self._page()
        elif not (self._end is not None and self._last is not None and self._last + 1 >= self._end):
            self._live_pump().ready(timeout)

    def aiter(self):
        return _aio.ready_stream_aiter(self._take_or_end, self._ready)

    def __iter__(self) -> "RemoteStream":
        return self

    def __next__(self) -> _reel.Record:
        while True:
            rec, ended = self._next_or_end(None if not self._live else 0.5)
            if rec is not None:
                return rec
            if ended:
                raise StopIteration
