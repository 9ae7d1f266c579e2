"""Accuracy and error-adjusted areas from a stratified reference sample (Olofsson et al. 2014).

Pure functions on numbers (numpy only): a map's classes are the strata, a stratified random
sample of points is labelled by an analyst (the reference), and the error matrix of the sample,
weighted by each class's mapped area, gives unbiased estimates of every class's area with a
confidence interval, and the user's, producer's and overall accuracies with theirs.

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
Good practices for estimating area and assessing accuracy of land change. Remote Sensing of
Environment 148, 42-57.  Equation numbers below are that paper's.

Notation: ``i`` is a map class (stratum, row of the error matrix), ``j`` a reference class
(column); ``A_i`` the mapped area of class i, ``W_i = A_i / A`` its share of the total; ``n_ij``
the sample points mapped i and labelled j, ``n_i.`` the points of stratum i.

* area proportions (eq. 4, 9): ``p_ij = W_i n_ij / n_i.``, ``p_.j = sum_i p_ij``; area
  ``A_j = A p_.j``;
* standard error of ``p_.j`` (eq. 10): ``sqrt(sum_i W_i^2 (n_ij/n_i.)(1 - n_ij/n_i.) / (n_i. - 1))``,
  of the area (eq. 11) ``A`` times that, confidence interval (eq. 12) ``z`` times that;
* user's accuracy (eq. 2) ``U_i = p_ii / p_i.`` with ``V(U_i) = U_i (1 - U_i) / (n_i. - 1)`` (eq. 6);
  producer's accuracy (eq. 3) ``P_j = p_jj / p_.j`` with ``V(P_j)`` from eq. 7; overall accuracy
  (eq. 1) ``O = sum_j p_jj`` with ``V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)`` (eq. 5).

A class with map area but no sample point leaves its row of the error matrix unknown: the areas,
producer's accuracies and overall accuracy are then ``nan`` (not a guess), with a note.  A class
with one point has no variance estimate: the intervals it enters are ``nan``.  A class with no
map area weighs nothing (its points, if any, only give its user's accuracy).  A reference class
estimated to cover no area has no producer's accuracy (``nan``).  Every such case is explained in
the result's ``notes``.

The sample size (eq. 13) and its allocation to the strata (proportional, equal, or the paper's
advice: a minimum for each rare class, the rest proportional) are here too.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

#: Expected user's accuracies of a run's map classes for the sample size (eq. 13), after the
#: paper's example (stable classes 0.9-0.95, change classes 0.6-0.7): rare change classes are
#: harder to map, so they are expected less accurate and ask for more points.
EXPECTED_USERS_ACCURACY: dict[str, float] = {
    "land persistent": 0.95,
    "water persistent": 0.9,
    "water gained": 0.7,
    "water lost": 0.6,
    "land": 0.95,
    "water": 0.9,
}
#: Expected user's accuracy of a class not named in :data:`EXPECTED_USERS_ACCURACY`.
DEFAULT_USERS_ACCURACY = 0.8
#: Target standard error of the overall accuracy for the sample size (the paper's example).
DEFAULT_TARGET_SE = 0.01
#: Points given at least to each class by the ``"minimum"`` allocation (the paper: 50-100).
DEFAULT_MINIMUM = 50
ALLOCATIONS = ("minimum", "proportional", "equal")


def _validate(map_area: Any, counts: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(map_area, dtype=float)
    n = np.asarray(counts, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"map_area must be a non-empty list of areas, one per class (got shape {a.shape})")
    k = a.size
    if n.shape != (k, k):
        raise ValueError(f"counts must be a {k} x {k} error matrix (rows = map class, columns = reference class), got "
                         f"shape {n.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("map_area must hold finite areas >= 0")
    if not np.all(np.isfinite(n)) or np.any(n < 0):
        raise ValueError("counts must hold finite counts >= 0")
    if a.sum() <= 0:
        raise ValueError("map_area sums to 0: no mapped area to estimate")
    return a, n


def _names(classes: Optional[Sequence[str]], k: int) -> list[str]:
    if classes is None:
        return [f"class {i}" for i in range(k)]
    if len(classes) != k:
        raise ValueError(f"classes names {len(classes)} class(es), map_area {k}")
    return [str(c) for c in classes]


def _strata(a: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """Per-stratum pieces: weights, row sizes, row fractions n_ij / n_i. (nan rows where unknown),
    and the variance terms W_i^2 f_ij (1 - f_ij) / (n_i. - 1) (0 for unmapped strata, nan where
    a mapped stratum has fewer than 2 points).
    """
    w = a / a.sum()
    ni = n.sum(axis=1)
    mapped = w > 0
    f = np.full(n.shape, np.nan)
    has = ni > 0
    f[has] = n[has] / ni[has, None]
    var = np.zeros(n.shape)
    two = mapped & (ni >= 2)
    var[two] = (w[two, None] ** 2) * f[two] * (1.0 - f[two]) / (ni[two, None] - 1.0)
    var[mapped & (ni < 2)] = np.nan
    p = np.zeros(n.shape)
    p[mapped] = w[mapped, None] * f[mapped]  # nan rows for a mapped stratum without points
    return {"w": w, "ni": ni, "mapped": mapped, "f": f, "var": var, "p": p}


def _floats(x: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=float).ravel()]


def _sample_notes(names: list[str], a: np.ndarray, ni: np.ndarray, mapped: np.ndarray) -> list[str]:
    """The notes on a sample's strata: mapped without points, one point only, points without map area."""
    notes: list[str] = []
    for i in np.flatnonzero(mapped & (ni == 0)):
        notes.append(f"{names[i]}: mapped ({a[i]:g}) but no sample point, so its row of the error matrix is "
                     "unknown: areas, producer's and overall accuracy are nan (sample every mapped class)")
    for i in np.flatnonzero(mapped & (ni == 1)):
        notes.append(f"{names[i]}: one sample point, no variance estimate: the intervals it enters are nan "
                     "(at least 2 points per mapped class)")
    for i in np.flatnonzero(~mapped & (ni > 0)):
        notes.append(f"{names[i]}: no map area, so its {int(ni[i])} point(s) weigh nothing in the areas")
    return notes


