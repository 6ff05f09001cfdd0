"""Cleaning: every input row ends up kept, merged or rejected with a reason.

Transactions go through the rules below in this order; a row takes the first rule that applies.

====================  ========  ==============================================================
reason                status    rule
====================  ========  ==============================================================
unparseable_date      rejected  the date does not parse (with the source's ``date_format``)
unparseable_amount    rejected  the amount (or quantity x unit price) does not parse
missing_customer_id   rejected  no customer id (walk-in / guest purchases)
future_date           rejected  dated after ``clean.max_date`` (default: the day of the run)
placeholder_date      rejected  dated on or before 1970-01-01 (PLACEHOLDER_BEFORE): a system's
                                default date (1900-01-01, 1899-12-30, 1970-01-01), not a purchase
outside_window        rejected  before ``clean.window.start`` or after ``clean.window.end``
non_positive_amount   rejected  a sale (not a return) with amount < 0, or = 0 unless
                                ``clean.zero_amount_sales: keep`` (free gifts, errors)
return_not_negative   rejected  flagged as a return but the amount is >= 0
outlier               rejected  a sale line whose amount is extreme (``clean.outliers``)
exact_duplicate       merged    identical in every column to an earlier row of the same file
cross_source_duplicate merged   the same order in a higher-priority source (same customer,
                                time within ``time_tolerance_minutes``, amount to the cent)
return_netted         merged    a return netted against its order (``original_order_id`` when
                                given, else the customer's latest earlier order with the same
                                product, else the customer's latest earlier order)
return_unmatched      rejected  a return with no earlier order of the customer to net against
fully_returned        rejected  the sale lines and returns of an order whose returns bring its
                                net amount to <= 0 (with ``zero_amount_sales: reject``, any order
                                whose net amount is <= 0)
====================  ========  ==============================================================

Everything else is kept. Amounts reconcile per source: read = kept + merged + rejected, and the
clean orders' net total = kept sale lines + netted returns (``reconcile``/``check_reconciliation``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import TierbookError
from .ingest import REPEATED_TEXT
from .memory import give_back_memory
from .params import Clean
from .summary import known_unique, line_codes, used_codes

if TYPE_CHECKING:
    import pyarrow as pa

REASONS = {
    "unparseable_date": "date does not parse",
    "unparseable_amount": "amount does not parse",
    "missing_customer_id": "no customer id",
    "future_date": "dated in the future",
    "placeholder_date": "dated on or before 1970-01-01 (a placeholder date)",
    "outside_window": "outside the analysis window",
    "non_positive_amount": "sale with zero or negative amount",
    "return_not_negative": "return with a non-negative amount",
    "outlier": "extreme amount (outlier rule)",
    "exact_duplicate": "exact duplicate of an earlier row",
    "cross_source_duplicate": "same order already in another source",
    "return_netted": "return netted against its order",
    "return_unmatched": "return without an earlier order to net against",
    "fully_returned": "order fully returned or cancelled",
    "duplicate_customer_id": "customer id already in an earlier row (first row kept)",
    "no_score": "neither NPS nor CSAT answered",
    "score_out_of_range": "NPS outside 0-10 or CSAT outside 1-5",
    "missing_variant": "no variant",
    "several_variants": "customer assigned to more than one variant",
}

LEDGER_COLUMNS = ["table", "source", "row", "status", "reason", "detail", "customer_id", "order_id", "order_date", "amount"]
TX_COLUMNS = ["source", "row", "order_id", "customer_id", "order_date", "amount", "quantity", "unit_price",
              "product_id", "channel", "store", "currency", "category", "discount", "cost", "margin", "region"]


# Dates on or before this are a system's placeholder (Excel's 1899-12-30 and 1900-01-01, SQL Server's
# 1753-01-01 and 1900-01-01, the Unix epoch 1970-01-01), never a purchase a CRM export holds: the
# oldest real data this template is tested on is CDNOW's, from 1997. Kept, a 1900 order would make
# the customer 125 years old in RFM and CLV. `clean.window.start` rejects later dates when asked.
PLACEHOLDER_BEFORE = pd.Timestamp("1970-01-02")
# A customers table where more than this share of the rows repeats an earlier row's id (not an
# exact copy) is not one row per customer: the id column is the wrong one (a store or an order id)
# or the export is per visit or per card; keeping an arbitrary first row would hide it.
MAX_DUPLICATE_ID_SHARE = 0.5


class _Ledger:
    """Assigns each row its first applicable status; later rules never overwrite earlier ones.

    Statuses and reasons are small integer codes and details a Python object array until ``frame``:
    each mark of an Arrow string column copied all of it (7M rows, ~20 marks; 2026-12-02). The frame holds the
    table, the statuses and the reasons as categoricals (``as_text`` spells them out)."""

    def __init__(self, index: pd.Index):
        self.index = index
        self._status = np.full(len(index), -1, dtype=np.int16)  # position in self._names, -1 = open
        self._reason = np.full(len(index), -1, dtype=np.int16)
        self._detail = np.full(len(index), None, dtype=object)
        self._names: list[str] = []

    def _code(self, name: str) -> int:
        if name not in self._names:
            self._names.append(name)
        return self._names.index(name)

    def _categories(self, codes: np.ndarray) -> pd.Series:
        """The texts of ``codes`` (-1: missing) as a categorical of the names they use, in order of first marking: the
        transactions' 7M statuses and reasons held 85 and 88 MB as Arrow strings at 1M customers, 7 MB each so, and the
        ledger is held until written, through the data stage's peak (2026-12-03)."""
        used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(self._names)))
        recode = np.full(len(self._names) + 1, -1, dtype=np.int16)  # the last one: -1's
        recode[used] = np.arange(len(used))
        return pd.Series(pd.Categorical.from_codes(recode[codes], categories=[self._names[i] for i in used]), index=self.index)

    @property
    def open(self) -> pd.Series:
        return pd.Series(self._status < 0, index=self.index)

    @property
    def status(self) -> pd.Series:
        return self._categories(self._status)

    def has(self, status: str) -> np.ndarray:
        """The rows of ``status``, from the codes (``status == ...`` spelt out 7M texts first)."""
        return self._status == (self._names.index(status) if status in self._names else -2)

    def mark(self, mask: pd.Series, status: str, reason: str, detail: pd.Series | str | Callable | None = None, force: bool = False):
        """``detail``: text for every row, one text, or a function of the marked rows' mask giving their texts
        (formatting 7M dates or z-scores to mark a few rows cost seconds at 1M customers)."""
        mask = mask.fillna(False).astype(bool)
        if not force:
            mask &= self.open
        rows = mask.to_numpy()
        if not rows.any():
            return
        self._status[rows] = self._code(status)
        self._reason[rows] = self._code(reason)
        if callable(detail):
            detail = detail(mask)
        if isinstance(detail, pd.Series):
            values = detail.reindex(self.index[rows]).astype(object).to_numpy()
            self._detail[rows] = np.where(pd.isna(values), None, values)
        elif detail is not None:
            self._detail[rows] = detail

    def frame(self, table: str, rows: pd.DataFrame) -> pd.DataFrame:
        if (self._status < 0).any():
            raise AssertionError("cleaning left rows without a status")
        # the table's name as a categorical of one category (an object column of it: 58 MB for 7M rows)
        columns = {"table": pd.Series(pd.Categorical.from_codes(np.zeros(len(self.index), dtype=np.int8), categories=[table]), index=self.index),
                   "source": rows["source"], "row": rows["row"], "status": self.status, "reason": self._categories(self._reason),
                   "detail": pd.Series(pd.array(self._detail, dtype="string"), index=self.index)}
        empty = {"customer_id": "string", "order_id": "string", "order_date": "datetime64[ns]", "amount": "float64"}
        for column, dtype in empty.items():
            columns[column] = rows[column] if column in rows else pd.Series(None, index=rows.index, dtype=dtype)
        return pd.DataFrame(columns, copy=False)  # the rows' columns as they are (copies of them took 1 GiB at 1M customers)


