"""The compiled loops of pass 2 (rs_change._kernels via rs_change.kernels) give the numpy path's
results bit for bit: the bilinear shift, the classification (observed mask, cluster ids, rule,
fine clusters, water ids, ties), the joint-state histogram, and whole runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from rs_change import kernels, water
from rs_change.change import JointStates
from rs_change.config import RunConfig
from rs_change.pipeline import build_source, reference_grid
from rs_change.water import classify_raw
from rs_change.readers import _avoid, _axis, _lerp_strips

from .conftest import fit_synthetic, lake_scene, write_geotiff

needs_kernels = pytest.mark.skipif(not kernels.ENABLED, reason="rs_change._kernels is not built in this install")


def _c_compiler() -> str | None:
    """The C compiler an install would build the extension with (``CC``, Python's own ``CC``,
    cc, gcc, clang), or None when there is none on PATH."""
    import shlex
    import shutil
    import sysconfig

    for cc in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        exe = shlex.split(cc)[0] if cc and cc.strip() else None
        if exe and shutil.which(exe):
            return exe
    return None


def test_extension_is_built_where_a_compiler_was() -> None:
    # the README's install (pip install -e .) compiles it; CI has gcc, so the fast path is tested
    if os.environ.get("RS_CHANGE_KERNELS", "1") in ("0", "false", "no", "off"):
        pytest.skip("turned off by RS_CHANGE_KERNELS")
    if _c_compiler() is None:
        pytest.skip("no C compiler: the install falls back to the numpy path")
    assert kernels.ENABLED


@pytest.fixture
def numpy_path(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A function running ``fn(*args)`` with the compiled loops off."""
    def run(fn: Any, *args: Any, **kw: Any) -> Any:
        with monkeypatch.context() as m:
            m.setattr(kernels, "ENABLED", False)
            return fn(*args, **kw)
    return run


@needs_kernels
@pytest.mark.parametrize("fx,fy", [(0.37, 0.61), (0.0, 0.25), (0.5, 0.0), (0.999, 0.001)])
@pytest.mark.parametrize("nd", [0, 255, None])
def test_shift_is_the_numpy_shift_bit_for_bit(fx: float, fy: float, nd: Any) -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (4, 41, 53)).astype(np.uint8)
    src[src == (nd if nd is not None else -1)] = 7  # no source pixel is nodata (else: the numpy path)
    src[:, 5, 5] = 0 if nd != 0 else 1  # values that round onto nodata get moved
    src[:, 6, 6] = 255 if nd != 255 else 254
    r0 = np.arange(40)
    r1 = r0 + (fy != 0)
    c0 = np.arange(1, 52) if fx != 0 else np.arange(2, 53)
    c1 = c0 + (fx != 0)
    got = kernels.lerp_u8(src, r0, r1, c0, c1, fx, fy, nd)
    want = _avoid(_lerp_strips(src, r0, r1, c0, c1, fx, fy), nd)
    assert got is not None and got.dtype == np.uint8
    assert np.array_equal(got, want)
    if nd is not None:
        assert not (got == nd).any()


@needs_kernels
def test_shift_leaves_nodata_and_clamped_edges_to_numpy() -> None:
    src = np.full((3, 10, 10), 9, np.uint8)
    r = np.arange(9)
    assert kernels.lerp_u8(src, r, r + 1, r, r + 1, 0.3, 0.3, 0) is not None
    src[:, 4, 4] = 0  # a pixel whose every band is nodata: GDAL's renormalised weights (numpy)
    assert kernels.lerp_u8(src, r, r + 1, r, r + 1, 0.3, 0.3, 0) is None
    assert kernels.lerp_u8(src, r, r + 1, r, r + 1, 0.3, 0.3, None) is not None  # no nodata: no such pixel
    # a clamped first column (the output centre left of the raster): not consecutive
    lo, hi, i0, i1, f, _ = _axis(9, 0, -0.7, 10, True)
    assert kernels.lerp_u8(src, r, r + 1, i0, i1, f, 0.3, None) is None


