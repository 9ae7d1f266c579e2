"""Area of interest: bbox in any CRS, vector files in any CRS, the pixel-centre rule, and how
pixels outside it or unobserved inside it are reported (never counted as land or water)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from shapely import contains_xy
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from rs_change.config import RunConfig
from rs_change.errors import NoOverlapError
from rs_change.pipeline import run

from .conftest import lake_scene

UTM = "EPSG:32614"
T = Affine(10, 0, 500000, 0, -10, 5210000)  # near -99.0 E, 47.03 N
H, W = 60, 80
LAKE = (slice(20, 40), slice(25, 55))


@pytest.fixture
def scenes(make_tif):
    a = lake_scene(H, W, LAKE, seed=1)
    b = lake_scene(H, W, LAKE, seed=2)
    b[:, 30:36, 10:70] = 0  # a nodata band across the second date (cloud, gap)
    return [make_tif("a.tif", a, T, UTM, nodata=0), make_tif("b.tif", b, T, UTM, nodata=0)]


def _run(tmp_path, aoi, scenes):
    cfg = RunConfig.from_dict(
        {
            "scenes": [
                {"date": "2020-01-01", "path": str(scenes[0]), "sensor": "naip"},
                {"date": "2021-01-01", "path": str(scenes[1]), "sensor": "naip"},
            ],
            "aoi": aoi,
            "clustering": {"k": 2, "seed": 0},
        },
        base_dir=tmp_path,
    )
    return run(cfg, write=False)


def centres_inside(poly_utm) -> np.ndarray:
    """(H, W) bool: pixel centres of the scene grid inside a polygon (in the scene's CRS)."""
    cols, rows = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    x, y = T * (cols, rows)
    return contains_xy(poly_utm, x, y)


def to_utm(poly, crs, n=2000):
    """Reproject a polygon with a dense boundary (reference independent of the pipeline)."""
    tr = Transformer.from_crs(crs, UTM, always_xy=True)
    dense = poly.segmentize(poly.length / n)
    xs, ys = tr.transform(*np.asarray(dense.exterior.coords).T)
    return Polygon(zip(xs, ys))


def test_bbox_in_another_crs_uses_pixel_centres(tmp_path, scenes):
    tr = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    lon0, lat0 = tr.transform(500123, 5209433)
    lon1, lat1 = tr.transform(500611, 5209712)
    res = _run(tmp_path, {"bbox": [lon0, lat0, lon1, lat1], "crs": "EPSG:4326"}, scenes)
    inside = centres_inside(to_utm(box(lon0, lat0, lon1, lat1), "EPSG:4326"))
    d0 = res.summary["dates"][0]
    assert 500 < inside.sum() < H * W
    assert d0["observed_pixels"] == int(inside.sum())
    assert d0["unobserved_pixels"] == 0
    # the reference grid was cropped to the AOI's bounds: the rest of the crop is "outside"
    assert res.grid.shape[0] * res.grid.shape[1] < H * W
    assert d0["outside_aoi_km2"] > 0


def test_pixel_centre_rule_in_the_scene_crs(tmp_path, scenes):
    # columns: centres at 500005, 500015, ...; x from 500006 to 500027 keeps centres 15 and 25 only
    # rows: centres at 5209995, 5209985, ...; y from 5209979 to 5209999 keeps 5209995 and 5209985
    res = _run(tmp_path, {"bbox": [500006, 5209979, 500027, 5209999], "crs": UTM}, scenes)
    d0 = res.summary["dates"][0]
    assert d0["observed_pixels"] == 4
    assert res.grid.shape == (3, 3)  # pixels touched by the bbox ...
    # ... 5 of them outside (summary km2 are rounded to the m2)
    assert d0["outside_aoi_km2"] * 1e6 == pytest.approx(5 * 100 / 0.9996**2, abs=1.0)


@pytest.mark.parametrize(
    "name, crs, driver",
    [("aoi.gpkg", "EPSG:3857", "GPKG"), ("aoi.shp", "EPSG:3857", "ESRI Shapefile"), ("aoi.geojson", "EPSG:4326", "GeoJSON")],
)
def test_vector_aoi_in_another_crs(tmp_path, scenes, name, crs, driver):
    # two polygons (a triangle over the lake and a square elsewhere), written in `crs`
    # (vertices off the pixel lattice so that no pixel centre lies exactly on an edge)
    tri = Polygon([(500151.3, 5209852.7), (500648.1, 5209851.9), (500402.6, 5209503.3)])
    sq = box(500050, 5209450, 500200, 5209520)
    to = Transformer.from_crs(UTM, crs, always_xy=True)
    polys = [Polygon(zip(*to.transform(*np.asarray(p.segmentize(5.0).exterior.coords).T))) for p in (tri, sq)]
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=polys, crs=crs).to_file(tmp_path / name, driver=driver)
    res = _run(tmp_path, name, scenes)  # a bare path is accepted as aoi
    inside = centres_inside(unary_union([to_utm(p, crs) for p in polys]))
    d0 = res.summary["dates"][0]
    assert d0["observed_pixels"] == int(inside.sum())
    assert 0 < d0["water_pixels"] < d0["observed_pixels"]


def test_aoi_outside_the_scene_is_one_clear_error(tmp_path, scenes):
    with pytest.raises(NoOverlapError) as e:
        _run(tmp_path, {"bbox": [10.0, 50.0, 10.1, 50.1], "crs": "EPSG:4326"}, scenes)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("aoi:") and "does not overlap" in msg


def test_unobserved_and_outside_are_reported_not_counted(tmp_path, scenes):
    aoi = box(500050, 5209450, 500750, 5209850)  # rows 15..55, cols 5..75 of the grid
    res = _run(tmp_path, {"bbox": list(aoi.bounds), "crs": UTM}, scenes)
    inside = centres_inside(aoi)
    gap = np.zeros((H, W), bool)
    gap[30:36, 10:70] = True
    d0, d1 = res.summary["dates"]
    assert d0["observed_pixels"] == inside.sum() and d0["unobserved_pixels"] == 0
    assert d1["unobserved_pixels"] == int((gap & inside).sum()) == 6 * 60
    assert d1["observed_pixels"] == int((inside & ~gap).sum())
    # the gap is over the lake: the second date's water is smaller by the hidden lake pixels,
    # never counted as land either
    lake = np.zeros((H, W), bool)
    lake[LAKE] = True
    assert d0["water_pixels"] == int((lake & inside).sum())
    assert d1["water_pixels"] == int((lake & inside & ~gap).sum())
    ch = res.summary["change"]
    assert ch["unobserved_pixels"] == 6 * 60
    assert ch["gained_pixels"] == 0 and ch["lost_pixels"] == 0  # the gap is not "lost water"
    px_area = 100 / 0.9996**2
    assert ch["persistent_water_km2"] * 1e6 == pytest.approx(d1["water_pixels"] * px_area, rel=1e-4)
    total = ch["persistent_water_km2"] + ch["persistent_land_km2"] + ch["unobserved_km2"]
    assert total == pytest.approx(d0["observed_km2"], abs=3e-6)  # km2 rounded to the m2
    assert d1["observed_km2"] + d1["unobserved_km2"] == pytest.approx(d0["observed_km2"], abs=2e-6)
