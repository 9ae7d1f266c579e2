"""EDGE: ``rs-change sample`` and ``rs-change assess``: a reference sample of a run's map and the
error-adjusted areas it gives (Olofsson et al. 2014; the estimator is :mod:`rs_change.assessment`).

``sample OUTDIR`` draws a stratified random sample of the observed pixels of ``change.tif`` (or a
``water_<date>.tif``), the map's classes being the strata, and writes ``samples.gpkg`` (layer
``samples``: points at pixel centres in the map's CRS, fields ``sample_id``, ``map_class``,
``reference`` (empty, for the analyst), ``lon``, ``lat``) and ``samples.csv``.  ``assess OUTDIR``
reads the labelled points back, measures the strata's ground areas on the map
(:func:`rs_change.area.pixel_area_rows`), and writes ``accuracy.json`` and ``accuracy.csv``, the
adjusted areas into ``summary.json`` (and ``report.html``).

Files reach the run folder the way a run's do (:mod:`rs_change.outputs`): staged in a folder of
their own inside it, then renamed into place with ``manifest.json`` (when the folder has one)
updated last, all under the folder's lock; an existing file is replaced only with
``--overwrite``.  The sample files are the analyst's to edit, so the manifest records how they
were drawn (its ``samples`` entry) but does not list them among the files :func:`verify` checks
(labelling them would fail it, and a rerun with ``--overwrite`` would delete the labels).

Only the standard library is imported at module level: ``rs-change --help`` builds these
commands' parsers without loading numpy or GDAL.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from .errors import InputError, OutputError, SampleError
from .names import (CHANGE_TIF, CONFIG_YAML, MANIFEST, REPORT_HTML, SUMMARY_JSON, is_water_fraction_tif, is_water_tif,
                    report_names)

SAMPLES_GPKG = "samples.gpkg"
SAMPLES_CSV = "samples.csv"
SAMPLES_LAYER = "samples"
ACCURACY_JSON = "accuracy.json"
ACCURACY_CSV = "accuracy.csv"
#: change.tif class name -> the summary.json change key of its map area
CHANGE_KEYS = {"land persistent": "persistent_land_km2", "water persistent": "persistent_water_km2",
               "water gained": "gained_km2", "water lost": "lost_km2"}
_NODATA = 255


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def add_parsers(sub: Any) -> list[argparse.ArgumentParser]:
    """Add the ``sample`` and ``assess`` subcommands to ``rs-change``'s subparsers; returns them."""
    s = sub.add_parser("sample", help="draw a stratified random sample of a run's map for reference labelling",
                       description="Stratified random sample of the observed pixels of a run's map (its classes are "
                                   "the strata), written as OUTDIR/samples.gpkg and samples.csv for labelling.")
    s.add_argument("outdir", help="a run's output folder")
    s.add_argument("--map", help="change (default), water_<date>, or water_fraction_<date> (strata: bins of the water "
                                 "fraction, 0-24, 25-49, 50-74, 75-100)")
    size = s.add_mutually_exclusive_group()
    size.add_argument("--n", type=int, help="total points (default: Olofsson et al. 2014 eq. 13 for --target-se)")
    size.add_argument("--per-class", type=int, help="this many points in every class (equal allocation)")
    s.add_argument("--allocation", choices=["minimum", "proportional", "equal"], default="minimum",
                   help="minimum: at least --min-per-class per class, the rest in proportion to area (default)")
    s.add_argument("--min-per-class", type=int, default=50, help="points at least per class for --allocation minimum (50)")
    s.add_argument("--target-se", type=float, default=0.01,
                   help="standard error of the overall accuracy the sample size aims at (0.01)")
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed, same points)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing samples.gpkg / samples.csv")
    s.set_defaults(func=cmd_sample)
    a = sub.add_parser("assess", help="accuracy and error-adjusted areas from labelled sample points",
                       description="Error matrix, accuracies and error-adjusted areas with confidence intervals "
                                   "(Olofsson et al. 2014) from labelled points; writes accuracy.json/csv and "
                                   "updates summary.json (and report.html).")
    a.add_argument("outdir", help="the run's output folder")
    a.add_argument("samples", nargs="?", help="labelled points, .gpkg or .csv (default OUTDIR/samples.gpkg)")
    a.add_argument("--map", help="the map the sample was drawn from (default: as recorded by rs-change sample)")
    a.add_argument("--z", type=float, default=1.96, help="normal quantile of the intervals (1.96: 95%%)")
    a.add_argument("--overwrite", action="store_true", help="replace an existing accuracy.json / accuracy.csv")
    a.set_defaults(func=cmd_assess)
    return [s, a]