# Columns of the mapped lines that no cleaning rule reads, only the clean lines carry: when numeric, ``clean_transactions``
# keeps them in files of a ``spill_dir`` while it cleans (``SpilledColumn``), out of memory until the clean lines are
# written. At 1.4M customers (10.1M lines) the four the demo maps held 0.31 GiB through cleaning; the data stage on its
# own peaked at 3.70 GiB with them in files against 3.95 GiB before (one run each, 2026-12-04, bench/RESULTS.md).
PASSENGER_COLUMNS = ("quantity", "unit_price", "discount", "cost", "margin")


@dataclass
class SpilledColumn:
    """A numeric column of the mapped lines kept in a file (its raw values, ``ndarray.tofile``) while the lines are
    cleaned: ``take`` reads only the span of rows it is asked for (the data stage writes the clean lines a row group
    at a time)."""

    name: str
    path: Path
    dtype: np.dtype

    @classmethod
    def write(cls, values: pd.Series, folder: Path) -> SpilledColumn:
        array = values.to_numpy()
        path = Path(folder) / f"{values.name}.bin"
        array.tofile(path)
        return cls(str(values.name), path, array.dtype)

    def take(self, positions: np.ndarray, block: int = 1 << 17) -> pd.Series:
        """The values at ``positions`` with a new RangeIndex, as ``take_column`` gives a column in memory: gathered from
        the file mapped, ``block`` positions at a time, each block from the span of the file it covers (a row group of
        the clean lines holds a span of customers and covers nearly all the rows: the whole span copied was 80 MB a
        column for each row group at 1.4M customers, mapped whole 80 MB more resident while it was gathered)."""
        values = np.empty(len(positions), dtype=self.dtype)
        for start in range(0, len(positions), block):
            part = positions[start:start + block]
            low, high = int(part.min()), int(part.max()) + 1
            window = np.memmap(self.path, dtype=self.dtype, mode="r", offset=low * self.dtype.itemsize, shape=(high - low,))
            values[start:start + block] = window.view(np.ndarray)[part - low]
            del window
        return pd.Series(values, name=self.name, copy=False)


def spill_passengers(tx: pd.DataFrame, folder: Path) -> dict[str, SpilledColumn]:
    """The numeric PASSENGER_COLUMNS of ``tx`` written to files in ``folder`` and removed from ``tx`` (in place).

    pandas keeps a frame's columns of one dtype in one 2-D array, and a column left of it is a view that keeps the
    whole array alive: the columns that shared an array with a spilled one are copied out of it, so that it is freed."""
    spilled, shared = {}, set()
    for column in PASSENGER_COLUMNS:
        if column in tx and isinstance(tx[column].dtype, np.dtype) and tx[column].dtype.kind in "biuf":
            shared.add(id(_owner(tx[column].to_numpy())))
            spilled[column] = SpilledColumn.write(tx.pop(column), folder)
    for column in tx.columns:
        if isinstance(tx[column].dtype, np.dtype) and id(_owner(tx[column].to_numpy())) in shared:
            tx[column] = tx[column].to_numpy().copy()
    return spilled


