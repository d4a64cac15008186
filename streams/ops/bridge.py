"""``hcs alerts-bridge``: every alert of ``hcs.alerts.v1`` posted to Alertmanager's v2 API.

Labels identify an alert in Alertmanager, so a re-delivered alert updates the same one instead
of adding a second: kind, severity, district, venue, checkpoint, scope and ``dedup_id`` (a
digest of the dedup key, distinguishing the people of one venue without naming them). The
pseudonymous ``person_ref`` goes in annotations only, never in labels. Events are acknowledged
only once Alertmanager accepted them; until then the bridge retries, so nothing is lost.

An alert fires for its useful life counted from when the worker raised it (its record's Kafka
timestamp), not from when the bridge reads it: a finding for an hour, a silent checkpoint until
its resolved alert (a week at most). An older alert is posted as already ended, so a bridge
reading the topic from the start never pages anyone for last week's alerts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import orjson
from mode import CrashingSupervisor

from streams.contract import topics
from streams.kafka import consuming
from streams.kafka.health import WATCH_TICK_S, ConnectionWatch
from streams.kafka.patches.app import AtLeastOnceApp, QuietWorker
from streams.rules import codes as c
from streams.settings import Settings
from streams.times import parse_rfc3339, utc_rfc3339

log = logging.getLogger(__name__)

EVENT_ALERT_VISIBLE_S = 3600.0  # a one-off finding stays firing in Alertmanager for an hour after it was raised
STATE_ALERT_VISIBLE_S = 7 * 86400.0  # a state (a silent checkpoint) fires until resolved, a week at most
STATE_KINDS = frozenset({c.CHECKPOINT_SILENT})
SERVICE_KINDS = frozenset({c.POLICY_REJECTED})  # for the hcs operators, not a district's on-call
MAX_BACKOFF_S = 30.0


def to_alertmanager(alert: dict[str, Any], now: float, raised_at: float | None = None) -> dict[str, Any]:
    """The Alertmanager v2 ``postableAlert`` for one hcs alert, raised at ``raised_at`` (the
    Kafka timestamp of its record; unknown or ahead of ``now``: now)."""
    kind = alert["kind"]
    labels = {
        "alertname": kind,
        "kind": kind,
        "severity": alert["severity"],
        "district": alert["district"],
        "venue_id": alert["venue_id"],
        "scope": "service" if kind in SERVICE_KINDS else "person" if alert.get("person_ref") else "checkpoint",
        "source": "hcs",
        "dedup_id": hashlib.sha256(alert["dedup_key"].encode()).hexdigest()[:16],
    }
    if alert.get("checkpoint_id"):
        labels["checkpoint_id"] = alert["checkpoint_id"]
    details = alert.get("details") or {}
    managing = details.get("managing_district") if isinstance(details, dict) else None
    if managing and managing != alert["district"]:
        # A managed person seen in another district: routed to the managing district's on-call
        # as well (deploy/alertmanager); only when it differs, or that team would be told twice.
        labels["managing_district"] = managing
    annotations = {
        "summary": _summary(alert),
        "reasons": ",".join(alert.get("reasons") or []),
        "count": str(alert.get("count", 1)),
        "first_event_time": alert["first_event_time"],
        "last_event_time": alert["last_event_time"],
        "alert_id": alert["alert_id"],
        "policy_version": alert["policy_version"],
    }
    if alert.get("person_ref"):
        annotations["person_ref"] = alert["person_ref"]
    if alert.get("event_ids"):
        annotations["event_ids"] = ",".join(alert["event_ids"][-20:])
    if alert.get("details"):
        annotations["details"] = orjson.dumps(alert["details"]).decode()
    starts = parse_rfc3339(alert["first_event_time"])
    raised = now if raised_at is None or raised_at <= 0 or raised_at > now else raised_at
    if alert["status"] == "resolved":
        ends = max(raised, starts)
    else:
        # Firing for its useful life from when it was raised, whenever the bridge reads it: an
        # alert read again days later (a new consumer group, offsets expired) is posted as
        # already ended, which Alertmanager keeps as resolved and notifies nobody of.
        ends = raised + (STATE_ALERT_VISIBLE_S if kind in STATE_KINDS else EVENT_ALERT_VISIBLE_S)
    return {"labels": labels, "annotations": annotations, "startsAt": utc_rfc3339(starts),
            "endsAt": utc_rfc3339(ends)}


def _summary(alert: dict[str, Any]) -> str:
    where = f"venue {alert['venue_id']} (district {alert['district']})"
    if alert.get("checkpoint_id"):
        where += f", checkpoint {alert['checkpoint_id']}"
    reasons = ", ".join(alert.get("reasons") or [])
    text = f"{alert['kind']} at {where}" + (f": {reasons}" if reasons else "")
    return text + (" — resolved" if alert["status"] == "resolved" else "")


class AlertmanagerClient:
    """Posts alerts to ``{url}/api/v2/alerts``, retrying until they are accepted."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.timeout_s = timeout_s
        self._session: Any = None

    async def post(self, alerts: list[dict[str, Any]]) -> int:
        """Post until accepted; return the number of attempts. A 4xx (a payload Alertmanager will
        never take) is logged and skipped rather than retried forever."""
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        backoff, attempt = 0.5, 0
        body = orjson.dumps(alerts)
        while True:
            attempt += 1
            try:
                async with self._session.post(self.url, data=body,
                                              headers={"Content-Type": "application/json"}) as resp:
                    if resp.status < 300:
                        return attempt
                    text = (await resp.text())[:300]
                    if 400 <= resp.status < 500:
                        log.error("Alertmanager refused %d alert(s) with %d: %s", len(alerts), resp.status, text)
                        return attempt
                    log.warning("Alertmanager answered %d (attempt %d): %s", resp.status, attempt, text)
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("Alertmanager unreachable at %s (attempt %d): %s", self.url, attempt, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class BridgeApp(AtLeastOnceApp):
    """The alerts bridge; closes its HTTP session when it stops."""

    alertmanager: Any

    async def on_stop(self) -> None:
        await self.alertmanager.close()
        await super().on_stop()


def create_bridge_app(settings: Settings) -> BridgeApp:
    """The ``hcs alerts-bridge`` app: its own consumer group on the alerts topic, no web server."""
    (settings.data_dir / "alerts-bridge").mkdir(parents=True, exist_ok=True)  # Faust makes only the leaf
    app = BridgeApp(
        f"{settings.app_id}-alerts-bridge",
        broker=settings.broker_url,
        broker_credentials=settings.kafka.faust_credentials(),
        store="memory://",
        datadir=str(settings.data_dir / "alerts-bridge"),
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        Worker=QuietWorker,
        broker_session_timeout=20.0,
        broker_heartbeat_interval=3.0,
    )
    alerts_topic = app.topic(topics.topic_name(topics.ALERTS, settings.topic_prefix),
                             key_serializer="raw", value_serializer="raw")
    client = AlertmanagerClient(settings.alertmanager_url)
    watch = ConnectionWatch(f"Kafka at {settings.bootstrap}").install()

    @app.timer(WATCH_TICK_S, name="watch_kafka")
    async def watch_kafka() -> None:
        watch.check()  # one log line when Kafka is back

    @app.agent(alerts_topic, name="post_alerts", supervisor_strategy=CrashingSupervisor)
    async def post_alerts(stream: Any) -> None:
        """Post each batch of alerts; the batch is acknowledged only after Alertmanager took it."""
        async for events in consuming.batches(stream, 100, 0.2):
            now = time.time()
            batch = []
            for event in events:
                try:
                    # The record's timestamp is when the worker raised the alert: its age.
                    batch.append(to_alertmanager(orjson.loads(event.value), now, event.message.timestamp))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("skipping an alert record that is not hcs.alert.v1: %s", type(exc).__name__)

            async def post(alerts: list[dict[str, Any]] = batch) -> None:
                if alerts:
                    await client.post(alerts)

            # A stop does not wait for an unreachable Alertmanager: the batch stays unacknowledged
            # and is posted again after a restart (Alertmanager merges the repeat).
            await consuming.complete(consuming.stream_ack(stream), events, post, finish_on_stop=False)

    app.alertmanager = client
    return app
