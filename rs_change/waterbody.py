"""Waterbodies: every lake and pond of a run with a stable id, its wet area on every date and its change.

A run of two or more dates gives each pixel a number of dates it was observed on and a number of
those it was water on.  From these, a pixel is

* in a waterbody's **extent** when it was water on at least ``extent_share`` of the dates it was
  observed on (and on one date at least);
* in a **core** when it was water on at least ``core_share`` of them and observed on at least
  ``min_observations`` dates.

A waterbody is a 4-connected region of the extent (the connectivity of every polygon of
rs-change) that holds at least one core pixel and covers at least ``min_area_m2`` of ground.
Regions of the extent are not split: water that is joined in the extent (a river through lakes,
two lakes that touched on enough dates) is one waterbody.  Raising ``extent_share`` above the
share of the dates they touched on keeps them apart (see docs/products.md).

Each waterbody's ``uid`` is the geohash of a point inside it (:func:`uids`), as long as the
pixels warrant (:func:`uid_precision`) and longer where two would share one; ``wb_id`` is its
rank by extent area.  Per waterbody and date the ground areas of its pixels that were water (``wet_m2``), land
(``dry_m2``) and unobserved (``invalid_m2``) are summed with the same per-pixel areas as every
other figure (:func:`rs_change.area.pixel_area_rows`); ``wet_pct`` is left empty when more than
``max_invalid_pct`` % of the waterbody was unobserved.

Bounded memory: pass 2 writes each pixel's class (0 none, 1 extent, 2 core: :func:`pixel_classes`)
block by block; :func:`trace_extent` then traces the outlines of the extent's regions strip by
strip (:mod:`rs_change.strips`, regions joined across strip edges) and, in the same pass, sums the
core, water, land and unobserved areas of each strip's regions, which are added up over the
pieces of a region.  Memory is a strip plus a few numbers per region, whatever the scene's size.
Strips are joined in order: the same masks give the same bytes whatever the scheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import defaults
from .area import geodesic_perimeters
from .grid import Grid, as_crs

log = logging.getLogger(__name__)

#: Pixel classes of :func:`pixel_classes`
NONE, EXTENT, CORE = 0, 1, 2

#: Defaults of the ``waterbodies:`` config keys (declared once, in rs_change.defaults)
CORE_SHARE = defaults.WB_CORE_SHARE
EXTENT_SHARE = defaults.WB_EXTENT_SHARE
MIN_OBSERVATIONS = defaults.WB_MIN_OBSERVATIONS
MIN_AREA_PX = defaults.WB_MIN_AREA_PX  # min_area_m2: null = this many mean pixel areas
MAX_INVALID_PCT = defaults.WB_MAX_INVALID_PCT

#: Longest geohash precision of a ``uid`` before it is lengthened for uniqueness (9 characters: a
#: cell of about 5 x 5 m, DEA Waterbodies' length)
UID_PRECISION = 9
#: A uid's cell is at least this many pixels on its shorter side (:func:`uid_precision`)
UID_CELL_PX = 20

#: Columns of the ``waterbodies`` layer and of waterbodies.csv
LAYER_COLUMNS = ["uid", "wb_id", "date", "from_date", "class", "area_m2", "perim_m", "pixels", "wet_first_m2",
                 "wet_last_m2", "change_m2", "change_pct"]
TABLE_COLUMNS = ["uid", "date", "wet_m2", "wet_pct", "dry_m2", "invalid_m2", "invalid_pct"]

#: The layer's ``class``: the sign of ``change_m2`` (unobserved: no change_m2, an end date was too
#: unobserved), shown in the rasters' palette
CHANGE_CLASS_COLORS = {"grew": "water gained", "shrank": "water lost", "unchanged": "water", "unobserved": "unobserved"}

_TOL = 1e-9


@dataclass(frozen=True)
class Params:
    """The thresholds (the ``waterbodies:`` config section's values)."""

    core_share: float = CORE_SHARE
    extent_share: float = EXTENT_SHARE
    min_observations: int = MIN_OBSERVATIONS
    min_area_m2: Optional[float] = None  # None: MIN_AREA_PX mean pixel areas
    max_invalid_pct: float = MAX_INVALID_PCT

    @classmethod
    def of(cls, cfg: Any) -> "Params":
        """From a :class:`rs_change.config.WaterbodiesConfig` (or anything with the same attributes)."""
        return cls(float(cfg.core_share), float(cfg.extent_share), int(cfg.min_observations),
                   None if cfg.min_area_m2 is None else float(cfg.min_area_m2), float(cfg.max_invalid_pct))


# ---------------------------------------------------------------------------------------------
# Per pixel: extent and core
# ---------------------------------------------------------------------------------------------
def pixel_classes(masks: Sequence[np.ndarray], core_share: float = CORE_SHARE, extent_share: float = EXTENT_SHARE,
                  min_observations: int = MIN_OBSERVATIONS) -> np.ndarray:
    """Each pixel's waterbody class from the dates' water masks.

    Parameters
    ----------
    masks : sequence of uint8 arrays, one shape
        Water masks in date order: 1 water, 0 land, 255 unobserved.
    core_share, extent_share : float
        Shares of the observed dates (0 < extent_share <= core_share <= 1).
    min_observations : int
        Dates a core pixel must have been observed on.

    Returns
    -------
    uint8 array, the masks' shape
        0 none, 1 extent (water on >= ``extent_share`` of its observed dates), 2 core (water on
        >= ``core_share`` of them, observed on >= ``min_observations`` dates).

    Examples
    --------
    >>> import numpy as np
    >>> m = [np.array([1, 1, 0, 255, 1], np.uint8), np.array([1, 0, 0, 1, 255], np.uint8),
    ...      np.array([1, 0, 0, 1, 255], np.uint8)]
    >>> pixel_classes(m).tolist()
    [2, 1, 0, 2, 1]
    """
    wet = np.zeros(np.shape(masks[0]), np.int32)
    obs = np.zeros_like(wet)
    for m in masks:
        m = np.asarray(m)
        wet += m == 1
        obs += m != 255
    out = np.zeros(wet.shape, np.uint8)
    ext = (wet >= 1) & (wet >= extent_share * obs - _TOL)
    out[ext] = EXTENT
    out[ext & (obs >= min_observations) & (wet >= core_share * obs - _TOL)] = CORE
    return out


# ---------------------------------------------------------------------------------------------
# Strip by strip: the regions of the extent, their outlines and sums
# ---------------------------------------------------------------------------------------------
@dataclass
class Extents:
    """The regions of the extent found by :func:`trace_extent`, and which are waterbodies
    (waterbody 1 .. n in raster order of its first pixel).
    """

    pixels: np.ndarray  # int64 (n,) of waterbodies 1 .. n
    area_m2: np.ndarray  # float64 (n,)
    core_m2: np.ndarray  # float64 (n,)
    regions: int  # regions of the extent, waterbodies or not
    removed_small: int  # regions with a core under the minimum area
    removed_no_core: int  # regions without a core pixel

    @property
    def count(self) -> int:
        """The number of waterbodies kept."""
        return int(len(self.pixels))


#: Pixels per strip of :func:`trace_extent` (memory is ~40 bytes a pixel)
STRIP_PIXELS = 2_000_000


def _strip_rows(width: int) -> int:
    return int(max(16, min(1024, STRIP_PIXELS // max(width, 1))))


def _measure(extent: np.ndarray, classes: np.ndarray, water: Sequence[np.ndarray], pa: np.ndarray) -> np.ndarray:
    """Sums over each 4-connected region of one strip's ``extent`` (in ``scipy.ndimage.label``'s
    order, the order the strip's outlines are traced in): pixels, core m2, then per date the m2
    of water, land and unobserved.  float64 (regions, 2 + 3 * dates).
    """
    from .kernels import region_sums

    pa = np.asarray(pa, np.float64)
    fast = region_sums(classes, [np.asarray(w) for w in water], pa.reshape(pa.shape[0], -1))
    if fast is not None:
        return fast
    from scipy import ndimage

    lab, k = ndimage.label(extent)  # 4-connected: the default cross
    sel = np.flatnonzero(lab)
    idx = lab.ravel()[sel] - 1
    del lab
    area = pa.ravel()[sel // extent.shape[1]] if pa.shape[-1] == 1 else np.broadcast_to(pa, extent.shape).ravel()[sel]
    out = np.empty((k, 2 + 3 * len(water)))
    out[:, 0] = np.bincount(idx, minlength=k)
    out[:, 1] = np.bincount(idx, weights=area * (classes.ravel()[sel] == CORE), minlength=k)
    for i, w in enumerate(water):  # one bincount of (state, region) per date
        key = _STATE[np.asarray(w).ravel()[sel]]
        key *= k
        key += idx
        out[:, 2 + 3 * i:5 + 3 * i] = np.bincount(key, weights=area, minlength=3 * k).reshape(3, k).T
    return out


def trace_extent(read_classes: Callable[[int, int], np.ndarray],
                 read_water: Sequence[Callable[[int, int], np.ndarray]], grid: Grid, min_area_m2: float,
                 workers: int = 1, rows: Optional[int] = None) -> tuple[Extents, np.ndarray, np.ndarray]:
    """The waterbodies of the :func:`pixel_classes` raster, strip by strip, in one pass.

    The 4-connected regions of the extent are traced as every polygon of a run is
    (:func:`rs_change.strips.strip_regions_many`: strips joined across their edges); in the same
    pass each strip's regions are measured (:func:`_measure`) and the measures of a region's
    pieces are added.  A region is a waterbody when it holds a core pixel and covers at least
    ``min_area_m2``.

    Parameters
    ----------
    read_classes : callable (r0, r1) -> uint8 (r1 - r0, width)
        Rows of the :func:`pixel_classes` raster.
    read_water : sequence of callables (r0, r1) -> uint8
        Each date's water mask rows (1 water, 0 land, 255 unobserved), in date order.
    grid : Grid
        Pixel areas and the outlines' CRS come from it.
    min_area_m2 : float
    workers : int, default 1
        Threads tracing strips; the readers are called from them.
    rows : int, optional
        Strip height (default: about :data:`STRIP_PIXELS` pixels).

    Returns
    -------
    extents : Extents
    geometry : object (n,)
        Outline of waterbody 1 .. n, in the grid's CRS.
    sums : float64 (n_dates, 3, n + 1)
        m2 of water, land, unobserved per date and waterbody (index 0: no waterbody, zero).
    """
    from .strips import StripSource, strip_regions_many

    classes: dict[int, np.ndarray] = {}  # the strips read and not yet measured, by first row

    def read(r0: int, r1: int) -> np.ndarray:
        classes[r0] = np.asarray(read_classes(r0, r1))
        return (classes[r0] != NONE).view(np.uint8)

    def measure(extent: np.ndarray, r0: int, r1: int, pa: np.ndarray) -> np.ndarray:
        return _measure(extent, classes.pop(r0), [rd(r0, r1) for rd in read_water], pa)

    reg = strip_regions_many([(StripSource(read, measure), {1: "waterbody"})], grid,
                             rows=int(rows or _strip_rows(grid.shape[1])), workers=workers)[0]
    m = reg["sums"].reshape(-1, 2 + 3 * len(read_water))
    if not np.array_equal(np.rint(m[:, 0]).astype(np.int64), reg["pixels"]):  # measures and outlines: one region each
        raise RuntimeError("waterbody outlines do not match their pixels; please report this")
    area, core = reg["area_m2"], m[:, 1]
    big = area >= min_area_m2 * (1 - _TOL)
    keep = (core > 0) & big
    ext = Extents(reg["pixels"][keep], area[keep], core[keep], int(len(area)), int(((core > 0) & ~big).sum()),
                  int((core <= 0).sum()))
    sums = np.zeros((len(read_water), 3, ext.count + 1))
    sums[:, :, 1:] = m[keep, 2:].reshape(ext.count, len(read_water), 3).transpose(1, 2, 0)
    return ext, reg["geometry"][keep], sums


#: water mask value -> row of :func:`_measure`'s sums (1 water: 0, 0 land: 1, anything else: 2 unobserved)
_STATE = np.full(256, 2, np.int64)
_STATE[1], _STATE[0] = 0, 1


# ---------------------------------------------------------------------------------------------
# Ids, layer, table
# ---------------------------------------------------------------------------------------------
_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(lon: float, lat: float, precision: int = UID_PRECISION) -> str:
    """The geohash of a point (Niemeyer's base-32 interleaving of longitude and latitude bits).

    Examples
    --------
    >>> geohash(-5.6, 42.6, 5)
    'ezs42'
    """
    lo, hi = [-180.0, -90.0], [180.0, 90.0]
    out: list[str] = []
    bits, ch, even = 0, 0, True
    v = (float(lon), float(lat))
    while len(out) < precision:
        k = 0 if even else 1
        mid = (lo[k] + hi[k]) / 2
        ch <<= 1
        if v[k] >= mid:
            ch |= 1
            lo[k] = mid
        else:
            hi[k] = mid
        even = not even
        bits += 1
        if bits == 5:
            out.append(_BASE32[ch])
            bits, ch = 0, 0
    return "".join(out)


def uid_precision(pixel_m: float, lat: float = 0.0, pixels: float = UID_CELL_PX) -> int:
    """The longest geohash precision (at most :data:`UID_PRECISION`) whose cells are at least
    ``pixels`` pixels of ``pixel_m`` metres on their shorter side at latitude ``lat``: a uid is not
    finer than the imagery can place a waterbody, so a few pixels more or less at its edge (another
    seed's masks) rarely move it to another cell.

    Examples
    --------
    >>> uid_precision(5.0, 47.0), uid_precision(30.0, 0.0), uid_precision(463.0, 45.0)
    (7, 6, 4)
    """
    import math

    need = float(pixels) * float(pixel_m)
    best = 1
    for p in range(1, UID_PRECISION + 1):
        lon_bits, lat_bits = (5 * p + 1) // 2, (5 * p) // 2
        h = 180.0 / 2**lat_bits * 111_320.0
        w = 360.0 / 2**lon_bits * 111_320.0 * max(math.cos(math.radians(lat)), 1e-6)
        if min(h, w) < need:
            break
        best = p
    return best


def uids(geoms: Sequence[Any] | np.ndarray, crs: Any, precision: int = UID_PRECISION) -> list[str]:
    """``uid`` of each polygon: the geohash of a point inside it (GEOS's point on surface, in
    WGS84 lon/lat), ``precision`` characters long, longer where two polygons would share one
    (up to 12 characters, then a ``-2`` ... suffix), so the uids of a run are unique.
    """
    import shapely
    from pyproj import Transformer

    if len(geoms) == 0:
        return []
    pts = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    xy = shapely.get_coordinates(pts)
    src = as_crs(crs)
    if not src.equals("EPSG:4326"):
        lon, lat = Transformer.from_crs(src, "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])
    else:
        lon, lat = xy[:, 0], xy[:, 1]
    ids = [geohash(x, y, precision) for x, y in zip(lon, lat)]
    for p in range(precision + 1, 13):
        counts: dict[str, int] = {}
        for u in ids:
            counts[u] = counts.get(u, 0) + 1
        dup = [i for i, u in enumerate(ids) if counts[u] > 1]
        if not dup:
            return ids
        for i in dup:
            ids[i] = geohash(lon[i], lat[i], p)
    seen: dict[str, int] = {}
    for i, u in enumerate(ids):
        seen[u] = seen.get(u, 0) + 1
        if seen[u] > 1:
            ids[i] = f"{u}-{seen[u]}"
    return ids


def _r(v: float, nd: int = 2) -> float:
    return round(float(v), nd)


def grid_uid_precision(grid: Grid) -> int:
    """:func:`uid_precision` for the pixels of ``grid`` (their mean ground size, at the grid's centre latitude)."""
    import math

    from pyproj import Transformer

    from .strips import mean_pixel_area

    H, W = grid.shape
    x, y = grid.transform * (W / 2, H / 2)
    lat = float(y)
    if not grid.crs.equals("EPSG:4326"):
        _, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return uid_precision(math.sqrt(mean_pixel_area(grid)), float(lat))


def build(geoms: Sequence[Any] | np.ndarray, ext: Extents, sums: np.ndarray, dates: Sequence[str], crs: Any,
          max_invalid_pct: float = MAX_INVALID_PCT, precision: int = UID_PRECISION) -> tuple[Any, list[dict[str, Any]]]:
    """The ``waterbodies`` layer and the long table from the outlines and sums.

    Parameters
    ----------
    geoms : sequence of shapely polygons (n,)
        Outline of waterbody 1 .. n (raster order of the first pixel), in ``crs``.
    ext : Extents
    sums : float64 (n_dates, 3, n + 1)
        :func:`trace_extent`.
    dates : sequence of ISO dates
    crs
        The grid's CRS.
    max_invalid_pct : float
        ``wet_pct`` (and a change involving that date) is empty above this unobserved share.
    precision : int
        Geohash characters of a ``uid`` (:func:`grid_uid_precision`), more where needed for uniqueness.

    Returns
    -------
    layer : geopandas.GeoDataFrame
        :data:`LAYER_COLUMNS`, one row per waterbody, in ``wb_id`` order (1 = the largest extent).
    table : list of dict
        :data:`TABLE_COLUMNS`, one row per waterbody and date, in ``wb_id`` then date order.
    """
    import geopandas as gpd

    n = ext.count
    crs_wkt = as_crs(crs).to_wkt()
    if n == 0:
        layer = gpd.GeoDataFrame({c: [] for c in LAYER_COLUMNS}, geometry=[], crs=crs_wkt)
        return layer, []
    geo = np.asarray(geoms, dtype=object)
    uid = uids(geo, crs, precision)
    area = ext.area_m2
    wet, dry, inv = sums[:, 0, 1:], sums[:, 1, 1:], sums[:, 2, 1:]  # (dates, n)
    inv_pct = 100.0 * inv / area[None, :]
    ok = inv_pct <= max_invalid_pct + _TOL
    # largest first (as written, to the cm2); ties in raster order
    rank = np.lexsort((np.arange(n), -np.round(area, 2)))
    wb_id = np.empty(n, np.int64)
    wb_id[rank] = np.arange(1, n + 1)
    first, last = wet[0], wet[-1]
    both = ok[0] & ok[-1]
    change = np.where(both, last - first, np.nan)
    pct = np.where(both & (first > 0), 100.0 * (last - first) / np.where(first > 0, first, 1.0), np.nan)
    cls = np.where(~both, "unobserved", np.where(change > 0, "grew", np.where(change < 0, "shrank", "unchanged")))
    perim = geodesic_perimeters(geo, crs)
    cols: dict[str, Any] = {
        "uid": np.asarray(uid, object)[rank],
        "wb_id": wb_id[rank],
        "date": [dates[-1]] * n,
        "from_date": [dates[0]] * n,
        "class": cls[rank].astype(object),
        "area_m2": np.round(area[rank], 2),
        "perim_m": np.round(perim[rank], 2),
        "pixels": ext.pixels[rank],
        "wet_first_m2": np.round(first[rank], 2),
        "wet_last_m2": np.round(last[rank], 2),
        "change_m2": np.round(change[rank], 2),
        "change_pct": np.round(pct[rank], 4),
    }
    layer = gpd.GeoDataFrame(cols, geometry=list(geo[rank]), crs=crs_wkt)
    table = []
    for i in rank:
        for d, date in enumerate(dates):
            table.append({
                "uid": uid[i], "date": date, "wet_m2": _r(wet[d, i]),
                "wet_pct": _r(100.0 * wet[d, i] / area[i], 4) if ok[d, i] else None,
                "dry_m2": _r(dry[d, i]), "invalid_m2": _r(inv[d, i]), "invalid_pct": _r(inv_pct[d, i], 4),
            })
    return layer, table


def summary_section(layer: Any, ext: Extents, params: Params, min_area_m2: float, top: int = 5) -> dict[str, Any]:
    """summary.json's ``waterbodies`` section: the thresholds, counts, total extent and the
    ``top`` waterbodies whose wet area changed most (by ``|change_m2|``).
    """
    most: list[dict[str, Any]] = []
    if len(layer):
        ch = layer["change_m2"].to_numpy(dtype=float)
        valid = np.flatnonzero(~np.isnan(ch))
        order = valid[np.lexsort((layer["wb_id"].to_numpy()[valid], -np.abs(ch[valid])))][:top]
        for i in order:
            row = layer.iloc[int(i)]
            most.append(
                {
                    k: (
                        None
                        if isinstance(row[k], float) and np.isnan(row[k])
                        else (row[k].item() if hasattr(row[k], "item") else row[k])
                    )
                    for k in ("uid", "wb_id", "area_m2", "wet_first_m2", "wet_last_m2", "change_m2", "change_pct")
                }
            )
    return {
        "count": ext.count,
        "extent_km2": round(float(ext.area_m2.sum()) / 1e6, 6),
        "core_share": params.core_share,
        "extent_share": params.extent_share,
        "min_observations": params.min_observations,
        "min_area_m2": round(float(min_area_m2), 6),
        "max_invalid_pct": params.max_invalid_pct,
        "regions": ext.regions,
        "removed_small": ext.removed_small,
        "removed_no_core": ext.removed_no_core,
        "most_changed": most,
        "note": "extent: water on >= extent_share of a pixel's observed dates; a waterbody is a 4-connected region "
                "of it with a core pixel (water on >= core_share of >= min_observations observed dates) and "
                ">= min_area_m2; wet_pct is empty where more than max_invalid_pct % of it was unobserved",
    }


# ---------------------------------------------------------------------------------------------
# Whole arrays (the Python API) and files (a run)
# ---------------------------------------------------------------------------------------------
def from_arrays(
    masks: Sequence[np.ndarray], grid: Grid, dates: Sequence[str], params: Params
) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Waterbodies of in-memory masks on ``grid``: (layer, table, summary section), by the same
    strip functions as a run (:func:`trace_extent`).
    """
    from .strips import mean_pixel_area

    cls = pixel_classes(masks, params.core_share, params.extent_share, params.min_observations)
    min_a = params.min_area_m2 if params.min_area_m2 is not None else MIN_AREA_PX * mean_pixel_area(grid)

    def rows_of(m: Any) -> Callable[[int, int], np.ndarray]:
        return lambda r0, r1: np.asarray(m)[r0:r1]

    ext, geoms, sums = trace_extent(rows_of(cls), [rows_of(m) for m in masks], grid, min_a)
    layer, table = build(geoms, ext, sums, dates, grid.crs, params.max_invalid_pct, grid_uid_precision(grid))
    return layer, table, summary_section(layer, ext, params, min_a)


def from_files(grid: Grid, classes: Any, water: Sequence[Any], dates: Sequence[str], params: Params,
               workers: int = 1) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Waterbodies of a run from its block-written rasters, strip by strip: (layer, table, summary section).

    Parameters
    ----------
    grid : Grid
    classes : Path
        The :func:`pixel_classes` raster pass 2 wrote.
    water : sequence of Path
        Each date's water mask raster, in date order.
    dates : sequence of ISO dates
    params : Params
    workers : int, default 1
        Threads tracing and measuring the strips (:func:`trace_extent`).
    """
    import rasterio
    from rasterio.windows import Window

    from .strips import mean_pixel_area

    W = grid.shape[1]
    min_a = params.min_area_m2 if params.min_area_m2 is not None else MIN_AREA_PX * mean_pixel_area(grid)

    def rows_of(path: Any) -> Callable[[int, int], np.ndarray]:
        def read(r0: int, r1: int) -> np.ndarray:  # a dataset per call: called from the tracing threads
            with rasterio.open(path) as ds:
                return ds.read(1, window=Window(0, r0, W, r1 - r0))

        return read

    ext, geoms, sums = trace_extent(rows_of(classes), [rows_of(p) for p in water], grid, min_a, workers=workers)
    layer, table = build(geoms, ext, sums, dates, grid.crs, params.max_invalid_pct, grid_uid_precision(grid))
    return layer, table, summary_section(layer, ext, params, min_a)
