"""The CLV chain on 1M simulated customers, against lifetimes and PyMC-Marketing (MAP) on the same file.

    .venv/bin/python bench/clv_time.py [--customers 1000000] [--runs 3] [--peers lifetimes,pymc-marketing] [--peers-dir DIR]
                                       [--fit-sizes 100000 1000000 4000000]

The chain, per tool: the per-customer summary from the transactions (frequency, recency, T,
monetary_value, in days), the BG/NBD fit, the Gamma-Gamma fit on repeat customers, then for every
customer the expected purchases in the next 30 days, P(alive), the Gamma-Gamma expected spend and
the CLV over 12 months of 30 days discounted 1 % a month (lifetimes' and PyMC-Marketing's
``customer_lifetime_value`` convention; ours: ``discounted_clv(..., horizon=12, period_length=30)``).

Data: the textbook BG/NBD process (Fader, Hardie & Lee 2005) with r 0.25, alpha 4, a 0.8, b 2.5 in
days, first purchases on a uniform day of 2024-2025, observed to 2026-03-31; each purchase's value
Gamma(p 6, nu), nu ~ Gamma(q 4, gamma 15) per customer, in cents. Purchase times are cut to whole
days and a customer's second purchase on one day is dropped, so every tool sees at most one
purchase per customer and day and builds the same summary (the drop biases alpha up from the
truth; the tools are compared with each other, not with the truth). The transactions are written
once to Parquet in a temporary folder (customer ids as integers); each tool reads that file in a
subprocess of its own venv and prints JSON timings: one warm-up run (not counted, reported as the
cold first run), then ``--runs`` timed runs.

Then, ours only, the fits at growing numbers of customers (``--fit-sizes``; empty for none): each
likelihood term is computed once per distinct row it depends on, so the fits' cost follows the
distinct (x, t_x, T) rows, not the customers. Printed per size: the distinct rows, and the median
(min–max) of ``--runs`` BG/NBD and Gamma-Gamma fits on the same summary, with the ratio to the
smallest size's.

The peers live in throwaway venvs under ``--peers-dir`` (created once with uv or pip from PyPI):
lifetimes 0.11.3 needs pandas < 2, numpy < 1.25, scipy < 1.11; PyMC-Marketing's MAP fit uses flat
priors (``HalfFlat``) so that it is the maximum-likelihood fit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "gamma": 15.0}
FIRST_DAY, BIRTH_DAYS, END_DAY = np.datetime64("2024-01-01"), 731, 821  # births 2024-01-01..2025-12-31; as_of 2026-04-01
AS_OF, OBSERVATION_END = "2026-04-01", "2026-03-31"
PHASES = ["summary", "bgnbd", "gamma_gamma", "predict"]
PEERS = {
    "lifetimes": ["lifetimes==0.11.3", "pandas<2", "numpy<1.25", "scipy<1.11", "pyarrow<15"],  # pyarrow 15+ needs numpy 2
    "pymc-marketing": ["pymc-marketing==0.19.2", "pyarrow"],
}

RUNNER = r'''
import json, sys, time
started = time.perf_counter()
tool, data_path, out_path, predictions_path, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
AS_OF, OBSERVATION_END, HORIZON_DAYS = "2026-04-01", "2026-03-31", 30
import numpy as np
import pandas as pd
if tool == "tierbook":
    from tierbook.clv import discounted_clv, fit_bgnbd, fit_gamma_gamma
    from tierbook.summary import customer_summary
    import tierbook as package
elif tool == "lifetimes":
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data
    import lifetimes as package
else:
    import warnings
    warnings.filterwarnings("ignore")
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, rfm_summary
    import pymc_marketing as package
import_seconds = time.perf_counter() - started
transactions = pd.read_parquet(data_path)
if tool == "tierbook":
    transactions = transactions.rename(columns={"date": "order_date", "amount": "net_amount"})


def chain():
    times, clock = {}, time.perf_counter()
    def lap(phase):
        nonlocal clock
        now = time.perf_counter()
        times[phase], clock = now - clock, now
    if tool == "tierbook":
        summary = customer_summary(transactions, AS_OF, time_unit="D")
        lap("summary")
        bg = fit_bgnbd(summary)
        lap("bgnbd")
        gg = fit_gamma_gamma(summary)
        lap("gamma_gamma")
        x, t_x, T, zbar = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value"))
        expected = bg.conditional_expected_purchases(HORIZON_DAYS, x, t_x, T)
        alive = bg.p_alive(x, t_x, T)
        spend = gg.conditional_expected_average_value(x, zbar)
        clv = discounted_clv(bg, gg, summary, horizon=12, margin=1.0, annual_discount_rate=1.01**12 - 1, periods_per_year=12,
                             period_length=30)
        lap("predict")
        params = {**bg.params_, **gg.params_}
    elif tool == "lifetimes":
        summary = summary_data_from_transaction_data(transactions, "customer_id", "date", monetary_value_col="amount",
                                                     observation_period_end=OBSERVATION_END, freq="D").reset_index()
        lap("summary")
        bg = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"])
        lap("bgnbd")
        repeat = summary[summary["frequency"] > 0]
        gg = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])
        lap("gamma_gamma")
        f, r, T, m = summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"]
        expected = bg.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS, f, r, T)
        alive = bg.conditional_probability_alive(f, r, T)
        spend = gg.conditional_expected_average_profit(f, m)
        clv = gg.customer_lifetime_value(bg, f, r, T, m, time=12, discount_rate=0.01, freq="D")
        lap("predict")
        params = {**{k: bg.params_[k] for k in ("r", "alpha", "a", "b")}, "p": gg.params_["p"], "q": gg.params_["q"], "gamma": gg.params_["v"]}
    else:
        summary = rfm_summary(transactions, "customer_id", "date", monetary_value_col="amount",
                              observation_period_end=OBSERVATION_END, time_unit="D")
        lap("summary")
        flat = {k: Prior("HalfFlat") for k in ("r", "alpha", "a", "b")}
        bg = BetaGeoModel(model_config=flat)
        bg.fit(data=summary[["customer_id", "frequency", "recency", "T"]], method="map", progressbar=False)
        lap("bgnbd")
        gg = GammaGammaModel()  # its default priors are HalfFlat
        gg.fit(data=summary.loc[summary["frequency"] > 0, ["customer_id", "frequency", "monetary_value"]], method="map", progressbar=False)
        lap("gamma_gamma")
        expected = bg.expected_purchases(data=summary, future_t=HORIZON_DAYS)
        alive = bg.expected_probability_alive(data=summary)
        spend = gg.expected_customer_spend(data=summary)
        clv = gg.expected_customer_lifetime_value(transaction_model=bg, data=summary, future_t=12, discount_rate=0.01, time_unit="D")
        lap("predict")
        post = {k: float(np.asarray(v).ravel()[0]) for m in (bg, gg) for k, v in m.idata.posterior.items() if k in ("r", "alpha", "a", "b", "p", "q", "v")}
        params = {**{k: post[k] for k in ("r", "alpha", "a", "b", "p", "q")}, "gamma": post["v"]}
    flat_values = lambda v: np.asarray(getattr(v, "values", v), dtype=float).ravel()
    predictions = pd.DataFrame({"customer_id": np.asarray(summary["customer_id"]), "expected_purchases": flat_values(expected),
                                "p_alive": flat_values(alive), "expected_spend": flat_values(spend), "clv": flat_values(clv)})
    return times, {k: float(v) for k, v in params.items()}, predictions


first, params, predictions = chain()
predictions.to_parquet(predictions_path, index=False)
timed = [chain()[0] for _ in range(runs)]
json.dump({"tool": tool, "version": getattr(package, "__version__", "?"), "python": sys.version.split()[0],
           "numpy": np.__version__, "pandas": pd.__version__, "import_seconds": import_seconds, "first_run": first,
           "runs": timed, "params": params, "customers": len(predictions)}, open(out_path, "w"))
'''


def simulate(customers: int, seed: int = 20261123) -> tuple[pd.DataFrame, int]:
    """Transactions of the BG/NBD process with Gamma-Gamma values, at most one per customer and
    day; also the number of same-day purchases dropped."""
    t = TRUTH
    rng = np.random.default_rng(seed)
    rate = rng.gamma(t["r"], 1 / t["alpha"], customers)
    dropout = rng.beta(t["a"], t["b"], customers)
    nu = rng.gamma(t["q"], 1 / t["gamma"], customers)
    birth = rng.integers(0, BIRTH_DAYS, customers)
    window = (END_DAY - 1 - birth).astype(float)  # continuous time from the first purchase to the end of 2026-03-31's start
    last_repeat = rng.geometric(dropout)  # the customer drops out right after this repeat purchase
    buyers, days = [np.arange(customers)], [birth]
    active, clock, k = np.arange(customers), np.zeros(customers), 0
    while active.size:
        k += 1
        clock[active] += rng.exponential(1 / rate[active])
        bought = active[clock[active] <= window[active]]
        buyers.append(bought)
        days.append(birth[bought] + np.floor(clock[bought]).astype(np.int64))
        active = bought[last_repeat[bought] > k]
    customer, day = np.concatenate(buyers), np.concatenate(days)
    key = np.unique(customer * 4096 + day)  # one purchase per customer and day
    dropped = len(customer) - len(key)
    customer, day = key // 4096, key % 4096
    amount = np.round(rng.gamma(t["p"], 1 / nu[customer]), 2)
    order = np.lexsort((customer, day))  # a transaction log: in time order
    return pd.DataFrame({"customer_id": customer[order], "date": (FIRST_DAY + day[order]).astype("datetime64[ns]"),
                         "amount": amount[order]}), dropped


def fit_scaling(sizes: list[int], runs: int) -> None:
    """Our BG/NBD and Gamma-Gamma fits on the summaries of ``sizes`` customers (in this process)."""
    from tierbook.clv import _unique_rows, fit_bgnbd, fit_gamma_gamma
    from tierbook.summary import customer_summary

    print(f"\nCLV fits at growing size (tierbook only, the same process; {runs} runs each): median (min–max), ratio to the first size")
    print(f"  {'customers':>10} {'transactions':>13} {'distinct (x, t_x, T)':>21} {'BG/NBD fit':>26} {'Gamma-Gamma fit':>26}")
    first = {}
    for size in sizes:
        transactions, _ = simulate(size)
        n_transactions = len(transactions)
        summary = customer_summary(transactions.rename(columns={"date": "order_date", "amount": "net_amount"}), AS_OF, time_unit="D")
        del transactions
        distinct = len(_unique_rows(summary, ["frequency", "recency", "T"])[1])
        cells = []
        for name, fit in (("bgnbd", fit_bgnbd), ("gamma_gamma", fit_gamma_gamma)):
            seconds = []
            for _ in range(runs):
                started = time.perf_counter()
                fit(summary)
                seconds.append(time.perf_counter() - started)
            median, low, high = stats(seconds)
            first.setdefault(name, median)
            cells.append(f"{median:.3f} s ({low:.3f}–{high:.3f}) {median / first[name]:4.1f}x")
        print(f"  {size:>10,} {n_transactions:>13,} {distinct:>21,} {cells[0]:>26} {cells[1]:>26}", flush=True)


def peer_python(name: str, peers_dir: Path) -> Path:
    """The peer's venv (created on first use) and its python."""
    venv = peers_dir / name
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.read_text() != "\n".join(PEERS[name]):
        print(f"installing {name} into {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
        command = ([uv, "pip", "install", "-q", "--python", str(python)] if uv else [str(python), "-m", "pip", "install", "-q"]) + PEERS[name]
        subprocess.run(command, check=True)
        stamp.write_text("\n".join(PEERS[name]))
    return python


def run_tool(tool: str, python: Path, workdir: Path, data: Path, runs: int) -> dict:
    out, predictions, runner = workdir / f"{tool}.json", workdir / f"{tool}.parquet", workdir / "runner.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    started = time.perf_counter()
    subprocess.run([str(python), str(runner), tool, str(data), str(out), str(predictions), str(runs)], check=True, env=env)
    result = json.loads(out.read_text())
    result["wall_seconds"] = time.perf_counter() - started
    result["predictions"] = pd.read_parquet(predictions)
    return result


def stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def per_phase(result: dict) -> dict[str, list[float]]:
    series = {phase: [run[phase] for run in result["runs"]] for phase in PHASES}
    series["total"] = [sum(run[p] for p in PHASES) for run in result["runs"]]
    return series


def agreement(ours: dict, peer: dict) -> tuple[float, dict[str, float]]:
    """Largest relative difference of the 7 parameters, and of each prediction over all customers."""
    params = max(abs(peer["params"][k] / ours["params"][k] - 1) for k in TRUTH)
    merged = ours["predictions"].merge(peer["predictions"], on="customer_id", suffixes=("", "_peer"), validate="one_to_one")
    assert len(merged) == len(ours["predictions"]) == len(peer["predictions"]), "the tools' summaries have different customers"
    columns = ["expected_purchases", "p_alive", "expected_spend", "clv"]
    return params, {c: float(np.max(np.abs(merged[f"{c}_peer"] / merged[c] - 1))) for c in columns}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peers", default="lifetimes,pymc-marketing", help="comma-separated; empty for ours only")
    parser.add_argument("--peers-dir", type=Path, default=Path(tempfile.gettempdir()) / "tierbook-clv-peers")
    parser.add_argument("--fit-sizes", type=int, nargs="*", default=[100_000, 1_000_000, 4_000_000],
                        help="customers of the fits-at-growing-size table (ours only); none to skip it")
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    with tempfile.TemporaryDirectory(prefix="tierbook-clv-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        transactions, dropped = simulate(args.customers)
        data = workdir / "transactions.parquet"
        transactions.to_parquet(data, index=False)
        simulated = time.perf_counter() - started
        results = {"tierbook": run_tool("tierbook", Path(sys.executable), workdir, data, args.runs)}
        failures = {}
        for peer in peers:
            try:
                results[peer] = run_tool(peer, peer_python(peer, args.peers_dir), workdir, data, args.runs)
            except (subprocess.CalledProcessError, OSError) as error:
                failures[peer] = str(error)
    report(results, failures, args, len(transactions), dropped, simulated)
    if args.fit_sizes:
        fit_scaling(args.fit_sizes, args.runs)


def report(results: dict, failures: dict, args, transactions: int, dropped: int, simulated: float) -> None:
    ours = results["tierbook"]
    names = {"tierbook": "tierbook", "lifetimes": "lifetimes", "pymc-marketing": "PyMC-Marketing MAP"}
    print(f"CLV chain: {args.customers:,} simulated customers, {transactions:,} transactions ({dropped:,} same-day purchases "
          f"dropped, {dropped / (transactions + dropped):.1%}); simulated and written in {simulated:.1f} s")
    print(f"truth r {TRUTH['r']}, alpha {TRUTH['alpha']}, a {TRUTH['a']}, b {TRUTH['b']} (days); p {TRUTH['p']}, q {TRUTH['q']}, "
          f"gamma {TRUTH['gamma']}. {args.runs} runs after one warm-up, seconds: median (min–max); ratio = peer median / ours")
    header = f"  {'phase':<12}" + "".join(f"{names[t] + ' ' + results[t]['version']:>32}" for t in results)
    print(header)
    ours_phases = per_phase(ours)
    for phase in PHASES + ["total"]:
        line = f"  {phase:<12}"
        for tool, result in results.items():
            median, low, high = stats(per_phase(result)[phase])
            cell = f"{median:.2f} ({low:.2f}–{high:.2f})"
            if tool != "tierbook":
                cell += f" {median / statistics.median(ours_phases[phase]):5.1f}x"
            line += f"{cell:>32}"
        print(line)
    for label, key in (("import", "import_seconds"), ("cold 1st run", "first_run")):
        line = f"  {label:<12}"
        for result in results.values():
            value = result[key] if key == "import_seconds" else sum(result[key][p] for p in PHASES)
            line += f"{value:>32.2f}"
        print(line)
    print("  parameters (BG/NBD r, alpha, a, b; Gamma-Gamma p, q, gamma):")
    for tool, result in results.items():
        print(f"    {names[tool]:<20}" + "  ".join(f"{k} {result['params'][k]:.5f}" for k in TRUTH))
    for tool, result in results.items():
        if tool == "tierbook":
            continue
        params, predictions = agreement(ours, result)
        print(f"  {names[tool]} vs tierbook, largest relative difference: parameters {params:.1e}; "
              + ", ".join(f"{k} {v:.1e}" for k, v in predictions.items()))
    print("  versions: " + "; ".join(f"{names[t]} on Python {r['python']}, numpy {r['numpy']}, pandas {r['pandas']}" for t, r in results.items()))
    for peer, error in failures.items():
        print(f"  {peer}: not measured ({error})")


if __name__ == "__main__":
    main()
