"""Fitted water models: JSON round trip, checks on load, the drift warning, cluster maps, and
`clustering.fit_on` / `clustering.model` in a run.  Tiny synthetic NAIP-like scenes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

import rs_change as rc
from rs_change.config import RunConfig
from rs_change.errors import BandProfileError, ConfigError, InputError
from rs_change.clustermaps import cluster_classes, cluster_colors
from rs_change.model import ModelDriftWarning, WaterModel

from .conftest import lake_scene

T = Affine(10, 0, 0, 0, -10, 0)
CRS = "EPSG:6933"  # equal-area: a 10 m pixel is 100 m2 on the ground
NAIP = {"red": 1, "green": 2, "blue": 3, "nir": 4}


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return lake_scene(40, 40, (slice(5, 15), slice(5, 15)))  # 100 lake pixels


def test_fit_save_load_round_trip(scene: np.ndarray, tmp_path: Path) -> None:
    m = rc.fit_model(scene, k=2, sensor="naip", label="2009-08-18")
    assert m.water_ids == [0]
    assert [d.pixels for d in m.decisions] == [100, 1500]
    assert m.shift_trace == list(m.kmeans.shift_trace_) and len(m.shift_trace) == m.kmeans.n_iter_ >= 1
    p = m.save(tmp_path / "model.json")
    data = json.loads(p.read_text())
    assert data["features"] == ["blue", "green", "red", "nir", "ndwi"]
    assert data["profile"]["bands"] == NAIP and data["profile"]["calibrated"] is False
    assert data["kmeans"]["shift_trace"] == m.shift_trace
    assert set(data["versions"]) >= {"rs_change", "numpy"}
    back = WaterModel.load(p)
    np.testing.assert_array_equal(back.centers, m.centers)
    np.testing.assert_array_equal(back.offset, m.offset)
    assert back.water_ids == m.water_ids and back.fitted_on == "2009-08-18" and back.metric == "euclidean"
    np.testing.assert_array_equal(back.predict(scene, sensor="naip"), m.predict(scene, sensor="naip"))
    # the lake's 100 pixels are water
    assert int((rc.label_water(scene, back, sensor="naip") == 1).sum()) == 100
    # the physical centre of the water cluster is the lake's spectrum (R G B NIR = 30 60 70 20, noise +-4)
    phys = dict(zip(m.names, m.centers_physical()[0]))
    assert abs(phys["red"] - 30) < 2 and abs(phys["nir"] - 20) < 2


def test_load_rejects_other_versions_and_damaged_files(scene: np.ndarray, tmp_path: Path) -> None:
    m = rc.fit_model(scene, k=2, sensor="naip")
    data = m.to_dict()
    (tmp_path / "v9.json").write_text(json.dumps({**data, "format_version": 9}))
    with pytest.raises(InputError, match="format version 9"):
        WaterModel.load(tmp_path / "v9.json")
    bad = {**data, "scaler": {"offset": [0.0], "scale": [1.0]}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="do not match its 5 features"):
        WaterModel.load(tmp_path / "bad.json")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InputError, match="not an rs-change model"):
        WaterModel.load(tmp_path / "x.json")
    with pytest.raises(InputError, match="not found"):
        WaterModel.load(tmp_path / "missing.json")
    # version 1 files decided water by whole clusters: refused, saying why
    (tmp_path / "v1.json").write_text(json.dumps({**data, "format_version": 1}))
    with pytest.raises(InputError, match="format version 1 decided water by whole clusters.*refit"):
        WaterModel.load(tmp_path / "v1.json")
    # a labeller that does not fit its model
    lab = data["labeller"]
    for bad_lab, msg in (({**lab, "fine_water": [99]}, "fine water clusters do not exist"),
                         ({**lab, "features": ["green", "nir"]}, "features .* other than the model's"),
                         ({**lab, "rule": {**lab["rule"], "index": "mndwi"}}, "water rule uses mndwi"),
                         ({**lab, "rule": None, "manual": None}, "neither a rule nor hand-named")):
        (tmp_path / "lab.json").write_text(json.dumps({**data, "labeller": bad_lab}))
        with pytest.raises(InputError, match=msg):
            WaterModel.load(tmp_path / "lab.json")


def test_labeller_round_trip_is_exact(tmp_path: Path) -> None:
    """The per-pixel labeller survives JSON exactly: rule thresholds, fine centres, fine water ids, and
    therefore every pixel's decision, including pixels the rule refines out of a water cluster."""
    # lake (R G B NIR = 30 60 70 20) with a shallow margin whose NIR is near the rule's limit
    img = lake_scene(40, 40, (slice(5, 20), slice(5, 20)), seed=3).astype(np.int16)
    img[3, 5:20, 18:20] = 70  # margin: NIR 70 (noise +-4): NDWI about -0.08, fails the rule
    img = np.clip(img, 1, 255).astype(np.uint8)
    m = rc.fit_model(img, k=2, sensor="naip", label="2009-08-18")
    assert m.per_pixel and m.rule.index == "ndwi" and m.labeller.fine is not None
    p = m.save(tmp_path / "m.json")
    data = json.loads(p.read_text())
    assert data["format_version"] == 2
    rule = data["labeller"]["rule"]
    assert rule["t_index"] == m.rule.t_index and rule["t_dark"] == m.rule.t_dark  # full precision, not rounded
    assert len(data["labeller"]["fine"]["centers"]) == 10 and data["labeller"]["fine_water"] == m.labeller.fine_water.tolist()
    back = WaterModel.load(p)
    assert back.rule == m.rule  # every field of the rule (dataclass equality)
    # tripwire: a new Labeller field must also be saved by Labeller.to_dict / read by from_dict
    assert [f.name for f in dataclasses.fields(back.labeller)] == ["names", "rule", "fine", "fine_water", "manual", "fine_decisions", "fine_dark"]
    assert back.labeller.to_dict() == m.labeller.to_dict()
    np.testing.assert_array_equal(back.labeller.fine.cluster_centers_, m.labeller.fine.cluster_centers_)
    np.testing.assert_array_equal(back.labeller.fine_water, m.labeller.fine_water)
    w, wb = rc.label_water(img, m, sensor="naip"), rc.label_water(img, back, sensor="naip")
    np.testing.assert_array_equal(wb, w)
    # the 225 lake pixels: 195 open water are water, the 30 margin pixels are not (their cluster may be water)
    assert int((w == 1).sum()) == 195 and not w[5:20, 18:20].any()
    # cluster ids alone cannot give per-pixel water: a clear error, unless ids are named by hand
    ids = m.predict(img, sensor="naip")
    with pytest.raises(rc.errors.ClusteringError, match="per pixel.*pass the scene itself"):
        rc.label_water(ids, m)
    hand = m.with_water([0]).save(tmp_path / "hand.json")
    mh = WaterModel.load(hand)
    assert mh.labeller.manual.tolist() == [0] and not mh.per_pixel
    np.testing.assert_array_equal(rc.label_water(ids, mh), np.where(ids == 0, 1, 0))
    np.testing.assert_array_equal(rc.label_water(img, mh, sensor="naip"), np.where(ids == 0, 1, 0))


