"""Pixel and mask areas against geodesic truth (pyproj.Geod on WGS 84), for every CRS family.

The reference for a block of pixels is the geodesic area of its boundary, densified in pixel
coordinates (so that straight map edges stay straight), taken to geodetic lon/lat by pyproj and
measured with :meth:`pyproj.Geod.polygon_area_perimeter`.  That is independent of
``rs_change.area`` (which works per pixel, in 3-D on the ellipsoid).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from pyproj import CRS, Geod, Transformer

from rs_change import mask_area, pixel_area

GEOD = Geod(ellps="WGS84")
MODIS_SIN = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_RES = 463.312716528  # 500 m MODIS land grid


def geodesic_block_area(crs, transform, rows, cols, n=400):
    """WGS 84 geodesic area (m2) of the pixel block rows[0]:rows[1], cols[0]:cols[1]."""
    r0, r1 = rows
    c0, c1 = cols
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    cs = np.concatenate([c0 + (c1 - c0) * t, np.full(n, c1), c1 - (c1 - c0) * t, np.full(n, c0)])
    rs = np.concatenate([np.full(n, r0), r0 + (r1 - r0) * t, np.full(n, r1), r1 - (r1 - r0) * t])
    x = transform.a * cs + transform.b * rs + transform.c
    y = transform.d * cs + transform.e * rs + transform.f
    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        lon, lat = x, y
    else:
        lon, lat = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(x, y)
    area, _ = GEOD.polygon_area_perimeter(lon, lat)
    return abs(area)


def grid_at(crs, lon, lat, res, rotation=0.0):
    """A north-up (or rotated) transform whose top-left corner is at (lon, lat)."""
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return Affine.translation(x, y) * Affine.rotation(rotation) * Affine.scale(res, -res)


# --- geographic ---------------------------------------------------------------------------------
@pytest.mark.parametrize("lat", [0.0, 23.5, 45.0, 60.0, 80.0, 89.0, -37.0])
def test_one_degree_cells_match_geod(lat):
    a = pixel_area(Affine(1.0, 0, 30.0, 0, -1.0, lat + 1.0), "EPSG:4326", (1, 1))
    truth = geodesic_block_area("EPSG:4326", Affine(1.0, 0, 30.0, 0, -1.0, lat + 1.0), (0, 1), (0, 1), n=2000)
    assert a.shape == (1, 1)
    assert a[0, 0] == pytest.approx(truth, rel=1e-6)


def test_geographic_rows_shrink_with_latitude_and_broadcast():
    t = Affine(0.1, 0, 10.0, 0, -0.1, 60.0)
    a = pixel_area(t, "EPSG:4326", (300, 50))
    assert a.shape == (300, 1)
    assert np.all(np.diff(a[:, 0]) > 0)  # southwards (down the rows) pixels grow
    # area element of the ellipsoid: M N cos(lat) ~ cos(lat) / (1 - e2 sin^2 lat)^2
    e2 = 0.00669437999014

    def element(lat):
        p = math.radians(lat)
        return math.cos(p) / (1 - e2 * math.sin(p) ** 2) ** 2

    assert a[-1, 0] / a[0, 0] == pytest.approx(element(30.05) / element(59.95), rel=1e-5)


def test_geographic_in_grads_uses_the_axis_unit():
    grads = CRS.from_wkt(CRS.from_epsg(4326).to_wkt().replace('ANGLEUNIT["degree",0.0174532925199433]', 'ANGLEUNIT["grad",0.015707963267949]'))
    assert grads.axis_info[0].unit_name == "grad"
    a = pixel_area(Affine(1.0, 0, 0.0, 0, -1.0, 50.0), grads, (1, 1))  # 1 grad = 0.9 degree
    truth = pixel_area(Affine(0.9, 0, 0.0, 0, -0.9, 45.0), "EPSG:4326", (1, 1))
    assert a[0, 0] == pytest.approx(truth[0, 0], rel=1e-9)


# --- one lake, many CRSs -----------------------------------------------------------------------
LAKE = (slice(10, 90), slice(20, 70))  # a block of 80 x 50 pixels


@pytest.mark.parametrize(
    "crs, res, expect_res2_error",
    [
        ("EPSG:32614", 30.0, (-0.0009, -0.0006)),  # UTM 14N near lon -98.9: scale ~0.99962
        ("EPSG:3857", 30.0, (1.14, 1.16)),  # Web Mercator at 47 N: sec^2 = 2.15
        (MODIS_SIN, MODIS_RES, (-0.003, -0.002)),  # sphere res^2 vs WGS 84 at 47 N: -0.25%
        ("EPSG:6933", 30.0, (-1e-6, 1e-6)),  # EASE-Grid 2.0, equal area on WGS 84
    ],
)
def test_same_lake_in_several_crs_matches_geodesic_area(crs, res, expect_res2_error):
    t = grid_at(crs, -98.9, 47.05, res)
    m = np.zeros((100, 100), bool)
    m[LAKE] = True
    area = mask_area(m, t, crs)
    truth = geodesic_block_area(crs, t, (10, 90), (20, 70))
    assert area == pytest.approx(truth, rel=1e-6)
    # and res x res would have been wrong by a known amount in all but the equal-area grid
    naive = m.sum() * res * res
    lo, hi = expect_res2_error
    assert lo < naive / truth - 1 < hi


def test_same_ground_footprint_gives_same_m2_in_utm_mercator_and_sinusoidal():
    """One lake polygon (lon/lat), rasterised on three grids; areas agree to the pixel edges."""
    import shapely
    from rasterio.features import geometry_mask
    from shapely.geometry import Point

    lake_ll = Point(-98.9, 47.05).buffer(0.05, quad_segs=64)  # ~ 7.6 x 11 km ellipse
    truth = abs(GEOD.geometry_area_perimeter(lake_ll)[0])
    areas = {}
    for crs, res in (("EPSG:32614", 20.0), ("EPSG:3857", 30.0), (MODIS_SIN, 20.0)):
        fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        poly = shapely.transform(lake_ll.segmentize(0.001), fwd.transform, interleaved=False)
        minx, miny, maxx, maxy = poly.bounds
        t = Affine(res, 0, minx - 5 * res, 0, -res, maxy + 5 * res)
        shape = (int((maxy - miny) / res) + 10, int((maxx - minx) / res) + 10)
        m = geometry_mask([poly], out_shape=shape, transform=t, invert=True)
        areas[crs] = mask_area(m, t, crs)
    for crs, a in areas.items():  # pixel-centre rasterisation of a 66 km2 lake: measured 0.6-1.4e-4
        assert a == pytest.approx(truth, rel=1e-3), crs


def test_modis_sinusoidal_ground_auto_vs_crs_sphere():
    """auto = WGS 84 area of the cell's lat/lon quadrangle; crs = res x res on the sphere."""
    ratios = {}
    for lat in (0.0, 35.26, 45.0, 60.0):
        t = grid_at(MODIS_SIN, 10.0, lat, MODIS_RES)
        auto = pixel_area(t, MODIS_SIN, (1, 1))[0, 0]
        sphere = pixel_area(t, MODIS_SIN, (1, 1), ground="crs")[0, 0]
        assert sphere == pytest.approx(MODIS_RES**2, rel=1e-7)
        assert auto == pytest.approx(geodesic_block_area(MODIS_SIN, t, (0, 1), (0, 1), n=50), rel=1e-6)
        ratios[lat] = auto / sphere - 1
    # (a/R)^2 (1 - e2) / (1 - e2 sin^2 lat)^2 - 1, evaluated at the cell centre
    assert ratios[0.0] == pytest.approx(-0.00447, abs=5e-5)
    assert abs(ratios[35.26]) < 1e-4
    assert ratios[45.0] == pytest.approx(0.00223, abs=5e-5)
    assert ratios[60.0] == pytest.approx(0.00560, abs=5e-5)


