"""Remote benchmark: what a run over HTTP costs against the same run on local files (issue 18).

Builds (once, cached under ``--cache``, default /tmp/rs-change-remote) the NAIP-size pair of
``benchmarks/scale.py`` (the 2009 and 2020 sample tiles upsampled 8x, ~7,500 x 5,800 x 4, 0.625 m)
as Cloud-Optimized GeoTIFFs with overviews (GDAL's COG driver: deflate, 512 x 512 tiles,
overviews 2x to 16x, average), serves them from a loopback HTTP server with Range support
(``tests/loopback.py``, which logs every byte of body it sends), and runs the same summary-only
run (``rs_change.pipeline.run(cfg, write=False)``: pass 1, pass 2, the summary; no outputs) over
the local files and over their URLs, in this process, ``--repeat`` times each.

Reported per run: wall time; for the remote run the bytes the server sent during set-up and pass 1
(up to the moment the last date's model is fitted, from the run's progress callback) and in the
whole run, against the size of the two files, and the number of requests. The summary numbers of
the two runs are checked to be equal.

Usage::

    python benchmarks/remote.py             # table on stdout (markdown)
    python benchmarks/remote.py --repeat 5

Not part of the test suite (tests/test_remote.py checks the same bound on the sample tiles).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scale import SAMPLES, upsample  # noqa: E402
from tests.loopback import LoopbackServer  # noqa: E402


def build(cache: Path) -> dict[str, Path]:
    """The NAIP-size pair as COGs with overviews (built once)."""
    import rasterio
    from rasterio.shutil import copy

    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for date, src in SAMPLES.items():
        cog = cache / f"naip8x_{date}.cog.tif"
        if not cog.exists():
            plain = upsample(src, cache / f"naip8x_{date}.tif", 8)
            tmp = cog.with_suffix(".part.tif")
            with rasterio.open(plain) as ds:
                copy(ds, tmp, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=512, OVERVIEW_RESAMPLING="AVERAGE",
                     NUM_THREADS=2)
            tmp.replace(cog)
            plain.unlink()
        out[date] = cog
    return out


def config(paths: dict[str, str]):
    from rs_change.config import RunConfig

    return RunConfig.from_dict({"scenes": [{"date": d, "path": p, "sensor": "naip"} for d, p in paths.items()],
                                "clustering": {"k": 3, "metric": "euclidean", "seed": 0}})


def numbers(summary: dict) -> str:
    s = json.loads(json.dumps(summary))
    for d in s["dates"]:
        d.pop("path", None)
    return json.dumps(s, sort_keys=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rs-change-remote"))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    from rs_change.pipeline import run

    files = build(a.cache)
    size = sum(p.stat().st_size for p in files.values())
    for p in files.values():  # into the page cache: both runs are timed on reading, not on the disk
        p.read_bytes()
    rows = []
    local_times, remote_times = [], []
    local_summary = None
    for _ in range(a.repeat):
        t = time.perf_counter()
        local_summary = run(config({d: str(p) for d, p in files.items()}), write=False).summary
        local_times.append(time.perf_counter() - t)
    remote_summary = None
    with LoopbackServer(a.cache) as srv:
        for i in range(a.repeat):
            srv.reset_log()
            at_fit: list[int] = []

            def progress(stage: str, done: int, total: int) -> None:
                if stage == "fit" and done == total:
                    at_fit.append(srv.bytes_sent())

            # a fresh server path per repeat would defeat GDAL's cache the same way: the URLs
            # carry the repeat number as a query, so no repeat is answered from the last one's cache
            urls = {d: srv.url(p.name) + f"?repeat={i}" for d, p in files.items()}
            t = time.perf_counter()
            remote_summary = run(config(urls), write=False, progress=progress).summary
            remote_times.append(time.perf_counter() - t)
            rows.append((at_fit[0], srv.bytes_sent(), len(srv.log)))
    same = numbers(local_summary) == numbers(remote_summary)
    fit_bytes, total_bytes, requests = rows[-1]
    print(f"NAIP-size COG pair: {', '.join(p.name for p in files.values())}, {size / 1e6:.1f} MB in all; "
          f"{a.repeat} runs each, summary only")
    print()
    print("| run | wall s (median, min-max) | bytes fetched | share of the files | requests |")
    print("|---|---|---|---|---|")
    print(f"| local files | {statistics.median(local_times):.2f} ({min(local_times):.2f}-{max(local_times):.2f}) | - | - | - |")
    print(f"| URLs (loopback HTTP), set-up + pass 1 | | {fit_bytes / 1e6:.1f} MB | {100 * fit_bytes / size:.1f}% | |")
    print(f"| URLs (loopback HTTP), whole run | {statistics.median(remote_times):.2f} ({min(remote_times):.2f}-"
          f"{max(remote_times):.2f}) | {total_bytes / 1e6:.1f} MB | {100 * total_bytes / size:.1f}% | {requests} |")
    print()
    print(f"same summary numbers: {'yes' if same else 'NO'}; water km2 "
          f"{[float(d['water_km2']) for d in remote_summary['dates']]}")


if __name__ == "__main__":
    main()
