"""The churn section: definition and labels on toy timelines, survival against lifelines' own
examples, the demo's planted satisfaction effect, IBM Telco as a contractual example, the report."""

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest

from tierbook.churn import (
    churn_days,
    NUMERIC_FEATURES,
    churn_models,
    cohort_retention,
    concordance_counts,
    cox_model,
    evaluate,
    features_at,
    importance_rows,
    kaplan_meier,
    label_after,
    last_answers,
    main_channel,
    nps_category,
    purchase_gaps,
    run_churn_stage,
    survival_table,
)
from tierbook.data import run_data_stage
from tierbook.params import load_params
from tierbook.segmentation import run_rfm_stage
from tierbook.summary import customer_summary
from tierbook.valuation import run_clv_stage

from .conftest import REPO


def _orders(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "order_date", "net_amount"])
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    return frame.assign(channel="store", source="pos", order_id=[f"o{i}" for i in range(len(frame))])


TOY = _orders([
    ("a", "2025-01-01", 10), ("a", "2025-01-11", 20), ("a", "2025-01-11", 5), ("a", "2025-03-01", 30),  # gaps 10, 49 (same day merged)
    ("b", "2025-01-05", 50),                                                                          # one purchase
    ("c", "2025-02-01", 10), ("c", "2025-02-21", 10), ("c", "2025-06-10", 10),                         # gaps 20, 109
])


def test_gaps_and_the_derived_threshold():
    assert sorted(purchase_gaps(TOY, pd.Timestamp("2025-07-01")).tolist()) == [10, 20, 49, 109]
    assert sorted(purchase_gaps(TOY, pd.Timestamp("2025-06-01")).tolist()) == [10, 20, 49]  # c's last purchase is after the date
    params = load_params("demo", REPO / "params", ["churn.churn_days=45"])
    assert churn_days(TOY, pd.Timestamp("2025-07-01"), params)[0] == 45
    with pytest.raises(Exception, match="only 4 repeat purchases .* set churn.churn_days"):
        churn_days(TOY, pd.Timestamp("2025-07-01"), load_params("demo", REPO / "params"))


def test_labels_features_and_survival_on_a_toy_timeline():
    cutoff = pd.Timestamp("2025-03-01")  # a bought 2025-01-11 (49 days before), b 55 days before, c 8 days before
    feats = features_at(TOY, cutoff, 50, None, None)
    assert feats["customer_id"].tolist() == ["a", "c"]  # b has not bought for 55 > 50 days: already churned, not scored
    a = feats.set_index("customer_id").loc["a"]
    assert (a["recency_days"], a["purchase_occasions"], a["monetary_total"], a["tenure_days"]) == (49, 2, 35, 59)
    assert a["occasions_last_90d"] == 2 and np.isnan(a["last_nps"]) and a["main_channel"] == "store"
    # label: no purchase in [cutoff, cutoff + 60 days): a bought on the cutoff day, c not until 2025-06-10
    assert label_after(TOY, feats["customer_id"], cutoff, 60).tolist() == [0, 1]
    assert label_after(TOY, feats["customer_id"], cutoff, 101).tolist() == [0, 1]  # the window ends the day before 2025-06-10
    assert label_after(TOY, feats["customer_id"], cutoff, 102).tolist() == [0, 0]
    surv = survival_table(customer_summary(TOY, "2025-07-01"), 60).set_index("customer_id")
    # a: last 2025-03-01 + 60 = 2025-04-30 <= as_of -> churned, 119 days after 2025-01-01
    assert surv.loc["a"].tolist() == [119, True]
    assert surv.loc["b"].tolist() == [60, True]
    assert surv.loc["c"].tolist() == [150, False]  # censored at as_of: 2025-02-01 .. 2025-07-01


def _old_main_channel(orders, as_of):
    """main_channel as it was before the Timeline (the whole frame filtered, customers looked up by id as text)."""
    before = orders[orders["order_date"] < as_of]
    counts = before.groupby([before["customer_id"].astype(str), before["channel"].astype(object)]).size().rename("n").reset_index()
    counts = counts.sort_values(["customer_id", "n", "channel"], ascending=[True, False, True])
    return counts.drop_duplicates("customer_id").set_index("customer_id")["channel"].astype(str)