def test_features_must_match(scene: np.ndarray) -> None:
    m = rc.fit_model(scene, k=2, sensor="naip")
    with pytest.raises(BandProfileError, match="differ from the model"):
        m.predict(scene[[1, 3]], bands={"green": 1, "nir": 2})


def test_drift_warning_on_foreign_spectra(scene: np.ndarray) -> None:
    m = rc.fit_model(scene, k=2, sensor="naip")
    names = m.names
    X = rc.api.feature_matrix({r: scene[b - 1].astype(np.float32) for r, b in NAIP.items()}, np.ones((40, 40), bool), names)
    assert m.check_spectra(X) <= 0.02  # the fitted scene itself: about 1 % beyond the 99th percentile
    brighter = np.clip(scene.astype(int) + 60, 0, 255).astype(np.uint8)
    with pytest.warns(ModelDriftWarning, match=r"100\.0% of pixels"):
        m.predict(brighter, sensor="naip")


def test_with_water_and_colours() -> None:
    # two clusters of nearly one mean colour (NAIP 2020: #416148 and #425d44) get distinct colours
    d = [rc.model.ClusterDecision(0, 1, {"red": 66.0, "green": 93.0, "blue": 68.0}, False, ""),
         rc.model.ClusterDecision(1, 1, {"red": 65.0, "green": 97.0, "blue": 72.0}, True, ""),
         rc.model.ClusterDecision(2, 1, {"red": 90.0, "green": 110.0, "blue": 80.0}, False, "")]
    cols = cluster_colors(d)
    assert cols[1] == (31, 120, 180, 255)  # the water cluster: the first blue
    assert cols[0] == (230, 160, 0, 255) and cols[2] == (60, 150, 40, 255)  # the others: ochre, green
    assert cols[255] == (175, 175, 175, 255)  # the palette's unobserved grey
    assert cluster_colors(d, calibrated=True) == cols
    names = cluster_classes(d)
    assert names[1] == "cluster 1: water" and names[0] == "cluster 0: land" and names[255] == "unobserved"