def _producers(pjj: np.ndarray, pj: np.ndarray, var: np.ndarray, names: list[str],
               notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Producer's accuracies (eq. 3) and their standard errors (eq. 7), in class order; a class
    estimated to cover no area has none (nan), with a line appended to ``notes``.
    """
    producers = np.full(pj.size, np.nan)
    producers_se = np.full(pj.size, np.nan)
    pos = pj > 0
    producers[pos] = pjj[pos] / pj[pos]  # eq. 3
    for j in range(pj.size):
        if not pos[j]:
            if not np.isnan(pj[j]):
                notes.append(f"{names[j]}: estimated to cover no area, so no producer's accuracy")
            continue
        own = var[j, j]  # W_j^2 U_j (1 - U_j) / (n_j. - 1)
        others = var[:, j].sum() - own  # sum over i != j of W_i^2 f_ij (1 - f_ij) / (n_i. - 1)
        pr = producers[j]
        with np.errstate(all="ignore"):  # a class ~1e-200 of the total: pj^2 underflows, no interval
            v = ((1.0 - pr) ** 2 * own + pr ** 2 * others) / pj[j] ** 2  # eq. 7, in area proportions
        producers_se[j] = math.sqrt(v) if np.isfinite(v) and v >= 0 else float("nan")
    return producers, producers_se


def estimate_area(map_area: Sequence[float], counts: Sequence[Sequence[float]], z: float = 1.96,
                  classes: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Error-adjusted areas and accuracies from a stratified sample (Olofsson et al. 2014).

    Parameters
    ----------
    map_area : sequence of float
        Each map class's mapped area (any unit), in class order.  The map's classes are the
        strata of the sample.
    counts : sequence of sequences
        The sample's error matrix: ``counts[i][j]`` points mapped as class i whose reference
        label is class j (rows = map, columns = reference, same class order as ``map_area``).
    z : float, default 1.96
        Standard-normal quantile of the confidence intervals (1.96: 95%).
    classes : sequence of str, optional
        Class names, used in the notes only.

    Returns
    -------
    dict
        Lists in class order: ``area`` (same unit as ``map_area``), ``area_ci`` (half-width of
        the interval, same unit), ``area_se``, ``users_accuracy``, ``users_accuracy_ci``,
        ``producers_accuracy``, ``producers_accuracy_ci``, ``proportions`` (the estimated error
        matrix in area proportions, ``p_ij``), ``map_area``, ``sample_size`` (points per map
        class); scalars ``overall_accuracy``, ``overall_accuracy_ci``, ``total_area``, ``z``;
        ``notes`` (list of str): every figure that is ``nan`` and why.

    Raises
    ------
    ValueError
        Shapes that do not match, negative or non-finite values, no mapped area.

    Examples
    --------
    The paper's section 5 example (ha; deforestation, forest gain, stable forest, stable
    non-forest):

    >>> r = estimate_area([18000, 13500, 288000, 580500],
    ...                   [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
    >>> [round(v) for v in r["area"]], [round(v) for v in r["area_ci"]]
    ([21158, 11686, 285770, 581386], [6158, 3756, 15510, 16282])
    >>> round(r["overall_accuracy"], 2), round(r["overall_accuracy_ci"], 2)
    (0.95, 0.02)
    """
    a, n = _validate(map_area, counts)
    names = _names(classes, a.size)
    total = float(a.sum())
    s = _strata(a, n)
    ni, mapped, f, var, p = s["ni"], s["mapped"], s["f"], s["var"], s["p"]
    notes = _sample_notes(names, a, ni, mapped)

    pj = p.sum(axis=0)  # column totals: reference classes' area proportions (eq. 9)
    area = total * pj
    se_p = np.sqrt(var.sum(axis=0))  # eq. 10
    area_se = total * se_p  # eq. 11

    diag = np.diag(f).copy()  # n_ii / n_i. = user's accuracy (eq. 2)
    users = np.where(ni > 0, diag, np.nan)
    users_se = np.full(a.size, np.nan)
    ok = ni >= 2
    users_se[ok] = np.sqrt(users[ok] * (1.0 - users[ok]) / (ni[ok] - 1.0))  # eq. 6
    for i in np.flatnonzero(ni == 0):
        notes.append(f"{names[i]}: no sample point, so no user's accuracy")

    pjj = np.diag(p)
    producers, producers_se = _producers(pjj, pj, var, names, notes)

    overall = float(pjj.sum())  # eq. 1
    overall_se = float(np.sqrt(np.trace(var)))  # eq. 5: sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)
    return {
        "area": _floats(area),
        "area_ci": _floats(z * area_se),
        "area_se": _floats(area_se),
        "users_accuracy": _floats(users),
        "users_accuracy_ci": _floats(z * users_se),
        "producers_accuracy": _floats(producers),
        "producers_accuracy_ci": _floats(z * producers_se),
        "overall_accuracy": overall,
        "overall_accuracy_ci": float(z * overall_se),
        "proportions": [_floats(row) for row in p],
        "map_area": _floats(a),
        "sample_size": [int(v) for v in ni],
        "total_area": total,
        "z": float(z),
        "notes": notes,
    }


def combined_area(map_area: Sequence[float], counts: Sequence[Sequence[float]], weights: Sequence[float],
                  z: float = 1.96) -> tuple[float, float]:
    """Estimate and interval half-width of ``sum_j weights[j] * area_j`` (same sample as
    :func:`estimate_area`), e.g. net change = gained - lost with ``weights`` 1 and -1.

    Each point contributes ``y = weights[reference class]``; with stratum mean ``m_i`` and mean
    square ``q_i`` of y, the estimate is ``A sum_i W_i m_i`` and its variance
    ``A^2 sum_i W_i^2 (q_i - m_i^2) / (n_i. - 1)``, which is eq. 10-11 for a single class.

    Examples
    --------
    >>> est, ci = combined_area([18000, 13500, 288000, 580500],
    ...                         [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]], [1, 0, 0, 0])
    >>> round(est), round(ci)
    (21158, 6158)
    """
    a, n = _validate(map_area, counts)
    c = np.asarray(weights, dtype=float)
    if c.shape != (a.size,):
        raise ValueError(f"weights must hold one number per class ({a.size}), got shape {c.shape}")
    s = _strata(a, n)
    w, ni, mapped, f = s["w"], s["ni"], s["mapped"], s["f"]
    total = float(a.sum())
    m = f @ c
    q = f @ (c * c)
    est = total * float(np.where(mapped, w * m, 0.0).sum())
    terms = np.zeros(a.size)
    two = mapped & (ni >= 2)
    terms[two] = w[two] ** 2 * np.maximum(q[two] - m[two] ** 2, 0.0) / (ni[two] - 1.0)
    terms[mapped & (ni < 2)] = np.nan
    return est, float(z * total * math.sqrt(terms.sum())) if np.isfinite(terms.sum()) else float("nan")


# ---------------------------------------------------------------------------------------------
# Sampling design
# ---------------------------------------------------------------------------------------------
def expected_users_accuracy(classes: Sequence[str]) -> list[float]:
    """:data:`EXPECTED_USERS_ACCURACY` of each class name (:data:`DEFAULT_USERS_ACCURACY` for others)."""
    return [EXPECTED_USERS_ACCURACY.get(str(c).strip().lower(), DEFAULT_USERS_ACCURACY) for c in classes]


def sample_size(
    map_area: Sequence[float], users_accuracy: Sequence[float], target_se: float = DEFAULT_TARGET_SE
) -> int:
    """Points for a stratified random sample to reach a standard error of the overall accuracy (eq. 13).

    ``n = (sum_i W_i S_i / S(O))^2`` with ``S_i = sqrt(U_i (1 - U_i))``, ``U_i`` the user's
    accuracy expected of class i and ``S(O)`` the target standard error (rounded up).

    Examples
    --------
    The paper's example (expected user's accuracies 0.7, 0.6, 0.9, 0.95; target 0.01):

    >>> sample_size([18000, 13500, 288000, 580500], [0.7, 0.6, 0.9, 0.95], 0.01)
    641
    """
    a = np.asarray(map_area, dtype=float)
    u = np.asarray(users_accuracy, dtype=float)
    if a.ndim != 1 or u.shape != a.shape:
        raise ValueError("map_area and users_accuracy must be lists of the same length")
    if a.sum() <= 0 or np.any(a < 0):
        raise ValueError("map_area must be >= 0 and sum to more than 0")
    if np.any((u < 0) | (u > 1)):
        raise ValueError("expected user's accuracies must lie in [0, 1]")
    if not target_se > 0:
        raise ValueError("target_se must be > 0")
    w = a / a.sum()
    return int(math.ceil(round(float((w * np.sqrt(u * (1.0 - u))).sum() / target_se) ** 2, 9)))


def _round_to(x: np.ndarray, n: int) -> np.ndarray:
    """Integers summing to ``n`` closest to ``x`` (largest remainders; ties to the earlier class)."""
    base = np.floor(x).astype(int)
    left = int(n - base.sum())
    if left > 0:
        order = np.argsort(-(x - base), kind="stable")
        base[order[:left]] += 1
    return base


def allocate(
    n: int,
    map_area: Sequence[float],
    method: str = "minimum",
    minimum: int = DEFAULT_MINIMUM,
    capacity: Optional[Sequence[int]] = None,
) -> list[int]:
    """Share ``n`` points among the strata.

    Parameters
    ----------
    n : int
        Total points.
    map_area : sequence of float
        Mapped area (or pixels) of each class; a class of no area gets no point.
    method : {"minimum", "proportional", "equal"}
        ``proportional``: in proportion to area; ``equal``: the same number for every mapped
        class; ``minimum`` (the paper's advice): every mapped class gets at least ``minimum``
        points and the others share the rest in proportion to area.  When ``n`` cannot give
        every mapped class ``minimum``, ``minimum`` is the same as ``equal``.
    minimum : int, default 50
        Points at least per class for ``minimum`` (the paper suggests 50-100 for rare classes).
    capacity : sequence of int, optional
        At most this many points per class (its pixels): a class is then sampled whole and the
        total may fall short of ``n``.

    Returns
    -------
    list of int

    Examples
    --------
    >>> allocate(641, [18000, 13500, 288000, 580500], "proportional")
    [13, 10, 205, 413]
    >>> allocate(641, [18000, 13500, 288000, 580500], "minimum", minimum=75)
    [75, 75, 163, 328]
    """
    a = np.asarray(map_area, dtype=float)
    if method not in ALLOCATIONS:
        raise ValueError(f"allocation {method!r}: use one of {', '.join(ALLOCATIONS)}")
    if n < 0 or minimum < 0:
        raise ValueError("n and minimum must be >= 0")
    mapped = a > 0
    k = int(mapped.sum())
    out = np.zeros(a.size, dtype=int)
    if k == 0 or n == 0:
        return out.tolist()
    w = np.where(mapped, a, 0.0) / a[mapped].sum()
    if method == "proportional":
        out = _round_to(n * w, n)
    elif method == "equal" or minimum * k >= n:
        out[mapped] = _round_to(np.full(k, n / k), n)
    else:
        fixed = np.zeros(a.size, dtype=bool)
        while True:  # classes whose proportional share is below the minimum get the minimum
            rest = n - minimum * int(fixed.sum())
            free = mapped & ~fixed
            share = np.where(free, rest * w / w[free].sum(), 0.0)
            low = free & (share < minimum)
            if not low.any():
                break
            fixed |= low
        out = np.where(fixed, minimum, 0) + _round_to(share, rest)
    if capacity is not None:
        out = np.minimum(out, np.asarray(capacity, dtype=int))
    return [int(v) for v in out]


def design(
    map_area: Sequence[float],
    classes: Sequence[str],
    n: Optional[int] = None,
    per_class: Optional[int] = None,
    method: str = "minimum",
    minimum: int = DEFAULT_MINIMUM,
    target_se: float = DEFAULT_TARGET_SE,
    **known: Any,
) -> dict[str, Any]:
    """A sampling design for a map: total size (given, or :func:`sample_size`) and allocation.

    ``per_class`` gives every mapped class that many points (equal allocation).  Two more
    keywords: ``users_accuracy`` (class name -> expected user's accuracy, replacing
    :func:`expected_users_accuracy`'s guess in eq. 13) and ``capacity`` (the most points each
    class can give, e.g. its pixel count).  Returns ``{"n": total drawn, "n_planned",
    "allocation": method, "per_class": [...], "target_se", "expected_users_accuracy": [...]}``.
    """
    unknown = sorted(set(known) - {"users_accuracy", "capacity"})
    if unknown:
        raise TypeError(f"design() got unexpected keyword argument(s) {', '.join(unknown)}")
    users_accuracy: Optional[Mapping[str, float]] = known.get("users_accuracy")
    capacity: Optional[Sequence[int]] = known.get("capacity")
    expected = expected_users_accuracy(classes)
    if users_accuracy:
        expected = [float(users_accuracy.get(c, u)) for c, u in zip(classes, expected)]
    if per_class is not None:
        mapped = [ar > 0 for ar in map_area]
        counts = [int(per_class) if m else 0 for m in mapped]
        if capacity is not None:
            counts = [min(c, int(cap)) for c, cap in zip(counts, capacity)]
        planned, method = int(per_class) * sum(mapped), "equal"
    else:
        planned = int(n) if n is not None else sample_size(map_area, expected, target_se)
        counts = allocate(planned, map_area, method, minimum, capacity)
    return {
        "n": int(sum(counts)),
        "n_planned": planned,
        "allocation": method,
        "minimum": int(minimum),
        "per_class": counts,
        "target_se": float(target_se),
        "expected_users_accuracy": expected,
    }
