"""Water-mask accuracy of rs-change and of simple baselines against every reference we have.

Not part of the test suite.  Run from the repository root:

    python benchmarks/accuracy.py [--data ../shared/data] [--only nc,s2,aral,naip] [--seeds 5] [--json out.json]

rs-change is run as a user runs it: a config (a dict, or the YAML in ``configs/``) goes through
``RunConfig`` and ``rs_change.pipeline.run`` into a temporary folder, and what is scored is the
``water_<date>.tif`` it wrote (1 water, 0 land, 255 unobserved) and ``summary.json``'s areas.
Only output options are changed from the shipped configs (no polygons, no report, a temporary
folder, and the seed for the seed-spread runs): they do not change the water rasters.

The baselines run in the same process on the same pixels: the bands of each date are read onto
the run's reference grid through rs-change's reader (the same bands, resampling and observed
mask the run saw), with the calibration the data README gives (Sentinel-2 here has no offset):

* ``NDWI > 0``, ``MNDWI > 0`` (where the data has SWIR1);
* ``Otsu on MNDWI`` (``Otsu on NDWI`` without SWIR1), Otsu's threshold with 256 bins;
* ``k-means k=3``: scikit-learn k-means (3 clusters, 3 restarts, the seed) on the standardised
  features rs-change clusters (bands + NDWI (+ MNDWI)), fitted on up to 200,000 observed pixels;
  the cluster with the highest median NDWI is water.

References (each skipped when its folder is absent):

``nc``   Landsat 7 ETM+ 2000, Raleigh NC, 1996 land-cover map (strata 6 = water). Two stacks,
         because band 7's file has a smaller footprint: 5 bands (ETM+ 1-5) and 6 bands (+ 7).
         k = 3, bands given by role.  IoU, F1, precision, recall on pixels observed in every band.
         The "best single threshold" row uses the reference: an upper bound, not a method.
``s2``   Sentinel-2 L1C 2017, Brandenburg, sparse OSM water reference (1 water, 0 land, 255
         unlabelled).  ``sensor: sentinel2`` with no offset key, as a user writes it (the file
         declares no offset, so none is applied).  F1, IoU on labelled pixels only.
``aral`` MODIS Aral Sea 2000 and 2023, ``configs/modis_aral.yaml`` (the article's crop as AOI).
         Water km2 (geodesic) against the article's classification measured geodesically: the
         article's k-means (k = 3 on the 3 bands of the crop, lowest-NIR cluster) reproduced here,
         its pixels summed with rs_change.area.pixel_area.  2023: 7,833 px = 2,664 km2 (the
         article counts 7,840 px); 2000: ~68,470 px (article 68,500).
``naip`` NAIP Devils Lake 2009 / 2014 / 2020, ``configs/naip_series.yaml`` (a wet cycle: the lakes
         grow).  Self-consistency: of the pixels that are water on both 2009 and 2020, the share
         that is water in 2014 (higher is better); as over-detection scores well there, also the
         share of the pixels that are land on both dates that is land in 2014; water km2 per date;
         and the spread of each date's water area over seeds 0..N-1 (max / min - 1, target within
         2 %; the k-means baseline's own spread beside it).

``aral`` and ``naip`` read the scenes the shipped configs name (``sample_tiles/``, the same files
as the shared data's ``modis_aral/`` and ``naip_nd/``).

Prints one markdown table per reference and a summary table; ``--json`` saves every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import rasterio
import yaml

from rs_change.area import pixel_area
from rs_change.config import RunConfig
from rs_change.features import default_features, feature_matrix, spectral_index
from rs_change.pipeline import build_source, run

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
NC_BANDS = {"blue": 10, "green": 20, "red": 30, "nir": 40, "swir1": 50, "swir2": 70}
S2_IMAGE = "s2l1c_T33UUU_20170216_6band_10m.tif"
S2_REF = "osm_water_reference_sparse_10m.tif"
S2_BANDS = {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 6}
ARAL_CROP = (slice(140, 600), slice(110, 500))  # the article's rows 140:600, cols 110:500
ARAL_ARTICLE_PX = {"2000-08-01": 68_500, "2023-08-01": 7_840}  # 17,125 km2 and 1,960 km2 / (0.5 km)^2
ARAL_ISSUE_2023_KM2 = 2_664.0  # the issue's geodesic figure for 2023
RS = "rs-change"
KM = "k-means k=3, highest-NDWI cluster"
OUTPUT = {"polygons": False, "report": False}  # output options only: the water rasters are the same


# ---------------------------------------------------------------------------------------------
# running rs-change as a user does, and reading what it wrote
# ---------------------------------------------------------------------------------------------
def run_rs(cfg_dict: dict[str, Any], base_dir: Path, out: Path) -> tuple[Any, dict[str, np.ndarray], RunConfig]:
    """``pipeline.run`` of a config dict into ``out``; the result and its water rasters by date."""
    cfg = RunConfig.from_dict({**cfg_dict, "output": {**cfg_dict.get("output", {}), **OUTPUT, "dir": str(out)}},
                              base_dir=base_dir)
    res = run(cfg, output_dir=out, overwrite=True)
    water = {}
    for s in cfg.scenes:
        with rasterio.open(out / f"water_{s.date.isoformat()}.tif") as ds:
            water[s.date.isoformat()] = ds.read(1)
            assert ds.shape == res.grid.shape
    return res, water, cfg


def load_yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))


def read_bands(scene: dict[str, Any], cfg: RunConfig, grid: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The bands (physical units) and observed mask of one scene on ``grid``, through rs-change's reader."""
    sc = RunConfig.from_dict({**cfg.model_dump(exclude={"base_dir"}, exclude_none=True), "scenes": [scene]},
                             base_dir=cfg.base_dir)
    src = build_source(sc.scenes[0], sc)
    with src.open(grid, cfg.grid.resampling) as rd:
        return rd.read()


