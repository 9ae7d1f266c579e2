"""QA layers of optical products (rs_change.qa): Landsat C2 QA_PIXEL, Sentinel-2 L2A SCL, HLS
Fmask.  Synthetic scenes whose flagged pixels are known: they must be exactly the unobserved
pixels of every water raster, with the ground area the summary reports, per reason."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine

from .conftest import write_geotiff
from rs_change import qa as Q
from rs_change.area import pixel_area
from rs_change.config import RunConfig
from rs_change.errors import ConfigError, RsChangeError
from rs_change.pipeline import run

UTM = "EPSG:32614"
T30 = Affine(30, 0, 500000, 0, -30, 5200000)

# Landsat 8 C2 L2 QA_PIXEL values (USGS product guide's table of common values)
CLEAR, CLOUD, SHADOW, FILL = 21824, 22280, 23888, 1
SNOW = 1 << 5 | 1 << 6  # bit 5 snow (with clear bit 6 as in the product's snow values: clear of cloud)
CIRRUS = 21824 | 1 << 2
DILATED = 21824 | 1 << 1

LAND = np.array([0.04, 0.05, 0.08, 0.07, 0.30, 0.20, 0.12])  # SR_B1..SR_B7
WATER = np.array([0.05, 0.06, 0.05, 0.03, 0.02, 0.015, 0.012])
SHADE = np.array([0.03, 0.03, 0.03, 0.025, 0.015, 0.012, 0.01])  # cloud shadow: dark in NIR and SWIR, like water
WHITE = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.4, 0.3])


def _dn(refl: np.ndarray) -> np.ndarray:
    return np.round((refl + 0.2) / 2.75e-5).astype(np.uint16)


def landsat_scene(h: int = 150, w: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A Landsat 8 C2 L2-like stack (SR_B1..SR_B7 + QA_PIXEL as band 8, uint16) and its QA.

    A lake [40:110, 30:120]; a 4x4 cloud over the lake at [50:54, 40:44]; a 4x4 cloud on land at
    [10:14, 10:14]; a 3x5 shadow on land at [20:23, 130:135] (dark: water-like spectra); a 4x4
    cloud ending at the 64-pixel block edges at [60:64, 125:129] (its buffer reaches into the next
    blocks, right and below); snow [130:132, 60:62], cirrus
    [130:132, 80:82], dilated cloud [130:132, 100:102]; fill (bands 0) at [145:, :10].  Every flag
    is at least 5 pixels from the others and from the edges (apart from the fill corner), so a
    2-pixel buffer adds a whole ring around each cloud and shadow."""
    rng = np.random.default_rng(seed)
    refl = np.empty((7, h, w))
    refl[:] = LAND[:, None, None]
    refl[:, 40:110, 30:120] = WATER[:, None, None]
    refl += rng.normal(0, 0.002, refl.shape)
    qa = np.full((h, w), CLEAR, np.uint16)
    for r, c in ((slice(50, 54), slice(40, 44)), (slice(10, 14), slice(10, 14)), (slice(60, 64), slice(125, 129))):
        qa[r, c] = CLOUD
        refl[:, r, c] = WHITE[:, None, None]
    qa[20:23, 130:135] = SHADOW
    refl[:, 20:23, 130:135] = SHADE[:, None, None]
    qa[130:132, 60:62] = SNOW
    qa[130:132, 80:82] = CIRRUS
    qa[130:132, 100:102] = DILATED
    dn = _dn(refl)
    qa[145:, :10] = FILL
    dn[:, 145:, :10] = 0
    return np.concatenate([dn, qa[None]]), qa


def _config(tmp: Path, scenes: list[dict[str, Any]], **sections: Any) -> Path:
    data: dict[str, Any] = {"scenes": scenes, "clustering": {"k": 3, "seed": 0, "n_init": 1},
                            "output": {"dir": "out", "report": False, "polygons": False}}
    data.update(sections)
    p = tmp / "run.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _water(out: Path, date: str) -> np.ndarray:
    with rasterio.open(out / f"water_{date}.tif") as ds:
        return ds.read(1)


def _m2(mask: np.ndarray, transform: Affine = T30, crs: str = UTM) -> float:
    return float(pixel_area(transform, crs, mask.shape)[mask].sum())


