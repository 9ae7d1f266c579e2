"""Ground area of pixels and masks, right for any CRS.

Pure functions.  The area of a pixel is its area on the ground, on an ellipsoid, whatever CRS the
data come in:

* **geographic CRS** (degrees): exact area of each row's ellipsoidal quadrangle (closed form on
  the CRS's ellipsoid), so 1 x 1 degree cells match :class:`pyproj.Geod` to better than 1e-9.
* **projected CRS** (metres, feet, US survey feet, any scale-varying or equal-area projection,
  rotated or sheared transforms): the pixel's four corners go through the CRS's own inverse
  projection to geodetic latitude/longitude and onto the ellipsoid in 3-D; the pixel area is
  that of the quadrilateral they span (half the cross product of its diagonals).  This is the
  true ground area to second order in the pixel size (relative error about
  ``(pixel / 6400 km)^2``), with no singularity at the poles or the antimeridian; it corrects
  the UTM scale factor (0.9996 on the central meridian, i.e. -0.08% in area) and Web
  Mercator's ``sec^2(lat)`` inflation, and it gives ``res x res`` for equal-area projections.
* **which ellipsoid**: the CRS's own, except where the CRS is defined on a sphere (MODIS
  sinusoidal, R = 6371007.181 m).  Such spheres stand in for WGS 84: MODIS geolocates pixels in
  WGS 84 latitude/longitude and projects them with spherical formulas, so a MODIS cell covers a
  WGS 84 latitude/longitude quadrangle.  By default (``ground="auto"``) areas are then measured
  on WGS 84; this differs from ``res x res`` on the sphere by a factor
  ``(a/R)^2 (1 - e^2) / (1 - e^2 sin^2 phi)^2``: -0.45% at the equator, 0 at 35.3 deg,
  +0.22% at 45 deg, +0.56% at 60 deg, +0.90% at the poles.  ``ground="crs"`` measures on the
  CRS's own surface instead (``res x res`` for MODIS); ``ground="wgs84"`` always uses WGS 84.

The projected case is evaluated on a coarse lattice of sample pixels and interpolated
bilinearly; where the area does not change along rows by more than 1e-8 (Web Mercator,
geographic, sinusoidal, most cylindrical projections) the result has shape ``(height, 1)`` and
broadcasts.

The geodesic perimeter of polygons (:func:`geodesic_perimeters`, the polygon layers'
``perimeter_m``) is measured here too.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Callable, Literal, Optional, Sequence

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer

from .grid import as_crs

Ground = Literal["auto", "crs", "wgs84"]

_WGS84 = (6378137.0, 1 / 298.257223563)
_LATTICE = 33  # sample points per axis for projected CRSs


def _ellipsoid(crs: CRS, ground: Ground) -> tuple[float, float]:
    """(a, e2) of the surface areas are measured on."""
    if ground == "wgs84":
        a, f = _WGS84
    else:
        ell = crs.ellipsoid
        if ell is None:
            a, f = _WGS84
        else:
            a = ell.semi_major_metre
            inv_f = ell.inverse_flattening
            f = 0.0 if not inv_f or math.isinf(inv_f) else 1.0 / inv_f
            if f == 0.0 and ell.semi_minor_metre != a:
                f = 1.0 - ell.semi_minor_metre / a
            if f == 0.0 and ground == "auto":
                a, f = _WGS84
    return a, f * (2.0 - f)


def _band_area(lat: np.ndarray, a: float, e2: float) -> np.ndarray:
    """Area (m2 per radian of longitude) of the ellipsoid between the equator and ``lat`` (rad)."""
    s = np.sin(lat)
    if e2 == 0.0:
        return a * a * s
    e = math.sqrt(e2)
    b2 = a * a * (1.0 - e2)
    return 0.5 * b2 * (s / (1.0 - e2 * s * s) + np.arctanh(e * s) / e)


@lru_cache(maxsize=32)
def _to_geodetic(wkt: str) -> Transformer:
    crs = CRS.from_wkt(wkt)
    return Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)


def _angle_to_rad(crs: CRS) -> float:
    for axis in crs.axis_info:
        if axis.unit_conversion_factor:
            return float(axis.unit_conversion_factor)
    return math.pi / 180.0


def _density(crs: CRS, transform: Affine, cols: np.ndarray, rows: np.ndarray, a: float, e2: float) -> np.ndarray:
    """Area (m2) of the pixels with indices (cols, rows), any CRS.

    Pixel ``(c, r)`` spans pixel coordinates ``[c, c+1] x [r, r+1]`` (rasterio convention).  Its
    four corners are taken to geodetic latitude/longitude by the CRS's inverse projection, then
    to 3-D points on the ellipsoid ``(a, e2)``; the area is half the norm of the cross product of
    the quadrilateral's diagonals.  This equals the pixel's ground area to second order in the
    pixel size (relative error ~ (pixel / 6400 km)^2) and, unlike a Jacobian in latitude and
    longitude, has no singularity at the poles or at the antimeridian.
    """
    cols = np.asarray(cols, dtype="float64")
    rows = np.asarray(rows, dtype="float64")
    pts_c = np.stack([cols, cols + 1.0, cols + 1.0, cols])
    pts_r = np.stack([rows, rows, rows + 1.0, rows + 1.0])
    x = transform.a * pts_c + transform.b * pts_r + transform.c
    y = transform.d * pts_c + transform.e * pts_r + transform.f
    if crs.is_geographic:
        k = _angle_to_rad(crs)
        lon, lat = x * k, y * k
    else:
        lon, lat = _to_geodetic(crs.to_wkt()).transform(x, y, radians=True)
        lon, lat = np.asarray(lon), np.asarray(lat)
    sl, cl = np.sin(lat), np.cos(lat)
    n = a / np.sqrt(1.0 - e2 * sl * sl)
    # corners relative to the first corner's longitude: keeps the differences well conditioned
    dl = lon - lon[0]
    px = n * cl * np.cos(dl)
    py = n * cl * np.sin(dl)
    pz = n * (1.0 - e2) * sl
    d1 = np.stack([px[2] - px[0], py[2] - py[0], pz[2] - pz[0]])
    d2 = np.stack([px[3] - px[1], py[3] - py[1], pz[3] - pz[1]])
    cross = np.cross(d1, d2, axis=0)
    return 0.5 * np.sqrt((cross * cross).sum(axis=0))


def pixel_area(transform: Affine, crs: Any, shape: tuple[int, int], ground: Ground = "auto") -> np.ndarray:
    """Ground area of every pixel of a grid, in square metres.

    Parameters
    ----------
    transform : affine.Affine
        Pixel-corner to map transform of the grid (rasterio convention).
    crs : pyproj.CRS, rasterio CRS or str
        The grid's CRS: geographic (degrees) or projected (any linear unit).
    shape : tuple of int
        ``(height, width)`` of the grid.
    ground : {"auto", "crs", "wgs84"}, default "auto"
        Surface the area is measured on; see the module documentation.

    Returns
    -------
    numpy.ndarray of float64, shape (height, 1) or (height, width)
        m2 per pixel; broadcasts against a ``(height, width)`` mask.

    Examples
    --------
    >>> from affine import Affine
    >>> a = pixel_area(Affine(1.0, 0, 10.0, 0, -1.0, 1.0), "EPSG:4326", (1, 1))
    >>> round(float(a[0, 0]) / 1e6)  # the 1 x 1 degree cell north of the equator, km2
    12308
    """
    lat = _lattice(transform, crs, shape, ground)
    return lat if isinstance(lat, np.ndarray) else lat.rows(0, int(shape[0]))


def _lattice(transform: Affine, crs: Any, shape: tuple[int, int], ground: Ground) -> "np.ndarray | _Bilinear":
    """:func:`pixel_area` as an array, or as the interpolator of its lattice when it varies along rows."""
    crs = as_crs(crs)
    h, w = int(shape[0]), int(shape[1])
    a, e2 = _ellipsoid(crs, ground)
    rectilinear = transform.b == 0 and transform.d == 0
    if crs.is_geographic and rectilinear:
        k = _angle_to_rad(crs)
        edges = (transform.f + transform.e * np.arange(h + 1, dtype="float64")) * k
        band = _band_area(edges, a, e2)
        return (np.abs(np.diff(band)) * abs(transform.a) * k).reshape(h, 1)

    # Sample a lattice; decide whether the area varies along rows.
    ny = min(h, _LATTICE)
    nx = min(w, _LATTICE)
    rs = np.linspace(0.0, h - 1.0, ny) if ny > 1 else np.array([0.0])
    cs = np.linspace(0.0, w - 1.0, nx) if nx > 1 else np.array([0.0])
    cc, rr = np.meshgrid(cs, rs)
    lattice = _density(crs, transform, cc, rr, a, e2)
    spread = np.ptp(lattice, axis=1) / np.maximum(np.abs(lattice).max(axis=1), 1e-300)
    if float(spread.max()) < 1e-8:  # along-row variation below 1e-8: one value per row
        rows = np.arange(h, dtype="float64")
        per_row = _density(crs, transform, np.full(h, (w - 1) / 2.0), rows, a, e2)
        return per_row.reshape(h, 1)
    if ny == h and nx == w:
        return lattice
    return _Bilinear(lattice, rs, cs, h, w)


class _Bilinear:
    """The lattice ``grid`` (sampled at rows ``rs``, columns ``cs``) interpolated to every pixel of
    an (h, w) grid, row range by row range: along columns for every lattice row, then along rows.
    """

    def __init__(self, grid: np.ndarray, rs: np.ndarray, cs: np.ndarray, h: int, w: int) -> None:
        rows = np.arange(h, dtype="float64")
        cols = np.arange(w, dtype="float64")
        self.tmp = np.stack([np.interp(cols, cs, grid[i]) for i in range(grid.shape[0])])
        self.single = len(rs) == 1
        self.idx = np.clip(np.searchsorted(rs, rows, side="right") - 1, 0, max(len(rs) - 2, 0))
        if not self.single:
            self.t = ((rows - rs[self.idx]) / (rs[self.idx + 1] - rs[self.idx]))[:, None]
        self.w = w

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Pixel values of rows r0 .. r1 - 1, shape (r1 - r0, w)."""
        if self.single:
            return np.repeat(self.tmp[:1], r1 - r0, axis=0)
        out = np.empty((r1 - r0, self.w))
        a = r0
        while a < r1:  # rows between the same two lattice rows: those two rows broadcast, no gathers
            i = int(self.idx[a])
            end = a + int(np.searchsorted(self.idx[a:r1], i, side="right"))
            lo, hi = self.tmp[i], self.tmp[i + 1]
            for s in range(a, end, 32):  # 32 rows at a time: the temporaries stay in the CPU cache
                b = min(s + 32, end)
                t = self.t[s:b]
                o = out[s - r0:b - r0]
                np.multiply(lo, 1 - t, out=o)
                o += hi * t
            a = end
        return out


