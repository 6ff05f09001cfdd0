"""Customer lifetime value models fitted by maximum likelihood with scipy: BG/NBD (purchases and
P(alive)) and Gamma-Gamma (spend per purchase).

Why not lifetimes or PyMC-Marketing: measured (``bench/clv_time.py``, output in
``bench/RESULTS.md``) on 1M simulated customers / 5.4M transactions, the chain summary + BG/NBD
fit + Gamma-Gamma fit + every customer's 30-day purchases, P(alive), expected spend and 12-month
discounted CLV took 0.95 s here (median of 3, min-max 0.91-1.00), against 25.4 s for lifetimes
0.11.3 (26.7x; BG/NBD fit 7.3 s against our 0.28 s) and 11.4 s for PyMC-Marketing 0.19.2 fitted by
MAP (12.0x), on the same file in the same run, with the same parameters to 1e-7 (lifetimes) and
1e-5 (PyMC-Marketing) relative. Besides, lifetimes has been unmaintained since 2020 and needs
pandas < 2, numpy < 1.25 and scipy < 1.11; PyMC-Marketing pulls in pymc/pytensor (8.8 s import
and a 14 s first run while it compiles, in that run).

How: the log-likelihoods are in log space (``gammaln``, ``betaln``, log-sum-exp) and maximised
over the log parameters by a trust-region Newton method with analytic gradients and Hessians (the
Hessian also gives the standard errors). Each term is computed once per distinct value it depends
on: per distinct x, T or t_x, and only the log-sum-exp per distinct (x, t_x, T) row. Predictions
evaluate ``hyp2f1`` once per distinct (x, T). Pareto/NBD and BG/BB keep a derivative-free fit:
they are fitted on small tables (model comparison, donations) where it costs little.

The summary columns follow lifetimes and PyMC-Marketing: ``frequency`` (repeat purchases),
``recency`` (t_x, first to last purchase), ``T`` (first purchase to the end of the period),
``monetary_value`` (mean spend of the repeat purchases), all in one time unit
(``tierbook.summary.customer_summary``).

Also Pareto/NBD (Schmittlein, Morrison & Colombo 1987; the alternative to BG/NBD) and BG/BB
(Fader, Hardie & Shang 2010) for discrete purchase opportunities (annual renewals, donation drives).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1, polygamma

from .errors import TierbookError
from .summary import customer_codes, unique_sorted
from .tiers import reindex_sorted


def _dot(weights: np.ndarray, values: np.ndarray) -> float:
    """Sum of weights x values over many rows, without BLAS: with OpenBLAS's threads a 493k-row dot
    took up to 7.6 ms instead of 0.15 ms on this 2-core machine while another process ran."""
    return float(np.einsum("i,i->", weights, values))


def _distinct_rows(columns: list[np.ndarray]) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """The distinct rows of ``columns`` (equal-length 1-D arrays; NaN counts as a value): per column
    its distinct values and each distinct row's index into them; how many input rows share each
    distinct row; and each input row's distinct row. Hashing each column (``pd.factorize``) and then
    one packed integer key: 0.12 s for (x, t_x, T) of 1M customers, against 0.70 s for the pandas
    groupby it replaces (best of 3, same run)."""
    factorized = [pd.factorize(np.asarray(c, dtype=float), use_na_sentinel=False) for c in columns]  # NaN: a value of its own
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for codes, uniques in factorized:
        key = key * len(uniques) + codes  # < 2**63 while the distinct counts multiply to less
    row_of, keys = pd.factorize(key)
    weights = np.bincount(row_of).astype(float)
    per_column = []
    for codes, uniques in reversed(factorized):
        per_column.append((np.asarray(uniques, dtype=float), keys % len(uniques)))
        keys = keys // len(uniques)
    return per_column[::-1], weights, row_of


def _unique_rows(summary: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``columns`` (rows with a missing value dropped) and how many customers
    share each (the fit's weights)."""
    values = [summary[c].to_numpy(dtype=float) for c in columns]
    complete = ~np.any([np.isnan(v) for v in values], axis=0) if len(summary) else np.zeros(0, dtype=bool)
    if not complete.any():
        return np.zeros((0, len(columns))), np.zeros(0)
    per_column, weights, _ = _distinct_rows([v[complete] for v in values])
    return np.column_stack([uniques[index] for uniques, index in per_column]), weights


