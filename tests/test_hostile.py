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
