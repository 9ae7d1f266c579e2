"""A three-date run on tiny synthetic lakes: many-date products, polygons, report (and the
report in headless Chromium when it is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import rasterio
from affine import Affine

from rs_change.config import RunConfig
from rs_change.pipeline import run
from rs_change.report import decimated_shape

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
    # permanent: the first lake; new: columns 20-24 of the first lake's rows (water 2002 and 2003);
    # seasonal: water only in 2002; never: the rest
    assert c["permanent water"] == 100 and c["new water"] == 40 and c["lost water"] == 0
    assert c["seasonal / intermittent"] == 16 * 18 - 140
    assert c["never water"] == 1600 - 16 * 18
    assert s["series"]["classes_km2"]["permanent water"] == pytest.approx(100 * px, rel=1e-3)
    with rasterio.open(out / "frequency.tif") as ds:
        f = ds.read(1)
    assert f[15, 15] == 100 and f[15, 22] == 67 and f[9, 9] == 33 and f[0, 0] == 0


def test_polygons_add_up_to_the_raster(series_run):
    res, out = series_run
    p = res.summary["polygons"]
    for name, layer in p["layers"].items():
        assert layer["area_km2"] + layer["removed_km2"] == pytest.approx(layer["raster_km2"], rel=0.01), name
    assert p["layers"]["water_2002-06-01"]["raster_km2"] == res.summary["dates"][1]["water_km2"]
    assert (out / "water.gpkg").is_file() and (out / "water_geojson" / "change.geojson").is_file()


def test_report_files_and_html(series_run):
    res, out = series_run
    for name in ["timeseries.png", "timeseries.csv", "frequency.png", "series_classes.png", "report.html",
                 *[f"quicklook_{d}.png" for d in DATES], "series_classes.qml", "change.qml", "frequency.qml"]:
        assert (out / name).is_file(), name
    rows = (out / "timeseries.csv").read_text().splitlines()
    assert rows[0].startswith("date,water_km2") and len(rows) == 4
    html = (out / "report.html").read_text(encoding="utf-8")
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == 3 + 3  # quicklooks, timeseries, frequency, series classes
    assert "src=\"http" not in html and "src=\"file" not in html  # self-contained
    assert "permanent water" in html and DATES[1] in html and "clustering" in html
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


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (CI may lack it)")
def test_report_opens_in_headless_chromium_with_every_image(series_run, tmp_path):
    _, out = series_run
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           (out / "report.html").as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert m, dom[:500]
    assert int(m.group(2)) == 6 and m.group(1) == m.group(2)
