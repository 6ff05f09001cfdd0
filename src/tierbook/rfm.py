"""RFM scores and the two segment maps.

Scores (``RFMScorer``). R, F and M are scored 1..n (``rfm.n_scores``, default 5) from the
per-customer summary (``tierbook.summary``): R from ``recency_days`` (days since the last
purchase; **more recent = higher R**), F from ``purchase_occasions``, M from ``monetary_total``.

* ``method: quantile``: a customer's score is ``1 + floor(n * s)`` where ``s`` is the share of
  customers with a strictly worse value (for R: a strictly longer time since the last purchase).
  Equal values therefore always get equal scores, and a mass of equal values (the one-time buyers
  who are often 60-80 % of customers) stays in one score instead of being split at random, which
  ``pd.qcut(x.rank(method="first"))`` would do; scores above such a mass may stay empty.
* ``method: thresholds``: ``n - 1`` ascending cut points per measure from params; F and M score
  ``1 + (number of cut points below the value)``, R scores ``n - (number of cut points below)``.

A fitted scorer keeps the lowest value of each score as its bin edges (``edges_``), so the same
thresholds can score another period (tier migration freezes them at the base period).

Segments. The 8 Chinese segments (``segments_8``): R, F, M are high or low against a reference
(the mean or median of the raw values at fit time, ``rfm.reference``): R is high (近, recent) when
recency_days is below the reference, F and M are high (高) when above it. The code is the three
letters H/L in R, F, M order (``HHH`` = 重要价值客户). The named segments (``segments_named``) are
first-match rules on R and F score ranges (Champions, Loyal, ... Lost). Both maps are params.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MEASURES = {"r": "recency_days", "f": "purchase_occasions", "m": "monetary_total"}


def _oriented(values: pd.Series, key: str) -> np.ndarray:
    """Values oriented so that larger is better (recency is negated)."""
    v = values.to_numpy(dtype=float)
    return -v if key == "r" else v


def quantile_scores(values: pd.Series, n: int, key: str) -> np.ndarray:
    """``1 + floor(n * share of customers with a strictly worse value)``; ties share a score."""
    v = _oriented(values, key)
    ordered = np.sort(v)
    strictly_worse = np.searchsorted(ordered, v, side="left")
    return 1 + np.floor(n * strictly_worse / len(v)).astype(int)


def threshold_scores(values: pd.Series, cuts: list[float], n: int, key: str) -> np.ndarray:
    below = np.searchsorted(np.asarray(cuts, dtype=float), values.to_numpy(dtype=float), side="left")
    return (n - below) if key == "r" else (1 + below)


@dataclass
class RFMScorer:
    """Scores R, F, M 1..n and assigns both segment maps; ``fit`` learns edges and references."""

    n_scores: int = 5
    method: str = "quantile"  # quantile | thresholds
    thresholds: dict | None = None  # {"recency_days": [...], "purchase_occasions": [...], "monetary_total": [...]}
    reference: str = "mean"  # mean | median
    segments_8: dict | None = None  # code "HLH" -> {"zh", "en", "action"}
    segments_named: list | None = None  # [{"name", "zh", "r": [lo, hi], "f": [lo, hi], "action"}] first match wins

    def fit(self, summary: pd.DataFrame) -> RFMScorer:
        self.edges_: dict[str, dict[int, float]] = {}
        for key, column in MEASURES.items():
            if self.method == "thresholds":
                scores = threshold_scores(summary[column], self.thresholds[column], self.n_scores, key)
            else:
                scores = quantile_scores(summary[column], self.n_scores, key)
            oriented = _oriented(summary[column], key)
            # the lowest (oriented) value that reached each score
            lowest = pd.Series(oriented).groupby(scores).min()
            self.edges_[key] = {int(s): float(v) for s, v in lowest.items()}
        agg = np.mean if self.reference == "mean" else np.median
        self.reference_ = {key: float(agg(summary[column].to_numpy(dtype=float))) for key, column in MEASURES.items()}
        self.n_customers_ = len(summary)
        return self

    def scores(self, summary: pd.DataFrame) -> pd.DataFrame:
        """r_score, f_score, m_score by the fitted edges (the fit data gets its own fit scores)."""
        out = pd.DataFrame(index=summary.index)
        for key, column in MEASURES.items():
            edges = self.edges_[key]
            levels = np.array(sorted(edges))
            lows = np.array([edges[s] for s in levels])
            order = np.argsort(lows, kind="stable")
            lows, levels = lows[order], levels[order]
            position = np.searchsorted(lows, _oriented(summary[column], key), side="right") - 1
            out[f"{key}_score"] = np.where(position >= 0, levels[np.clip(position, 0, None)], 1).astype(int)
        out["rfm_score"] = out["r_score"] + out["f_score"] + out["m_score"]
        out["rfm_code"] = out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
        return out

    def transform(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Scores plus both segment maps, one row per customer (same index as ``summary``)."""
        out = self.scores(summary)
        ref = self.reference_
        high = pd.DataFrame({
            "r": summary["recency_days"] < ref["r"],
            "f": summary["purchase_occasions"] > ref["f"],
            "m": summary["monetary_total"] > ref["m"],
        })
        out["rfm_hl"] = np.where(high["r"], "H", "L") + pd.Series(np.where(high["f"], "H", "L"), index=out.index) + np.where(high["m"], "H", "L")
        if self.segments_8:
            out["segment_zh"] = out["rfm_hl"].map({k: v["zh"] for k, v in self.segments_8.items()})
            out["segment_en"] = out["rfm_hl"].map({k: v["en"] for k, v in self.segments_8.items()})
        if self.segments_named:
            out["named_segment"], out["named_segment_zh"] = named_segments(out["r_score"], out["f_score"], self.segments_named)
        return out

    def bin_edges(self, summary: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
        """Per measure and score: customers, lowest and highest raw value (for the report)."""
        rows = []
        for key, column in MEASURES.items():
            grouped = summary[column].groupby(scores[f"{key}_score"])
            for score, values in grouped:
                rows.append({"measure": column, "score": int(score), "customers": len(values),
                             "share": len(values) / len(summary), "from": values.min(), "to": values.max()})
        return pd.DataFrame(rows)


def named_segments(r_score: pd.Series, f_score: pd.Series, rules: list[dict]) -> tuple[pd.Series, pd.Series]:
    """First-match rules on R and F score ranges -> (English name, Chinese name)."""
    name = pd.Series(pd.NA, index=r_score.index, dtype="string")
    name_zh = pd.Series(pd.NA, index=r_score.index, dtype="string")
    for rule in rules:
        hit = name.isna() & r_score.between(*rule["r"]) & f_score.between(*rule["f"])
        name[hit], name_zh[hit] = rule["name"], rule["zh"]
    return name, name_zh


def uncovered_cells(rules: list[dict], n: int) -> list[tuple[int, int]]:
    """(R, F) score pairs that no named-segment rule covers (params validation uses it)."""
    return [(r, f) for r in range(1, n + 1) for f in range(1, n + 1)
            if not any(rule["r"][0] <= r <= rule["r"][1] and rule["f"][0] <= f <= rule["f"][1] for rule in rules)]


def segment_profile(summary: pd.DataFrame, segments: pd.Series, actions: dict[str, str] | None = None) -> pd.DataFrame:
    """Customers, shares, mean R/F/M and revenue share per segment, largest revenue first."""
    frame = summary.assign(segment=segments.to_numpy())
    total_revenue = frame["monetary_total"].sum()
    profile = frame.groupby("segment", observed=True).agg(
        customers=("customer_id", "size"), mean_recency_days=("recency_days", "mean"),
        mean_occasions=("purchase_occasions", "mean"), mean_monetary=("monetary_total", "mean"),
        revenue=("monetary_total", "sum"),
    )
    profile.insert(1, "customer_share", profile["customers"] / len(frame))
    profile["revenue_share"] = profile["revenue"] / total_revenue
    if actions:
        profile["action"] = [actions.get(s, "") for s in profile.index]
    return profile.sort_values("revenue", ascending=False).reset_index()


def pareto(summary: pd.DataFrame) -> pd.DataFrame:
    """Cumulative share of revenue against cumulative share of customers, best customers first."""
    values = np.sort(summary["monetary_total"].to_numpy(dtype=float))[::-1]
    return pd.DataFrame({
        "customer_share": np.arange(1, len(values) + 1) / len(values),
        "revenue_share": np.cumsum(values) / values.sum(),
    })


def revenue_share_of_top(summary: pd.DataFrame, share: float) -> float:
    curve = pareto(summary)
    return float(curve.loc[curve["customer_share"] <= share, "revenue_share"].max() if (curve["customer_share"] <= share).any() else 0.0)
