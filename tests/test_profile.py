"""The profile section on the demo (planted differences recovered) and on Online Retail."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.conftest import demo_files, params_and_run_dir

SIZE = 6000


@pytest.fixture(scope="module")
def demo_profile(tmp_path_factory):
    from tierbook.data import run_data_stage
    from tierbook.profile import run_profile_stage
    from tierbook.segmentation import run_rfm_stage

    root = tmp_path_factory.mktemp("profile")
    params, run, truth = demo_files(root, SIZE)
    run_data_stage(params, root, run, today=dt.date(2026, 1, 5))
    run_rfm_stage(params, run)
    return run_profile_stage(params, run), params, run, truth


def _rows(tgi, group, tag_group):
    return tgi[(tgi["group"] == group) & (tgi["tag_group"] == tag_group)].set_index("tag")


def test_planted_vip_differences_are_the_top_tags_of_their_groups(demo_profile):
    stage, params, _, truth = demo_profile
    tgi = stage.tgi["tier"]
    # planted: top-value customers live in 华东 with probability 0.60 instead of 0.34
    assert truth["profile"]["region_tilt"]["weights_top"]["华东"] == 0.6
    region = _rows(tgi, "VIP", "region")
    assert region["tgi"].idxmax() == "华东" and region.loc["华东", "tgi"] > 125 and region.loc["华东", "p_adjusted"] < 0.001
    assert (region.drop(index="华东")["tgi"] < 100).all()
    # emergent: VIPs buy often, so nearly all of them use both channels
    channel = _rows(tgi, "VIP", "channel_preference")
    assert channel.loc["omnichannel", "share_group"] > 0.85 and channel.loc["omnichannel", "p_adjusted"] < 1e-10
    # the VIP findings name both, without the tags that follow from how tiers are made
    from tierbook.profile import findings, top_tags

    top = top_tags(stage, "tier", "VIP", None, params)
    assert {"华东", "omnichannel"} <= set(top["tag"])
    text = " ".join(findings(stage, params))
    assert "omnichannel" in text and "live in 华东" in text


def test_planted_category_skew_to_new_customers(demo_profile):
    from tierbook import tags as T

    stage, params, _, truth = demo_profile
    assert truth["profile"]["categories"]["weights_first_order"]["美妆"] == 0.45
    # a one-time buyer's favourite category is the category of their first order
    cadence = stage.customers.set_index("customer_id")["purchase_cadence"]
    table = T.tgi_table(stage.tags[stage.tags["tag_group"] == "favourite_category"], cadence.where(cadence == "one purchase", "repeat"))
    one = table[table["group"] == "one purchase"].set_index("tag")
    assert one["tgi"].idxmax() == "美妆" and one.loc["美妆", "tgi"] > 150 and one.loc["美妆", "p_adjusted"] < 1e-10
    # and so the Potential tier, full of one-time buyers, leans to 美妆
    potential = _rows(stage.tgi["tier"], "Potential", "favourite_category")
    assert potential["tgi"].idxmax() == "美妆" and potential.loc["美妆", "p_adjusted"] < 0.001


def test_unplanted_attribute_is_not_distinctive(demo_profile):
    stage, *_ = demo_profile
    gender = stage.tgi["tier"][stage.tgi["tier"]["tag_group"] == "gender"]
    assert len(gender) == 6 and (gender["p_adjusted"] > 0.05).all()  # gender is drawn independently of everything


def test_every_customer_has_exactly_one_lifecycle_stage(demo_profile):
    stage, *_ = demo_profile
    c = stage.customers
    assert c["customer_id"].is_unique and c["lifecycle_stage"].notna().all()
    assert set(c["lifecycle_stage"]) <= {"new", "active", "reactivated", "lapsing", "lapsed"}
    assert stage.stages["customers"].sum() == len(c)
    lifecycle = stage.tags[stage.tags["tag_group"] == "lifecycle_stage"]
    assert lifecycle["customer_id"].is_unique and len(lifecycle) == len(c)


def test_lapsed_matches_the_churn_rule(demo_profile):
    from tierbook.churn import churn_days
    from tierbook.data import load_clean
    from tierbook.summary import customer_summary

    stage, params, run, _ = demo_profile
    orders = load_clean(run, "orders")
    days, _ = churn_days(orders, stage.as_of, params)
    summary = customer_summary(orders, stage.as_of).assign(customer_id=lambda f: f["customer_id"].astype(str)).set_index("customer_id")
    churned = summary["recency_days"] > days
    lapsed = stage.customers.set_index("customer_id")["lifecycle_stage"] == "lapsed"
    new = stage.customers.set_index("customer_id")["lifecycle_stage"] == "new"
    assert stage.churn_days == days
    assert ((churned.reindex(lapsed.index)) == lapsed | (new & churned.reindex(lapsed.index))).all()


def test_profit_shares_use_the_cost_column(demo_profile):
    stage, *_ = demo_profile
    cards = stage.cards["tier"].set_index("group")
    assert cards["profit_share"].sum() == pytest.approx(1.0) and cards["revenue_share"].sum() == pytest.approx(1.0)
    # category margins are .12 to .65: each tier's gross margin lies between them
    assert cards["margin"].between(0.12, 0.65).all()


def test_customer_tags_csv_opens_in_excel_and_has_no_pii(demo_profile):
    stage, params, run, _ = demo_profile
    raw = (run / "customer_tags.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel shows Chinese
    tags = pd.read_csv(run / "customer_tags.csv", encoding="utf-8-sig", dtype=str)
    assert list(tags.columns) == ["customer_id", "tag_group", "tag"]
    assert {"tier", "rfm_segment", "named_segment", "lifecycle_stage", "region", "favourite_category"} <= set(tags["tag_group"])
    assert not {"name", "phone", "email", "address", "id_number", "birth_date"} & set(tags["tag_group"])
    members = pd.read_excel(params.data_dir(run.parent) / "members.xlsx", dtype=str)
    text = raw.decode("utf-8-sig")
    for column in ("手机号", "邮箱"):
        assert not any(value in text for value in members[column].dropna().head(500))
    assert not any(f",{name}\n" in text or f",{name}\r\n" in text for name in members["姓名"].dropna().head(500))
    # the section's columns wait in profile_scores.parquet; the summary section joins them into customer_scores and the CRM files
    from tierbook.profile import CRM_COLUMNS, export_scores

    columns = ["lifecycle_stage", "favourite_category", "channel_preference", "purchase_cadence", "discount_sensitivity",
               "weekday_weekend", "return_behaviour"]
    assert columns == CRM_COLUMNS
    assert not set(columns) & set(pd.read_parquet(run / "data" / "customer_scores.parquet").columns)
    export_scores(params, run)
    scores = pd.read_parquet(run / "data" / "customer_scores.parquet")
    assert len(scores) == len(stage.customers) and scores.columns.tolist()[-len(columns):] == columns
    expected = stage.customers.set_index("customer_id")[columns].reindex(scores["customer_id"])
    pd.testing.assert_frame_equal(scores.set_index("customer_id")[columns], expected, check_names=False)
    exported = pd.read_csv(run / "customer_scores.csv", encoding="utf-8-sig", dtype=str)
    assert exported.columns.tolist() == scores.columns.tolist() and exported["lifecycle_stage"].tolist() == scores["lifecycle_stage"].tolist()


def test_over_segmentation_guard_and_merge(demo_profile, tmp_path):
    from tierbook.errors import TierbookError
    from tierbook.profile import apply_merges, small_groups

    stage, *_ = demo_profile
    counts = stage.customers["segment_zh"].value_counts()
    small = small_groups(stage.customers, int(counts.min()) + 1, {})
    assert counts.idxmin() in set(small["group"])
    frame = stage.customers[["tier", "segment_zh", "named_segment"]].copy()
    smallest, neighbour = counts.idxmin(), counts.idxmax()
    assert apply_merges(frame, {smallest: neighbour}) == {smallest: neighbour}
    assert (frame["segment_zh"] == neighbour).sum() == counts[smallest] + counts[neighbour]
    with pytest.raises(TierbookError, match="profile.merge: no tier or segment is named 'nope'"):
        apply_merges(frame, {"nope": neighbour})


ONLINE_RETAIL = """
currency: GBP
paths:
  data_root: {data}   # the shared datasets sit outside the project
