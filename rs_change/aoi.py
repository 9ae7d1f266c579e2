"""The area of interest (``aoi:`` of a config) on the reference grid.

:func:`aoi_geometries` turns the ``aoi`` section (a bbox with its CRS, or a vector file of
polygons) into shapely geometries in the grid's CRS; :func:`crop_to_aoi` crops the reference
grid to them; :func:`aoi_mask` rasterizes them on a grid (pixel centres inside).  Takes the
``aoi`` section only, not the whole run configuration.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from .errors import ConfigError, InputError
from .grid import Grid

if TYPE_CHECKING:  # pragma: no cover
    from .config import AoiConfig


def aoi_geometries(aoi: Optional["AoiConfig"], crs: Any, resolve: Callable[[str], Path] = Path) -> Optional[list[Any]]:
    """The area of interest as shapely geometries in ``crs`` (None when there is none).

    Parameters
    ----------
    aoi : AoiConfig or None
        The config's ``aoi`` section: ``bbox`` (in ``aoi.crs``) or ``path`` (GeoPackage,
        Shapefile or GeoJSON of polygons, any CRS).
    crs : CRS-like
        The reference grid's CRS.
    resolve : callable(str) -> Path, default Path
        Turns ``aoi.path`` into a file path (``RunConfig.resolve``: relative to the config file).
    """
    if aoi is None:
        return None
    import geopandas as gpd
    from shapely.geometry import box

    if aoi.bbox is not None:
        try:
            gdf = gpd.GeoDataFrame(geometry=[box(*aoi.bbox)], crs=aoi.crs)
        except Exception as exc:
            raise ConfigError(f"aoi.crs: cannot use CRS {aoi.crs!r} ({exc}); give e.g. EPSG:4326") from None
        gdf = gdf.set_geometry(gdf.geometry.segmentize(_segment(gdf)))
    else:
        path = resolve(aoi.path or "")
        if not path.exists():
            raise InputError(f"{path}: area-of-interest file not found; check `aoi.path`")
        try:
            gdf = gpd.read_file(path)
        except Exception as exc:
            raise InputError(f"{path}: cannot read the area of interest ({str(exc).splitlines()[0][:100]}); give a "
                             "GeoPackage, Shapefile or GeoJSON") from None
        if gdf.crs is None:
            raise InputError(f"{path}: the area of interest has no CRS; save it with one")
        gdf = gdf[gdf.geometry.notna() & gdf.geom_type.isin(["Polygon", "MultiPolygon"])]
        if gdf.empty:
            raise InputError(f"{path}: the area of interest holds no polygons; give polygons")
        # densify so that long straight edges stay where they were drawn after reprojection
        gdf = gdf.set_geometry(gdf.geometry.segmentize(_segment(gdf)))
    return list(gdf.to_crs(Grid((1, 1), _ident(), crs).crs.to_wkt()).geometry)


def crop_to_aoi(grid: Grid, geoms: Optional[list[Any]]) -> Grid:
    """``grid`` cropped to the bounds of the area of interest (``grid`` itself when there is none)."""
    if geoms is None:
        return grid
    from shapely.ops import unary_union

    return grid.crop_to_bounds(unary_union(geoms).bounds)


def _segment(gdf: Any) -> float:
    b = gdf.total_bounds
    return max(b[2] - b[0], b[3] - b[1]) / 64.0 or 1.0


def _ident() -> Any:
    from affine import Affine

    return Affine.identity()


def aoi_mask(geoms: Optional[list[Any]], grid: Grid) -> Optional[np.ndarray]:
    """True where the pixel centre is inside the area of interest (None when there is none)."""
    if geoms is None:
        return None
    from rasterio.features import geometry_mask

    # one rasterize at a time: rasterio silences its NotGeoreferencedWarning for the in-memory
    # raster with warnings.catch_warnings, which is not thread-safe (two dates fitted in parallel
    # threads restored each other's filters, and the warning escaped now and then)
    with _AOI_LOCK:
        return geometry_mask(geoms, out_shape=grid.shape, transform=grid.transform, invert=True, all_touched=False)


_AOI_LOCK = threading.Lock()
