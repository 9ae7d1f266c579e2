"""Hostile inputs and faults (issue 21): nothing written outside the output folder, no runaway
allocation, one output set per folder, and every user error one line with exit status 2.

Tiny synthetic rasters; the CLI is called in-process (``rs_change.cli.main``) except where a
signal or a second process is the point.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from affine import Affine

from rs_change import outputs
from rs_change.cli import main

from .conftest import lake_scene

UTM = "EPSG:32614"
T = Affine(10, 0, 500000, 0, -10, 5200000)


@pytest.fixture
def scenes(tmp_path, make_tif):
    """Two dates (a small lake, then a bigger one); ``config(**changes)`` writes a config into tmp_path."""
    make_tif("a.tif", lake_scene(), T, UTM, nodata=0)
    make_tif("b.tif", lake_scene(lake=(slice(3, 12), slice(3, 12)), seed=1), T, UTM, nodata=0)

    def config(name: str = "config.yaml", text: str = "", **sections: Any) -> Path:
        data: dict[str, Any] = {
            "scenes": [{"date": "2019-06-01", "path": "a.tif", "sensor": "naip"},
                       {"date": "2021-06-01", "path": "b.tif", "sensor": "naip"}],
            "clustering": {"k": 2, "seed": 0, "n_init": 1},
            "output": {"dir": "out", "report": False},
        }
        for key, value in sections.items():
            data[key] = {**data[key], **value} if isinstance(data.get(key), dict) and isinstance(value, dict) else value
        p = tmp_path / name
        p.write_text(text or yaml.safe_dump(data, sort_keys=False))
        return p

    return config


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def _one_line_error(capsys: Any, argv: list[str], *needles: str) -> str:
    """Run the CLI; assert exit status 2 and exactly one ``rs-change: error:`` line containing ``needles``."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("rs-change: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


# ---------------------------------------------------------------------------------------------
# 1, 3: --summary-only stages like a run and writes one consistent set
# ---------------------------------------------------------------------------------------------
def test_summary_only_does_not_write_through_a_planted_symlink(scenes, tmp_path, capsys):
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("not yours\n")
    out = tmp_path / "out"
    out.mkdir()
    for name in (".summary.json.part", ".summary.csv.part"):  # the fixed names it used to write through
        (out / name).symlink_to(victim)
    assert main(["run", str(scenes()), "-o", str(out), "--summary-only"]) == 0, capsys.readouterr().err
    assert victim.read_text() == "not yours\n"
    assert json.loads((out / "summary.json").read_text())["dates"][0]["water_pixels"] == 25


def test_summary_only_writes_a_manifest_and_replaces_a_full_set(scenes, capsys):
    cfg = scenes()
    out = cfg.parent / "out"
    assert main(["run", str(cfg)]) == 0
    assert "water_2019-06-01.tif" in os.listdir(out)
    assert main(["run", str(cfg), "--summary-only", "--overwrite"]) == 0, capsys.readouterr().err
    # the full set is replaced as a whole: no old raster, config or manifest beside the new summaries
    assert sorted(os.listdir(out)) == ["config.yaml", "manifest.json", "summary.csv", "summary.json"]
    assert outputs.verify(out) == []
    man = json.loads((out / "manifest.json").read_text())
    assert man["config_sha256"] == hashlib.sha256((out / "config.yaml").read_bytes()).hexdigest()
    # and a full run over a summary-only set replaces it in turn
    assert main(["run", str(cfg), "--overwrite"]) == 0
    assert outputs.verify(out) == [] and "water_2021-06-01.tif" in os.listdir(out)


# ---------------------------------------------------------------------------------------------
# 4, 10: leftovers recognised by their lock, not by a pid; one run at a time per output folder
# ---------------------------------------------------------------------------------------------
def test_recovery_does_not_trust_a_reused_pid(scenes, capsys):
    """A run killed mid-swap whose pid now belongs to another process (here: our parent)."""
    cfg = scenes()
    assert main(["run", str(cfg)]) == 0
    out = cfg.parent / "out"
    snap = _snapshot(out)
    backup = out / f".rs-change-backup-{os.getppid()}-abcd1234"
    backup.mkdir()
    old = ["manifest.json", "water_2019-06-01.tif"]
    for n in old:
        os.replace(out / n, backup / n)
    (out / "water_2019-06-01.tif").write_bytes(b"half of a new set")
    (backup / "journal.json").write_text(json.dumps({"old": old, "new": ["water_2019-06-01.tif", "manifest.json"],
                                                     "manifest_sha256": "0" * 64}))
    done = outputs.recover(out)
    assert any("restored the previous outputs" in d for d in done), done
    assert _snapshot(out) == snap and outputs.verify(out) == []
    assert [p.name for p in out.iterdir() if p.name.startswith(".rs-change")] == []