sources:
  transactions:
    - name: online_retail
      path: {data}/online_retail.csv.gz
      columns:
        InvoiceNo: order_id
        StockCode: product_id
        Quantity: quantity
        InvoiceDate: order_date
        UnitPrice: unit_price
        CustomerID: customer_id
        Country: region
      date_format: "%Y-%m-%d %H:%M:%S"
      returns:
        - {{column: order_id, startswith: "C"}}
"""


@pytest.mark.realdata
def test_online_retail_with_country_as_region(shared_data, tmp_path):
    from tierbook.data import load_clean, run_data_stage
    from tierbook.profile import run_profile_stage
    from tierbook.segmentation import run_rfm_stage

    params, run = params_and_run_dir(tmp_path, "online_retail", ONLINE_RETAIL.format(data=shared_data / "online_retail"))
    run_data_stage(params, tmp_path, run, today=dt.date(2026, 11, 1))
    run_rfm_stage(params, run)
    stage = run_profile_stage(params, run)
    assert stage.attributes == ["region"] and stage.behaviour[:1] == ["channel_preference"]
    # each customer's region is the Country on most of their kept lines (independently recomputed)
    lines = load_clean(run, "transactions")
    lines = lines[lines["order_date"] < stage.as_of]
    counts = lines.groupby([lines["customer_id"].astype(str), "region"]).size().rename("n").reset_index()
    expected = counts.sort_values(["customer_id", "n", "region"], ascending=[True, False, True]).drop_duplicates("customer_id")
    got = stage.customers.set_index("customer_id")["region"]
    assert (got.reindex(expected["customer_id"]).to_numpy() == expected["region"].to_numpy()).all()
    uk = (got == "United Kingdom").mean()
    assert 0.85 < uk < 0.95  # about nine in ten Online Retail customers buy from the UK
    tgi = stage.tgi["tier"]
    vip = tgi[(tgi["group"] == "VIP") & (tgi["tag_group"] == "region")].set_index("tag")
    assert vip.loc["United Kingdom", "n_group"] == (stage.customers["tier"] == "VIP").sum() - stage.customers.loc[
        stage.customers["tier"] == "VIP", "region"].isna().sum()
    assert np.isfinite(vip["tgi"]).all()


def test_findings_and_narrative_in_chinese_have_no_untranslated_sentence(demo_profile, tmp_path):
    from tierbook import i18n
    from tierbook.profile import findings, narrative

    stage, params, _, _ = demo_profile
    log = tmp_path / "missing.txt"
    try:
        i18n.set_lang("zh", {"VIP": "VIP客户"}, log)
        text = " ".join(findings(stage, params)) + narrative(stage, params)
    finally:
        i18n.set_lang("en")
    assert not log.exists(), log.read_text(encoding="utf-8")
    assert "**VIP客户**中全渠道购买（通过两个或以上渠道购买）的比例" in text and "VIP客户中有" in text and "位于华东" in text
    assert "属性标签：地区、" in text and "omnichannel" not in text


def _tags_csv_by_strings(parts, path):
    """customer_tags.csv as it was written: the long tables concatenated, sorted by customer id then tag group, pyarrow's writer."""
    from tierbook.crm import write_csv
    from tierbook.summary import customer_codes

    frame = pd.concat([part.frame() for part in parts], ignore_index=True)
    customer, _ids = customer_codes(frame["customer_id"])
    group, _groups = pd.factorize(frame["tag_group"], sort=True)
    write_csv(frame.take(np.lexsort((group, customer))), path)


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_customer_tags_written_from_codes_are_the_sorted_long_tables_byte_for_byte(tmp_path, batch):
    from tierbook import tags as T
    from tierbook.profile import write_customer_tags

    ids = ["9", "10", "C-2", "C-10", "王", "11"]  # text order: "10" < "11" < "9"
    customers = pd.DataFrame({"customer_id": ids, "region": ["华东", None, 'a "quoted", tag', "华南", np.nan, "x\ny"],
                              "tier": ["VIP", "VIP", None, "Regular", "Regular", "VIP"],  # also a group of the second part
                              "age_band": [None] * 6, "lifecycle_stage": ["new", "lapsed", "active", "new", "active", "lapsing"]})
    scores = pd.DataFrame({"customer_id": ids, "tier": ["VIP", "VIP", "Regular", "Regular", "Regular", None],
                           "rfm_segment": ["重要价值客户"] * 6, "named_segment": ["Champions", None, "Lost", "Lost", "At Risk", "Lost"]})
    parts = [T.coded_tags(customers, ["region", "tier", "age_band", "lifecycle_stage"]),
             T.coded_tags(scores, ["tier", "rfm_segment", "named_segment"])]
    write_customer_tags(parts, tmp_path / "got.csv", customers_per_batch=batch)
    _tags_csv_by_strings(parts, tmp_path / "want.csv")
    assert (tmp_path / "got.csv").read_bytes() == (tmp_path / "want.csv").read_bytes()
    assert not (tmp_path / "got.csv.tmp").exists()
    # ids that differ between the parts, or repeat: written the plain way, the same bytes
    other = T.coded_tags(scores.assign(customer_id=ids[::-1]), ["tier"])
    twice = T.coded_tags(customers.assign(customer_id=["9", "9", "1", "2", "3", "4"]), ["region"])
    for case in ([parts[0], other], [twice]):
        write_customer_tags(case, tmp_path / "got.csv")
        _tags_csv_by_strings(case, tmp_path / "want.csv")
        assert (tmp_path / "got.csv").read_bytes() == (tmp_path / "want.csv").read_bytes()


