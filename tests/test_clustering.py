"""Tests of rs_change.clustering: centres per metric, convergence, invariances, errors, scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import v_measure_score

from rs_change.clustering import (
    METRICS,
    ClusteringError,
    KMeans,
    apply_scaler,
    calinski_harabasz,
    fit_scaler,
    select_model,
    silhouette,
)

# 1-D toy data: cluster A = {0, 1, 10} (mean 3.67, median 1, midrange 5), cluster B = {100, 101, 105}
TOY = np.array([0.0, 1.0, 10.0, 100.0, 101.0, 105.0])[:, None]
TOY_CENTRES = {
    "euclidean": [11.0 / 3.0, 102.0],
    "manhattan": [1.0, 101.0],
    "chebyshev": [5.0, 102.5],
}


def blobs(n_per: int = 300, seed: int = 0, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    centres = np.array([[0.0] * d, [5.0] * d, [0.0] + [10.0] * (d - 1)])
    X = np.concatenate([rng.normal(c, 0.7, (n_per, d)) for c in centres])
    y = np.repeat(np.arange(3), n_per)
    return X, y


def overlapping(n: int = 3000, seed: int = 1) -> np.ndarray:
    """Clusters that touch, so seeding and iteration paths matter."""
    rng = np.random.RandomState(seed)
    X = np.concatenate([rng.normal(c, 1.3, (n // 3, 4)) for c in (0.0, 2.0, 4.0)])
    return X.astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
def test_toy_centres_worked_by_hand(metric: str) -> None:
    km = KMeans(n_clusters=2, metric=metric, chebyshev_trim=0.0, random_state=0).fit(TOY)
    np.testing.assert_allclose(km.cluster_centers_.ravel(), TOY_CENTRES[metric], rtol=1e-12)
    assert km.labels_.tolist() == [0, 0, 0, 1, 1, 1]
    assert km.labels_.dtype == np.int32


def test_toy_inertia_is_the_metric_objective() -> None:
    eu = KMeans(2, metric="euclidean", random_state=0).fit(TOY)
    # squared distances to 11/3 and 102
    expected = sum((v - 11 / 3) ** 2 for v in (0, 1, 10)) + sum((v - 102) ** 2 for v in (100, 101, 105))
    assert eu.inertia_ == pytest.approx(expected)
    l1 = KMeans(2, metric="manhattan", random_state=0).fit(TOY)
    assert l1.inertia_ == pytest.approx(1 + 0 + 9 + 1 + 0 + 4)
    linf = KMeans(2, metric="chebyshev", chebyshev_trim=0.0, random_state=0).fit(TOY)
    assert linf.inertia_ == pytest.approx(5 + 4 + 5 + 2.5 + 1.5 + 2.5)


def test_chebyshev_trim_ignores_an_outlier() -> None:
    # one cluster of 200 points in [0, 1] plus one outlier at 50: exact midrange is pulled to ~25
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.uniform(0, 1, 199), [50.0], rng.uniform(1000, 1001, 200)])[:, None]
    exact = KMeans(2, metric="chebyshev", chebyshev_trim=0.0, random_state=0).fit(X)
    trimmed = KMeans(2, metric="chebyshev", chebyshev_trim=0.01, random_state=0).fit(X)
    assert exact.cluster_centers_[0, 0] > 20
    assert 0.3 < trimmed.cluster_centers_[0, 0] < 0.7


def test_manhattan_objective_never_increases() -> None:
    X = overlapping()
    for seed in range(4):
        km = KMeans(3, metric="manhattan", n_init=1, random_state=seed, tol=0).fit(X)
        trace = np.array(km.objective_trace_)
        assert len(trace) >= 2
        assert np.all(np.diff(trace) <= 1e-9 * trace[0]), trace
        assert km.inertia_ <= trace[-1] * (1 + 1e-12)
        assert len(km.shift_trace_) == km.n_iter_ == len(trace)


def test_euclidean_objective_never_increases_and_converges() -> None:
    X = overlapping()
    km = KMeans(3, metric="euclidean", n_init=1, random_state=3, tol=1e-6, max_iter=300).fit(X)
    trace = np.array(km.objective_trace_)
    assert np.all(np.diff(trace) <= 1e-9 * trace[0])
    assert km.shift_trace_[-1] <= 1e-6
    assert km.n_iter_ < 300


def test_euclidean_matches_sklearn_on_separated_blobs() -> None:
    from sklearn.cluster import KMeans as SkKMeans

    X, _ = blobs()
    ours = KMeans(3, random_state=0).fit(X)
    ref = SkKMeans(3, n_init=3, random_state=0).fit(X)
    assert v_measure_score(ref.labels_, ours.labels_) == 1.0
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-9)


def _plain_lloyd(X: np.ndarray, centers: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, list[float], list[float]]:
    """Textbook Lloyd: every distance every iteration (the reference for the bounded version)."""
    shifts, objectives = [], []
    for _ in range(max_iter):
        d2 = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
        lab = d2.argmin(1)
        objectives.append(float(d2.min(1).sum()))
        new = np.array([X[lab == j].mean(0) for j in range(len(centers))])
        shifts.append(float(np.sqrt(((new - centers) ** 2).sum(1)).max()))
        centers = new
        if shifts[-1] <= tol:
            break
    return centers, shifts, objectives


@pytest.mark.parametrize("k", [3, 7])
def test_euclidean_bounds_give_plain_lloyd_iterations(k: int) -> None:
    """Hamerly's bounds skip rows whose centre provably did not change: centres, shift and
    objective traces are those of recomputing every distance (to rounding)."""
    X = overlapping(3000, seed=4).astype(np.float64)
    init = X[np.random.RandomState(k).choice(len(X), k, replace=False)]
    km = KMeans(k, init=init, tol=1e-7, max_iter=300).fit(X)
    centers, shifts, objectives = _plain_lloyd(X, init, 1e-7, 300)
    order = np.lexsort(centers.T[::-1])
    np.testing.assert_allclose(km.cluster_centers_, centers[order], rtol=0, atol=1e-9)
    assert km.n_iter_ == len(shifts) > 10
    np.testing.assert_allclose(km.shift_trace_, shifts, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(km.objective_trace_, objectives, rtol=1e-10)


def test_restarts_on_a_subsample_then_the_whole_sample() -> None:
    """With more rows than restart_size, the n_init seedings run on restart_size rows chosen by a
    hash of their values (so row order still does not matter) and the best one is iterated on
    every row: the result is a fixed point of Lloyd on the whole sample."""
    X = overlapping(6000, seed=2)
    perm = np.random.RandomState(0).permutation(len(X))
    a = KMeans(3, random_state=5, restart_size=400, tol=1e-8).fit(X)
    b = KMeans(3, random_state=5, restart_size=400, tol=1e-8).fit(X[perm])
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-9)
    assert v_measure_score(a.labels_[perm], b.labels_) == 1.0
    X64 = X.astype(np.float64)
    centers, shifts, _ = _plain_lloyd(X64, a.cluster_centers_, 1e-8, 5)
    assert shifts[0] <= 1e-8  # converged on all 6000 rows, not only on the 400
    assert a.inertia_ == pytest.approx(float(((X64 - a.cluster_centers_[a.labels_]) ** 2).sum()), rel=1e-6)
    # the same basin as restarts on every row
    full = KMeans(3, random_state=5, restart_size=None, tol=1e-8).fit(X)
    assert a.inertia_ == pytest.approx(full.inertia_, rel=1e-6)
    with pytest.raises(ClusteringError, match="restart_size"):
        KMeans(3, restart_size=2).fit(X)


def test_predict_assigns_by_the_metric() -> None:
    # point P = (3, 3); A = (0, 0): L1 6, Linf 3; B = (5, 0) ... choose B = (4.5, -1):
    # L1 |3-4.5| + |3+1| = 5.5 < 6 (B closer), Linf max(1.5, 4) = 4 > 3 (A closer)
    A, B = np.array([0.0, 0.0]), np.array([4.5, -1.0])
    P = np.array([[3.0, 3.0]])
    X = np.array([A, A + 0.01, B, B + 0.01])
    init = np.array([A, B])
    l1 = KMeans(2, metric="manhattan", init=init, max_iter=1).fit(X)
    linf = KMeans(2, metric="chebyshev", init=init, max_iter=1).fit(X)
    np.testing.assert_allclose(l1.cluster_centers_, linf.cluster_centers_, atol=0.01)
    ia, ib = int(l1.predict(A[None])[0]), int(l1.predict(B[None])[0])
    assert l1.predict(P)[0] == ib
    assert linf.predict(P)[0] == ia
    # euclidean: |PA|^2 = 18, |PB|^2 = 2.25 + 16 = 18.25 -> A
    eu = KMeans(2, metric="euclidean", init=init, max_iter=1).fit(X)
    assert eu.predict(P)[0] == ia


@pytest.mark.parametrize("metric", METRICS)
def test_shuffling_rows_gives_the_same_partition(metric: str) -> None:
    X = overlapping(1500)
    perm = np.random.RandomState(42).permutation(len(X))
    a = KMeans(3, metric=metric, random_state=7).fit(X)
    b = KMeans(3, metric=metric, random_state=7).fit(X[perm])
    assert v_measure_score(a.labels_[perm], b.labels_) == 1.0
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_)


@pytest.mark.parametrize("metric", METRICS)
def test_same_seed_identical_results(metric: str) -> None:
    X = overlapping(6000)
    kw = dict(n_clusters=3, metric=metric, sample_size=2000, random_state=123)
    a, b = KMeans(**kw).fit(X), KMeans(**kw).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.shift_trace_ == b.shift_trace_


def test_sampled_fit_labels_every_row_and_predict_matches() -> None:
    X = overlapping(9000)
    km = KMeans(3, sample_size=1000, random_state=0, chunk_size=777, n_jobs=2).fit(X)
    assert km.labels_.shape == (9000,)
    assert km.sample_indices_ is not None and len(km.sample_indices_) <= 1000
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    # chunk size and thread count do not change the result
    ref = km.predict(X)
    for chunk, jobs in ((100, 1), (333, 2), (10**6, 2)):
        km.set_params(chunk_size=chunk, n_jobs=jobs)
        np.testing.assert_array_equal(km.predict(X), ref)


@pytest.mark.parametrize("metric", METRICS)
def test_predict_chunked_matches_dense(metric: str) -> None:
    X = overlapping(3000)
    km = KMeans(3, metric=metric, random_state=0).fit(X)
    diff = np.abs(X[:, None, :].astype(np.float64) - km.cluster_centers_[None])
    dense = {"euclidean": (diff**2).sum(-1), "manhattan": diff.sum(-1), "chebyshev": diff.max(-1)}
    expected = dense[metric].argmin(1)
    km.set_params(chunk_size=101, n_jobs=2)
    got = km.predict(X)
    # float32 arithmetic may flip exact near-ties only
    assert np.mean(got == expected) > 0.999
    np.testing.assert_array_equal(km.predict(X.astype(np.float64)), expected)
    np.testing.assert_array_equal(km.labels_, km.predict(X))


@pytest.mark.parametrize("metric", METRICS)
def test_empty_cluster_is_reseeded(metric: str) -> None:
    X, y = blobs(100)
    # third seed far from every point: it gets no member at the first assignment
    init = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [1000.0, 1000.0, 1000.0]])
    km = KMeans(3, metric=metric, init=init, random_state=0).fit(X)
    assert np.unique(km.labels_).size == 3
    assert np.isfinite(km.cluster_centers_).all()
    assert v_measure_score(y, km.labels_) == 1.0


def test_silhouette_stratified_sample_keeps_tiny_cluster() -> None:
    rng = np.random.RandomState(0)
    n_big, n_tiny = 99_900, 100  # tiny cluster = 0.1 % of the points
    X = np.concatenate([rng.normal(0, 1, (n_big, 2)), rng.normal(20, 1, (n_tiny, 2))])
    labels = np.repeat([0, 1], [n_big, n_tiny])
    from rs_change.clustering import _stratified_indices

    idx, w = _stratified_indices(labels, 2000, 200, np.random.RandomState(0))
    assert np.count_nonzero(labels[idx] == 1) == n_tiny  # all of it (< 200)
    assert len(idx) <= 2000 + 200
    # weights restore the population proportions
    assert w[labels[idx] == 0].sum() == pytest.approx(n_big)
    assert w[labels[idx] == 1].sum() == pytest.approx(n_tiny)
    for metric in METRICS:
        s = silhouette(X, labels, metric, sample_size=2000, random_state=0)
        assert 0.5 < s <= 1.0


def test_silhouette_uses_the_metric() -> None:
    X, y = blobs(200)
    scores = {m: silhouette(X, y, m, random_state=0) for m in METRICS}
    assert len({round(v, 6) for v in scores.values()}) == 3
    from sklearn.metrics import silhouette_score

    # small data: the sample is all rows with weight 1, so it equals sklearn's score
    assert scores["manhattan"] == pytest.approx(silhouette_score(X, y, metric="manhattan"))


def test_calinski_harabasz_equals_sklearn() -> None:
    from sklearn.metrics import calinski_harabasz_score

    X, y = blobs(100)
    assert calinski_harabasz(X, y) == pytest.approx(calinski_harabasz_score(X, y), rel=1e-12)
    rng = np.random.RandomState(3)
    X = rng.normal(size=(500, 4))
    y = rng.randint(0, 5, 500) * 10 + 1  # arbitrary label values
    assert calinski_harabasz(X, y) == pytest.approx(calinski_harabasz_score(X, y), rel=1e-12)
    same = np.ones((4, 2))  # no within-cluster spread: 1.0 as in scikit-learn
    assert calinski_harabasz(same, np.array([0, 0, 1, 1])) == calinski_harabasz_score(same, [0, 0, 1, 1]) == 1.0


@pytest.mark.parametrize("metric", METRICS)
def test_silhouette_samples_equal_sklearn(metric: str) -> None:
    """The numpy silhouette (blocked pairwise tiles, sorted prefix sums for manhattan) is
    scikit-learn's to 1e-9, on continuous data, on uint8-like data full of duplicate rows and
    ties, with a cluster of one row (silhouette 0) and with more rows than one tile."""
    from sklearn.metrics import silhouette_samples as sk_samples

    from rs_change.clustering import silhouette_samples

    rng = np.random.RandomState(7)
    cont = np.concatenate([rng.normal(0, 1, (300, 5)), rng.normal(1.5, 2, (200, 5))])
    y_cont = np.concatenate([rng.randint(0, 3, 300), rng.randint(2, 5, 200)])
    dup = rng.randint(0, 6, (700, 3)).astype(np.float64)  # many identical rows and equal distances
    y_dup = (dup[:, 0] > 2).astype(int) + (dup[:, 1] > 3)
    single = np.concatenate([rng.normal(0, 1, (40, 2)), [[9.0, 9.0]]])
    y_single = np.concatenate([np.arange(40) % 2, [5]])
    wide = rng.uniform(-3, 3, (1300, 4))  # > 256 rows: several tiles, off-diagonal ones too
    y_wide = (wide[:, 0] > 0).astype(int) + 2 * (wide[:, 1] > 1)
    for X, y in ((cont, y_cont), (dup, y_dup), (single, y_single), (wide, y_wide)):
        ours = silhouette_samples(X, y, metric)
        ref = sk_samples(X, y, metric=metric)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    assert silhouette_samples(single, y_single, metric)[-1] == 0.0
    with pytest.raises(ClusteringError, match="2 to n_samples - 1"):
        silhouette_samples(cont, np.zeros(len(cont)), metric)


def test_silhouette_equals_sklearn_weighted_on_the_stratified_sample() -> None:
    from sklearn.metrics import silhouette_samples as sk_samples

    from rs_change.clustering import _stratified_indices, check_random_state

    rng = np.random.RandomState(1)
    X = np.concatenate([rng.normal(0, 1, (20_000, 3)), rng.normal(4, 1, (30, 3))])
    y = np.repeat([0, 1], [20_000, 30])
    idx, w = _stratified_indices(y, 1000, 200, check_random_state(5))
    expected = np.average(sk_samples(X[idx], y[idx], metric="chebyshev"), weights=w)
    assert silhouette(X, y, "chebyshev", sample_size=1000, random_state=5) == pytest.approx(expected, abs=1e-12)


def test_check_random_state_draws_as_sklearn() -> None:
    from sklearn.utils import check_random_state as sk_crs

    from rs_change.clustering import check_random_state

    for seed in (0, 42, np.int64(3)):
        assert check_random_state(seed).randint(10**6, size=5).tolist() == sk_crs(seed).randint(10**6, size=5).tolist()
    rs = np.random.RandomState(1)
    assert check_random_state(rs) is rs
    assert check_random_state(None) is np.random.mtrand._rand
    with pytest.raises(ClusteringError, match="random_state"):
        check_random_state("seed")


def test_run_imports_no_sklearn_scipy_stats_or_pandas() -> None:
    """The CLI and the pipeline (fit included) run on numpy: importing them, and fitting a model
    with its silhouette and labeller, must not import scikit-learn, scipy.stats or pandas (1.3 s
    of import time)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, rs_change.cli, rs_change.pipeline\n"
        "from rs_change.model import FitParams, fit_sample\n"
        "from rs_change.sensors import get_profile\n"
        "from rs_change.clustering import calinski_harabasz, select_model\n"
        "rng = np.random.default_rng(0)\n"
        "B = np.vstack([rng.normal([80, 110, 90, 180], 3, (300, 4)), rng.normal([70, 60, 30, 20], 3, (100, 4))])\n"
        "X = np.column_stack([B, (B[:, 1] - B[:, 3]) / (B[:, 1] + B[:, 3])])\n"
        "names = ['blue', 'green', 'red', 'nir', 'ndwi']\n"
        "m, _ = fit_sample(X, names, get_profile('naip'), FitParams(k=[2, 3], metric='auto'))\n"
        "assert m.silhouette is not None and m.versions['numpy']\n"
        "print(sorted(x for x in ('sklearn', 'scipy.stats', 'pandas') if x in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_select_model_picks_true_k() -> None:
    X, y = blobs(150)
    best, scores = select_model(X, [2, 3, 4], ["auto"], random_state=0, n_init=2)
    assert best.n_clusters == 3
    assert len(scores) == 9
    assert {s["metric"] for s in scores} == set(METRICS)
    for s in scores:
        assert set(s) >= {"k", "metric", "silhouette", "calinski_harabasz"}
        assert (s["calinski_harabasz"] is None) == (s["metric"] != "euclidean")
    assert v_measure_score(y, best.labels_) == 1.0


