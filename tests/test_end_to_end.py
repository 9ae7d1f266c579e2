"""End to end: tiny synthetic scenes with answers a person can check, and the shipped samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from affine import Affine
from pyproj import Geod

from rs_change.cli import main
from rs_change.console import format_table
from rs_change.config import RunConfig
from rs_change.pipeline import run

from .conftest import CONFIGS, lake_scene

UTM = "EPSG:32614"


def _config(tmp_path: Path, scenes: list[dict], **extra: object) -> Path:
    data = {"scenes": scenes, "clustering": {"k": 2, "seed": 0}, "output": {"dir": "out"}, **extra}
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_square_lake_in_utm_has_known_area(tmp_path, make_tif):
    # 5 x 5 pixels of 10 m = 2,500 m2 on the map; on the ground divided by the UTM scale factor^2.
    t = Affine(10, 0, 500000, 0, -10, 5200000)  # central meridian of zone 14: k = 0.9996
    make_tif("a.tif", lake_scene(), t, UTM, nodata=0)
    cfg = _config(tmp_path, [{"date": "2020-01-01", "path": "a.tif", "sensor": "naip"}])
    res = run(RunConfig.from_yaml(cfg))
    d = res.summary["dates"][0]
    assert d["water_pixels"] == 25
    assert d["water_km2"] * 1e6 == pytest.approx(2500 / 0.9996**2, rel=1e-5)
    assert d["observed_pixels"] == 400 and d["unobserved_pixels"] == 0
    # every output named in the issue is there
    out = tmp_path / "out"
    for name in ("water_2020-01-01.tif", "water.gpkg", "summary.json", "summary.csv", "config.yaml"):
        assert (out / name).exists(), name
    with rasterio.open(out / "water_2020-01-01.tif") as ds:
        m = ds.read(1)
    assert m.dtype == np.uint8 and int((m == 1).sum()) == 25 and m[7, 7] == 1 and m[0, 0] == 0
    assert json.loads((out / "summary.json").read_text()) == res.summary


def test_lake_in_degrees_area_depends_on_latitude(tmp_path, make_tif):
    res_deg = 0.001
    areas = {}
    for lat in (0.0, 60.0):
        t = Affine(res_deg, 0, 10.0, 0, -res_deg, lat + 0.01)
        make_tif(f"l{lat}.tif", lake_scene(), t, "EPSG:4326", nodata=0)
        cfg = _config(tmp_path, [{"date": "2020-01-01", "path": f"l{lat}.tif", "sensor": "naip"}], output={"dir": f"o{lat}"})
        d = run(RunConfig.from_yaml(cfg)).summary["dates"][0]
        assert d["water_pixels"] == 25
        areas[lat] = d["water_km2"] * 1e6
        # geodesic truth: the 5 x 5 pixel block is rows 5..10, cols 5..10
        g = Geod(ellps="WGS84")
        lon0, lat_top = 10.0 + 5 * res_deg, lat + 0.01 - 5 * res_deg
        lons = [lon0, lon0 + 5 * res_deg, lon0 + 5 * res_deg, lon0]
        lats = [lat_top, lat_top, lat_top - 5 * res_deg, lat_top - 5 * res_deg]
        truth = abs(g.polygon_area_perimeter(lons, lats)[0])
        assert areas[lat] == pytest.approx(truth, rel=1e-4)
    # about cos(60 deg) = 0.5; the ellipsoid's curvature at 60 N adds 1%
    assert 0.5 < areas[60.0] / areas[0.0] < 0.51


def test_two_dates_known_gained_and_lost(tmp_path, make_tif, capsys):
    t = Affine(10, 0, 500000, 0, -10, 5200000)
    a = lake_scene(lake=(slice(5, 10), slice(5, 10)))  # 25 px
    b = lake_scene(lake=(slice(5, 10), slice(8, 15)), seed=1)  # 35 px; 10 persistent, 15 lost, 25 gained
    make_tif("a.tif", a, t, UTM, nodata=0)
    make_tif("b.tif", b, t, UTM, nodata=0)
    cfg = _config(tmp_path, [
        {"date": "2010-06-01", "path": "a.tif", "sensor": "naip"},
        {"date": "2020-06-01", "path": "b.tif", "bands": {"red": 1, "green": 2, "blue": 3, "nir": 4}},
    ])
    assert main(["run", str(cfg)]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert format_table(summary) in printed  # what the CLI prints comes from summary.json
    px = 100 / 0.9996**2 / 1e6
    ch = summary["change"]
    assert ch["from"] == "2010-06-01" and ch["to"] == "2020-06-01"
    assert ch["gained_pixels"] == 25 and ch["lost_pixels"] == 15
    assert ch["gained_km2"] == pytest.approx(25 * px, abs=1e-6)
    assert ch["lost_km2"] == pytest.approx(15 * px, abs=1e-6)
    assert ch["net_km2"] == pytest.approx(10 * px, abs=2e-6)
    assert ch["net_percent"] == pytest.approx(40.0, rel=2e-3)
    with rasterio.open(out / "change.tif") as ds:
        c = ds.read(1)
        assert ds.colormap(1)[2][:3] != ds.colormap(1)[3][:3]
        assert "water gained" in ds.tags(1).values()
    assert c[7, 6] == 3 and c[7, 12] == 2 and c[7, 9] == 1 and c[0, 0] == 0
    layers = {name for name, _ in pyogrio.list_layers(out / "water.gpkg")}
    assert {"water_2010_06_01", "water_2020_06_01", "layer_styles"} <= layers  # SQL-safe names, QGIS styles
    info = pyogrio.read_info(out / "water.gpkg", layer="change")
    assert dict(zip(info["fields"], info["dtypes"]))["from_date"] == "datetime64[D]"  # Date fields
    assert "ground" in info["layer_metadata"]["AREA_M2"] and info["layer_metadata"]["SOFTWARE"].startswith("rs-change ")
    styles = pyogrio.read_dataframe(out / "water.gpkg", layer="layer_styles")
    assert set(styles["f_table_name"]) == {"water_2010_06_01", "water_2020_06_01", "change", "waterbodies"} and styles["useAsDefault"].all()
    assert "water gained" in styles.set_index("f_table_name").loc["change", "styleQML"]
    # change.csv: the first -> last row carries the same figures as summary.json
    import csv

    rows = list(csv.DictReader((out / "change.csv").read_text().splitlines()))
    assert [r["period"] for r in rows] == ["first_to_last"]
    assert (rows[0]["from"], rows[0]["gained_pixels"], rows[0]["lost_pixels"]) == ("2010-06-01", "25", "15")
    assert float(rows[0]["net_km2"]) == ch["net_km2"] and float(rows[0]["unobserved_km2"]) == ch["unobserved_km2"]
    with rasterio.open(out / "water_2010-06-01.tif") as ds:  # provenance in the file
        assert ds.descriptions[0].startswith("water 2010-06-01") and ds.tags()["TIFFTAG_SOFTWARE"].startswith("rs-change ")
        assert [i["date"] for i in json.loads(ds.tags()["INPUTS"])] == ["2010-06-01", "2020-06-01"]


def test_nodata_is_unobserved_not_land(tmp_path, make_tif):
    t = Affine(10, 0, 500000, 0, -10, 5200000)
    img = lake_scene()
    img[:, :, :4] = 0  # 4 columns of nodata = 80 px
    make_tif("a.tif", img, t, UTM, nodata=0)
    cfg = _config(tmp_path, [{"date": "2020-01-01", "path": "a.tif", "sensor": "naip"}])
    d = run(RunConfig.from_yaml(cfg), write=False).summary["dates"][0]
    assert d["unobserved_pixels"] == 80 and d["observed_pixels"] == 320 and d["water_pixels"] == 25


SAMPLES = ["naip_devils_lake", "modis_aral", "landsat_pucallpa"]


@pytest.fixture(scope="module", params=SAMPLES)
def sample_run(request, tmp_path_factory):
    """Each shipped config run once through the CLI, as a user would: (name, output dir, stdout)."""
    import contextlib
    import io

    name = request.param
    out = tmp_path_factory.mktemp(name)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["run", str(CONFIGS / f"{name}.yaml"), "--output", str(out), "--overwrite"]) == 0
    return name, out, buf.getvalue()


def test_sample_configs_run(sample_run):
    name, out, printed = sample_run
    summary = json.loads((out / "summary.json").read_text())
    assert format_table(summary) in printed  # what the CLI prints is summary.json
    assert len(summary["dates"]) == 2 and "change" in summary
    for d in summary["dates"]:
        assert d["water_km2"] > 0
        assert d["observed_km2"] > d["water_km2"]
        assert {m["metric"] for m in d["model_selection"]} <= {"euclidean", "manhattan", "chebyshev"}
    for d in summary["dates"]:
        layer = f"water_{d['date'].replace('-', '_')}"
        gdf = pyogrio.read_dataframe(out / "water.gpkg", layer=layer)
        assert gdf.crs is not None and len(gdf) > 0
        removed = summary["polygons"]["layers"][layer]["removed_km2"]
        assert gdf["area_m2"].sum() / 1e6 + removed == pytest.approx(d["water_km2"], rel=1e-6)


def test_sample_outputs_are_valid_cogs(sample_run):
    from rio_cogeo.cogeo import cog_validate

    _, out, _ = sample_run
    tifs = sorted(out.glob("*.tif"))
    assert {"change.tif"} <= {p.name for p in tifs} and len(tifs) >= 3
    for p in tifs:
        valid, errors, _ = cog_validate(str(p), quiet=True)
        assert valid, (p.name, errors)


@pytest.mark.parametrize("sample_run", ["modis_aral"], indirect=True)  # Aral only: no skipped cases for the others
def test_aral_pixels_are_web_mercator_sized(sample_run):
    """The article assumed 0.25 km2 pixels; on the ground they are 0.33-0.35 km2 there."""
    name, out, _ = sample_run
    assert name == "modis_aral"
    with rasterio.open(out / "change.tif") as ds:
        assert (ds.height, ds.width) == (460, 390)  # the article's crop rows 140:600, cols 110:500
    summary = json.loads((out / "summary.json").read_text())
    for d in summary["dates"]:
        assert 0.33 < d["observed_km2"] / d["observed_pixels"] < 0.35
        assert d["water_km2"] / d["water_pixels"] > 0.33
    # the article: 17,125 km2 -> 1,960 km2, -89%, with k = 3 and 0.25 km2 pixels
    assert -95 < summary["change"]["net_percent"] < -80


def test_sample_reports_warn_about_planar_areas_only_for_web_mercator(sample_run):
    """Aral's EPSG:3857 grid measures 2x its ground area in planar units; UTM and degrees do not."""
    import struct

    name, out, _ = sample_run
    summary = json.loads((out / "summary.json").read_text())
    ratio = summary["grid"]["planar_area_ratio"]
    html = (out / "report.html").read_text(encoding="utf-8")
    if name == "modis_aral":
        # 826 x 826 m map pixels over their mean ground area (339,753 m2)
        assert ratio == pytest.approx(825.8121661721074 * 826.2305989583341 / 339753.13361, rel=1e-4)
        assert "does not preserve area" in html and f"{ratio:.2f} times its ground area" in html
    else:
        assert ratio is None if name == "landsat_pucallpa" else 0.99 < ratio < 1.01
        assert "does not preserve area" not in html
    with open(out / f"quicklook_{summary['dates'][-1]['date']}.png", "rb") as f:
        w, h = struct.unpack(">II", f.read(24)[16:24])
    # the Aral crop is taller than wide (2 x 2 tall maps), Pucallpa's river twice as wide as tall
    assert (h > w) if name == "modis_aral" else (w > h)


