"""Finding the rs_change package from QGIS's Python, and the one line that says how to install it.

QGIS runs its own Python (on Linux the system ``python3``, on Windows and macOS the one bundled
with QGIS).  rs_change and its dependencies must be importable by that Python.  On Linux the
system Python is "externally managed" (PEP 668), so rs_change goes into a virtual environment
made with ``--system-site-packages`` (it then sees PyQGIS, and QGIS's numpy and GDAL); the
environment variable ``RS_CHANGE_VENV`` names that environment and the plugin adds its
site-packages (``.pth`` files included, so an editable install works) before importing
rs_change, importing rs_change's compiled dependencies so that they keep to their own copies of
GDAL, PROJ and GEOS (:func:`import_bundling`).  Standard library only: this module must import
when nothing else does.
"""

import os
import platform
import site
import sys
from pathlib import Path
from typing import Optional

#: Environment variable naming a virtual environment whose site-packages hold rs_change.
VENV_VARIABLE = "RS_CHANGE_VENV"


def venv_site_packages(venv: str) -> list:
    """The site-packages folders of the virtual environment ``venv`` (POSIX and Windows layouts)."""
    root = Path(venv).expanduser().resolve()
    found = sorted(root.glob(f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"))
    found += [p for p in [root / "Lib" / "site-packages"] if p.is_dir()]
    return [str(p) for p in found if p.is_dir()]


def add_venv(venv: Optional[str] = None) -> list:
    """Add the site-packages of ``venv`` (default: ``$RS_CHANGE_VENV``) to ``sys.path``; returns
    the folders added."""
    venv = venv if venv is not None else os.environ.get(VENV_VARIABLE, "")
    added = []
    for sp in venv_site_packages(venv) if venv else []:
        if sp not in sys.path:
            before = list(sys.path)
            site.addsitedir(sp)  # also runs its .pth files (an editable install of rs-change)
            # addsitedir appends: put the environment's folders (rs_change's dependencies) first
            new = [p for p in sys.path if p not in before]
            sys.path[:] = new + before
            added.append(sp)
    return added


def install_hint(system: Optional[str] = None) -> str:
    """One line: how to make rs_change importable by this QGIS, for ``system`` (default: this OS)."""
    system = system or platform.system()
    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if system == "Windows":
        how = ('open the OSGeo4W Shell that came with QGIS and run: python -m pip install rs-change '
               '(or pip install -e <rs-change folder>), then restart QGIS')
    elif system == "Darwin":
        how = ('run: /Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install rs-change '
               '(or pip install -e <rs-change folder>), then restart QGIS')
    else:
        how = (f'run: /usr/bin/python3 -m venv --system-site-packages ~/.rs-change-qgis && '
               f'~/.rs-change-qgis/bin/pip install rs-change "numpy<2" "attrs>=23.2" (or -e <rs-change folder>), then start '
               f'QGIS with {VENV_VARIABLE}=~/.rs-change-qgis (QGIS Python {ver})')
    return f"rs-change plugin disabled: the rs_change package is not importable by QGIS's Python; {how}"


#: rs_change's compiled dependencies that bring their own copies of GDAL, PROJ and GEOS.
BUNDLING = ("pyproj", "shapely", "pyogrio", "rasterio")


def import_bundling() -> None:
    """Import :data:`BUNDLING` so that each binds to the libraries it was built with.

    The QGIS application and ``qgis_process`` are linked to the system GDAL, PROJ and GEOS, so
    those are in the process's global symbol scope, and a wheel's extension module would
    resolve its GEOS / PROJ / GDAL calls there first, reaching a library of another version
    than the one bundled with it (shapely 2.1 asking GEOS 3.11 for 4-D WKB, pyproj's and
    pyogrio's wheels corrupting the heap at exit).  ``RTLD_DEEPBIND`` makes each of these
    extension modules look in its own dependencies first.  Linux only (elsewhere QGIS's Python
    packages are installed into QGIS's own Python and share its libraries).
    """
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    if not deepbind or not sys.platform.startswith("linux"):
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | deepbind)
    try:
        for name in BUNDLING:
            try:
                __import__(name)
            except ImportError:
                pass  # said by import_rs_change's own import
    finally:
        sys.setdlopenflags(flags)


def import_rs_change() -> Optional[str]:
    """Import rs_change (after :func:`add_venv`); None when it worked, else the one-line hint."""
    add_venv()
    try:
        import numpy  # noqa: F401  (before the deep-bound modules: one numpy for all)

        import_bundling()
        import rs_change  # noqa: F401
        import rs_change.api  # noqa: F401  (numpy, rasterio, pyproj ... : the dependencies too)
    except ImportError as exc:
        return f"{install_hint()} ({exc})"
    return None
