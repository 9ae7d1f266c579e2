"""EDGE: what the command line shows on the terminal besides results: the progress line, the
log lines (``-v``) and argument errors, each readable on its own.

Standard library only (the CLI imports it before anything heavy).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import NoReturn, Optional


class Progress:
    """A one-line progress display on stderr (only when stderr is a terminal, or verbose).

    The line is redrawn in place (``\\r``); :meth:`break_line` ends it first when something else
    (a log line) is written to stderr, so the two never share a line."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.open = False  # a progress line is on screen without its newline

    def __call__(self, stage: str, done: int, total: int) -> None:
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
    line is ended before a record is printed."""

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
    line of their own when a ``progress`` line is on screen."""
    level = max(logging.DEBUG, logging.WARNING - 10 * verbose)
    logging.basicConfig(level=logging.DEBUG if verbose >= 2 else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rs_change").setLevel(level)
    for h in logging.getLogger().handlers:
        h.addFilter(_ConsoleFilter(progress, verbose))
    logging.captureWarnings(True)


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage errors are one line (``rs-change sample: error:
    argument --seed: invalid int value: '1.5'; see rs-change sample --help``) and exit status 2,
    like every other rs-change error, instead of the usage block and the error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {' '.join(message.split())}; see {self.prog} --help\n")
        sys.exit(2)


__all__ = ["Progress", "setup_logging", "OneLineArgumentParser"]
