"""Which clusters are water, from what the clusters are.  Pure: arrays in, decisions out.

A cluster's number means nothing (it depends on the seed and on the order of the pixels).  Each
cluster is described by the medians of its sampled pixels' features in physical units (bands,
NDWI, MNDWI, NDVI, brightness) and judged on those.  Several clusters may be water; none may be.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

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
#: Index threshold bounds for uncalibrated scenes (Otsu is clipped into this range).
INDEX_RANGE = (0.1, 0.4)
#: A water pixel is darker than this fraction of the land's median in the "dark" band.
DARK_FRACTION = 0.5
#: Absolute caps on the dark band for reflectance (calibrated) scenes.
DARK_CAP = {"swir1": 0.12, "nir": 0.15}
#: Ashman's D below this: the index histogram is not bimodal, Otsu is not trusted.
MIN_BIMODALITY = 2.0
#: Minimum contrast of a water (fine) cluster: its median green - dark band must exceed this fraction
#: of the land's median dark band.  A normalised index is noise when both bands are dark (a shadow at
#: DN 25 with noise +-3 has NDWI +-0.15, and k-means can split off its high-NDWI tail); water keeps
#: a green - NIR/SWIR gap in absolute units.  Measured on real water (median of the water pixels /
#: land median): 0.09 (Aral 2023, dark deep water, MODIS stretched to 8 bits) to 0.6 (Pucallpa river).
CONTRAST_FRACTION = 0.05


def otsu_threshold(v: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample (maximises the between-class variance)."""
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0 or v.min() == v.max():
        return float(v[0]) if len(v) else float("nan")
    h, e = np.histogram(v, bins=bins)
    c = (e[:-1] + e[1:]) / 2
    p = h / h.sum()
    w0 = np.cumsum(p)
    m = np.cumsum(p * c)
    with np.errstate(divide="ignore", invalid="ignore"):
        sb = (m[-1] * w0 - m) ** 2 / (w0 * (1 - w0))
    sb[~np.isfinite(sb)] = -1
    return float(c[int(np.argmax(sb))])


def ashman_d(v: np.ndarray, t: float) -> float:
    """Ashman's D of the two classes split at ``t`` (> 2 means clearly separated modes)."""
    a, b = v[v <= t], v[v > t]
    if len(a) < 2 or len(b) < 2:
        return 0.0
    return float(np.sqrt(2) * abs(a.mean() - b.mean()) / np.sqrt(a.var() + b.var() + 1e-12))


