"""Every output of the NAIP series (configs/naip_series.yaml, every vector format) loaded in a real
QGIS, headless, with its style: tests/qgis/check_outputs.py runs in the system Python that has PyQGIS
(Debian ``python3-qgis qgis-providers``) with QT_QPA_PLATFORM=offscreen; skipped where it is absent."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rs_change.change import CHANGE_CLASSES, CHANGE_COLORS, SERIES_CLASSES, SERIES_COLORS
from rs_change.export import WATER_CLASSES, WATER_COLORS, layer_classes

HERE = Path(__file__).parent
ROOT = HERE.parent
QGIS_PYTHON = os.environ.get("RS_CHANGE_QGIS_PYTHON", "/usr/bin/python3")


def _has_qgis() -> bool:
    if not Path(QGIS_PYTHON).exists():
        return False
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    try:
        return subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], env=env, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not _has_qgis(), reason=f"PyQGIS not importable by {QGIS_PYTHON} (apt install python3-qgis qgis-providers)")


def _hex(c) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c[:3])


@pytest.fixture(scope="module")
def qgis_view(tmp_path_factory):
    from rs_change.cli import main

    out = tmp_path_factory.mktemp("naip_series") / "out"
    assert main(["run", str(ROOT / "configs" / "naip_series.yaml"), "-o", str(out)]) == 0
    png = out.parent / "qgis_render.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)
    res = subprocess.run([QGIS_PYTHON, str(HERE / "qgis" / "check_outputs.py"), str(out), str(png)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    keep = os.environ.get("RS_CHANGE_QGIS_KEEP")  # a folder to keep the render in, to look at
    if keep:
        shutil.copy(png, Path(keep) / "qgis_render.png")
    return out, json.loads(res.stdout), png, res.stderr


def test_every_raster_loads_styled(qgis_view):
    out, view, _, _ = qgis_view
    tifs = sorted(p.name for p in out.glob("*.tif"))
    assert sorted(view["rasters"]) == tifs and "observations.tif" in tifs
    expected = {"water_": (WATER_CLASSES, WATER_COLORS), "change": (CHANGE_CLASSES, CHANGE_COLORS),
                "series_classes": (SERIES_CLASSES, SERIES_COLORS)}
    for name, r in view["rasters"].items():
        assert r["valid"] and r["crs"] == "EPSG:26914", name
        assert r["color_table_entries"] <= 16, name
        assert r["band_description"] != "Band 1", name
        if name in ("frequency.tif", "observations.tif") or name.startswith("water_fraction_"):  # ramps
            assert r["renderer"] == "singlebandpseudocolor" and r["color_table_entries"] == 0
            continue
        assert r["renderer"] == "paletted", name
        classes = {int(float(k)): v for k, v in r["classes"].items()}
        colors = {int(float(k)): v for k, v in r["colors"].items()}
        for prefix, (names, cols) in expected.items():
            if name.startswith(prefix):
                assert classes == names and colors == {k: _hex(c) for k, c in cols.items()}, name
        assert classes[255] == "unobserved"  # in every legend
        if name.startswith("clusters_"):
            k = len(classes) - 1
            assert r["color_table_entries"] == k and all(classes[i].startswith(f"cluster {i}") for i in range(k))
            assert sum(": water (" in v for v in classes.values()) >= 1
            rgb = [tuple(int(v[i:i + 2], 16) for i in (1, 3, 5)) for v in colors.values()]
            assert min(math.dist(a, b) for a, b in itertools.combinations(rgb, 2)) >= 60, name


def test_every_layer_loads_styled_with_dates(qgis_view):
    out, view, _, _ = qgis_view
    summary = json.loads((out / "summary.json").read_text())
    counts = {name: st["features"] for name, st in summary["polygons"]["layers"].items()}
    counts["waterbodies"] = summary["waterbodies"]["count"]  # written after the polygon layers
    assert view["gpkg_layers"] == [*counts, "layer_styles"]
    assert not any("-" in n for n in view["gpkg_layers"])
    seen = set()
    for key, v in view["vectors"].items():
        layer = key.split("|")[-1].split("/")[-1].rsplit(".", 1)[0] if "|" not in key else key.split("|")[1]
        seen.add((key.split("|")[0].split("/")[0], layer))
        assert v["valid"] and v["geometry_valid"], key
        assert v["features"] == counts[layer] > 0, key
        assert v["crs"] == ("EPSG:4326" if "geojson" in key else "EPSG:26914"), key
        date_type = "DateTime" if key.startswith("water.gdb") else "Date"  # the FileGDB's classic date type
        assert v["fields"]["date"] == date_type and (layer not in ("change", "waterbodies") or v["fields"]["from_date"] == date_type), key
        if key.startswith("water.gdb"):
            continue  # no style travels in a File Geodatabase
        assert v["renderer"] == "categorizedSymbol", key
        assert v["classes"] == {n: _hex(c) for n, c in layer_classes(layer).items()}, key
    assert len(seen) == 4 * len(counts)  # every layer in gpkg, shp, geojson and gdb


def test_render_shows_the_palette(qgis_view):
    """QGIS's own rendering of the change polygons over the first water mask: the palette's water
    blue, gained green and land are all on the map."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    out, view, png, stderr = qgis_view
    assert view["render_saved"] and "Error" not in stderr
    with warnings.catch_warnings():  # a PNG has no georeferencing
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(png) as ds:
            img = ds.read()[:3].reshape(3, -1).T
    colours = {tuple(c) for c in np.unique(img, axis=0)}
    for c in (WATER_COLORS[1], CHANGE_COLORS[2], WATER_COLORS[0]):
        assert tuple(c[:3]) in colours
    assert (out / "change.csv").exists() and (out / "observations.tif").exists()
