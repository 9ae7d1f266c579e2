"""EDGE: figures and a self-contained HTML report of a run.

* ``timeseries.csv`` / ``timeseries.png``: water area per date;
* ``quicklook_<date>.png``: image, clusters, water and change since the previous date, side by
  side (decimated to about ``max_px`` pixels on the long side, so cheap for any scene);
* ``frequency.png`` / ``series_classes.png`` (3+ dates): the many-date rasters;
* ``report.html``: the summary numbers, every figure (embedded as data URIs, so the file is
  self-contained) and the config.

Everything is drawn with matplotlib's Agg backend; nothing here changes a number.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import defaults
from .names import (FREQUENCY_PNG, FREQUENCY_TIF, REPORT_HTML, SERIES_CLASSES_PNG, SERIES_CLASSES_TIF, TIMESERIES_CSV,
                    TIMESERIES_PNG, quicklook_png, water_tif)

log = logging.getLogger(__name__)

MAX_PX = 800

#: report.html sets ``data-images-loaded="<loaded>/<total>"`` on <body> once the page has loaded
#: (used by tests/test_report.py to check the page in headless Chromium)
_LOAD_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
});
</script>"""


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
    for xi, yi in zip(x, y):
        ax.annotate(f"{yi:.3f}", (xi, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=9)
    ax.set_ylabel("water area (km²)")
    ax.set_ylim(0, max(y + [0.0]) * 1.2 or 1.0)
    ax.set_title("Water area per date (pixels observed on that date)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def _stretch(bands: Mapping[str, np.ndarray], valid: np.ndarray) -> np.ndarray:
    """An RGB float image (h, w, 3) in 0..1: natural colour if red/green/blue exist, else false colour."""
    roles = [r for r in ("red", "green", "blue") if r in bands]
    if len(roles) < 3:
        roles = [r for r in ("nir", "red", "green") if r in bands] or list(bands)[:3]
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
    return rgb


def _palette_image(arr: np.ndarray, colors: Mapping[int, tuple[int, int, int, int]]) -> np.ndarray:
    out = np.ones(arr.shape + (4,), np.float32)
    for code, c in colors.items():
        out[arr == code] = np.array(c, np.float32) / 255.0
    out[..., 3] = np.where(out[..., 3] == 0, 1.0, out[..., 3])  # transparent -> white
    return out


def _read_dec(path: Path, shape: tuple[int, int]) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        return ds.read(1, out_shape=shape, resampling=Resampling.nearest)


def _read_image(dm: Any, ref: Any, shape: tuple[int, int], resampling: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A date's bands decimated to ``shape`` on the reference grid, as pass 1 samples them
    (:func:`rs_change.readers.decimated_read`): pass 1's own read when it has this shape."""
    from .readers import decimated_read

    pv = getattr(dm, "preview", None)
    if pv is not None and tuple(pv[0]) == tuple(shape):
        return pv[1], pv[2].copy()
    return decimated_read(dm.source, ref, shape, resampling)


def _legend(ax: Any, classes: Mapping[int, str], colors: Mapping[int, tuple[int, int, int, int]], skip: Sequence[int] = (255,)) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=np.array(colors[c]) / 255.0, edgecolor="0.5", label=n) for c, n in classes.items() if c not in skip]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8, frameon=False)


def quicklooks(models: Sequence[Any], ref: Any, water: Mapping[str, Path], folder: Path, resampling: str = defaults.RESAMPLING,
               max_px: int = MAX_PX) -> dict[str, Path]:
    """``quicklook_<date>.png`` per date: image | clusters | water | change since the previous date.

    Parameters
    ----------
    models : sequence of :class:`rs_change.fit.DateModel`
    ref : Grid
        Reference grid.
    water : mapping ISO date -> water mask GeoTIFF (the run's, read decimated with overviews)
    folder : Path
        Where the PNGs are written.
    resampling : str
        Resampling of the bands for the decimated read.
    max_px : int, default 800
        Long side of each panel in pixels.

    Returns
    -------
    dict name -> path
    """
    from .change import CHANGE_CLASSES, CHANGE_COLORS, change_map
    from .export import WATER_CLASSES, WATER_COLORS
    from .model import cluster_classes
    from .water import classify

    plt = _plt()
    shape = decimated_shape(ref.shape, max_px)
    out: dict[str, Path] = {}
    prev: Optional[np.ndarray] = None
    prev_date = ""
    cmap = plt.get_cmap("tab10")
    for dm in models:
        date = dm.source.date.isoformat()
        bands, valid = _read_image(dm, ref, shape, resampling)
        wmask = _read_dec(water[date], shape)
        valid &= wmask != 255
        clusters, _ = classify(dm, bands, valid)
        fig, axes = plt.subplots(1, 4, figsize=(18, 5.4))
        axes[0].imshow(_stretch(bands, valid), interpolation="nearest")
        axes[0].set_title(f"{date} image")
        k = int(dm.kmeans.n_clusters)
        ccol = {i: tuple(int(255 * v) for v in cmap(i % 10)) for i in range(k)}
        ccol[255] = (0, 0, 0, 0)
        cnames = {i: n for i, n in cluster_classes(dm.decisions).items() if i != 255}  # with each one's share of water
        axes[1].imshow(_palette_image(clusters, ccol), interpolation="nearest")
        axes[1].set_title(f"clusters (k={k})")
        _legend(axes[1], cnames, ccol)
        axes[2].imshow(_palette_image(wmask, WATER_COLORS), interpolation="nearest")
        axes[2].set_title("water")
        _legend(axes[2], WATER_CLASSES, WATER_COLORS)
        if prev is None:
            axes[3].text(0.5, 0.5, "first date:\nno change", ha="center", va="center", fontsize=12)
            axes[3].set_title("change")
        else:
            ch = change_map(prev, wmask)
            axes[3].imshow(_palette_image(ch, CHANGE_COLORS), interpolation="nearest")
            axes[3].set_title(f"change {prev_date} → {date}")
            _legend(axes[3], CHANGE_CLASSES, CHANGE_COLORS)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        name = quicklook_png(date)
        out[name] = _save(fig, Path(folder) / name)
        prev, prev_date = wmask, date
    return out


