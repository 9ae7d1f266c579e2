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
    idx = np.flatnonzero(many)
    roles = list(bands[0])
    # (scenes, bands, pixels) of the pixels with 3+ clear observations; NaN where a scene is not clear
    vals = np.full((n, len(roles), len(idx)), np.nan, np.float32)
    for j in range(n):
        ok = np.asarray(observed[j], bool).ravel()[idx]
        for k, r in enumerate(roles):
            v = np.asarray(bands[j][r], np.float32).ravel()[idx]
            vals[j, k] = np.where(ok, v, np.nan)
    med = nan_median(vals)  # (bands, pixels)
    d = np.square(vals - med[None]).sum(axis=1)  # (scenes, pixels); NaN for scenes not clear
    d[np.isnan(d)] = np.inf
    best = np.argmin(d, axis=0)  # the first of equal distances: the scene listed first
    pick.ravel()[idx] = best.astype(np.int8)
    return pick, count


def nan_median(vals: np.ndarray) -> np.ndarray:
    """Median along axis 0 ignoring NaN (at least one finite value per column): the middle value
    of the sorted finite values, or the mean of the two middle ones for an even count (as
    ``numpy.nanmedian``, without its per-column Python loop)."""
    s = np.sort(vals, axis=0)  # NaN sort last
    k = (~np.isnan(vals)).sum(axis=0)
    lo = np.take_along_axis(s, ((k - 1) // 2)[None], axis=0)[0]
    hi = np.take_along_axis(s, (k // 2)[None], axis=0)[0]
    return (lo + hi) * np.float32(0.5)


__all__ = ["medoid_pick", "nan_median", "MAX_SCENES"]
