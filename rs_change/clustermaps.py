"""Cluster maps, the output edge of a fitted model: ``clusters_<date>.tif`` (a colour per cluster,
class names, the water decision in its metadata), its ``.png`` picture and styles, and
``model_<date>.json`` beside them.

Colours are categorical (water clusters take the blues, the others distinct non-blue hues), so
that clusters can be told apart in QGIS, in the PNG and in the report.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from .change import PALETTE
from .labelling import ClusterDecision
from .names import clusters_png, clusters_tif, model_json
from .styles import write_styles

if TYPE_CHECKING:  # pragma: no cover
    from .model import WaterModel


#: Cluster map colours: water clusters take the blues, the others distinct non-blue hues; every
#: two colours of the two lists are at least 70 RGB units apart (euclidean), and at least 60 from
#: the unobserved grey, so neighbouring clusters never look alike (tests/test_model.py).
WATER_CLUSTER_COLORS: tuple[tuple[int, int, int], ...] = ((31, 120, 180), (8, 48, 140), (120, 190, 235), (70, 70, 230))
OTHER_CLUSTER_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 160, 0), (60, 150, 40), (200, 60, 140), (140, 90, 40), (100, 100, 100), (160, 90, 200),
    (225, 110, 60), (180, 200, 60), (0, 170, 120), (240, 210, 150), (80, 40, 40), (250, 130, 190),
)


def cluster_legend(decisions: Sequence[ClusterDecision]) -> list[tuple[int, tuple[int, int, int, int], str]]:
    """The cluster map's legend, declared once: ``(value, RGBA 0..255, label)`` per cluster in id
    order, then ``(255, unobserved grey, "unobserved")``.

    Every picture and style of a cluster map takes its entries from here: the legend of
    ``clusters_<date>.png`` (:func:`write_cluster_png`), the clusters panel of the report's
    quicklooks (:func:`rs_change.report.quicklooks`), the class names and colour table of
    ``clusters_<date>.tif`` and its ``.qml`` / ``.aux.xml`` (:func:`cluster_writer_kwargs`).

    Colours are categorical, not the clusters' mean colours (two clusters of a scene often have
    nearly the same mean colour): water clusters (``is_water``) take :data:`WATER_CLUSTER_COLORS`
    and the others :data:`OTHER_CLUSTER_COLORS`, each in cluster id order (cycling when a model
    has more clusters than colours). A label says what the cluster is on the map (water or land)
    and, when known, the share of its sampled pixels that are water, the same figure as
    ``water_fraction`` in the map's metadata: ``cluster 1: water (99% water pixels)``,
    ``cluster 0: land (<1% water pixels)``, ``cluster 2: land (0% water pixels)``.

    Examples
    --------
    >>> d = [ClusterDecision(0, 1, {"red": 30.0}, False, "", {"water_fraction": 0.0}),
    ...      ClusterDecision(1, 1, {"red": 9.0}, True, "", {"water_fraction": 0.989})]
    >>> for e in cluster_legend(d): print(e)
    (0, (230, 160, 0, 255), 'cluster 0: land (0% water pixels)')
    (1, (31, 120, 180, 255), 'cluster 1: water (99% water pixels)')
    (255, (175, 175, 175, 255), 'unobserved')
    """
    out: list[tuple[int, tuple[int, int, int, int], str]] = []
    n_water = n_other = 0
    for d in sorted(decisions, key=lambda d: d.id):
        if d.is_water:
            rgb = WATER_CLUSTER_COLORS[n_water % len(WATER_CLUSTER_COLORS)]
            n_water += 1
        else:
            rgb = OTHER_CLUSTER_COLORS[n_other % len(OTHER_CLUSTER_COLORS)]
            n_other += 1
        label = f"cluster {int(d.id)}: {'water' if d.is_water else 'land'}"
        wf = d.stats.get("water_fraction")
        if wf is not None:
            wf = float(wf)
            share = "<1%" if 0 < wf < 0.01 else f"{100 * wf:.0f}%"
            label += f" ({share} water pixels)"
        out.append((int(d.id), (*rgb, 255), label))
    r, g, b, a = (int(v) for v in PALETTE["unobserved"])
    out.append((255, (r, g, b, a), "unobserved"))
    return out


def cluster_colors(decisions: Sequence[ClusterDecision], calibrated: bool = False
                   ) -> dict[int, tuple[int, int, int, int]]:
    """Each cluster's colour (RGBA 0..255) as ``{value: colour}``, 255 (unobserved) included:
    the colours of :func:`cluster_legend`. ``calibrated`` is accepted for the callers that pass
    it and does not change the colours.

    Examples
    --------
    >>> d = [ClusterDecision(0, 1, {"red": 30.0}, False, ""), ClusterDecision(1, 1, {"red": 9.0}, True, "")]
    >>> cluster_colors(d)[1], cluster_colors(d)[0]
    ((31, 120, 180, 255), (230, 160, 0, 255))
    """
    return {v: c for v, c, _ in cluster_legend(decisions)}


def cluster_classes(decisions: Sequence[ClusterDecision]) -> dict[int, str]:
    """Class names of the cluster map as ``{value: label}``, unobserved included: the labels of
    :func:`cluster_legend`.
    """
    return {v: name for v, _, name in cluster_legend(decisions)}


def cluster_tags(decisions: Sequence[ClusterDecision], water: Sequence[int], date: str = "",
                 model_file: str = "", model: Optional[WaterModel] = None) -> dict[str, Any]:
    """Dataset metadata of ``clusters_<date>.tif``: ids, water decisions and why.

    ``WATER_CLUSTERS`` are the clusters with at least half of their sampled pixels water; with
    ``model``, ``WATER_DECISION`` says how the water mask itself was decided (per pixel, see
    :func:`water_decision_tags`).
    """
    tags: dict[str, Any] = {
        "CLUSTER_IDS": [int(d.id) for d in decisions],
        "WATER_CLUSTERS": [int(i) for i in water],
        "CLUSTERS": [{"id": int(d.id), "is_water": bool(d.is_water), "why": d.why,
                      "water_fraction": (round(float(d.stats["water_fraction"]), 4)
                                         if "water_fraction" in d.stats else None),
                      "centroid": {k: round(float(v), 4) for k, v in d.centroid.items()}} for d in decisions],
    }
    if date:
        tags["DATE"] = date
    if model_file:
        tags["MODEL"] = model_file
    if model is not None:
        tags.update(water_decision_tags(model))
    return tags


def water_decision_tags(model: WaterModel) -> dict[str, Any]:
    """``WATER_DECISION`` (a sentence) and ``WATER_RULE`` (thresholds) for a cluster map's metadata.

    The water mask is not "the pixels of ``WATER_CLUSTERS``" when water is decided per pixel;
    these tags say what it is.
    """
    fitted = model.fitted_on or "the model's scene"
    lab = model.labeller
    rule = None if lab is None else lab.rule
    if model.per_pixel and lab is not None and rule is not None:  # a per-pixel decision always has its rule
        nf = 0 if lab.fine is None else len(lab.fine.cluster_centers_)
        if nf:
            how = (f"its fine group (of {nf}) is water or carried by a water cluster "
                   f"({[int(i) for i in lab.fine_water]}) and "
                   f"the pixel is at least half water by unmixing {rule.index.upper()} and {rule.dark.upper()}, "
                   "or its fine "
                   f"group is dark ({[int(i) for i in lab.fine_dark]}) and the pixel shows water's own signature")
        else:
            how = "the pixel shows water's own signature"
        out: dict[str, Any] = {
            "WATER_DECISION": (
                f"per pixel: a pixel is water when {how} (tests fitted on {fitted}: {rule.why}); "
                "WATER_CLUSTERS are the clusters with at least 50% of their sampled pixels water, "
                "and each cluster's water_fraction says how much"
            ),
            "WATER_RULE": {**rule.to_dict(), "fitted_on": fitted},
        }
        return out
    if model.labeller is not None and model.labeller.manual is not None:
        return {"WATER_DECISION": "by cluster: the water mask is the pixels of the clusters named by hand "
                                  "(WATER_CLUSTERS)"}
    return {"WATER_DECISION": "by cluster: the water mask is the pixels of WATER_CLUSTERS"}



def _rgba01(c: Sequence[int]) -> tuple[float, float, float, float]:
    """An 8-bit RGB or RGBA colour as matplotlib's 0-1 RGBA (opaque when it has no alpha)."""
    r, g, b, a = (list(c) + [255])[:4]
    return (r / 255.0, g / 255.0, b / 255.0, a / 255.0)

