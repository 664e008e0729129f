"""Every value kind round-trips; what cannot be stored raises and stores nothing."""

import math
import subprocess

import pytest

import reel

VALUES = [
    {"day": "Wed", "temp": 37},
    {"nested": {"list": [1, [2, [3, {"deep": None}]]], "empty": {}, "e": []}},
    "unicode: héllo wörld ✓ 日本 🎉",
    "",
    "x" * 70000,
    0,
    -1,
    -32,
    -33,
    127,
    128,
    2**31,
    -(2**31) - 1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.25,
    1e300,
    5e-324,
    True,
    False,
    None,
    [],
    [1, "two", 3.0, None, True],
    b"",
    b"\x00\xff raw bytes \x80",
    {"k" * 40: list(range(100))},
    {str(i): i for i in range(70000)},
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_spool_round_trip(tmp_path, value):
    spool = reel.Spool(tmp_path / "s")
    seq = spool.append(value, key="k")
    rec = spool.reader().next(timeout=0)
    assert (rec.seq, rec.key, rec.value) == (seq, "k", value)
    assert type(rec.value) is type(value)


def test_tuple_reads_back_as_list(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    spool.append({"t": (1, 2)})
    assert spool.reader().next(timeout=0).value == {"t": [1, 2]}


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_kv_round_trip(tmp_path, value):
    kv = reel.KvStore(tmp_path / "kv")
    kv["a.b"] = value
    assert kv["a.b"] == value
    assert kv.get_meta(("a", "b"))["value"] == value


class Opaque:
    pass


BAD = [
    ({1, 2}, TypeError, "set"),
    (Opaque(), TypeError, "Opaque"),
    ({"ok": [1, {2, 3}]}, TypeError, "set"),
    ({1: "int key"}, TypeError, "dict keys must be str"),
    ({"b": b"nested bytes"}, TypeError, "bytes"),
    (2**64, TypeError, "64 bits"),
    (-(2**63) - 1, TypeError, "64 bits"),
    (math.nan, ValueError, "NaN"),
    ({"f": math.inf}, ValueError, "inf"),
]


@pytest.mark.parametrize("value,exc,words", BAD, ids=lambda v: repr(v)[:20])
def test_unstorable_raises_and_stores_nothing(tmp_path, value, exc, words):
    spool = reel.Spool(tmp_path / "s")
    spool.append("before")
    with pytest.raises(exc, match=words):
        spool.append(value)
    with pytest.raises(exc):
        spool.append_many(["fine", value])
    assert spool.status()["next_seq"] == 1
    kv = reel.KvStore(tmp_path / "kv")
    with pytest.raises(exc):
        kv.set("p", value)
    assert "p" not in kv


def test_container_holding_itself_is_refused(tmp_path):
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested"):
        reel.Spool(tmp_path / "s").append(loop)


def _nested(levels, inner):
    v = inner
    for _ in range(levels):
        v = [v]
    return v


def test_nesting_has_the_limit_of_reel_write(tmp_path, reel_bin):
    # What Python stores must go back through `reel write` (127 levels, not 128).
    spool = reel.Spool(tmp_path / "s")
    spool.append(_nested(127, 1))
    spool.append(_nested(125, {"k": []}))
    for bad in (_nested(128, 1), _nested(127, []), _nested(127, {"k": 1})):
        with pytest.raises(ValueError, match="127 levels"):
            spool.append(bad)
    out = subprocess.run([reel_bin, "read", "--no-wait", str(tmp_path / "s")],
                         capture_output=True, check=True).stdout
    subprocess.run([reel_bin, "init", str(tmp_path / "t")], check=True, capture_output=True)
    subprocess.run([reel_bin, "write", str(tmp_path / "t")], input=out, check=True,
                   capture_output=True)
    assert [r.value for r in reel.Spool(tmp_path / "t").stream()] == [
        _nested(127, 1), _nested(125, {"k": []})]


def test_append_many_is_one_batch_with_dense_seqs(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    first = spool.append_many(({"i": i} for i in range(1000)), key="batch")
    assert first == 0
    got = [(r.seq, r.key, r.value["i"]) for r in spool.stream()]
    assert got == [(i, "batch", i) for i in range(1000)]
    with pytest.raises(reel.InvalidArgument):
        spool.append_many([])


def test_a_bytes_subclass_is_stored_as_bytes(tmp_path):
    """It was refused as if it were inside a dict or list."""
    class Blob(bytes):
        pass

    s = reel.Spool(str(tmp_path / "s"))
    s.append(Blob(b"\x00\x01"))
    assert [r.value for r in s.stream()] == [b"\x00\x01"]


def test_opening_a_missing_store_without_creating_it_is_not_found(tmp_path):
    with pytest.raises(reel.NotFound):
        reel.KvStore(str(tmp_path / "missing"), create=False)
