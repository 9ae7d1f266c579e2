"""Cluster ids of 8-bit scenes by table lookup: the labels of :meth:`rs_change.clustering.KMeans.predict`.

With 8-bit bands every feature of a pixel is a function of at most two raw values: a band role of
one (256 values), a normalised difference such as NDWI of two (65,536 pairs). So the term that
:func:`rs_change.clustering._nearest` adds for feature ``f`` and centre ``j`` — ``(x_f - c_jf)**2``
in float32 (``|x_f - c_jf|`` for manhattan and chebyshev) — can be computed once for every raw
value (or pair) with the very functions pass 2 runs on a block (:func:`~rs_change.sensors.raw_to_bands`,
:func:`~rs_change.features.feature_matrix`, :func:`~rs_change.clustering.apply_scaler`, the same
float32 subtract and multiply), as :func:`rs_change.water.rule_table` tabulates the water rule.

Exact tables: a pixel's distance to centre ``j`` is the per-feature tables' entries at its raw
values combined in the same feature order with the same float32 operation (add, or maximum for
chebyshev), bit-identical to predict's (:func:`exact_distances`). Four centres share one table
item (four float32 in 16 bytes, a complex128 view), so one gather fetches four centres' terms.

Fast path: five gathers per pixel cost about what predict's arithmetic costs, so the terms of
the features that share a pair of roles are summed into one table per pair (NAIP: (green, nir)
for green, nir and NDWI; (blue, red) for blue and red: two gathers). These sums round in another
order; :func:`predict_grouped` proves, pixel by pixel, that the order cannot change the nearest
centre (a relative margin of ``8·F·2**-24`` between the nearest and second-nearest distance) and
the pixels it cannot vouch for (near-ties, exact ties, non-finite sums) are decided by the exact
tables. The labels, ties included, are predict's.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from .clustering import apply_scaler
from .features import feature_matrix
from .sensors import observed_mask, raw_to_bands

log = logging.getLogger(__name__)

#: Pixels per chunk (64 rows of a 1024-pixel block): larger chunks spend less on numpy's per-call
#: overhead (16,384: +30% time; 4,096: +2.5x), with the same labels.
CHUNK = 65536

_PAIRS = {"ndwi": ("green", "nir"), "mndwi": ("green", "swir1"), "ndvi": ("nir", "red")}


def feature_roles(name: str, roles: Any) -> Optional[tuple[str, ...]]:
    """The raw band roles a feature is computed from, given the roles of the block.

    Parameters
    ----------
    name : str
        A band role or an index name (:data:`rs_change.features.INDICES`).
    roles : collection of str
        The roles of the block's raw bands.

    Returns
    -------
    tuple of str or None
        One role for a band, the two roles of a normalised difference, the (one or two) visible
        and NIR roles present for ``brightness``; None when the feature needs a role the block
        lacks or more than two roles.
    """
    if name in roles:
        return (name,)
    if name in _PAIRS:
        need = _PAIRS[name]
        return need if all(r in roles for r in need) else None
    if name == "brightness":
        vis = tuple(r for r in ("blue", "green", "red", "nir") if r in roles)
        return vis if 1 <= len(vis) <= 2 else None
    return None


@dataclass
class ClusterTables:
    """Per-feature tables of one k-means model (:func:`cluster_tables`).

    ``roles[f]`` are the raw roles of feature ``f``; ``tables[f]`` is a complex128 array of shape
    (n_groups, 256 ** len(roles[f])) whose item ``[g, v]`` holds, as four float32, the terms of
    centres ``4g .. 4g+3`` for raw value (or pair ``a << 8 | b``) ``v``; ``op`` combines the
    terms (np.add, or np.maximum for chebyshev); ``k`` centres; ``values[f]`` the feature values
    themselves (rows of the scaled feature matrix by :func:`feature_rows`).
    """

    roles: list[tuple[str, ...]]
    tables: list[np.ndarray]
    op: Any
    k: int
    #: ``values[f][v]``: the scaled float32 feature ``f`` itself for raw value (or pair) ``v``
    values: list[np.ndarray] = field(default_factory=list)
    #: the fast path: ``keys[i]`` (one or two roles) covers some features, ``sums[i]`` (complex128,
    #: (n_groups, 256 ** len(keys[i]))) holds their terms combined (any order: not bit-identical)
    keys: list[tuple[str, ...]] = field(default_factory=list)
    sums: list[np.ndarray] = field(default_factory=list)


def _feature_values(name: str, roles: tuple[str, ...], profile: Any, offset: float, scale: float) -> np.ndarray:
    """The scaled float32 value of feature ``name`` for every raw value (one role: 256) or pair
    (two roles: 65,536, index ``a << 8 | b``), through the functions pass 2 applies to a block.
    """
    v = np.arange(256, dtype=np.uint8)
    if len(roles) == 1:
        grid = {roles[0]: v}
    else:
        a, b = np.meshgrid(v, v, indexing="ij")
        grid = {roles[0]: a.reshape(-1), roles[1]: b.reshape(-1)}
    bands, _ = raw_to_bands(grid, profile, None)
    n = len(grid[roles[0]])
    Xp = feature_matrix(bands, np.ones(n, bool), [name], order="F")
    return apply_scaler(Xp, np.array([offset]), np.array([scale]))[:, 0]


def build_tables(model: Any, names: list[str], offset: np.ndarray, scale: np.ndarray, profile: Any,
                 raws: Mapping[str, np.ndarray]) -> Optional[ClusterTables]:
    """The tables of ``model`` for blocks like ``raws``, or None when they cannot be bit-identical.

    Parameters
    ----------
    model : rs_change.clustering.KMeans
        Fitted on ``apply_scaler(feature_matrix(bands, valid, names), offset, scale)``.
    names : list of str
        Feature names, in the model's column order.
    offset, scale : ndarray (n_features,)
        The scaler.
    profile : rs_change.sensors.BandProfile
        Converts raw values to physical units (:func:`~rs_change.sensors.raw_to_bands`).
    raws : dict of role to ndarray (h, w)
        A block's raw bands (only their roles and dtypes are read).

    Returns
    -------
    ClusterTables or None
        None unless every raw band is uint8, every feature depends on at most two of them, the
        model is a fitted KMeans of fewer than 255 centres with a known metric, and every tabulated
        value is finite.
    """
    from .clustering import KMeans

    if not isinstance(model, KMeans) or not hasattr(model, "cluster_centers_"):
        return None
    metric = getattr(model, "metric_", None)
    if metric not in ("euclidean", "manhattan", "chebyshev"):
        return None
    if not raws or any(np.asarray(r).dtype != np.uint8 for r in raws.values()):
        return None
    centers = np.asarray(model.cluster_centers_)
    k, nf = centers.shape
    if nf != len(names) or k >= 255 or nf == 0:
        return None
    roles = []
    for n in names:
        deps = feature_roles(n, raws.keys())
        if deps is None:
            return None
        roles.append(deps)
    c = centers.astype(np.float32, copy=False)  # _nearest's centres in the work dtype (float32 features)
    groups = -(-k // 4)
    tables, values = [], []
    for f, (n, deps) in enumerate(zip(names, roles)):
        x = _feature_values(n, deps, profile, float(offset[f]), float(scale[f]))
        if not np.isfinite(x).all():
            return None
        values.append(x)
        t4 = np.zeros((groups, len(x), 4), np.float32)
        for j in range(k):
            t = t4[j // 4, :, j % 4]
            d = np.subtract(x, c[j, f])  # as _nearest: subtract, then square (or abs) in float32
            if metric == "euclidean":
                np.multiply(d, d, out=d)
            else:
                np.abs(d, out=d)
            t[...] = d
        tables.append(t4.view(np.complex128).reshape(groups, len(x)))
    op = np.maximum if metric == "chebyshev" else np.add
    keys = group_keys(roles)
    sums = []
    for key in keys:
        acc = None
        for f, deps in enumerate(roles):
            if _home(key, deps, keys) != key:
                continue
            t4 = tables[f].view(np.float32).reshape(groups, -1, 4)[:, _key_map(key, deps)]
            acc = t4.copy() if acc is None else op(acc, t4, out=acc)
        assert acc is not None
        sums.append(np.ascontiguousarray(acc).view(np.complex128).reshape(groups, -1))
    return ClusterTables(roles, tables, op, k, values, keys, sums)


def group_keys(roles: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Table keys covering every feature: the role pairs of two-band features, then the band roles
    not in a pair two by two (one left over alone). NAIP's blue, green, red, nir, ndwi: (green,
    nir) for green, nir and ndwi, (blue, red) for blue and red: two lookups per pixel.
    """
    keys: list[tuple[str, ...]] = []
    for deps in roles:
        if len(deps) == 2 and deps not in keys and deps[::-1] not in keys:
            keys.append(deps)
    covered = {r for key in keys for r in key}
    single: list[str] = []
    for deps in roles:
        if len(deps) == 1 and deps[0] not in covered and deps[0] not in single:
            single.append(deps[0])
    keys += [tuple(single[i:i + 2]) for i in range(0, len(single), 2)]
    return keys


