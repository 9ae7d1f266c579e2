"""Reference implementations of the polygon layers, used only by the tests.

``polygon_layer`` labels a whole in-memory array and traces it with ``rasterio.features.shapes``
(the definition); ``strip_regions`` / ``polygon_layer_strips`` are the package's strip-by-strip
path (:func:`rs_change.strips.strip_regions_many`, :func:`rs_change.strips.layer_from_regions`)
for one raster file.  The tests compare the two: same regions, pixels, areas and outlines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from rs_change.area import geodesic_perimeters
from rs_change.grid import Grid
from rs_change.strips import POLYGON_COLUMNS, layer_from_regions, strip_regions_many


def polygon_layer(
    classes: np.ndarray,
    grid: Grid,
    pixel_area: np.ndarray,
    values: Mapping[int, str],
    min_area_m2: float = 0.0,
    simplify_px: float = 0.0,
    date: str = "",
    extra: Optional[Mapping[str, Any]] = None,
) -> tuple["Any", dict[str, dict[str, float]]]:
    """Polygons of the 4-connected regions of each class code in ``values``, ready for GIS.

    Pure function of the array, its grid and its pixel areas (so it can run per block).

    * ``area_m2`` is the sum of the region's pixels' ground areas (exact for any CRS, and equal to
      the raster's area), ``pixels`` their count;
    * regions smaller than ``min_area_m2`` are dropped (a sieve) and reported in the second
      return value, so polygons + removed = raster area;
    * ``simplify_px > 0`` simplifies the polygons together as the strip path does
      (:func:`rs_change.strips._simplify`: :func:`shapely.coverage_simplify`, tolerance
      ``simplify_px`` pixel sizes, which keeps shared edges shared and never collapses a polygon;
      regions and holes of fewer than ``KEEP_SHAPE_PX`` pixels kept as traced);
    * ``perimeter_m`` is the geodesic perimeter of the polygon as written (after simplification).

    Parameters
    ----------
    classes : integer array (h, w)
        Class codes (e.g. a water mask, or a change map).
    grid : Grid
        Grid of ``classes``.
    pixel_area : float array broadcastable to (h, w)
        Ground area of each pixel in m2.
    values : mapping code -> class name
        The codes to polygonise; the name goes into the ``class`` column.
    min_area_m2 : float, default 0
        Drop regions smaller than this.
    simplify_px : float, default 0
        Simplification tolerance in pixels (0 keeps the exact pixel outlines).
    date : str, default ""
        Goes into the ``date`` column.
    extra : mapping, optional
        More constant columns (e.g. ``{"from_date": "2009-08-18"}``).

    Returns
    -------
    gdf : geopandas.GeoDataFrame
        Columns ``date, class, area_m2, perimeter_m, pixels`` (+ ``extra``), CRS of the grid.
    removed : dict class name -> {"features", "pixels", "area_m2"}
        What the minimum-area filter dropped.
    """
    import geopandas as gpd
    import shapely
    from rasterio.features import shapes
    from scipy import ndimage

    classes = np.asarray(classes)
    pa = np.broadcast_to(np.asarray(pixel_area, np.float64), classes.shape)
    lab_all = np.zeros(classes.shape, np.int32)
    area_l: list[np.ndarray] = [np.zeros(1)]
    pix_l: list[np.ndarray] = [np.zeros(1, np.int64)]
    name_l: list[np.ndarray] = [np.array([""], dtype=object)]
    removed: dict[str, dict[str, float]] = {}
    next_id = 1
    for code, cname in values.items():
        sel = classes == code
        lab, n = ndimage.label(sel)
        areas = np.bincount(lab.ravel(), weights=pa.ravel(), minlength=n + 1)[1:]
        pix = np.bincount(lab.ravel(), minlength=n + 1)[1:]
        small = areas < min_area_m2
        removed[cname] = {"features": int(small.sum()), "pixels": int(pix[small].sum()), "area_m2": float(areas[small].sum())}
        keep = np.flatnonzero(~small)
        if keep.size:
            # relabel kept components to consecutive global ids; dropped ones to 0
            remap = np.zeros(n + 1, np.int32)
            remap[keep + 1] = np.arange(next_id, next_id + keep.size, dtype=np.int32)
            lab_all = np.where(sel, remap[lab], lab_all)
            area_l.append(areas[keep])
            pix_l.append(pix[keep].astype(np.int64))
            name_l.append(np.full(keep.size, cname, dtype=object))
            next_id += keep.size
    crs = grid.crs.to_wkt()
    cols = list(POLYGON_COLUMNS) + list(extra or {})
    if next_id == 1:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=crs), removed
    area_a, pix_a, name_a = np.concatenate(area_l), np.concatenate(pix_l), np.concatenate(name_l)
    geoms, ids = [], []
    for geom, v in shapes(lab_all, mask=lab_all > 0, transform=grid.transform, connectivity=4):
        geoms.append(shapely.geometry.shape(geom))
        ids.append(int(v))
    ids_a = np.asarray(ids)
    order = np.argsort(ids_a, kind="stable")
    ids_a = ids_a[order]
    geo = np.asarray(geoms, dtype=object)[order]
    if simplify_px > 0:
        from rs_change.strips import _simplify

        res = min(abs(grid.transform.a), abs(grid.transform.e))
        geo = _simplify(geo, pix_a[ids_a], abs(grid.transform.a * grid.transform.e) ** 0.5, simplify_px * res)
    data: dict[str, Any] = {
        "date": [date] * len(ids_a),
        "class": name_a[ids_a].astype(str),
        "area_m2": area_a[ids_a],
        "perimeter_m": geodesic_perimeters(geo, grid.crs),
        "pixels": pix_a[ids_a],
    }
    for k, v in (extra or {}).items():
        data[k] = [v] * len(ids_a)
    return gpd.GeoDataFrame(data, geometry=list(geo), crs=crs), removed


def strip_regions(
    path: str | Path, grid: Grid, values: Mapping[int, str], rows: Optional[int] = None, band: int = 1,
) -> dict[str, Any]:
    """Connected regions of each code in ``values``, found strip by strip.

    Parameters
    ----------
    path : path
        A single-band integer raster on ``grid`` (e.g. a water mask or change map).
    grid : Grid
        Its grid (pixel areas come from it, per strip).
    values : mapping code -> class name
    rows : int, optional
        Strip height; memory is about ``rows * width * 20`` bytes (the pixel areas and their
        column sums in float64, the strip and its mask) plus the polygons.  Default:
        about 8 million pixels per strip (1024 rows at most, 16 at least).
    band : int, default 1

    Returns
    -------
    dict
        ``roots`` int64 (n,) region ids in output order (code order, then raster order of the
        first pixel), ``code`` (n,), ``area_m2`` float64 (n,), ``pixels`` int64 (n,),
        ``geometry`` object (n,) shapely polygons in the grid's CRS, and ``raster_m2``
        {code: ground area of every pixel of that code}.
    """
    return strip_regions_many([(path, values)], grid, rows, band)[0]


def polygon_layer_strips(
    path: str | Path,
    grid: Grid,
    pixel_area: Any,
    values: Mapping[int, str],
    min_area_m2: float = 0.0,
    simplify_px: float = 0.0,
    date: str = "",
    extra: Optional[Mapping[str, Any]] = None,
    rows: Optional[int] = None,
) -> tuple[Any, dict[str, dict[str, float]], float]:
    """:func:`polygon_layer` of a raster *file*, strip by strip as rs-change run does (bounded memory).

    Parameters
    ----------
    path : path
        Single-band class raster on ``grid``.
    grid : Grid
    pixel_area : ignored
        Accepted for symmetry with ``polygon_layer``; areas are computed per strip from ``grid``.
    values, min_area_m2, simplify_px, date, extra
        As in :func:`polygon_layer`.
    rows : int, optional
        Strip height in pixels (default: see :func:`strip_regions`).

    Returns
    -------
    gdf : geopandas.GeoDataFrame
        Columns ``date, class, area_m2, perimeter_m, pixels`` (+ ``extra``).
    removed : dict class name -> {"features", "pixels", "area_m2"}
    raster_m2 : float
        Ground area of every pixel of the codes (polygons + removed).
    """
    return layer_from_regions(strip_regions(path, grid, values, rows), grid, values, min_area_m2, simplify_px, date, extra)
