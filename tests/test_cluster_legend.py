"""One legend for a cluster map (issue 29): ``clustermaps.cluster_legend`` gives the (value,
colour, label) entries, and ``clusters_<date>.png``, the report's clusters panel, the map's class
names and colour table and its ``.qml`` / ``.aux.xml`` all show that list."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.figure
import matplotlib.image
import numpy as np
import pytest
import rasterio
from affine import Affine

from rs_change import report
from rs_change.clustermaps import cluster_legend, cluster_writer_kwargs, write_cluster_png
from rs_change.config import RunConfig
from rs_change.export import write_cog
from rs_change.grid import Grid
from rs_change.model import ClusterDecision
from rs_change.pipeline import run
from rs_change.styles import write_styles

from .conftest import lake_scene, write_geotiff

T = Affine(10, 0, 500000, 0, -10, 5_200_000)
GREY = (175, 175, 175, 255)
#: a synthetic model: land with no water, a water cluster, land with a little water, and a cluster
#: whose share of water is unknown
DECISIONS = [
    ClusterDecision(0, 10, {"red": 90.0}, False, "", {"water_fraction": 0.0}),
    ClusterDecision(1, 10, {"red": 10.0}, True, "", {"water_fraction": 0.989}),
    ClusterDecision(2, 10, {"red": 60.0}, False, "", {"water_fraction": 0.004}),
    ClusterDecision(3, 10, {"red": 70.0}, False, ""),
]
EXPECTED = [
    (0, (230, 160, 0, 255), "cluster 0: land (0% water pixels)"),
    (1, (31, 120, 180, 255), "cluster 1: water (99% water pixels)"),
    (2, (60, 150, 40, 255), "cluster 2: land (<1% water pixels)"),
    (3, (200, 60, 140, 255), "cluster 3: land"),
    (255, GREY, "unobserved"),
]


@pytest.fixture
def legend_calls(monkeypatch):
    """The labels of every legend matplotlib draws on a Figure (the cluster PNG's legend)."""
    calls: list[list[str]] = []
    orig = matplotlib.figure.Figure.legend

    def spy(self, *a, **kw):
        calls.append([h.get_label() for h in kw.get("handles", [])])
        return orig(self, *a, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "legend", spy)
    return calls


def _qml_entries(path: Path) -> list[tuple[int, tuple[int, ...], str]]:
    out = []
    for e in ET.parse(path).iter("paletteEntry"):
        h = e.get("color")
        out.append((int(e.get("value")), (int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16), int(e.get("alpha"))),
                    e.get("label")))
    return out


def _rat_entries(path: Path) -> list[tuple[int, tuple[int, ...], str]]:
    rows = ET.parse(path).find(".//GDALRasterAttributeTable").findall("Row")
    return [(int(f[0].text), tuple(int(x.text) for x in f[2:6]), f[1].text) for f in (r.findall("F") for r in rows)]


def test_cluster_legend_entries():
    assert cluster_legend(DECISIONS) == EXPECTED
    # id order whatever the order of the decisions
    assert cluster_legend(DECISIONS[::-1]) == EXPECTED


def test_map_classes_and_styles_are_the_legend(tmp_path):
    kw = cluster_writer_kwargs(DECISIONS, [1], False, "2020-08-31")
    assert list(kw["classes"].items()) == [(v, n) for v, _, n in EXPECTED]
    assert list(kw["colormap"].items()) == [(v, c) for v, c, _ in EXPECTED]
    tif = tmp_path / "clusters_2020-08-31.tif"
    write_cog(tif, np.array([[0, 1], [2, 3]], np.uint8), Grid((2, 2), T, "EPSG:32614"), nodata=255,
              colormap=kw["colormap"], classes=kw["classes"])
    paths = {p.suffix: p for p in write_styles(tif, kw["classes"], kw["colormap"])}
    assert _qml_entries(paths[".qml"]) == EXPECTED
    assert _rat_entries(paths[".xml"]) == EXPECTED


def test_cluster_png_has_the_whole_legend_below_the_map(tmp_path, legend_calls):
    ids = np.zeros((60, 80), np.uint8)
    ids[:, 20:40], ids[:, 40:60], ids[:, 60:] = 1, 2, 3
    ids[:10, :] = 255  # unobserved
    tif = write_cog(tmp_path / "c.tif", ids, Grid(ids.shape, T, "EPSG:32614"), nodata=255)
    png = write_cluster_png(tif, tmp_path / "c.png", cluster_legend(DECISIONS))
    assert legend_calls == [[n for _, _, n in EXPECTED]]  # every entry, unobserved included, in order
    img = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(int)
    h, w = img.shape[:2]
    assert h > 60 + 40 and w >= 80  # a legend strip of several rows below the map
    x0 = (w - 80) // 2
    mapped = img[:60, x0:x0 + 80]
    colors = {v: c for v, c, _ in EXPECTED}
    for v in (0, 1, 2, 3, 255):  # one image pixel per map pixel, in the legend's colour (unobserved grey)
        assert (mapped[ids == v] == colors[v][:3]).all(), v
    strip = img[60:].reshape(-1, 3)
    for v, c, _ in EXPECTED:  # each entry's patch is drawn in the strip
        assert (np.abs(strip - np.array(c[:3])).max(axis=1) <= 1).sum() >= 20, v


def test_a_run_shows_one_legend_in_png_report_and_styles(tmp_path, monkeypatch):
    from rs_change import clustermaps

    pngs: dict[str, list] = {}
    orig_png = clustermaps.write_cluster_png

    def png_spy(tif, png, legend, *a, **kw):
        pngs[Path(png).name] = list(legend)
        return orig_png(tif, png, legend, *a, **kw)

    monkeypatch.setattr(clustermaps, "write_cluster_png", png_spy)
    panels: dict[str, list] = {}
    orig = report.map_figure

    def spy(ps, ref, path, slots=0):
        panels[Path(path).name] = list(ps)
        return orig(ps, ref, path, slots)

    monkeypatch.setattr(report, "map_figure", spy)
    p = write_geotiff(tmp_path / "s.tif", lake_scene(40, 40, (slice(10, 20), slice(10, 20)), seed=0), T, "EPSG:32614")
    cfg = RunConfig.from_dict({
        "scenes": [{"date": "2001-06-01", "path": str(p), "sensor": "naip"}],
        "clustering": {"k": 3, "seed": 0, "sample_size": 1000},
        "output": {"dir": str(tmp_path / "out"), "polygons": False},
        "compute": {"chunk_size": 64, "scheduler": "synchronous"},
    }, base_dir=tmp_path)
    run(cfg)
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())["dates"][0]
    decisions = [ClusterDecision(c["id"], c["pixels"], c["centroid"], c["is_water"], c["why"], c["stats"])
                 for c in summary["clusters"]]
    legend = cluster_legend(decisions)
    assert len(legend) == 4 and legend[-1] == (255, GREY, "unobserved")
    labels = [n for _, _, n in legend]
    assert pngs == {"clusters_2001-06-01.png": legend}
    assert _qml_entries(out / "clusters_2001-06-01.qml") == legend
    assert _rat_entries(out / "clusters_2001-06-01.tif.aux.xml") == legend
    with rasterio.open(out / "clusters_2001-06-01.tif") as ds:
        assert json.loads(ds.tags()["CLASSES"]) == {str(v): n for v, _, n in legend}
    panel = next(pl for pl in panels["quicklook_2001-06-01.png"] if pl.title.startswith("clusters"))
    assert list(panel.legend) == labels
    assert [tuple(round(x * 255) for x in c) for c in panel.legend.values()] == [c for _, c, _ in legend]
