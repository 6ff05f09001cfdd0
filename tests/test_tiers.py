import pandas as pd

from tierbook.tiers import TierRules, migration, tier_summary

LEVELS = [{"name": "VIP", "zh": "VIP客户", "top_share": 0.2}, {"name": "Regular", "zh": "普通客户", "top_share": 0.6},
          {"name": "Potential", "zh": "潜在客户"}]


def frame(values):
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(len(values))], "monetary_total": values,
                         "purchase_occasions": 1, "recency_days": 10})


def test_top_shares_are_cumulative_and_never_split_ties():
    summary = frame([100, 90, 80, 70, 60, 50, 40, 30, 20, 10])
    tiers = TierRules(LEVELS).fit(summary).assign(summary)
    assert tiers.tolist() == ["VIP"] * 2 + ["Regular"] * 4 + ["Potential"] * 4
    tied = frame([100, 90, 90, 90, 60, 50, 40, 30, 20, 10])  # ties at the VIP boundary stay together
    assert TierRules(LEVELS).fit(tied).assign(tied).tolist()[:4] == ["VIP"] * 4


def test_score_and_segment_rules():
    summary = frame([1, 2, 3])
    segments = pd.DataFrame({"rfm_score": [15, 9, 3], "segment_zh": ["重要价值客户", "一般发展客户", "一般挽留客户"],
                             "named_segment": ["Champions", "New", "Lost"]})
    levels = [{"name": "A", "zh": "A", "min_rfm_score": 12}, {"name": "B", "zh": "B", "segments": ["New"]}, {"name": "C", "zh": "C"}]
    assert TierRules(levels).fit(summary).assign(summary, segments).tolist() == ["A", "B", "C"]


def test_tier_summary_shares():
    summary = frame([100, 50, 30, 20])
    out = tier_summary(summary, pd.Series(["VIP", "Regular", "Regular", "Potential"]), ["VIP", "Regular", "Potential"])
    assert out["customers"].tolist() == [1, 2, 1]
    assert out["revenue_share"].tolist() == [0.5, 0.4, 0.1]


def test_migration_on_a_two_period_toy_example():
    order = ["VIP", "Regular", "Potential"]
    base = pd.Series({"a": "VIP", "b": "Regular", "c": "Regular", "d": "Potential", "e": "Potential"})
    current = pd.Series({"a": "Regular", "b": "VIP", "c": "Regular", "d": "Potential", "e": "Regular", "f": "Potential"})
    revenue = pd.Series({"a": 10.0, "b": 100.0, "c": 20.0, "d": 1.0, "e": 30.0, "f": 5.0})
    moved = migration(base, current, order, revenue)
    assert moved.matrix.loc["VIP"].tolist() == [0, 1, 0]
    assert moved.matrix.loc["Regular"].tolist() == [1, 1, 0]
    assert moved.matrix.loc["Potential"].tolist() == [0, 1, 1]
    assert moved.matrix.loc["new"].tolist() == [0, 0, 1]
    assert moved.rates == {"customers_in_both": 5, "upgrade": 0.4, "downgrade": 0.2, "stay": 0.4, "new_customers": 1}
    assert moved.row_share.loc["Regular"].tolist() == [0.5, 0.5, 0.0]
    by_move = moved.revenue_moved.set_index("move")
    assert by_move.loc["up", "revenue"] == 130.0 and by_move.loc["down", "revenue"] == 10.0
    assert by_move.loc["new", "customers"] == 1
