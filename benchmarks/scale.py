"""Scale benchmark: full-size NAIP scenes, wall time and peak memory of four ways to measure them.

Builds (once, cached under ``--cache``, default /tmp/rs-change-scale) two NAIP-size scenes of
about 7,500 x 5,800 x 4 (the 2009 and 2020 sample tiles upsampled 8x, bilinear, 0.625 m) and a
pair 4 times larger (16x, ~15,000 x 11,600 x 4), then for each pair measures, each in its own
subprocess (wall time, CPU seconds of the process tree, and peak RSS of its largest process):

(a) ``floor``     decoding both scenes with rasterio only (every band, whole scene);
(b) ``baseline``  the straightforward way: read everything, scikit-learn KMeans k=3 on every
                  pixel of each date, water = the cluster with the darkest NIR, area = pixel
                  count x pixel area;
(c) ``summary``   ``rs-change run CONFIG --summary-only`` (summary.json/csv only);
(d) ``full``      ``rs-change run CONFIG`` with every default output (COGs, change, polygons).

Usage::

    python benchmarks/scale.py                 # both pairs, table on stdout (markdown)
    python benchmarks/scale.py --pairs naip    # only the NAIP-size pair
    python benchmarks/scale.py --skip-baseline # (b) takes ~30 s per NAIP-size date

Before each run the scene files are read once, so every case starts with them in the OS page
cache and is timed on decoding, not on the disk; rs-change's modules are byte-compiled once
first, as an install has them after its first run. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = {
    "2009-08-18": ROOT / "sample_tiles/naip/m_4709963_se_14_1_20090818.tif",
    "2020-08-31": ROOT / "sample_tiles/naip/m_4709963_se_14_1_20200831.tif",
}
PAIRS = {"naip": 8, "naip4x": 16}


def upsample(src: Path, dst: Path, factor: int) -> Path:
    """Write ``src`` upsampled ``factor`` times (bilinear) as a tiled deflate GeoTIFF, strip by strip."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    if dst.exists():
        return dst
    tmp = dst.with_suffix(".part.tif")
    with rasterio.open(src) as ds:
        t = ds.transform * ds.transform.scale(1.0 / factor)
        h, w = ds.height * factor, ds.width * factor
        prof = dict(driver="GTiff", width=w, height=h, count=ds.count, dtype=ds.dtypes[0], crs=ds.crs, transform=t,
                    nodata=ds.nodata, tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                    photometric="RGB" if ds.count == 3 else None, BIGTIFF="IF_SAFER")
        prof = {k: v for k, v in prof.items() if v is not None}
        with WarpedVRT(ds, crs=ds.crs, transform=t, width=w, height=h, resampling=Resampling.bilinear) as vrt, \
                rasterio.open(tmp, "w", **prof) as out:
            for r0 in range(0, h, 1024):
                win = Window(0, r0, w, min(1024, h - r0))
                out.write(vrt.read(window=win), window=win)
    os.replace(tmp, dst)
    return dst


