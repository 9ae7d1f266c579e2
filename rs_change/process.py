"""EDGE: the process a run lives in: signals, and failures of the machine rather than of rs-change.

:class:`SignalTrap` turns SIGINT (Ctrl-C) and SIGTERM into a ``KeyboardInterrupt`` that unwinds a
run (staged files removed, a half-done swap rolled back; :mod:`rs_change.outputs`), and ends the
console script within 2 s even while threads wait on a stalled remote server, and
:func:`environment_error` says in one line what a disk-full, permission or vanished-folder
failure means for the user.  Standard library only at import (the CLI imports it at start).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

#: Seconds after a SIGINT / SIGTERM by which the main thread must have run the Python handler;
#: when it has not (blocked in a C call), the console script ends from another thread.
BLOCKED_AFTER_S = 1.0

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

    For the console script (``exit_soon``) the process ends within 2 s of the signal even when
    a GDAL read of a stalled server holds a thread for a minute: a main thread blocked in such a
    read is seen by a watcher thread (:meth:`_watch_for_a_blocked_main_thread`), and worker
    threads left in one by :meth:`rs_change.engine.Engine.map` are not waited for at exit
    (:meth:`exit_if_threads_blocked`).
    """

    def __init__(self, exit_soon: bool = False) -> None:
        self.exit_soon = exit_soon  # the console script: the process ends within 2 s of a signal
        self.signum: Optional[int] = None
        self.unwinding = False
        self.in_hook = False
        self.previous: dict[int, Any] = {}
        self.previous_hook = sys.unraisablehook
        self.progress: Any = None  # the CLI's progress line (rs_change.console.Progress), ended before the one line
        self._wakeup: Optional[tuple[int, int]] = None
        self._previous_wakeup = -1
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handler)
        sys.unraisablehook = self._unraisable
        if exit_soon:
            self._watch_for_a_blocked_main_thread()

    def _watch_for_a_blocked_main_thread(self) -> None:
        """A Python signal handler runs only when the main thread is back in Python code; a main
        thread blocked in a C call (a GDAL read of a server that stopped sending, for up to a
        minute) would hold the signal as long.  Python's C-level handler also writes the signal's
        number to a wake-up pipe at once; a watcher thread reads it, and when the handler has not
        run :data:`BLOCKED_AFTER_S` later while the main thread is reading a remote file
        (:func:`rs_change.remote.main_thread_reads_remote`: it writes nothing then), the watcher
        ends the process itself (:meth:`_end_now`).  Other C calls (writing an output) are let
        finish, and the handler unwinds the run as usual.
        """
        r, w = os.pipe()
        os.set_blocking(w, False)
        try:
            self._previous_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        except (ValueError, OSError):  # pragma: no cover - not the main thread of the main interpreter
            os.close(r)
            os.close(w)
            return
        self._wakeup = (r, w)
        threading.Thread(target=self._watch, args=(r,), name="rs-change-signals", daemon=True).start()

    def _watch(self, r: int) -> None:
        while True:
            try:
                got = os.read(r, 16)
            except OSError:
                return
            if not got:  # restore() closed the pipe
                os.close(r)
                return
            sig = next((b for b in got if b in (signal.SIGINT, signal.SIGTERM)), None)
            if sig is None:  # another signal with a Python handler (none of rs-change's)
                continue
            deadline = time.monotonic() + BLOCKED_AFTER_S
            while self.signum is None and time.monotonic() < deadline:
                time.sleep(0.02)
            # the main thread has not seen the signal: blocked in C, in a read of a remote file
            if self.signum is None and self.previous and _main_thread_reads_remote():
                self._end_now(sig)

    def _end_now(self, signum: int) -> None:
        """Clean the output folder (:func:`rs_change.outputs.discard_all_now`), write the one line
        and end the process with 128 + ``signum``, from the watcher thread.
        """
        self.signum = signum
        self.unwinding = True  # the handler, should the main thread come back, does nothing more
        outputs = sys.modules.get("rs_change.outputs")  # not imported: nothing was written
        if outputs is not None:
            try:
                outputs.discard_all_now()
            except Exception:  # noqa: BLE001 - ending the process matters more; the next run recovers
                pass
        self.report()
        end_process(self.code)

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
        if self.progress is not None:
            self.progress.break_line()
        sys.stderr.write(f"rs-change: interrupted ({name}); no partial outputs were left (the output folder holds "
                         "one complete set, or none)\n")
        sys.stderr.flush()
        if self.exit_soon:
            timer = threading.Timer(10.0, os._exit, (self.code,))
            timer.daemon = True
            timer.start()
        return self.code

    def exit_if_threads_blocked(self, code: int) -> int:
        """After an interruption of the console script: end the process now with ``code`` when
        threads of the run are still running (blocked in a C call: a GDAL read of a stalled
        server, left behind by :meth:`rs_change.engine.Engine.map`), since the interpreter would
        wait for them at exit; else return ``code``.  Output is flushed first.
        """
        if not (self.exit_soon and self.unwinding):
            return code
        me = threading.current_thread()
        if any(t.is_alive() and not t.daemon and t is not me for t in threading.enumerate()):
            end_process(code)
        return code

    def restore(self) -> None:
        """Put back the signal handlers and unraisable hook that were there before."""
        if self._wakeup is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.set_wakeup_fd(self._previous_wakeup)
            os.close(self._wakeup[1])  # the watcher reads the end of the pipe and stops
            self._wakeup = None
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self.previous:
            sys.unraisablehook = self.previous_hook
        self.previous = {}


def _main_thread_reads_remote() -> bool:
    remote = sys.modules.get("rs_change.remote")  # not imported: no remote file was read
    return bool(remote is not None and remote.main_thread_reads_remote())


def end_process(code: int) -> None:
    """Flush stdout, stderr and the log handlers, then end the process with ``code`` at once
    (``os._exit``: threads blocked in C calls are not waited for, ``atexit`` handlers do not run,
    and the interpreter does not tear its modules down one by one).
    """
    import logging

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        logging.shutdown()
    os._exit(code)


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


