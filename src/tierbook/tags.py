"""Customer tags (客户标签) and lifecycle stages, and what sets a group apart (TGI).

Pure functions of the clean tables of a run; ``tierbook.profile`` runs them as the ``profile``
section. Every tag is one value per customer in a *tag group* (``region``, ``channel_preference``
...), so a group's tags partition the customers that have one, and the long table
``(customer_id, tag_group, tag)`` is what a CRM imports as tags.

Lifecycle stage at a date ``at`` (orders before ``at``; ``churn_days`` is the churn section's rule):

* **new**: first purchase at most ``new_days`` before ``at``;
* **lapsed**: no purchase for more than ``churn_days`` (churned, as in the churn section);
* **lapsing**: no purchase for more than ``lapsing_share`` x ``churn_days``;
* **reactivated**: came back after a lapse (a gap of more than ``churn_days`` between two purchase
  days) at most ``reactivated_days`` before ``at``;
* **active**: everyone else. The first rule that matches wins, in this order.

TGI (target group index, the figure Chinese marketing teams read) of a tag in a group =
100 x share of the group's customers with the tag / share of all customers with it; 100 is
average, 200 twice as common. Its test compares the group with the rest of the customers (two-
proportion z-test, pooled variance), corrected for the number of tags tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from . import i18n
from .i18n import _
from .summary import customer_codes, known_unique, purchase_days, unique_sorted

STAGES = ("new", "active", "reactivated", "lapsing", "lapsed")
NOT_YET = "not yet a customer"


# --------------------------------------------------------------------------- lifecycle


def _starts(code: np.ndarray) -> np.ndarray:
    """Where each customer's run of rows starts in rows sorted by customer code."""
    return np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else np.array([], dtype=np.int64)


