"""Default settings of the fit, declared once.

The config models (:class:`~rs_change.config.ClusteringConfig`, ``LabellingConfig``,
``GridConfig``), the array API (:func:`rs_change.fit_model`), the shared fit
(:func:`rs_change.model.fit_sample`), :class:`~rs_change.clustering.KMeans` and the labeller
(:func:`rs_change.labelling.fit_labeller`) take their defaults from here, so a script, a config
and ``rs-change init``'s template give the same numbers.  Imports nothing.
"""

from __future__ import annotations

#: Reported clusters per date (``clustering.k``).
K = 3
#: k-means distance (``clustering.metric``).
METRIC = "euclidean"
#: Random seed (``clustering.seed``): same data, settings and seed, same numbers.
SEED = 0
#: Pixels sampled to fit each date's model (``clustering.sample_size``); also the rows
#: :class:`~rs_change.clustering.KMeans` fits on by default.
SAMPLE_SIZE = 200_000
#: k-means restarts; the best objective is kept (``clustering.n_init``).
N_INIT = 3
#: k-means iteration cap (``clustering.max_iter``).
MAX_ITER = 100
#: k-means convergence: largest centre shift, in scaled feature units (``clustering.tol``).
TOL = 1e-4
#: How water is decided (``labelling.method``): ``auto`` from the clusters' spectra.
LABELLING_METHOD = "auto"
#: Resampling of the bands onto the reference grid (``grid.resampling``).
RESAMPLING = "bilinear"
#: Pixels of the reference grid a QA layer's cloud and shadow are grown by (``qa.buffer``): 0,
#: since QA_PIXEL's dilated cloud and Fmask's "adjacent" are the products' own buffers, masked by
#: default (:mod:`rs_change.qa`).
QA_BUFFER = 0
