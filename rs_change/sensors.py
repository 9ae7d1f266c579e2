"""Band profiles: which band of a file holds which spectral role, and how to scale it.

Pure data, and the pure functions that apply it to raw values (:func:`raw_to_bands`,
:func:`observed_mask`: used on file windows, on tables of 8-bit values and on arrays given to
the API alike).  A profile maps roles (``blue``, ``green``, ``red``, ``nir``, ``swir1``, ``swir2`` and
any others) to 1-based band numbers and says how digital numbers become reflectance.  A profile
with ``scale=None`` is *uncalibrated* (digital numbers, like NAIP): labelling then adapts its
thresholds to the scene instead of using fixed reflectance thresholds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional

import numpy as np

from .errors import BandProfileError, ConfigError

log = logging.getLogger(__name__)

ROLES = ("blue", "green", "red", "nir", "swir1", "swir2")


@dataclass(frozen=True)
class BandProfile:
    """Band roles and radiometry of one kind of file.

    Parameters
    ----------
    name : str
        Profile name (``naip``, ``modis``, ``landsat8``, ``custom`` ...).
    bands : mapping of str to int
        Role -> 1-based band number in the file.
    scale, offset : float, optional
        ``reflectance = DN * scale + offset``; ``scale=None`` means digital numbers (uncalibrated).
    fill : float, optional
        A fill value marking unobserved pixels, besides the file's own nodata.
    valid_range : tuple of float, optional
        Raw values outside ``[lo, hi]`` are unobserved.
    qa : mapping, optional
        Sensor QA settings (used by the MODIS reader).

    Examples
    --------
    >>> p = BandProfile("mine", {"green": 1, "nir": 2}, scale=1e-4)
    >>> p.calibrated, p.with_overrides(scale=2e-4).scale
    (True, 0.0002)
    """

    name: str
    bands: Mapping[str, int]
    scale: Optional[float] = None
    offset: float = 0.0
    fill: Optional[float] = None
    valid_range: Optional[tuple[float, float]] = None
    qa: Mapping[str, object] = field(default_factory=dict)
    #: True: a pixel is unobserved only where *every* band holds the nodata value (products whose
    #: nodata marks a collar, such as NAIP, where a real 0 in one band is dark water).  False
    #: (GDAL's per-band meaning): any band at nodata makes the pixel unobserved.
    nodata_all_bands: bool = False
    #: True: the offset a file declares (a GDAL band offset, or a Sentinel-2 ``BOA_ADD_OFFSET`` /
    #: ``RADIO_ADD_OFFSET`` tag) replaces ``offset`` when the file is opened
    #: (:func:`rs_change.readers.open_geotiff`); an explicit offset turns this off.
    offset_from_file: bool = False
    #: True when ``offset`` was given explicitly (the config's or the API's ``offset``).
    offset_given: bool = False
    #: The data types the product's files hold (``uint8``, ``uint16`` ...); () when any.
    dtypes: tuple[str, ...] = ()
    #: How many bands a stacked file of the product has (NAIP 4, Landsat 8 SR_B1..B7 7); None: any.
    band_count: Optional[int] = None
    #: The product the profile is for, in words (``rs-change validate`` and the docs show it).
    product: str = ""

    @property
    def calibrated(self) -> bool:
        """True when the bands are reflectance after scaling."""
        return self.scale is not None

    def with_overrides(self, **kw: Any) -> "BandProfile":
        """A copy with the given fields replaced (``None`` values are ignored).  An ``offset``
        given here is explicit: it wins over any offset the file declares.
        """
        kw = {k: v for k, v in kw.items() if v is not None}
        if "offset" in kw:
            kw.setdefault("offset_from_file", False)
            kw.setdefault("offset_given", True)
        return replace(self, **kw)

    def check_band_count(self, count: int, path: str) -> None:
        """Raise :class:`BandProfileError` when the file has fewer bands than the profile needs."""
        need = max(self.bands.values())
        if need > count:
            roles = ", ".join(f"{r}: {b}" for r, b in self.bands.items() if b > count)
            given = "the scene's `bands:`" if self.name == "custom" else f"`sensor: {self.name}`"
            fix = ("give band numbers from 1 to the file's band count in `bands:`" if self.name == "custom"
                   else "check `sensor:`, or name the file's bands with `bands: {role: number}`")
            raise BandProfileError(f"{path}: {given} needs band {need} ({roles}) but the file has {count} band(s); "
                                   f"{fix}")


#: Landsat Collection 2 Level-2 surface reflectance: reflectance = DN * 2.75e-5 - 0.2, fill 0,
#: valid 7273-43636 (USGS Landsat 8-9 / 4-7 Collection 2 Level-2 Science Product Guides).
_C2L2: dict[str, Any] = dict(scale=2.75e-5, offset=-0.2, fill=0, valid_range=(7273, 43636), dtypes=("uint16",))

PROFILES: dict[str, BandProfile] = {
    # USDA NAIP: uint8 digital numbers, R G B NIR.
    "naip": BandProfile(
        "naip",
        {"red": 1, "green": 2, "blue": 3, "nir": 4},
        nodata_all_bands=True,
        dtypes=("uint8",),
        band_count=4,
        product="USDA NAIP aerial imagery, 8-bit digital numbers (R, G, B, NIR)",
    ),
    # MODIS MOD09GA/MYD09GA/MOD09A1 surface reflectance in band order b01..b07 (e.g. an Earth
    # Engine export): b01 red, b02 nir, b03 blue, b04 green, b05 1240 nm, b06 swir1, b07 swir2.
    "modis": BandProfile(
        "modis",
        {"red": 1, "nir": 2, "blue": 3, "green": 4, "swir1": 6, "swir2": 7},
        scale=1e-4,
        fill=-28672,
        valid_range=(-100, 16000),
        dtypes=("int16",),
        product="MODIS MOD09/MYD09 surface reflectance x 10000, bands b01..b07",
    ),
    # MOD09Q1 / MOD09GQ: 250 m red and NIR only.
    "modis250": BandProfile(
        "modis250",
        {"red": 1, "nir": 2},
        scale=1e-4,
        fill=-28672,
        valid_range=(-100, 16000),
        dtypes=("int16",),
        product="MODIS MOD09Q1/MOD09GQ 250 m surface reflectance x 10000 (red, NIR)",
    ),
    # Landsat 8/9 Collection 2 Level-2 surface reflectance, bands SR_B1..SR_B7 stacked in order.
    "landsat8": BandProfile(
        "landsat8",
        {"blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7},
        band_count=7,
        product="Landsat 8/9 OLI Collection 2 Level-2 surface reflectance (SR_B1..SR_B7)",
        **_C2L2,
    ),
    # Landsat 4-7 TM/ETM+ Collection 2 Level-2 SR_B1..SR_B5, SR_B7 stacked in order (6 bands).
    "landsat_tm": BandProfile(
        "landsat_tm",
        {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 6},
        band_count=6,
        product="Landsat 4-7 TM/ETM+ Collection 2 Level-2 surface reflectance (SR_B1..SR_B5, SR_B7)",
        **_C2L2,
    ),
    # Landsat Level-1 digital numbers (uncalibrated: thresholds adapt to the scene, as for NAIP).
    # OLI: 16-bit (Collection 2 L1 B1..B7); TM/ETM+: 8-bit (B1..B7 with the thermal B6 in between,
    # as older archives and Collection 1 L1 stacks hold them).
    "landsat8_dn": BandProfile(
        "landsat8_dn",
        {"blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7},
        nodata_all_bands=True,
        dtypes=("uint16",),
        band_count=7,
        product="Landsat 8/9 OLI Level-1 digital numbers (B1..B7), uncalibrated",
    ),
    "landsat_tm_dn": BandProfile(
        "landsat_tm_dn",
        {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 7},
        nodata_all_bands=True,
        dtypes=("uint8",),
        band_count=7,
        product="Landsat 4-7 TM/ETM+ Level-1 8-bit digital numbers (B1..B7, thermal B6 unused), uncalibrated",
    ),
    # Top-of-atmosphere reflectance already computed (0-1 floats, e.g. Earth Engine's Landsat TOA).
    "landsat8_toa": BandProfile(
        "landsat8_toa",
        {"blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7},
        scale=1.0,
        dtypes=("float32", "float64"),
        band_count=7,
        product="Landsat 8/9 OLI top-of-atmosphere reflectance as 0-1 floats (B1..B7)",
    ),
    "landsat_tm_toa": BandProfile(
        "landsat_tm_toa",
        {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 7},
        scale=1.0,
        dtypes=("float32", "float64"),
        band_count=7,
        product="Landsat 4-7 TM/ETM+ top-of-atmosphere reflectance as 0-1 floats (B1..B7)",
    ),
    # Sentinel-2 L1C or L2A stacked B02 B03 B04 B08 B11 B12, reflectance x 10000.  Offset 0 unless
    # the file declares one: products of processing baseline >= 04.00 add 1000 to every DN
    # (BOA_ADD_OFFSET / RADIO_ADD_OFFSET = -1000, i.e. -0.1); exports that drop that tag need the
    # scene's `offset: -0.1`.
    "sentinel2": BandProfile(
        "sentinel2",
        {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 6},
        scale=1e-4,
        offset=0.0,
        fill=0,
        offset_from_file=True,
        dtypes=("uint16",),
        product="Sentinel-2 L1C (TOA) or L2A (surface) reflectance x 10000, B02 B03 B04 B08 B11 B12",
    ),
    # Harmonized Landsat Sentinel-2 (HLS v2 L30/S30) surface reflectance x 10000, fill -9999,
    # stacked blue green red NIR SWIR1 SWIR2 (L30 B02-B07, S30 B02 B03 B04 B8A B11 B12).
    "hls": BandProfile(
        "hls",
        {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 6},
        scale=1e-4,
        fill=-9999,
        dtypes=("int16",),
        product="HLS v2 L30/S30 surface reflectance x 10000 (blue .. SWIR2)",
    ),
}
PROFILES["landsat"] = replace(PROFILES["landsat8"], name="landsat")
# the product level spelt out: `_sr` the Collection 2 Level-2 surface reflectance of the short name
PROFILES["landsat8_sr"] = replace(PROFILES["landsat8"], name="landsat8_sr")
PROFILES["landsat_tm_sr"] = replace(PROFILES["landsat_tm"], name="landsat_tm_sr")
PROFILES["landsat_etm_dn"] = replace(PROFILES["landsat_tm_dn"], name="landsat_etm_dn")
PROFILES["sentinel2_l1c"] = replace(PROFILES["sentinel2"], name="sentinel2_l1c")
PROFILES["sentinel2_l2a"] = replace(PROFILES["sentinel2"], name="sentinel2_l2a")
# MODIS product names as aliases (state QA flags: rs_change.modis.QA_DEFAULTS, overridden by a scene's `qa:`).
for _alias in ("mod09ga", "myd09ga", "mod09a1", "myd09a1"):
    PROFILES[_alias] = replace(PROFILES["modis"], name=_alias)
for _alias in ("mod09q1", "myd09q1", "mod09gq", "myd09gq"):
    PROFILES[_alias] = replace(PROFILES["modis250"], name=_alias)

#: The profile that reads the digital numbers of a product whose named profile expects reflectance
#: (named by the one-line error of :func:`check_raw_values`).
DN_PROFILE = {
    "landsat8": "landsat8_dn",
    "landsat8_sr": "landsat8_dn",
    "landsat": "landsat8_dn",
    "landsat_tm": "landsat_tm_dn",
    "landsat_tm_sr": "landsat_tm_dn",
}


#: Bands whose per-pixel median is tested by :func:`check_reflectance` (all bands when none is there).
CHECK_ROLES = ("blue", "green", "red", "nir")
#: :func:`check_reflectance` refuses a scene when more than this fraction of observed pixels is off.
CHECK_FRACTION = 0.5
#: Pixels :func:`check_reflectance` looks at (an even subset of the observed ones).
CHECK_PIXELS = 100_000


def check_reflectance(bands: Mapping[str, np.ndarray], valid: np.ndarray, profile: BandProfile, label: str) -> None:
    """Refuse a scene whose scale/offset give impossible reflectance.

    A pixel is off when the median of its visible and NIR bands (:data:`CHECK_ROLES`; every band
    when the scene has none of them) is below 0 or above 1.  Real scenes have dark water below a
    few percent and cloud or snow near 1 in places, but not in most pixels: when more than
    :data:`CHECK_FRACTION` of the observed pixels are below 0 (or above 1) the scale or offset is
    wrong (an offset of -0.1 on a Sentinel-2 L1C product, a missing ``scale``), and a run would
    report nonsense.  Uncalibrated profiles (``scale=None``) and scenes without observed pixels
    pass.  Pure.

    Parameters
    ----------
    bands : mapping of role to array
        Bands after scale and offset (all one shape).
    valid : bool array
        Observed pixels.
    profile : BandProfile
        The scene's profile (its ``scale`` and ``offset`` are named in the message).
    label : str
        The scene, for the message (its file).

    Raises
    ------
    ConfigError
        One line naming the scene, the fraction, the scale and offset used, and the keys to set.

    Examples
    --------
    >>> p = BandProfile("s2", {"green": 1, "nir": 2}, scale=1e-4, offset=-0.1)
    >>> b = {"green": np.full(4, 0.02, np.float32), "nir": np.full(4, -0.05, np.float32)}
    >>> check_reflectance(b, np.ones(4, bool), p, "s2.tif")
    Traceback (most recent call last):
    ...
    rs_change.errors.ConfigError: scene s2.tif: 100% of observed pixels have reflectance < 0 after scale 0.0001 ...
    """
    if profile.scale is None or not bands:
        return
    idx = np.flatnonzero(np.asarray(valid).ravel())
    if len(idx) == 0:
        return
    if len(idx) > CHECK_PIXELS:
        idx = idx[:: -(-len(idx) // CHECK_PIXELS)]
    roles = [r for r in CHECK_ROLES if r in bands] or list(bands)
    vals = np.stack([np.asarray(bands[r]).ravel()[idx] for r in roles]).astype(np.float32, copy=False)
    med = np.median(vals, axis=0)
    ok = np.isfinite(med)
    n = int(ok.sum())
    if n == 0:
        return
    low, high = float((med[ok] < 0).sum()) / n, float((med[ok] > 1).sum()) / n
    how = f"after scale {profile.scale:g} and offset {profile.offset:g}"
    if low > CHECK_FRACTION:
        raise ConfigError(
            f"scene {label}: {100 * low:.0f}% of observed pixels have reflectance < 0 {how}; set the scene's "
            "`offset:` (0 for Sentinel-2 L1C and L2A before baseline 04.00) or `scale:`"
        )
    if high > CHECK_FRACTION:
        raise ConfigError(
            f"scene {label}: {100 * high:.0f}% of observed pixels have reflectance > 1 {how}; set the scene's "
            "`scale:` (e.g. 0.0001 for reflectance x 10000) or `offset:`, or give `bands:` without `sensor:` "
            "for uncalibrated digital numbers"
        )


def profile_warnings(profile: BandProfile, dtype: str, count: Optional[int]) -> list[str]:
    """What a file's header says against its profile: a band count (``count``; None for one file
    per band) or data type the product does not have.  Pure; one sentence per mismatch, naming
    the keys to check.

    Examples
    --------
    >>> print(profile_warnings(PROFILES["naip"], "uint16", 6)[0])  # doctest: +NORMALIZE_WHITESPACE
    6 bands where the 'naip' profile (USDA NAIP aerial imagery, 8-bit digital numbers (R, G, B, NIR))
    expects 4; check `sensor`, or name the bands with `bands:`
    """
    out = []
    what = f"the '{profile.name}' profile" + (f" ({profile.product})" if profile.product else "")
    if count is not None and profile.band_count is not None and count != profile.band_count:
        out.append(
            f"{count} bands where {what} expects {profile.band_count}; check `sensor`, or name the bands with `bands:`"
        )
    if profile.dtypes and dtype not in profile.dtypes:
        out.append(
            f"data type {dtype} where {what} expects {' or '.join(profile.dtypes)}; check `sensor` "
            "(or `scale`, `offset`, `valid_range`)"
        )
    return out


def value_range(
    raws: Mapping[str, np.ndarray], inside: np.ndarray, profile: BandProfile, nodata: Optional[float] = None
) -> tuple[int, Optional[float], Optional[float], float]:
    """The values of the pixels that hold data (inside the scene, not nodata, finite): (how many,
    lowest, highest, fraction of them that the profile's fill value or valid range makes
    unobserved).  Pure; (0, None, None, 0.0) without data.
    """
    data = np.asarray(inside, bool) & observed_mask(raws, replace(profile, fill=None, valid_range=None), nodata)
    for raw in raws.values():
        if raw.dtype.kind == "f":
            data &= np.isfinite(raw)
    n = int(data.sum())
    if n == 0:
        return 0, None, None, 0.0
    lo = min(float(np.min(r[data])) for r in raws.values())
    hi = max(float(np.max(r[data])) for r in raws.values())
    kept = observed_mask({k: v for k, v in raws.items()}, replace(profile, nodata_all_bands=False), None)[data]
    return n, lo, hi, float((~kept).sum()) / n


def _num(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.4g}"


def check_raw_values(
    raws: Mapping[str, np.ndarray], inside: np.ndarray, profile: BandProfile, nodata: Optional[float], label: str
) -> list[str]:
    """Check the raw values of a sample (pass 1's decimated read, ``validate``'s small read)
    against what the profile expects.

    Returns warnings (values beyond the range of the data type the product has, e.g. 16-bit
    values given to the 8-bit ``naip`` profile). Raises :class:`BandProfileError` (one line naming
    the profile, what was found and the keys to set) when more than :data:`CHECK_FRACTION` of
    the pixels that hold data are outside the profile's valid range or at its fill value: a
    profile for another product level (8-bit Landsat DNs given ``landsat_tm``, whose Collection 2
    Level-2 range 7273-43636 rejects every DN), which would otherwise stop as "every pixel is
    nodata" or measure a fraction of the scene.  Pure.
    """
    n, lo, hi, off = value_range(raws, inside, profile, nodata)
    if n == 0:
        return []
    dtype = str(next(iter(raws.values())).dtype)
    found = f"found values {_num(lo)}-{_num(hi)}, {dtype}"  # type: ignore[arg-type]
    if off > CHECK_FRACTION:
        if profile.valid_range is not None:
            lo, hi = profile.valid_range
            rule = f"outside the '{profile.name}' profile's valid range {_num(lo)}-{_num(hi)}"
        else:
            rule = f"at the '{profile.name}' profile's fill value {_num(profile.fill)}"  # type: ignore[arg-type]
        dn = DN_PROFILE.get(profile.name)
        hint = f"for digital numbers use `sensor: {dn}`; otherwise set" if dn else "set"
        raise BandProfileError(
            f"scene {label}: {100 * off:.0f}% of the pixels are {rule} ({found}); {hint} the scene's `scale`, `offset` "
            "and `valid_range`, or the `sensor` whose product this is"
        )
    out = []
    exp = [np.dtype(d) for d in profile.dtypes if np.dtype(d).kind in "iu"]
    if exp and not any(np.iinfo(d).min <= lo and hi <= np.iinfo(d).max for d in exp):  # type: ignore[operator]
        lim = np.iinfo(exp[0])
        out.append(
            f"{label}: {found}, beyond the {lim.min}-{lim.max} of the {exp[0]} data the '{profile.name}' profile "
            "expects; check `sensor` (or `scale`, `offset`, `valid_range`)"
        )
    return out


def raw_to_bands(
    raws: Mapping[str, np.ndarray], profile: BandProfile, nodata: Optional[float] = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw band values (role -> array, all one shape) -> float32 bands in physical units and the
    observed mask.  Pure; used for files (window by window) and for arrays given to the API.

    A pixel is unobserved where a band holds ``nodata`` (GDAL's per-band meaning: a band file with
    a smaller footprint has no value there), or where *every* band does when the profile marks
    nodata as a collar (``nodata_all_bands``, NAIP: a real 0 in one band is deep water at
    NIR = 0, not a hole); where a band holds the profile's fill value, is outside its valid range,
    or is not finite.  Then ``value * scale + offset`` when the profile has a scale.
    """
    valid = observed_mask(raws, profile, nodata)
    bands: dict[str, np.ndarray] = {}
    for role, raw in raws.items():
        data = raw.astype(np.float32, copy=False)
        if raw.dtype.kind == "f":
            valid &= np.isfinite(data)
        if profile.scale is not None:
            data = data * np.float32(profile.scale) + np.float32(profile.offset)
        bands[role] = data
    return bands, valid


