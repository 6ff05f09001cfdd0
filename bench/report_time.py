"""Time `make report CLIENT=demo` end to end and per phase, median and min–max of N runs.

    .venv/bin/python bench/report_time.py [--runs 3] [--size 20000]

Runs in a temporary project (the repository's params and notebooks, a fresh data folder) so the
repository's reports/ is untouched. The first run also generates the demo data; that time is
reported on its own. Phases: per section, the kernel start-up, the slowest cell (the stage's computation, imports
included) and the HTML export; outside the sections, start-up, params and input checks, the index.
Sections run in parallel when they can, so the parts may add up to more than the total.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s  ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=20000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tierbook-bench-"))
    (root / "params").mkdir()
    for name in ("default.yaml", "demo.yaml"):
        shutil.copy(REPO / "params" / name, root / "params" / name)
    (root / "notebooks").symlink_to(REPO / "notebooks")
    command = [sys.executable, "-m", "tierbook", "--root", str(root), "report", "--client", "demo", "--set", f"demo.size={args.size}"]

    started = time.perf_counter()
    from tierbook import demo

    demo.ensure(root / "data" / "demo", args.size, 20240101)
    generate = time.perf_counter() - started

    phases: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        phases.setdefault(name, []).append(value)

    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        total = time.perf_counter() - started
        run_dir = sorted((root / "reports" / "demo").glob("2*"))[-1]
        sections = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))["sections"]
        record("total (make report)", total)
        record("outside the sections (start-up, checks, index)", total - sum(sec["seconds"] for sec in sections.values()))
        for name, sec in sections.items():
            notebook = json.loads((run_dir / sec["notebook"]).read_text(encoding="utf-8"))
            cells = [c["metadata"].get("papermill", {}).get("duration") or 0.0 for c in notebook["cells"]]
            record(f"section {name}", sec["seconds"])
            record(f"  {name}: kernel start-up and papermill", sec["seconds_notebook"] - sum(cells))
            record(f"  {name}: the slowest cell", max(cells))
            record(f"  {name}: html export", sec["seconds"] - sec["seconds_notebook"])
    print(f"demo report, size {args.size}, {args.runs} runs (median, min–max); demo data generated once in {generate:.2f} s")
    for name, values in phases.items():
        print(f"  {name:<48} {_summary(values)}")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
