"""EDGE: layer styles written beside classified rasters, so QGIS and ArcGIS show them ready styled.

* ``<name>.qml``: a QGIS style (paletted renderer with class names, or a colour ramp for
  ``frequency.tif``); QGIS loads a ``.qml`` with the raster's base name automatically.
* ``<name>.tif.aux.xml``: GDAL PAM sidecar with category names and a thematic raster attribute
  table (Value, Class, Red, Green, Blue, Alpha), read by GDAL, QGIS and ArcGIS (class names in
  the legend / identify).

The rasters themselves also carry a colour table and ``CLASS_<code>`` tags (see
:class:`rs_change.export.BlockWriter`).
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
        Code left out of the palette (transparent).

    Returns
    -------
    str
        The ``.qml`` XML.
    """
    entries = "".join(
        f"        <paletteEntry value=\"{code}\" color=\"{_hex(colors[code])}\" alpha=\"{colors[code][3]}\" "
        f"label={quoteattr(name)}/>\n"
        for code, name in classes.items() if code != nodata
    )
    renderer = (
        "    <rasterrenderer type=\"paletted\" band=\"1\" opacity=\"1\" alphaBand=\"-1\" nodataColor=\"\">\n"
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


def pam_xml(classes: Mapping[int, str], colors: Mapping[int, RGBA]) -> str:
    """GDAL PAM ``.aux.xml`` text: category names and a thematic raster attribute table."""
    top = max(classes)
    cats = "".join(f"      <Category>{_esc(classes.get(i, ''))}</Category>\n" for i in range(top + 1))
    fields = [("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8), ("Alpha", 0, 9)]
    defs = "".join(
        f"      <FieldDefn index=\"{i}\">\n        <Name>{n}</Name>\n        <Type>{t}</Type>\n        <Usage>{u}</Usage>\n      </FieldDefn>\n"
        for i, (n, t, u) in enumerate(fields)
    )
    rows = "".join(
        f"      <Row index=\"{i}\">\n        <F>{code}</F>\n        <F>{_esc(name)}</F>\n"
        + "".join(f"        <F>{v}</F>\n" for v in colors.get(code, (0, 0, 0, 0)))
        + "      </Row>\n"
        for i, (code, name) in enumerate(sorted(classes.items()))
    )
    return (
        "<PAMDataset>\n  <PAMRasterBand band=\"1\">\n    <CategoryNames>\n" + cats + "    </CategoryNames>\n"
        "    <GDALRasterAttributeTable tableType=\"thematic\">\n" + defs + rows
        + "    </GDALRasterAttributeTable>\n  </PAMRasterBand>\n</PAMDataset>\n"
    )


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_styles(tif: Path, classes: Mapping[int, str] | None, colors: Mapping[int, RGBA] | None) -> list[Path]:
    """Write ``<stem>.qml`` (and, for classified rasters, ``<name>.aux.xml``) beside ``tif``.

    ``classes=None`` writes the frequency ramp style.  Returns the paths written.
    """
    tif = Path(tif)
    qml, *aux = (tif.with_name(n) for n in style_names(tif.name, classified=classes is not None))
    if classes is None:
        qml.write_text(ramp_qml(), encoding="utf-8")
        return [qml]
    qml.write_text(paletted_qml(classes, colors or {}), encoding="utf-8")
    aux[0].write_text(pam_xml(classes, colors or {}), encoding="utf-8")
    return [qml, aux[0]]
