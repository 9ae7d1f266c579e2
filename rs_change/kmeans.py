"""The k-means estimator: :class:`KMeans` (fit, predict, score) and the two ways to rebuild one
from saved centres (:func:`kmeans_from_centers`, :func:`centre_distances`).

The array work (assignment, centre updates per metric) is in :mod:`rs_change.kmeans_ops`; scores
and the choice of k and metric are in :mod:`rs_change.cluster_scores`.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from numbers import Real
from typing import Any

import numpy as np

from . import defaults
from .errors import ClusteringError, check_cancelled
from .kmeans_ops import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_RESTART_SIZE,
    DEFAULT_SAMPLE_SIZE,
    _bounds_step,
    _check_2d,
    _check_finite,
    _check_int,
    _check_metric,
    _cluster_sums,
    _nearest,
    _nearest_two,
    _pairwise,
    _row_hash,
    _true_distance,
    _update_centers,
    _work_dtype,
    check_random_state,
)

logger = logging.getLogger(__name__)


@dataclass(eq=False, repr=False)
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

    # The constructor parameters (scikit-learn's convention: stored as given, checked in fit).
    n_clusters: int = defaults.K
    metric: str = defaults.METRIC
    init: str | np.ndarray = "k-means++"
    n_init: int = defaults.N_INIT
    max_iter: int = defaults.MAX_ITER
    tol: float = defaults.TOL
    random_state: Any = None
    sample_size: int | None = DEFAULT_SAMPLE_SIZE
    chebyshev_trim: float = 0.01
    chunk_size: int = DEFAULT_CHUNK_SIZE
    n_jobs: int | None = None
    restart_size: int | None = DEFAULT_RESTART_SIZE

    # -- sklearn-ish plumbing -----------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as in scikit-learn."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

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
        near a boundary, cost a few passes over the rows instead of k * n_features.
        """
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
            _bounds_step(xt, centers, labels, u, lo, delta, sums, counts)
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
            self.sample_indices_: np.ndarray | None = idx
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
