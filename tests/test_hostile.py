"""Hostile inputs and faults (issue 21): nothing written outside the output folder, no runaway
allocation, one output set per folder, and every user error one line with exit status 2.

Tiny synthetic rasters; the CLI is called in-process (``rs_change.cli.main``) except where a
signal or a second process is the point.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from rs_change import outputs
from rs_change.cli import main

from .conftest import T10 as T, UTM, lake_scene, snapshot



def _one_line_error(capsys: Any, argv: list[str], *needles: str) -> str:
    """Run the CLI; assert exit status 2 and exactly one ``rs-change: error:`` line containing ``needles``."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("rs-change: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


# ---------------------------------------------------------------------------------------------
# 1, 3: --summary-only stages like a run and writes one consistent set
# ---------------------------------------------------------------------------------------------
def test_summary_only_does_not_write_through_a_planted_symlink(lake_pair, tmp_path, capsys):
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("not yours\n")
    out = tmp_path / "out"
    out.mkdir()
    for name in (".summary.json.part", ".summary.csv.part"):  # the fixed names it used to write through
        (out / name).symlink_to(victim)
    assert main(["run", str(lake_pair()), "-o", str(out), "--summary-only"]) == 0, capsys.readouterr().err
    assert victim.read_text() == "not yours\n"
    assert json.loads((out / "summary.json").read_text())["dates"][0]["water_pixels"] == 25


def test_summary_only_writes_a_manifest_and_replaces_a_full_set(lake_pair, capsys):
    cfg = lake_pair()
    out = cfg.parent / "out"
    assert main(["run", str(cfg)]) == 0
    assert "water_2019-06-01.tif" in os.listdir(out)
    assert main(["run", str(cfg), "--summary-only", "--overwrite"]) == 0, capsys.readouterr().err
    # the full set is replaced as a whole: no old raster, config or manifest beside the new summaries
    assert sorted(os.listdir(out)) == ["config.yaml", "manifest.json", "summary.csv", "summary.json"]
    assert outputs.verify(out) == []
    man = json.loads((out / "manifest.json").read_text())
    assert man["config_sha256"] == hashlib.sha256((out / "config.yaml").read_bytes()).hexdigest()
    # and a full run over a summary-only set replaces it in turn
    assert main(["run", str(cfg), "--overwrite"]) == 0
    assert outputs.verify(out) == [] and "water_2021-06-01.tif" in os.listdir(out)


# ---------------------------------------------------------------------------------------------
# 4, 10: leftovers recognised by their lock, not by a pid; one run at a time per output folder
# ---------------------------------------------------------------------------------------------
def test_recovery_does_not_trust_a_reused_pid(lake_pair, capsys):
    """A run killed mid-swap whose pid now belongs to another process (here: our parent)."""
    cfg = lake_pair()
    assert main(["run", str(cfg)]) == 0
    out = cfg.parent / "out"
    snap = snapshot(out, symlinks=False)
    backup = out / f".rs-change-backup-{os.getppid()}-abcd1234"
    backup.mkdir()
    old = ["manifest.json", "water_2019-06-01.tif"]
    for n in old:
        os.replace(out / n, backup / n)
    (out / "water_2019-06-01.tif").write_bytes(b"half of a new set")
    (backup / "journal.json").write_text(json.dumps({"old": old, "new": ["water_2019-06-01.tif", "manifest.json"],
                                                     "manifest_sha256": "0" * 64}))
    done = outputs.recover(out)
    assert any("restored the previous outputs" in d for d in done), done
    assert snapshot(out, symlinks=False) == snap and outputs.verify(out) == []
    assert [p.name for p in out.iterdir() if p.name.startswith(".rs-change")] == []


