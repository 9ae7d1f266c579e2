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

from .change import PALETTE
from .grid import Grid
from .names import (
    CHANGE_LAYER,
    CHANGE_TIF,
    FREQUENCY_TIF,
    OBSERVATIONS_TIF,
    SERIES_CLASSES_TIF,
    VECTOR_NAMES,
    WATERBODIES_LAYER,
    clear_count_tif,
    is_water_fraction_tif,
    is_water_tif,
    pair_change_tif,
    water_layer,
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


@contextlib.contextmanager
def fixed_timestamps() -> Iterator[None]:
    """Within the block, GDAL vector drivers stamp files with :func:`_fixed_date` (GeoPackage
    ``gpkg_contents.last_change`` through ``OGR_CURRENT_DATE``) instead of the clock, and the
    File Geodatabase writer derives its UUIDs from the content (``OPENFILEGDB_REPRODUCIBLE_UUID``)
    instead of drawing them at random.
    """
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


# ---------------------------------------------------------------------------------------------
# Polygons for GIS: sieve, topology-preserving simplification, geodesic perimeter, formats
# ---------------------------------------------------------------------------------------------
#: ``output.formats`` value -> (GDAL driver, output name in the run folder: rs_change.names.VECTOR_NAMES)
VECTOR_FORMATS: dict[str, tuple[str, str]] = {
    fmt: (driver, VECTOR_NAMES[fmt])
    for fmt, driver in (("gpkg", "GPKG"), ("shp", "ESRI Shapefile"), ("geojson", "GeoJSON"), ("gdb", "OpenFileGDB"))
}

#: Shapefile (dBASE) field names are at most 10 characters
SHAPEFILE_FIELDS = {"perimeter_m": "perim_m", "wet_first_m2": "wet_frst", "wet_last_m2": "wet_last"}


def gdb_name(name: str) -> str:
    """A layer name that File Geodatabases accept (letters, digits, underscores)."""
    import re

    out = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return out if out[:1].isalpha() else "l_" + out


#: Columns written as Date fields (QGIS's temporal controller, date filters in SQL)
DATE_FIELDS = ("date", "from_date")

#: What ``area_m2`` is, in every layer's metadata and docs/products.md
AREA_NOTE = ("area_m2 = the polygon's ground area in m2 (the sum of its pixels' areas on the ellipsoid), whatever "
             "the layer's CRS; a planar measure in a non-equal-area CRS (e.g. EPSG:3857) differs")


def layer_classes(layer: str = "") -> dict[str, tuple[int, int, int, int]]:
    """The ``class`` values of a polygon layer and their colours, in the rasters' palette: the
    change layer's ``water gained`` / ``water lost``, a water layer's ``water`` (all three without
    ``layer``), the waterbodies layer's ``grew`` / ``shrank`` / ``unchanged`` / ``unobserved``.
    """
    from .change import PALETTE

    if layer == WATERBODIES_LAYER:
        from .waterbody import CHANGE_CLASS_COLORS

        return {name: PALETTE[colour] for name, colour in CHANGE_CLASS_COLORS.items()}
    names = {CHANGE_LAYER: ("water gained", "water lost")}.get(layer, ("water",)) if layer else (
        "water", "water gained", "water lost")
    return {name: PALETTE[name] for name in names}


def write_vectors(folder: Path, layers: Mapping[str, Any], formats: Sequence[str],
                  metadata: Optional[Mapping[str, str]] = None) -> dict[str, Path]:
    """:func:`_write_vectors` with fixed time stamps in the files (same results, same bytes)."""
    with fixed_timestamps():
        return _write_vectors(folder, layers, formats, metadata)


def _write_frame(gdf: Any, path: Path, layer: str, driver: str, append: bool = False, date_type: str = "datetime64[D]",
                 **kw: Any) -> None:
    """Write a polygon GeoDataFrame through pyogrio's array writer, with the :data:`DATE_FIELDS`
    as Date fields (pyogrio's data frame writer makes them strings, or date-times).

    ``date_type="datetime64[s]"`` writes them as date-times at midnight instead: the File
    Geodatabase's classic Date type (its date-only type needs ArcGIS Pro 3.2 and GDAL 3.8 to read).
    """
    import pyogrio.raw
    import shapely

    names = [c for c in gdf.columns if c != gdf.geometry.name]
    # an empty layer's columns are float: give them their types (String, Integer64, Date)
    kinds = {
        "class": object,
        "pixels": np.int64,
        "date": date_type,
        "from_date": date_type,
        "uid": object,
        "wb_id": np.int64,
    }
    data = [np.asarray(gdf[c].to_numpy(), dtype="datetime64[D]").astype(date_type) if c in DATE_FIELDS
            else gdf[c].to_numpy().astype(kinds[c]) if (c in kinds and not len(gdf) and gdf[c].dtype.kind == "f")
            else gdf[c].to_numpy() for c in names]
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(np.asarray(gdf.geometry.values)),
        data,
        names,
        layer=layer,
        driver=driver,
        geometry_type="Polygon",
        crs=gdf.crs.to_wkt() if gdf.crs is not None else None,
        append=append,
        **kw,
    )