def test_modis_tile_sum_matches_geod_boundary():
    # tile h23v04 (Aral Sea), 2400 x 2400 cells
    tile = 1111950.519667
    t = Affine(MODIS_RES, 0, 23 * tile - 20015109.354, 0, -MODIS_RES, 10007554.677 - 4 * tile)
    a = pixel_area(t, MODIS_SIN, (2400, 2400))
    assert a.shape == (2400, 1)  # equal-area on the sphere: constant along rows
    total = float(a.sum()) * 2400
    assert total == pytest.approx(geodesic_block_area(MODIS_SIN, t, (0, 2400), (0, 2400), n=4000), rel=1e-6)


def test_equal_area_projection_is_res_squared():
    t = grid_at("EPSG:6933", 20.0, 50.0, 1000.0)
    a = pixel_area(t, "EPSG:6933", (500, 400))
    np.testing.assert_allclose(a, 1e6, rtol=1e-7)


# --- UTM scale factor ----------------------------------------------------------------------------
def test_utm_scale_factor_is_corrected():
    crs = "EPSG:32633"  # central meridian 15 E
    on_cm = pixel_area(Affine(10, 0, 500000, 0, -10, 5000000), crs, (1, 1))[0, 0]
    # scale 0.9996 on the central meridian: ground = res^2 / 0.9996^2
    assert on_cm == pytest.approx(100 / 0.9996**2, rel=2e-6)
    off = pixel_area(Affine(10, 0, 280000, 0, -10, 5000000), crs, (1, 1))[0, 0]  # 220 km west
    assert off < 100.0  # k > 1 there: the map pixel is larger than the ground
    assert off == pytest.approx(geodesic_block_area(crs, Affine(10, 0, 280000, 0, -10, 5000000), (0, 1), (0, 1), n=10), rel=1e-7)


