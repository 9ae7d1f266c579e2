"""EDGE: layer styles written beside classified rasters, so QGIS and ArcGIS show them ready styled.

* ``<name>.qml``: a QGIS style (paletted renderer with class names, or a colour ramp for
  ``frequency.tif``); QGIS loads a ``.qml`` with the raster's base name automatically.
* ``<name>.tif.aux.xml``: GDAL PAM sidecar with the colour table (one entry per class, up to
  the highest class code below the no-data value 255), category names and a thematic raster
  attribute table (Value, Class, Red, Green, Blue, Alpha), read by GDAL, QGIS and ArcGIS (colours
  and class names in the legend / identify). An 8-bit GeoTIFF's own colour map always has 256
  entries, so the rasters carry their class names as ``CLASS_<code>`` tags and no colour map
  (see :class:`rs_change.export.BlockWriter`).
* polygon layers: a categorized ``.qml`` and an SLD on the ``class`` field in the rasters'
  palette (:func:`vector_qml`, :func:`vector_sld`), written beside shapefiles and GeoJSON files
  and into the GeoPackage's ``layer_styles`` table (rs_change.export).

The unobserved class (the no-data value) is listed in every legend and drawn in its palette
colour (QGIS's no-data colour), so a gap in the data is visible, not mistaken for land.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence
from xml.sax.saxutils import quoteattr

from .names import style_names

RGBA = tuple[int, int, int, int]

_HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"

#: frequency.tif ramp: percent -> colour (dry land to always water)
FREQUENCY_RAMP: list[tuple[int, RGBA]] = [
    (0, (240, 240, 230, 255)),
    (1, (255, 237, 160, 255)),
    (25, (161, 218, 180, 255)),
    (50, (65, 182, 196, 255)),
    (75, (44, 127, 184, 255)),
    (100, (37, 52, 148, 255)),
]


#: water_fraction_<date>.tif ramp: percent -> colour (land, the 49/50 boundary of the water mask,
#: open water); 255 (unobserved) is no data
FRACTION_RAMP: list[tuple[int, RGBA]] = [
    (0, (240, 240, 230, 255)),
    (49, (205, 190, 150, 255)),
    (50, (160, 210, 235, 255)),
    (100, (8, 48, 107, 255)),
]


def _hex(c: RGBA) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c[:3])


def _pipe(renderer: str) -> str:
    return (
        f"{_HEADER}<qgis version=\"3.28.0\" styleCategories=\"AllStyleCategories\">\n  <pipe>\n{renderer}"
        "    <brightnesscontrast brightness=\"0\" contrast=\"0\" gamma=\"1\"/>\n"
        "    <huesaturation saturation=\"0\" grayscaleMode=\"0\" colorizeOn=\"0\"/>\n"
        "    <rasterresampler maxOversampling=\"2\"/>\n  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n"
    )


def paletted_qml(classes: Mapping[int, str], colors: Mapping[int, RGBA], nodata: int | None = 255) -> str:
    """QGIS style (paletted renderer) text for a classified single-band raster.

    Parameters
    ----------
    classes : mapping code -> class name
    colors : mapping code -> (r, g, b, a)
    nodata : int or None, default 255
        The no-data code: listed in the palette (so the legend names it) and drawn in its colour
        as QGIS's no-data colour (QGIS never passes no-data pixels to the palette).

    Returns
    -------
    str
        The ``.qml`` XML.
    """
    entries = "".join(
        f"        <paletteEntry value=\"{code}\" color=\"{_hex(colors[code])}\" alpha=\"{colors[code][3]}\" "
        f"label={quoteattr(name)}/>\n"
        for code, name in classes.items() if code in colors
    )
    nd = colors.get(nodata) if nodata is not None else None
    nd_color = ",".join(str(v) for v in nd) if nd is not None and nd[3] > 0 else ""
    renderer = (
        f"    <rasterrenderer type=\"paletted\" band=\"1\" opacity=\"1\" alphaBand=\"-1\" nodataColor=\"{nd_color}\">\n"
        "      <rasterTransparency/>\n      <colorPalette>\n" + entries + "      </colorPalette>\n"
        "    </rasterrenderer>\n"
    )
    return _pipe(renderer)


def ramp_qml(stops: Sequence[tuple[int, RGBA]] = tuple(FREQUENCY_RAMP), label_suffix: str = " %",
             minimum: int = 0, maximum: int = 100) -> str:
    """QGIS style (single-band pseudocolour, interpolated) text, e.g. for ``frequency.tif`` (0-100)."""
    items = "".join(
        f"            <item value=\"{v}\" color=\"{_hex(c)}\" alpha=\"{c[3]}\" label=\"{v}{label_suffix}\"/>\n"
        for v, c in stops
    )
    renderer = (
        f"    <rasterrenderer type=\"singlebandpseudocolor\" band=\"1\" opacity=\"1\" alphaBand=\"-1\" "
        f"classificationMin=\"{minimum}\" classificationMax=\"{maximum}\" nodataColor=\"\">\n"
        "      <rasterTransparency/>\n      <rastershader>\n"
        f"        <colorrampshader colorRampType=\"INTERPOLATED\" classificationMode=\"1\" clip=\"0\" "
        f"minimumValue=\"{minimum}\" maximumValue=\"{maximum}\">\n" + items
        + "        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n"
    )
    return _pipe(renderer)


def ramp_colormap(stops: Sequence[tuple[int, RGBA]] = tuple(FREQUENCY_RAMP), maximum: int = 100) -> dict[int, RGBA]:
    """A GDAL colour table (code -> RGBA) for 0..maximum interpolated between ``stops``; 255 transparent."""
    out: dict[int, RGBA] = {}
    for v in range(maximum + 1):
        for (v0, c0), (v1, c1) in zip(stops[:-1], stops[1:]):
            if v0 <= v <= v1:
                t = 0.0 if v1 == v0 else (v - v0) / (v1 - v0)
                out[v] = tuple(int(round(a + t * (b - a))) for a, b in zip(c0, c1))  # type: ignore[assignment]
                break
    out[255] = (0, 0, 0, 0)
    return out


def pam_xml(classes: Mapping[int, str], colors: Mapping[int, RGBA], nodata: int | None = 255) -> str:
    """GDAL PAM ``.aux.xml`` text: the colour table, category names and a thematic raster
    attribute table of a classified raster.

    The colour table and the category names run from code 0 to the highest class code other
    than ``nodata`` (GDAL indexes both by pixel value); the no-data class is named in the
    attribute table, which lists every class with its colour.
    """
    top = max((c for c in classes if c != nodata), default=-1)
    cats = "".join(f"      <Category>{_esc(classes.get(i, ''))}</Category>\n" for i in range(top + 1))
    table = "".join(
        '      <Entry c1="{}" c2="{}" c3="{}" c4="{}"/>\n'.format(*colors.get(i, (0, 0, 0, 0))) for i in range(top + 1)
    )
    fields = [("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8), ("Alpha", 0, 9)]
    defs = "".join(
        f'      <FieldDefn index="{i}">\n        <Name>{n}</Name>\n        <Type>{t}</Type>\n'
        f'        <Usage>{u}</Usage>\n      </FieldDefn>\n'
        for i, (n, t, u) in enumerate(fields)
    )
    rows = "".join(
        f"      <Row index=\"{i}\">\n        <F>{code}</F>\n        <F>{_esc(name)}</F>\n"
        + "".join(f"        <F>{v}</F>\n" for v in colors.get(code, (0, 0, 0, 0)))
        + "      </Row>\n"
        for i, (code, name) in enumerate(sorted(classes.items()))
    )
    return (
        "<PAMDataset>\n  <PAMRasterBand band=\"1\">\n    <ColorInterp>Palette</ColorInterp>\n"
        "    <CategoryNames>\n" + cats + "    </CategoryNames>\n"
        "    <ColorTable>\n" + table + "    </ColorTable>\n"
        "    <GDALRasterAttributeTable tableType=\"thematic\">\n" + defs + rows
        + "    </GDALRasterAttributeTable>\n  </PAMRasterBand>\n</PAMDataset>\n"
    )


def _outline(c: RGBA) -> RGBA:
    """A darker shade of ``c`` for polygon outlines."""
    return (int(c[0] * 0.6), int(c[1] * 0.6), int(c[2] * 0.6), 255)


def _qgis_color(c: RGBA) -> str:
    return ",".join(str(int(v)) for v in c)


def vector_qml(field: str, classes: Mapping[str, RGBA]) -> str:
    """QGIS style (categorized renderer on ``field``) of a polygon layer: one filled symbol per
    class value, in the raster palette, with a darker outline.

    Parameters
    ----------
    field : str
        The attribute holding the class name (``class``).
    classes : mapping class name -> (r, g, b, a)

    Returns
    -------
    str
        The ``.qml`` XML (also the ``styleQML`` of a GeoPackage's ``layer_styles`` row).
    """
    cats = "".join(
        f"      <category value={quoteattr(name)} symbol=\"{i}\" label={quoteattr(name)} render=\"true\"/>\n"
        for i, name in enumerate(classes)
    )
    symbols = ""
    for i, (name, c) in enumerate(classes.items()):
        props = {"color": _qgis_color(c), "outline_color": _qgis_color(_outline(c)), "outline_style": "solid",
                 "outline_width": "0.2", "outline_width_unit": "MM", "style": "solid", "joinstyle": "miter"}
        legacy = "".join(f"          <prop k=\"{k}\" v=\"{v}\"/>\n" for k, v in props.items())
        opts = "".join(f"            <Option name=\"{k}\" type=\"QString\" value=\"{v}\"/>\n" for k, v in props.items())
        symbols += (
            f"      <symbol type=\"fill\" name=\"{i}\" alpha=\"1\" clip_to_extent=\"1\" force_rhr=\"0\">\n"
            "        <layer class=\"SimpleFill\" enabled=\"1\" locked=\"0\" pass=\"0\">\n"
            "          <Option type=\"Map\">\n" + opts + "          </Option>\n" + legacy
            + "        </layer>\n      </symbol>\n"
        )
    return (
        f"{_HEADER}<qgis version=\"3.22.0\" styleCategories=\"Symbology\">\n"
        f"  <renderer-v2 type=\"categorizedSymbol\" attr={quoteattr(field)} symbollevels=\"0\" enableorderby=\"0\" "
        "forceraster=\"0\">\n"
        "    <categories>\n" + cats + "    </categories>\n    <symbols>\n" + symbols + "    </symbols>\n"
        "  </renderer-v2>\n  <blendMode>0</blendMode>\n  <featureBlendMode>0</featureBlendMode>\n</qgis>\n"
    )


def vector_sld(layer: str, field: str, classes: Mapping[str, RGBA]) -> str:
    """OGC SLD 1.0 style of a polygon layer: one rule per class value of ``field``, filled in the
    raster palette (GeoServer, ArcGIS Pro, QGIS).
    """
    rules = "".join(
        f"        <Rule>\n          <Name>{_esc(name)}</Name>\n          <Title>{_esc(name)}</Title>\n"
        "          <ogc:Filter>\n            <ogc:PropertyIsEqualTo>\n"
        f"              <ogc:PropertyName>{_esc(field)}</ogc:PropertyName>\n"
        f"              <ogc:Literal>{_esc(name)}</ogc:Literal>\n"
        "            </ogc:PropertyIsEqualTo>\n          </ogc:Filter>\n          <PolygonSymbolizer>\n"
        f'            <Fill>\n              <CssParameter name="fill">{_hex(c)}</CssParameter>\n            </Fill>\n'
        f'            <Stroke>\n              <CssParameter name="stroke">{_hex(_outline(c))}</CssParameter>\n'
        '              <CssParameter name="stroke-width">0.5</CssParameter>\n            </Stroke>\n'
        "          </PolygonSymbolizer>\n        </Rule>\n"
        for name, c in classes.items()
    )
    return (
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<StyledLayerDescriptor version=\"1.0.0\" xmlns=\"http://www.opengis.net/sld\" "
        "xmlns:ogc=\"http://www.opengis.net/ogc\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        "xsi:schemaLocation=\"http://www.opengis.net/sld http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd\">\n"
        f"  <NamedLayer>\n    <Name>{_esc(layer)}</Name>\n    <UserStyle>\n      <Name>{_esc(layer)}</Name>\n"
        "      <FeatureTypeStyle>\n" + rules + "      </FeatureTypeStyle>\n    </UserStyle>\n  </NamedLayer>\n"
        "</StyledLayerDescriptor>\n"
    )


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def observations_ramp(n_dates: int) -> list[tuple[int, RGBA]]:
    """``observations.tif`` ramp: 0 dates (never observed) grey, then light to dark up to ``n_dates``."""
    return [(0, (175, 175, 175, 255)), (1, (255, 245, 200, 255)), (max(2, n_dates), (90, 40, 120, 255))]


def clear_count_ramp(n_scenes: int) -> list[tuple[int, RGBA]]:
    """``clear_count_<date>.tif`` ramp: 0 scenes (unobserved) grey, then light to dark blue up to ``n_scenes``."""
    return [(0, (175, 175, 175, 255)), (1, (222, 235, 247, 255)), (max(2, n_scenes), (8, 48, 107, 255))]


def write_styles(tif: Path, classes: Mapping[int, str] | None, colors: Mapping[int, RGBA] | None,
                 ramp: Sequence[tuple[int, RGBA]] | None = None, unit: str = " dates") -> list[Path]:
    """Write ``<stem>.qml`` (and, for classified rasters, ``<name>.aux.xml``) beside ``tif``.

    ``classes=None`` writes a ramp style: ``ramp`` (value, colour) stops labelled in ``unit``, or
    the frequency ramp (0-100 %).  Returns the paths written.
    """
    tif = Path(tif)
    qml, *aux = (tif.with_name(n) for n in style_names(tif.name, classified=classes is not None))
    if classes is None:
        if ramp is None:
            qml.write_text(ramp_qml(), encoding="utf-8")
        else:
            qml.write_text(ramp_qml(ramp, unit, ramp[0][0], ramp[-1][0]), encoding="utf-8")
        return [qml]
    qml.write_text(paletted_qml(classes, colors or {}), encoding="utf-8")
    aux[0].write_text(pam_xml(classes, colors or {}), encoding="utf-8")
    return [qml, aux[0]]
