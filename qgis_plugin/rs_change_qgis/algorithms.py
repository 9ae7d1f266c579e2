"""rs-change's Processing algorithms: thin wrappers over the rs_change library (no subprocess).

Every algorithm turns rs-change's user errors (:class:`rs_change.errors.RsChangeError`) into a
:class:`QgsProcessingException` carrying the same one line the command line prints, and reports
progress and honours cancellation through the :class:`QgsProcessingFeedback`:

- ``run``: rs_change's pipeline calls a progress hook once per date fitted (pass 1), once per
  block of ``compute.chunk_size`` pixels (pass 2) and at the start and end of writing; the hook
  sets the progress bar and, when the user has canceled, stops the run there: the staged files
  are removed and the output folder keeps what it had.  So a cancel takes effect after the date
  being fitted or the block being read, or before writing starts; once writing has started
  (COGs, polygons, report) the run finishes, so that the set is swapped in whole.
- ``watermask``, ``change``: between stages (read, fit, label, write).
- ``sample``, ``assess``: before they start (each takes seconds).
"""

import json
import logging
from pathlib import Path

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingContext, QgsProcessingException,
                       QgsProcessingLayerPostProcessorInterface, QgsProcessingOutputFile, QgsProcessingOutputFolder, QgsProcessingOutputNumber,
                       QgsProcessingParameterBoolean, QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString, QgsProcessingParameterVectorDestination)

METRICS = ["auto", "euclidean", "manhattan", "chebyshev"]


class Canceled(Exception):
    """Raised from a progress hook when the user cancels; unwinds the run (staging removed)."""


def one_line(text):
    """A message on one line, as the command line prints it."""
    return " ".join(str(text).split())


class _FeedbackLog(logging.Handler):
    """rs_change's warnings into the algorithm's log."""

    def __init__(self, feedback):
        super().__init__(logging.WARNING)
        self.feedback = feedback

    def emit(self, record):
        self.feedback.pushInfo(f"{record.levelname.lower()}: {one_line(record.getMessage())}")


class RsChangeAlgorithm(QgsProcessingAlgorithm):
    """Common parts: group, instance, errors, logging, cancel checks."""

    def group(self):
        return "rs-change"

    def groupId(self):  # noqa: N802 - QGIS's name
        return "rschange"

    def createInstance(self):  # noqa: N802 - QGIS's name
        return type(self)()

    def displayName(self):  # noqa: N802 - QGIS's name
        return self.TITLE

    def shortHelpString(self):  # noqa: N802 - QGIS's name
        return self.HELP

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS's name
        from rs_change.errors import RsChangeError

        handler = _FeedbackLog(feedback)
        log = logging.getLogger("rs_change")
        log.addHandler(handler)
        try:
            return self.process(parameters, context, feedback)
        except Canceled:
            feedback.reportError("rs-change: canceled; the output folder keeps what it had")
            return {}
        except RsChangeError as exc:
            raise QgsProcessingException(one_line(exc)) from None
        finally:
            log.removeHandler(handler)

    @staticmethod
    def check(feedback, percent=None):
        """Set the progress bar; stop when the user canceled."""
        if feedback is not None and feedback.isCanceled():
            raise Canceled()
        if percent is not None and feedback is not None:
            feedback.setProgress(percent)


# ---------------------------------------------------------------------------------------------
# run: a config
# ---------------------------------------------------------------------------------------------
#: Progress bar range of each stage of a run (rs_change.pipeline's progress hook).
STAGES = {"fit": (0.0, 25.0), "blocks": (25.0, 85.0), "write": (85.0, 100.0)}


