"""The whole `make report` on synthetic clients of growing size: wall time and peak memory, per
section and in all, median and min–max of N runs.

    .venv/bin/python bench/scale.py [--sizes 10000 100000 1000000] [--runs 3] [--runs-largest 1] [--purchase-rate 0.25]

Each size is the demo client (`tierbook.demo`: POS lines in GBK, e-commerce orders with "¥1,234.50"
amounts, a members workbook, a survey and an experiment, with the demo's dirt) generated once into
a temporary project. Its customers buy 0.25 times a week on average (`demo.purchase_rate`; the
default demo's 0.125 buys 7.2 transaction lines a customer), so that 1M customers are the 10M
transactions of the issue's goal: 10.2 lines and 7.3 orders a customer.

Memory is the proportional set size (PSS, /proc/<pid>/smaps_rollup) summed over the report's process
and its sections' processes, sampled every 0.2 s: forked sections share the parent's pages, which
PSS counts once (RSS would count them in every process). Reading PSS makes the kernel walk the
process's page tables under its memory lock: 50 ms a read (median, up to 350 ms) on the 1M data
section, and read every 0.2 s it made that report 194 s instead of 156 s. So PSS is read only when
the summed RSS (a counter, cheap to read) is above the peak PSS so far: PSS is never above RSS, so
the samples skipped could not have raised the peak. Per section, the peak resident memory of its own
process (from the run's manifest).

The machine's speed changes from hour to hour (on this VM the same report took 136 s one day and 242-297 s in
other hours), so each run is framed by a speed probe: the seconds of a fixed single-core workload (a Python loop
of 10M additions) just before and just after it. Wall times are compared between runs whose probes agree, or as
ratios against a peer run in the same hour.

"Overhead" is what is not analysis: the time outside the notebooks' cells (process start-up, the
one import of the libraries, checks, forking, the HTML export, the index), summed over sections as
if they ran one after another, as a share of the sections' summed time plus the time outside them.
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

REPO = Path(__file__).resolve().parents[1]


def _tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def _pss_mib_each(pids: list[int]) -> list[float]:
    """Each process's PSS (MiB), largest first."""
    each = []
    for pid in pids:
        total = 0
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
        each.append(total / 1024)
    return sorted(each, reverse=True)


def _rss_mib(pids: list[int]) -> float:
    """The processes' summed resident set size (MiB), from /proc/<pid>/statm: a counter, read in microseconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", encoding="utf-8") as statm:
                total += int(statm.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run(command: list[str]) -> tuple[float, float, float, list[float]]:
    """Wall seconds and peak PSS (MiB) of the command's process tree, when the peak came (seconds from the start) and
    the PSS of its processes then (MiB, largest first): one section's process or several side by side."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak, at, parts = 0.0, 0.0, []
    while process.poll() is None:
        pids = _tree(process.pid)
        if _rss_mib(pids) > peak:  # PSS <= RSS: below the peak so far, the costly PSS read cannot raise it
            each = _pss_mib_each(pids)
            if sum(each) > peak:
                peak, at, parts = sum(each), time.perf_counter() - started, each
        time.sleep(0.2)
    wall = time.perf_counter() - started
    output = process.stdout.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"report failed (exit {process.returncode}):\n{output[-3000:]}")
    return wall, peak, at, parts