def _old_features_at(orders, cutoff, churn_after, survey, regions, occasion="day"):
    """features_at as it was before the Timeline (every piece looked up by customer id as text)."""
    summary = customer_summary(orders, cutoff, occasion=occasion)
    active = summary[summary["recency_days"] <= churn_after].reset_index(drop=True)
    ids = active["customer_id"].astype(str)
    recent = orders[(orders["order_date"] >= cutoff - pd.Timedelta(days=90)) & (orders["order_date"] < cutoff)]
    recent_summary = (customer_summary(recent, cutoff, occasion=occasion).assign(customer_id=lambda f: f["customer_id"].astype(str))
                      .set_index("customer_id") if len(recent) else None)
    out = pd.DataFrame({
        "customer_id": ids, "recency_days": active["recency_days"].to_numpy(float), "purchase_occasions": active["purchase_occasions"].to_numpy(float),
        "monetary_total": active["monetary_total"].to_numpy(float), "monetary_mean": active["monetary_mean"].to_numpy(float),
        "tenure_days": active["tenure_days"].to_numpy(float),
        "days_per_occasion": (active["tenure_days"] / active["purchase_occasions"]).to_numpy(float),
    })
    for column, source in (("occasions_last_90d", "purchase_occasions"), ("spend_last_90d", "monetary_total")):
        out[column] = recent_summary[source].reindex(ids).fillna(0).to_numpy(float) if recent_summary is not None else 0.0
    out["last_nps"] = last_answers(survey, cutoff)["last_nps"].reindex(ids).to_numpy(float)
    out["main_channel"] = _old_main_channel(orders, cutoff).reindex(ids).fillna("unknown").to_numpy()
    out["region"] = regions.reindex(ids).fillna("unknown").astype(str).to_numpy() if regions is not None else "unknown"
    return out


def _random_orders(seed: int, n_customers: int = 300, n_orders: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:04d}" for i in rng.permutation(n_customers)])  # not in text order
    when = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 400 * 24, n_orders), unit="h")
    return pd.DataFrame({"customer_id": ids[rng.integers(0, n_customers, n_orders)], "order_date": when,
                         "net_amount": rng.integers(1, 500, n_orders) / 4,
                         "channel": rng.choice(np.array(["store", "online", "app", None], dtype=object), n_orders, p=[0.4, 0.4, 0.1, 0.1]),
                         "source": "pos", "order_id": [f"o{i}" for i in range(n_orders)]})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_features_labels_and_main_channel_as_the_lookups_by_id_gave(seed):
    """The Timeline's arrays by customer code give what filtering the frame and looking customers up by id
    as text gave: for ids as text, as the data stage's sorted categories, and as integers (numeric order)."""
    orders = _random_orders(seed)
    rng = np.random.default_rng(seed)
    ids = orders["customer_id"].unique()
    survey = pd.DataFrame({"customer_id": rng.choice(np.r_[ids, ["stranger"]], 400),
                           "response_date": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 400, 400), unit="D"),
                           "nps": pd.array(rng.integers(0, 11, 400), dtype="Int64")})
    regions = pd.Series(rng.choice(["north", "south"], len(ids) - 5), index=pd.Index(ids[5:], name="customer_id"), name="region")
    variants = {"text": orders,
                "categories": orders.assign(customer_id=pd.Categorical(orders["customer_id"], categories=sorted(ids) + ["c9999"])),
                "integers": orders.assign(customer_id=orders["customer_id"].str[1:].astype(int)),
                # channels as the stage reads them, a dictionary (categories in neither name order nor all present)
                "channel categories": orders.assign(channel=pd.Categorical(orders["channel"], categories=["store", "online", "app", "kiosk"]))}
    for name, frame in variants.items():
        as_text = survey.assign(customer_id=survey["customer_id"].map(lambda i: i[1:].lstrip("0") or "0" if name == "integers" else i))
        by_id = regions.set_axis(regions.index.map(lambda i: i[1:].lstrip("0") or "0") if name == "integers" else regions.index)
        for cutoff in (pd.Timestamp("2025-09-01"), pd.Timestamp("2025-10-15 13:30")):
            new = features_at(frame, cutoff, 60, as_text, by_id)
            pd.testing.assert_frame_equal(new, _old_features_at(frame, cutoff, 60, as_text, by_id), check_exact=True, obj=f"{name} {cutoff}")
            assert np.array_equal(label_after(frame, new["customer_id"], cutoff, 45),
                                  (~new["customer_id"].isin(set(frame.loc[(frame["order_date"] >= cutoff) & (frame["order_date"] < cutoff + pd.Timedelta(days=45)),
                                                                         "customer_id"].astype(str)))).to_numpy(dtype=int))
            old = _old_main_channel(frame, cutoff)
            pd.testing.assert_series_equal(main_channel(frame, cutoff), old.set_axis(old.index.astype(object)), check_exact=True, check_index_type=False)


def _old_cohort_retention(orders, as_of, max_cohorts=24):
    """cohort_retention as it was before the Timeline (the ids as text, months as Periods, pandas groupbys)."""
    from tierbook.engine import cohort_table

    before = orders[orders["order_date"] < as_of]
    month = before["order_date"].dt.to_period("M")
    frame = pd.DataFrame({"c": before["customer_id"].astype(str).to_numpy(), "m": month.to_numpy()}).drop_duplicates()
    frame["cohort"] = frame.groupby("c")["m"].transform("min")
    frame["age"] = (frame["m"] - frame["cohort"]).map(lambda d: d.n)
    return cohort_table(frame.groupby(["cohort", "age"]).size(), as_of, max_cohorts)


