"""Spool, Reader and Stream behaviour: positions, rewind, streams, options, errors."""

import os
import subprocess
import threading
import time

import pytest

import reel


def test_reader_positions_persist_and_rewind(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    for i in range(10):
        spool.append(i)
    with spool.reader("r") as r:
        assert [r.next(timeout=0).value for _ in range(4)] == [0, 1, 2, 3]
    with spool.reader("r") as r:
        assert r.position == 4
        assert [rec.value for rec in r] == [4, 5, 6, 7, 8, 9]
        assert r.next(timeout=0) is None
        r.rewind()
        assert r.next(timeout=0).value == 0
        r.seek(8)
        assert r.next(timeout=0).value == 8
    with spool.reader("r") as r:
        assert r.position == 9


def test_context_manager_does_not_commit_after_an_exception(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    spool.append_many(range(5))
    with spool.reader() as r:
        r.next(timeout=0)
        r.commit()
    with pytest.raises(RuntimeError):
        with spool.reader() as r:
            r.next(timeout=0)
            r.next(timeout=0)
            raise RuntimeError("processing failed")
    # The two records of the failed block come again.
    with spool.reader() as r:
        assert r.next(timeout=0).value == 1


def test_closed_reader_refuses_and_name_is_exclusive(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    r = spool.reader("x")
    with pytest.raises(reel.Error, match="in use"):
        spool.reader("x")
    r.close()
    with pytest.raises(reel.Error, match="closed"):
        r.next(timeout=0)
    spool.reader("x").close()
    with pytest.raises(reel.InvalidArgument):
        spool.reader("../escape")


def test_python_and_cli_share_reader_positions(tmp_path, reel_bin):
    d = tmp_path / "s"
    spool = reel.Spool(d)
    spool.append_many({"n": i} for i in range(10))
    with spool.reader("shared") as r:
        assert [r.next(timeout=0).value["n"] for _ in range(3)] == [0, 1, 2]
    out = subprocess.run(
        [reel_bin, "read", "--reader", "shared", "--count", "4", str(d)],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out == ['{"n":3}', '{"n":4}', '{"n":5}', '{"n":6}']
    with spool.reader("shared") as r:
        assert r.next(timeout=0).value == {"n": 7}
    subprocess.run([reel_bin, "write", str(d)], input='{"from":"cli"}\n', text=True, check=True)
    assert [rec.value for rec in spool.stream(gte=10)] == [{"from": "cli"}]


def test_next_blocks_until_a_record_arrives(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    r = spool.reader()
    t0 = time.monotonic()
    assert r.next(timeout=0.2) is None
    assert time.monotonic() - t0 >= 0.19
    threading.Timer(0.2, lambda: spool.append("late")).start()
    assert r.next(timeout=10).value == "late"


def test_stream_ranges_and_live(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    spool.append_many(range(10))
    seqs = lambda **kw: [r.seq for r in spool.stream(**kw)]  # noqa: E731
    assert seqs(gt=2, lte=5) == [3, 4, 5]
    assert seqs(gte=7, reverse=True) == [9, 8, 7]
    assert seqs(lt=3, limit=2) == [0, 1]
    live = spool.stream(gte=9, live=True)
    assert live.next(timeout=1).seq == 9
    assert live.next(timeout=0.1) is None
    spool.append("more")
    assert live.next(timeout=5).value == "more"
    bounded = spool.stream(gte=10, lt=12, live=True)
    threading.Timer(0.1, lambda: spool.append("last")).start()
    assert [r.value for r in bounded] == ["more", "last"]
    with pytest.raises(reel.InvalidArgument):
        spool.stream(live=True, reverse=True)


def test_options_and_status(tmp_path):
    d = tmp_path / "s"
    spool = reel.Spool(d, capacity="1m", when_full="reject", durability="always")
    st = spool.status()
    assert (st["capacity"], st["when_full"]) == (1 << 20, "reject")
    assert reel.Spool(d, capacity=1 << 20).status()["capacity"] == 1 << 20
    with pytest.raises(reel.InvalidArgument, match="already holds"):
        reel.Spool(d, capacity="2m")
    with pytest.raises(reel.InvalidArgument):
        reel.Spool(tmp_path / "t", capacity="lots")
    with pytest.raises(reel.InvalidArgument):
        reel.Spool(tmp_path / "t", durability="sometimes")
    with pytest.raises(reel.InvalidArgument):
        reel.Spool(tmp_path / "t", when_full="explode")


def test_full_spool_refuses_with_full(tmp_path):
    spool = reel.Spool(tmp_path / "s", capacity="64k", when_full="reject")
    spool.reader("slow").close()
    with pytest.raises(reel.Full):
        for _ in range(10000):
            spool.append("x" * 1000)
    n = spool.status()["next_seq"]
    assert [r.seq for r in spool.stream()] == list(range(n))


def test_wrong_kind_and_foreign_directory(tmp_path):
    reel.KvStore(tmp_path / "kv")["a"] = 1
    with pytest.raises(reel.Error, match="kv"):
        reel.Spool(tmp_path / "kv").append(1)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(reel.Error, match="notes.txt"):
        reel.Spool(tmp_path / "foreign")


def test_read_only_directory_is_permission_denied(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only directories")
    d = tmp_path / "s"
    reel.Spool(d).append(1)
    os.chmod(d, 0o500)
    try:
        with pytest.raises(reel.PermissionDenied):
            reel.Spool(d).append(2)
    finally:
        os.chmod(d, 0o700)


def test_fork_child_must_reopen(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    spool.append("parent")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            spool.append("child")
        except reel.Error as e:
            code = 0 if "forked child" in str(e) else 2
        try:
            reel.Spool(tmp_path / "s").append("child reopened")
        except Exception:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [r.value for r in spool.stream()] == ["parent", "child reopened"]


def test_a_reader_persists_only_what_was_committed(tmp_path):
    # Dropped without commit (garbage-collected after an exception): nothing persisted.
    spool = reel.Spool(tmp_path / "s")
    spool.append_many(range(5))

    def consume_and_fail():
        r = spool.reader("w")
        r.next(timeout=0)
        r.next(timeout=0)
        raise RuntimeError("processing failed")

    with pytest.raises(RuntimeError):
        consume_and_fail()
    import gc

    gc.collect()
    with spool.reader("w") as r:
        assert r.next(timeout=0).value == 0
        r.next(timeout=0)
        r.commit()
        r.next(timeout=0)
    # The context manager commits on a normal exit: 3 consumed.
    r = spool.reader("w")
    assert r.position == 3
    del r


def test_seek_past_the_end_is_refused(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    spool.append_many(range(10))
    with spool.reader("x") as r:
        with pytest.raises(reel.InvalidArgument, match="past the end"):
            r.seek(11)
        r.seek(10)
        spool.append_many(["A", "B"])
        assert [rec.seq for rec in r] == [10, 11]


def test_endless_timeouts_wait_instead_of_failing(tmp_path):
    spool = reel.Spool(tmp_path / "s")
    spool.append(1)
    with spool.reader("x") as r:
        for t in (float("inf"), 1e19, 1e300):
            r.seek(0)
            assert r.next(timeout=t).value == 1


def test_a_forked_child_leaves_its_parents_reader_alone(tmp_path):
    # The parent reads 5 records without committing and forks; the child exits normally
    # (dropping every object, the parent's reader included); the parent is killed.
    script = """
import os, sys, reel
spool = reel.Spool(sys.argv[1])
spool.append_many(range(10))
r = spool.reader("p")
for _ in range(5):
    r.next(timeout=0)
if os.fork() == 0:
    sys.exit(0)
os.wait()
os.kill(os.getpid(), 9)
"""
    subprocess.run([os.sys.executable, "-c", script, str(tmp_path / "s")], check=False)
    with reel.Spool(tmp_path / "s").reader("p") as r:
        assert r.position == 0


def test_a_store_kept_in_object_storage_refuses_writes_from_python(tmp_path):
    """Only the CLI and the server upload what they append: a record appended from
    Python stayed in the directory, never reached the store, and was still accepted
    after another directory took the store over (fencing this one)."""
    d = tmp_path / "tiered"
    s = reel.Spool(str(d))
    s.append({"n": 1})
    del s
    (d / "reel.tier").write_text("url = \"s3://bucket/prefix\"\n")
    s = reel.Spool(str(d))
    with pytest.raises(reel.InvalidArgument, match="object storage"):
        s.append({"n": 2})
    with pytest.raises(reel.InvalidArgument, match="object storage"):
        s.append_many([{"n": 3}])
    assert [r.value for r in s.stream()] == [{"n": 1}]
    for make, write in [
        (reel.KvStore, lambda kv: kv.set("a", 1)),
        (reel.ListStore, lambda ls: ls.append("k", [1])),
    ]:
        other = tmp_path / make.__name__
        make(str(other))
        (other / "reel.tier").write_text("")
        with pytest.raises(reel.InvalidArgument, match="object storage"):
            write(make(str(other)))


def test_a_store_opened_by_a_relative_path_stays_put_when_the_process_changes_directory(
        tmp_path, monkeypatch):
    """A relative path used to follow ``os.chdir``: reads came from another store of
    the same name, and a segment roll created files there and deleted its segment."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        monkeypatch.chdir(tmp_path / d)
        reel.KvStore("cfg").set("who", d)
        reel.Spool("sp", capacity="1MiB").append(d)
    monkeypatch.chdir(tmp_path / "a")
    kv, sp = reel.KvStore("cfg"), reel.Spool("sp")
    monkeypatch.chdir(tmp_path / "b")
    assert kv.get("who") == "a"
    assert [r.value for r in sp.stream()] == ["a"]
    for i in range(3000):
        sp.append({"i": i, "pad": "x" * 200})  # rolls segments
    monkeypatch.chdir(tmp_path)
    assert [r.value for r in reel.Spool("b/sp").stream()] == ["b"]
    assert reel.Spool("a/sp").status()["records"] > 1


def test_an_empty_path_is_refused_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(reel.InvalidArgument, match="empty path"):
        reel.Spool("")
    assert list(tmp_path.iterdir()) == []


def test_a_record_goes_through_pickle(tmp_path):
    """Records could not be pickled, so not sent through multiprocessing queues."""
    import pickle

    spool = reel.Spool(tmp_path / "s")
    spool.append({"a": [1, 2]}, key="k")
    rec = next(iter(spool.stream()))
    again = pickle.loads(pickle.dumps(rec))
    assert again == rec and again.key == "k" and again.value == {"a": [1, 2]}
