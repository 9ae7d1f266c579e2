"""EDGE: GeoTIFF scenes -> bands on a reference grid, one window at a time.

A :class:`SceneSource` says where each band role of one date lives (one multi-band file, or one
file per layer) and how to scale it.  :meth:`SceneSource.open` returns a :class:`WindowReader`
that reads any window of a *reference grid*: when the scene's own grid differs (another date's
grid shifted by metres, another CRS) the file is read through a GDAL warped VRT, so alignment
costs no full-scene copy and memory stays set by the window size.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from .errors import BandProfileError, GeoreferenceError, InputError
from .grid import Grid
from .sensors import BandProfile

log = logging.getLogger(__name__)

#: A QA decoder maps a raw QA array to a boolean "unobserved" mask.
QaDecoder = Callable[[np.ndarray], np.ndarray]


@dataclass
class SceneSource:
    """Where the bands of one date live and how to turn them into reflectance or DNs.

    Attributes
    ----------
    date : datetime.date
    profile : BandProfile
    layers : mapping of role to (path, band)
        The file and 1-based band of each role.
    grid : Grid
        The scene's own grid (of its first layer).
    nodata : float or None
        Raw value that marks unobserved pixels (the file's own, or the config's).
    qa_layer : (path, band), optional
        A QA bit-field layer; ``qa_decoder`` turns it into an "unobserved" mask.
    """

    date: _dt.date
    profile: BandProfile
    layers: Mapping[str, tuple[str, int]]
    grid: Grid
    nodata: Optional[float] = None
    qa_layer: Optional[tuple[str, int]] = None
    qa_decoder: Optional[QaDecoder] = None
    label: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def roles(self) -> list[str]:
        return list(self.layers)

    def open(self, ref: Grid, resampling: str = "bilinear") -> "WindowReader":
        """A reader of windows of ``ref`` (use as a context manager; one per thread)."""
        return WindowReader(self, ref, resampling)


def _open(path: str) -> rasterio.io.DatasetReader:
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        p = Path(path)
        if not p.exists() and "://" not in path:
            raise InputError(f"{path}: file not found; check the scene's `path` in the config") from None
        raise InputError(f"{path}: not a readable raster ({str(exc).splitlines()[0][:120]}); give a GeoTIFF") from None


def _grid_of(ds: rasterio.io.DatasetReader, path: str) -> Grid:
    if ds.crs is None:
        raise GeoreferenceError(f"{path}: the raster has no CRS; set one (gdal_edit.py -a_srs EPSG:XXXX) and rerun")
    if ds.transform.is_identity or ds.transform == rasterio.Affine.identity():
        raise GeoreferenceError(f"{path}: the raster has no geotransform; georeference it before running rs-change")
    return Grid((ds.height, ds.width), ds.transform, ds.crs)


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
    with _open(path) as ds:
        grid = _grid_of(ds, path)
        profile.check_band_count(ds.count, path)
        file_nodata = ds.nodata
        if profile.scale is None and ds.scales and ds.scales[0] not in (None, 1.0) and ds.dtypes[0] != "uint8":
            log.info("%s: file declares scale %s; pass `scale:` in the config to use it", path, ds.scales[0])
    nd = nodata if nodata is not None else file_nodata
    layers = {role: (path, int(b)) for role, b in profile.bands.items()}
    return SceneSource(date=date, profile=profile, layers=layers, grid=grid, nodata=nd, label=path)


class WindowReader:
    """Reads windows of a reference grid from a :class:`SceneSource` (not thread-safe)."""

    def __init__(self, source: SceneSource, ref: Grid, resampling: str = "bilinear") -> None:
        self.source = source
        self.ref = ref
        self.resampling = Resampling[resampling]
        self._ds: dict[str, rasterio.io.DatasetReader] = {}
        self._views: dict[str, object] = {}
        self._alpha: dict[str, int] = {}
        self.last_qa: Optional[np.ndarray] = None

    def __enter__(self) -> "WindowReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for v in self._views.values():
            if isinstance(v, WarpedVRT):
                v.close()
        for d in self._ds.values():
            d.close()
        self._views.clear()
        self._ds.clear()

    def _view(self, path: str, resampling: Resampling) -> object:
        key = f"{path}|{resampling.name}"
        if key in self._views:
            return self._views[key]
        if path not in self._ds:
            self._ds[path] = _open(path)
        ds = self._ds[path]
        own = Grid((ds.height, ds.width), ds.transform, ds.crs)
        if own.same_as(self.ref):
            view: object = ds
        else:
            nd = self.source.nodata if self.source.nodata is not None else ds.nodata
            kw: dict = dict(
                crs=self.ref.crs.to_wkt(),
                transform=self.ref.transform,
                width=self.ref.width,
                height=self.ref.height,
                resampling=resampling,
            )
            if nd is None:
                kw["add_alpha"] = True
            else:
                kw["src_nodata"] = nd
                kw["nodata"] = nd
            view = WarpedVRT(ds, **kw)
            if nd is None:
                self._alpha[key] = view.count
        self._views[key] = view
        return view

    def _read_raw(
        self, role_or_layer: tuple[str, int], window: Window, out_shape: Optional[tuple[int, int]], nearest: bool = False
    ) -> tuple[np.ndarray, Optional[np.ndarray]]:
        path, band = role_or_layer
        res = Resampling.nearest if nearest else self.resampling
        view = self._view(path, res)
        key = f"{path}|{res.name}"
        kw: dict = {"window": window}
        if out_shape is not None:
            kw["out_shape"] = out_shape
            kw["resampling"] = Resampling.nearest
        try:
            arr = view.read(band, **kw)  # type: ignore[attr-defined]
            inside = None
            if key in self._alpha:
                inside = view.read(self._alpha[key], **kw) > 0  # type: ignore[attr-defined]
        except RasterioIOError as exc:
            detail = str(exc.__cause__ or exc).splitlines()[0] if str(exc.__cause__ or exc) else "read error"
            raise InputError(
                f"{path}: read failed, the file looks truncated or corrupt ({detail[:120]}); download or copy it again"
            ) from None
        return arr, inside

    def read(
        self, row_off: int = 0, col_off: int = 0, height: Optional[int] = None, width: Optional[int] = None,
        out_shape: Optional[tuple[int, int]] = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Bands (float32, reflectance or DN) and the observed mask of a window of the reference grid.

        ``out_shape`` reads the window decimated (nearest), for sampling.
        """
        h = self.ref.height - row_off if height is None else height
        w = self.ref.width - col_off if width is None else width
        window = Window(col_off, row_off, w, h)
        prof = self.source.profile
        shape = out_shape or (h, w)
        valid = np.ones(shape, dtype=bool)
        bands: dict[str, np.ndarray] = {}
        for role, layer in self.source.layers.items():
            raw, inside = self._read_raw(layer, window, out_shape)
            if inside is not None:
                valid &= inside
            nd = self.source.nodata
            if nd is not None:
                valid &= raw != nd
            if prof.fill is not None:
                valid &= raw != prof.fill
            if prof.valid_range is not None:
                lo, hi = prof.valid_range
                valid &= (raw >= lo) & (raw <= hi)
            data = raw.astype(np.float32, copy=False)
            if np.issubdtype(raw.dtype, np.floating):
                valid &= np.isfinite(data)
            if prof.scale is not None:
                data = data * np.float32(prof.scale) + np.float32(prof.offset)
            bands[role] = data
        if self.source.qa_layer is not None and self.source.qa_decoder is not None:
            qa, inside = self._read_raw(self.source.qa_layer, window, out_shape, nearest=True)
            valid &= ~self.source.qa_decoder(qa)
            self.last_qa = qa  # raw QA of the last window, for per-block QA reports (rs_change.modis)
        return bands, valid


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
            f"(scene bounds {tuple(round(v, 3) for v in sb)}, reference {tuple(round(v, 3) for v in rb)} in {ref.crs.to_string()}); "
            "check the dates' paths and CRSs"
        )
    if frac < 0.99:
        log.warning(
            "%s: the scene of %s covers %.1f%% of the reference grid; pixels outside it are unobserved",
            source.label, source.date, 100 * frac,
        )
    return frac


__all__ = ["SceneSource", "WindowReader", "open_geotiff", "check_overlap", "BandProfileError"]


def open_scene(
    path: str | Path,
    profile: BandProfile,
    date: _dt.date,
    nodata: Optional[float] = None,
) -> SceneSource:
    """Open one date: a multi-band raster file, or (MODIS) a folder / glob of per-layer files or
    an HDF4 granule.  Dispatches on the path; see :mod:`rs_change.modis` for the MODIS forms."""
    p = Path(path)
    s = str(path)
    modis_profile = profile.name.lower().startswith(("modis", "mod09", "myd09"))  # bands by description
    if modis_profile or p.is_dir() or any(ch in s for ch in "*?[") or p.suffix.lower() in (".hdf", ".h4", ".hdf4"):
        from . import modis  # noqa: PLC0415  (optional reader, imported on demand)

        return modis.open_source(p, profile, date, nodata)
    return open_geotiff(p, profile, date, nodata)
