"""Robust per-feature scaling of pixel features before k-means: :func:`fit_scaler` (median and
normalised IQR of a sample) and :func:`apply_scaler` (block by block, in place where it can).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .kmeans_ops import _check_2d, _check_finite


def fit_scaler(X_sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust per-feature offset and scale: median and normalised IQR.

    ``scale = (q75 - q25) / 1.349`` (equal to the standard deviation for normal data); a feature
    with zero IQR falls back to its standard deviation, and a constant feature to 1.

    Why this suits every metric: all three metrics add up (euclidean, manhattan) or take the
    maximum of (chebyshev) per-feature differences, so a band with a wider spread of digital
    numbers dominates the distance — quadratically for euclidean, linearly for manhattan and
    completely for chebyshev, where the largest-scale band alone decides the distance.  Scaling
    every band to unit spread gives each an equal say.  The spread is measured robustly because
    imagery has clouds, glint, saturated and left-over nodata pixels: they inflate a standard
    deviation or a range and would squash the bulk of the pixels that the clusters must
    separate; the IQR ignores them.  The offset (median) does not change any distance, but
    centring near 0 keeps float32 arithmetic precise.

    Parameters
    ----------
    X_sample : ndarray, shape (n_samples, n_features)
        A sample of valid (finite) pixels.

    Returns
    -------
    offset : ndarray of float64, shape (n_features,)
    scale : ndarray of float64, shape (n_features,)
        Strictly positive.  Apply with :func:`apply_scaler`: ``(X - offset) / scale``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0], [100.0, 50.0]])
    >>> offset, scale = fit_scaler(X)
    >>> offset.tolist()
    [2.0, 30.0]
    """
    X = _check_2d(X_sample, "X_sample")
    X = np.asarray(X, dtype=np.float64)
    _check_finite(X, "X_sample")
    q25, offset, q75 = np.percentile(X, [25, 50, 75], axis=0)
    scale = (q75 - q25) / 1.349
    std = X.std(axis=0)
    scale = np.where(scale > 0, scale, std)
    scale = np.where(scale > 0, scale, 1.0)
    return offset, scale


def apply_scaler(
    X: np.ndarray, offset: np.ndarray, scale: np.ndarray, dtype: Any = np.float32
) -> np.ndarray:
    """``(X - offset) / scale`` as a new array of ``dtype``.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    offset, scale : ndarray, shape (n_features,)
        From :func:`fit_scaler`.
    dtype : numpy dtype, default float32

    Returns
    -------
    ndarray of ``dtype``, shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> apply_scaler(np.array([[2.0, 4.0]]), np.array([1.0, 0.0]), np.array([1.0, 2.0])).tolist()
    [[1.0, 2.0]]
    """
    out = np.array(X, dtype=dtype, copy=True)
    out -= np.asarray(offset, dtype=dtype)
    out /= np.asarray(scale, dtype=dtype)
    return out