def test_scaler_is_robust_and_applies() -> None:
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.normal(100, 10, 10_000), rng.normal(0, 0.01, 10_000)])
    X[:50, 0] = 1e6  # outliers (saturated pixels) must not change the scale much
    offset, scale = fit_scaler(X)
    assert offset[0] == pytest.approx(100, abs=1)
    assert scale[0] == pytest.approx(10, rel=0.05)
    assert scale[1] == pytest.approx(0.01, rel=0.05)
    Z = apply_scaler(X, offset, scale)
    assert Z.dtype == np.float32 and Z.shape == X.shape
    # constant feature -> scale 1, no division by zero
    o, s = fit_scaler(np.ones((10, 2)))
    np.testing.assert_array_equal(s, [1.0, 1.0])


# ------------------------------------------------------------------------------- errors


def test_error_k_below_two() -> None:
    with pytest.raises(ClusteringError, match=r"n_clusters=1"):
        KMeans(n_clusters=1).fit(TOY)


def test_error_k_above_distinct_values() -> None:
    X = np.repeat(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), 10, axis=0)
    with pytest.raises(ClusteringError, match=r"k=5 but only 3 distinct pixel values.*lower clustering.k"):
        KMeans(n_clusters=5, random_state=0).fit(X)
    with pytest.raises(ClusteringError, match=r"k=4 but only 3 distinct"):
        KMeans(n_clusters=4, init=np.arange(8.0).reshape(4, 2)).fit(X)


