"""A fitted water model: scaler + k-means centres + water decisions, saved and loaded as JSON.

One model fitted on one scene can be applied to other tiles and dates, so that cluster 2 means
the same spectra everywhere.  The JSON holds everything needed to apply it again without the
scene it was fitted on: the feature names (band roles in canonical order, then indices), the
robust scaler (offset, scale), the centres (in scaled units) and metric, the band profile
(roles, scale/offset: what "physical units" meant when fitting), the water decisions, the
convergence trace of the fit and the versions that wrote it.

Applying a model to spectra it has never seen gives labels anyway; :meth:`WaterModel.check_spectra`
measures how far a scene's pixels fall from the centres, compared with the fitted sample, and
warns (:class:`ModelDriftWarning`) when many of them are far away.

This module also makes the *cluster map*: a colour per cluster from its centre's red/green/blue
(or false-colour) medians, so that clusters can be inspected in QGIS.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .clustering import KMeans
from .errors import ClusteringError, InputError, RsChangeWarning
from .labelling import ClusterDecision, describe_clusters

log = logging.getLogger(__name__)

#: Format version of the model JSON; loading refuses other major versions.
MODEL_FORMAT = 1
#: Fraction of a scene's pixels farther from every centre than the fitted sample's 99th
#: percentile distance above which :class:`ModelDriftWarning` is raised (1 % is expected).
DRIFT_THRESHOLD = 0.10


class ModelDriftWarning(RsChangeWarning):
    """A scene's spectra fall far outside what a reused model was fitted on.

    Raised by :meth:`WaterModel.check_spectra` (hence by ``predict``/``label_water`` and by runs
    with ``clustering.fit_on``/``model``) when more than :data:`DRIFT_THRESHOLD` of the pixels
    lie farther from every centre than 99 % of the fitted sample did.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("41% of pixels ...", ModelDriftWarning)
    >>> issubclass(w[0].category, RsChangeWarning)
    True
    """


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


def _versions() -> dict[str, str]:
    from . import __version__

    out = {"rs_change": __version__, "numpy": np.__version__}
    try:
        import sklearn

        out["scikit-learn"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


@dataclass
class WaterModel:
    """A fitted model: robust scaler, k-means centres, water decisions and provenance.

    Fit one with :func:`rs_change.fit_model`; apply it with :meth:`predict` (cluster ids) or
    :func:`rs_change.label_water` (water mask); keep it with :meth:`save` / :meth:`load`.

    Attributes
    ----------
    names : list of str
        Feature names, e.g. ``["blue", "green", "red", "nir", "ndwi"]`` for NAIP.
    offset, scale : numpy.ndarray of shape (n_features,)
        The scaler: ``scaled = (features - offset) / scale``.
    kmeans : KMeans
        Fitted centres (``cluster_centers_``, scaled units) and metric.
    decisions : list of ClusterDecision
        One per cluster, in id order: which are water and why.
    profile : dict
        Band roles and radiometry the features were computed with:
        ``{"name", "bands", "scale", "offset", "calibrated"}``.
    fitted_on : str or None
        Date (or label) of the scene the model was fitted on.
    distance_p99 : float
        99th percentile of the fitted sample's distances to their nearest centre (scaled units).
    sample_pixels : int
        Pixels the model was fitted on.
    silhouette : float or None
    seed : int
    shift_trace : list of float
        Largest centre shift at each k-means iteration (the convergence trace).

    Examples
    --------
    >>> import numpy as np
    >>> from rs_change import fit_model
    >>> land, lake = [90, 110, 80, 180], [30, 60, 70, 20]
    >>> img = np.array([land] * 12 + [lake] * 4, np.float32).T.reshape(4, 4, 4)
    >>> m = fit_model(img, k=2, bands={"red": 1, "green": 2, "blue": 3, "nir": 4})
    >>> m.water_ids
    [0]
    """

    names: list[str]
    offset: np.ndarray
    scale: np.ndarray
    kmeans: KMeans
    decisions: list[ClusterDecision]
    profile: dict[str, Any] = field(default_factory=dict)
    fitted_on: Optional[str] = None
    distance_p99: float = float("nan")
    sample_pixels: int = 0
    silhouette: Optional[float] = None
    seed: int = 0
    shift_trace: list[float] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=_versions)

    # -- properties ---------------------------------------------------------------------------
    @property
    def k(self) -> int:
        """Number of clusters."""
        return int(len(self.kmeans.cluster_centers_))

    @property
    def metric(self) -> str:
        """The k-means metric."""
        return str(self.kmeans.metric_)

    @property
    def centers(self) -> np.ndarray:
        """Centres in scaled units, shape (k, n_features)."""
        return np.asarray(self.kmeans.cluster_centers_)

    @property
    def water_ids(self) -> list[int]:
        """Ids of the clusters decided to be water."""
        return [int(d.id) for d in self.decisions if d.is_water]

    @property
    def calibrated(self) -> bool:
        """True when the features were reflectance (the profile had a scale)."""
        return bool(self.profile.get("calibrated", self.profile.get("scale") is not None))

    def centers_physical(self) -> np.ndarray:
        """Centres in the features' physical units (DN or reflectance), shape (k, n_features)."""
        return self.centers * self.scale + self.offset

    # -- applying -----------------------------------------------------------------------------
    def scale_features(self, X: np.ndarray) -> np.ndarray:
        """``(X - offset) / scale`` as float32, X of shape (n, n_features) in physical units."""
        from .clustering import apply_scaler

        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.names):
            raise ClusteringError(
                f"features have shape {X.shape} but the model needs {len(self.names)} columns ({', '.join(self.names)}); "
                "give the same bands the model was fitted on"
            )
        return apply_scaler(X, self.offset, self.scale)

    def predict_features(self, X: np.ndarray) -> np.ndarray:
        """Cluster id (int32) of every row of a physical-unit feature matrix (n, n_features)."""
        return self.kmeans.predict(self.scale_features(X))

    def predict(self, data: Any, **kw: Any) -> Any:
        """Cluster ids of every pixel of a scene; see :func:`rs_change.api.predict_clusters`.

        Returns the same kind as ``data``: uint8 ``(h, w)`` array (255 = unobserved) or a
        DataArray.
        """
        from .api import predict_clusters

        return predict_clusters(self, data, **kw)

    def check_spectra(self, X: np.ndarray, label: str = "scene", threshold: float = DRIFT_THRESHOLD,
                      warn: bool = True) -> float:
        """Fraction of rows of ``X`` (physical units) farther from every centre than ``distance_p99``.

        About 0.01 for spectra like the fitted sample.  Above ``threshold`` a
        :class:`ModelDriftWarning` names the fraction, so a user knows the model may not transfer.

        Returns
        -------
        float
            The fraction (0..1); NaN when the model has no ``distance_p99``.
        """
        if len(X) == 0 or not np.isfinite(self.distance_p99):
            return float("nan")
        d = centre_distances(self.scale_features(X), self.centers, self.metric)
        frac = float(np.mean(d > self.distance_p99))
        if warn and frac > threshold:
            warnings.warn(
                f"{label}: {100 * frac:.1f}% of pixels are farther from every cluster centre than 99% of the pixels the "
                f"model was fitted on ({self.fitted_on or 'its scene'}; expected about 1%, warning above "
                f"{100 * threshold:.0f}%); its spectra differ, check the cluster map or fit a model on this scene",
                ModelDriftWarning,
                stacklevel=2,
            )
        return frac

    def decisions_for(self, X: np.ndarray, labels: np.ndarray, source: str = "") -> list[ClusterDecision]:
        """This model's water decisions, with pixel counts and centroids measured on another scene."""
        cents = describe_clusters(np.asarray(X), self.names, np.asarray(labels), self.k)
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=self.k)
        fitted = self.fitted_on or "the model's scene"
        out = []
        for d in self.decisions:
            why = d.why if not source or source == self.fitted_on else f"from the model fitted on {fitted}: {d.why}"
            out.append(ClusterDecision(d.id, int(counts[d.id]), cents[d.id], d.is_water, why, dict(d.stats)))
        return out

    def with_water(self, ids: Sequence[int]) -> "WaterModel":
        """A copy whose water clusters are ``ids``, named by hand (after looking at the cluster map).

        Examples
        --------
        >>> import numpy as np
        >>> from rs_change.model import kmeans_from_centers
        >>> m = WaterModel(["ndwi"], np.zeros(1), np.ones(1), kmeans_from_centers(np.array([[-1.0], [1.0]]), "euclidean"),
        ...                [ClusterDecision(0, 1, {}, False, ""), ClusterDecision(1, 1, {}, True, "")])
        >>> m.with_water([0]).water_ids
        [0]
        """
        ids = {int(i) for i in ids}
        bad = sorted(i for i in ids if not 0 <= i < self.k)
        if bad:
            raise ClusteringError(f"water cluster id(s) {bad} do not exist with k={self.k}; use ids 0..{self.k - 1}")
        dec = [replace(d, is_water=d.id in ids, why="named by hand" if d.id in ids else "not named by hand") for d in self.decisions]
        return replace(self, decisions=dec)

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-able data (see the module documentation)."""
        km = self.kmeans
        params = {k: v for k, v in km.get_params().items() if k in ("n_init", "max_iter", "tol", "sample_size", "chebyshev_trim")}
        return {
            "format": "rs-change water model",
            "format_version": MODEL_FORMAT,
            "versions": dict(self.versions),
            "fitted_on": self.fitted_on,
            "features": list(self.names),
            "profile": _jsonable(self.profile),
            "scaler": {"offset": [float(v) for v in self.offset], "scale": [float(v) for v in self.scale]},
            "kmeans": {
                "k": self.k,
                "metric": self.metric,
                "seed": self.seed,
                "params": params,
                "centers": [[float(v) for v in row] for row in self.centers],
                "centers_physical": [[round(float(v), 6) for v in row] for row in self.centers_physical()],
                "inertia": _num(getattr(km, "inertia_", None)),
                "n_iter": int(getattr(km, "n_iter_", 0)),
                "shift_trace": [float(v) for v in self.shift_trace],
            },
            "sample_pixels": int(self.sample_pixels),
            "silhouette": _num(self.silhouette),
            "distance_p99": _num(self.distance_p99),
            "water_clusters": self.water_ids,
            "clusters": [d.to_dict() for d in self.decisions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<model>") -> "WaterModel":
        """Rebuild a model from :meth:`to_dict` output; checks the format version and the features."""
        if not isinstance(data, Mapping) or data.get("format") != "rs-change water model":
            raise InputError(f"{source}: not an rs-change model file; give a model_<date>.json written by rs-change")
        ver = data.get("format_version")
        if ver != MODEL_FORMAT:
            raise InputError(
                f"{source}: model format version {ver} is not supported by this rs-change (reads {MODEL_FORMAT}); "
                "refit the model with this version"
            )
        try:
            names = [str(n) for n in data["features"]]
            offset = np.asarray(data["scaler"]["offset"], dtype=np.float64)
            scale = np.asarray(data["scaler"]["scale"], dtype=np.float64)
            kmd = data["kmeans"]
            centers = np.asarray(kmd["centers"], dtype=np.float64)
            km = kmeans_from_centers(centers, str(kmd["metric"]), random_state=kmd.get("seed", 0), **dict(kmd.get("params", {})))
            km.n_iter_ = int(kmd.get("n_iter", 0))
            km.shift_trace_ = [float(v) for v in kmd.get("shift_trace", [])]
            km.inertia_ = float("nan") if kmd.get("inertia") is None else float(kmd["inertia"])
            decisions = [
                ClusterDecision(int(c["id"]), int(c["pixels"]), {k: float(v) for k, v in c["centroid"].items()},
                                bool(c["is_water"]), str(c["why"]), {k: float(v) for k, v in c.get("stats", {}).items()})
                for c in data["clusters"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: model file is incomplete or damaged ({exc.__class__.__name__}: {exc}); write it again") from None
        n = len(names)
        if offset.shape != (n,) or scale.shape != (n,) or centers.ndim != 2 or centers.shape[1] != n:
            raise InputError(
                f"{source}: the model's scaler/centres do not match its {n} features ({', '.join(names)}); write it again"
            )
        if sorted(d.id for d in decisions) != list(range(len(centers))):
            raise InputError(f"{source}: the model's clusters do not match its {len(centers)} centres; write it again")
        if not np.all(scale > 0):
            raise InputError(f"{source}: the model's scaler has non-positive scales; write it again")
        return cls(
            names, offset, scale, km, sorted(decisions, key=lambda d: d.id), dict(data.get("profile") or {}),
            data.get("fitted_on"), float("nan") if data.get("distance_p99") is None else float(data["distance_p99"]),
            int(data.get("sample_pixels", 0)), None if data.get("silhouette") is None else float(data["silhouette"]),
            int(kmd.get("seed", 0)), list(km.shift_trace_), dict(data.get("versions") or {}),
        )

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (see :meth:`to_dict`) and return the path.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> m = WaterModel(["ndwi"], np.zeros(1), np.ones(1), kmeans_from_centers(np.array([[-1.0], [1.0]]), "euclidean"),
        ...                [ClusterDecision(0, 5, {"ndwi": -0.5}, False, "dry"), ClusterDecision(1, 3, {"ndwi": 0.4}, True, "wet")])
        >>> p = m.save(os.path.join(tempfile.mkdtemp(), "model.json"))
        >>> WaterModel.load(p).water_ids
        [1]
        """
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> "WaterModel":
        """Read a model written by :meth:`save` (or a run's ``model_<date>.json``)."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{p}: model file not found; check `clustering.model` or the path") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{p}: cannot read the model ({exc.__class__.__name__}); give a model_<date>.json written by rs-change") from None
        return cls.from_dict(data, source=str(p))

    def check_features(self, names: Sequence[str], source: str = "scene") -> None:
        """Raise :class:`~rs_change.errors.BandProfileError` unless ``names`` are the model's features."""
        from .errors import BandProfileError

        if list(names) != list(self.names):
            raise BandProfileError(
                f"{source}: its features ({', '.join(names)}) differ from the model's ({', '.join(self.names)}); "
                "give the scene the same band roles the model was fitted on"
            )


