"""Writes the Grafana dashboards of deploy/grafana/dashboards/ (run it after changing a panel).

The dashboards are built with Grafana's own Foundation SDK (``grafana-foundation-sdk``, in the
``test`` extra): its builders know the dashboard schema, lay the panels out on the grid and
encode the JSON Grafana provisions. This file is where a panel is edited, so that datasource,
sizes and units stay uniform. tests/unit/test_dashboards.py checks the JSON is what this writes,
and tests/integration/test_monitoring_end_to_end.py runs every query against a real Prometheus
that scraped a real worker.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders.common import VizLegendOptions, VizTooltipOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, SortOrder, TooltipDisplayMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption, VariableRefresh, VariableSort

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")  # provisioning/datasources/prometheus.yml
OUT = Path(__file__).parent / "dashboards"


def panel(title: str, expr: str, legend: str, unit: str = "short", description: str = "") -> Timeseries:
    built = (Timeseries().title(title).datasource(DATASOURCE).unit(unit).height(8).span(12)  # two per row
             .legend(VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.LIST)
                     .placement(LegendPlacement.BOTTOM))
             .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
             .with_target(PrometheusQuery().ref_id("A").datasource(DATASOURCE).expr(expr).legend_format(legend)))
    return built.description(description) if description else built


def dashboard(uid: str, title: str, panels: list[Timeseries | Row], variables: list[QueryVariable]) -> Dashboard:
    board = (Dashboard(title).uid(uid).tags(["hcs"]).timezone("Asia/Shanghai").editable().refresh("30s")
             .time("now-6h", "now"))
    for variable in variables:
        board = board.with_variable(variable)
    for number, p in enumerate(panels, start=1):
        board = board.with_row(p.id(number)) if isinstance(p, Row) else board.with_panel(p.id(number))
    return board


CITY = dashboard("hcs-city", "hcs — city overview", [
    panel("Scans per second by district", "district:hcs_scans:rate5m", "{{district}}", "ops"),
    panel("Deny rate by district", "district:hcs_deny_ratio:rate5m", "{{district}}", "percentunit"),
    panel("Alerts by kind and district (15 min)", "district_kind:hcs_alerts:increase15m", "{{district}} {{kind}}"),
    panel("Three-100% compliance by district and measure", "district_measure:hcs_three100_compliance:ratio15m",
          "{{district}} {{measure}}", "percentunit", description="ok / (ok + miss) over closed checkpoint windows"),
    panel("Late scans per second by district", "district:hcs_late_events:rate5m", "{{district}}", "ops"),
    panel("Managed persons by district and phase", "max by (district, phase) (hcs_managed_persons)",
          "{{district}} {{phase}}", description="key personnel on the register in each phase today, by "
          "managing district (every worker holds the whole register: max, not sum)"),
    panel("Isolation breaches and restrictions per second by district",
          'sum by (district, reason) '
          '(rate(hcs_scan_reasons_total{reason=~"ISOLATION_BREACH|UNDER_HEALTH_MONITORING"}[5m]))',
          "{{district}} {{reason}}", "ops", description="scans of managed persons judged ISOLATION_BREACH or "
          "UNDER_HEALTH_MONITORING, by the venue's district"),
    panel("Dead letters per second", "topic_reason:hcs_dead_letters:rate5m", "{{topic}} {{reason}}", "ops"),
    panel("Worker consumer lag (records)", "instance:hcs_consumer_lag:sum", "{{instance}}"),
    panel("Scan event lag p99", "histogram_quantile(0.99, sum by (le) (rate(hcs_event_lag_seconds_bucket[5m])))",
          "p99", "s", description="from a scan's event_time to its decision"),
    panel("Policy version in force", "max by (version) (hcs_policy_version_info)", "{{version}}",
          description="the version each worker judges scans of now by (hcs policy list); a change shows as a "
          "new series"),
    Row("Supervision"),
    panel("Open findings by district", 'sum by (district) (hcs_findings{status=~"OPEN|REOPENED"})', "{{district}}",
          description="findings waiting for rectification (reopened ones included); each worker counts its "
          "partitions': sum"),
    panel("Overdue findings by district", "sum by (district) (hcs_findings_overdue)", "{{district}}",
          description="open or reopened findings past their deadline"),
    panel("Reopened findings by district", 'sum by (district) (hcs_findings{status="REOPENED"})', "{{district}}",
          description="findings a look-back found again, not rectified since"),
    panel("Findings closed this week by district",
          'sum by (district) (increase(hcs_finding_transitions_total{action="close"}[7d]))', "{{district}}",
          description="findings whose look-back passed without a recurrence, in the last 7 days"),
    Row("Source tracing"),
    panel("Cases traced by district (1 h)", "sum by (district) (increase(hcs_traces_total[1h]))", "{{district}}",
          description="cases whose trace completed (every venue partition reported), by the case's district"),
    panel("Exposures found by district (1 h)", "sum by (district) (increase(hcs_exposures_total[1h]))",
          "{{district}}", description="a case's contacts at a venue, each written once, by the venue's district"),
    panel("Contacts stopped per second by district",
          'sum by (district) (rate(hcs_scan_reasons_total{reason="TRACED_CONTACT"}[5m]))', "{{district}}", "ops",
          description="scans of traced contacts judged TRACED_CONTACT (denied, or reported at hospitals)"),
    panel("Trace time p99", "histogram_quantile(0.99, sum by (le) (rate(hcs_trace_seconds_bucket[1h])))", "p99",
          "s", description="from a case read to its trace complete"),
    panel("Visits stored", "sum(hcs_visits_stored)", "visits",
          description="visits kept on disk for tracing, every worker's partitions (deleted after "
          "visit_retention_days)"),
    Row("On-call"),
    panel("Open incidents by district and status",
          'sum by (district, status) (hcs_incidents{status=~"TRIGGERED|ACKNOWLEDGED"})', "{{district}} {{status}}",
          description="incidents nobody acknowledged yet (TRIGGERED) and those someone is on (ACKNOWLEDGED)"),
    panel("Notifications by district and level (1 h)",
          "sum by (district, level) (increase(hcs_escalations_total[1h]))", "{{district}} L{{level}}",
          description="level 1: incidents triggered (or back from an ack that timed out); 2 and 3: escalated "
          "to the district's supervisors and leadership because nobody acknowledged in time"),
    panel("Time to acknowledge p90 by district",
          "histogram_quantile(0.9, sum by (le, district) (rate(hcs_incident_ack_seconds_bucket[1h])))",
          "{{district}}", "s", description="from an incident's trigger to its first ack, over the last hour"),
], [])

DISTRICT_VARIABLE = (
    QueryVariable("district").label("District").datasource(DATASOURCE)
    .query("label_values(hcs_scans_total, district)")
    .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
    .current(VariableOption(text="330106", value="330106"))
)
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
    panel("Managed persons by phase", 'max by (phase) (hcs_managed_persons{district="$district"})', "{{phase}}",
          description="key personnel this district manages, in each phase today"),
    panel("Isolation breaches and restrictions per second",
          'sum by (reason, venue_type) (rate(hcs_scan_reasons_total{district="$district",'
          'reason=~"ISOLATION_BREACH|UNDER_HEALTH_MONITORING"}[5m]))', "{{reason}} {{venue_type}}", "ops"),
    panel("People counted per second by venue type",
          'sum by (venue_type) (rate(hcs_entries_total{district="$district"}[5m]))', "{{venue_type}}", "ops"),
    panel("Scan event lag p99",
          'histogram_quantile(0.99, sum by (le) (rate(hcs_event_lag_seconds_bucket{district="$district"}[5m])))',
          "p99", "s"),
    panel("Policy version in force (all districts)", "max by (version) (hcs_policy_version_info)", "{{version}}",
          description="the version scans of now are judged by; a district's overrides are inside a version"),
    Row("Isolation points"),
    panel("Residents in centralized isolation",
          'max(hcs_managed_persons{district="$district",phase="centralized_isolation"})', "residents",
          description="persons the district manages in centralized isolation today (the register)"),
    panel("Isolation points: checks done per day",
          'sum by (kind) (increase(hcs_isolation_observations_total{district="$district",outcome="done"}[1d])) / '
          'sum by (kind) (increase(hcs_isolation_observations_total{district="$district"}[1d]))',
          "{{kind}}", "percentunit", description="temperature checks and NAT samples done of those due, over the "
          "isolation points' days closed in the last 24 h"),
    panel("Isolation points: missed per day",
          'sum by (kind) (increase(hcs_isolation_observations_total{district="$district",outcome="missed"}[1d]))',
          "{{kind}}"),
    Row("Supervision"),
    panel("Findings by status", 'sum by (status) (hcs_findings{district="$district",status=~"OPEN|REOPENED|'
          'PENDING_VERIFICATION|VERIFIED"})', "{{status}}",
          description="open and reopened (to rectify), pending verification, verified (waiting for the look-back)"),
    panel("Overdue findings", 'sum(hcs_findings_overdue{district="$district"})', "overdue",
          description="open or reopened findings past their deadline (each raised one FINDING_OVERDUE)"),
    panel("Reopened findings", 'sum(hcs_findings{district="$district",status="REOPENED"})', "reopened",
          description="findings a look-back found again, not rectified since"),
    panel("Findings closed this week",
          'sum(increase(hcs_finding_transitions_total{district="$district",action="close"}[7d]))', "closed",
          description="findings whose look-back passed without a recurrence, in the last 7 days"),
    Row("Source tracing"),
    panel("Cases traced (1 h)", 'sum(increase(hcs_traces_total{district="$district"}[1h]))', "cases",
          description="the district's cases whose trace completed"),
    panel("Exposures at the district's venues (1 h)", 'sum(increase(hcs_exposures_total{district="$district"}[1h]))',
          "exposures", description="contacts of any case found at this district's venues"),
    panel("Contacts stopped per second by venue type",
          'sum by (venue_type) (rate(hcs_scan_reasons_total{district="$district",reason="TRACED_CONTACT"}[5m]))',
          "{{venue_type}}", "ops", description="traced contacts' scans at this district's checkpoints"),
    Row("On-call"),
    panel("Incidents by status", 'sum by (status) (hcs_incidents{district="$district"})', "{{status}}",
          description="TRIGGERED: nobody has acknowledged; ACKNOWLEDGED: someone is on it; RESOLVED: kept 35 days"),
    panel("Notifications by level and severity (1 h)",
          'sum by (level, severity) (increase(hcs_escalations_total{district="$district"}[1h]))',
          "L{{level}} {{severity}}", description="level 2 and 3: escalations nobody acknowledged in time"),
    panel("Time to acknowledge",
          'histogram_quantile(0.5, sum by (le) (rate(hcs_incident_ack_seconds_bucket{district="$district"}[1h])))',
          "p50", "s", description="from an incident's trigger to its first ack, over the last hour"),
], [DISTRICT_VARIABLE])

DASHBOARDS = {"hcs-city.json": CITY, "hcs-district.json": DISTRICT}


def render(board: Dashboard) -> str:
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    for name, board in DASHBOARDS.items():
        (OUT / name).write_text(render(board), encoding="utf-8")
        print(f"wrote {OUT / name}")