def _hessian(fun, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function (for the models without a gradient)."""
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
    converged_: bool = False
    n_customers_: int = 0

    @property
    def standard_errors_(self) -> dict:
        """Standard error per parameter (delta method from the Hessian in log space). A derivative-free fit
        computes them here, on first use: its Hessian by central differences took 40 of the 280 likelihood
        evaluations of Pareto/NBD on the 1M demo's calibration (1.0 of 7.8 s CPU, 2026-12-02), and the
        holdout validation never reads them."""
        if callable(getattr(self, "_standard_errors", None)):
            self._standard_errors = self._standard_errors()
        return getattr(self, "_standard_errors", {})

    def _optimise(self, neg_ll, start: np.ndarray) -> None:
        """Minimise ``neg_ll(log_params)`` without derivatives (Pareto/NBD, BG/BB)."""
        # tight tolerances: the default ftol stops BG/BB on donations at delta 2.7840 instead of 2.7834
        result = minimize(neg_ll, np.log(start), method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 5000})
        if not result.success:
            result = minimize(neg_ll, result.x, method="Nelder-Mead", options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-10})
        self._store(result.x, -float(result.fun), bool(result.success), lambda: _hessian(neg_ll, result.x), lazy=True)

    def _optimise_newton(self, log_likelihood, start: np.ndarray, n: float) -> None:
        """Maximise ``log_likelihood(params, hessian) -> (value, gradient, Hessian)`` (natural
        parameters) over the log parameters by a trust-region Newton method with the analytic
        derivatives. The optimiser sees the mean per customer, so that one tolerance fits 2,357
        customers and 1M alike. On the 1M benchmark: 8-9 likelihood evaluations instead of
        18-51 with L-BFGS-B and the analytic gradient, and the Hessian for the standard errors is exact."""
        cache: dict = {}
        best = {"value": np.inf, "x": np.log(start)}

        def evaluate(log_params):
            key = log_params.tobytes()
            if key not in cache:
                cache.clear()
                theta = np.exp(log_params)
                with np.errstate(all="ignore"):
                    value, g, h = log_likelihood(theta, hessian=True)
                    g_log = g * theta  # chain rule to the log parameters
                    h_log = h * np.outer(theta, theta) + np.diag(g_log)
                # finite in the natural parameters can still overflow in the log ones (r ~ 1e8 on 10 customers
                # who buy like clockwork): trust-exact's Cholesky then raised "array must not contain infs or NaNs"
                if not (np.isfinite(value) and np.isfinite(g_log).all() and np.isfinite(h_log).all()):
                    cache[key] = 1e300, np.zeros_like(theta), np.eye(len(theta))  # outside the domain: the step is refused
                else:
                    cache[key] = -value / n, -g_log / n, -h_log / n
                if cache[key][0] < best["value"]:
                    best.update(value=cache[key][0], x=log_params.copy())
            return cache[key]

        try:
            result = minimize(lambda v: evaluate(v)[0], np.log(start), jac=lambda v: evaluate(v)[1], hess=lambda v: evaluate(v)[2],
                              method="trust-exact", options={"gtol": 1e-9, "maxiter": 500})
            x = result.x
            # trust-exact can stop with "a bad approximation" once the gradient is at rounding level (GG on 1M: 1e-9)
            converged = bool(result.success) or bool(np.max(np.abs(evaluate(x)[1])) < 1e-7)
        except (ValueError, np.linalg.LinAlgError):
            # parameters running off towards infinity (ten customers buying like clockwork: no heterogeneity, no
            # drop-out) overflow trust-exact's own linear algebra; the best point reached is kept, not converged
            x, converged = best["x"], False
        with np.errstate(all="ignore"):
            self._store(x, -float(evaluate(x)[0]) * n, converged, lambda: evaluate(x)[2] * n)

    def _store(self, log_params: np.ndarray, log_likelihood: float, converged: bool, hessian, lazy: bool = False) -> None:
        theta = np.exp(log_params)
        self.params_ = dict(zip(self.names, theta))
        self.log_likelihood_ = log_likelihood
        self.converged_ = converged

        def standard_errors() -> dict:
            # inverse Hessian in log space, delta method back to the parameters
            try:
                cov_log = np.linalg.inv(hessian())
                se = theta * np.sqrt(np.clip(np.diag(cov_log), 0, None))
            except np.linalg.LinAlgError:
                se = np.full(len(theta), np.nan)
            return dict(zip(self.names, se))

        self._standard_errors = standard_errors if lazy else standard_errors()  # lazy: see standard_errors_

    @property
    def summary(self) -> pd.DataFrame:
        """Estimate, standard error and a 95 % interval per parameter."""
        est = pd.Series(self.params_)
        se = pd.Series(self.standard_errors_)
        return pd.DataFrame({"estimate": est, "standard_error": se, "lower_95": est - 1.96 * se, "upper_95": est + 1.96 * se})


class _BetaGeoLikelihood:
    """The BG/NBD log-likelihood of a summary with its analytic gradient and Hessian, each term
    computed once per distinct value it depends on: gammaln/betaln/digamma per distinct x (356 on
    the 1M benchmark), log(alpha + T) per distinct T (731) and log(alpha + t_x) per distinct t_x
    (820). Only the log-sum-exp of the two ways to have seen (x, t_x, T) is per distinct row with
    x > 0 (493k rows for 1M customers); customers with x = 0 contribute -r log(alpha + T), per
    distinct T."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
        ((self.x, ix), (self.t_x, it), (self.T, iT)), weights, _ = _distinct_rows([x, t_x, T])
        self.n = weights.sum()
        self.per_x = np.bincount(ix, weights, len(self.x))
        none = self.x[ix] == 0
        self.none_per_T = np.bincount(iT[none], weights[none], len(self.T))
        some = ~none
        self.ix, self.it, self.iT, self.w = ix[some], it[some], iT[some], weights[some]
        self.row_x = self.x[self.ix]
        self.repeat_x = np.where(self.x > 0, self.x, 1.0)  # b + x - 1 appears only where x > 0

    def __call__(self, theta: np.ndarray, hessian: bool = False):
        """Log-likelihood and gradient at the natural parameters, and the Hessian when asked."""
        r, alpha, a, b = theta
        x, per_x, n = self.x, self.per_x, self.n
        nT, ntx, nx = len(self.T), len(self.t_x), len(x)
        # terms in x alone: gammaln(r + x) - gammaln(r) + r log(alpha) + betaln(a, b + x) - betaln(a, b)
        ll = per_x @ (gammaln(r + x) + betaln(a, b + x)) + n * (r * np.log(alpha) - gammaln(r) - betaln(a, b))
        psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
        g = np.array([per_x @ digamma(r + x) + n * (np.log(alpha) - digamma(r)), n * r / alpha,
                      per_x @ (psi_ab - psi_abx), per_x @ (digamma(b + x) - psi_abx) + n * (psi_ab - digamma(b))])
        h = np.zeros((4, 4))
        if hessian:
            tri_ab, tri_abx = n * polygamma(1, a + b), per_x @ polygamma(1, a + b + x)
            h[0, 0] = per_x @ polygamma(1, r + x) - n * polygamma(1, r)
            h[0, 1], h[1, 1] = n / alpha, -n * r / alpha**2
            h[2, 2] = h[2, 3] = tri_ab - tri_abx
            h[3, 3] = per_x @ polygamma(1, b + x) - tri_abx - n * polygamma(1, b) + tri_ab
        # no repeat purchase: alive at T, -r log(alpha + T)
        log_T, inv_T, inv_tx = np.log(alpha + self.T), 1 / (alpha + self.T), 1 / (alpha + self.t_x)
        ll -= r * (self.none_per_T @ log_T)
        g[0] -= self.none_per_T @ log_T
        g[1] -= r * (self.none_per_T @ inv_T)
        if hessian:
            h[0, 1] -= self.none_per_T @ inv_T
            h[1, 1] += r * (self.none_per_T @ inv_T**2)
        # x > 0: log(exp(A3) + exp(A4)), A3 = -(r + x) log(alpha + T) (alive at T),
        # A4 = log a - log(b + x - 1) - (r + x) log(alpha + t_x) (dropped out after the last purchase)
        rx = r + self.row_x
        row_log_T, row_log_tx = log_T[self.iT], np.log(alpha + self.t_x)[self.it]
        inv_b = 1 / (b + self.repeat_x - 1)
        a3 = -rx * row_log_T
        a4 = (np.log(a) + np.log(inv_b))[self.ix] - rx * row_log_tx
        # log(exp(a3) + exp(a4)) = max + log1p(exp(-|a3 - a4|)): np.logaddexp is not vectorised
        # (10.5 ms on 493k rows against 2 ms for these passes)
        diff = a3 - a4
        small = np.exp(-np.abs(diff))
        ll += _dot(self.w, np.maximum(a3, a4) + np.log1p(small))
        share = np.where(diff >= 0, 1.0, small) / (1.0 + small)  # exp(A3) / (exp(A3) + exp(A4)): P(alive at T | row)
        alive = self.w * share
        dropped = self.w - alive
        alive_rx_T, dropped_rx_tx = np.bincount(self.iT, alive * rx, nT), np.bincount(self.it, dropped * rx, ntx)
        dropped_per_x = np.bincount(self.ix, dropped, nx)
        g[0] -= _dot(alive, row_log_T) + _dot(dropped, row_log_tx)
        g[1] -= alive_rx_T @ inv_T + dropped_rx_tx @ inv_tx
        g[2] += dropped_per_x.sum() / a
        g[3] -= dropped_per_x @ inv_b
        if hessian:
            # share x Hessian(A3) + (1 - share) x Hessian(A4) + share (1 - share) D D', D = grad A3 - grad A4
            #   = (log(alpha + t_x) - log(alpha + T), (r + x) (1/(alpha + t_x) - 1/(alpha + T)), -1/a, 1/(b + x - 1))
            h[0, 1] -= np.bincount(self.iT, alive, nT) @ inv_T + np.bincount(self.it, dropped, ntx) @ inv_tx
            h[1, 1] += alive_rx_T @ inv_T**2 + dropped_rx_tx @ inv_tx**2
            h[2, 2] -= dropped_per_x.sum() / a**2
            h[3, 3] += dropped_per_x @ inv_b**2
            v = alive * (1 - share)
            d_r, d_alpha = row_log_tx - row_log_T, rx * (inv_tx[self.it] - inv_T[self.iT])
            v_r, v_alpha = v * d_r, v * d_alpha
            h[0, 0] += _dot(v_r, d_r)
            h[0, 1] += _dot(v_r, d_alpha)
            h[1, 1] += _dot(v_alpha, d_alpha)
            v_x, v_r_x, v_alpha_x = (np.bincount(self.ix, weights, nx) for weights in (v, v_r, v_alpha))
            h[0, 2], h[1, 2] = -v_r_x.sum() / a, -v_alpha_x.sum() / a
            h[0, 3], h[1, 3] = v_r_x @ inv_b, v_alpha_x @ inv_b
            h[2, 2] += v_x.sum() / a**2
            h[2, 3] -= v_x @ inv_b / a
            h[3, 3] += v_x @ inv_b**2
            h = np.triu(h) + np.triu(h, 1).T
        return float(ll), g, h


@dataclass
class BetaGeoModel(_Fit):
    """BG/NBD (Fader, Hardie & Lee 2005): purchases while alive ~ Poisson(lambda), lambda ~
    Gamma(r, alpha); after each repeat purchase the customer drops out with p ~ Beta(a, b)."""

    names: tuple[str, ...] = ("r", "alpha", "a", "b")

    @staticmethod
    def log_likelihood(params, x, t_x, T) -> np.ndarray:
        """Each customer's log-likelihood (the straightforward form; the fit uses ``_BetaGeoLikelihood``)."""
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    def fit(self, summary: pd.DataFrame) -> BetaGeoModel:
        x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
        complete = ~(np.isnan(x) | np.isnan(t_x) | np.isnan(T))
        if not (x[complete] > 0).any():
            raise TierbookError("BG/NBD: no customer made a repeat purchase; the model cannot be fitted on this data")
        likelihood = _BetaGeoLikelihood(x[complete], t_x[complete], T[complete])
        self._optimise_newton(likelihood, np.array([1.0, max(likelihood.T.mean(), 1.0), 1.0, 1.0]), likelihood.n)
        self.n_customers_ = int(likelihood.n)
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

    def _purchases_if_alive(self, t, x, T) -> np.ndarray:
        """E[Y(t) | x, T, alive at T]: depends on x and T only, not on t_x."""
        r, alpha, a, b = self._p
        return (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t)))

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in the next t time units."""
        x, T_ = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
        if np.ndim(t) == 0 and x.ndim == 1 and x.shape == T_.shape and len(x) > 10_000:
            # hyp2f1 once per distinct (x, T): 40k of 1M customers on the benchmark, 0.13 s -> 0.03 s
            ((ux, ix), (uT, iT)), _, row_of = _distinct_rows([x, T_])
            if_alive = self._purchases_if_alive(t, ux[ix], uT[iT])[row_of]
        else:
            if_alive = self._purchases_if_alive(t, x, T_)
        return if_alive / (1 + self._odds_dead(frequency, recency, T))


class _GammaGammaLikelihood:
    """The Gamma-Gamma log-likelihood of repeat customers and its analytic gradient: gammaln/digamma
    per distinct x, the terms in log(zbar) summed once, and log(gamma + x zbar) per distinct
    (x, zbar) row (244k of 666k repeat customers on the 1M benchmark, spend in cents)."""

    def __init__(self, x: np.ndarray, zbar: np.ndarray):
        ((self.x, ix), (z, iz)), weights, _ = _distinct_rows([x, zbar])
        self.n = weights.sum()
        self.per_x = np.bincount(ix, weights, len(self.x))
        row_x, row_z = self.x[ix], z[iz]
        self.w, self.wx = weights, weights * row_x
        self.spend = row_x * row_z  # x zbar: the customer's repeat spend
        self.log_z, self.x_log_z = weights @ np.log(row_z), self.wx @ np.log(row_z)

    def __call__(self, theta: np.ndarray, hessian: bool = False):
        """Log-likelihood and gradient at the natural parameters, and the Hessian when asked."""
        p, q, gamma = theta
        x, per_x, n = self.x, self.per_x, self.n
        px = p * x
        # gammaln(px + q) - gammaln(px) - gammaln(q) + q log(gamma) + (px - 1) log(zbar) + px log(x) - (px + q) log(gamma + x zbar)
        log_spend = np.log(gamma + self.spend)
        wx_log, w_log = _dot(self.wx, log_spend), _dot(self.w, log_spend)
        ll = (per_x @ (gammaln(px + q) - gammaln(px) + px * np.log(x)) + n * (q * np.log(gamma) - gammaln(q))
              + p * self.x_log_z - self.log_z - p * wx_log - q * w_log)
        psi = digamma(px + q)
        inverse = 1 / (gamma + self.spend)
        wx_inv, w_inv = _dot(self.wx, inverse), _dot(self.w, inverse)
        g = np.array([per_x @ (x * (psi - digamma(px) + np.log(x))) + self.x_log_z - wx_log,
                      per_x @ psi + n * (np.log(gamma) - digamma(q)) - w_log,
                      n * q / gamma - p * wx_inv - q * w_inv])
        h = np.zeros((3, 3))
        if hessian:
            tri, inverse2 = polygamma(1, px + q), inverse**2
            h[0] = [per_x @ (x**2 * (tri - polygamma(1, px))), per_x @ (x * tri), -wx_inv]
            h[1] = [h[0, 1], per_x @ tri - n * polygamma(1, q), n / gamma - w_inv]
            h[2] = [h[0, 2], h[1, 2], -n * q / gamma**2 + p * _dot(self.wx, inverse2) + q * _dot(self.w, inverse2)]
        return float(ll), g, h


@dataclass
class GammaGammaModel(_Fit):
    """Gamma-Gamma spend model (Fader & Hardie 2013 note 025) on repeat customers: each purchase's
    value ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across customers."""

    names: tuple[str, ...] = ("p", "q", "gamma")

    @staticmethod
    def log_likelihood(params, x, zbar) -> np.ndarray:
        """Each repeat customer's log-likelihood (the fit uses ``_GammaGammaLikelihood``)."""
        p, q, gamma = params
        px = p * x
        return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + (px - 1) * np.log(zbar)
                + px * np.log(x) - (px + q) * np.log(gamma + x * zbar))

    def fit(self, summary: pd.DataFrame) -> GammaGammaModel:
        x, zbar = summary["frequency"].to_numpy(dtype=float), summary["monetary_value"].to_numpy(dtype=float)
        repeat = (x > 0) & (zbar > 0)
        if repeat.sum() < 2:
            raise TierbookError("Gamma-Gamma: fewer than 2 repeat customers with positive spend; the model cannot be fitted")
        likelihood = _GammaGammaLikelihood(x[repeat], zbar[repeat])
        self._optimise_newton(likelihood, np.array([1.0, 1.0, max(zbar[repeat].mean(), 1.0)]), likelihood.n)
        self.n_customers_ = int(likelihood.n)
        return self

    def conditional_expected_average_value(self, frequency, monetary_value) -> np.ndarray:
        """E[Z | x, zbar]: a weighted mean of the population mean and the customer's own mean."""
        p, q, gamma = (self.params_[k] for k in self.names)
        x, zbar = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        return (gamma + x * zbar) * p / (p * x + q - 1)