def test_customer_tags_without_any_tag_have_the_header_only(tmp_path):
    from tierbook import tags as T
    from tierbook.profile import write_customer_tags

    empty = pd.DataFrame({"customer_id": ["1", "2"], "region": [None, None]})
    for groups in (["region"], []):
        parts = [T.coded_tags(empty, groups)]
        write_customer_tags(parts, tmp_path / "got.csv")
        _tags_csv_by_strings(parts, tmp_path / "want.csv")
        assert (tmp_path / "got.csv").read_bytes() == (tmp_path / "want.csv").read_bytes() == b'\xef\xbb\xbf"customer_id","tag_group","tag"\n'


def test_aligned_is_reindex():
    from tierbook.profile import _aligned

    key = pd.Index(["c", "a", "b"])
    table = pd.DataFrame({"n": [1, 2, 3, 4], "s": ["x", None, "z", "w"], "flag": [True, False, True, True]}, index=["a", "b", "c", "extra"])
    for frame in (table, table.drop(index="a"), table.iloc[:3], table["n"]):
        pd.testing.assert_frame_equal(pd.DataFrame(_aligned(frame, key)), pd.DataFrame(frame.reindex(key)))
    assert _aligned(table, key)["n"].dtype == np.int64 and _aligned(table.drop(index="a"), key)["n"].dtype == float  # a missing customer: NaN


