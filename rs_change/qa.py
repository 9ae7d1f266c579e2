"""Cloud, shadow and snow masks from an optical product's own QA layer.  Pure (numpy).

Three QA *roles* are given like band roles (``bands: {qa_pixel: 8}`` or ``assets: {scl: SCL.tif}``);
the reader keeps them out of the spectral bands and turns them into an "unobserved" mask:

* ``qa_pixel``: Landsat Collection 2 Level-1/Level-2 ``QA_PIXEL`` bit field (USGS Landsat 8-9
  C2 L2 Science Product Guide): bit 0 fill, 1 dilated cloud, 2 cirrus (high confidence,
  Landsat 8-9 only), 3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water;
* ``scl``: Sentinel-2 L2A scene classification (Sen2Cor): 0 no data, 1 saturated or defective,
  2 dark area / casted shadow, 3 cloud shadow, 4 vegetation, 5 not vegetated, 6 water,
  7 unclassified, 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus,
  11 snow or ice;
* ``fmask``: HLS v2.0 ``Fmask`` bit field (HLS v2.0 User Guide): bit 0 cirrus (reserved, not
  used), 1 cloud, 2 adjacent to cloud or shadow, 3 cloud shadow, 4 snow/ice, 5 water, 6-7
  aerosol level (0 climatology, 1 low, 2 moderate, 3 high); 255 is fill.

The products' own water flags (QA_PIXEL bit 7, SCL 6, Fmask bit 5) are never read: water is
rs-change's answer, not the product's.

Classes have readable names (:data:`CLASSES`); a scene's ``qa: {mask: [...], buffer: N}`` picks
the classes that make a pixel unobserved (default :data:`DEFAULT_MASK`) and dilates the ``cloud``
and ``shadow`` pixels by ``N`` pixels (a square of side 2N + 1, as Fmask dilates its masks).  Each
masked pixel has **one reason**: the first of :data:`REASONS` it is flagged for (``fill`` first,
``buffer`` last, for pixels masked only because they are within ``N`` pixels of a cloud or
shadow), so the areas per reason add up to the masked area.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np

from . import defaults
from .errors import ConfigError

#: The QA roles: what a QA layer is given as in ``bands:`` / ``assets:``.
QA_ROLES = ("qa_pixel", "scl", "fmask")

#: Every reason a pixel is masked, in priority order: a pixel flagged for several counts under the
#: first (:func:`reasons`).  ``buffer`` is the ring the ``qa.buffer`` dilation adds.
REASONS = ("fill", "saturated", "cloud", "shadow", "cirrus", "snow", "dilated_cloud", "adjacent", "aerosol", "buffer")

#: Per QA role, the classes it can mask (a name not listed is refused for that role).
CLASSES: dict[str, tuple[str, ...]] = {
    "qa_pixel": ("fill", "cloud", "shadow", "cirrus", "snow", "dilated_cloud"),
    "scl": ("fill", "saturated", "cloud", "shadow", "cirrus", "snow"),
    "fmask": ("fill", "cloud", "shadow", "snow", "adjacent", "aerosol"),
}

#: Per QA role, the classes masked when ``qa.mask`` is not given: everything the product flags as
#: not a clear view of the surface (docs/qa.md says why).  High aerosol (Fmask) is a retrieval
#: quality, not an obstruction, and is left to the user.
DEFAULT_MASK: dict[str, tuple[str, ...]] = {
    "qa_pixel": ("fill", "cloud", "shadow", "cirrus", "snow", "dilated_cloud"),
    "scl": ("fill", "saturated", "cloud", "shadow", "cirrus", "snow"),
    "fmask": ("fill", "cloud", "shadow", "snow", "adjacent"),
}
#: Default ``qa.buffer`` in pixels (:data:`rs_change.defaults.QA_BUFFER`).
DEFAULT_BUFFER = defaults.QA_BUFFER
#: Classes the ``qa.buffer`` dilation grows.
BUFFERED = ("cloud", "shadow")
#: Names that are refused with a reason (the products' water flags are never used).
NEVER = {"water": "the product's water flag is never used: water is what rs-change measures"}

#: QA value that marks fill, per role (QA_PIXEL: bit 0; SCL: 0; Fmask: 255).
FILL = {"qa_pixel": None, "scl": 0, "fmask": 255}


def flags(qa: np.ndarray, role: str) -> dict[str, np.ndarray]:
    """Every class of :data:`CLASSES` ``[role]`` as a bool array (shape of ``qa``).

    Parameters
    ----------
    qa : ndarray of int
        Raw QA values.
    role : {"qa_pixel", "scl", "fmask"}

    Examples
    --------
    >>> f = flags(np.array([21824, 22280, 23888, 1]), "qa_pixel")  # clear, cloud, shadow, fill
    >>> [k for k in f if f[k][1]], [k for k in f if f[k][2]], [k for k in f if f[k][3]]
    (['cloud'], ['shadow'], ['fill'])
    """
    q = np.asarray(qa)
    if q.dtype.kind not in "iu":
        q = q.astype(np.int64)  # a QA layer stored as float (an export): its values are whole numbers

    def bit(n: int) -> np.ndarray:
        return (q & (1 << n)) != 0

    if role == "qa_pixel":
        return {"fill": bit(0), "dilated_cloud": bit(1), "cirrus": bit(2), "cloud": bit(3), "shadow": bit(4),
                "snow": bit(5)}
    if role == "scl":
        return {"fill": q == 0, "saturated": q == 1, "shadow": q == 3, "cloud": (q == 8) | (q == 9),
                "cirrus": q == 10, "snow": q == 11}
    if role == "fmask":
        fill = q == FILL["fmask"]
        clear = ~fill
        return {"fill": fill, "cloud": bit(1) & clear, "adjacent": bit(2) & clear, "shadow": bit(3) & clear,
                "snow": bit(4) & clear, "aerosol": ((q & 0xC0) == 0xC0) & clear}
    raise ConfigError(f"unknown QA role {role!r}; use one of {', '.join(QA_ROLES)}")


def check_mask(role: str, mask: Optional[Sequence[str]], where: str = "qa.mask") -> tuple[str, ...]:
    """The classes ``mask`` names for ``role`` (the role's :data:`DEFAULT_MASK` when None), or a
    one-line :class:`ConfigError` naming the class and the ones the role has.
    """
    if mask is None:
        return DEFAULT_MASK[role]
    out = []
    for name in mask:
        key = str(name).lower()
        if key in NEVER:
            raise ConfigError(f"{where}: `{name}`: {NEVER[key]}; remove it")
        if key not in CLASSES[role]:
            raise ConfigError(f"{where}: `{name}` is not a class of the {role} QA layer; use some of "
                              f"{', '.join(CLASSES[role])}")
        if key not in out:
            out.append(key)
    return tuple(out)


def dilate(mask: np.ndarray, n: int) -> np.ndarray:
    """``mask`` grown by ``n`` pixels in every direction, diagonals included (a square of side
    ``2n + 1``, Chebyshev distance <= n); nothing is grown in from beyond the array's edges.

    Separable: an OR over a window of ``2n + 1`` along each axis, by doubling (log2(2n + 1) ORs
    of shifted views per axis instead of 2n).
    """
    m = np.asarray(mask, dtype=bool)
    if n <= 0 or not m.any():
        return m.copy()
    for axis in (0, 1):
        m = _or_window(m, n, axis)
    return m


def _or_window(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``out[i] = any(a[i - n .. i + n])`` along ``axis`` (False beyond the edges)."""
    size = 2 * n + 1
    pad = [(0, 0)] * a.ndim
    pad[axis] = (n, n)
    p = np.pad(a, pad)

    def cut(start: Optional[int], stop: Optional[int]) -> tuple[slice, ...]:
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(start, stop)
        return tuple(idx)

    w = 1  # p[j] = any(padded[j .. j + w - 1])
    while 2 * w <= size:
        p[cut(None, -w)] |= p[cut(w, None)]  # numpy reads the overlapping operand before writing
        w *= 2
    if w < size:
        k = size - w
        p[cut(None, -k)] |= p[cut(k, None)]
    return np.ascontiguousarray(p[cut(0, a.shape[axis])])


def reasons(qa: np.ndarray, role: str, mask: Sequence[str], buffer: int = 0) -> np.ndarray:
    """Why each pixel is masked: 0 clear, else 1 + the index in :data:`REASONS` of its first reason.

    Parameters
    ----------
    qa : ndarray of int (h, w)
        Raw QA values (with a halo of ``buffer`` pixels around the pixels that matter, when the
        array is a window of a larger grid: the buffer then does not depend on the window).
    role : {"qa_pixel", "scl", "fmask"}
    mask : sequence of str
        Classes masked (:func:`check_mask`).
    buffer : int, default 0
        Pixels within ``buffer`` of a masked ``cloud`` or ``shadow`` pixel are masked too
        (reason ``buffer`` unless they have their own).

    Returns
    -------
    uint8 ndarray (h, w)

    Examples
    --------
    >>> q = np.full((5, 5), 4, np.uint8); q[2, 2] = 9  # SCL: one cloud pixel on bare soil
    >>> r = reasons(q, "scl", ["cloud"], buffer=1)
    >>> int((r == 1 + REASONS.index("cloud")).sum()), int((r == 1 + REASONS.index("buffer")).sum())
    (1, 8)
    """
    f = flags(qa, role)
    out = np.zeros(np.shape(qa), np.uint8)
    # lowest priority first, each reason written over the ones after it: a pixel keeps its first
    if buffer > 0:
        grow = np.zeros(out.shape, bool)
        for b in BUFFERED:
            if b in mask:
                grow |= f[b]
        if grow.any():
            np.copyto(out, np.uint8(1 + REASONS.index("buffer")), where=dilate(grow, buffer))
    for code in range(len(REASONS), 0, -1):
        name = REASONS[code - 1]
        if name in mask and name in f:
            np.copyto(out, np.uint8(code), where=f[name])
    return out


def reason_areas(codes: np.ndarray, area: np.ndarray, where: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """m2 per reason of ``names`` (zeros included) over the pixels ``where`` is True; ``area`` is
    m2 per pixel (broadcastable to ``codes``).
    """
    sel = where & (codes > 0)
    a = np.broadcast_to(area, codes.shape)
    sums = np.bincount(codes[sel].astype(np.intp), weights=a[sel], minlength=len(REASONS) + 1) if sel.any() \
        else np.zeros(len(REASONS) + 1)
    return {name: float(sums[1 + REASONS.index(name)]) for name in names}


class QaMask:
    """A scene's QA decoder (picklable): the ``qa_decoder`` of a :class:`~rs_change.readers.SceneSource`.

    Called on raw QA values it gives the bool "unobserved" mask without the buffer (the MODIS
    decoders' interface); :meth:`reasons` gives the reason codes with the buffer, and ``halo`` is
    how many pixels around a window the reader reads so that the buffer does not depend on the
    window (:meth:`rs_change.readers.WindowReader.read_raw`).

    Parameters
    ----------
    role : {"qa_pixel", "scl", "fmask"}
    mask : sequence of str, optional
        Classes masked (default: :data:`DEFAULT_MASK` of the role).
    buffer : int, default 0
        Dilation of cloud and shadow, in pixels of the reference grid.
    """

    def __init__(self, role: str, mask: Optional[Sequence[str]] = None, buffer: int = DEFAULT_BUFFER) -> None:
        if role not in QA_ROLES:
            raise ConfigError(f"unknown QA role {role!r}; use one of {', '.join(QA_ROLES)}")
        self.role = role
        self.mask = check_mask(role, mask)
        self.buffer = int(buffer)
        if self.buffer < 0:
            raise ConfigError(f"qa.buffer: {buffer} pixels; give 0 or more")

    @property
    def halo(self) -> int:
        """Pixels of halo a window needs around it: the buffer when a buffered class is masked, else 0."""
        return self.buffer if any(b in self.mask for b in BUFFERED) else 0

    @property
    def names(self) -> tuple[str, ...]:
        """The reasons this mask can give, in :data:`REASONS` order (``buffer`` when it buffers)."""
        return tuple(r for r in REASONS if r in self.mask or (r == "buffer" and self.halo > 0))

    def __call__(self, qa: np.ndarray) -> np.ndarray:
        """Masked pixels (True) of a QA array."""
        return reasons(qa, self.role, self.mask, 0) > 0

    def reasons(self, qa: np.ndarray, buffer: Optional[int] = None) -> np.ndarray:
        """:func:`reasons` of ``qa`` with this mask (``buffer`` overrides the scene's, e.g. scaled
        down for a decimated read).
        """
        return reasons(qa, self.role, self.mask, self.buffer if buffer is None else buffer)

    def scaled(self, step: float) -> "QaMask":
        """The same mask for a grid of pixels ``step`` times larger (a decimated read): the buffer in
        those pixels, rounded up (a sampled pixel near a cloud is dropped).
        """
        out = QaMask(self.role, self.mask, self.buffer)
        if step > 1 and self.buffer:
            out.buffer = int(math.ceil(self.buffer / step - 1e-9))
        return out

    def describe(self) -> str:
        """One line for logs and ``rs-change validate``: role, classes, buffer."""
        return f"{self.role} QA: mask {', '.join(self.mask) or 'nothing'}; buffer {self.buffer} px"

    def __repr__(self) -> str:
        return f"QaMask({self.role!r}, mask={list(self.mask)!r}, buffer={self.buffer})"


class QaAreas:
    """Picklable per-block areas masked per reason: a :class:`~rs_change.readers.SceneSource`'s
    ``extra["block_stats"]`` hook (:func:`rs_change.blocks.process_block`).

    Called as ``stats(reader, observed, inside, area)`` after a block is read: counts the reader's
    ``last_qa_reasons`` (the codes of the window just read) inside the area of interest, m2 per
    reason of ``names``.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def __call__(
        self, reader: object, observed: np.ndarray, inside: np.ndarray, area: np.ndarray
    ) -> Mapping[str, float]:
        """Add the QA areas of one window of a date."""
        codes = getattr(reader, "last_qa_reasons", None)
        if codes is None or codes.shape != inside.shape:
            return {n: 0.0 for n in self.names}
        return reason_areas(codes, area, inside, self.names)


__all__ = [
    "QA_ROLES",
    "REASONS",
    "CLASSES",
    "DEFAULT_MASK",
    "DEFAULT_BUFFER",
    "BUFFERED",
    "flags",
    "check_mask",
    "dilate",
    "reasons",
    "reason_areas",
    "QaMask",
    "QaAreas",
]
