"""The array operations under :class:`rs_change.kmeans.KMeans`: argument checks, nearest-centre
assignment and one iteration of the euclidean distance bounds (numpy, or the compiled loops of
``rs_change._kernels`` when it is built: the same results bit for bit), per-cluster sums,
order-free row hashes, pairwise distances and the centre update of each metric.

Nothing here keeps state; every function takes arrays and returns arrays.
"""

from __future__ import annotations

import logging
import math
import os
from numbers import Integral
from typing import Any

import numpy as np

from . import defaults
from .errors import ClusteringError

logger = logging.getLogger(__name__)

#: The metrics :class:`rs_change.kmeans.KMeans` accepts.
METRICS: tuple[str, ...] = ("euclidean", "manhattan", "chebyshev")
#: Rows used to fit the centres by default (assignment then covers every row).
DEFAULT_SAMPLE_SIZE = defaults.SAMPLE_SIZE
#: Rows assigned per chunk in :meth:`KMeans.predict` (about 4 MB of float32 per band-row set).
DEFAULT_CHUNK_SIZE = 65_536  # rows: a chunk's (n_features + 4) float32 columns fit in a 1 MB L2 cache
#: Rows the ``n_init`` seedings run on before the best one is refined on the whole fitted sample.
DEFAULT_RESTART_SIZE = 20_000


def _check_metric(metric: Any) -> str:
    if not isinstance(metric, str) or metric.lower() not in METRICS:
        raise ClusteringError(
            f"unknown clustering metric {metric!r}; use one of {', '.join(METRICS)}"
        )
    return metric.lower()


