"""EDGE: a config's ``stac:`` block -> the scenes it finds.

:func:`expand` turns a :class:`~rs_change.config.RunConfig` with a ``stac:`` block into the same
config with ``scenes``: the items of a STAC API search (pystac-client: ``collections``,
``datetime``, ``bbox`` (default: the run's ``aoi``), ``query``, ``filter``, ``max_items``) or of a
static catalog, collection, item or item collection (pystac; the same filters applied to the
items, except ``query``/``filter``, which only an API can answer) are grouped by UTC day, one
scene per day, or per ``window`` of days (:func:`window_groups`, named by the window's first
day); the items of one date are composited per pixel (:mod:`rs_change.composite`, the least
cloudy listed first, :func:`day_order`).
Each scene names its files (the ``asset`` that holds the bands, or one asset per band role for
one-band-per-file collections, :data:`DEFAULT_ASSETS`) and takes scale, offset and nodata from
the assets' ``raster:bands`` where they declare them. No pixel is read here: the files are opened
by the run (or by ``rs-change validate``), through :mod:`rs_change.remote` when they are URLs.

The expanded config is what a run records in ``config.yaml``: rerunning it reads the same files
even when the catalog has changed since.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urljoin

from .errors import ConfigError, InputError
from .remote import SCHEMES, is_remote, scheme

if TYPE_CHECKING:  # pragma: no cover
    import pystac

    from .config import RunConfig, StacConfig

log = logging.getLogger(__name__)

#: Per sensor, the asset that holds the bands (one multi-band file), or per band role the asset
#: keys that may hold it (one band per file), the first one an item has being used: Planetary
#: Computer's Sentinel-2 L2A names (B02 ...), Earth Search's (blue ... swir22), Landsat C2 L2's.
DEFAULT_ASSETS: dict[str, Union[str, dict[str, tuple[str, ...]]]] = {
    "naip": "image",
    "sentinel2": {"blue": ("B02", "blue"), "green": ("B03", "green"), "red": ("B04", "red"),
                  "nir": ("B08", "nir"), "swir1": ("B11", "swir16"), "swir2": ("B12", "swir22")},
    "landsat8": {"blue": ("blue",), "green": ("green",), "red": ("red",), "nir": ("nir08",),
                 "swir1": ("swir16",), "swir2": ("swir22",)},
}
DEFAULT_ASSETS["landsat"] = DEFAULT_ASSETS["landsat_tm"] = DEFAULT_ASSETS["landsat8"]
DEFAULT_ASSETS["landsat8_sr"] = DEFAULT_ASSETS["landsat_tm_sr"] = DEFAULT_ASSETS["landsat8"]
DEFAULT_ASSETS["sentinel2_l1c"] = DEFAULT_ASSETS["sentinel2_l2a"] = DEFAULT_ASSETS["sentinel2"]
#: HLS v2 (LP DAAC's HLSL30 / HLSS30): the NIR and SWIR band names differ between L30 and S30, and
#: an S30 item's B05/B06/B07 are red-edge bands, so its B8A/B11/B12 are looked for first.
DEFAULT_ASSETS["hls"] = {"blue": ("B02",), "green": ("B03",), "red": ("B04",), "nir": ("B8A", "B05"),
                         "swir1": ("B11", "B06"), "swir2": ("B12", "B07")}

#: The QA asset a scene of one-band-per-file items fetches when the item has one (QA role -> the
#: asset keys that may hold it, the first one an item has being used): Landsat Collection 2 L2's
#: ``qa_pixel``, Sentinel-2 L2A's ``SCL`` (Planetary Computer) or ``scl`` (Earth Search), HLS's
#: ``Fmask``.  See :mod:`rs_change.qa` for what each masks.
QA_ASSETS: dict[str, tuple[str, ...]] = {
    "qa_pixel": ("qa_pixel", "QA_PIXEL"),
    "scl": ("SCL", "scl"),
    "fmask": ("Fmask", "fmask", "FMASK"),
}


def expand(cfg: "RunConfig") -> "RunConfig":
    """``cfg`` with its ``stac:`` block replaced by the scenes it finds (``cfg`` itself without one)."""
    return find_scenes(cfg)[0]


def find_scenes(cfg: "RunConfig") -> tuple["RunConfig", list[dict[str, Any]]]:
    """The expanded config and, per date, what was found: ``{"date", "items", "files"}``.

    Raises
    ------
    InputError
        The catalog cannot be read, or nothing matches.
    ConfigError
        A filter a static catalog cannot apply, a missing asset, signing without its package.
    """
    from .config import RunConfig

    st = cfg.stac
    if st is None:
        return cfg, []
    items = find_items(st, search_bbox(cfg), cfg)
    if not items:
        raise InputError(f"stac.url {st.url}: no item matches (collections {st.collections}, datetime {st.datetime}, "
                         f"bbox {_bbox_text(search_bbox(cfg))}); widen the search or check the catalog")
    scenes, rows = scenes_from_items(items, st)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data.pop("stac", None)
    data["scenes"] = scenes
    out = RunConfig.from_dict(data, base_dir=cfg.base_dir, source=f"stac.url {st.url}")
    log.info("stac: %d item(s) -> %d date(s)", len(items), len(scenes))
    return out, rows


def describe(rows: list[dict[str, Any]]) -> str:
    """What :func:`find_scenes` found, for ``rs-change validate``: a line per date (its items)
    and an indented line per file, the QA layer's marked with its role (``(QA qa_pixel)``).
    """
    n = sum(len(r["items"]) for r in rows)
    lines = [f"stac: {n} item(s) on {len(rows)} date(s)"]
    for r in rows:
        mosaic = f", composited per pixel ({len(r['items'])} items)" if len(r["items"]) > 1 else ""
        lines.append(f"  {r['date']}  {', '.join(r['items'])}{mosaic}")
        qa = r.get("qa", {})
        lines += [f"    {f}" + (f"  (QA {qa[f]})" if f in qa else "") for f in r["files"]]
        if not qa and r.get("qa_note"):
            lines.append(f"    {r['qa_note']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Finding items
# ---------------------------------------------------------------------------------------------
def search_bbox(cfg: "RunConfig") -> Optional[tuple[float, float, float, float]]:
    """``stac.bbox``, else the bounds of the run's ``aoi`` in degrees (EPSG:4326), else None."""
    st = cfg.stac
    if st is not None and st.bbox is not None:
        return tuple(float(v) for v in st.bbox)  # type: ignore[return-value]
    if cfg.aoi is None:
        return None
    from .aoi import aoi_geometries

    # the aoi's polygons (a bbox densified, as the run clips with it) in degrees
    geoms = aoi_geometries(cfg.aoi, "EPSG:4326", cfg.resolve) or []
    xs = [g.bounds for g in geoms]
    return (min(b[0] for b in xs), min(b[1] for b in xs), max(b[2] for b in xs), max(b[3] for b in xs)) if xs else None


