"""Pass 2's table lookup of cluster ids (rs_change.lut) gives exactly what the plain path gives:
the same float32 distances as KMeans' _nearest, the same labels and ties as predict, the same
cluster ids and water as water.classify, and no tables for bands that are not 8-bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rs_change import lut, water
from rs_change.decision import decision_of
from rs_change.clustering import KMeans, _nearest, apply_scaler
from rs_change.config import RunConfig
from rs_change.features import feature_matrix
from rs_change.fit import fit_date
from rs_change.pipeline import build_source, reference_grid
from rs_change.water import classify_raw
from rs_change.sensors import get_profile, raw_to_bands

from .conftest import SAMPLE, fit_synthetic

NAMES = ["blue", "green", "red", "nir", "ndwi"]


def _plain(dm: Any, raws: dict[str, np.ndarray], valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """classify_raw's path before the tables: raw_to_bands, feature_matrix, apply_scaler, predict."""
    prof, nd = dm.source.profile, dm.source.nodata

    def strip(s: int, e: int) -> Any:
        return raw_to_bands({k: v[s:e] for k, v in raws.items()}, prof, nd)

    return water._classify_strips(dm, strip, valid, True)


def _same_as_plain(dm: Any, raws: dict[str, np.ndarray], valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v_plain, v_lut = valid.copy(), valid.copy()
    cl0, w0 = _plain(dm, raws, v_plain)
    tabled = lut.classify_tables(dm, decision_of(dm), raws, v_lut.copy(), water.rule_table(dm, raws))
    assert tabled is not None  # tables used
    cl1, w1 = classify_raw(dm, raws, v_lut, clusters=True)
    assert np.array_equal(v_plain, v_lut)
    assert np.array_equal(cl0, cl1)
    assert np.array_equal(w0, w1)
    return cl1, w1


def _random_raws(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    return {r: rng.integers(0, 256, m).astype(np.uint8) for r in ("red", "green", "blue", "nir")}


def _scaled(raws: dict[str, np.ndarray], offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    bands, _ = raw_to_bands(raws, get_profile("naip"), None)
    m = len(raws["red"])
    return apply_scaler(feature_matrix(bands, np.ones(m, bool), NAMES, order="F"), offset, scale)


def _fitted(metric: str, k: int, seed: int) -> tuple[KMeans, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sample = _random_raws(rng, 4000)
    Xp = feature_matrix(raw_to_bands(sample, get_profile("naip"), None)[0], np.ones(4000, bool), NAMES)
    offset, scale = np.median(Xp, axis=0), Xp.std(axis=0)
    km = KMeans(k, metric=metric, random_state=seed, n_init=1).fit(apply_scaler(Xp, offset, scale))
    return km, offset, scale


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
def test_tables_give_predicts_distances_and_labels(metric: str) -> None:
    km, offset, scale = _fitted(metric, 6, seed=1)
    rng = np.random.default_rng(2)
    raws = _random_raws(rng, 50_000)
    ct = lut.build_tables(km, NAMES, offset, scale, get_profile("naip"), raws)
    assert ct is not None and ct.keys == [("green", "nir"), ("blue", "red")]
    xt = np.ascontiguousarray(_scaled(raws, offset, scale).T)
    # every centre's distance, bit for bit: _nearest with that centre alone is predict's arithmetic
    idx = {deps: lut.table_index(raws, deps) for deps in set(ct.roles)}
    d = lut.exact_distances(ct, idx, len(xt[0]))
    for j in range(km.n_clusters):
        ref = _nearest(xt, km.cluster_centers_[j:j + 1], metric)[1]
        assert np.array_equal(d[j].view(np.uint32), ref.view(np.uint32))
    labels = km.predict(xt.T)
    assert np.array_equal(lut.predict_indexed(ct, idx, len(labels)), labels)
    assert np.array_equal(lut.labels_of(ct, raws), labels)  # grouped tables + exact near-ties


def test_ties_go_to_the_lowest_centre_as_in_predict() -> None:
    km, offset, scale = _fitted("euclidean", 3, seed=3)
    km.cluster_centers_ = np.vstack([km.cluster_centers_, km.cluster_centers_[[1, 0]]])  # 3 = copy of 1, 4 = of 0
    km.n_clusters = 5
    raws = _random_raws(np.random.default_rng(4), 30_000)
    labels = km.predict(_scaled(raws, offset, scale))
    assert set(np.unique(labels)) <= {0, 1, 2}  # predict never picks the later copies
    ct = lut.build_tables(km, NAMES, offset, scale, get_profile("naip"), raws)
    assert ct is not None
    grouped, unsure = lut.predict_grouped(ct, {key: lut.table_index(raws, key) for key in ct.keys}, 30_000)
    assert unsure[np.isin(labels, [0, 1])].all()  # exact ties are never decided by the grouped sums
    assert np.array_equal(lut.labels_of(ct, raws), labels)


@pytest.mark.parametrize("clustering,labelling", [
    ("{k: 4, metric: euclidean, seed: 0, n_init: 1}", "{method: auto}"),
    ("{k: 3, metric: manhattan, seed: 0, n_init: 1}", "{method: auto}"),
    ("{k: 5, metric: chebyshev, seed: 0, n_init: 1}", "{method: auto}"),
    ("{k: 3, metric: euclidean, seed: 0, n_init: 1}", "{method: clusters, water: [1]}"),
])
def test_synthetic_block_with_nodata_same_as_plain_path(synthetic: Path, clustering: str, labelling: str) -> None:
    dm, raws, valid = fit_synthetic(synthetic, clustering, labelling)
    valid[:, 160:] = False  # outside the area of interest
    cl, water = _same_as_plain(dm, raws, valid)
    assert (cl[120:, :15] == 255).all() and (water[50:53, 60:70] == 255).all()  # unobserved
    assert (cl[10:14, 10:20] != 255).all()  # observed with NIR 0
    assert (water == 1).sum() > 1000 and (water == 0).sum() > 1000


def test_naip_sample_window_same_as_plain_path(tmp_path: Path) -> None:
    tiles = sorted((SAMPLE / "naip").glob("*.tif"))
    if not tiles:
        pytest.skip("sample_tiles/naip is not present")
    (tmp_path / "run.yaml").write_text(
        f"scenes:\n  - {{date: 2020-08-31, path: {tiles[-1]}, sensor: naip}}\n"
        "clustering: {k: 3, metric: euclidean, seed: 0, sample_size: 20000, n_init: 1}\n")
    cfg = RunConfig.from_yaml(tmp_path / "run.yaml")
    src = build_source(cfg.scenes[0], cfg)
    ref = reference_grid(cfg, [src])
    dm = fit_date(src, ref, None, cfg.clustering, cfg.labelling, cfg.grid.resampling)
    with src.open(ref, "bilinear") as rd:
        raws, valid = rd.read_raw(ref.height // 2 - 300, ref.width // 2 - 400, 600, 800)
    cl, water = _same_as_plain(dm, raws, valid)
    assert len(np.unique(cl)) == 3 and (water == 1).any() and (water == 0).any()
    # a summary-only run's path (rule table, fine clusters of the passing pixels on table features)
    v_summary = valid.copy()
    none, w_summary = classify_raw(dm, raws, v_summary, clusters=False)
    assert none is None and np.array_equal(w_summary, water) and (w_summary == 1).sum() > 1000
    # the distances of the date's model, bit for bit, on this window's pixels
    ct = lut.model_tables(dm, raws)
    flat = {r: v.reshape(-1) for r, v in raws.items()}
    bands, ok = raw_to_bands(flat, dm.source.profile, None)
    xt = np.ascontiguousarray(apply_scaler(feature_matrix(bands, ok, dm.names, order="F"), dm.offset, dm.scale).T)
    d = lut.exact_distances(ct, {deps: lut.table_index(flat, deps) for deps in set(ct.roles)}, len(ok))
    for j in range(3):
        assert np.array_equal(d[j], _nearest(xt, dm.kmeans.cluster_centers_[j:j + 1], "euclidean")[1])


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int16])
def test_bands_that_are_not_8_bit_get_no_tables(dtype: Any) -> None:
    km, offset, scale = _fitted("euclidean", 3, seed=7)
    raws = {r: v.astype(dtype) for r, v in _random_raws(np.random.default_rng(8), 100).items()}
    assert lut.build_tables(km, NAMES, offset, scale, get_profile("naip"), raws) is None
    raws["red"] = raws["red"].astype(np.uint8)  # one band of another type is enough
    assert lut.build_tables(km, NAMES, offset, scale, get_profile("naip"), raws) is None


def test_features_of_more_than_two_bands_get_no_tables() -> None:
    assert lut.feature_roles("brightness", ["red", "green", "blue", "nir"]) is None
    assert lut.feature_roles("brightness", ["green", "nir"]) == ("green", "nir")
    assert lut.feature_roles("ndvi", ["red", "nir"]) == ("nir", "red")
    assert lut.feature_roles("mndwi", ["green", "nir"]) is None  # no swir1


def test_tables_are_cached_by_content_for_pickled_models(synthetic: Path) -> None:
    import pickle

    (synthetic / "run.yaml").write_text(
        "scenes:\n  - {date: 2001-01-01, path: a.tif, sensor: naip}\nclustering: {k: 3, seed: 0, n_init: 1}\n")
    cfg = RunConfig.from_yaml(synthetic / "run.yaml")
    src = build_source(cfg.scenes[0], cfg)
    ref = reference_grid(cfg, [src])
    dm = fit_date(src, ref, None, cfg.clustering, cfg.labelling, cfg.grid.resampling)
    raws = {r: np.zeros((2, 2), np.uint8) for r in ("red", "green", "blue", "nir")}
    ct = lut.model_tables(dm, raws)
    assert ct is not None
    assert lut.model_tables(pickle.loads(pickle.dumps(dm)), raws) is ct  # a process worker's copy: no rebuild
    other = pickle.loads(pickle.dumps(dm))
    other.kmeans.cluster_centers_ = other.kmeans.cluster_centers_ + 0.5
    assert lut.model_tables(other, raws) is not ct


def test_rule_table_is_cached_by_content_for_pickled_models(synthetic: Path) -> None:
    """water.rule_table: a process worker's unpickled copy of a model reuses the table; a
    different threshold builds another (whose verdicts differ)."""
    import dataclasses
    import pickle

    from rs_change.water import rule_table as _rule_table

    (synthetic / "run.yaml").write_text(
        "scenes:\n  - {date: 2001-01-01, path: a.tif, sensor: naip}\nclustering: {k: 3, seed: 0, n_init: 1}\n")
    cfg = RunConfig.from_yaml(synthetic / "run.yaml")
    src = build_source(cfg.scenes[0], cfg)
    dm = fit_date(src, reference_grid(cfg, [src]), None, cfg.clustering, cfg.labelling, cfg.grid.resampling)
    raws = {r: np.zeros((2, 2), np.uint8) for r in ("red", "green", "blue", "nir")}
    got = _rule_table(dm, raws)
    assert got is not None and got[:2] == ("green", "nir")
    assert _rule_table(pickle.loads(pickle.dumps(dm)), raws)[2] is got[2]
    other = pickle.loads(pickle.dumps(dm))
    other.labeller.rule = dataclasses.replace(other.labeller.rule, land_dark=other.labeller.rule.land_dark * 0.7)
    table = _rule_table(other, raws)[2]
    assert table is not got[2] and table.sum() < got[2].sum()
