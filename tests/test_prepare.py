"""pipeline.prepare: the one set-up that `run`, `rs-change validate` and scripts share."""

from __future__ import annotations

import pytest

from rs_change.config import RunConfig
from rs_change.errors import ConfigError
from rs_change.pipeline import prepare, run


def test_prepare_opens_the_dates_and_crops_the_grid_to_the_aoi(lake_pair):
    # a.tif and b.tif: 20 x 20 pixels of 10 m from (500000, 5200000); the aoi keeps columns 5-14, rows 2-7
    cfg = RunConfig.from_yaml(lake_pair(aoi={"bbox": [500050, 5199920, 500150, 5199980], "crs": "EPSG:32614"}))
    p = prepare(cfg)
    assert [s.date.isoformat() for s in p.sources] == ["2019-06-01", "2021-06-01"]
    assert p.grid.shape == (6, 10)
    assert (p.grid.transform.c, p.grid.transform.f) == (500050, 5199980)
    assert p.overlaps == {"2019-06-01": 1.0, "2021-06-01": 1.0}
    assert p.geoms is not None and p.cfg.stac is None


def test_prepare_checks_the_cost_limits_a_run_checks(lake_pair):
    cfg = RunConfig.from_yaml(lake_pair(compute={"max_pixels": 100}))  # 400 pixels
    with pytest.raises(ConfigError, match="compute.max_pixels"):
        prepare(cfg)
    with pytest.raises(ConfigError, match="compute.max_pixels"):
        run(cfg, write=False)


def test_run_returns_the_config_it_ran(lake_pair):
    cfg = RunConfig.from_yaml(lake_pair())
    result = run(cfg, write=False)
    assert result.config is not None and [s.date for s in result.config.scenes] == [s.date for s in cfg.scenes]
    assert [d["water_pixels"] for d in result.summary["dates"]] == [25, 81]
