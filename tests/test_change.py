"""Many-date change products: frequency, JRC-style series classes, consecutive transitions."""

from __future__ import annotations

import numpy as np
import pytest

from rs_change.change import (
    LOST_WATER, NEVER_WATER, NEW_WATER, NOT_OBSERVED, PERMANENT_WATER, SEASONAL_WATER, SERIES_CLASSES,
    SeriesAccumulator, change_map, series_block, series_classes, water_frequency,
)

U = 255


def _m(*rows):
    return [np.array(r, np.uint8) for r in rows]


def test_change_map_codes():
    assert change_map(np.array([0, 1, 0, 1, U, 0], np.uint8), np.array([0, 1, 1, 0, 1, U], np.uint8)).tolist() == [0, 1, 2, 3, U, U]


def test_frequency_counts_only_observed_dates():
    # pixel: water on 1 of 3 observed | 2 of 2 observed (one date unobserved) | never observed | land
    masks = _m([1, 1, U, 0], [0, U, U, 0], [0, 1, U, 0])
    pct, water, obs = water_frequency(masks)
    assert pct.tolist() == [33, 100, 255, 0]
    assert water.tolist() == [1, 2, 0, 0]
    assert obs.tolist() == [3, 2, 0, 3]


def test_frequency_rounds_half_up():
    masks = _m([1, 1], [1, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0])  # 2/8 = 25 %, 1/8 = 12.5 %
    assert water_frequency(masks)[0].tolist() == [25, 13]


def test_series_classes_definitions():
    masks = _m(
        # never perm  new  lost seas  unobs  new(unobserved middle)  perm(one obs)  seasonal (1,0,1)
        [0, 1, 0, 1, 0, U, 0, U, 1],
        [0, 1, 1, 0, 1, U, U, U, 0],
        [0, 1, 1, 0, 0, U, 1, 1, 1],
    )
    assert series_classes(masks).tolist() == [
        NEVER_WATER, PERMANENT_WATER, NEW_WATER, LOST_WATER, SEASONAL_WATER, NOT_OBSERVED, NEW_WATER, PERMANENT_WATER,
        SEASONAL_WATER,
    ]


def test_series_with_two_dates_matches_change_map():
    rng = np.random.default_rng(1)
    a = rng.choice(np.array([0, 1, U], np.uint8), size=(30, 30))
    b = rng.choice(np.array([0, 1, U], np.uint8), size=(30, 30))
    s = series_classes([a, b])
    c = change_map(a, b)
    both = (a != U) & (b != U)
    # observed on both dates: the series classes are the change classes
    assert np.array_equal(s[both & (c == 2)], np.full((both & (c == 2)).sum(), NEW_WATER, np.uint8))
    assert np.array_equal(s[both & (c == 3)], np.full((both & (c == 3)).sum(), LOST_WATER, np.uint8))
    assert (s[both & (c == 1)] == PERMANENT_WATER).all() and (s[both & (c == 0)] == NEVER_WATER).all()
    assert ((s == NOT_OBSERVED) == ((a == U) & (b == U))).all()


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        series_classes([np.zeros((2, 2), np.uint8), np.zeros((3, 2), np.uint8)])
    with pytest.raises(ValueError, match="shape"):
        water_frequency([np.zeros((2, 2), np.uint8), np.zeros((3, 2), np.uint8)])


def test_series_block_areas_and_blocks_add_up():
    """Stats of two half blocks add up to those of the whole, with known areas (pixel area 25 m2)."""
    rng = np.random.default_rng(3)
    masks = [rng.choice(np.array([0, 1, U], np.uint8), p=[0.5, 0.4, 0.1], size=(8, 10)) for _ in range(4)]
    pa = np.full((8, 1), 25.0)
    inside = np.ones((8, 10), bool)
    inside[:, 0] = False
    whole = series_block(masks, pa, inside)
    top = series_block([m[:4] for m in masks], pa[:4], inside[:4])
    bot = series_block([m[4:] for m in masks], pa[4:], inside[4:])
    np.testing.assert_allclose(top.class_stats + bot.class_stats, whole.class_stats)
    np.testing.assert_allclose(top.transition_stats + bot.transition_stats, whole.transition_stats)
    # every inside pixel is in exactly one series class; 25 m2 each
    assert whole.class_stats[:, 0].sum() == inside.sum()
    assert whole.class_stats[:, 1].sum() == 25.0 * inside.sum()
    cls = series_classes(masks)
    for j, code in enumerate(SERIES_CLASSES):
        assert whole.class_stats[j, 0] == ((cls == code) & inside).sum()
    # consecutive transitions: pair i counts the change map of dates i, i+1
    assert len(whole.transitions) == 3
    for i in range(3):
        c = change_map(masks[i], masks[i + 1])
        assert whole.transition_stats[i, 2, 0] == ((c == 2) & inside).sum()  # gained
        assert whole.transition_stats[i, 3, 1] == 25.0 * ((c == 3) & inside).sum()  # lost


def test_accumulator_summary_numbers():
    # 1 pixel = 1e6 m2 = 1 km2 so that the numbers are readable
    masks = _m([0, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1])
    acc = SeriesAccumulator(["2000-01-01", "2001-01-01", "2002-01-01"])
    acc.add(series_block(masks, np.full(4, 1e6)))
    acc.add(None)
    t = acc.transitions()
    assert [(x["from"], x["to"]) for x in t] == [("2000-01-01", "2001-01-01"), ("2001-01-01", "2002-01-01")]
    assert (t[0]["gained_km2"], t[0]["lost_km2"], t[0]["persistent_water_km2"], t[0]["net_km2"]) == (1.0, 1.0, 1.0, 0.0)
    assert (t[1]["gained_km2"], t[1]["lost_km2"], t[1]["net_km2"], t[1]["net_percent"]) == (1.0, 1.0, 0.0, 0.0)
    s = acc.series()
    assert s["classes_km2"] == {"land persistent": 0.0, "water persistent": 0.0, "water gained": 2.0, "water lost": 2.0,
                                "water seasonal": 0.0, "unobserved": 0.0}
    # frequencies 67, 67, 33, 33 -> mean 50
    assert s["mean_frequency_percent"] == 50.0