def pixel_area_rows(
    transform: Affine, crs: Any, shape: tuple[int, int], ground: Ground = "auto"
) -> Callable[[int, int], np.ndarray]:
    """:func:`pixel_area` a range of rows at a time: ``f(r0, r1)`` equals ``pixel_area(...)[r0:r1]``
    (shape (r1 - r0, 1) or (r1 - r0, width)), without the whole (height, width) array.

    Examples
    --------
    >>> from affine import Affine
    >>> t, shape = Affine(0.6, 0, 500000.0, 0, -0.6, 5200000.0), (300, 200)
    >>> f = pixel_area_rows(t, "EPSG:32614", shape)
    >>> import numpy as np
    >>> bool(np.array_equal(f(100, 164), pixel_area(t, "EPSG:32614", shape)[100:164]))
    True
    """
    lat = _lattice(transform, crs, shape, ground)
    if isinstance(lat, np.ndarray):
        return lambda r0, r1: lat[r0:r1]
    return lat.rows


def mask_area(mask: np.ndarray, transform: Affine, crs: Any, ground: Ground = "auto") -> float:
    """Ground area in m2 of the pixels where ``mask`` is true (or equal to 1).

    Parameters
    ----------
    mask : numpy.ndarray of shape (height, width)
        Boolean mask, or a uint8 mask where 1 means inside (255 = unobserved is *not* counted).
    transform : affine.Affine
        The mask's pixel-corner to map transform.
    crs : pyproj.CRS, rasterio CRS or str
        The mask's CRS.
    ground : {"auto", "crs", "wgs84"}, default "auto"
        Surface the area is measured on; see the module documentation.

    Returns
    -------
    float
        Area in square metres.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> lake = np.zeros((10, 10), bool); lake[2:5, 2:5] = True
    >>> mask_area(lake, Affine(10, 0, 500000, 0, -10, 5200000), "EPSG:32614", ground="crs") > 899
    True
    """
    m = np.asarray(mask)
    m = m if m.dtype == bool else (m == 1)
    if not m.any():
        return 0.0
    area = pixel_area(transform, crs, m.shape, ground)
    if area.shape[1] == 1:
        return float(m.sum(axis=1, dtype="float64") @ area[:, 0])
    return float(area[m].sum())