def test_attribute_text_becomes_objects_as_astype_object_where():
    from tierbook.profile import _objects

    for values in (pd.Series(["华东", None, "华南", "华东"], dtype="string[pyarrow]"), pd.Series(["a", np.nan, None], dtype=object),
                   pd.Series([1.5, np.nan]), pd.Series(pd.to_datetime(["2024-01-01", None]))):
        want = values.astype(object).where(values.notna(), None).to_numpy()
        got = _objects(values)
        assert got.dtype == object and [type(v) for v in got] == [type(v) for v in want] and list(got) == list(want)


def test_members_outside_counts_distinct_ids_not_among_the_customers():
    from tierbook.profile import _members_outside

    key = pd.Index(["a", "b", "c"])
    for ids in (pd.Series(["a", "d", "d", "e", "b"], dtype="string[pyarrow]"), pd.Series(["a", None, "d"], dtype="string[pyarrow]"),
                pd.Series(["a", "x", 1], dtype=object), pd.Series([], dtype="string[pyarrow]"), pd.Series(["a", "b"], dtype="string[pyarrow]")):
        assert _members_outside(ids, key) == len(set(ids.astype(str)) - set(key))


def _profile_cards_as_before(customers, by, order, tags, has_profit):
    """profile_cards before 2026-12-02: each group's rows by comparing the column, each tag's top value by value_counts."""
    from tierbook.profile import _top

    total_rev = customers["revenue"].sum()
    total_profit = customers["profit"].sum() if has_profit else np.nan
    rows = []
    for group in order:
        g = customers[customers[by] == group]
        if g.empty:
            continue
        row = {"group": group, "customers": len(g), "customer_share": len(g) / len(customers),
               "revenue_share": g["revenue"].sum() / total_rev if total_rev else np.nan}
        if has_profit:
            row["profit_share"] = g["profit"].sum() / total_profit if total_profit else np.nan
            row["margin"] = g["profit"].sum() / g["gross"].sum() if g["gross"].sum() else np.nan
        for tag in tags:
            row[tag] = _top(g[tag])
        row["median_cadence_days"] = g["cadence_days"].median()
        row["median_tenure_days"] = g["tenure_days"].median()
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_profile_cards_from_codes_are_the_cards_of_before(seed):
    from tierbook.profile import profile_cards

    rng = np.random.default_rng(seed)
    n = 3000
    customers = pd.DataFrame({
        "tier": rng.choice(["VIP", "Regular", "Potential", None], n, p=[0.05, 0.45, 0.45, 0.05]),
        "revenue": np.round(rng.exponential(300, n), 2), "profit": np.round(rng.normal(50, 40, n), 2),
        "gross": np.round(rng.exponential(350, n), 2),
        "region": pd.array(rng.choice(["华东", "华南", "西北", None], n), dtype="string[pyarrow]"),
        "age_band": rng.choice(["<25", "25-34", 35, 35.0, None], n),  # numbers: tags are their texts ("35", "35.0")
        "channel_preference": rng.choice(["store only", "omnichannel"], n),  # two values: ties in small groups
        "lifecycle_stage": rng.choice(["new", "lapsed", np.nan], n),
        "cadence_days": np.where(rng.random(n) < 0.3, np.nan, rng.integers(1, 400, n).astype(float)),
        "tenure_days": rng.integers(0, 700, n),
    })
    tags = ["region", "age_band", "channel_preference", "lifecycle_stage"]
    order = ["VIP", "Regular", "Potential", "absent"]
    for has_profit in (True, False):
        pd.testing.assert_frame_equal(profile_cards(customers, "tier", order, tags, has_profit),
                                      _profile_cards_as_before(customers, "tier", order, tags, has_profit), check_exact=True)
    # groups of two and four customers: the top tag ties (value_counts decides), and a group without a tag at all
    small = customers.head(8).assign(tier=["a", "a", "b", "b", "b", "b", "c", "c"], channel_preference=["x", "y", "x", "y", "y", "x", "x", "x"],
                                     region=pd.array([None] * 6 + ["华东", "华东"], dtype="string[pyarrow]"))
    got = profile_cards(small, "tier", ["a", "b", "c"], tags, True)
    pd.testing.assert_frame_equal(got, _profile_cards_as_before(small, "tier", ["a", "b", "c"], tags, True), check_exact=True)
    assert got["region"].tolist() == ["", "", "华东 100%"]