@needs_kernels
def test_shifted_read_of_a_file_is_the_same_with_and_without_the_loop(tmp_path: Path, numpy_path: Any) -> None:
    img = lake_scene(90, 110, (slice(20, 60), slice(30, 80)), seed=3)
    t = Affine(1.0, 0, 500000.0, 0, -1.0, 5200000.0)
    write_geotiff(tmp_path / "a.tif", img, t, "EPSG:32614", nodata=0)
    write_geotiff(tmp_path / "b.tif", img, t * Affine.translation(0.37, -0.58), "EPSG:32614", nodata=0)
    (tmp_path / "r.yaml").write_text("scenes:\n  - {date: 2001-01-01, path: a.tif, sensor: naip}\n"
                                     "  - {date: 2002-01-01, path: b.tif, sensor: naip}\n")
    cfg = RunConfig.from_yaml(tmp_path / "r.yaml")
    srcs = [build_source(s, cfg) for s in cfg.scenes]
    ref = reference_grid(cfg, srcs)
    for window in [(0, 0, 40, 50), (20, 30, 40, 50), (50, 60, 40, 50)]:  # edges and inside
        with srcs[1].open(ref, "bilinear") as rd:
            fast = rd.read_raw(*window)
        with srcs[1].open(ref, "bilinear") as rd:
            slow = numpy_path(rd.read_raw, *window)
        for role in fast[0]:
            assert np.array_equal(fast[0][role], slow[0][role])
        assert np.array_equal(fast[1], slow[1])


@needs_kernels
@pytest.mark.parametrize("clustering,labelling", [
    ("{k: 4, metric: euclidean, seed: 0, n_init: 1}", "{method: auto}"),
    ("{k: 3, metric: manhattan, seed: 0, n_init: 1}", "{method: auto}"),
    ("{k: 5, metric: chebyshev, seed: 0, n_init: 1}", "{method: auto}"),
    ("{k: 3, metric: euclidean, seed: 0, n_init: 1}", "{method: clusters, water: [1]}"),
])
@pytest.mark.parametrize("clusters", [True, False])
def test_classification_is_the_numpy_paths(synthetic: Path, clustering: str, labelling: str, clusters: bool,
                                           numpy_path: Any) -> None:
    dm, raws, valid = fit_synthetic(synthetic, clustering, labelling)
    valid[:, 160:] = False  # outside the area of interest
    v_fast, v_slow = valid.copy(), valid.copy()
    cl_fast, w_fast = classify_raw(dm, raws, v_fast, clusters=clusters)
    cl_slow, w_slow = numpy_path(classify_raw, dm, raws, v_slow, clusters=clusters)
    assert np.array_equal(v_fast, v_slow)
    assert np.array_equal(w_fast, w_slow)
    assert (cl_fast is None) == (not clusters) and (cl_slow is None) == (not clusters)
    if clusters:
        assert np.array_equal(cl_fast, cl_slow)
    assert (w_fast[50:53, 60:70] == 255).all() and (w_fast[10:14, 10:20] != 255).all()
    assert (w_fast == 1).sum() > 1000 and (w_fast == 0).sum() > 1000


@needs_kernels
def test_ties_go_to_the_lowest_centre(synthetic: Path, numpy_path: Any) -> None:
    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}")
    km = dm.kmeans
    km.cluster_centers_ = np.vstack([km.cluster_centers_, km.cluster_centers_[[1, 0]]])  # 3 = 1, 4 = 0
    km.n_clusters = 5
    cl_fast, _ = classify_raw(dm, raws, valid.copy(), clusters=True)
    cl_slow, _ = numpy_path(classify_raw, dm, raws, valid.copy(), clusters=True)
    assert np.array_equal(cl_fast, cl_slow)
    assert set(np.unique(cl_fast)) <= {0, 1, 2, 255}  # never the later copies


@needs_kernels
@pytest.mark.parametrize("n_dates,wide", [(2, True), (2, False), (6, True)])
def test_histogram_is_bincounts(n_dates: int, wide: bool, numpy_path: Any) -> None:
    rng = np.random.default_rng(n_dates)
    js = JointStates(n_dates)
    masks = [rng.choice(np.array([0, 1, 255], np.uint8), size=(150, 70)) for _ in range(n_dates)]
    inside = rng.random((150, 70)) > 0.1
    code = js.encode(masks, inside)
    assert code.dtype == (np.uint8 if n_dates <= 5 else np.uint16)
    pa = rng.random((150, 70 if wide else 1)) + 0.5

    def rows(r0: int, r1: int) -> np.ndarray:
        return pa[r0:r1]

    fast = js.histogram_rows(code, rows)
    slow = numpy_path(js.histogram_rows, code, rows)
    assert np.array_equal(fast, slow)  # the same sums in the same order
    assert fast[0].sum() == code.size and fast[0, js.outside] == (~inside).sum()


