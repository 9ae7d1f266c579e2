"""The names of the files a run writes, declared once.

Output names are an API: scripts and GIS projects open them by name (docs/config.md lists them,
docs/products.md describes them).  Every module that writes, lists or reads an output takes its
name from here: the pipeline, the exporters, the cluster maps and models, the report, the
manifest and swap, the array API's ``write_outputs`` and ``rs-change sample`` / ``assess``.
Standard library only, imports nothing of the package.
"""

from __future__ import annotations

from typing import Sequence

SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
CONFIG_YAML = "config.yaml"
#: Written last; lists the sha256 of every other file of the set (rs_change.outputs).
MANIFEST = "manifest.json"
#: What ``--summary-only`` writes, as a set.
SUMMARY_SET = (SUMMARY_JSON, SUMMARY_CSV, CONFIG_YAML, MANIFEST)

CHANGE_TIF = "change.tif"
FREQUENCY_TIF = "frequency.tif"
#: How many dates observed each pixel (the denominator of frequency.tif), 3+ dates.
OBSERVATIONS_TIF = "observations.tif"
#: Gained / lost / net / unobserved areas per consecutive pair of dates and first -> last (2+ dates).
CHANGE_CSV = "change.csv"
SERIES_CLASSES_TIF = "series_classes.tif"

TIMESERIES_CSV = "timeseries.csv"
TIMESERIES_PNG = "timeseries.png"
REPORT_HTML = "report.html"
FREQUENCY_PNG = "frequency.png"
SERIES_CLASSES_PNG = "series_classes.png"
#: the report's map of change.tif (first -> last date) in a series of 3+ dates
CHANGE_PNG = "change.png"

#: The run's STAC Collection (rs_change.catalog); its Items are ``stac_<date>.json`` and ``stac_change.json``.
CATALOG_JSON = "catalog.json"

#: The water polygons' layer name of one date, ``water_2009_08_18`` (the change layer is
#: ``change``): letters, digits and underscores only, so that SQL names it without quoting and
#: every format (GeoPackage, Shapefile, GeoJSON, File Geodatabase) uses the same name.
WATER_LAYER = "water_{date}"
CHANGE_LAYER = "change"
#: Waterbody polygons (2+ dates), in every vector format with the other layers (rs_change.waterbody).
WATERBODIES_LAYER = "waterbodies"
#: One row per waterbody and date: uid, date, wet_m2, wet_pct, dry_m2, invalid_m2, invalid_pct.
WATERBODIES_CSV = "waterbodies.csv"
#: The report's plot of the waterbodies that changed most.
WATERBODIES_PNG = "waterbodies.png"

#: ``output.formats`` value -> the vector output's name (a file, or a folder of files).
VECTOR_NAMES: dict[str, str] = {
    "gpkg": "water.gpkg",
    "shp": "water_shp",
    "geojson": "water_geojson",
    "gdb": "water.gdb",
}


def water_tif(date: str) -> str:
    """``water_<date>.tif``: the date's water mask."""
    return f"water_{date}.tif"


def is_water_tif(name: str) -> bool:
    """True for a ``water_<date>.tif`` name (not a ``water_fraction_<date>.tif``)."""
    return name.startswith("water_") and name.endswith(".tif") and not is_water_fraction_tif(name)


def water_fraction_tif(date: str) -> str:
    """``water_fraction_<date>.tif``: the date's water fraction per pixel (0-100, 255 unobserved)."""
    return f"water_fraction_{date}.tif"


def is_water_fraction_tif(name: str) -> bool:
    """True for a ``water_fraction_<date>.tif`` name."""
    return name.startswith("water_fraction_") and name.endswith(".tif")


def stac_item_json(date: str) -> str:
    """``stac_<date>.json``: the STAC Item of one date (``stac_change.json``: the change products')."""
    return f"stac_{date}.json"


def catalog_names(dates: Sequence[str]) -> list[str]:
    """``catalog.json`` and its Items (rs_change.catalog): one per date and, with two or more
    dates, the change products' Item.
    """
    items = [stac_item_json(d) for d in dates] + ([stac_item_json("change")] if len(dates) >= 2 else [])
    return [CATALOG_JSON, *items]


def water_layer(date: str) -> str:
    """``water_<date>`` with the date's hyphens as underscores: the date's polygon layer."""
    return WATER_LAYER.format(date=date.replace("-", "_"))


def pair_change_tif(a: str, b: str) -> str:
    """``change_<a>_<b>.tif``: change between consecutive dates (3+ dates)."""
    return f"change_{a}_{b}.tif"


