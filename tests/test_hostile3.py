"""Hostile inputs and faults, round 3 (issue 29): signals honoured while k-means runs, remote reads
bounded in time and bytes, YAML aliases bounded, STAC hrefs resolved safely, and the internal
errors and noisy output found by the round, each one line with exit status 2.

Servers are on 127.0.0.1 only; every one of them stops by itself (bounded in time and bytes).
"""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rs_change.cli import main

from .conftest import T10, UTM, lake_scene, write_geotiff
from .loopback import LoopbackServer

RS_CHANGE = [sys.executable, "-m", "rs_change"]


def _one_line_error(capsys: Any, argv: list[str], *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("rs-change: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


def _scenes(folder: Path, size: int = 60) -> None:
    write_geotiff(folder / "a.tif", lake_scene(size, size, (slice(5, 30), slice(5, 30))), T10, UTM, nodata=0)
    write_geotiff(folder / "b.tif", lake_scene(size, size, (slice(3, 40), slice(3, 40)), seed=1), T10, UTM, nodata=0)


def _config(folder: Path, clustering: str, compute: str = "", a: str = "a.tif", b: str = "b.tif") -> Path:
    p = folder / "config.yaml"
    p.write_text(f"""scenes:
  - {{date: 2019-06-01, path: "{a}", sensor: naip}}
  - {{date: 2021-06-01, path: "{b}", sensor: naip}}
clustering: {clustering}
{"compute: " + compute if compute else ""}
output: {{dir: out, report: false}}
""")
    return p


# ---------------------------------------------------------------------------------------------
# Signals during long k-means work; limits on restarts, iterations and candidates
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clustering, compute", [
    ("{k: 2, seed: 0, n_init: 1000000000}", "{max_n_init: 1000000000}"),
    ("{k: [2, 3, 4, 5, 6, 7, 8], metric: auto, seed: 0, n_init: 1000000}",
     "{max_n_init: 1000000, max_k_candidates: 100}"),
], ids=["fit-1e9-restarts", "model-selection"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_long_fit_exits_within_2_s(tmp_path, clustering, compute, sig):
    _scenes(tmp_path)
    cfg = _config(tmp_path, clustering, compute)
    proc = subprocess.Popen([*RS_CHANGE, "run", str(cfg)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(5.0)  # imports, pass 1's reads: the fits are running by now
        assert proc.poll() is None, proc.communicate()
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err
    assert elapsed < 2.0, elapsed
    assert err.strip().splitlines() == [err.strip()] and "interrupted" in err, err
    assert not (tmp_path / "out").exists() or not [p for p in (tmp_path / "out").iterdir() if p.suffix == ".tif"]


@pytest.mark.parametrize("clustering, needles", [
    ("{k: 2, n_init: 1000000000}", ["clustering.n_init", "compute.max_n_init"]),
    ("{k: 2, max_iter: 1000000000}", ["clustering.max_iter", "compute.max_iterations"]),
    ("{k: [2, 3, 4, 5, 6, 7, 8], metric: auto}", ["clustering.k", "21 candidate models", "compute.max_k_candidates"]),
], ids=["n_init", "max_iter", "candidates"])
def test_fit_work_limits_are_checked_by_validate(tmp_path, capsys, clustering, needles):
    _scenes(tmp_path, 20)
    cfg = _config(tmp_path, clustering)
    _one_line_error(capsys, ["validate", str(cfg)], *needles)


def test_fit_work_limits_can_be_raised():
    from rs_change.config import RunConfig

    cfg = RunConfig.from_text("scenes: [{date: 2019-06-01, path: a.tif, sensor: naip}]\n"
                              "clustering: {n_init: 500, max_iter: 50000, k: [2, 3, 4, 5, 6, 7], metric: auto}\n"
                              "compute: {max_n_init: 500, max_iterations: 50000, max_k_candidates: 18}")
    assert (cfg.clustering.n_init, cfg.clustering.max_iter) == (500, 50000)


def test_cancelled_worker_stops_at_its_next_check():
    """Ctrl-C while Engine.map waits for a k-means fit in a worker thread: the fit stops at its
    next restart and map lets go at once (it used to wait for all 1e9 restarts)."""
    from rs_change.clustering import KMeans
    from rs_change.engine import Engine

    X = np.random.default_rng(0).normal(size=(2000, 3))
    done = threading.Event()

    def fit(_: int) -> Any:
        try:
            return KMeans(n_clusters=3, n_init=10**9, random_state=0).fit(X)
        finally:
            done.set()

    main_thread = threading.main_thread().ident  # a real signal: it wakes the main thread's wait, as Ctrl-C does
    timer = threading.Timer(1.0, signal.pthread_kill, (main_thread, signal.SIGINT))
    with Engine("threads", workers=2) as eng:
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            list(eng.map(fit, [0]))
        assert time.monotonic() - t0 < 3.0
        assert done.is_set()  # the fit itself ended, not only the wait for it


# ---------------------------------------------------------------------------------------------
# YAML aliases; error lines that do not render a huge input
# ---------------------------------------------------------------------------------------------
def test_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines += ["scenes: [{date: 2019-06-01, path: a.tif, sensor: naip}]", "clustering: {k: *a8}"]
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    assert p.stat().st_size < 1000
    t0 = time.monotonic()
    _one_line_error(capsys, ["validate", str(p)], "aliases", "expand to more than 100,000")
    assert time.monotonic() - t0 < 5


def test_small_aliases_still_work():
    from rs_change.config import RunConfig

    cfg = RunConfig.from_text("scenes:\n  - &s {date: 2019-06-01, path: a.tif, sensor: naip}\n"
                              "  - {date: 2020-06-01, path: b.tif, sensor: naip}\n")
    assert len(cfg.scenes) == 2


def test_a_huge_wrong_value_is_not_rendered_in_the_error(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("scenes: [{date: 2019-06-01, path: a.tif, sensor: naip}]\nclustering: {seed: [" + ", ".join(["1"] * 50000) + "]}\n")
    err = _one_line_error(capsys, ["validate", str(p)], "clustering.seed")
    assert len(err) < 400, len(err)


# ---------------------------------------------------------------------------------------------
# Remote reads bounded in time and bytes
# ---------------------------------------------------------------------------------------------
class BadServer:
    """A loopback server that misbehaves in one way, for at most ``life`` seconds:

    ``silent``: accepts and reads the request, never answers; ``endless``: ``200`` without
    Content-Length, ignoring Range, streaming bytes (at most ``cap`` bytes per connection);
    ``whole``: ``200`` with the whole ``body`` whatever the Range; ``redirect``: ``302`` to itself;
    ``trickle``: the status line and headers one byte a second."""

    def __init__(self, mode: str, body: bytes = b"", life: float = 150.0, cap: int = 4 << 30) -> None:
        self.mode, self.body, self.life, self.cap = mode, body, life, cap
        self.sent = 0
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, name: str = "a.tif") -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/{name}"

    def __enter__(self) -> "BadServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def _alive(self) -> bool:
        return not self.stop.is_set() and time.monotonic() - self.t0 < self.life

    def _serve(self) -> None:
        while self._alive():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(1.0)
        try:
            try:
                conn.recv(65536)
            except OSError:
                pass
            if self.mode == "silent":
                while self._alive():
                    time.sleep(0.1)
            elif self.mode == "endless":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/tiff\r\nConnection: close\r\n\r\n")
                chunk = b"\0" * 65536
                n = 0
                while self._alive() and n < self.cap:
                    conn.sendall(chunk)
                    n += len(chunk)
                    self.sent += len(chunk)
            elif self.mode == "whole":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/tiff\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n" % len(self.body) + self.body)
            elif self.mode == "redirect":
                conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /a.tif\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            elif self.mode == "trickle":
                for ch in b"HTTP/1.1 206 Partial Content\r\nX-Slow: " + b"a" * 600:
                    if not self._alive():
                        break
                    conn.sendall(bytes([ch]))
                    time.sleep(1.0)
        except OSError:
            pass
        finally:
            conn.close()


def _run_remote(tmp_path: Path, url: str, timeout: float, command: str = "run") -> tuple[int, str, float]:
    _scenes(tmp_path, 20)
    cfg = _config(tmp_path, "{k: 2, seed: 0, n_init: 1}", a=url)
    t0 = time.monotonic()
    proc = subprocess.run([*RS_CHANGE, command, str(cfg)], cwd=tmp_path, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr, time.monotonic() - t0


def test_endless_body_server_is_one_error_within_60_s_and_1_gb(tmp_path):
    with BadServer("endless") as srv:
        code, err, elapsed = _run_remote(tmp_path, srv.url(), timeout=90)
    assert code == 2, err
    assert elapsed < 60
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 1 << 20  # kB: under 1 GB
    assert len(err.splitlines()) == 1 and "127.0.0.1" in err and "range" in err, err
    assert "check the network" not in err


def test_silent_server_is_one_error_within_the_documented_deadline(tmp_path):
    from rs_change.remote import PROBE_TIMEOUT_S, REQUEST_DEADLINE_S

    with BadServer("silent") as srv:
        code, err, elapsed = _run_remote(tmp_path, srv.url(), timeout=REQUEST_DEADLINE_S + 30)
    assert code == 2, err
    assert elapsed < REQUEST_DEADLINE_S
    assert elapsed < PROBE_TIMEOUT_S + 15  # the first request's deadline, not GDAL's retries
    assert len(err.splitlines()) == 1 and "did not answer (timed out after" in err and "127.0.0.1" in err, err


def test_trickling_headers_are_cut_off_at_the_deadline():
    from rs_change.errors import InputError
    from rs_change.remote import check_server, http_status

    with BadServer("trickle") as srv:
        t0 = time.monotonic()
        with pytest.raises(InputError, match="did not answer .timed out after 2 s"):
            check_server(srv.url(), timeout=2.0)
        assert http_status(srv.url("b.tif"), timeout=2.0) == "timed out after 2 s"
        assert time.monotonic() - t0 < 8


def test_server_without_range_support_is_named(tmp_path):
    _scenes(tmp_path, 20)
    body = (tmp_path / "a.tif").read_bytes() * 4  # larger than the first request
    with BadServer("whole", body=body) as srv:
        code, err, _ = _run_remote(tmp_path, srv.url(), timeout=60, command="validate")
    assert code == 2, err
    assert "ignores range requests" in err and "127.0.0.1" in err and "check the network" not in err, err


def test_redirect_loop_is_named_as_such(tmp_path):
    with BadServer("redirect") as srv:
        code, err, _ = _run_remote(tmp_path, srv.url(), timeout=60, command="validate")
    assert code == 2, err
    assert "redirects in a loop" in err and "HTTP 302" not in err, err


def test_sigterm_while_a_silent_server_is_opened_exits_at_once(tmp_path):
    _scenes(tmp_path, 20)
    with BadServer("silent") as srv:
        cfg = _config(tmp_path, "{k: 2, seed: 0, n_init: 1}", a=srv.url())
        proc = subprocess.Popen([*RS_CHANGE, "run", str(cfg)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(4.0)
            assert proc.poll() is None
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            elapsed = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 143, err
    assert elapsed < 2.0, elapsed
    assert len(err.splitlines()) == 1, err


def test_retry_notes_stay_off_stderr(tmp_path, capsys):
    """A read that needed a second attempt and then worked: exit 0, nothing on stderr."""
    _scenes(tmp_path, 20)
    with LoopbackServer(tmp_path) as srv:
        srv.drop_min_bytes = 2000  # tiles, not the header
        srv.drops["/a.tif"] = 1
        cfg = _config(tmp_path, "{k: 2, seed: 0, n_init: 1}", a=srv.url("a.tif"))
        proc = subprocess.run([*RS_CHANGE, "run", str(cfg), "--summary-only"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        dropped = [r for r in srv.log if r.dropped]
    assert proc.returncode == 0, proc.stderr
    assert dropped, "the server cut no body short: the test tested nothing"
    assert proc.stderr == "", proc.stderr


# ---------------------------------------------------------------------------------------------
# STAC hrefs
# ---------------------------------------------------------------------------------------------
def test_remote_hrefs_resolve_against_the_document_url():
    from rs_change.errors import InputError
    from rs_change.stac import resolve_href

    base = "http://127.0.0.1:9/cat/items/x.json"
    assert resolve_href("/f/a.tif", base) == "http://127.0.0.1:9/f/a.tif"
    assert resolve_href("../a.tif", base) == "http://127.0.0.1:9/cat/a.tif"
    assert resolve_href("https://h/a.tif", base) == "https://h/a.tif"
    assert resolve_href("s3://b/k.tif", base) == "s3://b/k.tif"
    for bad in ("file:///etc/passwd", "/vsistdin/", "/vsicurl/http://h/a.tif", "//host/share/a.tif"):
        with pytest.raises(InputError, match="not a URL"):
            resolve_href(bad, base)


def test_local_hrefs_file_urls_become_paths_and_stdin_is_refused(tmp_path):
    from rs_change.errors import InputError
    from rs_change.stac import resolve_href

    base = str(tmp_path / "cat" / "catalog.json")
    assert resolve_href("file:///data/a%20b.tif", base) == "/data/a b.tif"
    assert resolve_href("x/a.tif", base) == str(tmp_path / "cat" / "x" / "a.tif")
    with pytest.raises(InputError, match="cannot read"):
        resolve_href("/vsistdin/", base)


def _item(item_id: str, href: str, bbox: list[float], day: str = "2019-06-01") -> dict[str, Any]:
    w, s, e, n = bbox
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "bbox": bbox,
            "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
            "properties": {"datetime": f"{day}T10:00:00Z"}, "links": [],
            "assets": {"image": {"href": href, "type": "image/tiff; application=geotiff"}}}


def test_remote_catalog_root_relative_href_and_self_cycle(tmp_path):
    import json

    from rs_change.config import RunConfig
    from rs_change.stac import find_items

    routes = {
        "/cat/catalog.json": json.dumps({"type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "d",
                                         "links": [{"rel": "self", "href": "/cat/catalog.json"},
                                                   {"rel": "child", "href": "./catalog.json"},
                                                   {"rel": "child", "href": "sub/catalog.json"},
                                                   {"rel": "item", "href": "item.json"}]}).encode(),
        "/cat/sub/catalog.json": json.dumps({"type": "Catalog", "stac_version": "1.0.0", "id": "s", "description": "d",
                                             "links": [{"rel": "parent", "href": "../catalog.json"},
                                                       {"rel": "child", "href": "../catalog.json"}]}).encode(),
        "/cat/item.json": json.dumps(_item("i", "/f/a.tif", [0, 0, 1, 1])).encode(),
    }
    with LoopbackServer(tmp_path, routes=routes) as srv:
        cfg = RunConfig.from_text(f"stac: {{url: '{srv.url('cat/catalog.json')}', sensor: naip}}")
        items = find_items(cfg.stac, None, cfg)
        expected = srv.url("f/a.tif")
    assert [it.id for it in items] == ["i"]
    assert items[0].assets["image"].href == expected


def test_remote_catalog_naming_a_local_file_is_refused(tmp_path, capsys):
    import json

    routes = {"/item.json": json.dumps(_item("i", "file:///etc/passwd", [0, 0, 1, 1])).encode()}
    with LoopbackServer(tmp_path, routes=routes) as srv:
        p = tmp_path / "c.yaml"
        p.write_text(f"stac: {{url: '{srv.url('item.json')}', sensor: naip}}\n")
        _one_line_error(capsys, ["validate", str(p)], "file:///etc/passwd", "not a URL")


def test_antimeridian_bboxes():
    from rs_change.stac import bboxes_overlap

    across = [170.0, -10.0, -170.0, 10.0]
    assert bboxes_overlap(across, [175, 0, 176, 1]) and bboxes_overlap(across, [-175, 0, -174, 1])
    assert bboxes_overlap([175, 0, 176, 1], across)
    assert not bboxes_overlap(across, [0, 0, 1, 1])
    assert not bboxes_overlap(across, [175, 20, 176, 21])
    assert bboxes_overlap([179, 0, -179, 1], [178, -5, -178, 5])  # both across
    assert bboxes_overlap([170, -10, 0, 175, 10, 5], [174, 0, 175, 1])  # a 3-D bbox


# ---------------------------------------------------------------------------------------------
# Internal errors that were exit 1; values that passed validate
# ---------------------------------------------------------------------------------------------
def test_aoi_outside_the_crs_area_is_one_line(tmp_path, capsys):
    _scenes(tmp_path, 20)
    cfg = _config(tmp_path, "{k: 2, seed: 0, n_init: 1}")
    cfg.write_text(cfg.read_text() + "aoi: {bbox: [-180, -90, 180, 90], crs: 'EPSG:4326'}\n")
    _one_line_error(capsys, ["validate", str(cfg)], "aoi")


@pytest.mark.parametrize("key, value, needle", [
    ("scale", "0", "scenes.0.scale"), ("scale", ".inf", "scenes.0.scale"), ("offset", ".nan", "scenes.0.offset"),
])
def test_unusable_scale_and_offset_are_refused(tmp_path, capsys, key, value, needle):
    _scenes(tmp_path, 20)
    cfg = _config(tmp_path, "{k: 2, seed: 0, n_init: 1}")
    cfg.write_text(cfg.read_text().replace("sensor: naip}", f"sensor: naip, {key}: {value}}}", 1))
    _one_line_error(capsys, ["validate", str(cfg)], needle)


def test_stac_raster_scale_zero_is_refused():
    from rs_change.errors import InputError
    from rs_change.stac import _radiometry

    with pytest.raises(InputError, match="raster:scale 0"):
        _radiometry([{"scale": 0, "offset": 0}])
    with pytest.raises(InputError, match="raster:offset nan"):
        _radiometry([{"scale": 0.0001, "offset": float("nan")}])


def test_unknown_sensor_names_the_key(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("scenes: [{date: 2019-06-01, path: a.tif, sensor: naipp}]\n")
    _one_line_error(capsys, ["validate", str(p)], "scenes.0.sensor", "unknown sensor 'naipp'")


def test_argparse_errors_are_one_line():
    proc = subprocess.run([*RS_CHANGE, "sample", "x", "--seed", "1.5"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "--seed" in proc.stderr and "1.5" in proc.stderr, proc.stderr


@pytest.fixture
def run_folder(tmp_path):
    _scenes(tmp_path, 20)
    cfg = _config(tmp_path, "{k: 2, seed: 0, n_init: 1}")
    assert main(["run", str(cfg)]) == 0
    return tmp_path / "out"


def test_sample_and_assess_inputs_are_one_line(run_folder, capsys, tmp_path):
    capsys.readouterr()
    _one_line_error(capsys, ["sample", str(run_folder), "--seed", "-1"], "--seed -1")
    _one_line_error(capsys, ["sample", str(run_folder), "--target-se", "1e-300"], "--target-se")
    # a missing samples file is named first, before any earlier accuracy.json
    (run_folder / "accuracy.json").write_text("{}")
    _one_line_error(capsys, ["assess", str(run_folder), str(tmp_path / "nope.csv")], "nope.csv", "no such sample file")
    (run_folder / "accuracy.json").unlink()
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sample_id,x,y,reference\n1,1,1,eau \xe9\n".encode("latin-1"))
    _one_line_error(capsys, ["assess", str(run_folder), str(latin)], "latin.csv", "UTF-8")
    import sqlite3

    import geopandas as gpd
    from shapely.geometry import Point

    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"reference": ["water"]}, geometry=[Point(1, 1)], crs=UTM).to_file(empty, layer="pts")
    con = sqlite3.connect(empty)
    con.execute("DELETE FROM gpkg_contents")  # the table is there, registered as no layer
    con.commit()
    con.close()
    _one_line_error(capsys, ["assess", str(run_folder), str(empty)], "empty.gpkg")


def test_duplicate_sample_points_are_refused(run_folder, capsys, tmp_path):
    import csv

    assert main(["sample", str(run_folder), "--n", "20", "--min-per-class", "5"]) == 0
    with open(run_folder / "samples.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["reference"] = r["map_class"]
    rows.append(dict(rows[0], sample_id="99"))
    path = tmp_path / "labelled.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    capsys.readouterr()
    _one_line_error(capsys, ["assess", str(run_folder), str(path)], "same pixel", rows[0]["sample_id"], "99")


def test_no_staging_warning_on_a_successful_run(tmp_path, capsys):
    _scenes(tmp_path, 20)
    cfg = _config(tmp_path, "{k: 2, seed: 0, n_init: 1}")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".rs-change-tmp-dead-x").mkdir()  # left by a killed run
    proc = subprocess.run([*RS_CHANGE, "run", str(cfg)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert not (tmp_path / "out" / ".rs-change-tmp-dead-x").exists()


def test_verbose_keeps_third_party_info_out_and_log_lines_off_the_progress_line(capsys):
    import logging

    from rs_change.console import Progress, setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    try:
        progress = Progress(enabled=True)
        setup_logging(1, progress)
        progress("pass 2", 1, 4)
        logging.getLogger("rs_change.x").info("hello")
        logging.getLogger("distributed.y").info("chatter")
        err = capsys.readouterr().err
    finally:
        root.handlers, root.level = saved
        logging.getLogger("rs_change").setLevel(logging.NOTSET)
    assert "chatter" not in err
    assert "\nINFO rs_change.x: hello" in err, repr(err)


def test_help_documents_every_argument():
    for cmd in ("validate", "init"):
        proc = subprocess.run([*RS_CHANGE, cmd, "--help"], capture_output=True, text=True, timeout=60)
        args = proc.stdout.split("positional arguments:")[1]
        lines = [ln for ln in args.splitlines() if ln.startswith("  ") and not ln.startswith("   ")]
        for ln in lines:
            assert len(ln.split(None, 1)) == 2 or ln.strip().startswith("-"), (cmd, ln)


def test_truncated_remote_tiff_is_named_corrupt_not_a_network_failure(tmp_path, capsys, monkeypatch):
    from rs_change import remote

    monkeypatch.setattr(remote, "BACKOFF_S", 0.05)
    img = np.random.default_rng(0).integers(1, 255, (4, 512, 512)).astype("uint8")
    full = write_geotiff(tmp_path / "full.tif", img, T10, UTM, tiled=True, blockxsize=256, blockysize=256)
    data = full.read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])  # the header and tile index, half of the tiles
    write_geotiff(tmp_path / "b.tif", img, T10, UTM, tiled=True, blockxsize=256, blockysize=256)
    with LoopbackServer(tmp_path) as srv:
        cfg = _config(tmp_path, "{k: 2, seed: 0, n_init: 1}", a=srv.url("cut.tif"))
        err = _one_line_error(capsys, ["run", str(cfg), "--summary-only"], "truncated or corrupt", "declares")
    assert "check the network" not in err


def test_too_few_bands_names_the_key_not_a_profile_name(tmp_path, capsys):
    write_geotiff(tmp_path / "a.tif", lake_scene()[:3], T10, UTM, nodata=0)
    p = tmp_path / "c.yaml"
    p.write_text("scenes: [{date: 2019-06-01, path: a.tif, bands: {red: 1, green: 2, nir: 4}}]\n")
    err = _one_line_error(capsys, ["validate", str(p)], "`bands:`", "needs band 4", "3 band(s)")
    assert "custom" not in err


def test_a_silent_stac_server_is_one_line_within_its_deadline(tmp_path, capsys, monkeypatch):
    from rs_change import remote

    monkeypatch.setattr(remote, "DOCUMENT_TIMEOUT_S", 2.0)
    with BadServer("silent", life=20) as srv:
        p = tmp_path / "c.yaml"
        p.write_text(f"stac: {{url: '{srv.url('catalog.json')}', sensor: naip}}\n")
        t0 = time.monotonic()
        _one_line_error(capsys, ["validate", str(p)], "stac.url", "did not send the document", "127.0.0.1")
        assert time.monotonic() - t0 < 6


def test_an_endless_stac_document_is_refused_at_its_size_limit(tmp_path, capsys, monkeypatch):
    from rs_change import remote

    monkeypatch.setattr(remote, "DOCUMENT_MAX_BYTES", 1 << 20)
    with BadServer("endless", life=30, cap=64 << 20) as srv:
        p = tmp_path / "c.yaml"
        p.write_text(f"stac: {{url: '{srv.url('catalog.json')}', sensor: naip}}\n")
        _one_line_error(capsys, ["validate", str(p)], "stac.url", "too large for a STAC document")
