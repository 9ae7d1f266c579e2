"""Every user error: exit status 2, exactly one line on stderr naming the file or key, no
traceback, and nothing written into the output folder.

Each test builds its bad input in tmp_path and calls ``rs_change.cli.main`` in-process.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from rs_change.cli import main

from .conftest import lake_scene

UTM = "EPSG:32614"
T = Affine(10, 0, 500000, 0, -10, 5200000)


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def _config(tmp_path: Path, scenes: list[dict], **extra: Any) -> Path:
    data = {"scenes": scenes, "clustering": {"k": 2, "seed": 0}, "output": {"dir": "out"}, **extra}
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _scene(path: str, date: str = "2020-01-01", **kw: Any) -> dict:
    return {"date": date, "path": path, "sensor": "naip", **kw}


def _fails(capsys: Any, argv: list[str], *needles: str, out: Optional[Path] = None) -> str:
    """Run the CLI, assert the user-error contract, return the message."""
    before = _listing(out) if out is not None else set()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("rs-change: error: "), line
    assert "Traceback" not in err
    for n in needles:
        assert n in line, (n, line)
    if out is not None:
        assert _listing(out) == before, f"{out} changed: {_listing(out) - before}"
    print(line)
    return line


def _run(capsys: Any, tmp_path: Path, scenes: list[dict], *needles: str, **extra: Any) -> str:
    cfg = _config(tmp_path, scenes, **extra)
    out = tmp_path / "out"
    msg = _fails(capsys, ["run", str(cfg), "-o", str(out)], *needles, out=out)
    assert not out.exists(), "the output folder was created for a run that failed before writing"
    return msg


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def test_missing_file(tmp_path, capsys):
    msg = _run(capsys, tmp_path, [_scene("nope.tif")], "nope.tif", "not found")
    assert "path" in msg


def test_not_a_raster(tmp_path, capsys):
    (tmp_path / "notes.tif").write_text("this is a text file, not a GeoTIFF\n")
    _run(capsys, tmp_path, [_scene("notes.tif")], "notes.tif", "not a readable raster")


def test_truncated_geotiff(tmp_path, make_tif, capsys):
    p = make_tif("cut.tif", np.repeat(lake_scene(64, 64), 1, axis=0), T, UTM, nodata=0, tiled=True,
                 blockxsize=16, blockysize=16, compress="deflate")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # header and tile index intact, half the tiles gone
    _run(capsys, tmp_path, [_scene("cut.tif")], "cut.tif", "truncated or corrupt")


def test_corrupt_geotiff(tmp_path, make_tif, capsys):
    p = make_tif("bad.tif", lake_scene(64, 64), T, UTM, nodata=0, tiled=True, blockxsize=16, blockysize=16,
                 compress="deflate")
    data = bytearray(p.read_bytes())
    rng = np.random.default_rng(1)
    # scramble the compressed tile data (everything after the first kilobyte of header and IFD)
    data[1024:-64] = rng.integers(0, 256, size=len(data) - 1088, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))
    _run(capsys, tmp_path, [_scene("bad.tif")], "bad.tif")


def test_raster_without_crs(tmp_path, make_tif, capsys):
    make_tif("nocrs.tif", lake_scene(), T, None, nodata=0)
    _run(capsys, tmp_path, [_scene("nocrs.tif")], "nocrs.tif", "no CRS")


def test_raster_without_geotransform(tmp_path, make_tif, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        make_tif("nogt.tif", lake_scene(), Affine.identity(), UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("nogt.tif")], "nogt.tif", "no geotransform")


def test_band_profile_asks_for_more_bands(tmp_path, make_tif, capsys):
    make_tif("rgb.tif", lake_scene()[:3], T, UTM, nodata=0)  # NAIP profile needs band 4 (nir)
    _run(capsys, tmp_path, [_scene("rgb.tif")], "rgb.tif", "nir", "3 band(s)")


def test_explicit_band_beyond_the_file(tmp_path, make_tif, capsys):
    make_tif("four.tif", lake_scene(), T, UTM, nodata=0)
    scene = {"date": "2020-01-01", "path": "four.tif", "bands": {"red": 1, "green": 2, "blue": 3, "nir": 7}}
    _run(capsys, tmp_path, [scene], "four.tif", "band 7")


def test_dates_that_do_not_overlap(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    make_tif("b.tif", lake_scene(), Affine(10, 0, 600000, 0, -10, 5200000), UTM, nodata=0)  # 100 km east
    _run(capsys, tmp_path, [_scene("a.tif"), _scene("b.tif", "2021-01-01")], "b.tif", "does not overlap")


def test_every_pixel_nodata(tmp_path, make_tif, capsys):
    make_tif("empty.tif", np.zeros((4, 20, 20), np.uint8), T, UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("empty.tif")], "empty.tif", "every pixel", "nodata")


def test_every_pixel_nodata_given_in_the_config(tmp_path, make_tif, capsys):
    make_tif("flat.tif", np.full((4, 20, 20), 7, np.uint8), T, UTM)  # no nodata in the file
    _run(capsys, tmp_path, [_scene("flat.tif", nodata=7)], "flat.tif", "every pixel")


def test_every_pixel_outside_the_valid_range(tmp_path, make_tif, capsys):
    # Landsat 8 surface reflectance: DNs outside 7273..43636 are invalid (fill, saturated, cloud-masked);
    # the line names the profile, its range and what the file holds (issue 25), not "every pixel is nodata"
    make_tif("sr.tif", np.full((7, 20, 20), 65000, np.uint16), T, UTM)
    _run(capsys, tmp_path, [{"date": "2020-01-01", "path": "sr.tif", "sensor": "landsat8"}], "sr.tif",
         "'landsat8' profile's valid range 7273-43636", "found values 65000-65000, uint16", "`valid_range`")


def test_aoi_outside_the_scene(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("a.tif")], "aoi", "does not overlap",
         aoi={"bbox": [10.0, 10.0, 10.1, 10.1], "crs": "EPSG:4326"})


def test_k_larger_than_distinct_values(tmp_path, make_tif, capsys):
    two = np.zeros((4, 20, 20), np.uint8)
    two[:] = np.array([90, 110, 80, 180])[:, None, None]
    two[:, :10] = np.array([30, 60, 70, 20])[:, None, None]  # exactly two distinct pixels
    make_tif("two.tif", two, T, UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("two.tif")], "clustering.k", clustering={"k": 5, "seed": 0})


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------
def test_k_smaller_than_two(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("a.tif")], "clustering.k", ">= 2", clustering={"k": 1})


def test_unknown_metric(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("a.tif")], "clustering.metric", "cosine", clustering={"k": 2, "metric": "cosine"})


def test_yaml_syntax_error_has_line_and_column(tmp_path, capsys):
    p = tmp_path / "broken.yaml"
    p.write_text("scenes:\n  - date: 2020-01-01\n    path: [a.tif\n    sensor: naip\n")
    msg = _fails(capsys, ["run", str(p)], "broken.yaml", "line ", "column ", "YAML syntax error")
    assert not (tmp_path / "outputs").exists()
    assert "line 4" in msg or "line 5" in msg, msg


def test_unknown_key_names_the_closest(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("a.tif")], "clustering.seeed", "did you mean `seed`", clustering={"k": 2, "seeed": 1})


def test_unknown_top_level_key(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("a.tif")], "`ouptut`", "did you mean `output`", ouptut={"dir": "x"})


def test_unsafe_yaml_tag_is_refused(tmp_path, capsys):
    p = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    p.write_text(f"scenes: !!python/object/apply:os.system ['touch {marker}']\n")
    _fails(capsys, ["run", str(p)], "evil.yaml", "line 1", "no tags")
    assert not marker.exists()


def test_duplicate_dates(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    make_tif("b.tif", lake_scene(seed=1), T, UTM, nodata=0)
    _run(capsys, tmp_path, [_scene("a.tif"), _scene("b.tif")], "2020-01-01", "twice")


def test_missing_config_file(tmp_path, capsys):
    _fails(capsys, ["run", str(tmp_path / "none.yaml")], "none.yaml", "not found")


# ---------------------------------------------------------------------------------------------
# Output folder
# ---------------------------------------------------------------------------------------------
def test_output_folder_cannot_be_written(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    cfg = _config(tmp_path, [_scene("a.tif")])
    blocker = tmp_path / "plain_file"
    blocker.write_text("a file where a folder should be created\n")
    before = _listing(tmp_path)
    _fails(capsys, ["run", str(cfg), "-o", str(blocker / "out")], "plain_file")
    assert _listing(tmp_path) == before


def test_output_path_is_a_file(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    cfg = _config(tmp_path, [_scene("a.tif")])
    f = tmp_path / "results"
    f.write_text("not a folder\n")
    _fails(capsys, ["run", str(cfg), "-o", str(f)], "results", "not a folder")
    assert f.read_text() == "not a folder\n"


def test_existing_outputs_are_not_overwritten_without_flag(tmp_path, make_tif, capsys):
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    cfg = _config(tmp_path, [_scene("a.tif")])
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}\n")
    _fails(capsys, ["run", str(cfg), "-o", str(out)], str(out), "--overwrite", out=out)
    assert (out / "summary.json").read_text() == "{}\n"


def test_every_pixel_cloud(tmp_path, capsys):
    """A MODIS AppEEARS folder whose state QA marks every pixel cloudy."""
    import rasterio

    from rs_change import modis

    folder = tmp_path / "mod09"
    folder.mkdir()
    t = Affine(463.31271653030257, 0.0, 753346.477074, 0.0, -463.3127165205573, 5132114.960978)
    layers = {f"sur_refl_b0{b}": np.full((6, 5), 500 + 100 * b, np.int16) for b in range(1, 8)}
    layers["sur_refl_state_500m"] = np.full((6, 5), 8 | 1, np.uint16)  # land, cloud state 01 = cloudy
    for name, a in layers.items():
        nd = -28672 if a.dtype == np.int16 else 65535
        p = folder / f"MOD09A1.006_{name}_doy2017193_aid0001.tif"
        with rasterio.open(p, "w", driver="GTiff", width=5, height=6, count=1, dtype=a.dtype, crs=modis.SINUSOIDAL,
                           transform=t, nodata=nd) as ds:
            ds.write(a, 1)
            ds.set_band_description(1, name)
            if a.dtype == np.int16:
                ds.scales = (0.0001,)
    _run(capsys, tmp_path, [{"date": "2017-07-12", "path": "mod09", "sensor": "modis"}], "mod09", "every pixel", "cloud")
