"""A three-date run on tiny synthetic lakes: many-date products, polygons, report (and the
report in headless Chromium when it is installed); the report's map layout, legends, lon/lat
ticks, scale bar, tables and the warning for a CRS whose planar areas are not ground areas."""

from __future__ import annotations

import doctest
import json
import logging
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from rs_change import area, report, report_page
from rs_change.change import CHANGE_CLASSES, CHANGE_COLORS
from rs_change.config import RunConfig
from rs_change.export import WATER_CLASSES, WATER_COLORS
from rs_change.grid import Grid
from rs_change.pipeline import run
from rs_change.report import Panel, decimated_shape, draw_maps, legend_entries, lonlat_ticks, panel_layout

from .conftest import lake_scene, write_geotiff

DATES = ["2001-06-01", "2002-06-01", "2003-06-01"]
# lake (rows, cols) per date: grows, then shrinks back, so pixels are new / lost / seasonal
LAKES = [(slice(10, 20), slice(10, 20)), (slice(8, 24), slice(8, 26)), (slice(10, 20), slice(10, 24))]


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("series")
    t = Affine(10, 0, 500000, 0, -10, 5_200_000)
    scenes = []
    for i, (date, lake) in enumerate(zip(DATES, LAKES)):
        p = write_geotiff(d / f"s{i}.tif", lake_scene(40, 40, lake, seed=i), t, "EPSG:32614")
        scenes.append({"date": date, "path": str(p), "sensor": "naip"})
    cfg = RunConfig.from_dict({
        "scenes": scenes, "clustering": {"k": 2, "seed": 0, "sample_size": 1000},
        "output": {"dir": str(d / "out"), "formats": ["gpkg", "geojson"], "min_area_m2": 0, "simplify_px": 0},
        "compute": {"chunk_size": 64, "scheduler": "synchronous"},
    }, base_dir=d)
    res = run(cfg)
    return res, d / "out"


def test_series_numbers_match_the_synthetic_lakes(series_run):
    res, out = series_run
    s = res.summary
    px = 100.0 / 1e6 / 0.9996 ** 2  # 10 m UTM pixel, km2 of ground (scale factor ~0.9996 near the CM)
    sizes = [100, 16 * 18, 10 * 14]
    assert [d["water_pixels"] for d in s["dates"]] == sizes
    t = s["transitions"]
    assert [(x["from"], x["to"]) for x in t] == list(zip(DATES[:-1], DATES[1:]))
    assert (t[0]["gained_pixels"], t[0]["lost_pixels"]) == (16 * 18 - 100, 0)
    assert (t[1]["gained_pixels"], t[1]["lost_pixels"]) == (0, 16 * 18 - 140)
    assert s["change"]["gained_pixels"] == 40 and s["change"]["from"] == DATES[0] and s["change"]["to"] == DATES[-1]
    c = s["series"]["classes_pixels"]
    # persistent: the first lake; gained: columns 20-24 of the first lake's rows (water 2002 and 2003);
    # seasonal: water only in 2002; land persistent: the rest
    assert c["water persistent"] == 100 and c["water gained"] == 40 and c["water lost"] == 0
    assert c["water seasonal"] == 16 * 18 - 140
    assert c["land persistent"] == 1600 - 16 * 18
    assert s["series"]["classes_km2"]["water persistent"] == pytest.approx(100 * px, rel=1e-3)
    with rasterio.open(out / "frequency.tif") as ds:
        f = ds.read(1)
    assert f[15, 15] == 100 and f[15, 22] == 67 and f[9, 9] == 33 and f[0, 0] == 0


def test_polygons_add_up_to_the_raster(series_run):
    res, out = series_run
    p = res.summary["polygons"]
    for name, layer in p["layers"].items():
        assert layer["area_km2"] + layer["removed_km2"] == pytest.approx(layer["raster_km2"], rel=0.01), name
    assert p["layers"]["water_2002_06_01"]["raster_km2"] == res.summary["dates"][1]["water_km2"]
    assert (out / "water.gpkg").is_file() and (out / "water_geojson" / "change.geojson").is_file()


