"""MODIS readers: AppEEARS per-layer folders, multi-band exports, HDF4-EOS granules, scale/fill,
state QA bits, sinusoidal grid, one-line errors."""

from __future__ import annotations

import builtins
import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from rs_change import modis
from rs_change.area import pixel_area
from rs_change.config import RunConfig
from rs_change.errors import BandProfileError, ConfigError, DependencyError, InputError
from rs_change.sensors import PROFILES

from .conftest import CONFIGS, SAMPLE, write_geotiff

DATE = dt.date(2017, 7, 12)  # doy 2017193
SINU = modis.SINUSOIDAL
# a corner of MODIS tile h18v04 area; 463.3127165 m pixels
T = Affine(463.31271653030257, 0.0, 753346.477074, 0.0, -463.3127165205573, 5132114.960978)
LAYERS = [f"sur_refl_b0{i}" for i in range(1, 8)] + ["sur_refl_state_500m"]


def _sample_dir() -> Path:
    d = SAMPLE / "modis_mod09a1"
    if not d.is_dir():
        pytest.skip("sample_tiles/modis_mod09a1 is not present")
    return d


def _synthetic_layers(h: int = 6, w: int = 5) -> dict[str, np.ndarray]:
    """b01..b07 DNs of vegetated land with a dark 2x2 'lake', and a state layer."""
    land = {1: 400, 2: 3000, 3: 300, 4: 600, 5: 2800, 6: 1800, 7: 900}
    water = {1: 200, 2: 100, 3: 500, 4: 600, 5: 50, 6: 30, 7: 20}
    out = {}
    for b in range(1, 8):
        a = np.full((h, w), land[b], np.int16)
        a[1:3, 1:3] = water[b]
        a += np.arange(h * w, dtype=np.int16).reshape(h, w) % 7  # a little texture
        out[f"sur_refl_b0{b}"] = a
    st = np.full((h, w), 8, np.uint16)  # clear land
    st[1:3, 1:3] = 5 << 3  # clear, deep inland water
    st[5, 4] = 8 | 1  # cloudy
    st[5, 3] = 8 | 4  # cloud shadow
    out["sur_refl_state_500m"] = st
    return out


def _write_appeears(folder: Path, layers: dict[str, np.ndarray], date: dt.date = DATE, product: str = "MOD09A1.006") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doy = f"{date.year}{date.timetuple().tm_yday:03d}"
    for name, a in layers.items():
        nd = -28672 if a.dtype == np.int16 else 65535
        p = write_geotiff(folder / f"{product}_{name}_doy{doy}_aid0001.tif", a, T, SINU, nodata=nd)
        with rasterio.open(p, "r+") as ds:
            ds.set_band_description(1, name)
            if a.dtype == np.int16:
                ds.scales = (0.0001,)
    return folder


# ---------------------------------------------------------------------------------------------
# QA bits
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expect",
    [
        (8, dict(cloud_state=0, cloud_shadow=False, land_water=1, cirrus=0, internal_cloud=False, adjacent_to_cloud=False)),
        (12, dict(cloud_state=0, cloud_shadow=True, land_water=1)),
        (1033, dict(cloud_state=1, cloudy=True, internal_cloud=True, land_water=1, cirrus=0)),
        (1034, dict(cloud_state=2, mixed=True, cloudy=False, internal_cloud=True)),
        (1288, dict(cirrus=1, internal_cloud=True, cloud_state=0)),
        (1544, dict(cirrus=2)),
        (1800, dict(cirrus=3)),
        (8396, dict(adjacent_to_cloud=True, aerosol=3, cloud_shadow=True, land_water=1, cloud_state=0)),
        (8208, dict(adjacent_to_cloud=True, land_water=2, cloud_shadow=False)),
        (5 << 3, dict(land_water=5, cloud_state=0)),
    ],
)
def test_decode_state_bits(value: int, expect: dict) -> None:
    d = modis.decode_state(np.array([value], np.uint16))
    for k, v in expect.items():
        assert d[k][0] == v, (value, k)


