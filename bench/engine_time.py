"""The per-customer summary from a Parquet file: the DuckDB engine (tierbook.engine) against
tierbook.summary (numpy, after pandas.read_parquet) and a plain pandas groupby, with peak memory.

    .venv/bin/python bench/engine_time.py [--customers 1000000] [--rows-per-customer 10] [--runs 3]

The orders (seeded, as bench/summary_time.py makes them: ids dictionary-encoded, two years of
order times, log-normal amounts in cents) are written once as Parquet, as the data stage writes
orders.parquet. Each tool then runs in its own Python process, from the file to the summary table
(a warm-up, then ``--runs`` timed runs; wall time, and the process's CPU time summed over its
threads, steadier than wall time on a shared machine), so that its peak resident memory (``ru_maxrss``) is its own:
pandas holds the whole file in memory, DuckDB streams it (and with ``memory_limit`` spills above
it). The engine's result is checked equal to tierbook.summary's, exactly. Not in ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

TOOLS = {
    "duckdb": "tierbook.engine, DuckDB (2 threads)",
    "duckdb-1GB": "tierbook.engine, DuckDB, memory_limit 1GB",
    "numpy": "read_parquet + tierbook.summary",
    "pandas": "read_parquet + plain pandas groupby",
}


def summarise(tool: str, path: Path, as_of: pd.Timestamp) -> pd.DataFrame:
    if tool.startswith("duckdb"):
        from tierbook import engine

        settings = {"duckdb": {"memory_limit": "1GB", "temp_directory": str(path.parent / "spill")}} if tool == "duckdb-1GB" else {}
        return engine.execute_summary(engine.orders_table(engine.connect(settings), path), as_of)
    orders = pd.read_parquet(path, columns=["customer_id", "order_date", "net_amount"])
    if tool == "numpy":
        from tierbook.summary import customer_summary

        return customer_summary(orders, as_of)
    from summary_time import pandas_peer

    return pandas_peer(orders, as_of)


def child(tool: str, path: Path, as_of: pd.Timestamp, runs: int, out: Path | None) -> None:
    """One tool in this process: warm-up, timed runs, then its peak RSS as one JSON line."""
    result = summarise(tool, path, as_of)
    times, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        summarise(tool, path, as_of)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    if out is not None:
        result.to_parquet(out, index=False)
    print(json.dumps({"times": times, "cpu": cpu, "rows": len(result), "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rows-per-customer", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tool", choices=list(TOOLS), help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:
        child(args.tool, args.path, pd.Timestamp(args.as_of), args.runs, args.out)
        return

    from summary_time import synthetic_orders

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        orders = synthetic_orders(args.customers, args.customers * args.rows_per_customer)
        orders["net_amount"] = orders["net_amount"].round(2)
        as_of = orders["order_date"].max().normalize() + pd.Timedelta(days=1)
        path = folder / "orders.parquet"
        orders.to_parquet(path, index=False)
        n_orders = len(orders)
        del orders
        print(f"per-customer summary from Parquet: {args.customers:,} customers, {n_orders:,} orders, "
              f"{path.stat().st_size / 1024 ** 2:,.0f} MiB on disk (written in {time.perf_counter() - started:.1f} s); "
              f"{args.runs} runs after a warm-up, each tool in its own process (wall median, min–max; CPU median; peak RSS)")
        results = {}
        for tool in TOOLS:
            out = folder / f"{tool}.parquet" if tool in ("duckdb", "numpy") else None
            cmd = [sys.executable, __file__, "--tool", tool, "--path", str(path), "--as-of", str(as_of.date()), "--runs", str(args.runs)]
            done = subprocess.run(cmd + (["--out", str(out)] if out else []), capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"  {TOOLS[tool]:42s} failed: {done.stderr.strip().splitlines()[-1]}")
                continue
            results[tool] = json.loads(done.stdout.strip().splitlines()[-1])
            times = results[tool]["times"]
            print(f"  {TOOLS[tool]:42s} {statistics.median(times):6.2f} s  ({min(times):.2f}–{max(times):.2f})  "
                  f"CPU {statistics.median(results[tool]['cpu']):5.2f} s  peak RSS {results[tool]['maxrss_kib'] / 1024 ** 2:.2f} GiB")
        med = {tool: statistics.median(r["times"]) for tool, r in results.items()}
        if "duckdb" in med:
            for peer in ("numpy", "pandas"):
                if peer in med:
                    print(f"  ratio ({TOOLS[peer]} / DuckDB engine)  {med[peer] / med['duckdb']:.2f}x")
        if {"duckdb", "numpy"} <= set(results):
            engine_result = pd.read_parquet(folder / "duckdb.parquet")
            numpy_result = pd.read_parquet(folder / "numpy.parquet")
            pd.testing.assert_frame_equal(engine_result, numpy_result, check_exact=True)
            print(f"  DuckDB engine == tierbook.summary exactly on all {len(engine_result):,} customers")


if __name__ == "__main__":
    main()
