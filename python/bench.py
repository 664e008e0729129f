"""Speed of the Python package against plain Python doing the same job in the same
interpreter; prints one JSON object. Run: python python/bench.py [--records N].

Baselines: appending `json.dumps(d) + "\\n"` to a file (buffered, as kvspool users' own
code would), and reading those lines back with `json.loads`. Ratios above 1 mean reel is
faster.
"""

import argparse
import json
import os
import shutil
import tempfile
import sys
import time

# Import the installed package, not the source tree beside this script (which lacks the
# compiled module).
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import reel  # noqa: E402


def rate(n, seconds):
    return round(n / seconds)


def best(fn, repeat=3):
    """Best of `repeat` runs: the least disturbed by the rest of the machine."""
    return min(fn() for _ in range(repeat))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--keys", type=int, default=100_000)
    args = ap.parse_args()
    n, nkeys = args.records, args.keys
    docs = [{"day": "Wed", "user": "Troy", "temp": 37 + i % 10, "seq": i} for i in range(n)]
    root = tempfile.mkdtemp(prefix="reel-bench-")
    out = {"records": n, "keys": nkeys}
    try:
        # Baseline: JSON lines into a file.
        def file_write():
            path = os.path.join(root, "lines.json")
            t = time.perf_counter()
            with open(path, "w") as f:
                for d in docs:
                    f.write(json.dumps(d) + "\n")
            return time.perf_counter() - t

        def file_read():
            path = os.path.join(root, "lines.json")
            t = time.perf_counter()
            with open(path) as f:
                got = [json.loads(line) for line in f]
            assert len(got) == n
            return time.perf_counter() - t

        base_w, base_r = best(file_write), best(file_read)
        out["file_write_json_per_s"] = rate(n, base_w)
        out["file_read_json_per_s"] = rate(n, base_r)

        counter = iter(range(1_000_000))

        def fresh():
            d = os.path.join(root, f"s{next(counter)}")
            return reel.Spool(d, capacity="4g")

        def append_one():
            s = fresh()
            t = time.perf_counter()
            for d in docs:
                s.append(d)
            return time.perf_counter() - t

        def append_many():
            s = fresh()
            t = time.perf_counter()
            for i in range(0, n, 1000):
                s.append_many(docs[i : i + 1000])
            return time.perf_counter() - t

        a1, am = best(append_one), best(append_many)
        out["append_per_s"] = rate(n, a1)
        out["append_many_1000_per_s"] = rate(n, am)

        spool = fresh()
        for i in range(0, n, 1000):
            spool.append_many(docs[i : i + 1000])

        def read_next():
            r = spool.reader("bench")
            r.rewind()
            t = time.perf_counter()
            got = 0
            while r.next(timeout=0) is not None:
                got += 1
            el = time.perf_counter() - t
            assert got == n
            r.close()
            return el

        rn = best(read_next)
        out["reader_next_per_s"] = rate(n, rn)

        kv = reel.KvStore(os.path.join(root, "kv"))
        paths = [("user", str(i)) for i in range(nkeys)]

        def kv_set():
            t = time.perf_counter()
            for i, p in enumerate(paths):
                kv.set(p, {"n": i})
            return time.perf_counter() - t

        def kv_get():
            t = time.perf_counter()
            for p in paths:
                kv.get(p)
            return time.perf_counter() - t

        ks = best(kv_set, 1)
        kv.get(paths[0])  # catch the view up once, outside the timing
        kg = best(kv_get)
        out["kv_set_per_s"] = rate(nkeys, ks)
        out["kv_get_per_s"] = rate(nkeys, kg)

        out["ratio_append_vs_file_write"] = round(base_w / a1, 2)
        out["ratio_append_many_vs_file_write"] = round(base_w / am, 2)
        out["ratio_reader_next_vs_file_read"] = round(base_r / rn, 2)
        out["targets"] = {
            "append >= 0.5x file write": base_w / a1 >= 0.5,
            "append_many >= 1.5x file write": base_w / am >= 1.5,
            "reader.next >= 0.5x file read": base_r / rn >= 0.5,
            "kv get >= 300k/s": nkeys / kg >= 300_000,
            "kv set >= 100k/s": nkeys / ks >= 100_000,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
