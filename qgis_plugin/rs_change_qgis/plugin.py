"""The plugin object: registers the Processing provider, or says in one line why it cannot."""

from qgis.core import Qgis, QgsApplication, QgsMessageLog

from .env import import_rs_change


class RsChangePlugin:
    """Registers :class:`~rs_change_qgis.provider.RsChangeProvider` when rs_change imports.

    When it does not, nothing is registered: the one-line install hint goes to the message log
    (tab "rs-change") and, in the desktop application, to the message bar; the plugin raises
    nothing, so QGIS does not show a Python error.
    """

    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None
        self.problem = None

    def initProcessing(self):  # noqa: N802 - QGIS's name
        if self.provider is not None:
            return
        self.problem = import_rs_change()
        if self.problem is not None:
            QgsMessageLog.logMessage(self.problem, "rs-change", Qgis.Warning)
            return
        from .provider import RsChangeProvider

        self.provider = RsChangeProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 - QGIS's name
        self.initProcessing()
        if self.problem is not None and self.iface is not None:
            self.iface.messageBar().pushMessage("rs-change", self.problem, level=Qgis.Warning, duration=0)

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
