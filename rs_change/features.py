"""Bands -> features for clustering and labelling.  Pure: arrays in, arrays out.

Features are the bands a profile names (in a fixed role order, so results do not depend on the
band order of the file) plus the water indices the bands allow:

* ``ndwi``  = (green - nir) / (green + nir)            (McFeeters 1996)
* ``mndwi`` = (green - swir1) / (green + swir1)        (Xu 2006), where SWIR exists
* ``ndvi``  = (nir - red) / (nir + red)
* ``brightness`` = mean of the visible and NIR bands
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import numpy as np

from .sensors import ROLES

INDICES = ("ndwi", "mndwi", "ndvi", "brightness")


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(s != 0, (a - b) / np.where(s != 0, s, 1), 0)
    return out.astype(np.float32, copy=False)


def band_order(roles: Sequence[str]) -> list[str]:
    """Roles in canonical order (blue, green, red, nir, swir1, swir2, then others sorted)."""
    known = [r for r in ROLES if r in roles]
    return known + sorted(r for r in roles if r not in ROLES)


def available_indices(roles: Sequence[str]) -> list[str]:
    """The indices that can be computed from these band roles."""
    r = set(roles)
    out = []
    if {"green", "nir"} <= r:
        out.append("ndwi")
    if {"green", "swir1"} <= r:
        out.append("mndwi")
    if {"red", "nir"} <= r:
        out.append("ndvi")
    if r & {"blue", "green", "red", "nir"}:
        out.append("brightness")
    return out


def spectral_index(bands: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """One index (see the module documentation) from a mapping of role -> array.

    Parameters
    ----------
    bands : mapping of str to numpy.ndarray
        Role (``green``, ``nir``, ``swir1``, ``red``...) -> band, any shape (all the same).
    name : {"ndwi", "mndwi", "ndvi", "brightness"}

    Returns
    -------
    numpy.ndarray of float32, the bands' shape
        Normalised differences are 0 where both bands are 0.

    Examples
    --------
    >>> import numpy as np
    >>> float(spectral_index({"green": np.array([0.3]), "nir": np.array([0.1])}, "ndwi")[0])
    0.5
    """
    if name == "ndwi":
        return _nd(bands["green"], bands["nir"])
    if name == "mndwi":
        return _nd(bands["green"], bands["swir1"])
    if name == "ndvi":
        return _nd(bands["nir"], bands["red"])
    if name == "brightness":
        vis = [bands[r] for r in ("blue", "green", "red", "nir") if r in bands]
        return (sum(v.astype(np.float32) for v in vis) / np.float32(len(vis))).astype(np.float32)
    raise KeyError(f"unknown index {name!r}; known: {', '.join(INDICES)}")


def default_features(roles: Sequence[str]) -> list[str]:
    """Features clustered by default: every band in canonical order, then NDWI and MNDWI."""
    idx = [i for i in available_indices(roles) if i in ("ndwi", "mndwi")]
    return band_order(roles) + idx


def feature_stack(bands: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Stack features into an array of shape ``(len(names),) + band shape`` (float32).

    Parameters
    ----------
    bands : mapping of str to numpy.ndarray
        Role -> band, all of one shape.
    names : sequence of str
        Band roles and/or index names (see :func:`spectral_index`).

    Returns
    -------
    numpy.ndarray of float32, shape (len(names),) + band shape

    Examples
    --------
    >>> import numpy as np
    >>> feature_stack({"green": np.array([3.0]), "nir": np.array([1.0])}, ["nir", "ndwi"]).tolist()
    [[1.0], [0.5]]
    """
    out = []
    for n in names:
        out.append(bands[n].astype(np.float32, copy=False) if n in bands else spectral_index(bands, n))
    return np.stack(out)


def feature_matrix(
    bands: Mapping[str, np.ndarray], valid: np.ndarray, names: Sequence[str], order: Literal["C", "F"] = "C"
) -> np.ndarray:
    """Features of the valid pixels as a ``(n_valid, n_features)`` float32 matrix.

    Parameters
    ----------
    bands : mapping of role to ndarray (h, w)
    valid : bool ndarray (h, w)
    names : sequence of str
        Band roles and index names (:data:`INDICES`), in column order.
    order : {"C", "F"}, default "C"
        Memory layout of the result; "F" (one contiguous column per feature) is what the
        per-block predict and labelling read fastest. The values do not depend on it.

    Returns
    -------
    ndarray, shape (n_valid, len(names))
        Rows in row-major pixel order of ``valid``.
    """
    every = bool(valid.all())  # a block with no unobserved pixel: flat views, no boolean gathers

    def pick(v: np.ndarray) -> np.ndarray:
        return v.reshape(-1) if every else v[valid]

    sub: dict[str, np.ndarray] = {}
    cols = []
    for n in names:
        if n in bands:
            cols.append(pick(bands[n]).astype(np.float32, copy=False))
        else:
            if not sub:
                sub = {k: pick(v) for k, v in bands.items()}
            cols.append(spectral_index(sub, n))
    if not cols:
        return np.empty((int(valid.sum()), 0), np.float32)
    out = np.empty((len(cols[0]), len(cols)), dtype=np.result_type(*cols), order=order)
    for j, c in enumerate(cols):
        out[:, j] = c
    return out
