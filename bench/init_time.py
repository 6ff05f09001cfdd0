"""`make init` on a big export: a 10M-row UTF-8 transactions CSV in a temporary folder (never the
repository), profiled and drafted, against reading the same file with pandas.read_csv (the peer:
what a consultant's notebook does first).

    .venv/bin/python bench/init_time.py [--rows 10000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    start = np.datetime64("2024-01-01T00:00:00", "s")
    with path.open("w", encoding="utf-8") as fh:
        fh.write("order_id,customer_id,order_date,amount,status,store\n")
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            frame = pd.DataFrame({
                "order_id": np.char.add("O", (np.arange(lo, lo + n)).astype(str)),
                "customer_id": np.char.add("C", rng.integers(0, rows // 10, n).astype(str)),
                "order_date": np.datetime_as_string(start + rng.integers(0, 730 * 86400, n).astype("timedelta64[s]"), unit="s"),
                "amount": np.round(rng.lognormal(5, 1, n), 2),
                "status": np.where(rng.random(n) < 0.03, "refunded", "paid"),
                "store": rng.choice(["app", "web", "mini-program"], n),
            })
            frame["order_date"] = frame["order_date"].str.replace("T", " ")
            frame.to_csv(fh, header=False, index=False)


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from tierbook.onboard import profile_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "exports"
        folder.mkdir()
        started = time.perf_counter()
        write_csv(folder / "orders.csv", args.rows)
        size = (folder / "orders.csv").stat().st_size
        print(f"make init on {args.rows:,} rows ({size / 2**30:.2f} GiB CSV, written in {time.perf_counter() - started:.1f} s), "
              f"{args.runs} runs (median, min-max)")
        profiles = []
        ours = timed(lambda: profiles.append(profile_folder(folder)), args.runs)
        peer = timed(lambda: pd.read_csv(folder / "orders.csv", dtype=str), args.runs)
        p = profiles[-1][0]
        assert p.rows == args.rows and p.table == "transactions", (p.rows, p.table)
        for label, values in (("tierbook init (profile + counts)", ours), ("pandas.read_csv of the file", peer)):
            print(f"  {label:<34} {statistics.median(values):6.2f} s  ({min(values):.2f}-{max(values):.2f})")
        print(f"  ratio (peer / ours)                {statistics.median(peer) / statistics.median(ours):6.1f}x")
        print(f"  counted by {p.counted_by}; roles: " + ", ".join(f"{c.column}->{c.role}" for c in p.columns))


if __name__ == "__main__":
    main()
