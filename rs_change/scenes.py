"""EDGE: one date's scene, whatever form it comes in.

* :func:`open_scene`: a path -> :class:`~rs_change.readers.SceneSource` (a multi-band raster file
  through :func:`~rs_change.readers.open_geotiff`, or the MODIS forms of :mod:`rs_change.modis`:
  a folder or glob of per-layer files, an HDF4 granule);
* :func:`read_scene`: a path -> a :class:`Scene` in memory (bands, observed mask, georeferencing);
* :func:`scene_input`: scene data of any kind the API accepts (a :class:`Scene`, an
  ``xarray.DataArray``, a numpy array (band, y, x), a mapping role -> array) -> bands in physical
  units and the observed mask (:class:`SceneInput`), and :func:`output_like`: a result back in the
  kind of the input (a DataArray in, a DataArray out).

The API (:mod:`rs_change.api`) and :meth:`rs_change.model.WaterModel.predict` take their inputs
through here.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

from . import defaults
from .errors import BandProfileError, GeoreferenceError
from .grid import Grid, as_crs
from .qa import QA_ROLES
from .readers import SceneSource, open_geotiff
from .remote import is_remote
from .sensors import BandProfile, custom_profile, get_profile, raw_to_bands

log = logging.getLogger(__name__)


def open_scene(
    path: str | Path,
    profile: BandProfile,
    date: _dt.date,
    nodata: Optional[float] = None,
) -> SceneSource:
    """Open one date: a multi-band raster file, or (MODIS) a folder / glob of per-layer files or
    an HDF4 granule.  Dispatches on the path; see :mod:`rs_change.modis` for the MODIS forms.  A URL
    (:func:`rs_change.remote.is_remote`) is one raster file read by range requests.
    """
    s = str(path)
    if is_remote(s):
        return open_geotiff(s, profile, date, nodata)
    p = Path(path)
    modis_profile = profile.name.lower().startswith(("modis", "mod09", "myd09"))  # bands by description
    if modis_profile or p.is_dir() or any(ch in s for ch in "*?[") or p.suffix.lower() in (".hdf", ".h4", ".hdf4"):
        from . import modis  # noqa: PLC0415  (optional reader, imported on demand)

        return modis.open_source(p, profile, date, nodata)
    return open_geotiff(p, profile, date, nodata)


SceneData = Any  # Scene | xarray.DataArray | numpy.ndarray | Mapping[str, numpy.ndarray]


# ---------------------------------------------------------------------------------------------
# Scene
# ---------------------------------------------------------------------------------------------
@dataclass
class Scene:
    """Bands of one scene in physical units (DN or reflectance) with their georeferencing.

    Attributes
    ----------
    bands : dict of str to numpy.ndarray of float32, shape (h, w)
        Role (``red``, ``green``, ``blue``, ``nir``, ``swir1``...) -> band.
    valid : numpy.ndarray of bool, shape (h, w)
        True where the pixel is observed.
    transform : affine.Affine
    crs : pyproj.CRS
    profile : BandProfile
    date : datetime.date or None
    path : str
    source : SceneSource or None
        The file it was read from (set by :func:`read_scene`): :func:`fit_model` samples the
        file through it exactly as ``rs-change run`` does (decimated read or warp onto the
        decimated grid), so the fitted model is the run's.
    resampling : str, default "bilinear"
        How the file was resampled onto ``transform``/``crs``.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> s = Scene(
    ...     {"green": np.ones((2, 2), np.float32)},
    ...     np.ones((2, 2), bool),
    ...     Affine(10, 0, 0, 0, -10, 0),
    ...     "EPSG:32614")
    >>> s.shape
    (2, 2)
    """

    bands: dict[str, np.ndarray]
    valid: np.ndarray
    transform: Any
    crs: Any
    profile: BandProfile = field(default_factory=lambda: BandProfile("custom", {}))
    date: Optional[_dt.date] = None
    path: str = ""
    source: Any = field(default=None, repr=False, compare=False)
    resampling: str = defaults.RESAMPLING

    def __post_init__(self) -> None:
        if self.crs is not None:
            self.crs = as_crs(self.crs)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return tuple(self.valid.shape)

    @property
    def grid(self) -> Grid:
        """The scene's :class:`~rs_change.grid.Grid`."""
        return Grid(self.shape, self.transform, self.crs)

    def to_xarray(self) -> Any:
        """The bands as an ``xarray.DataArray`` (band, y, x), float32, NaN where unobserved, with
        rioxarray georeferencing and the roles as band coordinates.

        Examples
        --------
        >>> import numpy as np
        >>> from affine import Affine
        >>> s = Scene(
        ...     {"green": np.ones((2, 3), np.float32)},
        ...     np.ones((2, 3), bool),
        ...     Affine(10, 0, 0, 0, -10, 0),
        ...     "EPSG:32614")
        >>> da = s.to_xarray()
        >>> da.dims, da.band.values.tolist()
        (('band', 'y', 'x'), ['green'])
        """
        roles = list(self.bands)
        arr = np.stack([np.where(self.valid, self.bands[r], np.nan).astype(np.float32) for r in roles])
        da = to_dataarray(arr, self.transform, self.crs, dim0=("band", roles), nodata=np.nan)
        da.attrs.update({"profile": self.profile.name, "date": self.date.isoformat() if self.date else ""})
        return da


