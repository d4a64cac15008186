"""Writes the Grafana dashboards of deploy/grafana/dashboards/ (run it after changing a panel).

The dashboards are data; this file is where they are edited, so that panel layout, datasource
and units stay uniform. tests/unit/test_dashboards.py checks the JSON is what this writes, and
tests/integration/test_monitoring_end_to_end.py runs every query against a real Prometheus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
OUT = Path(__file__).parent / "dashboards"


def panel(title: str, expr: str, legend: str, unit: str = "short", kind: str = "timeseries",
          description: str = "") -> dict[str, Any]:
    return {"type": kind, "title": title, "description": description, "datasource": DATASOURCE,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}]}


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], variables: list[dict[str, Any]]) -> dict[str, Any]:
    laid_out = []
    for i, p in enumerate(panels):
        laid_out.append({"id": i + 1, "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)}, **p})
    return {"uid": uid, "title": title, "tags": ["hcs"], "timezone": "Asia/Shanghai", "schemaVersion": 39,
            "version": 1, "editable": True, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": variables}, "panels": laid_out}


CITY = dashboard("hcs-city", "hcs — city overview", [
    panel("Scans per second by district", "district:hcs_scans:rate5m", "{{district}}", "ops"),
    panel("Deny rate by district", "district:hcs_deny_ratio:rate5m", "{{district}}", "percentunit"),
    panel("Alerts by kind and district (15 min)", "district_kind:hcs_alerts:increase15m", "{{district}} {{kind}}"),
    panel("Three-100% compliance by district and measure", "district_measure:hcs_three100_compliance:ratio15m",
          "{{district}} {{measure}}", "percentunit", description="ok / (ok + miss) over closed checkpoint windows"),
    panel("Late scans per second by district", "district:hcs_late_events:rate5m", "{{district}}", "ops"),
    panel("Dead letters per second", "topic_reason:hcs_dead_letters:rate5m", "{{topic}} {{reason}}", "ops"),
    panel("Worker consumer lag (records)", "instance:hcs_consumer_lag:sum", "{{instance}}"),
    panel("Scan event lag p99", "histogram_quantile(0.99, sum by (le) (rate(hcs_event_lag_seconds_bucket[5m])))",
          "p99", "s", description="from a scan's event_time to its decision"),
], [])

DISTRICT_VARIABLE = {
    "name": "district", "label": "District", "type": "query", "datasource": DATASOURCE,
    "query": {"query": "label_values(hcs_scans_total, district)", "refId": "district"},
    "definition": "label_values(hcs_scans_total, district)", "refresh": 2, "sort": 1,
    "current": {"text": "330106", "value": "330106"},
}
DISTRICT = dashboard("hcs-district", "hcs — district drill-down", [
    panel("Scans per second by venue type", 'sum by (venue_type) (rate(hcs_scans_total{district="$district"}[5m]))',
          "{{venue_type}}", "ops"),
    panel("Decisions per second", 'sum by (decision) (rate(hcs_scans_total{district="$district"}[5m]))',
          "{{decision}}", "ops"),
    panel("Reasons per second", 'sum by (reason) (rate(hcs_scan_reasons_total{district="$district"}[5m]))',
          "{{reason}}", "ops"),
    panel("Alerts by kind and severity (15 min)",
          'sum by (kind, severity) (increase(hcs_alerts_total{district="$district"}[15m]))', "{{kind}} {{severity}}"),
    panel("Three-100% compliance by measure", 'district_measure:hcs_three100_compliance:ratio15m{district="$district"}',
          "{{measure}}", "percentunit"),
    panel("Three-100% misses by measure (15 min)",
          'sum by (measure) (increase(hcs_three100_checks_total{district="$district",outcome="miss"}[15m]))',
          "{{measure}}"),
    panel("People counted per second by venue type",
          'sum by (venue_type) (rate(hcs_entries_total{district="$district"}[5m]))', "{{venue_type}}", "ops"),
    panel("Scan event lag p99",
          'histogram_quantile(0.99, sum by (le) (rate(hcs_event_lag_seconds_bucket{district="$district"}[5m])))',
          "p99", "s"),
], [DISTRICT_VARIABLE])

DASHBOARDS = {"hcs-city.json": CITY, "hcs-district.json": DISTRICT}


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    for name, board in DASHBOARDS.items():
        (OUT / name).write_text(render(board), encoding="utf-8")
        print(f"wrote {OUT / name}")
