"""Customer lifetime value models fitted by maximum likelihood with scipy: BG/NBD (purchases and
P(alive)) and Gamma-Gamma (spend per purchase).

Why not lifetimes or PyMC-Marketing: lifetimes has been unmaintained since 2020 and breaks on
pandas 2+ (NOTES.md); PyMC-Marketing pulls in pymc/pytensor (2-4 s import, 17-25 s first compile).
The likelihoods below are in log space (``gammaln``, ``betaln``, ``logaddexp``), optimised over the
log parameters, on the unique (frequency, recency, T) rows weighted by their counts.

The summary columns follow lifetimes and PyMC-Marketing: ``frequency`` (repeat purchases),
``recency`` (t_x, first to last purchase), ``T`` (first purchase to the end of the period),
``monetary_value`` (mean spend of the repeat purchases), all in one time unit
(``tierbook.summary.customer_summary``).

Also Pareto/NBD (Schmittlein, Morrison & Colombo 1987; the alternative to BG/NBD) and BG/BB
(Fader, Hardie & Shang 2010) for discrete purchase opportunities (annual renewals, donation drives).

Status: the models and their predictions; the report section (holdout validation, CLV by tier)
is not built yet, so no section of the pipeline uses this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from .errors import TierbookError


def _unique_rows(summary: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``columns`` and how many customers share each (the fit's weights)."""
    grouped = summary.groupby(columns, sort=True).size()
    rows = np.array(grouped.index.tolist(), dtype=float).reshape(len(grouped), len(columns))
    return rows, grouped.to_numpy(dtype=float)


def _hessian(fun, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * step, np.eye(n)[j] * step
            value = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (4 * step * step)
            h[i, j] = h[j, i] = value
    return h


@dataclass
class _Fit:
    names: tuple[str, ...] = ()
    params_: dict = field(default_factory=dict)
    log_likelihood_: float = float("nan")
    standard_errors_: dict = field(default_factory=dict)
    converged_: bool = False
    n_customers_: int = 0

    def _optimise(self, neg_ll, start: np.ndarray) -> None:
        # tight tolerances: the default ftol stops BG/BB on donations at delta 2.7840 instead of 2.7834
        result = minimize(neg_ll, np.log(start), method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 5000})
        if not result.success:
            result = minimize(neg_ll, result.x, method="Nelder-Mead", options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-10})
        theta = np.exp(result.x)
        self.params_ = dict(zip(self.names, theta))
        self.log_likelihood_ = -float(result.fun)
        self.converged_ = bool(result.success)
        # standard errors: inverse Hessian in log space, delta method back to the parameters
        try:
            cov_log = np.linalg.inv(_hessian(neg_ll, result.x))
            se = theta * np.sqrt(np.clip(np.diag(cov_log), 0, None))
        except np.linalg.LinAlgError:
            se = np.full(len(theta), np.nan)
        self.standard_errors_ = dict(zip(self.names, se))

    @property
    def summary(self) -> pd.DataFrame:
        """Estimate, standard error and a 95 % interval per parameter."""
        est = pd.Series(self.params_)
        se = pd.Series(self.standard_errors_)
        return pd.DataFrame({"estimate": est, "standard_error": se, "lower_95": est - 1.96 * se, "upper_95": est + 1.96 * se})


