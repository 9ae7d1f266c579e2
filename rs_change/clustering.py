"""k-means clustering of pixels with a choice of metric, built for whole scenes.

The estimator :class:`KMeans` follows the scikit-learn conventions (``fit``, ``predict``,
``fit_predict``, learned attributes ending in ``_``) and adds what per-scene clustering of
satellite images needs:

* three metrics, each with the centre that minimises its own objective:

  ========== ============================== ==========================================
  metric     centre update                  ``inertia_`` (objective)
  ========== ============================== ==========================================
  euclidean  mean                           sum of *squared* euclidean distances
  manhattan  coordinate-wise median         sum of L1 distances (k-medians)
  chebyshev  coordinate-wise (trimmed)      sum of L-inf (Chebyshev) distances
             midrange
  ========== ============================== ==========================================

* the fit runs on a random sample of rows (``sample_size``) and every row is then assigned in
  chunks (``chunk_size`` rows at a time, on ``n_jobs`` threads) so memory is bounded by the chunk,
  not by the scene;
* k-means++ seeding with the metric's own distance, empty-cluster re-seeding, per-iteration
  traces (``shift_trace_``, ``objective_trace_``) and results that do not depend on row order.

Helpers: :func:`fit_scaler` / :func:`apply_scaler` (robust per-feature scaling),
:func:`silhouette` (stratified, every cluster represented), :func:`calinski_harabasz` and
:func:`select_model` (choose k and metric by silhouette).
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import Any, Sequence

import numpy as np

from . import defaults

try:  # the project's error hierarchy, when present
    from rs_change.errors import ClusteringError as _ProjectClusteringError
    from rs_change.errors import check_cancelled
except ImportError:  # pragma: no cover - stand-alone use
    _ProjectClusteringError = ValueError  # type: ignore[assignment,misc]

    def check_cancelled() -> None:
        """Stand-alone use: nothing to stop."""

logger = logging.getLogger(__name__)

__all__ = [
    "METRICS",
    "DEFAULT_SAMPLE_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_RESTART_SIZE",
    "ClusteringError",
    "KMeans",
    "kmeans_from_centers",
    "centre_distances",
    "fit_scaler",
    "apply_scaler",
    "silhouette",
    "silhouette_samples",
    "calinski_harabasz",
    "check_random_state",
    "select_model",
]

#: The metrics :class:`KMeans` accepts.
METRICS: tuple[str, ...] = ("euclidean", "manhattan", "chebyshev")
#: Rows used to fit the centres by default (assignment then covers every row).
DEFAULT_SAMPLE_SIZE = defaults.SAMPLE_SIZE
#: Rows assigned per chunk in :meth:`KMeans.predict` (about 4 MB of float32 per band-row set).
DEFAULT_CHUNK_SIZE = 65_536  # rows: a chunk's (n_features + 4) float32 columns fit in a 1 MB L2 cache
#: Rows the ``n_init`` seedings run on before the best one is refined on the whole fitted sample.
DEFAULT_RESTART_SIZE = 20_000


class ClusteringError(_ProjectClusteringError):  # type: ignore[misc,valid-type]
    """k-means cannot run as asked (k too large or too small, unknown metric, bad data).

    Subclasses :class:`ValueError` (and ``rs_change.errors.ClusteringError`` /
    ``RsChangeError`` when that module is available).
    """


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


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
    same labels and distances), or None where it does not apply (not built, not float32/64)."""
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
    distance to the second nearest centre (inf with one centre).  Ties go to the lowest index."""
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


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------


class KMeans:
    """k-means with a euclidean, manhattan (k-medians) or chebyshev metric.

    The centres are fitted on at most ``sample_size`` rows; every row of ``X`` is then assigned
    to its nearest centre chunk by chunk, so memory stays bounded by ``chunk_size`` whatever
    the scene size.

    Parameters
    ----------
    n_clusters : int, default 3
        Number of clusters k (>= 2).
    metric : {"euclidean", "manhattan", "chebyshev"}, default "euclidean"
        Distance used for seeding, assignment and the centre update:

        * ``"euclidean"``: centre = mean; ``inertia_`` = sum of **squared** euclidean distances
          (the classic k-means objective, as in scikit-learn).
        * ``"manhattan"``: centre = coordinate-wise median (k-medians); ``inertia_`` = sum of
          L1 distances.  The median minimises the L1 sum exactly, so the objective never
          increases from one iteration to the next (see ``objective_trace_``).
        * ``"chebyshev"``: centre = coordinate-wise *midrange* (midpoint of min and max of each
          coordinate within the cluster), after trimming ``chebyshev_trim`` of the rows at each
          end of every coordinate.  ``inertia_`` = sum of L-inf distances (reported for model
          comparison; see Notes for what the update minimises).
    init : "k-means++", "random" or array of shape (n_clusters, n_features), default "k-means++"
        Seeding.  "k-means++" picks each new seed with probability proportional to D^p, D the
        metric's distance to the nearest seed chosen so far (p = 2 for euclidean, p = 1 for
        manhattan and chebyshev: the power of the metric's objective), with greedy local trials
        as in scikit-learn.  An explicit array is used as given (one run, ``n_init`` ignored).
    n_init : int, default 3
        Independent seedings; the run with the lowest ``inertia_`` is kept.  When the fitted
        sample has more than ``restart_size`` rows, each seeding and its iterations run on the
        same random ``restart_size`` rows of it, and only the best run is then iterated on the
        whole sample (see ``restart_size``).
    max_iter : int, default 100
        Maximum iterations of one run.
    tol : float, default 1e-4
        A run stops when the largest centre shift (in the metric's own, non-squared distance,
        in the units of ``X``) is <= ``tol``.  Data should be scaled first (:func:`fit_scaler`),
        which makes an absolute tolerance meaningful.
    random_state : None, int or numpy.random.RandomState
        Seed for sampling and seeding, via :func:`check_random_state` (the same numbers as
        :func:`sklearn.utils.check_random_state`).  The same
        seed gives identical centres and labels.
    sample_size : int or None, default 200_000
        Rows used to fit the centres; ``None`` uses every row.  200k rows estimate three
        centres in 4 bands to far below one digital number while keeping the fit well under a
        second.  When ``X`` has at most ``sample_size`` rows all of them are used.
    chebyshev_trim : float in [0, 0.5), default 0.01
        Fraction of rows dropped at each end of every coordinate before taking the midrange
        (chebyshev only); ``floor(trim * n_c)`` rows, so small clusters use the exact midrange.
        0 gives the exact minimax (L-inf) centre.
    chunk_size : int, default 65_536
        Rows per chunk when assigning (predict, ``labels_``).
    n_jobs : int or None, default None
        Threads for the chunked assignment (numpy releases the GIL); ``None`` = ``os.cpu_count()``
        capped at 4.
    restart_size : int or None, default 20_000
        Rows the ``n_init`` seedings (k-means++ or random) are compared on.  Restarts only choose
        a basin: 20,000 rows rank local optima as the full sample does while the restarts cost
        a tenth of 200,000-row ones; the kept run then converges on every sampled row, so the
        centres are a local optimum of the whole sample.  ``None`` runs every restart on the whole
        sample.  Not used with an explicit ``init`` array.

    Attributes
    ----------
    cluster_centers_ : ndarray of float64, shape (n_clusters, n_features)
        Sorted lexicographically (by the first feature, then the second...), so cluster ids do
        not depend on which seed found a given solution.
    labels_ : ndarray of int32, shape (n_samples,)
        Cluster of every row of the ``X`` given to :meth:`fit` (all rows, not just the sample).
    inertia_ : float
        The metric's objective over the **fitted sample** at the final centres (see ``metric``).
    n_iter_ : int
        Iterations of the kept run on the whole fitted sample (after the restarts on
        ``restart_size`` rows, when those were used).
    shift_trace_ : list of float
        Largest centre shift (metric distance) at each iteration of the kept run on the whole
        fitted sample; the convergence trace.
    objective_trace_ : list of float
        The metric's objective over the whole fitted sample after each assignment step of the
        kept run.
    n_features_in_ : int
    sample_indices_ : ndarray of int or None
        Rows of ``X`` used for the fit (``None`` when every row was used).

    Notes
    -----
    *Chebyshev centre.*  For a fixed cluster, the point minimising the largest L-inf distance to
    its members is exactly the per-coordinate midrange, so the exact midrange
    (``chebyshev_trim=0``) makes each cluster's radius, and the largest point-to-centre
    distance over the sample, non-increasing.  But the midrange depends on two pixels per
    coordinate: in imagery those are glint, saturated cloud edges or sensor noise, and with a
    200k-pixel sample they would drive the centre.  The default therefore trims 1 % at each
    end (the midpoint of the 1st and 99th percentiles, by rank): the centre is the centre of
    the bulk's L-inf ball, robust to a few outliers, and the minimax property is kept on the
    98 % core.  No exact "sum of L-inf distances" minimiser is used because it needs a linear
    program per cluster and iteration.  Because the update does not minimise ``inertia_``
    exactly for chebyshev, runs stop on ``tol`` or ``max_iter``; ``objective_trace_`` is not
    guaranteed monotone for this metric.

    *Row order.*  The sample is sorted lexicographically before seeding, so the fit depends only
    on the *set* of sampled rows: when every row is used (``n <= sample_size`` or
    ``sample_size=None``), shuffling the rows of ``X`` gives exactly the same centres and the
    same partition.  Above ``sample_size`` the random row sample itself depends on row order.

    Examples
    --------
    >>> import numpy as np
    >>> from rs_change.clustering import KMeans
    >>> X = np.array([[0.0], [1.0], [10.0], [100.0], [101.0]])
    >>> km = KMeans(n_clusters=2, metric="manhattan", random_state=0).fit(X)
    >>> km.cluster_centers_.ravel().tolist()
    [1.0, 100.5]
    >>> km.predict(np.array([[2.0], [90.0]])).tolist()
    [0, 1]
    """

    def __init__(
        self,
        n_clusters: int = defaults.K,
        metric: str = defaults.METRIC,
        init: str | np.ndarray = "k-means++",
        n_init: int = defaults.N_INIT,
        max_iter: int = defaults.MAX_ITER,
        tol: float = defaults.TOL,
        random_state: Any = None,
        sample_size: int | None = DEFAULT_SAMPLE_SIZE,
        chebyshev_trim: float = 0.01,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        n_jobs: int | None = None,
        restart_size: int | None = DEFAULT_RESTART_SIZE,
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.sample_size = sample_size
        self.chebyshev_trim = chebyshev_trim
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.restart_size = restart_size

    # -- sklearn-ish plumbing -----------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as in scikit-learn."""
        return {
            name: getattr(self, name)
            for name in (
                "n_clusters", "metric", "init", "n_init", "max_iter", "tol", "random_state",
                "sample_size", "chebyshev_trim", "chunk_size", "n_jobs", "restart_size",
            )
        }

    def set_params(self, **params: Any) -> "KMeans":
        """Set constructor parameters, as in scikit-learn."""
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ClusteringError(f"unknown KMeans parameter {key!r}; valid: {sorted(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        return f"KMeans(n_clusters={self.n_clusters!r}, metric={self.metric!r})"

    # -- validation ---------------------------------------------------------------------------

    def _validate_params(self, n_features: int) -> dict[str, Any]:
        k = _check_int("n_clusters", self.n_clusters, 2, " (clustering.k needs at least 2 clusters)")
        metric = _check_metric(self.metric)
        n_init = _check_int("n_init", self.n_init, 1)
        max_iter = _check_int("max_iter", self.max_iter, 1)
        if isinstance(self.tol, bool) or not isinstance(self.tol, Real) or not self.tol >= 0:
            raise ClusteringError(f"tol={self.tol!r} is invalid; it must be a number >= 0")
        if self.sample_size is not None:
            _check_int("sample_size", self.sample_size, k, f" (at least n_clusters={k}) or None")
        trim = self.chebyshev_trim
        if isinstance(trim, bool) or not isinstance(trim, Real) or not 0 <= trim < 0.5:
            raise ClusteringError(
                f"chebyshev_trim={trim!r} is invalid; use a fraction in [0, 0.5), e.g. 0.01"
            )
        _check_int("chunk_size", self.chunk_size, 1)
        if self.n_jobs is not None:
            _check_int("n_jobs", self.n_jobs, 1, " or None")
        if self.restart_size is not None:
            _check_int("restart_size", self.restart_size, k, f" (at least n_clusters={k}) or None")
        init = self.init
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ClusteringError(
                    f"init={init!r} is invalid; use 'k-means++', 'random' or an array of shape "
                    f"({k}, {n_features})"
                )
        else:
            init = np.asarray(init, dtype=np.float64)
            if init.shape != (k, n_features):
                raise ClusteringError(
                    f"init array has shape {init.shape}; it must be (n_clusters, n_features) = "
                    f"({k}, {n_features})"
                )
            if not np.isfinite(init).all():
                raise ClusteringError("init array has NaN or infinite values")
            n_init = 1
        return dict(k=k, metric=metric, n_init=n_init, max_iter=max_iter, tol=float(self.tol),
                    trim=float(trim), init=init, restart_size=self.restart_size)

    # -- seeding ------------------------------------------------------------------------------

    @staticmethod
    def _kmeanspp(
        X: np.ndarray, xt: np.ndarray, k: int, metric: str, rng: np.random.RandomState
    ) -> np.ndarray:
        """Greedy k-means++ with D^p weights in the metric's own distance."""
        n = X.shape[0]
        n_local = 2 + int(math.log(k))
        first = rng.randint(n)
        centers = np.empty((k, X.shape[1]))
        centers[0] = X[first]
        _, closest = _nearest(xt, centers[:1], metric)
        closest = closest.astype(np.float64)
        pot = closest.sum()
        for c in range(1, k):
            if not pot > 0:
                distinct = c
                raise ClusteringError(
                    f"k={k} but only {distinct} distinct pixel values in the clustering sample; "
                    "lower clustering.k"
                )
            cum = np.cumsum(closest)
            cand = np.searchsorted(cum, rng.uniform(size=n_local) * cum[-1], side="right")
            cand = np.minimum(cand, n - 1)
            best_pot, best_idx, best_closest = np.inf, -1, closest
            for idx in cand:
                _, dist = _nearest(xt, X[idx : idx + 1], metric)
                new_closest = np.minimum(closest, dist)
                new_pot = new_closest.sum()
                if new_pot < best_pot:
                    best_pot, best_idx, best_closest = new_pot, idx, new_closest
            centers[c] = X[best_idx]
            closest, pot = best_closest, best_pot
        return centers

    # -- one run ------------------------------------------------------------------------------

    def _run_euclidean(
        self, X: np.ndarray, xt: np.ndarray, centers: np.ndarray, p: dict[str, Any]
    ) -> dict[str, Any]:
        """Lloyd's iterations with Hamerly's distance bounds: the same assignments as recomputing
        every distance (up to rounding), but a row is re-measured only when its bounds no longer
        prove that its centre is still the nearest.  Per row: an upper bound ``u`` on the distance
        to its centre and a lower bound ``lo`` on the distance to any other; a centre that moves by
        ``delta`` loosens them by ``delta``.  Cluster sums are updated for the rows that changed
        cluster only, and the objective comes from them: sum |x - c|^2 =
        sum |x|^2 - 2 sum_j c_j . S_j + sum_j n_j |c_j|^2.  Late iterations, where few rows are
        near a boundary, cost a few passes over the rows instead of k * n_features."""
        k, tol, max_iter = p["k"], p["tol"], p["max_iter"]
        sq_total = float(np.einsum("ij,ij->", X, X))
        shifts: list[float] = []
        objectives: list[float] = []
        full = True
        n_iter = 0
        for n_iter in range(1, max_iter + 1):
            check_cancelled()  # in a worker thread: Ctrl-C / SIGTERM stop the fit here
            if full:  # every distance (first iteration, after a re-seed)
                labels, b2, s2 = _nearest_two(xt, centers)
                u, lo = np.sqrt(b2), np.sqrt(s2)
                sums, counts = _cluster_sums(xt, labels, k)
                full = False
            objectives.append(max(0.0, sq_total - 2.0 * float((centers * sums).sum())
                                  + float((counts * (centers * centers).sum(axis=1)).sum())))
            with np.errstate(invalid="ignore", divide="ignore"):
                new = sums / counts[:, None]
            empty = np.flatnonzero(counts == 0)
            if empty.size:  # rare: the farthest rows need every distance; then start afresh
                new[empty] = np.nan
                _, dist = _nearest(xt, centers, "euclidean")
                self._reseed(X, new, empty, dist, n_iter)
                full = True
            delta = np.sqrt(((new - centers) ** 2).sum(axis=1))
            shift = float(delta.max())
            shifts.append(shift)
            centers = new
            if shift <= tol or full:
                if shift <= tol:
                    break
                continue
            # loosen the bounds by how far the centres moved, re-measure the rows they no longer hold
            u += delta[labels]
            if k > 1:
                top = np.argsort(delta)[::-1]
                lo -= np.where(labels == top[0], delta[top[1]], delta[top[0]])
            idx = np.flatnonzero(u * (1 + 1e-9) >= lo)
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
        _, dist = _nearest(xt, centers, "euclidean")
        return dict(centers=centers, inertia=float(dist.sum()), n_iter=n_iter,
                    shifts=shifts, objectives=objectives)

    @staticmethod
    def _reseed(X: np.ndarray, new: np.ndarray, empty: np.ndarray, dist: np.ndarray, n_iter: int) -> None:
        """Re-seed each empty cluster (NaN row of ``new``) at the row farthest from its centre."""
        k = new.shape[0]
        far = np.argsort(dist, kind="stable")[::-1]
        taken = 0
        for j in empty:
            while taken < far.size and any(
                np.array_equal(X[far[taken]], new[i]) for i in range(k) if i != j
                and np.isfinite(new[i]).all()
            ):
                taken += 1
            idx = far[min(taken, far.size - 1)]
            new[j] = X[idx]
            taken += 1
            logger.debug("cluster %d was empty at iteration %d; re-seeded at row %d", j, n_iter, idx)

    def _run(
        self,
        X: np.ndarray,
        xt: np.ndarray,
        centers: np.ndarray,
        p: dict[str, Any],
    ) -> dict[str, Any]:
        k, metric, tol, trim = p["k"], p["metric"], p["tol"], p["trim"]
        if metric == "euclidean":
            return self._run_euclidean(X, xt, centers, p)
        shifts: list[float] = []
        objectives: list[float] = []
        n_iter = 0
        for n_iter in range(1, p["max_iter"] + 1):
            check_cancelled()
            labels, dist = _nearest(xt, centers, metric)
            objectives.append(float(dist.sum()))
            new, counts = _update_centers(X, xt, labels, k, metric, trim)
            empty = np.flatnonzero(counts == 0)
            if empty.size:
                self._reseed(X, new, empty, dist, n_iter)
            shift = float(
                _true_distance(np.diag(_pairwise(centers, new, metric)), metric).max()
            )
            shifts.append(shift)
            centers = new
            if shift <= tol:
                break
        _, dist = _nearest(xt, centers, metric)
        return dict(centers=centers, inertia=float(dist.sum()), n_iter=n_iter,
                    shifts=shifts, objectives=objectives)

    # -- public API ---------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: Any = None) -> "KMeans":
        """Fit the centres on a sample of the rows of ``X`` and label every row.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)
            float32 or float64 (integers are accepted and computed in float64).  Rows must be
            finite: mask nodata before clustering.
        y : ignored

        Returns
        -------
        self : KMeans
        """
        X = _check_2d(X)
        n, d = X.shape
        p = self._validate_params(d)
        k = p["k"]
        if n < k:
            raise ClusteringError(
                f"k={k} but only {n} pixels to cluster; lower clustering.k or use a larger area"
            )
        rng = check_random_state(self.random_state)

        if self.sample_size is not None and n > self.sample_size:
            idx = np.unique(rng.randint(0, n, size=self.sample_size))
            sample = np.asarray(X[idx], dtype=np.float64)
            self.sample_indices_ = idx
        else:
            sample = np.asarray(X, dtype=np.float64)
            self.sample_indices_ = None
        _check_finite(sample, "X")
        rs = p["restart_size"]
        two_stage = isinstance(p["init"], str) and rs is not None and sample.shape[0] > rs
        if two_stage:
            # the restarts' rows: the rs smallest values of a seeded hash of each row's bytes, in
            # canonical (lexicographic) order, so they depend on the set of sampled rows only; the
            # whole sample keeps its order (its iterations sum over rows, whatever their order)
            sample = np.ascontiguousarray(sample)
            sub = np.argpartition(_row_hash(sample, rng), int(rs) - 1)[: int(rs)]
            seeds = sample[sub]
            seeds = np.ascontiguousarray(seeds[np.lexsort(seeds.T[::-1])])
            seeds_t = np.ascontiguousarray(seeds.T)
        else:
            # canonical order: the fit depends on the set of sampled rows, not on their order
            sample = np.ascontiguousarray(sample[np.lexsort(sample.T[::-1])])
        xt = np.ascontiguousarray(sample.T)
        if not two_stage:
            seeds, seeds_t = sample, xt

        if not isinstance(p["init"], str):
            n_distinct = np.unique(sample, axis=0).shape[0]
            if n_distinct < k:
                raise ClusteringError(
                    f"k={k} but only {n_distinct} distinct pixel values in the clustering "
                    "sample; lower clustering.k"
                )

        # restarts on the seeds' rows, then the best run is iterated on the whole sample
        best: dict[str, Any] | None = None
        for run in range(p["n_init"]):
            check_cancelled()
            if isinstance(p["init"], str) and p["init"] == "k-means++":
                centers = self._kmeanspp(seeds, seeds_t, k, p["metric"], rng)
            elif isinstance(p["init"], str):  # random distinct rows
                uniq = np.unique(seeds, axis=0)
                if uniq.shape[0] < k:
                    raise ClusteringError(
                        f"k={k} but only {uniq.shape[0]} distinct pixel values in the "
                        "clustering sample; lower clustering.k"
                    )
                centers = uniq[rng.choice(uniq.shape[0], k, replace=False)]
            else:
                centers = p["init"].copy()
            res = self._run(seeds, seeds_t, centers, p)
            logger.debug("run %d: inertia %.6g after %d iterations", run, res["inertia"],
                         res["n_iter"])
            if best is None or res["inertia"] < best["inertia"]:
                best = res
        assert best is not None
        if two_stage:
            best = self._run(sample, xt, best["centers"], p)
        if best["n_iter"] == p["max_iter"] and best["shifts"][-1] > p["tol"]:
            logger.info("k-means (%s) stopped at max_iter=%d with centre shift %.3g > tol=%.3g",
                        p["metric"], p["max_iter"], best["shifts"][-1], p["tol"])

        # canonical cluster ids: centres sorted lexicographically (first feature first)
        centers = np.asarray(best["centers"], dtype=np.float64)
        self.cluster_centers_ = centers[np.lexsort(centers.T[::-1])]
        self.inertia_ = best["inertia"]
        self.n_iter_ = best["n_iter"]
        self.shift_trace_ = list(best["shifts"])
        self.objective_trace_ = list(best["objectives"])
        self.n_features_in_ = d
        self.metric_ = p["metric"]
        # every row through the same chunked kernel as predict(), so fit(X).labels_ == predict(X)
        self.labels_ = self.predict(X)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Nearest centre of every row, in chunks of ``chunk_size`` rows on ``n_jobs`` threads.

        Memory beyond the output is about ``n_jobs * chunk_size * (n_features + 4)`` values of
        ``X``'s float type, independent of ``n_samples``.  Integer input (e.g. uint8 bands) is
        converted chunk by chunk, never as a whole.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of int32, shape (n_samples,)
            Ties go to the lowest cluster index.
        """
        if not hasattr(self, "cluster_centers_"):
            raise ClusteringError("this KMeans is not fitted yet; call fit(X) before predict(X)")
        X = _check_2d(X)
        if X.shape[1] != self.n_features_in_:
            raise ClusteringError(
                f"X has {X.shape[1]} features but the model was fitted with "
                f"{self.n_features_in_}; use the same bands for fit and predict"
            )
        n = X.shape[0]
        dtype = _work_dtype(X)
        centers = self.cluster_centers_
        metric = self.metric_
        chunk = int(self.chunk_size)
        out = np.empty(n, np.int32)
        starts = range(0, n, chunk)

        def work(s: int) -> bool:
            xt = np.ascontiguousarray(X[s : s + chunk].T, dtype=dtype)
            labels, dist = _nearest(xt, centers, metric)
            out[s : s + chunk] = labels
            return bool(np.isfinite(dist).all())

        n_jobs = self.n_jobs if self.n_jobs is not None else min(os.cpu_count() or 1, 4)
        n_jobs = max(1, min(n_jobs, len(starts)))
        if n_jobs == 1:
            ok = all([work(s) for s in starts])
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as ex:
                ok = all(list(ex.map(work, starts)))
        if not ok:
            _check_finite(X, "X")
        return out

    def fit_predict(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """Fit and return ``labels_``.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        labels : ndarray of int32, shape (n_samples,)
        """
        return self.fit(X).labels_

    def score(self, X: np.ndarray, y: Any = None) -> float:
        """Negative metric objective of ``X`` at the fitted centres (higher is better)."""
        X = _check_2d(X)
        total = 0.0
        for s in range(0, X.shape[0], int(self.chunk_size)):
            xt = np.ascontiguousarray(X[s : s + self.chunk_size].T, dtype=np.float64)
            total += float(_nearest(xt, self.cluster_centers_, self.metric_)[1].sum())
        return -total


def centre_distances(Xs: np.ndarray, centers: np.ndarray, metric: str) -> np.ndarray:
    """Distance of every row of ``Xs`` to its nearest centre, in the metric's own distance.

    Parameters
    ----------
    Xs : numpy.ndarray of shape (n, n_features)
        Scaled features.
    centers : numpy.ndarray of shape (k, n_features)
    metric : {"euclidean", "manhattan", "chebyshev"}

    Returns
    -------
    numpy.ndarray of float64, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> centre_distances(np.array([[3.0, 4.0], [0.0, 1.0]]), np.array([[0.0, 0.0]]), "euclidean").tolist()
    [5.0, 1.0]
    """
    Xs = np.asarray(Xs, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    best = np.full(len(Xs), np.inf)
    for j in range(len(c)):
        d = np.abs(Xs - c[j])
        if metric == "euclidean":
            dj = np.sqrt((d * d).sum(axis=1))
        elif metric == "manhattan":
            dj = d.sum(axis=1)
        else:
            dj = d.max(axis=1) if d.shape[1] else np.zeros(len(Xs))
        np.minimum(best, dj, out=best)
    return best


def kmeans_from_centers(centers: np.ndarray, metric: str, **params: Any) -> KMeans:
    """A :class:`~rs_change.clustering.KMeans` that predicts with given centres (no fit).

    Examples
    --------
    >>> import numpy as np
    >>> km = kmeans_from_centers(np.array([[0.0], [10.0]]), "euclidean")
    >>> km.predict(np.array([[1.0], [9.0]])).tolist()
    [0, 1]
    """
    centers = np.asarray(centers, dtype=np.float64)
    km = KMeans(n_clusters=len(centers), metric=metric, **params)
    km.cluster_centers_ = centers
    km.n_features_in_ = centers.shape[1]
    km.metric_ = metric
    km.n_iter_ = 0
    km.shift_trace_ = []
    km.objective_trace_ = []
    km.inertia_ = float("nan")
    return km


# --------------------------------------------------------------------------------------------
# scaling
# --------------------------------------------------------------------------------------------


def fit_scaler(X_sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust per-feature offset and scale: median and normalised IQR.

    ``scale = (q75 - q25) / 1.349`` (equal to the standard deviation for normal data); a feature
    with zero IQR falls back to its standard deviation, and a constant feature to 1.

    Why this suits every metric: all three metrics add up (euclidean, manhattan) or take the
    maximum of (chebyshev) per-feature differences, so a band with a wider spread of digital
    numbers dominates the distance — quadratically for euclidean, linearly for manhattan and
    completely for chebyshev, where the largest-scale band alone decides the distance.  Scaling
    every band to unit spread gives each an equal say.  The spread is measured robustly because
    imagery has clouds, glint, saturated and left-over nodata pixels: they inflate a standard
    deviation or a range and would squash the bulk of the pixels that the clusters must
    separate; the IQR ignores them.  The offset (median) does not change any distance, but
    centring near 0 keeps float32 arithmetic precise.

    Parameters
    ----------
    X_sample : ndarray, shape (n_samples, n_features)
        A sample of valid (finite) pixels.

    Returns
    -------
    offset : ndarray of float64, shape (n_features,)
    scale : ndarray of float64, shape (n_features,)
        Strictly positive.  Apply with :func:`apply_scaler`: ``(X - offset) / scale``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0], [100.0, 50.0]])
    >>> offset, scale = fit_scaler(X)
    >>> offset.tolist()
    [2.0, 30.0]
    """
    X = _check_2d(X_sample, "X_sample")
    X = np.asarray(X, dtype=np.float64)
    _check_finite(X, "X_sample")
    q25, offset, q75 = np.percentile(X, [25, 50, 75], axis=0)
    scale = (q75 - q25) / 1.349
    std = X.std(axis=0)
    scale = np.where(scale > 0, scale, std)
    scale = np.where(scale > 0, scale, 1.0)
    return offset, scale


def apply_scaler(
    X: np.ndarray, offset: np.ndarray, scale: np.ndarray, dtype: Any = np.float32
) -> np.ndarray:
    """``(X - offset) / scale`` as a new array of ``dtype``.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    offset, scale : ndarray, shape (n_features,)
        From :func:`fit_scaler`.
    dtype : numpy dtype, default float32

    Returns
    -------
    ndarray of ``dtype``, shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> apply_scaler(np.array([[2.0, 4.0]]), np.array([1.0, 0.0]), np.array([1.0, 2.0])).tolist()
    [[1.0, 2.0]]
    """
    out = np.array(X, dtype=dtype, copy=True)
    out -= np.asarray(offset, dtype=dtype)
    out /= np.asarray(scale, dtype=dtype)
    return out


# --------------------------------------------------------------------------------------------
# scores and model selection
# --------------------------------------------------------------------------------------------


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