def _owner(array: np.ndarray) -> object:
    """The object that owns the memory ``array`` views (the array itself when it owns it)."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


@dataclass
class CleanTransactions:
    lines: pd.DataFrame | None  # the mapped rows, with the TX_COLUMNS a source maps (None once the data stage wrote them)
    kept: np.ndarray  # the positions of the kept sale lines among them
    orders: pd.DataFrame  # one row per kept order, returns netted
    ledger: pd.DataFrame | None  # one row per input row (LEDGER_COLUMNS; None once the data stage wrote it)
    # each line's customer as a code following the ids' order as text (-1: none), the ids by code (Arrow), and each
    # order's code (``summary.line_codes``): the data stage writes the customer ids dictionary-encoded with them
    customer_codes: np.ndarray | None = None
    customer_ids: pa.Array | None = None
    order_customer_codes: np.ndarray | None = None
    spilled: dict[str, SpilledColumn] = field(default_factory=dict)  # the lines' columns kept in files (spill_passengers)

    @property
    def transactions(self) -> pd.DataFrame:
        """The kept sale lines (TX_COLUMNS), taken when asked: the data stage writes them a row group at a time
        (``data._write_lines``) and never holds them whole (1.2 GiB at 1M customers, 2026-12-02)."""
        return take_rows(self.lines, self.kept, TX_COLUMNS, self.spilled)


def robust_log_z(amount: pd.Series) -> pd.Series:
    """Robust z-score of log(amount): (log a - median) / (1.4826 MAD). Amounts must be > 0."""
    logs = np.log(amount)
    median = logs.median()
    mad = 1.4826 * (logs - median).abs().median()
    if not np.isfinite(mad) or mad == 0:
        return pd.Series(0.0, index=amount.index)
    return (logs - median) / mad


def clean_transactions(tx: pd.DataFrame, rules: Clean, priority: list[str], today: dt.date,
                       spill_dir: Path | None = None) -> CleanTransactions:
    """Apply the cleaning rules (module docstring) to the mapped transaction rows of all sources.

    ``tx`` is ``ingest.map_source`` output (source, row, customer_id, order_date, amount,
    is_return, row_hash, ...). ``priority`` lists source names, highest first, for cross-source
    duplicates. ``today`` is the default ``max_date``. ``spill_dir``: an existing folder where the
    lines' numeric PASSENGER_COLUMNS are kept while cleaning runs (``CleanTransactions.spilled``;
    the caller removes it once the lines are written); None keeps them in memory.
    """
    # a shallow copy: the columns added below stay out of the caller's frame, and a frame that already has a RangeIndex
    # (ingest.read_all's) is not copied whole (reset_index copied the 7M lines' columns: 12 s at 1M customers, 2026-12-02)
    tx = tx.copy(deep=False) if isinstance(tx.index, pd.RangeIndex) and tx.index.start == 0 and tx.index.step == 1 else tx.reset_index(drop=True)
    spilled = spill_passengers(tx, spill_dir) if spill_dir is not None else {}
    # the columns the rules below use up are dropped from this frame once used: with the caller's frame gone, each Arrow
    # string column is then freed (this frame is the clean lines' source, ``CleanTransactions.lines``)
    # the optional columns the rules use, all missing when no source maps them; the others no source maps stay out of
    # the frame and are all missing in the clean lines (``take_rows``): two such columns held 110 MB at 1M customers
    for column in ("order_id", "original_order_id", "product_id", "store"):
        if column not in tx:
            tx[column] = pd.NA
    order_id = tx["order_id"].astype("string")
    missing = order_id.isna().to_numpy()
    if missing.any():  # "row<n>" for the lines without an order id, formatted for those lines only
        order_id[missing] = ("row" + tx.loc[missing, "row"].astype(str)).array
    tx["order_id"] = order_id
    ledger = _Ledger(tx.index)
    is_return = tx["is_return"].astype(bool)
    day = tx["order_date"].dt.normalize()

    unparsed = tx.pop("parse_detail") if "parse_detail" in tx else None  # the text that did not parse (ingest.map_source)
    ledger.mark(tx["order_date"].isna(), "rejected", "unparseable_date", unparsed)
    ledger.mark(tx["amount"].isna(), "rejected", "unparseable_amount", unparsed)
    del unparsed
    ledger.mark(tx["customer_id"].isna(), "rejected", "missing_customer_id")
    max_date = pd.Timestamp(rules.max_date or today)
    ledger.mark(day > max_date, "rejected", "future_date", f"after {max_date.date()}")
    ledger.mark(day < PLACEHOLDER_BEFORE, "rejected", "placeholder_date", lambda rows: "on " + day[rows].dt.strftime("%Y-%m-%d").fillna(""))
    if rules.window.start:
        ledger.mark(day < pd.Timestamp(rules.window.start), "rejected", "outside_window", f"before {rules.window.start}")
    if rules.window.end:
        ledger.mark(day > pd.Timestamp(rules.window.end), "rejected", "outside_window", f"after {rules.window.end}")
    keep_zero = rules.zero_amount_sales == "keep"
    ledger.mark(~is_return & ((tx["amount"] < 0) if keep_zero else (tx["amount"] <= 0)), "rejected", "non_positive_amount")
    ledger.mark(is_return & (tx["amount"] >= 0), "rejected", "return_not_negative")
    del day
    _mark_outliers(tx, ledger, is_return, rules)
    source_code, sources = pd.factorize(tx["source"])
    if rules.exact_duplicates == "merge":
        _mark_exact_duplicates(tx, ledger, source_code)
    if "row_hash" in tx:
        del tx["row_hash"]

    # an order is (source, order id), keyed by one integer: the order ids' codes (numbered with the returns' references to
    # them, compared as text) times the number of sources plus the source's code. Keys as strings took 40 s of joins and
    # lookups at 1M customers (2026-12-02)
    references = tx.pop("original_order_id")[is_return].astype("string")
    id_code, ids = pd.factorize(pd.concat([tx["order_id"], references], ignore_index=True))
    tx["order_key"] = id_code[: len(tx)].astype(np.int64) * len(sources) + source_code
    keys = OrderKeys(ids, len(sources), pd.Series(id_code[len(tx):].copy(), index=references.index))
    del references, id_code, source_code

    # each line's customer as an integer code, hashed once by Arrow: the returns' matching, the cross-source duplicates
    # and the writes of the clean files each hashed the 7M lines' or 5M orders' id strings (10.7 s CPU of the 1M-customer
    # demo's data stage on a slow afternoon, 2026-12-03). Hashed in a thread beside the rules above, the data stage's
    # peak resident memory was 0.13-0.17 GiB higher (what the thread's allocations left behind: 3.71-3.76 GiB against
    # 3.46-3.66 GiB), so here
    customer_code, customer_ids = line_codes(tx["customer_id"])
    sales = ledger.open & ~is_return
    orders = _orders(tx, np.flatnonzero(sales.to_numpy()), customer_code)
    if rules.cross_source_duplicates.enabled:
        _mark_cross_source_duplicates(tx, orders, ledger, priority, rules.cross_source_duplicates.time_tolerance_minutes, list(sources))
        orders = orders[orders.index.isin(tx.loc[ledger.open & ~is_return, "order_key"].to_numpy())]

    returns = ledger.open & is_return
    matched = _match_returns(tx, returns, ledger.open & ~is_return, orders, keys, customer_code)
    ledger.mark(returns & matched.isna(), "rejected", "return_unmatched", "no earlier order of this customer")
    netted = returns & matched.notna()
    # each return's order stays in ``matched``, not a column of the lines too (a copy: 87 MB at 1.4M customers, 2026-12-04)
    ledger.mark(netted, "merged", "return_netted", lambda rows: "order " + keys.order_id(matched[rows]))
    returned = tx.loc[netted, "amount"].groupby(matched[netted].rename("netted_into")).sum()
    orders["returned_amount"] = returned.reindex(orders.index).fillna(0.0)
    orders["net_amount"] = orders["gross_amount"] + orders["returned_amount"]
    gone_mask = ((orders["net_amount"] <= 0.005) & ((orders["returned_amount"] < 0) | (not keep_zero))).to_numpy()
    gone = orders.index[gone_mask].to_numpy()
    ledger.mark(ledger.open & ~is_return & tx["order_key"].isin(gone), "rejected", "fully_returned", "net amount <= 0 after returns")
    ledger.mark(netted & matched.isin(gone), "rejected", "fully_returned", "net amount <= 0 after returns", force=True)
    ledger.mark(ledger.open & ~is_return, "kept", "kept")
    if ledger.open.any():
        raise AssertionError("cleaning left rows without a status")
    del matched, netted, returns, keys

    # the orders left, sorted, in one take (a mask, a column selection and a sort each copied 5M orders: 10 s, 2026-12-02)
    left = np.flatnonzero(~gone_mask)
    by = ["order_date", "source", "order_id"]
    left_ids = _first_line_text(tx, orders, "order_id", left)
    sort = _stable_order(pd.DataFrame({"order_date": orders["order_date"].to_numpy()[left], "source": orders["source"].array.take(left),
                                       "order_id": left_ids.array}, copy=False), by)
    order = left[sort]
    # a column at a time, each dropped from the unsorted orders once taken (both whole side by side: 0.5 GiB at 1M customers).
    # The lines' repeated text (ingest.REPEATED_TEXT) stays categorical in the orders: as Python object arrays, source,
    # channel and currency held 40 MB each for the 5M orders of 1M customers, through the data stage's peak and beside the
    # later sections while the data page is drawn (2026-12-03)
    order_codes = orders.pop("customer_code").to_numpy()[order]
    taken = {}
    for column in ["source", "order_id", "customer_id", "order_date", "gross_amount", "returned_amount", "net_amount", "n_lines",
                   "channel", "store", "currency"]:
        if column == "order_id":
            taken[column] = pd.Series(left_ids.array.take(sort), copy=False)
            del left_ids
        elif column == "customer_id":
            taken[column] = _customers_of(order_codes, customer_ids)
        else:
            taken[column] = _sorted_categories(pd.Series(orders[column].array.take(order), copy=False)) if column in REPEATED_TEXT else take_column(orders, column, order)
        if column in orders:
            del orders[column]
        # what the column taken left freed (the unsorted column, the take's buffers) back to the system before the next is
        # taken: the allocators kept it and the 1.4M-customer data stage peaked here at 4.04-4.08 GiB resident; now the
        # end of cleaning stays under 3.8 GiB (three runs each, data stage on its own with the sections' settings, 2026-12-05)
        give_back_memory()
    orders = pd.DataFrame(taken, copy=False)
    del taken
    for column in ("order_key", "is_return"):
        del tx[column]
    return CleanTransactions(lines=tx, kept=np.flatnonzero(ledger.has("kept")), orders=orders, ledger=ledger.frame("transactions", tx),
                             customer_codes=customer_code, customer_ids=customer_ids, order_customer_codes=order_codes,
                             spilled=spilled)


def _customers_of(codes: np.ndarray, ids) -> pd.Series:
    """The orders' customer ids as a categorical of the ids they use (sorted, held by Arrow; ``codes``: each order's
    ``line_codes`` code, ``ids`` those codes' ids; ``summary.used_codes`` renumbers them, as ``codes_at`` does the
    lines'): the 7M orders' ids as text, taken from their first lines, were 0.15 GiB
    more at the end of the 1.4M-customer data stage's cleaning, its peak (2026-12-05). The data stage writes the orders
    with the codes and replaces the column with the written one (``data.run_data_stage``)."""
    used, rank = used_codes(codes, len(ids))
    categories = pd.Index(pd.array(ids.take(used), dtype=pd.StringDtype("pyarrow")))
    known_unique(categories)
    return pd.Series(pd.Categorical.from_codes(rank[codes], categories=categories), copy=False)


def _sorted_categories(values: pd.Series) -> pd.Series:
    """``values`` as a categorical of the values it holds, sorted as astype("category") sorts text; a categorical's
    codes kept (no text hashed again)."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype("category")
    values = values.cat.remove_unused_categories()
    return values.cat.reorder_categories(sorted(values.cat.categories))