def _write_vectors(folder: Path, layers: Mapping[str, Any], formats: Sequence[str],
                   metadata: Optional[Mapping[str, str]] = None) -> dict[str, Path]:
    """Write polygon layers in each of ``formats`` (``gpkg``, ``shp``, ``geojson``, ``gdb``).

    Layer names are the same in every format (letters, digits, underscores: ``water_2009_08_18``);
    ``date`` / ``from_date`` are Date fields; every layer is styled in the rasters' palette
    (:func:`rs_change.styles.vector_qml` / :func:`~rs_change.styles.vector_sld`).

    * ``gpkg``: one ``water.gpkg`` with a layer per name, a ``layer_styles`` table (QGIS applies
      the default style of a layer when it loads it) and ``metadata`` (software, inputs, units,
      what ``area_m2`` is) on the file and every layer;
    * ``shp``: a folder ``water_shp/`` with ``<layer>.shp`` (+ .shx .dbf .prj .cpg, UTF-8) and
      ``<layer>.qml`` / ``<layer>.sld`` (QGIS loads the ``.qml`` with the file);
      ``perimeter_m`` is named ``perim_m`` there (10-character dBASE field names);
    * ``geojson``: a folder ``water_geojson/`` with ``<layer>.geojson`` in EPSG:4326 (RFC 7946)
      and its ``.qml`` / ``.sld``;
    * ``gdb``: one File Geodatabase ``water.gdb`` (GDAL's OpenFileGDB writer; no style: ArcGIS
      keeps symbology in .lyrx files, which GDAL does not write).

    Parameters
    ----------
    folder : Path
        Where the outputs are created (normally the run's temporary folder).
    layers : mapping name -> GeoDataFrame
    formats : sequence of str
    metadata : mapping str -> str, optional
        Provenance written into the GeoPackage (dataset and layers).

    Returns
    -------
    dict output name -> path
    """
    import pyogrio

    from .styles import vector_qml, vector_sld

    out: dict[str, Path] = {}
    folder = Path(folder)
    meta = {**{k: v for k, v in (metadata or {}).items() if not k.startswith("TIFFTAG_")}, "AREA_M2": AREA_NOTE}
    for fmt in dict.fromkeys(formats):
        if fmt not in VECTOR_FORMATS:
            from .errors import ConfigError

            raise ConfigError(f"output.formats: unknown vector format {fmt!r}; use one of {', '.join(VECTOR_FORMATS)}")
        driver, name = VECTOR_FORMATS[fmt]
        dst = folder / name
        for i, (lname, gdf) in enumerate(layers.items()):
            if fmt == "gpkg":  # GeoPackage 1.2: what GDAL < 3.7 (QGIS 3.22 on Debian 12) reads without a warning
                first: dict[str, Any] = {} if i else {"dataset_metadata": meta, "dataset_options": {"VERSION": "1.2"}}
                _write_frame(gdf, dst, lname, driver, append=i > 0, layer_metadata=meta, **first)
            elif fmt == "gdb":
                g = gdf.copy()
                for col in ("pixels", "wb_id"):
                    if col in g and (not len(g) or int(g[col].max()) < 2**31):  # Integer64 needs ArcGIS Pro 3.2+
                        g[col] = g[col].astype("int32")
                # a lake with > 100 islands makes GDAL's ring organiser warn and slow down; our rings
                # are already organised (shapely polygons), so skip it
                pyogrio.set_gdal_config_options({"OGR_ORGANIZE_POLYGONS": "SKIP"})
                try:
                    _write_frame(g, dst, gdb_name(lname), driver, append=i > 0, date_type="datetime64[s]")
                finally:
                    pyogrio.set_gdal_config_options({"OGR_ORGANIZE_POLYGONS": None})
            else:
                dst.mkdir(parents=True, exist_ok=True)
                if fmt == "shp":
                    _write_frame(
                        gdf.rename(columns=SHAPEFILE_FIELDS),
                        dst / f"{lname}.shp",
                        lname,
                        driver,
                        encoding="UTF-8",
                        DBF_DATE_LAST_UPDATE=_fixed_date()[:10],
                    )
                else:
                    _write_frame(gdf.to_crs("EPSG:4326"), dst / f"{lname}.geojson", lname, driver, RFC7946="YES")
                (dst / f"{lname}.qml").write_text(vector_qml("class", layer_classes(lname)), encoding="utf-8")
                (dst / f"{lname}.sld").write_text(vector_sld(lname, "class", layer_classes(lname)), encoding="utf-8")
        if fmt == "gpkg":
            _write_layer_styles(dst, list(layers))
        out[name] = dst
    return out


