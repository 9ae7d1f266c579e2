"""Cluster maps, the output edge of a fitted model: ``clusters_<date>.tif`` (a colour per cluster,
class names, the water decision in its metadata), its ``.png`` picture and styles, and
``model_<date>.json`` beside them.

Colours are categorical (water clusters take the blues, the others distinct non-blue hues), so
that clusters can be told apart in QGIS, in the PNG and in the report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

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


def cluster_colors(decisions: Sequence[ClusterDecision], calibrated: bool = False
                   ) -> dict[int, tuple[int, int, int, int]]:
    """Each cluster's colour (RGBA 0..255) in the cluster maps, their styles and the report; 255
    (unobserved) in the palette's unobserved grey.

    Categorical colours, not the clusters' mean colours (two clusters of a scene often have
    nearly the same mean colour): water clusters (``is_water``) take :data:`WATER_CLUSTER_COLORS`
    and the others :data:`OTHER_CLUSTER_COLORS`, each in cluster id order (cycling when a
    model has more clusters than colours). ``calibrated`` is accepted for the callers that
    pass it and does not change the colours.

    Examples
    --------
    >>> d = [ClusterDecision(0, 1, {"red": 30.0}, False, ""), ClusterDecision(1, 1, {"red": 9.0}, True, "")]
    >>> cluster_colors(d)[1], cluster_colors(d)[0]
    ((31, 120, 180, 255), (230, 160, 0, 255))
    """
    out: dict[int, tuple[int, int, int, int]] = {}
    n_water = n_other = 0
    for d in sorted(decisions, key=lambda d: d.id):
        if d.is_water:
            rgb = WATER_CLUSTER_COLORS[n_water % len(WATER_CLUSTER_COLORS)]
            n_water += 1
        else:
            rgb = OTHER_CLUSTER_COLORS[n_other % len(OTHER_CLUSTER_COLORS)]
            n_other += 1
        out[int(d.id)] = (*rgb, 255)
    out[255] = PALETTE["unobserved"]
    return out


def cluster_classes(decisions: Sequence[ClusterDecision]) -> dict[int, str]:
    """Class names for the cluster map: ``cluster 0 (water)``, ``cluster 1``, ... and unobserved;
    with each cluster's share of water pixels when known (``cluster 1 (12% water)``), so the map
    and the water mask tell one story."""
    out = {}
    for d in decisions:
        wf = d.stats.get("water_fraction")
        share = None
        if wf is not None:
            share = f"{100 * float(wf):.0f}% water" if float(wf) >= 0.01 or float(wf) == 0 else "<1% water"
        if d.is_water:
            out[d.id] = f"cluster {d.id} (water" + (f", {share})" if share else ")")
        else:
            out[d.id] = f"cluster {d.id}" + (f" ({share})" if share and float(wf) > 0 else "")
    out[255] = "unobserved"
    return out


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
    if model.per_pixel:
        lab = model.labeller
        nf = 0 if lab.fine is None else len(lab.fine.cluster_centers_)
        rule = lab.rule
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


def write_cluster_png(tif: str | Path, png: str | Path, colors: Mapping[int, tuple[int, int, int, int]],
                      max_size: int = 4096) -> Path:
    """The cluster map as a picture: ``clusters_<date>.tif`` as a palette PNG in ``colors``
    (:func:`cluster_colors`), decimated to ``max_size`` pixels on the long side (a picture to
    look at; 8192 took 2.4x as long on a NAIP quarter-quad).

    Unobserved pixels are transparent.  The PNG is a picture (as in the article's figures); the
    georeferenced map is the ``.tif``.  GDAL streams the raster into the PNG through a VRT that
    decimates it (nearest), so no array of the image is held in memory.
    """
    import html

    import rasterio
    import rasterio.shutil

    with rasterio.open(tif) as src:
        f = max(1.0, max(src.height, src.width) / max_size)
        oh, ow = max(1, int(round(src.height / f))), max(1, int(round(src.width / f)))
        h, w = src.height, src.width
    cmap = {**{i: (0, 0, 0, 255) for i in range(255)}, **{int(k): tuple(v) for k, v in colors.items()},
            255: (0, 0, 0, 0)}
    table = "".join(f'<Entry c1="{c[0]}" c2="{c[1]}" c3="{c[2]}" c4="{c[3]}"/>' for _, c in sorted(cmap.items()))
    vrt = (f'<VRTDataset rasterXSize="{ow}" rasterYSize="{oh}"><VRTRasterBand dataType="Byte" band="1">'
           f"<NoDataValue>255</NoDataValue><ColorInterp>Palette</ColorInterp><ColorTable>{table}</ColorTable>"
           f'<SimpleSource resampling="nearest">'
           f'<SourceFilename relativeToVRT="0">{html.escape(str(tif))}</SourceFilename>'
           f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
           f'<DstRect xOff="0" yOff="0" xSize="{ow}" ySize="{oh}"/></SimpleSource></VRTRasterBand></VRTDataset>')
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):  # no .aux.xml next to the PNG: the .tif is the georeferenced map
        rasterio.shutil.copy(vrt, str(png), driver="PNG")
    return Path(png)


def cluster_writer_kwargs(decisions: Sequence[ClusterDecision], water: Sequence[int], calibrated: bool, date: str,
                          model_file: str = "") -> dict[str, Any]:
    """Keyword arguments of :class:`~rs_change.export.BlockWriter` for ``clusters_<date>.tif``."""
    return {
        "nodata": 255,
        "colormap": cluster_colors(decisions, calibrated),
        "classes": cluster_classes(decisions),
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
            write_cluster_png(tif, png, wr.colormap or {})
        else:
            jobs.submit(wr.to_cog, tif)
            jobs.submit(write_cluster_png, wr.path, png, wr.colormap or {})
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
