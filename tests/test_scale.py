"""The block executor (rs_change.engine) and the pipeline on every scheduler: same numbers,
bounded work in flight, readers opened where the work runs."""

from __future__ import annotations

import json
import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from rs_change.blocks import BlockTask, process_block
from rs_change.config import OutputConfig, RunConfig
from rs_change.engine import Engine, cached_reader, close_readers, new_token
from rs_change.errors import ConfigError
from rs_change.pipeline import run

from .conftest import lake_scene, write_geotiff

H, W = 150, 170
LAKE_2009 = (slice(20, 60), slice(30, 90))  # 40 x 60 = 2400 px
LAKE_2020 = (slice(20, 100), slice(30, 130))  # 80 x 100 = 8000 px


@pytest.fixture(scope="module")
def two_dates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config over two synthetic 4-band 1 m scenes (UTM), lake grown from 2400 to 8000 px."""
    d = tmp_path_factory.mktemp("scale")
    t = Affine(1.0, 0, 500000.0, 0, -1.0, 5200000.0)
    write_geotiff(d / "a.tif", lake_scene(H, W, LAKE_2009, seed=1), t, "EPSG:32614", nodata=0)
    write_geotiff(d / "b.tif", lake_scene(H, W, LAKE_2020, seed=2), t, "EPSG:32614", nodata=0)
    (d / "run.yaml").write_text(
        "scenes:\n"
        "  - {date: 2009-08-18, path: a.tif, sensor: naip}\n"
        "  - {date: 2020-08-31, path: b.tif, sensor: naip}\n"
        "clustering: {k: 2, seed: 0, sample_size: 2000, n_init: 1}\n"
        "output: {polygons: false}\n"
        "compute: {chunk_size: 64}\n"
    )
    return d / "run.yaml"


def _cfg(path: Path, scheduler: str = "threads", workers: int | None = None) -> RunConfig:
    cfg = RunConfig.from_yaml(path)
    cfg.compute.scheduler = scheduler
    cfg.compute.workers = workers
    return cfg


def _dump(summary: dict) -> str:
    return json.dumps(summary, sort_keys=True)


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------
def _slow_square(x: int) -> int:
    time.sleep(0.002 * ((x * 7) % 5))  # finish out of order
    return x * x


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_engine_map_keeps_item_order(scheduler: str) -> None:
    with Engine(scheduler, workers=3) as eng:
        assert list(eng.map(_slow_square, range(40))) == [i * i for i in range(40)]


def test_engine_bounds_items_in_flight() -> None:
    """Never more than `in_flight` items started ahead of the consumer (memory bound)."""
    started = []
    lock = threading.Lock()

    def fn(i: int) -> int:
        with lock:
            started.append(i)
        return i

    with Engine("threads", workers=2, in_flight=3) as eng:
        for i in eng.map(fn, range(30)):
            time.sleep(0.001)
            with lock:
                assert len(started) <= i + 1 + 3


def test_engine_reraises_worker_errors() -> None:
    def boom(i: int) -> int:
        if i == 5:
            raise ValueError("block 5 failed")
        return i

    with Engine("threads", workers=2) as eng, pytest.raises(ValueError, match="block 5"):
        list(eng.map(boom, range(20)))


def test_map_lets_go_only_after_the_item_it_was_waiting_for_finishes() -> None:
    """An interrupt (Ctrl-C, SIGTERM) while the consumer waits for a result: the item being
    waited for still runs, and the caller closes the readers it uses as soon as map lets go;
    map must not let go before it has finished (a GDAL read of a closed dataset crashes)."""
    import signal

    done: list[int] = []

    def slow(x: int) -> int:
        time.sleep(0.4)
        done.append(x)
        return x

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        with Engine("threads", workers=2) as eng:
            with pytest.raises(KeyboardInterrupt):
                signal.setitimer(signal.ITIMER_REAL, 0.1)  # fires while map waits for item 1
                for _ in eng.map(slow, [1]):
                    pass
            assert done == [1]  # before the pool is shut down (which waits too)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_engine_rejects_unknown_scheduler() -> None:
    with pytest.raises(ConfigError, match="compute.scheduler"):
        Engine("gpu")


def test_reader_cache_is_per_thread_and_closed() -> None:
    class R:
        closed = False

        def close(self) -> None:
            self.closed = True

    tok = new_token()
    a = cached_reader(tok, 0, R)
    assert cached_reader(tok, 0, R) is a  # reused in the same thread
    other = []
    th = threading.Thread(target=lambda: other.append(cached_reader(tok, 0, R)))
    th.start()
    th.join()
    assert other[0] is not a  # a thread never shares a GDAL dataset
    close_readers(tok)
    assert a.closed and other[0].closed


# --------------------------------------------------------------------------------------------
# Pipeline: same numbers on every scheduler
# --------------------------------------------------------------------------------------------
def test_threads_give_known_areas_and_equal_synchronous(two_dates: Path) -> None:
    s_thr = run(_cfg(two_dates, "threads", 2), write=False).summary
    s_syn = run(_cfg(two_dates, "synchronous"), write=False).summary
    d09, d20 = s_thr["dates"]
    assert (d09["water_pixels"], d20["water_pixels"]) == (2400, 8000)  # 1 m pixels in UTM: ~1 m2 each
    assert d09["water_km2"] == pytest.approx(0.0024, rel=2e-3)
    assert s_thr["change"]["gained_pixels"] == 8000 - 2400
    assert _dump(s_thr) == _dump(s_syn)  # blocks reduced in order: bit-identical sums


def test_dask_local_cluster_gives_the_same_numbers(two_dates: Path) -> None:
    distributed = pytest.importorskip("distributed")
    ref = run(_cfg(two_dates, "threads", 2), write=False).summary
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  protocol="tcp://", host="127.0.0.1") as cluster:
        addr = cluster.scheduler_address
        assert addr.startswith("tcp://")
        via_config = run(_cfg(two_dates, addr), write=False).summary  # compute.scheduler: tcp://host:port
        with distributed.Client(cluster) as client:
            via_client = run(_cfg(two_dates), write=False, client=client).summary
    assert _dump(via_config) == _dump(ref)
    assert _dump(via_client) == _dump(ref)


def test_block_task_pickles_and_reopens_its_readers(two_dates: Path) -> None:
    """What a process or cluster worker receives: the same block result after a pickle round trip."""
    res = run(_cfg(two_dates, "synchronous"), write=False)
    task = BlockTask(res.grid, res.models, None, "bilinear")
    clone = pickle.loads(pickle.dumps(task))
    assert clone.token == task.token
    win = (64, 64, 64, 64)
    a, b = task(win), process_block(win, res.grid, clone.models, None, "bilinear")
    close_readers(task.token)
    for ma, mb in zip(a.water, b.water):
        np.testing.assert_array_equal(ma, mb)
    np.testing.assert_array_equal(a.stats, b.stats)


def test_unknown_scheduler_in_config_is_one_line(two_dates: Path) -> None:
    text = two_dates.read_text().replace("compute: {chunk_size: 64}", "compute: {chunk_size: 64, scheduler: gpu}")
    with pytest.raises(ConfigError, match="compute.scheduler") as exc:
        RunConfig.from_text(text, base_dir=two_dates.parent)
    assert "tcp://" in str(exc.value) and "\n" not in str(exc.value)


def test_summary_only_cli_writes_just_the_summary(two_dates: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rs_change.cli import main

    out = tmp_path / "out"
    assert main(["run", str(two_dates), "-o", str(out), "--summary-only"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "manifest.json", "summary.csv", "summary.json"]
    summ = json.loads((out / "summary.json").read_text())
    assert [d["water_pixels"] for d in summ["dates"]] == [2400, 8000]
    assert main(["run", str(two_dates), "-o", str(out), "--summary-only"]) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Polygons strip by strip (bounded memory) = polygons of the whole raster
# --------------------------------------------------------------------------------------------
def _mask_file(tmp_path: Path, mask: np.ndarray, crs: str = "EPSG:32614", res: float = 2.0):
    from pyproj import CRS

    from rs_change.export import write_cog
    from rs_change.grid import Grid

    t = Affine(res, 0, 500000.0, 0, -res, 5200000.0) if crs != "EPSG:4326" else Affine(1e-3, 0, -99.0, 0, -1e-3, 47.0)
    g = Grid(mask.shape, t, CRS.from_user_input(crs))
    return write_cog(tmp_path / "m.tif", mask.astype(np.uint8), g), g


def test_strip_polygons_merge_a_u_shape_across_strips(tmp_path: Path) -> None:
    """A U whose arms are separate in the first strip is one region; a lake with an island keeps its hole."""
    from .polygon_reference import polygon_layer_strips

    m = np.zeros((30, 40), np.uint8)
    m[2:20, 2:6] = 1  # left arm
    m[2:20, 14:18] = 1  # right arm
    m[16:20, 2:18] = 1  # bottom joins them (rows 16-19, below the first 10-row strip)
    m[22:29, 25:38] = 1  # a lake ...
    m[24:26, 30:32] = 0  # ... with a 2 x 2 island
    path, g = _mask_file(tmp_path, m)
    gdf, removed, raster = polygon_layer_strips(path, g, None, {1: "water"}, rows=10)
    assert len(gdf) == 2
    u_px = 2 * 18 * 4 + 4 * 8  # two 18 x 4 arms + the 4 x 8 bottom between them
    assert list(gdf["pixels"]) == [u_px, 7 * 13 - 4]
    assert len(gdf.geometry.iloc[0].interiors) == 0 and len(gdf.geometry.iloc[1].interiors) == 1
    assert gdf.geometry.iloc[0].area == pytest.approx(u_px * 4.0)  # 2 m pixels, in the grid's CRS
    assert raster == pytest.approx(gdf["area_m2"].sum()) and removed["water"]["features"] == 0


@pytest.mark.parametrize("crs", ["EPSG:32614", "EPSG:4326"])
@pytest.mark.parametrize("rows", [7, 32])
def test_strip_polygons_equal_whole_raster_polygons(tmp_path: Path, crs: str, rows: int) -> None:
    from scipy import ndimage

    from rs_change.area import pixel_area

    from .polygon_reference import polygon_layer, polygon_layer_strips

    rng = np.random.default_rng(3)
    m = (ndimage.gaussian_filter(rng.random((120, 90)), 2.5) > 0.5).astype(np.uint8)
    m[rng.random(m.shape) < 0.01] = 255
    path, g = _mask_file(tmp_path, m, crs)
    pa = pixel_area(g.transform, g.crs, g.shape)
    values = {1: "water", 0: "land"}
    for min_area, simplify in ((0.0, 0.0), (4 * float(np.mean(pa)), 1.0)):
        a, ra = polygon_layer(m, g, pa, values, min_area, simplify, "2020-01-01")
        b, rb, raster = polygon_layer_strips(path, g, pa, values, min_area, simplify, "2020-01-01", rows=rows)
        assert len(a) == len(b) > 10
        assert list(a["class"]) == list(b["class"]) and list(a["pixels"]) == list(b["pixels"])
        np.testing.assert_allclose(b["area_m2"], a["area_m2"], rtol=1e-9)
        assert all(x.equals_exact(y, 0) for x, y in zip(a.geometry, b.geometry))  # vertex for vertex
        np.testing.assert_allclose(b["perimeter_m"], a["perimeter_m"], rtol=1e-9)
        assert {k: v["pixels"] for k, v in ra.items()} == {k: v["pixels"] for k, v in rb.items()}
        whole = float(np.broadcast_to(pa, m.shape)[(m == 0) | (m == 1)].sum())
        assert raster == pytest.approx(whole, rel=1e-9)


def test_mean_pixel_area_by_strips_equals_the_whole_grid() -> None:
    """UTM grids have (h, w) pixel areas (8 bytes per pixel if taken whole); by strips: same mean."""
    from pyproj import CRS

    from rs_change.area import pixel_area
    from rs_change.grid import Grid
    from rs_change.strips import mean_pixel_area

    g = Grid((301, 157), Affine(30.0, 0, 300000.0, 0, -30.0, 5300000.0), CRS.from_user_input("EPSG:32614"))
    whole = float(np.mean(pixel_area(g.transform, g.crs, g.shape)))
    assert 890.0 < whole < 910.0  # 30 m pixels, UTM scale factor ~0.9996 near the central meridian
    assert mean_pixel_area(g, rows=40) == pytest.approx(whole, rel=1e-9)


def test_blocks_give_the_numbers_of_one_in_memory_block(two_dates: Path) -> None:
    """chunk_size larger than the scene = the whole scene in memory at once; 64-pixel blocks agree."""
    whole = _cfg(two_dates, "synchronous")
    whole.compute.chunk_size = 4096
    a = run(whole, write=False).summary
    b = run(_cfg(two_dates, "threads", 2), write=False).summary
    for da, db in zip(a["dates"], b["dates"]):
        for key in ("water_pixels", "observed_pixels", "unobserved_pixels", "water_km2", "observed_km2"):
            assert da[key] == db[key], key
    for key in ("gained_pixels", "lost_pixels", "gained_km2", "lost_km2", "net_km2"):
        assert a["change"][key] == b["change"][key], key


def test_c_polygonize_traces_what_rasterio_shapes_traces() -> None:
    """GDAL's polygonize called through ctypes (without the GIL) = rasterio.features.shapes: the
    same polygons, vertex for vertex, in the same order, with the same values."""
    from affine import Affine
    from rasterio.features import shapes
    from scipy import ndimage
    from shapely.geometry import shape

    from rs_change.strips import _c_polygonize

    poly = _c_polygonize()
    if poly is None:  # pragma: no cover - a rasterio without GDAL's C API beside it
        pytest.skip("GDAL's C API was not found beside rasterio")
    rng = np.random.default_rng(7)
    img = (ndimage.gaussian_filter(rng.random((90, 70)), 1.5) * 12).astype(np.uint8)
    mask = (img % 2 == 1) & (rng.random(img.shape) > 0.02)
    wkbs, vals = poly(img, mask, 3, 40)
    want = list(shapes(img, mask=mask, transform=Affine.translation(3, 40), connectivity=4))
    assert len(wkbs) == len(want) > 20
    import shapely

    for g, v, (w, wv) in zip(shapely.from_wkb(wkbs), vals, want):
        assert g.equals_exact(shape(w), 0) and v == int(wv)
        assert list(g.exterior.coords) == [tuple(c) for c in w["coordinates"][0]]


def test_compiled_outlines_are_gdal_polygonize_vertex_for_vertex() -> None:
    """The compiled tracer gives GDAL's polygons: the same rings, vertices and starts, on random
    rasters of 1-3 values full of diagonal contacts, with and without a mask."""
    import shapely
    from scipy import ndimage

    from rs_change import kernels
    from rs_change.strips import _c_polygonize

    poly = _c_polygonize()
    if poly is None or not kernels.ENABLED:  # pragma: no cover
        pytest.skip("needs GDAL's C API and the compiled loops")
    # a pinched region: the ring turns at (2, 2) to keep the diagonal pixels joined, so the pixel
    # (1, 1) is a hole touching the exterior there, as GDAL writes it
    img = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 0]], np.uint8)
    got = kernels.outlines(img, np.ones(img.shape, bool), 0, 0)
    assert [g.wkt for g in got] == [
        "POLYGON ((0 0, 0 3, 2 3, 2 2, 3 2, 3 0, 0 0), (1 1, 2 1, 2 2, 1 2, 1 1))",
        "POLYGON ((1 1, 1 2, 2 2, 2 1, 1 1))",
        "POLYGON ((2 2, 2 3, 3 3, 3 2, 2 2))",
    ]
    rng = np.random.default_rng(3)
    scratch = kernels.outlines_scratch(30 * 30)
    for t in range(400):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        nv = int(rng.integers(1, 4))
        if t % 2:
            img = (ndimage.uniform_filter(rng.random((h, w)), 3) * nv * 1.5).astype(np.uint8) % nv
        else:
            img = rng.integers(0, nv, (h, w)).astype(np.uint8)
        mask = rng.random((h, w)) < (1.0, 0.9, 0.6)[t % 3]
        x0, y0 = (int(v) for v in rng.integers(0, 50, 2))
        got = kernels.outlines(img, mask, x0, y0)
        wkbs, _ = poly(img, mask, x0, y0)
        assert sorted(shapely.to_wkb(got).tolist()) == sorted(shapely.to_wkb(shapely.from_wkb(wkbs)).tolist())
        # the same in a working buffer reused from strip to strip (its edge marks start afresh)
        again = kernels.outlines(img, mask, x0, y0, scratch)
        assert shapely.to_wkb(again).tolist() == shapely.to_wkb(got).tolist()
    with pytest.raises(ValueError, match="scratch"):
        kernels.outlines(img, mask, 0, 0, np.zeros(5 * img.size - 1, np.uint8))
    assert kernels.outlines(np.zeros((4, 5), np.uint8), np.zeros((4, 5), bool), 0, 0).size == 0


def test_strip_regions_in_threads_equal_one_thread(tmp_path: Path) -> None:
    from scipy import ndimage

    from rs_change.strips import strip_regions_many

    rng = np.random.default_rng(5)
    m = (ndimage.gaussian_filter(rng.random((150, 80)), 2.0) > 0.5).astype(np.uint8)
    c = np.where(m == 1, 2, np.where(rng.random(m.shape) < 0.3, 3, 0)).astype(np.uint8)
    pm, g = _mask_file(tmp_path, m)
    from rs_change.export import write_cog

    pc = write_cog(tmp_path / "c.tif", c, g)
    rasters = [(pm, {1: "water"}), (pc, {2: "gained", 3: "lost"})]
    one = strip_regions_many(rasters, g, rows=9, workers=1)
    two = strip_regions_many(rasters, g, rows=9, workers=2, finish_workers=2)  # strips and joins in threads
    for a, b in zip(one, two):
        assert list(a["code"]) == list(b["code"]) and list(a["pixels"]) == list(b["pixels"]) and len(a["code"]) > 5
        assert np.array_equal(a["area_m2"], b["area_m2"])
        assert all(x.equals_exact(y, 0) for x, y in zip(a["geometry"], b["geometry"]))
    assert sum(one[0]["pixels"]) == int(m.sum())


def test_polygon_layers_built_in_threads_equal_one_thread(tmp_path: Path) -> None:
    """export.run_polygons with the layers built on 2 threads writes the same features and stats."""
    import geopandas as gpd
    from scipy import ndimage

    from rs_change.export import run_polygons

    rng = np.random.default_rng(6)
    g = None
    water = {}
    for i, date in enumerate(("2001-01-01", "2002-01-01")):
        m = (ndimage.gaussian_filter(rng.random((90, 70)), 2.0) > 0.5).astype(np.uint8)
        path, g = _mask_file(tmp_path, m)
        water[date] = path.rename(tmp_path / f"w{i}.tif")
    out = {}
    for n in (1, 2):
        folder = tmp_path / f"out{n}"
        folder.mkdir()
        output = OutputConfig(formats=["gpkg"], min_area_m2=None, simplify_px=1.0)
        files, summ = run_polygons(folder, g, water, None, output, threads=(1, n))
        out[n] = (summ, {lay: gpd.read_file(files["water.gpkg"], layer=lay) for lay in ("water_2001_01_01", "water_2002_01_01")})
    assert out[1][0] == out[2][0] and all(v["features"] > 3 for v in out[1][0]["layers"].values())
    for lay, a in out[1][1].items():
        b = out[2][1][lay]
        assert list(a["area_m2"]) == list(b["area_m2"]) and all(x.equals_exact(y, 0) for x, y in zip(a.geometry, b.geometry))


def test_release_free_memory_returns_freed_heap_to_the_system() -> None:
    """Chunks freed between live ones stay in the process until ``release_free_memory``."""
    import subprocess
    import sys

    code = """
import numpy as np
from rs_change.engine import release_free_memory
def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) // 1024
keep, drop = [], []
for i in range(3000):  # 64 kB chunks: from glibc's heap, not mmap; every other one kept
    (keep if i % 2 else drop).append(np.ones(8192))
del drop
freed = rss()
assert release_free_memory()
print(freed - rss())
"""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's malloc_trim")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) >= 60  # ~94 MB of the freed chunks go back to the system