def _num(v: Any) -> Optional[float]:
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def profile_dict(profile: Any) -> dict[str, Any]:
    """The JSON form of a :class:`~rs_change.sensors.BandProfile` (roles and radiometry)."""
    return {
        "name": profile.name,
        "bands": {str(k): int(v) for k, v in profile.bands.items()},
        "scale": profile.scale,
        "offset": float(profile.offset),
        "calibrated": bool(profile.calibrated),
    }


def from_fit(
    names: Sequence[str], offset: np.ndarray, scale: np.ndarray, km: KMeans, decisions: Sequence[ClusterDecision],
    Xs: np.ndarray, *, profile: Mapping[str, Any], fitted_on: Optional[str] = None, silhouette: Optional[float] = None,
    seed: int = 0,
) -> WaterModel:
    """A :class:`WaterModel` from the parts of a fit (``Xs`` = the scaled fitted sample)."""
    d = centre_distances(Xs, km.cluster_centers_, km.metric_) if len(Xs) else np.zeros(0)
    p99 = float(np.percentile(d, 99)) if len(d) else float("nan")
    return WaterModel(
        list(names), np.asarray(offset, np.float64), np.asarray(scale, np.float64), km, list(decisions), dict(profile),
        fitted_on, p99, int(len(Xs)), silhouette, int(seed), [float(v) for v in getattr(km, "shift_trace_", [])],
    )


