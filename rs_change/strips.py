"""Polygons of full-size class rasters in bounded memory: strip by strip, merged across strip edges.

The raster is read in full-width strips of ``rows`` rows.  In each strip the outlines of the
4-connected regions of the class codes are traced by GDAL's polygonize in *pixel* coordinates
(integers, exact), called through ctypes so that the GIL is free meanwhile (strips are traced on
several threads, beside the writing of the COGs and figures).  Each traced polygon is one region
of the strip; its pixel count and ground area come from its outline (Green's theorem over its
horizontal edges, with column sums of the pixel areas), so no label raster is built.  Regions
that touch across a strip edge (runs of the same code in the last row of one strip and the first
row of the next that share a column) are joined with a union-find.  At the end each connected
region's pieces are unioned (shared edges are exact, since coordinates are integers), moved to the
grid's CRS with its affine transform, and the small regions are sieved by their *whole* area.

Memory is a few strips (``rows x width``) plus the output polygons, whatever the raster's
height; the result equals the whole-array reference (``tests/polygon_reference.py``: labels and
``rasterio.features.shapes`` on the full raster): same regions in the same order, same pixels,
areas equal to rounding, same outlines.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from .grid import Grid

log = logging.getLogger(__name__)

#: Columns of a polygon layer (before any ``extra`` ones), whole-raster or strip by strip
POLYGON_COLUMNS = ["date", "class", "area_m2", "perimeter_m", "pixels"]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self, n: int) -> int:
        base = len(self.parent)
        self.parent.extend(range(base, base + n))
        return base

    def find(self, a: int) -> int:
        p = self.parent
        root = a
        while p[root] != root:
            root = p[root]
        while p[a] != root:  # path compression
            p[a], a = root, p[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller id (earlier in raster order) stays the root
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb


# --- GDAL's polygonize through ctypes: the same C function as rasterio.features.shapes, called
# without the GIL (rasterio's holds it for the whole trace, so nothing else of the process ran
# while a strip was traced) ---------------------------------------------------------------------
class _CPolygonize:
    """``GDALPolygonize`` of the GDAL library rasterio loaded, through ctypes (which releases the
    GIL during each call): a uint8 raster and its mask wrapped as MEM bands (no copy), polygons
    into an in-memory OGR layer, read back as WKB.
    """

    # the library's functions, bound with their signatures in __init__
    GDALAllRegister: Any
    GDALGetDriverByName: Any
    GDALCreate: Any
    GDALAddBand: Any
    GDALGetRasterBand: Any
    GDALSetGeoTransform: Any
    GDALDatasetCreateLayer: Any
    OGR_Fld_Create: Any
    OGR_L_CreateField: Any
    OGR_Fld_Destroy: Any
    GDALPolygonize: Any
    OGR_L_ResetReading: Any
    OGR_L_GetNextFeature: Any
    OGR_F_GetGeometryRef: Any
    OGR_G_WkbSize: Any
    OGR_G_ExportToWkb: Any
    OGR_F_GetFieldAsInteger: Any
    OGR_F_Destroy: Any
    GDALClose: Any

    def __init__(self, lib: Any) -> None:
        import ctypes as C

        vp, cp, ci = C.c_void_p, C.c_char_p, C.c_int
        self.C = C
        sig = {
            "GDALAllRegister": ([], None),
            "GDALGetDriverByName": ([cp], vp),
            "GDALCreate": ([vp, cp, ci, ci, ci, ci, vp], vp),
            "GDALAddBand": ([vp, ci, vp], ci),
            "GDALGetRasterBand": ([vp, ci], vp),
            "GDALSetGeoTransform": ([vp, C.POINTER(C.c_double)], ci),
            "GDALDatasetCreateLayer": ([vp, cp, vp, ci, vp], vp),
            "OGR_Fld_Create": ([cp, ci], vp),
            "OGR_L_CreateField": ([vp, vp, ci], ci),
            "OGR_Fld_Destroy": ([vp], None),
            "GDALPolygonize": ([vp, vp, vp, ci, vp, vp, vp], ci),
            "OGR_L_ResetReading": ([vp], None),
            "OGR_L_GetNextFeature": ([vp], vp),
            "OGR_F_GetGeometryRef": ([vp], vp),
            "OGR_G_WkbSize": ([vp], ci),
            "OGR_G_ExportToWkb": ([vp, ci, cp], ci),
            "OGR_F_GetFieldAsInteger": ([vp, ci], ci),
            "OGR_F_Destroy": ([vp], None),
            "GDALClose": ([vp], ci),
        }
        for name, (args, res) in sig.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
            setattr(self, name, fn)
        self.GDALAllRegister()
        self.mem = self.GDALGetDriverByName(b"MEM")
        self.vec = self.GDALGetDriverByName(b"Memory") or self.mem  # GDAL >= 3.11: MEM does vectors
        if not self.mem:
            raise OSError("GDAL's MEM driver is not available")

    def _band_ds(self, a: np.ndarray) -> Any:
        """A MEM dataset whose band 1 is the C-contiguous uint8 array ``a`` (no copy)."""
        C = self.C
        h, w = a.shape
        ds = self.GDALCreate(self.mem, b"", w, h, 0, 1, None)  # 1 = GDT_Byte
        if not ds:
            raise RuntimeError("GDAL could not create a MEM dataset")
        opts = (C.c_char_p * 4)(
            f"DATAPOINTER={a.ctypes.data}".encode(), b"PIXELOFFSET=1", f"LINEOFFSET={w}".encode(), None
        )
        if self.GDALAddBand(ds, 1, C.cast(opts, C.c_void_p)) != 0:
            self.GDALClose(ds)
            raise RuntimeError("GDAL could not wrap an array as a MEM band")
        return ds

    def __call__(self, img: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> tuple[list[bytes], list[int]]:
        """WKB polygons (pixel corners, shifted by ``x0, y0``) and values of the 4-connected regions of
        ``img`` (uint8) where ``mask``, in GDAL's order (that of ``rasterio.features.shapes``).
        """
        C = self.C
        img = np.ascontiguousarray(img, np.uint8)
        m = np.ascontiguousarray(mask).view(np.uint8)
        src = msk = vds = None
        try:
            src, msk = self._band_ds(img), self._band_ds(m)
            gt = (C.c_double * 6)(float(x0), 1.0, 0.0, float(y0), 0.0, 1.0)
            self.GDALSetGeoTransform(src, gt)
            vds = self.GDALCreate(self.vec, b"", 0, 0, 0, 0, None)
            layer = self.GDALDatasetCreateLayer(vds, b"polygons", None, 3, None)  # 3 = wkbPolygon
            if not layer:
                raise RuntimeError("GDAL could not create an in-memory layer")
            fld = self.OGR_Fld_Create(b"value", 0)  # 0 = OFTInteger
            self.OGR_L_CreateField(layer, fld, 1)
            self.OGR_Fld_Destroy(fld)
            err = self.GDALPolygonize(
                self.GDALGetRasterBand(src, 1), self.GDALGetRasterBand(msk, 1), layer, 0, None, None, None
            )
            if err != 0:
                raise RuntimeError("GDALPolygonize failed")
            wkbs, vals = [], []
            self.OGR_L_ResetReading(layer)
            while True:
                f = self.OGR_L_GetNextFeature(layer)
                if not f:
                    break
                g = self.OGR_F_GetGeometryRef(f)
                buf = C.create_string_buffer(self.OGR_G_WkbSize(g))
                self.OGR_G_ExportToWkb(g, 1, buf)  # 1 = little endian
                wkbs.append(buf.raw)
                vals.append(self.OGR_F_GetFieldAsInteger(f, 0))
                self.OGR_F_Destroy(f)
            return wkbs, vals
        finally:
            for ds in (vds, msk, src):
                if ds:
                    self.GDALClose(ds)
            del img, m  # the MEM bands pointed into them: alive until the datasets are closed


_POLY_LOCK = threading.Lock()
_POLY: list[Any] = []  # [the _CPolygonize of this process, or None when GDAL's C API was not found]


def _c_polygonize() -> Any:
    """The process's :class:`_CPolygonize`, or None (then rasterio's ``shapes`` traces)."""
    with _POLY_LOCK:
        if not _POLY:
            from .engine import _gdal_library

            try:
                lib = _gdal_library()
                _POLY.append(_CPolygonize(lib) if lib is not None else None)
            except (AttributeError, OSError) as exc:  # pragma: no cover - a GDAL without these symbols
                log.debug("tracing polygons with rasterio.features.shapes: %s", exc)
                _POLY.append(None)
        return _POLY[0]


def _polygonize(img: np.ndarray, mask: np.ndarray, x0: int, y0: int,
                scratch: Optional[np.ndarray] = None) -> np.ndarray:
    """Shapely polygons of the 4-connected regions of ``img`` where ``mask`` (pixel corners shifted
    by ``x0, y0``), as GDAL's polygonize traces them; object array (n,), in no particular order.

    The compiled tracer (:func:`rs_change.kernels.outlines`: the same vertices, 3-5x faster and
    as fast on an empty mask as the labelling) where the extension is built, else GDAL's own.
    """
    import shapely

    from .kernels import outlines

    fast = outlines(img, mask, x0, y0, scratch)
    if fast is not None:
        return fast
    poly = _c_polygonize()
    if poly is not None:
        wkbs, _ = poly(img, mask, x0, y0)
        return shapely.from_wkb(wkbs) if wkbs else np.empty(0, object)
    from affine import Affine
    from rasterio.features import shapes

    out = []
    for geom, _ in shapes(img, mask=mask, transform=Affine.translation(x0, y0), connectivity=4):
        lr = [shapely.linearrings(np.array(r, dtype=np.float64)) for r in geom["coordinates"]]
        out.append(shapely.polygons(lr[0], lr[1:] or None))
    arr = np.empty(len(out), object)
    arr[:] = out
    return arr


def _top_left(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column and row (int64) of each polygon's top-most, then left-most exterior vertex."""
    import shapely

    xy, idx = shapely.get_coordinates(shapely.get_exterior_ring(geoms), return_index=True)
    order = np.lexsort((xy[:, 0], xy[:, 1], idx))
    first = order[np.flatnonzero(np.r_[True, np.diff(idx[order]) != 0])]
    return xy[first, 0].astype(np.int64), xy[first, 1].astype(np.int64)


