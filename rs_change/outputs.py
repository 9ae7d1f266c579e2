"""EDGE: how a run's files reach the output folder: staged, checked, then swapped in as a set.

A run never writes under a final name.  Everything is written into a staging folder
``.rs-change-tmp-<token>-*`` inside the output folder (same filesystem, so moves are atomic
renames), ``manifest.json`` is written last (sha256 of every file, config hash, versions), and
:func:`commit` swaps the new set in:

1. a journal naming the old and new files is written into a backup folder
   ``.rs-change-backup-<token>-*``;
2. the previous outputs (those to be replaced, and those listed by the previous manifest) are
   renamed into the backup folder, ``manifest.json`` first;
3. the new files are renamed into place, ``manifest.json`` last;
4. the backup folder is deleted.

Any exception during 2-3 moves the old files back.  A killed process leaves the backup folder
and its journal behind; :func:`recover` (run at the start of every run) finishes the swap when
the new ``manifest.json`` made it into place, and otherwise puts the old files back.  So the
folder always ends up holding either the complete previous set or the complete new set, never a
mix and never a partial file.

Staging and backup folders are created exclusively (``mkdtemp``) under a random run token, and
the run holds an ``flock`` on a lock file inside each while it uses it.  The kernel drops that
lock when the process ends, however it ends, so :func:`recover` tells a live run's folder from a
dead run's by trying the lock, never by a process id (which the system reuses).  The CLI also
holds :func:`output_lock` on the output folder for the whole run: a second run into the same
folder stops with one line instead of racing the first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

from .errors import OutputError
from .names import CONFIG_YAML, MANIFEST, SUMMARY_CSV, SUMMARY_JSON

log = logging.getLogger(__name__)

TMP_PREFIX = ".rs-change-tmp-"
BACKUP_PREFIX = ".rs-change-backup-"
PROBE_PREFIX = ".rs-change-probe-"
JOURNAL = "journal.json"
#: Lock file inside a staging / backup folder, held (flock) by the run using the folder.
FOLDER_LOCK = ".lock"
#: Lock file of the output folder, held by the CLI for a whole run (:func:`output_lock`).
OUTPUT_LOCK = ".rs-change.lock"
#: This process's run token: names its staging and backup folders and goes into the journal.
RUN_TOKEN = secrets.token_hex(8)

#: Distributions whose versions go into the manifest (import names differ; metadata names used).
KEY_DEPENDENCIES = (
    "numpy", "rasterio", "scikit-learn", "pyproj", "shapely", "pyogrio", "geopandas", "pydantic", "dask", "PyYAML",
)

# Staging / backup folders of runs alive in this process (never cleaned by :func:`recover`).
_ACTIVE: set[str] = set()
# Output folders created by a run of this process (removed again if the run fails before writing).
_CREATED: set[str] = set()
# Lock files held by this process: folder -> open descriptor (closing it releases the flock).
_HELD: dict[str, int] = {}
# Output-folder lock files held by this process (:func:`output_lock`) -> the folders it created for them.
_OUTPUT_LOCKS: dict[str, list[Path]] = {}


# ---------------------------------------------------------------------------------------------
# Checks before a run
# ---------------------------------------------------------------------------------------------
def check_output_dir(out: Path, names: Sequence[str], overwrite: bool) -> None:
    """Refuse an output folder that cannot be written or holds outputs (without ``overwrite``).

    Creates nothing: when ``out`` does not exist yet, its nearest existing parent must be a
    writable folder.  Leftovers of killed runs are recovered first (see :func:`recover`).

    Parameters
    ----------
    out : Path
        Output folder.
    names : sequence of str
        File names the run will write.
    overwrite : bool
        Allow replacing existing outputs.

    Raises
    ------
    OutputError
        One line naming the folder and the fix.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: output path exists and is not a folder; set `output.dir` (or -o) to a folder")
    if out.is_dir():
        recover(out)
        existing = [n for n in names if (out / n).exists()]
        if existing and not overwrite:
            raise OutputError(
                f"{out}: {len(existing)} output(s) already exist (e.g. {existing[0]}); "
                "pass --overwrite (overwrite=True from Python) or choose another `output.dir`"
            )
        target = out
    else:
        target = _check_creatable(out)
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=PROBE_PREFIX, delete=True):
            pass
    except OSError as exc:
        raise OutputError(
            f"{out}: output folder cannot be written ({exc.strerror or exc}); choose a writable `output.dir` (or -o)"
        ) from None


