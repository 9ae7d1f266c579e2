"""Remote inputs: which paths are URLs, how GDAL reads them, what a failure says.

A scene's ``path`` may be ``http(s)://``, ``s3://``, ``gs://``, ``az://`` or a GDAL ``/vsi...``
path. GDAL reads them with range requests (/vsicurl/ and its cloud siblings: only the bytes of
the header and of the tiles a read needs, never the whole file), with the settings of
:data:`GDAL_OPTIONS`, applied by :func:`gdal_env` around every open and read of a remote file
(in the main process and in every Dask worker task alike: the options travel with the code, not
with a shared environment). :func:`retrying` re-runs a read that failed mid-transfer (a dropped
connection, a time-out) with a growing delay; GDAL itself retries HTTP 429 and 5xx answers
(``GDAL_HTTP_MAX_RETRY``). A read that still fails is one :class:`~rs_change.errors.InputError`
line naming the URL and what the server said (:func:`remote_error`).

Standard library and rasterio only (imported when first needed, so the CLI stays light); imports
:mod:`rs_change.errors` and :mod:`rs_change.engine` (the GDAL library rasterio loaded, for
:func:`clear_cache`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import Any, Callable, Iterable, Optional, TypeVar

from .errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: URL schemes read through GDAL's virtual file systems, and the GDAL prefix of each.
SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}

#: GDAL configuration for remote reads, in one place (applied by :func:`gdal_env`).
GDAL_OPTIONS: dict[str, str] = {
    # no directory listing on open: a COG has no sidecar files to discover, and listing an S3
    # prefix or an HTTP "folder" costs a request (or thousands of keys) per file
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # the first request of an open fetches this much: a COG's header and tile index in one go
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
    # adjacent tiles of one read in one request; several ranges of one read in parallel
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    # GDAL's own retries of HTTP 429 / 500 / 502 / 503 / 504, with a doubling delay from 0.5 s
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    # time-outs: to connect, and for a whole request (a stalled server is an error, not a hang)
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_TIMEOUT": "60",
    # a small cache of the bytes already fetched (the header, tiles shared by neighbouring blocks)
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(16 << 20),
    # CPL_VSIL_CURL_ALLOWED_EXTENSIONS is left unset: STAC asset hrefs need not end in .tif,
    # and EMPTY_DIR above already stops GDAL probing for .aux.xml / .ovr / .msk files
}

#: Reads that failed mid-transfer (a dropped connection, a time-out) are tried this many times in all.
ATTEMPTS = 3
#: Delay before the second attempt, in seconds; doubled for each further one.
BACKOFF_S = 0.5


def is_remote(path: Any) -> bool:
    """True for URLs GDAL reads over the network (``http(s)``, ``s3``, ``gs``, ``az``) and GDAL
    virtual file system paths (``/vsicurl/...``, ``/vsis3/...``; any ``/vsi`` prefix)."""
    s = str(path)
    return scheme(s) in SCHEMES or s.startswith("/vsi")


def scheme(path: str) -> Optional[str]:
    """The lower-case URL scheme of ``path`` (``https``), or None for a plain path."""
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", path)
    return m.group(1).lower() if m else None


def gdal_path(path: str) -> str:
    """The GDAL name of a path: a URL as its virtual file system path
    (``https://h/a.tif`` -> ``/vsicurl/https://h/a.tif``, ``s3://b/k.tif`` -> ``/vsis3/b/k.tif``);
    anything else unchanged."""
    s = str(path)
    sch = scheme(s)
    if sch in ("http", "https"):
        return "/vsicurl/" + s
    if sch in SCHEMES:
        return SCHEMES[sch] + s.split("://", 1)[1]
    return s


def gdal_env(paths: Iterable[Any] = ()) -> Any:
    """``rasterio.Env(**GDAL_OPTIONS)`` when any of ``paths`` is remote (or none is given), else a
    context that changes nothing (local reads keep the user's GDAL settings as they are)."""
    paths = list(paths)
    if paths and not any(is_remote(p) for p in paths):
        return contextlib.nullcontext()
    import rasterio

    return rasterio.Env(**GDAL_OPTIONS)


#: Seconds the HEAD request of :func:`http_status` waits for an answer.
PROBE_TIMEOUT_S = 10.0


def http_status(url: str, timeout: Optional[float] = None) -> str:
    """What an ``http(s)`` server answers to a HEAD of ``url``, in words: ``HTTP 404 Not
    Found``, ``connection refused``, ``timed out after 10 s`` (for an error line)."""
    import socket
    import urllib.error
    import urllib.request

    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own URL
            return f"HTTP {resp.status} {resp.reason}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return f"timed out after {timeout:g} s"
        if isinstance(reason, socket.gaierror):
            return "host not found"
        return str(getattr(reason, "strerror", None) or reason)
    except (socket.timeout, TimeoutError):
        return f"timed out after {timeout:g} s"
    except OSError as exc:
        return exc.strerror or exc.__class__.__name__


_STATUS = re.compile(r"HTTP response code: (\d+)")

#: What to do about an HTTP status, for the error line.
_FIX = {
    401: "the server wants credentials: set them for GDAL (e.g. GDAL_HTTP_HEADERS, AWS_* or AZURE_* variables)",
    403: "access denied: check the URL and its credentials (a signed URL may have expired: resolve the STAC item again)",
    404: "no such file: check the URL",
}


def remote_error(path: str, exc: BaseException, action: str = "cannot open") -> InputError:
    """One line for a remote path that failed: the URL, the HTTP status or network error, the fix.

    For ``http(s)`` URLs whose GDAL message has no status, the server is asked once more with a
    HEAD request, so a refused connection or a missing file is named as such.
    """
    detail = (str(exc.__cause__ or exc).splitlines() or [exc.__class__.__name__])[0]
    m = _STATUS.search(detail)
    sch = scheme(path)
    code = int(m.group(1)) if m else None
    if code is None and sch in ("http", "https"):
        said = http_status(path)
        m2 = re.match(r"HTTP (\d+)", said)
        if m2 and int(m2.group(1)) >= 400:
            code = int(m2.group(1))
        elif not m2:
            return InputError(f"{path}: {action} ({said}); check that the server is up and the URL is right")
        else:
            return InputError(f"{path}: {action}: the server answers {said} but GDAL could not read it "
                              f"({detail[:120]}); give a GeoTIFF/COG URL")
    if code is not None:
        fix = _FIX.get(code, "the server failed; try again later" if code >= 500 else "check the URL")
        return InputError(f"{path}: {action}: HTTP {code}; {fix}")
    return InputError(f"{path}: {action} ({detail[:160]}); check the path and its credentials")


def clear_cache(path: str) -> bool:
    """Forget what GDAL's /vsicurl/ cache holds of ``path`` (``VSICurlPartialClearCache``): after
    a body cut short, GDAL would otherwise answer the next read of the same bytes from its cache
    with the same failure, without asking the server. True when the cache was cleared."""
    import ctypes

    from .engine import _gdal_library

    lib = _gdal_library()
    fn = getattr(lib, "VSICurlPartialClearCache", None) if lib is not None else None
    if fn is None:  # pragma: no cover - a GDAL without the function (older than 2.4)
        return False
    fn.argtypes = [ctypes.c_char_p]
    fn.restype = None
    fn(gdal_path(path).encode())
    return True


#: GDAL/curl words for "no connection at all" (refused, no route, time-out): named by :func:`remote_error`.
_CONNECT = re.compile(r"connect|resolve host|timed out|timeout", re.I)


def _is_transfer_error(exc: BaseException) -> bool:
    """A failure worth another attempt: not an HTTP status (GDAL has retried 5xx already, and a
    4xx will not change), not a format error."""
    text = str(exc.__cause__ or exc)
    return not _STATUS.search(text) and "not recognized as" not in text


def retrying(fn: Callable[[], T], path: str, action: str = "read failed",
             attempts: Optional[int] = None, backoff: Optional[float] = None,
             reset: Optional[Callable[[], None]] = None) -> T:
    """``fn()`` for a remote ``path``, tried again after a dropped connection or a time-out
    (``attempts`` in all, waiting ``backoff``, then twice that ...); the last failure is one
    :class:`~rs_change.errors.InputError` line (:func:`remote_error`). Other errors pass through.

    ``reset()`` is called before each new attempt: a GDAL dataset whose tile read failed keeps
    failing, so the caller closes it there and ``fn`` opens it again."""
    from rasterio.errors import RasterioIOError

    n = ATTEMPTS if attempts is None else attempts
    delay = BACKOFF_S if backoff is None else backoff
    for i in range(n):
        try:
            return fn()
        except RasterioIOError as exc:
            if i + 1 < n and _is_transfer_error(exc):
                log.warning("%s: %s (%s); attempt %d of %d in %.1f s", path, action,
                            (str(exc.__cause__ or exc).splitlines() or [""])[0][:100], i + 2, n, delay)
                time.sleep(delay)
                delay *= 2
                if reset is not None:
                    reset()
                clear_cache(path)
                continue
            if _is_transfer_error(exc) and not _CONNECT.search(str(exc.__cause__ or exc)):
                detail = (str(exc.__cause__ or exc).splitlines() or [""])[0][:120]
                raise InputError(f"{path}: {action} after {n} attempts (the connection failed mid-transfer: "
                                 f"{detail}); check the network and the server, then run again") from None
            raise remote_error(path, exc, action) from None
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["SCHEMES", "GDAL_OPTIONS", "ATTEMPTS", "BACKOFF_S", "is_remote", "scheme", "gdal_path", "gdal_env",
           "http_status", "remote_error", "retrying", "clear_cache"]
