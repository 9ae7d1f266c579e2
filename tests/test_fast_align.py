"""The translation-only fast path of WindowReader (numpy shift instead of a GDAL warped VRT) gives
GDAL's pixels: synthetic ramps, whole-pixel shifts, footprint edges, nodata holes, the NAIP sample."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from affine import Affine

from rs_change.grid import Grid
from rs_change.readers import WindowReader, open_geotiff, translation_offset
from rs_change.sensors import custom_profile, get_profile

from .conftest import SAMPLE

UTM = "EPSG:32614"
D = dt.date(2021, 1, 1)
REF_T = Affine(5, 0, 500000, 0, -5, 5200000)
REF = Grid((40, 50), REF_T, UTM)


def ramp(h, w, t, bands=2):
    """Linear functions of map x, y (bilinear reproduces them exactly), one per band."""
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = t * (cols, rows)
    return np.stack([(0.01 * (b + 1) * (x - 500000) + 0.02 * (5200000 - y) + 5) for b in range(bands)]).astype(np.float32)


def both(src, ref, resampling, windows):
    """(fast, warped VRT) reads of every window."""
    out = []
    for fast in (True, False):
        with WindowReader(src, ref, resampling, fast=fast) as rd:
            out.append([rd.read(*w) for w in windows])
    return out


WINDOWS = [(0, 0, 40, 50), (0, 0, 16, 16), (16, 32, 24, 18), (35, 45, 5, 5), (7, 3, 1, 1)]


@pytest.mark.parametrize("resampling", ["bilinear", "nearest"])
@pytest.mark.parametrize("shift", [(1.0, 2.0), (-3.5, 0.7), (2.2, -1.1), (12.0, 3.9)])
def test_fast_path_equals_warped_vrt_on_a_ramp(make_tif, resampling, shift):
    dx, dy = shift  # metres; the pixel is 5 m
    st = Affine(5, 0, 500000 + dx, 0, -5, 5200000 + dy)
    p = make_tif("s.tif", ramp(39, 48, st), st, UTM, nodata=-9999)
    src = open_geotiff(p, custom_profile({"red": 1, "nir": 2}), D)
    assert translation_offset(src.grid, REF) is not None
    fast, slow = both(src, REF, resampling, WINDOWS)
    for (bf, vf), (bs, vs) in zip(fast, slow):
        np.testing.assert_array_equal(vf, vs)
        assert vf.any()
        for k in ("red", "nir"):
            np.testing.assert_allclose(bf[k][vf], bs[k][vf], atol=1e-3)


def test_outside_the_footprint_is_unobserved(make_tif):
    # 2.4 px east and 1.2 px south: ref columns 0-1 (centres < 12 m east of the ref's left edge),
    # ref row 0 (centre 2.5 m below the ref's top, the source starts 6 m below) and rows 38-39 lie outside
    st = Affine(5, 0, 500012, 0, -5, 5199994)
    p = make_tif("s.tif", ramp(37, 50, st, 1), st, UTM)  # no nodata: footprint only
    src = open_geotiff(p, custom_profile({"red": 1}), D)
    with WindowReader(src, REF, "bilinear") as rd:
        _, valid = rd.read()
    # column c centre 5c + 2.5 m >= 12 m from c = 2; row r centre 5r + 2.5 m within [6, 6 + 185) m
    # below the ref's top (the source's 37 rows) for r = 1 .. 37
    expected = np.zeros((40, 50), bool)
    expected[1:38, 2:] = True
    np.testing.assert_array_equal(valid, expected)
    _, vs = both(src, REF, "bilinear", [(0, 0, 40, 50)])[1][0]
    np.testing.assert_array_equal(valid, vs)
    with WindowReader(src, REF, "bilinear") as rd:  # a window entirely outside
        b, v = rd.read(0, 0, 10, 2)
    assert not v.any() and b["red"].shape == (10, 2)


def test_whole_pixel_shift_is_an_exact_pick(make_tif):
    rng = np.random.default_rng(1)
    arr = rng.integers(1, 250, (3, 40, 50)).astype(np.uint8)
    st = Affine(5, 0, 500010, 0, -5, 5200015)  # 2 px east, 3 px north
    p = make_tif("s.tif", arr, st, UTM, nodata=0)
    src = open_geotiff(p, custom_profile({"red": 1, "green": 2, "nir": 3}), D)
    assert translation_offset(src.grid, REF) == (3.0, -2.0)
    for res in ("bilinear", "nearest"):
        with WindowReader(src, REF, res) as rd:
            bands, valid = rd.read()
        # ref (r, c) is source (r + 3, c - 2)
        np.testing.assert_array_equal(valid, np.pad(np.ones((37, 48), bool), ((0, 3), (2, 0))))
        for i, k in enumerate(("red", "green", "nir")):
            np.testing.assert_array_equal(bands[k][:37, 2:], arr[i, 3:, :48].astype(np.float32))


def test_nodata_hole_matches_gdal(make_tif):
    """A nodata hole: neighbours that are nodata in every band are left out (weights renormalised);
    a real 0 in one band only is data, as in GDAL's warper."""
    rng = np.random.default_rng(2)
    arr = rng.integers(1, 250, (2, 40, 50)).astype(np.uint8)
    arr[:, 10:15, 20:30] = 0  # hole in both bands
    arr[1, 25:28, 5:8] = 0  # real zeros in band 2 only
    st = Affine(5, 0, 500003, 0, -5, 5200001.5)  # 0.6 px east, 0.3 px north
    p = make_tif("s.tif", arr, st, UTM, nodata=0)
    src = open_geotiff(p, custom_profile({"red": 1, "nir": 2}), D)
    (fast,), (slow,) = both(src, REF, "bilinear", [(0, 0, 40, 50)])
    np.testing.assert_array_equal(fast[1], slow[1])
    hole = ~fast[1][9:16, 19:30]
    assert 10 <= hole.sum() <= 5 * 10  # the hole is unobserved, its rim is renormalised
    for k in ("red", "nir"):
        d = np.abs(fast[0][k][fast[1]] - slow[0][k][fast[1]])
        # GDAL's masked kernel (taken when the source has nodata) rounds some blends 1 DN lower
        assert d.max() <= 1 and np.mean(d == 0) > 0.95