@dataclass
class BetaGeoModel(_Fit):
    """BG/NBD (Fader, Hardie & Lee 2005): purchases while alive ~ Poisson(lambda), lambda ~
    Gamma(r, alpha); after each repeat purchase the customer drops out with p ~ Beta(a, b)."""

    names: tuple[str, ...] = ("r", "alpha", "a", "b")

    @staticmethod
    def log_likelihood(params, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    def fit(self, summary: pd.DataFrame) -> BetaGeoModel:
        rows, weights = _unique_rows(summary, ["frequency", "recency", "T"])
        if len(rows) == 0 or (rows[:, 0] > 0).sum() == 0:
            raise TierbookError("BG/NBD: no customer made a repeat purchase; the model cannot be fitted on this data")
        x, t_x, T = rows.T

        def neg_ll(log_params):
            value = -(weights * self.log_likelihood(np.exp(log_params), x, t_x, T)).sum()
            return value if np.isfinite(value) else 1e300

        self._optimise(neg_ll, np.array([1.0, max(T.mean(), 1.0), 1.0, 1.0]))
        self.n_customers_ = int(weights.sum())
        return self

    @property
    def _p(self):
        return (self.params_[k] for k in self.names)

    def expected_purchases(self, t) -> np.ndarray:
        """E[X(t)]: expected purchases of a new customer in a period of length t (the fit's unit)."""
        r, alpha, a, b = self._p
        t = np.asarray(t, dtype=float)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))

    def probability_of_purchases(self, t, n: int) -> np.ndarray:
        """P(X(t) = n) for a new customer (Fader, Hardie & Lee 2005, eq. 8)."""
        r, alpha, a, b = self._p
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore"):
            log_q, log_p = np.log(alpha / (alpha + t)), np.log(t / (alpha + t))
        head = betaln(a, b + n) - betaln(a, b) + gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * log_q
        first = np.exp(head + (n * log_p if n > 0 else 0.0))
        if n == 0:
            return first
        partial = sum(np.exp(gammaln(r + j) - gammaln(r) - gammaln(j + 1) + (j * log_p if j > 0 else 0.0)) for j in range(n))
        return first + np.exp(betaln(a + 1, b + n - 1) - betaln(a, b)) * (1 - np.exp(r * log_q) * partial)

    def _odds_dead(self, x, t_x, T):
        r, alpha, a, b = self._p
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(x > 0, np.exp(log_odds), 0.0)

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive at T | x, t_x, T)."""
        return 1.0 / (1.0 + self._odds_dead(frequency, recency, T))

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in the next t time units."""
        r, alpha, a, b = self._p
        x, T_ = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - ((alpha + T_) / (alpha + T_ + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T_ + t))
        return first * second / (1 + self._odds_dead(frequency, recency, T))


@dataclass
class GammaGammaModel(_Fit):
    """Gamma-Gamma spend model (Fader & Hardie 2013 note 025) on repeat customers: each purchase's
    value ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across customers."""

    names: tuple[str, ...] = ("p", "q", "gamma")

    @staticmethod
    def log_likelihood(params, x, zbar) -> np.ndarray:
        p, q, gamma = params
        px = p * x
        return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + (px - 1) * np.log(zbar)
                + px * np.log(x) - (px + q) * np.log(gamma + x * zbar))

    def fit(self, summary: pd.DataFrame) -> GammaGammaModel:
        repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        if len(repeat) < 2:
            raise TierbookError("Gamma-Gamma: fewer than 2 repeat customers with positive spend; the model cannot be fitted")
        rows, weights = _unique_rows(repeat, ["frequency", "monetary_value"])
        x, zbar = rows.T

        def neg_ll(log_params):
            value = -(weights * self.log_likelihood(np.exp(log_params), x, zbar)).sum()
            return value if np.isfinite(value) else 1e300

        self._optimise(neg_ll, np.array([1.0, 1.0, max(zbar.mean(), 1.0)]))
        self.n_customers_ = int(weights.sum())
        return self

    def conditional_expected_average_value(self, frequency, monetary_value) -> np.ndarray:
        """E[Z | x, zbar]: a weighted mean of the population mean and the customer's own mean."""
        p, q, gamma = (self.params_[k] for k in self.names)
        x, zbar = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        return (gamma + x * zbar) * p / (p * x + q - 1)


def _log_diff(l1, l2):
    """log(exp(l1) - exp(l2)) for l1 >= l2."""
    with np.errstate(divide="ignore"):
        return l1 + np.log1p(-np.exp(np.minimum(l2 - l1, 0.0)))


