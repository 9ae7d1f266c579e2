"""EDGE: the figures of a run's report (matplotlib, Agg backend).

* ``timeseries.csv`` / ``timeseries.png``: water area per date;
* ``quicklook_<date>.png``: image, clusters (as ``clusters_<date>.tif`` shows them), water and
  change since the previous date (decimated to about ``max_px`` pixels on the long side, so cheap
  for any scene), laid out from the area's ground shape (:func:`panel_layout`, :func:`draw_maps`);
* ``frequency.png`` / ``series_classes.png`` / ``change.png`` (3+ dates): the many-date rasters
  and the change first -> last date;
* ``waterbodies.png``: the wet area per date of the waterbodies that changed most.

The page that shows them, ``report.html``, is written by :mod:`rs_change.report_page`.

Every map keeps the area's ground proportions and has its whole legend (every class of the
product, unobserved included); the image panel and the one-map figures have lon/lat ticks and a
scale bar in ground metres.  Everything is drawn with matplotlib's Agg backend, with no
timestamp in the PNGs (same run, same bytes); nothing here changes a number.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import defaults
from .names import (CHANGE_PNG, CHANGE_TIF, FREQUENCY_PNG, FREQUENCY_TIF, SERIES_CLASSES_PNG, SERIES_CLASSES_TIF,
                    TIMESERIES_CSV, TIMESERIES_PNG, clusters_tif, quicklook_png, water_tif)

log = logging.getLogger(__name__)

MAX_PX = 800

def decimated_shape(shape: tuple[int, int], max_px: int = MAX_PX) -> tuple[int, int]:
    """Shape of a read decimated by an integer step so the long side is at most ``max_px``.

    >>> decimated_shape((7240, 9340))
    (604, 779)
    """
    step = max(1, math.ceil(max(shape) / max_px))
    return math.ceil(shape[0] / step), math.ceil(shape[1] / step)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=100, metadata={"Software": None})
    _plt().close(fig)
    return Path(path)


def timeseries_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per date: date, water_km2, observed_km2, unobserved_km2, water_percent_of_observed."""
    keys = ("date", "water_km2", "observed_km2", "unobserved_km2", "water_percent_of_observed")
    return [{k: d.get(k) for k in keys} for d in summary["dates"]]


