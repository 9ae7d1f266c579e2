"""The only module that chains the stages: read -> align -> features -> cluster -> label ->
area -> change -> export.

``run(cfg)`` works in two passes over the reference grid so that memory is set by the block
size, not the scene size:

1. per date, a decimated read gives a sample of observed pixels; the date's k-means model is
   fitted on it and its clusters are labelled water / not water;
2. block by block, every date is read (aligned onto the reference grid), predicted with its own
   model, turned into a water mask, and areas and change are accumulated; masks are written into
   tiled GeoTIFFs that become COGs at the end.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ._version import __version__
from .aoi import aoi_geometries, aoi_mask, crop_to_aoi
from .area import pixel_area_rows
from .change import (CHANGE_CLASSES, CHANGE_COLORS, MAX_JOINT_DATES, NODATA, JointStates, SeriesAccumulator, SeriesBlock,
                     change_map, change_stats, series_block)
from .config import RunConfig, SceneConfig
from .engine import Engine, cached_reader, close_readers, limit_gdal_cache, new_token, shared_reader, shrink_gdal_cache
from .export import (WATER_CLASSES, WATER_COLORS, BlockWriter, SeriesWriters, manifest_files, product_names, run_polygons,
                     style_outputs, write_csv, write_json)
from .fit import DateModel, FitTask, shared_model
from .grid import Grid
from .outputs import (MANIFEST, check_output_dir, commit, discard, previous_outputs, staging_dir, write_manifest,
                      write_summary_set)
from .readers import SceneSource, SharedReads, check_overlap
from .water import classify_raw
from .strips import mean_pixel_area, remember_mean_pixel_area
from .scenes import open_scene
from .sensors import custom_profile, get_profile

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:  # pragma: no cover - trivial
    pass


# ---------------------------------------------------------------------------------------------
# Scenes, reference grid
# ---------------------------------------------------------------------------------------------
def build_source(scene: SceneConfig, cfg: RunConfig) -> SceneSource:
    """The :class:`SceneSource` of one configured date."""
    if scene.bands is not None:
        profile = custom_profile(scene.bands)
        if scene.sensor is not None:
            base = get_profile(scene.sensor)
            profile = base.with_overrides(bands=profile.bands)
    else:
        profile = get_profile(scene.sensor or "")
    profile = profile.with_overrides(scale=scene.scale, offset=scene.offset)
    if scene.qa is not None:  # MODIS state QA flags (rs_change.modis)
        profile = profile.with_overrides(qa=scene.qa.model_dump())
    return open_scene(cfg.resolve(scene.path), profile, scene.date, scene.nodata)


def reference_grid(cfg: RunConfig, sources: Sequence[SceneSource]) -> Grid:
    """The grid every date is resampled onto: the reference date's, or ``grid.crs``/``resolution``."""
    ref_date = cfg.grid.reference or sources[0].date
    ref = next(s for s in sources if s.date == ref_date).grid
    if cfg.grid.crs is not None or cfg.grid.resolution is not None:
        from .errors import ConfigError, GeoreferenceError

        try:
            ref = ref.regrid(cfg.grid.crs, cfg.grid.resolution)
        except GeoreferenceError as exc:
            raise ConfigError(f"grid.crs: {exc}; give e.g. EPSG:32614") from None
    return ref




# ---------------------------------------------------------------------------------------------
# Pass 2: blocks
# ---------------------------------------------------------------------------------------------
@dataclass
class BlockResult:
    window: tuple[int, int, int, int]
    water: list[np.ndarray]
    change: Optional[np.ndarray]
    # per date: water px, water m2, observed px, observed m2, unobserved px, unobserved m2, outside px, outside m2
    stats: np.ndarray
    # change classes: (code -> px, m2) for codes 0..3 and 255 (inside AOI)
    change_stats: np.ndarray
    clusters: list[np.ndarray] = field(default_factory=list)  # cluster ids per date (255 unobserved)
    extra: list[dict[str, float]] = field(default_factory=list)  # per date: source's block_stats (m2)
    series: Optional[SeriesBlock] = None  # 2+ dates: frequency, series classes, consecutive change (rs_change.change)


