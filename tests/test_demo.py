"""Tests of tierbook.demo: determinism, file formats, planted dirt and planted truths."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tierbook import demo

POS_COLUMNS = ["小票号", "会员卡号", "门店", "交易时间", "商品编码", "品类", "数量", "单价", "成本", "单据类型", "原小票号"]
ECOM_COLUMNS = ["order_id", "member_id", "order_time", "order_amount", "discount", "cost", "status", "platform", "category",
                "ref_order_id"]
MEMBER_COLUMNS = ["会员卡号", "姓名", "性别", "出生日期", "手机号", "邮箱", "注册日期", "地区", "注册渠道", "会员等级"]
SURVEY_COLUMNS = ["customer_id", "response_date", "nps", "csat", "comment", "item_delivery", "item_product", "item_service"]
EXPERIMENT_COLUMNS = ["customer_id", "variant", "assigned_date", "tier", "revenue_30d", "converted_30d"]
ALL_FILES = list(demo.EXPECTED_FILES) + ["TRUTH.json"]
BIG_SIZE, BIG_SEED = 20000, 20240101


# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo_small")
    return d, demo.generate(d, size=400, seed=7)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo_big")
    t0 = time.perf_counter()
    truth = demo.generate(d, size=BIG_SIZE, seed=BIG_SEED)
    return d, truth, time.perf_counter() - t0


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_pos(d: Path) -> pd.DataFrame:
    pos = pd.read_csv(d / "pos_transactions.csv", encoding="gbk", dtype=str, keep_default_na=False)
    pos["qty"] = pos["数量"].astype(int)
    pos["unit_c"] = pos["单价"].str.replace(".", "", regex=False).astype(np.int64)
    pos["cents"] = pos["qty"] * pos["unit_c"]
    pos["time"] = pd.to_datetime(pos["交易时间"], format="%Y/%m/%d %H:%M", errors="coerce")
    return pos


def read_ecom(d: Path) -> pd.DataFrame:
    ec = pd.read_csv(d / "ecommerce_orders.csv", encoding="utf-8", dtype=str, keep_default_na=False)
    digits = ec["order_amount"].str.replace(r"[¥,.]", "", regex=True)
    ec["cents"] = digits.astype(np.int64)  # "-" kept: "-12345"
    ec["time"] = pd.to_datetime(ec["order_time"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    return ec


def cents(x: float) -> int:
    return int(round(x * 100))


def cross_channel_matches(pos: pd.DataFrame, ec: pd.DataFrame) -> pd.DataFrame:
    """POS one-line member sale receipts equal to a paid e-com order: same member, minute, amount."""
    sales = pos[(pos["单据类型"] == "销售") & (pos["会员卡号"] != "")]
    one = sales[sales.groupby("小票号")["小票号"].transform("size") == 1]
    paid = ec[(ec["status"] == "paid") & (ec["cents"] > 0) & ec["time"].notna()].copy()
    paid["minute"] = paid["time"].dt.floor("min")
    return one.merge(paid, left_on=["会员卡号", "time", "cents"], right_on=["member_id", "minute", "cents"])


# ---------------------------------------------------------------------------------------------------
def test_files_written_and_truth_json(small):
    d, truth = small
    for f in ALL_FILES:
        assert (d / f).is_file(), f
    assert not list(d.glob("*.tmp"))
    stored = json.loads((d / "TRUTH.json").read_text(encoding="utf-8"))
    assert stored == truth
    text = (d / "TRUTH.json").read_text(encoding="utf-8")
    assert text == json.dumps(truth, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    assert "金卡会员" in text  # ensure_ascii=False
    assert truth["generator_version"] == demo.GENERATOR_VERSION
    assert (truth["size"], truth["seed"]) == (400, 7)
    assert truth["bgnbd"] == {"r": 0.75, "alpha": 6.0, "a": 0.8, "b": 4.0, "time_unit": "W"}
    assert truth["gamma_gamma"] == {"p": 6.0, "q": 4.0, "gamma": 150.0}
    assert truth["observation"]["start"] == "2024-01-01" and truth["observation"]["end"] == "2025-12-31"
    assert truth["n_customers"] == 400


def test_determinism(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    demo.generate(a, size=300, seed=11)
    demo.generate(b, size=300, seed=11)
    demo.generate(c, size=300, seed=12)
    for f in ALL_FILES:
        assert sha(a / f) == sha(b / f), f
    for f in ["pos_transactions.csv", "ecommerce_orders.csv", "members.xlsx", "survey.csv", "TRUTH.json"]:
        assert sha(a / f) != sha(c / f), f


def test_encodings_and_headers(small):
    d, _ = small
    raw = (d / "pos_transactions.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.decode("gbk").split("\n", 1)[0] == ",".join(POS_COLUMNS)
    ecom = (d / "ecommerce_orders.csv").read_bytes()
    assert not ecom.startswith(b"\xef\xbb\xbf")
    assert ecom.decode("utf-8").split("\n", 1)[0] == ",".join(ECOM_COLUMNS)
    survey = (d / "survey.csv").read_bytes()
    assert survey.startswith(b"\xef\xbb\xbf")
    assert survey.decode("utf-8-sig").split("\n", 1)[0] == ",".join(SURVEY_COLUMNS)
    exp = (d / "experiment.csv").read_bytes()
    assert not exp.startswith(b"\xef\xbb\xbf")
    assert exp.decode("utf-8").split("\n", 1)[0] == ",".join(EXPERIMENT_COLUMNS)


def test_members_xlsx(small):
    d, truth = small
    m = pd.read_excel(d / "members.xlsx", sheet_name="会员", dtype={"手机号": str})
    assert list(m.columns) == MEMBER_COLUMNS
    n_dup = truth["dirt"]["duplicate_member_rows"]
    assert n_dup == 2  # round(0.5 % of 400)
    assert len(m) == 400 + n_dup == truth["files"]["members.xlsx"]["rows"]
    assert m.duplicated().sum() == n_dup
    assert m["会员卡号"].nunique() == 400
    assert pd.api.types.is_datetime64_any_dtype(m["注册日期"])  # real Excel date cells
    assert m["手机号"].str.fullmatch(r"1[358]\d{9}").all()
    assert set(m["地区"]) <= {"华东", "华北", "华南", "华中", "西南", "西北", "东北"}
    assert set(m["注册渠道"]) <= {"门店", "App", "小程序", "官网"}
    u = m.drop_duplicates()
    tc = pd.read_parquet(d / "truth_customers.parquet").set_index("customer_id")
    u = u.set_index("会员卡号").loc[tc.index]
    assert (u["注册日期"] <= tc["first_order_date"]).all()
    assert (u["会员等级"] == tc["tier"]).all()
    assert u["会员等级"].value_counts().to_dict() == {k: v for k, v in truth["tiers"]["counts"].items() if v}


def test_pos_and_ecom_formats(small):
    d, _ = small
    pos, ec = read_pos(d), read_ecom(d)
    assert pos["小票号"].str.fullmatch(r"P\d{8}").all()
    assert pos["会员卡号"].str.fullmatch(r"(C\d{6})?").all()
    assert pos["商品编码"].str.fullmatch(r"SKU\d{5}").all()
    assert pos["单价"].str.fullmatch(r"\d+\.\d{2}").all()
    assert pos["交易时间"].str.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}").all()
    assert pos["time"].notna().all()
    assert 6 <= pos["门店"].nunique() <= 10 and pos["门店"].str.endswith("店").all()
    assert set(pos["单据类型"]) == {"销售", "退货"}
    ret = pos[pos["单据类型"] == "退货"]
    sale_receipts = set(pos.loc[pos["单据类型"] == "销售", "小票号"])
    assert (ret["qty"] < 0).all() and ret["原小票号"].isin(sale_receipts).all()
    assert (pos.loc[pos["单据类型"] == "销售", "原小票号"] == "").all()
    assert (pos.loc[pos["单据类型"] == "销售", "qty"] > 0).all()
    # receipts: one member, store and time per receipt
    assert (pos.groupby("小票号")[["会员卡号", "门店", "交易时间"]].nunique() == 1).all().all()

    assert ec["order_id"].str.fullmatch(r"E\d{9}").all() and ec["order_id"].is_unique
    assert ec["order_amount"].str.fullmatch(r"-?¥\d{1,3}(,\d{3})*\.\d{2}").all()
    assert set(ec["status"]) == {"paid", "refunded"}
    assert set(ec["platform"]) <= {"app", "web", "mini-program"}
    refunds = ec[ec["status"] == "refunded"]
    assert (refunds["cents"] < 0).all()
    assert refunds["ref_order_id"].isin(set(ec.loc[ec["status"] == "paid", "order_id"])).all()
    assert (ec.loc[ec["status"] == "paid", "ref_order_id"] == "").all()
    good = ec["time"].notna()
    assert ec.loc[good, "order_time"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()


def check_dirt_and_amounts(d: Path, truth: dict) -> None:
    pos, ec = read_pos(d), read_ecom(d)
    dirt, files = truth["dirt"], truth["files"]
    assert len(pos) == files["pos_transactions.csv"]["rows"]
    assert len(ec) == files["ecommerce_orders.csv"]["rows"]
    assert len(pd.read_csv(d / "survey.csv", encoding="utf-8-sig")) == files["survey.csv"]["rows"]
    assert len(pd.read_csv(d / "experiment.csv")) == files["experiment.csv"]["rows"]

    sale = pos["单据类型"] == "销售"
    assert (pos["会员卡号"] == "").sum() == dirt["missing_customer_id"] > 0
    assert (pos["单据类型"] == "退货").sum() == dirt["returns_pos"]
    assert (ec["status"] == "refunded").sum() == dirt["returns_ecom"]
    assert dirt["returns_pos"] + dirt["returns_ecom"] == dirt["returns"]
    assert pos["交易时间"].str.startswith("2031").sum() == dirt["future_dates"] == 4
    assert (pos["time"].dt.year == 2031).sum() == 4
    assert (pos["qty"] == 9999).sum() == dirt["outliers"] == 3
    assert ((pos["unit_c"] == 0) & sale).sum() == dirt["zero_amount_lines"] > 0
    assert pos.drop(columns=["time"]).duplicated().sum() == dirt["exact_duplicate_pos_lines"] > 0
    assert ((ec["status"] == "paid") & (ec["cents"] < 0)).sum() == dirt["negative_amount_not_return"] == 5
    assert ec["time"].isna().sum() == dirt["unparseable_dates"] == 3
    assert len(cross_channel_matches(pos, ec)) == dirt["cross_channel_duplicates"] > 0

    # amounts reconcile to the cent
    pa = {k: cents(v) for k, v in files["pos_transactions.csv"]["amounts"].items()}
    ea = {k: cents(v) for k, v in files["ecommerce_orders.csv"]["amounts"].items()}
    assert pos["cents"].sum() == pa.pop("total") == sum(pa.values())
    assert ec["cents"].sum() == ea.pop("total") == sum(ea.values())
    assert pa["true_sales"] + ea["true_sales"] == cents(truth["total_revenue"])
    assert -pos.loc[~sale, "cents"].sum() == cents(dirt["returns_pos_amount"]) == -pa["returns"]
    assert -ec.loc[ec["status"] == "refunded", "cents"].sum() == cents(dirt["returns_ecom_amount"])
    assert cents(dirt["returns_pos_amount"]) + cents(dirt["returns_ecom_amount"]) == cents(dirt["returns_amount"])
    assert pos.loc[pos["qty"] == 9999, "cents"].sum() == cents(dirt["outliers_amount"])
    assert pos.loc[pos["会员卡号"] == "", "cents"].sum() == cents(dirt["missing_customer_id_amount"])

    # fully returned orders (net <= 0), recounted from the files
    sale_tot = pos[sale].drop_duplicates().groupby("小票号")["cents"].sum()
    pos_ret = pos[~sale].groupby("原小票号")["cents"].sum()
    paid_tot = ec[ec["status"] == "paid"].set_index("order_id")["cents"]
    ec_ret = ec[ec["status"] == "refunded"].groupby("ref_order_id")["cents"].sum()
    n_full = int((sale_tot.loc[pos_ret.index] + pos_ret <= 0).sum() + (paid_tot.loc[ec_ret.index] + ec_ret <= 0).sum())
    assert n_full == dirt["returns_fully_returned_orders"]


def test_dirt_counts_small(small):
    check_dirt_and_amounts(*small)


def test_dirt_counts_big(big):
    d, truth, _ = big
    check_dirt_and_amounts(d, truth)
    n_true_lines = truth["files"]["pos_transactions.csv"]["lines"]["true_sales"]
    n_ecom = truth["n_orders_ecom"]
    dirt = truth["dirt"]
    assert dirt["returns"] == round(0.04 * truth["n_orders"])
    assert dirt["cross_channel_duplicates"] == round(0.015 * n_ecom)
    assert dirt["exact_duplicate_pos_lines"] == round(0.005 * n_true_lines)
    assert dirt["missing_customer_id"] == round(0.01 * n_true_lines)
    assert dirt["zero_amount_lines"] == round(0.003 * n_true_lines)


def test_cleaned_exports_reproduce_true_orders(small):
    """Removing each planted defect from the raw exports gives back exactly the true orders."""
    d, truth = small
    pos, ec = read_pos(d), read_ecom(d)
    cross = cross_channel_matches(pos, ec)
    pos = pos.drop(columns=["time"]).drop_duplicates()
    pos["time"] = pd.to_datetime(pos["交易时间"], format="%Y/%m/%d %H:%M", errors="coerce")
    keep = ((pos["单据类型"] == "销售") & (pos["会员卡号"] != "") & (pos["time"].dt.year < 2030)
            & (pos["qty"] != 9999) & (pos["unit_c"] > 0) & ~pos["小票号"].isin(set(cross["小票号"])))
    store = pos[keep].groupby("小票号").agg(customer_id=("会员卡号", "first"), time=("time", "first"),
                                           amount=("cents", "sum"))
    online = ec[(ec["status"] == "paid") & (ec["cents"] > 0) & ec["time"].notna()]
    online = online.rename(columns={"member_id": "customer_id", "cents": "amount"})
    orders = pd.concat([store[["customer_id", "time", "amount"]], online[["customer_id", "time", "amount"]]])
    assert len(orders) == truth["n_orders"]
    assert orders["amount"].sum() == cents(truth["total_revenue"])
    orders["day"] = orders["time"].dt.normalize()
    assert not orders.duplicated(["customer_id", "day"]).any()  # one occasion per customer per day

    tc = pd.read_parquet(d / "truth_customers.parquet").set_index("customer_id")
    per = orders.groupby("customer_id").agg(n=("day", "nunique"), rev=("amount", "sum"))
    per = per.reindex(tc.index)
    assert (per["n"] == tc["n_orders"]).all()
    assert (per["rev"] == (tc["revenue"] * 100).round().astype(np.int64)).all()
    to = pd.read_parquet(d / "truth_orders.parquet")
    assert sorted(to["source_id"]) == sorted(list(store.index) + list(online["order_id"]))


def test_process_recovery(big):
    d, truth, elapsed = big
    assert elapsed < 10.0
    tc = pd.read_parquet(d / "truth_customers.parquet")
    to = pd.read_parquet(d / "truth_orders.parquet")
    bg, gg = truth["bgnbd"], truth["gamma_gamma"]
    assert len(tc) == truth["n_customers"] == BIG_SIZE
    assert tc["customer_id"].iloc[0] == "C000001" and tc["customer_id"].is_unique
    assert tc["birth_date"].min() >= pd.Timestamp("2024-01-01")
    assert tc["birth_date"].max() <= pd.Timestamp("2025-06-30")
    assert (tc["first_order_date"] == tc["birth_date"]).all()
    assert to["order_date"].max() <= pd.Timestamp("2025-12-31")
    assert len(to) == truth["n_orders"] == tc["n_orders"].sum()

    # population draws
    assert tc["lam"].mean() == pytest.approx(bg["r"] / bg["alpha"], rel=0.05)
    assert tc["lam"].var() == pytest.approx(bg["r"] / bg["alpha"] ** 2, rel=0.15)
    assert tc["p_drop"].mean() == pytest.approx(bg["a"] / (bg["a"] + bg["b"]), rel=0.05)
    assert tc["nu"].mean() == pytest.approx(gg["q"] / gg["gamma"], rel=0.05)

    # the daily process, given each customer's lam and p (closed forms, independent of the code):
    # BG/NBD in days: N ~ Bin(T, q) purchase days while alive, q = lam/7, dropout p after each
    # repeat purchase, so x = repeat purchases has E[x] = E[(1 - (1-p)^N)] / p = (1 - (1 - q p)^T) / p
    # (binomial pgf) and P(x = 0) = (1 - q)^T
    assert truth["process"]["dropout_after_first_purchase"] is False
    T = (pd.Timestamp("2025-12-31") - tc["birth_date"]).dt.days.to_numpy()
    q = np.minimum(tc["lam"].to_numpy() / 7, 1)
    p = tc["p_drop"].to_numpy()
    exp_repeat = (1 - (1 - q * p) ** T) / p
    assert (tc["n_orders"] - 1).sum() == pytest.approx(exp_repeat.sum(), rel=0.04)
    exp_one = (1 - q) ** T
    share_one = (tc["n_orders"] == 1).mean()
    assert share_one == pytest.approx(exp_one.mean(), abs=0.015)
    assert 0.1 < share_one < 0.3
    assert share_one == truth["n_one_order_customers"] / BIG_SIZE
    # customers that are alive at the end made no dropout; dead ones died right after their last order
    dead = ~tc["alive_at_end"]
    assert (tc.loc[dead, "death_date"] == tc.loc[dead, "last_order_date"]).all()
    assert tc.loc[~dead, "death_date"].isna().all()

    # spend: mean order total p*gamma/(q-1) = 300; conditional on nu: E[z] = p/nu
    plain = to[~to["lifted"]]
    assert plain["amount"].mean() == pytest.approx(gg["p"] * gg["gamma"] / (gg["q"] - 1), rel=0.04)
    assert plain["amount"].min() >= 1.0
    nu = plain["customer_id"].map(tc.set_index("customer_id")["nu"])
    assert plain["amount"].sum() == pytest.approx((gg["p"] / nu).sum(), rel=0.02)
    # one purchase occasion per customer per day
    assert not to.duplicated(["customer_id", "order_date"]).any()


def test_purchase_rate_sets_the_mean_rate_and_the_lines_a_customer_buys(tmp_path):
    """``purchase_rate`` 0.25 (make bench's clients): alpha = 0.75 / 0.25 = 3, the draws' mean rate 0.25 a week, the
    repeat purchases the closed form of the daily process gives, and about 10 transaction lines a customer (7.2 at the
    default 0.125), every other truth the same."""
    size = 4000
    fast = demo.generate(tmp_path / "fast", size=size, seed=11, purchase_rate=0.25)
    slow = demo.generate(tmp_path / "slow", size=size, seed=11)
    assert fast["bgnbd"] == {"r": 0.75, "alpha": 3.0, "a": 0.8, "b": 4.0, "time_unit": "W"}
    assert slow["bgnbd"]["alpha"] == 6.0 and fast["gamma_gamma"] == slow["gamma_gamma"]
    tc = pd.read_parquet(tmp_path / "fast" / "truth_customers.parquet")
    assert tc["lam"].mean() == pytest.approx(0.25, rel=0.06)  # standard error 0.0046
    T = (pd.Timestamp("2025-12-31") - tc["birth_date"]).dt.days.to_numpy()
    q = np.minimum(tc["lam"].to_numpy() / 7, 1)
    p = tc["p_drop"].to_numpy()
    assert (tc["n_orders"] - 1).sum() == pytest.approx(((1 - (1 - q * p) ** T) / p).sum(), rel=0.05)

    def lines(d: Path) -> int:
        return len(read_pos(d)) + len(read_ecom(d))

    assert 9.6 < lines(tmp_path / "fast") / size < 10.8
    assert 6.8 < lines(tmp_path / "slow") / size < 7.6
    assert 1.35 < fast["n_orders"] / slow["n_orders"] < 1.55


def test_tiers(big):
    d, truth, _ = big
    tc = pd.read_parquet(d / "truth_customers.parquet")
    ranked = tc.sort_values(["revenue_2025_06_30"], ascending=False, kind="stable")
    n = len(tc)
    assert (ranked["tier"].iloc[: round(0.05 * n)] == "金卡会员").all()
    assert (ranked["tier"].iloc[round(0.05 * n): round(0.25 * n)] == "银卡会员").all()
    assert (ranked["tier"].iloc[round(0.25 * n):] == "普通会员").all()
    assert truth["tiers"]["counts"] == {"金卡会员": 1000, "银卡会员": 4000, "普通会员": 15000}


def test_survey_truth(big):
    d, truth, _ = big
    sv = pd.read_csv(d / "survey.csv", encoding="utf-8-sig", keep_default_na=True)
    tc = pd.read_parquet(d / "truth_customers.parquet").set_index("customer_id")
    to = pd.read_parquet(d / "truth_orders.parquet")
    assert len(sv) == round(0.25 * BIG_SIZE) and sv["customer_id"].is_unique
    assert sv["nps"].isna().sum() == truth["dirt"]["blank_nps"] == round(0.02 * len(sv))
    nps = sv["nps"].dropna()
    assert ((nps >= 0) & (nps <= 10) & (nps == nps.round())).all()
    assert sv["csat"].between(1, 5).all()
    # answered 0..14 days after one of the customer's true orders, never after 2025-12-31
    rd = pd.to_datetime(sv["response_date"], format="%Y-%m-%d")
    assert rd.max() <= pd.Timestamp("2025-12-31")
    m = sv.assign(rd=rd).merge(to[["customer_id", "order_date"]], on="customer_id")
    lag = (m["rd"] - m["order_date"]).dt.days
    ok = m[(lag >= 0) & (lag <= 14)].groupby("customer_id").size()
    assert ok.reindex(sv["customer_id"]).notna().all()
    # planted driver: high dropout probability -> detractors
    s = truth["survey"]
    p = sv["customer_id"].map(tc["p_drop"])
    high = p > s["median_p"]
    det = sv["nps"] <= 6
    has = sv["nps"].notna()
    share_high, share_low = det[has & high].mean(), det[has & ~high].mean()
    assert share_high == pytest.approx(s["detractor_share_high_p"], abs=1e-6)
    assert share_low == pytest.approx(s["detractor_share_low_p"], abs=1e-6)
    assert share_high - share_low > 0.35
    assert share_high == pytest.approx(s["expected_detractor_share_high_p"], abs=0.04)
    assert share_low == pytest.approx(s["expected_detractor_share_low_p"], abs=0.04)
    assert s["median_p"] == pytest.approx(tc["p_drop"].median(), abs=1e-6)


def test_experiment_truth(big):
    d, truth, _ = big
    ex = pd.read_csv(d / "experiment.csv", dtype={"revenue_30d": str})
    tc = pd.read_parquet(d / "truth_customers.parquet").set_index("customer_id")
    to = pd.read_parquet(d / "truth_orders.parquet")
    t = truth["experiment"]
    assign = pd.Timestamp("2025-10-01")
    alive = tc["alive_at_end"] | (tc["death_date"] >= assign)
    assert set(ex["customer_id"]) == set(tc.index[alive])
    assert (ex["assigned_date"] == "2025-10-01").all()
    assert (ex["tier"].to_numpy() == tc.loc[ex["customer_id"], "tier"].to_numpy()).all()
    counts = ex.groupby(["tier", "variant"]).size()
    for tier, arms in t["n"].items():
        assert counts[(tier, "control")] == arms["control"]
        assert counts[(tier, "vip_coupon")] == arms["vip_coupon"]
        assert 0 <= arms["control"] - arms["vip_coupon"] <= 1
    win = to[(to["order_date"] >= assign) & (to["order_date"] <= pd.Timestamp("2025-10-30"))]
    rev = win.groupby("customer_id")["amount"].sum().reindex(ex["customer_id"], fill_value=0.0)
    assert (ex["revenue_30d"].str.replace(".", "", regex=False).astype(int).to_numpy() == (rev.to_numpy() * 100).round().astype(int)).all()
    assert (ex["converted_30d"].to_numpy() == (rev.to_numpy() > 0).astype(int)).all()
    # the lift touches exactly the window orders of treated 金卡会员
    var = to["customer_id"].map(ex.set_index("customer_id")["variant"])
    tier = to["customer_id"].map(tc["tier"])
    expected = to.index.isin(win.index) & (var == "vip_coupon") & (tier == "金卡会员")
    assert (to["lifted"] == expected).all() and to["lifted"].sum() == t["n_lifted_orders"] > 0
    added = (to.loc[to["lifted"], "amount"] * (t["lift"] / (1 + t["lift"]))).sum()
    assert added == pytest.approx(t["lift_revenue_added"], abs=0.01 * t["n_lifted_orders"])
    assert t["effect_by_tier"] == {"金卡会员": 0.5, "银卡会员": 0.0, "普通会员": 0.0}
    gold = t["observed"]["金卡会员"]["vip_coupon"]
    assert gold["mean_revenue_30d"] / gold["mean_revenue_30d_without_lift"] == pytest.approx(1.5, abs=0.005)


def test_ensure(tmp_path):
    d = tmp_path / "demo"
    t1 = demo.ensure(d, size=300, seed=5)
    mt = {f: (d / f).stat().st_mtime_ns for f in ALL_FILES}
    t2 = demo.ensure(d, size=300, seed=5)
    assert t2 == t1
    assert {f: (d / f).stat().st_mtime_ns for f in ALL_FILES} == mt  # nothing rewritten

    t3 = demo.ensure(d, size=320, seed=5)  # other size: regenerated
    assert t3["size"] == 320 and t3["n_customers"] == 320
    assert json.loads((d / "TRUTH.json").read_text(encoding="utf-8"))["size"] == 320

    (d / "survey.csv").unlink()  # incomplete folder: regenerated
    t4 = demo.ensure(d, size=320, seed=5)
    assert t4 == t3 and (d / "survey.csv").is_file()

    (d / "TRUTH.json").unlink()  # interrupted generation (truth is written last): regenerated
    assert demo.ensure(d, size=320, seed=5) == t3

    t5 = demo.ensure(d, size=320, seed=5, purchase_rate=0.25)  # another purchase rate: regenerated
    assert t5["bgnbd"]["alpha"] == 3.0 and t5["n_orders"] > t3["n_orders"]
    mt = {f: (d / f).stat().st_mtime_ns for f in ALL_FILES}
    assert demo.ensure(d, size=320, seed=5, purchase_rate=0.25) == t5
    assert {f: (d / f).stat().st_mtime_ns for f in ALL_FILES} == mt
    assert demo.ensure(d, size=320, seed=5) == t3  # and back

    stale = dict(t3, generator_version=t3["generator_version"] - 1)
    (d / "TRUTH.json").write_text(json.dumps(stale), encoding="utf-8")
    assert demo.ensure(d, size=320, seed=5) == t3
    assert not list(d.glob("*.tmp"))
