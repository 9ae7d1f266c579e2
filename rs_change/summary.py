"""``summary.json`` of a run, from pass 1's models and pass 2's sums.

:func:`build_run_summary` turns the per-date :data:`~rs_change.change.DATE_STATS` records, the
change classes and the series sums of :class:`~rs_change.blocks.BlockTotals` into a typed
:class:`RunSummary` (one :class:`DateSummary` per date; areas in km2 rounded to the m2), with the
grid, each date's model and the ``clustering`` and ``labelling`` sections of the config it was
made with; :meth:`RunSummary.to_dict` is what summary.json holds, key for key and in order
(:func:`build_summary` returns it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from ._version import __version__
from .area import planar_area_note, planar_area_ratio
from .blocks import CHANGE_CODES, BlockTotals
from .change import change_stats
from .fit import DateModel
from .grid import Grid
from .strips import mean_pixel_area, remember_mean_pixel_area

if TYPE_CHECKING:  # pragma: no cover
    from .config import ClusteringConfig, LabellingConfig

log = logging.getLogger(__name__)

CHANGE_NOTE = (
    "counts only pixels observed on both dates; net_percent is relative to the water of `from` on those pixels"
)
AREA_METHOD = "ground area per pixel from the grid (geodesic on the ellipsoid); see rs_change.area"


@dataclass
class DateSummary:
    """One date of summary.json (its ``dates`` list), in the file's key order.

    The optional parts (``masked_*`` of optical QA, a source's extra stats, ``composite``) are
    left out of :meth:`to_dict` when they are None; every other value is written, null or not.
    """

    date: str
    path: str
    water_km2: float
    water_pixels: int
    observed_km2: float
    observed_pixels: int
    unobserved_km2: float
    unobserved_pixels: int
    outside_aoi_km2: float
    water_percent_of_observed: Optional[float]
    overlap_fraction: Optional[float]
    k: int
    metric: str
    silhouette: Optional[float]
    model_selection: Any
    sample_pixels: Any
    features: Any
    clusters: list[dict[str, Any]]
    water_clusters: list[int]
    #: km2 masked by optical QA in all (each pixel once) and per reason (:mod:`rs_change.qa`)
    masked_total_km2: Optional[float] = None
    masked_km2: Optional[dict[str, float]] = None
    #: another source's own areas (e.g. ``modis_qa``): written as ``{extra_stats_name: {...}}``
    extra_stats_name: str = "extra_stats"
    extra_stats: Optional[dict[str, float]] = None
    #: a date of several scenes, composited per pixel (:mod:`rs_change.composite`)
    composite: Optional[dict[str, Any]] = None

    def to_dict(self) -> dict[str, Any]:
        """The date as summary.json writes it (QA areas right after ``unobserved_pixels``)."""
        d: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _DATE_OPTIONAL:
                continue
            d[f.name] = getattr(self, f.name)
            if f.name == "unobserved_pixels" and self.masked_km2 is not None:
                d["masked_total_km2"] = self.masked_total_km2
                d["masked_km2"] = self.masked_km2
        if self.extra_stats is not None:
            d[self.extra_stats_name] = self.extra_stats
        if self.composite is not None:
            d["composite"] = self.composite
        return d


_DATE_OPTIONAL = frozenset({"masked_total_km2", "masked_km2", "extra_stats_name", "extra_stats", "composite"})


@dataclass
class RunSummary:
    """summary.json of a run, in the file's key order: built by :func:`build_run_summary`,
    written as :meth:`to_dict` (``change``, ``transitions`` and ``series`` only when there are
    2+ dates / a series).
    """

    rs_change_version: str
    grid: dict[str, Any]
    area_method: str
    clustering: dict[str, Any]
    labelling: dict[str, Any]
    dates: list[DateSummary]
    change: Optional[dict[str, Any]] = None
    transitions: Optional[list[dict[str, Any]]] = None
    series: Optional[dict[str, Any]] = None

    def to_dict(self) -> dict[str, Any]:
        """The summary as summary.json writes it."""
        out: dict[str, Any] = {
            "rs_change_version": self.rs_change_version,
            "grid": self.grid,
            "area_method": self.area_method,
            "clustering": self.clustering,
            "labelling": self.labelling,
            "dates": [d.to_dict() for d in self.dates],
        }
        if self.change is not None:
            out["change"] = self.change
        if self.transitions is not None:
            out["transitions"] = self.transitions
        if self.series is not None:
            out["series"] = self.series
        return out


def build_summary(
    ref: Grid, models: Sequence[DateModel], totals: BlockTotals, overlaps: Mapping[str, float],
    clustering: "ClusteringConfig", labelling: "LabellingConfig",
) -> dict[str, Any]:
    """summary.json as a dict (numbers in km2, rounded to m2): :func:`build_run_summary`'s
    :meth:`RunSummary.to_dict`.
    """
    return build_run_summary(ref, models, totals, overlaps, clustering, labelling).to_dict()


def build_run_summary(
    ref: Grid, models: Sequence[DateModel], totals: BlockTotals, overlaps: Mapping[str, float],
    clustering: "ClusteringConfig", labelling: "LabellingConfig",
) -> RunSummary:
    """summary.json as a :class:`RunSummary` (numbers in km2, rounded to m2).

    Parameters
    ----------
    ref : Grid
        The reference grid.
    models : sequence of DateModel
        Pass 1's models, in date order.
    totals : BlockTotals
        Pass 2's sums.
    overlaps : mapping ISO date -> float
        Fraction of the reference grid each date covers.
    clustering, labelling : ClusteringConfig, LabellingConfig
        The config's sections, reported as they were run.
    """
    dates = [_date_summary(dm, st, ex, overlaps) for dm, st, ex in zip(models, totals.stats, totals.extra)]
    res = ref.res
    mean_m2 = _mean_area(ref, totals.stats)
    # planar_area_ratio: the pixel's area in the CRS's units over its ground area (2.0 for Web
    # Mercator at 45 N; None for degrees); a run whose GIS measurements would differ says so
    ratio = planar_area_ratio(ref.transform, ref.crs, mean_m2)
    note = planar_area_note(ref.crs.to_string(), ratio)
    if note:
        log.warning("%s", note)
    summary = RunSummary(
        rs_change_version=__version__,
        grid={**ref.to_dict(), "pixel_size": [res[0], res[1]], "crs_units": _units(ref),
              "mean_pixel_area_m2": round(mean_m2, 6),
              "planar_area_ratio": None if ratio is None else round(ratio, 4)},
        area_method=AREA_METHOD,
        clustering=clustering.model_dump(mode="json"),
        labelling=labelling.model_dump(mode="json", exclude_none=True),
        dates=dates,
    )
    if len(models) >= 2:
        cst = totals.change_stats
        c = {code: (cst[j, 0], cst[j, 1]) for j, code in enumerate(CHANGE_CODES)}
        summary.change = {
            "from": models[0].source.date.isoformat(),
            "to": models[-1].source.date.isoformat(),
            **change_stats(c),
            "note": CHANGE_NOTE,
        }
    if totals.series is not None:
        summary.transitions = totals.series.transitions()  # consecutive pairs; `change` stays first -> last
        summary.series = totals.series.series()
    return summary


def _date_summary(dm: DateModel, st: Any, ex: Mapping[str, float], overlaps: Mapping[str, float]) -> DateSummary:
    """One date's :class:`DateSummary` from its model, its DATE_STATS record (:mod:`rs_change.change`)
    and its source's extra sums.
    """
    wm2, om2 = st["water_m2"], st["observed_m2"]
    iso = dm.source.date.isoformat()
    d = DateSummary(
        date=iso,
        path=dm.source.label,
        water_km2=_km2(wm2),
        water_pixels=int(st["water_px"]),
        observed_km2=_km2(om2),
        observed_pixels=int(st["observed_px"]),
        unobserved_km2=_km2(st["unobserved_m2"]),
        unobserved_pixels=int(st["unobserved_px"]),
        outside_aoi_km2=_km2(st["outside_m2"]),
        water_percent_of_observed=round(100.0 * wm2 / om2, 4) if om2 else None,
        overlap_fraction=overlaps.get(iso),
        k=int(dm.kmeans.n_clusters),
        metric=dm.kmeans.metric,
        silhouette=None if dm.silhouette is None else round(dm.silhouette, 6),
        model_selection=dm.scores,
        sample_pixels=dm.sample_pixels,
        features=dm.names,
        clusters=[c.to_dict() for c in dm.decisions],
        water_clusters=dm.water_ids.tolist(),
    )
    name = dm.source.extra.get("stats_name", "extra_stats")
    if ex and name == "masked_km2":  # optical QA (rs_change.qa): km2 masked per reason, each pixel once
        d.masked_total_km2 = _km2(sum(ex.values()))
        d.masked_km2 = {k: _km2(v) for k, v in ex.items()}
    elif ex:  # e.g. modis_qa: MOD09's own land/water flag and QA flag areas beside water_km2
        d.extra_stats_name, d.extra_stats = name, {f"{k}_km2": _km2(v) for k, v in ex.items()}
    if dm.source.parts:
        d.composite = {"scenes": len(dm.source.parts), "files": [p.label for p in dm.source.parts],
                       "rule": "medoid of the clear observations"}
    return d


#: change.csv's columns, in order (docs/products.md)
CHANGE_CSV_FIELDS = ("period", "from", "to", "gained_km2", "lost_km2", "net_km2", "net_percent", "persistent_water_km2",
                     "persistent_land_km2", "unobserved_km2", "gained_pixels", "lost_pixels", "unobserved_pixels")


def change_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """change.csv: one row per consecutive pair of dates (``period`` = ``consecutive``, 3+ dates)
    and one for the first -> last date (``period`` = ``first_to_last``), with summary.json's
    change figures (km2 of ground, pixels).
    """
    trans = summary.get("transitions", [])
    pairs = [("consecutive", t) for t in trans] if len(trans) >= 2 else []  # two dates: the one pair is first -> last
    rows = []
    for period, rec in [*pairs, ("first_to_last", summary["change"])]:
        rows.append({k: (period if k == "period" else rec.get(k)) for k in CHANGE_CSV_FIELDS})
    return rows


def _km2(m2: float) -> float:
    return round(m2 / 1e6, 6)


def _mean_area(ref: Grid, stats: np.ndarray) -> float:
    """Mean pixel area of the grid: every pixel is counted once per date in pass 2, as observed,
    unobserved or outside the area of interest, so the first date's sums cover the whole grid.
    """
    if len(stats) and _whole_grid(stats[0], "px") == ref.height * ref.width:
        return remember_mean_pixel_area(ref, float(_whole_grid(stats[0], "m2")))
    return mean_pixel_area(ref)  # strip by strip (rs_change.strips)


def _whole_grid(st: Any, unit: str) -> Any:
    """Observed + unobserved + outside of one DATE_STATS record (``unit`` "px" or "m2"): every
    pixel of the grid (summed as one numpy reduction, as the figures have always been).
    """
    return np.sum([st[f"{kind}_{unit}"] for kind in ("observed", "unobserved", "outside")])


def _units(ref: Grid) -> str:
    try:
        return ref.crs.axis_info[0].unit_name
    except Exception:  # pragma: no cover
        return "unknown"