def series_pngs(ref: Any, rasters: Mapping[str, Path], folder: Path, max_px: int = MAX_PX) -> dict[str, Path]:
    """``frequency.png`` and ``series_classes.png`` from the run's rasters (3+ dates)."""
    from .change import SERIES_CLASSES, SERIES_COLORS
    from .styles import ramp_colormap

    plt = _plt()
    shape = decimated_shape(ref.shape, max_px)
    out: dict[str, Path] = {}
    if FREQUENCY_TIF in rasters:
        f = _read_dec(rasters[FREQUENCY_TIF], shape)
        fig, ax = plt.subplots(figsize=(8, 6.4))
        img = _palette_image(f, ramp_colormap())
        ax.imshow(img, interpolation="nearest")
        from matplotlib.colors import ListedColormap, Normalize

        cm = ListedColormap([np.array(c) / 255.0 for v, c in sorted(ramp_colormap().items()) if v <= 100])
        fig.colorbar(plt.cm.ScalarMappable(norm=Normalize(0, 100), cmap=cm), ax=ax, label="water frequency (% of observed dates)")
        ax.set_title("Water frequency")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        out[FREQUENCY_PNG] = _save(fig, Path(folder) / FREQUENCY_PNG)
    if SERIES_CLASSES_TIF in rasters:
        s = _read_dec(rasters[SERIES_CLASSES_TIF], shape)
        fig, ax = plt.subplots(figsize=(8, 7))
        ax.imshow(_palette_image(s, SERIES_COLORS), interpolation="nearest")
        ax.set_title("Series classes")
        _legend(ax, SERIES_CLASSES, SERIES_COLORS)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        out[SERIES_CLASSES_PNG] = _save(fig, Path(folder) / SERIES_CLASSES_PNG)
    return out


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
def _table(rows: Sequence[Mapping[str, Any]], keys: Optional[Sequence[str]] = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    keys = list(keys or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k)))}</td>" for k in keys) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"><figcaption>{html.escape(alt)}</figcaption></figure>'


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}img{max-width:100%}
figure{margin:1em 0}figcaption{color:#555;font-size:90%}pre{background:#f6f6f6;padding:1em;overflow:auto}"""


def _accuracy_parts(summary: Mapping[str, Any]) -> list[str]:
    """The error-adjusted areas ``rs-change assess`` put into the summary (change or a date), as tables."""
    found = [(f"change {c.get('from', '')} → {c.get('to', '')}", c["accuracy"]) for c in [summary.get("change") or {}]
             if isinstance(c.get("accuracy"), Mapping)]
    found += [(f"water {d.get('date', '')}", d["accuracy"]) for d in summary.get("dates", []) if isinstance(d.get("accuracy"), Mapping)]
    parts = []
    for title, a in found:
        conf = a.get("confidence")
        parts += [f"<h2>Error-adjusted areas, {html.escape(title)}</h2>",
                  f"<p>From {_fmt(a.get('points'))} labelled reference points (Olofsson et al. 2014; accuracy.json): overall "
                  f"accuracy {_fmt(a.get('overall_accuracy'))} ± {_fmt(a.get('overall_accuracy_ci'))}; ± is the half-width of the "
                  f"{_fmt(None if conf is None else round(100 * conf))}% confidence interval.</p>",
                  _table(a.get("classes", []))]
    return parts


def report_html(summary: Mapping[str, Any], config_yaml: str, figures: Mapping[str, Path], path: Path) -> Path:
    """Write the self-contained ``report.html`` (figures embedded as base64 PNG).

    Parameters
    ----------
    summary : dict
        summary.json's content.
    config_yaml : str
        The run's config.
    figures : mapping name -> PNG path
        Shown in order: timeseries, frequency, series classes, then the quicklooks.
    path : Path
        Output file.
    """
    dates = summary.get("dates", [])
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>rs-change report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>rs-change report</h1><p>{len(dates)} date(s), {html.escape(dates[0]['date'] if dates else '')}"
        f" – {html.escape(dates[-1]['date'] if dates else '')}; rs-change {html.escape(str(summary.get('rs_change_version', '')))};"
        f" grid {html.escape(str(summary.get('grid', {}).get('crs', '')))[:80]}.</p>",
        "<h2>Water per date</h2>",
        _table(dates, ["date", "water_km2", "observed_km2", "unobserved_km2", "water_percent_of_observed", "k", "metric",
                       "silhouette", "water_clusters"]),
    ]
    if "change" in summary:
        c = summary["change"]
        parts += [f"<h2>Change {html.escape(c['from'])} → {html.escape(c['to'])}</h2>",
                  _table([c], ["from", "to", "gained_km2", "lost_km2", "persistent_water_km2", "net_km2", "net_percent", "unobserved_km2"])]
    parts += _accuracy_parts(summary)
    if summary.get("transitions"):
        parts += ["<h2>Transitions between consecutive dates</h2>",
                  _table(summary["transitions"], ["from", "to", "gained_km2", "lost_km2", "persistent_water_km2", "net_km2", "net_percent", "unobserved_km2"])]
    if summary.get("series"):
        s = summary["series"]
        parts += ["<h2>Series classes (all dates)</h2>",
                  _table([{"class": k, "km2": v} for k, v in s.get("classes_km2", {}).items()]),
                  f"<p>Area-weighted mean water frequency: {_fmt(s.get('mean_frequency_percent'))} %.</p>"]
    if summary.get("polygons"):
        p = summary["polygons"]
        parts += [f"<h2>Polygons</h2><p>minimum area {_fmt(p.get('min_area_m2'))} m², simplification {_fmt(p.get('simplify_px'))} px, "
                  f"formats {html.escape(', '.join(p.get('formats', [])))}.</p>",
                  _table([{"layer": k, **v} for k, v in p.get("layers", {}).items()])]
    parts.append("<h2>Figures</h2>")
    first = {TIMESERIES_PNG: 0, FREQUENCY_PNG: 1, SERIES_CLASSES_PNG: 2}  # then the quicklooks
    order = sorted(figures, key=lambda n: (first.get(n, 3), n))
    for name in order:
        parts.append(_img(figures[name], name))
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_yaml)}</pre>",
              "<details><summary>summary.json</summary><pre>"
              + html.escape(json.dumps(summary, indent=1, ensure_ascii=False)) + "</pre></details>",
              _LOAD_SCRIPT, "</body></html>\n"]
    Path(path).write_text("\n".join(parts), encoding="utf-8")
    return Path(path)


