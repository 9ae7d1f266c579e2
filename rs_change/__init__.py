"""rs-change: surface-water change from satellite and aerial images.

The public API: every stage is usable alone on arrays, and :func:`run` chains them for a config.
"""

from __future__ import annotations

from ._version import __version__

from .area import mask_area, pixel_area
from .change import CHANGE_CLASSES, change_map
from .clustering import KMeans, silhouette
from .config import RunConfig
from .errors import RsChangeError
from .features import feature_stack, spectral_index
from .grid import Grid
from .labelling import label_clusters
from .sensors import PROFILES, BandProfile
from .model import ModelDriftWarning, WaterModel
from .api import (
    Comparison,
    Scene,
    compare,
    compute_features,
    fit_model,
    label_water,
    polygonize,
    predict_clusters,
    read_scene,
    water_area,
    write_cluster_map,
    write_outputs,
)


def run(config: "str | RunConfig", **kwargs: object) -> "pipeline.RunResult":  # noqa: F821
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

    cfg = config if isinstance(config, RunConfig) else RunConfig.from_yaml(config)
    return pipeline.run(cfg, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "__version__",
    "run",
    "RunConfig",
    # array / DataArray API (rs_change.api, rs_change.model)
    "Scene",
    "read_scene",
    "compute_features",
    "fit_model",
    "WaterModel",
    "predict_clusters",
    "label_water",
    "water_area",
    "compare",
    "Comparison",
    "polygonize",
    "write_cluster_map",
    "write_outputs",
    "ModelDriftWarning",
    # stages
    "Grid",
    "BandProfile",
    "PROFILES",
    "pixel_area",
    "mask_area",
    "spectral_index",
    "feature_stack",
    "KMeans",
    "silhouette",
    "label_clusters",
    "change_map",
    "CHANGE_CLASSES",
    "RsChangeError",
]