class RunAlgorithm(RsChangeAlgorithm):
    TITLE = "Run a config (rs-change run)"
    HELP = ("Runs a whole rs-change config (YAML) as `rs-change run CONFIG -o OUTPUT_DIR` does: water masks, "
            "change, polygons, summary, report and the STAC catalog. Without OUTPUT_DIR the config's output.dir is "
            "used. The outputs are loaded into the project with their styles when the tool is run from QGIS. "
            "Progress is reported per date fitted and per block; a cancel stops the run after the date or block in "
            "hand, or before writing starts, and leaves the output folder as it was.")

    def name(self):
        return "run"

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS's name
        self.addParameter(QgsProcessingParameterFile("CONFIG", "Config (YAML)", extension="yaml"))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_DIR", "Output folder (empty: the config's output.dir)",
                                                                  optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace existing outputs", defaultValue=False))
        self.addOutput(QgsProcessingOutputFolder("OUTPUT_DIR", "Output folder"))
        self.addOutput(QgsProcessingOutputFile("SUMMARY", "summary.json"))

    def process(self, parameters, context, feedback):
        from rs_change.config import RunConfig
        from rs_change.names import SUMMARY_JSON
        from rs_change.outputs import output_lock
        from rs_change.pipeline import run
        from rs_change.stac import expand

        cfg = RunConfig.from_yaml(self.parameterAsFile(parameters, "CONFIG", context))
        if cfg.stac is not None:  # the scenes a catalog finds, recorded as such in config.yaml
            cfg = expand(cfg)
        folder = self.parameterAsFileOutput(parameters, "OUTPUT_DIR", context)  # TEMPORARY_OUTPUT -> a new temporary folder
        out = Path(folder) if folder else cfg.output_dir
        overwrite = self.parameterAsBoolean(parameters, "OVERWRITE", context)

        def progress(stage, done, total):
            lo, hi = STAGES.get(stage, (0.0, 100.0))
            if stage != "write" or done == 0:  # once writing started the set is swapped in whole
                self.check(feedback)
            feedback.setProgress(lo + (hi - lo) * done / max(total, 1))

        self.check(feedback)
        with output_lock(out):  # a second run into this folder stops with one line
            result = run(cfg, output_dir=out, overwrite=overwrite, progress=progress)
        feedback.pushInfo(f"outputs: {out}")
        if context.project() is not None:
            self.load_outputs(out, context)
        for d in result.summary["dates"]:
            feedback.pushInfo(f"{d['date']}: water {d['water_km2']} km2")
        return {"OUTPUT_DIR": str(out), "SUMMARY": str(out / SUMMARY_JSON)}

    @staticmethod
    def load_outputs(out, context):
        """Queue the run's layers (the STAC catalog's rasters, then the polygons) to be loaded into
        the project when the algorithm finishes; each raster brings its ``.qml`` and the
        GeoPackage its ``layer_styles``."""
        from rs_change.names import CATALOG_JSON, VECTOR_NAMES

        layers = []
        catalog = json.loads((out / CATALOG_JSON).read_text(encoding="utf-8"))
        for link in catalog["links"]:
            if link["rel"] != "item":
                continue
            item = json.loads((out / link["href"]).read_text(encoding="utf-8"))
            for key, asset in item["assets"].items():
                if asset["type"].startswith("image/tiff"):
                    layers.append((str(out / asset["href"]), Path(asset["href"]).stem))
        gpkg = out / VECTOR_NAMES["gpkg"]
        if gpkg.exists():
            import pyogrio

            for name in pyogrio.list_layers(str(gpkg))[:, 0]:
                if name != "layer_styles":
                    layers.append((f"{gpkg}|layername={name}", str(name)))
        for uri, name in layers:
            details = QgsProcessingContext.LayerDetails(name, context.project(), name)
            if "|layername=" in uri:  # Processing loads vector layers without their default style
                details.setPostProcessor(DefaultStyle.create())
            context.addLayerToLoadOnCompletion(uri, details)


class DefaultStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies a loaded layer's own default style (the GeoPackage's ``layer_styles``)."""

    instances = []  # QGIS does not own post-processors made in Python: keep them alive

    @classmethod
    def create(cls):
        obj = cls()
        cls.instances.append(obj)
        return obj

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS's name
        layer.loadDefaultStyle()
        layer.triggerRepaint()


# ---------------------------------------------------------------------------------------------
# watermask: one scene
# ---------------------------------------------------------------------------------------------
class WaterMaskAlgorithm(RsChangeAlgorithm):
    TITLE = "Water mask of a scene"
    HELP = ("The water mask of one scene, as the Python API gives it: label_water(read_scene(INPUT, SENSOR), "
            "fit_model(scene, k=K, metric=METRIC, seed=SEED)); 1 water, 0 land, 255 unobserved, written as a styled "
            "Cloud-Optimized GeoTIFF. WATER_KM2 is the geodesic area of the water pixels. The scene is read whole.")

    def name(self):
        return "watermask"

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS's name
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Scene"))
        add_model_parameters(self)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Water mask"))
        self.addOutput(QgsProcessingOutputNumber("WATER_KM2", "Water area (km2)"))
        self.addOutput(QgsProcessingOutputNumber("WATER_PIXELS", "Water pixels"))

    def process(self, parameters, context, feedback):
        from rs_change.api import water_area
        from rs_change.export import WATER_CLASSES, WATER_COLORS, write_cog

        scene, mask = water_mask(self, parameters, context, feedback, layer_path(self, parameters, context, "INPUT"), 0, 90)
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        write_cog(Path(out), mask, scene.grid, nodata=255, colormap=WATER_COLORS, classes=WATER_CLASSES,
                  description="water: 1 water, 0 land, 255 unobserved")
        km2 = water_area(mask, scene.transform, scene.crs) / 1e6
        feedback.setProgress(100)
        feedback.pushInfo(f"water: {km2:.6f} km2, {int((mask == 1).sum())} pixels")
        return {"OUTPUT": out, "WATER_KM2": km2, "WATER_PIXELS": int((mask == 1).sum())}


def add_model_parameters(alg):
    """The sensor and clustering parameters of a scene's water mask."""
    alg.addParameter(QgsProcessingParameterString("SENSOR", "Band profile (naip, landsat8, sentinel2, modis ...)",
                                                  defaultValue="naip"))
    alg.addParameter(QgsProcessingParameterNumber("K", "Clusters (k)", QgsProcessingParameterNumber.Integer, 3, minValue=2))
    metric = QgsProcessingParameterEnum("METRIC", "Distance", METRICS, defaultValue=0)
    metric.setUsesStaticStrings(False)
    alg.addParameter(metric)
    alg.addParameter(QgsProcessingParameterNumber("SEED", "Random seed", QgsProcessingParameterNumber.Integer, 0, minValue=0))


