"""The data-profile page of ``make init``: one self-contained HTML file (the report's CSS inlined, no
script, no outside request) describing every file read, the role guessed for each column, and the
checks the report will run. PII values never appear: samples are masked by ``onboard.mask``."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import pandas as pd

from .html import _css
from .ingest import parse_ids
from .onboard import PII, FileProfile

TABLE_WORDS = {"transactions": "transactions", "customers": "customers / membership", "survey": "survey",
               "experiment": "experiment", "unknown": "unknown: not mapped"}


def _e(value) -> str:
    return html.escape(str(value))


def checks(profiles: list[FileProfile]) -> list[str]:
    """What the report will find, said in advance: amounts net or gross of returns, transactions
    without a customer id, transaction ids found in the membership table."""
    out = []
    members = next((p for p in profiles if p.table == "customers"), None)
    member_ids = None
    if members is not None:
        column = members.role_of("customer_id")
        member_ids = set(parse_ids(_read_column(members, column)).dropna())
    for p in profiles:
        if p.table != "transactions":
            continue
        cid = p.role_of("customer_id")
        missing = next(c.missing_share for c in p.columns if c.column == cid)
        out.append(f"{p.label}: {missing:.1%} of rows have no customer id ({cid}); the cleaning rejects them as missing_customer_id.")
        if p.returns:
            out.append(f"{p.label}: returns are separate rows ({'; '.join(r['why'] for r in p.returns)}): amounts are gross and the "
                       "cleaning nets each return against its order.")
        else:
            out.append(f"{p.label}: no return rows were found, so amounts look net of returns already (or returns are not exported).")
        if member_ids is not None:
            ids = parse_ids(_read_column(p, cid)).dropna()
            found = ids.isin(member_ids).mean() if len(ids) else 0.0
            out.append(f"{p.label}: {found:.1%} of the customer ids with an id (first {len(ids):,} rows) are in the membership table {members.label}.")
    if not any(p.table == "transactions" for p in profiles):
        out.append("No transactions file was recognised: the report cannot run until one is mapped.")
    return out


def _read_column(profile: FileProfile, column: str) -> pd.Series:
    from .onboard import read_tables

    for frame, facts in read_tables(profile.path):
        if facts["sheet"] == profile.sheet and column in frame:
            return frame[column].astype(object).where(frame[column].notna(), None).map(lambda v: None if v is None else str(v))
    return pd.Series(dtype=object)


def _column_row(c) -> str:
    unknown = ' class="tb-unknown"' if c.role is None and not c.pii else ""
    pii = ' <span class="tb-pii">PII</span>' if c.pii or c.role in PII else ""
    role = c.role or (c.pii + ", not read" if c.pii else "unknown")
    distinct = "" if c.distinct is None else f"{c.distinct:,}"
    return (f"<tr{unknown}><td>{_e(c.column)}</td><td>{_e(role)}{pii}</td><td>{_e(c.confidence)}</td>"
            f"<td>{_e(c.evidence)}</td><td>{c.missing_share:.1%}</td><td>{distinct}</td><td>{_e(c.value_range)}</td></tr>")


def _file_section(p: FileProfile) -> str:
    facts = [("table", TABLE_WORDS[p.table] + f" ({p.table_evidence})"), ("format", p.format), ("rows", f"{p.rows:,} ({p.counted_by})"),
             ("columns", len(p.columns)), ("sha256", p.sha256)]
    if p.encoding:
        facts.insert(2, ("encoding", p.encoding))
    if p.delimiter:
        facts.insert(3, ("delimiter", "spaces" if p.delimiter == r"\s+" else repr(p.delimiter)))
    if p.sheet is not None:
        facts.insert(2, ("sheet", f"{p.sheet} (header on row {p.header_row + 1})"))
    if p.date_span:
        facts.append(("date span", f"{p.date_span[0]} to {p.date_span[1]}"))
    facts.append(("exact duplicate rows", f"{p.duplicates:,}"))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    cols = "".join(_column_row(c) for c in p.columns)
    sample = p.sample.to_html(index=False, escape=True, border=0, classes="tb-sample") if len(p.sample) else ""
    notes = "".join(f"<li>{_e(n)}</li>" for n in p.notes)
    return (f"<h2>{_e(p.label)}</h2><table class='tb-facts'>{rows}</table>"
            f"<table><thead><tr><th>column</th><th>role</th><th>confidence</th><th>evidence</th><th>missing</th><th>distinct</th><th>range</th></tr></thead>"
            f"<tbody>{cols}</tbody></table>" + (f"<ul>{notes}</ul>" if notes else "")
            + (f"<p>First rows (personal data masked):</p><div class='tb-scroll'>{sample}</div>" if sample else ""))


def write_profile_page(profiles: list[FileProfile], client: str, folder: Path, page: Path) -> Path:
    checks_html = "".join(f"<li>{_e(line)}</li>" for line in checks(profiles))
    summary = "".join(f"<tr><td>{_e(p.label)}</td><td>{_e(TABLE_WORDS[p.table])}</td><td>{p.rows:,}</td>"
                      f"<td>{sum(c.role is not None for c in p.columns)} of {len(p.columns)}</td></tr>" for p in profiles)
    body = (f"<h1>Data profile: {_e(client)}</h1><p>{len(profiles)} table(s) read from <code>{_e(folder)}</code> on "
            f"{dt.date.today():%Y-%m-%d} by <code>make init</code>. Nothing was modified or copied; checksums are below. The draft "
            f"mapping is in <code>params/{_e(client)}.yaml</code>, every guess commented with this evidence.</p>"
            f"<table><thead><tr><th>file</th><th>looks like</th><th>rows</th><th>columns mapped</th></tr></thead><tbody>{summary}</tbody></table>"
            f"<h2>Checks the report will run</h2><ul>{checks_html}</ul>" + "".join(_file_section(p) for p in profiles))
    css = _css() + (".tb-unknown td{color:#9a9a9a}.tb-pii{background:#fde2e2;color:#991b1b;border-radius:3px;padding:0 4px;font-size:.8em}"
                    ".tb-scroll{overflow-x:auto}.tb-facts th{text-align:left;padding-right:1em}")
    text = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Data profile: {_e(client)}</title><style>{css}</style></head><body><main class='tb-main'>{body}</main></body></html>")
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    return page
