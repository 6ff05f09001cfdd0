"""The ``clv`` section: BG/NBD and Gamma-Gamma (``tierbook.clv``) on the run's clean orders,
validated on a holdout, then P(alive), expected purchases, expected spend and discounted CLV for
every customer, by tier and segment.

Validation: the models are fitted on the orders before ``as_of - clv.holdout_days`` (the
calibration period) and predict each calibration customer's purchases in the holdout days, which
are then counted; the naive baseline is each customer repeating their calibration rate
(frequency / T). Pareto/NBD is fitted on the same calibration summary as the alternative model.

When the data cannot support the models (too few customers or repeat buyers, no convergence, a
Gamma-Gamma fit with q <= 1, whose mean spend is infinite) ``run_clv_stage`` returns a stage whose
``problem`` says why in one sentence, and the report goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import i18n
from .clv import (
    BetaGeoModel,
    GammaGammaModel,
    discounted_clv,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    holdout_actuals,
    holdout_validation,
)
from .crm import update_customer_scores, write_customer_scores
from .data import read_clean
from .engine import run_summary
from .errors import TierbookError
from .i18n import _
from .params import Params
from .summary import COLUMNS, DAYS_PER_UNIT, customer_codes, customer_summary, default_as_of, same_ids, unique_sorted
from .segmentation import load_orders
from .tiers import TierRules, sorted_positions

UNIT_WORDS = {"D": "days", "W": "weeks", "M": "months", "Q": "quarters"}
HISTOGRAM_TOP = 7  # the purchase-count histogram groups 7 and more repeat purchases, as Fader, Hardie & Lee (2005)
P_ALIVE_BANDS = [0.0, 0.25, 0.5, 0.75, 1.0000001]
P_ALIVE_LABELS = ["< 25%", "25-50%", "50-75%", "≥ 75%"]
# one customer with more than half of the total (CLV, or net spend in the rfm section) among at least 10 customers is
# almost always an outlier left in by clean.outliers (a 1e9 order among orders of hundreds): the page says so
OUTWEIGH_SHARE, OUTWEIGH_MIN_CUSTOMERS = 0.5, 10


@dataclass
class ValueFit:
    """BG/NBD and Gamma-Gamma fitted on one summary, and their predictions per customer."""

    bg: BetaGeoModel
    gg: GammaGammaModel
    customers: pd.DataFrame  # summary columns + p_alive, expected_purchases, expected_spend, clv
    spend_correlation: float  # Pearson correlation of frequency and monetary_value among repeat buyers
    repeat_buyers: int  # repeat buyers with positive net spend (the Gamma-Gamma sample)
    excluded_repeat: int  # repeat buyers whose net repeat spend is zero or negative (returns)


def fit_values(summary: pd.DataFrame, params: Params) -> ValueFit:
    """Fit both models on ``summary`` (in ``clv.time_unit``) and predict every customer's value.
    Raises TierbookError with a plain reason when the data cannot support the models."""
    c = params.clv
    n = len(summary)
    if n < c.min_customers:
        raise TierbookError(f"only {n:,} customers bought before {summary.attrs.get('as_of')}; the CLV models need at least "
                            f"{c.min_customers:,} (clv.min_customers)")
    repeat = (summary["frequency"] > 0) & (summary["monetary_value"] > 0)
    if repeat.sum() < c.min_repeat_customers:
        raise TierbookError(f"only {int(repeat.sum()):,} of {n:,} customers bought again with positive net spend; the CLV models need at "
                            f"least {c.min_repeat_customers:,} repeat buyers (clv.min_repeat_customers) to learn how often customers return")
    bg = fit_bgnbd(summary)
    if not bg.converged_:
        raise TierbookError("the BG/NBD fit did not converge on this data, so its predictions cannot be trusted")
    gg = fit_gamma_gamma(summary)
    if not gg.converged_:
        raise TierbookError("the Gamma-Gamma spend model did not converge on this data, so its predictions cannot be trusted")
    if gg.params_["q"] <= 1:
        raise TierbookError(f"the Gamma-Gamma fit has q = {gg.params_['q']:.2f} <= 1: spend per purchase is too heavy-tailed for the model "
                            "(its mean is infinite); check the largest orders for outliers")
    x, t_x, T = (summary[col].to_numpy(dtype=float) for col in ("frequency", "recency", "T"))
    zbar = np.clip(summary["monetary_value"].to_numpy(dtype=float), 0, None)  # net-of-returns spend below 0 counts as 0
    horizon = c.horizon
    clipped = summary.assign(monetary_value=zbar)
    customers = summary.assign(
        p_alive=bg.p_alive(x, t_x, T),
        expected_purchases=bg.conditional_expected_purchases(horizon, x, t_x, T),
        expected_spend=gg.conditional_expected_average_value(x, zbar),
        clv=discounted_clv(bg, gg, clipped, horizon, c.margin, c.annual_discount_rate, 365.25 / DAYS_PER_UNIT[c.time_unit]),
    )
    # a fit can converge to the edge of the parameter space (r and alpha towards infinity: no heterogeneity in the
    # purchase rates; a and b too: no drop-out), where hyp2f1 overflows and the predictions are NaN
    unusable = ~np.isfinite(customers[["p_alive", "expected_purchases", "expected_spend", "clv"]].to_numpy(float)).all(axis=1)
    if unusable.any():
        shown = ", ".join(f"{k} = {v:.3g}" for k, v in bg.params_.items())
        raise TierbookError(f"the fitted BG/NBD ({shown}) gives no finite prediction for {int(unusable.sum()):,} of {n:,} customers: its "
                            "parameters are at the edge of their range, as when customers are too few or buy too regularly to show how "
                            "purchase rates and drop-out vary")
    rep = summary[repeat]
    corr = float(np.corrcoef(rep["frequency"], rep["monetary_value"])[0, 1]) if rep["frequency"].nunique() > 1 else float("nan")
    return ValueFit(bg=bg, gg=gg, customers=customers, spend_correlation=corr, repeat_buyers=int(repeat.sum()),
                    excluded_repeat=int(((summary["frequency"] > 0) & ~repeat).sum()))


def clv_basis(params: Params, orders: pd.DataFrame, as_of: pd.Timestamp, customer_ids: pd.Series) -> np.ndarray:
    """CLV per customer of ``customer_ids`` at ``as_of`` (for ``tiers.basis: clv``)."""
    summary = customer_summary(orders, as_of, occasion=params.rfm.occasion, time_unit=params.clv.time_unit)
    try:
        fit = fit_values(summary, params)
    except TierbookError as error:
        raise TierbookError(f"tiers.basis is clv but at {as_of:%Y-%m-%d} {error}; use tiers.basis: monetary_total") from None
    return fit.customers.set_index("customer_id")["clv"].reindex(customer_ids.astype(str)).fillna(0.0).to_numpy()


# --------------------------------------------------------------------------- validation


@dataclass
class Validation:
    calibration_end: pd.Timestamp
    holdout_days: int
    calibration: pd.DataFrame  # the calibration summary
    bg: BetaGeoModel
    metrics: pd.DataFrame  # one row per predictor: BG/NBD, Pareto/NBD, naive
    by_frequency: pd.DataFrame  # mean actual / BG/NBD / naive holdout purchases by calibration frequency
    tracking: pd.DataFrame  # week, cumulative actual and expected repeat purchases of the calibration cohort
    histogram: pd.DataFrame  # repeat purchases in calibration: customers observed vs expected
    chi2: float
    chi2_df: int
    chi2_p: float
    actual: np.ndarray = field(repr=False)


def tracking(orders: pd.DataFrame, calibration: pd.DataFrame, bg: BetaGeoModel, end: pd.Timestamp, occasion: str) -> pd.DataFrame:
    """Cumulative repeat purchases of the calibration cohort per week, actual and expected
    (Σ over customers of E[X(t − first purchase)]), from the cohort's first purchase to ``end``."""
    unit = DAYS_PER_UNIT[calibration.attrs["time_unit"]]
    frame = orders[(orders["order_date"] < end)]
    codes, ids = customer_codes(frame["customer_id"])
    cohort = pd.Index(calibration["customer_id"].astype(str))
    position = sorted_positions(cohort, pd.Index(ids))  # a merge of the sorted ids, not a hash of 1M strings (isin: 0.7 s)
    keep = (position >= 0 if position is not None else pd.Index(ids).isin(cohort))[codes]
    customer, day = codes[keep], frame["order_date"].to_numpy().astype("datetime64[D]").astype(np.int64)[keep]
    # distinct occasions (customer, day[, order]) as one integer each, sorted by customer then day: integer codes rather than
    # id strings (5M orders: a drop_duplicates and sort of strings)
    low, days = (int(day.min()), int(day.max()) - int(day.min()) + 1) if len(day) else (0, 1)
    order, n_orders = np.zeros(len(day), dtype=np.int64), 1
    if occasion == "order":
        order, order_keys = pd.factorize((frame["source"].astype(str) + "\x1f" + frame["order_id"].astype(str)).to_numpy()[keep])
        n_orders = max(len(order_keys), 1)
    occasions = unique_sorted((customer * days + (day - low)) * n_orders + order)
    occasion_customer, occasion_day = occasions // (days * n_orders), (occasions // n_orders) % days + low
    repeats = pd.DataFrame({"day": occasion_day[np.r_[False, occasion_customer[1:] == occasion_customer[:-1]]]})  # after the first
    first = calibration["first_purchase"].to_numpy().astype("datetime64[D]").astype(np.int64)
    start, stop = int(first.min()), int(np.datetime64(end, "D").astype(np.int64))
    week_end = np.minimum(np.arange(start + 7, stop + 7, 7), stop)
    actual = np.searchsorted(np.sort(repeats["day"].to_numpy()), week_end, side="left")  # repeat occasions before each week end
    births, counts = np.unique(first, return_counts=True)
    ages = np.clip(week_end[:, None] - births[None, :] - 1, 0, None) / unit  # T is measured to the day before, as in the summary
    expected = bg.expected_purchases(ages) @ counts
    return pd.DataFrame({"week_end": pd.to_datetime(week_end, unit="D"), "actual": actual.astype(float), "expected": expected})


