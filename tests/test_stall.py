"""A remote server that answers the probe and the first reads, then stalls mid-read (issue 29):
SIGINT / SIGTERM still end ``rs-change run`` within 2 s, with one line, exit 130 / 143, and
nothing left in the output folder, whether the stalled read is the header read at the start of a
run, in pass 1 or in pass 2, in a worker thread or in the main thread.

The remote scene is a COG with overviews: pass 1 samples it decimated, from its 8x overview
(which GDAL fetches right after the header); pass 2 reads the full-resolution tiles, stored
after every overview.  The loopback server stalls the ranges that reach the first byte of the
data a phase needs (:attr:`tests.loopback.LoopbackServer.stall_from`): it sends their headers
and then no body until it stops.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.shutil

from .conftest import T10, UTM, lake_scene, write_geotiff
from .loopback import LoopbackServer

RS_CHANGE = [sys.executable, "-m", "rs_change"]
SIZE = 1024  # pixels a side: the 8x overview is 64 kB, past the 32 kB GDAL fetches with the header
BLOCK = 128


def _scenes(folder: Path) -> dict[str, int]:
    """a.tif (a COG with 2x, 4x, 8x overviews) and b.tif (plain GeoTIFF) on the same grid; per
    phase, the first byte of a.tif that only that phase reads.
    """
    img = lake_scene(SIZE, SIZE, (slice(100, 600), slice(100, 600)))
    img = np.clip(img.astype(int) + np.random.default_rng(1).integers(-20, 21, img.shape), 1, 255).astype(np.uint8)
    write_geotiff(folder / "plain.tif", img, T10, UTM, nodata=0)
    with rasterio.open(folder / "plain.tif") as src:
        rasterio.shutil.copy(src, folder / "a.tif", driver="COG", blocksize=BLOCK, overview_resampling="nearest")
    (folder / "plain.tif").unlink()
    write_geotiff(folder / "b.tif", lake_scene(SIZE, SIZE, (slice(100, 700), slice(100, 700)), seed=1), T10, UTM,
                  nodata=0)
    n = SIZE // BLOCK
    with rasterio.open(folder / "a.tif") as ds:
        assert ds.overviews(1) == [2, 4, 8]
        full = min(int(ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=b))
                   for b in (1, 2, 3, 4) for r in range(n) for c in range(n))
    with rasterio.open(folder / "a.tif", overview_level=2) as ds:  # the 8x overview: 128 x 128 pixels, one tile
        end = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)) + int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF",
                                                                                               bidx=1))
    assert 32768 < end < full
    # the header (GDAL's first 32 kB) is read by the main thread before pass 1, which needs bytes past
    # it (the overview); pass 2 reads the full resolution (the probe's one byte is always served)
    return {"header": 1, "pass 1": 32768, "pass 2": full}


def _config(folder: Path, url: str, compute: str) -> Path:
    p = folder / "config.yaml"
    p.write_text(f"""scenes:
  - {{date: 2019-06-01, path: "{url}", sensor: naip}}
  - {{date: 2021-06-01, path: b.tif, sensor: naip}}