def test_report_files_and_html(series_run):
    res, out = series_run
    for name in ["timeseries.png", "timeseries.csv", "frequency.png", "series_classes.png", "change.png", "report.html",
                 *[f"quicklook_{d}.png" for d in DATES], "series_classes.qml", "change.qml", "frequency.qml"]:
        assert (out / name).is_file(), name
    rows = (out / "timeseries.csv").read_text().splitlines()
    assert rows[0].startswith("date,water_km2") and len(rows) == 4
    html = (out / "report.html").read_text(encoding="utf-8")
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == 3 + 5  # quicklooks, timeseries, change first -> last, frequency, series classes, waterbodies
    assert (out / "waterbodies.png").is_file() and "<h2>Waterbodies</h2>" in html
    assert "src=\"http" not in html and "src=\"file" not in html  # self-contained
    assert "water persistent" in html and DATES[1] in html and "clustering" in html
    assert "<h2>Series classes (all dates)</h2>" in html  # three dates: the series table
    for name in ["series_classes.qml", "change.qml"]:
        assert ET.parse(out / name).getroot().tag == "qgis"
    manifest = json.loads((out / "manifest.json").read_text())
    names = {f["name"] for f in manifest["files"]}
    assert "report.html" in names and any(n.startswith("water_geojson/") for n in names)


def test_decimated_shape():
    assert decimated_shape((100, 50)) == (100, 50)
    assert decimated_shape((1601, 800)) == (534, 267)
    assert max(decimated_shape((10_000, 30_000))) <= 800


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browse(tmp_path, page, *args):
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (CI may lack it)")


@needs_chromium
def test_report_opens_in_headless_chromium_with_every_image(series_run, tmp_path):
    _, out = series_run
    dom = _browse(tmp_path, out / "report.html", "--window-size=1280,1000", "--dump-dom")
    m = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert m, dom[:500]
    assert int(m.group(2)) == 8 and m.group(1) == m.group(2)
    w = re.search(r'data-page-width="(\d+)/(\d+)"', dom)
    assert w and int(w.group(1)) <= int(w.group(2))  # tables and figures fit a 1280 px window: no sideways scrolling


WARNING_BG = (255, 246, 224)  # .warning's background in report.html's CSS


@needs_chromium
def test_report_screenshot_shows_the_area_warning_only_for_mercator(series_run, mercator_run, tmp_path):
    import matplotlib.image

    _, merc, _ = mercator_run
    _, utm = series_run
    shares = {}
    for name, out in (("mercator", merc), ("utm", utm)):
        shot = tmp_path / f"{name}.png"
        _browse(tmp_path, out / "report.html", "--window-size=1280,1400", f"--screenshot={shot}")
        img = (matplotlib.image.imread(shot)[..., :3] * 255).round().astype(int)
        assert img.shape[:2] == (1400, 1280)
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # the page was drawn (text, tables, figures)
        shares[name] = float((np.abs(img - WARNING_BG).max(axis=2) <= 2).mean())
    assert shares["mercator"] > 0.01 and shares["utm"] == 0.0  # the warning box, near the top of the page


# ---------------------------------------------------------------------------------------------
# Maps: layout from the area's shape, complete legends, lon/lat ticks, scale bar
# ---------------------------------------------------------------------------------------------
def _png_size(path):
    with open(path, "rb") as f:
        return struct.unpack(">II", f.read(24)[16:24])  # IHDR: width, height


def test_doctests_of_report_and_area():
    for mod in (report, area):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.attempted >= 3 and res.failed == 0, mod.__name__


def test_panel_layout_follows_the_area_shape():
    # figure aspect cols / (rows x aspect) closest to 1.6: a tall strip in a row, a wide one in a column
    assert panel_layout(4, 3.0) == (1, 4)
    assert panel_layout(4, 1.0) == (2, 2)
    assert panel_layout(4, 0.2) == (4, 1)
    assert panel_layout(1, 5.0) == (1, 1)
    assert panel_layout(3, 1.0) == (1, 3)  # a row of three rather than a 2 x 2 grid with an empty cell
    assert panel_layout(3, 0.75) == (2, 2)  # unless the row would be far too wide


def _utm(h, w, px=10.0):
    return Grid((h, w), Affine(px, 0, 500000, 0, -px, 5_200_000), "EPSG:32614")


