"""Build the installable zip of the QGIS plugin: ``python qgis_plugin/build_zip.py`` writes
``build/rs_change_qgis-<version>.zip`` (QGIS: Plugins > Manage and Install Plugins > Install from
ZIP).  ``-o FOLDER`` writes it elsewhere.  Prints the zip's path.  Standard library only."""

from __future__ import annotations

import argparse
import configparser
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "rs_change_qgis"


def build(folder: Path) -> Path:
    meta = configparser.ConfigParser()
    meta.read(PLUGIN / "metadata.txt", encoding="utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"rs_change_qgis-{meta['general']['version']}.zip"
    files = sorted(p for p in PLUGIN.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p in files:  # fixed timestamps: the same sources give the same zip
            info = zipfile.ZipInfo(str(p.relative_to(HERE)), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, p.read_bytes())
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", type=Path, default=HERE.parent / "build", help="folder of the zip (default build/)")
    print(build(ap.parse_args().output))
