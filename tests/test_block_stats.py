"""Pass 2's fast paths give exactly what the plain per-pixel definitions give: the joint-state
histogram (rs_change.change.JointStates), the summary-only classification (no cluster ids) and
the cache-friendly bilinear shift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine

from rs_change import blocks
from rs_change.aoi import aoi_geometries
from rs_change.blocks import process_block
from rs_change.change import (CHANGE_CLASSES, DATE_STATS, STAT_KINDS, JointStates, change_map, series_block, series_classes,
                              water_frequency)
from rs_change.config import RunConfig
from rs_change.fit import fit_date
from rs_change.pipeline import build_source, reference_grid
from rs_change.water import classify as classify_block
from rs_change.readers import _float, _lerp_strips, _round_to, _take

from .conftest import lake_scene, write_geotiff


def _random_masks(rng: np.random.Generator, n: int, shape: tuple[int, int]) -> list[np.ndarray]:
    return [rng.choice(np.array([0, 1, 255], np.uint8), size=shape, p=[0.5, 0.3, 0.2]) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_joint_states_equal_the_per_pixel_definitions(n: int) -> None:
    rng = np.random.default_rng(n)
    shape = (37, 41)
    masks = _random_masks(rng, n, shape)
    inside = rng.random(shape) > 0.15
    pa = rng.uniform(0.3, 0.4, shape)
    js = JointStates(n)
    code = js.encode(masks, inside)
    hist = js.histogram(code, pa)
    # per date: water / observed / unobserved (inside) / outside, pixels and m2
    st = js.date_stats(hist)
    for i, m in enumerate(masks):
        m = np.where(inside, m, 255)
        sels = (m == 1, m != 255, inside & (m == 255), ~inside)
        for kind, sel in zip(STAT_KINDS, sels):
            assert st[f"{kind}_px"][i] == sel.sum()
            assert st[f"{kind}_m2"][i] == pytest.approx(pa[sel].sum(), rel=1e-12)
    # the rasters are the definitions' rasters
    am = [np.where(inside, m, 255).astype(np.uint8) for m in masks]
    assert np.array_equal(js.frequency[code], water_frequency(am)[0])
    assert np.array_equal(js.classes[code], series_classes(am))
    if n >= 2:
        ch = change_map(am[0], am[-1])
        assert np.array_equal(js.change[code], ch)
        cst = js.change_stats(hist)
        for j, c in enumerate(CHANGE_CLASSES):
            sel = (ch == c) & inside
            assert cst[j, 0] == sel.sum() and cst[j, 1] == pytest.approx(pa[sel].sum(), rel=1e-12)
        sb = series_block(am, pa, inside)
        tst, sst, fst = js.series_stats(hist)
        np.testing.assert_allclose(tst, sb.transition_stats, rtol=1e-12)
        np.testing.assert_allclose(sst, sb.class_stats, rtol=1e-12)
        np.testing.assert_allclose(fst, sb.frequency_stats, rtol=1e-12)
        for t, ref in zip(js.transitions, sb.transitions):
            assert np.array_equal(t[code], ref)


def test_joint_code_examples() -> None:
    js = JointStates(2)
    code = js.encode([np.array([1, 0, 255, 1], np.uint8), np.array([1, 1, 0, 1], np.uint8)],
                     np.array([True, True, True, False]))
    # 1 + 3*1 = 4 (water, water); 0 + 3*1 = 3 (land, water); 2 + 0 = 2 (unobserved, land); outside = 9
    assert code.tolist() == [4, 3, 2, 9]
    assert js.change[code].tolist() == [1, 2, 255, 255]
    with pytest.raises(ValueError):
        JointStates(11)


@pytest.fixture(scope="module")
def three_dates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("blocks")
    t = Affine(1.0, 0, 500000.0, 0, -1.0, 5200000.0)
    lakes = [(slice(20, 60), slice(30, 90)), (slice(20, 100), slice(30, 130)), (slice(40, 70), slice(10, 60))]
    for i, lake in enumerate(lakes):
        img = lake_scene(120, 140, lake, seed=i)
        img[:, 100:, :12] = 0  # a nodata corner
        write_geotiff(d / f"s{i}.tif", img, t, "EPSG:32614", nodata=0)
    import geopandas as gpd
    from shapely.geometry import Polygon

    tri = Polygon([(500005, 5199885), (500135, 5199885), (500070, 5199995)])  # leaves pixels outside
    gpd.GeoDataFrame(geometry=[tri], crs="EPSG:32614").to_file(d / "aoi.gpkg")
    (d / "run.yaml").write_text(
        "scenes:\n"
        "  - {date: 2001-01-01, path: s0.tif, sensor: naip}\n"
        "  - {date: 2002-01-01, path: s1.tif, sensor: naip}\n"
        "  - {date: 2003-01-01, path: s2.tif, sensor: naip}\n"
        "clustering: {k: 2, seed: 0, sample_size: 3000, n_init: 1}\n"
        "aoi: {path: aoi.gpkg}\n"
    )
    return d / "run.yaml"


def test_block_figures_same_with_and_without_joint_states(three_dates: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = RunConfig.from_yaml(three_dates)
    sources = [build_source(s, cfg) for s in cfg.scenes]
    ref = reference_grid(cfg, sources)
    geoms = aoi_geometries(cfg.aoi, ref.crs, cfg.resolve)
    models = [fit_date(s, ref, geoms, cfg.clustering, cfg.labelling, cfg.grid.resampling) for s in sources]
    win = (0, 0, ref.height, ref.width)
    fast = process_block(win, ref, models, geoms, "bilinear")
    monkeypatch.setattr(blocks, "MAX_JOINT_DATES", 0)  # the per-pixel functions
    slow = process_block(win, ref, models, geoms, "bilinear")
    assert fast.stats["water_px"].sum() > 0 and fast.stats["outside_px"].sum() > 0  # water and outside pixels exist
    assert fast.stats.dtype == slow.stats.dtype == DATE_STATS
    for name in DATE_STATS.names:
        np.testing.assert_allclose(fast.stats[name], slow.stats[name], rtol=1e-12)
    np.testing.assert_allclose(fast.change_stats, slow.change_stats, rtol=1e-12)
    assert np.array_equal(fast.change, slow.change)
    for a, b in zip(fast.water, slow.water):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(fast.series.transition_stats, slow.series.transition_stats, rtol=1e-12)
    np.testing.assert_allclose(fast.series.class_stats, slow.series.class_stats, rtol=1e-12)
    assert np.array_equal(fast.series.frequency, slow.series.frequency)
    assert np.array_equal(fast.series.classes, slow.series.classes)


def test_summary_only_blocks_have_the_same_water(three_dates: Path) -> None:
    cfg = RunConfig.from_yaml(three_dates)
    sources = [build_source(s, cfg) for s in cfg.scenes]
    ref = reference_grid(cfg, sources)
    models = [fit_date(s, ref, None, cfg.clustering, cfg.labelling, cfg.grid.resampling) for s in sources]
    win = (0, 0, ref.height, ref.width)
    full = process_block(win, ref, models, None, "bilinear", rasters=True)
    summ = process_block(win, ref, models, None, "bilinear", rasters=False)
    assert summ.change is None and summ.clusters == [] and summ.series.frequency is None
    np.testing.assert_array_equal(summ.stats, full.stats)
    np.testing.assert_array_equal(summ.change_stats, full.change_stats)
    for a, b in zip(full.water, summ.water):
        assert np.array_equal(a, b)
    # and per date, directly: the rule on the block + fine clusters of passing pixels only
    for dm in models:
        with dm.source.open(ref, "bilinear") as rd:
            bands, valid = rd.read()
        cl, w1 = classify_block(dm, bands, valid, clusters=True)
        none, w2 = classify_block(dm, bands, valid, clusters=False)
        assert none is None and cl is not None and np.array_equal(w1, w2) and (w1 == 1).sum() > 100


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
@pytest.mark.parametrize("fx, fy", [(0.6, 0.6), (0.0, 0.25), (0.75, 0.0)])
def test_strip_shift_is_bit_identical_to_whole_block(dtype: type, fx: float, fy: float) -> None:
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256 if dtype == np.uint8 else 9000, (3, 101, 83)).astype(dtype)
    r0 = np.clip(np.arange(100) - 2, 0, 100)  # clamped at the edge, as at a raster border
    r1 = np.clip(r0 + (fy > 0), 0, 100)
    c0 = np.arange(82)
    c1 = c0 + (fx > 0)
    a = _float(src)
    rows = _take(a, c0, 2) if fx == 0 else _take(a, c0, 2) * (1.0 - fx) + _take(a, c1, 2) * fx
    ref = _round_to(_take(rows, r0, 1) if fy == 0 else _take(rows, r0, 1) * (1.0 - fy) + _take(rows, r1, 1) * fy, src.dtype)
    got = _lerp_strips(src, r0, r1, c0, c1, fx, fy, rows_per_strip=7)
    assert got.dtype == src.dtype and np.array_equal(got, ref)


@pytest.mark.parametrize("all_bands", [True, False])
@pytest.mark.parametrize("nodata", [0, 7, None])
def test_observed_mask_is_the_per_band_definition(all_bands: bool, nodata: int | None) -> None:
    from dataclasses import replace

    from rs_change.sensors import observed_mask
    from rs_change.sensors import get_profile

    prof = replace(get_profile("naip"), nodata_all_bands=all_bands)
    rng = np.random.default_rng(3)
    raws = {r: rng.choice(np.array([0, 7, 9], np.uint8), (30, 40), p=[0.45, 0.45, 0.1]) for r in ("red", "green", "blue")}
    # 256 and 263 in a 16-bit band: an OR truncated to 8 bits would read them as 0 and 7
    raws["nir"] = rng.choice(np.array([0, 7, 256, 263], np.uint16), (30, 40))
    got = observed_mask(raws, prof, nodata)
    if nodata is None:
        assert got.all()
        return
    at = np.stack([raws[r] == nodata for r in raws])
    ref = ~at.all(axis=0) if all_bands else ~at.any(axis=0)
    assert np.array_equal(got, ref) and 0 < got.sum() < got.size


def test_decimated_read_of_a_shifted_file_picks_the_pixel_under_each_centre(tmp_path: Path) -> None:
    """Pass 1's sample of a shifted date (no warp): the source pixel under each sample centre, the
    same pixels as GDAL's warp onto the decimated grid except where a centre falls exactly on a
    pixel edge (GDAL's warper takes the pixel before it, the decimated GTiff read the one after)."""
    import rasterio
    from rasterio.vrt import WarpedVRT

    from rs_change.grid import Grid

    h, w = 700, 650
    rows, cols = np.mgrid[0:h, 0:w]
    img = np.stack([rows % 251 + 1, cols % 241 + 1, (rows // 251) * 10 + cols // 241 + 1, np.full((h, w), 9)]).astype(np.uint8)
    t_ref = Affine(1.0, 0, 500000.0, 0, -1.0, 5200000.0)
    t_src = Affine(1.0, 0, 500000.0 - 4.6, 0, -1.0, 5200000.0 + 5.3)  # ref origin at (row 5.3, col 4.6) of the source
    write_geotiff(tmp_path / "ref.tif", img, t_ref, "EPSG:32614", nodata=0, tiled=True, blockxsize=256, blockysize=256)
    write_geotiff(tmp_path / "src.tif", img, t_src, "EPSG:32614", nodata=0, tiled=True, blockxsize=256, blockysize=256)
    cfg = RunConfig.from_dict({"scenes": [{"date": "2001-01-01", "path": str(tmp_path / "ref.tif"), "sensor": "naip"},
                                          {"date": "2002-01-01", "path": str(tmp_path / "src.tif"), "sensor": "naip"}]})
    src = build_source(cfg.scenes[1], cfg)
    ref = Grid((h, w), t_ref, "EPSG:32614")
    oh, ow = 97, 83
    with src.open(ref, "nearest") as rd:
        assert rd.can_decimate()
        raws, inside = rd.read_raw(out_shape=(oh, ow))
    ry = np.floor((np.arange(oh) + 0.5) * h / oh + 5.3 + 1e-10).astype(int)
    cx = np.floor((np.arange(ow) + 0.5) * w / ow + 4.6 + 1e-10).astype(int)
    ok = (ry < h)[:, None] & (cx < w)[None, :]
    assert np.array_equal(inside, ok) and 0 < ok.sum() < ok.size
    want = img[:, np.clip(ry, 0, h - 1)][:, :, np.clip(cx, 0, w - 1)]
    got = np.stack([raws[r] for r in ("red", "green", "blue", "nir")])
    assert np.array_equal(got[:, ok], want[:, ok])
    dg = Grid((oh, ow), t_ref * Affine.scale(w / ow, h / oh), "EPSG:32614")
    with rasterio.open(tmp_path / "src.tif") as ds, WarpedVRT(ds, crs=ds.crs, transform=dg.transform, width=ow,
                                                                height=oh, resampling=rasterio.enums.Resampling.nearest) as v:
        gdal = v.read()
    fy = (np.arange(oh) + 0.5) * h / oh + 5.3
    fx = (np.arange(ow) + 0.5) * w / ow + 4.6
    no_tie = (np.abs(fy - np.round(fy)) > 1e-6)[:, None] & (np.abs(fx - np.round(fx)) > 1e-6)[None, :] & ok
    assert no_tie.sum() > 0.8 * ok.sum()
    assert np.array_equal(got[:, no_tie], gdal[:, no_tie])


def test_gdal_cache_is_shrunk_only_when_rs_change_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from rs_change import engine

    monkeypatch.setattr(engine, "_GDAL_CACHE_MB", None)
    assert engine.shrink_gdal_cache(64) is False  # GDAL's own default or the user's: left alone
    monkeypatch.setattr(engine, "_GDAL_CACHE_MB", 256)
    monkeypatch.setenv("GDAL_CACHEMAX", "1024")  # the user's setting wins
    assert engine.shrink_gdal_cache(64) is False
    monkeypatch.setenv("GDAL_CACHEMAX", "256")
    if engine._gdal_library() is None:
        pytest.skip("no GDAL library found beside rasterio")
    assert engine.shrink_gdal_cache(64) is True
    assert engine.shrink_gdal_cache(256) is True  # back to what the test session had


def test_shared_reads_one_dataset_for_every_thread(tmp_path: Path) -> None:
    import threading

    import rasterio
    from rasterio.windows import Window

    from rs_change.engine import close_readers, new_token, shared_reader
    from rs_change.readers import SharedReads

    img = lake_scene(64, 80, (slice(10, 30), slice(5, 40)), seed=4)
    path = write_geotiff(tmp_path / "s.tif", img, Affine(1.0, 0, 500000.0, 0, -1.0, 5200000.0), "EPSG:32614")
    token = new_token()
    got: list[Any] = []

    def work(r0: int) -> None:
        sr = shared_reader(token, "k", SharedReads)
        got.append((sr, r0, sr.read(str(path), [1, 2, 3, 4], Window(3, r0, 50, 20))))

    threads = [threading.Thread(target=work, args=(r,)) for r in (0, 10, 20, 30)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len({id(g[0]) for g in got}) == 1  # one object for every thread of the run
    with rasterio.open(path) as ds:
        for _, r0, arr in got:
            assert np.array_equal(arr, ds.read([1, 2, 3, 4], window=Window(3, r0, 50, 20)))
    sr = got[0][0]
    close_readers(token)
    assert sr._ds == {}  # closed with the run's readers
    assert shared_reader(token, "k", SharedReads) is not sr  # a new run gets a new one
    close_readers(token)
