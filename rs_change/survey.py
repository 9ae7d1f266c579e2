"""EDGE: what a scene's files say about themselves, against the profile they were given.

:func:`inspect_source` is what ``rs-change validate`` prints per scene (each file of a composited
date): size, CRS, data type, the band mapping and the bands left unused, scale / offset / nodata
/ valid range, the share of valid pixels and the values found in one small decimated read (the
coarsest overview that fits, on a COG; a remote file without a coarse overview is not read), and
the warnings of a profile that does not fit (band count, data type, value range;
:func:`rs_change.sensors.profile_warnings`, :func:`rs_change.sensors.check_raw_values`).
:func:`header_warnings` is the header part alone, which a run logs before it reads pixels.
Nothing here prints: the CLI prints the reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .readers import SceneSource, decimated_read_raw, open_raster
from .remote import gdal_env, is_remote
from .sensors import check_raw_values, profile_warnings, raw_to_bands, value_range

#: ``validate`` reads each scene decimated to at most this many pixels along its longer side.
SURVEY_SIDE = 256
#: A remote file is read only from an overview at least this many times coarser than the file.
REMOTE_MIN_FACTOR = 8


@dataclass
class SceneReport:
    """One scene file as :func:`inspect_source` found it."""

    date: str
    label: str
    size: tuple[int, int]  # width, height
    crs: str
    dtype: str
    count: Optional[int]  # bands of the file; None for one file per band
    profile: str
    product: str
    mapping: dict[str, str]  # role -> band number or file
    unused: list[int]
    scale: Optional[float]
    offset: float
    nodata: Optional[float]
    valid_range: Optional[tuple[float, float]]
    read_shape: tuple[int, int]
    valid_share: Optional[float]  # None: not read (a remote file without a coarse overview)
    values: Optional[tuple[float, float]]
    warnings: list[str] = field(default_factory=list)
    qa: Optional[str] = None  # the QA layer read and what it masks (rs_change.qa), or None

    def lines(self) -> list[str]:
        """The report as indented lines (the first names the date and file)."""
        w, h = self.size
        bands = f"{self.count} band(s)" if self.count is not None else "one file per band"
        prof = f"profile {self.profile}" + (f" ({self.product})" if self.product else "")
        mapping = " ".join(f"{r}={b}" for r, b in self.mapping.items())
        unused = ", ".join(str(b) for b in self.unused) or "none"
        if self.scale is None:
            rad = "digital numbers (uncalibrated)"
        else:
            rad = f"reflectance = value x {self.scale:g} {'-' if self.offset < 0 else '+'} {abs(self.offset):g}"
        rng = "" if self.valid_range is None else f", valid range {self.valid_range[0]:g}-{self.valid_range[1]:g}"
        nd = "none" if self.nodata is None else f"{self.nodata:g}"
        vals = "no data" if self.values is None else f"values {self.values[0]:g}-{self.values[1]:g}"
        if self.valid_share is None:
            read = "pixels not read (a remote file without a coarse overview; a run reads them)"
        else:
            read = (f"valid pixels {100 * self.valid_share:.1f}% of a {self.read_shape[1]} x {self.read_shape[0]} "
                    f"read; {vals}")
        out = [f"  {self.date}  {self.label}",
               f"    {w} x {h} px, {self.crs}, {self.dtype}, {bands}; {prof}",
               f"    bands: {mapping}" + ("" if self.count is None else f"; unused bands: {unused}"),
               f"    {rad}; nodata {nd}{rng}",
               f"    {read}"]
        if self.qa:
            out.append(f"    {self.qa}")
        out += [f"    warning: {x}" for x in self.warnings]
        return out


def _scenes(source: SceneSource) -> list[SceneSource]:
    return list(source.parts) if source.parts else [source]


def header_warnings(source: SceneSource) -> list[str]:
    """The header's mismatches with the profile (band count, data type) of each file of a date,
    each prefixed with the file; no pixel is read.
    """
    out = []
    for part in _scenes(source):
        info = part.info
        if info.get("dtype"):
            count = info.get("count")
            if count is not None and _qa_band(part) is not None:  # a QA band of the stack is not the profile's
                count -= 1
            out += [f"{part.label}: {w}" for w in profile_warnings(part.profile, info["dtype"], count)]
    return out


def _qa_band(part: SceneSource) -> Optional[int]:
    """The band of the scene's file that holds its QA layer (``bands: {qa_pixel: 8}``), or None."""
    if part.qa_layer is None or part.qa_layer[0] not in {p for p, _ in part.layers.values()}:
        return None
    return int(part.qa_layer[1])


