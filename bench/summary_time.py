"""The per-customer summary on a large synthetic client, against a plain pandas groupby.

    .venv/bin/python bench/summary_time.py [--customers 1000000] [--rows-per-customer 10] [--runs 3]

Orders as the data stage writes them: customer ids dictionary-encoded (categorical), order times
over two years, log-normal amounts. The peer is the straightforward pandas implementation of the
same columns (groupby on customer-day, then on customer), run on the same frame in the same process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import pandas as pd

from tierbook.summary import customer_summary


def synthetic_orders(customers: int, rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.char.add("C", np.char.zfill(np.arange(customers).astype(str), 7))
    start = np.datetime64("2024-01-01T00:00:00", "s")
    return pd.DataFrame({
        "customer_id": pd.Categorical.from_codes(rng.integers(0, customers, rows), categories=ids),
        "order_date": (start + rng.integers(0, 730 * 86400, rows).astype("timedelta64[s]")).astype("datetime64[ns]"),
        "net_amount": rng.lognormal(5, 1, rows),
    })


def pandas_peer(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The plain pandas way: merge same-day orders, then aggregate per customer."""
    frame = orders[orders["order_date"] < as_of].assign(day=orders["order_date"].dt.normalize())
    days = frame.groupby(["customer_id", "day"], observed=True, sort=True)["net_amount"].sum().reset_index()
    per = days.groupby("customer_id", observed=True).agg(
        first=("day", "min"), last=("day", "max"), occasions=("day", "size"), total=("net_amount", "sum"),
        first_value=("net_amount", "first"))
    per["frequency"] = per["occasions"] - 1
    per["recency"] = (per["last"] - per["first"]).dt.days / 7
    per["T"] = (as_of - pd.Timedelta(days=1) - per["first"]).dt.days / 7
    per["recency_days"] = (as_of - per["last"]).dt.days
    per["monetary_value"] = np.where(per["frequency"] > 0, (per["total"] - per["first_value"]) / per["frequency"].clip(lower=1), 0.0)
    return per


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rows-per-customer", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    orders = synthetic_orders(args.customers, args.customers * args.rows_per_customer)
    as_of = orders["order_date"].max().normalize() + pd.Timedelta(days=1)
    ours = customer_summary(orders, as_of)
    peer = pandas_peer(orders, as_of)
    assert len(ours) == len(peer) and np.allclose(ours["monetary_value"].to_numpy(), peer["monetary_value"].to_numpy())
    t_ours = timed(lambda: customer_summary(orders, as_of), args.runs)
    t_peer = timed(lambda: pandas_peer(orders, as_of), args.runs)
    med = statistics.median
    print(f"customer summary: {args.customers:,} customers, {len(orders):,} orders, {args.runs} runs (median, min–max)")
    print(f"  tierbook.summary      {med(t_ours):6.2f} s  ({min(t_ours):.2f}–{max(t_ours):.2f})")
    print(f"  plain pandas groupby  {med(t_peer):6.2f} s  ({min(t_peer):.2f}–{max(t_peer):.2f})")
    print(f"  ratio (peer / ours)   {med(t_peer) / med(t_ours):6.1f}x")
    print(f"  peak RSS of the process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GiB")


if __name__ == "__main__":
    main()
