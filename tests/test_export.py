"""GIS exports: polygons (sieve, simplification, geodesic perimeter), vector formats round trip,
styled COGs (colour table, QML, PAM) of the many-date rasters."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from pyproj import Geod
from scipy import ndimage
from shapely.geometry import Polygon

from rs_change.area import geodesic_perimeters, pixel_area
from rs_change.change import CHANGE_CLASSES, SERIES_CLASSES, series_block
from rs_change.export import SHAPEFILE_FIELDS, SeriesWriters, manifest_files, write_vectors
from rs_change.grid import Grid
from rs_change.names import series_names
from rs_change.styles import paletted_qml, pam_xml, ramp_qml

from .polygon_reference import polygon_layer

UTM = Grid((60, 80), Affine(10, 0, 500000, 0, -10, 5_200_000), "EPSG:32614")
GEO = Grid((60, 80), Affine(0.001, 0, -99.0, 0, -0.001, 47.1), "EPSG:4326")
GEOD = Geod(ellps="WGS84")


def _blobs(shape=(60, 80), seed=0, frac=0.35):
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.normal(size=shape), 2.5)
    return (f > np.quantile(f, 1 - frac)).astype(np.uint8)


def _geod_area(gdf):
    g = gdf.to_crs("EPSG:4326")
    return np.array([abs(GEOD.geometry_area_perimeter(x)[0]) for x in g.geometry])


def test_square_polygon_area_and_perimeter():
    m = np.zeros((10, 10), np.uint8)
    m[2:6, 3:8] = 1  # 4 x 5 pixels of 10 m: 2000 m2, perimeter 180 m
    g = Grid((10, 10), Affine(10, 0, 500000, 0, -10, 5_200_000), "EPSG:32614")
    pa = pixel_area(g.transform, g.crs, g.shape)
    gdf, removed = polygon_layer(m, g, pa, {1: "water"}, date="2020-01-01")
    assert len(gdf) == 1 and removed["water"]["features"] == 0
    row = gdf.iloc[0]
    assert (row["date"], row["class"], row["pixels"]) == ("2020-01-01", "water", 20)
    assert row["area_m2"] == pytest.approx(float(np.broadcast_to(pa, m.shape)[m == 1].sum()), rel=1e-12)
    # UTM scale factor near the central meridian is ~0.9996: ground = grid / k
    assert row["area_m2"] == pytest.approx(2000, rel=2e-3)
    assert row["perimeter_m"] == pytest.approx(180, rel=1e-3)


@pytest.mark.parametrize("grid", [UTM, GEO], ids=["utm", "lonlat"])
def test_polygons_plus_sieve_equal_raster_area(grid):
    m = _blobs()
    pa = pixel_area(grid.transform, grid.crs, grid.shape)
    raster = float(np.broadcast_to(pa, m.shape)[m == 1].sum())
    min_area = 6 * float(np.mean(pa))
    gdf, removed = polygon_layer(m, grid, pa, {1: "water"}, min_area_m2=min_area, simplify_px=1.0)
    assert removed["water"]["features"] > 0  # the blobs have small specks
    assert (gdf["area_m2"] >= min_area).all()
    assert gdf["area_m2"].sum() + removed["water"]["area_m2"] == pytest.approx(raster, rel=1e-9)
    assert gdf["pixels"].sum() + removed["water"]["pixels"] == int((m == 1).sum())
    # the simplified geometries keep the area within 1 %
    assert _geod_area(gdf).sum() == pytest.approx(gdf["area_m2"].sum(), rel=0.01)
    assert gdf.is_valid.all()


def test_simplification_keeps_coverage_and_reduces_vertices():
    ch = np.zeros((60, 80), np.uint8)
    ch[_blobs(seed=1) == 1] = 2
    ch[(_blobs(seed=2) == 1) & (ch == 0)] = 3  # gained and lost regions share edges
    pa = pixel_area(UTM.transform, UTM.crs, UTM.shape)
    vals = {2: "water gained", 3: "water lost"}
    exact, _ = polygon_layer(ch, UTM, pa, vals)
    simp, _ = polygon_layer(ch, UTM, pa, vals, simplify_px=1.5)
    assert len(simp) == len(exact)  # no polygon collapsed
    assert simp.get_coordinates().shape[0] < 0.75 * exact.get_coordinates().shape[0]
    assert simp.is_valid.all()
    # topology kept: no overlaps between neighbours, no gaps (union area equals the sum of areas)
    assert simp.union_all().area == pytest.approx(simp.area.sum(), rel=1e-9)
    # small blobs (a few hundred pixels) at 1.5 px: outlines move, the total stays within 3 %
    assert simp.area.sum() == pytest.approx(exact.area.sum(), rel=0.03)
    assert set(simp["class"]) == set(vals.values())


def test_perimeter_is_geodesic_in_any_crs():
    m = np.zeros((20, 20), np.uint8)
    m[5:15, 5:15] = 1
    g = Grid((20, 20), Affine(0.001, 0, -99.0, 0, -0.001, 47.1), "EPSG:4326")
    gdf, _ = polygon_layer(m, g, pixel_area(g.transform, g.crs, g.shape), {1: "water"})
    lon0, lat0 = -99.0 + 0.005, 47.1 - 0.005
    lon1, lat1 = lon0 + 0.01, lat0 - 0.01
    expect = sum(GEOD.inv(*a, *b)[2] for a, b in [((lon0, lat0), (lon1, lat0)), ((lon1, lat0), (lon1, lat1)),
                                                   ((lon1, lat1), (lon0, lat1)), ((lon0, lat1), (lon0, lat0))])
    assert gdf["perimeter_m"].iloc[0] == pytest.approx(expect, rel=1e-6)
    assert geodesic_perimeters([], g.crs).shape == (0,)


def test_empty_layer():
    gdf, removed = polygon_layer(np.zeros((5, 5), np.uint8), UTM, np.ones((5, 1)), {1: "water"})
    assert len(gdf) == 0 and removed["water"]["features"] == 0
    assert list(gdf.columns[:5]) == ["date", "class", "area_m2", "perimeter_m", "pixels"]


def _read(path, layer=None):
    with warnings.catch_warnings():
        # GDAL's ring organiser warns (as a RuntimeWarning) on polygons with > 100 islands when reading a .gdb
        warnings.simplefilter("ignore", RuntimeWarning)
        return pyogrio.read_dataframe(path, layer=layer)


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "gdb"])
def test_vector_round_trip(tmp_path, fmt):
    pa = pixel_area(UTM.transform, UTM.crs, UTM.shape)
    w, _ = polygon_layer(_blobs(), UTM, pa, {1: "water"}, min_area_m2=500, simplify_px=0, date="2020-08-31")
    ch = np.where(_blobs(seed=1) == 1, 2, 0).astype(np.uint8)
    c, _ = polygon_layer(ch, UTM, pa, {2: "water gained", 3: "water lost"}, date="2020-08-31", extra={"from_date": "2009-08-18"})
    layers = {"water_2020-08-31": w, "change": c}
    files = write_vectors(tmp_path, layers, [fmt])
    (name, path), = files.items()
    for lname, src in layers.items():
        if fmt == "gpkg":
            back = _read(path, lname)
        elif fmt == "gdb":
            assert {"water_2020_08_31", "change"} <= set(pyogrio.list_layers(path)[:, 0])
            back = _read(path, lname.replace("-", "_"))
        elif fmt == "shp":
            for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                assert (path / f"{lname}{ext}").is_file()
            assert (path / f"{lname}.cpg").read_text().strip().upper() == "UTF-8"
            back = _read(path / f"{lname}.shp").rename(columns={v: k for k, v in SHAPEFILE_FIELDS.items()})
        else:
            back = _read(path / f"{lname}.geojson")
        assert len(back) == len(src) > 0
        if fmt == "geojson":
            assert back.crs.to_epsg() == 4326
            assert '"crs"' not in (path / f"{lname}.geojson").read_text()[:400]  # RFC 7946 has no crs member
        else:
            assert back.crs.equals(src.crs)
        back = back.sort_values("area_m2", kind="stable").reset_index(drop=True)
        src = src.sort_values("area_m2", kind="stable").reset_index(drop=True)
        assert list(back["class"]) == list(src["class"])
        # (pyogrio reads GeoJSON's "2020-08-31" strings back as dates)
        assert [str(d)[:10] for d in back["date"]] == list(src["date"])
        np.testing.assert_allclose(back["area_m2"], src["area_m2"], rtol=1e-9)
        np.testing.assert_allclose(back["perimeter_m"], src["perimeter_m"], rtol=1e-6)
        # geometry areas (geodesic, so comparable across CRSs) within 0.1 % of the pixel-sum area
        np.testing.assert_allclose(_geod_area(back), src["area_m2"], rtol=1e-3)


def test_manifest_files_expand_folders(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / "water_shp").mkdir()
    (tmp_path / "water_shp" / "b.shp").write_bytes(b"y")
    (tmp_path / "water_shp" / "a.dbf").write_bytes(b"z")
    assert manifest_files(tmp_path, ["a.tif", "water_shp"]) == ["a.tif", "water_shp/a.dbf", "water_shp/b.shp"]


def test_styles_parse_and_list_classes():
    colors = {k: (k, 2, 3, 255) for k in CHANGE_CLASSES}
    root = ET.fromstring(paletted_qml(CHANGE_CLASSES, colors).split("\n", 1)[1])
    labels = {e.get("value"): e.get("label") for e in root.iter("paletteEntry")}
    assert labels == {str(k): v for k, v in CHANGE_CLASSES.items()}  # unobserved is in the legend too
    assert root.find(".//rasterrenderer").get("nodataColor") == "255,2,3,255"  # and drawn in its colour
    ramp = ET.fromstring(ramp_qml().split("\n", 1)[1])
    assert [i.get("value") for i in ramp.iter("item")][[0, -1][0]] == "0"
    pam = ET.fromstring(pam_xml(SERIES_CLASSES, {k: (0, 0, 0, 255) for k in SERIES_CLASSES}))
    cats = [c.text or "" for c in pam.iter("Category")]
    assert cats == ["land persistent", "water persistent", "water gained", "water lost", "water seasonal"]
    assert len(list(pam.iter("Entry"))) == 5  # colour table trimmed to the classes below no-data
    rows = [[f.text for f in r.iter("F")] for r in pam.iter("Row")]
    assert [r[1] for r in rows] == list(SERIES_CLASSES.values()) and rows[-1][:2] == ["255", "unobserved"]


def test_series_rasters_are_styled_valid_cogs(tmp_path):
    from rio_cogeo.cogeo import cog_validate

    g = Grid((700, 600), Affine(5, 0, 500000, 0, -5, 5_200_000), "EPSG:26914")
    dates = ["2009-08-18", "2014-07-20", "2020-08-31"]
    masks = [np.where(_blobs((700, 600), seed=s) == 1, 1, 0).astype(np.uint8) for s in range(3)]
    masks[1][:10] = 255
    sw = SeriesWriters(tmp_path, g, dates)
    try:
        for r0 in (0, 512):  # two row blocks
            blk = series_block([m[r0:r0 + 512] for m in masks], pixel_area(g.transform, g.crs, g.shape)[r0:r0 + 512])
            sw.write(blk, r0, 0)
        files = sw.finish()
    finally:
        sw.close()
    assert sorted(files) == sorted(series_names(dates))
    for name, p in files.items():
        if name.endswith(".tif"):
            valid, errors, _ = cog_validate(str(p), quiet=True)
            assert valid, (name, errors)
            with rasterio.open(p) as ds:
                assert ds.overviews(1), name
                if name in ("frequency.tif", "observations.tif"):  # ramps: styled by their .qml, no colour table
                    with pytest.raises(ValueError):
                        ds.colormap(1)
                else:  # the .aux.xml's colour table: one entry per class below no-data (255)
                    assert sorted(ds.colormap(1)) == list(range(4 if name.startswith("change") else 5))
                    assert ds.colormap(1)[0] == (230, 230, 220, 255)
        if name.endswith(".qml"):
            root = ET.parse(p).getroot()
            assert root.tag == "qgis"
    with rasterio.open(files["series_classes.tif"]) as ds:
        from rs_change.change import series_classes

        np.testing.assert_array_equal(ds.read(1), series_classes(masks))
        assert ds.tags(1)["CLASS_4"] == "water seasonal" and ds.descriptions[0].startswith("series class")
    labels = [e.get("label") for e in ET.parse(files["series_classes.qml"]).getroot().iter("paletteEntry")]
    assert labels == list(SERIES_CLASSES.values())
    with rasterio.open(files["observations.tif"]) as ds:  # dates observed per pixel: frequency's denominator
        from rs_change.change import water_frequency

        np.testing.assert_array_equal(ds.read(1), water_frequency(masks)[2])
        assert ds.read(1)[:10].max() == 2 and ds.read(1)[10:].min() == 3
    with rasterio.open(files["change_2009-08-18_2014-07-20.tif"]) as ds:
        assert ds.tags()["FROM"] == "2009-08-18" and ds.tags()["TO"] == "2014-07-20"


# ---------------------------------------------------------------------------------------------
# Fast writing (issue 8): one strip pass for many rasters, vectorised perimeters, PNG via VRT, jobs
# ---------------------------------------------------------------------------------------------
def test_perimeters_match_pyproj_for_holes_and_multipolygons():
    """Exterior length like Geod.geometry_area_perimeter (holes not added), parts summed."""
    from shapely.geometry import MultiPolygon, Polygon

    lake = Polygon([(-99.0, 47.0), (-98.99, 47.0), (-98.99, 47.01), (-99.0, 47.01)],
                   [[(-98.998, 47.002), (-98.996, 47.002), (-98.996, 47.004)]])
    two = MultiPolygon([Polygon([(0, 0), (0.01, 0), (0.01, 0.01)]), Polygon([(1, 1), (1.02, 1), (1.02, 1.02)])])
    geoms = [lake, two, Polygon()]
    want = [abs(GEOD.geometry_area_perimeter(g)[1]) for g in geoms]
    np.testing.assert_allclose(geodesic_perimeters(geoms, "EPSG:4326"), want, rtol=1e-12)
    assert want[0] > 4 * 700 and want[2] == 0.0  # a ~0.75 x 1.1 km square; the empty polygon has none


def test_short_geodesics_match_pyproj_to_a_few_parts_per_billion():
    """Pixel edges (< 100 m) are measured from the radii of curvature at mid-latitude: pyproj's
    inverse geodesic to 1.5e-9 at every latitude, across the antimeridian too."""
    from rs_change.area import SHORT_GEODESIC_M, short_geodesics

    rng = np.random.default_rng(2)
    n = 20000
    lon, lat = rng.uniform(-180, 180, n), rng.uniform(-85, 85, n)
    lon[:10], lat[:10] = 179.9999, 60.0  # these cross the antimeridian
    d = rng.uniform(0.3, SHORT_GEODESIC_M, n)
    lon2, lat2, _ = GEOD.fwd(lon, lat, rng.uniform(0, 360, n), d)
    _, _, want = GEOD.inv(lon, lat, lon2, lat2)
    got = short_geodesics(lon, lat, lon2, lat2)
    np.testing.assert_allclose(got, want, rtol=2e-9, atol=1e-8)  # and 10 nm on sub-metre lines
    np.testing.assert_allclose(got, d, rtol=2e-8, atol=1e-8)  # the lengths the lines were made with


def test_one_strip_pass_equals_each_raster_alone(tmp_path):
    """strip_regions_many over a water mask and a two-code change map = strip_regions of each."""
    from rs_change.export import write_cog
    from rs_change.strips import strip_regions_many

    from .polygon_reference import strip_regions

    water = _blobs(seed=4)
    change = np.where(_blobs(seed=5) == 1, 2, 0).astype(np.uint8)
    change[_blobs(seed=6, frac=0.1) == 1] = 3  # lost, touching gained regions in places
    change[:3, :3] = 255
    pw, pc = write_cog(tmp_path / "w.tif", water, UTM), write_cog(tmp_path / "c.tif", change, UTM)
    many = strip_regions_many([(pw, {1: "water"}), (pc, {2: "gained", 3: "lost"})], UTM, rows=7)
    for got, (path, values) in zip(many, [(pw, {1: "water"}), (pc, {2: "gained", 3: "lost"})]):
        one = strip_regions(path, UTM, values, rows=60)  # one strip: no seams
        assert list(got["code"]) == list(one["code"]) and list(got["pixels"]) == list(one["pixels"])
        np.testing.assert_allclose(got["area_m2"], one["area_m2"], rtol=1e-9)  # pixel areas per strip
        assert all(a.equals_exact(b, 0) for a, b in zip(got["geometry"], one["geometry"]))
    codes = list(many[1]["code"])
    assert codes.count(2) == ndimage.label(change == 2)[1] and codes.count(3) == ndimage.label(change == 3)[1] > 0


def test_cluster_png_is_the_nearest_decimated_map(tmp_path):
    import matplotlib.image

    from rs_change.export import write_cog
    from rs_change.clustermaps import write_cluster_png

    arr = (np.arange(60 * 80).reshape(60, 80) % 7).astype(np.uint8)
    arr[0, :5] = 255
    legend = [(i, (10 * i, 20 * i, 30, 255), f"cluster {i}") for i in range(7)] + [(255, (175, 175, 175, 255), "unobserved")]
    lut = np.zeros((256, 3), int)
    for v, c, _ in legend:
        lut[v] = c[:3]
    tif = write_cog(tmp_path / "c.tif", arr, UTM)
    full = write_cluster_png(tif, tmp_path / "full.png", legend)
    small = write_cluster_png(tif, tmp_path / "small.png", legend, max_size=40)

    def map_part(png, shape):  # the map is the top rows, centred; the legend is below it
        img = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(int)
        x0 = (img.shape[1] - shape[1]) // 2
        return img[:shape[0], x0:x0 + shape[1]]

    with warnings.catch_warnings():  # a picture: no georeferencing
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(full) as png:  # paletted: one byte a pixel
            assert png.count == 1 and png.colorinterp[0] == rasterio.enums.ColorInterp.palette
    assert (map_part(full, (60, 80)) == lut[arr]).all()
    with rasterio.open(tif) as t:
        dec = t.read(1, out_shape=(30, 40), resampling=rasterio.enums.Resampling.nearest)
    assert (map_part(small, (30, 40)) == lut[dec]).all()


def test_write_jobs_are_shared_by_the_thread_that_waits():
    """A thread whose own work is over runs the jobs no writer thread has started (each job once),
    and result() of one job runs the others meanwhile instead of blocking."""
    import threading

    from rs_change.engine import WriteJobs

    ran: list[tuple[int, str]] = []
    gate = threading.Event()

    def job(i):
        if i == 0:
            gate.wait(5)  # keeps the one writer thread busy
        ran.append((i, threading.current_thread().name))
        return i

    with WriteJobs(1) as jobs:
        futs = [jobs.submit(job, i) for i in range(4)]
        jobs.start()
        assert jobs.result(futs[2]) == 2  # runs 1 and 2 here while job 0 holds the writer
        gate.set()
        jobs.wait()
    assert sorted(i for i, _ in ran) == [0, 1, 2, 3]  # each job once
    here = {i for i, name in ran if name == threading.current_thread().name}
    assert {1, 2} <= here and 0 not in here


def test_an_interrupt_in_a_job_the_waiting_thread_runs_stops_it_at_once():
    """Ctrl-C while the main thread runs a queued job: raised there, the other jobs not run."""
    import threading

    from rs_change.engine import WriteJobs

    ran: list[int] = []
    gate = threading.Event()

    def job(i):
        if i == 0:
            gate.wait(5)
        if i == 1:
            raise KeyboardInterrupt
        ran.append(i)

    release = threading.Timer(0.5, gate.set)  # job 0 ends after the queue was dropped
    release.start()
    with pytest.raises(KeyboardInterrupt):
        with WriteJobs(1) as jobs:
            for i in range(4):
                jobs.submit(job, i)
            jobs.wait()
    release.join()
    assert ran == [0]


def test_write_jobs_run_by_priority_and_reraise(tmp_path):
    from rs_change.engine import WriteJobs, write_threads

    order: list[str] = []
    with WriteJobs(1) as jobs:
        jobs.submit(order.append, "cog")
        jobs.submit(order.append, "figures", priority=-1)
        jobs.wait()
    assert order == ["figures", "cog"]
    with pytest.raises(ZeroDivisionError):
        with WriteJobs(1) as jobs:
            jobs.submit(lambda: 1 / 0)
            jobs.wait()
    inline = WriteJobs(0)
    f = inline.submit(lambda: 1 / 0)  # synchronous: run at once, error kept for wait()/result()
    with pytest.raises(ZeroDivisionError):
        inline.wait()
    assert f.done()
    assert write_threads("synchronous", 4) == 0 and write_threads("threads", 1) == 0
    assert write_threads("threads", 2) == 1 and write_threads("threads", 16) == 3


def test_small_polygons_and_holes_keep_their_pixel_shape(tmp_path):
    """Simplified by a pixel, a 6-pixel lake became a triangle of a third of its area and small
    holes half-pixel slivers; now regions and holes under KEEP_SHAPE_PX pixels keep their traced
    outline, so their drawn area is exactly their pixels' (and matches area_m2 on the ground)."""
    from rs_change.strips import KEEP_SHAPE_PX, layer_from_regions, strip_regions_many

    a = np.zeros((60, 80), np.uint8)
    a[5:7, 5:8] = 1  # a 6-pixel lake (2 x 3)
    a[20:50, 20:60] = 1  # a big lake ...
    a[30, 30] = 0  # ... with a 1-pixel island
    a[35:37, 40:42] = 0  # ... a 4-pixel island
    a[40:46, 25:31] = 0  # ... and a 36-pixel island (simplified like the shore)
    a[20:23, 59] = 0  # a notch in the shore
    path = tmp_path / "w.tif"
    with rasterio.open(path, "w", driver="GTiff", width=80, height=60, count=1, dtype="uint8", crs=UTM.crs.to_wkt(),
                       transform=UTM.transform, nodata=255) as ds:
        ds.write(a, 1)
    (reg,) = strip_regions_many([(path, {1: "water"})], UTM)
    gdf, _, _ = layer_from_regions(reg, UTM, {1: "water"}, simplify_px=1.0, date="2020-08-31")
    px = 10.0 * 10.0
    small = gdf[gdf["pixels"] == 6].geometry.iloc[0]
    assert small.area == 6 * px and len(small.exterior.coords) == 5  # the 2 x 3 rectangle
    big = gdf[gdf["pixels"] > 1000].geometry.iloc[0]
    holes = sorted(round(Polygon(r).area / px, 6) for r in big.interiors)
    assert holes[:2] == [1.0, 4.0] and len(holes) == 3  # the small islands exactly, none lost
    assert KEEP_SHAPE_PX <= 36 and big.is_valid
    assert abs(big.area / px - int(gdf[gdf["pixels"] > 1000]["pixels"].iloc[0])) < 6  # simplified shore: within a few px
    # drawn ground area = area_m2 (UTM: geodesic area of the small shape equals its pixels' ground area)
    np.testing.assert_allclose(_geod_area(gdf[gdf["pixels"] == 6]), gdf[gdf["pixels"] == 6]["area_m2"], rtol=1e-6)