def days_before(bought: tuple[np.ndarray, np.ndarray, np.ndarray], at) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``purchase_days(orders, at)`` from ``bought = purchase_days(orders, later)``: the pairs before
    ``at`` (still sorted by customer, then day; the same ids)."""
    code, day, ids = bought
    keep = day < int(pd.Timestamp(at).normalize().to_datetime64().astype("datetime64[D]").astype(np.int64))
    return code[keep], day[keep], ids


def lifecycle_stages(orders: pd.DataFrame | None, at, churn_days: int, *, new_days: int = 90, lapsing_share: float = 0.5,
                     reactivated_days: int = 90, bought: tuple | None = None) -> pd.DataFrame:
    """One row per customer with a purchase before ``at``: ``customer_id, stage, first_purchase,
    last_purchase, recency_days, tenure_days, last_return`` (date of the latest purchase after a
    lapse, NaT when none). Rules in the module docstring. ``bought``: ``purchase_days(orders, at)``
    when the caller has it (the profile's lifecycle, cadence and weekday tags share one)."""
    at = pd.Timestamp(at).normalize()
    code, day, ids = bought if bought is not None else purchase_days(orders, at)
    today = int(at.to_datetime64().astype("datetime64[D]").astype(np.int64))
    same = np.r_[False, code[1:] == code[:-1]]
    gap = np.where(same, day - np.r_[day[:1], day[:-1]], 0)
    back = np.where(same & (gap > churn_days), day, np.iinfo(np.int64).min)
    starts = _starts(code)
    ends = np.r_[starts[1:], len(code)] - 1
    first, last = day[starts], day[ends]  # days are sorted within a customer
    back = np.maximum.reduceat(back, starts) if len(starts) else back[:0]
    recency = today - last
    tenure = today - first
    has_back = back > np.iinfo(np.int64).min
    since_back = np.where(has_back, today - back, np.iinfo(np.int64).max)
    stage = np.select(  # positions in STAGES: the categorical made from codes, not from 1M strings
        [tenure <= new_days, recency > churn_days, recency > lapsing_share * churn_days, since_back <= reactivated_days],
        [STAGES.index("new"), STAGES.index("lapsed"), STAGES.index("lapsing"), STAGES.index("reactivated")], default=STAGES.index("active"))
    epoch = np.datetime64("1970-01-01", "D")
    return pd.DataFrame({
        "customer_id": ids[code[starts]],
        "stage": pd.Categorical.from_codes(stage, categories=list(STAGES)),
        "first_purchase": pd.to_datetime(epoch + first.astype("timedelta64[D]")),
        "last_purchase": pd.to_datetime(epoch + last.astype("timedelta64[D]")),
        "recency_days": recency.astype(int),
        "tenure_days": tenure.astype(int),
        "last_return": pd.to_datetime(np.where(has_back, epoch + back.clip(0).astype("timedelta64[D]"), np.datetime64("NaT"))),
    })


def stage_flow(before: pd.Series, now: pd.Series) -> pd.DataFrame:
    """Customers moving between lifecycle stages: rows = stage at the earlier date (customers who had
    not bought yet are ``not yet a customer``), columns = stage now. Both Series are indexed by
    customer id."""
    table = pd.crosstab(_stages_before(before, now.index), pd.Categorical(now.astype(object), categories=list(STAGES)), dropna=False)
    table.index.name, table.columns.name = "stage_before", "stage_now"
    return table.loc[(table.sum(axis=1) > 0)]


def _stages_before(before: pd.Series, index: pd.Index) -> pd.Categorical:
    """``pd.Categorical(before.reindex(index).astype(object).fillna(NOT_YET), categories=[*STAGES, NOT_YET])``: for a
    categorical ``before`` whose stages are among those categories, from its codes, each customer of ``before`` looked up
    in ``index`` (the profile's customer ids, whose hash table is made once for the section) instead of 1M ids hashed
    for the reindex and 1M stage texts for the Categorical (0.8 s of the 1M-customer profile, 2026-12-02)."""
    categories = [*STAGES, NOT_YET]
    if isinstance(before.dtype, pd.CategoricalDtype) and index.is_unique:
        where = pd.Index(categories).get_indexer(before.cat.categories)  # each stage's code among the categories
        at = index.get_indexer(before.index)
        found = at >= 0
        once = np.bincount(at[found], minlength=len(index)).max(initial=0) <= 1 and before.index[~found].is_unique
        if (where >= 0).all() and once:  # (repeated customers: the reindex below raises, as it did)
            stage = before.cat.codes.to_numpy()
            codes = np.full(len(index), len(STAGES), dtype=np.int64)  # NOT_YET: not a customer at the earlier date
            codes[at[found]] = np.where(stage >= 0, where[stage], len(STAGES))[found]  # a missing stage is NOT_YET too
            return pd.Categorical.from_codes(codes, categories=categories)
    rows = before.reindex(index).astype(object).fillna(NOT_YET)
    return pd.Categorical(rows, categories=categories)


# --------------------------------------------------------------------------- behaviour tags


def rows_where(frame: pd.DataFrame, keep, columns: list[str] | None = None) -> pd.DataFrame:
    """``frame[keep]`` (of ``columns`` only, when given), or the frame itself, every column, when every row is kept (no
    copy of 7M sale lines to keep them all: ``order_date < as_of`` keeps every row when as_of is the day after the last
    order; ``frame[columns]`` copied them, three columns of 10.1M lines 0.12 GiB, 2026-12-04)."""
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return frame
    return frame[keep] if columns is None else frame.loc[keep, columns]


def _is_text(values) -> bool:
    """Every present value is a str (Arrow or pandas strings, or an object column of str)."""
    if isinstance(values.dtype, pd.StringDtype) or (isinstance(values.dtype, pd.ArrowDtype) and str(values.dtype).startswith(("string", "large_string"))):
        return True
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def text_codes(values: pd.Series, *, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values.astype(str), sort=sort)`` of text values without missing ones, with the
    uniques as an object array, but without a Python string per row: the values are factorized as
    stored (Arrow strings by Arrow in C++) and only the distinct ones made text. ``astype(str)`` of
    the 1M-customer demo's 7M Arrow categories alone took 7.8 s (0.3 s factorized). Values that are
    not all text (``1`` and ``1.0`` are one value to factorize but two texts) or have missing ones
    take the plain way."""
    if isinstance(values.dtype, pd.CategoricalDtype) and _is_text(pd.Series(values.cat.categories, dtype=object)) \
            and not values.isna().any():
        # text read as a dictionary (the orders' channel): the categories' codes numbered in order of appearance, and the
        # categories they pick (5M orders: 0.05 s, against about 1 s to read and factorize 5M Python strings, 2026-12-02)
        codes, picked = pd.factorize(values.cat.codes.to_numpy())
        uniques = pd.Index(np.asarray(values.cat.categories, dtype=object)[picked])
    elif not _is_text(values):
        codes, names = pd.factorize(values.astype(str).to_numpy(), sort=sort)
        return codes, np.asarray(names, dtype=object)
    else:
        codes, uniques = pd.factorize(values)
    if len(codes) and codes.min() < 0:  # a missing value is the text "nan" or "<NA>" under astype(str)
        codes, names = pd.factorize(values.astype(str).to_numpy(), sort=sort)
        return codes, np.asarray(names, dtype=object)
    texts = np.asarray(uniques, dtype=object)
    if not sort:  # distinct strings are distinct texts, numbered in order of appearance
        return codes, texts
    order = np.argsort(texts, kind="stable")  # as factorize(sort=True) orders text
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], texts[order]


def sums_by_key(values: pd.Series | pd.DataFrame, key: np.ndarray, n_keys: int, **kwargs) -> pd.Series | pd.DataFrame:
    """``values.groupby(key, sort=True).sum(**kwargs)`` for integer keys in ``0 .. n_keys - 1``: the
    sums of the keys present, indexed by key. Summed by pandas' own grouped sum (compensated, row by
    row: the same bits), but each row's group is looked up in a table of ``n_keys`` entries instead of
    hashing the keys: 7M sale lines of 1M customers by (customer, category), 8.1 s -> 1.1 s (loaded
    2-core machine). Keys spread far wider than the rows take the plain groupby."""
    key = np.asarray(key, dtype=np.int64)
    if n_keys > 4 * len(key) + 1_000_000:
        return values.groupby(key, sort=True).sum(**kwargs)
    present = np.bincount(key, minlength=n_keys) > 0
    rank = np.cumsum(present) - 1
    keys = np.flatnonzero(present)
    grouper = pd.Categorical.from_codes(rank[key], categories=pd.RangeIndex(len(keys)))  # every category present: no empty group
    sums = values.groupby(grouper, observed=False).sum(**kwargs)
    return sums.set_axis(pd.Index(keys))


def favourite_category(lines: pd.DataFrame) -> pd.DataFrame:
    """Each customer's category with the largest share of spend (ties: the first by name), from sale
    lines with ``customer_id, category, amount``: ``customer_id, favourite_category, share``."""
    lines = rows_where(lines, lines["category"].notna() & (lines["amount"] > 0), ["customer_id", "category", "amount"])
    codes, ids = customer_codes(lines["customer_id"])
    category, categories = text_codes(lines["category"], sort=True)
    n = max(len(categories), 1)
    # spend per (customer, category) pair keyed by one integer (sorted as customer id, then category name)
    spend = sums_by_key(pd.Series(lines["amount"].to_numpy(float)), codes * n + category, len(ids) * n)
    customer, pick = np.divmod(spend.index.to_numpy(), n)
    amount = spend.to_numpy()
    total = sums_by_key(pd.Series(amount), customer, len(ids)).to_numpy()  # each customer's spend, as groupby(customer).transform("sum")
    starts = _starts(customer)
    share = amount / np.repeat(total, np.diff(np.r_[starts, len(customer)]))
    # per customer (rows sorted by customer, then category name) the first row with the largest amount: the lexsort by
    # (customer, -amount, category) of before, without sorting 3M rows
    largest = np.repeat(np.maximum.reduceat(amount, starts), np.diff(np.r_[starts, len(customer)])) if len(starts) else amount
    top = np.flatnonzero(amount == largest)
    first = top[np.r_[True, customer[top][1:] != customer[top][:-1]]] if len(top) else top
    return pd.DataFrame({"customer_id": ids[customer[first]], "favourite_category": np.asarray(categories, dtype=object)[pick[first]],
                         "share": share[first]})


def channel_preference(orders: pd.DataFrame) -> pd.Series:
    """``<channel> only`` for customers who bought through one channel, ``omnichannel`` for two or more."""
    # a count of distinct (customer, channel) codes instead of a Python set per customer: 500k orders
    # of 100k customers 38 s -> 1.8 s (same process, on a loaded 2-core machine)
    customer, customers = customer_codes(orders["customer_id"])
    known = orders["channel"].notna().to_numpy()
    channel, channels = text_codes(orders.loc[known, "channel"])
    pairs = unique_sorted(customer[known].astype(np.int64) * max(len(channels), 1) + channel)
    pair_customer, pair_channel = np.divmod(pairs, max(len(channels), 1))
    count = np.bincount(pair_customer, minlength=len(customers))
    only = np.full(len(customers), -1)
    only[pair_customer] = pair_channel  # the channel of a one-channel customer; -1 (the last name below) when none is known
    names = np.append(np.asarray(channels, dtype=object) + " only", "unknown")
    label = np.where(count > 1, "omnichannel", names[only])
    present = np.bincount(customer, minlength=len(customers)) > 0  # dictionary-encoded ids may list customers without an order here
    return pd.Series(label[present], index=pd.Index(customers[present], name="customer_id"), dtype=object, name="channel_preference")


def band_labels(edges, unit: str = "") -> list[str]:
    """Labels of the bands cut at ``edges`` (lower bound inclusive): ``<25, 25-34, ..., 55+``."""
    edges = list(edges)
    labels = [f"<{edges[0]:g}{unit}"]
    labels += [f"{lo:g}-{hi - 1:g}{unit}" for lo, hi in zip(edges[:-1], edges[1:])]
    return labels + [f"{edges[-1]:g}+{unit}"]


def band(values: pd.Series, edges) -> pd.Series:
    """Numbers cut into the bands of ``band_labels`` (missing stays missing)."""
    values = pd.to_numeric(values, errors="coerce")
    cut = pd.cut(values, [-np.inf, *edges, np.inf], right=False, labels=band_labels(edges))
    return cut.astype(object).where(values.notna())


def purchase_cadence(orders: pd.DataFrame | None, at, edges=(30, 90, 180), *, bought: tuple | None = None) -> pd.DataFrame:
    """Median days between consecutive purchase days per customer, and its band (``<= 30 days`` ...,
    ``one purchase`` without a repeat): ``customer_id, cadence_days, purchase_cadence``. ``bought``:
    ``purchase_days(orders, at)`` when the caller has it."""
    code, day, ids = bought if bought is not None else purchase_days(orders, pd.Timestamp(at).normalize())
    same = np.r_[False, code[1:] == code[:-1]]
    customers = code[_starts(code)]
    median = pd.Series(_median_gaps(code, day, same), index=customers)
    edges = list(edges)
    labels = [f"<= {edges[0]} days"] + [f"{lo + 1}-{hi} days" for lo, hi in zip(edges[:-1], edges[1:])] + [f"> {edges[-1]} days"]
    banded = pd.cut(median, [0, *edges, np.inf], right=True, labels=labels).astype(object).where(median.notna(), "one purchase")
    return pd.DataFrame({"customer_id": ids[customers], "cadence_days": median.to_numpy(), "purchase_cadence": banded.to_numpy()})


def _median_gaps(code: np.ndarray, day: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Per customer (in code order) the median of the gaps between its consecutive purchase days, NaN
    without a repeat: ``groupby(code).median()`` of the integer gaps, the same numbers (the middle
    gap, or the mean of the two middle ones, (a + b) / 2 in doubles as pandas computes it) from one
    sort of (customer, gap) keys instead of a grouped selection (4M gaps of 1M customers: 4 s)."""
    starts = _starts(code)
    out = np.full(len(starts), np.nan)
    gaps = (day - np.r_[day[:1], day[:-1]])[same]
    if not len(gaps):
        return out
    owner = np.searchsorted(code[starts], code[same])  # each gap's customer, by position
    span = int(gaps.max()) + 1
    keyed = np.sort(owner.astype(np.int64) * span + gaps)  # by customer, then gap (no overflow: positions x days)
    gaps_sorted = keyed % span
    first = np.searchsorted(owner, np.arange(len(starts)))  # where each customer's gaps start (owner is sorted)
    count = np.bincount(owner, minlength=len(starts))
    has = count > 0
    low = (first + (count - 1) // 2)[has]
    high = (first + count // 2)[has]
    out[has] = (gaps_sorted[low].astype(float) + gaps_sorted[high].astype(float)) / 2
    return out


def discount_sensitivity(lines: pd.DataFrame, edges=(0.2, 0.5)) -> pd.DataFrame:
    """Share of a customer's spend bought on discount (lines with ``discount > 0``) and its band:
    ``low`` below edges[0], ``medium``, ``high`` from edges[1]: ``customer_id, discount_share,
    discount_sensitivity``."""
    lines = rows_where(lines, lines["amount"] > 0, ["customer_id", "amount", "discount"])
    on_discount = pd.to_numeric(lines["discount"], errors="coerce").fillna(0) > 0
    codes, ids = customer_codes(lines["customer_id"])
    frame = pd.DataFrame({"amount": lines["amount"].to_numpy(float), "discounted": lines["amount"].where(on_discount, 0.0).to_numpy(float)})
    per = sums_by_key(frame, codes, len(ids))
    share = per["discounted"] / per["amount"]
    label = np.select([share >= edges[1], share >= edges[0]], ["high", "medium"], default="low")
    return pd.DataFrame({"customer_id": ids[per.index.to_numpy()], "discount_share": share.to_numpy(), "discount_sensitivity": label})


def weekday_weekend(orders: pd.DataFrame | None, at, weekend_share: float = 0.5, *, bought: tuple | None = None) -> pd.DataFrame:
    """``weekend`` shoppers make at least ``weekend_share`` of their purchase days on Saturday or
    Sunday, the others are ``weekday``: ``customer_id, weekend_share, weekday_weekend``. ``bought``:
    ``purchase_days(orders, at)`` when the caller has it."""
    code, day, ids = bought if bought is not None else purchase_days(orders, pd.Timestamp(at).normalize())
    weekend = ((day + 3) % 7) >= 5  # day 0 = 1970-01-01, a Thursday: Monday = 0
    starts = _starts(code)
    share = np.add.reduceat(weekend.astype(float), starts) / np.diff(np.r_[starts, len(code)]) if len(starts) else np.array([])
    return pd.DataFrame({"customer_id": ids[code[starts]], "weekend_share": share,
                         "weekday_weekend": np.where(share >= weekend_share, "weekend", "weekday")})


def return_behaviour(orders: pd.DataFrame, high_share: float = 0.2) -> pd.DataFrame:
    """Returned amount as a share of gross spend per customer (clean orders: ``gross_amount``,
    ``returned_amount`` <= 0), and ``high return`` from ``high_share``, else ``low return``."""
    codes, ids = customer_codes(orders["customer_id"])
    per = sums_by_key(orders[["gross_amount", "returned_amount"]].reset_index(drop=True), codes, len(ids))
    share = -per["returned_amount"] / per["gross_amount"]
    return pd.DataFrame({"customer_id": ids[per.index.to_numpy()], "return_share": share.to_numpy(),
                         "return_behaviour": np.where(share.to_numpy() >= high_share, "high return", "low return")})


# --------------------------------------------------------------------------- labels


def label(tag, tag_group: str | None = None):
    """A tag as the report shows it: the tag itself in English, translated in another language
    (lifecycle stages, bands, ``<channel> only`` ...). Data values (regions, categories, channels)
    stay as they are. ``customer_tags.csv`` keeps the English tags: the CRM's tags do not change
    with the report's language."""
    if i18n.lang() == "en" or not isinstance(tag, str):
        return tag
    if tag_group in (None, "purchase_cadence"):
        if m := re.fullmatch(r"<= (\d+) days", tag):
            return _("<= {days} days", days=m[1])
        if m := re.fullmatch(r"(\d+)-(\d+) days", tag):
            return _("{low}-{high} days", low=m[1], high=m[2])
        if m := re.fullmatch(r"> (\d+) days", tag):
            return _("> {days} days", days=m[1])
    if tag_group in (None, "channel_preference") and (m := re.fullmatch(r"(.+) only", tag)):
        return _("{channel} only", channel=i18n.name(m[1]))
    return i18n.name(tag)


def labelled(head: str, text: str) -> str:
    """``head: text`` with the colon of the report's language (``地区：华东`` in Chinese)."""
    return f"{head}{'：' if i18n.lang() == 'zh' else ': '}{text}"


# --------------------------------------------------------------------------- long table and TGI


def tag_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The tags of one tag group as ``long_tags`` makes them, as integer codes: each value's tag
    (-1 for a missing value: no tag) and the tags' texts (``astype(str)`` of the values), numbered in
    order of appearance."""
    values = values.astype(object)
    if _is_text(values):  # text already: factorize as it is (missing values get -1)
        codes, uniques = pd.factorize(values.to_numpy())
        return codes.astype(np.int64), np.asarray(uniques, dtype=object)
    present = values.notna().to_numpy()
    codes = np.full(len(values), -1, dtype=np.int64)
    texts = np.array([], dtype=object)
    if present.any():  # numbers and other values: the text of each value, as astype(str) (1 and "1" one tag, 1 and 1.0 two)
        codes[present], texts = pd.factorize(values[present].astype(str).to_numpy())
    return codes, np.asarray(texts, dtype=object)


@dataclass
class CodedTags:
    """The long tag table ``(customer_id, tag_group, tag)`` of a wide table (one row per customer,
    a column per tag group) kept as one integer code per customer and tag group: 13M tags of 1M
    customers are 12 arrays of 1M codes instead of 13M rows of Python strings. ``frame()`` is the
    long table itself; ``tgi_table`` counts from the codes (``encoded=``)."""

    customer_ids: np.ndarray | pd.api.extensions.ExtensionArray  # per row of the wide table: its customer id, as the wide table has it
    groups: list[str]  # tag groups, in order
    codes: list[np.ndarray]  # per tag group: each row's tag, -1 for none
    texts: list[np.ndarray]  # per tag group: its distinct tags by code (object arrays of str)

    def frame(self) -> pd.DataFrame:
        """The long table: tag group by tag group, customers in the wide table's order, rows
        without a tag left out (``long_tags``)."""
        rows = [np.flatnonzero(codes >= 0) for codes in self.codes]
        if not self.groups:
            return pd.DataFrame(columns=["customer_id", "tag_group", "tag"])
        offsets = np.cumsum([0] + [len(t) for t in self.texts])
        every_text = np.concatenate([np.asarray(t, dtype=object) for t in self.texts] + [np.array([], dtype=object)])
        at = np.concatenate(rows)
        return pd.DataFrame({  # three blocks, not one consolidated copy of 13M x 3 pointers
            "customer_id": self.customer_ids[at] if isinstance(self.customer_ids, np.ndarray) else self.customer_ids.take(at),
            "tag_group": np.repeat(np.asarray(self.groups, dtype=object), [len(r) for r in rows]),
            "tag": every_text[np.concatenate([offsets[i] + codes[r] for i, (codes, r) in enumerate(zip(self.codes, rows))])],
        }, copy=False)

    def counts(self) -> pd.DataFrame:
        """Per tag group (sorted): its customers and distinct tags, as ``frame().groupby("tag_group").agg(customers=
        ("customer_id", "nunique"), tags=("tag", "nunique"))`` counts them, from the codes (that groupby of 13M rows of
        text took 4.6 s in the 1M-customer report, 2026-12-02)."""
        ids = pd.Index(self.customer_ids)
        one_row_each = known_unique(ids) and not ids.hasnans
        rows = []
        for group, codes, texts in sorted(zip(self.groups, self.codes, self.texts), key=lambda item: item[0]):
            tagged = codes >= 0
            if not tagged.any():
                continue
            customers = int(tagged.sum()) if one_row_each else ids[tagged].nunique()
            rows.append((group, customers, len(set(np.asarray(texts, dtype=object)[np.unique(codes[tagged])]))))
        return pd.DataFrame(rows, columns=["tag_group", "customers", "tags"]).astype({"customers": "int64", "tags": "int64"})

    @cached_property
    def text_ids(self) -> pd.Index:
        """The customer ids as text, one per row (made once for the several TGI tables)."""
        return pd.Index(pd.Series(self.customer_ids, dtype=object).astype(str).to_numpy())


def coded_tags(wide: pd.DataFrame, groups: list[str]) -> CodedTags:
    """``CodedTags`` of the tag groups of ``wide`` (a column per group; groups it lacks are left
    out), customers from its ``customer_id`` column."""
    present = [g for g in groups if g in wide]
    coded = [tag_codes(wide[g]) for g in present]
    ids = wide["customer_id"]
    return CodedTags(ids.to_numpy() if isinstance(ids.dtype, np.dtype) else ids.array, present, [c for c, _t in coded], [t for _c, t in coded])


def long_tags(wide: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """``(customer_id, tag_group, tag)`` from one row per customer with a column per tag group
    (missing values give no tag)."""
    return coded_tags(wide, groups).frame()


def two_proportion_p(k1, n1, k2, n2) -> np.ndarray:
    """Two-sided p-value of the pooled two-proportion z-test (NaN where undefined)."""
    k1, n1, k2, n2 = (np.asarray(v, float) for v in (k1, n1, k2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (k1 + k2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (k1 / n1 - k2 / n2) / se
    from scipy.stats import norm

    return np.where(se > 0, 2 * norm.sf(np.abs(z)), np.nan)


@dataclass
class EncodedTags:
    """A long tag table as integer codes, made once for the several TGI tables of one table."""

    customers: pd.Index  # distinct customer ids (text)
    customer: np.ndarray  # per row: its customer's position in ``customers``
    pairs: pd.MultiIndex  # distinct (tag_group, tag)
    pair: np.ndarray  # per row: its pair's position in ``pairs``


def encode_tags(tags: pd.DataFrame) -> EncodedTags:
    customer, customers = pd.factorize(tags["customer_id"].astype(str).to_numpy())
    # (tag_group, tag) pairs numbered through one integer per row: factorizing a MultiIndex of 13M rows took 20 s
    kind, kinds = pd.factorize(tags["tag_group"].to_numpy())
    tag, tag_names = pd.factorize(tags["tag"].to_numpy())
    pair, combined = pd.factorize(kind.astype(np.int64) * max(len(tag_names), 1) + tag)
    pairs = pd.MultiIndex.from_arrays([np.asarray(kinds, dtype=object)[combined // max(len(tag_names), 1)],
                                       np.asarray(tag_names, dtype=object)[combined % max(len(tag_names), 1)]])
    return EncodedTags(pd.Index(customers), customer.astype(np.int64), pairs, pair.astype(np.int64))


TGI_COLUMNS = ["group", "tag_group", "tag", "n_group", "n_tag_group", "share_group", "n_all", "n_tag_all", "share_all", "tgi",
               "p_value", "p_adjusted", "small"]


@dataclass
class _TagCounts:
    """What a TGI table is made of: the (tag group, tag) pairs held by the customers counted, their tag
    group's number (``kind``), and customers per pair, per tag group, per group x pair and group x tag group."""

    tag_group: np.ndarray  # per pair
    tag: np.ndarray  # per pair
    kind: np.ndarray  # per pair: its tag group's number (tag groups numbered in order of first pair)
    n_tag_all: np.ndarray  # per pair
    n_all: np.ndarray  # per tag group: customers with a tag in it
    n_tag_group: np.ndarray  # group x pair
    n_group: np.ndarray  # group x tag group: the group's customers with a tag in it


def _long_counts(encoded: EncodedTags, ids: pd.Index, group_code: np.ndarray, n_groups: int, skip) -> _TagCounts | None:
    """Counted from a long table's codes (rows: customer, pair); distinct customers by sorting."""
    position = ids.get_indexer(encoded.customers)[encoded.customer]
    pair_group = encoded.pairs.get_level_values(0).to_numpy()
    inside = (position >= 0) & ~np.isin(pair_group, list(skip))[encoded.pair]
    if not inside.any():
        return None
    # the pairs and tag groups present among these rows, numbered from 0
    present = np.zeros(len(encoded.pairs), dtype=bool)
    present[encoded.pair[inside]] = True
    renumber = np.cumsum(present) - 1
    pair_code = renumber[encoded.pair[inside]]
    pairs_seen = encoded.pairs[present]
    pair_kind, kinds = pd.factorize(pairs_seen.get_level_values(0).to_numpy())
    kind_code = pair_kind[pair_code]
    customer = position[inside].astype(np.int64)
    group = group_code[customer].astype(np.int64)  # missing groups: -1 (counted in the totals, not as a group)
    n_customers, n_kinds, n_pairs = len(ids), len(kinds), len(pairs_seen)
    n_all = np.bincount(unique_sorted(kind_code.astype(np.int64) * n_customers + customer) // n_customers, minlength=n_kinds)
    grouped = group >= 0
    n_tag_group = np.bincount(group[grouped] * n_pairs + pair_code[grouped], minlength=n_groups * n_pairs).reshape(n_groups, n_pairs)
    group_kind = unique_sorted((group[grouped] * n_kinds + kind_code[grouped]) * n_customers + customer[grouped]) // n_customers
    n_group = np.bincount(group_kind, minlength=n_groups * n_kinds).reshape(n_groups, n_kinds)
    return _TagCounts(pairs_seen.get_level_values(0).to_numpy(), pairs_seen.get_level_values(1).to_numpy(), pair_kind.astype(np.int64),
                      np.bincount(pair_code, minlength=n_pairs), n_all, n_tag_group, n_group)


def _coded_counts(coded: CodedTags, ids: pd.Index, group_code: np.ndarray, n_groups: int, skip) -> _TagCounts | None:
    """Counted from a wide table's codes, tag group by tag group over arrays of one entry per
    customer: each customer has at most one tag in a tag group, so customers are rows and nothing is
    sorted (the long table's codes are 13M rows at 1M customers, four sorts of them per table). The
    same counts and pair order as ``_long_counts(encode_tags(coded.frame()))``, which is what is done
    when a tag group or a customer repeats."""
    customers = coded.text_ids
    if len(ids) == len(customers) and np.array_equal(ids.to_numpy(), customers.to_numpy()) and known_unique(customers):
        position = np.arange(len(customers))  # the customers grouped are the coded ones, in their order: no lookup
    else:
        position = ids.get_indexer(customers)  # (raises for repeated ids in groups, as the long table's count does)
    found = position >= 0
    if len(set(coded.groups)) < len(coded.groups) or np.bincount(position[found], minlength=len(ids)).max(initial=0) > 1:
        return _long_counts(encode_tags(coded.frame()), ids, group_code, n_groups, skip)
    row_group = np.full(len(position), -1, dtype=np.int64)  # -1: no group (counted in the totals only)
    row_group[found] = group_code[position[found]]
    parts = []
    for tag_group, codes, texts in zip(coded.groups, coded.codes, coded.texts):
        inside = found & (codes >= 0)
        if tag_group in skip or not inside.any():
            continue
        tag = codes[inside]
        n_tag_all = np.bincount(tag, minlength=len(texts))
        seen = n_tag_all > 0
        n_pairs = int(seen.sum())
        pair = (np.cumsum(seen) - 1)[tag]
        group = row_group[inside]
        grouped = group >= 0
        parts.append((tag_group, np.asarray(texts, dtype=object)[seen], n_tag_all[seen], len(tag),
                      np.bincount(group[grouped] * n_pairs + pair[grouped], minlength=n_groups * n_pairs).reshape(n_groups, n_pairs),
                      np.bincount(group[grouped], minlength=n_groups)))
    if not parts:
        return None
    return _TagCounts(np.concatenate([np.full(len(part[1]), part[0], dtype=object) for part in parts]),
                      np.concatenate([part[1] for part in parts]),
                      np.concatenate([np.full(len(part[1]), k, dtype=np.int64) for k, part in enumerate(parts)]),
                      np.concatenate([part[2] for part in parts]), np.array([part[3] for part in parts], dtype=np.int64),
                      np.concatenate([part[4] for part in parts], axis=1), np.stack([part[5] for part in parts], axis=1))


def tgi_table(tags: pd.DataFrame | None, groups: pd.Series, *, min_n: int = 30, correction: str = "holm",
              encoded: EncodedTags | CodedTags | None = None, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """TGI of every tag in every group. ``tags`` is the long table; ``groups`` maps customer id ->
    group (tier, segment, lifecycle stage ...). Shares are among the customers of a tag group who
    have a tag in it (a missing region is not a region). Rows where fewer than ``min_n`` customers of
    the group hold the tag and fewer than ``min_n`` were expected to are kept but not tested
    (``small``). Columns: ``group, tag_group, tag,
    n_group, n_tag_group, share_group, n_all, n_tag_all, share_all, tgi, p_value, p_adjusted, small``.

    ``encoded``: ``encode_tags(tags)``, or the ``CodedTags`` the long table was made from
    (``tags = coded.frame()``), when several tables are made from one long table (``tags`` is then
    not read and may be None); ``skip``: tag
    groups left out (the lifecycle stage when the groups are lifecycle stages)."""
    from .abtest import adjust

    # counted on integer codes: a merge and groupbys of the long table's strings took minutes at 1M customers
    # (13M tags; the profile builds three TGI tables from one encoding)
    encoded = encoded if encoded is not None else encode_tags(tags)
    ids = pd.Index(groups.index.astype(str))
    group_code, group_names = pd.factorize(groups.to_numpy())  # missing groups: -1 (counted in the totals, not as a group)
    count = _coded_counts if isinstance(encoded, CodedTags) else _long_counts
    counts = count(encoded, ids, group_code, len(group_names), skip)
    if counts is None:
        return pd.DataFrame(columns=TGI_COLUMNS)
    n_groups, n_pairs = len(group_names), len(counts.tag)
    # every (group, tag) pair, including tags a group has none of (groups in order of appearance, as factorize numbers them)
    g_index = np.repeat(np.arange(n_groups), n_pairs)
    p_index = np.tile(np.arange(n_pairs), n_groups)
    out = pd.DataFrame({
        "group": np.asarray(group_names, dtype=object)[g_index],
        "tag_group": counts.tag_group[p_index],
        "tag": counts.tag[p_index],
        "n_group": counts.n_group[g_index, counts.kind[p_index]],
        "n_tag_group": counts.n_tag_group[g_index, p_index],
        "n_tag_all": counts.n_tag_all[p_index],
        "n_all": counts.n_all[counts.kind[p_index]],
    })
    out["n_group"] = out["n_group"].where(out["n_group"] > 0)
    out = out[out["n_group"].notna()].fillna({"n_tag_group": 0}).astype({"n_tag_group": int, "n_group": int})
    out["share_group"] = out["n_tag_group"] / out["n_group"]
    out["share_all"] = out["n_tag_all"] / out["n_all"]
    out["tgi"] = 100 * out["share_group"] / out["share_all"]
    # too few to test: fewer than min_n customers of the group hold the tag AND fewer were expected to
    # (so a tag that is common overall but nearly absent from the group is still tested)
    out["small"] = (out["n_tag_group"] < min_n) & (out["n_group"] * out["share_all"] < min_n)
    rest_k, rest_n = out["n_tag_all"] - out["n_tag_group"], out["n_all"] - out["n_group"]
    p = two_proportion_p(out["n_tag_group"], out["n_group"], rest_k, rest_n)
    out["p_value"] = np.where(out["small"] | (rest_n <= 0), np.nan, p)
    out["p_adjusted"] = adjust(out["p_value"].to_numpy(), correction)
    return out[TGI_COLUMNS].sort_values(["group", "tag_group", "tag"], kind="stable").reset_index(drop=True)


def distinctive(tgi: pd.DataFrame, group, *, alpha: float = 0.05, top: int = 5, over: bool = True) -> pd.DataFrame:
    """A group's most distinctive tags: significant after correction, not small, TGI above 100 (or
    below with ``over=False``), the largest departures from 100 first."""
    rows = tgi[(tgi["group"] == group) & ~tgi["small"] & (tgi["p_adjusted"] < alpha)]
    rows = rows[rows["tgi"] > 100] if over else rows[rows["tgi"] < 100]
    return rows.sort_values("tgi", ascending=not over, kind="stable").head(top).reset_index(drop=True)
