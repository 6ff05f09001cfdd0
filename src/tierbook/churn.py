"""The ``churn`` section: who has stopped buying, how long customers stay, what predicts leaving,
and which valuable customers to call first.

Definition (a non-contractual business has no cancellation date): a customer has **churned** when
they have not bought for ``churn.churn_days`` days; by default that is the
``churn.churn_days_quantile`` (0.9) quantile of the days between consecutive purchase occasions, so
that 90 % of returning customers come back sooner. BG/NBD P(alive) (the clv section) is the
model-based second view.

Survival: each customer's time from the first purchase to the day churn is declared (the last
purchase + churn_days), censored at as_of for customers still active; Kaplan–Meier by tier and
by NPS category with log-rank tests, and a Cox model (lifelines) with hazard ratios and a
proportional-hazards test.

Prediction without leakage: features are computed from the data before a cutoff, the label is
"no purchase in the ``prediction_days`` after it". The models are trained at cutoff
``as_of − 2 × prediction_days``, evaluated at ``as_of − prediction_days`` (whose window ends at
as_of), then the better one is refitted at the evaluation cutoff and scores every active customer
at as_of: ``churn_risk`` in ``customer_scores``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import i18n
from .crm import update_customer_scores, write_customer_scores
from .data import load_clean, read_clean
from .engine import cohort_table, run_cohorts
from .errors import TierbookError
from .i18n import _
from .memory import give_back_memory
from .params import Params
from .pipeline import wait_for
from .summary import (AMOUNT_SCALE, NS_PER_DAY, customer_codes, customer_summary, default_as_of, first_positions, purchase_days,
                      same_ids, to_amount_units, unique_sorted)
from .valuation import section_summary

NPS_CATEGORIES = ["detractor", "passive", "promoter", "no answer"]
NUMERIC_FEATURES = ["recency_days", "purchase_occasions", "monetary_total", "monetary_mean", "tenure_days",
                    "days_per_occasion", "occasions_last_90d", "spend_last_90d", "last_nps"]
CATEGORICAL_FEATURES = ["main_channel", "region"]


# --------------------------------------------------------------------------- definition


def purchase_gaps(orders: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Days between consecutive purchase days of the same customer, before as_of."""
    code, day, _ids = purchase_days(orders, as_of)
    return np.diff(day)[code[1:] == code[:-1]]


def churn_days(orders: pd.DataFrame, as_of: pd.Timestamp, params: Params, gaps: np.ndarray | None = None) -> tuple[int, str]:
    """The churn threshold in days and a sentence saying where it comes from (``gaps``: the
    ``purchase_gaps`` of the orders at as_of, when the caller has them)."""
    c = params.churn
    if c.churn_days:
        return c.churn_days, _("{days} days (churn.churn_days)", days=c.churn_days)
    gaps = purchase_gaps(orders, as_of) if gaps is None else gaps
    if len(gaps) < 20:
        raise TierbookError(_("only {n} repeat purchases before {as_of}: too few to derive churn.churn_days from the "
                              "time between purchases; set churn.churn_days", n=len(gaps), as_of=f"{as_of:%Y-%m-%d}"))
    days = int(np.ceil(np.quantile(gaps, c.churn_days_quantile)))
    return days, _("{days} days: the {quantile:.0%} quantile of the {gaps:,} gaps between a customer's consecutive "
                   "purchase days (median gap {median:.0f} days), so {quantile:.0%} of returning customers came back sooner",
                   days=days, quantile=c.churn_days_quantile, gaps=len(gaps), median=np.median(gaps))