def test_error_unknown_metric_names_the_valid_ones() -> None:
    with pytest.raises(ClusteringError, match=r"'cosine'.*euclidean, manhattan, chebyshev"):
        KMeans(metric="cosine").fit(TOY)
    with pytest.raises(ValueError):  # ClusteringError is a ValueError
        silhouette(TOY, np.array([0, 0, 0, 1, 1, 1]), "minkowski")


def test_error_bad_inputs() -> None:
    with pytest.raises(ClusteringError, match="2-D"):
        KMeans().fit(np.zeros(10))
    with pytest.raises(ClusteringError, match="NaN"):
        KMeans(2).fit(np.array([[0.0], [np.nan], [1.0]]))
    with pytest.raises(ClusteringError, match="not fitted"):
        KMeans().predict(TOY)
    with pytest.raises(ClusteringError, match="features"):
        KMeans(2, random_state=0).fit(TOY).predict(np.zeros((3, 2)))
    with pytest.raises(ClusteringError, match="chebyshev_trim"):
        KMeans(2, chebyshev_trim=0.7).fit(TOY)


def test_init_only_stores_params() -> None:
    km = KMeans(n_clusters=-3, metric="nope")
    assert km.get_params()["n_clusters"] == -3
    assert not hasattr(km, "cluster_centers_")


def test_project_error_hierarchy() -> None:
    try:
        from rs_change.errors import RsChangeError
    except ImportError:  # pragma: no cover
        pytest.skip("rs_change.errors not present")
    assert issubclass(ClusteringError, RsChangeError)
    assert issubclass(ClusteringError, ValueError)