def take_rows(frame: pd.DataFrame, positions: np.ndarray, columns: list[str],
              spilled: dict[str, SpilledColumn] | None = None) -> pd.DataFrame:
    """The rows at ``positions`` of ``columns``, with a new RangeIndex, as ``frame.loc[rows, columns].reset_index(drop=True)``
    gives them: each column taken once (the selection, the row filter and reset_index each copied the 7M kept lines: 5.3 s
    and 2 GiB more at the peak of 1M customers' cleaning, 2026-12-02). Each column keeps its dtype as a Series: a bare
    object array (a column no source maps, all missing) was scanned for dates by the frame's constructor, 1.2 s per
    column for the 1M-customer demo's 6.8M kept lines (2026-12-02). A column not in ``frame`` is all missing (pd.NA),
    unless ``spilled`` holds it (``spill_passengers``)."""
    spilled = spilled or {}
    return pd.DataFrame({c: spilled[c].take(positions) if c in spilled else take_column(frame, c, positions) for c in columns},
                        copy=False)


def take_column(frame: pd.DataFrame, column: str, positions: np.ndarray, text: bool = True) -> pd.Series:
    """The values of ``column`` at ``positions`` with a new RangeIndex (``take_rows``); all missing (pd.NA, object) when the
    frame has no such column. ``text=False`` keeps a categorical categorical (``as_text`` otherwise)."""
    if column not in frame:
        return pd.Series(np.full(len(positions), pd.NA, dtype=object), copy=False)
    taken = pd.Series(frame[column].array.take(positions), dtype=frame[column].dtype, copy=False)
    return as_text(taken) if text else taken


