"""The block executor: run one function over many items (blocks of the reference grid, dates)
on local threads, local processes, synchronously, or on a dask.distributed cluster.

Results always come back **in the order of the items**, with a bounded number of items in
flight, so that the pipeline can reduce them in a fixed order (sums bit-identical whatever the
scheduler) and memory stays set by the block size times the number of workers.

Schedulers (``compute.scheduler`` in the config):

``threads`` (default)
    A thread pool of ``compute.workers`` threads (default: every core).  GDAL reads, numpy and
    the k-means kernel release the GIL, so threads use both cores without copying blocks.
``processes``
    A local process pool (``spawn``).  The function is pickled with each item; its readers are
    opened inside each worker process and cached there.
``synchronous``
    One item after the other in the calling thread (debugging, profiling).
``tcp://host:port`` (or any dask address: ``tls://``, ``inproc://`` ...)
    A running dask.distributed scheduler.  The function (models, grid, area of interest: a few
    kB) is scattered once to every worker; each worker reads its blocks itself, so the scene
    files must be readable at the same paths on the workers (shared disk, or URLs GDAL reads).
    Only the small per-block results (masks and area sums) travel back to the client, which
    writes the rasters.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import uuid
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator, Optional

from .errors import run_cancellable

log = logging.getLogger(__name__)

LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")

#: Seconds a map that stops early (Ctrl-C, SIGTERM, an error) waits for the items still running
#: before it lets go of them: enough for a k-means fit to reach its next cancellation check, short
#: enough that an interrupt is honoured within 2 s even when an item is stuck in a stalled read.
LET_GO_AFTER_S = 0.5


def is_cluster_address(scheduler: str) -> bool:
    """True when ``scheduler`` names a dask.distributed scheduler (``proto://...``)."""
    return "://" in str(scheduler)


def default_workers(workers: Optional[int]) -> int:
    """``workers`` or, when None, the number of cores."""
    return int(workers or os.cpu_count() or 1)


class Engine:
    """Maps functions over items with one scheduler; use as a context manager.

    Parameters
    ----------
    scheduler : str, default "threads"
        ``threads`` | ``processes`` | ``synchronous`` | a dask scheduler address
        (``tcp://host:port``).
    workers : int, optional
        Local threads / processes (default: every core).  Ignored for a cluster, whose size is
        the sum of its workers' threads.
    client : distributed.Client, optional
        An existing client to use instead of connecting to ``scheduler`` (not closed on exit).
    in_flight : int, optional
        Items submitted but not yet consumed (default: twice the parallelism).  Bounds memory.
    """

    def __init__(self, scheduler: str = "threads", workers: Optional[int] = None, client: Any = None,
                 in_flight: Optional[int] = None) -> None:
        self.scheduler = "distributed" if client is not None else str(scheduler)
        if (self.scheduler not in LOCAL_SCHEDULERS and self.scheduler != "distributed"
                and not is_cluster_address(self.scheduler)):
            from .errors import ConfigError

            raise ConfigError(
                f"compute.scheduler: unknown scheduler {scheduler!r}; give threads, processes, synchronous or tcp://host:port"
            )
        self.workers = 1 if self.scheduler == "synchronous" else default_workers(workers)
        self._client = client
        self._own_client = False
        self._pool: Any = None
        self._in_flight = in_flight
        self._stopped_early = False  # a map stopped with items running: they may still be (Engine._let_go)

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "Engine":
        if self.scheduler == "distributed" or is_cluster_address(self.scheduler):
            if self._client is None:
                self._client = _connect(self.scheduler)
                self._own_client = True
            n = sum(self._client.nthreads().values()) or 1
            self.workers = n
        elif self.scheduler == "threads" and self.workers > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="rs-change")
        elif self.scheduler == "processes":
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut the pool down (cancelling what has not started) and close a client it made."""
        if self._pool is not None:
            # items left running by an interrupted map end on their own (Engine._let_go)
            self._pool.shutdown(wait=not self._stopped_early, cancel_futures=True)
            self._pool = None
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None
            self._own_client = False

    @property
    def parallelism(self) -> int:
        """How many items run at once (at least 1)."""
        return max(1, self.workers)

    # -- mapping --------------------------------------------------------------------------------
    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], in_flight: Optional[int] = None) -> Iterator[Any]:
        """``fn(item)`` for every item, yielded in the items' order.

        At most ``in_flight`` results (default: twice the parallelism) are computed ahead of the
        consumer, so memory is bounded whatever the number of items.

        Parameters
        ----------
        fn : callable
            Must pickle for ``processes`` and clusters (a module-level function or an instance of
            a module-level class).
        items : iterable
        in_flight : int, optional

        Yields
        ------
        object
            ``fn(item)``, in order.  An exception raised by ``fn`` is re-raised here.
        """
        limit = max(1, in_flight or self._in_flight or 2 * self.parallelism)
        if self.scheduler == "synchronous" or (self._pool is None and self._client is None):
            for it in items:
                yield fn(it)
            return
        if self._client is not None:
            yield from self._map_distributed(fn, items, limit)
            return
        pending: deque[Future] = deque()
        stop = threading.Event()  # set when the consumer stops early: running items stop at their next check
        threads = self.scheduler == "threads"
        try:
            # a future leaves ``pending`` only once its result is in hand, so an interrupt while
            # waiting for it still finds it in the wait below
            for it in items:
                if threads:
                    pending.append(self._pool.submit(run_cancellable, stop, fn, it))
                else:
                    pending.append(self._pool.submit(fn, it))
                if len(pending) >= limit:
                    result = pending[0].result()
                    pending.popleft()
                    yield result
            while pending:
                result = pending[0].result()
                pending.popleft()
                yield result
        finally:
            running = [f for f in pending if not f.cancel() and not f.done()]
            # long loops in the running items (k-means fits) raise Cancelled (rs_change.errors.check_cancelled)
            stop.set()
            if running:
                self._let_go(running)

    def _let_go(self, running: list[Future]) -> None:
        """Wait at most :data:`LET_GO_AFTER_S` for the items still running when a map stops early
        (an interrupt, an error), then leave the rest running.

        An item blocked in a GDAL read of a stalled server cannot be stopped and may take a minute
        to fail; the caller goes on without it (Ctrl-C and SIGTERM are honoured within seconds),
        while the readers it may be using stay open until it ends (:func:`close_readers` waits for
        it: a GDAL dataset closed under a running read crashes the process).  The pool is then
        shut down without waiting for it.
        """
        self._stopped_early = True  # set first: a second Ctrl-C may end the wait below
        _track_running(running)
        _, left = wait(running, timeout=LET_GO_AFTER_S)
        if left:
            log.debug("%d item(s) still running after the map stopped; left to end on their own", len(left))

    def _map_distributed(self, fn: Callable[[Any], Any], items: Iterable[Any], limit: int) -> Iterator[Any]:
        client = self._client
        [fn_future] = client.scatter([fn], broadcast=True, hash=False)
        pending: deque[Any] = deque()
        try:
            for it in items:
                pending.append(client.submit(_apply, fn_future, it, pure=False))
                if len(pending) >= limit:
                    f = pending.popleft()
                    yield f.result()
                    f.release()
            while pending:
                f = pending.popleft()
                yield f.result()
                f.release()
        finally:
            for f in pending:
                f.cancel()
            fn_future.release()


def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _connect(address: str) -> Any:
    from .errors import ConfigError

    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise ConfigError(
            "compute.scheduler: a cluster address needs dask.distributed; pip install distributed"
        ) from None
    probe_scheduler(address)
    try:
        return Client(address, timeout="10s", set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, and whatever a peer that is not a scheduler makes it raise
        first = (str(exc).splitlines() or [exc.__class__.__name__])[0][:100]
        raise ConfigError(
            f"compute.scheduler: cannot reach the dask scheduler at {address} ({first}); "
            "start it (dask scheduler) or fix the address"
        ) from None


#: Seconds to wait for a scheduler to answer (connection, then its handshake).
PROBE_TIMEOUT_S = 10.0


def probe_scheduler(address: str, timeout: Optional[float] = None) -> None:
    """Check that ``tcp://host:port`` answers like a dask scheduler before a Client connects to it.

    A scheduler sends its handshake as soon as a connection is accepted: a frame whose 8-byte
    length comes first.  A peer that is not a scheduler either says nothing (an HTTP server, a
    silent port: the Client would wait forever) or sends bytes that read as an absurd length (the
    Client would try to allocate exabytes).  Both are refused here in one line
    (:class:`~rs_change.errors.ConfigError`).  Other schemes (``tls://``, ``inproc://``) are left
    to the Client.
    """
    import socket
    import struct
    from urllib.parse import urlsplit

    from .errors import ConfigError

    if not address.startswith("tcp://"):
        return
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise ConfigError(f"compute.scheduler: {address!r} is not an address of the form tcp://host:port; fix it")
    fix = "start it (dask scheduler) or fix the address"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            head = b""
            while len(head) < 8:
                chunk = sock.recv(8 - len(head))
                if not chunk:
                    break
                head += chunk
    except socket.timeout:
        raise ConfigError(f"compute.scheduler: {address} accepted the connection but sent no dask handshake within "
                          f"{timeout:g} s, so it is not a dask scheduler; {fix}") from None
    except OSError as exc:
        raise ConfigError(f"compute.scheduler: cannot reach the dask scheduler at {address} "
                          f"({exc.strerror or exc.__class__.__name__}); {fix}") from None
    n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
    if not 0 < n < (64 << 20):  # a handshake is a few hundred bytes
        raise ConfigError(
            f"compute.scheduler: {address} does not speak the dask protocol (it is not a dask scheduler); {fix}"
        )


_GDAL_CACHE_SET = False
_GDAL_CACHE_MB: Optional[int] = None  # the size limit_gdal_cache set (None: the user's or GDAL's)


def limit_gdal_cache(mb: int) -> None:
    """Cap GDAL's block cache of this process at ``mb`` MB (GDAL's default is 5 % of the RAM).

    Has effect only before GDAL's first cached read in the process and when the user has not set
    the ``GDAL_CACHEMAX`` environment variable (which then wins).  Cheap to call per block.
    """
    global _GDAL_CACHE_SET, _GDAL_CACHE_MB
    if _GDAL_CACHE_SET:
        return
    _GDAL_CACHE_SET = True
    if "GDAL_CACHEMAX" not in os.environ:
        # through the environment (read by GDAL when its cache first fills), in MB
        os.environ["GDAL_CACHEMAX"] = str(int(mb))
        _GDAL_CACHE_MB = int(mb)


def shrink_gdal_cache(mb: int) -> bool:
    """Lower GDAL's block cache of this process to ``mb`` MB now (it frees the excess).

    The passes reuse decoded tiles (a shifted date's margins, the rows shared by vertically
    adjacent blocks); the writing stage reads each staging tile once, so a full cache only holds
    memory: on the 4x benchmark pair it grew to its 256 MB cap while the NAIP-size pair never
    filled it. Calls ``GDALSetCacheMax64`` of the GDAL library rasterio loaded (found beside
    rasterio; nothing happens when it is not found or when ``GDAL_CACHEMAX`` is set in the
    environment). Returns True when the cache was set.
    """
    if _GDAL_CACHE_MB is None or os.environ.get("GDAL_CACHEMAX") != str(_GDAL_CACHE_MB):
        return False  # the size is the user's (GDAL_CACHEMAX), or this process never set it
    lib = _gdal_library()
    if lib is None:
        return False
    try:
        fn = lib.GDALSetCacheMax64
        fn.argtypes = [ctypes.c_int64]
        fn.restype = None
        fn(int(mb) * 1024 * 1024)
        return True
    except AttributeError:  # pragma: no cover - not a GDAL library
        return False


def _gdal_library() -> Any:
    """The GDAL shared library rasterio uses (its wheel's copy), or None."""
    import glob

    import rasterio

    base = os.path.dirname(os.path.dirname(rasterio.__file__))
    pats = [os.path.join(base, "rasterio.libs", "libgdal*.so*"),
            os.path.join(base, "rasterio", ".dylibs", "libgdal*.dylib"),
            os.path.join(base, "rasterio.libs", "gdal*.dll")]
    for pat in pats:
        for path in sorted(glob.glob(pat)):
            try:
                return ctypes.CDLL(path)
            except OSError:  # pragma: no cover
                continue
    try:  # a rasterio built against the system GDAL
        from ctypes.util import find_library

        name = find_library("gdal")
        return ctypes.CDLL(name) if name else None
    except OSError:  # pragma: no cover
        return None


# ---------------------------------------------------------------------------------------------
# Per-thread cache of open readers, keyed by a run token (valid in any process)
# ---------------------------------------------------------------------------------------------
_CACHE_LOCK = threading.Lock()
_OPEN: "OrderedDict[str, list[Any]]" = OrderedDict()  # token -> every reader opened for it
_SHARED: dict[Any, Any] = {}  # (token, key) -> an object shared by the threads (shared_reader)
_TLS = threading.local()
_MAX_TOKENS = 4


def new_token() -> str:
    """A unique key for one run's readers."""
    return uuid.uuid4().hex


def cached_reader(token: str, key: Any, opener: Callable[[], Any]) -> Any:
    """The reader ``key`` of run ``token`` for the calling thread, opened by ``opener()`` once.

    Readers (GDAL datasets) are not thread-safe, so each thread of each process gets its own;
    they stay open for the next blocks of the same run and are closed by :func:`close_readers`
    (or, in long-lived cluster workers, when newer runs push the token out).
    """
    cache = getattr(_TLS, "cache", None)
    if cache is None:
        cache = _TLS.cache = {}
    rd = cache.get((token, key))
    if rd is None:
        rd = cache[(token, key)] = opener()
        stale: list[Any] = []
        with _CACHE_LOCK:
            _OPEN.setdefault(token, []).append(rd)
            _OPEN.move_to_end(token)
            while len(_OPEN) > _MAX_TOKENS:
                gone, old = _OPEN.popitem(last=False)
                stale.extend(old)
                for k in [k for k in _SHARED if k[0] == gone]:
                    del _SHARED[k]
        for r in stale:
            _close_quietly(r)
    return rd


def shared_reader(token: str, key: Any, opener: Callable[[], Any]) -> Any:
    """One object ``key`` of run ``token`` for every thread of this process, opened by ``opener()``
    once and closed by :func:`close_readers` (it must be thread-safe itself, e.g.
    :class:`rs_change.readers.SharedReads`).
    """
    with _CACHE_LOCK:
        obj = _SHARED.get((token, key))
        if obj is None:
            obj = _SHARED[(token, key)] = opener()
            _OPEN.setdefault(token, []).append(obj)
        return obj


def close_readers(token: str) -> None:
    """Close every reader opened for ``token`` in this process (all threads).

    While an item that a map let go of (:meth:`Engine._let_go`) is still running, the readers are
    closed when it ends instead, by the thread that ran it: it may be reading one of them.
    """
    with _CACHE_LOCK:
        readers = _OPEN.pop(token, [])
        for k in [k for k in _SHARED if k[0] == token]:
            del _SHARED[k]
    cache = getattr(_TLS, "cache", None)
    if cache:
        for k in [k for k in cache if k[0] == token]:
            del cache[k]

    def close() -> None:
        for r in readers:
            _close_quietly(r)

    _after_running(close)


# Items of maps that stopped early and were still running then, and what waits for them to end.
_RUNNING: set[Future] = set()
_AFTER_RUNNING: list[Callable[[], None]] = []
_RUNNING_LOCK = threading.Lock()


def _track_running(futures: Iterable[Future]) -> None:
    futures = list(futures)
    with _RUNNING_LOCK:
        _RUNNING.update(futures)
    for f in futures:
        f.add_done_callback(_ended)  # at once when it has ended already


def _ended(f: Future) -> None:
    with _RUNNING_LOCK:
        _RUNNING.discard(f)
        if _RUNNING:
            return
        todo = list(_AFTER_RUNNING)
        _AFTER_RUNNING.clear()
    for fn in todo:
        fn()


def _after_running(fn: Callable[[], None]) -> None:
    """``fn()`` now, or when the last item left running by a map has ended (in its thread)."""
    with _RUNNING_LOCK:
        if _RUNNING:
            _AFTER_RUNNING.append(fn)
            return
    fn()


def _close_quietly(rd: Any) -> None:
    try:
        rd.close()
    except Exception:  # pragma: no cover - closing a dataset twice or after a failure
        log.debug("closing a reader failed", exc_info=True)


# ---------------------------------------------------------------------------------------------
# Writing independent outputs side by side, and the thread and memory policy of a run
# ---------------------------------------------------------------------------------------------
class WriteJobs:
    """Independent output-writing jobs (COG conversions, PNGs ...) run in worker threads.

    GDAL compresses, builds overviews and encodes PNGs without holding Python's GIL, so these
    jobs run beside the polygon tracing of the calling thread.  Each job writes its own files in
    the staging folder, so the bytes do not depend on the order the jobs finish in.  Jobs wait
    until :meth:`start` (or :meth:`wait`) and then run lowest ``priority`` first, in submission
    order within a priority.

    Parameters
    ----------
    workers : int, default 1
        Threads; ``0`` runs each job at once in the calling thread when it is submitted
        (``compute.scheduler: synchronous``: one thread, e.g. for profiling).

    Examples
    --------
    >>> with WriteJobs(1) as jobs:
    ...     a = jobs.submit(sum, [1, 2, 3])
    ...     b = jobs.submit(max, [4, 5], priority=-1)  # runs first
    ...     jobs.wait()
    >>> a.result(), b.result()
    (6, 5)
    """

    def __init__(self, workers: int = 1) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="rs-change-write") if workers > 0 else None
        self.futures: list[Any] = []
        self._items: list[tuple[int, int, Any, tuple, dict, Any]] = []  # every job, for help()
        self._pending: list[tuple[int, int, Any, tuple, dict, Any]] = []
        self._started = False
        self._claim = threading.Lock()

    def submit(self, fn: Any, *args: Any, priority: int = 0, **kwargs: Any) -> Any:
        """Queue ``fn(*args, **kwargs)``; returns a :class:`concurrent.futures.Future`."""
        from concurrent.futures import Future

        fut: Any = Future()
        self.futures.append(fut)
        item = (priority, len(self.futures), fn, args, kwargs, fut)
        self._items.append(item)
        if self.pool is None:
            self._call(item)
        elif self._started:
            self.pool.submit(self._call, item)
        else:
            self._pending.append(item)
        return fut

    def _call(self, item: tuple[int, int, Any, tuple, dict, Any]) -> None:
        _, _, fn, args, kwargs, fut = item
        with self._claim:  # a job runs once: in a writer thread or in the thread that helps
            if fut.running() or fut.done() or not fut.set_running_or_notify_cancel():
                return
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # re-raised by wait() / result(), as from a thread
            fut.set_exception(exc)

    def start(self) -> None:
        """Start the queued jobs (lowest priority first); later jobs start when submitted."""
        self._started = True
        pending, self._pending = sorted(self._pending, key=lambda t: t[:2]), []
        for item in pending:
            self.pool.submit(self._call, item)  # type: ignore[union-attr]

    def help(self, until: Any = None) -> None:
        """Run jobs that no writer thread has started yet in the calling thread (lowest priority
        first), until the future ``until`` is done or none is left, so that a thread whose own
        work is over shares the writing instead of waiting for it.
        """
        if self.pool is not None and not self._started:
            self.start()
        for item in sorted(self._items, key=lambda t: t[:2]):
            if until is not None and until.done():
                return
            fut = item[-1]
            if not fut.running() and not fut.done():
                self._call(item)
                exc = fut.exception() if fut.done() and not fut.cancelled() else None
                if exc is not None and not isinstance(exc, Exception):  # Ctrl-C / SIGTERM here: stop now
                    raise exc

    def result(self, fut: Any) -> Any:
        """``fut.result()``, this thread running the jobs not yet started meanwhile (:meth:`help`)."""
        self.help(until=fut)
        return fut.result()

    def wait(self) -> None:
        """Run (helping: :meth:`help`) and wait for every job; re-raise the first error (in
        submission order).
        """
        self.help()
        for fut in list(self.futures):
            fut.result()

    def __enter__(self) -> "WriteJobs":
        return self

    def __exit__(self, *exc: Any) -> None:
        # on an error elsewhere, drop the jobs not started and let the running ones finish before
        # the staging folder is discarded
        for item in self._pending:
            item[-1].cancel()
        self._pending = []
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
            for fut in self.futures:  # cancelled in the pool's queue: never run
                if not fut.done():
                    fut.cancel()