def _bbox_text(b: Optional[tuple[float, ...]]) -> str:
    return "none" if b is None else "[" + ", ".join(f"{v:g}" for v in b) + "]"


def _location(st: "StacConfig", cfg: "RunConfig") -> str:
    return st.url if is_remote(st.url) or scheme(st.url) else str(cfg.resolve(st.url))


def _read_json(where: str) -> dict[str, Any]:
    """A JSON document from a path or an http(s) URL, or a one-line :class:`InputError`."""
    import pystac

    try:
        if scheme(where) in ("http", "https"):  # under one deadline and a size limit (rs_change.remote)
            from .remote import fetch_document

            doc = json.loads(fetch_document(where))
        else:
            doc = pystac.StacIO.default().read_json(where)
    except InputError as exc:  # fetch_document's one line, naming the server
        raise InputError(f"stac.url {exc}") from None
    except FileNotFoundError:
        raise InputError(f"stac.url {where}: file not found; check `stac.url`") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"stac.url {where}: not JSON ({exc.msg} at line {exc.lineno}); give a STAC catalog, "
                         "collection, item, item collection or API root") from None
    except Exception as exc:  # pystac wraps urllib's HTTPError / URLError (OSErrors) in a bare Exception
        cause = exc if isinstance(exc, OSError) else exc.__cause__
        if not isinstance(cause, OSError):
            raise
        from .remote import http_status

        said = http_status(where) if scheme(where) in ("http", "https") else (cause.strerror or str(cause))
        raise InputError(f"stac.url {where}: cannot read the catalog ({said}); check `stac.url`") from None
    if not isinstance(doc, dict):
        raise InputError(f"stac.url {where}: not a STAC document (a JSON {type(doc).__name__}); give a catalog, "
                         "collection, item, item collection or API root")
    return doc