def _two_landsat_dates(tmp: Path, qa2: dict[str, Any] | None = None) -> tuple[Path, np.ndarray, np.ndarray]:
    a, qa_a = landsat_scene(seed=0)
    b, qa_b = landsat_scene(seed=1)
    b[7] = CLEAR  # the second date is clear, apart from its fill corner
    b[7, 145:, :10] = FILL
    qa_b = b[7].copy()
    b[:7, 50:54, 40:44] = _dn(WATER)[:, None, None]
    b[:7, 10:14, 10:14] = _dn(LAND)[:, None, None]
    b[:7, 60:64, 125:129] = _dn(LAND)[:, None, None]
    b[:7, 20:23, 130:135] = _dn(LAND)[:, None, None]
    write_geotiff(tmp / "a.tif", a, T30, UTM, nodata=0)
    write_geotiff(tmp / "b.tif", b, T30, UTM, nodata=0)
    scenes = [{"date": "2020-08-01", "path": "a.tif", "sensor": "landsat8", "bands": {"qa_pixel": 8}},
              {"date": "2021-08-01", "path": "b.tif", "sensor": "landsat8", "bands": {"qa_pixel": 8}}]
    if qa2 is not None:
        for s in scenes:
            s["qa"] = dict(qa2)
    return _config(tmp, scenes), qa_a, qa_b


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------
def test_qa_pixel_bits() -> None:
    f = Q.flags(np.array([CLEAR, CLOUD, SHADOW, FILL, SNOW, CIRRUS, DILATED]), "qa_pixel")
    got = [[k for k in f if f[k][i]] for i in range(7)]
    assert got == [[], ["cloud"], ["shadow"], ["fill"], ["snow"], ["cirrus"], ["dilated_cloud"]]


def test_scl_classes_and_water_never_masked() -> None:
    scl = np.arange(12)
    r = Q.reasons(scl, "scl", Q.DEFAULT_MASK["scl"])
    names = {i: (Q.REASONS[c - 1] if c else None) for i, c in enumerate(r)}
    assert names == {0: "fill", 1: "saturated", 2: None, 3: "shadow", 4: None, 5: None, 6: None, 7: None,
                     8: "cloud", 9: "cloud", 10: "cirrus", 11: "snow"}
    with pytest.raises(ConfigError, match="water flag is never used"):
        Q.check_mask("scl", ["cloud", "water"])


def test_fmask_bits_fill_and_aerosol() -> None:
    # bit 1 cloud, 2 adjacent, 3 shadow, 4 snow, 5 water, 6-7 aerosol; 255 fill
    v = np.array([0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 3 << 6, 2 << 6, 255, (1 << 1) | (1 << 3) | (1 << 5)])
    r = Q.reasons(v, "fmask", Q.CLASSES["fmask"])
    got = [Q.REASONS[c - 1] if c else None for c in r]
    assert got == [None, "cloud", "adjacent", "shadow", "snow", None, "aerosol", None, "fill", "cloud"]
    assert Q.reasons(v, "fmask", Q.DEFAULT_MASK["fmask"])[6] == 0  # high aerosol is not masked by default


def test_unknown_or_foreign_class_one_line() -> None:
    with pytest.raises(ConfigError, match="`saturated` is not a class of the qa_pixel QA layer"):
        Q.QaMask("qa_pixel", ["cloud", "saturated"])


def test_buffer_is_a_square_ring_counted_once() -> None:
    q = np.full((20, 20), CLEAR, np.uint16)
    q[5:8, 5:8] = CLOUD  # 3x3 cloud: a 2-pixel buffer makes it 7x7, a ring of 49 - 9 = 40 pixels
    q[6, 8] = SHADOW  # touching the cloud: its own reason, not buffer
    r = Q.reasons(q, "qa_pixel", ["cloud", "shadow"], buffer=2)
    code = {n: 1 + Q.REASONS.index(n) for n in Q.REASONS}
    assert (r == code["cloud"]).sum() == 9 and (r == code["shadow"]).sum() == 1
    # the ring of the union of cloud and shadow: 7x7 around the cloud plus the shadow's column 10
    # (rows 4..8) = 49 + 5 - 10 masked pixels inside
    assert (r == code["buffer"]).sum() == 49 + 5 - 10
    assert (Q.dilate(np.eye(3, dtype=bool)[::-1], 0) == np.eye(3, dtype=bool)[::-1]).all()
    # a decimated read (pass 1's sample) grows by the buffer in its larger pixels, rounded up
    m = Q.QaMask("scl", ["cloud"], buffer=5)
    assert (m.scaled(2).buffer, m.scaled(5).buffer, m.scaled(10).buffer, m.scaled(1).buffer, m.buffer) == (3, 1, 1, 5, 5)


