"""rs-change's QGIS Processing provider (qgis_plugin/rs_change_qgis), headless.

QGIS's Python is the system ``python3`` (Debian ``python3-qgis``).  rs-change goes into a venv
made from it with ``--system-site-packages`` (it sees PyQGIS), with qgis_plugin/constraints.txt
(numpy below 2 for the system GDAL bindings; docs/qgis.md); the venv is made once under ``build/qgis-venv``
(git-ignored; ``RS_CHANGE_QGIS_VENV`` names another) and reused while pyproject.toml and the
constraints are unchanged.  tests/qgis/run_provider.py runs the algorithms in that venv's Python;
this file compares its answers with the CLI's and the API's.  Everything skips without PyQGIS, or
when the venv cannot be made (no network for pip).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent
QGIS_PYTHON = os.environ.get("RS_CHANGE_QGIS_PYTHON", "/usr/bin/python3")
VENV = Path(os.environ.get("RS_CHANGE_QGIS_VENV", ROOT / "build" / "qgis-venv"))
CONFIG = ROOT / "configs" / "naip_devils_lake.yaml"


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **extra}
    for k in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(k, None)
    return env


def _has_qgis() -> bool:
    if not Path(QGIS_PYTHON).exists():
        return False
    try:
        return subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], env=_env(), capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not _has_qgis(), reason=f"PyQGIS not importable by {QGIS_PYTHON} (apt install python3-qgis qgis-providers)")


def _stamp() -> str:
    h = hashlib.sha256()
    for f in (ROOT / "pyproject.toml", ROOT / "qgis_plugin" / "constraints.txt"):
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def qgis_venv() -> Path:
    """A venv of QGIS's Python with rs-change installed (editable) in it, made once."""
    py = VENV / "bin" / "python"
    stamp = VENV / "rs-change.stamp"
    if not (py.exists() and stamp.exists() and stamp.read_text() == _stamp()):
        shutil.rmtree(VENV, ignore_errors=True)
        make = subprocess.run([QGIS_PYTHON, "-m", "venv", "--system-site-packages", str(VENV)], capture_output=True, text=True,
                              timeout=300)
        if make.returncode != 0:
            pytest.skip(f"cannot make a venv of {QGIS_PYTHON} (apt install python3-venv): {make.stderr[-300:]}")
        pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", str(ROOT)],
                             capture_output=True, text=True, timeout=1800,
                             env=_env(PIP_CONSTRAINT=str(ROOT / "qgis_plugin" / "constraints.txt")))
        if pip.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            pytest.skip("cannot install rs-change into the QGIS venv: " + " ".join(pip.stderr.strip().splitlines()[-2:])[-300:])
        stamp.write_text(_stamp())
    return VENV