@pytest.mark.parametrize("seed", [0, 1])
def test_cohort_retention_and_counts_as_the_pandas_groupbys_gave(seed):
    """Timeline.cohort_counts (customer-month codes sorted once) gives the table the groupby on ids as text gave,
    for ids as text, sorted categories and integers, an as_of with a time of day, and fewer cohorts than months."""
    orders = _random_orders(seed, n_orders=4000)
    ids = sorted(orders["customer_id"].unique())
    variants = {"text": orders, "categories": orders.assign(customer_id=pd.Categorical(orders["customer_id"], categories=ids + ["c9999"])),
                "integers": orders.assign(customer_id=orders["customer_id"].str[1:].astype(int))}
    for name, frame in variants.items():
        for as_of, max_cohorts in ((pd.Timestamp("2026-01-01"), 24), (pd.Timestamp("2025-09-15 13:30"), 5)):
            new, old = cohort_retention(frame, as_of, max_cohorts), _old_cohort_retention(frame, as_of, max_cohorts)
            assert new.shape[0] == min(max_cohorts, old.shape[0]) and new["customers"].sum() > 0
            pd.testing.assert_frame_equal(new, old, check_exact=True, obj=f"{name} {as_of}")


@pytest.mark.parametrize("seed", [0, 1])
def test_timeline_purchase_gaps_are_purchase_gaps(seed):
    """The stage derives churn_days from Timeline.purchase_gaps: the gaps of purchase_gaps, in the same order."""
    from tierbook.churn import Timeline

    orders = _random_orders(seed)
    variants = {"text": orders, "categories": orders.assign(customer_id=pd.Categorical(orders["customer_id"])),
                "integers": orders.assign(customer_id=orders["customer_id"].str[1:].astype(int))}
    for name, frame in variants.items():
        for cutoff in (pd.Timestamp("2025-09-01"), pd.Timestamp("2025-10-15 13:30"), pd.Timestamp("2024-01-01")):
            new, old = Timeline(frame).purchase_gaps(cutoff), purchase_gaps(frame, cutoff)
            assert new.dtype == old.dtype and np.array_equal(new, old), (name, cutoff)
            assert len(old) > 500 or cutoff.year == 2024


@pytest.mark.parametrize("seed", [0, 1])
def test_timeline_last_nps_and_day_totals_as_last_answers_and_customer_summary(seed):
    """Timeline.last_nps (answers sorted as last_answers sorts them, the last taken by customer code) and
    Timeline.day_totals (the window's occasions and totals from the timeline's arrays) give what
    last_answers reindexed by id and customer_summary of the filtered orders gave: with answers tied on
    their date (last_answers' sort is not stable), strangers and missing ids, and returns."""
    from tierbook.churn import Timeline

    rng = np.random.default_rng(seed)
    orders = _random_orders(seed)
    orders.loc[rng.random(len(orders)) < 0.1, "net_amount"] *= -1  # returns
    ids = orders["customer_id"].unique()
    n = 3000
    survey = pd.DataFrame({"customer_id": pd.array(rng.choice(np.r_[ids[:200], ["stranger", "other"]], n), dtype="string"),
                           "response_date": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 12, n) * 30, unit="D"),
                           "nps": pd.array(rng.integers(0, 11, n), dtype="Int64")})
    survey.loc[rng.random(n) < 0.05, "customer_id"] = pd.NA
    survey.loc[rng.random(n) < 0.05, "nps"] = pd.NA
    numbered = orders.assign(customer_id=orders["customer_id"].str[1:].astype(int))
    for frame, answers in ((orders, survey), (numbered, survey.assign(customer_id=survey["customer_id"].str[1:].str.lstrip("0"))),
                           (numbered, survey.assign(customer_id=pd.to_numeric(survey["customer_id"].str[1:], errors="coerce").astype("Int64")))):  # not text
        timeline = Timeline(frame)
        codes = np.arange(len(timeline.ids))
        for cutoff in (pd.Timestamp("2025-06-01"), pd.Timestamp("2025-09-15 13:30"), pd.Timestamp("2026-03-01")):
            old = last_answers(answers, cutoff)["last_nps"].reindex(pd.Series(timeline.ids)).to_numpy(float)
            new = timeline.last_nps(answers, cutoff, codes)
            assert np.array_equal(new, old, equal_nan=True) and np.isfinite(old).sum() > 20
            window = timeline.between(cutoff - pd.Timedelta(days=90), cutoff) & timeline.before(cutoff.normalize())
            summary = customer_summary(frame[window], cutoff)
            at = timeline.codes_of(summary["customer_id"].astype(str), window)
            occasions, total = timeline.day_totals(window)
            assert np.array_equal(occasions[at], summary["purchase_occasions"].to_numpy(float)) and np.array_equal(total[at], summary["monetary_total"].to_numpy())
            others = np.setdiff1d(codes, at)
            assert len(others) and not occasions[others].any() and not total[others].any()
    assert np.isnan(Timeline(orders).last_nps(None, pd.Timestamp("2026-01-01"), np.arange(3))).all()