@dataclass
class ParetoNBDModel(_Fit):
    """Pareto/NBD: purchases ~ Poisson(lambda), lambda ~ Gamma(r, alpha); lifetimes ~
    Exponential(mu), mu ~ Gamma(s, beta) (Fader, Hardie & Lee's 2005 note on its likelihood)."""

    names: tuple[str, ...] = ("r", "alpha", "s", "beta")

    @staticmethod
    def _log_a0(params, x, t_x, T):
        r, alpha, s, beta = params
        rsx = r + s + x
        if alpha >= beta:
            big, second = alpha, s + 1
        else:
            big, second = beta, r + x
        diff = abs(alpha - beta)
        l1 = np.log(hyp2f1(rsx, second, rsx + 1, diff / (big + t_x))) - rsx * np.log(big + t_x)
        l2 = np.log(hyp2f1(rsx, second, rsx + 1, diff / (big + T))) - rsx * np.log(big + T)
        return _log_diff(l1, l2)

    @classmethod
    def log_likelihood(cls, params, x, t_x, T) -> np.ndarray:
        r, alpha, s, beta = params
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        term1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        term2 = np.log(s) - np.log(r + s + x) + cls._log_a0(params, x, t_x, T)
        return head + np.logaddexp(term1, term2)

    def fit(self, summary: pd.DataFrame) -> ParetoNBDModel:
        rows, weights = _unique_rows(summary, ["frequency", "recency", "T"])
        if len(rows) == 0 or (rows[:, 0] > 0).sum() == 0:
            raise TierbookError("Pareto/NBD: no customer made a repeat purchase; the model cannot be fitted on this data")
        x, t_x, T = rows.T

        def neg_ll(log_params):
            with np.errstate(all="ignore"):
                value = -(weights * self.log_likelihood(np.exp(log_params), x, t_x, T)).sum()
            return value if np.isfinite(value) else 1e300

        self._optimise(neg_ll, np.array([1.0, max(T.mean(), 1.0), 1.0, max(T.mean(), 1.0)]))
        self.n_customers_ = int(weights.sum())
        return self

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        r, alpha, s, beta = (self.params_[k] for k in self.names)
        x, t_x, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        log_ratio = (np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T_) + s * np.log(beta + T_)
                     + self._log_a0((r, alpha, s, beta), x, t_x, T_))
        return 1.0 / (1.0 + np.exp(log_ratio))

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        r, alpha, s, beta = (self.params_[k] for k in self.names)
        x, T_ = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
        rate = (r + x) * (beta + T_) / ((alpha + T_) * (s - 1))
        return rate * (1 - ((beta + T_) / (beta + T_ + t)) ** (s - 1)) * self.p_alive(frequency, recency, T)


@dataclass
class BetaGeoBetaBinomModel(_Fit):
    """BG/BB for discrete opportunities: a (frequency, recency, periods) table, weighted by
    ``weights`` when given (one row per pattern, as published datasets are)."""

    names: tuple[str, ...] = ("alpha", "beta", "gamma", "delta")

    @staticmethod
    def log_likelihood(params, x, t_x, n) -> np.ndarray:
        alpha, beta, gamma, delta = params
        base = betaln(alpha, beta) + betaln(gamma, delta)
        out = betaln(alpha + x, beta + n - x) + betaln(gamma, delta + n) - base
        terms = [out]
        for i in range(int(np.max(n - t_x)) if len(n) else 0):
            term = betaln(alpha + x, beta + t_x - x + i) + betaln(gamma + 1, delta + t_x + i) - base
            terms.append(np.where(i < n - t_x, term, -np.inf))
        return np.logaddexp.reduce(np.vstack(terms), axis=0)

    def fit(self, table: pd.DataFrame) -> BetaGeoBetaBinomModel:
        weights = table["weights"].to_numpy(dtype=float) if "weights" in table else np.ones(len(table))
        x, t_x, n = (table[c].to_numpy(dtype=float) for c in ("frequency", "recency", "periods"))

        def neg_ll(log_params):
            value = -(weights * self.log_likelihood(np.exp(log_params), x, t_x, n)).sum()
            return value if np.isfinite(value) else 1e300

        self._optimise(neg_ll, np.ones(4))
        self.n_customers_ = int(weights.sum())
        return self

    def p_alive(self, frequency, recency, periods) -> np.ndarray:
        """P(alive at the next opportunity | x, t_x, n)."""
        alpha, beta, gamma, delta = (self.params_[k] for k in self.names)
        x, t_x, n = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (frequency, recency, periods))
        log_alive = betaln(alpha + x, beta + n - x) - betaln(alpha, beta) + betaln(gamma, delta + n + 1) - betaln(gamma, delta)
        return np.exp(log_alive - self.log_likelihood((alpha, beta, gamma, delta), x, t_x, n))


