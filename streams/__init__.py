"""hcs: an event-driven stream processor for health-code scans."""

__version__ = "0.1.0"