def test_a_live_runs_folder_is_left_alone_whatever_its_name(scenes, tmp_path):
    import fcntl

    out = tmp_path / "out"
    live = out / ".rs-change-tmp-999999999-live"  # a pid that does not exist: the lock says it is alive
    live.mkdir(parents=True)
    fd = os.open(live / outputs.FOLDER_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert outputs.recover(out) == [] and live.exists()
    finally:
        os.close(fd)
    assert outputs.recover(out) and not live.exists()  # its process is gone: cleaned up


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(scenes, monkeypatch, capsys):
    import threading

    import rs_change.pipeline as pl

    cfg = scenes()
    out = cfg.parent / "out"
    inside, release = threading.Event(), threading.Event()
    real = pl.build_summary

    def slow_summary(*a: Any, **k: Any) -> Any:  # the first run pauses after pass 2
        inside.set()
        release.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(pl, "build_summary", slow_summary)
    first: dict[str, int] = {}
    t = threading.Thread(target=lambda: first.setdefault("code", main(["run", str(cfg)])))
    t.start()
    try:
        assert inside.wait(10)
        _one_line_error(capsys, ["run", str(cfg)], str(out), "another rs-change run")
        _one_line_error(capsys, ["run", str(cfg), "--summary-only", "--overwrite"], "another rs-change run")
    finally:
        release.set()
        t.join(20)
    assert first["code"] == 0
    assert outputs.verify(out) == [] and not (out / outputs.OUTPUT_LOCK).exists()
    assert json.loads((out / "summary.json").read_text())["dates"][1]["water_pixels"] == 81


# ---------------------------------------------------------------------------------------------
# 6, 9: config values refused with one line (validate refuses what run refuses)
# ---------------------------------------------------------------------------------------------
BASE_YAML = """scenes:
  - {date: 2019-06-01, path: a.tif, sensor: naip}
  - {date: 2021-06-01, path: b.tif, sensor: naip}
clustering: {k: 2, seed: 0, n_init: 1}
output: {dir: out, report: false}
"""


@pytest.mark.parametrize("change, needles", [
    (("2019-06-01", "2020-13-45"), ["line 2", "2020-13-45", "YYYY-MM-DD"]),  # unquoted: PyYAML's own date parser
    (("2019-06-01", "2020-02-30"), ["line 2", "2020-02-30", "YYYY-MM-DD"]),
    (("seed: 0", "seed: -1"), ["clustering.seed"]),
    (("seed: 0", "seed: 123456789012345678901234567890"), ["clustering.seed"]),
    (("sensor: naip}\n  - {date: 2021", "sensor: naip, nodata: .inf}\n  - {date: 2021"), ["nodata", "finite"]),
    (("path: b.tif, sensor: naip", "path: b.tif, bands: {red: 1, green: 2, blue: 3, nir: 4, swirl: 2}"),
     ["scenes.1.bands", "swirl", "did you mean `swir"]),
    (("output: {", "scenes: [{date: 2022-01-01, path: a.tif, sensor: naip}]\noutput: {"), ["duplicate key `scenes`", "line 5"]),
    (("sensor: naip}", "sensor: naip, sensor: modis}"), ["duplicate key `sensor`", "line 2"]),
    (("2019-06-01", "2022-06-01"), ["2021-06-01 is listed after 2022-06-01", "date order"]),
    (("path: b.tif", "path: ./a.tif"), ["both read", "its own file"]),
    (("k: 2", "k: 1000"), ["clustering.k", "k=1000", "compute.max_k"]),
    (("dir: out", "dir: ''"), ["output.dir", "empty"]),
], ids=["month-13", "feb-30", "seed-negative", "seed-huge", "nodata-inf", "band-role", "duplicate-scenes",
        "duplicate-flow-key", "dates-out-of-order", "same-file-twice", "k-1000", "empty-output-dir"])
def test_config_values_refused_in_one_line(scenes, capsys, change, needles):
    old, new = change
    assert old in BASE_YAML
    cfg = scenes(text=BASE_YAML.replace(old, new, 1))
    out = cfg.parent / "out"
    _one_line_error(capsys, ["validate", str(cfg)], *needles)
    _one_line_error(capsys, ["run", str(cfg)], *needles)
    assert not out.exists()


def test_k_limit_can_be_raised(scenes):
    from rs_change.config import RunConfig

    cfg = RunConfig.from_text(BASE_YAML.replace("k: 2", "k: 100") + "compute: {max_k: 100}")
    assert cfg.clustering.k == 100


def test_empty_output_option_is_refused(scenes, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = scenes()
    before = sorted(os.listdir(tmp_path))
    _one_line_error(capsys, ["run", str(cfg), "-o", ""], "-o/--output", "empty")
    assert sorted(os.listdir(tmp_path)) == before


def test_init_into_a_missing_folder_is_a_user_error(tmp_path, capsys):
    _one_line_error(capsys, ["init", str(tmp_path / "nope" / "run.yaml")], "nope", "does not exist")
    _one_line_error(capsys, ["init", str(tmp_path)], "is a folder")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# 2: cost limits checked by validate and before a run reads pixels; non-regular files refused
# ---------------------------------------------------------------------------------------------
def test_a_grid_too_fine_is_refused_before_anything_is_written(scenes, capsys):
    cfg = scenes(grid={"resolution": 1e-7})  # 10 m pixels cut into 1e-7 m: 4e18 pixels
    out = cfg.parent / "out"
    for cmd in (["validate", str(cfg)], ["run", str(cfg)], ["run", str(cfg), "--summary-only"]):
        _one_line_error(capsys, cmd, "compute.max_pixels", "grid.resolution")
    assert not out.exists()


def test_limits_on_bytes_written_and_k_times_pixels(scenes, capsys):
    from rs_change.config import RunConfig

    cfg = scenes(compute={"max_write_gb": 1e-6})  # 400 pixels x 2 dates: ~4 kB of rasters
    _one_line_error(capsys, ["validate", str(cfg)], "compute.max_write_gb")
    _one_line_error(capsys, ["run", str(cfg)], "compute.max_write_gb")
    assert main(["run", str(cfg), "--summary-only"]) == 0  # writes no raster
    cfg = scenes(clustering={"sample_size": None}, compute={"max_k_pixels": 500})  # k=2 x 400 pixels
    _one_line_error(capsys, ["validate", str(cfg)], "compute.max_k_pixels")
    with pytest.raises(Exception, match="compute.max_k_pixels"):
        RunConfig.from_text(BASE_YAML.replace("n_init: 1", "n_init: 1, sample_size: 100000") + "compute: {max_k_pixels: 1000}")


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_config_that_is_not_a_regular_file(tmp_path, capsys, target):
    path = Path(target)
    if target == "fifo":
        path = tmp_path / "config.yaml"
        os.mkfifo(path)
    _one_line_error(capsys, ["validate", str(path)], str(path), "not a regular file")
    _one_line_error(capsys, ["run", str(path)], str(path), "not a regular file")


def test_a_huge_config_file_is_refused(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20) + "\n")
    _one_line_error(capsys, ["validate", str(big)], "too large")


def test_a_fifo_as_a_tile_is_refused_not_waited_on(scenes, tmp_path):
    import subprocess
    import sys

    os.mkfifo(tmp_path / "fifo.tif")
    cfg = scenes(text=BASE_YAML.replace("path: a.tif", "path: fifo.tif"))
    for cmd in ("validate", "run"):  # it used to block in GDAL's open until killed
        proc = subprocess.run([sys.executable, "-m", "rs_change", cmd, str(cfg)], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [f"rs-change: error: {tmp_path / 'fifo.tif'}: not a regular file "
                                            "(a FIFO, device or socket); give a GeoTIFF file"]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# 5: the File Geodatabase is byte-identical across runs
# ---------------------------------------------------------------------------------------------
def test_file_geodatabase_is_byte_identical_across_runs(scenes, capsys):
    cfg = scenes(output={"formats": ["gdb"]})
    a, b = cfg.parent / "g1", cfg.parent / "g2"
    assert main(["run", str(cfg), "-o", str(a)]) == 0 and main(["run", str(cfg), "-o", str(b)]) == 0
    sa, sb = _snapshot(a), _snapshot(b)
    assert any(n.startswith("water.gdb/") for n in sa)
    assert sa == sb  # every .gdbtable (random UUIDs before) and so the manifest
