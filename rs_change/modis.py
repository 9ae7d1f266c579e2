"""EDGE: MODIS surface reflectance (MOD09GA / MYD09GA, MOD09A1 / MYD09A1, MOD09Q1 / MOD09GQ) in
the three forms users get it.

* **one multi-band GeoTIFF** (a Google Earth Engine export): bands are found by their
  descriptions (``sur_refl_b01`` ..., ``state_1km`` / ``StateQA``) where present, else by the
  profile's band numbers (band order b01..b07);
* **a folder or glob of per-layer GeoTIFFs** named as NASA AppEEARS names them,
  ``MOD09GA.061_sur_refl_b01_1_doy2000214_aid0001.tif``: layer and date come from the names; a
  folder holding several dates serves each configured ``date`` from its own files
  (:func:`scan_appeears`);
* **an HDF4-EOS granule** (``MOD09GA.A2000214.h22v04.061.<production>.hdf``) through the optional
  extra ``pip install "rs-change[hdf4]"`` (pyhdf): the needed SDS arrays are written to temporary
  GeoTIFFs georeferenced from the granule's ``StructMetadata.0`` (sinusoidal sphere, upper-left and
  lower-right corners in metres) and read like the others.  The temporary files live as long as the
  :class:`~rs_change.readers.SceneSource`.

Band numbers of a MODIS profile are MODIS band numbers: role ``red`` = 1 means ``sur_refl_b01``.

QA: the MOD09 state layer (``state_1km``, ``sur_refl_state_500m``, ``sur_refl_state_250m``) is a
bit field (MOD09 user guide, table 13): bits 0-1 cloud state (0 clear, 1 cloudy, 2 mixed, 3 not
set), bit 2 cloud shadow, bits 3-5 land/water flag, bits 8-9 cirrus (0 none, 1 small, 2 average,
3 high), bit 10 internal cloud algorithm flag, bit 12 MOD35 snow/ice, bit 13 adjacent to cloud.
Pixels flagged by the configured flags (:data:`QA_DEFAULTS`) are unobserved.  The land/water flag
is decoded and reported per date in ``summary.json`` (``modis_qa``) as a second opinion, never
used to label water.
"""

from __future__ import annotations

import datetime as _dt
import glob as _glob
import logging
import math
import re
import shutil
import tempfile
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import rasterio
from rasterio.enums import Resampling

from .errors import BandProfileError, DependencyError, GeoreferenceError, InputError
from .readers import SceneSource, grid_of, open_raster
from .sensors import PROFILES, BandProfile

log = logging.getLogger(__name__)

#: MODIS sinusoidal (the sphere of the MODIS land grids).
SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"

#: Default QA flags: which state bits make a pixel unobserved.  ``cirrus`` is ``False`` or the
#: lowest cirrus level masked (``"small"``, ``"average"``, ``"high"``; ``True`` = ``"average"``).
QA_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "cloudy": True,
    "mixed": True,
    "cloud_shadow": True,
    "cirrus": "average",
    "adjacent_to_cloud": False,
    "internal_cloud": False,
    "snow": False,
    "layer": None,
}

CIRRUS_LEVELS = {"none": 0, "small": 1, "average": 2, "high": 3}

#: MOD09 land/water flag (bits 3-5).
LAND_WATER_CLASSES = {
    0: "shallow ocean",
    1: "land",
    2: "ocean coastlines and lake shorelines",
    3: "shallow inland water",
    4: "ephemeral water",
    5: "deep inland water",
    6: "continental/moderate ocean",
    7: "deep ocean",
}
#: Land/water flag values counted as water in the ``modis_qa`` report (coastlines are not).
LAND_WATER_WATER = (0, 3, 4, 5, 6, 7)

#: QA layer names, most preferred first (normalised: lower case, no ``_1`` suffix).
QA_LAYERS = (
    "sur_refl_state_500m",
    "state_500m",
    "sur_refl_state_250m",
    "state_250m",
    "state_1km",
    "stateqa",
    "state_qa",
)

_APPEEARS = re.compile(
    r"^(?P<product>[A-Za-z0-9]+)\.(?P<version>\d{3})_(?P<layer>.+?)_doy(?P<year>\d{4})(?P<doy>\d{3})\d*_aid\d+\.tiff?$"
)
_HDF_DATE = re.compile(r"\.A(?P<year>\d{4})(?P<doy>\d{3})\.")
_REFL = re.compile(r"^sur_refl_b(\d{2})$")