def _run_folder(outdir: str) -> Path:
    out = Path(outdir)
    if not out.is_dir():
        raise InputError(f"{out}: not a folder; give the output folder of an rs-change run")
    return out


def _map_path(out: Path, name: Optional[str]) -> Path:
    """The map of ``--map`` (``change``, ``water_<date>``, with or without ``.tif``; default
    change.tif, or the run's only water map)."""
    if name:
        stem = Path(name).name
        stem = stem[:-4] if stem.endswith(".tif") else stem
        if stem != "change" and not stem.startswith("water_"):
            stem = f"water_{stem}"  # a date
        path = out / f"{stem}.tif"
        if not path.is_file():
            maps = sorted(p.stem for p in out.glob("water_*.tif"))  # water_fraction_<date> maps too
            maps += ["change"] if (out / CHANGE_TIF).is_file() else []
            raise InputError(f"{path}: no such map; --map takes one of: {', '.join(maps) or '(none: run rs-change run first)'}")
        return path
    if (out / CHANGE_TIF).is_file():
        return out / CHANGE_TIF
    water = sorted(p for p in out.glob("water_*.tif") if is_water_tif(p.name))
    if len(water) == 1:
        return water[0]
    if not water:
        raise InputError(f"{out}: no change.tif or water_<date>.tif; run `rs-change run` into it first")
    raise InputError(f"{out}: several water maps; pass --map water_<date> (one of {', '.join(p.stem for p in water)})")


# ---------------------------------------------------------------------------------------------
# The map: classes, strata areas, pixels
# ---------------------------------------------------------------------------------------------
#: The strata of a ``water_fraction_<date>.tif`` map (``--map water_fraction_<date>``): bins of
#: percent, the two below 50 land by the water mask, the two from 50 water.
FRACTION_STRATA = ((0, 24), (25, 49), (50, 74), (75, 100))


def map_classes(path: Path) -> dict[int, str]:
    """Code -> name of a run's map's classes from its ``CLASSES`` tag (unobserved left out); the
    :data:`FRACTION_STRATA` of a water fraction map."""
    if is_water_fraction_tif(path.name):
        return {k: f"fraction {lo}-{hi}" for k, (lo, hi) in enumerate(FRACTION_STRATA)}
    import rasterio

    from .change import CHANGE_CLASSES
    from .export import WATER_CLASSES

    with rasterio.open(path) as ds:
        tag = ds.tags().get("CLASSES")
    try:
        classes = {int(k): str(v) for k, v in json.loads(tag).items()} if tag else {}
    except (ValueError, TypeError, AttributeError):
        classes = {}
    if not classes:
        classes = dict(CHANGE_CLASSES if path.name == CHANGE_TIF else WATER_CLASSES)
    return {c: n for c, n in sorted(classes.items()) if c != _NODATA}


