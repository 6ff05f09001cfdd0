"""Behavioural clustering of customers: k-means on log recency, frequency and spend.

A data-driven complement to the rule-based RFM segments (``tierbook.rfm``): instead of cutting
R, F and M at fixed scores, k-means groups customers whose buying behaviour is alike, and the
silhouette score picks how many groups the data supports.

Features. ``log1p`` of ``recency_days``, ``purchase_occasions`` and ``monetary_total``,
standardised (mean 0, standard deviation 1) so that each measure weighs the same. The logs tame
the long right tails: in a typical customer base spend spans 3-4 orders of magnitude, and on raw
values a handful of big spenders would decide every cluster boundary.

Choosing k. k-means is fitted for every k in ``k_range`` (inclusive) and the k with the highest
silhouette score wins (ties: the smaller k). Silhouette needs every pairwise distance, O(n^2) time,
so it is computed on a seeded random sample of at most ``sample_size`` customers. k-means itself is
fitted on everyone up to ``fit_size`` customers; on a larger base each candidate k is fitted on a
seeded sample of ``fit_size`` customers and the chosen k is then refitted on everyone, started
from the sample's centres (one run of Lloyd's iterations). See the comments below for measured times.
On bases without clear-cut groups two k can score within 0.01 of each other, and the choice
between them may then change with the sample; read ``silhouette_`` rather than ``k_`` alone.

Labels. k-means numbers its clusters arbitrarily, and the numbering changes with k and with the
seed. Clusters are therefore renumbered 1..k by **descending mean monetary_total** of their
members: cluster 1 is always the highest-value group. Rows are put in a canonical order (sorted by
their feature values) before fitting, so the labels do not depend on the order of the input rows.

Degenerate data. k is capped at the number of distinct feature rows (identical customers cannot
be split). With fewer than 2 distinct rows (all customers identical, or a single customer)
everyone is cluster 1, ``k_ == 1``, ``silhouette_`` is empty and ``inertia_`` is 0. When no
candidate k has a defined silhouette (it needs 2 <= clusters <= sampled customers - 1, e.g. two
customers with different values) the smallest candidate k is kept and its silhouette is NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_chunked, silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tierbook.errors import TierbookError

FEATURES = ["recency_days", "purchase_occasions", "monetary_total"]

# Why ``sample_size`` defaults to 5,000 rather than "everyone": silhouette on m customers
# computes m^2/2 distances. Measured on this machine (2 CPU cores, load ~3 from other jobs) on a
# synthetic 100,000-customer base (60 % one-time buyers, lognormal spend), one silhouette_score
# call per k: 5,000 sampled -> 0.3-0.6 s, 20,000 -> 3.4-4.2 s, all 100,000 -> 71-78 s (25x
# the time for 5x the rows). Over k = 2..8 that is ~25-30 s at 20,000 versus ~9 min for all
# 100,000; the 20,000-sample scores were within 0.003 of the full-data ones (k = 3 and 5).
# A whole default fit (k-means with n_init=10 for 7 values of k plus silhouettes) took 46-55 s
# on 20,000-100,000 customers, 17-35 s with sample_size=5,000. On the 20,000-customer demo the
# 5,000-sample silhouettes were within 0.006 of the 20,000-sample ones (2.6 s against 17.7 s).

# Why ``fit_size`` (20,000 by default): k-means with n_init=10 for k = 2..8 costs time linear in
# customers, about 7 s of the 10.5 s of a 100,000-customer fit and so ~100 s at 1M. Choosing k on
# 20,000 sampled customers and refitting the chosen k on everyone from the sample's centres takes
# the same few seconds at any size (measured in bench/RESULTS.md, "report at scale"); bases of up
# to 20,000 customers are fitted exactly as before.


def _check(summary: pd.DataFrame) -> None:
    """Raise TierbookError when a feature column is missing or out of range."""
    missing = [c for c in FEATURES if c not in summary.columns]
    if missing:
        raise TierbookError(f"clusters: the customer summary lacks column(s) {missing}; "
                            f"it needs {FEATURES} (build it with tierbook.summary)")
    if len(summary) == 0:
        raise TierbookError("clusters: the customer summary has no rows; there is nobody to cluster")
    values = summary[FEATURES].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1) | (values["recency_days"] < 0) | (values["purchase_occasions"] < 1) \
        | (values["monetary_total"] < 0)
    if bad.any():
        raise TierbookError(f"clusters: {int(bad.sum())} customer(s), first at index {bad.idxmax()!r}, have a missing or "
                            "out-of-range value (need recency_days >= 0, purchase_occasions >= 1, monetary_total >= 0); "
                            "drop them or fix the summary")


class _Silhouette:
    """``silhouette_score(points, labels)`` for several labelings of the same points, their distances
    computed once: each k's call computed all 12.5M distances of 5,000 sampled customers again (7 calls,
    2.5 s CPU of k = 2..8). The distances are sklearn's own (``pairwise_distances_chunked``, as
    ``silhouette_score`` computes them), handed back to it as ``metric="precomputed"``, so the scores
    are the same to the bit. Above ``MAX_BYTES`` of distances each call computes its own, in chunks."""

    MAX_BYTES = 512 * 2**20  # 8,192 points

    def __init__(self, points: np.ndarray):
        self.points = points
        self.distances = None
        if 8 * len(points) ** 2 <= self.MAX_BYTES:
            chunks = list(pairwise_distances_chunked(points))  # one chunk up to sklearn's working memory (1 GiB)
            self.distances = chunks[0] if len(chunks) == 1 else np.vstack(chunks)

    def score(self, labels: np.ndarray) -> float:
        if self.distances is None:
            return float(silhouette_score(self.points, labels))
        return float(silhouette_score(self.distances, labels, metric="precomputed"))


def _one_openmp_thread():
    """k-means in one OpenMP thread. scikit-learn's Lloyd iterations open a parallel region per
    iteration, each as slow as its slowest thread, so a core busy with another section stalled every
    one: the 70 fits of k = 2..8 on the 20,000-customer sample took 14.1 s CPU and 22.5 s wall with two
    threads on this shared 2-core machine, 0.7 s and 1.1 s with one (1M demo, 2026-12-02). Every
    label, and so every table and silhouette, is the same; the centres and the inertia can differ in
    the last bits (2e-14 there), since each thread sums its own chunks of customers and the thread
    count sets the order of that sum: with one thread they no longer depend on the number of cores."""
    return threadpool_limits(limits=1, user_api="openmp")


def _log_features(summary: pd.DataFrame) -> np.ndarray:
    """``log1p`` of the feature columns as an (n, 3) float array (a new array; input untouched)."""
    return np.log1p(summary[FEATURES].to_numpy(dtype=float))


class RFMClusters:
    """k-means clusters of customers on standardised log R, F, M, with k chosen by silhouette.

    Parameters
    ----------
    k_range : tuple of int, default (2, 8)
        Smallest and largest number of clusters to try, inclusive. Capped at the number of
        distinct customers (distinct feature rows).
    random_state : int, default 0
        Seed for k-means initialisation and for the silhouette sample.
    n_init : int, default 10
        k-means restarts per k; the run with the lowest inertia is kept.
    sample_size : int, default 5000
        Largest number of customers the silhouette score is computed on (it is O(n^2)).
    fit_size : int, default 20000
        Largest number of customers the candidate k are fitted on; above it, a seeded sample of
        this size chooses k and the chosen k is refitted on everyone from the sample's centres.

    Attributes
    ----------
    features_ : list of str
        Input columns the features are built from, in order.
    mean_, scale_ : pandas.Series
        Mean and standard deviation of the log features (the StandardScaler's), by feature.
    scaler_ : sklearn.preprocessing.StandardScaler
        The fitted scaler.
    k_ : int
        Chosen number of clusters (1 for degenerate data).
    silhouette_ : pandas.Series
        Silhouette score by candidate k (index ``k``); empty when fewer than 2 distinct customers.
    labels_ : pandas.Series
        Cluster 1..k of each customer, indexed like the fitted summary; 1 = highest mean spend.
    centers_ : pandas.DataFrame
        Cluster centres in original units, indexed by cluster. Because k-means averages the log
        features, these are geometric-mean-like typical values (``expm1`` of the mean log), not
        arithmetic means; ``profile`` gives the arithmetic means and medians.
    inertia_ : float
        k-means within-cluster sum of squares in standardised units (0 for degenerate data).
    model_ : sklearn.cluster.KMeans or None
        The k-means model for ``k_`` (None when ``k_ == 1`` from degenerate data).

    Examples
    --------
    >>> model = RFMClusters(k_range=(2, 6)).fit(summary)          # doctest: +SKIP
    >>> model.k_, model.silhouette_                               # doctest: +SKIP
    >>> model.profile(summary)                                    # doctest: +SKIP
    >>> crosstab(model.labels_, scored["segment_8"])              # doctest: +SKIP
    """

    def __init__(self, k_range=(2, 8), random_state=0, n_init=10, sample_size=5000, fit_size=20000):
        self.k_range = k_range
        self.random_state = random_state
        self.n_init = n_init
        self.sample_size = sample_size
        self.fit_size = fit_size

    def __repr__(self) -> str:
        return (f"RFMClusters(k_range={tuple(self.k_range)!r}, random_state={self.random_state!r}, "
                f"n_init={self.n_init!r}, sample_size={self.sample_size!r}, fit_size={self.fit_size!r})")

    def fit(self, summary: pd.DataFrame) -> RFMClusters:
        """Fit k-means for every k in ``k_range`` and keep the k with the highest silhouette.

        Parameters
        ----------
        summary : pandas.DataFrame
            One row per customer with ``recency_days`` (>= 0), ``purchase_occasions`` (>= 1) and
            ``monetary_total`` (> 0). Not modified.

        Returns
        -------
        RFMClusters
            self, with the learned attributes set.

        Raises
        ------
        TierbookError
            A feature column is missing, the summary is empty, or a value is missing/out of range.
        ValueError
            ``k_range`` is not two integers with ``2 <= low <= high``.
        """
        low, high = (int(v) for v in self.k_range)
        if not 2 <= low <= high:
            raise ValueError(f"k_range must be (low, high) with 2 <= low <= high, got {self.k_range!r}")
        _check(summary)
        x = _log_features(summary)
        # Canonical row order (lexicographic on the features): k-means' seeding and the silhouette
        # sample then see the same array whatever order the rows came in, so a customer's label
        # depends on the data, not on how the file was sorted. Identical rows are interchangeable.
        order = np.lexsort(x.T[::-1])
        x_sorted = x[order]

        self.features_ = list(FEATURES)
        self.scaler_ = StandardScaler().fit(x_sorted)
        self.mean_ = pd.Series(self.scaler_.mean_, index=FEATURES, name="mean")
        self.scale_ = pd.Series(self.scaler_.scale_, index=FEATURES, name="scale")
        z = self.scaler_.transform(x_sorted)

        # distinct rows of the sorted array: rows that differ from the one before (np.unique(axis=0) sorted them again: 1.1 s at 1M)
        distinct = 1 + int((x_sorted[1:] != x_sorted[:-1]).any(axis=1).sum())
        self.silhouette_ = pd.Series(dtype=float, name="silhouette")
        self.silhouette_.index.name = "k"
        if distinct < 2:
            # Nothing to separate: one cluster, no silhouette (it needs >= 2 clusters).
            self.k_, self.model_, self.inertia_ = 1, None, 0.0
            raw_sorted = np.zeros(len(z), dtype=int)
        else:
            candidates = range(min(low, distinct), min(high, distinct) + 1)
            z_fit = z
            if len(z) > int(self.fit_size):  # a seeded sample chooses k (the fit_size comment above)
                fit_rows = np.sort(np.random.default_rng([self.random_state, 1]).choice(len(z), size=int(self.fit_size), replace=False))
                z_fit = z[fit_rows]
            rng = np.random.default_rng(self.random_state)
            n_sample = min(len(z_fit), int(self.sample_size))
            sample = np.sort(rng.choice(len(z_fit), size=n_sample, replace=False))
            models, scores = {}, {}
            silhouette = _Silhouette(z_fit[sample])
            for k in candidates:
                with _one_openmp_thread():
                    model = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(z_fit)
                models[k] = model
                sampled = model.labels_[sample]
                n_labels = len(np.unique(sampled))
                # silhouette is defined only for 2 <= clusters <= samples - 1
                scores[k] = silhouette.score(sampled) if 2 <= n_labels <= n_sample - 1 else np.nan
            self.silhouette_ = pd.Series(scores, name="silhouette", dtype=float)
            self.silhouette_.index.name = "k"
            # idxmax returns the first maximum, i.e. the smaller k on a tie; all-NaN -> smallest k
            self.k_ = int(self.silhouette_.idxmax()) if self.silhouette_.notna().any() else int(candidates[0])
            self.model_ = models[self.k_]
            if z_fit is not z:  # everyone, from the sample's centres
                with _one_openmp_thread():
                    self.model_ = KMeans(n_clusters=self.k_, init=self.model_.cluster_centers_, n_init=1,
                                         random_state=self.random_state).fit(z)
            self.inertia_ = float(self.model_.inertia_)
            raw_sorted = self.model_.labels_

        raw = np.empty_like(raw_sorted)
        raw[order] = raw_sorted  # back to the input row order
        self.relabel_ = self._ranking(summary, raw)
        self.labels_ = pd.Series(self.relabel_[raw], index=summary.index, name="cluster")
        self.centers_ = self._centers()
        return self

    def _ranking(self, summary: pd.DataFrame, raw: np.ndarray) -> np.ndarray:
        """Array mapping k-means' raw label -> 1..k by descending mean spend.

        Ties on mean spend (rare) go to the more recent, then the more frequent cluster, so the
        numbering never falls back on k-means' arbitrary order.
        """
        stats = pd.DataFrame({
            "m": summary["monetary_total"].to_numpy(dtype=float),
            "r": summary["recency_days"].to_numpy(dtype=float),
            "f": summary["purchase_occasions"].to_numpy(dtype=float),
        }).groupby(raw).mean()
        ranked = stats.sort_values(["m", "r", "f"], ascending=[False, True, False], kind="stable").index
        mapping = np.zeros(self.k_, dtype=int)
        mapping[ranked.to_numpy()] = np.arange(1, self.k_ + 1)
        return mapping

    def _centers(self) -> pd.DataFrame:
        """Cluster centres back in original units (undo standardising, then log1p)."""
        if self.model_ is None:
            log_centres = self.scaler_.mean_.reshape(1, -1)
        else:
            log_centres = self.scaler_.inverse_transform(self.model_.cluster_centers_)
        centres = pd.DataFrame(np.expm1(log_centres), columns=FEATURES)
        centres.index = pd.Index(self.relabel_[np.arange(len(centres))], name="cluster")
        return centres.sort_index()

    def predict(self, summary: pd.DataFrame) -> pd.Series:
        """Nearest fitted cluster (1..k_) of each customer, e.g. for another period.

        Parameters
        ----------
        summary : pandas.DataFrame
            Customer summary with the feature columns. Not modified.

        Returns
        -------
        pandas.Series
            Cluster 1..k_ per row, indexed like ``summary``, named ``cluster``. On the fitted
            summary this equals ``labels_``.
        """
        _check(summary)
        if self.model_ is None:
            return pd.Series(1, index=summary.index, name="cluster", dtype=int)
        raw = self.model_.predict(self.scaler_.transform(_log_features(summary)))
        return pd.Series(self.relabel_[raw], index=summary.index, name="cluster")

    def profile(self, summary: pd.DataFrame, labels: pd.Series | None = None) -> pd.DataFrame:
        """One row per cluster: size, shares, mean and median R/F/M, revenue.

        Parameters
        ----------
        summary : pandas.DataFrame
            Customer summary. Not modified.
        labels : pandas.Series, optional
            Cluster of each row of ``summary`` (aligned by position). Default: ``predict(summary)``,
            which on the fitted summary equals ``labels_``.

        Returns
        -------
        pandas.DataFrame
            Columns ``cluster``, ``customers``, ``customer_share``, ``mean_<f>`` and
            ``median_<f>`` for each feature, ``revenue`` (sum of monetary_total) and
            ``revenue_share``; rows for every cluster 1..k_ (empty ones with 0 customers and NaN
            means), sorted by cluster.
        """
        labels = self.predict(summary) if labels is None else labels
        if len(labels) != len(summary):
            raise ValueError(f"labels has {len(labels)} rows, summary has {len(summary)}")
        frame = summary[FEATURES].astype(float).assign(cluster=np.asarray(labels))
        grouped = frame.groupby("cluster")
        clusters = pd.Index(range(1, self.k_ + 1), name="cluster")
        out = pd.DataFrame({"customers": grouped.size()}).reindex(clusters, fill_value=0)
        out["customer_share"] = out["customers"] / len(frame)
        for column in FEATURES:
            out[f"mean_{column}"] = grouped[column].mean()
            out[f"median_{column}"] = grouped[column].median()
        out["revenue"] = grouped["monetary_total"].sum().reindex(clusters, fill_value=0.0)
        out["revenue_share"] = out["revenue"] / frame["monetary_total"].sum()
        return out.reset_index()


def crosstab(labels: pd.Series, segments: pd.Series) -> pd.DataFrame:
    """Customers per cluster (rows) and segment (columns), with a ``total`` row and column.

    Parameters
    ----------
    labels : pandas.Series
        Cluster per customer (e.g. ``RFMClusters.labels_``).
    segments : pandas.Series
        Segment per customer (e.g. the RFM 8-segment name), indexed like ``labels``; rows are
        matched by index, so the two may be in different orders.

    Returns
    -------
    pandas.DataFrame
        Counts, index ``cluster`` (plus ``total``), columns ``segment`` (plus ``total``).
        Customers whose segment is missing are left out of the counts.

    Raises
    ------
    ValueError
        The two Series do not cover the same customers (index labels).
    """
    if len(labels) != len(segments) or not labels.index.sort_values().equals(segments.index.sort_values()):
        raise ValueError("labels and segments must be indexed by the same customers")
    aligned = segments.reindex(labels.index) if not labels.index.equals(segments.index) else segments
    return pd.crosstab(pd.Series(labels.to_numpy(), name="cluster"), pd.Series(aligned.to_numpy(), name="segment"),
                       margins=True, margins_name="total")