def as_text(values: pd.Series) -> pd.Series:
    """A categorical column (text the ingest keeps as categories, ``ingest.REPEATED_TEXT``) as text (object), as the
    clean files and the other tables hold it; any other column as it is."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values
    # missing as None, as a text column holds it (astype(object) gives NaN)
    texts = np.append(values.cat.categories.to_numpy(dtype=object), None)
    return pd.Series(texts[values.cat.codes.to_numpy()], index=values.index, name=values.name, copy=False)


@dataclass
class OrderKeys:
    """The integer keys of orders (``clean_transactions``): key = id code x n_sources + source code."""

    ids: pd.Index  # the order ids (and references to them) as text, by code
    n_sources: int
    references: pd.Series  # the code of each return's ``original_order_id`` (-1: none), by row

    def order_id(self, keys: pd.Series) -> pd.Series:
        """The order id of each key, as text."""
        return pd.Series(pd.array(self.ids.take(keys.to_numpy(dtype=np.int64) // self.n_sources), dtype="string"), index=keys.index)


def _stable_order(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Positions that sort ``frame`` by ``columns``, ascending and stable, as ``sort_values(kind="stable")``
    does, by Arrow's sort (strings compared as UTF-8 bytes, i.e. by code point, as Python compares them):
    5M orders by date, source and order id took 15 s in pandas, which factorizes and sorts the id strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.table({c: pa.array(frame[c].array) if isinstance(frame[c].dtype, pd.StringDtype) else pa.array(frame[c].to_numpy())
                      for c in columns})
    return pc.sort_indices(table, sort_keys=[(c, "ascending") for c in columns]).to_numpy()


def _mark_outliers(tx: pd.DataFrame, ledger: _Ledger, is_return: pd.Series, rules: Clean) -> None:
    candidates = ledger.open & ~is_return
    if rules.outliers.method == "none" or not candidates.any():
        return
    candidates &= tx["amount"] > 0  # zero-amount sales (clean.zero_amount_sales: keep) have no log
    amount = tx.loc[candidates, "amount"]
    if rules.outliers.method == "max_amount":
        flagged = amount > rules.outliers.threshold
        detail = f"amount above {rules.outliers.threshold:g}"
    else:
        z = robust_log_z(amount)
        flagged = z > rules.outliers.threshold
        detail = "robust z of log amount " + z[flagged].round(1).astype(str)  # formatted for the flagged rows only
    # the flagged candidates placed by position (the lines' index is a RangeIndex), and the texts of the flagged rows
    # looked up by ``mark`` for the rows it marks: reindexing by the 10.1M lines' labels hashed the 9M candidates' (0.7 s
    # of the 1.4M-customer data stage, 2026-12-04)
    mask = np.zeros(len(tx), dtype=bool)
    mask[np.flatnonzero(candidates.to_numpy(dtype=bool))[flagged.to_numpy(dtype=bool)]] = True
    ledger.mark(pd.Series(mask, index=tx.index), "rejected", "outlier", detail)


def _mark_exact_duplicates(tx: pd.DataFrame, ledger: _Ledger, source_code: np.ndarray) -> None:
    """``source_code``: each row's source as an integer (``pd.factorize`` of ``tx["source"]``)."""
    # per source, the open rows' hashes numbered in order of first appearance (pd.factorize, one pass of a hash table): a
    # row whose number appeared before repeats the first row with it. duplicated() and a groupby on the source texts and
    # hashes took 23 s at 1M customers, a stable sort by (source, hash) 3.5 s CPU, this 2.1 s (medians of 3, same marks, 2026-12-02)
    open_rows = np.flatnonzero(ledger.open.to_numpy())
    source = source_code[open_rows]
    hashes = tx["row_hash"].to_numpy()[open_rows]
    rows = tx["row"].to_numpy()
    duplicate = np.zeros(len(tx), dtype=bool)
    first_row = np.zeros(len(tx), dtype=np.int64)
    for code in np.unique(source):
        mine = source == code
        at = open_rows[mine]
        numbers = pd.factorize(hashes[mine])[0]
        # a number's first appearance is where the running maximum reaches it: the k-th first appearance has number k
        first_at = at[numbers > np.maximum.accumulate(np.r_[-1, numbers[:-1]])]
        repeat = first_at[numbers] != at
        duplicate[at[repeat]] = True
        first_row[at[repeat]] = rows[first_at[numbers[repeat]]]
    if not duplicate.any():
        return
    ledger.mark(pd.Series(duplicate, index=tx.index), "merged", "exact_duplicate",
                lambda marked: "identical to row " + pd.Series(first_row, index=tx.index)[marked.to_numpy()].astype(str))


def _orders(tx: pd.DataFrame, rows: np.ndarray, customer_code: np.ndarray) -> pd.DataFrame:
    """One row per (source, order id) of the lines at positions ``rows``: customer, first time, gross amount, number of lines.
    ``customer_code``: each line's customer as a code (-1: none), the order's in ``customer_code`` (that of its customer_id)."""
    # the order's attributes are those of its first line with one (groupby "first" skips missing values); a column
    # without missing values is taken at each order's first line directly: groupby "first" of Arrow strings
    # took 20 s on 7M lines, and a copy of the sale lines' ten columns 12 s (2026-12-02)
    code, keys = pd.factorize(tx["order_key"].to_numpy()[rows])  # numbered in order of appearance, as groupby(sort=False)
    first = np.flatnonzero(np.r_[True, np.diff(np.maximum.accumulate(code)) > 0]) if len(code) else np.array([], dtype=np.int64)

    def column(name: str):
        values = tx[name]
        if values.notna().to_numpy()[rows].all():
            out = values.take(rows[first])
        else:
            out = values.take(rows).groupby(code, sort=False).first()
        return out.array if isinstance(values.dtype, (pd.StringDtype, pd.CategoricalDtype)) else out.to_numpy()

    orders = pd.DataFrame(index=pd.Index(keys, name="order_key"))
    orders["source"] = column("source")
    # the order's id and customer's id as text once cleaning is done (``_first_line_text``): until then each order's
    # first line (its position among the lines) stands for them. At 1.4M customers the 7M orders' two text columns were
    # 0.23 GiB of the live memory while the orders were compared and the returns matched (memray, 2026-12-04)
    orders["first_line"] = rows[first]
    for name in ("order_id", "customer_id"):
        if not tx[name].notna().to_numpy()[rows].all():  # an order's first line without it: the first line with it
            orders[name] = column(name)
    codes = customer_code[rows]
    if (codes >= 0).all():
        orders["customer_code"] = codes[first]
    else:  # the first line's with a customer, as customer_id's
        orders["customer_code"] = pd.Series(np.where(codes >= 0, codes, np.nan)).groupby(code, sort=False).first().fillna(-1).to_numpy(np.int64)
    # grouped by the codes as a categorical's, which pandas uses as they are: grouped by the integers, it hashed the 7M
    # codes again for each (the same cython min and compensated sum, so the same values; 7M random order codes: 1.6 -> 0.45 s, 2026-12-04)
    by_code = pd.Categorical.from_codes(code, categories=pd.RangeIndex(len(keys)))
    orders["order_date"] = pd.Series(tx["order_date"].to_numpy()[rows]).groupby(by_code, observed=False).min().to_numpy()
    orders["gross_amount"] = pd.Series(tx["amount"].to_numpy()[rows]).groupby(by_code, observed=False).sum().to_numpy()
    del by_code
    orders["n_lines"] = np.bincount(code, minlength=len(keys))
    for name in ("channel", "store", "currency"):
        orders[name] = column(name)
    return orders


