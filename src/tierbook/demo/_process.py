"""The demo's true customer process: births, BG/NBD purchases, Gamma-Gamma spend, tiers, survey and experiment draws."""

from __future__ import annotations

import numpy as np

from ._common import (
    CONTACT_PHRASES,
    CONTACT_SHARE,
    _ASSIGN_DAY,
    _BIRTH_END,
    _END,
    _TIER_DAY,
    _WINDOW_END,
    _Y2025,
    AGE_RANGE,
    BGNBD,
    CATEGORIES,
    CATEGORY_W,
    COMMENTS,
    CSAT_NOISE_SD,
    DISCOUNT_BETA,
    DISCOUNT_RANGE,
    DROPOUT_AFTER_FIRST_PURCHASE,
    ECOM_HOUR_W,
    EMAIL_DOMAINS,
    EMAIL_W,
    FIRST_CATEGORY_W,
    FIXED_DIRT,
    GAMMA_GAMMA,
    GARBAGE_TIMES,
    GENDER_W,
    GENDERS,
    GIVEN,
    ITEM_PROBS,
    ITEM_WEIGHTS,
    LIFT,
    LIFT_TIER,
    NPS_INTERCEPT,
    NPS_NOISE_SD,
    NPS_SLOPE_P,
    ONLINE_BETA,
    PINYIN,
    PLATFORM_W,
    PLATFORMS,
    POS_HOUR_W,
    PURCHASE_RATE,
    RATES,
    REG_CHANNELS,
    REGION_TILT_TOP,
    REGION_W,
    REGION_W_TOP,
    REGIONS,
    STORES,
    SURNAME_W,
    SURNAMES,
    TIERS,
    _choose,
    _count,
    _hours,
    _lexrank,
    _seq_ids,
    gamma_rate,
)