def test_a_live_runs_folder_is_left_alone_whatever_its_name(lake_pair, tmp_path):
    import fcntl

    out = tmp_path / "out"
    live = out / ".rs-change-tmp-999999999-live"  # a pid that does not exist: the lock says it is alive
    live.mkdir(parents=True)
    fd = os.open(live / outputs.FOLDER_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert outputs.recover(out) == [] and live.exists()
    finally:
        os.close(fd)
    assert outputs.recover(out) and not live.exists()  # its process is gone: cleaned up


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(lake_pair, monkeypatch, capsys):
    import threading

    import rs_change.pipeline as pl

    cfg = lake_pair()
    out = cfg.parent / "out"
    inside, release = threading.Event(), threading.Event()
    real = pl.build_summary

    def slow_summary(*a: Any, **k: Any) -> Any:  # the first run pauses after pass 2
        inside.set()
        release.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(pl, "build_summary", slow_summary)
    first: dict[str, int] = {}
    t = threading.Thread(target=lambda: first.setdefault("code", main(["run", str(cfg)])))
    t.start()
    try:
        assert inside.wait(10)
        _one_line_error(capsys, ["run", str(cfg)], str(out), "another rs-change run")
        _one_line_error(capsys, ["run", str(cfg), "--summary-only", "--overwrite"], "another rs-change run")
    finally:
        release.set()
        t.join(20)
    assert first["code"] == 0
    assert outputs.verify(out) == [] and not (out / outputs.OUTPUT_LOCK).exists()
    assert json.loads((out / "summary.json").read_text())["dates"][1]["water_pixels"] == 81


# ---------------------------------------------------------------------------------------------
# 6, 9: config values refused with one line (validate refuses what run refuses)
# ---------------------------------------------------------------------------------------------
BASE_YAML = """scenes:
  - {date: 2019-06-01, path: a.tif, sensor: naip}
  - {date: 2021-06-01, path: b.tif, sensor: naip}
clustering: {k: 2, seed: 0, n_init: 1}
output: {dir: out, report: false}
"""


@pytest.mark.parametrize("change, needles", [
    (("2019-06-01", "2020-13-45"), ["line 2", "2020-13-45", "YYYY-MM-DD"]),  # unquoted: PyYAML's own date parser
    (("2019-06-01", "2020-02-30"), ["line 2", "2020-02-30", "YYYY-MM-DD"]),
    (("seed: 0", "seed: -1"), ["clustering.seed"]),
    (("seed: 0", "seed: 123456789012345678901234567890"), ["clustering.seed"]),
    (("sensor: naip}\n  - {date: 2021", "sensor: naip, nodata: .inf}\n  - {date: 2021"), ["nodata", "finite"]),
    (("path: b.tif, sensor: naip", "path: b.tif, bands: {red: 1, green: 2, blue: 3, nir: 4, swirl: 2}"),
     ["scenes.1.bands", "swirl", "did you mean `swir"]),
    (("output: {", "scenes: [{date: 2022-01-01, path: a.tif, sensor: naip}]\noutput: {"), ["duplicate key `scenes`", "line 5"]),
    (("sensor: naip}", "sensor: naip, sensor: modis}"), ["duplicate key `sensor`", "line 2"]),
    (("2019-06-01", "2022-06-01"), ["2021-06-01 is listed after 2022-06-01", "date order"]),
    (("path: b.tif", "path: ./a.tif"), ["both read", "its own file"]),
    (("k: 2", "k: 1000"), ["clustering.k", "k=1000", "compute.max_k"]),
    (("dir: out", "dir: ''"), ["output.dir", "empty"]),
], ids=["month-13", "feb-30", "seed-negative", "seed-huge", "nodata-inf", "band-role", "duplicate-scenes",
        "duplicate-flow-key", "dates-out-of-order", "same-file-twice", "k-1000", "empty-output-dir"])
def test_config_values_refused_in_one_line(lake_pair, capsys, change, needles):
    old, new = change
    assert old in BASE_YAML
    cfg = lake_pair(text=BASE_YAML.replace(old, new, 1))
    out = cfg.parent / "out"
    _one_line_error(capsys, ["validate", str(cfg)], *needles)
    _one_line_error(capsys, ["run", str(cfg)], *needles)
    assert not out.exists()


def test_k_limit_can_be_raised(lake_pair):
    from rs_change.config import RunConfig

    cfg = RunConfig.from_text(BASE_YAML.replace("k: 2", "k: 100") + "compute: {max_k: 100}")
    assert cfg.clustering.k == 100


def test_empty_output_option_is_refused(lake_pair, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = lake_pair()
    before = sorted(os.listdir(tmp_path))
    _one_line_error(capsys, ["run", str(cfg), "-o", ""], "-o/--output", "empty")
    assert sorted(os.listdir(tmp_path)) == before


def test_init_into_a_missing_folder_is_a_user_error(tmp_path, capsys):
    _one_line_error(capsys, ["init", str(tmp_path / "nope" / "run.yaml")], "nope", "does not exist")
    _one_line_error(capsys, ["init", str(tmp_path)], "is a folder")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# 2: cost limits checked by validate and before a run reads pixels; non-regular files refused
# ---------------------------------------------------------------------------------------------
def test_a_grid_too_fine_is_refused_before_anything_is_written(lake_pair, capsys):
    cfg = lake_pair(grid={"resolution": 1e-7})  # 10 m pixels cut into 1e-7 m: 4e18 pixels
    out = cfg.parent / "out"
    for cmd in (["validate", str(cfg)], ["run", str(cfg)], ["run", str(cfg), "--summary-only"]):
        _one_line_error(capsys, cmd, "compute.max_pixels", "grid.resolution")
    assert not out.exists()


def test_limits_on_bytes_written_and_k_times_pixels(lake_pair, capsys):
    from rs_change.config import RunConfig

    cfg = lake_pair(compute={"max_write_gb": 1e-6})  # 400 pixels x 2 dates: ~4 kB of rasters
    _one_line_error(capsys, ["validate", str(cfg)], "compute.max_write_gb")
    _one_line_error(capsys, ["run", str(cfg)], "compute.max_write_gb")
    assert main(["run", str(cfg), "--summary-only"]) == 0  # writes no raster
    cfg = lake_pair(clustering={"sample_size": None}, compute={"max_k_pixels": 500})  # k=2 x 400 pixels
    _one_line_error(capsys, ["validate", str(cfg)], "compute.max_k_pixels")
    with pytest.raises(Exception, match="compute.max_k_pixels"):
        RunConfig.from_text(BASE_YAML.replace("n_init: 1", "n_init: 1, sample_size: 100000") + "compute: {max_k_pixels: 1000}")


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_config_that_is_not_a_regular_file(tmp_path, capsys, target):
    path = Path(target)
    if target == "fifo":
        path = tmp_path / "config.yaml"
        os.mkfifo(path)
    _one_line_error(capsys, ["validate", str(path)], str(path), "not a regular file")
    _one_line_error(capsys, ["run", str(path)], str(path), "not a regular file")


def test_a_huge_config_file_is_refused(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20) + "\n")
    _one_line_error(capsys, ["validate", str(big)], "too large")


def test_a_fifo_as_a_tile_is_refused_not_waited_on(lake_pair, tmp_path):
    import subprocess
    import sys

    os.mkfifo(tmp_path / "fifo.tif")
    cfg = lake_pair(text=BASE_YAML.replace("path: a.tif", "path: fifo.tif"))
    for cmd in ("validate", "run"):  # it used to block in GDAL's open until killed
        proc = subprocess.run([sys.executable, "-m", "rs_change", cmd, str(cfg)], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [f"rs-change: error: {tmp_path / 'fifo.tif'}: not a regular file "
                                            "(a FIFO, device or socket); give a GeoTIFF file"]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# 5: the File Geodatabase is byte-identical across runs
# ---------------------------------------------------------------------------------------------
def test_file_geodatabase_is_byte_identical_across_runs(lake_pair, capsys):
    cfg = lake_pair(output={"formats": ["gdb"]})
    a, b = cfg.parent / "g1", cfg.parent / "g2"
    assert main(["run", str(cfg), "-o", str(a)]) == 0 and main(["run", str(cfg), "-o", str(b)]) == 0
    sa, sb = snapshot(a, symlinks=False), snapshot(b, symlinks=False)
    assert any(n.startswith("water.gdb/") for n in sa)
    assert sa == sb  # every .gdbtable (random UUIDs before) and so the manifest


# ---------------------------------------------------------------------------------------------
# 6, 8: failures caused by the machine are user errors, in one line, whatever library hit them
# ---------------------------------------------------------------------------------------------
def _python(code: str, *args: str, cwd: Path, timeout: float = 60) -> Any:
    import subprocess
    import sys

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("limit", [3_000, 30_000])  # in the staged rasters / in the GeoPackage (SQLite)
def test_full_disk_is_one_line_even_when_libraries_word_it_otherwise(lake_pair, tmp_path, limit):
    """A file-size limit stands in for a full disk: libtiff prints ``_tiffWriteProc: File too
    large.`` once per block straight to stderr, and SQLite, through GDAL, reports the tables it
    could not create as "no such table"."""
    from .conftest import write_geotiff

    write_geotiff(tmp_path / "big.tif", lake_scene(200, 200, (slice(50, 100), slice(50, 100))), T, UTM, nodata=0)
    cfg = lake_pair(text="scenes: [{date: 2019-06-01, path: big.tif, sensor: naip}]\n"
                      "clustering: {k: 2, n_init: 1}\noutput: {report: false}\n")
    proc = _python(
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))\n"
        "from rs_change.cli import main\n"
        "sys.exit(main(['run', sys.argv[2], '-o', 'full']))\n", str(limit), str(cfg), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "no room to write" in proc.stderr and "full" in proc.stderr, proc.stderr
    assert not (tmp_path / "full").exists()


def test_output_folder_deleted_during_the_run(lake_pair, monkeypatch, capsys):
    import shutil

    import rs_change.pipeline as pl

    cfg = lake_pair()
    out = cfg.parent / "out"
    real = pl.build_summary
    monkeypatch.setattr(pl, "build_summary", lambda *a, **k: (shutil.rmtree(out), real(*a, **k))[1])
    _one_line_error(capsys, ["run", str(cfg)], str(out), "disappeared during the run")


def _serve(reply: bytes) -> tuple[Any, int]:
    """A TCP server on localhost that answers every connection with ``reply`` (b"": silence)."""
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", 0))
    conns = []

    def loop() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)
            if reply:
                c.sendall(reply)

    threading.Thread(target=loop, daemon=True).start()
    return srv, srv.getsockname()[1]


