"""Outputs are all-or-nothing: a failed, interrupted or killed run leaves the previous outputs
byte-for-byte intact and no partial file; manifest.json describes exactly what is there; the
same config and seed give byte-identical files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rs_change import outputs
from rs_change.cli import main
from rs_change.config import RunConfig
from rs_change.pipeline import run

from .conftest import snapshot



def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".rs-change-")]


def _first_run(config: Path) -> tuple[Path, dict[str, str]]:
    res = run(RunConfig.from_yaml(config))
    out = res.output_dir
    assert out is not None and outputs.verify(out) == []
    return out, snapshot(out)


# ---------------------------------------------------------------------------------------------
# Manifest and determinism
# ---------------------------------------------------------------------------------------------
def test_manifest_lists_every_file_with_its_checksum(lake_pair):
    out, snap = _first_run(lake_pair())
    man = json.loads((out / "manifest.json").read_text())
    names = [f["name"] for f in man["files"]]
    assert set(names) | {"manifest.json"} == set(snap), "manifest lists exactly the files written"
    for f in man["files"]:
        assert f["sha256"] == snap[f["name"]] and f["bytes"] == (out / f["name"]).stat().st_size
    # the config hash is the sha256 of the config.yaml written next to the outputs
    assert man["config_sha256"] == snap["config.yaml"]
    for dep in ("rs_change", "numpy", "rasterio", "GDAL", "scikit-learn", "pyproj", "shapely", "pyogrio", "pydantic", "dask"):
        assert man["versions"][dep], dep
    assert _leftovers(out) == []


def test_same_config_and_seed_give_byte_identical_outputs(lake_pair):
    cfg = lake_pair()
    a = run(RunConfig.from_yaml(cfg), output_dir=cfg.parent / "run1").output_dir
    b = run(RunConfig.from_yaml(cfg), output_dir=cfg.parent / "run2").output_dir
    sa, sb = snapshot(a), snapshot(b)
    assert {"summary.json", "water_2019-06-01.tif", "water_2021-06-01.tif", "change.tif", "water.gpkg", "manifest.json",
            "catalog.json", "stac_change.json"} <= set(sa)
    assert sa == sb  # every file, GeoPackage and manifest included


def test_seed_is_what_makes_runs_identical(lake_pair):
    """The same seed gives the same bytes, another seed other cluster centres: the seed reaches the
    fit (were it ignored, both runs would fit the same centres and this test would fail)."""
    import numpy as np

    from rs_change.model import WaterModel

    same, other = lake_pair(), lake_pair(name="seed7.yaml", clustering={"seed": 7})
    a = run(RunConfig.from_yaml(same), output_dir=same.parent / "a").output_dir
    b = run(RunConfig.from_yaml(same), output_dir=same.parent / "b").output_dir
    c = run(RunConfig.from_yaml(other), output_dir=other.parent / "c").output_dir
    assert snapshot(a) == snapshot(b)

    def centres(out: Path) -> np.ndarray:  # the water labeller's fine k-means centres, seeded like every fit
        return WaterModel.load(out / "model_2019-06-01.json").labeller.fine.cluster_centers_

    assert centres(a).shape == centres(c).shape
    assert np.array_equal(centres(a), centres(b)) and not np.array_equal(centres(a), centres(c))


# ---------------------------------------------------------------------------------------------
# Overwrite
# ---------------------------------------------------------------------------------------------
def test_rerun_without_overwrite_changes_nothing(lake_pair, capsys):
    out, snap = _first_run(lake_pair())
    assert main(["run", str(lake_pair())]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert snapshot(out) == snap


def test_overwrite_replaces_the_whole_previous_set(lake_pair):
    out, snap = _first_run(lake_pair())
    assert "change.tif" in snap
    run(RunConfig.from_yaml(lake_pair(dates=1)), overwrite=True)
    now = snapshot(out)
    # change.tif belonged to the previous run (its manifest lists it): it goes with the old set
    assert "change.tif" not in now and "water_2021-06-01.tif" not in now
    assert outputs.verify(out) == [] and _leftovers(out) == []


def test_overwrite_keeps_files_that_are_not_outputs(lake_pair):
    out, _ = _first_run(lake_pair())
    (out / "notes.txt").write_text("mine\n")
    run(RunConfig.from_yaml(lake_pair(clustering={"seed": 3})), overwrite=True)
    assert (out / "notes.txt").read_text() == "mine\n"


# ---------------------------------------------------------------------------------------------
# Failures while writing
# ---------------------------------------------------------------------------------------------
def test_failure_while_staging_leaves_previous_outputs_intact(lake_pair, monkeypatch):
    out, snap = _first_run(lake_pair())
    import rs_change.pipeline as pl

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl, "write_csv", disk_full)  # after the COGs and the GeoPackage are staged
    with pytest.raises(OSError):
        run(RunConfig.from_yaml(lake_pair(clustering={"seed": 5})), overwrite=True)
    assert snapshot(out) == snap
    assert _leftovers(out) == []


@pytest.mark.parametrize("when", ["first old aside", "middle old aside", "first new in", "middle new in", "last (manifest) in"])
def test_failure_in_the_middle_of_the_swap_restores_the_previous_set(lake_pair, monkeypatch, when):
    """os.replace fails at the n-th move: while moving the old files aside, or while moving the
    new ones in (the last move is the new manifest.json)."""
    out, snap = _first_run(lake_pair())
    top = {k.split("/")[0] for k in snap}  # the swap moves top-level names (folders as one)
    n = len(top)
    fail_at = {"first old aside": 1, "middle old aside": n // 2, "first new in": n + 1,
               "middle new in": n + n // 2, "last (manifest) in": 2 * n}[when]
    real = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(5, "Input/output error (injected)")
        return real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", flaky)
    with pytest.raises(OSError, match="injected"):
        run(RunConfig.from_yaml(lake_pair(clustering={"seed": 5})), overwrite=True)
    monkeypatch.setattr(outputs.os, "replace", real)
    assert calls["n"] >= fail_at
    assert snapshot(out) == snap
    assert _leftovers(out) == []


def test_cli_reports_a_write_failure_in_one_line(lake_pair, monkeypatch, capsys):
    out, snap = _first_run(lake_pair())
    import rs_change.pipeline as pl

    monkeypatch.setattr(pl, "write_json", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    code = main(["run", str(lake_pair(clustering={"seed": 5})), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "Permission denied" in err and "previous outputs are intact" in err
    assert snapshot(out) == snap and _leftovers(out) == []


# ---------------------------------------------------------------------------------------------
# Killed processes
# ---------------------------------------------------------------------------------------------
_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import rs_change.outputs as o
    from rs_change.cli import main

    where, n = sys.argv[1], int(sys.argv[2])
    calls = {"n": 0}
    if where == "replace":
        real = os.replace
        def hook(src, dst):
            calls["n"] += 1
            if calls["n"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(src, dst)
        o.os.replace = hook
    else:  # killed after the new manifest is in place, before the backup folder is removed
        real_rm = o.shutil.rmtree
        def hook(path, *a, **k):
            if ".rs-change-backup-" in str(path):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_rm(path, *a, **k)
        o.shutil.rmtree = hook
    sys.exit(main(["run", sys.argv[3], "--overwrite"]))
    """
)


