"""The same classes on a `reel serve` URL: each test runs against a directory and
against the server serving that directory's parent, and must see the same results."""

import socket
import subprocess
import threading
import time
import urllib.request

import pytest

import reel


def _serve(reel_bin, root):
    """`reel serve` over `root` on a free port, once it answers: (process, base URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [reel_bin, "serve", "--listen", f"127.0.0.1:{port}", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            return proc, base
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("reel serve did not start: " + proc.stderr.read().decode())


@pytest.fixture(scope="module")
def server(reel_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    proc, base = _serve(reel_bin, root)
    yield root, base
    proc.terminate()
    proc.wait(10)


counter = iter(range(10**6))


@pytest.fixture(params=["local", "remote"])
def where(request, server, reel_bin):
    """make(kind) -> a fresh store's directory (local) or URL (remote), both under the
    served root; spools are created with `reel init` first, as the server requires."""
    root, base = server

    def make(kind):
        name = f"{kind}{next(counter)}"
        if kind == "spool":
            subprocess.run([reel_bin, "init", str(root / name)], check=True, capture_output=True)
        return str(root / name) if request.param == "local" else f"{base}/{name}"

    make.remote = request.param == "remote"
    make.root = root
    return make


def test_spool_append_read_commit_resume(where):
    url = where("spool")
    spool = reel.Spool(url)
    assert spool.append({"n": 0}, key="k") == 0
    assert spool.append_many([{"n": i} for i in range(1, 5)]) == 1
    with spool.reader("r") as r:
        first = r.next(timeout=5)
        assert (first.seq, first.key, first.value) == (0, "k", {"n": 0})
        assert r.next(timeout=0).value == {"n": 1}
    with spool.reader("r") as r:
        assert [rec.value["n"] for rec in r] == [2, 3, 4]
        threading.Timer(0.2, lambda: spool.append({"n": 5})).start()
        assert r.next(timeout=10).value == {"n": 5}
        assert r.next(timeout=0.1) is None
    st = spool.status()
    assert st["next_seq"] == 6
    assert {x["name"]: x["position"] for x in st["readers"]}["r"] == 6


def test_reader_exception_exit_does_not_commit(where):
    spool = reel.Spool(where("spool"))
    spool.append_many(range(4))
    with pytest.raises(RuntimeError):
        with spool.reader() as r:
            r.next(timeout=5)
            raise RuntimeError("failed")
    with spool.reader() as r:
        assert r.next(timeout=5).value == 0


def test_stream_ranges_and_live(where):
    spool = reel.Spool(where("spool"))
    spool.append_many(range(2500))
    assert [r.seq for r in spool.stream(gt=2, lte=5)] == [3, 4, 5]
    assert [r.seq for r in spool.stream(gte=2497, reverse=True)] == [2499, 2498, 2497]
    assert len(list(spool.stream())) == 2500
    assert [r.seq for r in spool.stream(gte=1000, limit=3)] == [1000, 1001, 1002]
    live = spool.stream(gte=2499, live=True)
    assert live.next(timeout=10).seq == 2499
    assert live.next(timeout=0.2) is None
    spool.append("more")
    assert live.next(timeout=10).value == "more"
    bounded = spool.stream(gte=2500, lt=2502, live=True)
    threading.Timer(0.2, lambda: spool.append("last")).start()
    assert [r.value for r in bounded] == ["more", "last"]


def test_kv(where):
    kv = reel.KvStore(where("kv"))
    rev = kv.set("a.b:.c", {"x": 1})
    assert kv.get(("a", "b.c")) == {"x": 1}
    assert kv.get_meta("a.b:.c")["rev"] == rev
    assert kv.get("missing", None) is None
    with pytest.raises(KeyError):
        kv["missing"]
    with pytest.raises(reel.ConditionFailed):
        kv.set("a.b:.c", 2, if_rev=rev + 100)
    with pytest.raises(reel.ConditionFailed):
        kv.set("a.b:.c", 2, if_absent=True)
    kv.set("a.b:.c", 2, if_rev=rev)
    kv["a.d"] = 3
    kv[("n", 12)] = "twelve"
    assert kv.keys() == ["a", "n"]
    assert kv.keys("a") == ["a.b:.c", "a.d"]
    assert kv.keys(recursive=True, tuples=True) == [("a", "b.c"), ("a", "d"), ("n", 12)]
    assert kv.tree("a") == {"b:.c": {"_": 2}, "d": {"_": 3}}
    assert len(kv) == 3 and "a.d" in kv and "a.x" not in kv
    del kv["a.d"]
    with pytest.raises(reel.NotFound):
        kv.delete("a.d")
    assert kv.delete_tree("a") == 1
    assert kv.clear() == 1 and len(kv) == 0
    with pytest.raises(TypeError if where.remote else ValueError):
        kv.set("p", {1, 2}) if where.remote else kv.set("p", float("nan"))


def test_kv_watch(where):
    kv = reel.KvStore(where("kv"))
    kv["cfg.a"] = 1
    w = kv.watch("cfg", fetch=True)
    assert w.next(10) == {"path": "cfg.a", "value": 1, "rev": 0}
    assert w.next(10) == {"synced": True}
    assert w.next(0.1) is None
    threading.Timer(0.1, lambda: (kv.set("cfg.b", 2), kv.delete("cfg.a"))).start()
    assert w.next(10) == {"path": "cfg.b", "value": 2, "rev": 1}
    assert w.next(10) == {"path": "cfg.a", "deleted": True, "rev": 2}


def test_lists(where):
    lists = reel.ListStore(where("lists"))
    assert lists.append("o", [{"n": i} for i in range(5)], nonce=10) == {
        "appended": 5, "duplicates": 0, "next_offset": 5}
    assert lists.append("o", [{"n": 4}, {"n": 5}], nonce=14)["duplicates"] == 1
    page = lists.read("o", limit=4)
    assert [i["nonce"] for i in page["items"]] == [10, 11, 12, 13]
    rest = lists.read("o", continuation=page["continuation"])
    assert [i["value"]["n"] for i in rest["items"]] == [4, 5]
    assert [i["offset"] for i in lists.read("o", reverse=True, limit=2)["items"]] == [5, 4]
    assert [i["offset"] for i in lists.read("o", from_nonce=12, limit=1)["items"]] == [2]
    assert lists.info("o")["count"] == 6
    assert lists.keys() == ["o"]
    with pytest.raises(reel.NotFound):
        lists.info("nobody")


def test_remote_errors_and_shared_positions(server, reel_bin):
    root, base = server
    with pytest.raises(reel.NotFound):
        reel.Spool(f"{base}/never-created")
    with pytest.raises(reel.InvalidArgument):
        reel.Spool(f"{base}/")
    subprocess.run([reel_bin, "init", str(root / "shared")], check=True)
    spool = reel.Spool(f"{base}/shared")
    with pytest.raises(TypeError):
        spool.append(b"bytes")
    with pytest.raises(reel.InvalidArgument):
        reel.Spool(f"{base}/shared", capacity="1g")
    spool.append_many([{"n": i} for i in range(6)])
    with spool.reader("both") as r:
        assert [r.next(timeout=5).value["n"] for _ in range(2)] == [0, 1]
    out = subprocess.run([reel_bin, "read", "--no-wait", "--count", "2", "--reader", "both",
                          str(root / "shared")], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ['{"n":2}', '{"n":3}']
    with spool.reader("both") as r:
        assert r.next(timeout=5).value == {"n": 4}
        r.rewind()
        assert r.next(timeout=5).value == {"n": 0}


def test_dict_keys_must_be_str_everywhere(where):
    # json.dumps would store {1: 'a'} as {"1": "a"}; a local store refuses it: so must a
    # remote one, rather than change (or, with {1: 'a', '1': 'b'}, lose) data.
    spool = reel.Spool(where("spool"))
    for bad in ({1: "a"}, {True: 1}, {None: 2}, {"ok": [{1.5: 2}]}):
        with pytest.raises(TypeError):
            spool.append(bad)
    kv = reel.KvStore(where("kv"))
    with pytest.raises(TypeError):
        kv.set("a", {1: "a", "1": "b"})


class _DroppingServer:
    """A fake HTTP server that answers GETs and closes the connection, unanswered, on
    every other request: an answer lost after the request was carried out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        f = conn.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                break
            method = line.split()[0].decode()
            length = 0
            while (h := f.readline()) not in (b"\r\n", b""):
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
            f.read(length)
            self.requests.append(method)
            if method != "GET":
                break
            body = b'{"name":"s","records":0}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.close()


