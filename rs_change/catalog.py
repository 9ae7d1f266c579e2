"""EDGE: a run's outputs published as a static STAC catalog (``catalog.json`` and its Items).

``catalog.json`` is a STAC Collection; each date has an Item (``stac_<date>.json``) whose assets
are that date's rasters (``water``, ``water_fraction``, ``clusters``, ``clear_count`` for a
composited date),
and a run of two or more dates has one Item for the change products (``stac_change.json``:
``change.tif``, the series rasters, the polygons).  Every href is relative (``./water_<date>.tif``),
so the catalog resolves wherever the output folder is moved or copied.

Which files become which assets is one table (:data:`DATE_ASSETS`, :data:`CHANGE_ASSETS`): a new
per-date or change layer is published by adding a row; a row whose file the run did not write is
skipped.  What each asset says about its pixels is read from the staged file itself (data type,
nodata, the ``CLASSES`` tag that :class:`rs_change.export.BlockWriter` writes, the band
description), so the catalog cannot disagree with the rasters.

The bytes depend only on the run's dates, grid and files: no wall-clock time (an Item's
``datetime`` is its date at 00:00 UTC, the change Item has ``start_datetime`` / ``end_datetime``),
sorted keys, fixed rounding.  Written into the staging folder before ``manifest.json``, so the
manifest lists them and they are swapped in with the rest of the set (:mod:`rs_change.outputs`).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from .grid import Grid
from .names import (
    CATALOG_JSON,
    CHANGE_TIF,
    FREQUENCY_TIF,
    OBSERVATIONS_TIF,
    SERIES_CLASSES_TIF,
    VECTOR_NAMES,
    clear_count_tif,
    clusters_tif,
    pair_change_tif,
    stac_item_json,
    water_fraction_tif,
    water_tif,
)

#: STAC version and extension schemas the catalog declares.
STAC_VERSION = "1.0.0"
PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
#: The Collection's id (the folder's name is not used: a moved folder keeps its catalog's bytes).
COLLECTION_ID = "rs-change"

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
GPKG = "application/geopackage+sqlite3"
JSON = "application/json"

Namer = Callable[..., str]


@dataclass(frozen=True)
class AssetSpec:
    """One row of the asset table: the asset ``key`` of the file ``name(date)`` (per-date rows) or
    ``name`` (change rows; ``pairs``: one asset per consecutive pair ``name(a, b)``, keyed
    ``<key>_<a>_<b>``).
    """

    key: str
    name: Union[str, Namer]
    title: str
    media_type: str = COG
    roles: tuple[str, ...] = ("data",)
    pairs: bool = False


#: Per-date assets, in the order they are listed in each date's Item.
DATE_ASSETS: tuple[AssetSpec, ...] = (
    AssetSpec("water", water_tif, "Water mask: 1 water, 0 land, 255 unobserved"),
    AssetSpec("water_fraction", water_fraction_tif, "Water fraction of each pixel"),
    AssetSpec("clusters", clusters_tif, "k-means cluster ids, 255 unobserved"),
    AssetSpec("clear_count", clear_count_tif, "Scenes that observed each pixel (a composited date)"),
)

#: Assets of the change Item (runs of two or more dates).
CHANGE_ASSETS: tuple[AssetSpec, ...] = (
    AssetSpec("change", CHANGE_TIF, "Change class, first -> last date"),
    AssetSpec("frequency", FREQUENCY_TIF, "Water frequency over the dates observed"),
    AssetSpec("observations", OBSERVATIONS_TIF, "Dates observed"),
    AssetSpec("series_classes", SERIES_CLASSES_TIF, "Series classes"),
    AssetSpec("change", pair_change_tif, "Change class between consecutive dates", pairs=True),
    AssetSpec("polygons", VECTOR_NAMES["gpkg"], "Water and change polygons (GeoPackage)", media_type=GPKG),
)


def _r(x: float, nd: int = 9) -> float:
    v = round(float(x), nd)
    return 0.0 if v == 0 else v


def _proj(grid: Grid) -> dict[str, Any]:
    """The projection extension's fields of ``grid``: ``proj:code`` (and the older ``proj:epsg``)
    when the CRS has an EPSG code, else ``proj:wkt2``; shape and the 6 affine coefficients.
    """
    epsg = grid.crs.to_epsg()
    t = grid.transform
    out: dict[str, Any] = {"proj:shape": [grid.height, grid.width], "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f]}
    if epsg is not None:
        out["proj:code"], out["proj:epsg"] = f"EPSG:{epsg}", int(epsg)
    else:
        out["proj:code"], out["proj:epsg"], out["proj:wkt2"] = None, None, grid.crs.to_wkt()
    return out


def _footprint(grid: Grid) -> tuple[list[float], dict[str, Any]]:
    """Bounding box and polygon of the grid in longitude / latitude (densified edges)."""
    from rasterio.warp import transform_bounds

    w, s, e, n = (_r(v) for v in transform_bounds(grid.crs.to_wkt(), "EPSG:4326", *grid.bounds, densify_pts=21))
    return [w, s, e, n], {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _raster_fields(path: Path, grid: Grid) -> dict[str, Any]:
    """What a staged raster says about its band: ``raster:bands`` (data type, nodata, resolution)
    and, from its ``CLASSES`` tag, ``classification:classes``; its band description.
    """
    import rasterio

    with rasterio.open(path) as ds:
        band: dict[str, Any] = {"data_type": ds.dtypes[0], "spatial_resolution": _r(grid.res[0])}
        if ds.nodata is not None:
            band["nodata"] = int(ds.nodata) if float(ds.nodata).is_integer() else float(ds.nodata)
        out: dict[str, Any] = {"raster:bands": [band]}
        classes = ds.tags().get("CLASSES")
        if ds.descriptions and ds.descriptions[0]:
            out["description"] = ds.descriptions[0]
    if classes:
        out["classification:classes"] = [
            {
                "value": int(k),
                "name": _class_name(v),
                "description": v,
                **({"nodata": True} if int(k) == band.get("nodata") else {}),
            }
            for k, v in sorted(json.loads(classes).items(), key=lambda kv: int(kv[0]))
        ]
    return out


def _class_name(label: str) -> str:
    """A class label as the classification extension's ``name`` (no spaces)."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_") or "class"


