"""The satisfaction section: NPS, CSAT and their intervals by hand, the tests between tiers against
scipy and by hand, comment terms, the demo's planted truths through the pipeline, and the report
when the client has no survey or too few answers."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tierbook.data import run_data_stage
from tierbook.params import load_params
from tierbook.satisfaction import (
    DriverRegression,
    adjust_p,
    category_test,
    csat_estimate,
    nps_category,
    nps_estimate,
    pairwise_nps,
    run_satisfaction_stage,
    response_rates,
    score_table,
    tokenize,
    top_terms,
    value_deciles,
    wilson_interval,
)
from tierbook.satisfaction import _left_join
from tierbook.segmentation import run_rfm_stage
from tierbook.valuation import run_clv_stage

from .conftest import REPO, params_and_run_dir

Z95 = 1.959963984540054


def test_nps_and_its_trinomial_interval_by_hand():
    # 5 promoters (10, 10, 10, 9, 10), 3 passives (8, 7, 7), 2 detractors (6, 2): p = .5, d = .2
    est = nps_estimate([10, 10, 10, 9, 8, 7, 7, 6, 2, 10, None])
    assert (est["n_nps"], est["promoters"], est["passives"], est["detractors"]) == (10, 5, 3, 2)
    assert est["nps"] == pytest.approx(30.0)
    # Var = 100^2 [.5 x .5 + .2 x .8 + 2 x .5 x .2] / 10 = 610
    assert est["nps_se"] == pytest.approx(np.sqrt(610))
    assert (est["nps_lower"], est["nps_upper"]) == pytest.approx((30 - Z95 * np.sqrt(610), 30 + Z95 * np.sqrt(610)))
    assert (round(est["nps_lower"], 2), round(est["nps_upper"], 2)) == (-18.41, 78.41)
    # 2 promoters, 1 detractor: SE = 100 sqrt((2/9 + 2/9 + 4/9) / 3) = 54.43; the interval is clipped at 100
    two_one = nps_estimate([9, 10, 0])
    assert two_one["nps_se"] == pytest.approx(54.4331, abs=1e-4) and two_one["nps_upper"] == 100.0
    assert two_one["nps_lower"] == pytest.approx(100 / 3 - Z95 * 54.4331, abs=1e-3)
    # everyone a promoter: NPS 100 and SE 0; the interval is what the Wilson interval of the promoter share allows
    # (lower bound 0.4385 for 3 of 3: NPS 100 x (2 x 0.4385 - 1)), not the zero-width +100 to +100
    everyone = nps_estimate([9, 10, 10])
    assert everyone["nps"] == 100 and everyone["nps_se"] == 0 and everyone["nps_upper"] == 100
    assert everyone["nps_lower"] == pytest.approx(100 * (2 * 0.438503 - 1), abs=1e-3)
    assert list(nps_category(pd.Series([0, 6, 7, 8, 9, 10, None]))) == ["detractor"] * 2 + ["passive"] * 2 + ["promoter"] * 2 + [np.nan]


def test_csat_and_the_wilson_interval_by_hand():
    # the textbook Wilson intervals: 8 of 10 -> 0.4902 .. 0.9433, 7 of 10 -> 0.3968 .. 0.8922
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    est = csat_estimate([5, 4, 4, 3, 1, 5, 4, 2, 5, 4, np.nan])
    assert (est["n_csat"], est["satisfied"], est["csat"]) == (10, 7, 0.7)
    assert (est["csat_lower"], est["csat_upper"]) == pytest.approx((0.3968, 0.8922), abs=5e-5)
    assert est["mean_csat"] == pytest.approx(3.7)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    # a 90% interval is narrower
    lo90, hi90 = wilson_interval(8, 10, 0.90)
    assert 0.4902 < lo90 and hi90 < 0.9433


def test_holm_bonferroni_and_bh_adjustments_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted .005 x 4 = .02, .01 x 3 = .03, .03 x 2 = .06, .04 x 1 = .04 -> running max .02 .03 .06 .06
    assert adjust_p(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_p(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    # BH: .005 x 4/1 = .02, .01 x 4/2 = .02, .03 x 4/3 = .04, .04 x 4/4 = .04
    assert adjust_p(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_p([0.5, 0.9], "holm") == pytest.approx([1.0, 1.0])


def _responses(counts: dict[str, tuple[int, int, int]]) -> pd.DataFrame:
    """Responses with (detractors, passives, promoters) per tier, scored 3, 7 and 10."""
    rows = [(tier, score) for tier, c in counts.items() for score, k in zip((3, 7, 10), c) for _ in range(k)]
    frame = pd.DataFrame(rows, columns=["tier", "nps"]).assign(csat=4.0, customer_id=lambda f: [f"c{i}" for i in range(len(f))])
    return frame.assign(category=nps_category(frame["nps"]))


def test_chi_square_between_tiers_matches_scipy():
    counts = {"VIP": (5, 10, 25), "Regular": (30, 40, 50), "Potential": (60, 45, 35)}
    test = category_test(_responses(counts), "tier", ["VIP", "Regular", "Potential"])
    chi2, p, df, _ = stats.chi2_contingency(np.array(list(counts.values())), correction=False)
    assert (test.chi2, test.p_value, test.df, test.n) == (pytest.approx(chi2), pytest.approx(p), df, 300)
    assert test.table.loc["Regular"].tolist() == [30, 40, 50]
    assert test.cramers_v == pytest.approx(np.sqrt(chi2 / (300 * 2)))
    observed = np.array(list(counts.values()), dtype=float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / 300  # row total x column total / n
    assert test.chi2 == pytest.approx(((observed - expected) ** 2 / expected).sum()) and round(test.chi2, 2) == 25.83
    assert category_test(_responses({"VIP": (1, 2, 3)}), "tier") is None  # one tier: nothing to compare


def test_pairwise_nps_between_tiers_by_hand():
    responses = _responses({"VIP": (5, 10, 25), "Regular": (30, 40, 50)})
    groups = score_table(responses, "tier", ["VIP", "Regular"], min_n=100)
    assert groups["nps"].round(4).tolist() == [50.0, 16.6667] and groups["nps_below_min_n"].tolist() == [True, False]
    pw = pairwise_nps(groups, "tier", "holm")
    row = pw.iloc[0]
    se_vip = 100 * np.sqrt((0.625 * 0.375 + 0.125 * 0.875 + 2 * 0.625 * 0.125) / 40)
    se_reg = 100 * np.sqrt((50 / 120 * 70 / 120 + 30 / 120 * 90 / 120 + 2 * 50 / 120 * 30 / 120) / 120)
    z = (50 - 50 / 3) / np.hypot(se_vip, se_reg)
    assert (row["group_a"], row["group_b"], row["difference"]) == ("VIP", "Regular", pytest.approx(100 / 3))
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(z)) and row["p_adjusted"] == row["p_value"]  # one pair: Holm = raw
    assert row["lower"] == pytest.approx(100 / 3 - Z95 * np.hypot(se_vip, se_reg))
    three = pairwise_nps(score_table(_responses({"A": (5, 10, 25), "B": (30, 40, 50), "C": (20, 40, 60)}), "tier"), "tier", "holm")
    assert len(three) == 3 and three["p_adjusted"].tolist() == pytest.approx(adjust_p(three["p_value"], "holm").tolist())


def test_driver_regression_by_hand():
    # one item: slope = cov / var, SE = sqrt(s^2 / Sxx), as in any textbook
    frame = pd.DataFrame({"nps": [4, 6, 7, 8, 10, 9], "item_service": [1, 2, 3, 3, 5, 4]})
    fit = DriverRegression().fit(frame, ["item_service"])
    x, y = frame["item_service"].to_numpy(float), frame["nps"].to_numpy(float)
    sxx = ((x - x.mean()) ** 2).sum()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    resid = y - (y.mean() + slope * (x - x.mean()))
    se = np.sqrt(resid @ resid / 4 / sxx)
    assert fit.params_["item_service"] == pytest.approx(slope) and fit.standard_errors_["item_service"] == pytest.approx(se)
    row = fit.summary.set_index("item").loc["service"]
    assert row["upper"] - row["estimate"] == pytest.approx(stats.t.ppf(0.975, 4) * se)
    assert fit.r_squared_ == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)


def test_comment_terms_chinese_and_english():
    assert tokenize("质量太差了，退货太麻烦！") == ["质量", "太差", "退货", "麻烦"]
    assert tokenize("The delivery was very slow, SLOW!") == ["delivery", "slow", "slow"]
    assert tokenize("  ") == [] and tokenize("2024 ok") == ["ok"]
    responses = pd.DataFrame({"nps": [0, 3, 5, 10, 9, 8],
                              "comment": ["发货太慢", "发货太慢，发货太慢", "服务态度不好", "物流很快", "", None]})
    responses["category"] = nps_category(responses["nps"])
    terms = top_terms(responses, 5).set_index(["category", "term"])
    assert terms.loc[("detractor", "发货"), "comments"] == 2  # once per comment
    assert terms.loc[("detractor", "发货"), "share"] == pytest.approx(2 / 3)
    assert terms.loc[("promoter", "物流"), "share_elsewhere"] == 0.0
    assert "passive" not in terms.index.get_level_values(0)  # the passive's comment is empty
    assert top_terms(responses, 5, ["发货"]).query("term == '发货'").empty


# --------------------------------------------------------------------------- the fast paths against the code they replace


def _old_top_terms(responses, top_n, extra_stop_words=()):
    """top_terms as it was: every comment segmented, its terms listed and counted."""
    stop = frozenset(w.lower() for w in extra_stop_words)
    frame = responses[responses["category"].notna() & responses["comment"].fillna("").str.strip().ne("")]
    bags = frame["comment"].map(lambda text: set(tokenize(text, stop)))
    rows = []
    for category in ["promoter", "passive", "detractor"]:
        inside, outside = bags[frame["category"] == category], bags[frame["category"] != category]
        if inside.empty:
            continue
        counts = pd.Series([w for bag in inside for w in bag], dtype=object).value_counts()
        other = pd.Series([w for bag in outside for w in bag], dtype=object).value_counts()
        for term, count in counts.sort_index().sort_values(ascending=False, kind="stable").head(top_n).items():
            rows.append({"category": category, "term": term, "comments": int(count), "share": count / len(inside),
                         "share_elsewhere": other.get(term, 0) / len(outside) if len(outside) else np.nan, "category_comments": len(inside)})
    return pd.DataFrame(rows, columns=["category", "term", "comments", "share", "share_elsewhere", "category_comments"])


def test_top_terms_segments_each_distinct_comment_once_with_the_same_table():
    rng = np.random.default_rng(3)
    texts = ["发货太慢", "价格有点贵", "服务态度不好，发货太慢", "东西不错但排队久", "质量很好 good value", "Great SERVICE, slow delivery",
             "还可以", "物流很快", "  ", "", None, 2024, "价格太贵，不值"]
    comments = pd.Series([texts[i] for i in rng.integers(0, len(texts), 3000)], dtype=object)
    responses = pd.DataFrame({"nps": rng.integers(0, 11, 3000).astype(float), "comment": comments})
    responses.loc[rng.random(3000) < 0.05, "nps"] = np.nan
    responses["category"] = nps_category(responses["nps"])
    for top_n, stop in ((3, ()), (10, ["发货"]), (50, ())):
        pd.testing.assert_frame_equal(top_terms(responses, top_n, stop), _old_top_terms(responses, top_n, stop), check_exact=True)
    as_text = responses.assign(comment=responses["comment"].astype("string"))  # the dtype the survey is read with
    pd.testing.assert_frame_equal(top_terms(as_text, 10), _old_top_terms(as_text, 10), check_exact=True)
    only_promoters = responses[responses["category"] == "promoter"]  # no other category: share_elsewhere is missing
    pd.testing.assert_frame_equal(top_terms(only_promoters, 5), _old_top_terms(only_promoters, 5), check_exact=True)


def _old_score_table(responses, by, order=None, min_n=30, confidence=0.95):
    """score_table per group as it was: the whole frame filtered per group, the values present a set of every row's."""
    def row(frame):
        ids = frame["customer_id"].dropna() if "customer_id" in frame else pd.Series(dtype=str)
        return ({"responses": len(frame), "respondents": ids.nunique()} | nps_estimate(frame["nps"], confidence)
                | csat_estimate(frame["csat"], confidence))

    frame = responses[responses[by].notna()]
    groups = order if order is not None else list(frame[by].value_counts().index)
    present = set(frame[by])
    out = pd.DataFrame([{by: g} | row(frame[frame[by] == g]) for g in groups if g in present])
    if out.empty:
        return out
    out["nps_below_min_n"] = out["n_nps"] < min_n
    out["csat_below_min_n"] = out["n_csat"] < min_n
    return out