@dataclass
class _Pieces:
    """The regions of one strip of one raster (:func:`_outline_strip`, :func:`_measure_strip`), one
    polygon each, ordered by code (in the order asked) and then by their first pixel in raster order
    (as labels number them).
    """

    code: np.ndarray  # int64 (p,)
    area: np.ndarray  # float64 (p,) ground area, m2
    pix: np.ndarray  # int64 (p,) pixels
    geoms: np.ndarray  # object (p,) polygons, pixel coordinates of the whole raster
    top: np.ndarray  # (t, 3) int64: [x0, x1, piece] runs of the strip's first row, columns x0..x1-1
    bottom: np.ndarray  # (b, 3) int64: the same for its last row
    sums: Optional[np.ndarray] = None  # float64 (p, m): a StripSource's measure of each piece


@dataclass(frozen=True)
class StripSource:
    """A raster for :func:`strip_regions_many` given by functions of its strips instead of a file.

    ``read(r0, r1)`` returns rows ``r0 .. r1 - 1`` of the codes to trace.  ``measure(codes, r0, r1,
    pixel_areas)``, if given, returns float64 ``(p, m)``: ``m`` sums over the pixels of each of the
    strip's ``p`` pieces, in the pieces' order (code order, then raster order of their first pixel:
    for a single code, the order of ``scipy.ndimage.label``'s labels); the regions' sums are
    returned as ``sums``.  Both are called from the tracing threads, one strip at a time each.
    """

    read: Callable[[int, int], np.ndarray]
    measure: Optional[Callable[[np.ndarray, int, int, np.ndarray], np.ndarray]] = None


