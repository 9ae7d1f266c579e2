"""EDGE: the command line.  ``rs-change run CONFIG`` = ``RunConfig.from_yaml`` -> ``pipeline.run``.

User errors (:class:`~rs_change.errors.RsChangeError`) become one line on stderr and exit status 2;
internal errors exit with status 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ._version import __version__
from .console import OneLineArgumentParser, Progress, setup_logging
from .errors import RsChangeError

log = logging.getLogger("rs_change")


def _cluster_water(d: dict[str, Any]) -> str:
    """Each cluster's share of water pixels (``0: 97% water, 1: 3%, 2: 0%``), or the water cluster ids."""
    shares = [(c["id"], (c.get("stats") or {}).get("water_fraction")) for c in d.get("clusters", [])]
    if not shares or any(f is None for _, f in shares):
        return ", ".join(map(str, d["water_clusters"])) or "no water"
    def pct(f: float) -> str:
        return "<1%" if 0 < f < 0.01 else f"{100 * f:.0f}%"

    return ", ".join(f"{i}: {pct(f)}" + (" water" if i in d["water_clusters"] else "") for i, f in shares)


def format_table(summary: dict[str, Any]) -> str:
    """The results table the CLI prints (every number comes from summary.json)."""
    lines = [f"{'date':<12}{'water_km2':>14}{'water_pixels':>14}{'observed_km2':>14}{'unobserved_km2':>16}  clusters: share of water pixels"]
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


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import RunConfig
    from .outputs import output_lock
    from .pipeline import run

    if args.output is not None and not args.output.strip():
        from .errors import ConfigError

        raise ConfigError("-o/--output: empty folder name (it would write into the current folder); give a folder, e.g. -o outputs")
    cfg = RunConfig.from_yaml(args.config)
    if cfg.stac is not None:  # the scenes a catalog finds, recorded as such in config.yaml
        from .stac import expand

        cfg = expand(cfg)
    progress = args.progress
    out = Path(args.output) if args.output else cfg.output_dir
    args.out_dir = out  # named by the one line of a disk-full or vanished-folder error
    with output_lock(out):  # a second run into this folder stops here with one line
        if getattr(args, "summary_only", False):  # areas and change only: no rasters, polygons or report
            from .names import SUMMARY_SET
            from .outputs import check_output_dir, write_summary_set

            check_output_dir(out, SUMMARY_SET, args.overwrite)  # before anything is read
            result = run(cfg, overwrite=args.overwrite, progress=progress, write=False)
            write_summary_set(result.summary, out, args.overwrite, cfg.to_yaml())  # one set, with its manifest
            print(format_table(result.summary))
            print(f"outputs: {out} (summary only)")
            return 0
        result = run(cfg, output_dir=out, overwrite=args.overwrite, progress=progress)
    print(format_table(result.summary))
    if result.output_dir is not None:
        print(f"outputs: {result.output_dir}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import RunConfig
    from .remote import is_remote

    cfg = RunConfig.from_yaml(args.config)
    if cfg.stac is not None:  # the scenes a catalog resolves to, listed before their headers are opened
        from .stac import describe, find_scenes

        cfg, found = find_scenes(cfg)
        print(describe(found))
    missing = [cfg.resolve_input(p) for s in cfg.scenes for p in s.paths()  # URLs are checked by opening them below
               if not any(ch in p for ch in "*?[") and not is_remote(p) and not cfg.resolve(p).exists()]
    if missing:
        from .errors import InputError

        raise InputError(f"{missing[0]}: file not found; check the scene's `path` in {args.config}")
    # open every scene's header: not a raster, no CRS / geotransform, too few bands, no overlap
    from .pipeline import build_source, reference_grid
    from .readers import check_overlap

    sources = [build_source(s, cfg) for s in cfg.scenes]
    ref = reference_grid(cfg, sources)
    from .aoi import aoi_geometries, crop_to_aoi

    # the grid a run computes on: cropped to the area of interest
    ref = crop_to_aoi(ref, aoi_geometries(cfg.aoi, ref.crs, cfg.resolve))
    cfg.check_costs(ref.shape)  # the limits a run checks (compute.max_*)
    for src in sources:
        check_overlap(src, ref)
    from .survey import inspect_source

    # per file: header, band mapping, radiometry, valid share, profile fit (all read before printing:
    # a profile that does not fit stops with its one line)
    reports = [rep for src in sources for rep in inspect_source(src)]
    print("scenes:")
    for rep in reports:
        print("\n".join(rep.lines()))
    warnings = sum(len(rep.warnings) for rep in reports)
    note = f", {warnings} warning(s)" if warnings else ""
    print(f"{args.config}: valid ({len(cfg.scenes)} date(s), output to {cfg.output_dir}{note})")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from .config import template
    from .errors import OutputError

    path = Path(args.path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name, e.g. {path / 'rs-change.yaml'}")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: the folder {path.parent} does not exist; create it first or give another path")
    if path.exists() and not args.overwrite:
        raise OutputError(f"{path}: already exists; pass --overwrite or give another path")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OutputError(f"{path}: not a regular file (a link, FIFO or device); remove it or give another path")
    try:
        path.write_text(template(), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the template ({exc.strerror or exc}); give a writable path") from None
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="rs-change", description="Surface-water change between satellite or aerial images.")
    p.add_argument("--version", action="version", version=f"rs-change {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a configuration")
    r.add_argument("config", help="YAML configuration file")
    r.add_argument("--output", "-o", help="output folder (overrides output.dir)")
    r.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    r.add_argument("--summary-only", action="store_true",
                   help="compute the areas and change only; write summary.json/csv, no rasters or polygons")
    r.set_defaults(func=_cmd_run)
    v = sub.add_parser("validate", help="check a configuration without running it")
    v.add_argument("config", help="YAML configuration file (checks keys, files, bands, overlap and cost limits; reads no pixels)")
    v.set_defaults(func=_cmd_validate)
    i = sub.add_parser("init", help="write a commented configuration template")
    i.add_argument("path", nargs="?", default="rs-change.yaml", help="file to write (default: rs-change.yaml)")
    i.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    i.set_defaults(func=_cmd_init)
    from .assess_cli import add_parsers  # sample / assess (standard library only at import)

    extra = add_parsers(sub)
    for sp in (r, v, i, *extra):  # also accepted after the command; SUPPRESS keeps `rs-change --debug run` working
        sp.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


#: OSError numbers that mean "your disk / your permissions", not "rs-change has a bug".
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.EFBIG}


