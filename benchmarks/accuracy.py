"""Water-mask accuracy of rs-change and of simple baselines against a reference raster.

Not part of the test suite.  Run from the repository root:

    python benchmarks/accuracy.py [--data ../shared/data/landsat_nc_labels] [--seed 0]

Scene: Landsat 7 ETM+ 2000 over Raleigh NC (one file per band, 8-bit DNs), reference: the 1996
land-cover map ``strata.tif`` (class 6 = water).  Two stacks are scored, because band 7's file
has a smaller footprint than the others (a pixel is observed only when every band is):

* ``6 bands``: ETM+ 1, 2, 3, 4, 5, 7 (135,092 observed px, 1,785 reference water px);
* ``5 bands``: ETM+ 1-5 without band 7 (183,418 px, 2,843 water px); band 7 carries no water index.

Methods, all on the same observed pixels: rs-change (``fit_date`` + ``classify_block``, k = 3,
default labelling), NDWI > 0, MNDWI > 0, Otsu's threshold on MNDWI, plain k-means k = 3 with the
highest-NDWI cluster as water, and (an upper bound that uses the reference, not a method) the
best single threshold on one band.  Prints a markdown table: IoU, F1, precision, recall.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import rasterio

from rs_change.clustering import KMeans, apply_scaler, fit_scaler
from rs_change.config import RunConfig
from rs_change.features import feature_matrix, spectral_index
from rs_change.labelling import otsu_threshold
from rs_change.pipeline import build_source, classify_block, fit_date, reference_grid

ROOT = Path(__file__).resolve().parents[1]
BANDS = {"blue": 10, "green": 20, "red": 30, "nir": 40, "swir1": 50, "swir2": 70}


def write_stack(data: Path, out: Path, roles: list[str]) -> Path:
    """A float32 GeoTIFF stack of the per-band files (nodata -99999) in ``roles`` order."""
    arrs, prof = [], None
    for r in roles:
        with rasterio.open(data / f"lsat7_2000_{BANDS[r]}.tif") as ds:
            a = ds.read(1).astype(np.float32)
            a[a == ds.nodata] = -99999
            prof = ds.profile
        arrs.append(a)
    prof.update(count=len(arrs), dtype="float32", nodata=-99999, driver="GTiff")
    with rasterio.open(out, "w", **prof) as ds:
        ds.write(np.stack(arrs))
    return out


def scores(mask: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """IoU, F1, precision, recall of boolean ``mask`` against boolean ``ref`` (same shape)."""
    tp = int((mask & ref).sum())
    fp = int((mask & ~ref).sum())
    fn = int((~mask & ref).sum())
    return {"iou": tp / max(1, tp + fp + fn), "f1": 2 * tp / max(1, 2 * tp + fp + fn),
            "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn), "pixels": int(mask.sum())}


def evaluate(stack: Path, roles: list[str], strata: np.ndarray, seed: int = 0) -> dict[str, dict[str, float]]:
    """Scores of every method on one stack (pixels observed in every band only)."""
    cfg = RunConfig.from_dict({"scenes": [{"date": "2000-01-01", "path": str(stack),
                                           "bands": {r: i + 1 for i, r in enumerate(roles)}}],
                               "clustering": {"k": 3, "seed": seed}})
    src = build_source(cfg.scenes[0], cfg)
    ref = reference_grid(cfg, [src])
    dm = fit_date(src, ref, None, cfg)
    with src.open(ref, "bilinear") as rd:
        bands, valid = rd.read()
    _, water = classify_block(dm, bands, valid)
    truth = (strata == 6)[valid]
    # unobserved (nodata in any band of the stack) is neither land nor water: excluded, counted
    evaluate.excluded = (int((~valid).sum()), int(((strata == 6) & ~valid).sum()))
    out = {"rs-change (k=3, labelling auto)": scores(water[valid] == 1, truth)}
    sub = {k: v[valid] for k, v in bands.items()}
    ndwi = spectral_index(sub, "ndwi")
    mndwi = spectral_index(sub, "mndwi")
    out["NDWI > 0"] = scores(ndwi > 0, truth)
    out["MNDWI > 0"] = scores(mndwi > 0, truth)
    out["Otsu on MNDWI"] = scores(mndwi > otsu_threshold(mndwi), truth)
    X = feature_matrix(bands, valid, dm.names)
    off, sc = fit_scaler(X)
    km = KMeans(3, random_state=seed, sample_size=None).fit(apply_scaler(X, off, sc))
    best = int(np.argmax([np.median(ndwi[km.labels_ == c]) for c in range(3)]))
    out["k-means k=3, highest-NDWI cluster"] = scores(km.labels_ == best, truth)
    oracle = max(((scores(sub[b] <= t, truth)["iou"], b, t) for b in ("nir", "swir1") for t in range(5, 80)))
    r = scores(sub[oracle[1]] <= oracle[2], truth)
    out[f"(upper bound, uses the reference) best single threshold {oracle[1].upper()} <= {oracle[2]}"] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "landsat_nc_labels"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    data = Path(a.data)
    with rasterio.open(data / "strata.tif") as ds:
        strata = ds.read(1)
    with tempfile.TemporaryDirectory() as tmp:
        for label, roles in (("5 bands (ETM+ 1-5)", list(BANDS)[:5]), ("6 bands (ETM+ 1-5, 7)", list(BANDS))):
            res = evaluate(write_stack(data, Path(tmp) / "stack.tif", roles), roles, strata, a.seed)
            ex = evaluate.excluded
            print(f"\n### {label}\n\nscored: every pixel observed in all bands of the stack; excluded as unobserved: "
                  f"{ex[0]:,} px, of which {ex[1]:,} are reference water\n")
            print("| method | IoU | F1 | precision | recall | water px |")
            print("|---|---|---|---|---|---|")
            for name, s in res.items():
                print(f"| {name} | {s['iou']:.3f} | {s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | {s['pixels']} |")


if __name__ == "__main__":
    main()
