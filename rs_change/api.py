"""The array-level API for scripts (QGIS, ArcGIS Pro, notebooks): arrays or DataArrays in, the
same kind out.

Every function is usable alone and does what the pipeline (``rs-change run``) does on one
in-memory scene, so the numbers are the same:

==========================  ==============================================================
:func:`read_scene`          path(s) + band profile -> :class:`Scene` (bands, valid, transform, CRS)
:func:`compute_features`    bands -> feature stack (bands in canonical order, NDWI, MNDWI)
:func:`fit_model`           k-means (+ robust scaler, + water decisions) -> :class:`WaterModel`
:func:`predict_clusters`    cluster id of every pixel (``WaterModel.predict``)
:func:`label_water`         water mask: 1 water, 0 land, 255 unobserved
:func:`water_area`          ground area of a mask, m2 (geodesic, any CRS)
:func:`compare`             two or more masks -> change map (first -> last) and statistics
:func:`polygonize`          mask -> GeoDataFrame of water polygons with their areas
:func:`write_outputs`       water_<date>.tif, change.tif, clusters_<date>.tif/.png, model_<date>.json, water.gpkg
==========================  ==============================================================

Inputs ("scene data") may be

* a :class:`Scene` from :func:`read_scene`;
* an ``xarray.DataArray`` of shape (band, y, x) with rioxarray georeferencing (``.rio.transform()``,
  ``.rio.crs``); band roles come from string band coordinates (``"red"``, ``"nir"``...), from
  ``sensor=`` or from ``bands={role: 1-based position}``;
* a numpy array of shape (band, y, x) (what ``rasterio.read()``, GDAL ``ReadAsArray()`` and
  ``arcpy.RasterToNumPyArray`` return) with ``sensor=`` or ``bands=``, and ``transform=``/``crs=``
  where areas are needed;
* a mapping ``{role: (y, x) array}``.

Unobserved pixels are NaN, ``nodata`` or outside the profile's valid range.  Masks are uint8
(1 water, 0 land, 255 unobserved).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from . import defaults
from .area import pixel_area
from .change import CHANGE_CLASSES, CHANGE_COLORS, NODATA, change_map, change_stats, class_areas
from .errors import ClusteringError, GeoreferenceError, NoValidPixelsError
from .features import default_features, feature_matrix, feature_stack
from .grid import Grid, as_crs
from .clustermaps import cluster_classes, cluster_colors, cluster_legend, cluster_tags, write_cluster_png
from .model import FitParams, WaterModel, fit_sample
from .scenes import (
    Scene,
    SceneData,
    SceneInput,
    is_dataarray,
    output_like,
    read_scene,
    rio_georef,
    scene_input,
    to_dataarray,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Features, fit, predict, label
# ---------------------------------------------------------------------------------------------
def compute_features(data: SceneData, names: Optional[Sequence[str]] = None, **kw: Any) -> Any:
    """The feature stack clustered by rs-change (or the features ``names``).

    Parameters
    ----------
    data : Scene, DataArray (band, y, x), ndarray (band, y, x) or mapping role -> (y, x) array
        Scene data (see the module documentation).
    names : sequence of str, optional
        Features: band roles and/or ``ndwi``, ``mndwi``, ``ndvi``, ``brightness``.  Default: every
        band in canonical order (blue, green, red, nir, swir1, swir2), then NDWI and MNDWI.
    **kw
        ``sensor``, ``bands``, ``nodata``, ``scale``, ``offset``, ``valid``, ``transform``, ``crs``
        for arrays (see :func:`read_scene`).

    Returns
    -------
    numpy.ndarray of float32, shape (n_features, y, x), or DataArray (feature, y, x)
        NaN where unobserved.

    Examples
    --------
    >>> import numpy as np
    >>> f = compute_features({"green": np.array([[0.3]]), "nir": np.array([[0.1]])}, ["ndwi"])
    >>> round(float(f[0, 0, 0]), 3)
    0.5
    """
    inp = scene_input(data, **kw)
    nm = list(names) if names is not None else default_features(list(inp.profile.bands))
    st = feature_stack(inp.bands, nm)
    st = np.where(inp.valid[None], st, np.float32(np.nan)).astype(np.float32)
    return output_like(st, inp, "features", nodata=np.nan, dim0=("feature", nm))


def _sample(inp: SceneInput, names: Sequence[str], n: Optional[int], seed: int) -> np.ndarray:
    """Features of up to ``n`` observed pixels, drawn as the pipeline draws them (decimation, then seed)."""
    h, w = inp.valid.shape
    total = h * w
    step = 1 if n is None else max(1, int(math.sqrt(total / (2.0 * n))))
    bands, valid = inp.bands, inp.valid
    if step > 1:
        oh, ow = math.ceil(h / step), math.ceil(w / step)
        rows = np.minimum(((np.arange(oh) + 0.5) * h / oh).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(ow) + 0.5) * w / ow).astype(np.int64), w - 1)
        ix = np.ix_(rows, cols)
        bands = {k: v[ix] for k, v in bands.items()}
        valid = valid[ix]
    X = feature_matrix(bands, valid, names)
    if n is not None and len(X) > n:
        rng = np.random.default_rng(seed)
        X = X[np.sort(rng.choice(len(X), size=n, replace=False))]
    return X


def fit_model(
    data: SceneData,
    k: Union[int, Sequence[int]] = defaults.K,
    metric: str = defaults.METRIC,
    *,
    seed: int = defaults.SEED,
    label: Optional[str] = None,
    params: Optional[FitParams] = None,
    **kw: Any,
) -> WaterModel:
    """Fit rs-change's model on one scene: robust scaler, k-means, water labeller and decisions.

    The same steps and defaults as one date of ``rs-change run`` (sample of ``sample_size``
    observed pixels drawn with ``seed``; then :func:`rs_change.model.fit_sample`, which the
    pipeline calls too: scaler; k-means with ``n_init`` restarts; silhouette; the per-pixel water
    rule and fine clusters of :func:`rs_change.labelling.fit_labeller`), so a config with the same
    ``clustering`` values gives the same model and the same water pixels.

    Parameters
    ----------
    data : Scene, DataArray (band, y, x), ndarray (band, y, x) or mapping role -> (y, x) array
    k : int or list of int, default 3
        Clusters, or candidates scored by silhouette.
    metric : {"euclidean", "manhattan", "chebyshev", "auto"}, default "euclidean"
    seed : int, default 0
    label : str, optional
        Name of the scene kept in the model (``fitted_on``); default the scene's date.
    params : FitParams, optional
        All the fit's settings as one value (:class:`rs_change.model.FitParams`); then ``k``,
        ``metric``, ``seed`` and the keywords below must not be given.
    **kw
        The fit's other settings, as in a config: ``sample_size`` (int or None, default 200000:
        pixels the model is fitted on, None = all), ``n_init``, ``max_iter``, ``tol`` (k-means
        restarts, iteration cap, convergence tolerance), ``method`` (``"auto"``, or ``"clusters"``:
        the water clusters are the ids in ``water``, after looking at a cluster map) and ``water``
        (list of int); and for arrays ``sensor``, ``bands``, ``nodata``, ``scale``, ``offset``, ``valid``.

    Returns
    -------
    WaterModel

    Examples
    --------
    >>> import numpy as np
    >>> land, lake = [90, 110, 80, 180], [30, 60, 70, 20]
    >>> rng = np.random.default_rng(0)  # 48 land pixels, then 16 lake pixels, noise +-2 DN
    >>> pixels = np.array([land] * 48 + [lake] * 16, np.float32) + rng.normal(0, 2, (64, 4))
    >>> img = pixels.T.reshape(4, 8, 8)  # (band, y, x)
    >>> m = fit_model(img, k=2, sensor="naip")
    >>> m.names, m.water_ids, [d.pixels for d in m.decisions]
    (['blue', 'green', 'red', 'nir', 'ndwi'], [0], [16, 48])
    >>> m.rule.index, round(m.rule.land_dark)  # the land's median NIR: water groups are below half of it
    ('ndwi', 180)
    """
    params, kw = _fit_params(params, kw, k=k, metric=metric, seed=seed)
    inp = scene_input(data, **kw)
    names = default_features(list(inp.profile.bands))
    if isinstance(data, Scene) and data.source is not None and kw.get("valid") is None:
        # a scene read from a file: sample the file as rs-change run does (fit.sample_pixels)
        from .fit import sample_pixels

        X = sample_pixels(data.source, data.grid, None, names, params.sample_size, params.seed, data.resampling)
    else:
        X = _sample(inp, names, params.sample_size, params.seed)
    if len(X) == 0:
        raise NoValidPixelsError(
            "every pixel of the data is unobserved (NaN, nodata or outside the valid range); check nodata="
        )
    date = label or (data.date.isoformat() if isinstance(data, Scene) and data.date else None)
    # the pipeline's own fit (rs_change.fit.fit_date calls the same function)
    wm, _ = fit_sample(X, names, inp.profile, params, fitted_on=date)
    return wm


def _fit_params(params: Optional[FitParams], kw: dict[str, Any], **given: Any) -> tuple[FitParams, dict[str, Any]]:
    """:func:`fit_model`'s settings as one :class:`FitParams` (from ``params``, or from ``given`` and
    the fit's keywords among ``kw``), and the keywords left for :func:`scene_input`.
    """
    fit_kw = {f.name: kw.pop(f.name) for f in fields(FitParams) if f.name in kw}
    if params is None:
        return FitParams(**given, **fit_kw), kw
    changed = [n for n, v in given.items() if v != getattr(FitParams(), n)] + sorted(fit_kw)
    if changed:
        raise TypeError(f"fit_model: give {', '.join(changed)} in params=FitParams(...), not beside it")
    return params, kw


def predict_clusters(model: WaterModel, data: SceneData, *, check: bool = True, **kw: Any) -> Any:
    """Cluster id of every pixel under ``model`` (``WaterModel.predict``).

    Parameters
    ----------
    model : WaterModel
    data : Scene, DataArray (band, y, x), ndarray (band, y, x) or mapping role -> (y, x) array
        Must give the model's band roles (``model.names``).
    check : bool, default True
        Warn (:class:`~rs_change.model.ModelDriftWarning`) when the scene's spectra fall far
        outside what the model was fitted on.
    **kw
        ``sensor``, ``bands``, ``nodata``, ``scale``, ``offset``, ``valid`` for arrays.

    Returns
    -------
    numpy.ndarray of uint8, shape (y, x), or DataArray
        Cluster ids ``0..k-1``; 255 where unobserved.

    Examples
    --------
    >>> import numpy as np
    >>> land, lake = [90, 110, 80, 180], [30, 60, 70, 20]
    >>> rng = np.random.default_rng(0)
    >>> img = (np.array([land] * 48 + [lake] * 16, np.float32) + rng.normal(0, 2, (64, 4))).T.reshape(4, 8, 8)
    >>> m = fit_model(img, k=2, sensor="naip")
    >>> m.predict(img, sensor="naip")[7].tolist()
    [0, 0, 0, 0, 0, 0, 0, 0]
    """
    return model.predict(data, check=check, **kw)


def label_water(data: SceneData, model: WaterModel, *, check: bool = True, **kw: Any) -> Any:
    """Water mask of a scene under ``model``, decided exactly as ``rs-change run`` decides it.

    A pixel is water when the fine cluster it falls in is water and the pixel itself is water
    enough for that cluster (unmixing between the land and water medians of the model's scene:
    ``model.rule``, :func:`rs_change.water.decide_rows`); with ``model.with_water(ids)`` (or ``method="clusters"``) the
    water is the pixels of the named clusters.  A 2-D cluster-id map is accepted only for such
    hand-named (or hand-built) models, because per-pixel water needs the pixels' spectra.

    Parameters
    ----------
    data : scene data, or a 2-D cluster-id map (uint8, 255 = unobserved) from :func:`predict_clusters`
    model : WaterModel
    check : bool, default True
        Warn (:class:`~rs_change.model.ModelDriftWarning`) when the scene's spectra fall far
        outside what the model was fitted on.
    **kw
        As for :func:`predict_clusters`.

    Returns
    -------
    numpy.ndarray of uint8, shape (y, x), or DataArray
        1 water, 0 land, 255 unobserved.

    Raises
    ------
    ClusteringError
        A cluster-id map with a model that decides water per pixel.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> land, lake = [90, 110, 80, 180], [30, 60, 70, 20]
    >>> img = (np.array([land] * 48 + [lake] * 16, np.float32) + rng.normal(0, 2, (64, 4))).T.reshape(4, 8, 8)
    >>> m = fit_model(img, k=2, sensor="naip")
    >>> label_water(img, m, sensor="naip").sum(axis=1).tolist()
    [0, 0, 0, 0, 0, 0, 8, 8]
    >>> label_water(np.array([[0, 1, 255]], np.uint8), m.with_water([0])).tolist()
    [[1, 0, 255]]
    """
    ndim = data.ndim if hasattr(data, "ndim") and not isinstance(data, Scene) else None
    if ndim == 2:
        if model.per_pixel:
            raise ClusteringError(
                "label_water: this model decides water per pixel (rule + fine clusters), which needs the pixels' "
                "bands, not cluster ids; pass the scene itself (label_water(scene, model)) or name water clusters "
                "with model.with_water(ids)"
            )
        ids = np.asarray(data.values if is_dataarray(data) else data)
        out = np.where(ids == 255, NODATA, np.isin(ids, model.water_ids)).astype(np.uint8)
        if is_dataarray(data):
            t, c = rio_georef(data)
            return to_dataarray(out, t, c, nodata=255, name="water", template=data)
        return out
    inp = scene_input(data, **kw)
    _, mask = model.classify_scene(inp, getattr(data, "path", "") or "data", check)
    return output_like(mask, inp, "water")


def water_fraction(data: SceneData, model: WaterModel, *, check: bool = True, **kw: Any) -> Any:
    """Water fraction of each pixel of a scene under ``model``: the evidence behind
    :func:`label_water`'s mask, as ``rs-change run`` writes it (``water_fraction_<date>.tif``).

    The pixel's fraction of water by unmixing between the land's and the water groups' medians
    (``model.rule``), in percent, bounded by the mask: at least 50 where :func:`label_water`
    says water, at most 49 where it says land (:meth:`rs_change.decision.Decision.percent`).  A
    model whose water is named by cluster (no unmixing) gives 100 for water and 0 for land.

    Parameters
    ----------
    data : scene data
    model : WaterModel
    check : bool, default True
        As for :func:`label_water`.
    **kw
        As for :func:`predict_clusters`.

    Returns
    -------
    numpy.ndarray of uint8, shape (y, x), or DataArray
        0-100, 255 unobserved.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> land, lake = [90, 110, 80, 180], [30, 60, 70, 20]
    >>> img = (np.array([land] * 48 + [lake] * 16, np.float32) + rng.normal(0, 2, (64, 4))).T.reshape(4, 8, 8)
    >>> m = fit_model(img, k=2, sensor="naip")
    >>> f = water_fraction(img, m, sensor="naip")
    >>> bool((f[label_water(img, m, sensor="naip") == 1] >= 50).all()), int(f[:6].max()) < 50
    (True, True)
    """
    inp = scene_input(data, **kw)
    frac = np.empty(inp.valid.shape, np.uint8)
    model.classify_scene(inp, getattr(data, "path", "") or "data", check, fraction=frac)
    return output_like(frac, inp, "water_fraction")


# ---------------------------------------------------------------------------------------------
# Area, change, polygons
# ---------------------------------------------------------------------------------------------
def _mask_geo(mask: Any, transform: Any, crs: Any) -> tuple[np.ndarray, Any, Any]:
    if is_dataarray(mask):
        t, c = rio_georef(mask)
        transform = transform if transform is not None else t
        crs = crs if crs is not None else c
        mask = mask.values
    if transform is None or crs is None:
        raise GeoreferenceError("give the mask's transform= and crs= (or a georeferenced DataArray)")
    if not hasattr(transform, "a"):
        from affine import Affine

        transform = Affine.from_gdal(*transform)
    return np.asarray(mask), transform, as_crs(crs)


def water_area(mask: Any, transform: Any = None, crs: Any = None) -> float:
    """Ground area (m2) of the water pixels (1 or True) of a mask, geodesic in any CRS.

    Parameters
    ----------
    mask : numpy.ndarray (y, x) or DataArray
        uint8 (1 water, 0 land, 255 unobserved) or bool.
    transform : affine.Affine or GDAL 6-tuple, optional
        Needed for numpy masks.
    crs : pyproj/rasterio CRS, EPSG code or WKT, optional
        Needed for numpy masks.

    Returns
    -------
    float
        Square metres.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> m = np.array([[1, 1, 0], [0, 255, 0]], np.uint8)
    >>> round(water_area(m, Affine(10, 0, 500000, 0, -10, 5200000), "EPSG:6933"))  # equal-area: 2 x 100 m2
    200
    """
    m, t, c = _mask_geo(mask, transform, crs)
    sel = m if m.dtype == bool else (m == 1)
    if not sel.any():
        return 0.0
    pa = np.broadcast_to(pixel_area(t, c, sel.shape), sel.shape)
    return float(pa[sel].sum())


def _km2(m2: float) -> float:
    return round(m2 / 1e6, 6)


@dataclass
class Comparison:
    """What :func:`compare` returns.

    Attributes
    ----------
    change : numpy.ndarray of uint8 (y, x) or DataArray
        First -> last mask: 0 land persistent, 1 water persistent, 2 gained, 3 lost, 255 unobserved.
    stats : dict
        ``gained_km2``, ``lost_km2``, ``persistent_water_km2``, ``persistent_land_km2``,
        ``net_km2``, ``net_percent``, ``gained_pixels``, ``lost_pixels``, ``unobserved_km2``,
        ``unobserved_pixels`` (as in summary.json's ``change``).
    masks : list of dict
        Per mask: ``label``, ``water_km2``, ``water_pixels``, ``observed_km2``, ``observed_pixels``,
        ``unobserved_km2``, ``unobserved_pixels``.
    steps : list of dict
        With three or more masks, the ``stats`` of each consecutive pair (with ``from``/``to``).

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> masks = [np.array([[1, 0]], np.uint8), np.array([[1, 1]], np.uint8), np.array([[0, 1]], np.uint8)]
    >>> c = compare(masks, Affine(100, 0, 0, 0, -100, 0), "EPSG:6933", labels=["a", "b", "c"])
    >>> c.change.tolist(), [s["gained_pixels"] for s in c.steps]
    ([[3, 2]], [1, 0])
    """

    change: Any
    stats: dict[str, Any]
    masks: list[dict[str, Any]]
    steps: list[dict[str, Any]] = field(default_factory=list)


def _change_stats(before: np.ndarray, after: np.ndarray, pa: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    ch = change_map(before, after)
    return ch, change_stats(class_areas(ch, pa, CHANGE_CLASSES))


def compare(
    masks: Sequence[Any], transform: Any = None, crs: Any = None, labels: Optional[Sequence[str]] = None
) -> Comparison:
    """Compare two or more water masks on one grid: change map first -> last, and areas.

    Parameters
    ----------
    masks : sequence of numpy.ndarray (y, x) or DataArray
        uint8 masks (1 water, 0 land, 255 unobserved) in time order, on the same grid.
    transform, crs : optional
        Georeferencing of numpy masks (DataArrays carry theirs).
    labels : sequence of str, optional
        Names of the masks (dates); default ``"0"``, ``"1"``...

    Returns
    -------
    Comparison
        ``change`` of the same kind as the masks, ``stats``, per-mask areas, consecutive ``steps``.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> a = np.array([[1, 1, 0, 255]], np.uint8); b = np.array([[1, 0, 1, 1]], np.uint8)
    >>> c = compare([a, b], Affine(100, 0, 0, 0, -100, 0), "EPSG:6933")
    >>> c.change.tolist(), c.stats["gained_km2"], c.stats["lost_km2"], c.masks[1]["water_pixels"]
    ([[1, 3, 2, 255]], 0.01, 0.01, 3)
    """
    if len(masks) < 2:
        raise ValueError("compare needs two or more masks; give them in time order")
    arrs = []
    for m in masks:
        a, t, c = _mask_geo(m, transform, crs)
        transform, crs = t, c
        arrs.append(a.astype(np.uint8) if a.dtype == bool else a)
    shape = arrs[0].shape
    if any(a.shape != shape for a in arrs):
        raise GeoreferenceError(
            f"masks differ in shape ({', '.join(str(a.shape) for a in arrs)}); put them on one grid first"
        )
    labels = [str(x) for x in (labels or range(len(arrs)))]
    pa = np.broadcast_to(pixel_area(transform, crs, shape), shape)
    per = []
    for lab, a in zip(labels, arrs):
        rows = {}
        for key, sel in (("water", a == 1), ("observed", a != NODATA), ("unobserved", a == NODATA)):
            rows[f"{key}_km2"] = _km2(float(pa[sel].sum()) if sel.any() else 0.0)
            rows[f"{key}_pixels"] = int(sel.sum())
        per.append({"label": lab, **rows})
    ch, stats = _change_stats(arrs[0], arrs[-1], pa)
    stats = {"from": labels[0], "to": labels[-1], **stats}
    steps = []
    if len(arrs) > 2:
        for i in range(len(arrs) - 1):
            steps.append({"from": labels[i], "to": labels[i + 1], **_change_stats(arrs[i], arrs[i + 1], pa)[1]})
    tmpl = next((m for m in masks if is_dataarray(m)), None)
    change = ch if tmpl is None else to_dataarray(ch, transform, crs, nodata=255, name="change", template=tmpl)
    return Comparison(change, stats, per, steps)


def polygonize(mask: Any, transform: Any = None, crs: Any = None, value: int = 1) -> Any:
    """Polygons of the 4-connected regions where ``mask == value``, with ground areas.

    Parameters
    ----------
    mask : numpy.ndarray (y, x) or DataArray
        uint8 water mask (or bool).
    transform, crs : optional
        Georeferencing of a numpy mask.
    value : int, default 1
        The value to polygonise (1 = water).

    Returns
    -------
    geopandas.GeoDataFrame
        ``area_m2`` (sum of the polygon's pixels' ground areas), ``pixels``, ``geometry``; CRS of the mask.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> m = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]], np.uint8)
    >>> g = polygonize(m, Affine(10, 0, 0, 0, -10, 0), "EPSG:6933")
    >>> sorted(g["pixels"].tolist()), round(float(g["area_m2"].sum()))
    ([1, 2], 300)
    """
    from .export import polygonize as _poly

    m, t, c = _mask_geo(mask, transform, crs)
    m = m.astype(np.uint8) if m.dtype == bool else m
    g = Grid(m.shape, t, c)
    return _poly(m, g, pixel_area(t, c, m.shape), value=value)


def waterbodies(masks: Sequence[Any], transform: Any = None, crs: Any = None, dates: Optional[Sequence[str]] = None,
                **settings: Any) -> tuple[Any, Any]:
    """Waterbodies of two or more water masks: polygons with a stable id and their wet area per date.

    The same definition and numbers as a run's ``waterbodies`` layer and waterbodies.csv
    (:mod:`rs_change.waterbody`): a pixel is in the extent when water on at least
    ``extent_share`` of the dates it was observed on; a waterbody is a 4-connected region of the
    extent with a core pixel (water on at least ``core_share`` of at least ``min_observations``
    observed dates) and at least ``min_area_m2`` of ground.  Outlines are exact pixel edges.

    Parameters
    ----------
    masks : sequence of numpy.ndarray (y, x) or DataArray
        uint8 masks (1 water, 0 land, 255 unobserved) in time order, on one grid.
    transform, crs : optional
        Georeferencing of numpy masks (DataArrays carry theirs).
    dates : sequence of str, optional
        ISO dates of the masks (default ``"0"``, ``"1"`` ...; the layer's ``date`` / ``from_date``
        are Date fields only when written by a run).
    **settings
        The ``waterbodies:`` config keys ``core_share``, ``extent_share``, ``min_observations``,
        ``min_area_m2`` and ``max_invalid_pct``, with a config's defaults (``min_area_m2=None``:
        10 pixels' mean area).

    Returns
    -------
    polygons : geopandas.GeoDataFrame
        One row per waterbody in ``wb_id`` order (1 = largest): ``uid`` (geohash of a point inside
        it), ``wb_id``, ``date``, ``from_date``, ``class``, ``area_m2``, ``perim_m``, ``pixels``,
        ``wet_first_m2``, ``wet_last_m2``, ``change_m2``, ``change_pct``; CRS of the masks.
    series : pandas.DataFrame
        One row per waterbody and date: ``uid``, ``date``, ``wet_m2``, ``wet_pct`` (NaN where more
        than ``max_invalid_pct`` % was unobserved), ``dry_m2``, ``invalid_m2``, ``invalid_pct``.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> a = np.zeros((4, 6), np.uint8); a[1:3, 1:3] = 1
    >>> b = a.copy(); b[1:3, 3:5] = 1
    >>> polys, series = waterbodies([a, b], Affine(10, 0, 0, 0, -10, 0), "EPSG:6933", ["2000-01-01", "2001-01-01"],
    ...                             min_area_m2=0)
    >>> polys["pixels"].tolist(), series["wet_m2"].round().tolist()
    ([8], [400.0, 800.0])
    """
    import pandas as pd

    from .waterbody import TABLE_COLUMNS, from_arrays

    if len(masks) < 2:
        raise ValueError("waterbodies needs two or more masks; give them in time order")
    params = _waterbody_params(settings)
    arrs = []
    for m in masks:
        a, t, c = _mask_geo(m, transform, crs)
        transform, crs = t, c
        arrs.append(a.astype(np.uint8) if a.dtype == bool else a)
    if any(a.shape != arrs[0].shape for a in arrs):
        raise GeoreferenceError(
            f"masks differ in shape ({', '.join(str(a.shape) for a in arrs)}); put them on one grid first"
        )
    labels = [str(x) for x in (dates if dates is not None else range(len(arrs)))]
    if len(labels) != len(arrs):
        raise ValueError(f"{len(arrs)} masks but {len(labels)} dates; give one date per mask")
    layer, table, _ = from_arrays(arrs, Grid(arrs[0].shape, transform, crs), labels, params)
    return layer, pd.DataFrame(table, columns=TABLE_COLUMNS).astype({"wet_pct": float})


def _waterbody_params(settings: Mapping[str, Any]) -> Any:
    """:func:`waterbodies`' settings as one :class:`rs_change.waterbody.Params` (the config's
    defaults for the keys not given); an unknown key or shares out of order are refused.
    """
    from types import SimpleNamespace

    from .waterbody import Params

    known = {f.name: getattr(Params(), f.name) for f in fields(Params)}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise TypeError(f"waterbodies: unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(known)}")
    params = Params.of(SimpleNamespace(**{**known, **settings}))
    if not 0 < params.extent_share <= params.core_share <= 1:
        raise ValueError(f"give 0 < extent_share <= core_share <= 1 "
                         f"(got extent_share={params.extent_share}, core_share={params.core_share})")
    return params


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
def write_cluster_map(path: Union[str, Path], clusters: Any, model: WaterModel, transform: Any = None, crs: Any = None,
                      label: str = "", png: bool = True) -> Path:
    """Write ``clusters_<date>.tif`` (COG, colour table of each cluster's centre colour, ids and
    water decisions in its metadata) and, with ``png``, the centre-coloured image next to it.

    Parameters
    ----------
    path : str or Path
        The GeoTIFF to write (the PNG gets the same name with ``.png``).
    clusters : numpy.ndarray (y, x) uint8 or DataArray
        From :func:`predict_clusters` (255 = unobserved).
    model : WaterModel
        Gives the colours (from its decisions' centroids) and the water decisions.
    transform, crs : optional
        For numpy arrays.
    label : str, default ""
        Date written into the metadata.
    png : bool, default True

    Returns
    -------
    Path

    Examples
    --------
    >>> write_cluster_map("clusters_2009-08-18.tif", ids, model, transform, crs)  # doctest: +SKIP
    """
    from .export import write_cog

    arr, t, c = _mask_geo(clusters, transform, crs)
    p = Path(path)
    colors = cluster_colors(model.decisions)
    write_cog(
        p,
        arr.astype(np.uint8),
        Grid(arr.shape, t, c),
        nodata=255,
        colormap=colors,
        classes=cluster_classes(model.decisions),
        tags=cluster_tags(model.decisions, model.water_ids, label, model=model),
        description="cluster id (k-means), 255 = unobserved",
    )
    if png:
        write_cluster_png(p, p.with_suffix(".png"), cluster_legend(model.decisions))
    return p


def write_outputs(
    folder: Union[str, Path],
    masks: Mapping[str, Any],
    transform: Any = None,
    crs: Any = None,
    *,
    clusters: Optional[Mapping[str, Any]] = None,
    models: Optional[Mapping[str, WaterModel]] = None,
    polygons: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Write the files ``rs-change run`` writes, from arrays: ``water_<date>.tif`` (COG),
    ``change.tif`` (first -> last, with two or more masks), ``clusters_<date>.tif`` and
    ``clusters_<date>.png`` (with ``clusters`` and ``models``), ``model_<date>.json`` (with
    ``models``) and ``water.gpkg`` (with ``polygons``).

    Parameters
    ----------
    folder : str or Path
        Output folder (created).  The files are staged in it and swapped in as one set under
        the folder's lock, as a run's outputs are (:mod:`rs_change.outputs`): an error or an
        interruption leaves none of them.
    masks : mapping of str to mask
        Date (or label) -> uint8 water mask, in time order, on one grid.
    transform, crs : optional
        Georeferencing of numpy masks.
    clusters : mapping of str to cluster-id map, optional
    models : mapping of str to WaterModel, optional
    polygons : bool, default True
    overwrite : bool, default False
        Without it, existing files are not replaced (:class:`~rs_change.errors.OutputError`).

    Returns
    -------
    list of Path

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from affine import Affine
    >>> m = {"2009-08-18": np.array([[1, 0]], np.uint8), "2020-08-31": np.array([[1, 1]], np.uint8)}
    >>> files = write_outputs(tempfile.mkdtemp(), m, Affine(10, 0, 0, 0, -10, 0), "EPSG:32614")
    >>> [f.name for f in files if not f.name.endswith((".qml", ".aux.xml"))]  # each .tif has its .qml and .tif.aux.xml
    ['water_2009-08-18.tif', 'water_2020-08-31.tif', 'change.tif', 'water.gpkg']
    >>> len(files)
    10
    """
    from .names import CHANGE_TIF, VECTOR_NAMES, clusters_png, clusters_tif, model_json, style_names, water_tif
    from .outputs import check_output_dir, commit, discard, output_lock, staging_dir

    out = Path(folder)
    labels = list(masks)
    names = [water_tif(d) for d in labels] + ([CHANGE_TIF] if len(labels) >= 2 else [])
    if clusters and models:
        names += [n for d in clusters for n in (clusters_tif(d), clusters_png(d))]
    names += [n for tif in names if tif.endswith(".tif") for n in style_names(tif)]  # .qml, .aux.xml
    if models:
        names += [model_json(d) for d in models]
    if polygons:
        names.append(VECTOR_NAMES["gpkg"])
    with output_lock(out):  # staged in the folder, swapped in as one set under its lock, as a run's outputs
        check_output_dir(out, names, overwrite)  # refuses existing outputs without overwrite; recovers killed runs'
        tmp = staging_dir(out)
        try:
            staged = _stage_outputs(tmp, masks, transform, crs, clusters, models, polygons)
            return commit(out, tmp, [p.relative_to(tmp).as_posix() for p in staged])
        finally:
            discard(tmp)


def _stage_outputs(tmp: Path, masks: Mapping[str, Any], transform: Any, crs: Any, clusters: Optional[Mapping[str, Any]],
                   models: Optional[Mapping[str, WaterModel]], polygons: bool) -> list[Path]:
    """Write :func:`write_outputs`' files into the staging folder ``tmp``; returns them in order."""
    from .export import WATER_CLASSES, WATER_COLORS, write_cog, write_vectors
    from .names import (
        CHANGE_TIF,
        VECTOR_NAMES,
        clusters_png,
        clusters_tif,
        model_json,
        style_names,
        water_layer,
        water_tif,
    )

    labels = list(masks)
    files: list[Path] = []
    arrs = {}
    for d, m in masks.items():
        a, transform, crs = _mask_geo(m, transform, crs)
        arrs[d] = a.astype(np.uint8)
        files.append(write_cog(tmp / water_tif(d), arrs[d], Grid(a.shape, transform, crs), nodata=255,
                               colormap=WATER_COLORS, classes=WATER_CLASSES, tags={"DATE": d},
                               description=f"water {d}: 1 water, 0 land, 255 unobserved"))
        files += [tmp / n for n in style_names(water_tif(d))]
    if len(labels) >= 2:
        ch = change_map(arrs[labels[0]], arrs[labels[-1]])
        files.append(write_cog(tmp / CHANGE_TIF, ch, Grid(ch.shape, transform, crs), nodata=255, colormap=CHANGE_COLORS,
                               classes=CHANGE_CLASSES, tags={"FROM": labels[0], "TO": labels[-1]},
                               description=f"change class {labels[0]} -> {labels[-1]}, 255 = unobserved"))
        files += [tmp / n for n in style_names(CHANGE_TIF)]
    if clusters and models:
        for d, cl in clusters.items():
            p = write_cluster_map(tmp / clusters_tif(d), cl, models[d], transform, crs, label=d)
            files += [p, *(tmp / n for n in style_names(clusters_tif(d))), tmp / clusters_png(d)]
    if models:
        for d, mdl in models.items():
            files.append(mdl.save(tmp / model_json(d)))
    if polygons:
        layers = {}
        for d, a in arrs.items():
            gdf = polygonize(a, transform, crs)
            gdf.insert(0, "date", d)  # a Date field, as in rs-change run's layers
            gdf.insert(1, "class", "water")
            layers[water_layer(d)] = gdf
        files.append(write_vectors(tmp, layers, ["gpkg"])[VECTOR_NAMES["gpkg"]])  # with its layer_styles
    return files


__all__ = [
    "Scene",
    "Comparison",
    "read_scene",
    "compute_features",
    "fit_model",
    "predict_clusters",
    "label_water",
    "water_area",
    "compare",
    "polygonize",
    "write_cluster_map",
    "write_outputs",
]
