"""``hcs alerts-bridge``: every incident of ``hcs.incidents.v1`` posted to Alertmanager's v2 API.

An incident is posted as its latest alert with two more labels: ``level`` (who is notified:
1 the district's on-call, 2 and 3 its supervisors, by Alertmanager's routes) and
``incident_status`` (an ACKNOWLEDGED incident is routed to no receiver: shown, re-notifying
nobody; a RESOLVED one ends). Labels identify an alert in Alertmanager, so a re-delivered
record updates the same one instead of adding a second: kind, severity, district, venue,
checkpoint, scope and ``dedup_id`` (a digest of the dedup key, distinguishing the people of one
venue without naming them), level and status. When an incident's level or status changes, the
alert posted for its previous ones is posted again as ended: one incident, one active alert.
The pseudonymous ``person_ref`` goes in annotations only, never in labels. Records are
acknowledged only once Alertmanager accepted them; until then the bridge retries, so nothing is
lost, and a stop does not wait for Alertmanager (the batch is read again after a restart).

The bridge serves ``/livez``, ``/readyz`` (ready once it has its partitions and Alertmanager
answered its last post) and ``/metrics`` (posts, failures, records behind the incidents topic)
on ``HCS_BRIDGE_PORT``.

An alert fires for its useful life counted from when the worker raised it (its record's Kafka
timestamp), not from when the bridge reads it: a finding for an hour, a silent checkpoint until
its resolved alert (a week at most). An older alert is posted as already ended, so a bridge
reading the topic from the start never pages anyone for last week's alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import orjson
from mode import CrashingSupervisor
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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


# The status an incident is in after each step of its history (None: as before the step).
_STATUS_AFTER = {"trigger": "TRIGGERED", "escalate": "TRIGGERED", "timeout": "TRIGGERED", "append": None,
                 "ack": "ACKNOWLEDGED", "resolve": "RESOLVED"}


def incident_posts(incident: dict[str, Any], now: float, raised_at: float | None = None) -> list[dict[str, Any]]:
    """The Alertmanager ``postableAlert``s for one ``hcs.incident.v1`` record, written at
    ``raised_at`` (its Kafka timestamp): the incident as it is now and, when this change moved
    its level or status, the alert posted for the previous ones, ended."""
    raised = now if raised_at is None or raised_at <= 0 or raised_at > now else raised_at
    alert = incident["alert"]
    post = to_alertmanager(alert, now, raised_at)
    status = incident["status"]
    post["labels"].update(level=str(incident["level"]), incident_status=status)
    post["annotations"].update(incident_id=incident["incident_id"], alert_count=str(incident["alert_count"]),
                               triggered_at=incident["triggered_at"])
    ended_now = utc_rfc3339(max(raised, parse_rfc3339(alert["first_event_time"])))
    if status == "RESOLVED":  # by an action, or by its resolved alert
        post["endsAt"] = ended_now
    posts = [post]
    states = _states(incident["history"])
    if len(states) >= 2 and states[-2] != states[-1]:
        before = {**post, "labels": {**post["labels"], "incident_status": states[-2][0], "level": str(states[-2][1])},
                  "endsAt": ended_now}
        posts.insert(0, before)
    return posts


def _states(history: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(status, level) after each step of an incident's history."""
    states: list[tuple[str, int]] = []
    status = "TRIGGERED"
    for step in history:
        status = _STATUS_AFTER.get(step["action"]) or status
        states.append((status, int(step["level"])))
    return states


def _summary(alert: dict[str, Any]) -> str:
    where = f"venue {alert['venue_id']} (district {alert['district']})"
    if alert.get("checkpoint_id"):
        where += f", checkpoint {alert['checkpoint_id']}"
    reasons = ", ".join(alert.get("reasons") or [])
    text = f"{alert['kind']} at {where}" + (f": {reasons}" if reasons else "")
    return text + (" — resolved" if alert["status"] == "resolved" else "")


class Stopping(Exception):
    """The bridge stops while a post is unaccepted: the post is given up, its records left unacknowledged."""