def geodesic_perimeters(geoms: Sequence[Any] | np.ndarray, crs: Any) -> np.ndarray:
    """Geodesic perimeter (m, on the WGS84 ellipsoid) of each polygon, from its vertices in lon/lat.

    Parameters
    ----------
    geoms : sequence of shapely polygons, in ``crs``
    crs : pyproj CRS (or anything :func:`rs_change.grid.as_crs` accepts)

    Returns
    -------
    float64 (n,)
    """
    import shapely
    from pyproj import Geod

    if len(geoms) == 0:
        return np.zeros(0)
    src = as_crs(crs)
    geo = np.asarray(geoms, dtype=object)
    if not src.equals("EPSG:4326"):
        tr = Transformer.from_crs(src, "EPSG:4326", always_xy=True)
        geo = shapely.transform(geo, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    # every exterior ring's edges in one call (a Python loop over polygons and vertices took 1.2 s
    # for the 1,900 polygons of a NAIP quarter-quad pair); as Geod.geometry_area_perimeter: the
    # exterior ring's length (holes left out), summed over the parts of a multi-polygon
    parts, ring_of = shapely.get_parts(geo, return_index=True)
    xy, pt_ring = shapely.get_coordinates(shapely.get_exterior_ring(parts), return_index=True)
    edge = np.flatnonzero(pt_ring[1:] == pt_ring[:-1])  # consecutive vertices of one ring
    if edge.size == 0:
        return np.zeros(len(geo))
    lon1, lat1, lon2, lat2 = xy[edge, 0], xy[edge, 1], xy[edge + 1, 0], xy[edge + 1, 1]
    dist = short_geodesics(lon1, lat1, lon2, lat2)
    far = ~(dist < SHORT_GEODESIC_M)  # and NaN: the full inverse problem
    if far.any():
        _, _, dist[far] = Geod(ellps="WGS84").inv(lon1[far], lat1[far], lon2[far], lat2[far])
    return np.bincount(ring_of[pt_ring[edge]], weights=np.abs(dist), minlength=len(geo)).astype(np.float64)


#: Edges shorter than this (m) are measured by :func:`short_geodesics`; longer ones by pyproj's Geod.
SHORT_GEODESIC_M = 100.0


def short_geodesics(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Length (m) of short lines on the WGS84 ellipsoid, from the ellipsoid's radii of curvature at
    their mid-latitude: ``hypot(M dlat, N cos(lat) dlon)``.

    The error is of order ``(length / 6400 km)^2``: within 1.5e-9 of pyproj's ``Geod.inv`` up to
    100 m (tested), 5x faster. Pixel-edge polygons have millions of such edges.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : float64 (n,)
        Degrees.

    Returns
    -------
    float64 (n,)
    """
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    p1, p2 = np.radians(lat1), np.radians(lat2)
    pm, dp = 0.5 * (p1 + p2), p2 - p1
    dl = np.radians((np.asarray(lon2) - lon1 + 180.0) % 360.0 - 180.0)
    sp = np.sin(pm)
    w2 = 1.0 - e2 * sp * sp
    n = a / np.sqrt(w2)  # prime vertical radius of curvature
    m = n * (1.0 - e2) / w2  # meridional radius of curvature
    return np.hypot(m * dp, n * np.cos(pm) * dl)


def ground_pixel_size(transform: Affine, crs: Any, shape: tuple[int, int]) -> tuple[float, float]:
    """Ground length (m) of a pixel's width and height at the grid's centre, any CRS.

    The centre pixel's mid-edge points go through the CRS's inverse projection to latitude and
    longitude; their distances are measured on WGS 84 (:func:`short_geodesics`), as areas are for
    a CRS on a sphere (MODIS sinusoidal).  What a scale bar of a picture of the grid needs.

    Examples
    --------
    >>> from affine import Affine
    >>> [round(v) for v in ground_pixel_size(Affine(0.01, 0, 10.0, 0, -0.01, 60.01), "EPSG:4326", (2, 2))]
    [558, 1114]
    """
    crs = as_crs(crs)
    r, c = shape[0] / 2.0, shape[1] / 2.0
    cols = np.array([c - 0.5, c + 0.5, c, c])
    rows = np.array([r, r, r - 0.5, r + 0.5])
    x = transform.a * cols + transform.b * rows + transform.c
    y = transform.d * cols + transform.e * rows + transform.f
    if crs.is_geographic:
        k = math.degrees(_angle_to_rad(crs))
        lon, lat = x * k, y * k
    else:
        lon, lat = (np.asarray(v) for v in _to_geodetic(crs.to_wkt()).transform(x, y))
    d = short_geodesics(lon[[0, 2]], lat[[0, 2]], lon[[1, 3]], lat[[1, 3]])
    return float(d[0]), float(d[1])


#: How far a pixel's area in the CRS's planar units may be from its ground area (as a fraction)
#: before a run warns that planar measurements of its outputs are not the ground area.  UTM's
#: scale factor (at most about +-0.2% in area inside a zone) stays under it; Web Mercator's
#: ``sec^2(lat)`` (x2 at 45 deg) does not.
PLANAR_AREA_TOLERANCE = 0.01


def planar_area_ratio(transform: Affine, crs: Any, mean_ground_m2: float) -> Optional[float]:
    """How many times its ground area a pixel measures in the CRS's own planar units, on average.

    ``|det(transform)|`` in square metres (feet converted) over the grid's mean ground pixel area
    ``mean_ground_m2``; None for a geographic CRS (no planar area) or a zero area.

    Examples
    --------
    >>> from affine import Affine
    >>> round(planar_area_ratio(Affine(826.0, 0, 0, 0, -826.0, 0), "EPSG:3857", 339753.0), 2)
    2.01
    """
    crs = as_crs(crs)
    if not crs.is_projected or not mean_ground_m2:
        return None
    f = float(crs.axis_info[0].unit_conversion_factor or 1.0)
    return abs(transform.a * transform.e - transform.b * transform.d) * f * f / float(mean_ground_m2)


def planar_area_note(crs_name: str, ratio: Optional[float]) -> Optional[str]:
    """The warning a run gives when its CRS's planar areas are not the ground area (``ratio`` from
    :func:`planar_area_ratio` beyond :data:`PLANAR_AREA_TOLERANCE`), else None.
    """
    if ratio is None or abs(ratio - 1.0) <= PLANAR_AREA_TOLERANCE:
        return None
    return (
        f"The grid's CRS ({crs_name}) does not preserve area: a pixel measures {ratio:.2f} times its ground area in "
        f"the CRS's planar units. Every area rs-change reports (area_m2 of the polygons, the *_km2 figures) is the "
        f"ground area; a GIS measuring the outputs in this CRS's planar units (QGIS with no ellipsoid, "
        f"$area in a Web Mercator project) shows about {ratio:.2f} times these areas."
    )