def _simulate(size: int, seed: int, purchase_rate: float = PURCHASE_RATE):
    rng = np.random.default_rng(seed)
    n = int(size)
    if n < 1:
        raise ValueError("size must be >= 1")
    if not 0 < purchase_rate <= 7:
        raise ValueError("purchase_rate (the customers' mean purchases per week) must be in (0, 7]")
    alpha = gamma_rate(purchase_rate)

    # ---- customers -------------------------------------------------------------------------------
    birth = rng.integers(0, _BIRTH_END + 1, n)
    same_day = rng.random(n) < 0.45
    reg = birth - np.where(same_day, 0, rng.integers(1, 366, n))
    perm = np.lexsort((birth, reg))  # ids numbered in registration order
    birth, reg = birth[perm], reg[perm]

    lam = rng.gamma(BGNBD["r"], 1.0 / alpha, n)
    p_drop = rng.beta(BGNBD["a"], BGNBD["b"], n)
    nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["gamma"], n)
    online_share = rng.beta(*ONLINE_BETA, n)
    # the same uniform draw as rng.choice(len(REGIONS), n, p=REGION_W), so the stream is unchanged;
    # the top REGION_TILT_TOP of customers by true value draw from REGION_W_TOP (planted: VIPs lean to 华东)
    u_region = rng.random(n)
    value = lam * GAMMA_GAMMA["p"] / nu
    top_value = value >= np.quantile(value, 1 - REGION_TILT_TOP)
    cdf, cdf_top = (np.cumsum(w) / np.sum(w) for w in (REGION_W, REGION_W_TOP))
    region = np.where(top_value, cdf_top.searchsorted(u_region, side="right"), cdf.searchsorted(u_region, side="right"))
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

    # categories (own stream: every other draw is unchanged): an order's first line has the order's
    # category, drawn from FIRST_CATEGORY_W for a customer's first order (planted: 美妆 skews new), the
    # other lines from CATEGORY_W
    prof = np.random.default_rng([seed, 11])
    o_cat = prof.choice(len(CATEGORIES), N, p=CATEGORY_W)
    o_cat[first_idx] = prof.choice(len(CATEGORIES), n, p=FIRST_CATEGORY_W)
    l_cat = np.where(l_no == 0, o_cat[pos_o[l_order]], prof.choice(len(CATEGORIES), l_no.size, p=CATEGORY_W))

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
                            "ret", "orig", "year2031", "cat")}

    def add(rec, line, sub, cust, store, day, sec, sku, qty, unit, ret_flag, orig, y2031=False, cat=0):
        k = np.asarray(rec).size
        for name, val in (("rec", rec), ("line", line), ("sub", sub), ("cust", cust), ("store", store),
                          ("day", day), ("sec", sec), ("sku", sku), ("qty", qty), ("unit", unit),
                          ("ret", ret_flag), ("orig", orig), ("year2031", y2031), ("cat", cat)):
            cols[name].append(np.broadcast_to(np.asarray(val), (k,)).copy())

    def other_cat(k):
        return prof.choice(len(CATEGORIES), k, p=CATEGORY_W)

    lo = pos_o[l_order]
    add(rA[l_order], l_no, 0, o_cust[lo], o_store[lo], o_day[lo], o_sec[lo], l_sku, l_qty, l_unit, 0, -1, cat=l_cat)
    go = pos_o[gift_ord]
    add(rA[gift_ord], 3, 0, o_cust[go], o_store[go], o_day[go], o_sec[go], gift_sku, 1, 0, 0, -1, cat=o_cat[go])
    do = pos_o[l_order[dup_lines]]
    add(rA[l_order[dup_lines]], l_no[dup_lines], 1, o_cust[do], o_store[do], o_day[do], o_sec[do],
        l_sku[dup_lines], l_qty[dup_lines], l_unit[dup_lines], 0, -1, cat=l_cat[dup_lines])
    add(rB, 0, 0, o_cust[cd], home_store[o_cust[cd]], o_day[cd], (o_sec[cd] // 60) * 60, cd_sku, 1,
        o_cents[cd], 0, -1, cat=o_cat[cd])
    add(rC, 0, 0, o_cust[ret_pos], o_store[ret_pos], ret_pos_day, r_sec, l_sku[r_line], -l_qty[r_line],
        l_unit[r_line], 1, rA[rp], cat=l_cat[r_line])
    add(rD, 0, 0, -1, walk_store, walk_day, walk_sec, walk_sku, 1, walk_cents, 0, -1, cat=other_cat(n_walk))
    add(rE, 0, 0, fut[0], home_store[fut[0]], fut[1], fut[2], fut[4], 1, fut[3], 0, -1, True, cat=other_cat(fut[0].size))
    add(rF, 0, 0, outl[0], home_store[outl[0]], outl[1], outl[2], outl[4], 9999, outl[3], 0, -1, cat=other_cat(outl[0].size))
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
        "cat": np.concatenate([o_cat[ecom_o], o_cat[ret_ec], other_cat(neg[0].size), other_cat(unp[0].size)]),
    }
    # coupons on online orders: a per-customer propensity; the discount is on top of the amount paid
    coupon_p = prof.beta(*DISCOUNT_BETA, n)
    used = (prof.random(ecom_o.size) < coupon_p[o_cust[ecom_o]])
    disc = np.where(used, np.rint(o_cents[ecom_o] * prof.uniform(*DISCOUNT_RANGE, ecom_o.size)), 0).astype(np.int64)
    E["discount"] = np.concatenate([disc, np.zeros(E["id"].size - ecom_o.size, np.int64)])
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
    # item scores come from their own stream so that every other draw (and file) is unchanged
    item_rng = np.random.default_rng([seed, 3])
    levels = np.arange(1, 6)
    probs = np.array(ITEM_PROBS)
    item_mean, item_var = float(levels @ probs), float((levels - levels @ probs) ** 2 @ probs)
    items = {name: item_rng.choice(levels, size=resp.size, p=probs) for name in ITEM_WEIGHTS}
    residual_sd = np.sqrt(NPS_NOISE_SD ** 2 - sum(w * w for w in ITEM_WEIGHTS.values()) * item_var)
    cont = (nps_latent[resp] + sum(w * (items[name] - item_mean) for name, w in ITEM_WEIGHTS.items())
            + eps * residual_sd / NPS_NOISE_SD)
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
    gender = prof.choice(len(GENDERS), n, p=GENDER_W)
    age_days = np.rint(prof.triangular(AGE_RANGE[0], 32, AGE_RANGE[1], n) * 365.25).astype(np.int64)
    no_profile = prof.random(n) < 0.03

    # ---- assemble -------------------------------------------------------------------------------------
    return dict(
        n=n, alpha=alpha, birth=birth, reg=reg, lam=lam, p_drop=p_drop, nu=nu, online_share=online_share,
        region=region, home_store=home_store, alive_end=alive_end, death_day=death_day,
        tier=tier, variant=variant, in_exp=in_exp, rev_tier=rev_tier, nps_latent=nps_latent,
        o_cust=o_cust, o_day=o_day, o_cents=o_cents, cents_before_lift=cents_before_lift,
        o_online=o_online, o_sec=o_sec, lifted=lifted, in_win=in_win, n_orders=n_orders,
        pos_o=pos_o, ecom_o=ecom_o, n_lines=n_lines, rA=rA, eA=eA, ec_pos=ec_pos,
        ret=ret, ret_pos=ret_pos, ret_ec=ret_ec, r_line=r_line, l_qty=l_qty, l_unit=l_unit,
        r_full=r_full, ref_cents=ref_cents, ref_full=ref_full, cd=cd, rB=rB, gift_ord=gift_ord,
        dup_lines=dup_lines, l_part=l_part, walk_cents=walk_cents, fut=fut, outl=outl, neg=neg, unp=unp,
        P=P, E=E, resp=resp, resp_day=resp_day, nps=nps, csat=csat, blank=blank, comment=comment, items=items,
        sur=sur, g1=g1, g2=g2, two=two, phone_pre=phone_pre, phone_rest=phone_rest, dom=dom, qq=qq,
        py1=py1, py2=py2, em_num=em_num, reg_ch=reg_ch, mdup=mdup,
        o_cat=o_cat, coupon_p=coupon_p, top_value=top_value, gender=gender, age_days=age_days, no_profile=no_profile,
    )


def _contacts_in_comments(comment: list[str], resp: np.ndarray, phones: list[str], emails: list[str], seed: int):
    """Comments with the respondent's phone number or e-mail address appended (CONTACT_SHARE of the
    written comments each), drawn from their own stream (SeedSequence [seed, 13]) so that every other
    draw and file stays as in generator v5. Returns (comments, rows with a phone, rows with an e-mail)."""
    rng = np.random.default_rng([seed, 13])
    written = np.flatnonzero([bool(c) for c in comment])
    n_each = max(1, int(round(CONTACT_SHARE * written.size))) if written.size >= 2 else 0
    pick = rng.choice(written, size=2 * n_each, replace=False) if n_each else np.zeros(0, int)
    phone_rows, email_rows = np.sort(pick[:n_each]), np.sort(pick[n_each:])
    out = list(comment)
    for i in phone_rows.tolist():
        out[i] += CONTACT_PHRASES["phone"].format(phones[resp[i]])
    for i in email_rows.tolist():
        out[i] += CONTACT_PHRASES["email"].format(emails[resp[i]])
    return out, phone_rows, email_rows
