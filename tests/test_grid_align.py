"""Dates on one grid: sub-pixel shifts, other CRSs and resolutions, partial and no overlap, and the
NAIP sample whose dates are shifted by 1-3 m and have 723 vs 724 rows."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pytest
import rasterio
from affine import Affine

from rs_change import mask_area
from rs_change.blocks import process_block
from rs_change.config import RunConfig
from rs_change.errors import ConfigError, NoOverlapError
from rs_change.fit import fit_date
from rs_change.grid import Grid
from rs_change.pipeline import build_source, reference_grid, run
from rs_change.readers import SceneSource, check_overlap, open_geotiff
from rs_change.sensors import custom_profile

from .conftest import SAMPLE, lake_scene

UTM = "EPSG:32614"
D1, D2 = dt.date(2020, 1, 1), dt.date(2021, 1, 1)


def _cfg(tmp_path, paths, **extra):
    scenes = [{"date": f"202{i}-01-01", "path": str(p), "sensor": "naip"} for i, p in enumerate(paths)]
    return RunConfig.from_dict({"scenes": scenes, "clustering": {"k": 2, "seed": 0}, **extra}, base_dir=tmp_path)


# --- synthetic: what the aligned pixels must be ---------------------------------------------------
def ramp(h, w, t):
    """A float32 band equal to a linear function of map x, y (bilinear reproduces it exactly)."""
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = t * (cols, rows)
    return (0.01 * (x - 500000) + 0.02 * (5200000 - y) + 5).astype(np.float32)


def test_shifted_date_is_interpolated_not_shifted(make_tif):
    ref_t = Affine(5, 0, 500000, 0, -5, 5200000)
    src_t = Affine(5, 0, 499999, 0, -5, 5199998)  # 1 m west, 2 m south, one row fewer
    make_tif("ref.tif", ramp(40, 50, ref_t), ref_t, UTM, nodata=-9999)
    p = make_tif("src.tif", ramp(39, 50, src_t), src_t, UTM, nodata=-9999)
    ref = Grid((40, 50), ref_t, UTM)
    src = open_geotiff(p, custom_profile({"red": 1}), D2)
    with src.open(ref, "bilinear") as rd:
        bands, valid = rd.read()
    truth = ramp(40, 50, ref_t)
    # ref row 39 (centre 5199802.5) is south of the source's last row edge (5199803): unobserved
    assert valid[:39].all() and not valid[39].any()
    # interior: bilinear of a linear field is exact; edges clamp to the outermost source pixel
    np.testing.assert_allclose(bands["red"][1:39, :49], truth[1:39, :49], atol=1e-3)
    assert np.abs(bands["red"][valid] - truth[valid]).max() < 0.01 * 5 + 0.02 * 5  # at most one pixel's step
    with src.open(ref, "nearest") as rd:
        near, _ = rd.read()
    # nearest: ref centre (c + 0.5) * 5 - 0 maps to source column c (0.2 px off), row r - 0.4 -> r
    src_arr = ramp(39, 50, src_t)
    np.testing.assert_array_equal(near["red"][:39], src_arr)


def test_qa_layers_are_read_nearest_whatever_the_band_resampling(make_tif):
    ref_t = Affine(5, 0, 500000, 0, -5, 5200000)
    src_t = Affine(5, 0, 500002, 0, -5, 5200001.5)  # 0.4 px east, 0.3 px north
    band = np.full((20, 20), 100, np.uint16)
    qa = np.zeros((20, 20), np.uint16)
    qa[5:10, 5:10] = 8  # bit 3 set
    qa[12:15, 12:15] = 3
    pb = make_tif("b.tif", band, src_t, UTM)
    pq = make_tif("qa.tif", qa, src_t, UTM)
    seen: list[np.ndarray] = []

    def decoder(q):
        seen.append(np.unique(q))
        return (q & 8) > 0

    src = SceneSource(D2, custom_profile({"red": 1}), {"red": (str(pb), 1)}, Grid((20, 20), src_t, UTM),
                      qa_layer=(str(pq), 1), qa_decoder=decoder)
    with src.open(Grid((20, 20), ref_t, UTM), "bilinear") as rd:
        _, valid = rd.read()
    values = set(np.concatenate(seen).tolist())
    assert values <= {0, 3, 8}  # no blended bit fields such as 1, 2, 4, 5, 6, 7
    assert (~valid).sum() == 25  # the 5 x 5 flagged block, moved by whole pixels only


def test_dates_that_do_not_overlap_are_one_clear_error(tmp_path, make_tif):
    a = make_tif("a.tif", lake_scene(), Affine(10, 0, 500000, 0, -10, 5200000), UTM, nodata=0)
    b = make_tif("far.tif", lake_scene(), Affine(10, 0, 600000, 0, -10, 5200000), UTM, nodata=0)
    with pytest.raises(NoOverlapError) as e:
        run(_cfg(tmp_path, [a, b]), write=False)
    msg = str(e.value)
    assert "\n" not in msg and str(b) in msg and "2021-01-01" in msg and "does not overlap" in msg


def test_dates_in_another_crs_that_do_not_overlap(tmp_path, make_tif):
    a = make_tif("a.tif", lake_scene(), Affine(10, 0, 500000, 0, -10, 5200000), UTM, nodata=0)
    b = make_tif("b.tif", lake_scene(), Affine(0.001, 0, 10.0, 0, -0.001, 50.0), "EPSG:4326", nodata=0)
    with pytest.raises(NoOverlapError, match="far|b.tif"):
        run(_cfg(tmp_path, [a, b]), write=False)


def test_partial_overlap_is_reported_and_unobserved(tmp_path, make_tif, caplog):
    img = lake_scene(20, 20, (slice(5, 10), slice(2, 8)))
    a = make_tif("a.tif", img, Affine(10, 0, 500000, 0, -10, 5200000), UTM, nodata=0)
    b = make_tif("b.tif", img[:, :, :], Affine(10, 0, 500100, 0, -10, 5200000), UTM, nodata=0)  # half east
    with caplog.at_level(logging.WARNING, logger="rs_change.readers"):
        s = run(_cfg(tmp_path, [a, b]), write=False).summary
    assert "covers 50.0% of the reference grid" in caplog.text
    d0, d1 = s["dates"]
    assert d0["overlap_fraction"] == 1.0 and d1["overlap_fraction"] == 0.5
    assert d1["unobserved_pixels"] == 200 and d1["observed_pixels"] == 200
    assert s["change"]["unobserved_pixels"] == 200
    # the lake of date 1 lies in the unobserved half of date 2: not "lost", left out
    assert s["change"]["lost_pixels"] == 0 and d0["water_pixels"] == 30


# --- another CRS / resolution for the reference grid ------------------------------------------
@pytest.fixture
def round_lake(make_tif):
    h = w = 120
    yy, xx = np.mgrid[:h, :w]
    lake = (yy - 60.0) ** 2 + (xx - 60.0) ** 2 < 40.0**2
    rng = np.random.default_rng(0)
    img = np.where(lake[None], np.array([30, 60, 70, 20])[:, None, None], np.array([90, 110, 80, 180])[:, None, None])
    img = np.clip(img + rng.integers(-4, 5, img.shape), 1, 255).astype(np.uint8)
    t = Affine(10, 0, 480000, 0, -10, 5210000)
    return make_tif("lake.tif", img, t, UTM, nodata=0), int(lake.sum())


@pytest.mark.parametrize(
    "grid, naive_factor",
    [
        ({"crs": "EPSG:3857", "resolution": 10.0}, 2.15),  # Web Mercator metres at 47 N: sec^2 ~ 2.15
        ({"crs": "EPSG:4326", "resolution": 0.0001}, None),
        ({"crs": "EPSG:6933", "resolution": 7.0}, 1.0),
        ({"resolution": 7.0}, 1.0),  # same CRS, finer pixels
    ],
)
def test_reference_grid_in_another_crs_gives_the_same_area(tmp_path, round_lake, grid, naive_factor):
    """The lake read onto grid.crs / grid.resolution (bilinear bands, NIR threshold) keeps its m2."""
    path, lake_px = round_lake
    cfg = _cfg(tmp_path, [path], grid=grid)
    src = build_source(cfg.scenes[0], cfg)
    native = mask_area(np.ones((120, 120), bool), src.grid.transform, src.grid.crs) * lake_px / 120**2
    ref = reference_grid(cfg, [src])
    if "crs" in grid:
        assert ref.crs.to_epsg() == int(grid["crs"].split(":")[1])
    assert ref.res[0] == pytest.approx(grid["resolution"], rel=1e-6)
    with src.open(ref, "bilinear") as rd:
        bands, valid = rd.read()
    water = valid & (bands["nir"] < 100)  # land NIR ~180, water ~20: the 50% contour
    area = mask_area(water, ref.transform, ref.crs)
    assert area == pytest.approx(native, rel=0.01)  # a 5 km2 lake, edge pixels split by the new grid
    observed = mask_area(valid, ref.transform, ref.crs)
    assert observed == pytest.approx(1.2e3 * 1.2e3 / 0.9996**2, rel=0.01)  # the 1.2 x 1.2 km scene
    if naive_factor is not None:  # pixel count x res^2 would be off by the projection's scale
        assert water.sum() * grid["resolution"] ** 2 / area == pytest.approx(naive_factor, rel=0.01)


def test_run_on_a_web_mercator_grid_reports_ground_km2(tmp_path, round_lake):
    path, lake_px = round_lake
    # nearest: this test is about ground area in another CRS; with bilinear the lake's blended
    # edge pixels are decided by the labelling rule's thresholds (about half of them fail it)
    res = run(_cfg(tmp_path, [path], grid={"crs": "EPSG:3857", "resolution": 10.0, "resampling": "nearest"}), write=False)
    d = res.summary["dates"][0]
    native_km2 = lake_px * 100 / 0.99960**2 / 1e6  # near the central meridian of zone 14
    assert res.summary["grid"]["crs"] == "EPSG:3857"
    assert d["water_km2"] == pytest.approx(native_km2, rel=0.01)
    assert d["water_pixels"] * 1e-4 / d["water_km2"] == pytest.approx(2.15, rel=0.01)


def test_reference_date_can_be_the_later_one(tmp_path, make_tif):
    a = make_tif("a.tif", lake_scene(), Affine(10, 0, 500000, 0, -10, 5200000), UTM, nodata=0)
    b = make_tif("b.tif", lake_scene(), Affine(10, 0, 500003, 0, -10, 5200001), UTM, nodata=0)
    cfg = _cfg(tmp_path, [a, b], grid={"reference": "2021-01-01"})
    ref = reference_grid(cfg, [build_source(s, cfg) for s in cfg.scenes])
    assert ref.transform == Affine(10, 0, 500003, 0, -10, 5200001)


def test_bad_grid_crs_is_a_config_error(tmp_path, make_tif):
    a = make_tif("a.tif", lake_scene(), Affine(10, 0, 500000, 0, -10, 5200000), UTM, nodata=0)
    with pytest.raises(ConfigError, match="grid.crs"):
        run(_cfg(tmp_path, [a], grid={"crs": "EPSG:999999"}), write=False)


# --- the NAIP sample: 1-3 m shifts, 723 vs 724 rows ------------------------------------------------
NAIP = {d: SAMPLE / "naip" / f"m_4709963_se_14_1_{d}.tif" for d in ("20090818", "20140720", "20200831")}


@pytest.fixture(scope="module")
def naip_cfg():
    scenes = [{"date": f"{d[:4]}-{d[4:6]}-{d[6:]}", "path": str(p), "sensor": "naip"} for d, p in NAIP.items()]
    return RunConfig.from_dict({"scenes": scenes, "clustering": {"k": 3, "seed": 0, "sample_size": 20000}})


def test_naip_dates_on_one_grid_by_interpolation(naip_cfg):
    sources = [build_source(s, naip_cfg) for s in naip_cfg.scenes]
    ref = reference_grid(naip_cfg, sources)
    assert ref.same_as(sources[0].grid) and ref.shape == (724, 934)
    for src in sources[1:]:
        assert check_overlap(src, ref) > 0.99
        with src.open(ref, "bilinear") as rd:
            bands, valid = rd.read()
        assert bands["red"].shape == ref.shape
        # only ref row 723 (centre 5205629.5) lies outside these 723-row footprints
        assert not valid[723].any() and valid[:723].all()
        # every observed pixel is the bilinear interpolation (clamped at the edges) of the source
        with rasterio.open(src.layers["red"][0]) as ds:
            raw = ds.read(1).astype(np.float64)
        st, rt = src.grid.transform, ref.transform
        sr = np.clip(np.arange(724) + 0.5 + (st.f - rt.f) / 5 - 0.5, 0, raw.shape[0] - 1)
        sc = np.clip(np.arange(934) + 0.5 + (rt.c - st.c) / 5 - 0.5, 0, raw.shape[1] - 1)
        assert 0 < max(abs(st.f - rt.f), abs(rt.c - st.c)) <= 3  # the sample's shifts, in metres
        r0 = np.minimum(np.floor(sr).astype(int), raw.shape[0] - 2)
        c0 = np.minimum(np.floor(sc).astype(int), raw.shape[1] - 2)
        tr, tc = (sr - r0)[:, None], (sc - c0)[None, :]
        interp = (raw[r0][:, c0] * (1 - tr) * (1 - tc) + raw[r0 + 1][:, c0] * tr * (1 - tc)
                  + raw[r0][:, c0 + 1] * (1 - tr) * tc + raw[r0 + 1][:, c0 + 1] * tr * tc)
        assert np.abs(bands["red"][valid] - interp[valid]).max() <= 0.5 + 1e-6  # uint8 rounding


def test_naip_change_map_has_no_edge_stripes(naip_cfg):
    cfg = naip_cfg.model_copy(update={"scenes": [naip_cfg.scenes[0], naip_cfg.scenes[2]]})
    sources = [build_source(s, cfg) for s in cfg.scenes]
    ref = reference_grid(cfg, sources)
    models = [fit_date(s, ref, None, cfg.clustering, cfg.labelling, cfg.grid.resampling) for s in sources]
    br = process_block((0, 0, ref.height, ref.width), ref, models, None, "bilinear")
    ch = br.change
    # unobserved: exactly the one ref row whose centres are outside the 2020 footprint
    unobs = ch == 255
    assert unobs[723].all() and unobs.sum() == ref.width
    m2020 = br.water[1]
    assert (m2020[723] == 255).all() and (m2020[:723] != 255).all()

    def frac(sel):
        return {c: float(np.mean(sel == c)) for c in (0, 1, 2, 3)}

    # the outermost observed rows and the last column look like their neighbours (no stripe of
    # gained/lost/unobserved from the shifts); column 0 is left out: both raw files have a
    # brighter first column (their own clip edge), see docs/area.md
    for edge, inner in ((ch[0], ch[1:6]), (ch[722], ch[717:722]), (ch[:723, -1], ch[:723, -6:-1])):
        fe, fi = frac(edge), frac(inner)
        for c in (0, 1, 2, 3):
            assert abs(fe[c] - fi[c]) < 0.1, (c, fe, fi)