def test_an_append_whose_answer_was_lost_is_not_sent_twice():
    srv = _DroppingServer()
    url = f"http://127.0.0.1:{srv.port}/s"
    lists = reel.ListStore(url)
    with pytest.raises(reel.Error, match="may or may not have been carried out"):
        lists.append("k", [1])
    assert srv.requests.count("POST") == 1
    kv = reel.KvStore(url)
    with pytest.raises(reel.Error, match="may or may not"):
        kv.set("a", 1, if_rev=3)
    assert srv.requests.count("PUT") == 1
    # A plain set is the same done twice: it is sent once more, then it fails.
    with pytest.raises(reel.Error, match="cannot reach the server"):
        kv.set("a", 1)
    assert srv.requests.count("PUT") == 3


def test_a_server_that_cannot_be_reached_is_a_reel_error():
    """A refused connection surfaced as a raw ConnectionRefusedError, not a reel.Error."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(reel.Error, match="cannot reach the server"):
        reel.KvStore(f"http://127.0.0.1:{port}/s").get("a")


def test_ints_beyond_64_bits_raise_the_same_error_everywhere(where):
    spool = reel.Spool(where("spool"))
    for bad in (2**64, -(2**63) - 1, {"a": [1, 2**70]}):
        with pytest.raises(TypeError, match="64 bits"):
            spool.append(bad)
    spool.append({"edge": [2**64 - 1, -(2**63)]})
    assert list(spool.stream())[-1].value == {"edge": [2**64 - 1, -(2**63)]}
    kv = reel.KvStore(where("kv"))
    with pytest.raises(TypeError, match="64 bits"):
        kv.set("a", 2**64)
    lists = reel.ListStore(where("lists"))
    with pytest.raises(TypeError, match="64 bits"):
        lists.append("k", [{"n": -(2**64)}])


def test_an_oversize_record_raises_the_same_error_everywhere(where):
    spool = reel.Spool(where("spool"))
    with pytest.raises(reel.InvalidArgument):
        spool.append({"big": "x" * (17 << 20)})
    spool.append({"small": 1})
    assert [r.value for r in spool.stream()] == [{"small": 1}]


def test_a_delete_whose_answer_was_lost_is_not_sent_twice():
    # Sent again, it would answer 404 (or 0 deleted) for a delete that happened.
    srv = _DroppingServer()
    kv = reel.KvStore(f"http://127.0.0.1:{srv.port}/s")
    with pytest.raises(reel.Error, match="may or may not"):
        kv.delete("a")
    with pytest.raises(reel.Error, match="may or may not"):
        kv.delete_tree("a")
    assert srv.requests.count("DELETE") == 2


def test_nonces_beyond_64_bits_are_ints_everywhere(where):
    """They travel as decimal strings over HTTP; the remote client used to hand the
    strings back from list reads and info."""
    lists = reel.ListStore(where("lists"))
    lists.append("big", [1, 2], nonce=2**64 - 1)
    lists.append("big", [3], nonce=2**100)
    assert lists.info("big")["last_nonce"] == 2**100
    items = lists.read("big", from_nonce=2**64)["items"]
    assert [i["nonce"] for i in items] == [2**64, 2**100]
    assert all(isinstance(i["nonce"], int) for i in lists.read("big")["items"])


def test_paths_with_line_separators_list_as_themselves(where):
    """The remote client split the key list at every line boundary Python knows (\\r,
    \\x1c-\\x1e, \\x85, \\u2028, and \\n, which a path may hold too), inventing keys;
    it now asks for the list as JSON."""
    kv = reel.KvStore(where("kv"))
    paths = ["k\u2028x", "k\x85y", "k\x1cz", "k\rw", "a\nb", "plain"]
    for p in paths:
        kv.set((p,), "v")
    assert len(kv.keys(recursive=True)) == len(paths)
    assert len(kv) == len(paths)


def test_a_reader_may_be_closed_twice(where):
    """An explicit close inside `with` used to raise locally (not remotely)."""
    s = reel.Spool(where("spool"))
    s.append({"n": 1})
    with s.reader("twice") as r:
        assert r.next(timeout=0).value == {"n": 1}
        r.close()
    r.close()


def test_a_live_stream_raises_when_its_server_dies(reel_bin, tmp_path):
    """A live stream does not end: when the server went away it used to stop like a
    finished iteration, so a consumer could take a dead server for a quiet spool."""
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run([reel_bin, "init", str(root / "ev")], check=True, capture_output=True)
    proc, base = _serve(reel_bin, root)
    try:
        spool = reel.Spool(f"{base}/ev")
        spool.append({"n": 0})
        stream = spool.stream(live=True)
        assert next(iter(stream)).value == {"n": 0}
        proc.kill()
        proc.wait(10)
        with pytest.raises(reel.Error, match="gt=0"):
            for _ in stream:
                pass
    finally:
        proc.kill()


def test_len_and_iteration_count_a_value_at_the_root(where):
    """They left a value stored at `:` out, while `in` and delete_tree saw it."""
    kv = reel.KvStore(where("kv"))
    kv.set(":", "root value")
    kv.set("a", 1)
    assert ":" in kv
    assert len(kv) == 2
    assert sorted(kv) == [":", "a"]
    assert kv.delete_tree(":") == 2


def test_bad_arguments_raise_the_same_exceptions_everywhere(where):
    s = reel.Spool(where("spool"))
    s.append({"n": 1})
    with pytest.raises(TypeError):
        s.append({"n": 2}, key=5)
    with pytest.raises(OverflowError):
        s.stream(gt=-1)
    with s.reader("args") as r:
        with pytest.raises(reel.InvalidArgument):
            r.next(-1)
        with pytest.raises(reel.InvalidArgument):
            r.next(float("nan"))
        with pytest.raises(OverflowError):
            r.seek(-1)
    assert [x.value for x in s.stream()] == [{"n": 1}]


def test_an_empty_list_key_is_refused_everywhere(where):
    with pytest.raises(reel.InvalidArgument, match="empty"):
        reel.ListStore(where("lists")).append("", [1])


def test_a_watch_can_be_closed_everywhere(where):
    """The local watch had no close(), the remote one did."""
    kv = reel.KvStore(where("kv"))
    kv.set("a", 1)
    w = kv.watch("a", fetch=True)
    assert w.next(5)["path"] == "a"
    w.close()
    w.close()