def _per_distinct(function, x, t) -> np.ndarray:
    """``function(x, t)`` of an elementwise function, computed once per distinct (x, t) pair of long arrays
    and given back to every row (the same operations on the same numbers, so the same bits). Pareto/NBD's
    P(alive) of the 1M demo's calibration customers: 2M hyp2f1 calls -> 30k pairs (2026-12-02)."""
    x, t = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(t, dtype=float))
    if x.ndim != 1 or len(x) <= 10_000:
        return function(x, t)
    ((ux, ix), (ut, it)), _, row_of = _distinct_rows([x, t])
    return function(ux[ix], ut[it])[row_of]


def _log_diff(l1, l2, out: bool = False):
    """log(exp(l1) - exp(l2)) for l1 >= l2 (``out``: computed in ``l2``'s memory, which it overwrites)."""
    with np.errstate(divide="ignore"):
        if not out:
            return l1 + np.log1p(-np.exp(np.minimum(l2 - l1, 0.0)))
        work = np.subtract(l2, l1, out=l2)  # the same operations, without a new array for each
        np.minimum(work, 0.0, out=work)
        np.exp(work, out=work)
        np.negative(work, out=work)
        np.log1p(work, out=work)
        return np.add(l1, work, out=work)


@dataclass
class ParetoNBDModel(_Fit):
    """Pareto/NBD: purchases ~ Poisson(lambda), lambda ~ Gamma(r, alpha); lifetimes ~
    Exponential(mu), mu ~ Gamma(s, beta) (Fader, Hardie & Lee's 2005 note on its likelihood)."""

    names: tuple[str, ...] = ("r", "alpha", "s", "beta")

    @staticmethod
    def _log_a0_term(params, x, t):
        """log(2F1(r + s + x, ., r + s + x + 1, |alpha - beta| / (max + t))) - (r + s + x) log(max + t): A0's
        term at t = t_x and at t = T (Fader, Hardie & Lee's note, (19)-(20))."""
        r, alpha, s, beta = params
        rsx = r + s + x
        if alpha >= beta:
            big, second = alpha, s + 1
        else:
            big, second = beta, r + x
        diff = abs(alpha - beta)
        return np.log(hyp2f1(rsx, second, rsx + 1, diff / (big + t))) - rsx * np.log(big + t)

    @classmethod
    def _log_a0(cls, params, x, t_x, T):
        term = lambda x, t: cls._log_a0_term(params, x, t)  # noqa: E731
        return _log_diff(_per_distinct(term, x, t_x), _per_distinct(term, x, T))

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
        likelihood = _ParetoNBDLikelihood(x, t_x, T)

        def neg_ll(log_params):
            with np.errstate(all="ignore"):
                value = -(weights * likelihood(np.exp(log_params))).sum()
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


