"""The demo client: a seeded, deterministic generator of a fictional Chinese retailer's raw exports.

``generate(out_dir, size, seed)`` writes the raw files a consultant would receive from the
retailer, plus the planted truth they were generated from.  Same ``(size, seed)`` and same
``GENERATOR_VERSION`` give byte-identical files (pure ``numpy.random.default_rng(seed)``; the xlsx
zip is written with fixed timestamps).  ``ensure(out_dir, size, seed)`` regenerates only when the
folder is missing, stale or incomplete.

Files written into ``out_dir``
------------------------------
Raw exports (what the analysis reads):

* ``pos_transactions.csv`` -- store tills, **GBK**, Chinese headers, one row per receipt LINE:
  ``小票号, 会员卡号, 门店, 交易时间, 商品编码, 品类, 数量, 单价, 成本, 单据类型, 原小票号``.
  小票号 "P" + 8 digits (sequential in time, steps of 1-3), 交易时间 ``%Y/%m/%d %H:%M`` between 10:00
  and 21:59, 商品编码 "SKU" + 5 digits, 数量 int, 单价 2 decimals, 单据类型 销售 (sale) or 退货 (return),
  原小票号 = the returned sale's 小票号 on returns, empty otherwise.  Line amount = 数量 x 单价.
  品类 (category: 服装 美妆 食品 家居 数码) per line; 成本 (cost of goods) = line amount x (1 - the
  category's margin: .55 .65 .25 .40 .12), negative on returns.
  Rows are in 小票号 order (= time order, so the 2031 typos sit among their 2025 neighbours); the
  lines of a receipt are consecutive.
* ``ecommerce_orders.csv`` -- online shop, UTF-8 (no BOM), one row per ORDER:
  ``order_id, member_id, order_time, order_amount, discount, cost, status, platform, category, ref_order_id``.
  order_id "E" + 9 digits (sequential in time), order_time ``%Y-%m-%d %H:%M:%S``, order_amount a
  string such as ``"¥1,234.50"`` / ``"-¥120.00"``, status ``paid`` / ``refunded``, platform
  ``app`` / ``web`` / ``mini-program``, ref_order_id = the refunded order_id on refunds; discount = the
  coupon value on top of the amount paid (``0.00`` without one; refunds 0), cost as on POS, category
  the order's category.
* ``members.xlsx`` -- sheet ``会员``, header in row 1: ``会员卡号, 姓名, 性别, 出生日期, 手机号, 邮箱,
  注册日期, 地区, 注册渠道, 会员等级``.  注册日期 and 出生日期 are real Excel date cells (yyyy-mm-dd);
  手机号 is text; 3 % of members leave 性别 and 出生日期 empty.
* ``survey.csv`` -- UTF-8 **with BOM**: ``customer_id, response_date, nps, csat, comment, item_delivery,
  item_product, item_service``.
* ``experiment.csv`` -- UTF-8: ``customer_id, variant, assigned_date, tier, revenue_30d,
  converted_30d``.

Truth (for tests only, never read by the analysis):

* ``TRUTH.json`` -- every parameter and count below (indent 2, sorted keys, ensure_ascii=False),
  written LAST, so its presence means the folder is complete.
* ``truth_customers.parquet`` -- one row per customer: customer_id, birth_date, registration_date,
  lam (purchase rate per week), p_drop, nu (Gamma-Gamma scale), online_share, channel_pref
  (online if online_share >= 0.5 else store), home_store, region, alive_at_end, death_date (date of
  the purchase after which the customer dropped out; NaT if alive at the end), n_orders,
  n_orders_pos, n_orders_ecom, revenue (gross true revenue incl. the experiment lift),
  revenue_2025_06_30 (revenue up to the tier date), first_order_date, last_order_date, tier,
  nps_latent (= 9 - 12 p), in_survey, in_experiment, variant.
* ``truth_orders.parquet`` -- one row per TRUE purchase occasion: order_no, customer_id,
  order_date, order_time, channel (store/online), source_id (小票号 or order_id), amount, n_lines,
  lifted (experiment lift applied), returned_amount, fully_returned, cross_dup_receipt (小票号 of
  the planted POS copy of an online order, else empty).

The customer process (TRUE parameters, time unit = week)
---------------------------------------------------------
* ``size`` customers ``C000001`` ... (ids are numbered in registration order).  Each customer's
  first purchase ("birth") is on a day drawn uniformly from 2024-01-01 .. 2025-06-30; observation
  ends 2025-12-31 (inclusive).  The birth purchase is a real order (it is in the exports).
* Purchase rate lambda ~ Gamma(shape r = 0.75, rate alpha = 6.0) per WEEK (mean 0.125/week).
  ``purchase_rate`` (``demo.purchase_rate`` in params) sets another mean: alpha = 0.75 / purchase_rate, all else
  the same.  0.25 (alpha 3) buys 7.3 orders and about 10.2 transaction lines a customer instead of 5.1 and 7.2
  (dropout after each purchase keeps it from doubling): ``make bench``'s clients, "1M customers = 10M transactions".
  Dropout p ~ Beta(a = 0.8, b = 4.0) (mean 1/6).
* Time is discrete in DAYS.  After every REPEAT purchase the customer drops out for good with
  probability p (the textbook BG/NBD of Fader, Hardie & Lee 2005: no dropout at the first
  purchase).  While alive, each later day is a purchase day with probability min(lambda / 7, 1),
  so gaps are geometric on 1, 2, 3 ... days.
  Deliberately **at most ONE purchase occasion per customer per day**: the number of purchase
  occasions of a customer equals the number of distinct days with an order, exactly.
  On the default demo (weeks; frequency = n_orders - 1, recency t_x and age T measured from
  birth, T to 2025-12-31) a BG/NBD maximum-likelihood fit recovers r, alpha, a, b =
  0.77, 6.23, 0.82, 4.22 (truth 0.75, 6, 0.8, 4).  (Module constant DROPOUT_AFTER_FIRST_PURCHASE =
  True gives the MBG/NBD variant of Batislam et al. 2007 instead; TRUTH ``process`` records which
  one was used.)  A Gamma-Gamma fit on customers with >= 2 orders gives p, q, gamma =
  6.05, 3.92, 147.7 (truth 6, 4, 150).
* Spend per purchase occasion (order total, CNY): Gamma-Gamma with p = 6.0, q = 4.0,
  gamma = 150.0: nu ~ Gamma(shape q, rate gamma) per customer, each order total
  z ~ Gamma(shape p, rate nu), rounded to the cent, minimum 1.00.  Expected order total
  p * gamma / (q - 1) = 300 CNY (before the experiment lift, which touches < 0.5 % of orders).
* Channel: each customer has an online share ~ Beta(1.5, 1.5); each order independently goes to
  e-commerce with that probability, else to a store (POS).  Store customers have a home store
  in their region (a random store by regional weight for 西北/东北, which have none): 80 % of
  their store orders go there, the rest to any store by regional weight.  10 stores:
  上海徐汇店 上海浦东店 杭州西湖店 南京新街口店 北京朝阳店 北京西单店 广州天河店 深圳南山店 成都春熙路店
  武汉江汉路店.  Online orders go to the customer's preferred platform 70 % of the time.
* A POS order is split into 1/2/3 lines (probabilities .5/.3/.2) of distinct SKUs whose amounts
  sum EXACTLY to the order total; a line has 数量 2 or 3 only where 单价 x 数量 is exact to the
  cent.  An e-commerce order is one row with the order total.
* ``n_orders`` = number of true purchase occasions, ``total_revenue`` = sum of their totals
  (gross of returns, including the experiment lift).

Members (members.xlsx)
----------------------
One row per customer.  注册日期 <= first purchase (45 % register on the day of their first purchase,
the rest 1-365 days before, so some register in 2023).  地区 weights: 华东 .34, 华南 .18, 华北 .16,
华中 .12, 西南 .10, 西北 .05, 东北 .05.  注册渠道 门店/App/小程序/官网, mostly 门店 for store-leaning
customers.  会员等级 from the TRUE gross revenue rank at 2025-06-30 (orders dated <= 2025-06-30):
top 5 % (round(0.05 n)) 金卡会员, next 20 % (round(0.20 n)) 银卡会员, rest 普通会员 (ties: lower
customer id first).  All births are <= 2025-06-30, so every customer is ranked.  Names are
surname + 1-2 given-name characters; 手机号 11 digits starting 13/15/18 (not unique-checked).

Survey (survey.csv)
-------------------
round(0.25 n) customers answer once.  The answered purchase is one of the customer's true orders
chosen uniformly; response_date = that day + 1..14 days, capped at 2025-12-31 (so it may be the
purchase day itself when the purchase is on 2025-12-31).  Planted driver: satisfaction falls with
the dropout probability p::

    nps_latent = 9 - 12 p
    e    = 0.3 (delivery - 3.65) + 0.7 (product - 3.65) + 0.5 (service - 3.65) + u,   u ~ N(0, 1.109^2)
    nps  = clip(rint(nps_latent + e), 0, 10)
    csat = clip(rint(1 + (nps_latent + e) / 2.5 + h), 1, 5),   h ~ N(0, 0.5^2)

The item scores item_delivery, item_product, item_service (1-5, P = .05/.10/.25/.35/.25, mean 3.65,
variance 1.2275) are independent of each other and of p, drawn from their own random stream
(SeedSequence [seed, 3]) so that no other file changes with them; ITEM_WEIGHTS are the planted NPS
points per item point (an OLS of nps on the items recovers them, attenuated a little by the
rounding and the clipping at 10). e keeps its SD of 1.5, so a customer is still a detractor
(nps <= 6) with probability about Phi((6.5 - nps_latent) / 1.5).  High-p
customers (p above the sample median of p over ALL customers) are far more often detractors:
TRUTH ``survey`` records the realised detractor share among respondents with an nps in each half
and the expected (model) share over all customers of each half.  max(1, round(0.02 rows)) rows
have a blank nps (csat only).  comment: short Chinese text matching the sentiment, or empty (45 %).
Personal data (generator v6): CONTACT_SHARE (4 %) of the written comments end with the respondent's
own 手机号 (``，有问题请打我电话13812345678``) and another 4 % with their 邮箱, at least one of each
(TRUTH ``privacy``), drawn from their own stream (SeedSequence [seed, 13]) so that every other value
is as in v5; the report must show them masked.

Experiment (experiment.csv)
---------------------------
Assigned 2025-10-01.  Eligible = customers alive on 2025-10-01 (alive at the end, or whose
dropout purchase is on/after 2025-10-01; all were born before).  Within each tier (the 会员等级
above) eligible customers are shuffled and split 50/50 (odd one to control): ``control`` /
``vip_coupon``.  Planted effect: for treated 金卡会员 only, every true order total dated
2025-10-01 .. 2025-10-30 is multiplied by 1.5 (rint to the cent) -- the exports carry the lifted
amounts; zero effect in 银卡会员 / 普通会员 and no effect on purchase frequency.  revenue_30d = sum of
the customer's true (gross, lifted) order totals in that window, converted_30d = 1 if any order.
TRUTH ``experiment`` records lift 0.5, lift tier, effect by tier, per-tier-per-arm n and the
realised per-arm means.

Profile attributes (TRUTH ``profile``; generator v5)
-----------------------------------------------------
Drawn from their own stream (SeedSequence [seed, 11]) so that every amount, date and id is the same
as in v4; only 门店 (home stores follow regions) and the new columns differ.

* Region (planted): the 10 % of customers with the highest true value (lam x p / nu, expected spend
  per week while alive) live in 华东 with probability 0.60 instead of 0.34 (the other regions scaled
  down), using the same uniform draw as before.  VIPs are therefore over-represented in 华东
  (about 47 % of the top-value customers against 34 % of the rest on the default demo).
* Category (planted): every sale line has a category (服装 美妆 食品 家居 数码, weights .30 .12 .28
  .18 .12); the first line of an order has the order's category, and a customer's FIRST order is
  drawn from .20 .45 .15 .12 .08: 美妆 is skewed to new customers (and so to one-time buyers).
* Omnichannel (emergent, not planted): each order goes online with the customer's online share, so
  customers with many orders -- the VIPs -- nearly all buy in both channels.
* Cost: amount x (1 - category margin).  Discount: online orders only; each customer uses a coupon
  with probability ~ Beta(0.8, 2.4), worth 5-25 % of the amount paid.  Gender 女/男 (.55/.45) and
  birth date (age at 2025-12-31 triangular 18..70, mode 32) independent of everything else.

Planted dirt (exact counts in TRUTH ``dirt``; categories are disjoint)
----------------------------------------------------------------------
Percentages are of the stated base, each count = max(1, round(rate x base)):

* ``returns`` -- 4 % of all true orders dated <= 2025-12-30 get ONE return, dated 1-14 days after
  the sale (capped at 2025-12-31).  POS order: one 退货 line with 数量 = -(数量 of one of the order's
  lines), the same 商品编码/单价/门店/会员卡号, 原小票号 = the sale's 小票号, its own new 小票号.
  E-commerce order: a ``refunded`` row with its own order_id, ref_order_id = the order,
  amount -(full total) with probability .5 else -rint(total x U(0.3, 1.0)).  ``returns_pos``,
  ``returns_ecom``, ``returns_amount`` (positive CNY), ``returns_fully_returned_orders`` (orders
  whose net is <= 0: single-line POS orders and full refunds).  Returns do not alter the truth:
  n_orders / revenue are gross.
* ``cross_channel_duplicates`` -- 1.5 % of e-commerce orders (not returned) ALSO appear in the
  POS export as a one-line 销售 receipt: same 会员卡号, 交易时间 = order_time truncated to the minute
  (may be outside store hours), 数量 1, 单价 = order total, a new 小票号, the customer's home
  store.  One true order present twice; the e-commerce row is the original.
  Recognise: POS 销售 receipt with a member, same member + same minute + same amount as a paid
  e-commerce order.  Because a customer has at most one true order per day, this rule matches
  exactly these rows (no true order collides).
* ``exact_duplicate_pos_lines`` -- 0.5 % of true POS sale lines (of non-returned orders) are
  written twice, verbatim and adjacent.  No other two rows of any export are identical, except the
  member duplicates below.
* ``missing_customer_id`` -- 1 % of true POS sale lines: EXTRA one-line walk-in receipts with an
  empty 会员卡号 (not true orders; amount from the same Gamma-Gamma with a fresh nu).
* ``zero_amount_lines`` -- 0.3 % of true POS sale lines: EXTRA gift lines (数量 1, 单价 0.00, SKU
  from a gift range 9xxxx) appended to real, non-returned POS receipts; order totals unchanged.
* ``negative_amount_not_return`` -- 5 EXTRA e-commerce rows with status ``paid``, a negative
  amount and no ref_order_id (data-entry errors; not true orders).
* ``future_dates`` -- 4 EXTRA POS sale lines of real members whose 交易时间 year is 2031 (typo of
  2025; their 小票号 follows the intended 2025 time).  Not true orders.
* ``outliers`` -- 3 EXTRA POS sale lines of real members with 数量 9999 (scanner errors; 单价 a
  normal price 5-200 CNY), own receipts, dated between the member's first purchase and
  2025-12-31.  Not true orders.
* ``unparseable_dates`` -- 3 EXTRA e-commerce ``paid`` rows whose order_time is garbage
  (``2025-13-45 99:99:99``, ``2025-02-30 25:61:00``, ``2025-00-00 00:00:00``).  Not true orders.
* ``duplicate_member_rows`` -- 0.5 % of customers appear twice in members.xlsx (exact duplicate
  row, adjacent).
* ``blank_nps`` -- see the survey.

TRUTH ``dirt`` also has ``<name>_amount`` (CNY) for the amount-bearing categories, and
``files`` has, per file, the rows written and the amount by category, which sums exactly to the
file's total (POS amount = sum of 数量 x 单价; e-commerce = sum of parsed order_amount), so the
cleaning stage can reconcile to the cent:
``pos true_sales + ecom true_sales = total_revenue``.

Dirt amounts are as they appear in the file (so ``negative_amount_not_return_amount`` is
negative), except the ``returns_*amount`` keys, which are positive amounts returned.

Example: the default demo (size=20000, seed=20240101, generator_version 4), ~1.5 s to generate
--------------------------------------------------------------------------------------------
102,724 true orders (51,189 POS / 51,535 online), total_revenue 31,137,762.63, 11,492 customers
alive at the end, 3,260 with a single order.  Rows: POS 91,163 (86,765 true sale lines), e-commerce
53,596, members 20,100, survey 5,000, experiment 12,417.  Dirt: returns 4,109 (2,056 POS + 2,053
e-com, 932,902.63 returned, 2,029 fully returned), cross-channel duplicates 773, exact duplicate
POS lines 434, missing member id 868, zero-amount lines 260, duplicate member rows 100, blank nps
100, plus the fixed 5 / 4 / 3 / 3.  Survey: median p 0.1198, detractor share 62.1 % (high p) vs
11.3 % (low p); OLS of nps on the items: delivery 0.32, product 0.71, service 0.43 (truth 0.3, 0.7,
0.5).  Experiment arms (control / vip_coupon): 金卡 293/293, 银卡 1056/1056, 普通 4860/4859.
Caveat for analysts: with ~300 金卡 customers per arm and heavy-tailed spend, revenue_30d is noisy:
in this draw the treated 金卡 mean is 825.75 against 509.53 in control, of which the lift itself
added 550.50 -> 825.75 (+50 %); the rest is chance (see ``experiment.observed``).  The lift is
+50 % (version 3 planted +25 %, which ~300 customers per arm cannot detect: minimum detectable
effect about +47 % at 80 % power); 银卡 shows a chance dip of -30 CNY (raw p 0.04) that a
multiple-testing correction must not call an effect.  An analysis should report a confidence
interval, not expect the point estimate to hit 50 %.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ._common import (
    CATEGORIES,
    CONTACT_SHARE,
    DROPOUT_AFTER_FIRST_PURCHASE,
    EMAIL_DOMAINS,
    EXPECTED_FILES,
    GARBAGE_TIMES,
    GENDERS,
    GENERATOR_VERSION,
    GIVEN,
    PINYIN,
    PLATFORMS,
    PURCHASE_RATE,
    REG_CHANNELS,
    REGIONS,
    STORES,
    SURNAMES,
    TIERS,
    TRUTH_FILE,
    _cost,
    _dates,
    _datetimes,
    _fmt_cny,
    _fmt_signed,
    gamma_rate,
)
from ._files import (
    _iso,
    _truth,
    _write_bytes,
    _write_csv,
    _write_parquet,
    _xlsx_bytes,
)
from ._process import (
    _contacts_in_comments,
    _simulate,
)

__all__ = ["GENERATOR_VERSION", "EXPECTED_FILES", "DROPOUT_AFTER_FIRST_PURCHASE", "generate", "ensure"]


def generate(out_dir: Path, size: int = 20000, seed: int = 20240101, purchase_rate: float = PURCHASE_RATE) -> dict:
    """Write the demo client's raw exports and truth into ``out_dir``; return the truth dict. ``purchase_rate`` is the
    customers' mean purchases a week (the Gamma rate alpha = r / purchase_rate; 0.125 = alpha 6, the default)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_path = out_dir / TRUTH_FILE
    if truth_path.exists():  # an interrupted regeneration must not look complete
        truth_path.unlink()

    S = _simulate(size, seed, purchase_rate)
    n = S["n"]
    cid = np.array([f"C{i + 1:06d}" for i in range(n)], dtype=object)

    # ---- POS --------------------------------------------------------------------------------------
    P = S["P"]
    dt = np.datetime_as_string(_datetimes(P["day"], P["sec"]), unit="m").tolist()
    ptime = [f"{'2031' if y else s[0:4]}/{s[5:7]}/{s[8:10]} {s[11:16]}" for s, y in zip(dt, P["year2031"])]
    store_names = np.array([s for s, _ in STORES], dtype=object)
    categories = np.array(CATEGORIES, dtype=object)
    pos_df = pd.DataFrame({
        "小票号": [f"P{r:08d}" for r in P["rec"].tolist()],
        "会员卡号": np.where(P["cust"] >= 0, cid[np.maximum(P["cust"], 0)], ""),
        "门店": store_names[P["store"]],
        "交易时间": ptime,
        "商品编码": [f"SKU{s:05d}" for s in P["sku"].tolist()],
        "品类": categories[P["cat"]],
        "数量": P["qty"].astype(np.int64),
        "单价": [_fmt_cny(u) for u in P["unit"].tolist()],
        "成本": [_fmt_signed(c) for c in _cost(P["qty"] * P["unit"], P["cat"]).tolist()],
        "单据类型": np.where(P["ret"] == 1, "退货", "销售"),
        "原小票号": [f"P{o:08d}" if o >= 0 else "" for o in P["orig"].tolist()],
    })

    # ---- e-commerce ----------------------------------------------------------------------------------
    Ed = S["E"]
    edt = np.datetime_as_string(_datetimes(Ed["day"], Ed["sec"]), unit="s").tolist()
    etime = [GARBAGE_TIMES[g] if g >= 0 else s.replace("T", " ") for s, g in zip(edt, Ed["garbage"].tolist())]
    amt = [("-¥" if c < 0 else "¥") + f"{abs(c) // 100:,}.{abs(c) % 100:02d}" for c in Ed["cents"].tolist()]
    ecom_df = pd.DataFrame({
        "order_id": [f"E{i:09d}" for i in Ed["id"].tolist()],
        "member_id": cid[Ed["cust"]],
        "order_time": etime,
        "order_amount": amt,
        "discount": [_fmt_cny(c) for c in Ed["discount"].tolist()],
        "cost": [_fmt_signed(c) for c in _cost(Ed["cents"], Ed["cat"]).tolist()],
        "status": np.where(Ed["refunded"], "refunded", "paid"),
        "platform": np.array(PLATFORMS, dtype=object)[Ed["platform"]],
        "category": categories[Ed["cat"]],
        "ref_order_id": [f"E{r:09d}" if r >= 0 else "" for r in Ed["ref"].tolist()],
    })

    # ---- members ------------------------------------------------------------------------------------
    names = [SURNAMES[s] + GIVEN[a] + (GIVEN[b] if t else "")
             for s, a, b, t in zip(S["sur"].tolist(), S["g1"].tolist(), S["g2"].tolist(), S["two"].tolist())]
    phones = [f"1{a}{b:09d}" for a, b in zip(S["phone_pre"].tolist(), S["phone_rest"].tolist())]
    emails = [f"{q}@qq.com" if EMAIL_DOMAINS[d] == "qq.com" else f"{PINYIN[a]}{PINYIN[b]}{k}@{EMAIL_DOMAINS[d]}"
              for d, q, a, b, k in zip(S["dom"].tolist(), S["qq"].tolist(), S["py1"].tolist(),
                                       S["py2"].tolist(), S["em_num"].tolist())]
    reg_dates = [_dt.date(2024, 1, 1) + _dt.timedelta(days=int(d)) for d in S["reg"].tolist()]
    tier_names = np.array(TIERS, dtype=object)[S["tier"]]
    mdup = set(S["mdup"].tolist())
    born = [_dt.date(2025, 12, 31) - _dt.timedelta(days=int(d)) for d in S["age_days"].tolist()]
    member_rows = []
    for i in range(n):
        blank = bool(S["no_profile"][i])
        row = [cid[i], names[i], None if blank else GENDERS[S["gender"][i]], None if blank else born[i], phones[i], emails[i],
               reg_dates[i], REGIONS[S["region"][i]], REG_CHANNELS[S["reg_ch"][i]], tier_names[i]]
        member_rows.append(row)
        if i in mdup:
            member_rows.append(list(row))
    members_header = ["会员卡号", "姓名", "性别", "出生日期", "手机号", "邮箱", "注册日期", "地区", "注册渠道", "会员等级"]

    # ---- survey -------------------------------------------------------------------------------------
    resp = S["resp"]
    comments, phone_rows, email_rows = _contacts_in_comments(S["comment"], resp, phones, emails, seed)
    survey_df = pd.DataFrame({
        "customer_id": cid[resp],
        "response_date": _iso(S["resp_day"]),
        "nps": pd.array(np.where(S["blank"], 0, S["nps"]), dtype="Int64"),
        "csat": S["csat"],
        "comment": comments,
        **{f"item_{name}": scores for name, scores in S["items"].items()},
    })
    survey_df.loc[S["blank"], "nps"] = pd.NA
    survey_df = survey_df.sort_values(["response_date", "customer_id"], kind="stable").reset_index(drop=True)

    # ---- experiment ----------------------------------------------------------------------------------
    o_cust, o_cents, in_win = S["o_cust"], S["o_cents"], S["in_win"]
    rev30 = np.zeros(n, np.int64)
    np.add.at(rev30, o_cust[in_win], o_cents[in_win])
    n30 = np.bincount(o_cust[in_win], minlength=n)
    ex = np.flatnonzero(S["in_exp"])
    variant_names = np.array(["control", "vip_coupon"], dtype=object)
    exp_df = pd.DataFrame({
        "customer_id": cid[ex],
        "variant": variant_names[S["variant"][ex]],
        "assigned_date": "2025-10-01",
        "tier": tier_names[ex],
        "revenue_30d": [_fmt_cny(c) for c in rev30[ex].tolist()],
        "converted_30d": (n30[ex] > 0).astype(int),
    })

    # ---- truth tables --------------------------------------------------------------------------------
    o_day, pos_o, ecom_o = S["o_day"], S["pos_o"], S["ecom_o"]
    N = o_day.size
    source_id = np.empty(N, dtype=object)
    source_id[pos_o] = [f"P{r:08d}" for r in S["rA"].tolist()]
    source_id[ecom_o] = [f"E{r:09d}" for r in S["eA"].tolist()]
    returned = np.zeros(N, np.int64)
    returned[S["ret_pos"]] = S["l_qty"][S["r_line"]] * S["l_unit"][S["r_line"]]
    returned[S["ret_ec"]] = S["ref_cents"]
    n_lines_all = np.ones(N, np.int64)
    n_lines_all[pos_o] = S["n_lines"]
    cross = np.full(N, "", dtype=object)
    cross[S["cd"]] = [f"P{r:08d}" for r in S["rB"].tolist()]
    otimes = np.datetime_as_string(_datetimes(o_day, S["o_sec"]), unit="s")
    orders_df = pd.DataFrame({
        "order_no": np.arange(N),
        "customer_id": cid[o_cust],
        "order_date": _dates(o_day).astype("datetime64[ms]"),
        "order_time": otimes.astype("datetime64[ms]"),
        "channel": np.where(S["o_online"], "online", "store"),
        "source_id": source_id,
        "amount": o_cents / 100.0,
        "n_lines": n_lines_all,
        "lifted": S["lifted"],
        "returned_amount": returned / 100.0,
        "fully_returned": (returned >= o_cents),
        "cross_dup_receipt": cross,
    })
    rev = np.bincount(o_cust, weights=o_cents, minlength=n).round().astype(np.int64)
    n_pos = np.bincount(o_cust[pos_o], minlength=n)
    first_idx = np.concatenate([[0], np.cumsum(S["n_orders"])[:-1]])
    last_idx = first_idx + S["n_orders"] - 1
    in_survey = np.zeros(n, bool)
    in_survey[resp] = True
    death = _dates(np.maximum(S["death_day"], 0)).astype("datetime64[ms]")
    death = np.where(S["death_day"] >= 0, death, np.datetime64("NaT", "ms"))
    customers_df = pd.DataFrame({
        "customer_id": cid,
        "birth_date": _dates(S["birth"]).astype("datetime64[ms]"),
        "registration_date": _dates(S["reg"]).astype("datetime64[ms]"),
        "lam": S["lam"],
        "p_drop": S["p_drop"],
        "nu": S["nu"],
        "online_share": S["online_share"],
        "channel_pref": np.where(S["online_share"] >= 0.5, "online", "store"),
        "home_store": store_names[S["home_store"]],
        "region": np.array(REGIONS, dtype=object)[S["region"]],
        "alive_at_end": S["alive_end"],
        "death_date": death,
        "n_orders": S["n_orders"],
        "n_orders_pos": n_pos,
        "n_orders_ecom": S["n_orders"] - n_pos,
        "revenue": rev / 100.0,
        "revenue_2025_06_30": S["rev_tier"] / 100.0,
        "first_order_date": _dates(o_day[first_idx]).astype("datetime64[ms]"),
        "last_order_date": _dates(o_day[last_idx]).astype("datetime64[ms]"),
        "tier": tier_names,
        "nps_latent": S["nps_latent"],
        "in_survey": in_survey,
        "in_experiment": S["in_exp"],
        "variant": np.where(S["variant"] >= 0, variant_names[np.maximum(S["variant"], 0)], ""),
    })

    truth = _truth(S, size, seed, pos_df, ecom_df, len(member_rows), survey_df, exp_df, rev30, n30)
    truth["privacy"] = {"contact_share": CONTACT_SHARE, "comments_with_phone": int(phone_rows.size),
                        "comments_with_email": int(email_rows.size),
                        "rule": "the respondent's own 手机号 / 邮箱 from members.xlsx appended to a written comment"}

    # ---- write (TRUTH.json last) ---------------------------------------------------------------------
    _write_csv(out_dir / "pos_transactions.csv", pos_df, "gbk")
    _write_csv(out_dir / "ecommerce_orders.csv", ecom_df, "utf-8")
    _write_bytes(out_dir / "members.xlsx", _xlsx_bytes("会员", members_header, member_rows))
    _write_csv(out_dir / "survey.csv", survey_df, "utf-8-sig")
    _write_csv(out_dir / "experiment.csv", exp_df, "utf-8")
    _write_parquet(out_dir / "truth_customers.parquet", customers_df)
    _write_parquet(out_dir / "truth_orders.parquet", orders_df)
    _write_bytes(truth_path, (json.dumps(truth, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    return truth


def ensure(out_dir: Path, size: int, seed: int, purchase_rate: float = PURCHASE_RATE) -> dict:
    """Return the stored truth if ``out_dir`` is a complete demo of (size, seed, purchase_rate); else regenerate."""
    import fcntl

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # two reports started at once on a fresh checkout: one generates, the other waits and reads
    with open(out_dir.parent / f".{out_dir.name}.generating", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        truth_path = out_dir / TRUTH_FILE
        try:
            truth = json.loads(truth_path.read_text(encoding="utf-8"))
            ok = (truth.get("size") == int(size) and truth.get("seed") == int(seed)
                  and truth.get("bgnbd", {}).get("alpha") == gamma_rate(purchase_rate)
                  and truth.get("generator_version") == GENERATOR_VERSION
                  and all((out_dir / f).is_file() for f in EXPECTED_FILES))
        except (OSError, ValueError):
            ok = False
        if ok:
            return truth
        return generate(out_dir, size=size, seed=seed, purchase_rate=purchase_rate)