def timeseries_png(summary: Mapping[str, Any], path: Path) -> Path:
    """Water area per date (km2), with the observed area for context."""
    import datetime as dt

    plt = _plt()
    rows = timeseries_rows(summary)
    x = [dt.date.fromisoformat(r["date"]) for r in rows]
    y = [r["water_km2"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(x, y, "o-", color="#1f5fbf", label="water")
    nd = area_decimals(summary)
    for xi, yi in zip(x, y):
        ax.annotate(f"{yi:,.{nd}f}", (xi, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=9)
    ax.set_ylabel("water area (km²)")
    ax.set_ylim(0, max(y + [0.0]) * 1.2 or 1.0)
    ax.set_title("Water area per date (pixels observed on that date)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def waterbodies_png(table: Sequence[Mapping[str, Any]], most_changed: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The wet area per date of the waterbodies that changed most (``most_changed``: summary.json's
    ``waterbodies.most_changed``; ``table``: waterbodies.csv's rows).  A date on which too much of
    a waterbody was unobserved (``wet_pct`` empty) is drawn as a hollow marker, off the line.
    """
    import datetime as dt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4))
    colors = plt.get_cmap("tab10").colors
    rows_of: dict[str, list[Mapping[str, Any]]] = {}
    for r in table:
        rows_of.setdefault(str(r["uid"]), []).append(r)
    shown = [float(r["wet_m2"]) for wb in most_changed for r in rows_of.get(str(wb["uid"]), [])]
    # km² as the rest of the report, m² for ponds (a figure of 0.000 km² says nothing)
    scale, unit, fmt = (1e6, "km²", "{:+,.3f}") if max(shown, default=0.0) >= 1e5 else (1.0, "m²", "{:+,.0f}")
    for i, wb in enumerate(most_changed):
        rows = rows_of.get(str(wb["uid"]), [])
        c = colors[i % len(colors)]
        ok = [r for r in rows if r["wet_pct"] is not None]
        bad = [r for r in rows if r["wet_pct"] is None]
        change, pct = wb.get("change_m2"), wb.get("change_pct")
        label = f"#{wb['wb_id']} {wb['uid']}: " + (
            "first or last date unobserved" if change is None else
            fmt.format(change / scale) + f" {unit}" + (f" ({pct:+,.0f} %)" if pct is not None else ""))
        ax.plot([dt.date.fromisoformat(r["date"]) for r in ok], [r["wet_m2"] / scale for r in ok], "o-", color=c,
                label=label)
        if bad:
            ax.plot([dt.date.fromisoformat(r["date"]) for r in bad], [r["wet_m2"] / scale for r in bad], "o",
                    mfc="none", color=c)
    ax.set_ylabel(f"wet area ({unit})")
    ax.set_ylim(bottom=0)
    ax.set_title("Waterbodies that changed most: wet area per date")
    ax.grid(alpha=0.3)
    dates = sorted({str(r["date"]) for r in table})
    if 0 < len(dates) <= 12:  # the dates themselves as ticks
        ax.set_xticks([dt.date.fromisoformat(d) for d in dates], dates)
    if most_changed:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), title="wb_id uid: change first → last",
                  title_fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no waterbody with a change (see summary.json)", ha="center", va="center",
                transform=ax.transAxes)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def _stretch(bands: Mapping[str, np.ndarray], valid: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """An RGB float image (h, w, 3) in 0..1 and the band roles shown: natural colour if
    red/green/blue exist, else false colour.
    """
    roles = [r for r in ("red", "green", "blue") if r in bands]
    if len(roles) < 3:
        roles = [r for r in ("nir", "red", "green") if r in bands] or list(bands)[:3]
        if len(roles) < 3:
            roles = [r for r in ("nir", "green", "blue") if r in bands] or roles
    while len(roles) < 3:
        roles.append(roles[-1])
    rgb = np.zeros(valid.shape + (3,), np.float32)
    for i, r in enumerate(roles[:3]):
        b = np.asarray(bands[r], np.float32)
        v = b[valid & np.isfinite(b)]
        if v.size:
            lo, hi = np.percentile(v, (2, 98))
            rgb[..., i] = np.clip((b - lo) / ((hi - lo) or 1.0), 0, 1)
    rgb[~valid] = 1.0
    return rgb, roles[:3]


def _rgba(c: Sequence[int]) -> tuple[float, float, float, float]:
    """A colour table entry (0..255) as matplotlib RGBA; transparent (no data) is drawn white."""
    r, g, b, a = (list(c) + [255])[:4]
    return (1.0, 1.0, 1.0, 1.0) if a == 0 else (r / 255.0, g / 255.0, b / 255.0, a / 255.0)


def _palette_image(arr: np.ndarray, colors: Mapping[int, Sequence[int]]) -> np.ndarray:
    out = np.ones(arr.shape + (4,), np.float32)
    for code, c in colors.items():
        out[arr == code] = _rgba(c)
    return out


def _read_dec(path: Path, shape: tuple[int, int]) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        return ds.read(1, out_shape=shape, resampling=Resampling.nearest)


def _read_image(dm: Any, ref: Any, shape: tuple[int, int], resampling: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A date's bands decimated to ``shape`` on the reference grid, as pass 1 samples them
    (:func:`rs_change.readers.decimated_read`): pass 1's own read when it has this shape.
    """
    from .readers import decimated_read

    pv = getattr(dm, "preview", None)
    if pv is not None and tuple(pv[0]) == tuple(shape):
        return pv[1], pv[2].copy()
    return decimated_read(dm.source, ref, shape, resampling)


# ---------------------------------------------------------------------------------------------
# Map figures: panels laid out from the area's shape, legends, scale bar, lon/lat ticks
# ---------------------------------------------------------------------------------------------
#: Width / height the figures aim at (a report page or a screen); :func:`panel_layout` picks the
#: grid of panels whose figure comes closest to it.
TARGET_ASPECT = 1.6
_FIG_WIDTH = 10.0  # inches at most for the maps side by side (1000 px at 100 dpi)
_MAP_HEIGHT = 5.5  # inches at most for one map
_FONT = 8


@dataclass
class Panel:
    """One map of a figure: ``image`` (h, w, 3|4) floats drawn over the whole grid, a title, and
    either a legend (``legend``: label -> RGBA) or a colour ramp (``ramp``: RGBA list, label),
    ``coords`` for lon/lat ticks and a scale bar.
    """

    title: str
    image: np.ndarray
    legend: Optional[dict[str, tuple[float, float, float, float]]] = None
    ramp: Optional[tuple[list[tuple[float, float, float, float]], str]] = None
    coords: bool = False


def legend_entries(classes: Mapping[int, str],
                   colors: Mapping[int, Sequence[int]]) -> dict[str, tuple[float, float, float, float]]:
    """Every class of a product's vocabulary, in its order, unobserved included (label -> RGBA): a
    reader can read the map whatever classes a given area happens to contain.
    """
    return {str(name): _rgba(colors.get(code, (128, 128, 128, 255))) for code, name in classes.items()}


def panel_layout(n: int, aspect: float, target: float = TARGET_ASPECT) -> tuple[int, int]:
    """(rows, columns) for ``n`` maps of an area ``aspect`` = ground height / width: the grid whose
    figure (columns / (rows x aspect)) is closest to ``target`` in ratio, an empty cell costing
    as much as a factor 1.65 in that ratio.

    >>> panel_layout(4, 1.18), panel_layout(4, 3.0), panel_layout(4, 0.2)
    ((2, 2), (1, 4), (4, 1))
    """
    best = None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        if (rows - 1) * cols >= n:
            continue
        cost = abs(math.log(cols / (rows * aspect) / target)) + 0.5 * (rows * cols - n)
        if best is None or cost < best[0] - 1e-9:
            best = (cost, rows, cols)
    assert best is not None
    return best[1], best[2]


def _nice_length(metres: float) -> float:
    """The largest 1, 2 or 5 x 10^n metres not over ``metres``.

    >>> _nice_length(3700), _nice_length(0.9e5)
    (2000.0, 50000.0)
    """
    e = 10.0 ** math.floor(math.log10(metres))
    return max(m * e for m in (1.0, 2.0, 5.0) if m * e <= metres)


def _distance_label(m: float) -> str:
    return f"{m / 1000:g} km" if m >= 1000 else f"{m:g} m"


def _degree_label(v: float, step: float, pos: str, neg: str) -> str:
    """``v`` degrees with the decimals ``step`` needs and a hemisphere letter (``10.25°E``)."""
    nd = next((d for d in range(7) if abs(step * 10**d - round(step * 10**d)) < 1e-6 * 10**d), 6)
    return f"{abs(v):.{nd}f}°{pos if v >= 0 else neg}"


def lonlat_ticks(ref: Any, nbins: int = 4) -> tuple[tuple[list[float], list[str]], tuple[list[float], list[str]]]:
    """Longitude ticks along the bottom edge and latitude ticks along the left edge of the grid,
    as (positions in pixels of ``ref``, labels) each: where round WGS 84 degrees cross the edges
    (through pyproj, so any CRS); empty when an edge's degrees do not vary monotonically.
    """
    from matplotlib.ticker import MaxNLocator
    from pyproj import Transformer

    h, w = ref.shape
    t, tr = ref.transform, Transformer.from_crs(ref.crs, "EPSG:4326", always_xy=True)
    out: list[tuple[list[float], list[str]]] = []
    for along, n, axis in (("col", w, 0), ("row", h, 1)):
        p = np.linspace(0.0, n, 129)
        cols, rows = (p, np.full_like(p, h)) if along == "col" else (np.zeros_like(p), p)
        vals = np.asarray(tr.transform(t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f)[axis])
        d = np.diff(vals)
        if not np.all(np.isfinite(vals)) or not (np.all(d > 0) or np.all(d < 0)):
            out.append(([], []))
            continue
        if d[0] < 0:
            vals, p = vals[::-1], p[::-1]
        ticks = [v for v in MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(vals[0], vals[-1])
                 if vals[0] <= v <= vals[-1]]
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        labels = [_degree_label(v, step, "E", "W") if axis == 0 else _degree_label(v, step, "N", "S") for v in ticks]
        out.append(([float(x) for x in np.interp(ticks, vals, p)], labels))
    return out[0], out[1]


def _legend_size(fig: Any, entries: Mapping[str, Any], ncol: int) -> tuple[float, float]:
    """(width, height) in inches of a legend of ``entries`` in ``ncol`` columns."""
    leg = fig.legend(handles=_handles(entries), ncol=ncol, fontsize=_FONT, frameon=False)
    bb = leg.get_window_extent(fig.canvas.get_renderer())
    leg.remove()
    return bb.width / fig.dpi, bb.height / fig.dpi


def _handles(entries: Mapping[str, Any]) -> list[Any]:
    from matplotlib.patches import Patch

    return [Patch(facecolor=c, edgecolor="0.45", linewidth=0.6, label=n) for n, c in entries.items()]


def map_figure(panels: Sequence[Panel], ref: Any, path: Path, slots: int = 0) -> Path:
    """:func:`draw_maps` written as a PNG at ``path``."""
    return _save(draw_maps(panels, ref, slots), path)


def draw_maps(panels: Sequence[Panel], ref: Any, slots: int = 0) -> Any:
    """A matplotlib figure of ``panels`` (maps of the grid ``ref``) in the grid of
    :func:`panel_layout` for ``max(slots, len(panels))`` maps, each map with the area's ground
    proportions, its title above and its whole legend below (laid out in as many columns as fit
    under the map).  ``slots`` keeps the figures of a run alike (the first date's quicklook has no
    change map: it is laid out as the others, without an empty box).

    Sizes are computed, not left to ``tight_layout``, so no title or legend row is ever cut off.
    """
    from .area import ground_pixel_size

    plt = _plt()
    h, w = ref.shape
    mx, my = ground_pixel_size(ref.transform, ref.crs, ref.shape)
    aspect = (h * my) / (w * mx)
    rows, cols = panel_layout(max(slots, len(panels)), aspect)
    rows = math.ceil(len(panels) / cols)
    mw = min(_FIG_WIDTH / cols, _MAP_HEIGHT / aspect)
    mh = mw * aspect
    left, right, gap, title_h, ticks_h = 0.62, 0.15, 0.3, 0.32, 0.28
    fig = plt.figure(dpi=100)
    # legend of each panel: the most columns whose width fits under the map
    legends: list[tuple[int, float]] = []
    for p in panels:
        if p.legend:
            n = len(p.legend)
            fits = [(nc, *_legend_size(fig, p.legend, nc)) for nc in range(n, 0, -1)]
            nc, _, lh = next(((nc, lw, lh) for nc, lw, lh in fits if lw <= mw + 2 * right), fits[-1])
            legends.append((nc, lh))
        elif p.ramp:
            legends.append((0, 0.62))
        else:
            legends.append((0, 0.0))
    row_h = [title_h + mh + ticks_h + max([lh for _, lh in legends[r * cols:(r + 1) * cols]] + [0.0]) + 0.1
             for r in range(rows)]
    fw = cols * (left + mw + right) + (cols - 1) * gap
    fh = sum(row_h) + 0.05
    fig.set_size_inches(fw, fh)
    xt, yt = lonlat_ticks(ref) if any(p.coords for p in panels) else (([], []), ([], []))
    for i, (p, (nc, lh)) in enumerate(zip(panels, legends)):
        r, c = divmod(i, cols)
        x0 = c * (left + mw + right + gap) + left
        y0 = fh - sum(row_h[:r]) - title_h - mh  # bottom of the map, inches from the figure's bottom
        ax = fig.add_axes((x0 / fw, y0 / fh, mw / fw, mh / fh))
        ax.imshow(p.image, interpolation="nearest", extent=(0, w, h, 0), aspect="auto")
        ax.set_title(p.title, fontsize=9.5, pad=4)
        ax.set_xticks([])
        ax.set_yticks([])
        if p.coords:
            _coordinates(ax, xt, yt)
            ax.add_artist(_scale_bar(ax, w, mx))
        if p.legend:
            ax.legend(handles=_handles(p.legend), ncol=nc, fontsize=_FONT, frameon=False, loc="upper center",
                      bbox_to_anchor=(0.5, -ticks_h / mh), borderaxespad=0.0)
        elif p.ramp:
            _ramp_legend(fig, p.ramp, (x0 / fw, (y0 - ticks_h - 0.32) / fh, mw / fw, 0.14 / fh))
    return fig


def _coordinates(ax: Any, xt: tuple[list[float], list[str]], yt: tuple[list[float], list[str]]) -> None:
    ax.set_xticks(xt[0], xt[1], fontsize=7)
    ax.set_yticks(yt[0], yt[1], fontsize=7, rotation=90, va="center")
    ax.tick_params(length=3, pad=1.5)


def _scale_bar(ax: Any, width_px: int, m_per_px: float) -> Any:
    """A scale bar about a quarter of the map wide, in ground metres at the grid's centre (a bar
    in the map's pixel units over its label, on a white box in the lower left corner).
    """
    from matplotlib.offsetbox import AnchoredOffsetbox, AuxTransformBox, TextArea, VPacker
    from matplotlib.patches import Rectangle

    length = _nice_length(0.3 * width_px * m_per_px)
    bar = AuxTransformBox(ax.transData)
    bar.add_artist(Rectangle((0, 0), length / m_per_px, 0, facecolor="none", edgecolor="black", linewidth=1.5))
    label = TextArea(_distance_label(length), textprops={"size": _FONT})
    box = AnchoredOffsetbox("lower left", child=VPacker(children=[bar, label], align="center", pad=0, sep=3),
                            pad=0.35, borderpad=0.5, frameon=True)
    box.patch.set_facecolor((1, 1, 1, 0.8))
    box.patch.set_edgecolor("0.5")
    return box


def _ramp_legend(fig: Any, ramp: tuple[list[tuple[float, float, float, float]], str],
                 box: tuple[float, float, float, float]) -> None:
    from matplotlib.colors import ListedColormap, Normalize

    colors, label = ramp
    cax = fig.add_axes(box)
    cb = fig.colorbar(_plt().cm.ScalarMappable(norm=Normalize(0, 100), cmap=ListedColormap(colors)), cax=cax,
                      orientation="horizontal")
    cb.set_label(label, fontsize=_FONT)
    cb.ax.tick_params(labelsize=7)


def quicklooks(models: Sequence[Any], ref: Any, rasters: Mapping[str, Path], folder: Path,
               resampling: str = defaults.RESAMPLING, max_px: int = MAX_PX) -> dict[str, Path]:
    """``quicklook_<date>.png`` per date: image, clusters, water and (after the first date) the
    change since the previous date, laid out from the area's shape (:func:`map_figure`).

    Parameters
    ----------
    models : sequence of :class:`rs_change.fit.DateModel`
    ref : Grid
        Reference grid.
    rasters : mapping output name -> GeoTIFF
        The run's ``water_<date>.tif`` and ``clusters_<date>.tif`` (read decimated; a
        block-written staging file holds the same pixels and will do).
    folder : Path
        Where the PNGs are written.
    resampling : str
        Resampling of the bands for the decimated read.
    max_px : int, default 800
        Long side of each map in pixels.

    Returns
    -------
    dict name -> path
    """
    from .change import CHANGE_CLASSES, CHANGE_COLORS, change_map
    from .export import WATER_CLASSES, WATER_COLORS
    from .clustermaps import cluster_legend

    shape = decimated_shape(ref.shape, max_px)
    out: dict[str, Path] = {}
    prev: Optional[np.ndarray] = None
    prev_date = ""
    for dm in models:
        date = dm.source.date.isoformat()
        bands, valid = _read_image(dm, ref, shape, resampling)
        wmask = _read_dec(rasters[water_tif(date)], shape)
        valid &= wmask != 255
        rgb, roles = _stretch(bands, valid)
        # the legend of clusters_<date>.png and of the map's styles (.qml, .aux.xml): cluster_legend
        clusters = _read_dec(rasters[clusters_tif(date)], shape)
        centries = cluster_legend(dm.decisions)
        ccolors = {v: c for v, c, _ in centries}
        cnames = {v: name for v, _, name in centries}
        panels = [
            Panel(f"{date} image ({', '.join(roles)})", rgb, coords=True),
            Panel(f"clusters (k={int(dm.kmeans.n_clusters)})", _palette_image(clusters, ccolors),
                  legend_entries(cnames, ccolors)),
            Panel("water", _palette_image(wmask, WATER_COLORS), legend_entries(WATER_CLASSES, WATER_COLORS)),
        ]
        if prev is not None:
            panels.append(Panel(f"change {prev_date} → {date}", _palette_image(change_map(prev, wmask), CHANGE_COLORS),
                                legend_entries(CHANGE_CLASSES, CHANGE_COLORS)))
        name = quicklook_png(date)
        out[name] = map_figure(panels, ref, Path(folder) / name, slots=4 if len(models) > 1 else 3)
        prev, prev_date = wmask, date
    return out


def series_pngs(ref: Any, rasters: Mapping[str, Path], folder: Path, max_px: int = MAX_PX) -> dict[str, Path]:
    """``frequency.png``, ``series_classes.png`` and ``change.png`` (first -> last date) from the
    run's rasters (3+ dates), each one map with its legend, lon/lat ticks and scale bar.
    """
    from .change import CHANGE_CLASSES, CHANGE_COLORS, FREQUENCY_NODATA, SERIES_CLASSES, SERIES_COLORS
    from .styles import ramp_colormap

    shape = decimated_shape(ref.shape, max_px)
    out: dict[str, Path] = {}
    if FREQUENCY_TIF in rasters:
        f = _read_dec(rasters[FREQUENCY_TIF], shape)
        ramp = ramp_colormap()
        panel = Panel("Water frequency (% of the dates a pixel was observed on)", _palette_image(f, ramp),
                      ramp=([_rgba(c) for v, c in sorted(ramp.items()) if v != FREQUENCY_NODATA],
                            "water frequency (% of observed dates); white: never observed"), coords=True)
        out[FREQUENCY_PNG] = map_figure([panel], ref, Path(folder) / FREQUENCY_PNG)
    if SERIES_CLASSES_TIF in rasters:
        s = _read_dec(rasters[SERIES_CLASSES_TIF], shape)
        panel = Panel("Series classes (all dates)", _palette_image(s, SERIES_COLORS),
                      legend_entries(SERIES_CLASSES, SERIES_COLORS), coords=True)
        out[SERIES_CLASSES_PNG] = map_figure([panel], ref, Path(folder) / SERIES_CLASSES_PNG)
    if CHANGE_TIF in rasters and FREQUENCY_TIF in rasters:  # a series: the first -> last change of change.tif
        import rasterio

        with rasterio.open(rasters[CHANGE_TIF]) as ds:
            tags = ds.tags()
        ch = _read_dec(rasters[CHANGE_TIF], shape)
        panel = Panel(f"Change, first to last date ({tags.get('FROM', 'first')} → {tags.get('TO', 'last')})",
                      _palette_image(ch, CHANGE_COLORS), legend_entries(CHANGE_CLASSES, CHANGE_COLORS), coords=True)
        out[CHANGE_PNG] = map_figure([panel], ref, Path(folder) / CHANGE_PNG)
    return out


def area_decimals(summary: Mapping[str, Any]) -> int:
    """Decimals of every km² figure of the report: three significant digits for the smallest
    water area of a date, between 1 and 4 (22,570.9 and 2,097.6 km² for the Aral Sea; 2.07 km²
    for NAIP), so one table never mixes 20,091 with 13.1625.
    """
    water = [abs(float(d["water_km2"])) for d in summary.get("dates", []) if d.get("water_km2")]
    if not water:
        return 2
    return int(min(4, max(1, 2 - math.floor(math.log10(min(water))))))


def report_figures(folder: Path, summary: Mapping[str, Any], models: Sequence[Any], ref: Any,
                   rasters: Mapping[str, Path], resampling: str = defaults.RESAMPLING,
                   max_px: int = MAX_PX) -> dict[str, Path]:
    """``timeseries.csv`` and every figure of the report into ``folder``; returns name -> path.

    Needs only ``summary["dates"]`` (so it can run while the polygons are traced) and the
    rasters named in ``rasters`` (``water_<date>.tif``, ``frequency.tif``, ``series_classes.tif``;
    a block-written staging file holds the same pixels as the COG and will do).
    """
    from .export import write_csv

    files: dict[str, Path] = {}
    files[TIMESERIES_CSV] = write_csv(Path(folder) / TIMESERIES_CSV, timeseries_rows(summary))
    files[TIMESERIES_PNG] = timeseries_png(summary, Path(folder) / TIMESERIES_PNG)
    files.update(series_pngs(ref, rasters, Path(folder), max_px))
    files.update(quicklooks(models, ref, rasters, Path(folder), resampling, max_px))
    return files
