"""EDGE: GeoTIFF scenes -> bands on a reference grid, one window at a time.

A :class:`SceneSource` says where each band role of one date lives (one multi-band file, or one
file per layer) and how to scale it.  :meth:`SceneSource.open` returns a :class:`WindowReader`
that reads any window of a *reference grid*: when the scene's own grid is the reference grid
shifted (same CRS and pixel size, e.g. NAIP dates offset by 1-3 m) the shift is done in numpy on
a plain windowed read; otherwise (another CRS or resolution) the file is read through a GDAL
warped VRT.  Either way alignment costs no full-scene copy and memory stays set by the window size.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, cast

import numpy as np
import rasterio

from . import defaults
from .errors import BandProfileError
from .grid import Grid
from .qa import QA_ROLES, QaAreas, QaMask
from .remote import gdal_env
from .composite import MAX_SCENES, medoid_pick
from .scene_reader import (
    CompositeReader,
    MosaicReader,
    QaDecoder,
    SceneSource,
    SharedReads,
    WindowReader,
    check_regular_file,
    clear_mask,
    composite_raws,
    grid_of,
    open_raster,
)
from .sensors import BandProfile, raw_to_bands
from .shift import FAST_RESAMPLING, _avoid, _axis, _float, _lerp_strips, _round_to, _take, translation_offset

log = logging.getLogger(__name__)


def open_geotiff(
    path: str | Path,
    profile: BandProfile,
    date: _dt.date,
    nodata: Optional[float] = None,
) -> SceneSource:
    """A :class:`SceneSource` for one multi-band raster file.

    Raises
    ------
    InputError, GeoreferenceError, BandProfileError
        Missing or unreadable file, no CRS/geotransform, too few bands for the profile.
    """
    path = str(path)
    with gdal_env([path]), open_raster(path) as ds:
        grid = grid_of(ds, path)
        profile.check_band_count(ds.count, path)
        file_nodata = ds.nodata
        if profile.scale is None and ds.scales and ds.scales[0] not in (None, 1.0) and ds.dtypes[0] != "uint8":
            log.info("%s: file declares scale %s; pass `scale:` in the config to use it", path, ds.scales[0])
        profile = _resolve_offset(ds, profile, path)
        info = {"dtype": ds.dtypes[0], "count": ds.count, "size": (ds.width, ds.height), "crs": ds.crs.to_string()}
    nd = nodata if nodata is not None else file_nodata
    layers = {role: (path, int(b)) for role, b in profile.bands.items()}
    profile, layers, qa = split_qa(profile, layers)
    src = SceneSource(date=date, profile=profile, layers=layers, grid=grid, nodata=nd, label=path, info=info)
    return attach_qa(src, qa)


def open_layers(
    files: Mapping[str, str],
    profile: BandProfile,
    date: _dt.date,
    nodata: Optional[float] = None,
) -> SceneSource:
    """A :class:`SceneSource` for one file per band role (``{role: path}``, band 1 of each): the
    one-band-per-file products such as Sentinel-2 L2A and Landsat Collection 2 as STAC serves them.

    The scene's grid is the finest of the files' grids (Sentinel-2's 10 m bands, not the 20 m
    SWIR); the offset the files declare is read from the first file.

    Raises
    ------
    InputError, GeoreferenceError
        Missing or unreadable file, no CRS/geotransform.
    """
    files = {str(role): str(p) for role, p in files.items()}
    profile = replace(profile, bands={role: 1 for role in files})
    profile, layers, qa = split_qa(profile, {r: (p, 1) for r, p in files.items()})
    files = {r: p for r, (p, _) in layers.items()}
    grids: list[Grid] = []
    file_nodata = None
    for i, (role, path) in enumerate(files.items()):
        with gdal_env([path]), open_raster(path) as ds:
            grids.append(grid_of(ds, path))
            if i == 0:
                file_nodata = ds.nodata
                profile = _resolve_offset(ds, profile, path)
                info = {"dtype": ds.dtypes[0], "count": None, "size": (ds.width, ds.height), "crs": ds.crs.to_string()}
    grid = min(grids, key=lambda g: abs(g.transform.a * g.transform.e))
    nd = nodata if nodata is not None else file_nodata
    label = next(iter(files.values()))
    src = SceneSource(date=date, profile=profile, layers={r: (p, 1) for r, p in files.items()}, grid=grid, nodata=nd,
                      label=label, info=info)
    return attach_qa(src, qa)


def split_qa(profile: BandProfile, layers: Mapping[str, tuple[str, int]]
             ) -> tuple[BandProfile, dict[str, tuple[str, int]], Optional[tuple[str, tuple[str, int]]]]:
    """The QA role of ``layers`` (:data:`rs_change.qa.QA_ROLES`) taken out of the spectral bands:
    ``(profile, layers, (role, (path, band)))`` without it, or ``(profile, layers, None)``.  A QA
    band never enters the features.

    Raises
    ------
    BandProfileError
        Two QA roles, or a QA role and no spectral band.
    """
    qa = [r for r in layers if r in QA_ROLES]
    if not qa:
        return profile, dict(layers), None
    if len(qa) > 1:
        raise BandProfileError(f"one QA layer per scene; got {', '.join(qa)}")
    rest = {r: v for r, v in layers.items() if r not in QA_ROLES}
    if not rest:
        raise BandProfileError(f"{layers[qa[0]][0]}: only a QA layer ({qa[0]}); give the band roles too")
    bands = {r: b for r, b in profile.bands.items() if r not in QA_ROLES}
    return replace(profile, bands=bands), rest, (qa[0], layers[qa[0]])


def attach_qa(src: SceneSource, qa: Optional[tuple[str, tuple[str, int]]]) -> SceneSource:
    """``src`` with its optical QA layer (:func:`split_qa`) read as :class:`rs_change.qa.QaMask`
    under the profile's ``qa`` settings (``enabled``, ``mask``, ``buffer``), and the per-reason areas
    hook (``extra["block_stats"]``, reported as ``masked_km2`` in summary.json).
    """
    if qa is None:
        return src
    role, (path, band) = qa
    settings = dict(src.profile.qa or {})
    if not settings.get("enabled", True):
        log.info("%s: %s QA layer not used (qa.enabled: false)", src.label, role)
        return src
    # the keys of config.QaConfig (model_dump) or of a product's built-in QA settings
    names = cast(Optional[Sequence[str]], settings.get("mask"))
    buffer = cast(Optional[int], settings.get("buffer"))
    try:
        mask = QaMask(role, names, int(buffer or 0))
    except ValueError as exc:  # ConfigError: a class the product does not have
        raise BandProfileError(f"{src.label}: {exc}") from None
    if path != src.label and path not in {p for p, _ in src.layers.values()}:
        with gdal_env([path]), open_raster(path) as ds:
            grid_of(ds, path)
            if band > ds.count:
                raise BandProfileError(
                    f"{path}: the {role} QA layer is band {band} but the file has {ds.count} band(s)"
                )
    src.qa_layer = (path, int(band))
    src.qa_decoder = mask
    src.extra["block_stats"] = QaAreas(mask.names)
    src.extra["stats_name"] = "masked_km2"
    log.info("%s: %s from %s band %d", src.label, mask.describe(), path, band)
    return src


def mosaic(parts: list[SceneSource]) -> SceneSource:
    """One date from several sources (adjacent tiles, several acquisitions, the STAC items of a
    day or a ``window``): composited per pixel onto the reference grid from the parts that observe
    the pixel (:mod:`rs_change.composite`: the only one, the first of two, the medoid of three or
    more), in the order given.

    The mosaic's grid covers every part: the first part's CRS and pixel size, extended to the union
    of the parts' bounds (transformed into that CRS), so it can be a run's reference grid.
    """
    if len(parts) == 1:
        return parts[0]
    if len(parts) > MAX_SCENES:
        raise BandProfileError(
            f"{parts[0].label}: {len(parts)} files for the date {parts[0].date}; a date composites at "
            f"most {MAX_SCENES}: narrow the list (or the stac: block's window / datetime)"
        )
    # each part's reader applies its own QA layer, so a composite is clear-sky; what it cannot carry
    # is a source's per-block report of its QA flags (MODIS's modis_qa areas, ``extra["block_stats"]``);
    # the optical QA layers' masked areas (rs_change.qa) are carried by the composite reader
    if any("block_stats" in p.extra and p.extra.get("stats_name") != "masked_km2" for p in parts):
        raise BandProfileError(f"{parts[0].label}: a date of several files whose pixels carry a QA layer (MODIS) "
                               "cannot be mosaicked; give one file, folder or granule per date")
    from affine import Affine
    from rasterio.warp import transform_bounds

    first = parts[0].grid
    bounds = [first.bounds]
    for p in parts[1:]:
        b = p.grid.bounds
        if p.grid.crs != first.crs:
            b = transform_bounds(p.grid.crs.to_wkt(), first.crs.to_wkt(), *b, densify_pts=21)
        bounds.append(b)
    t = first.transform
    x0, x1 = min(b[0] for b in bounds), max(b[2] for b in bounds)
    y0, y1 = min(b[1] for b in bounds), max(b[3] for b in bounds)
    # snapped to the first part's pixel edges
    c0 = np.floor((x0 - t.c) / t.a + 1e-9)
    c1 = np.ceil((x1 - t.c) / t.a - 1e-9)
    r0 = np.floor((y1 - t.f) / t.e + 1e-9)
    r1 = np.ceil((y0 - t.f) / t.e - 1e-9)
    transform = Affine(t.a, 0.0, t.c + c0 * t.a, 0.0, t.e, t.f + r0 * t.e)
    grid = Grid((int(r1 - r0), int(c1 - c0)), transform, first.crs)
    label = f"{parts[0].label} (+{len(parts) - 1} more)"
    return replace(parts[0], grid=grid, label=label, parts=tuple(parts))


#: Metadata tags holding a Sentinel-2 offset in DN (processing baseline 04.00+: -1000): L2A, L1C.
OFFSET_TAGS = ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET")


def declared_offset(ds: rasterio.io.DatasetReader, bands: list[int], scale: float) -> Optional[tuple[float, str]]:
    """The reflectance offset a file declares for ``bands`` (1-based), and where it was found;
    None when it declares none.

    * GDAL band offsets (``ds.offsets``, not 0): the file says value = DN * s + o; in the
      profile's units (``scale``) the offset is ``o * scale / s`` (``o`` itself when the file's
      scale is the profile's, ``o * scale`` when the file gives no scale: an offset in DN);
    * else a ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` tag of the file or of the bands (Sentinel-2
      processing baseline 04.00+, in DN): ``value * scale``.

    Raises :class:`BandProfileError` when the bands declare different offsets (one offset is used
    for every band).
    """
    found: dict[int, tuple[float, str]] = {}
    for b in bands:
        o = ds.offsets[b - 1] if ds.offsets and len(ds.offsets) >= b else None
        s = ds.scales[b - 1] if ds.scales and len(ds.scales) >= b else None
        if o not in (None, 0.0) and np.isfinite(o):
            fs = s if s not in (None, 0.0) else 1.0
            found[b] = (float(o) * scale / fs, f"GDAL band offset {o:g} (band scale {fs:g})")
    if not found:
        file_tags = {k.upper(): v for k, v in ds.tags().items()}
        for b in bands:
            tags = {**file_tags, **{k.upper(): v for k, v in ds.tags(b).items()}}
            for key in OFFSET_TAGS:
                if key in tags:
                    try:
                        dn = float(tags[key])
                    except ValueError:
                        log.warning("%s: tag %s=%r is not a number; ignored", ds.name, key, tags[key])
                        continue
                    found[b] = (dn * scale, f"tag {key}={dn:g} x scale {scale:g}")
                    break
    if not found:
        return None
    values = {round(v, 12) for v, _ in found.values()}
    if len(values) > 1:
        declared = ", ".join(f"band {b}: {v:g}" for b, (v, _) in found.items())
        raise BandProfileError(
            f"{ds.name}: the bands declare different offsets ({declared}); "
            "rs-change uses one offset for every band: set the scene's `offset:`"
        )
    return next(iter(found.values()))


def _resolve_offset(ds: rasterio.io.DatasetReader, profile: BandProfile, path: str) -> BandProfile:
    """``profile`` with the offset the file declares when the profile takes it from the file (and
    none was given explicitly); logs which offset is used and why.
    """
    if profile.scale is None:
        return profile
    if profile.offset_given:
        log.info("%s: reflectance offset %g, set explicitly (the scene's `offset:`)", path, profile.offset)
        return profile
    if not profile.offset_from_file:
        log.info("%s: reflectance offset %g, the '%s' profile's", path, profile.offset, profile.name)
        return profile
    got = declared_offset(ds, sorted(set(int(b) for b in profile.bands.values())), float(profile.scale))
    if got is None:
        log.info("%s: reflectance offset %g: the file declares none (no GDAL band offset, no %s tag); "
                 "set the scene's `offset:` if the product needs one", path, profile.offset, " / ".join(OFFSET_TAGS))
        return profile
    value, why = got
    log.info("%s: reflectance offset %g, declared by the file (%s)", path, value, why)
    return replace(profile, offset=value)


#: Resampling methods the translation-only fast path computes in numpy (others use a WarpedVRT).


def decimated_grid(ref: Grid, shape: tuple[int, int]) -> Grid:
    """The grid of a read of ``ref`` decimated to ``shape`` (same bounds, larger pixels)."""
    from affine import Affine

    oh, ow = shape
    return Grid((oh, ow), ref.transform * Affine.scale(ref.width / ow, ref.height / oh), ref.crs)


#: ``check(source, raws, inside)``: called by :func:`decimated_read` with each scene's raw values.
RawCheck = Callable[["SceneSource", dict, np.ndarray], None]


def decimated_read(source: SceneSource, ref: Grid, shape: tuple[int, int], resampling: str = defaults.RESAMPLING,
                   check: Optional[RawCheck] = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A date's bands and observed mask on ``ref`` decimated to ``shape``: the pixel under each
    decimated centre (pass 1's sample, the report's quicklooks).

    A date on ``ref`` is read decimated by GDAL; a date shifted from it (same CRS and pixel size)
    picks its source pixels directly (every tile decoded once); any other date is warped straight
    onto the decimated grid (nearest), so only the sampled pixels are computed (a decimated read of
    the full-resolution warped view would warp the whole scene: 15 s for a NAIP quarter-quad).
    A date of several scenes is their composite (:mod:`rs_change.composite`), as pass 2 reads it.
    ``check`` is given each scene's raw values and footprint before they are converted (pass 1
    checks them against the scene's profile, :func:`rs_change.sensors.check_raw_values`).
    """
    if source.parts:  # a composite: each part's decimated read, then the pixels' picks as in pass 2
        reads = [decimated_read(part, ref, shape, resampling, check) for part in source.parts]
        pick, _ = medoid_pick([b for b, _ in reads], [v for _, v in reads])
        out = {role: a.copy() for role, a in reads[0][0].items()}
        for j in range(1, len(reads)):
            take = pick == j
            for role, a in out.items():
                a[take] = reads[j][0][role][take]
        return out, pick >= 0
    raws, inside = decimated_read_raw(source, ref, shape, resampling)
    if check is not None:
        check(source, raws, inside)
    bands, observed = raw_to_bands(raws, source.profile, source.nodata)
    return bands, inside & observed


def decimated_read_raw(source: SceneSource, ref: Grid, shape: tuple[int, int], resampling: str = defaults.RESAMPLING
                       ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The raw values of one scene (not a composite) decimated as :func:`decimated_read` reads them,
    and the pixels inside it and not QA-flagged (:meth:`WindowReader.read_raw`).
    """
    out_shape = (shape[0], shape[1])
    if out_shape == tuple(ref.shape):
        with source.open(ref, resampling) as rd:
            return rd.read_raw()
    if source.grid.same_as(ref):
        with source.open(ref, resampling) as rd:
            return rd.read_raw(out_shape=out_shape)
    with source.open(ref, "nearest") as rd:
        if rd.can_decimate():
            return rd.read_raw(out_shape=out_shape)
    if isinstance(source.qa_decoder, QaMask):  # the buffer in pixels of the decimated grid
        source = replace(source, qa_decoder=source.qa_decoder.scaled(min(ref.height / shape[0], ref.width / shape[1])))
    with source.open(decimated_grid(ref, shape), "nearest") as rd:
        return rd.read_raw()


def check_overlap(source: SceneSource, ref: Grid) -> float:
    """Fraction of ``ref``'s bounds covered by ``source``'s bounds (after reprojection).

    Raises :class:`~rs_change.errors.NoOverlapError` when they do not overlap at all.
    """
    from rasterio.warp import transform_bounds

    from .errors import NoOverlapError

    sb = source.grid.bounds
    if source.grid.crs != ref.crs:
        sb = transform_bounds(source.grid.crs.to_wkt(), ref.crs.to_wkt(), *sb, densify_pts=21)
    rb = ref.bounds
    ix = max(0.0, min(sb[2], rb[2]) - max(sb[0], rb[0]))
    iy = max(0.0, min(sb[3], rb[3]) - max(sb[1], rb[1]))
    frac = (ix * iy) / ((rb[2] - rb[0]) * (rb[3] - rb[1]))
    if frac <= 0:
        raise NoOverlapError(
            f"{source.label}: the scene of {source.date} does not overlap the reference grid "
            f"(scene bounds {tuple(round(v, 3) for v in sb)}, reference {tuple(round(v, 3) for v in rb)} "
            f"in {ref.crs.to_string()}); "
            "check the dates' paths and CRSs"
        )
    if frac < 0.99:
        log.warning(
            "%s: the scene of %s covers %.1f%% of the reference grid; pixels outside it are unobserved",
            source.label, source.date, 100 * frac,
        )
    return frac


__all__ = ["SceneSource", "WindowReader", "CompositeReader", "MosaicReader", "composite_raws", "clear_mask",
           "decimated_read_raw", "open_geotiff", "open_layers", "mosaic", "open_raster", "grid_of", "decimated_read",
           "check_overlap", "BandProfileError", "QaDecoder", "SharedReads", "check_regular_file", "translation_offset",
           "FAST_RESAMPLING",
           "_avoid", "_axis", "_float", "_lerp_strips", "_round_to", "_take"]
