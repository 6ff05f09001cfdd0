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


def _stage_flow_as_before(before, now):
    rows = before.reindex(now.index).astype(object).fillna(T.NOT_YET)
    table = pd.crosstab(pd.Categorical(rows, categories=[*T.STAGES, T.NOT_YET]), pd.Categorical(now.astype(object), categories=list(T.STAGES)),
                        dropna=False)
    table.index.name, table.columns.name = "stage_before", "stage_now"
    return table.loc[(table.sum(axis=1) > 0)]


def test_stage_flow_from_codes_is_the_reindexed_crosstab():
    rng = np.random.default_rng(5)
    ids = np.array([f"C{i:04d}" for i in range(2000)], dtype=object)
    now = pd.Series(rng.choice(list(T.STAGES), 2000), index=pd.Index(ids), dtype=object)
    earlier = rng.permutation(ids)[:1500].tolist() + ["gone 1", "gone 2"]  # customers of before no longer among now's
    for categories in (list(T.STAGES), ["lapsed", "new", "active", "lapsing", "reactivated"], ["new", "active", "odd"]):
        values = rng.choice(categories, len(earlier)).astype(object)
        values[::7] = None  # a missing stage: not yet a customer
        before = pd.Series(pd.Categorical(values, categories=categories), index=pd.Index(earlier))
        pd.testing.assert_frame_equal(T.stage_flow(before, now), _stage_flow_as_before(before, now), check_exact=True)
        pd.testing.assert_frame_equal(T.stage_flow(before.astype(object), now), _stage_flow_as_before(before, now), check_exact=True)
    twice = pd.Series(pd.Categorical(["new", "active"]), index=pd.Index(["C0001", "C0001"]))
    with pytest.raises(ValueError):
        T.stage_flow(twice, now)


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


def test_channel_preference_of_channels_read_as_a_dictionary_is_the_one_of_text():
    rows = [(9, "2024-01-03", "app"), (10, "2024-01-01", "app"), (7, "2024-01-01", None), (9, "2024-01-01", "store"),
            (10, "2024-01-02", None), (8, "2024-01-01", "store"), (9, "2024-01-02", "online"), (10, "2024-01-05", "app"),
            (7, "2024-01-02", None), (8, "2024-02-01", "store"), (11, "2024-02-01", "online")]
    orders = _orders(rows)
    as_dictionary = orders.assign(channel=pd.Categorical(orders["channel"], categories=["store", "unused", "online", "app"]))
    pd.testing.assert_series_equal(T.channel_preference(as_dictionary), T.channel_preference(orders), check_exact=True)
    assert T.channel_preference(as_dictionary).to_dict() == {"10": "app only", "11": "online only", "7": "unknown", "8": "store only",
                                                             "9": "omnichannel"}


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


# --------------------------------------------------------------------------- the integer-coded paths against the plain pandas ones
# (the profile counts and writes 13M tags of 1M customers from codes; each path must give what the string operations gave)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TAG_VALUES = ["a", "b", "华东", "x,y", 'say "hi"', None, np.nan, pd.NA, 1, 1.0, "1", True]


def _long_by_strings(wide, groups):
    """The long table as it was made from Python strings (before the coded table)."""
    parts = [pd.DataFrame({"customer_id": wide["customer_id"], "tag_group": g, "tag": wide[g].astype(object)}).dropna(subset=["tag"])
             for g in groups if g in wide]
    if not parts:
        return pd.DataFrame(columns=["customer_id", "tag_group", "tag"])
    out = pd.concat(parts, ignore_index=True)
    out["tag"] = out["tag"].astype(str)
    return out


@pytest.mark.parametrize("sort", [False, True])
@pytest.mark.parametrize("values", [
    pd.Series(["美妆", "服装", "美妆", "食品", "家居"], dtype="string[pyarrow]"),
    pd.Series(["b", "a", "b", "c"], dtype=object),
    pd.Series([1, "1", 1.0, 2, "a"], dtype=object),  # one value to factorize, two texts
    pd.Series(["b", None, "a"], dtype="string[pyarrow]"),  # a missing value is the text "<NA>"
    pd.Series(["b", None, "a"], dtype=object),  # ... and "None" here
    pd.Series([], dtype="string[pyarrow]"),
    # categoricals (a text column read as a dictionary): categories in another order than they appear, one unused
    pd.Series(pd.Categorical(["store", "online", "store", "app", "online"], categories=["unused", "store", "app", "online"])),
    pd.Series(pd.Categorical(["b", None, "a"])),  # a missing value ("nan") takes the plain way
    pd.Series(pd.Categorical([1, 2, 1])),  # categories that are not text too
    pd.Series(pd.Categorical([], categories=["a"])),
])
def test_text_codes_are_the_factorized_texts(values, sort):
    codes, texts = T.text_codes(values, sort=sort)
    want_codes, want_texts = pd.factorize(values.astype(str).to_numpy(), sort=sort)
    assert codes.tolist() == want_codes.tolist() and list(texts) == list(want_texts)