def is_api(doc: dict[str, Any]) -> bool:
    """True for a STAC API landing page (it conforms to item search or links a search endpoint)."""
    conforms = doc.get("conformsTo") or []
    return any("item-search" in str(c) for c in conforms) or any(
        link.get("rel") == "search" for link in doc.get("links") or [] if isinstance(link, dict))


def find_items(
    st: "StacConfig", bbox: Optional[tuple[float, float, float, float]], cfg: "RunConfig"
) -> list["pystac.Item"]:
    """The items the block selects, at most ``max_items``, signed when ``sign`` asks for it."""
    import pystac

    where = _location(st, cfg)
    doc = _read_json(where)
    kind = doc.get("type")
    if kind == "Catalog" or kind == "Collection" or "stac_version" in doc and kind is None:
        if is_api(doc):
            return _search(st, where, bbox)
    _static_only(st, where)
    try:
        if kind == "FeatureCollection":
            items = list(pystac.ItemCollection.from_dict(doc, preserve_dict=False).items)
            for it in items:
                _absolute_hrefs(it, where)
        elif kind == "Feature":
            it = pystac.Item.from_dict(doc, preserve_dict=False)
            _absolute_hrefs(it, where)
            items = [it]
        elif kind in ("Catalog", "Collection"):
            items = _walk_catalog(doc, where)
        else:
            raise InputError(
                f"stac.url {where}: a JSON document of type {kind!r}, not a STAC catalog, collection, "
                "item, item collection or API root; check `stac.url`"
            )
    except (pystac.STACError, KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"stac.url {where}: not valid STAC ({(str(exc).splitlines() or [exc.__class__.__name__])[0][:120]}); "
            "check the catalog"
        ) from None
    items = [it for it in items if _matches(it, st, bbox)]
    items.sort(key=lambda it: (_item_date(it), it.id))
    items = items[: st.max_items]
    return [_sign(it, st) for it in items] if st.sign else items


def _static_only(st: "StacConfig", where: str) -> None:
    for key in ("query", "filter"):
        if getattr(st, key) is not None:
            raise ConfigError(
                f"stac.{key}: {where} is a static catalog, not a STAC API, so it cannot be queried; "
                f"remove `{key}` or give an API root as `stac.url`"
            )


def resolve_href(href: str, base: str) -> str:
    """An href of a STAC document read from ``base`` (a URL or a local path), made absolute.

    A remote document's hrefs are URLs: relative and root-relative ones (``a.tif``, ``/f/a.tif``)
    are resolved against the document's own URL, and one that names a local file (``file://``)
    or a GDAL virtual file (``/vsistdin/``, ``/vsicurl/``) is refused: a catalog on a server must
    not make rs-change read the machine's files. A local document's ``file://`` hrefs become paths.

    Examples
    --------
    >>> resolve_href("/f/a.tif", "http://h:8/cat/item.json")
    'http://h:8/f/a.tif'
    >>> resolve_href("b/a.tif", "/data/cat/item.json")
    '/data/cat/b/a.tif'
    """
    import os
    from urllib.parse import unquote, urlsplit

    href = str(href)
    sch, base_sch = scheme(href), scheme(base)
    if base_sch in ("http", "https"):
        if sch is None and not href.startswith("/vsi") and not href.startswith("//"):
            return urljoin(base, href)
        if sch in SCHEMES:
            return href
        raise InputError(
            f"stac.url {base}: the remote catalog names {href[:120]!r}, which is not a URL "
            "(a local file, file:// or a /vsi path); rs-change reads only URLs from a remote catalog"
        )
    if href.startswith("/vsistdin") or sch == "file" and urlsplit(href).netloc not in ("", "localhost"):
        raise InputError(
            f"stac.url {base}: the catalog names {href[:120]!r}, which rs-change cannot read; give files by path or URL"
        )
    if sch == "file":
        return os.path.normpath(unquote(urlsplit(href).path))
    if sch is not None or href.startswith("/"):
        return href
    if base_sch is not None:
        return urljoin(base, href)
    return os.path.normpath(os.path.join(os.path.dirname(base), href))


