"""The ArcGIS Pro Python toolbox (arcgis/rs_change.pyt) against a stub ``arcpy``: its parameters as
ArcGIS reads them, and its two tools run for real on the NAIP sample (the stub records what the
tools tell ArcGIS)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import types

import numpy as np
import pytest
import rasterio

from .conftest import CONFIGS, ROOT, SAMPLE

TILE = SAMPLE / "naip" / "m_4709963_se_14_1_20090818.tif"


class _Filter:
    def __init__(self) -> None:
        self.type, self.list = None, []


class _Parameter:
    """arcpy.Parameter as the toolbox uses it: keyword construction, value, valueAsText, filter."""

    def __init__(self, name: str, displayName: str, datatype: str, parameterType: str, direction: str) -> None:  # noqa: N803
        self.name, self.displayName, self.datatype = name, displayName, datatype
        self.parameterType, self.direction = parameterType, direction
        self.value = None
        self.filter = _Filter()

    @property
    def valueAsText(self):  # noqa: N802 - arcpy's name
        return None if self.value is None else str(self.value)


@pytest.fixture
def pyt(monkeypatch):
    calls: dict[str, list] = {"messages": [], "errors": [], "set": [], "progress": []}
    arcpy = types.ModuleType("arcpy")
    arcpy.Parameter = _Parameter
    arcpy.ExecuteError = type("ExecuteError", (Exception,), {})
    arcpy.AddMessage = calls["messages"].append
    arcpy.AddError = calls["errors"].append
    arcpy.SetProgressor = lambda *a: calls["progress"].append(("start", *a))
    arcpy.SetProgressorPosition = lambda p: calls["progress"].append(p)
    arcpy.SetParameter = lambda i, v: calls["set"].append((i, v))
    arcpy.SetParameterAsText = lambda i, v: calls["set"].append((i, v))
    monkeypatch.setitem(__import__("sys").modules, "arcpy", arcpy)
    loader = importlib.machinery.SourceFileLoader("rs_change_pyt", str(ROOT / "arcgis" / "rs_change.pyt"))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader("rs_change_pyt", loader))
    loader.exec_module(mod)
    mod.calls = calls
    return mod


def _params(tool, **values):
    params = tool.getParameterInfo()
    for p in params:
        if p.name in values:
            p.value = values[p.name]
    return params


def test_toolbox_parameters(pyt):
    tb = pyt.Toolbox()
    assert tb.alias == "rschange" and [t.__name__ for t in tb.tools] == ["RunConfig", "WaterMask"]
    run = {p.name: (p.datatype, p.parameterType, p.direction) for p in pyt.RunConfig().getParameterInfo()}
    assert run == {"config": ("DEFile", "Required", "Input"), "output_dir": ("DEFolder", "Optional", "Input"),
                   "overwrite": ("GPBoolean", "Optional", "Input"), "summary": ("DEFile", "Optional", "Output")}
    wm = pyt.WaterMask().getParameterInfo()
    assert [p.name for p in wm] == ["input", "sensor", "k", "metric", "seed", "output", "water_km2"]
    by = {p.name: p for p in wm}
    assert (by["sensor"].value, by["k"].value, by["metric"].value, by["seed"].value) == ("naip", 3, "auto", 0)
    assert by["metric"].filter.type == "ValueList" and by["metric"].filter.list == ["auto", "euclidean", "manhattan", "chebyshev"]
    assert by["input"].datatype == "GPRasterLayer" and by["output"].direction == "Output"


def test_watermask_equals_the_api(pyt, tmp_path):
    import rs_change as rc

    tool = pyt.WaterMask()
    tool.execute(_params(tool, input=str(TILE), k=4, metric="manhattan", seed=7, output=str(tmp_path / "w.tif")), None)
    scene = rc.read_scene(str(TILE), "naip")
    mask = rc.label_water(scene, rc.fit_model(scene, k=4, metric="manhattan", seed=7))
    with rasterio.open(tmp_path / "w.tif") as ds:
        assert np.array_equal(ds.read(1), mask) and ds.nodata == 255
    assert pyt.calls["set"] == [(6, rc.water_area(mask, scene.transform, scene.crs) / 1e6)]
    assert pyt.calls["progress"][-1] == 3 and not pyt.calls["errors"]


def test_run_and_its_one_line_error(pyt, tmp_path):
    tool = pyt.RunConfig()
    tool.execute(_params(tool, config=str(CONFIGS / "naip_devils_lake.yaml"), output_dir=str(tmp_path / "out")), None)
    summary = tmp_path / "out" / "summary.json"
    assert pyt.calls["set"] == [(3, str(summary))]
    assert [d["water_pixels"] for d in json.loads(summary.read_text())["dates"]] == [84374, 170579]  # the README's table
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenes: []\nclustering: {k: 3, colour: blue}\n", encoding="utf-8")
    with pytest.raises(pyt.arcpy.ExecuteError):
        tool.execute(_params(tool, config=str(bad)), None)
    assert len(pyt.calls["errors"]) == 1 and "clustering.colour" in pyt.calls["errors"][0] and "\n" not in pyt.calls["errors"][0]