def _qa_line(part: SceneSource) -> Optional[str]:
    """What the scene's optical QA layer masks (:class:`rs_change.qa.QaMask`), and where it is read."""
    describe = getattr(part.qa_decoder, "describe", None)  # a QaMask; other decoders say nothing
    if part.qa_layer is None or describe is None:
        return None
    band = _qa_band(part)
    where = f"band {band}" if band is not None else part.qa_layer[0]
    return f"{describe()} ({where})"


def _cheap(part: SceneSource) -> bool:
    """True when a small decimated read of ``part`` reads little: local files, or remote files
    that each have an overview at least :data:`REMOTE_MIN_FACTOR` times coarser than the file
    (a remote file without one would be read whole, or a quarter of it).
    """
    paths = {p for p, _ in part.layers.values()}
    if not any(is_remote(p) for p in paths):
        return True
    for p in paths:
        with gdal_env([p]), open_raster(p) as ds:
            if max(ds.overviews(1), default=1) < REMOTE_MIN_FACTOR:
                return False
    return True


def inspect_source(source: SceneSource, side: int = SURVEY_SIDE) -> list[SceneReport]:
    """One :class:`SceneReport` per file of the date (one, or each scene of a composite), from its
    header and one read decimated to at most ``side`` pixels along the longer side.

    Raises
    ------
    BandProfileError
        Most of the data is outside the profile's valid range (the one line a run would stop with).
    """
    out = []
    for part in _scenes(source):
        g = part.grid
        step = max(1, math.ceil(max(g.height, g.width) / side))
        shape = (max(1, math.ceil(g.height / step)), max(1, math.ceil(g.width / step)))
        found = header_warnings(part)
        share: Optional[float] = None
        n, lo, hi = 0, None, None
        if _cheap(part):
            raws, inside = decimated_read_raw(part, g, shape, "nearest")
            found += check_raw_values(raws, inside, part.profile, part.nodata, part.label)
            _, observed = raw_to_bands(raws, part.profile, part.nodata)
            n, lo, hi, _ = value_range(raws, inside, part.profile, part.nodata)
            share = float((inside & observed).mean()) if inside.size else 0.0
        warnings = [w.removeprefix(f"{part.label}: ") for w in found]  # the report names the file once
        info = part.info
        count = info.get("count")
        if count is None:
            mapping = {r: p for r, (p, _) in part.layers.items()}
            unused: list[int] = []
        else:
            mapping = {r: str(b) for r, (_, b) in part.layers.items()}
            used = {b for _, b in part.layers.values()} | {_qa_band(part)}
            unused = [b for b in range(1, int(count) + 1) if b not in used]
        p = part.profile
        out.append(SceneReport(
            date=part.date.isoformat(), label=part.label, size=info.get("size", (g.width, g.height)),
            crs=info.get("crs", g.crs.to_string()), dtype=info.get("dtype", "?"),
            count=count, profile=p.name, product=p.product, mapping=mapping, unused=unused, scale=p.scale,
            offset=p.offset, nodata=part.nodata, valid_range=p.valid_range, read_shape=shape,
            valid_share=share,
            values=None if n == 0 else (float(lo), float(hi)),  # type: ignore[arg-type]
            warnings=warnings, qa=_qa_line(part)))
    return out


__all__ = ["SceneReport", "inspect_source", "header_warnings", "SURVEY_SIDE"]
