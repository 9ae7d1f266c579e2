"""Render the dialog of an rs-change Processing tool headless to a PNG (the README's picture).

Run by QGIS's Python with rs-change importable (the venv of docs/qgis.md); Qt's offscreen
platform draws widgets without any display::

    RS_CHANGE_VENV=build/qgis-venv QT_QPA_PLATFORM=offscreen \\
        /usr/bin/python3 qgis_plugin/screenshot.py docs/images/qgis_watermask_dialog.png [rschange:watermask]

It opens Processing's own algorithm dialog (the one the toolbox opens), with the NAIP 2009
sample tile loaded as a layer and chosen as INPUT, and saves ``QWidget.grab()`` of it.
"""

import sys
from pathlib import Path

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main(png: str, alg_id: str = "rschange:watermask") -> None:
    app = QgsApplication([], True)
    app.initQgis()
    sys.path.insert(0, str(HERE))
    sys.path.append(str(Path(QgsApplication.pkgDataPath()) / "python" / "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    import rs_change_qgis

    plugin = rs_change_qgis.classFactory(None)
    plugin.initProcessing()
    if plugin.problem:
        raise SystemExit(plugin.problem)
    tile = ROOT / "sample_tiles" / "naip" / "m_4709963_se_14_1_20090818.tif"
    QgsProject.instance().addMapLayer(QgsRasterLayer(str(tile), tile.stem, "gdal"))
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    dlg = AlgorithmDialog(alg, False, None)
    dlg.resize(900, 640)
    dlg.show()
    for _ in range(20):
        app.processEvents()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    if not dlg.grab().save(png):
        raise SystemExit(f"{png}: could not save the picture")
    print(png)


if __name__ == "__main__":
    main(*sys.argv[1:])