def test_the_long_tag_table_is_the_one_of_the_customers(demo_profile):
    from tierbook import tags as T

    stage, *_ = demo_profile
    groups = [*stage.attributes, *stage.behaviour, "lifecycle_stage"]
    pd.testing.assert_frame_equal(stage.tags, T.long_tags(stage.customers, groups), check_exact=True)
    assert len(stage.tags) == sum(int(stage.customers[g].notna().sum()) for g in groups)


def test_gaps_from_the_purchase_days_are_the_churn_sections_gaps(demo_profile):
    from tierbook.churn import purchase_gaps
    from tierbook.data import load_clean
    from tierbook.profile import _gaps
    from tierbook.summary import purchase_days

    stage, params, run, _truth = demo_profile
    orders = load_clean(run, "orders", columns=["customer_id", "order_date"])
    for at in (stage.as_of, stage.base_date.normalize(), pd.Timestamp("2024-03-01")):
        gaps = _gaps(purchase_days(orders, at))
        assert gaps.dtype == np.int64 and len(gaps) > 0 and np.array_equal(gaps, purchase_gaps(orders, at))


def test_category_mix_of_categories_read_as_a_dictionary_is_the_one_of_text(tmp_path):
    from tierbook.profile import _read, category_mix

    rng = np.random.default_rng(4)
    n = 5000
    lines = pd.DataFrame({"customer_id": pd.Categorical(rng.integers(0, 400, n).astype(str)),
                          "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
                          "amount": np.round(rng.exponential(40, n), 2) - 3,
                          "category": pd.array(rng.choice(["美妆", "服装", "食品", "家居", None], n), dtype="string[pyarrow]")})
    tiers = pd.Series(rng.choice(["VIP", "Regular", "Potential"], 400), index=np.arange(400).astype(str))
    as_of = pd.Timestamp("2025-03-01")
    # the sale lines written and read back as the section reads them: the category as a dictionary
    (tmp_path / "data").mkdir()
    lines.to_parquet(tmp_path / "data" / "transactions.parquet", row_group_size=1200)
    read = _read(tmp_path, "transactions", ["customer_id", "order_date", "amount", "category", "margin"], categorical=("category",))
    assert isinstance(read["category"].dtype, pd.CategoricalDtype) and list(read.columns) == ["customer_id", "order_date", "amount", "category"]
    assert read["category"].astype(object).where(read["category"].notna(), None).tolist() == \
        lines["category"].astype(object).where(lines["category"].notna(), None).tolist()
    want = category_mix(lines, tiers, ["VIP", "Regular", "Potential"], as_of)
    pd.testing.assert_frame_equal(category_mix(read, tiers, ["VIP", "Regular", "Potential"], as_of), want, check_exact=True)
    # and the shares are the pivot table's
    kept = lines[(lines["order_date"] < as_of) & lines["category"].notna()]
    pivot = kept.assign(tier=tiers.reindex(kept["customer_id"].astype(str)).to_numpy(), category=kept["category"].astype(str)).pivot_table(
        index="tier", columns="category", values="amount", aggfunc="sum", fill_value=0.0).reindex(["VIP", "Regular", "Potential"])
    pivot = pivot[pivot.sum().sort_values(ascending=False).index]
    pd.testing.assert_frame_equal(want, pivot.div(pivot.sum(axis=1), axis=0), check_names=False, rtol=1e-12)
