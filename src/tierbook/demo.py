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
  ``小票号, 会员卡号, 门店, 交易时间, 商品编码, 数量, 单价, 单据类型, 原小票号``.
  小票号 "P" + 8 digits (sequential in time, steps of 1-3), 交易时间 ``%Y/%m/%d %H:%M`` between 10:00
  and 21:59, 商品编码 "SKU" + 5 digits, 数量 int, 单价 2 decimals, 单据类型 销售 (sale) or 退货 (return),
  原小票号 = the returned sale's 小票号 on returns, empty otherwise.  Line amount = 数量 x 单价.
  Rows are in 小票号 order (= time order, so the 2031 typos sit among their 2025 neighbours); the
  lines of a receipt are consecutive.
* ``ecommerce_orders.csv`` -- online shop, UTF-8 (no BOM), one row per ORDER:
  ``order_id, member_id, order_time, order_amount, status, platform, ref_order_id``.
  order_id "E" + 9 digits (sequential in time), order_time ``%Y-%m-%d %H:%M:%S``, order_amount a
  string such as ``"¥1,234.50"`` / ``"-¥120.00"``, status ``paid`` / ``refunded``, platform
  ``app`` / ``web`` / ``mini-program``, ref_order_id = the refunded order_id on refunds.
* ``members.xlsx`` -- sheet ``会员``, header in row 1: ``会员卡号, 姓名, 手机号, 邮箱, 注册日期, 地区,
  注册渠道, 会员等级``.  注册日期 are real Excel date cells (yyyy-mm-dd); 手机号 is text.
* ``survey.csv`` -- UTF-8 **with BOM**: ``customer_id, response_date, nps, csat, comment``.
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
    nps  = clip(rint(nps_latent + e), 0, 10),          e ~ N(0, 1.5^2)
    csat = clip(rint(1 + (nps_latent + e) / 2.5 + h), 1, 5),   h ~ N(0, 0.5^2)

so a customer is a detractor (nps <= 6) with probability Phi((6.5 - nps_latent) / 1.5).  High-p
customers (p above the sample median of p over ALL customers) are far more often detractors:
TRUTH ``survey`` records the realised detractor share among respondents with an nps in each half
and the expected (model) share over all customers of each half.  max(1, round(0.02 rows)) rows
have a blank nps (csat only).  comment: short Chinese text matching the sentiment, or empty (45 %).

Experiment (experiment.csv)
---------------------------
Assigned 2025-10-01.  Eligible = customers alive on 2025-10-01 (alive at the end, or whose
dropout purchase is on/after 2025-10-01; all were born before).  Within each tier (the 会员等级
above) eligible customers are shuffled and split 50/50 (odd one to control): ``control`` /
``vip_coupon``.  Planted effect: for treated 金卡会员 only, every true order total dated
2025-10-01 .. 2025-10-30 is multiplied by 1.25 (rint to the cent) -- the exports carry the lifted
amounts; zero effect in 银卡会员 / 普通会员 and no effect on purchase frequency.  revenue_30d = sum of
the customer's true (gross, lifted) order totals in that window, converted_30d = 1 if any order.
TRUTH ``experiment`` records lift 0.25, lift tier, effect by tier, per-tier-per-arm n and the
realised per-arm means.

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

Example: the default demo (size=20000, seed=20240101, generator_version 2), ~1.5 s to generate
--------------------------------------------------------------------------------------------
102,724 true orders (51,189 POS / 51,535 online), total_revenue 31,097,438.33, 11,492 customers
alive at the end, 3,260 with a single order.  Rows: POS 91,163 (86,765 true sale lines), e-commerce
53,596, members 20,100, survey 5,000, experiment 12,417.  Dirt: returns 4,109 (2,056 POS + 2,053
e-com, 930,508.18 returned, 2,029 fully returned), cross-channel duplicates 773, exact duplicate
POS lines 434, missing member id 868, zero-amount lines 260, duplicate member rows 100, blank nps
100, plus the fixed 5 / 4 / 3 / 3.  Survey: median p 0.1198, detractor share 62.8 % (high p) vs
11.8 % (low p).  Experiment arms (control / vip_coupon): 金卡 293/293, 银卡 1056/1056, 普通 4860/4859.
Caveat for analysts: with ~300 金卡 customers per arm and heavy-tailed spend, revenue_30d is noisy:
in this draw the treated 金卡 mean is 688.13 against 509.53 in control, of which the lift itself
added 550.50 -> 688.13 (+25 %); the rest is chance (see ``experiment.observed``).
An analysis should report a confidence interval, not expect the point estimate to hit 25 %.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

__all__ = ["GENERATOR_VERSION", "EXPECTED_FILES", "generate", "ensure"]

GENERATOR_VERSION = 2

EXPECTED_FILES = (
    "pos_transactions.csv",
    "ecommerce_orders.csv",
    "members.xlsx",
    "survey.csv",
    "experiment.csv",
    "truth_customers.parquet",
    "truth_orders.parquet",
)
TRUTH_FILE = "TRUTH.json"

# --- calendar (day index 0 = 2024-01-01) ---------------------------------------------------------
_START = np.datetime64("2024-01-01", "D")
_BIRTH_END = 546  # 2025-06-30
_END = 730  # 2025-12-31
_TIER_DAY = 546  # 2025-06-30
_ASSIGN_DAY = 639  # 2025-10-01
_WINDOW_END = 668  # 2025-10-30
_Y2025 = 366  # 2025-01-01

# --- true parameters ------------------------------------------------------------------------------
BGNBD = {"r": 0.75, "alpha": 6.0, "a": 0.8, "b": 4.0, "time_unit": "W"}
GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "gamma": 150.0}
# False = textbook BG/NBD (dropout only after a repeat purchase). True = MBG/NBD-style dropout
# (possible right after the first purchase, Batislam et al. 2007). Changing it changes every file:
# bump GENERATOR_VERSION.
DROPOUT_AFTER_FIRST_PURCHASE = False
ONLINE_BETA = (1.5, 1.5)
NPS_INTERCEPT, NPS_SLOPE_P, NPS_NOISE_SD, CSAT_NOISE_SD = 9.0, -12.0, 1.5, 0.5
LIFT, LIFT_TIER = 0.25, "金卡会员"

