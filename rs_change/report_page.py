"""EDGE: the self-contained HTML report of a run, ``report.html``.

Where the area is (corners in lon/lat, and a warning when the CRS's planar areas are not ground
areas), the summary numbers under plain headers with units and one rounding, every figure of
:mod:`rs_change.report` (embedded as data URIs, so the file is self-contained) and the config.
Nothing here changes a number.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from .names import (CHANGE_PNG, FREQUENCY_PNG, REPORT_HTML, SERIES_CLASSES_PNG, TIMESERIES_PNG, WATERBODIES_PNG,
                    quicklook_png)
from .report import _degree_label, area_decimals

#: report.html sets ``data-images-loaded="<loaded>/<total>"`` and ``data-page-width="<page
#: width>/<window width>"`` on <body> once the page has loaded (used by tests/test_report.py to
#: check the page in headless Chromium: every figure shown, nothing wider than the window)
_LOAD_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
  document.body.setAttribute('data-page-width', document.documentElement.scrollWidth + '/' + window.innerWidth);
});
</script>"""



#: How a table column is written (:func:`_fmt`): ``km2`` with the report's one number of
#: decimals (:func:`area_decimals`), ``pct`` 1 decimal, ``ratio`` 3, ``int`` / ``m2`` whole.
Kind = Literal["text", "km2", "pct", "ratio", "int", "m2"]
_CHANGE_COLUMNS: list[tuple[str, str, Kind]] = [
    ("gained_km2", "Water gained (km²)", "km2"),
    ("lost_km2", "Water lost (km²)", "km2"),
    ("persistent_water_km2", "Water on both dates (km²)", "km2"),
    ("net_km2", "Net change (km²)", "km2"),
    ("net_percent", "Net change (% of the first date's water)", "pct"),
    ("unobserved_km2", "Not observed on both dates (km²)", "km2"),
]
_DATE_COLUMNS: list[tuple[str, str, Kind]] = [
    ("date", "Date", "text"),
    ("water_km2", "Water (km²)", "km2"),
    ("observed_km2", "Observed (km²)", "km2"),
    ("unobserved_km2", "Not observed (km²)", "km2"),
    ("water_percent_of_observed", "Water (% of observed)", "pct"),
    ("k", "Clusters", "int"),
    ("metric", "Distance", "text"),
    ("silhouette", "Silhouette (−1 to 1)", "ratio"),
    ("water_clusters", "Water cluster ids", "text"),
]


def _date_columns(dates: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, Kind]]:
    """:data:`_DATE_COLUMNS`, with the area a QA layer masked after "Not observed" when a date has one."""
    if not any("masked_total_km2" in d for d in dates):
        return _DATE_COLUMNS
    i = [c[0] for c in _DATE_COLUMNS].index("unobserved_km2") + 1
    return [*_DATE_COLUMNS[:i], ("masked_total_km2", "Of which masked by QA: cloud, shadow, snow ... (km²)", "km2"),
            *_DATE_COLUMNS[i:]]


_POLYGON_COLUMNS: list[tuple[str, str, Kind]] = [
    ("layer", "Layer", "text"),
    ("features", "Polygons", "int"),
    ("area_km2", "Polygon area (km²)", "km2"),
    ("removed_features", "Polygons under the minimum area", "int"),
    ("removed_km2", "Their area (km²)", "km2"),
    ("raster_km2", "Raster's water area (km²)", "km2"),
]
_ACCURACY_COLUMNS: list[tuple[str, str, Kind]] = [
    ("class", "Class", "text"),
    ("map_km2", "Mapped area (km²)", "km2"),
    ("samples", "Reference points", "int"),
    ("area_km2", "Error-adjusted area (km²)", "km2"),
    ("area_km2_ci", "± (km²)", "km2"),
    ("users_accuracy", "User's accuracy (0 to 1)", "ratio"),
    ("users_accuracy_ci", "±", "ratio"),
    ("producers_accuracy", "Producer's accuracy (0 to 1)", "ratio"),
    ("producers_accuracy_ci", "±", "ratio"),
]