def _asset(folder: Path, name: str, spec: AssetSpec, grid: Grid) -> dict[str, Any]:
    a: dict[str, Any] = {"href": f"./{name}", "type": spec.media_type, "title": spec.title, "roles": list(spec.roles)}
    if spec.media_type == COG:
        a.update(_raster_fields(folder / name, grid))
    return a


def _assets(folder: Path, specs: Sequence[AssetSpec], written: set[str], grid: Grid, date: Optional[str],
            dates: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if spec.pairs:
            named = [(f"{spec.key}_{a}_{b}", spec.name(a, b)) for a, b in zip(dates[:-1], dates[1:])]  # type: ignore[operator]
        else:
            named = [(spec.key, spec.name(date) if callable(spec.name) else spec.name)]
        for key, name in named:
            if name in written and key not in out:
                out[key] = _asset(folder, name, spec, grid)
    return out


def _links(self_name: str, parent: bool = True) -> list[dict[str, Any]]:
    links = [{"rel": "root", "href": f"./{CATALOG_JSON}", "type": JSON}]
    if parent:
        links += [{"rel": "parent", "href": f"./{CATALOG_JSON}", "type": JSON},
                  {"rel": "collection", "href": f"./{CATALOG_JSON}", "type": JSON}]
    return links


def _iso(date: str) -> str:
    return _dt.date.fromisoformat(date).isoformat() + "T00:00:00Z"


def build_catalog(folder: Path, dates: Sequence[str], written: Sequence[str], grid: Grid,
                  title: Optional[str] = None) -> dict[str, dict[str, Any]]:
    """The catalog's documents, file name -> JSON object, for the files ``written`` in ``folder``.

    Parameters
    ----------
    folder : Path
        Where the rasters are (the staging folder during a run); their headers are read.
    dates : sequence of str
        The run's dates (ISO), in order.
    written : sequence of str
        Names of the files of the set; table rows whose file is not among them are skipped.
    grid : Grid
        The reference grid every raster is on.
    title : str, optional
        The Collection's title.

    Returns
    -------
    dict
        ``catalog.json``, ``stac_<date>.json`` ... -> their content (see :func:`write_catalog`).
    """
    written_set = set(written)
    bbox, geometry = _footprint(grid)
    proj = _proj(grid)
    items: dict[str, dict[str, Any]] = {}
    for d in dates:
        assets = _assets(folder, DATE_ASSETS, written_set, grid, d, dates)
        items[stac_item_json(d)] = _item(f"{COLLECTION_ID}-{d}", {"datetime": _iso(d)}, assets, bbox, geometry, proj)
    if len(dates) >= 2:
        assets = _assets(folder, CHANGE_ASSETS, written_set, grid, None, dates)
        times = {"datetime": None, "start_datetime": _iso(dates[0]), "end_datetime": _iso(dates[-1])}
        items[stac_item_json("change")] = _item(f"{COLLECTION_ID}-change", times, assets, bbox, geometry, proj)
    item_assets: dict[str, dict[str, Any]] = {}
    for doc in items.values():
        for key, a in doc["assets"].items():
            spec = {k: v for k, v in a.items() if k in ("type", "title", "roles")}
            if "raster:bands" in a:
                spec["raster:bands"] = [{k: v for k, v in a["raster:bands"][0].items() if k in ("data_type", "nodata")}]
            classes = a.get("classification:classes")
            prev = item_assets.get(key)
            if classes is not None and (prev is None or prev.get("classification:classes") == classes):
                spec["classification:classes"] = classes  # only classes every item shares (not per-date cluster names)
            elif prev is not None:
                prev.pop("classification:classes", None)
            if prev is None:
                item_assets[key] = spec
    first, last = _iso(dates[0]), _iso(dates[-1])
    collection = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [
            PROJECTION,
            RASTER,
            CLASSIFICATION,
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
        ],
        "id": COLLECTION_ID,
        "title": title or f"rs-change water {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else ""),
        "description": (
            "Water masks, cluster maps and change products of one rs-change run: 1 water, 0 land, "
            "255 unobserved (see each asset's classification:classes)."
        ),
        "license": "other",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [[first, last]]}},
        "summaries": {"proj:code": [proj["proj:code"]]} if proj["proj:code"] else {},
        "item_assets": item_assets,
        "classification:classes": (
            items[stac_item_json(dates[0])]["assets"].get("water", {}).get("classification:classes", [])
        ),
        "links": _links(CATALOG_JSON, parent=False) + [{"rel": "item", "href": f"./{n}", "type": JSON} for n in items],
    }
    return {CATALOG_JSON: collection, **items}


def _item(item_id: str, times: Mapping[str, Any], assets: dict[str, Any], bbox: list[float], geometry: dict[str, Any],
          proj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [PROJECTION, RASTER, CLASSIFICATION],
        "id": item_id,
        "collection": COLLECTION_ID,
        "bbox": bbox,
        "geometry": geometry,
        "properties": {**times, **{k: v for k, v in proj.items() if v is not None}},
        "assets": assets,
        "links": _links(item_id),
    }


def write_catalog(folder: Path, dates: Sequence[str], written: Sequence[str], grid: Grid,
                  title: Optional[str] = None) -> dict[str, Path]:
    """Write ``catalog.json`` and its Items into ``folder`` (the staging folder of a run).

    Returns
    -------
    dict
        Output name -> path, for the staged set and the manifest.
    """
    docs = build_catalog(Path(folder), dates, written, grid, title)
    out = {}
    for name, doc in docs.items():
        p = Path(folder) / name
        p.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        out[name] = p
    return out
