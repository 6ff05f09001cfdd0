"""Writing the demo's raw exports (CSV, a reproducible xlsx, Parquet) atomically, and the truth dictionary."""

from __future__ import annotations

import datetime as _dt
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ._common import (
    AGE_RANGE,
    BGNBD,
    CATEGORIES,
    CATEGORY_MARGIN,
    CATEGORY_W,
    CSAT_NOISE_SD,
    DISCOUNT_BETA,
    DISCOUNT_RANGE,
    DROPOUT_AFTER_FIRST_PURCHASE,
    FIRST_CATEGORY_W,
    GAMMA_GAMMA,
    GENDER_W,
    GENDERS,
    GENERATOR_VERSION,
    ITEM_PROBS,
    ITEM_WEIGHTS,
    LIFT,
    LIFT_TIER,
    NPS_INTERCEPT,
    NPS_NOISE_SD,
    NPS_SLOPE_P,
    ONLINE_BETA,
    PLATFORMS,
    RATES,
    REGION_TILT_TOP,
    REGION_W,
    REGION_W_TOP,
    REGIONS,
    STORES,
    TIERS,
    _dates,
    _money,
)


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
            if v is None:  # an empty cell, as openpyxl writes None
                continue
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


def _profile_truth(S) -> dict:
    """The planted profile differences (for tests of the profile section)."""
    region, top = S["region"], S["top_value"]
    first = np.concatenate([[0], np.cumsum(S["n_orders"])[:-1]])
    first_cat = S["o_cat"][first]
    return {
        "region_tilt": {"top_value_share": REGION_TILT_TOP, "value": "lam x p / nu (expected spend per week while alive)",
                        "weights_top": dict(zip(REGIONS, REGION_W_TOP)), "weights_rest": dict(zip(REGIONS, REGION_W)),
                        "huadong_share_top": round(float((region[top] == 0).mean()), 6) if top.any() else None,
                        "huadong_share_rest": round(float((region[~top] == 0).mean()), 6) if (~top).any() else None},
        "categories": {"names": list(CATEGORIES), "weights": dict(zip(CATEGORIES, CATEGORY_W)),
                       "weights_first_order": dict(zip(CATEGORIES, FIRST_CATEGORY_W)),
                       "margins": dict(zip(CATEGORIES, CATEGORY_MARGIN)),
                       "first_order_cosmetics_share": round(float((first_cat == 1).mean()), 6)},
        "omnichannel": "emerges: every order goes online with the customer's online_share ~ Beta(1.5, 1.5), so customers "
                       "with many orders (VIPs) nearly all use both channels",
        "discount": {"coupon_probability_beta": list(DISCOUNT_BETA), "coupon_share_of_amount": list(DISCOUNT_RANGE),
                     "channel": "online orders only"},
        "members": {"genders": dict(zip(GENDERS, GENDER_W)), "age_range": list(AGE_RANGE), "age_mode": 32,
                    "blank_gender_and_birth_date": int(S["no_profile"].sum())},
    }


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
        "formula": "nps = clip(rint(9 - 12*p + e), 0, 10), e = sum_k w_k (item_k - 3.65) + u, u ~ N(0, 1.109^2); "
                   "csat = clip(rint(1 + (9 - 12*p + e)/2.5 + h), 1, 5), h ~ N(0, 0.5^2)",
        "item_weights": dict(ITEM_WEIGHTS),
        "item_probs": list(ITEM_PROBS),
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
        "bgnbd": dict(BGNBD, alpha=S["alpha"]),
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
        "profile": _profile_truth(S),
        "dirt": dirt,
        "files": files,
    }