# ---------------------------------------------------------------------------------------------
# Landsat C2 L2 stack with a qa_pixel band
# ---------------------------------------------------------------------------------------------
def test_landsat_qa_pixel_flagged_pixels_are_unobserved_with_their_area(tmp_path: Path) -> None:
    cfg_path, qa_a, qa_b = _two_landsat_dates(tmp_path)
    res = run(RunConfig.from_yaml(cfg_path))
    out = tmp_path / "out"
    flagged_a = qa_a != CLEAR
    flagged_b = qa_b != CLEAR
    assert flagged_a.sum() == 3 * 16 + 15 + 3 * 4 + 50  # clouds, shadow, snow/cirrus/dilated, fill
    for date, flagged, d in (("2020-08-01", flagged_a, res.summary["dates"][0]),
                             ("2021-08-01", flagged_b, res.summary["dates"][1])):
        w = _water(out, date)
        assert ((w == 255) == flagged).all(), date  # exactly the flagged pixels (the fill corner is also nodata)
        assert d["unobserved_pixels"] == int(flagged.sum())
        assert d["unobserved_km2"] == pytest.approx(_m2(flagged) / 1e6, abs=1e-6)
        assert d["masked_total_km2"] == pytest.approx(_m2(flagged) / 1e6, abs=1e-6)
        assert sum(d["masked_km2"].values()) == pytest.approx(d["masked_total_km2"], abs=1e-5)
    m = res.summary["dates"][0]["masked_km2"]
    for name, sel in (("cloud", qa_a == CLOUD), ("shadow", qa_a == SHADOW), ("snow", qa_a == SNOW),
                      ("cirrus", qa_a == CIRRUS), ("dilated_cloud", qa_a == DILATED), ("fill", qa_a == FILL)):
        assert m[name] == pytest.approx(_m2(sel) / 1e6, abs=1e-6), name
    assert "buffer" not in m  # no buffer asked
    assert (_water(out, "2021-08-01")[20:23, 130:135] == 0).all()  # the shadow's land, on the clear date
    assert res.summary["change"]["unobserved_pixels"] == int((flagged_a | flagged_b).sum())


def test_landsat_qa_off_shadow_becomes_water(tmp_path: Path) -> None:
    cfg_path, qa_a, _ = _two_landsat_dates(tmp_path, {"enabled": False})
    res = run(RunConfig.from_yaml(cfg_path))
    w = _water(tmp_path / "out", "2020-08-01")
    assert (w[20:23, 130:135] == 1).all()  # the complaint the QA fixes: cloud shadow read as water
    assert "masked_km2" not in res.summary["dates"][0]


def test_buffer_adds_the_ring_and_does_not_depend_on_chunk_size(tmp_path: Path) -> None:
    cfg_path, qa_a, _ = _two_landsat_dates(tmp_path, {"buffer": 2})
    cfg = RunConfig.from_yaml(cfg_path)
    res = run(cfg)
    flagged = qa_a != CLEAR
    # 4x4 clouds -> 8x8 (ring 48 each, three clouds); the 3x5 shadow -> 7x9 (ring 48); snow,
    # cirrus, dilated cloud and fill are not grown
    ring = 3 * (64 - 16) + (63 - 15)
    w = _water(tmp_path / "out", "2020-08-01")
    assert int((w == 255).sum()) == int(flagged.sum()) + ring
    grown = flagged.copy()
    for r, c in ((slice(48, 56), slice(38, 46)), (slice(8, 16), slice(8, 16)), (slice(58, 66), slice(123, 131)),
                 (slice(18, 25), slice(128, 137))):
        grown[r, c] = True
    assert ((w == 255) == grown).all()
    d = res.summary["dates"][0]
    assert d["masked_km2"]["buffer"] == pytest.approx(_m2(grown & ~flagged) / 1e6, abs=1e-6)
    assert d["unobserved_km2"] == pytest.approx(_m2(grown) / 1e6, abs=1e-6)
    assert d["masked_km2"]["cloud"] == pytest.approx(_m2(qa_a == CLOUD) / 1e6, abs=1e-6)
    digest = hashlib.sha256((tmp_path / "out" / "water_2020-08-01.tif").read_bytes()).hexdigest()
    # 64-pixel blocks: the cloud at [60:64, 125:129] ends on a block edge; its ring in the next blocks must be there
    cfg2 = RunConfig.from_yaml(cfg_path)
    cfg2.compute.chunk_size = 64
    cfg2.output.dir = "out64"
    res2 = run(cfg2)
    assert hashlib.sha256((tmp_path / "out64" / "water_2020-08-01.tif").read_bytes()).hexdigest() == digest
    assert res2.summary["dates"][0]["masked_km2"] == d["masked_km2"]


