"""Scenes read from URLs (issue 18): a loopback HTTP server with Range support (tests/loopback.py)
serves the sample tiles; the run over the URLs must give the local run's numbers, fetch only what
it needs, retry a dropped connection and say in one line what a missing URL is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rs_change import remote
from rs_change.cli import main
from rs_change.config import RunConfig
from rs_change.pipeline import run

from .conftest import SAMPLE
from .loopback import LoopbackServer
from .test_hostile import _one_line_error

NAIP = SAMPLE / "naip"
PAIR = {"2009-08-18": "m_4709963_se_14_1_20090818.tif", "2020-08-31": "m_4709963_se_14_1_20200831.tif"}


def _config(folder: Path, paths: dict[str, str], name: str = "run.yaml", **sections: Any) -> Path:
    data: dict[str, Any] = {"scenes": [{"date": d, "path": p, "sensor": "naip"} for d, p in paths.items()],
                            "clustering": {"k": 3, "seed": 0}, "output": {"dir": "out"}}
    data.update(sections)
    cfg = folder / name
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return cfg


def _numbers(summary: dict[str, Any]) -> str:
    """summary.json without what names the inputs (the paths, a composite's files): the numbers a run measured."""
    s = json.loads(json.dumps(summary))
    for d in s["dates"]:
        d.pop("path", None)
        d.pop("composite", None)
    return json.dumps(s, sort_keys=True)


def copies(folder: Path, names: Any) -> Path:
    """``folder`` (created) holding copies of the NAIP sample tiles ``names``: what a server serves."""
    folder.mkdir()
    for name in names:
        shutil.copy(NAIP / name, folder / name)
    return folder


@pytest.fixture
def served(tmp_path):
    """A loopback server of a copy of the NAIP sample pair."""
    with LoopbackServer(copies(tmp_path / "www", PAIR.values())) as srv:
        yield srv


def test_paths_of_the_gdal_kinds_are_remote():
    assert remote.gdal_path("https://h.example/a/b.tif") == "/vsicurl/https://h.example/a/b.tif"
    assert remote.gdal_path("s3://bucket/k/x.tif") == "/vsis3/bucket/k/x.tif"
    assert remote.gdal_path("gs://b/x.tif") == "/vsigs/b/x.tif"
    assert remote.gdal_path("az://c/x.tif") == "/vsiaz/c/x.tif"
    assert remote.gdal_path("sample_tiles/a.tif") == "sample_tiles/a.tif"
    for p in ("HTTP://h/a.tif", "/vsicurl/http://h/a.tif", "/vsis3/b/k.tif", "s3://b/k.tif"):
        assert remote.is_remote(p), p
    for p in ("a.tif", "/data/a.tif", "C:/data/a.tif", "./http.tif"):
        assert not remote.is_remote(p), p


def test_urls_stay_urls_in_the_config(tmp_path):
    """`path: https://...` is not a file relative to the config (it used to become
    <config folder>/https:/host/...)."""
    cfg = RunConfig.from_yaml(_config(tmp_path, {"2009-08-18": "https://h.example/a.tif", "2020-08-31": "s3://b/c.tif"}))
    assert [cfg.resolve_input(s.path) for s in cfg.scenes] == ["https://h.example/a.tif", "s3://b/c.tif"]


def test_urls_give_the_local_files_numbers(served, tmp_path, capsys):
    """The NAIP sample pair over HTTP: summary.json's numbers equal the local run's, and the
    files were read in ranges (no request for a whole file)."""
    local = _config(tmp_path, {d: str(NAIP / n) for d, n in PAIR.items()}, "local.yaml")
    urls = _config(tmp_path, {d: served.url(n) for d, n in PAIR.items()}, "urls.yaml")
    assert main(["run", str(local), "-o", str(tmp_path / "a"), "--summary-only"]) == 0
    assert main(["run", str(urls), "-o", str(tmp_path / "b"), "--summary-only"]) == 0
    capsys.readouterr()
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert b["dates"][0]["path"] == served.url(PAIR["2009-08-18"])
    assert a["dates"][0]["water_km2"] > 0.5 and b["dates"][1]["water_km2"] > a["dates"][0]["water_km2"]
    assert _numbers(a) == _numbers(b)
    gets = served.requests(method="GET")
    assert gets and all(r.range and r.status == 206 for r in gets), [(r.range, r.status) for r in gets]


def test_a_missing_url_is_one_line_and_exit_2(served, tmp_path, capsys):
    missing = served.url("nope.tif")
    cfg = _config(tmp_path, {"2009-08-18": served.url(PAIR["2009-08-18"]), "2020-08-31": missing})
    for cmd in (["validate", str(cfg)], ["run", str(cfg)]):
        _one_line_error(capsys, cmd, missing, "HTTP 404", "check the URL")
    assert not (tmp_path / "out").exists()
    served.status["/" + PAIR["2020-08-31"]] = 403
    cfg = _config(tmp_path, {d: served.url(n) for d, n in PAIR.items()})
    _one_line_error(capsys, ["run", str(cfg)], served.url(PAIR["2020-08-31"]), "HTTP 403", "access denied")
    assert not (tmp_path / "out").exists()


def test_a_server_that_is_not_there_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(remote, "BACKOFF_S", 0.05)
    with LoopbackServer(tmp_path) as srv:
        url = srv.url("gone.tif")  # the port is free again once the server has stopped
    cfg = _config(tmp_path, {"2009-08-18": url, "2020-08-31": str(NAIP / PAIR["2020-08-31"])})
    _one_line_error(capsys, ["validate", str(cfg)], url, "connection refused")


def test_a_server_error_is_retried_by_gdal_then_one_line(served, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(remote.GDAL_OPTIONS, "GDAL_HTTP_RETRY_DELAY", "0.05")
    name = PAIR["2020-08-31"]
    served.status["/" + name] = 503
    cfg = _config(tmp_path, {d: served.url(n) for d, n in PAIR.items()})
    _one_line_error(capsys, ["validate", str(cfg)], served.url(name), "HTTP 503", "try again later")
    # GDAL asks again GDAL_HTTP_MAX_RETRY times (its first request of a file is a HEAD)
    asked = [r for r in served.requests(name) if r.status == 503]
    assert len(asked) >= 1 + int(remote.GDAL_OPTIONS["GDAL_HTTP_MAX_RETRY"]), [(r.method, r.status) for r in asked]


def test_a_server_that_does_not_answer_is_a_time_out_in_one_line(served, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(remote.GDAL_OPTIONS, "GDAL_HTTP_TIMEOUT", "1")
    monkeypatch.setitem(remote.GDAL_OPTIONS, "GDAL_HTTP_MAX_RETRY", "0")
    monkeypatch.setattr(remote, "BACKOFF_S", 0.05)
    monkeypatch.setattr(remote, "PROBE_TIMEOUT_S", 1.0)
    name = PAIR["2020-08-31"]
    served.stall["/" + name] = 3.0
    cfg = _config(tmp_path, {d: served.url(n) for d, n in PAIR.items()})
    _one_line_error(capsys, ["validate", str(cfg)], served.url(name), "timed out after 1 s")


def test_a_dropped_connection_is_retried_then_one_line(served, tmp_path, capsys, monkeypatch):
    """The server cuts the body of a tile read short: the read is tried again and the run gives
    the same numbers; a server that always cuts it is one line after the attempts, exit 2."""
    monkeypatch.setattr(remote, "BACKOFF_S", 0.05)
    local = run(RunConfig.from_yaml(_config(tmp_path, {d: str(NAIP / n) for d, n in PAIR.items()}, "l.yaml")), write=False)
    name = PAIR["2020-08-31"]
    served.drop_min_bytes = 100_000  # the tile reads, not the 16 kB header read of the open
    served.drops["/" + name] = 1
    urls = RunConfig.from_yaml(_config(tmp_path, {d: served.url(n) for d, n in PAIR.items()}))
    got = run(urls, write=False)
    dropped = [r for r in served.requests(name) if r.dropped]
    assert len(dropped) == 1 and served.drops["/" + name] == 0
    assert _numbers(got.summary) == _numbers(local.summary)
    served.drops["/" + name] = -1  # every tile read of the file is cut
    cfg = _config(tmp_path, {d: served.url(n) for d, n in PAIR.items()}, "again.yaml", output={"dir": "out2"})
    before = len([r for r in served.requests(name) if r.dropped])
    _one_line_error(capsys, ["run", str(cfg)], served.url(name), f"after {remote.ATTEMPTS} attempts", "mid-transfer")
    assert len([r for r in served.requests(name) if r.dropped]) - before >= remote.ATTEMPTS
    assert not (tmp_path / "out2").exists()


def _cog(src: Path, dst: Path) -> Path:
    """``src`` as a Cloud-Optimized GeoTIFF with overviews (GDAL's COG driver)."""
    import rasterio
    from rasterio.shutil import copy

    with rasterio.open(src) as ds:
        copy(ds, dst, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=256, OVERVIEW_RESAMPLING="NEAREST")
    return dst


def test_pass_1_on_remote_cogs_reads_the_overviews(tmp_path):
    """Pass 1 samples a decimated read; on a COG with overviews it reads an overview, so the fit
    of the pair fetches a small part of the files (here a sample of 20,000 pixels of 676,216: a
    read decimated 4 times, overview factor 4, about 1/16 of the tiles)."""
    root = tmp_path / "www"
    root.mkdir()
    for name in PAIR.values():
        _cog(NAIP / name, root / name)
    sizes = sum((root / n).stat().st_size for n in PAIR.values())
    with LoopbackServer(root) as srv:
        cfg = RunConfig.from_yaml(_config(tmp_path, {d: srv.url(n) for d, n in PAIR.items()},
                                          clustering={"k": 3, "seed": 0, "sample_size": 20_000}))
        at_fit: list[int] = []

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "fit" and done == total:
                at_fit.append(srv.bytes_sent())

        res = run(cfg, write=False, progress=progress)
        total = srv.bytes_sent()
    assert at_fit[0] < 0.25 * sizes, (at_fit[0], sizes)
    assert total > 0.5 * sizes  # pass 2 reads every tile at full resolution
    assert all(d["water_km2"] > 0.5 for d in res.summary["dates"])


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_local_cluster_of_processes_reads_the_urls_itself(served, tmp_path):
    """Two Dask worker processes with no shared disk: each opens the URLs itself (the readers
    are pickled as paths) and the client alone writes; every output file equals the threads run's."""
    distributed = pytest.importorskip("distributed")
    cfg = RunConfig.from_yaml(_config(tmp_path, {d: served.url(n) for d, n in PAIR.items()},
                                      clustering={"k": 3, "seed": 0, "n_init": 1}, compute={"chunk_size": 256}))
    a = run(cfg, output_dir=tmp_path / "threads").output_dir
    served.reset_log()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  protocol="tcp://", host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        workers = {w["id"] for w in client.scheduler_info()["workers"].values()}
        b = run(cfg, output_dir=tmp_path / "cluster", client=client).output_dir
    assert len(workers) == 2
    assert served.bytes_sent() > 0
    sa, sb = _snapshot(a), _snapshot(b)
    assert {"summary.json", "water_2009-08-18.tif", "change.tif", "water.gpkg", "manifest.json"} <= set(sa)
    assert sa == sb
