"""The typed run configuration (YAML, validated with pydantic; unknown keys are rejected).

One sub-model per stage.  Paths inside a config are relative to the config file.  Reading the file
and its YAML is :mod:`rs_change.config_yaml`; the ``init`` template's layout is :mod:`rs_change.config_template`.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import os
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import defaults
from .config_template import render
from .config_yaml import parse_yaml, read_config_text, validation_message
from .errors import BandProfileError, ConfigError
from .remote import is_remote

Metric = Literal["euclidean", "manhattan", "chebyshev"]

#: Default cost limits (``compute.max_*``), checked by ``validate`` and before a run reads pixels
#: (:meth:`RunConfig.check_costs`): a typo in ``grid.resolution`` or ``clustering.k`` stops with one
#: line instead of filling the disk or the memory.
MAX_PIXELS = 2_000_000_000
MAX_WRITE_GB = 200.0
MAX_K = 64
MAX_K_PIXELS = 50_000_000
MAX_N_INIT = 100
MAX_ITERATIONS = 10_000
MAX_K_CANDIDATES = 16


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class QaConfig(_Model):
    """Which pixels a scene's QA layer makes unobserved: ``mask`` / ``buffer`` for the optical
    products' QA roles (Landsat C2 ``qa_pixel``, Sentinel-2 L2A ``scl``, HLS ``fmask``;
    :mod:`rs_change.qa`), the named flags for MODIS state QA (state_1km / sur_refl_state_500m).
    """

    enabled: bool = Field(True, description="Use the scene's QA layer when it has one (false: no QA masking).")
    mask: Optional[list[str]] = Field(
        None,
        description=(
            "qa_pixel / scl / fmask: classes masked (fill, saturated, cloud, shadow, cirrus, snow, dilated_cloud, "
            "adjacent, "
            "aerosol; default per product, see docs/qa.md)."
        ),
        examples=[["fill", "cloud", "shadow", "snow"]],
    )
    buffer: int = Field(
        defaults.QA_BUFFER,
        ge=0,
        le=100,
        description=(
            "qa_pixel / scl / fmask: grow masked cloud and cloud shadow by this many pixels of the reference grid."
        ),
        examples=[2],
    )
    cloudy: bool = Field(True, description="Cloud state 01 (cloudy).")
    mixed: bool = Field(True, description="Cloud state 10 (mixed).")
    cloud_shadow: bool = Field(True, description="Bit 2, cloud shadow.")
    cirrus: Union[bool, Literal["small", "average", "high"]] = Field(
        "average", description="Bits 8-9: lowest cirrus level masked (true = average; false = keep all)."
    )
    adjacent_to_cloud: bool = Field(False, description="Bit 13, pixel adjacent to cloud.")
    internal_cloud: bool = Field(False, description="Bit 10, internal cloud algorithm flag.")
    snow: bool = Field(False, description="Bit 12, MOD35 snow/ice flag.")
    layer: Optional[str] = Field(
        None,
        description="QA layer name (default: state_500m, state_250m or state_1km, whichever exists).",
        examples=["state_500m"],
    )

    @field_validator("mask")
    @classmethod
    def _classes(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        from .qa import CLASSES, NEVER  # which product has which class is checked when the scene is opened

        known = sorted({c for cs in CLASSES.values() for c in cs})
        for name in v or []:
            key = str(name).lower()
            if key in NEVER:
                raise ValueError(f"`{name}`: {NEVER[key]}; remove it")
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean `{close[0]}`?" if close else "use"
                raise ValueError(f"unknown QA class `{name}`; {hint} (classes: {', '.join(known)})")
        return v


#: the scenes of ``rs-change init``'s template (the sample NAIP tiles); dates as YAML writes them
_SCENE_EXAMPLES: list[Any] = [
    {"date": _dt.date(2009, 8, 18), "path": "sample_tiles/naip/m_4709963_se_14_1_20090818.tif", "sensor": "naip"},
    {"date": _dt.date(2020, 8, 31), "path": "sample_tiles/naip/m_4709963_se_14_1_20200831.tif", "sensor": "naip"},
]


class SceneConfig(_Model):
    """One date: a file (or folder / glob of per-band files) and its band profile."""

    model_config = ConfigDict(json_schema_extra={"examples": _SCENE_EXAMPLES})

    date: _dt.date = Field(description="Acquisition date, YYYY-MM-DD.")
    path: Optional[Union[str, list[str]]] = Field(
        None,
        description=(
            "GeoTIFF, folder or glob of per-layer GeoTIFFs, relative to the config file; or a URL read by range "
            "requests "
            "(http(s)://, s3://, gs://, az:// or a GDAL /vsi... path); a list of files of one date is composited per "
            "pixel "
            "from the files that observe it (one: its value; two: the first listed; three or more: their medoid; "
            "docs/composites.md)."
        ),
    )
    assets: Optional[Union[dict[str, str], list[dict[str, str]]]] = Field(
        None,
        description=(
            "Instead of `path`: one single-band file (or URL) per band role, e.g. Sentinel-2 L2A or Landsat C2 L2 "
            "bands; "
            "a list of such mappings is composited per pixel as a `path` list is. A `stac:` block writes these."
        ),
        examples=[{"green": "B03.tif", "nir": "B08.tif", "swir1": "B11.tif"}],
    )
    sensor: Optional[str] = Field(
        None,
        description=(
            "Named band profile of the product (docs/radiometry.md): naip, modis, landsat8 / landsat_tm (Collection 2 "
            "Level-2 surface reflectance), landsat8_dn / landsat_tm_dn (Level-1 digital numbers), landsat8_toa / "
            "landsat_tm_toa, sentinel2 (L1C or L2A), hls ..."
        ),
    )
    bands: Optional[dict[str, int]] = Field(
        None,
        description="Explicit 1-based band roles (instead of, or overriding, `sensor`).",
        examples=[{"red": 1, "green": 2, "blue": 3, "nir": 4}],
    )
    nodata: Optional[float] = Field(None, description="Nodata value when the file does not declare one.", examples=[0])
    scale: Optional[float] = Field(
        None, description="Reflectance = DN * scale + offset (overrides the profile).", examples=[0.0001]
    )
    offset: Optional[float] = Field(
        None,
        description=(
            "Reflectance offset (overrides the profile and any offset the file declares; sentinel2: 0 unless the file "
            "has a GDAL band offset or a BOA_ADD_OFFSET / RADIO_ADD_OFFSET tag, e.g. -1000 for baseline 04.00+ -> "
            "-0.1)."
        ),
        examples=[-0.1],
    )
    valid_range: Optional[tuple[float, float]] = Field(
        None,
        description=(
            "Raw values outside [low, high] are unobserved (overrides the profile's, e.g. landsat8's 7273-43636)."
        ),
        examples=[[1, 255]],
    )
    qa: Optional[QaConfig] = Field(
        None,
        description=(
            "QA masking: `mask` and `buffer` for a qa_pixel / scl / fmask band or asset (default per product, "
            "docs/qa.md); "
            "the MODIS state QA flags (default: mask cloudy, mixed, cloud shadow, cirrus >= average)."
        ),
        examples=[{"mask": ["fill", "cloud", "shadow", "snow"], "buffer": 2}],
    )

    @model_validator(mode="after")
    def _sensor_or_bands(self) -> "SceneConfig":
        if (self.path is None) == (self.assets is None):
            raise ValueError(
                "give `path` (a file, URL or list of them) or `assets` ({role: file} per band), one of them"
            )
        if self.path == [] or self.assets == []:
            raise ValueError("empty list of files; give at least one")
        if self.sensor is None and self.bands is None and self.assets is None:
            raise ValueError("give `sensor` (a named band profile) or `bands` (1-based band roles)")
        from .qa import QA_ROLES
        from .sensors import ROLES

        names = ROLES + QA_ROLES
        for part in self.asset_parts():
            for role in part:
                if role not in names:
                    close = difflib.get_close_matches(role.lower(), names, n=1)
                    hint = f"did you mean `{close[0]}`?" if close else "use"
                    raise ValueError(f"assets: unknown band role `{role}`; {hint} (roles: {', '.join(names)})")
            if sum(r in QA_ROLES for r in part) > 1:
                raise ValueError(f"assets: one QA layer per scene; got {', '.join(r for r in part if r in QA_ROLES)}")
            if all(r in QA_ROLES for r in part):
                raise ValueError("assets: a QA layer alone has no bands to classify; add the band roles")
        if self.bands and sum(str(r).lower() in QA_ROLES for r in self.bands) > 1:
            raise ValueError(f"bands: one QA layer per scene; got {', '.join(r for r in self.bands if r in QA_ROLES)}")
        return self

    def paths(self) -> list[str]:
        """Every file of the date as written in the config (``path``, or ``assets``' files)."""
        if self.path is not None:
            return [self.path] if isinstance(self.path, str) else list(self.path)
        return [f for part in self.asset_parts() for f in part.values()]

    def asset_parts(self) -> list[dict[str, str]]:
        """``assets`` as a list of {role: file} (one per mosaicked part); [] without ``assets``."""
        if self.assets is None:
            return []
        return [self.assets] if isinstance(self.assets, dict) else list(self.assets)

    @field_validator("bands")
    @classmethod
    def _roles(cls, v: Optional[dict[str, int]]) -> Optional[dict[str, int]]:
        from .qa import QA_ROLES
        from .sensors import ROLES  # an unknown role would be used as a plain band, and an index silently lost

        names = ROLES + QA_ROLES
        for role in v or {}:
            if str(role).lower() not in names:
                close = difflib.get_close_matches(str(role).lower(), names, n=1)
                hint = f"did you mean `{close[0]}`?" if close else "use"
                raise ValueError(f"unknown band role `{role}`; {hint} (roles: {', '.join(names)})")
        return v

    @field_validator("valid_range")
    @classmethod
    def _valid_range(cls, v: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
        if v is not None and not (v[0] <= v[1]):
            raise ValueError(f"valid_range [{v[0]:g}, {v[1]:g}]: give [low, high] with low <= high")
        return v

    @field_validator("sensor")
    @classmethod
    def _sensor(cls, v: Optional[str]) -> Optional[str]:
        from .sensors import get_profile

        if v is not None:
            try:
                get_profile(v)
            except BandProfileError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("scale", "offset")
    @classmethod
    def _radiometry(cls, v: Optional[float], info: Any) -> Optional[float]:
        if v is not None and not math.isfinite(v):
            raise ValueError(
                f"{info.field_name} {v} is not a number a pixel can be calibrated with; give a finite number"
            )
        if info.field_name == "scale" and v == 0:
            raise ValueError(
                "scale 0 would make every pixel the same value; give the sensor's scale (e.g. 0.0001) or remove `scale`"
            )
        return v

    @field_validator("nodata")
    @classmethod
    def _nodata(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and math.isinf(v):
            raise ValueError(f"nodata {v} is not a pixel value; give a finite number (or .nan for float files)")
        return v


class StacConfig(_Model):
    """Scenes from a STAC catalog: the items found, one date per day (or per `window` of days), the items
    of a date composited.
    """

    url: str = Field(
        description=(
            "A STAC API root (searched), or a static catalog, collection, item or item collection JSON (a file "
            "relative "
            "to the config, or a URL)."
        ),
        examples=["https://planetarycomputer.microsoft.com/api/stac/v1"],
    )
    sensor: str = Field(description="Named band profile of the items: naip, sentinel2, landsat8 ...", examples=["naip"])
    asset: Optional[Union[str, dict[str, str]]] = Field(
        None,
        description=(
            "The asset holding the bands (naip: image), or {role: asset} for one band per asset "
            "(default per sensor: sentinel2 B02..B12 / blue..swir22, landsat8 and landsat_tm blue..swir22)."
        ),
        examples=["image"],
    )
    bands: Optional[dict[str, int]] = Field(
        None,
        description="1-based band roles in a multi-band asset (default: the sensor's).",
        examples=[{"red": 1, "green": 2, "blue": 3, "nir": 4}],
    )
    collections: Optional[list[str]] = Field(
        None, description="Collections to search (APIs), or to keep (static catalogs).", examples=[["naip"]]
    )
    datetime: Optional[str] = Field(
        None, description="Time range, e.g. 2009-01-01/2020-12-31 or 2009/2020 (open: 2009/..).", examples=["2009/2020"]
    )
    bbox: Optional[tuple[float, float, float, float]] = Field(
        None,
        description=(
            "[west, south, east, north] in degrees (default: the run's `aoi`, when it is a bbox or a vector file)."
        ),
        examples=[[-98.95, 47.0, -98.9, 47.03]],
    )
    query: Optional[dict[str, Any]] = Field(
        None,
        description="STAC API query extension, e.g. {eo:cloud_cover: {lt: 20}}.",
        examples=[{"eo:cloud_cover": {"lt": 20}}],
    )
    filter: Optional[dict[str, Any]] = Field(None, description="STAC API filter extension (CQL2 JSON).")
    max_items: int = Field(100, ge=1, le=10_000, description="At most this many items (then the dates they fall on).")
    window: int = Field(
        0,
        ge=0,
        le=366,
        description=(
            "Days: the items from a date to N days after it are one date, composited per pixel from their clear "
            "observations and named by its first day (0: one date per UTC day)."
        ),
        examples=[16],
    )
    nodata: Optional[float] = Field(
        None, description="Nodata value when the files and the items declare none.", examples=[0]
    )
    qa: Optional[QaConfig] = Field(
        None,
        description=(
            "QA masking of every scene found (`mask`, `buffer`; `enabled: false` fetches no QA asset). The QA asset "
            "(qa_pixel, SCL or Fmask) is fetched when the items have one."
        ),
        examples=[{"buffer": 2}],
    )
    sign: Optional[Literal["planetary_computer"]] = Field(
        None,
        description=(
            "Sign the asset URLs (Planetary Computer; needs the `planetary-computer` extra: `pip install -e "
            "'.[planetary-computer]'` in a clone)."
        ),
    )


class AoiConfig(_Model):
    """Area of interest: a bounding box with its CRS, or a vector file of polygons."""

    bbox: Optional[tuple[float, float, float, float]] = Field(
        None, description="[minx, miny, maxx, maxy] in `crs`.", examples=[[-98.95, 47.0, -98.90, 47.03]]
    )
    crs: str = Field("EPSG:4326", description="CRS of the bbox.")
    path: Optional[str] = Field(
        None,
        description="GeoPackage / Shapefile / GeoJSON of polygons (any CRS); instead of `bbox`.",
        examples=["lakes.gpkg"],
    )

    @model_validator(mode="after")
    def _one_of(self) -> "AoiConfig":
        if (self.bbox is None) == (self.path is None):
            raise ValueError("give exactly one of `bbox` or `path`")
        if self.bbox is not None and not (self.bbox[0] < self.bbox[2] and self.bbox[1] < self.bbox[3]):
            raise ValueError("bbox must be [minx, miny, maxx, maxy] with min < max")
        return self


class GridConfig(_Model):
    """The grid every date is resampled onto."""

    reference: Optional[_dt.date] = Field(
        None, description="Date whose grid is the reference (default: the first).", examples=[_dt.date(2009, 8, 18)]
    )
    crs: Optional[str] = Field(
        None, description="Resample onto this CRS instead of the reference date's.", examples=["EPSG:32614"]
    )
    resolution: Optional[float] = Field(
        None,
        gt=0,
        description="Pixel size in units of `crs` (or of the reference date's CRS when `crs` is not given).",
        examples=[10.0],
    )
    resampling: Literal["nearest", "bilinear", "cubic", "average"] = Field(
        defaults.RESAMPLING, description="Resampling of bands onto the reference grid (masks always use nearest)."
    )


class ClusteringConfig(_Model):
    """Per-date k-means."""

    k: Union[int, list[int]] = Field(
        defaults.K, description="Number of clusters, or a list of candidates scored by silhouette."
    )
    metric: Union[Metric, Literal["auto"]] = Field(
        defaults.METRIC, description="euclidean | manhattan | chebyshev | auto."
    )
    seed: int = Field(
        defaults.SEED,
        ge=0,
        le=2**32 - 1,
        description="Random seed (0 to 2**32 - 1): same config and seed, same numbers.",
    )
    sample_size: Optional[int] = Field(
        defaults.SAMPLE_SIZE, ge=1000, description="Pixels sampled to fit each model (null = all)."
    )
    n_init: int = Field(defaults.N_INIT, ge=1, description="k-means restarts; the best objective is kept.")
    max_iter: int = Field(defaults.MAX_ITER, ge=1, description="k-means iteration cap.")
    tol: float = Field(defaults.TOL, gt=0, description="Convergence: largest centre shift (in scaled feature units).")
    fit_on: Optional[_dt.date] = Field(
        None,
        description="Fit one model on this date and apply it to every date (same cluster ids).",
        examples=[_dt.date(2009, 8, 18)],
    )
    model: Optional[str] = Field(
        None,
        description="Apply this saved model (model_<date>.json) to every date; relative to the config file.",
        examples=["outputs/model_2009-08-18.json"],
    )

    @model_validator(mode="after")
    def _one_model(self) -> "ClusteringConfig":
        if self.fit_on is not None and self.model is not None:
            raise ValueError("give `fit_on` (fit one model on a date) or `model` (a saved model file), not both")
        return self

    @field_validator("k")
    @classmethod
    def _k(cls, v: Union[int, list[int]]) -> Union[int, list[int]]:
        ks = v if isinstance(v, list) else [v]
        if not ks or any(k < 2 for k in ks):
            raise ValueError("k must be >= 2 (one cluster cannot separate water from land)")
        return v


class LabellingConfig(_Model):
    """Which clusters are water."""

    method: Literal["auto", "clusters"] = Field(
        defaults.LABELLING_METHOD, description="auto: from the clusters' spectra; clusters: the ids in `water`."
    )
    water: Optional[list[int]] = Field(
        None, description="With method: clusters, the cluster ids that are water.", examples=[[0]]
    )

    @model_validator(mode="after")
    def _water_ids(self) -> "LabellingConfig":
        if self.method == "clusters" and not self.water:
            raise ValueError("method: clusters needs `water: [ids]`")
        if self.method == "auto" and self.water:
            raise ValueError("`water` ids are only used with method: clusters")
        return self


class OutputConfig(_Model):
    """What to write, and where."""

    dir: str = Field("outputs", description="Output folder, relative to the config file.")

    @field_validator("dir")
    @classmethod
    def _dir(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("empty folder name (it would write into the config's folder); give a folder, e.g. outputs")
        return v

    polygons: bool = Field(True, description="Write water polygons (water.gpkg).")
    formats: list[Literal["gpkg", "shp", "geojson", "gdb"]] = Field(
        ["gpkg"],
        description=(
            "Vector formats: gpkg (water.gpkg), shp (water_shp/), geojson (water_geojson/, EPSG:4326), gdb (water.gdb)."
        ),
    )
    min_area_m2: Optional[float] = Field(
        0.0,
        ge=0,
        description=(
            "Drop polygons smaller than this (m2); 0 keeps all; null = 4 pixels' area. Rasters are not filtered."
        ),
    )
    simplify_px: float = Field(
        1.0, ge=0, description="Polygon simplification tolerance in pixels (topology preserved; 0 = exact pixel edges)."
    )
    report: bool = Field(True, description="Write report.html, timeseries.png/csv and quicklook PNGs.")


class WaterbodiesConfig(_Model):
    """Waterbodies (2+ dates): each lake and pond with a stable id and its wet area per date
    (rs_change.waterbody; the defaults suit 2-20 dates, see docs/products.md).
    """

    enabled: bool = Field(
        True, description="Find waterbodies (the `waterbodies` layer, waterbodies.csv) in runs of 2+ dates."
    )
    core_share: float = Field(
        defaults.WB_CORE_SHARE,
        gt=0,
        le=1,
        description=("A waterbody needs a core pixel: water on at least this share of the dates it was observed on."),
    )
    extent_share: float = Field(
        defaults.WB_EXTENT_SHARE,
        gt=0,
        le=1,
        description=(
            "A pixel is in a waterbody's extent when water on at least this share of its observed dates (<= "
            "core_share)."
        ),
    )
    min_observations: int = Field(
        defaults.WB_MIN_OBSERVATIONS, ge=1, description="Dates a core pixel must have been observed on."
    )
    min_area_m2: Optional[float] = Field(
        None,
        ge=0,
        description=(f"Smallest waterbody extent (m2 of ground); null = {defaults.WB_MIN_AREA_PX} pixels' mean area."),
        examples=[1000],
    )
    max_invalid_pct: float = Field(
        defaults.WB_MAX_INVALID_PCT,
        ge=0,
        le=100,
        description=("wet_pct is left empty on a date when more than this % of the waterbody was unobserved."),
    )

    @model_validator(mode="after")
    def _shares(self) -> "WaterbodiesConfig":
        if self.extent_share > self.core_share:
            raise ValueError(
                f"extent_share ({self.extent_share}) is above core_share ({self.core_share}); "
                "the extent must take in the core: give extent_share <= core_share"
            )
        return self


class ComputeConfig(_Model):
    """How the work is run."""

    scheduler: str = Field(
        "threads", description="threads | processes | synchronous | tcp://host:port (dask.distributed)."
    )
    chunk_size: int = Field(1024, ge=64, le=16384, description="Block size in pixels for windowed processing.")
    workers: Optional[int] = Field(None, ge=1, le=1024, description="Threads (default: all cores).", examples=[4])
    gdal_cache_mb: int = Field(
        256, ge=16, description="GDAL block cache per process, MB (GDAL's own default is 5% of RAM)."
    )
    max_pixels: int = Field(MAX_PIXELS, ge=1, description="Limit: pixels of the reference grid (after the AOI crop).")
    max_write_gb: float = Field(
        MAX_WRITE_GB,
        gt=0,
        description="Limit: GB of rasters a run may write (uncompressed estimate, staging included).",
    )
    max_k: int = Field(MAX_K, ge=2, description="Limit: clusters per date (`clustering.k`).")
    max_k_pixels: int = Field(
        MAX_K_PIXELS, ge=1, description="Limit: k x pixels sampled per date (the k-means distance work and memory)."
    )
    max_n_init: int = Field(MAX_N_INIT, ge=1, description="Limit: k-means restarts (`clustering.n_init`).")
    max_iterations: int = Field(MAX_ITERATIONS, ge=1, description="Limit: k-means iterations (`clustering.max_iter`).")
    max_k_candidates: int = Field(
        MAX_K_CANDIDATES,
        ge=1,
        description="Limit: candidate models per date (the k list times the metrics of `metric: auto`).",
    )

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v: str) -> str:
        if v not in ("threads", "processes", "synchronous") and "://" not in v:
            raise ValueError("give threads, processes, synchronous or a dask scheduler address such as tcp://host:8786")
        return v


class RunConfig(_Model):
    """A whole run: scenes, area of interest, and one section per stage.

    Parameters
    ----------
    scenes : list of SceneConfig
        One entry per date (``date``, ``path``, ``sensor`` or ``bands``...).
    aoi, grid, clustering, labelling, output, compute, waterbodies
        One section per stage; see ``rs-change init`` for every key and its default.

    Examples
    --------
    >>> cfg = RunConfig.from_text("scenes: [{date: 2009-08-18, path: a.tif, sensor: naip}]")
    >>> cfg.clustering.k, cfg.scenes[0].sensor
    (3, 'naip')
    """

    scenes: list[SceneConfig] = Field(
        default_factory=list,
        description=("One entry per date, oldest first (two or more for change); or none, with a `stac:` block."),
    )
    stac: Optional[StacConfig] = Field(
        None,
        description=(
            "Find the scenes in a STAC catalog instead of listing them (`rs-change validate` lists what it finds)."
        ),
    )
    aoi: Optional[AoiConfig] = Field(
        None,
        description=(
            "Area of interest (default: the whole reference grid): a bbox with its CRS, or a vector file (`aoi: "
            "lakes.gpkg`)."
        ),
    )
    grid: GridConfig = GridConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    labelling: LabellingConfig = LabellingConfig()
    output: OutputConfig = OutputConfig()
    compute: ComputeConfig = ComputeConfig()
    waterbodies: WaterbodiesConfig = WaterbodiesConfig()
    base_dir: Path = Field(Path("."), exclude=True, description="Folder that relative paths are resolved against.")

    @field_validator("aoi", mode="before")
    @classmethod
    def _aoi_path(cls, v: Any) -> Any:
        return {"path": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _dates(self) -> "RunConfig":
        if not self.scenes and self.stac is None:
            raise ValueError("give `scenes` (one entry per date) or a `stac:` block that finds them")
        if self.scenes and self.stac is not None:
            raise ValueError("give `scenes` or a `stac:` block, not both")
        seen: set[_dt.date] = set()
        for s in self.scenes:
            if s.date in seen:
                raise ValueError(f"date {s.date} appears twice in `scenes`; give each date once")
            seen.add(s.date)
        for a, b in zip(self.scenes, self.scenes[1:]):
            if b.date < a.date:  # change is first -> last date: out of order it would run backwards in time
                raise ValueError(
                    f"scenes: {b.date} is listed after {a.date}; list the scenes in date order (oldest first)"
                )
        paths: dict[str, _dt.date] = {}
        for s in self.scenes:
            for f in s.paths():
                key = self.resolve_input(f)
                p = Path(key)
                if not is_remote(key) and p.exists():
                    key = str(p.resolve())
                if key in paths and paths[key] != s.date:
                    raise ValueError(f"scenes: {paths[key]} and {s.date} both read {f}; give each date its own file")
                paths[key] = s.date
        for key, value in (
            ("aoi.path", self.aoi.path if self.aoi else None),
            ("clustering.model", self.clustering.model),
        ):
            target = self.resolve(value) if value else None
            if target is not None and target.exists() and not (target.is_file() or target.is_dir()):
                # a FIFO or device: refused, not read
                raise ValueError(f"{key}: {target} is not a regular file (a FIFO, device or socket); give a file")
        ks = self.clustering.k if isinstance(self.clustering.k, list) else [self.clustering.k]
        if max(ks) > self.compute.max_k:
            raise ValueError(
                f"clustering.k: k={max(ks)} is above the limit of {self.compute.max_k} clusters per date; "
                "lower clustering.k, or raise compute.max_k if you mean it"
            )
        if self.clustering.sample_size is not None:
            self._check_k_pixels(max(ks), self.clustering.sample_size)
        self._check_fit_work(ks)
        if self.stac is not None:
            return self  # the dates are known once the catalog is read (rs_change.stac.expand checks them then)
        if self.grid.reference is not None and self.grid.reference not in seen:
            raise ValueError(f"grid.reference {self.grid.reference} is not one of the scenes' dates")
        if self.clustering.fit_on is not None and self.clustering.fit_on not in seen:
            raise ValueError(f"clustering.fit_on {self.clustering.fit_on} is not one of the scenes' dates")
        return self

    def _check_k_pixels(self, k: int, pixels: int) -> None:
        if k * pixels > self.compute.max_k_pixels:
            raise ConfigError(
                f"clustering: k={k} x {pixels:,} sampled pixels = {k * pixels:,}, above the limit of "
                f"{self.compute.max_k_pixels:,} (compute.max_k_pixels); lower clustering.k or clustering.sample_size, "
                "or raise compute.max_k_pixels if you mean it"
            )

    def _check_fit_work(self, ks: list[int]) -> None:
        """k-means restarts, iterations and candidate models within the ``compute.max_*`` limits."""
        c, cl = self.compute, self.clustering
        if cl.n_init > c.max_n_init:
            raise ConfigError(
                f"clustering.n_init: {cl.n_init:,} restarts, above the limit of {c.max_n_init:,} "
                "(compute.max_n_init); lower clustering.n_init, or raise compute.max_n_init if you mean it"
            )
        if cl.max_iter > c.max_iterations:
            raise ConfigError(
                f"clustering.max_iter: {cl.max_iter:,} iterations, above the limit of {c.max_iterations:,} "
                "(compute.max_iterations); lower clustering.max_iter, or raise compute.max_iterations if you mean it"
            )
        n = len(set(ks)) * (3 if cl.metric == "auto" else 1)
        if n > c.max_k_candidates:
            raise ConfigError(
                f"clustering.k: {n} candidate models per date ({len(set(ks))} values of k"
                + (" x 3 metrics of `metric: auto`" if cl.metric == "auto" else "")
                + f"), above the limit of {c.max_k_candidates} (compute.max_k_candidates); give fewer k, "
                "or raise compute.max_k_candidates if you mean it"
            )

    def check_costs(self, shape: tuple[int, int], write: bool = True) -> None:
        """Refuse a run whose estimated cost is above the ``compute.max_*`` limits: pixels of the
        reference grid ``shape`` (after the AOI crop), GB of rasters written (uncompressed, staging
        included) and k x sampled pixels.  One :class:`ConfigError` line naming the key to raise.
        """
        h, w = int(shape[0]), int(shape[1])
        px, c = h * w, self.compute
        if px > c.max_pixels:
            raise ConfigError(
                f"grid: the reference grid would be {h:,} x {w:,} = {px:,} pixels, above the limit of {c.max_pixels:,} "
                "(compute.max_pixels); check grid.resolution and aoi, or raise compute.max_pixels if you mean it"
            )
        if write:
            n = len(self.scenes)
            per_px = 2 * (
                2 * n + (n >= 2) + (n >= 3) * (n + 1)
            )  # water + cluster ids per date, change, series; staged + COG
            per_px += 6 * (n >= 2 and self.waterbodies.enabled)  # waterbody classes, labels (int32), ids: staged only
            gb = px * per_px / 1e9
            if gb > c.max_write_gb:
                raise ConfigError(
                    f"output: the rasters of {n} date(s) on {px:,} pixels would take up to {gb:,.0f} GB, above the "
                    "limit of "
                    f"{c.max_write_gb:g} GB (compute.max_write_gb); crop with aoi, coarsen grid.resolution, use "
                    "--summary-only, "
                    "or raise compute.max_write_gb if you mean it"
                )
        ks = self.clustering.k if isinstance(self.clustering.k, list) else [self.clustering.k]
        sample = px if self.clustering.sample_size is None else min(px, self.clustering.sample_size)
        self._check_k_pixels(max(ks), sample)

    # -- paths --------------------------------------------------------------------------------
    def resolve(self, path: str | Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(os.path.normpath(self.base_dir / p))

    def resolve_input(self, path: str) -> str:
        """A scene's path as GDAL is given it: a URL or ``/vsi...`` path unchanged
        (:func:`rs_change.remote.is_remote`), a local path relative to the config file's folder.
        """
        return str(path) if is_remote(path) else str(self.resolve(path))

    @property
    def output_dir(self) -> Path:
        """The output folder, resolved against the config's folder."""
        return self.resolve(self.output.dir)

    # -- YAML ---------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> "RunConfig":
        """Read and validate a YAML config; raise :class:`ConfigError` with one clear line."""
        path = Path(path)
        text = read_config_text(path)
        return cls.from_text(text, base_dir=path.resolve().parent, source=str(path))

    @classmethod
    def from_text(cls, text: str, base_dir: str | Path = ".", source: str = "<config>") -> "RunConfig":
        """Validate a config from YAML text; a one-line :class:`ConfigError` names the problem."""
        data = parse_yaml(text, source)
        return cls.from_dict(data, base_dir=base_dir, source=source)

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | Path = ".", source: str = "<config>") -> "RunConfig":
        """Validate a config from a mapping; a one-line :class:`ConfigError` names the problem."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a config is a YAML mapping with at least `scenes:`; see `rs-change init`")
        try:
            cfg = cls.model_validate({**data, "base_dir": Path(base_dir)})
        except ValidationError as exc:
            raise ConfigError(f"{source}: {format_validation_error(exc)}") from None
        return cfg

    def to_yaml(self) -> str:
        """The config as YAML (the form written next to the outputs)."""
        data = self.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False)


def format_validation_error(exc: ValidationError) -> str:
    """One line for the first problem of a :class:`RunConfig` validation error: the key, what is wrong, the fix.

    An unknown key is reported before a missing one: a misspelt key (``pth:``) makes both, and
    "unknown key `pth`; did you mean `path`?" is the useful line.
    """
    return validation_message(exc, RunConfig)


def template() -> str:
    """The commented YAML that ``rs-change init`` writes, generated from the models above: every
    section and key with its description as a comment and its default as the value; keys without
    a default are commented out (with the field's example), and the scenes are
    :class:`SceneConfig`'s examples (the sample NAIP tiles: valid as written; replace their
    ``date`` and ``path`` with yours).
    """
    return render(RunConfig, SceneConfig, _SCENE_EXAMPLES)
