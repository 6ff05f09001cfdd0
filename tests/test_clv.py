"""BG/NBD and Gamma-Gamma against the published CDNOW figures (../shared/data/REFERENCE_FIGURES.md)."""

import numpy as np
import pandas as pd
import pytest

from tierbook.clv import fit_bgnbd, fit_gamma_gamma
from tierbook.errors import TierbookError
from tierbook.summary import customer_summary


@pytest.fixture(scope="module")
def cdnow_summary(shared_data):
    """The 39-week calibration summary built from the raw sample transactions with our summary."""
    raw = pd.read_csv(shared_data / "cdnow/CDNOW_sample.txt", sep=r"\s+", header=None, dtype=str,
                      names=["master_id", "customer_id", "date", "cds", "dollars"])
    orders = pd.DataFrame({"customer_id": raw["customer_id"], "order_date": pd.to_datetime(raw["date"], format="%Y%m%d"),
                           "net_amount": raw["dollars"].astype(float)})
    return customer_summary(orders, "1997-10-01", time_unit="W")


@pytest.fixture(scope="module")
def bgnbd(cdnow_summary):
    return fit_bgnbd(cdnow_summary)


def test_bgnbd_reproduces_fader_hardie_lee_2005(bgnbd):
    p = bgnbd.params_
    # published MLE 0.243, 4.414, 0.793, 2.426; log-likelihood -9582.4
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (0.243, 4.414, 0.793, 2.426)
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
    assert bgnbd.converged_ and bgnbd.n_customers_ == 2357
    se = bgnbd.summary["standard_error"]
    assert (se > 0).all() and se["r"] < 0.05 and se["alpha"] < 0.5


def test_bgnbd_predictions_match_hardies_spreadsheet(bgnbd):
    t = [0.1429, 1, 3, 31.8571, 32, 78]
    expected = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    assert np.allclose(bgnbd.expected_purchases(t), expected, atol=1e-3)
    # customer 1: x = 2, t_x = 30.43, T = 38.86 -> E[Y(39)] 1.226, P(alive) 0.7266
    assert bgnbd.conditional_expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=1e-3)
    assert bgnbd.p_alive(2, 30.43, 38.86) == pytest.approx(0.7266, abs=1e-3)
    assert bgnbd.p_alive(0, 0, 38.86) == 1.0  # no repeat purchase: alive by assumption


def test_bgnbd_holdout_conditional_expectation_for_customers_without_repeat(bgnbd, cdnow_summary):
    # published: the 1,411 customers with x = 0 are expected to make 0.23 purchases each in weeks 40-78
    zero = cdnow_summary[cdnow_summary["frequency"] == 0]
    assert len(zero) == 1411
    expected = bgnbd.conditional_expected_purchases(39, zero["frequency"], zero["recency"], zero["T"]).mean()
    assert expected == pytest.approx(0.225, abs=0.005)


def test_gamma_gamma_reproduces_the_published_fit(cdnow_summary):
    gg = fit_gamma_gamma(cdnow_summary)
    p = gg.params_
    assert (round(p["p"], 2), round(p["q"], 2), round(p["gamma"], 2)) == (6.25, 3.74, 15.44)
    assert gg.log_likelihood_ == pytest.approx(-4055.92, abs=0.01)
    assert gg.n_customers_ == 946
    first_ten = cdnow_summary.head(10)
    expected = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    assert np.allclose(gg.conditional_expected_average_value(first_ten["frequency"], first_ten["monetary_value"]), expected, atol=0.1)


def test_no_repeat_buyers_is_a_plain_error():
    one_each = pd.DataFrame({"frequency": [0, 0], "recency": [0.0, 0.0], "T": [5.0, 6.0], "monetary_value": [0.0, 0.0]})
    with pytest.raises(TierbookError, match="no customer made a repeat purchase"):
        fit_bgnbd(one_each)
    with pytest.raises(TierbookError, match="fewer than 2 repeat customers"):
        fit_gamma_gamma(one_each)


def test_recovers_the_demo_generators_true_parameters(tmp_path):
    """The demo's BG/NBD process in days (r 0.75, alpha 6, a 0.8, b 4 per week) and Gamma-Gamma
    spend (p 6, q 4, gamma 150), from its true purchase occasions (one per customer-day)."""
    from tierbook import demo

    truth = demo.generate(tmp_path / "demo", 20000, 20240101)
    orders = pd.read_parquet(tmp_path / "demo/truth_orders.parquet").rename(columns={"amount": "net_amount"})
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    summary = customer_summary(orders, "2026-01-01", time_unit="W")
    for model, true in ((fit_bgnbd(summary), truth["bgnbd"]), (fit_gamma_gamma(summary), truth["gamma_gamma"])):
        table = model.summary
        z = (table["estimate"] - pd.Series({k: true[k] for k in table.index})) / table["standard_error"]
        # within 3 standard errors (the daily Bernoulli purchases approximate the Poisson process)
        assert (z.abs() < 3).all(), table.assign(z=z)