def _legend_strip(legend: Sequence[tuple[int, Sequence[int], str]], width: int, font_px: float) -> np.ndarray:
    """The legend drawn as an RGB image ``width`` pixels wide: every entry in ``legend``'s order, in
    as many columns as fit, on white.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    dpi = 100.0
    longest = max((len(name) for _, _, name in legend), default=1)
    entry_px = font_px * (0.62 * longest + 5.0)  # patch, gap, text and column spacing, in DejaVu Sans
    ncol = max(1, min(len(legend), int(width // entry_px)))
    rows = -(-len(legend) // ncol)
    height = int(math.ceil(font_px * (1.7 * rows + 1.2)))
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    # patches without anti-aliasing: their pixels are the legend's colours exactly (one palette entry each)
    handles = [Patch(facecolor=_rgba01(c), edgecolor="0.45", linewidth=0.6, label=name, antialiased=False)
               for _, c, name in legend]
    with matplotlib.rc_context({"legend.handleheight": 0.9, "legend.handlelength": 1.6}):
        fig.legend(handles=handles, ncol=ncol, fontsize=font_px * 72.0 / dpi, frameon=False, loc="center")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_cluster_png(tif: str | Path, png: str | Path,
                      legend: Sequence[tuple[int, Sequence[int], str]], max_size: int = 4096) -> Path:
    """The cluster map as a picture with its legend: ``clusters_<date>.tif`` decimated (nearest)
    to ``max_size`` pixels on the long side, one image pixel per map pixel, each value in its
    colour of ``legend`` (:func:`cluster_legend`; unobserved in its grey, as QGIS and the report
    draw it; values without an entry black), and below the map every legend entry, unobserved
    included, in a font that grows with the picture so that it stays readable when the picture is
    shown whole.

    The PNG is a picture (as in the article's figures); the georeferenced map is the ``.tif``.
    It is a paletted PNG: the map is read once, decimated, and its values are the palette's
    indices, so the picture costs one byte a pixel to hold and to compress (a third of RGB).
    """
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(tif) as src:
        f = max(1.0, max(src.height, src.width) / max_size)
        oh, ow = max(1, int(round(src.height / f))), max(1, int(round(src.width / f)))
        ids = src.read(1, out_shape=(oh, ow), resampling=Resampling.nearest)
    font_px = max(12.0, ow / 64.0)  # about 15 px on a 934 px map, 64 px on a 4096 px one
    width = max(ow, int(24 * font_px))  # a small map gets a wider page, so the legend fits
    strip = _legend_strip(legend, width, font_px)
    palette, strip_idx, white, black = _png_palette(legend, strip)
    index = np.full(256, black, np.uint8)  # map value -> palette index: its own, or black
    for v, _, _ in legend:
        index[int(v)] = int(v)
    page = np.full((oh + strip.shape[0], width), white, np.uint8)
    x0 = (width - ow) // 2
    page[:oh, x0:x0 + ow] = index[ids]
    page[oh:] = strip_idx
    with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):  # no .aux.xml: the .tif is the map
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a picture: no georeferencing
        with rasterio.open(png, "w", driver="PNG", width=width, height=page.shape[0], count=1, dtype="uint8") as dst:
            dst.write(page, 1)
            dst.write_colormap(1, {i: (*c, 255) for i, c in enumerate(palette)})
    return Path(png)


def _png_palette(legend: Sequence[tuple[int, Sequence[int], str]], strip: np.ndarray
                 ) -> tuple[list[tuple[int, int, int]], np.ndarray, int, int]:
    """The 256 colours of :func:`write_cluster_png`'s picture and the legend strip in them.

    Each legend value keeps its own index (the map is written as it is); the free indices hold
    white, black, then the strip's most frequent other colours (its text's greys).  A strip colour
    left without an index (rare shades of the text's edges) takes the nearest one.  Returns the
    palette, the strip as indices, and the indices of white and black.
    """
    palette: list[Optional[tuple[int, int, int]]] = [None] * 256
    for v, c, _ in legend:
        palette[int(v)] = (int(c[0]), int(c[1]), int(c[2]))
    free = [i for i in range(256) if palette[i] is None]
    if len(free) < 2:
        raise ValueError(f"a cluster picture holds at most 254 legend entries, not {len(legend)}")
    white, black = free[0], free[1]
    palette[white], palette[black] = (255, 255, 255), (0, 0, 0)
    px = strip.reshape(-1, 3).astype(np.int32)
    keys, inverse, counts = np.unique(px[:, 0] << 16 | px[:, 1] << 8 | px[:, 2], return_inverse=True,
                                      return_counts=True)  # one number per colour: a 1-d sort
    colours = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1)
    known = {c: i for i, c in enumerate(palette) if c is not None}
    extra = [tuple(int(x) for x in colours[j]) for j in np.argsort(-counts, kind="stable")]
    for i, c in zip(free[2:], [c for c in extra if c not in known]):
        palette[i] = c  # type: ignore[assignment]
    filled = [(i, c) for i, c in enumerate(palette) if c is not None]
    table = np.array([c for _, c in filled], np.int32)
    nearest = ((colours[:, None, :] - table[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)  # exact where listed
    strip_idx = np.array([i for i, _ in filled], np.uint8)[nearest][inverse.ravel()].reshape(strip.shape[:2])
    return [c or (0, 0, 0) for c in palette], strip_idx, white, black


def cluster_writer_kwargs(decisions: Sequence[ClusterDecision], water: Sequence[int], calibrated: bool, date: str,
                          model_file: str = "") -> dict[str, Any]:
    """Keyword arguments of :class:`~rs_change.export.BlockWriter` for ``clusters_<date>.tif``."""
    legend = cluster_legend(decisions)  # one list for the colour table, the class names and the styles
    return {
        "nodata": 255,
        "colormap": {v: c for v, c, _ in legend},
        "classes": {v: name for v, _, name in legend},
        "tags": cluster_tags(decisions, water, date, model_file),
        "description": "cluster id (k-means), 255 = unobserved",
    }


def stage_cluster_outputs(tmp: Path, models: Sequence[Any], writers: Sequence[Any], jobs: Any = None
                          ) -> dict[str, Path]:
    """Turn the pipeline's cluster BlockWriters into ``clusters_<date>.tif`` (COG) and ``.png``, and
    write ``model_<date>.json``; all inside the staging folder ``tmp``.  Returns name -> path.

    With ``jobs`` (:class:`rs_change.outputs.WriteJobs`) each date's COG and PNG are written by a
    job (the files exist once ``jobs.wait()`` returns); the PNG is drawn from the block-written
    staging file, which holds the same pixels as the COG.
    """
    staged: dict[str, Path] = {}
    for dm, wr in zip(models, writers):
        d = dm.source.date.isoformat()
        wm = getattr(dm, "water_model", None)
        if wm is not None and not wr.ds.closed:  # how the water mask was decided (per pixel, not per cluster)
            tags = water_decision_tags(wm)
            wr.ds.update_tags(**{k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()})
        wr.close()
        tif, png = Path(tmp) / clusters_tif(d), Path(tmp) / clusters_png(d)
        if jobs is None:
            wr.to_cog(tif)
            write_cluster_png(tif, png, cluster_legend(dm.decisions))
        else:
            jobs.submit(wr.to_cog, tif)
            jobs.submit(write_cluster_png, wr.path, png, cluster_legend(dm.decisions))
        staged[tif.name] = tif
        staged[png.name] = png
        for p in write_styles(tif, wr.classes, wr.colormap):  # .qml and .aux.xml: colours and class names
            staged[p.name] = p
    for dm in models:
        wm = getattr(dm, "water_model", None)
        if wm is not None:
            d = dm.source.date.isoformat()
            p = wm.save(Path(tmp) / model_json(d))
            staged[p.name] = p
    return staged
