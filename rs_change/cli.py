"""EDGE: the command line.  ``rs-change run CONFIG`` = ``RunConfig.from_yaml`` -> ``pipeline.run``.

User errors (:class:`~rs_change.errors.RsChangeError`) become one line on stderr and exit status 2;
internal errors exit with status 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from ._version import __version__
from .errors import RsChangeError

log = logging.getLogger("rs_change")


class _Progress:
    """A one-line progress display on stderr (only when stderr is a terminal, or verbose)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        pct = 100.0 * done / total if total else 100.0
        sys.stderr.write(f"\r{stage:>6}: {done}/{total} ({pct:5.1f}%)  {now - self.t0:6.1f} s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


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
    progress = _Progress(enabled=sys.stderr.isatty() or args.verbose > 0)
    out = Path(args.output) if args.output else cfg.output_dir
    with output_lock(out):  # a second run into this folder stops here with one line
        if getattr(args, "summary_only", False):  # areas and change only: no rasters, polygons or report
            from .outputs import SUMMARY_SET, check_output_dir, write_summary_set

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

    cfg = RunConfig.from_yaml(args.config)
    missing = [str(cfg.resolve(s.path)) for s in cfg.scenes
               if not any(ch in s.path for ch in "*?[") and not cfg.resolve(s.path).exists()]
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
    print(f"{args.config}: valid ({len(cfg.scenes)} date(s), output to {cfg.output_dir})")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from .config import TEMPLATE
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
        path.write_text(TEMPLATE, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the template ({exc.strerror or exc}); give a writable path") from None
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rs-change", description="Surface-water change between satellite or aerial images.")
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
    v.add_argument("config")
    v.set_defaults(func=_cmd_validate)
    i = sub.add_parser("init", help="write a commented configuration template")
    i.add_argument("path", nargs="?", default="rs-change.yaml")
    i.add_argument("--overwrite", action="store_true")
    i.set_defaults(func=_cmd_init)
    for sp in (r, v, i):  # also accepted after the command; SUPPRESS keeps `rs-change --debug run` working
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
    logging.getLogger("rasterio").setLevel(logging.ERROR if verbose == 0 else logging.WARNING if verbose == 1 else logging.DEBUG)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``rs-change`` command.

    Returns
    -------
    int
        0 on success, 2 for a user error (one line on stderr), 1 for an internal error,
        130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from .outputs import share_malloc_arenas

    share_malloc_arenas()  # before any thread starts: threads' freed memory is reused (rs_change.outputs)
    level = max(logging.DEBUG, logging.WARNING - 10 * args.verbose)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rs_change").setLevel(level)
    logging.captureWarnings(True)
    _quiet_gdal(args.verbose)
    previous = _trap_sigterm()
    try:
        return _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _trap_sigterm() -> Any:
    """Make SIGTERM (batch schedulers, ``kill``) unwind like Ctrl-C, so staged files are removed
    and a half-done swap is rolled back.  Returns the previous handler (None when not trapped)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, _term)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except RsChangeError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"rs-change: error: {_one_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        sys.stderr.write("rs-change: interrupted; no partial outputs were left (the output folder holds a complete set, or none)\n")
        return 130
    except Exception as exc:  # internal error
        if args.debug:
            raise
        if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:  # disk full, permissions: fixable by the user
            where = exc.filename or "output folder"
            sys.stderr.write(
                f"rs-change: error: {where}: {exc.strerror or exc}; free space or fix permissions and rerun "
                "(previous outputs are intact)\n"
            )
            return 2
        sys.stderr.write(
            f"rs-change: internal error: {exc.__class__.__name__}: {_one_line(exc)[:300]} (rerun with --debug and report it)\n"
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