def test_pareto_nbd_reproduces_the_published_fit_and_btyd_predictions(cdnow_summary):
    from tierbook.clv import ParetoNBDModel, fit_pareto_nbd

    model = fit_pareto_nbd(cdnow_summary)
    p = model.params_
    # published 0.553, 10.578, 0.606, 11.669 (reproduced 0.5533, 10.5776, 0.6062, 11.6679); LL -9595.0
    assert (round(p["r"], 2), round(p["alpha"], 1), round(p["s"], 2), round(p["beta"], 1)) == (0.55, 10.6, 0.61, 11.7)
    assert model.log_likelihood_ == pytest.approx(-9594.98, abs=0.05)
    # BTYD walkthrough: at its parameters, x = 26, t_x = 30.86, T = 31 -> P(alive) 0.9979, E[Y(52)] 25.46
    btyd = ParetoNBDModel()
    btyd.params_ = {"r": 0.5534, "alpha": 10.5802, "s": 0.6061, "beta": 11.6562}
    assert btyd.p_alive(26, 30.86, 31) == pytest.approx(0.9979, abs=1e-4)
    assert btyd.conditional_expected_purchases(52, 26, 30.86, 31) == pytest.approx(25.46, abs=0.01)


def test_pareto_nbd_fit_likelihood_is_the_per_customer_one_bit_for_bit(cdnow_summary):
    from tierbook.clv import ParetoNBDModel, _ParetoNBDLikelihood, _unique_rows

    rows, _ = _unique_rows(cdnow_summary, ["frequency", "recency", "T"])
    x, t_x, T = rows.T
    likelihood = _ParetoNBDLikelihood(x, t_x, T)
    assert len(likelihood.T_pairs[0]) < len(x)  # fewer hyp2f1 calls than rows
    # A0's term once per distinct (x, t) of the (x, t_x) and (x, T) pairs together: a pair in both lists is computed once
    n_tx, n_T = (len(pd.DataFrame({"x": x, "t": t}).drop_duplicates()) for t in (t_x, T))
    assert len(likelihood.a0_pairs[0]) == len(pd.DataFrame({"x": np.r_[x, x], "t": np.r_[t_x, T]}).drop_duplicates()) < n_tx + n_T
    # alpha > beta and alpha < beta take the two branches of A0
    for params in ([0.5533, 10.5777, 0.6062, 11.6684], [2.0, 30.0, 0.3, 4.0], [0.1, 1.0, 5.0, 100.0]):
        assert np.array_equal(likelihood(np.array(params)), ParetoNBDModel.log_likelihood(np.array(params), x, t_x, T))


def test_bgbb_reproduces_fader_hardie_shang_2010(shared_data):
    from tierbook.clv import fit_bgbb

    table = pd.read_csv(shared_data / "donations_bgbb/donations.csv")
    model = fit_bgbb(table)
    p = model.params_
    # published 1.204, 0.750, 0.657, 2.783; LL -33,225.6
    assert (round(p["alpha"], 3), round(p["beta"], 3), round(p["gamma"], 3), round(p["delta"], 3)) == (1.204, 0.750, 0.657, 2.783)
    assert model.log_likelihood_ == pytest.approx(-33225.58, abs=0.05)
    assert model.n_customers_ == 11104
    # P(alive in 2002) for (x, t_x) = (0, 0), (2, 4), (6, 6) after 6 opportunities: 0.11, 0.59, 0.93
    assert np.round(model.p_alive([0, 2, 6], [0, 4, 6], [6, 6, 6]), 2).tolist() == [0.11, 0.59, 0.93]


