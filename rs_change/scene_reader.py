"""A date's bands and the readers of its windows: :class:`SceneSource` (where each band role
lives, how to scale it), :func:`open_raster`, and :class:`WindowReader` / :class:`CompositeReader`,
which read any window of a reference grid (a shifted grid in numpy through :mod:`rs_change.shift`,
another CRS or pixel size through a GDAL warped VRT, a date of several files composited per pixel).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from . import defaults, kernels
from .errors import GeoreferenceError, InputError
from .grid import Grid
from .qa import QaMask
from .remote import check_server, gdal_env, gdal_path, is_remote, retrying
from .composite import medoid_pick
from .sensors import BandProfile, observed_mask, raw_to_bands
from .shift import FAST_RESAMPLING, _avoid, _axis, _float, _lerp_strips, _round_to, _take, translation_offset

log = logging.getLogger(__name__)


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
    #: A date of several files or items (:func:`mosaic`): its parts, composited per pixel from the
    #: parts that observe it (:mod:`rs_change.composite`); ``layers`` are then the first part's.
    parts: tuple["SceneSource", ...] = ()
    #: What the header of the (first) file says: ``dtype``, ``count`` (bands; None for one file per
    #: band), ``size`` (width, height), ``crs``: for :func:`rs_change.sensors.profile_warnings`.
    info: dict = field(default_factory=dict)

    @property
    def roles(self) -> list[str]:
        """The roles this source reads (the keys of ``layers``)."""
        return list(self.layers)

    def open(self, ref: Grid, resampling: str = defaults.RESAMPLING) -> "WindowReader":
        """A reader of windows of ``ref`` (use as a context manager; one per thread)."""
        if self.parts:
            return CompositeReader(self, ref, resampling)  # type: ignore[return-value]
        return WindowReader(self, ref, resampling)


def open_raster(path: str, overview_level: Optional[int] = None) -> rasterio.io.DatasetReader:
    """``rasterio.open(path)``, or an :class:`~rs_change.errors.InputError` saying what to fix.

    A remote ``path`` (a URL or ``/vsi...`` path, :mod:`rs_change.remote`) is opened through
    GDAL's virtual file systems with :data:`rs_change.remote.GDAL_OPTIONS`, tried again after a
    dropped connection; a failure names the URL and the HTTP status. ``overview_level`` (0 = the
    first overview) opens one of the file's overviews as a dataset of its own.
    """
    kw = {} if overview_level is None else {"overview_level": int(overview_level)}
    if is_remote(path):
        check_server(path)  # a silent server, or one without range support, is one line before GDAL reads it
        with gdal_env([path]):
            return retrying(lambda: rasterio.open(gdal_path(path), **kw), path, "cannot open")
    check_regular_file(path)  # a FIFO would hang GDAL's open, /dev/zero would be read without end
    try:
        return rasterio.open(path, **kw)
    except RasterioIOError as exc:
        p = Path(path)
        if not p.exists() and "://" not in path:
            raise InputError(f"{path}: file not found; check the scene's `path` in the config") from None
        raise InputError(f"{path}: not a readable raster ({str(exc).splitlines()[0][:120]}); give a GeoTIFF") from None


def check_regular_file(path: str | Path) -> None:
    """An :class:`~rs_change.errors.InputError` when a local ``path`` exists but is not a regular
    file (a FIFO, device, socket or folder); GDAL paths (``/vsi...``, URLs, subdatasets) pass.
    """
    s = str(path)
    if "://" in s or s.startswith("/vsi") or ":" in Path(s).name:
        return
    try:
        mode = os.stat(s).st_mode
    except OSError:
        return  # missing: rasterio's error says so
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
        raise InputError(f"{s}: not a regular file ({kind}); give a GeoTIFF file")


def grid_of(ds: rasterio.io.DatasetReader, path: str) -> Grid:
    """The :class:`~rs_change.grid.Grid` of an open raster, or a
    :class:`~rs_change.errors.GeoreferenceError` when it has no CRS or no geotransform.
    """
    if ds.crs is None:
        raise GeoreferenceError(f"{path}: the raster has no CRS; set one (gdal_edit.py -a_srs EPSG:XXXX) and rerun")
    if ds.transform.is_identity or ds.transform == rasterio.Affine.identity():
        raise GeoreferenceError(f"{path}: the raster has no geotransform; georeference it before running rs-change")
    return Grid((ds.height, ds.width), ds.transform, ds.crs)


class SharedReads:
    """Windowed reads of files through one dataset per file shared by every thread, one read at a
    time (a lock): for the shifted reads of pass 2, whose windows reach one pixel into the
    neighbouring blocks' tiles. With a dataset per thread, the tiles on block edges were decoded
    once by each thread (+0.45 CPU s for the NAIP-size 2020 scene on 2 threads); shared, GDAL's
    block cache decodes each tile once, and the reads are a small part of a block's work.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ds: dict[str, rasterio.io.DatasetReader] = {}

    def read(self, path: str, bands: list[int], window: Window) -> np.ndarray:
        """Bands ``bands`` of ``window`` of the file ``path`` (opened on its first read)."""
        with self._lock:
            ds = self._ds.get(path)
            if ds is None:
                ds = self._ds[path] = open_raster(path)
            return ds.read(bands, window=window)

    def forget(self, path: str) -> None:
        """Close the dataset of ``path`` (opened again by the next read)."""
        with self._lock:
            ds = self._ds.pop(path, None)
            if ds is not None:
                ds.close()

    def close(self) -> None:
        """Close every dataset opened."""
        with self._lock:
            for d in self._ds.values():
                d.close()
            self._ds.clear()


