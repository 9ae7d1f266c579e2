"""rs_change.water: one water decision.  ``decide_rows`` defines it; ``classify`` applies it to a
block; every faster path of ``classify_raw`` (the compiled loop, the lookup tables, the rule table
of a summary-only run) gives ``classify``'s cluster ids and water mask bit for bit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rs_change import kernels, lut, water
from rs_change.decision import decision_of
from rs_change.features import feature_matrix
from rs_change.sensors import raw_to_bands

from .conftest import SAMPLE, fit_synthetic


def reference(dm: Any, raws: dict, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The definition: bands in physical units, then water.classify; and the observed mask."""
    bands, observed = raw_to_bands(raws, dm.source.profile, dm.source.nodata)
    seen = valid & observed
    cl, w = water.classify(dm, bands, seen)
    return cl, w, seen


def paths(dm: Any, raws: dict, valid: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple]:
    """(clusters, water) of every path classify_raw can take on these 8-bit bands."""
    out = {}
    for compiled in ([True, False] if kernels.ENABLED else [False]):
        with monkeypatch.context() as m:
            m.setattr(kernels, "ENABLED", compiled)
            for clusters in (True, False):
                out[f"compiled={compiled} clusters={clusters}"] = water.classify_raw(dm, raws, valid.copy(), clusters=clusters)
    return out


@pytest.mark.parametrize("labelling", ["{method: auto}", "{method: clusters, water: [0]}"])
def test_every_path_is_the_definition_bit_for_bit(synthetic: Path, labelling: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}", labelling)
    cl_ref, w_ref, seen = reference(dm, raws, valid)
    assert (w_ref == 1).sum() > 1000 or "clusters" in labelling  # the lake is there
    assert np.array_equal(w_ref == 255, ~seen)
    for name, (cl, w) in paths(dm, raws, valid, monkeypatch).items():
        assert np.array_equal(w, w_ref), name
        if cl is not None:
            assert np.array_equal(cl, cl_ref), name
    # and the block is the rows' decision
    X = feature_matrix(raw_to_bands(raws, dm.source.profile, dm.source.nodata)[0], seen, dm.names)
    assert np.array_equal(water.decide_rows(dm, X), w_ref[seen] == 1)


def test_tables_are_used_where_they_apply(synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the accelerations really run on this block (so the test above compares them, not the fallback)
    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}")
    assert water.rule_table(dm, raws) is not None
    dec = decision_of(dm)
    assert lut.classify_tables(dm, dec, raws, valid.copy(), water.rule_table(dm, raws)) is not None
    if kernels.ENABLED:
        ct, rt = lut.model_tables(dm, raws), water.rule_table(dm, raws)
        assert kernels.classify_u8(dm, dec, raws, valid.copy(), ct, rt, True)


def test_rule_alone_and_hand_built_models(synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}")
    wm = dm.water_model
    for variant in (replace(dm, water_model=replace(wm, labeller=replace(wm.labeller, fine=None))),  # the rule decides alone
                    replace(dm, water_model=replace(wm, labeller=None))):  # no labeller: the pixels of the water clusters
        cl_ref, w_ref, _ = reference(variant, raws, valid)
        for name, (cl, w) in paths(variant, raws, valid, monkeypatch).items():
            assert np.array_equal(w, w_ref), name
    # without a labeller, water is exactly the water clusters' pixels
    assert np.array_equal(w_ref == 1, np.isin(cl_ref, dm.water_ids))


def test_real_naip_block_every_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rs_change.config import RunConfig
    from rs_change.fit import fit_date
    from rs_change.pipeline import build_source, reference_grid

    tif = sorted((SAMPLE / "naip").glob("*.tif"))[0]
    cfg = RunConfig.from_dict({"scenes": [{"date": "2020-08-31", "path": str(tif), "sensor": "naip"}],
                               "clustering": {"k": 3, "seed": 0}})
    src = build_source(cfg.scenes[0], cfg)
    ref = reference_grid(cfg, [src])
    dm = fit_date(src, ref, None, cfg.clustering, cfg.labelling, cfg.grid.resampling)
    h, w = min(ref.height, 300), min(ref.width, 400)
    with src.open(ref, "bilinear") as rd:
        raws, valid = rd.read_raw(0, 0, h, w)
    cl_ref, w_ref, _ = reference(dm, raws, valid)
    assert (w_ref == 1).any() and (w_ref == 0).any()
    for name, (cl, wm) in paths(dm, raws, valid, monkeypatch).items():
        assert np.array_equal(wm, w_ref), name
        if cl is not None:
            assert np.array_equal(cl, cl_ref), name


def test_api_and_water_model_use_the_same_decision(synthetic: Path) -> None:
    from rs_change.api import label_water

    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}")
    bands, observed = raw_to_bands(raws, dm.source.profile, dm.source.nodata)
    seen = valid & observed
    _, w_ref = water.classify(dm, bands, seen)
    img = np.stack([raws[r] for r in ("red", "green", "blue", "nir")])
    got = label_water(img, dm.water_model, sensor="naip", nodata=0, check=False)
    assert np.array_equal(got == 1, w_ref == 1)
    X = feature_matrix(bands, seen, dm.names)
    assert np.array_equal(dm.water_model.water_mask(X), w_ref[seen] == 1)
