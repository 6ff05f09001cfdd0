"""Calendar, true parameters, name and place pools and small helpers shared by the demo generator."""

from __future__ import annotations

import numpy as np

GENERATOR_VERSION = 6

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
# the customers' mean purchase rate per week, r / alpha: the default demo's. ``demo.purchase_rate`` sets another one
# (alpha = r / rate, every other parameter the same): 0.25 buys about 10.2 lines a customer instead of 7.2, the
# "1M customers = 10M transactions" of make bench
PURCHASE_RATE = BGNBD["r"] / BGNBD["alpha"]
GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "gamma": 150.0}
# False = textbook BG/NBD (dropout only after a repeat purchase). True = MBG/NBD-style dropout
# (possible right after the first purchase, Batislam et al. 2007). Changing it changes every file:
# bump GENERATOR_VERSION.
DROPOUT_AFTER_FIRST_PURCHASE = False
ONLINE_BETA = (1.5, 1.5)
NPS_INTERCEPT, NPS_SLOPE_P, NPS_NOISE_SD, CSAT_NOISE_SD = 9.0, -12.0, 1.5, 0.5
# Survey item scores (1-5, independent of each other and of p) and their planted effect on the 0-10
# score: NPS points per item point. Together with the remaining noise they keep the score's noise
# SD at NPS_NOISE_SD: residual SD = sqrt(1.5^2 - sum(w^2) x Var(item)) = 1.109.
ITEM_WEIGHTS = {"delivery": 0.3, "product": 0.7, "service": 0.5}
ITEM_PROBS = (0.05, 0.10, 0.25, 0.35, 0.25)  # P(item = 1 .. 5): mean 3.65, variance 1.2275
LIFT, LIFT_TIER = 0.5, "金卡会员"

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
# Planted personal data (generator v6): some survey comments carry the respondent's own phone number or
# e-mail address, as real comments do; the report must mask them (tierbook.privacy). Share of the
# written comments that get a phone, and again an e-mail (at least one each when there are two comments).
CONTACT_SHARE = 0.04
CONTACT_PHRASES = {"phone": "，有问题请打我电话{}", "email": "，结果请发邮箱 {}"}
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
# Planted for the profile section: customers in the top REGION_TILT_TOP of true value (expected spend
# per week while alive, lam x p / nu) live in 华东 with probability REGION_W_TOP[0] instead of 0.34.
REGION_TILT_TOP = 0.10
REGION_W_TOP = (0.60,) + tuple(round(w * 0.40 / 0.66, 6) for w in REGION_W[1:])
# Categories of a sale line, their gross margins (cost = amount x (1 - margin)), and the planted skew:
# a customer's FIRST order is 美妆 (cosmetics) with probability 0.45 instead of 0.12.
CATEGORIES = ("服装", "美妆", "食品", "家居", "数码")
CATEGORY_W = (0.30, 0.12, 0.28, 0.18, 0.12)
FIRST_CATEGORY_W = (0.20, 0.45, 0.15, 0.12, 0.08)
CATEGORY_MARGIN = (0.55, 0.65, 0.25, 0.40, 0.12)
DISCOUNT_BETA = (0.8, 2.4)  # per-customer probability that an online order used a coupon (mean 0.25)
DISCOUNT_RANGE = (0.05, 0.25)  # coupon value as a share of the amount paid
GENDERS, GENDER_W = ("女", "男"), (0.55, 0.45)
AGE_RANGE = (18, 70)  # age at 2025-12-31, triangular with mode 32; 3 % of members leave 性别 and 出生日期 blank
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


def gamma_rate(purchase_rate: float) -> float:
    """The Gamma rate alpha of the purchase rates whose mean is ``purchase_rate`` a week (shape r fixed): 6.0 for 0.125."""
    return BGNBD["r"] / purchase_rate


def _fmt_cny(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def _fmt_signed(c: int) -> str:
    return ("-" if c < 0 else "") + _fmt_cny(abs(c))


def _cost(cents: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """Cost of goods in cents: amount x (1 - the category's margin), rounded half away from zero."""
    raw = np.asarray(cents, np.float64) * (1.0 - np.asarray(CATEGORY_MARGIN)[cat])
    return (np.sign(raw) * np.floor(np.abs(raw) + 0.5)).astype(np.int64)


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
