"""The array / DataArray API: doctests, documented public names, numpy == DataArray == `rs-change
run` on a crop of the NAIP sample tiles, and a 2009 model applied to 2020."""

from __future__ import annotations

import doctest
import inspect
import json
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window, from_bounds

import rs_change as rc
from rs_change import api, cluster_scores, kmeans, model, scaler, scenes
from rs_change.config import RunConfig

from .conftest import SAMPLE, lake_scene

NAIP = SAMPLE / "naip"
T09 = NAIP / "m_4709963_se_14_1_20090818.tif"
T20 = NAIP / "m_4709963_se_14_1_20200831.tif"


@pytest.mark.parametrize("mod", [api, model, scenes, kmeans, scaler, cluster_scores])
def test_doctests(mod, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 5 and res.failed == 0


def test_every_public_name_is_documented() -> None:
    missing = {}
    for name in rc.__all__:
        obj = getattr(rc, name)
        if not callable(obj):  # __version__, PROFILES, CHANGE_CLASSES: data
            continue
        doc = inspect.getdoc(obj) or ""
        need = ["Examples"]
        if inspect.isclass(obj) and issubclass(obj, Exception):
            pass
        elif inspect.isclass(obj):
            if "Parameters" not in doc and "Attributes" not in doc:
                need.append("Parameters")
        else:
            need += ["Parameters", "Returns"]
        gaps = [s for s in need if s not in doc]
        if gaps:
            missing[name] = gaps
    assert not missing, missing


def test_numpy_and_dataarray_give_the_same(tmp_path) -> None:
    from affine import Affine

    img = lake_scene(30, 30, (slice(3, 12), slice(4, 10)))  # 54 lake pixels
    t = Affine(10, 0, 500000, 0, -10, 5200000)
    m = rc.fit_model(img, k=2, sensor="naip")
    mask = rc.label_water(img, m, sensor="naip")
    assert int((mask == 1).sum()) == 54
    da = rc.Scene({r: img[b - 1].astype(np.float32) for r, b in rc.PROFILES["naip"].bands.items()},
                  np.ones((30, 30), bool), t, "EPSG:6933").to_xarray()
    m2 = rc.fit_model(da, k=2)  # roles from the band coordinates
    np.testing.assert_array_equal(m2.centers, m.centers)
    mda = rc.label_water(da, m2)
    assert type(mda).__name__ == "DataArray" and mda.rio.crs.to_epsg() == 6933 and mda.rio.transform() == t
    np.testing.assert_array_equal(mda.values, mask)
    assert rc.water_area(mda) == rc.water_area(mask, t, "EPSG:6933") == pytest.approx(5400.0)
    f = rc.compute_features(da)
    assert list(f.feature.values) == m.names and f.shape == (5, 30, 30)
    gdf = rc.polygonize(mda)
    assert len(gdf) == 1 and gdf["pixels"].tolist() == [54] and gdf.crs.to_epsg() == 6933


# --------------------------------------------------------------------------------------------
# NAIP crop: the API on arrays, on DataArrays, and `rs-change run` on the files
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def naip_crop(tmp_path_factory):
    if not T09.exists():
        pytest.skip("sample tiles missing")
    d = tmp_path_factory.mktemp("naip")
    with rasterio.open(T09) as src:
        win = Window(300, 200, 256, 256)
        prof = src.profile | {"width": 256, "height": 256, "transform": src.window_transform(win), "tiled": False}
        prof.pop("blockxsize", None), prof.pop("blockysize", None)
        with rasterio.open(d / "a.tif", "w", **prof) as dst:
            dst.write(src.read(window=win))
        bounds = rasterio.windows.bounds(win, src.transform)
    with rasterio.open(T20) as src:
        w2 = from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
        w2 = Window(w2.col_off - 3, w2.row_off - 3, w2.width + 6, w2.height + 6)  # margin: the grids are shifted
        prof = src.profile | {"width": int(w2.width), "height": int(w2.height), "transform": src.window_transform(w2), "tiled": False}
        prof.pop("blockxsize", None), prof.pop("blockysize", None)
        with rasterio.open(d / "b.tif", "w", **prof) as dst:
            dst.write(src.read(window=w2))
    text = """
scenes:
  - {date: 2009-08-18, path: a.tif, sensor: naip}
  - {date: 2020-08-31, path: b.tif, sensor: naip}
clustering: {k: 3, seed: 0, sample_size: 2000}
output: {dir: out, polygons: false}
"""
    # sample_size 2000 of 65536 pixels: the pipeline's decimated read (every 4th pixel, no overviews in
    # these crops) and the API's sampling of arrays must pick the same pixels
    res = rc.run(RunConfig.from_text(text, base_dir=d), overwrite=True)
    return d, res


def test_api_on_arrays_equals_run(naip_crop) -> None:
    d, res = naip_crop
    s09 = rc.read_scene(d / "a.tif", "naip", date="2009-08-18")
    s20 = rc.read_scene(d / "b.tif", "naip", date="2020-08-31", like=s09)
    m09, m20 = rc.fit_model(s09, sample_size=2000), rc.fit_model(s20, sample_size=2000)
    w09, w20 = rc.label_water(s09, m09), rc.label_water(s20, m20)
    cmp = rc.compare([w09, w20], s09.transform, s09.crs, labels=["2009-08-18", "2020-08-31"])
    for run_d, api_d, m in zip(res.summary["dates"], cmp.masks, (m09, m20)):
        assert api_d["water_pixels"] == run_d["water_pixels"] > 0
        assert api_d["observed_pixels"] == run_d["observed_pixels"]
        assert api_d["water_km2"] == pytest.approx(run_d["water_km2"], abs=2e-6)
        assert m.water_ids == run_d["water_clusters"]
        saved = rc.WaterModel.load(d / "out" / f"model_{run_d['date']}.json")
        np.testing.assert_allclose(saved.centers, m.centers, rtol=0, atol=1e-12)
    for key in ("gained_pixels", "lost_pixels", "unobserved_pixels"):
        assert cmp.stats[key] == res.summary["change"][key]
    assert cmp.stats["net_km2"] == pytest.approx(res.summary["change"]["net_km2"], abs=2e-6)
    assert rc.water_area(w09, s09.transform, s09.crs) / 1e6 == pytest.approx(res.summary["dates"][0]["water_km2"], abs=2e-6)


def test_api_on_dataarray_equals_run(naip_crop) -> None:
    import rioxarray

    d, res = naip_crop
    da = rioxarray.open_rasterio(d / "a.tif")  # bands numbered 1..4: roles from the sensor profile
    m = rc.fit_model(da, sensor="naip", sample_size=2000)
    w = rc.label_water(da, m, sensor="naip")
    assert type(w).__name__ == "DataArray"
    assert int((w.values == 1).sum()) == res.summary["dates"][0]["water_pixels"]
    assert rc.water_area(w) / 1e6 == pytest.approx(res.summary["dates"][0]["water_km2"], abs=2e-6)


def test_cluster_maps_of_the_run(naip_crop) -> None:
    """The cluster map tells the truth now that water is decided per pixel: its water clusters are
    the clusters with a majority of water, water pixels all pass the rule, and the saved model
    gives the run's water mask pixel for pixel."""
    d, res = naip_crop
    s09 = rc.read_scene(d / "a.tif", "naip", date="2009-08-18")
    for date in res.summary["dates"]:
        with rasterio.open(d / "out" / f"clusters_{date['date']}.tif") as ds:
            cl = ds.read(1)
            cmap = ds.colormap(1)
            tags = ds.tags()
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        with rasterio.open(d / "out" / f"water_{date['date']}.tif") as ds:
            water = ds.read(1)
        ids = [c["id"] for c in date["clusters"]]
        assert json.loads(tags["CLUSTER_IDS"]) == ids and json.loads(tags["WATER_CLUSTERS"]) == date["water_clusters"]
        for c in date["clusters"]:  # colour table: water clusters blue, the others not
            r, g, b, _ = cmap[c["id"]]
            assert (b > r + 40) == (c["id"] in date["water_clusters"])
        saved = rc.WaterModel.load(d / "out" / f"model_{date['date']}.json")
        assert tags["WATER_DECISION"].startswith("per pixel") and saved.per_pixel
        assert json.loads(tags["WATER_RULE"])["t_index"] == pytest.approx(saved.rule.t_index, abs=1e-6)
        # the saved model applied to the date's pixels (read as the run aligns them) = the run's water mask
        scene = rc.read_scene(d / ("a.tif" if date["date"] == "2009-08-18" else "b.tif"), "naip", like=s09)
        np.testing.assert_array_equal(rc.label_water(scene, saved), water)
        assert np.array_equal(cl == 255, water == 255)
        # every water pixel passes the rule (water mask within the rule's pixels); some pixels that pass are not water
        X = api.feature_matrix(scene.bands, scene.valid, saved.names)
        passes = np.zeros(water.shape, bool)
        passes[scene.valid] = saved.rule.passes(X, saved.names)
        assert not ((water == 1) & ~passes).any()
        assert (passes & (water == 0)).any()  # the fine clusters refine the rule: pixels that pass but are not water
        # per cluster: the water fraction over the whole map matches the sampled fraction in summary.json
        # (2000-pixel sample: within 4 binomial standard errors + 1 %), and the majority gives WATER_CLUSTERS
        for c in date["clusters"]:
            sel = cl == c["id"]
            frac = float((water[sel] == 1).mean())
            p, n = c["stats"]["water_fraction"], c["pixels"]
            assert abs(frac - p) <= 4 * np.sqrt(max(p * (1 - p), 1e-4) / n) + 0.01, (date["date"], c["id"], frac, p)
            assert c["is_water"] == (p >= 0.5) == (c["id"] in date["water_clusters"])
        assert (d / "out" / f"clusters_{date['date']}.png").stat().st_size > 0


def test_model_2009_applied_to_2020(naip_crop) -> None:
    """One model, both dates: the run with fit_on and the API agree, and cluster ids keep their meaning."""
    d, _ = naip_crop
    text = """
scenes:
  - {date: 2009-08-18, path: a.tif, sensor: naip}
  - {date: 2020-08-31, path: b.tif, sensor: naip}
clustering: {k: 3, seed: 0, sample_size: 2000, fit_on: 2009-08-18}
output: {dir: out_fit_on, polygons: false}
"""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = rc.run(RunConfig.from_text(text, base_dir=d), overwrite=True)
        s09 = rc.read_scene(d / "a.tif", "naip")
        s20 = rc.read_scene(d / "b.tif", "naip", like=s09)
        m09 = rc.fit_model(s09, label="2009-08-18", sample_size=2000)
        w20 = rc.label_water(s20, m09)
    drift = [w for w in rec if issubclass(w.category, rc.ModelDriftWarning)]
    frac = m09.check_spectra(api.feature_matrix(s20.bands, s20.valid, m09.names), warn=False)
    assert bool(drift) == (frac > model.DRIFT_THRESHOLD)  # warned exactly when the 2020 spectra are far off
    d09, d20 = res.summary["dates"]
    assert d09["water_clusters"] == d20["water_clusters"] == m09.water_ids
    assert d20["water_pixels"] == int((w20 == 1).sum())
    assert d20["water_km2"] == pytest.approx(rc.water_area(w20, s20.transform, s20.crs) / 1e6, abs=2e-6)
    # same ids, same meaning: measured on each date's own pixels, every water cluster has NDWI > 0
    # and every other cluster NDWI <= 0
    for date in (d09, d20):
        for c in date["clusters"]:
            if c["pixels"]:
                assert (c["centroid"]["ndwi"] > 0) == c["is_water"], (date["date"], c)


def test_write_outputs_styles_its_files_and_refuses_to_replace_them(tmp_path) -> None:
    """write_outputs writes what rs-change run writes for the same masks: each raster's .qml and
    .aux.xml (listed in what it returns), layers with a Date field and a layer_styles table;
    a style file already in the folder is not replaced without overwrite=True."""
    import pyogrio
    from affine import Affine

    m = {"2009-08-18": np.array([[1, 0], [1, 1]], np.uint8), "2020-08-31": np.array([[1, 1], [1, 1]], np.uint8)}
    t = Affine(10, 0, 500000, 0, -10, 5200000)
    files = api.write_outputs(tmp_path / "a", m, t, "EPSG:32614")
    names = [f.name for f in files]
    assert {"water_2009-08-18.qml", "water_2009-08-18.tif.aux.xml", "change.qml", "change.tif.aux.xml"} <= set(names)
    assert all(f.exists() for f in files)
    gpkg = tmp_path / "a" / "water.gpkg"
    assert [name for name, _ in pyogrio.list_layers(gpkg)] == ["water_2009_08_18", "water_2020_08_31", "layer_styles"]
    info = pyogrio.read_info(gpkg, layer="water_2009_08_18")
    assert dict(zip(info["fields"], info["dtypes"]))["date"] == "datetime64[D]" and info["features"] == 1
    assert pyogrio.read_dataframe(gpkg, layer="water_2009_08_18")["pixels"].tolist() == [3]

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "change.qml").write_text("mine")
    with pytest.raises(rc.errors.OutputError, match="change.qml"):
        api.write_outputs(tmp_path / "b", m, t, "EPSG:32614")
    assert (tmp_path / "b" / "change.qml").read_text() == "mine"


