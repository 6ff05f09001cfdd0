"""Behavioural clustering: k-means on standardised log recency, frequency and spend.

k is chosen in a range by the silhouette score, computed on a seeded sample of at most
``sample_size`` customers (silhouette is O(n^2): on the 20,000-customer demo, k = 2..8 took 17.7 s
with a 20,000 sample and 2.6 s with a 5,000 sample, whose silhouettes agreed within 0.006). Clusters are renumbered 1..k by descending mean
spend, so that cluster 1 is always the highest-value group whatever order k-means found them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

FEATURES = ["recency_days", "purchase_occasions", "monetary_total"]


@dataclass
class RFMClusters:
    k_range: tuple[int, int] = (2, 8)
    random_state: int = 0
    n_init: int = 10
    sample_size: int = 5000

    def _features(self, summary: pd.DataFrame) -> np.ndarray:
        return np.log1p(summary[FEATURES].to_numpy(dtype=float))

    def fit(self, summary: pd.DataFrame) -> RFMClusters:
        """Fit k-means for each k of the range and keep the k with the highest silhouette."""
        x = self._features(summary)
        self.features_ = list(FEATURES)
        self.scaler_ = StandardScaler().fit(x)
        z = self.scaler_.transform(x)
        distinct = len(np.unique(np.round(z, 12), axis=0))
        k_low, k_high = self.k_range[0], min(self.k_range[1], distinct)
        self.silhouette_ = pd.Series(dtype=float, name="silhouette")
        if distinct < 2 or k_high < 2:
            # a single distinct point (or one customer): everyone is cluster 1
            self.k_, self.model_ = 1, None
            raw = np.zeros(len(z), dtype=int)
        else:
            rng = np.random.default_rng(self.random_state)
            sample = rng.choice(len(z), size=min(len(z), self.sample_size), replace=False)
            models = {}
            for k in range(max(2, min(k_low, k_high)), k_high + 1):
                model = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(z)
                models[k] = model
                labels = model.labels_[sample]
                self.silhouette_.loc[k] = silhouette_score(z[sample], labels) if len(np.unique(labels)) > 1 else -1.0
            self.k_ = int(self.silhouette_.idxmax())
            self.model_ = models[self.k_]
            raw = self.model_.labels_
        spend = pd.Series(summary["monetary_total"].to_numpy(dtype=float)).groupby(raw).mean()
        ranking = spend.sort_values(ascending=False, kind="stable").index
        self.relabel_ = {int(old): new for new, old in enumerate(ranking, start=1)}
        self.labels_ = pd.Series([self.relabel_[int(v)] for v in raw], index=summary.index, name="cluster")
        self.inertia_ = float(self.model_.inertia_) if self.model_ is not None else 0.0
        self.centers_ = self.profile(summary)[["cluster", "median_recency_days", "median_purchase_occasions", "median_monetary_total"]]
        return self

    def predict(self, summary: pd.DataFrame) -> pd.Series:
        if self.model_ is None:
            return pd.Series(1, index=summary.index, name="cluster")
        raw = self.model_.predict(self.scaler_.transform(self._features(summary)))
        return pd.Series([self.relabel_[int(v)] for v in raw], index=summary.index, name="cluster")

    def profile(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Per cluster: customers, shares, mean and median R/F/M, revenue and revenue share."""
        frame = summary[FEATURES].assign(cluster=self.labels_.to_numpy())
        grouped = frame.groupby("cluster")
        out = pd.DataFrame({"customers": grouped.size()})
        out["customer_share"] = out["customers"] / len(frame)
        for column in FEATURES:
            out[f"mean_{column}"] = grouped[column].mean()
            out[f"median_{column}"] = grouped[column].median()
        out["revenue"] = grouped["monetary_total"].sum()
        out["revenue_share"] = out["revenue"] / frame["monetary_total"].sum()
        return out.reset_index()


def crosstab(labels: pd.Series, segments: pd.Series) -> pd.DataFrame:
    """Customers per cluster (rows) and segment (columns), with totals."""
    return pd.crosstab(pd.Series(labels.to_numpy(), name="cluster"), pd.Series(segments.to_numpy(), name="segment"),
                       margins=True, margins_name="total")