def read_scene(
    path: Union[str, Path],
    sensor: Optional[str] = None,
    bands: Optional[Mapping[str, int]] = None,
    *,
    date: Union[str, _dt.date, None] = None,
    like: Union["Scene", Grid, None] = None,
    resampling: str = defaults.RESAMPLING,
    **band_options: Any,
) -> Scene:
    """Read a whole scene (a GeoTIFF, or a MODIS folder / glob / HDF) into memory.

    Parameters
    ----------
    path : str or Path
        The raster (or MODIS folder / glob of per-layer files / ``.hdf``), or a URL read by range
        requests (``https://``, ``s3://``, ``gs://``, ``az://``, ``/vsi...``; :mod:`rs_change.remote`).
    sensor : str, optional
        Named band profile (``naip``, ``modis``, ``landsat8``, ``landsat_tm``, ``sentinel2``...).
    bands : mapping of str to int, optional
        1-based band roles, e.g. ``{"red": 1, "green": 2, "blue": 3, "nir": 4}`` (overrides the
        sensor's).  Give ``sensor`` or ``bands``.
    date : str or datetime.date, optional
        Acquisition date (kept on the scene; names outputs).
    like : Scene or Grid, optional
        Read onto this grid (resampled with ``resampling`` as ``rs-change run`` aligns later
        dates onto the first); default the file's own grid.
    resampling : {"bilinear", "nearest", "cubic", "average"}, default "bilinear"
    **band_options
        ``nodata`` (float: raw nodata value when the file declares none), ``scale`` and ``offset``
        (floats: ``reflectance = DN * scale + offset``, overriding the profile's); any other
        keyword is a ``TypeError``.

    Returns
    -------
    Scene
        Bands float32 (h, w), valid mask, transform, CRS.

    Examples
    --------
    >>> s = read_scene("sample_tiles/naip/m_4709963_se_14_1_20090818.tif", "naip")  # doctest: +SKIP
    >>> sorted(s.bands), s.shape  # doctest: +SKIP
    (['blue', 'green', 'nir', 'red'], (724, 942))
    """
    spec = BandSpec.from_keywords("read_scene", band_options, sensor=sensor, bands=bands)
    profile = spec.profile(where=str(path))
    d = as_date(date) if date is not None else None
    src = open_scene(str(path) if is_remote(path) else Path(path), profile, d or _dt.date(1970, 1, 1), spec.nodata)
    grid = like.grid if isinstance(like, Scene) else (like or src.grid)
    with src.open(grid, resampling) as rd:
        bd, valid = rd.read()  # a QA band (qa_pixel, scl, fmask) has masked its pixels here
    profile = replace(profile, bands={r: b for r, b in profile.bands.items() if r not in QA_ROLES})
    return Scene(bd, valid, grid.transform, grid.crs, profile, d, str(path), src, resampling)


@dataclass(frozen=True)
class BandSpec:
    """How to read a scene's bands: a named ``sensor`` profile and/or 1-based ``bands`` roles, the
    raw ``nodata`` value, and ``scale``/``offset`` overrides (``reflectance = DN * scale + offset``).
    The keywords :func:`read_scene`, :func:`scene_input` and the API functions take, kept together.
    """

    sensor: Optional[str] = None
    bands: Optional[Mapping[str, int]] = None
    nodata: Optional[float] = None
    scale: Optional[float] = None
    offset: Optional[float] = None

    @classmethod
    def from_keywords(cls, caller: str, options: Mapping[str, Any], **given: Any) -> "BandSpec":
        """The spec of a function's keywords (``options`` plus ``given``); a ``TypeError`` naming
        ``caller`` and any keyword that is not one of the spec's fields.
        """
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"{caller}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
        return cls(**{**options, **given})

    def profile(self, where: str = "data") -> BandProfile:
        """The band profile (:func:`band_profile`) of this spec; ``where`` names the data in errors."""
        return band_profile(self.sensor, self.bands, self.scale, self.offset, where=where)


