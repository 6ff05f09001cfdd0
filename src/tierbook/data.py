"""The data stage: read every source (``ingest``), clean it (``clean``), check the reconciliation,
and write the clean tables of the run for the later sections.

Outputs in the run folder:
``data/transactions.parquet`` (kept sale lines), ``data/orders.parquet`` (orders, returns netted),
``data/customers.parquet``, ``data/survey.parquet``, ``data/experiment.parquet`` (when declared),
``data/ledger.parquet`` (every input row with its status), ``rejected.csv`` (row, source, reason),
``tables/reconciliation.csv``, ``tables/rejection_reasons.csv`` and ``inputs.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import clean, i18n, ingest
from .errors import TierbookError
from .i18n import _
from .params import Params
from .summary import customer_codes


@dataclass
class DataStage:
    inventory: pd.DataFrame  # one row per input file
    reconciliation: pd.DataFrame  # rows and amounts per table and source
    reasons: pd.DataFrame  # rows and amounts per status and reason
    orders: pd.DataFrame
    run_dir: Path  # where the clean tables are written
    tables: dict[str, pd.DataFrame]  # customers / survey / experiment when declared

    @property
    def transactions(self) -> pd.DataFrame:
        """The kept sale lines, read from the run (``data/transactions.parquet``) at each access: the page does not show
        them, and the 7M lines of the 1M-customer demo held 1 GiB while the data section drew its figures beside the
        rfm section (2026-12-02)."""
        return load_clean(self.run_dir, "transactions")

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.orders["order_date"].min(), self.orders["order_date"].max()


def run_data_stage(params: Params, root: Path, run_dir: Path, today: dt.date | None = None) -> DataStage:
    """Read, clean, reconcile and write. Raises TierbookError when an input is unusable or the
    reconciliation does not balance."""
    today = today or dt.date.today()
    mapped, inventory = ingest.read_all(params, root)
    _give_back_memory()
    priority = [s.name for s in params.sources.transactions]
    # popped: the mapped lines are freed once cleaned (what the clean tables need of them is theirs; 2 GiB at 1M customers)
    result = clean.clean_transactions(mapped.pop("transactions"), params.clean, priority, today)
    data_dir, tables_dir = run_dir / "data", run_dir / "tables"
    data_dir.mkdir(parents=True, exist_ok=True)
    tables_dir.mkdir(parents=True, exist_ok=True)
    from concurrent.futures import ThreadPoolExecutor

    # the clean lines and orders are written in a thread (Arrow encodes and compresses them without Python's lock) while
    # this one cleans the other tables and reconciles the ledger, then the ledger beside what is left: written one after
    # another once everything was reconciled, the 1M-customer demo's files took 16 s after 9 s of reconciling (2026-12-02).
    # A reconciliation that fails still fails the run (the files written are those of a failed run, never marked latest).
    with ThreadPoolExecutor(max_workers=2) as pool:
        writes = [pool.submit(_write_clean_tables, result.transactions, result.orders, data_dir)]
        ledgers = [result.ledger]
        tables: dict[str, pd.DataFrame] = {}
        paths = {s.name: params.source_path(root, s) for s in [*params.sources.transactions, params.sources.customers] if s is not None}
        cleaners = {
            "customers": lambda frame: clean.clean_customers(frame, paths),
            "survey": lambda frame: clean.clean_survey(frame, params.clean.max_date or today),
            "experiment": clean.clean_experiment,
        }
        for name, cleaner in cleaners.items():
            if name in mapped:
                tables[name], ledger = cleaner(mapped[name])
                ledgers.append(ledger)
        ledger = pd.concat(ledgers, ignore_index=True)
        reconciliation = clean.reconcile(ledger)
        clean.check_reconciliation(reconciliation, result.orders, ledger, {rec["source"]: rec["rows"] for rec in inventory})

        reasons = (
            pd.DataFrame({"table": ledger["table"], "status": ledger["status"], "reason": ledger["reason"], "row": ledger["row"],
                          "amount": ledger["amount"].astype(float).fillna(0.0)})  # the columns it needs, not a copy of the 9M-row ledger
            .groupby(["table", "status", "reason"], sort=False)
            .agg(rows=("row", "size"), amount=("amount", "sum"))
            .reset_index()
        )
        stage = DataStage(
            inventory=pd.DataFrame(inventory), reconciliation=reconciliation, reasons=reasons,
            orders=result.orders, run_dir=run_dir, tables=tables,
        )
        writes.append(pool.submit(_write_parquet, pa.Table.from_pandas(ledger, preserve_index=False), data_dir / "ledger.parquet"))
        _write(stage, ledger, run_dir)
        for write in writes:
            write.result()  # a write's error is raised here
    if stage.orders.empty:
        raise TierbookError(_no_orders(ledger, paths))
    del result, ledger, ledgers, writes
    _give_back_memory()  # what the cleaning held, back to the system while the page is drawn beside the next sections
    return stage


def _give_back_memory() -> None:
    """Return to the system the memory the C allocator keeps after the sources were read: read in two threads, their
    freed text stays in the threads' malloc arenas, and cleaning the 1M-customer demo then peaked at 5.27 GiB instead of
    4.82 GiB (2026-12-02). glibc only (Linux); elsewhere nothing happens."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _no_orders(ledger: pd.DataFrame, paths: dict[str, Path]) -> str:
    """Every transaction row was merged or rejected: the one line that says why, per file (raised
    after rejected.csv is written, which lists each row with the text that did not parse)."""
    tx = ledger[ledger["table"] == "transactions"]
    per_file = []
    for source, rows in tx.groupby("source", sort=False):
        counts = rows["reason"].value_counts()
        per_file.append(f"{paths[source]}: " + ", ".join(f"{n:,} {reason}" for reason, n in counts.items()))
    return (f"no transaction row is left to analyse, every one was merged or rejected ({'; '.join(per_file)}); rejected.csv in the "
            f"run folder lists each row; check `date_format` and `columns` of the transaction sources and `clean.window` / `clean.max_date`")