def build(cache: Path, pair: str) -> dict[str, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    f = PAIRS[pair]
    scenes = {d: upsample(p, cache / f"{pair}_{d}.tif", f) for d, p in SAMPLES.items()}
    cfg = cache / f"{pair}.yaml"
    lines = ["scenes:"]
    for d, p in scenes.items():
        lines += [f"  - date: {d}", f"    path: {p}", "    sensor: naip"]
    lines += ["clustering: {k: 3, metric: euclidean, seed: 0}", "labelling: {method: auto}", f"output: {{dir: {cache / (pair + '_out')}}}"]
    cfg.write_text("\n".join(lines) + "\n")
    return {"config": cfg, **scenes}


# --- the cases, each run as `python scale.py --case NAME CONFIG` in a subprocess ----------------
def case_floor(cfg: Path) -> dict:
    import rasterio
    import yaml

    px = 0
    for s in yaml.safe_load(cfg.read_text())["scenes"]:
        with rasterio.open(s["path"]) as ds:
            arr = ds.read()
            px += arr.shape[1] * arr.shape[2]
            del arr
    return {"pixels": px}


def case_baseline(cfg: Path) -> dict:
    import numpy as np
    import rasterio
    import yaml
    from sklearn.cluster import KMeans

    from rs_change.area import pixel_area

    out = {}
    for s in yaml.safe_load(cfg.read_text())["scenes"]:
        with rasterio.open(s["path"]) as ds:
            arr = ds.read()
            valid = (arr != 0).any(axis=0)
            X = arr[:, valid].T.astype(np.float32)
            km = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
            water = int(np.argmin(km.cluster_centers_[:, 3]))
            pa = pixel_area(ds.transform, ds.crs, (ds.height, ds.width))
            n = int((km.labels_ == water).sum())
            out[str(s["date"])] = round(n * float(np.mean(pa)) / 1e6, 6)
    return {"water_km2": out}


def _rs_change(cfg: Path, extra: list[str]) -> dict:
    outdir = cfg.parent / (cfg.stem + ("_summary" if extra else "_full"))
    cmd = [sys.executable, "-m", "rs_change", "run", str(cfg), "-o", str(outdir), "--overwrite", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    summ = json.loads((outdir / "summary.json").read_text())
    return {"water_km2": {d["date"]: d["water_km2"] for d in summ["dates"]}, "files": sorted(p.name for p in outdir.iterdir())}


CASES = {
    "floor": case_floor,
    "baseline": case_baseline,
    "summary": lambda cfg: _rs_change(cfg, ["--summary-only"]),
    "full": lambda cfg: _rs_change(cfg, []),
}
LABELS = {"floor": "(a) decode only (rasterio)", "baseline": "(b) read all + sklearn KMeans",
          "summary": "(c) rs-change run --summary-only", "full": "(d) rs-change run (all outputs)"}


def warm(cfg: Path) -> None:
    """Read the scene files once, so every case starts with them in the OS page cache (a case run
    after the baseline's 4 GB, or after the machine reclaimed the cache, would otherwise read
    them from disk and be timed on the disk, not on the decoding)."""
    import yaml

    for s in yaml.safe_load(cfg.read_text())["scenes"]:
        with open(s["path"], "rb") as f:
            while f.read(16 << 20):
                pass


def byte_compile() -> None:
    """Byte-compile rs-change's modules once, as ``pip install`` does for a regular install and
    Python does at a first run: where ``PYTHONDONTWRITEBYTECODE`` is set (our benchmark machine)
    an editable install would otherwise compile its ~20,000 lines again in every case (~0.12 s).
    """
    import compileall

    import rs_change

    compileall.compile_dir(Path(rs_change.__file__).parent, quiet=1)


def measure(case: str, cfg: Path) -> dict:
    """Run one case in a fresh process; wall time and peak RSS (largest process, incl. children)."""
    warm(cfg)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "--case", case, str(cfg)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    info = json.loads(p.stdout.strip().splitlines()[-1])
    info["wall_s"] = wall
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("config", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    ap.add_argument("--cache", default="/tmp/rs-change-scale", help="where the big scenes are built (default %(default)s)")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES), help="cases to run (default: all)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--baseline-4x", action="store_true", help="also run (b) on the 4x pair (~12 GB of RAM, minutes)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of every case (the baseline runs in the first only); the fastest run of each case is reported")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if a.case:
        import resource

        res = CASES[a.case](Path(a.config))
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        res["peak_rss_mb"] = max(me.ru_maxrss, kids.ru_maxrss) / 1024.0
        # CPU seconds of every thread of the case (user + system), its rs-change process included:
        # on a shared machine these move much less than the wall time
        res["cpu_s"] = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        print(json.dumps(res))
        return
    byte_compile()
    results = {}
    for pair in a.pairs:
        t = time.perf_counter()
        paths = build(Path(a.cache), pair)
        sys.stderr.write(f"{pair}: scenes ready in {time.perf_counter() - t:.1f} s\n")
        cases = [c for c in a.cases
                 if not (c == "baseline" and (a.skip_baseline or (pair == "naip4x" and not a.baseline_4x)))]
        runs: dict[str, list[dict]] = {c: [] for c in cases}
        # in rounds, every case once per round (the baseline in the first only: it is ~30x the
        # floor), so that a slow spell of a shared machine slows every case, not one
        for r in range(a.repeat):
            for case in cases:
                if case == "baseline" and r > 0:
                    continue
                runs[case].append(measure(case, paths["config"]))
                sys.stderr.write(f"  round {r + 1}: {case}: {runs[case][-1]['wall_s']:.2f} s, "
                                 f"{runs[case][-1]['cpu_s']:.2f} CPU s, {runs[case][-1]['peak_rss_mb']:.0f} MB\n")
        for case in cases:
            best = dict(min(runs[case], key=lambda x: x["wall_s"]))
            best["peak_rss_mb"] = max(x["peak_rss_mb"] for x in runs[case])
            best["runs_wall_s"] = [round(x["wall_s"], 3) for x in runs[case]]
            best["cpu_s"] = min(x["cpu_s"] for x in runs[case])
            results[(pair, case)] = best
    import rasterio

    print("| pair | scene size (per date) | case | wall s | x (a) | CPU s | peak RSS MB |")
    print("|---|---|---|---:|---:|---:|---:|")
    for pair in a.pairs:
        with rasterio.open(build(Path(a.cache), pair)["2009-08-18"]) as ds:
            size = f"{ds.width} x {ds.height} x {ds.count}"
        floor = results[(pair, "floor")]["wall_s"] if (pair, "floor") in results else float("nan")
        for case in CASES:
            r = results.get((pair, case))
            if r is None:
                continue
            print(f"| {pair} | {size} | {LABELS[case]} | {r['wall_s']:.2f} | {r['wall_s'] / floor:.2f} | {r['cpu_s']:.2f} "
                  f"| {r['peak_rss_mb']:.0f} |")
    for pair in a.pairs:
        for case in ("baseline", "summary"):
            r = results.get((pair, case))
            if r and "water_km2" in r:
                print(f"\n{pair} {case} water_km2: {r['water_km2']}", end="")
    print()
    if a.json:
        Path(a.json).write_text(json.dumps({f"{p}/{c}": v for (p, c), v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
