"""Error-adjusted areas and accuracies (Olofsson et al. 2014): the estimator, the sampling design,
and ``rs-change sample`` / ``rs-change assess`` on the NAIP sample run (issue 20)."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rs_change
from rs_change.assessment import allocate, combined_area, design, estimate_area, sample_size
from rs_change.cli import main
from rs_change.outputs import verify

from .conftest import CONFIGS

# Olofsson et al. 2014, section 5, Table 8 (ha): deforestation, forest gain, stable forest, stable non-forest
PAPER_AREA = [18000, 13500, 288000, 580500]
PAPER_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------
def test_paper_section_5_example() -> None:
    r = estimate_area(PAPER_AREA, PAPER_COUNTS, z=1.96)
    assert r["area"] == pytest.approx([21158, 11686, 285770, 581386], abs=1)  # ha
    assert r["area_ci"] == pytest.approx([6158, 3756, 15510, 16282], abs=1)
    assert r["users_accuracy"] == pytest.approx([0.88, 0.73, 0.93, 0.96], abs=0.005)
    assert r["users_accuracy_ci"] == pytest.approx([0.07, 0.10, 0.04, 0.02], abs=0.005)
    assert r["producers_accuracy"] == pytest.approx([0.75, 0.85, 0.93, 0.96], abs=0.005)
    # the paper prints +-0.23 and +-0.01 for the second and fourth: misprints, its eq. 7 gives these
    assert r["producers_accuracy_ci"] == pytest.approx([0.21, 0.254, 0.03, 0.018], abs=0.005)
    assert r["overall_accuracy"] == pytest.approx(0.95, abs=0.005)
    assert r["overall_accuracy_ci"] == pytest.approx(0.02, abs=0.005)
    assert r["sample_size"] == [75, 75, 165, 325] and r["notes"] == []
    assert np.sum(r["proportions"]) == pytest.approx(1.0)
    assert rs_change.estimate_area is estimate_area  # the public name


def test_paper_sample_size_and_allocations() -> None:
    # section 5.1: expected user's accuracies 0.7, 0.6, 0.9, 0.95 and a target SE of 0.01 give n = 641
    assert sample_size(PAPER_AREA, [0.7, 0.6, 0.9, 0.95], 0.01) == 641
    assert allocate(641, PAPER_AREA, "proportional") == [13, 10, 205, 413]
    assert allocate(640, PAPER_AREA, "equal") == [160] * 4
    mins = allocate(641, PAPER_AREA, "minimum", minimum=75)
    assert mins[:2] == [75, 75] and sum(mins) == 641 and mins[2] / mins[3] == pytest.approx(288 / 580.5, rel=0.01)
    assert allocate(100, [5, 0, 95], "minimum", minimum=50) == [50, 0, 50]  # cannot afford more: equal
    assert allocate(641, PAPER_AREA, "minimum", minimum=75, capacity=[30, 1000, 1000, 1000])[0] == 30
    d = design(PAPER_AREA, ["a", "b", "c", "d"], per_class=20, capacity=[5, 100, 100, 100])
    assert d["per_class"] == [5, 20, 20, 20] and d["n"] == 65 and d["allocation"] == "equal"
    # users_accuracy replaces the guessed accuracies of eq. 13: the paper's 641 points
    d = design(PAPER_AREA, ["a", "b", "c", "d"], users_accuracy={"a": 0.7, "b": 0.6, "c": 0.9, "d": 0.95})
    assert d["n_planned"] == 641 and d["expected_users_accuracy"] == [0.7, 0.6, 0.9, 0.95]
    with pytest.raises(TypeError, match="capacty"):
        design(PAPER_AREA, ["a", "b", "c", "d"], capacty=[5, 100, 100, 100])


def test_doctests() -> None:
    import doctest

    from rs_change import assessment

    res = doctest.testmod(assessment)
    assert res.attempted >= 6 and res.failed == 0


def test_perfect_reference_gives_the_map_areas_exactly() -> None:
    counts = np.diag([50, 60, 70, 80])
    r = estimate_area(PAPER_AREA, counts)
    assert r["area"] == pytest.approx(PAPER_AREA)
    assert r["area_ci"] == [0.0] * 4
    assert r["users_accuracy"] == r["producers_accuracy"] == [1.0] * 4
    assert r["users_accuracy_ci"] == r["producers_accuracy_ci"] == [0.0] * 4
    assert r["overall_accuracy"] == 1.0 and r["overall_accuracy_ci"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5).flatmap(lambda k: st.tuples(
    st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e6)), min_size=k, max_size=k).filter(lambda a: sum(a) > 0),
    st.lists(st.lists(st.integers(0, 40), min_size=k, max_size=k), min_size=k, max_size=k))))
def test_areas_add_up_to_the_total(case) -> None:
    area, counts = case
    counts = [[c + (2 if i == j else 0) for j, c in enumerate(row)] for i, row in enumerate(counts)]  # >= 2 per row
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero, no invalid value
        r = estimate_area(area, counts)
    assert sum(r["area"]) == pytest.approx(sum(area), rel=1e-9, abs=1e-9)
    assert all(ci >= 0 for ci in r["area_ci"]) and 0 <= r["overall_accuracy"] <= 1 + 1e-12
    for j in range(len(area)):  # one class's area is the combination with weight 1 on it
        est, ci = combined_area(area, counts, [1.0 if i == j else 0.0 for i in range(len(area))])
        assert est == pytest.approx(r["area"][j], rel=1e-9, abs=1e-6)
        assert ci == pytest.approx(r["area_ci"][j], rel=1e-9, abs=1e-6)


def test_unbiased_on_simulated_maps_with_known_truth() -> None:
    """Draw many stratified samples of a map whose truth is known: the mean estimate is the true
    area (the map's own area is not) and about 95% of the intervals cover it."""
    rng = np.random.default_rng(1)
    n_pix = 40_000
    truth = rng.choice(3, size=n_pix, p=[0.6, 0.3, 0.1])
    confuse = np.array([[0.9, 0.06, 0.04], [0.10, 0.85, 0.05], [0.2, 0.10, 0.7]])  # P(map | truth)
    mapped = (rng.random(n_pix)[:, None] > np.cumsum(confuse[truth], axis=1)).sum(axis=1)
    pixel_m2 = 25.0  # equal-area pixels, the paper's setting
    true_area = np.bincount(truth, minlength=3) * pixel_m2
    map_area = np.bincount(mapped, minlength=3) * pixel_m2
    strata = [np.flatnonzero(mapped == i) for i in range(3)]
    estimates, covered = [], np.zeros(3)
    reps = 800
    for _ in range(reps):
        counts = np.zeros((3, 3))
        for i, idx in enumerate(strata):  # stratified random sample: 100 pixels of each map class
            pick = rng.choice(idx, size=100, replace=False)
            np.add.at(counts[i], truth[pick], 1)
        r = estimate_area(map_area, counts)
        estimates.append(r["area"])
        covered += np.abs(np.array(r["area"]) - true_area) <= np.array(r["area_ci"])
    est = np.array(estimates)
    se_mean = est.std(axis=0) / math.sqrt(reps)
    assert np.all(np.abs(est.mean(axis=0) - true_area) < 4 * se_mean)
    assert np.any(np.abs(map_area - true_area) > 10 * se_mean)  # the map's pixel count is biased
    assert np.all(covered / reps > 0.9) and np.all(covered / reps < 0.99)


def test_classes_without_points_or_area() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # class 2 is mapped but has no point: its row is unknown, so are areas and overall accuracy
        r = estimate_area([100, 50, 10], [[20, 1, 0], [2, 18, 0], [0, 0, 0]], classes=["a", "b", "c"])
        assert all(math.isnan(v) for v in r["area"]) and math.isnan(r["overall_accuracy"])
        assert math.isnan(r["users_accuracy"][2]) and r["users_accuracy"][0] == pytest.approx(20 / 21)
        assert any(n.startswith("c: mapped") for n in r["notes"])
        # class 2 has no map area and no point: it weighs nothing; nobody saw it, so no producer's accuracy
        r = estimate_area([100, 50, 0], [[20, 1, 0], [2, 18, 0], [0, 0, 0]])
        assert r["area"][2] == 0 and r["area_ci"][2] == 0 and sum(r["area"]) == pytest.approx(150)
        assert math.isnan(r["users_accuracy"][2]) and math.isnan(r["producers_accuracy"][2])
        assert not math.isnan(r["overall_accuracy"]) and any("no producer's accuracy" in n for n in r["notes"])
        # points in a class of no map area only give its user's accuracy
        r = estimate_area([100, 50, 0], [[20, 1, 0], [2, 18, 0], [1, 0, 3]])
        assert r["users_accuracy"][2] == 0.75 and sum(r["area"]) == pytest.approx(150)
        assert any("no map area" in n for n in r["notes"])
        # one point: an area, no interval
        r = estimate_area([100, 50], [[20, 1], [0, 1]])
        assert r["area"][1] == pytest.approx(50 + 100 / 21) and math.isnan(r["area_ci"][1])
        assert any("one sample point" in n for n in r["notes"])
    with pytest.raises(ValueError, match="2 x 2"):
        estimate_area([1, 2], [[1, 2, 3]])
    with pytest.raises(ValueError, match="sums to 0"):
        estimate_area([0, 0], [[1, 0], [0, 1]])


# ---------------------------------------------------------------------------------------------
# rs-change sample / assess on the NAIP sample run
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def naip_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("naip") / "run"
    rs_change.run(str(CONFIGS / "naip_devils_lake.yaml"), output_dir=out, overwrite=True)
    return out


@pytest.fixture
def run_dir(naip_run, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(naip_run, out)
    return out


def _label(path: Path, fn) -> None:
    """Set every point's reference to ``fn(row)`` in the GeoPackage (as QGIS would)."""
    import pyogrio

    df = pyogrio.read_dataframe(path, layer="samples")
    df["reference"] = [fn(r) for _, r in df.iterrows()]
    pyogrio.write_dataframe(df, path, layer="samples")


def test_sample_then_assess_naip(run_dir, capsys) -> None:
    import pyogrio

    assert main(["sample", str(run_dir), "--seed", "3"]) == 0
    gpkg = run_dir / "samples.gpkg"
    df = pyogrio.read_dataframe(gpkg, layer="samples")
    assert {"map_class", "reference", "lon", "lat"} <= set(df.columns) and (df["reference"] == "").all()
    assert str(df.crs.to_epsg()) == "26914" and ((df.geometry.x - 485900) % 5 == 2.5).all()  # pixel centres
    counts = df["map_class"].value_counts()
    assert counts["water lost"] == 50 and counts["land persistent"] > counts["water gained"]  # minimum, then proportional
    assert (run_dir / "samples.csv").read_text().splitlines()[0].startswith("sample_id,map_class,reference,lon,lat")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["samples"]["map"] == "change.tif" and verify(run_dir) == []
    assert "samples.gpkg" not in {f["name"] for f in manifest["files"]}  # the analyst's file
    assert main(["sample", str(run_dir)]) == 2 and "--overwrite" in capsys.readouterr().err
    first = gpkg.read_bytes()
    assert main(["sample", str(run_dir), "--seed", "3", "--overwrite"]) == 0 and gpkg.read_bytes() == first  # same seed

    # every reference = the map class (3 left blank): accuracy 1, the map's areas, zero-width intervals
    _label(gpkg, lambda r: "" if r["sample_id"] <= 3 else r["map_class"].upper())
    assert main(["assess", str(run_dir)]) == 0
    acc = json.loads((run_dir / "accuracy.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    ch = summary["change"]
    assert acc["overall_accuracy"] == 1 and acc["samples"]["skipped_blank"] == 3
    for name, key in [("land persistent", "persistent_land_km2"), ("water persistent", "persistent_water_km2"),
                      ("water gained", "gained_km2"), ("water lost", "lost_km2")]:
        assert acc["area_km2"][name] == pytest.approx(ch[key], abs=1.5e-6)
        assert acc["map_area_km2"][name] == pytest.approx(ch[key], abs=1.5e-6)
        assert acc["area_km2_ci"][name] == 0 and ch[f"{key}_ci"] == 0 and ch[f"{key}_adjusted"] == pytest.approx(ch[key], abs=1.5e-6)
    assert ch["accuracy"]["overall_accuracy"] == 1 and ch["net_km2_ci"] == 0
    assert verify(run_dir) == []  # summary.json, accuracy.* and report.html are in the manifest again
    assert {"accuracy.json", "accuracy.csv", "summary.json"} <= {f["name"] for f in json.loads((run_dir / "manifest.json").read_text())["files"]}
    assert "Error-adjusted areas" in (run_dir / "report.html").read_text()
    out = capsys.readouterr().out
    assert "overall accuracy 1.000" in out

    # a few points labelled otherwise: intervals open, as the estimator says
    assert main(["assess", str(run_dir)]) == 2 and "--overwrite" in capsys.readouterr().err
    changed = {4: "water gained", 5: "land persistent", 6: "water persistent"}
    _label(gpkg, lambda r: changed.get(r["sample_id"], r["map_class"]) if r["sample_id"] > 3 else "")
    assert main(["assess", str(run_dir), "--overwrite"]) == 0
    acc2 = json.loads((run_dir / "accuracy.json").read_text())
    assert acc2["overall_accuracy"] < 1 and acc2["overall_accuracy_ci"] > 0
    wide = [n for n in acc2["classes"] if acc2["area_km2_ci"][n] > 0]
    assert len(wide) >= 2
    direct = estimate_area([acc2["map_area_km2"][n] for n in acc2["classes"]], acc2["error_matrix"])
    assert [acc2["area_km2_ci"][n] for n in acc2["classes"]] == pytest.approx(direct["area_ci"], abs=1e-6)
    assert sum(acc2["area_km2"].values()) == pytest.approx(sum(acc2["map_area_km2"].values()), abs=1e-5)
    assert json.loads((run_dir / "summary.json").read_text())["change"]["gained_km2_ci"] == acc2["area_km2_ci"]["water gained"]
    assert verify(run_dir) == []


def test_assess_rejects_unknown_names_and_a_changed_map(run_dir, capsys) -> None:
    assert main(["sample", str(run_dir), "--per-class", "20", "--seed", "1"]) == 0
    gpkg = run_dir / "samples.gpkg"
    before = (run_dir / "summary.json").read_bytes()
    assert main(["assess", str(run_dir)]) == 2 and "no labelled point" in capsys.readouterr().err  # edits not saved
    _label(gpkg, lambda r: "wtaer" if r["sample_id"] == 7 else r["map_class"])
    assert main(["assess", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'wtaer'" in err and "water gained" in err and "land persistent" in err
    # a point whose map_class no longer matches change.tif: the map changed since sampling
    _label(gpkg, lambda r: r["map_class"])
    import pyogrio

    df = pyogrio.read_dataframe(gpkg, layer="samples")
    i = df.index[df["map_class"] == "water lost"][0]
    df.loc[i, "map_class"] = "water gained"
    pyogrio.write_dataframe(df, gpkg, layer="samples")
    assert main(["assess", str(run_dir)]) == 2
    assert "map changed" in capsys.readouterr().err
    assert (run_dir / "summary.json").read_bytes() == before and not (run_dir / "accuracy.json").exists()


def test_water_map_and_a_csv_labelled_elsewhere(run_dir) -> None:
    import csv

    assert main(["sample", str(run_dir), "--map", "water_2020-08-31", "--n", "120", "--allocation", "proportional"]) == 0
    with open(run_dir / "samples.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 120 and {r["map_class"] for r in rows} == {"land", "water"}
    for r in rows:
        r["reference"] = r["map_class"]
    rows[0]["reference"] = "water" if rows[0]["map_class"] == "land" else "land"
    labelled = run_dir.parent / "labelled.csv"
    with open(labelled, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["assess", str(run_dir), str(labelled), "--map", "water_2020-08-31"]) == 0
    acc = json.loads((run_dir / "accuracy.json").read_text())
    assert acc["map"] == "water_2020-08-31.tif" and acc["samples"]["labelled"] == 120
    date = json.loads((run_dir / "summary.json").read_text())["dates"][1]
    assert date["water_km2_adjusted"] == acc["area_km2"]["water"] and date["water_km2_ci"] > 0
    assert date["accuracy"]["overall_accuracy"] == acc["overall_accuracy"] < 1
