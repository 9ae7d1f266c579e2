"""Any number of band roles on any dtype runs (issue 25): a 7-band Landsat TM-like stack with five
roles named in ``bands:`` takes the compiled loop (or the tables, or numpy) and gives one water
mask, whatever the band type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from rs_change import kernels
from rs_change.cli import main

from .conftest import T10, UTM, write_geotiff

#: blue, green, red, nir, swir1, thermal, swir2 of vegetated land and of a lake (DN)
LAND = [60, 80, 70, 160, 140, 120, 90]
LAKE = [50, 70, 40, 15, 8, 100, 5]


def tm_stack(dtype: str, h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.empty((7, h, w), np.float64)
    img[:] = np.array(LAND, float)[:, None, None]
    img[:, 20:40, 20:50] = np.array(LAKE, float)[:, None, None]  # 600 pixels of lake
    img += rng.integers(-3, 4, size=img.shape)
    img = np.clip(img, 1, 250)
    if np.dtype(dtype).kind == "f":
        return (img / 255.0).astype(dtype)
    return (img * (1 if dtype == "uint8" else 40)).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_seven_band_stack_with_five_roles_runs(tmp_path: Path, dtype: str, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ran = []
    real = kernels.classify_u8

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        out = real(*a, **kw)
        ran.append(out is not None)
        return out

    monkeypatch.setattr(kernels, "classify_u8", spy)
    write_geotiff(tmp_path / "tm.tif", tm_stack(dtype), T10, UTM, nodata=0)
    (tmp_path / "run.yaml").write_text(
        "scenes:\n  - {date: 1988-08-14, path: tm.tif, bands: {blue: 1, green: 2, red: 3, nir: 4, swir1: 5}}\n"
        "clustering: {k: 2, seed: 0, n_init: 1}\noutput: {dir: out, report: false, polygons: false}\n")
    assert main(["run", str(tmp_path / "run.yaml")]) == 0, capsys.readouterr().err
    with rasterio.open(tmp_path / "out" / "water_1988-08-14.tif") as ds:
        water = ds.read(1)
    assert (water == 1).sum() == 600 and (water == 0).sum() == 60 * 80 - 600
    if dtype == "uint8" and kernels.ENABLED:  # five 8-bit roles: the compiled loop ran every block
        assert ran and all(ran)
