"""Scenes from STAC (issue 18): an item collection, a static catalog and a fake STAC API (a
loopback HTTP handler answering /search), all written by the tests, resolve to the scenes a
hand-written config lists, and a run over them gives the same numbers.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pystac
import pytest
import rasterio
import yaml
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from rs_change import stac
from rs_change.cli import main
from rs_change.config import RunConfig
from rs_change.errors import ConfigError, InputError
from rs_change.pipeline import run

from .conftest import SAMPLE
from .loopback import LoopbackServer
from .test_remote import PAIR, _numbers, copies

NAIP = SAMPLE / "naip"
ALL = {**PAIR, "2014-07-20": "m_4709963_se_14_1_20140720.tif"}


def _item(item_id: str, date: str, assets: dict[str, str], bbox: list[float], **props: Any) -> pystac.Item:
    geom = {"type": "Polygon", "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]],
                                                [bbox[0], bbox[3]], [bbox[0], bbox[1]]]]}
    it = pystac.Item(item_id, geom, bbox, dt.datetime.fromisoformat(date + "T17:00:00+00:00"), dict(props), collection="naip")
    for key, href in assets.items():
        it.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"]))
    return it


def _bbox(path: Path) -> list[float]:
    with rasterio.open(path) as ds:
        return [round(v, 6) for v in transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)]


def _config(folder: Path, name: str = "stac.yaml", **sections: Any) -> Path:
    data: dict[str, Any] = {"clustering": {"k": 3, "seed": 0}, "output": {"dir": "out"}, **sections}
    cfg = folder / name
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return cfg


@pytest.fixture
def www(tmp_path):
    return copies(tmp_path / "www", ALL.values())


def test_an_item_collection_gives_the_local_files_numbers(www, tmp_path, capsys):
    """`stac: {url: <item collection>, asset: image, sensor: naip}` over HTTP: the same
    summary.json numbers as the config listing the local files."""
    with LoopbackServer(www) as srv:
        items = [_item(f"naip_{d}", d, {"image": srv.url(n), "thumbnail": srv.url("thumb.jpg")}, _bbox(www / n))
                 for d, n in PAIR.items()]
        (www / "items.json").write_text(json.dumps(pystac.ItemCollection(items).to_dict()))
        cfg = _config(tmp_path, stac={"url": srv.url("items.json"), "asset": "image", "sensor": "naip"})
        local = _config(tmp_path, "local.yaml", scenes=[{"date": d, "path": str(NAIP / n), "sensor": "naip"}
                                                        for d, n in PAIR.items()])
        assert main(["validate", str(cfg)]) == 0
        listed = capsys.readouterr().out
        # headers only: the item collection, the first 32 kB of each file (2.5 MB each) and the
        # one byte per file of remote.check_server's range probe
        assert srv.bytes_sent() <= (www / "items.json").stat().st_size + 2 * (32768 + 1), srv.log
        assert "stac: 2 item(s) on 2 date(s)" in listed
        assert listed.count("pixels not read (a remote file without a coarse overview") == 2  # no overview 8x coarser
        for d, n in PAIR.items():
            assert f"  {d}  naip_{d}" in listed and f"    {srv.url(n)}" in listed
        assert main(["run", str(cfg), "-o", str(tmp_path / "b"), "--summary-only"]) == 0
        assert main(["run", str(local), "-o", str(tmp_path / "a"), "--summary-only"]) == 0
        urls = [srv.url(n) for n in PAIR.values()]
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert _numbers(a) == _numbers(b)
    # the run records the scenes it read, so rerunning its config.yaml reads the same files
    recorded = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert "stac" not in recorded and [s["path"] for s in recorded["scenes"]] == urls


def test_a_static_catalog_with_relative_hrefs(www, tmp_path, capsys):
    cat = pystac.Catalog("lakes", "NAIP over the lakes")
    for d, n in ALL.items():
        cat.add_item(_item(f"naip_{d}", d, {"image": f"../../www/{n}"}, _bbox(www / n)))
    cat.normalize_hrefs(str(tmp_path / "catalog"))
    # asset hrefs stay as written: relative to each item's JSON (catalog/naip_<date>/naip_<date>.json)
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    cfg = RunConfig.from_yaml(_config(tmp_path, stac={"url": "catalog/catalog.json", "sensor": "naip",
                                                      "datetime": "2009/2015"}))
    out, rows = stac.find_scenes(cfg)
    assert [s.date.isoformat() for s in out.scenes] == ["2009-08-18", "2014-07-20"]  # 2020 is outside 2009/2015
    assert [s.path for s in out.scenes] == [str(www / ALL["2009-08-18"]), str(www / ALL["2014-07-20"])]
    assert [r["items"] for r in rows] == [["naip_2009-08-18"], ["naip_2014-07-20"]]
    with pytest.raises(ConfigError, match="stac.query: .* static catalog"):
        stac.find_scenes(RunConfig.from_yaml(_config(tmp_path, stac={"url": "catalog/catalog.json", "sensor": "naip",
                                                                     "query": {"eo:cloud_cover": {"lt": 10}}})))


def _halves(src: Path, folder: Path, overlap: int = 6) -> tuple[Path, Path]:
    """The west and east parts of ``src`` (overlapping by ``overlap`` columns), as two files."""
    out = []
    with rasterio.open(src) as ds:
        mid = ds.width // 2
        for name, win in (("west.tif", Window(0, 0, mid + overlap, ds.height)),
                          ("east.tif", Window(mid - overlap, 0, ds.width - mid + overlap, ds.height))):
            prof = ds.profile | {"width": int(win.width), "height": int(win.height),
                                 "transform": ds.window_transform(win)}
            with rasterio.open(folder / name, "w", **prof) as dst:
                dst.write(ds.read(window=win))
            out.append(folder / name)
    return out[0], out[1]


def _bands(src: Path, folder: Path) -> dict[str, Path]:
    """One single-band file per NAIP role (red, green, blue, nir) of ``src``."""
    out = {}
    with rasterio.open(src) as ds:
        for i, role in enumerate(("red", "green", "blue", "nir"), start=1):
            prof = ds.profile | {"count": 1, "photometric": "MINISBLACK"}
            with rasterio.open(folder / f"{role}.tif", "w", **prof) as dst:
                dst.write(ds.read(i), 1)
            out[role] = folder / f"{role}.tif"
    return out


class FakeStacApi:
    """A STAC API landing page and /search over a list of items, filtering by collections,
    datetime and bbox as an API would, and keeping the searches it was sent."""

    def __init__(self, items: list[pystac.Item]) -> None:
        self.items = items
        self.searches: list[dict[str, Any]] = []
        self.base = ""

    def routes(self) -> dict[str, Any]:
        return {"/api": self.landing, "/api/search": self.search}

    def landing(self, path: str, query: str, body: Any) -> tuple[int, str, bytes]:
        doc = {"type": "Catalog", "id": "fake", "stac_version": "1.0.0", "description": "a fake STAC API",
               "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                              "https://api.stacspec.org/v1.0.0/item-search#query",
                              "https://api.stacspec.org/v1.0.0/item-search#filter",
                              "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json"],
               "links": [{"rel": "self", "href": self.base + "/api", "type": "application/json"},
                         {"rel": "root", "href": self.base + "/api", "type": "application/json"},
                         {"rel": "search", "href": self.base + "/api/search", "type": "application/geo+json",
                          "method": "POST"}]}
        return 200, "application/json", json.dumps(doc).encode()

    def search(self, path: str, query: str, body: Any) -> tuple[int, str, bytes]:
        params = json.loads(body) if body else {k: v[0] for k, v in parse_qs(query).items()}
        self.searches.append(params)
        lo, hi = stac._parse_range(params["datetime"]) if params.get("datetime") else (None, None)
        bbox = params.get("bbox")
        found = []
        for it in self.items:
            if params.get("collections") and it.collection_id not in params["collections"]:
                continue
            if (lo and it.datetime < lo) or (hi and it.datetime > hi):
                continue
            if bbox and (it.bbox[0] > bbox[2] or it.bbox[2] < bbox[0] or it.bbox[1] > bbox[3] or it.bbox[3] < bbox[1]):
                continue
            found.append(it.to_dict())
        page = {"type": "FeatureCollection", "features": found[: int(params.get("limit", 100))], "links": []}
        return 200, "application/geo+json", json.dumps(page).encode()


def test_a_stac_api_search_mosaics_and_reads_per_band_assets(www, tmp_path, capsys):
    """/search gets the block's collections, datetime, query and the aoi as bbox; two items on
    one day are mosaicked, and per-band assets read like the multi-band file: the numbers of the
    config that lists the whole local files (nearest resampling, so the mosaic's seam is exact)."""
    west, east = _halves(www / ALL["2020-08-31"], www)
    bands = _bands(www / ALL["2009-08-18"], www)
    api = FakeStacApi([])
    with LoopbackServer(www, api.routes()) as srv:
        api.base = srv.url("").rstrip("/")
        common = {"bbox": _bbox(www / ALL["2009-08-18"])}
        api.items = [
            _item("b_2009", "2009-08-18", {k: srv.url(p.name) for k, p in bands.items()}, **common),
            _item("w_2020", "2020-08-31", {"image": srv.url(west.name)}, _bbox(west), **{"eo:cloud_cover": 1}),
            _item("e_2020", "2020-08-31", {"image": srv.url(east.name)}, _bbox(east), **{"eo:cloud_cover": 3}),
            _item("old", "2005-07-01", {"image": srv.url(ALL["2014-07-20"])}, **common),
            _item("far", "2014-07-20", {"image": srv.url(ALL["2014-07-20"])}, [10.0, 50.0, 10.1, 50.1]),
        ]
        aoi = {"bbox": [-99.17, 47.01, -99.13, 47.03], "crs": "EPSG:4326"}
        block = {"url": srv.url("api"), "sensor": "naip", "collections": ["naip"], "datetime": "2009-01-01/2020-12-31",
                 "query": {"eo:cloud_cover": {"lt": 20}},
                 "filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]}, "asset": {"red": "red", "green": "green", "blue": "blue",
                                                                    "nir": "nir"}, "max_items": 50}
        cfg = RunConfig.from_yaml(_config(tmp_path, aoi=aoi, grid={"resampling": "nearest"}, stac=block))
        # per-band assets on 2009, the whole image on 2020: the defaults cannot name both, so
        # the 2020 items are found with their own asset key
        with pytest.raises(ConfigError, match="item w_2020 has no asset for red"):
            stac.find_scenes(cfg)
        sent = api.searches[-1]
        assert sent["collections"] == ["naip"] and sent["query"] == {"eo:cloud_cover": {"lt": 20}}
        assert sent["filter"] == block["filter"] and sent["filter-lang"] == "cql2-json"
        assert sent["datetime"].startswith("2009-01-01") and sent["datetime"].split("/")[1].startswith("2020-12-31")
        assert sent["bbox"] == pytest.approx(aoi["bbox"], abs=1e-6)
        api.items = [api.items[0]]
        one, _ = stac.find_scenes(cfg)
        assert one.scenes[0].assets == {k: srv.url(p.name) for k, p in bands.items()}
        api.items = [_item("w_2020", "2020-08-31", {"image": srv.url(west.name)}, _bbox(west), **{"eo:cloud_cover": 1}),
                     _item("e_2020", "2020-08-31", {"image": srv.url(east.name)}, _bbox(east), **{"eo:cloud_cover": 3})]
        block2 = {**block, "asset": "image"}
        two, rows = stac.find_scenes(RunConfig.from_yaml(_config(tmp_path, "two.yaml", aoi=aoi, stac=block2)))
        assert rows == [{"date": "2020-08-31", "items": ["w_2020", "e_2020"], "files": [srv.url("west.tif"), srv.url("east.tif")]}]
        assert two.scenes[0].path == [srv.url("west.tif"), srv.url("east.tif")]
        # a run over both: per-band 2009, mosaicked 2020
        scenes = [one.scenes[0].model_dump(exclude_none=True), two.scenes[0].model_dump(exclude_none=True)]
        got = run(RunConfig.from_dict({"scenes": scenes, "aoi": aoi, "grid": {"resampling": "nearest"},
                                       "clustering": {"k": 3, "seed": 0}}), write=False)
    want = run(RunConfig.from_dict({"scenes": [{"date": d, "path": str(NAIP / n), "sensor": "naip"} for d, n in PAIR.items()],
                                    "aoi": aoi, "grid": {"resampling": "nearest"}, "clustering": {"k": 3, "seed": 0}}),
               write=False)
    assert _numbers(got.summary) == _numbers(want.summary)
    assert got.summary["dates"][1]["water_km2"] > 0.1


