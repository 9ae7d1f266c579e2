"""Radiometry per product (issue 25): the profile's expected values checked on the pass-1
sample, the DN profiles of older Landsat archives, and what `rs-change validate` says per scene."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from rs_change.cli import main
from rs_change.errors import BandProfileError
from rs_change.sensors import PROFILES, check_raw_values, profile_warnings, value_range

from .conftest import T10, UTM, write_geotiff

#: TM digital numbers (B1..B7, thermal B6 at 130/120) of land and of water, 8-bit
TM_LAND = np.array([60, 28, 30, 80, 90, 130, 40])
TM_WATER = np.array([55, 22, 18, 12, 5, 120, 3])


def _tm(path: Path) -> Path:
    """A 7-band uint8 TM-like scene of raw DNs: a 40 x 60 lake on land, nodata 0."""
    rng = np.random.default_rng(0)
    img = np.empty((7, 120, 160), np.int32)
    img[:] = TM_LAND[:, None, None]
    img[:, 30:70, 40:100] = TM_WATER[:, None, None]
    img += rng.integers(-3, 4, img.shape)
    return write_geotiff(path, np.clip(img, 1, 255).astype(np.uint8), T10, UTM, nodata=0)


def _s2like(path: Path) -> Path:
    """A 6-band uint16 Sentinel-2-like scene (reflectance x 10000)."""
    rng = np.random.default_rng(1)
    img = np.empty((6, 60, 80), np.int32)
    img[:] = np.array([600, 800, 700, 3000, 2000, 1200])[:, None, None]
    img[:, 10:30, 20:50] = np.array([500, 700, 400, 200, 100, 80])[:, None, None]
    img += rng.integers(-30, 31, img.shape)
    return write_geotiff(path, img.astype(np.uint16), T10, UTM, nodata=0)


def _config(folder: Path, name: str, path: str, **scene) -> Path:
    data = {"scenes": [{"date": "1988-08-14", "path": path, **scene}], "clustering": {"k": 2, "seed": 0, "n_init": 1},
            "output": {"dir": f"out_{name}", "report": False, "polygons": False}}
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_tm_dns_given_the_surface_reflectance_profile_stop_with_one_line(tmp_path, capsys):
    """The issue's Landsat 5 case: 8-bit DNs with `sensor: landsat_tm` (Collection 2 Level-2,
    valid 7273-43636) stop run and validate with one line naming the profile, what was found and
    the keys to set, not "every pixel is nodata"; nothing is written."""
    _tm(tmp_path / "tm.tif")
    cfg = _config(tmp_path, "sr", "tm.tif", sensor="landsat_tm")
    for cmd in (["validate", str(cfg)], ["run", str(cfg)]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        for part in ("'landsat_tm' profile", "valid range 7273-43636", "found values", "uint8", "`sensor: landsat_tm_dn`",
                     "`scale`", "`offset`", "`valid_range`"):
            assert part in err, (part, err)
        assert "every pixel" not in err
    assert not (tmp_path / "out_sr").exists()


def test_tm_dns_validate_with_the_dn_profile(tmp_path, capsys):
    """`sensor: landsat_tm_dn`: validate lists the 7 bands with the thermal band 6 unused, the
    DN radiometry, every pixel valid and the values found; no warning."""
    _tm(tmp_path / "tm.tif")
    assert main(["validate", str(_config(tmp_path, "dn", "tm.tif", sensor="landsat_tm_dn"))]) == 0
    out = capsys.readouterr().out
    assert "160 x 120 px, EPSG:32614, uint8, 7 band(s); profile landsat_tm_dn" in out
    assert "bands: blue=1 green=2 red=3 nir=4 swir1=5 swir2=7; unused bands: 6" in out
    assert "digital numbers (uncalibrated); nodata 0" in out
    lo, hi = int(TM_WATER[[0, 1, 2, 3, 4, 6]].min()) - 3, int(TM_LAND[[0, 1, 2, 3, 4, 6]].max()) + 3
    assert "valid pixels 100.0% of a 160 x 120 read" in out and "warning" not in out
    vals = out.split("values ")[1].split()[0]
    assert lo <= int(vals.split("-")[0]) and int(vals.split("-")[1]) <= hi


def test_tm_dns_run_with_the_dn_profile(tmp_path):
    """The DN profile runs: the lake (2,400 px of 100 m2 = 0.24 km2) is found."""
    _tm(tmp_path / "tm.tif")
    assert main(["run", str(_config(tmp_path, "dn", "tm.tif", sensor="landsat_tm_dn"))]) == 0
    import json

    s = json.loads((tmp_path / "out_dn" / "summary.json").read_text())
    assert s["dates"][0]["water_km2"] == pytest.approx(0.24, rel=0.02)


def test_a_valid_range_makes_the_sr_profile_read_dns(tmp_path, capsys):
    """The keys the line names work: `valid_range: [1, 255]` with `scale`/`offset` of the TM
    DN -> reflectance gains turns the check off (the values now fit)."""
    _tm(tmp_path / "tm.tif")
    cfg = _config(tmp_path, "vr", "tm.tif", sensor="landsat_tm", valid_range=[1, 255], scale=0.003, offset=0.0,
                  bands={"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 7})
    assert main(["validate", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "valid range 1-255" in out and "reflectance = value x 0.003 + 0" in out


def test_a_sentinel2_file_given_naip_warns_in_validate_and_run(tmp_path, capsys, caplog):
    """A 6-band uint16 file with `sensor: naip`: validate prints the band count, data type and
    value range warnings, and a run logs them (and still runs)."""
    _s2like(tmp_path / "s2.tif")
    cfg = _config(tmp_path, "naip", "s2.tif", sensor="naip")
    assert main(["validate", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "unused bands: 5, 6" in out and ", 3 warning(s))" in out
    assert "warning: 6 bands where the 'naip' profile" in out and "expects 4" in out
    assert "warning: data type uint16 where the 'naip' profile" in out and "expects uint8" in out
    assert "beyond the 0-255 of the uint8 data the 'naip' profile expects" in out
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(cfg), "--summary-only"]) == 0
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "6 bands where the 'naip' profile" in logged and "data type uint16" in logged and "beyond the 0-255" in logged


def test_the_real_sentinel2_scene_fits_its_profile_and_not_naip(shared_data, capsys, tmp_path):
    """The Beetzsee L1C scene (6 bands uint16, TOA x 10000): no warning with `sentinel2`, three with `naip`."""
    f = shared_data / "s2_brandenburg_osm" / "s2l1c_T33UUU_20170216_6band_10m.tif"
    assert main(["validate", str(_config(tmp_path, "s2", str(f), sensor="sentinel2"))]) == 0
    out = capsys.readouterr().out
    assert "1536 x 768 px, EPSG:32633, uint16, 6 band(s); profile sentinel2" in out and "warning" not in out
    assert "reflectance = value x 0.0001 + 0; nodata 0" in out
    share = float(out.split("valid pixels ")[1].split("%")[0])
    assert share > 95
    assert main(["validate", str(_config(tmp_path, "n", str(f), sensor="naip"))]) == 0
    assert capsys.readouterr().out.count("warning: ") == 3


def test_validate_lists_every_scene_of_a_composite(tmp_path, capsys):
    """A date of two files: both are listed, each with its own figures."""
    _s2like(tmp_path / "a.tif")
    _s2like(tmp_path / "b.tif")
    assert main(["validate", str(_config(tmp_path, "two", ["a.tif", "b.tif"], sensor="sentinel2"))]) == 0
    out = capsys.readouterr().out
    assert f"1988-08-14  {tmp_path / 'a.tif'}" in out and f"1988-08-14  {tmp_path / 'b.tif'}" in out


def test_check_raw_values_and_profile_warnings():
    """The pure checks: a majority outside the valid range stops (the DN profile named), a
    minority passes; header mismatches and 16-bit values for an 8-bit product are named."""
    p = PROFILES["landsat8"]
    ok = np.ones((10, 10), bool)
    raws = {"nir": np.full((10, 10), 9000, np.uint16)}
    raws["nir"][:4] = 100  # 40 % outside 7273-43636: kept (clouds, fill at the edges ...)
    assert check_raw_values(raws, ok, p, 0, "l8.tif") == []
    assert value_range(raws, ok, p, 0) == (100, 100.0, 9000.0, 0.4)
    raws["nir"][:6] = 100
    with pytest.raises(BandProfileError, match=r"60% of the pixels .* 'landsat8' profile's valid range 7273-43636 "
                                               r"\(found values 100-9000, uint16\); for digital numbers use `sensor: landsat8_dn`"):
        check_raw_values(raws, ok, p, 0, "l8.tif")
    assert check_raw_values(raws, np.zeros((10, 10), bool), p, 0, "x") == []  # nothing inside: nothing to say
    assert profile_warnings(PROFILES["sentinel2"], "uint16", 6) == []
    assert profile_warnings(PROFILES["landsat_tm_dn"], "uint8", 7) == []
    assert len(profile_warnings(PROFILES["hls"], "uint16", None)) == 1  # one file per band: no band count
    assert {"landsat8_dn", "landsat_tm_dn", "landsat8_toa", "hls", "sentinel2_l1c", "sentinel2_l2a", "landsat8_sr"} <= set(PROFILES)
    assert (PROFILES["landsat8"].scale, PROFILES["landsat8"].offset, PROFILES["landsat8"].valid_range) == (2.75e-5, -0.2, (7273, 43636))
    assert PROFILES["hls"].scale == 1e-4 and PROFILES["landsat_tm_dn"].scale is None


def test_hls_items_name_their_bands_per_sensor():
    """HLS L30 and S30 items: the NIR and SWIR assets differ (S30's B05-B07 are red edge)."""
    from rs_change import stac
    from rs_change.config import RunConfig

    from .test_stac import _item

    st = RunConfig.from_dict({"stac": {"url": "x.json", "sensor": "hls"}}).stac
    l30 = _item("HLS.L30", "2023-06-11", {k: f"https://e.test/L30.{k}.tif" for k in ("B02", "B03", "B04", "B05", "B06", "B07")},
                [0, 0, 1, 1])
    s30 = _item("HLS.S30", "2023-06-12", {k: f"https://e.test/S30.{k}.tif"
                                          for k in ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")}, [0, 0, 1, 1])
    assert stac.asset_keys(st, l30) == {"blue": "B02", "green": "B03", "red": "B04", "nir": "B05", "swir1": "B06", "swir2": "B07"}
    assert stac.asset_keys(st, s30) == {"blue": "B02", "green": "B03", "red": "B04", "nir": "B8A", "swir1": "B11", "swir2": "B12"}
