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

    index = "mndwi" if "mndwi" in names else "ndwi" if "ndwi" in names else None
    if index is None:
        raise ConfigError("labelling: water needs green and NIR (or SWIR) bands; name them in the scene's `bands`")
    ii = names.index(index)
    nir_i = names.index("nir") if "nir" in names else None
    scene_nir = float(np.median(X[:, nir_i])) if nir_i is not None else None
    out = []
    for c in range(k):
        cen = cents[c]
        if counts[c] == 0:
            out.append(ClusterDecision(c, 0, cen, False, "empty cluster"))
            continue
        sel = X[labels == c]
        frac = float(np.mean(sel[:, ii] > 0))
        stats = {f"{index}_median": cen[index], f"{index}_positive_fraction": frac}
        reasons = []
        water = cen[index] > 0 and frac >= 0.5
        reasons.append(f"median {index.upper()} {cen[index]:+.3f} {'>' if cen[index] > 0 else '<='} 0")
        if water and nir_i is not None and scene_nir is not None:
            dark = cen["nir"] < scene_nir
            stats["nir_median"] = cen["nir"]
            stats["scene_nir_median"] = scene_nir
            if not dark:
                water = False
                reasons.append("but NIR is not darker than the scene's median")
            else:
                reasons.append("NIR darker than the scene's median")
        out.append(ClusterDecision(c, int(counts[c]), cen, bool(water), "; ".join(reasons), stats))
    if not any(d.is_water for d in out):
        log.info("no cluster looks like water")
    return out


def water_ids(decisions: Sequence[ClusterDecision]) -> list[int]:
    """Ids of the clusters decided to be water."""
    return [d.id for d in decisions if d.is_water]
