"""A run's STAC catalog (rs_change.catalog): catalog.json and its Items describe the files exactly,
load with pystac, odc-stac and stackstac, and still resolve after the folder is moved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine

from rs_change.catalog import build_catalog, write_catalog
from rs_change.cli import main
from rs_change.export import WATER_CLASSES, write_cog
from rs_change.grid import Grid

from .conftest import CONFIGS

DATES = ["2009-08-18", "2020-08-31"]


@pytest.fixture(scope="module")
def naip_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stac") / "naip"
    assert main(["run", str(CONFIGS / "naip_devils_lake.yaml"), "-o", str(out)]) == 0
    return out


def _json(p: Path) -> dict:
    return json.loads(p.read_text(encoding="utf-8"))


def test_catalog_describes_every_raster(naip_run):
    out = naip_run
    coll = _json(out / "catalog.json")
    assert coll["type"] == "Collection" and coll["id"] == "rs-change"
    assert coll["extent"]["temporal"]["interval"] == [["2009-08-18T00:00:00Z", "2020-08-31T00:00:00Z"]]
    assert {c["value"]: c["description"] for c in coll["classification:classes"]} == WATER_CLASSES
    water = coll["item_assets"]["water"]
    assert water["raster:bands"] == [{"data_type": "uint8", "nodata": 255}]
    assert "classification:classes" in water and "classification:classes" not in coll["item_assets"]["clusters"]
    items = [link["href"] for link in coll["links"] if link["rel"] == "item"]
    assert items == ["./stac_2009-08-18.json", "./stac_2020-08-31.json", "./stac_change.json"]
    hrefs = [link["href"] for link in coll["links"]]
    for name in items:
        item = _json(out / name)
        hrefs += [link["href"] for link in item["links"]] + [a["href"] for a in item["assets"].values()]
        for key, asset in item["assets"].items():
            path = out / asset["href"]
            assert path.is_file(), (name, key)
            if not asset["type"].startswith("image/tiff"):
                continue
            with rasterio.open(path) as ds:  # every field is what the file says
                props = item["properties"]
                assert props["proj:epsg"] == ds.crs.to_epsg() == 26914 and props["proj:code"] == "EPSG:26914"
                assert props["proj:shape"] == list(ds.shape)
                assert props["proj:transform"] == list(ds.transform)[:6]
                assert asset["raster:bands"][0]["data_type"] == ds.dtypes[0]
                assert asset["raster:bands"][0].get("nodata") == ds.nodata
    assert all(h.startswith("./") for h in hrefs)  # relative: the folder can move
    change = _json(out / "stac_change.json")
    assert set(change["assets"]) == {"change", "polygons"}
    assert change["properties"]["start_datetime"] == "2009-08-18T00:00:00Z" and change["properties"]["datetime"] is None
    assert _json(out / "stac_2009-08-18.json")["properties"]["datetime"] == "2009-08-18T00:00:00Z"
    man = {f["name"] for f in _json(out / "manifest.json")["files"]}
    assert {"catalog.json", "stac_2009-08-18.json", "stac_2020-08-31.json", "stac_change.json"} <= man


def test_pystac_reads_the_catalog_after_the_folder_moves(naip_run, tmp_path):
    moved = tmp_path / "elsewhere" / "naip_moved"
    moved.parent.mkdir()
    shutil.copytree(naip_run, tmp_path / "copy")
    shutil.move(str(tmp_path / "copy"), str(moved))
    coll = pystac.Collection.from_file(str(moved / "catalog.json"))
    items = list(coll.get_items())
    assert [i.id for i in items] == ["rs-change-2009-08-18", "rs-change-2020-08-31", "rs-change-change"]
    for item in items:
        for asset in item.assets.values():
            href = Path(asset.get_absolute_href())
            assert href.parent == moved and href.is_file()
    with rasterio.open(items[1].assets["water"].get_absolute_href()) as ds:
        assert int((ds.read(1) == 1).sum()) == _json(moved / "summary.json")["dates"][1]["water_pixels"]


def test_odc_stac_load_equals_the_water_rasters(naip_run):
    odc_stac = pytest.importorskip("odc.stac")
    coll = pystac.Collection.from_file(str(naip_run / "catalog.json"))
    items = [i for i in coll.get_items() if "water" in i.assets]
    ds = odc_stac.load(items, bands=["water"])
    assert ds.water.dtype == np.uint8 and ds.water.shape[0] == len(DATES)
    for i, d in enumerate(DATES):
        with rasterio.open(naip_run / f"water_{d}.tif") as src:
            expected = src.read(1)
        got = ds.water.isel(time=i).values
        assert np.array_equal(got, expected), d
    assert int((ds.water.isel(time=1).values == 255).sum()) == int((expected == 255).sum()) > 0  # 255 kept


def test_stackstac_stacks_the_water_rasters(naip_run):
    """stackstac opens hrefs as given and reads only ``proj:epsg``, which pystac's reader turns
    into ``proj:code``: the Items' asset hrefs are made absolute and the grid is passed from the
    Items' ``proj:code``, ``proj:shape`` and ``proj:transform``."""
    stackstac = pytest.importorskip("stackstac")
    coll = pystac.Collection.from_file(str(naip_run / "catalog.json"))
    items = [i.make_asset_hrefs_absolute() for i in coll.get_items() if "water" in i.assets]
    props = items[0].properties
    epsg = int(props["proj:code"].split(":")[1])
    (h, w), (a, _, c, _, e, f) = props["proj:shape"], props["proj:transform"]
    arr = stackstac.stack(items, assets=["water"], epsg=epsg, resolution=(a, -e), bounds=(c, f + h * e, c + w * a, f),
                          dtype="uint8", fill_value=np.uint8(255), rescale=False, snap_bounds=False,
                          xy_coords="topleft").compute()
    for i, d in enumerate(DATES):
        with rasterio.open(naip_run / f"water_{d}.tif") as src:
            assert np.array_equal(arr[i, 0].values, src.read(1)), d


