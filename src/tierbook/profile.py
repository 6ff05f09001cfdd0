"""The profile section (客户画像与标签): who the customers of each tier and segment are.

Reads the run's clean orders and sale lines, the customers table (when declared) and the
customer scores; computes each customer's lifecycle stage, attribute and behaviour tags
(``tierbook.tags``), profile cards per tier and segment, TGI tables, the mix of tiers by region
and channel, the category mix by tier, and the over-segmentation guard. Writes
``customer_tags.csv`` (UTF-8 with BOM: ``customer_id, tag_group, tag``), the main tags of each customer
(``data/profile_scores.parquet``, which ``export_scores`` joins into ``customer_scores`` and the CRM
files once every section is done), and ``tables/profile_*.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import i18n
from . import tags as T
from .churn import churn_days as churn_rule
from .crm import write_csv, write_customer_scores
from .data import read_clean
from .errors import TierbookError
from .i18n import _
from .memory import give_back_memory, heap_kept
from .params import Params
from .summary import customer_codes, default_as_of, known_unique, purchase_days, same_ids
from .tiers import reindex_sorted

ATTRIBUTE_COLUMNS = ["region", "city", "gender", "age_band", "signup_channel", "member_tier", "industry", "company_size_band"]
BEHAVIOUR_COLUMNS = ["favourite_category", "channel_preference", "purchase_cadence", "discount_sensitivity", "weekday_weekend",
                     "return_behaviour"]
CRM_COLUMNS = ["lifecycle_stage", *BEHAVIOUR_COLUMNS]
FALLBACK_CHURN_DAYS = 365
# the columns of the clean tables the section reads (a column a table lacks is left out): reading all of
# them held about 3 GiB for the 1M-customer demo before any work (order ids, products, stores as text)
ORDER_COLUMNS = ["customer_id", "order_date", "channel", "gross_amount", "returned_amount"]
LINE_COLUMNS = ["customer_id", "order_date", "amount", "category", "discount", "cost", "margin", "region"]
OPTIONAL_LINE_COLUMNS = ("category", "discount", "cost", "margin", "region")  # each used only when it has a value
SCORE_COLUMNS = ["customer_id", "tier", "segment_zh", "named_segment", "monetary_total"]
PROFILE_SCORES = "profile_scores.parquet"  # in the run's data/: customer_id and CRM_COLUMNS, for export_scores


@dataclass
class ProfileStage:
    as_of: pd.Timestamp
    base_date: pd.Timestamp
    churn_days: int
    churn_note: str
    customers: pd.DataFrame  # one row per customer: ids, tier, segments, lifecycle_stage, tags, revenue, profit, cadence, tenure
    attributes: list[str]  # attribute tag groups present
    behaviour: list[str]  # behaviour tag groups present
    coded: T.CodedTags  # every customer's tags as codes (``tags`` is their long table)
    stages: pd.DataFrame  # per lifecycle stage: customers, revenue and their shares
    flow: pd.DataFrame | None  # lifecycle stage at base_date (rows) x now (columns)
    tgi: dict[str, pd.DataFrame]  # grouping (tier, segment, lifecycle) -> tgi table
    cards: dict[str, pd.DataFrame]  # grouping (tier, segment) -> one card per group
    mix: dict[str, pd.DataFrame] = field(default_factory=dict)  # "tier x region" ... -> customers per cell
    category_mix: pd.DataFrame | None = None  # tier x category: share of the tier's sale-line revenue
    small_groups: pd.DataFrame | None = None  # kind, group, customers
    merged: dict[str, str] = field(default_factory=dict)
    tier_order: list[str] = field(default_factory=list)
    segment_order: list[str] = field(default_factory=list)
    has_profit: bool = False
    notes: list[str] = field(default_factory=list)
    tag_counts: pd.DataFrame | None = None  # per tag group: customers and distinct tags (CodedTags.counts)

    @cached_property
    def tags(self) -> pd.DataFrame:
        """The long table ``customer_id, tag_group, tag``, made when asked for: the section counts and writes the tags
        from their codes, and the 13M rows of 1M customers took 1.5-2 s and 0.4 GiB to make (2026-12-02)."""
        return self.coded.frame()

    @property
    def groupings(self) -> dict[str, str]:
        return {"tier": "tier", "segment": "segment_zh", "lifecycle": "lifecycle_stage"}


# --------------------------------------------------------------------------- inputs


def attribute_table(members: pd.DataFrame | None, lines: pd.DataFrame, as_of: pd.Timestamp, params: Params) -> pd.DataFrame:
    """Profile attributes per customer (index customer_id): the customers table's non-PII columns,
    numeric ones banded, and the transactions' most frequent region when the table has none."""
    p = params.profile
    out = pd.DataFrame(index=pd.Index([], name="customer_id"))
    if members is not None and len(members):
        m = members.assign(customer_id=members["customer_id"].astype(str)).drop_duplicates("customer_id").set_index("customer_id")
        out = pd.DataFrame(index=m.index)
        for column in ("region", "city", "gender", "signup_channel", "member_tier", "industry"):
            if column in m:
                out[column] = m[column]
        if "age" in m:
            out["age_band"] = T.band(m["age"], p.bands.age)
        elif "birth_date" in m:
            born = pd.to_datetime(m["birth_date"])
            age = (as_of - born).dt.days / 365.25
            out["age_band"] = T.band(age.where((age >= 0) & (age < 120)), p.bands.age)
        if "company_size" in m:
            out["company_size_band"] = T.band(m["company_size"], p.bands.company_size)
        extras = [c for c in m.columns if c not in out and c not in ("source", "customer_id", "signup_date", "birth_date", "age", "company_size")]
        for column in extras:
            out[column] = m[column]
    if ("region" not in out or out["region"].isna().all()) and "region" in lines and lines["region"].notna().any():
        known = lines[lines["region"].notna()]
        counts = known.groupby([known["customer_id"].astype(str), known["region"].astype(str)]).size().rename("n").reset_index()
        top = counts.sort_values(["customer_id", "n", "region"], ascending=[True, False, True]).drop_duplicates("customer_id")
        out = out.join(top.set_index("customer_id")["region"].rename("region"), how="outer") if len(out.columns) else top.set_index("customer_id")[["region"]]
    if p.attributes != "auto":
        unknown = [a for a in p.attributes if a not in out]
        if unknown:
            raise TierbookError(f"profile.attributes lists {unknown[0]!r}, which the data does not have; available: {', '.join(out.columns) or 'none'}")
        out = out[list(p.attributes)]
    return pd.DataFrame({c: _objects(out[c]) for c in out.columns}, index=out.index)


