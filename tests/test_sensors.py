"""Sensor profiles tell the truth: a Sentinel-2 offset only where the file or the config says so,
and a scene whose scale/offset give impossible reflectance is refused with one line."""

from __future__ import annotations

import datetime as _dt
import json
import logging

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine

from rs_change.cli import main
from rs_change.config import RunConfig
from rs_change.errors import BandProfileError, ConfigError
from rs_change.pipeline import build_source
from rs_change.scenes import open_scene
from rs_change.sensors import BandProfile, check_reflectance, get_profile

UTM = "EPSG:32633"
T = Affine(10, 0, 300000, 0, -10, 5800000)
DAY = _dt.date(2023, 6, 1)
# Sentinel-2 reflectance x 10000, B02 B03 B04 B08 B11 B12: clear water and vegetated land
WATER = np.array([600, 500, 300, 150, 80, 60])
LAND = np.array([800, 900, 700, 3000, 2000, 1200])


def s2_scene(h: int = 30, w: int = 30, add: int = 0, noise: int = 0) -> np.ndarray:
    """A 6-band uint16 Sentinel-2-like scene: land with a 10 x 10 lake; ``add`` DNs added to every
    band (processing baseline 04.00+ products add 1000), uniform noise of +-``noise`` DNs."""
    img = np.empty((6, h, w), np.int64)
    img[:] = (LAND + add)[:, None, None]
    img[:, 10:20, 10:20] = (WATER + add)[:, None, None]
    if noise:
        img += np.random.default_rng(0).integers(-noise, noise + 1, size=img.shape)
    return img.astype(np.uint16)


def _tag(path, dataset=None, band=None, offsets=None, scales=None):
    with rasterio.open(path, "r+") as ds:
        if dataset:
            ds.update_tags(**dataset)
        if band:
            for b in range(1, ds.count + 1):
                ds.update_tags(b, **band)
        if offsets is not None:
            ds.offsets = offsets
        if scales is not None:
            ds.scales = scales
    return path


def _config(tmp_path, scene: dict, **extra) -> RunConfig:
    data = {"scenes": [{"date": "2023-06-01", "path": "s2.tif", "sensor": "sentinel2", **scene}], **extra}
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return RunConfig.from_yaml(p)


def test_sentinel2_without_a_declared_offset_uses_offset_0(make_tif, caplog):
    path = make_tif("s2.tif", s2_scene(), T, UTM, nodata=0)
    assert get_profile("sentinel2").offset == 0.0
    with caplog.at_level(logging.INFO, logger="rs_change"):
        src = open_scene(path, get_profile("sentinel2"), DAY)
    assert src.profile.offset == 0.0
    with src.open(src.grid) as rd:
        bands, valid = rd.read()
    assert valid.all()
    assert bands["nir"][0, 0] == pytest.approx(0.3) and bands["nir"][15, 15] == pytest.approx(0.015)
    assert "offset 0: the file declares none" in caplog.text


@pytest.mark.parametrize("how", [
    {"dataset": {"BOA_ADD_OFFSET": "-1000"}},         # L2A baseline 04.00+, a file-level tag
    {"band": {"BOA_ADD_OFFSET": "-1000"}},            # ... or a tag on each band
    {"dataset": {"RADIO_ADD_OFFSET": "-1000"}},       # L1C baseline 04.00+
    {"offsets": [-0.1] * 6, "scales": [1e-4] * 6},    # GDAL band offset/scale (physical units)
    {"offsets": [-1000.0] * 6},                       # GDAL band offset without a scale: in DN
])
def test_an_offset_the_file_declares_is_applied(make_tif, caplog, how):
    path = _tag(make_tif("s2.tif", s2_scene(add=1000), T, UTM, nodata=0), **how)
    with caplog.at_level(logging.INFO, logger="rs_change"):
        src = open_scene(path, get_profile("sentinel2"), DAY)
    assert src.profile.offset == pytest.approx(-0.1)
    assert "declared by the file" in caplog.text
    with src.open(src.grid) as rd:
        bands, _ = rd.read()
    assert bands["nir"][0, 0] == pytest.approx(0.3, abs=1e-6)  # the same reflectance as the product without +1000
    assert bands["red"][15, 15] == pytest.approx(0.03, abs=1e-6)


def test_the_configs_offset_wins_over_the_files(make_tif, tmp_path, caplog):
    _tag(make_tif("s2.tif", s2_scene(), T, UTM, nodata=0), dataset={"BOA_ADD_OFFSET": "-1000"})
    cfg = _config(tmp_path, {"offset": 0})
    with caplog.at_level(logging.INFO, logger="rs_change"):
        src = build_source(cfg.scenes[0], cfg)
    assert src.profile.offset == 0.0
    assert "set explicitly" in caplog.text
    cfg = _config(tmp_path, {"offset": -0.05})
    assert build_source(cfg.scenes[0], cfg).profile.offset == pytest.approx(-0.05)
    cfg = _config(tmp_path, {})  # no `offset:`: the file's tag
    assert build_source(cfg.scenes[0], cfg).profile.offset == pytest.approx(-0.1)


def test_other_profiles_keep_their_own_offset(make_tif):
    # Landsat Collection 2 L2's -0.2 is the product's definition, whatever tags a file carries
    img = np.full((7, 5, 5), 10000, np.uint16)
    path = _tag(make_tif("l8.tif", img, T, UTM, nodata=0), dataset={"BOA_ADD_OFFSET": "-1000"})
    assert open_scene(path, get_profile("landsat8"), DAY).profile.offset == pytest.approx(-0.2)