# ---------------------------------------------------------------------------------------------
# QA bits
# ---------------------------------------------------------------------------------------------
def decode_state(qa: np.ndarray) -> dict[str, np.ndarray]:
    """Decode a MOD09 state QA array (``state_1km`` / ``sur_refl_state_500m``).

    Parameters
    ----------
    qa : ndarray of int, any shape
        Raw QA values.

    Returns
    -------
    dict of str to ndarray (same shape as ``qa``)
        ``cloud_state`` (0 clear, 1 cloudy, 2 mixed, 3 not set), ``cloudy``, ``mixed``,
        ``cloud_shadow`` (bool), ``land_water`` (0..7, see :data:`LAND_WATER_CLASSES`),
        ``aerosol`` (0..3), ``cirrus`` (0 none .. 3 high), ``internal_cloud``, ``internal_fire``,
        ``snow`` (MOD35 snow/ice), ``adjacent_to_cloud``, ``brdf_corrected``, ``internal_snow`` (bool).
    """
    q = np.asarray(qa).astype(np.int64, copy=False)
    cloud = q & 0b11
    return {
        "cloud_state": cloud.astype(np.uint8),
        "cloudy": cloud == 1,
        "mixed": cloud == 2,
        "cloud_shadow": (q >> 2 & 1).astype(bool),
        "land_water": (q >> 3 & 0b111).astype(np.uint8),
        "aerosol": (q >> 6 & 0b11).astype(np.uint8),
        "cirrus": (q >> 8 & 0b11).astype(np.uint8),
        "internal_cloud": (q >> 10 & 1).astype(bool),
        "internal_fire": (q >> 11 & 1).astype(bool),
        "snow": (q >> 12 & 1).astype(bool),
        "adjacent_to_cloud": (q >> 13 & 1).astype(bool),
        "brdf_corrected": (q >> 14 & 1).astype(bool),
        "internal_snow": (q >> 15 & 1).astype(bool),
    }


