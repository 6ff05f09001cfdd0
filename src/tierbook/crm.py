"""The customer-scores export a consultant imports into the client's CRM (Salesforce, HubSpot,
Zoho, 纷享销客, 简道云 all import CSV and XLSX) to tag customers by tier and segment.

``customer_scores.csv`` is UTF-8 with a BOM so that Excel shows Chinese correctly;
``customer_scores.xlsx`` has the same rows and a second sheet documenting the columns.

Both carry the real customer ids (pages show pseudonyms: ``tierbook.privacy``). Personal data is
in them only where params opt in (``privacy.export_pii: [phone]``): those columns are read again
from the customers source for these two files and are never in ``data/customer_scores.parquet``,
which the later sections read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import privacy
from .data import statistics_columns

COLUMNS = {
    "customer_id": "customer / member id as in the client's data",
    "as_of": "analysis date: orders before it were counted",
    "recency_days": "days from the last purchase to as_of",
    "frequency_occasions": "purchase occasions (distinct purchase days, or orders: rfm.occasion)",
    "monetary_total": "total net spend (returns netted)",
    "monetary_mean": "net spend per purchase occasion",
    "first_purchase": "date of the first purchase",
    "last_purchase": "date of the last purchase",
    "r_score": "recency score 1..n (higher = more recent)",
    "f_score": "frequency score 1..n",
    "m_score": "monetary score 1..n",
    "rfm_score": "r_score + f_score + m_score",
    "segment_zh": "8-segment RFM map, Chinese (重要价值客户 ...)",
    "segment_en": "8-segment RFM map, English (Key value ...)",
    "named_segment": "named segment on R and F scores (Champions ... Lost)",
    "named_segment_zh": "named segment, Chinese",
    "tier": "business tier (params tiers.levels)",
    "tier_zh": "business tier, Chinese",
    "cluster": "behavioural k-means cluster, 1 = highest mean spend",
    "p_alive": "probability that the customer is still active at as_of (BG/NBD; 1 for customers without a repeat purchase)",
    "expected_purchases": "expected purchase occasions in the next clv.horizon periods (BG/NBD)",
    "expected_spend": "expected net spend per purchase (Gamma-Gamma; the population mean for one-time buyers)",
    "clv": "customer lifetime value over clv.horizon periods: margin x expected spend x discounted expected purchases",
    "churned": "True when the customer has not bought for churn days (the churn section states the threshold)",
    "churn_risk": "predicted probability of no purchase in the next churn.prediction_days (active customers only)",
    "last_nps": "the customer's last NPS answer (0-10) before as_of, blank without one",
    "lifecycle_stage": "new | active | reactivated | lapsing | lapsed at as_of (rules: params profile.lifecycle)",
    "favourite_category": "the category with the largest share of the customer's spend",
    "channel_preference": "'<channel> only' or 'omnichannel' (bought through two or more channels)",
    "purchase_cadence": "median days between purchase days, banded (profile.tags.cadence_days); 'one purchase' without a repeat",
    "discount_sensitivity": "share of spend bought on discount: low | medium | high (profile.tags.discount_share)",
    "weekday_weekend": "weekend when at least profile.tags.weekend_share of purchase days are on Saturday or Sunday, else weekday",
    "return_behaviour": "high return when returns are at least profile.tags.high_return_share of gross spend, else low return",
}

PII_COLUMNS = {  # privacy.export_pii: personal data from the customers source, in the CRM export only
    "name": "personal name, from the customers source (privacy.export_pii; never in a report)",
    "phone": "phone number, from the customers source (privacy.export_pii; never in a report)",
    "email": "e-mail address, from the customers source (privacy.export_pii; never in a report)",
    "address": "postal address, from the customers source (privacy.export_pii; never in a report)",
    "id_number": "national id number, from the customers source (privacy.export_pii; never in a report)",
}

EXCEL_MAX_ROWS = 1_048_575  # an Excel sheet holds 1,048,576 rows including the header


def write_customer_scores(scores: pd.DataFrame, run_dir: Path, export: bool = True,
                          xlsx_max_rows: int = 50_000) -> tuple[Path | None, Path | None]:
    """Write ``data/customer_scores.parquet`` for the later sections (which add their columns) and,
    with ``export`` (the last section that adds columns), the CRM files: ``customer_scores.csv``
    (UTF-8 with BOM) and, up to ``xlsx_max_rows`` rows, ``customer_scores.xlsx``. Returns the CRM
    files' paths (None for one not written). The run's ``privacy.export_pii`` columns are added to
    the CSV and the XLSX only.

    Speed (100k customers, 33 columns, 2026-12-02): pandas ``to_csv`` 2.8 s, pyarrow's CSV writer
    0.5 s; xlsxwriter about 5,000 rows a second (20,000 rows in 20 s on a loaded machine), and four
    sections used to write both: 354 s of a 100k-customer report went into these files."""
    unknown = [c for c in scores.columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"customer_scores column {unknown[0]!r} is not documented in tierbook.crm.COLUMNS")
    (run_dir / "data").mkdir(exist_ok=True)
    # written beside and renamed into place: sections running in parallel read it (ab_test while clv writes it, satisfaction
    # while churn does) and must see the whole file, old or new, never a half-written one
    path = run_dir / "data" / "customer_scores.parquet"
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    # the frame made an Arrow table once, for the Parquet file and the CSV (each made its own: 1M customers x 33 columns,
    # about 1 s CPU each, 2026-12-02); written as pandas' to_parquet(index=False) writes it
    table = _arrow_table(scores)
    _replace_scores_file(_with_attrs(table, scores), path)
    if not export:
        return None, None
    csv_path, xlsx_path = run_dir / "customer_scores.csv", run_dir / "customer_scores.xlsx"
    export_frame, meaning = scores, COLUMNS
    personal = privacy.export_pii_columns(run_dir)
    if personal is not None:
        by_id = personal.set_index("customer_id")
        export_frame = scores.assign(**{c: scores["customer_id"].astype(str).map(by_id[c]) for c in by_id.columns})
        meaning = {**COLUMNS, **PII_COLUMNS}
        table = _arrow_table(export_frame)
    _write_csv_table(table, csv_path)
    if len(export_frame) > min(xlsx_max_rows, EXCEL_MAX_ROWS):
        xlsx_path.unlink(missing_ok=True)
        return csv_path, None
    with pd.ExcelWriter(xlsx_path, engine="xlsxwriter") as writer:  # xlsxwriter: 4-7x faster than openpyxl here
        export_frame.to_excel(writer, sheet_name="customer_scores", index=False)
        pd.DataFrame({"column": list(export_frame.columns), "meaning": [meaning[c] for c in export_frame.columns]}).to_excel(
            writer, sheet_name="columns", index=False)
    return csv_path, xlsx_path


def _replace_scores_file(table: pa.Table, path: Path) -> None:
    """``table`` written to ``path``, beside it first and renamed into place: sections running in parallel read it (ab_test
    while clv writes it, satisfaction while churn does) and must see the whole file, old or new, never a half-written one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        pq.write_table(table, str(partial), compression="snappy", write_statistics=statistics_columns(table.schema))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def update_customer_scores(run_dir: Path, columns: pd.DataFrame, drop: list[str] = ()) -> None:
    """``columns`` (documented in ``COLUMNS``; its rows the file's, in order) put into ``data/customer_scores.parquet`` in
    place of those of the same names and of ``drop``, at its end: the file of ``write_customer_scores(scores)`` where
    ``scores`` is the file read, those columns dropped and ``columns``' added. Done on the file's Arrow table, whose text
    is not made a Python string per customer and value: the clv section read and wrote back the 1.4M customers' file
    through pandas, 0.9 GiB of its peak (2026-12-04). The caller checks that the rows are the file's (``same_ids``)."""
    unknown = [c for c in columns.columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"customer_scores column {unknown[0]!r} is not documented in tierbook.crm.COLUMNS")
    path = Path(run_dir) / "data" / "customer_scores.parquet"
    table = pq.read_table(path)
    if table.num_rows != len(columns):
        raise ValueError(f"{len(columns):,} rows for the {table.num_rows:,} of {path}")
    table = table.drop_columns([c for c in table.column_names if c in set(columns.columns) | set(drop)])
    added = _arrow_table(columns.reset_index(drop=True))
    for name in added.column_names:
        table = table.append_column(added.schema.field(name), added.column(name))
    # pandas' description of each column (its dtype when read back): the file's, and the added columns' own
    metadata = dict(table.schema.metadata or {})
    if b"pandas" in metadata:
        described = json.loads(metadata[b"pandas"])
        entries = {entry["name"]: entry for entry in described["columns"]}
        entries.update({entry["name"]: entry for entry in json.loads(added.schema.metadata[b"pandas"])["columns"]})
        described["columns"] = [entries[name] for name in table.column_names if name in entries]
        metadata[b"pandas"] = json.dumps(described).encode()
    _replace_scores_file(table.replace_schema_metadata(metadata), path)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """A CSV a CRM and Excel read: UTF-8 with a BOM, text quoted, dates as yyyy-mm-dd, booleans as
    true/false (pyarrow's writer, 5x faster than pandas' on 100k customers)."""
    _write_csv_table(_arrow_table(frame), path)


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The Arrow table of a frame, without its index: what ``to_parquet(index=False)`` and ``write_csv`` convert."""
    return pa.Table.from_pandas(frame, preserve_index=False)


def _with_attrs(table: pa.Table, frame: pd.DataFrame) -> pa.Table:
    """The table with the frame's ``attrs`` in its metadata, as pandas' ``to_parquet`` stores them."""
    if not frame.attrs:
        return table
    return table.replace_schema_metadata({**table.schema.metadata, "PANDAS_ATTRS": json.dumps(frame.attrs)})


def _write_csv_table(table: pa.Table, path: Path) -> None:
    """``write_csv`` of a frame already made an Arrow table."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as stream:
        stream.write("\ufeff".encode("utf-8"))
        pacsv.write_csv(table, stream)
    tmp.replace(path)