@pytest.fixture(scope="module")
def provider_run(qgis_venv, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("qgis_provider")
    res = subprocess.run([str(qgis_venv / "bin" / "python"), str(HERE / "qgis" / "run_provider.py"), str(work)], env=_env(),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["work"] = work
    return out


def test_provider_offers_the_five_algorithms(provider_run):
    assert provider_run["problem"] is None
    assert provider_run["algorithms"] == ["rschange:assess", "rschange:change", "rschange:run", "rschange:sample", "rschange:watermask"]


def test_watermask_equals_the_api(provider_run):
    """The tool's mask is label_water(read_scene(tile, "naip"), fit_model(scene, k=3, metric="auto",
    seed=0)): the same pixels as the API in QGIS's Python, and the same count as the API here."""
    import rs_change as rc

    wm = provider_run["watermask"]
    assert wm["same_pixels"] and wm["WATER_PIXELS"] == wm["file_water_pixels"] == wm["api_water_pixels"] > 0
    assert wm["WATER_KM2"] == pytest.approx(wm["api_km2"], rel=1e-12)
    tile = ROOT / "sample_tiles" / "naip" / "m_4709963_se_14_1_20090818.tif"
    scene = rc.read_scene(str(tile), "naip")
    mask = rc.label_water(scene, rc.fit_model(scene, k=3, metric="auto", seed=0))
    assert int((mask == 1).sum()) == wm["WATER_PIXELS"]
    assert provider_run["watermask_file"] == {"crs": "EPSG:26914", "nodata": 255.0, "shape": list(mask.shape)}
    k4 = provider_run["watermask_k4"]  # K, METRIC and SEED reach the fit
    assert k4["WATER_PIXELS"] == k4["api_water_pixels"] != wm["WATER_PIXELS"]


def test_run_gives_the_cli_numbers(provider_run, tmp_path):
    from rs_change.cli import main

    assert main(["run", str(CONFIG), "-o", str(tmp_path / "cli")]) == 0
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    qgis = json.loads(Path(provider_run["run"]["SUMMARY"]).read_text())
    assert provider_run["run"]["SUMMARY"] == str(provider_run["work"] / "run" / "summary.json")
    keys = ("water_km2", "water_pixels", "observed_km2", "unobserved_km2")
    assert [[d[k] for k in keys] for d in qgis["dates"]] == [[d[k] for k in keys] for d in cli["dates"]]
    assert {k: qgis["change"][k] for k in ("gained_km2", "lost_km2", "net_km2")} == {k: cli["change"][k] for k in ("gained_km2", "lost_km2", "net_km2")}
    assert (provider_run["work"] / "run" / "catalog.json").is_file()


def test_errors_are_the_cli_line(provider_run, tmp_path, capsys):
    from rs_change.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("scenes: []\nclustering: {k: 3, colour: blue}\n", encoding="utf-8")
    assert main(["run", str(bad), "-o", str(tmp_path / "o")]) == 2
    line = capsys.readouterr().err.strip()
    msg = provider_run["errors"]["bad_config"]
    assert msg and "\n" not in msg and "colour" in msg
    assert line == f"rs-change: error: {msg}".replace(str(provider_run["work"] / "bad.yaml"), str(bad))
    assert not provider_run["bad_out_exists"]
    existing = provider_run["errors"]["existing"]
    assert "already exist" in existing and "--overwrite" in existing


def test_change_sample_assess(provider_run):
    summary = json.loads(Path(provider_run["run"]["SUMMARY"]).read_text())
    ch = provider_run["change"]
    assert ch["same_as_run"]
    assert ch["GAINED_KM2"] == summary["change"]["gained_km2"] and ch["LOST_KM2"] == summary["change"]["lost_km2"]
    assert ch["polygon_m2"]["water gained"] / 1e6 == pytest.approx(ch["GAINED_KM2"], abs=1e-6)
    assert provider_run["sample"]["POINTS"] == provider_run["sample"]["rows"] > 0
    acc = provider_run["assess"]
    assert acc["OVERALL_ACCURACY"] == acc["file_overall"] == 1.0  # every point labelled as mapped
    assert acc["ACCURACY"] == str(provider_run["work"] / "run" / "accuracy.json")


def test_cancel_leaves_nothing_and_gui_loads_the_layers(provider_run):
    c = provider_run["canceled"]
    assert c["result"] == {} and not c["folder_exists"] and c["max_progress"] == 12.5  # 1 of 2 dates fitted
    out = provider_run["work"] / "run"
    rasters = sorted(a["href"][2:] for item in out.glob("stac_*.json")
                     for a in json.loads(item.read_text())["assets"].values() if a["type"].startswith("image/tiff"))
    import pyogrio

    layers = [str(n) for n in pyogrio.list_layers(str(out / "water.gpkg"))[:, 0] if n != "layer_styles"]
    assert {"water_2009-08-18.tif", "water_2020-08-31.tif", "change.tif", "clusters_2009-08-18.tif"} <= set(rasters)
    assert {"water_2009_08_18", "water_2020_08_31", "change"} <= set(layers)
    assert provider_run["to_load"] == sorted([r[:-4] for r in rasters] + layers)
    renderers = provider_run["loaded_renderers"]
    assert set(renderers) == set(rasters) | {f"water.gpkg|{n}" for n in layers}
    for name in ("water_2009-08-18.tif", "water_2020-08-31.tif", "clusters_2009-08-18.tif", "change.tif"):
        assert renderers[name] == "paletted", name  # the .qml beside the raster
    for n in layers:
        assert renderers[f"water.gpkg|{n}"] == "categorizedSymbol", n  # layer_styles in the GeoPackage


def test_without_rs_change_the_plugin_says_how_to_install_it(tmp_path):
    """Plain QGIS Python (no venv): the plugin registers nothing and logs one line."""
    res = subprocess.run([QGIS_PYTHON, str(HERE / "qgis" / "run_provider.py"), str(tmp_path), "--only-load"], env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["problem"] is None:
        pytest.skip("rs_change is importable by the system Python here")
    assert out["algorithms"] == [] and "\n" not in out["problem"]
    assert "--system-site-packages" in out["problem"] and "RS_CHANGE_VENV" in out["problem"]


def _qgis_process() -> list[str]:
    """qgis_process; Debian 12's wrapper passes an option its binary refuses, so the binary itself."""
    for exe in ("/usr/bin/qgis_process.bin", shutil.which("qgis_process") or ""):
        if exe and Path(exe).exists():
            return [exe]
    pytest.skip("qgis_process is not installed (apt install qgis)")


def test_qgis_process_lists_the_algorithms(qgis_venv, tmp_path):
    """qgis_process loads the plugin headless from QGIS_PLUGINPATH once it is enabled in the
    (here throw-away) profile; RS_CHANGE_VENV points the plugin at rs-change."""
    exe = _qgis_process()
    env = _env(HOME=str(tmp_path), QGIS_PLUGINPATH=str(ROOT / "qgis_plugin"), RS_CHANGE_VENV=str(qgis_venv))
    en = subprocess.run(exe + ["plugins", "enable", "rs_change_qgis"], env=env, capture_output=True, text=True, timeout=300)
    assert en.returncode == 0, en.stdout[-1000:] + en.stderr[-1000:]
    res = subprocess.run(exe + ["list"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    for alg in ("run", "watermask", "change", "sample", "assess"):
        assert f"rschange:{alg}" in res.stdout, res.stdout[-2000:]
    help_ = subprocess.run(exe + ["help", "rschange:watermask"], env=env, capture_output=True, text=True, timeout=300)
    assert "METRIC" in help_.stdout and "WATER_KM2" in help_.stdout
    tile = Path(shutil.copy(ROOT / "sample_tiles" / "naip" / "m_4709963_se_14_1_20090818.tif", tmp_path))  # QGIS writes tile.aux.xml
    run = subprocess.run(exe + ["--json", "run", "rschange:watermask", "--", f"INPUT={tile}", f"OUTPUT={tmp_path / 'wm.tif'}"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]  # and QGIS exits cleanly with rs-change loaded
    res = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    import rasterio

    with rasterio.open(res["OUTPUT"]) as ds:
        assert int((ds.read(1) == 1).sum()) == res["WATER_PIXELS"] == 84374  # the README's NAIP 2009 count


def test_plugin_zip(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "qgis_plugin" / "build_zip.py"), "-o", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    z = Path(res.stdout.strip().splitlines()[-1])
    names = zipfile.ZipFile(z).namelist()
    assert z.parent == tmp_path and "rs_change_qgis/metadata.txt" in names and "rs_change_qgis/__init__.py" in names
    assert not any("__pycache__" in n for n in names)
    assert "hasProcessingProvider=yes" in zipfile.ZipFile(z).read("rs_change_qgis/metadata.txt").decode()
