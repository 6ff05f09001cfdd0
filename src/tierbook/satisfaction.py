"""The ``satisfaction`` section: NPS and CSAT from the survey, with intervals, by tier, segment,
channel and region; tier differences tested; the monthly trend and response rates; the link to
customer value; item drivers; the most frequent terms of the free-text comments.

Counting: every clean survey response counts once (a customer who answered twice counts twice),
and every table shows both responses and distinct respondents. NPS = 100 x (share of promoters,
9-10, minus share of detractors, 0-6); its standard error is the trinomial one,
SE = 100 x sqrt([p(1-p) + d(1-d) + 2pd] / n) (p, d: promoter and detractor shares), and the
interval is the normal one, NPS +- z SE, clipped to [-100, 100]. CSAT is the share of answers of
4 or 5 on the 1-5 scale, with a Wilson score interval. Both assume independent responses: with
repeat respondents the intervals are slightly too narrow.

Tier, segment and value per customer come from the rfm and clv sections' ``customer_scores``
(responses of ids without a purchase before as_of, or without an id, count only overall); region
from the customers table when it has one. This section reads ``customer_scores`` and never writes
it. When the client has no survey, or too few answers, ``run_satisfaction_stage`` returns a stage
whose ``problem`` says so in one sentence, and the report goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import i18n
from .data import read_clean
from .i18n import _
from .params import Params
from .summary import first_positions
from .tables import signed_interval

CATEGORIES = ["detractor", "passive", "promoter"]
GROUPINGS = {"tier": "tier", "segment": "segment_zh", "channel": "channel", "region": "region"}
ITEM_PREFIX = "item_"  # survey contract columns holding item scores (delivery, product, service ...)


# --------------------------------------------------------------------------- estimates


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def nps_category(nps: pd.Series) -> pd.Series:
    """detractor (0-6), passive (7-8), promoter (9-10); missing stays missing."""
    values = pd.to_numeric(nps, errors="coerce")
    out = pd.Series(pd.NA, index=nps.index, dtype="object")
    out[values <= 6] = "detractor"
    out[(values >= 7) & (values <= 8)] = "passive"
    out[values >= 9] = "promoter"
    return pd.Categorical(out, categories=CATEGORIES)


def nps_estimate(nps, confidence: float = 0.95) -> dict:
    """NPS of 0-10 answers (missing ignored) with counts, shares, the trinomial standard error and
    a normal interval clipped to [-100, 100].

    When every answer falls in one category the standard error is 0 and the normal interval has no
    width (three promoters would give +100 to +100). The interval is then the range of NPS the
    Wilson interval of that category's share allows, the rest of the answers taken as the worst
    (or best) case: all promoters, Wilson lower bound p_lo: 100 (2 p_lo - 1) to 100; all detractors
    the mirror image; all passives -100 (1 - q_lo) to 100 (1 - q_lo)."""
    values = pd.to_numeric(pd.Series(nps), errors="coerce").dropna().to_numpy(dtype=float)
    n = len(values)
    promoters, detractors = int((values >= 9).sum()), int((values <= 6).sum())
    out = {"n_nps": n, "promoters": promoters, "passives": n - promoters - detractors, "detractors": detractors}
    if n == 0:
        return out | dict.fromkeys(["promoter_share", "passive_share", "detractor_share", "nps", "nps_se", "nps_lower", "nps_upper"], np.nan)
    p, d = promoters / n, detractors / n
    se = 100 * np.sqrt((p * (1 - p) + d * (1 - d) + 2 * p * d) / n)
    score = 100 * (p - d)
    z = _z(confidence)
    lower, upper = max(-100.0, score - z * se), min(100.0, score + z * se)
    if se == 0:
        rest = 1 - wilson_interval(n, n, confidence)[0]  # the largest share the other categories may have
        lower, upper = {100.0: (100 * (1 - 2 * rest), 100.0), -100.0: (-100.0, -100 * (1 - 2 * rest))}.get(score, (-100 * rest, 100 * rest))
    return out | {"promoter_share": p, "passive_share": 1 - p - d, "detractor_share": d, "nps": score, "nps_se": se,
                  "nps_lower": lower, "nps_upper": upper}


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (Wilson 1927; Agresti & Coull 1998)."""
    if n == 0:
        return np.nan, np.nan
    z = _z(confidence)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def csat_estimate(csat, confidence: float = 0.95) -> dict:
    """CSAT: the share of 1-5 answers that are 4 or 5, with a Wilson interval."""
    values = pd.to_numeric(pd.Series(csat), errors="coerce").dropna().to_numpy(dtype=float)
    n, satisfied = len(values), int((values >= 4).sum())
    lower, upper = wilson_interval(satisfied, n, confidence)
    return {"n_csat": n, "satisfied": satisfied, "csat": satisfied / n if n else np.nan, "csat_lower": lower, "csat_upper": upper,
            "mean_csat": float(values.mean()) if n else np.nan}