class _ParetoNBDLikelihood:
    """``ParetoNBDModel.log_likelihood`` of the distinct (x, t_x, T) rows, each term computed once per
    distinct value it depends on, with the same operations on the same numbers (so the same
    log-likelihood to the last bit, and the same fit): gammaln per distinct x, log(alpha + T) and
    log(beta + T) per distinct T, and A0's two hyp2f1 terms per distinct (x, t_x) and (x, T) pair.
    On the 100k-customer demo's summary: 79.5k distinct rows but 12.4k (x, t_x) and 11.6k (x, T)
    pairs, 9-15 ms an evaluation instead of 28-64 ms, the fit 34.6 s -> 7.9 s (same process, loaded
    machine) with the same parameters; the pairs grow much more slowly than the customers (in weeks,
    x, t_x and T take a few hundred values each). A0's term is one function of (x, t) at t = t_x and at
    t = T, so it is computed once per distinct pair of the two lists together: on the 1M demo's
    calibration 15.1k (x, t_x) and 14.9k (x, T) pairs are 17.5k pairs in all, 22.5 -> 19.8 ms an
    evaluation, the same bits (2026-12-02)."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
        self.ix, self.x = pd.factorize(x)  # each row's distinct x, and those values
        self.iT, self.T = pd.factorize(T)
        self.T_pairs, self.T_row = self._pairs(x, T)
        some_row = np.empty(len(self.T_pairs[0]), dtype=np.intp)
        some_row[self.T_row] = np.arange(len(self.T_row))  # any row of each (x, T) pair: they share x and T
        self.pair_ix, self.pair_iT = self.ix[some_row], self.iT[some_row]
        # A0's term: the distinct (x, t) of the (x, t_x) and (x, T) pairs, and each row's two of them
        self.a0_pairs, a0_row = self._pairs(np.r_[x, x], np.r_[t_x, T])
        self.a0_tx_row, self.a0_T_row = a0_row[: len(x)], a0_row[len(x):]

    @staticmethod
    def _pairs(x, t):
        ((xs, ix), (ts, it)), _, row = _distinct_rows([x, t])
        return (xs[ix], ts[it]), row

    def __call__(self, params) -> np.ndarray:
        r, alpha, s, beta = params
        x, T, ix = self.x, self.T, self.ix
        # head (per distinct x) and term1 (per distinct (x, T) pair) are the per-row expressions' operations on the
        # same numbers, so each row gets the same bits; the logs and gammaln are taken of the same arrays as before.
        # Per row only what needs t_x: 443k rows of the 1M demo's calibration, 26 -> 15 ms an evaluation (2026-12-02)
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        ip, jp = self.pair_ix, self.pair_iT
        term1 = -(r + x)[ip] * np.log(alpha + T)[jp] - s * np.log(beta + T)[jp]
        a0_term = ParetoNBDModel._log_a0_term(params, *self.a0_pairs)
        log_a0 = _log_diff(a0_term[self.a0_tx_row], a0_term[self.a0_T_row], out=True)
        log_a0 += (np.log(s) - np.log(r + s + x))[ix]  # term2: (log s - log(r + s + x)) + log A0, the same sum
        out = np.logaddexp(term1[self.T_row], log_a0, out=log_a0)
        return np.add(head[ix], out, out=out)


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
                   annual_discount_rate: float, periods_per_year: float, period_length: float = 1.0) -> np.ndarray:
    """CLV over ``horizon`` periods of ``period_length`` units of the summary's time unit (default
    one unit): margin x E[spend] x expected purchases in each period, discounted per period at the
    annual rate converted to the period (``periods_per_year`` of them in a year)."""
    rate = (1 + annual_discount_rate) ** (1 / periods_per_year) - 1
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    spend = gg.conditional_expected_average_value(x, summary["monetary_value"].to_numpy(dtype=float))
    # E[Y(t) | x, t_x, T] = P(alive) x E[Y(t) | x, T, alive]; the second factor, the costly hyp2f1,
    # once per distinct (x, T) and period: 40k pairs of 1M customers on the benchmark, 12 periods 1.5 s -> 0.1 s
    ((ux, ix), (uT, iT)), _, row_of = _distinct_rows([x, T])
    ux, uT = ux[ix], uT[iT]
    value = np.zeros(len(ux))
    previous = np.zeros(len(ux))
    for k in range(1, horizon + 1):
        cumulative = bg._purchases_if_alive(k * period_length, ux, uT)
        value += (cumulative - previous) / (1 + rate) ** k
        previous = cumulative
    return margin * spend * value[row_of] * bg.p_alive(x, t_x, T)


def holdout_actuals(orders: pd.DataFrame, calibration: pd.DataFrame, holdout_end: pd.Timestamp,
                    occasion: str = "day") -> pd.Series:
    """Purchase occasions of each calibration customer from the calibration's as_of up to
    ``holdout_end`` (exclusive), counted like the summary counts them."""
    start = pd.Timestamp(calibration.attrs["as_of"])
    window = orders[(orders["order_date"] >= start) & (orders["order_date"] < holdout_end)]
    keys = window["order_date"].dt.normalize() if occasion == "day" else window["source"].astype(str) + window["order_id"].astype(str)
    # distinct (customer, occasion) pairs counted on integer codes, not id strings
    codes, ids = customer_codes(window["customer_id"])
    key, distinct = pd.factorize(keys.to_numpy())
    pairs = unique_sorted(codes * max(len(distinct), 1) + key)
    counts = np.bincount(pairs // max(len(distinct), 1), minlength=len(ids))
    return reindex_sorted(pd.Series(counts, index=pd.Index(ids)), calibration["customer_id"].astype(str)).fillna(0).to_numpy(dtype=float)


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