_CHANGE_CODES = (0, 1, 2, 3, 255)


def process_block(
    window: tuple[int, int, int, int], ref: Grid, models: Sequence[DateModel], geoms: Optional[list[Any]],
    resampling: str, token: Optional[str] = None, rasters: bool = True,
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
        Also make the rasters that are written (cluster ids, change map, series rasters); False
        (a summary-only run) computes the water masks and the area sums only.

    Returns
    -------
    BlockResult
        Water masks (uint8 (h, w) per date), change map, per-date and change area sums.
    """
    r0, c0, h, w = window
    g = ref.window_grid(r0, c0, h, w)
    area_rows = pixel_area_rows(g.transform, g.crs, g.shape)  # m2 per pixel, a strip of rows at a time
    inside = aoi_mask(geoms, g)
    masks = []
    clusters: list[np.ndarray] = []
    extras: list[dict[str, float]] = []
    for i, dm in enumerate(models):
        if token is not None:
            rd = cached_reader(token, i, lambda dm=dm: dm.source.open(ref, resampling))
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
        cl, water = classify_raw(dm, raws, valid, clusters=rasters)  # valid: observed after this
        del raws
        masks.append(water)
        if cl is not None:
            clusters.append(cl)
        report = dm.source.extra.get("block_stats")  # optional per-source areas in m2 (MODIS QA flags)
        if report is not None:
            ins = np.ones((h, w), bool) if inside is None else inside
            extras.append(report(rd, valid, ins, np.broadcast_to(area_rows(0, h), (h, w))))
        else:
            extras.append({})
    if len(models) <= MAX_JOINT_DATES:
        # one joint code per pixel, two bincounts: every figure of the block (rs_change.change.JointStates)
        js = _joint_states(len(models))
        code = js.encode(masks, inside)
        hist = js.histogram_rows(code, area_rows)
        stats = js.date_stats(hist)
        ch, cst, sb = None, np.zeros((len(_CHANGE_CODES), 2)), None
        if len(models) >= 2:
            cst = js.change_stats(hist, _CHANGE_CODES)
            tst, sst, fst = js.series_stats(hist)
            if rasters:
                ch = js.change[code]
            if rasters and len(models) >= 3:  # frequency, series classes, consecutive changes are written
                sb = SeriesBlock(js.frequency[code], js.classes[code], [t[code] for t in js.transitions], tst, sst, fst)
            else:
                sb = SeriesBlock(None, None, [], tst, sst, fst)  # type: ignore[arg-type]
        return BlockResult(window, masks, ch, stats, cst, clusters, extra=extras, series=sb)
    # many dates: one pass over the block per figure
    pa = area_rows(0, h)
    pa_full = np.broadcast_to(pa, (h, w))
    ins = np.ones((h, w), bool) if inside is None else inside
    stats = np.zeros((len(models), 8), dtype=np.float64)
    for i, water in enumerate(masks):
        valid = water != NODATA
        for j, sel in enumerate((water == 1, valid, ins & ~valid, ~ins)):
            stats[i, 2 * j] = sel.sum()
            stats[i, 2 * j + 1] = pa_full[sel].sum() if sel.any() else 0.0
    ch = change_map(masks[0], masks[-1])
    cst = np.zeros((len(_CHANGE_CODES), 2))
    for j, code in enumerate(_CHANGE_CODES):
        sel = (ch == code) & ins
        cst[j] = (sel.sum(), pa_full[sel].sum() if sel.any() else 0.0)
    sb = series_block(masks, pa, inside)
    return BlockResult(window, masks, ch if rasters else None, stats, cst, clusters, extra=extras, series=sb)


_JOINT: dict[int, JointStates] = {}


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

    def __call__(self, window: tuple[int, int, int, int]) -> BlockResult:
        limit_gdal_cache(self.gdal_cache_mb)
        return process_block(window, self.ref, self.models, self.geoms, self.resampling, self.token, self.rasters)


# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """What a run produced: ``summary`` (equal to summary.json) and the files written."""

    summary: dict[str, Any]
    output_dir: Optional[Path]
    files: list[Path]
    grid: Grid
    models: list[DateModel]


def output_names(cfg: RunConfig) -> list[str]:
    """File names a run writes into the output folder."""
    names = [f"water_{s.date.isoformat()}.tif" for s in cfg.scenes]
    if len(cfg.scenes) >= 2:
        names.append("change.tif")
    if cfg.output.polygons and "gpkg" in cfg.output.formats:
        names.append("water.gpkg")
    o = cfg.output  # styles, frequency / series / consecutive change rasters, vectors, report (rs_change.export)
    names += [n for n in product_names([s.date.isoformat() for s in cfg.scenes], o.polygons, o.formats, o.report) if n != "water.gpkg"]
    from .model import output_names as _model_names

    names += _model_names([s.date.isoformat() for s in cfg.scenes])  # clusters_<date>.tif/.png, model_<date>.json
    names += ["summary.json", "summary.csv", "config.yaml", MANIFEST]
    return names


def _km2(m2: float) -> float:
    return round(m2 / 1e6, 6)


def run(
    cfg: RunConfig,
    output_dir: Optional[str | Path] = None,
    overwrite: bool = False,
    progress: Optional[Progress] = None,
    write: bool = True,
    client: Any = None,
) -> RunResult:
    """Run the whole pipeline for a validated :class:`~rs_change.config.RunConfig`.

    Parameters
    ----------
    cfg : RunConfig
        The configuration.
    output_dir : path, optional
        Overrides ``cfg.output.dir``.
    overwrite : bool, default False
        Replace existing outputs; without it a run refuses to overwrite anything.
    progress : callable(stage, done, total), optional
        Called as work advances (the CLI draws a progress line from it).
    write : bool, default True
        False computes the summary only and writes nothing.
    client : distributed.Client, optional
        Run on this dask.distributed client instead of ``cfg.compute.scheduler``.

    Returns
    -------
    RunResult
    """
    t0 = time.perf_counter()
    progress = progress or _noop
    out = Path(output_dir) if output_dir is not None else cfg.output_dir
    if write:
        _check_output(out, output_names(cfg), overwrite)
    sources = [build_source(s, cfg) for s in cfg.scenes]
    ref = reference_grid(cfg, sources)
    geoms = aoi_geometries(cfg.aoi, ref.crs, cfg.resolve)
    ref = crop_to_aoi(ref, geoms)
    cfg.check_costs(ref.shape, write)  # compute.max_* limits (rs_change.config): before any pixel is read
    overlaps = {}
    for s in sources:
        overlaps[s.date.isoformat()] = round(check_overlap(s, ref), 6)
    engine = Engine(cfg.compute.scheduler, cfg.compute.workers, client=client)
    with engine:
        return _run_passes(cfg, engine, sources, ref, geoms, overlaps, out, write, progress, t0)


def _run_passes(
    cfg: RunConfig, engine: Engine, sources: Sequence[SceneSource], ref: Grid, geoms: Optional[list[Any]],
    overlaps: dict[str, float], out: Path, write: bool, progress: Progress, t0: float,
) -> RunResult:
    """Pass 1 (one model per date, dates in parallel) and pass 2 (blocks in parallel) on ``engine``."""
    models: list[DateModel] = []
    progress("fit", 0, len(sources))
    c, lab, resampling = cfg.clustering, cfg.labelling, cfg.grid.resampling
    shared = shared_model(c, lab, sources, ref, geoms, resampling, cfg.resolve)
    fit = FitTask(ref, geoms, c, lab, resampling, cfg.compute.gdal_cache_mb, shared)
    for i, dm in enumerate(engine.map(fit, sources)):
        models.append(dm)
        progress("fit", i + 1, len(sources))

    tmp = None
    writers: list[BlockWriter] = []
    cwriters: list[BlockWriter] = []  # clusters_<date>.tif (rs_change.model)
    dates = [dm.source.date.isoformat() for dm in models]
    sacc = SeriesAccumulator(dates) if len(models) >= 2 else None  # transitions + series classes
    swriters: Optional[SeriesWriters] = None  # frequency / series_classes / change_<a>_<b>.tif (3+ dates)
    files: list[Path] = []
    try:
        if write:
            tmp = staging_dir(out)  # .rs-change-tmp-<pid>-* inside `out`: same filesystem, atomic renames
            for dm in models:
                writers.append(BlockWriter(tmp / f"w_{dm.source.date}.tif", ref, 255, WATER_COLORS, WATER_CLASSES,
                                           tags={"DATE": dm.source.date.isoformat(), "WATER_CLUSTERS": dm.water_ids.tolist()}))
            if len(models) >= 2:
                writers.append(BlockWriter(tmp / "change_blocks.tif", ref, 255, CHANGE_COLORS, CHANGE_CLASSES,
                                           tags={"FROM": models[0].source.date.isoformat(), "TO": models[-1].source.date.isoformat()}))
            if len(models) >= 3:
                swriters = SeriesWriters(tmp, ref, dates)
            from .model import cluster_writer_kwargs

            for dm in models:
                d = dm.source.date.isoformat()
                cwriters.append(BlockWriter(tmp / f"c_{d}.tif", ref, **cluster_writer_kwargs(
                    dm.decisions, dm.water_ids.tolist(), dm.source.profile.calibrated, d, f"model_{d}.json")))
        windows = list(ref.windows(cfg.compute.chunk_size))
        stats = np.zeros((len(models), 8))
        cstats = np.zeros((len(_CHANGE_CODES), 2))
        extra: list[dict[str, float]] = [{} for _ in models]
        task = BlockTask(ref, [replace(dm, preview=None) for dm in models], geoms, cfg.grid.resampling,
                         gdal_cache_mb=cfg.compute.gdal_cache_mb, rasters=write)
        try:
            # results come back in block order whatever the scheduler: sums are bit-identical
            for n, br in enumerate(engine.map(task, windows)):
                stats += br.stats
                cstats += br.change_stats
                if sacc is not None:
                    sacc.add(br.series)
                for acc, ex in zip(extra, br.extra):
                    for key, v in ex.items():
                        acc[key] = acc.get(key, 0.0) + v
                if writers:
                    r0, c0, _, _ = br.window
                    for wr, m in zip(writers, br.water):
                        wr.write(m, r0, c0)
                    if br.change is not None:
                        writers[-1].write(br.change, r0, c0)
                    for cw, cl in zip(cwriters, br.clusters):
                        cw.write(cl, r0, c0)
                    if swriters is not None and br.series is not None:
                        swriters.write(br.series, r0, c0)
                progress("blocks", n + 1, len(windows))
        finally:
            close_readers(task.token)
        summary = build_summary(cfg, ref, models, stats, cstats, overlaps, extra)
        summary["runtime_s"] = None  # kept out of the numbers so that reruns are byte-identical
        if sacc is not None:
            summary["transitions"] = sacc.transitions()  # consecutive pairs; `change` stays first -> last
            summary["series"] = sacc.series()
        if write and tmp is not None:
            progress("write", 0, 1)
            shrink_gdal_cache(WRITE_GDAL_CACHE_MB)  # the writing reads each staging tile once
            from .model import stage_cluster_outputs
            from .outputs import WriteJobs, write_threads

            # COGs, PNGs and figures in worker threads while the polygons are traced (rs_change.outputs)
            with WriteJobs(write_threads(cfg.compute.scheduler, cfg.compute.workers)) as jobs:
                staged_extra = stage_cluster_outputs(tmp, models, cwriters, jobs)
                if swriters is not None:
                    staged_extra.update(swriters.finish(jobs))
                files = _finish_outputs(cfg, out, tmp, ref, models, writers, summary, staged_extra, jobs,
                                        swriters.staging() if swriters is not None else None)
            progress("write", 1, 1)
    finally:
        for wr in [*writers, *cwriters]:
            wr.close()
        if swriters is not None:
            swriters.close()
        discard(tmp)
    log.info("run finished in %.1f s", time.perf_counter() - t0)
    return RunResult(summary, out if write else None, files, ref, models)


#: MB of GDAL block cache while the outputs are written (the passes use ``compute.gdal_cache_mb``).
WRITE_GDAL_CACHE_MB = 64

SUMMARY_ONLY = ("summary.json", "summary.csv")


def write_summary_only(summary: dict[str, Any], out: Path, overwrite: bool = False) -> list[Path]:
    """Write summary.json and summary.csv of a ``run(..., write=False)`` into ``out`` (``--summary-only``).

    Staged and swapped in as a set with its manifest (:func:`rs_change.outputs.write_summary_set`).
    """
    return write_summary_set(summary, out, overwrite)


def _check_output(out: Path, names: Sequence[str], overwrite: bool) -> None:
    # Creates nothing; recovers leftovers of killed runs first (rs_change.outputs).
    check_output_dir(out, names, overwrite)


def build_summary(
    cfg: RunConfig, ref: Grid, models: Sequence[DateModel], stats: np.ndarray, cstats: np.ndarray, overlaps: dict[str, float],
    extra: Optional[Sequence[dict[str, float]]] = None,
) -> dict[str, Any]:
    """summary.json as a dict (numbers in km2, rounded to m2)."""
    dates = []
    for i, dm in enumerate(models):
        wpx, wm2, opx, om2, upx, um2, xpx, xm2 = stats[i]
        dates.append({
            "date": dm.source.date.isoformat(),
            "path": dm.source.label,
            "water_km2": _km2(wm2),
            "water_pixels": int(wpx),
            "observed_km2": _km2(om2),
            "observed_pixels": int(opx),
            "unobserved_km2": _km2(um2),
            "unobserved_pixels": int(upx),
            "outside_aoi_km2": _km2(xm2),
            "water_percent_of_observed": round(100.0 * wm2 / om2, 4) if om2 else None,
            "overlap_fraction": overlaps.get(dm.source.date.isoformat()),
            "k": int(dm.kmeans.n_clusters),
            "metric": dm.kmeans.metric,
            "silhouette": None if dm.silhouette is None else round(dm.silhouette, 6),
            "model_selection": dm.scores,
            "sample_pixels": dm.sample_pixels,
            "features": dm.names,
            "clusters": [d.to_dict() for d in dm.decisions],
            "water_clusters": dm.water_ids.tolist(),
        })
    for d, dm, ex in zip(dates, models, extra or []):
        if ex:  # e.g. modis_qa: MOD09's own land/water flag and QA flag areas beside water_km2
            d[dm.source.extra.get("stats_name", "extra_stats")] = {f"{k}_km2": _km2(v) for k, v in ex.items()}
    res = ref.res
    summary: dict[str, Any] = {
        "rs_change_version": __version__,
        "grid": {**ref.to_dict(), "pixel_size": [res[0], res[1]], "crs_units": _units(ref),
                 "mean_pixel_area_m2": round(_mean_area(ref, stats), 6)},
        "area_method": "ground area per pixel from the grid (geodesic on the ellipsoid); see rs_change.area",
        "clustering": cfg.clustering.model_dump(mode="json"),
        "labelling": cfg.labelling.model_dump(mode="json", exclude_none=True),
        "dates": dates,
    }
    if len(models) >= 2:
        c = {code: (cstats[j, 0], cstats[j, 1]) for j, code in enumerate(_CHANGE_CODES)}
        summary["change"] = {
            "from": models[0].source.date.isoformat(),
            "to": models[-1].source.date.isoformat(),
            **change_stats(c),
            "note": "counts only pixels observed on both dates; net_percent is relative to the water of `from` on those pixels",
        }
    return summary


def _mean_area(ref: Grid, stats: np.ndarray) -> float:
    """Mean pixel area of the grid: every pixel is counted once per date in pass 2, as observed,
    unobserved or outside the area of interest, so the first date's sums cover the whole grid."""
    if len(stats) and stats[0, [2, 4, 6]].sum() == ref.height * ref.width:
        return remember_mean_pixel_area(ref, float(stats[0, [3, 5, 7]].sum()))
    return mean_pixel_area(ref)  # strip by strip (rs_change.strips)


def _units(ref: Grid) -> str:
    try:
        return ref.crs.axis_info[0].unit_name
    except Exception:  # pragma: no cover
        return "unknown"


def _finish_outputs(
    cfg: RunConfig, out: Path, tmp: Path, ref: Grid, models: Sequence[DateModel], writers: Sequence[BlockWriter],
    summary: dict[str, Any], extra: Optional[dict[str, Path]] = None, jobs: Any = None,
    blocks: Optional[dict[str, Path]] = None,
) -> list[Path]:
    """Stage every output in ``tmp`` and swap the set into ``out``.

    COG conversions and figures run as ``jobs`` (:class:`rs_change.outputs.WriteJobs`; None: one
    after the other here) while this thread traces the polygons; polygons and figures read the
    block-written staging files (``blocks``: output name -> staging file, same pixels as the COG).
    """
    from .outputs import WriteJobs, layer_threads, polygon_threads

    jobs = jobs if jobs is not None else WriteJobs(0)
    staged: dict[str, Path] = {}
    blocks = dict(blocks or {})
    rasters = [(f"water_{dm.source.date.isoformat()}.tif", wr) for dm, wr in zip(models, writers)]
    if len(models) >= 2:
        rasters.append(("change.tif", writers[-1]))
    for name, wr in rasters:
        wr.close()
        jobs.submit(wr.to_cog, tmp / name)
        staged[name], blocks[name] = tmp / name, wr.path
    staged.update(style_outputs(staged))  # .qml + .aux.xml beside water_<date>.tif and change.tif
    figures = None
    if cfg.output.report:  # timeseries.csv/png, quicklooks, frequency/series PNGs (rs_change.report)
        from .report import report_figures, report_page

        # first: its decimated reads of the scenes overlap the polygons' first strips, not their peak
        figures = jobs.submit(report_figures, tmp, {"dates": summary["dates"]}, models, ref, blocks, cfg.grid.resampling,
                              priority=-1)
    jobs.start()
    if cfg.output.polygons:  # water_<date> and change layers in every output.formats (rs_change.export)
        vec, summary["polygons"] = run_polygons(
            tmp, ref, {dm.source.date.isoformat(): blocks[f"water_{dm.source.date.isoformat()}.tif"] for dm in models},
            blocks.get("change.tif"), cfg.output.formats, cfg.output.min_area_m2, cfg.output.simplify_px,
            workers=polygon_threads(cfg.compute.scheduler, cfg.compute.workers),
            layer_workers=layer_threads(cfg.compute.scheduler, cfg.compute.workers))
        staged.update(vec)
    if figures is not None:  # report.html: the summary with its polygons, and the figures
        figs = figures.result()
        staged.update(figs)
        staged["report.html"] = report_page(tmp, summary, cfg.to_yaml(), figs)
    staged["summary.json"] = write_json(tmp / "summary.json", summary)
    rows = [{k: v for k, v in d.items() if not isinstance(v, (list, dict))} for d in summary["dates"]]
    staged["summary.csv"] = write_csv(tmp / "summary.csv", rows)
    (tmp / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    staged["config.yaml"] = tmp / "config.yaml"
    staged.update(extra or {})  # clusters_<date>.tif/.png, model_<date>.json
    jobs.wait()  # every COG and PNG written
    # manifest.json last (sha256 of every staged file), then swap the whole set in (rs_change.outputs)
    write_manifest(tmp, manifest_files(tmp, list(staged)), config_hash(cfg))  # folders (water.gdb ...) file by file
    return commit(out, tmp, [*staged, MANIFEST], replace=previous_outputs(out))


def config_hash(cfg: RunConfig) -> str:
    return hashlib.sha256(cfg.to_yaml().encode()).hexdigest()