def layer_path(alg, parameters, context, key):
    """The file behind a raster parameter: a path as given (read by rs_change, not opened once
    more as a QGIS layer), or the source of a project layer."""
    value = parameters.get(key)
    if isinstance(value, str) and Path(value).is_file():
        return value
    layer = alg.parameterAsRasterLayer(parameters, key, context)
    if layer is None:
        raise QgsProcessingException(f"{key}: no raster layer given; choose a GeoTIFF")
    return layer.source().split("|")[0]


def water_mask(alg, parameters, context, feedback, path, lo, hi, like=None):
    """``(scene, mask)``: the scene in ``path`` (on ``like``'s grid when given) and its water mask,
    with progress from ``lo`` to ``hi`` percent."""
    from rs_change.api import fit_model, label_water, read_scene

    sensor = alg.parameterAsString(parameters, "SENSOR", context) or "naip"
    k = alg.parameterAsInt(parameters, "K", context)
    metric = METRICS[alg.parameterAsEnum(parameters, "METRIC", context)]
    seed = alg.parameterAsInt(parameters, "SEED", context)
    alg.check(feedback, lo)
    scene = read_scene(path, sensor, like=like)
    alg.check(feedback, lo + (hi - lo) * 0.2)
    model = fit_model(scene, k=k, metric=metric, seed=seed)
    alg.check(feedback, lo + (hi - lo) * 0.6)
    mask = label_water(scene, model)
    alg.check(feedback, hi)
    return scene, mask