def _strips(path: Path) -> Any:
    """(row0, rows of the map, m2 per pixel of those rows) strip by strip: memory set by the strip."""
    import rasterio
    from rasterio.windows import Window

    from .area import pixel_area_rows

    strata = None
    if is_water_fraction_tif(path.name):  # percent -> stratum index (map_classes), 255 unobserved
        import numpy as np

        strata = np.full(256, _NODATA, np.uint8)
        for k, (lo, hi) in enumerate(FRACTION_STRATA):
            strata[lo:hi + 1] = k
    with rasterio.open(path) as ds:
        h, w = ds.height, ds.width
        area = pixel_area_rows(ds.transform, ds.crs, (h, w))
        step = max(1, (1 << 22) // max(w, 1))
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            block = ds.read(1, window=Window(0, r0, w, r1 - r0))
            yield r0, (block if strata is None else strata[block]), area(r0, r1)


def strata(path: Path, codes: Sequence[int]) -> tuple[list[int], list[float]]:
    """Pixels and ground area (m2, geodesic) of each class ``codes`` of the map."""
    import numpy as np

    pixels = np.zeros(len(codes), dtype=np.int64)
    m2 = np.zeros(len(codes))
    for _, block, area in _strips(path):
        full = np.broadcast_to(area, block.shape)
        for k, c in enumerate(codes):
            sel = block == c
            pixels[k] += int(sel.sum())
            m2[k] += float(full[sel].sum())
    return [int(v) for v in pixels], [float(v) for v in m2]


def _draw(path: Path, codes: Sequence[int], pixels: Sequence[int], counts: Sequence[int], seed: int) -> Any:
    """Row, column and class index of ``counts[k]`` pixels drawn at random without replacement
    among the ``pixels[k]`` pixels of class ``codes[k]`` (two passes over the map, by rank)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ranks = [np.sort(rng.choice(int(p), size=int(c), replace=False)) if c else np.zeros(0, np.int64)
             for p, c in zip(pixels, counts)]
    seen = [0] * len(codes)
    rows, cols, cls = [], [], []
    for r0, block, _ in _strips(path):
        flat = block.ravel()
        for k, c in enumerate(codes):
            idx = np.flatnonzero(flat == c)
            lo, hi = np.searchsorted(ranks[k], [seen[k], seen[k] + idx.size])
            take = idx[ranks[k][lo:hi] - seen[k]]
            seen[k] += idx.size
            rows.append(r0 + take // block.shape[1])
            cols.append(take % block.shape[1])
            cls.append(np.full(take.size, k))
    rows_a, cols_a, cls_a = (np.concatenate(x) if x else np.zeros(0, np.int64) for x in (rows, cols, cls))
    order = rng.permutation(rows_a.size)  # classes interleaved: the labeller meets them in random order
    return rows_a[order], cols_a[order], cls_a[order]


# ---------------------------------------------------------------------------------------------
# Writing into the run folder
# ---------------------------------------------------------------------------------------------
def write_into(out: Path, files: Mapping[str, Callable[[Path], Any]], listed: Sequence[str],
               record: Optional[Mapping[str, Any]] = None) -> list[Path]:
    """Stage ``files`` (name -> writer of that path) and swap them into the run folder ``out``
    with :func:`rs_change.outputs.commit`; when ``out`` has a manifest, a new one (written last)
    lists ``listed`` with their new sha256 beside the previous entries, and ``record`` updates its
    top-level keys."""
    from .outputs import commit, discard, sha256_file, staging_dir

    tmp = staging_dir(out)
    try:
        for name, write in files.items():
            write(tmp / name)
        names = list(files)
        if (out / MANIFEST).is_file():
            try:
                data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
                entries = list(data["files"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise OutputError(f"{out / MANIFEST}: unreadable ({exc}); rerun `rs-change run` to rewrite the folder") from None
            new = {n: {"name": n, "bytes": (tmp / n).stat().st_size, "sha256": sha256_file(tmp / n)} for n in listed}
            entries = [new.pop(e.get("name"), e) for e in entries] + list(new.values())
            data["files"] = entries
            data.update(record or {})
            (tmp / MANIFEST).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            names.append(MANIFEST)
        return commit(out, tmp, names)
    finally:
        discard(tmp)


def _refuse_existing(out: Path, names: Sequence[str], overwrite: bool, what: str) -> None:
    existing = [n for n in names if (out / n).exists() or (out / n).is_symlink()]
    if existing and not overwrite:
        raise OutputError(f"{out / existing[0]}: already exists ({what}); pass --overwrite to replace it")


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


# ---------------------------------------------------------------------------------------------
# rs-change sample
# ---------------------------------------------------------------------------------------------
def cmd_sample(args: argparse.Namespace) -> int:
    from .outputs import output_lock, recover

    out = _run_folder(args.outdir)
    args.out_dir = out  # named by the CLI's one line for a full disk or a vanished folder
    with output_lock(out):
        recover(out)
        _refuse_existing(out, [SAMPLES_GPKG, SAMPLES_CSV], args.overwrite,
                         "it may hold your reference labels")
        result = draw_sample(out, args.map, n=args.n, per_class=args.per_class, allocation=args.allocation,
                             minimum=args.min_per_class, target_se=args.target_se, seed=args.seed)
    d = result["design"]
    for name, k, p in zip(result["classes"], d["per_class"], result["pixels"]):
        print(f"{name:<18}{k:>6} points  ({p} pixels)")
    how = ("--n" if args.n is not None else "--per-class" if args.per_class is not None
           else f"eq. 13, target SE of overall accuracy {d['target_se']}")
    print(f"{d['n']} points ({how}; allocation {d['allocation']}, seed {args.seed}) from {result['map']}: "
          f"{out / SAMPLES_GPKG} (layer {SAMPLES_LAYER}) and {out / SAMPLES_CSV}")
    print("next: fill `reference` with a class name for each point (hide map_class while labelling), "
          f"then `rs-change assess {out}`")
    return 0


def draw_sample(out: Path, map_name: Optional[str] = None, n: Optional[int] = None, per_class: Optional[int] = None,
                allocation: str = "minimum", minimum: int = 50, target_se: float = 0.01, seed: int = 0) -> dict[str, Any]:
    """Draw the sample of ``sample`` and write samples.gpkg / samples.csv into the run folder ``out``
    (the caller checks for existing files and holds the folder's lock)."""
    import numpy as np
    import rasterio
    from pyproj import CRS, Transformer

    from .assessment import design
    from .export import fixed_timestamps, write_csv
    from .outputs import sha256_file

    path = _map_path(out, map_name)
    classes = map_classes(path)
    codes, names = list(classes), list(classes.values())
    pixels, m2 = strata(path, codes)
    if not any(pixels):
        raise InputError(f"{path}: no observed pixel to sample")
    for v, label in ((n, "--n"), (per_class, "--per-class"), (minimum, "--min-per-class")):
        if v is not None and v < 1:
            raise SampleError(f"{label} {v}: give a number of points >= 1")
    if not 1e-4 <= target_se <= 0.5:  # below 1e-4 eq. 13 asks for more points than any map has pixels
        raise SampleError(f"--target-se {target_se}: give a standard error between 0.0001 and 0.5 (e.g. 0.01)")
    if not 0 <= seed < 2**63:
        raise SampleError(f"--seed {seed}: give a seed from 0 to 2**63 - 1")
    dsg = design(m2, names, n=n, per_class=per_class, method=allocation, minimum=minimum,
                 target_se=target_se, capacity=pixels)
    rows, cols, cls = _draw(path, codes, pixels, dsg["per_class"], seed)
    with rasterio.open(path) as ds:
        transform, crs = ds.transform, CRS.from_user_input(ds.crs)
    x, y = transform * (cols + 0.5, rows + 0.5)
    x, y = np.asarray(x, float), np.asarray(y, float)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    table = {
        "sample_id": np.arange(1, rows.size + 1),
        "map_class": [names[k] for k in cls],
        "reference": [""] * rows.size,
        "lon": np.round(np.asarray(lon, float), 8),
        "lat": np.round(np.asarray(lat, float), 8),
    }
    meta = {"RS_CHANGE_MAP": path.name, "RS_CHANGE_MAP_SHA256": sha256_file(path), "RS_CHANGE_SEED": str(seed),
            "RS_CHANGE_CLASSES": json.dumps(names)}

    def gpkg(p: Path) -> None:
        import geopandas as gpd
        import pyogrio

        gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(x, y), crs=crs.to_wkt())
        with fixed_timestamps():  # same seed, same bytes
            pyogrio.write_dataframe(gdf, str(p), layer=SAMPLES_LAYER, driver="GPKG", layer_metadata=meta)

    def csv(p: Path) -> None:
        write_csv(p, [{"sample_id": int(i), "map_class": mc, "reference": "", "lon": float(lo), "lat": float(la),
                       "x": float(xx), "y": float(yy)}
                      for i, mc, lo, la, xx, yy in zip(table["sample_id"], table["map_class"], table["lon"],
                                                       table["lat"], x, y)])

    record = {"samples": {"files": [SAMPLES_GPKG, SAMPLES_CSV], "map": path.name, "map_sha256": meta["RS_CHANGE_MAP_SHA256"],
                          "seed": seed, "classes": names, "strata_pixels": pixels,
                          "strata_km2": [round(v / 1e6, 6) for v in m2], **dsg,
                          "note": "stratified random sample of the map's observed pixels (rs-change sample); "
                                  "the sample files are the analyst's to label, so they are not among `files`"}}
    write_into(out, {SAMPLES_GPKG: gpkg, SAMPLES_CSV: csv}, listed=[], record=record)
    return {"map": path.name, "classes": names, "pixels": pixels, "design": dsg, "points": int(rows.size)}


# ---------------------------------------------------------------------------------------------
# rs-change assess
# ---------------------------------------------------------------------------------------------
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
    ``{"id", "x", "y" (in ``crs``), "reference", "map_class" (None when absent), "meta"}``."""
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
                x, y = tr.transform(np.array([float(r["lon"]) for r in rows]), np.array([float(r["lat"]) for r in rows]))
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
            raise InputError(f"{path}: cannot read the sample points ({' '.join(str(exc).split())}); give a .gpkg or .csv") from None
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
            raise SampleError(f"{path}: layer {layer} has no `reference` field (fields: {', '.join(map(str, gdf.columns))})")
        if gdf.crs is not None and not CRS.from_user_input(gdf.crs).equals(CRS.from_user_input(crs)):
            gdf = gdf.to_crs(CRS.from_user_input(crs).to_wkt())
        if len(gdf) and (gdf.geometry.isna().any() or (gdf.geometry.geom_type != "Point").any()):
            raise SampleError(f"{path}: every feature must be a point")
        x = np.asarray(gdf.geometry.x, float) if len(gdf) else np.zeros(0)
        y = np.asarray(gdf.geometry.y, float) if len(gdf) else np.zeros(0)
        ids = [str(v) for v in gdf["sample_id"]] if "sample_id" in gdf.columns else [str(i + 1) for i in range(len(gdf))]
        ref = list(gdf["reference"])
        mc = list(gdf["map_class"]) if "map_class" in gdf.columns else None
    return {"id": ids, "x": np.asarray(x, float), "y": np.asarray(y, float), "reference": ref, "map_class": mc, "meta": meta}


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
            again = [ids[i] for i in np.flatnonzero(cell == cell[first[j]])]
            raise SampleError(f"points {', '.join(map(str, again[:5]))} fall on the same pixel of {path.name}; "
                              "keep one of them (a sample point is counted once)")
        values = np.zeros(col.size, dtype=np.int64)
        for r in np.unique(row):  # one row of the map at a time (points are few)
            sel = row == r
            line = ds.read(1, window=rasterio.windows.Window(0, int(r), ds.width, 1))[0]
            values[sel] = line[col[sel]]
    return values


def cmd_assess(args: argparse.Namespace) -> int:
    from .outputs import output_lock, recover

    out = _run_folder(args.outdir)
    args.out_dir = out  # named by the CLI's one line for a full disk or a vanished folder
    samples = Path(args.samples) if args.samples else out / SAMPLES_GPKG
    if not samples.is_file():  # before anything about earlier results
        raise InputError(f"{samples}: no such sample file; draw one with `rs-change sample {out}` and label it, "
                         "or give the labelled file")
    if not math.isfinite(args.z) or args.z <= 0:
        raise SampleError(f"--z {args.z}: give a normal quantile > 0 (1.96 for 95%)")
    with output_lock(out):
        recover(out)
        _refuse_existing(out, [ACCURACY_JSON, ACCURACY_CSV], args.overwrite, "from an earlier assess")
        with warnings.catch_warnings():  # a class without points: its NaN accuracies are reported as n/a
            warnings.simplefilter("ignore", RuntimeWarning)
            acc = assess(out, samples, args.map, z=args.z)
    print(format_accuracy(acc))
    print(f"wrote {out / ACCURACY_JSON}, {out / ACCURACY_CSV}; summary.json updated"
          + ("" if not acc.get("report_updated") else ", report.html updated"))
    return 0


def _recorded_map(out: Path, samples: Path) -> Optional[str]:
    """The map a sample was drawn from: the GeoPackage layer's metadata, else the manifest's
    ``samples`` entry (None: unknown, the default map is used)."""
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


def assess(out: Path, samples: Path, map_name: Optional[str] = None, z: float = 1.96) -> dict[str, Any]:
    """Estimate from the labelled ``samples`` and write accuracy.json / accuracy.csv, the adjusted
    areas into summary.json (and report.html) of the run folder ``out``; returns accuracy.json's
    content (the caller checks for existing files and holds the folder's lock)."""
    import numpy as np
    import rasterio

    from .assessment import combined_area, estimate_area
    from .export import write_csv, write_json
    from .outputs import sha256_file

    out, samples = Path(out), Path(samples)
    path = _map_path(out, map_name or _recorded_map(out, samples))
    if is_water_fraction_tif(path.name):
        raise SampleError(f"{path.name}: a water fraction map's strata are bins of evidence, not classes to label; "
                          "assess a sample of change or water_<date> (--map)")
    with rasterio.open(path) as ds:
        crs = ds.crs
    pts = read_points(samples, crs)
    classes = map_classes(path)
    codes, names = list(classes), list(classes.values())
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
            raise SampleError(f"{len(wrong)} point(s) of {samples.name} have a map_class that is not {path.name}'s class at "
                              f"their pixel (point {pts['id'][i]}: {str(pts['map_class'][i]).strip()!r} in the file, "
                              f"{names[map_idx[i]]!r} on the map): the map changed since the sample was drawn, or the sample "
                              "is of another map (--map); draw a new sample (rs-change sample --overwrite)")
    used = ref_idx >= 0
    if not used.any():
        raise SampleError(f"{samples}: no labelled point ({len(blank)} with a blank `reference`); fill `reference` with "
                          f"a class name ({', '.join(names)}) and save the edits")
    k = len(codes)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (map_idx[used], ref_idx[used]), 1)
    pixels, m2 = strata(path, codes)
    km2 = [v / 1e6 for v in m2]
    est = estimate_area(km2, matrix, z=z, classes=names)
    confidence = math.erf(z / math.sqrt(2.0))

    def by_name(key: str, nd: int = 6) -> dict[str, Optional[float]]:
        return {nm: _r(v, nd) for nm, v in zip(names, est[key])}

    rows = [{"class": nm, "map_km2": _r(km2[j]), "samples": int(matrix[j].sum()),
             "area_km2": _r(est["area"][j]), "area_km2_ci": _r(est["area_ci"][j]),
             "users_accuracy": _r(est["users_accuracy"][j]), "users_accuracy_ci": _r(est["users_accuracy_ci"][j]),
             "producers_accuracy": _r(est["producers_accuracy"][j]),
             "producers_accuracy_ci": _r(est["producers_accuracy_ci"][j])} for j, nm in enumerate(names)]
    acc: dict[str, Any] = {
        "method": "stratified estimator of area and accuracy, Olofsson et al. 2014 (Remote Sensing of Environment 148: 42-57)",
        "map": path.name,
        "samples": {"file": samples.name, "sha256": sha256_file(samples), "points": len(blank),
                    "labelled": int(used.sum()), "skipped_blank": int(sum(blank))},
        "z": z, "confidence": round(confidence, 4),
        "classes": names,
        "error_matrix": matrix.tolist(),
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
    if path.name == CHANGE_TIF and isinstance(summary.get("change"), dict):
        ch = summary["change"]
        for j, nm in enumerate(names):
            if nm in CHANGE_KEYS:
                ch[f"{CHANGE_KEYS[nm]}_adjusted"] = _r(est["area"][j])
                ch[f"{CHANGE_KEYS[nm]}_ci"] = _r(est["area_ci"][j])
        if {"water gained", "water lost"} <= set(names):
            weights = [1.0 if nm == "water gained" else -1.0 if nm == "water lost" else 0.0 for nm in names]
            net, net_ci = combined_area(km2, matrix, weights, z=z)
            ch["net_km2_adjusted"], ch["net_km2_ci"] = _r(net), _r(net_ci)
            acc["net_km2"], acc["net_km2_ci"] = _r(net), _r(net_ci)
        ch["accuracy"] = block
    else:
        date = path.stem[len("water_"):]
        for d in summary.get("dates", []):
            if d.get("date") == date and "water" in names:
                j = names.index("water")
                d["water_km2_adjusted"], d["water_km2_ci"] = _r(est["area"][j]), _r(est["area_ci"][j])
                d["accuracy"] = block
    acc = _clean(acc)
    summary = _clean(summary)

    files: dict[str, Callable[[Path], Any]] = {
        ACCURACY_JSON: lambda p: write_json(p, acc),
        ACCURACY_CSV: lambda p: write_csv(p, _clean(rows) + [{"class": "overall", "overall_accuracy": acc["overall_accuracy"],
                                                              "overall_accuracy_ci": acc["overall_accuracy_ci"]}]),
        SUMMARY_JSON: lambda p: write_json(p, summary),
    }
    report = _report_writer(out, summary)
    if report is not None:
        files[REPORT_HTML] = report
    write_into(out, files, listed=list(files))
    return {**acc, "report_updated": report is not None}


def _report_writer(out: Path, summary: Mapping[str, Any]) -> Optional[Callable[[Path], Any]]:
    """A writer of the run's report.html again with the accuracy table (None when the run has no
    report or its config.yaml is gone)."""
    if not (out / REPORT_HTML).is_file() or not (out / CONFIG_YAML).is_file():
        return None
    from .report import report_html

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
    lines = [f"{'class':<18}{'map_km2':>12}{'points':>8}  {'adjusted_km2 (' + pct + ' CI)':<26}{'users':<18}{'producers':<18}"]
    for nm in acc["classes"]:
        n = sum(acc["error_matrix"][acc["classes"].index(nm)])
        lines.append(f"{nm:<18}{acc['map_area_km2'][nm]:>12.6f}{n:>8}  {pm(acc['area_km2'][nm], acc['area_km2_ci'][nm], 6):<26}"
                     f"{pm(acc['users_accuracy'][nm], acc['users_accuracy_ci'][nm], 3):<18}"
                     f"{pm(acc['producers_accuracy'][nm], acc['producers_accuracy_ci'][nm], 3):<18}")
    s = acc["samples"]
    lines.append(f"overall accuracy {pm(acc['overall_accuracy'], acc['overall_accuracy_ci'], 3)} ({pct} CI); "
                 f"{s['labelled']} labelled points of {s['points']} ({s['skipped_blank']} blank, skipped); map {acc['map']}")
    if acc.get("net_km2") is not None:
        lines.append(f"net change {acc['net_km2']:+.6f} ± {acc['net_km2_ci']:.6f} km2 ({pct} CI)"
                     if acc.get("net_km2_ci") is not None else f"net change {acc['net_km2']:+.6f} km2")
    lines += [f"note: {n}" for n in acc.get("notes", [])]
    return "\n".join(lines)

