"""A run, as a chain of calls: the only module that knows the order of the stages.

``run(cfg)`` builds each date's source and the reference grid, crops it to the area of interest
(:mod:`rs_change.aoi`), then works in two passes over the grid so that memory is set by the
block size, not the scene size:

1. pass 1 (:mod:`rs_change.fit`): per date, a decimated read gives a sample of observed pixels;
   the date's :class:`~rs_change.model.WaterModel` is fitted on it (or the shared one applied);
2. pass 2 (:mod:`rs_change.blocks`): block by block, every date is read on the reference grid and
   classified, and its areas, change and series are measured and summed in block order; the
   rasters are written block by block (:class:`rs_change.export.RunRasters`);

then ``summary.json`` (:mod:`rs_change.summary`) and the outputs, staged and swapped in as a set
(:mod:`rs_change.export`, :mod:`rs_change.outputs`).  Each stage takes its own section of the
config.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .aoi import aoi_geometries, crop_to_aoi
from .blocks import BlockTask, BlockTotals
from .catalog import write_catalog
from .config import RunConfig, SceneConfig
from .engine import Engine, WriteJobs, close_readers, release_free_memory, shrink_gdal_cache
from .export import (RunRasters, manifest_files, provenance, run_polygons, style_outputs, write_csv,
                     write_json)
from .fit import DateModel, FitTask, shared_model
from .grid import Grid
from .clustermaps import cluster_writer_kwargs, stage_cluster_outputs
from .names import (CHANGE_CSV, CHANGE_TIF, CONFIG_YAML, MANIFEST, REPORT_HTML, SUMMARY_CSV, SUMMARY_JSON,
                    WATERBODIES_CSV, WATERBODIES_LAYER, WATERBODIES_PNG, clusters_tif, model_json, run_names,
                    water_fraction_tif, water_tif)
from .outputs import check_output_dir, commit, config_hash, discard, previous_outputs, staging_dir, write_manifest
from .readers import SceneSource, check_overlap, mosaic, open_layers
from .scenes import band_profile, open_scene
from .sensors import custom_profile, get_profile
from .stac import expand
from .summary import build_summary, change_rows
from .survey import header_warnings

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:  # pragma: no cover - trivial
    pass


# ---------------------------------------------------------------------------------------------
# Scenes, reference grid
# ---------------------------------------------------------------------------------------------
def build_source(scene: SceneConfig, cfg: RunConfig) -> SceneSource:
    """The :class:`SceneSource` of one configured date."""
    if scene.bands is not None and scene.assets is None:  # (`bands: {qa_pixel: 8}` alone adds to the sensor's)
        profile = band_profile(scene.sensor, scene.bands, None, None, where=scene.date.isoformat())
    elif scene.sensor is None and scene.assets is not None:  # one file per role, no named profile: DNs
        profile = custom_profile({role: 1 for role in scene.asset_parts()[0]})
    else:
        profile = get_profile(scene.sensor or "")
    profile = profile.with_overrides(scale=scene.scale, offset=scene.offset,
                                     valid_range=tuple(scene.valid_range) if scene.valid_range is not None else None)
    if scene.qa is not None:  # QA settings: mask / buffer (rs_change.qa), MODIS state flags (rs_change.modis)
        profile = profile.with_overrides(qa=scene.qa.model_dump())
    if scene.assets is not None:  # one file per band role (a mosaic when several items)
        src = mosaic([open_layers({r: cfg.resolve_input(f) for r, f in part.items()}, profile, scene.date, scene.nodata)
                      for part in scene.asset_parts()])
    else:
        src = mosaic([open_scene(cfg.resolve_input(p), profile, scene.date, scene.nodata) for p in scene.paths()])
    if scene.qa is not None and src.qa_layer is None and (scene.qa.mask is not None or scene.qa.buffer):
        log.warning("%s: qa.mask / qa.buffer are set but the scene of %s has no QA layer; give it as "
                    "`bands: {qa_pixel: N}` or a qa_pixel, scl or fmask asset (clouds are not masked)",
                    src.label, scene.date)
    return src


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


@dataclass
class Prepared:
    """What a run works on, before any pixel is read: the config with its ``stac:`` block expanded
    into scenes, each date's opened source, the reference grid cropped to the area of interest,
    the AOI's geometries on that grid's CRS, and each date's overlap share with the grid.
    """

    cfg: RunConfig
    sources: list[SceneSource]
    grid: Grid
    geoms: Optional[list[Any]]
    overlaps: dict[str, float]


def prepare(cfg: RunConfig, write: bool = True, log_headers: bool = True) -> Prepared:
    """The set-up of a run (``run``, ``rs-change validate`` and scripts share it): scenes found in
    the STAC catalog, each date's source opened (headers only), the reference grid cropped to the
    AOI, the ``compute.max_*`` cost limits (``write``: the limits on written rasters too) and each
    date's overlap with the grid checked.  ``log_headers`` logs a profile that does not fit a
    file's header (band count, data type) as a warning.

    Raises
    ------
    RsChangeError
        One line naming the file or config key: a catalog that finds nothing, a file that is no
        raster, no overlap, a cost above its limit ...
    """
    cfg = expand(cfg)  # a `stac:` block -> the scenes it finds (rs_change.stac); other configs as they are
    sources = [build_source(s, cfg) for s in cfg.scenes]
    for s in sources if log_headers else []:  # a profile that does not fit the file's header (band count, data type)
        for warning in header_warnings(s):
            log.warning("%s", warning)
    ref = reference_grid(cfg, sources)
    geoms = aoi_geometries(cfg.aoi, ref.crs, cfg.resolve)
    ref = crop_to_aoi(ref, geoms)
    cfg.check_costs(ref.shape, write)  # compute.max_* limits (rs_change.config): before any pixel is read
    overlaps = {s.date.isoformat(): round(check_overlap(s, ref), 6) for s in sources}
    return Prepared(cfg, sources, ref, geoms, overlaps)


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
    config: Optional[RunConfig] = None  # the configuration as run (a `stac:` block expanded into its scenes)


def output_names(cfg: RunConfig) -> list[str]:
    """File names a run of ``cfg`` writes into the output folder (:func:`rs_change.names.run_names`)."""
    o = cfg.output
    return run_names([s.date.isoformat() for s in cfg.scenes], o.polygons, o.formats, o.report,
                     list(composite_dates(cfg)), cfg.waterbodies.enabled)


def composite_dates(cfg: RunConfig) -> dict[str, int]:
    """The dates of several scenes (a ``path:`` or ``assets:`` list) and their number of scenes:
    the dates composited per pixel (:mod:`rs_change.composite`), which get a ``clear_count_<date>.tif``.
    """
    out = {}
    for s in cfg.scenes:
        n = len(s.asset_parts()) if s.assets is not None else (1 if isinstance(s.path, str) else len(s.path or []))
        if n > 1:
            out[s.date.isoformat()] = n
    return out


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
    cfg = expand(cfg)  # a `stac:` block -> the scenes it finds (rs_change.stac); other configs as they are
    out = Path(output_dir) if output_dir is not None else cfg.output_dir
    if write:
        # creates nothing; recovers leftovers of killed runs first
        check_output_dir(out, output_names(cfg), overwrite)
    prepared = prepare(cfg, write)
    engine = Engine(prepared.cfg.compute.scheduler, prepared.cfg.compute.workers, client=client)
    with engine:
        return _run_passes(prepared, engine, out, write, progress, t0)


def _run_passes(prepared: Prepared, engine: Engine, out: Path, write: bool, progress: Progress, t0: float) -> RunResult:
    """Pass 1 (one model per date, dates in parallel) and pass 2 (blocks in parallel) on ``engine``."""
    cfg, sources, ref = prepared.cfg, prepared.sources, prepared.grid
    geoms, overlaps = prepared.geoms, prepared.overlaps
    models: list[DateModel] = []
    progress("fit", 0, len(sources))
    c, lab, resampling = cfg.clustering, cfg.labelling, cfg.grid.resampling
    shared = shared_model(c, lab, sources, ref, geoms, resampling, cfg.resolve)
    fit = FitTask(ref, geoms, c, lab, resampling, cfg.compute.gdal_cache_mb, shared)
    for i, dm in enumerate(engine.map(fit, sources)):
        models.append(dm)
        progress("fit", i + 1, len(sources))

    tmp: Optional[Path] = None
    rasters: Optional[RunRasters] = None  # water, change, cluster and series rasters, block by block
    dates = [dm.source.date.isoformat() for dm in models]
    files: list[Path] = []
    try:
        if write:
            tmp = staging_dir(out)  # .rs-change-tmp-<pid>-* inside `out`: same filesystem, atomic renames
            rasters = RunRasters(
                tmp, ref, dates, [{"DATE": d, "WATER_CLUSTERS": dm.water_ids.tolist()} for d, dm in zip(dates, models)],
                [cluster_writer_kwargs(dm.decisions, dm.water_ids.tolist(), dm.source.profile.calibrated, d,
                                       model_json(d))
                 for d, dm in zip(dates, models)], run_provenance(cfg, ref),
                {dm.source.date.isoformat(): len(dm.source.parts) for dm in models if dm.source.parts},
                waterbodies=_waterbodies_on(cfg, dates))
        windows = list(ref.windows(cfg.compute.chunk_size))
        totals = BlockTotals(dates)  # per-date areas, change classes, transitions + series classes
        wb = cfg.waterbodies
        wb_params = (wb.core_share, wb.extent_share, wb.min_observations)
        task = BlockTask(ref, [replace(dm, preview=None) for dm in models], geoms, resampling,
                         gdal_cache_mb=cfg.compute.gdal_cache_mb, rasters=write,
                         waterbodies=wb_params if write and _waterbodies_on(cfg, dates) else None)
        try:
            # results come back in block order whatever the scheduler: sums are bit-identical
            for n, br in enumerate(engine.map(task, windows)):
                totals.add(br)
                if rasters is not None:
                    rasters.write(br)
                progress("blocks", n + 1, len(windows))
        finally:
            close_readers(task.token)
        summary = build_summary(ref, models, totals, overlaps, cfg.clustering, cfg.labelling)
        if rasters is not None and tmp is not None:
            progress("write", 0, 1)
            shrink_gdal_cache(WRITE_GDAL_CACHE_MB)  # the writing reads each staging tile once
            release_free_memory()  # what the cache and the passes freed, before the writing's arrays
            files = _finish_outputs(cfg, out, tmp, ref, models, rasters, summary)
            progress("write", 1, 1)
    finally:
        if rasters is not None:
            rasters.close()
        discard(tmp)
    log.info("run finished in %.1f s", time.perf_counter() - t0)
    return RunResult(summary, out if write else None, files, ref, models, cfg)


def run_provenance(cfg: RunConfig, ref: Grid) -> dict[str, str]:
    """The provenance metadata of a run's rasters and GeoPackage (:func:`rs_change.export.provenance`):
    each scene's date, sensor and path as the config gives it.
    """
    from ._version import __version__

    try:
        units = ref.crs.axis_info[0].unit_name
    except Exception:  # pragma: no cover
        units = "unknown"
    inputs = [{"date": s.date.isoformat(), "sensor": s.sensor, "path": s.path} for s in cfg.scenes]
    return provenance(__version__, inputs, units)


def _waterbodies_on(cfg: RunConfig, dates: Sequence[str]) -> bool:
    """Whether the run finds waterbodies: ``waterbodies.enabled`` and two or more dates."""
    return bool(cfg.waterbodies.enabled) and len(dates) >= 2


def _stage_waterbodies(cfg: RunConfig, tmp: Path, ref: Grid, dates: Sequence[str], rasters: RunRasters,
                       blocks: dict[str, Path], summary: dict[str, Any], jobs: Any) -> tuple[dict[str, Path], Any, Any]:
    """waterbodies.csv, the ``waterbodies`` layer and summary.json's section from the block-written
    rasters (:func:`rs_change.waterbody.from_files`); the report's plot as a job.  Returns the
    staged files, the layer and the plot's future (None without a report).
    """
    from .engine import polygon_threads
    from .waterbody import TABLE_COLUMNS, Params, from_files

    assert rasters.waterbody is not None
    rasters.waterbody.close()
    t = time.perf_counter()
    layer, table, summary["waterbodies"] = from_files(
        ref, rasters.waterbody.path, [blocks[water_tif(d)] for d in dates], dates, Params.of(cfg.waterbodies),
        workers=polygon_threads(cfg.compute.scheduler, cfg.compute.workers))
    log.info("%d waterbodies in %.1f s", len(layer), time.perf_counter() - t)
    release_free_memory()  # the strips' arrays, freed between the outlines kept
    staged = {WATERBODIES_CSV: write_csv(tmp / WATERBODIES_CSV, table, TABLE_COLUMNS)}
    plot = None
    if cfg.output.report:
        from .report import waterbodies_png

        plot = jobs.submit(waterbodies_png, table, summary["waterbodies"]["most_changed"], tmp / WATERBODIES_PNG)
    return staged, layer, plot


#: MB of GDAL block cache while the outputs are written (the passes use ``compute.gdal_cache_mb``).
WRITE_GDAL_CACHE_MB = 64


def _finish_outputs(
    cfg: RunConfig, out: Path, tmp: Path, ref: Grid, models: Sequence[DateModel], rasters: RunRasters,
    summary: dict[str, Any],
) -> list[Path]:
    """Stage every output in ``tmp`` and swap the set into ``out``.

    COG conversions, PNGs and figures run as jobs in writer threads
    (:class:`rs_change.engine.WriteJobs`) while this thread traces the polygons; polygons and
    figures read the block-written staging files (``blocks``: output name -> staging file, same
    pixels as the COG).
    """
    from .engine import write_threads

    with WriteJobs(write_threads(cfg.compute.scheduler, cfg.compute.workers)) as jobs:
        # clusters_<date>.tif/.png, model_<date>.json (rs_change.model);
        # frequency / series / change_<a>_<b> (3+ dates)
        extra = stage_cluster_outputs(tmp, models, rasters.clusters, jobs)
        extra.update(rasters.finish_clear_counts(jobs))  # clear_count_<date>.tif of the composited dates
        # the report's cluster panels read the cluster maps the run wrote (same ids and colours)
        blocks: dict[str, Path] = {
            clusters_tif(dm.source.date.isoformat()): wr.path for dm, wr in zip(models, rasters.clusters)
        }
        if rasters.series is not None:
            extra.update(rasters.series.finish(jobs))
            blocks.update(rasters.series.staging())
        staged = _stage_products(cfg, tmp, ref, models, rasters, summary, jobs, blocks)
        staged.update(extra)  # clusters_<date>.tif/.png, model_<date>.json, series rasters
        jobs.wait()  # every COG and PNG written
        # catalog.json and its Items (rs_change.catalog), from the staged files' headers
        staged.update(write_catalog(tmp, [dm.source.date.isoformat() for dm in models], list(staged), ref))
        # manifest.json last (sha256 of every staged file), then swap the whole set in (rs_change.outputs)
        write_manifest(tmp, manifest_files(tmp, list(staged)), config_hash(cfg.to_yaml()))  # folders file by file
        return commit(out, tmp, [*staged, MANIFEST], replace=previous_outputs(out))


def _stage_products(
    cfg: RunConfig, tmp: Path, ref: Grid, models: Sequence[DateModel], rasters: RunRasters,
    summary: dict[str, Any], jobs: WriteJobs, blocks: dict[str, Path],
) -> dict[str, Path]:
    """Water and change COGs with their styles, report figures, polygons, summary and config
    staged in ``tmp`` (the COGs and figures as ``jobs``, not waited for); output name -> file.
    """
    from .engine import layer_threads, polygon_threads

    staged: dict[str, Path] = {}
    dates = [dm.source.date.isoformat() for dm in models]
    cogs = [(water_tif(d), wr) for d, wr in zip(dates, rasters.water)]
    cogs += [(water_fraction_tif(d), wr) for d, wr in zip(dates, rasters.fraction)]
    if rasters.change is not None:
        cogs.append((CHANGE_TIF, rasters.change))
    for name, wr in cogs:
        wr.close()
        jobs.submit(wr.to_cog, tmp / name)
        staged[name], blocks[name] = tmp / name, wr.path
    staged.update(style_outputs(staged))  # .qml + .aux.xml beside water and change maps, a ramp .qml beside fractions
    figures = None
    if cfg.output.report:  # timeseries.csv/png, quicklooks, frequency/series PNGs (rs_change.report)
        from .report import report_figures
        from .report_page import report_page

        # first: its decimated reads of the scenes overlap the polygons' first strips, not their peak
        figures = jobs.submit(report_figures, tmp, {"dates": summary["dates"]}, models, ref, blocks,
                              cfg.grid.resampling, priority=-1)
    wb_job = None
    if rasters.waterbody is not None:  # waterbodies.csv, the waterbodies layer, summary.json's section
        # a job after the report's figures: the polygons below are traced meanwhile
        wb_job = jobs.submit(_stage_waterbodies, cfg, tmp, ref, dates, rasters, blocks, summary, jobs, priority=-1)
    jobs.start()

    def waterbodies() -> tuple[dict[str, Path], dict[str, Any], Any]:
        """The waterbody job's files, layer and plot, once it is done (this thread helps with the
        jobs not yet started meanwhile).
        """
        if wb_job is None:
            return {}, {}, None
        wb_files, layer, plot = jobs.result(wb_job)
        return wb_files, {WATERBODIES_LAYER: layer}, plot

    if cfg.output.polygons:  # water_<date> and change layers in every output.formats (rs_change.export)
        vec, summary["polygons"] = run_polygons(
            tmp, ref, {d: blocks[water_tif(d)] for d in dates}, blocks.get(CHANGE_TIF), cfg.output,
            threads=(polygon_threads(cfg.compute.scheduler, cfg.compute.workers),
                     layer_threads(cfg.compute.scheduler, cfg.compute.workers)), metadata=run_provenance(cfg, ref),
            extra_layers=lambda: waterbodies()[1])
        staged.update(vec)
    wb_files, _, wb_plot = waterbodies()
    staged.update(wb_files)
    if figures is not None:  # report.html: the summary with its polygons, and the figures
        figs = jobs.result(figures)
        if wb_plot is not None:
            figs[WATERBODIES_PNG] = jobs.result(wb_plot)
        staged.update(figs)
        staged[REPORT_HTML] = report_page(tmp, summary, cfg.to_yaml(), figs)
    staged[SUMMARY_JSON] = write_json(tmp / SUMMARY_JSON, summary)
    rows = [{k: v for k, v in d.items() if not isinstance(v, (list, dict))} for d in summary["dates"]]
    staged[SUMMARY_CSV] = write_csv(tmp / SUMMARY_CSV, rows)
    if "change" in summary:  # gained / lost / net / unobserved per consecutive pair and first -> last
        staged[CHANGE_CSV] = write_csv(tmp / CHANGE_CSV, change_rows(summary))
    (tmp / CONFIG_YAML).write_text(cfg.to_yaml(), encoding="utf-8")
    staged[CONFIG_YAML] = tmp / CONFIG_YAML
    return staged