def _fmt(v: Any, kind: Kind = "text", decimals: int = 2) -> str:
    """A value as the report writes it: ``km2`` with ``decimals`` (a non-zero area that would round
    to zero is written ``< 0.01``), ``pct`` with 1 decimal, ``ratio`` with 3, ``int`` and ``m2``
    whole, with thousands separators.
    """
    if v is None:
        return "–"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    if kind == "text" or isinstance(v, str) or isinstance(v, bool):
        return str(v)
    v = float(v)
    if kind == "km2":
        if v != 0 and abs(v) < 0.5 * 10.0 ** -decimals:
            return f"< {10.0 ** -decimals:.{decimals}f}"
        return f"{v:,.{decimals}f}"
    if kind == "pct":
        return f"{v:,.1f}"
    if kind == "ratio":
        return f"{v:.3f}"
    return f"{v:,.0f}"  # int, m2


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, Kind]], decimals: int) -> str:
    """An HTML table of ``rows`` with ``columns`` (key, plain header with its unit, kind)."""
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k), kind, decimals))}</td>" for k, _, kind in columns)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name = Path(path).name
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)} "
            f"<span class=\"file\">({html.escape(name)})</span></figcaption></figure>")


_CSS = ("""body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0;vertical-align:bottom;max-width:11em}td:first-child,th:first-child{text-align:left}
td{font-variant-numeric:tabular-nums;white-space:nowrap}img{max-width:100%}p.note{color:#555;font-size:90%}
.warning{border-left:5px solid #d98c00;background:#fff6e0;padding:0.6em 1em;margin:1em 0}
figure{margin:1em 0}figcaption{color:#555;font-size:90%}.file{color:#999}"""
        "pre{background:#f6f6f6;padding:1em;overflow:auto}")


def _accuracy_parts(summary: Mapping[str, Any], decimals: int) -> list[str]:
    """The error-adjusted areas ``rs-change assess`` put into the summary (change or a date), as tables."""
    found = [(f"change {c.get('from', '')} → {c.get('to', '')}", c["accuracy"]) for c in [summary.get("change") or {}]
             if isinstance(c.get("accuracy"), Mapping)]
    found += [(f"water {d.get('date', '')}", d["accuracy"]) for d in summary.get("dates", [])
              if isinstance(d.get("accuracy"), Mapping)]
    parts = []
    for title, a in found:
        conf = a.get("confidence")
        parts += [f"<h2>Error-adjusted areas, {html.escape(title)}</h2>",
                  f"<p>From {_fmt(a.get('points'), 'int')} labelled reference points "
                  "(Olofsson et al. 2014; accuracy.json): "
                  f"overall accuracy {_fmt(a.get('overall_accuracy'), 'ratio')} "
                  f"± {_fmt(a.get('overall_accuracy_ci'), 'ratio')}; "
                  f"± is the half-width of the {_fmt(None if conf is None else 100 * conf, 'int')}% "
                  "confidence interval.</p>",
                  _table(a.get("classes", []), _ACCURACY_COLUMNS, decimals)]
    return parts


_WATERBODY_COLUMNS: list[tuple[str, str, Kind]] = [
    ("wb_id", "Rank by extent", "int"), ("uid", "Id (uid)", "text"), ("area_km2", "Extent (km²)", "km2"),
    ("first_km2", "Wet, first date (km²)", "km2"), ("last_km2", "Wet, last date (km²)", "km2"),
    ("change_km2", "Change (km²)", "km2"), ("change_pct", "Change (%)", "pct")]


def _waterbody_parts(summary: Mapping[str, Any], decimals: int) -> list[str]:
    """The waterbodies section: how many, with which thresholds, and those that changed most."""
    wb = summary.get("waterbodies")
    if not isinstance(wb, Mapping):
        return []
    rows = [{"wb_id": r["wb_id"], "uid": r["uid"], "area_km2": r["area_m2"] / 1e6, "first_km2": r["wet_first_m2"] / 1e6,
             "last_km2": r["wet_last_m2"] / 1e6,
             "change_km2": (r["change_m2"] / 1e6 if r["change_m2"] is not None else None),
             "change_pct": r["change_pct"]} for r in wb.get("most_changed", [])]
    return [f"<h2>Waterbodies</h2><p>{wb.get('count', 0):,} waterbodies "
            f"({_fmt(wb.get('extent_km2'), 'km2', decimals)} km² of "
            f"extent): regions of pixels that were water on at least {_fmt(100 * wb.get('extent_share', 0), 'pct')} % "
            "of the dates they were observed on, each with a core of pixels water on at least "
            f"{_fmt(100 * wb.get('core_share', 0), 'pct')} % "
            f"of at least {wb.get('min_observations')} observed dates, "
            f"and at least {_fmt(wb.get('min_area_m2'), 'm2')} m². "
            "Every date's wet area per waterbody is in waterbodies.csv, the polygons in the waterbodies layer. "
            "The waterbodies whose wet area changed most from the first to the last date:</p>",
            _table(rows, _WATERBODY_COLUMNS, decimals),
            f"<p class=\"note\">A change is left out where more than {_fmt(wb.get('max_invalid_pct'), 'pct')} % of the "
            "waterbody was unobserved on the first or the last date.</p>"]


