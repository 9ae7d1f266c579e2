"""Run every config in configs/ on the shipped sample tiles and print the README's results tables.

    python benchmarks/samples.py            # print the tables
    python benchmarks/samples.py --write    # also write docs/_results.md and docs/_silhouette.md
                                            # (then python docs/build_docs.py)

Every number comes from the run's summary (the same numbers as summary.json); nothing is written
to the configs' output folders.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rs_change.config import RunConfig  # noqa: E402
from rs_change.pipeline import run  # noqa: E402


def main(write: bool = False) -> None:
    dates = ["| config | date | water km2 | water px | observed km2 | unobserved km2 | k, metric (silhouette) |",
             "|---|---|---|---|---|---|---|"]
    changes = ["| config | change | gained km2 | lost km2 | net km2 | net % | run time (summary only) |",
               "|---|---|---|---|---|---|---|"]
    sil = ["| config | date | euclidean | manhattan | chebyshev | kept |", "|---|---|---|---|---|---|"]
    for cfg_path in sorted((ROOT / "configs").glob("*.yaml")):
        t0 = time.perf_counter()
        s = run(RunConfig.from_yaml(cfg_path), write=False).summary
        dt = time.perf_counter() - t0
        for d in s["dates"]:
            sv = "" if d["silhouette"] is None else f" ({d['silhouette']:.3f})"
            dates.append(f"| `{cfg_path.name}` | {d['date']} | {d['water_km2']:,.3f} | {d['water_pixels']:,} | "
                         f"{d['observed_km2']:,.3f} | {d['unobserved_km2']:,.3f} | k={d['k']} {d['metric']}{sv} |")
            scores = {m["metric"]: m["silhouette"] for m in d.get("model_selection") or []}
            if len(scores) > 1:
                cells = " | ".join("" if scores.get(m) is None else f"{scores[m]:.3f}"
                                   for m in ("euclidean", "manhattan", "chebyshev"))
                sil.append(f"| `{cfg_path.name}` | {d['date']} | {cells} | {d['metric']} |")
        if "change" in s:
            c = s["change"]
            pct = "n/a" if c["net_percent"] is None else f"{c['net_percent']:+.1f}%"
            changes.append(f"| `{cfg_path.name}` | {c['from']} -> {c['to']} | {c['gained_km2']:,.3f} | "
                           f"{c['lost_km2']:,.3f} | {c['net_km2']:+,.3f} | {pct} | {dt:.1f} s |")
    results = "\n".join(dates) + "\n\n" + "\n".join(changes) + "\n"
    silhouettes = "\n".join(sil) + "\n"
    print(results)
    print(silhouettes)
    if write:
        (ROOT / "docs" / "_results.md").write_text(results)
        (ROOT / "docs" / "_silhouette.md").write_text(silhouettes)


if __name__ == "__main__":
    main("--write" in sys.argv[1:])
