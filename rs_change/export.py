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
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import rasterio
import rasterio.errors
import rasterio.shutil
from rasterio.windows import Window

from .change import PALETTE
from .grid import Grid
from .names import (
    CHANGE_LAYER,
    CHANGE_TIF,
    FREQUENCY_TIF,
    OBSERVATIONS_TIF,
    SERIES_CLASSES_TIF,
    clear_count_tif,
    is_water_fraction_tif,
    is_water_tif,
    pair_change_tif,
    water_layer,
)

from .vectors import (  # noqa: F401  (polygon layers and formats: re-exported, the package's writers of files)
    AREA_NOTE,
    DATE_FIELDS,
    SHAPEFILE_FIELDS,
    VECTOR_FORMATS,
    fixed_timestamps,
    gdb_name,
    layer_classes,
    write_vectors,
)

log = logging.getLogger(__name__)

#: water_<date>.tif's classes, in the one palette of rs_change.change.PALETTE
WATER_CLASSES = {0: "land", 1: "water", 255: "unobserved"}
WATER_COLORS = {code: PALETTE[name] for code, name in WATER_CLASSES.items()}


#: compression of the block-written staging files (never an output; outputs are DEFLATE COGs)
_STAGING_COMPRESSION = {"compress": "zstd", "zstd_level": 1}