# ---------------------------------------------------------------------------------------------
# change: two water masks or two scenes
# ---------------------------------------------------------------------------------------------
class ChangeAlgorithm(RsChangeAlgorithm):
    TITLE = "Change between two dates"
    HELP = ("Change from BEFORE to AFTER: 0 land persistent, 1 water persistent, 2 water gained, 3 water lost, 255 "
            "unobserved, and its polygons (water persistent, gained, lost) with ground area_m2. The inputs are two water "
            "masks (1 water, 0 land, 255 unobserved; AFTER is put on BEFORE's grid by nearest neighbour) or two scenes "
            "(each labelled as the watermask tool does, AFTER read on BEFORE's grid).")
    INPUTS = ["water masks", "scenes"]

    def name(self):
        return "change"

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS's name
        self.addParameter(QgsProcessingParameterRasterLayer("BEFORE", "Before (first date)"))
        self.addParameter(QgsProcessingParameterRasterLayer("AFTER", "After (last date)"))
        kind = QgsProcessingParameterEnum("INPUT_TYPE", "The inputs are", self.INPUTS, defaultValue=0)
        self.addParameter(kind)
        add_model_parameters(self)  # for scenes
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Change raster"))
        self.addParameter(QgsProcessingParameterVectorDestination("POLYGONS", "Change polygons", optional=True,
                                                                  createByDefault=True))
        for key, label in (("GAINED_KM2", "Water gained (km2)"), ("LOST_KM2", "Water lost (km2)"), ("NET_KM2", "Net change (km2)")):
            self.addOutput(QgsProcessingOutputNumber(key, label))

    def process(self, parameters, context, feedback):
        import numpy as np

        from rs_change.api import compare, polygonize
        from rs_change.change import CHANGE_CLASSES, CHANGE_COLORS
        from rs_change.export import write_cog

        before = layer_path(self, parameters, context, "BEFORE")
        after = layer_path(self, parameters, context, "AFTER")
        if self.parameterAsEnum(parameters, "INPUT_TYPE", context) == 1:
            s1, m1 = water_mask(self, parameters, context, feedback, before, 0, 35)
            _, m2 = water_mask(self, parameters, context, feedback, after, 35, 70, like=s1)
            grid = s1.grid
        else:
            grid, m1 = read_mask(before)
            _, m2 = read_mask(after, grid)
        self.check(feedback, 75)
        c = compare([m1, m2], grid.transform, grid.crs, labels=["before", "after"])
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        write_cog(Path(out), np.asarray(c.change, np.uint8), grid, nodata=255, colormap=CHANGE_COLORS, classes=CHANGE_CLASSES,
                  description="change class, 255 = unobserved")
        self.check(feedback, 85)
        res = {"OUTPUT": out, "GAINED_KM2": c.stats["gained_km2"], "LOST_KM2": c.stats["lost_km2"], "NET_KM2": c.stats["net_km2"]}
        poly = self.parameterAsOutputLayer(parameters, "POLYGONS", context)
        if poly:
            import pandas as pd

            parts = []
            for code in (1, 2, 3):
                gdf = polygonize(c.change, grid.transform, grid.crs, value=code)
                gdf.insert(0, "class", CHANGE_CLASSES[code])
                parts.append(gdf)
            gdf = pd.concat(parts, ignore_index=True)
            gdf.to_file(poly, layer="change", driver="GPKG" if poly.lower().endswith(".gpkg") else None)
            res["POLYGONS"] = poly
        feedback.setProgress(100)
        feedback.pushInfo(f"gained {c.stats['gained_km2']:.6f} km2, lost {c.stats['lost_km2']:.6f} km2")
        return res


def read_mask(path, like=None):
    """``(grid, mask)`` of a water mask file, on ``like``'s grid (nearest neighbour) when given."""
    import numpy as np
    import rasterio
    from rasterio.warp import Resampling, reproject

    from rs_change.errors import InputError
    from rs_change.grid import Grid

    try:
        with rasterio.open(path) as ds:
            grid = Grid(ds.shape, ds.transform, ds.crs)
            if like is None or grid == like:
                mask = ds.read(1)
            else:
                mask = np.full(like.shape, 255, np.uint8)
                reproject(rasterio.band(ds, 1), mask, dst_transform=like.transform, dst_crs=like.crs.to_wkt(),
                          dst_nodata=255, resampling=Resampling.nearest)
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"{path}: cannot read the water mask ({one_line(exc)}); give a GeoTIFF") from None
    values = set(np.unique(mask).tolist())
    if not values <= {0, 1, 255}:
        raise InputError(f"{path}: not a water mask (values {sorted(values)[:6]}; 1 water, 0 land, 255 unobserved); "
                         "choose INPUT_TYPE scenes for images")
    return like or grid, mask.astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# sample, assess: over a run's output folder