RATES = {
    "returns": 0.04,
    "cross_channel_duplicates": 0.015,
    "exact_duplicate_pos_lines": 0.005,
    "missing_customer_id": 0.01,
    "zero_amount_lines": 0.003,
    "duplicate_member_rows": 0.005,
    "blank_nps": 0.02,
    "survey_share": 0.25,
}
FIXED_DIRT = {"negative_amount_not_return": 5, "future_dates": 4, "outliers": 3, "unparseable_dates": 3}
GARBAGE_TIMES = ("2025-13-45 99:99:99", "2025-02-30 25:61:00", "2025-00-00 00:00:00")

TIERS = ("金卡会员", "银卡会员", "普通会员")
REGIONS = ("华东", "华南", "华北", "华中", "西南", "西北", "东北")
REGION_W = (0.34, 0.18, 0.16, 0.12, 0.10, 0.05, 0.05)
STORES = (
    ("上海徐汇店", "华东"), ("上海浦东店", "华东"), ("杭州西湖店", "华东"), ("南京新街口店", "华东"),
    ("北京朝阳店", "华北"), ("北京西单店", "华北"), ("广州天河店", "华南"), ("深圳南山店", "华南"),
    ("成都春熙路店", "西南"), ("武汉江汉路店", "华中"),
)
PLATFORMS = ("app", "mini-program", "web")
PLATFORM_W = (0.5, 0.3, 0.2)
REG_CHANNELS = ("门店", "App", "小程序", "官网")
POS_HOUR_W = np.array([4, 6, 8, 6, 5, 5, 6, 8, 10, 10, 8, 5], float)  # 10:00 .. 21:59
ECOM_HOUR_W = np.array([2, 1, 1, .5, .5, .5, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 6, 7, 9, 11, 12, 10, 6])

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕"
SURNAME_W = np.array([7.2, 7.1, 6.8, 5.4, 4.5, 3.1, 2.2, 2.0, 1.9, 1.9] + [1.2] * 10 + [0.8] * (len(SURNAMES) - 20))
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞宇浩然子涵欣怡梓轩晨曦思雨佳琪俊博文"
PINYIN = ("wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun",
          "ma", "zhu", "hu", "guo", "he", "lin", "luo", "gao", "xiao", "ming", "hua", "jun", "fang",
          "wei", "lei", "ting", "yu", "xin")
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com")
EMAIL_W = (0.4, 0.25, 0.1, 0.08, 0.09, 0.08)

COMMENTS = {
    "promoter": ("很满意，会再来", "服务很好", "质量不错，推荐", "店员很热情", "物流很快", "性价比高"),
    "passive": ("还可以", "一般般", "价格有点贵", "东西不错但排队久", "包装一般"),
    "detractor": ("质量太差了", "服务态度不好", "退货太麻烦", "不会再买了", "发货太慢", "价格太贵，不值"),
}


