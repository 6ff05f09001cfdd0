"""The data stage: read every source (``ingest``), clean it (``clean``), check the reconciliation,
and write the clean tables of the run for the later sections.

Outputs in the run folder:
``data/transactions.parquet`` (kept sale lines), ``data/orders.parquet`` (orders, returns netted; in both, each
row group holds a span of the customers), ``data/customers.parquet``, ``data/survey.parquet``,
``data/experiment.parquet`` (when declared), ``data/ledger.parquet`` (every input row with its status),
``rejected.csv`` (row, source, reason), ``tables/reconciliation.csv``, ``tables/rejection_reasons.csv`` and ``inputs.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import clean, i18n, ingest
from .errors import TierbookError
from .i18n import _
from .memory import give_back_memory
from .params import Params
from .pipeline import MARKS, mark
from .summary import categorical_of_ids, codes_at, customer_codes, line_codes


@dataclass
class DataStage:
    inventory: pd.DataFrame  # one row per input file
    reconciliation: pd.DataFrame  # rows and amounts per table and source
    reasons: pd.DataFrame  # rows and amounts per status and reason
    # data/orders.parquet's rows (the file's row groups each hold a span of the customers), customer_id a categorical of
    # the sorted ids as the sections read it
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
    priority = [s.name for s in params.sources.transactions]
    paths = {s.name: params.source_path(root, s) for s in [*params.sources.transactions, params.sources.customers] if s is not None}
    # the lines' numeric columns no cleaning rule reads wait in files of this folder until the clean lines are written
    # (clean.spill_passengers); it is removed with what it holds however the stage ends
    run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".spill-", dir=run_dir) as spill:
        # the transaction sources are cleaned as soon as they are read, while the other sources are read in the threads
        # (``ingest.Reading``) and then cleaned and reconciled in a thread of their own (``_clean_others``); cleaning writes
        # nothing, and nothing is written before every source is read and checked
        with ThreadPoolExecutor(max_workers=ingest.READ_THREADS) as readers, ThreadPoolExecutor(max_workers=1) as side:
            reading = ingest.Reading(params, root, readers)
            # the mapped lines go to cleaning without a reference kept here: they are freed once cleaned (what the clean
            # tables need of them is theirs; 2 GiB at 1M customers)
            taken = [reading.table("transactions")]
            others = side.submit(_clean_others, reading, params, paths, today, lambda: _mark_read(run_dir))
            result = clean.clean_transactions(taken.pop(), params.clean, priority, today, spill_dir=Path(spill))
            inventory, tables, other_ledgers, other_reconciled, other_counted = others.result()
        give_back_memory()  # what reading and cleaning's steps held and freed (0.3 GiB at 1M customers), before the writes' peak
        data_dir, tables_dir = run_dir / "data", run_dir / "tables"
        data_dir.mkdir(parents=True, exist_ok=True)
        tables_dir.mkdir(parents=True, exist_ok=True)
        # the transactions' part of the ledger is reconciled and counted before the clean lines are written: the groupbys'
        # 0.5 GiB then come on top of what cleaning holds, not on top of that and the writes' (the 1M-customer demo's data
        # stage peaked at 4.5 GiB the other way round, 2026-12-02). The ledger stays in its tables' parts, reconciled and
        # counted part by part (the parts are whole tables, so the sums are those of the whole): their concatenation copied
        # the 9M rows of 1M customers, 0.5 GiB.
        ledgers = [result.ledger, *other_ledgers]
        reconciled, counted = [clean.reconcile(result.ledger), *other_reconciled], [_reasons(result.ledger), *other_counted]
        # the clean lines are written in a thread (Arrow encodes and compresses them without Python's lock) while this one
        # checks the reconciliation, then the ledger in the other thread and the orders in this one beside what is left:
        # written one after another once everything was reconciled, the 1M-customer demo's files took 16 s after 9 s of
        # reconciling (2026-12-02).
        # A reconciliation that fails still fails the run (the files written are those of a failed run, never marked latest).
        with ThreadPoolExecutor(max_workers=2) as pool:
            ids: Future = Future()  # the kept lines' customer ids, sorted, and the codes' map to them, once the lines' writer has them
            writes = [pool.submit(_write_lines, result, data_dir, ids)]
            reconciliation = pd.concat(reconciled, ignore_index=True).sort_values(["table", "source"], kind="stable", ignore_index=True)
            clean.check_reconciliation(reconciliation, result.orders, result.ledger, {rec["source"]: rec["rows"] for rec in inventory})
            stage = DataStage(
                inventory=pd.DataFrame(inventory), reconciliation=reconciliation, reasons=pd.concat(counted, ignore_index=True),
                orders=result.orders, run_dir=run_dir, tables=tables,
            )
            writes.append(pool.submit(_write_by_row_group, ledgers, clean.LEDGER_COLUMNS, data_dir / "ledger.parquet"))
            _write(stage, ledgers, run_dir)
            no_orders = _no_orders(result.ledger, paths) if stage.orders.empty else None
            # the ledger let go of once written, before the orders are written beside the lines: the 1M-customer demo's
            # data stage peaked there, holding the 9M rows already written (3.75 -> 3.68 GiB, 2026-12-02)
            writes.pop().result()
            ledgers.clear()
            result.ledger = ledger = None
            give_back_memory()
            codes, customers = _write_orders(stage.orders, data_dir, *ids.result(), result.order_customer_codes)
            # the page's orders with their customers as the file holds them (a categorical of the sorted ids): the ids' text
            # let go of, and the monthly customers counted by code (7M orders of 1.4M customers: 4.4 s to hash their text
            # again, 2026-12-04)
            stage.orders["customer_id"] = categorical_of_ids(codes, customers)
            result.order_customer_codes = None
            for write in writes:
                write.result()  # a write's error is raised here
    if no_orders is not None:
        raise TierbookError(no_orders)
    del result, ledgers, writes
    give_back_memory()  # what the cleaning held, back to the system while the page is drawn beside the next sections
    return stage


def _clean_others(reading: ingest.Reading, params: Params, paths: dict[str, Path], today: dt.date, on_read=None):
    """The inventory of every source once all are read (``Reading.finish``), and the customers, survey and experiment
    tables cleaned, their ledgers reconciled and counted: in a thread of their own while the transactions are cleaned
    (3.3 s of the 1M-customer demo's data stage after the transactions' cleaning, 2026-12-03). ``on_read()`` is called
    once every source is read."""
    mapped, inventory = reading.finish()
    if on_read is not None:
        on_read()
    cleaners = {
        "customers": lambda frame: clean.clean_customers(frame, paths),
        "survey": lambda frame: clean.clean_survey(frame, params.clean.max_date or today),
        "experiment": clean.clean_experiment,
    }
    tables: dict[str, pd.DataFrame] = {}
    ledgers, reconciled, counted = [], [], []
    for name, cleaner in cleaners.items():
        if name in mapped:
            tables[name], ledger = cleaner(mapped.pop(name))
            ledgers.append(ledger)
            reconciled.append(clean.reconcile(ledger))
            counted.append(_reasons(ledger))
    give_back_memory()
    return inventory, tables, ledgers, reconciled, counted


def _mark_read(run_dir: Path) -> None:
    """Record, when the report's runner runs this stage (its marks folder is there), that every input is read: the
    runner then starts the fork server of the later sections (``report._start_fork_server_after``, large inputs)."""
    if (Path(run_dir) / MARKS).is_dir():
        mark(run_dir, "data", "read")


def _reasons(ledger: pd.DataFrame) -> pd.DataFrame:
    """Rows and amounts per table, status and reason, in order of appearance."""
    reasons = (
        pd.DataFrame({"table": ledger["table"], "status": ledger["status"], "reason": ledger["reason"], "row": ledger["row"],
                      "amount": ledger["amount"].astype(float).fillna(0.0)})  # the columns it needs, not a copy of the ledger
        .groupby(["table", "status", "reason"], sort=False, observed=True)
        .agg(rows=("row", "size"), amount=("amount", "sum"))
        .reset_index()
    )
    for column in ("table", "status", "reason"):  # the ledger's categoricals as text
        reasons[column] = clean.as_text(reasons[column])
    return reasons


def _no_orders(ledger: pd.DataFrame, paths: dict[str, Path]) -> str:
    """Every transaction row was merged or rejected: the one line that says why, per file (raised
    after rejected.csv is written, which lists each row with the text that did not parse)."""
    tx = ledger[ledger["table"] == "transactions"]
    per_file = []
    for source, rows in tx.groupby("source", sort=False, observed=True):
        counts = clean.as_text(rows["reason"]).value_counts()
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


def statistics_columns(schema: pa.Schema) -> list[str]:
    """The columns whose min/max statistics a Parquet file keeps: all but text. A reader skips row groups by them for a
    filter on dates or amounts; the text ones (order ids, customer ids, sources) were a quarter of the CPU time of writing
    the 1M-customer demo's transactions, orders and ledger (9.1 -> 6.8 s on their own; 2026-12-03) and no reader filters
    on them."""
    def text(t: pa.DataType) -> bool:
        t = t.value_type if pa.types.is_dictionary(t) else t
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)

    return [field.name for field in schema if not text(field.type)]


def _write(stage: DataStage, ledgers: list[pd.DataFrame], run_dir: Path) -> None:
    """The data stage's other outputs (the clean lines, orders and ledger are written in threads, ``run_data_stage``).
    ``ledgers``: the ledger's parts, one per table."""
    for name, frame in stage.tables.items():
        frame.to_parquet(run_dir / "data" / f"{name}.parquet", index=False)
    rejected = pd.concat([_rejected(part) for part in ledgers], ignore_index=True)
    rejected[["source", "row", "reason", "detail", "table", "customer_id", "order_id", "order_date", "amount"]].to_csv(
        run_dir / "rejected.csv", index=False, encoding="utf-8-sig")
    tables_dir = run_dir / "tables"
    stage.reconciliation.to_csv(tables_dir / "reconciliation.csv", index=False, encoding="utf-8-sig")
    stage.reasons.to_csv(tables_dir / "rejection_reasons.csv", index=False, encoding="utf-8-sig")
    stage.inventory.to_csv(tables_dir / "inputs.csv", index=False, encoding="utf-8-sig")
    (run_dir / ingest.INPUTS_FILE).write_text(json.dumps(stage.inventory.to_dict("records"), indent=2, ensure_ascii=False), encoding="utf-8")


