"""The ``rfm`` section: per-customer summary -> RFM scores -> both segment maps -> business tiers ->
behavioural clusters -> tier migration, and the customer-scores export for CRM import.

Everything is computed from the data stage's clean orders of the run (``data/orders.parquet``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .clusters import RFMClusters, crosstab
from .crm import write_customer_scores
from .data import load_clean
from .engine import DatedSummary, default_as_of as engine_as_of, run_orders, run_summaries
from .memory import give_back_memory
from .params import Params
from .rfm import RFMScorer, segment_profile
from .summary import customer_summary, default_as_of
from .tiers import Migration, TierRules, migration, reindex_sorted, tier_summary


@dataclass
class RFMStage:
    as_of: pd.Timestamp
    summary: pd.DataFrame  # one row per customer (tierbook.summary)
    scores: pd.DataFrame  # scores, segments, tier, cluster; same index as summary
    scorer: RFMScorer
    bin_edges: pd.DataFrame
    profile_8: pd.DataFrame
    profile_named: pd.DataFrame
    tiers: pd.DataFrame
    clusters: RFMClusters
    cluster_profile: pd.DataFrame
    cluster_vs_segment: pd.DataFrame
    migration: Migration | None
    base_date: pd.Timestamp

    @property
    def tier_order(self) -> list[str]:
        return list(self.tiers["tier"])


def make_scorer(params: Params) -> RFMScorer:
    rfm = params.rfm
    return RFMScorer(
        n_scores=rfm.n_scores, method=rfm.method, thresholds=rfm.thresholds, reference=rfm.reference,
        segments_8={code: seg.model_dump() for code, seg in rfm.segments_8.items()},
        segments_named=[rule.model_dump() for rule in rfm.segments_named],
    )


def make_tiers(params: Params) -> TierRules:
    return TierRules([level.model_dump() for level in params.tiers.levels], basis=params.tiers.basis)


def order_columns(params: Params) -> list[str]:
    """The clean orders' columns a customer summary reads (``source`` and ``order_id`` when an order is the occasion)."""
    return ["customer_id", "order_date", "net_amount"] + (["source", "order_id"] if params.rfm.occasion == "order" else [])


def load_orders(params: Params, run_dir: Path) -> pd.DataFrame:
    """The run's clean orders, only the columns the summaries read: all 11 columns of 5M orders took
    10.6 s CPU to read and filter, these 3 took 3.0 s (1M customers, 2026-12-02)."""
    return load_clean(run_dir, "orders", columns=order_columns(params))