def test_member_regions_by_code_as_regions_reindexed(tmp_path):
    """The stage's regions by code (ids looked up in Arrow, regions read as a dictionary) are _regions reindexed by
    the orders' ids: the first row of a repeated id, a missing region, members without orders and customers
    without a member row, ids as text and as integers."""
    from tierbook.churn import Timeline, _member_regions_by_code, _regions, _regions_by_code

    orders = _random_orders(0)
    ids = sorted(orders["customer_id"].unique())
    rng = np.random.default_rng(4)
    member_ids = list(ids[20:]) + ["zz01", "zz02"] + list(ids[30:60])  # 20 customers without a row; 30 ids repeated
    regions = pd.array(rng.choice(["north", "south", "华东", None], len(member_ids)), dtype="string")
    (tmp_path / "data").mkdir()
    numbered = orders.assign(customer_id=orders["customer_id"].str[1:].astype(int))
    for frame, members in ((orders, pd.DataFrame({"customer_id": pd.array(member_ids, dtype="string"), "region": regions})),
                           (numbered, pd.DataFrame({"customer_id": [int(i[1:]) if i[0] == "c" else 9000 + int(i[2:]) for i in member_ids],
                                                    "region": regions}))):
        members.to_parquet(tmp_path / "data" / "customers.parquet", index=False)
        timeline = Timeline(frame)
        new, old = _member_regions_by_code(tmp_path, timeline), _regions_by_code(_regions(tmp_path), timeline)
        assert new.dtype == old.dtype and np.array_equal(new, old)
        assert (new == "unknown").sum() > 20 and len(set(new)) == 4
    pd.DataFrame({"customer_id": ["c0001"], "region": pd.array([None], dtype="string")}).to_parquet(tmp_path / "data" / "customers.parquet")
    assert _member_regions_by_code(tmp_path, Timeline(orders)) is None and _regions(tmp_path) is None


def test_nps_categories_and_the_last_answer():
    assert nps_category(pd.Series([0, 6, 7, 8, 9, 10, np.nan])).tolist() == [
        "detractor", "detractor", "passive", "passive", "promoter", "promoter", "no answer"]
    survey = pd.DataFrame({"customer_id": ["a", "a", "b", None], "response_date": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-01-01"]),
                           "nps": pd.array([3, 9, 7, 10], dtype="Int64")})
    last = last_answers(survey, pd.Timestamp("2025-02-15"))
    assert last.to_dict("index") == {"a": {"last_nps": 9.0, "nps_category": "promoter"}}


def test_cohort_retention_by_hand():
    table = cohort_retention(TOY, pd.Timestamp("2025-07-01"))
    # cohort 2025-01: a and b; a buys again in month 2 (March). cohort 2025-02: c, again in months 0 and 4 (June)
    assert table.loc["2025-01", "customers"] == 2 and table.loc["2025-01", 2] == 0.5 and table.loc["2025-01", 1] == 0
    assert table.loc["2025-02", 4] == 1.0 and table.loc["2025-02", 3] == 0 and pd.isna(table.loc["2025-02", 5])  # June is the last month
    assert list(table.columns) == ["customers", 0, 1, 2, 3, 4, 5]


def test_kaplan_meier_and_log_rank_reproduce_lifelines_waltons():
    from lifelines.datasets import load_waltons

    w = load_waltons()
    km = kaplan_meier(w["T"], w["E"], w["group"])
    assert km.logrank_statistic == pytest.approx(122.25, abs=0.01) and km.logrank_df == 1  # lifelines docs
    medians = km.medians.set_index("group")
    assert medians["customers"].to_dict() == {"control": 129, "miR-137": 34} and medians["events"].sum() == w["E"].sum()
    for group, row in medians.iterrows():  # the median is where each group's own curve first reaches 50 %
        curve = km.curves[group].dropna()
        assert row["median_days"] == curve.index[curve <= 0.5][0]


def test_cox_reproduces_lifelines_rossi():
    from lifelines.datasets import load_rossi

    rossi = load_rossi().rename(columns={"week": "duration", "arrest": "event"})
    result = cox_model(rossi, {}, numeric=["fin", "age", "race", "wexp", "mar", "paro", "prio"], penalizer=0.0)
    hr = result.table.set_index("covariate")["hazard_ratio"]
    # lifelines' documented fit: coef fin -0.38, age -0.06, prio 0.09; concordance 0.64
    assert np.log(hr["fin"]) == pytest.approx(-0.379, abs=0.001) and np.log(hr["prio"]) == pytest.approx(0.091, abs=0.001)
    assert result.concordance == pytest.approx(0.640, abs=0.001)
    assert result.table.set_index("covariate").loc["age", "ph_p"] < 0.05  # age violates proportional hazards (lifelines' own example)


