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