def write_report(folder: Path, summary: Mapping[str, Any], config_yaml: str, models: Sequence[Any], ref: Any,
                 rasters: Mapping[str, Path], resampling: str = defaults.RESAMPLING, max_px: int = MAX_PX) -> dict[str, Path]:
    """All report outputs of a run into ``folder``; returns name -> path.

    ``rasters`` maps the run's output names (``water_<date>.tif``, ``frequency.tif``, ...) to the
    staged files.
    """
    files = report_figures(folder, summary, models, ref, rasters, resampling, max_px)
    files[REPORT_HTML] = report_page(folder, summary, config_yaml, files)
    return files


def report_figures(folder: Path, summary: Mapping[str, Any], models: Sequence[Any], ref: Any,
                   rasters: Mapping[str, Path], resampling: str = defaults.RESAMPLING, max_px: int = MAX_PX) -> dict[str, Path]:
    """``timeseries.csv`` and every figure of the report into ``folder``; returns name -> path.

    Needs only ``summary["dates"]`` (so it can run while the polygons are traced) and the
    rasters named in ``rasters`` (``water_<date>.tif``, ``frequency.tif``, ``series_classes.tif``;
    a block-written staging file holds the same pixels as the COG and will do).
    """
    from .export import write_csv

    files: dict[str, Path] = {}
    files[TIMESERIES_CSV] = write_csv(Path(folder) / TIMESERIES_CSV, timeseries_rows(summary))
    files[TIMESERIES_PNG] = timeseries_png(summary, Path(folder) / TIMESERIES_PNG)
    water = {dm.source.date.isoformat(): rasters[water_tif(dm.source.date.isoformat())] for dm in models}
    files.update(series_pngs(ref, rasters, Path(folder), max_px))
    files.update(quicklooks(models, ref, water, Path(folder), resampling, max_px))
    return files


def report_page(folder: Path, summary: Mapping[str, Any], config_yaml: str, figures: Mapping[str, Path]) -> Path:
    """``report.html`` in ``folder`` with the PNGs among ``figures`` (from :func:`report_figures`)."""
    figs = {n: p for n, p in figures.items() if n.endswith(".png")}
    return report_html(summary, config_yaml, figs, Path(folder) / REPORT_HTML)
