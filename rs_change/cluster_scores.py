"""Scores of a clustering and the choice of k and metric: :func:`silhouette` (stratified, every
cluster represented), :func:`silhouette_samples`, :func:`calinski_harabasz` and
:func:`select_model` (fit every candidate, keep the highest silhouette).
"""

from __future__ import annotations

import logging
import math
from numbers import Integral
from typing import Any, Sequence

import numpy as np

from .errors import ClusteringError, check_cancelled
from .kmeans import KMeans
from .kmeans_ops import (
    DEFAULT_SAMPLE_SIZE,
    METRICS,
    _check_2d,
    _check_int,
    _check_metric,
    check_random_state,
)

logger = logging.getLogger(__name__)


def _stratified_indices(
    labels: np.ndarray, sample_size: int, min_per_cluster: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices keeping every cluster, and the weight n_c / m_c of each chosen row."""
    ids, counts = np.unique(labels, return_counts=True)
    base = np.minimum(counts, min_per_cluster)
    remaining = max(sample_size - int(base.sum()), 0)
    extra_cap = counts - base
    extra = np.floor(remaining * counts / counts.sum()).astype(np.int64)
    take = base + np.minimum(extra, extra_cap)
    chosen, weights = [], []
    for cid, n_c, m_c in zip(ids, counts, take):
        rows = np.flatnonzero(labels == cid)
        pick = rows if m_c >= n_c else rng.choice(rows, int(m_c), replace=False)
        chosen.append(np.sort(pick))
        weights.append(np.full(pick.size, n_c / pick.size))
    return np.concatenate(chosen), np.concatenate(weights)


#: Bytes of one block of pairwise distances in :func:`silhouette_samples` (a few blocks live at
#: once: the pairwise scratch stays in the CPU cache and memory is bounded whatever the sample).
SILHOUETTE_BLOCK_BYTES = 1 << 19


def _cluster_distance_sums(X: np.ndarray, lab: np.ndarray, k: int, metric: str, block: int) -> np.ndarray:
    """Sum of the distances from every row of ``X`` to the rows of each cluster, shape (n, k).

    euclidean and chebyshev: the symmetric pairwise matrix in ``block`` x ``block`` tiles of the
    upper triangle (each tile serves its rows and its columns), never the whole (n, n) matrix;
    rows are grouped by cluster so a tile's per-cluster sums are slice sums.  Euclidean distances
    use ``|x|^2 + |y|^2 - 2 x.y`` as scikit-learn does (clipped at 0, exact 0 for a row and
    itself), with numpy's einsum rather than BLAS: many small multithreaded GEMMs stall when
    the dates are fitted in parallel threads on a busy machine (10-25 ms per 512 x 512 tile
    instead of 0.2 ms, and 0.4 s to start the BLAS threads).  manhattan is separable per
    feature: the sum of ``|x_f - y_f|`` over a cluster comes from the cluster's sorted values
    and their prefix sums, in O(n log n).
    """
    n, d = X.shape
    S = np.zeros((n, k))
    if metric == "manhattan":
        for c in range(k):
            members = X[lab == c]
            m = members.shape[0]
            for f in range(d):
                v = np.sort(members[:, f])
                P = np.concatenate([[0.0], np.cumsum(v)])
                x = X[:, f]
                p = np.searchsorted(v, x, side="left")
                Pp = P[p]
                # sum over v < x of (x - v) plus sum over v >= x of (v - x)
                S[:, c] += (x * p - Pp) + ((P[m] - Pp) - x * (m - p))
        return S
    order = np.argsort(lab, kind="stable")
    Xo, lo = X[order], lab[order]
    starts = np.flatnonzero(np.r_[True, lo[1:] != lo[:-1]])

    def segments(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        off = np.r_[a, starts[(starts > a) & (starts < b)]] - a
        return off, lo[a + off]

    if metric == "euclidean":
        sq = np.einsum("ij,ij->i", Xo, Xo)
        left = np.column_stack([Xo * -2.0, sq, np.ones(n)])  # left[i] . right[:, j] = |xi|^2 + |xj|^2 - 2 xi.xj
        right = np.ascontiguousarray(np.column_stack([Xo, np.ones(n), sq]).T)
    else:
        xt = np.ascontiguousarray(Xo.T)
    So = np.zeros((n, k))
    for i0 in range(0, n, block):
        check_cancelled()
        i1 = min(i0 + block, n)
        ioff, iid = segments(i0, i1)
        for j0 in range(i0, n, block):
            j1 = min(j0 + block, n)
            if metric == "euclidean":
                D = np.einsum("ik,kj->ij", left[i0:i1], right[:, j0:j1])
                np.maximum(D, 0.0, out=D)
                if i0 == j0:
                    np.fill_diagonal(D, 0.0)
                np.sqrt(D, out=D)
            else:
                D = np.abs(xt[0, i0:i1, None] - xt[0, None, j0:j1])
                t = np.empty_like(D)
                for f in range(1, d):
                    np.subtract(xt[f, i0:i1, None], xt[f, None, j0:j1], out=t)
                    np.abs(t, out=t)
                    np.maximum(D, t, out=D)
            joff, jid = segments(j0, j1)
            So[i0:i1, jid] += np.add.reduceat(D, joff, axis=1)
            if j0 != i0:
                So[j0:j1, iid] += np.add.reduceat(D, ioff, axis=0).T
    S[order] = So
    return S


def silhouette_samples(X: np.ndarray, labels: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Silhouette of every row, in the metric's own (non-squared) distance.

    The same values as :func:`sklearn.metrics.silhouette_samples` (to rounding) without
    scikit-learn: ``s = (b - a) / max(a, b)`` with ``a`` the mean distance to the other members of
    the row's cluster and ``b`` the smallest mean distance to another cluster's members; 0 for a
    cluster of one row.  Memory beyond ``X`` is ``O(n * k)`` plus a few blocks of
    :data:`SILHOUETTE_BLOCK_BYTES`.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
        Computed in float64.
    labels : ndarray, shape (n_samples,)
        Any labels (2 to n_samples - 1 distinct values).
    metric : {"euclidean", "manhattan", "chebyshev"}, default "euclidean"

    Returns
    -------
    ndarray of float64, shape (n_samples,)
        Values in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> silhouette_samples(np.array([[0.0], [1.0], [4.0]]), np.array([0, 0, 1]), "manhattan").round(3).tolist()
    [0.75, 0.667, 0.0]
    """
    metric = _check_metric(metric)
    X = np.asarray(_check_2d(X), dtype=np.float64)
    labels = np.asarray(labels).ravel()
    if labels.shape[0] != X.shape[0]:
        raise ClusteringError(f"labels has {labels.shape[0]} entries but X has {X.shape[0]} rows")
    ids, lab = np.unique(labels, return_inverse=True)
    n, k = X.shape[0], ids.size
    if not 2 <= k <= n - 1:
        raise ClusteringError(
            f"silhouette needs 2 to n_samples - 1 clusters, got {k}; "
            "check clustering.k and the number of valid pixels"
        )
    lab = lab.ravel()
    block = max(16, int(math.sqrt(SILHOUETTE_BLOCK_BYTES / 8)))
    S = _cluster_distance_sums(X, lab, k, metric, block)
    counts = np.bincount(lab, minlength=k)
    rows = np.arange(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = S[rows, lab] / (counts[lab] - 1)
        S[rows, lab] = np.inf
        b = (S / counts).min(axis=1)
        s = (b - a) / np.maximum(a, b)
    return np.nan_to_num(s)


def silhouette(
    X: np.ndarray,
    labels: np.ndarray,
    metric: str = "euclidean",
    sample_size: int = 4_000,
    random_state: Any = None,
    min_per_cluster: int = 200,
) -> float:
    """Silhouette score in the metric's own distance, on a stratified sample.

    Every cluster keeps ``min(n_c, min_per_cluster)`` rows, and the rest of the budget is shared
    in proportion to cluster size, so a tiny cluster (e.g. 0.1 % water) is never dropped.  Each
    sampled row's silhouette is weighted by ``n_c / m_c`` (cluster size over rows drawn from it),
    so the score estimates the mean silhouette over *all* rows despite the over-sampling of
    small clusters.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    labels : ndarray of int, shape (n_samples,)
    metric : {"euclidean", "manhattan", "chebyshev"}
    sample_size : int, default 4_000
        Target rows in the sample (exceeded only if ``n_clusters * min_per_cluster`` is larger).
    random_state : None, int or RandomState
    min_per_cluster : int, default 200

    Returns
    -------
    float in [-1, 1]

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> round(silhouette(X, np.array([0, 0, 1, 1]), "manhattan"), 3)
    0.98
    """
    metric = _check_metric(metric)
    X = _check_2d(X)
    labels = np.asarray(labels).ravel()
    if labels.shape[0] != X.shape[0]:
        raise ClusteringError(
            f"labels has {labels.shape[0]} entries but X has {X.shape[0]} rows"
        )
    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= X.shape[0] - 1:
        raise ClusteringError(
            f"silhouette needs 2 to n_samples - 1 clusters, got {n_labels}; "
            "check clustering.k and the number of valid pixels"
        )
    _check_int("sample_size", sample_size, 2)
    rng = check_random_state(random_state)
    idx, w = _stratified_indices(labels, sample_size, min_per_cluster, rng)
    Xs = np.asarray(X[idx], dtype=np.float64)
    s = silhouette_samples(Xs, labels[idx], metric)
    return float(np.average(s, weights=w))


def calinski_harabasz(
    X: np.ndarray, labels: np.ndarray, sample_size: int | None = 100_000, random_state: Any = None
) -> float:
    """Calinski-Harabasz index (euclidean) on a uniform sample.

    The variance ratio ``(B / (k - 1)) / (W / (n - k))`` with ``B`` the between-cluster and ``W``
    the within-cluster sum of squares, computed as :func:`sklearn.metrics.calinski_harabasz_score`
    does (1.0 when ``W`` is 0).

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    labels : ndarray of int, shape (n_samples,)
    sample_size : int or None, default 100_000
        Rows used (uniform sample); ``None`` uses all rows.
    random_state : None, int or RandomState

    Returns
    -------
    float
        Higher is better.  Defined with euclidean variances only, so :func:`select_model`
        reports it for the euclidean metric only.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> calinski_harabasz(X, np.array([0, 0, 1, 1])) > 100
    True
    """
    X = _check_2d(X)
    labels = np.asarray(labels).ravel()
    if sample_size is not None and X.shape[0] > sample_size:
        rng = check_random_state(random_state)
        idx = np.sort(rng.choice(X.shape[0], sample_size, replace=False))
        X, labels = X[idx], labels[idx]
    ids, lab = np.unique(labels, return_inverse=True)
    n, k = X.shape[0], ids.size
    if not 2 <= k <= n - 1:
        raise ClusteringError(
            f"calinski_harabasz needs 2 to n_samples - 1 clusters in the sample, got {k}"
        )
    X = np.asarray(X, dtype=np.float64)
    lab = lab.ravel()
    mean = X.mean(axis=0)
    extra, intra = 0.0, 0.0
    for c in range(k):
        Xc = X[lab == c]
        mean_c = Xc.mean(axis=0)
        extra += Xc.shape[0] * float(((mean_c - mean) ** 2).sum())
        intra += float(((Xc - mean_c) ** 2).sum())
    return 1.0 if intra == 0.0 else float(extra * (n - k) / (intra * (k - 1.0)))


def select_model(
    X: np.ndarray,
    ks: Sequence[int],
    metrics: Sequence[str],
    random_state: Any = None,
    sample_size: int | None = DEFAULT_SAMPLE_SIZE,
    silhouette_sample_size: int = 4_000,
    **kmeans_params: Any,
) -> tuple[KMeans, list[dict[str, Any]]]:
    """Fit every (k, metric) candidate and keep the one with the highest silhouette.

    Used when the configuration gives a list of k or ``metric: auto`` (pass ``["auto"]`` or
    all of :data:`METRICS`).  Each candidate's silhouette is computed in its own metric on the
    same stratified-sample settings; the silhouette is a scale-free ratio, which is what makes
    the comparison across metrics possible (it is still a heuristic, not a test).  Ties keep
    the earlier candidate (smaller k first, then the order of ``metrics``).

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
        Scaled features (see :func:`fit_scaler`).
    ks : list of int
        Candidate cluster counts, each >= 2.
    metrics : list of str
        Candidate metrics; ``"auto"`` expands to all of :data:`METRICS`.
    random_state : None or int
        Seed shared by every candidate (use an int for reproducibility).
    sample_size : int or None
        Passed to :class:`KMeans`.
    silhouette_sample_size : int, default 4_000
    **kmeans_params
        Other :class:`KMeans` parameters (``n_init``, ``max_iter``...).

    Returns
    -------
    best_model : KMeans
        Fitted.
    scores : list of dict
        One per candidate, in fitting order, with keys ``k``, ``metric``, ``silhouette``,
        ``calinski_harabasz`` (``None`` unless euclidean) and ``inertia``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> X = np.concatenate([rng.normal(c, 0.1, (50, 2)) for c in (0, 3, 6)])
    >>> best, scores = select_model(X, [2, 3], ["euclidean"], random_state=0)
    >>> best.n_clusters
    3
    """
    if isinstance(ks, Integral):
        ks = [int(ks)]
    if isinstance(metrics, str):
        metrics = [metrics]
    if not ks or not metrics:
        raise ClusteringError("select_model needs at least one k and one metric")
    expanded: list[str] = []
    for m in metrics:
        names = METRICS if str(m).lower() == "auto" else (_check_metric(m),)
        expanded.extend(x for x in names if x not in expanded)
    X = _check_2d(X)
    seed = random_state
    if isinstance(seed, np.random.RandomState) or seed is None:
        seed = check_random_state(seed).randint(np.iinfo(np.int32).max)
    best_model: KMeans | None = None
    best_score = -np.inf
    scores: list[dict[str, Any]] = []
    for k in ks:
        for metric in expanded:
            check_cancelled()
            model = KMeans(n_clusters=k, metric=metric, random_state=seed,
                           sample_size=sample_size, **kmeans_params).fit(X)
            n_found = np.unique(model.labels_).size
            if n_found < 2:
                sil = float("nan")
            else:
                sil = silhouette(X, model.labels_, metric, sample_size=silhouette_sample_size,
                                 random_state=seed)
            ch = (calinski_harabasz(X, model.labels_, random_state=seed)
                  if metric == "euclidean" and n_found >= 2 else None)
            scores.append(dict(k=k, metric=metric, silhouette=sil, calinski_harabasz=ch,
                               inertia=model.inertia_))
            logger.info("k=%d metric=%s: silhouette %.4f", k, metric, sil)
            if sil > best_score:
                best_model, best_score = model, sil
    if best_model is None:
        raise ClusteringError(
            "no candidate produced 2 or more clusters; check the input pixels and clustering.k"
        )
    return best_model, scores
