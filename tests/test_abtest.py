"""A/B evaluation: hand-computed small cases, CUPED theory on simulated data, the demo's planted
lift, and the published Hillstrom and Cookie Cats figures."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from tierbook import abtest, demo
from tierbook import experiment
from tierbook.experiment import pre_period, window_outcomes


def _arms(control: list, treatment: list, **extra) -> pd.DataFrame:
    frame = pd.DataFrame({"variant": ["control"] * len(control) + ["treatment"] * len(treatment), "y": control + treatment})
    for name, values in extra.items():
        frame[name] = values
    return frame


# --------------------------------------------------------------------------- sample ratio


def test_srm_equal_split_by_hand():
    e = pd.DataFrame({"variant": ["control"] * 520 + ["treatment"] * 480})
    row = abtest.srm_check(e).iloc[0]
    # chi2 = 2 x 20^2 / 500 = 1.6, 1 dof
    assert row["chi2"] == pytest.approx(1.6) and row["p_value"] == pytest.approx(0.205903, abs=1e-6) and not row["srm"]
    assert (row["n_control"], row["n_treatment"], row["expected_control"]) == (520, 480, 500.0)


def test_srm_unequal_planned_split_and_a_mismatch_per_stratum():
    e = pd.DataFrame({"variant": ["control"] * 180 + ["coupon"] * 820, "tier": ["VIP"] * 1000})
    e2 = pd.DataFrame({"variant": ["control"] * 400 + ["coupon"] * 600, "tier": ["Regular"] * 1000})
    out = abtest.srm_check(pd.concat([e, e2]), planned={"control": 0.2, "coupon": 0.8}, strata="tier").set_index("stratum")
    # VIP: expected 200 / 800 -> chi2 = 400/200 + 400/800 = 2.5
    assert out.loc["VIP", "chi2"] == pytest.approx(2.5) and out.loc["VIP", "p_value"] == pytest.approx(0.113846, abs=1e-6)
    assert not out.loc["VIP", "srm"]
    # Regular: 400 / 600 against 200 / 800 -> chi2 = 200 + 50 = 250: a mismatch, flagged (p < 0.001), and so is the whole
    assert out.loc["Regular", "chi2"] == pytest.approx(250.0) and out.loc["Regular", "srm"] and out.loc["all", "srm"]
    with pytest.raises(abtest.TierbookError, match="coupon"):
        abtest.srm_check(e, planned={"control": 1.0})


# --------------------------------------------------------------------------- effects


def test_binary_effect_by_hand():
    e = _arms([1] * 50 + [0] * 450, [1] * 75 + [0] * 425)
    row = abtest.evaluate(e, "y").iloc[0]
    se = np.sqrt(0.1 * 0.9 / 500 + 0.15 * 0.85 / 500)  # 0.0208567
    assert row["kind"] == "binary" and row["difference"] == pytest.approx(0.05)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.05 - 1.959964 * se, 0.05 + 1.959964 * se), abs=1e-6)
    z = 0.05 / np.sqrt(0.125 * 0.875 * 2 / 500)  # pooled two-proportion z = 2.3905
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(z), rel=1e-9) and row["p_value"] == pytest.approx(0.01683, abs=1e-5)
    # relative lift 0.5 with the delta-method se sqrt(se_t^2/pc^2 + pt^2 se_c^2/pc^4)
    lift_se = np.sqrt(0.15 * 0.85 / 500 / 0.01 + 0.0225 * 0.1 * 0.9 / 500 / 1e-4)
    assert row["relative_lift"] == pytest.approx(0.5) and row["lift_ci_low"] == pytest.approx(0.5 - 1.959964 * lift_se, abs=1e-5)


def test_continuous_effect_is_welch_and_the_bootstrap_is_seeded():
    rng = np.random.default_rng(3)
    control = list(rng.exponential(10, 300) * (rng.random(300) < 0.3))
    treatment = list(rng.exponential(12, 200) * (rng.random(200) < 0.3))
    e = _arms(control, treatment)
    row = abtest.evaluate(e, "y", n_resamples=999, seed=5).iloc[0]
    yt, yc = np.array(treatment), np.array(control)
    vt, vc = yt.var(ddof=1) / 200, yc.var(ddof=1) / 300
    df = (vt + vc) ** 2 / (vt**2 / 199 + vc**2 / 299)  # Welch-Satterthwaite
    half = stats.t.ppf(0.975, df) * np.sqrt(vt + vc)
    assert row["kind"] == "continuous" and row["difference"] == pytest.approx(yt.mean() - yc.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((row["difference"] - half, row["difference"] + half), rel=1e-9)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(row["difference"]) / np.sqrt(vt + vc), df), rel=1e-9)
    again = abtest.evaluate(e, "y", n_resamples=999, seed=5).iloc[0]
    assert (row["boot_ci_low"], row["boot_ci_high"]) == (again["boot_ci_low"], again["boot_ci_high"])
    assert row["boot_ci_low"] < row["difference"] < row["boot_ci_high"]
    # the BCa interval is close to Welch's on 500 customers, but not equal (skewed data)
    assert abs(row["boot_ci_low"] - row["ci_low"]) < 0.3 * half and row["boot_ci_low"] != row["ci_low"]


@pytest.mark.parametrize("n_t, n_c, resamples, confidence, seed", [(200, 300, 999, 0.95, 5), (37, 11, 250, 0.9, 1), (2, 3, 100, 0.99, 7)])
def test_bootstrap_interval_is_scipys_bca_interval(n_t, n_c, resamples, confidence, seed):
    # the closed-form jackknife and the batch-of-100 draws must give scipy's BCa interval on the same seed
    rng = np.random.default_rng(seed)
    yt = rng.exponential(12, n_t) * (rng.random(n_t) < 0.3) + rng.random(n_t)
    yc = rng.lognormal(1, 1, n_c)
    reference = stats.bootstrap((yt, yc), lambda a, b, axis: a.mean(axis) - b.mean(axis), method="BCa", confidence_level=confidence,
                                n_resamples=resamples, rng=np.random.default_rng(seed), batch=100).confidence_interval
    low, high = abtest.bootstrap_interval(yt, yc, confidence, resamples, seed)
    assert (low, high) == pytest.approx((reference.low, reference.high), rel=1e-12, abs=1e-12)
    assert low < yt.mean() - yc.mean() < high


def _resampled_means_as_before(y: np.ndarray, rng: np.random.Generator, rows: int) -> np.ndarray:
    """What bootstrap_interval did before 2026-12-02: a (rows, n) block of indices, gathered, averaged."""
    return y[rng.integers(0, len(y), (rows, len(y)))].mean(axis=-1)


@pytest.mark.parametrize("n, buffer", [(5, 2**18), (2999, 2**18), (2999, 2999), (2999, 3 * 2999 + 1), (2**18 + 3, 2**18 + 3)])
def test_resampled_means_are_the_block_draws_of_before_to_the_bit(n, buffer):
    # the same Generator stream split into rows another way, gathered into a reused buffer: equal, not approximately equal
    y = np.round(np.random.default_rng(n).exponential(30, n) * (np.random.default_rng(1).random(n) < 0.3), 2)
    mine, before = np.random.default_rng(9), np.random.default_rng(9)
    values = np.empty(buffer)
    for rows in (100, 37, 1):
        assert np.array_equal(abtest._resampled_means(y, rows, mine, values), _resampled_means_as_before(y, before, rows))
    assert mine.integers(0, 2**40) == before.integers(0, 2**40)  # and the generators are left in the same state


def test_the_bootstrap_interval_is_the_one_of_before(monkeypatch):
    # pinned from the code before 2026-12-02 (100-row blocks of draws): the same floats, not just close ones, when every
    # value is drawn (these arms are 70 % zeros, which are resampled sparsely unless told otherwise)
    rng = np.random.default_rng(4)
    yt = np.round(rng.exponential(40, 3001) * (rng.random(3001) < 0.3), 2)
    yc = np.round(rng.exponential(35, 2500) * (rng.random(2500) < 0.3), 2)
    monkeypatch.setattr(abtest, "SPARSE_SHARE", -1.0)
    assert abtest.bootstrap_interval(yt, yc, 0.95, 250, 4) == (-0.5794630020536777, 2.269463330385549)


def test_sparse_resamples_have_the_moments_of_full_resamples():
    # 90 values of 5 and ten others: a resample's mean has expectation mean(y) and variance var(y) / n (population
    # variance), whatever the draws; 20,000 resamples pin both to about 1 %
    y = np.concatenate([np.full(90, 5.0), 5.0 + np.arange(1, 11)])
    means = abtest._sparse_resampled_means(y, 20_000, np.random.default_rng(0), base=5.0)
    se = np.sqrt(y.var() / len(y))  # 0.2958
    assert means.mean() == pytest.approx(y.mean(), abs=4 * se / np.sqrt(20_000))
    assert means.std() == pytest.approx(se, rel=0.03)
    assert means.min() >= 5.0 and np.allclose(means * 100, np.round(means * 100))  # 5 + (sum of draws) / 100


def test_a_sparse_resample_that_draws_no_other_value_has_the_common_mean():
    # one value of 100 among 1,000 zeros: a resample misses it with probability (1 - 1/1000)^1000 = 0.3677, and its
    # mean is then 0 (reduceat would give it the next resample's first value); k hits give 0.1 k
    y = np.zeros(1000)
    y[17] = 100.0
    means = abtest._sparse_resampled_means(y, 50_000, np.random.default_rng(1), base=0.0, block=7)
    assert np.allclose(means, np.round(means, 1))
    assert (means == 0).mean() == pytest.approx(0.999**1000, abs=0.007)
    assert means.mean() == pytest.approx(0.1, abs=0.002)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_bootstrap_interval_is_scipys_bca_to_monte_carlo_error(seed):
    # arms of 70 % zeros: other draws than scipy's, the same distribution: with 20,000 resamples the ends agree within
    # 3 % of the interval's width (1 % here), a different distribution (k / (n + 1) hits, say) would not
    rng = np.random.default_rng(seed)
    yt = np.round(rng.exponential(40, 300) * (rng.random(300) < 0.3), 2)
    yc = np.round(rng.exponential(35, 200) * (rng.random(200) < 0.3), 2)
    reference = stats.bootstrap((yt, yc), lambda a, b, axis: a.mean(axis) - b.mean(axis), method="BCa", n_resamples=20_000,
                                rng=np.random.default_rng(seed), batch=100).confidence_interval
    low, high = abtest.bootstrap_interval(yt, yc, 0.95, 20_000, seed)
    width = reference.high - reference.low
    assert abs(low - reference.low) < 0.03 * width and abs(high - reference.high) < 0.03 * width
    assert abtest.bootstrap_interval(yt, yc, 0.95, 20_000, seed) == (low, high)  # seeded


def _interaction_by_formula(experiment, outcome, strata, variant="variant", control=None, covariate=None):
    """interaction_test as it was before 2026-12-02: statsmodels' formula ``y ~ t * C(s) (+ x)`` through patsy."""
    import statsmodels.formula.api as smf

    experiment = experiment.reset_index(drop=True)
    columns = ["treatment", "outcome", "strata", "chi2", "dof", "p_value"]
    if experiment[strata].nunique() < 2:
        return pd.DataFrame(columns=columns)
    control = abtest._control(experiment, variant, control)
    rows = []
    arm = experiment[variant].astype(str)
    for treatment in sorted(set(arm.dropna()) - {control}):
        keep = arm.isin([control, treatment]) & experiment[outcome].notna()
        frame = pd.DataFrame({"y": experiment.loc[keep, outcome].astype(float), "t": (arm[keep] == treatment).astype(float),
                              "s": experiment.loc[keep, strata].astype(str)})
        if covariate:
            frame["x"] = experiment.loc[keep, covariate].astype(float)
            frame = frame.dropna()
        both = frame.groupby("s")["t"].agg(["min", "max"])
        frame = frame[frame["s"].isin(both.index[(both["min"] == 0) & (both["max"] == 1)])]
        levels = frame["s"].nunique()
        if levels < 2:
            continue
        fit = smf.ols("y ~ t * C(s)" + (" + x" if covariate else ""), data=frame).fit(cov_type="HC3")
        names = [n for n in fit.params.index if n.startswith("t:")]
        test = fit.wald_test(" = 0, ".join(names) + " = 0", scalar=True, use_f=False)
        rows.append({"treatment": treatment, "outcome": outcome, "strata": levels, "chi2": float(test.statistic), "dof": len(names),
                     "p_value": float(test.pvalue)})
    return pd.DataFrame(rows, columns=columns)