def band_profile(
    sensor: Optional[str],
    bands: Optional[Mapping[str, int]],
    scale: Optional[float],
    offset: Optional[float],
    where: str = "data",
) -> BandProfile:
    """The band profile of ``sensor`` and/or ``bands`` (1-based roles), with ``scale``/``offset`` overrides."""
    if sensor is None and bands is None:
        raise BandProfileError(f"{where}: give `sensor` (a named band profile) or `bands` ({{role: 1-based band}})")
    if bands is not None:
        prof = custom_profile(bands)
        if sensor is not None:
            base = get_profile(sensor)
            only_qa = all(r in QA_ROLES for r in prof.bands)  # {qa_pixel: 8} adds to the sensor's bands
            prof = base.with_overrides(bands={**base.bands, **prof.bands} if only_qa else prof.bands)
    else:
        prof = get_profile(sensor or "")
    return prof.with_overrides(scale=scale, offset=offset)


def as_date(d: Union[str, _dt.date]) -> _dt.date:
    """A date from a ``datetime.date`` or an ISO string."""
    return d if isinstance(d, _dt.date) else _dt.date.fromisoformat(str(d))


# ---------------------------------------------------------------------------------------------
# Input normalisation
# ---------------------------------------------------------------------------------------------
@dataclass
class SceneInput:
    """Scene data as :func:`scene_input` reads it: bands in physical units (role -> (y, x)), the
    observed mask, georeferencing when known, the band profile, and the DataArray it came from.
    """

    bands: dict[str, np.ndarray]
    valid: np.ndarray
    transform: Any
    crs: Any
    profile: BandProfile
    template: Any = None  # a DataArray when the input was one

    @property
    def grid(self) -> Grid:
        """The scene's :class:`~rs_change.grid.Grid`; raises when it has no transform or CRS."""
        if self.transform is None or self.crs is None:
            raise GeoreferenceError(
                "the data has no transform/CRS; pass transform= and crs= (or a georeferenced DataArray)"
            )
        return Grid(self.valid.shape, self.transform, self.crs)


def is_dataarray(obj: Any) -> bool:
    """Whether ``obj`` is an xarray object (without importing xarray)."""
    return type(obj).__module__.startswith("xarray") and hasattr(obj, "dims")


def rio_georef(da: Any) -> tuple[Any, Any]:
    """Transform and CRS of a DataArray (None when it carries none)."""
    try:
        crs = da.rio.crs
        t = da.rio.transform() if crs is not None or ("x" in da.dims and "y" in da.dims) else None
    except Exception:  # rioxarray not importable or no spatial dims
        return None, None
    return t, crs