def qa_settings(qa: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """:data:`QA_DEFAULTS` updated with ``qa`` (keys with value ``None`` keep the default)."""
    out = dict(QA_DEFAULTS)
    for k, v in (qa or {}).items():
        if k in ("mask", "buffer"):  # the optical QA roles' keys (rs_change.qa); unset, they mean nothing here
            if v not in (None, 0):
                raise BandProfileError(
                    f"qa.{k}: applies to qa_pixel, scl and fmask QA layers; MODIS state QA takes "
                    f"the flags {', '.join(f for f in QA_DEFAULTS if f not in ('enabled', 'layer'))}"
                )
            continue
        if k not in QA_DEFAULTS:
            raise BandProfileError(f"qa.{k}: unknown MODIS QA flag; use one of {', '.join(QA_DEFAULTS)}")
        if v is not None:
            out[k] = v
    cir = out["cirrus"]
    if cir is True:
        out["cirrus"] = "average"
    elif cir is False:
        out["cirrus"] = None
    elif cir not in ("small", "average", "high"):
        raise BandProfileError(f"qa.cirrus: got {cir!r}; use false, true, small, average or high")
    return out


def qa_mask(qa: np.ndarray, settings: Optional[Mapping[str, Any]] = None, fill: Optional[float] = None) -> np.ndarray:
    """Boolean "unobserved" mask of a state QA array under ``settings`` (see :func:`qa_settings`).

    Pixels whose QA equals ``fill`` are unobserved too.  Shape as ``qa``.
    """
    s = qa_settings(settings)
    q = np.asarray(qa)
    out = np.zeros(q.shape, dtype=bool)
    if fill is not None:
        out |= q == fill
    if not s["enabled"]:
        return out
    d = decode_state(q)
    for flag in ("cloudy", "mixed", "cloud_shadow", "adjacent_to_cloud", "internal_cloud", "snow"):
        if s[flag]:
            out |= d[flag]
    if s["cirrus"]:
        out |= d["cirrus"] >= CIRRUS_LEVELS[s["cirrus"]]
    return out


class QaDecoder:
    """Picklable raw QA -> bool "unobserved" (the ``qa_decoder`` of a MODIS :class:`SceneSource`)."""

    def __init__(self, settings: Optional[Mapping[str, Any]], fill: Optional[float]) -> None:
        self.settings = qa_settings(settings)
        self.fill = fill

    def __call__(self, qa: np.ndarray) -> np.ndarray:
        return qa_mask(qa, self.settings, self.fill)


class QaBlockStats(QaDecoder):
    """Picklable per-block MODIS QA areas, the pipeline's ``source.extra["block_stats"]`` hook.

    Called as ``stats(reader, observed, inside, area)`` after ``reader.read`` of a block:
    ``observed`` and ``inside`` are bool (h, w), ``area`` m2 per pixel (h, w).  Returns m2 per key
    (the pipeline sums blocks and reports km2 under ``summary["dates"][i]["modis_qa"]``).
    Flags are counted inside the area of interest wherever the QA is not fill, observed or not;
    ``land_water_flag_water_observed`` only on observed pixels (comparable to ``water_km2``).
    """

    def __call__(self, reader: Any, observed: np.ndarray, inside: np.ndarray, area: np.ndarray) -> dict[str, float]:  # type: ignore[override]
        qa = getattr(reader, "last_qa", None)
        if qa is None or qa.shape != inside.shape:
            return {}
        has = inside if self.fill is None else inside & (qa != self.fill)
        d = decode_state(qa)
        water = np.isin(d["land_water"], LAND_WATER_WATER) & has
        level = CIRRUS_LEVELS[self.settings["cirrus"] or "average"]
        sel = {
            "land_water_flag_water": water,
            "land_water_flag_water_observed": water & observed,
            "land_water_flag_land": (d["land_water"] == 1) & has,
            "cloudy": d["cloudy"] & has,
            "mixed": d["mixed"] & has,
            "cloud_shadow": d["cloud_shadow"] & has,
            "cirrus": (d["cirrus"] >= level) & has,
            "adjacent_to_cloud": d["adjacent_to_cloud"] & has,
            "qa_masked": qa_mask(qa, self.settings, self.fill) & inside,
        }
        return {k: float(area[m].sum()) if m.any() else 0.0 for k, m in sel.items()}


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------
def normalise_layer(name: str) -> str:
    """Lower case, without the ``_1`` suffix MOD09GA gives its layers (``sur_refl_b01_1``)."""
    n = name.strip().lower()
    return re.sub(r"_1$", "", n)


def parse_appeears_name(name: str) -> Optional[tuple[str, str, _dt.date]]:
    """``(product, layer, date)`` of an AppEEARS GeoTIFF name, or None.

    ``MOD09GA.061_sur_refl_b01_1_doy2000214_aid0001.tif`` -> ``("MOD09GA", "sur_refl_b01", 2000-08-01)``.
    """
    m = _APPEEARS.match(Path(name).name)
    if m is None:
        return None
    date = _dt.date(int(m["year"]), 1, 1) + _dt.timedelta(days=int(m["doy"]) - 1)
    return m["product"], normalise_layer(m["layer"]), date


def _files(path: Path) -> list[Path]:
    s = str(path)
    if any(ch in s for ch in "*?["):
        return sorted(Path(p) for p in _glob.glob(s))
    if not path.is_dir():
        raise InputError(f"{path}: folder not found; check the scene's `path` in the config")
    return sorted(p for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff"))


def scan_appeears(folder: str | Path) -> dict[_dt.date, dict[str, Path]]:
    """AppEEARS per-layer GeoTIFFs of a folder or glob, by date and layer.

    Parameters
    ----------
    folder : path
        A folder, or a glob pattern such as ``data/MOD09GA*.tif``.

    Returns
    -------
    dict of date to dict of layer name (normalised, see :func:`normalise_layer`) to path
        Sorted by date.  Files whose names do not follow the AppEEARS pattern are ignored.
    """
    out: dict[_dt.date, dict[str, Path]] = {}
    for f in _files(Path(folder)):
        parsed = parse_appeears_name(f.name)
        if parsed is None:
            continue
        _, layer, date = parsed
        out.setdefault(date, {})[layer] = f
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------------
def is_modis(profile: BandProfile) -> bool:
    """True for the MODIS band profiles (``modis``, ``modis250`` and their product aliases)."""
    return profile.name.lower().startswith(("modis", "mod09", "myd09"))


def open_source(
    path: str | Path, profile: BandProfile, date: _dt.date, nodata: Optional[float] = None
) -> SceneSource:
    """A :class:`SceneSource` for one MODIS date.

    Parameters
    ----------
    path : path
        A multi-band GeoTIFF, a folder or glob of AppEEARS per-layer GeoTIFFs, or an HDF4 granule
        (``.hdf``, needs ``pip install "rs-change[hdf4]"``).
    profile : BandProfile
        Band roles as MODIS band numbers (``red: 1`` = ``sur_refl_b01``), scale, fill, valid range;
        ``profile.qa`` holds the QA flags (see :data:`QA_DEFAULTS`).
    date : datetime.date
        The date; in a folder holding several dates it picks that date's files.
    nodata : float, optional
        Raw nodata of the reflectance layers when the files declare none.

    Raises
    ------
    InputError, BandProfileError, GeoreferenceError, DependencyError
        Missing files or layers, too few bands, values that look scaled twice or not at all,
        a granule without grid metadata, pyhdf not installed.
    """
    p = Path(path)
    s = str(path)
    if p.suffix.lower() in (".hdf", ".h4", ".hdf4"):
        return open_hdf4(p, profile, date, nodata)
    if p.is_dir() or any(ch in s for ch in "*?["):
        return open_appeears(p, profile, date, nodata)
    return open_multiband(p, profile, date, nodata)


def open_appeears(folder: Path, profile: BandProfile, date: _dt.date, nodata: Optional[float] = None) -> SceneSource:
    """One date of a folder / glob of AppEEARS per-layer GeoTIFFs (see :func:`open_source`)."""
    by_date = scan_appeears(folder)
    if not by_date:
        raise InputError(
            f"{folder}: no AppEEARS-named GeoTIFFs (like MOD09GA.061_sur_refl_b01_1_doy2000214_aid0001.tif) found; "
            "point `path` at the AppEEARS download folder or a glob of its .tif files"
        )
    if date not in by_date:
        have = ", ".join(d.isoformat() for d in by_date)
        raise InputError(
            f"{folder}: no files for date {date} (the folder holds {have}); set the scene's `date` to one of these"
        )
    index = {layer: (str(f), 1) for layer, f in by_date[date].items()}
    return _source_from_index(index, profile, date, nodata, label=str(folder), where="layer files")


def open_multiband(path: Path, profile: BandProfile, date: _dt.date, nodata: Optional[float] = None) -> SceneSource:
    """One multi-band GeoTIFF (Earth Engine export) with bands found by description (see :func:`open_source`)."""
    sp = str(path)
    with open_raster(sp) as ds:
        descs = [normalise_layer(d) if d else "" for d in ds.descriptions]
        count = ds.count
    named = any(_REFL.match(d) for d in descs)
    if named:
        index = {d: (sp, i + 1) for i, d in enumerate(descs) if d}
        return _source_from_index(index, profile, date, nodata, label=sp, where="bands (by description)")
    profile.check_band_count(count, sp)
    index = {f"sur_refl_b{b:02d}": (sp, b) for b in profile.bands.values()}
    return _source_from_index(index, profile, date, nodata, label=sp, where="bands")


def _source_from_index(
    index: Mapping[str, tuple[str, int]], profile: BandProfile, date: _dt.date, nodata: Optional[float], label: str,
    where: str,
) -> SceneSource:
    """Build the SceneSource from {layer name: (path, band)}."""
    layers: dict[str, tuple[str, int]] = {}
    missing = []
    for role, b in profile.bands.items():
        name = f"sur_refl_b{int(b):02d}"
        if name in index:
            layers[role] = index[name]
        else:
            missing.append(f"{name} ({role})")
    if missing:
        have = ", ".join(sorted(index)) or "none"
        raise BandProfileError(
            f"{label}: missing MODIS {where} {', '.join(missing)} for {date} (found: {have}); "
            "add them, or name only the roles you have with `bands: {role: MODIS band number}`"
        )
    first_path, first_band = next(iter(layers.values()))
    with open_raster(first_path) as ds:
        grid = grid_of(ds, first_path)
        file_nodata = ds.nodata
        file_scale = ds.scales[first_band - 1] if ds.scales else None
        file_offset = ds.offsets[first_band - 1] if ds.offsets else None
        dtype = ds.dtypes[first_band - 1]
    for role, (lp, lb) in layers.items():
        with open_raster(lp) as ds:
            if lb > ds.count:
                raise BandProfileError(
                    f"{lp}: {role} needs band {lb} but the file has {ds.count}; check the scene's `bands`"
                )
    profile = _effective_profile(profile, file_scale, file_offset, dtype)
    settings = qa_settings(profile.qa)
    qa_name = settings["layer"]
    qa_layer = None
    if qa_name is not None:
        qa_name = normalise_layer(str(qa_name))
        if qa_name not in index:
            raise BandProfileError(
                f"{label}: qa.layer {qa_name!r} not found (found: {', '.join(sorted(index))}); fix `qa.layer`"
            )
        qa_layer = index[qa_name]
    elif settings["enabled"]:
        qa_layer = next((index[n] for n in QA_LAYERS if n in index), None)
    src = SceneSource(
        date=date, profile=profile, layers=layers, grid=grid,
        nodata=nodata if nodata is not None else file_nodata, label=label,
    )
    check_values(src)
    if qa_layer is not None:
        with open_raster(qa_layer[0]) as ds:
            qa_fill = ds.nodata
        src.qa_layer = qa_layer
        src.qa_decoder = QaDecoder(settings, qa_fill)
        src.extra["block_stats"] = QaBlockStats(settings, qa_fill)
        src.extra["stats_name"] = "modis_qa"
        log.info(
            "%s: %s QA from %s (%s)",
            label,
            date,
            qa_layer[0],
            ", ".join(k for k, v in settings.items() if v and k not in ("enabled", "layer")),
        )
    elif is_modis(profile) and settings["enabled"]:
        log.warning("%s: no MODIS state QA layer for %s; clouds and cloud shadows are not masked", label, date)
    return src


def _effective_profile(
    profile: BandProfile, file_scale: Optional[float], file_offset: Optional[float], dtype: str
) -> BandProfile:
    """The file's own scale tag replaces the profile's default scale; the valid range follows the scale."""
    default = PROFILES["modis"]
    scale, offset = profile.scale, profile.offset
    user_set = scale is not None and scale != default.scale
    if not user_set and file_scale not in (None, 1.0) and not np.issubdtype(np.dtype(dtype), np.floating):
        scale = float(file_scale)
        offset = float(file_offset or 0.0)
    vr = profile.valid_range
    if vr is not None and scale is not None and default.scale is not None and not math.isclose(scale, default.scale):
        # the valid range is a reflectance range (-0.01 .. 1.6) written in DNs of scale 0.0001
        lo, hi = (v * default.scale for v in vr)
        vr = ((lo - offset) / scale, (hi - offset) / scale)
        vr = (min(vr), max(vr))
    return replace(profile, scale=scale, offset=offset, valid_range=vr)


def check_values(source: SceneSource, max_side: int = 128) -> None:
    """Raise one clear line when the first reflectance layer looks scaled twice or not at all.

    Reads the layer decimated to at most ``max_side`` pixels a side (cheap), drops fill, nodata and
    non-finite values, and compares the reflectance ``raw * scale + offset`` with what surface
    reflectance can be.
    """
    prof = source.profile
    if prof.scale is None:
        return
    role, (path, band) = next(iter(source.layers.items()))
    with open_raster(path) as ds:
        f = max(1, math.ceil(max(ds.height, ds.width) / max_side))
        raw = ds.read(band, out_shape=(max(1, ds.height // f), max(1, ds.width // f)), resampling=Resampling.nearest)
    v = raw.astype(np.float64).ravel()
    ok = np.isfinite(v)
    for bad in (source.nodata, prof.fill):
        if bad is not None:
            ok &= v != bad
    v = v[ok]
    if v.size < 10:
        return
    p50, p99 = np.percentile(v, [50, 99])
    r50, r99 = p50 * prof.scale + prof.offset, p99 * prof.scale + prof.offset
    fractional = bool(np.any(v != np.round(v)))
    if r99 < 0.002 and fractional:
        fix = (
            "set `scale: 1` for this scene" if prof.scale < 0.5 else "the export looks scaled twice; set `scale: 10000`"
        )
        raise BandProfileError(
            f"{path}: {role} values look already scaled to reflectance (99th percentile {p99:.4g}; "
            f"x scale {prof.scale:g} gives {r99:.2g}); {fix}"
        )
    if r50 > 1.6:
        raise BandProfileError(
            f"{path}: {role} values look like unscaled digital numbers (median {p50:.4g}; x scale {prof.scale:g} "
            f"gives reflectance {r50:.3g} > 1.6); remove `scale:` or set `scale: 0.0001` (MODIS)"
        )


# ---------------------------------------------------------------------------------------------
# HDF4-EOS granules
# ---------------------------------------------------------------------------------------------
def _import_pyhdf(path: Path) -> Any:
    try:
        from pyhdf import SD  # noqa: PLC0415
    except ImportError:
        raise DependencyError(
            f"{path}: reading MODIS HDF4 granules needs the optional extra; run pip install \"rs-change[hdf4]\" (pyhdf)"
        ) from None
    return SD


def parse_struct_metadata(text: str) -> dict[str, dict[str, Any]]:
    """Grids of an HDF-EOS ``StructMetadata.0`` text.

    Returns
    -------
    dict of grid name to dict
        ``xdim``, ``ydim`` (int), ``ul``, ``lr`` ((x, y) in metres), ``projection`` (str),
        ``proj_params`` (list of float), ``fields`` (list of data field names).
    """
    grids: dict[str, dict[str, Any]] = {}
    for m in re.finditer(r"GROUP=(GRID_\d+)(.*?)END_GROUP=\1", text, flags=re.S):
        body = m.group(2)

        def get(key: str) -> Optional[str]:
            mm = re.search(rf"^\s*{key}=(.+?)\s*$", body, flags=re.M)
            return mm.group(1).strip().strip('"') if mm else None

        def pair(key: str) -> Optional[tuple[float, float]]:
            raw = get(key)
            if raw is None:
                return None
            nums = [float(x) for x in raw.strip("()").split(",")]
            return nums[0], nums[1]

        name = get("GridName") or m.group(1)
        params = get("ProjParams")
        grids[name] = {
            "xdim": int(get("XDim") or 0),
            "ydim": int(get("YDim") or 0),
            "ul": pair("UpperLeftPointMtrs"),
            "lr": pair("LowerRightMtrs"),
            "projection": get("Projection"),
            "proj_params": [float(x) for x in params.strip("()").split(",")] if params else [],
            "fields": re.findall(r'DataFieldName="([^"]+)"', body),
        }
    return grids


def _grid_crs_transform(path: Path, g: Mapping[str, Any]) -> tuple[str, Any]:
    from affine import Affine

    if g["projection"] != "GCTP_SNSOID":
        raise GeoreferenceError(
            f"{path}: grid projection {g['projection']} is not supported (MODIS land grids are GCTP_SNSOID); "
            "convert the granule to GeoTIFF with gdal_translate"
        )
    if g["ul"] is None or g["lr"] is None or not g["xdim"] or not g["ydim"]:
        raise GeoreferenceError(
            f"{path}: the grid metadata lacks corners or dimensions; the granule looks damaged, download it again"
        )
    radius = g["proj_params"][0] if g["proj_params"] and g["proj_params"][0] > 0 else 6371007.181
    crs = f"+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R={radius:.3f} +units=m +no_defs"
    (ulx, uly), (lrx, lry) = g["ul"], g["lr"]
    t = Affine((lrx - ulx) / g["xdim"], 0.0, ulx, 0.0, (lry - uly) / g["ydim"], uly)
    return crs, t


def hdf4_to_geotiffs(
    path: str | Path, names: Optional[list[str]] = None, out_dir: Optional[str | Path] = None
) -> dict[str, tuple[str, int]]:
    """Write SDS arrays of a MODIS HDF4-EOS granule to georeferenced single-band GeoTIFFs.

    Parameters
    ----------
    path : path
        The ``.hdf`` granule.
    names : list of str, optional
        Normalised layer names to convert (default: every 2-D SDS of a grid).
    out_dir : path, optional
        Where to write (default: a new temporary folder).

    Returns
    -------
    dict of normalised layer name to (GeoTIFF path, 1)
        Each GeoTIFF carries the SDS's ``_FillValue`` as nodata, ``scale_factor`` / ``add_offset``
        as scale/offset tags and its name as the band description.
    """
    path = Path(path)
    SD = _import_pyhdf(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check the scene's `path` in the config")
    try:
        sd = SD.SD(str(path), SD.SDC.READ)
    except Exception as exc:  # pyhdf raises HDF4Error
        raise InputError(f"{path}: not a readable HDF4 file ({str(exc)[:100]}); download the granule again") from None
    try:
        attrs = sd.attributes()
        struct = next((v for k, v in attrs.items() if k.startswith("StructMetadata")), None)
        if not struct:
            raise GeoreferenceError(
                f"{path}: no HDF-EOS StructMetadata.0 (grid metadata); give a MODIS HDF-EOS granule"
            )
        grids = parse_struct_metadata(str(struct))
        by_field = {f: g for g in grids.values() for f in g["fields"]}
        out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="rs-change-hdf4-"))
        result: dict[str, tuple[str, int]] = {}
        for sds_name in sd.datasets():
            norm = normalise_layer(sds_name)
            if names is not None and norm not in names:
                continue
            sds = sd.select(sds_name)
            arr = sds.get()
            if arr.ndim != 2:
                sds.endaccess()
                continue
            a = sds.attributes()
            sds.endaccess()
            g = by_field.get(sds_name) or next((g for g in grids.values() if (g["ydim"], g["xdim"]) == arr.shape), None)
            if g is None:
                raise GeoreferenceError(
                    f"{path}: SDS {sds_name} is on no grid of the StructMetadata; the granule looks damaged"
                )
            crs, t = _grid_crs_transform(path, g)
            fname = out / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', sds_name)}.tif"
            fill = a.get("_FillValue")
            with rasterio.open(
                fname, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype,
                crs=crs, transform=t, nodata=fill, tiled=True, blockxsize=256, blockysize=256,
            ) as ds:
                ds.write(arr, 1)
                ds.set_band_description(1, sds_name)
                if "scale_factor" in a:
                    ds.scales = (float(a["scale_factor"]),)
                    ds.offsets = (float(a.get("add_offset", 0.0)),)
            result[norm] = (str(fname), 1)
    finally:
        sd.end()
    return result


def granule_date(path: str | Path) -> Optional[_dt.date]:
    """Date of a granule name ``MOD09GA.A2000214.h22v04.061.<production>.hdf`` (2000-08-01), or None."""
    m = _HDF_DATE.search(Path(path).name)
    if m is None:
        return None
    return _dt.date(int(m["year"]), 1, 1) + _dt.timedelta(days=int(m["doy"]) - 1)


def open_hdf4(path: Path, profile: BandProfile, date: _dt.date, nodata: Optional[float] = None) -> SceneSource:
    """One MODIS HDF4-EOS granule through pyhdf (see :func:`open_source`)."""
    _import_pyhdf(path)
    gd = granule_date(path)
    if gd is not None and gd != date:
        log.warning("%s: granule date %s differs from the configured date %s", path, gd, date)
    settings = qa_settings(profile.qa)
    wanted = [f"sur_refl_b{int(b):02d}" for b in profile.bands.values()]
    wanted += [normalise_layer(settings["layer"])] if settings["layer"] else list(QA_LAYERS)
    tmp = Path(tempfile.mkdtemp(prefix="rs-change-hdf4-"))
    try:
        index = hdf4_to_geotiffs(path, wanted, tmp)
        src = _source_from_index(index, profile, date, nodata, label=str(path), where="SDSs")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    src.extra["tmp_dir"] = str(tmp)
    weakref.finalize(src, shutil.rmtree, str(tmp), True)
    return src


__all__ = [
    "QA_DEFAULTS", "LAND_WATER_CLASSES", "SINUSOIDAL", "decode_state", "qa_settings", "qa_mask", "normalise_layer",
    "parse_appeears_name", "scan_appeears", "is_modis", "open_source", "open_appeears", "open_multiband", "open_hdf4",
    "check_values", "parse_struct_metadata", "hdf4_to_geotiffs", "granule_date",
]