def test_cluster_palette_is_distinct() -> None:
    """Every two cluster colours, and each against the unobserved grey, at least 60 RGB units apart;
    water clusters in blues (blue the largest channel), the others not."""
    import itertools
    import math

    from rs_change.change import PALETTE
    from rs_change.clustermaps import OTHER_CLUSTER_COLORS, WATER_CLUSTER_COLORS

    every = [*WATER_CLUSTER_COLORS, *OTHER_CLUSTER_COLORS]
    assert min(math.dist(a, b) for a, b in itertools.combinations(every, 2)) >= 70
    assert min(math.dist(a, PALETTE["unobserved"][:3]) for a in every) >= 60
    assert all(c[2] == max(c) and c[2] > c[0] + 40 for c in WATER_CLUSTER_COLORS)
    assert not any(c[2] > max(c[0], c[1]) + 40 for c in OTHER_CLUSTER_COLORS)
    # 12 clusters, 3 of them water: all distinct
    d = [rc.model.ClusterDecision(i, 1, {}, i in (2, 5, 7), "") for i in range(12)]
    cols = [c[:3] for k, c in cluster_colors(d).items() if k != 255]
    assert min(math.dist(a, b) for a, b in itertools.combinations(cols, 2)) >= 60


def test_cluster_map_file(scene: np.ndarray, tmp_path: Path) -> None:
    m = rc.fit_model(scene, k=2, sensor="naip")
    ids = m.predict(scene, sensor="naip")
    p = rc.write_cluster_map(tmp_path / "clusters_2009-08-18.tif", ids, m, T, CRS, label="2009-08-18")
    with rasterio.open(p) as ds:
        assert ds.read(1).tolist() == ids.tolist()
        cmap = ds.colormap(1)
        tags = ds.tags()
    assert cmap[0] == (31, 120, 180, 255) and sorted(cmap) == [0, 1]  # the water cluster in blue; 2 entries
    assert tags["CLASSES"] and json.loads(tags["CLASSES"])["0"].startswith("cluster 0: water (")
    assert json.loads(tags["WATER_CLUSTERS"]) == [0] and json.loads(tags["CLUSTER_IDS"]) == [0, 1]
    assert (tmp_path / "clusters_2009-08-18.png").exists()


def _two_dates(tmp_path: Path, make_tif) -> Path:
    a = lake_scene(40, 40, (slice(5, 15), slice(5, 15)), seed=1)    # 100 lake pixels
    b = lake_scene(40, 40, (slice(5, 25), slice(5, 15)), seed=2)    # 200 lake pixels
    make_tif("a.tif", a, T, CRS, nodata=0)
    make_tif("b.tif", b, T, CRS, nodata=0)
    return tmp_path


def _cfg(folder: Path, clustering: str) -> RunConfig:
    text = f"""
scenes:
  - {{date: 2009-08-18, path: a.tif, sensor: naip}}
  - {{date: 2020-08-31, path: b.tif, sensor: naip}}
clustering: {{k: 2, seed: 0, sample_size: 1000{clustering}}}
output: {{dir: out, polygons: false}}
compute: {{scheduler: synchronous}}
"""
    return RunConfig.from_text(text, base_dir=folder)