def test_coded_long_table_equals_the_string_one_with_awkward_values():
    wide = pd.DataFrame({
        "customer_id": ["9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20"],
        "mixed": TAG_VALUES,
        "text": ["a", None, "b", "a", np.nan, "c", "a", "b", None, "c", "a", "a"],
        "nothing": [None] * 12,
        "stage": pd.Categorical(["new", "active"] * 6),
        "arrow": pd.Series(["x", None, "y"] * 4, dtype="string[pyarrow]"),
    })
    groups = ["text", "mixed", "absent", "nothing", "stage", "arrow"]
    coded = T.coded_tags(wide, groups)
    pd.testing.assert_frame_equal(coded.frame(), _long_by_strings(wide, groups))
    pd.testing.assert_frame_equal(T.long_tags(wide, ["absent"]), _long_by_strings(wide, ["absent"]))
    arrow_ids = wide.assign(customer_id=wide["customer_id"].astype("string[pyarrow]"))
    pd.testing.assert_frame_equal(T.long_tags(arrow_ids, groups), _long_by_strings(arrow_ids, groups))


wide_tables = st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.lists(st.sampled_from([f"c{i}" for i in range(14)]), min_size=n, max_size=n),  # ids may repeat
    st.lists(st.lists(st.sampled_from(TAG_VALUES), min_size=n, max_size=n), min_size=1, max_size=3),
    st.dictionaries(st.sampled_from([f"c{i}" for i in range(16)]), st.sampled_from(["VIP", "Regular", None])),
    st.lists(st.sampled_from(["g0", "g1", "g2"]), max_size=2),
))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(wide_tables)
def test_tgi_counted_from_codes_equals_tgi_from_the_long_table(case):
    ids, columns, groups, skip = case
    wide = pd.DataFrame({"customer_id": ids, **{f"g{i}": pd.Series(c, dtype=object) for i, c in enumerate(columns)}})
    names = [f"g{i}" for i in range(len(columns))]
    coded = T.coded_tags(wide, names)
    long = coded.frame()
    pd.testing.assert_frame_equal(long, _long_by_strings(wide, names))
    by = pd.Series(groups, dtype=object) if groups else pd.Series([], dtype=object)
    want = T.tgi_table(long, by, min_n=1, encoded=T.encode_tags(long), skip=tuple(skip))
    got = T.tgi_table(long, by, min_n=1, encoded=coded, skip=tuple(skip))
    pd.testing.assert_frame_equal(got, want)
    if len(set(ids)) == len(ids):  # the profile's case: the groups are the coded customers, in their order
        same = pd.Series(np.resize(np.array(["VIP", "Regular", None], dtype=object), len(ids)), index=ids)
        pd.testing.assert_frame_equal(T.tgi_table(long, same, min_n=1, encoded=coded), T.tgi_table(long, same, min_n=1))


def test_tgi_from_codes_with_a_tag_group_twice_counts_as_the_long_table():
    wide = pd.DataFrame({"customer_id": ["1", "2", "3"], "g": ["a", "b", "a"], "h": ["a", None, "c"]})
    coded = T.coded_tags(wide, ["g", "h"])
    coded.groups = ["g", "g"]  # two columns, one tag group: pairs merge in the long table
    long = coded.frame()
    groups = pd.Series({"1": "A", "2": "A", "3": "B"})
    pd.testing.assert_frame_equal(T.tgi_table(long, groups, min_n=1, encoded=coded), T.tgi_table(long, groups, min_n=1))


def test_sums_by_key_are_pandas_grouped_sums_bit_for_bit():
    rng = np.random.default_rng(7)
    n = 20_000
    key = rng.integers(0, 3_000, n) * 5 + rng.integers(0, 5, n)
    # magnitudes 1e-3 .. 1e16 and signs mixed: a sum in another order or without compensation differs in the last bits
    values = rng.choice([1e16, -1e16, 1.0, 0.1, 3.3, 1e-3, 7e12], n) * rng.random(n)
    frame = pd.DataFrame({"a": values, "b": values[::-1].copy()})
    want = frame.groupby(key, sort=True).sum()
    got = T.sums_by_key(frame, key, 15_000)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_index_type=False)
    assert np.array_equal(got.index.to_numpy(), want.index.to_numpy())
    with_missing = pd.Series(np.where(rng.random(n) < 0.9, np.nan, values))
    pd.testing.assert_series_equal(T.sums_by_key(with_missing, key, 15_000, min_count=1), with_missing.groupby(key, sort=True).sum(min_count=1),
                                   check_exact=True, check_index_type=False)
    sparse = np.array([5, 10**9, 5])  # keys spread far wider than the rows: the plain groupby
    pd.testing.assert_series_equal(T.sums_by_key(pd.Series([1.0, 2.0, 3.0]), sparse, 10**9 + 1), pd.Series([4.0, 2.0], index=[5, 10**9]))
    assert T.sums_by_key(pd.Series([], dtype=float), np.array([], dtype=np.int64), 0).empty


def _old_cadence(orders, at, edges):
    from tierbook.summary import purchase_days

    code, day, ids = purchase_days(orders, pd.Timestamp(at).normalize())
    same = np.r_[False, code[1:] == code[:-1]]
    customers = code[T._starts(code)]
    return pd.Series((day - np.r_[day[:1], day[:-1]])[same]).groupby(code[same]).median().reindex(customers)