def km2_of(mask: np.ndarray, area: np.ndarray) -> float:
    return float((np.broadcast_to(area, mask.shape) * mask).sum() / 1e6)


# ---------------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------------
def otsu(v: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample (maximises the between-class variance)."""
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    h, e = np.histogram(v, bins=bins)
    c = (e[:-1] + e[1:]) / 2
    p = h / h.sum()
    w0, m = np.cumsum(p), np.cumsum(p * c)
    with np.errstate(divide="ignore", invalid="ignore"):
        sb = (m[-1] * w0 - m) ** 2 / (w0 * (1 - w0))
    sb[~np.isfinite(sb)] = -1
    return float(c[int(np.argmax(sb))])


def kmeans_water(bands: dict[str, np.ndarray], valid: np.ndarray, seed: int, sample: int = 200_000) -> np.ndarray:
    """Plain k-means (k = 3) on rs-change's default features, standardised; the cluster with the
    highest median NDWI is water.  Boolean (h, w), False where unobserved."""
    from sklearn.cluster import KMeans

    X = feature_matrix(bands, valid, default_features(list(bands))).astype(np.float64)
    mu, sd = X.mean(0), X.std(0)
    X = (X - mu) / np.where(sd > 0, sd, 1.0)
    rng = np.random.default_rng(seed)
    fit = X if len(X) <= sample else X[np.sort(rng.choice(len(X), sample, replace=False))]
    km = KMeans(3, n_init=3, random_state=seed).fit(fit)
    lab = km.predict(X)
    ndwi = spectral_index({k: v[valid] for k, v in bands.items()}, "ndwi")
    best = int(np.argmax([np.median(ndwi[lab == c]) if (lab == c).any() else -np.inf for c in range(3)]))
    out = np.zeros(valid.shape, bool)
    out[valid] = lab == best
    return out


def baselines(bands: dict[str, np.ndarray], valid: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Every baseline's water mask (boolean, False where unobserved)."""
    sub = {k: v[valid] for k, v in bands.items()}
    out: dict[str, np.ndarray] = {}

    def put(name: str, m: np.ndarray) -> None:
        full = np.zeros(valid.shape, bool)
        full[valid] = m
        out[name] = full

    ndwi = spectral_index(sub, "ndwi")
    put("NDWI > 0", ndwi > 0)
    if "swir1" in bands:
        mndwi = spectral_index(sub, "mndwi")
        put("MNDWI > 0", mndwi > 0)
        put("Otsu on MNDWI", mndwi > otsu(mndwi))
    else:
        put("Otsu on NDWI", ndwi > otsu(ndwi))
    out[KM] = kmeans_water(bands, valid, seed)
    return out


def scores(mask: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """IoU, F1, precision, recall of boolean ``mask`` against boolean ``ref`` (same pixels)."""
    tp = int((mask & ref).sum())
    fp = int((mask & ~ref).sum())
    fn = int((~mask & ref).sum())
    return {"iou": tp / max(1, tp + fp + fn), "f1": 2 * tp / max(1, 2 * tp + fp + fn),
            "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn), "water_px": int(mask.sum())}


def table(head: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, str):
            return v
        return "n/a" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:.3f}")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def score_table(res: dict[str, dict[str, float]], cols: tuple[str, ...] = ("iou", "f1", "precision", "recall")) -> str:
    names = {"iou": "IoU", "f1": "F1", "precision": "precision", "recall": "recall"}
    return table(["method", *(names[c] for c in cols), "water px"],
                 [[n, *(s[c] for c in cols), s["water_px"]] for n, s in res.items()])


# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------
def write_stack(data: Path, out: Path, roles: list[str]) -> Path:
    """A float32 GeoTIFF stack of the per-band files (nodata -99999) in ``roles`` order."""
    arrs, prof = [], None
    for r in roles:
        with rasterio.open(data / f"lsat7_2000_{NC_BANDS[r]}.tif") as ds:
            a = ds.read(1).astype(np.float32)
            a[a == ds.nodata] = -99999
            prof = ds.profile
        arrs.append(a)
    prof.update(count=len(arrs), dtype="float32", nodata=-99999, driver="GTiff")
    with rasterio.open(out, "w", **prof) as ds:
        ds.write(np.stack(arrs))
    return out


def bench_nc(data: Path, tmp: Path, seed: int) -> tuple[str, dict[str, Any]]:
    with rasterio.open(data / "strata.tif") as ds:
        strata = ds.read(1)
    text, js = [], {}
    for key, label, roles in (("5 bands", "5 bands (ETM+ 1-5)", list(NC_BANDS)[:5]),
                              ("6 bands", "6 bands (ETM+ 1-5, 7)", list(NC_BANDS))):
        stack = write_stack(data, tmp / f"nc_{len(roles)}.tif", roles)
        scene = {"date": "2000-01-01", "path": str(stack), "bands": {r: i + 1 for i, r in enumerate(roles)}}
        res, water, cfg = run_rs({"scenes": [scene], "clustering": {"k": 3, "seed": seed}}, tmp, tmp / f"out_nc_{len(roles)}")
        w = water["2000-01-01"]
        bands, valid = read_bands(scene, cfg, res.grid)
        obs = valid & (w != 255)
        truth = (strata == 6)[obs]
        out = {f"{RS} (k=3, labelling auto)": scores(w[obs] == 1, truth)}
        for name, m in baselines(bands, valid, seed).items():
            out[name] = scores(m[obs], truth)
        sub = {b: bands[b][obs] for b in ("nir", "swir1")}
        best = max(((scores(sub[b] <= t, truth)["iou"], b, t) for b in sub for t in range(5, 80)))
        out[f"(upper bound, uses the reference) {best[1].upper()} <= {best[2]}"] = scores(sub[best[1]] <= best[2], truth)
        excl = (int((~obs).sum()), int(((strata == 6) & ~obs).sum()))
        text.append(f"### NC Landsat 7, {label}\n\nscored: {int(obs.sum()):,} px observed in every band "
                    f"({int(truth.sum()):,} reference water); unobserved, excluded: {excl[0]:,} px "
                    f"({excl[1]:,} reference water)\n\n" + score_table(out))
        js[key] = {"scored_px": int(obs.sum()), "reference_water_px": int(truth.sum()), "excluded_px": excl[0],
                   "excluded_reference_water_px": excl[1], "methods": out}
    return "\n\n".join(text), js


def bench_s2(data: Path, tmp: Path, seed: int) -> tuple[str, dict[str, Any]]:
    with rasterio.open(data / S2_REF) as ds:
        ref = ds.read(1)
    scene = {"date": "2017-02-16", "path": str(data / S2_IMAGE), "sensor": "sentinel2"}
    out: dict[str, dict[str, float]] = {}
    notes = []
    for label, sc in ((f"{RS} (sensor: sentinel2)", scene),):
        res, water, cfg = run_rs({"scenes": [sc], "clustering": {"k": 3, "seed": seed}}, tmp,
                                 tmp / f"out_s2_{len(out)}")
        w = water["2017-02-16"]
        lab = (ref != 255) & (w != 255)
        out[label] = scores(w[lab] == 1, ref[lab] == 1)
        d = res.summary["dates"][0]
        notes.append(f"{label}: {d['water_km2']:.3f} km2 water in the scene ({d['water_percent_of_observed']}% of observed)")
    # baselines: the data README's calibration (TOA reflectance x 10000, no offset)
    bands, valid = read_bands({**scene, "offset": 0}, cfg, res.grid)
    lab = (ref != 255) & valid
    for name, m in baselines(bands, valid, seed).items():
        out[name] = scores(m[lab], ref[lab] == 1)
    text = (f"### Sentinel-2 Brandenburg, OSM reference\n\nscored: {int(lab.sum()):,} labelled px "
            f"({int((ref[lab] == 1).sum()):,} water); baselines on TOA reflectance without offset\n\n"
            + score_table(out, ("f1", "iou", "precision", "recall")) + "\n\n" + "\n".join(f"- {n}" for n in notes))
    return text, {"labelled_px": int(lab.sum()), "methods": out, "notes": notes}


def bench_aral(data: Path, tmp: Path, seed: int) -> tuple[str, dict[str, Any]]:
    from sklearn.cluster import KMeans

    cfg_dict = load_yaml("modis_aral.yaml")
    cfg_dict["clustering"] = {**cfg_dict.get("clustering", {}), "seed": seed}
    res, water, cfg = run_rs(cfg_dict, CONFIGS, tmp / "out_aral")
    grid = res.grid
    area = pixel_area(grid.transform, grid.crs, grid.shape)
    dates = [s.date.isoformat() for s in cfg.scenes]
    rows: dict[str, dict[str, Any]] = {"reference": {}, RS: {}}
    for i, (d, s) in enumerate(zip(dates, cfg_dict["scenes"])):
        # the article's classification, reproduced: k-means k=3 on the crop's 3 bands, darkest-NIR cluster
        with rasterio.open(cfg.resolve(s["path"])) as ds:
            raw = ds.read()[:, ARAL_CROP[0], ARAL_CROP[1]].astype(np.float64)
            assert raw.shape[1:] == grid.shape, (raw.shape, grid.shape)
        X = raw.reshape(3, -1).T
        km = KMeans(3, n_init=10, random_state=0).fit(X)
        wc = int(np.argmin(km.cluster_centers_[:, 0]))
        art = (km.labels_ == wc).reshape(grid.shape)
        rows["reference"][d] = {"px": int(art.sum()), "km2": km2_of(art, area), "article_px": ARAL_ARTICLE_PX[d]}
        sd = res.summary["dates"][i]
        rows[RS][d] = {"px": sd["water_pixels"], "km2": sd["water_km2"], "raster_px": int((water[d] == 1).sum())}
        bands, valid = read_bands(s, cfg, grid)
        for name, m in baselines(bands, valid, seed).items():
            rows.setdefault(name, {})[d] = {"px": int(m.sum()), "km2": km2_of(m, area)}
    ref_km2 = {d: rows["reference"][d]["km2"] for d in dates}
    head = ["method"] + [h for d in dates for h in (f"{d[:4]} px", f"{d[:4]} km2", f"{d[:4]} vs ref")] + ["change"]
    body = []
    for name, r in rows.items():
        line: list[Any] = [name if name != "reference" else "reference: article's k-means, geodesic area"]
        for d in dates:
            err = 100 * (r[d]["km2"] / ref_km2[d] - 1)
            r[d]["error_percent"] = err
            line += [r[d]["px"], f"{r[d]['km2']:,.0f}", f"{err:+.1f}%" if name != "reference" else "-"]
        ch = 100 * (r[dates[-1]]["km2"] / r[dates[0]]["km2"] - 1) if r[dates[0]]["km2"] else float("nan")
        r["change_percent"] = ch
        body.append(line + [f"{ch:+.1f}%"])
    mean_area = float(np.broadcast_to(area, grid.shape).mean())
    text = (f"### MODIS Aral Sea, configs/modis_aral.yaml (crop {grid.shape[0]} x {grid.shape[1]} px, "
            f"mean ground pixel {mean_area / 1e6:.4f} km2)\n\n" + table(head, body) +
            f"\n\n- article: {ARAL_ARTICLE_PX[dates[0]]:,} px -> {ARAL_ARTICLE_PX[dates[-1]]:,} px; the issue's 2023 "
            f"reference {ARAL_ISSUE_2023_KM2:,.0f} km2 (reproduced: {ref_km2[dates[-1]]:,.0f} km2); target within 12%"
            f"\n- {RS} metric chosen: " + ", ".join(f"{d['date']} {d['metric']} k={d['k']}" for d in res.summary["dates"]))
    return text, {"grid_shape": list(grid.shape), "mean_pixel_area_m2": mean_area, "methods": rows}


def bench_naip(data: Path, tmp: Path, seeds: int) -> tuple[str, dict[str, Any]]:
    base = load_yaml("naip_series.yaml")
    per_seed: dict[str, list[dict[str, float]]] = {}
    first = None
    for seed in range(seeds):
        cfg_dict = {**base, "clustering": {**base.get("clustering", {}), "seed": seed}}
        res, water, cfg = run_rs(cfg_dict, CONFIGS, tmp / f"out_naip_{seed}")
        if first is None:
            first = (res, water, cfg)
        per_seed.setdefault(RS, []).append({d["date"]: d["water_km2"] for d in res.summary["dates"]})
    res, water, cfg = first  # type: ignore[misc]
    grid = res.grid
    area = pixel_area(grid.transform, grid.crs, grid.shape)
    dates = [s.date.isoformat() for s in cfg.scenes]
    masks: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {RS: {d: (water[d] == 1, water[d] != 255) for d in dates}}
    km2: dict[str, dict[str, float]] = {RS: {d["date"]: d["water_km2"] for d in res.summary["dates"]}}
    for s, d in zip(base["scenes"], dates):
        bands, valid = read_bands(s, cfg, grid)
        for name, m in baselines(bands, valid, 0).items():
            masks.setdefault(name, {})[d] = (m, valid)
            km2.setdefault(name, {})[d] = km2_of(m, area)
        for seed in range(seeds):  # the k-means baseline's own seed spread
            kk = per_seed.setdefault(KM, [{} for _ in range(seeds)])
            kk[seed][d] = km2[KM][d] if seed == 0 else km2_of(kmeans_water(bands, valid, seed), area)
    a, mid, b = dates[0], dates[len(dates) // 2], dates[-1]
    out: dict[str, dict[str, Any]] = {}
    for name, m in masks.items():
        pers = m[a][0] & m[b][0] & m[mid][1]  # water first and last, observed in the middle
        land = ~m[a][0] & m[a][1] & ~m[b][0] & m[b][1] & m[mid][1]  # land first and last, all observed
        out[name] = {"persistent_px": int(pers.sum()),
                     "persistent_water_mid": float((m[mid][0] & pers).sum() / max(1, pers.sum())),
                     "persistent_land_px": int(land.sum()),
                     "persistent_land_mid": float((~m[mid][0] & land).sum() / max(1, land.sum())),
                     "water_km2": km2[name]}
        if name in per_seed:
            sp = {d: 100 * (max(r[d] for r in per_seed[name]) / min(r[d] for r in per_seed[name]) - 1)
                  for d in dates}
            out[name]["seed_spread_percent"] = sp
            out[name]["water_km2_by_seed"] = per_seed[name]
    head = ["method", f"water px ({a[:4]} & {b[:4]})", f"of which water in {mid[:4]}", f"land in both: land in {mid[:4]}"]
    head += [f"{d[:4]} km2" for d in dates] + [f"{d[:4]} seed spread" for d in dates]
    body = [[n, r["persistent_px"], r["persistent_water_mid"], r["persistent_land_mid"], *(r["water_km2"][d] for d in dates),
             *((f"{r['seed_spread_percent'][d]:.2f}%" if "seed_spread_percent" in r else "-") for d in dates)]
            for n, r in out.items()]
    text = (f"### NAIP Devils Lake, configs/naip_series.yaml (grid {grid.shape[0]} x {grid.shape[1]} px of {a}; "
            f"seed spread over seeds 0-{seeds - 1}, max/min - 1, target within 2%)\n\n" + table(head, body))
    return text, {"grid_shape": list(grid.shape), "seeds": seeds, "methods": out}


# ---------------------------------------------------------------------------------------------
def summary_table(js: dict[str, Any]) -> str:
    cols = [RS, "NDWI > 0", "MNDWI > 0", "Otsu on MNDWI / NDWI", KM]

    def pick(methods: dict[str, Any], col: str, f: Callable[[Any], Any]) -> Any:
        if col == RS:
            name = next((n for n in methods if n.startswith(RS)), None)
        elif col.startswith("Otsu"):
            name = next((n for n in methods if n.startswith("Otsu")), None)
        else:
            name = col if col in methods else None
        return "-" if name is None else f(methods[name])

    rows = []
    for key in ("5 bands", "6 bands"):
        if key in js.get("nc", {}):
            rows.append([f"NC Landsat {key}: F1 / IoU",
                         *(pick(js["nc"][key]["methods"], c, lambda s: f"{s['f1']:.3f} / {s['iou']:.3f}") for c in cols)])
    if "s2" in js:
        m = js["s2"]["methods"]
        rows.append(["S2 Brandenburg OSM: F1 / IoU", *(pick(m, c, lambda s: f"{s['f1']:.3f} / {s['iou']:.3f}") for c in cols)])
        extra = next((s for n, s in m.items() if n.startswith(RS) and "offset: 0" in n), None)
        if extra is not None:
            rows.append(["S2, extra: rs-change with `offset: 0`", f"{extra['f1']:.3f} / {extra['iou']:.3f}", *(["same"] * 4)])
    if "aral" in js:
        m = {k: v for k, v in js["aral"]["methods"].items() if k != "reference"}
        for d in ("2000-08-01", "2023-08-01"):
            rows.append([f"Aral {d[:4]}: km2 vs geodesic reference",
                         *(pick(m, c, lambda r: f"{r[d]['error_percent']:+.1f}%") for c in cols)])
    if "naip" in js:
        m = js["naip"]["methods"]
        rows.append(["NAIP: water 2009 & 2020 -> water in 2014", *(pick(m, c, lambda r: r["persistent_water_mid"]) for c in cols)])
        rows.append(["NAIP: land 2009 & 2020 -> land in 2014", *(pick(m, c, lambda r: r["persistent_land_mid"]) for c in cols)])
        rows.append(["NAIP: worst seed spread of a date's area",
                     *(pick(m, c, lambda r: f"{max(r['seed_spread_percent'].values()):.2f}%" if "seed_spread_percent" in r else "-")
                       for c in cols)])
    return "### Summary\n\n" + table(["reference: score", *cols], rows)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared real-data folder")
    ap.add_argument("--only", default="nc,s2,aral,naip", help="comma-separated subset of nc,s2,aral,naip")
    ap.add_argument("--seed", type=int, default=0, help="seed of the scored runs and of the k-means baseline")
    ap.add_argument("--seeds", type=int, default=5, help="NAIP: seeds 0..N-1 for the water-area spread")
    ap.add_argument("--json", help="save every number to this JSON file")
    a = ap.parse_args(argv)
    data = Path(a.data)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = set(only) - {"nc", "s2", "aral", "naip"}
    if unknown:
        ap.error(f"--only: unknown {', '.join(sorted(unknown))}; give some of nc,s2,aral,naip")
    folders = {"nc": data / "landsat_nc_labels", "s2": data / "s2_brandenburg_osm", "aral": None, "naip": None}
    yamls = {"aral": "modis_aral.yaml", "naip": "naip_series.yaml"}
    benches = {"nc": lambda d, t: bench_nc(d, t, a.seed), "s2": lambda d, t: bench_s2(d, t, a.seed),
               "aral": lambda d, t: bench_aral(d, t, a.seed), "naip": lambda d, t: bench_naip(d, t, max(1, a.seeds))}
    js: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in only:
            folder = folders[key]
            if folder is None:  # the config's own scenes
                cfg = RunConfig.from_yaml(CONFIGS / yamls[key])
                missing = [str(cfg.resolve(s.path)) for s in cfg.scenes if not cfg.resolve(s.path).exists()]
                folder = CONFIGS
            else:
                missing = [] if folder.is_dir() else [str(folder)]
            if missing:
                print(f"\n### {key}: skipped ({', '.join(missing)} not found)")
                continue
            t0 = time.perf_counter()
            sub = Path(tmp) / key
            sub.mkdir()
            text, js[key] = benches[key](folder, sub)
            js[key]["runtime_s"] = round(time.perf_counter() - t0, 1)
            print("\n" + text + f"\n\n({key}: {js[key]['runtime_s']} s)", flush=True)
    print("\n" + summary_table(js))
    if a.json:
        Path(a.json).write_text(json.dumps(js, indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