def count_histogram(calibration: pd.DataFrame, bg: BetaGeoModel, top: int = HISTOGRAM_TOP) -> tuple[pd.DataFrame, float, int, float]:
    """Customers by repeat purchases in calibration (0 .. top-1, top+), observed against the model's
    Σ P(X(T_i) = x), and the chi-square goodness of fit (df = cells − 1 − 4 parameters)."""
    T_values, per_T = np.unique(calibration["T"].to_numpy(dtype=float), return_counts=True)
    expected = np.array([float(bg.probability_of_purchases(T_values, k) @ per_T) for k in range(top)])
    expected = np.r_[expected, len(calibration) - expected.sum()]
    observed = np.bincount(np.minimum(calibration["frequency"].to_numpy(), top), minlength=top + 1)[: top + 1].astype(float)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    df = top + 1 - 1 - 4
    labels = [str(k) for k in range(top)] + [f"{top}+"]
    return (pd.DataFrame({"repeat_purchases": labels, "observed": observed, "expected": expected}), chi2, df,
            float(stats.chi2.sf(chi2, df)) if df > 0 else float("nan"))


def validate(orders: pd.DataFrame, as_of: pd.Timestamp, params: Params) -> tuple[Validation | None, str | None]:
    """Fit on the calibration period, predict the holdout. Returns (validation, None) or
    (None, the reason it could not be done)."""
    c, occasion = params.clv, params.rfm.occasion
    if not c.holdout_days:
        return None, _("Holdout validation is switched off (clv.holdout_days: null).")
    cal_end = as_of - pd.Timedelta(days=c.holdout_days)
    if not (orders["order_date"] < cal_end).any():
        return None, _("No order is before {date} ({days} days before as_of), so there is nothing to calibrate on; shorten clv.holdout_days.",
                       date=f"{cal_end:%Y-%m-%d}", days=c.holdout_days)
    cal = customer_summary(orders, cal_end, occasion=occasion, time_unit=c.time_unit)  # the orders before cal_end
    repeat = int(((cal["frequency"] > 0) & (cal["monetary_value"] > 0)).sum())
    if len(cal) < c.min_customers or repeat < c.min_repeat_customers:
        return None, _("The calibration period (before {date}) has {n:,} customers and {repeat:,} repeat buyers, fewer than "
                       "clv.min_customers ({min_customers:,}) or clv.min_repeat_customers ({min_repeat:,}); shorten clv.holdout_days to validate.",
                       date=f"{cal_end:%Y-%m-%d}", n=len(cal), repeat=repeat, min_customers=c.min_customers, min_repeat=c.min_repeat_customers)
    actual = holdout_actuals(orders, cal, as_of, occasion)
    if not actual.sum():  # an as_of long after the last order: every error would be "inf %"
        return None, _("None of the {n:,} calibration customers bought in the {days} holdout days before as_of, so there are no purchases "
                       "to check the predictions against.", n=len(cal), days=c.holdout_days)
    bg = fit_bgnbd(cal)
    pnbd = fit_pareto_nbd(cal)
    periods = c.holdout_days / DAYS_PER_UNIT[c.time_unit]
    hv = holdout_validation(bg, cal, actual, periods)
    hp = holdout_validation(pnbd, cal, actual, periods)
    naive_total = float((cal["frequency"] / np.maximum(cal["T"], 1e-9) * periods).sum())
    metrics = pd.DataFrame([
        {"model": "BG/NBD", "log_likelihood": bg.log_likelihood_, "aic": 8 - 2 * bg.log_likelihood_, "predicted": hv["total_predicted"],
         "actual": hv["total_actual"], "mae": hv["mae"], "correlation": hv["correlation"]},
        {"model": "Pareto/NBD", "log_likelihood": pnbd.log_likelihood_, "aic": 8 - 2 * pnbd.log_likelihood_,
         "predicted": hp["total_predicted"], "actual": hp["total_actual"], "mae": hp["mae"], "correlation": hp["correlation"]},
        {"model": "naive (calibration rate)", "log_likelihood": np.nan, "aic": np.nan, "predicted": naive_total,
         "actual": hv["total_actual"], "mae": hv["mae_naive"], "correlation": hv["correlation_naive"]},
    ])
    metrics["error"] = metrics["predicted"] / metrics["actual"] - 1
    histogram, chi2, df, p = count_histogram(cal, bg)
    by_frequency = hv["by_frequency"].assign(frequency=lambda f: f["frequency"].map(lambda k: f"{k}+" if k == 7 else str(k)))
    return Validation(calibration_end=cal_end, holdout_days=c.holdout_days, calibration=cal, bg=bg, metrics=metrics,
                      by_frequency=by_frequency, tracking=tracking(orders, cal, bg, as_of, occasion), histogram=histogram,
                      chi2=chi2, chi2_df=df, chi2_p=p, actual=actual), None