def _cox_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Customers whose hazard doubles in tier B and rises with a numeric score; an effect of tier C that
    fades over time (so its proportional-hazards test rejects)."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["A", "B", "C"], n)
    score = rng.normal(size=n)
    base = rng.exponential(100, n) * np.exp(-np.log(2) * (tier == "B") - 0.3 * score)
    duration = np.where(tier == "C", np.where(base < 50, base / 3, base * 1.5), base).round() + 1
    event = duration < 200
    return pd.DataFrame({"duration": np.minimum(duration, 200), "event": event, "tier": tier, "score": score})


def test_cox_proportional_hazards_test_on_a_sample_above_cox_sample():
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    from tierbook.churn import cox_caption

    frame = _cox_frame(3000)
    full = cox_model(frame, {"tier": "A"}, numeric=["score"])
    # at or below the threshold: the test is on every customer, exactly as without a threshold
    same = cox_model(frame, {"tier": "A"}, numeric=["score"], ph_sample=3000, seed=1)
    pd.testing.assert_frame_equal(same.table, full.table)
    assert (same.ph_customers, same.ph_events) == (3000, int(frame["event"].sum())) and not same.ph_sampled
    assert "random sample" not in cox_caption(same)
    # above it: hazard ratios, intervals and concordance from all customers; the test from a model refitted on
    # the seeded sample, as lifelines computes it on those 1,000 customers
    sampled = cox_model(frame, {"tier": "A"}, numeric=["score"], ph_sample=1000, seed=1)
    pd.testing.assert_frame_equal(sampled.table.drop(columns="ph_p"), full.table.drop(columns="ph_p"))
    assert sampled.concordance == full.concordance and sampled.customers == 3000
    design = pd.DataFrame({"duration": frame["duration"].astype(float), "event": frame["event"].astype(float),
                           "score": frame["score"], "tier: B": (frame["tier"] == "B").astype(float),
                           "tier: C": (frame["tier"] == "C").astype(float)})
    assert full.concordance == CoxPHFitter(penalizer=0.01).fit(design, "duration", "event").concordance_index_  # counted as lifelines does
    on_tiers = cox_model(frame, {"tier": "A"})  # categories only, as the stage's model: a few distinct scores
    assert on_tiers.concordance == CoxPHFitter(penalizer=0.01).fit(design.drop(columns="score"), "duration", "event").concordance_index_
    sample = design.sample(n=1000, random_state=np.random.RandomState(1))
    expected = proportional_hazard_test(CoxPHFitter(penalizer=0.01).fit(sample, "duration", "event"), sample, time_transform="rank")
    ph = sampled.table.set_index("covariate")["ph_p"]
    assert ph.to_dict() == pytest.approx(expected.summary["p"].to_dict(), rel=1e-12)
    assert ph["tier: C"] < 1e-3 and ph["tier: B"] > 0.01  # the fading effect is caught on the sample, the constant one is not
    assert (sampled.ph_customers, sampled.ph_events) == (1000, int(sample["event"].sum())) and sampled.ph_sampled
    assert ph.to_dict() != pytest.approx(full.table.set_index("covariate")["ph_p"].to_dict(), rel=1e-6)  # a different test
    assert f"random sample of 1,000 of these customers ({int(sample['event'].sum()):,} churned" in cox_caption(sampled)


def test_cox_fitted_on_a_sample_above_cox_fit_sample_recovers_the_planted_hazard_ratios():
    from tierbook.churn import cox_caption

    frame = _cox_frame(20000, seed=3)
    full = cox_model(frame, {"tier": "A"}, numeric=["score"], fit_sample=20000)  # at the threshold: every customer
    assert not full.fit_sampled and full.customers == 20000 and "random sample" not in cox_caption(full)
    pd.testing.assert_frame_equal(full.table, cox_model(frame, {"tier": "A"}, numeric=["score"]).table)
    sampled = cox_model(frame, {"tier": "A"}, numeric=["score"], fit_sample=5000, seed=7)
    # the fit of the seeded sample's rows (in their order), as lifelines makes it on them
    rows = np.sort(np.random.default_rng(7).choice(20000, 5000, replace=False))
    pd.testing.assert_frame_equal(sampled.table, cox_model(frame.iloc[rows], {"tier": "A"}, numeric=["score"]).table)
    assert (sampled.customers, sampled.population, sampled.events) == (5000, 20000, int(frame["event"].iloc[rows].sum()))
    # the planted hazard ratio of tier B (2) and every hazard ratio of the fit on all customers inside the sample's 95 %
    # intervals, which are wider than the full fit's about by the square root of the sizes' ratio (2)
    table, whole = sampled.table.set_index("covariate"), full.table.set_index("covariate")
    assert table.loc["tier: B", "lower_95"] < 2 < table.loc["tier: B", "upper_95"]
    assert ((table["lower_95"] < whole["hazard_ratio"]) & (whole["hazard_ratio"] < table["upper_95"])).all()
    width = np.log(table["upper_95"] / table["lower_95"]) / np.log(whole["upper_95"] / whole["lower_95"])
    assert width.between(1.8, 2.2).all()
    assert sampled.fit_sampled and f"random sample of 5,000 of the 20,000 customers ({sampled.events:,} churned; churn.cox_fit_sample)" in cox_caption(sampled)