# Columns whose values repeat (a source, a channel, a store, the customer ids' codes): dictionary-encoded in the clean
# Parquet files; the others (order ids, dates, amounts, row numbers) are written plainly. Dictionary-encoding every
# column tried and dropped the dictionary of each unique-valued one page after page: the 1M-customer demo's transactions,
# orders and ledger took 14.0 s CPU to write that way and 10.6 s this way (medians of 3 runs, 2026-12-02; files 16 %
# larger, read back identical and faster: 29.7 -> 26.9 s CPU for pandas to read all three)
DICTIONARY_COLUMNS = ["customer_id", "source", "channel", "store", "currency", "category", "region", "product_id", "table",
                      "status", "reason"]


def _write(stage: DataStage, ledger: pd.DataFrame, run_dir: Path) -> None:
    """The data stage's other outputs (the clean lines, orders and ledger are written in threads, ``run_data_stage``)."""
    for name, frame in stage.tables.items():
        frame.to_parquet(run_dir / "data" / f"{name}.parquet", index=False)
    rejected = ledger[ledger["status"] == "rejected"]
    rejected[["source", "row", "reason", "detail", "table", "customer_id", "order_id", "order_date", "amount"]].to_csv(
        run_dir / "rejected.csv", index=False, encoding="utf-8-sig")
    tables_dir = run_dir / "tables"
    stage.reconciliation.to_csv(tables_dir / "reconciliation.csv", index=False, encoding="utf-8-sig")
    stage.reasons.to_csv(tables_dir / "rejection_reasons.csv", index=False, encoding="utf-8-sig")
    stage.inventory.to_csv(tables_dir / "inputs.csv", index=False, encoding="utf-8-sig")
    (run_dir / "inputs.json").write_text(json.dumps(stage.inventory.to_dict("records"), indent=2, ensure_ascii=False), encoding="utf-8")


def _write_clean_tables(transactions: pd.DataFrame, orders: pd.DataFrame, data_dir: Path) -> None:
    for name, table in _clean_tables(transactions, orders):
        _write_parquet(table, data_dir / f"{name}.parquet")


def _clean_tables(transactions: pd.DataFrame, orders: pd.DataFrame):
    """The kept lines and the orders as Arrow tables, customer ids dictionary-encoded (sorted categories): later sections
    group by their codes, which makes the 1M-customer summary 1.2 s instead of 8 s (bench/summary_time.py)."""
    ids = None
    for name, frame in (("transactions", transactions), ("orders", orders)):
        codes = _codes_in(frame["customer_id"], ids) if ids is not None else None
        if codes is None:
            codes, ids = customer_codes(frame["customer_id"])
        encoded = pd.Categorical.from_codes(codes, categories=pd.Index(ids, dtype=object))
        # the other columns as they are: no copy of the frame to swap a column (frame.drop copied 7M lines: 9 s, 2026-12-02)
        table = pa.Table.from_pandas(frame, columns=[c for c in frame.columns if c != "customer_id"], preserve_index=False)
        at = list(frame.columns).index("customer_id")
        table = table.add_column(at, "customer_id", pa.Array.from_pandas(encoded))
        metadata = pa.Table.from_pandas(frame.head(0).assign(customer_id=encoded[:0]), preserve_index=False).schema.metadata
        yield name, table.replace_schema_metadata(metadata)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, use_dictionary=[c for c in table.column_names if c in DICTIONARY_COLUMNS])