def _absolute_hrefs(item: "pystac.Item", base: str) -> None:
    """Asset hrefs of an item read from ``base``, made absolute (:func:`resolve_href`)."""
    for asset in item.assets.values():
        asset.href = resolve_href(asset.href, base)


#: Most documents read from one static catalog (catalogs, collections and items together).
MAX_CATALOG_DOCUMENTS = 10_000


def _walk_catalog(doc: dict[str, Any], where: str) -> list["pystac.Item"]:
    """The items under a static catalog or collection: its ``child`` and ``item`` links followed
    (hrefs resolved by :func:`resolve_href`), each document read once, so a catalog that links to
    itself or to its parent ends; at most :data:`MAX_CATALOG_DOCUMENTS` documents.
    """
    import pystac

    items: list[pystac.Item] = []
    seen = {where}
    todo = [(doc, where)]
    while todo:
        d, href = todo.pop(0)
        if d.get("type") == "Feature":
            it = pystac.Item.from_dict(d, preserve_dict=False)
            _absolute_hrefs(it, href)
            items.append(it)
            continue
        for link in d.get("links") or []:
            if not isinstance(link, dict) or link.get("rel") not in ("child", "item") or not link.get("href"):
                continue
            target = resolve_href(str(link["href"]), href)
            if target in seen:
                continue
            if len(seen) >= MAX_CATALOG_DOCUMENTS:
                raise InputError(
                    f"stac.url {where}: the catalog links more than {MAX_CATALOG_DOCUMENTS:,} documents; "
                    "point `stac.url` at a smaller catalog or collection, or at a STAC API"
                )
            seen.add(target)
            todo.append((_read_json(target), target))
    return items


def _search(st: "StacConfig", url: str, bbox: Optional[tuple[float, float, float, float]]) -> list["pystac.Item"]:
    """A STAC API item search (pystac-client)."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    modifier = _signer(st) if st.sign else None
    try:
        client = Client.open(url, modifier=modifier)
        kw: dict[str, Any] = {"max_items": st.max_items}
        for key in ("collections", "datetime", "query", "filter"):
            if getattr(st, key) is not None:
                kw[key] = getattr(st, key)
        if bbox is not None:
            kw["bbox"] = list(bbox)
        if st.filter is not None:
            kw["filter_lang"] = "cql2-json"
        items = list(client.search(**kw).items())
    except APIError as exc:
        first = (str(exc).splitlines() or ["error"])[0][:160]
        raise InputError(
            f"stac.url {url}: the STAC API refused the search ({first}); check stac.collections, "
            "datetime, bbox, query and filter"
        ) from None
    except (OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [exc.__class__.__name__])[0][:160]
        raise InputError(f"stac.url {url}: search failed ({first}); check `stac.url` and the network") from None
    for it in items:  # a root-relative href is the API's own host, never a local file
        _absolute_hrefs(it, it.get_self_href() or url)
    items.sort(key=lambda it: (_item_date(it), it.id))
    return items


def _signer(st: "StacConfig") -> Any:
    try:
        import planetary_computer
    except ImportError:
        raise ConfigError(
            "stac.sign: planetary_computer signing needs the planetary-computer package; "
            "pip install 'rs-change[planetary-computer]'"
        ) from None
    return planetary_computer.sign_inplace


def _sign(item: "pystac.Item", st: "StacConfig") -> "pystac.Item":
    _signer(st)(item)
    return item


def _item_date(item: "pystac.Item") -> _dt.date:
    """The item's acquisition day (UTC): ``datetime``, else ``start_datetime``."""
    t = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise InputError(f"stac: item {item.id} has no datetime nor start_datetime; it cannot be given a date")
    if t.tzinfo is not None:
        t = t.astimezone(_dt.timezone.utc)
    return t.date()


