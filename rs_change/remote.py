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
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

from .errors import InputError, check_cancelled

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
    # (time-outs too): at most 3 tries of one request, 0.5 s then 1 s apart
    "GDAL_HTTP_MAX_RETRY": "2",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    # time-outs: to connect, and for a whole request, body included (a stalled or trickling
    # server is an error, not a hang): one GDAL request with its retries takes at most
    # 3 x 20 + 1.5 s; see REQUEST_DEADLINE_S for the whole of a read
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_TIMEOUT": "20",
    # a transfer slower than 1 kB/s over 10 s fails before that time-out: a server that answers
    # and then stops sending the body (a stall mid-read) is a failed attempt after 10 s, not 20
    "GDAL_HTTP_LOW_SPEED_TIME": "10",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1024",
    # a small cache of the bytes already fetched (the header, tiles shared by neighbouring blocks)
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(16 << 20),
    # CPL_VSIL_CURL_ALLOWED_EXTENSIONS is left unset: STAC asset hrefs need not end in .tif,
    # and EMPTY_DIR above already stops GDAL probing for .aux.xml / .ovr / .msk files
}

#: Reads that failed mid-transfer (a dropped connection, a time-out) are tried this many times in all,
#: as long as the next attempt can end within :data:`REQUEST_DEADLINE_S`.
ATTEMPTS = 3
#: Seconds one open or read of a remote file may take in all, every retry included: a server
#: that accepts connections and never answers is an error after at most this long (in practice
#: after :data:`PROBE_TIMEOUT_S`, when :func:`check_server` first asks it for a few bytes).
REQUEST_DEADLINE_S = 120.0
#: The longest one GDAL request can take with its own retries (GDAL_HTTP_TIMEOUT x 3 tries + delays).
GDAL_REQUEST_S = 3 * 20 + 1.5
#: Delay before the second attempt, in seconds; doubled for each further one.
BACKOFF_S = 0.5


def is_remote(path: Any) -> bool:
    """True for URLs GDAL reads over the network (``http(s)``, ``s3``, ``gs``, ``az``) and GDAL
    virtual file system paths (``/vsicurl/...``, ``/vsis3/...``; any ``/vsi`` prefix).
    """
    s = str(path)
    return scheme(s) in SCHEMES or s.startswith("/vsi")


def scheme(path: str) -> Optional[str]:
    """The lower-case URL scheme of ``path`` (``https``), or None for a plain path."""
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", path)
    return m.group(1).lower() if m else None


def gdal_path(path: str) -> str:
    """The GDAL name of a path: a URL as its virtual file system path
    (``https://h/a.tif`` -> ``/vsicurl/https://h/a.tif``, ``s3://b/k.tif`` -> ``/vsis3/b/k.tif``);
    anything else unchanged.
    """
    s = str(path)
    sch = scheme(s)
    if sch in ("http", "https"):
        return "/vsicurl/" + s
    if sch in SCHEMES:
        return SCHEMES[sch] + s.split("://", 1)[1]
    return s


def gdal_env(paths: Iterable[Any] = ()) -> Any:
    """``rasterio.Env(**GDAL_OPTIONS)`` when any of ``paths`` is remote (or none is given), else a
    context that changes nothing (local reads keep the user's GDAL settings as they are).  Inside
    it, the main thread counts as reading a remote file (:func:`main_thread_reads_remote`).
    """
    paths = list(paths)
    if paths and not any(is_remote(p) for p in paths):
        return contextlib.nullcontext()
    import rasterio

    stack = contextlib.ExitStack()
    stack.enter_context(rasterio.Env(**GDAL_OPTIONS))
    stack.enter_context(_remote_reads())
    return stack


_MAIN_THREAD_READS = [0]  # depth of the gdal_env contexts the main thread is in


@contextlib.contextmanager
def _remote_reads() -> Iterator[None]:
    import threading

    main = threading.current_thread() is threading.main_thread()
    if main:
        _MAIN_THREAD_READS[0] += 1
    try:
        yield
    finally:
        if main:
            _MAIN_THREAD_READS[0] -= 1


