"""EDGE: the command line.  It parses arguments, calls the library, and turns errors into lines.

``rs-change run CONFIG`` = ``RunConfig.from_yaml`` -> :func:`rs_change.pipeline.run`; ``validate``
prints what :func:`rs_change.pipeline.prepare` and :func:`rs_change.survey.inspect_source` find;
``sample`` and ``assess`` call :mod:`rs_change.sampling` and :mod:`rs_change.accuracy`.  User errors
(:class:`~rs_change.errors.RsChangeError`) become one line on stderr and exit status 2; internal
errors exit with status 1 (``--debug`` shows the traceback).  Only the standard library is imported
at module level: ``rs-change --help`` loads neither numpy nor GDAL.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from ._version import __version__
from .console import Progress, c_stderr_to_null, quiet_gdal, setup_logging
from .errors import RsChangeError
from .process import SignalTrap, end_process, environment_error


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import RunConfig
    from .console import format_table
    from .outputs import output_lock
    from .pipeline import run

    if args.output is not None and not args.output.strip():
        from .errors import ConfigError

        raise ConfigError("-o/--output: empty folder name (it would write into the current folder); "
                          "give a folder, e.g. -o outputs")
    cfg = RunConfig.from_yaml(args.config)
    out = args.out_dir = Path(args.output) if args.output else cfg.output_dir  # out_dir: named by a disk-full line
    with output_lock(out):  # a second run into this folder stops here with one line
        if args.summary_only:  # areas and change only: no rasters, polygons or report
            from .names import SUMMARY_SET
            from .outputs import check_output_dir, write_summary_set

            check_output_dir(out, SUMMARY_SET, args.overwrite)  # before anything is read
            result = run(cfg, overwrite=args.overwrite, progress=args.progress, write=False)
            # one set, with a manifest; run() always returns the configuration as run
            write_summary_set(result.summary, out, args.overwrite, (result.config or cfg).to_yaml())
        else:
            result = run(cfg, output_dir=out, overwrite=args.overwrite, progress=args.progress)
    print(format_table(result.summary))
    print(f"outputs: {out} (summary only)" if args.summary_only else f"outputs: {result.output_dir}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import RunConfig
    from .pipeline import prepare
    from .remote import is_remote
    from .stac import describe, find_scenes
    from .survey import inspect_source

    cfg, found = find_scenes(RunConfig.from_yaml(args.config))  # a catalog's scenes, listed before any header is read
    if found:
        print(describe(found))
    missing = [cfg.resolve_input(p) for s in cfg.scenes for p in s.paths()  # URLs are checked by opening them
               if not any(ch in p for ch in "*?[") and not is_remote(p) and not cfg.resolve(p).exists()]
    if missing:
        from .errors import InputError

        raise InputError(f"{missing[0]}: file not found; check the scene's `path` in {args.config}")
    prepared = prepare(cfg, log_headers=False)  # headers, grid, AOI crop, cost limits, overlap: what a run checks
    # per file: header, band mapping, radiometry, valid share, profile fit (all read before printing)
    reports = [rep for src in prepared.sources for rep in inspect_source(src)]
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


def _cmd_sample(args: argparse.Namespace) -> int:
    from .sampling import Design, format_sample, sample_run

    args.out_dir = Path(args.outdir)  # named by the one line for a full disk or a vanished folder
    design = Design(args.n, args.per_class, args.allocation, args.min_per_class, args.target_se, args.seed)
    print(format_sample(sample_run(args.outdir, args.map, design, args.overwrite), design))
    return 0


def _cmd_assess(args: argparse.Namespace) -> int:
    from .accuracy import ACCURACY_CSV, ACCURACY_JSON, assess_run, format_accuracy

    out = args.out_dir = Path(args.outdir)  # named by the one line for a full disk or a vanished folder
    acc = assess_run(args.outdir, args.samples, args.map, z=args.z, overwrite=args.overwrite)
    print(format_accuracy(acc))
    print(f"wrote {out / ACCURACY_JSON}, {out / ACCURACY_CSV}; summary.json updated"
          + ("" if not acc.get("report_updated") else ", report.html updated"))
    return 0


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage errors are one line (``rs-change sample: error:
    argument --seed: invalid int value: '1.5'; see rs-change sample --help``) and exit status 2.
    """

    def error(self, message: str) -> NoReturn:
        """Write ``message`` as one line with a pointer to ``--help``, and exit with status 2."""
        sys.stderr.write(f"{self.prog}: error: {' '.join(message.split())}; see {self.prog} --help\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``rs-change`` parser with every sub-command."""
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
    v = sub.add_parser("validate", help="check a configuration without running it")
    v.add_argument("config", help="YAML configuration file (checks keys, files, bands, overlap and cost limits; "
                                  "reads no pixels)")
    i = sub.add_parser("init", help="write a commented configuration template")
    i.add_argument("path", nargs="?", default="rs-change.yaml", help="file to write (default: rs-change.yaml)")
    i.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    s = sub.add_parser("sample", help="draw a stratified random sample of a run's map for reference labelling",
                       description="Stratified random sample of the observed pixels of a run's map (its classes are "
                                   "the strata), written as OUTDIR/samples.gpkg and samples.csv for labelling.")
    s.add_argument("outdir", help="a run's output folder")
    s.add_argument("--map", help="change (default), water_<date>, or water_fraction_<date> (strata: bins of the water "
                                 "fraction, 0-24, 25-49, 50-74, 75-100)")
    size = s.add_mutually_exclusive_group()
    size.add_argument("--n", type=int, help="total points (default: Olofsson et al. 2014 eq. 13 for --target-se)")
    size.add_argument("--per-class", type=int, help="this many points in every class (equal allocation)")
    s.add_argument("--allocation", choices=["minimum", "proportional", "equal"], default="minimum",
                   help="minimum: at least --min-per-class per class, the rest in proportion to area (default)")
    s.add_argument("--min-per-class", type=int, default=50,
                   help="points at least per class for --allocation minimum (50)")
    s.add_argument("--target-se", type=float, default=0.01,
                   help="standard error of the overall accuracy the sample size aims at (0.01)")
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed, same points)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing samples.gpkg / samples.csv")
    a = sub.add_parser("assess", help="accuracy and error-adjusted areas from labelled sample points",
                       description="Error matrix, accuracies and error-adjusted areas with confidence intervals "
                                   "(Olofsson et al. 2014) from labelled points; writes accuracy.json/csv and "
                                   "updates summary.json (and report.html).")
    a.add_argument("outdir", help="the run's output folder")
    a.add_argument("samples", nargs="?", help="labelled points, .gpkg or .csv (default OUTDIR/samples.gpkg)")
    a.add_argument("--map", help="the map the sample was drawn from (default: as recorded by rs-change sample)")
    a.add_argument("--z", type=float, default=1.96, help="normal quantile of the intervals (1.96: 95%%)")
    a.add_argument("--overwrite", action="store_true", help="replace an existing accuracy.json / accuracy.csv")
    for sp, func in ((r, _cmd_run), (v, _cmd_validate), (i, _cmd_init), (s, _cmd_sample), (a, _cmd_assess)):
        sp.set_defaults(func=func)  # -v/--debug also after the command; SUPPRESS keeps `rs-change --debug run` working
        sp.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def _one_line(text: object) -> str:
    """A message on one line (a safety net: library messages are one line already)."""
    return " ".join(str(text).split())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``rs-change`` command.

    Returns
    -------
    int
        0 on success, 2 for a user error (one line on stderr), 1 for an internal error,
        130 when interrupted.
    """
    trap = SignalTrap(exit_soon=argv is None)  # first: Ctrl-C or SIGTERM while starting up is one line too
    try:
        # an interrupted console script does not wait at exit for threads blocked in a stalled read
        code = trap.exit_if_threads_blocked(_main(argv, trap))
    finally:
        trap.restore()
    if trap.exit_soon:
        # the console script's work is done and its files closed: skip the interpreter's teardown
        # of numpy, GDAL, matplotlib ... (~0.2 s after a run)
        end_process(code)
    return code


def _main(argv: Optional[Sequence[str]], trap: SignalTrap) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        debug = args.debug
        with c_stderr_to_null(args.verbose < 2 and not debug):
            from .engine import share_malloc_arenas

            share_malloc_arenas()  # before any thread starts: threads' freed memory is reused (rs_change.engine)
            args.progress = trap.progress = Progress(enabled=sys.stderr.isatty() or args.verbose > 0)
            setup_logging(args.verbose, args.progress)
            quiet_gdal(args.verbose)
            code = _dispatch(args, trap)
            if trap.signum is not None and not trap.unwinding:  # a signal swallowed by a C callback
                return trap.report()
            return code
    except KeyboardInterrupt:
        if debug:
            raise
        return trap.report()


def _dispatch(args: argparse.Namespace, trap: Optional[SignalTrap] = None) -> int:
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
        line = environment_error(exc, getattr(args, "out_dir", None))
        if line is not None:  # disk full, permissions, folder removed: fixable by the user
            sys.stderr.write(f"rs-change: error: {_one_line(line)}\n")
            return 2
        sys.stderr.write(
            f"rs-change: internal error: {exc.__class__.__name__}: {_one_line(exc)[:300]} "
            "(rerun with --debug and report it)\n"
        )
        return 1


def _interrupted_without_trap() -> int:
    sys.stderr.write("rs-change: interrupted; no partial outputs were left "
                     "(the output folder holds one complete set, or none)\n")
    return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