def _one_line(text: object) -> str:
    """A message on one line (a safety net: library messages are one line already)."""
    return " ".join(str(text).split())


def _quiet_gdal(verbose: int) -> None:
    """Keep GDAL's chatter about files users did not make off the terminal unless asked (-v/-vv).

    GDAL warnings (for example ``TIFFReadDirectory: Sum of Photometric type-related color
    channels ...`` on the Landsat samples) reach stderr twice: through rasterio's logger, and
    from worker threads through GDAL's default handler.  Default: neither; ``-v``: the logged
    copy; ``-vv``: both.  Done here, not in the library, so scripts keep their own settings.
    """
    if verbose < 2:
        os.environ.setdefault("CPL_LOG", os.devnull)  # GDAL's default handler (read when first used)
    # default: GDAL's errors too stay off stderr: rasterio raises them, and they reach the one line
    logging.getLogger("rasterio").setLevel(logging.CRITICAL if verbose == 0 else logging.WARNING if verbose == 1 else logging.DEBUG)
    if verbose == 0:  # rasterio's warning for a file without geotransform: the error that follows says it in one line
        warnings.filterwarnings("ignore", message="Dataset has no geotransform")


@contextlib.contextmanager
def _c_stderr_to_null(enabled: bool) -> Iterator[None]:
    """Send what C libraries print straight to file descriptor 2 (libtiff's ``_tiffSeekProc: No
    space left on device.``, once per block on a full disk) to /dev/null, while Python's
    ``sys.stderr`` keeps writing to the terminal; GDAL's messages reach the user through the
    exceptions that rasterio raises, in the one line."""
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``rs-change`` command.

    Returns
    -------
    int
        0 on success, 2 for a user error (one line on stderr), 1 for an internal error,
        130 when interrupted.
    """
    trap = _SignalTrap(exit_soon=argv is None)  # first: Ctrl-C or SIGTERM while starting up is one line too
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        debug = args.debug
        with _c_stderr_to_null(args.verbose < 2 and not debug):
            from .engine import share_malloc_arenas

            share_malloc_arenas()  # before any thread starts: threads' freed memory is reused (rs_change.engine)
            args.progress = Progress(enabled=sys.stderr.isatty() or args.verbose > 0)
            setup_logging(args.verbose, args.progress)
            _quiet_gdal(args.verbose)
            code = _dispatch(args, trap)
            return trap.report() if trap.signum is not None and not trap.unwinding else code  # a signal swallowed by a C callback
    except KeyboardInterrupt:
        if debug:
            raise
        return trap.report()
    finally:
        trap.restore()


class _SignalTrap:
    """SIGINT (Ctrl-C) and SIGTERM (batch schedulers, ``kill``) unwind the run as a
    ``KeyboardInterrupt``, so staged files are removed and a half-done swap is rolled back; the
    CLI then prints one line and exits with 128 + the signal (130, 143).

    A signal that lands while a C library calls back into Python (rasterio's GDAL log handler)
    would be swallowed there ("Exception ignored in ...", a traceback); it is delivered again
    at the next Python line instead.  Once unwinding, further signals are ignored so that the
    clean-up finishes.
    """

    def __init__(self, exit_soon: bool = False) -> None:
        self.exit_soon = exit_soon  # the console script: the process ends within 10 s of the one line
        self.signum: Optional[int] = None
        self.unwinding = False
        self.in_hook = False
        self.previous: dict[int, Any] = {}
        self.previous_hook = sys.unraisablehook
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handler)
        sys.unraisablehook = self._unraisable

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self.in_hook:
            self._redeliver_soon()
        elif not self.unwinding:
            raise KeyboardInterrupt

    def _unraisable(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and self.signum is not None:
            self.in_hook = True
            try:
                self._redeliver_soon()  # in a moment, from another thread: back in plain Python code by then
            finally:
                self.in_hook = False
            return
        self.previous_hook(unraisable)

    def _redeliver_soon(self) -> None:
        def again() -> None:
            if self.previous and not self.unwinding:
                import _thread

                _thread.interrupt_main(self.signum or signal.SIGINT)

        timer = threading.Timer(0.05, again)
        timer.daemon = True
        timer.start()

    @property
    def code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def report(self) -> int:
        """One line for an interruption; the exit status.  With ``exit_soon`` the process ends
        within 10 s even if a thread blocked in a C call keeps it alive."""
        self.unwinding = True
        name = signal.Signals(self.signum).name if self.signum else "SIGINT"
        sys.stderr.write(f"rs-change: interrupted ({name}); no partial outputs were left (the output folder holds "
                         "one complete set, or none)\n")
        sys.stderr.flush()
        if self.exit_soon:
            timer = threading.Timer(10.0, os._exit, (self.code,))
            timer.daemon = True
            timer.start()
        return self.code

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self.previous:
            sys.unraisablehook = self.previous_hook
        self.previous = {}


#: Messages of exceptions (GDAL's, SQLite's through pyogrio ...) that mean the disk is full.
_DISK_FULL_TEXT = ("no space left on device", "disk is full", "disk full", "disk quota exceeded", "file too large")


def _environment_error(exc: BaseException, out: Optional[Path]) -> Optional[str]:
    """The one line for a failure caused by the machine, not by rs-change: the output folder
    removed during the run, a full disk (however the library that hit it words it), no
    permission.  None for an internal error."""
    from .outputs import folder_vanished, out_of_space_at_failure

    if out is not None and folder_vanished(out):
        return (f"{out}: the output folder disappeared during the run (deleted, moved or unmounted); "
                "recreate it or choose another `output.dir` and rerun")
    text = " ".join(str(e).lower() for e in _chain(exc))
    errnos = {getattr(e, "errno", None) for e in _chain(exc)}
    full = bool(errnos & {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}) or any(t in text for t in _DISK_FULL_TEXT) \
        or out_of_space_at_failure()
    if full:
        where = getattr(exc, "filename", None) or out or "output folder"
        return (f"{where}: no room to write the outputs (disk full, quota or file-size limit reached); free space and rerun "
                "(previous outputs are intact)")
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:  # permissions, read-only filesystem
        where = exc.filename or out or "output folder"
        return f"{where}: {exc.strerror or exc}; fix the permissions or choose another `output.dir` and rerun (previous outputs are intact)"
    return None


def _chain(exc: Optional[BaseException]) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _dispatch(args: argparse.Namespace, trap: Optional[_SignalTrap] = None) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        return trap.report() if trap is not None else _interrupted_without_trap()
    except Exception as exc:
        if args.debug:
            raise
        if trap is not None and trap.signum is not None:  # the signal surfaced as another error (EINTR in GDAL)
            return trap.report()
        if isinstance(exc, RsChangeError):
            sys.stderr.write(f"rs-change: error: {_one_line(exc)}\n")
            return 2
        line = _environment_error(exc, getattr(args, "out_dir", None))
        if line is not None:  # disk full, permissions, folder removed: fixable by the user
            sys.stderr.write(f"rs-change: error: {_one_line(line)}\n")
            return 2
        sys.stderr.write(
            f"rs-change: internal error: {exc.__class__.__name__}: {_one_line(exc)[:300]} (rerun with --debug and report it)\n"
        )
        return 1


def _interrupted_without_trap() -> int:
    sys.stderr.write("rs-change: interrupted; no partial outputs were left (the output folder holds one complete set, or none)\n")
    return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