def test_scale_and_offset_come_from_raster_bands():
    """A Sentinel-2 L2A item of Earth Search's kind: per-band assets blue .. swir22, each with
    raster:bands scale 0.0001 and offset -0.1 (baseline 04.00): the scene takes them."""
    it = _item("S2B_33UUU_20230611", "2023-06-11", {}, [12.3, 52.3, 12.5, 52.5])
    for key in ("blue", "green", "red", "nir", "swir16", "swir22", "B02"):
        a = pystac.Asset(f"https://example.test/{key}.tif")
        a.extra_fields["raster:bands"] = [{"scale": 0.0001, "offset": -0.1, "nodata": 0, "data_type": "uint16"}]
        it.add_asset(key, a)
    st = RunConfig.from_dict({"stac": {"url": "x.json", "sensor": "sentinel2"}}).stac
    scenes, rows = stac.scenes_from_items([it], st)
    s = scenes[0]
    # B02 comes first in the candidates (Planetary Computer's name), then Earth Search's
    assert s["assets"] == {"blue": "https://example.test/B02.tif", "green": "https://example.test/green.tif",
                           "red": "https://example.test/red.tif", "nir": "https://example.test/nir.tif",
                           "swir1": "https://example.test/swir16.tif", "swir2": "https://example.test/swir22.tif"}
    assert (s["scale"], s["offset"], s["nodata"]) == (0.0001, -0.1, 0.0)
    # NAIP (digital numbers) keeps its uncalibrated profile whatever raster:bands says
    naip = _item("n", "2020-08-31", {"image": "https://example.test/n.tif"}, [0, 0, 1, 1])
    naip.assets["image"].extra_fields["raster:bands"] = [{"scale": 1.0}] * 4
    st = RunConfig.from_dict({"stac": {"url": "x.json", "sensor": "naip"}}).stac
    assert "scale" not in stac.scenes_from_items([naip], st)[0][0]


