"""Default settings of the fit, declared once.

The config models (:class:`~rs_change.config.ClusteringConfig`, ``LabellingConfig``,
``GridConfig``), the array API (:func:`rs_change.fit_model`), the shared fit
(:func:`rs_change.model.fit_sample`), :class:`~rs_change.clustering.KMeans` and the labeller
(:func:`rs_change.labelling.fit_labeller`) take their defaults from here, so a script, a config
and ``rs-change init``'s template give the same numbers.  Imports no module of the package.
"""

from __future__ import annotations

from typing import Final

#: Reported clusters per date (``clustering.k``).
K = 3
#: k-means distance (``clustering.metric``).
METRIC: Final = "euclidean"
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
LABELLING_METHOD: Final = "auto"
#: Resampling of the bands onto the reference grid (``grid.resampling``).
RESAMPLING: Final = "bilinear"
#: Pixels of the reference grid a QA layer's cloud and shadow are grown by (``qa.buffer``): 0,
#: since QA_PIXEL's dilated cloud and Fmask's "adjacent" are the products' own buffers, masked by
#: default (:mod:`rs_change.qa`).
QA_BUFFER = 0

# Waterbodies (``waterbodies:``, rs_change.waterbody): tuned for runs of 2 to 20 dates, not for
# decades of Landsat (DEA Waterbodies' 0.05 / 0.10 frequencies); docs/products.md says why.
#: A core pixel is water on at least this share of the dates it was observed on.
WB_CORE_SHARE = 0.5
#: An extent pixel is water on at least this share of its observed dates.
WB_EXTENT_SHARE = 0.25
#: A core pixel was observed on at least this many dates.
WB_MIN_OBSERVATIONS = 2
#: ``waterbodies.min_area_m2: null``: this many mean pixel areas.
WB_MIN_AREA_PX = 10
#: ``wet_pct`` is empty where more than this % of a waterbody was unobserved (DEA's 10 %).
WB_MAX_INVALID_PCT = 10.0
