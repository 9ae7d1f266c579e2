"""rs-change: surface-water change from satellite and aerial images."""

__version__ = "0.1.0"