def score_table(responses: pd.DataFrame, by: str | None = None, order: list | None = None, min_n: int = 30,
                confidence: float = 0.95) -> pd.DataFrame:
    """NPS and CSAT with their n and intervals, overall (``by`` None) or per group of ``by``
    (groups in ``order`` when given, else by responses); ``nps_below_min_n`` / ``csat_below_min_n``
    flag groups whose n is below ``min_n`` (greyed in the report)."""
    def row(frame: pd.DataFrame) -> dict:
        ids = frame["customer_id"].dropna() if "customer_id" in frame else pd.Series(dtype=str)
        return ({"responses": len(frame), "respondents": ids.nunique()} | nps_estimate(frame["nps"], confidence)
                | csat_estimate(frame["csat"], confidence))

    if by is None:
        out = pd.DataFrame([row(responses)])
    else:
        # only the columns ``row`` reads go through the filters, and the values present are taken of the distinct ones, not
        # of a set of every response's (the tier, segment, region and monthly tables at 1M customers: 1.7 -> 0.7 s CPU,
        # 2026-12-02)
        frame = responses.loc[responses[by].notna(), [c for c in ("customer_id", "nps", "csat") if c in responses and c != by] + [by]]
        groups = order if order is not None else list(frame[by].value_counts().index)
        present = set(frame[by].drop_duplicates())  # the values as iterating the column gives them (Timestamps, not datetime64)
        out = pd.DataFrame([{by: g} | row(frame[frame[by] == g]) for g in groups if g in present])
        if out.empty:
            return out
    out["nps_below_min_n"] = out["n_nps"] < min_n
    out["csat_below_min_n"] = out["n_csat"] < min_n
    return out


# --------------------------------------------------------------------------- tests between groups


