"""Water labelling: synthetic spectra with known answers, and the NC Landsat reference map."""

from __future__ import annotations

import numpy as np
import pytest

from rs_change.clustering import KMeans, apply_scaler, fit_scaler
from rs_change.errors import LabellingWarning
from rs_change.features import default_features, feature_matrix
from rs_change.labelling import fit_labeller

NAMES_RGBN = ["red", "green", "blue", "nir"]


def scene(parts: dict[str, tuple[list[float], int]], seed: int = 0, noise: float = 3.0):
    """Pixels of 8-bit RGBN spectra (uncalibrated), each class repeated n times with noise.

    Returns the features matrix (physical units), feature names and the class name per pixel.
    """
    rng = np.random.default_rng(seed)
    rows, cls = [], []
    for name, (spec, n) in parts.items():
        rows.append(np.clip(np.asarray(spec, float) + rng.normal(0, noise, (n, 4)), 1, 255))
        cls += [name] * n
    px = np.concatenate(rows).astype(np.float32)
    bands = {r: px[:, i][None, :] for i, r in enumerate(NAMES_RGBN)}
    names = default_features(list(bands))
    X = feature_matrix(bands, np.ones((1, len(px)), bool), names)
    return X, names, np.array(cls)


def label(X, names, k=3, seed=0, **kw):
    off, sc = fit_scaler(X)
    Xs = apply_scaler(X, off, sc)
    km = KMeans(k, random_state=seed, sample_size=None).fit(Xs)
    dec, lab = fit_labeller(X, Xs, names, km.labels_, k, calibrated=False, seed=seed, **kw)
    return dec, lab.mask(X, Xs, km.labels_), km.labels_, Xs, lab


#            red  green blue  nir
VEG = [60, 80, 50, 170]
FIELD = [140, 130, 110, 150]
WATER = [20, 45, 55, 12]
TURBID = [75, 85, 70, 30]      # sediment: red above green's share, NIR still low
SHADOW = [22, 24, 26, 25]      # dark in every band, green ~ NIR
ASPHALT = [62, 64, 66, 64]     # flat, dark-grey
SAND = [200, 195, 170, 185]    # bright sand bar


def test_confusions_shadow_asphalt_sand_are_land_turbid_water_is_water():
    X, names, cls = scene({"veg": (VEG, 3000), "field": (FIELD, 2000), "water": (WATER, 400), "turbid": (TURBID, 300),
                           "shadow": (SHADOW, 300), "asphalt": (ASPHALT, 300), "sand": (SAND, 300)})
    dec, mask, *_ = label(X, names, k=3)
    truth = np.isin(cls, ["water", "turbid"])
    for c in ("shadow", "asphalt", "sand", "veg", "field"):
        assert mask[cls == c].mean() < 0.01, c
    assert mask[cls == "water"].mean() > 0.99
    assert mask[cls == "turbid"].mean() > 0.95
    assert (mask == truth).mean() > 0.99


def test_cluster_ids_permuted_give_the_same_mask():
    X, names, cls = scene({"veg": (VEG, 2000), "field": (FIELD, 1500), "water": (WATER, 300)})
    off, sc = fit_scaler(X)
    Xs = apply_scaler(X, off, sc)
    km = KMeans(3, random_state=0, sample_size=None).fit(Xs)
    perm = np.array([2, 0, 1])
    d1, l1 = fit_labeller(X, Xs, names, km.labels_, 3, calibrated=False)
    d2, l2 = fit_labeller(X, Xs, names, perm[km.labels_], 3, calibrated=False)
    assert np.array_equal(l1.mask(X, Xs, km.labels_), l2.mask(X, Xs, perm[km.labels_]))
    assert [d.is_water for d in d1] == [d2[perm[i]].is_water for i in range(3)]


@pytest.mark.xfail(strict=True, reason="known gap: noisy dark shadows (NDWI noise +-0.15 at DN ~24) form a fine "
                   "cluster whose majority passes NDWI > 0.1; needs a signal-to-noise check on green - NIR")
def test_land_only_scene_gives_no_water_and_says_so():
    X, names, cls = scene({"veg": (VEG, 2000), "field": (FIELD, 1500), "shadow": (SHADOW, 200), "asphalt": (ASPHALT, 300)})
    dec, mask, *_ = label(X, names)
    assert mask.sum() == 0
    assert not any(d.is_water for d in dec)
    assert all("no water in the scene" in d.why for d in dec)


@pytest.mark.xfail(strict=True, reason="known gap: in an all-water scene Otsu splits water in two and the 0.4 "
                   "upper clip drops the 2-6% of pixels below NDWI 0.4")
def test_all_water_scene_is_all_water():
    X, names, cls = scene({"deep": (WATER, 2000), "turbid": (TURBID, 1000), "dark": ([15, 30, 40, 8], 500)})
    dec, mask, *_ = label(X, names)
    assert mask.mean() > 0.99
    assert all(d.is_water for d in dec)


def test_manual_override_warns_and_uses_the_ids():
    X, names, cls = scene({"veg": (VEG, 1000), "water": (WATER, 300)})
    off, sc = fit_scaler(X)
    Xs = apply_scaler(X, off, sc)
    km = KMeans(2, random_state=0, sample_size=None).fit(Xs)
    with pytest.warns(LabellingWarning, match="depend on the seed"):
        dec, lab = fit_labeller(X, Xs, names, km.labels_, 2, calibrated=False, method="clusters", water_ids=[1])
    assert [d.is_water for d in dec] == [False, True]
    assert np.array_equal(lab.mask(X, Xs, km.labels_), km.labels_ == 1)


def test_nc_landsat_iou_against_1996_map(shared_data, tmp_path):
    import rasterio

    from benchmarks.accuracy import BANDS, scores, write_stack
    from rs_change.config import RunConfig
    from rs_change.pipeline import build_source, classify_block, fit_date, reference_grid

    data = shared_data / "landsat_nc_labels"
    roles = list(BANDS)[:5]
    stack = write_stack(data, tmp_path / "nc.tif", roles)
    cfg = RunConfig.from_dict({"scenes": [{"date": "2000-01-01", "path": str(stack), "bands": {r: i + 1 for i, r in enumerate(roles)}}],
                               "clustering": {"k": 3, "seed": 0}})
    src = build_source(cfg.scenes[0], cfg)
    ref = reference_grid(cfg, [src])
    dm = fit_date(src, ref, None, cfg)
    with src.open(ref, "bilinear") as rd:
        bands, valid = rd.read()
    _, water = classify_block(dm, bands, valid)
    with rasterio.open(data / "strata.tif") as ds:
        truth = ds.read(1)[valid] == 6
    s = scores(water[valid] == 1, truth)
    assert s["iou"] >= 0.45
    ndwi_iou = scores(feature_matrix(bands, valid, ["ndwi"])[:, 0] > 0, truth)["iou"]
    assert s["iou"] > ndwi_iou
