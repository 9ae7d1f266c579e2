"""Which clusters are water, from what the clusters are.  Pure: arrays in, decisions out.

A cluster's number means nothing (it depends on the seed and on the order of the pixels).  Each
cluster is described by the medians of its sampled pixels' features in physical units (bands,
NDWI, MNDWI, NDVI, brightness) and judged on those.  Several clusters may be water; none may be.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from types import SimpleNamespace
from typing import Any, Optional, Sequence

import numpy as np

from . import defaults
from .decision import OWN_EVIDENCE, decision_of, need_table
from .errors import ConfigError, LabellingWarning

log = logging.getLogger(__name__)


@dataclass
class ClusterDecision:
    """One cluster: its id, size in the sample, centroid (feature medians), and the verdict."""

    id: int
    pixels: int
    centroid: dict[str, float]
    is_water: bool
    why: str
    stats: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready values (centroid and stats rounded to 6 decimals)."""
        d = asdict(self)
        d["centroid"] = {k: round(float(v), 6) for k, v in self.centroid.items()}
        d["stats"] = {k: round(float(v), 6) for k, v in self.stats.items()}
        return d


def describe_clusters(X: np.ndarray, names: Sequence[str], labels: np.ndarray, k: int) -> list[dict[str, float]]:
    """Median of every feature per cluster (``X`` in physical units, shape (n, n_features))."""
    out = []
    for c in range(k):
        sel = X[labels == c]
        if len(sel) == 0:
            out.append({n: float("nan") for n in names})
        else:
            med = np.median(sel, axis=0)
            out.append({n: float(v) for n, v in zip(names, med)})
    return out


#: Fine clusters used to find water (the reported clustering keeps the user's k).
K_FINE = 10
#: Rows the fine clusters are fitted on (a random subset of the date's sample; every sampled row
#: is then assigned): 10 groups need far fewer rows than the 200,000-pixel sample, and this is
#: the most expensive step of a run on small scenes.
FINE_SAMPLE = 50_000
#: Restarts of the fine clusters, each on FINE_RESTART_SIZE rows, the best then iterated on all
#: FINE_SAMPLE rows: with 3 restarts the NAIP 2009 water area moved 2% between seeds, with 20 0.3%
FINE_N_INIT = 20
FINE_RESTART_SIZE = 10_000
#: Water absorbs near and short-wave infrared: a water pixel or group is darker than this fraction
#: of the land's median in the dark band (and, with SWIR1, in NIR too).  In a linear mixture of
#: water and land, 0.5 is the pixel that is half water.
DARK_FRACTION = 0.5
#: Absolute caps on the dark bands for reflectance (calibrated) scenes: clear, turbid and shallow
#: water stay below them; snow, cloud and vegetation do not.
DARK_CAP = {"swir1": 0.12, "nir": 0.15}
#: Minimum contrast of a water (fine) cluster: its median green - dark band must exceed this fraction
#: of the land's median dark band.  A normalised index is noise when both bands are dark (a shadow at
#: DN 25 with noise +-3 has NDWI +-0.15, and k-means can split off its high-NDWI tail); water keeps
#: a green - NIR/SWIR gap in absolute units.  Measured on real water (median of the water pixels /
#: land median): 0.09 (Aral 2023, dark deep water, MODIS stretched to 8 bits) to 0.6 (Pucallpa river).
CONTRAST_FRACTION = 0.05
#: A single pixel's own water evidence needs this many times a group's contrast: a pixel carries
#: its noise (3 DN per band on a 33-DN shadow gives 2% of its pixels a group's gap), a median not.
PIXEL_CONTRAST = 2.0
#: Share of the scene that must be clearly land (index <= 0) for the land's medians to be measured.
MIN_LAND = 0.05