def test_pass1_sample_drops_masked_pixels(tmp_path: Path) -> None:
    from rs_change.pipeline import build_source, reference_grid
    from rs_change.readers import decimated_read

    cfg_path, qa_a, _ = _two_landsat_dates(tmp_path)
    cfg = RunConfig.from_yaml(cfg_path)
    src = build_source(cfg.scenes[0], cfg)
    assert "qa_pixel" not in src.profile.bands and "qa_pixel" not in src.layers  # never a feature
    ref = reference_grid(cfg, [src])
    bands, valid = decimated_read(src, ref, (75, 75))
    assert set(bands) == {"blue", "green", "red", "nir", "swir1", "swir2"}
    picked = qa_a[1::2, 1::2]  # the pixel under each decimated centre
    assert not (valid & (picked != CLEAR)).any()
    assert valid[qa_a[1::2, 1::2] == CLEAR].all()


# ---------------------------------------------------------------------------------------------
# Sentinel-2 L2A assets with a 20 m SCL file on the 10 m grid
# ---------------------------------------------------------------------------------------------
T10 = Affine(10, 0, 600000, 0, -10, 5100000)
T20 = Affine(20, 0, 600000, 0, -20, 5100000)
S2_LAND = {"blue": 0.04, "green": 0.07, "red": 0.06, "nir": 0.32, "swir1": 0.2, "swir2": 0.1}
S2_WATER = {"blue": 0.06, "green": 0.05, "red": 0.03, "nir": 0.02, "swir1": 0.015, "swir2": 0.012}


def _s2_date(tmp: Path, name: str, scl: np.ndarray, seed: int) -> dict[str, str]:
    h, w = 2 * scl.shape[0], 2 * scl.shape[1]
    rng = np.random.default_rng(seed)
    files = {}
    for role in S2_LAND:
        a = np.full((h, w), S2_LAND[role])
        a[30:90, 20:100] = S2_WATER[role]
        a += rng.normal(0, 0.003, a.shape)
        dn = np.round(a * 1e4).astype(np.uint16)
        tr = T10
        if role in ("swir1", "swir2"):  # 20 m bands, as Sentinel-2 delivers them
            dn, tr = dn[::2, ::2].copy(), T20
        files[role] = str(write_geotiff(tmp / f"{name}_{role}.tif", dn, tr, UTM, nodata=0).name)
    files["scl"] = str(write_geotiff(tmp / f"{name}_SCL.tif", scl, T20, UTM, nodata=0).name)
    return files


