"""The water decision: which pixels of a block are water under a fitted model.  Pure.

One definition, :func:`decide_rows`, on feature rows; :func:`classify` applies it to a block of
bands in physical units (the reference path), and :func:`classify_raw` to raw band values, where
8-bit bands take the compiled loop (:mod:`rs_change.kernels`) or the lookup tables
(:mod:`rs_change.lut`) with the same results bit for bit (``tests/test_water.py``).  The pipeline,
the Python API and the report call these functions and nothing else to decide water.

A model here is anything with ``names``, ``offset``, ``scale`` (the scaler), ``kmeans`` (the
reported clusters), ``water_ids`` and ``labeller`` (a :class:`~rs_change.labelling.Labeller` or
None): a :class:`~rs_change.model.WaterModel` or pass 1's ``DateModel``.  :func:`classify_raw`
also needs ``source`` (the scene's band profile and nodata, to convert raw values).

How a model decides is stated once, in :mod:`rs_change.decision` (:func:`~rs_change.decision.decision_of`):
whole clusters, the pixels' own levels, or levels against their fine groups' needs.  Every path
here takes its answers from that :class:`~rs_change.decision.Decision`.

With ``fraction`` (a uint8 array of the block's shape), :func:`classify` and :func:`classify_raw`
also give each pixel's water fraction (0-100, 255 unobserved; :meth:`~rs_change.decision.Decision.percent`),
the same bytes on every path.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from . import kernels
from .clustering import apply_scaler
from .decision import FRACTION_NODATA, Decision, decision_of
from .features import feature_matrix, spectral_index
from .lut import classify_tables, feature_rows, model_tables, table_index
from .sensors import observed_mask, raw_to_bands

#: Water mask values: 1 water, 0 land, 255 unobserved.
NODATA = 255

#: Rows per strip of a block in the classification: every temporary (a float32 band, a feature
#: column, a distance) of a 1024-pixel-wide strip is 256 kB and stays in the CPU's cache.
STRIP_ROWS = 64


def decide_rows(model: Any, X: np.ndarray, Xs: Optional[np.ndarray] = None, labels: Optional[np.ndarray] = None
                ) -> np.ndarray:
    """Water (bool, shape (n,)) of feature rows: the definition every other path reproduces.

    Parameters
    ----------
    model : WaterModel or DateModel
    X : numpy.ndarray of shape (n, n_features)
        Features in physical units, in ``model.names`` order.
    Xs : numpy.ndarray of shape (n, n_features), optional
        The same rows scaled (``apply_scaler(X, model.offset, model.scale)``); computed when needed.
    labels : numpy.ndarray of shape (n,), optional
        Reported cluster ids; predicted when needed.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
    """
    X = np.asarray(X)
    dec = decision_of(model)
    if not dec.per_pixel:
        if labels is None:
            labels = _single_thread(model.kmeans).predict(_scaled(model, X, Xs))
        return dec.of_clusters(labels)
    lev = dec.rule.levels(X, model.names)
    if not dec.groups:
        return dec.of_levels(lev)
    idx = np.flatnonzero(lev)
    out = np.zeros(len(X), bool)
    if len(idx):
        Xs = _scaled(model, X, Xs)
        out[idx] = dec.of_levels(lev[idx], _single_thread(dec.fine).predict(Xs[idx]))
    return out


def _scaled(model: Any, X: np.ndarray, Xs: Optional[np.ndarray]) -> np.ndarray:
    return apply_scaler(X, model.offset, model.scale) if Xs is None else Xs


def classify(model: Any, bands: dict[str, np.ndarray], valid: np.ndarray, clusters: bool = True,
             fraction: Optional[np.ndarray] = None) -> tuple[Optional[np.ndarray], np.ndarray]:
    """Cluster ids (255 unobserved) and water mask (1 water, 0 land, 255 unobserved) of a block.

    Parameters
    ----------
    model : WaterModel or DateModel
    bands : dict of role to float32 (h, w)
        Bands in physical units (:meth:`rs_change.readers.WindowReader.read`).
    valid : bool (h, w)
        Observed pixels (not changed).
    clusters : bool, default True
        False skips the cluster ids (None is returned in their place) where water does not depend
        on them: a per-pixel labeller then tests its rule on every pixel and predicts fine clusters
        for the pixels that pass it only.  The water mask is the same either way.
    fraction : uint8 ndarray (h, w), optional
        Filled with each pixel's water fraction (0-100, 255 unobserved;
        :meth:`rs_change.decision.Decision.percent`).

    Returns
    -------
    clusters : uint8 (h, w) or None
    water : uint8 (h, w)
    """
    def strip(s: int, e: int) -> tuple[dict[str, np.ndarray], Optional[np.ndarray]]:
        return {k: v[s:e] for k, v in bands.items()}, None

    return _classify_strips(model, strip, valid.copy(), clusters, fraction)


def classify_raw(dm: Any, raws: dict[str, np.ndarray], valid: np.ndarray, clusters: bool = True,
                 fraction: Optional[np.ndarray] = None) -> tuple[Optional[np.ndarray], np.ndarray]:
    """:func:`classify` of raw band values (:meth:`~rs_change.readers.WindowReader.read_raw`).

    ``dm.source`` gives the band profile and nodata that convert raw values to physical units;
    ``valid`` (updated in place) loses the pixels that :func:`~rs_change.sensors.observed_mask`
    finds unobserved (nodata, fill, range).  8-bit bands take the compiled loop or the lookup
    tables, which give :func:`classify`'s results bit for bit; other bands are converted strip by
    strip and classified by :func:`classify`'s own loop.  ``fraction``: as :func:`classify`.
    """
    prof, nd = dm.source.profile, dm.source.nodata

    def strip(s: int, e: int) -> tuple[dict[str, np.ndarray], Optional[np.ndarray]]:
        return raw_to_bands({k: v[s:e] for k, v in raws.items()}, prof, nd)

    dec = decision_of(dm)
    rule = rule_table(dm, raws)
    if kernels.ENABLED and all(v.dtype == np.uint8 for v in raws.values()):
        done = kernels.classify_u8(dm, dec, raws, valid, model_tables(dm, raws), rule, clusters, fraction)
        if done is not None:
            return done
    if not clusters and rule is not None:
        water = _water_from_table(dm, dec, raws, valid, rule)
        if fraction is not None:
            fraction_from_table(dec, raws, water, rule, fraction)
        return None, water
    if clusters:
        tabled = classify_tables(dm, dec, raws, valid, rule)
        if tabled is not None:
            if fraction is not None:
                fraction_from_table(dec, raws, tabled[1], rule, fraction)
            return tabled
    return _classify_strips(dm, strip, valid, clusters, fraction)


class RuleTable(NamedTuple):
    """A per-pixel rule tabulated on two 8-bit bands (:func:`rule_table`): ``levels[a << 8 | b]``
    is the level and ``percent[a << 8 | b]`` the unmixed water fraction of raw values a (role
    ``a``) and b (role ``b``).
    """

    a: str
    b: str
    levels: np.ndarray
    percent: np.ndarray


def rule_table(dm: Any, raws: dict[str, np.ndarray]) -> Optional[RuleTable]:
    """The :class:`RuleTable` of a date whose water is decided per pixel by a rule that reads two
    8-bit bands, computed with the same functions as on a block (so the same levels and
    percents); None otherwise.
    """
    dec = decision_of(dm)
    if not dec.per_pixel:
        return None
    rule = dec.rule
    needs = {"ndwi": ("green", "nir"), "mndwi": ("green", "swir1")}.get(rule.index)
    if needs is None or rule.dark not in needs or any(r not in raws or raws[r].dtype != np.uint8 for r in needs):
        return None
    # keyed by what the verdicts depend on, not by the model object: the process scheduler
    # unpickles a new copy of every model with each block
    key = (repr(rule), repr(dm.source.profile), needs)
    table = _TABLES.get(key)
    if table is None:
        a, b = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8), indexing="ij")
        grid = {needs[0]: a.reshape(-1), needs[1]: b.reshape(-1)}
        bands, _ = raw_to_bands(grid, dm.source.profile, None)
        index, dark = _rule_inputs(rule, bands)
        table = RuleTable(needs[0], needs[1], rule.level(index, dark), rule.percent(index, dark))
        if len(_TABLES) >= 64:  # a long-lived process running many runs: keep the cache small
            _TABLES.clear()
        _TABLES[key] = table
    return table


_TABLES: dict[Any, RuleTable] = {}


def fraction_from_table(dec: Decision, raws: dict[str, np.ndarray], water: np.ndarray, rt: Optional[RuleTable],
                        out: np.ndarray) -> None:
    """The water fraction of a classified 8-bit block into ``out`` (uint8 (h, w)): the rule
    table's percents (none for a decision by clusters) bounded by ``water``; 255 where ``water``
    is.
    """
    seen = water != FRACTION_NODATA
    unmixed = None
    if dec.per_pixel and rt is not None:
        unmixed = rt.percent[table_index({rt.a: raws[rt.a][seen], rt.b: raws[rt.b][seen]}, (rt.a, rt.b))]
    out[...] = FRACTION_NODATA
    out[seen] = dec.percent(water[seen], unmixed)


def _water_from_table(dm: Any, dec: Decision, raws: dict[str, np.ndarray], valid: np.ndarray, rt: RuleTable
                      ) -> np.ndarray:
    """The water mask of a block whose pixel levels are a table of two 8-bit bands
    (:func:`rule_table`); the bands are converted to physical units for the pixels of level 1 or 2
    only (their fine clusters).  ``valid`` is updated in place with the observed mask.
    """
    ra, rb, table = rt.a, rt.b, rt.levels
    h, w = valid.shape
    water = np.zeros((h, w), np.uint8)  # land; unobserved pixels are set at the end
    prof, nd = dm.source.profile, dm.source.nodata
    idx_parts: list[np.ndarray] = []
    for s in range(0, h, STRIP_ROWS):
        e = min(s + STRIP_ROWS, h)
        sub = {k: v[s:e] for k, v in raws.items()}
        vs = valid[s:e]
        vs &= observed_mask(sub, prof, nd)
        key = sub[ra].astype(np.uint16)
        key <<= 8
        key |= sub[rb]
        lev = table[key]
        lev *= vs
        if not dec.groups:
            water[s:e] = dec.of_levels(lev)
        elif lev.any():
            idx_parts.append(np.flatnonzero(lev) + s * w)
    if idx_parts:
        idx = np.concatenate(idx_parts)
        picked = {k: v.reshape(-1)[idx] for k, v in raws.items()}
        ct = model_tables(dm, raws)  # 8-bit bands: the scaled features by table lookup, the same values
        if ct is not None:
            X = feature_rows(ct, {deps: table_index(picked, deps) for deps in set(ct.roles)}, len(idx))
        else:
            bands, _ = raw_to_bands(picked, prof, nd)
            X = apply_scaler(feature_matrix(bands, np.ones(len(idx), bool), dm.names, order="F"), dm.offset, dm.scale)
        fl = _single_thread(dec.fine).predict(X)
        key = (raws[ra].reshape(-1)[idx].astype(np.uint16) << 8) | raws[rb].reshape(-1)[idx]
        water.reshape(-1)[idx] = dec.of_levels(table[key], fl)
    np.copyto(water, NODATA, where=~valid)
    return water


def _classify_strips(
    model: Any, strip: Callable[[int, int], tuple[dict[str, np.ndarray], Optional[np.ndarray]]],
    valid: np.ndarray, clusters: bool, fraction: Optional[np.ndarray] = None,
) -> tuple[Optional[np.ndarray], np.ndarray]:
    """The classification of one block, :data:`STRIP_ROWS` rows at a time (``strip(s, e)`` gives the
    bands of rows s..e and their observed mask or None); the fine clusters of the pixels that pass
    a per-pixel rule are predicted once for the whole block.  Row-wise the same arithmetic as
    :func:`decide_rows` on the whole block, so the same pixels.  ``fraction`` (uint8 (h, w)) is
    filled with the water fraction.
    """
    h, w = valid.shape
    water = np.full((h, w), NODATA, dtype=np.uint8)
    lab_out = np.full((h, w), 255, dtype=np.uint8) if clusters else None
    dec = decision_of(model)
    pp = dec.per_pixel
    unmixed = np.zeros((h, w), np.uint8) if fraction is not None and pp else None
    need_labels = clusters or not pp
    km = _single_thread(model.kmeans)
    flat_water = water.reshape(-1)
    ok_rows: list[np.ndarray] = []
    ok_lev: list[np.ndarray] = []
    ok_idx: list[np.ndarray] = []
    for s in range(0, h, STRIP_ROWS):
        e = min(s + STRIP_ROWS, h)
        bands, observed = strip(s, e)
        vs = valid[s:e]
        if observed is not None:
            vs &= observed
        if not vs.any():
            continue
        wv = water[s:e]
        wv[vs] = 0
        labels = None
        if need_labels:
            Xp = feature_matrix(bands, vs, model.names, order="F")  # column-major: no transposes in predict
            X = apply_scaler(Xp, model.offset, model.scale)
            labels = km.predict(X)
            if lab_out is not None:
                lab_out[s:e][vs] = labels.astype(np.uint8)
            if pp:  # the levels on the feature columns already computed, as decide_rows does
                names = list(model.names)
                index, dark = Xp[:, names.index(dec.rule.index)], Xp[:, names.index(dec.rule.dark)]
                lv = dec.rule.level(index, dark)
                if unmixed is not None:
                    unmixed[s:e][vs] = dec.rule.percent(index, dark)
                if not dec.groups:
                    wv[vs] = dec.of_levels(lv)
                elif lv.any():
                    okv = lv != 0
                    ok_rows.append(X[okv])
                    ok_lev.append(lv[okv])
                    ok_idx.append(np.flatnonzero(vs)[okv] + s * w)
        elif pp:
            index, dark = _rule_inputs(dec.rule, bands)
            lv = dec.rule.level(index, dark)
            lv *= vs
            if unmixed is not None:
                unmixed[s:e] = dec.rule.percent(index, dark)
            if not dec.groups:
                wv[dec.of_levels(lv)] = 1
            elif lv.any():
                ok = lv != 0
                ok_rows.append(
                    apply_scaler(feature_matrix(bands, ok, model.names, order="F"), model.offset, model.scale)
                )
                ok_lev.append(lv[ok])
                ok_idx.append(np.flatnonzero(ok) + s * w)
        if not pp:
            assert labels is not None  # not per pixel: need_labels, so the strip's labels were predicted
            wv[vs] = dec.of_clusters(labels)
    if ok_rows:
        fl = _single_thread(dec.fine).predict(np.asfortranarray(np.concatenate(ok_rows)))
        flat_water[np.concatenate(ok_idx)] = dec.of_levels(np.concatenate(ok_lev), fl)
    if fraction is not None:
        seen = water != NODATA
        fraction[...] = FRACTION_NODATA
        fraction[seen] = dec.percent(water[seen], None if unmixed is None else unmixed[seen])
    return lab_out, water


def _single_thread(km: Any) -> Any:
    """``km`` predicting in the calling thread: blocks already run in parallel, and a thread pool
    per block only adds waiting (the same labels).
    """
    if getattr(km, "n_jobs", 1) == 1:
        return km
    one = copy.copy(km)
    one.n_jobs = 1
    return one


def _rule_inputs(rule: Any, bands: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The index and dark band a :class:`~rs_change.labelling.WaterRule` reads, from a block's
    bands: the same float32 values as the feature matrix's columns, without building the matrix.
    """
    def feat(name: str) -> np.ndarray:
        return bands[name] if name in bands else spectral_index(bands, name)

    return feat(rule.index), feat(rule.dark)