def test_purchase_cadence_medians_are_the_grouped_medians():
    rng = np.random.default_rng(3)
    n = 5_000
    orders = pd.DataFrame({"customer_id": rng.integers(0, 800, n).astype(str),
                           "order_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")})
    got = T.purchase_cadence(orders, "2025-01-01")
    assert np.array_equal(got["cadence_days"].to_numpy(), _old_cadence(orders, "2025-01-01", (30, 90, 180)).to_numpy(), equal_nan=True)
    assert got["cadence_days"].isna().any() and (got["cadence_days"] % 1 == 0.5).any()  # one-time buyers and even counts both seen


def _old_favourite(lines):
    from tierbook.summary import customer_codes

    lines = lines[lines["category"].notna() & (lines["amount"] > 0)]
    codes, ids = customer_codes(lines["customer_id"])
    category, categories = pd.factorize(lines["category"].astype(str), sort=True)
    n = max(len(categories), 1)
    spend = pd.Series(lines["amount"].to_numpy(float)).groupby(codes * n + category, sort=True).sum()
    customer, pick = np.divmod(spend.index.to_numpy(), n)
    amount = spend.to_numpy()
    share = amount / pd.Series(amount).groupby(customer).transform("sum").to_numpy()
    order = np.lexsort((pick, -amount, customer))
    first = order[np.r_[True, customer[order][1:] != customer[order][:-1]]] if len(order) else order
    return pd.DataFrame({"customer_id": ids[customer[first]], "favourite_category": np.asarray(categories, dtype=object)[pick[first]],
                         "share": share[first]})


@pytest.mark.parametrize("dtype", ["string[pyarrow]", object, "category"])  # category: the lines' category read as a dictionary
def test_favourite_category_equals_the_sorted_groupby_with_ties(dtype):
    rng = np.random.default_rng(11)
    n = 6_000
    lines = pd.DataFrame({"customer_id": pd.Categorical(rng.integers(0, 900, n).astype(str)),
                          "category": pd.Series(rng.choice(["美妆", "服装", "食品", "家居", None], n), dtype=dtype),
                          "amount": rng.choice([10.0, 20.0, 30.0, -5.0, 0.1], n)})  # few amounts: many ties
    pd.testing.assert_frame_equal(T.favourite_category(lines), _old_favourite(lines), check_exact=True)


def test_rows_where_copies_only_when_rows_are_dropped():
    frame = pd.DataFrame({"a": [1, 2, 3]})
    assert T.rows_where(frame, frame["a"] > 0) is frame
    pd.testing.assert_frame_equal(T.rows_where(frame, frame["a"] > 1), frame[frame["a"] > 1])
    wide = frame.assign(b=[4.0, 5.0, 6.0])
    assert T.rows_where(wide, wide["a"] > 0, ["a"]) is wide  # every row kept: the frame itself, no column copied
    pd.testing.assert_frame_equal(T.rows_where(wide, wide["a"] > 1, ["b"]), pd.DataFrame({"b": [5.0, 6.0]}, index=[1, 2]))


def test_tgi_with_repeated_customers_in_the_groups_fails_from_codes_as_from_the_long_table():
    wide = pd.DataFrame({"customer_id": ["1", "1", "2"], "g": ["a", "b", "a"]})
    coded = T.coded_tags(wide, ["g"])
    groups = pd.Series(["A", "A", "B"], index=["1", "1", "2"])
    for encoded in (coded, T.encode_tags(coded.frame())):
        with pytest.raises(pd.errors.InvalidIndexError):
            T.tgi_table(coded.frame(), groups, encoded=encoded)


def _counts_by_groupby(long: pd.DataFrame) -> pd.DataFrame:
    return long.groupby("tag_group").agg(customers=("customer_id", "nunique"), tags=("tag", "nunique")).reset_index()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(wide_tables)
def test_tag_counts_from_codes_equal_the_groupby_of_the_long_table(case):
    """Customers and distinct tags per tag group: from the codes as the notebook's groupby of the long table gave them,
    also with repeated ids, groups without a tag and awkward values (numbers, NaN, text)."""
    ids, columns, _groups, _skip = case
    wide = pd.DataFrame({"customer_id": ids, **{f"g{i}": pd.Series(c, dtype=object) for i, c in enumerate(columns)}})
    names = [f"g{i}" for i in range(len(columns))][::-1]  # listed out of order: the counts are sorted by group
    coded = T.coded_tags(wide, names)
    pd.testing.assert_frame_equal(coded.counts(), _counts_by_groupby(coded.frame()), check_dtype=False)
    assert coded.counts()["customers"].dtype == np.int64


def test_tag_counts_by_hand():
    wide = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "region": ["华东", None, "华东", "华南"],
                         "cadence": ["weekly", "weekly", None, None], "nothing": [None] * 4})
    counts = T.coded_tags(wide, ["region", "cadence", "nothing"]).counts()
    assert counts.to_dict("list") == {"tag_group": ["cadence", "region"], "customers": [2, 3], "tags": [1, 2]}