def test_sentinel2_scl_asset_20m_on_10m_grid(tmp_path: Path) -> None:
    scl = np.full((60, 60), 4, np.uint8)  # vegetation
    scl[15:45, 10:50] = 6  # SCL's water: never used
    scl[20:24, 15:19] = 9  # cloud high probability over the lake (20 m pixels)
    scl[5:7, 52:55] = 8  # cloud medium probability on land
    scl[50:53, 5:9] = 3  # cloud shadow
    scl[55:57, 30:32] = 11  # snow
    scl[55:57, 40:42] = 10  # thin cirrus
    scl[0:2, 0:3] = 1  # saturated
    scl[58:, 55:] = 0  # no data
    clear = np.full((60, 60), 4, np.uint8)
    clear[15:45, 10:50] = 6
    scenes = [{"date": "2022-07-01", "sensor": "sentinel2", "assets": _s2_date(tmp_path, "a", scl, 0)},
              {"date": "2023-07-01", "sensor": "sentinel2", "assets": _s2_date(tmp_path, "b", clear, 1)}]
    res = run(RunConfig.from_yaml(_config(tmp_path, scenes)))
    flagged20 = ~np.isin(scl, (4, 6))
    flagged10 = np.kron(flagged20, np.ones((2, 2), bool))  # nearest: each 20 m pixel is 2x2 10 m pixels
    w = _water(tmp_path / "out", "2022-07-01")
    assert w.shape == (120, 120)
    assert ((w == 255) == flagged10).all()
    d = res.summary["dates"][0]
    assert d["unobserved_km2"] == pytest.approx(_m2(flagged10, T10) / 1e6, abs=1e-6)
    assert d["masked_total_km2"] == pytest.approx(d["unobserved_km2"], abs=1e-6)
    up = lambda m: np.kron(m, np.ones((2, 2), bool))  # noqa: E731
    for name, sel in (("cloud", np.isin(scl, (8, 9))), ("shadow", scl == 3), ("snow", scl == 11),
                      ("cirrus", scl == 10), ("saturated", scl == 1), ("fill", scl == 0)):
        assert d["masked_km2"][name] == pytest.approx(_m2(up(sel), T10) / 1e6, abs=1e-6), name
    # the lake's clear pixels are water (inside its edge, where the 20 m SWIR bands blend with land)
    assert (w[32:88, 22:98][~flagged10[32:88, 22:98]] == 1).all()
    assert res.summary["dates"][1]["masked_total_km2"] == 0


