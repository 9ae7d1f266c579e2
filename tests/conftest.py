"""Shared fixtures: tiny GeoTIFF factory, paths to sample tiles and to ../shared/data."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest
import rasterio
from affine import Affine

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_tiles"
CONFIGS = ROOT / "configs"
SHARED = ROOT.parent / "shared" / "data"


def write_geotiff(
    path: Path, array: np.ndarray, transform: Affine, crs: Any, nodata: Optional[float] = None, **kw: Any
) -> Path:
    """Write a (bands, h, w) or (h, w) array as a GeoTIFF."""
    arr = array if array.ndim == 3 else array[None]
    with rasterio.open(
        path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
        dtype=arr.dtype, crs=crs, transform=transform, nodata=nodata, **kw,
    ) as ds:
        ds.write(arr)
    return Path(path)


@pytest.fixture
def make_tif(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_tif(name, array, transform, crs, nodata=None)`` -> path in tmp_path."""

    def _make(name: str, array: np.ndarray, transform: Affine, crs: Any, nodata: Optional[float] = None, **kw: Any) -> Path:
        return write_geotiff(tmp_path / name, array, transform, crs, nodata, **kw)

    return _make


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip when it is absent (fresh clones without the shared folder)."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


def lake_scene(h: int = 20, w: int = 20, lake: tuple[slice, slice] = (slice(5, 10), slice(5, 10)), seed: int = 0) -> np.ndarray:
    """A 4-band (R, G, B, NIR) uint8 NAIP-like scene: vegetated land with one dark, green-over-NIR lake."""
    rng = np.random.default_rng(seed)
    img = np.empty((4, h, w), np.uint8)
    land = np.array([90, 110, 80, 180])
    water = np.array([30, 60, 70, 20])
    img[:] = land[:, None, None]
    img[:, lake[0], lake[1]] = water[:, None, None]
    noise = rng.integers(-4, 5, size=img.shape)
    return np.clip(img.astype(int) + noise, 1, 255).astype(np.uint8)


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """A folder with ``a.tif``: a 150 x 170 NAIP-like lake scene with spread values (many distinct
    pixels), a nodata corner (every band 0) at [120:, :15], a nodata hole in the lake at
    [50:53, 60:70], and NIR = 0 alone (observed: NAIP's nodata is on every band) at [10:14, 10:20]."""
    t = Affine(1.0, 0, 500000.0, 0, -1.0, 5200000.0)
    img = lake_scene(150, 170, (slice(30, 90), slice(40, 120)), seed=5).astype(int)
    img += np.random.default_rng(6).integers(-25, 26, size=img.shape)
    img = np.clip(img, 1, 255).astype(np.uint8)
    img[:, 120:, :15] = 0
    img[:, 50:53, 60:70] = 0
    img[3, 10:14, 10:20] = 0
    write_geotiff(tmp_path / "a.tif", img, t, "EPSG:32614", nodata=0)
    return tmp_path


def fit_synthetic(folder: Path, clustering: str, labelling: str = "{method: auto}") -> tuple[Any, dict, np.ndarray]:
    """Pass 1 on ``folder/a.tif`` (the ``synthetic`` fixture) with the given YAML flow mappings, and
    its whole raster read raw: (DateModel, raws, valid)."""
    from rs_change.config import RunConfig
    from rs_change.errors import LabellingWarning
    from rs_change.fit import fit_date
    from rs_change.pipeline import build_source, reference_grid

    (folder / "run.yaml").write_text(
        "scenes:\n  - {date: 2001-01-01, path: a.tif, sensor: naip}\n"
        f"clustering: {clustering}\nlabelling: {labelling}\n")
    cfg = RunConfig.from_yaml(folder / "run.yaml")
    src = build_source(cfg.scenes[0], cfg)
    ref = reference_grid(cfg, [src])
    if "clusters" in labelling:
        with pytest.warns(LabellingWarning):  # ids given by hand
            dm = fit_date(src, ref, None, cfg.clustering, cfg.labelling, cfg.grid.resampling)
    else:
        dm = fit_date(src, ref, None, cfg.clustering, cfg.labelling, cfg.grid.resampling)
    with src.open(ref, "bilinear") as rd:
        raws, valid = rd.read_raw(0, 0, ref.height, ref.width)
    return dm, raws, valid
