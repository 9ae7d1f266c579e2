"""EDGE: write rasters (Cloud-Optimized GeoTIFF), polygons and tables.

Rasters are written block by block into a tiled GeoTIFF (:class:`BlockWriter`) and converted to
a COG with GDAL's COG driver at the end; everything is written under a temporary name and moved
into place by the pipeline, so a failed run leaves no partial file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np
import rasterio
import rasterio.errors
import rasterio.shutil
from rasterio.windows import Window

from .grid import Grid
from .names import (CHANGE_LAYER, CHANGE_TIF, FREQUENCY_TIF, SERIES_CLASSES_TIF, VECTOR_NAMES, is_water_tif, pair_change_tif,
                    water_layer)

log = logging.getLogger(__name__)

WATER_CLASSES = {0: "land", 1: "water", 255: "unobserved"}
WATER_COLORS = {0: (230, 230, 220, 255), 1: (30, 90, 200, 255), 255: (0, 0, 0, 0)}


#: compression of the block-written staging files (never an output; outputs are DEFLATE COGs)
_STAGING_COMPRESSION = {"compress": "zstd", "zstd_level": 1}


class BlockWriter:
    """A tiled uint8 GeoTIFF on ``grid`` written one window at a time (a staging file: see :meth:`to_cog`)."""

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
        profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=1, dtype=dtype, crs=grid.crs.to_wkt(),
                       transform=grid.transform, nodata=nodata, tiled=True, blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER")
        # a staging file, read once more by to_cog (and the polygons): fastest compression that
        # still keeps it small (zstd level 1 writes 43 M class pixels in 0.03 s, deflate in 0.3 s)
        try:
            self.ds = rasterio.open(self.path, "w", **profile, **_STAGING_COMPRESSION)
        except rasterio.errors.RasterioError:  # a GDAL built without zstd
            self.ds = rasterio.open(self.path, "w", **profile, compress="deflate", zlevel=1)
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


#: DEFLATE level of the COGs: 3 writes a NAIP-size class raster in 0.28-0.40 s, level 6 (GDAL's
#: default) in 0.35-0.60 s for files 1.5x smaller (0.6-1.9 MB); every reader decodes both.
COG_DEFLATE_LEVEL = 3


def to_cog(src: Path, dst: Path, resampling: str = "NEAREST") -> None:
    """Copy a GeoTIFF to a COG with internal overviews (GDAL's COG driver)."""
    rasterio.shutil.copy(
        str(src),
        str(dst),
        driver="COG",
        COMPRESS="DEFLATE",
        LEVEL=COG_DEFLATE_LEVEL,
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

    with fixed_timestamps():
        for i, (name, gdf) in enumerate(layers.items()):
            pyogrio.write_dataframe(gdf, str(path), layer=name, driver=driver, append=i > 0)
    return Path(path)


@contextlib.contextmanager
def fixed_timestamps() -> Iterator[None]:
    """Within the block, GDAL vector drivers stamp files with :func:`_fixed_date` (GeoPackage
    ``gpkg_contents.last_change`` through ``OGR_CURRENT_DATE``) instead of the clock, and the
    File Geodatabase writer derives its UUIDs from the content (``OPENFILEGDB_REPRODUCIBLE_UUID``)
    instead of drawing them at random."""
    import pyogrio

    fixed = {"OGR_CURRENT_DATE": _fixed_date(), "OPENFILEGDB_REPRODUCIBLE_UUID": "YES"}
    before = {k: pyogrio.get_gdal_config_option(k) for k in fixed}
    pyogrio.set_gdal_config_options(fixed)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)


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


# ---------------------------------------------------------------------------------------------
# Polygons for GIS: sieve, topology-preserving simplification, geodesic perimeter, formats
# ---------------------------------------------------------------------------------------------
#: ``output.formats`` value -> (GDAL driver, output name in the run folder: rs_change.names.VECTOR_NAMES)
VECTOR_FORMATS: dict[str, tuple[str, str]] = {
    fmt: (driver, VECTOR_NAMES[fmt])
    for fmt, driver in (("gpkg", "GPKG"), ("shp", "ESRI Shapefile"), ("geojson", "GeoJSON"), ("gdb", "OpenFileGDB"))
}

#: Shapefile (dBASE) field names are at most 10 characters
SHAPEFILE_FIELDS = {"perimeter_m": "perim_m"}


def gdb_name(name: str) -> str:
    """A layer name that File Geodatabases accept (letters, digits, underscores)."""
    import re

    out = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return out if out[:1].isalpha() else "l_" + out


def write_vectors(folder: Path, layers: Mapping[str, Any], formats: Sequence[str]) -> dict[str, Path]:
    """:func:`_write_vectors` with fixed time stamps in the files (same results, same bytes)."""
    with fixed_timestamps():
        return _write_vectors(folder, layers, formats)


def _write_vectors(folder: Path, layers: Mapping[str, Any], formats: Sequence[str]) -> dict[str, Path]:
    """Write polygon layers in each of ``formats`` (``gpkg``, ``shp``, ``geojson``, ``gdb``).

    * ``gpkg``: one ``water.gpkg`` with a layer per name;
    * ``shp``: a folder ``water_shp/`` with ``<layer>.shp`` (+ .shx .dbf .prj .cpg, UTF-8);
      ``perimeter_m`` is named ``perim_m`` there (10-character dBASE field names);
    * ``geojson``: a folder ``water_geojson/`` with ``<layer>.geojson`` in EPSG:4326 (RFC 7946);
    * ``gdb``: one File Geodatabase ``water.gdb`` (GDAL's OpenFileGDB writer), layer names with
      ``-`` replaced by ``_``.

    Parameters
    ----------
    folder : Path
        Where the outputs are created (normally the run's temporary folder).
    layers : mapping name -> GeoDataFrame
    formats : sequence of str

    Returns
    -------
    dict output name -> path
    """
    import pyogrio

    out: dict[str, Path] = {}
    folder = Path(folder)
    for fmt in dict.fromkeys(formats):
        if fmt not in VECTOR_FORMATS:
            from .errors import ConfigError

            raise ConfigError(f"output.formats: unknown vector format {fmt!r}; use one of {', '.join(VECTOR_FORMATS)}")
        driver, name = VECTOR_FORMATS[fmt]
        dst = folder / name
        for i, (lname, gdf) in enumerate(layers.items()):
            kw: dict[str, Any] = {"driver": driver, "geometry_type": "Polygon"}
            if fmt == "gpkg":
                pyogrio.write_dataframe(gdf, str(dst), layer=lname, append=i > 0, **kw)
            elif fmt == "gdb":
                g = gdf.copy()
                if len(g) and int(g["pixels"].max()) < 2**31:  # Integer64 needs ArcGIS Pro 3.2+
                    g["pixels"] = g["pixels"].astype("int32")
                # a lake with > 100 islands makes GDAL's ring organiser warn and slow down; our rings
                # are already organised (shapely polygons), so skip it
                pyogrio.set_gdal_config_options({"OGR_ORGANIZE_POLYGONS": "SKIP"})
                try:
                    pyogrio.write_dataframe(g, str(dst), layer=gdb_name(lname), append=i > 0, **kw)
                finally:
                    pyogrio.set_gdal_config_options({"OGR_ORGANIZE_POLYGONS": None})
            elif fmt == "shp":
                dst.mkdir(parents=True, exist_ok=True)
                pyogrio.write_dataframe(gdf.rename(columns=SHAPEFILE_FIELDS), str(dst / f"{lname}.shp"),
                                        layer=lname, encoding="UTF-8", DBF_DATE_LAST_UPDATE=_fixed_date()[:10], **kw)
            else:
                dst.mkdir(parents=True, exist_ok=True)
                pyogrio.write_dataframe(gdf.to_crs("EPSG:4326"), str(dst / f"{lname}.geojson"), layer=lname,
                                        RFC7946="YES", **kw)
        out[name] = dst
    return out


# ---------------------------------------------------------------------------------------------
# Many-date rasters, styles, polygon outputs of a run
# ---------------------------------------------------------------------------------------------
def styled_cog(writer: "BlockWriter", dst: Path, classes: Optional[Mapping[int, str]] = None,
               colors: Optional[Mapping[int, tuple[int, int, int, int]]] = None) -> list[Path]:
    """Convert a :class:`BlockWriter` to a COG at ``dst`` and write its QGIS / GDAL styles beside it.

    ``classes=None`` styles it as a 0-100 % frequency ramp.  Returns the COG then the style files.
    """
    from .styles import write_styles

    writer.to_cog(Path(dst))
    return [Path(dst), *write_styles(Path(dst), classes, colors)]


class SeriesWriters:
    """Block writers of the many-date rasters: ``frequency.tif``, ``series_classes.tif`` and
    ``change_<from>_<to>.tif`` per consecutive pair (used with 3+ dates).

    Parameters
    ----------
    folder : Path
        Staging folder.
    grid : Grid
        Reference grid.
    dates : sequence of str
        ISO dates in order.
    """

    def __init__(self, folder: Path, grid: Grid, dates: Sequence[str]) -> None:
        from .change import CHANGE_CLASSES, CHANGE_COLORS, FREQUENCY_NODATA, SERIES_CLASSES, SERIES_COLORS
        from .styles import ramp_colormap

        self.folder = Path(folder)
        self.dates = list(dates)
        span = {"FROM": self.dates[0], "TO": self.dates[-1], "DATES": self.dates}
        self.frequency = BlockWriter(self.folder / "frequency_blocks.tif", grid, FREQUENCY_NODATA, ramp_colormap(),
                                     tags={**span, "UNITS": "percent of observed dates that were water"})
        self.classes = BlockWriter(self.folder / "series_blocks.tif", grid, 255, SERIES_COLORS, SERIES_CLASSES, tags=span)
        self.pairs = [
            BlockWriter(self.folder / f"pair_{a}_{b}_blocks.tif", grid, 255, CHANGE_COLORS, CHANGE_CLASSES,
                        tags={"FROM": a, "TO": b})
            for a, b in zip(self.dates[:-1], self.dates[1:])
        ]

    def write(self, block: Any, row_off: int, col_off: int) -> None:
        """Write one :class:`rs_change.change.SeriesBlock`."""
        self.frequency.write(block.frequency, row_off, col_off)
        self.classes.write(block.classes, row_off, col_off)
        for wr, t in zip(self.pairs, block.transitions):
            wr.write(t, row_off, col_off)

    def finish(self, jobs: Any = None) -> dict[str, Path]:
        """COGs with styles in the staging folder; returns name -> path.

        With ``jobs`` (:class:`rs_change.outputs.WriteJobs`) the conversions run as its jobs and
        the files exist once ``jobs.wait()`` returns.
        """
        from .change import CHANGE_CLASSES, CHANGE_COLORS, SERIES_CLASSES, SERIES_COLORS

        todo: list[tuple[BlockWriter, Path, Any, Any]] = [
            (self.frequency, self.folder / FREQUENCY_TIF, None, None),
            (self.classes, self.folder / SERIES_CLASSES_TIF, SERIES_CLASSES, SERIES_COLORS),
            *[(wr, self.folder / pair_change_tif(a, b), CHANGE_CLASSES, CHANGE_COLORS)
              for a, b, wr in zip(self.dates[:-1], self.dates[1:], self.pairs)],
        ]
        paths: list[Path] = []
        for wr, dst, classes, colors in todo:
            wr.close()
            if jobs is None:
                paths += styled_cog(wr, dst, classes, colors)
            else:
                from .styles import write_styles

                jobs.submit(wr.to_cog, dst)
                paths += [dst, *write_styles(dst, classes, colors)]  # styles need only the name
        return {p.name: p for p in paths}

    def staging(self) -> dict[str, Path]:
        """Output name -> staging file (block-written, complete once closed), e.g. for figures."""
        out = {FREQUENCY_TIF: self.frequency.path, SERIES_CLASSES_TIF: self.classes.path}
        for a, b, wr in zip(self.dates[:-1], self.dates[1:], self.pairs):
            out[pair_change_tif(a, b)] = wr.path
        return out

    def close(self) -> None:
        for wr in (self.frequency, self.classes, *self.pairs):
            wr.close()


class RunRasters:
    """The staging rasters a run writes block by block: ``water_<date>`` per date, ``change``
    (first -> last, 2+ dates), ``clusters_<date>`` per date and the many-date series (3+ dates,
    :class:`SeriesWriters`).

    Parameters
    ----------
    folder : Path
        Staging folder.
    grid : Grid
        Reference grid.
    dates : sequence of str
        ISO dates in order.
    water_tags : sequence of dict
        Metadata of each date's water mask.
    cluster_kwargs : sequence of dict
        :class:`BlockWriter` keyword arguments of each date's cluster map
        (:func:`rs_change.model.cluster_writer_kwargs`).
    """

    def __init__(self, folder: Path, grid: Grid, dates: Sequence[str], water_tags: Sequence[Mapping[str, Any]],
                 cluster_kwargs: Sequence[Mapping[str, Any]]) -> None:
        from .change import CHANGE_CLASSES, CHANGE_COLORS

        folder = Path(folder)
        self.water: list[BlockWriter] = []
        self.change: Optional[BlockWriter] = None
        self.series: Optional[SeriesWriters] = None
        self.clusters: list[BlockWriter] = []
        try:
            for d, tags in zip(dates, water_tags):
                self.water.append(BlockWriter(folder / f"w_{d}.tif", grid, 255, WATER_COLORS, WATER_CLASSES, tags=tags))
            if len(dates) >= 2:
                self.change = BlockWriter(folder / "change_blocks.tif", grid, 255, CHANGE_COLORS, CHANGE_CLASSES,
                                          tags={"FROM": dates[0], "TO": dates[-1]})
            if len(dates) >= 3:
                self.series = SeriesWriters(folder, grid, dates)
            for d, kw in zip(dates, cluster_kwargs):
                self.clusters.append(BlockWriter(folder / f"c_{d}.tif", grid, **kw))
        except BaseException:
            self.close()
            raise

    def write(self, br: Any) -> None:
        """Write one :class:`rs_change.blocks.BlockResult` (its water masks, change map, cluster
        ids and series rasters) at its window."""
        r0, c0, _, _ = br.window
        for wr, m in zip(self.water, br.water):
            wr.write(m, r0, c0)
        if self.change is not None and br.change is not None:
            self.change.write(br.change, r0, c0)
        for cw, cl in zip(self.clusters, br.clusters):
            cw.write(cl, r0, c0)
        if self.series is not None and br.series is not None:
            self.series.write(br.series, r0, c0)

    def close(self) -> None:
        for wr in [*self.water, *([self.change] if self.change is not None else []), *self.clusters]:
            wr.close()
        if self.series is not None:
            self.series.close()


def run_polygons(
    folder: Path,
    grid: Grid,
    water: Mapping[str, Path],
    change: Optional[Path],
    formats: Sequence[str],
    min_area_m2: Optional[float],
    simplify_px: float,
    workers: int = 1,
    layer_workers: int = 1,
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Polygon layers of a run, written in every format of ``output.formats``.

    Layers: ``water_<date>`` (class ``water``) per date and ``change`` (classes ``water gained`` /
    ``water lost``, first -> last date, ``date`` = last date, ``from_date`` = first).

    Parameters
    ----------
    folder : Path
        Staging folder.
    grid : Grid
    water : mapping ISO date -> water mask GeoTIFF
    change : Path or None
        change.tif (first -> last).
    formats : sequence of str
        ``output.formats``.
    min_area_m2 : float or None
        Minimum polygon area; None = 4 mean pixel areas.
    simplify_px : float
        Simplification tolerance in pixels.
    workers : int, default 1
        Threads tracing the strips of the rasters (:func:`rs_change.strips.strip_regions_many`).
    layer_workers : int, default 1
        Threads joining each raster's regions and building its layer (one raster each).

    Returns
    -------
    files : dict output name -> path
    summary : dict
        ``{min_area_m2, simplify_px, layers: {name: {features, area_km2, removed_features,
        removed_km2, raster_km2}}}`` for summary.json.
    """
    from .change import CHANGE_CLASSES, WATER_GAINED, WATER_LOST
    from .strips import layer_from_regions, mean_pixel_area, strip_regions_many

    min_a = float(4.0 * mean_pixel_area(grid)) if min_area_m2 is None else float(min_area_m2)
    layers: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    # name -> (raster, codes, date, extra columns)
    jobs: dict[str, tuple[Path, Mapping[int, str], str, Optional[dict]]] = {
        water_layer(date): (Path(path), {1: "water"}, date, None) for date, path in water.items()}
    if change is not None:
        with rasterio.open(change) as ds:
            frm, to = ds.tags().get("FROM", ""), ds.tags().get("TO", "")
        jobs[CHANGE_LAYER] = (Path(change), {WATER_GAINED: CHANGE_CLASSES[WATER_GAINED], WATER_LOST: CHANGE_CLASSES[WATER_LOST]},
                          to, {"from_date": frm})
    # every raster in one pass of strips, merged across strip edges: memory set by a strip, not the
    # raster, and the strip's pixel areas computed once for all (rs_change.strips)
    regions = strip_regions_many([(path, values) for path, values, _, _ in jobs.values()], grid, workers=workers,
                                 finish_workers=layer_workers)

    def layer(item: tuple[tuple[str, tuple[Path, Mapping[int, str], str, Optional[dict]]], dict[str, Any]]) -> Any:
        (_, (_, values, date, extra)), reg = item
        return layer_from_regions(reg, grid, values, min_a, simplify_px, date, extra)

    if layer_workers > 1 and len(jobs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(layer_workers, len(jobs)), thread_name_prefix="rs-change-poly") as ex:
            built = list(ex.map(layer, zip(jobs.items(), regions)))  # in order: the same layers
    else:
        built = [layer(item) for item in zip(jobs.items(), regions)]
    for name, (gdf, removed, raster) in zip(jobs, built):
        layers[name] = gdf
        stats[name] = {
            "features": int(len(gdf)),
            "area_km2": round(float(gdf["area_m2"].sum()) / 1e6, 6) if len(gdf) else 0.0,
            "removed_features": int(sum(r["features"] for r in removed.values())),
            "removed_km2": round(sum(r["area_m2"] for r in removed.values()) / 1e6, 6),
            "raster_km2": round(raster / 1e6, 6),
        }
    files = write_vectors(folder, layers, formats)
    summary = {
        "min_area_m2": round(min_a, 6),
        "simplify_px": simplify_px,
        "formats": list(dict.fromkeys(formats)),
        "note": "area_m2 = sum of the polygon's pixel ground areas; polygons smaller than min_area_m2 are removed "
                "(removed_km2); area_km2 + removed_km2 = raster_km2",
        "layers": stats,
    }
    return files, summary


def style_outputs(staged: Mapping[str, Path]) -> dict[str, Path]:
    """QGIS ``.qml`` and GDAL ``.aux.xml`` beside the staged ``water_<date>.tif`` and ``change.tif``."""
    from .change import CHANGE_CLASSES, CHANGE_COLORS
    from .styles import write_styles

    out: dict[str, Path] = {}
    for name, path in list(staged.items()):
        if is_water_tif(name):
            paths = write_styles(path, WATER_CLASSES, WATER_COLORS)
        elif name == CHANGE_TIF:
            paths = write_styles(path, CHANGE_CLASSES, CHANGE_COLORS)
        else:
            continue
        out.update({p.name: p for p in paths})
    return out


def manifest_files(folder: Path, names: Sequence[str]) -> list[str]:
    """``names`` with each folder output (``water.gdb``, ``water_shp`` ...) expanded to its files
    (``water.gdb/a00000001.gdbtable`` ...), sorted within the folder, for the manifest."""
    out: list[str] = []
    for n in names:
        p = Path(folder) / n
        if p.is_dir():
            out += sorted(str(f.relative_to(folder)) for f in p.rglob("*") if f.is_file())
        else:
            out.append(n)
    return out
