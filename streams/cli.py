"""The ``hcs`` command line: worker, local broker, policy check, on-call tail, findings, local run."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from streams.errors import HcsError
from streams.rules.codes import VENUE_TYPES
from streams.rules.findings import PROBLEMS, STATUSES
from streams.settings import Settings

if TYPE_CHECKING:  # the broker module is imported only by the commands that need it
    from streams.dev.localkafka import LocalKafka


T = TypeVar("T")
LATE_UPLOADS_S = 3600.0  # hcs replay also reads records uploaded this long after its range (late uploads)


def _fail(exc: Exception | str) -> NoReturn:
    click.echo(f"hcs: {exc}", err=True)
    sys.exit(1)


def _run_client(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """Run a command's Kafka client to its end; a cluster it cannot reach or that refuses its
    credentials is one line and exit 1, never a traceback (the password is never printed)."""
    from streams.kafka.errors import client_errors, describe_client_error

    logged: list[str] = []
    try:
        with client_errors() as logged:
            return asyncio.run(work)
    except KeyboardInterrupt:
        sys.exit(0)
    except Exception as exc:
        described = describe_client_error(exc, settings, logged)
        if described is None:
            raise
        _fail(described)


def _await_cluster(settings: Settings) -> None:
    """Wait for the cluster as the worker does: one line while it cannot be reached, one once it
    answers; refused credentials are one line and exit 1; Ctrl-C meanwhile exits 0."""
    from streams.kafka.cluster import wait_for_cluster

    try:
        asyncio.run(wait_for_cluster(settings))
    except HcsError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        sys.exit(0)


def _client_settings() -> tuple[Settings, dict[str, Any]]:
    """The settings and Kafka client options of a command that talks to Kafka; a bad setting is
    one line and exit 1."""
    try:
        settings = Settings.from_env()
        return settings, settings.client_kwargs()
    except HcsError as exc:
        _fail(exc)


def _broker_state_dir(settings: Settings) -> Path:
    return settings.data_dir / "broker"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hcs", prog_name="hcs")
def cli() -> None:
    """hcs: judge health-code scans from Kafka in real time."""


# -- worker ------------------------------------------------------------------------------------

def _port_free(setting: str, host: str, port: int) -> None:
    """One line, not the web server's traceback, when the web port is taken."""
    from streams.dev.localkafka import require_free_port

    try:
        require_free_port(setting, host, port)
    except HcsError as exc:
        _fail(exc)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the stream worker (Faust's worker; extra options such as ``-l info`` pass through)."""
    from streams.kafka.cluster import ensure_topics
    from streams.rules.policy import load_policy
    from streams.settings.datadir import hold
    from streams.worker.app import create_app
    from streams.worker.waiting import probes_while_waiting

    try:
        settings = Settings.from_env()
        hold(settings.data_dir, "hcs worker", "stop it first, or give this worker its own HCS_DATA_DIR and "
             "HCS_WEB_PORT (the same HCS_APP_ID shares the partitions: the README's two workers)")
        policy = load_policy(settings.policy_file)  # a bad setting or policy: one line, at once
        # A topic of the wrong shape: one line, before Faust starts; an unreachable cluster is
        # waited for, said once (the app, made after, watches the connection from then on).
        _port_free("HCS_WEB_PORT", settings.web_bind, settings.web_port)
        with probes_while_waiting(settings.web_bind, settings.web_port):  # /livez while Kafka is awaited
            asyncio.run(ensure_topics(settings))
        app = create_app(settings, policy)
    except HcsError as exc:
        _fail(exc)
    except KeyboardInterrupt:  # stopped while waiting for the cluster
        sys.exit(0)
    sys.argv = ["hcs worker", "worker", *ctx.args]
    app.main()


@cli.command("alerts-bridge", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def alerts_bridge(ctx: click.Context) -> None:
    """Post every incident of hcs.incidents.v1 (its latest alert, its level and status) to Alertmanager
    ($HCS_ALERTMANAGER_URL), retrying until accepted; /metrics and probes on $HCS_BRIDGE_PORT."""
    from streams.kafka.cluster import wait_for_cluster
    from streams.ops.bridge import create_bridge_app

    try:
        settings = Settings.from_env()
        settings.client_kwargs()  # a bad security setting: one line, at once
        # Faust gives up at once on a cluster it cannot reach at start: wait for it first (said
        # once; the app, made after, watches the connection from then on).
        asyncio.run(wait_for_cluster(settings))
        _port_free("HCS_BRIDGE_PORT", settings.web_bind, settings.bridge_port)
        app = create_bridge_app(settings)
    except HcsError as exc:
        _fail(exc)
    except KeyboardInterrupt:  # stopped while waiting for the cluster
        sys.exit(0)
    sys.argv = ["hcs alerts-bridge", "worker", *ctx.args]  # with its web pages: probes, /metrics
    app.main()


# -- local broker ------------------------------------------------------------------------------

@cli.group()
def broker() -> None:
    """A local single-node Apache Kafka broker (KRaft) on 127.0.0.1, for development and tests."""


def _local(state_dir: str | None) -> LocalKafka:
    from streams.dev.localkafka import LocalKafka

    return LocalKafka(Path(state_dir) if state_dir else _broker_state_dir(Settings.from_env()))


_state_dir_option = click.option("--state-dir", default=None,
                                 help="Where the broker keeps data, logs and its pid (default $HCS_DATA_DIR/broker).")


@broker.command("start")
@click.option("--port", default=9092, show_default=True, type=int, help="Client port on 127.0.0.1.")
@click.option("--secure", is_flag=True, help="Also listen with SASL_SSL (SCRAM-SHA-512), enforce ACLs: a user per "
              "role with the ACLs of deploy/kafka/acls.toml, a super user admin, and a client settings file per "
              "role (<role>.env) in one folder.")
@click.option("--secure-port", default=9093, show_default=True, type=int, help="The SASL_SSL port on 127.0.0.1.")
@_state_dir_option
def broker_start(port: int, secure: bool, secure_port: int, state_dir: str | None) -> None:
    """Start the broker (resolving its jars with Maven on first use) and wait until it answers."""
    if secure:
        _secure_broker_start(port, secure_port, state_dir)
        return
    kafka = _local(state_dir)
    before = kafka.status()
    try:
        status = kafka.start(port=port)
    except HcsError as exc:
        _fail(exc)
    click.echo(("already running: " if before.running else "started: ") + status.describe())


def _secure_broker_start(port: int, secure_port: int, state_dir: str | None) -> None:
    from streams.dev.localkafka import LocalKafka
    from streams.dev.localkafka import secure as secured
    from streams.ops import acl as acls

    settings = Settings.from_env()
    root = Path(state_dir) if state_dir else _broker_state_dir(settings)
    if (root / "data" / "meta.properties").is_file() and not (root / "secure" / "users.json").is_file():
        _fail(f"the broker in {root} was made without --secure (its users exist only from the start): "
              f"`hcs broker stop`, then remove {root} or give another --state-dir")
    try:
        roles = acls.load_roles(_acl_file(ACL_FILE))
        kafka = LocalKafka(root, secure=secured.listener(root, secure_port, acls.ROLES))
        before = kafka.status()
        status = kafka.start(port=port)
        folder = secured.client_files(root, f"127.0.0.1:{secure_port}", acls.ROLES)
        admin = Settings.from_env({**os.environ, **secured.read_env_file(folder / "admin.env")})
        wanted = acls.bindings(roles, settings.topic_prefix, settings.app_id)
        created, _ = acls.apply(acls.admin_config(admin), wanted)
    except HcsError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 -- librdkafka's KafkaException: one line
        _fail(f"cannot apply the ACLs: {acls.describe_error(exc)}")
    click.echo(("already running: " if before.running else "started: ") + status.describe())
    click.echo(f"secured: SASL_SSL ({secured.MECHANISM}) at 127.0.0.1:{secure_port}, ACLs enforced; "
               f"{len(acls.ROLES)} roles' ACLs in place ({created} created)")
    click.echo(f"client settings per role: {folder} (e.g. set -a; . {folder}/worker.env; set +a; hcs worker)")


def _acl_file(path: Path) -> Path:
    """``path``, or the source checkout's copy when run elsewhere (deploy/ is not installed)."""
    if path.is_file() or path.is_absolute():
        return path
    import streams

    checkout = Path(streams.__file__).resolve().parents[1] / path
    return checkout if checkout.is_file() else path


@broker.command("stop")
@_state_dir_option
def broker_stop(state_dir: str | None) -> None:
    """Stop the broker; does nothing if it is not running."""
    kafka = _local(state_dir)
    click.echo("broker: stopped" if kafka.stop() else "broker: not running")


@broker.command("status")
@_state_dir_option
def broker_status(state_dir: str | None) -> None:
    """Print whether the broker runs, where, and its log; exit 3 if it does not run."""
    kafka = _local(state_dir)
    status = kafka.status()
    click.echo(status.describe())
    if not status.running:
        sys.exit(3)


@broker.command("fetch")
def broker_fetch() -> None:
    """Resolve the broker jars into the cache without starting anything (CI warm-up)."""
    from streams.dev.localkafka import resolve_jars

    try:
        click.echo(f"broker jars: {resolve_jars()}")
    except HcsError as exc:
        _fail(exc)


# -- policy ------------------------------------------------------------------------------------

@cli.group()
def policy() -> None:
    """Policy files (hcs.policy.v1), and the versions published to the running workers (hcs.policies.v1)."""


@policy.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--district", default="", help="Also apply this district's overrides.")
def policy_check(file: Path, district: str) -> None:
    """Validate FILE and print the effective parameters per venue type for each version."""
    from dataclasses import asdict

    from streams.rules.policy import PARAM_NAMES, load_policy
    from streams.times import local_time

    try:
        loaded = load_policy(file)
    except HcsError as exc:
        _fail(exc)
    for version in loaded.versions:
        click.echo(f"version {version.version}  valid from {local_time(version.valid_from)}"
                   + (f"  district {district}" if district else ""))
        effective = loaded.effective_table(version, district)
        table = {vt: asdict(p) for vt, p in effective.items()}
        width = 2 + max(map(len, table))  # whole venue-type names: isolation_point is 15 characters
        click.echo(f"  {'':<26}" + "".join(f"{vt:>{width}}" for vt in table))
        for name in PARAM_NAMES:
            if name != "escalation":  # defaults only, and no table cell: below
                click.echo(f"  {name:<26}" + "".join(f"{_fmt(p[name]):>{width}}" for p in table.values()))
        click.echo(f"  {'escalation':<26}" + _escalation(next(iter(effective.values())).escalation))
    click.echo(f"{file}: OK ({len(loaded.versions)} version(s))")


def _policy_topic() -> tuple[Settings, dict[str, Any], str]:
    from streams.contract import topics

    settings, client = _client_settings()
    return settings, client, topics.topic_name(topics.POLICIES, settings.topic_prefix)


@policy.command("publish")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--valid-from", default=None, help="When the version takes effect (RFC 3339; a one-version file).")
@click.option("--note", default=None, help="Why (shown by hcs policy list; at most 500 characters).")
@click.option("--force", is_flag=True, help="Publish a version that takes effect before the one in force (it then "
              "applies to late scans of the time between only).")
def policy_publish(file: Path, valid_from: str | None, note: str | None, force: bool) -> None:
    """Publish FILE's versions to the running workers (hcs.policies.v1), validated first; says
    what each changes against the version in force, and when it takes effect."""
    import time

    from streams.ops import policy_admin

    settings, client, topic = _policy_topic()
    if note is not None and len(note) > 500:
        _fail("--note: at most 500 characters")
    start = None if valid_from is None else _when(valid_from)
    now = time.time()
    try:
        versions = policy_admin.read_file(file, start)  # an invalid file: refused before Kafka is asked
        known, _ = _run_client(settings, policy_admin.current(client, topic, settings.policy_file))
        records = policy_admin.to_publish(versions, known, note, now, force)
    except HcsError as exc:
        _fail(exc)
    _run_client(settings, policy_admin.publish(client, topic, records))
    for version, record in zip(versions, records, strict=True):
        click.echo(f"published {record['version']} to {topic}: {policy_admin.takes_effect(version, now)}")
        for line in policy_admin.changes(known, version, now):
            click.echo(f"  {line}")


@policy.command("list")
def policy_list() -> None:
    """The versions the workers hold (packaged, HCS_POLICY_FILE, published): current and scheduled."""
    from streams.ops import policy_admin

    settings, client, topic = _policy_topic()
    try:
        known, refused = _run_client(settings, policy_admin.current(client, topic, settings.policy_file))
    except HcsError as exc:
        _fail(exc)
    for line in policy_admin.listing(known, refused):
        click.echo(line)


@policy.command("rollback")
@click.argument("version")
@click.option("--note", default=None, help="Why (default: rollback to VERSION).")
def policy_rollback(version: str, note: str | None) -> None:
    """Make VERSION's rules apply again from now, published as a new version."""
    import time

    from streams.ops import policy_admin

    settings, client, topic = _policy_topic()
    try:
        known, _ = _run_client(settings, policy_admin.current(client, topic, settings.policy_file))
        record = policy_admin.rollback(known, version, time.time(), note)
    except HcsError as exc:
        _fail(exc)
    _run_client(settings, policy_admin.publish(client, topic, [record]))
    click.echo(f"published {record['version']} (the rules of {version}, valid from {record['valid_from']}) to {topic}")


# -- simulate and the local run ------------------------------------------------------------------

@cli.command()
@click.option("--count", type=int, default=None, help="Scans to send, as fast as possible (default: forever).")
@click.option("--rate", type=float, default=None, help="Scans per second (default: as fast as possible).")
@click.option("--batch", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Scans per record: >1 sends gateway batches (hcs.scan-batch.v1).")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same stream.")
@click.option("--entries/--no-entries", default=True, show_default=True,
              help="Also send people counts per checkpoint and minute to hcs.entries.v1.")
@click.option("--run-id", default=None, help="In every event id (default: new each run, so a second run is not "
              "taken for redeliveries of the first; give the same one to resend a run).")
@click.option("--managed", type=click.IntRange(0, 20_000), default=0, show_default=True,
              help="Publish N key-personnel plans to hcs.management.v1 first (14+7+7, 7+3, 2+14; some released); "
              "those people are among the scanned, so some breach isolation or are restricted, and the "
              "residents of isolation points get their staff's observations on hcs.observations.v1.")
@click.option("--findings/--no-findings", default=True, show_default=True,
              help="Also send inspectors' findings and their rectification and verification to hcs.findings.v1.")
@click.option("--case-every", type=click.FloatRange(0), default=0, show_default=True,
              help="Report a case to hcs.cases.v1 every this many seconds (the first 45 s in): someone scanned in "
              "the last hour, so the workers trace their contacts, who are stopped at their next scans.")
@click.option("--ack-after", type=click.FloatRange(0), default=20.0, show_default=True,
              help="Act as the on-call team: acknowledge most new incidents about this many seconds after they "
              "trigger, resolve most of those later, leave the rest to escalate (0: no acks).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def simulate(count: int | None, rate: float | None, batch: int, seed: int, entries: bool, run_id: str | None,
             managed: int, findings: bool, case_every: float, ack_after: float, quiet: bool) -> None:
    """Publish simulated checkpoint scans of Hangzhou's districts to hcs.scans.v1."""
    import os
    import uuid

    from streams.contract import topics
    from streams.dev.device import ENV_PERSON_KEY, person_key_from_env
    from streams.dev.responder import Responder
    from streams.dev.simulate import Simulator, publish

    try:
        settings = Settings.from_env()
        client = settings.client_kwargs()
        key = person_key_from_env() if os.environ.get(ENV_PERSON_KEY) else None
    except HcsError as exc:
        _fail(exc)
    run = run_id if run_id is not None else uuid.uuid4().hex[:8]
    sim = (Simulator(seed=seed, run_id=run, managed=managed, case_every_s=case_every) if key is None
           else Simulator(seed=seed, key=key, run_id=run, managed=managed, case_every_s=case_every))
    topic = topics.topic_name(topics.SCANS, settings.topic_prefix)
    entries_topic = topics.topic_name(topics.ENTRIES, settings.topic_prefix) if entries else None
    management_topic = topics.topic_name(topics.MANAGEMENT, settings.topic_prefix) if managed else None
    # Residents of the simulated isolation points get their staff's observations.
    observations_topic = topics.topic_name(topics.OBSERVATIONS, settings.topic_prefix) if managed else None
    findings_topic = topics.topic_name(topics.FINDINGS, settings.topic_prefix) if findings else None
    cases_topic = topics.topic_name(topics.CASES, settings.topic_prefix) if case_every else None
    oncall = (Responder(ack_after, seed=seed), topics.topic_name(topics.INCIDENTS, settings.topic_prefix),
              topics.topic_name(topics.ALERT_ACTIONS, settings.topic_prefix)) if ack_after else None
    _await_cluster(settings)
    with click.progressbar(length=count or 0, label=f"scans -> {topic}", file=sys.stderr,
                           hidden=quiet or count is None) as bar:
        counts = _run_client(settings, publish(sim, client, topic, count, rate, batch, bar.update, entries_topic,
                                               management_topic, observations_topic, findings_topic,
                                               cases_topic, oncall))
    for on_purpose in ("duplicate_records", "malformed_records"):  # always said, even when none
        counts.setdefault(on_purpose, 0)
    click.echo(f"sent (run {run}): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@cli.command()
@click.option("--decisions", is_flag=True, help="Also show every decision, not only alerts.")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained record, not the newest.")
@click.option("--max", "max_lines", type=int, default=None, help="Exit after printing this many lines.")
@click.option("--timeout", "timeout_s", type=float, default=None, help="Exit after this many seconds.")
@click.option("--color/--no-color", default=None, help="Colour by severity (default: when on a terminal).")
def tail(decisions: bool, from_beginning: bool, max_lines: int | None, timeout_s: float | None,
         color: bool | None) -> None:
    """Follow the alerts for the on-call team: one line per alert with its incident's status and
    level, and one per escalation, ack and resolve (hcs.incidents.v1), newest last."""
    from streams.contract import topics
    from streams.ops.tail import follow

    settings, client = _client_settings()
    colour = sys.stdout.isatty() if color is None else color
    _await_cluster(settings)
    _run_client(settings, follow(
        client, topics.topic_name(topics.INCIDENTS, settings.topic_prefix),
        topics.topic_name(topics.DECISIONS, settings.topic_prefix) if decisions else None,
        from_beginning, lambda line: click.echo(line, color=colour), colour, max_lines, timeout_s))


def _when(text: str | None) -> float:
    """An ``--at`` or ``--deadline``: RFC 3339 with an offset (now when not given)."""
    import time
    from datetime import datetime

    if text is None:
        return time.time()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{text!r} is not a timestamp: use RFC 3339 with an offset, e.g. 2022-05-10T08:00:00+08:00")
    if parsed.tzinfo is None:
        _fail(f"{text!r} has no UTC offset: add one, e.g. +08:00")
    return parsed.timestamp()


def _finding_topics() -> tuple[Settings, dict[str, Any], str, str]:
    from streams.contract import topics

    settings, client = _client_settings()
    return (settings, client, topics.topic_name(topics.FINDINGS, settings.topic_prefix),
            topics.topic_name(topics.FINDING_STATUS, settings.topic_prefix))


@cli.group()
def finding() -> None:
    """Inspectors' and supervisors' actions on findings (written to hcs.findings.v1)."""


@finding.command("open")
@click.option("--venue", "venue_id", required=True, help="The venue_id the problem was found at.")
@click.option("--venue-type", required=True, type=click.Choice(VENUE_TYPES), help="The venue's type.")
@click.option("--district", required=True, help="The venue's 6-digit district code.")
@click.option("--problem", required=True, type=click.Choice(PROBLEMS), help="What was found.")
@click.option("--checkpoint", "checkpoint_id", default=None, help="The checkpoint concerned, if any.")
@click.option("--deadline", default=None, help="Rectify by (RFC 3339; default: the policy's rectify_deadline_hours).")
@click.option("--note", default=None, help="Free text for the inspectors (at most 500 characters; no names).")
@click.option("--id", "finding_id", default=None, help="The finding's id (default: district-date-random).")
@click.option("--at", default=None, help="When it was found (RFC 3339; default: now).")
def finding_open(venue_id: str, venue_type: str, district: str, problem: str, checkpoint_id: str | None,
                 deadline: str | None, note: str | None, finding_id: str | None, at: str | None) -> None:
    """Open a finding at a venue; prints its id."""
    from streams.ops import inspection
    from streams.times import rfc3339

    settings, client, events_topic, status_topic = _finding_topics()
    when = _when(at)
    try:
        if finding_id is not None and finding_id in _run_client(settings,
                                                                  inspection.latest_statuses(client, status_topic)):
            _fail(f"finding {finding_id} exists already: choose another --id")
        value = inspection.event_record(
            "open", finding_id or inspection.new_finding_id(district, when), venue_id, venue_type, district, when,
            problem=problem, checkpoint_id=checkpoint_id, note=note,
            deadline=None if deadline is None else rfc3339(_when(deadline)))
    except HcsError as exc:
        _fail(exc)
    _run_client(settings, inspection.publish(client, events_topic, value))
    click.echo(f"opened {value['finding_id']} ({problem} at {venue_id})")


def _follow_up(action: str, finding_id: str, at: str | None) -> None:
    from streams.ops import inspection

    settings, client, events_topic, status_topic = _finding_topics()
    when = _when(at)
    try:
        value = inspection.follow_up(action, finding_id, _run_client(
            settings, inspection.latest_statuses(client, status_topic)), when)
    except HcsError as exc:
        _fail(exc)
    _run_client(settings, inspection.publish(client, events_topic, value))
    click.echo(f"{action} {finding_id}: written")


for _action, _help in (("rectify", "The venue says it rectified the problem (OPEN or REOPENED)."),
                       ("verify", "A supervisor verified the rectification; the look-back starts."),
                       ("reject", "A supervisor rejected the rectification: the finding is OPEN again."),
                       ("cancel", "Withdraw a finding opened by mistake.")):
    def _command(finding_id: str, at: str | None, _action: str = _action) -> None:
        _follow_up(_action, finding_id, at)

    _command.__doc__ = _help
    finding.command(_action)(click.argument("finding_id")(click.option(
        "--at", default=None, help="When it was done (RFC 3339; default: now).")(_command)))


@cli.group()
def case() -> None:
    """Disease control's case reports (written to hcs.cases.v1): every worker traces them."""


@case.command("report")
@click.option("--person", "person_ref", required=True, help="The case's pseudonym (person_ref), never a name or ID.")
@click.option("--sampled-at", required=True, help="When the positive sample was taken (RFC 3339 with an offset).")
@click.option("--onset", default=None, help="Symptom onset (RFC 3339); the trace reaches back from it if given.")
@click.option("--classification", default="confirmed", show_default=True,
              type=click.Choice(["confirmed", "asymptomatic"]))
@click.option("--district", default="330106", show_default=True, help="The reporting district's 6-digit code.")
@click.option("--id", "case_id", default=None, help="The case's id (default: district-date-random).")
@click.option("--at", default=None, help="When it was reported (RFC 3339; default: now).")
def case_report(person_ref: str, sampled_at: str, onset: str | None, classification: str, district: str,
                case_id: str | None, at: str | None) -> None:
    """Report a case; prints its id. Checked as the worker checks it before it is written."""
    from streams.contract import topics
    from streams.ops import cases

    settings, client = _client_settings()
    try:
        value = cases.case_record(person_ref, district, _when(sampled_at), _when(at),
                                  None if onset is None else _when(onset), classification, case_id)
    except HcsError as exc:
        _fail(exc)
    _run_client(settings, cases.publish(client, topics.topic_name(topics.CASES, settings.topic_prefix), value))
    click.echo(f"reported {value['case_id']}: `hcs trace {value['case_id']}` shows its trace")


@cli.command()
@click.option("--from-app-id", required=True, help="The old generation's HCS_APP_ID (its workers stopped).")
@click.option("--from-prefix", default="", show_default=True, help="The old generation's HCS_TOPIC_PREFIX.")
@click.option("--from-partitions", type=click.IntRange(1, 1024), default=8, show_default=True,
              help="The old generation's HCS_VENUE_PARTITIONS.")
@click.option("--until-idle", "until_idle_s", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop relaying once the old topics were idle this many seconds (default: run until Ctrl-C).")
def migrate(from_app_id: str, from_prefix: str, from_partitions: int, until_idle_s: float | None) -> None:
    """Move to more venue partitions: into the generation HCS_TOPIC_PREFIX, HCS_APP_ID and
    HCS_VENUE_PARTITIONS name (a multiple of the old count), with the old generation's workers
    stopped. Makes the new topics, carries the old tables' state into them, then relays the old
    topics' records (start the new workers once the state is carried; switch the devices meanwhile)."""
    from streams.ops import migrate as move

    settings, _ = _client_settings()
    old = move.Generation(from_prefix, from_app_id, from_partitions)
    try:
        _run_client(settings, move.migrate(settings, old, until_idle_s, say=click.echo))
    except HcsError as exc:
        _fail(exc)


@cli.command()
@click.argument("case_id")
def trace(case_id: str) -> None:
    """A case's trace and its contacts counted per venue and venue type (never a list of people)."""
    from streams.contract import topics
    from streams.ops import cases

    settings, client = _client_settings()
    found, exposures = _run_client(settings, cases.read_trace(
        client, topics.topic_name(topics.TRACES, settings.topic_prefix),
        topics.topic_name(topics.EXPOSURES, settings.topic_prefix), case_id))
    for line in cases.summary(case_id, found, exposures):
        click.echo(line)


@cli.command()
@click.option("--from", "start", required=True, help="Start of the range of event times (RFC 3339).")
@click.option("--to", "end", required=True, help="End of the range (RFC 3339, not included).")
@click.option("--policy", "candidate", required=True, type=click.Path(path_type=Path),
              help="The candidate policy file (hcs.policy.v1).")
@click.option("--district", default=None, help="Only this district's scans.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("replay.json"), show_default=True,
              help="Where the detail goes (JSON).")
def replay(start: str, end: str, candidate: Path, district: str | None, out: Path) -> None:
    """What-if: judge the scans of a time range again under the versions in force and under a
    candidate policy, side by side; writes nothing to Kafka."""
    import orjson

    from streams.contract import topics
    from streams.ops import policy_admin
    from streams.ops.replay import Replay, read_range
    from streams.rules.policy import load_policy

    settings, client, policies_topic = _policy_topic()
    t0, t1 = _when(start), _when(end)
    if t1 <= t0:
        _fail("--to: must be after --from")
    try:
        new = load_policy(candidate)
    except HcsError as exc:
        _fail(exc)

    async def work() -> Replay:
        current, _ = await policy_admin.current(client, policies_topic, settings.policy_file)
        plans = await policy_admin.register_plans(client, topics.topic_name(topics.MANAGEMENT, settings.topic_prefix))
        replayed = Replay(current, new, t0, t1, district, plans)
        scans_topic = topics.topic_name(topics.SCANS, settings.topic_prefix)
        bars: list[Any] = []

        def start_bar(total: int) -> None:
            bars.append(click.progressbar(length=total, label=f"replaying {total} records", file=sys.stderr))

        # Records uploaded up to an hour after the range may still hold its scans (late uploads).
        try:
            async for records in read_range(client, scans_topic, t0, t1 + LATE_UPLOADS_S, start_bar):
                for key, value in records:
                    replayed.add_record(key, value)
                bars[0].update(len(records))
        finally:
            if bars:
                bars[0].render_finish()
        return replayed

    try:
        replayed = _run_client(settings, work())
    except HcsError as exc:
        _fail(exc)
    for line in replayed.table():
        click.echo(line)
    out.write_bytes(orjson.dumps(replayed.to_json(), option=orjson.OPT_INDENT_2))
    click.echo(f"detail: {out}")


@cli.group()
def register() -> None:
    """The key-personnel register by hand (hcs.management.v1), checked as the worker checks it."""


def _register_topic() -> tuple[Settings, dict[str, Any], str]:
    from streams.contract import topics

    settings, client = _client_settings()
    return settings, client, topics.topic_name(topics.MANAGEMENT, settings.topic_prefix)


def _register_of(person_ref: str) -> tuple[Settings, dict[str, Any], str, dict[str, Any]]:
    """The register as it stands, for a command about ``person_ref`` (refused in one line, never
    echoed, unless it is a pseudonym)."""
    from streams.ops import register as reg

    try:
        reg.pseudonym_only(person_ref)
    except HcsError as exc:
        _fail(exc)
    settings, client, topic = _register_topic()
    try:
        return settings, client, topic, _run_client(settings, reg.plans(client, topic))
    except HcsError as exc:
        _fail(exc)


@register.command("show")
@click.argument("person_ref")
def register_show(person_ref: str) -> None:
    """What the register says of one person (a pseudonym): plan, phases and their dates."""
    from streams.ops import register as reg

    _, _, _, held = _register_of(person_ref)
    for line in reg.describe(person_ref, held.get(person_ref)):
        click.echo(line)


@register.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def register_put(file: Path) -> None:
    """Write one person's plan from FILE (an hcs.management.v1 record, keyed by its person_ref)."""
    from streams.ops import register as reg

    settings, client, topic = _register_topic()
    try:
        ref, plan, _ = reg.checked(file.read_bytes())
    except HcsError as exc:
        _fail(exc)
    _run_client(settings, reg.put(client, topic, ref, file.read_bytes()))
    click.echo(f"{ref}: " + ("released (status released)" if plan is None else f"plan {plan.plan_id} written"))


@register.command("release")
@click.argument("person_ref")
def register_release(person_ref: str) -> None:
    """End one person's management (the tombstone the register's system writes)."""
    from streams.ops import register as reg

    settings, client, topic, held = _register_of(person_ref)
    if held.get(person_ref) is None:
        _fail(f"not written: {person_ref} is not on the register")
    _run_client(settings, reg.release(client, topic, person_ref))
    click.echo(f"{person_ref}: released")


@cli.command()
@click.option("--since", default=None, help="Only dead letters written since then (RFC 3339 with an offset).")
@click.option("--reason", type=click.Choice(["NOT_JSON", "SCHEMA_INVALID", "UNSUPPORTED_SCHEMA", "TOO_LARGE",
                                            "INVALID_TRANSITION"]), default=None, help="Only this reason.")
@click.option("--topic", "source", default=None, help="Only records refused from this topic (e.g. hcs.scans.v1).")
def dlq(since: str | None, reason: str | None, source: str | None) -> None:
    """List the dead letters (hcs.dlq.v1): where each record came from, why it was refused and
    its key, oldest first; never the payloads (they hold what a device sent)."""
    from streams.contract import topics
    from streams.ops import deadletters

    settings, client = _client_settings()
    start = _when(since) if since is not None else None
    letters = _run_client(settings, deadletters.read_dead_letters(
        client, topics.topic_name(topics.DLQ, settings.topic_prefix), start))
    for line in deadletters.table(letters, reason, source):
        click.echo(line)


@cli.command()
@click.option("--district", default=None, help="Only this district's findings.")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only findings in this state.")
@click.option("--overdue", is_flag=True, help="Only findings past their deadline.")
def findings(district: str | None, status: str | None, overdue: bool) -> None:
    """List the findings' latest states (hcs.finding-status.v1) as a table, by deadline."""
    from streams.ops import inspection

    settings, client, _, status_topic = _finding_topics()
    try:
        latest = _run_client(settings, inspection.latest_statuses(client, status_topic))
    except HcsError as exc:
        _fail(exc)
    for line in inspection.table(latest.values(), district, status, overdue):
        click.echo(line)


ACL_FILE = Path("deploy/kafka/acls.toml")


@cli.group()
def acl() -> None:
    """Who may read and write what: the roles of an ACL file (deploy/kafka/acls.toml) as Kafka ACLs."""


def _acl_plan(file: Path, user_prefix: str) -> tuple[Settings, list[Any]]:
    from streams.ops import acl as acls

    try:
        settings = Settings.from_env()
        roles = acls.load_roles(_acl_file(file))
        return settings, acls.bindings(roles, settings.topic_prefix, settings.app_id, user_prefix)
    except HcsError as exc:
        _fail(exc)


_ACL_OPTIONS = (click.option("--file", "file", type=click.Path(path_type=Path), default=ACL_FILE, show_default=True,
                             help="The roles file."),
                click.option("--user-prefix", default="", help="Put before each role's name to make its SASL user "
                             "(e.g. xihu- for xihu-device)."))


def _acl_options(command: Any) -> Any:
    for option in reversed(_ACL_OPTIONS):
        command = option(command)
    return command


@acl.command("plan")
@_acl_options
@click.option("--offline", is_flag=True, help="Print the bindings without asking the cluster what it has.")
def acl_plan(file: Path, user_prefix: str, offline: bool) -> None:
    """Print what the roles file means for this deployment (HCS_TOPIC_PREFIX, HCS_APP_ID): + to create,
    - to delete, = in place."""
    from streams.ops import acl as acls

    settings, wanted = _acl_plan(file, user_prefix)
    have = None
    if not offline:
        try:
            have = acls.present(acls.admin_config(settings), {b.principal for b in wanted})
        except HcsError as exc:
            _fail(exc)
        except Exception as exc:  # noqa: BLE001 -- librdkafka's KafkaException: one line
            _fail(f"cannot read the cluster's ACLs at {settings.bootstrap}: {acls.describe_error(exc)}")
    for line in acls.plan_lines(wanted, have):
        click.echo(line)


@acl.command("apply")
@_acl_options
def acl_apply(file: Path, user_prefix: str) -> None:
    """Make the cluster's ACLs of the roles' users match the roles file (idempotent)."""
    from streams.ops import acl as acls

    settings, wanted = _acl_plan(file, user_prefix)
    try:
        created, deleted = acls.apply(acls.admin_config(settings), wanted)
    except HcsError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 -- librdkafka's KafkaException: one line
        _fail(f"cannot change the cluster's ACLs at {settings.bootstrap}: {acls.describe_error(exc)}")
    click.echo(f"ACLs of {len({b.principal for b in wanted})} roles: {created} created, {deleted} deleted, "
               f"{len(wanted) - created} in place")


def _oncall_action(action: str, name: str, level: int) -> None:
    import time

    from streams.contract import topics
    from streams.ops import oncall

    settings, client = _client_settings()
    try:
        latest = _run_client(settings, oncall.latest_incidents(
            client, topics.topic_name(topics.INCIDENTS, settings.topic_prefix)))
        incident = oncall.find(latest, name)
        value = oncall.action_record(action, incident, level, time.time())
        _run_client(settings, oncall.publish(client, topics.topic_name(topics.ALERT_ACTIONS, settings.topic_prefix),
                                             value))
    except HcsError as exc:
        _fail(exc)
    click.echo(f"{action} written for incident {incident['incident_id']} ({incident['kind']}, "
               f"{incident['status']} L{incident['level']}, district {incident['district']})")


@cli.command()
@click.argument("name", metavar="ALERT_ID|DEDUP_KEY")
@click.option("--level", type=click.IntRange(1, 10), default=1, show_default=True,
              help="Your escalation level (1: the district's on-call; 2, 3: supervisors).")
def ack(name: str, level: int) -> None:
    """Acknowledge an alert's incident: escalation stops while the ack holds (hcs.alert-actions.v1)."""
    _oncall_action("ack", name, level)


@cli.command()
@click.argument("name", metavar="ALERT_ID|DEDUP_KEY")
@click.option("--level", type=click.IntRange(1, 10), default=1, show_default=True,
              help="Your escalation level (1: the district's on-call; 2, 3: supervisors).")
def resolve(name: str, level: int) -> None:
    """Resolve an alert's incident: it is over; a new alert opens a new incident."""
    _oncall_action("resolve", name, level)


@cli.command()
@click.option("--district", default=None, help="Only this district's incidents.")
@click.option("--open", "open_only", is_flag=True, help="Only incidents not resolved (TRIGGERED, ACKNOWLEDGED).")
def incidents(district: str | None, open_only: bool) -> None:
    """List the incidents' latest states (hcs.incidents.v1) as a table, oldest first."""
    import time

    from streams.contract import topics
    from streams.ops import oncall

    settings, client = _client_settings()
    try:
        latest = _run_client(settings, oncall.latest_incidents(
            client, topics.topic_name(topics.INCIDENTS, settings.topic_prefix)))
    except HcsError as exc:
        _fail(exc)
    for line in oncall.table(latest.values(), time.time(), district, open_only):
        click.echo(line)


@cli.command()
@click.option("--rate", type=float, default=20.0, show_default=True, help="Simulated scans per second.")
@click.option("--port", default=9092, show_default=True, type=int, help="Local broker port.")
def run(rate: float, port: int) -> None:
    """Run everything locally: broker (unless HCS_BOOTSTRAP is set), worker and simulated checkpoints."""
    from streams.dev.local import run_local

    try:
        run_local(rate=rate, port=port)
    except HcsError as exc:
        _fail(exc)


@cli.command()
def reset() -> None:
    """Clear the local run's state in HCS_DATA_DIR (the local broker's topics and changelogs, the
    tables, the demo's policy), so that the next `make run` starts afresh; .venv is not touched."""
    from streams.dev.local import reset_local

    settings = Settings.from_env()
    removed = reset_local()
    if not removed:
        click.echo(f"hcs: nothing to clear in {settings.data_dir}")
        return
    click.echo(f"hcs: cleared {settings.data_dir}: " + ", ".join(path.name for path in removed))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Benchmark hcs against a raw aiokafka loop and a bare Faust agent on a real broker
    (``python -m benchmarks.run`` of the source checkout; ``hcs bench --help`` for its options)."""
    import os
    import sys

    import streams

    checkout = Path(streams.__file__).resolve().parents[1]
    if not (checkout / "benchmarks" / "run.py").is_file():
        _fail("hcs bench runs from a source checkout: benchmarks/ is not installed with the package")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(checkout), os.environ.get("PYTHONPATH")) if p))
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.run", *ctx.args], env)


def _escalation(plans: Any) -> str:
    """A version's escalation plans as people read them: minutes per level, the ack timeout."""
    def minutes(m: float) -> str:
        return f"{m:g}"

    return "; ".join(f"{severity}: levels at {'/'.join(map(minutes, plan.levels))} min"
                     + (f", ack holds {minutes(plan.ack_timeout_minutes)} min" if plan.ack_timeout_minutes else "")
                     for severity, plan in plans) or "none"


def _fmt(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def main() -> None:
    cli(prog_name="hcs")


if __name__ == "__main__":
    main()