def test_cox_on_one_block_gives_the_fit_of_the_design_built_column_by_column():
    """cox_model hands lifelines its design as one block of doubles: the same hazard ratios, intervals and p-values
    to the last bit as the fit of the design built a column at a time (as the stage used to hand it over)."""
    from lifelines import CoxPHFitter

    frame = _cox_frame(4000, seed=3)
    frame["channel"] = np.random.default_rng(3).choice(["store", "online", "app"], len(frame))
    result = cox_model(frame, {"tier": "A", "channel": "store"}, numeric=["score"])
    design = frame[["duration", "event", "score"]].astype(float)
    for column, reference in (("tier", "A"), ("channel", "store")):
        for level in sorted(set(frame[column]) - {reference}):
            design[f"{column}: {level}"] = (frame[column] == level).astype(float)
    assert design._mgr.nblocks > 1
    s = CoxPHFitter(penalizer=0.01).fit(design, "duration", "event").summary
    expected = pd.DataFrame({"covariate": s.index, "hazard_ratio": s["exp(coef)"].to_numpy(), "lower_95": s["exp(coef) lower 95%"].to_numpy(),
                             "upper_95": s["exp(coef) upper 95%"].to_numpy(), "p": s["p"].to_numpy()})
    pd.testing.assert_frame_equal(result.table.drop(columns="ph_p"), expected, check_exact=True)


def test_concordance_counts_as_lifelines_counts_them():
    from lifelines.utils import concordance_index as lifelines_concordance

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        durations = rng.integers(0, int(rng.integers(1, 30)), n).astype(float)  # many tied durations and scores
        scores = rng.integers(0, int(rng.integers(1, 10)), n) * rng.choice([1.0, -1.0, 0.37])
        events = rng.random(n) < rng.random()
        counts = concordance_counts(durations, scores, events)
        if not events.any():
            assert counts is None
            continue
        correct, tied, pairs = counts
        if pairs:
            assert (correct + tied / 2) / pairs == lifelines_concordance(durations, scores, events)  # the same double
    assert concordance_counts(np.arange(10.0), np.arange(10.0), np.ones(10, bool), max_cells=50) is None  # then lifelines counts


def test_the_churn_models_do_not_depend_on_the_openmp_thread_count():
    """predict_churn fits and predicts on one OpenMP thread (on a shared machine two threads stalled at
    every tree): the same numbers as on every core, early stopping included (above 10,000 rows)."""
    from sklearn.inspection import permutation_importance
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n = 12_000
    x = pd.DataFrame({f: rng.gamma(2.0, 10.0, n).round(1) for f in NUMERIC_FEATURES})
    x.loc[rng.random(n) < 0.7, "last_nps"] = np.nan
    x["main_channel"] = rng.choice(["store", "online", "unknown"], n)
    x["region"] = rng.choice(["north", "south", "east"], n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x["recency_days"] - 20) / 10 - (x["main_channel"] == "store")))).to_numpy(int)
    runs = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="openmp"):
            models = churn_models(0)
            numbers = [model.fit(x, y).predict_proba(x)[:, 1] for model in models.values()]
            numbers.append(permutation_importance(models["gradient boosting"], x.iloc[:2000], y[:2000], scoring="roc_auc", n_repeats=2,
                                                  random_state=0).importances)
        runs.append(numbers)
    assert models["gradient boosting"][-1].n_iter_ < 200  # stopped early: the validation split and its loss are covered
    for one_thread, two_threads in zip(*runs):
        assert np.array_equal(one_thread, two_threads)


