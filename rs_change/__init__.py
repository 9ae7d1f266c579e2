"""rs-change: surface-water change from satellite and aerial images.

The public API: every stage is usable alone on arrays, and :func:`run` chains them for a config.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # the public names for type checkers and IDEs; at run time they load on first use
    from .api import (
        Comparison,
        compare,
        compute_features,
        fit_model,
        label_water,
        polygonize,
        predict_clusters,
        water_area,
        water_fraction,
        waterbodies,
        write_cluster_map,
        write_outputs,
    )
    from .area import mask_area, pixel_area
    from .assessment import estimate_area
    from .change import CHANGE_CLASSES, change_map
    from .clustering import KMeans, silhouette
    from .config import RunConfig
    from .errors import RsChangeError
    from .features import feature_stack, spectral_index
    from .grid import Grid
    from .labelling import label_clusters
    from .model import ModelDriftWarning, WaterModel
    from .pipeline import RunResult
    from .scenes import Scene, read_scene
    from .sensors import PROFILES, BandProfile

#: Public name -> the module defining it.  ``import rs_change`` (and so ``rs-change --help``,
#: which imports ``rs_change.cli``) loads none of them: each is imported on first access (PEP 562),
#: so numpy, rasterio, pyproj and pydantic load only when a name that needs them is used.
_LAZY = {
    **dict.fromkeys(["Comparison", "compare", "compute_features", "fit_model", "label_water", "polygonize",
                     "predict_clusters", "water_area", "water_fraction", "waterbodies", "write_cluster_map",
                     "write_outputs"], "api"),
    "mask_area": "area", "pixel_area": "area",
    "estimate_area": "assessment",
    "CHANGE_CLASSES": "change", "change_map": "change",
    "KMeans": "clustering", "silhouette": "clustering",
    "RunConfig": "config",
    "RsChangeError": "errors",
    "feature_stack": "features", "spectral_index": "features",
    "Grid": "grid",
    "label_clusters": "labelling",
    "ModelDriftWarning": "model", "WaterModel": "model",
    "Scene": "scenes", "read_scene": "scenes",
    "PROFILES": "sensors", "BandProfile": "sensors",
}


def __getattr__(name: str) -> Any:
    """A public name (imported from its module on first access), or a submodule (``rs_change.model``)."""
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later accesses do not come back here
        return value
    if not name.startswith("_") and (Path(__file__).parent / f"{name}.py").is_file():
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

def run(config: "str | RunConfig", **kwargs: object) -> "RunResult":
    """Run a configuration (a YAML path or a :class:`RunConfig`); see :func:`rs_change.pipeline.run`.

    Parameters
    ----------
    config : str, Path or RunConfig
        A YAML config file (paths in it relative to it) or a validated config.
    **kwargs
        ``output_dir``, ``overwrite``, ``progress``, ``write`` (see :func:`rs_change.pipeline.run`).

    Returns
    -------
    RunResult
        ``summary`` (equal to summary.json), ``output_dir``, ``files``, ``grid``, ``models``.

    Examples
    --------
    >>> result = run("configs/naip_devils_lake.yaml", overwrite=True)  # doctest: +SKIP
    >>> result.summary["change"]["net_km2"]  # doctest: +SKIP
    """
    from . import pipeline
    from .config import RunConfig

    cfg = config if isinstance(config, RunConfig) else RunConfig.from_yaml(config)
    return pipeline.run(cfg, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "__version__",
    "run",
    "RunConfig",
    # array / DataArray API (rs_change.api, rs_change.scenes, rs_change.model)
    "Scene",
    "read_scene",
    "compute_features",
    "fit_model",
    "WaterModel",
    "predict_clusters",
    "label_water",
    "water_fraction",
    "water_area",
    "compare",
    "Comparison",
    "polygonize",
    "waterbodies",
    "write_cluster_map",
    "write_outputs",
    "ModelDriftWarning",
    # stages
    "Grid",
    "BandProfile",
    "PROFILES",
    "pixel_area",
    "mask_area",
    "estimate_area",
    "spectral_index",
    "feature_stack",
    "KMeans",
    "silhouette",
    "label_clusters",
    "change_map",
    "CHANGE_CLASSES",
    "RsChangeError",
]