def _write_layer_styles(gpkg: Path, layer_names: Sequence[str]) -> None:
    """The ``layer_styles`` table QGIS reads from a GeoPackage (the one QGIS writes with "Save
    style in database"): one default style per layer, its QML and SLD, at the fixed time stamp.
    """
    import pyogrio.raw

    from .styles import vector_qml, vector_sld

    n = len(layer_names)
    cols: dict[str, Any] = {
        "f_table_catalog": [""] * n,
        "f_table_schema": [""] * n,
        "f_table_name": list(layer_names),
        "f_geometry_column": ["geom"] * n,
        "styleName": list(layer_names),
        "styleQML": [vector_qml("class", layer_classes(nm)) for nm in layer_names],
        "styleSLD": [vector_sld(nm, "class", layer_classes(nm)) for nm in layer_names],
        "useAsDefault": [True] * n,
        "description": ["rs-change: classes in the palette of the rasters"] * n,
        "owner": [""] * n,
        "ui": [""] * n,
    }
    data = [np.array(v, dtype=bool if k == "useAsDefault" else object) for k, v in cols.items()]
    data.append(np.array([_fixed_date()[:19]] * n, dtype="datetime64[ms]"))
    pyogrio.raw.write(str(gpkg), None, data, [*cols, "update_time"], layer="layer_styles", driver="GPKG", append=True,
                      geometry_type=None, gdal_tz_offsets={"update_time": np.full(n, 100)})  # 100: GDAL's flag for UTC


# ---------------------------------------------------------------------------------------------
# Many-date rasters, styles, polygon outputs of a run
# ---------------------------------------------------------------------------------------------
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
    extra_layers: Optional[Mapping[str, Any]] = None,
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
    extra_layers : mapping name -> GeoDataFrame, optional
        Layers made elsewhere, written after these in every format (the ``waterbodies`` layer:
        :mod:`rs_change.waterbody`); not sieved or simplified here.

    Returns
    -------
    files : dict output name -> path
    summary : dict
        ``{min_area_m2, simplify_px, layers: {name: {features, area_km2, removed_features,
        removed_km2, raster_km2}}}`` for summary.json.
    """
    from .strips import KEEP_SHAPE_PX, layer_from_regions, mean_pixel_area, strip_regions_many

    workers, layer_workers = threads
    formats, simplify_px = output.formats, output.simplify_px
    min_a = float(4.0 * mean_pixel_area(grid)) if output.min_area_m2 is None else float(output.min_area_m2)
    jobs = _polygon_jobs(water, change)
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
    layers = {name: gdf for name, (gdf, _, _) in zip(jobs, built)}
    stats = {name: _layer_stats(gdf, removed, raster) for name, (gdf, removed, raster) in zip(jobs, built)}
    layers.update(extra_layers or {})
    files = write_vectors(folder, layers, formats, metadata)
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