def test_empty_layers_keep_their_field_types(tmp_path):
    """A date with no water writes an empty layer: its fields keep their types (Date, String,
    Integer64) in every format, so the layer reads like the others."""
    import geopandas as gpd

    g = gpd.GeoDataFrame({"date": [], "class": [], "area_m2": [], "perimeter_m": [], "pixels": []}, geometry=[],
                         crs=UTM.crs.to_wkt())
    files = write_vectors(tmp_path, {"water_2020_01_01": g, "change": g.assign(from_date=[])}, ["gpkg", "shp", "gdb"])
    for path, kw, pixels in ((files["water.gpkg"], {"layer": "change"}, "int64"),
                             (files["water_shp"] / "change.shp", {}, "int64"),
                             (files["water.gdb"], {"layer": "change"}, "int32")):
        info = pyogrio.read_info(path, **kw)
        types = dict(zip(info["fields"], info["dtypes"]))
        assert info["features"] == 0 and types["class"] == "object" and types["pixels"] == pixels, path
        assert types["date"].startswith("datetime64") and types["from_date"].startswith("datetime64"), path


def test_cog_temporary_overview_settings_leave_the_bytes_alone(tmp_path):
    """to_cog's settings for GDAL's temporary overview file (uncompressed) give the same COG,
    byte for byte, as GDAL's own default (a zstd temporary file)."""
    import rasterio.shutil

    from rs_change.export import COG_DEFLATE_LEVEL, to_cog

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 101, (700, 900)).astype(np.uint8)  # noisy, like a water fraction
    arr[:100] = 255
    src = tmp_path / "src.tif"
    with rasterio.open(src, "w", driver="GTiff", width=900, height=700, count=1, dtype="uint8", crs="EPSG:32614",
                       transform=Affine(10, 0, 500000, 0, -10, 5200000), tiled=True, blockxsize=256,
                       blockysize=256, compress="zstd", nodata=255) as ds:
        ds.write(arr, 1)
    to_cog(src, tmp_path / "fast.tif")
    rasterio.shutil.copy(str(src), str(tmp_path / "plain.tif"), driver="COG", COMPRESS="DEFLATE",
                         LEVEL=COG_DEFLATE_LEVEL, OVERVIEWS="IGNORE_EXISTING", RESAMPLING="NEAREST", BLOCKSIZE=512,
                         BIGTIFF="IF_SAFER")
    assert (tmp_path / "fast.tif").read_bytes() == (tmp_path / "plain.tif").read_bytes()
    with rasterio.open(tmp_path / "fast.tif") as ds:
        assert ds.overviews(1) == [2] and np.array_equal(ds.read(1), arr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.tif", "plain.tif", "src.tif"]  # no temporary left