def _first_line_text(tx: pd.DataFrame, orders: pd.DataFrame, column: str, positions: np.ndarray) -> pd.Series:
    """``column`` (order_id or customer_id) of the orders at ``positions``, with a new RangeIndex: the text of each
    order's first line (``_orders``), or the orders' own column when ``_orders`` made one."""
    if column in orders:
        return take_column(orders, column, positions)
    return take_column(tx, column, orders["first_line"].to_numpy()[positions])


def _mark_cross_source_duplicates(tx, orders, ledger, priority: list[str], minutes: float, sources) -> None:
    """Orders of a lower-priority source that equal an order of a higher-priority source. ``sources``: the source names by
    the code each order key holds (key % their number)."""
    # the orders by date (the order of sort_values("order_date"): numpy's quicksort of the dates), as arrays of numbers
    # with the sources and customers as their codes: a frame of them with the 5M orders' source names (Python strings)
    # took 3.6 s to make and 2.9 s to sort at 1M customers (2026-12-03)
    date = orders["order_date"].to_numpy()
    by_date = np.argsort(date, kind="quicksort")
    date = date[by_date]
    source = (orders.index.to_numpy()[by_date] % len(sources)).astype(np.int32)
    customer = orders["customer_code"].to_numpy()[by_date].astype(np.int32)
    gross = orders["gross_amount"].to_numpy()
    n_codes = int(customer.max()) + 2 if len(customer) else 1  # codes + 1: -1 (no customer) counted too
    code_of = {name: code for code, name in enumerate(sources)}
    tolerance = pd.Timedelta(minutes=minutes)
    duplicate_of: dict[int, str] = {}  # order key -> the order it repeats, as text
    repeats = np.zeros(len(date), dtype=bool)  # the orders (by date) found to repeat one, not matched again
    for i, name in enumerate(priority[1:], start=1):
        left = np.flatnonzero(source == code_of.get(name, -1))
        higher = [code_of[s] for s in priority[:i] if s in code_of]
        right = np.flatnonzero(np.isin(source, higher) & ~repeats)
        # only the orders of the same customer and amount can match (merge_asof pairs rows of the same "by"): first the
        # customers on both sides, counted by code, then (customer, cents) as one integer for their orders only (ids
        # compared as text, and all 7M orders' pairs hashed, held 0.7 GiB at 1.4M customers: memray, 2026-12-04;
        # merge_asof of all 5M orders took 2.3 s of the 1M-customer demo's cleaning, 2026-12-02)
        shared = (np.bincount(customer[left] + 1, minlength=n_codes) > 0) & (np.bincount(customer[right] + 1, minlength=n_codes) > 0)
        left, right = left[shared[customer[left] + 1]], right[shared[customer[right] + 1]]
        both = np.concatenate([left, right])
        cents_code, cents_seen = pd.factorize(np.round(gross[by_date[both]] * 100).astype(np.int64))
        by = customer[both].astype(np.int64) * len(cents_seen) + cents_code
        by_left, by_right = by[: len(left)], by[len(left):]
        on_left, on_right = pd.Series(by_left).isin(by_right).to_numpy(), pd.Series(by_right).isin(by_left).to_numpy()
        left, by_left, right, by_right = left[on_left], by_left[on_left], right[on_right], by_right[on_right]
        if not len(left) or not len(right):
            continue
        match = pd.merge_asof(
            pd.DataFrame({"order_date": date[left], "by": by_left, "at": left}),
            pd.DataFrame({"order_date": date[right], "by": by_right, "ref": by_date[right]}),
            on="order_date", by="by", tolerance=tolerance, direction="nearest",
        ).dropna(subset=["ref"])
        ref, at = match["ref"].to_numpy(dtype=np.int64), match["at"].to_numpy(dtype=np.int64)
        # as Python strings: with Arrow-held text, an empty match's object column has no string type to join with
        reference = orders["source"].iloc[ref].astype(object).to_numpy() + " order " + _first_line_text(tx, orders, "order_id", ref).astype(object).to_numpy()
        duplicate_of.update(zip(orders.index.to_numpy()[by_date[at]].tolist(), reference))
        repeats[at] = True
    if duplicate_of:
        ledger.mark(tx["order_key"].isin(np.fromiter(duplicate_of, dtype=np.int64)) & ~tx["is_return"].astype(bool), "merged",
                    "cross_source_duplicate", lambda rows: "same order as " + tx.loc[rows, "order_key"].map(duplicate_of).fillna(""))