def test_qa_mask_defaults_and_flags() -> None:
    vals = np.array([8, 1033, 1034, 12, 1288, 1544, 1800, 8208, 65535], np.uint16)
    # clear, cloudy, mixed, shadow, cirrus small, average, high, adjacent only, fill
    assert modis.qa_mask(vals, fill=65535).tolist() == [False, True, True, True, False, True, True, False, True]
    m = modis.qa_mask(vals, {"adjacent_to_cloud": True, "cirrus": "high", "cloud_shadow": False})
    assert m.tolist() == [False, True, True, False, False, False, True, True, True]
    assert not modis.qa_mask(vals, {"cirrus": False, "cloudy": False, "mixed": False, "cloud_shadow": False}).any()
    assert not modis.qa_mask(vals, {"enabled": False}).any()
    with pytest.raises(BandProfileError, match="qa.cirrus"):
        modis.qa_settings({"cirrus": "lots"})


def test_real_state_pixels_decoded(shared_data: Path) -> None:
    """Hand-picked pixels of the real MOD09A1 state_500m layer."""
    with rasterio.open(shared_data / "modis_mod09a1/MOD09A1.006_sur_refl_state_500m_doy2017193_aid0001.tif") as ds:
        q = ds.read(1)
    assert q[36, 62] == 8 and q[15, 47] == 1033 and q[11, 50] == 1034 and q[20, 34] == 1544 and q[14, 34] == 8396
    d = modis.decode_state(q)
    assert not d["cloudy"][36, 62] and d["land_water"][36, 62] == 1
    assert d["cloudy"][15, 47] and d["internal_cloud"][15, 47]
    assert d["mixed"][11, 50]
    assert d["cirrus"][20, 34] == 2
    assert d["adjacent_to_cloud"][14, 34] and d["cloud_shadow"][14, 34]
    # land/water flag of the scene: land and coastline only (an inland, almost water-free area)
    assert set(np.unique(d["land_water"]).tolist()) == {1, 2}


# ---------------------------------------------------------------------------------------------
# AppEEARS names and folders
# ---------------------------------------------------------------------------------------------
def test_parse_appeears_names() -> None:
    assert modis.parse_appeears_name("MOD09GA.061_sur_refl_b01_1_doy2000214_aid0001.tif") == (
        "MOD09GA", "sur_refl_b01", dt.date(2000, 8, 1))
    assert modis.parse_appeears_name("MOD09A1.006_sur_refl_state_500m_doy2017193_aid0001.tif")[1:] == (
        "sur_refl_state_500m", DATE)
    assert modis.parse_appeears_name("MOD09GA.061_state_1km_1_doy2020366_aid0002.tif")[1:] == ("state_1km", dt.date(2020, 12, 31))
    assert modis.parse_appeears_name("m_4709963_se_14_1_20090818.tif") is None
    assert modis.granule_date("MOD09GA.A2000214.h22v04.061.2020041185219.hdf") == dt.date(2000, 8, 1)


def test_sample_folder_scaled_fill_and_qa(shared_data: Path) -> None:
    folder = shared_data / "modis_mod09a1"
    src = modis.open_source(folder, PROFILES["modis"], DATE)
    assert src.layers["red"][0].endswith("sur_refl_b01_doy2017193_aid0001.tif")
    assert src.layers["swir2"][0].endswith("sur_refl_b07_doy2017193_aid0001.tif")
    assert src.qa_layer[0].endswith("sur_refl_state_500m_doy2017193_aid0001.tif")
    assert src.profile.scale == pytest.approx(1e-4) and src.profile.fill == -28672
    # grid: sinusoidal sphere, 463.31 m pixels; on the CRS's sphere a pixel is exactly res x res
    assert src.grid.shape == (73, 66)
    assert src.grid.res == pytest.approx((463.3127165, 463.3127165), abs=1e-6)
    assert src.grid.crs.ellipsoid.semi_major_metre == pytest.approx(6371007.181)
    assert "Sinusoidal" in src.grid.crs.to_wkt()
    pa = pixel_area(src.grid.transform, src.grid.crs, src.grid.shape, ground="crs")
    assert np.allclose(pa, 463.3127165**2, rtol=1e-6)
    with rasterio.open(src.layers["red"][0]) as ds:
        raw_red = ds.read(1)
    with rasterio.open(src.qa_layer[0]) as ds:
        qa = ds.read(1)
    with src.open(src.grid) as rd:
        bands, valid = rd.read()
    assert bands["red"][36, 62] == pytest.approx(raw_red[36, 62] * 1e-4) == pytest.approx(0.0140)
    # cloudy (1033), mixed (1034), cirrus average (1544): unobserved; adjacent-to-cloud only: observed
    assert valid[36, 62] and not valid[15, 47] and not valid[11, 50] and not valid[20, 34]
    assert valid[18, 22]  # 8208: adjacent to cloud, not masked by default
    assert valid.sum() == (~modis.qa_mask(qa)).sum() == 4465


