"""Lifecycle stages, behaviour tags and TGI on hand-built frames (every figure worked out by hand)."""

import numpy as np
import pandas as pd
import pytest

from tierbook import tags as T


def _orders(rows):
    """rows: (customer, 'YYYY-MM-DD'[, channel, gross, returned])."""
    frame = pd.DataFrame(rows, columns=["customer_id", "order_date", "channel", "gross_amount", "returned_amount"][:len(rows[0])])
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    return frame


TIMELINES = [
    ("A", "2024-12-15"),                                                      # 17 days old: new
    ("B", "2024-01-01"), ("B", "2024-06-01"),                                 # 214 days since the last: lapsed
    ("C", "2024-01-01"), ("C", "2024-11-01"),                                 # 61 > 50 days: lapsing (its return was 61 days ago)
    ("D", "2024-01-01"), ("D", "2024-12-01"),                                 # back after 335 days, 31 days ago: reactivated
    ("E", "2024-06-01"), ("E", "2024-08-01"), ("E", "2024-10-01"), ("E", "2024-12-20"),  # gaps 61, 61, 80: active
    ("F", "2024-01-01"), ("F", "2024-05-01"), ("F", "2024-12-25"),            # two lapses, the last return 7 days ago: reactivated
    ("G", "2025-02-01"),                                                      # after as_of: not a customer yet
    ("H", "2024-01-01"), ("H", "2024-09-23"),                                 # exactly 100 days: not lapsed, lapsing
    ("I", "2024-10-01"), ("I", "2024-10-01"),                                 # two orders on one day, 92 days ago: lapsing
]


def test_lifecycle_rules_on_toy_timelines():
    stages = T.lifecycle_stages(_orders(TIMELINES), "2025-01-01", churn_days=100, new_days=30, lapsing_share=0.5, reactivated_days=60)
    got = dict(zip(stages["customer_id"], stages["stage"].astype(str)))
    assert got == {"A": "new", "B": "lapsed", "C": "lapsing", "D": "reactivated", "E": "active", "F": "reactivated", "H": "lapsing",
                   "I": "lapsing"}
    row = stages.set_index("customer_id").loc["F"]
    assert (row["recency_days"], row["tenure_days"], row["last_return"]) == (7, 366, pd.Timestamp("2024-12-25"))
    assert pd.isna(stages.set_index("customer_id").loc["E", "last_return"])


def test_reactivated_turns_active_once_the_window_has_passed():
    orders = _orders([("D", "2024-01-01"), ("D", "2024-12-01")])
    assert T.lifecycle_stages(orders, "2025-01-01", 100, reactivated_days=60)["stage"].iloc[0] == "reactivated"
    assert T.lifecycle_stages(orders, "2025-01-01", 100, reactivated_days=30)["stage"].iloc[0] == "active"


def test_stage_flow_counts_moves_and_newcomers():
    before = pd.Series({"a": "active", "b": "active", "c": "lapsing"})
    now = pd.Series({"a": "active", "b": "lapsing", "c": "lapsed", "d": "new"})
    flow = T.stage_flow(before, now)
    assert flow.loc["active", "active"] == 1 and flow.loc["active", "lapsing"] == 1
    assert flow.loc["lapsing", "lapsed"] == 1 and flow.loc[T.NOT_YET, "new"] == 1
    assert int(flow.to_numpy().sum()) == 4 and list(flow.index) == ["active", "lapsing", T.NOT_YET]


def test_favourite_category_by_share_of_spend_ties_by_name():
    lines = pd.DataFrame({"customer_id": ["1", "1", "1", "2", "2", "3"], "category": ["服装", "美妆", "服装", "食品", "家居", None],
                          "amount": [100.0, 150.0, 60.0, 50.0, 50.0, 80.0]})
    fav = T.favourite_category(lines).set_index("customer_id")
    assert fav.loc["1", "favourite_category"] == "服装" and fav.loc["1", "share"] == pytest.approx(160 / 310)
    assert fav.loc["2", "favourite_category"] == "家居"  # 50 = 50: 家 (U+5BB6) sorts before 食 (U+98DF)
    assert "3" not in fav.index  # no category, no tag


def test_channel_preference():
    orders = _orders([("1", "2024-01-01", "store"), ("1", "2024-02-01", "store"), ("2", "2024-01-01", "store"), ("2", "2024-03-01", "online")])
    assert T.channel_preference(orders).to_dict() == {"1": "store only", "2": "omnichannel"}


