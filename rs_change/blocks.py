"""Pass 2: every date read, classified, measured and compared one window of the reference grid
at a time.

:func:`process_block` reads each date's window on the reference grid, decides water
(:func:`rs_change.water.classify_raw`) and measures the block: per-date areas as named
:data:`~rs_change.change.DATE_STATS` records, first -> last change classes, the many-date series
(one histogram of joint date states, :class:`~rs_change.change.JointStates`).  :class:`BlockTask`
binds the run context for the engine; :class:`BlockTotals` adds the results in block order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Optional, Sequence

import numpy as np

from .aoi import aoi_mask
from .area import pixel_area_rows
from .change import (
    DATE_STATS,
    MAX_JOINT_DATES,
    JointStates,
    SeriesAccumulator,
    SeriesBlock,
    add_date_stats,
    change_map,
    date_stats_of,
    series_block,
)
from .engine import cached_reader, limit_gdal_cache, new_token, shared_reader
from .fit import DateModel
from .grid import Grid
from .readers import SharedReads
from .water import classify_raw
from .waterbody import pixel_classes

#: The first -> last change classes summed per block (0 land, 1 water, 2 gained, 3 lost, 255
#: unobserved on either date; inside the area of interest), in :attr:`BlockResult.change_stats` order.
CHANGE_CODES = (0, 1, 2, 3, 255)


@dataclass
class BlockResult:
    """What :func:`process_block` measured in one window."""

    window: tuple[int, int, int, int]
    water: list[np.ndarray]  # per date: uint8 water mask (1 water, 0 land, 255 unobserved)
    change: Optional[np.ndarray]
    stats: np.ndarray  # per date: a DATE_STATS record (water_px, water_m2, observed_px ... outside_m2)
    change_stats: np.ndarray  # (len(CHANGE_CODES), 2): pixels and m2 of each change class (inside AOI)
    clusters: list[np.ndarray] = field(default_factory=list)  # cluster ids per date (255 unobserved)
    fraction: list[np.ndarray] = field(default_factory=list)  # water fraction per date (0-100, 255 unobserved)
    extra: list[dict[str, float]] = field(default_factory=list)  # per date: source's block_stats (m2)
    series: Optional[SeriesBlock] = None  # 2+ dates: frequency, series classes, consecutive change (rs_change.change)
    #: per date: uint8 clear_count (scenes that observed the pixel, 0 outside the area of interest)
    #: for a date of several scenes (rs_change.composite), None for a date of one scene
    clear_counts: list[Optional[np.ndarray]] = field(default_factory=list)
    waterbody: Optional[np.ndarray] = None  # 2+ dates: uint8 waterbody class (rs_change.waterbody.pixel_classes)


def process_block(
    window: tuple[int, int, int, int],
    ref: Grid,
    models: Sequence[DateModel],
    geoms: Optional[list[Any]],
    resampling: str,
    token: Optional[str] = None,
    rasters: bool = True,
    waterbodies: Optional[tuple[float, float, int]] = None,
) -> BlockResult:
    """Read, classify, measure and compare every date in one window of the reference grid.

    Parameters
    ----------
    window : (row_off, col_off, height, width)
        A window of ``ref``.
    ref : Grid
        The reference grid.
    models : sequence of DateModel
        Pass-1 models, one per date, in date order.
    geoms : list of shapely geometries or None
        The area of interest in ``ref``'s CRS.
    resampling : str
        Resampling of the bands onto ``ref``.
    token : str, optional
        Run key under which the calling thread keeps its readers open between blocks
        (:func:`rs_change.engine.cached_reader`); None opens and closes them for this block.
    rasters : bool, default True
        Also make the rasters that are written (cluster ids, water fractions, change map, series rasters); False
        (a summary-only run) computes the water masks and the area sums only.
    waterbodies : (core_share, extent_share, min_observations), optional
        With 2+ dates and ``rasters``, also each pixel's waterbody class
        (:func:`rs_change.waterbody.pixel_classes`: 0 none, 1 extent, 2 core).

    Returns
    -------
    BlockResult
        Water masks (uint8 (h, w) per date), change map, per-date and change area sums.
    """
    r0, c0, h, w = window
    g = ref.window_grid(r0, c0, h, w)
    area_rows = pixel_area_rows(g.transform, g.crs, g.shape)  # m2 per pixel, a strip of rows at a time
    inside = aoi_mask(geoms, g)
    dates = _read_dates(window, ref, models, resampling, token, rasters, inside, area_rows)
    if len(models) <= MAX_JOINT_DATES:
        return _joint_block(window, dates, inside, area_rows, rasters, waterbodies)
    return _many_dates_block(window, dates, inside, area_rows, rasters, waterbodies)


@dataclass
class _Dates:
    """Per date of one block: what :func:`_read_dates` read and classified."""

    masks: list[np.ndarray] = field(default_factory=list)  # uint8 water mask (h, w)
    clusters: list[np.ndarray] = field(default_factory=list)  # cluster ids, when rasters are made
    fractions: list[np.ndarray] = field(default_factory=list)  # uint8 water fractions, when rasters are made
    extras: list[dict[str, float]] = field(default_factory=list)  # the source's block_stats (m2), or {}
    counts: list[Optional[np.ndarray]] = field(default_factory=list)  # clear_count of a composite date, or None


def _read_dates(
    window: tuple[int, int, int, int],
    ref: Grid,
    models: Sequence[DateModel],
    resampling: str,
    token: Optional[str],
    rasters: bool,
    inside: Optional[np.ndarray],
    area_rows: Any,
) -> _Dates:
    """Read and classify every date in ``window`` (see :func:`process_block` for the arguments)."""
    r0, c0, h, w = window
    out = _Dates()
    for i, dm in enumerate(models):
        if token is not None:
            rd = cached_reader(token, i, partial(dm.source.open, ref, resampling))
            if rd.shared_reads is None:
                rd.shared_reads = shared_reader(token, i, SharedReads)
        else:
            rd = dm.source.open(ref, resampling)
        try:
            raws, valid = rd.read_raw(r0, c0, h, w)
        finally:
            if token is None:
                rd.close()
        if inside is not None:
            valid &= inside
        cc = getattr(rd, "last_clear_count", None) if rasters and dm.source.parts else None
        if cc is not None and inside is not None:
            cc = np.where(inside, cc, np.uint8(0))
        out.counts.append(cc)
        frac = np.empty((h, w), np.uint8) if rasters else None
        cl, water = classify_raw(dm, raws, valid, clusters=rasters, fraction=frac)  # valid: observed after this
        del raws
        out.masks.append(water)
        if frac is not None:
            out.fractions.append(frac)
        if cl is not None:
            out.clusters.append(cl)
        report = dm.source.extra.get("block_stats")  # optional per-source areas in m2 (MODIS QA flags)
        if report is not None:
            ins = np.ones((h, w), bool) if inside is None else inside
            out.extras.append(report(rd, valid, ins, np.broadcast_to(area_rows(0, h), (h, w))))
        else:
            out.extras.append({})
    return out


def _joint_block(
    window: tuple[int, int, int, int],
    dates: _Dates,
    inside: Optional[np.ndarray],
    area_rows: Any,
    rasters: bool,
    waterbodies: Optional[tuple[float, float, int]],
) -> BlockResult:
    """Up to :data:`MAX_JOINT_DATES` dates: one joint code per pixel, two bincounts give every figure
    of the block (:class:`rs_change.change.JointStates`).
    """
    masks = dates.masks
    n = len(masks)
    js = _joint_states(n)
    code = js.encode(masks, inside)
    hist = js.histogram_rows(code, area_rows)
    stats = js.date_stats(hist)
    ch, cst, sb = None, np.zeros((len(CHANGE_CODES), 2)), None
    if n >= 2:
        cst = js.change_stats(hist, CHANGE_CODES)
        tst, sst, fst = js.series_stats(hist)
        if rasters and js.change is not None:
            ch = js.change[code]
        if rasters and n >= 3:  # frequency, series classes, consecutive changes are written
            sb = SeriesBlock(
                js.frequency[code],
                js.classes[code],
                [t[code] for t in js.transitions],
                tst,
                sst,
                fst,
                js.observations[code],
            )
        else:
            sb = SeriesBlock(None, None, [], tst, sst, fst)  # type: ignore[arg-type]
    wb = None
    if rasters and waterbodies is not None and n >= 2:  # a table of the joint codes, like the series
        wb = _waterbody_table(n, waterbodies)[code]
    return BlockResult(
        window,
        masks,
        ch,
        stats,
        cst,
        dates.clusters,
        dates.fractions,
        extra=dates.extras,
        series=sb,
        clear_counts=dates.counts,
        waterbody=wb,
    )


def _many_dates_block(
    window: tuple[int, int, int, int],
    dates: _Dates,
    inside: Optional[np.ndarray],
    area_rows: Any,
    rasters: bool,
    waterbodies: Optional[tuple[float, float, int]],
) -> BlockResult:
    """More than :data:`MAX_JOINT_DATES` dates: one pass over the block per figure."""
    _, _, h, w = window
    masks = dates.masks
    pa = area_rows(0, h)
    pa_full = np.broadcast_to(pa, (h, w))
    ins = np.ones((h, w), bool) if inside is None else inside
    stats = date_stats_of(masks, pa, inside)
    ch = change_map(masks[0], masks[-1])
    cst = np.zeros((len(CHANGE_CODES), 2))
    for j, change_code in enumerate(CHANGE_CODES):
        sel = (ch == change_code) & ins
        cst[j] = (sel.sum(), pa_full[sel].sum() if sel.any() else 0.0)
    sb = series_block(masks, pa, inside)
    wb = None
    if rasters and waterbodies is not None:  # outside the AOI: unobserved
        wb = pixel_classes(masks, *waterbodies)
    return BlockResult(
        window,
        masks,
        ch if rasters else None,
        stats,
        cst,
        dates.clusters,
        dates.fractions,
        extra=dates.extras,
        series=sb,
        clear_counts=dates.counts,
        waterbody=wb,
    )


_JOINT: dict[int, JointStates] = {}
_WB_TABLES: dict[tuple[int, tuple[float, float, int]], np.ndarray] = {}


def _waterbody_table(n: int, params: tuple[float, float, int]) -> np.ndarray:
    """Waterbody class of every joint code (:func:`rs_change.waterbody.pixel_classes` of the
    codes' masks; the outside code is unobserved on every date: class 0), built once per process.
    """
    key = (n, (float(params[0]), float(params[1]), int(params[2])))
    t = _WB_TABLES.get(key)
    if t is None:
        t = _WB_TABLES[key] = pixel_classes(_joint_states(n).masks, *params)
    return t


def _joint_states(n: int) -> JointStates:
    """One :class:`~rs_change.change.JointStates` per number of dates and process (built once)."""
    js = _JOINT.get(n)
    if js is None:
        js = _JOINT[n] = JointStates(n)
    return js


@dataclass
class BlockTask:
    """``process_block`` with its run context bound: a picklable callable of one window.

    Sent once to every process / cluster worker; readers are opened where it runs and cached per
    thread under ``token``.
    """

    ref: Grid
    models: Sequence[DateModel]
    geoms: Optional[list[Any]]
    resampling: str
    token: str = field(default_factory=new_token)

    gdal_cache_mb: int = 256
    rasters: bool = True  # False: summary only (no cluster, change or series rasters)
    waterbodies: Optional[tuple[float, float, int]] = None  # (core_share, extent_share, min_observations)

    def __call__(self, window: tuple[int, int, int, int]) -> BlockResult:
        """Process one window (a picklable call for the engine's workers)."""
        limit_gdal_cache(self.gdal_cache_mb)
        return process_block(
            window, self.ref, self.models, self.geoms, self.resampling, self.token, self.rasters, self.waterbodies
        )


class BlockTotals:
    """The sums of a run's :class:`BlockResult` s, added in block order (so bit-identical
    whatever the scheduler): per-date :data:`~rs_change.change.DATE_STATS`, change classes,
    the sources' extra areas and, for 2+ dates, the transitions and series classes.
    """

    def __init__(self, dates: Sequence[str]) -> None:
        n = len(dates)
        self.stats = np.zeros(n, DATE_STATS)
        self.change_stats = np.zeros((len(CHANGE_CODES), 2))
        self.extra: list[dict[str, float]] = [{} for _ in range(n)]
        self.series = SeriesAccumulator(list(dates)) if n >= 2 else None

    def add(self, br: BlockResult) -> None:
        """Add one block's sums, in block order."""
        add_date_stats(self.stats, br.stats)
        self.change_stats += br.change_stats
        if self.series is not None:
            self.series.add(br.series)
        for acc, ex in zip(self.extra, br.extra):
            for key, v in ex.items():
                acc[key] = acc.get(key, 0.0) + v
