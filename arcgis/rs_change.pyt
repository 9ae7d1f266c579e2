# -*- coding: utf-8 -*-
"""rs-change in ArcGIS Pro: a Python toolbox with the two main tools.

Add it in the Catalog pane (Toolboxes > Add Toolbox > rs_change.pyt).  rs_change must be
importable by ArcGIS Pro's Python: clone the default conda environment (Package Manager >
Environments > Clone), then in that environment's Python Command Prompt
``pip install -e <rs-change folder>``, and make the clone active.

* **Run a config**: ``rs-change run CONFIG -o OUTPUT_DIR [--overwrite]``; the output folder's
  rasters carry their colour tables and class names in ``.aux.xml``, which ArcGIS Pro reads.
* **Water mask of a scene**: ``label_water(read_scene(INPUT, SENSOR), fit_model(scene, k=K,
  metric=METRIC, seed=SEED))`` of the Python API, written as a styled COG.

Errors a user can fix are the command line's one line, given to ``arcpy.AddError`` (the tool
then fails with that message); progress goes to the step progressor.
"""

import arcpy

METRICS = ["auto", "euclidean", "manhattan", "chebyshev"]


def _one_line(text):
    return " ".join(str(text).split())


def _param(name, label, datatype, direction="Input", required=True, value=None, values=None):
    p = arcpy.Parameter(name=name, displayName=label, datatype=datatype,
                        parameterType="Required" if required else "Optional", direction=direction)
    if value is not None:
        p.value = value
    if values is not None:
        p.filter.type = "ValueList"
        p.filter.list = values
    return p


class Toolbox(object):
    def __init__(self):
        self.label = "rs-change"
        self.alias = "rschange"
        self.tools = [RunConfig, WaterMask]


class _Tool(object):
    canRunInBackground = True

    def isLicensed(self):  # noqa: N802 - ArcGIS's name
        return True

    def updateParameters(self, parameters):  # noqa: N802 - ArcGIS's name
        return

    def updateMessages(self, parameters):  # noqa: N802 - ArcGIS's name
        return

    def execute(self, parameters, messages):
        try:
            from rs_change.errors import RsChangeError
        except ImportError as exc:
            arcpy.AddError("rs-change is not importable by ArcGIS Pro's Python: clone the conda environment and "
                           f"pip install rs-change into it, then activate the clone ({exc})")
            raise arcpy.ExecuteError(str(exc))
        values = {p.name: p.valueAsText for p in parameters}
        try:
            self.run(values)
        except RsChangeError as exc:
            arcpy.AddError(_one_line(exc))
            raise arcpy.ExecuteError(_one_line(exc)) from None


class RunConfig(_Tool):
    def __init__(self):
        self.label = "Run a config"
        self.description = "Runs an rs-change config (YAML) as `rs-change run CONFIG -o OUTPUT_DIR` does."

    def getParameterInfo(self):  # noqa: N802 - ArcGIS's name
        return [
            _param("config", "Config (YAML)", "DEFile"),
            _param("output_dir", "Output folder (empty: the config's output.dir)", "DEFolder", required=False),
            _param("overwrite", "Replace existing outputs", "GPBoolean", required=False, value=False),
            _param("summary", "summary.json", "DEFile", direction="Output", required=False),
        ]

    def run(self, v):
        from pathlib import Path

        from rs_change.config import RunConfig as Config
        from rs_change.outputs import output_lock
        from rs_change.pipeline import run
        from rs_change.stac import expand

        cfg = Config.from_yaml(v["config"])
        if cfg.stac is not None:
            cfg = expand(cfg)
        out = Path(v["output_dir"]) if v.get("output_dir") else cfg.output_dir
        arcpy.SetProgressor("step", "rs-change run", 0, 100, 1)

        def progress(stage, done, total):
            lo, hi = {"fit": (0, 25), "blocks": (25, 85), "write": (85, 100)}.get(stage, (0, 100))
            arcpy.SetProgressorPosition(int(lo + (hi - lo) * done / max(total, 1)))

        with output_lock(out):
            result = run(cfg, output_dir=out, overwrite=str(v.get("overwrite")).lower() == "true", progress=progress)
        for d in result.summary["dates"]:
            arcpy.AddMessage(f"{d['date']}: water {d['water_km2']} km2")
        arcpy.SetParameterAsText(3, str(out / "summary.json"))


class WaterMask(_Tool):
    def __init__(self):
        self.label = "Water mask of a scene"
        self.description = ("label_water(read_scene(INPUT, SENSOR), fit_model(scene, k=K, metric=METRIC, seed=SEED)): "
                            "1 water, 0 land, 255 unobserved.")

    def getParameterInfo(self):  # noqa: N802 - ArcGIS's name
        return [
            _param("input", "Scene", "GPRasterLayer"),
            _param("sensor", "Band profile", "GPString", value="naip"),
            _param("k", "Clusters (k)", "GPLong", value=3),
            _param("metric", "Distance", "GPString", value="auto", values=METRICS),
            _param("seed", "Random seed", "GPLong", value=0),
            _param("output", "Water mask (.tif)", "DERasterDataset", direction="Output"),
            _param("water_km2", "Water area (km2)", "GPDouble", direction="Output", required=False),
        ]

    def run(self, v):
        from pathlib import Path

        import rs_change as rc
        from rs_change.export import WATER_CLASSES, WATER_COLORS, write_cog

        arcpy.SetProgressor("step", "rs-change water mask", 0, 3, 1)
        scene = rc.read_scene(v["input"], v.get("sensor") or "naip")
        arcpy.SetProgressorPosition(1)
        model = rc.fit_model(scene, k=int(v.get("k") or 3), metric=v.get("metric") or "auto", seed=int(v.get("seed") or 0))
        arcpy.SetProgressorPosition(2)
        mask = rc.label_water(scene, model)
        write_cog(Path(v["output"]), mask, scene.grid, nodata=255, colormap=WATER_COLORS, classes=WATER_CLASSES,
                  description="water: 1 water, 0 land, 255 unobserved")
        km2 = rc.water_area(mask, scene.transform, scene.crs) / 1e6
        arcpy.SetProgressorPosition(3)
        arcpy.AddMessage(f"water: {km2:.6f} km2, {int((mask == 1).sum())} pixels")
        arcpy.SetParameter(6, km2)
