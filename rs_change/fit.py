"""Pass 1: one model per date, from a sample of the date on the reference grid.

:func:`sample_pixels` draws up to ``clustering.sample_size`` observed pixels of a date from a
decimated read; :func:`fit_date` fits the date's :class:`~rs_change.model.WaterModel` on them
(:func:`rs_change.model.fit_sample`, the same code path as :func:`rs_change.fit_model`), or applies
the run's shared model (``clustering.fit_on`` / ``clustering.model``, :func:`shared_model`).  The
result is a :class:`DateModel`.  Takes the ``clustering`` and ``labelling`` sections of a config
and the grid's resampling, not the whole run configuration.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from . import defaults
from .aoi import aoi_mask
from .engine import limit_gdal_cache
from .errors import NoValidPixelsError
from .features import default_features, feature_matrix
from .grid import Grid
from .labelling import ClusterDecision, Labeller, water_ids
from .model import FitParams, WaterModel, apply_to_sample, fit_sample
from .readers import SceneSource, decimated_grid, decimated_read
from .sensors import check_raw_values, check_reflectance

if TYPE_CHECKING:  # pragma: no cover
    from .clustering import KMeans
    from .config import ClusteringConfig, LabellingConfig

log = logging.getLogger(__name__)

#: Pass 1 keeps its decimated read of a date for the report when it has at most this many pixels.
PREVIEW_MAX_PIXELS = 1_000_000


@dataclass
class DateModel:
    """What pass 1 learns about one date: its :class:`~rs_change.model.WaterModel` and what was
    measured on the date's sample.

    The model (scaler, centres, labeller) lives in ``water_model`` only; the read-only properties
    ``names``, ``offset``, ``scale``, ``kmeans`` and ``labeller`` are the model's, so
    :mod:`rs_change.water`, :mod:`rs_change.lut` and :mod:`rs_change.kernels` take a DateModel
    where they take a WaterModel.  ``decisions`` are this date's: the model's own for a model
    fitted on the date, measured on this date's sample for a shared model
    (:meth:`~rs_change.model.WaterModel.decisions_for`); ``water_ids`` follow them.
    """

    source: SceneSource
    water_model: WaterModel  # saved as model_<date>.json
    decisions: list[ClusterDecision]
    silhouette: Optional[float]
    scores: list[dict[str, Any]] = field(default_factory=list)
    sample_pixels: int = 0
    #: pass 1's decimated read ((h, w), bands, observed) when small: the report's quicklook of the
    #: date when it has the same shape (the same pixels, read once); not sent to block workers
    preview: Any = field(default=None, repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        """Feature names (the model's)."""
        return self.water_model.names

    @property
    def offset(self) -> np.ndarray:
        """The model's scaler offset."""
        return self.water_model.offset

    @property
    def scale(self) -> np.ndarray:
        """The model's scaler scale."""
        return self.water_model.scale

    @property
    def kmeans(self) -> "KMeans":
        """The reported clusters' k-means (the model's)."""
        return self.water_model.kmeans

    @property
    def labeller(self) -> Optional[Labeller]:
        """The model's water labeller: fine clusters + per-pixel water test."""
        return self.water_model.labeller

    @property
    def water_ids(self) -> np.ndarray:
        """Reported cluster ids decided to be water on this date (int64), from ``decisions``."""
        return np.array(water_ids(self.decisions), dtype=np.int64)


def sample_pixels(
    source: SceneSource, ref: Grid, geoms: Optional[list[Any]], names: Sequence[str], n: Optional[int], seed: int,
    resampling: str = defaults.RESAMPLING, keep: Optional[dict[str, Any]] = None,
) -> np.ndarray:
    """Features (physical units) of up to ``n`` observed pixels, from a decimated read
    (:func:`~rs_change.readers.decimated_read`). With ``keep`` (a dict) the read is stored as ``keep["preview"] =
    ((h, w), bands, observed)`` when it has at most :data:`PREVIEW_MAX_PIXELS` pixels.
    """
    total = ref.height * ref.width
    step = 1 if n is None else max(1, int(math.sqrt(total / (2.0 * n))))
    oh, ow = math.ceil(ref.height / step), math.ceil(ref.width / step)
    bands, valid = decimated_read(source, ref, (oh, ow), resampling, check=_check_values)
    if keep is not None and oh * ow <= PREVIEW_MAX_PIXELS:
        keep["preview"] = ((oh, ow), bands, valid.copy())
    if geoms is not None:
        valid &= aoi_mask(geoms, decimated_grid(ref, (oh, ow)))
    check_reflectance(bands, valid, source.profile, source.label)  # a wrong scale/offset: one line, not nonsense
    X = feature_matrix(bands, valid, names)
    if n is not None and len(X) > n:
        rng = np.random.default_rng(seed)
        X = X[np.sort(rng.choice(len(X), size=n, replace=False))]
    return X


def _check_values(source: SceneSource, raws: dict, inside: np.ndarray) -> None:
    """Pass 1's check of a scene's sampled raw values against its profile: one line and a stop
    when most are outside the profile's valid range, a logged warning for values the product's data
    type cannot hold (:func:`rs_change.sensors.check_raw_values`).
    """
    for warning in check_raw_values(raws, inside, source.profile, source.nodata, source.label):
        log.warning("%s", warning)


def fit_date(
    source: SceneSource, ref: Grid, geoms: Optional[list[Any]], clustering: "ClusteringConfig",
    labelling: "LabellingConfig", resampling: str = defaults.RESAMPLING, shared: Optional[WaterModel] = None,
) -> DateModel:
    """Sample one date, fit its k-means model and label its clusters (or apply ``shared``, a
    :class:`~rs_change.model.WaterModel` used for every date: same cluster ids everywhere).

    Parameters
    ----------
    source : SceneSource
        The date.
    ref : Grid
        The reference grid the date is sampled on.
    geoms : list of shapely geometries or None
        The area of interest in ``ref``'s CRS.
    clustering, labelling : ClusteringConfig, LabellingConfig
        The config's ``clustering`` and ``labelling`` sections.
    resampling : str, default "bilinear"
        Resampling of the bands onto ``ref`` (``grid.resampling``).
    shared : WaterModel, optional
        Apply this model instead of fitting one.
    """
    params = FitParams.from_config(clustering, labelling)
    names = default_features(source.roles)
    keep: dict[str, Any] = {}
    X = sample_pixels(source, ref, geoms, names, params.sample_size, params.seed, resampling, keep)
    if len(X) == 0:
        raise NoValidPixelsError(
            f"{source.label}: every pixel of {source.date} is nodata, cloud or outside the area of interest; "
            "check the scene's nodata value, the QA settings and `aoi`"
        )
    if shared is not None:  # clustering.fit_on / clustering.model (rs_change.model): the whole model, labeller too
        _, dec, sil = apply_to_sample(shared, X, names, source.label, source.date.isoformat(), params.seed,
                                      source.profile.calibrated)
        return DateModel(source, shared, dec, sil, [], len(X), preview=keep.get("preview"))
    # one code path with rs_change.fit_model: same sample and seed, same numbers
    wm, scores = fit_sample(X, names, source.profile, params, fitted_on=source.date.isoformat(),
                            label=f"{source.label} ({source.date})")
    log.info("%s: k=%d %s, water clusters %s", source.date, wm.k, wm.metric, wm.water_ids)
    return DateModel(source, wm, wm.decisions, wm.silhouette, scores, len(X), preview=keep.get("preview"))


def shared_model(
    clustering: "ClusteringConfig", labelling: "LabellingConfig", sources: Sequence[SceneSource], ref: Grid,
    geoms: Optional[list[Any]], resampling: str = defaults.RESAMPLING, resolve: Callable[[str], Path] = Path,
) -> Optional[WaterModel]:
    """The one model applied to every date: fitted on ``clustering.fit_on``, or loaded from
    ``clustering.model`` (a path made absolute by ``resolve``); None when each date gets its own model.
    """
    c = clustering
    if c.model is not None:
        wm = WaterModel.load(resolve(c.model))
        return wm.with_water(labelling.water or []) if labelling.method == "clusters" else wm
    if c.fit_on is not None:
        src = next(s for s in sources if s.date == c.fit_on)
        return fit_date(src, ref, geoms, clustering, labelling, resampling).water_model
    return None


@dataclass
class FitTask:
    """``fit_date`` with the run context bound (picklable; one date per call)."""

    ref: Grid
    geoms: Optional[list[Any]]
    clustering: "ClusteringConfig"
    labelling: "LabellingConfig"
    resampling: str = defaults.RESAMPLING
    gdal_cache_mb: int = 256
    shared: Optional[WaterModel] = None

    def __call__(self, source: SceneSource) -> DateModel:
        """Fit the model of one date's scene ``source``."""
        # the silhouette's pairwise scratch is bounded by rs_change.clustering.SILHOUETTE_BLOCK_BYTES
        limit_gdal_cache(self.gdal_cache_mb)
        return fit_date(source, self.ref, self.geoms, self.clustering, self.labelling, self.resampling, self.shared)
