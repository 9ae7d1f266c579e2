"""Per-pixel composites of several scenes of one date (issue 25): the medoid rule, the clear
count, pass 1 and pass 2 reading the same composite, and the water area under clouds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from rs_change.composite import medoid_pick, nan_median
from rs_change.config import RunConfig
from rs_change.pipeline import build_source, reference_grid, run
from rs_change.readers import decimated_read

from .conftest import T10, UTM, lake_scene, snapshot, write_geotiff

#: the lake of the scenes: rows 20:60, columns 30:90 of a 10 m grid = 2,400 px = 0.24 km2
LAKE = (slice(20, 60), slice(30, 90))
#: each scene's "cloud" (nodata on every band), over a different part of the lake
CLOUDS = [(slice(15, 40), slice(25, 60)), (slice(35, 65), slice(50, 80)), (slice(10, 30), slice(60, 100))]


def _scene(seed: int) -> np.ndarray:
    return lake_scene(80, 120, LAKE, seed=seed)


@pytest.fixture
def clouded(tmp_path: Path) -> Path:
    """``clear.tif`` (scene 0 without cloud) and ``c0.tif`` .. ``c2.tif``: three acquisitions of
    one date (noise of their own), each with a cloud of nodata over a different part of the lake;
    every pixel is clear in at least one."""
    write_geotiff(tmp_path / "clear.tif", _scene(0), T10, UTM, nodata=0)
    covered = np.zeros((80, 120), int)
    for i, (rows, cols) in enumerate(CLOUDS):
        img = _scene(i)
        img[:, rows, cols] = 0
        covered[rows, cols] += 1
        write_geotiff(tmp_path / f"c{i}.tif", img, T10, UTM, nodata=0)
    assert covered.max() == 2  # some pixels are clouded in two scenes, none in all three
    return tmp_path


def _config(folder: Path, name: str, path, chunk: int = 512, out: str = "out") -> Path:
    data = {"scenes": [{"date": "2020-08-01", "path": path, "sensor": "naip"}],
            "clustering": {"k": 2, "seed": 0, "n_init": 1},
            "compute": {"chunk_size": chunk, "scheduler": "threads", "workers": 2},
            "output": {"dir": out, "report": False, "polygons": False}}
    p = folder / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_medoid_pick_rule():
    """One clear observation: that scene; two: the first listed; three or more: the scene
    closest to the per-band median (a bright missed cloud is never picked); none: -1."""
    nir = [np.array([[0.10, 0.50, 0.30, 0.9, 0.2]], np.float32),
           np.array([[0.12, 0.20, 0.31, 0.9, 0.2]], np.float32),
           np.array([[0.90, 0.25, 0.29, 0.9, 0.2]], np.float32)]
    red = [a * 0.5 for a in nir]
    obs = [np.array([[True, False, True, False, True]]), np.array([[True, True, True, False, False]]),
           np.array([[True, True, True, False, False]])]
    pick, count = medoid_pick([{"nir": n, "red": r} for n, r in zip(nir, red)], obs)
    assert count.tolist() == [[3, 2, 3, 0, 1]]
    # 0: median 0.12 -> scene 1 (scene 2's 0.90 is a missed cloud); 1: two -> scene 1 (listed first
    # of the clear ones); 2: median 0.30 -> scene 0; 3: none; 4: the only one, scene 0
    assert pick.tolist() == [[1, 1, 0, -1, 0]]
    # ties in distance go to the scene listed first
    same = [{"nir": np.ones((1, 1), np.float32)}] * 3
    assert medoid_pick(same, [np.ones((1, 1), bool)] * 3)[0].tolist() == [[0]]
    # four scenes: pixel 0 seen by all (median 0.25 between 0.2 and 0.3: scene 1 at 0.2 is listed
    # before scene 3 at 0.3, both 0.05 away), pixel 1 by three (median 0.4 -> scene 2), pixel 2 by two
    four = [np.array([[0.1, 0.9, 0.5]], np.float32), np.array([[0.2, 0.1, 0.6]], np.float32),
            np.array([[0.9, 0.4, 0.7]], np.float32), np.array([[0.3, 0.4001, 0.8]], np.float32)]
    seen = [np.array([[True, False, False]]), np.array([[True, True, True]]), np.array([[True, True, False]]),
            np.array([[True, True, True]])]
    pick, count = medoid_pick([{"nir": a} for a in four], seen)
    assert count.tolist() == [[4, 3, 2]] and pick.tolist() == [[1, 2, 1]]
    v = np.array([[1, np.nan], [3, 2], [np.nan, np.nan], [2, 5], [10, np.nan]], np.float32)
    assert nan_median(v).tolist() == [2.5, 3.5]


def test_three_clouded_scenes_give_the_cloud_free_water_area(clouded):
    """The acceptance test of issue 25: the composite of the three clouded scenes has the water
    area of the cloud-free scene within 0.5 %, nothing unobserved, and its clear_count raster
    counts the clouds (3 - clouds over the pixel)."""
    comp = run(RunConfig.from_yaml(_config(clouded, "comp.yaml", ["c0.tif", "c1.tif", "c2.tif"])))
    clear = run(RunConfig.from_yaml(_config(clouded, "clear.yaml", "clear.tif", out="out_clear")))
    a, b = comp.summary["dates"][0], clear.summary["dates"][0]
    assert b["water_km2"] == pytest.approx(0.24, rel=0.01)  # the lake, 2,400 px of 100 m2
    assert a["water_km2"] == pytest.approx(b["water_km2"], rel=0.005)
    assert a["unobserved_km2"] == 0 and b["unobserved_km2"] == 0
    assert a["composite"]["scenes"] == 3 and len(a["composite"]["files"]) == 3 and "composite" not in b
    out = clouded / "out"
    with rasterio.open(out / "clear_count_2020-08-01.tif") as ds:
        cc = ds.read(1)
        assert ds.dtypes[0] == "uint8" and "SCENES" in ds.tags()
    want = np.full((80, 120), 3, np.uint8)
    for rows, cols in CLOUDS:
        want[rows, cols] -= 1
    assert (cc == want).all()
    assert (out / "clear_count_2020-08-01.qml").exists()
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert "clear_count_2020-08-01.tif" in json.dumps(manifest)
    assert not (clouded / "out_clear" / "clear_count_2020-08-01.tif").exists()  # one scene: no clear count
    # the composite's water pixels are the cloud-free scene's (same lake, pixels from other scenes)
    with rasterio.open(out / "water_2020-08-01.tif") as w1, rasterio.open(clouded / "out_clear" / "water_2020-08-01.tif") as w2:
        m1, m2 = w1.read(1), w2.read(1)
    assert (m1 != 255).all() and ((m1 == 1) != (m2 == 1)).sum() <= 0.005 * (m2 == 1).sum()


def test_same_bytes_with_two_chunk_sizes(clouded):
    """The composite is per pixel: chunks of 64 and of 512 pixels write the same files."""
    paths = ["c0.tif", "c1.tif", "c2.tif"]
    run(RunConfig.from_yaml(_config(clouded, "a.yaml", paths, chunk=64, out="o64")))
    run(RunConfig.from_yaml(_config(clouded, "b.yaml", paths, chunk=512, out="o512")))
    a = {k: v for k, v in snapshot(clouded / "o64").items() if k not in ("config.yaml", "manifest.json")}
    b = {k: v for k, v in snapshot(clouded / "o512").items() if k not in ("config.yaml", "manifest.json")}
    assert "clear_count_2020-08-01.tif" in a and a == b


def test_pass_one_samples_the_composite(clouded):
    """The pass-1 read of a composite is the composite: every pixel observed (no cloud holes)
    and each value the one the block read gives at that pixel."""
    cfg = RunConfig.from_yaml(_config(clouded, "c.yaml", ["c0.tif", "c1.tif", "c2.tif"]))
    src = build_source(cfg.scenes[0], cfg)
    ref = reference_grid(cfg, [src])
    with src.open(ref, "nearest") as rd:
        full, fvalid = rd.read()
        assert rd.last_clear_count.min() == 1
    assert fvalid.all()
    bands, valid = decimated_read(src, ref, (40, 60), "nearest")
    assert valid.all()
    for role in bands:
        assert (bands[role] == full[role][1::2, 1::2]).all()
    # without the composite, the first scene's cloud would be a hole in the sample
    one, ok = decimated_read(src.parts[0], ref, (40, 60), "nearest")
    assert not ok.all()


def test_adjacent_tiles_stay_a_mosaic(tmp_path):
    """Two tiles side by side (one pixel each covers): each pixel is its tile's value; the
    clear count is 1 everywhere, 2 on the overlap column."""
    from affine import Affine

    from rs_change.readers import mosaic, open_geotiff
    from rs_change.sensors import get_profile

    west = write_geotiff(tmp_path / "w.tif", np.full((4, 10, 11), 50, np.uint8), T10, UTM, nodata=0)
    east = write_geotiff(tmp_path / "e.tif", np.full((4, 10, 10), 100, np.uint8),
                         Affine(10, 0, 500100, 0, -10, 5200000), UTM, nodata=0)
    day = dt.date(2020, 8, 31)
    src = mosaic([open_geotiff(west, get_profile("naip"), day), open_geotiff(east, get_profile("naip"), day)])
    with src.open(src.grid, "nearest") as rd:
        raws, valid = rd.read_raw()
        cc = rd.last_clear_count
    assert valid.all() and (raws["red"][:, :11] == 50).all() and (raws["red"][:, 11:] == 100).all()
    assert (cc[:, 10] == 2).all() and (cc[:, :10] == 1).all() and (cc[:, 11:] == 1).all()


def test_a_stac_window_composites_the_items_of_sixteen_days(clouded):
    """`stac: {window: 16}`: the three clouded items of 1, 5 and 9 August are one date named
    2020-08-01 (listed least cloudy first), the item of 30 August another; the composited date
    has the cloud-free water area and its clear_count raster; window 0 keeps one date per day."""
    import json
    import shutil

    import pystac

    from rs_change import stac

    from .test_stac import _bbox, _item

    shutil.copy(clouded / "clear.tif", clouded / "late.tif")
    items = [_item(f"c{i}", f"2020-08-0{1 + 4 * i}", {"image": str(clouded / f"c{i}.tif")}, _bbox(clouded / f"c{i}.tif"),
                   **{"eo:cloud_cover": cc}) for i, cc in enumerate((30, 10, 20))]
    items.append(_item("late", "2020-08-30", {"image": str(clouded / "late.tif")}, _bbox(clouded / "late.tif")))
    (clouded / "items.json").write_text(json.dumps(pystac.ItemCollection(items).to_dict()))
    data = {"stac": {"url": "items.json", "sensor": "naip", "window": 16},
            "clustering": {"k": 2, "seed": 0, "n_init": 1}, "output": {"dir": "out", "report": False, "polygons": False}}
    (clouded / "w.yaml").write_text(yaml.safe_dump(data))
    cfg, rows = stac.find_scenes(RunConfig.from_yaml(clouded / "w.yaml"))
    assert [r["date"] for r in rows] == ["2020-08-01", "2020-08-30"]
    assert rows[0]["items"] == ["c1", "c2", "c0"]  # least cloudy first
    assert "composited per pixel (3 items)" in stac.describe(rows)
    res = run(cfg)
    d = {x["date"]: x for x in res.summary["dates"]}
    assert d["2020-08-01"]["water_km2"] == pytest.approx(d["2020-08-30"]["water_km2"], rel=0.005)
    assert d["2020-08-01"]["unobserved_km2"] == 0
    assert (clouded / "out" / "clear_count_2020-08-01.tif").exists()
    assert not (clouded / "out" / "clear_count_2020-08-30.tif").exists()
    data["stac"]["window"] = 0
    (clouded / "d.yaml").write_text(yaml.safe_dump(data))
    _, rows = stac.find_scenes(RunConfig.from_yaml(clouded / "d.yaml"))
    assert [r["date"] for r in rows] == ["2020-08-01", "2020-08-05", "2020-08-09", "2020-08-30"]


def test_parts_of_two_offsets_are_composited_in_reflectance(tmp_path):
    """Two Sentinel-2 files of one date, the second of processing baseline 04.00 (DN + 1000,
    BOA_ADD_OFFSET -1000): where only the second observes, the composite's reflectance is its
    reflectance (its DNs brought into the first file's units), not 0.1 too high."""
    from rs_change.readers import mosaic, open_geotiff
    from rs_change.sensors import get_profile

    a = np.full((6, 10, 10), 500, np.uint16)
    a[:, :, :5] = 0  # the first file does not observe the west half
    write_geotiff(tmp_path / "old.tif", a, T10, UTM, nodata=0)
    b = np.full((6, 10, 10), 1800, np.uint16)  # 800 + 1000: reflectance 0.08
    write_geotiff(tmp_path / "new.tif", b, T10, UTM, nodata=0)
    with rasterio.open(tmp_path / "new.tif", "r+") as ds:
        ds.update_tags(BOA_ADD_OFFSET="-1000")
    day = dt.date(2023, 6, 1)
    src = mosaic([open_geotiff(tmp_path / "old.tif", get_profile("sentinel2"), day),
                  open_geotiff(tmp_path / "new.tif", get_profile("sentinel2"), day)])
    assert src.parts[1].profile.offset == pytest.approx(-0.1)
    with src.open(src.grid, "nearest") as rd:
        bands, valid = rd.read()
    assert valid.all()
    assert np.allclose(bands["nir"][:, :5], 0.08, atol=1e-6) and np.allclose(bands["nir"][:, 5:], 0.05, atol=1e-6)
    dec, ok = decimated_read(src, src.grid, (5, 5), "nearest")
    assert ok.all() and np.allclose(dec["nir"][:, :2], 0.08, atol=1e-6)


def test_too_many_scenes_for_one_date_is_one_line():
    """More files than a composite takes (127: clear_count is uint8) stop with one line."""
    from affine import Affine

    from rs_change.errors import BandProfileError
    from rs_change.grid import Grid
    from rs_change.readers import SceneSource, mosaic
    from rs_change.sensors import get_profile

    g = Grid((2, 2), Affine(10, 0, 0, 0, -10, 0), UTM)
    part = SceneSource(dt.date(2020, 8, 1), get_profile("naip"), {"red": ("a.tif", 1)}, g, label="a.tif")
    with pytest.raises(BandProfileError, match="128 files for the date 2020-08-01; a date composites at most 127"):
        mosaic([part] * 128)


def test_each_scene_s_own_qa_mask_decides_what_is_clear(tmp_path):
    """Two scenes with a QA layer each (bit 3 = cloud, as Landsat's QA_PIXEL): a pixel flagged in
    the first is taken from the second, and one flagged in both is unobserved (clear count 0)."""
    from dataclasses import replace

    from rs_change.readers import mosaic, open_geotiff
    from rs_change.sensors import get_profile

    day = dt.date(2020, 8, 1)
    parts = []
    for i, (value, flagged) in enumerate(((50, (slice(0, 6), slice(0, 10))), (100, (slice(4, 10), slice(0, 10))))):
        write_geotiff(tmp_path / f"s{i}.tif", np.full((4, 10, 10), value, np.uint8), T10, UTM, nodata=0)
        qa = np.zeros((10, 10), np.uint16)
        qa[flagged] = 1 << 3
        write_geotiff(tmp_path / f"q{i}.tif", qa, T10, UTM)
        src = open_geotiff(tmp_path / f"s{i}.tif", get_profile("naip"), day)
        parts.append(replace(src, qa_layer=(str(tmp_path / f"q{i}.tif"), 1), qa_decoder=lambda q: (q & (1 << 3)) != 0))
    src = mosaic(parts)
    with src.open(src.grid, "nearest") as rd:
        raws, valid = rd.read_raw()
        cc = rd.last_clear_count
    assert (raws["red"][:4][valid[:4]] == 100).all() and valid[:4].all()  # cloud in the first: the second's
    assert not valid[4:6].any() and (cc[4:6] == 0).all()  # cloud in both: unobserved
    assert (raws["red"][6:] == 50).all() and valid[6:].all() and (cc[6:] == 1).all()