def _rejected(ledger: pd.DataFrame) -> pd.DataFrame:
    """The rejected rows of a ledger part, its categorical columns as text (as the other tables' ledgers hold them)."""
    rows = ledger[(ledger["status"] == "rejected").to_numpy(dtype=bool)]
    return pd.DataFrame({c: clean.as_text(rows[c]) for c in rows.columns}, index=rows.index)


def _write_lines(result: clean.CleanTransactions, data_dir: Path, ids: Future) -> None:
    """The kept lines, a span of customers per row group (``_by_customer``), customer ids dictionary-encoded (sorted
    categories): later sections group by their codes, which makes the 1M-customer summary 1.2 s instead of 8 s
    (bench/summary_time.py). ``ids`` is given the sorted ids and each of cleaning's customer codes' new one
    (``summary.codes_at``) before the lines are written (the orders take them, ``_write_orders``). Once the lines are
    written, ``result.lines`` is let go: what the ledger does not share of the mapped rows is freed (0.8 GiB at 1M
    customers, 2026-12-02)."""
    try:
        lines, kept = result.lines, result.kept
        # cleaning's codes of every line (the ids' order as text), restricted to the kept ones
        codes, sorted_ids, rank = codes_at(result.customer_codes, result.customer_ids, kept)
        result.customer_codes = result.customer_ids = None
    except BaseException as exc:
        ids.set_exception(exc)
        raise
    ids.set_result((sorted_ids, rank))
    # the rows in the order written, in place of the kept rows' positions and codes (their copies held beside them: 0.1 GiB
    # more in the writes, at 1.4M customers)
    order = _by_customer(codes)
    result.kept = None
    kept, codes = kept[order], codes[order]
    del order
    _write_by_row_group([lines], clean.TX_COLUMNS, data_dir / "transactions.parquet", kept, codes, sorted_ids, result.spilled)
    result.lines, result.spilled = None, {}