def tier_basis(params: Params, orders: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with the tier basis column recomputed over the last ``tiers.window_days`` days
    before as_of (0 for customers without an order in the window), or with the CLV of each
    customer at as_of when the basis is ``clv``."""
    as_of = pd.Timestamp(summary.attrs["as_of"])
    if params.tiers.basis == "clv":
        from .valuation import clv_basis

        return summary.assign(clv=clv_basis(params, orders, as_of, summary["customer_id"]))
    window = params.tiers.window_days
    if window is None:
        return summary
    recent = orders[orders["order_date"] >= as_of - pd.Timedelta(days=window)]
    basis = params.tiers.basis
    values = pd.Series(0.0, index=summary["customer_id"])
    if (recent["order_date"] < as_of).any():
        windowed = customer_summary(recent, as_of, occasion=params.rfm.occasion).set_index("customer_id")[basis]
        values = reindex_sorted(windowed, summary["customer_id"]).fillna(0.0)  # by a merge of the sorted ids
    return summary.assign(**{basis: values.to_numpy()})


def window_basis(params: Params, dated: DatedSummary) -> pd.DataFrame:
    """``tier_basis`` of an engine summary from the window aggregates the engine computed with it
    (``engine.execute_summaries`` with ``window_days``): the same values and dtype, without the orders in
    pandas: with the two summaries in one query, the rfm section went from 23.6 to 16.4 s CPU at 1M customers (median of 3,
    2026-12-02).
    Not for ``tiers.basis: clv``."""
    summary, window = dated.summary, dated.window
    if params.tiers.window_days is None:
        return summary
    basis = params.tiers.basis
    occasions = window["purchase_occasions"].to_numpy()
    inside = occasions > 0
    if not inside.any():  # no order in the window: 0 for everyone
        values = np.zeros(len(summary))
    else:
        total = window["monetary_total"].to_numpy()
        # as the window's summary gives them (monetary_mean: its total over its occasions)
        values = {"monetary_total": total, "purchase_occasions": occasions,
                  "monetary_mean": total / np.maximum(occasions, 1)}[basis]
        if not inside.all():  # customers without an order in the window: 0.0 (tier_basis' reindex and fillna make it float)
            values = np.where(inside, values, 0.0)
    return summary.assign(**{basis: values})


def score_customers(params: Params, summary: pd.DataFrame, orders: pd.DataFrame | None,
                    basis: pd.DataFrame | None = None) -> tuple[RFMScorer, pd.DataFrame, TierRules]:
    """Scores, segments and tiers of one summary, with thresholds fitted on it (``basis``: its
    ``tier_basis``, when already computed; then ``orders`` is not read)."""
    scorer = make_scorer(params).fit(summary)
    scores = scorer.transform(summary)
    basis = tier_basis(params, orders, summary) if basis is None else basis
    rules = make_tiers(params).fit(basis)
    scores["tier"] = rules.assign(basis, scores)
    return scorer, scores, rules


def tiers_use_scores(params: Params) -> bool:
    """Whether a tier level's rule reads the RFM scores or segments (``min_rfm_score``, ``segments``)."""
    return any(level.min_rfm_score is not None or level.segments for level in params.tiers.levels)


def migration_tiers(params: Params, base_summary: pd.DataFrame, summary: pd.DataFrame, orders: pd.DataFrame | None,
                    basis: pd.DataFrame, base_basis: pd.DataFrame | None = None) -> tuple[pd.Series, pd.Series]:
    """Each customer's tier at the base date and now (``basis``: the current summary's ``tier_basis``), both by
    the levels fitted at the base date: their cut-offs and, when a level reads them, the RFM scores and
    segments with the base date's edges. Levels by top share alone (the default) need no scores: the base
    scores and both periods' segments of 1M customers took 1.9 s CPU (2026-12-02). ``base_basis``: the base
    summary's ``tier_basis``, when already computed (then ``orders`` is not read)."""
    base_basis = tier_basis(params, orders, base_summary) if base_basis is None else base_basis
    if tiers_use_scores(params):
        base_scorer, base_scores, base_rules = score_customers(params, base_summary, orders, base_basis)
        return base_scores["tier"], base_rules.assign(basis, base_scorer.transform(summary))
    base_rules = make_tiers(params).fit(base_basis)
    return base_rules.assign(base_basis), base_rules.assign(basis)


def run_rfm_stage(params: Params, run_dir: Path) -> RFMStage:
    rfm = params.rfm
    # the engine (params.engine: DuckDB or Spark) computes both summaries, at as_of and at the migration base date, and
    # the tier window's spend in one query; the orders are read into pandas only for a CLV tier basis
    orders = load_orders(params, run_dir) if params.tiers.basis == "clv" else None
    as_of = pd.Timestamp(rfm.as_of) if rfm.as_of else engine_as_of(run_orders(params, run_dir))
    base_date = as_of - pd.Timedelta(days=params.tiers.migration_days)
    now, base = run_summaries(params, run_dir, [as_of, base_date], occasion=rfm.occasion, time_unit=rfm.time_unit,
                              window_days=params.tiers.window_days if orders is None else None)
    # what the query's result left freed (its Arrow table, turned into the frames) back to the system, with the DuckDB
    # connection closed by run_summaries: the section held 1.65 GiB after the query at 1.4M customers, 0.59 GiB now (2026-12-05)
    give_back_memory()
    summary = now.summary
    # once: the tiers, their migration and their table use it
    basis = tier_basis(params, orders, summary) if orders is not None else window_basis(params, now)
    scorer, scores, _ = score_customers(params, summary, orders, basis)
    order = [level.name for level in params.tiers.levels]

    # the clusters in a second thread, beside the tiers, their migration and the profiles, which do not read them: the
    # section runs alone in the report, and k-means and the silhouettes (3.2-4.0 s CPU at 1M customers, one OpenMP thread)
    # release the GIL; the clusters are the same whichever thread fits them
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rfm-clusters") as pool:
        clustering = pool.submit(RFMClusters(k_range=(params.clustering.k_min, params.clustering.k_max), random_state=params.clustering.seed,
                                             sample_size=params.clustering.sample_size, fit_size=params.clustering.fit_size).fit, summary)
        # migration: tiers at the base date and now, both with the thresholds fitted at the base date
        moved = None
        if base.summary is not None:  # an order before the base date
            base_summary = base.summary
            base_basis = tier_basis(params, orders, base_summary) if orders is not None else window_basis(params, base)
            base_tier, current_tier = migration_tiers(params, base_summary, summary, orders, basis, base_basis)
            moved = migration(base_tier.set_axis(base_summary["customer_id"]), current_tier.set_axis(summary["customer_id"]),
                              order, summary["monetary_total"].set_axis(pd.Index(summary["customer_id"])))
        actions_8 = {seg.zh: seg.action for seg in rfm.segments_8.values()}
        actions_named = {rule.name: rule.action for rule in rfm.segments_named}
        bin_edges = scorer.bin_edges(summary, scores)
        profile_8 = segment_profile(summary, scores["segment_zh"], actions_8).merge(
            pd.DataFrame({"segment": [s.zh for s in rfm.segments_8.values()], "segment_en": [s.en for s in rfm.segments_8.values()]}),
            on="segment", how="left")
        profile_named = segment_profile(summary, scores["named_segment"], actions_named)
        tiers = tier_summary(basis, scores["tier"], order).assign(
            action=[level.action for level in params.tiers.levels], zh=[level.zh for level in params.tiers.levels])
        clusters = clustering.result()
    scores["cluster"] = clusters.labels_.reindex(summary.index).to_numpy()
    stage = RFMStage(
        as_of=as_of, summary=summary, scores=scores, scorer=scorer, bin_edges=bin_edges, profile_8=profile_8,
        profile_named=profile_named, tiers=tiers, clusters=clusters, cluster_profile=clusters.profile(summary),
        cluster_vs_segment=crosstab(scores["cluster"], scores["segment_zh"]), migration=moved, base_date=base_date,
    )
    _write(stage, params, run_dir)
    return stage


def customer_scores(stage: RFMStage, params: Params) -> pd.DataFrame:
    """The CRM export: one row per customer (columns documented in ``tierbook.crm``)."""
    tiers_zh = {level.name: level.zh for level in params.tiers.levels}
    s, sc = stage.summary, stage.scores
    return pd.DataFrame({
        "customer_id": s["customer_id"], "as_of": stage.as_of.date().isoformat(),
        "recency_days": s["recency_days"], "frequency_occasions": s["purchase_occasions"],
        "monetary_total": s["monetary_total"].round(2), "monetary_mean": s["monetary_mean"].round(2),
        "first_purchase": _dates(s["first_purchase"]), "last_purchase": _dates(s["last_purchase"]),
        "r_score": sc["r_score"], "f_score": sc["f_score"], "m_score": sc["m_score"], "rfm_score": sc["rfm_score"],
        "segment_zh": sc["segment_zh"], "segment_en": sc["segment_en"],
        "named_segment": sc["named_segment"], "named_segment_zh": sc["named_segment_zh"],
        "tier": sc["tier"], "tier_zh": sc["tier"].map(tiers_zh), "cluster": sc["cluster"],
    })


def _dates(days: pd.Series) -> np.ndarray:
    """``days.dt.date`` (midnights as ``datetime.date`` objects), made once per distinct day: 0.2 s for 1M
    customers' first purchases against 0.014 s (2026-12-02)."""
    codes, distinct = pd.factorize(days)
    return np.asarray(distinct.date, dtype=object)[codes]


def _write(stage: RFMStage, params: Params, run_dir: Path) -> None:
    tables = run_dir / "tables"
    tables.mkdir(exist_ok=True)
    stage.summary.to_parquet(run_dir / "data" / "customer_summary.parquet", index=False)
    for name, frame in {
        "rfm_bin_edges": stage.bin_edges, "segments_8": stage.profile_8, "segments_named": stage.profile_named,
        "tiers": stage.tiers, "clusters": stage.cluster_profile, "clusters_vs_segments": stage.cluster_vs_segment.reset_index(),
    }.items():
        frame.to_csv(tables / f"{name}.csv", index=False, encoding="utf-8-sig")
    if stage.migration is not None:
        stage.migration.matrix.rename_axis("base_tier").reset_index().to_csv(tables / "tier_migration.csv", index=False, encoding="utf-8-sig")
    write_customer_scores(customer_scores(stage, params), run_dir, export=False)  # the profile section writes the CRM files


MEASURE_WORDS = {"recency_days": "days since the last purchase", "purchase_occasions": "purchase occasions",
                 "monetary_total": "net spend"}


def silhouette_line(clusters: RFMClusters) -> str:
    """The silhouette score of each k tried, as the page shows it (a score k-means could not get is a dash)."""
    from .i18n import _

    if not len(clusters.silhouette_):
        return _("All customers have the same R, F and M values, so there is a single cluster.")
    return _("Silhouette by k: {scores}", scores=", ".join(f"k={k}: {v:.3f}" if np.isfinite(v) else f"k={k}: –"
                                                           for k, v in clusters.silhouette_.items()))


def degenerate_notes(stage: RFMStage, params: Params) -> list[str]:
    """Sentences for data the scores, segments and tiers cannot tell apart: a measure on which every
    customer is equal, one customer outweighing all the others, top-share tiers swollen by ties, no
    spend in the tier window."""
    from .i18n import _, lang, name
    from .tables import money
    from .valuation import OUTWEIGH_MIN_CUSTOMERS, OUTWEIGH_SHARE

    summary, n = stage.summary, len(stage.summary)
    lines = []
    same = []
    for column, words in MEASURE_WORDS.items():
        values = summary[column]
        if n > 1 and values.nunique() == 1:
            shown = money(values.iloc[0], params.currency) if column == "monetary_total" else f"{values.iloc[0]:,}"
            same.append(_("{measure} ({value})", measure=_(words), value=shown))
    if same:
        lines.append(_("All {n:,} customers have the same {measures}: a score cannot rank customers who are equal, so every customer gets "
                       "the same score on it (1) and counts as low against the reference in the 8 segments.", n=n,
                       measures=("、" if lang() == "zh" else ", ").join(same)))
    total = float(summary["monetary_total"].sum())
    if n >= OUTWEIGH_MIN_CUSTOMERS and total > 0 and summary["monetary_total"].max() > OUTWEIGH_SHARE * total:
        lines.append(_("**Warning:** one customer made {share:.0%} of all net revenue ({spend}); check that customer's orders for an outlier "
                       "(clean.outliers) before reading means, shares and tiers.", share=summary["monetary_total"].max() / total,
                       spend=money(summary["monetary_total"].max(), params.currency)))
    tiers = stage.tiers
    if tiers["revenue"].sum() <= 0:
        window = params.tiers.window_days
        lines.append(_("No customer has positive net spend in the {days} days before as_of (tiers.window_days), so no one is in a tier "
                       "by top share of spend; set tiers.window_days: null or an rfm.as_of within the data.", days=window) if window else
                     _("No customer has positive net spend, so no one is in a tier by top share of spend."))
    cumulative = 0
    for level in params.tiers.levels:
        row = tiers[tiers["tier"] == level.name]
        if row.empty:
            continue
        cumulative += int(row["customers"].iloc[0])
        # the customers a top share takes without ties (at least one: 5 % of 2 customers is 1 of them, not a tie)
        allowed = min(int(np.ceil(round(level.top_share * n, 9))), n) if level.top_share is not None else n
        if cumulative > allowed and int(row["customers"].iloc[0]) > 0:
            lines.append(_("Customers with an equal tier basis (`{basis}`) are never split between tiers, so **{tier}** and the tiers above "
                           "it hold {share:.1%} of customers for a top share of {target:.0%}.", basis=params.tiers.basis,
                           tier=name(level.name), share=cumulative / n, target=level.top_share))
    return lines


def narrative(stage: RFMStage, params: Params) -> str:
    """Findings of the section in sentences generated from its numbers."""
    from .i18n import _, name
    from .rfm import pareto
    from .tables import money

    n = len(stage.summary)
    one_timers = float((stage.summary["purchase_occasions"] == 1).mean())
    curve = pareto(stage.summary)
    # the top 20 % needs at least 5 customers (and revenue to share): with fewer it is not a fifth of anyone
    top20 = curve.loc[curve["customer_share"] <= 0.2, "revenue_share"].max() if n >= 5 else np.nan
    biggest = stage.profile_8.iloc[0]
    window = params.tiers.window_days
    window_words = _("in the {days} days before as_of", days=window) if window else _("over the whole history")
    if n == 1:
        lines = [_("As of {date}, **a single customer** has bought: the scores, segments and tiers below rank that customer against no "
                   "one, so they carry no information.", date=f"{stage.as_of:%Y-%m-%d}")]
    elif np.isfinite(top20):
        lines = [_("As of {date}, **{n:,} customers** bought at least once; {one:.0%} of them only once. "
                   "The top 20% of customers made {top20:.0%} of net revenue.", date=f"{stage.as_of:%Y-%m-%d}", n=n, one=one_timers, top20=top20)]
    else:
        lines = [_("As of {date}, **{n:,} customers** bought at least once; {one:.0%} of them only once (too few customers, or no net "
                   "revenue, for a share of the top 20%).", date=f"{stage.as_of:%Y-%m-%d}", n=n, one=one_timers)]
    top = stage.tiers.iloc[0]
    if pd.notna(top["revenue_share"]):
        lines.append(_("The top tier, **{tier}**, holds {cust:.1%} of customers and {rev:.1%} of revenue {window} (mean spend {spend}).",
                       tier=name(top["tier"]), cust=top["customer_share"], rev=top["revenue_share"], window=window_words,
                       spend=money(top["mean_monetary"], params.currency)))
    lines.append(_("Among the 8 RFM segments, {zh} ({en}) brings the most revenue: {rev:.1%} from {cust:.1%} of customers.",
                   zh=biggest["segment"], en=biggest["segment_en"], rev=biggest["revenue_share"], cust=biggest["customer_share"])
                 if pd.notna(biggest["revenue_share"]) else
                 _("The largest of the 8 RFM segments is {zh} ({en}), with {cust:.1%} of customers.", zh=biggest["segment"],
                   en=biggest["segment_en"], cust=biggest["customer_share"]))
    silhouette = stage.clusters.silhouette_
    if silhouette.notna().any():
        lines.append(_("k-means on log R, F and M chose **{k}** clusters (silhouette {s:.2f}).", k=stage.clusters.k_, s=silhouette.max()))
    elif len(silhouette):
        lines.append(_("k-means on log R, F and M kept **{k}** clusters, the smallest number tried: the silhouette score that chooses the "
                       "number needs more distinct customers than clusters.", k=stage.clusters.k_))
    else:
        lines.append(_("All customers have the same R, F and M values, so there is a single cluster."))
    lines += degenerate_notes(stage, params)
    if stage.migration is not None:
        rates = stage.migration.rates
        lines.append(_(
            "Between {base} and {as_of}, of the {n:,} customers present at both dates {up:.1%} moved up a tier, "
            "{down:.1%} moved down and {stay:.1%} stayed; {new:,} customers are new.",
            base=f"{stage.base_date:%Y-%m-%d}", as_of=f"{stage.as_of:%Y-%m-%d}", n=rates["customers_in_both"], up=rates["upgrade"],
            down=rates["downgrade"], stay=rates["stay"], new=rates["new_customers"]))
    return "\n\n".join(lines)
