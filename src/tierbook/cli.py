"""Command line: ``python -m tierbook report --client demo`` (what ``make report`` calls)."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .errors import TierbookError

INTERRUPTED = 130  # exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierbook", description="Customer tiering reports from parameterized notebooks.")
    parser.add_argument("--root", default=".", help="project folder holding params/, data/, reports/ (default: .)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="run every section into a new versioned run folder")
    report.add_argument("--client", required=True)
    report.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param, e.g. demo.size=500")
    section = sub.add_parser("section", help="re-run one section of the client's newest run")
    section.add_argument("--client", required=True)
    section.add_argument("--section", required=True)
    check = sub.add_parser("check", help="validate params and input headers without running")
    check.add_argument("--client", required=True)
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    init = sub.add_parser("init", help="read a new client's raw exports and draft params/<client>.yaml with a data-profile page")
    init.add_argument("--client", required=True)
    init.add_argument("--data", required=True, help="folder of the client's exports (CSV, Excel, Parquet); only read")
    init.add_argument("--force", action="store_true", help="overwrite an existing params/<client>.yaml")
    reveal = sub.add_parser("reveal", help="the customer ids behind pseudonyms shown on a report page (C-3f9a1c0b7e2d, or C-3f9a…)")
    reveal.add_argument("--client", required=True)
    reveal.add_argument("--run", default=None, help="run folder whose customers to search (default: the client's newest run)")
    reveal.add_argument("pseudonyms", nargs="+", metavar="PSEUDONYM")
    sub.add_parser("fonts", help="make sure figures can draw Chinese (installs fonts-noto-cjk with apt-get where it can)")
    return parser


def ensure_cjk_font() -> int:
    """``make env``: a CJK font for Chinese figures. Debian's fonts-noto-cjk is installed when apt-get
    is there and we are root; otherwise a warning says what to install (reports in Chinese then keep
    English figure labels and say so, never boxes). Never fails the build."""
    import os
    import shutil
    import subprocess

    from .plots import cjk_font

    font = cjk_font()
    if font is None and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("installing a CJK font for Chinese figures: apt-get install fonts-noto-cjk")
        try:
            subprocess.run(["apt-get", "install", "-y", "-q", "fonts-noto-cjk"], capture_output=True, timeout=600, check=False,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"  apt-get failed: {exc}")
        font = cjk_font()
    if font is None:
        print("warning: no CJK font found; reports with lang: zh keep English figure labels. "
              "Install one (Debian/Ubuntu: apt-get install fonts-noto-cjk; macOS and Windows have one).")
    else:
        print(f"CJK font for figures: {font}")
    return 0


def _reveal(project, client: str, run: str | None, refs: list[str]) -> int:
    """Print each pseudonym's customer id among the run's customers (customer_scores); 1 when one matches nobody."""
    import pandas as pd

    from . import privacy
    from .report import resolve_run

    if run and not Path(run).is_dir():  # a run id such as 20261122-224111-052
        run = project.client_reports(client) / run
    run_dir = resolve_run(project, client, run)
    key = privacy.client_key(project.root, client, create=False)
    ids = pd.read_parquet(run_dir / "data" / "customer_scores.parquet", columns=["customer_id"])["customer_id"]
    found = privacy.reveal(refs, ids, key)
    for row in found.itertuples():
        print(f"{row.pseudonym}  {row.customer_id}" if pd.notna(row.customer_id) else f"{row.ref}  no customer of run {run_dir.name}")
    return 0 if found["customer_id"].notna().all() else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "fonts":
        return ensure_cjk_font()
    from .report import Project, run_report, run_section

    project = Project(Path(args.root))
    try:
        if args.command == "report":
            return 0 if run_report(project, args.client, args.set).status == "succeeded" else 1
        if args.command == "section":
            return 0 if run_section(project, args.client, args.section).status == "succeeded" else 1
        if args.command == "reveal":
            return _reveal(project, args.client, args.run, args.pseudonyms)
        if args.command == "init":
            from .onboard import run_init

            target, page, profiles = run_init(args.client, Path(args.data), project.root, force=args.force)
            for p in profiles:
                mapped = sum(c.role is not None for c in p.columns)
                print(f"  {p.label:<36} {p.table:<13} {p.rows:>10,} rows  {mapped}/{len(p.columns)} columns mapped")
            todos = sum("TODO" in line for line in target.read_text(encoding="utf-8").splitlines())
            print(f"wrote {target} ({todos} TODO{'s' if todos != 1 else ''}) and {page}")
            print(f"next: review every commented guess in {target}, then make check CLIENT={args.client}")
            return 0
        from . import ingest
        from .params import load_params

        params = load_params(args.client, project.params_dir, args.set)
        ingest.check_sources(params, project.root)
        print(f"params/{args.client}.yaml is valid; {len(params.sources.transactions)} transaction source(s) found")
        return 0
    except TierbookError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the run's folder is kept and marked interrupted; latest and earlier runs are unchanged", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if args.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)", file=sys.stderr)
        return 3
