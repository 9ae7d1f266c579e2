"""A fitted water model: scaler + k-means centres + water labeller, saved and loaded as JSON.

One model fitted on one scene can be applied to other tiles and dates, so that cluster 2 means
the same spectra everywhere.  The JSON holds everything needed to apply it again without the
scene it was fitted on: the feature names (band roles in canonical order, then indices), the
robust scaler (offset, scale), the centres (in scaled units) and metric, the band profile
(roles, scale/offset: what "physical units" meant when fitting), the water labeller
(:class:`~rs_change.labelling.Labeller`: the per-pixel water rule with its thresholds, the fine
k-means centres and which fine clusters are water, or the cluster ids named by hand), the
per-cluster decisions, the convergence trace of the fit and the versions that wrote it.

How water is decided (the same in ``rs-change run``, :func:`rs_change.label_water` and a saved
model): a pixel is water when the *fine* cluster it falls in (``max(k, 10)`` clusters) is water
and the pixel itself is water enough for that cluster (its level from unmixing between the
scene's land and water medians, :meth:`~rs_change.labelling.WaterRule.level`, meets the cluster's
need: :func:`rs_change.water.decide_rows`).  The
reported k clusters only summarise: a cluster ``is_water`` when at least half of its sampled
pixels are water.  A model applied to another date keeps the thresholds fitted on its own date.

Applying a model to spectra it has never seen gives labels anyway; :meth:`WaterModel.check_spectra`
measures how far a scene's pixels fall from the centres, compared with the fitted sample, and
warns (:class:`ModelDriftWarning`) when many of them are far away.

The cluster maps drawn from a model (colours, PNG, styles, with ``model_<date>.json`` beside
them) are made by :mod:`rs_change.clustermaps`.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import defaults
from .clustering import KMeans, centre_distances, kmeans_from_centers
from .errors import ClusteringError, InputError, RsChangeWarning
from .labelling import ClusterDecision, Labeller, describe_clusters, fit_labeller

log = logging.getLogger(__name__)

#: Format version of the model JSON; loading refuses other versions.  2: adds the per-pixel
#: water labeller (``labeller``); version 1 files only knew whole-cluster water decisions.
MODEL_FORMAT = 2
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


def _versions() -> dict[str, str]:
    from ._version import __version__

    from importlib import metadata

    out = {"rs_change": __version__, "numpy": np.__version__}
    try:  # installed alongside (a declared dependency) though the fit no longer calls it: no import
        out["scikit-learn"] = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:  # pragma: no cover
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
    versions : dict of str to str
        Versions of rs-change and numpy that fitted the model (and of scikit-learn, installed
        alongside; the fit itself is numpy only).
    labeller : Labeller or None
        Decides water per pixel (rule + fine clusters, or hand-named cluster ids), as the
        pipeline does; None (a model built by hand) means "the pixels of ``water_ids``".

    Examples
    --------
    >>> import numpy as np
    >>> from rs_change import fit_model
    >>> land, lake = [90, 110, 80, 180], [30, 60, 70, 20]
    >>> rng = np.random.default_rng(0)
    >>> img = (np.array([land] * 48 + [lake] * 16, np.float32) + rng.normal(0, 2, (64, 4))).T.reshape(4, 8, 8)
    >>> m = fit_model(img, k=2, bands={"red": 1, "green": 2, "blue": 3, "nir": 4})
    >>> m.water_ids, m.per_pixel  # cluster 0 is mostly water; water itself is decided per pixel
    ([0], True)
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
    labeller: Optional[Labeller] = None

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

    @property
    def rule(self) -> Any:
        """The per-pixel :class:`~rs_change.labelling.WaterRule` (thresholds fitted on ``fitted_on``), or None."""
        return None if self.labeller is None else self.labeller.rule

    @property
    def per_pixel(self) -> bool:
        """True when water is decided per pixel (rule + fine clusters), not by whole clusters."""
        from .decision import decision_of

        return decision_of(self).per_pixel

    def water_mask(
        self, X: np.ndarray, Xs: Optional[np.ndarray] = None, labels: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """Water (bool, shape (n,)) of pixels ``X`` (physical units, shape (n, n_features)).

        Decided as ``rs-change run`` decides it (:func:`rs_change.water.decide_rows`);
        ``Xs`` (scaled) and ``labels`` (cluster ids) are computed when not given.

        Examples
        --------
        >>> import numpy as np
        >>> km = kmeans_from_centers(np.array([[-1.0], [1.0]]), "euclidean")
        >>> m = WaterModel(["ndwi"], np.zeros(1), np.ones(1), km,
        ...                [ClusterDecision(0, 1, {}, False, ""), ClusterDecision(1, 1, {}, True, "")])
        >>> m.water_mask(np.array([[-0.8], [0.7]])).tolist()
        [False, True]
        """
        from .water import decide_rows

        X = np.asarray(X)
        return decide_rows(self, X, self.scale_features(X) if Xs is None else Xs, labels)

    # -- applying -----------------------------------------------------------------------------
    def scale_features(self, X: np.ndarray) -> np.ndarray:
        """``(X - offset) / scale`` as float32, X of shape (n, n_features) in physical units."""
        from .clustering import apply_scaler

        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.names):
            raise ClusteringError(
                f"features have shape {X.shape} but the model needs {len(self.names)} columns "
                f"({', '.join(self.names)}); "
                "give the same bands the model was fitted on"
            )
        return apply_scaler(X, self.offset, self.scale)

    def predict(self, data: Any, *, check: bool = True, **kw: Any) -> Any:
        """Cluster ids of every pixel of a scene; see :func:`rs_change.api.predict_clusters`.

        Returns the same kind as ``data``: uint8 ``(h, w)`` array (255 = unobserved) or a
        DataArray.
        """
        from .scenes import output_like, scene_input

        inp = scene_input(data, **kw)
        clusters, _ = self.classify_scene(inp, getattr(data, "path", "") or "data", check)
        return output_like(clusters, inp, "clusters")

    def classify_scene(self, inp: Any, label: str = "data", check: bool = True, sample: int = 100_000,
                       fraction: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        """Cluster ids and water mask (uint8 (y, x), 255 unobserved) of scene data read by
        :func:`rs_change.scenes.scene_input`, by :func:`rs_change.water.classify` as the pipeline
        classifies a block; with ``check``, :meth:`check_spectra` first on up to ``sample`` of its
        observed pixels (``label`` names the scene in the warning).  ``fraction`` (uint8 (y, x))
        is filled with the water fraction (0-100, 255 unobserved).
        """
        from .features import default_features, feature_matrix
        from .water import classify

        self.check_features(default_features(list(inp.profile.bands)), "data")
        if inp.valid.any() and check:
            idx = np.flatnonzero(inp.valid.ravel())
            if len(idx) > sample:
                idx = idx[:: len(idx) // sample + 1]
            if len(idx):
                flat = {k: v.ravel()[idx] for k, v in inp.bands.items()}
                self.check_spectra(feature_matrix(flat, np.ones(len(idx), bool), self.names), label=label)
        labels, water = classify(self, inp.bands, inp.valid, clusters=True, fraction=fraction)
        assert labels is not None  # clusters=True: classify returns the cluster ids
        return labels, water

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
                f"{label}: {100 * frac:.1f}% of pixels are farther from every cluster centre than 99% of the pixels "
                f"the model was fitted on ({self.fitted_on or 'its scene'}; expected about 1%, warning above "
                f"{100 * threshold:.0f}%); its spectra differ, check the cluster map or fit a model on this scene",
                ModelDriftWarning,
                stacklevel=2,
            )
        return frac

    def decisions_for(self, X: np.ndarray, labels: np.ndarray, source: str = "") -> list[ClusterDecision]:
        """The clusters measured on another scene's sample ``X`` (physical units) with ``labels``.

        Pixel counts, centroids and ``is_water`` (at least half of the cluster's sampled pixels
        are water under this model, see :meth:`water_mask`) are those of the scene; the rule's
        thresholds stay those fitted on ``fitted_on``.  On the fitted scene itself the decisions
        and reasons are the fit's.
        """
        X = np.asarray(X)
        labels = np.asarray(labels, dtype=np.int64)
        cents = describe_clusters(X, self.names, labels, self.k)
        counts = np.bincount(labels, minlength=self.k)
        water = self.water_mask(X, None, labels) if len(X) else np.zeros(0, bool)
        fitted = self.fitted_on or "the model's scene"
        same = not source or source == self.fitted_on
        out = []
        for d in self.decisions:
            n = int(counts[d.id])
            wf = float(water[labels == d.id].mean()) if n else 0.0
            isw = n > 0 and wf >= 0.5
            stats = dict(d.stats)
            if same and isw == d.is_water:
                why = d.why
            else:
                how = ("the water rule and fine clusters" if self.per_pixel else "the water cluster ids")
                why = (f"{100 * wf:.1f}% of its sampled pixels here are water ({'>=' if isw else '<'} 50%) under "
                       f"{how} of the model fitted on {fitted}; there: {d.why}")
                if self.per_pixel and n:
                    stats["rule_pass_fraction"] = float(self.rule.passes(X[labels == d.id], self.names).mean())
            if "water_fraction" in stats or self.labeller is not None:
                stats["water_fraction"] = wf
            out.append(ClusterDecision(d.id, n, cents[d.id], bool(isw), why, stats))
        return out

    def with_water(self, ids: Sequence[int]) -> "WaterModel":
        """A copy whose water clusters are ``ids``, named by hand (after looking at the cluster map).

        Examples
        --------
        >>> import numpy as np
        >>> from rs_change.clustering import kmeans_from_centers
        >>> km = kmeans_from_centers(np.array([[-1.0], [1.0]]), "euclidean")
        >>> m = WaterModel(["ndwi"], np.zeros(1), np.ones(1), km,
        ...                [ClusterDecision(0, 1, {}, False, ""), ClusterDecision(1, 1, {}, True, "")])
        >>> m.with_water([0]).water_ids
        [0]
        """
        chosen = {int(i) for i in ids}
        bad = sorted(i for i in chosen if not 0 <= i < self.k)
        if bad:
            raise ClusteringError(f"water cluster id(s) {bad} do not exist with k={self.k}; use ids 0..{self.k - 1}")
        dec = [
            replace(d, is_water=d.id in chosen, why="named by hand" if d.id in chosen else "not named by hand")
            for d in self.decisions
        ]
        manual = np.array(sorted(chosen), np.int64)
        lab = (
            Labeller(list(self.names), None, manual=manual)
            if self.labeller is None
            else replace(self.labeller, manual=manual)
        )
        return replace(self, decisions=dec, labeller=lab)

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-able data (see the module documentation)."""
        km = self.kmeans
        params = {
            k: v
            for k, v in km.get_params().items()
            if k in ("n_init", "max_iter", "tol", "sample_size", "chebyshev_trim")
        }
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
            "labeller": None if self.labeller is None else self.labeller.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<model>") -> "WaterModel":
        """Rebuild a model from :meth:`to_dict` output; checks the format version and the features."""
        if not isinstance(data, Mapping) or data.get("format") != "rs-change water model":
            raise InputError(f"{source}: not an rs-change model file; give a model_<date>.json written by rs-change")
        ver = data.get("format_version")
        if ver == 1:
            raise InputError(
                f"{source}: model format version 1 decided water by whole clusters and cannot reproduce this "
                f"rs-change's per-pixel water (reads {MODEL_FORMAT}); refit the model with this version"
            )
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
            km = kmeans_from_centers(
                centers, str(kmd["metric"]), random_state=kmd.get("seed", 0), **dict(kmd.get("params", {}))
            )
            km.n_iter_ = int(kmd.get("n_iter", 0))
            km.shift_trace_ = [float(v) for v in kmd.get("shift_trace", [])]
            km.inertia_ = float("nan") if kmd.get("inertia") is None else float(kmd["inertia"])
            decisions = [
                ClusterDecision(
                    int(c["id"]),
                    int(c["pixels"]),
                    {k: float(v) for k, v in c["centroid"].items()},
                    bool(c["is_water"]),
                    str(c["why"]),
                    {k: float(v) for k, v in c.get("stats", {}).items()},
                )
                for c in data["clusters"]
            ]
            labeller = None if data.get("labeller") is None else Labeller.from_dict(data["labeller"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{source}: model file is incomplete or damaged ({exc.__class__.__name__}: {exc}); write it again"
            ) from None
        n = len(names)
        if offset.shape != (n,) or scale.shape != (n,) or centers.ndim != 2 or centers.shape[1] != n:
            raise InputError(
                f"{source}: the model's scaler/centres do not match its {n} features ({', '.join(names)}); "
                "write it again"
            )
        if sorted(d.id for d in decisions) != list(range(len(centers))):
            raise InputError(f"{source}: the model's clusters do not match its {len(centers)} centres; write it again")
        if not np.all(scale > 0):
            raise InputError(f"{source}: the model's scaler has non-positive scales; write it again")
        if labeller is not None:
            _check_labeller(labeller, names, len(centers), source)
        return cls(
            names, offset, scale, km, sorted(decisions, key=lambda d: d.id), dict(data.get("profile") or {}),
            data.get("fitted_on"), float("nan") if data.get("distance_p99") is None else float(data["distance_p99"]),
            int(data.get("sample_pixels", 0)), None if data.get("silhouette") is None else float(data["silhouette"]),
            int(kmd.get("seed", 0)), list(km.shift_trace_), dict(data.get("versions") or {}), labeller,
        )

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (see :meth:`to_dict`) and return the path.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> km = kmeans_from_centers(np.array([[-1.0], [1.0]]), "euclidean")
        >>> m = WaterModel(["ndwi"], np.zeros(1), np.ones(1), km,
        ...                [ClusterDecision(0, 5, {"ndwi": -0.5}, False, "dry"),
        ...                 ClusterDecision(1, 3, {"ndwi": 0.4}, True, "wet")])
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
            raise InputError(
                f"{p}: cannot read the model ({exc.__class__.__name__}); give a model_<date>.json written by rs-change"
            ) from None
        return cls.from_dict(data, source=str(p))

    def check_features(self, names: Sequence[str], source: str = "scene") -> None:
        """Raise :class:`~rs_change.errors.BandProfileError` unless ``names`` are the model's features."""
        from .errors import BandProfileError

        if list(names) != list(self.names):
            raise BandProfileError(
                f"{source}: its features ({', '.join(names)}) differ from the model's ({', '.join(self.names)}); "
                "give the scene the same band roles the model was fitted on"
            )


def _check_labeller(lab: Labeller, names: Sequence[str], k: int, source: str) -> None:
    """Raise InputError when a loaded labeller does not fit the model it came with."""
    if list(lab.names) != list(names):
        raise InputError(
            f"{source}: the model's water labeller has features ({', '.join(lab.names)}) other than the model's; "
            "write it again"
        )
    if lab.rule is not None and not {lab.rule.index, lab.rule.dark} <= set(names):
        raise InputError(
            f"{source}: the model's water rule uses {lab.rule.index}/{lab.rule.dark}, not among its features; "
            "write it again"
        )
    if lab.manual is not None and not all(0 <= i < k for i in lab.manual):
        raise InputError(
            f"{source}: the model's hand-named water clusters {lab.manual.tolist()} do not exist with k={k}; "
            "write it again"
        )
    if lab.fine is not None:
        kf = len(lab.fine.cluster_centers_)
        if np.asarray(lab.fine.cluster_centers_).shape[1:] != (len(names),):
            raise InputError(
                f"{source}: the model's fine centres do not match its {len(names)} features; write it again"
            )
        if not all(0 <= i < kf for i in lab.fine_water):
            raise InputError(
                f"{source}: the model's fine water clusters do not exist among its {kf} fine centres; write it again"
            )
    if lab.manual is None and lab.rule is None:
        raise InputError(
            f"{source}: the model's water labeller has neither a rule nor hand-named clusters; write it again"
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


@dataclass(frozen=True)
class FitParams:
    """How a model is fitted: the ``clustering`` and ``labelling`` settings the fit uses, as one value.

    Built once from a config's sections (:meth:`from_config`) or from
    :func:`rs_change.fit_model`'s keywords, and passed down to :func:`fit_sample`; its defaults
    are those of :mod:`rs_change.defaults`.

    Attributes
    ----------
    k : int or tuple of int, default 3
        Clusters, or candidates scored by silhouette.
    metric : {"euclidean", "manhattan", "chebyshev", "auto"}, default "euclidean"
    seed : int, default 0
    sample_size : int or None, default 200000
        Pixels the model is fitted on (None = all); used by the callers that draw the sample.
    n_init, max_iter, tol : default 3, 100, 1e-4
        k-means restarts, iteration cap, convergence tolerance (also used for the fine clusters).
    method : {"auto", "clusters"}, default "auto"
    water : tuple of int, optional
        Water cluster ids for ``method="clusters"``.

    Examples
    --------
    >>> p = FitParams(k=[2, 3], water=[0])
    >>> p.k, p.water, p.ks
    ((2, 3), (0,), [2, 3])
    """

    k: int | tuple[int, ...] = defaults.K
    metric: str = defaults.METRIC
    seed: int = defaults.SEED
    sample_size: Optional[int] = defaults.SAMPLE_SIZE
    n_init: int = defaults.N_INIT
    max_iter: int = defaults.MAX_ITER
    tol: float = defaults.TOL
    method: str = defaults.LABELLING_METHOD
    water: Optional[tuple[int, ...]] = None

    def __post_init__(self) -> None:
        # lists (from a config or a script) become tuples: the value stays immutable
        if isinstance(self.k, (list, tuple)):
            object.__setattr__(self, "k", tuple(int(v) for v in self.k))
        if self.water is not None:
            object.__setattr__(self, "water", tuple(int(v) for v in self.water))

    @classmethod
    def from_config(cls, clustering: Any, labelling: Any) -> "FitParams":
        """The fit settings of a config's ``clustering`` and ``labelling`` sections."""
        c = clustering
        return cls(k=c.k, metric=c.metric, seed=c.seed, sample_size=c.sample_size, n_init=c.n_init,
                   max_iter=c.max_iter, tol=c.tol, method=labelling.method, water=labelling.water)

    @property
    def ks(self) -> list[int]:
        """The candidate numbers of clusters (one when ``k`` is a number)."""
        return list(self.k) if isinstance(self.k, tuple) else [int(self.k)]

    @property
    def metrics(self) -> list[str]:
        """The candidate metrics (all three for ``"auto"``)."""
        return ["euclidean", "manhattan", "chebyshev"] if self.metric == "auto" else [self.metric]

    @property
    def kmeans_kw(self) -> dict[str, Any]:
        """k-means' restarts, iteration cap and tolerance as keywords."""
        return dict(n_init=self.n_init, max_iter=self.max_iter, tol=self.tol)


def _fit_kmeans(Xs: np.ndarray, params: FitParams, label: str) -> tuple[KMeans, Optional[float], list[dict[str, Any]]]:
    """k-means on the scaled sample (or model selection over several k / metrics): the fitted
    KMeans, its silhouette (None when undefined) and the selection's scores.
    """
    from .clustering import select_model
    from .clustering import silhouette as _silhouette

    ks, metrics, seed = params.ks, params.metrics, params.seed
    scores: list[dict[str, Any]] = []
    try:
        if len(ks) > 1 or len(metrics) > 1:
            km, scores = select_model(Xs, ks, metrics, random_state=seed, sample_size=None, **params.kmeans_kw)
            sil = next((s.get("silhouette") for s in scores
                        if s["k"] == km.n_clusters and s["metric"] == km.metric), None)
        else:
            km = KMeans(n_clusters=ks[0], metric=metrics[0], random_state=seed, sample_size=None,
                        **params.kmeans_kw).fit(Xs)
            n_lab = np.unique(km.labels_).size
            # silhouette is undefined with one cluster or one pixel per cluster: report None
            sil = _silhouette(Xs, km.labels_, metrics[0], random_state=seed) if 2 <= n_lab < len(Xs) else None
    except ClusteringError as exc:  # e.g. k larger than the distinct pixel values: name the scene too
        if not label:
            raise
        raise ClusteringError(f"{label}: {exc}") from None
    return km, None if sil is None else float(sil), scores


def fit_sample(
    X: np.ndarray,
    names: Sequence[str],
    profile: Any,
    params: FitParams = FitParams(),
    *,
    fitted_on: Optional[str] = None,
    label: str = "",
) -> tuple[WaterModel, list[dict[str, Any]]]:
    """Fit the whole model on a sample of pixels: scaler, k-means (or model selection), silhouette,
    water labeller and per-cluster decisions.

    The one code path of ``rs-change run`` (:func:`rs_change.fit.fit_date`) and
    :func:`rs_change.fit_model`: the same sample and seed give the same numbers.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        Sampled observed pixels in physical units (DN or reflectance).
    names : sequence of str
        Feature names of the columns of ``X``.
    profile : BandProfile
        The scene's band profile (``calibrated`` chooses the water rule's kind; kept in the model).
    params : FitParams, default FitParams()
        k, metric, seed, k-means settings and the labelling method (``sample_size`` is not used:
        ``X`` is the sample).
    fitted_on : str, optional
        Date or label kept in the model.
    label : str, default ""
        Names the scene in error messages.

    Returns
    -------
    model : WaterModel
        With ``labeller`` and ``decisions``.
    scores : list of dict
        Model-selection scores (empty when one k and one metric were given).

    Examples
    --------
    >>> import numpy as np
    >>> from rs_change.sensors import get_profile
    >>> rng = np.random.default_rng(0)
    >>> land = rng.normal([80, 110, 90, 180], 3, (60, 4)); lake = rng.normal([70, 60, 30, 20], 3, (20, 4))
    >>> B = np.vstack([land, lake]); ndwi = (B[:, 1] - B[:, 3]) / (B[:, 1] + B[:, 3])
    >>> X = np.column_stack([B, ndwi])  # blue green red nir ndwi
    >>> m, _ = fit_sample(X, ["blue", "green", "red", "nir", "ndwi"], get_profile("naip"), FitParams(k=2))
    >>> int(m.water_mask(X).sum()), [d.pixels for d in m.decisions if d.is_water]
    (20, [20])
    """
    from .clustering import apply_scaler, fit_scaler

    names = list(names)
    offset, scale = fit_scaler(X)
    Xs = apply_scaler(X, offset, scale)
    km, sil, scores = _fit_kmeans(Xs, params, label)
    decisions, labeller = fit_labeller(
        X, Xs, names, km.labels_, km.n_clusters, calibrated=profile.calibrated, method=params.method,
        water_ids=None if params.water is None else list(params.water), seed=params.seed, kmeans_kw=params.kmeans_kw,
    )
    d = centre_distances(Xs, km.cluster_centers_, km.metric_) if len(Xs) else np.zeros(0)
    p99 = float(np.percentile(d, 99)) if len(d) else float("nan")
    wm = WaterModel(
        names, np.asarray(offset, np.float64), np.asarray(scale, np.float64), km, list(decisions),
        profile=profile_dict(profile), fitted_on=fitted_on, distance_p99=p99,
        sample_pixels=int(len(Xs)), silhouette=sil, seed=int(params.seed),
        shift_trace=[float(v) for v in getattr(km, "shift_trace_", [])], labeller=labeller,
    )
    return wm, scores


# ---------------------------------------------------------------------------------------------
# Applying a model to another date's sample (rs_change.fit.fit_date with a shared model)
# ---------------------------------------------------------------------------------------------
def apply_to_sample(
    wm: WaterModel,
    X: np.ndarray,
    names: Sequence[str],
    label: str,
    date: str,
    seed: int = 0,
    calibrated: Optional[bool] = None,
) -> tuple[np.ndarray, list[ClusterDecision], Optional[float]]:
    """Apply a shared model to one date's sample (physical units): labels, decisions, silhouette.

    Checks that the date has the model's features (and calibration), and warns
    (:class:`ModelDriftWarning`) when the date's spectra fall far outside the fitted sample.
    """
    from .clustering import silhouette
    from .errors import BandProfileError

    wm.check_features(names, f"{label} ({date})")
    if (
        calibrated is not None
        and wm.profile.get("calibrated") is not None
        and bool(wm.profile["calibrated"]) != bool(calibrated)
    ):
        raise BandProfileError(
            f"{label} ({date}): the model was fitted on {'reflectance' if wm.calibrated else 'digital numbers'} "
            "but this scene is "
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