class BlockWriter:
    """A tiled uint8 GeoTIFF on ``grid`` written one window at a time (a staging file: see :meth:`to_cog`).

    The class names go into the file as metadata (``CLASS_<code>`` band tags, ``CLASSES`` and
    ``CLASS_COLORS`` as JSON); the colour table does not: an 8-bit GeoTIFF's colour map always
    has 256 entries, so a GIS would list 256 classes. The trimmed colour table (one entry per
    class), the category names and the attribute table are written beside the COG in its
    ``.aux.xml`` (:func:`rs_change.styles.write_styles`), which GDAL, QGIS and ArcGIS read with
    the file, also over ``/vsicurl/``.

    Parameters
    ----------
    path : Path
        The staging file.
    grid : Grid
    nodata : int or None, default 255
    colormap : mapping code -> RGBA, optional
        Kept for the styles (:attr:`colormap`) and named in the ``CLASS_COLORS`` tag.
    classes : mapping code -> name, optional
    tags : mapping, optional
        Dataset metadata; values that are not strings are written as JSON.
    dtype : str, default "uint8"
    description : str, optional
        The band's description (what a pixel value means), shown by GDAL and QGIS instead of "Band 1".
    """

    def __init__(
        self,
        path: Path,
        grid: Grid,
        nodata: Optional[int] = 255,
        colormap: Optional[Mapping[int, tuple[int, int, int, int]]] = None,
        classes: Optional[Mapping[int, str]] = None,
        tags: Optional[Mapping[str, Any]] = None,
        dtype: str = "uint8",
        description: Optional[str] = None,
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.colormap = colormap
        self.classes = classes
        profile = dict(
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
            BIGTIFF="IF_SAFER",
        )
        # a staging file, read once more by to_cog (and the polygons): fastest compression that
        # still keeps it small (zstd level 1 writes 43 M class pixels in 0.03 s, deflate in 0.3 s)
        try:
            self.ds = rasterio.open(self.path, "w", **profile, **_STAGING_COMPRESSION)
        except rasterio.errors.RasterioError:  # a GDAL built without zstd
            self.ds = rasterio.open(self.path, "w", **profile, compress="deflate", zlevel=1)
        if description:
            self.ds.set_band_description(1, description)
        if classes:
            self.ds.update_tags(1, **{f"CLASS_{k}": v for k, v in classes.items()})
            self.ds.update_tags(CLASSES=json.dumps({str(k): v for k, v in classes.items()}))
        if classes and colormap:
            self.ds.update_tags(CLASS_COLORS=json.dumps({str(k): _hex(colormap[k]) for k in classes if k in colormap}))
        if tags:
            self.ds.update_tags(**{k: (v if isinstance(v, str) else json.dumps(v)) for k, v in tags.items()})

    def write(self, block: np.ndarray, row_off: int, col_off: int) -> None:
        """Write ``block`` with its top-left pixel at (``row_off``, ``col_off``)."""
        h, w = block.shape
        self.ds.write(block, 1, window=Window(col_off, row_off, w, h))

    def close(self) -> None:
        """Close the staging file (again is a no-op)."""
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


#: GDAL settings for the temporary overview file the COG driver writes beside the COG and copies
#: into it: uncompressed (``COG_TMP_COMPRESSION``), or if a GDAL ignores that, zstd level 1
#: instead of level 9. The COG's bytes do not change; a NAIP-size water-fraction COG took 0.35
#: instead of 0.56 CPU s, a cluster map 0.18 instead of 0.26 (the temporary file is a third of the
#: raster's pixels, in the staging folder, removed by GDAL).
COG_TMP_OVERVIEWS = {"COG_TMP_COMPRESSION": "NONE", "ZSTD_LEVEL_OVERVIEW": "1"}


def to_cog(src: Path, dst: Path, resampling: str = "NEAREST") -> None:
    """Copy a GeoTIFF to a COG with internal overviews (GDAL's COG driver)."""
    with rasterio.Env(**COG_TMP_OVERVIEWS):
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
    """Write a whole 2-D uint8 array as a COG (small rasters, tests); with ``classes``, its
    styles beside it (:func:`rs_change.styles.write_styles`: ``.qml`` and ``.aux.xml``).
    """
    from .styles import write_styles

    tmp = Path(str(path) + ".tmp.tif")
    w = BlockWriter(tmp, grid, **kw)
    try:
        w.write(array, 0, 0)
        w.to_cog(Path(path))
    finally:
        w.close()
        tmp.unlink(missing_ok=True)
    if w.classes:
        write_styles(Path(path), w.classes, w.colormap)
    return Path(path)


def _hex(c: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c[:3])


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


def provenance(version: str, inputs: Sequence[Mapping[str, Any]], units: str = "metre") -> dict[str, str]:
    """Metadata every raster and the GeoPackage carry: the software and version, the inputs (date,
    sensor and file name of each scene) and the units of the grid and the areas.

    No wall-clock time: the same config and seed give the same bytes (the dates in the files are
    the scenes' dates).
    """
    return {
        "TIFFTAG_SOFTWARE": f"rs-change {version}",
        "SOFTWARE": f"rs-change {version}",
        "INPUTS": json.dumps(list(inputs), ensure_ascii=False),
        "GRID_UNITS": units,
        "AREA_UNITS": "m2 of ground (ellipsoidal) area per pixel, summed; not planar map units",
    }


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` to ``path`` as indented UTF-8 JSON; returns ``path``."""
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> Path:
    """``rows`` as CSV (None as an empty cell); the header is ``columns`` and then any other key of
    the rows, in order of appearance (so a table without rows still has its header).
    """
    fields: list[str] = list(columns)
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

    def __init__(
        self, folder: Path, grid: Grid, dates: Sequence[str], provenance: Optional[Mapping[str, Any]] = None
    ) -> None:
        from .change import CHANGE_CLASSES, CHANGE_COLORS, FREQUENCY_NODATA, SERIES_CLASSES, SERIES_COLORS

        self.folder = Path(folder)
        self.dates = list(dates)
        prov = dict(provenance or {})
        span = {**prov, "FROM": self.dates[0], "TO": self.dates[-1], "DATES": self.dates}
        self.frequency = BlockWriter(self.folder / "frequency_blocks.tif", grid, FREQUENCY_NODATA,
                                     tags={**span, "UNITS": "percent of observed dates that were water"},
                                     description="water frequency (% of observed dates), 255 = never observed")
        self.observations = BlockWriter(self.folder / "observations_blocks.tif", grid, None,
                                        tags={**span, "UNITS": "dates"},
                                        description=f"dates observed (0 to {len(self.dates)})")
        self.classes = BlockWriter(
            self.folder / "series_blocks.tif",
            grid,
            255,
            SERIES_COLORS,
            SERIES_CLASSES,
            tags=span,
            description="series class over the observed dates, 255 = unobserved",
        )
        self.pairs = [
            BlockWriter(self.folder / f"pair_{a}_{b}_blocks.tif", grid, 255, CHANGE_COLORS, CHANGE_CLASSES,
                        tags={**prov, "FROM": a, "TO": b}, description=f"change class {a} -> {b}, 255 = unobserved")
            for a, b in zip(self.dates[:-1], self.dates[1:])
        ]

    def write(self, block: Any, row_off: int, col_off: int) -> None:
        """Write one :class:`rs_change.change.SeriesBlock`."""
        self.frequency.write(block.frequency, row_off, col_off)
        self.observations.write(block.observations, row_off, col_off)
        self.classes.write(block.classes, row_off, col_off)
        for wr, t in zip(self.pairs, block.transitions):
            wr.write(t, row_off, col_off)

    def finish(self, jobs: Any = None) -> dict[str, Path]:
        """COGs with styles in the staging folder; returns name -> path.

        With ``jobs`` (:class:`rs_change.outputs.WriteJobs`) the conversions run as its jobs and
        the files exist once ``jobs.wait()`` returns.
        """
        from .change import CHANGE_CLASSES, CHANGE_COLORS, SERIES_CLASSES, SERIES_COLORS
        from .styles import observations_ramp, write_styles

        todo: list[tuple[BlockWriter, Path, Any, Any, Any]] = [
            (self.frequency, self.folder / FREQUENCY_TIF, None, None, None),
            (self.observations, self.folder / OBSERVATIONS_TIF, None, None, observations_ramp(len(self.dates))),
            (self.classes, self.folder / SERIES_CLASSES_TIF, SERIES_CLASSES, SERIES_COLORS, None),
            *[(wr, self.folder / pair_change_tif(a, b), CHANGE_CLASSES, CHANGE_COLORS, None)
              for a, b, wr in zip(self.dates[:-1], self.dates[1:], self.pairs)],
        ]
        paths: list[Path] = []
        for wr, dst, classes, colors, ramp in todo:
            wr.close()
            if jobs is None:
                wr.to_cog(dst)
            else:
                jobs.submit(wr.to_cog, dst)
            paths += [dst, *write_styles(dst, classes, colors, ramp)]  # styles need only the name
        return {p.name: p for p in paths}

    def staging(self) -> dict[str, Path]:
        """Output name -> staging file (block-written, complete once closed), e.g. for figures."""
        out = {FREQUENCY_TIF: self.frequency.path, OBSERVATIONS_TIF: self.observations.path,
               SERIES_CLASSES_TIF: self.classes.path}
        for a, b, wr in zip(self.dates[:-1], self.dates[1:], self.pairs):
            out[pair_change_tif(a, b)] = wr.path
        return out

    def close(self) -> None:
        """Close every writer of the series."""
        for wr in (self.frequency, self.observations, self.classes, *self.pairs):
            wr.close()


class RunRasters:
    """The staging rasters a run writes block by block: ``water_<date>`` and
    ``water_fraction_<date>`` per date, ``change``
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
        (:func:`rs_change.clustermaps.cluster_writer_kwargs`).
    provenance : mapping, optional
        Metadata of every raster.
    composites : mapping of str to int, optional
        The dates of several scenes and their number of scenes: each gets ``clear_count_<date>``.
    """

    def __init__(self, folder: Path, grid: Grid, dates: Sequence[str], water_tags: Sequence[Mapping[str, Any]],
                 cluster_kwargs: Sequence[Mapping[str, Any]], provenance: Optional[Mapping[str, Any]] = None,
                 composites: Optional[Mapping[str, int]] = None, waterbodies: bool = False) -> None:
        from .change import CHANGE_CLASSES, CHANGE_COLORS

        prov = dict(provenance or {})
        folder = Path(folder)
        self.folder = folder
        self.dates = list(dates)
        self.water: list[BlockWriter] = []
        self.change: Optional[BlockWriter] = None
        self.series: Optional[SeriesWriters] = None
        self.clusters: list[BlockWriter] = []
        self.fraction: list[BlockWriter] = []
        #: per date: the clear_count writer of a composited date, else None
        self.clear_counts: list[Optional[BlockWriter]] = []
        self.scenes = dict(composites or {})
        self.waterbody: Optional[BlockWriter] = None  # waterbody classes (2+ dates): read by rs_change.waterbody
        try:
            for d in dates:
                n = self.scenes.get(d)
                self.clear_counts.append(None if n is None else BlockWriter(
                    folder / f"cc_{d}.tif", grid, None, tags={**prov, "DATE": d, "SCENES": n, "UNITS": "scenes"},
                    description=f"clear observations {d}: scenes (of {n}) that observed the pixel, 0 = none"))
            for d, tags in zip(dates, water_tags):
                self.water.append(
                    BlockWriter(
                        folder / f"w_{d}.tif",
                        grid,
                        255,
                        WATER_COLORS,
                        WATER_CLASSES,
                        tags={**prov, **tags},
                        description=f"water {d}: 1 water, 0 land, 255 unobserved",
                    )
                )
                self.fraction.append(BlockWriter(
                    folder / f"f_{d}.tif", grid, 255, tags={**prov, "DATE": d, "UNITS": "percent"},
                    description=f"water fraction {d}: percent 0-100 (water >= 50, land < 50), 255 unobserved"))
            if len(dates) >= 2:
                self.change = BlockWriter(folder / "change_blocks.tif", grid, 255, CHANGE_COLORS, CHANGE_CLASSES,
                                          tags={**prov, "FROM": dates[0], "TO": dates[-1]},
                                          description=f"change class {dates[0]} -> {dates[-1]}, 255 = unobserved")
            if len(dates) >= 3:
                self.series = SeriesWriters(folder, grid, dates, prov)
            if waterbodies and len(dates) >= 2:
                self.waterbody = BlockWriter(folder / "wb_classes_blocks.tif", grid, None,
                                             description="waterbody class: 0 none, 1 extent, 2 core")
            for d, kw in zip(dates, cluster_kwargs):
                self.clusters.append(
                    BlockWriter(folder / f"c_{d}.tif", grid, **{**kw, "tags": {**prov, **kw.get("tags", {})}})
                )
        except BaseException:
            self.close()
            raise

    def write(self, br: Any) -> None:
        """Write one :class:`rs_change.blocks.BlockResult` (its water masks, change map, cluster
        ids and series rasters) at its window.
        """
        r0, c0, _, _ = br.window
        for wr, m in zip(self.water, br.water):
            wr.write(m, r0, c0)
        for wr, m in zip(self.fraction, br.fraction):
            wr.write(m, r0, c0)
        if self.change is not None and br.change is not None:
            self.change.write(br.change, r0, c0)
        for cw, cl in zip(self.clusters, br.clusters):
            cw.write(cl, r0, c0)
        for cc, counts in zip(self.clear_counts, getattr(br, "clear_counts", [])):
            if cc is not None and counts is not None:
                cc.write(counts, r0, c0)
        if self.series is not None and br.series is not None:
            self.series.write(br.series, r0, c0)
        if self.waterbody is not None and br.waterbody is not None:
            self.waterbody.write(br.waterbody, r0, c0)

    def finish_clear_counts(self, jobs: Any = None) -> dict[str, Path]:
        """``clear_count_<date>.tif`` COGs with their ramp styles in the staging folder (name ->
        path); with ``jobs`` the conversions run as its jobs.
        """
        from .styles import clear_count_ramp, write_styles

        paths: list[Path] = []
        for d, wr in zip(self.dates, self.clear_counts):
            if wr is None:
                continue
            wr.close()
            dst = self.folder / clear_count_tif(d)
            if jobs is None:
                wr.to_cog(dst)
            else:
                jobs.submit(wr.to_cog, dst)
            paths += [dst, *write_styles(dst, None, None, clear_count_ramp(self.scenes[d]), unit=" scenes")]
        return {p.name: p for p in paths}

    def close(self) -> None:
        """Close every writer of the run."""
        for wr in [
            *self.water,
            *self.fraction,
            *([self.change] if self.change is not None else []),
            *self.clusters,
            *(c for c in self.clear_counts if c is not None),
            *([self.waterbody] if self.waterbody is not None else []),
        ]:
            wr.close()
        if self.series is not None:
            self.series.close()


def run_polygons(
    folder: Path,
    grid: Grid,
    water: Mapping[str, Path],
    change: Optional[Path],
    output: Any,
    threads: tuple[int, int] = (1, 1),
    metadata: Optional[Mapping[str, str]] = None,
    extra_layers: Optional[Mapping[str, Any] | Callable[[], Mapping[str, Any]]] = None,
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
    output : OutputConfig
        The config's ``output`` section (or anything with its attributes): ``formats``,
        ``min_area_m2`` (minimum polygon area; None = 4 mean pixel areas) and ``simplify_px``
        (simplification tolerance in pixels).
    threads : (int, int), default (1, 1)
        Threads tracing the strips of the rasters (:func:`rs_change.strips.strip_regions_many`),
        and threads joining each raster's regions and building its layer (one raster each).
    metadata : mapping str -> str, optional
        Provenance for the GeoPackage (:func:`provenance`).
    extra_layers : mapping name -> GeoDataFrame, or a function returning one, optional
        Layers made elsewhere, written after these in every format (the ``waterbodies`` layer:
        :mod:`rs_change.waterbody`); not sieved or simplified here.  A function is called once
        these layers are built (the waterbodies are made meanwhile by another thread).

    Returns
    -------
    files : dict output name -> path
    summary : dict
        ``{min_area_m2, simplify_px, layers: {name: {features, area_km2, removed_features,
        removed_km2, raster_km2}}}`` for summary.json.
    """
    from .engine import release_free_memory
    from .strips import KEEP_SHAPE_PX, layer_from_regions, mean_pixel_area, strip_regions_many

    workers, layer_workers = threads
    formats, simplify_px = output.formats, output.simplify_px
    min_a = float(4.0 * mean_pixel_area(grid)) if output.min_area_m2 is None else float(output.min_area_m2)
    jobs = _polygon_jobs(water, change)
    # every raster in one pass of strips, merged across strip edges: memory set by a strip, not the
    # raster, and the strip's pixel areas computed once for all (rs_change.strips)
    regions = strip_regions_many([(path, values) for path, values, _, _ in jobs.values()], grid, workers=workers,
                                 finish_workers=layer_workers)
    release_free_memory()  # the strips' arrays, freed between the polygons kept

    def layer(item: tuple[tuple[str, tuple[Path, Mapping[int, str], str, Optional[dict]]], dict[str, Any]]) -> Any:
        (_, (_, values, date, extra)), reg = item
        return layer_from_regions(reg, grid, values, min_a, simplify_px, date, extra)

    if layer_workers > 1 and len(jobs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(layer_workers, len(jobs)), thread_name_prefix="rs-change-poly") as ex:
            built = list(ex.map(layer, zip(jobs.items(), regions)))  # in order: the same layers
    else:
        built = [layer(item) for item in zip(jobs.items(), regions)]
    layers = {name: gdf for name, (gdf, _, _) in zip(jobs, built)}
    stats = {name: _layer_stats(gdf, removed, raster) for name, (gdf, removed, raster) in zip(jobs, built)}
    layers.update((extra_layers() if callable(extra_layers) else extra_layers) or {})
    files = write_vectors(folder, layers, formats, metadata)
    del layers, built
    release_free_memory()  # the layers' frames and the simplification's temporaries
    summary = {
        "min_area_m2": round(min_a, 6),
        "simplify_px": simplify_px,
        "formats": list(dict.fromkeys(formats)),
        "note": "area_m2 = sum of the polygon's pixel ground areas; polygons smaller than min_area_m2 are removed "
                "(removed_km2); area_km2 + removed_km2 = raster_km2; shapes of fewer than "
                f"{KEEP_SHAPE_PX} pixels are not simplified",
        "layers": stats,
    }
    return files, summary


def _polygon_jobs(water: Mapping[str, Path], change: Optional[Path]
                  ) -> dict[str, tuple[Path, Mapping[int, str], str, Optional[dict]]]:
    """The polygon layers of a run's rasters: layer name -> (raster, class codes and names, the
    layer's date, extra columns); the change layer's dates from change.tif's tags.
    """
    from .change import CHANGE_CLASSES, WATER_GAINED, WATER_LOST

    jobs: dict[str, tuple[Path, Mapping[int, str], str, Optional[dict]]] = {
        water_layer(date): (Path(path), {1: "water"}, date, None) for date, path in water.items()}
    if change is not None:
        with rasterio.open(change) as ds:
            frm, to = ds.tags().get("FROM", ""), ds.tags().get("TO", "")
        classes = {WATER_GAINED: CHANGE_CLASSES[WATER_GAINED], WATER_LOST: CHANGE_CLASSES[WATER_LOST]}
        jobs[CHANGE_LAYER] = (Path(change), classes, to, {"from_date": frm})
    return jobs


def _layer_stats(gdf: Any, removed: Mapping[str, Mapping[str, float]], raster: float) -> dict[str, Any]:
    """summary.json's figures of one polygon layer: features and area kept, removed as too small,
    and the raster's own area.
    """
    return {
        "features": int(len(gdf)),
        "area_km2": round(float(gdf["area_m2"].sum()) / 1e6, 6) if len(gdf) else 0.0,
        "removed_features": int(sum(r["features"] for r in removed.values())),
        "removed_km2": round(sum(r["area_m2"] for r in removed.values()) / 1e6, 6),
        "raster_km2": round(raster / 1e6, 6),
    }


def style_outputs(staged: Mapping[str, Path]) -> dict[str, Path]:
    """QGIS ``.qml`` and GDAL ``.aux.xml`` beside the staged ``water_<date>.tif`` and ``change.tif``;
    a ramp ``.qml`` beside ``water_fraction_<date>.tif``.
    """
    from .change import CHANGE_CLASSES, CHANGE_COLORS
    from .styles import FRACTION_RAMP, write_styles

    out: dict[str, Path] = {}
    for name, path in list(staged.items()):
        if is_water_tif(name):
            paths = write_styles(path, WATER_CLASSES, WATER_COLORS)
        elif is_water_fraction_tif(name):
            paths = write_styles(path, None, None, FRACTION_RAMP, " %")
        elif name == CHANGE_TIF:
            paths = write_styles(path, CHANGE_CLASSES, CHANGE_COLORS)
        else:
            continue
        out.update({p.name: p for p in paths})
    return out


def manifest_files(folder: Path, names: Sequence[str]) -> list[str]:
    """``names`` with each folder output (``water.gdb``, ``water_shp`` ...) expanded to its files
    (``water.gdb/a00000001.gdbtable`` ...), sorted within the folder, for the manifest.
    """
    out: list[str] = []
    for n in names:
        p = Path(folder) / n
        if p.is_dir():
            out += sorted(str(f.relative_to(folder)) for f in p.rglob("*") if f.is_file())
        else:
            out.append(n)
    return out
