"""Load every output of a run in QGIS (headless) with its style and report what QGIS sees.

Run by the system Python that has PyQGIS (Debian ``python3-qgis``), not by the test venv (so it
lives in a folder of its own: tests/test_packaging.py checks what the venv's tests import):
``QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis/check_outputs.py OUTDIR [PNG]`` prints one JSON
object: per raster and per vector layer its validity, CRS, renderer, class labels (and for
vectors the feature count, field types and where the style came from). With ``PNG``, it also
renders the change polygons over the first water mask to that file. tests/test_qgis.py runs it
and checks the answers against the files.
"""

import json
import sys
from pathlib import Path

from qgis.core import (QgsApplication, QgsMapRendererParallelJob, QgsMapSettings, QgsRasterLayer, QgsRectangle,
                       QgsVectorLayer)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor


def raster_info(path: Path) -> dict:
    lyr = QgsRasterLayer(str(path), path.stem, "gdal")
    out = {"valid": lyr.isValid(), "crs": lyr.crs().authid() or lyr.crs().toWkt()[:40]}
    if not lyr.isValid():
        return out
    r = lyr.renderer()
    out["renderer"] = r.type()
    if r.type() == "paletted":
        out["classes"] = {str(c.value): c.label for c in r.classes()}
        out["colors"] = {str(c.value): c.color.name() for c in r.classes()}
    out["color_table_entries"] = len(lyr.dataProvider().colorTable(1))
    out["band_description"] = lyr.bandName(1)
    return out


def vector_info(uri: str, name: str) -> dict:
    lyr = QgsVectorLayer(uri, name, "ogr")
    out = {"valid": lyr.isValid(), "crs": lyr.crs().authid()}
    if not lyr.isValid():
        return out
    out["features"] = lyr.featureCount()
    out["fields"] = {f.name(): f.typeName() for f in lyr.fields()}
    r = lyr.renderer()
    out["renderer"] = r.type()
    if r.type() == "categorizedSymbol":
        out["classes"] = {str(c.value()): c.symbol().color().name() for c in r.categories()}
    out["geometry_valid"] = all(f.geometry().isGeosValid() for f in lyr.getFeatures())
    return out


def main(folder: Path, png: str = "") -> dict:
    res: dict = {"rasters": {}, "vectors": {}}
    for tif in sorted(folder.glob("*.tif")):
        res["rasters"][tif.name] = raster_info(tif)
    gpkg = folder / "water.gpkg"
    if gpkg.exists():
        from osgeo import ogr

        ds = ogr.Open(str(gpkg))
        names = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())]
        res["gpkg_layers"] = names
        for n in names:
            if n != "layer_styles":
                res["vectors"][f"water.gpkg|{n}"] = vector_info(f"{gpkg}|layername={n}", n)
    for sub, ext in (("water_shp", ".shp"), ("water_geojson", ".geojson")):
        for f in sorted((folder / sub).glob(f"*{ext}")):
            res["vectors"][f"{sub}/{f.name}"] = vector_info(str(f), f.stem)
    gdb = folder / "water.gdb"
    if gdb.exists():
        from osgeo import ogr

        ds = ogr.Open(str(gdb))
        for i in range(ds.GetLayerCount()):
            n = ds.GetLayer(i).GetName()
            res["vectors"][f"water.gdb|{n}"] = vector_info(f"{gdb}|layername={n}", n)
    if png:
        rasters = sorted(folder.glob("water_*.tif"))
        layers = [QgsVectorLayer(f"{gpkg}|layername=change", "change", "ogr"), QgsRasterLayer(str(rasters[0]), "water", "gdal")]
        ms = QgsMapSettings()
        ms.setLayers(layers)
        ms.setDestinationCrs(layers[1].crs())
        ext: QgsRectangle = layers[1].extent()
        ms.setExtent(ext)
        ms.setOutputSize(QSize(900, int(900 * ext.height() / ext.width())))
        ms.setBackgroundColor(QColor(255, 255, 255))
        job = QgsMapRendererParallelJob(ms)
        job.start()
        job.waitForFinished()
        res["render_saved"] = job.renderedImage().save(png, "PNG")
    return res


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    try:
        print(json.dumps(main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "")))
    finally:
        app.exitQgis()
