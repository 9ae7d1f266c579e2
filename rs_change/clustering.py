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

This module is the front door: the estimator lives in :mod:`rs_change.kmeans`, its array
operations in :mod:`rs_change.kmeans_ops`, the scaler in :mod:`rs_change.scaler` and the scores
and model selection in :mod:`rs_change.cluster_scores`; every name is re-exported here.
"""

from __future__ import annotations

from .cluster_scores import (
    SILHOUETTE_BLOCK_BYTES,
    _stratified_indices,
    calinski_harabasz,
    select_model,
    silhouette,
    silhouette_samples,
)
from .errors import ClusteringError
from .kmeans import KMeans, centre_distances, kmeans_from_centers
from .kmeans_ops import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_RESTART_SIZE,
    DEFAULT_SAMPLE_SIZE,
    METRICS,
    _nearest,
    _nearest_two,
    check_random_state,
)
from .scaler import apply_scaler, fit_scaler

__all__ = [
    "METRICS",
    "DEFAULT_SAMPLE_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_RESTART_SIZE",
    "SILHOUETTE_BLOCK_BYTES",
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
    "_nearest",
    "_nearest_two",
    "_stratified_indices",
]