class AlertmanagerClient:
    """Posts alerts to ``{url}/api/v2/alerts``, retrying until they are accepted; counts what it did."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.timeout_s = timeout_s
        self._session: Any = None
        self.accepted = 0  # alerts Alertmanager took
        self.refused = 0  # alerts it refused (4xx: never retried)
        self.failures = 0  # posts that failed and were retried (unreachable, 5xx)
        self.failing = False  # whether the latest post failed
        self.last_success = 0.0  # when a post was last accepted (epoch seconds)
        self._stopping = asyncio.Event()

    async def post(self, alerts: list[dict[str, Any]]) -> int:
        """Post until accepted; return the number of attempts. A 4xx (a payload Alertmanager will
        never take) is logged and skipped rather than retried forever."""
        import aiohttp

        if self._stopping.is_set():
            raise Stopping
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
                        self.accepted += len(alerts)
                        self.failing, self.last_success = False, time.time()
                        return attempt
                    text = (await resp.text())[:300]
                    if 400 <= resp.status < 500:
                        log.error("Alertmanager refused %d alert(s) with %d: %s", len(alerts), resp.status, text)
                        self.refused += len(alerts)
                        self.failing = False
                        return attempt
                    log.warning("Alertmanager answered %d (attempt %d): %s", resp.status, attempt, text)
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("Alertmanager unreachable at %s (attempt %d): %s", self.url, attempt, exc)
            self.failures += 1
            self.failing = True
            # The backoff, cut short by a stop: nothing waits for an unreachable Alertmanager.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            if self._stopping.is_set():
                raise Stopping
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def stop(self) -> None:
        """Give up the post in progress at its next attempt (the bridge stops)."""
        self._stopping.set()

    async def close(self) -> None:
        self.stop()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class BridgeMetrics:
    """The bridge's ``/metrics``: what it posted, what failed, how far behind the incidents it is."""

    def __init__(self, client: AlertmanagerClient, lag: Callable[[], int | None],
                 waiting_since: Callable[[], float | None]) -> None:
        self.client = client
        self.lag = lag
        self.waiting_since = waiting_since
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        client = self.client
        yield CounterMetricFamily("hcs_bridge_alerts_posted", "Alerts Alertmanager accepted from the bridge.",
                                  value=float(client.accepted))
        yield CounterMetricFamily("hcs_bridge_alerts_refused", "Alerts Alertmanager refused (4xx; not retried).",
                                  value=float(client.refused))
        yield CounterMetricFamily("hcs_bridge_post_failures", "Posts to Alertmanager that failed and were retried "
                                  "(unreachable, 5xx).", value=float(client.failures))
        yield GaugeMetricFamily("hcs_bridge_alertmanager_up", "1 unless the latest post to Alertmanager failed.",
                                value=0.0 if client.failing else 1.0)
        yield GaugeMetricFamily("hcs_bridge_last_success_timestamp_seconds", "When Alertmanager last accepted a post.",
                                value=client.last_success)
        lag = self.lag()
        if lag is not None:
            yield GaugeMetricFamily("hcs_bridge_lag_records", "Records of hcs.incidents.v1 the bridge has not posted "
                                    "yet: not fetched, and fetched but not accepted (measured every 5 s).",
                                    value=float(lag))
        since = self.waiting_since()
        yield GaugeMetricFamily("hcs_bridge_oldest_unposted_seconds", "How long the oldest record the bridge holds "
                                "has waited for Alertmanager to accept it since the worker wrote it (0: none waits).",
                                value=0.0 if since is None else max(0.0, time.time() - since))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class BridgeApp(AtLeastOnceApp):
    """The alerts bridge; closes its HTTP session when it stops."""

    alertmanager: Any
    behind: int | None = None  # records not fetched yet, at the latest measure (None: no partitions)
    in_flight: int = 0  # records read and not yet accepted by Alertmanager
    waiting_since: float | None = None  # when the oldest of them was written (its Kafka timestamp)

    async def on_stop(self) -> None:
        self.alertmanager.stop()  # a post waiting out an unreachable Alertmanager gives up now
        await super().on_stop()

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        await self.alertmanager.close()  # after the agent: no post is using the session any more

    def lag(self) -> int | None:
        """Records of its partitions not posted yet (None: no partitions yet)."""
        return None if self.behind is None else self.behind + self.in_flight

    async def measure_lag(self) -> None:
        """Records not fetched yet: each partition's end offset minus the consumer's position (which
        steps over the transactions' commit markers, as the end offset counts them)."""
        consumer = cast(Any, self.consumer)
        assigned = consumer.assignment()
        behind = 0
        for tp in assigned:
            end, position = consumer.highwater(tp), await consumer.position(tp)
            if end is not None and position is not None:
                behind += max(0, end - position)
        self.behind = behind if assigned else None