@pytest.mark.parametrize("seed", [0, 1])
def test_permutation_importance_with_cached_trees_is_scikit_learns(seed):
    """churn_importance predicts again only the rows whose path in a tree passes a split on the permuted column: the
    numbers of sklearn's permutation_importance, bit for bit, for gradient boosting (categories first inside the
    booster, missing values, early stopping) and, through sklearn itself, the logistic regression; also when some
    features were left out (no region) and the columns move inside the booster."""
    from sklearn.inspection import permutation_importance
    from threadpoolctl import threadpool_limits

    from tierbook.churn_importance import _tree_parts, permutation_importance_auc

    rng = np.random.default_rng(seed)
    n = 14_000
    x = pd.DataFrame({f: rng.gamma(2.0, 10.0, n).round(1) for f in NUMERIC_FEATURES})
    x.loc[rng.random(n) < 0.6, "last_nps"] = np.nan
    x["main_channel"] = rng.choice(["store", "online", "unknown"], n)
    x["region"] = rng.choice(["north", "south", "east", "west"], n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x["recency_days"] - 20) / 10 - (x["main_channel"] == "store") + 0.03 * x["tenure_days"]))).to_numpy(int)
    test = slice(11_000, None)
    for numeric, categorical in ((NUMERIC_FEATURES, ["main_channel", "region"]), (NUMERIC_FEATURES[:5], ["main_channel"])):
        features = numeric + categorical
        with threadpool_limits(limits=1, user_api="openmp"):
            for name, model in churn_models(seed, numeric, categorical).items():
                model.fit(x[features].iloc[:11_000], y[:11_000])
                assert (_tree_parts(model, x[features]) is not None) == (name == "gradient boosting")  # the fast path is taken
                ours = permutation_importance_auc(model, x[features].iloc[test], y[test], n_repeats=3, seed=seed)
                theirs = permutation_importance(model, x[features].iloc[test], y[test], scoring="roc_auc", n_repeats=3, random_state=seed)
                for field in ("importances", "importances_mean", "importances_std"):
                    assert np.array_equal(ours[field], theirs[field]), (name, field)
                assert ours["importances_mean"][0] > 0.01  # recency matters: the permutations really change the scores


def test_text_codes_are_the_codes_of_the_values_as_text():
    from tierbook.churn import _text_codes

    for values in (pd.Series(["b", "a", "b", "c"]), pd.Series(["b", None, np.nan, "a"], dtype=object), pd.Series([1, "1", 2], dtype=object),
                   pd.Series(["VIP", "Regular", pd.NA], dtype="string[pyarrow]"), pd.Series([3.0, np.nan, 3.0])):
        codes, levels = _text_codes(values)
        old_codes, old_levels = pd.factorize(values.astype(str))
        assert np.array_equal(codes, old_codes) and levels.tolist() == old_levels.tolist(), values.tolist()


def test_importance_rows_sample_above_the_threshold():
    y = np.array([0, 1] * 50)
    assert np.array_equal(importance_rows(y, 100, 0), np.arange(100)) and np.array_equal(importance_rows(y, 500, 0), np.arange(100))
    rows = importance_rows(y, 30, 3)
    assert len(rows) == 30 and len(set(rows)) == 30 and np.all(np.diff(rows) > 0) and rows.max() < 100
    assert np.array_equal(rows, importance_rows(y, 30, 3)) and not np.array_equal(rows, importance_rows(y, 30, 4))  # seeded
    assert set(y[rows]) == {0, 1}
    rare = np.zeros(100, dtype=int)
    rare[17] = 1  # a sample of 5 would almost surely miss the one churner: then every row is used
    assert np.array_equal(importance_rows(rare, 5, 0), np.arange(100))


def test_evaluate_by_hand():
    y = np.array([1, 1, 0, 0] * 5)
    metrics, _, lift = evaluate(y, {"perfect": y * 0.9 + 0.05, "reversed": 1 - y * 0.9})
    m = metrics.set_index("model")
    assert m.loc["perfect", "roc_auc"] == 1.0 and m.loc["reversed", "roc_auc"] == 0.0 and m.loc["perfect", "base_rate"] == 0.5
    assert lift[lift["model"] == "perfect"]["lift"].tolist()[:5] == [2.0] * 5