def test_bands_that_declare_different_offsets_are_refused(make_tif):
    path = _tag(make_tif("s2.tif", s2_scene(), T, UTM, nodata=0), offsets=[-1000.0] * 5 + [-500.0])
    with pytest.raises(BandProfileError, match="different offsets.*`offset:`"):
        open_scene(path, get_profile("sentinel2"), DAY)


def test_an_explicit_offset_turns_off_the_files():
    p = get_profile("sentinel2")
    assert p.offset_from_file and not p.offset_given
    q = p.with_overrides(offset=0.0)
    assert not q.offset_from_file and q.offset_given and q.offset == 0.0
    assert p.with_overrides(offset=None, scale=2e-4).offset_from_file  # nothing given: unchanged


# -- check_reflectance --------------------------------------------------------------------------
PROFILE = BandProfile("s2", {"blue": 1, "green": 2, "red": 3, "nir": 4}, scale=1e-4, offset=-0.1)


def _bands(values: np.ndarray) -> dict[str, np.ndarray]:
    """(n, 4) reflectances -> role -> (n,) float32."""
    return {r: values[:, i].astype(np.float32) for i, r in enumerate(("blue", "green", "red", "nir"))}


def test_check_reflectance_refuses_mostly_negative_scenes():
    v = np.vstack([np.tile([-0.04, -0.05, -0.07, -0.08], (63, 1)), np.tile([0.05, 0.06, 0.04, 0.3], (37, 1))])
    with pytest.raises(ConfigError) as ei:
        check_reflectance(_bands(v), np.ones(100, bool), PROFILE, "s2.tif")
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith("scene s2.tif: 63% of observed pixels have reflectance < 0 after scale 0.0001 and offset -0.1")
    assert "`offset:`" in msg and "`scale:`" in msg


def test_check_reflectance_refuses_mostly_above_1():
    v = np.tile([600.0, 500, 300, 3000], (10, 1))  # DNs used as reflectance: no scale given
    with pytest.raises(ConfigError, match=r"100% of observed pixels have reflectance > 1 after scale 1 and offset 0.*`scale:`"):
        check_reflectance(_bands(v), np.ones(10, bool), BandProfile("c", PROFILE.bands, scale=1.0), "x.tif")


def test_check_reflectance_passes_real_looking_scenes():
    rng = np.random.default_rng(0)
    # dark water (a negative NIR here and there), land, 30% cloud brighter than 1 in some bands
    water = np.column_stack([rng.normal(0.04, 0.01, 400), rng.normal(0.05, 0.01, 400),
                             rng.normal(0.02, 0.01, 400), rng.normal(0.0, 0.01, 400)])
    land = np.column_stack([rng.normal(0.06, 0.01, 300), rng.normal(0.09, 0.01, 300),
                            rng.normal(0.07, 0.01, 300), rng.normal(0.3, 0.05, 300)])
    cloud = np.full((300, 4), 0.95) + rng.normal(0, 0.1, (300, 4))
    check_reflectance(_bands(np.vstack([water, land, cloud])), np.ones(1000, bool), PROFILE, "ok.tif")
    # unobserved pixels do not count
    bad = _bands(np.vstack([np.full((90, 4), -0.5), land[:10]]))
    check_reflectance(bad, np.arange(100) >= 90, PROFILE, "ok.tif")
    # uncalibrated profiles (digital numbers) and scenes without observed pixels are not checked
    check_reflectance(_bands(np.full((5, 4), 200.0)), np.ones(5, bool), get_profile("naip"), "naip.tif")
    check_reflectance(_bands(np.full((5, 4), -1.0)), np.zeros(5, bool), PROFILE, "empty.tif")


def test_run_refuses_a_mostly_negative_scene_with_one_line(make_tif, tmp_path, capsys):
    # an old-baseline product (no +1000 in its DNs) whose file nevertheless says BOA_ADD_OFFSET=-1000
    _tag(make_tif("s2.tif", s2_scene(noise=40), T, UTM, nodata=0), dataset={"BOA_ADD_OFFSET": "-1000"})
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({
        "scenes": [{"date": "2023-06-01", "path": "s2.tif", "sensor": "sentinel2"}],
        "clustering": {"k": 2, "seed": 0, "n_init": 1},
        "output": {"dir": "out", "report": False, "polygons": False}}))
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "s2.tif" in err and "`offset:`" in err and "offset -0.1" in err and "reflectance < 0" in err
    assert not (tmp_path / "out").exists()
    # the fix the message names: `offset: 0`
    data = yaml.safe_load(cfg.read_text())
    data["scenes"][0]["offset"] = 0
    cfg.write_text(yaml.safe_dump(data))
    assert main(["run", str(cfg)]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["dates"][0]["water_pixels"] == 100  # the 10 x 10 lake


# -- the real Sentinel-2 L1C scene ------------------------------------------------------------------
S2 = "s2_brandenburg_osm/s2l1c_T33UUU_20170216_6band_10m.tif"


def test_real_l1c_scene_has_positive_reflectance_with_sentinel2(shared_data, tmp_path):
    path = shared_data / S2
    if not path.exists():
        pytest.skip(f"{S2} is not present")
    cfg = RunConfig.from_dict({"scenes": [{"date": "2017-02-16", "path": str(path), "sensor": "sentinel2"}]},
                              base_dir=tmp_path)
    src = build_source(cfg.scenes[0], cfg)
    assert src.profile.offset == 0.0  # a 2017 L1C declares no offset
    with src.open(src.grid) as rd:
        bands, valid = rd.read()
    assert valid.mean() > 0.5
    med = {r: float(np.median(b[valid])) for r, b in bands.items()}
    assert all(0 < m < 1 for m in med.values()), med
    assert float(np.median(np.stack([bands[r][valid] for r in ("blue", "green", "red", "nir")]))) > 0.05
    check_reflectance(bands, valid, src.profile, str(path))  # passes
