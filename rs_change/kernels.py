"""Compiled pixel loops of pass 2 (the C extension ``rs_change._kernels``), bit-identical to the
numpy code they stand in for.

Pass 2 runs a handful of numpy operations over every pixel of every block: the bilinear shift of a
translated date (:func:`rs_change.readers._lerp_strips`), the observed mask, the water rule, the
cluster ids and fine clusters (:func:`rs_change.water._water_from_table`,
:func:`rs_change.lut.classify_tables`), the joint-state histogram
(:meth:`rs_change.change.JointStates.histogram_rows`). Each of those numpy operations reads and
writes a whole strip of memory; here each stage is one loop over a row that keeps a pixel in
registers, with the GIL released so that the block threads use every core. The polygons of the
written rasters are traced here too (:func:`outlines`: GDAL's polygonize's polygons, vertex for
vertex, at a fraction of its cost).

The arithmetic is the numpy code's, operation for operation and in the same float type (float32
features, distances and interpolation; float64 area sums in pixel order), compiled without
fast-math or fused multiply-adds, so the outputs are the numpy path's bit for bit
(``tests/test_kernels.py`` compares them, ties and nodata included). The numpy path stays: it
runs where the extension was not built (an install without a C compiler), for data the loops do
not cover (not 8-bit, a feature of more than two bands, nodata inside a shifted window, clamped
columns at a raster's edge), and with ``RS_CHANGE_KERNELS=0`` in the environment.

Each wrapper checks its arguments and returns None (or False) when it does not apply; the caller
then runs its numpy code.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import numpy as np

log = logging.getLogger(__name__)

try:
    if os.environ.get("RS_CHANGE_KERNELS", "1").strip().lower() in ("0", "false", "no", "off"):
        raise ImportError("turned off by RS_CHANGE_KERNELS")
    from . import _kernels

    _k: Any = _kernels  # the compiled module, or None below
except ImportError as exc:  # not built, or turned off: the numpy path everywhere
    _k = None
    log.debug("compiled loops off: %s", exc)

#: The most band roles :func:`classify_u8` takes in one call (the extension's limit); blocks with
#: more take the lookup tables or the numpy path.
MAX_BANDS = int(getattr(_k, "MAX_BANDS", 0))
#: The most water masks (dates) :func:`region_sums` takes in one call; more take the numpy path.
MAX_MASKS = int(getattr(_k, "MAX_MASKS", 0))

#: Whether pass 2 uses the compiled loops (the extension is built and not turned off). Read at
#: call time; tests switch it to compare both paths.
ENABLED = _k is not None

_METRICS = {"euclidean": 0, "manhattan": 1, "chebyshev": 2}


def lerp_u8(src: np.ndarray, r0: np.ndarray, r1: np.ndarray, c0: np.ndarray, c1: np.ndarray,
            fx: float, fy: float, nd: Optional[float]) -> Optional[np.ndarray]:
    """:func:`rs_change.readers._lerp_strips` followed by ``_avoid`` for a uint8 source.

    Parameters are ``_lerp_strips``'s (source (bands, rows, cols), row and column neighbours,
    fractional offsets) and the nodata value. Returns the shifted (bands, len(r0), len(c0))
    uint8 array, or None where the loop does not apply: off, not uint8, a pixel of the source
    whose every band is ``nd`` (the renormalised nodata path), columns that are not consecutive
    (clamped at the raster's edge).
    """
    if not ENABLED or src.dtype != np.uint8 or src.ndim != 3 or len(r0) == 0 or len(c0) == 0:
        return None
    if nd is not None and (np.isnan(nd) or nd != int(nd) or not 0 <= nd <= 255):
        nd = None  # never equal to a uint8 value
    ndi = -1 if nd is None else int(nd)
    s = np.ascontiguousarray(src)
    nb, sh, sw = s.shape
    c0 = np.asarray(c0)
    if not (int(c0[-1]) - int(c0[0]) == len(c0) - 1 and bool(np.all(np.diff(c0) == 1))):
        return None
    if fx != 0 and not np.array_equal(c1, c0 + 1):
        return None
    if int(c0[0]) < 0 or int(c0[-1]) + (fx != 0) >= sw or int(min(np.min(r0), np.min(r1))) < 0 \
            or int(max(np.max(r0), np.max(r1))) >= sh:
        return None
    if ndi >= 0 and _k.any_all_nodata(s, nb, sh * sw, ndi):
        return None
    out = np.empty((nb, len(r0), len(c0)), np.uint8)
    rr0 = np.ascontiguousarray(r0, dtype=np.int64)
    rr1 = np.ascontiguousarray(r1 if fy != 0 else r0, dtype=np.int64)
    # numpy's float32 array * Python float rounds the weight to float32 first (NEP 50)
    _k.lerp_u8(s, nb, sh, sw, rr0, rr1, int(c0[0]), float(np.float32(1.0 - fx)), float(np.float32(fx)),
               float(np.float32(1.0 - fy)), float(np.float32(fy)), fx != 0, fy != 0, ndi, out, len(r0), len(c0))
    return out


def _centres(model: Any) -> Optional[tuple[np.ndarray, int]]:
    """(float32 centres, metric code) of a fitted :class:`~rs_change.clustering.KMeans` of 1 to 254
    centres, or None.
    """
    from .clustering import KMeans

    if not isinstance(model, KMeans) or not hasattr(model, "cluster_centers_"):
        return None
    metric = _METRICS.get(str(getattr(model, "metric_", None)))
    c = np.ascontiguousarray(np.asarray(model.cluster_centers_).astype(np.float32, copy=False))
    if metric is None or c.ndim != 2 or not 0 < c.shape[0] < 255:
        return None
    return c, metric


def observed_tables(roles: list[str], profile: Any, nodata: Optional[float]) -> tuple[np.ndarray, bool, int]:
    """:func:`rs_change.sensors.observed_mask` of uint8 bands as tables.

    Returns
    -------
    okv : uint8 (n_roles, 256)
        1 where a band's value passes that band's own tests (fill value, valid range, and the
        per-band nodata test unless nodata is tested on every band at once).
    every : bool
        Whether a pixel whose every band holds the nodata value is unobserved
        (``nodata_all_bands`` with a nodata value a uint8 band can hold).
    nd : int
        That nodata value (-1: none).
    """
    from .sensors import observed_mask

    v = np.arange(256, dtype=np.uint8)
    nd = None if nodata is None or np.isnan(nodata) else float(nodata)
    in_u8 = nd is not None and nd == int(nd) and 0 <= nd <= 255
    every = bool(profile.nodata_all_bands) and nd is not None
    okv = np.empty((len(roles), 256), np.uint8)
    for b, r in enumerate(roles):
        okv[b] = observed_mask({r: v}, profile, None if every else nodata)
    return okv, every and in_u8, int(nd) if in_u8 and nd is not None else -1


def classify_u8(dm: Any, dec: Any, raws: dict[str, np.ndarray], valid: np.ndarray, ct: Any, rule_table: Any,
                clusters: bool, fraction: Optional[np.ndarray] = None
                ) -> Optional[tuple[Optional[np.ndarray], np.ndarray]]:
    """(cluster ids or None, water) of an 8-bit block in one compiled loop per row, or None.

    The results of :func:`rs_change.lut.classify_tables` (with ``clusters``) or of
    :func:`rs_change.water._water_from_table` (a summary-only run): the observed mask
    (:func:`observed_tables`; ``valid`` is updated in place), the cluster ids from the scaled
    features (``ct.values``, the values :func:`~rs_change.lut.feature_rows` gathers) and the
    date's centres, and water as the :class:`~rs_change.decision.Decision` ``dec`` says (its
    :meth:`~rs_change.decision.Decision.encoding`: the rule table's levels against the needs of
    the pixels' fine groups, or the water cluster ids).

    Parameters
    ----------
    dm : rs_change.fit.DateModel
    dec : rs_change.decision.Decision
        ``decision_of(dm)``.
    raws : dict of role to uint8 ndarray (h, w)
    valid : bool ndarray (h, w)
        Updated in place (only when a result is returned).
    ct : rs_change.lut.ClusterTables or None
        :func:`rs_change.lut.model_tables` of the date.
    rule_table : rs_change.water.RuleTable or None
        :func:`rs_change.water.rule_table`.
    clusters : bool
        Also the cluster ids (255 unobserved).
    fraction : uint8 ndarray (h, w), optional
        Filled with the water fraction (:meth:`rs_change.decision.Decision.percent`, 255
        unobserved), the bytes of :func:`rs_change.water.fraction_from_table`.

    Returns
    -------
    (clusters or None, water) or None
        uint8 (h, w): cluster ids, water (1 water, 0 land, 255 unobserved). None when the loop
        does not apply (off, not 8-bit, no tables, more than :data:`MAX_BANDS` bands, ...).
    """
    if (
        not ENABLED
        or ct is None
        or not raws
        or len(raws) > MAX_BANDS
        or valid.ndim != 2
        or valid.dtype != bool
        or not valid.flags.c_contiguous
        or any(v.dtype != np.uint8 or v.shape != valid.shape for v in raws.values())
    ):
        return None
    if fraction is not None and (fraction.shape != valid.shape or fraction.dtype != np.uint8
                                 or not fraction.flags.c_contiguous):
        return None
    from .decision import FRACTION_NODATA, FRACTION_WATER

    if dec.per_pixel and rule_table is None:
        return None
    main = _centres(dm.kmeans)
    roles = list(raws)
    pos = {r: i for i, r in enumerate(roles)}
    nf = len(ct.values)
    if main is None or main[0].shape[1] != nf or nf == 0 or any(r not in pos for deps in ct.roles for r in deps):
        return None
    mode, need, id_tab = dec.encoding()
    fine_c, fine_metric = np.zeros((1, nf), np.float32), 0
    rule, pct, ia, ib = np.zeros(65536, np.uint8), np.zeros(65536, np.uint8), 0, 0
    if dec.per_pixel:
        ra, rb = rule_table.a, rule_table.b
        if ra not in pos or rb not in pos or len(rule_table.levels) != 65536 or len(rule_table.percent) != 65536:
            return None
        rule, ia, ib = np.ascontiguousarray(rule_table.levels).view(np.uint8), pos[ra], pos[rb]
        pct = np.ascontiguousarray(rule_table.percent).view(np.uint8)
        if dec.groups:
            fine = _centres(dec.fine)
            if fine is None or fine[0].shape[1] != nf:
                return None
            fine_c, fine_metric = fine
    vals = np.zeros((nf, 65536), np.float32)
    for f, v in enumerate(ct.values):
        vals[f, :len(v)] = v
    vr0 = np.array([pos[d[0]] for d in ct.roles], np.int64)
    vr1 = np.array([pos[d[1]] if len(d) == 2 else -1 for d in ct.roles], np.int64)
    okv, nd_all, nd = observed_tables(roles, dm.source.profile, dm.source.nodata)
    h, w = valid.shape
    water = np.full((h, w), 255, np.uint8)
    cl = np.full((h, w), 255, np.uint8) if clusters else np.zeros(1, np.uint8)
    frac = fraction if fraction is not None else np.zeros(1, np.uint8)
    if fraction is not None:
        fraction[...] = FRACTION_NODATA
    bands = tuple(np.ascontiguousarray(raws[r]) for r in roles)
    _k.classify_u8(bands, h, w, valid.view(np.uint8), okv, not bool(okv.all()), nd_all, nd, vals, nf, vr0, vr1,
                   main[0], main[0].shape[0], main[1], clusters, rule, ia, ib, fine_c, fine_c.shape[0], fine_metric,
                   np.ascontiguousarray(need, np.uint8), np.ascontiguousarray(id_tab, np.uint8), mode, water, cl,
                   pct, FRACTION_WATER, fraction is not None, frac)
    return (cl if clusters else None), water


def histogram_add(code: np.ndarray, pa: np.ndarray, out: np.ndarray) -> bool:
    """Add ``np.bincount(code)`` and ``np.bincount(code, weights=pa)`` to ``out[0]`` and
    ``out[1]``: the same float64 sums in the same order.

    Parameters
    ----------
    code : uint8 or uint16 (rows, w)
    pa : float64 (rows, 1) or (rows, w)
        Pixel areas.
    out : float64 (2, n_codes), C-contiguous
        Codes must be below n_codes.

    Returns
    -------
    bool
        False (nothing added) when the loop does not apply.
    """
    if not ENABLED or code.ndim != 2 or code.dtype not in (np.uint8, np.uint16) or pa.ndim != 2 \
            or pa.shape[0] != code.shape[0] or pa.shape[1] not in (1, code.shape[1]) or code.size == 0 \
            or out.dtype != np.float64 or out.ndim != 2 or out.shape[0] != 2 or not out.flags.c_contiguous:
        return False
    c = np.ascontiguousarray(code)
    p = np.ascontiguousarray(pa, dtype=np.float64)
    _k.histogram(c, c.shape[0], c.shape[1], c.itemsize, p, p.shape[1], out, out.shape[1])
    return True


def region_sums(classes: np.ndarray, water: list[np.ndarray], pa: np.ndarray) -> Optional[np.ndarray]:
    """:func:`rs_change.waterbody._measure` of one strip in one compiled loop: the 4-connected
    regions of ``classes != 0`` in raster order of their first pixel, and per region its pixels,
    the area of its ``classes == 2`` pixels and per water mask the area of its water, land and
    unobserved pixels, added in raster order (the numpy path's sums bit for bit).

    Parameters
    ----------
    classes : uint8 (h, w)
    water : list of uint8 (h, w)
    pa : float64 (h, 1) or (h, w)

    Returns
    -------
    float64 (regions, 2 + 3 * len(water)), or None where the loop does not apply.
    """
    if not ENABLED or classes.ndim != 2 or classes.dtype != np.uint8 or len(water) > MAX_MASKS \
            or any(wm.shape != classes.shape or wm.dtype != np.uint8 for wm in water) \
            or pa.ndim != 2 or pa.shape[0] != classes.shape[0] or pa.shape[1] not in (1, classes.shape[1]):
        return None
    h, w = classes.shape
    p = np.ascontiguousarray(pa, dtype=np.float64)
    out = _k.regions(np.ascontiguousarray(classes), [np.ascontiguousarray(wm) for wm in water], p, h, w, p.shape[1])
    return np.frombuffer(out, np.float64).reshape(-1, 2 + 3 * len(water)).copy()


def outlines(img: np.ndarray, mask: np.ndarray, x0: int, y0: int,
             scratch: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """The polygons GDAL's polygonize (GDAL 3.7 and later) traces for the 4-connected regions of
    one value of ``img`` where ``mask``, vertex for vertex, in one compiled pass (a labelling, then
    each ring walked once): the rings of each region, exterior first and holes in raster order of
    their top-left vertex, each starting at its top-left vertex, only corners as vertices, pixel
    corners shifted by ``x0, y0`` (``tests/test_scale.py`` compares them with GDAL's).

    Parameters
    ----------
    img : uint8 (h, w)
    mask : bool or uint8 (h, w)
    x0, y0 : int
    scratch : uint8 (n,), optional
        Working memory of at least 5 bytes a pixel, shared by the calls on one strip's rasters
        (:func:`outlines_scratch`); without it each call allocates its own.

    Returns
    -------
    object (n,) shapely polygons, the regions in raster order of their first pixel, or None where
    the loop does not apply.
    """
    if not ENABLED or img.ndim != 2 or img.dtype != np.uint8 or mask.shape != img.shape \
            or mask.dtype not in (np.bool_, np.uint8):
        return None
    import shapely

    h, w = img.shape
    if scratch is not None and (scratch.dtype != np.uint8 or not scratch.flags.c_contiguous
                                or scratch.size < 5 * h * w or scratch.ctypes.data % 4):
        raise ValueError("outlines: scratch must be a C-contiguous uint8 array of 5 bytes a pixel, 4-byte aligned")
    xy_b, ring_b = _k.outlines(np.ascontiguousarray(img), np.ascontiguousarray(mask).view(np.uint8), h, w,
                               int(x0), int(y0), scratch)
    rings = np.frombuffer(ring_b or b"", np.int64).reshape(-1, 2)
    if len(rings) == 0:
        return np.empty(0, object)
    xy = np.frombuffer(xy_b, np.float64).reshape(-1, 2)
    lr = shapely.linearrings(xy, indices=np.repeat(np.arange(len(rings)), rings[:, 1]))
    order = np.argsort(rings[:, 0], kind="stable")  # per region: its exterior, then its holes as found
    return np.asarray(shapely.polygons(lr[order], indices=rings[order, 0] - 1), dtype=object)


def outlines_scratch(pixels: int) -> Optional[np.ndarray]:
    """Working memory for :func:`outlines` calls on the rasters of one strip of ``pixels``
    pixels, or None when the compiled loops are off: an anonymous memory map, returned to the
    system when the array is released.

    Not from the heap: a freed block of tens of MB there is pinned by the polygons made meanwhile
    (and raises glibc's dynamic mmap threshold, which sends the next blocks there too); not kept
    for the whole pass, which would hold it through the strips' column sums.  The caller releases
    it before those sums are made (docs/scale.md has the peaks each choice gave).
    """
    if not ENABLED:
        return None
    import mmap

    m = mmap.mmap(-1, max(1, 5 * pixels))
    if hasattr(mmap, "MADV_HUGEPAGE") and len(m) >= 4 << 20:
        m.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(m, np.uint8)
