"""KvStore: paths, conditions, keys, tree, watch, the mapping protocol; ListStore."""

import threading
import time

import pytest

import reel


def test_paths_text_and_tuples(tmp_path):
    kv = reel.KvStore(tmp_path / "kv")
    kv.set("a.b:.c", 1)
    assert kv.get(("a", "b.c")) == 1
    kv.set(("n", 12, 1.5, True, None, b"\x01"), "mixed")
    assert kv.keys(recursive=True) == ["a.b:.c", "n:12:1:.5:t:n:y01"]
    assert kv.keys(recursive=True, tuples=True) == [("a", "b.c"), ("n", 12, 1.5, True, None, b"\x01")]
    assert kv.keys() == ["a", "n"]
    with pytest.raises(reel.InvalidArgument):
        kv.get("a..b")
    with pytest.raises(TypeError):
        kv.get(("a", object()))


def test_get_default_and_not_found(tmp_path):
    kv = reel.KvStore(tmp_path / "kv")
    assert kv.get("missing", None) is None
    assert kv.get("missing", 5) == 5
    with pytest.raises(KeyError):
        kv.get("missing")
    with pytest.raises(reel.NotFound, match="missing"):
        kv["missing"]
    with pytest.raises(reel.NotFound):
        kv.get_meta("missing")
    with pytest.raises(reel.NotFound):
        kv.delete("missing")


def test_conditions(tmp_path):
    kv = reel.KvStore(tmp_path / "kv")
    rev = kv.set("p", "v1", if_absent=True)
    with pytest.raises(reel.ConditionFailed, match="revision"):
        kv.set("p", "v2", if_absent=True)
    rev2 = kv.set("p", "v2", if_rev=rev)
    with pytest.raises(reel.ConditionFailed):
        kv.set("p", "v3", if_rev=rev)
    with pytest.raises(reel.ConditionFailed):
        kv.delete("p", if_rev=rev)
    assert kv.get_meta("p")["rev"] == rev2
    kv.delete("p", if_rev=rev2)
    assert "p" not in kv
    with pytest.raises(reel.InvalidArgument):
        kv.set("p", 1, if_rev=1, if_absent=True)


def test_mapping_protocol_tree_and_clear(tmp_path):
    kv = reel.KvStore(tmp_path / "kv")
    kv["x.y"] = 1
    kv["x.z"] = 2
    kv["x"] = 0
    kv["_u"] = "under"
    assert len(kv) == 4 and sorted(kv) == ["_u", "x", "x.y", "x.z"]
    assert "x.y" in kv and "x.q" not in kv
    assert kv.tree("x") == {"_": 0, "y": {"_": 1}, "z": {"_": 2}}
    assert kv.tree()["__u"] == {"_": "under"}
    assert kv.tree("nothing") is None
    del kv["x.y"]
    assert kv.keys("x") == ["x.z"]
    assert kv.delete_tree("x") == 2
    assert kv.clear() == 1
    assert len(kv) == 0 and kv.clear() == 0


def test_watch_fetch_and_live_changes(tmp_path):
    kv = reel.KvStore(tmp_path / "kv")
    kv["cfg.a"] = 1
    kv["other"] = 0
    w = kv.watch("cfg", fetch=True)
    assert w.next(5) == {"path": "cfg.a", "value": 1, "rev": 0}
    assert w.next(5) == {"synced": True}
    assert w.next(0.05) is None
    threading.Timer(0.1, lambda: (kv.set("cfg.b", 2), kv.delete("cfg.a"), kv.set("other", 1))).start()
    assert w.next(5) == {"path": "cfg.b", "value": 2, "rev": 2}
    assert w.next(5) == {"path": "cfg.a", "deleted": True, "rev": 3}
    assert w.next(0.3) is None
    replay = kv.watch("cfg", from_rev=0)
    assert replay.next(5)["rev"] == 2