def test_write_outputs_writes_through_the_run_staging_and_leaves_nothing_on_error(tmp_path) -> None:
    """write_outputs stages its files and swaps them in as one set (rs_change.outputs.commit):
    a failure half-way leaves no file and no staging folder, and overwrite=True replaces the set."""
    from affine import Affine

    t = Affine(10, 0, 500000, 0, -10, 5200000)
    m = {"2009-08-18": np.array([[1, 0], [1, 1]], np.uint8), "2020-08-31": np.array([[1, 1], [1, 1]], np.uint8)}
    bad = {"2009-08-18": m["2009-08-18"], "2020-08-31": np.ones((3, 3), np.uint8)}  # change map of two shapes fails
    with pytest.raises(Exception):
        api.write_outputs(tmp_path / "a", bad, t, "EPSG:32614", polygons=False)
    assert not (tmp_path / "a").exists()  # the folder it created is removed again, with the staged COG
    (tmp_path / "b").mkdir()
    with pytest.raises(Exception):
        api.write_outputs(tmp_path / "b", bad, t, "EPSG:32614", polygons=False)
    assert list((tmp_path / "b").iterdir()) == []
    files = api.write_outputs(tmp_path / "b", m, t, "EPSG:32614", polygons=False)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(f.name for f in files)
    first = (tmp_path / "b" / "change.tif").read_bytes()
    m2 = {"2009-08-18": np.zeros((2, 2), np.uint8), "2020-08-31": m["2020-08-31"]}
    api.write_outputs(tmp_path / "b", m2, t, "EPSG:32614", polygons=False, overwrite=True)
    assert (tmp_path / "b" / "change.tif").read_bytes() != first
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(f.name for f in files)


def test_band_keywords_are_checked(tmp_path) -> None:
    """read_scene and the array functions take sensor/bands/nodata/scale/offset; a misspelt one is a TypeError."""
    data = np.full((4, 3, 3), 100, np.uint16)
    with pytest.raises(TypeError, match="'nodat'"):
        rc.read_scene(tmp_path / "none.tif", "naip", nodat=0)
    from rs_change.scenes import scene_input

    inp = scene_input(data, sensor="naip", scale=0.01, offset=-0.5)
    assert float(inp.bands["red"][0, 0]) == pytest.approx(0.5)
    with pytest.raises(TypeError, match="'sclae'"):
        scene_input(data, sensor="naip", sclae=0.01)
