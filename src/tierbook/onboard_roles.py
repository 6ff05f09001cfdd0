"""What a column is, for ``make init`` (``tierbook.onboard``): the role names (the data contract's
column names) with their Chinese and English synonyms, the evidence in the values (date formats
and parse rates, numbers, 0-10 / 1-5 scores, ids, phones, e-mails, yes/no flags), the table a set
of roles makes, and the masking of personal data for the profile page. Pure functions of a
column's name and values; nothing here reads a file.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ingest import parse_numbers
from .privacy import mask_text

# column-name synonyms per role (compared after lower-casing and removing spaces, _ and -)
NAMES: dict[str, tuple[str, ...]] = {
    "customer_id": ("customerid", "custid", "memberid", "clientid", "userid", "buyerid", "会员卡号", "会员号", "会员id", "会员编号",
                    "客户id", "客户编号", "客户号", "用户id", "卡号"),
    "order_id": ("orderid", "orderno", "ordernumber", "invoiceno", "invoice", "invoiceid", "receiptno", "receiptid", "transactionid",
                 "订单号", "订单编号", "小票号", "单号", "流水号", "交易号", "单据号"),
    "order_date": ("orderdate", "ordertime", "orderdatetime", "invoicedate", "transactiondate", "transactiontime", "purchasedate",
                   "date", "datetime", "交易时间", "订单时间", "下单时间", "交易日期", "订单日期", "购买日期", "购买时间", "销售日期", "日期", "时间"),
    "amount": ("amount", "orderamount", "total", "totalamount", "sales", "salesamount", "revenue", "payment", "paidamount", "dollarvalue",
               "金额", "订单金额", "实付金额", "销售额", "交易金额", "实收金额", "支付金额", "消费金额"),
    "quantity": ("quantity", "qty", "units", "numberofcds", "数量", "件数", "购买数量"),
    "unit_price": ("unitprice", "price", "单价", "价格", "售价"),
    "order_status": ("status", "orderstatus", "doctype", "documenttype", "transactiontype", "单据类型", "状态", "订单状态", "交易类型"),
    "original_order_id": ("reforderid", "originalorderid", "originalinvoice", "refundorderid", "原小票号", "原订单号", "原单号"),
    "product_id": ("productid", "sku", "stockcode", "itemid", "productcode", "商品编码", "商品id", "货号", "条码", "商品编号"),
    "channel": ("channel", "saleschannel", "渠道", "销售渠道"),
    "store": ("store", "shop", "platform", "storename", "门店", "店铺", "平台", "门店名称"),
    "currency": ("currency", "currencycode", "币种", "货币"),
    "return_flag": ("isreturn", "returnflag", "returned", "refunded", "isrefund", "refundflag", "是否退货", "是否退款", "退货标志",
                    "退货标记", "退款标志"),
    "category": ("category", "productcategory", "品类", "类别", "商品类别", "分类", "类目"),
    "discount": ("discount", "coupon", "discountamount", "折扣", "优惠", "优惠金额", "折扣金额"),
    "cost": ("cost", "cogs", "costamount", "成本", "成本价"),
    "margin": ("margin", "grossmargin", "grossprofit", "毛利", "毛利额"),
    "region": ("region", "country", "province", "state", "地区", "区域", "省份", "国家", "大区"),
    "city": ("city", "城市"),
    "gender": ("gender", "sex", "性别"),
    "birth_date": ("birthdate", "birthday", "dob", "dateofbirth", "出生日期", "生日"),
    "age": ("age", "年龄"),
    "signup_date": ("signupdate", "registrationdate", "registerdate", "joindate", "createdate", "注册日期", "注册时间", "入会日期", "开卡日期"),
    "signup_channel": ("signupchannel", "registrationchannel", "source", "注册渠道", "来源渠道", "来源"),
    "member_tier": ("membertier", "memberlevel", "tier", "level", "会员等级", "等级", "会员级别"),
    "industry": ("industry", "行业"),
    "company_size": ("companysize", "employees", "headcount", "员工数", "企业规模", "员工人数"),
    "name": ("name", "customername", "fullname", "membername", "姓名", "客户姓名", "名字", "会员姓名"),
    "phone": ("phone", "mobile", "tel", "telephone", "phonenumber", "手机号", "手机", "电话", "联系电话", "手机号码"),
    "email": ("email", "mail", "emailaddress", "邮箱", "电子邮件", "电子邮箱"),
    "address": ("address", "shippingaddress", "地址", "收货地址", "详细地址"),
    "id_number": ("idnumber", "idcard", "nationalid", "身份证号", "身份证", "证件号"),
    "response_date": ("responsedate", "surveydate", "answerdate", "submittime", "回答日期", "调查日期", "提交时间", "填写时间"),
    "nps": ("nps", "recommend", "likelihoodtorecommend", "npsscore", "推荐意愿", "推荐度", "推荐指数"),
    "csat": ("csat", "satisfaction", "csatscore", "满意度", "总体满意度"),
    "comment": ("comment", "comments", "feedback", "text", "评论", "意见", "留言", "评价", "建议"),
    "variant": ("variant", "group", "arm", "treatment", "segment", "testgroup", "实验组", "分组", "组别"),
    "assigned_date": ("assigneddate", "assignmentdate", "assigndate", "分组日期", "分配日期"),
    "stratum": ("stratum", "strata", "分层", "层级"),
    "pre_value": ("prevalue", "preperiodspend", "prespend", "history", "实验前消费"),
    "item_product": ("itemproduct", "产品评分", "商品质量"),
    "item_service": ("itemservice", "服务评分", "服务"),
    "item_delivery": ("itemdelivery", "物流评分", "物流", "配送"),
    "item_price": ("itemprice", "价格评分"),
    "item_staff": ("itemstaff", "员工评分"),
    "item_experience": ("itemexperience", "体验评分"),
}
# when no name matches exactly: parts of a name that suggest a role (lower confidence, the values must agree);
# checked in this order, so 收货人手机 is a phone before it is a name
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("email", ("email", "邮箱", "邮件")),
    ("phone", ("手机", "电话", "phone", "mobile")),
    ("id_number", ("身份证", "证件")),
    ("address", ("地址", "address")),
    ("name", ("姓名", "收货人", "收件人", "联系人", "customername", "buyername")),
    ("return_flag", ("是否退", "退货标", "退款标", "isreturn", "isrefund", "returnflag", "refundflag")),
    ("original_order_id", ("原订单", "原小票", "原单")),
    ("order_id", ("订单编号", "订单号", "小票号", "单据号", "orderid", "orderno", "invoiceno")),
    ("customer_id", ("会员卡", "会员号", "会员id", "会员名", "买家id", "客户id", "客户编号", "customerid", "memberid", "userid", "buyerid")),
    ("product_id", ("商品编码", "商品id", "sku", "productid")),
    ("unit_price", ("单价", "unitprice")),
    ("quantity", ("数量", "quantity", "qty")),
    ("amount", ("金额", "实付", "实收", "应付", "amount", "revenue")),
    ("category", ("品类", "类目", "category")),
    ("store", ("门店", "店铺", "store", "shop")),
    ("channel", ("渠道", "channel")),
    ("order_status", ("状态", "status")),
    ("date", ("时间", "日期", "date", "time")),
)
# a yes/no column saying the row is a return: mapped to order_status with an `equals` rule on its yes values
FLAG_YES = ("是", "y", "yes", "true", "1", "已退货", "已退款", "退货", "退款", "return", "returned", "refunded")
# roles each table can hold (the data contract plus the experiment's outcomes)
TABLE_ROLES = {
    "transactions": ["customer_id", "order_id", "order_date", "amount", "quantity", "unit_price", "order_status", "original_order_id",
                     "product_id", "channel", "store", "currency", "category", "discount", "cost", "margin", "region"],
    "customers": ["customer_id", "signup_date", "region", "city", "gender", "birth_date", "age", "signup_channel", "member_tier",
                  "industry", "company_size", "name", "phone", "email", "address", "id_number"],
    "survey": ["customer_id", "response_date", "nps", "csat", "comment", "channel", "item_product", "item_service", "item_delivery",
               "item_price", "item_staff", "item_experience"],
    "experiment": ["customer_id", "variant", "assigned_date", "stratum", "cost", "pre_value"],
}
PII = {"name", "phone", "email", "address", "id_number"}
DATE_ROLES = {"order_date", "signup_date", "birth_date", "response_date", "assigned_date"}
NUMBER_ROLES = {"amount", "quantity", "unit_price", "discount", "cost", "margin", "age", "company_size", "pre_value",
                "item_product", "item_service", "item_delivery", "item_price", "item_staff", "item_experience"}
RETURN_WORDS = ("退货", "退款", "已退款", "取消", "已取消", "refunded", "refund", "return", "returned", "cancelled", "canceled")
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d",
                "%Y/%m/%d", "%Y%m%d", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y年%m月%d日")
PHONE = re.compile(r"^(\+?86[- ]?)?1[3-9]\d{9}$|^\+\d{8,15}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
OUTCOME_WORDS = re.compile(r"revenue|convert|conversion|spend|visit|order|purchase|click|retain|转化|收入|消费|下单|访问|留存")
CURRENCY_SYMBOLS = {"¥": "CNY", "￥": "CNY", "£": "GBP", "€": "EUR", "$": "USD"}


def normalise(name: str) -> str:
    return re.sub(r"[\s_\-./()（）]+", "", str(name).strip().lower())


@dataclass
class ColumnGuess:
    column: str
    role: str | None  # a contract column, "outcome", or None (unknown)
    confidence: str  # high | medium | low
    evidence: str
    missing_share: float
    distinct: int | None
    date_format: str | None = None
    example: str = ""  # a masked example value for the page
    pii: str | None = None  # name / phone / email / address / id_number when the column holds personal data, whatever its table
    value_range: str = ""  # min..max of the numbers or dates (never for personal data); from the full scan where possible


# --------------------------------------------------------------------------- evidence from values


def date_parse(values: pd.Series) -> tuple[float, str | None]:
    """(share of values parsing as dates, the best format); Excel date cells count as parsed (format None)."""
    v = values.dropna()
    if v.empty:
        return 0.0, None
    if all(isinstance(x, (dt.date, pd.Timestamp, np.datetime64)) for x in v.head(200)):
        return 1.0, None
    text = v.astype(str).str.strip()
    head = text.head(2000)
    best, best_rate = None, 0.0
    for fmt in DATE_FORMATS:
        rate = pd.to_datetime(head, format=fmt, errors="coerce").notna().mean()
        if rate > best_rate:
            best, best_rate = fmt, rate
        if rate == 1.0:
            break
    if best is None:
        return 0.0, None
    rate = pd.to_datetime(text, format=best, errors="coerce").notna().mean()
    return float(rate), best


def number_share(values: pd.Series) -> float:
    v = values.dropna()
    if v.empty:
        return 0.0
    return float(parse_numbers(v.astype(str)).notna().mean())


def _facts(values: pd.Series) -> dict:
    v = values.dropna()
    text = v.astype(str).str.strip()
    text = text[text != ""]
    n = max(len(text), 1)
    nums = parse_numbers(text) if len(text) else pd.Series(dtype=float)
    numeric = float(nums.notna().mean()) if len(text) else 0.0
    ints = nums.dropna()
    integer = bool(len(ints)) and bool((ints == ints.round()).all())
    return {
        "n": len(text), "distinct": int(text.nunique()), "distinct_share": text.nunique() / n, "numeric": numeric, "integer": integer,
        "min": float(ints.min()) if len(ints) else None, "max": float(ints.max()) if len(ints) else None,
        "negative": float((ints < 0).mean()) if len(ints) else 0.0,
        "phone": float(text.str.replace(r"[\s-]", "", regex=True).str.match(PHONE).mean()) if len(text) else 0.0,
        "email": float(text.str.match(EMAIL).mean()) if len(text) else 0.0,
        "cjk_name": float(text.str.fullmatch(r"[\u4e00-\u9fff]{2,4}").mean()) if len(text) else 0.0,
        "money": next((sym for sym in CURRENCY_SYMBOLS if text.head(500).str.contains(re.escape(sym)).any()), None),
        "text": text,
    }


def name_roles(column: str) -> list[str]:
    key = normalise(column)
    exact = [role for role, names in NAMES.items() if key in names]
    if exact:
        return exact
    if key.startswith("item") and key[4:] in {"product", "service", "delivery", "price", "staff", "experience"}:
        return [f"item_{key[4:]}"]
    return []


def _value_check(role: str, f: dict, date_rate: float, date_fmt: str | None) -> tuple[bool, str]:
    """Do the values support the role? (ok, evidence)."""
    pct = lambda x: f"{x:.1%}"  # noqa: E731
    if role in DATE_ROLES:
        fmt = f" as {date_fmt}" if date_fmt else " (date cells)" if date_rate else " as a date"
        return date_rate >= 0.9, f"{pct(date_rate)} parse{fmt}"
    if role in ("nps",):
        ok = f["numeric"] >= 0.95 and f["integer"] and f["min"] is not None and 0 <= f["min"] and f["max"] <= 10
        return ok, f"integers {f['min']:g}..{f['max']:g}" if f["min"] is not None else "not numeric"
    if role == "csat":
        ok = f["numeric"] >= 0.95 and f["integer"] and f["min"] is not None and 1 <= f["min"] and f["max"] <= 5
        return ok, f"integers {f['min']:g}..{f['max']:g}" if f["min"] is not None else "not numeric"
    if role in NUMBER_ROLES:
        return f["numeric"] >= 0.9, f"{pct(f['numeric'])} numeric" + (f" ({f['money']} amounts)" if f["money"] else "")
    if role == "phone":
        return f["phone"] >= 0.5, f"{pct(f['phone'])} look like phone numbers"
    if role == "email":
        return f["email"] >= 0.5, f"{pct(f['email'])} look like e-mail addresses"
    if role == "return_flag":
        text = f["text"].str.lower()
        yes = sorted(set(text.unique()) & set(FLAG_YES))
        return f["distinct"] <= 3 and len(yes) == 1, (f"a yes/no column, {yes[0]!r} on {(text == yes[0]).mean():.1%} of rows" if yes
                                                       else f"{f['distinct']:,} distinct values, none of them a yes")
    if role in ("customer_id", "order_id", "product_id", "original_order_id"):
        return f["n"] > 0, f"{f['distinct']:,} distinct of {f['n']:,}"
    return True, f"{f['distinct']:,} distinct values"


def guess_column(column: str, values: pd.Series) -> tuple[list[str], ColumnGuess]:
    """Candidate roles (best first) and the evidence for the first one; the table decides later."""
    f = _facts(values)
    missing = 1 - f["n"] / max(len(values), 1)
    date_rate, date_fmt = date_parse(values) if f["numeric"] < 0.99 or f["integer"] else (0.0, None)
    example = "" if f["text"].empty else str(f["text"].iloc[0])[:40]
    candidates, rejected = [], []
    for role in name_roles(column):
        ok, why = _value_check(role, f, date_rate, date_fmt)
        if ok:
            candidates.append((role, "high", f"name; {why}"))
        else:
            rejected.append(f"the name says {role} but {why}")
    if not candidates and not name_roles(column):  # a part of the name, confirmed by the values
        key = normalise(column)
        for role, parts in KEYWORDS:
            part = next((x for x in parts if x in key), None)
            if part is None:
                continue
            ok, why = _value_check("order_date" if role == "date" else role, f, date_rate, date_fmt)
            if ok:
                candidates.append((role, "medium", f"name contains {part!r}; {why}"))
                break
            rejected.append(f"the name suggests {role} but {why}")
    if not candidates:  # value evidence alone
        if f["email"] >= 0.9:
            candidates.append(("email", "medium", f"{f['email']:.0%} look like e-mail addresses"))
        elif f["phone"] >= 0.9:
            candidates.append(("phone", "medium", f"{f['phone']:.0%} look like phone numbers"))
        elif date_rate >= 0.95 and not (f["numeric"] > 0.99 and date_fmt != "%Y%m%d"):
            candidates.append(("date", "medium", f"{date_rate:.1%} parse as {date_fmt or 'date cells'}"))
        elif f["cjk_name"] >= 0.9 and f["distinct_share"] > 0.5:
            candidates.append(("name", "medium", f"{f['cjk_name']:.0%} look like Chinese personal names"))
    guess = ColumnGuess(column, None, "low", "", float(missing), f["distinct"], date_fmt if date_rate >= 0.9 else None, example)
    if candidates:
        guess.role, guess.confidence, guess.evidence = candidates[0]
    else:
        personal = f["phone"] > 0 or f["email"] > 0  # a range would show a phone number
        kind = (f"numeric {f['min']:g}..{f['max']:g}" if f["numeric"] >= 0.9 and f["min"] is not None and not personal
                else f"text, {f['distinct']:,} distinct values")
        guess.evidence = "; ".join(rejected[:1] + [kind])
    if guess.role in PII:
        guess.pii = guess.role
    elif guess.role is None and (f["phone"] >= 0.5 or f["email"] >= 0.5):  # unnamed but personal: masked all the same
        guess.pii = "phone" if f["phone"] >= f["email"] else "email"
    guess._facts = f  # used by the table-level rules below
    return [c[0] for c in candidates], guess


# --------------------------------------------------------------------------- tables


def classify(columns: list[ColumnGuess], frame: pd.DataFrame, file_name: str) -> tuple[str, str]:
    """What the file is, from the roles found (and the file name when roles are ambiguous)."""
    roles = {c.role for c in columns if c.role}
    dates = [c for c in columns if c.role in DATE_ROLES or c.role == "date"]
    amount = "amount" in roles or {"quantity", "unit_price"} <= roles
    cid = next((c for c in columns if c.role == "customer_id"), None)
    variant = next((c for c in columns if c.role == "variant"), None)
    if variant is not None and 2 <= (variant.distinct or 0) <= 8:
        return "experiment", f"a variant column ({variant.column}: {variant.distinct} arms)"
    if roles & {"nps", "csat"}:
        return "survey", "score columns (" + ", ".join(c.column for c in columns if c.role in ("nps", "csat")) + ")"
    repeated = cid is not None and cid.distinct is not None and cid.distinct < 0.9 * getattr(cid, "_facts", {}).get("n", 0)
    if cid is not None and dates and amount and (not roles & PII or "order_id" in roles or repeated):
        why = f"customer id ({cid.column}), a date ({dates[0].column}) and amounts"
        return "transactions", why + ("; its personal-data columns are not read" if roles & PII else "")
    if cid is not None and (roles & (PII | {"signup_date", "gender", "member_tier", "birth_date", "region"})):
        unique = cid.distinct is not None and cid.distinct >= 0.9 * max(len(frame) - int(cid.missing_share * len(frame)), 1)
        if unique:
            return "customers", f"one row per customer ({cid.column} {cid.distinct:,} distinct) with attributes"
    return "unknown", "no set of columns that makes a transactions, customers, survey or experiment table"


def settle_roles(columns: list[ColumnGuess], table: str) -> None:
    """Keep the roles the table can hold (one column per role, the most confident first); resolve
    generic dates to the table's date role; experiment numbers become outcomes."""
    allowed = set(TABLE_ROLES.get(table, []))
    date_role = {"transactions": "order_date", "customers": "signup_date", "survey": "response_date", "experiment": "assigned_date"}.get(table)
    if table == "experiment":
        for c in columns:
            if c.role in ("member_tier", "segment") and "stratum" not in {x.role for x in columns}:
                c.role, c.evidence = "stratum", f"{c.evidence}; the tier at assignment"
    taken: set[str] = set()
    status = any(c.role == "order_status" for c in columns)
    for c in columns:
        if c.role == "return_flag":
            c.flag = True
            c.role = "order_status" if table == "transactions" and not status else None
            c.evidence += "" if c.role else ("; a return flag next to a status column: make a rule on one of them" if status else "")
            status = status or c.role is not None
    for c in sorted(columns, key=lambda c: {"high": 0, "medium": 1, "low": 2}[c.confidence]):
        if c.role == "date" and date_role and date_role not in taken:
            c.role = date_role
        if c.role in ("region", "store", "channel") and table == "experiment":
            c.role = None
        if c.role in PII and c.role not in allowed:  # c.pii says what it is; the source does not read it
            c.role, c.confidence = None, "high"
        if c.role is not None and (c.role not in allowed or c.role in taken):
            c.evidence = f"looks like {c.role}, " + ("already mapped" if c.role in taken else f"not part of a {table} table") + f"; {c.evidence}"
            c.role, c.confidence = None, "low"
        if c.role:
            taken.add(c.role)
    if table == "experiment":
        for c in columns:
            f = getattr(c, "_facts", {})
            if c.role is None and f.get("numeric", 0) >= 0.99 and OUTCOME_WORDS.search(normalise(c.column)):
                c.role, c.confidence = "outcome", "medium"
                c.evidence = f"an outcome by its name, {f['numeric']:.0%} numeric; check it is measured after assignment"


def mask(value, role: str | None) -> str:
    """A value for the page: PII masked (138****1234, w***@qq.com, 王**), the rest as is."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)
    if role not in PII:
        compact = re.sub(r"[\s-]", "", text)
        role = "phone" if PHONE.match(compact) else "email" if EMAIL.match(text.strip()) else role
    if role == "phone":
        digits = re.sub(r"\D", "", text)
        return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "•••"
    if role == "email":
        user, _, domain = text.partition("@")
        return (user[:1] + "***@" + domain) if domain else "•••"
    if role == "name":
        return text[:1] + "*" * max(len(text) - 1, 1)
    if role in ("address", "id_number"):
        return "•••"
    # a phone number, e-mail address or id number inside free text (a comment, a note): as the report masks them
    return mask_text(text)[:60]
