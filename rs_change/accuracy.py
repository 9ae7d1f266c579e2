"""EDGE: accuracy and error-adjusted areas of a run's map from labelled sample points
(``rs-change assess``; Olofsson et al. 2014, the estimator is :mod:`rs_change.assessment`).

:func:`assess_run` reads the points :mod:`rs_change.sampling` drew once an analyst has filled their
``reference`` field, measures the strata's ground areas on the map
(:func:`rs_change.area.pixel_area_rows`), and writes ``accuracy.json`` and ``accuracy.csv``, the
adjusted areas into ``summary.json`` (and ``report.html``), through the run folder's staging, lock
and commit (:func:`rs_change.sampling.write_into`).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from .errors import InputError, SampleError
from .names import CHANGE_TIF, CONFIG_YAML, MANIFEST, REPORT_HTML, SUMMARY_JSON, is_water_fraction_tif, report_names
from .sampling import (SAMPLES_GPKG, SAMPLES_LAYER, map_classes, map_path, refuse_existing, run_folder, strata,
                       write_into)

ACCURACY_JSON = "accuracy.json"
ACCURACY_CSV = "accuracy.csv"
#: change.tif class name -> the summary.json change key of its map area
CHANGE_KEYS = {"land persistent": "persistent_land_km2", "water persistent": "persistent_water_km2",
               "water gained": "gained_km2", "water lost": "lost_km2"}


def assess_run(outdir: str | Path, samples: Optional[str | Path] = None, map_name: Optional[str] = None,
               z: float = 1.96, overwrite: bool = False) -> dict[str, Any]:
    """Assess a run's map in its folder ``outdir`` from the labelled ``samples`` (default
    ``outdir/samples.gpkg``) under the folder's lock, refusing to replace accuracy.json / .csv
    unless ``overwrite``; returns accuracy.json's content and ``report_updated``.
    """
    from .outputs import output_lock, recover

    out = run_folder(outdir)
    path = Path(samples) if samples else out / SAMPLES_GPKG
    if not path.is_file():  # before anything about earlier results
        raise InputError(f"{path}: no such sample file; draw one with `rs-change sample {out}` and label it, "
                         "or give the labelled file")
    if not math.isfinite(z) or z <= 0:
        raise SampleError(f"--z {z}: give a normal quantile > 0 (1.96 for 95%)")
    with output_lock(out):
        recover(out)
        refuse_existing(out, [ACCURACY_JSON, ACCURACY_CSV], overwrite, "from an earlier assess")
        with warnings.catch_warnings():  # a class without points: its NaN accuracies are reported as n/a
            warnings.simplefilter("ignore", RuntimeWarning)
            return assess(out, path, map_name, z=z)


def _clean(x: Any) -> Any:
    """JSON-safe: nan / inf -> None, numpy scalars -> Python numbers."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _r(x: Optional[float], nd: int = 6) -> Optional[float]:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)



def _norm(v: Any) -> str:
    return " ".join(str(v).replace("_", " ").split()).lower()


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return not str(v).strip()