def _check_int(name: str, value: Any, minimum: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ClusteringError(
            f"{name}={value!r} is invalid; it must be an integer >= {minimum}{hint}"
        )
    return int(value)


def _check_2d(X: Any, name: str = "X") -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ClusteringError(
            f"{name} must be a 2-D array (n_samples, n_features), got shape {X.shape}; "
            "reshape an image of shape (bands, rows, cols) with X = img.reshape(bands, -1).T"
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ClusteringError(f"{name} is empty (shape {X.shape}); there are no pixels to cluster")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise ClusteringError(f"{name} must hold numbers, got dtype {X.dtype}")
    return X


def _work_dtype(X: np.ndarray) -> np.dtype:
    """float32 stays float32 (half the memory traffic); everything else is computed in float64."""
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def check_random_state(seed: Any) -> np.random.RandomState:
    """A :class:`numpy.random.RandomState` from ``seed``, as :func:`sklearn.utils.check_random_state`.

    ``None`` (or the :mod:`numpy.random` module) gives numpy's global RandomState, an int a new
    RandomState seeded with it, and a RandomState is returned as is; so a seed draws exactly the
    numbers it drew when scikit-learn's function was used (without importing scikit-learn).

    Parameters
    ----------
    seed : None, int or numpy.random.RandomState

    Returns
    -------
    numpy.random.RandomState

    Examples
    --------
    >>> check_random_state(0).randint(100) == np.random.RandomState(0).randint(100)
    True
    """
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, Integral):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ClusteringError(f"random_state={seed!r} is invalid; use None, an integer or a numpy RandomState")


def _check_finite(X: np.ndarray, name: str = "X") -> None:
    if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        bad = int(np.count_nonzero(~np.isfinite(X).all(axis=1)))
        raise ClusteringError(
            f"{name} has {bad} rows with NaN or infinite values; mask nodata pixels out "
            "before clustering"
        )


# --------------------------------------------------------------------------------------------
# distance kernels
# --------------------------------------------------------------------------------------------


try:  # the compiled loops of rs_change.kernels (the extension itself: kernels imports this module)
    if os.environ.get("RS_CHANGE_KERNELS", "1").strip().lower() in ("0", "false", "no", "off"):
        raise ImportError("turned off by RS_CHANGE_KERNELS")
    from . import _kernels as _ck
except ImportError:
    _ck = None

_METRIC_CODES = {"euclidean": 0, "manhattan": 1, "chebyshev": 2}


def _nearest_compiled(xt: np.ndarray, centers: np.ndarray, metric: str, two: bool) -> Any:
    """:func:`_nearest` (``two`` False) or :func:`_nearest_two` in one compiled loop over the
    points (``rs_change._kernels.nearest_rows``: the same float terms in the same order, so the
    same labels and distances), or None where it does not apply (not built, not float32/64).
    """
    if _ck is None or xt.dtype not in (np.float32, np.float64) or xt.ndim != 2 or metric not in _METRIC_CODES:
        return None
    d_feat, m = xt.shape
    xt = np.ascontiguousarray(xt)
    c = np.ascontiguousarray(centers.astype(xt.dtype, copy=False))
    labels = np.empty(m, np.int32)
    best = np.empty(m, xt.dtype)
    second = np.empty(m if two else 1, xt.dtype)
    _ck.nearest_rows(xt, d_feat, m, c, c.shape[0], _METRIC_CODES[metric], two, xt.dtype == np.float64,
                     labels, best, second)
    return (labels, best, second) if two else (labels, best)


def _nearest(
    xt: np.ndarray, centers: np.ndarray, metric: str, want_dist: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each column of ``xt``.

    Parameters
    ----------
    xt : ndarray, shape (n_features, m)
        Points as *columns* (C-contiguous), so every per-feature operation runs on a contiguous
        vector of length ``m`` and no (m, k, n_features) temporary is ever built.
    centers : ndarray, shape (k, n_features)
    metric : str

    Returns
    -------
    labels : ndarray of int32, shape (m,)
    dist : ndarray, shape (m,)
        Distance to the nearest centre: squared euclidean, L1 or L-inf.  Ties go to the lowest
        centre index.
    """
    fast = _nearest_compiled(xt, centers, metric, False)
    if fast is not None:
        return fast
    d_feat, m = xt.shape
    dtype = xt.dtype
    c = centers.astype(dtype, copy=False)
    best = np.empty(m, dtype)
    labels = np.zeros(m, np.int32)
    d = np.empty(m, dtype)
    t = np.empty(m, dtype)
    mask = np.empty(m, bool)
    for j in range(c.shape[0]):
        np.subtract(xt[0], c[j, 0], out=d)
        if metric == "euclidean":
            np.multiply(d, d, out=d)
        else:
            np.abs(d, out=d)
        for f in range(1, d_feat):
            np.subtract(xt[f], c[j, f], out=t)
            if metric == "euclidean":
                np.multiply(t, t, out=t)
                np.add(d, t, out=d)
            elif metric == "manhattan":
                np.abs(t, out=t)
                np.add(d, t, out=d)
            else:
                np.abs(t, out=t)
                np.maximum(d, t, out=d)
        if j == 0:
            best, d = d, best
        else:
            np.less(d, best, out=mask)
            labels[mask] = j
            np.minimum(best, d, out=best)
    return labels, best


def _nearest_two(xt: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Euclidean: nearest centre of each column of ``xt``, its squared distance and the squared
    distance to the second nearest centre (inf with one centre).  Ties go to the lowest index.
    """
    fast = _nearest_compiled(xt, centers, "euclidean", True)
    if fast is not None:
        return fast
    d_feat, m = xt.shape
    c = centers.astype(xt.dtype, copy=False)
    best = np.full(m, np.inf, xt.dtype)
    second = np.full(m, np.inf, xt.dtype)
    labels = np.zeros(m, np.int32)
    d = np.empty(m, xt.dtype)
    t = np.empty(m, xt.dtype)
    closer = np.empty(m, bool)
    for j in range(c.shape[0]):
        np.subtract(xt[0], c[j, 0], out=d)
        np.multiply(d, d, out=d)
        for f in range(1, d_feat):
            np.subtract(xt[f], c[j, f], out=t)
            np.multiply(t, t, out=t)
            np.add(d, t, out=d)
        np.less(d, best, out=closer)
        # second = min(second, max(best, d)): the old best when j is closer, else d if smaller
        np.minimum(second, np.maximum(best, d, out=t), out=second)
        labels[closer] = j
        np.minimum(best, d, out=best)
    return labels, best, second


def _cluster_sums(xt: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums of the columns of ``xt`` (shape (k, n_features), float64) and counts."""
    d = xt.shape[0]
    labels = labels.astype(np.intp, copy=False)
    bins = (labels[None, :] + (k * np.arange(d, dtype=np.intp))[:, None]).ravel()
    sums = np.bincount(bins, weights=xt.ravel(), minlength=k * d).reshape(d, k).T
    return sums, np.bincount(labels, minlength=k)


def _bounds_step(xt: np.ndarray, centers: np.ndarray, labels: np.ndarray, u: np.ndarray, lo: np.ndarray,
                 delta: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> None:
    """One iteration of :meth:`KMeans._run_euclidean`'s Hamerly bounds, in place, after the centres
    moved to ``centers`` by ``delta``: loosen each point's upper bound ``u`` by its centre's move and
    its lower bound ``lo`` by the largest move of another centre, measure again the points whose
    bounds no longer prove their centre the nearest, and move those whose centre changed from one
    cluster's ``sums`` and ``counts`` to the other's.  One compiled pass over the points
    (``rs_change._kernels.bounds_step``) where built, else :func:`_bounds_step_numpy`: the same
    labels, bounds and sums, bit for bit.
    """
    k = centers.shape[0]
    top = np.argsort(delta)[::-1]
    if (_ck is None or xt.dtype != np.float64 or labels.dtype != np.int32 or u.dtype != np.float64
            or lo.dtype != np.float64):
        _bounds_step_numpy(xt, centers, labels, u, lo, delta, sums, counts, top)
        return
    d_feat, m = xt.shape
    part = np.zeros((2, k, d_feat))
    n = np.zeros((2, k), np.int64)
    moved = _ck.bounds_step(xt, d_feat, m, np.ascontiguousarray(centers, np.float64), k, labels, u, lo,
                            np.ascontiguousarray(delta, np.float64), int(top[0]), int(top[1 if k > 1 else 0]),
                            _SLACK, part, n)
    if moved:
        sums += part[1] - part[0]
        counts += n[1] - n[0]


#: a point is measured again unless its upper bound is below its lower bound by this factor
#: (rounding in the bounds' updates must not keep a point with a nearer centre)
_SLACK = 1 + 1e-9


def _bounds_step_numpy(xt: np.ndarray, centers: np.ndarray, labels: np.ndarray, u: np.ndarray, lo: np.ndarray,
                       delta: np.ndarray, sums: np.ndarray, counts: np.ndarray, top: np.ndarray) -> None:
    """:func:`_bounds_step` in numpy (``top``: the centres by decreasing move)."""
    k = centers.shape[0]
    u += delta[labels]
    if k > 1:
        lo -= np.where(labels == top[0], delta[top[1]], delta[top[0]])
    idx = np.flatnonzero(u * _SLACK >= lo)
    if idx.size:
        sub = np.ascontiguousarray(xt[:, idx])
        lab2, b2, s2 = _nearest_two(sub, centers)
        u[idx], lo[idx] = np.sqrt(b2), np.sqrt(s2)
        old = labels[idx]
        moved = np.flatnonzero(lab2 != old)
        if moved.size:
            subm = np.ascontiguousarray(sub[:, moved])
            s_old, c_old = _cluster_sums(subm, old[moved], k)
            s_new, c_new = _cluster_sums(subm, lab2[moved], k)
            sums += s_new - s_old
            counts += c_new - c_old
            labels[idx[moved]] = lab2[moved]


def _row_hash(X: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """A seeded 64-bit hash of every row's float64 bytes (splitmix64 mixing; exact integer
    arithmetic): equal rows hash equally wherever they are, distinct rows look uniformly random.

    ``X`` : float64, C-contiguous, shape (n, d).  Returns uint64, shape (n,).
    """
    bits = X.view(np.uint64)
    salt = np.uint64(rng.randint(0, 2**31)) * np.uint64(0x9E3779B97F4A7C15 % 2**31)
    h = np.full(X.shape[0], salt, np.uint64)
    for f in range(X.shape[1]):
        h ^= bits[:, f]
        h += np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def _pairwise(A: np.ndarray, B: np.ndarray, metric: str) -> np.ndarray:
    """Small dense distance matrix (len(A), len(B)); squared for euclidean."""
    diff = np.abs(A[:, None, :] - B[None, :, :])
    if metric == "euclidean":
        return (diff**2).sum(-1)
    if metric == "manhattan":
        return diff.sum(-1)
    return diff.max(-1)


def _true_distance(sq_or_dist: np.ndarray, metric: str) -> np.ndarray:
    return np.sqrt(sq_or_dist) if metric == "euclidean" else sq_or_dist


# --------------------------------------------------------------------------------------------
# centre updates
# --------------------------------------------------------------------------------------------


def _trimmed_midrange(Xc: np.ndarray, trim: float) -> np.ndarray:
    """Per-coordinate midpoint of the range after dropping ``floor(trim * n)`` rows at each end."""
    n = Xc.shape[0]
    t = int(math.floor(trim * n))
    if t == 0:
        return 0.5 * (Xc.min(axis=0) + Xc.max(axis=0))
    lo_hi = np.partition(Xc, (t, n - 1 - t), axis=0)
    return 0.5 * (lo_hi[t] + lo_hi[n - 1 - t])


def _update_centers(
    X: np.ndarray, xt: np.ndarray, labels: np.ndarray, k: int, metric: str, trim: float
) -> tuple[np.ndarray, np.ndarray]:
    """New centres and the member count of each cluster (empty clusters get NaN centres).

    ``xt`` is ``X.T`` as a C-contiguous array (the same data, feature-major).
    """
    n, d = X.shape
    labels = labels.astype(np.intp, copy=False)
    counts = np.bincount(labels, minlength=k)
    centers = np.full((k, d), np.nan)
    if metric == "euclidean":
        sums, _ = _cluster_sums(xt, labels, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            centers = sums / counts[:, None]
        centers[counts == 0] = np.nan
        return centers, counts
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    Xs = X[order]
    for j in range(k):
        if counts[j] == 0:
            continue
        Xc = Xs[bounds[j] : bounds[j + 1]]
        if metric == "manhattan":
            centers[j] = np.median(Xc, axis=0)
        else:
            centers[j] = _trimmed_midrange(Xc, trim)
    return centers, counts
