"""Properties that must hold for any input (Hypothesis).

* nodata never becomes water (nodata pixels are the darkest, most water-like values there are);
* area is additive over disjoint masks, in projected and geographic CRSs;
* change(a, a) is all persistent (or unobserved where ``a`` is);
* gained - lost = area(to) - area(from) over the pixels observed on both dates;
* results do not depend on the band order in the file when the profile names the roles.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rs_change.area import mask_area, pixel_area
from rs_change.change import change_map
from rs_change.config import RunConfig
from rs_change.fit import fit_date
from rs_change.pipeline import build_source, reference_grid
from rs_change.water import classify as classify_block

from .conftest import lake_scene, write_geotiff

UTM = "EPSG:32614"
T_UTM = Affine(10, 0, 500000, 0, -10, 5200000)

GRIDS = st.sampled_from([
    (Affine(10, 0, 500000, 0, -10, 5200000), "EPSG:32614"),   # UTM 14N, metres
    (Affine(0.001, 0, -99.0, 0, -0.001, 47.5), "EPSG:4326"),   # degrees, North Dakota
    (Affine(0.01, 0, 10.0, 0, -0.01, 70.0), "EPSG:4326"),      # degrees, far north
    (Affine(250, 0, 4_000_000, 0, -250, 3_000_000), "EPSG:3035"),  # ETRS89 LAEA Europe
])
MASKS = st.integers(1, 12).flatmap(lambda h: st.integers(1, 12).flatmap(
    lambda w: arrays(np.uint8, (h, w), elements=st.sampled_from([0, 1, 255]))))

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _cfg(folder: Path, scenes: list[dict], k: int = 2) -> RunConfig:
    return RunConfig.from_dict(
        {"scenes": scenes, "clustering": {"k": k, "seed": 0, "n_init": 2}, "output": {"dir": "out"}}, base_dir=folder
    )


def _classify(cfg: RunConfig) -> list[np.ndarray]:
    """Water masks (1/0/255) of every date on the reference grid."""
    sources = [build_source(s, cfg) for s in cfg.scenes]
    ref = reference_grid(cfg, sources)
    out = []
    for s in sources:
        dm = fit_date(s, ref, None, cfg.clustering, cfg.labelling, cfg.grid.resampling)
        with s.open(ref, cfg.grid.resampling) as rd:
            bands, valid = rd.read()
        out.append(classify_block(dm, bands, valid)[1])
    return out


# ---------------------------------------------------------------------------------------------
@FAST
@given(holes=arrays(bool, (20, 20), elements=st.booleans()), in_file=st.booleans(), seed=st.integers(0, 99))
def test_nodata_never_becomes_water(holes, in_file, seed):
    img = lake_scene(seed=seed)
    holes[0, :] = False  # keep some land (20 px)
    holes[6:9, 6:9] = False  # and some water (9 px) observed, so that k=2 can be fitted
    img[:, holes] = 0  # nodata pixels: 0 in every band, darker than any water
    with tempfile.TemporaryDirectory() as d:
        write_geotiff(Path(d) / "a.tif", img, T_UTM, UTM, nodata=0 if in_file else None)
        scene = {"date": "2020-01-01", "path": "a.tif", "sensor": "naip"}
        if not in_file:
            scene["nodata"] = 0
        (water,) = _classify(_cfg(Path(d), [scene]))
    assert (water[holes] == 255).all(), "a nodata pixel was classified"
    assert np.isin(water[~holes], (0, 1)).all(), "an observed pixel was left unobserved"
    lake = np.zeros((20, 20), bool)
    lake[5:10, 5:10] = True
    assert (water[lake & ~holes] == 1).all() and (water[~lake & ~holes] == 0).all()


@FAST
@given(grid=GRIDS, labels=st.integers(1, 10).flatmap(
    lambda h: st.integers(1, 10).flatmap(lambda w: arrays(np.int8, (h, w), elements=st.integers(0, 3)))))
def test_area_is_additive_over_disjoint_masks(grid, labels):
    t, crs = grid
    a, b, c = (labels == 1), (labels == 2), (labels == 3)
    whole = mask_area(a | b | c, t, crs)
    parts = mask_area(a, t, crs) + mask_area(b, t, crs) + mask_area(c, t, crs)
    assert abs(whole - parts) <= 1e-9 * max(whole, 1.0)
    # and equals the sum of the per-pixel areas
    pa = np.broadcast_to(pixel_area(t, crs, labels.shape), labels.shape)
    assert abs(whole - float(pa[labels > 0].sum())) <= 1e-9 * max(whole, 1.0)


@FAST
@given(a=MASKS)
def test_change_of_a_mask_with_itself_is_all_persistent(a):
    ch = change_map(a, a)
    assert ((ch == 1) == (a == 1)).all()
    assert ((ch == 0) == (a == 0)).all()
    assert ((ch == 255) == (a == 255)).all()
    assert not np.isin(ch, (2, 3)).any()


@FAST
@given(grid=GRIDS, data=st.data())
def test_gained_minus_lost_is_the_difference_of_water_areas(grid, data):
    t, crs = grid
    h, w = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    frm = data.draw(arrays(np.uint8, (h, w), elements=st.sampled_from([0, 1, 255])))
    to = data.draw(arrays(np.uint8, (h, w), elements=st.sampled_from([0, 1, 255])))
    ch = change_map(frm, to)
    pa = np.broadcast_to(pixel_area(t, crs, (h, w)), (h, w))
    both = (frm != 255) & (to != 255)
    gained, lost = pa[ch == 2].sum(), pa[ch == 3].sum()
    diff = pa[(to == 1) & both].sum() - pa[(frm == 1) & both].sum()
    assert abs((gained - lost) - diff) <= 1e-9 * max(pa.sum(), 1.0)
    # every pixel observed on both dates is in exactly one of the four classes
    assert (np.isin(ch, (0, 1, 2, 3)) == both).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(perm=st.permutations([0, 1, 2, 3]), seed=st.integers(0, 99))
def test_band_order_does_not_matter_when_roles_are_named(perm, seed):
    img = lake_scene(seed=seed)  # R, G, B, NIR
    roles = ["red", "green", "blue", "nir"]
    with tempfile.TemporaryDirectory() as d:
        write_geotiff(Path(d) / "rgbn.tif", img, T_UTM, UTM, nodata=0)
        write_geotiff(Path(d) / "perm.tif", img[list(perm)], T_UTM, UTM, nodata=0)
        # file band i+1 of perm.tif holds role roles[perm[i]]
        bands = {roles[p]: i + 1 for i, p in enumerate(perm)}
        a = _classify(_cfg(Path(d), [{"date": "2020-01-01", "path": "rgbn.tif", "sensor": "naip"}]))[0]
        b = _classify(_cfg(Path(d), [{"date": "2020-01-01", "path": "perm.tif", "bands": bands}]))[0]
    assert (a == b).all()
    assert int((a == 1).sum()) == 25