def _column_prefix(area_rows: Callable[[int, int], np.ndarray], r0: int, h: int, w: int,
                   step: int = 64) -> np.ndarray:
    """(h + 1, w) float64: row ``y`` holds the sum of the pixel areas of each column above row
    ``r0 + y`` of the strip (``area_rows(a, b)``: the areas of rows ``a .. b - 1``, (b - a, w) or
    (b - a, 1)).  The areas are computed ``step`` rows at a time, so the strip's whole area array
    is never held; rows are added one at a time (numpy's cumsum along the rows runs one element at
    a time; adding whole rows is 4x faster).
    """
    q = np.empty((h + 1, w))
    q[0] = 0.0
    for a in range(0, h, step):
        b = min(h, a + step)
        pa = np.broadcast_to(np.asarray(area_rows(r0 + a, r0 + b), np.float64), (b - a, w))
        for r in range(a, b):
            np.add(q[r], pa[r - a], out=q[r + 1])
    return q


def _edge_sums(geoms: np.ndarray, prefix: np.ndarray, r0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground area and pixel count of every polygon (pixel corners, rows from ``r0``) from its
    horizontal edges, and those edges.

    ``prefix`` is :func:`_column_prefix` of the strip's pixel areas; by Green's theorem the pixels
    of a ring sum to the signed sum over its horizontal edges (y, xa..xb) of ``prefix[y, xa:xb]``,
    so the area of a region is its exterior ring's sum minus its holes'.

    Returns
    -------
    area : float64 (p,)
    pixels : int64 (p,)
    horizontal : (e, 4) float64 ``[y, x_start, x_end, polygon]`` of every horizontal edge
    """
    import shapely

    rings, poly = shapely.get_rings(geoms, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    first_ring = np.r_[True, poly[1:] != poly[:-1]]  # the exterior ring comes first in get_rings
    same = ring[1:] == ring[:-1]
    e_ring = ring[:-1][same]
    x0, y0, x1, y1 = xy[:-1, 0][same], xy[:-1, 1][same], xy[1:, 0][same], xy[1:, 1][same]
    hor = (y0 == y1) & (x0 != x1)
    hy, ha, hb, hr = y0[hor].astype(np.int64), x0[hor], x1[hor], e_ring[hor]
    right = hb > ha
    lo = np.where(right, ha, hb).astype(np.int64)
    n = np.where(right, hb - ha, ha - hb).astype(np.int64)
    # every horizontal edge's columns, gathered at once: sum of prefix[y, lo:lo + n] per edge
    starts = np.r_[0, np.cumsum(n)[:-1]]
    cols = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(starts - lo, n)
    seg = np.add.reduceat(prefix[np.repeat(hy - r0, n), cols], starts) if len(n) else np.zeros(0)
    sign = np.where(right, 1.0, -1.0)
    w_ring = np.bincount(hr, weights=sign * seg, minlength=len(rings))
    p_ring = np.bincount(hr, weights=sign * (hy - r0) * n, minlength=len(rings))  # integers: exact
    outer = np.where(first_ring, 1.0, -1.0)
    area = np.bincount(poly, weights=outer * np.sign(p_ring) * w_ring, minlength=len(geoms))  # |exterior| - |holes|
    pix = np.rint(np.bincount(poly, weights=outer * np.abs(p_ring), minlength=len(geoms)))
    horizontal = np.column_stack([hy, lo, lo + n, poly[hr]])
    return area, pix.astype(np.int64), horizontal


def _outline_strip(arr: np.ndarray, r0: int, codes: Sequence[int],
                   scratch: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """The regions of one strip (rows ``r0 ..``) of a class raster: one polygon each (pixel
    corners of the whole raster) and its code, ordered by code (in the order asked), then by
    their first pixel in raster order (as labels number them).

    A pure function of the strip (strips are traced in parallel threads; the tracers run without
    the GIL).  No labelling is kept: each traced polygon is one 4-connected region.
    """
    codes = [int(c) for c in codes]
    cmask = arr == codes[0]
    for c in codes[1:]:
        cmask |= arr == c
    rr = np.flatnonzero(cmask.any(axis=1))
    if rr.size == 0:
        return np.empty(0, object), np.zeros(0, np.int64)
    cc = np.flatnonzero(cmask.any(axis=0))
    # one trace of the class codes themselves for every code of the strip, cropped to the rows and
    # columns that hold any of them when that saves a quarter or more (GDAL's polygonize costs per
    # pixel).  Two regions of one code never touch, so each traced polygon is one region.
    ra, rb, ca, cb = int(rr[0]), int(rr[-1]) + 1, int(cc[0]), int(cc[-1]) + 1
    if (rb - ra) * (cb - ca) <= 0.75 * arr.size:
        sub, sub_m = np.ascontiguousarray(arr[ra:rb, ca:cb]), np.ascontiguousarray(cmask[ra:rb, ca:cb])
    else:
        sub, sub_m, ra, ca = arr, cmask, 0, 0
    del cmask
    geoms = _polygonize(sub, sub_m, ca, r0 + ra, scratch)
    del sub, sub_m
    # each region's code is the value of its first pixel: below and right of its top-left vertex
    x0, y0 = _top_left(geoms)
    code = arr[y0 - r0, x0].astype(np.int64)
    rank = {c: i for i, c in enumerate(codes)}
    order = np.lexsort((x0, y0, np.array([rank[int(c)] for c in code], np.int64)))
    return geoms[order], code[order]


def _measure_strip(geoms: np.ndarray, code: np.ndarray, prefix: np.ndarray, r0: int, h: int) -> _Pieces:
    """:func:`_outline_strip`'s regions of a strip of ``h`` rows measured from their outlines
    (:func:`_edge_sums`; ``prefix`` is :func:`_column_prefix` of the strip), with the runs of its
    first and last rows that :meth:`_Regions.add` joins across strips.
    """
    empty = np.zeros((0, 3), np.int64)
    if len(geoms) == 0:
        return _Pieces(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.empty(0, object), empty, empty)
    area, pix, hor = _edge_sums(geoms, prefix, r0)

    def runs(y: int) -> np.ndarray:
        e = hor[hor[:, 0] == y]
        return e[:, 1:].astype(np.int64)

    return _Pieces(code, area, pix, geoms, runs(r0), runs(r0 + h))


class _Regions:
    """Per-raster state of :func:`strip_regions_many`: pieces found so far and their joins."""

    def __init__(self, values: Mapping[int, str]) -> None:
        self.values = values
        self.uf = _UnionFind()
        self.area_l: list[np.ndarray] = []
        self.pix_l: list[np.ndarray] = []
        self.code_l: list[np.ndarray] = []
        self.piece_id: list[np.ndarray] = []
        self.piece_geom: list[np.ndarray] = []
        self.sums_l: list[np.ndarray] = []
        self.raster_m2 = {int(c): 0.0 for c in values}
        self.prev = np.zeros((0, 4), np.int64)  # [x0, x1, node, code] runs of the last row above

    @property
    def codes(self) -> list[int]:
        return list(self.raster_m2)

    def add(self, pc: _Pieces) -> None:
        """Join the next strip's pieces (:func:`_measure_strip`) to those above it: a run of its first
        row and a run of the last row above, of one code, that share a column are one region.
        """
        n = len(pc.code)
        base = self.uf.add(n)
        for c in self.codes:
            sel = pc.code == c
            if sel.any():
                self.raster_m2[c] += float(pc.area[sel].sum())
        self.area_l.append(pc.area)
        self.pix_l.append(pc.pix)
        self.code_l.append(pc.code)
        self.piece_id.append(base + np.arange(n, dtype=np.int64))
        self.piece_geom.append(pc.geoms)
        if pc.sums is not None:
            self.sums_l.append(pc.sums)
        top = (
            np.column_stack([pc.top[:, :2], base + pc.top[:, 2], pc.code[pc.top[:, 2]]])
            if len(pc.top)
            else np.zeros((0, 4), np.int64)
        )
        bottom = (
            np.column_stack([pc.bottom[:, :2], base + pc.bottom[:, 2], pc.code[pc.bottom[:, 2]]])
            if len(pc.bottom)
            else np.zeros((0, 4), np.int64)
        )
        prev, self.prev = self.prev, bottom
        if len(prev) == 0 or len(top) == 0:
            return
        for c in self.codes:
            a, b = prev[prev[:, 3] == c], top[top[:, 3] == c]
            if len(a) == 0 or len(b) == 0:
                continue
            b = b[np.argsort(b[:, 0], kind="stable")]  # the runs of one code never overlap: ends sorted too
            lo = np.searchsorted(b[:, 1], a[:, 0], side="right")  # first run of b ending after a starts
            hi = np.searchsorted(b[:, 0], a[:, 1], side="left")  # first run of b starting at or after a's end
            k = np.maximum(hi - lo, 0)
            if not k.any():
                continue
            ia = np.repeat(np.arange(len(a)), k)
            jb = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k) + np.repeat(lo, k)
            for x, y in np.unique(np.stack([a[ia, 2], b[jb, 2]], 1), axis=0):
                self.uf.union(int(x), int(y))

    def finish(self, grid: Grid) -> dict[str, Any]:
        """Join the pieces of each region; the dict described in :func:`strip_regions_many`."""
        import shapely

        uf, values = self.uf, self.values
        n_all = len(uf.parent)
        if n_all == 0:
            return {"roots": np.zeros(0, np.int64), "code": np.zeros(0, np.int64), "area_m2": np.zeros(0),
                    "pixels": np.zeros(0, np.int64), "geometry": np.zeros(0, object), "raster_m2": self.raster_m2,
                    "sums": np.zeros((0, 0))}
        root_of = np.fromiter((uf.find(i) for i in range(n_all)), np.int64, n_all)
        sums = np.zeros((0, 0))
        if self.sums_l:
            piece_sums = np.concatenate(self.sums_l)
            sums = np.stack([np.bincount(root_of, weights=c, minlength=n_all) for c in piece_sums.T], axis=1)
        area = np.bincount(root_of, weights=np.concatenate(self.area_l), minlength=n_all)
        pix = np.bincount(root_of, weights=np.concatenate(self.pix_l), minlength=n_all).astype(np.int64)
        code = np.concatenate(self.code_l)
        roots = np.flatnonzero(root_of == np.arange(n_all))
        order = {int(c): i for i, c in enumerate(values)}
        roots = roots[np.lexsort((roots, np.array([order[int(c)] for c in code[roots]], np.int64)))]
        # pieces grouped by region; regions of one piece need no union
        pid = np.concatenate(self.piece_id) if self.piece_id else np.zeros(0, np.int64)
        proot = root_of[pid]
        porder = np.argsort(proot, kind="stable")
        pgeo = (np.concatenate(self.piece_geom) if self.piece_geom else np.empty(0, object))[porder]
        proot = proot[porder]
        starts = np.searchsorted(proot, roots, "left")
        ends = np.searchsorted(proot, roots, "right")
        geoms = np.empty(len(roots), object)
        joined = np.flatnonzero(ends - starts > 1)
        geoms[:] = pgeo[starts]
        for i in joined:
            # the union keeps the seam's collinear vertices: drop them (tolerance 0 moves nothing)
            geoms[i] = shapely.simplify(shapely.union_all(pgeo[starts[i]:ends[i]]), 0.0)
        t = grid.transform

        def _to_crs(xy: np.ndarray) -> np.ndarray:
            return np.column_stack([t.a * xy[:, 0] + t.b * xy[:, 1] + t.c, t.d * xy[:, 0] + t.e * xy[:, 1] + t.f])

        geoms = shapely.transform(geoms, _to_crs)
        for i in joined:  # a region traced in one piece is already in GDAL's form
            geoms[i] = _canonical(geoms[i])
        return {"roots": roots, "code": code[roots], "area_m2": area[roots], "pixels": pix[roots], "geometry": geoms,
                "raster_m2": self.raster_m2, "sums": sums[roots] if len(sums) else sums}


def strip_regions_many(
    rasters: Sequence[tuple[str | Path | StripSource, Mapping[int, str]]], grid: Grid, rows: Optional[int] = None,
    band: int = 1, workers: int = 1, finish_workers: int = 1,
) -> list[dict[str, Any]]:
    """Connected regions of each code of several rasters on one grid, found strip by strip in one
    pass over the strips.

    The pixel areas of a strip are computed once for all the rasters; each raster's codes are
    traced together, on the rows and columns of the strip that hold any of them.  With
    ``workers`` > 1 the strips are traced by that many threads (labelling and GDAL's polygonize
    run without the GIL) and joined in order: the result does not depend on ``workers``.

    Parameters
    ----------
    rasters : sequence of (path or StripSource, values)
        Single-band integer rasters on ``grid`` (e.g. water masks, change maps) and the codes
        (code -> class name) to find in each.
    grid : Grid
        Their grid (pixel areas come from it, per strip).
    rows : int, optional
        Strip height; memory is about ``rows * width * 16`` bytes per strip in flight (the column
        sums of the pixel areas in float64, the tracer's 5 bytes a pixel, the strip and its mask;
        8 more for the pixel areas of a measured :class:`StripSource`) plus the polygons.
        Default: about 8 million pixels per strip divided by ``workers``, so that memory does not
        grow with the threads; 1024 rows at most, 16 at least.
    band : int, default 1
    workers : int, default 1
        Threads tracing strips.
    finish_workers : int, default 1
        Threads joining the pieces of the rasters' regions at the end, one raster each (no
        strip arrays then, only polygons; GEOS runs without the GIL).

    Returns
    -------
    list of dict
        One per raster, in order: ``roots`` int64 (n,) region ids in output order (code order,
        then raster order of the first pixel), ``code`` (n,), ``area_m2`` float64 (n,),
        ``pixels`` int64 (n,), ``geometry`` object (n,) shapely polygons in the grid's CRS,
        ``raster_m2`` {code: ground area of every pixel of that code}, and ``sums`` float64 (n, m)
        of a :class:`StripSource` with a ``measure`` (else (0, 0)).
    """
    import rasterio
    from rasterio.windows import Window

    from .area import pixel_area_rows
    from .engine import Engine
    from .kernels import outlines_scratch

    H, W = grid.shape
    workers = max(1, int(workers))
    rows = int(rows or max(16, min(1024, 8_000_000 // max(W, 1) // workers)))
    area_rows = pixel_area_rows(grid.transform, grid.crs, grid.shape)  # rows of pixel_area(grid)
    state = [_Regions(values) for _, values in rasters]

    measured = any(isinstance(src, StripSource) and src.measure is not None for src, _ in rasters)

    def trace(r0: int) -> list[_Pieces]:
        h = min(rows, H - r0)
        scratch = outlines_scratch(h * W)  # the tracer's memory for every raster of the strip
        arrs: list[Optional[np.ndarray]] = []
        outlines = []
        for (src, _), st in zip(rasters, state):  # every raster outlined before the areas are made
            if isinstance(src, StripSource):
                arr = np.asarray(src.read(r0, r0 + h))
            else:
                with rasterio.open(src) as ds:
                    arr = ds.read(band, window=Window(0, r0, W, h))
            outlines.append(_outline_strip(arr, r0, st.codes, scratch))
            arrs.append(arr if isinstance(src, StripSource) and src.measure is not None else None)  # kept to measure
        del scratch  # before the column sums are made
        # the strip's pixel areas as one array only when a StripSource measures with them
        pa = np.asarray(area_rows(r0, r0 + h), np.float64) if measured else None
        prefix = _column_prefix(area_rows if pa is None else (lambda a, b: pa[a - r0:b - r0]), r0, h, W)
        out = []
        for (src, _), kept, (geoms, code) in zip(rasters, arrs, outlines):
            pc = _measure_strip(geoms, code, prefix, r0, h)
            if isinstance(src, StripSource) and src.measure is not None and pa is not None and kept is not None:
                pc.sums = np.asarray(src.measure(kept, r0, r0 + h, pa), np.float64)
                if len(pc.sums) != len(pc.code):
                    raise RuntimeError(f"strip at row {r0}: {len(pc.sums)} measured regions for {len(pc.code)} traced; "
                                       "please report this")
            out.append(pc)
        return out

    with Engine("threads" if workers > 1 else "synchronous", workers) as eng:
        for pieces in eng.map(trace, range(0, H, rows), in_flight=workers):
            for st, pc in zip(state, pieces):
                st.add(pc)
    if finish_workers > 1 and len(state) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(finish_workers, len(state)), thread_name_prefix="rs-change-poly") as ex:
            return list(ex.map(lambda st: st.finish(grid), state))
    return [st.finish(grid) for st in state]


def mean_pixel_area(grid: Grid, rows: Optional[int] = None) -> float:
    """Mean ground area of the pixels of ``grid`` (m2), computed strip by strip.

    :func:`rs_change.area.pixel_area` is (h, w) for many CRSs (UTM ...), i.e. 8 bytes per pixel
    of the whole grid; this keeps one strip at a time.

    Parameters
    ----------
    grid : Grid
    rows : int, optional
        Strip height (default: about 8 million pixels per strip).

    Returns
    -------
    float
    """
    from .area import pixel_area

    H, W = grid.shape
    rows = int(rows or max(16, min(1024, 8_000_000 // max(W, 1))))
    key = (grid.shape, tuple(grid.transform), grid.crs.to_wkt(), rows)
    if key in _MEAN_AREA:  # asked by the summary and again by the polygon sieve: computed once
        return _MEAN_AREA[key]
    total = 0.0
    for r0 in range(0, H, rows):
        h = min(rows, H - r0)
        g = grid.window_grid(r0, 0, h, W)
        total += float(np.broadcast_to(np.asarray(pixel_area(g.transform, g.crs, g.shape), np.float64), (h, W)).sum())
    mean = total / float(H * W)
    if len(_MEAN_AREA) >= 16:
        _MEAN_AREA.clear()
    _MEAN_AREA[key] = mean
    return mean


_MEAN_AREA: dict[Any, float] = {}


def remember_mean_pixel_area(grid: Grid, total_m2: float, rows: Optional[int] = None) -> float:
    """Record the mean pixel area of ``grid`` from the ground area of all its pixels, already
    summed elsewhere (a run's pass 2 measures every pixel of the grid once), so that
    :func:`mean_pixel_area` does not measure the grid a second time; returns the mean.
    """
    H, W = grid.shape
    rows = int(rows or max(16, min(1024, 8_000_000 // max(W, 1))))
    mean = float(total_m2) / float(H * W)
    if len(_MEAN_AREA) >= 16:
        _MEAN_AREA.clear()
    _MEAN_AREA[(grid.shape, tuple(grid.transform), grid.crs.to_wkt(), rows)] = mean
    return mean


def _start_top_left(ring: np.ndarray, flip_y: bool) -> np.ndarray:
    """The closed ring rotated to start at its top-most, then left-most vertex (GDAL's convention)."""
    xy = ring[:-1]
    y = -xy[:, 1] if flip_y else xy[:, 1]
    i = int(np.lexsort((xy[:, 0], y))[0])
    r = np.concatenate([xy[i:], xy[:i]])
    return np.concatenate([r, r[:1]])


def _canonical(geom: Any) -> Any:
    """A polygon in the form GDAL's polygonize writes it: exterior counter-clockwise, holes clockwise,
    every ring starting at its top-left vertex, holes in raster order of their start; so that
    strip-merged outlines are vertex-for-vertex those of the whole raster (and simplify alike).
    """
    from shapely.geometry import Polygon
    from shapely.geometry.polygon import orient

    if geom.geom_type != "Polygon":
        return geom
    g = orient(geom, sign=1.0)
    ext = _start_top_left(np.asarray(g.exterior.coords), True)
    holes = [_start_top_left(np.asarray(r.coords), True) for r in g.interiors]
    holes.sort(key=lambda h: (-h[0, 1], h[0, 0]))
    return Polygon(ext, holes)


#: Regions and holes of fewer pixels than this keep their traced pixel outline: simplifying a
#: few-pixel shape by a pixel turns it into a triangle of a fraction of its area.
KEEP_SHAPE_PX = 16


def _simplify(geo: np.ndarray, pixels: np.ndarray, res: float, tolerance: float) -> np.ndarray:
    """Topology-preserving simplification of a layer's polygons, except small shapes.

    All polygons are simplified together (:func:`shapely.coverage_simplify`: shared edges stay
    shared), then the regions of fewer than :data:`KEEP_SHAPE_PX` pixels get their traced outline
    back and are cut out of any larger neighbour the simplification moved over them (so no two
    polygons overlap; a sliver under the tolerance can separate them). The empty holes of fewer
    pixels in the larger regions (small islands) are filled before and cut out again as traced
    after. So no polygon or hole shrinks to a sliver, and every small shape's drawn area is its
    pixels' area.
    """
    import shapely

    small_area = KEEP_SHAPE_PX * res * res * (1 - 1e-9)
    small = np.asarray(pixels) < KEEP_SHAPE_PX
    out = np.array(geo, dtype=object)
    if small.all():
        return out
    # every hole of the larger regions at once: which are small and empty (no polygon of the layer in them)
    big_idx = np.flatnonzero(~small)
    n_holes = shapely.get_num_interior_rings(out[big_idx])
    owner = np.repeat(big_idx, n_holes)
    ring_no = np.arange(len(owner)) - np.repeat(np.cumsum(n_holes) - n_holes, n_holes)
    hole = shapely.polygons(shapely.get_interior_ring(out[owner], ring_no))
    cut = shapely.area(hole) < small_area
    if cut.any():
        inside = shapely.STRtree(out).query(hole[cut], predicate="covers")[0]  # holes another polygon lies in
        cut[np.flatnonzero(cut)[np.unique(inside)]] = False
    holes: dict[int, list[Any]] = {}
    for i in np.unique(owner[cut]):  # filled for the simplification, cut out again after it
        mine = owner == i
        out[i] = shapely.polygons(
            shapely.get_exterior_ring(out[i]), shapely.get_interior_ring(out[i], ring_no[mine & ~cut])
        )
        holes[int(i)] = list(hole[mine & cut])
    simple = shapely.coverage_simplify(out, tolerance=tolerance)
    simple[small] = out[small]
    if small.any():  # small regions cut out of the larger neighbours the simplification moved over them
        pair = shapely.STRtree(out[small]).query(simple[big_idx], predicate="overlaps")
        for j, k in zip(big_idx[pair[0]], np.flatnonzero(small)[pair[1]]):
            holes.setdefault(int(j), []).append(out[k])
    for i, h in holes.items():
        done = shapely.difference(simple[i], shapely.union_all(h))
        simple[i] = done if done.geom_type == "Polygon" else geo[i]  # cut in two: the traced outline
    return simple


def layer_from_regions(
    reg: Mapping[str, Any],
    grid: Grid,
    values: Mapping[int, str],
    min_area_m2: float = 0.0,
    simplify_px: float = 0.0,
    date: str = "",
    extra: Optional[Mapping[str, Any]] = None,
) -> tuple[Any, dict[str, dict[str, float]], float]:
    """The polygon layer (columns :data:`POLYGON_COLUMNS` + ``extra``, regions smaller than
    ``min_area_m2`` removed and reported, shapes simplified by ``simplify_px`` pixels with shared
    edges kept, except shapes of fewer than :data:`KEEP_SHAPE_PX` pixels) of one
    :func:`strip_regions_many` result ``reg``; also returns what was removed and the ground area
    of every pixel of the codes.
    """
    import geopandas as gpd

    from .area import geodesic_perimeters

    raster = float(sum(reg["raster_m2"].values()))
    small = reg["area_m2"] < min_area_m2
    removed = {}
    for code, cname in values.items():
        s = small & (reg["code"] == code)
        removed[cname] = {
            "features": int(s.sum()),
            "pixels": int(reg["pixels"][s].sum()),
            "area_m2": float(reg["area_m2"][s].sum()),
        }
    keep = ~small
    crs = grid.crs.to_wkt()
    if not keep.any():
        cols = list(POLYGON_COLUMNS) + list(extra or {})
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=crs), removed, raster
    geo = reg["geometry"][keep]
    if simplify_px > 0:
        res = min(abs(grid.transform.a), abs(grid.transform.e))
        geo = _simplify(geo, reg["pixels"][keep], abs(grid.transform.a * grid.transform.e) ** 0.5, simplify_px * res)
    names = np.array([values[int(c)] for c in reg["code"][keep]], dtype=object)
    data: dict[str, Any] = {
        "date": [date] * int(keep.sum()),
        "class": names.astype(str),
        "area_m2": reg["area_m2"][keep],
        "perimeter_m": geodesic_perimeters(geo, grid.crs),
        "pixels": reg["pixels"][keep],
    }
    for k, v in (extra or {}).items():
        data[k] = [v] * int(keep.sum())
    return gpd.GeoDataFrame(data, geometry=list(geo), crs=crs), removed, raster
