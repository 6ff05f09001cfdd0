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
