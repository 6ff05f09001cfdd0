import numpy as np
import pandas as pd

from tierbook.clusters import RFMClusters, crosstab


def groups(seed=0, n=300):
    rng = np.random.default_rng(seed)
    parts = []
    for recency, occasions, spend in ((10, 20, 5000), (200, 3, 300), (600, 1, 40)):
        parts.append(pd.DataFrame({
            "recency_days": np.maximum(1, rng.normal(recency, recency * 0.1, n)).round(),
            "purchase_occasions": np.maximum(1, rng.normal(occasions, occasions * 0.1, n)).round(),
            "monetary_total": rng.normal(spend, spend * 0.1, n).clip(1),
        }))
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "customer_id", [f"C{i:04d}" for i in range(len(frame))])
    frame["truth"] = np.repeat(["high", "mid", "low"], n)
    return frame


def test_three_separated_groups_are_found_and_ranked_by_spend():
    data = groups()
    model = RFMClusters(k_range=(2, 6)).fit(data)
    assert model.k_ == 3 and model.silhouette_.idxmax() == 3 and model.silhouette_.loc[3] > 0.7
    table = pd.crosstab(data["truth"], model.labels_)
    assert (table.gt(0).sum(axis=1) == 1).all()  # each group is in exactly one cluster
    assert table.loc["high", 1] == 300 and table.loc["low", 3] == 300  # cluster 1 = highest spend


def test_deterministic_and_independent_of_row_order():
    data = groups()
    first = RFMClusters(k_range=(2, 6)).fit(data).labels_
    shuffled = data.sample(frac=1, random_state=3)
    again = RFMClusters(k_range=(2, 6)).fit(shuffled).labels_
    assert (first == RFMClusters(k_range=(2, 6)).fit(data).labels_).all()
    assert (again.set_axis(shuffled["customer_id"]).sort_index() == first.set_axis(data["customer_id"]).sort_index()).all()


def test_degenerate_data_does_not_crash():
    same = pd.DataFrame({"customer_id": list("abcde"), "recency_days": 5, "purchase_occasions": 1, "monetary_total": 10.0})
    model = RFMClusters().fit(same)
    assert model.k_ == 1 and model.labels_.tolist() == [1] * 5 and model.silhouette_.empty
    two_points = pd.DataFrame({"customer_id": list("abcd"), "recency_days": [5, 5, 500, 500],
                               "purchase_occasions": [1, 1, 9, 9], "monetary_total": [10.0, 10.0, 900.0, 900.0]})
    model = RFMClusters(k_range=(2, 8)).fit(two_points)
    assert model.k_ == 2 and model.labels_.tolist() == [2, 2, 1, 1]
    one = RFMClusters().fit(same.head(1))
    assert one.k_ == 1


def test_profile_and_crosstab_add_up():
    data = groups()
    before = data.copy()
    model = RFMClusters(k_range=(2, 4)).fit(data)
    prof = model.profile(data)
    assert prof["customers"].sum() == len(data) and np.isclose(prof["customer_share"].sum(), 1)
    assert np.isclose(prof["revenue"].sum(), data["monetary_total"].sum()) and np.isclose(prof["revenue_share"].sum(), 1)
    table = crosstab(model.labels_, data["truth"])
    assert table.loc["total", "total"] == len(data) and table.loc[1, "high"] == 300
    pd.testing.assert_frame_equal(data, before)