def _where(grid: Mapping[str, Any]) -> list[str]:
    """Where the area is: the grid in plain words, its corners in longitude / latitude (WGS 84)
    and, when the CRS's planar areas are not ground areas, the warning (:func:`planar_area_note`).
    """
    from affine import Affine
    from pyproj import Transformer

    from .area import ground_pixel_size, planar_area_note, planar_area_ratio

    if not grid.get("transform") or not grid.get("crs"):
        return []
    t, (h, w), crs = Affine(*grid["transform"][:6]), grid["shape"], grid["crs"]
    mx, my = ground_pixel_size(t, crs, (h, w))
    px = grid.get("pixel_size") or [abs(t.a), abs(t.e)]
    units = grid.get("crs_units", "")
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    corners = [("north-west", 0, 0), ("north-east", w, 0), ("south-west", 0, h), ("south-east", w, h),
               ("centre", w / 2, h / 2)]
    rows = []
    for name, c, r in corners:
        lon, lat = tr.transform(*(t * (c, r)))
        rows.append({"corner": name, "lon": _degree_label(lon, 1e-4, "E", "W"),
                     "lat": _degree_label(lat, 1e-4, "N", "S")})
    parts = [
        "<h2>Area covered</h2>",
        f"<p>Grid: {html.escape(str(crs)[:80])}, {h:,} rows × {w:,} columns of {px[0]:.6g} × {px[1]:.6g} "
        f"{html.escape(str(units))}; on the ground a pixel is {mx:,.1f} m × {my:,.1f} m "
        f"at the centre and {_fmt(grid.get('mean_pixel_area_m2'), 'm2')} m² on average. "
        "The maps below are drawn north up, with "
        f"longitude / latitude ticks (WGS 84) and a scale bar of ground distance at the map's centre.</p>",
        _table(rows, [("corner", "Corner", "text"), ("lon", "Longitude", "text"), ("lat", "Latitude", "text")], 0),
    ]
    ratio = grid.get("planar_area_ratio")
    if ratio is None and grid.get("mean_pixel_area_m2"):
        ratio = planar_area_ratio(t, crs, grid["mean_pixel_area_m2"])
    note = planar_area_note(str(crs), ratio)
    if note:
        parts.insert(0, f'<p class="warning"><strong>Areas:</strong> {html.escape(note)}</p>')
    return parts


def _caption(name: str, dates: Sequence[str]) -> str:
    if name == TIMESERIES_PNG:
        return "Water area per date (km²)"
    if name == CHANGE_PNG:
        if not dates:
            return "Change, first to last date"
        return f"Change from the first to the last date ({dates[0]} → {dates[-1]})"
    if name == FREQUENCY_PNG:
        return "Water frequency: the share of the dates a pixel was observed on that it was water"
    if name == SERIES_CLASSES_PNG:
        return "Series classes over all dates"
    if name == WATERBODIES_PNG:
        return "Wet area per date of the waterbodies that changed most (hollow: too much of it unobserved that date)"
    for i, d in enumerate(dates):
        if name == quicklook_png(d):
            return f"{d}: image, clusters, water" + (f" and change since {dates[i - 1]}" if i
                                                     else " (the first date: no change map)")
    return name


