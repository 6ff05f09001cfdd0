import numpy as np
import pandas as pd
import pytest

from tierbook.clusters import FEATURES, RFMClusters, crosstab
from tierbook.errors import TierbookError


def groups(seed=0, n=300):
    """Three well-separated behaviour groups of n customers: high, mid and low value."""
    rng = np.random.default_rng(seed)
    parts = []
    for recency, occasions, spend in ((10, 20, 5000), (200, 3, 300), (600, 1, 40)):
        parts.append(pd.DataFrame({
            "recency_days": np.maximum(1, rng.normal(recency, recency * 0.1, n)).round().astype(int),
            "purchase_occasions": np.maximum(1, rng.normal(occasions, occasions * 0.1, n)).round().astype(int),
            "monetary_total": rng.normal(spend, spend * 0.1, n).clip(1),
        }))
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "customer_id", [f"C{i:04d}" for i in range(len(frame))])
    frame["truth"] = np.repeat(["high", "mid", "low"], n)
    return frame


def mostly_one_time(seed=1, n=1000):
    """80 % identical one-time buyers (same recency and spend), 20 % spread out."""
    rng = np.random.default_rng(seed)
    n_rest = n // 5
    frame = pd.DataFrame({
        "customer_id": [f"M{i:04d}" for i in range(n)],
        "recency_days": np.r_[np.full(n - n_rest, 300), rng.integers(0, 400, n_rest)],
        "purchase_occasions": np.r_[np.ones(n - n_rest, dtype=int), rng.integers(1, 12, n_rest)],
        "monetary_total": np.r_[np.full(n - n_rest, 49.0), rng.lognormal(6, 1, n_rest).round(2)],
    })
    return frame


@pytest.fixture(scope="module")
def data():
    return groups()


@pytest.fixture(scope="module")
def fitted(data):
    return RFMClusters(k_range=(2, 6)).fit(data)


def test_three_separated_groups_are_found_and_ranked_by_spend(data, fitted):
    assert fitted.k_ == 3 and fitted.silhouette_.idxmax() == 3 and fitted.silhouette_.loc[3] > 0.7
    assert list(fitted.silhouette_.index) == [2, 3, 4, 5, 6]
    table = pd.crosstab(data["truth"], fitted.labels_)
    assert (table.gt(0).sum(axis=1) == 1).all()  # each group is in exactly one cluster
    assert table.loc["high", 1] == 300 and table.loc["mid", 2] == 300 and table.loc["low", 3] == 300
    assert fitted.labels_.index.equals(data.index) and set(fitted.labels_) == {1, 2, 3}


def test_learned_attributes(data, fitted):
    assert fitted.features_ == FEATURES
    logs = np.log1p(data[FEATURES].astype(float))
    np.testing.assert_allclose(fitted.mean_.to_numpy(), logs.mean().to_numpy())
    np.testing.assert_allclose(fitted.scale_.to_numpy(), logs.std(ddof=0).to_numpy())
    # centres are back in original units, ordered like the labels (cluster 1 = highest spend)
    assert list(fitted.centers_.index) == [1, 2, 3] and list(fitted.centers_.columns) == FEATURES
    assert fitted.centers_["monetary_total"].is_monotonic_decreasing
    assert 4000 < fitted.centers_.loc[1, "monetary_total"] < 6000 and 30 < fitted.centers_.loc[3, "monetary_total"] < 50
    assert fitted.inertia_ > 0
    assert fitted.predict(data).equals(fitted.labels_)


def test_deterministic_and_independent_of_row_order(data, fitted):
    assert fitted.labels_.equals(RFMClusters(k_range=(2, 6)).fit(data).labels_)
    shuffled = data.sample(frac=1, random_state=3)
    again = RFMClusters(k_range=(2, 6)).fit(shuffled)
    assert again.labels_.index.equals(shuffled.index)
    assert again.labels_.sort_index().equals(fitted.labels_)
    # also on messy data, where k-means has no obvious answer
    messy = mostly_one_time()
    first = RFMClusters(k_range=(2, 5), n_init=3).fit(messy)
    second = RFMClusters(k_range=(2, 5), n_init=3).fit(messy.sample(frac=1, random_state=7))
    assert first.k_ == second.k_ and second.labels_.sort_index().equals(first.labels_)
    pd.testing.assert_series_equal(first.silhouette_, second.silhouette_)