def test_zero_in_one_band_is_data_not_nodata(tmp_path, make_tif):
    """With the NAIP profile, nodata 0 marks a pixel unobserved only where every band is 0 (the
    collar): deep water at NIR = 0 in an 8-bit tile is water, not a hole."""
    t = Affine(10, 0, 500000, 0, -10, 5200000)
    img = lake_scene()
    img[3, 6:9, 6:9] = 0  # NIR = 0 inside the lake: 9 real water pixels
    img[:, 0, :] = 0  # a true nodata row: 20 pixels
    make_tif("a.tif", img, t, UTM, nodata=0)
    cfg = _config(tmp_path, [{"date": "2020-01-01", "path": "a.tif", "sensor": "naip"}])
    d = run(RunConfig.from_yaml(cfg), write=False).summary["dates"][0]
    assert d["unobserved_pixels"] == 20 and d["water_pixels"] == 25
    # a custom band profile keeps GDAL's per-band meaning: a band at nodata has no value there
    cfg = _config(tmp_path, [{"date": "2020-01-01", "path": "a.tif", "bands": {"red": 1, "green": 2, "blue": 3, "nir": 4}}],
                  output={"dir": "out2"})
    d = run(RunConfig.from_yaml(cfg), write=False).summary["dates"][0]
    assert d["unobserved_pixels"] == 20 + 9 and d["water_pixels"] == 25 - 9