def main_thread_reads_remote() -> bool:
    """Whether the main thread is opening or reading a remote file (inside :func:`gdal_env`): a
    GDAL call that may wait a minute on a stalled server, and writes nothing.  The console
    script ends at once when a signal finds it there (:class:`rs_change.process.SignalTrap`).
    """
    return _MAIN_THREAD_READS[0] > 0


#: Seconds the requests of :func:`http_status` and :func:`check_server` may take in all
#: (connecting, headers and body: a server that trickles its headers byte by byte is cut off too).
PROBE_TIMEOUT_S = 10.0
#: Bytes :func:`check_server` asks for: one is enough to see that the server answers ranges.
PROBE_BYTES = 1


def _with_deadline(fn: Callable[[], T], timeout: float) -> T:
    """``fn()`` in a helper thread, waited for at most ``timeout`` seconds in all (raises
    ``TimeoutError``). The wait is interruptible: Ctrl-C and SIGTERM reach the caller at once;
    the helper (a daemon thread blocked on a socket with its own time-out) is left to end.
    """
    import threading

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    t = threading.Thread(target=work, name="rs-change-http", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"timed out after {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def http_status(url: str, timeout: Optional[float] = None) -> str:
    """What an ``http(s)`` server answers to a HEAD of ``url``, in words: ``HTTP 404 Not
    Found``, ``connection refused``, ``timed out after 10 s``, ``a redirect loop`` (for an error
    line). The whole request takes at most ``timeout`` seconds.
    """
    import socket
    import urllib.error
    import urllib.request

    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    req = urllib.request.Request(url, method="HEAD")

    def head() -> str:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own URL
            return f"HTTP {resp.status} {resp.reason}"

    try:
        return _with_deadline(head, timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            return "a redirect loop (too many redirects)"
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


#: Seconds one JSON document (a STAC catalog, collection or item) may take to arrive, and its largest size.
DOCUMENT_TIMEOUT_S = 60.0
DOCUMENT_MAX_BYTES = 64 << 20


def fetch_document(url: str) -> bytes:
    """The body of a small ``http(s)`` document (a STAC catalog, item ...), read under one deadline
    of :data:`DOCUMENT_TIMEOUT_S` and at most :data:`DOCUMENT_MAX_BYTES`; a silent, endless or
    failing server is one :class:`~rs_change.errors.InputError` line naming it.
    """
    import urllib.error
    import urllib.request

    host = _host(url)

    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=DOCUMENT_TIMEOUT_S) as resp:  # noqa: S310 - the user's own URL
            return resp.read(DOCUMENT_MAX_BYTES + 1)

    try:
        body = _with_deadline(get, DOCUMENT_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            raise InputError(f"{url}: cannot read: the server {host} redirects in a loop; check the URL") from None
        fix = _FIX.get(exc.code, "the server failed; try again later" if exc.code >= 500 else "check the URL")
        raise InputError(f"{url}: cannot read: HTTP {exc.code}; {fix}") from None
    except TimeoutError:
        raise InputError(f"{url}: cannot read: the server {host} did not send the document (timed out after "
                         f"{DOCUMENT_TIMEOUT_S:g} s); check that the server is up and the URL is right") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"{url}: cannot read ({str(getattr(reason, 'strerror', None) or reason)[:120]}); "
                         f"check that the server {host} is up and the URL is right") from None
    if len(body) > DOCUMENT_MAX_BYTES:
        raise InputError(f"{url}: more than {DOCUMENT_MAX_BYTES >> 20} MB, too large for a STAC document; "
                         "check the URL (a catalog, collection, item or item collection)")
    return body


#: URLs :func:`check_server` has accepted in this process, with the file size the server declared.
_CHECKED: dict[str, Optional[int]] = {}


def check_server(url: str, timeout: Optional[float] = None) -> Optional[int]:
    """Ask the server of an ``http(s)`` ``url`` for its first :data:`PROBE_BYTES` bytes, under one
    deadline, before GDAL reads it; the file's size (from ``Content-Range``), or None for other
    paths. Raises one :class:`~rs_change.errors.InputError` line naming the server when it
    cannot serve range requests safely.

    Unsafe answers:

    - no answer within ``timeout`` seconds (connect, headers and body together);
    - ``200`` with the whole file (or an endless body) instead of ``206`` for a ``Range``
      request: GDAL would stream the file into memory for every read;
    - more bytes than asked for, or a body shorter than the declared range;
    - an HTTP error, a redirect loop, a refused connection.

    At most ``PROBE_BYTES + 1`` bytes of body are read, whatever the server sends.
    """
    if scheme(url) not in ("http", "https"):
        return None
    if url in _CHECKED:
        return _CHECKED[url]
    import socket
    import urllib.error
    import urllib.request

    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    host = _host(url)
    req = urllib.request.Request(url, headers={"Range": f"bytes=0-{PROBE_BYTES - 1}"})

    def get() -> tuple[int, dict[str, str], int]:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own URL
            body = resp.read(PROBE_BYTES + 1)
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, len(body)

    try:
        status, headers, got = _with_deadline(get, timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # the error response's socket
        if exc.code in (429, 500, 502, 503, 504):  # passing: GDAL asks again (GDAL_HTTP_MAX_RETRY) and reports
            return None
        if 300 <= exc.code < 400:
            raise InputError(f"{url}: cannot open: the server {host} redirects in a loop (too many redirects); "
                             "check the URL") from None
        fix = _FIX.get(exc.code, "the server failed; try again later" if exc.code >= 500 else "check the URL")
        raise InputError(f"{url}: cannot open: HTTP {exc.code}; {fix}") from None
    except (TimeoutError, socket.timeout):
        raise InputError(f"{url}: cannot open: the server {host} did not answer (timed out after {timeout:g} s); "
                         "check that the server is up and the URL is right") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        said = ("connection refused" if isinstance(reason, ConnectionRefusedError) else "host not found"
                if isinstance(reason, socket.gaierror) else str(getattr(reason, "strerror", None) or reason)[:120])
        raise InputError(
            f"{url}: cannot open ({said}); check that the server {host} is up and the URL is right"
        ) from None
    size: Optional[int] = None
    if status == 206:
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", headers.get("content-range", ""))
        if m is None or int(m.group(1)) != 0:
            raise InputError(
                f"{url}: cannot open: the server {host} answered a range request without a valid "
                "Content-Range; serve the file from a server with HTTP range support, or download it"
            )
        want = int(m.group(2)) + 1
        size = None if m.group(3) == "*" else int(m.group(3))
        if got != want or (size is not None and want > size):
            raise InputError(
                f"{url}: cannot open: the server {host} sent {got:,} bytes for a range of {want:,}; "
                "it does not serve range requests correctly: use another server, or download the file"
            )
    elif status == 200:
        n = headers.get("content-length")
        if n is None or not n.isdigit() or int(n) > PROBE_BYTES or got > PROBE_BYTES:
            raise InputError(
                f"{url}: cannot open: the server {host} ignores range requests (it answered 200 with "
                f"{'the whole file' if n else 'a body of unknown length'}); rs-change reads remote files "
                "by ranges: serve it from a server with HTTP range support, or download it and give the local path"
            )
        size = int(n)
    _CHECKED[url] = size
    return size


_STATUS = re.compile(r"HTTP response code: (\d+)")

#: What to do about an HTTP status, for the error line.
_FIX = {
    401: "the server wants credentials: set them for GDAL (e.g. GDAL_HTTP_HEADERS, AWS_* or AZURE_* variables)",
    403: ("access denied: check the URL and its credentials (a signed URL may have expired: resolve the STAC "
          "item again)"),
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
            return InputError(
                f"{path}: {action}: the server answers {said} but GDAL could not read it "
                f"({detail[:120]}); give a GeoTIFF/COG URL"
            )
    if code is not None:
        fix = _FIX.get(code, "the server failed; try again later" if code >= 500 else "check the URL")
        return InputError(f"{path}: {action}: HTTP {code}; {fix}")
    return InputError(f"{path}: {action} ({detail[:160]}); check the path and its credentials")


def clear_cache(path: str) -> bool:
    """Forget what GDAL's /vsicurl/ cache holds of ``path`` (``VSICurlPartialClearCache``): after
    a body cut short, GDAL would otherwise answer the next read of the same bytes from its cache
    with the same failure, without asking the server. True when the cache was cleared.
    """
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
    4xx will not change), not a format error.
    """
    text = str(exc.__cause__ or exc)
    return not _STATUS.search(text) and "not recognized as" not in text


def _tiles_end(path: str, limit: int = 100_000) -> Optional[int]:
    """The byte where the last tile (or strip) of a GeoTIFF ends, from its tile index (read with
    the header: no tile is fetched); None when unknown (not a TIFF, over ``limit`` blocks).
    """
    import rasterio

    try:
        with rasterio.open(gdal_path(path)) as ds:
            if ds.driver != "GTiff":
                return None
            (bh, bw), n = ds.block_shapes[0], ds.count
            rows, cols = -(-ds.height // bh), -(-ds.width // bw)
            if rows * cols * n > limit:
                return None
            end = 0
            for b in range(1, (n if ds.interleaving is None or ds.interleaving.name == "BAND" else 1) + 1):
                for r in range(rows):
                    for c in range(cols):
                        off = ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=b)
                        size = ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=b)
                        if off and size:
                            end = max(end, int(off) + int(size))
            return end or None
    except Exception:  # noqa: BLE001 - only a better message is at stake
        return None


def retrying(
    fn: Callable[[], T],
    path: str,
    action: str = "read failed",
    attempts: Optional[int] = None,
    backoff: Optional[float] = None,
    reset: Optional[Callable[[], None]] = None,
) -> T:
    """``fn()`` for a remote ``path``, tried again after a dropped connection or a time-out
    (``attempts`` in all, waiting ``backoff``, then twice that ...); the last failure is one
    :class:`~rs_change.errors.InputError` line (:func:`remote_error`). Other errors pass through.

    ``reset()`` is called before each new attempt: a GDAL dataset whose tile read failed keeps
    failing, so the caller closes it there and ``fn`` opens it again.  A read that fails after the
    work it serves was interrupted (:func:`~rs_change.errors.check_cancelled`: a block left running
    by an interrupted map) is not tried again, and no read starts once it was.
    """
    from rasterio.errors import RasterioIOError

    n = ATTEMPTS if attempts is None else attempts
    delay = BACKOFF_S if backoff is None else backoff
    t0 = time.monotonic()
    for i in range(n):
        check_cancelled()  # the run was interrupted (a block left running by Engine.map): no new read
        try:
            return fn()
        except RasterioIOError as exc:
            time_left = REQUEST_DEADLINE_S - (time.monotonic() - t0) - delay >= GDAL_REQUEST_S
            if i + 1 < n and _is_transfer_error(exc) and time_left:
                log.info(
                    "%s: %s (%s); attempt %d of %d in %.1f s",
                    path,
                    action,
                    (str(exc.__cause__ or exc).splitlines() or [""])[0][:100],
                    i + 2,
                    n,
                    delay,
                )
                time.sleep(delay)
                delay *= 2
                if reset is not None:
                    reset()
                clear_cache(path)
                continue
            if _is_transfer_error(exc) and not _CONNECT.search(str(exc.__cause__ or exc)):
                detail = (str(exc.__cause__ or exc).splitlines() or [""])[0][:120]
                end = _tiles_end(path)
                if end is not None and _CHECKED.get(path) is not None and end > int(_CHECKED[path] or 0):
                    raise InputError(
                        f"{path}: {action}: the file is truncated or corrupt (its tiles run to byte "
                        f"{end:,} but the server {_host(path)} declares {_CHECKED[path]:,} bytes); "
                        "replace the file on the server"
                    ) from None
                raise InputError(
                    f"{path}: {action} after {i + 1} attempt{'s' if i else ''} (the connection failed mid-transfer: "
                    f"{detail}); check the network and the server {_host(path)}, then run again"
                ) from None
            raise remote_error(path, exc, action) from None
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = [
    "SCHEMES",
    "GDAL_OPTIONS",
    "ATTEMPTS",
    "BACKOFF_S",
    "REQUEST_DEADLINE_S",
    "is_remote",
    "scheme",
    "gdal_path",
    "gdal_env",
    "main_thread_reads_remote",
    "http_status",
    "check_server",
    "fetch_document",
    "remote_error",
    "retrying",
    "clear_cache",
]