def test_utm_wide_scene_varies_along_rows():
    t = Affine(30, 0, 200000, 0, -30, 5300000)
    a = pixel_area(t, "EPSG:32614", (400, 6000))  # 180 km wide: scale changes across the scene
    assert a.shape == (400, 6000)
    assert a[0, 0] < a[0, -1]
    assert float(a.sum()) == pytest.approx(geodesic_block_area("EPSG:32614", t, (0, 400), (0, 6000), n=3000), rel=1e-6)


# --- feet, rotation, shear -----------------------------------------------------------------------
def test_state_plane_us_survey_feet():
    crs = CRS.from_epsg(2227)  # NAD83 / California zone 3 (ftUS)
    assert "US survey foot" in crs.axis_info[0].unit_name
    t = grid_at(crs, -122.0, 37.5, 3.0)  # 3 ftUS pixels
    m = np.zeros((300, 300), bool)
    m[50:250, 20:280] = True
    area = mask_area(m, t, crs)
    truth = geodesic_block_area(crs, t, (50, 250), (20, 280))
    assert area == pytest.approx(truth, rel=1e-6)
    # order of magnitude check: 3 ftUS = 0.9144018 m, scale factor of the zone near 1
    assert area == pytest.approx(m.sum() * (3 * 1200 / 3937) ** 2, rel=1e-3)


def test_us_survey_feet_are_not_international_feet():
    """Same zone, same place, 1000-unit pixels: areas differ by (0.3048 / (1200/3937))^2."""
    proj = (  # EPSG:2227, NAD83 / California zone 3 (ftUS), as a PROJ string
        "+proj=lcc +lat_0=36.5 +lon_0=-120.5 +lat_1=38.4333333333333 +lat_2=37.0666666666667 "
        "+x_0=2000000.0001016 +y_0=500000.0001016 +ellps=GRS80 +units=us-ft +no_defs"
    )
    ftus, ft = CRS.from_proj4(proj), CRS.from_proj4(proj.replace("+units=us-ft", "+units=ft"))
    a_us = pixel_area(grid_at(ftus, -122.0, 37.5, 1000.0), ftus, (1, 1))[0, 0]
    a_ft = pixel_area(grid_at(ft, -122.0, 37.5, 1000.0), ft, (1, 1))[0, 0]
    assert a_us / a_ft == pytest.approx((1200 / 3937 / 0.3048) ** 2, rel=1e-9)
    assert a_us / a_ft - 1 == pytest.approx(4e-6, rel=0.01)


@pytest.mark.parametrize("angle", [15.0, 30.0, 90.0, -45.0])
def test_rotated_transform_utm(angle):
    t = grid_at("EPSG:32614", -99.0, 47.0, 5.0, rotation=angle)
    m = np.zeros((200, 300), bool)
    m[20:180, 30:270] = True
    area = mask_area(m, t, "EPSG:32614")
    assert area == pytest.approx(geodesic_block_area("EPSG:32614", t, (20, 180), (30, 270)), rel=1e-6)


def test_rotated_and_sheared_geographic_and_mercator():
    t = Affine.translation(10, 50) * Affine.rotation(10) * Affine.scale(0.01, -0.01)
    a = pixel_area(t, "EPSG:4326", (300, 400))
    assert a.shape == (300, 400)
    assert float(a.sum()) == pytest.approx(geodesic_block_area("EPSG:4326", t, (0, 300), (0, 400), n=2000), rel=1e-6)
    sheared = Affine(800, 120, 6345211.0, 60, -800, 5946516.9)
    m = np.ones((100, 100), bool)
    assert mask_area(m, sheared, "EPSG:3857") == pytest.approx(
        geodesic_block_area("EPSG:3857", sheared, (0, 100), (0, 100)), rel=1e-6
    )