def _match_returns(tx, returns: pd.Series, sale_rows: pd.Series, orders: pd.DataFrame, keys: OrderKeys,
                   customer_code: np.ndarray) -> pd.Series:
    """The order key each return nets against (missing when none). ``customer_code``: each line's customer as a code (-1: none)."""
    matched = pd.Series(pd.NA, index=tx.index, dtype="Int64")
    if not returns.any() or orders.empty:
        return matched
    rets = tx[returns]
    # 1. an explicit reference to the original order, same source first, then the same customer anywhere
    ref = keys.references.reindex(rets.index).to_numpy()
    if (ref >= 0).any():
        has_ref = ref >= 0
        source_code = rets["order_key"].to_numpy() % keys.n_sources
        same_source = pd.Series(np.where(has_ref, ref.astype(np.int64) * keys.n_sources + source_code, -1), index=rets.index)
        hit = same_source.where(same_source.isin(orders.index.to_numpy()) & has_ref).astype("Int64")
        # the customer's order with that id in any source (the first in order of appearance): among the orders whose id is
        # referenced only (a MultiIndex of all 5M orders' customers and ids took 32 s at 1M customers, 2026-12-02)
        referenced = orders[np.isin(orders.index.to_numpy() // keys.n_sources, ref[has_ref])]
        # customers as their codes (an order's is its customer_id's, and a return here has a customer)
        by_customer = pd.Series(referenced.index, index=pd.MultiIndex.from_arrays([referenced["customer_code"].to_numpy(),
                                                                                  referenced.index // keys.n_sources]))
        by_customer = by_customer[~by_customer.index.duplicated()]
        lookup = pd.MultiIndex.from_arrays([customer_code[rets.index.to_numpy()], ref])
        hit = hit.fillna(pd.Series(by_customer.reindex(lookup).to_numpy(), index=rets.index).astype("Int64"))
        matched.loc[rets.index] = hit
    # 2. the customer's latest earlier sale line of the same product, 3. latest earlier order. The lines' customers and
    # products as integer codes (ids compared as text) and the sale lines as positions: copies and sorts of the 7M sale
    # lines' id strings took 20 s at 1M customers (2026-12-02)
    sale = np.flatnonzero((sale_rows & tx["order_key"].isin(orders.index.to_numpy())).to_numpy())
    order_date, order_key = tx["order_date"].to_numpy(), tx["order_key"].to_numpy()
    codes: dict[str, np.ndarray] = {"customer_id": customer_code}  # int32: key (int64) * n + code stays int64
    for by in (["customer_id", "product_id"], ["customer_id"]):
        todo = matched.loc[rets.index].isna()
        if "product_id" in by and rets["product_id"].isna().all():
            continue
        key = np.zeros(len(tx), dtype=np.int64)
        present = tx["order_date"].notna().to_numpy()
        for column in by:
            if column not in codes:
                codes[column] = pd.factorize(tx[column].astype("string"))[0].astype(np.int64)  # -1: missing
            key = key * (int(codes[column].max()) + 2) + codes[column]
            present &= codes[column] >= 0
        left_rows = rets.index[todo.to_numpy() & present[rets.index]].to_numpy()
        if not len(left_rows):
            continue
        right_rows = sale[present[sale]]
        left = pd.DataFrame({"index": left_rows, "order_date": order_date[left_rows], "key": key[left_rows]}).sort_values("order_date")
        right = pd.DataFrame({"order_date": order_date[right_rows], "order_key": order_key[right_rows], "key": key[right_rows]}).sort_values("order_date")
        found = pd.merge_asof(left, right, on="order_date", by="key", direction="backward").set_index("index")["order_key"]
        matched.loc[found.index] = matched.loc[found.index].fillna(found.astype("Int64"))
    return matched


# --------------------------------------------------------------------------- other tables


def clean_customers(customers: pd.DataFrame, paths: dict[str, object] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers: ids required and unique. A row identical to an earlier one is merged into it
    (``exact_duplicate``); a row that repeats an earlier row's id with other values is merged into
    the first row of the id (``duplicate_customer_id``; the detail names that row and the columns
    that differ, never their values). When more than MAX_DUPLICATE_ID_SHARE of a source's rows
    repeat an id that way the run stops: the table is not one row per customer. ``paths`` (source
    name -> file) names the file in that message."""
    customers = customers.reset_index(drop=True)
    ledger = _Ledger(customers.index)
    ledger.mark(customers["customer_id"].isna(), "rejected", "missing_customer_id")
    attributes = [c for c in customers.columns if c not in ("source", "row")]
    open_rows = customers[ledger.open]
    exact = open_rows.duplicated(attributes, keep="first")
    first_exact = open_rows.groupby(attributes, dropna=False, sort=False)["row"].transform("first")
    ledger.mark(exact.reindex(customers.index, fill_value=False), "merged", "exact_duplicate",
                ("identical to row " + first_exact.astype(str)).reindex(customers.index))
    open_rows = customers[ledger.open]
    again = open_rows.duplicated("customer_id", keep="first")
    if again.any():
        firsts = open_rows[~again].set_index("customer_id")
        repeats = open_rows[again]
        first = firsts.reindex(repeats["customer_id"]).set_axis(repeats.index)
        compared = [c for c in attributes if c != "customer_id"]
        differs = pd.DataFrame({c: ~((repeats[c] == first[c]).fillna(False) | (repeats[c].isna() & first[c].isna())) for c in compared},
                               index=repeats.index)
        detail = "same customer id as row " + first["row"].astype(int).astype(str) + differs.apply(
            lambda r: "; differs in " + ", ".join(r.index[r]) if r.any() else "", axis=1)
        ledger.mark(again.reindex(customers.index, fill_value=False), "merged", "duplicate_customer_id", detail.reindex(customers.index))
        _stop_when_not_one_row_per_customer(customers, again, first, paths or {})
    ledger.mark(ledger.open, "kept", "kept")
    kept = customers[ledger.has("kept")].drop(columns=["row"]).reset_index(drop=True)
    return kept, ledger.frame("customers", customers)


def _stop_when_not_one_row_per_customer(customers: pd.DataFrame, again: pd.Series, first: pd.DataFrame, paths: dict) -> None:
    with_id = customers[customers["customer_id"].notna()].groupby("source").size()
    repeated = customers.loc[again[again].index].groupby("source").size()
    for source, n in repeated.items():
        if n > MAX_DUPLICATE_ID_SHARE * with_id[source]:
            example = customers.loc[again[again].index].query("source == @source").iloc[0]
            where = paths.get(source, f"source {source!r}")
            raise TierbookError(
                f"{where}: {n:,} of {with_id[source]:,} rows repeat the customer id of an earlier row with other values (e.g. rows "
                f"{int(first.loc[example.name, 'row'])} and {int(example['row'])}), so the customers table is not one row per customer; "
                f"check the column mapped to customer_id under `columns` of source {source!r}, or export one row per customer")


def clean_survey(survey: pd.DataFrame, today: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Survey answers: a parseable date, at least one score, scores within their scales."""
    survey = survey.reset_index(drop=True)
    for column in ("nps", "csat"):
        if column not in survey:
            survey[column] = np.nan
    ledger = _Ledger(survey.index)
    ledger.mark(survey["response_date"].isna(), "rejected", "unparseable_date")
    ledger.mark(survey["response_date"] > pd.Timestamp(today), "rejected", "future_date")
    ledger.mark(survey["response_date"] < PLACEHOLDER_BEFORE, "rejected", "placeholder_date")
    ledger.mark(survey["nps"].isna() & survey["csat"].isna(), "rejected", "no_score")
    bad_nps = survey["nps"].notna() & ~survey["nps"].isin(range(0, 11))
    bad_csat = survey["csat"].notna() & ~survey["csat"].isin(range(1, 6))
    ledger.mark(bad_nps | bad_csat, "rejected", "score_out_of_range")
    columns = [c for c in survey.columns if c not in ("source", "row")]
    exact = survey[ledger.open].duplicated(columns, keep="first")
    ledger.mark(exact.reindex(survey.index, fill_value=False), "merged", "exact_duplicate")
    ledger.mark(ledger.open, "kept", "kept")
    kept = survey[ledger.has("kept")].drop(columns=["row"]).reset_index(drop=True)
    for column in ("nps", "csat"):
        kept[column] = kept[column].astype("Int64")
    return kept, ledger.frame("survey", survey)


def clean_experiment(experiment: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Experiment assignments: one variant per customer; customers in several variants are rejected."""
    experiment = experiment.reset_index(drop=True)
    ledger = _Ledger(experiment.index)
    ledger.mark(experiment["customer_id"].isna(), "rejected", "missing_customer_id")
    ledger.mark(experiment["variant"].isna(), "rejected", "missing_variant")
    open_rows = experiment[ledger.open]
    n_variants = open_rows.groupby("customer_id")["variant"].transform("nunique")
    ledger.mark((n_variants > 1).reindex(experiment.index, fill_value=False), "rejected", "several_variants")
    again = experiment[ledger.open].duplicated("customer_id", keep="first")
    ledger.mark(again.reindex(experiment.index, fill_value=False), "merged", "exact_duplicate")
    ledger.mark(ledger.open, "kept", "kept")
    kept = experiment[ledger.has("kept")].drop(columns=["row"]).reset_index(drop=True)
    return kept, ledger.frame("experiment", experiment)


# --------------------------------------------------------------------------- reconciliation


def reconcile(ledger: pd.DataFrame) -> pd.DataFrame:
    """Rows and amount totals per table and source: read = kept + merged + rejected."""
    # two groupbys of the columns they need (pivot tables, a copy of the ledger and a groupby-apply took 36 s on
    # the 9M-row ledger of 1M customers, 2026-12-02); the sums add the same rows in the same order as before
    amount = ledger["amount"].astype(float)
    frame = pd.DataFrame({"table": ledger["table"], "source": ledger["source"], "status": ledger["status"],
                          "amount": amount.fillna(0.0), "has_amount": amount.notna()})
    per_status = frame.groupby(["table", "source", "status"], observed=True).agg(rows=("amount", "size"), amount=("amount", "sum"))
    per_source = frame.groupby(["table", "source"], observed=True).agg(rows=("amount", "size"), amount=("amount", "sum"),
                                                                       has_amount=("has_amount", "any"))
    rows = per_status["rows"].unstack("status", fill_value=0)
    amounts = per_status["amount"].unstack("status", fill_value=0.0)
    out = pd.DataFrame(index=per_source.index)
    out["rows_read"] = per_source["rows"]
    for status in ("kept", "merged", "rejected"):
        out[f"rows_{status}"] = rows[status] if status in rows else 0
    out["amount_read"] = per_source["amount"]
    for status in ("kept", "merged", "rejected"):
        out[f"amount_{status}"] = amounts[status] if status in amounts else 0.0
    out["balanced"] = (
        (out["rows_read"] == out["rows_kept"] + out["rows_merged"] + out["rows_rejected"])
        & ((out["amount_read"] - out["amount_kept"] - out["amount_merged"] - out["amount_rejected"]).abs() < 0.005)
    )
    # tables without amounts (customers, survey, experiment) show no amount columns' values
    out.loc[~per_source["has_amount"], [c for c in out.columns if c.startswith("amount_")]] = np.nan
    out = out.reset_index()
    out["table"], out["source"] = as_text(out["table"]), as_text(out["source"])
    return out


def check_reconciliation(recon: pd.DataFrame, orders: pd.DataFrame, ledger: pd.DataFrame, rows_read: dict[str, int]) -> None:
    """Fail the run when anything does not balance: rows per source against the files, rows and
    amounts per status, and the clean orders' net total against kept sales + netted returns."""
    for _, rec in recon.iterrows():
        if rows_read.get(rec["source"]) != rec["rows_read"]:
            raise TierbookError(f"reconciliation: source {rec['source']!r} has {rows_read.get(rec['source'])} rows in the file but {rec['rows_read']} in the ledger")
        if not rec["balanced"]:
            raise TierbookError(f"reconciliation: source {rec['source']!r} does not balance (read != kept + merged + rejected)")
    is_tx = (ledger["table"] == "transactions").to_numpy(dtype=bool)  # masks, not a copy of the 7M transaction rows
    amount = ledger["amount"]
    kept, netted = (ledger["status"] == "kept").to_numpy(dtype=bool), (ledger["reason"] == "return_netted").to_numpy(dtype=bool)
    expected = amount[is_tx & kept].sum() + amount[is_tx & netted].sum()
    if abs(orders["net_amount"].sum() - expected) > 0.01:
        raise TierbookError(f"reconciliation: clean orders total {orders['net_amount'].sum():,.2f} != kept sales + netted returns {expected:,.2f}")