def test_all_identical_customers_are_one_cluster():
    same = pd.DataFrame({"customer_id": list("abcde"), "recency_days": 5, "purchase_occasions": 1, "monetary_total": 10.0})
    model = RFMClusters().fit(same)
    assert model.k_ == 1 and model.labels_.tolist() == [1] * 5 and model.silhouette_.empty
    assert model.inertia_ == 0.0 and model.model_ is None
    np.testing.assert_allclose(model.centers_.loc[1].to_numpy(), [5, 1, 10])
    assert model.predict(same.head(2)).tolist() == [1, 1]
    prof = model.profile(same)
    assert prof["customers"].tolist() == [5] and prof["revenue_share"].tolist() == [1.0]
    single = RFMClusters().fit(same.head(1))
    assert single.k_ == 1 and single.labels_.tolist() == [1] and single.silhouette_.empty


def test_k_is_capped_at_the_number_of_distinct_customers():
    two_points = pd.DataFrame({"customer_id": list("abcd"), "recency_days": [5, 5, 500, 500],
                               "purchase_occasions": [1, 1, 9, 9], "monetary_total": [10.0, 10.0, 900.0, 900.0]})
    model = RFMClusters(k_range=(2, 8)).fit(two_points)
    assert model.k_ == 2 and model.labels_.tolist() == [2, 2, 1, 1] and list(model.silhouette_.index) == [2]
    assert model.silhouette_.loc[2] == pytest.approx(1.0)
    # fewer customers than the smallest k: k drops to the number of customers; silhouette is
    # undefined for one customer per cluster, so it is NaN and the smallest candidate is kept
    three = pd.DataFrame({"customer_id": list("xyz"), "recency_days": [1, 50, 400],
                          "purchase_occasions": [9, 3, 1], "monetary_total": [900.0, 90.0, 9.0]})
    model = RFMClusters(k_range=(5, 8)).fit(three)
    assert model.k_ == 3 and model.labels_.tolist() == [1, 2, 3]
    assert list(model.silhouette_.index) == [3] and model.silhouette_.isna().all()


def test_mass_of_one_time_buyers_does_not_crash():
    messy = mostly_one_time()
    model = RFMClusters(k_range=(2, 8), n_init=3).fit(messy)
    assert 2 <= model.k_ <= 8 and model.silhouette_.notna().all()
    assert model.labels_.iloc[:800].nunique() == 1  # identical customers always share a cluster
    prof = model.profile(messy)
    assert prof["customers"].sum() == len(messy) and (prof["customers"] > 0).all()


def test_profile_adds_up(data, fitted):
    before = data.copy()
    prof = fitted.profile(data)
    assert prof["cluster"].tolist() == [1, 2, 3]
    assert prof["customers"].sum() == len(data) and np.isclose(prof["customer_share"].sum(), 1)
    assert np.isclose(prof["revenue"].sum(), data["monetary_total"].sum()) and np.isclose(prof["revenue_share"].sum(), 1)
    assert prof["mean_monetary_total"].is_monotonic_decreasing
    high = data[data["truth"] == "high"]
    assert prof.loc[0, "median_recency_days"] == high["recency_days"].median()
    assert prof.loc[0, "mean_purchase_occasions"] == pytest.approx(high["purchase_occasions"].mean())
    # another period where a cluster is empty still gets a row for it
    part = fitted.profile(data[data["truth"] != "mid"])
    assert part["cluster"].tolist() == [1, 2, 3] and part.loc[1, "customers"] == 0 and part["customers"].sum() == 600
    pd.testing.assert_frame_equal(data, before)


