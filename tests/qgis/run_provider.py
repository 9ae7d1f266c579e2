"""rs-change's Processing provider in a headless QGIS: ``processing.run`` of its algorithms.

Run by a Python that has PyQGIS (the system ``python3`` or a venv made from it with
``--system-site-packages``), with QT_QPA_PLATFORM=offscreen:
``python tests/qgis/run_provider.py WORKDIR [--only-load]``.  Prints one JSON object:
whether the plugin loaded (or its one-line problem), the provider's algorithms and, unless
``--only-load``, the results of watermask on a NAIP tile (with the API's own mask in the same
process), run on configs/naip_devils_lake.yaml, a bad config's exception, change, sample, assess
and a canceled run.  tests/test_qgis_provider.py runs it and checks the answers.
"""

import json
import sys
from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProject

ROOT = Path(__file__).resolve().parents[2]
TILE = ROOT / "sample_tiles" / "naip" / "m_4709963_se_14_1_20090818.tif"


class CancelAfter(QgsProcessingFeedback):
    """Cancels once the progress bar passed ``percent``."""

    def __init__(self, percent):
        super().__init__()
        self.percent = percent
        self.seen = []
        self.progressChanged.connect(self._seen)

    def _seen(self, p):
        self.seen.append(p)
        if p > self.percent:
            self.cancel()