@pytest.mark.parametrize("reply", [b"HTTP/1.0 400 Bad Request\r\n\r\n", b""], ids=["not-dask", "silent"])
def test_a_scheduler_address_that_is_not_a_dask_scheduler(lake_pair, capsys, monkeypatch, reply):
    import threading

    from rs_change import engine

    monkeypatch.setattr(engine, "PROBE_TIMEOUT_S", 0.5)
    srv, port = _serve(reply)
    cfg = lake_pair(compute={"scheduler": f"tcp://127.0.0.1:{port}"})
    result: dict[str, int] = {}
    t = threading.Thread(target=lambda: result.setdefault("code", main(["run", str(cfg), "--summary-only"])), daemon=True)
    try:
        t.start()
        t.join(15)  # it used to wait forever for a handshake, or try to allocate exabytes
    finally:
        srv.close()
    assert result.get("code") == 2, capsys.readouterr().err
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "compute.scheduler" in err and "not a dask scheduler" in err, err


def test_a_png_without_georeferencing_is_one_line(tmp_path):
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp_path / "scan.png", "w", driver="PNG", width=20, height=20, count=4, dtype="uint8") as ds:
            ds.write(lake_scene())
    (tmp_path / "scan.png.aux.xml").unlink(missing_ok=True)
    (tmp_path / "c.yaml").write_text("scenes: [{date: 2020-01-01, path: scan.png, sensor: naip}]\n")
    proc = _python("import sys; from rs_change.cli import main; sys.exit(main(['validate', 'c.yaml']))", cwd=tmp_path)
    assert proc.returncode == 2
    # rasterio's NotGeoreferencedWarning used to add 3 lines before this one
    assert proc.stderr.splitlines() == [f"rs-change: error: {tmp_path / 'scan.png'}: the raster has no CRS; "
                                        "set one (gdal_edit.py -a_srs EPSG:XXXX) and rerun"]