def _as_objects(values: pd.Series) -> np.ndarray:
    """``values.to_numpy()``, the same values, but Arrow text through its distinct values: a Python string per distinct
    value, not per row."""
    if isinstance(values.dtype, pd.StringDtype):
        codes, uniques = pd.factorize(values)
        return np.append(np.asarray(uniques, dtype=object), values.dtype.na_value)[codes]  # code -1 (missing) picks the last
    return values.to_numpy()


def _objects(values: pd.Series) -> np.ndarray:
    """``values.astype(object).where(values.notna(), None)``; a text column through its distinct
    values, so that 1M customers' regions are a handful of Python strings, not 1M."""
    if isinstance(values.dtype, pd.StringDtype):
        codes, uniques = pd.factorize(values)
        return np.append(np.asarray(uniques, dtype=object), None)[codes]  # code -1 (missing) picks the None
    return values.astype(object).where(values.notna(), None).to_numpy()


def behaviour_table(orders: pd.DataFrame, lines: pd.DataFrame, as_of: pd.Timestamp, params: Params, *,
                    bought: tuple | None = None) -> pd.DataFrame:
    """Behaviour tags per customer (index customer_id), and the numbers behind them. ``bought``:
    ``purchase_days(orders, as_of.normalize())`` when the caller has it."""
    return _behaviour(order_behaviour(orders, as_of, params, bought=bought), line_behaviour(lines, as_of, params))


def order_behaviour(orders: pd.DataFrame, as_of: pd.Timestamp, params: Params, *, bought: tuple | None = None) -> dict[str, pd.DataFrame]:
    """The behaviour tags of ``behaviour_table`` that come from the orders, by name (``_behaviour`` puts them together
    with ``line_behaviour``'s): the stage lets go of the orders before it reads the sale lines."""
    rules = params.profile.tags
    orders = T.rows_where(orders, orders["order_date"] < as_of)
    bought = bought if bought is not None else purchase_days(orders, as_of.normalize())
    parts = {"channel": T.channel_preference(orders).to_frame(),
             "cadence": T.purchase_cadence(None, as_of, rules.cadence_days, bought=bought).set_index("customer_id"),
             "weekday": T.weekday_weekend(None, as_of, rules.weekend_share, bought=bought).set_index("customer_id")}
    if (orders["returned_amount"] < 0).any():
        parts["returns"] = T.return_behaviour(orders, rules.high_return_share).set_index("customer_id")
    return parts


def line_behaviour(lines: pd.DataFrame, as_of: pd.Timestamp, params: Params) -> dict[str, pd.DataFrame]:
    """The behaviour tags of ``behaviour_table`` that come from the sale lines, by name."""
    rules = params.profile.tags
    lines = T.rows_where(lines, lines["order_date"] < as_of)
    parts = {}
    if "category" in lines and lines["category"].notna().any():
        parts["category"] = T.favourite_category(lines).set_index("customer_id").rename(columns={"share": "favourite_category_share"})
    if "discount" in lines and pd.to_numeric(lines["discount"], errors="coerce").notna().any():
        parts["discount"] = T.discount_sensitivity(lines, rules.discount_share).set_index("customer_id")
    return parts