def test_crosstab_totals_and_alignment(data, fitted):
    table = crosstab(fitted.labels_, data["truth"])
    assert table.loc["total", "total"] == len(data) and table.loc[1, "high"] == 300
    assert list(table.index) == [1, 2, 3, "total"] and table.columns[-1] == "total"
    assert (table.drop(index="total").sum() == table.loc["total"]).all()
    assert (table.drop(columns="total").sum(axis=1) == table["total"]).all()
    # segments in a different row order are matched by index, not position
    shuffled = crosstab(fitted.labels_, data["truth"].sample(frac=1, random_state=5))
    pd.testing.assert_frame_equal(shuffled, table)
    with pytest.raises(ValueError):
        crosstab(fitted.labels_, data["truth"].iloc[:-1])


def test_inputs_are_not_mutated():
    data = groups(n=60)
    before = data.copy()
    model = RFMClusters(k_range=(2, 4), n_init=2).fit(data)
    model.predict(data)
    model.profile(data)
    labels_before = model.labels_.copy()
    crosstab(model.labels_, data["truth"])
    pd.testing.assert_frame_equal(data, before)
    pd.testing.assert_series_equal(model.labels_, labels_before)


def test_bad_input_is_reported():
    data = groups(n=20)
    with pytest.raises(TierbookError, match="monetary_total"):
        RFMClusters().fit(data.drop(columns="monetary_total"))
    with pytest.raises(TierbookError, match="out-of-range"):
        RFMClusters().fit(data.assign(purchase_occasions=0))
    with pytest.raises(TierbookError, match="no rows"):
        RFMClusters().fit(data.iloc[:0])
    with pytest.raises(ValueError, match="k_range"):
        RFMClusters(k_range=(1, 4)).fit(data)


def test_a_base_above_fit_size_is_clustered_from_a_sample_like_the_full_fit():
    # 3 x 2,000 customers, fit_size 600: k is chosen on 600 sampled customers and refitted on all 6,000
    frame = groups(seed=3, n=2000)
    full = RFMClusters(k_range=(2, 5), fit_size=10_000).fit(frame)
    sampled = RFMClusters(k_range=(2, 5), fit_size=600).fit(frame)
    assert full.k_ == sampled.k_ == 3
    assert (sampled.labels_ == full.labels_).mean() == 1.0  # well-separated groups: the same partition, the same ranking
    assert sampled.inertia_ == pytest.approx(full.inertia_, rel=1e-6)
    assert pd.crosstab(sampled.labels_, frame["truth"]).max(axis=1).sum() == 6000
    # below fit_size nothing changes: the default fit_size gives the exact full fit
    assert (RFMClusters(k_range=(2, 5)).fit(frame).labels_ == full.labels_).all()


@pytest.mark.parametrize("fit_size", [20000, 400])  # everyone; and k chosen on a 400-customer sample, refitted on all 900
def test_one_openmp_thread_gives_the_labels_of_two(data, monkeypatch, fit_size):
    """k-means runs in one OpenMP thread (see clusters._one_openmp_thread): the labels, silhouettes and k
    are those of the two-thread fit it replaces, the centres and inertia the same up to the order of a sum."""
    from threadpoolctl import threadpool_limits

    import tierbook.clusters as clusters

    messy = pd.concat([data[FEATURES], mostly_one_time()[FEATURES]], ignore_index=True)  # separated groups and a tie mass
    one = RFMClusters(k_range=(2, 6), fit_size=fit_size).fit(messy)
    monkeypatch.setattr(clusters, "_one_openmp_thread", lambda: threadpool_limits(limits=2, user_api="openmp"))
    two = RFMClusters(k_range=(2, 6), fit_size=fit_size).fit(messy)
    assert one.k_ == two.k_ and one.labels_.equals(two.labels_)
    assert one.silhouette_.equals(two.silhouette_) and one.profile(messy).equals(two.profile(messy, two.labels_))
    np.testing.assert_allclose(one.centers_.to_numpy(), two.centers_.to_numpy(), rtol=1e-12)
    assert one.inertia_ == pytest.approx(two.inertia_, rel=1e-12)