def _four_panels(h, w):
    rng = np.random.default_rng(0)
    water = rng.integers(0, 2, (h, w)).astype(np.uint8)
    k = 10  # long cluster names: the legend must wrap into rows, all of them visible
    cnames = {i: f"cluster {i} ({10 * i}% water)" for i in range(k)} | {255: "unobserved"}
    ccolors = {i: (20 * i, 200 - 15 * i, 90, 255) for i in range(k)} | {255: (0, 0, 0, 0)}
    img = np.ones((h, w, 3), np.float32)
    return [
        Panel("image", img, coords=True),
        Panel("clusters", img, legend_entries(cnames, ccolors)),
        Panel("water", report._palette_image(water, WATER_COLORS), legend_entries(WATER_CLASSES, WATER_COLORS)),
        Panel("change", report._palette_image(water * 3, CHANGE_COLORS), legend_entries(CHANGE_CLASSES, CHANGE_COLORS)),
    ]


@pytest.mark.parametrize("shape, layout", [((300, 60), (1, 4)), ((60, 300), (4, 1)), ((120, 100), (2, 2))])
def test_maps_fit_their_titles_and_whole_legends(shape, layout):
    fig = draw_maps(_four_panels(*shape), _utm(*shape))
    try:
        r = fig.canvas.get_renderer()
        maps = [ax for ax in fig.axes if ax.get_title()]
        rows = len({round(ax.get_position().y0, 6) for ax in maps})
        cols = len({round(ax.get_position().x0, 6) for ax in maps})
        assert (rows, cols) == layout
        # each map keeps the area's proportions (10 m square pixels): height / width in inches
        w_in, h_in = fig.get_size_inches()
        for ax in maps:
            b = ax.get_position()
            assert (b.height * h_in) / (b.width * w_in) == pytest.approx(shape[0] / shape[1], rel=1e-6)
        fb = fig.bbox
        boxes = []
        for ax in maps:
            boxes.append(ax.get_window_extent(r))
            title = ax.title.get_window_extent(r)
            assert fb.x0 <= title.x0 and title.x1 <= fb.x1 and title.y1 <= fb.y1, ax.get_title()
            leg = ax.get_legend()
            if ax.get_title() == "image":
                assert leg is None
                continue
            lb = leg.get_window_extent(r)
            assert fb.x0 - 0.5 <= lb.x0 and lb.x1 <= fb.x1 + 0.5 and lb.y0 >= fb.y0 - 0.5, ax.get_title()  # whole legend inside
            boxes.append(lb)
            labels = [t.get_text() for t in leg.get_texts()]
            vocabulary = {"water": WATER_CLASSES, "change": CHANGE_CLASSES}.get(ax.get_title())
            if vocabulary is not None:
                assert labels == list(vocabulary.values())  # every class, in order, unobserved included
            else:
                assert len(labels) == 11 and labels[-1] == "unobserved"
        for i, a in enumerate(boxes):  # no legend runs into a map or another legend
            for b in boxes[i + 1:]:
                assert a.x1 <= b.x0 + 0.5 or b.x1 <= a.x0 + 0.5 or a.y1 <= b.y0 + 0.5 or b.y1 <= a.y0 + 0.5
    finally:
        report._plt().close(fig)


def test_lonlat_ticks_on_a_geographic_grid():
    g = Grid((100, 100), Affine(0.01, 0, 10.0, 0, -0.01, 50.5), "EPSG:4326")  # 10..11 E, 49.5..50.5 N
    (xp, xl), (yp, yl) = lonlat_ticks(g)
    assert xl == ["10.00°E", "10.25°E", "10.50°E", "10.75°E", "11.00°E"]
    assert xp == pytest.approx([0, 25, 50, 75, 100])
    lat_at = dict(zip(yl, yp))
    assert list(lat_at) == ["49.50°N", "49.75°N", "50.00°N", "50.25°N", "50.50°N"]
    assert [lat_at[k] for k in lat_at] == pytest.approx([100, 75, 50, 25, 0])  # rows: north at the top