def report_html(summary: Mapping[str, Any], config_yaml: str, figures: Mapping[str, Path], path: Path) -> Path:
    """Write the self-contained ``report.html`` (figures embedded as base64 PNG).

    Parameters
    ----------
    summary : dict
        summary.json's content.
    config_yaml : str
        The run's config.
    figures : mapping name -> PNG path
        Shown in order: timeseries, the first -> last change, frequency, series classes, then the
        quicklooks by date.
    path : Path
        Output file.
    """
    dates = summary.get("dates", [])
    iso = [d["date"] for d in dates]
    nd = area_decimals(summary)
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>rs-change report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>rs-change report</h1><p>{len(dates)} date(s), {html.escape(iso[0] if iso else '')}"
        f" – {html.escape(iso[-1] if iso else '')}; "
        f"rs-change {html.escape(str(summary.get('rs_change_version', '')))}. "
        "Every area is ground area (on the ellipsoid), in km².</p>",
        *_where(summary.get("grid", {})),
        "<h2>Water per date</h2>",
        _table(dates, _date_columns(dates), nd),
        "<p class=\"note\">Observed: the pixels with data on that date; water is a share of them.</p>",
    ]
    if "change" in summary:
        c = summary["change"]
        parts += [f"<h2>Change, first to last date ({html.escape(c['from'])} → {html.escape(c['to'])})</h2>",
                  _table([c], _CHANGE_COLUMNS, nd),
                  "<p class=\"note\">Only pixels observed on both dates count; "
                  "the net change in % is relative to the first date's water on those pixels.</p>"]
    parts += _accuracy_parts(summary, nd)
    if len(dates) >= 3 and summary.get("transitions"):  # with 2 dates, the one transition is the change above
        parts += ["<h2>Change between consecutive dates</h2>",
                  _table(summary["transitions"], [("from", "From", "text"), ("to", "To", "text"), *_CHANGE_COLUMNS],
                         nd)]
    if len(dates) >= 3 and summary.get("series"):  # with 2 dates, the classes are the change above
        s = summary["series"]
        px = s.get("classes_pixels", {})
        parts += ["<h2>Series classes (all dates)</h2>",
                  _table([{"class": k, "km2": v, "pixels": px.get(k)} for k, v in s.get("classes_km2", {}).items()],
                         [("class", "Class", "text"), ("km2", "Area (km²)", "km2"), ("pixels", "Pixels", "int")], nd),
                  "<p>Area-weighted mean water frequency: "
                  f"{_fmt(s.get('mean_frequency_percent'), 'pct')} % of the observed dates.</p>"]
    if summary.get("polygons"):
        p = summary["polygons"]
        parts += [f"<h2>Polygons</h2><p>Minimum area {_fmt(p.get('min_area_m2'), 'm2')} m², simplification "
                  f"{_fmt(p.get('simplify_px'), 'pct')} pixel, formats {html.escape(', '.join(p.get('formats', [])))}. "
                  "A polygon's area_m2 is the ground area of its pixels.</p>",
                  _table([{"layer": k, **v} for k, v in p.get("layers", {}).items()], _POLYGON_COLUMNS, nd)]
    parts += _waterbody_parts(summary, nd)
    parts.append("<h2>Figures</h2>")
    first = {TIMESERIES_PNG: (0, ""), CHANGE_PNG: (1, ""), FREQUENCY_PNG: (2, ""), SERIES_CLASSES_PNG: (3, ""),
             WATERBODIES_PNG: (3, "w")}
    rank = {quicklook_png(d): (4, d) for d in iso}  # then the quicklooks by date
    for name in sorted(figures, key=lambda n: (*first.get(n, rank.get(n, (5, ""))), n)):
        parts.append(_img(figures[name], _caption(name, iso)))
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_yaml)}</pre>",
              "<details><summary>summary.json</summary><pre>"
              + html.escape(json.dumps(summary, indent=1, ensure_ascii=False)) + "</pre></details>",
              _LOAD_SCRIPT, "</body></html>\n"]
    Path(path).write_text("\n".join(parts), encoding="utf-8")
    return Path(path)


def report_page(folder: Path, summary: Mapping[str, Any], config_yaml: str, figures: Mapping[str, Path]) -> Path:
    """``report.html`` in ``folder`` with the PNGs among ``figures`` (from :func:`report_figures`)."""
    figs = {n: p for n, p in figures.items() if n.endswith(".png")}
    return report_html(summary, config_yaml, figs, Path(folder) / REPORT_HTML)