def _parse_range(text: str) -> tuple[Optional[_dt.datetime], Optional[_dt.datetime]]:
    """A STAC ``datetime`` filter (``2009/2020``, ``2009-01-01/2020-12-31``, ``2020-08-31``,
    open ends ``..``) as an inclusive UTC range; years and days cover the whole year / day.
    """

    def bound(s: str, end: bool) -> Optional[_dt.datetime]:
        s = s.strip()
        if s in ("", ".."):
            return None
        try:
            if len(s) == 4:
                d = _dt.datetime(int(s), 12, 31, 23, 59, 59) if end else _dt.datetime(int(s), 1, 1)
            elif len(s) == 7:
                y, m = int(s[:4]), int(s[5:7])
                nxt = _dt.datetime(y + (m == 12), m % 12 + 1, 1)
                d = nxt - _dt.timedelta(seconds=1) if end else _dt.datetime(y, m, 1)
            elif len(s) == 10:
                day = _dt.date.fromisoformat(s)
                d = _dt.datetime.combine(day, _dt.time(23, 59, 59) if end else _dt.time())
            else:
                d = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"stac.datetime: {text!r} is not a date range; give e.g. 2009/2020 or 2009-01-01/2020-12-31"
            ) from None
        return d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)

    a, _, b = text.partition("/")
    return bound(a, False), bound(b if "/" in text else a, True)


def _matches(item: "pystac.Item", st: "StacConfig", bbox: Optional[tuple[float, float, float, float]]) -> bool:
    """The block's filters applied to one item of a static catalog."""
    if st.collections is not None and item.collection_id not in st.collections:
        return False
    if st.datetime is not None:
        lo, hi = _parse_range(st.datetime)
        t = item.datetime or item.common_metadata.start_datetime
        if t is not None:
            t = t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)
            if (lo is not None and t < lo) or (hi is not None and t > hi):
                return False
    if bbox is not None and item.bbox is not None and not bboxes_overlap(item.bbox, bbox):
        return False
    return True