def _behaviour(from_orders: dict[str, pd.DataFrame], from_lines: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The behaviour table of the parts, its columns in one order whichever of them there are."""
    parts = {**from_orders, **from_lines}
    out = pd.concat([parts[name] for name in ("channel", "cadence", "weekday", "category", "discount", "returns") if name in parts], axis=1)
    out.index.name = "customer_id"
    return out


def profit_per_customer(lines: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series | None:
    """Gross profit of each customer's sale lines (amount - cost, or the margin column); None when
    neither is mapped. Returns are not deducted (they are netted per order, not per line)."""
    lines = T.rows_where(lines, lines["order_date"] < as_of)
    if "cost" in lines and pd.to_numeric(lines["cost"], errors="coerce").notna().any():
        profit = lines["amount"] - pd.to_numeric(lines["cost"], errors="coerce")
    elif "margin" in lines and pd.to_numeric(lines["margin"], errors="coerce").notna().any():
        profit = pd.to_numeric(lines["margin"], errors="coerce")
    else:
        return None
    return _per_customer_sum(profit, lines["customer_id"], min_count=1).rename("profit")


def _per_customer_sum(values: pd.Series, customer_id: pd.Series, **kwargs) -> pd.Series:
    """Sum per customer (index: the ids as text, sorted), grouped by integer codes rather than by id strings."""
    codes, ids = customer_codes(customer_id)
    out = T.sums_by_key(pd.Series(values.to_numpy(), dtype=values.dtype), codes, len(ids), **kwargs)
    return out.set_axis(pd.Index(ids[out.index.to_numpy()], name="customer_id"))


# --------------------------------------------------------------------------- tables


def stage_table(customers: pd.DataFrame) -> pd.DataFrame:
    """Customers and net revenue per lifecycle stage, with shares."""
    out = customers.groupby("lifecycle_stage", observed=False).agg(customers=("customer_id", "size"), revenue=("revenue", "sum"))
    out = out.reindex(list(T.STAGES)).fillna(0).astype({"customers": int})
    out["customer_share"] = out["customers"] / max(out["customers"].sum(), 1)
    out["revenue_share"] = out["revenue"] / out["revenue"].sum() if out["revenue"].sum() else 0.0
    return out.rename_axis("stage").reset_index()


def _top(values: pd.Series) -> str:
    counts = values.dropna().astype(str).value_counts()
    if counts.empty:
        return ""
    return f"{counts.index[0]} {counts.iloc[0] / counts.sum():.0%}"


def profile_cards(customers: pd.DataFrame, by: str, order: list[str], tags: list[str], has_profit: bool) -> pd.DataFrame:
    """One card per group: customers, shares of customers, revenue and profit, the most common value
    of each tag (with its share inside the group), median cadence and tenure in days."""
    total_rev = customers["revenue"].sum()
    total_profit = customers["profit"].sum() if has_profit else np.nan
    n_customers = len(customers)
    # each group's rows found from the codes of the grouping column, and each tag's most common value counted from its codes
    # (T.tag_codes: the texts of the values, as _top counts them): the object comparisons, the filtered 25-column table and
    # 55 value_counts of text per call took about 2 s at 1M customers (2026-12-02)
    group_code, group_names = pd.factorize(customers[by].to_numpy())
    numbers = ["revenue", *(["profit", "gross"] if has_profit else []), "cadence_days", "tenure_days"]
    tag_codes = {tag: T.tag_codes(customers[tag]) for tag in tags}
    rows = []
    for group in order:
        at = np.flatnonzero(np.asarray(group_names, dtype=object) == group) if isinstance(group, str) else []
        if not len(at):  # (a group that is not text, or not there: compared as before)
            rows_of = np.flatnonzero((customers[by] == group).to_numpy())
        else:
            rows_of = np.flatnonzero(group_code == at[0])
        if not len(rows_of):
            continue
        g = {c: customers[c].take(rows_of) for c in numbers}  # the group's rows, in order: the same sums and medians
        row = {"group": group, "customers": len(rows_of), "customer_share": len(rows_of) / n_customers,
               "revenue_share": g["revenue"].sum() / total_rev if total_rev else np.nan}
        if has_profit:
            row["profit_share"] = g["profit"].sum() / total_profit if total_profit else np.nan
            row["margin"] = g["profit"].sum() / g["gross"].sum() if g["gross"].sum() else np.nan
        for tag in tags:
            row[tag] = _top_of_codes(*tag_codes[tag], rows_of, lambda tag=tag: customers[tag].iloc[rows_of])
        row["median_cadence_days"] = g["cadence_days"].median()
        row["median_tenure_days"] = g["tenure_days"].median()
        rows.append(row)
    return pd.DataFrame(rows)


def _top_of_codes(codes: np.ndarray, texts: np.ndarray, rows: np.ndarray, values) -> str:
    """``_top`` of the rows ``rows`` of a tag column from its ``T.tag_codes``; ``values()`` (the rows' values) is counted by
    ``_top`` itself when two values share the largest count (value_counts then decides which it lists first)."""
    picked = codes[rows]
    counts = np.bincount(picked[picked >= 0], minlength=len(texts))
    total = int(counts.sum())
    if not total:
        return ""
    largest = counts.max()
    if np.count_nonzero(counts == largest) > 1:
        return _top(values())
    return f"{texts[int(counts.argmax())]} {counts.max() / counts.sum():.0%}"


def group_mix(customers: pd.DataFrame, rows: str, columns: str, column_order: list[str]) -> pd.DataFrame:
    """Customers per (rows value, group): a crosstab with the groups as columns in their order."""
    table = pd.crosstab(customers[rows].fillna("unknown").astype(str), customers[columns])
    table = table.reindex(columns=[c for c in column_order if c in table.columns])
    return table.loc[table.sum(axis=1).sort_values(ascending=False).index]


def category_mix(lines: pd.DataFrame, tiers: pd.Series, order: list[str], as_of: pd.Timestamp) -> pd.DataFrame | None:
    """Share of each tier's sale-line revenue per category (rows tiers, columns categories)."""
    return category_mix_of(category_lines(lines, as_of), tiers, order)


@dataclass
class CategoryLines:
    """What ``category_mix`` needs of the sale lines before as_of that have a category, in line order: each line's
    customer code (``ids[code]``), category code (``categories[code]``) and amount. The profile stage keeps these
    three arrays instead of the lines until it has read the customers' tiers (``category_mix_of``)."""

    codes: np.ndarray
    ids: np.ndarray
    category: np.ndarray
    categories: np.ndarray
    amount: np.ndarray


def category_lines(lines: pd.DataFrame, as_of: pd.Timestamp) -> CategoryLines | None:
    """The lines' part of ``category_mix``; None when no line has a category."""
    if "category" not in lines or lines["category"].isna().all():
        return None
    lines = T.rows_where(lines, (lines["order_date"] < as_of) & lines["category"].notna(), ["customer_id", "category", "amount"])
    codes, ids = customer_codes(lines["customer_id"])
    category, categories = T.text_codes(lines["category"])
    return CategoryLines(codes, ids, category, np.asarray(categories, dtype=object), lines["amount"].to_numpy(float))


def category_mix_of(parts: CategoryLines | None, tiers: pd.Series, order: list[str]) -> pd.DataFrame | None:
    """``category_mix`` of ``category_lines``' arrays and the customers' tiers (index: customer ids)."""
    if parts is None:
        return None
    codes, ids, category, categories = parts.codes, parts.ids, parts.category, parts.categories
    tier_of = pd.Series(tiers.to_numpy(), index=tiers.index.astype(str))
    if not known_unique(tier_of.index):  # the summary's customers are sorted and distinct: no hash of 1.4M ids to check
        tier_of = tier_of[~tier_of.index.duplicated()]
    tier_of = reindex_sorted(tier_of, ids).to_numpy()  # a tier per customer code, not a lookup per line
    tier_code, tier_names = pd.factorize(tier_of)  # per customer code; -1 = no tier
    line_tier = tier_code[codes]
    has_tier = line_tier >= 0
    # revenue per (tier, category) summed by an integer key in line order (as pivot_table's groupby sums), names sorted as it sorts them
    sums = T.sums_by_key(pd.Series(parts.amount[has_tier]), line_tier[has_tier] * len(categories) + category[has_tier],
                         len(tier_names) * len(categories))
    t, c = np.divmod(sums.index.to_numpy(), max(len(categories), 1))
    table = (pd.DataFrame({"tier": np.asarray(tier_names, dtype=object)[t], "category": categories[c],
                           "amount": sums.to_numpy()})
             .pivot(index="tier", columns="category", values="amount").fillna(0.0).sort_index().sort_index(axis=1))
    table = table.reindex([t for t in order if t in table.index])
    table = table[table.sum().sort_values(ascending=False).index]
    return table.div(table.sum(axis=1), axis=0)


def small_groups(customers: pd.DataFrame, min_size: int, merged: dict[str, str]) -> pd.DataFrame:
    """Tiers and segments with fewer than ``min_size`` customers (after the merges of params)."""
    rows = []
    for kind, column in (("tier", "tier"), ("RFM segment", "segment_zh"), ("named segment", "named_segment")):
        if column not in customers:
            continue
        counts = customers[column].value_counts()
        for group, n in counts[counts < min_size].items():
            rows.append({"kind": kind, "group": group, "customers": int(n)})
    return pd.DataFrame(rows, columns=["kind", "group", "customers"])


def apply_merges(customers: pd.DataFrame, merge: dict[str, str]) -> dict[str, str]:
    """Rename merged groups in place (tier, segment_zh, named_segment); returns the merges applied.
    A merge whose group or neighbour does not exist is an error naming the key."""
    applied = {}
    for small, neighbour in merge.items():
        hit = False
        for column in ("tier", "segment_zh", "named_segment"):
            if column in customers and (customers[column] == small).any():
                if neighbour not in set(customers[column]):
                    raise TierbookError(f"profile.merge: {small!r} is merged into {neighbour!r}, which is not a {column} of this run; "
                                        f"use one of {', '.join(map(str, customers[column].dropna().unique()))}")
                customers[column] = customers[column].replace({small: neighbour})
                hit = True
        if not hit:
            raise TierbookError(f"profile.merge: no tier or segment is named {small!r}; check the names in params")
        applied[small] = neighbour
    return applied


# --------------------------------------------------------------------------- the stage


def _read(run_dir: Path, name: str, columns: list[str], optional: tuple[str, ...] = (), categorical: tuple[str, ...] = ()) -> pd.DataFrame:
    """A clean table of the run, only the ``columns`` it has. An ``optional`` column that is all
    missing (Parquet's null type: the demo's sale lines have no region and no margin) is left out:
    the section uses those only when present with a value, and each was 7M Python ``None`` read.
    ``categorical`` text columns are read as categoricals (their dictionary and codes: the orders'
    channel was 5M Python strings, 0.4 s to read and about 1 s to factorize at 1M customers; the
    sale lines' category 1.2 s to read as Arrow strings, 0.07 s as a dictionary, and 0.3 s to
    factorize twice)."""
    path = Path(run_dir) / "data" / f"{name}.parquet"
    schema = pq.read_schema(path)
    have = {f.name for f in schema if not (f.name in optional and f.type == "null")}
    as_dictionary = [f.name for f in schema if f.name in categorical and f.name in have
                     and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
    return read_clean(path, columns=[c for c in columns if c in have], read_dictionary=as_dictionary or None)


def _read_members(run_dir: Path) -> pd.DataFrame | None:
    """The run's customers table (None without one), but its ``source``: the ids as Arrow strings, its other text columns
    (gender, region, channel, member tier ...) as categoricals. Read as the data stage wrote them, each was a Python
    string per member: 1.4M members' 0.63 GiB, 0.05 GiB so (2026-12-04)."""
    path = Path(run_dir) / "data" / "customers.parquet"
    if not path.exists():
        return None
    schema = pq.read_schema(path)
    columns = [f.name for f in schema if f.name != "source" and not f.name.startswith("__index_level_")]
    text = [f.name for f in schema if f.name in columns and f.name != "customer_id" and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
    table = pq.read_table(path, columns=columns, read_dictionary=text)
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}.get)


def _aligned(frame, key: pd.Index):
    """``frame.reindex(key)``: the rows of a table indexed by customer id in the order of ``key``
    (the customers' ids), found by looking the table's ids up in ``key``, whose hash table is made
    once for every table (reindexing each table hashed its own 1M ids). The plain reindex when a
    customer of ``key`` is not in the table (it then fills in NaN, as a join does) or is twice in it."""
    if key.is_unique:
        at = key.get_indexer(frame.index)
        found = at >= 0
        if (np.bincount(at[found], minlength=len(key)) == 1).all():
            rows = np.empty(len(key), dtype=np.int64)
            rows[at[found]] = np.flatnonzero(found)
            return frame.take(rows).set_axis(key)
    return frame.reindex(key)


def run_profile_stage(params: Params, run_dir: Path) -> ProfileStage:
    """Profiles, tags and TGI of every customer of the run; writes the section's tables, its columns of the scores and
    the tag files."""
    with heap_kept():
        return _profile_stage(params, Path(run_dir))


def _profile_stage(params: Params, run_dir: Path) -> ProfileStage:
    # the orders, then the members and the sale lines, each let go of as soon as what needs it is done: they are most of the
    # section's memory, and the orders are done with before the others are read (at 1.4M customers, 10.1M sale lines: the
    # stage's peak on its own 3.00 -> 2.57 GiB with the lean reads of data.read_clean and _read_members, 2026-12-04)
    orders = _read(run_dir, "orders", ORDER_COLUMNS, categorical=("channel",))
    # what the reads decoded and let go of (Arrow's allocator and glibc keep it), back to the system before the orders' work
    give_back_memory()
    as_of = pd.Timestamp(params.rfm.as_of) if params.rfm.as_of else default_as_of(orders)
    base_date = as_of - pd.Timedelta(days=params.tiers.migration_days)
    notes = []
    # the distinct (customer, purchase day) pairs before as_of, once for the churn rule's gaps, the lifecycle (now and at the
    # base date), cadence and weekday tags (each computed them from the orders: 5M orders, five times)
    bought = purchase_days(orders[["customer_id", "order_date"]], as_of.normalize())
    try:
        days, note = churn_rule(orders, as_of, params, gaps=_gaps(bought) if as_of == as_of.normalize() else None)
    except TierbookError as error:
        days, note = FALLBACK_CHURN_DAYS, _("{days} days (a fallback: {error})", days=FALLBACK_CHURN_DAYS, error=error)
        notes.append(_("Lapsed means no purchase for {days} days here, because {error}.", days=FALLBACK_CHURN_DAYS, error=error))
    rules = params.profile.lifecycle
    lifecycle = T.lifecycle_stages(None, as_of, days, new_days=rules.new_days, lapsing_share=rules.lapsing_share,
                                   reactivated_days=rules.reactivated_days, bought=bought).set_index("customer_id")
    earlier_stage = None  # the lifecycle stage at the base date, for the flow between stages
    if (orders["order_date"] < base_date).any():
        earlier = T.days_before(bought, base_date) if base_date.normalize() <= as_of.normalize() else None
        earlier_stage = T.lifecycle_stages(orders, base_date, days, new_days=rules.new_days, lapsing_share=rules.lapsing_share,
                                           reactivated_days=rules.reactivated_days, bought=earlier).set_index("customer_id")["stage"]
        del earlier
    from_orders = order_behaviour(orders, as_of, params, bought=bought)
    del orders, bought
    give_back_memory()

    members = _read_members(run_dir)
    lines = _read(run_dir, "transactions", LINE_COLUMNS, optional=OPTIONAL_LINE_COLUMNS, categorical=("category",))
    give_back_memory()
    attributes = attribute_table(members, lines, as_of, params)
    give_back_memory()  # each step on the 10.1M lines frees its own large arrays: given back, the next one's come on top of
    # what is live, not of what glibc kept (the stage alone at 1.4M customers 2.35 -> 2.30 GiB, 2026-12-04)
    behaviour = _behaviour(from_orders, line_behaviour(lines, as_of, params))
    del from_orders
    give_back_memory()
    profit = profit_per_customer(lines, as_of)
    before = T.rows_where(lines, lines["order_date"] < as_of, ["customer_id", "amount"])
    gross = _per_customer_sum(before["amount"], before["customer_id"])
    del before
    give_back_memory()
    # the last use of the sale lines: of them the category mix keeps three arrays, and the lines are let go of before
    # rfm's tiers and segments are read and the customers' table is made (that table beside the 10.1M lines was the
    # section's peak, 2.84 GiB; with the tiers read at the start and the mix made once they were read, the stage on its
    # own at 1.4M customers peaked at 2.30-2.31 GiB resident, 2.19-2.23 GiB now, 2026-12-05)
    by_category = category_lines(lines, as_of)
    del lines
    give_back_memory()
    scores = _read(run_dir, "customer_scores", SCORE_COLUMNS)  # every column again when the CRM files are written
    scores["customer_id"] = scores["customer_id"].astype(str)
    ids = scores["customer_id"]
    key = pd.Index(ids.to_numpy())  # the customers' ids, hashed once for every lookup below
    # the tiers' and segments' names as Python strings made once per name (to_numpy() of Arrow text made one a customer:
    # 0.17 GiB at 1.4M customers)
    groups = pd.DataFrame({column: _as_objects(scores[column]) for column in ("tier", "segment_zh", "named_segment")})
    merged = apply_merges(groups, params.profile.merge)
    tier_order = [level.name for level in params.tiers.levels if level.name in set(groups["tier"])]
    mix_by_category = category_mix_of(by_category, pd.Series(groups["tier"].to_numpy(), index=key), tier_order)
    del by_category
    customers = pd.DataFrame({"customer_id": ids.to_numpy(), **{column: groups[column].to_numpy() for column in groups},
                              "revenue": scores["monetary_total"].to_numpy(float)})
    del scores, groups
    now = _aligned(lifecycle[["stage", "tenure_days"]], key)
    customers["lifecycle_stage"] = now["stage"].astype(object).to_numpy()
    customers["tenure_days"] = now["tenure_days"].to_numpy()
    del now, lifecycle
    attribute_columns = list(attributes.columns)
    if set(customers.columns) & (set(attributes.columns) | set(behaviour.columns)) or set(attributes.columns) & set(behaviour.columns):
        customers = customers.join(attributes, on="customer_id").join(behaviour, on="customer_id")  # raises, as it says why
    else:  # the left joins on customer id, by position
        customers = pd.concat([customers, *(_aligned(frame, key).reset_index(drop=True) for frame in (attributes, behaviour))], axis=1)
    del attributes, behaviour
    customers["gross"] = _aligned(gross, key).fillna(0.0).to_numpy()
    has_profit = profit is not None
    if has_profit:
        customers["profit"] = _aligned(profit, key).fillna(0.0).to_numpy()
    if members is not None:
        outside = _members_outside(members["customer_id"], key)
        if outside:
            notes.append(_("{outside:,} members of the customers table had no purchase before {as_of:%Y-%m-%d} and are not profiled.",
                           outside=outside, as_of=as_of))
    del members

    p = params.profile
    segment_order = [s.zh for s in params.rfm.segments_8.values() if s.zh in set(customers["segment_zh"])]
    by = {column: pd.Series(customers[column].to_numpy(), index=key, name=column) for column in ("tier", "segment_zh", "lifecycle_stage")}
    give_back_memory()
    attr_groups = [c for c in attribute_columns if customers[c].notna().any()]
    behaviour_groups = [c for c in BEHAVIOUR_COLUMNS if c in customers and customers[c].notna().any()]
    tag_groups = attr_groups + behaviour_groups + ["lifecycle_stage"]
    # the long table as one code per customer and tag group: TGI and customer_tags.csv are counted and written from the codes
    # (13M rows of Python strings were concatenated, hashed for TGI and sorted for the CSV: about 70 s and 2 GiB at 1M customers)
    coded = T.coded_tags(customers, tag_groups)
    tgi = {
        "tier": T.tgi_table(None, by["tier"], min_n=p.min_n, correction=p.correction, encoded=coded),
        "segment": T.tgi_table(None, by["segment_zh"], min_n=p.min_n, correction=p.correction, encoded=coded),
        "lifecycle": T.tgi_table(None, by["lifecycle_stage"], min_n=p.min_n, correction=p.correction, encoded=coded,
                                 skip=("lifecycle_stage",)),
    }
    card_tags = [c for c in ("region", "age_band", "channel_preference", "favourite_category", "lifecycle_stage") if c in tag_groups]
    cards = {"tier": profile_cards(customers, "tier", tier_order, card_tags, has_profit),
             "segment": profile_cards(customers, "segment_zh", segment_order, card_tags, has_profit)}
    mix = {}
    for rows in ("region", "channel_preference"):
        if rows in tag_groups:
            mix[f"tier x {rows}"] = group_mix(customers, rows, "tier", tier_order)
            mix[f"segment x {rows}"] = group_mix(customers, rows, "segment_zh", segment_order)
    flow = T.stage_flow(earlier_stage, by["lifecycle_stage"]) if earlier_stage is not None else None
    stage = ProfileStage(
        as_of=as_of, base_date=base_date, churn_days=days, churn_note=note, customers=customers, attributes=attr_groups,
        behaviour=behaviour_groups, coded=coded, stages=stage_table(customers), flow=flow, tgi=tgi, cards=cards, mix=mix,
        category_mix=mix_by_category, small_groups=small_groups(customers, p.min_group_size, merged),
        merged=merged, tier_order=tier_order, segment_order=segment_order, has_profit=has_profit, notes=notes,
        tag_counts=coded.counts())
    _write(stage, coded, params, run_dir)
    return stage


def _gaps(bought: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """``churn.purchase_gaps(orders, at)`` from ``bought = purchase_days(orders, at)``: the days between a customer's
    consecutive purchase days."""
    code, day, _ids = bought
    return np.diff(day)[code[1:] == code[:-1]]


def _members_outside(member_ids: pd.Series, key: pd.Index) -> int:
    """Distinct members (ids as text) that are not among the customers ``key`` (distinct ids): in
    Arrow for Arrow text without missing ids (1M ids: no Python string per id), else as
    ``len(set(member_ids.astype(str)) - set(key))``."""
    if isinstance(member_ids.dtype, pd.StringDtype) and member_ids.dtype.storage == "pyarrow" and not member_ids.isna().any() and known_unique(key):
        distinct = pc.unique(pa.array(member_ids.array))
        known = pc.sum(pc.is_in(distinct, value_set=pa.array(key.to_numpy(), type=pa.string()))).as_py() or 0
        return len(distinct) - known
    return len(set(member_ids.astype(str)) - set(key))


def _write(stage: ProfileStage, coded: T.CodedTags, params: Params, run_dir: Path) -> None:
    tables = run_dir / "tables"
    tables.mkdir(exist_ok=True)
    frames = {"profile_lifecycle": stage.stages, "profile_cards_tier": stage.cards["tier"], "profile_cards_segment": stage.cards["segment"],
              "profile_small_groups": stage.small_groups}
    for name, frame in stage.tgi.items():
        frames[f"profile_tgi_{name}"] = frame
    if stage.flow is not None:
        frames["profile_lifecycle_flow"] = stage.flow.reset_index()
    if stage.category_mix is not None:
        frames["profile_category_mix"] = stage.category_mix.reset_index()
    for name, frame in stage.mix.items():
        frames["profile_" + name.replace(" x ", "_by_")] = frame.reset_index()
    for name, frame in frames.items():
        frame.to_csv(tables / f"{name}.csv", index=False, encoding="utf-8-sig")
    # the CRM import: every tag of every customer, tiers and segments included (rfm's, in customer_scores)
    path = run_dir / "data" / "customer_scores.parquet"
    scores = read_clean(path, columns=["customer_id", "tier", "segment_zh", "named_segment"])  # pd.read_parquet's frame, 2.43 -> 0.73 s at 1.4M
    scores["customer_id"] = scores["customer_id"].astype(str)
    write_customer_tags([coded, T.coded_tags(scores.rename(columns={"segment_zh": "rfm_segment"}), ["tier", "rfm_segment", "named_segment"])],
                        run_dir / "customer_tags.csv")
    del scores
    # the section's columns of customer_scores, joined into it by the summary section (export_scores): this section runs
    # beside churn, which rewrites customer_scores, rather than after it
    columns = [c for c in CRM_COLUMNS if c in stage.customers]
    stage.customers[["customer_id", *columns]].to_parquet(run_dir / "data" / PROFILE_SCORES, index=False)


def export_scores(params: Params, run_dir: Path) -> None:
    """customer_scores with the profile section's columns (``data/profile_scores.parquet``) joined in, and the CRM files
    (``crm.write_customer_scores``): the summary section's first step, once every section that adds columns is done."""
    run_dir = Path(run_dir)
    path = run_dir / "data" / "customer_scores.parquet"
    if not path.exists():
        return
    # pd.read_parquet's frames, read by read_clean (the ids without pyarrow's deduplication): 3.15 -> 1.46 s and 2.51 ->
    # 1.09 s for 1.4M customers, on the summary section's way to the end of the report (2026-12-04)
    scores = read_clean(path, columns=[c for c in pq.read_schema(path).names if c not in CRM_COLUMNS])
    scores["customer_id"] = scores["customer_id"].astype(str)
    extra = run_dir / "data" / PROFILE_SCORES
    if extra.exists():
        profile = read_clean(extra)
        customers = profile["customer_id"].astype(str).to_numpy()
        columns = [c for c in profile.columns if c != "customer_id"]
        if same_ids(customers, scores["customer_id"]) and known_unique(pd.Index(customers)):
            # the profile's customers are the scores' rows in their order: joined by position, in place (no copy of 1M x 26)
            for column in columns:
                scores[column] = profile[column].set_axis(scores.index)
        else:
            scores = scores.join(profile.set_index(pd.Index(customers, name="customer_id"))[columns], on="customer_id")
    write_customer_scores(scores, run_dir, export=True, xlsx_max_rows=params.crm.xlsx_max_rows)


TAG_COLUMNS = ["customer_id", "tag_group", "tag"]


def write_customer_tags(parts: list[T.CodedTags], path: Path, customers_per_batch: int = 200_000) -> None:
    """``customer_tags.csv``: the rows of the long tables of ``parts`` sorted by customer id (as
    text), then tag group (by name; a group in two parts keeps their order), written as
    ``crm.write_csv`` writes a frame (UTF-8 with BOM, pyarrow's writer) but from the codes, a batch
    of customers at a time: no 16M-row table of Python strings is made, sorted or converted (at 1M
    customers that was 19 s and the section's peak memory). The same bytes as sorting the
    concatenated long tables, which is what is done when the parts do not share one list of
    distinct text customer ids."""
    ids = parts[0].customer_ids
    text_ids = pd.api.types.infer_dtype(ids, skipna=False) == "string"
    shared = text_ids and all(len(part.customer_ids) == len(ids) and np.array_equal(np.asarray(part.customer_ids, dtype=object),
                                                                                   np.asarray(ids, dtype=object)) for part in parts[1:])
    rank, distinct = customer_codes(pd.Series(np.asarray(ids, dtype=object))) if shared else (None, ())
    if not shared or len(distinct) != len(ids):
        frame = pd.concat([part.frame() for part in parts], ignore_index=True)
        customer, _ids = customer_codes(frame["customer_id"])
        group, _groups = pd.factorize(frame["tag_group"], sort=True)
        write_csv(frame.take(np.lexsort((group, customer))), path)
        return
    # the tag groups of all parts in the file's order: by name, stable (as a stable sort of the concatenated rows keeps them)
    columns = [(group, codes, texts) for part in parts for group, codes, texts in zip(part.groups, part.codes, part.texts)]
    columns = sorted(columns, key=lambda column: column[0])
    offsets = np.cumsum([0] + [len(texts) for _g, _c, texts in columns])[:-1]
    customer_text = pa.array(np.asarray(ids, dtype=object), type=pa.string())
    group_text = pa.array([group for group, _c, _t in columns], type=pa.string())
    tag_text = pa.array(np.concatenate([np.asarray(t, dtype=object) for _g, _c, t in columns] + [np.array([], dtype=object)]), type=pa.string())
    in_text_order = np.argsort(rank, kind="stable")  # rows of the customers in the order of their ids as text
    schema = pa.schema([(name, pa.string()) for name in TAG_COLUMNS])
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as stream:
        stream.write("\ufeff".encode("utf-8"))
        if not columns:
            pacsv.write_csv(pa.table({name: pa.array([], type=pa.null()) for name in TAG_COLUMNS}), stream)
        else:
            with pacsv.CSVWriter(stream, schema) as writer:
                for start in range(0, len(in_text_order), customers_per_batch):
                    rows = in_text_order[start:start + customers_per_batch]
                    codes = np.stack([c[rows] for _g, c, _t in columns], axis=1)  # customer x tag group, -1 for none
                    row, column = np.nonzero(codes >= 0)  # customer by customer, groups in order
                    writer.write_table(pa.table([customer_text.take(rows[row]), group_text.take(column),
                                                 tag_text.take(offsets[column] + codes[row, column])], schema=schema))
    tmp.replace(path)


# --------------------------------------------------------------------------- prose

GROUP_LABELS = {
    "region": "region", "city": "city", "gender": "gender", "age_band": "age band", "signup_channel": "signup channel",
    "member_tier": "the client's own member tier", "industry": "industry", "company_size_band": "company size",
    "favourite_category": "favourite category", "channel_preference": "channel preference", "purchase_cadence": "purchase cadence",
    "discount_sensitivity": "discount sensitivity", "weekday_weekend": "weekday or weekend shopper", "return_behaviour": "returns",
    "lifecycle_stage": "lifecycle stage",
}

GROUP_LABELS_ZH = {
    "region": "地区", "city": "城市", "gender": "性别", "age_band": "年龄段", "signup_channel": "注册渠道", "member_tier": "会员等级",
    "industry": "行业", "company_size_band": "企业规模", "favourite_category": "偏好品类", "channel_preference": "渠道偏好",
    "purchase_cadence": "购买间隔", "discount_sensitivity": "折扣敏感度", "weekday_weekend": "工作日/周末", "return_behaviour": "退货",
    "lifecycle_stage": "生命周期",
}


def group_label(tag_group: str) -> str:
    """A tag group in words, in the report's language (a column of the client's own is its name)."""
    return _(GROUP_LABELS[tag_group]) if tag_group in GROUP_LABELS else tag_group


def _join(items) -> str:
    """Items of a list in a sentence: commas in English, 、 in Chinese."""
    return ("、" if i18n.lang() == "zh" else ", ").join(items)


def tag_phrase(tag_group: str, tag: str) -> str:
    """A tag in words: 'from 华东', 'omnichannel', 'mostly buying 美妆' ..."""
    shown = T.label(tag, tag_group)
    if tag_group in ("region", "city"):
        return _("from {tag}", tag=shown)
    if tag_group == "favourite_category":
        return _("mostly buying {tag}", tag=shown)
    if tag_group == "channel_preference":
        return _("omnichannel (buying through two or more channels)") if tag == "omnichannel" else _("{tag} buyers", tag=shown)
    if tag_group == "purchase_cadence":
        return _("one-time buyers") if tag == "one purchase" else _("buying with a median gap of {tag}", tag=shown)
    if tag_group == "discount_sensitivity":
        return _("of {tag} discount sensitivity", tag=shown)
    if tag_group == "weekday_weekend":
        return _("{tag} shoppers", tag=shown)
    if tag_group in ("return_behaviour", "lifecycle_stage"):
        return _("{tag} customers", tag=shown)
    if tag_group == "age_band":
        return _("aged {tag}", tag=shown)
    return _("{group} {tag}", group=group_label(tag_group), tag=shown)


def top_tags(stage: ProfileStage, grouping: str, group, top: int | None = None, params: Params | None = None) -> pd.DataFrame:
    """The most distinctive tags of a group, at most one per tag group (the strongest), by TGI."""
    alpha = params.profile.alpha if params else 0.05
    rows = T.distinctive(stage.tgi[grouping], group, alpha=alpha, top=10_000)
    rows = rows.drop_duplicates("tag_group")
    return rows.head(top) if top else rows


def findings(stage: ProfileStage, params: Params) -> list[str]:
    """The section's findings in sentences generated from its numbers, largest first."""
    out = []
    tiers = stage.tier_order
    for tier in tiers[:1] + tiers[-1:] if len(tiers) > 1 else tiers:
        rows = top_tags(stage, "tier", tier, None, params)
        # the client's own tiers, recency and cadence follow from how tiers are made: say what else sets them apart
        rows = rows[~rows["tag_group"].isin(["member_tier", "lifecycle_stage", "purchase_cadence"])]
        for _i, r in rows.head(2).iterrows():
            out.append(_("**{tier}** customers are **{ratio:.1f}×** as likely as the average customer to be {phrase} "
                         "({share_group:.0%} against {share_all:.0%}; n = {n:,}).", tier=i18n.name(tier), ratio=r["tgi"] / 100,
                         phrase=tag_phrase(r["tag_group"], r["tag"]), share_group=r["share_group"], share_all=r["share_all"],
                         n=int(r["n_tag_group"])))
    cards = stage.cards["tier"]
    if "region" in stage.attributes and len(cards):
        top = stage.tgi["tier"][(stage.tgi["tier"]["group"] == tiers[0]) & (stage.tgi["tier"]["tag_group"] == "region")]
        if len(top):
            r = top.sort_values("share_group", ascending=False).iloc[0]
            out.append(_("{share:.0%} of {tier} customers live in {region} ({share_all:.0%} of all customers).", share=r["share_group"],
                         tier=i18n.name(tiers[0]), region=T.label(r["tag"], "region"), share_all=r["share_all"]))
    s = stage.stages.set_index("stage")
    at_risk = s.loc[["lapsing"], "customers"].sum()
    out.append(_("{lapsing_share:.0%} of customers are **lapsing** ({lapsing:,}; {lapsing_revenue:.0%} of revenue to date) and "
                 "{lapsed_share:.0%} have **lapsed**; {new:,} are new (first purchase in the last {new_days} days) and "
                 "{reactivated:,} came back after a lapse.", lapsing_share=s.loc["lapsing", "customer_share"], lapsing=int(at_risk),
                 lapsing_revenue=s.loc["lapsing", "revenue_share"], lapsed_share=s.loc["lapsed", "customer_share"],
                 new=int(s.loc["new", "customers"]), new_days=params.profile.lifecycle.new_days,
                 reactivated=int(s.loc["reactivated", "customers"])))
    if stage.small_groups is not None and len(stage.small_groups):
        names = _join(f"{i18n.name(g)} ({n:,})" for g, n in zip(stage.small_groups["group"], stage.small_groups["customers"]))
        out.append(_("Too small to act on alone (fewer than {min_size:,} customers): {names}. Treat each together with a neighbouring "
                     "group, or merge it in `profile.merge`.", min_size=params.profile.min_group_size, names=names))
    return out


def narrative(stage: ProfileStage, params: Params) -> str:
    """The page's opening paragraph: what was profiled and how."""
    n = len(stage.customers)
    attrs = _join(group_label(a) for a in stage.attributes) or _("none (no customers table with attributes)")
    beh = _join(group_label(b) for b in stage.behaviour)
    text = _("**{n:,} customers** with a purchase before {as_of:%Y-%m-%d} are profiled. Attribute tags: {attrs}. Behaviour tags: {beh}. "
             "Every customer has exactly one lifecycle stage; *lapsed* uses the churn rule: no purchase for {churn_note}.",
             n=n, as_of=stage.as_of, attrs=attrs, beh=beh, churn_note=stage.churn_note)
    if stage.merged:
        text += _(" Merged in these tables (params `profile.merge`): {merges}.",
                  merges=_join(f"{i18n.name(a)} → {i18n.name(b)}" for a, b in stage.merged.items()))
    return "\n\n".join([text, *stage.notes])


# --------------------------------------------------------------------------- display (never computes)

CARD_LABELS = {"group": "", "customers": "customers", "customer_share": "% customers", "revenue_share": "% revenue", "profit_share": "% profit",
               "margin": "margin", "region": "top region", "age_band": "top age band", "channel_preference": "top channel preference",
               "favourite_category": "top category", "lifecycle_stage": "top lifecycle stage", "median_cadence_days": "median days between purchases",
               "median_tenure_days": "median days as customer"}
TGI_LABELS = {"tag_group": "tag group", "n_tag_group": "n with tag", "n_group": "n in group", "share_group": "% of group",
              "share_all": "% of all", "tgi": "TGI", "p_adjusted": "p (adjusted)"}


def _card_value(value, tag_group: str):
    """A card's 'most common value and its share' (``华东 34%``) with the value in the report's language."""
    if i18n.lang() == "en" or not isinstance(value, str) or " " not in value:
        return value
    tag, share = value.rsplit(" ", 1)
    return f"{T.label(tag, tag_group)} {share}"


def styled_cards(cards: pd.DataFrame):
    from .tables import styled

    if i18n.lang() != "en":
        cards = cards.assign(**{c: cards[c].map(lambda v, c=c: _card_value(v, c)) for c in cards.columns if c in GROUP_LABELS})
    return styled(cards, int_cols=["customers", "median_cadence_days", "median_tenure_days"],
                  pct_cols=[c for c in ("customer_share", "revenue_share", "profit_share", "margin") if c in cards], labels=CARD_LABELS)


def styled_tgi(rows: pd.DataFrame, csv: str | None = None, max_rows: int = 25):
    """TGI rows for the page; tags held by fewer than profile.min_n customers of the group in grey."""
    from .tables import styled

    frame = rows[["tag_group", "tag", "n_tag_group", "n_group", "share_group", "share_all", "tgi", "p_adjusted"]].reset_index(drop=True)
    frame = frame.assign(tag=[T.label(t, g) for t, g in zip(frame["tag"], frame["tag_group"])], tag_group=frame["tag_group"].map(group_label),
                         tgi=frame["tgi"].round(0) + 0.0)
    styler = styled(frame, int_cols=["n_tag_group", "n_group", "tgi"], pct_cols=["share_group", "share_all"], p_cols=["p_adjusted"],
                    labels=TGI_LABELS, csv=csv, max_rows=max_rows)
    small = rows["small"].to_numpy()[:max_rows]
    return styler.apply(lambda row: ["color: #9a9a9a" if small[row.name] else ""] * len(row), axis=1) if small.any() else styler