def adjust_p(p_values, method: str = "holm") -> np.ndarray:
    """p-values adjusted for multiple testing: holm (Holm 1979, step-down Bonferroni), bonferroni,
    or bh (Benjamini-Hochberg false discovery rate)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    if method == "bh":
        return stats.false_discovery_control(p, method="bh")
    if method != "holm":
        raise ValueError(f"unknown p-value adjustment {method!r}")
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


@dataclass
class CategoryTest:
    """Chi-square test of independence of group and NPS category (promoter / passive / detractor)."""

    table: pd.DataFrame  # responses: groups x categories
    chi2: float
    df: int
    p_value: float
    n: int
    cramers_v: float
    min_expected: float  # below 5 the chi-square approximation is doubtful


def category_test(responses: pd.DataFrame, by: str, order: list | None = None) -> CategoryTest | None:
    """Pearson's chi-square (no continuity correction) on the groups x category counts; None with
    fewer than two groups holding NPS answers."""
    frame = responses[responses[by].notna() & responses["category"].notna()]
    table = pd.crosstab(frame[by], frame["category"]).reindex(columns=CATEGORIES, fill_value=0)
    if order is not None:
        table = table.reindex([g for g in order if g in table.index])
    table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return None
    chi2, p, df, expected = stats.chi2_contingency(table.to_numpy(), correction=False)
    n = int(table.to_numpy().sum())
    v = float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
    return CategoryTest(table=table, chi2=float(chi2), df=int(df), p_value=float(p), n=n, cramers_v=v, min_expected=float(expected.min()))


def pairwise_nps(groups: pd.DataFrame, by: str, method: str = "holm", confidence: float = 0.95) -> pd.DataFrame:
    """Every pair of groups of a ``score_table``: NPS difference, its interval (independent
    groups: SE = sqrt(SE_a^2 + SE_b^2)), two-sided z-test p-value and the p-value adjusted for the
    number of pairs with ``method``."""
    rows = []
    usable = groups[groups["n_nps"] > 0]
    z = _z(confidence)
    for (_ia, a), (_ib, b) in combinations(usable.iterrows(), 2):
        diff = a["nps"] - b["nps"]
        se = float(np.hypot(a["nps_se"], b["nps_se"]))
        p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
        rows.append({"group_a": a[by], "group_b": b[by], "n_a": int(a["n_nps"]), "n_b": int(b["n_nps"]), "nps_a": a["nps"], "nps_b": b["nps"],
                     "difference": diff, "lower": diff - z * se, "upper": diff + z * se, "p_value": p})
    out = pd.DataFrame(rows, columns=["group_a", "group_b", "n_a", "n_b", "nps_a", "nps_b", "difference", "lower", "upper", "p_value"])
    out["p_adjusted"] = adjust_p(out["p_value"].to_numpy(), method)
    out["significant"] = out["p_adjusted"] < 1 - confidence
    return out


# --------------------------------------------------------------------------- trend, reach, value


def monthly(responses: pd.DataFrame, confidence: float, min_n: int) -> pd.DataFrame:
    """NPS and CSAT per calendar month of the response date, with the responses behind each."""
    frame = responses[[c for c in ("customer_id", "nps", "csat") if c in responses]].assign(
        month=responses["response_date"].dt.to_period("M").dt.to_timestamp())
    return score_table(frame, "month", sorted(frame["month"].dropna().unique()), min_n, confidence)


def response_rates(customers: pd.DataFrame, responses: pd.DataFrame, by: str, order: list | None, confidence: float) -> pd.DataFrame:
    """Share of each group's customers (customer_scores) who answered the survey at least once."""
    answered = responses["customer_id"].dropna()
    found = first_positions(customers["customer_id"], answered)  # not isin's 1M Python strings: 0.5 -> 0.3 s CPU at 1M customers
    is_respondent = found >= 0 if found is not None else customers["customer_id"].isin(set(answered)).to_numpy()
    frame = customers.assign(answered=is_respondent)
    out = frame.groupby(by, observed=True).agg(customers=("customer_id", "size"), respondents=("answered", "sum"))
    out = out.reindex([g for g in (order or out.index) if g in out.index]).rename_axis(by).reset_index()
    out["respondents"] = out["respondents"].astype(int)
    out["response_rate"] = out["respondents"] / out["customers"]
    bounds = [wilson_interval(k, n, confidence) for k, n in zip(out["respondents"], out["customers"])]
    out["rate_lower"], out["rate_upper"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return out


def value_correlation(responses: pd.DataFrame, measures: list[str], confidence: float) -> pd.DataFrame:
    """Spearman rank correlation of each response's 0-10 score with its customer's value measures;
    the interval is Fisher's z with the variance 1.06 / (n - 3) of Fieller, Hartley & Pearson (1957)."""
    rows = []
    z = _z(confidence)
    for measure in measures:
        pair = responses[["nps", measure]].dropna().astype(float)
        n = len(pair)
        if n < 10 or pair[measure].nunique() < 2 or pair["nps"].nunique() < 2:
            continue
        rho, p = stats.spearmanr(pair["nps"], pair[measure])
        half = z * np.sqrt(1.06 / (n - 3))
        rows.append({"measure": measure, "n": n, "spearman": float(rho), "lower": float(np.tanh(np.arctanh(rho) - half)),
                     "upper": float(np.tanh(np.arctanh(rho) + half)), "p_value": float(p)})
    return pd.DataFrame(rows, columns=["measure", "n", "spearman", "lower", "upper", "p_value"])


def value_deciles(responses: pd.DataFrame, measure: str, n_bins: int, confidence: float, min_n: int) -> pd.DataFrame:
    """NPS by decile (``n_bins`` bins) of the respondents' value: customers are ranked by
    ``measure`` (ties in id order) into equal-sized bins, 1 = lowest value; every response of a
    customer goes to the customer's bin."""
    customers = responses.dropna(subset=["customer_id", measure]).drop_duplicates("customer_id")[["customer_id", measure]]
    if len(customers) < n_bins:
        return pd.DataFrame()
    ranks = customers.sort_values("customer_id")[measure].rank(method="first")
    bins = pd.qcut(ranks, n_bins, labels=range(1, n_bins + 1)).astype(int)
    decile = customers.assign(value_decile=bins.reindex(customers.index))
    position = first_positions(responses["customer_id"], decile["customer_id"])
    if position is not None:  # the inner merge's rows, in the responses' order, without hashing the ids as Python strings
        matched = position >= 0
        frame = responses.loc[matched, [c for c in ("customer_id", "nps", "csat") if c in responses]].assign(
            value_decile=decile["value_decile"].to_numpy()[position[matched]])
    else:
        frame = responses.merge(decile[["customer_id", "value_decile"]], on="customer_id", how="inner")
    table = score_table(frame, "value_decile", list(range(1, n_bins + 1)), min_n, confidence)
    bounds = decile.groupby("value_decile")[measure].agg(value_from="min", value_to="max")
    return table.join(bounds, on="value_decile")


# --------------------------------------------------------------------------- drivers


class DriverRegression:
    """OLS of the 0-10 score on the item scores (one coefficient per item: NPS points per item
    point, the other items held fixed), with classical standard errors and t intervals."""

    def fit(self, responses: pd.DataFrame, items: list[str], confidence: float = 0.95) -> DriverRegression:
        frame = responses[["nps", *items]].dropna().astype(float)
        X = np.column_stack([np.ones(len(frame)), frame[items].to_numpy()])
        y = frame["nps"].to_numpy()
        n, k = X.shape
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = y - X @ coef
        sigma2 = resid @ resid / (n - k)
        se = np.sqrt(np.diag(sigma2 * np.linalg.pinv(X.T @ X)))
        t = stats.t.ppf(0.5 + confidence / 2, n - k)
        names = ["intercept", *items]
        self.params_ = pd.Series(coef, index=names)
        self.standard_errors_ = pd.Series(se, index=names)
        self.n_ = n
        self.r_squared_ = float(1 - resid @ resid / ((y - y.mean()) @ (y - y.mean())))
        self.summary = pd.DataFrame({
            "item": [name.removeprefix(ITEM_PREFIX) for name in names], "estimate": coef, "standard_error": se,
            "lower": coef - t * se, "upper": coef + t * se, "p_value": 2 * stats.t.sf(np.abs(coef / se), n - k),
            "mean_score": [np.nan, *frame[items].mean()]})
        return self


# --------------------------------------------------------------------------- comments

# Function words dropped from the term counts; anything else of two letters or one CJK character
# and more counts (好, 贵, 慢 carry the meaning of many Chinese comments).
STOP_WORDS = set(
    "的 了 很 太 也 都 就 还 但 是 在 有 和 我 你 他 她 它 们 会 再 又 这 那 个 啊 吧 呢 吗 么 着 过 把 被 让 给 对 与 及 有点 非常 比较 真 就是 还是 "
    "the a an and or but is are was were be been it its this that these those to of in on at for with as by my our your i we "
    "you they he she me us them very so too just really also there here have has had do does did will would can could".split())
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[\w\u3400-\u9fff]")


def tokenize(text: str, extra_stop_words: frozenset[str] = frozenset()) -> list[str]:
    """Words of a Chinese or English comment: jieba segmentation (it passes Latin words through),
    lower-cased, punctuation, digits, stop words and one-letter Latin tokens dropped."""
    import jieba

    words = []
    for token in jieba.lcut(str(text)):
        token = token.strip().lower()
        if not token or not _WORD.search(token) or token.isdigit() or token in STOP_WORDS or token in extra_stop_words:
            continue
        if len(token) == 1 and not _CJK.match(token):
            continue
        words.append(token)
    return words


def top_terms(responses: pd.DataFrame, top_n: int, extra_stop_words=()) -> pd.DataFrame:
    """The ``top_n`` most frequent terms of each NPS category's comments: comments containing the
    term (a term counts once per comment), their share of the category's comments, and the share
    of the other categories' comments containing it (a term common everywhere says little)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    stop = frozenset(w.lower() for w in extra_stop_words)
    frame = responses[responses["category"].notna() & responses["comment"].fillna("").str.strip().ne("")]
    # each distinct text segmented once, and its terms counted once per comment of it: the 137,508 comments of the
    # 1M-customer demo are 6,566 texts (top_terms took 4.2-4.9 s CPU, 0.75 s so, 2026-12-02)
    comments = frame["comment"].to_numpy(dtype=object)
    if pd.api.types.infer_dtype(comments, skipna=False) != "string":  # as tokenize reads them: str(text)
        comments = np.array([str(text) for text in comments], dtype=object)
    text_of_comment, texts = pd.factorize(comments)
    bags = [set(tokenize(text, stop)) for text in texts]
    rows = []
    for category in CATEGORIES[::-1]:
        inside = (frame["category"] == category).to_numpy(dtype=bool)
        n_inside, n_outside = int(inside.sum()), int((~inside).sum())
        if not n_inside:
            continue
        counts = _comments_with_term(bags, np.bincount(text_of_comment[inside], minlength=len(texts)))
        other = _comments_with_term(bags, np.bincount(text_of_comment[~inside], minlength=len(texts)))
        for term, count in counts.sort_index().sort_values(ascending=False, kind="stable").head(top_n).items():
            rows.append({"category": category, "term": term, "comments": int(count), "share": count / n_inside,
                         "share_elsewhere": other.get(term, 0) / n_outside if n_outside else np.nan, "category_comments": n_inside})
    return pd.DataFrame(rows, columns=["category", "term", "comments", "share", "share_elsewhere", "category_comments"])


def _comments_with_term(bags: list[set], comments: np.ndarray) -> pd.Series:
    """Per term: the comments containing it, given the terms of each distinct text (``bags``) and
    its number of comments (``comments``); the counts ``value_counts`` gives of the terms of every
    comment's bag, as int64 and in no particular order."""
    counts: dict[str, int] = {}
    for bag, n in zip(bags, comments.tolist()):
        if n:
            for term in bag:
                counts[term] = counts.get(term, 0) + n
    return pd.Series(list(counts.values()), index=pd.Index(list(counts), dtype=object), dtype=np.int64)


# --------------------------------------------------------------------------- the stage


@dataclass
class SatisfactionStage:
    problem: str | None  # why there is nothing to report (no survey, too few answers); the rest is then None
    responses: pd.DataFrame | None = None  # one row per clean response, with category, tier, segment, value ...
    overall: pd.DataFrame | None = None
    groups: dict[str, pd.DataFrame] | None = None  # "tier", "segment", "channel", "region" -> score_table
    tier_test: CategoryTest | None = None
    pairwise: pd.DataFrame | None = None  # NPS between tiers
    monthly: pd.DataFrame | None = None
    response_rates: pd.DataFrame | None = None
    correlation: pd.DataFrame | None = None
    decile_measure: str | None = None
    deciles: pd.DataFrame | None = None
    drivers: DriverRegression | None = None
    drivers_note: str | None = None
    terms: pd.DataFrame | None = None
    terms_note: str | None = None
    unmatched: int = 0  # responses without a customer of customer_scores (anonymous or no purchase before as_of)
    tier_order: list[str] | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


CUSTOMER_COLUMNS = ["customer_id", "tier", "segment_zh", "segment_en", "named_segment", "monetary_total", "clv"]


def load_responses(params: Params, run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's clean survey with each response's category and its customer's tier, segments,
    value and region; and the customers of customer_scores (for response rates)."""
    survey = pd.read_parquet(run_dir / "data" / "survey.parquet")
    if "customer_id" in survey:
        survey["customer_id"] = survey["customer_id"].map(lambda v: None if pd.isna(v) else str(v))
    else:
        survey["customer_id"] = None
    for column in ("nps", "csat"):
        survey[column] = pd.to_numeric(survey[column], errors="coerce").astype(float)
    survey["category"] = nps_category(survey["nps"])
    # of customer_scores (33 columns at 1M customers) only the columns kept, and of the customers table the ids and regions
    scores_file = run_dir / "data" / "customer_scores.parquet"
    scores = read_clean(scores_file, columns=[c for c in _parquet_columns(scores_file) if c in CUSTOMER_COLUMNS])
    scores["customer_id"] = scores["customer_id"].astype(str)
    keep = [c for c in CUSTOMER_COLUMNS if c in scores]
    customers_file = run_dir / "data" / "customers.parquet"
    if customers_file.exists():
        members = pd.read_parquet(customers_file, columns=[c for c in _parquet_columns(customers_file) if c in ("customer_id", "region")])
        if "region" in members and members["region"].notna().any():
            scores = _left_join(scores, members[["customer_id", "region"]], first_of_id=True)
            keep.append("region")
    survey = survey.drop(columns=[c for c in keep if c != "customer_id" and c in survey])
    responses = _left_join(survey, scores[keep])
    return responses, scores[keep]


def _parquet_columns(path: Path) -> list[str]:
    """The columns of a Parquet file written from pandas, from its schema (nothing is read)."""
    import pyarrow.parquet as pq

    return [name for name in pq.read_schema(path).names if not name.startswith("__index_level_")]


def _left_join(frame: pd.DataFrame, other: pd.DataFrame, first_of_id: bool = False) -> pd.DataFrame:
    """``frame.merge(other, on="customer_id", how="left")``; ``first_of_id``: with ``other``'s ids made
    text (``astype(str)``) and only its first row per id. The ids are looked up in Arrow, not hashed as
    Python strings (load_responses at 1M customers, reading only the columns it uses as well: 4.5 -> 2.1 s
    CPU, 2026-12-02); the merge itself when the ids are not text, when ``other`` repeats an id it should
    not, or when nothing matches (then the merge decides the columns' types)."""
    ids = other["customer_id"]
    position = first_positions(frame["customer_id"], ids)
    if position is None and first_of_id:
        ids = ids.astype(str)
        position = first_positions(frame["customer_id"], ids)
    added = other.columns.drop("customer_id")
    if position is not None and not first_of_id and not unique_text(ids):
        position = None  # a repeated id repeats the rows of frame that match it
    if position is None or not (position >= 0).any() or added.isin(frame.columns).any():
        if first_of_id:
            other = other.assign(customer_id=ids.astype(str)).drop_duplicates("customer_id")
        return frame.merge(other, on="customer_id", how="left")
    out = frame.reset_index(drop=True)
    for column in added:  # filled as the merge fills: NaN (int -> float, bool -> object), <NA> in extension types
        values = other[column].array if isinstance(other[column].dtype, pd.api.extensions.ExtensionDtype) else other[column].to_numpy()
        out[column] = pd.api.extensions.take(values, position, allow_fill=True)
    return out


def unique_text(ids: pd.Series) -> bool:
    """Whether text ids are all different: at once when they are in increasing order, as the rfm
    stage writes customer_scores (counting the distinct ones of 1M took 0.4 s CPU, 2026-12-02)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(ids.to_numpy(dtype=object), type=pa.large_string())
    if len(text) < 2 or pc.all(pc.less(text[:-1], text[1:])).as_py():
        return True
    return pc.count_distinct(text).as_py() == len(text)


def run_satisfaction_stage(params: Params, run_dir: Path) -> SatisfactionStage:
    s = params.satisfaction
    if params.sources.survey is None:
        return SatisfactionStage(problem=_("This client has no satisfaction survey (no `sources.survey` in params), so there is no NPS or CSAT "
                                           "to report; the other sections do not need one."))
    responses, customers = load_responses(params, run_dir)
    scored = int((responses["nps"].notna() | responses["csat"].notna()).sum())
    if scored < s.min_responses:
        return SatisfactionStage(problem=_("The survey has only {scored:,} answers with an NPS or CSAT score, fewer than the {needed:,} this "
                                           "section needs (satisfaction.min_responses) for estimates worth showing.", scored=scored,
                                           needed=s.min_responses))
    order = [level.name for level in params.tiers.levels]
    conf, min_n = s.confidence, s.min_n
    groups = {}
    for name, column in GROUPINGS.items():
        if column in responses and responses[column].notna().any():
            groups[name] = score_table(responses, column, order if name == "tier" else None, min_n, conf)
    stage = SatisfactionStage(problem=None, responses=responses, overall=score_table(responses, None, None, min_n, conf), groups=groups,
                              monthly=monthly(responses, conf, min_n), unmatched=int(responses["tier"].isna().sum()), tier_order=order)
    if "tier" in groups:
        stage.tier_test = category_test(responses, "tier", order)
        stage.pairwise = pairwise_nps(groups["tier"], "tier", s.p_adjust, conf)
        stage.response_rates = response_rates(customers, responses, "tier", order, conf)
    measures = [m for m in ("clv", "monetary_total") if m in responses and responses[m].notna().any()]
    stage.correlation = value_correlation(responses, measures, conf)
    if measures:
        stage.decile_measure = measures[0]
        stage.deciles = value_deciles(responses, measures[0], s.value_bins, conf, min_n)
    stage.drivers, stage.drivers_note = _drivers(responses, s.min_responses, conf)
    stage.terms, stage.terms_note = _terms(responses, s.top_terms, s.stop_words)
    _write(stage, run_dir)
    return stage


def _drivers(responses: pd.DataFrame, min_rows: int, confidence: float) -> tuple[DriverRegression | None, str | None]:
    items = [c for c in responses.columns if c.startswith(ITEM_PREFIX) and responses[c].notna().any()]
    if not items:
        return None, _("The survey has no item scores (such as delivery, product or service: `item_*` columns of the survey contract), "
                       "so there is no driver analysis.")
    complete = int(responses[["nps", *items]].dropna().shape[0])
    if complete < max(min_rows, len(items) + 10):
        return None, _("Only {complete:,} responses have an NPS score and every item score ({items}); too few for a driver analysis.",
                       complete=complete, items=", ".join(i.removeprefix(ITEM_PREFIX) for i in items))
    return DriverRegression().fit(responses, items, confidence), None


def _terms(responses: pd.DataFrame, top_n: int, stop_words) -> tuple[pd.DataFrame | None, str | None]:
    if "comment" not in responses or responses["comment"].fillna("").str.strip().eq("").all():
        return None, _("The survey has no free-text comments, so there is no term analysis.")
    terms = top_terms(responses, top_n, stop_words)
    if terms.empty:
        return None, _("No comment has an NPS score next to it, so comments cannot be split by NPS category.")
    return terms, None


def _write(stage: SatisfactionStage, run_dir: Path) -> None:
    tables = run_dir / "tables"
    tables.mkdir(exist_ok=True)
    frames = {"satisfaction_overall": stage.overall, "satisfaction_monthly": stage.monthly, "satisfaction_pairwise_tiers": stage.pairwise,
              "satisfaction_response_rates": stage.response_rates, "satisfaction_value_correlation": stage.correlation,
              "satisfaction_by_value_decile": stage.deciles, "satisfaction_terms": stage.terms}
    frames |= {f"satisfaction_by_{name}": frame for name, frame in stage.groups.items()}
    if stage.tier_test is not None:
        t = stage.tier_test
        frames["satisfaction_tier_test"] = t.table.reset_index().assign(chi2=t.chi2, df=t.df, p_value=t.p_value, cramers_v=t.cramers_v)
    if stage.drivers is not None:
        frames["satisfaction_drivers"] = stage.drivers.summary.assign(n=stage.drivers.n_, r_squared=stage.drivers.r_squared_)
    for name, frame in frames.items():
        if frame is not None and not frame.empty:
            frame.to_csv(tables / f"{name}.csv", index=False, encoding="utf-8-sig")


# --------------------------------------------------------------------------- prose


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _nps_text(row) -> str:
    nps, lower, upper = signed_interval(row["nps"], row["nps_lower"], row["nps_upper"])
    return _("{nps} ({lower} to {upper}, n = {n:,})", nps=nps, lower=lower, upper=upper, n=int(row["n_nps"]))


def _join(items) -> str:
    """Items of an enumeration: ", " in English, the enumeration comma in Chinese."""
    return ("、" if i18n.lang() == "zh" else ", ").join(items)


def _clauses(items) -> str:
    """Clauses of a list: "; " in English, the full-width semicolon in Chinese."""
    return ("；" if i18n.lang() == "zh" else "; ").join(items)


def _then(sentence: str, more: str) -> str:
    """Two sentences: a space between them in English, none in Chinese."""
    return sentence + ("" if i18n.lang() == "zh" else " ") + more


def narrative(stage: SatisfactionStage, params: Params) -> str:
    """Findings of the section in sentences generated from its numbers."""
    if not stage.ok:
        return stage.problem
    s = params.satisfaction
    o = stage.overall.iloc[0]
    level = f"{s.confidence:.0%}"
    if stage.unmatched:
        lines = [_("The survey has **{responses:,} responses** from {respondents:,} customers ({unmatched:,} of them anonymous or from customers "
                   "without a purchase before the analysis date; they count only in the overall figures).", responses=int(o["responses"]),
                   respondents=int(o["respondents"]), unmatched=stage.unmatched)]
    else:
        lines = [_("The survey has **{responses:,} responses** from {respondents:,} customers.", responses=int(o["responses"]),
                   respondents=int(o["respondents"]))]
    if stage.unmatched and stage.unmatched == int(o["responses"]):
        lines.append(_("No response matches a customer who bought before the analysis date, so there is no breakdown by tier, segment or "
                       "value; check that the survey's customer ids are the transactions' customer ids."))
    if o["n_nps"]:
        lines.append(_("**NPS {nps}**, {level} interval: {promoters:.0%} promoters (9-10), {passives:.0%} passives (7-8), {detractors:.0%} "
                       "detractors (0-6).", nps=_nps_text(o), level=level, promoters=o["promoter_share"], passives=o["passive_share"],
                       detractors=o["detractor_share"]))
        if o["nps_se"] == 0:
            category = ("promoter" if o["promoters"] else "detractor" if o["detractors"] else "passive")
            lines.append(_("Every NPS answer is a {category}, so the usual interval would have no width; the interval shown is the range of "
                           "NPS that the {level} Wilson interval of that share allows.", category=_(category), level=level))
    if o["n_csat"]:
        lines.append(_("**CSAT {csat:.1%}** of answers are 4 or 5 out of 5 ({level} Wilson interval {lower:.1%} to {upper:.1%}, n = {n:,}).",
                       csat=o["csat"], level=level, lower=o["csat_lower"], upper=o["csat_upper"], n=int(o["n_csat"])))
    tiers = stage.groups.get("tier")
    if tiers is not None and tiers["n_nps"].sum():
        solid = tiers[~tiers["nps_below_min_n"] & (tiers["n_nps"] > 0)]
        if len(solid) >= 2:
            hi, lo = solid.loc[solid["nps"].idxmax()], solid.loc[solid["nps"].idxmin()]
            lines.append(_("By tier, NPS is highest in **{high}**, {high_nps}, and lowest in **{low}**, {low_nps}.", high=i18n.name(hi["tier"]),
                           high_nps=_nps_text(hi), low=i18n.name(lo["tier"]), low_nps=_nps_text(lo)))
        small = tiers.loc[tiers["nps_below_min_n"], "tier"].tolist()
        if small:
            lines.append(_("Tiers with fewer than {min_n} NPS answers (satisfaction.min_n) are greyed out: {tiers}.", min_n=s.min_n,
                           tiers=_join(str(i18n.name(t)) for t in small)))
        t = stage.tier_test
        if t is not None:
            fields = dict(df=t.df, chi2=t.chi2, p=_p_text(t.p_value), n=t.n, v=t.cramers_v)
            if t.p_value < 1 - s.confidence:
                sentence = _("The mix of promoters, passives and detractors differs between tiers (χ²({df}) = {chi2:.1f}, p {p}, n = {n:,}, "
                             "Cramér's V = {v:.2f}).", **fields)
            else:
                sentence = _("The mix of promoters, passives and detractors does not differ detectably between tiers (χ²({df}) = {chi2:.1f}, "
                             "p {p}, n = {n:,}, Cramér's V = {v:.2f}).", **fields)
            if t.min_expected < 5:
                sentence = _then(sentence, _("Some expected counts are below 5, so read the p-value with care."))
            lines.append(sentence)
        pw = stage.pairwise
        if pw is not None and len(pw):
            sig = pw[pw["significant"]]
            method = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "Benjamini-Hochberg"}[s.p_adjust]
            if len(sig):
                pairs = _clauses(_("{a} − {b} = {difference:+.0f} points (adjusted p {p})", a=i18n.name(r.group_a), b=i18n.name(r.group_b),
                                    difference=r.difference, p=_p_text(r.p_adjusted)) for r in sig.itertuples())
                lines.append(_("Pairwise NPS differences, {method}-adjusted for {n} comparisons: {pairs}.", method=method, n=len(pw), pairs=pairs))
            else:
                lines.append(_("Pairwise NPS differences, {method}-adjusted for {n} comparisons: none is significant.", method=method, n=len(pw)))
    rr = stage.response_rates
    if rr is not None and len(rr):
        rates = _join(_("{rate:.0%} of {tier}", rate=r.response_rate, tier=i18n.name(r.tier)) for r in rr.itertuples())
        lines.append(_("Who answers: {rates} customers answered the survey at least once; the figures describe those who answer.", rates=rates))
    corr = stage.correlation
    if corr is not None and len(corr):
        names = {"clv": _("CLV"), "monetary_total": _("net spend to date")}
        lines.append(_("Satisfaction and value: {correlations}.", correlations=_clauses(
            _("Spearman correlation of the 0-10 score with {measure} {rho:+.2f} ({lower:+.2f} to {upper:+.2f}, n = {n:,})",
              measure=names[r.measure], rho=r.spearman, lower=r.lower, upper=r.upper, n=r.n)
            for r in corr.itertuples())))
    if stage.drivers is not None:
        d = stage.drivers.summary.iloc[1:].sort_values("estimate", ascending=False)
        top = d.iloc[0]
        lines.append(_("Drivers: with the other items held fixed, one point more on **{item}** goes with {estimate:+.2f} points on the 0-10 "
                       "recommendation score ({lower:+.2f} to {upper:+.2f}); the items explain {r2:.0%} of the variance of the score (n = {n:,}).",
                       item=top["item"], estimate=top["estimate"], lower=top["lower"], upper=top["upper"], r2=stage.drivers.r_squared_,
                       n=stage.drivers.n_))
    else:
        lines.append(stage.drivers_note)
    if stage.terms_note:
        lines.append(stage.terms_note)
    return "\n\n".join(lines)


# --------------------------------------------------------------------------- display

SCORE_LABELS = {"responses": "responses", "respondents": "respondents", "n_nps": "NPS answers", "nps": "NPS", "nps_lower": "NPS from",
                "nps_upper": "NPS to", "promoter_share": "promoters", "passive_share": "passives", "detractor_share": "detractors",
                "n_csat": "CSAT answers", "csat": "CSAT", "csat_lower": "CSAT from", "csat_upper": "CSAT to", "mean_csat": "mean CSAT",
                "segment_zh": "segment", "value_decile": "decile", "value_from": "value from", "value_to": "value to"}
SCORE_COLUMNS = ["responses", "respondents", "n_nps", "nps", "nps_lower", "nps_upper", "promoter_share", "passive_share", "detractor_share",
                 "n_csat", "csat", "csat_lower", "csat_upper"]


def format_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def styled_scores(table: pd.DataFrame, label: str | None = None, extra: list[str] = (), csv: str | None = None, csat: bool = True,
                  currency: str | None = None):
    """A score table for the page: n, NPS and CSAT with their intervals; rows below
    satisfaction.min_n in grey (display only, like ``tierbook.tables``)."""
    from .tables import styled

    shown = SCORE_COLUMNS if csat else SCORE_COLUMNS[:9]
    columns = ([label] if label else []) + list(extra) + shown
    frame = table[columns].copy()
    for column in ("nps", "nps_lower", "nps_upper"):
        frame[column] = frame[column].round(0) + 0.0  # + 0.0: no "-0"
    styler = styled(frame, int_cols=["responses", "respondents", "n_nps", "n_csat", "nps", "nps_lower", "nps_upper"],
                    pct_cols=["promoter_share", "passive_share", "detractor_share", "csat", "csat_lower", "csat_upper"], labels=SCORE_LABELS,
                    max_rows=40, csv=csv, currency=currency, money_cols=[c for c in extra if c in ("value_from", "value_to")])
    small = table["nps_below_min_n"].to_numpy()[:40]
    return styler.apply(lambda row: ["color: #9a9a9a" if small[row.name] else ""] * len(row), axis=1) if small.any() else styler


def styled_pairwise(pairwise: pd.DataFrame):
    """The pairwise NPS comparisons for the page (differences in whole points, p-values readable)."""
    from .tables import styled

    whole = ["nps_a", "nps_b", "difference", "lower", "upper"]
    frame = pairwise.assign(**{c: pairwise[c].round(0) + 0.0 for c in whole}).assign(
        p_value=pairwise["p_value"].map(format_p), p_adjusted=pairwise["p_adjusted"].map(format_p),
        significant=pairwise["significant"].map({True: "yes", False: "no"}))
    return styled(frame, int_cols=["n_a", "n_b", "nps_a", "nps_b", "difference", "lower", "upper"],
                  labels={"group_a": "tier", "group_b": "against", "n_a": "n", "n_b": "n against", "nps_a": "NPS", "nps_b": "NPS against",
                          "lower": "difference from", "upper": "difference to", "p_value": "p", "p_adjusted": "adjusted p"})


def terms_side_by_side(terms: pd.DataFrame) -> pd.DataFrame:
    """The top terms of each NPS category in one table: one column per category, each cell
    ``term (share of the category's comments)``."""
    columns = {}
    for category in CATEGORIES:
        part = terms[terms["category"] == category]
        if len(part):
            n = int(part["category_comments"].iloc[0])
            header = {"detractor": _("detractors ({n:,} comments)", n=n), "passive": _("passives ({n:,} comments)", n=n),
                      "promoter": _("promoters ({n:,} comments)", n=n)}[category]
            columns[header] = [f"{t} ({s:.0%})" for t, s in zip(part["term"], part["share"])]
    width = max((len(v) for v in columns.values()), default=0)
    return pd.DataFrame({k: v + [""] * (width - len(v)) for k, v in columns.items()})