NAIP = {d: SAMPLE / "naip" / f"m_4709963_se_14_1_{d}.tif" for d in ("20090818", "20140720", "20200831")}


@pytest.mark.parametrize("date", ["20140720", "20200831"])
@pytest.mark.parametrize("resampling", ["bilinear", "nearest"])
def test_naip_sample_fast_path_equals_warped_vrt(date, resampling):
    prof = get_profile("naip")
    ref = open_geotiff(NAIP["20090818"], prof, dt.date(2009, 8, 18)).grid
    src = open_geotiff(NAIP[date], prof, dt.date(int(date[:4]), 1, 1))
    off = translation_offset(src.grid, ref)
    assert off is not None and off != (0.0, 0.0)
    windows = [(0, 0, 724, 934), (256, 512, 256, 256), (700, 900, 24, 34)]
    fast, slow = both(src, ref, resampling, windows)
    for (bf, vf), (bs, vs) in zip(fast, slow):
        np.testing.assert_array_equal(vf, vs)
        for k in bf:
            assert np.abs(bf[k][vf] - bs[k][vf]).max() <= 1e-3


def test_other_grids_are_not_translations():
    t = Affine(5, 0, 500001, 0, -5, 5200000)
    assert translation_offset(Grid((10, 10), t, UTM), REF) == pytest.approx((0.0, -0.2))
    assert translation_offset(Grid((10, 10), Affine(10, 0, 500000, 0, -10, 5200000), UTM), REF) is None
    assert translation_offset(Grid((10, 10), t, "EPSG:32615"), REF) is None
    assert translation_offset(Grid((10, 10), Affine(5, 0.1, 500000, 0, -5, 5200000), UTM), REF) is None


@pytest.mark.parametrize("overviews", [False, True])
def test_decimated_read_of_a_file_on_the_grid_equals_gdals(make_tif, overviews):
    """Pass 1's decimated read of a date on the reference grid: strip by strip (every tile decoded
    once) when the file has no overviews, GDAL's own decimated read (from the overviews) when it
    has; the same pixels as GDAL's at the integer-step shapes pass 1 uses."""
    import math

    import rasterio
    from rasterio.enums import Resampling

    rng = np.random.default_rng(4)
    h, w = 203, 317
    arr = rng.integers(1, 255, (4, h, w), dtype=np.uint8)
    t = Affine(1, 0, 500000, 0, -1, 5200000)
    path = make_tif("g.tif", arr, t, UTM, tiled=True, blockxsize=64, blockysize=64)
    if overviews:
        with rasterio.open(path, "r+") as ds:
            ds.build_overviews([2, 4], Resampling.nearest)
    src = open_geotiff(path, get_profile("naip"), D)
    grid = Grid((h, w), t, UTM)
    for step in (2, 3, 5, 7, 10):
        shape = (math.ceil(h / step), math.ceil(w / step))
        with WindowReader(src, grid, "bilinear") as rd:
            raws, valid = rd.read_raw(out_shape=shape)
        with rasterio.open(path) as ds:
            want = ds.read(out_shape=(4,) + shape, resampling=Resampling.nearest)
        assert valid.all()
        for i, role in enumerate(("red", "green", "blue", "nir")):
            np.testing.assert_array_equal(raws[role], want[i])