# ---------------------------------------------------------------------------------------------
# HLS Fmask
# ---------------------------------------------------------------------------------------------
def test_hls_fmask_asset(tmp_path: Path) -> None:
    fm = np.zeros((60, 60), np.uint8)
    fm[15:45, 10:50] = 1 << 5  # water bit: never used
    fm[20:24, 15:19] = (1 << 1) | (1 << 5)  # cloud over the lake
    fm[19:25, 14:20] |= 0  # (no own adjacency here)
    fm[50:53, 5:9] = 1 << 3  # shadow
    fm[5:7, 50:56] = 1 << 2  # adjacent to cloud
    fm[55:57, 30:32] = 1 << 4  # snow
    fm[40:42, 55:57] = 3 << 6  # high aerosol: kept by default
    fm[58:, 55:] = 255  # fill
    clear = np.zeros((60, 60), np.uint8)
    a = _s2_date(tmp_path, "a", fm, 0)
    b = _s2_date(tmp_path, "b", clear, 1)
    a["fmask"], b["fmask"] = a.pop("scl"), b.pop("scl")
    for f in (a["fmask"], b["fmask"]):  # HLS Fmask declares 255 as nodata
        with rasterio.open(tmp_path / f, "r+") as ds:
            ds.nodata = 255
    scenes = [{"date": "2022-07-01", "sensor": "sentinel2", "assets": a},
              {"date": "2023-07-01", "sensor": "sentinel2", "assets": b}]
    res = run(RunConfig.from_yaml(_config(tmp_path, scenes)))
    flagged20 = np.zeros((60, 60), bool)
    for r, c in ((slice(20, 24), slice(15, 19)), (slice(50, 53), slice(5, 9)), (slice(5, 7), slice(50, 56)),
                 (slice(55, 57), slice(30, 32)), (slice(58, 60), slice(55, 60))):
        flagged20[r, c] = True
    flagged10 = np.kron(flagged20, np.ones((2, 2), bool))
    w = _water(tmp_path / "out", "2022-07-01")
    assert ((w == 255) == flagged10).all()
    d = res.summary["dates"][0]
    assert d["unobserved_km2"] == pytest.approx(_m2(flagged10, T10) / 1e6, abs=1e-6)
    assert set(d["masked_km2"]) == {"fill", "cloud", "shadow", "snow", "adjacent"}
    assert d["masked_km2"]["adjacent"] == pytest.approx(_m2(np.kron(fm == 4, np.ones((2, 2), bool)), T10) / 1e6, abs=1e-6)
    assert d["masked_km2"]["fill"] == pytest.approx(_m2(np.kron(fm == 255, np.ones((2, 2), bool)), T10) / 1e6, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------
def test_config_qa_roles_and_errors(tmp_path: Path) -> None:
    base = {"date": "2020-01-01", "path": "x.tif"}
    cfg = RunConfig.from_dict({"scenes": [{**base, "sensor": "landsat8", "bands": {"qa_pixel": 8},
                                           "qa": {"mask": ["cloud", "shadow"], "buffer": 3}}]})
    assert cfg.scenes[0].qa.buffer == 3
    with pytest.raises(ConfigError, match="one QA layer per scene"):
        RunConfig.from_dict({"scenes": [{**base, "bands": {"green": 1, "nir": 2, "qa_pixel": 3, "scl": 4}}]})
    with pytest.raises(ConfigError, match="buffer"):
        RunConfig.from_dict({"scenes": [{**base, "sensor": "landsat8", "qa": {"buffer": -1}}]})
    with pytest.raises(ConfigError, match=r"scenes.0.qa.mask: unknown QA class `clouds`; did you mean `cloud`\?"):
        RunConfig.from_dict({"scenes": [{**base, "sensor": "landsat8", "qa": {"mask": ["clouds"]}}]})
    with pytest.raises(ConfigError, match="`water`: the product's water flag is never used"):
        RunConfig.from_dict({"scenes": [{**base, "sensor": "sentinel2", "qa": {"mask": ["water"]}}]})
    with pytest.raises(ConfigError, match="unknown band role `qa_pixl`; did you mean `qa_pixel`"):
        RunConfig.from_dict({"scenes": [{**base, "sensor": "landsat8", "bands": {"qa_pixl": 8}}]})


def test_bad_class_for_product_is_one_line_at_run(tmp_path: Path) -> None:
    cfg_path, _, _ = _two_landsat_dates(tmp_path, {"mask": ["cloud", "saturated"]})
    with pytest.raises(RsChangeError, match="`saturated` is not a class of the qa_pixel QA layer"):
        run(RunConfig.from_yaml(cfg_path), write=False)


def test_modis_rejects_mask_and_buffer() -> None:
    from rs_change.errors import BandProfileError
    from rs_change.modis import qa_settings

    assert qa_settings({"mask": None, "buffer": 0, "snow": True})["snow"] is True
    with pytest.raises(BandProfileError, match="qa.buffer: applies to qa_pixel, scl and fmask"):
        qa_settings({"buffer": 2})


# ---------------------------------------------------------------------------------------------
# STAC: the QA asset is fetched by default and applied
# ---------------------------------------------------------------------------------------------
def test_stac_fetches_and_applies_the_scl_asset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rasterio.warp import transform_bounds

    from rs_change import stac
    from rs_change.cli import main

    from .loopback import LoopbackServer
    from .test_stac import FakeStacApi, _item

    www = tmp_path / "www"
    www.mkdir()
    scl = np.full((60, 60), 4, np.uint8)
    scl[15:45, 10:50] = 6
    scl[20:24, 15:19] = 9  # cloud over the lake
    scl[50:53, 5:9] = 3  # shadow
    clear = np.full((60, 60), 4, np.uint8)
    clear[15:45, 10:50] = 6
    names = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir1": "B11", "swir2": "B12", "scl": "SCL"}
    files = {"2022-07-01": _s2_date(www, "a", scl, 0), "2023-07-01": _s2_date(www, "b", clear, 1)}
    with rasterio.open(www / files["2022-07-01"]["blue"]) as ds:
        bbox = [round(v, 6) for v in transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)]
    api = FakeStacApi([])
    with LoopbackServer(www, api.routes()) as srv:
        api.base = srv.url("").rstrip("/")
        api.items = [_item(f"S2_{d}", d, {names[r]: srv.url(f) for r, f in fs.items()}, bbox) for d, fs in files.items()]
        block = {"url": srv.url("api"), "sensor": "sentinel2", "collections": ["naip"]}
        cfg_path = tmp_path / "stac.yaml"
        cfg_path.write_text(yaml.safe_dump({"stac": block, "clustering": {"k": 3, "seed": 0, "n_init": 1},
                                            "output": {"dir": "out", "report": False, "polygons": False}}))
        found, rows = stac.find_scenes(RunConfig.from_yaml(cfg_path))
        assert found.scenes[0].assets["scl"] == srv.url(files["2022-07-01"]["scl"])
        assert main(["validate", str(cfg_path)]) == 0
        listed = capsys.readouterr().out
        assert f"    {srv.url(files['2022-07-01']['scl'])}  (QA scl)" in listed
        assert main(["run", str(cfg_path)]) == 0
        table = capsys.readouterr().out
        # stac.qa: {enabled: false} fetches no QA asset
        off = RunConfig.from_dict({"stac": {**block, "qa": {"enabled": False}}}, base_dir=tmp_path)
        assert "scl" not in stac.find_scenes(off)[0].scenes[0].assets
        buffered = RunConfig.from_dict({"stac": {**block, "qa": {"buffer": 1}}}, base_dir=tmp_path)
        assert stac.find_scenes(buffered)[0].scenes[0].qa.buffer == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    flagged10 = np.kron(~np.isin(scl, (4, 6)), np.ones((2, 2), bool))
    w = _water(tmp_path / "out", "2022-07-01")
    assert ((w == 255) == flagged10).all()
    d = summary["dates"][0]
    assert d["masked_km2"]["cloud"] == pytest.approx(_m2(np.kron(scl == 9, np.ones((2, 2), bool)), T10) / 1e6, abs=1e-6)
    assert d["unobserved_km2"] == pytest.approx(_m2(flagged10, T10) / 1e6, abs=1e-6)
    assert f"2022-07-01  QA-masked_km2 {d['masked_total_km2']:.6f} (fill" not in table  # only the reasons found
    assert f"2022-07-01  QA-masked_km2 {d['masked_total_km2']:.6f} (cloud {d['masked_km2']['cloud']:.6f}, shadow" in table
    csv_rows = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    head = csv_rows[0].split(",")
    assert float(csv_rows[1].split(",")[head.index("masked_total_km2")]) == d["masked_total_km2"]
    from rs_change.report_page import _date_columns

    assert "masked_total_km2" in [c[0] for c in _date_columns(summary["dates"])]
    recorded = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert recorded["scenes"][0]["assets"]["scl"].endswith("a_SCL.tif")


