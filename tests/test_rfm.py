import numpy as np
import pandas as pd
import pytest

from tierbook.params import load_params
from tierbook.rfm import RFMScorer, pareto, quantile_scores, segment_profile, threshold_scores

from .conftest import REPO

PARAMS = load_params("demo", REPO / "params")


def summary(recency, occasions, monetary):
    n = len(recency)
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "recency_days": recency,
                         "purchase_occasions": occasions, "monetary_total": monetary})


def scorer(**kw):
    rfm = PARAMS.rfm
    args = dict(n_scores=rfm.n_scores, method=rfm.method, thresholds=rfm.thresholds, reference=rfm.reference,
                segments_8={k: v.model_dump() for k, v in rfm.segments_8.items()},
                segments_named=[r.model_dump() for r in rfm.segments_named])
    args.update(kw)
    return RFMScorer(**args)


def test_quantile_scores_by_hand():
    # 10 customers, 5 scores: score = 1 + floor(5 * share strictly worse)
    values = pd.Series([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert quantile_scores(values, 5, "f").tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # recency: fewer days = better = higher score
    assert quantile_scores(values, 5, "r").tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_ties_share_a_score_and_a_mass_of_one_time_buyers_stays_together():
    occasions = pd.Series([1] * 80 + [2] * 10 + [3] * 5 + [4, 5, 6, 7, 8])
    scores = quantile_scores(occasions, 5, "f")
    assert set(scores[:80]) == {1}  # 80 % one-time buyers: all score 1, never split
    assert set(scores[80:90]) == {5}  # 80 customers are strictly worse: 1 + floor(5 * 0.8) = 5
    assert set(scores[90:]) == {5}
    all_equal = quantile_scores(pd.Series([7.0] * 6), 5, "m")
    assert all_equal.tolist() == [1] * 6
    assert quantile_scores(pd.Series([3.0]), 5, "m").tolist() == [1]  # a single customer


def test_threshold_scores():
    cuts = [30, 90, 180, 365]
    assert threshold_scores(pd.Series([10, 30, 31, 200, 400]), cuts, 5, "r").tolist() == [5, 5, 4, 2, 1]
    assert threshold_scores(pd.Series([1, 2, 9]), [1, 2, 4, 8], 5, "f").tolist() == [1, 2, 5]


@pytest.mark.parametrize("code, zh, en", [
    ("HHH", "重要价值客户", "Key value"), ("HLH", "重要发展客户", "Key development"),
    ("LHH", "重要保持客户", "Key retention"), ("LLH", "重要挽留客户", "Key win-back"),
    ("HHL", "一般价值客户", "General value"), ("HLL", "一般发展客户", "General development"),
    ("LHL", "一般保持客户", "General retention"), ("LLL", "一般挽留客户", "General win-back"),
])
def test_the_eight_segments_pinned(code, zh, en):
    # reference = means of the two customers below: recency 50, occasions 5, monetary 500
    base = summary([10, 90], [9, 1], [900, 100])
    r, f, m = (c == "H" for c in code)
    probe = summary([10 if r else 90], [9 if f else 1], [900 if m else 100])
    fitted = scorer().fit(base)
    out = fitted.transform(probe)
    assert out["rfm_hl"].iloc[0] == code
    assert (out["segment_zh"].iloc[0], out["segment_en"].iloc[0]) == (zh, en)


def test_reference_mean_or_median():
    base = summary([1, 2, 3, 100], [1, 1, 1, 20], [10, 10, 10, 1000])
    mean, median = scorer(reference="mean").fit(base), scorer(reference="median").fit(base)
    assert mean.reference_ == {"r": 26.5, "f": 5.75, "m": 257.5}
    assert median.reference_ == {"r": 2.5, "f": 1.0, "m": 10.0}
    assert mean.transform(base)["rfm_hl"].tolist() == ["HLL", "HLL", "HLL", "LHH"]


def test_named_segments_cover_every_customer_and_follow_the_rules():
    rng = np.random.default_rng(1)
    base = summary(rng.integers(1, 700, 500), rng.geometric(0.3, 500), rng.gamma(2, 200, 500))
    out = scorer().fit(base).transform(base)
    assert out["named_segment"].notna().all() and out["segment_zh"].notna().all()
    champions = out[out["named_segment"] == "Champions"]
    assert (champions["r_score"] == 5).all() and (champions["f_score"] >= 4).all()
    lost = out[out["named_segment"] == "Lost"]
    assert (lost["r_score"] == 1).all() and (lost["f_score"] <= 2).all()


def test_frozen_edges_score_another_period_consistently():
    base = summary([5, 20, 40, 80, 160], [1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    fitted = scorer().fit(base)
    assert fitted.scores(base)["m_score"].tolist() == [1, 2, 3, 4, 5]
    later = summary([3, 1000], [100, 1], [25, 5])
    scored = fitted.scores(later)
    assert scored["r_score"].tolist() == [5, 1] and scored["f_score"].tolist() == [5, 1] and scored["m_score"].tolist() == [2, 1]


def test_profile_and_pareto():
    base = summary([1, 2, 3, 4], [1, 1, 2, 4], [10.0, 10.0, 30.0, 50.0])
    prof = segment_profile(base, pd.Series(["a", "a", "b", "b"]), {"a": "act"})
    assert prof["customers"].tolist() == [2, 2] and prof["segment"].tolist() == ["b", "a"]
    assert prof["revenue_share"].tolist() == [0.8, 0.2] and prof["action"].tolist() == ["", "act"]
    curve = pareto(base)
    assert curve["revenue_share"].tolist() == [0.5, 0.8, 0.9, 1.0]