def clear_count_tif(date: str) -> str:
    """``clear_count_<date>.tif``: how many scenes of a composited date observed each pixel."""
    return f"clear_count_{date}.tif"


def composite_names(dates: Sequence[str]) -> list[str]:
    """The clear-count rasters (with their ramp styles) of the composited ``dates`` (dates of
    several scenes).
    """
    return [n for d in dates for n in (clear_count_tif(d), *style_names(clear_count_tif(d), classified=False))]


def clusters_tif(date: str) -> str:
    """``clusters_<date>.tif``: the date's cluster ids."""
    return f"clusters_{date}.tif"


def clusters_png(date: str) -> str:
    """``clusters_<date>.png``: the cluster map as a picture."""
    return f"clusters_{date}.png"


def model_json(date: str) -> str:
    """``model_<date>.json``: the date's fitted model."""
    return f"model_{date}.json"


def quicklook_png(date: str) -> str:
    """``quicklook_<date>.png``: the report's figure of one date."""
    return f"quicklook_{date}.png"


def style_names(tif: str, classified: bool = True) -> list[str]:
    """The styles :func:`rs_change.styles.write_styles` writes beside ``tif``: ``<stem>.qml`` and,
    for a classified raster, ``<tif>.aux.xml``.
    """
    stem = tif[: -len(".tif")] if tif.endswith(".tif") else tif
    return [f"{stem}.qml"] + ([f"{tif}.aux.xml"] if classified else [])


def series_names(dates: Sequence[str]) -> list[str]:
    """The many-date rasters and their styles (3+ dates): frequency, series classes and the
    change between consecutive dates.
    """
    out = [FREQUENCY_TIF, *style_names(FREQUENCY_TIF, classified=False), OBSERVATIONS_TIF,
           *style_names(OBSERVATIONS_TIF, classified=False), SERIES_CLASSES_TIF, *style_names(SERIES_CLASSES_TIF)]
    for a, b in zip(dates[:-1], dates[1:]):
        out += [pair_change_tif(a, b), *style_names(pair_change_tif(a, b))]
    return out


def report_names(dates: Sequence[str], many: bool) -> list[str]:
    """The report's table, figures and page (``many``: 3+ dates)."""
    names = [TIMESERIES_CSV, TIMESERIES_PNG, REPORT_HTML] + [quicklook_png(d) for d in dates]
    if many:
        names += [FREQUENCY_PNG, SERIES_CLASSES_PNG, CHANGE_PNG]
    return names


def cluster_names(dates: Sequence[str]) -> list[str]:
    """The cluster maps (with their styles) and models a run writes per date."""
    return [n for d in dates for n in (clusters_tif(d), *style_names(clusters_tif(d)), clusters_png(d), model_json(d))]


def run_names(dates: Sequence[str], polygons: bool, formats: Sequence[str], report: bool,
              composites: Sequence[str] = (), waterbodies: bool = True) -> list[str]:
    """Every name a run writes into its output folder, for ``dates`` (ISO), the ``output``
    section's ``polygons``, ``formats`` and ``report``, the ``composites`` (the dates of
    several scenes, which get a ``clear_count_<date>.tif``) and ``waterbodies.enabled``.
    """
    formats = list(dict.fromkeys(formats))
    names = [water_tif(d) for d in dates]
    if len(dates) >= 2:
        names.append(CHANGE_TIF)
    if polygons and "gpkg" in formats:
        names.append(VECTOR_NAMES["gpkg"])
    # .qml, .aux.xml
    names += [style_names(water_tif(d))[0] for d in dates] + [style_names(water_tif(d))[1] for d in dates]
    names += [n for d in dates for n in (water_fraction_tif(d), *style_names(water_fraction_tif(d), classified=False))]
    if len(dates) >= 2:
        names += style_names(CHANGE_TIF)
    if len(dates) >= 3:
        names += series_names(dates)
    if polygons:
        names += [VECTOR_NAMES[f] for f in formats if f != "gpkg"]
    if report:
        names += report_names(dates, len(dates) >= 3)
    names += cluster_names(dates)
    names += composite_names([d for d in dates if d in set(composites)])
    if len(dates) >= 2:
        names.append(CHANGE_CSV)
    if waterbodies and len(dates) >= 2:
        names.append(WATERBODIES_CSV)
        if report:
            names.append(WATERBODIES_PNG)
    names += catalog_names(dates)
    names += [SUMMARY_JSON, SUMMARY_CSV, CONFIG_YAML, MANIFEST]
    return names
