"""The ``ab_test`` section: the experiment table of the run, its outcomes and covariates, and every
analysis of :mod:`tierbook.abtest` in the order a stakeholder should read them (sample ratio
first: when it fails, nothing else is to be trusted).

Outcomes are the per-customer columns the experiment source maps under ``outcomes``; without
them they are derived from the clean orders in ``ab_test.outcome_window_days`` days from each
customer's ``assigned_date`` (revenue, conversion, orders). The covariate is the table's
``pre_value`` column, else each customer's net spend in ``ab_test.pre_period_days`` days before
assignment. Strata are the table's ``stratum`` column, else the customer's tier (or segment) at
the analysis date from the rfm section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import abtest, i18n
from .data import load_clean, read_clean
from .errors import TierbookError
from .i18n import _
from .params import Params
from .summary import customer_codes


@dataclass
class ABStage:
    problem: str | None = None  # why the section cannot run (no experiment, no outcomes ...); then the rest is empty
    notes: list[str] = field(default_factory=list)  # how outcomes, covariate and strata were obtained
    control: str = ""
    treatments: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    primary: str = ""
    strata: str | None = None  # column of ``table`` holding the stratum, or None
    strata_label: str = ""
    covariate: str | None = None
    table: pd.DataFrame | None = None
    srm: pd.DataFrame | None = None
    balance: pd.DataFrame | None = None
    effects: pd.DataFrame | None = None
    interaction: pd.DataFrame | None = None
    bayes: pd.DataFrame | None = None
    power: pd.DataFrame | None = None
    roi: pd.DataFrame | None = None
    verdicts: pd.DataFrame | None = None
    margin: float = 0.0

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def tested(self) -> bool:
        """Whether any comparison had enough customers in both arms (``ab_test.min_n``) to be tested."""
        return bool(self.effects is not None and self.effects["p_value"].notna().any())

    @property
    def srm_failed(self) -> bool:
        return bool(self.srm is not None and self.srm["srm"].any())


def _read_experiment(run_dir: Path) -> pd.DataFrame | None:
    path = run_dir / "data" / "experiment.parquet"
    return pd.read_parquet(path) if path.exists() else None


def _codes_of(ids: np.ndarray, values: pd.Series) -> np.ndarray:
    """The position of each of ``values`` (as text) among ``ids`` (distinct texts), -1 where absent:
    ``pd.Index(ids).get_indexer(values.astype(str))`` by Arrow's hash lookup, without 1M Python
    strings hashed (0.8 s -> 0.3 s CPU at 1M customers, 2026-12-02)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow" and not values.isna().any():
        texts = pa.array(values.array)
    else:
        texts = pa.array(values.astype(str).to_numpy(), type=pa.string())
    found = pc.index_in(texts, value_set=pa.array(ids, type=pa.string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _order_rows(experiment: pd.DataFrame, orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each experiment row joined with its customer's orders, on integer customer codes: the
    experiment row (``row``) and the order (its position, ``taken``) of each pair. A merge of 600k
    assignments with 5M orders by id strings took most of the A/B section at 1M customers.

    The pairs are those of ``e.merge(o, on="c", how="inner")``, each experiment row's orders in the
    orders' order, so that sums grouped by ``row`` are the merge's to the bit; when no customer is in
    the experiment twice they come in the orders' order (each order looks its row up: 0.8 s -> 0.2 s
    CPU at 1M customers, 2026-12-02), otherwise in the merge's order, through the orders sorted by
    customer."""
    codes, ids = customer_codes(orders["customer_id"])
    c = _codes_of(ids, experiment["customer_id"])
    rows = np.flatnonzero(c >= 0)
    row_of = np.full(len(ids), -1)
    row_of[c[rows]] = rows
    if np.count_nonzero(row_of >= 0) == len(rows):  # one row per customer
        row = row_of[codes]
        taken = np.flatnonzero(row >= 0)
        row = row[taken]
    else:
        by_customer = np.argsort(codes, kind="stable")
        count = np.bincount(codes, minlength=len(ids))
        first = np.cumsum(count) - count  # each customer's first order in by_customer
        k = count[c[rows]]
        row = np.repeat(rows, k)
        taken = by_customer[np.arange(len(row)) + np.repeat(first[c[rows]] - (np.cumsum(k) - k), k)]
    return row, taken


def _orders_of(experiment: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Each experiment row (``row``, ``c``: its customer's code, ``assigned``) joined with its customer's orders
    (``order_date``, ``net_amount``), in the order of :func:`_order_rows`."""
    codes, ids = customer_codes(orders["customer_id"])
    row, taken = _order_rows(experiment, orders)
    return pd.DataFrame({"row": row, "c": codes[taken], "assigned": experiment["assigned_date"].to_numpy()[row],
                         "order_date": orders["order_date"].to_numpy()[taken], "net_amount": orders["net_amount"].to_numpy()[taken]})


def pre_period(experiment: pd.DataFrame, orders: pd.DataFrame, days: int) -> pd.DataFrame:
    """Per experiment row: net spend and orders in ``days`` days before its assigned_date, and days
    since the last purchase before it (NaN when none): the pre-period covariate and RFM at assignment.

    Counted on the joined rows' arrays: the spend summed as ``groupby("row").sum()`` sums it (pandas' grouped sum over each
    row's orders in order, ``tags.sums_by_key``), orders counted and the last order date taken per row by numpy (the frame
    of 5M joined orders and its three groupbys took about 2 s CPU at 1M customers, 2026-12-02)."""
    from .tags import sums_by_key

    row, taken = _order_rows(experiment, orders)
    assigned = experiment["assigned_date"].to_numpy()[row]
    order_date = orders["order_date"].to_numpy()[taken]
    before = order_date < assigned
    recent = before & (order_date >= assigned - np.timedelta64(days, "D"))
    n = len(experiment)
    spend = sums_by_key(pd.Series(orders["net_amount"].to_numpy()[taken][recent]), row[recent], n)
    last = np.full(n, np.datetime64("NaT"), dtype=order_date.dtype)
    seen = np.zeros(n, dtype=bool)
    seen[row[before]] = True
    latest = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(latest, row[before], order_date[before].view(np.int64))  # the maximum whatever the order
    last[seen] = latest[seen].view(order_date.dtype)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["pre_spend"] = spend.reindex(out.index, fill_value=0.0).to_numpy()
    out["pre_orders"] = np.bincount(row[recent], minlength=n).astype(np.int64)
    out["pre_recency_days"] = (pd.Series(experiment["assigned_date"].to_numpy()) - pd.Series(last)).dt.days.to_numpy(float)
    return out


def window_outcomes(experiment: pd.DataFrame, orders: pd.DataFrame, days: int) -> pd.DataFrame:
    """Per experiment row: net revenue, conversion (any order) and orders in the ``days`` days from assigned_date."""
    m = _orders_of(experiment, orders)
    m = m[(m["order_date"] >= m["assigned"]) & (m["order_date"] < m["assigned"] + pd.Timedelta(days=days))]
    out = pd.DataFrame(index=pd.RangeIndex(len(experiment)))
    out[f"revenue_{days}d"] = m.groupby("row")["net_amount"].sum().reindex(out.index, fill_value=0.0).to_numpy()
    out[f"orders_{days}d"] = m.groupby("row").size().reindex(out.index, fill_value=0).to_numpy()
    out[f"converted_{days}d"] = (out[f"orders_{days}d"] > 0).astype(int)
    return out[[f"revenue_{days}d", f"converted_{days}d", f"orders_{days}d"]]


def run_ab_stage(params: Params, run_dir: Path) -> ABStage:
    a = params.ab_test
    table = _read_experiment(run_dir)
    if params.sources.experiment is None or table is None:
        return ABStage(problem=_("This client has no experiment table (`sources.experiment` in params), so there is no A/B test to evaluate."))
    if table.empty:
        return ABStage(problem=_("The experiment table has no usable rows after cleaning (see the data section's rejected rows)."))
    table = table.reset_index(drop=True)
    table["variant"] = table["variant"].astype(str)
    notes: list[str] = []
    try:
        control = abtest._control(table, "variant", a.control)
    except TierbookError as error:
        return ABStage(problem=f"{error}.")
    treatments = sorted(set(table["variant"]) - {control})
    if not treatments:
        return ABStage(problem=_("The experiment table has only the control arm ({control}); there is nothing to compare.", control=control))
    orders = load_clean(run_dir, "orders", columns=["customer_id", "order_date", "net_amount"])  # 6.6 s -> 3.2 s CPU at 1M (2026-12-02)
    has_dates = "assigned_date" in table and table["assigned_date"].notna().all()

    outcomes = list(params.sources.experiment.outcomes.values())
    if outcomes:
        notes.append(_("Outcomes as given in the experiment file: {outcomes}.", outcomes=", ".join(outcomes)))
    elif has_dates:
        end = table["assigned_date"].max() + pd.Timedelta(days=a.outcome_window_days)
        last = orders["order_date"].max()
        if last < end - pd.Timedelta(days=1):
            return ABStage(problem=_("The outcome window ({days} days from assignment, until {end}) is not over in the data (last order {last}); "
                                     "shorten `ab_test.outcome_window_days` or wait for more data.", days=a.outcome_window_days,
                                     end=f"{end:%Y-%m-%d}", last=f"{last:%Y-%m-%d}"))
        derived = window_outcomes(table, orders, a.outcome_window_days)
        table = pd.concat([table, derived], axis=1)
        outcomes = list(derived.columns)
        notes.append(_("Outcomes derived from the clean orders in the {days} days from each customer's assignment: net revenue, conversion "
                       "(any order) and number of orders.", days=a.outcome_window_days))
    else:
        return ABStage(problem=_("The experiment table gives no outcomes and no assignment dates to derive them from the orders; map outcome "
                                 "columns under `sources.experiment.outcomes` or an `assigned_date` column."))

    covariate = None
    balance_columns: list[str] = []
    if has_dates:
        pre = pre_period(table, orders, a.pre_period_days)
        table = pd.concat([table, pre], axis=1)
        balance_columns += ["pre_spend", "pre_orders"]
    if a.covariate == "auto":
        if "pre_value" in table and table["pre_value"].notna().any():
            covariate = "pre_value"
            notes.append(_("CUPED covariate: the pre-period value given in the experiment file."))
        elif has_dates:
            covariate = "pre_spend"
            notes.append(_("CUPED covariate: each customer's net spend in the {days} days before assignment.", days=a.pre_period_days))
    if covariate == "pre_value":
        balance_columns = ["pre_value"] + balance_columns

    strata, label = None, ""
    scores_path = run_dir / "data" / "customer_scores.parquet"
    wanted = a.strata
    if wanted == "auto":
        wanted = "stratum" if "stratum" in table and table["stratum"].notna().any() else "tier"
    if wanted == "stratum":
        if "stratum" not in table:
            return ABStage(problem=_("`ab_test.strata: stratum` but the experiment source maps no `stratum` column; map it or use tier."))
        strata, label = "stratum", _("stratum of the experiment file")
    elif wanted in ("tier", "segment") and scores_path.exists():
        column = "tier" if wanted == "tier" else "segment_zh"
        scores = read_clean(scores_path, columns=["customer_id", column])
        mapping = scores.assign(customer_id=scores["customer_id"].astype(str)).set_index("customer_id")[column].astype(str)
        table["stratum_" + wanted] = table["customer_id"].astype(str).map(mapping).fillna("no purchase history")
        strata = "stratum_" + wanted
        label = _("customer's tier at the analysis date") if wanted == "tier" else _("customer's segment at the analysis date")
    if strata is not None and table[strata].nunique() < 2:
        strata = None
    if strata is not None:
        notes.append(_("Strata: the {label} ({groups} groups).", label=label, groups=table[strata].nunique()))

    primary = a.primary or next((o for o in outcomes if not abtest.is_binary(table[o])), outcomes[0])
    if primary not in outcomes:
        return ABStage(problem=_("`ab_test.primary` is {primary!r}, which is not an outcome; outcomes: {outcomes}.", primary=primary,
                                 outcomes=", ".join(outcomes)))
    small = None
    if strata is not None:  # strata too small to test are kept in the table but not tested
        sizes = table.groupby([strata, "variant"], observed=True).size().unstack(fill_value=0)
        small = sizes.index[(sizes.min(axis=1) < a.min_n)].astype(str).tolist()
        if small:
            notes.append(_("Not tested (fewer than {min_n} customers in an arm, `ab_test.min_n`): {strata}.", min_n=a.min_n,
                           strata=", ".join(i18n.name(s) for s in small)))

    srm = abtest.srm_check(table, planned=a.planned_split, strata=strata)
    balance = abtest.balance(table, balance_columns, control=control) if balance_columns else None
    effects = abtest.evaluate(table, outcomes, control=control, strata=strata, covariate=covariate, correction=a.correction,
                              confidence=a.confidence, winsorize_quantile=a.winsorize, bootstrap=a.bootstrap_resamples > 0,
                              n_resamples=max(a.bootstrap_resamples, 1), seed=a.seed, min_n=a.min_n)
    interaction = pd.concat([abtest.interaction_test(table[~table[strata].isin(small or [])], o, strata, control=control, covariate=covariate)
                             for o in outcomes], ignore_index=True) if strata is not None else None
    bayes = pd.concat([abtest.bayes(table, o, control=control, strata=strata, seed=a.seed) for o in outcomes], ignore_index=True)
    power = abtest.power(effects, table, control=control, alpha=a.alpha, target_power=a.power, target_lift=a.target_lift)
    margin = a.margin if a.margin is not None else params.clv.margin
    costs = dict(a.cost_per_treated)
    if "cost" in table and table["cost"].notna().any():
        costs = table[table["variant"] != control].groupby("variant")["cost"].mean().to_dict()
        notes.append(_("Cost per treated customer: the mean of the experiment file's cost column in each arm."))
    returns = abtest.roi(effects, primary, costs, margin) if not abtest.is_binary(table[primary]) else None
    verdicts = abtest.verdicts(effects, srm, primary, returns, alpha=a.alpha, currency=params.currency)
    stage = ABStage(notes=notes, control=control, treatments=treatments, outcomes=outcomes, primary=primary, strata=strata, strata_label=label,
                    covariate=covariate, table=table, srm=srm, balance=balance, effects=effects, interaction=interaction, bayes=bayes,
                    power=power, roi=returns, verdicts=verdicts, margin=margin)
    _write(stage, run_dir)
    return stage


def _write(stage: ABStage, run_dir: Path) -> None:
    tables = run_dir / "tables"
    tables.mkdir(exist_ok=True)
    frames = {"ab_srm": stage.srm, "ab_balance": stage.balance, "ab_effects": stage.effects, "ab_interaction": stage.interaction,
              "ab_bayes": stage.bayes, "ab_power": stage.power, "ab_roi": stage.roi, "ab_verdicts": stage.verdicts}
    for name, frame in frames.items():
        if frame is not None:
            frame.to_csv(tables / f"{name}.csv", index=False, encoding="utf-8-sig")


# --------------------------------------------------------------------------- prose


def _p(p: float) -> str:
    from .tables import p_text

    return p_text(p)


def narrative(stage: ABStage, params: Params) -> str:
    """The section's opening paragraphs, from the numbers: SRM first, then the verdicts."""
    if not stage.ok:
        return stage.problem
    a = params.ab_test
    lines = []
    overall = stage.srm.iloc[0]
    arms = [c[2:] for c in stage.srm.columns if c.startswith("n_") and c != "n"]
    counts = ", ".join(f"{arm} {int(overall['n_' + arm]):,}" for arm in arms)
    if stage.srm_failed:
        bad = stage.srm[stage.srm["srm"]]
        where = ", ".join(i18n.name(s) for s in bad["stratum"].replace({abtest.ALL: "overall"}))
        lines.append('<div class="tb-alert">⚠ ' + _(
            "<strong>Sample ratio mismatch ({where}): do not trust the effects below.</strong> The arms ({counts}) are not the planned split "
            "(χ² {p}, below the 0.001 alarm level). Something in the assignment or the logging dropped or added customers in one arm; find "
            "out why before reading any effect.", where=where, counts=counts, p=_p(bad["p_value"].min())) + "</div>")
    else:
        lines.append(_("**Sample ratio:** {counts} — consistent with the planned split (χ² {p}), overall and in every stratum.",
                       counts=counts, p=_p(overall["p_value"])))
    v = stage.verdicts
    ship = v[(v["verdict"] == "ship") & (v["stratum"] != abtest.ALL)]
    method = abtest.CORRECTION_NAMES[a.correction]
    for row in v[v["stratum"] == abtest.ALL].itertuples():
        lines.append(_("**Overall, {treatment} vs {control} on {primary}: {verdict}** — {reason}.", treatment=row.treatment,
                       control=stage.control, primary=stage.primary, verdict=i18n.name(row.verdict), reason=row.reason))
    if not stage.tested:
        lines.append(_("No comparison has at least {min_n} customers (ab_test.min_n) in each arm, overall or in any stratum, so nothing is "
                       "tested: the tables below show the arms' sizes and means only.", min_n=a.min_n))
    elif stage.strata is not None and not stage.effects.loc[stage.effects["stratum"] != abtest.ALL, "p_value"].notna().any():
        lines.append(_("No stratum has at least {min_n} customers (ab_test.min_n) in each arm, so only the overall comparison is tested.",
                       min_n=a.min_n))
    elif stage.strata is not None:
        if len(ship):
            names = ", ".join(f"{i18n.name(r.stratum)} ({r.treatment})" for r in ship.itertuples())
            lines.append(_("**Per stratum ({strata}), after {method} correction across strata and outcomes, ship in: {names}.**",
                           strata=stage.strata_label, method=method, names=names))
        else:
            lines.append(_("Per stratum ({strata}), after {method} correction across strata and outcomes, no stratum shows a worthwhile "
                           "effect on the primary outcome.", strata=stage.strata_label, method=method))
        if stage.interaction is not None and len(stage.interaction):
            i = stage.interaction[stage.interaction["outcome"] == stage.primary]
            for row in i.itertuples():
                fields = dict(treatment=row.treatment, primary=stage.primary, dof=row.dof, chi2=row.chi2, p=_p(row.p_value))
                if row.p_value < a.alpha:
                    lines.append(_("Interaction test ({treatment}, {primary}): χ²({dof}) = {chi2:.2f}, {p} — the effect differs between "
                                   "strata.", **fields))
                else:
                    lines.append(_("Interaction test ({treatment}, {primary}): χ²({dof}) = {chi2:.2f}, {p} — no evidence that the effect "
                                   "differs between strata.", **fields))
    e = stage.effects
    if stage.covariate is not None and "variance_reduction" in e:
        r = e[(e["stratum"] == abtest.ALL) & (e["outcome"] == stage.primary)]["variance_reduction"]
        if len(r) and pd.notna(r.iloc[0]):
            lines.append(_("CUPED with the pre-period covariate removes {removed:.0%} of the variance of {primary} (intervals {narrower:.0%} "
                           "narrower), so the verdicts use the CUPED estimates.", removed=r.iloc[0], primary=stage.primary,
                           narrower=1 - np.sqrt(1 - max(r.iloc[0], 0))))
    return "\n\n".join(lines)


# --------------------------------------------------------------------------- tables for the page


def _nobreak(text: str) -> str:
    """Keep a figure on one line in a narrow table cell: no break at spaces or after a sign."""
    return re.sub(r"([+\-−])(\D)", "\\1\u2060\\2", text.replace(" ", "\u00a0"))


def _interval(low: float, high: float, fmt) -> str:
    return "" if pd.isna(low) else _nobreak(_("{low} to {high}", low=fmt(low), high=fmt(high)))


def effect_table(stage: ABStage, outcome: str, currency: str) -> pd.DataFrame:
    """One outcome's effects as the page shows them: rates in % and differences in percentage
    points for binary outcomes, amounts in the currency otherwise; intervals as 'low to high'."""
    from .tables import money, p_value

    e = stage.effects[stage.effects["outcome"] == outcome]
    binary = bool((e["kind"] == "binary").any())
    if binary:
        rate, diff = (lambda v: f"{v:.1%}"), (lambda v: f"{v * 100:+.2f} pp")
    else:
        rate, diff = (lambda v: money(v, currency)), (lambda v: ("+" if v >= 0 else "") + money(v, currency))

    def level(v):  # an arm without customers in a stratum has no mean: an empty cell, not "nan %"
        return "" if pd.isna(v) else rate(v)

    out = pd.DataFrame({
        # names translated before _nobreak below joins their words with no-break spaces
        "stratum": e["stratum"].replace({abtest.ALL: "all customers"}).map(i18n.name), "treatment": e["treatment"],
        "n control": e["n_control"].map("{:,}".format), "n treatment": e["n_treatment"].map("{:,}".format),
        "control": e["mean_control"].map(level), "treatment mean": e["mean_treatment"].map(level),
        "difference": e["difference"].map(lambda v: "" if pd.isna(v) else diff(v)),
        "interval": [_interval(lo, hi, diff) for lo, hi in zip(e["ci_low"], e["ci_high"])],
        "lift": e["relative_lift"].map(lambda v: "" if pd.isna(v) else f"{v:+.1%}"),
        "p": e["p_value"].map(p_value), "p adjusted": e["p_adjusted"].map(p_value),
    })
    if "boot_ci_low" in e and e["boot_ci_low"].notna().any():
        out["bootstrap interval"] = [_interval(lo, hi, diff) for lo, hi in zip(e["boot_ci_low"], e["boot_ci_high"])]
    if "cuped_difference" in e and e["cuped_difference"].notna().any():
        out["CUPED difference"] = e["cuped_difference"].map(lambda v: "" if pd.isna(v) else diff(v))
        out["CUPED interval"] = [_interval(lo, hi, diff) for lo, hi in zip(e["cuped_ci_low"], e["cuped_ci_high"])]
        out["CUPED p adjusted"] = e["cuped_p_adjusted"].map(p_value)
        out["variance removed"] = e["variance_reduction"].map(lambda v: "" if pd.isna(v) else f"{v:.0%}")
    if not binary:
        out = out.rename(columns={"control": _("mean control ({currency})", currency=currency),
                                  "treatment mean": _("mean treatment ({currency})", currency=currency)})
    else:
        out = out.rename(columns={"control": "rate control", "treatment mean": "rate treatment"})
    return out.map(lambda v: _nobreak(v) if isinstance(v, str) else v).reset_index(drop=True)


def roi_table(stage: ABStage, currency: str) -> pd.DataFrame:
    """The ROI rows with intervals as 'low to high'."""
    from .tables import money

    r = stage.roi
    pct = lambda v: "" if pd.isna(v) else f"{v:+.0%}"  # noqa: E731
    cur = lambda v: money(v, currency)  # noqa: E731
    return pd.DataFrame({
        "stratum": r["stratum"].replace({abtest.ALL: "all customers"}).map(i18n.name), "treatment": r["treatment"],
        "treated": r["n_treated"].map("{:,}".format), "incremental revenue": r["incremental_revenue"].map(cur),
        "interval": [_("{low} to {high}", low=cur(lo), high=cur(hi)) for lo, hi in zip(r["incremental_revenue_low"], r["incremental_revenue_high"])],
        "incremental margin": r["incremental_margin"].map(cur), "cost": r["cost"].map(cur),
        "ROI": r["roi"].map(pct), "ROI interval": [_interval(lo, hi, pct) for lo, hi in zip(r["roi_low"], r["roi_high"])],
    }).map(lambda v: _nobreak(v) if isinstance(v, str) else v).reset_index(drop=True)


def _unit_formatter(stage: ABStage, outcome: str, currency: str):
    from .tables import money

    if abtest.is_binary(stage.table[outcome]):
        return lambda v: "" if pd.isna(v) else f"{v * 100:.2f} pp"
    return lambda v: "" if pd.isna(v) else money(v, currency)


def bayes_table(stage: ABStage, currency: str) -> pd.DataFrame:
    """P(treatment better) and expected loss in the outcome's unit (pp for rates)."""
    b = stage.bayes
    loss = [_unit_formatter(stage, o, currency)(v) for o, v in zip(b["outcome"], b["expected_loss"])]
    return pd.DataFrame({"stratum": b["stratum"].replace({abtest.ALL: "all customers"}), "treatment": b["treatment"], "outcome": b["outcome"],
                         "P(treatment better)": b["prob_beats_control"].map("{:.1%}".format), "expected loss per customer": loss})


def power_table(stage: ABStage, currency: str) -> pd.DataFrame:
    """Minimum detectable effects in the outcome's unit and the sizes needed."""
    w = stage.power
    mde = [_unit_formatter(stage, o, currency)(v) for o, v in zip(w["outcome"], w["mde_absolute"])]
    return pd.DataFrame({"stratum": w["stratum"].replace({abtest.ALL: "all customers"}), "treatment": w["treatment"], "outcome": w["outcome"],
                         "MDE": mde, "MDE (relative)": w["mde_relative"].map(lambda v: "" if pd.isna(v) else f"{v:.1%}"),
                         "n per arm achieved": w["n_per_arm_achieved"].map("{:,}".format),
                         _("n per arm for +{lift:.0%}", lift=stage.power["target_lift"].iloc[0]): w["n_per_arm_needed"].map(
                             lambda v: "" if pd.isna(v) else f"{int(v):,}")})
