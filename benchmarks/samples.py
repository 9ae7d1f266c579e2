"""Run every config in configs/ on the shipped sample tiles and print the README's results table.

    python benchmarks/samples.py            # summary only (nothing written)

Each row comes from the run's summary (the same numbers as summary.json).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rs_change.config import RunConfig  # noqa: E402
from rs_change.pipeline import run  # noqa: E402


def main() -> None:
    print("| config | date | water km2 | water px | observed km2 | unobserved km2 | k, metric (silhouette) |")
    print("|---|---|---|---|---|---|---|")
    changes = []
    for cfg_path in sorted((ROOT / "configs").glob("*.yaml")):
        t0 = time.perf_counter()
        s = run(RunConfig.from_yaml(cfg_path), write=False).summary
        dt = time.perf_counter() - t0
        for d in s["dates"]:
            sil = "" if d["silhouette"] is None else f" ({d['silhouette']:.3f})"
            print(f"| `{cfg_path.name}` | {d['date']} | {d['water_km2']:,.3f} | {d['water_pixels']:,} | "
                  f"{d['observed_km2']:,.3f} | {d['unobserved_km2']:,.3f} | k={d['k']} {d['metric']}{sil} |")
        if "change" in s:
            c = s["change"]
            pct = "n/a" if c["net_percent"] is None else f"{c['net_percent']:+.1f}%"
            changes.append(f"| `{cfg_path.name}` | {c['from']} -> {c['to']} | {c['gained_km2']:,.3f} | "
                           f"{c['lost_km2']:,.3f} | {c['net_km2']:+,.3f} | {pct} | {dt:.1f} s |")
    print()
    print("| config | change | gained km2 | lost km2 | net km2 | net % | run time (summary only) |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(changes))


if __name__ == "__main__":
    main()
