"""The command line: results table, exit codes, --debug, --overwrite, validate/init, quiet GDAL,
and one real ``rs-change`` subprocess for the console script."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rs_change import cli
from rs_change.cli import main
from rs_change.console import quiet_gdal

from .conftest import SAMPLE, T10 as T, UTM, lake_scene



@pytest.fixture
def config(lake_pair):
    return lake_pair()


def test_run_prints_the_table_from_summary_json(config, capsys):
    assert main(["run", str(config)]) == 0
    cap = capsys.readouterr()
    out = config.parent / "out"
    summary = json.loads((out / "summary.json").read_text())
    # 25 lake pixels on the first date, 81 on the second (lake_scene), 10 m pixels
    assert [d["water_pixels"] for d in summary["dates"]] == [25, 81]
    assert summary["change"]["gained_pixels"] == 81 - 25 and summary["change"]["lost_pixels"] == 0
    lines = cap.out.splitlines()
    assert lines[1].split()[:3] == ["2019-06-01", f"{summary['dates'][0]['water_km2']:.6f}", "25"]
    assert lines[2].split()[:3] == ["2021-06-01", f"{summary['dates'][1]['water_km2']:.6f}", "81"]
    assert f"outputs: {out}" in cap.out
    assert cap.err == ""  # no progress line when stderr is not a terminal, no warnings


def test_overwrite_flag(config, capsys):
    assert main(["run", str(config)]) == 0
    assert main(["run", str(config)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", str(config), "--overwrite"]) == 0


def test_output_option_overrides_output_dir(config, tmp_path, capsys):
    assert main(["run", str(config), "-o", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "manifest.json").exists() and not (tmp_path / "out").exists()


def test_different_crs_dates_are_aligned_not_refused(tmp_path, make_tif, capsys):
    # the same lake, second date in geographic coordinates: aligned onto the first date's UTM grid
    from rasterio.warp import calculate_default_transform, reproject

    src = lake_scene(40, 40, lake=(slice(10, 30), slice(10, 30)))
    make_tif("utm.tif", src, T, UTM, nodata=0)
    t2, w, h = calculate_default_transform(UTM, "EPSG:4326", 40, 40, *(500000, 5199600, 500400, 5200000))
    dst = np.zeros((4, h, w), np.uint8)
    reproject(src, dst, src_transform=T, src_crs=UTM, dst_transform=t2, dst_crs="EPSG:4326", src_nodata=0, dst_nodata=0)
    make_tif("geo.tif", dst, t2, "EPSG:4326", nodata=0)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "scenes": [{"date": "2019-06-01", "path": "utm.tif", "sensor": "naip"},
                   {"date": "2021-06-01", "path": "geo.tif", "sensor": "naip"}],
        "clustering": {"k": 2, "seed": 0}, "output": {"dir": "out", "report": False}}))
    assert main(["run", str(cfg)]) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["grid"]["crs"].endswith("32614") or "32614" in json.dumps(s["grid"])
    w1, w2 = (d["water_pixels"] for d in s["dates"])
    assert w1 == 400 and abs(w2 - 400) <= 40  # same lake after a round trip through degrees


def test_debug_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(Exception) as ei:
        main(["--debug", "run", str(tmp_path / "missing.yaml")])
    assert "missing.yaml" in str(ei.value)
    with pytest.raises(Exception):
        main(["run", str(tmp_path / "missing.yaml"), "--debug"])


def test_internal_error_is_exit_1_with_one_line(config, monkeypatch, capsys):
    import rs_change.pipeline as pl

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pl, "build_summary", boom)
    assert main(["run", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["rs-change: internal error: ZeroDivisionError: a bug (rerun with --debug and report it)"]
    assert not (config.parent / "out").exists()  # created for staging, removed again when the run failed


def test_validate_opens_every_scene(tmp_path, make_tif, capsys):
    make_tif("rgb.tif", lake_scene()[:3], T, UTM, nodata=0)
    cfg = tmp_path / "v.yaml"
    cfg.write_text(yaml.safe_dump({"scenes": [{"date": "2020-01-01", "path": "rgb.tif", "sensor": "naip"}]}))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "rgb.tif" in err and "3 band(s)" in err
    assert not (tmp_path / "outputs").exists()


def test_validate_and_init(tmp_path, config, capsys):
    assert main(["validate", str(config)]) == 0
    assert "valid (2 date(s)" in capsys.readouterr().out
    tpl = tmp_path / "new.yaml"
    assert main(["init", str(tpl)]) == 0
    assert main(["init", str(tpl)]) == 2
    err = capsys.readouterr().err
    assert "new.yaml" in err and "--overwrite" in err
    from rs_change.config import RunConfig

    assert len(RunConfig.from_yaml(tpl).scenes) == 2


def test_one_line_safety_net():
    assert cli._one_line("a\nb\n  c") == "a b c"


def test_gdal_warnings_are_quiet_by_default_and_shown_with_v(monkeypatch):
    monkeypatch.setenv("CPL_LOG", "keep")  # the CLI only sets CPL_LOG when the user has not
    quiet_gdal(0)
    assert logging.getLogger("rasterio").level == logging.CRITICAL  # GDAL's errors reach the one line as exceptions
    quiet_gdal(1)
    assert logging.getLogger("rasterio").level == logging.WARNING
    quiet_gdal(2)
    assert logging.getLogger("rasterio").level == logging.DEBUG
    import os

    assert os.environ["CPL_LOG"] == "keep"
    logging.getLogger("rasterio").setLevel(logging.NOTSET)


def test_console_script_landsat_sample_is_quiet_and_bad_config_exits_2(tmp_path):
    """The installed `rs-change` command: a Landsat sample tile whose TIFF makes GDAL warn
    (TIFFReadDirectory: Sum of Photometric ...) runs with an empty stderr; a user error exits 2."""
    exe = shutil.which("rs-change") or str(Path(sys.executable).parent / "rs-change")
    tile = SAMPLE / "landsat_pucallpa" / "1985.tif"
    if not tile.exists():
        pytest.skip("sample tile missing")
    cfg = tmp_path / "l.yaml"
    cfg.write_text(yaml.safe_dump({
        "scenes": [{"date": "1985-07-01", "path": str(tile), "bands": {"swir1": 1, "nir": 2, "red": 3, "green": 4}}],
        "clustering": {"k": 3, "seed": 0, "n_init": 1, "sample_size": 20000},
        "output": {"dir": str(tmp_path / "out"), "polygons": False, "report": False}}))
    ok = subprocess.run([exe, "run", str(cfg)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == "", ok.stderr
    assert "1985-07-01" in ok.stdout
    # the command ends without the interpreter's teardown: its piped output is flushed whole first
    assert ok.stdout.rstrip().splitlines()[-1] == f"outputs: {tmp_path / 'out'}"
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenes:\n  - date: 2020-01-01\n    pth: x.tif\n    sensor: naip\n")
    r = subprocess.run([exe, "run", str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "scenes.0.pth" in r.stderr and "did you mean `path`" in r.stderr