def _heterogeneous(n: int = 4000, seed: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tier = rng.choice(["金卡会员", "银卡", "B", "a", "10", "9"], n)
    variant = rng.choice(["control", "coupon", "sms"], n)
    e = pd.DataFrame({"variant": variant, "tier": tier, "x": rng.gamma(1, 50, n)})
    e["y"] = np.round(0.3 * e["x"] + rng.exponential(20, n) + np.where((variant == "coupon") & (tier == "a"), 9.0, 0.0), 2)
    e.loc[rng.random(n) < 0.02, "x"] = np.nan  # the covariate missing here and there
    e.loc[rng.random(n) < 0.02, "y"] = np.nan
    e.loc[(e["tier"] == "9") & (e["variant"] == "coupon"), "variant"] = "control"  # a tier holding one arm of coupon: left out
    return e


@pytest.mark.parametrize("covariate", [None, "x"])
@pytest.mark.parametrize("kind", ["text", "arrow", "integer", "with NaN"])
def test_the_interaction_test_is_the_formulas_to_the_bit(covariate, kind):
    e = _heterogeneous()
    if kind == "arrow":
        e["tier"] = e["tier"].astype("string[pyarrow]")
    elif kind == "integer":  # sorted as text by the formula: 10 < 2 < 9
        e["tier"] = e["tier"].map({"金卡会员": 2, "银卡": 10, "B": 9, "a": 1, "10": 30, "9": 3})
    elif kind == "with NaN":
        e.loc[e.index % 7 == 0, "tier"] = np.nan
    mine = abtest.interaction_test(e, "y", "tier", control="control", covariate=covariate)
    before = _interaction_by_formula(e, "y", "tier", control="control", covariate=covariate)
    assert len(mine) == 2 and mine.equals(before)


def test_the_interaction_design_is_patsys():
    import patsy

    e = _heterogeneous().dropna()
    e = e[e["tier"] != "9"]  # the tier without coupon customers, which the formula would keep and interaction_test leaves out
    t = (e["variant"] == "coupon").to_numpy(float)
    frame = pd.DataFrame({"y": e["y"].to_numpy(), "t": t, "s": e["tier"].to_numpy(), "x": e["x"].to_numpy()})
    endog, exog, _ = abtest._interaction_design(frame["y"].to_numpy(), t, e["tier"], frame["x"].to_numpy())
    y, X = patsy.dmatrices("y ~ t * C(s) + x", frame, return_type="dataframe")
    assert list(exog.columns) == list(X.columns) and np.array_equal(exog.to_numpy(), X.to_numpy()) and np.array_equal(endog, y["y"])
    assert np.asarray(exog).flags["C_CONTIGUOUS"] and np.asarray(X).flags["C_CONTIGUOUS"]  # the same layout, so the same sums in BLAS


def _orders_merged_as_before(e: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    from tierbook.summary import customer_codes

    codes, ids = customer_codes(orders["customer_id"])
    left = pd.DataFrame({"row": np.arange(len(e)), "c": pd.Index(ids).get_indexer(e["customer_id"].astype(str).to_numpy()),
                         "assigned": e["assigned_date"].to_numpy()})
    right = pd.DataFrame({"c": codes, "order_date": orders["order_date"].to_numpy(), "net_amount": orders["net_amount"].to_numpy()})
    return left[left["c"] >= 0].merge(right, on="c", how="inner")


def _pre_period_as_before(e: pd.DataFrame, orders: pd.DataFrame, days: int) -> pd.DataFrame:
    """pre_period before 2026-12-02: groupbys of the merged frame."""
    m = _orders_merged_as_before(e, orders)
    m = m[m["order_date"] < m["assigned"]]
    recent = m[m["order_date"] >= m["assigned"] - pd.Timedelta(days=days)]
    out = pd.DataFrame(index=pd.RangeIndex(len(e)))
    out["pre_spend"] = recent.groupby("row")["net_amount"].sum().reindex(out.index, fill_value=0.0).to_numpy()
    out["pre_orders"] = recent.groupby("row").size().reindex(out.index, fill_value=0).to_numpy()
    last = m.groupby("row")["order_date"].max()
    out["pre_recency_days"] = (pd.Series(e["assigned_date"].to_numpy()) - last.reindex(out.index)).dt.days.to_numpy(float)
    return out


@pytest.mark.parametrize("twice", [False, True])
@pytest.mark.parametrize("ids", ["categorical", "arrow", "object"])
def test_experiment_rows_meet_their_orders_as_in_the_merge(twice, ids):
    rng = np.random.default_rng(8)
    customers = np.array([f"C{i:04d}" for i in range(300)])
    orders = pd.DataFrame({"customer_id": rng.choice(customers[:250], 4000),
                           "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700 * 86400, 4000), unit="s"),
                           "net_amount": np.round(rng.exponential(80, 4000), 2) * rng.choice([1, 1, 1, -1], 4000)})
    orders["customer_id"] = {"categorical": orders["customer_id"].astype("category"), "arrow": orders["customer_id"].astype("string[pyarrow]"),
                             "object": orders["customer_id"]}[ids]
    chosen = rng.choice(customers, 200, replace=twice)  # some never ordered (C0250 on), some twice when twice
    e = pd.DataFrame({"customer_id": pd.array(np.r_[chosen, ["nobody"]], dtype="string[pyarrow]"),
                      "assigned_date": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 60, 201), unit="D")})
    assert len(set(chosen)) < 200 if twice else len(set(chosen)) == 200
    mine, before = experiment._orders_of(e, orders), _orders_merged_as_before(e, orders)
    columns = ["row", "assigned", "order_date", "net_amount"]
    # the same rows, each experiment row's orders in the same order (so that grouped sums are the same to the bit)
    ordered = mine[columns].sort_values("row", kind="stable").reset_index(drop=True)
    assert ordered.equals(before[columns].reset_index(drop=True))
    with pytest.MonkeyPatch.context() as patch:  # window_outcomes on the merge, as before
        patch.setattr(experiment, "_orders_of", _orders_merged_as_before)
        window_before = window_outcomes(e, orders, 30)
    assert window_outcomes(e, orders, 30).equals(window_before) and window_before["orders_30d"].sum() > 0
    # pre_period from the joined rows' arrays: the groupbys of the merged frame, to the bit (spend summed in each row's order)
    for days in (365, 30):
        pre, pre_before = pre_period(e, orders, days), _pre_period_as_before(e, orders, days)
        pd.testing.assert_frame_equal(pre, pre_before, check_exact=True)
        assert pre.equals(pre_before) and pre_before["pre_orders"].sum() > 0 and pre_before["pre_recency_days"].isna().any()


