"""EDGE: write rasters (Cloud-Optimized GeoTIFF), polygons and tables.

Rasters are written block by block into a tiled GeoTIFF (:class:`BlockWriter`) and converted to
a COG with GDAL's COG driver at the end; everything is written under a temporary name and moved
into place by the pipeline, so a failed run leaves no partial file.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from .grid import Grid

log = logging.getLogger(__name__)

WATER_CLASSES = {0: "land", 1: "water", 255: "unobserved"}
WATER_COLORS = {0: (230, 230, 220, 255), 1: (30, 90, 200, 255), 255: (0, 0, 0, 0)}


class BlockWriter:
    """A tiled uint8 GeoTIFF on ``grid`` written one window at a time."""

    def __init__(
        self,
        path: Path,
        grid: Grid,
        nodata: Optional[int] = 255,
        colormap: Optional[Mapping[int, tuple[int, int, int, int]]] = None,
        classes: Optional[Mapping[int, str]] = None,
        tags: Optional[Mapping[str, Any]] = None,
        dtype: str = "uint8",
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.colormap = colormap
        self.classes = classes
        self.ds = rasterio.open(
            self.path,
            "w",
            driver="GTiff",
            width=grid.width,
            height=grid.height,
            count=1,
            dtype=dtype,
            crs=grid.crs.to_wkt(),
            transform=grid.transform,
            nodata=nodata,
            tiled=True,
            blockxsize=256,
            blockysize=256,
            compress="deflate",
            BIGTIFF="IF_SAFER",
        )
        if colormap:
            self.ds.write_colormap(1, {int(k): tuple(v) for k, v in colormap.items()})
        if classes:
            self.ds.update_tags(1, **{f"CLASS_{k}": v for k, v in classes.items()})
            self.ds.update_tags(CLASSES=json.dumps({str(k): v for k, v in classes.items()}))
        if tags:
            self.ds.update_tags(**{k: (v if isinstance(v, str) else json.dumps(v)) for k, v in tags.items()})

    def write(self, block: np.ndarray, row_off: int, col_off: int) -> None:
        h, w = block.shape
        self.ds.write(block, 1, window=Window(col_off, row_off, w, h))

    def close(self) -> None:
        if not self.ds.closed:
            self.ds.close()

    def to_cog(self, dst: Path) -> Path:
        """Close and convert to a Cloud-Optimized GeoTIFF at ``dst`` (overviews, deflate)."""
        self.close()
        to_cog(self.path, dst)
        return Path(dst)


def to_cog(src: Path, dst: Path, resampling: str = "NEAREST") -> None:
    """Copy a GeoTIFF to a COG with internal overviews (GDAL's COG driver)."""
    rasterio.shutil.copy(
        str(src),
        str(dst),
        driver="COG",
        COMPRESS="DEFLATE",
        OVERVIEWS="IGNORE_EXISTING",
        RESAMPLING=resampling,
        BLOCKSIZE=512,
        BIGTIFF="IF_SAFER",
    )


def write_cog(path: Path, array: np.ndarray, grid: Grid, **kw: Any) -> Path:
    """Write a whole 2-D uint8 array as a COG (small rasters, tests)."""
    tmp = Path(str(path) + ".tmp.tif")
    w = BlockWriter(tmp, grid, **kw)
    try:
        w.write(array, 0, 0)
        w.to_cog(Path(path))
    finally:
        w.close()
        tmp.unlink(missing_ok=True)
    return Path(path)


def polygonize(mask: np.ndarray, grid: Grid, pixel_area: np.ndarray, value: int = 1) -> "Any":
    """Polygons of the 4-connected regions where ``mask == value``, as a GeoDataFrame.

    Each polygon's ``area_m2`` is the sum of its pixels' ground areas, so the polygons add up to
    the raster's area exactly, in any CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``area_m2``, ``pixels`` and ``geometry``, CRS set to the grid's.
    """
    import geopandas as gpd
    from rasterio.features import shapes
    from scipy import ndimage
    from shapely.geometry import shape

    sel = np.asarray(mask) == value
    lab, n = ndimage.label(sel)
    if n == 0:
        return gpd.GeoDataFrame({"area_m2": [], "pixels": []}, geometry=[], crs=grid.crs.to_wkt())
    pa = np.broadcast_to(pixel_area, sel.shape)
    areas = np.bincount(lab.ravel(), weights=pa.ravel(), minlength=n + 1)
    pix = np.bincount(lab.ravel(), minlength=n + 1)
    geoms, ids = [], []
    for geom, v in shapes(lab.astype(np.int32), mask=sel, transform=grid.transform, connectivity=4):
        geoms.append(shape(geom))
        ids.append(int(v))
    ids_a = np.asarray(ids)
    return gpd.GeoDataFrame(
        {"area_m2": areas[ids_a], "pixels": pix[ids_a].astype("int64")},
        geometry=geoms,
        crs=grid.crs.to_wkt(),
    )


def write_layers(path: Path, layers: Mapping[str, Any], driver: str = "GPKG") -> Path:
    """Write GeoDataFrames as layers of one vector file (pyogrio).

    GeoPackages get a fixed ``last_change`` time stamp (GDAL's ``OGR_CURRENT_DATE``; the value of
    ``SOURCE_DATE_EPOCH`` when set), so the same results give a byte-identical file.
    """
    import pyogrio

    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _fixed_date()})
    try:
        for i, (name, gdf) in enumerate(layers.items()):
            pyogrio.write_dataframe(gdf, str(path), layer=name, driver=driver, append=i > 0)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})
    return Path(path)


def _fixed_date() -> str:
    """ISO time stamp for file metadata: ``SOURCE_DATE_EPOCH`` (reproducible builds) or 2000-01-01."""
    import datetime as _dt
    import os

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    t = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
    if epoch.isdigit():
        t = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    fields: list[str] = []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow(dict(r))
    return Path(path)