def _survey_like(n=2000, seed=5):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "customer_id": pd.Series([f"C{i:04d}" for i in rng.integers(0, n // 2, n)], dtype=object),
        "nps": rng.integers(0, 11, n).astype(float), "csat": rng.integers(1, 6, n).astype(float),
        "tier": pd.Series(rng.choice(["VIP", "Regular", "Potential", None], n), dtype="string"),
        "response_date": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
        "comment": "x"})
    frame.loc[rng.random(n) < 0.1, "csat"] = np.nan
    frame.loc[rng.random(n) < 0.05, "customer_id"] = None
    frame["month"] = frame["response_date"].dt.to_period("M").dt.to_timestamp()
    frame["category"] = nps_category(frame["nps"])
    return frame


def test_score_table_per_group_equals_the_whole_frame_filtered():
    frame = _survey_like()
    for by, order in (("tier", ["VIP", "Regular", "Potential", "Gold"]), ("tier", None), ("month", None),
                      ("month", sorted(frame["month"].dropna().unique()))):  # datetime64 groups against Timestamp values
        new, old = score_table(frame, by, order), _old_score_table(frame, by, order)
        assert len(new) > 1
        pd.testing.assert_frame_equal(new, old, check_exact=True)


def test_left_join_is_the_merge():
    left = pd.DataFrame({"customer_id": ["a", "b", "c", "a", "x", None, "b"], "v": range(7)}, index=[9, 8, 7, 6, 5, 4, 3])
    right = pd.DataFrame({"customer_id": ["b", "a", "c", "d"], "i": [1, 2, 3, 4], "flag": [True, False, True, False],
                          "s": pd.array(["p", "q", None, "r"], dtype="string"), "o": ["w", "x", "y", "z"], "f": [1.5, 2.5, np.nan, 4.5],
                          "cat": pd.Categorical(["u", "v", "u", "v"])})
    for frame in (left, left.iloc[:4], left.iloc[[4, 5]], left.iloc[:0]):  # some, all, none matched, no rows
        pd.testing.assert_frame_equal(_left_join(frame, right), frame.merge(right, on="customer_id", how="left"), check_exact=True)
    repeated = pd.concat([right, right.iloc[[1]].assign(i=99)], ignore_index=True)  # a repeated id repeats the rows it matches
    pd.testing.assert_frame_equal(_left_join(left, repeated), left.merge(repeated, on="customer_id", how="left"), check_exact=True)
    first = repeated.assign(customer_id=repeated["customer_id"].astype(str)).drop_duplicates("customer_id")
    pd.testing.assert_frame_equal(_left_join(left, repeated, first_of_id=True), left.merge(first, on="customer_id", how="left"),
                                  check_exact=True)
    numbered = pd.DataFrame({"customer_id": [1, 2], "region": ["north", "south"]})  # ids that are not text: made text first
    texts = pd.DataFrame({"customer_id": ["1", "3", "2"]})
    expected = texts.merge(numbered.assign(customer_id=numbered["customer_id"].astype(str)), on="customer_id", how="left")
    pd.testing.assert_frame_equal(_left_join(texts, numbered, first_of_id=True), expected, check_exact=True)
    with pytest.raises(ValueError, match="merge on object and int64"):  # as the merge refuses them
        _left_join(texts, numbered)


def test_response_rates_and_value_deciles_as_with_isin_and_merge():
    frame = _survey_like()
    customers = pd.DataFrame({"customer_id": [f"C{i:04d}" for i in range(1200)] + ["C0001"],  # a repeated id counts twice
                              "tier": ["VIP", "Regular", "Potential"] * 400 + ["VIP"]})
    rates = response_rates(customers, frame, "tier", ["VIP", "Regular", "Potential"], 0.95)
    answered = customers.assign(answered=customers["customer_id"].isin(set(frame["customer_id"].dropna())))
    assert rates["respondents"].tolist() == [int(answered.loc[answered["tier"] == t, "answered"].sum()) for t in ["VIP", "Regular", "Potential"]]
    assert rates["customers"].tolist() == [401, 400, 400] and rates["respondents"].sum() > 500
    value = pd.Series(np.random.default_rng(1).gamma(2, 50, 1000), index=[f"C{i:04d}" for i in range(1000)])
    frame["clv"] = frame["customer_id"].map(value)
    frame.loc[frame["customer_id"].isin(["C0003", "C0004"]), "clv"] = np.nan
    deciles = value_deciles(frame, "clv", 10, 0.95, 30)
    # as it was: the responses merged with their customers' deciles (rows in the responses' order: CSAT means are the same doubles)
    customers = frame.dropna(subset=["customer_id", "clv"]).drop_duplicates("customer_id")[["customer_id", "clv"]]
    ranks = customers.sort_values("customer_id")["clv"].rank(method="first")
    decile = customers.assign(value_decile=pd.qcut(ranks, 10, labels=range(1, 11)).astype(int).reindex(customers.index))
    merged = frame.merge(decile[["customer_id", "value_decile"]], on="customer_id", how="inner")
    expected = score_table(merged, "value_decile", list(range(1, 11)), 30, 0.95).join(
        decile.groupby("value_decile")["clv"].agg(value_from="min", value_to="max"), on="value_decile")
    pd.testing.assert_frame_equal(deciles, expected, check_exact=True)
    assert deciles["responses"].sum() == len(merged) and len(deciles) == 10


# --------------------------------------------------------------------------- the demo through the pipeline


@pytest.fixture(scope="module")
def demo_stage(tmp_path_factory):
    from tierbook import demo

    root = tmp_path_factory.mktemp("satisfaction_demo")
    (root / "params").mkdir()
    for name in ("default.yaml", "demo.yaml"):
        (root / "params" / name).write_text((REPO / "params" / name).read_text(encoding="utf-8"), encoding="utf-8")
    params = load_params("demo", root / "params", ["demo.size=5000"])
    truth = demo.ensure(params.data_dir(root), params.demo.size, params.demo.seed)
    run_dir = root / "run"
    run_dir.mkdir()
    run_data_stage(params, root, run_dir, today=dt.date(2026, 1, 1))
    run_rfm_stage(params, run_dir)
    run_clv_stage(params, run_dir)
    members = pd.read_parquet(params.data_dir(root) / "truth_customers.parquet").set_index("customer_id")
    return run_satisfaction_stage(params, run_dir), truth, members, run_dir


def test_demo_counts_every_response_and_writes_the_tables(demo_stage):
    stage, truth, _, run_dir = demo_stage
    o = stage.overall.iloc[0]
    assert o["responses"] == truth["survey"]["n_responses"] == 1250
    assert o["n_nps"] == 1250 - truth["survey"]["blank_nps"]
    answers = pd.read_parquet(run_dir / "data/survey.parquet")["nps"].dropna().astype(int)
    assert o["nps"] == pytest.approx(100 * ((answers >= 9).sum() - (answers <= 6).sum()) / len(answers))
    by_tier = stage.groups["tier"]
    assert list(by_tier["tier"]) == ["VIP", "Regular", "Potential"]
    assert by_tier["responses"].sum() + stage.unmatched == 1250
    written = pd.read_csv(run_dir / "tables/satisfaction_by_tier.csv", encoding="utf-8-sig")
    assert written["nps"].tolist() == pytest.approx(by_tier["nps"].tolist())
    rates = stage.response_rates
    assert rates["respondents"].sum() == by_tier["respondents"].sum()
    assert rates["response_rate"].between(0.2, 0.3).all()  # the demo samples 25% of customers regardless of tier
    assert set(stage.groups) == {"tier", "segment", "region"}  # the demo survey has no channel column


def test_demo_planted_effect_detractors_are_the_customers_who_drop_out(demo_stage):
    """The generator makes customers with a high dropout probability p detractors more often; the
    section's responses reproduce TRUTH's shares exactly, and customers who truly dropped out by
    the end give a far lower NPS than those still alive."""
    stage, truth, members, _ = demo_stage
    s = truth["survey"]
    answers = stage.responses[stage.responses["nps"].notna()]
    high = answers["customer_id"].map(members["p_drop"]) > s["median_p"]
    detractor = answers["category"] == "detractor"
    assert detractor[high].mean() == pytest.approx(s["detractor_share_high_p"], abs=1e-6)  # TRUTH keeps 6 decimals
    assert detractor[~high].mean() == pytest.approx(s["detractor_share_low_p"], abs=1e-6)
    alive = answers["customer_id"].map(members["alive_at_end"]).astype(bool)
    nps_alive, nps_dead = nps_estimate(answers.loc[alive, "nps"]), nps_estimate(answers.loc[~alive, "nps"])
    assert nps_alive["nps"] - nps_dead["nps"] > 20 and nps_dead["nps_upper"] < nps_alive["nps_lower"]
    # and valuable customers (by CLV, which P(alive) drives) are more satisfied
    corr = stage.correlation.set_index("measure")
    assert corr.loc["clv", "lower"] > 0.1
    assert stage.deciles["nps"].iloc[-1] > stage.deciles["nps"].iloc[0] + 20


def test_demo_item_weights_are_recovered(demo_stage):
    """OLS of the 0-10 score on the three item scores recovers the planted weights (0.3, 0.7, 0.5
    points per item point) within 0.12: the rounding of the score and its clipping at 10 attenuate
    them a little, sampling error (SE about 0.03 here) does the rest."""
    stage, truth, _, _ = demo_stage
    fit = stage.drivers
    weights = truth["survey"]["item_weights"]
    estimates = fit.summary.set_index("item")["estimate"]
    for item, weight in weights.items():
        assert abs(estimates[item] - weight) < 0.12, (item, estimates[item], weight)
    assert estimates["product"] > estimates["service"] > estimates["delivery"]
    assert fit.n_ == 1250 - truth["survey"]["blank_nps"]


# --------------------------------------------------------------------------- clients without a survey


NO_SURVEY = """
sources:
  transactions:
    - name: shop
      path: orders.csv
      columns: {{cid: customer_id, day: order_date, amt: amount}}
{survey}
"""
SURVEY_SOURCE = """  survey:
    name: nps
    path: survey.csv
    columns: {cid: customer_id, date: response_date, score: nps}
"""


def _shop(root, survey_rows: int | None = None):
    data = root / "data" / "shop"
    data.mkdir(parents=True)
    rng = np.random.default_rng(1)
    n = 300
    orders = pd.DataFrame({"cid": [f"c{i % 120}" for i in range(n)],
                           "day": (pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")).strftime("%Y-%m-%d"),
                           "amt": rng.gamma(2, 50, n).round(2) + 1})
    orders.to_csv(data / "orders.csv", index=False)
    survey = ""
    if survey_rows is not None:
        pd.DataFrame({"cid": [f"c{i}" for i in range(survey_rows)], "date": "2025-11-01", "score": 9}).to_csv(data / "survey.csv", index=False)
        survey = SURVEY_SOURCE
    return NO_SURVEY.format(survey=survey)


def test_too_few_answers_get_one_paragraph(tmp_path):
    params, run_dir = params_and_run_dir(tmp_path, "shop", _shop(tmp_path, survey_rows=12))
    run_data_stage(params, tmp_path, run_dir, today=dt.date(2026, 1, 1))
    run_rfm_stage(params, run_dir)
    stage = run_satisfaction_stage(params, run_dir)
    assert not stage.ok and stage.overall is None
    assert stage.problem == ("The survey has only 12 answers with an NPS or CSAT score, fewer than the 30 this section needs "
                             "(satisfaction.min_responses) for estimates worth showing.")
    assert not list((run_dir / "tables").glob("satisfaction_*"))


@pytest.mark.slow
def test_the_report_still_runs_without_a_survey(project):
    """No `sources.survey`: the satisfaction page says so in one sentence, without figures, and the
    run succeeds with every other section."""
    from tierbook.report import Project, run_report

    (project / "params" / "shop.yaml").write_text(_shop(project), encoding="utf-8")
    result = run_report(Project(project), "shop")
    assert result.status == "succeeded"
    html = (result.run_dir / "satisfaction.html").read_text(encoding="utf-8")
    assert "This client has no satisfaction survey (no <code>sources.survey</code> in params)" in html
    assert "Traceback" not in html and "<img" not in html and "<table" not in html
    assert not list((result.run_dir / "tables").glob("satisfaction_*"))
    assert (result.run_dir / "clv.html").exists()
    ab = (result.run_dir / "ab_test.html").read_text(encoding="utf-8")  # no experiment either: one sentence, no tables
    assert "This client has no experiment table (<code>sources.experiment</code> in params)" in ab and "<table" not in ab


@pytest.mark.slow
def test_the_demo_report_has_the_satisfaction_section(demo_project):
    project, run = demo_project
    html = (run.run_dir / "satisfaction.html").read_text(encoding="utf-8")
    assert "Satisfaction (NPS and CSAT)" in html and "Traceback" not in html
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html  # no warning printed on the page
    overall = pd.read_csv(run.run_dir / "tables/satisfaction_overall.csv", encoding="utf-8-sig").iloc[0]
    assert f"<strong>NPS {overall['nps']:+.0f} ({overall['nps_lower']:+.0f} to {overall['nps_upper']:+.0f}, n = {int(overall['n_nps']):,})" in html
    assert html.count("<img") >= 6  # tiers, mix, segments, region, trend, response rates, value, drivers
    assert "What moves the 0-10 score" in html or "OLS on" in html
    scores = pd.read_parquet(run.run_dir / "data/customer_scores.parquet")
    assert "nps" not in scores.columns  # this section never writes customer_scores; churn adds last_nps


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_olist_review_scores_as_csat(shared_data):
    """Olist's classified reviews (3,584 orders, scores 1-5: 867 / 216 / 332 / 514 / 1,655, as
    its SOURCE.md records): CSAT = (514 + 1,655) / 3,584 = 60.5%, with its Wilson interval."""
    reviews = pd.read_csv(shared_data / "olist_classified/olist_classified_public_dataset.csv", usecols=["review_score"])
    assert reviews["review_score"].value_counts().sort_index().tolist() == [867, 216, 332, 514, 1655]
    est = csat_estimate(reviews["review_score"])
    assert (est["n_csat"], est["satisfied"]) == (3584, 2169)
    assert round(est["csat"], 4) == 0.6052 and (round(est["csat_lower"], 4), round(est["csat_upper"], 4)) == (0.5891, 0.6211)