def test_cdnow_holdout_validation_matches_the_paper(shared_data, bgnbd, cdnow_summary):
    """Weeks 40-78: 1,882 repeat purchases; correlation of BG/NBD conditional expectations with
    the actual holdout purchases 0.626 (published); the model beats the naive repeat-rate baseline."""
    from tierbook.clv import holdout_actuals, holdout_validation

    raw = pd.read_csv(shared_data / "cdnow/CDNOW_sample.txt", sep=r"\s+", header=None, dtype=str,
                      names=["master_id", "customer_id", "date", "cds", "dollars"])
    orders = pd.DataFrame({"customer_id": raw["customer_id"], "order_date": pd.to_datetime(raw["date"], format="%Y%m%d"),
                           "net_amount": raw["dollars"].astype(float)})
    actual = holdout_actuals(orders, cdnow_summary, pd.Timestamp("1998-07-01"))
    assert actual.sum() == 1882
    result = holdout_validation(bgnbd, cdnow_summary, actual, 39)
    assert result["correlation"] == pytest.approx(0.626, abs=0.001)
    assert result["mae"] < result["mae_naive"]
    zero = result["by_frequency"].set_index("frequency").loc[0]
    assert zero["customers"] == 1411 and zero["actual"] == pytest.approx(334 / 1411)


def test_discounted_clv_by_hand(bgnbd, cdnow_summary):
    from tierbook.clv import discounted_clv, fit_gamma_gamma

    gg = fit_gamma_gamma(cdnow_summary)
    one = cdnow_summary.head(1)  # x = 2, t_x = 30.43, T = 38.86
    value = discounted_clv(bgnbd, gg, one, horizon=2, margin=0.5, annual_discount_rate=0.0, periods_per_year=52)
    purchases = bgnbd.conditional_expected_purchases(2, 2, one["recency"].iloc[0], one["T"].iloc[0])
    spend = gg.conditional_expected_average_value(2, one["monetary_value"].iloc[0])
    assert value[0] == pytest.approx(0.5 * spend * purchases)  # no discounting: margin x spend x purchases
    discounted = discounted_clv(bgnbd, gg, one, horizon=2, margin=0.5, annual_discount_rate=0.1, periods_per_year=52)
    assert value[0] * (1.1 ** (-2 / 52)) < discounted[0] < value[0]


def test_probability_of_purchases_matches_the_btyd_manual():
    """P(X(39) = 0) = 0.5737864 at the CDNOW fit (R BTYD's bgnbd.pmf; lifetimes' test), and the
    probabilities over n sum to 1."""
    from tierbook.clv import BetaGeoModel

    model = BetaGeoModel()
    model.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert model.probability_of_purchases(39, 0) == pytest.approx(0.5737864, abs=1e-7)
    assert sum(float(model.probability_of_purchases(39, n)) for n in range(300)) == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(model.probability_of_purchases(np.array([39.0, 39.0]), 3), model.probability_of_purchases(39, 3))