def _fmt(values: list[float], unit: str = "s", digits: int = 1) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.{digits}f} {unit}"
    return f"{med:,.{digits}f} {unit} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def speed_probe() -> float:
    """Seconds of a fixed single-core workload (a Python loop of 10M additions): the machine's speed now. On this
    2-core VM it took 1.05 to 1.78 s within one evening (2026-12-04), when the 1.4M-customer report took 273-297 s."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def bench_size(size: int, runs: int, cache: Path, purchase_rate: float) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"tierbook-scale-{size}-"))
    try:
        (root / "params").mkdir()
        for name in ("default.yaml", "demo.yaml"):
            shutil.copy(REPO / "params" / name, root / "params" / name)
        (root / "notebooks").symlink_to(REPO / "notebooks")
        from tierbook import demo

        started = time.perf_counter()
        data = cache / f"{size}-rate{purchase_rate:g}"
        truth = demo.ensure(data, size, 20240101, purchase_rate)  # kept between benchmark runs (1M: a few minutes)
        (root / "data").mkdir()
        (root / "data" / "demo").symlink_to(data)
        generated = time.perf_counter() - started
        command = [sys.executable, "-m", "tierbook", "--root", str(root), "report", "--client", "demo", "--set", f"demo.size={size}",
                   "--set", f"demo.purchase_rate={purchase_rate}"]
        out: dict = {"size": size, "generate": generated, "wall": [], "peak": [], "sections": {}, "section_peak": {},
                     "overhead": [], "orders": truth.get("n_orders"), "probe": []}
        for _ in range(runs):
            out["probe"].append(speed_probe())
            wall, peak, at, parts = _run(command)
            out["probe"].append(speed_probe())
            out.setdefault("peak_at", []).append((at, [p for p in parts if p >= 100]))
            run_dir = sorted((root / "reports" / "demo").glob("2*"))[-1]
            manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
            sections = manifest["sections"]
            rows = sum(rec.get("rows") or 0 for rec in manifest["inputs"] if rec.get("table") == "transactions")
            out["rows"] = rows
            out["wall"].append(wall)
            out["peak"].append(peak)
            cells_total = 0.0
            for name, sec in sections.items():
                notebook = json.loads((run_dir / sec["notebook"]).read_text(encoding="utf-8"))
                cells = sum(c["metadata"].get("papermill", {}).get("duration") or 0.0 for c in notebook["cells"])
                cells_total += cells
                out["sections"].setdefault(name, []).append(sec["seconds"])
                if sec.get("peak_memory_mib"):
                    out["section_peak"].setdefault(name, []).append(sec["peak_memory_mib"])
            serial = sum(sec["seconds"] for sec in sections.values())
            outside = max(wall - _critical_path(sections), 0.0)
            out["overhead"].append((serial - cells_total + outside) / (serial + outside))
            shutil.rmtree(run_dir)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _critical_path(sections: dict) -> float:
    """Seconds of the longest chain of dependent sections (the part of the wall time they explain)."""
    from tierbook.pipeline import SECTIONS

    done: dict[str, float] = {}
    pending = list(SECTIONS)
    while pending:
        for section in [s for s in pending if all(d in done for d in s.depends_on)]:
            done[section.name] = max((done[d] for d in section.depends_on), default=0.0) + sections.get(section.name, {}).get("seconds", 0.0)
            pending.remove(section)
    return max(done.values(), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--runs-largest", type=int, default=None, help="runs for the largest size (default: --runs)")
    parser.add_argument("--purchase-rate", type=float, default=0.25,
                        help="the customers' mean purchases a week (demo.purchase_rate): 0.25 = about 10 transaction lines a customer")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tierbook-scale-data",
                        help="where the generated clients are kept between runs of this script")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        runs = args.runs_largest if args.runs_largest and size == max(args.sizes) else args.runs
        print(f"size {size:,}: {runs} run(s) ...", file=sys.stderr, flush=True)
        results.append((runs, bench_size(size, runs, args.data, args.purchase_rate)))
    print(f"make report on the demo client at growing size, {args.purchase_rate:g} purchases a customer-week "
          f"(this machine: {os.cpu_count()} cores); median (min–max)")
    for runs, r in results:
        print(f"\n{r['size']:,} customers, {r['rows']:,} transaction rows read, {r['orders']:,} true orders; "
              f"{runs} run(s); data generated in {r['generate']:.0f} s")
        print(f"  {'total wall time':<34} {_fmt(r['wall'])}")
        print(f"  {'speed probe before/after runs':<34} {_fmt(r['probe'], 's', 2)} (lower is faster; bench/scale.py)")
        print(f"  {'peak memory (PSS, all processes)':<34} {_fmt([p / 1024 for p in r['peak']], 'GiB', 2)}")
        for at, parts in r["peak_at"]:
            print(f"  {'  peak at':<34} {at:,.0f} s: " + " + ".join(f"{p / 1024:.2f}" for p in parts) + " GiB (processes of 0.1 GiB or more)")
        print(f"  {'overhead share (not in cells)':<34} {_fmt([100 * o for o in r['overhead']], '%', 0)}")
        for name, values in r["sections"].items():
            peak = r["section_peak"].get(name)
            print(f"  section {name:<26} {_fmt(values):<28} peak {_fmt([p / 1024 for p in peak], 'GiB', 2) if peak else '-'}")


if __name__ == "__main__":
    main()