def test_stac_errors_are_one_line(tmp_path, capsys):
    cfg = _config(tmp_path, stac={"url": "nothere.json", "sensor": "naip"})
    code = main(["validate", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "nothere.json: file not found" in err, err
    (tmp_path / "empty.json").write_text(json.dumps(pystac.ItemCollection([]).to_dict()))
    with pytest.raises(InputError, match="no item matches"):
        stac.find_scenes(RunConfig.from_yaml(_config(tmp_path, stac={"url": "empty.json", "sensor": "naip"})))
    with pytest.raises(ConfigError, match="give `scenes` or a `stac:` block, not both"):
        RunConfig.from_dict({"scenes": [{"date": "2020-01-01", "path": "a.tif", "sensor": "naip"}],
                             "stac": {"url": "x.json", "sensor": "naip"}})
    with pytest.raises(ConfigError, match="give `scenes`"):
        RunConfig.from_dict({"clustering": {"k": 3}})
    with LoopbackServer(tmp_path) as srv:
        url = srv.url("items.json")
        srv.status["/items.json"] = 404
        code = main(["validate", str(_config(tmp_path, "u.yaml", stac={"url": url, "sensor": "naip"}))])
        err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and url in err and "HTTP 404" in err, err


def test_the_search_bbox_defaults_to_the_aoi_in_degrees(tmp_path):
    """An aoi in UTM 14N centred on its central meridian (99 W): a box in degrees around -99,
    1 km wide (~0.0132 degrees of longitude at 47 N); a stac.bbox wins over the aoi."""
    cfg = RunConfig.from_dict({"stac": {"url": "x.json", "sensor": "naip"},
                               "aoi": {"bbox": [499500, 5206000, 500500, 5207000], "crs": "EPSG:32614"}})
    w, s, e, n = stac.search_bbox(cfg)
    assert (w + e) / 2 == pytest.approx(-99.0, abs=1e-9)
    assert e - w == pytest.approx(1000 / (111_320 * np.cos(np.radians(47.0))), rel=0.01)
    assert 47.0 < s < n < 47.02 and n - s == pytest.approx(1000 / 111_200, rel=0.01)
    cfg = RunConfig.from_dict({"stac": {"url": "x.json", "sensor": "naip", "bbox": [1, 2, 3, 4]},
                               "aoi": {"bbox": [499500, 5206000, 500500, 5207000], "crs": "EPSG:32614"}})
    assert stac.search_bbox(cfg) == (1.0, 2.0, 3.0, 4.0)
    assert stac.search_bbox(RunConfig.from_dict({"stac": {"url": "x.json", "sensor": "naip"}})) is None


def test_a_mosaic_of_items_in_two_crss(tmp_path):
    """Two items of one day, the second in EPSG:4326 east of the first (UTM 14N): the mosaic's
    grid (the first item's CRS and pixel size) covers both, and each pixel comes from the item
    that observes it (50 from the first, 100 from the second, nodata 0 outside both)."""
    from affine import Affine
    from rasterio.warp import calculate_default_transform, reproject

    from rs_change.readers import mosaic, open_geotiff
    from rs_change.sensors import get_profile

    from .conftest import write_geotiff

    t = Affine(10, 0, 500000, 0, -10, 5200000)
    west = write_geotiff(tmp_path / "west.tif", np.full((4, 20, 20), 50, np.uint8), t, "EPSG:32614", nodata=0)
    # the east item: 20 x 20 pixels of 10 m east of the west one, warped to degrees
    east_utm = np.full((4, 20, 20), 100, np.uint8)
    te = Affine(10, 0, 500200, 0, -10, 5200000)
    dst_t, w, h = calculate_default_transform("EPSG:32614", "EPSG:4326", 20, 20, 500200, 5199800, 500400, 5200000)
    east = np.zeros((4, h, w), np.uint8)
    reproject(east_utm, east, src_transform=te, src_crs="EPSG:32614", dst_transform=dst_t, dst_crs="EPSG:4326",
              src_nodata=0, dst_nodata=0)
    east_path = write_geotiff(tmp_path / "east.tif", east, dst_t, "EPSG:4326", nodata=0)
    day = dt.date(2020, 8, 31)
    src = mosaic([open_geotiff(west, get_profile("naip"), day), open_geotiff(east_path, get_profile("naip"), day)])
    g = src.grid
    assert g.crs == src.parts[0].grid.crs and g.transform.a == 10 and g.transform.c == 500000
    assert 40 <= g.width <= 41 and 20 <= g.height <= 22
    with src.open(g, "nearest") as rd:
        raws, valid = rd.read_raw()
    red = raws["red"]
    rows = slice(1, 19)
    assert (red[rows, :20] == 50).all() and valid[rows, :20].all()
    assert (red[rows, 21:39] == 100).all() and valid[rows, 21:39].all()
    # the pass-1 read of the mosaic takes the same values
    from rs_change.readers import decimated_read

    bands, ok = decimated_read(src, g, (g.height // 2, g.width // 2))
    assert set(np.unique(bands["red"][ok])) <= {50.0, 100.0} and {50.0, 100.0} <= set(np.unique(bands["red"][ok]))


def test_modis_files_are_not_mosaicked(tmp_path):
    """A MODIS date brings its state-QA layer, which a mosaic does not carry: a list of MODIS
    files for one date is refused in one line instead of losing the QA masking."""
    from affine import Affine

    from rs_change.errors import BandProfileError
    from rs_change.grid import Grid
    from rs_change.readers import SceneSource, mosaic
    from rs_change.sensors import get_profile

    g = Grid((2, 2), Affine(500, 0, 0, 0, -500, 0), "EPSG:4326")
    part = SceneSource(dt.date(2017, 7, 12), get_profile("modis"), {"red": ("a.tif", 1)}, g, qa_layer=("qa.tif", 1),
                       extra={"block_stats": object(), "stats_name": "modis_qa"})  # as rs_change.modis opens it
    with pytest.raises(BandProfileError, match="cannot be mosaicked"):
        mosaic([part, part])
    # a QA layer alone (an optical product's cloud mask) composites: each part's reader applies its own
    plain = SceneSource(dt.date(2017, 7, 12), get_profile("modis"), {"red": ("a.tif", 1)}, g, qa_layer=("qa.tif", 1))
    assert len(mosaic([plain, plain]).parts) == 2