def _killed_run(config: Path, where: str, n: int = 0) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLER, where, str(n), str(config)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_killed_mid_swap_next_run_restores_the_previous_outputs(lake_pair):
    out, snap = _first_run(lake_pair())
    n_old = len({k.split("/")[0] for k in snap})
    # SIGKILL at the 3rd move of new files: every old file is aside, two new ones are in place
    _killed_run(lake_pair(clustering={"seed": 5}), "replace", n_old + 3)
    left = _leftovers(out)
    assert any(x.startswith(".rs-change-backup-") for x in left), left  # the kill left the swap half done
    done = outputs.recover(out)  # what the next run does first
    assert any("restored the previous outputs" in d for d in done), done
    assert snapshot(out) == snap and _leftovers(out) == []


def test_killed_after_the_new_manifest_next_run_keeps_the_complete_new_set(lake_pair):
    out, snap = _first_run(lake_pair())
    _killed_run(lake_pair(clustering={"seed": 5}), "rmtree")
    assert _leftovers(out)
    done = outputs.recover(out)
    assert any("finished the interrupted swap" in d for d in done), done
    assert _leftovers(out) == [] and outputs.verify(out) == []
    man = json.loads((out / "manifest.json").read_text())
    assert man["config_sha256"] == hashlib.sha256((out / "config.yaml").read_bytes()).hexdigest()
    assert "seed: 5" in (out / "config.yaml").read_text()


def test_next_run_removes_stale_staging_folders_but_not_live_ones(lake_pair):
    import fcntl

    out, snap = _first_run(lake_pair())
    dead = out / f".rs-change-tmp-{os.getppid()}-abc"  # named after a live pid (reused): still dead, nobody holds it
    dead.mkdir()
    (dead / "water_2019-06-01.tif").write_bytes(b"partial")
    (dead / outputs.FOLDER_LOCK).touch()
    live = out / ".rs-change-tmp-0123456789abcdef-xyz"  # a run that holds its folder's lock is alive
    live.mkdir()
    fd = os.open(live / outputs.FOLDER_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        run(RunConfig.from_yaml(lake_pair(clustering={"seed": 2})), overwrite=True)
    finally:
        os.close(fd)
    assert not dead.exists()
    assert live.exists()
    shutil.rmtree(live)
    assert outputs.verify(out) == []


def test_ctrl_c_or_sigterm_while_writing_leaves_previous_outputs(lake_pair, monkeypatch, capsys):
    out, snap = _first_run(lake_pair())
    import rs_change.pipeline as pl

    def interrupted(*a, **k):
        raise KeyboardInterrupt  # what Ctrl-C, and SIGTERM under the CLI, raise in the main thread

    monkeypatch.setattr(pl, "write_json", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["run", str(lake_pair(clustering={"seed": 5})), "--overwrite"]) == 130
    assert signal.getsignal(signal.SIGTERM) == before  # the CLI's SIGTERM trap is removed again
    assert "interrupted" in capsys.readouterr().err
    assert snapshot(out) == snap and _leftovers(out) == []
