"""EDGE: a stratified random sample of a run's map for reference labelling (``rs-change sample``).

:func:`sample_run` draws a stratified random sample of the observed pixels of ``change.tif`` (or a
``water_<date>.tif``, or a ``water_fraction_<date>.tif`` by bins of the fraction), the map's
classes being the strata, and writes ``samples.gpkg`` (layer ``samples``: points at pixel centres
in the map's CRS, fields ``sample_id``, ``map_class``, ``reference`` (empty, for the analyst),
``lon``, ``lat``) and ``samples.csv``.  The sample size and allocation are Olofsson et al. 2014's
(:func:`rs_change.assessment.design`); :mod:`rs_change.accuracy` reads the labelled points back.

Files reach the run folder the way a run's do (:mod:`rs_change.outputs`): staged in a folder of
their own inside it, then renamed into place with ``manifest.json`` (when the folder has one)
updated last, all under the folder's lock; an existing file is replaced only with ``overwrite``.
The sample files are the analyst's to edit, so the manifest records how they were drawn (its
``samples`` entry) but does not list them among the files :func:`rs_change.outputs.verify` checks
(labelling them would fail it, and a rerun with ``overwrite`` would delete the labels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from .errors import InputError, OutputError, SampleError
from .names import CHANGE_TIF, MANIFEST, is_water_fraction_tif, is_water_tif

SAMPLES_GPKG = "samples.gpkg"
SAMPLES_CSV = "samples.csv"
SAMPLES_LAYER = "samples"
_NODATA = 255
#: The strata of a ``water_fraction_<date>.tif`` map (``--map water_fraction_<date>``): bins of
#: percent, the two below 50 land by the water mask, the two from 50 water.
FRACTION_STRATA = ((0, 24), (25, 49), (50, 74), (75, 100))


def run_folder(outdir: str | Path) -> Path:
    """The output folder of a run (InputError when it is not a folder)."""
    out = Path(outdir)
    if not out.is_dir():
        raise InputError(f"{out}: not a folder; give the output folder of an rs-change run")
    return out


def map_path(out: Path, name: Optional[str]) -> Path:
    """The map of ``--map`` (``change``, ``water_<date>``, with or without ``.tif``; default
    change.tif, or the run's only water map).
    """
    if name:
        stem = Path(name).name
        stem = stem[:-4] if stem.endswith(".tif") else stem
        if stem != "change" and not stem.startswith("water_"):
            stem = f"water_{stem}"  # a date
        path = out / f"{stem}.tif"
        if not path.is_file():
            maps = sorted(p.stem for p in out.glob("water_*.tif"))  # water_fraction_<date> maps too
            maps += ["change"] if (out / CHANGE_TIF).is_file() else []
            known = ", ".join(maps) or "(none: run rs-change run first)"
            raise InputError(f"{path}: no such map; --map takes one of: {known}")
        return path
    if (out / CHANGE_TIF).is_file():
        return out / CHANGE_TIF
    water = sorted(p for p in out.glob("water_*.tif") if is_water_tif(p.name))
    if len(water) == 1:
        return water[0]
    if not water:
        raise InputError(f"{out}: no change.tif or water_<date>.tif; run `rs-change run` into it first")
    raise InputError(f"{out}: several water maps; pass --map water_<date> (one of {', '.join(p.stem for p in water)})")



def map_classes(path: Path) -> dict[int, str]:
    """Code -> name of a run's map's classes from its ``CLASSES`` tag (unobserved left out); the
    :data:`FRACTION_STRATA` of a water fraction map.
    """
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
    among the ``pixels[k]`` pixels of class ``codes[k]`` (two passes over the map, by rank).
    """
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



def write_into(out: Path, files: Mapping[str, Callable[[Path], Any]], listed: Sequence[str],
               record: Optional[Mapping[str, Any]] = None) -> list[Path]:
    """Stage ``files`` (name -> writer of that path) and swap them into the run folder ``out``
    with :func:`rs_change.outputs.commit`; when ``out`` has a manifest, a new one (written last)
    lists ``listed`` with their new sha256 beside the previous entries, and ``record`` updates its
    top-level keys.
    """
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
                raise OutputError(f"{out / MANIFEST}: unreadable ({exc}); "
                                  "rerun `rs-change run` to rewrite the folder") from None
            new = {n: {"name": n, "bytes": (tmp / n).stat().st_size, "sha256": sha256_file(tmp / n)} for n in listed}
            entries = [new.pop(e.get("name"), e) for e in entries] + list(new.values())
            data["files"] = entries
            data.update(record or {})
            (tmp / MANIFEST).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            names.append(MANIFEST)
        return commit(out, tmp, names)
    finally:
        discard(tmp)


def refuse_existing(out: Path, names: Sequence[str], overwrite: bool, what: str) -> None:
    """Refuse (:class:`OutputError`) when one of ``names`` exists in ``out`` and ``overwrite`` is
    false; ``what`` says what the existing file may hold.
    """
    existing = [n for n in names if (out / n).exists() or (out / n).is_symlink()]
    if existing and not overwrite:
        raise OutputError(f"{out / existing[0]}: already exists ({what}); pass --overwrite to replace it")


@dataclass(frozen=True)
class Design:
    """How to draw a sample: total points ``n`` (None: eq. 13 for ``target_se``) or ``per_class``
    points in every class; ``allocation`` (minimum, proportional, equal) with at least ``minimum``
    points per class; ``seed`` (same seed, same points).
    """

    n: Optional[int] = None
    per_class: Optional[int] = None
    allocation: str = "minimum"
    minimum: int = 50
    target_se: float = 0.01
    seed: int = 0


def sample_run(outdir: str | Path, map_name: Optional[str] = None, design: Design = Design(),
               overwrite: bool = False) -> dict[str, Any]:
    """Draw a sample of a run's map into its folder ``outdir``, under the folder's lock, refusing
    to replace samples.gpkg / samples.csv (they may hold reference labels) unless ``overwrite``.

    Returns ``{"map", "classes", "pixels", "design", "points", "files"}``.
    """
    from .outputs import output_lock, recover

    out = run_folder(outdir)
    with output_lock(out):
        recover(out)
        refuse_existing(out, [SAMPLES_GPKG, SAMPLES_CSV], overwrite, "it may hold your reference labels")
        result = draw_sample(out, map_name, design)
    return {**result, "files": [out / SAMPLES_GPKG, out / SAMPLES_CSV]}


def format_sample(result: Mapping[str, Any], design: Design) -> str:
    """The lines ``rs-change sample`` prints: points per class, how they were drawn, what next."""
    d = result["design"]
    lines = [f"{name:<18}{k:>6} points  ({p} pixels)"
             for name, k, p in zip(result["classes"], d["per_class"], result["pixels"])]
    how = ("--n" if design.n is not None else "--per-class" if design.per_class is not None
           else f"eq. 13, target SE of overall accuracy {d['target_se']}")
    gpkg, csv = result["files"]
    lines.append(f"{d['n']} points ({how}; allocation {d['allocation']}, seed {design.seed}) from {result['map']}: "
                 f"{gpkg} (layer {SAMPLES_LAYER}) and {csv}")
    lines.append("next: fill `reference` with a class name for each point (hide map_class while labelling), "
                 f"then `rs-change assess {gpkg.parent}`")
    return "\n".join(lines)


def draw_sample(out: Path, map_name: Optional[str] = None, how: Design = Design()) -> dict[str, Any]:
    """Draw the sample ``how`` of the map ``map_name`` (default: change.tif, or the run's only water
    map) and write samples.gpkg / samples.csv into the run folder ``out`` (the caller checks for
    existing files and holds the folder's lock).
    """
    import numpy as np
    import rasterio
    from pyproj import CRS, Transformer

    from .assessment import design
    from .export import fixed_timestamps, write_csv
    from .outputs import sha256_file

    n, per_class, allocation, minimum, target_se, seed = (how.n, how.per_class, how.allocation, how.minimum,
                                                           how.target_se, how.seed)

    path = map_path(out, map_name)
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
    table: dict[str, Any] = {  # the sample's columns (arrays and lists), as the GeoPackage stores them
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

    record = {"samples": {"files": [SAMPLES_GPKG, SAMPLES_CSV], "map": path.name,
                          "map_sha256": meta["RS_CHANGE_MAP_SHA256"],
                          "seed": seed, "classes": names, "strata_pixels": pixels,
                          "strata_km2": [round(v / 1e6, 6) for v in m2], **dsg,
                          "note": "stratified random sample of the map's observed pixels (rs-change sample); "
                                  "the sample files are the analyst's to label, so they are not among `files`"}}
    write_into(out, {SAMPLES_GPKG: gpkg, SAMPLES_CSV: csv}, listed=[], record=record)
    return {"map": path.name, "classes": names, "pixels": pixels, "design": dsg, "points": int(rows.size)}