def fit_pareto_nbd(summary: pd.DataFrame) -> ParetoNBDModel:
    return ParetoNBDModel().fit(summary)


def fit_bgbb(table: pd.DataFrame) -> BetaGeoBetaBinomModel:
    return BetaGeoBetaBinomModel().fit(table)


def compare_models(summary: pd.DataFrame) -> pd.DataFrame:
    """BG/NBD against Pareto/NBD on the same summary: parameters, log-likelihood, AIC."""
    rows = []
    for name, model in (("BG/NBD", fit_bgnbd(summary)), ("Pareto/NBD", fit_pareto_nbd(summary))):
        rows.append({"model": name, "log_likelihood": model.log_likelihood_, "aic": 2 * len(model.names) - 2 * model.log_likelihood_,
                     "converged": model.converged_, **{f"param_{k}": v for k, v in model.params_.items()}})
    return pd.DataFrame(rows)


def fit_bgnbd(summary: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(summary)


def fit_gamma_gamma(summary: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(summary)


# --------------------------------------------------------------------------- value and validation


def discounted_clv(bg: BetaGeoModel, gg: GammaGammaModel, summary: pd.DataFrame, horizon: int, margin: float,
                   annual_discount_rate: float, periods_per_year: float) -> np.ndarray:
    """CLV over ``horizon`` periods of the summary's time unit: margin x E[spend] x expected
    purchases in each period, discounted per period at the annual rate converted to the unit."""
    rate = (1 + annual_discount_rate) ** (1 / periods_per_year) - 1
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    spend = gg.conditional_expected_average_value(x, summary["monetary_value"].to_numpy(dtype=float))
    value = np.zeros(len(summary))
    previous = np.zeros(len(summary))
    for k in range(1, horizon + 1):
        cumulative = bg.conditional_expected_purchases(k, x, t_x, T)
        value += (cumulative - previous) / (1 + rate) ** k
        previous = cumulative
    return margin * spend * value


def holdout_actuals(orders: pd.DataFrame, calibration: pd.DataFrame, holdout_end: pd.Timestamp,
                    occasion: str = "day") -> pd.Series:
    """Purchase occasions of each calibration customer from the calibration's as_of up to
    ``holdout_end`` (exclusive), counted like the summary counts them."""
    start = pd.Timestamp(calibration.attrs["as_of"])
    window = orders[(orders["order_date"] >= start) & (orders["order_date"] < holdout_end)]
    keys = window["order_date"].dt.normalize() if occasion == "day" else window["source"].astype(str) + window["order_id"].astype(str)
    counts = pd.DataFrame({"customer_id": window["customer_id"].astype(str), "key": keys}).drop_duplicates().groupby("customer_id").size()
    return counts.reindex(calibration["customer_id"].astype(str)).fillna(0).to_numpy()


def holdout_validation(model, calibration: pd.DataFrame, actual: np.ndarray, holdout_periods: float) -> dict:
    """Predicted vs actual holdout purchases: MAE and correlation, against the naive baseline of
    each customer repeating their calibration rate (frequency / T per period)."""
    predicted = model.conditional_expected_purchases(holdout_periods, calibration["frequency"], calibration["recency"], calibration["T"])
    naive = calibration["frequency"].to_numpy(dtype=float) / np.maximum(calibration["T"].to_numpy(dtype=float), 1e-9) * holdout_periods
    by_frequency = pd.DataFrame({"frequency": np.minimum(calibration["frequency"].to_numpy(), 7), "actual": actual,
                                 "predicted": predicted, "naive": naive}).groupby("frequency").agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean"), naive=("naive", "mean")).reset_index()
    return {
        "mae": float(np.mean(np.abs(predicted - actual))), "mae_naive": float(np.mean(np.abs(naive - actual))),
        "correlation": float(np.corrcoef(predicted, actual)[0, 1]) if np.std(actual) > 0 else float("nan"),
        "correlation_naive": float(np.corrcoef(naive, actual)[0, 1]) if np.std(actual) > 0 and np.std(naive) > 0 else float("nan"),
        "total_actual": float(actual.sum()), "total_predicted": float(predicted.sum()), "by_frequency": by_frequency,
        "predicted": predicted,
    }