# ---------------------------------------------------------------------------------------------
# Cluster maps: colours, tags, PNG
# ---------------------------------------------------------------------------------------------
_RGB_CHOICES = (("red", "green", "blue"), ("nir", "green", "blue"), ("swir1", "nir", "red"), ("nir", "red", "green"))


def cluster_colors(decisions: Sequence[ClusterDecision], calibrated: bool) -> dict[int, tuple[int, int, int, int]]:
    """Each cluster's centre colour (RGBA 0..255) for a colour table; 255 (unobserved) transparent.

    The colour comes from the cluster's median red/green/blue (true colour), or else
    nir/green/blue, swir1/nir/red or nir/red/green (false colour).  Uncalibrated digital numbers
    in 0..255 are used as they are (as an 8-bit image shows them); anything else (reflectance,
    16-bit DNs) is stretched linearly between the smallest and largest of the chosen medians over
    all clusters, which keeps the clusters' hues.

    Examples
    --------
    >>> d = [ClusterDecision(0, 1, {"red": 30.0, "green": 60.0, "blue": 70.0}, True, ""),
    ...      ClusterDecision(1, 1, {"red": 90.0, "green": 110.0, "blue": 80.0}, False, "")]
    >>> cluster_colors(d, calibrated=False)[0]
    (30, 60, 70, 255)
    """
    roles = set(decisions[0].centroid) if decisions else set()
    trio = next((t for t in _RGB_CHOICES if set(t) <= roles), None)
    if trio is None:
        first = sorted(roles)[:1] * 3
        trio = tuple(first) if first else None  # type: ignore[assignment]
    out: dict[int, tuple[int, int, int, int]] = {}
    if trio is None:
        for d in decisions:
            out[d.id] = (128, 128, 128, 255)
    else:
        vals = np.array([[d.centroid.get(r, np.nan) for r in trio] for d in decisions], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        if not calibrated and finite.size and finite.min() >= 0 and finite.max() <= 255:
            rgb = vals
        else:
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            rgb = (vals - lo) / ((hi - lo) or 1.0) * 255.0
        rgb = np.nan_to_num(rgb, nan=128.0)
        for d, row in zip(decisions, rgb):
            r, g, b = (int(round(float(np.clip(v, 0, 255)))) for v in row)
            out[d.id] = (r, g, b, 255)
    out[255] = (0, 0, 0, 0)
    return out


def cluster_classes(decisions: Sequence[ClusterDecision]) -> dict[int, str]:
    """Class names for the cluster map: ``cluster 0 (water)``, ``cluster 1``, ... and unobserved."""
    out = {d.id: f"cluster {d.id}" + (" (water)" if d.is_water else "") for d in decisions}
    out[255] = "unobserved"
    return out


def cluster_tags(decisions: Sequence[ClusterDecision], water: Sequence[int], date: str = "",
                 model_file: str = "") -> dict[str, Any]:
    """Dataset metadata of ``clusters_<date>.tif``: ids, water decisions and why."""
    tags: dict[str, Any] = {
        "CLUSTER_IDS": [int(d.id) for d in decisions],
        "WATER_CLUSTERS": [int(i) for i in water],
        "CLUSTERS": [{"id": int(d.id), "is_water": bool(d.is_water), "why": d.why,
                      "centroid": {k: round(float(v), 4) for k, v in d.centroid.items()}} for d in decisions],
    }
    if date:
        tags["DATE"] = date
    if model_file:
        tags["MODEL"] = model_file
    return tags


def write_cluster_png(tif: str | Path, png: str | Path, max_size: int = 8192) -> Path:
    """The centre-coloured image: ``clusters_<date>.tif`` as a palette PNG (decimated to ``max_size``).

    Unobserved pixels are transparent.  The PNG is a picture (as in the article's figures); the
    georeferenced map is the ``.tif``.
    """
    import rasterio
    import rasterio.shutil
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.io import MemoryFile

    with rasterio.open(tif) as src:
        f = max(1.0, max(src.height, src.width) / max_size)
        oh, ow = max(1, int(round(src.height / f))), max(1, int(round(src.width / f)))
        arr = src.read(1, out_shape=(oh, ow), resampling=Resampling.nearest)
        cmap = src.colormap(1)
        transform = src.transform * Affine.scale(src.width / ow, src.height / oh)
        crs = src.crs
    with MemoryFile() as mf:
        with mf.open(driver="GTiff", width=ow, height=oh, count=1, dtype="uint8", crs=crs, transform=transform, nodata=255) as ds:
            ds.write(arr, 1)
            ds.write_colormap(1, cmap)
            with rasterio.Env(GDAL_PAM_ENABLED="NO"):  # no .aux.xml next to the PNG: the .tif is the georeferenced map
                rasterio.shutil.copy(ds, str(png), driver="PNG")
    return Path(png)


# ---------------------------------------------------------------------------------------------
# Pipeline glue (called from rs_change.pipeline; kept here so the pipeline stays a chain of calls)
# ---------------------------------------------------------------------------------------------
def apply_to_sample(
    wm: WaterModel, X: np.ndarray, names: Sequence[str], label: str, date: str, seed: int = 0, calibrated: Optional[bool] = None,
) -> tuple[np.ndarray, list[ClusterDecision], Optional[float]]:
    """Apply a shared model to one date's sample (physical units): labels, decisions, silhouette.

    Checks that the date has the model's features (and calibration), and warns
    (:class:`ModelDriftWarning`) when the date's spectra fall far outside the fitted sample.
    """
    from .clustering import silhouette
    from .errors import BandProfileError

    wm.check_features(names, f"{label} ({date})")
    if calibrated is not None and wm.profile.get("calibrated") is not None and bool(wm.profile["calibrated"]) != bool(calibrated):
        raise BandProfileError(
            f"{label} ({date}): the model was fitted on {'reflectance' if wm.calibrated else 'digital numbers'} but this scene is "
            f"{'reflectance' if calibrated else 'digital numbers'}; give the scene the model's `scale`/`offset`"
        )
    frac = wm.check_spectra(X, label=f"{label} ({date})")
    Xs = wm.scale_features(X)
    labels = wm.kmeans.predict(Xs)
    sil = None
    if len(np.unique(labels)) >= 2:
        sil = float(silhouette(Xs, labels, wm.metric, random_state=seed))
    log.info("%s: model fitted on %s applied; %.1f%% of pixels beyond its 99th-percentile distance",
             date, wm.fitted_on, 100 * frac if np.isfinite(frac) else float("nan"))
    return labels, wm.decisions_for(X, labels, date), sil


def cluster_writer_kwargs(decisions: Sequence[ClusterDecision], water: Sequence[int], calibrated: bool, date: str,
                          model_file: str = "") -> dict[str, Any]:
    """Keyword arguments of :class:`~rs_change.export.BlockWriter` for ``clusters_<date>.tif``."""
    return {
        "nodata": 255,
        "colormap": cluster_colors(decisions, calibrated),
        "classes": cluster_classes(decisions),
        "tags": cluster_tags(decisions, water, date, model_file),
    }


def stage_cluster_outputs(tmp: Path, models: Sequence[Any], writers: Sequence[Any]) -> dict[str, Path]:
    """Turn the pipeline's cluster BlockWriters into ``clusters_<date>.tif`` (COG) and ``.png``, and
    write ``model_<date>.json``; all inside the staging folder ``tmp``.  Returns name -> path."""
    staged: dict[str, Path] = {}
    for dm, wr in zip(models, writers):
        d = dm.source.date.isoformat()
        tif = wr.to_cog(Path(tmp) / f"clusters_{d}.tif")
        staged[tif.name] = tif
        png = write_cluster_png(tif, Path(tmp) / f"clusters_{d}.png")
        staged[png.name] = png
    for dm in models:
        wm = getattr(dm, "water_model", None)
        if wm is not None:
            d = dm.source.date.isoformat()
            p = wm.save(Path(tmp) / f"model_{d}.json")
            staged[p.name] = p
    return staged


def output_names(dates: Sequence[str]) -> list[str]:
    """The cluster-map and model files a run writes per date."""
    return [f"{stem}_{d}.{ext}" for d in dates for stem, ext in (("clusters", "tif"), ("clusters", "png"), ("model", "json"))]