@dataclass
class WaterRule:
    """The per-pixel water test (physical units): ``index > t_index`` and ``dark < t_dark``; and the
    cluster contrast: a group of pixels is water only if its median ``green - dark > t_contrast``.

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

    def passes(self, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Boolean (n,) of the rows of ``X`` (physical units, shape (n, n_features)) that pass."""
        names = list(names)
        return self.test(X[:, names.index(self.index)], X[:, names.index(self.dark)])

    def test(self, index: np.ndarray, dark: np.ndarray) -> np.ndarray:
        """The test itself on the index and dark-band values (any shape, both the same): boolean."""
        return (index > self.t_index) & (dark < self.t_dark)

    def median_contrast(self, X: np.ndarray, names: Sequence[str]) -> float:
        """Median ``green - dark`` of the rows of ``X`` (physical units, shape (n, n_features)); nan if empty."""
        names = list(names)
        if len(X) == 0:
            return float("nan")
        return float(np.median(contrast(X[:, names.index(self.index)], X[:, names.index(self.dark)])))

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "dark_band": self.dark, "t_index": round(float(self.t_index), 6),
                "t_dark": None if not np.isfinite(self.t_dark) else round(float(self.t_dark), 6), "why": self.why,
                "t_contrast": float(self.t_contrast)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WaterRule":
        """The rule from :meth:`to_dict` or :meth:`Labeller.to_dict`'s ``rule`` (``t_dark`` None = no limit)."""
        t_dark = d.get("t_dark")
        return cls(str(d["index"]), str(d.get("dark_band", d.get("dark"))), float(d["t_index"]),
                   float("inf") if t_dark is None else float(t_dark), str(d.get("why", "")),
                   float(d.get("t_contrast", 0.0)))


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
    """Scene-adapted thresholds of the per-pixel water test, from a sample of pixels.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        Sampled pixels in physical units.
    names : sequence of str
        Feature names; needs ``ndwi`` (green + NIR) or ``mndwi`` (green + SWIR1).
    calibrated : bool
        Reflectance (fixed index threshold 0, dark band capped at 0.12 SWIR1 / 0.15 NIR) or
        digital numbers (index threshold by Otsu when the histogram is bimodal, clipped to 0.1..0.4).

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
    why = []
    if calibrated:
        t_index = 0.0
        why.append(f"{index.upper()} > 0 (reflectance)")
    else:
        t = otsu_threshold(W)
        d = ashman_d(W, t)
        low = W[W <= t]
        if np.isfinite(t) and d >= MIN_BIMODALITY and len(low) and float(np.median(low)) > INDEX_RANGE[0]:
            # both modes are water (an almost all-water scene: e.g. deep and turbid water): the split
            # is not water/land, so the floor is the threshold
            t_index = INDEX_RANGE[0]
            why.append(f"{index.upper()} > {t_index:.3f} (bimodal D={d:.1f} but both modes are water-like: the "
                       f"lower one has median {index.upper()} {float(np.median(low)):+.3f} > {INDEX_RANGE[0]})")
        elif np.isfinite(t) and d >= MIN_BIMODALITY:
            t_index = float(np.clip(t, *INDEX_RANGE))
            why.append(f"{index.upper()} > {t_index:.3f} (Otsu {t:+.3f} on the scene, bimodal D={d:.1f}, clipped to "
                       f"{INDEX_RANGE[0]}..{INDEX_RANGE[1]})")
        else:
            t_index = INDEX_RANGE[0]
            why.append(f"{index.upper()} > {t_index:.3f} (index not bimodal, D={d:.1f}: default)")
    land = W <= (0.0 if calibrated else INDEX_RANGE[0])  # clearly not water by the index
    t_contrast = 0.0
    if land.mean() >= 0.05:
        land_dark = float(np.median(D[land]))
        t_dark = DARK_FRACTION * land_dark
        why.append(f"{dark.upper()} < {t_dark:.4g} ({DARK_FRACTION} x the land's median {land_dark:.4g})")
        t_contrast = CONTRAST_FRACTION * land_dark
        why.append(f"water groups: median GREEN - {dark.upper()} > {t_contrast:.4g} ({CONTRAST_FRACTION} x the land's "
                   f"median {dark.upper()}: dark shadows have a noisy index but no contrast)")
    else:
        t_dark = float("inf")
        why.append(f"no {dark.upper()} limit: less than 5% of the scene is clearly land by the index")
    if calibrated and dark in DARK_CAP and t_dark > DARK_CAP[dark]:
        t_dark = DARK_CAP[dark]
        why.append(f"{dark.upper()} capped at {t_dark} reflectance")
    return WaterRule(index, dark, t_index, t_dark, "; ".join(why), t_contrast)


@dataclass
class Labeller:
    """Water decisions of one date: fine clusters judged by the rule, then per-pixel refinement.

    A pixel is water when (a) the *fine* cluster it belongs to is water (most of its sampled
    pixels pass ``rule``) and (b) the pixel itself passes ``rule``.  With
    ``method="clusters"`` a pixel is water when its reported cluster id is in ``manual``.
    The decision itself is :func:`rs_change.water.decide_rows`.
    """

    names: list[str]
    rule: Optional[WaterRule]
    fine: Any = None  # clustering.KMeans on the scaled features
    fine_water: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    manual: Optional[np.ndarray] = None
    fine_decisions: list[dict[str, Any]] = field(default_factory=list)

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
            fine = {"k": int(len(self.fine.cluster_centers_)), "metric": str(getattr(self.fine, "metric_", self.fine.metric)),
                    "centers": [[float(v) for v in row] for row in np.asarray(self.fine.cluster_centers_)]}
        return {
            "features": list(self.names),
            "rule": rule,
            "fine": fine,
            "fine_water": [int(i) for i in self.fine_water],
            "manual": None if self.manual is None else [int(i) for i in self.manual],
            "fine_clusters": [dict(d) for d in self.fine_decisions],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Labeller":
        """The labeller from :meth:`to_dict` (fine centres rebuilt as a predicting KMeans)."""
        from .model import kmeans_from_centers

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
        )


def fit_labeller(
    X: np.ndarray,
    Xs: np.ndarray,
    names: Sequence[str],
    labels: np.ndarray,
    k: int,
    *,
    calibrated: bool,
    method: str = "auto",
    water_ids: Optional[Sequence[int]] = None,
    seed: int = 0,
    k_fine: int = K_FINE,
    kmeans_kw: Optional[dict[str, Any]] = None,
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
    method : {"auto", "clusters"}, default "auto"
    water_ids : sequence of int, optional
        Reported cluster ids that are water, with ``method="clusters"``.
    seed : int, default 0
    k_fine : int, default 10
        Fine clusters used to find water, ``max(k, k_fine)``.
    kmeans_kw : dict, optional
        Extra :class:`~rs_change.clustering.KMeans` parameters (``n_init``, ``max_iter``, ``tol``).

    Returns
    -------
    decisions : list of ClusterDecision
        One per reported cluster; ``is_water`` when at least half its sampled pixels are water.
    labeller : Labeller
    """
    from .clustering import KMeans

    names = list(names)
    if method == "clusters":
        dec = label_clusters(X, names, labels, k, calibrated=calibrated, method=method, water_ids=water_ids)
        return dec, Labeller(names, None, manual=np.array([d.id for d in dec if d.is_water], np.int64))
    rule = water_rule(X, names, calibrated=calibrated)
    ok = rule.passes(X, names)
    kf = max(k, k_fine)
    fine, flab = None, labels
    if len(X) > kf and ok.any():
        # restarts on all FINE_SAMPLE rows (restart_size=None): with 10 clusters the local optima are many
        # and close, and the water mask is decided by these clusters, so it stays exactly as before the
        # faster two-stage restarts (reported clusters only) were introduced
        kw = {"restart_size": None, **(kmeans_kw or {})}
        fine = KMeans(n_clusters=kf, random_state=seed, sample_size=FINE_SAMPLE, **kw).fit(Xs)
        flab = fine.labels_
        nf = kf
    else:
        nf = k
    fdec = []
    fwater = []
    fc = describe_clusters(X, names, flab, nf)
    for c in range(nf):
        sel = flab == c
        n = int(sel.sum())
        frac = float(ok[sel].mean()) if n else 0.0
        con = rule.median_contrast(X[sel], names)
        isw = n > 0 and frac >= 0.5 and con > rule.t_contrast
        if isw:
            fwater.append(c)
        cen = fc[c]
        fdec.append({"id": c, "pixels": n, "is_water": bool(isw), "pass_fraction": round(frac, 4),
                     "contrast": round(con, 4) if np.isfinite(con) else None,
                     rule.index: round(cen[rule.index], 4), rule.dark: round(cen[rule.dark], 4)})
    lab = Labeller(names, rule, fine, np.array(fwater, np.int64), None, fdec)
    # fine.labels_ is fine.predict(Xs), so this is water.decide_rows on the sample without predicting again
    water = np.isin(flab, fwater) & ok
    cents = describe_clusters(X, names, labels, k)
    counts = np.bincount(labels, minlength=k)
    out = []
    for c in range(k):
        sel = labels == c
        if counts[c] == 0:
            out.append(ClusterDecision(c, 0, cents[c], False, "empty cluster"))
            continue
        wf = float(water[sel].mean())
        pf = float(ok[sel].mean())
        inside = sorted({int(i) for i in np.unique(flab[sel & water])}) if fine is not None else []
        isw = wf >= 0.5
        cen = cents[c]
        why = (f"{100 * wf:.1f}% of its sampled pixels are water ({'>=' if isw else '<'} 50%); "
               f"median {rule.index.upper()} {cen[rule.index]:+.3f} vs threshold {rule.t_index:.3f}, "
               f"median {rule.dark.upper()} {cen[rule.dark]:.4g} vs limit {rule.t_dark:.4g}")
        if inside:
            why += f"; water from fine clusters {inside} of {nf}"
        if wf == 0:
            why += "; no water"
        stats = {"water_fraction": wf, "rule_pass_fraction": pf, f"{rule.index}_median": cen[rule.index],
                 f"{rule.dark}_median": cen[rule.dark], "t_index": rule.t_index,
                 "t_dark": rule.t_dark if np.isfinite(rule.t_dark) else -1.0}
        out.append(ClusterDecision(c, int(counts[c]), cen, bool(isw), why, stats))
    if not water.any():
        log.info("no water: no fine cluster has a majority of pixels passing %s", rule.why)
        for d in out:
            d.why = "no water in the scene: no group of pixels passes the water test (" + rule.why + "); " + d.why
    return out, lab


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
            ClusterDecision(c, int(counts[c]), cents[c], c in ids, "named in labelling.water" if c in ids else "not named in labelling.water")
            for c in range(k)
        ]

    rule = water_rule(X, names, calibrated=calibrated)
    ok = rule.passes(X, names)
    out = []
    for c in range(k):
        cen = cents[c]
        if counts[c] == 0:
            out.append(ClusterDecision(c, 0, cen, False, "empty cluster"))
            continue
        frac = float(ok[labels == c].mean())
        water = frac >= 0.5
        why = (f"{100 * frac:.1f}% of its sampled pixels pass the water test ({'>=' if water else '<'} 50%): "
               f"{rule.why}")
        stats = {"rule_pass_fraction": frac, f"{rule.index}_median": cen[rule.index], f"{rule.dark}_median": cen[rule.dark],
                 "t_index": rule.t_index, "t_dark": rule.t_dark if np.isfinite(rule.t_dark) else -1.0}
        out.append(ClusterDecision(c, int(counts[c]), cen, bool(water), why, stats))
    if not any(d.is_water for d in out):
        log.info("no cluster looks like water")
    return out


def water_ids(decisions: Sequence[ClusterDecision]) -> list[int]:
    """Ids of the clusters decided to be water."""
    return [d.id for d in decisions if d.is_water]