def observed_mask(raws: Mapping[str, np.ndarray], profile: BandProfile, nodata: Optional[float] = None) -> np.ndarray:
    """The observed mask of :func:`raw_to_bands` without converting the bands: nodata (per band,
    or on every band for ``nodata_all_bands``), fill value and valid range; the finiteness of
    float bands is :func:`raw_to_bands`' own test.
    """
    roles = list(raws)
    valid = np.ones(np.shape(raws[roles[0]]), dtype=bool)
    if nodata is not None:
        if profile.nodata_all_bands and nodata == 0 and all(raws[r].dtype.kind in "iu" for r in roles):
            # observed where any band is non-zero: a bitwise OR of the bands
            some = raws[roles[0]].astype(np.result_type(*(raws[r].dtype for r in roles)), copy=True)
            for r in roles[1:]:
                np.bitwise_or(some, raws[r], out=some)
            valid &= some != 0
        elif profile.nodata_all_bands:
            every = raws[roles[0]] == nodata
            for r in roles[1:]:
                every &= raws[r] == nodata
            valid &= ~every
        else:
            for r in roles:
                valid &= raws[r] != nodata
    for raw in raws.values():
        if profile.fill is not None:
            valid &= raw != profile.fill
        if profile.valid_range is not None:
            lo, hi = profile.valid_range
            valid &= (raw >= lo) & (raw <= hi)
    return valid


def get_profile(name: str) -> BandProfile:
    """Return the named profile or raise a :class:`BandProfileError` listing the known ones."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise BandProfileError(
            f"unknown sensor '{name}'; use one of {', '.join(sorted(PROFILES))} or give `bands: {{role: number}}`"
        ) from None


def custom_profile(bands: Mapping[str, int], **kw: object) -> BandProfile:
    """A profile from explicit 1-based band roles."""
    bad = [f"{r}={b}" for r, b in bands.items() if int(b) < 1]
    if bad:
        raise BandProfileError(f"band numbers are 1-based; got {', '.join(bad)}")
    return BandProfile("custom", {str(r).lower(): int(b) for r, b in bands.items()}, **kw)  # type: ignore[arg-type]