# --------------------------------------------------------------------------- the stage


@dataclass
class CLVStage:
    as_of: pd.Timestamp
    summary: pd.DataFrame
    problem: str | None  # why the models cannot be used on this data (then the fields below are None)
    validation: Validation | None
    validation_note: str | None  # why there is no validation
    fit: ValueFit | None
    customers: pd.DataFrame | None  # per customer: ids, tier, segments, RFM columns and the predictions
    by_tier: pd.DataFrame | None
    by_segment: pd.DataFrame | None
    p_alive_bands: pd.DataFrame | None  # share of each tier's customers per P(alive) band
    clv_tiers: pd.DataFrame | None  # current tier (rows) x the tier the CLV would give (columns)
    tier_order: list[str]

    @property
    def ok(self) -> bool:
        return self.problem is None


def _group_values(customers: pd.DataFrame, key: str, order: list[str] | None = None) -> pd.DataFrame:
    total_clv = customers["clv"].sum()
    out = customers.groupby(key, observed=True).agg(
        customers=("customer_id", "size"), mean_p_alive=("p_alive", "mean"), expected_purchases=("expected_purchases", "sum"),
        mean_expected_spend=("expected_spend", "mean"), clv=("clv", "sum"), mean_clv=("clv", "mean"), median_clv=("clv", "median"),
        revenue_to_date=("monetary_total", "sum"))
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["clv_share"] = out["clv"] / total_clv if total_clv else np.nan
    out = out.reindex(order) if order else out.sort_values("clv", ascending=False)
    return out.dropna(subset=["customers"]).rename_axis(key).reset_index()