def read_points(path: Path, crs: Any) -> dict[str, Any]:
    """Labelled points of a samples.gpkg (any layer named ``samples``, else the first) or CSV:
    ``{"id", "x", "y" (in ``crs``), "reference", "map_class" (None when absent), "meta"}``.
    """
    import numpy as np
    from pyproj import CRS, Transformer

    if not path.is_file():
        raise InputError(f"{path}: no such sample file; draw one with `rs-change sample` or give the labelled file")
    meta: dict[str, Any] = {}
    if path.suffix.lower() == ".csv":
        import csv

        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
        except UnicodeDecodeError as exc:
            raise SampleError(f"{path}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None
        fields = set(rows[0]) if rows else set()
        if rows and "reference" not in fields:
            raise SampleError(f"{path}: no `reference` column (columns: {', '.join(sorted(fields))})")
        try:
            if {"x", "y"} <= fields:
                x = np.array([float(r["x"]) for r in rows])
                y = np.array([float(r["y"]) for r in rows])
            elif {"lon", "lat"} <= fields:
                tr = Transformer.from_crs("EPSG:4326", CRS.from_user_input(crs), always_xy=True)
                x, y = tr.transform(np.array([float(r["lon"]) for r in rows]),
                                    np.array([float(r["lat"]) for r in rows]))
            else:
                raise SampleError(f"{path}: no x/y or lon/lat columns to place the points")
        except ValueError as exc:
            if isinstance(exc, SampleError):
                raise
            raise SampleError(f"{path}: a coordinate is not a number ({exc})") from None
        ids = [r.get("sample_id") or str(i + 1) for i, r in enumerate(rows)]
        ref = [r.get("reference") for r in rows]
        mc = [r.get("map_class") for r in rows] if "map_class" in fields else None
    else:
        import pyogrio

        try:
            with warnings.catch_warnings():  # GDAL's notes on odd files: the error below says what is wrong
                warnings.simplefilter("ignore", RuntimeWarning)
                layers = [str(n) for n in pyogrio.list_layers(str(path))[:, 0]]
        except Exception as exc:  # not a vector file GDAL can open
            why = " ".join(str(exc).split())
            raise InputError(f"{path}: cannot read the sample points ({why}); give a .gpkg or .csv") from None
        if not layers:
            raise InputError(f"{path}: the GeoPackage has no layer of points; give the samples.gpkg that "
                             "`rs-change sample` wrote, or a .csv")
        layer = SAMPLES_LAYER if SAMPLES_LAYER in layers else layers[0]
        gdf = pyogrio.read_dataframe(str(path), layer=layer)
        meta = dict(pyogrio.read_info(str(path), layer=layer).get("layer_metadata") or {})
        if getattr(gdf, "geometry", None) is None or "geometry" not in gdf.columns:  # a table registered as no layer
            raise SampleError(f"{path}: layer {layer} has no point geometry (not a registered GeoPackage layer); give "
                              "the samples.gpkg that `rs-change sample` wrote, or a .csv")
        if "reference" not in gdf.columns:
            columns = ", ".join(map(str, gdf.columns))
            raise SampleError(f"{path}: layer {layer} has no `reference` field (fields: {columns})")
        if gdf.crs is not None and not CRS.from_user_input(gdf.crs).equals(CRS.from_user_input(crs)):
            gdf = gdf.to_crs(CRS.from_user_input(crs).to_wkt())
        if len(gdf) and (gdf.geometry.isna().any() or (gdf.geometry.geom_type != "Point").any()):
            raise SampleError(f"{path}: every feature must be a point")
        x = np.asarray(gdf.geometry.x, float) if len(gdf) else np.zeros(0)
        y = np.asarray(gdf.geometry.y, float) if len(gdf) else np.zeros(0)
        ids = ([str(v) for v in gdf["sample_id"]] if "sample_id" in gdf.columns
               else [str(i + 1) for i in range(len(gdf))])
        ref = list(gdf["reference"])
        mc = list(gdf["map_class"]) if "map_class" in gdf.columns else None
    return {"id": ids, "x": np.asarray(x, float), "y": np.asarray(y, float), "reference": ref, "map_class": mc,
            "meta": meta}


def _point_classes(path: Path, x: Any, y: Any, ids: Sequence[str]) -> Any:
    """The map's value under each point (SampleError for a point off the map)."""
    import numpy as np
    import rasterio

    with rasterio.open(path) as ds:
        col, row = ~ds.transform * (np.asarray(x), np.asarray(y))
        col, row = np.floor(np.asarray(col, float)).astype(np.int64), np.floor(np.asarray(row, float)).astype(np.int64)
        off = (col < 0) | (row < 0) | (col >= ds.width) | (row >= ds.height)
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise SampleError(f"point {ids[i]} lies outside {path.name}: was the sample drawn from another run?")
        cell = row * ds.width + col
        _, first, counts = np.unique(cell, return_index=True, return_counts=True)
        if (counts > 1).any():  # counted twice, a point would narrow the intervals as if it were new evidence
            j = int(np.flatnonzero(counts > 1)[0])
            again = [ids[int(i)] for i in np.flatnonzero(cell == cell[first[j]])]
            raise SampleError(f"points {', '.join(map(str, again[:5]))} fall on the same pixel of {path.name}; "
                              "keep one of them (a sample point is counted once)")
        values = np.zeros(col.size, dtype=np.int64)
        for r in np.unique(row):  # one row of the map at a time (points are few)
            sel = row == r
            line = ds.read(1, window=rasterio.windows.Window(0, int(r), ds.width, 1))[0]
            values[sel] = line[col[sel]]
    return values



def _recorded_map(out: Path, samples: Path) -> Optional[str]:
    """The map a sample was drawn from: the GeoPackage layer's metadata, else the manifest's
    ``samples`` entry (None: unknown, the default map is used).
    """
    if samples.suffix.lower() == ".gpkg" and samples.is_file():
        try:
            import pyogrio

            meta = pyogrio.read_info(str(samples), layer=SAMPLES_LAYER).get("layer_metadata") or {}
            if meta.get("RS_CHANGE_MAP"):
                return str(meta["RS_CHANGE_MAP"])
        except Exception:  # another layer name, not a GeoPackage: read_points says what is wrong
            pass
    try:
        return str(json.loads((out / MANIFEST).read_text(encoding="utf-8"))["samples"]["map"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _labels(samples: Path, path: Path, pts: Mapping[str, Any], codes: Sequence[int],
            names: Sequence[str]) -> tuple[Any, Any, list[bool]]:
    """Each point's reference class index (-1: blank), its map class index, and whether its
    reference is blank; SampleError for a reference that is no class, a point on an unobserved
    pixel, or a ``map_class`` the map does not have at the point.
    """
    import numpy as np

    lookup = {_norm(nm): k for k, nm in enumerate(names)}
    lookup.update({str(c): k for k, c in enumerate(codes)})

    blank = [_blank(v) for v in pts["reference"]]
    ref_idx = np.full(len(blank), -1)
    for i, (v, b) in enumerate(zip(pts["reference"], blank)):
        if b:
            continue
        key = _norm(v)
        if key.endswith(".0") and key[:-2].isdigit():
            key = key[:-2]
        if key not in lookup:
            raise SampleError(f"{samples.name}: point {pts['id'][i]}: reference {str(v).strip()!r} is not a class of "
                              f"{path.name}; use one of: {', '.join(names)} (or leave it blank to skip the point)")
        ref_idx[i] = lookup[key]
    values = _point_classes(path, pts["x"], pts["y"], pts["id"])
    code_idx = {c: k for k, c in enumerate(codes)}
    map_idx = np.array([code_idx.get(int(v), -1) for v in values], dtype=int)
    if (map_idx < 0).any():
        i = int(np.flatnonzero(map_idx < 0)[0])
        raise SampleError(f"point {pts['id'][i]} lies on an unobserved pixel of {path.name}: the map changed since the "
                          "sample was drawn; draw a new one (rs-change sample --overwrite)")
    if pts["map_class"] is not None:
        stated = [None if _blank(v) else lookup.get(_norm(v), -2) for v in pts["map_class"]]
        wrong = [i for i, s in enumerate(stated) if s is not None and s != map_idx[i]]
        if wrong:
            i = wrong[0]
            raise SampleError(f"{len(wrong)} point(s) of {samples.name} have a map_class that is not {path.name}'s "
                              "class at "
                              f"their pixel (point {pts['id'][i]}: {str(pts['map_class'][i]).strip()!r} in the file, "
                              f"{names[map_idx[i]]!r} on the map): the map changed since the sample was drawn, "
                              "or the sample "
                              "is of another map (--map); draw a new sample (rs-change sample --overwrite)")
    return ref_idx, map_idx, blank


def assess(out: Path, samples: Path, map_name: Optional[str] = None, z: float = 1.96) -> dict[str, Any]:
    """Estimate from the labelled ``samples`` and write accuracy.json / accuracy.csv, the adjusted
    areas into summary.json (and report.html) of the run folder ``out``; returns accuracy.json's
    content (the caller checks for existing files and holds the folder's lock).
    """
    import numpy as np
    import rasterio

    from .assessment import combined_area, estimate_area
    from .export import write_csv, write_json
    from .outputs import sha256_file

    out, samples = Path(out), Path(samples)
    path = map_path(out, map_name or _recorded_map(out, samples))
    if is_water_fraction_tif(path.name):
        raise SampleError(f"{path.name}: a water fraction map's strata are bins of evidence, not classes to label; "
                          "assess a sample of change or water_<date> (--map)")
    with rasterio.open(path) as ds:
        crs = ds.crs
    pts = read_points(samples, crs)
    classes = map_classes(path)
    codes, names = list(classes), list(classes.values())
    ref_idx, map_idx, blank = _labels(samples, path, pts, codes, names)
    used = ref_idx >= 0
    if not used.any():
        raise SampleError(f"{samples}: no labelled point ({len(blank)} with a blank `reference`); "
                          "fill `reference` with "
                          f"a class name ({', '.join(names)}) and save the edits")
    k = len(codes)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (map_idx[used], ref_idx[used]), 1)
    pixels, m2 = strata(path, codes)
    km2 = [v / 1e6 for v in m2]
    counts = matrix.tolist()  # the error matrix as assessment's functions take it
    est = estimate_area(km2, counts, z=z, classes=names)
    confidence = math.erf(z / math.sqrt(2.0))

    def by_name(key: str, nd: int = 6) -> dict[str, Optional[float]]:
        return {nm: _r(v, nd) for nm, v in zip(names, est[key])}

    rows = [{"class": nm, "map_km2": _r(km2[j]), "samples": int(matrix[j].sum()),
             "area_km2": _r(est["area"][j]), "area_km2_ci": _r(est["area_ci"][j]),
             "users_accuracy": _r(est["users_accuracy"][j]), "users_accuracy_ci": _r(est["users_accuracy_ci"][j]),
             "producers_accuracy": _r(est["producers_accuracy"][j]),
             "producers_accuracy_ci": _r(est["producers_accuracy_ci"][j])} for j, nm in enumerate(names)]
    acc: dict[str, Any] = {
        "method": "stratified estimator of area and accuracy, Olofsson et al. 2014 "
                  "(Remote Sensing of Environment 148: 42-57)",
        "map": path.name,
        "samples": {"file": samples.name, "sha256": sha256_file(samples), "points": len(blank),
                    "labelled": int(used.sum()), "skipped_blank": int(sum(blank))},
        "z": z, "confidence": round(confidence, 4),
        "classes": names,
        "error_matrix": counts,
        "error_matrix_note": "rows = map class, columns = reference class, in `classes` order; counts of points",
        "map_area_km2": {nm: _r(v) for nm, v in zip(names, km2)},
        "map_pixels": dict(zip(names, pixels)),
        "area_km2": by_name("area"), "area_km2_ci": by_name("area_ci"), "area_km2_se": by_name("area_se"),
        "users_accuracy": by_name("users_accuracy"), "users_accuracy_ci": by_name("users_accuracy_ci"),
        "producers_accuracy": by_name("producers_accuracy"), "producers_accuracy_ci": by_name("producers_accuracy_ci"),
        "overall_accuracy": _r(est["overall_accuracy"]), "overall_accuracy_ci": _r(est["overall_accuracy_ci"]),
        "proportions": [[_r(v, 8) for v in row] for row in est["proportions"]],
        "notes": est["notes"],
    }
    block: dict[str, Any] = {
        "method": "Olofsson et al. 2014 (error-adjusted areas from a stratified reference sample)",
        "file": ACCURACY_JSON, "map": path.name, "points": int(used.sum()), "skipped_blank": int(sum(blank)),
        "confidence": acc["confidence"], "overall_accuracy": acc["overall_accuracy"],
        "overall_accuracy_ci": acc["overall_accuracy_ci"], "classes": rows,
        "note": "<area>_adjusted is the area estimated from the reference sample, <area>_ci the half-width of its "
                "confidence interval; <area> itself stays the map's area",
    }
    summary_path = out / SUMMARY_JSON
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{summary_path}: cannot read the run's summary ({exc}); rerun `rs-change run`") from None
    net = None
    change = path.name == CHANGE_TIF and isinstance(summary.get("change"), dict)
    if change and {"water gained", "water lost"} <= set(names):
        weights = [1.0 if nm == "water gained" else -1.0 if nm == "water lost" else 0.0 for nm in names]
        net = combined_area(km2, counts, weights, z=z)
        acc["net_km2"], acc["net_km2_ci"] = _r(net[0]), _r(net[1])
    _add_to_summary(summary, path, names, est, block, net)
    acc = _clean(acc)
    summary = _clean(summary)

    files: dict[str, Callable[[Path], Any]] = {
        ACCURACY_JSON: lambda p: write_json(p, acc),
        ACCURACY_CSV: lambda p: write_csv(p, _clean(rows) + [{"class": "overall",
                                                              "overall_accuracy": acc["overall_accuracy"],
                                                              "overall_accuracy_ci": acc["overall_accuracy_ci"]}]),
        SUMMARY_JSON: lambda p: write_json(p, summary),
    }
    report = _report_writer(out, summary)
    if report is not None:
        files[REPORT_HTML] = report
    write_into(out, files, listed=list(files))
    return {**acc, "report_updated": report is not None}


def _add_to_summary(summary: dict[str, Any], path: Path, names: Sequence[str], est: Mapping[str, Any],
                    block: dict[str, Any], net: Optional[tuple[float, float]]) -> None:
    """Put the adjusted areas ``est`` and the accuracy ``block`` into the run's summary: its
    ``change`` section for change.tif (with the adjusted ``net``), else the map's date.
    """
    if path.name == CHANGE_TIF and isinstance(summary.get("change"), dict):
        ch = summary["change"]
        for j, nm in enumerate(names):
            if nm in CHANGE_KEYS:
                ch[f"{CHANGE_KEYS[nm]}_adjusted"] = _r(est["area"][j])
                ch[f"{CHANGE_KEYS[nm]}_ci"] = _r(est["area_ci"][j])
        if net is not None:
            ch["net_km2_adjusted"], ch["net_km2_ci"] = _r(net[0]), _r(net[1])
        ch["accuracy"] = block
    else:
        date = path.stem[len("water_"):]
        for d in summary.get("dates", []):
            if d.get("date") == date and "water" in names:
                j = names.index("water")
                d["water_km2_adjusted"], d["water_km2_ci"] = _r(est["area"][j]), _r(est["area_ci"][j])
                d["accuracy"] = block


def _report_writer(out: Path, summary: Mapping[str, Any]) -> Optional[Callable[[Path], Any]]:
    """A writer of the run's report.html again with the accuracy table (None when the run has no
    report or its config.yaml is gone).
    """
    if not (out / REPORT_HTML).is_file() or not (out / CONFIG_YAML).is_file():
        return None
    from .report_page import report_html

    dates = [d["date"] for d in summary.get("dates", [])]
    figs = {n: out / n for n in report_names(dates, len(dates) >= 3) if n.endswith(".png") and (out / n).is_file()}
    config_yaml = (out / CONFIG_YAML).read_text(encoding="utf-8")
    return lambda p: report_html(summary, config_yaml, figs, p)


def format_accuracy(acc: Mapping[str, Any]) -> str:
    """The table ``assess`` prints: each class's map area, adjusted area and accuracies."""
    def pm(v: Any, ci: Any, nd: int) -> str:
        if v is None:
            return "n/a"
        return f"{v:.{nd}f}" + ("" if ci is None else f" ± {ci:.{nd}f}")

    pct = f"{100 * acc['confidence']:.0f}%"
    adjusted = f"adjusted_km2 ({pct} CI)"
    lines = [f"{'class':<18}{'map_km2':>12}{'points':>8}  {adjusted:<26}{'users':<18}{'producers':<18}"]
    for nm in acc["classes"]:
        n = sum(acc["error_matrix"][acc["classes"].index(nm)])
        area = pm(acc["area_km2"][nm], acc["area_km2_ci"][nm], 6)
        lines.append(f"{nm:<18}{acc['map_area_km2'][nm]:>12.6f}{n:>8}  {area:<26}"
                     f"{pm(acc['users_accuracy'][nm], acc['users_accuracy_ci'][nm], 3):<18}"
                     f"{pm(acc['producers_accuracy'][nm], acc['producers_accuracy_ci'][nm], 3):<18}")
    s = acc["samples"]
    lines.append(f"overall accuracy {pm(acc['overall_accuracy'], acc['overall_accuracy_ci'], 3)} ({pct} CI); "
                 f"{s['labelled']} labelled points of {s['points']} ({s['skipped_blank']} blank, skipped); "
                 f"map {acc['map']}")
    if acc.get("net_km2") is not None:
        lines.append(f"net change {acc['net_km2']:+.6f} ± {acc['net_km2_ci']:.6f} km2 ({pct} CI)"
                     if acc.get("net_km2_ci") is not None else f"net change {acc['net_km2']:+.6f} km2")
    lines += [f"note: {n}" for n in acc.get("notes", [])]
    return "\n".join(lines)

