"""Command line: ``python -m tierbook report --client demo`` (what ``make report`` calls)."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .errors import TierbookError


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .report import Project, run_report, run_section

    project = Project(Path(args.root))
    try:
        if args.command == "report":
            return 0 if run_report(project, args.client, args.set).status == "succeeded" else 1
        if args.command == "section":
            return 0 if run_section(project, args.client, args.section).status == "succeeded" else 1
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
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if args.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)", file=sys.stderr)
        return 3