def test_kv_shared_between_handles_and_cli(tmp_path, reel_bin):
    import subprocess

    d = tmp_path / "kv"
    a, b = reel.KvStore(d), reel.KvStore(d)
    a["k"] = {"v": 1}
    assert b["k"] == {"v": 1}
    subprocess.run([reel_bin, "kv", "set", "-e", str(d), "k", '{"v":2}'], check=True)
    assert a["k"] == {"v": 2}
    out = subprocess.run([reel_bin, "kv", "get", str(d), "k"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '{"v":2}'


def test_lists_nonces_paging_and_info(tmp_path):
    lists = reel.ListStore(tmp_path / "l")
    assert lists.append("orders", [{"n": i} for i in range(5)], nonce=10) == {
        "appended": 5, "duplicates": 0, "next_offset": 5}
    # A retried batch stores nothing twice.
    assert lists.append("orders", [{"n": 3}, {"n": 4}, {"n": 5}], nonce=13) == {
        "appended": 1, "duplicates": 2, "next_offset": 6}
    assert lists.append("solo", {"one": "dict"})["appended"] == 1
    page = lists.read("orders", limit=4)
    assert [i["offset"] for i in page["items"]] == [0, 1, 2, 3]
    assert [i["nonce"] for i in page["items"]] == [10, 11, 12, 13]
    rest = lists.read("orders", continuation=page["continuation"])
    assert [i["value"]["n"] for i in rest["items"]] == [4, 5]
    back = lists.read("orders", reverse=True, limit=2)
    assert [i["offset"] for i in back["items"]] == [5, 4]
    assert [i["offset"] for i in lists.read("orders", from_nonce=12, limit=2)["items"]] == [2, 3]
    assert [i["offset"] for i in lists.read("orders", from_offset=4)["items"]] == [4, 5]
    ts = lists.read("orders", from_offset=5)["items"][0]["ts"]
    assert lists.read("orders", from_time=ts)["items"][-1]["offset"] == 5
    info = lists.info("orders")
    assert (info["count"], info["next_offset"], info["last_nonce"]) == (6, 6, 15)
    assert lists.keys() == ["orders", "solo"]
    with pytest.raises(reel.NotFound):
        lists.info("nobody")
    with pytest.raises(reel.InvalidArgument):
        lists.read("orders", from_offset=1, from_nonce=1)
    with pytest.raises(reel.Error):
        lists.read("orders", continuation="garbage")
    with pytest.raises(TypeError):
        lists.append("orders", [b"bytes"])
    big = 2**100
    lists.append("big", ["x"], nonce=big, ts=1_000_000)
    item = lists.read("big")["items"][0]
    assert (item["ts"], int(item["nonce"])) == (1_000_000, big)


def test_tree_keeps_bytes_and_list_nonces_stay_ints(tmp_path):
    kv = reel.KvStore(tmp_path / "kv")
    kv["b"] = b"\x01"
    kv["d"] = {"$bytes": "01"}
    assert kv.tree() == {"b": {"_": b"\x01"}, "d": {"_": {"$bytes": "01"}}}
    lists = reel.ListStore(tmp_path / "l")
    lists.append("n", ["v", "w"], nonce=2**64)
    page = lists.read("n")
    assert [i["nonce"] for i in page["items"]] == [2**64, 2**64 + 1]
    assert lists.info("n")["last_nonce"] == 2**64 + 1
    again = lists.read("n", from_nonce=page["items"][1]["nonce"])
    assert [i["value"] for i in again["items"]] == ["w"]


def test_a_continuation_with_a_start_is_refused(tmp_path):
    """A start given with a continuation token was ignored without a word."""
    lists = reel.ListStore(tmp_path / "l")
    lists.append("k", [1, 2, 3])
    page = lists.read("k", limit=1, from_offset=0)
    with pytest.raises(reel.InvalidArgument, match="continuation"):
        lists.read("k", continuation=page["continuation"], from_offset=2)