@pytest.mark.realdata
def test_telco_churn_as_a_contractual_example(shared_data):
    """IBM Telco (7,043 customers, 26.54% churned): the section's models on the file's own columns."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    telco = pd.read_csv(shared_data / "telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv")
    telco["TotalCharges"] = pd.to_numeric(telco["TotalCharges"], errors="coerce")  # 11 blanks (tenure 0)
    y = (telco["Churn"] == "Yes").to_numpy(int)
    assert len(telco) == 7043 and round(y.mean(), 4) == 0.2654
    numeric = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]
    categorical = ["Contract", "InternetService", "PaymentMethod", "OnlineSecurity", "TechSupport", "PaperlessBilling"]
    x_train, x_test, y_train, y_test = train_test_split(telco[numeric + categorical], y, test_size=0.3, random_state=0, stratify=y)
    aucs = {name: roc_auc_score(y_test, model.fit(x_train, y_train).predict_proba(x_test)[:, 1])
            for name, model in churn_models(0, numeric, categorical).items()}
    print("Telco ROC AUC", {k: round(v, 3) for k, v in aucs.items()})
    assert 0.82 < aucs["logistic regression"] < 0.88 and 0.80 < aucs["gradient boosting"] < 0.88  # the usual 0.83-0.85


def test_demo_detractors_churn_more_and_the_model_beats_p_alive(tmp_path):
    """The generator ties NPS to the drop-out probability (TRUTH.json 'survey'): detractors churn
    more than promoters, and the churn model ranks churners better than BG/NBD P(alive)."""
    from tierbook import demo

    (tmp_path / "params").mkdir()
    for name in ("default.yaml", "demo.yaml"):
        (tmp_path / "params" / name).write_text((REPO / "params" / name).read_text(encoding="utf-8"), encoding="utf-8")
    params = load_params("demo", tmp_path / "params", ["demo.size=5000", "churn.importance_sample=1000", "churn.cox_sample=2000",
                                                               "churn.train_sample=1500"])
    demo.ensure(params.data_dir(tmp_path), params.demo.size, params.demo.seed)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_data_stage(params, tmp_path, run_dir, today=dt.date(2026, 1, 1))
    run_rfm_stage(params, run_dir)
    run_clv_stage(params, run_dir)
    stage = run_churn_stage(params, run_dir)
    nps = stage.by_nps.set_index("nps_category")["churn_rate"]
    assert nps["detractor"] > nps["passive"] > nps["promoter"] and nps["detractor"] - nps["promoter"] > 0.15
    assert stage.km_nps.logrank_p < 1e-6
    m = stage.prediction.metrics.set_index("model")["roc_auc"]
    assert m[stage.prediction.chosen] > 0.65 and m[stage.prediction.chosen] > m["BG/NBD 1 − P(alive)"] + 0.05
    assert stage.by_tier.set_index("tier")["churn_rate"].is_monotonic_increasing  # VIP churns least
    scores = pd.read_parquet(run_dir / "data/customer_scores.parquet")
    assert scores.loc[scores["churned"], "churn_risk"].isna().all() and scores.loc[~scores["churned"], "churn_risk"].notna().all()
    assert set(stage.at_risk["customer_id"]) <= set(scores.loc[~scores["churned"], "customer_id"].astype(str))
    # the samples of churn.train_sample, churn.importance_sample and churn.cox_sample, and the page says so
    from tierbook.churn import cox_caption, importance_caption, training_caption

    pred = stage.prediction
    assert pred.n_fit == 1500 < pred.n_train and pred.n_refit == 1500 < pred.n_eval
    assert f"random sample of 1,500 of the {pred.n_train:,} customers active at" in training_caption(pred)
    assert pred.n_importance == 1000 < pred.n_eval
    assert pred.importance["feature"].is_unique and len(pred.importance) >= 8 and pred.importance["importance"].iloc[0] > 0.01
    assert f"random sample of 1,000 of the {pred.n_eval:,} test customers" in importance_caption(pred)
    assert stage.cox.ph_customers == 2000 < stage.cox.customers == len(stage.customers) and stage.cox.table["ph_p"].notna().any()
    assert "random sample of 2,000 of these customers" in cox_caption(stage.cox)
    # beside a clv section that failed (the report's record: pipeline.wait_for), the at-risk list ranks by net spend
    from tierbook.pipeline import MARKS, mark, mark_runner

    assert stage.value_column == "clv" and "clv" in stage.at_risk
    mark_runner(run_dir)
    mark(run_dir, "clv", "failed")
    without = run_churn_stage(params, run_dir)
    assert without.value_column == "monetary_total" and "clv" not in without.at_risk and "p_alive" not in without.customers
    assert without.by_tier.equals(stage.by_tier) and without.prediction.risk.equals(stage.prediction.risk)
    shutil.rmtree(run_dir / MARKS)


@pytest.mark.slow
def test_the_demo_report_has_the_churn_section(demo_project):
    project, run = demo_project
    html = (run.run_dir / "churn.html").read_text(encoding="utf-8")
    assert "A customer counts as churned after" in html and "Traceback" not in html
    scores = pd.read_csv(run.run_dir / "customer_scores.csv", encoding="utf-8-sig", dtype={"customer_id": str})
    assert {"churned", "last_nps"} <= set(scores.columns)
    # 400 customers: fewer than churn.min_customers are active at the training cutoff, so no model and no churn_risk
    assert "churn_risk" not in scores.columns and "Too few active customers or too few churners to learn from" in html
    survey = pd.read_parquet(run.run_dir / "data/survey.parquet")
    respondents = set(survey.dropna(subset=["customer_id", "nps"])["customer_id"].astype(str)) & set(scores["customer_id"])
    assert scores["last_nps"].notna().sum() == len(respondents) > 50