def clv_tiers(params: Params, customers: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Customers by their current tier (rows) and the tier the same levels would give with CLV as
    the basis (columns): how the business-tier rule would change with ``tiers.basis: clv``."""
    rules = TierRules([level.model_dump() for level in params.tiers.levels], basis="clv").fit(customers)
    by_clv = rules.assign(customers, customers)
    table = pd.crosstab(pd.Categorical(customers["tier"], order), pd.Categorical(by_clv, order), dropna=False)
    table.index.name, table.columns.name = "tier now", "tier by CLV"
    return table


def in_time_unit(summary: pd.DataFrame, time_unit: str) -> pd.DataFrame:
    """``summary`` (``tierbook.summary.COLUMNS``) with ``recency`` and ``T``, the only columns in a time
    unit, in ``time_unit``: whole days divided by the unit's length, the same two IEEE operations as the
    engine's and the pandas summary's (days first to last purchase = tenure_days - recency_days; T counts
    to the day before as_of = tenure_days - 1), so the same bits as a summary made in that unit."""
    recency, T = _in_time_unit(summary, time_unit)
    out = summary.assign(recency=recency, T=T)
    out.attrs = {**summary.attrs, "time_unit": time_unit}
    return out


def _in_time_unit(summary: pd.DataFrame, time_unit: str) -> tuple[np.ndarray, np.ndarray]:
    """``in_time_unit``'s ``recency`` and ``T``."""
    unit = DAYS_PER_UNIT[time_unit]
    tenure, since_last = summary["tenure_days"].to_numpy(dtype=np.int64), summary["recency_days"].to_numpy(dtype=np.int64)
    return (tenure - since_last).astype(np.float64) / unit, (tenure - 1).astype(np.float64) / unit


def section_summary(params: Params, run_dir: Path, as_of: pd.Timestamp, time_unit: str | None = None) -> pd.DataFrame:
    """The per-customer summary at ``as_of`` in ``time_unit`` (``clv.time_unit`` by default; the churn section reads
    it too): the one the rfm section had the engine
    compute and wrote (``data/customer_summary.parquet``, in ``rfm.time_unit``), put in the CLV's unit
    by ``in_time_unit``; the engine's summary (``run_summary``) when that file is missing, older than
    the run's orders, or for another as_of or occasion. At 1M customers: 1.1 s CPU to read, against
    6.6 s for the engine to compute it again (2026-12-02).

    Read by ``read_clean`` (its ids without pyarrow's table of the strings already made: 1.4M customers 0.44 s against
    1.39 s for ``pd.read_parquet``, the same frame and attrs), the time unit's two columns replaced in the frame read (no
    copy of the 1.4M rows; 2026-12-04)."""
    path, orders = Path(run_dir) / "data" / "customer_summary.parquet", Path(run_dir) / "data" / "orders.parquet"
    if path.exists() and (not orders.exists() or path.stat().st_mtime >= orders.stat().st_mtime):
        saved = read_clean(path)
        if (list(saved.columns) == COLUMNS and saved.attrs.get("as_of") == as_of.date().isoformat()
                and saved.attrs.get("occasion") == params.rfm.occasion and len(saved)):
            unit = time_unit or params.clv.time_unit
            saved["recency"], saved["T"] = _in_time_unit(saved, unit)  # in_time_unit in the frame read
            saved.attrs = {**saved.attrs, "time_unit": unit}
            return saved
    return run_summary(params, run_dir, as_of, occasion=params.rfm.occasion, time_unit=time_unit or params.clv.time_unit)


def run_clv_stage(params: Params, run_dir: Path) -> CLVStage:
    orders = load_orders(params, run_dir)
    as_of = pd.Timestamp(params.rfm.as_of) if params.rfm.as_of else default_as_of(orders)
    summary = section_summary(params, run_dir, as_of)  # the engine's (params.engine), computed once by the rfm section
    order = [level.name for level in params.tiers.levels]
    empty = dict(validation=None, validation_note=None, fit=None, customers=None, by_tier=None, by_segment=None,
                 p_alive_bands=None, clv_tiers=None, tier_order=order)
    try:
        fit = fit_values(summary, params)
    except TierbookError as error:
        return CLVStage(as_of=as_of, summary=summary, problem=_("The CLV models cannot be used on this data: {error}.", error=error), **empty)
    validation, note = validate(orders, as_of, params)
    del orders  # read again by no step below (0.1 GiB of the section's peak at 1M customers, 2026-12-02)
    scored = _read_scored(run_dir / "data" / "customer_scores.parquet", ["customer_id", "tier", "segment_zh", "segment_en", "named_segment", "rfm_score"])
    customers = fit.customers.assign(customer_id=fit.customers["customer_id"].astype(str))
    if same_ids(customers["customer_id"], scored["customer_id"], unique=True) and isinstance(customers.index, pd.RangeIndex):
        # the rfm stage's rows are this summary's customers in the same order: its columns by position, as the merge
        # (hashing 1M id strings) would place them
        customers = customers.assign(**{c: scored[c].set_axis(customers.index) for c in scored.columns if c != "customer_id"})
        customers.attrs = {}  # a merge's result has none
    else:
        customers = customers.merge(scored, on="customer_id", how="left")
    bands = pd.cut(customers["p_alive"], P_ALIVE_BANDS, labels=P_ALIVE_LABELS, right=False)
    p_alive_bands = pd.crosstab(pd.Categorical(customers["tier"], order), bands, normalize="index").rename_axis("tier")
    stage = CLVStage(
        as_of=as_of, summary=summary, problem=None, validation=validation, validation_note=note, fit=fit, customers=customers,
        by_tier=_group_values(customers, "tier", order), by_segment=_group_values(customers, "segment_zh"),
        p_alive_bands=p_alive_bands, clv_tiers=clv_tiers(params, customers, order), tier_order=order)
    _write(stage, scored["customer_id"], run_dir)
    return stage


def _read_scored(path: Path, columns: list[str]) -> pd.DataFrame:
    """``columns`` of customer_scores, the ids as text and the other text columns as Python strings (object), made once
    per distinct value from the column read as a dictionary: read the plain way, 1.4M customers' tiers and segments were
    a string each (and the tier Arrow text, by the file's pandas description)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    text = [c for c in columns if c != "customer_id" and (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))]
    scored = read_clean(path, columns=columns, read_dictionary=text or None)
    for column in text:  # the categories' own strings picked per row; a missing value None, as the plain read gives it
        scored[column] = scored[column].astype(object).where(scored[column].notna(), None)
    scored["customer_id"] = scored["customer_id"].astype(str)
    return scored


CRM_COLUMNS = ["p_alive", "expected_purchases", "expected_spend", "clv"]


def _write(stage: CLVStage, ids: pd.Series, run_dir: Path) -> None:
    """The section's tables, and its columns of customer_scores (``ids``: the file's customer ids, as text)."""
    tables = run_dir / "tables"
    tables.mkdir(exist_ok=True)
    fit = stage.fit
    parameters = pd.concat([fit.bg.summary.assign(model="BG/NBD"), fit.gg.summary.assign(model="Gamma-Gamma")]).rename_axis("parameter")
    frames = {"clv_parameters": parameters.reset_index(), "clv_by_tier": stage.by_tier, "clv_by_segment": stage.by_segment,
              "clv_top_customers": top_customers(stage, len(stage.customers))}
    if stage.validation is not None:
        frames.update({"clv_holdout_metrics": stage.validation.metrics, "clv_holdout_by_frequency": stage.validation.by_frequency,
                       "clv_tracking": stage.validation.tracking, "clv_count_histogram": stage.validation.histogram})
    for name, frame in frames.items():
        write_table(frame, tables / f"{name}.csv")
    decimals = {"p_alive": 4, "expected_purchases": 3, "expected_spend": 2, "clv": 2}
    values = stage.customers[["customer_id", *CRM_COLUMNS]].round(decimals)
    if same_ids(ids, values["customer_id"], unique=True):  # by position, as in run_clv_stage: the file's other columns as they are
        update_customer_scores(run_dir, values[CRM_COLUMNS])
        return
    scores = pd.read_parquet(run_dir / "data" / "customer_scores.parquet")
    scores["customer_id"] = scores["customer_id"].astype(str)
    scores = scores.drop(columns=[c for c in CRM_COLUMNS if c in scores])
    merged = scores.join(values.set_index("customer_id")[CRM_COLUMNS], on="customer_id")
    write_customer_scores(merged, run_dir, export=False)  # the summary section writes the CRM files (profile.export_scores)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """``frame.to_csv(path, index=False, encoding="utf-8-sig")``, the same bytes, written by pyarrow when
    every column is numbers or text that needs no quotes (else by pandas). clv_top_customers has every
    customer: pandas took 12.4 s CPU on 1M rows, mostly turning doubles into text (2026-12-02)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = [_csv_column(frame[name]) for name in frame.columns]
    header = ",".join(map(str, frame.columns))
    plain_names = not any(c in str(name) for name in frame.columns for c in ',"\r\n')
    if any(column is None for column in columns) or not plain_names or not len(frame.columns):
        frame.to_csv(path, index=False, encoding="utf-8-sig")
        return
    table = pa.Table.from_arrays(columns, names=[str(i) for i in range(len(columns))])
    with open(path, "wb") as stream:
        stream.write(("\ufeff" + header + "\n").encode("utf-8"))
        try:
            # no quotes: pandas (csv.QUOTE_MINIMAL) quotes only values with a comma, quote or line break, which pyarrow refuses here
            pacsv.write_csv(table, stream, pacsv.WriteOptions(include_header=False, quoting_style="none"))
            return
        except pa.ArrowInvalid:
            pass
    frame.to_csv(path, index=False, encoding="utf-8-sig")