def _write_orders(orders: pd.DataFrame, data_dir: Path, ids: np.ndarray, rank: np.ndarray,
                  order_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The orders, their customer ids dictionary-encoded with the kept lines' sorted ``ids`` (they are the same
    customers): each order's cleaning code (``order_codes``) mapped by ``rank`` (``summary.codes_at``); coded on their
    own (``customer_codes``) should they not be those customers. Written by the data stage's own thread once its other
    files are (while the lines are still being written): after the lines in their thread, the 1M-customer demo's data
    stage waited 3.1 s for them at its end; in a third thread beside the lines and the ledger they held about 0.2 GiB
    more (2026-12-02). Written a span of customers per row group (``_by_customer``), in the orders' order within a row
    group. Returns each order's code (in ``orders``' order) and the ids they index."""
    codes = np.where(order_codes >= 0, rank[order_codes], -1) if len(order_codes) else order_codes
    if (codes < 0).any() or not np.bincount(codes, minlength=len(ids)).all():  # not the kept lines' customers, each
        codes, ids = customer_codes(orders["customer_id"])
    order = _by_customer(codes)
    _write_by_row_group([orders], list(orders.columns), data_dir / "orders.parquet", order, codes[order], ids)
    return codes, ids


def _by_customer(codes: np.ndarray, group: int | None = None) -> np.ndarray:
    """The positions of rows in the order they are written: row groups of ``group`` rows (``ROW_GROUP``) that each hold
    the rows of a span of customers (by their ``codes``, the sorted ids'), in their order within a row group. A row group
    then holds its own customers' ids, not all of them (``_write_by_row_group``), and its rows are taken from the frame
    in increasing positions. A customer at a row groups' boundary has its first rows in the one and its others in the
    next. Each row's row group comes from its customer's place among the rows ordered by customer (counted, not sorted),
    and the rows are then ordered by row group alone (numpy's radix sort of 16-bit integers): 10.1M lines of 1.4M
    customers 0.25 s against 1.36 s for a sort by (customer, position) and then of each row group (2026-12-04). Rows fully
    ordered by customer took the writes 3-4 s more (the columns gathered in random order).
    """
    n, group = len(codes), group or ROW_GROUP
    if not n:
        return np.arange(0)
    counts = np.bincount(codes)
    ends = np.cumsum(counts)  # each customer's rows end here among the rows ordered by customer
    starts = ends - counts
    first = starts // group  # the row group of each customer's first row
    block = first.astype(np.int16 if (n - 1) // group < 2**15 else np.int64)[codes]
    # a customer whose rows cross a row groups' boundary: its rows, in their order, go to the row groups they fall in
    for code in np.flatnonzero((counts > 0) & ((ends - 1) // group != first)):
        rows = np.flatnonzero(codes == code)
        block[rows] = (starts[code] + np.arange(len(rows))) // group
    return np.argsort(block, kind="stable")


# the rows of a row group: pyarrow's default, so the files are those pq.write_table writes of the whole frame
ROW_GROUP = 1024 * 1024


def _write_by_row_group(frames: list[pd.DataFrame], columns: list[str], path: Path, positions: np.ndarray | None = None,
                        codes: np.ndarray | None = None, ids: np.ndarray | None = None,
                        spilled: dict[str, clean.SpilledColumn] | None = None) -> None:
    """``columns`` of ``frames`` one after another (the rows at ``positions`` of the one frame when given) written as
    Parquet a row group at a time: the same file as ``pq.write_table`` of their concatenation (same schema, same row
    groups), but only a row group's rows are taken and turned into Arrow at once. The whole kept lines and their Arrow
    copy held 1.6 GiB of the 1M-customer demo's data stage, the 9M-row ledger's concatenation 0.5 GiB (2026-12-02).
    ``codes`` and ``ids``: customer_id written dictionary-encoded (``ids`` the categories, ``codes`` each row's).
    ``spilled``: columns of the one frame kept in files (``clean.spill_passengers``), read a row group's span at a time."""
    bounds = np.cumsum([0] + [len(f) for f in frames])
    n = int(bounds[-1]) if positions is None else len(positions)
    if codes is not None:  # the categories turned into Arrow once (per row group, 1M ids took 0.9 s, 2026-12-02)
        empty = categorical_of_ids(codes[:0], ids)
        encoded = pa.Array.from_pandas(empty)
        head = clean.take_rows(frames[0], np.array([], dtype=np.int64), columns, spilled).assign(customer_id=empty)
        metadata = pa.Table.from_pandas(head, preserve_index=False).schema.metadata
        starts = np.arange(0, n, ROW_GROUP)
        spans = bool(n and np.all(np.maximum.reduceat(codes, starts)[:-1] <= np.minimum.reduceat(codes, starts)[1:]))

    def customer(rows: slice | np.ndarray) -> pa.DictionaryArray:
        """The rows' customer ids, dictionary-encoded: when each row group's customers follow the one before's
        (``_by_customer``), with the span of the sorted ids a row group uses, so that it holds its own customers and a
        reader joins the spans into the sorted ids (``pd.read_parquet`` as ``read_clean``); else with all the ids.
        Parquet keeps a dictionary per row group, which its writer and every reader hash: all 1.4M ids in each of the 10
        row groups of 10.1M lines took 4.3 s to write and 0.6-0.8 s a row group to read (2026-12-04)."""
        taken = codes[rows]
        low = int(taken.min()) if spans and len(taken) else 0
        high = int(taken.max()) + 1 if spans and len(taken) else len(encoded.dictionary)
        index = pa.array(taken - low if low else taken, type=encoded.type.index_type)
        return pa.DictionaryArray.from_arrays(index, encoded.dictionary.slice(low, high - low))

    def pieces(name: str, rows: slice | np.ndarray) -> list[pd.Series]:  # ``rows``: among the rows written; categoricals as they are
        if spilled and name in spilled:
            return [spilled[name].take(positions[rows] if positions is not None else np.arange(n)[rows])]
        if positions is not None:
            return [clean.take_column(frames[0], name, positions[rows], text=False)]
        if isinstance(rows, slice):
            return [frame[name].iloc[max(rows.start - a, 0): min(rows.stop, b) - a] for frame, a, b in zip(frames, bounds[:-1], bounds[1:])
                    if a < rows.stop and b > rows.start]
        return [frame[name].take(rows[(rows >= a) & (rows < b)] - a) for frame, a, b in zip(frames, bounds[:-1], bounds[1:])]

    def column(name: str, rows: slice | np.ndarray) -> pd.Series:
        texts = [clean.as_text(p) for p in pieces(name, rows)]
        return texts[0] if len(texts) == 1 else pd.concat(texts, ignore_index=True)

    def arrow(rows: slice | np.ndarray, schema: pa.Schema | None = None) -> pa.Table:
        """The rows as Arrow, a column at a time: a row group's rows of every column at once and their Arrow copy are
        about 0.3 GiB in a writing thread at 1M customers (1M rows of 17 columns, twice). ``schema``: the whole table's
        types, so that a text column missing from these rows is text all the same; inferred from the rows' values when
        None."""
        if schema is None:
            frame = pd.DataFrame({c: column(c, rows).reset_index(drop=True) for c in columns if c != "customer_id" or codes is None})
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if codes is None:
                return table
            return table.add_column(columns.index("customer_id"), "customer_id", customer(rows)).replace_schema_metadata(metadata)
        arrays = []
        for c in columns:
            if c == "customer_id" and codes is not None:
                arrays.append(customer(rows))
            else:
                parts = [_arrow(p, schema.field(c).type) for p in pieces(c, rows)]
                arrays.append(parts[0] if len(parts) == 1 else
                              pa.chunked_array([chunk for part in parts for chunk in getattr(part, "chunks", [part])], type=schema.field(c).type))
        return pa.Table.from_arrays(arrays, schema=schema)

    # the schema of the whole table: a text (object) column's Arrow type comes from its values, so it is read from a
    # sample of each such column's first non-missing row
    sample = {0} if n else set()
    for c in columns:
        for frame, start in zip(frames, bounds[:-1]):
            if c in frame and (frame[c].dtype == object or isinstance(frame[c].dtype, pd.CategoricalDtype)):
                first = _first_present(frame[c], positions)
                if first:
                    sample.add(int(start) + first[0])
                    break
    schema = arrow(np.array(sorted(sample), dtype=np.int64)).schema
    use_dictionary = [c for c in schema.names if c in DICTIONARY_COLUMNS]
    with pq.ParquetWriter(path, schema, use_dictionary=use_dictionary, write_statistics=statistics_columns(schema)) as writer:
        for start in range(0, n, ROW_GROUP):
            writer.write_table(arrow(slice(start, min(start + ROW_GROUP, n)), schema))
        if not n:
            writer.write_table(schema.empty_table())


def _arrow(values: pd.Series, kind: pa.DataType) -> pa.Array:
    """``pa.Array.from_pandas(clean.as_text(values), type=kind)``: a categorical of text decoded by Arrow from its categories,
    not made a Python object per row first (1M rows of a few sources or statuses: 0.07 -> 0.024 s, 2026-12-04)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and pa.types.is_string(kind):
        categories = values.cat.categories
        if categories.inferred_type == "string" or not len(categories):
            codes = values.cat.codes.to_numpy()
            dictionary = pa.array(categories.to_numpy(dtype=object), type=kind)
            return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), dictionary).dictionary_decode()
    return pa.Array.from_pandas(clean.as_text(values), type=kind)


def _first_present(values: pd.Series, positions: np.ndarray | None, block: int = 65536) -> list[int]:
    """The first of ``positions`` (all rows when None) where ``values`` is not missing, as a list of none or one, looked
    for a block at a time (most columns have a value in their first row; notna of a whole 7M-row object column took 0.3 s)."""
    n = len(values) if positions is None else len(positions)
    array = values.array  # a categorical's codes stay codes (its to_numpy() spelt out every row)
    for start in range(0, n, block):
        at = np.arange(start, min(start + block, n))
        present = np.flatnonzero(pd.notna(array[at if positions is None else positions[at]]))
        if len(present):
            return [start + int(present[0])]
    return []


def load_clean(run_dir: Path, name: str, columns: list[str] | None = None, read_dictionary: list[str] | None = None) -> pd.DataFrame:
    """A clean table written by the data stage of a run (for the later sections). ``columns``: only
    those (3 of the orders' 11 columns read in 3.0 s CPU instead of 10.6 s at 1M customers);
    ``read_dictionary``: text columns read as categoricals."""
    return read_clean(Path(run_dir) / "data" / f"{name}.parquet", columns=columns, read_dictionary=read_dictionary)


def read_clean(path: Path, columns: list[str] | None = None, read_dictionary: list[str] | None = None) -> pd.DataFrame:
    """``pd.read_parquet(path, columns=columns, read_dictionary=read_dictionary)`` of a clean table, the same frame, but its
    dictionary-encoded customer ids (``_write_by_row_group``: the sorted ids, or for row groups of spans of customers a row
    group's span of them, in every row group) read a row group at a time, of each only the codes kept, the spans joined
    (``_chained_ids``): Arrow decodes every row group's dictionary (with all 1.4M ids in each of the 10 row groups of
    10.1M sale lines, six columns of those lines peaked at 1.65 GiB read at once, 1.10 GiB this way), the other columns
    made pandas' one at a time (``_others_to_pandas``; 2026-12-04). Ids whose row groups' dictionaries are not one list or
    spans of one sorted list are read the plain way."""
    path = Path(path)
    schema = pq.read_schema(path)

    def plain() -> pd.DataFrame:
        return pd.read_parquet(path, columns=columns, read_dictionary=read_dictionary)

    if "customer_id" not in schema.names or (columns is not None and "customer_id" not in columns):
        return plain()
    if not pa.types.is_dictionary(schema.field("customer_id").type):
        frame = _with_text_ids(path, schema, columns, read_dictionary)
        return plain() if frame is None else frame
    names = list(columns) if columns is not None else [n for n in schema.names if not n.startswith("__index_level_")]
    file = pq.ParquetFile(path, read_dictionary=list(read_dictionary or []))
    codes, dictionaries, others = [], [], []
    for group in range(file.num_row_groups):
        table = file.read_row_group(group, columns=names)
        for chunk in table.column("customer_id").chunks:
            if chunk.null_count:
                return plain()
            dictionaries.append(chunk.dictionary)
            codes.append(chunk.indices.to_numpy(zero_copy_only=False))
        others.append(table.drop_columns(["customer_id"]))
        del table
    ids = _chained_ids(dictionaries, codes)
    if ids is None:  # no rows, or row groups' dictionaries that are not spans of one sorted list
        return plain()
    out = _others_to_pandas(others)
    codes = np.concatenate(codes) if len(codes) > 1 else codes[0]
    # the ids made Python strings without pyarrow's table of those already made (they are distinct: 1.4M ids 0.88 -> 0.20 s),
    # and known distinct from their order (categorical_of_ids)
    out.insert(names.index("customer_id"), "customer_id", categorical_of_ids(codes, ids.to_pandas(deduplicate_objects=False)))
    return out


def _with_text_ids(path: Path, schema: pa.Schema, columns: list[str] | None, read_dictionary: list[str] | None) -> pd.DataFrame | None:
    """``read_clean`` of a table whose customer ids are text (customer_scores, the customers): pyarrow makes text Python
    strings through a table of those it has seen, to make each distinct one once; ids are distinct, and for 1.4M of them
    that table took 0.43 GiB and 1.1 s against 0.09 GiB and 0.2 s without it (2026-12-04). The other columns as pandas
    reads them."""
    described = {entry.get("name"): entry for entry in json.loads((schema.metadata or {}).get(b"pandas", b"{}")).get("columns", [])}
    field = schema.field("customer_id")
    if described.get("customer_id", {}).get("numpy_type") != "object" or not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        return None  # ids pandas reads as another dtype: the caller reads the plain way
    table = pq.read_table(path, columns=columns, read_dictionary=read_dictionary)
    names = table.column_names
    ids = table.select(["customer_id"]).to_pandas(deduplicate_objects=False)["customer_id"]
    out = ids.to_frame() if len(names) == 1 else table.drop_columns(["customer_id"]).to_pandas()
    del table
    # what Arrow freed goes back to the system (its allocator keeps it, and pandas' arrays come from malloc): the clv
    # stage held 0.57 GiB less after reading the 1.4M customers' summary so (valuation.section_summary, 2026-12-04)
    pa.default_memory_pool().release_unused()
    if len(names) > 1:
        out.insert(names.index("customer_id"), "customer_id", ids)
    return out


def _others_to_pandas(tables: list[pa.Table]) -> pd.DataFrame:
    """The row groups' tables (the list emptied) as one frame, made a column at a time, each column's Arrow buffers let go
    of once it is pandas': 10.1M sale lines of six columns peaked at 1.42 GiB read at once, 1.10 GiB so (2026-12-04). The
    frame keeps a block per column (pandas joins blocks of one dtype only when an operation needs them joined)."""
    table = pa.concat_tables(tables)
    tables.clear()
    if not table.num_columns:
        return table.to_pandas()
    columns, attrs = {}, None
    for name in table.column_names:
        part = table.select([name]).to_pandas()
        attrs = part.attrs if attrs is None else attrs
        columns[name] = part[name]
        table = table.drop_columns([name])
        del part
        # Arrow's allocator keeps what it freed, and pandas' copies come from malloc, not from it: given back column by
        # column, the profile section's read of six columns of 10.1M lines peaked 1.13 GiB instead of 1.15-1.47 GiB and held
        # 1.09 GiB after it instead of 1.05-1.44 GiB (2026-12-04)
        pa.default_memory_pool().release_unused()
    out = pd.DataFrame(columns, copy=False)
    out.attrs = attrs
    return out


def _chained_ids(dictionaries: list[pa.Array], codes: list[np.ndarray]) -> pa.Array | None:
    """The ids that the chunks' ``dictionaries`` are spans of, and ``codes`` (each chunk's indices, changed in place)
    made codes of them; None when they are not spans of one list. A data-stage file has one dictionary for all its row
    groups (its rows in any order) or, its row groups holding spans of customers, a span of the sorted ids per row group, each
    starting at the last id of the one before or after it (``_write_by_row_group``): the ids are then those spans joined,
    sorted and distinct, as ``pd.read_parquet`` unifies them."""
    if not dictionaries:
        return None
    first = dictionaries[0]
    if all(_same_strings(d, first) for d in dictionaries[1:]):
        return first
    parts, offset, last, previous, shift = [], 0, None, None, 0
    for i, dictionary in enumerate(dictionaries):
        if not len(dictionary):  # a chunk without rows
            continue
        if previous is None or not _same_strings(dictionary, previous):  # a row group's batches share its dictionary
            if len(dictionary) > 1 and not pc.all(pc.less(dictionary.slice(0, len(dictionary) - 1), dictionary.slice(1))).as_py():
                return None  # not sorted and distinct
            head = dictionary[0].as_py()
            if last is not None and head < last:
                return None
            overlap = int(last is not None and head == last)
            parts.append(dictionary.slice(overlap))
            shift = offset - overlap
            offset += len(dictionary) - overlap
            last, previous = dictionary[-1].as_py(), dictionary
        codes[i] = codes[i].astype(np.int32) + shift
    return pa.concat_arrays(parts) if parts else first


def _same_strings(a: pa.Array, b: pa.Array) -> bool:
    """Whether two Arrow string arrays hold the same values: the same buffers (a row group's batches share their
    dictionary), else compared."""
    if len(a) == len(b) and a.offset == b.offset and all(x is not None and y is not None and x.address == y.address
                                                          for x, y in zip(a.buffers()[1:], b.buffers()[1:])):
        return True
    return a.equals(b)


def monthly(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders, customers and net revenue per calendar month and channel (orders without a channel left out).

    The month is numpy's (datetime64[M], not a pandas Period), the channel a categorical, only the columns needed: the
    same frame as grouping the orders by Period month and channel text. The customers are counted as the distinct
    (group, customer code) pairs, not by groupby's nunique (which sorts them per group): the 7M orders of 1.4M customers
    took 3.6 s before and 2.6 s now with their ids as the categorical the sections read (and the data page now holds),
    6.9 s before with the ids as text (a slow evening, 2026-12-04)."""
    frame = pd.DataFrame({
        "month": orders["order_date"].to_numpy().astype("datetime64[M]").astype("datetime64[ns]"),
        "channel": orders["channel"].astype("category"),
        "net_amount": orders["net_amount"],
    })
    grouped = frame.groupby(["month", "channel"], observed=True, sort=True)
    result = grouped.agg(orders=("month", "size"), revenue=("net_amount", "sum")).reset_index()
    group = grouped.ngroup().fillna(-1).to_numpy(dtype=np.int64)  # each order's row of ``result`` (-1: no channel or no date)
    customers = orders["customer_id"]
    code = (customers.cat.codes.to_numpy() if isinstance(customers.dtype, pd.CategoricalDtype) else line_codes(customers)[0]).astype(np.int64)
    counted = (group >= 0) & (code >= 0)
    width = max(int(code.max()) + 1, 1) if len(code) else 1
    pairs = pd.unique(group[counted] * width + code[counted])
    result.insert(3, "customers", np.bincount(pairs // width, minlength=len(result)).astype(np.int64))
    result["channel"] = result["channel"].astype(object)
    return result


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
