"""Per-pixel composites of several scenes of one date: which scene gives each pixel.

A date given as several scenes (a ``path:`` or ``assets:`` list, or the STAC items of a
``window:``) is composited pixel by pixel from the scenes that observe the pixel ("clear": inside
the scene, not nodata / fill / outside the valid range / QA-flagged, i.e. the observed mask of each
scene's own reader).  The rule is the **medoid** of the clear observations:

* one clear observation: that scene's value (a mosaic of adjacent tiles stays a mosaic);
* two: the scene listed first (the order of ``path:`` / ``assets:``; a ``stac:`` block lists the
  least cloudy item first);
* three or more: the scene whose spectrum is closest (sum of squared differences over the bands, in
  each scene's physical units) to the per-band median of the clear observations; ties go to the
  scene listed first;
* none: unobserved.

The medoid keeps every pixel one real spectrum of one acquisition (a per-band median would mix the
red of one scene with the NIR of another, spectra no surface had, which is what clustering and the
water indices then see), and it is robust: a cloud or shadow that the masks missed is far from the
median of the others and is not picked.  Every step is per pixel, so a block gives the same
values whatever the chunk size, and the same inputs give the same bytes.

Pure numpy; :class:`rs_change.readers.CompositeReader` and
:func:`rs_change.readers.decimated_read` call :func:`medoid_pick` on each window.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: The largest number of scenes a date can composite (``clear_count`` is uint8, and an index int8).
MAX_SCENES = 127


def medoid_pick(
    bands: Sequence[Mapping[str, np.ndarray]], observed: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Which scene gives each pixel of a composite, and how many scenes observed it.

    Parameters
    ----------
    bands : sequence of mappings role -> float array (h, w)
        Each scene's bands in physical units (reflectance, or DN for uncalibrated profiles), in
        the scenes' order; every scene has the same roles.
    observed : sequence of bool arrays (h, w)
        Each scene's clear (observed) mask.

    Returns
    -------
    pick : int8 array (h, w)
        Index of the scene that gives the pixel, -1 where no scene observed it.
    clear_count : uint8 array (h, w)
        Number of scenes that observed the pixel.

    Examples
    --------
    >>> b = [{"nir": np.array([[0.1, 0.5]], np.float32)}, {"nir": np.array([[0.3, 0.2]], np.float32)},
    ...      {"nir": np.array([[0.25, 0.9]], np.float32)}]
    >>> obs = [np.array([[True, True]]), np.array([[True, False]]), np.array([[True, True]])]
    >>> pick, n = medoid_pick(b, obs)
    >>> pick.tolist(), n.tolist()
    ([[2, 0]], [[3, 2]])
    """
    n = len(observed)
    if n == 0 or n > MAX_SCENES:
        raise ValueError(f"a composite takes 1 to {MAX_SCENES} scenes, got {n}")
    shape = np.shape(observed[0])
    count = np.zeros(shape, np.uint8)
    pick = np.full(shape, -1, np.int8)
    for j in range(n - 1, -1, -1):  # backwards: the first scene that observes a pixel is left
        obs = np.asarray(observed[j], bool)
        count += obs
        pick[obs] = j
    many = count >= 3
    if not many.any():
        return pick, count
    idx = None if many.all() else np.flatnonzero(many)

    def take(a: np.ndarray) -> np.ndarray:  # the pixels with 3+ clear observations, flat
        flat = np.asarray(a).ravel()
        return flat if idx is None else flat[idx]

    oks = [take(observed[j]).astype(bool, copy=False) for j in range(n)]
    m = len(oks[0])
    d = np.zeros((n, m), np.float32)  # squared distance of each scene to the median, band by band
    for r in bands[0]:
        vs = [take(bands[j][r]).astype(np.float32, copy=False) for j in range(n)]
        if n == 3:  # three scenes, all clear where 3+ are: the middle value, without a sort
            a, b, c = vs
            med = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
        else:
            med = nan_median(np.stack([np.where(ok, v, np.float32(np.nan)) for ok, v in zip(oks, vs)]))
        for j in range(n):
            diff = vs[j] - med
            diff *= diff
            d[j] += diff
    for j in range(n):
        d[j][~oks[j]] = np.inf  # a scene that did not observe the pixel is never picked
    best = np.argmin(d, axis=0)  # the first of equal distances: the scene listed first
    if idx is None:
        pick[...] = best.reshape(shape).astype(np.int8)
    else:
        pick.ravel()[idx] = best.astype(np.int8)
    return pick, count


def nan_median(vals: np.ndarray) -> np.ndarray:
    """Median along axis 0 ignoring NaN (at least one finite value per column): the middle value
    of the sorted finite values, or the mean of the two middle ones for an even count (as
    ``numpy.nanmedian``, without its per-column Python loop).
    """
    s = np.sort(vals, axis=0)  # NaN sort last
    k = (~np.isnan(vals)).sum(axis=0)
    lo = np.take_along_axis(s, ((k - 1) // 2)[None], axis=0)[0]
    hi = np.take_along_axis(s, (k // 2)[None], axis=0)[0]
    return (lo + hi) * np.float32(0.5)


__all__ = ["medoid_pick", "nan_median", "MAX_SCENES"]