class CompositeReader:
    """Reads windows of a reference grid from a date of several scenes (:func:`mosaic`): a
    :class:`WindowReader` per part, each pixel from the part that :func:`rs_change.composite.medoid_pick`
    chooses among the parts that observe it (inside the footprint, not nodata / fill / out of
    range, not QA-flagged): the only one, the first of two, the medoid of three or more.  A
    mosaic of adjacent tiles is the special case where one part observes each pixel.  After each
    read, :attr:`last_clear_count` holds how many parts observed each pixel.  Not thread-safe.
    """

    def __init__(self, source: SceneSource, ref: Grid, resampling: str = defaults.RESAMPLING) -> None:
        self.source = source
        self.ref = ref
        self.readers = [WindowReader(p, ref, resampling) for p in source.parts]
        self.last_qa: Optional[np.ndarray] = None
        #: why each pixel of the last window is masked by the parts' optical QA (rs_change.qa.reasons)
        self.last_qa_reasons: Optional[np.ndarray] = None
        #: uint8 (h, w): parts that observed each pixel of the last window read
        self.last_clear_count: Optional[np.ndarray] = None

    @property
    def shared_reads(self) -> Optional["SharedReads"]:
        """The :class:`SharedReads` the parts' readers read through (None: a dataset per reader)."""
        return self.readers[0].shared_reads

    @shared_reads.setter
    def shared_reads(self, value: Optional["SharedReads"]) -> None:
        for rd in self.readers:  # keyed by path: one object serves every part
            rd.shared_reads = value

    def __enter__(self) -> "CompositeReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every part's reader."""
        for rd in self.readers:
            rd.close()

    def can_decimate(self) -> bool:
        """True when every part's reader can decimate (:meth:`WindowReader.can_decimate`)."""
        return all(rd.can_decimate() for rd in self.readers)

    def read(self, row_off: int = 0, col_off: int = 0, height: Optional[int] = None, width: Optional[int] = None,
             out_shape: Optional[tuple[int, int]] = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """:meth:`WindowReader.read` of the composite."""
        raws, valid = self.read_raw(row_off, col_off, height, width, out_shape)
        bands, observed = raw_to_bands(raws, self.source.profile, self.source.nodata)
        valid &= observed
        return bands, valid

    def read_raw(self, row_off: int = 0, col_off: int = 0, height: Optional[int] = None, width: Optional[int] = None,
                 out_shape: Optional[tuple[int, int]] = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """:meth:`WindowReader.read_raw` of the composite: each pixel's raw values from the part
        :func:`~rs_change.composite.medoid_pick` chooses (in the first part's units when a part
        has another scale or offset), ``valid`` where some part observed it.  A pixel that no part
        observes and a part's QA flags is masked for the reason of the first part that flags it
        (:attr:`last_qa_reasons`).
        """
        reads = []
        codes: Optional[np.ndarray] = None
        for part, rd in zip(self.source.parts, self.readers):
            r, v = rd.read_raw(row_off, col_off, height, width, out_shape)
            reads.append((r, v & clear_mask(r, part.profile, part.nodata)))
            if rd.last_qa_reasons is not None:
                codes = rd.last_qa_reasons.copy() if codes is None else np.where(codes == 0, rd.last_qa_reasons, codes)
        raws, valid, count = composite_raws(self.source, reads)
        if codes is not None:
            codes[valid] = 0  # observed by a part: not masked
        self.last_qa_reasons = codes
        self.last_clear_count = count
        return raws, valid


#: The reader of a date of several files (kept under its first name: one file per part is a mosaic).
MosaicReader = CompositeReader


def clear_mask(raws: Mapping[str, np.ndarray], profile: BandProfile, nodata: Optional[float]) -> np.ndarray:
    """The pixels :func:`~rs_change.sensors.raw_to_bands` keeps (nodata, fill, valid range, finite
    floats), without converting the bands.
    """
    ok = observed_mask(raws, profile, nodata)
    for raw in raws.values():
        if raw.dtype.kind == "f":
            ok &= np.isfinite(raw)
    return ok


def composite_raws(
    source: SceneSource, reads: list[tuple[dict[str, np.ndarray], np.ndarray]]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The composite of one window from each part's (raws, clear mask): raw values in the first
    part's type and units, the mask of pixels some part observed, and the clear count.

    The parts' bands in physical units are computed only where they are needed: for the medoid
    of pixels that three or more parts observe, and to bring a part of another scale or offset
    into the first part's units.
    """
    count = np.zeros(reads[0][1].shape, np.uint8)
    for _, obs in reads:
        count += obs
    phys: dict[int, dict[str, np.ndarray]] = {}

    def bands(j: int) -> dict[str, np.ndarray]:
        if j not in phys:
            part = source.parts[j]
            phys[j] = raw_to_bands(reads[j][0], part.profile, part.nodata)[0]
        return phys[j]

    if (count >= 3).any():
        pick, _ = medoid_pick([bands(j) for j in range(len(reads))], [o for _, o in reads])
    else:  # at most two observations anywhere: the first that observes (no band is needed)
        pick, _ = medoid_pick([{} for _ in reads], [o for _, o in reads])
    first = source.parts[0].profile
    raws = {role: a.copy() for role, a in reads[0][0].items()}
    for j, (part, (r, _)) in enumerate(zip(source.parts, reads)):
        if j == 0:
            continue
        take = pick == j
        if not take.any():
            continue
        same = (part.profile.scale, part.profile.offset) == (first.scale, first.offset)
        for role, a in raws.items():
            if same or first.scale is None:
                a[take] = r[role][take]
            else:  # another baseline's offset (Sentinel-2 04.00+): the value in the first part's DNs
                a[take] = _to_raw((bands(j)[role][take] - np.float32(first.offset)) / np.float32(first.scale), a.dtype)
    return raws, pick >= 0, count


def _to_raw(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Physical values brought back to raw numbers of ``dtype`` (rounded and clamped for integers)."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.clip(np.floor(values + 0.5), info.min, info.max).astype(dt)
    return values.astype(dt)


class WindowReader:
    """Reads windows of a reference grid from a :class:`SceneSource` (not thread-safe).

    Three ways to a window, chosen per file:

    * the file's grid *is* the reference grid: a plain windowed read;
    * **translation only** (same CRS, same pixel size, no rotation; the grids differ by a shift,
      e.g. the NAIP dates offset by 1-3 m) and ``nearest`` or ``bilinear`` resampling: the source
      window (plus a one-pixel margin) is read with a plain windowed read and shifted in numpy.
      ``nearest`` picks the pixel under each centre; ``bilinear`` is the 4-neighbour weighted sum
      with the constant fractional offset, rounded to the file's integer type as GDAL does. A whole
      pixel shift is an exact pick. Outputs whose centre lies outside the source raster are
      unobserved; at the raster's edge the missing neighbours are left out of the sum (the edge
      pixel is repeated), as GDAL does. Nodata neighbours (a source pixel whose *every* band is
      nodata) are left out and the weights renormalised, and an output whose centre falls on a
      nodata pixel is nodata, as GDAL's warper does (GDAL's masked kernel rounds a few of those
      renormalised blends 1 DN lower; without nodata in the window the pixels are identical).
      Marking every pixel next to a nodata value unobserved instead was tried and rejected: the
      NAIP 2014 sample has 2,837 real NIR = 0 pixels (dark water) under its nodata value 0, and
      ~2,250 of its water pixels would have become unobserved;
    * anything else (another CRS or resolution, rotation, other resampling, or a decimated read
      with ``out_shape``): a GDAL warped VRT onto the reference grid.
    """

    def __init__(
        self, source: SceneSource, ref: Grid, resampling: str = defaults.RESAMPLING, fast: bool = True
    ) -> None:
        self.source = source
        self.ref = ref
        self.resampling = Resampling[resampling]
        self.fast = fast
        self._ds: dict[str, rasterio.io.DatasetReader] = {}
        self._views: dict[str, object] = {}
        self._alpha: dict[str, int] = {}
        self._shift: dict[str, Optional[tuple[float, float]]] = {}
        self.last_qa: Optional[np.ndarray] = None
        #: why each pixel of the last window is masked by an optical QA layer (rs_change.qa.reasons)
        self.last_qa_reasons: Optional[np.ndarray] = None
        #: reads of shifted files through datasets shared by the threads of a run (pass 2)
        self.shared_reads: Optional[SharedReads] = None

    def __enter__(self) -> "WindowReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the warped views and datasets this reader opened."""
        for v in self._views.values():
            if isinstance(v, WarpedVRT):
                v.close()
        for d in self._ds.values():
            d.close()
        self._views.clear()
        self._ds.clear()

    def forget(self, path: str) -> None:
        """Close every dataset and view of ``path`` (they are opened again on the next read): after
        a failed remote read, whose dataset would keep failing.
        """
        for key in [k for k in self._views if k.startswith(path + "|")]:
            v = self._views.pop(key)
            if isinstance(v, WarpedVRT):
                v.close()
        for key in [k for k in self._ds if k == path or k.startswith(path + "|")]:
            self._ds.pop(key).close()
        if self.shared_reads is not None:
            self.shared_reads.forget(path)

    def _dataset(self, path: str) -> rasterio.io.DatasetReader:
        if path not in self._ds:
            self._ds[path] = open_raster(path)
        return self._ds[path]

    def _translation(self, path: str) -> Optional[tuple[float, float]]:
        """(dy, dx) when ``path``'s grid is the reference grid shifted (not identical), else None."""
        if path not in self._shift:
            ds = self._dataset(path)
            own = Grid((ds.height, ds.width), ds.transform, ds.crs)
            self._shift[path] = None if own.same_as(self.ref) else translation_offset(own, self.ref)
        return self._shift[path]

    def _view(self, path: str, resampling: Resampling) -> object:
        key = f"{path}|{resampling.name}"
        if key in self._views:
            return self._views[key]
        ds = self._dataset(path)
        own = Grid((ds.height, ds.width), ds.transform, ds.crs)
        if own.same_as(self.ref):
            view: object = ds
        else:
            nd = self.source.nodata if self.source.nodata is not None else ds.nodata
            if self.source.qa_layer is not None and path == self.source.qa_layer[0] and \
                    path not in {p for p, _ in self.source.layers.values()}:
                nd = ds.nodata  # a QA file of its own: its own nodata (the bands' may be a valid QA value)
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
            vrt = WarpedVRT(ds, **kw)
            if nd is None:
                self._alpha[key] = vrt.count
            view = vrt
        self._views[key] = view
        return view

    def _read_shifted(
        self, path: str, bands: list[int], window: Window, res: Resampling, off: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Translation-only fast path: (bands, h, w) in the file's dtype and the observed mask."""
        ds = self._dataset(path)
        h, w = int(window.height), int(window.width)
        bil = res == Resampling.bilinear
        rlo, rhi, r0, r1, fy, rin = _axis(h, int(window.row_off), off[0], ds.height, bil)
        clo, chi, c0, c1, fx, cin = _axis(w, int(window.col_off), off[1], ds.width, bil)
        inside = rin[:, None] & cin[None, :]
        if not inside.any():
            return np.zeros((len(bands), h, w), dtype=ds.dtypes[bands[0] - 1]), inside
        win = Window(clo, rlo, chi - clo, rhi - rlo)
        src = ds.read(bands, window=win) if self.shared_reads is None else self.shared_reads.read(path, bands, win)
        if fx == 0 and fy == 0:  # a whole-pixel shift (or nearest): an exact pick
            return _take(_take(src, r0, 1), c0, 2), inside

        def lerp(v: np.ndarray) -> np.ndarray:
            # separable: along x on every needed row, then along y (GDAL's order for a pure shift)
            rows = _take(v, c0, 2) if fx == 0 else _take(v, c0, 2) * (1.0 - fx) + _take(v, c1, 2) * fx
            return _take(rows, r0, 1) if fy == 0 else _take(rows, r0, 1) * (1.0 - fy) + _take(rows, r1, 1) * fy

        nd = self.source.nodata if self.source.nodata is not None else ds.nodata
        ok = None
        if nd is not None and np.isnan(nd) and not np.issubdtype(src.dtype, np.floating):
            nd = None  # an integer raster cannot hold NaN
        fast = kernels.lerp_u8(src, r0, r1, c0, c1, fx, fy, nd)  # 8-bit, no nodata pixel: compiled
        if fast is not None:
            return fast, inside
        if nd is not None:  # a source pixel is nodata when every band of the file is (GDAL's
            # UNIFIED_SRC_NODATA=PARTIAL): a real 0 in one band (NAIP 2014's dark-water NIR) is data
            if nd == 0 and src.dtype.kind in "iu":  # any band non-zero: an OR of the bands (4x faster)
                ok = np.bitwise_or.reduce(src, axis=0) != 0
            else:
                ok = ~(np.isnan(src) if np.isnan(nd) else src == nd).all(axis=0)
        if ok is None or ok.all():
            return _avoid(_lerp_strips(src, r0, r1, c0, c1, fx, fy), nd), inside
        a = _float(src)
        # as GDAL's warper: an output whose centre falls on a nodata pixel is nodata; otherwise
        # the nodata neighbours are left out and the weights renormalised
        den = lerp(ok[None].astype(a.dtype))
        out = _round_to(lerp(np.where(ok[None], a, 0)) / np.maximum(den, 1e-5), src.dtype)
        out = _avoid(out, nd)
        centre_ok = _take(_take(ok, r0 if fy < 0.5 else r1, 0), c0 if fx < 0.5 else c1, 1)
        out[:, ~centre_ok] = nd
        return out, inside

    def can_decimate(self) -> bool:
        """True when a decimated read (``out_shape``) of every file needs no warp: the file is on
        the reference grid or a translation of it, so each output pixel is the source pixel under
        its centre (read strip by strip, every source tile decoded once).
        """
        return self.fast and all(self._translation(p) is not None or self._same_grid(p) for p in self._paths())

    def _same_grid(self, path: str) -> bool:
        d = self._dataset(path)
        return Grid((d.height, d.width), d.transform, d.crs).same_as(self.ref)

    def _paths(self) -> list[str]:
        paths = [p for p, _ in self.source.layers.values()]
        if self.source.qa_layer is not None:
            paths.append(self.source.qa_layer[0])
        return list(dict.fromkeys(paths))

    def _overview_for(self, path: str, window: Window, out_shape: tuple[int, int]) -> Optional[tuple[int, int]]:
        """(index, factor) of the coarsest overview of ``path`` that is at most as coarse as a read of
        ``window`` at ``out_shape`` (GDAL's own choice for a decimated read); None without one.
        """
        factors = self._dataset(path).overviews(1)
        step = min(float(window.height) / out_shape[0], float(window.width) / out_shape[1])
        fits = [(f, i) for i, f in enumerate(factors) if f <= step + 1e-9]
        if not fits:
            return None
        f, i = max(fits)
        return i, int(f)

    def _overview(self, path: str, index: int) -> rasterio.io.DatasetReader:
        key = f"{path}|overview{index}"
        if key not in self._ds:
            self._ds[key] = open_raster(path, overview_level=index)
        return self._ds[key]

    def _read_decimated_shift(
        self, path: str, bands: list[int], window: Window, out_shape: tuple[int, int], off: tuple[float, float],
        rows_per_read: Optional[int] = None, level: Optional[tuple[int, int]] = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decimated nearest read of a file on the grid or translated from it: output pixel ``o`` of
        a window of ``h`` rows read at ``oh`` rows takes the source pixel under its centre,
        ``row_off + (o + 0.5) * h / oh`` on the reference grid plus the offset (likewise for
        columns). Rows of the source are read in strips of ``rows_per_read`` and only the needed
        rows and columns kept.

        With ``level`` (an overview's (index, factor), :meth:`_overview_for`) the pixel under the
        centre is taken from that overview instead: a fraction of the bytes (1/64 for a factor of
        8), which is what makes pass 1 on a remote COG cheap. Whether an output pixel is inside
        the scene is still decided on the full-resolution grid.

        By default a strip is at most 8 MB (a power of two of rows, 16 to 512: it divides the usual
        tile heights, so GDAL's block cache decodes each tile once): 256 rows of a NAIP-size scene,
        128 of a 4x larger one, whose 512-row strips were 30 MB per date in flight.
        """
        full = self._dataset(path)
        ds = full if level is None else self._overview(path, level[0])
        if rows_per_read is None:
            row_bytes = max(1, int(window.width) * len(bands) * np.dtype(ds.dtypes[bands[0] - 1]).itemsize)
            rows_per_read = 512
            while rows_per_read > 16 and rows_per_read * row_bytes > (8 << 20):
                rows_per_read //= 2
        oh, ow = int(out_shape[0]), int(out_shape[1])
        h, w = float(window.height), float(window.width)

        def picks(n_out: int, start: float, size: float, shift: float, n_full: int, n_src: int
                  ) -> tuple[np.ndarray, np.ndarray]:
            centre = start + (np.arange(n_out) + 0.5) * (size / n_out) + shift  # full-resolution pixels
            pixel = np.floor(centre + 1e-10)
            inside = (pixel >= 0) & (pixel < n_full)
            if n_src == n_full:
                idx = pixel.astype(np.int64)
            else:
                idx = np.floor(centre * (n_src / n_full) + 1e-10).astype(np.int64)
            return np.clip(idx, 0, n_src - 1), inside

        ri, rin = picks(oh, float(window.row_off), h, off[0], full.height, ds.height)
        ci, cin = picks(ow, float(window.col_off), w, off[1], full.width, ds.width)
        out = np.zeros((len(bands), oh, ow), dtype=ds.dtypes[bands[0] - 1])
        c0, c1 = int(ci.min()), int(ci.max()) + 1
        first = int(ri.min()) - int(ri.min()) % rows_per_read
        for a in range(first, int(ri.max()) + 1, rows_per_read):
            b = min(a + rows_per_read, ds.height)
            sel = np.flatnonzero((ri >= a) & (ri < b))
            if len(sel):
                strip = ds.read(bands, window=Window(c0, a, c1 - c0, b - a))
                out[:, sel] = strip[:, ri[sel] - a][:, :, ci - c0]
        return out, rin[:, None] & cin[None, :]

    def _read_group(
        self, path: str, bands: list[int], window: Window, out_shape: Optional[tuple[int, int]], nearest: bool = False
    ) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Every band of ``bands`` of one file in one read: ((n, h, w) array, observed mask or None).

        A remote file is read with :data:`rs_change.remote.GDAL_OPTIONS` (here, so a Dask worker
        that reads it applies them too) and read again after a dropped connection
        (:func:`rs_change.remote.retrying`); a local file that fails to read is named as corrupt.
        """
        if is_remote(path):
            with gdal_env([path]):
                return retrying(lambda: self._read_group_once(path, bands, window, out_shape, nearest), path,
                                reset=lambda: self.forget(path))
        try:
            return self._read_group_once(path, bands, window, out_shape, nearest)
        except RasterioIOError as exc:
            detail = str(exc.__cause__ or exc).splitlines()[0] if str(exc.__cause__ or exc) else "read error"
            raise InputError(
                f"{path}: read failed, the file looks truncated or corrupt ({detail[:120]}); download or copy it again"
            ) from None

    def _read_group_once(
        self, path: str, bands: list[int], window: Window, out_shape: Optional[tuple[int, int]], nearest: bool = False
    ) -> tuple[np.ndarray, Optional[np.ndarray]]:
        res = Resampling.nearest if nearest else self.resampling
        if self.fast and out_shape is None and res.name in FAST_RESAMPLING:
            off = self._translation(path)
            if off is not None:
                return self._read_shifted(path, bands, window, res, off)
        if self.fast and out_shape is not None:
            off = self._translation(path)
            if off is None and self._same_grid(path) and not self._dataset(path).overviews(1):
                # a file on the grid itself without overviews: the same picks strip by strip
                # (GDAL's decimated read decodes every tile once per band when its block
                # cache cannot hold the whole scene: 3.6 instead of 1.2 CPU s on the 4x pair)
                off = (0.0, 0.0)
            if off is not None:  # (with overviews, GDAL's decimated read below reads them)
                return self._read_decimated_shift(path, bands, window, out_shape, off,
                                                  level=self._overview_for(path, window, out_shape))
        view = self._view(path, res)
        key = f"{path}|{res.name}"
        kw: dict = {"window": window}
        if out_shape is not None:
            kw["out_shape"] = (len(bands) + (key in self._alpha),) + tuple(out_shape)
            kw["resampling"] = Resampling.nearest
        idx = list(bands) + ([self._alpha[key]] if key in self._alpha else [])
        arr = view.read(idx, **kw)  # type: ignore[attr-defined]
        inside = None
        if key in self._alpha:
            inside = arr[-1] > 0
            arr = arr[:-1]
        return arr, inside

    def read(
        self, row_off: int = 0, col_off: int = 0, height: Optional[int] = None, width: Optional[int] = None,
        out_shape: Optional[tuple[int, int]] = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Bands (float32, reflectance or DN) and the observed mask of a window of the reference grid.

        :meth:`read_raw` followed by :func:`~rs_change.sensors.raw_to_bands`; the parameters are :meth:`read_raw`'s.

        Returns
        -------
        bands : dict of role to float32 (h, w)
        valid : bool (h, w)
            Observed pixels (inside the scene, not nodata / fill / out of range / QA-flagged).
        """
        raws, valid = self.read_raw(row_off, col_off, height, width, out_shape)
        bands, observed = raw_to_bands(raws, self.source.profile, self.source.nodata)
        valid &= observed
        return bands, valid

    def read_raw(
        self, row_off: int = 0, col_off: int = 0, height: Optional[int] = None, width: Optional[int] = None,
        out_shape: Optional[tuple[int, int]] = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Raw band values (the files' type, on the reference grid) of a window, and the pixels that
        are inside every file and not QA-flagged; :func:`~rs_change.sensors.raw_to_bands` gives the bands in physical
        units and the rest of the observed mask (nodata, fill, valid range).

        Parameters
        ----------
        row_off, col_off : int, default 0
            Top-left pixel of the window on the reference grid.
        height, width : int, optional
            Window size (default: to the grid's bottom / right edge).
        out_shape : (int, int), optional
            Read the window decimated to this shape (nearest), for sampling.

        Returns
        -------
        raws : dict of role to numpy.ndarray (h, w)
        valid : bool (h, w)
            Pixels inside every file's footprint and not flagged by the QA layer.
        """
        h = self.ref.height - row_off if height is None else height
        w = self.ref.width - col_off if width is None else width
        window = Window(col_off, row_off, w, h)
        shape = out_shape or (h, w)
        valid = np.ones(shape, dtype=bool)
        raws: dict[str, np.ndarray] = {}
        groups: dict[str, list[tuple[str, int]]] = {}
        for role, (path, band) in self.source.layers.items():
            groups.setdefault(path, []).append((role, band))
        dec = self.source.qa_decoder
        qa_in = None  # a QA band of a stack on the reference grid: read with the bands (no resampling there)
        if isinstance(dec, QaMask) and self.source.qa_layer is not None and self.source.qa_layer[0] in groups \
                and (out_shape is not None or dec.halo == 0) and self._same_grid(self.source.qa_layer[0]):
            qa_in = self.source.qa_layer
        qa_raw = None
        for path, members in groups.items():  # one read per file, every band of it at once
            uniq = sorted({b for _, b in members} | ({qa_in[1]} if qa_in is not None and qa_in[0] == path else set()))
            arr, inside = self._read_group(path, uniq, window, out_shape)
            if inside is not None:
                valid &= inside
            for role, band in members:
                raws[role] = arr[uniq.index(band)]
            if qa_in is not None and qa_in[0] == path:
                qa_raw = arr[uniq.index(qa_in[1])]
        if self.source.qa_layer is not None and isinstance(dec, QaMask):
            codes, inside = self._qa_reasons(row_off, col_off, h, w, out_shape, qa_raw)
            if inside is not None:
                valid &= inside
            valid &= codes == 0
            self.last_qa_reasons = codes
        elif self.source.qa_layer is not None and self.source.qa_decoder is not None:
            qpath, qband = self.source.qa_layer
            qa, inside = self._read_group(qpath, [qband], window, out_shape, nearest=True)
            qa = qa[0]
            if inside is not None:
                valid &= inside
            valid &= ~self.source.qa_decoder(qa)
            self.last_qa = qa  # raw QA of the last window, for per-block QA reports (rs_change.modis)
        return raws, valid


    def _qa_reasons(self, row_off: int, col_off: int, h: int, w: int, out_shape: Optional[tuple[int, int]],
                    qa: Optional[np.ndarray] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Reason codes (:func:`rs_change.qa.reasons`) of the optical QA layer over a window, read
        nearest-neighbour onto the reference grid, and the QA file's footprint (or None).

        With a buffer the window is read with a halo of ``buffer`` pixels (clipped to the reference
        grid), so a cloud in the next block grows into this one: the masks do not depend on the
        block size. A decimated read (``out_shape``, pass 1's sample) dilates by the buffer in
        decimated pixels, rounded up (a sample pixel near a cloud is dropped). ``qa``: the window's
        QA values when they were read with the bands (:meth:`read_raw`).
        """
        dec = self.source.qa_decoder
        assert isinstance(dec, QaMask) and self.source.qa_layer is not None
        qpath, qband = self.source.qa_layer
        halo = dec.halo
        if out_shape is not None or halo == 0:
            inside = None
            if qa is None:
                arr, inside = self._read_group(qpath, [qband], Window(col_off, row_off, w, h), out_shape, nearest=True)
                qa = arr[0]
            if out_shape is not None:
                dec = dec.scaled(min(h / out_shape[0], w / out_shape[1]))
            return dec.reasons(qa), inside
        r0, c0 = max(0, row_off - halo), max(0, col_off - halo)
        r1, c1 = min(self.ref.height, row_off + h + halo), min(self.ref.width, col_off + w + halo)
        qa, inside = self._read_group(qpath, [qband], Window(c0, r0, c1 - c0, r1 - r0), None, nearest=True)
        sl = (slice(row_off - r0, row_off - r0 + h), slice(col_off - c0, col_off - c0 + w))
        codes = dec.reasons(qa[0])[sl]
        return np.ascontiguousarray(codes), None if inside is None else inside[sl]