def test_polar_stereographic_grid_containing_the_pole():
    t = Affine(100, 0, -100000, 0, -100, 100000)  # EPSG:3031, the South Pole at the centre corner
    a = pixel_area(t, "EPSG:3031", (2000, 2000))
    assert np.all(np.isfinite(a)) and np.all(a > 0)
    assert float(a.sum()) == pytest.approx(geodesic_block_area("EPSG:3031", t, (0, 2000), (0, 2000), n=3000), rel=1e-6)


def test_antimeridian_crossing_pixels():
    t = Affine(0.5, 0, 179.0, 0, -0.5, 10.0)  # columns beyond 180 E
    a = pixel_area(t, "EPSG:4326", (4, 4))
    b = pixel_area(Affine(0.5, 0, 0.0, 0, -0.5, 10.0), "EPSG:4326", (4, 4))
    np.testing.assert_allclose(a, b, rtol=1e-12)
    utm = "EPSG:32660"  # zone 60, east edge reaches past 180
    t2 = grid_at(utm, 179.9, -16.0, 100.0)
    m = np.ones((50, 50), bool)
    assert mask_area(m, t2, utm) == pytest.approx(geodesic_block_area(utm, t2, (0, 50), (0, 50)), rel=1e-6)


# --- mask_area semantics -------------------------------------------------------------------------
def test_mask_area_uint8_counts_only_ones():
    t = Affine(10, 0, 500000, 0, -10, 5200000)
    m = np.array([[1, 0, 255], [1, 1, 255]], np.uint8)
    one = pixel_area(t, "EPSG:32614", (2, 3))
    expect = float(np.broadcast_to(one, (2, 3))[m == 1].sum())
    assert mask_area(m, t, "EPSG:32614") == pytest.approx(expect, rel=1e-12)
    assert mask_area(np.zeros((2, 3), bool), t, "EPSG:32614") == 0.0


def test_pixel_area_broadcasts_against_masks():
    t = Affine(825.8121661721074, 0.0, 6345211.0, 0.0, -826.2305989583341, 5946516.9)  # the Aral files
    a = pixel_area(t, "EPSG:3857", (768, 674))
    assert a.shape == (768, 1)
    assert (np.ones((768, 674)) * a).shape == (768, 674)
    # Web Mercator pixels of 826 m are 0.32-0.36 km2 on the ground (sec^2 of 43..47 N)
    assert 0.31e6 < a.min() < a.max() < 0.37e6


# --- the Aral Sea sample (configs/modis_aral.yaml) -------------------------------------------------
def test_modis_aral_water_km2_is_the_geodesic_area_of_its_water_pixels(tmp_path):
    """The pipeline's water km2 against pyproj.Geod areas of the same water pixels, one by one."""
    import rasterio

    from rs_change.config import RunConfig
    from rs_change.pipeline import run

    from .conftest import CONFIGS

    cfg = RunConfig.from_yaml(CONFIGS / "modis_aral.yaml")
    quick = {k: False for k in ("polygons", "report") if k in type(cfg.output).model_fields}  # rasters only
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update=quick)})
    res = run(cfg, output_dir=tmp_path, write=True)
    tr = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    for d in res.summary["dates"]:
        with rasterio.open(tmp_path / f"water_{d['date']}.tif") as ds:
            water = ds.read(1) == 1
            t, crs = ds.transform, ds.crs
        assert crs.to_epsg() == 3857 and water.sum() == d["water_pixels"] > 1000
        rows, cols = np.nonzero(water)
        corners = [(0, 0), (1, 0), (1, 1), (0, 1)]
        xs = np.stack([t.c + t.a * (cols + dc) for dc, _ in corners])
        ys = np.stack([t.f + t.e * (rows + dr) for _, dr in corners])
        lon, lat = tr.transform(xs, ys)
        geodesic = sum(abs(GEOD.polygon_area_perimeter(lon[:, i], lat[:, i])[0]) for i in range(lon.shape[1]))
        assert d["water_km2"] * 1e6 == pytest.approx(geodesic, rel=0.01)  # the bound
        assert d["water_km2"] * 1e6 == pytest.approx(geodesic, rel=1e-4)  # what it actually is
        # the files' Web Mercator pixels are 0.33-0.35 km2 on the ground here, not 0.25
        per_px = d["water_km2"] / d["water_pixels"]
        assert 0.33 < per_px < 0.35
        assert d["water_pixels"] * abs(t.a * t.e) / 1e6 / d["water_km2"] > 2.0  # map m2: sec^2(45 N) ~ 2
