"""rs-change's QGIS plugin: a Processing provider (id ``rschange``) over the rs_change package.

QGIS calls :func:`classFactory` with the interface (``None`` in ``qgis_process``, which then
calls ``initProcessing`` only).
"""


def classFactory(iface):  # noqa: N802 - the name QGIS looks for
    """The plugin object QGIS loads."""
    from .plugin import RsChangePlugin

    return RsChangePlugin(iface)