def test_read_scene_with_a_qa_band(tmp_path: Path) -> None:
    """The API reads a QA band like the run: its flagged pixels are not valid, it is not a band."""
    from rs_change.api import read_scene

    stack, qa = landsat_scene()
    write_geotiff(tmp_path / "s.tif", stack, T30, UTM, nodata=0)
    sc = read_scene(tmp_path / "s.tif", sensor="landsat8", bands={"qa_pixel": 8}, date="2020-08-01")
    assert set(sc.bands) == {"blue", "green", "red", "nir", "swir1", "swir2"} and "qa_pixel" not in sc.profile.bands
    assert (sc.valid == (qa == CLEAR)).all()


def test_a_date_of_two_items_fills_one_items_clouds_with_the_other(tmp_path: Path) -> None:
    """`assets:` as a list (two acquisitions of one date, as a STAC day gives them): a pixel comes
    from the first item that observes it clear; cloudy in both, it is unobserved and counted under
    the first item's reason."""
    one = np.full((60, 60), 4, np.uint8)
    one[15:45, 10:50] = 6
    two = one.copy()
    one[20:24, 15:19] = 9  # cloud in the first item only
    two[50:53, 5:9] = 3  # shadow in the second item only
    one[5:7, 40:43] = 8  # cloud in the first ...
    two[5:7, 40:43] = 3  # ... and shadow in the second: masked, reason cloud
    parts = [_s2_date(tmp_path, "p1", one, 0), _s2_date(tmp_path, "p2", two, 2)]
    scenes = [{"date": "2022-07-01", "sensor": "sentinel2", "assets": parts},
              {"date": "2023-07-01", "sensor": "sentinel2", "assets": _s2_date(tmp_path, "b", two * 0 + 4, 1)}]
    res = run(RunConfig.from_yaml(_config(tmp_path, scenes)), write=False)
    d = res.summary["dates"][0]
    both = np.kron((np.arange(60)[:, None] >= 5) & (np.arange(60)[:, None] < 7) & (np.arange(60) >= 40) & (np.arange(60) < 43),
                   np.ones((2, 2), bool))
    assert d["unobserved_pixels"] == int(both.sum()) == 24
    assert d["masked_km2"]["cloud"] == pytest.approx(_m2(both, T10) / 1e6, abs=1e-6)
    assert d["masked_km2"]["shadow"] == 0 and d["masked_total_km2"] == d["unobserved_km2"]


