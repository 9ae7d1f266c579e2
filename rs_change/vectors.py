"""EDGE: polygon layers in every vector format (GeoPackage, Shapefile, GeoJSON, File Geodatabase).

Layers are written with pyogrio, with ground ``area_m2``, Date fields, styles beside each file
(``.qml``, ``.sld``; the GeoPackage's ``layer_styles`` table) and no wall-clock time in any file
(:func:`fixed_timestamps`), so the same layers give the same bytes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from .names import CHANGE_LAYER, VECTOR_NAMES, WATERBODIES_LAYER

#: ``output.formats`` value -> (GDAL driver, output name in the run folder: rs_change.names.VECTOR_NAMES)
VECTOR_FORMATS: dict[str, tuple[str, str]] = {
    fmt: (driver, VECTOR_NAMES[fmt])
    for fmt, driver in (("gpkg", "GPKG"), ("shp", "ESRI Shapefile"), ("geojson", "GeoJSON"), ("gdb", "OpenFileGDB"))
}

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