clustering: {{k: 2, seed: 0, n_init: 1, sample_size: 2000}}
{"compute: " + compute if compute else ""}
output: {{dir: out, report: false}}
""")
    return p


def _staging(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith(".rs-change-tmp-")] if out.is_dir() else []


@pytest.mark.parametrize("phase, sig, compute", [
    ("pass 1", signal.SIGTERM, ""),
    ("pass 1", signal.SIGINT, ""),
    ("pass 2", signal.SIGTERM, ""),
    ("pass 2", signal.SIGINT, ""),
    # one thread: the stalled GDAL read is in the main thread, where no Python signal handler can run
    ("pass 1", signal.SIGINT, "{scheduler: synchronous}"),
    ("pass 2", signal.SIGTERM, "{scheduler: synchronous}"),
    ("header", signal.SIGTERM, ""),  # opening the scene, before pass 1: always in the main thread
], ids=["pass1-SIGTERM", "pass1-SIGINT", "pass2-SIGTERM", "pass2-SIGINT", "pass1-main-thread-SIGINT",
        "pass2-main-thread-SIGTERM", "header-SIGTERM"])
def test_signal_during_a_stalled_remote_read_exits_within_2_s(tmp_path, phase, sig, compute):
    stall_at = _scenes(tmp_path)
    out = tmp_path / "out"
    with LoopbackServer(tmp_path) as srv:
        srv.stall_from["/a.tif"] = stall_at[phase]
        cfg = _config(tmp_path, srv.url("a.tif"), compute)
        proc = subprocess.Popen([*RS_CHANGE, "run", str(cfg)], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            t0 = time.monotonic()
            while not srv.stalled("a.tif") and proc.poll() is None and time.monotonic() - t0 < 60:
                time.sleep(0.05)
            time.sleep(0.5)  # GDAL is waiting for the body by now
            assert proc.poll() is None, proc.communicate()
            stalled = srv.stalled("a.tif")
            staged = _staging(out)
            t1 = time.monotonic()
            proc.send_signal(sig)
            try:
                _, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # still waiting on the stalled read
                proc.kill()
                _, err = proc.communicate()
            elapsed = time.monotonic() - t1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # the stall is in the phase under test: pass 2 begins by creating its staging folder
    assert len(stalled) == 1, [(r.range, r.stalled) for r in srv.log]
    assert bool(staged) == (phase == "pass 2"), staged
    assert elapsed < 2.0, (elapsed, err)
    assert proc.returncode == 128 + sig, err
    name = signal.Signals(sig).name
    assert err.splitlines() == [f"rs-change: interrupted ({name}); no partial outputs were left (the output folder "
                                "holds one complete set, or none)"], err
    # the run created the output folder: nothing of it is left (no staging, no lock file, no output)
    assert not out.exists(), sorted(p.name for p in out.iterdir())


def test_an_interrupted_map_lets_go_of_a_blocked_item_and_closes_its_readers_after_it():
    """Ctrl-C while an item of Engine.map is blocked in a call that cannot be interrupted (a GDAL
    read of a stalled server; here a wait on an event): the KeyboardInterrupt reaches the caller
    within a second, and the readers of the run stay open until the item ends (closing a GDAL
    dataset under a running read crashes the process), then close."""
    from rs_change.engine import Engine, cached_reader, close_readers, new_token

    class Reader:
        closed = False

        def close(self) -> None:
            self.closed = True

    token, reader = new_token(), Reader()
    release, started = threading.Event(), threading.Event()

    def blocked(_: int) -> None:
        cached_reader(token, "a", lambda: reader)
        started.set()
        release.wait(20)  # the test releases it; never more than 20 s

    main_thread = threading.main_thread().ident
    eng = Engine("threads", workers=2)
    with eng:
        items = eng.map(blocked, [0])
        timer = threading.Timer(0.5, lambda: started.wait(5) and signal.pthread_kill(main_thread, signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            list(items)
        elapsed = time.monotonic() - t0
        close_readers(token)
        assert not reader.closed  # its item is still reading it
    # the pool was shut down without waiting for the blocked item
    assert elapsed < 1.5, elapsed
    release.set()
    t1 = time.monotonic()
    while not reader.closed and time.monotonic() - t1 < 5:
        time.sleep(0.01)
    assert reader.closed


def test_a_read_left_running_by_an_interrupt_is_not_tried_again(monkeypatch):
    """A remote read that fails after its run was interrupted (a block left running by
    Engine.map) stops there, instead of another minute of attempts against the stalled server."""
    from rasterio.errors import RasterioIOError

    from rs_change import remote
    from rs_change.errors import Cancelled, InputError, run_cancellable

    monkeypatch.setattr(remote, "BACKOFF_S", 0.01)
    calls: list[int] = []

    stop = threading.Event()

    def read(interrupt: bool) -> Any:
        calls.append(1)
        if interrupt:  # Ctrl-C while GDAL waited on the server: Engine.map sets the stop flag
            stop.set()
        raise RasterioIOError("CURL error: transfer closed with 65536 bytes remaining to read")

    url = "http://127.0.0.1:9/a.tif"
    with pytest.raises(InputError, match="after 3 attempts"):  # not interrupted: every attempt
        run_cancellable(stop, lambda _: remote.retrying(lambda: read(False), url), None)
    assert calls == [1, 1, 1]
    calls.clear()
    with pytest.raises(Cancelled):
        run_cancellable(stop, lambda _: remote.retrying(lambda: read(True), url), None)
    assert calls == [1]
    with pytest.raises(Cancelled):  # the next read of the block does not start
        run_cancellable(stop, lambda _: remote.retrying(lambda: read(False), url), None)
    assert calls == [1]


def test_a_stalled_body_fails_at_the_low_speed_limit_not_the_request_time_out(tmp_path, monkeypatch):
    """GDAL_OPTIONS cut a transfer that stops sending (GDAL_HTTP_LOW_SPEED_TIME / _LIMIT) before
    GDAL_HTTP_TIMEOUT: here the time-out is 60 s and the low-speed window 1 s (10 s in a run, as
    GDAL_OPTIONS set it), so the failed read, every request GDAL makes for it included, ends in seconds."""
    from rasterio.errors import RasterioIOError

    from rs_change import remote
    from rs_change.scene_reader import open_raster

    assert remote.GDAL_OPTIONS["GDAL_HTTP_LOW_SPEED_TIME"] == "10"
    assert int(remote.GDAL_OPTIONS["GDAL_HTTP_LOW_SPEED_LIMIT"]) > 0
    monkeypatch.setitem(remote.GDAL_OPTIONS, "GDAL_HTTP_LOW_SPEED_TIME", "1")
    monkeypatch.setitem(remote.GDAL_OPTIONS, "GDAL_HTTP_TIMEOUT", "60")
    monkeypatch.setitem(remote.GDAL_OPTIONS, "GDAL_HTTP_MAX_RETRY", "0")
    img = np.random.default_rng(0).integers(1, 255, (4, 512, 512)).astype("uint8")
    write_geotiff(tmp_path / "a.tif", img, T10, UTM, tiled=True, blockxsize=256, blockysize=256)
    with LoopbackServer(tmp_path) as srv:
        srv.stall_from["/a.tif"] = 40000  # the header is served, the tiles stall
        with remote.gdal_env([srv.url("a.tif")]), open_raster(srv.url("a.tif")) as ds:
            t0 = time.monotonic()
            with pytest.raises(RasterioIOError):
                ds.read()
            elapsed = time.monotonic() - t0
        assert srv.stalled("a.tif")
    assert elapsed < 15, elapsed