def test_channel_preference_missing_channels_repeats_and_order():
    # 10: app twice and a missing channel -> app only; 9: three channels -> omnichannel; 7: only missing
    # channels -> unknown; 8: store, then store again -> store only. Ids come back as text, sorted as
    # text ("10" before "7"), one row per customer, whatever the order of the orders.
    rows = [(9, "2024-01-03", "app"), (10, "2024-01-01", "app"), (7, "2024-01-01", None), (9, "2024-01-01", "store"),
            (10, "2024-01-02", None), (8, "2024-01-01", "store"), (9, "2024-01-02", "online"), (10, "2024-01-05", "app"),
            (7, "2024-01-02", None), (8, "2024-02-01", "store")]
    pref = T.channel_preference(_orders(rows))
    assert list(pref.index) == ["10", "7", "8", "9"] and pref.name == "channel_preference"
    assert pref.to_dict() == {"10": "app only", "7": "unknown", "8": "store only", "9": "omnichannel"}


def test_purchase_cadence_bands_and_boundaries():
    day = pd.Timestamp("2024-01-01")
    rows = [("a", day), ("a", day + pd.Timedelta(days=10)), ("a", day + pd.Timedelta(days=30)), ("a", day + pd.Timedelta(days=70)),  # 10, 20, 40
            ("b", day),                                                                                                      # one purchase
            ("c", day), ("c", day + pd.Timedelta(days=100)), ("c", day + pd.Timedelta(days=300)),                             # 100, 200
            ("d", day), ("d", day + pd.Timedelta(days=30)),                                                                  # exactly 30
            ("e", day), ("e", day + pd.Timedelta(days=31))]                                                                  # 31
    orders = pd.DataFrame(rows, columns=["customer_id", "order_date"])
    cad = T.purchase_cadence(orders, "2025-06-01", (30, 90, 180)).set_index("customer_id")
    assert cad["purchase_cadence"].to_dict() == {"a": "<= 30 days", "b": "one purchase", "c": "91-180 days", "d": "<= 30 days", "e": "31-90 days"}
    assert cad.loc["a", "cadence_days"] == 20 and cad.loc["c", "cadence_days"] == 150 and np.isnan(cad.loc["b", "cadence_days"])


def test_discount_sensitivity_share_of_spend():
    lines = pd.DataFrame({"customer_id": ["1", "1", "1", "2", "3"], "amount": [100.0, 100.0, 200.0, 50.0, 70.0],
                          "discount": [10.0, 0.0, None, 5.0, 0.0]})
    d = T.discount_sensitivity(lines, (0.2, 0.5)).set_index("customer_id")
    assert d["discount_share"].to_dict() == {"1": 0.25, "2": 1.0, "3": 0.0}
    assert d["discount_sensitivity"].to_dict() == {"1": "medium", "2": "high", "3": "low"}


def test_weekday_weekend():
    # 2024-06-01 is a Saturday
    orders = _orders([("1", "2024-06-01"), ("1", "2024-06-02"), ("1", "2024-06-03"), ("2", "2024-06-03"), ("2", "2024-06-04")])
    w = T.weekday_weekend(orders, "2025-01-01", 0.5).set_index("customer_id")
    assert w.loc["1", "weekend_share"] == pytest.approx(2 / 3) and w["weekday_weekend"].to_dict() == {"1": "weekend", "2": "weekday"}


def test_return_behaviour():
    orders = pd.DataFrame({"customer_id": ["1", "1", "2"], "gross_amount": [60.0, 40.0, 200.0], "returned_amount": [-30.0, 0.0, -10.0]})
    r = T.return_behaviour(orders, 0.2).set_index("customer_id")
    assert r["return_share"].to_dict() == {"1": 0.3, "2": 0.05}
    assert r["return_behaviour"].to_dict() == {"1": "high return", "2": "low return"}


def test_bands_lower_bound_inclusive():
    assert T.band_labels([25, 35, 45, 55]) == ["<25", "25-34", "35-44", "45-54", "55+"]
    got = T.band(pd.Series([24.9, 25, 34.99, 55, None]), [25, 35, 45, 55]).tolist()
    assert got[:4] == ["<25", "25-34", "25-34", "55+"] and pd.isna(got[4])


def _tgi_case():
    """40 customers: group A has 10 (6 tagged x), the other 30 have 6 tagged x."""
    ids = [f"c{i}" for i in range(40)]
    tags = pd.DataFrame({"customer_id": ids, "tag_group": "g", "tag": ["x" if (i < 6 or 10 <= i < 16) else "y" for i in range(40)]})
    groups = pd.Series(["A"] * 10 + ["B"] * 30, index=ids)
    return tags, groups