def _tiny(folder: Path, with_fraction: bool) -> list[str]:
    grid = Grid((4, 5), Affine(30, 0, 500000, 0, -30, 5200000), "EPSG:32614")
    names = []
    for d in DATES:
        write_cog(folder / f"water_{d}.tif", np.array([[1, 0, 0, 255, 1]] * 4, np.uint8), grid, nodata=255, classes=WATER_CLASSES)
        names.append(f"water_{d}.tif")
        if with_fraction:
            write_cog(folder / f"water_fraction_{d}.tif", np.full((4, 5), 100, np.uint8), grid, nodata=255)
            names.append(f"water_fraction_{d}.tif")
    return names


def test_a_layer_in_the_table_is_published_when_written_and_bytes_do_not_depend_on_the_folder(tmp_path):
    grid = Grid((4, 5), Affine(30, 0, 500000, 0, -30, 5200000), "EPSG:32614")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for f in (a, b, c):
        f.mkdir()
    names = _tiny(a, True)
    _tiny(b, True)
    plain = _tiny(c, False)
    files = write_catalog(a, DATES, names, grid)
    write_catalog(b, DATES, names, grid)
    assert sorted(files) == ["catalog.json", "stac_2009-08-18.json", "stac_2020-08-31.json", "stac_change.json"]
    for n in files:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n
    item = _json(a / "stac_2009-08-18.json")
    assert list(item["assets"]) == ["water", "water_fraction"]
    assert item["assets"]["water_fraction"]["href"] == "./water_fraction_2009-08-18.tif"
    assert item["assets"]["water_fraction"]["raster:bands"][0] == {"data_type": "uint8", "nodata": 255, "spatial_resolution": 30.0}
    assert item["properties"]["proj:shape"] == [4, 5] and item["properties"]["proj:transform"] == [30.0, 0.0, 500000.0, 0.0, -30.0, 5200000.0]
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32614", "EPSG:4326", always_xy=True).transform(500000, 5200000 - 4 * 30)
    assert item["bbox"][0] == pytest.approx(lon, abs=1e-7) and item["bbox"][1] == pytest.approx(lat, abs=1e-7)  # edges densified
    docs = build_catalog(c, DATES, plain, grid)
    assert list(docs["stac_2009-08-18.json"]["assets"]) == ["water"]  # not written: not listed
    assert docs["stac_change.json"]["assets"] == {}
    one = build_catalog(c, DATES[:1], plain[:1], grid)
    assert list(one) == ["catalog.json", "stac_2009-08-18.json"]  # one date: no change Item
