"""Permutation importance of the churn section's chosen model, with the numbers of
``sklearn.inspection.permutation_importance(model, X, y, scoring="roc_auc", n_repeats=..., random_state=seed)``.

For the gradient-boosting pipeline of ``churn.churn_models`` each tree's predictions of the test
rows are computed once: permuting a feature changes the predictions of only the trees that split on
it, so only those trees predict the permuted rows again; the raw score of a row is then summed over
the trees in the fitted order, from the baseline, as ``HistGradientBoostingClassifier.decision_function``
sums it (the same additions, so the same doubles), and ROC AUC is taken of it as the scorer takes it.
The permutations are scikit-learn's: one seed drawn from ``random_state``, then per feature a fresh
``RandomState`` of it shuffling the row order ``n_repeats`` times, each shuffle applied to the
column as already permuted. Any other model (the logistic regression, a pipeline of another shape)
goes to scikit-learn's function itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# the cached predictions of every tree for every row: 200 trees x 20,000 rows (churn.importance_sample) are 32 MB
MAX_CACHED = 32_000_000


def permutation_importance_auc(model, X: pd.DataFrame, y: np.ndarray, n_repeats: int, seed: int):
    """Drop in ROC AUC when each column of ``X`` is permuted: a Bunch with ``importances_mean``,
    ``importances_std`` and ``importances`` (features x repeats), as scikit-learn returns it."""
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.utils import Bunch, check_random_state

    trees = _tree_parts(model, X)
    if trees is None or len(trees[1]) * len(X) > MAX_CACHED:
        return permutation_importance(model, X, y, scoring="roc_auc", n_repeats=n_repeats, random_state=seed)
    booster, predictors, position = trees
    data = booster._preprocess_X(model[:-1].transform(X), reset=False)  # the float64 matrix the trees read, one row per row of X
    known_categories, f_idx_map = booster._bin_mapper.make_known_categories_bitsets()

    def predict(tree, rows: np.ndarray) -> np.ndarray:
        return tree.predict(rows, known_cat_bitsets=known_categories, f_idx_map=f_idx_map, n_threads=1)

    def auc(outputs) -> float:
        raw = np.zeros(len(data), dtype=booster._baseline_prediction.dtype)
        raw += booster._baseline_prediction[0, 0]  # BaseHistGradientBoosting._raw_predict: the baseline, then each tree in order
        for output in outputs:
            raw += output
        return roc_auc_score(y, raw)

    cached = [predict(tree, data) for tree in predictors]
    # a row's path through a tree changes with the permuted column only where a node on it splits on that column: the
    # other rows keep their leaf, and only the rows that pass such a node are predicted again
    leaf_of_row, path_columns = zip(*(_leaves(tree, data, predict) for tree in predictors))
    random_seed = check_random_state(seed).randint(np.iinfo(np.int32).max + 1)  # as permutation_importance draws it
    baseline = auc(cached)
    scores = np.empty((X.shape[1], n_repeats))
    for column in range(X.shape[1]):
        at = position[column]  # X's column is the booster's column ``at``
        affected = [np.flatnonzero(np.array([at in on_path for on_path in paths])[leaves]) for leaves, paths in zip(leaf_of_row, path_columns)]
        random_state = check_random_state(random_seed)
        permuted, order = data.copy(), np.arange(len(data))
        for repeat in range(n_repeats):
            random_state.shuffle(order)
            permuted[:, at] = permuted[order, at]
            scores[column, repeat] = auc(_again(tree, permuted, rows, output, predict)
                                         for tree, rows, output in zip(predictors, affected, cached))
    importances = baseline - scores
    return Bunch(importances_mean=np.mean(importances, axis=1), importances_std=np.std(importances, axis=1), importances=importances)


def _leaves(tree, data: np.ndarray, predict) -> tuple[np.ndarray, list[set]]:
    """Each row's leaf in ``tree`` (a node number), and per node the columns split on above it: the tree's
    own predictor with the node numbers as the leaves' values."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    nodes = tree.nodes
    numbered = nodes.copy()
    numbered["value"] = np.arange(len(nodes))
    leaf = predict(TreePredictor(numbered, tree.binned_left_cat_bitsets, tree.raw_left_cat_bitsets), data).astype(np.int64)
    above, pending = [set() for _ in range(len(nodes))], [0]  # from the root, node 0
    while pending:
        node = pending.pop()
        if not nodes["is_leaf"][node]:
            for child in (int(nodes["left"][node]), int(nodes["right"][node])):
                above[child] = above[node] | {int(nodes["feature_idx"][node])}
                pending.append(child)
    return leaf, above


def _again(tree, permuted: np.ndarray, rows: np.ndarray, output: np.ndarray, predict) -> np.ndarray:
    """The tree's predictions of the permuted rows: ``output`` (of the rows as they were) with ``rows`` predicted again."""
    if not len(rows):
        return output
    output = output.copy()
    output[rows] = predict(tree, permuted[rows])
    return output


def _tree_parts(model, X: pd.DataFrame):
    """(the booster, its trees in order, where each column of X is among the booster's columns) when ``model`` is a fitted pipeline of a column transformer that
    passes each column of ``X`` through or codes it (one output column per input column, in X's order) and
    a binary ``HistGradientBoostingClassifier``; else None."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None
    columns, booster = model[0], model[-1]
    if not isinstance(columns, ColumnTransformer) or not isinstance(booster, HistGradientBoostingClassifier):
        return None
    parts = [(kind, list(names)) for _, kind, names in columns.transformers_ if not (isinstance(kind, str) and kind == "drop")]
    def row_wise(kind) -> bool:  # a fitted "passthrough" is an identity FunctionTransformer
        return (isinstance(kind, OrdinalEncoder) or (isinstance(kind, str) and kind == "passthrough")
                or (isinstance(kind, FunctionTransformer) and kind.func is None))

    if not all(row_wise(kind) for kind, _ in parts):
        return None
    if [name for _, names in parts for name in names] != list(X.columns) or len(booster.classes_) != 2:
        return None
    if not all(hasattr(booster, name) for name in ("_predictors", "_baseline_prediction", "_bin_mapper", "_preprocess_X")):
        return None  # a scikit-learn whose internals differ from 1.6-1.8's
    if booster._baseline_prediction.shape != (1, 1) or any(len(trees) != 1 for trees in booster._predictors):
        return None
    # the booster puts its categorical columns first (its own encoder), then the numerical ones: where each column went
    inner = getattr(booster, "_preprocessor", None)
    if inner is None:
        position = np.arange(X.shape[1])
    else:
        masks = [np.asarray(mask) for _, kind, mask in inner.transformers_ if not (isinstance(kind, str) and kind == "drop")]
        if any(mask.dtype != bool or len(mask) != X.shape[1] for mask in masks):
            return None
        moved = np.concatenate([np.flatnonzero(mask) for mask in masks])  # moved[k]: the column of X that is column k
        if sorted(moved.tolist()) != list(range(X.shape[1])):
            return None
        position = np.empty(X.shape[1], dtype=np.int64)
        position[moved] = np.arange(X.shape[1])
    return booster, [trees[0] for trees in booster._predictors], position
