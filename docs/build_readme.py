"""Assemble README.md from docs/_head.md and the topic pages in docs/ (run after re-measuring).

    python docs/build_readme.py [--results results.md] [--silhouette silhouette.md]

Tables marked RESULTS_TABLE / SILHOUETTE_TABLE are filled from files written by
``benchmarks/samples.py``; CONFIG_TABLE is generated from the pydantic config models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOPICS = ["area.md", "clustering.md", "labelling.md", "modis.md", "products.md", "scale.md", "reliability.md", "api.md"]


def config_table() -> str:
    from pydantic import BaseModel

    from rs_change import config as C

    def rows(model: type, prefix: str) -> list[tuple[str, str, str, str]]:
        out = []
        for name, f in model.model_fields.items():  # type: ignore[attr-defined]
            if name == "base_dir":
                continue
            ann = f.annotation
            args = getattr(ann, "__args__", ()) or (ann,)
            sub = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            key = f"{prefix}{name}"
            if name == "scenes":
                out.append((key, "list", "required", "One entry per date; keys below."))
                out += rows(C.SceneConfig, "scenes[].")
                continue
            if sub:
                out += rows(sub[0], key + ".")
                continue
            default = "required" if f.is_required() else repr(f.default)
            t = str(ann).replace("typing.", "").replace("datetime.", "").replace("<class '", "").replace("'>", "")
            out.append((key, t, default, f.description or ""))
        return out

    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for k, t, d, m in rows(C.RunConfig, ""):
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines.append(f"| `{k}` | {esc(t)} | {esc(d)} | {esc(m)} |")
    return "\n".join(lines)


def demote(text: str) -> str:
    out = []
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and line.startswith("#"):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=Path, default=ROOT / "docs" / "_results.md")
    ap.add_argument("--silhouette", type=Path, default=ROOT / "docs" / "_silhouette.md")
    a = ap.parse_args()
    head = (ROOT / "docs" / "_head.md").read_text()
    head = head.replace("RESULTS_TABLE", a.results.read_text().strip())
    head = head.replace("SILHOUETTE_TABLE", a.silhouette.read_text().strip())
    head = head.replace("CONFIG_TABLE", config_table())
    parts = [head.rstrip()]
    for name in TOPICS:
        p = ROOT / "docs" / name
        if p.exists():
            body = p.read_text().strip()
            if "CLUSTERING_TABLE" in body:  # the benchmark's own results file, without its title
                res = (ROOT / "benchmarks" / "clustering_results.md").read_text().split("\n", 1)[1]
                body = body.replace("CLUSTERING_TABLE", res.replace("## ", "### ").strip())
            # pages start with "# Title"; one that starts at "## " is already at README level
            parts.append(body if body.startswith("## ") else demote(body))
    (ROOT / "README.md").write_text("\n\n".join(parts) + "\n")
    print(f"wrote {ROOT / 'README.md'}")


if __name__ == "__main__":
    main()