def test_fill_and_valid_range_excluded(tmp_path: Path, shared_data: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(shared_data / "modis_mod09a1", folder)
    p = next(folder.glob("*sur_refl_b02_*"))
    with rasterio.open(p, "r+") as ds:
        a = ds.read(1)
        a[36, 62] = -28672  # fill
        a[36, 63] = 16001  # above the valid range
        a[0, 29] = -101  # below (a clear pixel, state 72)
        ds.write(a, 1)
    src = modis.open_source(folder, PROFILES["modis"], DATE)
    with src.open(src.grid) as rd:
        _, valid = rd.read()
    assert not valid[36, 62] and not valid[36, 63] and not valid[0, 29]
    assert valid.sum() == 4465 - 3


def test_several_dates_in_one_folder(tmp_path: Path) -> None:
    layers = _synthetic_layers()
    folder = _write_appeears(tmp_path / "f", layers, dt.date(2000, 8, 1), "MOD09GA.061")
    later = {k: (v + 5 if v.dtype == np.int16 else v) for k, v in layers.items()}
    _write_appeears(folder, later, dt.date(2000, 8, 2), "MOD09GA.061")
    (folder / "notes.tif").write_bytes(b"")  # not an AppEEARS name: ignored
    scan = modis.scan_appeears(folder)
    assert list(scan) == [dt.date(2000, 8, 1), dt.date(2000, 8, 2)]
    assert set(scan[dt.date(2000, 8, 2)]) == set(LAYERS)
    s2 = modis.open_source(folder, PROFILES["mod09ga"], dt.date(2000, 8, 2))
    with s2.open(s2.grid) as rd:
        b, valid = rd.read()
    assert b["nir"][0, 0] == pytest.approx((3000 + 0 + 5) * 1e-4)
    assert not valid[5, 4] and not valid[5, 3] and valid.sum() == 28
    # a glob works like the folder
    s_glob = modis.open_source(str(folder / "MOD09GA*.tif"), PROFILES["modis"], dt.date(2000, 8, 1))
    assert s_glob.layers["red"][0].endswith("sur_refl_b01_doy2000214_aid0001.tif")
    with pytest.raises(InputError, match=r"no files for date 2000-08-03 \(the folder holds 2000-08-01, 2000-08-02\)"):
        modis.open_source(folder, PROFILES["modis"], dt.date(2000, 8, 3))


def test_missing_layers_error(tmp_path: Path) -> None:
    layers = _synthetic_layers()
    del layers["sur_refl_b06"]
    folder = _write_appeears(tmp_path / "f", layers)
    with pytest.raises(BandProfileError) as e:
        modis.open_source(folder, PROFILES["modis"], DATE)
    msg = str(e.value)
    assert "\n" not in msg and "sur_refl_b06 (swir1)" in msg and "bands:" in msg
    # the 250 m profile needs only b01 and b02
    src = modis.open_source(folder, PROFILES["modis250"], DATE)
    assert src.roles == ["red", "nir"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no AppEEARS-named GeoTIFFs"):
        modis.open_source(empty, PROFILES["modis"], DATE)


# ---------------------------------------------------------------------------------------------
# One multi-band GeoTIFF (Earth Engine export)
# ---------------------------------------------------------------------------------------------
def test_multiband_by_description(tmp_path: Path) -> None:
    layers = _synthetic_layers()
    names = ["sur_refl_b07", "sur_refl_b02", "sur_refl_b01", "sur_refl_b04", "sur_refl_b03", "sur_refl_b06", "sur_refl_b05"]
    stack = np.stack([layers[n] for n in names])
    p = write_geotiff(tmp_path / "gee.tif", stack, T, SINU, nodata=-28672)
    with rasterio.open(p, "r+") as ds:
        for i, n in enumerate(names, start=1):
            ds.set_band_description(i, n)
    src = modis.open_source(p, PROFILES["modis"], DATE)
    assert src.layers["red"] == (str(p), 3) and src.layers["nir"] == (str(p), 2) and src.layers["swir2"] == (str(p), 1)
    with src.open(src.grid) as rd:
        b, _ = rd.read()
    assert b["green"][0, 0] == pytest.approx(600 * 1e-4)


def test_multiband_too_few_bands(tmp_path: Path) -> None:
    p = write_geotiff(tmp_path / "three.tif", np.full((3, 4, 4), 500, np.int16), T, SINU)
    with pytest.raises(BandProfileError) as e:
        modis.open_source(p, PROFILES["modis"], DATE)
    assert "\n" not in str(e.value) and "needs band 7" in str(e.value) and "3 band(s)" in str(e.value)


def test_open_scene_dispatches_modis_profile(tmp_path: Path) -> None:
    from rs_change.scenes import open_scene

    layers = _synthetic_layers()
    names = [f"sur_refl_b0{i}" for i in range(1, 8)]
    stack = np.stack([layers[n] for n in names])
    p = write_geotiff(tmp_path / "gee.tif", stack, T, SINU, nodata=-28672)
    src = open_scene(p, PROFILES["modis"], DATE)  # unnamed bands: b01..b07 order
    assert src.layers["swir1"] == (str(p), 6)


# ---------------------------------------------------------------------------------------------
# Scaling applied twice or not at all
# ---------------------------------------------------------------------------------------------
def test_already_scaled_float_data(tmp_path: Path) -> None:
    layers = _synthetic_layers()
    stack = np.stack([layers[f"sur_refl_b0{i}"] for i in range(1, 8)]).astype(np.float32) * np.float32(1e-4)
    p = write_geotiff(tmp_path / "refl.tif", stack, T, SINU)
    with pytest.raises(BandProfileError) as e:
        modis.open_source(p, PROFILES["modis"], DATE)
    assert "already scaled" in str(e.value) and "`scale: 1`" in str(e.value) and "\n" not in str(e.value)
    src = modis.open_source(p, PROFILES["modis"].with_overrides(scale=1.0), DATE)
    assert src.profile.valid_range == pytest.approx((-0.01, 1.6))
    with src.open(src.grid) as rd:
        b, valid = rd.read()
    assert valid.all() and b["nir"][0, 0] == pytest.approx(0.3)


def test_unscaled_dns_with_scale_one(tmp_path: Path) -> None:
    layers = _synthetic_layers()
    stack = np.stack([layers[f"sur_refl_b0{i}"] for i in range(1, 8)])
    p = write_geotiff(tmp_path / "dn.tif", stack, T, SINU)
    with pytest.raises(BandProfileError, match=r"unscaled digital numbers .*set `scale: 0.0001`"):
        modis.open_source(p, PROFILES["modis"].with_overrides(scale=1.0), DATE)


# ---------------------------------------------------------------------------------------------
# HDF4-EOS granules
# ---------------------------------------------------------------------------------------------
_HDFTYPES = {"int16": 22, "uint16": 23, "uint32": 25}  # SDC.INT16, SDC.UINT16, SDC.UINT32


def write_granule(path: Path, layers: dict[str, np.ndarray], transform: Affine, grid: str = "MOD_Grid_500m_Surface_Reflectance") -> Path:
    """A small HDF-EOS2 grid granule as MODIS writes it: SDSs plus StructMetadata.0."""
    from pyhdf.SD import SD, SDC

    h, w = next(iter(layers.values())).shape
    ulx, uly = transform.c, transform.f
    lrx, lry = ulx + w * transform.a, uly + h * transform.e
    fields = "".join(
        f'\t\t\tOBJECT=DataField_{i}\n\t\t\t\tDataFieldName="{n}"\n\t\t\t\tDimList=("YDim","XDim")\n\t\t\tEND_OBJECT=DataField_{i}\n'
        for i, n in enumerate(layers, start=1)
    )
    meta = (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n\tGROUP=GRID_1\n"
        f'\t\tGridName="{grid}"\n\t\tXDim={w}\n\t\tYDim={h}\n'
        f"\t\tUpperLeftPointMtrs=({ulx:.6f},{uly:.6f})\n\t\tLowerRightMtrs=({lrx:.6f},{lry:.6f})\n"
        "\t\tProjection=GCTP_SNSOID\n\t\tProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)\n\t\tSphereCode=-1\n"
        f"\t\tGridOrigin=HDFE_GD_UL\n\t\tGROUP=DataField\n{fields}\t\tEND_GROUP=DataField\n"
        "\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nGROUP=PointStructure\nEND_GROUP=PointStructure\nEND\n"
    )
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    for name, a in layers.items():
        sds = sd.create(name, _HDFTYPES[a.dtype.name], a.shape)
        if a.dtype == np.int16:
            sds.setfillvalue(-28672)
            sds.attr("scale_factor").set(SDC.FLOAT64, 0.0001)
            sds.attr("add_offset").set(SDC.FLOAT64, 0.0)
        else:
            sds.setfillvalue(65535)
        sds[:] = a
        sds.endaccess()
    sd.attr("StructMetadata.0").set(SDC.CHAR8, meta)
    sd.end()
    return path


def test_hdf4_granule_equals_geotiff(tmp_path: Path) -> None:
    pytest.importorskip("pyhdf")
    layers = _synthetic_layers()
    tif_dir = _write_appeears(tmp_path / "tif", layers)
    hdf = write_granule(tmp_path / "MOD09A1.A2017193.h18v04.006.2017202060427.hdf", layers, T)
    a = modis.open_source(tif_dir, PROFILES["modis"], DATE)
    b = modis.open_source(hdf, PROFILES["modis"], DATE)
    assert b.grid.same_as(a.grid) and b.grid.shape == (6, 5)
    assert b.grid.transform.almost_equals(a.grid.transform, precision=1e-6)
    assert b.profile.scale == pytest.approx(1e-4) and b.qa_layer is not None
    with a.open(a.grid) as ra, b.open(a.grid) as rb:
        ba, va = ra.read()
        bb, vb = rb.read()
    assert np.array_equal(va, vb) and va.sum() == 28
    for role in ba:
        assert np.array_equal(ba[role], bb[role]), role
    tmp = Path(b.extra["tmp_dir"])
    assert tmp.is_dir()
    del b, rb
    import gc

    gc.collect()
    assert not tmp.exists()  # temporary GeoTIFFs go with the source


def test_hdf4_run_same_results_as_geotiff(tmp_path: Path, shared_data: Path) -> None:
    """The real sample, as AppEEARS GeoTIFFs and as an HDF-EOS granule: same summary."""
    pytest.importorskip("pyhdf")
    from rs_change.pipeline import run

    folder = shared_data / "modis_mod09a1"
    arrays = {}
    for f in sorted(folder.glob("*.tif")):
        layer = modis.parse_appeears_name(f.name)[1]
        if layer in LAYERS:
            with rasterio.open(f) as ds:
                arrays[layer] = ds.read(1)
                transform = ds.transform
    hdf = write_granule(tmp_path / "MOD09A1.A2017193.h18v04.006.2017202060427.hdf", arrays, transform)
    base = {"clustering": {"k": 3, "seed": 0, "sample_size": 1000}, "compute": {"scheduler": "synchronous"}}
    res = []
    for p in (folder, hdf):
        cfg = RunConfig.from_dict({"scenes": [{"date": "2017-07-12", "path": str(p), "sensor": "mod09a1"}], **base})
        res.append(run(cfg, write=False).summary)
    da, db = res[0]["dates"][0], res[1]["dates"][0]
    for key in ("water_km2", "observed_km2", "observed_pixels", "unobserved_pixels", "clusters", "modis_qa"):
        assert da[key] == db[key], key
    assert res[0]["grid"]["transform"] == pytest.approx(res[1]["grid"]["transform"])
    assert da["observed_pixels"] == 4465 and da["unobserved_pixels"] == 73 * 66 - 4465


def test_missing_pyhdf_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def fake(name: str, *a: object, **k: object) -> object:
        if name == "pyhdf" or name.startswith("pyhdf."):
            raise ImportError("No module named 'pyhdf'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    g = tmp_path / "MOD09GA.A2000214.h22v04.061.2020041185219.hdf"
    g.write_bytes(b"")
    with pytest.raises(DependencyError) as e:
        modis.open_source(g, PROFILES["modis"], dt.date(2000, 8, 1))
    msg = str(e.value)
    assert "\n" not in msg and 'pip install "rs-change[hdf4]"' in msg and str(g) in msg


def test_parse_struct_metadata() -> None:
    text = (
        'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="MODIS_Grid_1km_2D"\n\t\tXDim=1200\n\t\tYDim=1200\n'
        "\t\tUpperLeftPointMtrs=(-7783653.637667,5559752.598333)\n\t\tLowerRightMtrs=(-6671703.118000,4447802.078667)\n"
        "\t\tProjection=GCTP_SNSOID\n\t\tProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)\n"
        '\t\tGROUP=DataField\n\t\t\tOBJECT=DataField_1\n\t\t\t\tDataFieldName="state_1km_1"\n\t\t\tEND_OBJECT=DataField_1\n'
        "\t\tEND_GROUP=DataField\n\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nEND\n"
    )
    g = modis.parse_struct_metadata(text)["MODIS_Grid_1km_2D"]
    assert (g["xdim"], g["ydim"]) == (1200, 1200) and g["fields"] == ["state_1km_1"]
    assert g["ul"] == (-7783653.637667, 5559752.598333) and g["proj_params"][0] == 6371007.181
    # h22v04 1 km pixel: (lrx - ulx) / 1200 = 926.625 m
    assert (g["lr"][0] - g["ul"][0]) / g["xdim"] == pytest.approx(926.6254331, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Config and shipped sample
# ---------------------------------------------------------------------------------------------
def test_qa_config_keys() -> None:
    cfg = RunConfig.from_dict({"scenes": [{"date": "2017-07-12", "path": "x", "sensor": "modis",
                                           "qa": {"adjacent_to_cloud": True, "cirrus": "high"}}]})
    assert cfg.scenes[0].qa.adjacent_to_cloud and cfg.scenes[0].qa.cirrus == "high" and cfg.scenes[0].qa.cloudy
    with pytest.raises(ConfigError, match="did you mean `cloud_shadow`"):
        RunConfig.from_dict({"scenes": [{"date": "2017-07-12", "path": "x", "sensor": "modis", "qa": {"cloud_shadows": False}}]})


def test_shipped_config_runs_with_qa_report(tmp_path: Path) -> None:
    _sample_dir()
    from rs_change.pipeline import run

    cfg = RunConfig.from_yaml(CONFIGS / "modis_mod09a1.yaml")
    s = run(cfg, write=False).summary
    d = s["dates"][0]
    px = 463.3127165**2
    assert d["observed_pixels"] == 4465 and d["unobserved_pixels"] == 73 * 66 - 4465
    q = d["modis_qa"]
    assert q["qa_masked_km2"] == pytest.approx(d["unobserved_km2"], abs=1e-6)
    # MOD09's land/water flag marks no water here (only land and 143 coastline pixels)
    assert q["land_water_flag_water_km2"] == 0.0
    assert q["land_water_flag_land_km2"] == pytest.approx(4675 * px / 1e6, rel=0.01)
    assert s["grid"]["pixel_size"] == pytest.approx([463.3127165, 463.3127165])


def test_qa_flags_change_what_is_observed(tmp_path: Path) -> None:
    folder = _sample_dir()
    default = modis.open_source(folder, PROFILES["modis"], DATE)
    strict = modis.open_source(folder, PROFILES["modis"].with_overrides(qa={"adjacent_to_cloud": True}), DATE)
    off = modis.open_source(folder, PROFILES["modis"].with_overrides(qa={"enabled": False}), DATE)
    counts = []
    for s in (default, strict, off):
        with s.open(default.grid) as rd:
            counts.append(int(rd.read()[1].sum()))
    assert counts[0] == 4465 and counts[1] < counts[0] and counts[2] == 73 * 66


def test_mod09ga_state_1km_onto_500m_grid(tmp_path: Path) -> None:
    """MOD09GA's state_1km is on a 1 km grid: it is read (nearest) onto the 500 m bands' grid."""
    layers = {k + "_1": v[:4, :4] for k, v in _synthetic_layers().items() if k != "sur_refl_state_500m"}
    folder = _write_appeears(tmp_path / "ga", layers, dt.date(2000, 8, 1), "MOD09GA.061")
    t1 = Affine(T.a * 2, 0.0, T.c, 0.0, T.e * 2, T.f)
    write_geotiff(folder / "MOD09GA.061_state_1km_1_doy2000214_aid0001.tif", np.array([[8, 1], [8, 8]], np.uint16), t1, SINU, nodata=65535)
    src = modis.open_source(folder, PROFILES["mod09ga"], dt.date(2000, 8, 1))
    assert src.qa_layer[0].endswith("state_1km_1_doy2000214_aid0001.tif") and src.grid.shape == (4, 4)
    with src.open(src.grid) as rd:
        _, valid = rd.read()
    expect = np.ones((4, 4), bool)
    expect[:2, 2:] = False  # the cloudy 1 km pixel covers 2 x 2 pixels of 500 m
    assert np.array_equal(valid, expect)