def _spans(west: float, east: float) -> list[tuple[float, float]]:
    """The longitude intervals of a bbox; one that crosses the antimeridian (west > east) is two."""
    return [(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]


def bboxes_overlap(a: Any, b: Any) -> bool:
    """True when two STAC bboxes (west, south, east, north; 2-D or the 6 values of a 3-D bbox)
    overlap, with a bbox whose west is east of its east crossing the antimeridian (RFC 7946).

    Examples
    --------
    >>> bboxes_overlap([170, -10, -170, 10], [175, 0, 176, 1]), bboxes_overlap([170, -10, -170, 10], [0, 0, 1, 1])
    (True, False)
    """
    a, b = list(a), list(b)
    aw, as_, ae, an = (a[0], a[1], a[3], a[4]) if len(a) == 6 else a[:4]
    bw, bs, be, bn = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b[:4]
    if as_ > bn or an < bs:
        return False
    return any(x0 <= y1 and y0 <= x1 for x0, x1 in _spans(aw, ae) for y0, y1 in _spans(bw, be))


# ---------------------------------------------------------------------------------------------
# Items -> scenes
# ---------------------------------------------------------------------------------------------
def day_order(item: "pystac.Item") -> tuple[float, str]:
    """Order of the items of one date (the composite lists them so, ties going to the first): the
    least cloudy first (``eo:cloud_cover``), then by id.
    """
    cc = item.properties.get("eo:cloud_cover")
    return (float(cc) if isinstance(cc, (int, float)) else 0.0, item.id)


def asset_keys(st: "StacConfig", item: "pystac.Item") -> Union[str, dict[str, str]]:
    """The asset holding the bands, or {role: asset}, for ``item`` (``stac.asset`` or the sensor's default)."""
    spec: Any = st.asset if st.asset is not None else DEFAULT_ASSETS.get(st.sensor.lower())
    if spec is None:
        raise ConfigError(
            f"stac.asset: no default asset for sensor {st.sensor!r}; name it (the item {item.id} has "
            f"{', '.join(sorted(item.assets))})"
        )
    if isinstance(spec, str):
        if spec not in item.assets:
            raise ConfigError(
                f"stac.asset: item {item.id} has no asset `{spec}` (it has {', '.join(sorted(item.assets))}); "
                "set stac.asset"
            )
        return spec
    out = {}
    for role, keys in spec.items():
        keys = (keys,) if isinstance(keys, str) else keys
        found = next((k for k in keys if k in item.assets), None)
        if found is None:
            raise ConfigError(
                f"stac.asset: item {item.id} has no asset for {role} ({' or '.join(keys)}; it has "
                f"{', '.join(sorted(item.assets))}); set stac.asset: {{role: asset}}"
            )
        out[role] = found
    return out


def qa_asset_key(st: "StacConfig", item: "pystac.Item", keys: Union[str, dict[str, str]]) -> Optional[tuple[str, str]]:
    """(QA role, asset key) of the QA asset a scene of ``item`` fetches (:data:`QA_ASSETS`), or
    None: ``stac.qa: {enabled: false}``, a multi-band ``asset`` (its QA, if any, is a band:
    ``bands:``), an ``asset`` mapping that names a QA role itself, or no QA asset in the item.
    """
    from .qa import QA_ROLES

    if st.qa is not None and not st.qa.enabled or isinstance(keys, str) or any(r in QA_ROLES for r in keys):
        return None
    for role, candidates in QA_ASSETS.items():
        found = next((k for k in candidates if k in item.assets), None)
        if found is not None:
            return role, found
    return None


def _raster_bands(asset: "pystac.Asset") -> list[dict[str, Any]]:
    """Per band: scale, offset, nodata declared by the asset (``raster:bands``, or STAC 1.1 ``bands``)."""
    rb = asset.extra_fields.get("raster:bands")
    if isinstance(rb, list):
        return [b if isinstance(b, dict) else {} for b in rb]
    bands = asset.extra_fields.get("bands")
    if isinstance(bands, list):
        return [
            {"scale": b.get("raster:scale"), "offset": b.get("raster:offset"), "nodata": b.get("nodata")}
            for b in bands
            if isinstance(b, dict)
        ]
    return []


def _radiometry(declared: list[dict[str, Any]]) -> dict[str, float]:
    """Scale / offset / nodata shared by every band in ``declared`` (a value the bands disagree on,
    or a scale of 1 with offset 0 (digital numbers), is left to the sensor's profile).
    """
    out: dict[str, float] = {}
    if not declared:
        return out
    for key in ("scale", "offset", "nodata"):
        values = {b.get(key) for b in declared}
        if len(values) == 1 and None not in values:
            v = values.pop()
            if isinstance(v, (int, float)):
                out[key] = float(v)
    for key in ("scale", "offset"):
        if key in out and (not math.isfinite(out[key]) or key == "scale" and out[key] == 0):
            raise InputError(
                f"raster:bands: the catalog's assets declare raster:{key} {out[key]:g}, which cannot "
                "calibrate pixels; fix the catalog, or list the files under `scenes:` with their own "
                "`scale` and `offset`"
            )
    if out.get("scale", 1.0) == 1.0 and out.get("offset", 0.0) == 0.0:
        out.pop("scale", None)
        out.pop("offset", None)
    return out


def window_groups(by_day: dict[_dt.date, list[Any]], window: int = 0) -> dict[_dt.date, list[Any]]:
    """Items per day grouped into dates of ``window`` days: the earliest day not yet taken starts
    a date, which takes the items of that day and of the ``window`` days after it; the date is
    named by that first day.  ``window=0``: one date per day.

    Examples
    --------
    >>> d = {_dt.date(2020, 8, k): [k] for k in (1, 5, 17, 20, 30)}
    >>> {k.isoformat(): v for k, v in window_groups(d, 16).items()}
    {'2020-08-01': [1, 5, 17], '2020-08-20': [20, 30]}
    """
    out: dict[_dt.date, list[Any]] = {}
    start: Optional[_dt.date] = None
    for day in sorted(by_day):
        if start is None or (day - start).days > window:
            start = day
            out[start] = []
        out[start] += by_day[day]
    return out


def scenes_from_items(
    items: list["pystac.Item"], st: "StacConfig"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scene entries (``SceneConfig`` dicts, one per UTC day, oldest first) and, per day, the
    item ids and files.
    """
    from .qa import QA_ROLES
    from .sensors import get_profile

    profile = get_profile(st.sensor)
    by_day: dict[_dt.date, list[Any]] = defaultdict(list)
    for it in items:
        by_day[_item_date(it)].append(it)
    scenes, rows = [], []
    groups = window_groups(by_day, st.window)
    for day in sorted(groups):
        day_items = sorted(groups[day], key=day_order)
        parts: list[Any] = []
        declared: list[dict[str, Any]] = []
        for it in day_items:
            keys = asset_keys(st, it)
            if isinstance(keys, str):
                asset = it.assets[keys]
                parts.append(asset.get_absolute_href() or asset.href)
                bands = (st.bands or dict(profile.bands)).values()
                rb = _raster_bands(asset)
                declared += [rb[b - 1] for b in bands if 0 < b <= len(rb)]
            else:
                parts.append(
                    {role: (it.assets[k].get_absolute_href() or it.assets[k].href) for role, k in keys.items()}
                )
                for k in keys.values():
                    declared += _raster_bands(it.assets[k])[:1]
                qa = qa_asset_key(st, it, keys)  # not in `declared`: a QA layer has no reflectance scale
                if qa is not None:
                    parts[-1][qa[0]] = it.assets[qa[1]].get_absolute_href() or it.assets[qa[1]].href
        scene: dict[str, Any] = {"date": day.isoformat(), "sensor": st.sensor}
        if isinstance(parts[0], str):
            scene["path"] = parts[0] if len(parts) == 1 else parts
            if st.bands is not None:
                scene["bands"] = dict(st.bands)
        else:
            scene["assets"] = parts[0] if len(parts) == 1 else parts
        rad = _radiometry(declared)
        if "scale" in rad and profile.scale is not None:  # DN profiles (NAIP) stay uncalibrated
            scene["scale"] = rad["scale"]
            scene["offset"] = rad.get("offset", 0.0)
        nodata = st.nodata if st.nodata is not None else rad.get("nodata")
        if nodata is not None:
            scene["nodata"] = nodata
        if st.qa is not None:
            scene["qa"] = st.qa.model_dump(exclude_defaults=True)
        scenes.append(scene)
        files = [p for part in parts for p in ([part] if isinstance(part, str) else part.values())]
        row: dict[str, Any] = {"date": day.isoformat(), "items": [it.id for it in day_items], "files": files}
        qa_files = {f: r for part in parts if isinstance(part, dict) for r, f in part.items() if r in QA_ROLES}
        if qa_files:
            row["qa"] = qa_files
        elif isinstance(parts[0], dict) and (st.qa is None or st.qa.enabled):  # one band per file: a satellite product
            row["qa_note"] = "no QA asset (qa_pixel, SCL, Fmask): clouds and shadows are not masked"
        rows.append(row)
    return scenes, rows


__all__ = [
    "expand",
    "find_scenes",
    "describe",
    "find_items",
    "search_bbox",
    "scenes_from_items",
    "asset_keys",
    "qa_asset_key",
    "day_order",
    "window_groups",
    "is_api",
    "DEFAULT_ASSETS",
    "QA_ASSETS",
    "resolve_href",
    "bboxes_overlap",
]