def _fmt_cny(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def _money(cents) -> float:
    return round(int(cents) / 100, 2)


def _count(rate: float, base: int) -> int:
    return max(1, int(round(rate * base))) if base > 0 else 0


def _choose(rng, pool: np.ndarray, k: int) -> np.ndarray:
    k = min(k, pool.size)
    return np.sort(rng.choice(pool, size=k, replace=False)) if k else pool[:0]


def _hours(rng, n: int, weights: np.ndarray, first_hour: int) -> np.ndarray:
    """Seconds of day on whole minutes: hour drawn by weight (hour 0 = first_hour), uniform minute."""
    h = rng.choice(weights.size, size=n, p=weights / weights.sum()) + first_hour
    return h * 3600 + rng.integers(0, 60, n) * 60


def _datetimes(day: np.ndarray, sec: np.ndarray) -> np.ndarray:
    return (_START + day.astype("timedelta64[D]")).astype("datetime64[s]") + sec.astype("timedelta64[s]")


def _dates(day: np.ndarray) -> np.ndarray:
    return _START + np.asarray(day).astype("timedelta64[D]")


def _lexrank(*keys) -> np.ndarray:
    """Rank of each element under np.lexsort(keys) (last key primary)."""
    order = np.lexsort(keys)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank


def _seq_ids(rng, rank: np.ndarray, base: int) -> np.ndarray:
    steps = np.cumsum(rng.integers(1, 4, rank.size))
    return base + steps[rank]


# ==================================================================================================
def _simulate(size: int, seed: int):
    rng = np.random.default_rng(seed)
    n = int(size)
    if n < 1:
        raise ValueError("size must be >= 1")

    # ---- customers -------------------------------------------------------------------------------
    birth = rng.integers(0, _BIRTH_END + 1, n)
    same_day = rng.random(n) < 0.45
    reg = birth - np.where(same_day, 0, rng.integers(1, 366, n))
    perm = np.lexsort((birth, reg))  # ids numbered in registration order
    birth, reg = birth[perm], reg[perm]

    lam = rng.gamma(BGNBD["r"], 1.0 / BGNBD["alpha"], n)
    p_drop = rng.beta(BGNBD["a"], BGNBD["b"], n)
    nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["gamma"], n)
    online_share = rng.beta(*ONLINE_BETA, n)
    region = rng.choice(len(REGIONS), size=n, p=REGION_W)
    store_region = np.array([REGIONS.index(r) for _, r in STORES])
    store_w = np.array([REGION_W[r] for r in store_region])
    store_w = store_w / np.bincount(store_region, minlength=len(REGIONS))[store_region]
    store_w = store_w / store_w.sum()
    home_store = rng.choice(len(STORES), size=n, p=store_w)
    u = rng.random(n)
    for r in range(len(REGIONS)):  # home store in own region where the retailer has one
        cand = np.flatnonzero(store_region == r)
        m = region == r
        if cand.size:
            home_store[m] = cand[np.minimum((u[m] * cand.size).astype(int), cand.size - 1)]
    pref_platform = rng.choice(len(PLATFORMS), size=n, p=PLATFORM_W)

    # ---- purchase process (daily discrete, dropout after every purchase) -----------------------
    q_day = np.clip(lam / 7.0, 1e-12, 1.0)
    t = birth.copy()
    idx = np.arange(n)
    alive_end = np.zeros(n, bool)
    death_day = np.full(n, -1, np.int64)
    cust_parts, day_parts = [idx.copy()], [birth.copy()]
    first_round = True
    while idx.size:
        die = rng.random(idx.size) < p_drop[idx]
        if first_round and not DROPOUT_AFTER_FIRST_PURCHASE:
            die[:] = False
        first_round = False
        death_day[idx[die]] = t[idx[die]]
        idx = idx[~die]
        t[idx] += rng.geometric(q_day[idx])
        over = t[idx] > _END
        alive_end[idx[over]] = True
        idx = idx[~over]
        cust_parts.append(idx.copy())
        day_parts.append(t[idx].copy())
    o_cust = np.concatenate(cust_parts)
    o_day = np.concatenate(day_parts)
    srt = np.lexsort((o_day, o_cust))
    o_cust, o_day = o_cust[srt], o_day[srt]
    N = o_cust.size
    n_orders = np.bincount(o_cust, minlength=n)
    first_idx = np.concatenate([[0], np.cumsum(n_orders)[:-1]])

    o_online = rng.random(N) < online_share[o_cust]
    z = rng.gamma(GAMMA_GAMMA["p"], 1.0 / nu[o_cust])
    o_cents = np.maximum(100, np.rint(z * 100)).astype(np.int64)

    # ---- tiers at 2025-06-30 ----------------------------------------------------------------------
    rev_tier = np.zeros(n, np.int64)
    np.add.at(rev_tier, o_cust[o_day <= _TIER_DAY], o_cents[o_day <= _TIER_DAY])
    ranked = birth <= _TIER_DAY
    tier = np.full(n, 2)
    elig_rank = np.flatnonzero(ranked)
    order = elig_rank[np.lexsort((elig_rank, -rev_tier[elig_rank]))]
    n_gold, n_silver = int(round(0.05 * order.size)), int(round(0.20 * order.size))
    tier[order[:n_gold]] = 0
    tier[order[n_gold:n_gold + n_silver]] = 1

    # ---- experiment ------------------------------------------------------------------------------
    in_exp = (birth < _ASSIGN_DAY) & (alive_end | (death_day >= _ASSIGN_DAY))
    variant = np.full(n, -1)  # -1 not in experiment, 0 control, 1 vip_coupon
    for k in range(len(TIERS)):
        ids = rng.permutation(np.flatnonzero(in_exp & (tier == k)))
        variant[ids[: ids.size // 2]] = 1
        variant[ids[ids.size // 2:]] = 0
    in_win = (o_day >= _ASSIGN_DAY) & (o_day <= _WINDOW_END)
    lifted = in_win & (variant[o_cust] == 1) & (tier[o_cust] == TIERS.index(LIFT_TIER))
    cents_before_lift = o_cents.copy()
    o_cents[lifted] = np.rint(o_cents[lifted] * (1 + LIFT)).astype(np.int64)

    # ---- time of day, stores, platforms ----------------------------------------------------------
    o_sec = np.where(o_online, _hours(rng, N, ECOM_HOUR_W, 0) + rng.integers(0, 60, N),
                     _hours(rng, N, POS_HOUR_W, 10))
    o_store = np.where(rng.random(N) < 0.8, home_store[o_cust], rng.choice(len(STORES), N, p=store_w))
    o_platform = np.where(rng.random(N) < 0.7, pref_platform[o_cust],
                          rng.choice(len(PLATFORMS), N, p=PLATFORM_W))

    # ---- returns (chosen among all true orders) -----------------------------------------------
    n_ret = _count(RATES["returns"], N)
    ret = _choose(rng, np.flatnonzero(o_day <= _END - 1), n_ret)
    is_ret = np.zeros(N, bool)
    is_ret[ret] = True
    ret_day = np.minimum(o_day[ret] + rng.integers(1, 15, ret.size), _END)

    pos_o = np.flatnonzero(~o_online)
    ecom_o = np.flatnonzero(o_online)

    # ---- POS lines of true orders ----------------------------------------------------------------
    m = pos_o.size
    n_lines = rng.choice(np.array([1, 2, 3]), size=m, p=[0.5, 0.3, 0.2])
    w = rng.uniform(0.2, 1.0, (m, 3))
    w[np.arange(3)[None, :] >= n_lines[:, None]] = 0.0
    share = np.cumsum(w, 1) / w.sum(1, keepdims=True)
    pc = o_cents[pos_o]
    cum = np.floor(share * pc[:, None]).astype(np.int64)
    cum[np.arange(m), n_lines - 1] = pc
    cum = np.minimum(cum, pc[:, None])
    parts = np.diff(np.concatenate([np.zeros((m, 1), np.int64), cum], 1), axis=1)
    valid = np.arange(3)[None, :] < n_lines[:, None]
    l_order = np.repeat(np.arange(m), n_lines)  # index into pos_o
    l_no = np.nonzero(valid)[1]
    l_part = parts[valid]
    rq = rng.random(l_part.size)
    l_qty = np.where((l_part % 3 == 0) & (rq < 0.25), 3, np.where((l_part % 2 == 0) & (rq < 0.5), 2, 1))
    l_unit = l_part // l_qty
    n_sku = 600
    sku_codes = np.sort(rng.choice(np.arange(10000, 90000), n_sku, replace=False))
    sku_pop = 1.0 / np.arange(1, n_sku + 1) ** 0.8
    sku_pop = rng.permutation(sku_pop / sku_pop.sum())
    s0 = rng.choice(n_sku, size=m, p=sku_pop)
    step = rng.integers(1, 200, m)
    l_sku = sku_codes[(s0[l_order] + l_no * step[l_order]) % n_sku]
    line_first = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    n_true_lines = l_part.size

    # POS returns: one full line of the order
    pos_pos = np.full(N, -1)
    pos_pos[pos_o] = np.arange(m)
    ret_pos = ret[~o_online[ret]]
    ret_pos_day = ret_day[~o_online[ret]]
    rp = pos_pos[ret_pos]
    r_line = line_first[rp] + np.minimum((rng.random(rp.size) * n_lines[rp]).astype(int), n_lines[rp] - 1)
    r_sec = _hours(rng, rp.size, POS_HOUR_W, 10)
    r_full = n_lines[rp] == 1

    # e-com refunds
    ret_ec = ret[o_online[ret]]
    ret_ec_day = ret_day[o_online[ret]]
    full = rng.random(ret_ec.size) < 0.5
    frac = rng.uniform(0.3, 1.0, ret_ec.size)
    ref_cents = np.where(full, o_cents[ret_ec], np.rint(o_cents[ret_ec] * frac).astype(np.int64))
    ref_cents = np.clip(ref_cents, 1, o_cents[ret_ec])
    ref_sec = _hours(rng, ret_ec.size, ECOM_HOUR_W, 0) + rng.integers(0, 60, ret_ec.size)
    ref_full = ref_cents >= o_cents[ret_ec]

    # cross-channel duplicates
    cd = _choose(rng, ecom_o[~is_ret[ecom_o]], _count(RATES["cross_channel_duplicates"], ecom_o.size))
    cd_sku = sku_codes[rng.choice(n_sku, size=cd.size, p=sku_pop)]

    # gift lines and exact duplicate lines (disjoint non-returned POS orders)
    ok_pos = np.flatnonzero(~is_ret[pos_o])  # indices into pos_o
    gift_ord = _choose(rng, ok_pos, _count(RATES["zero_amount_lines"], n_true_lines))
    gift_sku = 90000 + rng.integers(0, 20, gift_ord.size)
    rest = np.setdiff1d(ok_pos, gift_ord)
    rest_lines = np.flatnonzero(np.isin(l_order, rest))
    dup_lines = _choose(rng, rest_lines, _count(RATES["exact_duplicate_pos_lines"], n_true_lines))

    # walk-ins (missing member id)
    n_walk = _count(RATES["missing_customer_id"], n_true_lines)
    walk_day = rng.integers(0, _END + 1, n_walk)
    walk_sec = _hours(rng, n_walk, POS_HOUR_W, 10)
    walk_store = rng.choice(len(STORES), n_walk, p=store_w)
    walk_nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["gamma"], n_walk)
    walk_cents = np.maximum(100, np.rint(rng.gamma(GAMMA_GAMMA["p"], 1.0 / walk_nu) * 100)).astype(np.int64)
    walk_sku = sku_codes[rng.choice(n_sku, size=n_walk, p=sku_pop)]

    def _extra_pos(k, lo_day):
        c = rng.integers(0, n, k)
        d = rng.integers(np.maximum(birth[c], lo_day), _END + 1)
        s = _hours(rng, k, POS_HOUR_W, 10)
        unit = np.rint(rng.uniform(5, 200, k) * 100).astype(np.int64)
        sku = sku_codes[rng.choice(n_sku, size=k, p=sku_pop)]
        return c, d, s, unit, sku

    fut = _extra_pos(FIXED_DIRT["future_dates"], _Y2025)
    outl = _extra_pos(FIXED_DIRT["outliers"], 0)

    # e-com extra rows
    def _extra_ecom(k):
        c = rng.integers(0, n, k)
        d = rng.integers(birth[c], _END + 1)
        s = _hours(rng, k, ECOM_HOUR_W, 0) + rng.integers(0, 60, k)
        cents = np.rint(rng.uniform(20, 800, k) * 100).astype(np.int64)
        plat = rng.choice(len(PLATFORMS), k, p=PLATFORM_W)
        return c, d, s, cents, plat

    neg = _extra_ecom(FIXED_DIRT["negative_amount_not_return"])
    unp = _extra_ecom(FIXED_DIRT["unparseable_dates"])

    # ================================================================================================
    # POS receipts: A true orders, B cross dups, C returns, D walk-ins, E future, F outliers
    r_day = np.concatenate([o_day[pos_o], o_day[cd], ret_pos_day, walk_day, fut[1], outl[1]])
    r_sec_all = np.concatenate([o_sec[pos_o], (o_sec[cd] // 60) * 60, r_sec, walk_sec, fut[2], outl[2]])
    rank = _lexrank(rng.random(r_day.size), r_sec_all, r_day)
    receipt_no = _seq_ids(rng, rank, 10_000_000)
    offs = np.cumsum([0, m, cd.size, rp.size, n_walk, fut[0].size, outl[0].size])
    rA, rB, rC, rD, rE, rF = (receipt_no[offs[i]:offs[i + 1]] for i in range(6))

    cols = {k: [] for k in ("rec", "line", "sub", "cust", "store", "day", "sec", "sku", "qty", "unit",
                            "ret", "orig", "year2031")}

    def add(rec, line, sub, cust, store, day, sec, sku, qty, unit, ret_flag, orig, y2031=False):
        k = np.asarray(rec).size
        for name, val in (("rec", rec), ("line", line), ("sub", sub), ("cust", cust), ("store", store),
                          ("day", day), ("sec", sec), ("sku", sku), ("qty", qty), ("unit", unit),
                          ("ret", ret_flag), ("orig", orig), ("year2031", y2031)):
            cols[name].append(np.broadcast_to(np.asarray(val), (k,)).copy())

    lo = pos_o[l_order]
    add(rA[l_order], l_no, 0, o_cust[lo], o_store[lo], o_day[lo], o_sec[lo], l_sku, l_qty, l_unit, 0, -1)
    go = pos_o[gift_ord]
    add(rA[gift_ord], 3, 0, o_cust[go], o_store[go], o_day[go], o_sec[go], gift_sku, 1, 0, 0, -1)
    do = pos_o[l_order[dup_lines]]
    add(rA[l_order[dup_lines]], l_no[dup_lines], 1, o_cust[do], o_store[do], o_day[do], o_sec[do],
        l_sku[dup_lines], l_qty[dup_lines], l_unit[dup_lines], 0, -1)
    add(rB, 0, 0, o_cust[cd], home_store[o_cust[cd]], o_day[cd], (o_sec[cd] // 60) * 60, cd_sku, 1,
        o_cents[cd], 0, -1)
    add(rC, 0, 0, o_cust[ret_pos], o_store[ret_pos], ret_pos_day, r_sec, l_sku[r_line], -l_qty[r_line],
        l_unit[r_line], 1, rA[rp])
    add(rD, 0, 0, -1, walk_store, walk_day, walk_sec, walk_sku, 1, walk_cents, 0, -1)
    add(rE, 0, 0, fut[0], home_store[fut[0]], fut[1], fut[2], fut[4], 1, fut[3], 0, -1, True)
    add(rF, 0, 0, outl[0], home_store[outl[0]], outl[1], outl[2], outl[4], 9999, outl[3], 0, -1)
    P = {k: np.concatenate(v) for k, v in cols.items()}
    psort = np.lexsort((P["sub"], P["line"], P["rec"]))
    P = {k: v[psort] for k, v in P.items()}

    # ---- e-commerce rows: A true orders, B refunds, C negative paid, D unparseable -----------------
    e_day = np.concatenate([o_day[ecom_o], ret_ec_day, neg[1], unp[1]])
    e_sec = np.concatenate([o_sec[ecom_o], ref_sec, neg[2], unp[2]])
    erank = _lexrank(rng.random(e_day.size), e_sec, e_day)
    order_no = _seq_ids(rng, erank, 100_000_000)
    eA = order_no[:ecom_o.size]  # ids of the true online orders
    n_before_unp = ecom_o.size + ret_ec.size + neg[0].size
    ec_pos = np.full(N, -1)
    ec_pos[ecom_o] = np.arange(ecom_o.size)
    E = {
        "id": order_no,
        "cust": np.concatenate([o_cust[ecom_o], o_cust[ret_ec], neg[0], unp[0]]),
        "day": e_day,
        "sec": e_sec,
        "cents": np.concatenate([o_cents[ecom_o], -ref_cents, -neg[3], unp[3]]),
        "refunded": np.concatenate([np.zeros(ecom_o.size, bool), np.ones(ret_ec.size, bool),
                                    np.zeros(neg[0].size + unp[0].size, bool)]),
        "platform": np.concatenate([o_platform[ecom_o], o_platform[ret_ec], neg[4], unp[4]]),
        "ref": np.concatenate([np.full(ecom_o.size, -1), eA[ec_pos[ret_ec]],
                               np.full(neg[0].size + unp[0].size, -1)]),
        "garbage": np.concatenate([np.full(n_before_unp, -1), np.arange(unp[0].size) % len(GARBAGE_TIMES)]),
    }
    esort = np.argsort(E["id"], kind="stable")
    E = {k: v[esort] for k, v in E.items()}

    # ---- survey ------------------------------------------------------------------------------------
    n_resp = int(round(RATES["survey_share"] * n))
    resp = np.sort(rng.choice(n, size=n_resp, replace=False)) if n_resp else np.zeros(0, int)
    k_ord = first_idx[resp] + np.minimum((rng.random(resp.size) * n_orders[resp]).astype(int),
                                         n_orders[resp] - 1)
    resp_day = np.minimum(o_day[k_ord] + rng.integers(1, 15, resp.size), _END)
    nps_latent = NPS_INTERCEPT + NPS_SLOPE_P * p_drop
    eps = rng.normal(0, NPS_NOISE_SD, resp.size)
    cont = nps_latent[resp] + eps
    nps = np.clip(np.rint(cont), 0, 10).astype(int)
    csat = np.clip(np.rint(1 + cont / 2.5 + rng.normal(0, CSAT_NOISE_SD, resp.size)), 1, 5).astype(int)
    n_blank = _count(RATES["blank_nps"], resp.size)
    blank = np.zeros(resp.size, bool)
    blank[_choose(rng, np.arange(resp.size), n_blank)] = True
    cat = np.where(nps >= 9, "promoter", np.where(nps >= 7, "passive", "detractor"))
    cat = np.where(blank, np.where(csat >= 4, "promoter", np.where(csat == 3, "passive", "detractor")), cat)
    has_comment = rng.random(resp.size) >= 0.45
    pick = rng.integers(0, 1000, resp.size)
    comment = [COMMENTS[c][k % len(COMMENTS[c])] if h else "" for c, k, h in zip(cat, pick, has_comment)]

    # ---- members -------------------------------------------------------------------------------------
    sur = rng.choice(len(SURNAMES), n, p=SURNAME_W / SURNAME_W.sum())
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = rng.integers(0, len(GIVEN), n)
    two = rng.random(n) < 0.7
    phone_pre = rng.choice(np.array([3, 5, 8]), n)
    phone_rest = rng.integers(0, 1_000_000_000, n)
    dom = rng.choice(len(EMAIL_DOMAINS), n, p=EMAIL_W)
    qq = rng.integers(10_000, 3_000_000_000, n)
    py1 = rng.integers(0, len(PINYIN), n)
    py2 = rng.integers(0, len(PINYIN), n)
    em_num = rng.integers(1, 1000, n)
    store_lean = online_share < 0.5
    ru = rng.random(n)
    reg_ch = np.where(store_lean, np.searchsorted(np.cumsum([0.7, 0.15, 0.1, 0.05]), ru, side="right"),
                      np.searchsorted(np.cumsum([0.2, 0.4, 0.3, 0.1]), ru, side="right"))
    reg_ch = np.minimum(reg_ch, len(REG_CHANNELS) - 1)
    n_mdup = _count(RATES["duplicate_member_rows"], n)
    mdup = _choose(rng, np.arange(n), n_mdup)

    # ---- assemble -------------------------------------------------------------------------------------
    return dict(
        n=n, birth=birth, reg=reg, lam=lam, p_drop=p_drop, nu=nu, online_share=online_share,
        region=region, home_store=home_store, alive_end=alive_end, death_day=death_day,
        tier=tier, variant=variant, in_exp=in_exp, rev_tier=rev_tier, nps_latent=nps_latent,
        o_cust=o_cust, o_day=o_day, o_cents=o_cents, cents_before_lift=cents_before_lift,
        o_online=o_online, o_sec=o_sec, lifted=lifted, in_win=in_win, n_orders=n_orders,
        pos_o=pos_o, ecom_o=ecom_o, n_lines=n_lines, rA=rA, eA=eA, ec_pos=ec_pos,
        ret=ret, ret_pos=ret_pos, ret_ec=ret_ec, r_line=r_line, l_qty=l_qty, l_unit=l_unit,
        r_full=r_full, ref_cents=ref_cents, ref_full=ref_full, cd=cd, rB=rB, gift_ord=gift_ord,
        dup_lines=dup_lines, l_part=l_part, walk_cents=walk_cents, fut=fut, outl=outl, neg=neg, unp=unp,
        P=P, E=E, resp=resp, resp_day=resp_day, nps=nps, csat=csat, blank=blank, comment=comment,
        sur=sur, g1=g1, g2=g2, two=two, phone_pre=phone_pre, phone_rest=phone_rest, dom=dom, qq=qq,
        py1=py1, py2=py2, em_num=em_num, reg_ch=reg_ch, mdup=mdup,
    )


# ==================================================================================================
def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_csv(path: Path, df: pd.DataFrame, encoding: str) -> None:
    text = df.to_csv(index=False, lineterminator="\n", float_format="%.2f")
    _write_bytes(path, text.encode(encoding))


def _write_parquet(path: Path, df: pd.DataFrame) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow", compression="snappy")
    _write_bytes(path, buf.getvalue())


_CORE_XML = (
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>tierbook.demo</dc:creator>'
    '<dcterms:created xsi:type="dcterms:W3CDTF">2026-01-05T09:00:00Z</dcterms:created>'
    '<dcterms:modified xsi:type="dcterms:W3CDTF">2026-01-05T09:00:00Z</dcterms:modified>'
    "</cp:coreProperties>"
)


def _xml_text(v: str) -> str:
    return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xlsx_rows_xml(rows, first_r: int, date_style: str) -> str:
    """sheetData rows exactly as openpyxl's write-only writer serialises str and date cells."""
    epoch = _dt.date(1899, 12, 30)
    out = []
    for r, row in enumerate(rows, start=first_r):
        cells = []
        for j, v in enumerate(row):
            ref = f"{chr(65 + j)}{r}"
            if isinstance(v, _dt.date):
                cells.append(f'<c r="{ref}" s="{date_style}" t="n"><v>{(v - epoch).days}</v></c>')
            else:
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{_xml_text(str(v))}</t></is></c>')
        out.append(f'<row r="{r}">{"".join(cells)}</row>')
    return "".join(out)


def _xlsx_bytes(sheet: str, header: list[str], rows) -> bytes:
    """An openpyxl workbook (header + first row) whose sheetData is then filled by string templating
    (openpyxl's per-cell writer takes ~2 s for 20k rows), checked against openpyxl's own rendering
    of the first row; re-zipped with fixed timestamps and properties so the bytes are reproducible."""
    import openpyxl

    rows = list(rows)
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(header)
    if rows:
        ws.append(rows[0])
    raw = io.BytesIO()
    wb.save(raw)
    sheet_name = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(raw) as zin:
        entries = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    fixed = []
    for name, data in entries:
        if name == "docProps/core.xml":
            data = _CORE_XML.encode("utf-8")
        elif name == sheet_name and len(rows) > 1:
            xml = data.decode("utf-8")
            m = re.search(r'<c r="[A-Z]+2" s="(\d+)" t="n">', xml)
            date_style = m.group(1) if m else "1"
            first = _xlsx_rows_xml(rows[:1], 2, date_style)
            if first in xml:  # our rendering matches openpyxl's: append the remaining rows
                xml = xml.replace(first, first + _xlsx_rows_xml(rows[1:], 3, date_style), 1)
                data = xml.encode("utf-8")
            else:  # pragma: no cover - unexpected openpyxl output: slow path
                wb = openpyxl.Workbook(write_only=True)
                ws = wb.create_sheet(sheet)
                for row in [header] + rows:
                    ws.append(row)
                raw = io.BytesIO()
                wb.save(raw)
                with zipfile.ZipFile(raw) as zin:
                    data = zin.read(sheet_name)
        fixed.append((name, data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in fixed:
            zi = zipfile.ZipInfo(name, date_time=(2026, 1, 5, 9, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            zout.writestr(zi, data)
    return out.getvalue()


def _iso(days) -> list[str]:
    return [str(d) for d in _dates(days)]


# ==================================================================================================
def generate(out_dir: Path, size: int = 20000, seed: int = 20240101) -> dict:
    """Write the demo client's raw exports and truth into ``out_dir``; return the truth dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_path = out_dir / TRUTH_FILE
    if truth_path.exists():  # an interrupted regeneration must not look complete
        truth_path.unlink()

    S = _simulate(size, seed)
    n = S["n"]
    cid = np.array([f"C{i + 1:06d}" for i in range(n)], dtype=object)

    # ---- POS --------------------------------------------------------------------------------------
    P = S["P"]
    dt = np.datetime_as_string(_datetimes(P["day"], P["sec"]), unit="m").tolist()
    ptime = [f"{'2031' if y else s[0:4]}/{s[5:7]}/{s[8:10]} {s[11:16]}" for s, y in zip(dt, P["year2031"])]
    store_names = np.array([s for s, _ in STORES], dtype=object)
    pos_df = pd.DataFrame({
        "小票号": [f"P{r:08d}" for r in P["rec"].tolist()],
        "会员卡号": np.where(P["cust"] >= 0, cid[np.maximum(P["cust"], 0)], ""),
        "门店": store_names[P["store"]],
        "交易时间": ptime,
        "商品编码": [f"SKU{s:05d}" for s in P["sku"].tolist()],
        "数量": P["qty"].astype(np.int64),
        "单价": [_fmt_cny(u) for u in P["unit"].tolist()],
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
        "status": np.where(Ed["refunded"], "refunded", "paid"),
        "platform": np.array(PLATFORMS, dtype=object)[Ed["platform"]],
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
    member_rows = []
    for i in range(n):
        row = [cid[i], names[i], phones[i], emails[i], reg_dates[i], REGIONS[S["region"][i]],
               REG_CHANNELS[S["reg_ch"][i]], tier_names[i]]
        member_rows.append(row)
        if i in mdup:
            member_rows.append(list(row))
    members_header = ["会员卡号", "姓名", "手机号", "邮箱", "注册日期", "地区", "注册渠道", "会员等级"]

    # ---- survey -------------------------------------------------------------------------------------
    resp = S["resp"]
    survey_df = pd.DataFrame({
        "customer_id": cid[resp],
        "response_date": _iso(S["resp_day"]),
        "nps": pd.array(np.where(S["blank"], 0, S["nps"]), dtype="Int64"),
        "csat": S["csat"],
        "comment": S["comment"],
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


def _truth(S, size, seed, pos_df, ecom_df, n_member_rows, survey_df, exp_df, rev30, n30) -> dict:
    o_cents, o_cust = S["o_cents"], S["o_cust"]
    pos_o, ecom_o = S["pos_o"], S["ecom_o"]
    N = o_cents.size

    # POS amounts by category (cents)
    true_pos = int(o_cents[pos_o].sum())
    cd_amt = int(o_cents[S["cd"]].sum())
    dup_amt = int((S["l_qty"][S["dup_lines"]] * S["l_unit"][S["dup_lines"]]).sum())
    ret_pos_amt = int((S["l_qty"][S["r_line"]] * S["l_unit"][S["r_line"]]).sum())
    walk_amt = int(S["walk_cents"].sum())
    fut_amt = int(S["fut"][3].sum())
    outl_amt = int(9999 * S["outl"][3].sum())
    P = S["P"]
    pos_total = int((P["qty"] * P["unit"]).sum())
    assert pos_total == true_pos + cd_amt + dup_amt - ret_pos_amt + walk_amt + fut_amt + outl_amt
    n_true_lines = int(S["l_part"].size)

    true_ec = int(o_cents[ecom_o].sum())
    ref_amt = int(S["ref_cents"].sum())
    neg_amt = int(S["neg"][3].sum())
    unp_amt = int(S["unp"][3].sum())
    ec_total = int(S["E"]["cents"].sum())
    assert ec_total == true_ec - ref_amt - neg_amt + unp_amt
    assert true_pos + true_ec == int(o_cents.sum())

    n_ret_pos, n_ret_ec = int(S["ret_pos"].size), int(S["ret_ec"].size)
    fully = int(S["r_full"].sum() + S["ref_full"].sum())

    dirt = {
        "returns": n_ret_pos + n_ret_ec,
        "returns_pos": n_ret_pos,
        "returns_ecom": n_ret_ec,
        "returns_amount": _money(ret_pos_amt + ref_amt),
        "returns_pos_amount": _money(ret_pos_amt),
        "returns_ecom_amount": _money(ref_amt),
        "returns_fully_returned_orders": fully,
        "cross_channel_duplicates": int(S["cd"].size),
        "cross_channel_duplicates_amount": _money(cd_amt),
        "exact_duplicate_pos_lines": int(S["dup_lines"].size),
        "exact_duplicate_pos_lines_amount": _money(dup_amt),
        "missing_customer_id": int(S["walk_cents"].size),
        "missing_customer_id_amount": _money(walk_amt),
        "zero_amount_lines": int(S["gift_ord"].size),
        "negative_amount_not_return": int(S["neg"][0].size),
        "negative_amount_not_return_amount": _money(-neg_amt),
        "future_dates": int(S["fut"][0].size),
        "future_dates_amount": _money(fut_amt),
        "outliers": int(S["outl"][0].size),
        "outliers_amount": _money(outl_amt),
        "unparseable_dates": int(S["unp"][0].size),
        "unparseable_dates_amount": _money(unp_amt),
        "duplicate_member_rows": int(S["mdup"].size),
        "blank_nps": int(S["blank"].sum()),
    }

    files = {
        "pos_transactions.csv": {
            "encoding": "gbk",
            "rows": int(len(pos_df)),
            "lines": {
                "true_sales": n_true_lines,
                "cross_channel_duplicates": dirt["cross_channel_duplicates"],
                "exact_duplicate_pos_lines": dirt["exact_duplicate_pos_lines"],
                "returns": n_ret_pos,
                "missing_customer_id": dirt["missing_customer_id"],
                "zero_amount_lines": dirt["zero_amount_lines"],
                "future_dates": dirt["future_dates"],
                "outliers": dirt["outliers"],
            },
            "receipts_true_orders": int(pos_o.size),
            "amounts": {
                "true_sales": _money(true_pos),
                "cross_channel_duplicates": _money(cd_amt),
                "exact_duplicate_pos_lines": _money(dup_amt),
                "returns": _money(-ret_pos_amt),
                "missing_customer_id": _money(walk_amt),
                "zero_amount_lines": 0.0,
                "future_dates": _money(fut_amt),
                "outliers": _money(outl_amt),
                "total": _money(pos_total),
            },
        },
        "ecommerce_orders.csv": {
            "encoding": "utf-8",
            "rows": int(len(ecom_df)),
            "lines": {
                "true_sales": int(ecom_o.size),
                "returns": n_ret_ec,
                "negative_amount_not_return": dirt["negative_amount_not_return"],
                "unparseable_dates": dirt["unparseable_dates"],
            },
            "amounts": {
                "true_sales": _money(true_ec),
                "returns": _money(-ref_amt),
                "negative_amount_not_return": _money(-neg_amt),
                "unparseable_dates": _money(unp_amt),
                "total": _money(ec_total),
            },
        },
        "members.xlsx": {"rows": int(n_member_rows), "sheet": "会员", "unique_members": int(S["n"])},
        "survey.csv": {"encoding": "utf-8-sig", "rows": int(len(survey_df))},
        "experiment.csv": {"encoding": "utf-8", "rows": int(len(exp_df))},
    }

    # survey truth
    p = S["p_drop"]
    med = float(np.median(p))
    high = p > med
    resp = S["resp"]
    has = ~S["blank"]
    det = S["nps"] <= 6
    rh, rl = has & high[resp], has & ~high[resp]
    exp_det = ndtr((6.5 - S["nps_latent"]) / NPS_NOISE_SD)
    survey = {
        "share_customers": RATES["survey_share"],
        "n_responses": int(resp.size),
        "blank_nps": dirt["blank_nps"],
        "formula": "nps = clip(rint(9 - 12*p + e), 0, 10), e ~ N(0, 1.5^2); "
                   "csat = clip(rint(1 + (9 - 12*p + e)/2.5 + h), 1, 5), h ~ N(0, 0.5^2)",
        "nps_intercept": NPS_INTERCEPT,
        "nps_slope_p": NPS_SLOPE_P,
        "nps_noise_sd": NPS_NOISE_SD,
        "csat_noise_sd": CSAT_NOISE_SD,
        "median_p": round(med, 6),
        "detractor_share_high_p": round(float(det[rh].mean()), 6) if rh.any() else None,
        "detractor_share_low_p": round(float(det[rl].mean()), 6) if rl.any() else None,
        "n_high_p_respondents_with_nps": int(rh.sum()),
        "n_low_p_respondents_with_nps": int(rl.sum()),
        "expected_detractor_share_high_p": round(float(exp_det[high].mean()), 6) if high.any() else None,
        "expected_detractor_share_low_p": round(float(exp_det[~high].mean()), 6) if (~high).any() else None,
    }

    # experiment truth
    tier, variant = S["tier"], S["variant"]
    arms = ("control", "vip_coupon")
    win = S["in_win"]
    rev30_nolift = np.zeros(S["n"], np.int64)
    np.add.at(rev30_nolift, o_cust[win], S["cents_before_lift"][win])
    n_by = {}
    observed = {}
    for k, tname in enumerate(TIERS):
        n_by[tname] = {}
        observed[tname] = {}
        for v, arm in enumerate(arms):
            mask = (tier == k) & (variant == v)
            n_by[tname][arm] = int(mask.sum())
            observed[tname][arm] = {
                "mean_revenue_30d": round(float(rev30[mask].mean()) / 100, 4) if mask.any() else None,
                "mean_revenue_30d_without_lift": (round(float(rev30_nolift[mask].mean()) / 100, 4)
                                                  if mask.any() else None),
                "conversion_rate": round(float((n30[mask] > 0).mean()), 6) if mask.any() else None,
            }
    lifted = S["lifted"]
    experiment = {
        "assigned_date": "2025-10-01",
        "window_start": "2025-10-01",
        "window_end": "2025-10-30",
        "treatment": "vip_coupon",
        "control": "control",
        "lift": LIFT,
        "lift_tier": LIFT_TIER,
        "lift_applies_to": "order totals of treated 金卡会员 in the window (not purchase frequency)",
        "effect_by_tier": {t: (LIFT if t == LIFT_TIER else 0.0) for t in TIERS},
        "n": n_by,
        "n_control": int((variant == 0).sum()),
        "n_treatment": int((variant == 1).sum()),
        "eligibility": "alive on 2025-10-01 (alive at end or dropout purchase on/after 2025-10-01); 50/50 within tier",
        "n_lifted_orders": int(lifted.sum()),
        "lift_revenue_added": _money(int((o_cents - S["cents_before_lift"]).sum())),
        "observed": observed,
    }

    tiers_counts = {t: int((tier == k).sum()) for k, t in enumerate(TIERS)}
    n_orders = S["n_orders"]
    return {
        "generator_version": GENERATOR_VERSION,
        "size": int(size),
        "seed": int(seed),
        "currency": "CNY",
        "observation": {"start": "2024-01-01", "end": "2025-12-31", "birth_start": "2024-01-01",
                        "birth_end": "2025-06-30"},
        "process": {
            "time_step": "D",
            "daily_purchase_probability": "min(lam/7, 1)",
            "max_orders_per_customer_per_day": 1,
            "dropout_after_first_purchase": DROPOUT_AFTER_FIRST_PURCHASE,
            "equivalent_model": ("MBG/NBD (dropout possible after every purchase, including the first)"
                                 if DROPOUT_AFTER_FIRST_PURCHASE else "BG/NBD"),
        },
        "bgnbd": dict(BGNBD),
        "gamma_gamma": dict(GAMMA_GAMMA),
        "expected_order_value": GAMMA_GAMMA["p"] * GAMMA_GAMMA["gamma"] / (GAMMA_GAMMA["q"] - 1),
        "n_customers": int(S["n"]),
        "n_orders": int(N),
        "n_orders_pos": int(pos_o.size),
        "n_orders_ecom": int(ecom_o.size),
        "total_revenue": _money(int(o_cents.sum())),
        "net_revenue": _money(int(o_cents.sum()) - ret_pos_amt - ref_amt),
        "n_alive_at_end": int(S["alive_end"].sum()),
        "n_one_order_customers": int((n_orders == 1).sum()),
        "channels": {"online_share_beta": list(ONLINE_BETA), "stores": [s for s, _ in STORES],
                     "platforms": list(PLATFORMS)},
        "tiers": {"reference_date": "2025-06-30", "rule": "rank of true gross revenue to 2025-06-30: "
                  "top 5% 金卡会员, next 20% 银卡会员, rest 普通会员", "counts": tiers_counts},
        "survey": survey,
        "experiment": experiment,
        "dirt": dirt,
        "files": files,
    }


def ensure(out_dir: Path, size: int, seed: int) -> dict:
    """Return the stored truth if ``out_dir`` is a complete demo of (size, seed); else regenerate."""
    out_dir = Path(out_dir)
    truth_path = out_dir / TRUTH_FILE
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        ok = (truth.get("size") == int(size) and truth.get("seed") == int(seed)
              and truth.get("generator_version") == GENERATOR_VERSION
              and all((out_dir / f).is_file() for f in EXPECTED_FILES))
    except (OSError, ValueError):
        ok = False
    if ok:
        return truth
    return generate(out_dir, size=size, seed=seed)
