"""Shared fixtures: tiny GeoTIFF factory, paths to sample tiles and to ../shared/data."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest
import rasterio
import yaml
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


#: the two-date test scenes' CRS and 10 m grid (:func:`lake_pair`)
UTM = "EPSG:32614"
T10 = Affine(10, 0, 500000, 0, -10, 5200000)


def snapshot(folder: Path, symlinks: bool = True) -> dict[str, str]:
    """name -> sha256 of every file under ``folder`` (hidden leftovers included; symlinks unless told)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and (symlinks or not p.is_symlink())}


@pytest.fixture
def lake_pair(tmp_path: Path, make_tif: Callable[..., Path]) -> Callable[..., Path]:
    """Two NAIP-like dates in tmp_path (``a.tif``: a 25-pixel lake; ``b.tif``: an 81-pixel one).

    Returns ``config(name="config.yaml", text="", dates=2, **sections)``, which writes a run config
    into tmp_path: k=2, seed 0, one restart, output to ``out`` without the report (the report
    alone takes seconds). ``sections`` update the config's sections key by key, e.g.
    ``config(clustering={"seed": 5}, output={"dir": "x"})``; ``text`` replaces the YAML whole.
    """
    make_tif("a.tif", lake_scene(), T10, UTM, nodata=0)
    make_tif("b.tif", lake_scene(lake=(slice(3, 12), slice(3, 12)), seed=1), T10, UTM, nodata=0)

    def config(name: str = "config.yaml", text: str = "", dates: int = 2, **sections: Any) -> Path:
        data: dict[str, Any] = {
            "scenes": [{"date": "2019-06-01", "path": "a.tif", "sensor": "naip"},
                       {"date": "2021-06-01", "path": "b.tif", "sensor": "naip"}][:dates],
            "clustering": {"k": 2, "seed": 0, "n_init": 1},
            "output": {"dir": "out", "report": False},
        }
        for key, value in sections.items():
            data[key] = {**data[key], **value} if isinstance(data.get(key), dict) and isinstance(value, dict) else value
        p = tmp_path / name
        p.write_text(text or yaml.safe_dump(data, sort_keys=False))
        return p

    return config