def _glibc() -> Any:
    """The process's C library on Linux (for glibc's allocator settings), or None."""
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_free_memory() -> bool:
    """Give the memory the C allocator holds free back to the system (glibc's ``malloc_trim``).

    After the passes, the GDAL block cache's tiles and the blocks' arrays are freed, but glibc
    keeps most of it mapped (small chunks between live ones cannot be returned by ``free``), so
    the writing stage's arrays came on top of it: with the cache lowered and the free memory
    returned before the writing, the peak of a full run of the NAIP-size benchmark pair fell by
    about 100 MB.  Returns False where the C library is not glibc (no effect).
    """
    libc = _glibc()
    try:
        return libc is not None and bool(libc.malloc_trim(0))
    except AttributeError:  # e.g. musl: no malloc_trim
        return False


def share_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``M_ARENA_MAX``) for threads started from now on.

    glibc gives each new thread its own arena while there are fewer than 8 per core, and memory
    freed in one arena is not reused by threads of another, so the block workers' and the writer
    thread's transient arrays add up: ``rs-change run`` with every output peaked at 0.95-1.08 GB
    on the NAIP-size pair and 1.37-1.64 GB on the 4x pair; with 2 arenas 0.73 / 1.05 GB, in the
    same time.  The CLI calls this before any thread starts (the environment variable
    ``MALLOC_ARENA_MAX`` does the same for any process).  Returns False where the C library is
    not glibc (no effect).
    """
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        return bool(libc.mallopt(-8, int(arenas)))  # M_ARENA_MAX
    except AttributeError:  # e.g. musl: no mallopt
        return False


def write_threads(scheduler: str, workers: Optional[int]) -> int:
    """Threads of :class:`WriteJobs` for a run's ``compute.scheduler`` / ``compute.workers``:
    0 (all in the calling thread) for ``synchronous`` or one worker, else one less than the
    workers (the calling thread traces the polygons meanwhile), at most 3.
    """
    n = workers or os.cpu_count() or 1
    return 0 if scheduler == "synchronous" or n <= 1 else max(1, min(int(n) - 1, 3))


def polygon_threads(scheduler: str, workers: Optional[int]) -> int:
    """Threads tracing the polygons' strips (:func:`rs_change.strips.strip_regions_many`): the
    workers (default: the cores) that :func:`write_threads` leaves free, at least 1, at most 4.

    GDAL's polygonize runs without the GIL, so one tracing thread and the writer threads keep
    two cores busy; a second tracing thread on 2 cores gave the same wall time and, by
    interleaving its strip-sized arrays with the writer's in the shared malloc arenas, +250 MB
    of peak memory on the 4x benchmark pair (944 vs 690 MB).
    """
    n = workers or os.cpu_count() or 1
    return 1 if scheduler == "synchronous" else max(1, min(int(n) - write_threads(scheduler, workers), 4))


def layer_threads(scheduler: str, workers: Optional[int]) -> int:
    """Threads joining the regions and building the polygon layers, one raster each, after the
    strips are traced: 1 for ``synchronous``, else the workers (default: the cores), at most 4.
    They hold polygons only, and GEOS and pyproj work without the GIL.
    """
    n = workers or os.cpu_count() or 1
    return 1 if scheduler == "synchronous" else max(1, min(int(n), 4))


__all__ = ["Engine", "limit_gdal_cache", "cached_reader", "shared_reader", "close_readers", "new_token",
           "is_cluster_address", "default_workers", "WriteJobs", "share_malloc_arenas", "release_free_memory",
           "write_threads", "polygon_threads", "layer_threads"]
