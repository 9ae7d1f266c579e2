"""Waterbodies (issue 26): synthetic lakes with known pixel areas and wet dates, the strip-by-strip
labelling against whole-array labels, the run's files against the API, and the NAIP series."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

import rs_change as rc
from rs_change import waterbody as wbm
from rs_change.area import pixel_area
from rs_change.config import RunConfig
from rs_change.errors import ConfigError
from rs_change.grid import Grid

from .conftest import ROOT

DATES = ["2001-06-01", "2002-06-01", "2003-06-01"]
#: EPSG:6933 (equal area) with 10 m pixels: every pixel is 100 m2 of ground
T6933 = Affine(10, 0, 1_000_000, 0, -10, 5_000_000)


def lakes() -> list[np.ndarray]:
    """Three dates of a 40 x 40 grid (1 water, 0 land, 255 unobserved):

    * A rows 2-9, cols 2-11 (80 px), water on every date; date 2: row 2, cols 2-9 unobserved
      (8 px = 10.0 %, wet_pct kept); date 3: row 9, cols 2-10 unobserved (9 px = 11.25 %, empty);
    * B rows 20-25, cols 2-9 (48 px): water on date 1 only (1 of 3 dates: extent, no core);
    * C rows 20-27, cols 20-29 (80 px): water on dates 1 and 3, unobserved on date 2;
    * F rows 32-37, cols 2-9 and G rows 32-37, cols 14-21 (48 px each), water on every date,
      joined on date 3 by a channel in row 34, cols 10-13 (4 px);
    * H rows 14-15, col 30 (2 px, every date): under the minimum area.
    """
    m = [np.zeros((40, 40), np.uint8) for _ in DATES]
    for x in m:
        x[2:10, 2:12] = 1
        x[32:38, 2:10] = 1
        x[32:38, 14:22] = 1
        x[14:16, 30] = 1
    m[1][2, 2:10] = 255
    m[2][9, 2:11] = 255
    m[0][20:26, 2:10] = 1
    m[0][20:28, 20:30] = 1
    m[1][20:28, 20:30] = 255
    m[2][20:28, 20:30] = 1
    m[2][34, 10:14] = 1
    return m


def _series(table) -> dict[tuple[str, str], dict]:
    return {(r["uid"], r["date"]): r for r in table.to_dict("records")}


def test_equal_area_pixels_are_100_m2() -> None:
    assert np.allclose(pixel_area(T6933, "EPSG:6933", (40, 40)), 100.0, rtol=0, atol=1e-6)


def test_synthetic_lakes_defaults() -> None:
    polys, table = rc.waterbodies(lakes(), T6933, "EPSG:6933", DATES)
    # FG joined by the channel (1 of 3 dates >= extent_share 0.25), A, C; B has no core, H is too small
    assert polys["pixels"].tolist() == [100, 80, 80]
    assert polys["wb_id"].tolist() == [1, 2, 3]
    assert polys["area_m2"].round(2).tolist() == [10000.0, 8000.0, 8000.0]
    fg, a, c = polys["uid"].tolist()
    assert len({fg, a, c}) == 3
    s = _series(table)
    # A: 80 px; 8 px unobserved on date 2 (10 %: kept), 9 on date 3 (11.25 %: empty)
    assert [round(s[(a, d)]["wet_m2"], 2) for d in DATES] == [8000.0, 7200.0, 7100.0]
    assert [round(s[(a, d)]["invalid_m2"], 2) for d in DATES] == [0.0, 800.0, 900.0]
    assert [s[(a, d)]["invalid_pct"] for d in DATES] == [0.0, 10.0, 11.25]
    assert s[(a, DATES[0])]["wet_pct"] == 100.0 and s[(a, DATES[1])]["wet_pct"] == 90.0
    assert np.isnan(s[(a, DATES[2])]["wet_pct"])
    # C: never observed on date 2
    assert [round(s[(c, d)]["wet_m2"], 2) for d in DATES] == [8000.0, 0.0, 8000.0]
    assert s[(c, DATES[1])]["invalid_m2"] == 8000.0 and np.isnan(s[(c, DATES[1])]["wet_pct"])
    # FG: the channel is dry on dates 1-2 and wet on date 3
    assert [round(s[(fg, d)]["wet_m2"], 2) for d in DATES] == [9600.0, 9600.0, 10000.0]
    assert [round(s[(fg, d)]["dry_m2"], 2) for d in DATES] == [400.0, 400.0, 0.0]
    # wet + dry + invalid = extent, every waterbody and date
    for r in table.to_dict("records"):
        ext = float(polys.loc[polys["uid"] == r["uid"], "area_m2"].iloc[0])
        assert r["wet_m2"] + r["dry_m2"] + r["invalid_m2"] == pytest.approx(ext, abs=0.02)
    # change: A's last date is too unobserved, C unchanged, FG grew
    row = polys.set_index("uid")
    assert row.loc[a, "class"] == "unobserved" and np.isnan(row.loc[a, "change_m2"])
    assert row.loc[c, "class"] == "unchanged" and row.loc[c, "change_m2"] == 0.0 and row.loc[c, "change_pct"] == 0.0
    assert row.loc[fg, "class"] == "grew" and row.loc[fg, "change_m2"] == 400.0
    assert row.loc[fg, "change_pct"] == pytest.approx(100 * 400 / 9600, abs=1e-4)
    assert (row["wet_first_m2"].tolist(), row["wet_last_m2"].tolist()) == ([9600.0, 8000.0, 8000.0], [10000.0, 7100.0, 8000.0])
    # the outlines are the pixels: polygon area in an equal-area CRS = pixels x 100 m2
    assert polys.geometry.area.round(6).tolist() == [10000.0, 8000.0, 8000.0]
    assert list(table.columns) == ["uid", "date", "wet_m2", "wet_pct", "dry_m2", "invalid_m2", "invalid_pct"]


def test_synthetic_lakes_joined_on_one_date_stay_apart_with_a_higher_extent_share() -> None:
    polys, table = rc.waterbodies(lakes(), T6933, "EPSG:6933", DATES, extent_share=0.5)
    # F and G (48 px each) apart: the channel was water on 1 of 3 dates < 0.5; B has no extent now
    assert sorted(polys["pixels"].tolist()) == [48, 48, 80, 80]
    s = _series(table)
    for uid in polys.loc[polys["pixels"] == 48, "uid"]:
        assert [s[(uid, d)]["wet_m2"] for d in DATES] == [4800.0, 4800.0, 4800.0]  # the channel is in neither


def test_lake_water_on_one_of_three_dates_is_a_waterbody_when_the_core_share_allows() -> None:
    polys, table = rc.waterbodies(lakes(), T6933, "EPSG:6933", DATES, core_share=0.3)
    b = polys[polys["pixels"] == 48]
    assert len(b) == 1
    s = _series(table)
    assert [s[(b["uid"].iloc[0], d)]["wet_m2"] for d in DATES] == [4800.0, 0.0, 0.0]
    assert b["class"].iloc[0] == "shrank" and b["change_pct"].iloc[0] == -100.0


def test_api_settings_are_the_config_keys() -> None:
    """rs_change.waterbodies takes the waterbodies: config keys; a misspelt one or shares out of
    order are refused, naming the keys."""
    with pytest.raises(TypeError, match="core_shares.*the settings are core_share, extent_share"):
        rc.waterbodies(lakes(), T6933, "EPSG:6933", DATES, core_shares=0.3)
    with pytest.raises(ValueError, match="extent_share=0.6, core_share=0.5"):
        rc.waterbodies(lakes(), T6933, "EPSG:6933", DATES, extent_share=0.6)


def test_min_area_and_min_observations() -> None:
    polys, _ = rc.waterbodies(lakes(), T6933, "EPSG:6933", DATES, min_area_m2=0)
    assert sorted(polys["pixels"].tolist()) == [2, 80, 80, 100]  # H (200 m2) is kept
    polys, _ = rc.waterbodies(lakes(), T6933, "EPSG:6933", DATES, min_observations=3)
    assert sorted(polys["pixels"].tolist()) == [80, 100]  # C (observed twice) has no core


def test_geographic_grid_areas_are_the_pixels_ground_areas() -> None:
    t = Affine(0.0001, 0, -99.2, 0, -0.0001, 47.05)
    m = lakes()
    polys, table = rc.waterbodies(m, t, "EPSG:4326", DATES)
    pa = pixel_area(t, "EPSG:4326", (40, 40)) * np.ones((40, 40))
    a_px = np.zeros((40, 40), bool)
    a_px[2:10, 2:12] = True
    c80 = polys.loc[polys["pixels"] == 80]
    a = c80.loc[c80.geometry.bounds["maxy"].idxmax()]  # A: the northern one (C, further south, has larger pixels)
    assert a["wb_id"] == c80["wb_id"].max()
    assert a["area_m2"] == pytest.approx(pa[a_px].sum(), abs=0.01)
    s = _series(table)
    wet2 = a_px & (m[1] == 1)
    assert s[(a["uid"], DATES[1])]["wet_m2"] == pytest.approx(pa[wet2].sum(), abs=0.01)


def test_geohash() -> None:
    assert wbm.geohash(-5.6, 42.6, 5) == "ezs42"  # Wikipedia's example
    assert wbm.geohash(10.40744, 57.64911, 11) == "u4pruydqqvj"
    assert wbm.geohash(0.0, 0.0, 1) == "s" and wbm.geohash(-0.0001, -0.0001, 1) == "7"


def test_uids_are_unique_when_points_share_a_cell() -> None:
    import shapely

    boxes = [shapely.box(x, 0, x + 1e-6, 1e-6) for x in (10.0, 10.000002, 10.000004)]
    ids = wbm.uids(boxes, "EPSG:4326", 7)
    assert len(set(ids)) == 3 and all(len(u) >= 7 for u in ids)


def test_strips_measure_like_the_whole_array() -> None:
    """trace_extent's regions, pixels and per-date sums, strip by strip (strips of 1 to all rows),
    equal those of the whole array labelled at once."""
    from scipy import ndimage

    from rs_change.area import pixel_area

    rng = np.random.default_rng(3)
    grid = Grid((57, 43), T6933, "EPSG:6933")
    pa = np.broadcast_to(pixel_area(grid.transform, grid.crs, grid.shape), grid.shape)
    for trial in range(5):
        ext = ndimage.binary_opening(rng.random((57, 43)) < 0.55)  # irregular regions, U shapes across strips
        cls = ext.astype(np.uint8) * np.where(rng.random(ext.shape) < 0.05, wbm.CORE, wbm.EXTENT).astype(np.uint8)
        water = [rng.choice(np.array([0, 1, 255], np.uint8), ext.shape) for _ in range(2)]
        lab_whole, n = ndimage.label(ext)
        first = ndimage.minimum_position(np.arange(ext.size).reshape(ext.shape), lab_whole, range(1, n + 1))
        order = np.argsort([r * 43 + c for r, c in first])  # regions in raster order of their first pixel
        core = ndimage.sum(pa * (cls == wbm.CORE), lab_whole, range(1, n + 1))[order]
        kept = order[core > 0] + 1  # whole-array labels of the waterbodies, in their order
        want_pix = np.bincount(lab_whole.ravel(), minlength=n + 1)[kept]
        want = np.zeros((2, 3, len(kept) + 1))
        for d, w in enumerate(water):
            for s, sel in enumerate((w == 1, w == 0, w == 255)):
                want[d, s, 1:] = ndimage.sum(pa * sel, lab_whole, kept)
        for rows in (1, 3, 7, 57):
            e, geoms, sums = wbm.trace_extent(lambda r0, r1: cls[r0:r1], [lambda r0, r1, w=w: w[r0:r1] for w in water],
                                              grid, 0.0, rows=rows)
            assert e.pixels.tolist() == want_pix.tolist(), (trial, rows)
            assert e.regions == n and e.removed_no_core == int((core <= 0).sum())
            np.testing.assert_allclose(sums, want, rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(e.area_m2, sums[0, :, 1:].sum(axis=0), rtol=1e-9)
            assert len(geoms) == len(kept)


def test_files_give_the_api_result(tmp_path) -> None:
    """The run's path (block-written rasters read strip by strip, outlines traced by the strips)
    equals the whole-array API."""
    m = lakes()
    grid = Grid((40, 40), T6933, "EPSG:6933")
    prof = dict(driver="GTiff", width=40, height=40, count=1, dtype="uint8", crs="EPSG:6933", transform=T6933)
    paths = []
    for d, x in zip(DATES, m):
        with rasterio.open(tmp_path / f"w_{d}.tif", "w", **prof) as ds:
            ds.write(x, 1)
        paths.append(tmp_path / f"w_{d}.tif")
    with rasterio.open(tmp_path / "cls.tif", "w", **prof) as ds:
        ds.write(wbm.pixel_classes(m), 1)
    p = wbm.Params()
    lf, tf, sf = wbm.from_files(grid, tmp_path / "cls.tif", paths, DATES, p)
    la, ta, sa = wbm.from_arrays(m, grid, DATES, p)
    assert tf == ta and sf == sa
    assert lf.drop(columns="geometry").equals(la.drop(columns="geometry"))
    assert all(a.equals(b) for a, b in zip(lf.geometry, la.geometry))


def test_config_keys() -> None:
    cfg = RunConfig.from_text("scenes: [{date: 2009-08-18, path: a.tif, sensor: naip}]")
    wb = cfg.waterbodies
    assert (wb.enabled, wb.core_share, wb.extent_share, wb.min_observations, wb.min_area_m2, wb.max_invalid_pct) == (
        True, 0.5, 0.25, 2, None, 10.0)
    with pytest.raises(ConfigError, match="extent_share"):
        RunConfig.from_text("scenes: [{date: 2009-08-18, path: a.tif, sensor: naip}]\nwaterbodies: {core_share: 0.2}")
    with pytest.raises(ConfigError, match="min_observation"):
        RunConfig.from_text("scenes: [{date: 2009-08-18, path: a.tif, sensor: naip}]\nwaterbodies: {min_observation: 2}")


# ---------------------------------------------------------------------------------------------
# The NAIP series (sample_tiles, shipped with the repository)
# ---------------------------------------------------------------------------------------------
def _run_series(out: Path, seed: int, scheduler: str = "threads") -> Path:
    cfg = RunConfig.from_yaml(ROOT / "configs" / "naip_series.yaml")
    cfg = cfg.model_copy(update={
        "clustering": cfg.clustering.model_copy(update={"seed": seed}),
        "output": cfg.output.model_copy(update={"formats": ["gpkg"]}),
        "compute": cfg.compute.model_copy(update={"scheduler": scheduler}),
    })
    rc.run(cfg, output_dir=out, overwrite=True)
    return out


@pytest.fixture(scope="module")
def series_runs(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("wb")
    return _run_series(base / "seed0", 0), _run_series(base / "seed1", 1)


def _table(out: Path) -> list[dict[str, str]]:
    with open(out / "waterbodies.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_naip_uids_unique_and_the_same_across_seeds(series_runs) -> None:
    import geopandas as gpd
    import shapely

    a, b = (gpd.read_file(out / "water.gpkg", layer="waterbodies") for out in series_runs)
    assert a["uid"].is_unique and b["uid"].is_unique and len(a) > 20
    # the seeds' masks differ by a few hundred pixels (water ~170,000 px): every waterbody found in
    # both runs (its outline overlapping the other's by IoU > 0.5) has the same uid
    i, j = b.sindex.query(a.geometry.values, predicate="intersects")
    A, B = a.geometry.values[i], b.geometry.values[j]
    iou = shapely.area(shapely.intersection(A, B)) / shapely.area(shapely.union(A, B))
    same = iou > 0.5
    assert len(set(i[same])) >= 0.9 * len(a)
    assert a["uid"].to_numpy()[i[same]].tolist() == b["uid"].to_numpy()[j[same]].tolist()
    # the ones found in one run only are small (within a few pixels of the thresholds)
    only = set(range(len(b))) - set(j[same])
    assert all(b["area_m2"].iloc[k] < 5000 for k in only)
    # the table's uids are the layer's, one row per waterbody and date
    t = _table(series_runs[0])
    assert len(t) == 3 * len(a) and [r["uid"] for r in t[::3]] == a["uid"].tolist()


def test_naip_wet_areas_equal_the_water_rasters_inside_the_polygons(series_runs) -> None:
    import geopandas as gpd
    from rasterio.features import rasterize

    out = series_runs[0]
    layer = gpd.read_file(out / "water.gpkg", layer="waterbodies")
    t = _table(out)
    summary = json.loads((out / "summary.json").read_text())
    for d in summary["dates"]:
        date = d["date"]
        with rasterio.open(out / f"water_{date}.tif") as ds:
            water = ds.read(1)
            inside = rasterize(layer.geometry, out_shape=ds.shape, transform=ds.transform, fill=0, default_value=1,
                               dtype="uint8").astype(bool)
            pa = np.broadcast_to(pixel_area(ds.transform, ds.crs, ds.shape), ds.shape)
        independent = float(pa[inside & (water == 1)].sum())
        wet = sum(float(r["wet_m2"]) for r in t if r["date"] == date)
        assert wet == pytest.approx(independent, rel=1e-3)
        assert independent <= d["water_km2"] * 1e6 + 1
    # the largest lake grows from 2009 to 2020 as the totals do
    big = layer.loc[layer["wb_id"] == 1].iloc[0]
    rows = {r["date"]: float(r["wet_m2"]) for r in t if r["uid"] == big["uid"]}
    first, last = summary["dates"][0], summary["dates"][-1]
    assert last["water_km2"] > first["water_km2"]
    assert rows[last["date"]] > rows[first["date"]]
    assert big["change_m2"] == pytest.approx(rows[last["date"]] - rows[first["date"]], abs=0.02) and big["class"] == "grew"
    # summary.json and the report
    s = summary["waterbodies"]
    assert s["count"] == len(layer) and len(s["most_changed"]) == 5
    html = (out / "report.html").read_text()
    assert "<h2>Waterbodies</h2>" in html and "waterbodies.png" in html and s["most_changed"][0]["uid"] in html


def test_naip_waterbodies_same_bytes_with_processes(series_runs, tmp_path) -> None:
    out = _run_series(tmp_path / "proc", 0, "processes")
    assert (out / "waterbodies.csv").read_bytes() == (series_runs[0] / "waterbodies.csv").read_bytes()
    assert (out / "water.gpkg").read_bytes() == (series_runs[0] / "water.gpkg").read_bytes()


def test_naip_waterbodies_same_bytes_on_a_dask_cluster(series_runs, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  protocol="tcp://", host="127.0.0.1") as cluster:
        out = _run_series(tmp_path / "dask", 0, cluster.scheduler_address)
    assert (out / "waterbodies.csv").read_bytes() == (series_runs[0] / "waterbodies.csv").read_bytes()
    assert (out / "water.gpkg").read_bytes() == (series_runs[0] / "water.gpkg").read_bytes()


def test_report_plot_of_the_synthetic_lakes(tmp_path) -> None:
    from rs_change.report import waterbodies_png

    polys, table = rc.waterbodies(lakes(), T6933, "EPSG:6933", DATES)
    rows = [{**r, "wet_pct": None if np.isnan(r["wet_pct"]) else r["wet_pct"]} for r in table.to_dict("records")]
    most = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in polys.drop(columns="geometry").to_dict("records")]
    png = waterbodies_png(rows, most, tmp_path / "wb.png")  # A's last date and C's second are hollow markers
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (400, 1000)
