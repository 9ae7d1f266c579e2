"""water_fraction_<date>.tif (issue 25): each pixel's water fraction from the labeller's unmixing,
bounded by the water mask (water >= 50, land < 50, unobserved 255 on both), styled, a COG listed in
the manifest, the same bytes from the compiled and the numpy paths, and strata for ``rs-change sample``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from rs_change.sampling import FRACTION_STRATA
from rs_change.cli import main
from rs_change.outputs import verify


def _run(folder: Path, out: str, monkeypatch: pytest.MonkeyPatch, compiled: bool = True) -> Path:
    from rs_change import kernels

    (folder / f"{out}.yaml").write_text(
        "scenes:\n  - {date: 2001-01-01, path: a.tif, sensor: naip}\n"
        f"clustering: {{k: 3, seed: 0, n_init: 1}}\noutput: {{dir: {out}, report: false, polygons: false}}\n"
        "compute: {chunk_size: 64}\n")  # several blocks, edges included
    with monkeypatch.context() as m:
        m.setattr(kernels, "ENABLED", compiled and kernels.ENABLED)
        assert main(["run", str(folder / f"{out}.yaml")]) == 0
    return folder / out


def test_fraction_layer_is_the_masks_evidence(synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _run(synthetic, "out", monkeypatch)
    tif = out / "water_fraction_2001-01-01.tif"
    with rasterio.open(tif) as ds:
        frac = ds.read(1)
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8" and ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert "percent" in ds.descriptions[0]
    with rasterio.open(out / "water_2001-01-01.tif") as ds:
        water = ds.read(1)
    assert np.array_equal(frac == 255, water == 255)
    assert (water == 255).sum() == 30 * 15 + 3 * 10  # the nodata corner and hole
    assert (frac[water == 1] >= 50).all() and (frac[water == 0] < 50).all() and frac[frac != 255].max() <= 100
    # evidence, not a copy of the mask: the lake's inside is nearly all water, its shore is mixed
    assert np.median(frac[40:80, 50:110]) >= 90 and np.median(frac[100:, 130:]) <= 10
    assert len(np.unique(frac[water != 255])) > 20
    qml = (out / "water_fraction_2001-01-01.qml").read_text()
    assert "singlebandpseudocolor" in qml and 'label="50 %"' in qml
    names = {f["name"] for f in json.loads((out / "manifest.json").read_text())["files"]}
    assert {"water_fraction_2001-01-01.tif", "water_fraction_2001-01-01.qml"} <= names and verify(out) == []
    # the numpy path writes the same bytes
    slow = _run(synthetic, "slow", monkeypatch, compiled=False)
    assert (slow / tif.name).read_bytes() == tif.read_bytes()


def test_fraction_strata_for_sample(synthetic: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    import pyogrio

    out = _run(synthetic, "out", monkeypatch)
    with rasterio.open(out / "water_fraction_2001-01-01.tif") as ds:
        frac, transform = ds.read(1), ds.transform
    assert main(["sample", str(out), "--map", "water_fraction_2001-01-01", "--per-class", "5", "--seed", "1"]) == 0
    rec = json.loads((out / "manifest.json").read_text())["samples"]
    assert rec["classes"] == [f"fraction {lo}-{hi}" for lo, hi in FRACTION_STRATA]
    assert rec["strata_pixels"] == [int(((frac >= lo) & (frac <= hi)).sum()) for lo, hi in FRACTION_STRATA]
    df = pyogrio.read_dataframe(out / "samples.gpkg", layer="samples")
    assert len(df) == 5 * sum(1 for p in rec["strata_pixels"] if p >= 5)
    for x, y, cls in zip(df.geometry.x, df.geometry.y, df["map_class"]):  # each point lies in its stratum
        c, r = ~transform * (x, y)
        lo, hi = map(int, cls.split()[1].split("-"))
        assert lo <= frac[int(r), int(c)] <= hi
    # a fraction sample is for drawing points, not for the error matrix
    assert main(["assess", str(out)]) == 2 and "water fraction" in capsys.readouterr().err