def _csv_column(values: pd.Series):
    """A column as the text pandas' ``to_csv`` writes (missing: null, written empty), or None when it is
    not one this knows: doubles as numpy's ``str`` (the shortest text that reads back to the same double),
    integers in decimals, text as it is."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        numbers = values.to_numpy(dtype=np.float64)
        text = pc.cast(pa.array(numbers), pa.string())
        # pyarrow's cast writes the same shortest digits as numpy (0 mismatches in 11.8M random doubles), in the same
        # layout for non-integers from 1e-4 up to 1e9; the others (1.0 -> "1", 1e-05 -> "0.00001", 1e10 -> "1e+10",
        # nan, inf) are formatted by numpy as pandas does it
        magnitude = np.abs(numbers)
        with np.errstate(invalid="ignore"):
            own = ~np.isfinite(numbers) | (numbers == np.floor(numbers)) | (magnitude < 1e-4) | (magnitude >= 1e9)
        if own.any():
            texts = numbers[own].astype(str).astype(object)
            texts[np.isnan(numbers[own])] = None  # pandas' na_rep ""
            text = pc.replace_with_mask(text, pa.array(own), pa.array(texts, type=pa.string()))
        return text
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return pc.cast(pa.array(values.to_numpy()), pa.string())
    if dtype == object or isinstance(dtype, pd.StringDtype):
        try:
            return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text
            return None
    return None


def clv_points(stage: CLVStage) -> pd.DataFrame:
    """Each customer's ``clv`` and ``tier``, the tier a categorical in tier order: what
    ``plots.clv_distribution`` draws. seaborn's stacked histogram of the 1M demo's customers took 1.8 s
    CPU from ``stage.customers`` (23 columns, tiers as Arrow text) and 0.7 s from these two columns, the
    same PNG (2026-12-02)."""
    customers = stage.customers
    return pd.DataFrame({"clv": customers["clv"].to_numpy(), "tier": pd.Categorical(customers["tier"], categories=stage.tier_order)},
                        index=customers.index)


def top_customers(stage: CLVStage, n: int) -> pd.DataFrame:
    columns = ["customer_id", "tier", "segment_zh", "purchase_occasions", "monetary_total", "recency_days", "p_alive",
               "expected_purchases", "expected_spend", "clv"]
    return stage.customers[columns].nlargest(n, "clv").reset_index(drop=True)  # the columns first: nlargest copies the frame twice


# --------------------------------------------------------------------------- prose


def narrative(stage: CLVStage, params: Params) -> str:
    """Findings of the section in sentences generated from its numbers."""
    from .tables import money

    if not stage.ok:
        return stage.problem
    c, cur = params.clv, params.currency
    unit = UNIT_WORDS[c.time_unit]
    customers, fit = stage.customers, stage.fit
    gg = fit.gg.params_
    spend = money(gg["p"] * gg["gamma"] / (gg["q"] - 1), cur)
    total = customers["clv"].sum()
    top = stage.by_tier.iloc[0]
    dead = float((customers["p_alive"] < 0.5).mean())
    lines = [
        _("As of {date}, the {n:,} customers are expected to make **{purchases:,.0f} purchases in the next {horizon} {unit}**, worth a CLV of "
          "**{total}** at a {margin:.0%} margin and a {discount:.0%} annual discount rate (mean {mean} per customer).",
          date=f"{stage.as_of:%Y-%m-%d}", n=len(customers), purchases=customers["expected_purchases"].sum(), horizon=c.horizon, unit=_(unit),
          total=money(total, cur), margin=c.margin, discount=c.annual_discount_rate, mean=money(customers["clv"].mean(), cur)),
        _("The top tier, **{tier}**, holds {customer_share:.1%} of customers and {clv_share:.1%} of the CLV.", tier=i18n.name(top["tier"]),
          customer_share=top["customer_share"], clv_share=top["clv_share"]) + ("" if i18n.lang() == "zh" else " ")
        + _("{dead:.0%} of customers are more likely gone than alive (P(alive) < 50%).", dead=dead),
        (_("Spend: Gamma-Gamma on the {n:,} repeat buyers with positive net spend gives a mean spend per purchase of {mean} "
           "({excluded:,} repeat buyers whose returns cancel their repeat spend are left out of the fit).",
           n=fit.repeat_buyers, mean=spend, excluded=fit.excluded_repeat) if fit.excluded_repeat else
         _("Spend: Gamma-Gamma on the {n:,} repeat buyers with positive net spend gives a mean spend per purchase of {mean}.",
           n=fit.repeat_buyers, mean=spend)),
    ]
    biggest = customers.loc[customers["clv"].idxmax()] if total > 0 else None
    if biggest is not None and len(customers) >= OUTWEIGH_MIN_CUSTOMERS and biggest["clv"] > OUTWEIGH_SHARE * total:
        lines.append(_("**Warning:** one customer holds {share:.0%} of the total CLV (net spend to date {spend}); check that customer's orders "
                       "for an outlier (clean.outliers) before reading CLV by tier or segment.", share=biggest["clv"] / total,
                       spend=money(biggest["monetary_total"], cur)))
    corr = fit.spend_correlation
    if np.isfinite(corr) and abs(corr) > c.max_spend_correlation:
        lines.append(_("**Warning:** among repeat buyers, spend per purchase and purchase frequency are correlated (r = {corr:.2f}, above "
                       "clv.max_spend_correlation {limit}). Gamma-Gamma assumes they are independent, so the CLV of frequent buyers is likely "
                       "understated; rank customers by CLV with care.", corr=corr, limit=c.max_spend_correlation) if corr > 0 else
                     _("**Warning:** among repeat buyers, spend per purchase and purchase frequency are correlated (r = {corr:.2f}, above "
                       "clv.max_spend_correlation {limit}). Gamma-Gamma assumes they are independent, so the CLV of frequent buyers is likely "
                       "overstated; rank customers by CLV with care.", corr=corr, limit=c.max_spend_correlation))
    else:
        lines.append(_("Spend per purchase barely depends on purchase frequency (r = {corr:.2f}), as Gamma-Gamma assumes.", corr=corr))
    v = stage.validation
    if v is None:
        lines.append(stage.validation_note)
    else:
        m = v.metrics.set_index("model")
        b, naive = m.loc["BG/NBD"], m.loc["naive (calibration rate)"]
        lines.append(_(
            "**Validation:** fitted on the orders before {date} and asked to predict the following {days} days, BG/NBD predicted "
            "{predicted:,.0f} purchases by the calibration customers against {actual:,.0f} made ({error:+.1%}); per customer its mean "
            "absolute error is {mae:.3f} against {naive_mae:.3f} for the naive forecast (each customer repeating their calibration rate), "
            "correlation with the actual counts {correlation:.2f} against {naive_correlation:.2f}. The purchase-count histogram fit: "
            "χ²({df}) = {chi2:.1f}, p = {p:.3f}.",
            date=f"{v.calibration_end:%Y-%m-%d}", days=v.holdout_days, predicted=b["predicted"], actual=b["actual"], error=b["error"],
            mae=b["mae"], naive_mae=naive["mae"], correlation=b["correlation"], naive_correlation=naive["correlation"], df=v.chi2_df,
            chi2=v.chi2, p=v.chi2_p))
    return "\n\n".join(lines)