def test_tgi_and_its_test_hand_computed():
    tags, groups = _tgi_case()
    t = T.tgi_table(tags, groups, min_n=1, correction="bonferroni").set_index(["group", "tag"])
    row = t.loc[("A", "x")]
    # share 6/10 = 0.6 against 12/40 = 0.3: TGI 200. Pooled z: se = sqrt(.3 x .7 x (1/10 + 1/30)) = 0.167332,
    # z = (0.6 - 0.2) / se = 2.39046, p = 0.016827
    assert (row["n_group"], row["n_tag_group"], row["n_all"], row["n_tag_all"]) == (10, 6, 40, 12)
    assert row["tgi"] == pytest.approx(200.0) and row["p_value"] == pytest.approx(0.016827, abs=1e-6)
    from statsmodels.stats.proportion import proportions_ztest

    assert row["p_value"] == pytest.approx(proportions_ztest([6, 6], [10, 30])[1], rel=1e-9)
    assert t.loc[("B", "x"), "tgi"] == pytest.approx(100 * (6 / 30) / 0.3)
    # four tests (A and B x two tags), Bonferroni: 4 x p, capped at 1
    assert row["p_adjusted"] == pytest.approx(min(1.0, 4 * row["p_value"]))
    top = T.distinctive(t.reset_index(), "A", alpha=0.1)
    assert top["tag"].tolist() == ["x"]


def test_tgi_small_tags_are_not_tested():
    tags, groups = _tgi_case()
    t = T.tgi_table(tags, groups, min_n=7).set_index(["group", "tag"])
    # A x: 6 customers < 7 and 10 x 0.3 = 3 expected < 7: small; B x: 6 < 7 but 30 x 0.3 = 9 expected: tested
    assert bool(t.loc[("A", "x"), "small"]) and np.isnan(t.loc[("A", "x"), "p_value"])
    assert not bool(t.loc[("B", "x"), "small"]) and t.loc[("B", "x"), "p_value"] > 0
    assert T.distinctive(t.reset_index(), "A", alpha=1.0).empty


def test_tgi_shares_among_customers_with_a_tag_in_the_group():
    # a customer without a region is not counted in the region shares
    tags = pd.DataFrame({"customer_id": ["1", "2", "3"], "tag_group": "region", "tag": ["华东", "华东", "华南"]})
    groups = pd.Series({"1": "VIP", "2": "Regular", "3": "Regular", "4": "VIP"})
    t = T.tgi_table(tags, groups, min_n=1).set_index(["group", "tag"])
    assert t.loc[("VIP", "华东"), "n_group"] == 1 and t.loc[("VIP", "华东"), "share_group"] == 1.0
    assert t.loc[("VIP", "华东"), "tgi"] == pytest.approx(100 * 1.0 / (2 / 3))
    assert t.loc[("VIP", "华南"), "n_tag_group"] == 0  # a tag the group has none of is still a row


def test_tgi_from_one_encoding_with_a_tag_group_skipped_equals_the_filtered_table():
    # the profile encodes its long table once for three TGI tables and leaves the lifecycle stage out of the lifecycle one
    tags = pd.DataFrame({"customer_id": ["1", "2", "3", "1", "2", "3", "4"], "tag_group": ["region"] * 3 + ["stage"] * 4,
                         "tag": ["华东", "华东", "华南", "new", "lapsed", "new", "new"]})
    groups = pd.Series({"1": "VIP", "2": "Regular", "3": "Regular", "4": None, "5": "VIP"})
    encoded = T.encode_tags(tags)
    pd.testing.assert_frame_equal(T.tgi_table(tags, groups, min_n=1, encoded=encoded, skip=("stage",)),
                                  T.tgi_table(tags[tags["tag_group"] != "stage"], groups, min_n=1))
    t = T.tgi_table(tags, groups, min_n=1, encoded=encoded).set_index(["group", "tag_group", "tag"])
    # customer 4 has no group but counts in the shares of all customers: 3 of the 4 with a stage are new
    assert t.loc[("Regular", "stage", "new"), "n_tag_group"] == 1 and t.loc[("Regular", "stage", "new"), "share_all"] == 0.75
    assert set(t.index.get_level_values("group")) == {"VIP", "Regular"}


def test_labels_in_the_report_language_leave_data_and_english_alone():
    from tierbook import i18n

    tags = ["lapsing", "<= 30 days", "31-90 days", "> 180 days", "online only", "omnichannel", "high return", "华东", "25-34"]
    assert [T.label(t) for t in tags] == tags  # English: the tags themselves
    try:
        i18n.set_lang("zh")
        assert [T.label(t) for t in tags] == ["流失预警", "≤30 天", "31-90 天", ">180 天", "仅online", "全渠道", "高退货", "华东", "25-34"]
        assert T.label("Hangzhou only", "region") == "Hangzhou only"  # a data value that happens to end in "only"
        assert T.labelled("地区", "华东") == "地区：华东"
    finally:
        i18n.set_lang("en")
    assert T.labelled("region", "华东") == "region: 华东"