def scene_input(
    data: SceneData,
    *,
    valid: Optional[np.ndarray] = None,
    transform: Any = None,
    crs: Any = None,
    **band_options: Any,
) -> SceneInput:
    """Scene data of any kind the API accepts (see :mod:`rs_change.api`) -> :class:`SceneInput`:
    band roles from ``sensor``/``bands`` or the data's own names, raw values to physical units and
    the observed mask by :func:`~rs_change.sensors.raw_to_bands`, ``valid`` ANDed in.
    ``band_options`` are :class:`BandSpec`'s fields (``sensor``, ``bands``, ``nodata``, ``scale``,
    ``offset``); any other keyword is a ``TypeError``.
    """
    spec = BandSpec.from_keywords("scene_input", band_options)
    sensor, bands, nodata = spec.sensor, spec.bands, spec.nodata
    if isinstance(data, Scene):
        v = data.valid if valid is None else (data.valid & np.asarray(valid, bool))
        return SceneInput(dict(data.bands), v, data.transform, data.crs, data.profile)
    template = None
    if is_dataarray(data):
        import rioxarray  # noqa: F401  (registers .rio)

        da = data
        if da.ndim != 3:
            raise BandProfileError(f"the DataArray has dims {da.dims}; give (band, y, x)")
        t, c = rio_georef(da)
        transform = transform if transform is not None else t
        crs = crs if crs is not None else c
        coords = [str(v) for v in da[da.dims[0]].values]
        if sensor is None and bands is None:
            if all(not v.lstrip("-").isdigit() for v in coords):
                bands = {v.lower(): i + 1 for i, v in enumerate(coords)}
            else:
                raise BandProfileError(
                    "the DataArray's bands are numbered; name their roles with "
                    "bands={role: 1-based position} or sensor="
                )
        if (
            nodata is None
            and da.rio.nodata is not None
            and not (isinstance(da.rio.nodata, float) and math.isnan(da.rio.nodata))
        ):
            nodata = float(da.rio.nodata)
        if nodata is None and da.rio.encoded_nodata is not None and not np.issubdtype(da.dtype, np.floating):
            nodata = float(da.rio.encoded_nodata)
        raw = np.asarray(da.values)
        template = da
    elif isinstance(data, Mapping):
        raw_map = {str(k).lower(): np.asarray(v) for k, v in data.items()}
        if bands is None and sensor is None:
            bands = {k: i + 1 for i, k in enumerate(raw_map)}
        elif bands is None:
            raise BandProfileError("a {role: array} mapping names its roles already; do not pass sensor=")
        raw = np.stack(list(raw_map.values()))
    else:
        raw = np.asarray(data)
        if raw.ndim != 3:
            raise BandProfileError(f"the array has shape {raw.shape}; give (band, y, x) with sensor= or bands=")
        if sensor is None and bands is None:
            raise BandProfileError("name the array's band roles with sensor= or bands={role: 1-based band}")
    prof = band_profile(sensor, bands, spec.scale, spec.offset)
    prof.check_band_count(raw.shape[0], "data")
    out, v = raw_to_bands({role: raw[b - 1] for role, b in prof.bands.items()}, prof, nodata)
    if valid is not None:
        v &= np.asarray(valid, bool)
    if crs is not None:
        crs = as_crs(crs)
    if transform is not None and not hasattr(transform, "a"):
        from affine import Affine

        transform = Affine.from_gdal(*transform) if len(transform) == 6 else Affine(*transform[:6])
    return SceneInput(out, v, transform, crs, prof, template)


def to_dataarray(
    arr: np.ndarray,
    transform: Any,
    crs: Any,
    dim0: Optional[tuple[str, list[Any]]] = None,
    nodata: Any = None,
    name: Optional[str] = None,
    template: Any = None,
) -> Any:
    """``arr`` ((y, x) or (dim0, y, x)) as a DataArray with rioxarray georeferencing (coordinates of
    ``template`` when given).
    """
    import rioxarray  # noqa: F401
    import xarray as xr

    h, w = arr.shape[-2:]
    if template is not None and "x" in template.dims and "y" in template.dims:
        coords: dict[str, Any] = {"y": template["y"].values, "x": template["x"].values}
    elif transform is not None:
        coords = {
            "y": transform.f + transform.e * (np.arange(h) + 0.5),
            "x": transform.c + transform.a * (np.arange(w) + 0.5),
        }
    else:
        coords = {"y": np.arange(h), "x": np.arange(w)}
    dims: tuple[str, ...] = ("y", "x")
    if dim0 is not None:
        dims = (dim0[0],) + dims
        coords[dim0[0]] = dim0[1]
    da = xr.DataArray(arr, dims=dims, coords=coords, name=name)
    if crs is not None:
        da = da.rio.write_crs(as_crs(crs).to_wkt())
    if transform is not None:
        da = da.rio.write_transform(transform)
    if nodata is not None:
        da = da.rio.write_nodata(nodata)
    return da


def output_like(
    arr: np.ndarray, inp: SceneInput, name: str, nodata: Any = 255, dim0: Optional[tuple[str, list[Any]]] = None
) -> Any:
    """A result in the kind of the input: ``arr`` itself, or a DataArray when the input was one."""
    if inp.template is None:
        return arr
    return to_dataarray(arr, inp.transform, inp.crs, dim0=dim0, nodata=nodata, name=name, template=inp.template)


__all__ = [
    "open_scene",
    "Scene",
    "read_scene",
    "SceneData",
    "SceneInput",
    "scene_input",
    "output_like",
    "to_dataarray",
    "band_profile",
    "as_date",
    "is_dataarray",
    "rio_georef",
]
