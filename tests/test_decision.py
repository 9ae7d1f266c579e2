"""rs_change.decision: the water decision stated once, and every path (numpy reference, lookup
tables, compiled loop; with and without cluster ids) giving its water mask and water fraction
byte for byte, for every kind of decision and every (level, need) pair."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from rs_change import decision, kernels, water
from rs_change.decision import Decision, decision_of
from rs_change.features import feature_matrix
from rs_change.labelling import Labeller, WaterRule
from rs_change.sensors import raw_to_bands

from .conftest import fit_synthetic


def test_levels_against_needs_every_pair() -> None:
    # a pixel is water when its level reaches its group's need; need 3 is never reached
    lab = Labeller(["green", "nir", "ndwi"], WaterRule("ndwi", "nir", 0.0, 1.0, ""), fine=object(),
                   fine_water=np.array([0]), fine_dark=np.array([1]))
    dec = decision_of(SimpleNamespace(labeller=lab, water_ids=[]))
    assert dec.kind == decision.GROUPS and dec.per_pixel and dec.groups
    levels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2], np.uint8)
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])  # needs 1, 2 and 3 (never)
    assert dec.of_levels(levels, groups).tolist() == [False, True, True, False, False, True, False, False, False]
    # no fine groups: the pixel's own evidence (level 2) alone
    alone = decision_of(SimpleNamespace(labeller=replace(lab, fine=None), water_ids=[]))
    assert alone.kind == decision.LEVELS
    assert alone.of_levels(np.array([0, 1, 2], np.uint8)).tolist() == [False, False, True]
    # hand-named clusters win over the rule; without a labeller, the model's water_ids
    manual = decision_of(SimpleNamespace(labeller=replace(lab, manual=np.array([2])), water_ids=[0]))
    assert manual.kind == decision.CLUSTERS
    assert manual.of_clusters(np.array([0, 1, 2], np.uint8)).tolist() == [False, False, True]
    bare = decision_of(SimpleNamespace(labeller=None, water_ids=[0, 300]))  # 300 matches no cluster
    assert bare.of_clusters(np.array([0, 1, 2])).tolist() == [True, False, False]
    assert bare.of_clusters(np.array([0, 1, 2], np.uint8)).tolist() == [True, False, False]


def test_percent_is_bounded_by_the_decision() -> None:
    dec = decision_of(SimpleNamespace(labeller=None, water_ids=[0]))
    unmixed = np.array([0, 30, 49, 50, 51, 100, 0, 30, 49, 50, 51, 100], np.uint8)
    wet = np.array([1] * 6 + [0] * 6, np.uint8)
    assert dec.percent(wet, unmixed).tolist() == [50, 50, 50, 50, 51, 100, 0, 30, 49, 49, 49, 49]
    assert dec.percent(wet, None).tolist() == [100] * 6 + [0] * 6  # no unmixing


def test_rule_percent_is_half_water_where_the_level_says_so() -> None:
    rule = WaterRule("ndwi", "nir", 0.0, 50.0, "", land_dark=100.0, water_index=0.5, water_dark=20.0)
    index = np.array([0.0, 0.5, 0.25, 0.25, 0.6, -0.2], np.float32)
    dark = np.array([100.0, 20.0, 60.0, 62.0, 10.0, 120.0], np.float32)
    pct = rule.percent(index, dark)
    # (fi + fd) / 2: 0, 1, (0.5 + 0.5) / 2, (0.5 + 0.475) / 2, > 1 (clipped), < 0 (clipped)
    assert pct.tolist() == [0, 100, 50, 49, 100, 0]
    lev = rule.level(index, dark)
    assert np.array_equal(lev >= decision.HALF_WATER, pct >= decision.FRACTION_WATER)


def _variants(dm: Any) -> dict[str, Any]:
    wm = dm.water_model
    lab = wm.labeller
    k_fine = len(lab.fine.cluster_centers_)
    ids = np.arange(k_fine)
    # every fine group takes each need (1, 2, never) in turn: every (level, need) pair occurs
    rotated = [replace(lab, fine_water=ids[ids % 3 == r], fine_dark=ids[ids % 3 == (r + 1) % 3]) for r in range(3)]
    out = {"groups": dm, "levels": replace(dm, water_model=replace(wm, labeller=replace(lab, fine=None))),
           "manual": replace(dm, water_model=replace(wm, labeller=replace(lab, manual=np.array([0])))),
           "water_ids": replace(dm, water_model=replace(wm, labeller=None))}
    for r, rl in enumerate(rotated):
        out[f"needs rotated {r}"] = replace(dm, water_model=replace(wm, labeller=rl))
    return out


def _paths(dm: Any, raws: dict, valid: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple]:
    out = {}
    for compiled in ([True, False] if kernels.ENABLED else [False]):
        with monkeypatch.context() as m:
            m.setattr(kernels, "ENABLED", compiled)
            for clusters in (True, False):
                frac = np.zeros(valid.shape, np.uint8)
                cl, w = water.classify_raw(dm, raws, valid.copy(), clusters=clusters, fraction=frac)
                out[f"compiled={compiled} clusters={clusters}"] = (cl, w, frac)
    return out


def test_every_path_gives_the_decision_and_the_fraction_byte_for_byte(synthetic: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}")
    kinds = set()
    for name, v in _variants(dm).items():
        dec: Decision = decision_of(v)
        kinds.add(dec.kind)
        bands, observed = raw_to_bands(raws, v.source.profile, v.source.nodata)
        seen = valid & observed
        f_ref = np.zeros(valid.shape, np.uint8)
        cl_ref, w_ref = water.classify(v, bands, seen, fraction=f_ref)
        # the reference is the decision on the rows
        X = feature_matrix(bands, seen, v.names)
        assert np.array_equal(water.decide_rows(v, X), w_ref[seen] == 1), name
        # the fraction agrees with the mask: water >= 50, land < 50, unobserved 255
        assert np.array_equal(f_ref == 255, w_ref == 255), name
        assert (f_ref[w_ref == 1] >= 50).all() and (f_ref[w_ref == 0] < 50).all() and (f_ref[w_ref != 255] <= 100).all()
        if dec.per_pixel:  # the fraction is the unmixing where the decision agrees with it
            assert len(np.unique(f_ref[w_ref != 255])) > 10, name
        else:
            assert set(np.unique(f_ref).tolist()) <= {0, 100, 255}, name
        for path, (cl, w, frac) in _paths(v, raws, valid, monkeypatch).items():
            assert np.array_equal(w, w_ref), (name, path)
            assert np.array_equal(frac, f_ref), (name, path)
            if cl is not None:
                assert np.array_equal(cl, cl_ref), (name, path)
    assert kinds == {decision.GROUPS, decision.LEVELS, decision.CLUSTERS}


def test_the_compiled_loop_runs_every_kind(synthetic: Path) -> None:
    # the comparison above compares the compiled loop, not a fallback
    if not kernels.ENABLED:
        pytest.skip("the C extension is not built")
    from rs_change import lut

    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}")
    for name, v in _variants(dm).items():
        frac = np.zeros(valid.shape, np.uint8)
        got = kernels.classify_u8(v, decision_of(v), raws, valid.copy(), lut.model_tables(v, raws),
                                  water.rule_table(v, raws), True, frac)
        assert got is not None, name