# ---------------------------------------------------------------------------------------------
# 7, 8: Ctrl-C and SIGTERM: staging removed, one line, 130 / 143
# ---------------------------------------------------------------------------------------------
_PAUSED_RUN = (
    "import sys, time\n"
    "import rs_change.pipeline as pl\n"
    "real = pl.build_summary\n"
    "def slow(*a, **k):\n"
    "    time.sleep(60)\n"
    "    return real(*a, **k)\n"
    "pl.build_summary = slow  # pauses after pass 2, with the staged rasters on disk\n"
    "from rs_change.cli import main\n"
    "sys.exit(main(['run', sys.argv[1]]))\n"
)


def test_sigint_and_sigterm_clean_up_and_exit_130_and_143(lake_pair, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    procs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        cfg = lake_pair(name=f"{sig.name}.yaml", output={"dir": f"out_{sig.name}"})
        procs[sig] = (subprocess.Popen([sys.executable, "-c", _PAUSED_RUN, str(cfg)], cwd=tmp_path, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, start_new_session=True), tmp_path / f"out_{sig.name}")
    deadline = time.monotonic() + 30
    for sig, (proc, out) in procs.items():
        while not (out.is_dir() and any(p.name.startswith(".rs-change-tmp-") for p in out.iterdir())):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
            time.sleep(0.02)
        proc.send_signal(sig)
    for sig, (proc, out) in procs.items():
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + sig, err
        assert err.splitlines() == [f"rs-change: interrupted ({sig.name}); no partial outputs were left "
                                    "(the output folder holds one complete set, or none)"], err
        assert not out.exists()  # staging removed, and the folder this run created


def test_ctrl_c_while_starting_up_is_one_line(monkeypatch, capsys):
    from rs_change import cli

    def interrupted() -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["validate", "x.yaml"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("rs-change: interrupted") and len(err.splitlines()) == 1, err


def test_a_signal_swallowed_by_a_c_callback_is_delivered_again():
    """rasterio's GDAL log handler is a C callback: a KeyboardInterrupt raised in it is printed
    as "Exception ignored in ..." and dropped (SIGTERM then printed tracebacks and was lost)."""
    import signal
    import time
    from types import SimpleNamespace

    from rs_change.process import SignalTrap

    trap = SignalTrap()
    try:
        trap.signum = signal.SIGTERM
        exc = KeyboardInterrupt()
        sys_hook = __import__("sys").unraisablehook
        sys_hook(SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=exc, exc_traceback=None, err_msg=None, object=None))
        with pytest.raises(KeyboardInterrupt):
            for _ in range(200):
                time.sleep(0.01)
    finally:
        trap.restore()
    assert trap.code == 143
