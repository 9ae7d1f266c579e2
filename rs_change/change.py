"""Change between water masks on one grid.  Pure: arrays in, arrays out.

Masks are uint8: 1 water, 0 land, 255 unobserved.  A change map has the classes below; a pixel
unobserved on either date is ``UNOBSERVED`` and counts in no change figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import kernels

WATER, LAND, NODATA = 1, 0, 255

LAND_PERSISTENT = 0
WATER_PERSISTENT = 1
WATER_GAINED = 2
WATER_LOST = 3
UNOBSERVED = 255

#: The one palette and vocabulary of every classified product (water masks, change maps, series
#: classes, polygon layers, their styles and the report): one state, one name, one colour.
#: Water gained is green and lost red (as in the JRC Global Surface Water maps), seasonal water a
#: light blue, unobserved a neutral grey (drawn as the rasters' no-data colour in the styles).
PALETTE: dict[str, tuple[int, int, int, int]] = {
    "land": (230, 230, 220, 255),
    "water": (30, 90, 200, 255),
    "water gained": (30, 170, 80, 255),
    "water lost": (215, 50, 40, 255),
    "water seasonal": (140, 200, 245, 255),
    "unobserved": (175, 175, 175, 255),
}

CHANGE_CLASSES: dict[int, str] = {
    LAND_PERSISTENT: "land persistent",
    WATER_PERSISTENT: "water persistent",
    WATER_GAINED: "water gained",
    WATER_LOST: "water lost",
    UNOBSERVED: "unobserved",
}

#: persistent land and water share the colours of land and water in the masks
CHANGE_COLORS: dict[int, tuple[int, int, int, int]] = {
    LAND_PERSISTENT: PALETTE["land"],
    WATER_PERSISTENT: PALETTE["water"],
    WATER_GAINED: PALETTE["water gained"],
    WATER_LOST: PALETTE["water lost"],
    UNOBSERVED: PALETTE["unobserved"],
}


def change_map(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Classify change between two uint8 water masks on the same grid.

    Parameters
    ----------
    before, after : numpy.ndarray of uint8, shape (h, w)
        Water masks: 1 water, 0 land, 255 unobserved.

    Returns
    -------
    numpy.ndarray of uint8, shape (h, w)
        0 land persistent, 1 water persistent, 2 water gained, 3 water lost, 255 unobserved on
        either date (:data:`CHANGE_CLASSES`).

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


# ---------------------------------------------------------------------------------------------
# Many dates: frequency, JRC-style series classes, consecutive transitions (all per block)
# ---------------------------------------------------------------------------------------------
NEVER_WATER = 0
PERMANENT_WATER = 1
NEW_WATER = 2
LOST_WATER = 3
SEASONAL_WATER = 4
NOT_OBSERVED = 255

#: The same words and colours as the change map (a pixel land on every observed date is "land
#: persistent" in both), plus "water seasonal" (water came and went).
SERIES_CLASSES: dict[int, str] = {
    NEVER_WATER: CHANGE_CLASSES[LAND_PERSISTENT],
    PERMANENT_WATER: CHANGE_CLASSES[WATER_PERSISTENT],
    NEW_WATER: CHANGE_CLASSES[WATER_GAINED],
    LOST_WATER: CHANGE_CLASSES[WATER_LOST],
    SEASONAL_WATER: "water seasonal",
    NOT_OBSERVED: CHANGE_CLASSES[UNOBSERVED],
}

SERIES_COLORS: dict[int, tuple[int, int, int, int]] = {
    **{code: CHANGE_COLORS[code] for code in (NEVER_WATER, PERMANENT_WATER, NEW_WATER, LOST_WATER)},
    SEASONAL_WATER: PALETTE["water seasonal"],
    NOT_OBSERVED: PALETTE["unobserved"],
}

#: frequency.tif: 0..100 = percent of observed dates that were water; 255 = never observed
FREQUENCY_NODATA = 255


def water_frequency(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How often each pixel was water, over the dates on which it was observed.

    Parameters
    ----------
    masks : sequence of uint8 arrays, each (h, w)
        Water masks (1 water, 0 land, 255 unobserved) of the dates, in date order.

    Returns
    -------
    percent : uint8 (h, w)
        ``round(100 * water_count / observed_count)``; 255 where the pixel was never observed.
    water_count, observed_count : uint16 (h, w)

    Examples
    --------
    >>> import numpy as np
    >>> m = [np.array([1, 0, 255, 1], np.uint8), np.array([1, 1, 255, 255], np.uint8),
    ...      np.array([0, 0, 255, 1], np.uint8)]
    >>> water_frequency(m)[0].tolist()
    [67, 33, 255, 100]
    """
    masks = [np.asarray(m) for m in masks]
    if not masks:
        raise ValueError("water_frequency needs at least one mask")
    water = np.zeros(masks[0].shape, np.uint16)
    obs = np.zeros(masks[0].shape, np.uint16)
    for m in masks:
        if m.shape != masks[0].shape:
            raise ValueError(f"masks differ in shape {masks[0].shape} vs {m.shape}; align them on one grid first")
        water += m == WATER
        obs += m != NODATA
    pct = np.full(masks[0].shape, FREQUENCY_NODATA, np.uint8)
    seen = obs > 0
    # integer rounding half up: floor((200 * w + o) / (2 * o))
    pct[seen] = ((200 * water[seen].astype(np.int64) + obs[seen]) // (2 * obs[seen].astype(np.int64))).astype(np.uint8)
    return pct, water, obs


def series_classes(masks: Sequence[np.ndarray]) -> np.ndarray:
    """JRC-style classes of each pixel over the whole series (only observed dates count).

    For each pixel, take its states on the dates it was observed, in date order, and count how
    often the state switches between water and land:

    * ``NOT_OBSERVED`` (255): observed on no date;
    * ``NEVER_WATER`` (0): observed, land on every observed date;
    * ``PERMANENT_WATER`` (1): water on every observed date;
    * ``NEW_WATER`` (2): land first, water last, one switch (land ... land, water ... water);
    * ``LOST_WATER`` (3): water first, land last, one switch;
    * ``SEASONAL_WATER`` (4): two or more switches (water came and went).

    Parameters
    ----------
    masks : sequence of uint8 arrays, each (h, w)
        Water masks in date order (1 water, 0 land, 255 unobserved).

    Returns
    -------
    uint8 (h, w)

    Examples
    --------
    >>> import numpy as np
    >>> m = [np.array([0, 1, 0, 1, 1, 255, 0], np.uint8),
    ...      np.array([0, 1, 1, 1, 0, 255, 255], np.uint8),
    ...      np.array([0, 1, 1, 0, 1, 255, 1], np.uint8)]
    >>> series_classes(m).tolist()
    [0, 1, 2, 3, 4, 255, 2]
    """
    masks = [np.asarray(m) for m in masks]
    if not masks:
        raise ValueError("series_classes needs at least one mask")
    shape = masks[0].shape
    first = np.full(shape, NODATA, np.uint8)
    prev = np.full(shape, NODATA, np.uint8)
    switches = np.zeros(shape, np.uint16)
    for m in masks:
        if m.shape != shape:
            raise ValueError(f"masks differ in shape {shape} vs {m.shape}; align them on one grid first")
        obs = m != NODATA
        state = (m == WATER).astype(np.uint8)
        switches += obs & (prev != NODATA) & (prev != state)
        first = np.where(obs & (first == NODATA), state, first)
        prev = np.where(obs, state, prev)
    out = np.full(shape, NOT_OBSERVED, np.uint8)
    seen = first != NODATA
    out[seen & (switches == 0) & (first == 0)] = NEVER_WATER
    out[seen & (switches == 0) & (first == 1)] = PERMANENT_WATER
    out[seen & (switches == 1) & (first == 0)] = NEW_WATER
    out[seen & (switches == 1) & (first == 1)] = LOST_WATER
    out[seen & (switches >= 2)] = SEASONAL_WATER
    return out


@dataclass
class SeriesBlock:
    """Many-date products of one block (see :func:`series_block`)."""

    frequency: np.ndarray
    classes: np.ndarray
    transitions: list[np.ndarray]
    #: (n_pairs, len(CHANGE_CLASSES), 2) pixel count and m2 of each change class per consecutive pair
    transition_stats: np.ndarray
    #: (len(SERIES_CLASSES), 2) pixel count and m2 of each series class
    class_stats: np.ndarray
    #: (2,) sum over observed pixels of frequency * m2 and of m2 (for the area-weighted mean frequency)
    frequency_stats: np.ndarray
    #: uint8 (h, w): on how many dates each pixel was observed (frequency's denominator)
    observations: Optional[np.ndarray] = None


def series_block(
    masks: Sequence[np.ndarray], pixel_area: np.ndarray, inside: Optional[np.ndarray] = None
) -> SeriesBlock:
    """Frequency, series classes and consecutive change maps of one block, with their areas.

    Pure, so it can run per block in any scheduler; the stats of all blocks add up.

    Parameters
    ----------
    masks : sequence of uint8 (h, w)
        Water masks of the dates in date order.
    pixel_area : float array broadcastable to (h, w)
        Ground area of each pixel in m2.
    inside : bool (h, w), optional
        Area of interest; pixels outside count in no figure (default: all inside).

    Returns
    -------
    SeriesBlock
    """
    freq, _, n_obs = water_frequency(masks)
    classes = series_classes(masks)
    shape = classes.shape
    pa = np.broadcast_to(np.asarray(pixel_area, np.float64), shape)
    ins = np.ones(shape, bool) if inside is None else np.asarray(inside, bool)
    trans = [change_map(a, b) for a, b in zip(masks[:-1], masks[1:])]
    tst = np.zeros((len(trans), len(CHANGE_CLASSES), 2))
    for i, t in enumerate(trans):
        for j, (_, (n, m2)) in enumerate(class_areas(np.where(ins, t, 254), pa, CHANGE_CLASSES).items()):
            tst[i, j] = (n, m2)
    cst = np.zeros((len(SERIES_CLASSES), 2))
    for j, (_, (n, m2)) in enumerate(class_areas(np.where(ins, classes, 254), pa, SERIES_CLASSES).items()):
        cst[j] = (n, m2)
    seen = ins & (freq != FREQUENCY_NODATA)
    fst = np.array([float((freq[seen] * pa[seen]).sum()), float(pa[seen].sum())])
    return SeriesBlock(freq, classes, trans, tst, cst, fst, n_obs.astype(np.uint8))


def _km2(m2: float) -> float:
    return round(float(m2) / 1e6, 6)


def change_stats(areas: Mapping[int, tuple[float, float]]) -> dict[str, Any]:
    """summary.json's change figures from ``{class code: (pixels, m2)}`` of a change map.

    Only pixels observed on both dates count; ``net_percent`` is relative to the water of the
    first date on those pixels (persistent + lost).

    Examples
    --------
    >>> s = change_stats({0: (5, 5e6), 1: (2, 2e6), 2: (1, 1e6), 3: (2, 2e6), 255: (0, 0.0)})
    >>> s["net_km2"], s["net_percent"]
    (-1.0, -25.0)
    """
    gained, lost, pw = areas[WATER_GAINED][1], areas[WATER_LOST][1], areas[WATER_PERSISTENT][1]
    before = pw + lost
    return {
        "gained_km2": _km2(gained),
        "lost_km2": _km2(lost),
        "persistent_water_km2": _km2(pw),
        "persistent_land_km2": _km2(areas[LAND_PERSISTENT][1]),
        "net_km2": _km2(gained - lost),
        "net_percent": round(100.0 * (gained - lost) / before, 4) if before else None,
        "gained_pixels": int(areas[WATER_GAINED][0]),
        "lost_pixels": int(areas[WATER_LOST][0]),
        "unobserved_km2": _km2(areas[UNOBSERVED][1]),
        "unobserved_pixels": int(areas[UNOBSERVED][0]),
    }


class SeriesAccumulator:
    """Sums the stats of :class:`SeriesBlock` s over all blocks; gives summary.json's
    ``transitions`` and ``series`` entries.

    Parameters
    ----------
    dates : sequence of str
        ISO dates in order (3 or more).
    """

    def __init__(self, dates: Sequence[str]) -> None:
        self.dates = list(dates)
        self.transition_stats = np.zeros((len(self.dates) - 1, len(CHANGE_CLASSES), 2))
        self.class_stats = np.zeros((len(SERIES_CLASSES), 2))
        self.frequency_stats = np.zeros(2)

    def add(self, block: Optional[SeriesBlock]) -> None:
        """Add one block's sums (None is ignored)."""
        if block is None:
            return
        self.transition_stats += block.transition_stats
        self.class_stats += block.class_stats
        self.frequency_stats += block.frequency_stats

    def transitions(self) -> list[dict[str, Any]]:
        """Per consecutive pair: from, to, gained/lost/persistent/net km2, net_percent, pixels."""
        codes = list(CHANGE_CLASSES)
        out = []
        for i, (a, b) in enumerate(zip(self.dates[:-1], self.dates[1:])):
            c = {code: (self.transition_stats[i, j, 0], self.transition_stats[i, j, 1]) for j, code in enumerate(codes)}
            out.append({"from": a, "to": b, **change_stats(c)})
        return out

    def series(self) -> dict[str, Any]:
        """Series class areas (km2 and pixels) and the area-weighted mean water frequency."""
        fw, fa = self.frequency_stats
        return {
            "dates": self.dates,
            "classes_km2": {name: _km2(self.class_stats[j, 1]) for j, name in enumerate(SERIES_CLASSES.values())},
            "classes_pixels": {name: int(self.class_stats[j, 0]) for j, name in enumerate(SERIES_CLASSES.values())},
            "mean_frequency_percent": round(float(fw / fa), 4) if fa else None,
            "note": "classes over the dates each pixel was observed on; see docs/products.md for the definitions",
        }


# ---------------------------------------------------------------------------------------------
# Per-block statistics from one joint code per pixel
# ---------------------------------------------------------------------------------------------
#: Most dates measured through :class:`JointStates` (3**10 + 1 = 59,050 codes); more dates use
#: the per-pixel functions above.
MAX_JOINT_DATES = 10

#: What each date's area is made of, in the order :func:`date_stats_of` and
#: :meth:`JointStates.date_stats` report them: water, observed, unobserved inside the area of
#: interest, outside it.
STAT_KINDS = ("water", "observed", "unobserved", "outside")
#: Per-date area statistics (one record per date): pixels and m2 of each of :data:`STAT_KINDS`
#: (``water_px``, ``water_m2``, ``observed_px`` ... ``outside_m2``), summed over blocks by field.
DATE_STATS = np.dtype([(f"{kind}_{unit}", np.float64) for kind in STAT_KINDS for unit in ("px", "m2")])


def add_date_stats(total: np.ndarray, part: np.ndarray) -> None:
    """``total += part`` field by field, for two :data:`DATE_STATS` arrays (in place)."""
    for name in DATE_STATS.names or ():
        total[name] += part[name]


def date_stats_of(
    masks: Sequence[np.ndarray], pixel_area: np.ndarray, inside: Optional[np.ndarray] = None
) -> np.ndarray:
    """:data:`DATE_STATS` of water masks (1 water, 0 land, 255 unobserved) one pass per figure:
    the definition :meth:`JointStates.date_stats` computes from a histogram.

    ``pixel_area`` broadcasts to the masks; ``inside`` is the area of interest (default: all).
    """
    shape = np.shape(masks[0])
    pa = np.broadcast_to(pixel_area, shape)
    ins = np.ones(shape, bool) if inside is None else inside
    out = np.zeros(len(masks), DATE_STATS)
    for i, water in enumerate(masks):
        valid = water != NODATA
        for kind, sel in zip(STAT_KINDS, (water == 1, valid, ins & ~valid, ~ins)):
            out[f"{kind}_px"][i] = sel.sum()
            out[f"{kind}_m2"][i] = pa[sel].sum() if sel.any() else 0.0
    return out


class JointStates:
    """Every per-block figure of a run from one histogram of *joint states*.

    A pixel inside the area of interest has, on each of the ``n`` dates, one of three states:
    land (0), water (1) or unobserved (2); its joint code is ``sum(state_i * 3**i)``. Pixels
    outside the area of interest get the code ``3**n``. Everything summary.json reports (each
    date's water / observed / unobserved / outside areas, the first -> last change classes, the
    consecutive transitions, the series classes and the water frequency) is a function of the
    joint code alone, so a block is measured by two ``bincount`` s of its codes (pixels and m2)
    instead of one pass over the block per figure; the rasters (change map, frequency, series
    classes, transitions) are table look-ups of the codes. The tables are built by running
    :func:`change_map`, :func:`water_frequency` and :func:`series_classes` on one pseudo-pixel
    per code, so the definitions are the ones above, not a second copy.

    Parameters
    ----------
    n_dates : int
        Number of dates, 1 to :data:`MAX_JOINT_DATES`.

    Examples
    --------
    >>> import numpy as np
    >>> js = JointStates(2)
    >>> code = js.encode([np.array([1, 0, 255], np.uint8), np.array([1, 1, 0], np.uint8)])
    >>> code.tolist(), js.change[code].tolist()
    ([4, 3, 2], [1, 2, 255])
    """

    def __init__(self, n_dates: int) -> None:
        if not 1 <= n_dates <= MAX_JOINT_DATES:
            raise ValueError(f"JointStates handles 1 to {MAX_JOINT_DATES} dates, got {n_dates}")
        self.n = n = int(n_dates)
        self.outside = 3**n
        codes = np.arange(3**n + 1)
        states = (codes[None, :] // (3 ** np.arange(n))[:, None]) % 3  # (n, n_codes)
        states[:, -1] = 2  # outside: unobserved on every date
        self.masks = [np.where(s == 2, NODATA, s).astype(np.uint8) for s in states]
        self.states = states
        self.inside = codes != self.outside
        self.change = change_map(self.masks[0], self.masks[-1]) if n >= 2 else None
        self.transitions = [change_map(a, b) for a, b in zip(self.masks[:-1], self.masks[1:])]
        self.frequency, _, n_obs = water_frequency(self.masks)
        self.observations = n_obs.astype(np.uint8)
        self.classes = series_classes(self.masks)
        self.dtype = np.uint8 if self.outside < 256 else np.uint16

    def encode(self, masks: Sequence[np.ndarray], inside: Optional[np.ndarray] = None) -> np.ndarray:
        """Joint code of every pixel from the dates' water masks (1 water, 0 land, 255 unobserved).

        Parameters
        ----------
        masks : sequence of n uint8 arrays, all one shape
        inside : bool array of that shape, optional
            Area of interest (default: every pixel inside).

        Returns
        -------
        numpy.ndarray of uint8 (up to 5 dates) or uint16, the masks' shape
        """
        if len(masks) != self.n:
            raise ValueError(f"expected {self.n} masks, got {len(masks)}")
        code = np.zeros(np.shape(masks[0]), self.dtype)
        tmp = np.empty_like(code)
        for i, m in enumerate(masks):
            np.minimum(m, 2, out=tmp, casting="unsafe")  # 0 land, 1 water, 255 -> 2 unobserved
            if i:
                np.multiply(tmp, 3**i, out=tmp, casting="unsafe")
            np.add(code, tmp, out=code, casting="unsafe")
        if inside is not None:
            code[~np.asarray(inside, bool)] = self.outside
        return code

    def histogram(self, code: np.ndarray, pixel_area: np.ndarray) -> np.ndarray:
        """(2, n_codes) pixel count and m2 of every code; ``pixel_area`` broadcasts to ``code``."""
        pa = np.broadcast_to(np.asarray(pixel_area, np.float64), code.shape)
        return self.histogram_rows(code, lambda r0, r1: pa[r0:r1])

    def histogram_rows(self, code: np.ndarray, area_rows: Any, rows: int = 64) -> np.ndarray:
        """:meth:`histogram` with the pixel areas given a range of rows at a time
        (``area_rows(r0, r1)``, e.g. :func:`rs_change.area.pixel_area_rows`): the areas and the
        counts of a strip of ``rows`` rows stay in the CPU's cache, and no (h, w) array of areas
        is made.
        """
        h = code.shape[0]
        out = np.zeros((2, self.outside + 1))
        for r0 in range(0, h, rows):
            r1 = min(r0 + rows, h)
            c = code[r0:r1]
            pa = np.asarray(area_rows(r0, r1), np.float64)
            if kernels.histogram_add(c, pa, out):  # compiled: the same sums in the same order
                continue
            pa = np.broadcast_to(pa, c.shape)
            ci = c.reshape(-1).astype(np.intp)  # once: bincount would convert the codes for each call
            out[0] += np.bincount(ci, minlength=self.outside + 1)
            out[1] += np.bincount(ci, weights=pa.reshape(-1), minlength=self.outside + 1)
        return out

    def date_stats(self, hist: np.ndarray) -> np.ndarray:
        """:data:`DATE_STATS` of every date: pixels and m2 of water, observed, unobserved and
        outside (pixels inside the area of interest count as unobserved when not observed; pixels
        outside it only as outside).
        """
        out = np.zeros(self.n, DATE_STATS)
        for i, s in enumerate(self.states):
            sels = (self.inside & (s == 1), self.inside & (s != 2), self.inside & (s == 2), ~self.inside)
            for kind, sel in zip(STAT_KINDS, sels):
                out[f"{kind}_px"][i], out[f"{kind}_m2"][i] = hist[:, sel].sum(axis=1)
        return out

    @staticmethod
    def _by(table: np.ndarray, keep: np.ndarray, codes: Sequence[int], hist: np.ndarray) -> np.ndarray:
        out = np.zeros((len(codes), 2))
        for j, c in enumerate(codes):
            out[j] = hist[:, keep & (table == c)].sum(axis=1)
        return out

    def change_stats(self, hist: np.ndarray, codes: Sequence[int] = tuple(CHANGE_CLASSES)) -> np.ndarray:
        """(len(codes), 2) pixels and m2 of each first -> last change class, inside the area of interest."""
        assert self.change is not None
        return self._by(self.change, self.inside, codes, hist)

    def series_stats(self, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``SeriesBlock``'s sums: transition stats (n-1, 5, 2), class stats (6, 2), frequency stats (2,)."""
        tst = np.stack([self._by(t, self.inside, tuple(CHANGE_CLASSES), hist) for t in self.transitions])
        cst = self._by(self.classes, self.inside, tuple(SERIES_CLASSES), hist)
        seen = self.inside & (self.frequency != FREQUENCY_NODATA)
        fst = np.array([float((self.frequency[seen] * hist[1, seen]).sum()), float(hist[1, seen].sum())])
        return tst, cst, fst