def main_channel(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Each customer's channel with the most orders before as_of (ties: the first in name order)."""
    timeline = Timeline(orders)
    pick = timeline.main_channel(as_of)
    has = np.flatnonzero(pick >= 0)
    return pd.Series(timeline.channels[pick[has]], index=pd.Index(timeline.ids[has], name="customer_id"), name="channel")


class Timeline:
    """The orders as the churn stage reads them at several cutoffs (as_of, and the training and test
    cutoffs of the prediction), with what every cutoff needs computed once: per order its customer's
    code (``ids[code]`` is the id as text; codes follow the ids' text order, as
    ``summary.customer_codes`` numbers them), its time, and its channel's code (``channels[code]``,
    names sorted; -1 when missing).

    At 1M customers and 5M orders each cutoff used to filter the whole frame (every column, Arrow
    order ids and stores included: 1-2 s and 1.2 GiB a copy) and look customers up by their ids as
    text; a cutoff is now a comparison of one array, and customers are rows of arrays by code."""

    def __init__(self, orders: pd.DataFrame):
        self.orders = orders
        self.code, self.ids = customer_codes(orders["customer_id"])
        self.time = orders["order_date"].to_numpy(dtype="datetime64[ns]")
        channel = orders["channel"]
        if isinstance(channel.dtype, pd.CategoricalDtype):  # read as a dictionary (_read_orders): no hashing of 5M names
            names = np.asarray(channel.cat.categories, dtype=object)
            order = np.argsort(names, kind="stable")
            rank = np.empty(len(order) + 1, dtype=np.int64)
            rank[order], rank[-1] = np.arange(len(order)), -1  # code -1 (missing) picks the last: -1
            self.channel, channels = rank[channel.cat.codes.to_numpy()], names[order]
        else:
            codes, channels = pd.factorize(channel.to_numpy(), sort=True)  # missing: -1
            self.channel = codes.astype(np.int64)
        self.channels = np.asarray(np.asarray(channels, dtype=object).astype(str), dtype=object)
        self._main_channel: dict[pd.Timestamp, np.ndarray] = {}
        self._index: pd.Index | None = None
        self._units: np.ndarray | None = None  # the amounts as customer_summary's integer units, when first needed
        self._survey: pd.DataFrame | None = None  # the survey whose rows' customer codes are _survey_codes
        self._survey_codes: np.ndarray | None = None

    def before(self, cutoff: pd.Timestamp) -> np.ndarray:
        """Which orders are before ``cutoff`` (as ``orders["order_date"] < cutoff``)."""
        return self.time < pd.Timestamp(cutoff).to_datetime64()

    def between(self, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
        """Which orders are in [start, end)."""
        return (self.time >= pd.Timestamp(start).to_datetime64()) & (self.time < pd.Timestamp(end).to_datetime64())

    def customers_with(self, rows: np.ndarray) -> np.ndarray:
        """Per customer code: whether any of the orders ``rows`` (a mask) is theirs."""
        out = np.zeros(len(self.ids), dtype=bool)
        out[self.code[rows]] = True
        return out

    def codes_of(self, ids: pd.Series, rows: np.ndarray | None = None) -> np.ndarray:
        """The codes of customer ids given as text. A summary of the orders ``rows`` lists its customers
        in the ids' text order, as the codes are numbered: then they are the codes of those orders'
        customers, in order (checked, 0.05 s at 1M customers); otherwise each id is looked up."""
        values = np.asarray(ids, dtype=object)
        if rows is not None:
            present = np.flatnonzero(self.customers_with(rows))
            if len(present) == len(values) and np.array_equal(self.ids[present], values):
                return present
        if self._index is None:
            self._index = pd.Index(self.ids)
        codes = self._index.get_indexer(values)
        if (codes < 0).any():
            raise ValueError("a customer id is not among the orders' customers")
        return codes

    def main_channel(self, cutoff: pd.Timestamp) -> np.ndarray:
        """Per customer code: the code of the channel with the most orders before ``cutoff`` (ties: the
        first in name order), -1 without one."""
        cutoff = pd.Timestamp(cutoff)
        if cutoff not in self._main_channel:
            known = self.before(cutoff) & (self.channel >= 0)
            n_channels = max(len(self.channels), 1)
            out = np.full(len(self.ids), -1, dtype=np.int64)
            if len(self.ids) * n_channels <= 50_000_000:
                # a (customer x channel) table of order counts, whose argmax per row is the first channel code among the
                # most-used: one bincount, no sort (1M customers, 3 cutoffs: 1.7 s -> 0.2 s, 2026-12-02)
                counts = np.bincount(self.code[known] * n_channels + self.channel[known],
                                     minlength=len(self.ids) * n_channels).reshape(len(self.ids), n_channels)
                has = counts.any(axis=1)
                out[has] = counts[has].argmax(axis=1)
            else:
                # per (customer, channel) code pair: its number of orders; then per customer the most, the first channel name
                # on ties (codes, not strings: 5.1M orders of 1M customers 40 s -> 1 s)
                pairs, n = np.unique(self.code[known] * n_channels + self.channel[known], return_counts=True)
                customer, pick = np.divmod(pairs, n_channels)
                order = np.lexsort((pick, -n, customer))
                first = order[np.r_[True, customer[order][1:] != customer[order][:-1]]] if len(order) else order
                out[customer[first]] = pick[first]
            self._main_channel[cutoff] = out
        return self._main_channel[cutoff]

    def cohort_counts(self, cutoff: pd.Timestamp) -> pd.Series:
        """Customers buying per acquisition cohort (month of the first order before ``cutoff``) and age
        (months since it): distinct (customer, month) codes sorted once. ``cohort_table`` makes the
        retention table of it, as it does of ``engine.cohort_counts``: the same integers, from the orders
        already in memory (1M customers: 2.8 s CPU on the engine reading the orders again, 0.4 s so,
        2026-12-02)."""
        rows = self.before(cutoff)
        month = self.time[rows].astype("datetime64[M]").astype(np.int64)  # pandas' monthly Period ordinals
        code = self.code[rows]
        low = int(month.min()) if len(month) else 0
        span = int(month.max()) - low + 1 if len(month) else 1
        customer, month = np.divmod(unique_sorted(code * span + (month - low)), span)
        first = np.r_[True, customer[1:] != customer[:-1]] if len(customer) else np.zeros(0, dtype=bool)
        cohort = month[first][np.cumsum(first) - 1]  # each customer's first month, on each of their months
        cells, customers = np.unique(cohort * span + (month - cohort), return_counts=True)
        cohort, age = np.divmod(cells, span)
        index = pd.MultiIndex.from_arrays([pd.PeriodIndex.from_ordinals(cohort + low, freq="M"), age.astype(np.int64)],
                                          names=["cohort", "age"])
        return pd.Series(customers.astype(np.int64), index=index)

    def purchase_gaps(self, cutoff: pd.Timestamp) -> np.ndarray:
        """``purchase_gaps`` of the orders at ``cutoff``, in the same order: distinct (customer code, day)
        before it sorted once, from the arrays the timeline holds (1M customers: 1.2 -> 0.4 s CPU, 2026-12-02)."""
        rows = self.before(cutoff)
        code, day = self.code[rows], self.time[rows].astype("datetime64[D]").astype(np.int64)
        if not len(day):
            return day
        low = day.min()
        span = int(day.max() - low) + 1
        code, day = np.divmod(unique_sorted(code * span + (day - low)), span)
        return np.diff(day)[code[1:] == code[:-1]]

    def day_totals(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Per customer code, of the orders ``rows`` (a mask): purchase occasions (distinct days) and the net
        total, as ``customer_summary(occasion="day")`` counts them (``purchase_occasions``, ``monetary_total``;
        0 without an order). The total is the same double: integer amount units summed exactly in float64
        (None when they could add up past 2^52), divided once. A 90-day window at 1M customers took 0.15-0.35 s
        CPU as a filter of the orders frame and a summary of it, 0.05 s so (0.2 s the first, which converts
        the amounts), 2026-12-02."""
        if self._units is None:
            self._units = to_amount_units(self.orders["net_amount"].to_numpy(dtype=float))
        units = self._units[rows]
        if np.abs(units).sum(dtype=np.float64) >= 2.0 ** 52:
            return None
        code, day = self.code[rows], self.time[rows].view(np.int64) // NS_PER_DAY  # whole days, as customer_summary
        low = day.min()
        span = int(day.max() - low) + 1
        occasions = np.bincount(unique_sorted(code * span + (day - low)) // span, minlength=len(self.ids)).astype(float)
        total = np.bincount(code, weights=units.astype(np.float64), minlength=len(self.ids))
        return occasions, total / AMOUNT_SCALE

    def last_nps(self, survey: pd.DataFrame | None, before: pd.Timestamp, codes: np.ndarray) -> np.ndarray:
        """``last_answers(survey, before)["last_nps"]`` of the customers ``codes`` (NaN without an answer): the
        same answers sorted by date as last_answers sorts them, the last per customer taken by code and not
        by id as text (1M ids reindexed as Python strings, and the answers' ids hashed: 0.4-0.7 s CPU at each
        of the stage's four dates at 1M customers; 0.04 s so, after 0.3 s once to code the answers' ids,
        2026-12-02)."""
        if survey is None or "nps" not in survey or survey["customer_id"].isna().all():
            return np.full(len(codes), np.nan)
        if self._survey is not survey:
            self._survey, self._survey_codes = survey, first_positions(survey["customer_id"], pd.Series(self.ids, dtype=object))
        if self._survey_codes is None:  # ids that are not text
            return last_answers(survey, before)["last_nps"].reindex(self.ids[codes]).to_numpy(float)
        answered = ((survey["response_date"] < before) & survey["nps"].notna() & survey["customer_id"].notna()).to_numpy()
        # the rows last_answers sorts, in its order (the sort's order depends on the dates alone); code -1: an id not among
        # the orders' customers, never asked for
        frame = pd.DataFrame({"response_date": survey["response_date"].to_numpy()[answered], "code": self._survey_codes[answered],
                              "nps": survey["nps"].array[answered]})
        last = frame.sort_values("response_date").drop_duplicates("code", keep="last")
        last = last[last["code"].to_numpy() >= 0]
        by_code = np.full(len(self.ids), np.nan)
        by_code[last["code"].to_numpy()] = last["nps"].astype(float).to_numpy()
        return by_code[codes]

    def main_channel_names(self, cutoff: pd.Timestamp, codes: np.ndarray) -> np.ndarray:
        """The main channel before ``cutoff`` of the customers ``codes``, "unknown" without one."""
        names = np.append(self.channels, np.array(["unknown"], dtype=object))  # code -1 picks the last: "unknown"
        return names[self.main_channel(cutoff)[codes]]


def last_answers(survey: pd.DataFrame | None, before: pd.Timestamp) -> pd.DataFrame:
    """Each respondent's last NPS answer before a date: ``last_nps`` and ``nps_category``."""
    if survey is None or "nps" not in survey or survey["customer_id"].isna().all():
        return pd.DataFrame(columns=["last_nps", "nps_category"], index=pd.Index([], name="customer_id"))
    answered = survey[(survey["response_date"] < before) & survey["nps"].notna() & survey["customer_id"].notna()]
    last = answered.sort_values("response_date").drop_duplicates("customer_id", keep="last")
    out = pd.DataFrame({"last_nps": last["nps"].astype(float).to_numpy()}, index=pd.Index(last["customer_id"].astype(str), name="customer_id"))
    out["nps_category"] = nps_category(out["last_nps"])
    return out


def nps_category(nps: pd.Series) -> pd.Series:
    """0-6 detractor, 7-8 passive, 9-10 promoter, missing: no answer."""
    out = pd.Series("no answer", index=nps.index, dtype=object)
    out[nps <= 6] = "detractor"
    out[(nps >= 7) & (nps <= 8)] = "passive"
    out[nps >= 9] = "promoter"
    return out


# --------------------------------------------------------------------------- rates and cohorts


def churn_rates(frame: pd.DataFrame, by: str, order: list[str] | None = None) -> pd.DataFrame:
    """Customers, churned customers and the churn rate per group (``frame`` has ``churned``)."""
    out = frame.groupby(by, observed=True)["churned"].agg(customers="size", churned="sum")
    out["churn_rate"] = out["churned"] / out["customers"]
    out = out.reindex(order).dropna() if order else out.sort_values("customers", ascending=False)
    return out.astype({"customers": int, "churned": int}).rename_axis(by).reset_index()


def cohort_retention(orders: pd.DataFrame, as_of: pd.Timestamp, max_cohorts: int = 24) -> pd.DataFrame:
    """Share of each monthly acquisition cohort buying in each month since its first month
    (month 0 = 100 %); cohorts are the last ``max_cohorts`` months with new customers."""
    return cohort_table(Timeline(orders).cohort_counts(as_of), pd.Timestamp(as_of), max_cohorts)


# --------------------------------------------------------------------------- survival


def survival_table(summary: pd.DataFrame, churn_after: int) -> pd.DataFrame:
    """Duration (days from the first purchase to declared churn, or to as_of when still active)
    and the event flag, per customer."""
    as_of = pd.Timestamp(summary.attrs["as_of"])
    declared = summary["last_purchase"] + pd.Timedelta(days=churn_after)
    event = declared <= as_of
    end = declared.where(event, as_of)
    return pd.DataFrame({"customer_id": summary["customer_id"].astype(str).to_numpy(),
                         "duration": (end - summary["first_purchase"]).dt.days.to_numpy(), "event": event.to_numpy()})


@dataclass
class KaplanMeier:
    curves: pd.DataFrame  # index: days; one survival column per group
    medians: pd.DataFrame  # group, customers, events, median_days (inf when never below 50 %)
    logrank_statistic: float
    logrank_df: int
    logrank_p: float


def kaplan_meier(durations, events, groups, order: list[str] | None = None) -> KaplanMeier:
    """Kaplan–Meier curves per group and the multivariate log-rank test (lifelines)."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    durations, events, groups = (pd.Series(np.asarray(v)) for v in (durations, events, groups))
    names = [g for g in (order or sorted(groups.unique())) if (groups == g).any()]
    curves, rows = {}, []
    for name in names:
        mask = groups == name
        kmf = KaplanMeierFitter().fit(durations[mask], events[mask], label=str(name))
        curves[str(name)] = kmf.survival_function_[str(name)]
        rows.append({"group": name, "customers": int(mask.sum()), "events": int(events[mask].sum()), "median_days": kmf.median_survival_time_})
    curves = pd.DataFrame(curves).ffill()
    if len(names) < 2 or not events.any():
        # one group, or nobody churned: lifelines returns chi2(0) with p = nan, or chi2 = 0 with p = 1; neither is a test
        return KaplanMeier(curves=curves, medians=pd.DataFrame(rows), logrank_statistic=np.nan, logrank_df=0, logrank_p=np.nan)
    test = multivariate_logrank_test(durations, groups, events)
    return KaplanMeier(curves=curves, medians=pd.DataFrame(rows), logrank_statistic=float(test.test_statistic),
                       logrank_df=int(test.degrees_of_freedom), logrank_p=float(test.p_value))


def logrank_note(km: KaplanMeier) -> str | None:
    """Why the log-rank test of ``km`` was not computed (one group, nobody churned), or None when it was."""
    if np.isfinite(km.logrank_p):
        return None
    if not km.medians["events"].sum():
        return _("Nobody has churned by the analysis date, so the groups cannot differ in how long customers stay: no log-rank test.")
    return _("All {n:,} customers are in one group ({group}), so there is nothing to compare: no log-rank test.",
             n=int(km.medians["customers"].sum()), group=i18n.name(km.medians["group"].iloc[0]))


@dataclass
class CoxResult:
    table: pd.DataFrame  # covariate, hazard_ratio, lower_95, upper_95, p, ph_p (proportional-hazards test)
    concordance: float
    customers: int  # customers the model was fitted on: all of them, or a sample (``population``)
    events: int
    ph_customers: int = 0  # customers in the proportional-hazards test: those of the fit, or a sample of them
    ph_events: int = 0
    population: int = 0  # customers the frame held (0: those of the fit)

    @property
    def ph_sampled(self) -> bool:
        return self.ph_customers < self.customers

    @property
    def fit_sampled(self) -> bool:
        return self.population > self.customers


def cox_model(frame: pd.DataFrame, categorical: dict[str, str], numeric: list[str] = (), penalizer: float = 0.01,
              ph_sample: int | None = None, seed: int = 0, fit_sample: int | None = None) -> CoxResult:
    """Cox proportional hazards on ``duration``/``event`` with one-hot categorical covariates
    (``{column: reference level}``) and numeric ones, hazard ratios with 95 % intervals and the
    Schoenfeld-residual test of proportional hazards (rank time transform) per covariate.

    With more than ``fit_sample`` customers the model is fitted on a seeded random sample of that
    many (rows kept in order): lifelines' fit on 1.4M customers took 10-14 s and held 0.93 GiB, the
    churn section's peak (2026-12-04), and the hazard ratios of a few covariates are already narrow
    on 200,000 customers.

    With more than ``ph_sample`` customers the test runs on a random sample of that many (seeded),
    with the model refitted on the sample, which the test needs: lifelines computes the residuals
    one event time at a time in Python, 36 s of the 38 s of this function on 100k customers. A
    covariate that does not vary in the sample gets no test (``ph_p`` missing)."""
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    population = len(frame)
    if fit_sample is not None and len(frame) > fit_sample:
        frame = frame.iloc[np.sort(np.random.default_rng(seed).choice(len(frame), fit_sample, replace=False))]
    design = frame[["duration", "event", *numeric]].astype(float)
    for column, reference in categorical.items():
        # each column's values coded once, not compared as text once per level (1M customers: 0.2 s a level)
        codes, levels = _text_codes(frame[column])
        for level in sorted(v for v in levels if v != reference):
            design[f"{column}: {level}"] = (codes == levels.get_loc(level)).astype(float)
    if not design["event"].any():
        raise TierbookError(_("nobody has churned by the analysis date, and the model learns from churned customers"))
    covariates = [c for c in design.columns if c not in ("duration", "event") and design[c].std() > 0]
    if not covariates:
        raise TierbookError(_("no factor (tier, NPS category, channel, region) differs between customers"))
    if len(covariates) < design.shape[1] - 2:
        design = design[["duration", "event", *covariates]]
    # one block of doubles, not a column each: lifelines copies, concatenates and predicts on the frame, consolidating
    # it every time (1M customers, 14 columns: the fit took 3.4-4.3 s CPU, 2.6-3.2 s so; the same numbers, 2026-12-02)
    design = design.copy()
    fitter = CoxPHFitter(penalizer=penalizer).fit(design, "duration", "event")
    s = fitter.summary
    tested, ph_fitter = design, fitter
    if ph_sample is not None and len(design) > ph_sample:
        sample = design.sample(n=ph_sample, random_state=np.random.RandomState(seed))
        varying = [c for c in covariates if sample[c].std() > 0]
        tested = sample[["duration", "event", *varying]]
        ph_fitter = CoxPHFitter(penalizer=penalizer).fit(tested, "duration", "event") if varying and tested["event"].any() else None
    ph = (proportional_hazard_test(ph_fitter, tested, time_transform="rank").summary["p"] if ph_fitter is not None
          else pd.Series(dtype=float))
    table = pd.DataFrame({"covariate": s.index, "hazard_ratio": s["exp(coef)"].to_numpy(), "lower_95": s["exp(coef) lower 95%"].to_numpy(),
                          "upper_95": s["exp(coef) upper 95%"].to_numpy(), "p": s["p"].to_numpy(), "ph_p": ph.reindex(s.index).to_numpy()})
    return CoxResult(table=table, concordance=concordance_index(fitter), customers=len(design), events=int(design["event"].sum()),
                     ph_customers=len(tested), ph_events=int(tested["event"].sum()), population=population)


def _text_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(values.astype(str))``: the values coded first and the few distinct ones made text
    (not 1M values: 0.8 s CPU at 1M customers, 2026-12-02), unless a value is missing or two make the same text."""
    values = pd.Series(values)
    if not values.isna().any():  # factorize would merge None and NaN, which are "None" and "nan" as text
        codes, levels = pd.factorize(values)
        text = pd.Index(np.asarray(levels, dtype=object).astype(str), dtype=object)
        if text.is_unique:
            return codes, text
    return pd.factorize(values.astype(str))


def concordance_index(fitter) -> float:
    """``fitter.concordance_index_`` of a lifelines CoxPHFitter (without strata), from the counts of
    ``concordance_counts`` when it can make them; lifelines compares the customers one at a time in
    Python (4-7 s CPU at 1M customers, against 0.2-0.4 s). The counts are the same integers and the
    ratio the same expression, so the index is the same double."""
    hazards = getattr(fitter, "_predicted_partial_hazards_", None)  # what lifelines counts from: P, T, E per customer
    counts = None if hazards is None or fitter.strata else concordance_counts(
        hazards["T"].to_numpy(float), -hazards["P"].to_numpy(float), hazards["E"].to_numpy(bool))
    if counts is None:
        return float(fitter.concordance_index_)
    correct, tied, pairs = counts
    return float((correct + tied / 2) / pairs)  # lifelines.utils.concordance._concordance_ratio


def concordance_counts(durations: np.ndarray, scores: np.ndarray, events: np.ndarray,
                       max_cells: int = 4_000_000) -> tuple[np.int64, np.int64, np.int64] | None:
    """Harrell's concordance as lifelines counts it: each customer is compared with every churned
    customer whose duration is shorter (for a censored customer: shorter or equal); a pair is correct
    when that customer's score is lower, tied when equal. Returns (correct, tied, pairs), or None
    when there are more than ``max_cells`` (distinct durations of churned x their distinct scores).

    Counted from a table of the churned customers by (duration, score), summed along both: a Cox
    model on categories has a few hundred distinct scores and a thousand distinct days."""
    if not events.any() or not (np.isfinite(durations).all() and np.isfinite(scores).all()):
        return None
    times, values = np.unique(durations[events]), np.unique(scores[events])
    if len(times) * len(values) > max_cells:
        return None
    # table[a, b]: churned customers among the first a durations and the first b scores
    cells = (np.searchsorted(times, durations[events]) + 1) * (len(values) + 1) + np.searchsorted(values, scores[events]) + 1
    table = np.bincount(cells, minlength=(len(times) + 1) * (len(values) + 1)).reshape(len(times) + 1, len(values) + 1)
    table = table.cumsum(axis=0).cumsum(axis=1)
    shorter = np.where(events, np.searchsorted(times, durations, side="left"), np.searchsorted(times, durations, side="right"))
    below = table[shorter, np.searchsorted(values, scores, side="left")]
    not_above = table[shorter, np.searchsorted(values, scores, side="right")]
    return below.sum(dtype=np.int64), (not_above - below).sum(dtype=np.int64), table[shorter, -1].sum(dtype=np.int64)


def cox_caption(cox: CoxResult) -> str:
    """The sentence above the Cox table: customers, events, concordance, and the sample of the
    proportional-hazards test when there was one."""
    if cox.fit_sampled:
        text = _("Cox model on a random sample of {customers:,} of the {population:,} customers ({events:,} churned; churn.cox_fit_sample); "
                 "concordance {concordance:.3f}.", customers=cox.customers, population=cox.population, events=cox.events,
                 concordance=cox.concordance)
    else:
        text = _("Cox model on {customers:,} customers ({events:,} churned); concordance {concordance:.3f}.",
                 customers=cox.customers, events=cox.events, concordance=cox.concordance)
    if cox.ph_sampled:
        text += " " + _("The proportional-hazards test used a random sample of {n:,} of these customers ({events:,} churned; "
                        "churn.cox_sample), with the model refitted on the sample.", n=cox.ph_customers, events=cox.ph_events)
    return text


def training_caption(pred: Prediction) -> str:
    """The sentence above the model metrics: the training and test windows, and the sample when there was one."""
    values = dict(n_train=pred.n_train, train_cutoff=f"{pred.train_cutoff:%Y-%m-%d}", n_eval=pred.n_eval,
                  eval_cutoff=f"{pred.eval_cutoff:%Y-%m-%d}", days=pred.days)
    if pred.n_fit < pred.n_train:
        return _("Trained on a random sample of {n_fit:,} of the {n_train:,} customers active at {train_cutoff} (churn.train_sample), "
                 "tested on all {n_eval:,} active at {eval_cutoff}; window {days} days. ROC AUC: 0.5 is guessing, 1 is perfect; PR AUC "
                 "is to be read against the base rate.", n_fit=pred.n_fit, **values)
    return _("Trained on {n_train:,} customers active at {train_cutoff}, tested on {n_eval:,} active at {eval_cutoff}; window {days} "
             "days. ROC AUC: 0.5 is guessing, 1 is perfect; PR AUC is to be read against the base rate.", **values)


def importance_caption(pred: Prediction) -> str:
    """The sentence above the permutation-importance figure, with the sample when there was one."""
    text = _("Permutation importance of the {model} model (the better one by ROC AUC), which scores the customers active now:",
             model=i18n.name(pred.chosen))
    if pred.n_importance < pred.n_eval:
        text = _("Permutation importance of the {model} model (the better one by ROC AUC), which scores the customers active now, "
                 "computed on a random sample of {n:,} of the {n_eval:,} test customers (churn.importance_sample):",
                 model=i18n.name(pred.chosen), n=pred.n_importance, n_eval=pred.n_eval)
    return text


def covariate_label(covariate: str) -> str:
    """A Cox covariate as the page shows it (``tier: VIP``), its column and level in the report's language."""
    column, sep, level = covariate.partition(": ")
    if not sep:
        return i18n.name(covariate)
    return f"{i18n.name(column)}{'：' if i18n.lang() == 'zh' else ': '}{i18n.name(level)}"


# --------------------------------------------------------------------------- prediction


def features_at(orders: pd.DataFrame, cutoff: pd.Timestamp, churn_after: int, survey: pd.DataFrame | None,
                regions: pd.Series | None, occasion: str = "day") -> pd.DataFrame:
    """One row per customer **active** at ``cutoff`` (bought before it, within ``churn_after``
    days), with features from the data before the cutoff only."""
    timeline = Timeline(orders)
    return _features(timeline, cutoff, churn_after, survey, _regions_by_code(regions, timeline), occasion).frame


def _regions_by_code(regions: pd.Series | None, timeline: Timeline) -> np.ndarray | None:
    """Each customer's region (by code, as text), "unknown" without one; None without regions."""
    return regions.reindex(timeline.ids).fillna("unknown").astype(str).to_numpy() if regions is not None else None


@dataclass
class _Features:
    frame: pd.DataFrame  # customer_id and the features, one row per active customer
    codes: np.ndarray  # their customer codes (Timeline.ids[codes] are the ids)
    rows: np.ndarray  # their rows in the summary they were taken from


def _features(timeline: Timeline, cutoff: pd.Timestamp, churn_after: int, survey: pd.DataFrame | None,
              region_by_code: np.ndarray | None, occasion: str, summary: pd.DataFrame | None = None) -> _Features:
    """``features_at`` on a timeline, from ``summary`` (``customer_summary`` of the orders at ``cutoff``,
    in any time unit) when the caller has it."""
    orders = timeline.orders
    if summary is None:
        summary = customer_summary(orders, cutoff, occasion=occasion)
    rows = np.flatnonzero(summary["recency_days"].to_numpy() <= churn_after)
    active = summary.take(rows).reset_index(drop=True)
    ids = active["customer_id"].astype(str)
    summarised = timeline.before(pd.Timestamp(cutoff).normalize())  # the orders customer_summary counts
    codes = timeline.codes_of(summary["customer_id"].astype(str), summarised)[rows]
    out = pd.DataFrame({
        "customer_id": ids, "recency_days": active["recency_days"].to_numpy(float), "purchase_occasions": active["purchase_occasions"].to_numpy(float),
        "monetary_total": active["monetary_total"].to_numpy(float), "monetary_mean": active["monetary_mean"].to_numpy(float),
        "tenure_days": active["tenure_days"].to_numpy(float),
        "days_per_occasion": (active["tenure_days"] / active["purchase_occasions"]).to_numpy(float),
    })
    window = timeline.between(cutoff - pd.Timedelta(days=90), cutoff)
    totals = timeline.day_totals(window & summarised) if occasion == "day" and (window & summarised).any() else None
    if totals is not None:  # customer_summary's occasions and totals of the window's orders, from the timeline's arrays
        for column, by_code in zip(("occasions_last_90d", "spend_last_90d"), totals):
            out[column] = by_code[codes]
    else:
        recent_summary = customer_summary(orders[window], cutoff, occasion=occasion) if window.any() else None
        for column, source in (("occasions_last_90d", "purchase_occasions"), ("spend_last_90d", "monetary_total")):
            if recent_summary is not None:
                by_code = np.zeros(len(timeline.ids))  # 0 for a customer without an order in the window
                by_code[timeline.codes_of(recent_summary["customer_id"].astype(str), window & summarised)] = recent_summary[source].to_numpy(float)
                out[column] = by_code[codes]
            else:
                out[column] = 0.0
    out["last_nps"] = timeline.last_nps(survey, cutoff, codes)
    out["main_channel"] = timeline.main_channel_names(cutoff, codes)
    out["region"] = region_by_code[codes] if region_by_code is not None else "unknown"
    return _Features(frame=out, codes=codes, rows=rows)


def label_after(orders: pd.DataFrame, customer_ids: pd.Series, cutoff: pd.Timestamp, days: int) -> np.ndarray:
    """1 when the customer made no purchase in [cutoff, cutoff + days), else 0."""
    timeline = Timeline(orders)
    bought = timeline.ids[_bought(timeline, cutoff, days)]
    return (~customer_ids.astype(str).isin(bought)).to_numpy(dtype=int)


def _bought(timeline: Timeline, cutoff: pd.Timestamp, days: int) -> np.ndarray:
    """Per customer code: whether the customer bought in [cutoff, cutoff + days)."""
    return timeline.customers_with(timeline.between(cutoff, cutoff + pd.Timedelta(days=days)))


def churn_models(seed: int, numeric: list[str] = NUMERIC_FEATURES, categorical: list[str] = CATEGORICAL_FEATURES) -> dict:
    """Logistic regression (log1p, median imputation with missing indicators, standardised;
    one-hot categories) and gradient boosting (native categories), as unfitted pipelines."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

    scaled = make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                           FunctionTransformer(lambda x: np.sign(x) * np.log1p(np.abs(x)), feature_names_out="one-to-one"), StandardScaler())
    linear = ColumnTransformer([("num", scaled, list(numeric)),
                                ("cat", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20), list(categorical))])
    trees = ColumnTransformer([("num", "passthrough", list(numeric)),
                               ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                                list(categorical))])
    return {
        "logistic regression": make_pipeline(linear, LogisticRegression(max_iter=2000)),
        "gradient boosting": make_pipeline(trees, HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, categorical_features=list(range(len(numeric), len(numeric) + len(categorical))),
            random_state=seed)),
    }


def evaluate(y: np.ndarray, scores: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """ROC AUC, PR AUC; calibration (10 quantile bins) and lift by decile per predictor."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rows, calibration, lift = [], [], []
    for name, score in scores.items():
        rows.append({"model": name, "roc_auc": roc_auc_score(y, score), "pr_auc": average_precision_score(y, score), "base_rate": y.mean()})
        decile = pd.qcut(pd.Series(score).rank(method="first", ascending=False), 10, labels=range(1, 11))
        by = pd.DataFrame({"decile": decile, "y": y, "score": score}).groupby("decile", observed=True)
        lift.append(pd.DataFrame({"model": name, "decile": range(1, 11), "churn_rate": by["y"].mean().to_numpy(),
                                  "lift": by["y"].mean().to_numpy() / y.mean()}))
        if name != "BG/NBD 1 − P(alive)":
            bins = pd.qcut(pd.Series(score).rank(method="first"), 10, labels=False)
            cal = pd.DataFrame({"bin": bins, "y": y, "score": score}).groupby("bin")
            calibration.append(pd.DataFrame({"model": name, "predicted": cal["score"].mean().to_numpy(), "observed": cal["y"].mean().to_numpy()}))
    return pd.DataFrame(rows), pd.concat(calibration, ignore_index=True), pd.concat(lift, ignore_index=True)


@dataclass
class Prediction:
    train_cutoff: pd.Timestamp
    eval_cutoff: pd.Timestamp
    days: int
    n_train: int
    n_eval: int
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    lift: pd.DataFrame
    importance: pd.DataFrame  # feature, importance (drop in ROC AUC when permuted), std
    chosen: str
    risk: pd.Series  # churn risk at as_of per active customer id
    n_importance: int = 0  # test customers the permutation importance was computed on (n_eval, or a sample of them)
    n_fit: int = 0  # training customers the models were fitted on (n_train, or a sample of them: churn.train_sample)
    n_refit: int = 0  # test customers the chosen model was refitted on to score the customers active now


def importance_rows(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Positions of the test customers the permutation importance is computed on: all of them up to
    ``size``, else a seeded random sample of ``size`` (in order), unless it missed a class. The
    importance predicts the test set 5 times per feature (56 times on the demo: 18 s on 100k
    customers), so its cost stays flat in customers above ``size``."""
    rows = np.arange(len(y))
    if len(y) > size:
        sample = np.sort(np.random.default_rng(seed).choice(len(y), size, replace=False))
        if len(set(y[sample])) == 2:
            rows = sample
    return rows


def predict_churn(timeline: Timeline, as_of, churn_after, days, survey, region_by_code, params: Params,
                  now_summary: pd.DataFrame | None = None) -> tuple[Prediction | None, str | None]:
    """Train, evaluate against P(alive) and score; or (None, the reason it could not be done).
    ``region_by_code``: ``_regions_by_code`` of the members' regions (or None); ``now_summary``:
    ``customer_summary`` of the orders at as_of, when the caller has it."""
    from threadpoolctl import threadpool_limits

    from .churn_importance import permutation_importance_auc
    from .clv import fit_bgnbd

    seed, occasion = params.churn.seed, params.rfm.occasion
    eval_cutoff = as_of - pd.Timedelta(days=days)
    train_cutoff = eval_cutoff - pd.Timedelta(days=days)
    if not timeline.before(train_cutoff).any():
        return None, _("No order is before the training cutoff {cutoff} (twice the {days}-day prediction window before as_of): "
                       "the history is too short to train and evaluate a churn model; set a shorter churn.prediction_days.",
                       cutoff=f"{train_cutoff:%Y-%m-%d}", days=days)
    train_at = _features(timeline, train_cutoff, churn_after, survey, region_by_code, occasion)
    # one summary at the test cutoff for the features and BG/NBD's calibration (the features use no column in time units)
    cal_summary = customer_summary(timeline.orders, eval_cutoff, occasion=occasion, time_unit=params.clv.time_unit)
    test_at = _features(timeline, eval_cutoff, churn_after, survey, region_by_code, occasion, summary=cal_summary)
    train, test = train_at.frame, test_at.frame
    y_train = (~_bought(timeline, train_cutoff, days)[train_at.codes]).astype(int)
    y_test = (~_bought(timeline, eval_cutoff, days)[test_at.codes]).astype(int)
    minimum = params.churn.min_customers
    if len(train) < minimum or len(test) < minimum or min(y_train.mean(), 1 - y_train.mean()) * len(train) < 10 or len(set(y_test)) < 2:
        return None, _("Too few active customers or too few churners to learn from ({n_train:,} active at {train_cutoff}, "
                       "{n_eval:,} at {eval_cutoff}; churn.min_customers is {minimum:,}).", n_train=len(train),
                       train_cutoff=f"{train_cutoff:%Y-%m-%d}", n_eval=len(test), eval_cutoff=f"{eval_cutoff:%Y-%m-%d}", minimum=minimum)
    # a feature without two distinct values (last_nps when there is no survey, one region ...) carries no
    # information, and scikit-learn's histogram binning fails on an all-missing column: leave it out
    numeric = [f for f in NUMERIC_FEATURES if train[f].nunique(dropna=True) > 1]
    categorical = [f for f in CATEGORICAL_FEATURES if train[f].nunique(dropna=True) > 1]
    features = numeric + categorical
    scores, fitted = {}, {}
    fit_rows = importance_rows(y_train, params.churn.train_sample, seed)  # all, or a seeded sample keeping both classes
    # Gradient boosting's OpenMP threads, one: it opens a parallel region per tree node when fitting and per tree when
    # predicting, each as slow as its slowest thread, so a core busy with another section (two run at once) stalled
    # every region: at 1M customers the fits took 42-61 s instead of 4 s and the permutation importance 43-90 s instead
    # of 8-14 s on a shared machine. The numbers do not depend on the thread count: predictions are per row, and the
    # fit sums each histogram bin in one thread over samples kept in order (checked bit for bit at 100k and 1M).
    # BLAS (logistic regression) keeps its threads: there the thread count can change the order of a sum.
    with threadpool_limits(limits=1, user_api="openmp"):
        for name, model in churn_models(seed, numeric, categorical).items():
            fitted[name] = model.fit(train[features].iloc[fit_rows], y_train[fit_rows])
            scores[name] = model.predict_proba(test[features])[:, 1]
    try:
        bg = fit_bgnbd(cal_summary)
        alive = bg.p_alive(cal_summary["frequency"], cal_summary["recency"], cal_summary["T"])
        scores["BG/NBD 1 − P(alive)"] = 1 - alive[test_at.rows]
    except TierbookError:
        pass
    metrics, calibration, lift = evaluate(y_test, scores)
    candidates = metrics[metrics["model"].isin(list(fitted))]
    chosen = str(candidates.sort_values("roc_auc", ascending=False)["model"].iloc[0])
    rows = importance_rows(y_test, params.churn.importance_sample, seed)
    with threadpool_limits(limits=1, user_api="openmp"):  # scikit-learn's numbers, each tree predicting again only when it must
        imp = permutation_importance_auc(fitted[chosen], test[features].iloc[rows], y_test[rows], n_repeats=5, seed=seed)
    importance = pd.DataFrame({"feature": features, "importance": imp.importances_mean, "std": imp.importances_std}).sort_values(
        "importance", ascending=False, ignore_index=True)
    # the chosen model refitted on the latest labelled window, scoring the customers active now
    refit_rows = importance_rows(y_test, params.churn.train_sample, seed)
    now = _features(timeline, as_of, churn_after, survey, region_by_code, occasion, summary=now_summary).frame
    with threadpool_limits(limits=1, user_api="openmp"):
        final = churn_models(seed, numeric, categorical)[chosen].fit(test[features].iloc[refit_rows], y_test[refit_rows])
        risk = pd.Series(final.predict_proba(now[features])[:, 1], index=now["customer_id"].to_numpy(), name="churn_risk")
    return Prediction(train_cutoff=train_cutoff, eval_cutoff=eval_cutoff, days=days, n_train=len(train), n_eval=len(test), metrics=metrics,
                      calibration=calibration, lift=lift, importance=importance, chosen=chosen, risk=risk, n_importance=len(rows),
                      n_fit=len(fit_rows), n_refit=len(refit_rows)), None


# --------------------------------------------------------------------------- the stage


@dataclass
class ChurnStage:
    as_of: pd.Timestamp
    tier_order: list[str]
    problem: str | None = None  # why churn cannot be defined on this data (then the fields below are empty)
    churn_days: int = 0
    churn_days_note: str = ""
    customers: pd.DataFrame | None = None  # customer_id, tier, segment_zh, main_channel, region, nps_category, last_nps, churned ...
    by_tier: pd.DataFrame | None = None
    by_segment: pd.DataFrame | None = None
    by_channel: pd.DataFrame | None = None
    by_nps: pd.DataFrame | None = None
    cohorts: pd.DataFrame | None = None
    km_tier: KaplanMeier | None = None
    km_nps: KaplanMeier | None = None
    cox: CoxResult | None = None
    cox_note: str | None = None
    prediction: Prediction | None = None
    prediction_note: str | None = None
    at_risk: pd.DataFrame | None = None
    has_survey: bool = False
    value_column: str = "monetary_total"

    @property
    def ok(self) -> bool:
        return self.problem is None


def _read_optional(run_dir: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A table of the run (None when the run has none), only ``columns`` of it (those it has) when given."""
    path = run_dir / "data" / f"{name}.parquet"
    if not path.exists():
        return None
    return read_clean(path, columns=None if columns is None else [c for c in _parquet_columns(path) if c in columns])


def _parquet_columns(path: Path) -> list[str]:
    """The columns of a Parquet file written from pandas, from its schema (nothing is read)."""
    import pyarrow.parquet as pq

    return [name for name in pq.read_schema(path).names if not name.startswith("__index_level_")]


def _regions(run_dir: Path) -> pd.Series | None:
    """Each member's region by customer id (text; the first row of a repeated id), or None without one."""
    members = _read_optional(run_dir, "customers", ["customer_id", "region"])
    if members is None or "region" not in members or not members["region"].notna().any():
        return None
    return members.assign(customer_id=members["customer_id"].astype(str)).drop_duplicates("customer_id").set_index("customer_id")["region"]


def _member_regions_by_code(run_dir: Path, timeline: Timeline) -> np.ndarray | None:
    """``_regions_by_code(_regions(run_dir), timeline)``: each customer's region by code, the first
    member row of the id giving it; the ids looked up in Arrow and the regions read as a dictionary
    (1M members: the ids made text, their duplicates dropped and 1M ids reindexed as Python strings,
    then 1M regions filled and made text: 1.05 -> 0.5 s CPU, 2026-12-02)."""
    path = run_dir / "data" / "customers.parquet"
    if not path.exists() or not {"customer_id", "region"} <= set(_parquet_columns(path)):
        return None
    members = pd.read_parquet(path, columns=["customer_id", "region"], read_dictionary=["region"])
    region = members["region"]
    if not region.notna().any():
        return None
    if not isinstance(region.dtype, pd.CategoricalDtype):
        return _regions_by_code(_regions(run_dir), timeline)
    ids = pd.Series(timeline.ids, dtype=object)
    position = first_positions(ids, members["customer_id"])
    if position is None:
        position = first_positions(ids, members["customer_id"].astype(str))
    if position is None:
        return _regions_by_code(_regions(run_dir), timeline)
    # fillna("unknown").astype(str) of the regions, on the few distinct ones: code -1 (missing, or no member row) picks "unknown"
    names = np.append(pd.Series(region.cat.categories, dtype=object).astype(str).to_numpy(dtype=object), np.array(["unknown"], dtype=object))
    codes = np.append(region.cat.codes.to_numpy().astype(np.int64), -1)  # position -1 picks the last: no member row
    return names[codes[position]]


def _read_orders(run_dir: Path, occasion: str) -> pd.DataFrame:
    """The run's clean orders, only the columns this stage reads (customer_summary needs source and
    order_id for ``occasion="order"``): order ids, stores and currencies were 0.9 GiB of the 1.4 GiB of
    5M orders at 1M customers. Channels come as a dictionary, which ``Timeline`` codes without hashing
    5M names. The other tables are read likewise: the members' ids and regions, and of customer_scores
    (1 GiB at 1M customers) the ids and four columns until ``_write``."""
    columns = ["customer_id", "order_date", "net_amount", "channel"] + (["source", "order_id"] if occasion == "order" else [])
    return load_clean(run_dir, "orders", columns=columns, read_dictionary=["channel"])


def run_churn_stage(params: Params, run_dir: Path) -> ChurnStage:
    orders = _read_orders(run_dir, params.rfm.occasion)
    as_of = pd.Timestamp(params.rfm.as_of) if params.rfm.as_of else default_as_of(orders)
    order = [level.name for level in params.tiers.levels]
    timeline = Timeline(orders)
    try:
        days, note = churn_days(orders, as_of, params, gaps=None if params.churn.churn_days else timeline.purchase_gaps(as_of))
    except TierbookError as error:
        return ChurnStage(as_of=as_of, problem=_("Churn cannot be defined on this data: {error}.", error=error), tier_order=order)
    # the per-customer summary and the cohorts are the engine's (params.engine: DuckDB or Spark), as the transaction-level
    # work is: the summary the rfm section had the engine compute (valuation.section_summary; 5.1 s CPU to compute again at
    # 1M customers, 2026-12-02). customer_summary on the orders in memory gives the same numbers (tests/test_engine.py)
    # for the cutoffs that train and test the model
    summary = section_summary(params, run_dir, as_of, time_unit="W")
    survey, region_by_code = _read_optional(run_dir, "survey"), _member_regions_by_code(run_dir, timeline)
    give_back_memory()  # what the reads and the summary freed, before the models' peak
    # the models first, on the orders, the summary, the survey and the regions alone: the customers' table and the
    # survival curves come after them (built before, they were held through the models' features and fits, the stage's
    # peak: at 1.4M customers the stage on its own peaked at 1.88-1.89 GiB resident against 2.06-2.07 GiB, in the same
    # time, 2026-12-05). The customers active now are scored from the summary at as_of above (the one customer_summary
    # would compute)
    prediction, prediction_note = predict_churn(timeline, as_of, days, params.churn.prediction_days or days, survey, region_by_code, params,
                                                now_summary=summary)
    give_back_memory()  # what the models' features and fits freed
    # the rfm section's columns of customer_scores now; clv's (P(alive), CLV) for the at-risk list once that section, which
    # runs beside this one (pipeline.reads_later), has written them
    scores = _read_optional(run_dir, "customer_scores", ["customer_id", "tier", "segment_zh"])
    scores["customer_id"] = scores["customer_id"].astype(str)
    ids = summary["customer_id"].astype(str)
    codes = timeline.codes_of(ids, timeline.before(as_of.normalize()))
    customers = pd.DataFrame({
        "customer_id": ids.to_numpy(), "recency_days": summary["recency_days"].to_numpy(),
        "purchase_occasions": summary["purchase_occasions"].to_numpy(), "monetary_total": summary["monetary_total"].to_numpy(),
        "churned": (summary["recency_days"] > days).to_numpy(),
        "main_channel": timeline.main_channel_names(as_of, codes),
        "region": region_by_code[codes] if region_by_code is not None else "unknown",
        "last_nps": timeline.last_nps(survey, as_of, codes),
    })
    customers["nps_category"] = nps_category(customers["last_nps"]).to_numpy()
    customers = _with_scores(customers, scores, ["tier", "segment_zh"])
    has_survey = bool((customers["nps_category"] != "no answer").any())

    surv = survival_table(summary, days)
    customers["duration"], customers["event"] = surv["duration"].to_numpy(), surv["event"].to_numpy()
    km_tier = kaplan_meier(customers["duration"], customers["event"], customers["tier"], order)
    km_nps = kaplan_meier(customers["duration"], customers["event"], customers["nps_category"], NPS_CATEGORIES) if has_survey else None
    categorical = {"tier": order[-1]}
    if has_survey:
        categorical["nps_category"] = "no answer"
    if customers["main_channel"].nunique() > 1:
        categorical["main_channel"] = customers["main_channel"].value_counts().index[0]
    if customers["region"].nunique() > 1:
        top = customers["region"].value_counts()
        customers["region_group"] = customers["region"].where(customers["region"].isin(top.index[:6]), "other")
        categorical["region_group"] = top.index[0]
    # the file as clv left it (its ids read again: the columns written back below must be its rows; _write reads the
    # others), its columns only when it succeeded; without them the at-risk list ranks by net spend
    clv_done = wait_for(run_dir, "clv")
    scores = _read_optional(run_dir, "customer_scores", ["customer_id", "p_alive", "clv"])
    scores["customer_id"] = scores["customer_id"].astype(str)
    customers = _with_scores(customers, scores, [c for c in ("p_alive", "clv") if c in scores and clv_done])
    at_risk = None
    value_column = "clv" if "clv" in customers and customers["clv"].notna().any() else "monetary_total"
    if prediction is not None:
        active = ~customers["churned"].to_numpy()
        if same_ids(prediction.risk.index, customers["customer_id"].to_numpy(dtype=object)[active]):
            risk = np.full(len(customers), np.nan)  # the active customers, in order
            risk[active] = prediction.risk.to_numpy()
            customers["churn_risk"] = risk
        else:
            customers["churn_risk"] = prediction.risk.reindex(customers["customer_id"]).to_numpy()
        at_risk = at_risk_list(customers, value_column, params)
    # the orders and what was made of them let go of before the cohorts and the writes, the section's peak (2.06 -> 1.69 GiB
    # at 1M customers, 2026-12-02)
    del orders, timeline, summary, surv, survey, region_by_code, codes, ids
    give_back_memory()
    # the Cox model once they are let go of: lifelines' fit held 0.93 GiB of 1.4M customers' design, beside the orders and
    # their timeline it was the stage's peak (2.02 GiB live; 2026-12-04)
    cox, cox_note = None, None
    try:
        cox = cox_model(customers, categorical, ph_sample=params.churn.cox_sample, seed=params.churn.seed,
                        fit_sample=params.churn.cox_fit_sample)
    except TierbookError as error:
        cox_note = _("No Cox model on this data: {reason}.", reason=error)
    except Exception as error:  # lifelines raises ConvergenceError and numpy errors on degenerate designs
        cox_note = _("The Cox model could not be fitted on this data ({error}).",
                     error=f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")

    stage = ChurnStage(
        as_of=as_of, churn_days=days, churn_days_note=note, customers=customers,
        by_tier=churn_rates(customers, "tier", order), by_segment=churn_rates(customers, "segment_zh"),
        by_channel=churn_rates(customers, "main_channel"), by_nps=churn_rates(customers, "nps_category", NPS_CATEGORIES) if has_survey else None,
        cohorts=run_cohorts(params, run_dir, as_of), km_tier=km_tier, km_nps=km_nps, cox=cox, cox_note=cox_note, prediction=prediction,
        prediction_note=prediction_note, at_risk=at_risk, tier_order=order, has_survey=has_survey, value_column=value_column)
    _write(stage, scores, run_dir)
    return stage


def _with_scores(customers: pd.DataFrame, scores: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of customer_scores (``scores``, ids as text) joined onto the stage's customers."""
    if not columns:
        return customers
    if same_ids(customers["customer_id"], scores["customer_id"]):  # the rfm stage's order: no merge of 1M ids as text
        for column in columns:
            customers[column] = scores[column].set_axis(customers.index)
        return customers
    return customers.merge(scores[["customer_id"] + columns], on="customer_id", how="left")


def at_risk_list(customers: pd.DataFrame, value_column: str, params: Params) -> pd.DataFrame:
    """Active customers in the top ``at_risk_value_share`` by value whose churn risk is at least
    ``at_risk_min_risk``, by value at risk (value x risk)."""
    c = params.churn
    active = customers[~customers["churned"] & customers["churn_risk"].notna()]
    cut = active[value_column].quantile(1 - c.at_risk_value_share)
    risky = active[(active[value_column] >= cut) & (active["churn_risk"] >= c.at_risk_min_risk)]
    columns = ["customer_id", "tier", "segment_zh", "last_nps", "recency_days", "purchase_occasions", "monetary_total"]
    columns += (["clv"] if value_column == "clv" else []) + ["churn_risk"]
    out = risky[columns].assign(value_at_risk=risky[value_column] * risky["churn_risk"])
    return out.sort_values("value_at_risk", ascending=False, ignore_index=True)


CRM_COLUMNS = ["churned", "churn_risk", "last_nps"]


def _write(stage: ChurnStage, scores: pd.DataFrame, run_dir: Path) -> None:
    """The tables, and the churn columns into customer_scores (``scores``: the columns of it the stage
    read, ids as text; the others are read here)."""
    tables = run_dir / "tables"
    tables.mkdir(exist_ok=True)
    frames = {"churn_by_tier": stage.by_tier, "churn_by_segment": stage.by_segment, "churn_by_channel": stage.by_channel,
              "churn_cohorts": stage.cohorts.rename_axis("cohort").reset_index(), "churn_km_tier": stage.km_tier.medians}
    if stage.by_nps is not None:
        frames["churn_by_nps"] = stage.by_nps
    if stage.cox is not None:
        frames["churn_cox"] = stage.cox.table
    if stage.prediction is not None:
        frames.update({"churn_model_metrics": stage.prediction.metrics, "churn_lift": stage.prediction.lift,
                       "churn_feature_importance": stage.prediction.importance, "churn_at_risk": stage.at_risk})
    for name, frame in frames.items():
        frame.to_csv(tables / f"{name}.csv", index=False, encoding="utf-8-sig")
    values = stage.customers[["customer_id"] + [c for c in CRM_COLUMNS if c in stage.customers]].set_index("customer_id")
    if "churn_risk" in values:
        values = values.assign(churn_risk=values["churn_risk"].round(4))
    if same_ids(scores["customer_id"], values.index):  # the stage's customers are the file's rows, in order: its other columns as they are
        update_customer_scores(run_dir, values.reset_index(drop=True), drop=CRM_COLUMNS)
        return
    path = run_dir / "data" / "customer_scores.parquet"
    columns = [c for c in _parquet_columns(path) if c not in CRM_COLUMNS]  # the churn columns are replaced
    others = [c for c in columns if c not in scores]
    merged = pd.read_parquet(path, columns=others) if others else pd.DataFrame(index=scores.index)
    for position, column in enumerate(columns):
        if column in scores:
            merged.insert(position, column, scores[column])
    if same_ids(merged["customer_id"], values.index):
        for column in values:  # the stage's customers are the scores' rows, in order: no join (2 s and 1 GiB at 1M)
            merged[column] = values[column].to_numpy()
    else:
        merged = merged.join(values, on="customer_id")
    write_customer_scores(merged, run_dir, export=False)  # the summary section writes the CRM files (profile.export_scores)


# --------------------------------------------------------------------------- prose


def narrative(stage: ChurnStage, params: Params) -> str:
    from .tables import money, p_text

    if not stage.ok:
        return stage.problem
    customers = stage.customers
    rate = customers["churned"].mean()
    top, bottom = stage.by_tier.iloc[0], stage.by_tier.iloc[-1]
    km = stage.km_tier
    if len(stage.by_tier) > 1:
        lines = [_("A customer counts as churned after **{note}**. As of {as_of}, **{rate:.1%} of the {n:,} customers have churned**: "
                   "{top_rate:.1%} in the top tier ({top_tier}) against {bottom_rate:.1%} in {bottom_tier}.",
                   note=stage.churn_days_note, as_of=f"{stage.as_of:%Y-%m-%d}", rate=rate, n=len(customers), top_rate=top["churn_rate"],
                   top_tier=i18n.name(top["tier"]), bottom_rate=bottom["churn_rate"], bottom_tier=i18n.name(bottom["tier"]))]
    else:
        lines = [_("A customer counts as churned after **{note}**. As of {as_of}, **{rate:.1%} of the {n:,} customers have churned**; "
                   "all of them are in one tier ({tier}).", note=stage.churn_days_note, as_of=f"{stage.as_of:%Y-%m-%d}", rate=rate,
                   n=len(customers), tier=i18n.name(top["tier"]))]
    note = logrank_note(km)
    if note:
        lines.append(note)
    elif km.logrank_p < 0.05:
        lines.append(_("Kaplan–Meier by tier: the log-rank test gives χ²({df}) = {statistic:,.1f}, {p} — tiers differ in how long customers "
                       "stay.", df=km.logrank_df, statistic=km.logrank_statistic, p=p_text(km.logrank_p)))
    else:
        lines.append(_("Kaplan–Meier by tier: the log-rank test gives χ²({df}) = {statistic:,.1f}, {p} — no evidence that tiers differ in "
                       "how long customers stay.", df=km.logrank_df, statistic=km.logrank_statistic, p=p_text(km.logrank_p)))
    if stage.by_nps is not None:
        nps = stage.by_nps.set_index("nps_category")
        if {"detractor", "promoter"} <= set(nps.index) and np.isfinite(stage.km_nps.logrank_p):
            d, p = nps.loc["detractor"], nps.loc["promoter"]
            lines.append(_("Satisfaction and churn: {d_rate:.1%} of detractors (n = {d_n:,}) have churned against {p_rate:.1%} of promoters "
                           "(n = {p_n:,}); log-rank {p}.", d_rate=d["churn_rate"], d_n=int(d["customers"]), p_rate=p["churn_rate"],
                           p_n=int(p["customers"]), p=p_text(stage.km_nps.logrank_p)))
    else:
        lines.append(_("There is no survey with NPS answers for this client, so churn is not linked to satisfaction here."))
    pred = stage.prediction
    if pred is None:
        lines.append(stage.prediction_note)
    else:
        m = pred.metrics.set_index("model")
        best = m.loc[pred.chosen]
        baseline = m.loc["BG/NBD 1 − P(alive)"] if "BG/NBD 1 − P(alive)" in m.index else None
        fields = dict(train_cutoff=f"{pred.train_cutoff:%Y-%m-%d}", eval_cutoff=f"{pred.eval_cutoff:%Y-%m-%d}", days=pred.days,
                      model=i18n.name(pred.chosen), roc_auc=best["roc_auc"], pr_auc=best["pr_auc"], base_rate=best["base_rate"],
                      feature=i18n.name(pred.importance["feature"].iloc[0].replace("_", " ")))
        if baseline is not None:
            lines.append(_("**Churn prediction:** trained on the customers active at {train_cutoff} and tested on those active at {eval_cutoff} "
                           "(whether they bought in the next {days} days), {model} ranks churners with ROC AUC {roc_auc:.3f} (PR AUC "
                           "{pr_auc:.3f}, base rate {base_rate:.1%}), against {baseline:.3f} for BG/NBD P(alive). The strongest signal is "
                           "{feature}.", baseline=baseline["roc_auc"], **fields))
        else:
            lines.append(_("**Churn prediction:** trained on the customers active at {train_cutoff} and tested on those active at {eval_cutoff} "
                           "(whether they bought in the next {days} days), {model} ranks churners with ROC AUC {roc_auc:.3f} (PR AUC "
                           "{pr_auc:.3f}, base rate {base_rate:.1%}). The strongest signal is {feature}.", **fields))
        if stage.at_risk is not None:
            c = params.churn
            fields = dict(n=len(stage.at_risk), share=c.at_risk_value_share, risk=c.at_risk_min_risk,
                          total=money(stage.at_risk[stage.value_column].sum(), params.currency))
            if stage.value_column == "clv":
                lines.append(_("**At risk:** {n:,} active customers are in the top {share:.0%} by CLV and have a churn risk of at least "
                               "{risk:.0%}; together they hold {total} of CLV.", **fields))
            else:
                lines.append(_("**At risk:** {n:,} active customers are in the top {share:.0%} by net spend to date and have a churn risk "
                               "of at least {risk:.0%}; together they hold {total} of net spend to date.", **fields))
    return "\n\n".join(lines)
