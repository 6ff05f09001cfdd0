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

Status: the models and their predictions; the report section (holdout validation, CLV by tier)
and Pareto/NBD and BG/BB are not built yet, so no section of the pipeline uses this module.
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
        result = minimize(neg_ll, np.log(start), method="L-BFGS-B")
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


def fit_bgnbd(summary: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(summary)


def fit_gamma_gamma(summary: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(summary)