def test_winsorisation_caps_both_arms_at_the_pooled_quantile():
    e = _arms([0.0] * 98 + [10.0, 1000.0], [0.0] * 97 + [10.0, 10.0, 10.0])
    row = abtest.evaluate(e, "y", winsorize_quantile=0.99, bootstrap=False).iloc[0]
    cap = np.quantile(e["y"], 0.99)  # 10.0: the 1000 is capped
    assert row["winsorized_at"] == cap == 10.0
    assert row["mean_control"] == pytest.approx(0.2) and row["mean_treatment"] == pytest.approx(0.3)


def test_cuped_removes_rho_squared_of_the_variance_and_keeps_the_effect():
    rng = np.random.default_rng(11)
    n = 20_000
    x = rng.gamma(2.0, 50.0, n)
    treated = rng.random(n) < 0.5
    rho = 0.6
    noise_sd = np.std(x) * np.sqrt(1 - rho**2) / rho
    y = x + rng.normal(0, noise_sd, n) + 5.0 * treated  # corr(x, y) = 0.6 within arms; true effect 5
    e = pd.DataFrame({"variant": np.where(treated, "treatment", "control"), "y": y, "x": x})
    row = abtest.evaluate(e, "y", covariate="x", bootstrap=False).iloc[0]
    assert row["variance_reduction"] == pytest.approx(rho**2, abs=0.02)
    width, cuped_width = row["ci_high"] - row["ci_low"], row["cuped_ci_high"] - row["cuped_ci_low"]
    assert cuped_width / width == pytest.approx(np.sqrt(1 - rho**2), abs=0.02)
    assert row["cuped_ci_low"] < 5.0 < row["cuped_ci_high"]
    assert row["cuped_theta"] == pytest.approx(1.0, abs=0.05)


