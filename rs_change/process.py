"""EDGE: the process a run lives in: signals, and failures of the machine rather than of rs-change.

:class:`SignalTrap` turns SIGINT (Ctrl-C) and SIGTERM into a ``KeyboardInterrupt`` that unwinds a
run (staged files removed, a half-done swap rolled back; :mod:`rs_change.outputs`), and
:func:`environment_error` says in one line what a disk-full, permission or vanished-folder
failure means for the user.  Standard library only at import (the CLI imports it at start).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Optional

#: OSError numbers that mean "your disk / your permissions", not "rs-change has a bug".
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.EFBIG}



class SignalTrap:
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

                _thread.interrupt_main(signal.Signals(self.signum or signal.SIGINT))

        timer = threading.Timer(0.05, again)
        timer.daemon = True
        timer.start()

    @property
    def code(self) -> int:
        """The exit status of the interruption: 128 + the signal (130 when none was caught)."""
        return 128 + (self.signum or signal.SIGINT)

    def report(self) -> int:
        """One line for an interruption; the exit status.  With ``exit_soon`` the process ends
        within 10 s even if a thread blocked in a C call keeps it alive.
        """
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
        """Put back the signal handlers and unraisable hook that were there before."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self.previous:
            sys.unraisablehook = self.previous_hook
        self.previous = {}


#: Messages of exceptions (GDAL's, SQLite's through pyogrio ...) that mean the disk is full.
_DISK_FULL_TEXT = ("no space left on device", "disk is full", "disk full", "disk quota exceeded", "file too large")


def environment_error(exc: BaseException, out: Optional[Path]) -> Optional[str]:
    """The one line for a failure caused by the machine, not by rs-change: the output folder
    removed during the run, a full disk (however the library that hit it words it), no
    permission.  None for an internal error.
    """
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
        return (f"{where}: no room to write the outputs (disk full, quota or file-size limit reached); "
                "free space and rerun "
                "(previous outputs are intact)")
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:  # permissions, read-only filesystem
        where = exc.filename or out or "output folder"
        return (f"{where}: {exc.strerror or exc}; fix the permissions or choose another `output.dir` and rerun "
                "(previous outputs are intact)")
    return None


def _chain(exc: Optional[BaseException]) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