def _finite_differences(likelihood, theta, step=1e-6):
    """Central differences of the value (the gradient) and of the gradient (the Hessian)."""
    k = len(theta)
    gradient, hessian = np.zeros(k), np.zeros((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step * theta[i]
        gradient[i] = (likelihood(theta + e)[0] - likelihood(theta - e)[0]) / (2 * e[i])
        hessian[i] = (likelihood(theta + e)[1] - likelihood(theta - e)[1]) / (2 * e[i])
    return gradient, hessian


def test_analytic_derivatives_match_finite_differences(cdnow_summary):
    from tierbook.clv import BetaGeoModel, GammaGammaModel, _BetaGeoLikelihood, _GammaGammaLikelihood

    x, t_x, T, zbar = (cdnow_summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value"))
    repeat = x > 0
    for likelihood, theta, per_customer in (
            (_BetaGeoLikelihood(x, t_x, T), np.array([0.3, 5.0, 0.7, 2.0]), lambda th: BetaGeoModel.log_likelihood(th, x, t_x, T)),
            (_GammaGammaLikelihood(x[repeat], zbar[repeat]), np.array([5.0, 3.0, 12.0]),
             lambda th: GammaGammaModel.log_likelihood(th, x[repeat], zbar[repeat]))):
        value, gradient, hessian = likelihood(theta, hessian=True)
        assert value == pytest.approx(per_customer(theta).sum(), rel=1e-12)  # the distinct-value form is the same sum
        numeric_gradient, numeric_hessian = _finite_differences(likelihood, theta)
        assert np.allclose(gradient, numeric_gradient, rtol=1e-5, atol=1e-3)
        assert np.allclose(hessian, numeric_hessian, rtol=1e-5, atol=1e-2)
        assert np.allclose(hessian, hessian.T)


def test_distinct_rows_and_the_shortcuts_on_them_agree_with_the_plain_computation(bgnbd, cdnow_summary):
    from tierbook.clv import _distinct_rows

    x, t_x, T = (cdnow_summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    (ux, ix), (ut, it), (uT, iT) = _distinct_rows([x, t_x, T])[0]
    weights, row_of = _distinct_rows([x, t_x, T])[1:]
    assert weights.sum() == len(x) and len(weights) == len(set(zip(x, t_x, T)))
    assert (ux[ix][row_of] == x).all() and (ut[it][row_of] == t_x).all() and (uT[iT][row_of] == T).all()
    # conditional expectations on 23,570 customers (computed once per distinct (x, T)) equal the per-customer formula
    many = pd.concat([cdnow_summary] * 10, ignore_index=True)
    fast = bgnbd.conditional_expected_purchases(39, many["frequency"], many["recency"], many["T"])
    plain = bgnbd._purchases_if_alive(39, many["frequency"].to_numpy(float), many["T"].to_numpy(float)) * bgnbd.p_alive(
        many["frequency"], many["recency"], many["T"])
    assert len(many) > 10_000 and np.allclose(fast, plain, rtol=1e-13)
    assert fast[:len(cdnow_summary)].sum() == pytest.approx(bgnbd.conditional_expected_purchases(
        39, cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"]).sum(), rel=1e-13)


def test_discounted_clv_in_periods_of_several_units_is_lifetimes_monthly_sum(bgnbd, cdnow_summary):
    """12 months of 4 weeks discounted monthly at 1 %: lifetimes' customer_lifetime_value sum."""
    from tierbook.clv import discounted_clv, fit_gamma_gamma

    gg = fit_gamma_gamma(cdnow_summary)
    ours = discounted_clv(bgnbd, gg, cdnow_summary, horizon=12, margin=1.0, annual_discount_rate=1.01**12 - 1, periods_per_year=12,
                          period_length=4)
    x, t_x, T = (cdnow_summary[c] for c in ("frequency", "recency", "T"))
    spend = gg.conditional_expected_average_value(x, cdnow_summary["monetary_value"])
    by_hand = sum(spend * (bgnbd.conditional_expected_purchases(4 * k, x, t_x, T) - bgnbd.conditional_expected_purchases(4 * (k - 1), x, t_x, T))
                  / 1.01**k for k in range(1, 13))
    assert np.allclose(ours, by_hand, rtol=1e-12)
    assert ours.sum() == pytest.approx(by_hand.sum(), rel=1e-12) and ours.sum() > 0


def test_pareto_nbd_standard_errors_on_first_use_are_the_central_difference_hessians(cdnow_summary):
    """The derivative-free fit leaves its Hessian (40 likelihood evaluations) until the standard errors are
    read; they are then what the fit used to compute at once: the inverse central-difference Hessian
    of the same negative log-likelihood at the optimum, by the delta method."""
    from scipy.optimize import minimize

    from tierbook.clv import _hessian, _ParetoNBDLikelihood, _unique_rows, fit_pareto_nbd

    model = fit_pareto_nbd(cdnow_summary)
    assert callable(model._standard_errors)  # not computed by the fit
    rows, weights = _unique_rows(cdnow_summary, ["frequency", "recency", "T"])
    likelihood = _ParetoNBDLikelihood(*rows.T)

    def neg_ll(log_params):
        with np.errstate(all="ignore"):
            value = -(weights * likelihood(np.exp(log_params))).sum()
        return value if np.isfinite(value) else 1e300

    # the fit's own optimum (L-BFGS-B converges here; the log parameters, not the log of the parameters)
    start = np.log([1.0, max(rows[:, 2].mean(), 1.0), 1.0, max(rows[:, 2].mean(), 1.0)])
    optimum = minimize(neg_ll, start, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 5000})
    theta = np.exp(optimum.x)
    assert optimum.success and theta.tolist() == [model.params_[k] for k in model.names]
    expected = theta * np.sqrt(np.clip(np.diag(np.linalg.inv(_hessian(neg_ll, optimum.x))), 0, None))
    assert list(model.standard_errors_.values()) == expected.tolist()
    assert model.summary["standard_error"].tolist() == expected.tolist() and not callable(model._standard_errors)
    # CDNOW's 2,357 customers pin the purchase rates (r 0.553 +- 0.048, alpha 10.58 +- 0.84) but hardly the drop-out (beta 11.7 +- 6.2)
    se = model.standard_errors_
    assert 0 < se["r"] < 0.1 * model.params_["r"] and 0 < se["alpha"] < 0.1 * model.params_["alpha"] and se["beta"] > 0.4 * model.params_["beta"]
