"""Faust's Prometheus sensor, with metric names ``promtool check metrics`` accepts.

Faust 0.15 names its event runtime histogram ``<prefix>_events_runtime_ms`` and observes
milliseconds: an abbreviated unit and not the base unit, which promtool's lint refuses. Here it
is ``<prefix>_events_runtime_seconds``, in seconds; every other metric of the sensor is Faust's.
"""

from __future__ import annotations

from faust.sensors.prometheus import MS_LATENCY_BUCKETS, FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry, Histogram


class _SecondsMonitor(PrometheusMonitor):
    def secs_to_ms(self, timestamp: float) -> float:
        """Faust converts the event runtime only, and only through this: keep it in seconds."""
        return timestamp


def faust_monitor(registry: CollectorRegistry, prefix: str) -> PrometheusMonitor:
    metrics = FaustMetrics.create(registry, prefix)
    registry.unregister(metrics.events_runtime_latency)
    seconds = Histogram(f"{prefix}_events_runtime_seconds", "Time from taking an event to acknowledging it (seconds)",
                        registry=registry, buckets=tuple(ms / 1000 for ms in MS_LATENCY_BUCKETS))
    return _SecondsMonitor(metrics=metrics._replace(events_runtime_latency=seconds))