def test_pass1_sample_with_a_buffer(tmp_path: Path) -> None:
    """A decimated read by 2 with `buffer: 2` drops the sampled pixels within 1 decimated pixel of
    a sampled cloud or shadow pixel (the buffer in the sample's pixels, rounded up)."""
    from rs_change.pipeline import build_source, reference_grid
    from rs_change.readers import decimated_read

    cfg_path, qa_a, _ = _two_landsat_dates(tmp_path, {"buffer": 2})
    cfg = RunConfig.from_yaml(cfg_path)
    src = build_source(cfg.scenes[0], cfg)
    _, valid = decimated_read(src, reference_grid(cfg, [src]), (75, 75))
    picked = qa_a[1::2, 1::2]
    dropped = (picked != CLEAR) | Q.dilate((picked == CLOUD) | (picked == SHADOW), 1)
    assert (valid == ~dropped).all()


def test_stac_qa_asset_keys_per_product() -> None:
    """Landsat C2 L2 items give qa_pixel, HLS items Fmask, Earth Search's Sentinel-2 L2A scl; a
    multi-band asset, an asset mapping that names a QA role, or qa.enabled false fetch none."""
    import pystac

    from rs_change import stac

    from .test_stac import _item

    def item(*keys: str) -> pystac.Item:
        return _item("x", "2023-06-11", {k: f"https://example.test/{k}.tif" for k in keys}, [0, 0, 1, 1])

    st = RunConfig.from_dict({"stac": {"url": "x.json", "sensor": "landsat8"}}).stac
    bands = {"green": "green", "nir": "nir08"}
    assert stac.qa_asset_key(st, item("green", "nir08", "qa_pixel", "qa_radsat"), bands) == ("qa_pixel", "qa_pixel")
    assert stac.qa_asset_key(st, item("B03", "B05", "Fmask"), {"green": "B03", "nir": "B05"}) == ("fmask", "Fmask")
    assert stac.qa_asset_key(st, item("green", "nir", "scl"), {"green": "green", "nir": "nir"}) == ("scl", "scl")
    assert stac.qa_asset_key(st, item("green", "nir08"), bands) is None
    assert stac.qa_asset_key(st, item("image", "qa_pixel"), "image") is None
    assert stac.qa_asset_key(st, item("green", "nir08", "qa_pixel"), {**bands, "qa_pixel": "qa_pixel"}) is None
    off = RunConfig.from_dict({"stac": {"url": "x.json", "sensor": "landsat8", "qa": {"enabled": False}}}).stac
    assert stac.qa_asset_key(off, item("green", "nir08", "qa_pixel"), bands) is None
    scenes, rows = stac.scenes_from_items([item("blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel")], st)
    assert scenes[0]["assets"]["qa_pixel"] == "https://example.test/qa_pixel.tif"
    assert "(QA qa_pixel)" in stac.describe(rows)
    scenes, rows = stac.scenes_from_items([item("blue", "green", "red", "nir08", "swir16", "swir22")], st)
    assert "no QA asset" in stac.describe(rows)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_dilate_is_scipys_square_dilation(n: int) -> None:
    from scipy.ndimage import binary_dilation

    m = np.random.default_rng(n).random((97, 131)) < 0.01
    m[0, 0] = m[-1, 60] = True  # on the edges: nothing grows in from beyond them
    assert (Q.dilate(m, n) == binary_dilation(m, structure=np.ones((2 * n + 1, 2 * n + 1), bool))).all()


def test_validate_lists_the_qa_layer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """validate's per-scene survey names the QA band and what it masks; the QA band is neither an
    unused band nor a band too many for the profile."""
    from rs_change.cli import main

    cfg_path, _, _ = _two_landsat_dates(tmp_path, {"buffer": 2})
    assert main(["validate", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "    qa_pixel QA: mask fill, cloud, shadow, cirrus, snow, dilated_cloud; buffer 2 px (band 8)" in out
    assert "unused bands: 1\n" in out and "expects 7" not in out and "0 warning" not in out and "warning" not in out