def main(work: Path, only_load: bool) -> dict:
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(ROOT / "qgis_plugin"))
    sys.path.append(str(Path(QgsApplication.pkgDataPath()) / "python" / "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    import rs_change_qgis

    plugin = rs_change_qgis.classFactory(None)
    plugin.initProcessing()
    res = {"problem": plugin.problem,
           "algorithms": sorted(a.id() for a in QgsApplication.processingRegistry().algorithms() if a.provider().id() == "rschange")}
    if only_load or plugin.problem:
        return res

    import numpy as np
    import rasterio

    import shutil

    import rs_change as rc

    # Processing opens a raster given by path as a layer to compare the inputs' CRSs
    # (validateInputCrs), and GDAL then keeps its statistics in an .aux.xml beside the file:
    # the tools read a copy, so that the repository's tile stays as it is
    tile = work / TILE.name
    shutil.copy(TILE, tile)

    # watermask, and the API's mask of the same tile in this process
    wm = processing.run("rschange:watermask", {"INPUT": str(tile), "OUTPUT": str(work / "wm.tif")})
    with rasterio.open(wm["OUTPUT"]) as ds:
        got = ds.read(1)
        res["watermask_file"] = {"crs": ds.crs.to_string(), "nodata": ds.nodata, "shape": list(ds.shape)}
    scene = rc.read_scene(str(tile), "naip")
    api = rc.label_water(scene, rc.fit_model(scene, k=3, metric="auto", seed=0))
    res["watermask"] = {"WATER_PIXELS": wm["WATER_PIXELS"], "WATER_KM2": wm["WATER_KM2"], "file_water_pixels": int((got == 1).sum()),
                        "api_water_pixels": int((api == 1).sum()), "api_km2": rc.water_area(api, scene.transform, scene.crs) / 1e6,
                        "same_pixels": bool(np.array_equal(got, api))}
    wm7 = processing.run("rschange:watermask", {"INPUT": str(tile), "K": 4, "METRIC": 2, "SEED": 7, "OUTPUT": str(work / "wm7.tif")})
    api7 = rc.label_water(scene, rc.fit_model(scene, k=4, metric="manhattan", seed=7))
    res["watermask_k4"] = {"WATER_PIXELS": wm7["WATER_PIXELS"], "api_water_pixels": int((api7 == 1).sum())}

    # run a config
    run = processing.run("rschange:run", {"CONFIG": str(ROOT / "configs" / "naip_devils_lake.yaml"),
                                          "OUTPUT_DIR": str(work / "run"), "OVERWRITE": False})
    res["run"] = {"OUTPUT_DIR": run["OUTPUT_DIR"], "SUMMARY": run["SUMMARY"]}

    # a bad config and an existing output: QgsProcessingException with the CLI's line
    bad = work / "bad.yaml"
    bad.write_text("scenes: []\nclustering: {k: 3, colour: blue}\n", encoding="utf-8")
    res["errors"] = {}
    for key, params in (("bad_config", {"CONFIG": str(bad), "OUTPUT_DIR": str(work / "bad_out")}),
                        ("existing", {"CONFIG": str(ROOT / "configs" / "naip_devils_lake.yaml"), "OUTPUT_DIR": str(work / "run")})):
        try:
            processing.run("rschange:run", params)
            res["errors"][key] = None
        except QgsProcessingException as exc:
            res["errors"][key] = str(exc)
    res["bad_out_exists"] = (work / "bad_out").exists()

    # change of the run's two water masks
    w1, w2 = (str(work / "run" / f"water_{d}.tif") for d in ("2009-08-18", "2020-08-31"))
    ch = processing.run("rschange:change", {"BEFORE": w1, "AFTER": w2, "OUTPUT": str(work / "change.tif"),
                                            "POLYGONS": str(work / "change.gpkg")})
    with rasterio.open(ch["OUTPUT"]) as ds, rasterio.open(work / "run" / "change.tif") as ref:
        same_change = bool(np.array_equal(ds.read(1), ref.read(1)))
    import pyogrio

    polys = pyogrio.read_dataframe(ch["POLYGONS"], layer="change")
    res["change"] = {"GAINED_KM2": ch["GAINED_KM2"], "LOST_KM2": ch["LOST_KM2"], "NET_KM2": ch["NET_KM2"], "same_as_run": same_change,
                     "polygon_m2": {c: float(polys.loc[polys["class"] == c, "area_m2"].sum()) for c in sorted(set(polys["class"]))}}

    # sample, label every point as mapped, assess: overall accuracy 1
    sm = processing.run("rschange:sample", {"FOLDER": str(work / "run"), "PER_CLASS": 5, "SEED": 1})
    pts = pyogrio.read_dataframe(sm["SAMPLES"], layer="samples")
    meta = pyogrio.read_info(sm["SAMPLES"], layer="samples")["layer_metadata"]
    pts["reference"] = pts["map_class"]
    pyogrio.write_dataframe(pts, str(work / "labelled.gpkg"), layer="samples", layer_metadata=meta)
    ac = processing.run("rschange:assess", {"FOLDER": str(work / "run"), "SAMPLES": str(work / "labelled.gpkg")})
    res["sample"] = {"POINTS": sm["POINTS"], "rows": len(pts)}
    acc = json.loads(Path(ac["ACCURACY"]).read_text(encoding="utf-8"))
    res["assess"] = {"OVERALL_ACCURACY": ac["OVERALL_ACCURACY"], "ACCURACY": ac["ACCURACY"], "file_overall": acc["overall_accuracy"]}

    # a run canceled after the first date's fit writes nothing
    fb = CancelAfter(10)
    context = QgsProcessingContext()
    out = processing.run("rschange:run", {"CONFIG": str(ROOT / "configs" / "naip_devils_lake.yaml"), "OUTPUT_DIR": str(work / "canceled")},
                         context=context, feedback=fb)
    res["canceled"] = {"result": out, "folder_exists": (work / "canceled").exists(), "max_progress": max(fb.seen or [0])}

    # with a project in the context, the run's layers are queued to load with their styles
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    processing.run("rschange:run", {"CONFIG": str(ROOT / "configs" / "naip_devils_lake.yaml"), "OUTPUT_DIR": str(work / "run"),
                                    "OVERWRITE": True}, context=context)
    res["to_load"] = sorted(d.name for d in context.layersToLoadOnCompletion().values())
    # as Processing's dialog loads them when the tool finishes: each with its style
    from qgis.core import QgsProcessingUtils

    res["loaded_renderers"] = {}
    for uri, details in context.layersToLoadOnCompletion().items():
        layer = QgsProcessingUtils.mapLayerFromString(uri, context)
        if details.postProcessor() is not None:
            details.postProcessor().postProcessLayer(layer, context, QgsProcessingFeedback())
        res["loaded_renderers"][Path(uri.split("|")[0]).name + ("|" + details.name if "|" in uri else "")] = layer.renderer().type()
    return res


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), "--only-load" in sys.argv)))