def _check_creatable(out: Path) -> Path:
    """The nearest existing folder of ``out`` (``out`` itself when it exists); an
    :class:`OutputError` when ``out`` or that ancestor is not a folder.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: output path exists and is not a folder; set `output.dir` (or -o) to a folder")
    target = out
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        raise OutputError(
            f"{out}: cannot create the output folder ({target} is not a folder); choose another `output.dir`"
        )
    return target


def staging_dir(out: Path) -> Path:
    """Create ``out`` and a fresh staging folder inside it (``.rs-change-tmp-<token>-*``, created
    exclusively, its lock held until :func:`discard`).
    """
    try:
        if not Path(out).exists():
            _CREATED.add(str(Path(out)))
        Path(out).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{RUN_TOKEN}-", dir=out))
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot create the output folder ({exc.strerror or exc}); choose a writable `output.dir`"
        ) from None
    _ACTIVE.add(str(tmp))
    _hold(tmp)
    return tmp


def _hold(folder: Path) -> None:
    """Create ``folder/.lock`` exclusively and hold an flock on it: the folder's owner is alive."""
    fd = os.open(Path(folder) / FOLDER_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:  # a filesystem without locks: recovery cannot tell this folder is alive
        log.debug("%s: cannot lock (%s)", folder, exc)
    _HELD[str(folder)] = fd


def _release(folder: Path) -> None:
    fd = _HELD.pop(str(folder), None)
    if fd is not None:
        os.close(fd)


def _in_use(folder: Path) -> bool:
    """Whether another run holds ``folder``'s lock (a run of this process included)."""
    return _locked(Path(folder) / FOLDER_LOCK)


def _locked(path: Path) -> bool:
    """Whether some process holds an flock on the file ``path``."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file (or not a folder): its run died before it could hold one
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)  # releases the lock taken just now
    return False


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[Path]:
    """Hold the output folder's lock file (``.rs-change.lock``, flock) for a whole run.

    A second run into the same folder fails at once with one line (:class:`OutputError`) instead
    of swapping its set over the first one's.  Creates ``out`` when needed; on exit removes the
    lock file, and ``out`` (and the parents created with it) again when left empty.
    """
    out = Path(out)
    _check_creatable(out)
    created: list[Path] = []
    for d in [*reversed(out.parents), out]:
        if not d.exists():
            try:
                d.mkdir()
            except FileExistsError:
                pass
            except OSError as exc:
                _remove_empty(created)
                raise OutputError(
                    f"{out}: cannot create the output folder ({exc.strerror or exc}); choose a writable `output.dir`"
                ) from None
            else:
                created.append(d)
    lock = out / OUTPUT_LOCK
    try:
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise OutputError(
                    f"{lock}: cannot open the output folder's lock file ({exc.strerror or exc}); "
                    + ("remove it (it is not a regular file)" if exc.errno == errno.ELOOP
                       else "choose a writable `output.dir`")
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputError(
                        f"{out}: another rs-change run is writing into this folder (it holds {OUTPUT_LOCK}); "
                        "wait for it to finish or choose another `output.dir` (-o)"
                    ) from None
                log.warning("%s: cannot lock the output folder (%s); concurrent runs into it are not detected",
                            out, exc)
                fd = -1
                break
            st = os.fstat(fd)
            try:
                same = os.stat(lock, follow_symlinks=False).st_ino == st.st_ino
            except FileNotFoundError:
                same = False
            if same:  # else the previous holder removed the file while we opened it: lock the new one
                break
            os.close(fd)
    except BaseException:
        _remove_empty(created)
        raise
    _OUTPUT_LOCKS[str(lock)] = created
    try:
        yield out
    finally:
        _OUTPUT_LOCKS.pop(str(lock), None)
        if not out.is_dir():  # deleted, moved or unmounted while the run held it
            _VANISHED.add(str(out))
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.unlink(lock)
            os.close(fd)
        _remove_empty(created)


_VANISHED: set[str] = set()


def folder_vanished(out: Path) -> bool:
    """Whether ``out`` disappeared while :func:`output_lock` held it (reading resets it)."""
    try:
        _VANISHED.remove(str(Path(out)))
    except KeyError:
        return False
    return True


def _remove_empty(folders: Sequence[Path]) -> None:
    for d in reversed(folders):
        try:
            os.rmdir(d)
        except OSError:
            break


def discard(tmp: Optional[Path]) -> None:
    """Delete a staging folder (after success or failure); after a failure, also the output
    folder itself when this run created it and it is empty again.
    """
    if tmp is None:
        return
    if sys.exc_info()[0] is not None:  # a failure: was the disk full? (measured before the staging is freed)
        _note_free_space(tmp)
    _release(tmp)
    _ACTIVE.discard(str(tmp))
    shutil.rmtree(tmp, ignore_errors=True)
    out = str(Path(tmp).parent)
    if out in _CREATED:
        _CREATED.discard(out)
        try:
            os.rmdir(out)  # only succeeds when empty (a failed run): nothing is left behind
        except OSError:
            pass


def discard_all_now() -> None:
    """Delete this process's staging folders and output-folder lock files, and the folders its
    runs created when they are empty again: the clean-up of a process that must end at once
    (SIGTERM while its main thread is blocked in a C call, :class:`rs_change.process.SignalTrap`),
    called from another thread.  While a swap is under way (a backup folder is in use) nothing is
    touched: its journal lets the next run finish it or roll it back (:func:`recover`).
    """
    active = [Path(d) for d in list(_ACTIVE)]
    if any(d.name.startswith(BACKUP_PREFIX) for d in active):
        return
    for d in active:
        gone = d.with_name(d.name + "-discarded")  # renamed first: no file is created in it from now on
        try:
            os.rename(d, gone)
        except OSError:
            gone = d
        shutil.rmtree(gone, ignore_errors=True)  # what is left is a dead run's staging: recover() removes it
        _ACTIVE.discard(str(d))
    for out in list(_CREATED):
        with contextlib.suppress(OSError):
            os.rmdir(out)
    for lock, created in list(_OUTPUT_LOCKS.items()):
        with contextlib.suppress(OSError):
            os.unlink(lock)  # the flock itself ends with the process
        _remove_empty(created)


#: errno of a test write into the output folder just after a run failed while writing (None: it worked).
_WRITE_ERRNO_AT_FAILURE: list[Optional[int]] = [None]
#: Bytes of that test write: a disk with less room than this was the cause, not rs-change.
PROBE_BYTES = 1 << 20


def _note_free_space(folder: Path) -> None:
    """After a failure, try writing :data:`PROBE_BYTES` next to the staged files (before they are
    freed): a full disk, a quota or a file-size limit fails it whatever words the library that
    hit it first used (SQLite, through GDAL, says "no such table" when it could not create one).
    """
    _WRITE_ERRNO_AT_FAILURE[0] = None
    try:
        fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError as exc:
        _WRITE_ERRNO_AT_FAILURE[0] = exc.errno
        return
    try:
        block = b"\0" * (64 << 10)
        for _ in range(PROBE_BYTES // len(block)):
            os.write(fd, block)
        os.fsync(fd)
    except OSError as exc:
        _WRITE_ERRNO_AT_FAILURE[0] = exc.errno
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name)


def out_of_space_at_failure() -> bool:
    """Whether the output folder had no room (disk full, quota, file-size limit) when the last
    failed run of this process gave up writing.  Reading resets it.
    """
    err, _WRITE_ERRNO_AT_FAILURE[0] = _WRITE_ERRNO_AT_FAILURE[0], None
    return err in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_set(out: Path, files: Mapping[str, Callable[[Path], Any]], config_sha256: Optional[str],
              overwrite: bool = False) -> list[Path]:
    """Write a small set of files the way a run writes its outputs (``--summary-only``).

    Each ``files[name](path)`` writes one file into a fresh staging folder (created exclusively
    by :func:`staging_dir`: no fixed temporary name, so a planted symlink cannot redirect a
    write); ``manifest.json`` follows, and :func:`commit` swaps the set in, replacing every file
    the previous manifest lists (a full run's rasters, its config.yaml ...): the folder holds one
    consistent set that :func:`verify` accepts.

    Raises
    ------
    OutputError
        The folder cannot be written, or holds outputs and ``overwrite`` is False.
    """
    out = Path(out)
    names = [*files, MANIFEST]
    check_output_dir(out, names, overwrite)
    tmp = staging_dir(out)
    try:
        for name, write in files.items():
            write(tmp / name)
        write_manifest(tmp, list(files), config_sha256)  # type: ignore[arg-type]
        return commit(out, tmp, names, replace=previous_outputs(out))
    finally:
        discard(tmp)


def config_hash(config_yaml: str) -> str:
    """The manifest's ``config_sha256``: sha256 of the config as written next to the outputs."""
    return hashlib.sha256(config_yaml.encode()).hexdigest()


def write_summary_set(summary: Mapping[str, Any], out: Path, overwrite: bool = False,
                      config_yaml: Optional[str] = None) -> list[Path]:
    """``summary.json``, ``summary.csv`` (and ``config.yaml`` when given) and their manifest,
    written into ``out`` as one set by :func:`write_set`.
    """
    from .export import write_csv, write_json

    rows = [{k: v for k, v in d.items() if not isinstance(v, (list, dict))} for d in summary["dates"]]
    files: dict[str, Callable[[Path], Any]] = {
        SUMMARY_JSON: lambda p: write_json(p, summary),
        SUMMARY_CSV: lambda p: write_csv(p, rows),
    }
    digest = None
    if config_yaml is not None:
        files[CONFIG_YAML] = lambda p: p.write_text(config_yaml, encoding="utf-8")
        digest = config_hash(config_yaml)
    return write_set(out, files, digest, overwrite)


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------
def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Versions of rs-change, Python, GDAL/PROJ/GEOS and the key Python dependencies."""
    from ._version import __version__

    v: dict[str, str] = {"rs_change": __version__, "python": platform.python_version()}
    for dist in KEY_DEPENDENCIES:
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover - optional in some installs
            v[dist] = "not installed"
    try:
        import rasterio

        v["GDAL"] = str(rasterio.__gdal_version__)
    except Exception:  # pragma: no cover
        pass
    try:
        import pyproj

        v["PROJ"] = str(pyproj.proj_version_str)
    except Exception:  # pragma: no cover
        pass
    try:
        import shapely

        v["GEOS"] = str(shapely.geos_version_string)
    except Exception:  # pragma: no cover
        pass
    return v


def write_manifest(folder: Path, names: Iterable[str], config_sha256: str) -> Path:
    """Write ``manifest.json`` into ``folder`` describing the files ``names`` found there.

    The manifest holds no time stamps or absolute paths, so the same config, seed and software
    give a byte-identical manifest.

    Returns
    -------
    Path
        The manifest's path.
    """
    files = []
    for n in names:
        p = Path(folder) / n
        files.append({"name": n, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    data: dict[str, Any] = {
        "manifest_version": 1,
        "config_sha256": config_sha256,
        "versions": versions(),
        "files": files,
    }
    path = Path(folder) / MANIFEST
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def previous_outputs(out: Path) -> list[str]:
    """Top-level names listed by the manifest already in ``out`` (those a rerun replaces).

    A manifest entry inside a folder output (``water.gdb/a00000001.gdbtable``) gives the folder.
    """
    try:
        data = json.loads((Path(out) / MANIFEST).read_text(encoding="utf-8"))
        names = [str(f["name"]).replace("\\", "/").split("/", 1)[0] for f in data.get("files", [])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    return [n for n in dict.fromkeys(names) if _plain(n)]


def verify(out: Path) -> list[str]:
    """Names whose bytes no longer match ``out/manifest.json`` (missing files included)."""
    data = json.loads((Path(out) / MANIFEST).read_text(encoding="utf-8"))
    bad = []
    for f in data["files"]:
        p = Path(out) / f["name"]
        if not p.is_file() or sha256_file(p) != f["sha256"]:
            bad.append(f["name"])
    return bad


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


# ---------------------------------------------------------------------------------------------
# Swap the new set in
# ---------------------------------------------------------------------------------------------
def commit(out: Path, tmp: Path, names: Sequence[str], replace: Iterable[str] = ()) -> list[Path]:
    """Move the staged files ``names`` from ``tmp`` into ``out`` as one set.

    Parameters
    ----------
    out : Path
        Output folder.
    tmp : Path
        Staging folder inside ``out`` holding every name in ``names``.
    names : sequence of str
        Files to move in; ``manifest.json``, when present, is moved last.
    replace : iterable of str, optional
        Further existing files of a previous run to remove with the swap (for example those
        its manifest lists that the new run does not write).

    Returns
    -------
    list of Path
        Final paths, in the order of ``names``.

    Raises
    ------
    OSError
        When a move fails; the previous outputs are back in place and no new file remains.
    """
    out, tmp = Path(out), Path(tmp)
    new = [n for n in names if n != MANIFEST] + ([MANIFEST] if MANIFEST in names else [])
    old_candidates = ([MANIFEST] if (out / MANIFEST).exists() else []) + list(dict.fromkeys([*replace, *new]))
    old = [n for n in dict.fromkeys(old_candidates) if _plain(n) and (out / n).exists()]
    backup = Path(tempfile.mkdtemp(prefix=f"{BACKUP_PREFIX}{RUN_TOKEN}-", dir=out))
    _ACTIVE.add(str(backup))
    _hold(backup)
    journal = {
        "token": RUN_TOKEN,
        "old": old,
        "new": new,
        "manifest_sha256": sha256_file(tmp / MANIFEST) if MANIFEST in new else None,
    }
    try:
        _write_synced(backup / JOURNAL, json.dumps(journal, indent=2))
        for n in old:
            os.replace(out / n, backup / n)
        for n in new:
            os.replace(tmp / n, out / n)
    except BaseException:
        _rollback(out, backup, journal)
        _release(backup)
        _ACTIVE.discard(str(backup))
        raise
    shutil.rmtree(backup, ignore_errors=True)
    _release(backup)
    _ACTIVE.discard(str(backup))
    log.info("%s: %d file(s) written, %d previous file(s) replaced", out, len(new), len(old))
    return [out / n for n in names]


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _rollback(out: Path, backup: Path, journal: dict[str, Any]) -> None:
    """Put the previous files back and remove new ones (idempotent; safe after a kill)."""
    old = set(journal.get("old", []))
    for n in journal.get("new", []):
        if n not in old and _plain(n):
            _remove(out / n)
    for n in journal.get("old", []):
        if _plain(n) and (backup / n).exists():
            if (out / n).is_dir() and not (out / n).is_symlink():
                _remove(out / n)  # a folder output (water.gdb): os.replace cannot replace a full folder
            os.replace(backup / n, out / n)
    shutil.rmtree(backup, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def recover(out: Path) -> list[str]:
    """Clean up after runs that were killed while writing into ``out``.

    Staging folders are deleted; an interrupted swap is finished when its new ``manifest.json``
    is in place, and undone otherwise.  Folders of runs still alive are left: a run holds the
    lock file inside its folders, and the kernel releases it when the run's process ends.

    Returns
    -------
    list of str
        What was done, one entry per leftover (also logged).
    """
    out = Path(out)
    done: list[str] = []
    if not out.is_dir():
        return done
    for d in sorted(out.iterdir()):
        name = d.name
        if name == OUTPUT_LOCK:  # left by a killed run unless a run holds it now
            if str(d) not in _OUTPUT_LOCKS and not d.is_symlink() and d.is_file() and not _locked(d):
                d.unlink(missing_ok=True)
                done.append(f"removed the lock file {name} of an interrupted run")
            continue
        if not name.startswith((TMP_PREFIX, BACKUP_PREFIX, PROBE_PREFIX)) or str(d) in _ACTIVE:
            continue
        if d.is_symlink():  # not ours: a link named like our folders is removed, never followed
            d.unlink(missing_ok=True)
            done.append(f"removed the link {name}")
            continue
        if _in_use(d):
            log.warning("%s: another rs-change run is writing here (it holds %s/%s); left alone",
                        out, name, FOLDER_LOCK)
            continue
        if name.startswith(BACKUP_PREFIX) and d.is_dir():
            try:
                journal = json.loads((d / JOURNAL).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                journal = None  # killed before the journal was complete: nothing was moved yet
            if journal is None:
                shutil.rmtree(d, ignore_errors=True)
                done.append(f"removed {name} (no file had been moved)")
            elif journal.get("manifest_sha256") and (out / MANIFEST).is_file() \
                    and sha256_file(out / MANIFEST) == journal["manifest_sha256"]:
                shutil.rmtree(d, ignore_errors=True)
                done.append(f"finished the interrupted swap of {name}")
            else:
                _rollback(out, d, journal)
                done.append(f"restored the previous outputs from {name}")
        elif d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
            done.append(f"removed the staging folder {name} of an interrupted run")
        else:
            d.unlink(missing_ok=True)
            done.append(f"removed {name}")
    for msg in done:  # clean-up that succeeded: a note in the log (-v), not a warning on a run that ends well
        log.info("%s: %s", out, msg)
    return done
