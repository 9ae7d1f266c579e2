"""A raster grid as a small immutable value: shape, affine transform and CRS.

Pure: no file access.  Stages carry a :class:`Grid` with their pixels so that area and change
never have to guess the pixel size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from affine import Affine
from pyproj import CRS

from .errors import GeoreferenceError


def as_crs(crs: Any) -> CRS:
    """Return a :class:`pyproj.CRS` from a pyproj or rasterio CRS, an EPSG code or a string."""
    if crs is None:
        raise GeoreferenceError("no CRS given; set the raster's CRS (for example with gdal_edit.py -a_srs)")
    if isinstance(crs, CRS):
        return crs
    if hasattr(crs, "to_wkt"):
        return CRS.from_wkt(crs.to_wkt())
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises CRSError
        raise GeoreferenceError(f"cannot read CRS {crs!r}: {exc}") from None


@dataclass(frozen=True)
class Grid:
    """Shape ``(height, width)``, affine ``transform`` (pixel corner -> map) and ``crs``.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` in pixels.
    transform : affine.Affine
        Pixel-corner to map transform (rasterio convention).
    crs : pyproj CRS, rasterio CRS, EPSG code or WKT
        Stored as a :class:`pyproj.CRS`.

    Examples
    --------
    >>> from affine import Affine
    >>> g = Grid((2, 3), Affine(10, 0, 500000, 0, -10, 5200000), "EPSG:32614")
    >>> g.bounds
    (500000.0, 5199980.0, 500030.0, 5200000.0)
    """

    shape: tuple[int, int]
    transform: Affine
    crs: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        object.__setattr__(self, "crs", as_crs(self.crs))
        if self.transform.determinant == 0:
            raise GeoreferenceError("the geotransform is degenerate (zero pixel size)")

    @property
    def height(self) -> int:
        """Rows."""
        return self.shape[0]

    @property
    def width(self) -> int:
        """Columns."""
        return self.shape[1]

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, positive."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def rectilinear(self) -> bool:
        """True when the transform has no rotation or shear."""
        return self.transform.b == 0 and self.transform.d == 0

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the grid's outer corners."""
        h, w = self.shape
        xs, ys = [], []
        for c, r in ((0, 0), (w, 0), (0, h), (w, h)):
            x, y = self.transform * (c, r)
            xs.append(x)
            ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))

    def window_grid(self, row_off: int, col_off: int, height: int, width: int) -> "Grid":
        """The sub-grid of a window (rows/cols in pixels)."""
        return Grid((height, width), self.transform * Affine.translation(col_off, row_off), self.crs)

    def windows(self, block: int) -> Iterator[tuple[int, int, int, int]]:
        """Yield ``(row_off, col_off, height, width)`` blocks that tile the grid."""
        h, w = self.shape
        for r in range(0, h, block):
            for c in range(0, w, block):
                yield r, c, min(block, h - r), min(block, w - c)

    def same_as(self, other: "Grid", tol: float = 1e-9) -> bool:
        """True when both grids have the same shape, CRS and (almost) the same transform."""
        return (
            self.shape == other.shape
            and self.crs == other.crs
            and self.transform.almost_equals(other.transform, precision=tol * max(self.res))
        )

    def crop_to_bounds(self, bounds: tuple[float, float, float, float]) -> "Grid":
        """The smallest sub-grid (whole pixels) covering ``bounds`` given in this grid's CRS."""
        if not self.rectilinear:
            return self
        inv = ~self.transform
        minx, miny, maxx, maxy = bounds
        cols, rows = [], []
        for x, y in ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy)):
            c, r = inv * (x, y)
            cols.append(c)
            rows.append(r)
        if not all(math.isfinite(v) for v in (*cols, *rows)):  # an aoi beyond the CRS's area of use (inf)
            from .errors import GeoreferenceError

            raise GeoreferenceError(
                f"aoi: the area of interest (bounds {', '.join(f'{v:.6g}' for v in bounds)}) cannot be placed in the "
                f"reference grid's CRS ({self.crs.to_string()}): it lies outside that CRS's area of use; check "
                "`aoi` and its CRS")
        eps = 1e-6
        c0 = max(0, math.floor(min(cols) + eps))
        c1 = min(self.width, math.ceil(max(cols) - eps))
        r0 = max(0, math.floor(min(rows) + eps))
        r1 = min(self.height, math.ceil(max(rows) - eps))
        if c1 <= c0 or r1 <= r0:
            from .errors import NoOverlapError

            b = ", ".join(f"{v:.6g}" for v in bounds)
            g = ", ".join(f"{v:.6g}" for v in self.bounds)
            raise NoOverlapError(
                f"aoi: the area of interest (bounds {b}) does not overlap the reference grid (bounds {g}, "
                f"{self.crs.to_string()}); check `aoi` and its CRS"
            )
        return self.window_grid(r0, c0, r1 - r0, c1 - c0)

    def regrid(self, crs: Any = None, resolution: Optional[float] = None) -> "Grid":
        """The grid covering the same ground in another ``crs`` and/or at another ``resolution``.

        Parameters
        ----------
        crs : CRS-like, optional
            Target CRS (default: this grid's).
        resolution : float, optional
            Target pixel size in units of the target CRS (default: GDAL's choice, which keeps
            about as many pixels as this grid).

        Returns
        -------
        Grid
            Same CRS: the same top-left corner, ``ceil(extent / resolution)`` pixels.  Another
            CRS: the grid :func:`rasterio.warp.calculate_default_transform` gives for this
            grid's bounds.
        """
        if crs is None and resolution is None:
            return self
        dst = self.crs if crs is None else as_crs(crs)
        if dst == self.crs and self.rectilinear and resolution is not None:
            minx, miny, maxx, maxy = self.bounds
            w = max(1, math.ceil((maxx - minx) / resolution - 1e-9))
            h = max(1, math.ceil((maxy - miny) / resolution - 1e-9))
            return Grid((h, w), Affine(resolution, 0, minx, 0, -resolution, maxy), dst)
        from rasterio.warp import calculate_default_transform

        kw = {"resolution": resolution} if resolution else {}
        t, w, h = calculate_default_transform(
            self.crs.to_wkt(), dst.to_wkt(), self.width, self.height, *self.bounds, **kw
        )
        return Grid((h, w), t, dst)

    def to_dict(self) -> dict[str, Any]:
        """The grid as JSON-ready values (shape, the transform's six terms, the CRS as WKT or a code)."""
        return {
            "shape": list(self.shape),
            "transform": list(self.transform)[:6],
            "crs": self.crs.to_string(),
        }
