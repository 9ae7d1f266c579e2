"""EDGE: what the command line shows on the terminal: the results table, the progress line, the
log lines (``-v``), and what GDAL and other C libraries would print on their own, each readable
on its own.

Standard library only (the CLI imports it before anything heavy).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from typing import Any, Iterator, Optional


def _cluster_water(d: dict[str, Any]) -> str:
    """Each cluster's share of water pixels (``0: 97% water, 1: 3%, 2: 0%``), or the water cluster ids."""
    found = [(c["id"], (c.get("stats") or {}).get("water_fraction")) for c in d.get("clusters", [])]
    shares = [(i, f) for i, f in found if f is not None]
    if not found or len(shares) < len(found):
        return ", ".join(map(str, d["water_clusters"])) or "no water"
    def pct(f: float) -> str:
        return "<1%" if 0 < f < 0.01 else f"{100 * f:.0f}%"

    return ", ".join(f"{i}: {pct(f)}" + (" water" if i in d["water_clusters"] else "") for i, f in shares)


def format_table(summary: dict[str, Any]) -> str:
    """The results table the CLI prints (every number comes from summary.json)."""
    lines = [f"{'date':<12}{'water_km2':>14}{'water_pixels':>14}{'observed_km2':>14}{'unobserved_km2':>16}"
             "  clusters: share of water pixels"]
    for d in summary["dates"]:
        lines.append(
            f"{d['date']:<12}{d['water_km2']:>14.6f}{d['water_pixels']:>14d}{d['observed_km2']:>14.6f}"
            f"{d['unobserved_km2']:>16.6f}  k={d['k']} {d['metric']} ({_cluster_water(d)})"
        )
    for d in summary["dates"]:  # QA layers (qa_pixel, scl, fmask): what they masked, per reason
        if d.get("masked_km2"):
            why = ", ".join(f"{k} {v:.6f}" for k, v in d["masked_km2"].items() if v)
            lines.append(f"{d['date']:<12}QA-masked_km2 {d['masked_total_km2']:.6f}" + (f" ({why})" if why else ""))
    ch = summary.get("change")
    if ch:
        pct = "n/a" if ch["net_percent"] is None else f"{ch['net_percent']:+.4f}%"
        lines.append(
            f"change {ch['from']} -> {ch['to']}: gained_km2 {ch['gained_km2']:.6f}, lost_km2 {ch['lost_km2']:.6f}, "
            f"net_km2 {ch['net_km2']:+.6f} ({pct})"
        )
    return "\n".join(lines)


class Progress:
    r"""A one-line progress display on stderr (only when stderr is a terminal, or verbose).

    The line is redrawn in place (``\r``); :meth:`break_line` ends it first when something else
    (a log line) is written to stderr, so the two never share a line.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.open = False  # a progress line is on screen without its newline

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Show ``done`` of ``total`` for ``stage`` (redrawn at most every 0.2 s, and at the end)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        pct = 100.0 * done / total if total else 100.0
        sys.stderr.write(f"\r{stage:>6}: {done}/{total} ({pct:5.1f}%)  {now - self.t0:6.1f} s")
        self.open = done < total
        if not self.open:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def break_line(self) -> None:
        """End the progress line on screen (before another line is written)."""
        if self.open:
            sys.stderr.write("\n")
            self.open = False


class _ConsoleFilter(logging.Filter):
    """The stderr handler's filter: other libraries' records below WARNING are dropped unless
    ``-vv`` (a library such as dask.distributed sets its own loggers to INFO), and the progress
    line is ended before a record is printed.
    """

    def __init__(self, progress: Optional[Progress], verbose: int) -> None:
        super().__init__()
        self.progress = progress
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "rs_change" or record.name.startswith("rs_change.")
        if not ours and record.levelno < logging.WARNING and self.verbose < 2:
            return False
        if self.progress is not None:
            self.progress.break_line()
        return True


def setup_logging(verbose: int, progress: Optional[Progress] = None) -> None:
    """Log lines on stderr: rs-change's at WARNING (default), INFO (``-v``) or DEBUG (``-vv``);
    other libraries' (dask, pyproj, urllib3 ...) at WARNING unless ``-vv``. Log lines start on a
    line of their own when a ``progress`` line is on screen.
    """
    level = max(logging.DEBUG, logging.WARNING - 10 * verbose)
    logging.basicConfig(level=logging.DEBUG if verbose >= 2 else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rs_change").setLevel(level)
    for h in logging.getLogger().handlers:
        h.addFilter(_ConsoleFilter(progress, verbose))
    logging.captureWarnings(True)


def quiet_gdal(verbose: int) -> None:
    """Keep GDAL's chatter about files users did not make off the terminal unless asked (-v/-vv).

    GDAL warnings (for example ``TIFFReadDirectory: Sum of Photometric type-related color
    channels ...`` on the Landsat samples) reach stderr twice: through rasterio's logger, and
    from worker threads through GDAL's default handler.  Default: neither; ``-v``: the logged
    copy; ``-vv``: both.  Done here, not in the library, so scripts keep their own settings.
    """
    if verbose < 2:
        os.environ.setdefault("CPL_LOG", os.devnull)  # GDAL's default handler (read when first used)
    # default: GDAL's errors too stay off stderr: rasterio raises them, and they reach the one line
    level = logging.CRITICAL if verbose == 0 else logging.WARNING if verbose == 1 else logging.DEBUG
    logging.getLogger("rasterio").setLevel(level)
    if verbose == 0:  # rasterio's warning for a file without geotransform: the error that follows says it in one line
        warnings.filterwarnings("ignore", message="Dataset has no geotransform")


@contextlib.contextmanager
def c_stderr_to_null(enabled: bool) -> Iterator[None]:
    """Send what C libraries print straight to file descriptor 2 (libtiff's ``_tiffSeekProc: No
    space left on device.``, once per block on a full disk) to /dev/null, while Python's
    ``sys.stderr`` keeps writing to the terminal; GDAL's messages reach the user through the
    exceptions that rasterio raises, in the one line.
    """
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        python_on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # replaced (pytest's capsys, a StringIO): only fd 2 moves
        python_on_fd2 = False
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    before = sys.stderr
    if python_on_fd2:
        sys.stderr = open(saved, "w", buffering=1, encoding=before.encoding, errors=before.errors, closefd=False)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stderr = before
        os.dup2(saved, 2)
        if not python_on_fd2:  # else log handlers may still hold the stream on `saved`: it stays open
            os.close(saved)


__all__ = ["format_table", "Progress", "setup_logging", "quiet_gdal", "c_stderr_to_null"]