@dataclass
class WaterRule:
    """The water tests of one scene, in physical units.

    Per pixel (:meth:`passes`): the pixel is at least half water by linear unmixing between the
    land's medians (``t_index`` on the index, ``land_dark`` on the dark band) and the water groups'
    medians (``water_index``, ``water_dark``), the two fractions averaged::

        0.5 * (index - t_index) / (water_index - t_index) + 0.5 * (land_dark - dark) / (land_dark - water_dark) >= 0.5

    A dark pixel with a small green - dark gap (dark or turbid water) passes on its darkness; a
    bright pixel with a water-like index does not pass on its index alone.  This test only refines
    the pixels of water groups; it never makes a pixel water by itself.  Before the water groups
    are known (``water_index`` nan) it is ``index > t_index and dark < t_dark``.

    Per group of pixels (:meth:`group_is_water`): the group's medians have ``index > 0`` (brighter
    in green than in the dark band), ``dark < t_dark``, ``nir < t_nir`` (water absorbs NIR as well as
    SWIR1), and ``green - dark > t_contrast`` in absolute units.

    ``index`` is MNDWI when SWIR1 exists, else NDWI; ``dark`` is SWIR1 when it exists, else NIR.
    The contrast ``green - dark`` is computed from the index and the dark band alone
    (``2 * dark * index / (1 - index)``), so it needs no green column.
    """

    index: str
    dark: str
    t_index: float
    t_dark: float
    why: str
    t_contrast: float = 0.0
    t_nir: float = float("inf")
    land_dark: float = float("nan")
    water_index: float = float("nan")
    water_dark: float = float("nan")

    def with_water(self, X: np.ndarray, names: Sequence[str]) -> "WaterRule":
        """The rule with the water medians of ``X`` (the water groups' pixels), so that :meth:`passes`
        unmixes; unchanged when ``X`` is empty or its medians are not more water-like than the land's.
        """
        names = list(names)
        if len(X) == 0 or not np.isfinite(self.land_dark):
            return self
        wi = float(np.median(X[:, names.index(self.index)]))
        wd = float(np.median(X[:, names.index(self.dark)]))
        if not (wi > self.t_index and wd < self.land_dark):
            return self
        return replace(self, water_index=wi, water_dark=wd)

    def passes(self, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Boolean (n,) of the rows of ``X`` (physical units, shape (n, n_features)) that pass."""
        names = list(names)
        return self.test(X[:, names.index(self.index)], X[:, names.index(self.dark)])

    def test(self, index: np.ndarray, dark: np.ndarray) -> np.ndarray:
        """Pixels with no evidence of land of their own (``level >= 1``): boolean, the shape of the inputs."""
        return self.level(index, dark) >= 1

    def level(self, index: np.ndarray, dark: np.ndarray) -> np.ndarray:
        """Each pixel's own evidence (uint8, the shape of the inputs, both the same shape).

        0: evidence of land (less than half water by unmixing, see the class); 1: at least half
        water by unmixing; 2: at least half water on the index and on the dark band each, and
        brighter in green than in the dark band (index > 0) by more than ``PIXEL_CONTRAST x
        t_contrast`` in absolute units: water's own signature, above a single pixel's noise.  Before the water
        groups are known (``water_index`` nan), 2 where ``index > t_index and dark < t_dark``, else 0.
        """
        index = np.asarray(index)
        dark = np.asarray(dark)
        if not np.isfinite(self.water_index):
            return ((index > self.t_index) & (dark < self.t_dark)).astype(np.uint8) * np.uint8(OWN_EVIDENCE)
        fi = (index - self.t_index) * (1.0 / (self.water_index - self.t_index))
        fd = (self.land_dark - dark) * (1.0 / (self.land_dark - self.water_dark))
        lev = (fi + fd >= 1.0).astype(np.uint8)
        lev += (fi >= 0.5) & (fd >= 0.5) & (index > 0) & (contrast(index, dark) > PIXEL_CONTRAST * self.t_contrast)
        return lev

    def percent(self, index: np.ndarray, dark: np.ndarray) -> np.ndarray:
        """Each pixel's water fraction by unmixing, in percent (uint8 0-100, the shape of the inputs).

        The mean of the two fractions of :meth:`level` (index and dark band between the land's and
        the water groups' medians), ``floor(50 * (fi + fd) + 0.5)`` clipped to 0-100 (non-finite: 0);
        :meth:`level` is at least 1 exactly where ``fi + fd >= 1``.  Before the water groups are
        known (``water_index`` nan), 100 where :meth:`level` is 2, else 0.  The water fraction
        layer bounds it by the decision (:meth:`rs_change.decision.Decision.percent`).
        """
        index = np.asarray(index)
        dark = np.asarray(dark)
        if not np.isfinite(self.water_index):
            return (self.level(index, dark) == OWN_EVIDENCE).astype(np.uint8) * np.uint8(100)
        fi = (index - self.t_index) * (1.0 / (self.water_index - self.t_index))
        fd = (self.land_dark - dark) * (1.0 / (self.land_dark - self.water_dark))
        p = np.floor((fi + fd) * 50.0 + 0.5)
        np.clip(p, 0, 100, out=p)
        return np.nan_to_num(p, nan=0.0).astype(np.uint8)

    def levels(self, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """:meth:`level` of the rows of ``X`` (physical units, shape (n, n_features))."""
        names = list(names)
        return self.level(X[:, names.index(self.index)], X[:, names.index(self.dark)])

    def median_contrast(self, X: np.ndarray, names: Sequence[str]) -> float:
        """Median ``green - dark`` of the rows of ``X`` (physical units, shape (n, n_features)); nan if empty."""
        names = list(names)
        if len(X) == 0:
            return float("nan")
        return float(np.median(contrast(X[:, names.index(self.index)], X[:, names.index(self.dark)])))

    def group_kind(self, X: np.ndarray, names: Sequence[str]) -> tuple[str, dict[str, float]]:
        """What a group of pixels (rows of ``X``, physical units) is by its medians, and the medians.

        ``"water"``: dark in the dark band (and NIR), index > 0, and a green - dark gap above
        ``t_contrast``; ``"dark"``: dark but without water's index or gap (shadow, wet or burnt
        ground, mixed shore pixels: its pixels are water only on their own evidence);
        ``"land"`` otherwise.
        """
        names = list(names)
        if len(X) == 0:
            return "land", {}
        med = {self.index: float(np.median(X[:, names.index(self.index)])),
               self.dark: float(np.median(X[:, names.index(self.dark)])),
               "contrast": self.median_contrast(X, names)}
        dark = med[self.dark] < self.t_dark
        if np.isfinite(self.t_nir) and "nir" in names and self.dark != "nir":
            med["nir"] = float(np.median(X[:, names.index("nir")]))
            dark = dark and med["nir"] < self.t_nir
        if not dark:
            return "land", med
        return ("water" if med[self.index] > 0 and med["contrast"] > self.t_contrast else "dark"), med

    def group_is_water(self, X: np.ndarray, names: Sequence[str]) -> tuple[bool, dict[str, float]]:
        """Whether a group of pixels (rows of ``X``, physical units) is water (:meth:`group_kind`), and its medians."""
        kind, med = self.group_kind(X, names)
        return kind == "water", med

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready values (:meth:`from_dict` reads them back)."""
        return {"index": self.index, "dark_band": self.dark, "t_index": round(float(self.t_index), 6),
                "t_dark": None if not np.isfinite(self.t_dark) else round(float(self.t_dark), 6), "why": self.why,
                "t_contrast": float(self.t_contrast),
                "t_nir": None if not np.isfinite(self.t_nir) else round(float(self.t_nir), 6),
                **{k: (None if not np.isfinite(getattr(self, k)) else float(getattr(self, k)))
                   for k in ("land_dark", "water_index", "water_dark")}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WaterRule":
        """The rule from :meth:`to_dict` or :meth:`Labeller.to_dict`'s ``rule``.

        ``t_dark``/``t_nir`` None = no limit.
        """
        t_dark, t_nir = d.get("t_dark"), d.get("t_nir")
        return cls(
            str(d["index"]),
            str(d.get("dark_band", d.get("dark"))),
            float(d["t_index"]),
            float("inf") if t_dark is None else float(t_dark),
            str(d.get("why", "")),
            float(d.get("t_contrast", 0.0)),
            float("inf") if t_nir is None else float(t_nir),
            *(float("nan") if d.get(k) is None else float(d[k]) for k in ("land_dark", "water_index", "water_dark")),
        )


def contrast(index: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """``green - dark`` of pixels from their normalised index ``(green - dark)/(green + dark)`` and dark band.

    Any shape (both the same); float64.  ``index`` = 1 (dark band 0) gives ``inf``.

    Examples
    --------
    >>> import numpy as np
    >>> float(contrast(np.array([0.5]), np.array([10.0]))[0])  # green 30, dark 10
    20.0
    """
    W = np.asarray(index, np.float64)
    D = np.asarray(dark, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(W < 1, 2 * D * W / np.where(W < 1, 1 - W, 1), np.inf)


def water_rule(X: np.ndarray, names: Sequence[str], *, calibrated: bool) -> WaterRule:
    """The scene's water tests (:class:`WaterRule`), measured on a sample of its pixels.

    Every threshold is relative to the scene's own land (the pixels whose index is <= 0, when they
    are at least 5% of the sample), so the same words hold for reflectance and for uncalibrated
    digital numbers (NAIP, stretched 8-bit products):

    * a group of pixels is water when its medians are brighter in green than in the dark band
      (index > 0), darker than half the land's median in the dark band (and in NIR when the dark
      band is SWIR1), and its green - dark gap exceeds 5% of the land's median dark band;
    * a pixel of a water group stays water unless it is as land-like as the land's median on the
      index, or brighter than half the land's median in the dark band.

    Reflectance also caps the dark bands (SWIR1 0.12, NIR 0.15).

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        Sampled pixels in physical units.
    names : sequence of str
        Feature names; needs ``ndwi`` (green + NIR) or ``mndwi`` (green + SWIR1).
    calibrated : bool
        Reflectance (the caps apply) or digital numbers.

    Returns
    -------
    WaterRule
    """
    names = list(names)
    index = "mndwi" if "mndwi" in names else "ndwi" if "ndwi" in names else None
    if index is None:
        raise ConfigError("labelling: water needs green and NIR (or SWIR1) bands; name them in the scene's `bands`")
    dark = "swir1" if "swir1" in names else "nir"
    W = X[:, names.index(index)].astype(np.float64)
    D = X[:, names.index(dark)].astype(np.float64)
    land = W <= 0.0  # brighter in the dark band than in green: not open water
    why = []
    t_index, t_dark, t_contrast, t_nir, land_dark = 0.0, float("inf"), 0.0, float("inf"), float("nan")
    if land.mean() >= MIN_LAND:
        t_index = float(np.median(W[land]))
        land_dark = float(np.median(D[land]))
        t_dark = DARK_FRACTION * land_dark
        t_contrast = CONTRAST_FRACTION * land_dark
        why.append(
            f"groups: median {index.upper()} > 0, {dark.upper()} < {t_dark:.4g} ({DARK_FRACTION} x the land's "
            f"median {land_dark:.4g}), GREEN - {dark.upper()} > {t_contrast:.4g} ({CONTRAST_FRACTION} x that median)"
        )
        if dark != "nir" and "nir" in names:
            land_nir = float(np.median(X[land, names.index("nir")]))
            t_nir = DARK_FRACTION * land_nir
            why.append(f"NIR < {t_nir:.4g} ({DARK_FRACTION} x the land's median {land_nir:.4g})")
        why.append(f"pixels of water groups: at least half water by unmixing {index.upper()} and {dark.upper()} "
                   f"between the land's medians ({t_index:+.3f}, {land_dark:.4g}) and the water groups' medians")
    else:
        why.append(f"groups and pixels: {index.upper()} > 0; no {dark.upper()} limit: less than "
                   f"{100 * MIN_LAND:.0f}% of the scene is clearly land by the index")
    if calibrated:
        for band, cap in DARK_CAP.items():
            if band == dark and t_dark > cap:
                t_dark = cap
                why.append(f"{dark.upper()} capped at {cap} reflectance")
            elif band == "nir" and dark != "nir" and "nir" in names and t_nir > cap:
                t_nir = cap
                why.append(f"NIR capped at {cap} reflectance")
    return WaterRule(index, dark, t_index, t_dark, "; ".join(why), t_contrast, t_nir, land_dark)


@dataclass
class Labeller:
    """Water decisions of one date: fine clusters judged by the rule, then per-pixel refinement.

    A pixel is water when (a) the *fine* cluster it belongs to is water (most of its sampled
    pixels pass ``rule``) and (b) the pixel itself passes ``rule``.  With
    ``method="clusters"`` a pixel is water when its reported cluster id is in ``manual``.
    How these answers decide a pixel is stated once in :mod:`rs_change.decision`.
    """

    names: list[str]
    rule: Optional[WaterRule]
    fine: Any = None  # clustering.KMeans on the scaled features
    fine_water: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    manual: Optional[np.ndarray] = None
    fine_decisions: list[dict[str, Any]] = field(default_factory=list)
    fine_dark: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def need(self) -> np.ndarray:
        """uint8 (256,): the pixel level (:meth:`WaterRule.level`) a pixel of each fine cluster needs
        to be water (:func:`rs_change.decision.need_table`): 1 in water groups, 2 in dark groups,
        3 (never) elsewhere.
        """
        return need_table(self.fine_water, self.fine_dark)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data that :meth:`from_dict` turns back into the same labeller.

        Thresholds and fine centres are kept at full float64 precision (no rounding), so a
        rebuilt labeller decides every pixel exactly as this one.
        """
        rule = None
        if self.rule is not None:
            rule = {**self.rule.to_dict(), "t_index": float(self.rule.t_index),
                    "t_dark": float(self.rule.t_dark) if np.isfinite(self.rule.t_dark) else None}
        fine = None
        if self.fine is not None:
            fine = {
                "k": int(len(self.fine.cluster_centers_)),
                "metric": str(getattr(self.fine, "metric_", self.fine.metric)),
                "centers": [[float(v) for v in row] for row in np.asarray(self.fine.cluster_centers_)],
            }
        return {
            "features": list(self.names),
            "rule": rule,
            "fine": fine,
            "fine_water": [int(i) for i in self.fine_water],
            "fine_dark": [int(i) for i in self.fine_dark],
            "manual": None if self.manual is None else [int(i) for i in self.manual],
            "fine_clusters": [dict(d) for d in self.fine_decisions],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Labeller":
        """The labeller from :meth:`to_dict` (fine centres rebuilt as a predicting KMeans)."""
        from .clustering import kmeans_from_centers

        fine = None
        if d.get("fine") is not None:
            fine = kmeans_from_centers(np.asarray(d["fine"]["centers"], np.float64), str(d["fine"]["metric"]))
        return cls(
            [str(n) for n in d["features"]],
            None if d.get("rule") is None else WaterRule.from_dict(d["rule"]),
            fine,
            np.asarray(d.get("fine_water", []), np.int64),
            None if d.get("manual") is None else np.asarray(d["manual"], np.int64),
            [dict(x) for x in d.get("fine_clusters", [])],
            np.asarray(d.get("fine_dark", []), np.int64),
        )


@dataclass(frozen=True)
class LabelOptions:
    """How :func:`fit_labeller` decides water: ``method`` ("auto": the fine groups; "clusters": the
    reported clusters ``water_ids`` are water), and the fine clustering's ``seed``, ``k_fine``
    (default :data:`K_FINE`) and extra :class:`~rs_change.clustering.KMeans` parameters ``kmeans_kw``.
    """

    method: str = defaults.LABELLING_METHOD
    water_ids: Optional[Sequence[int]] = None
    seed: int = defaults.SEED
    k_fine: Optional[int] = None
    kmeans_kw: Optional[dict[str, Any]] = None


def fit_labeller(
    X: np.ndarray,
    Xs: np.ndarray,
    names: Sequence[str],
    labels: np.ndarray,
    k: int,
    *,
    calibrated: bool,
    options: Optional[LabelOptions] = None,
    **option_kw: Any,
) -> tuple[list[ClusterDecision], Labeller]:
    """Decide water for one date: decisions for the reported clusters and the per-pixel labeller.

    Parameters
    ----------
    X, Xs : numpy.ndarray of shape (n_samples, n_features)
        The fitted sample in physical units and scaled (as clustered).
    names : sequence of str
        Feature names.
    labels : numpy.ndarray of shape (n_samples,)
        Reported cluster id of each sampled pixel (the user's k).
    k : int
        Number of reported clusters.
    calibrated : bool
        Reflectance or digital numbers (see :func:`water_rule`).
    options : LabelOptions, optional
        ``method``, ``water_ids``, ``seed``, ``k_fine``, ``kmeans_kw`` (defaults: :class:`LabelOptions`).
    **option_kw
        The same fields as keywords (``method="clusters", water_ids=[1]``), over ``options``; any
        other keyword is a ``TypeError``.

    Returns
    -------
    decisions : list of ClusterDecision
        One per reported cluster; ``is_water`` when at least half its sampled pixels are water.
    labeller : Labeller
    """
    known = {f.name for f in fields(LabelOptions)}
    unknown = sorted(set(option_kw) - known)
    if unknown:
        raise TypeError(f"fit_labeller() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
    opts = replace(options or LabelOptions(), **option_kw)
    names = list(names)
    if opts.method == "clusters":
        dec = label_clusters(X, names, labels, k, calibrated=calibrated, method=opts.method, water_ids=opts.water_ids)
        return dec, Labeller(names, None, manual=np.array([d.id for d in dec if d.is_water], np.int64))
    rule = water_rule(X, names, calibrated=calibrated)
    fine, flab, fdec = _fine_groups(X, Xs, labels, k, opts)
    fwater: list[int] = []
    fdark: list[int] = []
    for c in range(len(fdec)):
        sel = flab == c
        kind, med = rule.group_kind(X[sel], names)
        (fwater if kind == "water" else fdark if kind == "dark" else []).append(c)
        con = med.get("contrast", float("nan"))
        fdec[c].update({"pixels": int(sel.sum()), "kind": kind, "is_water": kind == "water",
                        "contrast": round(con, 4) if np.isfinite(con) else None,
                        **{b: round(v, 4) for b, v in med.items() if b != "contrast"}})
    if fine is not None:
        fwater, fdark = _drop_tails(X, names, rule, fine.cluster_centers_, flab, fwater, fdark, fdec)
    rule = rule.with_water(X[np.isin(flab, fwater)], names)
    if not fwater:  # no water group: no water, and no pixel is water on its own evidence either
        fwater, fdark = [], []
    elif fine is not None:
        fwater, fdark = _weigh_groups(X, names, rule, flab, labels, k, (fwater, fdark), fdec)
    lev = rule.levels(X, names)
    lab = Labeller(names, rule, fine, np.array(fwater, np.int64), None, fdec, np.array(fdark, np.int64))
    # fine.labels_ is fine.predict(Xs), so this is water.decide_rows on the sample without predicting again
    water = decision_of(SimpleNamespace(labeller=lab, water_ids=[])).of_levels(lev, flab if fine is not None else None)
    for fd in fdec:
        sel = flab == fd["id"]
        fd["water_fraction"] = round(float(water[sel].mean()), 4) if sel.any() else 0.0
        fd["own_evidence_fraction"] = round(float((lev[sel] >= OWN_EVIDENCE).mean()), 4) if sel.any() else 0.0
    out = _cluster_decisions(X, names, labels, k, rule, water, flab if fine is not None else None, fdec)
    if not water.any():
        log.info("no water: no group of pixels is water (%s)", rule.why)
        for d in out:
            d.why = "no water in the scene: no group of pixels is water (" + rule.why + "); " + d.why
    return out, lab


def _fine_groups(
    X: np.ndarray, Xs: np.ndarray, labels: np.ndarray, k: int, opts: LabelOptions
) -> tuple[Any, np.ndarray, list[dict[str, Any]]]:
    """The fine clustering of the sample (None when the sample has no more rows than groups: the
    reported clusters are the groups), each row's group, and one record ``{"id"}`` per group.
    """
    from .clustering import KMeans

    kf = max(k, K_FINE if opts.k_fine is None else opts.k_fine)
    if len(X) <= kf:
        return None, labels, [{"id": c} for c in range(k)]
    # with 10 clusters the local optima are many and close, and the groups' borders move the
    # water mask: at least FINE_N_INIT restarts, compared on FINE_RESTART_SIZE rows
    kw = dict(opts.kmeans_kw or {})
    kw["n_init"] = max(int(kw.get("n_init", 1)), FINE_N_INIT)
    kw["restart_size"] = FINE_RESTART_SIZE
    fine = KMeans(n_clusters=kf, random_state=opts.seed, sample_size=FINE_SAMPLE, **kw).fit(Xs)
    return fine, fine.labels_, [{"id": c} for c in range(kf)]


def _cluster_decisions(
    X: np.ndarray,
    names: Sequence[str],
    labels: np.ndarray,
    k: int,
    rule: WaterRule,
    water: np.ndarray,
    flab: Optional[np.ndarray],
    fdec: list[dict[str, Any]],
) -> list[ClusterDecision]:
    """One decision per reported cluster: water when at least half its sampled pixels are
    (``water``), with the fine groups (``flab``, None without fine clustering) its water is in.
    """
    cents = describe_clusters(X, names, labels, k)
    counts = np.bincount(labels, minlength=k)
    out = []
    for c in range(k):
        sel = labels == c
        if counts[c] == 0:
            out.append(ClusterDecision(c, 0, cents[c], False, "empty cluster"))
            continue
        wf = float(water[sel].mean())
        isw = wf >= 0.5
        cen = cents[c]
        if flab is not None:
            parts = [(int(i), float(water[sel & (flab == i)].sum()) / counts[c]) for i in np.unique(flab[sel & water])]
            parts.sort(key=lambda t: -t[1])
            carried = ", ".join(f"{i} ({fdec[i]['kind']}, {100 * f:.1f}%)" for i, f in parts)
        else:
            carried = ""
        why = (f"{100 * wf:.1f}% of its sampled pixels are water, so the cluster is "
               f"{'water' if isw else 'land'} on the cluster map ({'>=' if isw else '<'} 50%)")
        why += f"; its water is in fine groups {carried}" if carried else "; none of its pixels is water"
        stats = {"water_fraction": wf, f"{rule.index}_median": cen[rule.index], f"{rule.dark}_median": cen[rule.dark]}
        out.append(ClusterDecision(c, int(counts[c]), cen, bool(isw), why, stats))
    return out


def _drop_tails(X: np.ndarray, names: Sequence[str], rule: WaterRule, centres: np.ndarray, flab: np.ndarray,
                fwater: list[int], fdark: list[int], fdec: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """Water groups that are only the high-index edge of a dark non-water population become dark.

    k-means can split the noisy tail of dark roofs or shadows (index around 0) into a group of its
    own whose medians pass the water test.  Such a group's nearest group is that dark population,
    and the two together are not water; a real water group's nearest group is water, land, or a
    dark group that does not outweigh it.
    """
    centres = np.asarray(centres, np.float64)
    water, dark = list(fwater), list(fdark)
    for g in fwater:
        d = np.sqrt(((centres - centres[g]) ** 2).sum(axis=1))
        d[g] = np.inf
        h = int(np.argmin(d))
        if h not in fdark:
            continue
        kind, _ = rule.group_kind(X[(flab == g) | (flab == h)], names)
        if kind != "water":
            water.remove(g)
            dark.append(g)
            fdec[g].update(kind="dark", is_water=False, tail_of=h)
    return water, sorted(dark)


def _weigh_groups(X: np.ndarray, names: Sequence[str], rule: WaterRule, flab: np.ndarray, labels: np.ndarray, k: int,
                  groups: tuple[list[int], list[int]], fdec: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """Which fine groups' pixels are water unless they show land (need 1), and which only on
    their own water evidence (need 2): the reported clusters weigh in.  ``groups`` are the water
    and the dark fine groups.

    Water groups need 1.  A reported (user's k) cluster is water when most of its sampled pixels
    are in water groups; the dark groups that lie mostly in such a cluster are carried by it when,
    taken together, they have water's sign (median index > 0 and half the groups' green - dark
    gap): their pixels are then water unless they are land-like themselves (dark lakes with a
    small green - NIR gap in the lakes' cluster, however k-means splits them).  Other dark groups
    need each pixel's own evidence.
    """
    fwater, fdark = groups
    in_water = np.isin(flab, fwater)
    strong = [bool((labels == c).any() and in_water[labels == c].mean() >= 0.5) for c in range(k)]
    homes = {g: int(np.argmax(np.bincount(labels[flab == g], minlength=k))) for g in fdark}
    need1: list[int] = list(fwater)
    need2: list[int] = []
    for c in range(k):
        home = [g for g in fdark if homes[g] == c]
        if not home:
            continue
        carried = False
        if strong[c]:
            _, med = rule.group_kind(X[np.isin(flab, home)], names)
            carried = med[rule.index] > 0 and med["contrast"] > 0.5 * rule.t_contrast
        (need1 if carried else need2).extend(home)
        for g in home:
            fdec[g]["carried_by_cluster"] = c if carried else None
    return sorted(need1), sorted(need2)


def label_clusters(
    X: np.ndarray,
    names: Sequence[str],
    labels: np.ndarray,
    k: int,
    *,
    calibrated: bool,
    method: str = "auto",
    water_ids: Optional[Sequence[int]] = None,
) -> list[ClusterDecision]:
    """Decide which clusters are water.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        Features of sampled pixels in physical units (not scaled for clustering).
    names : sequence of str
        Feature names (band roles and index names), ``len(names) == n_features``.
    labels : numpy.ndarray of shape (n_samples,)
        Cluster id of each sampled pixel.
    k : int
        Number of clusters.
    calibrated : bool
        True when bands are reflectance; False for digital numbers (NAIP).
    method : {"auto", "clusters"}
        ``clusters`` takes ``water_ids`` as given (with a :class:`LabellingWarning`).
    water_ids : sequence of int, optional
        Cluster ids that are water, for ``method="clusters"``.

    Returns
    -------
    list of ClusterDecision
        One per cluster, in id order.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.05, 0.4], [0.06, 0.5], [0.4, -0.5], [0.5, -0.6]])
    >>> d = label_clusters(X, ["nir", "ndwi"], np.array([0, 0, 1, 1]), 2, calibrated=True)
    >>> [c.is_water for c in d]
    [True, False]
    """
    names = list(names)
    cents = describe_clusters(X, names, labels, k)
    counts = np.bincount(labels, minlength=k)
    if method == "clusters":
        ids = set(int(i) for i in (water_ids or []))
        bad = sorted(i for i in ids if not 0 <= i < k)
        if bad:
            raise ConfigError(f"labelling.water: cluster id(s) {bad} do not exist with k={k}; use ids 0..{k - 1}")
        warnings.warn(
            "labelling.method=clusters: water cluster ids were given by hand; ids depend on the seed and data, "
            "check them on the cluster map",
            LabellingWarning,
            stacklevel=2,
        )
        return [
            ClusterDecision(
                c,
                int(counts[c]),
                cents[c],
                c in ids,
                "named in labelling.water" if c in ids else "not named in labelling.water",
            )
            for c in range(k)
        ]

    rule = water_rule(X, names, calibrated=calibrated)
    out = []
    for c in range(k):
        cen = cents[c]
        if counts[c] == 0:
            out.append(ClusterDecision(c, 0, cen, False, "empty cluster"))
            continue
        water, med = rule.group_is_water(X[labels == c], names)
        why = (
            f"{'water' if water else 'not water'} by its medians "
            f"({', '.join(f'{b} {v:.4g}' for b, v in med.items())}): {rule.why}"
        )
        stats = {f"{b}_median": v for b, v in med.items()}
        stats.update({"t_index": rule.t_index, "t_dark": rule.t_dark if np.isfinite(rule.t_dark) else -1.0})
        out.append(ClusterDecision(c, int(counts[c]), cen, bool(water), why, stats))
    if not any(d.is_water for d in out):
        log.info("no cluster looks like water")
    return out


def water_ids(decisions: Sequence[ClusterDecision]) -> list[int]:
    """Ids of the clusters decided to be water."""
    return [d.id for d in decisions if d.is_water]