def _home(key: tuple[str, ...], deps: tuple[str, ...], keys: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The first key whose roles include every role of ``deps``."""
    return next(kk for kk in keys if set(deps) <= set(kk))


def _key_map(key: tuple[str, ...], deps: tuple[str, ...]) -> np.ndarray:
    """For every index of ``key``'s table, the index of the feature table of ``deps`` (a subset)."""
    if len(key) == 1:
        return np.arange(256)
    v = np.arange(65536)
    val = {key[0]: v >> 8, key[1]: v & 255}
    if len(deps) == 1:
        return val[deps[0]]
    return (val[deps[0]] << 8) | val[deps[1]]


def table_index(raws: Mapping[str, np.ndarray], roles: tuple[str, ...]) -> np.ndarray:
    """Table index of flat raw bands: the value of one role, ``a << 8 | b`` of two (intp)."""
    key = raws[roles[0]].astype(np.intp)
    if len(roles) == 2:
        key <<= 8
        key |= raws[roles[1]]
    return key


def exact_distances(ct: ClusterTables, idx: Mapping[tuple[str, ...], np.ndarray], n: int) -> np.ndarray:
    """Distances of ``n`` pixels to every centre from the per-feature tables: the float32 values of
    :func:`rs_change.clustering._nearest` (squared euclidean, L1 or L-inf), bit for bit.

    Parameters
    ----------
    ct : ClusterTables
    idx : dict of roles tuple to intp ndarray (n,)
        :func:`table_index` of every ``ct.roles`` entry.
    n : int

    Returns
    -------
    float32 ndarray (k, n)
    """
    out = np.empty((ct.k, n), np.float32)
    d = np.empty(n, np.complex128)
    t = np.empty(n, np.complex128)
    dv = d.view(np.float32).reshape(n, 4)
    tv = t.view(np.float32).reshape(n, 4)
    for g in range(ct.tables[0].shape[0]):
        np.take(ct.tables[0][g], idx[ct.roles[0]], out=d, mode="clip")  # indices are always in range
        for f in range(1, len(ct.roles)):
            np.take(ct.tables[f][g], idx[ct.roles[f]], out=t, mode="clip")
            ct.op(dv, tv, out=dv)  # feature by feature, in _nearest's order and operation
        kk = min(4, ct.k - 4 * g)
        out[4 * g:4 * g + kk] = dv[:, :kk].T
    return out


def predict_indexed(ct: ClusterTables, idx: Mapping[tuple[str, ...], np.ndarray], n: int) -> np.ndarray:
    """Nearest centre of ``n`` pixels from :func:`exact_distances`, chosen as
    :func:`rs_change.clustering._nearest` chooses (``labels[d < best] = j`` in increasing ``j``:
    ties go to the lowest index): uint8 (n,).
    """
    d = exact_distances(ct, idx, n)
    labels = np.zeros(n, np.uint8)
    best = d[0].copy()
    for j in range(1, ct.k):
        closer = d[j] < best
        labels[closer] = j
        np.minimum(best, d[j], out=best)
    return labels


def predict_grouped(ct: ClusterTables, kidx: Mapping[tuple[str, ...], np.ndarray], n: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of ``n`` pixels from the grouped tables (``ct.keys``/``ct.sums``: one lookup per
    key, two for NAIP), and the pixels whose label these distances cannot vouch for.

    The grouped distance ``d'_j`` sums the same float32 terms as predict's ``d_j`` in another
    order. Both are within ``γ·S_j`` of the exact sum ``S_j`` of the non-negative terms (``γ`` =
    (F-1)·2**-24 / (1 - (F-1)·2**-24), F features), so when the second smallest ``d'`` exceeds the
    smallest by more than ``8·F·2**-24`` of itself, every ``d_j`` of another centre exceeds the
    nearest centre's ``d``: the label is predict's. Other pixels (near-ties, non-finite sums) are
    ``unsure`` and go through the exact tables (:func:`predict_indexed`).

    Parameters
    ----------
    ct : ClusterTables
    kidx : dict of key to intp ndarray (n,)
        :func:`table_index` of every ``ct.keys`` entry.
    n : int

    Returns
    -------
    labels : uint8 ndarray (n,)
    unsure : bool ndarray (n,)
    """
    k, op = ct.k, ct.op
    lab = np.zeros(n, np.uint8)
    d = np.empty(n, np.complex128)
    t = np.empty(n, np.complex128)
    dv = d.view(np.float32).reshape(n, 4)
    tv = t.view(np.float32).reshape(n, 4)
    cols = np.empty((4, n), np.float32)
    best = np.empty(n, np.float32)
    second = np.full(n, np.inf, np.float32)
    tmp = np.empty(n, np.float32)
    closer = np.empty(n, bool)
    step = np.empty(n, np.uint8)
    for g in range(ct.sums[0].shape[0]):
        np.take(ct.sums[0][g], kidx[ct.keys[0]], out=d, mode="clip")  # indices are always in range
        for i in range(1, len(ct.keys)):
            np.take(ct.sums[i][g], kidx[ct.keys[i]], out=t, mode="clip")
            op(dv, tv, out=dv)
        kk = min(4, k - 4 * g)
        np.copyto(cols[:kk], dv[:, :kk].T)
        for jj in range(kk):
            j = 4 * g + jj
            col = cols[jj]
            if j == 0:
                best[...] = col
                continue
            np.less(col, best, out=closer)
            np.multiply(closer.view(np.uint8), np.uint8(j), out=step)
            np.maximum(lab, step, out=lab)
            np.minimum(second, np.maximum(best, col, out=tmp), out=second)
            np.minimum(best, col, out=best)
    if k == 1:
        return lab, np.zeros(n, bool)
    np.subtract(second, best, out=best)  # the gap
    np.multiply(second, np.float32(8 * len(ct.roles) * 2.0 ** -24), out=tmp)
    tmp += np.float32(1e-30)  # results in the subnormal range have absolute, not relative, errors
    unsure = np.greater(best, tmp, out=closer)
    np.logical_not(unsure, out=unsure)  # also NaN and inf gaps
    return lab, unsure


def labels_of(
    ct: ClusterTables, flat: Mapping[str, np.ndarray], kidx: Optional[dict[tuple[str, ...], np.ndarray]] = None
) -> np.ndarray:
    """Labels of flat uint8 bands (role -> (m,)): :func:`predict_grouped`, then
    :func:`predict_indexed` for its unsure pixels; ``kidx`` (computed when None) is filled with the
    :func:`table_index` of every ``ct.keys`` entry. The labels of ``model.predict``.
    """
    m = len(next(iter(flat.values())))
    if kidx is None:
        kidx = {}
    for key in ct.keys:
        if key not in kidx:
            kidx[key] = table_index(flat, key)
    labels, unsure = predict_grouped(ct, kidx, m)
    if unsure.any():
        sel = np.flatnonzero(unsure)
        sub = {r: v[sel] for r, v in flat.items()}
        labels[sel] = predict_indexed(ct, {deps: table_index(sub, deps) for deps in set(ct.roles)}, len(sel))
    return labels


def feature_rows(ct: ClusterTables, idx: Mapping[tuple[str, ...], np.ndarray], n: int) -> np.ndarray:
    """The scaled feature matrix of ``n`` pixels from their table indices: float32 (n, n_features),
    column-major, the same values as ``apply_scaler(feature_matrix(bands, valid, names, order="F"))``.
    """
    X = np.empty((n, len(ct.values)), np.float32, order="F")
    for f, v in enumerate(ct.values):
        np.take(v, idx[ct.roles[f]], out=X[:, f], mode="clip")
    return X


_CACHE: dict[Any, Optional[ClusterTables]] = {}


def model_tables(dm: Any, raws: Mapping[str, np.ndarray]) -> Optional[ClusterTables]:
    """The tables of a pass-1 :class:`~rs_change.fit.DateModel`'s k-means for blocks like
    ``raws``, or None (:func:`build_tables`).

    Cached by content (centres, metric, features, scaler, band profile, roles and dtypes), not by
    object: the process scheduler unpickles a new copy of every model with each block. At most 16
    tables at a time (3.4 MB each for NAIP and k = 3, 16 MB for k = 20).
    """
    km = dm.kmeans
    centers = getattr(km, "cluster_centers_", None)
    if centers is None:
        return None
    key = (str(getattr(km, "metric_", None)), np.asarray(centers).tobytes(), np.shape(centers), tuple(dm.names),
           np.asarray(dm.offset).tobytes(), np.asarray(dm.scale).tobytes(), repr(dm.source.profile),
           tuple((r, np.asarray(v).dtype.str) for r, v in raws.items()))
    if key in _CACHE:
        return _CACHE[key]
    ct = build_tables(km, list(dm.names), dm.offset, dm.scale, dm.source.profile, raws)
    if len(_CACHE) >= 16:  # a long-lived process running many runs: keep the cache small
        _CACHE.clear()
    _CACHE[key] = ct
    return ct


def classify_tables(dm: Any, dec: Any, raws: Mapping[str, np.ndarray], valid: np.ndarray,
                    rule_table: Any) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Cluster ids and water mask of an 8-bit block by table lookup, or None (nothing changed).

    The same (clusters, water) as :func:`rs_change.water.classify` with cluster ids:
    the date's k-means by :func:`model_tables`, and water as the date's
    :class:`~rs_change.decision.Decision` ``dec`` says: the pixel levels by the rule table
    (:func:`rs_change.water.rule_table`) and the fine clusters of the pixels of level 1 or 2 by
    their own predict, or the water cluster ids.

    Parameters
    ----------
    dm : rs_change.fit.DateModel
    dec : rs_change.decision.Decision
        ``decision_of(dm)``.
    raws : dict of role to ndarray (h, w)
        Raw bands (:meth:`~rs_change.readers.WindowReader.read_raw`).
    valid : bool ndarray (h, w)
        Pixels inside the files and the area of interest; updated in place with
        :func:`~rs_change.sensors.observed_mask` (only when a result is returned).
    rule_table : rs_change.water.RuleTable or None
        :func:`rs_change.water.rule_table` of the date.

    Returns
    -------
    (clusters, water) or None
        uint8 (h, w) each: cluster ids (255 unobserved) and water (1 water, 0 land, 255
        unobserved). None when a table cannot be built (not 8-bit, a feature of more than two
        bands, a per-pixel rule without a rule table, ...): use the plain path.
    """
    if dec.per_pixel and rule_table is None:
        return None
    ct = model_tables(dm, raws)
    if ct is None:
        return None
    fine = None
    if dec.groups:
        # the fine clusters (about 10 centres) of the pixels that pass the rule: their own predict
        # on their scaled feature rows, gathered from ct.values (faster than 3 groups of tables)
        fine = dec.fine
        if getattr(fine, "n_jobs", 1) != 1:  # blocks already run in parallel (water._single_thread)
            fine = copy.copy(fine)
            fine.n_jobs = 1
    prof, nd = dm.source.profile, dm.source.nodata
    h, w = valid.shape
    clusters = np.full((h, w), 255, np.uint8)
    water = np.full((h, w), 255, np.uint8)
    rows = max(1, CHUNK // max(w, 1))
    roles = set(ct.roles)
    for s in range(0, h, rows):
        e = min(s + rows, h)
        sub = {r: v[s:e] for r, v in raws.items()}
        vs = valid[s:e]
        vs &= observed_mask(sub, prof, nd)
        if not vs.any():
            continue
        flat = {r: np.ascontiguousarray(v).reshape(-1) for r, v in sub.items()}
        kidx: dict[tuple[str, ...], np.ndarray] = {}
        labels = labels_of(ct, flat, kidx)
        every = bool(vs.all())
        cv, wv = clusters[s:e].reshape(-1), water[s:e].reshape(-1)
        vflat = vs.reshape(-1)
        if every:
            cv[...] = labels
        else:
            np.copyto(cv, labels, where=vflat)
        if dec.per_pixel:
            ra, rb = rule_table.a, rule_table.b
            key = kidx.get((ra, rb))
            if key is None:
                key = table_index(flat, (ra, rb))
            lev = np.take(rule_table.levels, key, mode="clip")
            lev *= vflat
            if fine is None:
                wd = dec.of_levels(lev).view(np.uint8)
            else:
                wd = np.zeros(len(lev), np.uint8)
                sel = np.flatnonzero(lev)
                if len(sel):
                    picked = {r: v[sel] for r, v in flat.items()}
                    fl = fine.predict(feature_rows(ct, {deps: table_index(picked, deps) for deps in roles}, len(sel)))
                    wd[sel] = dec.of_levels(lev[sel], fl)
        else:
            wd = dec.of_clusters(labels).view(np.uint8)
        if every:
            wv[...] = wd
        else:
            np.copyto(wv, wd, where=vflat)
    return clusters, water
