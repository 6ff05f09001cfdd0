"""The per-customer summary every section builds on (RFM, CLV, churn): one function, one table.

``customer_summary(orders, as_of)`` returns one row per customer with a purchase before ``as_of``:

* RFM columns: ``recency_days`` is the number of days from the last purchase day to ``as_of``
  (the RFM sense: 1 = bought the day before as_of), ``purchase_occasions``, ``monetary_total``
  (net spend), ``monetary_mean``, ``first_purchase``, ``last_purchase``, ``tenure_days``.
* CLV columns in the convention of lifetimes and PyMC-Marketing, in ``time_unit``:
  ``frequency`` (repeat purchase occasions), ``recency`` (t_x: **first to last** purchase, the
  BTYD sense, not days since the last purchase), ``T`` (first purchase to the end of the
  observation period, the day before as_of: lifetimes' ``observation_period_end``, inclusive) and
  ``monetary_value`` (mean value of the repeat occasions, 0 when there is none).

A purchase occasion is a calendar day with orders (``occasion="day"``, the BTYD convention: same-day
orders merge into one occasion worth their sum) or each order (``occasion="order"``).

Amounts are summed as integers (int64 ten-thousandths of the currency unit, ``to_amount_units``) and
each sum divided once: the sums are then the doubles nearest the exact decimal sums, whatever the order
of the additions, so DuckDB and Spark (``tierbook.engine``) give the same bits as numpy.

Speed: one sort of integer (customer, day) keys and ``np.add.reduceat`` over it instead of a pandas
groupby; the figures are in ``bench/summary_time.py`` (``make bench``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from .errors import TierbookError

DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Q": 365.25 / 4}
NS_PER_DAY = 86_400_000_000_000
# Amounts are summed in int64 units of 1/10,000 of the currency (exact up to 9.2e14 per sum, the double
# of a sum exact up to 9e11). Cents would round line amounts with finer prices (Online Retail has unit
# prices of 0.001); a float sum would depend on the order of the additions, which no two engines share.
AMOUNT_SCALE = 10_000
COLUMNS = ["customer_id", "first_purchase", "last_purchase", "recency_days", "purchase_occasions", "monetary_total",
           "monetary_mean", "tenure_days", "frequency", "recency", "T", "monetary_value"]


def _sorted_codes(codes: np.ndarray, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber factorize codes so that they follow the sorted customer ids (sorting the 1M
    uniques is far cheaper than ``factorize(sort=True)`` on 10M rows)."""
    if len(uniques) < 2 or bool((uniques[1:] > uniques[:-1]).all()):
        return codes, uniques  # already sorted (the data stage's sorted categories): no argsort of 1M strings
    order = np.argsort(uniques, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes], uniques[order]


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` by sorting. numpy 2.4's np.unique of integers without counts takes a
    hash-table path that is 25x slower here: 13M int64 in 25 s against 1 s sorted (2026-12-02)."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def same_ids(a, b, unique: bool = False) -> bool:
    """Whether two lists of customer ids are the same, in the same order (``unique``: and strictly
    increasing, so repeat-free, as a merge needs to give one row each): then their rows go side by side,
    without the hashing of 1M ids that a merge or a reindex does."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return len(a) == len(b) and bool(np.array_equal(a, b)) and (not unique or bool(np.all(a[1:] > a[:-1])))


def known_unique(index: pd.Index) -> bool:
    """``index.is_unique``, from one pass over the labels when they are strictly increasing (customer ids sorted, as the
    clean files and the summaries hold them): pandas' index engine then records them as unique without hashing every
    label (1.4M ids: 0.07 s against 0.6-0.7 s, 2026-12-04). Other indexes are hashed as before."""
    index.is_monotonic_increasing  # noqa: B018 - the engine notes a strictly increasing index as unique
    return bool(index.is_unique)


def categorical_of_ids(codes: np.ndarray, ids) -> pd.Categorical:
    """``pd.Categorical.from_codes(codes, categories=ids)`` for customer ids that are sorted (the clean files' categories):
    pandas checks that categories are distinct by hashing them, which ``known_unique`` spares (1.4M ids: 0.61 s ->
    0.12 s, 2026-12-04). Unsorted ids are checked the usual way."""
    categories = ids if isinstance(ids, pd.Index) and ids.dtype == object else pd.Index(ids, dtype=object)
    known_unique(categories)
    return pd.Categorical.from_codes(codes, categories=categories)


def customer_codes(ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of customer ids that follow the ids' order as text, and the ids as text
    (``ids[codes]`` gives each row's id): grouping and sorting by the codes gives the order of
    ``ids.astype(str)`` without hashing or sorting millions of strings. The data stage stores ids
    dictionary-encoded with sorted categories, whose codes are used as they are (unobserved
    categories keep their code). No missing ids (clean tables have none)."""
    if isinstance(ids.dtype, pd.CategoricalDtype):
        codes = ids.cat.codes.to_numpy().astype(np.int64)
        return _sorted_codes(codes, np.asarray(ids.cat.categories.astype(str), dtype=object))
    codes, uniques = pd.factorize(ids if isinstance(ids.dtype, pd.StringDtype) else ids.astype(str))  # Arrow strings: hashed in C++
    codes = codes.astype(np.int64)
    if isinstance(ids.dtype, pd.StringDtype) and ids.dtype.storage == "pyarrow" and len(uniques) > 1:
        # the uniques sorted by Arrow (UTF-8 bytes, i.e. code points: the order of Python's str); Python objects sorted
        # in numpy took 10 s for 1M ids (2026-12-02)
        import pyarrow as pa
        import pyarrow.compute as pc

        order = pc.sort_indices(pa.array(uniques)).to_numpy()
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[codes], np.asarray(uniques.take(order), dtype=object)
    return _sorted_codes(codes, np.asarray(uniques, dtype=object))


def line_codes(values: pd.Series):
    """Integer codes (int32) of ids that may be missing (-1), following the ids' order as text, and the ids by code as an
    Arrow array (sorted as ``customer_codes`` sorts them: by UTF-8 bytes, i.e. by code point): Arrow's hash of the text,
    which lets go of Python's lock. ``codes_at`` restricts them to some rows (the kept lines of the data stage) and makes
    those rows' ids Python strings (1M of them held 70 MB more through the 1M-customer demo's cleaning, 2026-12-03)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        values = values.astype(pd.StringDtype("pyarrow"))
    encoded = pc.dictionary_encode(pa.chunked_array(pa.array(values.array)))  # every chunk indexes the one dictionary
    dictionary = encoded.chunk(0).dictionary if encoded.num_chunks else pa.array([], type=pa.string())
    order = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order) + 1, dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    rank[-1] = -1  # a missing id's
    # a chunk at a time into the codes (whole, the indices, their copy without nulls and their concatenation are 90 MB
    # more at 1M customers)
    codes = np.empty(len(values), dtype=np.int32)
    start = 0
    for chunk in encoded.chunks:
        codes[start: start + len(chunk)] = rank[chunk.indices.fill_null(-1).to_numpy()]
        start += len(chunk)
    return codes, dictionary.take(order)


def used_codes(codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Of ``n`` codes, those ``codes`` use (no -1 among them), in order, and ``rank``: each code's number among them
    (-1 for one not used). ``rank[codes]`` are the codes renumbered, ``ids.take(used)`` the ids they index."""
    used = np.flatnonzero(np.bincount(codes, minlength=n))
    rank = np.full(n, -1, dtype=np.int32)
    rank[used] = np.arange(len(used), dtype=np.int32)
    return used, rank


def codes_at(codes: np.ndarray, ids, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``line_codes``' codes and ids restricted to ``rows`` (which have an id): the codes of those rows among the ids
    they use (int32), those ids (Python strings), and ``rank``, each former code's new one (-1 for an id these rows do
    not use), to map other codes of the same ids with."""
    mine = codes[rows]
    used, rank = used_codes(mine, len(ids))
    taken = ids.take(used)
    return rank[mine], np.asarray(taken.to_numpy(zero_copy_only=False) if hasattr(taken, "to_numpy") else taken, dtype=object), rank


def first_positions(keys: pd.Series, ids: pd.Series) -> np.ndarray | None:
    """Per key: the position of its first occurrence among ``ids``, -1 when it is not there or is
    missing; None unless the keys are text or missing and the ids text (then the equality of text
    is Python's, and pyarrow's ``index_in`` finds them: 1M ids among 1M in 0.3 s CPU, 2026-12-02)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    key_values, id_values = keys.to_numpy(dtype=object, na_value=None), ids.to_numpy(dtype=object, na_value=None)
    if ids.isna().any() or pd.api.types.infer_dtype(id_values, skipna=False) not in ("string", "empty"):
        return None
    if pd.api.types.infer_dtype(key_values, skipna=True) not in ("string", "empty"):
        return None
    found = pc.index_in(pa.array(key_values, type=pa.large_string()), value_set=pa.array(id_values, type=pa.large_string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def purchase_days(orders: pd.DataFrame, at: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (customer, purchase day) before ``at``, sorted by customer id as text, then day:
    each pair's customer code, its day (days since the epoch), and the ids by code (``ids[code]``).

    One integer per pair sorted with numpy: no customer id is hashed or sorted as a string (5.1M
    orders of 1M customers: about 20 s a call as strings, under 1 s so). The profile's lifecycle, cadence and
    weekday tags and churn's purchase gaps start from it."""
    before = orders[orders["order_date"] < at]
    codes, ids = customer_codes(before["customer_id"])
    day = before["order_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    if not len(day):
        return codes, day, ids
    low = day.min()
    span = int(day.max() - low) + 1
    code, offset = np.divmod(unique_sorted(codes * span + (day - low)), span)
    return code, offset + low, ids


class _IntegerIds:
    """Integer customer ids as codes offset by the smallest id: ``ids[codes]`` gives the ids back
    (as Python ints in an object array, as the factorized ids were)."""

    def __init__(self, lowest):
        self.lowest = lowest

    def __getitem__(self, codes):
        return (codes + self.lowest).astype(object)


def to_amount_units(amount: np.ndarray) -> np.ndarray:
    """Amounts as int64 ten-thousandths: floor(x * 10,000 + 0.5), the same two IEEE operations that
    ``tierbook.engine`` has DuckDB and Spark do (a tie-free rounding for amounts of at most 4 decimals)."""
    units = np.asarray(amount, dtype=np.float64) * float(AMOUNT_SCALE)
    units += 0.5
    return np.floor(units, out=units).astype(np.int64)


def default_as_of(orders: pd.DataFrame) -> pd.Timestamp:
    """The day after the last order."""
    return orders["order_date"].max().normalize() + pd.Timedelta(days=1)


def customer_summary(orders: pd.DataFrame, as_of: pd.Timestamp | str | None = None, *,
                     occasion: Literal["day", "order"] = "day", time_unit: Literal["D", "W", "M", "Q"] = "W") -> pd.DataFrame:
    """One row per customer from the clean orders (``customer_id``, ``order_date``, ``net_amount``,
    and ``source``/``order_id`` for ``occasion="order"``); only orders before ``as_of`` count."""
    as_of = default_as_of(orders) if as_of is None else pd.Timestamp(as_of).normalize()
    dates = orders["order_date"].to_numpy(dtype="datetime64[ns]")
    before = dates < as_of.to_datetime64()
    if not before.any():
        period = f"{orders['order_date'].min():%Y-%m-%d} to {orders['order_date'].max():%Y-%m-%d}" if len(orders) else "no orders"
        raise TierbookError(f"no order is before as_of {as_of:%Y-%m-%d} (data period {period}); set rfm.as_of to a later date")
    ids = orders["customer_id"]
    all_before = bool(before.all())
    raw = ids.to_numpy() if not isinstance(ids.dtype, pd.CategoricalDtype) else None
    if raw is not None and raw.dtype.kind in "iu" and len(raw) and int(raw.max()) - int(raw.min()) < 2**40:
        # integer ids are their own codes: no hashing (pd.factorize took 0.17-0.37 s on 5.4M orders)
        lowest = raw.min()
        codes = (raw if all_before else raw[before]) - lowest
        customers = _IntegerIds(lowest)
    elif isinstance(ids.dtype, pd.CategoricalDtype):
        # the data stage stores ids dictionary-encoded: the codes are free (hashing 10M strings costs ~3 s)
        codes = ids.cat.codes.to_numpy()
        codes, customers = _sorted_codes(codes if all_before else codes[before], np.asarray(ids.cat.categories, dtype=object))
    else:
        codes, customers = pd.factorize(ids if all_before else ids[before])  # unsorted: hashing only
        codes, customers = _sorted_codes(codes, np.asarray(customers, dtype=object))
    # whole days since 1970 by integer division (3x faster than astype("datetime64[D]"))
    day = (dates if all_before else dates[before]).view(np.int64) // NS_PER_DAY
    amount = to_amount_units(orders["net_amount"].to_numpy(dtype=float))
    amount = amount if all_before else amount[before]

    # one sort by (customer, day[, order]); occasions are runs of equal keys
    if occasion == "day":
        # one int64 key (customer, day), built and sorted in place: occasions are runs of equal keys
        # and the key itself gives back customer and day at their starts (no gather of either)
        lowest_day = int(day.min())
        span = int(day.max()) - lowest_day + 1
        key = codes.astype(np.int64)
        key *= span
        key += day - lowest_day
        row_bits = max(int(len(key)).bit_length(), 1)
        if (int(key.max()) + 1) < 2 ** (63 - row_bits):
            # the row number packed into the low bits: np.sort of one int64 array is 2x faster than np.argsort (52 vs 115 ms on 5.4M)
            key <<= row_bits
            key |= np.arange(len(key))
            key.sort()
            order = key & ((1 << row_bits) - 1)
            key >>= row_bits
        else:
            order = np.argsort(key)
            key = key[order]
        a = amount[order]
        new_occasion = np.empty(len(key), dtype=bool)
        new_occasion[0] = True
        np.not_equal(key[1:], key[:-1], out=new_occasion[1:])
        starts = np.flatnonzero(new_occasion)
        occ_customer, occ_day = np.divmod(key[starts], span)
        occ_day += lowest_day
    else:
        order_key = pd.factorize((orders["source"].astype(str) + "\x1f" + orders["order_id"].astype(str)).to_numpy()[before])[0]
        order = np.lexsort((order_key, day, codes))
        c, d, a, k = codes[order], day[order], amount[order], order_key[order]
        starts = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (k[1:] != k[:-1])])
        occ_customer, occ_day = c[starts], d[starts]
    occ_value = np.add.reduceat(a, starts)

    first_of_customer = np.r_[True, occ_customer[1:] != occ_customer[:-1]]
    cust_starts = np.flatnonzero(first_of_customer)
    n_occasions = np.diff(np.r_[cust_starts, len(occ_customer)])
    total = np.add.reduceat(occ_value, cust_starts)
    first_day = occ_day[cust_starts]
    last_day = occ_day[np.r_[cust_starts[1:], len(occ_day)] - 1]
    first_value = occ_value[cust_starts]
    frequency = n_occasions - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary_value = np.where(frequency > 0, ((total - first_value) / AMOUNT_SCALE) / np.maximum(frequency, 1), 0.0)
    total = total / AMOUNT_SCALE  # integer sums divided once

    as_of_day = np.int64(as_of.to_datetime64().astype("datetime64[D]").astype(np.int64))
    unit = DAYS_PER_UNIT[time_unit]
    summary = pd.DataFrame({
        "customer_id": customers[occ_customer[cust_starts]],
        "first_purchase": (first_day * NS_PER_DAY).view("datetime64[ns]"),
        "last_purchase": (last_day * NS_PER_DAY).view("datetime64[ns]"),
        "recency_days": (as_of_day - last_day).astype(np.int64),
        "purchase_occasions": n_occasions.astype(np.int64),
        "monetary_total": total,
        "monetary_mean": total / n_occasions,
        "tenure_days": (as_of_day - first_day).astype(np.int64),
        "frequency": frequency.astype(np.int64),
        "recency": (last_day - first_day) / unit,
        "T": (as_of_day - 1 - first_day) / unit,
        "monetary_value": monetary_value,
    }, copy=False)  # fresh arrays, already in COLUMNS' order: no copy into blocks (120 ms of 0.4 s on 1M customers)
    summary.attrs.update({"as_of": as_of.date().isoformat(), "time_unit": time_unit, "occasion": occasion})
    return summary