# ---------------------------------------------------------------------------------------------
class SampleAlgorithm(RsChangeAlgorithm):
    TITLE = "Accuracy sample of a run (rs-change sample)"
    HELP = ("Draws a stratified random sample of a run's map (change.tif by default; or water_<date>) into "
            "FOLDER/samples.gpkg and samples.csv, as `rs-change sample` does. Label each point's `reference` with a "
            "class name, then run the assess tool. N / PER_CLASS 0: the sample size of Olofsson et al. 2014 eq. 13.")

    def name(self):
        return "sample"

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS's name
        self.addParameter(QgsProcessingParameterFile("FOLDER", "Run output folder", QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterString("MAP", "Map (change or water_<date>; empty: change)", optional=True))
        self.addParameter(QgsProcessingParameterNumber("N", "Points in all (0: eq. 13)", QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber("PER_CLASS", "Points per class (0: allocation)", QgsProcessingParameterNumber.Integer,
                                                       0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber("SEED", "Random seed", QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace existing samples", defaultValue=False))
        self.addOutput(QgsProcessingOutputFile("SAMPLES", "samples.gpkg"))
        self.addOutput(QgsProcessingOutputNumber("POINTS", "Points"))

    def process(self, parameters, context, feedback):
        from rs_change.sampling import SAMPLES_GPKG, Design, sample_run

        out = run_folder(self.parameterAsFile(parameters, "FOLDER", context))
        n = self.parameterAsInt(parameters, "N", context) or None
        per_class = self.parameterAsInt(parameters, "PER_CLASS", context) or None
        self.check(feedback, 0)
        res = sample_run(out, self.parameterAsString(parameters, "MAP", context) or None,
                         Design(n=n, per_class=per_class, seed=self.parameterAsInt(parameters, "SEED", context)),
                         overwrite=self.parameterAsBoolean(parameters, "OVERWRITE", context))
        feedback.setProgress(100)
        return {"SAMPLES": str(out / SAMPLES_GPKG), "POINTS": res["points"]}


class AssessAlgorithm(RsChangeAlgorithm):
    TITLE = "Accuracy and adjusted areas (rs-change assess)"
    HELP = ("Error matrix, accuracies and error-adjusted areas with 95% intervals (Olofsson et al. 2014) from the "
            "labelled points (default FOLDER/samples.gpkg), as `rs-change assess` does: writes accuracy.json / .csv "
            "and adds the adjusted areas to summary.json.")

    def name(self):
        return "assess"

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS's name
        self.addParameter(QgsProcessingParameterFile("FOLDER", "Run output folder", QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterFile("SAMPLES", "Labelled points (.gpkg or .csv; empty: FOLDER/samples.gpkg)",
                                                     optional=True))
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace an existing accuracy.json", defaultValue=False))
        self.addOutput(QgsProcessingOutputFile("ACCURACY", "accuracy.json"))
        self.addOutput(QgsProcessingOutputNumber("OVERALL_ACCURACY", "Overall accuracy"))

    def process(self, parameters, context, feedback):
        from rs_change.accuracy import ACCURACY_JSON, assess_run

        out = run_folder(self.parameterAsFile(parameters, "FOLDER", context))
        samples = self.parameterAsFile(parameters, "SAMPLES", context)
        self.check(feedback, 0)
        acc = assess_run(out, samples or None, overwrite=self.parameterAsBoolean(parameters, "OVERWRITE", context))
        feedback.setProgress(100)
        return {"ACCURACY": str(out / ACCURACY_JSON), "OVERALL_ACCURACY": acc.get("overall_accuracy")}


def run_folder(folder):
    """A run's output folder (the one-line error of ``rs-change sample`` / ``assess`` otherwise)."""
    from rs_change.sampling import run_folder as folder_of_run

    return folder_of_run(folder)


ALGORITHMS = [RunAlgorithm, WaterMaskAlgorithm, ChangeAlgorithm, SampleAlgorithm, AssessAlgorithm]
