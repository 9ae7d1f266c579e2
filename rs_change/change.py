"""Change between water masks on one grid.  Pure: arrays in, arrays out.

Masks are uint8: 1 water, 0 land, 255 unobserved.  A change map has the classes below; a pixel
unobserved on either date is ``UNOBSERVED`` and counts in no change figure.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

WATER, LAND, NODATA = 1, 0, 255

LAND_PERSISTENT = 0
WATER_PERSISTENT = 1
WATER_GAINED = 2
WATER_LOST = 3
UNOBSERVED = 255

CHANGE_CLASSES: dict[int, str] = {
    LAND_PERSISTENT: "land persistent",
    WATER_PERSISTENT: "water persistent",
    WATER_GAINED: "water gained",
    WATER_LOST: "water lost",
    UNOBSERVED: "unobserved",
}

CHANGE_COLORS: dict[int, tuple[int, int, int, int]] = {
    LAND_PERSISTENT: (230, 230, 220, 255),
    WATER_PERSISTENT: (30, 90, 200, 255),
    WATER_GAINED: (40, 200, 230, 255),
    WATER_LOST: (220, 60, 40, 255),
    UNOBSERVED: (0, 0, 0, 0),
}


def change_map(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Classify change between two uint8 water masks on the same grid.

    Examples
    --------
    >>> import numpy as np
    >>> change_map(np.array([0, 1, 0, 1, 255], np.uint8), np.array([0, 1, 1, 0, 1], np.uint8)).tolist()
    [0, 1, 2, 3, 255]
    """
    before = np.asarray(before)
    after = np.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"masks differ in shape {before.shape} vs {after.shape}; align them on one grid first")
    out = np.full(before.shape, UNOBSERVED, dtype=np.uint8)
    obs = (before != NODATA) & (after != NODATA)
    b = before == WATER
    a = after == WATER
    out[obs & ~b & ~a] = LAND_PERSISTENT
    out[obs & b & a] = WATER_PERSISTENT
    out[obs & ~b & a] = WATER_GAINED
    out[obs & b & ~a] = WATER_LOST
    return out


def class_areas(classes: np.ndarray, pixel_area: np.ndarray, codes: Mapping[int, str]) -> dict[int, tuple[int, float]]:
    """Pixel count and area (m2) of each class code.  ``pixel_area`` broadcasts to ``classes``."""
    out: dict[int, tuple[int, float]] = {}
    pa = np.broadcast_to(pixel_area, classes.shape)
    for code in codes:
        sel = classes == code
        out[code] = (int(sel.sum()), float(pa[sel].sum()) if sel.any() else 0.0)
    return out
