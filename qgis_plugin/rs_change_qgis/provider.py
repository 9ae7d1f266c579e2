"""The Processing provider ``rschange``: rs-change's tools in the Processing toolbox."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON = os.path.join(os.path.dirname(__file__), "icon.svg")


class RsChangeProvider(QgsProcessingProvider):
    """Provider ``rschange``: ``run``, ``watermask``, ``change``, ``sample`` and ``assess``."""

    def id(self):
        return "rschange"

    def name(self):
        return "rs-change"

    def longName(self):  # noqa: N802 - QGIS's name
        import rs_change

        return f"rs-change {rs_change.__version__}: surface-water change"

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802 - QGIS's name
        return ICON

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 - QGIS's name
        return ["tif"]  # rs-change writes Cloud-Optimized GeoTIFFs

    def supportedOutputVectorLayerExtensions(self):  # noqa: N802 - QGIS's name
        return ["gpkg"]

    def loadAlgorithms(self):  # noqa: N802 - QGIS's name
        from .algorithms import ALGORITHMS

        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