def test_corrections_are_applied_per_family_and_named():
    assert abtest.adjust([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert abtest.adjust([0.01, 0.04, 0.03], "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert abtest.adjust([0.01, 0.04, 0.03], "bh") == pytest.approx([0.03, 0.04, 0.04])
    rng = np.random.default_rng(1)
    e = pd.DataFrame({"variant": rng.choice(["control", "treatment"], 3000), "tier": rng.choice(["A", "B", "C"], 3000),
                      "y": rng.random(3000) < 0.2, "z": rng.exponential(1.0, 3000)})
    e["y"] = e["y"].astype(int)
    out = abtest.evaluate(e, ["y", "z"], strata="tier", correction="bh", bootstrap=False)
    per = out[out["stratum"] != "all"]
    assert len(per) == 6 and per["p_adjusted"].to_numpy() == pytest.approx(abtest.adjust(per["p_value"], "bh"))
    overall = out[out["stratum"] == "all"]
    assert overall["p_adjusted"].to_numpy() == pytest.approx(abtest.adjust(overall["p_value"], "bh"))
    assert set(out["correction"]) == {"Benjamini–Hochberg"}
    with pytest.raises(abtest.TierbookError, match="holm"):
        abtest.adjust([0.1], "holm-sidak")


def test_interaction_test_sees_an_effect_in_one_tier_only():
    rng = np.random.default_rng(2)
    n = 6000
    tier = rng.choice(["A", "B", "C"], n)
    treated = rng.random(n) < 0.5
    y = rng.normal(100, 20, n) + np.where(treated & (tier == "A"), 8.0, 0.0)
    e = pd.DataFrame({"variant": np.where(treated, "t", "control"), "tier": tier, "y": y})
    hetero = abtest.interaction_test(e, "y", "tier").iloc[0]
    assert hetero["dof"] == 2 and hetero["p_value"] < 1e-6
    e["y"] = rng.normal(100, 20, n) + np.where(treated, 8.0, 0.0)  # the same effect everywhere
    assert abtest.interaction_test(e, "y", "tier").iloc[0]["p_value"] > 0.05


def test_bayesian_probability_and_expected_loss():
    e = _arms([1] * 3 + [0] * 7, [1] * 7 + [0] * 3)
    row = abtest.bayes(e, "y", draws=400_000, seed=1).iloc[0]
    t, c = stats.beta(8, 4), stats.beta(4, 8)
    exact = integrate.quad(lambda v: t.pdf(v) * c.cdf(v), 0, 1)[0]  # P(T > C)
    loss = integrate.dblquad(lambda ct, tt: max(ct - tt, 0) * t.pdf(tt) * c.pdf(ct), 0, 1, 0, 1)[0]
    assert row["prob_beats_control"] == pytest.approx(exact, abs=0.003) and exact == pytest.approx(0.95695, abs=1e-5)
    assert row["expected_loss"] == pytest.approx(loss, abs=0.001)
    # normal approximation: d = 1, se = 1 -> P = Phi(1), loss = phi(1) - Phi(-1)
    a = 1 / np.sqrt(2)  # each arm: 2 values with variance 1 -> se^2 0.5; the difference has se 1
    g = pd.DataFrame({"variant": ["control", "control", "treatment", "treatment"], "y": [-a, a, 1 - a, 1 + a]})
    row = abtest.bayes(g, "y").iloc[0]
    assert row["prob_beats_control"] == pytest.approx(stats.norm.cdf(1.0), abs=1e-9)
    assert row["expected_loss"] == pytest.approx(stats.norm.pdf(1.0) - stats.norm.cdf(-1.0), abs=1e-9)


def test_power_minimum_detectable_effect_and_size_needed():
    rng = np.random.default_rng(4)
    e = pd.DataFrame({"variant": ["control"] * 1000 + ["treatment"] * 1000,
                      "y": np.r_[np.repeat([1, 0], [100, 900]), np.repeat([1, 0], [100, 900])]})
    effects = abtest.evaluate(e, "y")
    row = abtest.power(effects, e, target_lift=0.2).iloc[0]
    # arcsine: h = 2.8016 x sqrt(2/1000) = 0.12530 -> p_t = sin^2(asin(sqrt(.1)) + h/2) = 0.1406
    h = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * np.sqrt(2 / 1000)
    assert row["mde_absolute"] == pytest.approx(np.sin(np.arcsin(np.sqrt(0.1)) + h / 2) ** 2 - 0.1, abs=2e-4)
    assert row["mde_absolute"] == pytest.approx(0.0406, abs=1e-4)
    # +20 % on 10 %: h = 2 asin(sqrt(.12)) - 2 asin(sqrt(.1)) = 0.063982; var(2 asin sqrt(p)) = 1/n per arm, so
    # n = 2 (2.8016 / h)^2 = 3834.4 -> 3835 (Cohen's table: h = 0.2 needs 392 per arm)
    target_h = 2 * np.arcsin(np.sqrt(0.12)) - 2 * np.arcsin(np.sqrt(0.1))
    assert row["n_per_arm_needed"] == np.ceil(2 * ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / target_h) ** 2) == 3835
    money = pd.DataFrame({"variant": ["control"] * 500 + ["treatment"] * 500, "y": rng.normal(50, 10, 1000)})
    m = abtest.power(abtest.evaluate(money, "y", bootstrap=False), money).iloc[0]
    sd = np.sqrt((money["y"][:500].var() + money["y"][500:].var()) / 2)
    assert m["mde_absolute"] == pytest.approx(2.8016 * sd * np.sqrt(2 / 500), rel=1e-3)


def test_verdicts_ship_harm_inconclusive_and_srm_overrides():
    rng = np.random.default_rng(9)
    n = 4000
    tier = np.repeat(["up", "down", "flat"], n)
    treated = np.tile(np.r_[np.zeros(n // 2, bool), np.ones(n // 2, bool)], 3)
    effect = np.select([tier == "up", tier == "down"], [20.0, -20.0], 0.0)
    e = pd.DataFrame({"variant": np.where(treated, "t", "control"), "tier": tier, "y": rng.normal(100, 30, 3 * n) + effect * treated})
    effects = abtest.evaluate(e, "y", strata="tier", bootstrap=False)
    srm = abtest.srm_check(e, strata="tier")
    returns = abtest.roi(effects, "y", {"t": 5.0}, margin=0.5)
    v = abtest.verdicts(effects, srm, "y", returns, currency="CNY").set_index("stratum")
    r = returns.set_index("stratum").loc["up"]
    assert r["roi"] == pytest.approx((effects.set_index("stratum").loc["up", "difference"] * 0.5 - 5) / 5)  # ~ (20 x 0.5 - 5) / 5 = +100 %
    assert v.loc["up", "verdict"] == "ship" and f"ROI {r['roi']:+.0%}" in v.loc["up", "reason"] and 0.7 < r["roi"] < 1.3
    assert v.loc["down", "verdict"] == "don't ship" and "hurts" in v.loc["down", "reason"]
    assert v.loc["flat", "verdict"] == "inconclusive"
    expensive = abtest.verdicts(effects, srm, "y", abtest.roi(effects, "y", {"t": 50.0}, margin=0.5)).set_index("stratum")
    assert expensive.loc["up", "verdict"] == "don't ship" and "does not pay back" in expensive.loc["up", "reason"]
    lopsided = pd.concat([e, e[e["variant"] == "t"].iloc[:600]])  # 600 extra treated rows (a logging bug): chi2 28.6
    s = abtest.srm_check(lopsided, strata="tier")
    assert s.set_index("stratum").loc["all", "srm"]
    v = abtest.verdicts(abtest.evaluate(lopsided, "y", strata="tier", bootstrap=False), s, "y")
    assert set(v["verdict"]) == {"don't trust"}


def test_bad_experiments_get_one_line_errors():
    e = pd.DataFrame({"variant": ["a1", "b1"], "y": [1.0, 2.0]})
    with pytest.raises(abtest.TierbookError, match="ab_test.control"):
        abtest.evaluate(e, "y")
    with pytest.raises(abtest.TierbookError, match="not among the variants"):
        abtest.evaluate(e, "y", control="ctrl")
    with pytest.raises(abtest.TierbookError, match="needs a treatment arm"):
        abtest.evaluate(pd.DataFrame({"variant": ["control"] * 3, "y": [1.0, 2.0, 3.0]}), "y")
    one_each = abtest.evaluate(pd.DataFrame({"variant": ["control", "t"], "y": [1.0, 2.0]}), "y").iloc[0]
    assert one_each["n_control"] == 1 and pd.isna(one_each["p_value"])  # shown, not tested


# --------------------------------------------------------------------------- the demo's planted lift


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo_ab")
    truth = demo.generate(d, size=20000, seed=20240101)
    return d, truth


def test_the_planted_lift_is_found_in_its_tier_only_after_correction(full_demo):
    d, truth = full_demo
    t = truth["experiment"]
    e = pd.read_csv(d / "experiment.csv", parse_dates=["assigned_date"])
    orders = pd.read_parquet(d / "truth_orders.parquet")
    orders = orders.assign(order_date=pd.to_datetime(orders["order_date"]), net_amount=orders["amount"] - orders["returned_amount"])
    e = pd.concat([e, pre_period(e, orders, 365)], axis=1)
    out = abtest.evaluate(e, ["revenue_30d", "converted_30d"], strata="tier", covariate="pre_spend", bootstrap=False)
    rev = out[out["outcome"] == "revenue_30d"].set_index("stratum")
    lift_tier = t["lift_tier"]
    planted = t["observed"][lift_tier]["vip_coupon"]["mean_revenue_30d_without_lift"] * t["lift"]  # 275.25 CNY per treated customer
    assert rev.loc[lift_tier, "cuped_p_adjusted"] < 0.01 and rev.loc[lift_tier, "p_adjusted"] < 0.01
    assert rev.loc[lift_tier, "cuped_ci_low"] < planted < rev.loc[lift_tier, "cuped_ci_high"]
    others = out[(out["stratum"] != lift_tier) & (out["stratum"] != "all")]
    assert (others["p_adjusted"] > 0.05).all() and (others["cuped_p_adjusted"] > 0.05).all()
    # the correction matters: 银卡's chance dip is "significant" before it
    assert rev.loc["银卡会员", "p_value"] < 0.05 < rev.loc["银卡会员", "p_adjusted"]
    srm = abtest.srm_check(e, strata="tier")
    assert not srm["srm"].any()
    v = abtest.verdicts(out, srm, "revenue_30d").set_index("stratum")["verdict"]
    assert v[lift_tier] == "ship" and (v.drop(lift_tier) == "inconclusive").all()
    hetero = abtest.interaction_test(e, "revenue_30d", "tier", covariate="pre_spend").iloc[0]
    assert hetero["p_value"] < 0.01


# --------------------------------------------------------------------------- real experiments


def test_cookie_cats_published_rates_and_the_seven_day_effect(shared_data):
    cats = pd.read_csv(shared_data / "cookie_cats" / "cookie_cats.csv")
    for column in ("retention_1", "retention_7"):
        cats[column] = cats[column].astype(str).str.upper().eq("TRUE").astype(int)
    cats = cats.rename(columns={"version": "variant"})
    out = abtest.evaluate(cats, ["retention_1", "retention_7"], control="gate_30").set_index("outcome")
    assert (out.loc["retention_7", "n_control"], out.loc["retention_7", "n_treatment"]) == (44_700, 45_489)
    assert out.loc["retention_1", "mean_control"] == pytest.approx(20_034 / 44_700) and out.loc["retention_1", "mean_treatment"] == pytest.approx(20_119 / 45_489)
    r7 = out.loc["retention_7"]
    assert (r7["mean_control"], r7["mean_treatment"]) == (8_502 / 44_700, 8_279 / 45_489)
    # published: -0.82 pp, 95% CI [-1.33, -0.31], p = 0.0016
    assert round(r7["difference"] * 100, 2) == -0.82
    assert (round(r7["ci_low"] * 100, 2), round(r7["ci_high"] * 100, 2)) == (-1.33, -0.31)
    assert round(r7["p_value"], 4) == 0.0016
    b = abtest.bayes(cats, "retention_7", control="gate_30", seed=3).iloc[0]
    assert b["prob_beats_control"] < 0.002  # gate_40 beats gate_30 with probability ~0.1 %: DataCamp's ~99.8 % the other way


def hillstrom_client(root, shared) -> tuple:
    """A consultant's set-up for the Hillstrom e-mail test as a client: the experiment file with a
    customer id, and each customer's past-year spend (`history`, `recency` months ago) as a purchase."""
    from tierbook.params import load_params

    raw = pd.read_csv(shared / "hillstrom" / "hillstrom.csv")
    data = root / "data" / "hillstrom"
    data.mkdir(parents=True)
    raw.insert(0, "customer_id", [f"H{i:05d}" for i in range(len(raw))])
    raw.assign(assigned="2008-03-01").to_csv(data / "experiment.csv", index=False)
    purchase = pd.Timestamp("2008-03-01") - pd.to_timedelta(raw["recency"] * 30, unit="D")
    pd.DataFrame({"customer": raw["customer_id"], "date": purchase.dt.strftime("%Y-%m-%d"), "amount": raw["history"]}).to_csv(
        data / "purchases.csv", index=False)
    (root / "params").mkdir()
    import shutil

    from .conftest import REPO

    shutil.copy(REPO / "params" / "default.yaml", root / "params" / "default.yaml")
    (root / "params" / "hillstrom.yaml").write_text("""
title: MineThatData e-mail test (Hillstrom 2008)
currency: USD
sources:
  transactions:
    - name: history
      path: purchases.csv
      columns: {customer: customer_id, date: order_date, amount: amount}
  experiment:
    name: experiment
    path: experiment.csv
    columns: {customer_id: customer_id, segment: variant, assigned: assigned_date, history_segment: stratum, history: pre_value}
    outcomes: {visit: visit, conversion: conversion, spend: spend}
clean:
  outliers: {method: none}
ab_test:
  control: No E-Mail
  primary: spend
  bootstrap_resamples: 300
  cost_per_treated: {Mens E-Mail: 0.02, Womens E-Mail: 0.02}
""", encoding="utf-8")
    return load_params("hillstrom", root / "params")


def test_hillstrom_as_a_client_reproduces_the_published_arms(shared_data, tmp_path):
    from tierbook.data import run_data_stage
    from tierbook.experiment import run_ab_stage

    params = hillstrom_client(tmp_path, shared_data)
    run_dir = tmp_path / "reports" / "hillstrom" / "run"
    run_data_stage(params, tmp_path, run_dir)
    stage = run_ab_stage(params, run_dir)
    assert stage.ok and stage.control == "No E-Mail" and stage.covariate == "pre_value" and stage.strata == "stratum"
    e = stage.effects[stage.effects["stratum"] == "all"].set_index(["treatment", "outcome"])
    published = {  # REFERENCE_FIGURES.md 3: n, visit, conversion, spend per customer
        "Mens E-Mail": (21_307, 0.18276, 0.012531, 1.4226), "Womens E-Mail": (21_387, 0.15140, 0.008837, 1.0772)}
    assert e.loc[("Mens E-Mail", "visit"), "n_control"] == 21_306
    assert round(e.loc[("Mens E-Mail", "visit"), "mean_control"], 5) == 0.10617
    assert round(e.loc[("Mens E-Mail", "conversion"), "mean_control"], 6) == 0.005726
    assert round(e.loc[("Mens E-Mail", "spend"), "mean_control"], 4) == 0.6528
    for arm, (n, visit, conversion, spend) in published.items():
        assert e.loc[(arm, "visit"), "n_treatment"] == n
        assert round(e.loc[(arm, "visit"), "mean_treatment"], 5) == visit
        assert round(e.loc[(arm, "conversion"), "mean_treatment"], 6) == conversion
        assert round(e.loc[(arm, "spend"), "mean_treatment"], 4) == spend
    # the audit note's lifts: Mens +7.66 pp visit, +0.68 pp conversion, +$0.770 spend (t 5.3); Womens +4.52 pp, +0.31 pp, +$0.424
    assert round(e.loc[("Mens E-Mail", "visit"), "difference"] * 100, 2) == 7.66
    assert round(e.loc[("Mens E-Mail", "conversion"), "difference"] * 100, 2) == 0.68
    assert round(e.loc[("Mens E-Mail", "spend"), "difference"], 3) == 0.770
    assert round(e.loc[("Womens E-Mail", "visit"), "difference"] * 100, 2) == 4.52
    assert round(e.loc[("Womens E-Mail", "conversion"), "difference"] * 100, 2) == 0.31
    assert round(e.loc[("Womens E-Mail", "spend"), "difference"], 3) == 0.424
    t = e.loc[("Mens E-Mail", "spend"), "difference"] / e.loc[("Mens E-Mail", "spend"), "se"]
    assert round(t, 1) == 5.3
    assert not stage.srm_failed and len(stage.srm) == 1 + 7  # overall and the 7 history segments
    v = stage.verdicts.set_index(["stratum", "treatment"])
    assert v.loc[("all", "Mens E-Mail"), "verdict"] == "ship"
    assert (run_dir / "tables" / "ab_effects.csv").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.slow
def test_the_demo_report_has_the_ab_section(demo_project):
    _, run = demo_project
    html = (run.run_dir / "ab_test.html").read_text(encoding="utf-8")
    assert "A/B test: did the tier strategy work?" in html and "Traceback" not in html
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html
    srm = pd.read_csv(run.run_dir / "tables/ab_srm.csv", encoding="utf-8-sig")
    overall = srm.iloc[0]
    assert overall["stratum"] == "all" and f"control {int(overall['n_control']):,}, vip_coupon {int(overall['n_vip_coupon']):,}" in html
    verdicts = pd.read_csv(run.run_dir / "tables/ab_verdicts.csv", encoding="utf-8-sig")
    assert set(verdicts["verdict"]) <= {"ship", "don't ship", "inconclusive", "don't trust"}
    assert set(verdicts["stratum"]) == set(srm["stratum"])  # every stratum gets a verdict, tested or not
    small = srm[srm[["n_control", "n_vip_coupon"]].min(axis=1) < 30]["stratum"]  # ab_test.min_n on the 400-customer demo
    assert (verdicts.set_index("stratum").loc[small, "reason"] == "too few customers in an arm to test").all()
    for name in ("ab_effects", "ab_balance", "ab_bayes", "ab_power", "ab_roi", "ab_interaction"):
        assert (run.run_dir / "tables" / f"{name}.csv").exists(), name
    assert html.count("<img") >= 3  # effects on two outcomes and the arm means