def create_bridge_app(settings: Settings) -> BridgeApp:
    """The ``hcs alerts-bridge`` app: its own consumer group on the incidents topic, and its web pages."""
    (settings.data_dir / "alerts-bridge").mkdir(parents=True, exist_ok=True)  # Faust makes only the leaf
    app = BridgeApp(
        f"{settings.app_id}-alerts-bridge",
        broker=settings.broker_url,
        broker_credentials=settings.kafka.faust_credentials(),
        store="memory://",
        datadir=str(settings.data_dir / "alerts-bridge"),
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        web_port=settings.bridge_port,
        web_bind=settings.web_bind,
        web_host=settings.web_bind,
        web_in_thread=False,
        Worker=QuietWorker,
        broker_session_timeout=20.0,
        broker_heartbeat_interval=3.0,
        # A stop does not wait for records not yet posted (Alertmanager may be down): they stay
        # unacknowledged, uncommitted, and are read again at the next start.
        stream_wait_empty=False,
    )
    incidents_topic = app.topic(topics.topic_name(topics.INCIDENTS, settings.topic_prefix),
                                key_serializer="raw", value_serializer="raw")
    client = AlertmanagerClient(settings.alertmanager_url)
    metrics = BridgeMetrics(client, app.lag, lambda: app.waiting_since)
    watch = ConnectionWatch(f"Kafka at {settings.bootstrap}").install()

    @app.timer(WATCH_TICK_S, name="watch_kafka")
    async def watch_kafka() -> None:
        watch.check()  # one log line when Kafka is back
        await app.measure_lag()

    @app.agent(incidents_topic, name="post_incidents", supervisor_strategy=CrashingSupervisor)
    async def post_incidents(stream: Any) -> None:
        """Post each batch of incidents; the batch is acknowledged only after Alertmanager took it."""
        async for events in consuming.batches(stream, 100, 0.2):
            now = time.time()
            batch = []
            for event in events:
                if event.value is None:
                    continue  # a tombstone: nothing to post
                try:
                    # The record's timestamp is when the worker changed the incident: its age.
                    batch.extend(incident_posts(orjson.loads(event.value), now, event.message.timestamp))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("skipping a record that is not hcs.incident.v1: %s", type(exc).__name__)

            async def post(alerts: list[dict[str, Any]] = batch) -> None:
                if alerts:
                    await client.post(alerts)

            app.in_flight = len(events)
            app.waiting_since = min((e.message.timestamp for e in events), default=now)

            # A stop does not wait for an unreachable Alertmanager: the batch stays unacknowledged
            # and is posted again after a restart (Alertmanager merges the repeat).
            try:
                await consuming.complete(consuming.stream_ack(stream), events, post, finish_on_stop=False)
            except Stopping:
                log.info("stopping: %d incident record(s) not accepted by Alertmanager are left for the next "
                         "start", len(events))
                return
            app.in_flight, app.waiting_since = 0, None

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        return web.text("ok\n")  # the event loop answers: alive (Kafka's and Alertmanager's states are not asked)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        assigned = bool(cast(Any, app.consumer).assignment())
        ready = assigned and not client.failing
        return web.json({"ready": ready, "partitions_assigned": assigned, "alertmanager_failing": client.failing,
                         "lag_records": app.lag()}, status=200 if ready else 503)

    app.alertmanager = client
    return app
