"""One error hierarchy for rs-change.

Every error a user can fix derives from :class:`RsChangeError`; children also inherit the
builtin that fits (``ValueError``, ``OSError``, ...), so ``except ValueError`` keeps working in
scripts.  Messages are one line that names the file or config key and the fix.  The CLI turns an
``RsChangeError`` into that one line and exit status 2; anything else is an internal error
(status 1).
"""

from __future__ import annotations

import threading
from typing import Any


class RsChangeError(Exception):
    """Base class of every user-facing rs-change error.

    Examples
    --------
    >>> from rs_change.errors import ConfigError
    >>> issubclass(ConfigError, RsChangeError) and issubclass(ConfigError, ValueError)
    True
    """


class ConfigError(RsChangeError, ValueError):
    """The configuration is invalid (unknown key, bad value, YAML syntax)."""


class InputError(RsChangeError, OSError):
    """An input file is missing, unreadable, corrupt or not a raster."""


class GeoreferenceError(RsChangeError, ValueError):
    """A raster has no CRS or geotransform, or grids cannot be aligned."""


class BandProfileError(RsChangeError, ValueError):
    """A band profile does not fit the file (too few bands, unknown role)."""


class NoOverlapError(GeoreferenceError):
    """Two dates, or a scene and its area of interest, do not overlap."""


class NoValidPixelsError(RsChangeError, ValueError):
    """Every pixel of a scene is nodata, cloud or outside the area of interest."""


class ClusteringError(RsChangeError, ValueError):
    """k-means cannot run as asked (k too large or too small, unknown metric)."""


class OutputError(RsChangeError, OSError):
    """The output folder cannot be written, or would overwrite existing results."""


class SampleError(RsChangeError, ValueError):
    """A reference sample cannot be used (unknown class name, a point off the map it was drawn from)."""


class DependencyError(RsChangeError, ImportError):
    """An optional extra is needed (for example ``pip install "rs-change[hdf4]"``)."""


class RsChangeWarning(UserWarning):
    """Base class of rs-change warnings: usable results that deserve a second look."""


class LabellingWarning(RsChangeWarning):
    """The water decision is uncertain or was made by hand (cluster ids depend on the seed)."""



class Cancelled(KeyboardInterrupt):
    """Raised in a worker thread by :func:`check_cancelled` once the work it serves was
    interrupted (Ctrl-C, SIGTERM): long loops (k-means restarts and iterations, model
    selection, silhouettes) stop at their next step instead of running to the end.
    """


_work = threading.local()


def run_cancellable(event: threading.Event, fn: Any, item: Any) -> Any:
    """``fn(item)`` with ``event`` as this thread's stop flag (see :func:`check_cancelled`)."""
    previous = getattr(_work, "event", None)
    _work.event = event
    try:
        return fn(item)
    finally:
        _work.event = previous


def check_cancelled() -> None:
    """Raise :class:`Cancelled` when the work this thread runs for was interrupted.

    Worker threads cannot receive signals: the main thread takes the ``KeyboardInterrupt`` and
    sets the flag of :func:`run_cancellable`; the worker stops here.  Cheap (one attribute
    look-up): call it once per iteration of any loop that may run for more than a moment.
    """
    event = getattr(_work, "event", None)
    if event is not None and event.is_set():
        raise Cancelled()