def test_run_fit_on_and_saved_model(tmp_path: Path, make_tif) -> None:
    folder = _two_dates(tmp_path, make_tif)
    res = rc.run(_cfg(folder, ", fit_on: 2009-08-18"), overwrite=True)
    s = res.summary
    assert [d["water_pixels"] for d in s["dates"]] == [100, 200]
    assert [d["water_km2"] for d in s["dates"]] == [0.01, 0.02]
    assert s["change"]["gained_pixels"] == 100
    assert s["dates"][0]["water_clusters"] == s["dates"][1]["water_clusters"] == [0]
    out = folder / "out"
    m1 = json.loads((out / "model_2009-08-18.json").read_text())
    m2 = json.loads((out / "model_2020-08-31.json").read_text())
    assert m1["fitted_on"] == m2["fitted_on"] == "2009-08-18" and m1["kmeans"]["centers"] == m2["kmeans"]["centers"]
    # the whole model is shared: 2020 is labelled with 2009's rule thresholds and fine clusters
    assert m1["labeller"] == m2["labeller"] and m1["labeller"]["rule"]["water_index"] > 0
    wm09 = WaterModel.load(out / "model_2009-08-18.json")
    b = lake_scene(40, 40, (slice(5, 25), slice(5, 15)), seed=2)
    for d in s["dates"]:
        with rasterio.open(out / f"clusters_{d['date']}.tif") as ds:
            cl, tags = ds.read(1), ds.tags()
            assert ds.colormap(1)[0][3] == 255
        with rasterio.open(out / f"water_{d['date']}.tif") as ds:
            water = ds.read(1)
        assert json.loads(tags["WATER_CLUSTERS"]) == d["water_clusters"]
        assert "fitted on 2009-08-18" in tags["WATER_DECISION"]
        # a clean two-class scene: per-pixel water is exactly the water cluster (ids in the map match summary.json)
        assert np.array_equal(np.isin(cl, d["water_clusters"]), water == 1)
        if d["date"] == "2020-08-31":  # the saved 2009 model on 2020's pixels gives the run's 2020 mask
            np.testing.assert_array_equal(rc.label_water(b, wm09, sensor="naip", nodata=0), water)
    # a later run applies the saved model file: same numbers
    (folder / "m.json").write_bytes((out / "model_2009-08-18.json").read_bytes())
    res2 = rc.run(_cfg(folder, ", model: m.json"), output_dir=folder / "out2")
    assert [d["water_pixels"] for d in res2.summary["dates"]] == [100, 200]
    assert res2.summary["change"] == s["change"]


def test_config_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fit_on 2001-01-01 is not one of the scenes"):
        _cfg(tmp_path, ", fit_on: 2001-01-01")
    with pytest.raises(ConfigError, match="not both"):
        _cfg(tmp_path, ", fit_on: 2009-08-18, model: m.json")


@pytest.mark.filterwarnings("ignore::rs_change.errors.LabellingWarning")
def test_fit_params_one_value_same_model() -> None:
    """fit_model's keywords and one FitParams give the same model; a config's sections give the
    same FitParams; giving both ways at once is refused."""
    from rs_change.config import ClusteringConfig, LabellingConfig
    from rs_change.model import FitParams

    img = lake_scene(40, 40, (slice(5, 20), slice(5, 20)), seed=3)
    a = rc.fit_model(img, k=2, seed=4, n_init=2, method="clusters", water=[1], sensor="naip", label="x")
    p = FitParams(k=2, seed=4, n_init=2, method="clusters", water=[1])
    b = rc.fit_model(img, params=p, sensor="naip", label="x")
    assert a.to_dict() | {"versions": 0} == b.to_dict() | {"versions": 0}
    assert a.water_ids == [1] and a.seed == 4
    cfg = FitParams.from_config(ClusteringConfig(k=2, seed=4, n_init=2), LabellingConfig(method="clusters", water=[1]))
    assert cfg == p and p.water == (1,) and p.kmeans_kw == {"n_init": 2, "max_iter": 100, "tol": 1e-4}
    with pytest.raises(TypeError, match="k, n_init"):
        rc.fit_model(img, k=4, params=p, n_init=1, sensor="naip")