def test_lonlat_ticks_on_a_projected_grid_are_where_the_degrees_are():
    g = _utm(400, 500, px=100.0)  # 40 x 50 km in UTM 14N
    (xp, xl), (yp, yl) = lonlat_ticks(g)
    assert len(xl) >= 2 and len(yl) >= 2
    to_ll = Transformer.from_crs("EPSG:32614", "EPSG:4326", always_xy=True)
    t = g.transform
    for p, label in zip(xp, xl):
        lon, _ = to_ll.transform(*(t * (p, g.height)))  # on the bottom edge
        assert -float(label.rstrip("°W")) == pytest.approx(lon, abs=2e-4)
    for p, label in zip(yp, yl):
        _, lat = to_ll.transform(*(t * (0, p)))  # on the left edge
        assert float(label.rstrip("°N")) == pytest.approx(lat, abs=2e-4)


def test_scale_bar_is_ground_metres():
    # 826 m Web Mercator pixels at 45 N are ~584 m on the ground: the bar is drawn in ground metres
    t = Affine(826.0, 0, 6_436_000, 0, -826.0, 5_621_521 + 200 * 826)
    mx, my = area.ground_pixel_size(t, "EPSG:3857", (400, 400))
    assert mx == pytest.approx(826 * np.cos(np.radians(45)), rel=0.01) and my == pytest.approx(mx, rel=0.01)
    g = Grid((400, 400), t, "EPSG:3857")
    fig = draw_maps([Panel("image", np.ones((40, 40, 3), np.float32), coords=True)], g)
    try:
        from matplotlib.offsetbox import AnchoredOffsetbox, TextArea
        from matplotlib.patches import Rectangle

        box = next(a for a in fig.axes[0].artists if isinstance(a, AnchoredOffsetbox))
        label = next(t for t in box.findobj(TextArea)).get_text()
        assert label == "50 km"  # 30% of 400 x 584 m = 70 km -> 50 km
        bar_px = next(r for r in box.findobj(Rectangle) if r is not box.patch).get_width()  # in grid pixels
        assert bar_px * mx == pytest.approx(50_000, rel=1e-9)
    finally:
        report._plt().close(fig)


def test_quicklooks_show_the_cluster_map_colours(series_run):
    _, out = series_run
    import matplotlib.image

    for d in DATES:
        with rasterio.open(out / f"clusters_{d}.tif") as ds:
            ids = np.unique(ds.read(1))
            cmap = ds.colormap(1)
        png = (matplotlib.image.imread(out / f"quicklook_{d}.png")[..., :3] * 255).round().astype(int).reshape(-1, 3)
        for i in ids[ids != 255]:
            c = np.array(cmap[int(i)][:3])
            assert (np.abs(png - c).max(axis=1) <= 1).sum() > 50, (d, int(i), c)  # a patch of the map in that colour


def test_quicklooks_of_a_run_share_one_layout(series_run):
    _, out = series_run
    widths = {_png_size(out / f"quicklook_{d}.png")[0] for d in DATES}
    assert len(widths) == 1  # the first date (no change map) is laid out in the others' grid (not one map narrower)


# ---------------------------------------------------------------------------------------------
# report.html: plain headers with units, one rounding, coordinates, the area warning
# ---------------------------------------------------------------------------------------------
def _cells(html, header):
    """The <td> texts of the column headed ``header`` in the first table that has it."""
    for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
        heads = re.findall(r"<th>(.*?)</th>", table)
        if header in heads:
            j = heads.index(header)
            return [re.findall(r"<td>(.*?)</td>", row)[j] for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]
    raise AssertionError(f"no column {header!r}")


