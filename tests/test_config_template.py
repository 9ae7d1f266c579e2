"""``rs-change init``'s template is generated from the config models: it parses to the models'
defaults, names every key with its description, and `rs-change validate` accepts it where the
sample tiles are."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rs_change import defaults
from rs_change.cli import main
from rs_change.config import AoiConfig, QaConfig, RunConfig, SceneConfig, template

from .conftest import SAMPLE


def _models() -> dict[str, type]:
    out: dict[str, type] = {"aoi": AoiConfig, "qa": QaConfig, "scenes": SceneConfig}
    for name, f in RunConfig.model_fields.items():
        if hasattr(f.default, "model_fields"):  # grid, clustering, labelling, output, compute
            out[name] = type(f.default)
    return out


def test_template_is_the_models_defaults() -> None:
    cfg = RunConfig.from_text(template())
    assert [str(s.date) for s in cfg.scenes] == ["2009-08-18", "2020-08-31"]
    assert cfg.model_dump() == RunConfig(scenes=cfg.scenes).model_dump()  # every section at its defaults
    assert cfg.clustering.k == defaults.K and cfg.clustering.sample_size == defaults.SAMPLE_SIZE
    assert cfg.clustering.tol == defaults.TOL and cfg.grid.resampling == defaults.RESAMPLING


def test_template_names_every_key_with_its_description() -> None:
    text = template()
    for section, model in _models().items():
        for name, f in model.model_fields.items():
            if f.exclude:
                continue
            assert f"{name}:" in text, f"{section}.{name} missing"
            first_words = " ".join((f.description or "").split()[:4])
            assert first_words in " ".join(text.replace("#", " ").split()), f"{section}.{name}: description missing"


def test_optional_keys_are_commented_out_with_an_example() -> None:
    text = template()
    assert "\n# aoi:\n" in text and "#   # bbox: [-98.95, 47.0, -98.9, 47.03]" in text
    # uncommenting the aoi section with its bbox gives a valid config with that area of interest
    head, tail = text.split("\n# aoi:\n")  # (the stac section above has a bbox of its own)
    on = head + "\naoi:\n" + tail.replace("#   # bbox:", "  bbox:", 1).replace("#   crs: EPSG:4326", "  crs: EPSG:4326", 1)
    assert RunConfig.from_text(on).aoi.bbox == (-98.95, 47.0, -98.9, 47.03)
    assert yaml.safe_load(text)["grid"] == {"resampling": defaults.RESAMPLING}


@pytest.mark.skipif(not (SAMPLE / "naip").is_dir(), reason="sample tiles not present")
def test_init_then_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(SAMPLE / "naip", tmp_path / "sample_tiles" / "naip")
    cfg = tmp_path / "run.yaml"
    assert main(["init", str(cfg)]) == 0
    assert cfg.read_text() == template()
    assert main(["validate", str(cfg)]) == 0
    assert "valid (2 date(s)" in capsys.readouterr().out