@needs_kernels
@pytest.mark.parametrize("n_dates,wide", [(2, True), (3, False), (1, True)])
def test_waterbody_regions_are_the_numpy_measure(n_dates: int, wide: bool, numpy_path: Any) -> None:
    """The compiled regions and sums of a strip are scipy's labels and numpy's bincounts, bit for bit."""
    from scipy import ndimage

    from rs_change import waterbody

    rng = np.random.default_rng(n_dates)
    ext = ndimage.binary_opening(rng.random((90, 61)) < 0.55)  # irregular regions, U shapes, holes
    ext[40:50, :] = True  # one region spanning the strip, joined late from both sides
    classes = (ext * np.where(rng.random(ext.shape) < 0.1, waterbody.CORE, waterbody.EXTENT)).astype(np.uint8)
    water = [rng.choice(np.array([0, 1, 255], np.uint8), size=ext.shape) for _ in range(n_dates)]
    pa = rng.random((90, 61 if wide else 1)) + 0.5
    extent = (classes != 0).view(np.uint8)
    fast = waterbody._measure(extent, classes, water, pa)
    slow = numpy_path(waterbody._measure, extent, classes, water, pa)
    assert fast.shape == slow.shape == (ndimage.label(ext)[1], 2 + 3 * n_dates)
    assert np.array_equal(fast, slow)  # the same regions in the same order, the same sums
    assert fast[:, 0].sum() == ext.sum()


@needs_kernels
def test_a_two_date_run_is_the_same_with_and_without_the_loops(tmp_path: Path) -> None:
    img = lake_scene(300, 260, (slice(40, 200), slice(50, 180)), seed=8).astype(int)
    img += np.random.default_rng(9).integers(-20, 21, size=img.shape)
    a = np.clip(img, 1, 255).astype(np.uint8)
    b = a.copy()
    b[:, 150:230, 60:200] = np.array([30, 60, 70, 20], np.uint8)[:, None, None]  # the lake grew
    b[:, :10, :] = 0  # a nodata collar in the second date
    t = Affine(1.0, 0, 500000.0, 0, -1.0, 5200000.0)
    write_geotiff(tmp_path / "a.tif", a, t, "EPSG:32614", nodata=0)
    write_geotiff(tmp_path / "b.tif", b, t * Affine.translation(0.41, 0.23), "EPSG:32614", nodata=0)
    cfg_text = ("scenes:\n  - {date: 2001-01-01, path: a.tif, sensor: naip}\n"
                "  - {date: 2002-01-01, path: b.tif, sensor: naip}\n"
                "clustering: {k: 3, seed: 0}\ncompute: {chunk_size: 128}\noutput: {polygons: false}\n")
    (tmp_path / "r.yaml").write_text(cfg_text)
    env = dict(os.environ)
    outs = {}
    for flag in ("1", "0"):
        env["RS_CHANGE_KERNELS"] = flag
        out = tmp_path / f"out{flag}"
        subprocess.run([sys.executable, "-m", "rs_change", "run", str(tmp_path / "r.yaml"), "-o", str(out)],
                       check=True, env=env, capture_output=True)
        outs[flag] = out
    s1, s0 = (json.loads((outs[f] / "summary.json").read_text()) for f in ("1", "0"))
    for s in (s0, s1):
        for key in ("elapsed_s", "created"):
            s.pop(key, None)
    assert s1["dates"] == s0["dates"] and s1.get("change") == s0.get("change")
    for name in ("water_2001-01-01.tif", "water_2002-01-01.tif", "change.tif", "clusters_2002-01-01.tif"):
        with rasterio.open(outs["1"] / name) as x, rasterio.open(outs["0"] / name) as y:
            assert np.array_equal(x.read(), y.read()), name
    assert s1["dates"][1]["water_km2"] > s1["dates"][0]["water_km2"] > 0


def test_the_numpy_path_runs_when_the_loops_are_off(synthetic: Path, numpy_path: Any) -> None:
    # without the extension (no compiler) or with RS_CHANGE_KERNELS=0: the same classification
    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}")
    _, water = numpy_path(classify_raw, dm, raws, valid, clusters=False)
    assert (water == 1).sum() > 1000 and (water[50:53, 60:70] == 255).all()