def test_report_tables_have_plain_headers_units_and_one_rounding(series_run):
    res, out = series_run
    html = (out / "report.html").read_text(encoding="utf-8")
    heads = re.findall(r"<th>(.*?)</th>", html)
    assert "Water (km²)" in heads and "Water gained (km²)" in heads and "Net change (% of the first date&#x27;s water)" in heads
    assert not [h for h in heads if "_" in h]  # no raw JSON keys
    nd = report.area_decimals(res.summary)
    assert nd == 4  # the smallest water area, 0.0100 km2 (100 pixels of 100 m2), to 3 significant digits
    for col in ("Water (km²)", "Observed (km²)", "Water gained (km²)", "Polygon area (km²)", "Area (km²)"):
        for v in _cells(html, col):
            assert re.fullmatch(r"-?[\d,]+\.\d{%d}|< 0\.0+1" % nd, v), (col, v)
    assert _cells(html, "Water (km²)") == [f"{d['water_km2']:,.4f}" for d in res.summary["dates"]]
    assert all(re.fullmatch(r"-?[\d,]+\.\d", v) for v in _cells(html, "Water (% of observed)"))
    # corners in degrees, from the grid: the north-west corner is the transform's origin
    lon, lat = Transformer.from_crs("EPSG:32614", "EPSG:4326", always_xy=True).transform(500000, 5_200_000)
    assert _cells(html, "Longitude")[0] == f"{abs(lon):.4f}°W" and _cells(html, "Latitude")[0] == f"{lat:.4f}°N"
    assert "does not preserve area" not in html  # UTM: planar and ground areas agree within 0.1%
    assert 0.99 < res.summary["grid"]["planar_area_ratio"] < 1.01
    # the first date's quicklook says it has no change map; change.png is the first -> last change
    assert f"{DATES[0]}: image, clusters, water (the first date: no change map)" in html
    assert f"Change from the first to the last date ({DATES[0]} → {DATES[-1]})" in html


def test_km2_formatting_is_one_rule():
    assert report_page._fmt(20091.4, "km2", 1) == "20,091.4" and report_page._fmt(13.1625, "km2", 1) == "13.2"
    assert report_page._fmt(0.00004, "km2", 2) == "< 0.01" and report_page._fmt(0.0, "km2", 2) == "0.00"
    assert report.area_decimals({"dates": [{"water_km2": 22570.9}, {"water_km2": 2097.6}]}) == 1
    assert report.area_decimals({"dates": [{"water_km2": 2.0666}, {"water_km2": 3.85}]}) == 2


@pytest.fixture(scope="module")
def mercator_run(tmp_path_factory):
    """Two dates of a lake on a Web Mercator grid at 45 N (20 m map pixels, ~14 m on the ground)."""
    d = tmp_path_factory.mktemp("mercator")
    t = Affine(20, 0, 1_000_000, 0, -20, 5_621_521)
    scenes = []
    for i, (date, lake) in enumerate(zip(DATES[:2], LAKES[:2])):
        p = write_geotiff(d / f"m{i}.tif", lake_scene(40, 40, lake, seed=i), t, "EPSG:3857")
        scenes.append({"date": date, "path": str(p), "sensor": "naip"})
    cfg = RunConfig.from_dict({
        "scenes": scenes, "clustering": {"k": 2, "seed": 0, "sample_size": 1000},
        "output": {"dir": str(d / "out"), "formats": ["gpkg"], "min_area_m2": 0},
        "compute": {"scheduler": "synchronous"},
    }, base_dir=d)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("rs_change")
    logger.addHandler(handler)
    try:
        res = run(cfg)
    finally:
        logger.removeHandler(handler)
    return res, d / "out", [r.getMessage() for r in records]


def test_web_mercator_warns_in_the_log_and_the_report(mercator_run):
    res, out, messages = mercator_run
    ratio = res.summary["grid"]["planar_area_ratio"]
    assert ratio == pytest.approx(1 / np.cos(np.radians(45)) ** 2, rel=0.01)  # sec^2(45 N) = 2
    warned = [m for m in messages if "does not preserve area" in m]
    assert len(warned) == 1 and "EPSG:3857" in warned[0] and "area_m2" in warned[0] and "ground area" in warned[0]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<p class="warning"><strong>Areas:</strong> The grid&#x27;s CRS (EPSG:3857) does not preserve area' in html
    assert f"{ratio:.2f} times" in html
    # two dates: the change table, no table of consecutive dates or series classes repeating it
    assert "Change, first to last date" in html and "Change between consecutive dates" not in html
    assert "Series classes" not in html


def test_planar_area_ratio_by_crs():
    assert area.planar_area_ratio(Affine(1, 0, 0, 0, -1, 0), "EPSG:4326", 1.0) is None  # degrees: no planar area
    assert area.planar_area_note("EPSG:32614", 1.0008) is None
    assert "2.00 times" in area.planar_area_note("EPSG:3857", 2.0)
