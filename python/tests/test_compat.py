"""The Python examples of kvspool's and jk_keyvaluestore's documents (in
../shared/prior-art/), run unchanged against the shims."""

import os
import subprocess
import threading

import pytest

import reel


def test_kvspool_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from reel.compat import kvspool

    # kvspool's "Sample Python writer", verbatim.
    kv = kvspool.Kvspool("spool")
    d = {"day": "Wed", "temp": 37}
    kv.write(d)

    # kvspool's "Python" section, verbatim.
    kv = kvspool.Kvspool("spool")
    d = {"day":"Wednesday","user":"Troy"}
    kv.write(d)

    d = kv.read()
    assert d == {"day": "Wed", "temp": 37}
    d = kv.read()
    assert d == {"day": "Wednesday", "user": "Troy"}
    assert kv.read(blocking=False) is None
    threading.Timer(0.1, lambda: kvspool.Kvspool("spool").write({"late": "yes"})).start()
    assert kv.read() == {"late": "yes"}
    kv.close()
    # The position persisted: a new reader resumes after what was read.
    assert kvspool.Kvspool("spool").read(blocking=False) is None
    with pytest.raises(TypeError):
        kv.write(["not", "a", "dict"])


def test_jk_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("my/data/directory")
    from reel.compat.jk import DirBasedKeyValueStore

    # jk_keyvaluestore's README examples, verbatim, in order.
    ds = DirBasedKeyValueStore(dirPath="my/data/directory", identifier=1)
    ds.put("someKey", [ "some", "value" ])
    ds["someKey"] = [ "some", "value" ]
    value = ds.get("someKey")
    assert value == ["some", "value"]
    value = ds["someKey"]
    assert value == ["some", "value"]
    bKeyValuePairExists = ds.contains("someKey")
    assert bKeyValuePairExists
    ds.put("someKey", "someValue")
    ds.delete("someKey")
    assert ds.contains("someKey") == False  # noqa: E712
    ds.remove("someKey")
    del ds["someKey"]
    ds.clear()
    allKeys = ds.keys()
    assert allKeys == []

    # Program A and program B on one directory.
    dsA = DirBasedKeyValueStore(dirPath="my/data/directory", identifier=1)
    dsB = DirBasedKeyValueStore(dirPath="my/data/directory", identifier=2)
    dsA.put("a.key:with.dots", {"n": 1})
    assert dsB.get("a.key:with.dots") == {"n": 1}
    dsB.put("a.key:with.dots", {"n": 2})  # another instance updates it
    dsA.put("a.key:with.dots", {"n": 3})  # and the creator can still update it
    dsB.synchronize()
    assert dsB["a.key:with.dots"] == {"n": 3}
    assert dsA.get("missing") is None and dsA["missing"] is None
    assert dsA.keys() == ["a.key:with.dots"]


def test_jk_read_only_and_identifiers(tmp_path):
    from reel.compat.jk import DirBasedKeyValueStore

    d = str(tmp_path / "store")
    os.makedirs(d)
    ro = DirBasedKeyValueStore(d)
    assert ro.get("k") is None and ro.keys() == [] and not ro.contains("k")
    assert not os.listdir(d), "a read-only instance must not create the store"
    DirBasedKeyValueStore(d, identifier="writer-1").put("k", 1)
    assert ro.get("k") == 1
    with pytest.raises(reel.PermissionDenied):
        ro.put("k", 2)
    with pytest.raises(reel.PermissionDenied):
        ro.remove("k")
    with pytest.raises(ValueError):
        DirBasedKeyValueStore(d, identifier="bad id!")
    with pytest.raises(ValueError):
        DirBasedKeyValueStore(d, identifier=-1)


def test_jk_takes_what_jk_takes_and_lists_only_keys_with_values(tmp_path, reel_bin):
    """The shim refused identifiers and values jk_keyvaluestore accepts (its pattern
    takes `,`; it stores values through JSON, int dict keys included), and listed a key
    that only leads to a deeper path (written by `reel kv set`) as holding a value."""
    from reel.compat.jk import DirBasedKeyValueStore

    d = str(tmp_path / "store")
    ds = DirBasedKeyValueStore(d, identifier="node,1")
    ds.put("a", {1: "one", "t": (1, 2)})
    assert ds.get("a") == {"1": "one", "t": [1, 2]}
    subprocess.run([reel_bin, "kv", "set", d, "some.key", "v"], check=True)
    assert ds.keys() == ["a"] and len(ds) == 1