@needs_kernels
@pytest.mark.parametrize("clusters", [True, False])
def test_rule_without_fine_clusters_is_the_numpy_path(synthetic: Path, clusters: bool, numpy_path: Any) -> None:
    # a labeller whose rule alone decides (no fine clusters): water = the rule table's verdict
    from dataclasses import replace

    dm, raws, valid = fit_synthetic(synthetic, "{k: 3, seed: 0, n_init: 1}")
    assert dm.labeller.rule is not None
    dm = replace(dm, water_model=replace(dm.water_model, labeller=replace(dm.labeller, fine=None)))
    cl_fast, w_fast = classify_raw(dm, raws, valid.copy(), clusters=clusters)
    cl_slow, w_slow = numpy_path(classify_raw, dm, raws, valid.copy(), clusters=clusters)
    assert np.array_equal(w_fast, w_slow)
    if clusters:
        assert np.array_equal(cl_fast, cl_slow)
    # without fine clusters, every observed pixel with water's own evidence (level 2) is water
    key = (raws["green"].astype(np.intp) << 8) | raws["nir"]
    level = water.rule_table(dm, raws)[2][key]
    seen = w_fast != 255
    assert np.array_equal(w_fast[seen] == 1, level[seen] >= 2) and (level[seen] >= 2).sum() > 1000


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
def test_nearest_rows_is_numpys_nearest(dtype: Any, metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """clustering._nearest and _nearest_two through the compiled loop: numpy's labels and
    distances bit for bit, ties (two equal centres, points on a centre) and signed zeros included."""
    from rs_change import kmeans_ops as clustering

    if clustering._ck is None:
        pytest.skip("the C extension is not built")
    rng = np.random.default_rng(1)
    xt = np.ascontiguousarray(rng.normal(size=(5, 5001)).astype(dtype))
    xt[:, :20] = 0.0
    xt[:, 20:30] = -0.0
    cen = rng.normal(size=(7, 5))
    cen[4] = cen[2]  # a tie: the lower index wins
    xt[:, 100] = cen[2].astype(dtype)
    fast = [clustering._nearest(xt, cen, metric)]
    if metric == "euclidean":
        fast.append(clustering._nearest_two(xt, cen))
    monkeypatch.setattr(clustering, "_ck", None)
    slow = [clustering._nearest(xt, cen, metric)]
    if metric == "euclidean":
        slow.append(clustering._nearest_two(xt, cen))
    for f, s in zip(fast, slow):
        for a, b in zip(f, s):
            assert a.dtype == b.dtype and np.array_equal(a, b) and np.array_equal(np.signbit(a), np.signbit(b))
    assert fast[0][0][100] == 2 and (fast[0][0] != 4).all()


def test_bounds_step_is_numpys_hamerly_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    """One Hamerly iteration of the euclidean k-means through the compiled pass: numpy's labels,
    bounds, cluster sums and counts bit for bit, on random points and on points and centres of a
    few integer values (ties between centres, points on a centre), moves small and large; and a
    whole fit gives the same centres, labels and inertia either way."""
    from rs_change import kmeans_ops
    from rs_change.kmeans import KMeans

    if kmeans_ops._ck is None:
        pytest.skip("the C extension is not built")
    rng = np.random.default_rng(3)
    changed = 0
    for trial in range(300):
        d, m, k = int(rng.integers(1, 7)), int(rng.integers(0, 300)), int(rng.integers(1, 12))
        ties = trial % 3 == 0
        xt = np.ascontiguousarray(rng.integers(0, 4, (d, m)).astype(float) if ties else rng.normal(size=(d, m)))
        c0 = rng.integers(0, 4, (k, d)).astype(float) if ties else rng.normal(size=(k, d))
        lab, b2, s2 = kmeans_ops._nearest_two(xt, c0)
        sums, counts = kmeans_ops._cluster_sums(xt, lab, k)
        c1 = c0 + rng.normal(scale=[1e-6, 1e-2, 0.3][trial % 3], size=c0.shape)
        delta = np.sqrt(((c1 - c0) ** 2).sum(axis=1))
        state = (lab, np.sqrt(b2), np.sqrt(s2), sums, counts)
        fast = [a.copy() for a in state]
        slow = [a.copy() for a in state]
        kmeans_ops._bounds_step(xt, c1, fast[0], fast[1], fast[2], delta, fast[3], fast[4])
        kmeans_ops._bounds_step_numpy(xt, c1, slow[0], slow[1], slow[2], delta, slow[3], slow[4],
                                      np.argsort(delta)[::-1])
        for a, b in zip(fast, slow):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
        changed += int((fast[0] != lab).any())
    assert changed > 50  # most trials move some points to another centre

    X = np.concatenate([rng.normal(c, 0.6, size=(3000, 4)) for c in (0.0, 2.0, 5.0, 9.0)])
    fits = [KMeans(n_clusters=6, random_state=0, n_init=3).fit(X)]
    monkeypatch.setattr(kmeans_ops, "_ck", None)
    fits.append(KMeans(n_clusters=6, random_state=0, n_init=3).fit(X))
    a, b = fits
    assert a.cluster_centers_.tobytes() == b.cluster_centers_.tobytes()
    assert np.array_equal(a.labels_, b.labels_) and a.inertia_ == b.inertia_ and a.n_iter_ == b.n_iter_