def _codes_in(values: pd.Series, ids: np.ndarray) -> np.ndarray | None:
    """The codes of ``values`` among the sorted ``ids`` of another table when they hold exactly those ids (the orders'
    customers are the kept lines' customers), by Arrow's hash lookup: sorting the 5M orders' ids again took 10 s at 1M
    customers (2026-12-02). None when they differ."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow") or not len(values):
        return None
    import pyarrow.compute as pc

    codes = pc.index_in(pa.array(values.array), value_set=pa.array(ids, type=pa.string())).to_numpy(zero_copy_only=False)
    if np.isnan(codes).any() if codes.dtype.kind == "f" else (codes < 0).any():
        return None
    codes = codes.astype(np.int64)
    return codes if np.bincount(codes, minlength=len(ids)).all() else None  # every id used, as customer_codes' would be


def load_clean(run_dir: Path, name: str, columns: list[str] | None = None, read_dictionary: list[str] | None = None) -> pd.DataFrame:
    """A clean table written by the data stage of a run (for the later sections). ``columns``: only
    those (3 of the orders' 11 columns read in 3.0 s CPU instead of 10.6 s at 1M customers);
    ``read_dictionary``: text columns read as categoricals."""
    return pd.read_parquet(Path(run_dir) / "data" / f"{name}.parquet", columns=columns, read_dictionary=read_dictionary)


def monthly(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders, customers and net revenue per calendar month and channel."""
    month = orders["order_date"].dt.to_period("M").dt.to_timestamp()
    return (
        orders.assign(month=month)
        .groupby(["month", "channel"])
        .agg(orders=("order_date", "size"), customers=("customer_id", "nunique"), revenue=("net_amount", "sum"))  # size of a datetime column: int64
        .reset_index()
    )


TABLE_LABELS = {"transactions": "the transactions table", "customers": "the customers table", "survey": "the survey table",
                "experiment": "the experiment table"}


def table_label(name: str) -> str:
    """A table of the data contract as the report shows it: its name in English (``transactions``),
    a translated label in another language."""
    if i18n.lang() == "en" or name not in TABLE_LABELS:
        return name
    return _(TABLE_LABELS[name])


def narrative(stage: DataStage, currency: str) -> str:
    """Markdown sentences about the data stage, generated from its numbers."""
    from .tables import money

    tx = stage.reconciliation[stage.reconciliation["table"] == "transactions"]
    read, kept = int(tx["rows_read"].sum()), int(tx["rows_kept"].sum())
    merged, rejected = int(tx["rows_merged"].sum()), int(tx["rows_rejected"].sum())
    start, end = stage.period
    n_sources = len(tx)
    counts = dict(read=read, n_sources=n_sources, kept=kept, kept_share=kept / read, merged=merged, merged_share=merged / read,
                  rejected=rejected, rejected_share=rejected / read)
    if n_sources == 1:
        first = _("{read:,} transaction rows were read from {n_sources} source: {kept:,} kept ({kept_share:.1%}), {merged:,} merged "
                  "into other rows ({merged_share:.1%}) and {rejected:,} rejected ({rejected_share:.1%}). Every row is accounted for "
                  "and the amounts reconcile.", **counts)
    else:
        first = _("{read:,} transaction rows were read from {n_sources} sources: {kept:,} kept ({kept_share:.1%}), {merged:,} merged "
                  "into other rows ({merged_share:.1%}) and {rejected:,} rejected ({rejected_share:.1%}). Every row is accounted for "
                  "and the amounts reconcile.", **counts)
    held = dict(orders=len(stage.orders), customers=stage.orders["customer_id"].nunique(), start=start, end=end,
                net=money(stage.orders["net_amount"].sum(), currency), returned=money(-stage.orders["returned_amount"].sum(), currency))
    if held["customers"] == 1:
        holds = _("The clean data holds **{orders:,} orders** from **1 customer** between {start:%Y-%m-%d} and {end:%Y-%m-%d}, "
                  "worth **{net}** net of returns ({returned} returned).", **held)
    else:
        holds = _("The clean data holds **{orders:,} orders** from **{customers:,} customers** between {start:%Y-%m-%d} and "
                  "{end:%Y-%m-%d}, worth **{net}** net of returns ({returned} returned).", **held)
    lines = [first, holds]
    top = stage.reasons[(stage.reasons["table"] == "transactions") & (stage.reasons["status"] != "kept")]
    if len(top):
        biggest = top.sort_values("rows", ascending=False).iloc[0]
        from .clean import REASONS

        lines.append(_("The most common reason a row did not stay as it was: {reason} ({rows:,} rows).",
                       reason=i18n.name(REASONS.get(biggest["reason"], biggest["reason"])), rows=int(biggest["rows"])))
    for name, frame in stage.tables.items():
        lines.append(_("The {name} table has {rows:,} clean rows.", name=table_label(name), rows=len(frame)))
    repeats = stage.reasons[(stage.reasons["table"] == "customers") & (stage.reasons["reason"] == "duplicate_customer_id")]["rows"].sum()
    if repeats:
        lines.append(_("{rows:,} customer rows repeated the id of an earlier row with other values; each was merged into the first "
                       "row of its id (`data/ledger.parquet` in the run folder names that row and the columns that differ).", rows=int(repeats)))
    return "\n\n".join(lines)
